/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_json.c - input validation and the JSON shapes of the API.
 *
 * Message ids travel as decimal strings ("1234567890123456789"): JavaScript
 * numbers lose precision past 2^53. Channel and user ids are strings in the
 * store's format: a UUID (canonical lower case out, either case in) or a
 * decimal integer. On input a JSON integer is accepted for integer ids too.
 * Malformed input (bad JSON, a bad id in the path or query, a channel or user
 * id field that is not an id of the store's format) is 400 invalid_argument
 * naming the parameter or field; a well-formed body whose fields are missing,
 * of the wrong type or unknown is 422 unprocessable. Every validator answers the request
 * itself and returns nonzero, so handlers just return.
 */
#include "server/server_internal.h"
#include "core/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t srv__unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Parses a decimal integer that must use the whole string. */
static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    if (strlen(s) > 20)
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || (s[0] == '-' && s[1] == '\0'))
        return false;
    *out = v;
    return true;
}

static bool parse_id(const char *s, uint64_t *out)
{
    int64_t v;
    if (!s || *s == '-' || !parse_i64(s, &v) || v < 1)
        return false;
    *out = (uint64_t)v;
    return true;
}

#define ID_RANGE "a decimal id from 1 to 9223372036854775807"
#define ID_UUID  "a UUID (8-4-4-4-12 hexadecimal digits, not the nil UUID)"

static const char *xid_expected(ms_id_format f)
{
    return f == MS_ID_UUID ? ID_UUID : ID_RANGE;
}

bool srv__parse_xid(ms_id_format f, const char *text, ms_xid *out)
{
    if (!text)
        return false;
    if (f == MS_ID_INT64) { /* as message ids: leading zeros are tolerated */
        uint64_t v;
        if (!parse_id(text, &v))
            return false;
        *out = ms_xid_int(v);
        return true;
    }
    return ms_xid_parse(f, text, strlen(text), out) == 0;
}

int srv__path_xid(const srv *s, http_request *r, const char *name, ms_xid *out)
{
    size_t len = 0;
    const char *v = http_request_param(r, name, &len);
    if (!v || strlen(v) != len || !srv__parse_xid(s->idf, v, out)) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "%s: expected %s", name,
                           xid_expected(s->idf));
        return -1;
    }
    return 0;
}

int srv__query_xid(const srv *s, http_request *r, const char *name, ms_xid *out, bool *present)
{
    const char *v = http_request_query(r, name);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!srv__parse_xid(s->idf, v, out)) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "query %s: expected %s", name,
                           xid_expected(s->idf));
        return -1;
    }
    return 0;
}

int srv__path_id(http_request *r, const char *name, uint64_t *out)
{
    size_t len = 0;
    const char *v = http_request_param(r, name, &len);
    if (!v || strlen(v) != len || !parse_id(v, out)) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "%s: expected " ID_RANGE, name);
        return -1;
    }
    return 0;
}

int srv__path_i64(http_request *r, const char *name, bool nonzero, int64_t min, int64_t *out)
{
    size_t len = 0;
    const char *v = http_request_param(r, name, &len);
    if (!v || strlen(v) != len || !parse_i64(v, out) || (nonzero && *out == 0) || *out < min) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                           "%s: expected a decimal integer%s%s", name, nonzero ? ", not 0" : "",
                           min > 0 ? ", at least 1" : "");
        return -1;
    }
    return 0;
}

int srv__query_id(http_request *r, const char *name, uint64_t *out, bool *present)
{
    const char *v = http_request_query(r, name);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!parse_id(v, out)) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "query %s: expected " ID_RANGE,
                           name);
        return -1;
    }
    return 0;
}

int srv__query_limit(http_request *r, int *out)
{
    const char *v = http_request_query(r, "limit");
    int64_t n;
    *out = STORE_LIMIT_DEFAULT;
    if (!v)
        return 0;
    if (!parse_i64(v, &n) || n < 1 || n > STORE_PAGE_LIMIT_MAX) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                           "query limit: expected an integer from 1 to %d", STORE_PAGE_LIMIT_MAX);
        return -1;
    }
    *out = (int)n;
    return 0;
}

json_t *srv__body(http_request *r, bool required, const char *const *allowed)
{
    http_str b = http_request_body(r);
    size_t n = b.len;
    while (n && (b.base[n - 1] == ' ' || b.base[n - 1] == '\n' || b.base[n - 1] == '\r' ||
                 b.base[n - 1] == '\t'))
        n--;
    if (n == 0) {
        if (required) {
            http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                               "a JSON object is required as the request body");
            return NULL;
        }
        return json_object();
    }
    json_error_t e;
    json_t *j = json_loadb(b.base, b.len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                           "the body is not valid JSON: %s at line %d, column %d", e.text, e.line,
                           e.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "the body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val)
    {
        bool known = false;
        for (const char *const *a = allowed; a && *a; a++)
            if (strcmp(*a, key) == 0)
                known = true;
        if (!known) {
            char k[64];
            snprintf(k, sizeof k, "%s", key);
            json_decref(j);
            http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE), "unknown field \"%s\"",
                               k);
            return NULL;
        }
    }
    return j;
}

