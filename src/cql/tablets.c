/* SPDX-License-Identifier: Apache-2.0 */
/* tablets.c - ScyllaDB tablet routing cache (see tablets.h). */
#include "cql/tablets.h"

#include "core/error.h"
#include "msgstore/cql_value.h"

#include <stdlib.h>
#include <string.h>

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static int rd_i32(rd *r, int32_t *out)
{
    if (r->end - r->p < 4)
        return MS_ERR_INVALID;
    *out = (int32_t)((uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
                     (uint32_t)r->p[3]);
    r->p += 4;
    return 0;
}

/* One tuple/collection element: [int len][len bytes]; a null or wrong-sized element is invalid. */
static int rd_elem(rd *r, int32_t want, const uint8_t **out, int32_t *len)
{
    int32_t n;
    if (rd_i32(r, &n) < 0 || n < 0 || r->end - r->p < n || (want >= 0 && n != want))
        return MS_ERR_INVALID;
    *out = r->p;
    if (len)
        *len = n;
    r->p += n;
    return 0;
}

static int64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

int cql__tablet_decode(const uint8_t *p, size_t len, cql_tablet *out)
{
    memset(out, 0, sizeof *out);
    rd r = {p, p + len};
    const uint8_t *e;
    int32_t n;
    if (rd_elem(&r, 8, &e, NULL) < 0)
        return MS_ERR_INVALID;
    out->first = be64(e);
    if (rd_elem(&r, 8, &e, NULL) < 0)
        return MS_ERR_INVALID;
    out->last = be64(e);
    if (out->first >= out->last)
        return MS_ERR_INVALID;
    if (rd_elem(&r, -1, &e, &n) < 0)
        return MS_ERR_INVALID;
    rd l = {e, e + n};
    int32_t count;
    if (rd_i32(&l, &count) < 0 || count < 0)
        return MS_ERR_INVALID;
    for (int32_t i = 0; i < count; i++) {
        int32_t tl;
        if (rd_elem(&l, -1, &e, &tl) < 0)
            return MS_ERR_INVALID;
        rd t = {e, e + tl};
        const uint8_t *id, *sh;
        if (rd_elem(&t, 16, &id, NULL) < 0 || rd_elem(&t, 4, &sh, NULL) < 0)
            return MS_ERR_INVALID;
        if (out->nrep < CQL_TABLET_MAX_REPLICAS) {
            cql_tablet_replica *rep = &out->rep[out->nrep++];
            cql_uuid_format(id, rep->host_id);
            rep->shard = (int32_t)((uint32_t)sh[0] << 24 | (uint32_t)sh[1] << 16 |
                                   (uint32_t)sh[2] << 8 | (uint32_t)sh[3]);
        }
    }
    return l.p == l.end ? 0 : MS_ERR_INVALID;
}

static cql_tablet_table *table_of(const cql_tablets *ts, const char *ks, size_t kl,
                                  const char *table, size_t tl)
{
    for (size_t i = 0; i < ts->n; i++) {
        cql_tablet_table *t = &ts->t[i];
        if (strlen(t->ks) == kl && memcmp(t->ks, ks, kl) == 0 && strlen(t->table) == tl &&
            memcmp(t->table, table, tl) == 0)
            return t;
    }
    return NULL;
}

/* First index whose last >= token (n when none). */
static size_t lower(const cql_tablet_table *t, int64_t token)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->v[mid].last < token)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int cql__tablets_put(cql_tablets *ts, const char *ks, const char *table, const cql_tablet *nt)
{
    size_t kl = strlen(ks), tl = strlen(table);
    if (kl == 0 || kl >= 64 || tl == 0 || tl >= 64 || nt->first >= nt->last)
        return MS_ERR_INVALID;
    cql_tablet_table *t = table_of(ts, ks, kl, table, tl);
    if (!t) {
        if (ts->n == ts->cap) {
            size_t cap = ts->cap ? ts->cap * 2 : 4;
            cql_tablet_table *v = realloc(ts->t, cap * sizeof *v);
            if (!v)
                return MS_ERR_NOMEM;
            ts->t = v;
            ts->cap = cap;
        }
        t = &ts->t[ts->n];
        memset(t, 0, sizeof *t);
        memcpy(t->ks, ks, kl + 1);
        memcpy(t->table, table, tl + 1);
        ts->n++;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        cql_tablet *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return MS_ERR_NOMEM;
        t->v = v;
        t->cap = cap;
    }
    /* overlapping: last > nt->first and first < nt->last; they are contiguous from lo */
    size_t lo = lower(t, nt->first == INT64_MAX ? INT64_MAX : nt->first + 1);
    size_t hi = lo;
    while (hi < t->n && t->v[hi].first < nt->last)
        hi++;
    memmove(&t->v[lo + 1], &t->v[hi], (t->n - hi) * sizeof *t->v);
    t->n = t->n - (hi - lo) + 1;
    t->v[lo] = *nt;
    return 0;
}

const cql_tablet *cql__tablets_find(const cql_tablets *ts, const char *ks, const char *table,
                                    int64_t token)
{
    if (ts->n == 0)
        return NULL;
    const cql_tablet_table *t = table_of(ts, ks, strlen(ks), table, strlen(table));
    if (!t)
        return NULL;
    size_t i = lower(t, token);
    return i < t->n && t->v[i].first < token ? &t->v[i] : NULL;
}

bool cql__tablets_empty(const cql_tablets *ts)
{
    return ts->n == 0;
}

void cql__tablets_drop(cql_tablets *ts, const char *ks, size_t ks_len, const char *table,
                       size_t table_len)
{
    for (size_t i = 0; i < ts->n;) {
        cql_tablet_table *t = &ts->t[i];
        bool match =
            strlen(t->ks) == ks_len && memcmp(t->ks, ks, ks_len) == 0 &&
            (!table || (strlen(t->table) == table_len && memcmp(t->table, table, table_len) == 0));
        if (!match) {
            i++;
            continue;
        }
        free(t->v);
        ts->t[i] = ts->t[--ts->n];
    }
}

void cql__tablets_clear(cql_tablets *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        free(ts->t[i].v);
    free(ts->t);
    memset(ts, 0, sizeof *ts);
}
