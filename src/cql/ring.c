/* SPDX-License-Identifier: Apache-2.0 */
/* ring.c - token ring and replica placement (see ring.h). */
#include "cql/ring.h"

#include "core/error.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- replication options ------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "3" or "3/1" (transient) -> 3; -1 when malformed. */
static int parse_rf(const char *v)
{
    while (isspace((unsigned char)*v))
        v++;
    if (!isdigit((unsigned char)*v))
        return -1;
    long n = 0;
    while (isdigit((unsigned char)*v)) {
        n = n * 10 + (*v++ - '0');
        if (n > 1000000)
            return -1;
    }
    if (*v != '\0' && *v != '/')
        return -1;
    return (int)n;
}

static int cmp_dc(const void *a, const void *b)
{
    const char *x = a, *y = b; /* dc[] is the first member */
    return strcmp(x, y);
}

int cql__replication_parse(cql_replication *r, const char *const *keys, const char *const *values,
                           size_t n)
{
    memset(r, 0, sizeof(*r));
    const char *cls = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], "class") == 0)
            cls = values[i];
    if (!cls)
        return 0;
    if (ends_with(cls, "SimpleStrategy")) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(keys[i], "replication_factor") == 0) {
                int rf = parse_rf(values[i]);
                if (rf < 0) {
                    memset(r, 0, sizeof(*r));
                    return MS_ERR_INVALID;
                }
                r->rf = rf;
                r->cls = CQL_REPL_SIMPLE;
            }
        }
        return 0;
    }
    if (ends_with(cls, "NetworkTopologyStrategy")) {
        r->cls = CQL_REPL_NTS;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(keys[i], "class") == 0 || strcmp(keys[i], "replication_factor") == 0)
                continue;
            int rf = parse_rf(values[i]);
            if (rf < 0 || strlen(keys[i]) >= sizeof(r->dcs[0].dc)) {
                memset(r, 0, sizeof(*r));
                return MS_ERR_INVALID;
            }
            if (r->ndcs == CQL_MAX_REPL_DCS)
                continue;
            strcpy(r->dcs[r->ndcs].dc, keys[i]);
            r->dcs[r->ndcs].rf = rf;
            r->ndcs++;
        }
        qsort(r->dcs, (size_t)r->ndcs, sizeof(r->dcs[0]), cmp_dc);
        return 0;
    }
    if (ends_with(cls, "EverywhereStrategy")) {
        r->cls = CQL_REPL_EVERYWHERE;
        return 0;
    }
    return 0; /* LocalStrategy and unknown classes: not token-aware */
}

int cql__replication_equal(const cql_replication *a, const cql_replication *b)
{
    if (a->cls != b->cls || a->rf != b->rf || a->ndcs != b->ndcs)
        return 0;
    for (int i = 0; i < a->ndcs; i++)
        if (a->dcs[i].rf != b->dcs[i].rf || strcmp(a->dcs[i].dc, b->dcs[i].dc) != 0)
            return 0;
    return 1;
}

/* ---- ring ---------------------------------------------------------------- */

typedef struct tok_owner {
    int64_t token;
    uint32_t host;
} tok_owner;

static int cmp_tok(const void *a, const void *b)
{
    const tok_owner *x = a, *y = b;
    if (x->token != y->token)
        return x->token < y->token ? -1 : 1;
    return x->host < y->host ? -1 : x->host > y->host;
}

void cql__ring_free(cql_ring *r)
{
    free(r->tokens);
    free(r->owners);
    free(r->host_dc);
    free(r->host_rack);
    for (size_t i = 0; i < r->ndcs; i++)
        free(r->dc_names[i]);
    free(r->dc_names);
    free(r->dc_hosts);
    free(r->dc_racks);
    memset(r, 0, sizeof(*r));
}

int cql__ring_dc_id(const cql_ring *r, const char *dc)
{
    for (size_t i = 0; i < r->ndcs; i++)
        if (strcmp(r->dc_names[i], dc) == 0)
            return (int)i;
    return -1;
}

