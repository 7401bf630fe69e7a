/* SPDX-License-Identifier: Apache-2.0 */
/* conn.c - one CQL connection: TCP/TLS, handshake, streams, coalesced writes (see conn.h). */
#include "cql/conn.h"

#include "core/error.h"
#include "core/log.h"
#include "cql/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

enum {
    ST_CONNECTING = 0,
    ST_TLS,
    ST_OPTIONS,
    ST_STARTUP,
    ST_AUTH,
    ST_USE,
    ST_REGISTER,
    ST_READY,
    ST_CLOSING,
};

/* Bodies smaller than this go out uncompressed even with LZ4 negotiated
 * (the flag is per frame; LZ4 only makes tiny bodies bigger). */
#define COMPRESS_MIN 512

#define READ_CHUNK 65536

static cql_pending orphan; /* slot marker of an abandoned request */

static void close_handles(cql_conn *c);
static void flush(cql_conn *c);
static bool input_pending(cql_conn *c);
static void hs_fn(cql_pending *p, cql_conn *c, int status, const cql_frame *f);

bool cql__conn_ready(const cql_conn *c)
{
    return c->state == ST_READY;
}

/* ---- streams ------------------------------------------------------------- */

static int grow_streams(cql_conn *c)
{
    int n = c->nslots ? c->nslots * 2 : 128;
    if (n > CQL_MAX_STREAMS)
        n = CQL_MAX_STREAMS;
    if (n <= c->nslots)
        return MS_ERR_UNAVAILABLE;
    cql_pending **s = realloc(c->slots, (size_t)n * sizeof(*s));
    if (!s)
        return MS_ERR_NOMEM;
    c->slots = s;
    int16_t *f = realloc(c->free_ids, (size_t)n * sizeof(*f));
    if (!f)
        return MS_ERR_NOMEM;
    c->free_ids = f;
    for (int i = c->nslots; i < n; i++)
        c->slots[i] = NULL;
    /* push the new ids so the lowest is popped first */
    for (int i = n - 1; i >= c->nslots; i--)
        c->free_ids[c->nfree++] = (int16_t)i;
    c->nslots = n;
    return 0;
}

static int alloc_stream(cql_conn *c)
{
    if (c->nfree == 0) {
        int rc = grow_streams(c);
        if (rc < 0)
            return rc;
    }
    return c->free_ids[--c->nfree];
}

static void free_stream(cql_conn *c, int16_t id)
{
    c->slots[id] = NULL;
    c->free_ids[c->nfree++] = id;
    c->in_flight--;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    cql_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    cql_buf_free(&c->out);
    cql_buf_free(&c->tout);
    cql_buf_free(&c->wbuf);
    cql_buf_free(&c->scratch);
    cql_buf_free(&c->dbuf);
    cql_buf_free(&c->tin);
    free(c->rbuf);
    free(c->slots);
    free(c->free_ids);
    if (c->use_tls)
        cql__tls_free(&c->tls);
    free(c);
}

static void close_handles(cql_conn *c)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&c->tcp, (uv_handle_t *)&c->timer, (uv_handle_t *)&c->prep};
    for (size_t i = 0; i < 3; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], on_handle_closed);
}

void cql__conn_close(cql_conn *c, int status, const char *why)
{
    if (c->state == ST_CLOSING)
        return;
    int was = c->state;
    c->state = ST_CLOSING;
    c->close_status = status;
    snprintf(c->close_why, sizeof(c->close_why), "%s", why ? why : "closed");
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    uv_prepare_stop(&c->prep);
    int fail = status < 0 ? status : MS_ERR_IO;
    if (was == ST_READY && status < 0)
        MS_WARN("cql", "connection to %s lost: %s", c->label, c->close_why);
    /* fail every pending request; callbacks may not touch this connection */
    for (int i = 0; i < c->nslots; i++) {
        cql_pending *p = c->slots[i];
        if (!p)
            continue;
        c->slots[i] = NULL;
        if (p == &orphan)
            continue;
        p->sent = p->gen <= c->wgen;
        p->fn(p, c, fail, NULL);
    }
    c->in_flight = 0;
    c->orphans = 0;
    if (!c->closed_cb_done) {
        c->closed_cb_done = true;
        c->cbs->on_close(c, status, c->close_why);
    }
    close_handles(c);
}

