/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster.c - the control connection: finds the cluster from the contact
 * points, reads system.local, system.peers and system_schema.keyspaces,
 * registers for TOPOLOGY_CHANGE / STATUS_CHANGE / SCHEMA_CHANGE and keeps the
 * session's hosts, ring and keyspaces current; waits for schema agreement
 * after DDL.
 */
#include "cql/session.h"

#include "core/error.h"
#include "core/log.h"
#include "cql/retry.h"
#include "cql/status.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    JOB_LOCAL = 1,
    JOB_PEERS,
    JOB_KEYSPACES,
    JOB_SCHEMA_LOCAL,
    JOB_SCHEMA_PEERS,
};

#define MAX_JOBS                  16
#define REFRESH_DELAY_MS          1000
#define KEYSPACE_REFRESH_DELAY_MS 200
#define SCHEMA_POLL_MS            200

typedef struct cand {
    struct sockaddr_storage sa;
    char addr[48];
    int port;
} cand;

typedef struct schema_waiter {
    cql_request *r;
    void *box;
} schema_waiter;

struct cql_control {
    cql_session *s;
    /* contact points and candidates */
    char **cp_hosts;
    int *cp_ports;
    int ncp;
    int resolve_i;
    uv_getaddrinfo_t gai;
    bool resolving;
    cand *cands;
    int ncands, cap_cands, next_cand;
    cand *contacts; /* the contact points as first resolved */
    int ncontacts;
    char errors[400];
    /* the connection */
    cql_conn *conn;
    char addr[48];
    int port;
    bool initialized; /* the first metadata round finished */
    bool round_running;
    bool closing;
    /* jobs: one query at a time */
    int jobs[MAX_JOBS];
    int njobs;
    int job; /* running, 0 = none */
    cql_pending q;
    cql_buf frame;
    /* refresh debounce and reconnection */
    cql_tq_node refresh;
    bool need_topology, need_keyspaces;
    cql_tq_node reconnect;
    int reconnect_attempt;
    /* schema agreement */
    schema_waiter *sw;
    int nsw, cap_sw;
    bool sw_running;
    int64_t sw_deadline;
    cql_tq_node sw_poll;
    char sw_local[37];
    /* seen hosts during a topology round */
    uint8_t *seen;
    size_t nseen;
};

static void ctl_connect_next(cql_control *c);
static void run_jobs(cql_control *c);
static void ctl_on_ready(cql_conn *conn);
static void ctl_on_close(cql_conn *conn, int status, const char *why);
static void ctl_on_event(cql_conn *conn, const cql_event *ev);
static const cql_conn_cbs ctl_cbs = {ctl_on_ready, ctl_on_close, ctl_on_event};

bool cql__cluster_ready(const cql_session *s)
{
    return s->ctl && s->ctl->initialized;
}

/* ---- contact points ------------------------------------------------------------- */

static int parse_contact_points(cql_control *c, const char *list, int default_port)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *start = p, *end;
        int port = default_port;
        char host[256];
        if (*p == '[') { /* [v6]:port */
            const char *rb = strchr(p, ']');
            if (!rb)
                return MS_ERR_INVALID;
            snprintf(host, sizeof(host), "%.*s", (int)(rb - p - 1), p + 1);
            p = rb + 1;
            if (*p == ':')
                port = atoi(++p);
            while (*p && *p != ',')
                p++;
        } else {
            end = p;
            while (*end && *end != ',' && *end != ' ')
                end++;
            const char *colon = memchr(start, ':', (size_t)(end - start));
            const char *colon2 = colon ? memchr(colon + 1, ':', (size_t)(end - colon - 1)) : NULL;
            if (colon && !colon2) {
                snprintf(host, sizeof(host), "%.*s", (int)(colon - start), start);
                port = atoi(colon + 1);
            } else {
                snprintf(host, sizeof(host), "%.*s", (int)(end - start), start);
            }
            p = end;
        }
        if (port < 1 || port > 65535 || !host[0])
            return MS_ERR_INVALID;
        char **nh = realloc(c->cp_hosts, (size_t)(c->ncp + 1) * sizeof(*nh));
        if (!nh)
            return MS_ERR_NOMEM;
        c->cp_hosts = nh;
        int *np = realloc(c->cp_ports, (size_t)(c->ncp + 1) * sizeof(*np));
        if (!np)
            return MS_ERR_NOMEM;
        c->cp_ports = np;
        c->cp_hosts[c->ncp] = strdup(host);
        if (!c->cp_hosts[c->ncp])
            return MS_ERR_NOMEM;
        c->cp_ports[c->ncp++] = port;
    }
    return c->ncp > 0 ? 0 : MS_ERR_INVALID;
}

