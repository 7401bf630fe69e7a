/* SPDX-License-Identifier: Apache-2.0 */
/*
 * realtime.h - real-time delivery: events, the hub, subscribers, the Redis
 * bridge, typing and presence.
 *
 * The path of one event:
 *
 *   store write commits ──► rt_publish()            any thread, never blocks
 *                              │ renders the JSON once into a refcounted rt_msg,
 *                              │ appends it to the channel's replay ring and
 *                              ├──► worker inboxes   (lock-free MPSC + uv_async, one per worker
 * loop) │        └──► subscribers of the channel on that loop: │             bounded queue each;
 * overflow → resync + close └──► Redis bridge     (own thread) PUBLISH msgstore:rt:<shard> other
 * instance's bridge ──► same fan-out, its own events skipped by instance id
 *
 * Positions: every event carries its channel and a position, a snowflake
 * taken when it is published (time-ordered, unique per instance since the
 * worker id is). A client that reconnects with the last position it saw gets
 * the events it missed from the channel's replay ring, or a "resync" event
 * when the ring cannot prove it has them all (instance restarted, ring
 * overflowed, Redis gap): it then re-reads the channel from the store through
 * the REST API. Delivery is at least once: clients drop an event whose
 * (channel, position) they already have.
 *
 * Threads: the hub is shared; subscribers belong to one worker loop and are
 * only touched on it. rt_publish and the bridge run anywhere.
 */
#ifndef MS_REALTIME_H
#define MS_REALTIME_H

#include "core/snowflake.h"
#include "msgstore/id.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ------------------------------------------------------------------ events */

typedef enum rt_kind {
    RT_MESSAGE_CREATED = 0, /* "message.created"        data: the message */
    RT_MESSAGE_UPDATED = 1, /* "message.updated"        data: the message after the edit */
    RT_MESSAGE_DELETED = 2, /* "message.deleted"        data: the message, flagged deleted */
    RT_REACTION_ADDED = 3,  /* "reaction.added"         data: {message_id, emoji, user_id, count} */
    RT_REACTION_REMOVED = 4, /* "reaction.removed"       data: same */
    RT_PIN_ADDED = 5,        /* "pin.added"              data: the pin */
    RT_PIN_REMOVED = 6,      /* "pin.removed"            data: the pin */
    RT_READ_POSITION = 7,    /* "read_position.updated"  data: the read position */
    RT_CHANNEL_UPDATED = 8,  /* "channel.updated"        data: the channel */
    RT_TELEGRAM_SYNC = 9,    /* "telegram_sync.updated"  data: the sync state */
    RT_TYPING = 10,          /* "typing"   ephemeral: never replayed */
    RT_PRESENCE = 11,        /* "presence" ephemeral: never replayed */
    RT_RESYNC = 12,          /* "resync"   made by the hub for subscribers; never published */
    RT_KIND_COUNT
} rt_kind;

/* The wire name, e.g. "message.created" (the server's event names); NULL for an unknown kind. */
const char *rt_kind_name(rt_kind kind);

/* Parses a wire name; returns the kind or -1. */
int rt_kind_parse(const char *name);

/* Typing and presence are not kept for replay. */
static inline bool rt_kind_ephemeral(rt_kind kind)
{
    return kind == RT_TYPING || kind == RT_PRESENCE || kind == RT_RESYNC;
}

/*
 * One rendered event, immutable once made and shared by every queue that
 * holds it (reference counted, freed by the last rt_msg_unref).
 * json is the whole event as clients receive it:
 *   {"type":"message.created","channel":"12","position":"34","data":{...}}
 * NUL-terminated, len bytes without the NUL.
 */
typedef struct rt_msg {
    _Atomic uint32_t refs;
    uint8_t kind;       /* rt_kind */
    uint8_t remote;     /* came from another instance through Redis */
    ms_xid channel;     /* none for a connection-wide resync */
    uint64_t position;  /* snowflake; 0 for a resync */
    uint64_t origin;    /* instance id of the publisher */
    uint64_t seq;       /* arrival order on this instance (hub internal) */
    int64_t created_us; /* CLOCK_REALTIME µs at publish, for latency metrics */
    size_t len;
    char json[];
} rt_msg;

