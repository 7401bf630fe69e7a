/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_messages.c - /v1/channels/{channel_id}/messages[/{message_id}[/history]]
 * and the Telegram lookup /v1/telegram/{chat_id}/messages/{message_id}.
 *
 * Each handler validates what it can without the store (ids, JSON shape),
 * then makes one asynchronous store call whose callback, on the same worker
 * loop, answers and (for writes that changed something) calls the commit hook.
 */
#include "server/server_internal.h"
#include "core/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    srv *s;
    http_request *r;
    ms_xid channel_id;
    uint64_t message_id;
} call;

static call *call_new(srv *s, http_request *r, ms_xid channel_id, uint64_t message_id)
{
    call *c = http_request_alloc(r, sizeof *c);
    c->s = s;
    c->r = r;
    c->channel_id = channel_id;
    c->message_id = message_id;
    return c;
}

/* Answers one message (and publishes it when ev_kind >= 0). */
static void respond_message(call *c, int status, const store_message *m, int ev_kind)
{
    srv__jw w;
    srv__jw_init(&w);
    srv__jw_message(&w, c->s->idf, m);
    srv__jw_lit(&w, "\n");
    srv__respond_publish_text(c->s, c->r, status, w.p, w.len, w.oom, ev_kind, m->channel_id, m->id);
    srv__jw_free(&w);
}

/* A store call that failed before queuing (shutdown, out of memory). */
static void call_failed(srv *s, http_request *r, int rc)
{
    srv__store_error(s, r, rc, NULL, false);
}

/* ------------------------------------------------------------------ */
/* POST /v1/channels/{channel_id}/messages                            */

static void on_inserted(int status, const char *detail, const store_message_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, true);
        return;
    }
    if (res->duplicate && !ms_xid_eq(res->msg.channel_id, c->channel_id)) {
        /* Telegram ids are unique across channels: the message they name lives elsewhere */
        char other[MS_XID_STRLEN];
        ms_xid_format(c->s->idf, res->msg.channel_id, other);
        http_respond_error(c->r, 409, ms_err_name(MS_ERR_CONFLICT),
                           "this Telegram message is already stored in channel %s", other);
        return;
    }
    if (!res->duplicate) {
        char loc[96], ch[MS_XID_STRLEN];
        ms_xid_format(c->s->idf, res->msg.channel_id, ch);
        snprintf(loc, sizeof loc, "/v1/channels/%s/messages/%" PRIu64, ch, res->msg.id);
        http_response_header(c->r, "location", loc);
    }
    respond_message(c, res->duplicate ? 200 : 201, &res->msg,
                    res->duplicate ? -1 : SRV_EV_MESSAGE_CREATED);
}

static void h_create(http_request *r, void *ctx)
{
    srv *s = ctx;
    static const char *const fields[] = {
        "sender_id",   "content",  "type",  "source",           "reply_to",
        "attachments", "metadata", "nonce", "telegram_chat_id", "telegram_message_id",
        NULL};
    store_insert_req q = {0};
    if (srv__path_xid(s, r, "channel_id", &q.channel_id))
        return;
    json_t *b = srv__body(r, true, fields);
    if (!b)
        return;
    const char *type = NULL, *source = NULL;
    json_t *att = json_object_get(b, "attachments"), *meta = json_object_get(b, "metadata");
    int64_t tg_chat = 0, tg_msg = 0;
    bool has_chat = json_object_get(b, "telegram_chat_id") &&
                    !json_is_null(json_object_get(b, "telegram_chat_id"));
    bool has_msg = json_object_get(b, "telegram_message_id") &&
                   !json_is_null(json_object_get(b, "telegram_message_id"));
    char *att_text = NULL, *meta_text = NULL;
    if (srv__field_xid(s, r, b, "sender_id", true, &q.sender_id) ||
        srv__field_str(r, b, "content", false, &q.content, &q.content_len) ||
        srv__field_str(r, b, "type", false, &type, NULL) ||
        srv__field_str(r, b, "source", false, &source, NULL) ||
        srv__field_id(r, b, "reply_to", false, &q.reply_to) ||
        srv__field_str(r, b, "nonce", false, &q.nonce, NULL) ||
        srv__field_i64(r, b, "telegram_chat_id", false, INT64_MIN, true, &tg_chat) ||
        srv__field_i64(r, b, "telegram_message_id", false, 1, false, &tg_msg))
        goto out;
    if (has_chat != has_msg) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                           "telegram_chat_id and telegram_message_id go together");
        goto out;
    }
    q.has_telegram = has_chat;
    q.telegram_chat_id = tg_chat;
    q.telegram_message_id = tg_msg;
    q.type = STORE_MSG_TEXT;
    q.source = q.has_telegram ? STORE_SRC_TELEGRAM : STORE_SRC_API;
    if (type && store_msg_type_parse(type, &q.type) != 0) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                           "field type: expected text, image, file, video, audio, voice, "
                           "sticker or system");
        goto out;
    }
    if (source && store_msg_source_parse(source, &q.source) != 0) {
        http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                           "field source: expected web, telegram or api");
        goto out;
    }
    if (att && !json_is_null(att)) {
        if (!json_is_array(att)) {
            http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                               "field attachments: expected a JSON array");
            goto out;
        }
        att_text = json_dumps(att, JSON_COMPACT);
        q.attachments = att_text;
    }
    if (meta && !json_is_null(meta)) {
        if (!json_is_object(meta)) {
            http_respond_error(r, 422, ms_err_name(MS_ERR_UNPROCESSABLE),
                               "field metadata: expected a JSON object");
            goto out;
        }
        meta_text = json_dumps(meta, JSON_COMPACT);
        q.metadata = meta_text;
    }
    if (!q.content) {
        q.content = "";
        q.content_len = 0;
    }
    int rc =
        store_insert(s->st, http_request_loop(r), &q, on_inserted, call_new(s, r, q.channel_id, 0));
    if (rc)
        call_failed(s, r, rc);