static void add_cand(cql_control *c, const struct sockaddr *sa)
{
    char addr[48];
    int port;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
        port = ntohs(a->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
        port = ntohs(a->sin6_port);
    } else {
        return;
    }
    for (int i = 0; i < c->ncands; i++)
        if (c->cands[i].port == port && strcmp(c->cands[i].addr, addr) == 0)
            return;
    if (c->ncands == c->cap_cands) {
        int cap = c->cap_cands ? c->cap_cands * 2 : 8;
        cand *n = realloc(c->cands, (size_t)cap * sizeof(*n));
        if (!n)
            return;
        c->cands = n;
        c->cap_cands = cap;
    }
    cand *k = &c->cands[c->ncands++];
    memset(k, 0, sizeof(*k));
    memcpy(&k->sa, sa,
           sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    snprintf(k->addr, sizeof(k->addr), "%s", addr);
    k->port = port;
}

static void append_error(cql_control *c, const char *msg)
{
    size_t l = strlen(c->errors);
    if (l < sizeof(c->errors) - 8)
        snprintf(c->errors + l, sizeof(c->errors) - l, "%s%s", l ? "; " : "", msg);
}

static void resolve_next(cql_control *c);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    cql_control *c = req->data;
    c->resolving = false;
    if (c->closing) {
        /* the session closed while resolving: the control is ours to free */
        uv_freeaddrinfo(res);
        free(c);
        return;
    }
    if (status < 0) {
        char m[300];
        snprintf(m, sizeof(m), "%s: cannot resolve: %s", c->cp_hosts[c->resolve_i],
                 uv_strerror(status));
        append_error(c, m);
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        struct sockaddr_storage sa;
        memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
        if (sa.ss_family == AF_INET)
            ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)c->cp_ports[c->resolve_i]);
        else if (sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)c->cp_ports[c->resolve_i]);
        add_cand(c, (struct sockaddr *)&sa);
    }
    uv_freeaddrinfo(res);
    c->resolve_i++;
    resolve_next(c);
}

static void resolve_next(cql_control *c)
{
    while (c->resolve_i < c->ncp) {
        const char *h = c->cp_hosts[c->resolve_i];
        int port = c->cp_ports[c->resolve_i];
        struct sockaddr_storage sa;
        memset(&sa, 0, sizeof(sa));
        if (uv_ip4_addr(h, port, (struct sockaddr_in *)&sa) == 0 ||
            uv_ip6_addr(h, port, (struct sockaddr_in6 *)&sa) == 0) {
            add_cand(c, (struct sockaddr *)&sa);
            c->resolve_i++;
            continue;
        }
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        c->gai.data = c;
        if (uv_getaddrinfo(c->s->loop, &c->gai, on_resolved, h, NULL, &hints) == 0) {
            c->resolving = true;
            return;
        }
        c->resolve_i++;
    }
    if (!c->contacts && c->ncands > 0) {
        c->contacts = malloc((size_t)c->ncands * sizeof(cand));
        if (c->contacts) {
            memcpy(c->contacts, c->cands, (size_t)c->ncands * sizeof(cand));
            c->ncontacts = c->ncands;
        }
    }
    c->next_cand = 0;
    ctl_connect_next(c);
}

/* ---- connecting --------------------------------------------------------------------- */

static void fail_connect(cql_control *c)
{
    cql_status st;
    cql__status_set(&st, MS_ERR_UNAVAILABLE, NULL, "cannot reach any contact point (%s)",
                    c->errors[0] ? c->errors : "none given");
    c->s->cluster_listener->on_connect_done(c->s, &st);
}

static void ctl_reconnect_fire(cql_tq_node *n);

static void schedule_ctl_reconnect(cql_control *c)
{
    cql_session *s = c->s;
    if (c->closing || s->state >= CQL_S_CLOSING || cql__tq_queued(&c->reconnect))
        return;
    cql_backoff b = s->o.reconnect;
    b.max_attempts = 0; /* the control connection never gives up */
    if (b.kind == CQL_BACKOFF_CONSTANT && b.base_ms <= 0)
        b.base_ms = 1000;
    int64_t d = cql__backoff_delay(&b, c->reconnect_attempt++, &s->rng);
    cql__tq_add(&s->tq, &c->reconnect, (uint64_t)cql__now(s) + (uint64_t)(d < 0 ? 1000 : d),
                ctl_reconnect_fire);
}

