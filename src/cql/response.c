/* SPDX-License-Identifier: Apache-2.0 */
/*
 * response.c - response frame prefixes (tracing id, warnings, custom
 * payload) and the small response bodies: ERROR, AUTHENTICATE,
 * AUTH_CHALLENGE/SUCCESS, SUPPORTED (string multimap), EVENT.
 */
#include <string.h>
#include <strings.h>

#include "cql/proto.h"
#include "cql/wire.h"

const char *cql_consistency_name(int cl)
{
    switch (cl) {
    case CQL_CONSISTENCY_ANY:
        return "ANY";
    case CQL_CONSISTENCY_ONE:
        return "ONE";
    case CQL_CONSISTENCY_TWO:
        return "TWO";
    case CQL_CONSISTENCY_THREE:
        return "THREE";
    case CQL_CONSISTENCY_QUORUM:
        return "QUORUM";
    case CQL_CONSISTENCY_ALL:
        return "ALL";
    case CQL_CONSISTENCY_LOCAL_QUORUM:
        return "LOCAL_QUORUM";
    case CQL_CONSISTENCY_EACH_QUORUM:
        return "EACH_QUORUM";
    case CQL_CONSISTENCY_SERIAL:
        return "SERIAL";
    case CQL_CONSISTENCY_LOCAL_SERIAL:
        return "LOCAL_SERIAL";
    case CQL_CONSISTENCY_LOCAL_ONE:
        return "LOCAL_ONE";
    }
    return "UNKNOWN";
}

int cql_consistency_parse(const char *name, cql_consistency *out)
{
    if (name == NULL)
        return MS_ERR_INVALID;
    for (int cl = 0; cl <= CQL_CONSISTENCY_LOCAL_ONE; cl++) {
        if (strcasecmp(name, cql_consistency_name(cl)) == 0) {
            *out = (cql_consistency)cl;
            return 0;
        }
    }
    return MS_ERR_INVALID;
}

const char *cql_error_code_name(int32_t code)
{
    switch (code) {
    case CQL_ERR_SERVER:
        return "Server_error";
    case CQL_ERR_PROTOCOL:
        return "Protocol_error";
    case CQL_ERR_BAD_CREDENTIALS:
        return "Bad_credentials";
    case CQL_ERR_UNAVAILABLE:
        return "Unavailable";
    case CQL_ERR_OVERLOADED:
        return "Overloaded";
    case CQL_ERR_IS_BOOTSTRAPPING:
        return "Is_bootstrapping";
    case CQL_ERR_TRUNCATE:
        return "Truncate_error";
    case CQL_ERR_WRITE_TIMEOUT:
        return "Write_timeout";
    case CQL_ERR_READ_TIMEOUT:
        return "Read_timeout";
    case CQL_ERR_READ_FAILURE:
        return "Read_failure";
    case CQL_ERR_FUNCTION_FAILURE:
        return "Function_failure";
    case CQL_ERR_WRITE_FAILURE:
        return "Write_failure";
    case CQL_ERR_CDC_WRITE_FAILURE:
        return "CDC_write_failure";
    case CQL_ERR_CAS_WRITE_UNKNOWN:
        return "CAS_write_unknown";
    case CQL_ERR_SYNTAX:
        return "Syntax_error";
    case CQL_ERR_UNAUTHORIZED:
        return "Unauthorized";
    case CQL_ERR_INVALID:
        return "Invalid";
    case CQL_ERR_CONFIG:
        return "Config_error";
    case CQL_ERR_ALREADY_EXISTS:
        return "Already_exists";
    case CQL_ERR_UNPREPARED:
        return "Unprepared";
    }
    return "Unknown_error";
}

int cql__response_open(const cql_frame_header *h, const uint8_t *body, size_t len,
                       cql_response *out)
{
    memset(out, 0, sizeof *out);
    out->h = *h;
    cql_rd r = cql__rd(body, len);
    if (h->flags & CQL_FLAG_TRACING) {
        if (cql__rd_left(&r) < 16)
            return MS_ERR_INVALID;
        memcpy(out->tracing_id, r.p, 16);
        out->has_tracing = true;
        r.p += 16;
    }
    if (h->flags & CQL_FLAG_WARNING) {
        if (cql__rd_string_list(&r, &out->warning_count, &out->_warnings) < 0)
            return MS_ERR_INVALID;
    }
    if (h->flags & CQL_FLAG_CUSTOM_PAYLOAD) {
        uint16_t n;
        if (cql__rd_short(&r, &n) < 0)
            return MS_ERR_INVALID;
        out->_payload = r.p;
        for (uint16_t i = 0; i < n; i++) {
            cql_str k;
            cql_bytes v;
            if (cql__rd_string(&r, &k) < 0 || cql__rd_bytes(&r, &v) < 0 || v.len == -2)
                return MS_ERR_INVALID;
        }
        out->payload_count = n;
    }
    out->body = r.p;
    out->body_len = cql__rd_left(&r);
    return 0;
}