out:
    free(att_text);
    free(meta_text);
    json_decref(b); /* the store copied the request */
}

/* ------------------------------------------------------------------ */
/* GET /v1/channels/{channel_id}/messages                             */

static void on_page(int status, const char *detail, const store_page_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    srv__jw w;
    srv__jw_init(&w);
    srv__jw_hint(&w, 64 + res->count * 512); /* a message of usual length takes 400-500 bytes */
    srv__jw_lit(&w, "{\"messages\":[");
    for (size_t i = 0; i < res->count; i++) {
        if (i)
            srv__jw_lit(&w, ",");
        srv__jw_message(&w, c->s->idf, &res->items[i]);
    }
    srv__jw_lit(&w, "],\"more_older\":");
    srv__jw_bool(&w, res->more_older);
    srv__jw_lit(&w, ",\"more_newer\":");
    srv__jw_bool(&w, res->more_newer);
    srv__jw_lit(&w, "}\n");
    if (w.oom) {
        srv__respond_publish_text(c->s, c->r, 200, NULL, 0, true, -1, (ms_xid){0, 0}, 0);
        srv__jw_free(&w);
        return;
    }
    http_respond_take(c->r, 200, "application/json", w.p, w.len); /* 20-30 kB: not copied */
}

static void h_page(http_request *r, void *ctx)
{
    srv *s = ctx;
    store_page_req q = {0};
    uint64_t before = 0, after = 0, around = 0;
    bool hb, ha, hr;
    if (srv__path_xid(s, r, "channel_id", &q.channel_id) ||
        srv__query_id(r, "before", &before, &hb) || srv__query_id(r, "after", &after, &ha) ||
        srv__query_id(r, "around", &around, &hr) || srv__query_limit(r, &q.limit))
        return;
    if (hb + ha + hr > 1) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                           "before, after and around exclude each other");
        return;
    }
    q.mode = hb   ? STORE_PAGE_BEFORE
             : ha ? STORE_PAGE_AFTER
             : hr ? STORE_PAGE_AROUND
                  : STORE_PAGE_LATEST;
    q.anchor = hb ? before : ha ? after : around;
    int rc =
        store_page(s->st, http_request_loop(r), &q, on_page, call_new(s, r, (ms_xid){0, 0}, 0));
    if (rc)
        call_failed(s, r, rc);
}

/* ------------------------------------------------------------------ */
/* /v1/channels/{channel_id}/messages/{message_id}                    */

static void on_get(int status, const char *detail, const store_message_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    respond_message(c, 200, &res->msg, -1);
}

static int message_ids(const srv *s, http_request *r, store_get_req *q)
{
    return srv__path_xid(s, r, "channel_id", &q->channel_id) ||
           srv__path_id(r, "message_id", &q->message_id);
}

