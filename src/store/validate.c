/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate.c - every request is checked here, before any backend sees it, so
 * both backends reject the same input with the same words and nothing is
 * written for bad input.
 */
#include "store_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <string.h>

long store__utf8_count(const char *s, size_t len, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    long n = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t k;
        uint32_t cp;
        if (c == 0)
            goto fail;
        if (c < 0x80) {
            i++;
            n++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            goto fail;
        }
        if (len - i <= k)
            goto fail;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                goto fail;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            goto fail;
        i += k + 1;
        n++;
    }
    return n;
fail:
    if (bad)
        *bad = i;
    return -1;
}

size_t store__utf8_prefix(const char *s, size_t len, size_t chars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len && chars > 0) {
        i++;
        while (i < len && (p[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}

static int check_id(store_op *op, const char *name, uint64_t v, bool required)
{
    if ((required && v == 0) || v > STORE_ID_MAX)
        return store__op_fail(
            op, MS_ERR_INVALID,
            "%s must be an integer from 1 to 9223372036854775807 (got %" PRIu64 ")", name, v);
    return 0;
}

/* A channel or user id: valid in the store's format (or none when optional). */
static int check_xid(store_op *op, const char *name, ms_xid v, bool required)
{
    ms_id_format f = store_id_format(op->s);
    if ((!required && ms_xid_is_none(v)) || ms_xid_valid(f, v))
        return 0;
    char text[MS_XID_STRLEN];
    ms_xid_format(f, v, text);
    if (f == MS_ID_INT64)
        return store__op_fail(op, MS_ERR_INVALID,
                              "%s must be an integer from 1 to 9223372036854775807 (got %s)", name,
                              text);
    return store__op_fail(op, MS_ERR_INVALID, "%s must be a UUID other than the nil UUID", name);
}

static int check_limit(store_op *op, int *limit, int def)
{
    if (*limit == STORE_LIMIT_DEFAULT) {
        *limit = def;
        return 0;
    }
    if (*limit < 1 || *limit > STORE_PAGE_LIMIT_MAX)
        return store__op_fail(op, MS_ERR_INVALID, "limit must be from 1 to %d (got %d)",
                              STORE_PAGE_LIMIT_MAX, *limit);
    return 0;
}

static int check_content(store_op *op, const char *content, size_t len, bool may_be_empty,
                         const store_config *cfg)
{
    if (!content && len > 0)
        return store__op_fail(op, MS_ERR_INVALID, "content is missing");
    if (len == 0 && !may_be_empty)
        return store__op_fail(op, MS_ERR_INVALID, "content must not be empty");
    size_t bad = 0;
    long n = store__utf8_count(content, len, &bad);
    if (n < 0)
        return store__op_fail(op, MS_ERR_INVALID, "content is not valid UTF-8 (byte %zu)", bad);
    if (n > cfg->max_content_chars)
        return store__op_fail(op, MS_ERR_TOO_LARGE, "content is longer than %d characters (%ld)",
                              cfg->max_content_chars, n);
    return 0;
}

/* A JSON text of the given type (JSON_ARRAY, JSON_OBJECT), at most STORE_MAX_JSON_BYTES. */
static int check_json(store_op *op, const char *name, const char *text, json_type want,
                      size_t *elements)
{
    size_t len = strlen(text);
    if (len > STORE_MAX_JSON_BYTES)
        return store__op_fail(op, MS_ERR_TOO_LARGE, "%s is larger than %d bytes", name,
                              STORE_MAX_JSON_BYTES);
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        return store__op_fail(op, MS_ERR_INVALID, "%s is not valid JSON (%s at %d)", name, e.text,
                              e.position);
    bool ok = json_typeof(j) == want;
    if (elements)
        *elements = want == JSON_ARRAY ? json_array_size(j) : json_object_size(j);
    json_decref(j);
    if (!ok)
        return store__op_fail(op, MS_ERR_INVALID, "%s must be a JSON %s", name,
                              want == JSON_ARRAY ? "array" : "object");
    return 0;
}

static int check_emoji(store_op *op, const char *emoji)
{
    if (!emoji || !*emoji)
        return store__op_fail(op, MS_ERR_INVALID, "emoji must not be empty");
    size_t len = strlen(emoji);
    long chars = store__utf8_count(emoji, len, NULL);
    if (chars < 0)
        return store__op_fail(op, MS_ERR_INVALID, "emoji is not valid UTF-8");
    if (chars > STORE_MAX_EMOJI_CHARS || len > STORE_MAX_EMOJI_BYTES)
        return store__op_fail(op, MS_ERR_INVALID, "emoji is longer than %d characters",
                              STORE_MAX_EMOJI_CHARS);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)emoji[i] < 0x20 || emoji[i] == 0x7F)
            return store__op_fail(op, MS_ERR_INVALID, "emoji contains a control character");
    return 0;
}

static int check_insert(store_op *op, const store_config *cfg)
{
    store_insert_req *r = &op->req.insert;
    int rc;
    if ((rc = check_xid(op, "channel_id", r->channel_id, true)) ||
        (rc = check_xid(op, "sender_id", r->sender_id, true)) ||
        (rc = check_id(op, "reply_to", r->reply_to, false)) ||
        (rc = check_id(op, "id", r->id, false)))
        return rc;
    if ((unsigned)r->type >= STORE_MSG_TYPE_COUNT)
        return store__op_fail(op, MS_ERR_INVALID, "unknown message type %d", (int)r->type);
    if ((unsigned)r->source >= STORE_MSG_SOURCE_COUNT)
        return store__op_fail(op, MS_ERR_INVALID, "unknown message source %d", (int)r->source);
    size_t nattach = 0;
    if (r->attachments &&
        (rc = check_json(op, "attachments", r->attachments, JSON_ARRAY, &nattach)))
        return rc;
    if (r->metadata && (rc = check_json(op, "metadata", r->metadata, JSON_OBJECT, NULL)))
        return rc;
    if (r->content_len == 0 && nattach == 0)
        return store__op_fail(op, MS_ERR_INVALID,
                              "content must not be empty (unless attachments are given)");
    if ((rc = check_content(op, r->content, r->content_len, true, cfg)))
        return rc;
    if (r->nonce) {
        size_t n = strlen(r->nonce);
        if (n == 0 || n > STORE_MAX_NONCE_BYTES)
            return store__op_fail(op, MS_ERR_INVALID, "nonce must be 1 to %d characters",
                                  STORE_MAX_NONCE_BYTES);
        for (size_t i = 0; i < n; i++)
            if (r->nonce[i] < 0x21 || r->nonce[i] > 0x7E)
                return store__op_fail(op, MS_ERR_INVALID,
                                      "nonce must be printable ASCII without spaces");
    }
    if (r->has_telegram) {
        if (r->telegram_chat_id == 0)
            return store__op_fail(op, MS_ERR_INVALID, "telegram_chat_id must not be 0");
        if (r->telegram_message_id < 1)
            return store__op_fail(op, MS_ERR_INVALID,
                                  "telegram_message_id must be a positive integer");
    }
    if (r->at_ms && r->at_ms < cfg->epoch_ms)
        return store__op_fail(op, MS_ERR_INVALID, "at_ms is before the id epoch");
    if (r->at_ms && r->at_ms > op->now_ms + 60000)
        return store__op_fail(op, MS_ERR_INVALID, "at_ms is in the future");
    if (r->id && ms_snowflake_unix_ms(r->id, cfg->epoch_ms) > op->now_ms + 60000)
        return store__op_fail(op, MS_ERR_INVALID, "id is in the future");
    return 0;
}

/*
 * Forward-only positions are written USING TIMESTAMP derived from the value
 * (scylla.c). ScyllaDB refuses write timestamps more than 3 days ahead
 * (restrict_future_timestamp), Cassandra does not: refuse such values here so
 * both databases, and SQLite, answer the same (422 at the API, as a future insert id).
 */
#define FUTURE_TS_MAX_MS (3 * 24 * 3600 * 1000ULL)

static int check_not_future(store_op *op, const char *name, uint64_t ts_ms)
{
    if (ts_ms > op->now_ms + FUTURE_TS_MAX_MS)
        return store__op_fail(op, MS_ERR_INVALID,
                              "%s is more than 3 days in the future (ScyllaDB refuses such "
                              "write timestamps)",
                              name);
    return 0;
}

static int check_channel_type(store_op *op, const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > STORE_MAX_CHANNEL_TYPE_BYTES)
        return store__op_fail(op, MS_ERR_INVALID, "channel type must be 1 to %d characters",
                              STORE_MAX_CHANNEL_TYPE_BYTES);
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return store__op_fail(op, MS_ERR_INVALID,
                                  "channel type may hold only a-z, 0-9, '_' and '-'");
    }
    return 0;
}