int cql__response_warning(const cql_response *r, uint16_t i, cql_str *out)
{
    return cql__nth_string(r->_warnings, r->warning_count, i, out);
}

int cql__response_payload(const cql_response *r, uint16_t i, cql_str *key, cql_bytes *value)
{
    if (i >= r->payload_count)
        return MS_ERR_INVALID;
    /* Already validated by cql__response_open: the reads cannot fail. */
    cql_rd rd = {r->_payload, r->body};
    for (uint16_t k = 0;; k++) {
        if (cql__rd_string(&rd, key) < 0 || cql__rd_bytes(&rd, value) < 0)
            return MS_ERR_INVALID;
        if (k == i)
            return 0;
    }
}

int cql_error_arg_type(const cql_error *e, uint16_t i, cql_str *out)
{
    return cql__nth_string(e->_arg_types, e->arg_count, i, out);
}

int cql_schema_change_arg(const cql_schema_change *s, uint16_t i, cql_str *out)
{
    return cql__nth_string(s->_arg_types, s->arg_count, i, out);
}

int cql__error_decode(const uint8_t *body, size_t len, cql_error *e)
{
    memset(e, 0, sizeof *e);
    cql_rd r = cql__rd(body, len);
    if (cql__rd_int(&r, &e->code) < 0 || cql__rd_string(&r, &e->message) < 0)
        return MS_ERR_INVALID;
    int32_t x;
    uint8_t b;
    switch (e->code) {
    case CQL_ERR_UNAVAILABLE:
        if (cql__rd_short(&r, &e->consistency) < 0 || cql__rd_int(&r, &e->required) < 0 ||
            cql__rd_int(&r, &e->alive) < 0)
            return MS_ERR_INVALID;
        break;
    case CQL_ERR_WRITE_TIMEOUT:
        if (cql__rd_short(&r, &e->consistency) < 0 || cql__rd_int(&r, &e->received) < 0 ||
            cql__rd_int(&r, &e->block_for) < 0 || cql__rd_string(&r, &e->write_type) < 0)
            return MS_ERR_INVALID;
        break;
    case CQL_ERR_READ_TIMEOUT:
        if (cql__rd_short(&r, &e->consistency) < 0 || cql__rd_int(&r, &e->received) < 0 ||
            cql__rd_int(&r, &e->block_for) < 0 || cql__rd_byte(&r, &b) < 0)
            return MS_ERR_INVALID;
        e->data_present = b != 0;
        break;
    case CQL_ERR_READ_FAILURE:
        if (cql__rd_short(&r, &e->consistency) < 0 || cql__rd_int(&r, &e->received) < 0 ||
            cql__rd_int(&r, &e->block_for) < 0 || cql__rd_int(&r, &e->num_failures) < 0 ||
            cql__rd_byte(&r, &b) < 0)
            return MS_ERR_INVALID;
        e->data_present = b != 0;
        break;
    case CQL_ERR_WRITE_FAILURE:
        if (cql__rd_short(&r, &e->consistency) < 0 || cql__rd_int(&r, &e->received) < 0 ||
            cql__rd_int(&r, &e->block_for) < 0 || cql__rd_int(&r, &e->num_failures) < 0 ||
            cql__rd_string(&r, &e->write_type) < 0)
            return MS_ERR_INVALID;
        break;
    case CQL_ERR_CAS_WRITE_UNKNOWN:
        if (cql__rd_short(&r, &e->consistency) < 0 || cql__rd_int(&r, &e->received) < 0 ||
            cql__rd_int(&r, &e->block_for) < 0)
            return MS_ERR_INVALID;
        break;
    case CQL_ERR_FUNCTION_FAILURE:
        if (cql__rd_string(&r, &e->function_keyspace) < 0 ||
            cql__rd_string(&r, &e->function_name) < 0 ||
            cql__rd_string_list(&r, &e->arg_count, &e->_arg_types) < 0)
            return MS_ERR_INVALID;
        break;
    case CQL_ERR_ALREADY_EXISTS:
        if (cql__rd_string(&r, &e->keyspace) < 0 || cql__rd_string(&r, &e->table) < 0)
            return MS_ERR_INVALID;
        break;
    case CQL_ERR_UNPREPARED:
        if (cql__rd_short_bytes(&r, &e->unprepared_id) < 0)
            return MS_ERR_INVALID;
        break;
    default:
        (void)x;
        break;
    }
    return 0;
}

int cql__authenticate_decode(const uint8_t *body, size_t len, cql_str *authenticator)
{
    cql_rd r = cql__rd(body, len);
    return cql__rd_string(&r, authenticator);
}

int cql__auth_token_decode(const uint8_t *body, size_t len, cql_bytes *token)
{
    cql_rd r = cql__rd(body, len);
    if (cql__rd_bytes(&r, token) < 0 || token->len == -2)
        return MS_ERR_INVALID;
    return 0;
}

