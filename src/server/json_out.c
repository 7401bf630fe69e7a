/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_out.c - a direct JSON writer for the hot answers (messages, pages).
 *
 * Building a jansson tree for a page of 50 messages costs about a thousand
 * allocations; appending to one buffer costs a few (the e2e tests check the
 * shapes against docs/openapi.yaml). Attachments and metadata are stored as compact JSON
 * text that the API itself serialized at insert time, so they are copied
 * verbatim; anything else (NULL, not starting with '[' / '{') becomes null.
 */
#include "server/server_internal.h"

#include <stdlib.h>
#include <string.h>

void srv__jw_init(srv__jw *w)
{
    w->p = NULL;
    w->len = w->cap = 0;
    w->oom = false;
    w->nxid = w->xid_next = 0;
    memset(w->xid_text, 0, sizeof w->xid_text); /* put_xid copies whole slots */
}

void srv__jw_free(srv__jw *w)
{
    free(w->p);
    srv__jw_init(w);
}

static bool reserve(srv__jw *w, size_t n)
{
    if (w->oom)
        return false;
    if (w->len + n <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 1024;
    while (cap < w->len + n)
        cap *= 2;
    char *p = realloc(w->p, cap);
    if (!p) {
        w->oom = true;
        return false;
    }
    w->p = p;
    w->cap = cap;
    return true;
}

void srv__jw_hint(srv__jw *w, size_t n)
{
    (void)reserve(w, n);
}

void srv__jw_raw(srv__jw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

void srv__jw_lit(srv__jw *w, const char *s)
{
    srv__jw_raw(w, s, strlen(s));
}

/* Bytes a JSON string cannot hold as they are: the control characters, '"' and '\\'. */
static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/*
 * The length of s's first run of bytes that need no escape, up to n. Eight
 * bytes a step (a word with no byte below 0x20 and none equal to '"' or
 * '\\', tested at once), then byte by byte: a page's contents are mostly
 * plain text, and the byte loop was the most of its strings' cost.
 */
static size_t plain_run(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
        uint64_t hit = ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b);
        if (hit & HIGH)
            break;
    }
    while (i < n && !needs_escape((unsigned char)s[i]))
        i++; /* UTF-8 passes through: the store only holds valid UTF-8 */
    return i;
}

/* s quoted and escaped at o (room for n * 6 + 2 bytes); returns the end. */
static char *put_str(char *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = i + plain_run(s + i, n - i);
        memcpy(o, s + i, run - i);
        o += run - i;
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        i = run + 1;
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    return o;
}

void srv__jw_str(srv__jw *w, const char *s, size_t n)
{
    if (!reserve(w, n * 6 + 2))
        return;
    w->len = (size_t)(put_str(w->p + w->len, s, n) - w->p);
}

void srv__jw_cstr(srv__jw *w, const char *s)
{
    if (s)
        srv__jw_str(w, s, strlen(s));
    else
        srv__jw_lit(w, "null");
}

/*
 * v in decimal, written so that it ends just before `end`; returns its first
 * digit. Two digits per step from a table: snprintf's format parsing and
 * stream setup cost more than a page's JSON escaping (three numbers per
 * message).
 */