static void ctl_connect_next(cql_control *c)
{
    cql_session *s = c->s;
    if (c->closing || s->state >= CQL_S_CLOSING)
        return;
    while (c->next_cand < c->ncands) {
        cand *k = &c->cands[c->next_cand++];
        cql_conn *conn;
        if (cql__conn_new(&s->control_cfg, &ctl_cbs, c, (const struct sockaddr *)&k->sa, k->addr, 0,
                          &conn) == 0) {
            c->conn = conn;
            snprintf(c->addr, sizeof(c->addr), "%s", k->addr);
            c->port = k->port;
            return;
        }
    }
    /* every candidate failed */
    if (!c->initialized) {
        fail_connect(c);
        return;
    }
    MS_WARN("cql", "control connection: no host reachable (%s); retrying", c->errors);
    schedule_ctl_reconnect(c);
}

static void ctl_reconnect_fire(cql_tq_node *n)
{
    cql_control *c = (cql_control *)((char *)n - offsetof(cql_control, reconnect));
    cql_session *s = c->s;
    /* known hosts that are up first (local DC first), then the contact points */
    c->ncands = 0;
    c->errors[0] = '\0';
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < s->nhosts; i++) {
            cql_host *h = s->hosts[i];
            if (h->removed || (s->o.only_contact_points && !h->contact))
                continue;
            bool take = pass == 0 ? (h->up && h->local) : pass == 1 ? h->up : true;
            if (take)
                add_cand(c, (const struct sockaddr *)&h->sa);
        }
    c->resolve_i = 0;
    resolve_next(c);
}

void cql__cluster_reconnect_now(cql_session *s)
{
    cql_control *c = s->ctl;
    /* only while waiting out the backoff: not while connecting or resolving */
    if (!c || c->closing || s->state >= CQL_S_CLOSING || !cql__tq_queued(&c->reconnect))
        return;
    c->reconnect_attempt = 0;
    cql__tq_add(&s->tq, &c->reconnect, (uint64_t)cql__now(s), ctl_reconnect_fire);
}

/* ---- jobs ---------------------------------------------------------------------------- */

static void push_job(cql_control *c, int job)
{
    for (int i = 0; i < c->njobs; i++)
        if (c->jobs[i] == job)
            return;
    if (c->njobs < MAX_JOBS)
        c->jobs[c->njobs++] = job;
}

static const char *job_query(int job)
{
    switch (job) {
    case JOB_LOCAL:
        return "SELECT data_center, rack, host_id, tokens, release_version, schema_version, "
               "partitioner FROM system.local WHERE key='local'";
    case JOB_PEERS:
        return "SELECT peer, rpc_address, data_center, rack, host_id, tokens, release_version, "
               "schema_version FROM system.peers";
    case JOB_KEYSPACES:
        return "SELECT keyspace_name, replication FROM system_schema.keyspaces";
    case JOB_SCHEMA_LOCAL:
        return "SELECT schema_version FROM system.local WHERE key='local'";
    case JOB_SCHEMA_PEERS:
        return "SELECT peer, rpc_address, schema_version FROM system.peers";
    }
    return NULL;
}

static void job_done(cql_control *c, int job, cql_result *res, const cql_status *st);

static void job_fn(cql_pending *p, cql_conn *conn, int status, const cql_frame *f)
{
    cql_control *c = (cql_control *)((char *)p - offsetof(cql_control, q));
    int job = c->job;
    c->job = 0;
    cql_status st;
    cql__status_ok(&st);
    if (status < 0) {
        cql__status_set(&st, status, c->addr, "control connection lost");
        job_done(c, job, NULL, &st);
        return;
    }
    cql_response resp;
    if (cql__response_open(&f->h, f->body, f->len, &resp) < 0) {
        cql__status_set(&st, MS_ERR_IO, c->addr, "malformed response");
        job_done(c, job, NULL, &st);
        run_jobs(c);
        return;
    }
    if (f->h.opcode == CQL_OP_ERROR) {
        cql_error e;
        if (cql__error_decode(resp.body, resp.body_len, &e) == 0)
            cql__status_server(&st, &e, conn->label, cql__conn_rate_limit_code(conn, e.code));
        else
            cql__status_set(&st, MS_ERR_IO, c->addr, "undecodable ERROR");
        job_done(c, job, NULL, &st);
        run_jobs(c);
        return;
    }
    cql_result res;
    memset(&res, 0, sizeof(res));
    if (f->h.opcode != CQL_OP_RESULT ||
        cql__result_decode(&res, resp.body, resp.body_len, NULL, NULL) < 0) {
        cql_result_free(&res);
        cql__status_set(&st, MS_ERR_IO, c->addr, "undecodable RESULT");
        job_done(c, job, NULL, &st);
        run_jobs(c);
        return;
    }
    job_done(c, job, &res, &st);
    cql_result_free(&res);
    run_jobs(c);
}

