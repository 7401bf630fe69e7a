/* SPDX-License-Identifier: Apache-2.0 */
/*
 * realtime_api.h - the real-time endpoints of `msgstore serve` (docs/realtime.md):
 *
 *   GET  /v1/ws                                WebSocket, JSON protocol, many channels
 *   GET  /v1/channels/{channel_id}/events      Server-Sent Events of one channel
 *   POST /v1/channels/{channel_id}/typing      {"user_id"}: a typing indicator (10 s)
 *   GET  /v1/channels/{channel_id}/presence    who is online and who is typing
 *
 * It wires the realtime layer (src/realtime) into the server: a hub whose
 * workers are the server's worker loops, the commit hook that publishes
 * every committed change, and the Redis bridge when MSGSTORE_REDIS_URL is
 * set. All of them authenticated like the API.
 */
#ifndef MS_SERVER_REALTIME_API_H
#define MS_SERVER_REALTIME_API_H

#include "core/config.h"
#include "realtime/realtime.h"
#include "server/server.h"

#include <jansson.h>

typedef struct srv_rt srv_rt;

/*
 * Adds the routes and hooks to s (before srv_start) and starts the Redis
 * bridge when cfg->redis_url is set (a Redis that is down is not an error:
 * the bridge reconnects by itself). Returns 0 and *out, or a negative code
 * with a message in err. Free with srv_rt_free() after srv_stop().
 */
int srv_rt_install(srv *s, const ms_config *cfg, srv_rt **out, char *err, size_t errlen);

/* Stops the bridge and frees the hub; after srv_stop(). NULL is a no-op. */
void srv_rt_free(srv_rt *rt);

/* The hub (tests, benchmarks). */
rt_hub *srv_rt_hub(srv_rt *rt);

/*
 * The realtime part of /health: {"status":"ok"|"degraded","redis":"disabled"|
 * "connecting"|"up"|"down","redis_error":..., "subscribers":n, ...}. New
 * reference. "degraded" while a configured Redis is not up: this instance
 * still delivers to its own subscribers.
 */
json_t *srv_rt_health(srv_rt *rt, bool *degraded);

#endif