static char *dec(char *end, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char *p = end;
    while (v >= 100) {
        unsigned k = (unsigned)(v % 100) * 2;
        v /= 100;
        *--p = pairs[k + 1];
        *--p = pairs[k];
    }
    if (v >= 10) {
        unsigned k = (unsigned)v * 2;
        *--p = pairs[k + 1];
        *--p = pairs[k];
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

#define NUM_MAX 24 /* '"', '-', 20 digits, '"' */

/* The decimal digits of v. */
static unsigned digits(uint64_t v)
{
    static const uint64_t pow10[20] = {1ull,
                                       10ull,
                                       100ull,
                                       1000ull,
                                       10000ull,
                                       100000ull,
                                       1000000ull,
                                       10000000ull,
                                       100000000ull,
                                       1000000000ull,
                                       10000000000ull,
                                       100000000000ull,
                                       1000000000000ull,
                                       10000000000000ull,
                                       100000000000000ull,
                                       1000000000000000ull,
                                       10000000000000000ull,
                                       100000000000000000ull,
                                       1000000000000000000ull,
                                       10000000000000000000ull};
    unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
    unsigned n = (bits * 1233) >> 12; /* bits * log10(2), at most 19: n or n + 1 digits */
    return n + ((v | 1) >= pow10[n]); /* v | 1: 0 has one digit, and no power of 10 is odd */
}

/*
 * v as a JSON number, or (quoted) as a string, at o; negative: a '-' first.
 * Returns the end. The digits go straight to their place (their count
 * first): copying them from a scratch buffer was a variable-length memcpy
 * per number, three per message.
 */
static char *put_num(char *o, uint64_t v, bool negative, bool quoted)
{
    if (quoted)
        *o++ = '"';
    if (negative)
        *o++ = '-';
    o += digits(v);
    dec(o, v);
    if (quoted)
        *o++ = '"';
    return o;
}

static void number(srv__jw *w, uint64_t v, bool negative, bool quoted)
{
    if (!reserve(w, NUM_MAX))
        return;
    w->len = (size_t)(put_num(w->p + w->len, v, negative, quoted) - w->p);
}

void srv__jw_id(srv__jw *w, uint64_t id)
{
    number(w, id, false, true);
}

/*
 * id quoted at o (room for MS_XID_STRLEN + 2 bytes); returns the end. A page
 * repeats its channel id in every message and a few senders' ids: the last
 * SRV__JW_XIDS formatted ids are kept with their text.
 */
static char *put_xid(srv__jw *w, char *o, ms_id_format f, ms_xid id)
{
    unsigned k = 0;
    while (k < w->nxid && !(ms_xid_eq(w->xid[k], id) && w->xid_fmt[k] == f))
        k++;
    if (k == w->nxid) {
        if (w->nxid < SRV__JW_XIDS)
            w->nxid++;
        else
            k = w->xid_next++ % SRV__JW_XIDS;
        w->xid[k] = id;
        w->xid_fmt[k] = f;
        w->xid_len[k] = (unsigned char)ms_xid_format(f, id, w->xid_text[k]);
    }
    *o++ = '"';
    /* all of the slot (the room is reserved): a fixed-size copy is a few moves, where the
       length-sized one became a `rep movs` that cost more than the rest of the message */
    memcpy(o, w->xid_text[k], MS_XID_STRLEN);
    o += w->xid_len[k];
    *o++ = '"';
    return o;
}

void srv__jw_xid(srv__jw *w, ms_id_format f, ms_xid id)
{
    if (!reserve(w, MS_XID_STRLEN + 2))
        return;
    w->len = (size_t)(put_xid(w, w->p + w->len, f, id) - w->p);
}

void srv__jw_opt_id(srv__jw *w, uint64_t id)
{
    if (id)
        srv__jw_id(w, id);
    else
        srv__jw_lit(w, "null");
}

void srv__jw_i64s(srv__jw *w, int64_t v)
{
    number(w, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0, true);
}

void srv__jw_u64(srv__jw *w, uint64_t v)
{
    number(w, v, false, false);
}

void srv__jw_opt_ms(srv__jw *w, uint64_t ms)
{
    if (ms)
        srv__jw_u64(w, ms);
    else
        srv__jw_lit(w, "null");
}

void srv__jw_bool(srv__jw *w, bool b)
{
    srv__jw_lit(w, b ? "true" : "false");
}

/* A literal at o (its length known at compile time: the copy is a few moves). */
#define PUT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) += sizeof(lit) - 1)

static char *put_cstr(char *o, const char *s)
{
    if (!s) {
        PUT(o, "null");
        return o;
    }
    return put_str(o, s, strlen(s));
}

/* Stored JSON text copied as it is (it starts with `open`), else null. */
static char *put_embedded(char *o, const char *text, size_t len, char open)
{
    if (text && text[0] == open) {
        memcpy(o, text, len);
        return o + len;
    }
    PUT(o, "null");
    return o;
}

static char *put_opt_ms(char *o, uint64_t ms)
{
    if (!ms) {
        PUT(o, "null");
        return o;
    }
    return put_num(o, ms, false, false);
}

static char *put_bool(char *o, bool b)
{
    if (b)
        PUT(o, "true");
    else
        PUT(o, "false");
    return o;
}

/*
 * One message: the room for the longest it can be is reserved once (every
 * string at worst six bytes per byte escaped), then written straight in.
 */
void srv__jw_message(srv__jw *w, ms_id_format f, const store_message *m)
{
    const char *type = store_msg_type_name(m->type);
    const char *source = store_msg_source_name(m->source);
    size_t content_len = m->content ? m->content_len : 0;
    size_t att_len = m->attachments ? strlen(m->attachments) : 0;
    size_t meta_len = m->metadata ? strlen(m->metadata) : 0;
    size_t nonce_len = m->nonce ? strlen(m->nonce) : 0;
    size_t type_len = type ? strlen(type) : 0, source_len = source ? strlen(source) : 0;
    if (!reserve(w, 384 + 2 * MS_XID_STRLEN + 6 * NUM_MAX + att_len + meta_len +
                        6 * (content_len + nonce_len + type_len + source_len)))
        return;
    char *o = w->p + w->len;
    PUT(o, "{\"id\":");
    o = put_num(o, m->id, false, true);
    PUT(o, ",\"channel_id\":");
    o = put_xid(w, o, f, m->channel_id);
    PUT(o, ",\"bucket\":");
    o = put_num(o, m->bucket, false, false);
    PUT(o, ",\"sender_id\":");
    o = put_xid(w, o, f, m->sender_id);
    PUT(o, ",\"type\":");
    o = put_cstr(o, type);
    PUT(o, ",\"source\":");
    o = put_cstr(o, source);
    PUT(o, ",\"content\":");
    o = put_str(o, m->content ? m->content : "", content_len);
    PUT(o, ",\"reply_to\":");
    if (m->reply_to)
        o = put_num(o, m->reply_to, false, true);
    else
        PUT(o, "null");
    PUT(o, ",\"attachments\":");
    o = put_embedded(o, m->attachments, att_len, '[');
    PUT(o, ",\"metadata\":");
    o = put_embedded(o, m->metadata, meta_len, '{');
    PUT(o, ",\"nonce\":");
    o = m->nonce ? put_str(o, m->nonce, nonce_len) : put_cstr(o, NULL);
    PUT(o, ",\"telegram\":");
    if (m->has_telegram) {
        int64_t chat = m->telegram_chat_id, msg = m->telegram_message_id;
        PUT(o, "{\"chat_id\":");
        o = put_num(o, chat < 0 ? 0 - (uint64_t)chat : (uint64_t)chat, chat < 0, true);
        PUT(o, ",\"message_id\":");
        o = put_num(o, msg < 0 ? 0 - (uint64_t)msg : (uint64_t)msg, msg < 0, true);
        PUT(o, "}");
    } else {
        PUT(o, "null");
    }
    PUT(o, ",\"created_at_ms\":");
    o = put_num(o, m->created_at_ms, false, false);
    PUT(o, ",\"is_edited\":");
    o = put_bool(o, m->is_edited);
    PUT(o, ",\"edited_at_ms\":");
    o = put_opt_ms(o, m->edited_at_ms);
    PUT(o, ",\"is_deleted\":");
    o = put_bool(o, m->is_deleted);
    PUT(o, ",\"deleted_at_ms\":");
    o = put_opt_ms(o, m->deleted_at_ms);
    PUT(o, "}");
    w->len = (size_t)(o - w->p);
}
