/* SPDX-License-Identifier: Apache-2.0 */
/*
 * map.c - a small open-addressing hash map from channel ids (ms_xid, not none) to
 * pointers: linear probing, backward-shift deletion (no tombstones), grows
 * at 3/4 load. Not thread-safe: its owner locks.
 */
#include "core/error.h"
#include "realtime/internal.h"

#include <stdlib.h>

static uint32_t slot_of(ms_xid key, uint32_t cap)
{
    return (uint32_t)(rt__mix64(ms_xid_key64(key)) & (cap - 1));
}

void *rt__map_get(const rt_map *m, ms_xid key)
{
    if (m->cap == 0 || ms_xid_is_none(key))
        return NULL;
    for (uint32_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (ms_xid_eq(m->keys[i], key))
            return m->vals[i];
        if (ms_xid_is_none(m->keys[i]))
            return NULL;
    }
}

static int grow(rt_map *m)
{
    uint32_t ncap = m->cap ? m->cap * 2 : 8;
    ms_xid *keys = calloc(ncap, sizeof *keys);
    void **vals = calloc(ncap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return MS_ERR_NOMEM;
    }
    for (uint32_t j = 0; j < m->cap; j++) {
        if (ms_xid_is_none(m->keys[j]))
            continue;
        uint32_t i = slot_of(m->keys[j], ncap);
        while (!ms_xid_is_none(keys[i]))
            i = (i + 1) & (ncap - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = ncap;
    return 0;
}

int rt__map_put(rt_map *m, ms_xid key, void *val)
{
    if (ms_xid_is_none(key))
        return MS_ERR_INVALID;
    if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return MS_ERR_NOMEM;
    uint32_t i = slot_of(key, m->cap);
    while (!ms_xid_is_none(m->keys[i]) && !ms_xid_eq(m->keys[i], key))
        i = (i + 1) & (m->cap - 1);
    if (ms_xid_is_none(m->keys[i]))
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

void *rt__map_del(rt_map *m, ms_xid key)
{
    if (m->cap == 0 || ms_xid_is_none(key))
        return NULL;
    uint32_t mask = m->cap - 1;
    uint32_t i = slot_of(key, m->cap);
    while (!ms_xid_eq(m->keys[i], key)) {
        if (ms_xid_is_none(m->keys[i]))
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->vals[i];
    /* Backward shift: move later entries of the cluster into the hole when
     * their home slot does not lie (cyclically) between the hole and them. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; !ms_xid_is_none(m->keys[j]); j = (j + 1) & mask) {
        uint32_t home = slot_of(m->keys[j], m->cap);
        bool stays = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        m->keys[hole] = m->keys[j];
        m->vals[hole] = m->vals[j];
        hole = j;
    }
    m->keys[hole] = (ms_xid){0, 0};
    m->vals[hole] = NULL;
    m->len--;
    return val;
}

void rt__map_free(rt_map *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
}
