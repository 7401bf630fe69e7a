/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_other.c - reactions, pins, read positions, channel metadata and
 * Telegram sync state.
 */
#include "server/server_internal.h"
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    srv *s;
    http_request *r;
    ms_xid channel_id;
    uint64_t message_id;
    ms_xid user_id;
    const char *emoji; /* path memory: lives as long as the request */
    size_t emoji_len;
} call;

static call *call_new(srv *s, http_request *r)
{
    call *c = http_request_alloc(r, sizeof *c);
    memset(c, 0, sizeof *c);
    c->s = s;
    c->r = r;
    return c;
}

static void call_failed(srv *s, http_request *r, int rc)
{
    srv__store_error(s, r, rc, NULL, false);
}

static int message_ids(const srv *s, http_request *r, ms_xid *channel_id, uint64_t *message_id)
{
    return srv__path_xid(s, r, "channel_id", channel_id) ||
           srv__path_id(r, "message_id", message_id);
}

/* Emoji from the path: decoded UTF-8 (validated by the store), no NUL. */
static int path_emoji(http_request *r, const char **out, size_t *len)
{
    *out = http_request_param(r, "emoji", len);
    if (!*out || *len == 0 || *len > STORE_MAX_EMOJI_BYTES || memchr(*out, '\0', *len)) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                           "emoji: expected 1 to %d characters of percent-encoded UTF-8",
                           STORE_MAX_EMOJI_CHARS);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reactions                                                          */

static json_t *reaction_json(const call *c, uint64_t count, bool changed)
{
    json_t *e = json_stringn(c->emoji, c->emoji_len);
    return json_pack("{s:o,s:o,s:o,s:o,s:I,s:b}", "channel_id", srv__xid(c->s, c->channel_id),
                     "message_id", srv__id(c->message_id), "emoji", e ? e : json_string(""),
                     "user_id", srv__xid(c->s, c->user_id), "count", (json_int_t)count, "changed",
                     changed);
}

static void on_reaction(call *c, int status, const char *detail, const store_reaction_result *res,
                        bool add)
{
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    int ev = !res->changed ? -1 : add ? SRV_EV_REACTION_ADDED : SRV_EV_REACTION_REMOVED;
    srv__respond_publish(c->s, c->r, add && res->changed ? 201 : 200,
                         reaction_json(c, res->count, res->changed), ev, c->channel_id,
                         c->message_id);
}

static void on_reaction_add(int status, const char *detail, const store_reaction_result *res,
                            void *ud)
{
    on_reaction(ud, status, detail, res, true);
}

static void on_reaction_remove(int status, const char *detail, const store_reaction_result *res,
                               void *ud)
{
    on_reaction(ud, status, detail, res, false);
}

static void h_reaction(http_request *r, srv *s, bool add)
{
    call *c = call_new(s, r);
    if (message_ids(s, r, &c->channel_id, &c->message_id) ||
        path_emoji(r, &c->emoji, &c->emoji_len) || srv__path_xid(s, r, "user_id", &c->user_id))
        return;
    store_reaction_req q = {.channel_id = c->channel_id,
                            .message_id = c->message_id,
                            .emoji = c->emoji,
                            .user_id = c->user_id};
    int rc = add ? store_reaction_add(s->st, http_request_loop(r), &q, on_reaction_add, c)
                 : store_reaction_remove(s->st, http_request_loop(r), &q, on_reaction_remove, c);
    if (rc)
        call_failed(s, r, rc);
}

static void h_reaction_put(http_request *r, void *ctx)
{
    h_reaction(r, ctx, true);
}

static void h_reaction_delete(http_request *r, void *ctx)
{
    h_reaction(r, ctx, false);
}

static void on_reactions(int status, const char *detail, const store_reactions_result *res,
                         void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < res->count; i++)
        json_array_append_new(items, json_pack("{s:s,s:I}", "emoji", res->items[i].emoji, "count",
                                               (json_int_t)res->items[i].count));
    http_respond_json(c->r, 200,
                      json_pack("{s:o,s:o,s:o}", "channel_id", srv__xid(c->s, c->channel_id),
                                "message_id", srv__id(c->message_id), "reactions", items));
}