static int field_missing(http_request *r, const char *name)
{
    http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE), "field %s is required", name);
    return -1;
}

int srv__field_id(http_request *r, json_t *o, const char *name, bool required, uint64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) {
        *out = 0;
        return required ? field_missing(r, name) : 0;
    }
    if (json_is_string(v) && parse_id(json_string_value(v), out))
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 1) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE), "field %s: expected " ID_RANGE,
                       name);
    return -1;
}

int srv__field_xid(const srv *s, http_request *r, json_t *o, const char *name, bool required,
                   ms_xid *out)
{
    json_t *v = json_object_get(o, name);
    *out = (ms_xid){0, 0};
    if (!v || json_is_null(v))
        return required ? field_missing(r, name) : 0;
    if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
        srv__parse_xid(s->idf, json_string_value(v), out))
        return 0;
    if (s->idf == MS_ID_INT64 && json_is_integer(v) && json_integer_value(v) >= 1) {
        *out = ms_xid_int((uint64_t)json_integer_value(v));
        return 0;
    }
    http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "field %s: expected %s", name,
                       xid_expected(s->idf));
    return -1;
}

int srv__field_i64(http_request *r, json_t *o, const char *name, bool required, int64_t min,
                   bool nonzero, int64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) {
        *out = 0;
        return required ? field_missing(r, name) : 0;
    }
    bool ok = false;
    if (json_is_string(v))
        ok = parse_i64(json_string_value(v), out);
    else if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        ok = true;
    }
    if (!ok || *out < min || (nonzero && *out == 0)) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                           "field %s: expected a 64-bit integer (as a string or a number)%s%s",
                           name, nonzero ? ", not 0" : "", min >= 0 ? ", not negative" : "");
        return -1;
    }
    return 0;
}

int srv__field_str(http_request *r, json_t *o, const char *name, bool required, const char **out,
                   size_t *len)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) {
        *out = NULL;
        if (len)
            *len = 0;
        return required ? field_missing(r, name) : 0;
    }
    if (!json_is_string(v)) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE), "field %s: expected a string",
                           name);
        return -1;
    }
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    if (memchr(*out, '\0', json_string_length(v))) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                           "field %s: must not contain NUL characters", name);
        return -1;
    }
    return 0;
}

int srv__field_u64ms(http_request *r, json_t *o, const char *name, uint64_t *out)
{
    json_t *v = json_object_get(o, name);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                           "field %s: expected a Unix time in milliseconds", name);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

json_t *srv__id(uint64_t id)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRIu64, id);
    return json_string(b);
}

json_t *srv__xid(const srv *s, ms_xid id)
{
    char b[MS_XID_STRLEN];
    ms_xid_format(s->idf, id, b);
    return json_string(b);
}

json_t *srv__i64(int64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRId64, v);
    return json_string(b);
}

static json_t *opt_id(uint64_t id)
{
    return id ? srv__id(id) : json_null();
}

static json_t *opt_ms(uint64_t ms)
{
    return ms ? json_integer((json_int_t)ms) : json_null();
}

static json_t *str_or_null(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    return j ? j : json_null();
}

json_t *srv__pin_json(const srv *s, const store_pin_entry *p)
{
    return json_pack("{s:o,s:o,s:o,s:I,s:o,s:o}", "channel_id", srv__xid(s, p->channel_id),
                     "message_id", srv__id(p->message_id), "pinned_by", srv__xid(s, p->pinned_by),
                     "pinned_at_ms", (json_int_t)p->pinned_at_ms, "content_preview",
                     str_or_null(p->content_preview), "sender_id",
                     ms_xid_is_none(p->sender_id) ? json_null() : srv__xid(s, p->sender_id));
}

json_t *srv__channel_json(const srv *s, const store_channel *c)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:I,s:o}", "channel_id", srv__xid(s, c->channel_id),
                     "name", str_or_null(c->name), "type", str_or_null(c->type), "created_at_ms",
                     opt_ms(c->created_at_ms), "last_message_id", opt_id(c->last_message_id),
                     "message_count", (json_int_t)c->message_count, "updated_at_ms",
                     opt_ms(c->updated_at_ms));
}

json_t *srv__sync_json(const srv *s, const store_sync_state *st)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "channel_id", srv__xid(s, st->channel_id),
                     "telegram_chat_id", srv__i64(st->telegram_chat_id), "last_synced_message_id",
                     srv__i64(st->last_synced_message_id), "direction",
                     str_or_null(store_sync_direction_name(st->direction)), "last_sync_at_ms",
                     opt_ms(st->last_sync_at_ms), "created_at_ms", opt_ms(st->created_at_ms));
}
