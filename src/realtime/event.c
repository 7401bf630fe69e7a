/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event.c - event kinds and rendered, reference-counted messages.
 */
#include "core/error.h"
#include "realtime/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[RT_KIND_COUNT] = {
    [RT_MESSAGE_CREATED] = "message.created",
    [RT_MESSAGE_UPDATED] = "message.updated",
    [RT_MESSAGE_DELETED] = "message.deleted",
    [RT_REACTION_ADDED] = "reaction.added",
    [RT_REACTION_REMOVED] = "reaction.removed",
    [RT_PIN_ADDED] = "pin.added",
    [RT_PIN_REMOVED] = "pin.removed",
    [RT_READ_POSITION] = "read_position.updated",
    [RT_CHANNEL_UPDATED] = "channel.updated",
    [RT_TELEGRAM_SYNC] = "telegram_sync.updated",
    [RT_TYPING] = "typing",
    [RT_PRESENCE] = "presence",
    [RT_RESYNC] = "resync",
};

const char *rt_kind_name(rt_kind kind)
{
    if ((unsigned)kind >= RT_KIND_COUNT)
        return NULL;
    return kind_names[kind];
}

int rt_kind_parse(const char *name)
{
    for (int k = 0; k < RT_KIND_COUNT; k++)
        if (strcmp(kind_names[k], name) == 0)
            return k;
    return -1;
}

int64_t rt__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t rt__now_ms(void)
{
    return rt__now_us() / 1000;
}

void rt_msg_unref(rt_msg *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

static rt_msg *msg_alloc(rt_kind kind, ms_xid channel, uint64_t position, size_t cap)
{
    rt_msg *m = malloc(sizeof *m + cap);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->kind = (uint8_t)kind;
    m->remote = 0;
    m->channel = channel;
    m->position = position;
    m->origin = 0;
    m->seq = 0;
    m->created_us = rt__now_us();
    m->len = 0;
    return m;
}

rt_msg *rt__msg_render(rt_kind kind, ms_id_format f, ms_xid channel, uint64_t position,
                       const char *data, size_t len)
{
    if (!data || len == 0) {
        data = "{}";
        len = 2;
    }
    const char *name = rt_kind_name(kind);
    char head[160], ch[MS_XID_STRLEN];
    ms_xid_format(f, channel, ch);
    int n =
        snprintf(head, sizeof head,
                 "{\"type\":\"%s\",\"channel\":\"%s\",\"position\":\"%" PRIu64 "\",\"data\":", name,
                 ch, position);
    size_t cap = (size_t)n + len + 2;
    rt_msg *m = msg_alloc(kind, channel, position, cap);
    if (!m)
        return NULL;
    memcpy(m->json, head, (size_t)n);
    memcpy(m->json + n, data, len);
    m->json[(size_t)n + len] = '}';
    m->json[(size_t)n + len + 1] = '\0';
    m->len = (size_t)n + len + 1;
    return m;
}

rt_msg *rt__msg_raw(rt_kind kind, ms_xid channel, uint64_t position, const char *json, size_t len)
{
    rt_msg *m = msg_alloc(kind, channel, position, len + 1);
    if (!m)
        return NULL;
    memcpy(m->json, json, len);
    m->json[len] = '\0';
    m->len = len;
    return m;
}

rt_msg *rt__msg_resync(ms_id_format f, ms_xid channel, const char *reason)
{
    char buf[192], ch[MS_XID_STRLEN];
    int n;
    if (!ms_xid_is_none(channel))
        n = snprintf(buf, sizeof buf, "{\"type\":\"resync\",\"channel\":\"%s\",\"reason\":\"%s\"}",
                     (ms_xid_format(f, channel, ch), ch), reason);
    else
        n = snprintf(buf, sizeof buf, "{\"type\":\"resync\",\"channel\":null,\"reason\":\"%s\"}",
                     reason);
    if (n < 0 || (size_t)n >= sizeof buf)
        return NULL;
    return rt__msg_raw(RT_RESYNC, channel, 0, buf, (size_t)n);
}