static void run_jobs(cql_control *c)
{
    if (c->job || c->njobs == 0 || !c->conn || !cql__conn_ready(c->conn) || c->closing)
        return;
    int job = c->jobs[0];
    memmove(c->jobs, c->jobs + 1, (size_t)(c->njobs - 1) * sizeof(int));
    c->njobs--;
    const char *q = job_query(job);
    cql_query_params p;
    cql__query_params_init(&p);
    p.consistency = CQL_CONSISTENCY_ONE;
    cql_buf_reset(&c->frame);
    c->q.fn = job_fn;
    int rc = cql__enc_query(&c->frame, 0, 0, q, strlen(q), &p);
    if (rc == 0)
        rc = cql__conn_send(c->conn, &c->q, c->frame.data, c->frame.len);
    if (rc < 0) {
        cql__conn_close(c->conn, rc, "control connection: cannot send a query");
        return;
    }
    c->job = job;
}

/* ---- rows -------------------------------------------------------------------------------- */

static void get_text(cql_result *r, int col, char *out, size_t cap)
{
    cql_str s;
    out[0] = '\0';
    if (col >= 0 && cql_row_get_text(r, col, &s) == 0)
        snprintf(out, cap, "%.*s", (int)s.len, s.ptr);
}

static void get_uuid(cql_result *r, int col, char out[37])
{
    uint8_t u[16];
    out[0] = '\0';
    if (col >= 0 && cql_row_get_uuid(r, col, u) == 0)
        cql_uuid_format(u, out);
}

static bool get_inet(cql_result *r, int col, char *out, size_t cap)
{
    uint8_t a[16];
    size_t n;
    out[0] = '\0';
    if (col < 0 || cql_row_get_inet(r, col, a, &n) != 0)
        return false;
    return inet_ntop(n == 4 ? AF_INET : AF_INET6, a, out, (socklen_t)cap) != NULL;
}

static int get_tokens(cql_result *r, int col, int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cql_bytes raw;
    if (col < 0 || cql_row_raw(r, col, &raw) != 0 || raw.len < 0)
        return 0;
    cql_coll_iter it;
    uint32_t count;
    if (cql_coll_begin(&it, raw, false, &count) != 0)
        return MS_ERR_INVALID;
    int64_t *t = malloc((count ? count : 1) * sizeof(int64_t));
    if (!t)
        return MS_ERR_NOMEM;
    size_t k = 0;
    cql_bytes e;
    while (k < count && cql_coll_next(&it, &e) == 0) {
        char buf[32];
        if (e.len <= 0 || e.len >= (int32_t)sizeof(buf))
            continue;
        memcpy(buf, e.ptr, (size_t)e.len);
        buf[e.len] = '\0';
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0')
            t[k++] = v;
    }
    *out = t;
    *n = k;
    return 0;
}

static bool is_contact(const cql_control *c, const cql_host *h)
{
    for (int i = 0; i < c->ncontacts; i++)
        if (c->contacts[i].port == h->port && strcmp(c->contacts[i].addr, h->addr) == 0)
            return true;
    return false;
}

static void fill_host(cql_host *h, cql_result *r, int c_dc, int c_rack, int c_id, int c_tokens,
                      int c_rel, int c_schema)
{
    get_text(r, c_dc, h->dc, sizeof(h->dc));
    get_text(r, c_rack, h->rack, sizeof(h->rack));
    get_uuid(r, c_id, h->host_id);
    get_text(r, c_rel, h->release, sizeof(h->release));
    get_uuid(r, c_schema, h->schema_version);
    int64_t *toks;
    size_t n;
    if (get_tokens(r, c_tokens, &toks, &n) == 0) {
        free(h->tokens);
        h->tokens = toks;
        h->ntokens = n;
    }
}

static void mark_seen(cql_control *c, cql_host *h)
{
    if (h->idx >= c->nseen) {
        size_t n = h->idx + 16;
        uint8_t *s = realloc(c->seen, n);
        if (!s)
            return;
        memset(s + c->nseen, 0, n - c->nseen);
        c->seen = s;
        c->nseen = n;
    }
    c->seen[h->idx] = 1;
}