static void h_reactions(http_request *r, void *ctx)
{
    srv *s = ctx;
    call *c = call_new(s, r);
    if (message_ids(s, r, &c->channel_id, &c->message_id))
        return;
    store_get_req q = {.channel_id = c->channel_id, .message_id = c->message_id};
    int rc = store_reactions_get(s->st, http_request_loop(r), &q, on_reactions, c);
    if (rc)
        call_failed(s, r, rc);
}

static void on_users(int status, const char *detail, const store_users_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    json_t *users = json_array();
    for (size_t i = 0; i < res->count; i++)
        json_array_append_new(users, srv__xid(c->s, res->user_ids[i]));
    json_t *e = json_stringn(c->emoji, c->emoji_len);
    json_t *next =
        res->more && res->count ? srv__xid(c->s, res->user_ids[res->count - 1]) : json_null();
    http_respond_json(c->r, 200,
                      json_pack("{s:o,s:o,s:o,s:o,s:b,s:o}", "channel_id",
                                srv__xid(c->s, c->channel_id), "message_id", srv__id(c->message_id),
                                "emoji", e ? e : json_string(""), "users", users, "more", res->more,
                                "next_after", next));
}

static void h_reaction_users(http_request *r, void *ctx)
{
    srv *s = ctx;
    call *c = call_new(s, r);
    store_reaction_users_req q = {0};
    bool has_after;
    if (message_ids(s, r, &c->channel_id, &c->message_id) ||
        path_emoji(r, &c->emoji, &c->emoji_len) ||
        srv__query_xid(s, r, "after", &q.after_user_id, &has_after) ||
        srv__query_limit(r, &q.limit))
        return;
    q.channel_id = c->channel_id;
    q.message_id = c->message_id;
    q.emoji = c->emoji;
    int rc = store_reaction_users(s->st, http_request_loop(r), &q, on_users, c);
    if (rc)
        call_failed(s, r, rc);
}

/* ------------------------------------------------------------------ */
/* Pins                                                               */

static void on_pinned(int status, const char *detail, const store_pin_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, true);
        return;
    }
    srv__respond_publish(c->s, c->r, res->duplicate ? 200 : 201, srv__pin_json(c->s, &res->pin),
                         res->duplicate ? -1 : SRV_EV_PIN_ADDED, c->channel_id, c->message_id);
}

static void h_pin(http_request *r, void *ctx)
{
    srv *s = ctx;
    static const char *const fields[] = {"pinned_by", NULL};
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id) ||
        srv__path_id(r, "message_id", &c->message_id))
        return;
    json_t *b = srv__body(r, true, fields);
    if (!b)
        return;
    store_pin_req q = {.channel_id = c->channel_id, .message_id = c->message_id};
    if (srv__field_xid(s, r, b, "pinned_by", true, &q.pinned_by) == 0) {
        int rc = store_pin(s->st, http_request_loop(r), &q, on_pinned, c);
        if (rc)
            call_failed(s, r, rc);
    }
    json_decref(b);
}

static void on_unpinned(int status, const char *detail, const store_pin_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    srv__respond_publish(c->s, c->r, 200, srv__pin_json(c->s, &res->pin), SRV_EV_PIN_REMOVED,
                         c->channel_id, c->message_id);
}

static void h_unpin(http_request *r, void *ctx)
{
    srv *s = ctx;
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id) ||
        srv__path_id(r, "message_id", &c->message_id))
        return;
    store_pin_req q = {.channel_id = c->channel_id, .message_id = c->message_id};
    int rc = store_unpin(s->st, http_request_loop(r), &q, on_unpinned, c);
    if (rc)
        call_failed(s, r, rc);
}

static void on_pins(int status, const char *detail, const store_pins_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < res->count; i++)
        json_array_append_new(items, srv__pin_json(c->s, &res->items[i]));
    http_respond_json(
        c->r, 200,
        json_pack("{s:o,s:o}", "channel_id", srv__xid(c->s, c->channel_id), "pins", items));
}