int cql__ring_build(cql_ring *r, const cql_ring_host_in *hosts, size_t n)
{
    memset(r, 0, sizeof(*r));
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += hosts[i].ntokens;
    tok_owner *all = malloc((total ? total : 1) * sizeof(*all));
    r->host_dc = calloc(n ? n : 1, sizeof(uint32_t));
    r->host_rack = calloc(n ? n : 1, sizeof(uint32_t));
    r->dc_names = calloc(n ? n : 1, sizeof(char *));
    r->dc_hosts = calloc(n ? n : 1, sizeof(uint32_t));
    r->dc_racks = calloc(n ? n : 1, sizeof(uint32_t));
    /* rack keys: (dc id, rack name) of each distinct rack */
    const char **rack_name = calloc(n ? n : 1, sizeof(char *));
    uint32_t *rack_dc = calloc(n ? n : 1, sizeof(uint32_t));
    if (!all || !r->host_dc || !r->host_rack || !r->dc_names || !r->dc_hosts || !r->dc_racks ||
        !rack_name || !rack_dc)
        goto nomem;
    r->nhosts = n;
    for (size_t i = 0; i < n; i++) {
        const char *dc = hosts[i].dc ? hosts[i].dc : "";
        const char *rack = hosts[i].rack ? hosts[i].rack : "";
        int d = cql__ring_dc_id(r, dc);
        if (d < 0) {
            r->dc_names[r->ndcs] = strdup(dc);
            if (!r->dc_names[r->ndcs])
                goto nomem;
            d = (int)r->ndcs++;
        }
        r->host_dc[i] = (uint32_t)d;
        size_t k;
        for (k = 0; k < r->nracks; k++)
            if (rack_dc[k] == (uint32_t)d && strcmp(rack_name[k], rack) == 0)
                break;
        if (k == r->nracks) {
            rack_name[k] = rack;
            rack_dc[k] = (uint32_t)d;
            r->nracks++;
        }
        r->host_rack[i] = (uint32_t)k;
    }
    /* hosts and racks per DC count only hosts that own tokens, as Cassandra's
     * topology counts only ring members */
    bool *rack_counted = calloc(r->nracks ? r->nracks : 1, sizeof(bool));
    if (!rack_counted)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (hosts[i].ntokens == 0)
            continue;
        r->dc_hosts[r->host_dc[i]]++;
        if (!rack_counted[r->host_rack[i]]) {
            rack_counted[r->host_rack[i]] = true;
            r->dc_racks[r->host_dc[i]]++;
        }
    }
    free(rack_counted);

    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < hosts[i].ntokens; j++)
            all[k++] = (tok_owner){hosts[i].tokens[j], (uint32_t)i};
    qsort(all, total, sizeof(*all), cmp_tok);
    r->tokens = malloc((total ? total : 1) * sizeof(int64_t));
    r->owners = malloc((total ? total : 1) * sizeof(uint32_t));
    if (!r->tokens || !r->owners)
        goto nomem;
    size_t m = 0;
    for (size_t i = 0; i < total; i++) {
        if (m > 0 && r->tokens[m - 1] == all[i].token)
            continue;
        r->tokens[m] = all[i].token;
        r->owners[m] = all[i].host;
        m++;
    }
    r->ntokens = m;
    free(all);
    free(rack_name);
    free(rack_dc);
    return 0;
nomem:
    free(all);
    free(rack_name);
    free(rack_dc);
    cql__ring_free(r);
    return MS_ERR_NOMEM;
}

size_t cql__ring_index(const cql_ring *r, int64_t token)
{
    size_t lo = 0, hi = r->ntokens;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->tokens[mid] < token)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == r->ntokens ? 0 : lo;
}

