/* SPDX-License-Identifier: Apache-2.0 */
/*
 * presence.c - typing indicators and presence: an in-process TTL table,
 * mirrored to Redis keys with PX TTLs when the bridge is up.
 *
 * Each instance keeps a table of (channel, user) entries for typing and for
 * presence. Entries made here are "local": their offline event is this
 * instance's to publish when heartbeats stop. Entries learned from other
 * instances' events are "remote": they are removed by that instance's
 * offline event, or silently after five TTLs if it never comes (the instance
 * died). Redis holds the same state as keys
 *   msgstore:typing:<channel>:<user>    PX 10000
 *   msgstore:presence:<channel>:<user>  PX <heartbeat ttl>
 * whose value is the instance id, for operators and other tools.
 */
#include "core/error.h"
#include "realtime/internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TYPING_REPEAT_MS  1000
#define REMOTE_TTL_FACTOR 5
#define EPH_MAX_ENTRIES   1000000 /* a bound on memory whatever clients send */

typedef struct eph_entry {
    struct eph_entry *hnext;       /* hash chain */
    struct eph_entry *prev, *next; /* all entries, for the sweep */
    ms_xid channel, user;
    bool typing;
    bool local;
    int64_t expires_ms;
    int64_t last_pub_ms;
} eph_entry;

#define EPH_BUCKETS 4096

struct rt_ephemeral {
    pthread_mutex_t mu;
    eph_entry *buckets[EPH_BUCKETS];
    eph_entry *head;
    size_t count;
};

int rt__ephemeral_create(rt_ephemeral **out)
{
    rt_ephemeral *e = calloc(1, sizeof *e);
    if (!e)
        return MS_ERR_NOMEM;
    pthread_mutex_init(&e->mu, NULL);
    *out = e;
    return 0;
}

