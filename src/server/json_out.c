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

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv__jw_init(srv__jw *w)
{
    w->p = NULL;
    w->len = w->cap = 0;
    w->oom = false;
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

void srv__jw_str(srv__jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!reserve(w, n * 6 + 2))
        return;
    char *o = w->p + w->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
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
        } else {
            *o++ = (char)c; /* UTF-8 passes through: the store only holds valid UTF-8 */
        }
    }
    *o++ = '"';
    w->len = (size_t)(o - w->p);
}

void srv__jw_cstr(srv__jw *w, const char *s)
{
    if (s)
        srv__jw_str(w, s, strlen(s));
    else
        srv__jw_lit(w, "null");
}

void srv__jw_id(srv__jw *w, uint64_t id)
{
    char b[24];
    int n = snprintf(b, sizeof b, "\"%" PRIu64 "\"", id);
    srv__jw_raw(w, b, (size_t)n);
}

void srv__jw_xid(srv__jw *w, ms_id_format f, ms_xid id)
{
    char b[MS_XID_STRLEN + 2];
    b[0] = '"';
    size_t n = ms_xid_format(f, id, b + 1);
    b[n + 1] = '"';
    srv__jw_raw(w, b, n + 2);
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
    char b[24];
    int n = snprintf(b, sizeof b, "\"%" PRId64 "\"", v);
    srv__jw_raw(w, b, (size_t)n);
}

void srv__jw_u64(srv__jw *w, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%" PRIu64, v);
    srv__jw_raw(w, b, (size_t)n);
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

static void embedded(srv__jw *w, const char *text, char open)
{
    if (text && text[0] == open)
        srv__jw_lit(w, text);
    else
        srv__jw_lit(w, "null");
}

void srv__jw_message(srv__jw *w, ms_id_format f, const store_message *m)
{
    srv__jw_lit(w, "{\"id\":");
    srv__jw_id(w, m->id);
    srv__jw_lit(w, ",\"channel_id\":");
    srv__jw_xid(w, f, m->channel_id);
    srv__jw_lit(w, ",\"bucket\":");
    srv__jw_u64(w, m->bucket);
    srv__jw_lit(w, ",\"sender_id\":");
    srv__jw_xid(w, f, m->sender_id);
    srv__jw_lit(w, ",\"type\":");
    srv__jw_cstr(w, store_msg_type_name(m->type));
    srv__jw_lit(w, ",\"source\":");
    srv__jw_cstr(w, store_msg_source_name(m->source));
    srv__jw_lit(w, ",\"content\":");
    srv__jw_str(w, m->content ? m->content : "", m->content ? m->content_len : 0);
    srv__jw_lit(w, ",\"reply_to\":");
    srv__jw_opt_id(w, m->reply_to);
    srv__jw_lit(w, ",\"attachments\":");
    embedded(w, m->attachments, '[');
    srv__jw_lit(w, ",\"metadata\":");
    embedded(w, m->metadata, '{');
    srv__jw_lit(w, ",\"nonce\":");
    srv__jw_cstr(w, m->nonce);
    srv__jw_lit(w, ",\"telegram\":");
    if (m->has_telegram) {
        srv__jw_lit(w, "{\"chat_id\":");
        srv__jw_i64s(w, m->telegram_chat_id);
        srv__jw_lit(w, ",\"message_id\":");
        srv__jw_i64s(w, m->telegram_message_id);
        srv__jw_lit(w, "}");
    } else {
        srv__jw_lit(w, "null");
    }
    srv__jw_lit(w, ",\"created_at_ms\":");
    srv__jw_u64(w, m->created_at_ms);
    srv__jw_lit(w, ",\"is_edited\":");
    srv__jw_bool(w, m->is_edited);
    srv__jw_lit(w, ",\"edited_at_ms\":");
    srv__jw_opt_ms(w, m->edited_at_ms);
    srv__jw_lit(w, ",\"is_deleted\":");
    srv__jw_bool(w, m->is_deleted);
    srv__jw_lit(w, ",\"deleted_at_ms\":");
    srv__jw_opt_ms(w, m->deleted_at_ms);
    srv__jw_lit(w, "}");
}