static void apply_local(cql_control *c, cql_result *r)
{
    cql_session *s = c->s;
    if (c->seen)
        memset(c->seen, 0, c->nseen);
    if (cql_result_next_row(r) != 0)
        return;
    cql_host *h = cql__host_add(s, c->addr, c->port);
    if (!h)
        return;
    bool was_removed = h->removed;
    h->removed = false;
    h->contact = h->contact || is_contact(c, h);
    fill_host(h, r, cql_result_column_index(r, "data_center"), cql_result_column_index(r, "rack"),
              cql_result_column_index(r, "host_id"), cql_result_column_index(r, "tokens"),
              cql_result_column_index(r, "release_version"),
              cql_result_column_index(r, "schema_version"));
    mark_seen(c, h);
    if (!s->local_dc && h->dc[0]) {
        s->local_dc = strdup(h->dc);
        MS_INFO("cql", "local DC: %s (from %s)", h->dc, h->label);
    }
    if (was_removed)
        s->cluster_listener->on_host_event(s, h, CQL_HOST_ADDED);
}

static void apply_peers(cql_control *c, cql_result *r)
{
    cql_session *s = c->s;
    int c_peer = cql_result_column_index(r, "peer");
    int c_rpc = cql_result_column_index(r, "rpc_address");
    int c_dc = cql_result_column_index(r, "data_center");
    int c_rack = cql_result_column_index(r, "rack");
    int c_id = cql_result_column_index(r, "host_id");
    int c_tok = cql_result_column_index(r, "tokens");
    int c_rel = cql_result_column_index(r, "release_version");
    int c_sch = cql_result_column_index(r, "schema_version");
    while (cql_result_next_row(r) == 0) {
        char addr[48];
        if (!get_inet(r, c_rpc, addr, sizeof(addr)) || strcmp(addr, "0.0.0.0") == 0 ||
            strcmp(addr, "::") == 0) {
            if (!get_inet(r, c_peer, addr, sizeof(addr)))
                continue;
        }
        bool is_new = cql__host_find(s, addr, s->o.port) == NULL;
        cql_host *h = cql__host_add(s, addr, s->o.port);
        if (!h)
            continue;
        bool was_removed = h->removed;
        h->removed = false;
        h->contact = h->contact || is_contact(c, h);
        fill_host(h, r, c_dc, c_rack, c_id, c_tok, c_rel, c_sch);
        mark_seen(c, h);
        if ((is_new || was_removed) && c->initialized) {
            MS_INFO("cql", "host %s added (%s)", h->label, h->dc);
            s->cluster_listener->on_host_event(s, h, CQL_HOST_ADDED);
        }
    }
    /* hosts not listed any more left the cluster */
    for (size_t i = 0; i < s->nhosts; i++) {
        cql_host *h = s->hosts[i];
        if (h->removed || (i < c->nseen && c->seen[i]))
            continue;
        h->removed = true;
        MS_INFO("cql", "host %s removed", h->label);
        s->cluster_listener->on_host_event(s, h, CQL_HOST_REMOVED);
    }
}

static void apply_keyspaces(cql_control *c, cql_result *r)
{
    cql_session *s = c->s;
    int c_name = cql_result_column_index(r, "keyspace_name");
    int c_rep = cql_result_column_index(r, "replication");
    size_t n = r->row_count > 0 ? (size_t)r->row_count : 0;
    cql_ks *ks = calloc(n ? n : 1, sizeof(*ks));
    if (!ks)
        return;
    size_t k = 0;
    while (cql_result_next_row(r) == 0 && k < n) {
        cql_ks *e = &ks[k];
        get_text(r, c_name, e->name, sizeof(e->name));
        e->map = -1;
        cql_bytes raw;
        if (cql_row_raw(r, c_rep, &raw) != 0 || raw.len < 0)
            continue;
        cql_coll_iter it;
        uint32_t pairs;
        if (cql_coll_begin(&it, raw, true, &pairs) != 0 || pairs > 64)
            continue;
        char keys[64][64], vals[64][64];
        const char *kp[64], *vp[64];
        uint32_t m = 0;
        for (; m < pairs; m++) {
            cql_bytes kb, vb;
            if (cql_coll_next(&it, &kb) != 0 || cql_coll_next(&it, &vb) != 0)
                break;
            snprintf(keys[m], sizeof(keys[m]), "%.*s", kb.len > 0 ? (int)kb.len : 0,
                     kb.ptr ? (const char *)kb.ptr : "");
            snprintf(vals[m], sizeof(vals[m]), "%.*s", vb.len > 0 ? (int)vb.len : 0,
                     vb.ptr ? (const char *)vb.ptr : "");
            kp[m] = keys[m];
            vp[m] = vals[m];
        }
        cql__replication_parse(&e->rep, kp, vp, m);
        k++;
    }
    free(s->ks);
    s->ks = ks;
    s->nks = k;
    s->ks_gen++;
    for (size_t i = 0; i < s->nmaps; i++)
        cql__replica_map_free(&s->maps[i]);
    s->nmaps = 0;
}