void rt__ephemeral_destroy(rt_ephemeral *e)
{
    if (!e)
        return;
    while (e->head) {
        eph_entry *n = e->head->next;
        free(e->head);
        e->head = n;
    }
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static uint32_t bucket_of(ms_xid channel, ms_xid user, bool typing)
{
    return (
        uint32_t)(rt__mix64(ms_xid_key64(channel) * 31 + rt__mix64(ms_xid_key64(user)) + typing) %
                  EPH_BUCKETS);
}

static eph_entry *find(rt_ephemeral *e, ms_xid channel, ms_xid user, bool typing)
{
    for (eph_entry *x = e->buckets[bucket_of(channel, user, typing)]; x; x = x->hnext)
        if (ms_xid_eq(x->channel, channel) && ms_xid_eq(x->user, user) && x->typing == typing)
            return x;
    return NULL;
}

static eph_entry *insert(rt_ephemeral *e, ms_xid channel, ms_xid user, bool typing)
{
    if (e->count >= EPH_MAX_ENTRIES)
        return NULL;
    eph_entry *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->channel = channel;
    x->user = user;
    x->typing = typing;
    uint32_t b = bucket_of(channel, user, typing);
    x->hnext = e->buckets[b];
    e->buckets[b] = x;
    x->next = e->head;
    if (e->head)
        e->head->prev = x;
    e->head = x;
    e->count++;
    return x;
}

static void erase(rt_ephemeral *e, eph_entry *x)
{
    eph_entry **pp = &e->buckets[bucket_of(x->channel, x->user, x->typing)];
    while (*pp != x)
        pp = &(*pp)->hnext;
    *pp = x->hnext;
    if (x->prev)
        x->prev->next = x->next;
    else
        e->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    e->count--;
    free(x);
}

static void redis_key(rt_hub *h, char *buf, size_t n, bool typing, ms_xid channel, ms_xid user)
{
    char ch[MS_XID_STRLEN], us[MS_XID_STRLEN];
    ms_xid_format(rt__hub_id_format(h), channel, ch);
    ms_xid_format(rt__hub_id_format(h), user, us);
    snprintf(buf, n, "msgstore:%s:%s:%s", typing ? "typing" : "presence", ch, us);
}

static void mirror_set(rt_hub *h, bool typing, ms_xid channel, ms_xid user, int64_t ttl_ms)
{
    char key[96];
    redis_key(h, key, sizeof key, typing, channel, user);
    rt_bridge *b = rt__hub_bridge_acquire(h);
    if (b)
        rt__bridge_set_ttl(b, key, ttl_ms);
    rt__hub_bridge_release(h);
}

static void mirror_del(rt_hub *h, bool typing, ms_xid channel, ms_xid user)
{
    char key[96];
    redis_key(h, key, sizeof key, typing, channel, user);
    rt_bridge *b = rt__hub_bridge_acquire(h);
    if (b)
        rt__bridge_del(b, key);
    rt__hub_bridge_release(h);
}

static int publish_presence(rt_hub *h, ms_xid channel, ms_xid user, bool online, int64_t expires_ms,
                            int64_t ttl_ms)
{
    char data[160], us[MS_XID_STRLEN];
    ms_xid_format(rt__hub_id_format(h), user, us);
    int n;
    if (online)
        n = snprintf(data, sizeof data,
                     "{\"user_id\":\"%s\",\"status\":\"online\",\"expires_at\":%" PRId64
                     ",\"ttl_ms\":%" PRId64 "}",
                     us, expires_ms, ttl_ms);
    else
        n = snprintf(data, sizeof data, "{\"user_id\":\"%s\",\"status\":\"offline\"}", us);
    return rt_publish(h, RT_PRESENCE, channel, data, (size_t)n, NULL);
}

int rt_typing(rt_hub *h, ms_xid channel, ms_xid user)
{
    if (ms_xid_is_none(channel) || ms_xid_is_none(user))
        return MS_ERR_INVALID;
    rt_ephemeral *e = rt__hub_ephemeral(h);
    int64_t now = rt__now_ms();
    int64_t expires = now + RT_TYPING_TTL_MS;
    bool repeat = false;
    pthread_mutex_lock(&e->mu);
    eph_entry *x = find(e, channel, user, true);
    if (!x)
        x = insert(e, channel, user, true);
    if (!x) {
        pthread_mutex_unlock(&e->mu);
        return MS_ERR_UNAVAILABLE; /* out of memory, or the table is full */
    }
    repeat = x->local && now - x->last_pub_ms < TYPING_REPEAT_MS;
    x->local = true;
    x->expires_ms = expires;
    if (!repeat)
        x->last_pub_ms = now;
    pthread_mutex_unlock(&e->mu);
    mirror_set(h, true, channel, user, RT_TYPING_TTL_MS);
    if (repeat)
        return 0;
    char data[128], us[MS_XID_STRLEN];
    ms_xid_format(rt__hub_id_format(h), user, us);
    int n =
        snprintf(data, sizeof data, "{\"user_id\":\"%s\",\"expires_at\":%" PRId64 ",\"ttl_ms\":%d}",
                 us, expires, RT_TYPING_TTL_MS);
    return rt_publish(h, RT_TYPING, channel, data, (size_t)n, NULL);
}

int rt_presence_heartbeat(rt_hub *h, ms_xid channel, ms_xid user, int64_t ttl_ms)
{
    if (ms_xid_is_none(channel) || ms_xid_is_none(user) || ttl_ms <= 0)
        return MS_ERR_INVALID;
    rt_ephemeral *e = rt__hub_ephemeral(h);
    int64_t now = rt__now_ms();
    pthread_mutex_lock(&e->mu);
    eph_entry *x = find(e, channel, user, false);
    bool was_online = x && x->expires_ms > now;
    if (!x)
        x = insert(e, channel, user, false);
    if (!x) {
        pthread_mutex_unlock(&e->mu);
        return MS_ERR_UNAVAILABLE; /* out of memory, or the table is full */
    }
    x->local = true;
    x->expires_ms = now + ttl_ms;
    pthread_mutex_unlock(&e->mu);
    mirror_set(h, false, channel, user, ttl_ms);
    if (was_online)
        return 0;
    return publish_presence(h, channel, user, true, now + ttl_ms, ttl_ms);
}

int rt_presence_leave(rt_hub *h, ms_xid channel, ms_xid user)
{
    rt_ephemeral *e = rt__hub_ephemeral(h);
    int64_t now = rt__now_ms();
    bool was_online = false;
    pthread_mutex_lock(&e->mu);
    eph_entry *x = find(e, channel, user, false);
    if (x && x->local) {
        was_online = x->expires_ms > now;
        erase(e, x);
    }
    pthread_mutex_unlock(&e->mu);
    if (!was_online)
        return 0;
    mirror_del(h, false, channel, user);
    return publish_presence(h, channel, user, false, 0, 0);
}

int rt_ephemeral_sweep(rt_hub *h)
{
    rt_ephemeral *e = rt__hub_ephemeral(h);
    int64_t now = rt__now_ms();
    enum { MAXV = 128 };
    ms_xid offline[MAXV][2];
    int noff = 0, expired = 0;
    pthread_mutex_lock(&e->mu);
    for (eph_entry *x = e->head, *next; x; x = next) {
        next = x->next;
        if (x->expires_ms > now)
            continue;
        if (!x->typing) {
            expired++;
            if (x->local && noff < MAXV) {
                offline[noff][0] = x->channel;
                offline[noff][1] = x->user;
                noff++;
            } else if (x->local) {
                continue; /* the next sweep gets it */
            }
        }
        erase(e, x);
    }
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < noff; i++)
        publish_presence(h, offline[i][0], offline[i][1], false, 0, 0);
    return expired;
}