static bool contains(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Appends h to the output if there is room; counts it either way. */
static void emit(uint32_t *out, size_t max, size_t *count, uint32_t *seen, uint32_t h)
{
    if (*count < max)
        out[*count] = h;
    seen[*count] = h;
    (*count)++;
}

size_t cql__ring_replicas_at(const cql_ring *r, const cql_replication *rep, size_t idx,
                             uint32_t *out, size_t max)
{
    if (r->ntokens == 0 || r->nhosts == 0)
        return 0;
    size_t count = 0;
    uint32_t stackbuf[64];
    uint32_t *seen = r->nhosts <= 64 ? stackbuf : malloc(r->nhosts * sizeof(uint32_t));
    if (!seen)
        return 0;

    if (rep->cls == CQL_REPL_EVERYWHERE) {
        for (size_t i = 0; i < r->ntokens; i++) {
            uint32_t h = r->owners[(idx + i) % r->ntokens];
            if (!contains(seen, count, h))
                emit(out, max, &count, seen, h);
        }
    } else if (rep->cls == CQL_REPL_SIMPLE) {
        size_t want = (size_t)(rep->rf > 0 ? rep->rf : 0);
        for (size_t i = 0; i < r->ntokens && count < want; i++) {
            uint32_t h = r->owners[(idx + i) % r->ntokens];
            if (!contains(seen, count, h))
                emit(out, max, &count, seen, h);
        }
    } else if (rep->cls == CQL_REPL_NTS) {
        /* one tracker per ring DC; rf_left < 0 means the DC is not replicated */
        int rf_left[CQL_MAX_REPL_DCS], repeats[CQL_MAX_REPL_DCS];
        size_t ndc = r->ndcs < CQL_MAX_REPL_DCS ? r->ndcs : CQL_MAX_REPL_DCS;
        int to_fill = 0;
        for (size_t d = 0; d < ndc; d++) {
            rf_left[d] = -1;
            repeats[d] = 0;
            for (int j = 0; j < rep->ndcs; j++) {
                if (strcmp(rep->dcs[j].dc, r->dc_names[d]) != 0)
                    continue;
                int rf = rep->dcs[j].rf;
                int nodes = (int)r->dc_hosts[d];
                if (rf <= 0 || nodes <= 0)
                    break;
                rf_left[d] = rf < nodes ? rf : nodes;
                repeats[d] = rf - (int)r->dc_racks[d];
                to_fill++;
                break;
            }
        }
        bool rackbuf[64];
        bool *rack_seen = r->nracks <= 64 ? rackbuf : calloc(r->nracks, sizeof(bool));
        if (!rack_seen) {
            if (seen != stackbuf)
                free(seen);
            return 0;
        }
        memset(rack_seen, 0, (r->nracks <= 64 ? 64 : r->nracks) * sizeof(bool));
        for (size_t i = 0; i < r->ntokens && to_fill > 0; i++) {
            uint32_t h = r->owners[(idx + i) % r->ntokens];
            uint32_t d = r->host_dc[h];
            if (d >= ndc || rf_left[d] <= 0)
                continue; /* not replicated here, or already done */
            if (contains(seen, count, h))
                continue;
            uint32_t rack = r->host_rack[h];
            if (!rack_seen[rack]) {
                rack_seen[rack] = true;
            } else {
                if (repeats[d] <= 0)
                    continue; /* rf_left distinct racks remain: no more repeats */
                repeats[d]--;
            }
            emit(out, max, &count, seen, h);
            if (--rf_left[d] == 0)
                to_fill--;
        }
        if (rack_seen != rackbuf)
            free(rack_seen);
    }
    if (seen != stackbuf)
        free(seen);
    return count;
}

void cql__replica_map_free(cql_replica_map *m)
{
    free(m->offsets);
    free(m->hosts);
    memset(m, 0, sizeof(*m));
}

int cql__replica_map_build(cql_replica_map *m, const cql_ring *r, const cql_replication *rep)
{
    memset(m, 0, sizeof(*m));
    m->rep = *rep;
    m->nranges = r->ntokens;
    m->offsets = malloc((r->ntokens + 1) * sizeof(uint32_t));
    size_t cap = r->ntokens * 3 + 16, used = 0;
    m->hosts = malloc(cap * sizeof(uint32_t));
    uint32_t *tmp = malloc((r->nhosts ? r->nhosts : 1) * sizeof(uint32_t));
    if (!m->offsets || !m->hosts || !tmp)
        goto nomem;
    for (size_t i = 0; i < r->ntokens; i++) {
        size_t k = cql__ring_replicas_at(r, rep, i, tmp, r->nhosts);
        if (used + k > cap) {
            while (used + k > cap)
                cap *= 2;
            uint32_t *nh = realloc(m->hosts, cap * sizeof(uint32_t));
            if (!nh)
                goto nomem;
            m->hosts = nh;
        }
        m->offsets[i] = (uint32_t)used;
        memcpy(m->hosts + used, tmp, k * sizeof(uint32_t));
        used += k;
    }
    m->offsets[r->ntokens] = (uint32_t)used;
    free(tmp);
    return 0;
nomem:
    free(tmp);
    cql__replica_map_free(m);
    return MS_ERR_NOMEM;
}

const uint32_t *cql__replica_map_get(const cql_replica_map *m, const cql_ring *r, int64_t token,
                                     size_t *n)
{
    if (m->nranges == 0 || m->nranges != r->ntokens) {
        *n = 0;
        return NULL;
    }
    size_t i = cql__ring_index(r, token);
    *n = m->offsets[i + 1] - m->offsets[i];
    return m->hosts + m->offsets[i];
}