/* ---- schema agreement ------------------------------------------------------------------ */

static void schema_finish(cql_control *c, bool agreed)
{
    cql_session *s = c->s;
    c->sw_running = false;
    cql__tq_remove(&s->tq, &c->sw_poll);
    if (!agreed)
        MS_WARN("cql", "schema agreement not reached in %lld ms; continuing",
                (long long)s->o.schema_agreement_ms);
    schema_waiter *list = c->sw;
    int n = c->nsw;
    c->sw = NULL;
    c->nsw = c->cap_sw = 0;
    for (int i = 0; i < n; i++)
        s->cluster_listener->on_schema_agreed(s, list[i].r, list[i].box);
    free(list);
}

static void schema_poll_fire(cql_tq_node *n)
{
    cql_control *c = (cql_control *)((char *)n - offsetof(cql_control, sw_poll));
    push_job(c, JOB_SCHEMA_LOCAL);
    push_job(c, JOB_SCHEMA_PEERS);
    run_jobs(c);
}

static void schema_check_peers(cql_control *c, cql_result *r)
{
    cql_session *s = c->s;
    bool agreed = c->sw_local[0] != '\0';
    int c_peer = cql_result_column_index(r, "peer");
    int c_rpc = cql_result_column_index(r, "rpc_address");
    int c_sch = cql_result_column_index(r, "schema_version");
    while (agreed && cql_result_next_row(r) == 0) {
        char addr[48], v[37];
        if (!get_inet(r, c_rpc, addr, sizeof(addr)) || strcmp(addr, "0.0.0.0") == 0)
            get_inet(r, c_peer, addr, sizeof(addr));
        cql_host *h = cql__host_find(s, addr, s->o.port);
        /* hosts we know to be down do not vote */
        if (h && (h->removed || (h->pooled && !h->up)))
            continue;
        get_uuid(r, c_sch, v);
        if (v[0] && strcmp(v, c->sw_local) != 0)
            agreed = false;
    }
    if (agreed || cql__now(s) >= c->sw_deadline) {
        schema_finish(c, agreed);
        return;
    }
    cql__tq_add(&s->tq, &c->sw_poll, (uint64_t)cql__now(s) + SCHEMA_POLL_MS, schema_poll_fire);
}

void cql__cluster_schema_wait_box(cql_session *s, cql_request *r, void *box)
{
    cql_control *c = s->ctl;
    if (!c || !c->conn || !cql__conn_ready(c->conn) || c->closing) {
        s->cluster_listener->on_schema_agreed(s, r, box);
        return;
    }
    if (c->nsw == c->cap_sw) {
        int cap = c->cap_sw ? c->cap_sw * 2 : 4;
        schema_waiter *n = realloc(c->sw, (size_t)cap * sizeof(*n));
        if (!n) {
            s->cluster_listener->on_schema_agreed(s, r, box);
            return;
        }
        c->sw = n;
        c->cap_sw = cap;
    }
    /* the agreement wait is bounded by schema_agreement_ms instead */
    cql__tq_remove(&s->tq, &r->deadline);
    c->sw[c->nsw++] = (schema_waiter){r, box};
    if (!c->sw_running) {
        c->sw_running = true;
        c->sw_deadline = cql__now(s) + s->o.schema_agreement_ms;
        push_job(c, JOB_SCHEMA_LOCAL);
        push_job(c, JOB_SCHEMA_PEERS);
        run_jobs(c);
    }
}

/* ---- rounds ---------------------------------------------------------------------------- */

static void start_round(cql_control *c)
{
    c->round_running = true;
    c->need_topology = c->need_keyspaces = false;
    push_job(c, JOB_LOCAL);
    push_job(c, JOB_PEERS);
    push_job(c, JOB_KEYSPACES);
    run_jobs(c);
}

