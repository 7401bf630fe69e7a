/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_search.c - full-text search:
 *   GET /v1/channels/{channel_id}/search?q=&limit=&before=&sort=
 *   GET /v1/search?q=&channels=c1,c2,...&limit=&before=&sort=
 *
 * The handlers check the parameters they own (ids, sort, the channel list);
 * the query text itself is checked by the store (store_search), so both
 * backends refuse the same queries with the same words: 400 invalid_argument.
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
    store_search_sort sort;
} search_call;

static void on_search(int status, const char *detail, const store_search_result *res, void *ud)
{
    search_call *c = ud;
    if (status) {
        srv__store_error(c->s, c->r, status, detail, false);
        return;
    }
    srv__jw w;
    srv__jw_init(&w);
    srv__jw_lit(&w, "{\"hits\":[");
    for (size_t i = 0; i < res->count; i++) {
        const store_search_hit *h = &res->items[i];
        char score[48];
        snprintf(score, sizeof score, "%.6g", h->score);
        srv__jw_lit(&w, i ? ",{\"message\":" : "{\"message\":");
        srv__jw_message(&w, c->s->idf, &h->msg);
        srv__jw_lit(&w, ",\"snippet\":");
        srv__jw_cstr(&w, h->snippet);
        srv__jw_lit(&w, ",\"score\":");
        srv__jw_lit(&w, score);
        srv__jw_lit(&w, "}");
    }
    srv__jw_lit(&w, "],\"more\":");
    srv__jw_bool(&w, res->more);
    srv__jw_lit(&w, ",\"next_before\":");
    /* Paging goes by id: only the newest-first order has a next page to ask for. */
    bool next = res->more && res->count && c->sort == STORE_SEARCH_NEWEST;
    srv__jw_opt_id(&w, next ? res->items[res->count - 1].msg.id : 0);
    srv__jw_lit(&w, "}\n");
    srv__respond_publish_text(c->s, c->r, 200, w.p, w.len, w.oom, -1, (ms_xid){0, 0}, 0);
    srv__jw_free(&w);
}

/* The parameters both routes share: q, limit, before, sort. Answers and returns nonzero on error.
 */
static int common_params(http_request *r, store_search_req *q)
{
    bool has_before = false;
    q->query = http_request_query(r, "q");
    if (!q->query) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID), "query q is required");
        return -1;
    }
    if (srv__query_limit(r, &q->limit) || srv__query_id(r, "before", &q->before, &has_before))
        return -1;
    const char *sort = http_request_query(r, "sort");
    q->sort = STORE_SEARCH_NEWEST;
    if (sort && strcmp(sort, "newest") != 0) {
        if (strcmp(sort, "relevance") != 0) {
            http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                               "query sort: expected newest or relevance");
            return -1;
        }
        q->sort = STORE_SEARCH_RELEVANCE;
    }
    return 0;
}

static void run_search(srv *s, http_request *r, const store_search_req *q)
{
    search_call *c = http_request_alloc(r, sizeof *c);
    c->s = s;
    c->r = r;
    c->sort = q->sort;
    int rc = store_search(s->st, http_request_loop(r), q, on_search, c);
    if (rc)
        srv__store_error(s, r, rc, NULL, false);
}

static void h_channel_search(http_request *r, void *ctx)
{
    srv *s = ctx;
    ms_xid channel = {0, 0};
    store_search_req q = {0};
    if (srv__path_xid(s, r, "channel_id", &channel) || common_params(r, &q))
        return;
    q.channel_ids = &channel;
    q.nchannels = 1;
    run_search(s, r, &q);
}

/* Parses channels=c1,c2,... into ids (at most STORE_SEARCH_CHANNELS_MAX). */
static int parse_channels(const srv *s, http_request *r, ms_xid *ids, size_t *n)
{
    const char *v = http_request_query(r, "channels");
    *n = 0;
    if (!v || !*v) {
        http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                           "query channels is required: channels=ID,ID,...");
        return -1;
    }
    for (const char *p = v;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char tmp[MS_XID_STRLEN];
        ms_xid id = {0, 0};
        bool ok = len > 0 && len < sizeof tmp;
        if (ok) {
            memcpy(tmp, p, len);
            tmp[len] = '\0';
            ok = srv__parse_xid(s->idf, tmp, &id);
        }
        if (!ok) {
            http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                               "query channels: expected %s, separated by commas",
                               s->idf == MS_ID_UUID ? "UUIDs"
                                                    : "decimal ids from 1 to 9223372036854775807");
            return -1;
        }
        if (*n == STORE_SEARCH_CHANNELS_MAX) {
            http_respond_error(r, 400, ms_err_name(MS_ERR_INVALID),
                               "query channels: at most %d channels", STORE_SEARCH_CHANNELS_MAX);
            return -1;
        }
        ids[(*n)++] = id;
        if (!end)
            return 0;
        p = end + 1;
    }
}

static void h_search(http_request *r, void *ctx)
{
    srv *s = ctx;
    ms_xid ids[STORE_SEARCH_CHANNELS_MAX];
    store_search_req q = {0};
    if (parse_channels(s, r, ids, &q.nchannels) || common_params(r, &q))
        return;
    q.channel_ids = ids;
    run_search(s, r, &q);
}

int srv__routes_search(srv *s)
{
    http_server *h = s->http;
    const unsigned A = HTTP_ROUTE_AUTH_API;
    int rc = 0;
    rc |=
        http_server_route(h, HTTP_GET, "/v1/channels/{channel_id}/search", A, h_channel_search, s);
    rc |= http_server_route(h, HTTP_GET, "/v1/search", A, h_search, s);
    return rc ? MS_ERR_INVALID : 0;
}