static void h_pins(http_request *r, void *ctx)
{
    srv *s = ctx;
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id))
        return;
    store_channel_req q = {.channel_id = c->channel_id};
    int rc = store_pins_list(s->st, http_request_loop(r), &q, on_pins, c);
    if (rc)
        call_failed(s, r, rc);
}

/* ------------------------------------------------------------------ */
/* Read positions                                                     */

static json_t *read_json(const call *c, const store_read_result *res, bool with_unread)
{
    json_t *o =
        json_pack("{s:o,s:o,s:o,s:o}", "channel_id", srv__xid(c->s, c->channel_id), "user_id",
                  srv__xid(c->s, c->user_id), "last_read_id",
                  res->last_read_id ? srv__id(res->last_read_id) : json_null(), "updated_at_ms",
                  res->updated_at_ms ? json_integer((json_int_t)res->updated_at_ms) : json_null());
    if (!o)
        return NULL;
    if (with_unread) {
        json_object_set_new(o, "unread_count", json_integer(res->unread_count));
        json_object_set_new(o, "unread_capped", json_boolean(res->unread_capped));
    } else {
        json_object_set_new(o, "moved", json_boolean(res->moved));
    }
    return o;
}

static void on_read_set(int status, const char *detail, const store_read_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, true);
        return;
    }
    srv__respond_publish(c->s, c->r, 200, read_json(c, res, false),
                         res->moved ? SRV_EV_READ_POSITION : -1, c->channel_id, 0);
}

static void h_read_put(http_request *r, void *ctx)
{
    srv *s = ctx;
    static const char *const fields[] = {"message_id", NULL};
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id) ||
        srv__path_xid(s, r, "user_id", &c->user_id))
        return;
    json_t *b = srv__body(r, true, fields);
    if (!b)
        return;
    store_read_req q = {.channel_id = c->channel_id, .user_id = c->user_id};
    if (srv__field_id(r, b, "message_id", true, &q.message_id) == 0) {
        int rc = store_read_set(s->st, http_request_loop(r), &q, on_read_set, c);
        if (rc)
            call_failed(s, r, rc);
    }
    json_decref(b);
}

static void on_read_get(int status, const char *detail, const store_read_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    http_respond_json(c->r, 200, read_json(c, res, true));
}

static void h_read_get(http_request *r, void *ctx)
{
    srv *s = ctx;
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id) ||
        srv__path_xid(s, r, "user_id", &c->user_id))
        return;
    store_read_req q = {.channel_id = c->channel_id, .user_id = c->user_id};
    int rc = store_read_get(s->st, http_request_loop(r), &q, on_read_get, c);
    if (rc)
        call_failed(s, r, rc);
}

/* ------------------------------------------------------------------ */
/* Channel metadata                                                   */

static void on_channel_put(int status, const char *detail, const store_channel_result *res,
                           void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, true);
        return;
    }
    srv__respond_publish(c->s, c->r, 200, srv__channel_json(c->s, &res->channel),
                         SRV_EV_CHANNEL_UPDATED, c->channel_id, 0);
}

static void h_channel_put(http_request *r, void *ctx)
{
    srv *s = ctx;
    static const char *const fields[] = {"name", "type", "created_at_ms", NULL};
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id))
        return;
    json_t *b = srv__body(r, false, fields);
    if (!b)
        return;
    store_channel_upsert_req q = {.channel_id = c->channel_id};
    if (srv__field_str(r, b, "name", false, &q.name, NULL) == 0 &&
        srv__field_str(r, b, "type", false, &q.type, NULL) == 0 &&
        srv__field_u64ms(r, b, "created_at_ms", &q.created_at_ms) == 0) {
        int rc = store_channel_upsert(s->st, http_request_loop(r), &q, on_channel_put, c);
        if (rc)
            call_failed(s, r, rc);
    }
    json_decref(b);
}

static void on_channel_get(int status, const char *detail, const store_channel_result *res,
                           void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    http_respond_json(c->r, 200, srv__channel_json(c->s, &res->channel));
}

static void h_channel_get(http_request *r, void *ctx)
{
    srv *s = ctx;
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id))
        return;
    store_channel_req q = {.channel_id = c->channel_id};
    int rc = store_channel_get(s->st, http_request_loop(r), &q, on_channel_get, c);
    if (rc)
        call_failed(s, r, rc);
}

