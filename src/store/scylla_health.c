/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scylla_health.c - the ScyllaDB/Cassandra backend's health check
 * (store_health), run by a worker on its own CQL session like any operation:
 *
 *   keyspace      its replication map (system_schema.keyspaces)
 *   tables        those the migrations create vs system_schema.tables
 *   schema        the msgstore migration recorded in <keyspace>.schema_version,
 *                 and the cluster's schema versions (system.local +
 *                 system.peers: agreement when there is one)
 *   hosts         every host the session knows: DC, rack, up/down, its
 *                 circuit breaker; totals over all the store's sessions
 *                 (sessions connected, requests in flight) from the client's
 *                 metrics
 *
 * The queries stop at the first one that fails (the cluster is not
 * answering: each further one would wait for its own timeout); the hosts are
 * read from the session after the queries, so they show what those requests
 * just met. Which worker runs the check is not chosen: the host view is that
 * session's, which sent the check's requests a moment ago.
 */
#include "scylla_internal.h"

#if defined(MSGSTORE_HAVE_CQL_SESSION)

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOSTS    256
#define MAX_VERSIONS 16

typedef struct hc {
    sc_conn *sc;
    store_op *op;
    store_health_result *h;
    uint32_t *queries;
    const store_config *cfg;
    bool broken; /* a query failed: send no more */
} hc;

/*
 * Runs query with one text value (NULL: none) at consistency cl. Returns the
 * result (cql_result_destroy) or NULL with the problem recorded.
 */
static cql_result *run(hc *c, const char *query, const char *text, int cl, const char *what)
{
    if (c->broken)
        return NULL;
    cql_values v;
    cql_values_init(&v);
    if (text)
        cql_values_add_text(&v, text, strlen(text));
    cql_statement s;
    cql_statement_init(&s);
    s.query = query;
    s.values = text ? &v : NULL;
    s.consistency = cl;
    s.page_size = 0;
    s.idempotent = true;
    cql_result *r = NULL;
    cql_status st;
    memset(&st, 0, sizeof st);
    (*c->queries)++;
    int rc = cql_values_error(&v) ? MS_ERR_NOMEM : sc_exec(c->sc, &s, &r, &st);
    cql_values_free(&v);
    if (rc != 0 || st.code != 0) {
        cql_result_destroy(r);
        c->broken = true;
        int code = st.code ? st.code : rc;
        store__health_problem(c->h, "%s: %s", what, st.message[0] ? st.message : ms_err_str(code));
        return NULL;
    }
    return r;
}

static void read_keyspace(hc *c)
{
    store_health_result *h = c->h;
    cql_result *r =
        run(c, "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
            h->keyspace, CQL_CONSISTENCY_ONE, "reading the keyspace");
    if (!r)
        return;
    if (cql_result_next_row(r) == 0) {
        h->keyspace_found = true;
        cql_bytes raw;
        cql_coll_iter it;
        uint32_t n = 0;
        if (cql_row_raw(r, 0, &raw) == 0 && cql_coll_begin(&it, raw, true, &n) == 0 && n > 0) {
            store_health_pair *p = store__res_alloc(&h->hdr, n * sizeof *p);
            size_t k = 0;
            cql_bytes key, val;
            while (p && k < n && cql_coll_next(&it, &key) == 0 && cql_coll_next(&it, &val) == 0) {
                p[k].key =
                    store__health_str(h, (const char *)key.ptr, key.len > 0 ? (size_t)key.len : 0);
                p[k].value =
                    store__health_str(h, (const char *)val.ptr, val.len > 0 ? (size_t)val.len : 0);
                k++;
            }
            h->replication = p;
            h->nreplication = p ? k : 0;
        }
    } else {
        store__health_problem(h, "keyspace %s does not exist: run `msgstore migrate`", h->keyspace);
    }
    cql_result_destroy(r);
}

static void read_tables(hc *c)
{
    store_health_result *h = c->h;
    cql_result *r = run(c, "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
                        h->keyspace, CQL_CONSISTENCY_ONE, "listing the tables");
    if (!r)
        return;
    while (cql_result_next_row(r) == 0) {
        cql_str s;
        if (cql_row_get_text(r, 0, &s) == 0 && s.ptr)
            (void)store__health_mark(h, s.ptr, s.len);
    }
    cql_result_destroy(r);
    store__health_tables_done(h);
}

static void read_version(hc *c)
{
    store_health_result *h = c->h;
    if (!h->keyspace_found)
        return;
    char q[160];
    snprintf(q, sizeof q, "SELECT version FROM %s.schema_version WHERE scope = 'msgstore' LIMIT 1",
             h->keyspace);
    cql_result *r =
        run(c, q, NULL, (int)c->cfg->scylla_read_consistency, "reading the schema version");
    if (!r)
        return;
    int32_t v = 0;
    if (cql_result_next_row(r) == 0)
        cql_row_get_int(r, 0, &v);
    cql_result_destroy(r);
    h->schema_version = v;
    if (v != h->schema_expected)
        store__health_problem(h, "schema version %d, this binary needs %d: run `msgstore migrate`",
                              (int)v, h->schema_expected);
}

static void add_version(char (*vs)[37], int *n, const uint8_t u[16])
{
    char s[37];
    cql_uuid_format(u, s);
    for (int i = 0; i < *n; i++)
        if (strcmp(vs[i], s) == 0)
            return;
    if (*n < MAX_VERSIONS)
        snprintf(vs[(*n)++], 37, "%s", s);
}