static void round_finished(cql_control *c)
{
    cql_session *s = c->s;
    c->round_running = false;
    s->cluster_listener->on_topology(s);
    if (!c->initialized) {
        c->initialized = true;
        if (s->nlocals == 0) {
            char dcs[200] = "";
            size_t l = 0;
            for (size_t i = 0; i < s->nhosts && l < sizeof(dcs) - 70; i++)
                if (!strstr(dcs, s->hosts[i]->dc))
                    l += (size_t)snprintf(dcs + l, sizeof(dcs) - l, "%s%s", l ? ", " : "",
                                          s->hosts[i]->dc);
            if (!s->o.allow_remote_dc) {
                cql_status st;
                cql__status_set(&st, MS_ERR_INVALID, NULL,
                                "no host in the local DC \"%s\" (the cluster has: %s)",
                                s->local_dc ? s->local_dc : "?", dcs);
                s->cluster_listener->on_connect_done(s, &st);
                return;
            }
            MS_WARN("cql", "no host in the local DC \"%s\"; using remote DCs (%s)",
                    s->local_dc ? s->local_dc : "?", dcs);
        }
        MS_INFO("cql", "cluster: %zu hosts (%zu in the local DC %s), %zu keyspaces, %zu tokens",
                s->nhosts, s->nlocals, s->local_dc ? s->local_dc : "?", s->nks, s->ring.ntokens);
        s->cluster_listener->on_connect_done(s, NULL);
    }
}

static void job_done(cql_control *c, int job, cql_result *res, const cql_status *st)
{
    cql_session *s = c->s;
    if (st->code < 0) {
        MS_WARN("cql", "control query failed: %s", st->message);
        if (job == JOB_SCHEMA_LOCAL || job == JOB_SCHEMA_PEERS) {
            if (c->sw_running && (job == JOB_SCHEMA_PEERS || !c->conn))
                schema_finish(c, false);
            return;
        }
        if (job == JOB_KEYSPACES || (job == JOB_PEERS && !c->initialized)) {
            /* go on with what we have rather than stall the session */
            if (job == JOB_PEERS)
                return;
            round_finished(c);
        }
        return;
    }
    switch (job) {
    case JOB_LOCAL:
        apply_local(c, res);
        break;
    case JOB_PEERS:
        apply_peers(c, res);
        break;
    case JOB_KEYSPACES:
        apply_keyspaces(c, res);
        round_finished(c);
        break;
    case JOB_SCHEMA_LOCAL:
        c->sw_local[0] = '\0';
        if (cql_result_next_row(res) == 0)
            get_uuid(res, 0, c->sw_local);
        break;
    case JOB_SCHEMA_PEERS:
        if (c->sw_running)
            schema_check_peers(c, res);
        break;
    }
    (void)s;
}

static void refresh_fire(cql_tq_node *n)
{
    cql_control *c = (cql_control *)((char *)n - offsetof(cql_control, refresh));
    if (c->need_topology) {
        start_round(c);
    } else if (c->need_keyspaces) {
        c->need_keyspaces = false;
        c->round_running = true;
        push_job(c, JOB_KEYSPACES);
        run_jobs(c);
    }
}

static void schedule_refresh(cql_control *c, bool topology, int64_t delay_ms)
{
    cql_session *s = c->s;
    if (topology)
        c->need_topology = true;
    else
        c->need_keyspaces = true;
    uint64_t at = (uint64_t)cql__now(s) + (uint64_t)delay_ms;
    if (cql__tq_queued(&c->refresh) && c->refresh.at <= at)
        return;
    cql__tq_add(&s->tq, &c->refresh, at, refresh_fire);
}

/* ---- connection callbacks --------------------------------------------------------------- */

static void ctl_on_ready(cql_conn *conn)
{
    cql_control *c = conn->owner;
    c->reconnect_attempt = 0;
    const cql_scylla_ext *x = &conn->info.ext;
    c->s->server = (cql_server_features){
        .known = true,
        .scylla = x->scylla,
        .sharded = conn->info.scylla,
        .rate_limit_error = x->rate_limit,
        .rate_limit_code = x->rate_limit_code,
        .tablets_routing = x->tablets_routing,
    };
    if (c->initialized)
        MS_INFO("cql", "control connection to %s re-established", conn->label);
    start_round(c);
}