static inline rt_msg *rt_msg_ref(rt_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

/* Drops one reference; frees the message with the last one. NULL is a no-op. */
void rt_msg_unref(rt_msg *m);

/* --------------------------------------------------------------------- hub */

typedef struct rt_hub rt_hub;
typedef struct rt_bridge rt_bridge;

/* The most worker loops a hub serves: MSGSTORE_WORKERS's maximum. */
#define RT_HUB_MAX_WORKERS 256

typedef struct rt_hub_options {
    int workers;             /* worker loops that hold subscribers, 1..RT_HUB_MAX_WORKERS */
    uint32_t queue_max;      /* events queued per subscriber before overflow (default 1024) */
    size_t queue_bytes;      /* bytes queued per subscriber before overflow (default 4 MiB) */
    uint32_t ring_events;    /* events kept per channel for replay (default 256) */
    size_t ring_bytes;       /* bytes kept per channel for replay (default 512 KiB) */
    int64_t ring_idle_ms;    /* a ring without subscribers is dropped after this (default 300 s) */
    uint32_t max_channels;   /* channels with a ring at once (default 100000) */
    int64_t replay_grace_ms; /* replay also this far before `since` (default 1000) */
    uint32_t shards;         /* Redis channel shards (default 64, max 4096) */
    int worker_id;           /* snowflake worker id of this instance (0..1023) */
    uint64_t epoch_ms;       /* snowflake epoch (0: Discord's) */
    ms_id_format id_format;  /* how channel and user ids are written (the store's) */
} rt_hub_options;

/* Fills o with the defaults above (workers = 1). */
void rt_hub_options_default(rt_hub_options *o);

/*
 * Creates a hub. The hub owns its rings and inboxes; call rt_hub_attach on
 * each worker loop before subscribers are made there. Returns 0,
 * MS_ERR_INVALID (bad option) or MS_ERR_NOMEM.
 */
int rt_hub_create(const rt_hub_options *o, rt_hub **out);

/*
 * Binds worker `worker` to `loop` (call on that loop's thread, before it
 * runs or from a callback on it). Initializes a uv_async on the loop.
 * Returns 0, MS_ERR_INVALID (bad index, already attached) or a uv error.
 */
int rt_hub_attach(rt_hub *h, int worker, uv_loop_t *loop);

/*
 * Unbinds a worker: closes its uv_async (the loop must run once more for the
 * close to finish) and drops what its inbox holds. Every subscriber of the
 * worker must have been destroyed. Call on the worker's thread.
 */
void rt_hub_detach(rt_hub *h, int worker);

/*
 * Destroys the hub. Every worker must be detached and the bridge stopped.
 * NULL is a no-op.
 */
void rt_hub_destroy(rt_hub *h);

/* This instance's id (random per process start), used to skip own events coming back from Redis. */
uint64_t rt_hub_instance(const rt_hub *h);

/*
 * Publishes an event: call it only after the write it reports has
 * committed. data is the event's payload, a JSON object (or NULL for {}),
 * copied. The hub assigns the position; *position_out (may be NULL) gets it.
 * Thread-safe, never blocks on a subscriber or on Redis: local subscribers
 * are reached through their worker inboxes, other instances through the
 * bridge when one is attached and connected.
 * Returns 0, MS_ERR_INVALID (kind is RT_RESYNC or unknown, channel none),
 * MS_ERR_NOMEM or MS_ERR_CLOCK.
 */
int rt_publish(rt_hub *h, rt_kind kind, ms_xid channel, const char *data, size_t len,
               uint64_t *position_out);

/* Counts for /health and tests: subscribers, channels with a ring, events published. */
typedef struct rt_hub_stats {
    int64_t subscribers;
    int64_t channels;
    uint64_t published;
    uint64_t delivered;
    uint64_t overflows;
    uint64_t resyncs;
} rt_hub_stats;
void rt_hub_stats_get(rt_hub *h, rt_hub_stats *out);

/* ------------------------------------------------------------- subscribers */

typedef struct rt_sub rt_sub;

/*
 * Called on the worker loop when the subscriber's queue went from empty to
 * non-empty, or when it overflowed (then the queue holds one resync event
 * and rt_sub_closing() is true: send it, then close the connection).
 * The callback may pop, write, and even destroy this subscriber.
 */
typedef void (*rt_ready_fn)(rt_sub *sub, void *ctx);

/*
 * Creates a subscriber on worker `worker` (call on that loop's thread).
 * It follows no channel yet. Returns 0, MS_ERR_INVALID or MS_ERR_NOMEM.
 */
int rt_sub_create(rt_hub *h, int worker, rt_ready_fn ready, void *ctx, rt_sub **out);

/*
 * Follows `channel`. With has_since, first queues what the channel's ring
 * holds after position `since` (replay), or one resync event for the
 * channel when the ring cannot prove it has everything since then.
 * Following a channel twice is a no-op. Does not call the ready callback:
 * the caller looks at the queue itself afterwards.
 * Returns 0, MS_ERR_INVALID (channel none), MS_ERR_NOMEM, or MS_ERR_TOO_LARGE
 * (the subscriber already follows RT_SUB_MAX_CHANNELS channels).
 */
#define RT_SUB_MAX_CHANNELS 256
int rt_sub_add(rt_sub *s, ms_xid channel, bool has_since, uint64_t since);

/* Stops following a channel; queued events of it stay queued. 0 or MS_ERR_NOT_FOUND. */
int rt_sub_remove(rt_sub *s, ms_xid channel);

/* Whether the subscriber follows the channel. */
bool rt_sub_follows(const rt_sub *s, ms_xid channel);

/* Takes the oldest queued event (the caller owns that reference), or NULL. */
rt_msg *rt_sub_pop(rt_sub *s);

/* Queued events. */
uint32_t rt_sub_queued(const rt_sub *s);

/* True once the queue overflowed: after the queued resync, close the connection. */
bool rt_sub_closing(const rt_sub *s);

/* Stops following every channel, drops the queue, frees. NULL is a no-op. */
void rt_sub_destroy(rt_sub *s);

/* ------------------------------------------------------------ Redis bridge */

typedef enum rt_bridge_state {
    RT_BRIDGE_DISABLED = 0,   /* no Redis configured: one instance */
    RT_BRIDGE_CONNECTING = 1, /* first connection not up yet */
    RT_BRIDGE_UP = 2,
    RT_BRIDGE_DOWN = 3, /* lost; reconnecting by itself, local delivery goes on */
} rt_bridge_state;

const char *rt_bridge_state_name(rt_bridge_state s);

/* A parsed MSGSTORE_REDIS_URL. */
typedef struct rt_redis_url {
    char host[256];
    int port;           /* 6379 by default */
    char user[128];     /* ACL user; "" with a password: the default user */
    char password[256]; /* "": no AUTH */
    int db;             /* database for the typing/presence keys (pub/sub spans all) */
    bool tls;           /* rediss:// */
} rt_redis_url;

/* TLS files for rediss:// (PEM; NULL or "": none, the CA from the system store). */
typedef struct rt_redis_tls {
    const char *ca_file;
    const char *cert_file; /* client certificate (Redis with tls-auth-clients) */
    const char *key_file;  /* its key ("": in cert_file) */
} rt_redis_tls;

/*
 * Parses redis://[[user]:password@]host[:port][/db] (also without the
 * scheme; user and password percent-decoded; port 6379 and db 0 by
 * default) and rediss:// (tls set). Returns 0, or MS_ERR_INVALID with what
 * is wrong in err (never the password).
 */
int rt_redis_url_parse(const char *url, rt_redis_url *out, char *err, size_t errlen);

/*
 * Starts the bridge on its own thread and loop: connects to Redis at url
 * (AUTH with the url's user and password, SELECT its db, on both
 * connections), subscribes to the shards that local subscribers need,
 * publishes this instance's events, reconnects with backoff when Redis goes
 * away. What arrives from Redis is checked before it reaches a subscriber
 * (framing, kind, channel, position, JSON). With rediss:// the connections
 * use TLS (tls: CA file, NULL or "" for the system store; optional client
 * certificate and key), verifying the certificate and the URL's host. The
 * hub must outlive the bridge. Returns 0, MS_ERR_INVALID (bad url, or an
 * unreadable CA/certificate/key; err says which) or MS_ERR_NOMEM; a Redis
 * that is down is not an error (state DOWN).
 */
int rt_bridge_start(rt_hub *h, const char *url, const rt_redis_tls *tls, rt_bridge **out, char *err,
                    size_t errlen);

/* Stops the thread, closes the connections, frees. NULL is a no-op. */
void rt_bridge_stop(rt_bridge *b);

/*
 * The bridge's state for /health: state, and the last error (NUL-terminated,
 * empty when none) copied into err. Thread-safe. With no bridge (b NULL):
 * RT_BRIDGE_DISABLED.
 */
rt_bridge_state rt_bridge_status(rt_bridge *b, char *err, size_t errlen);

/* Counts for tests and metrics. */
typedef struct rt_bridge_stats {
    uint64_t published;  /* PUBLISHes acknowledged by Redis */
    uint64_t received;   /* events from other instances */
    uint64_t dropped;    /* not sent to Redis (down, or outbox full) */
    uint64_t reconnects; /* successful connections after the first */
} rt_bridge_stats;
void rt_bridge_stats_get(rt_bridge *b, rt_bridge_stats *out);

/* ------------------------------------------------------- typing, presence */

#define RT_TYPING_TTL_MS 10000

/*
 * User `user` types in `channel`: kept for RT_TYPING_TTL_MS (Redis SET PX
 * when the bridge is up, else the in-process table) and published as a
 * "typing" event with {"user_id","expires_at"}. A user who typed in the
 * channel less than a second ago is not published again (clients repeat
 * the signal while typing). Thread-safe. Returns 0, MS_ERR_INVALID (an id
 * is none), MS_ERR_UNAVAILABLE (the table holds a million entries, or out of
 * memory) or an error of rt_publish.
 */
int rt_typing(rt_hub *h, ms_xid channel, ms_xid user);

/*
 * Presence heartbeat of `user` in `channel`, good for ttl_ms. The first
 * heartbeat (or the first after the user went offline) publishes a
 * "presence" event {"user_id","status":"online"}; when no heartbeat comes
 * for ttl_ms, or rt_presence_leave is called, {"status":"offline"} is
 * published. Thread-safe. Returns 0, MS_ERR_INVALID, MS_ERR_UNAVAILABLE (as
 * rt_typing) or an error of rt_publish.
 */
int rt_presence_heartbeat(rt_hub *h, ms_xid channel, ms_xid user, int64_t ttl_ms);

/* The user left the channel (connection closed): publishes offline if online. */
int rt_presence_leave(rt_hub *h, ms_xid channel, ms_xid user);

/*
 * Expires typing and presence entries whose time passed, publishing
 * offline events. The bridge's thread calls it every 500 ms; with no
 * bridge, the server calls it from a timer (any thread). Returns how many
 * presence entries expired.
 */
int rt_ephemeral_sweep(rt_hub *h);

/*
 * Copies into users[] (at most max) the users typing in (typing=true) or
 * present in `channel` according to this instance's table; returns how
 * many. Thread-safe.
 */
size_t rt_ephemeral_list(rt_hub *h, ms_xid channel, bool typing, ms_xid *users, size_t max);

#endif