/* Distinct schema versions of the hosts not known to be down (hosts: the session's view). */
static void read_agreement(hc *c, const cql_host_info *hosts, size_t nhosts)
{
    char vs[MAX_VERSIONS][37];
    int n = 0;
    uint8_t u[16];
    cql_result *r = run(c, "SELECT schema_version FROM system.local WHERE key = 'local'", NULL,
                        CQL_CONSISTENCY_ONE, "reading the schema version of the cluster");
    if (!r)
        return;
    if (cql_result_next_row(r) == 0 && cql_row_get_uuid(r, 0, u) == 0)
        add_version(vs, &n, u);
    cql_result_destroy(r);
    r = run(c, "SELECT peer, schema_version FROM system.peers", NULL, CQL_CONSISTENCY_ONE,
            "reading the schema versions of the peers");
    if (!r)
        return;
    while (cql_result_next_row(r) == 0) {
        uint8_t a[16];
        size_t alen = 0;
        char addr[48] = "";
        if (cql_row_get_inet(r, 0, a, &alen) == 0)
            inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, addr, sizeof addr);
        bool down = false;
        for (size_t i = 0; i < nhosts; i++)
            if (strcmp(hosts[i].address, addr) == 0 && hosts[i].pooled && !hosts[i].up)
                down = true;
        if (!down && cql_row_get_uuid(r, 1, u) == 0)
            add_version(vs, &n, u);
    }
    cql_result_destroy(r);
    c->h->schema_versions = n;
    if (n > 1)
        store__health_problem(c->h, "the hosts disagree on the schema (%d versions)", n);
}

static int breaker_rank(cql_breaker_state b)
{
    return b == CQL_BREAKER_CLOSED ? 0 : b == CQL_BREAKER_HALF_OPEN ? 1 : 2;
}

/* The hosts the session knows, into the result; the breaker summary. */
static void fill_hosts(hc *c, const cql_host_info *hi, size_t n)
{
    store_health_result *h = c->h;
    store_health_host *out = n ? store__res_alloc(&h->hdr, n * sizeof *out) : NULL;
    if (n && !out) {
        store__health_problem(h, "out of memory");
        return;
    }
    int best = -1; /* best breaker rank over the hosts the client may use */
    const char *local_dc = "";
    const char *first_down = NULL, *first_open = NULL;
    for (size_t i = 0; i < n; i++) {
        store_health_host *o = &out[i];
        o->address = store__health_str(h, hi[i].address, strlen(hi[i].address));
        o->port = hi[i].port;
        o->dc = store__health_str(h, hi[i].dc, strlen(hi[i].dc));
        o->rack = store__health_str(h, hi[i].rack, strlen(hi[i].rack));
        o->release_version =
            store__health_str(h, hi[i].release_version, strlen(hi[i].release_version));
        o->local = hi[i].local;
        o->up = hi[i].pooled && hi[i].up;
        o->state = !hi[i].pooled ? "unused" : hi[i].up ? "up" : "down";
        o->breaker = cql_breaker_state_name(hi[i].breaker);
        o->connections = hi[i].connections;
        cql_host_totals t;
        sc_host_totals(c->sc->b, hi[i].address, hi[i].port, &t);
        o->sessions_up = (int)t.sessions_up;
        o->in_flight = t.in_flight;
        if (hi[i].local && !local_dc[0])
            local_dc = o->dc;
        if (!hi[i].pooled)
            continue;
        if (o->up)
            h->hosts_up++;
        else {
            h->hosts_down++;
            if (!first_down)
                first_down = o->address;
        }
        int rank = breaker_rank(hi[i].breaker);
        if (rank > 0) {
            h->breakers_open++;
            if (!first_open)
                first_open = o->address;
        }
        if (best < 0 || rank < best)
            best = rank;
    }
    h->hosts = out;
    h->nhosts = n;
    h->local_dc = local_dc;
    h->breaker = best == 0 ? "closed" : best == 1 ? "half_open" : "open";
    if (best < 0)
        store__health_problem(h, "the client has no host to send requests to");
    else if (best > 0)
        store__health_problem(h, "the circuit breaker of every host is %s: requests fail fast",
                              h->breaker);
    if (first_down)
        store__health_problem(h, "%zu host(s) down (%s)", h->hosts_down, first_down);
    if (first_open)
        store__health_problem(h, "%zu host(s) with an open circuit breaker (%s)", h->breakers_open,
                              first_open);
}

void sc_health(sc_conn *sc, store_op *op)
{
    uint64_t t0 = uv_hrtime();
    store_health_result *h = store__health_result(op, MS_BACKEND_SCYLLA);
    if (!h)
        return;
    const store_config *cfg = store__config(op->s);
    h->keyspace = store__health_str(h, cfg->scylla_keyspace, strlen(cfg->scylla_keyspace));
    h->local_dc = "";
    h->breaker = "open";
    hc c = {.sc = sc, .op = op, .h = h, .queries = &sc->queries, .cfg = cfg};
    read_keyspace(&c);
    read_tables(&c);
    read_version(&c);

    cql_host_info *hi = calloc(MAX_HOSTS, sizeof *hi);
    if (!hi) {
        store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        return;
    }
    cql_session *s = sc_session(sc);
    size_t n = s ? cql_session_hosts(s, hi, MAX_HOSTS) : 0;
    if (n > MAX_HOSTS)
        n = MAX_HOSTS;
    read_agreement(&c, hi, n);
    /* again: the state after every request of the check */
    n = s ? cql_session_hosts(s, hi, MAX_HOSTS) : 0;
    if (n > MAX_HOSTS)
        n = MAX_HOSTS;
    fill_hosts(&c, hi, n);
    free(hi);
    h->latency_us = (uv_hrtime() - t0) / 1000;
}

#else

/* Built without the CQL client: scylla.c never calls store__scylla_health. */
typedef int store__scylla_health_unused;

#endif