static void h_get(http_request *r, void *ctx)
{
    srv *s = ctx;
    store_get_req q;
    if (message_ids(s, r, &q))
        return;
    int rc = store_get(s->st, http_request_loop(r), &q, on_get, call_new(s, r, (ms_xid){0, 0}, 0));
    if (rc)
        call_failed(s, r, rc);
}

static void on_edited(int status, const char *detail, const store_message_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, true);
        return;
    }
    respond_message(c, 200, &res->msg, SRV_EV_MESSAGE_UPDATED);
}

static void h_edit(http_request *r, void *ctx)
{
    srv *s = ctx;
    static const char *const fields[] = {"content", NULL};
    store_get_req ids;
    if (message_ids(s, r, &ids))
        return;
    json_t *b = srv__body(r, true, fields);
    if (!b)
        return;
    store_edit_req q = {.channel_id = ids.channel_id, .message_id = ids.message_id};
    if (srv__field_str(r, b, "content", true, &q.content, &q.content_len) == 0) {
        int rc = store_edit(s->st, http_request_loop(r), &q, on_edited,
                            call_new(s, r, (ms_xid){0, 0}, 0));
        if (rc)
            call_failed(s, r, rc);
    }
    json_decref(b);
}

static void on_deleted(int status, const char *detail, const store_message_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    respond_message(c, 200, &res->msg, SRV_EV_MESSAGE_DELETED);
}

static void h_delete(http_request *r, void *ctx)
{
    srv *s = ctx;
    store_get_req q;
    if (message_ids(s, r, &q))
        return;
    int rc = store_delete(s->st, http_request_loop(r), &q, on_deleted,
                          call_new(s, r, (ms_xid){0, 0}, 0));
    if (rc)
        call_failed(s, r, rc);
}

static void on_history(int status, const char *detail, const store_history_result *res, void *ud)
{
    call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < res->count; i++) {
        json_t *content = json_stringn(res->items[i].content ? res->items[i].content : "",
                                       res->items[i].content ? res->items[i].content_len : 0);
        json_array_append_new(items, json_pack("{s:I,s:o}", "edited_at_ms",
                                               (json_int_t)res->items[i].edited_at_ms, "content",
                                               content ? content : json_string("")));
    }
    json_t *o = json_pack("{s:o,s:o,s:o}", "channel_id", srv__xid(c->s, c->channel_id),
                          "message_id", srv__id(c->message_id), "edits", items);
    http_respond_json(c->r, 200, o);
}

static void h_history(http_request *r, void *ctx)
{
    srv *s = ctx;
    store_get_req ids;
    store_history_req q = {0};
    if (message_ids(s, r, &ids) || srv__query_limit(r, &q.limit))
        return;
    q.channel_id = ids.channel_id;
    q.message_id = ids.message_id;
    int rc = store_edit_history(s->st, http_request_loop(r), &q, on_history,
                                call_new(s, r, ids.channel_id, ids.message_id));
    if (rc)
        call_failed(s, r, rc);
}

/* ------------------------------------------------------------------ */
/* GET /v1/telegram/{chat_id}/messages/{message_id}                   */

static void h_telegram(http_request *r, void *ctx)
{
    srv *s = ctx;
    store_get_telegram_req q;
    if (srv__path_i64(r, "chat_id", true, INT64_MIN, &q.telegram_chat_id) ||
        srv__path_i64(r, "message_id", false, 1, &q.telegram_message_id))
        return;
    int rc = store_get_by_telegram(s->st, http_request_loop(r), &q, on_get,
                                   call_new(s, r, (ms_xid){0, 0}, 0));
    if (rc)
        call_failed(s, r, rc);
}

int srv__routes_messages(srv *s)
{
    http_server *h = s->http;
    const unsigned A = HTTP_ROUTE_AUTH_API;
    int rc = 0;
    rc |= http_server_route(h, HTTP_POST, "/v1/channels/{channel_id}/messages", A, h_create, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/messages", A, h_page, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/messages/{message_id}", A,
                            h_get, s);
    rc |= http_server_route(h, HTTP_PATCH, "/v1/channels/{channel_id}/messages/{message_id}", A,
                            h_edit, s);
    rc |= http_server_route(h, HTTP_DELETE, "/v1/channels/{channel_id}/messages/{message_id}", A,
                            h_delete, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/messages/{message_id}/history",
                            A, h_history, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/telegram/{chat_id}/messages/{message_id}", A,
                            h_telegram, s);
    return rc ? MS_ERR_INVALID : 0;
}
