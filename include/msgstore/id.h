/* SPDX-License-Identifier: Apache-2.0 */
/*
 * id.h - channel and user ids: a UUID or a positive 64-bit integer.
 *
 * A store names channels and users in one format, chosen when the store is
 * created (MSGSTORE_ID_FORMAT) and recorded with its schema:
 *   MS_ID_UUID   RFC 9562 UUIDs (the seed platform's ids): 16 bytes, stored
 *                natively (CQL uuid, SQLite 16-byte BLOB); text is the
 *                canonical 8-4-4-4-12 lower-case hex form, input in any case.
 *   MS_ID_INT64  decimal integers 1..INT64_MAX (CQL bigint, SQLite INTEGER).
 * Both live in one value type, ms_xid: the 16 bytes of a UUID in network
 * order split into two big-endian halves (hi = bytes 0..7, lo = bytes 8..15);
 * an integer id is {0, value}. The all-zero value means "none" (the nil UUID
 * is never a valid id). Comparing (hi, lo) as unsigned numbers orders ids as
 * their bytes compare (memcmp), which is also Cassandra's order for UUIDs of
 * one version other than 1.
 *
 * Message ids stay 64-bit snowflakes and Telegram ids stay integers: only
 * channel ids and user ids (sender, reacting user, reader, pinned_by, typing
 * and presence users) are ms_xid.
 *
 * This header stands alone (C99 and <stdint.h>): it is installed.
 */
#ifndef MSGSTORE_ID_H
#define MSGSTORE_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_id_format {
    MS_ID_UUID = 0, /* default: the seed's */
    MS_ID_INT64 = 1,
} ms_id_format;

/** A channel or user id in either format; {0, 0} is "none". */
typedef struct ms_xid {
    uint64_t hi; /* UUID bytes 0..7, big-endian; 0 for an integer id */
    uint64_t lo; /* UUID bytes 8..15, big-endian; the integer itself */
} ms_xid;

/** Longest text form plus its NUL: a UUID is 36 characters, an integer at most 19. */
#define MS_XID_STRLEN 37

/** The integer id v (int64 format). */
static inline ms_xid ms_xid_int(uint64_t v)
{
    ms_xid x = {0, v};
    return x;
}

static inline bool ms_xid_is_none(ms_xid a)
{
    return (a.hi | a.lo) == 0;
}

static inline bool ms_xid_eq(ms_xid a, ms_xid b)
{
    return a.hi == b.hi && a.lo == b.lo;
}

/** -1, 0 or 1: unsigned (hi, lo), which is the byte order of the UUID. */
static inline int ms_xid_cmp(ms_xid a, ms_xid b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

/** A well-mixed 64-bit hash of the id (hash tables, shard picks); stable across processes. */
uint64_t ms_xid_hash(ms_xid a);

/**
 * A 64-bit key of the id for hash tables and shard picks: an integer id is
 * itself (so int64 stores keep the shards they always had), a UUID its hash.
 */
static inline uint64_t ms_xid_key64(ms_xid a)
{
    return a.hi ? ms_xid_hash(a) : a.lo;
}

/** "uuid" or "int64"; NULL out of range. */
const char *ms_id_format_name(ms_id_format f);

/** Parses "uuid" or "int64" into *out. Returns 0, or -1 for anything else. */
int ms_id_format_parse(const char *name, ms_id_format *out);

/**
 * Parses the text form of an id in format f: a UUID in 8-4-4-4-12 hex (any
 * case, no braces or urn: prefix) other than the nil UUID, or a decimal
 * integer 1..INT64_MAX without sign, spaces or leading zeros. s need not be
 * NUL-terminated. Returns 0 and sets *out, or -1 (and leaves *out alone).
 */
int ms_xid_parse(ms_id_format f, const char *s, size_t len, ms_xid *out);

/**
 * Writes the canonical text of id (lower-case UUID, or decimal) and its NUL
 * into out (MS_XID_STRLEN bytes). Returns the length without the NUL. The
 * UUID form is written whenever hi != 0, whatever f says.
 */
size_t ms_xid_format(ms_id_format f, ms_xid id, char out[MS_XID_STRLEN]);

/** The 16 bytes of the id in network order (a UUID's bytes; an integer as 8 zero bytes then its
 * big-endian value). */
void ms_xid_to_bytes(ms_xid id, uint8_t out[16]);

/** The id whose 16 bytes (network order) are b. */
ms_xid ms_xid_from_bytes(const uint8_t b[16]);

/**
 * The 16 bytes of any UUID (the nil UUID too) from its 8-4-4-4-12 hex text
 * (any case; s need not be NUL-terminated). Returns 0, or -1 and leaves out alone.
 */
int ms_uuid_parse(const char *s, size_t len, uint8_t out[16]);

/** The canonical lower-case text of a UUID's 16 bytes and its NUL (37 bytes). */
void ms_uuid_format(const uint8_t b[16], char out[MS_XID_STRLEN]);

/** True when id is a valid id of format f: not none; int64: hi == 0 and lo <= INT64_MAX. */
bool ms_xid_valid(ms_id_format f, ms_xid id);

#ifdef __cplusplus
}
#endif

#endif
