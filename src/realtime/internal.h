/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - what the files of src/realtime share and nobody else uses.
 */
#ifndef MS_REALTIME_INTERNAL_H
#define MS_REALTIME_INTERNAL_H

#include "realtime/realtime.h"

#include <pthread.h>

/* ---- rt_map: open addressing channel id -> pointer, the none id is "empty" ---- */
typedef struct rt_map {
    ms_xid *keys;
    void **vals;
    uint32_t cap; /* power of two, or 0 */
    uint32_t len;
} rt_map;

/* Looks key (non-zero) up; NULL when absent. */
void *rt__map_get(const rt_map *m, ms_xid key);
/* Inserts or replaces; 0 or MS_ERR_NOMEM (then the map is unchanged). */
int rt__map_put(rt_map *m, ms_xid key, void *val);
/* Removes key; returns its value or NULL. */
void *rt__map_del(rt_map *m, ms_xid key);
/* Frees the arrays (not the values). */
void rt__map_free(rt_map *m);

/* A 64-bit mixer (splitmix64's finalizer): spreads snowflakes whose low bits are equal. */
static inline uint64_t rt__mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* ---- messages ---- */

/* CLOCK_REALTIME in µs and ms. */
int64_t rt__now_us(void);
int64_t rt__now_ms(void);

/*
 * Allocates a message with refs 1 and json rendered from the parts
 * (data NULL means {}). NULL when out of memory.
 */
rt_msg *rt__msg_render(rt_kind kind, ms_id_format f, ms_xid channel, uint64_t position,
                       const char *data, size_t len);

/* A message whose json is given verbatim (copied). NULL when out of memory. */
rt_msg *rt__msg_raw(rt_kind kind, ms_xid channel, uint64_t position, const char *json, size_t len);

/* {"type":"resync","channel":"<c>"|null,"reason":"<reason>"}; NULL when out of memory. */
rt_msg *rt__msg_resync(ms_id_format f, ms_xid channel, const char *reason);

/* ---- hub internals used by the bridge and presence ---- */

/*
 * Delivers a message to this instance's subscribers and replay ring; also
 * hands it to the bridge when to_bridge. Consumes the caller's reference.
 */
void rt__hub_dispatch(rt_hub *h, rt_msg *msg, bool to_bridge);

/* The Redis shard of a channel. */
uint32_t rt__hub_shard(const rt_hub *h, ms_xid channel);

/* The format of the hub's channel and user ids (rt_hub_options.id_format). */
ms_id_format rt__hub_id_format(const rt_hub *h);
uint32_t rt__hub_shards(const rt_hub *h);

/* Whether some local subscriber follows a channel of the shard. */
bool rt__hub_shard_wanted(rt_hub *h, uint32_t shard);

/*
 * The position from which the stream of other instances' events for the
 * shard is complete; UINT64_MAX while it is not (not subscribed, Redis down).
 */
void rt__hub_shard_since_set(rt_hub *h, uint32_t shard, uint64_t position);

/*
 * Queues a resync event for every local subscriber of a channel in shard
 * (UINT32_MAX: every shard), e.g. after Redis came back.
 */
void rt__hub_shard_gap(rt_hub *h, uint32_t shard, const char *reason);

/* The position a snowflake made at Unix time ms would have at least. */
uint64_t rt__hub_position_at(const rt_hub *h, int64_t unix_ms);

/* Sets or clears the bridge the hub hands published events to; clearing waits
 * until no thread uses the old one. */
void rt__hub_set_bridge(rt_hub *h, rt_bridge *b);

/* Bridge hooks: take a reference on msg to send it; wake the bridge to re-read wanted shards. */
void rt__bridge_enqueue(rt_bridge *b, rt_msg *msg);
void rt__bridge_wake(rt_bridge *b);
bool rt__bridge_up(rt_bridge *b);

/* Typing/presence: SET key PX ttl through the bridge (no-op when down). */
void rt__bridge_set_ttl(rt_bridge *b, const char *key, int64_t ttl_ms);
void rt__bridge_del(rt_bridge *b, const char *key);

/* Presence table: an event received from another instance (typing or presence). */
void rt__ephemeral_remote(rt_hub *h, const rt_msg *msg);

/* Presence state hung off the hub (created with it). */
typedef struct rt_ephemeral rt_ephemeral;
int rt__ephemeral_create(rt_ephemeral **out);
void rt__ephemeral_destroy(rt_ephemeral *e);
rt_ephemeral *rt__hub_ephemeral(rt_hub *h);

/* The bridge, kept alive until the matching release (NULL when none). */
rt_bridge *rt__hub_bridge_acquire(rt_hub *h);
void rt__hub_bridge_release(rt_hub *h);

#endif
