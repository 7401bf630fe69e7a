/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h - `msgstore serve`: the HTTP/JSON API over the message store.
 *
 * srv_new() builds an http_server (http.h) from the configuration, with the
 * API routes (/v1/...), the probes (/health/live, /health/ready, /health),
 * /metrics and the bearer-token guard. Other layers add their own routes on
 * srv_http() before srv_start() (the realtime layer: WebSocket and SSE), and
 * get every committed change through the commit hook.
 *
 * Lifecycle: srv_new -> (routes, hooks) -> srv_start -> srv_stop -> srv_free.
 * The store is the caller's: it must outlive the server (close it after
 * srv_stop(), which detaches every worker loop from it).
 */
#ifndef MS_SERVER_SERVER_H
#define MS_SERVER_SERVER_H

#include "core/config.h"
#include "server/http.h"

#include <msgstore/store.h>
#include <stdint.h>

typedef struct srv srv;

/* What a committed write changed; the kinds are also the event names. */
typedef enum srv_event_kind {
    SRV_EV_MESSAGE_CREATED = 0, /* "message.created"  json: the message */
    SRV_EV_MESSAGE_UPDATED,     /* "message.updated"  json: the message after the edit */
    SRV_EV_MESSAGE_DELETED,     /* "message.deleted"  json: the message, flagged deleted */
    SRV_EV_REACTION_ADDED,      /* "reaction.added"   json: {channel_id, message_id, emoji, user_id,
                                   count} */
    SRV_EV_REACTION_REMOVED,    /* "reaction.removed" json: same */
    SRV_EV_PIN_ADDED,           /* "pin.added"        json: the pin */
    SRV_EV_PIN_REMOVED,         /* "pin.removed"      json: the pin */
    SRV_EV_READ_POSITION,       /* "read_position.updated" json: the read position */
    SRV_EV_CHANNEL_UPDATED,     /* "channel.updated"  json: the channel */
    SRV_EV_TELEGRAM_SYNC,       /* "telegram_sync.updated" json: the sync state */
} srv_event_kind;
#define SRV_EV_COUNT 10

/* "message.created", ...; NULL out of range. */
const char *srv_event_name(srv_event_kind k);

typedef struct srv_event {
    srv_event_kind kind;
    ms_xid channel_id;
    uint64_t message_id; /* 0 when the change is not about one message */
    const char *json;    /* the changed resource as the API returns it (compact JSON, not
                            NUL-terminated); valid only during the call */
    size_t json_len;
    int worker; /* the worker (and loop) the hook runs on */
    uv_loop_t *loop;
    const char *request_id;
} srv_event;

/*
 * Called on the worker's loop thread after a write was committed (its store
 * callback succeeded) and changed something (no call for a duplicate insert,
 * a repeated reaction or a read position that did not move), before the
 * client gets its answer. Must not block; copy what it keeps.
 */
typedef void (*srv_commit_hook_fn)(const srv_event *ev, void *ctx);

/*
 * Builds the server for cfg over st (borrowed; must outlive the server).
 * Checks the auth settings: in the production profile, no token configured
 * is an error (MS_ERR_INVALID, message in err); elsewhere it opens the API
 * with a warning. Returns 0 and *out, or a negative code with err filled.
 */
int srv_new(const ms_config *cfg, store *st, srv **out, char *err, size_t errlen);

/* The HTTP server, to add routes (http_server_route) before srv_start(). */
http_server *srv_http(srv *s);

/* The store the server uses. */
store *srv_store(const srv *s);

/* Sets the commit hook (one; NULL removes it). Before srv_start(). */
void srv_set_commit_hook(srv *s, srv_commit_hook_fn fn, void *ctx);

/*
 * Extra per-worker hooks (see http_server_options), run before the server's
 * own: on_worker_stop runs before the store is detached from the loop.
 * Before srv_start().
 */
void srv_set_worker_hooks(srv *s, http_worker_hook_fn on_start, http_worker_hook_fn on_shutdown,
                          http_worker_hook_fn on_stop, void *ctx);

/*
 * Adds a section `name` to GET /health (up to SRV_HEALTH_SECTIONS_MAX, each
 * name once; before srv_start()). fn runs on
 * a worker's loop thread for every /health request, must not block, and
 * returns a new JSON object; setting *degraded makes the top-level status
 * "degraded" (still 200: the instance serves, a dependency such as Redis
 * is missing).
 */
#define SRV_HEALTH_SECTIONS_MAX 4
typedef json_t *(*srv_health_section_fn)(void *ctx, bool *degraded);
void srv_set_health_section(srv *s, const char *name, srv_health_section_fn fn, void *ctx);

/* Starts listening and the background health checker. 0 or a negative code (err filled). */
int srv_start(srv *s, char *err, size_t errlen);

/* The bound port (after start). */
int srv_port(const srv *s);

/*
 * Graceful stop (see http_server_stop); stops the health checker. Returns
 * the number of requests cut at the deadline (0: all finished).
 */
int srv_stop(srv *s);

void srv_free(srv *s);

#endif