int cql__schema_change_parse(cql_rd *r, cql_schema_change *s)
{
    memset(s, 0, sizeof *s);
    if (cql__rd_string(r, &s->change_type) < 0 || cql__rd_string(r, &s->target) < 0 ||
        cql__rd_string(r, &s->keyspace) < 0)
        return MS_ERR_INVALID;
    if (cql_str_eq(s->target, "KEYSPACE"))
        return 0;
    if (cql_str_eq(s->target, "TABLE") || cql_str_eq(s->target, "TYPE"))
        return cql__rd_string(r, &s->name);
    if (cql_str_eq(s->target, "FUNCTION") || cql_str_eq(s->target, "AGGREGATE")) {
        if (cql__rd_string(r, &s->name) < 0)
            return MS_ERR_INVALID;
        return cql__rd_string_list(r, &s->arg_count, &s->_arg_types);
    }
    return MS_ERR_INVALID;
}

int cql__event_decode(const uint8_t *body, size_t len, cql_event *ev)
{
    memset(ev, 0, sizeof *ev);
    cql_rd r = cql__rd(body, len);
    cql_str type;
    if (cql__rd_string(&r, &type) < 0)
        return MS_ERR_INVALID;
    if (cql_str_eq(type, "SCHEMA_CHANGE")) {
        ev->kind = CQL_EVENT_SCHEMA_CHANGE;
        if (cql__schema_change_parse(&r, &ev->schema) < 0)
            return MS_ERR_INVALID;
        ev->change = ev->schema.change_type;
        return 0;
    }
    if (cql_str_eq(type, "TOPOLOGY_CHANGE"))
        ev->kind = CQL_EVENT_TOPOLOGY_CHANGE;
    else if (cql_str_eq(type, "STATUS_CHANGE"))
        ev->kind = CQL_EVENT_STATUS_CHANGE;
    else
        return MS_ERR_INVALID;
    uint8_t n;
    if (cql__rd_string(&r, &ev->change) < 0 || cql__rd_byte(&r, &n) < 0 || (n != 4 && n != 16) ||
        cql__rd_left(&r) < n)
        return MS_ERR_INVALID;
    memcpy(ev->addr, r.p, n);
    ev->addr_len = n;
    r.p += n;
    return cql__rd_int(&r, &ev->port);
}

int cql__supported_decode(const uint8_t *body, size_t len, cql_multimap *out)
{
    cql_rd r = cql__rd(body, len);
    uint16_t n;
    if (cql__rd_short(&r, &n) < 0)
        return MS_ERR_INVALID;
    out->p = r.p;
    for (uint16_t i = 0; i < n; i++) {
        cql_str k;
        uint16_t c;
        const uint8_t *s;
        if (cql__rd_string(&r, &k) < 0 || cql__rd_string_list(&r, &c, &s) < 0)
            return MS_ERR_INVALID;
    }
    out->end = r.p;
    out->count = n;
    return 0;
}

/* Find key in a validated multimap: its value count and raw values. */
static int mm_find(const cql_multimap *m, const char *key, uint16_t *nv, const uint8_t **vals)
{
    cql_rd r = {m->p, m->end};
    for (uint16_t i = 0; i < m->count; i++) {
        cql_str k;
        if (cql__rd_string(&r, &k) < 0 || cql__rd_string_list(&r, nv, vals) < 0)
            return MS_ERR_INVALID;
        if (cql_str_eq(k, key))
            return 0;
    }
    return MS_ERR_NOT_FOUND;
}

int cql__multimap_get(const cql_multimap *m, const char *key, cql_str *first, uint16_t *nvalues)
{
    uint16_t nv;
    const uint8_t *vals;
    int rc = mm_find(m, key, &nv, &vals);
    if (rc < 0)
        return rc;
    if (nvalues)
        *nvalues = nv;
    if (first) {
        first->ptr = "";
        first->len = 0;
        if (nv)
            cql__nth_string(vals, nv, 0, first);
    }
    return 0;
}

int cql__multimap_value(const cql_multimap *m, const char *key, uint16_t j, cql_str *out)
{
    uint16_t nv;
    const uint8_t *vals;
    int rc = mm_find(m, key, &nv, &vals);
    if (rc < 0)
        return rc;
    return j < nv ? cql__nth_string(vals, nv, j, out) : MS_ERR_NOT_FOUND;
}

bool cql__multimap_has(const cql_multimap *m, const char *key, const char *val)
{
    uint16_t nv;
    const uint8_t *vals;
    if (mm_find(m, key, &nv, &vals) < 0)
        return false;
    for (uint16_t j = 0; j < nv; j++) {
        cql_str s;
        if (cql__nth_string(vals, nv, j, &s) == 0 && cql_str_eq(s, val))
            return true;
    }
    return false;
}