size_t rt_ephemeral_list(rt_hub *h, ms_xid channel, bool typing, ms_xid *users, size_t max)
{
    rt_ephemeral *e = rt__hub_ephemeral(h);
    int64_t now = rt__now_ms();
    size_t n = 0;
    pthread_mutex_lock(&e->mu);
    for (eph_entry *x = e->head; x && n < max; x = x->next)
        if (ms_xid_eq(x->channel, channel) && x->typing == typing && x->expires_ms > now)
            users[n++] = x->user;
    pthread_mutex_unlock(&e->mu);
    return n;
}

/* A user id of the hub's format from a JSON string; none when it is not one. */
static ms_xid json_id(rt_hub *h, json_t *v)
{
    ms_xid x = {0, 0};
    const char *s = json_string_value(v);
    if (s)
        (void)ms_xid_parse(rt__hub_id_format(h), s, json_string_length(v), &x);
    return x;
}

void rt__ephemeral_remote(rt_hub *h, const rt_msg *msg)
{
    json_t *root = json_loadb(msg->json, msg->len, 0, NULL);
    if (!root)
        return;
    json_t *data = json_object_get(root, "data");
    ms_xid user = json_id(h, json_object_get(data, "user_id"));
    const char *status = json_string_value(json_object_get(data, "status"));
    json_int_t ttl = json_integer_value(json_object_get(data, "ttl_ms"));
    bool typing = msg->kind == RT_TYPING;
    if (ms_xid_is_none(user) || (!typing && !status)) {
        json_decref(root);
        return;
    }
    if (ttl <= 0)
        ttl = RT_TYPING_TTL_MS;
    rt_ephemeral *e = rt__hub_ephemeral(h);
    int64_t now = rt__now_ms();
    pthread_mutex_lock(&e->mu);
    eph_entry *x = find(e, msg->channel, user, typing);
    if (!typing && strcmp(status, "offline") == 0) {
        if (x && !x->local)
            erase(e, x);
    } else {
        if (!x)
            x = insert(e, msg->channel, user, typing);
        if (x && !x->local) {
            /* Presence heartbeats are not broadcast: keep a remote entry a
             * few TTLs, until its instance says offline. */
            int64_t until = now + (typing ? ttl : ttl * REMOTE_TTL_FACTOR);
            if (until > x->expires_ms)
                x->expires_ms = until;
        }
    }
    pthread_mutex_unlock(&e->mu);
    json_decref(root);
}