/* ------------------------------------------------------------------ */
/* Telegram sync state                                                */

static void on_sync(int status, const char *detail, const store_sync_result *res, void *ud,
                    bool put)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, put);
        return;
    }
    srv__respond_publish(c->s, c->r, 200, srv__sync_json(c->s, &res->state),
                         put ? SRV_EV_TELEGRAM_SYNC : -1, c->channel_id, 0);
}

static void on_sync_put(int status, const char *detail, const store_sync_result *res, void *ud)
{
    on_sync(status, detail, res, ud, true);
}

static void on_sync_get(int status, const char *detail, const store_sync_result *res, void *ud)
{
    on_sync(status, detail, res, ud, false);
}

static void h_sync_put(http_request *r, void *ctx)
{
    srv *s = ctx;
    static const char *const fields[] = {"telegram_chat_id", "last_synced_message_id", "direction",
                                         NULL};
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id))
        return;
    json_t *b = srv__body(r, true, fields);
    if (!b)
        return;
    store_sync_update_req q = {.channel_id = c->channel_id, .direction = STORE_SYNC_BIDIRECTIONAL};
    const char *dir = NULL;
    if (srv__field_i64(r, b, "telegram_chat_id", true, INT64_MIN, true, &q.telegram_chat_id) ||
        srv__field_i64(r, b, "last_synced_message_id", true, 0, false, &q.last_synced_message_id) ||
        srv__field_str(r, b, "direction", false, &dir, NULL))
        goto out;
    if (dir && store_sync_direction_parse(dir, &q.direction) != 0) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                           "field direction: expected bidirectional, telegram_to_web or "
                           "web_to_telegram");
        goto out;
    }
    int rc = store_sync_update(s->st, http_request_loop(r), &q, on_sync_put, c);
    if (rc)
        call_failed(s, r, rc);
out:
    json_decref(b);
}

static void h_sync_get(http_request *r, void *ctx)
{
    srv *s = ctx;
    call *c = call_new(s, r);
    if (srv__path_xid(s, r, "channel_id", &c->channel_id))
        return;
    store_channel_req q = {.channel_id = c->channel_id};
    int rc = store_sync_get(s->st, http_request_loop(r), &q, on_sync_get, c);
    if (rc)
        call_failed(s, r, rc);
}

int srv__routes_other(srv *s)
{
    http_server *h = s->http;
    const unsigned A = HTTP_ROUTE_AUTH_API;
    const char *react = "/v1/channels/{channel_id}/messages/{message_id}/reactions";
    const char *react_e = "/v1/channels/{channel_id}/messages/{message_id}/reactions/{emoji}";
    const char *react_u =
        "/v1/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}";
    int rc = 0;
    rc |= http_server_route(h, HTTP_GET, react, A, h_reactions, s);
    rc |= http_server_route(h, HTTP_GET, react_e, A, h_reaction_users, s);
    rc |= http_server_route(h, HTTP_PUT, react_u, A, h_reaction_put, s);
    rc |= http_server_route(h, HTTP_DELETE, react_u, A, h_reaction_delete, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/pins", A, h_pins, s);
    rc |=
        http_server_route(h, HTTP_PUT, "/v1/channels/{channel_id}/pins/{message_id}", A, h_pin, s);
    rc |= http_server_route(h, HTTP_DELETE, "/v1/channels/{channel_id}/pins/{message_id}", A,
                            h_unpin, s);
    rc |= http_server_route(h, HTTP_PUT, "/v1/channels/{channel_id}/read-positions/{user_id}", A,
                            h_read_put, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/read-positions/{user_id}", A,
                            h_read_get, s);
    rc |= http_server_route(h, HTTP_PUT, "/v1/channels/{channel_id}", A, h_channel_put, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}", A, h_channel_get, s);
    rc |=
        http_server_route(h, HTTP_PUT, "/v1/channels/{channel_id}/telegram-sync", A, h_sync_put, s);
    rc |=
        http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/telegram-sync", A, h_sync_get, s);
    return rc ? MS_ERR_INVALID : 0;
}