static void fail_conn(cql_conn *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_conn(cql_conn *c, int status, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    cql__conn_close(c, status, why);
}

/* ---- writing ------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    cql_conn *c = req->data;
    c->writing = false;
    c->wbuf.len = 0;
    if (c->state == ST_CLOSING)
        return;
    if (status < 0) {
        fail_conn(c, MS_ERR_IO, "%s: write failed: %s", c->label, uv_strerror(status));
        return;
    }
    flush(c);
}

static void flush(cql_conn *c)
{
    if (c->state == ST_CLOSING || c->writing || c->state == ST_CONNECTING)
        return;
    cql_buf *src;
    if (c->use_tls) {
        if (c->out.len && c->tls.handshake_done) {
            if (cql__tls_write(&c->tls, c->out.data, c->out.len) < 0) {
                fail_conn(c, MS_ERR_IO, "%s: TLS write failed", c->label);
                return;
            }
            c->out.len = 0;
            c->wgen++;
        }
        if (cql__tls_drain(&c->tls, &c->tout) < 0) {
            fail_conn(c, MS_ERR_NOMEM, "%s: out of memory", c->label);
            return;
        }
        src = &c->tout;
    } else {
        src = &c->out;
        if (src->len)
            c->wgen++;
    }
    if (src->len == 0)
        return;
    c->last_write_ms = (int64_t)uv_now(c->loop);
    uv_buf_t b = uv_buf_init((char *)src->data, (unsigned)src->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n >= 0 && (size_t)n == src->len) {
        src->len = 0;
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        fail_conn(c, MS_ERR_IO, "%s: write failed: %s", c->label, uv_strerror(n));
        return;
    }
    if (n < 0)
        n = 0;
    cql_buf t = c->wbuf;
    c->wbuf = *src;
    *src = t;
    src->len = 0;
    b = uv_buf_init((char *)c->wbuf.data + n, (unsigned)(c->wbuf.len - (size_t)n));
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->wbuf.len = 0;
        fail_conn(c, MS_ERR_IO, "%s: write failed: %s", c->label, uv_strerror(rc));
        return;
    }
    c->writing = true;
}

static void on_prepare(uv_prepare_t *h)
{
    cql_conn *c = h->data;
    if (c->out.len || c->tout.len)
        flush(c);
}

static int send_impl(cql_conn *c, cql_pending *p, const uint8_t *frame, size_t len, bool any)
{
    if (c->state == ST_CLOSING || (!any && c->state != ST_READY))
        return MS_ERR_IO;
    if (len < CQL_HEADER_LEN)
        return MS_ERR_INVALID;
    int id = alloc_stream(c);
    if (id < 0)
        return id;
    size_t start = c->out.len;
    cql_buf_append(&c->out, frame, len);
    if (c->out.err) {
        c->out.err = 0;
        c->out.len = start;
        c->free_ids[c->nfree++] = (int16_t)id;
        return MS_ERR_NOMEM;
    }
    uint8_t *h = c->out.data + start;
    h[0] = CQL_PROTO_VERSION;
    h[2] = (uint8_t)((unsigned)id >> 8);
    h[3] = (uint8_t)id;
    uint8_t op = h[4];
    if (c->info.lz4 && c->state >= ST_AUTH && len - CQL_HEADER_LEN >= COMPRESS_MIN &&
        op != CQL_OP_STARTUP && op != CQL_OP_OPTIONS) {
        if (cql__frame_compress(&c->out, start, &c->scratch) < 0) {
            c->out.err = 0;
            c->out.len = start;
            c->free_ids[c->nfree++] = (int16_t)id;
            return MS_ERR_NOMEM;
        }
    }
    c->slots[id] = p;
    c->in_flight++;
    p->stream = (int16_t)id;
    p->gen = c->wgen + 1;
    p->sent = false;
    return 0;
}

int cql__conn_send(cql_conn *c, cql_pending *p, const uint8_t *frame, size_t len)
{
    return send_impl(c, p, frame, len, false);
}

int cql__conn_send_any(cql_conn *c, cql_pending *p, const uint8_t *frame, size_t len)
{
    return send_impl(c, p, frame, len, true);
}

void cql__conn_abandon(cql_conn *c, cql_pending *p)
{
    if (c->state == ST_CLOSING)
        return;
    int16_t id = p->stream;
    if (id < 0 || id >= c->nslots || c->slots[id] != p)
        return;
    c->slots[id] = &orphan;
    c->orphans++;
    if (c->orphans > CQL_MAX_STREAMS / 4)
        fail_conn(c, MS_ERR_TIMEOUT, "%s: %d requests without an answer", c->label, c->orphans);
}

uint8_t *cql__conn_take_body(cql_conn *c, const cql_frame *f)
{
    if (f->len > 0 && c->dbuf.data && f->body == c->dbuf.data) {
        uint8_t *p = c->dbuf.data;
        cql_buf_init(&c->dbuf);
        return p;
    }
    uint8_t *p = malloc(f->len ? f->len : 1);
    if (p && f->len)
        memcpy(p, f->body, f->len);
    return p;
}

/* ---- reading ------------------------------------------------------------- */

static void dispatch(cql_conn *c, const cql_frame_header *h, const uint8_t *body)
{
    cql_frame f = {*h, body, h->length};
    if (h->flags & CQL_FLAG_COMPRESSION) {
        if (!c->info.lz4) {
            fail_conn(c, MS_ERR_IO, "%s: compressed frame without LZ4 negotiated", c->label);
            return;
        }
        cql_buf_reset(&c->dbuf);
        int rc = cql__lz4_decompress(&c->dbuf, body, h->length, c->cfg->max_frame);
        if (rc < 0) {
            fail_conn(c, MS_ERR_IO, "%s: bad LZ4 body (%s)", c->label, ms_err_name(rc));
            return;
        }
        f.body = c->dbuf.data;
        f.len = c->dbuf.len;
    }
    if (h->stream < 0) {
        if (h->opcode != CQL_OP_EVENT)
            return; /* nothing else may come on negative streams: ignore */
        cql_response r;
        cql_event ev;
        if (cql__response_open(h, f.body, f.len, &r) < 0 ||
            cql__event_decode(r.body, r.body_len, &ev) < 0) {
            MS_WARN("cql", "%s: undecodable EVENT ignored", c->label);
            return;
        }
        if (c->cbs->on_event)
            c->cbs->on_event(c, &ev);
        return;
    }
    if (h->stream >= c->nslots || c->slots[h->stream] == NULL) {
        fail_conn(c, MS_ERR_IO, "%s: answer on unknown stream %d", c->label, h->stream);
        return;
    }
    cql_pending *p = c->slots[h->stream];
    if (p == &orphan) {
        c->orphans--;
        free_stream(c, h->stream);
        return;
    }
    free_stream(c, h->stream);
    p->fn(p, c, 0, &f);
}

static void process_input(cql_conn *c)
{
    size_t pos = 0;
    while (c->state != ST_CLOSING) {
        cql_frame_header h;
        size_t flen = 0, need = 0;
        int rc = cql__frame_parse(c->rbuf + pos, c->rlen - pos, (uint32_t)c->cfg->max_frame, &h,
                                  &flen, &need);
        if (rc < 0) {
            fail_conn(c, MS_ERR_IO, "%s: bad frame header (%s)", c->label, ms_err_name(rc));
            return;
        }
        if (flen == 0)
            break;
        if (!(h.version & CQL_PROTO_RESPONSE)) {
            fail_conn(c, MS_ERR_IO, "%s: a request frame came from the server", c->label);
            return;
        }
        dispatch(c, &h, c->rbuf + pos + CQL_HEADER_LEN);
        pos += flen;
    }
    if (c->state == ST_CLOSING)
        return;
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
}

static int reserve_input(cql_conn *c, size_t extra)
{
    if (c->rcap - c->rlen >= extra)
        return 0;
    size_t cap = c->rcap ? c->rcap : READ_CHUNK;
    while (cap - c->rlen < extra)
        cap *= 2;
    uint8_t *p = realloc(c->rbuf, cap);
    if (!p)
        return MS_ERR_NOMEM;
    c->rbuf = p;
    c->rcap = cap;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    cql_conn *c = h->data;
    (void)suggested;
    if (c->use_tls) {
        if (cql_buf_reserve(&c->tin, READ_CHUNK) < 0) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        *buf = uv_buf_init((char *)c->tin.data + c->tin.len, (unsigned)(c->tin.cap - c->tin.len));
        return;
    }
    if (reserve_input(c, READ_CHUNK / 4) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void start_cql_handshake(cql_conn *c);

static void on_read_tls(cql_conn *c, size_t n)
{
    char err[200] = "";
    if (cql__tls_feed(&c->tls, c->tin.data, n) < 0) {
        fail_conn(c, MS_ERR_NOMEM, "%s: out of memory", c->label);
        return;
    }
    if (!c->tls.handshake_done) {
        int rc = cql__tls_handshake(&c->tls, err, sizeof(err));
        if (rc < 0) {
            fail_conn(c, MS_ERR_IO, "%s: %s", c->label, err);
            return;
        }
        flush(c);
        if (rc == 0 || c->state == ST_CLOSING)
            return;
        start_cql_handshake(c);
        if (c->state == ST_CLOSING)
            return;
    }
    /* decrypt into the frame buffer */
    cql_buf plain = {c->rbuf, c->rlen, c->rcap, 0};
    int rc = cql__tls_read(&c->tls, &plain, err, sizeof(err));
    c->rbuf = plain.data;
    c->rlen = plain.len;
    c->rcap = plain.cap;
    if (rc < 0) {
        fail_conn(c, MS_ERR_IO, "%s: %s", c->label, err);
        return;
    }
    flush(c); /* TLS may have something to say (key updates) */
    process_input(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    cql_conn *c = s->data;
    (void)buf;
    if (c->state == ST_CLOSING)
        return;
    if (n < 0) {
        if (n == UV_EOF)
            fail_conn(c, MS_ERR_IO, "%s: the server closed the connection", c->label);
        else if (n == UV_ENOBUFS)
            fail_conn(c, MS_ERR_NOMEM, "%s: out of memory", c->label);
        else
            fail_conn(c, MS_ERR_IO, "%s: read failed: %s", c->label, uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return;
    c->last_read_ms = (int64_t)uv_now(c->loop);
    if (c->use_tls) {
        on_read_tls(c, (size_t)n);
        return;
    }
    c->rlen += (size_t)n;
    process_input(c);
}

/* ---- handshake ----------------------------------------------------------- */

static void hs_send(cql_conn *c, int (*enc)(cql_buf *, cql_conn *))
{
    cql_buf b;
    cql_buf_init(&b);
    int rc = enc(&b, c);
    if (rc == 0)
        rc = cql__conn_send_any(c, &c->hs, b.data, b.len);
    cql_buf_free(&b);
    if (rc < 0)
        fail_conn(c, rc, "%s: cannot send the handshake (%s)", c->label, ms_err_name(rc));
}

static int enc_options(cql_buf *b, cql_conn *c)
{
    (void)c;
    return cql__enc_options(b, 0);
}

static int enc_startup(cql_buf *b, cql_conn *c)
{
    const char *kv[12];
    size_t n = 0;
    kv[n++] = "CQL_VERSION";
    kv[n++] = "3.0.0";
    kv[n++] = "DRIVER_NAME";
    kv[n++] = "msgstore-cql";
    kv[n++] = "DRIVER_VERSION";
    kv[n++] = MSGSTORE_VERSION;
    if (c->info.lz4) {
        kv[n++] = "COMPRESSION";
        kv[n++] = "lz4";
    }
    /* accepted extensions are echoed back (an empty value, as ScyllaDB's drivers send) */
    if (c->info.ext.rate_limit) {
        kv[n++] = "SCYLLA_RATE_LIMIT_ERROR";
        kv[n++] = "";
    }
    if (c->info.ext.tablets_routing) {
        kv[n++] = "TABLETS_ROUTING_V1";
        kv[n++] = "";
    }
    return cql__enc_startup(b, 0, kv, n / 2);
}

static int enc_auth(cql_buf *b, cql_conn *c)
{
    return cql__enc_auth_plain(b, 0, c->cfg->username, c->cfg->password ? c->cfg->password : "");
}

static int enc_use(cql_buf *b, cql_conn *c)
{
    char q[200];
    /* the keyspace name was validated (identifier characters) by the session */
    snprintf(q, sizeof(q), "USE \"%s\"", c->cfg->keyspace);
    cql_query_params p;
    cql__query_params_init(&p);
    return cql__enc_query(b, 0, 0, q, strlen(q), &p);
}

static int enc_register(cql_buf *b, cql_conn *c)
{
    (void)c;
    const char *ev[] = {"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
    return cql__enc_register(b, 0, ev, 3);
}

static void hs_server_error(cql_conn *c, const cql_response *r, const char *step)
{
    cql_error e;
    if (cql__error_decode(r->body, r->body_len, &e) < 0) {
        fail_conn(c, MS_ERR_IO, "%s: undecodable ERROR during %s", c->label, step);
        return;
    }
    cql_status st;
    cql__status_server(&st, &e, c->label, cql__conn_rate_limit_code(c, e.code));
    fail_conn(c, st.code, "%s failed: %s", step, st.message);
}

static void became_ready(cql_conn *c)
{
    c->state = ST_READY;
    uv_timer_stop(&c->timer);
    c->cbs->on_ready(c);
}

/* After STARTUP/AUTH: USE, REGISTER, or ready. */
static void hs_after_auth(cql_conn *c)
{
    if (c->cfg->keyspace && c->cfg->keyspace[0]) {
        c->state = ST_USE;
        hs_send(c, enc_use);
    } else if (c->cfg->register_events) {
        c->state = ST_REGISTER;
        hs_send(c, enc_register);
    } else {
        became_ready(c);
    }
}

static void hs_fn(cql_pending *p, cql_conn *c, int status, const cql_frame *f)
{
    (void)p;
    if (status < 0 || c->state == ST_CLOSING)
        return;
    cql_response r;
    if (cql__response_open(&f->h, f->body, f->len, &r) < 0) {
        fail_conn(c, MS_ERR_IO, "%s: malformed response during the handshake", c->label);
        return;
    }
    int op = f->h.opcode;
    switch (c->state) {
    case ST_OPTIONS: {
        if (op != CQL_OP_SUPPORTED) {
            if (op == CQL_OP_ERROR)
                hs_server_error(c, &r, "OPTIONS");
            else
                fail_conn(c, MS_ERR_IO, "%s: expected SUPPORTED, got %s", c->label,
                          cql__opcode_name(op));
            return;
        }
        cql_multimap mm;
        if (cql__supported_decode(r.body, r.body_len, &mm) < 0) {
            fail_conn(c, MS_ERR_IO, "%s: malformed SUPPORTED", c->label);
            return;
        }
        c->info.lz4 = c->cfg->compression && cql__multimap_has(&mm, "COMPRESSION", "lz4");
        cql__scylla_ext_parse(&mm, &c->info.ext);
        cql_scylla_info si;
        if (cql__scylla_parse(&mm, &si) == 0 && si.present && cql__scylla_sharding_supported(&si)) {
            c->info.scylla = true;
            c->info.shard = si.shard;
            c->info.nr_shards = si.nr_shards;
            c->info.ignore_msb = si.ignore_msb;
            c->info.shard_aware_port = si.shard_aware_port;
            c->info.shard_aware_port_ssl = si.shard_aware_port_ssl;
        }
        c->state = ST_STARTUP;
        hs_send(c, enc_startup);
        return;
    }
    case ST_STARTUP:
        if (op == CQL_OP_READY) {
            c->state = ST_AUTH; /* compression is on from here */
            hs_after_auth(c);
        } else if (op == CQL_OP_AUTHENTICATE) {
            cql_str a = {"", 0};
            cql__authenticate_decode(r.body, r.body_len, &a);
            snprintf(c->info.authenticator, sizeof(c->info.authenticator), "%.*s", (int)a.len,
                     a.ptr);
            c->state = ST_AUTH;
            if (!c->cfg->username || !c->cfg->username[0]) {
                fail_conn(c, MS_ERR_UNAUTHORIZED,
                          "%s: the server requires authentication (%s) and no username is set",
                          c->label, c->info.authenticator);
                return;
            }
            hs_send(c, enc_auth);
        } else if (op == CQL_OP_ERROR) {
            hs_server_error(c, &r, "STARTUP");
        } else {
            fail_conn(c, MS_ERR_IO, "%s: unexpected %s after STARTUP", c->label,
                      cql__opcode_name(op));
        }
        return;
    case ST_AUTH:
        if (op == CQL_OP_AUTH_SUCCESS) {
            hs_after_auth(c);
        } else if (op == CQL_OP_ERROR) {
            hs_server_error(c, &r, "authentication");
        } else {
            fail_conn(c, MS_ERR_UNAUTHORIZED, "%s: unexpected %s during SASL PLAIN", c->label,
                      cql__opcode_name(op));
        }
        return;
    case ST_USE:
        if (op == CQL_OP_RESULT) {
            if (c->cfg->register_events) {
                c->state = ST_REGISTER;
                hs_send(c, enc_register);
            } else {
                became_ready(c);
            }
        } else if (op == CQL_OP_ERROR) {
            hs_server_error(c, &r, "USE keyspace");
        } else {
            fail_conn(c, MS_ERR_IO, "%s: unexpected %s after USE", c->label, cql__opcode_name(op));
        }
        return;
    case ST_REGISTER:
        if (op == CQL_OP_READY)
            became_ready(c);
        else if (op == CQL_OP_ERROR)
            hs_server_error(c, &r, "REGISTER");
        else
            fail_conn(c, MS_ERR_IO, "%s: unexpected %s after REGISTER", c->label,
                      cql__opcode_name(op));
        return;
    default:
        return;
    }
}

static void start_cql_handshake(cql_conn *c)
{
    c->state = ST_OPTIONS;
    c->hs.fn = hs_fn;
    hs_send(c, enc_options);
}

static void on_connect(uv_connect_t *req, int status)
{
    cql_conn *c = req->data;
    if (c->state == ST_CLOSING)
        return;
    if (status < 0) {
        fail_conn(c, MS_ERR_IO, "%s: connect failed: %s", c->label, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 30);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        fail_conn(c, MS_ERR_IO, "%s: read failed: %s", c->label, uv_strerror(rc));
        return;
    }
    c->last_read_ms = c->last_write_ms = (int64_t)uv_now(c->loop);
    if (c->use_tls) {
        c->state = ST_TLS;
        char err[200] = "";
        int hr = cql__tls_handshake(&c->tls, err, sizeof(err));
        if (hr < 0) {
            fail_conn(c, MS_ERR_IO, "%s: %s", c->label, err);
            return;
        }
        flush(c);
        return;
    }
    start_cql_handshake(c);
}

static void on_connect_timeout(uv_timer_t *t)
{
    cql_conn *c = t->data;
    if (c->state > ST_CONNECTING && input_pending(c)) {
        /* the answer is there, the loop was late: give it one more turn */
        uv_timer_start(&c->timer, on_connect_timeout, 100, 0);
        return;
    }
    static const char *names[] = {"TCP connect",    "TLS handshake", "OPTIONS", "STARTUP",
                                  "authentication", "USE keyspace",  "REGISTER"};
    const char *step = c->state < ST_READY ? names[c->state] : "handshake";
    fail_conn(c, MS_ERR_TIMEOUT, "%s: connect timeout after %lld ms (during %s)", c->label,
              (long long)c->cfg->connect_timeout_ms, step);
}

static void on_start_failed(uv_timer_t *t)
{
    cql_conn *c = t->data;
    fail_conn(c, c->close_status, "%s", c->close_why);
}

int cql__conn_new(const cql_conn_cfg *cfg, const cql_conn_cbs *cbs, void *owner,
                  const struct sockaddr *addr, const char *host, uint16_t local_port,
                  cql_conn **out)
{
    *out = NULL;
    cql_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return MS_ERR_NOMEM;
    c->loop = cfg->loop;
    c->cfg = cfg;
    c->cbs = cbs;
    c->owner = owner;
    c->owner_slot = -1;
    c->hs.fn = hs_fn;
    snprintf(c->host, sizeof(c->host), "%s", host);
    int port = addr->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)addr)->sin6_port)
                                           : ntohs(((const struct sockaddr_in *)addr)->sin_port);
    snprintf(c->label, sizeof(c->label), addr->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host,
             port);
    c->state = ST_CONNECTING;
    c->use_tls = cfg->ssl_ctx != NULL;
    if (c->use_tls && cql__tls_start(&c->tls, cfg->ssl_ctx, host, cfg->verify_hostname) < 0) {
        free(c);
        return MS_ERR_NOMEM;
    }
    if (uv_tcp_init(c->loop, &c->tcp) < 0) {
        if (c->use_tls)
            cql__tls_free(&c->tls);
        free(c);
        return MS_ERR_IO;
    }
    c->tcp.data = c;
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    uv_prepare_init(c->loop, &c->prep);
    c->prep.data = c;
    uv_unref((uv_handle_t *)&c->prep);
    uv_prepare_start(&c->prep, on_prepare);
    c->open_handles = 3;
    c->creq.data = c;
    *out = c;

    int rc = 0;
    if (local_port) {
        struct sockaddr_storage local;
        memset(&local, 0, sizeof(local));
        if (addr->sa_family == AF_INET6) {
            struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&local;
            l6->sin6_family = AF_INET6;
            l6->sin6_addr = in6addr_any;
            l6->sin6_port = htons(local_port);
        } else {
            struct sockaddr_in *l4 = (struct sockaddr_in *)&local;
            l4->sin_family = AF_INET;
            l4->sin_addr.s_addr = htonl(INADDR_ANY);
            l4->sin_port = htons(local_port);
        }
        rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&local, 0);
    }
    if (rc == 0)
        rc = uv_tcp_connect(&c->creq, &c->tcp, addr, on_connect);
    if (rc < 0) {
        /* report through on_close like any other failure, but never from
         * inside this call: the owner is still setting up */
        c->close_status = MS_ERR_IO;
        snprintf(c->close_why, sizeof(c->close_why), "%s: connect failed: %s", c->label,
                 uv_strerror(rc));
        uv_timer_start(&c->timer, on_start_failed, 0, 0);
        return 0;
    }
    uv_timer_start(&c->timer, on_connect_timeout, (uint64_t)cfg->connect_timeout_ms, 0);
    return 0;
}

/* ---- heartbeat ------------------------------------------------------------ */

static void hb_fn(cql_pending *p, cql_conn *c, int status, const cql_frame *f)
{
    (void)p;
    (void)f;
    c->hb_busy = false;
    (void)status;
}

/* Bytes waiting in the socket: a loop that did not run for a while (a busy
 * worker, an idle sync session) runs its timers before it reads; the answers
 * may be there already and must not be taken for silence. */
static bool input_pending(cql_conn *c)
{
    uv_os_fd_t fd;
    int n = 0;
    return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

void cql__conn_tick(cql_conn *c, int64_t now_ms, int64_t heartbeat_ms, int64_t idle_timeout_ms)
{
    if (c->state != ST_READY)
        return;
    if (input_pending(c))
        return; /* the poll phase reads it right after the timers */
    if (c->hb_busy && idle_timeout_ms > 0 && now_ms - c->hb_sent_ms > idle_timeout_ms) {
        fail_conn(c, MS_ERR_TIMEOUT, "%s: heartbeat not answered in %lld ms", c->label,
                  (long long)idle_timeout_ms);
        return;
    }
    if (idle_timeout_ms > 0 && c->in_flight > c->orphans + (c->hb_busy ? 1 : 0) &&
        now_ms - c->last_read_ms > idle_timeout_ms) {
        fail_conn(c, MS_ERR_TIMEOUT, "%s: nothing received for %lld ms with requests waiting",
                  c->label, (long long)(now_ms - c->last_read_ms));
        return;
    }
    if (heartbeat_ms > 0 && !c->hb_busy && now_ms - c->last_write_ms >= heartbeat_ms &&
        now_ms - c->last_read_ms >= heartbeat_ms) {
        cql_buf b;
        cql_buf_init(&b);
        c->hb.fn = hb_fn;
        if (cql__enc_options(&b, 0) == 0 && cql__conn_send(c, &c->hb, b.data, b.len) == 0) {
            c->hb_busy = true;
            c->hb_sent_ms = now_ms;
        }
        cql_buf_free(&b);
    }
}

/* ---- fire and forget ------------------------------------------------------------ */

static void simple_fn(cql_pending *p, cql_conn *c, int status, const cql_frame *f)
{
    (void)c;
    (void)status;
    (void)f;
    free(p);
}

void cql__conn_send_simple(cql_conn *c, const char *query)
{
    cql_pending *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->fn = simple_fn;
    cql_buf b;
    cql_buf_init(&b);
    cql_query_params qp;
    cql__query_params_init(&qp);
    if (cql__enc_query(&b, 0, 0, query, strlen(query), &qp) < 0 ||
        cql__conn_send(c, p, b.data, b.len) < 0)
        free(p);
    cql_buf_free(&b);
}

bool cql__conn_rate_limit_code(const cql_conn *c, int32_t code)
{
    return c->info.ext.rate_limit && code == c->info.ext.rate_limit_code;
}