static void ctl_on_close(cql_conn *conn, int status, const char *why)
{
    cql_control *c = conn->owner;
    cql_session *s = c->s;
    if (c->conn == conn)
        c->conn = NULL;
    c->job = 0;
    c->njobs = 0;
    c->round_running = false;
    if (c->closing || s->state >= CQL_S_CLOSING)
        return;
    if (c->sw_running)
        schema_finish(c, false);
    if (status < 0)
        append_error(c, why);
    if (!c->initialized) {
        ctl_connect_next(c);
        return;
    }
    MS_WARN("cql", "control connection lost: %s", why);
    schedule_ctl_reconnect(c);
}

static void ctl_on_event(cql_conn *conn, const cql_event *ev)
{
    cql_control *c = conn->owner;
    cql_session *s = c->s;
    char addr[48] = "";
    if (ev->addr_len == 4 || ev->addr_len == 16)
        inet_ntop(ev->addr_len == 4 ? AF_INET : AF_INET6, ev->addr, addr, sizeof(addr));
    cql_host *h = NULL;
    for (size_t i = 0; i < s->nhosts && addr[0]; i++)
        if (strcmp(s->hosts[i]->addr, addr) == 0)
            h = s->hosts[i];
    switch (ev->kind) {
    case CQL_EVENT_TOPOLOGY_CHANGE:
        MS_INFO("cql", "event: topology %.*s %s", (int)ev->change.len, ev->change.ptr, addr);
        schedule_refresh(c, true, REFRESH_DELAY_MS);
        break;
    case CQL_EVENT_STATUS_CHANGE:
        MS_INFO("cql", "event: %s is %.*s", addr, (int)ev->change.len, ev->change.ptr);
        if (cql_str_eq(ev->change, "UP")) {
            if (h && h->pooled)
                s->cluster_listener->on_status_up(s, h);
            else if (!h)
                schedule_refresh(c, true, REFRESH_DELAY_MS);
        }
        /* DOWN: our own connections tell; a node may be down for gossip only */
        break;
    case CQL_EVENT_SCHEMA_CHANGE:
        if (cql_str_eq(ev->schema.target, "KEYSPACE"))
            schedule_refresh(c, false, KEYSPACE_REFRESH_DELAY_MS);
        else if (cql_str_eq(ev->schema.target, "TABLE"))
            s->cluster_listener->on_schema_changed(s, ev->schema.keyspace, ev->schema.name);
        break;
    }
}

/* ---- start, tick, close ------------------------------------------------------------------ */

static void start_fire(cql_tq_node *n)
{
    cql_control *c = (cql_control *)((char *)n - offsetof(cql_control, refresh));
    c->resolve_i = 0;
    resolve_next(c);
}

int cql__cluster_start(cql_session *s)
{
    cql_control *c = calloc(1, sizeof(*c));
    if (!c)
        return MS_ERR_NOMEM;
    c->s = s;
    cql_buf_init(&c->frame);
    s->ctl = c;
    if (parse_contact_points(c, s->contact_points, s->o.port) < 0) {
        snprintf(c->errors, sizeof(c->errors),
                 "bad contact points \"%.200s\" (expected "
                 "host[:port],...)",
                 s->contact_points);
        for (int i = 0; i < c->ncp; i++)
            free(c->cp_hosts[i]);
        c->ncp = 0;
    }
    /* resolve and connect from the loop: the caller is inside cql_session_connect */
    cql__tq_add(&s->tq, &c->refresh, (uint64_t)cql__now(s), start_fire);
    return 0;
}

void cql__cluster_tick(cql_session *s, int64_t now_ms)
{
    cql_control *c = s->ctl;
    if (c && c->conn)
        cql__conn_tick(c->conn, now_ms, s->o.heartbeat_ms, s->o.idle_timeout_ms);
}

void cql__cluster_close(cql_session *s)
{
    cql_control *c = s->ctl;
    if (!c)
        return;
    c->closing = true;
    if (c->sw_running || c->nsw)
        schema_finish(c, false);
    cql__tq_remove(&s->tq, &c->refresh);
    cql__tq_remove(&s->tq, &c->reconnect);
    cql__tq_remove(&s->tq, &c->sw_poll);
    if (c->conn)
        cql__conn_close(c->conn, 0, "session closed");
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai);
    for (int i = 0; i < c->ncp; i++)
        free(c->cp_hosts[i]);
    free(c->cp_hosts);
    free(c->cp_ports);
    free(c->cands);
    free(c->contacts);
    free(c->seen);
    cql_buf_free(&c->frame);
    s->ctl = NULL;
    if (c->resolving)
        return; /* on_resolved (canceled) frees c */
    free(c);
}