int store__validate(store_op *op, const store_config *cfg)
{
    int rc = 0;
    switch (op->kind) {
    case STORE_OP_INSERT:
        return check_insert(op, cfg);
    case STORE_OP_GET:
    case STORE_OP_DELETE:
    case STORE_OP_REACTIONS_GET:
        if ((rc = check_xid(op, "channel_id", op->req.get.channel_id, true)))
            return rc;
        return check_id(op, "message_id", op->req.get.message_id, true);
    case STORE_OP_GET_TELEGRAM:
        if (op->req.tg.telegram_chat_id == 0)
            return store__op_fail(op, MS_ERR_INVALID, "telegram_chat_id must not be 0");
        if (op->req.tg.telegram_message_id < 1)
            return store__op_fail(op, MS_ERR_INVALID,
                                  "telegram_message_id must be a positive integer");
        return 0;
    case STORE_OP_PAGE: {
        store_page_req *r = &op->req.page;
        if ((rc = check_xid(op, "channel_id", r->channel_id, true)))
            return rc;
        if ((unsigned)r->mode > STORE_PAGE_AROUND)
            return store__op_fail(op, MS_ERR_INVALID, "unknown page mode %d", (int)r->mode);
        if (r->mode == STORE_PAGE_LATEST)
            r->anchor = 0;
        else if ((rc = check_id(op,
                                r->mode == STORE_PAGE_BEFORE  ? "before"
                                : r->mode == STORE_PAGE_AFTER ? "after"
                                                              : "around",
                                r->anchor, true)))
            return rc;
        return check_limit(op, &r->limit, STORE_PAGE_LIMIT_DEFAULT);
    }
    case STORE_OP_EDIT: {
        store_edit_req *r = &op->req.edit;
        if ((rc = check_xid(op, "channel_id", r->channel_id, true)) ||
            (rc = check_id(op, "message_id", r->message_id, true)))
            return rc;
        return check_content(op, r->content, r->content_len, false, cfg);
    }
    case STORE_OP_HISTORY:
        if ((rc = check_xid(op, "channel_id", op->req.history.channel_id, true)) ||
            (rc = check_id(op, "message_id", op->req.history.message_id, true)))
            return rc;
        return check_limit(op, &op->req.history.limit, STORE_PAGE_LIMIT_DEFAULT);
    case STORE_OP_REACTION_ADD:
    case STORE_OP_REACTION_REMOVE: {
        store_reaction_req *r = &op->req.reaction;
        if ((rc = check_xid(op, "channel_id", r->channel_id, true)) ||
            (rc = check_id(op, "message_id", r->message_id, true)) ||
            (rc = check_xid(op, "user_id", r->user_id, true)))
            return rc;
        return check_emoji(op, r->emoji);
    }
    case STORE_OP_REACTION_USERS: {
        store_reaction_users_req *r = &op->req.users;
        if ((rc = check_xid(op, "channel_id", r->channel_id, true)) ||
            (rc = check_id(op, "message_id", r->message_id, true)) ||
            (rc = check_xid(op, "after", r->after_user_id, false)) ||
            (rc = check_emoji(op, r->emoji)))
            return rc;
        return check_limit(op, &r->limit, STORE_USERS_LIMIT_DEFAULT);
    }
    case STORE_OP_PIN:
    case STORE_OP_UNPIN:
        if ((rc = check_xid(op, "channel_id", op->req.pin.channel_id, true)) ||
            (rc = check_id(op, "message_id", op->req.pin.message_id, true)))
            return rc;
        if (op->kind == STORE_OP_PIN)
            return check_xid(op, "pinned_by", op->req.pin.pinned_by, true);
        return 0;
    case STORE_OP_PINS_LIST:
    case STORE_OP_CHANNEL_GET:
    case STORE_OP_SYNC_GET:
        return check_xid(op, "channel_id", op->req.channel.channel_id, true);
    case STORE_OP_READ_SET:
    case STORE_OP_READ_GET:
        if ((rc = check_xid(op, "channel_id", op->req.read.channel_id, true)) ||
            (rc = check_xid(op, "user_id", op->req.read.user_id, true)))
            return rc;
        if (op->kind == STORE_OP_READ_SET &&
            (rc = check_id(op, "message_id", op->req.read.message_id, true)) == 0)
            rc = check_not_future(op, "message_id",
                                  ms_snowflake_unix_ms(op->req.read.message_id, cfg->epoch_ms));
        return rc;
    case STORE_OP_CHANNEL_UPSERT: {
        store_channel_upsert_req *r = &op->req.upsert;
        if ((rc = check_xid(op, "channel_id", r->channel_id, true)))
            return rc;
        if (r->name) {
            long chars = store__utf8_count(r->name, strlen(r->name), NULL);
            if (chars < 0)
                return store__op_fail(op, MS_ERR_INVALID, "channel name is not valid UTF-8");
            if (chars > STORE_MAX_NAME_CHARS)
                return store__op_fail(op, MS_ERR_INVALID,
                                      "channel name is longer than %d characters",
                                      STORE_MAX_NAME_CHARS);
        }
        if (r->type && (rc = check_channel_type(op, r->type)))
            return rc;
        if (r->created_at_ms > (uint64_t)INT64_MAX)
            return store__op_fail(op, MS_ERR_INVALID, "created_at is out of range");
        return 0;
    }
    case STORE_OP_SYNC_UPDATE: {
        store_sync_update_req *r = &op->req.sync;
        if ((rc = check_xid(op, "channel_id", r->channel_id, true)))
            return rc;
        if (r->telegram_chat_id == 0)
            return store__op_fail(op, MS_ERR_INVALID, "telegram_chat_id must not be 0");
        if (r->last_synced_message_id < 0)
            return store__op_fail(op, MS_ERR_INVALID,
                                  "last_synced_message_id must not be negative");
        /* it is its own write timestamp, in microseconds */
        if ((rc = check_not_future(op, "last_synced_message_id",
                                   (uint64_t)r->last_synced_message_id / 1000)))
            return rc;
        if ((unsigned)r->direction >= STORE_SYNC_DIRECTION_COUNT)
            return store__op_fail(op, MS_ERR_INVALID, "unknown sync direction %d",
                                  (int)r->direction);
        return 0;
    }
    case STORE_OP_PING:
    case STORE_OP_HEALTH:
        return 0;
    case STORE_OP_SEARCH: {
        store_search_req *r = &op->req.search;
        if (r->nchannels == 0)
            return store__op_fail(op, MS_ERR_INVALID, "a search needs at least one channel");
        if (r->nchannels > STORE_SEARCH_CHANNELS_MAX)
            return store__op_fail(op, MS_ERR_INVALID, "a search may name at most %d channels",
                                  STORE_SEARCH_CHANNELS_MAX);
        for (size_t i = 0; i < r->nchannels; i++)
            if ((rc = check_xid(op, "channel_id", r->channel_ids[i], true)))
                return rc;
        if ((rc = check_id(op, "before", r->before, false)))
            return rc;
        if ((unsigned)r->sort > STORE_SEARCH_RELEVANCE)
            return store__op_fail(op, MS_ERR_INVALID, "unknown search order %d", (int)r->sort);
        store__query q;
        char err[STORE_DETAIL_LEN];
        if (store__query_parse(r->query, &q, err, sizeof err) != 0)
            return store__op_fail(op, MS_ERR_INVALID, "%s", err);
        return check_limit(op, &r->limit, STORE_SEARCH_LIMIT_DEFAULT);
    }
    }
    return store__op_fail(op, MS_ERR_INTERNAL, "unknown operation");
}
