/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store conformance suite: every operation and its edge cases, against a
 * real backend. The same tests run on each backend:
 *
 *   MSGSTORE_TEST_BACKEND=sqlite (default)  a fresh SQLite file in a temp dir
 *   MSGSTORE_TEST_BACKEND=scylla            the Cassandra/ScyllaDB node of
 *       SCYLLA_CONTACT_POINTS (default 127.0.0.1), keyspace
 *       SCYLLA_KEYSPACE (default msgstore_conformance), migrated first
 *
 * or the first argument (sqlite|scylla). Every test uses channels of its own,
 * so reruns against a kept keyspace do not see each other's data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "msgstore/store.h"
#include "store_test.h"
#ifdef STORE_TEST_SEARCH
#include "search/search.h"
static search_index *SEARCH; /* ScyllaDB with MSGSTORE_TEST_PG_URL: the PostgreSQL index */
#endif

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY_MS (24ULL * 60 * 60 * 1000)
/*
 * Queries a page of up to 50 may cost, however many empty buckets lie between
 * messages (a walk bucket by bucket would cost ~330 in the sparse channel).
 * SQLite: 1 (2 for AROUND). ScyllaDB: per direction, the anchor's bucket,
 * then a bucket-list query and one IN query per 32 non-empty buckets.
 */
#define MAX_PAGE_Q   6
#define RACE_THREADS 8

static uint64_t CHANNEL_BASE;
static uint64_t channel_seq;

/*
 * Channel and user ids of the store's format made from small numbers, so that
 * the same tests run on int64 and uuid stores: n itself (int64), or a version
 * 4 UUID whose low bits are n (uuid); U(0) is none. Both keep the order of n.
 */
static ms_xid U(uint64_t n)
{
    if (n == 0)
        return (ms_xid){0, 0};
    if (store_id_format(S) == MS_ID_INT64)
        return ms_xid_int(n);
    return (ms_xid){0x6f1c2b3a5d7e4000ULL, 0x8000000000000000ULL | n};
}

/* The number a channel id was made from (a unique integer for Telegram ids). */
static int64_t num(ms_xid x)
{
    return (int64_t)(x.lo & (uint64_t)INT64_MAX);
}

#define assert_xid_equal(a, b)                                                                     \
    do {                                                                                           \
        ms_xid xa_ = (a), xb_ = (b);                                                               \
        if (!ms_xid_eq(xa_, xb_))                                                                  \
            fail_msg("%s: %016" PRIx64 "%016" PRIx64 " != %016" PRIx64 "%016" PRIx64, #a, xa_.hi,  \
                     xa_.lo, xb_.hi, xb_.lo);                                                      \
    } while (0)

static ms_xid new_channel(void)
{
    return U(CHANNEL_BASE + __atomic_add_fetch(&channel_seq, 1, __ATOMIC_RELAXED));
}

static uint64_t now_ms(void)
{
    return ms_clock_realtime_ms(NULL);
}

/* ------------------------------------------------------------------ helpers */

static store_insert_req text_req(ms_xid ch, const char *content)
{
    store_insert_req r = {0};
    r.channel_id = ch;
    r.sender_id = U(42);
    r.type = STORE_MSG_TEXT;
    r.source = STORE_SRC_WEB;
    r.content = content;
    r.content_len = strlen(content);
    return r;
}

/* Inserts r (a new message); returns its id, and the queries it cost in *queries (may be NULL). */
static uint64_t ins_req(const store_insert_req *r, uint32_t *queries)
{
    store_message_result *res = NULL;
    char detail[256];
    int rc = store_insert_sync(S, r, &res, detail, sizeof detail);
    if (rc)
        fail_msg("insert failed: %s (%s)", ms_err_name(rc), detail);
    assert_false(res->duplicate);
    uint64_t id = res->msg.id;
    if (queries)
        *queries = res->hdr.queries;
    store_free(res);
    return id;
}

static uint64_t ins_at(ms_xid ch, const char *content, uint64_t at_ms)
{
    store_insert_req r = text_req(ch, content);
    r.at_ms = at_ms;
    return ins_req(&r, NULL);
}

static uint64_t ins(ms_xid ch, const char *content)
{
    return ins_at(ch, content, 0);
}

/* The queries an insert into ch cost (nonce: NULL for none). */
static uint32_t ins_queries(ms_xid ch, const char *nonce)
{
    store_insert_req r = text_req(ch, "counted");
    r.nonce = nonce;
    uint32_t q = 0;
    ins_req(&r, &q);
    return q;
}

static store_page_result *page(ms_xid ch, store_page_mode mode, uint64_t anchor, int limit)
{
    store_page_req r = {.channel_id = ch, .mode = mode, .anchor = anchor, .limit = limit};
    store_page_result *res = NULL;
    char detail[256];
    int rc = store_page_sync(S, &r, &res, detail, sizeof detail);
    if (rc)
        fail_msg("page failed: %s (%s)", ms_err_name(rc), detail);
    for (size_t i = 1; i < res->count; i++)
        assert_true(res->items[i - 1].id > res->items[i].id); /* newest first, always */
    return res;
}

static int page_err(ms_xid ch, store_page_mode mode, uint64_t anchor, int limit)
{
    store_page_req r = {.channel_id = ch, .mode = mode, .anchor = anchor, .limit = limit};
    store_page_result *res = NULL;
    char detail[256] = "";
    int rc = store_page_sync(S, &r, &res, detail, sizeof detail);
    if (rc == 0)
        store_free(res);
    else
        assert_true(detail[0] != '\0'); /* a clear error */
    return rc;
}

static store_channel_result *channel_get(ms_xid ch, int *rc)
{
    store_channel_req r = {.channel_id = ch};
    store_channel_result *res = NULL;
    *rc = store_channel_get_sync(S, &r, &res, NULL, 0);
    return res;
}

static uint64_t channel_count(ms_xid ch)
{
    int rc;
    store_channel_result *c = channel_get(ch, &rc);
    if (rc == MS_ERR_NOT_FOUND)
        return 0;
    assert_int_equal(rc, 0);
    uint64_t n = c->channel.message_count;
    store_free(c);
    return n;
}

/* ------------------------------------------------------------------ messages */

/*
 * The cluster backend remembers the channels it created and the buckets it
 * listed (60 s): the next inserts of the channel skip the metadata's
 * IF NOT EXISTS and, with a nonce, the bucket listing's own request.
 */
static void test_insert_remembers_channel_and_bucket(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    char n1[32], n2[32];
    snprintf(n1, sizeof n1, "remember-1-%" PRId64, num(ch));
    snprintf(n2, sizeof n2, "remember-2-%" PRId64, num(ch));
    uint32_t first = ins_queries(ch, n1);
    uint32_t next = ins_queries(ch, n2);
    if (SCYLLA) {
        /* the channel's creation and the bucket's listing, once */
        assert_int_equal(first, next + 2);
        ms_xid other = new_channel();
        uint32_t plain_first = ins_queries(other, NULL);
        uint32_t plain_next = ins_queries(other, NULL);
        /* the listing rides in the insert's batch; the creation is a request of its own */
        assert_int_equal(plain_first, plain_next + 1);
    } else {
        assert_int_equal(first, next);
    }
}

static void test_insert_get(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    store_insert_req r = text_req(ch, "héllo wörld ✓");
    r.type = STORE_MSG_IMAGE;
    r.source = STORE_SRC_TELEGRAM;
    r.reply_to = 12345;
    r.attachments = "[{\"url\":\"https://example.invalid/a.png\",\"size\":10}]";
    r.metadata = "{\"k\":\"v\"}";
    r.nonce = "nonce-1";
    r.has_telegram = true;
    r.telegram_chat_id = -1001234567890LL;
    r.telegram_message_id = num(ch); /* unique per run, also in a kept keyspace */
    store_message_result *res = NULL;
    assert_int_equal(store_insert_sync(S, &r, &res, NULL, 0), 0);
    const store_message *m = &res->msg;
    uint64_t id = m->id;
    assert_true(id > 0);
    assert_false(res->duplicate);
    assert_int_equal(m->bucket, ms_bucket_of(id));
    assert_true(res->hdr.queries >= 1);
    store_free(res);

    store_get_req g = {.channel_id = ch, .message_id = id};
    assert_int_equal(store_get_sync(S, &g, &res, NULL, 0), 0);
    m = &res->msg;
    assert_int_equal(m->id, id);
    assert_xid_equal(m->channel_id, ch);
    assert_xid_equal(m->sender_id, U(42));
    assert_int_equal(m->type, STORE_MSG_IMAGE);
    assert_int_equal(m->source, STORE_SRC_TELEGRAM);
    assert_string_equal(m->content, "héllo wörld ✓");
    assert_int_equal(m->content_len, strlen("héllo wörld ✓"));
    assert_int_equal(m->reply_to, 12345);
    assert_string_equal(m->attachments, r.attachments);
    assert_string_equal(m->metadata, r.metadata);
    assert_string_equal(m->nonce, "nonce-1");
    assert_true(m->has_telegram);
    assert_int_equal(m->telegram_chat_id, r.telegram_chat_id);
    assert_int_equal(m->telegram_message_id, r.telegram_message_id);
    uint64_t t = ms_snowflake_unix_ms(id, CFG.store.epoch_ms);
    assert_int_equal(m->created_at_ms, t);
    assert_true(t + 60000 > now_ms() && t < now_ms() + 60000);
    assert_false(m->is_edited);
    assert_false(m->is_deleted);
    store_free(res);

    store_get_telegram_req tg = {.telegram_chat_id = r.telegram_chat_id,
                                 .telegram_message_id = r.telegram_message_id};
    assert_int_equal(store_get_by_telegram_sync(S, &tg, &res, NULL, 0), 0);
    assert_int_equal(res->msg.id, id);
    assert_xid_equal(res->msg.channel_id, ch);
    assert_true(res->hdr.queries <= 2); /* O(1): mapping + message */
    store_free(res);
    tg.telegram_chat_id = -1; /* a chat no test writes to */
    assert_int_equal(store_get_by_telegram_sync(S, &tg, &res, NULL, 0), MS_ERR_NOT_FOUND);

    g.message_id = id + 1;
    char detail[256] = "";
    assert_int_equal(store_get_sync(S, &g, &res, detail, sizeof detail), MS_ERR_NOT_FOUND);
    assert_non_null(strstr(detail, "not found"));
    assert_null(res);

    /* channel metadata follows the inserts */
    uint64_t id2 = ins(ch, "second");
    int rc;
    store_channel_result *c = channel_get(ch, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(c->channel.message_count, 2);
    assert_int_equal(c->channel.last_message_id, id2);
    assert_string_equal(c->channel.type, "channel");
    store_free(c);
}

static void test_attachment_only_and_types(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    store_insert_req r = text_req(ch, "");
    r.type = STORE_MSG_FILE;
    r.attachments = "[{\"name\":\"a.txt\"}]";
    store_message_result *res = NULL;
    assert_int_equal(store_insert_sync(S, &r, &res, NULL, 0), 0);
    assert_string_equal(res->msg.content, "");
    assert_int_equal(res->msg.type, STORE_MSG_FILE);
    store_free(res);
    for (int t = 0; t < STORE_MSG_TYPE_COUNT; t++) {
        store_msg_type parsed;
        assert_int_equal(store_msg_type_parse(store_msg_type_name((store_msg_type)t), &parsed), 0);
        assert_int_equal(parsed, t);
    }
    store_msg_source src;
    assert_int_equal(store_msg_source_parse("api", &src), 0);
    assert_int_equal(src, STORE_SRC_API);
    assert_int_equal(store_msg_source_parse("API", &src), MS_ERR_INVALID);
}

static void test_nonce_dedup(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    store_insert_req r = text_req(ch, "first");
    r.nonce = "client-abc";
    store_message_result *a = NULL, *b = NULL;
    assert_int_equal(store_insert_sync(S, &r, &a, NULL, 0), 0);
    assert_false(a->duplicate);
    r.content = "second, same nonce";
    r.content_len = strlen(r.content);
    assert_int_equal(store_insert_sync(S, &r, &b, NULL, 0), 0);
    assert_true(b->duplicate);
    assert_int_equal(b->msg.id, a->msg.id);
    assert_string_equal(b->msg.content, "first");
    store_free(a);
    store_free(b);
    store_page_result *p = page(ch, STORE_PAGE_LATEST, 0, STORE_LIMIT_DEFAULT);
    assert_int_equal(p->count, 1);
    store_free(p);
    /* the same nonce in another channel is another message */
    ms_xid ch2 = new_channel();
    r.channel_id = ch2;
    assert_int_equal(store_insert_sync(S, &r, &a, NULL, 0), 0);
    assert_false(a->duplicate);
    store_free(a);
}

static void test_telegram_dedup(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    store_insert_req r = text_req(ch, "from telegram");
    r.source = STORE_SRC_TELEGRAM;
    r.has_telegram = true;
    r.telegram_chat_id = -num(ch);
    r.telegram_message_id = 5;
    store_message_result *a = NULL, *b = NULL;
    assert_int_equal(store_insert_sync(S, &r, &a, NULL, 0), 0);
    assert_int_equal(store_insert_sync(S, &r, &b, NULL, 0), 0);
    assert_false(a->duplicate);
    assert_true(b->duplicate);
    assert_int_equal(a->msg.id, b->msg.id);
    store_free(a);
    store_free(b);
    /* Telegram ids and a nonce together: the Telegram duplicate wins, nothing new */
    r.nonce = "other-nonce";
    assert_int_equal(store_insert_sync(S, &r, &b, NULL, 0), 0);
    assert_true(b->duplicate);
    store_free(b);
    /* the nonce of that rejected duplicate was not consumed */
    r.has_telegram = false;
    assert_int_equal(store_insert_sync(S, &r, &b, NULL, 0), 0);
    assert_false(b->duplicate);
    store_free(b);
    assert_int_equal(channel_count(ch), 2);
}

typedef struct race_arg {
    pthread_barrier_t *barrier;
    store_insert_req req;
    uint64_t id;
    bool duplicate;
    int rc;
} race_arg;

static void *race_main(void *p)
{
    race_arg *a = p;
    pthread_barrier_wait(a->barrier);
    store_message_result *res = NULL;
    a->rc = store_insert_sync(S, &a->req, &res, NULL, 0);
    if (a->rc == 0) {
        a->id = res->msg.id;
        a->duplicate = res->duplicate;
        store_free(res);
    }
    return NULL;
}

static void race(store_insert_req base, ms_xid ch)
{
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, RACE_THREADS);
    race_arg args[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        args[i] = (race_arg){.barrier = &barrier, .req = base};
        pthread_create(&th[i], NULL, race_main, &args[i]);
    }
    int originals = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, 0);
        assert_int_equal(args[i].id, args[0].id);
        originals += !args[i].duplicate;
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(originals, 1);
    store_page_result *p = page(ch, STORE_PAGE_LATEST, 0, 100);
    assert_int_equal(p->count, 1);
    store_free(p);
}

static void test_duplicates_racing(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    store_insert_req r = text_req(ch, "racing nonce");
    r.nonce = "race-nonce";
    race(r, ch);
    ch = new_channel();
    r = text_req(ch, "racing telegram");
    r.has_telegram = true;
    r.telegram_chat_id = 777;
    r.telegram_message_id = num(ch);
    race(r, ch);
}

typedef struct many_arg {
    ms_xid ch;
    int n;
    uint64_t *ids;
    int failures;
} many_arg;

static void *many_main(void *p)
{
    many_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        char content[64];
        snprintf(content, sizeof content, "message %d", i);
        store_insert_req r = text_req(a->ch, content);
        store_message_result *res = NULL;
        if (store_insert_sync(S, &r, &res, NULL, 0) != 0) {
            a->failures++;
            continue;
        }
        a->ids[i] = res->msg.id;
        store_free(res);
    }
    return NULL;
}

static int cmp_u64_desc(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

static void test_many_threads_one_channel(void **state)
{
    (void)state;
    enum { THREADS = 8 };
    int per = SCYLLA ? 100 : 250;
    ms_xid ch = new_channel();
    many_arg args[THREADS];
    pthread_t th[THREADS];
    uint64_t *all = calloc((size_t)(THREADS * per), sizeof *all);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (many_arg){.ch = ch, .n = per, .ids = all + i * per};
        pthread_create(&th[i], NULL, many_main, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    size_t total = (size_t)(THREADS * per);
    qsort(all, total, sizeof *all, cmp_u64_desc);
    for (size_t i = 1; i < total; i++)
        assert_true(all[i - 1] > all[i]); /* unique */
    /* page through everything: exactly the ids inserted, newest first */
    size_t seen = 0;
    uint64_t anchor = 0;
    for (;;) {
        store_page_result *p = page(ch, seen ? STORE_PAGE_BEFORE : STORE_PAGE_LATEST, anchor, 100);
        for (size_t i = 0; i < p->count; i++) {
            assert_true(seen < total);
            assert_int_equal(p->items[i].id, all[seen]);
            seen++;
        }
        bool more = p->more_older;
        if (p->count)
            anchor = p->items[p->count - 1].id;
        store_free(p);
        if (!more)
            break;
    }
    assert_int_equal(seen, total);
    int rc;
    store_channel_result *c = channel_get(ch, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(c->channel.message_count, total);
    assert_int_equal(c->channel.last_message_id, all[0]);
    store_free(c);
    free(all);
}

/* ------------------------------------------------------------------ pages */

static void test_paging_modes(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    uint64_t t0 = now_ms() - 3 * DAY_MS;
    uint64_t ids[10];
    for (int i = 0; i < 10; i++) {
        char c[16];
        snprintf(c, sizeof c, "m%d", i);
        ids[i] = ins_at(ch, c, t0 + (uint64_t)i * 60000);
    }
    store_page_result *p = page(ch, STORE_PAGE_LATEST, 0, 3);
    assert_int_equal(p->count, 3);
    assert_int_equal(p->items[0].id, ids[9]);
    assert_int_equal(p->items[2].id, ids[7]);
    assert_true(p->more_older);
    assert_false(p->more_newer);
    store_free(p);

    p = page(ch, STORE_PAGE_LATEST, 0, STORE_LIMIT_DEFAULT);
    assert_int_equal(p->count, 10);
    assert_false(p->more_older);
    store_free(p);

    p = page(ch, STORE_PAGE_BEFORE, ids[3], 50);
    assert_int_equal(p->count, 3);
    assert_int_equal(p->items[0].id, ids[2]);
    assert_int_equal(p->items[2].id, ids[0]);
    assert_false(p->more_older);
    store_free(p);

    /* AFTER: the oldest `limit` newer than the anchor, returned newest first */
    p = page(ch, STORE_PAGE_AFTER, ids[2], 3);
    assert_int_equal(p->count, 3);
    assert_int_equal(p->items[0].id, ids[5]);
    assert_int_equal(p->items[2].id, ids[3]);
    assert_true(p->more_newer);
    store_free(p);
    p = page(ch, STORE_PAGE_AFTER, ids[6], 3);
    assert_int_equal(p->count, 3);
    assert_int_equal(p->items[0].id, ids[9]);
    assert_false(p->more_newer);
    store_free(p);

    /* AROUND: limit/2 older, the anchor and the rest newer */
    p = page(ch, STORE_PAGE_AROUND, ids[5], 5);
    assert_int_equal(p->count, 5);
    assert_int_equal(p->items[0].id, ids[7]);
    assert_int_equal(p->items[2].id, ids[5]);
    assert_int_equal(p->items[4].id, ids[3]);
    assert_true(p->more_older);
    assert_true(p->more_newer);
    store_free(p);
    p = page(ch, STORE_PAGE_AROUND, ids[0], 4);
    assert_int_equal(p->count, 2);
    assert_int_equal(p->items[1].id, ids[0]);
    assert_false(p->more_older);
    store_free(p);
    /* an anchor that is not a message */
    p = page(ch, STORE_PAGE_AROUND, ids[5] + 1, 4);
    assert_int_equal(p->count, 4);
    assert_int_equal(p->items[1].id, ids[6]);
    assert_int_equal(p->items[2].id, ids[5]);
    store_free(p);

    p = page(ch, STORE_PAGE_LATEST, 0, 1);
    assert_int_equal(p->count, 1);
    assert_int_equal(p->items[0].id, ids[9]);
    store_free(p);
    p = page(ch, STORE_PAGE_AFTER, ids[9], 10);
    assert_int_equal(p->count, 0);
    store_free(p);
    p = page(ch, STORE_PAGE_BEFORE, ids[0], 10);
    assert_int_equal(p->count, 0);
    assert_false(p->more_older);
    store_free(p);
}

static void test_bucket_boundaries(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    /* Start 60 days back at a bucket's first millisecond. */
    uint64_t since_epoch = now_ms() - 60 * DAY_MS - CFG.store.epoch_ms;
    uint64_t b0 = since_epoch / MS_BUCKET_MS + 1;
    uint64_t t0 = CFG.store.epoch_ms + b0 * MS_BUCKET_MS;
    const uint64_t gaps[] = {0, (uint64_t)(9.9 * DAY_MS), 10 * DAY_MS,
                             (uint64_t)(10.1 * DAY_MS)}; /* 9.9, 10 and 10.1 days apart */
    uint64_t ids[6];
    uint64_t t = t0 - 1; /* the last millisecond of the previous bucket */
    ids[0] = ins_at(ch, "prev bucket, last ms", t);
    t = t0;
    for (int i = 0; i < 4; i++) {
        t += gaps[i];
        ids[i + 1] = ins_at(ch, "boundary", t);
    }
    ids[5] = ins_at(ch, "same ms as the last", t);
    assert_int_equal(ms_bucket_of(ids[0]), b0 - 1);
    assert_int_equal(ms_bucket_of(ids[1]), b0);
    assert_int_equal(ms_bucket_of(ids[2]), b0);     /* t0 + 9.9 d: still bucket b0 */
    assert_int_equal(ms_bucket_of(ids[3]), b0 + 1); /* t0 + 19.9 d */
    assert_int_equal(ms_bucket_of(ids[4]), b0 + 3); /* t0 + 30 d: first ms of b0+3; b0+2 empty */
    assert_int_equal(ms_bucket_of(ids[5]), b0 + 3);
    store_message_result *g = NULL;
    store_get_req gr = {.channel_id = ch, .message_id = ids[2]};
    assert_int_equal(store_get_sync(S, &gr, &g, NULL, 0), 0);
    assert_int_equal(g->msg.bucket, b0);
    store_free(g);

    /* page 2 at a time from the newest: crosses every boundary, in order */
    uint64_t anchor = 0;
    int k = 5;
    for (int round = 0; round < 3; round++) {
        store_page_result *p = page(ch, round ? STORE_PAGE_BEFORE : STORE_PAGE_LATEST, anchor, 2);
        assert_int_equal(p->count, 2);
        assert_int_equal(p->items[0].id, ids[k]);
        assert_int_equal(p->items[1].id, ids[k - 1]);
        assert_true(p->hdr.queries <= MAX_PAGE_Q);
        assert_int_equal(p->more_older, round < 2);
        anchor = p->items[1].id;
        k -= 2;
        store_free(p);
    }
    /* AFTER from the oldest crosses forward */
    store_page_result *p = page(ch, STORE_PAGE_AFTER, ids[0], 3);
    assert_int_equal(p->count, 3);
    assert_int_equal(p->items[0].id, ids[3]);
    assert_int_equal(p->items[2].id, ids[1]);
    store_free(p);
    /* AROUND straddling a boundary */
    p = page(ch, STORE_PAGE_AROUND, ids[3], 4);
    assert_int_equal(p->count, 4);
    assert_int_equal(p->items[0].id, ids[4]);
    assert_int_equal(p->items[1].id, ids[3]);
    assert_int_equal(p->items[3].id, ids[1]);
    store_free(p);
}

static void test_sparse_channel(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    uint64_t now = now_ms();
    uint64_t ids[10];
    for (int y = 0; y < 10; y++) /* one message a year for 10 years: ~36 empty buckets between */
        ids[y] = ins_at(ch, "yearly", now - (uint64_t)(9 - y) * 365 * DAY_MS - DAY_MS);
    store_page_result *p = page(ch, STORE_PAGE_LATEST, 0, 50);
    assert_int_equal(p->count, 10);
    assert_int_equal(p->items[0].id, ids[9]);
    assert_int_equal(p->items[9].id, ids[0]);
    assert_false(p->more_older);
    uint32_t q_all = p->hdr.queries;
    assert_true(q_all <= MAX_PAGE_Q);
    store_free(p);

    /* paging back 3 at a time: each page costs a constant number of queries */
    uint64_t anchor = 0;
    int seen = 0;
    for (;;) {
        p = page(ch, seen ? STORE_PAGE_BEFORE : STORE_PAGE_LATEST, anchor, 3);
        assert_true(p->hdr.queries <= MAX_PAGE_Q);
        for (size_t i = 0; i < p->count; i++)
            assert_int_equal(p->items[i].id, ids[9 - seen++]);
        bool more = p->more_older;
        if (p->count)
            anchor = p->items[p->count - 1].id;
        store_free(p);
        if (!more)
            break;
    }
    assert_int_equal(seen, 10);
    /* before the first message: stops at the channel's first bucket, no walk to the epoch */
    p = page(ch, STORE_PAGE_BEFORE, ids[0], 50);
    assert_int_equal(p->count, 0);
    assert_false(p->more_older);
    assert_true(p->hdr.queries <= MAX_PAGE_Q);
    store_free(p);
    /* after a year-old message: crosses ~36 empty buckets forward */
    p = page(ch, STORE_PAGE_AFTER, ids[2], 2);
    assert_int_equal(p->count, 2);
    assert_int_equal(p->items[1].id, ids[3]);
    assert_true(p->hdr.queries <= MAX_PAGE_Q);
    store_free(p);
    p = page(ch, STORE_PAGE_AROUND, ids[5], 4);
    assert_int_equal(p->count, 4);
    assert_true(p->hdr.queries <= MAX_PAGE_Q);
    store_free(p);

    /* a page across more than one chunk of non-empty buckets: 40 messages, 40 buckets */
    ms_xid wide = new_channel();
    uint64_t wids[40];
    for (int i = 0; i < 40; i++)
        wids[i] = ins_at(wide, "every 10 days", now - (uint64_t)(40 - i) * 10 * DAY_MS);
    p = page(wide, STORE_PAGE_LATEST, 0, 50);
    assert_int_equal(p->count, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(p->items[i].id, wids[39 - i]);
    assert_false(p->more_older);
    assert_true(p->hdr.queries <= MAX_PAGE_Q);
    store_free(p);
    p = page(wide, STORE_PAGE_AFTER, wids[0], 50);
    assert_int_equal(p->count, 39);
    assert_int_equal(p->items[38].id, wids[1]);
    /* forward, a long page reads each chunk's ids first (bounded reads, issue 14): +1 a chunk */
    assert_true(p->hdr.queries <= MAX_PAGE_Q + 2);
    store_free(p);

    /* the same page costs the same on a dense channel */
    ms_xid dense = new_channel();
    for (int i = 0; i < 60; i++)
        ins(dense, "dense");
    p = page(dense, STORE_PAGE_LATEST, 0, 50);
    assert_int_equal(p->count, 50);
    assert_true(p->hdr.queries <= MAX_PAGE_Q);
    store_free(p);
}

/* ------------------------------------------------------------------ edit, delete */

static void test_edit_history(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    uint64_t id = ins(ch, "v1");
    store_edit_req e = {.channel_id = ch, .message_id = id, .content = "v2", .content_len = 2};
    store_message_result *res = NULL;
    assert_int_equal(store_edit_sync(S, &e, &res, NULL, 0), 0);
    assert_true(res->msg.is_edited);
    assert_true(res->msg.edited_at_ms > 0);
    assert_string_equal(res->msg.content, "v2");
    store_free(res);
    e.content = "v3";
    assert_int_equal(store_edit_sync(S, &e, &res, NULL, 0), 0);
    store_free(res);

    store_get_req g = {.channel_id = ch, .message_id = id};
    assert_int_equal(store_get_sync(S, &g, &res, NULL, 0), 0);
    assert_string_equal(res->msg.content, "v3");
    assert_true(res->msg.is_edited);
    store_free(res);

    store_history_req h = {.channel_id = ch, .message_id = id, .limit = STORE_LIMIT_DEFAULT};
    store_history_result *hist = NULL;
    assert_int_equal(store_edit_history_sync(S, &h, &hist, NULL, 0), 0);
    assert_int_equal(hist->count, 2);
    assert_string_equal(hist->items[0].content, "v2"); /* newest replacement first */
    assert_string_equal(hist->items[1].content, "v1");
    assert_true(hist->items[0].edited_at_ms >= hist->items[1].edited_at_ms);
    store_free(hist);
    h.limit = 1;
    assert_int_equal(store_edit_history_sync(S, &h, &hist, NULL, 0), 0);
    assert_int_equal(hist->count, 1);
    store_free(hist);

    /* bad edits change nothing */
    e.content = "";
    e.content_len = 0;
    assert_int_equal(store_edit_sync(S, &e, &res, NULL, 0), MS_ERR_INVALID);
    e.content = "\xff\xfe";
    e.content_len = 2;
    assert_int_equal(store_edit_sync(S, &e, &res, NULL, 0), MS_ERR_INVALID);
    e.message_id = id + 1;
    e.content = "x";
    e.content_len = 1;
    assert_int_equal(store_edit_sync(S, &e, &res, NULL, 0), MS_ERR_NOT_FOUND);
    h.message_id = id + 1;
    assert_int_equal(store_edit_history_sync(S, &h, &hist, NULL, 0), MS_ERR_NOT_FOUND);
    assert_int_equal(store_get_sync(S, &g, &res, NULL, 0), 0);
    assert_string_equal(res->msg.content, "v3");
    store_free(res);
}

static void test_soft_delete(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    uint64_t a = ins(ch, "keep");
    store_insert_req r = text_req(ch, "secret");
    r.attachments = "[1]";
    r.metadata = "{\"a\":1}";
    store_message_result *res = NULL;
    assert_int_equal(store_insert_sync(S, &r, &res, NULL, 0), 0);
    uint64_t b = res->msg.id;
    store_free(res);
    store_edit_req e = {.channel_id = ch, .message_id = b, .content = "secret2", .content_len = 7};
    assert_int_equal(store_edit_sync(S, &e, &res, NULL, 0), 0);
    store_free(res);
    store_pin_req pin = {.channel_id = ch, .message_id = b, .pinned_by = U(7)};
    store_pin_result *pr = NULL;
    assert_int_equal(store_pin_sync(S, &pin, &pr, NULL, 0), 0);
    store_free(pr);

    store_get_req d = {.channel_id = ch, .message_id = b};
    assert_int_equal(store_delete_sync(S, &d, &res, NULL, 0), 0);
    assert_true(res->msg.is_deleted);
    assert_true(res->msg.deleted_at_ms > 0);
    assert_string_equal(res->msg.content, "");
    assert_null(res->msg.attachments);
    assert_null(res->msg.metadata);
    store_free(res);
    /* again: succeeds, changes nothing */
    assert_int_equal(store_delete_sync(S, &d, &res, NULL, 0), 0);
    assert_true(res->msg.is_deleted);
    store_free(res);

    store_page_result *p = page(ch, STORE_PAGE_LATEST, 0, 10);
    assert_int_equal(p->count, 2);
    assert_int_equal(p->items[0].id, b);
    assert_true(p->items[0].is_deleted);
    assert_string_equal(p->items[0].content, "");
    assert_int_equal(p->items[1].id, a);
    assert_false(p->items[1].is_deleted);
    store_free(p);

    /* its pin and edit history are gone; it cannot be edited or reacted to */
    store_channel_req cr = {.channel_id = ch};
    store_pins_result *pins = NULL;
    assert_int_equal(store_pins_list_sync(S, &cr, &pins, NULL, 0), 0);
    assert_int_equal(pins->count, 0);
    store_free(pins);
    store_history_req h = {.channel_id = ch, .message_id = b, .limit = 10};
    store_history_result *hist = NULL;
    assert_int_equal(store_edit_history_sync(S, &h, &hist, NULL, 0), 0);
    assert_int_equal(hist->count, 0);
    store_free(hist);
    assert_int_equal(store_edit_sync(S, &e, &res, NULL, 0), MS_ERR_CONFLICT);
    store_reaction_req rr = {.channel_id = ch, .message_id = b, .emoji = "👍", .user_id = U(1)};
    store_reaction_result *rres = NULL;
    assert_int_equal(store_reaction_add_sync(S, &rr, &rres, NULL, 0), MS_ERR_CONFLICT);
    assert_int_equal(store_pin_sync(S, &pin, &pr, NULL, 0), MS_ERR_CONFLICT);
    d.message_id = b + 1;
    assert_int_equal(store_delete_sync(S, &d, &res, NULL, 0), MS_ERR_NOT_FOUND);
}

/* ------------------------------------------------------------------ reactions */

static store_reaction_result *react(ms_xid ch, uint64_t msg, const char *emoji, uint64_t user,
                                    bool add)
{
    store_reaction_req r = {
        .channel_id = ch, .message_id = msg, .emoji = emoji, .user_id = U(user)};
    store_reaction_result *res = NULL;
    int rc = add ? store_reaction_add_sync(S, &r, &res, NULL, 0)
                 : store_reaction_remove_sync(S, &r, &res, NULL, 0);
    assert_int_equal(rc, 0);
    return res;
}

typedef struct react_arg {
    pthread_barrier_t *barrier;
    ms_xid ch;
    uint64_t msg;
    int first_user, users, rounds;
    int changed;
} react_arg;

static void *react_main(void *p)
{
    react_arg *a = p;
    pthread_barrier_wait(a->barrier);
    for (int round = 0; round < a->rounds; round++) {
        for (int u = 0; u < a->users; u++) {
            store_reaction_req r = {.channel_id = a->ch,
                                    .message_id = a->msg,
                                    .emoji = "🔥",
                                    .user_id = U((uint64_t)(a->first_user + u))};
            store_reaction_result *res = NULL;
            if (store_reaction_add_sync(S, &r, &res, NULL, 0) == 0) {
                a->changed += res->changed;
                store_free(res);
            }
        }
    }
    return NULL;
}

static void test_reactions(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    uint64_t m = ins(ch, "react to me");
    store_reaction_result *r = react(ch, m, "👍", 1, true);
    assert_true(r->changed);
    assert_int_equal(r->count, 1);
    store_free(r);
    r = react(ch, m, "👍", 1, true); /* duplicate */
    assert_false(r->changed);
    assert_int_equal(r->count, 1);
    store_free(r);
    for (uint64_t u = 2; u <= 30; u++)
        store_free(react(ch, m, "👍", u, true));
    store_free(react(ch, m, "❤️", 5, true));
    store_free(react(ch, m, "a", 5, true));
    r = react(ch, m, "👍", 2, false);
    assert_true(r->changed);
    assert_int_equal(r->count, 29);
    store_free(r);
    r = react(ch, m, "👍", 2, false); /* already removed */
    assert_false(r->changed);
    assert_int_equal(r->count, 29);
    store_free(r);
    r = react(ch, m, "a", 5, false); /* last one: the emoji disappears */
    assert_int_equal(r->count, 0);
    store_free(r);

    store_get_req g = {.channel_id = ch, .message_id = m};
    store_reactions_result *counts = NULL;
    assert_int_equal(store_reactions_get_sync(S, &g, &counts, NULL, 0), 0);
    assert_int_equal(counts->count, 2);
    for (size_t i = 0; i < counts->count; i++) {
        if (strcmp(counts->items[i].emoji, "👍") == 0)
            assert_int_equal(counts->items[i].count, 29);
        else
            assert_string_equal(counts->items[i].emoji, "❤️");
    }
    assert_true(strcmp(counts->items[0].emoji, counts->items[1].emoji) < 0);
    store_free(counts);

    /* users, paged by ascending id */
    store_reaction_users_req u = {
        .channel_id = ch, .message_id = m, .emoji = "👍", .after_user_id = U(0), .limit = 10};
    uint64_t expect = 1;
    int pages = 0, total = 0;
    for (;;) {
        store_users_result *ur = NULL;
        assert_int_equal(store_reaction_users_sync(S, &u, &ur, NULL, 0), 0);
        for (size_t i = 0; i < ur->count; i++) {
            if (expect == 2)
                expect++; /* removed */
            assert_xid_equal(ur->user_ids[i], U(expect));
            expect++;
            total++;
        }
        pages++;
        bool more = ur->more;
        if (ur->count)
            u.after_user_id = ur->user_ids[ur->count - 1];
        store_free(ur);
        if (!more)
            break;
    }
    assert_int_equal(total, 29);
    assert_int_equal(pages, 3);
    u.limit = STORE_LIMIT_DEFAULT;
    u.after_user_id = U(0);
    store_users_result *ur = NULL;
    assert_int_equal(store_reaction_users_sync(S, &u, &ur, NULL, 0), 0);
    assert_int_equal(ur->count, STORE_USERS_LIMIT_DEFAULT);
    store_free(ur);

    /* unknown message */
    store_reaction_req bad = {.channel_id = ch, .message_id = m + 1, .emoji = "x", .user_id = U(1)};
    assert_int_equal(store_reaction_add_sync(S, &bad, &r, NULL, 0), MS_ERR_NOT_FOUND);

    /* concurrency and retries: 4 threads add overlapping users 3 times each */
    uint64_t m2 = ins(ch, "hot");
    enum { T = 4 };
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, T);
    react_arg args[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        args[i] = (react_arg){.barrier = &barrier,
                              .ch = ch,
                              .msg = m2,
                              .first_user = 100 + i * 10,
                              .users = 20,
                              .rounds = 3};
        pthread_create(&th[i], NULL, react_main, &args[i]);
    }
    int changed = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        changed += args[i].changed;
    }
    pthread_barrier_destroy(&barrier);
    /* users 100..149: 50 distinct */
    assert_int_equal(changed, 50);
    g.message_id = m2;
    assert_int_equal(store_reactions_get_sync(S, &g, &counts, NULL, 0), 0);
    assert_int_equal(counts->count, 1);
    assert_int_equal(counts->items[0].count, 50);
    store_free(counts);
}

/* ------------------------------------------------------------------ exact counts */

/* The rows behind a reaction count: its users, paged. */
static uint64_t reaction_rows(ms_xid ch, uint64_t msg, const char *emoji)
{
    store_reaction_users_req u = {
        .channel_id = ch, .message_id = msg, .emoji = emoji, .after_user_id = U(0), .limit = 100};
    uint64_t n = 0;
    for (;;) {
        store_users_result *ur = NULL;
        assert_int_equal(store_reaction_users_sync(S, &u, &ur, NULL, 0), 0);
        n += ur->count;
        bool more = ur->more;
        if (ur->count)
            u.after_user_id = ur->user_ids[ur->count - 1];
        store_free(ur);
        if (!more)
            return n;
    }
}

/* The count reported for an emoji (0 when it is not listed). */
static uint64_t reaction_count(ms_xid ch, uint64_t msg, const char *emoji)
{
    store_get_req g = {.channel_id = ch, .message_id = msg};
    store_reactions_result *counts = NULL;
    assert_int_equal(store_reactions_get_sync(S, &g, &counts, NULL, 0), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < counts->count; i++)
        if (strcmp(counts->items[i].emoji, emoji) == 0)
            n = counts->items[i].count;
    store_free(counts);
    return n;
}

/*
 * Runs repair passes until the counts of (ch, msg) are exact: 👍 and 🔥 equal
 * their rows, and the channel counts `messages` (bounded). Only this test's
 * counts are awaited: a kept keyspace may hold other runs' records (or
 * leases of a run that was killed).
 */
static bool counts_exact(ms_xid ch, uint64_t msg, uint64_t messages)
{
    return reaction_count(ch, msg, "👍") == reaction_rows(ch, msg, "👍") &&
           reaction_count(ch, msg, "🔥") == reaction_rows(ch, msg, "🔥") &&
           channel_count(ch) == messages;
}

static void repair_until_exact(ms_xid ch, uint64_t msg, uint64_t messages)
{
    store_repair_report rep = {0};
    char detail[256] = "";
    for (int i = 0; i < 200; i++) {
        int rc = store_repair_counts_sync(S, &rep, detail, sizeof detail);
        if (rc)
            fail_msg("repair failed: %s (%s)", ms_err_name(rc), detail);
        if (counts_exact(ch, msg, messages))
            return;
        usleep(50 * 1000);
    }
    fail_msg("the counts were not repaired: %u records pending", rep.pending);
}

typedef struct churn_arg {
    pthread_barrier_t *barrier;
    ms_xid ch;
    uint64_t msg;
    int first_user, users;
} churn_arg;

/* Adds a range of users, removes the even ones, adds them again, removes them again. */
static void *churn_main(void *p)
{
    churn_arg *a = p;
    pthread_barrier_wait(a->barrier);
    for (int round = 0; round < 4; round++) {
        for (int u = 0; u < a->users; u++) {
            uint64_t user = (uint64_t)(a->first_user + u);
            bool add = round % 2 == 0;
            if (!add && user % 2)
                continue;
            store_reaction_req r = {
                .channel_id = a->ch, .message_id = a->msg, .emoji = "🔥", .user_id = U(user)};
            store_reaction_result *res = NULL;
            int rc = add ? store_reaction_add_sync(S, &r, &res, NULL, 0)
                         : store_reaction_remove_sync(S, &r, &res, NULL, 0);
            if (rc == 0)
                store_free(res);
        }
    }
    return NULL;
}

typedef struct repair_arg {
    atomic_bool *stop;
    int passes, failures;
} repair_arg;

static void *repair_main(void *p)
{
    repair_arg *a = p;
    while (!atomic_load(a->stop)) {
        store_repair_report rep;
        if (store_repair_counts_sync(S, &rep, NULL, 0) != 0)
            a->failures++;
        a->passes++;
        usleep(20 * 1000);
    }
    return NULL;
}

/*
 * Issue 4: counts stay exact under failed and timed-out counter updates,
 * concurrency and retries. On ScyllaDB a counter update can fail after its
 * row was written (or be applied and still reported as failed); the backend
 * records the count and its repair recounts the rows. Faults are injected,
 * since a real server cannot be told to fail one statement. SQLite counts
 * are transactional: the same sequence must simply stay exact.
 */
static void test_counts_exact_after_faults(void **state)
{
    (void)state;
    bool faults = store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 0) == 0;
    assert_true(faults == SCYLLA);
    ms_xid ch = new_channel();
    uint64_t m = ins(ch, "count me");

    /* a lost increment: the answer counts the rows anyway */
    if (faults)
        assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 1), 0);
    store_reaction_result *r = react(ch, m, "👍", 1, true);
    assert_true(r->changed);
    assert_int_equal(r->count, 1);
    store_free(r);
    /* an increment applied but reported as timed out */
    if (faults)
        assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_APPLIED, 1), 0);
    r = react(ch, m, "👍", 2, true);
    assert_true(r->changed);
    assert_int_equal(r->count, 2);
    store_free(r);
    /* a lost decrement */
    if (faults)
        assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 1), 0);
    r = react(ch, m, "👍", 1, false);
    assert_true(r->changed);
    assert_int_equal(r->count, 1);
    store_free(r);
    /* the row written, the transaction reported as timed out: the caller sees the error */
    store_reaction_req rq = {.channel_id = ch, .message_id = m, .emoji = "👍", .user_id = U(3)};
    if (faults) {
        assert_int_equal(store_inject_fault(S, STORE_FAULT_LWT_APPLIED, 1), 0);
        char detail[256] = "";
        assert_int_equal(store_reaction_add_sync(S, &rq, &r, detail, sizeof detail),
                         MS_ERR_TIMEOUT);
        assert_true(detail[0] != '\0');
    }
    r = react(ch, m, "👍", 3, true); /* the client's retry */
    assert_true(r->changed == !faults);
    store_free(r);

    /* message counts: two lost increments, one applied but reported as failed */
    if (faults)
        assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 2), 0);
    ins(ch, "a");
    ins(ch, "b");
    if (faults)
        assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_APPLIED, 1), 0);
    ins(ch, "c");

    /* churn on another emoji by 4 threads with overlapping users, while counter updates
     * fail now and then and repair passes run alongside */
    enum { T = 4 };
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, T);
    churn_arg args[T];
    pthread_t th[T], rt;
    atomic_bool stop = false;
    repair_arg ra = {.stop = &stop};
    pthread_create(&rt, NULL, repair_main, &ra);
    for (int i = 0; i < T; i++) {
        args[i] = (churn_arg){
            .barrier = &barrier, .ch = ch, .msg = m, .first_user = 100 + i * 5, .users = 12};
        pthread_create(&th[i], NULL, churn_main, &args[i]);
    }
    for (int k = 0; faults && k < 6; k++) {
        usleep(30 * 1000);
        assert_int_equal(store_inject_fault(
                             S, k % 2 ? STORE_FAULT_COUNTER_APPLIED : STORE_FAULT_COUNTER_LOST, 1),
                         0);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop, true);
    pthread_join(rt, NULL);
    pthread_barrier_destroy(&barrier);
    assert_int_equal(ra.failures, 0);
    assert_true(ra.passes > 0);
    if (faults)
        assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 0), 0);

    repair_until_exact(ch, m, 4);
    /* another pass finds them exact and changes nothing */
    assert_int_equal(store_repair_counts_sync(S, NULL, NULL, 0), 0);
    assert_int_equal(reaction_rows(ch, m, "👍"), 2); /* users 2 and 3 */
    assert_int_equal(reaction_count(ch, m, "👍"), 2);
    /* users 100..126 in overlapping ranges: the 13 odd ones stay, an even one stays when
     * another thread added it after this one removed it */
    uint64_t fire = reaction_rows(ch, m, "🔥");
    assert_true(fire >= 13 && fire <= 27);
    assert_int_equal(reaction_count(ch, m, "🔥"), fire);
    assert_int_equal(channel_count(ch), 4);
    r = react(ch, m, "👍", 4, true); /* the repaired counter keeps counting */
    assert_int_equal(r->count, 3);
    store_free(r);
}

/* ---- message counts coalesced per loop turn (issue 9 item 2) */

typedef struct burst_ctx {
    int done, errors;
} burst_ctx;

static void on_burst(int status, const char *detail, const store_message_result *res, void *ud)
{
    burst_ctx *b = ud;
    (void)detail;
    (void)res;
    if (status != 0)
        b->errors++;
    b->done++;
}

/* The value of a ScyllaDB message-count metric of this process (0 on SQLite). */
static uint64_t count_metric(const char *name)
{
    return atomic_load(&ms_counter_get(name, "backend=\"scylla\"", NULL)->value);
}

/*
 * Inserts n messages into ch at once, all submitted on one loop before it
 * runs (n concurrent POSTs of one server worker); every one must succeed.
 */
static void insert_burst(ms_xid ch, int n)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    burst_ctx b = {0};
    store_insert_req r = text_req(ch, "burst");
    for (int i = 0; i < n; i++)
        assert_int_equal(store_insert(S, &loop, &r, on_burst, &b), 0);
    while (b.done < n)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(b.errors, 0);
    store_loop_detach(S, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * Concurrent inserts into one channel on one loop: the count is exact, and
 * on ScyllaDB the inserts whose messages were written in the same loop turn
 * shared one counter update (fewer updates than messages, each message
 * counted once).
 */
static void test_counts_coalesced(void **state)
{
    (void)state;
    enum { N = 256 };
    ms_xid ch = new_channel();
    uint64_t up0 = count_metric("msgstore_store_count_updates_total");
    uint64_t inc0 = count_metric("msgstore_store_count_increments_total");
    insert_burst(ch, N);
    uint64_t updates = count_metric("msgstore_store_count_updates_total") - up0;
    uint64_t incs = count_metric("msgstore_store_count_increments_total") - inc0;
    assert_int_equal(channel_count(ch), N);
    if (SCYLLA) {
        assert_int_equal(incs, N);
        assert_true(updates >= 1 && updates < N);
        print_message("      %d inserts counted by %" PRIu64 " counter updates\n", N, updates);
    }
    /* alone in its turn, an insert still counts itself */
    ins(ch, "one more");
    assert_int_equal(channel_count(ch), N + 1);
}

/* Counts this process recorded for the repair (a counter update failed). */
static uint64_t repairs_recorded(void)
{
    return atomic_load(
        &ms_counter_get("msgstore_store_count_repairs_total", "result=\"recorded\"", NULL)->value);
}

/*
 * A coalesced counter update that is lost, or applied and reported as
 * failed, is never retried: its (channel, bucket) is recorded and the repair
 * pass recounts the bucket's rows, so the count ends exact.
 */
static void test_counts_coalesced_faults(void **state)
{
    (void)state;
    enum { N = 128 };
    if (store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 0) != 0) {
        skip(); /* SQLite: counts are transactional */
        return;
    }
    ms_xid ch = new_channel();
    uint64_t m = ins(ch, "first");
    /* one update lost: the count misses every increment it carried, the bucket is recorded
     * (the background repair may correct it any time from now on) */
    uint64_t rec0 = repairs_recorded();
    assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 1), 0);
    insert_burst(ch, N);
    assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_LOST, 0), 0);
    assert_true(repairs_recorded() > rec0);
    /* one update applied and reported as timed out: nothing retries it, it is recorded */
    rec0 = repairs_recorded();
    assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_APPLIED, 1), 0);
    insert_burst(ch, N);
    assert_int_equal(store_inject_fault(S, STORE_FAULT_COUNTER_APPLIED, 0), 0);
    assert_true(repairs_recorded() > rec0);
    repair_until_exact(ch, m, 1 + 2 * N);
    assert_int_equal(store_repair_counts_sync(S, NULL, NULL, 0), 0);
    assert_int_equal(channel_count(ch), 1 + 2 * N);
}

/* ------------------------------------------------------------------ pins */

static void test_pins(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    /* 150 characters, multi-byte: the preview keeps 100 characters */
    char longc[600] = "";
    for (int i = 0; i < 150; i++)
        strcat(longc, i % 2 ? "é" : "a");
    uint64_t a = ins(ch, longc);
    uint64_t b = ins(ch, "short");
    store_pin_req pr = {.channel_id = ch, .message_id = a, .pinned_by = U(9)};
    store_pin_result *res = NULL;
    assert_int_equal(store_pin_sync(S, &pr, &res, NULL, 0), 0);
    assert_false(res->duplicate);
    assert_xid_equal(res->pin.pinned_by, U(9));
    assert_xid_equal(res->pin.sender_id, U(42));
    assert_int_equal(strlen(res->pin.content_preview), 150); /* 50 × 'a' + 50 × 'é' */
    store_free(res);
    usleep(2000);
    pr.message_id = b;
    assert_int_equal(store_pin_sync(S, &pr, &res, NULL, 0), 0);
    store_free(res);
    assert_int_equal(store_pin_sync(S, &pr, &res, NULL, 0), 0);
    assert_true(res->duplicate);
    store_free(res);

    store_channel_req cr = {.channel_id = ch};
    store_pins_result *pins = NULL;
    assert_int_equal(store_pins_list_sync(S, &cr, &pins, NULL, 0), 0);
    assert_int_equal(pins->count, 2);
    assert_int_equal(pins->items[0].message_id, b); /* newest pin first */
    assert_int_equal(pins->items[1].message_id, a);
    assert_string_equal(pins->items[0].content_preview, "short");
    assert_true(pins->items[0].pinned_at_ms >= pins->items[1].pinned_at_ms);
    store_free(pins);

    assert_int_equal(store_unpin_sync(S, &pr, &res, NULL, 0), 0);
    assert_int_equal(res->pin.message_id, b);
    store_free(res);
    assert_int_equal(store_unpin_sync(S, &pr, &res, NULL, 0), MS_ERR_NOT_FOUND);
    pr.message_id = b + 1;
    assert_int_equal(store_pin_sync(S, &pr, &res, NULL, 0), MS_ERR_NOT_FOUND);

    /* the cap */
    ms_xid ch2 = new_channel();
    for (int i = 0; i < STORE_MAX_PINS; i++) {
        store_pin_req p = {.channel_id = ch2, .message_id = ins(ch2, "pin me"), .pinned_by = U(1)};
        assert_int_equal(store_pin_sync(S, &p, &res, NULL, 0), 0);
        store_free(res);
    }
    store_pin_req p = {
        .channel_id = ch2, .message_id = ins(ch2, "one too many"), .pinned_by = U(1)};
    char detail[256] = "";
    assert_int_equal(store_pin_sync(S, &p, &res, detail, sizeof detail), MS_ERR_CONFLICT);
    assert_non_null(strstr(detail, "pins"));
    cr.channel_id = ch2;
    assert_int_equal(store_pins_list_sync(S, &cr, &pins, NULL, 0), 0);
    assert_int_equal(pins->count, STORE_MAX_PINS);
    store_free(pins);
    cr.channel_id = new_channel();
    assert_int_equal(store_pins_list_sync(S, &cr, &pins, NULL, 0), 0);
    assert_int_equal(pins->count, 0);
    store_free(pins);
}

typedef struct pin_arg {
    pthread_barrier_t *barrier;
    ms_xid ch;
    uint64_t msgs[4];
    int n;
    bool unpin; /* churn: pin and unpin each message twice */
    int pinned, full, other;
} pin_arg;

static void *pin_main(void *p)
{
    pin_arg *a = p;
    pthread_barrier_wait(a->barrier);
    for (int round = 0; round < (a->unpin ? 2 : 1); round++) {
        for (int i = 0; i < a->n; i++) {
            store_pin_req r = {.channel_id = a->ch, .message_id = a->msgs[i], .pinned_by = U(3)};
            store_pin_result *res = NULL;
            char detail[256] = "";
            int rc = store_pin_sync(S, &r, &res, detail, sizeof detail);
            /* "the pins keep changing; retry" (unavailable) is an answer a caller retries:
             * on a slow machine (valgrind) the store's own retries can run out; retry
             * here, bounded, as a client would (the cap is what is checked) */
            for (int t = 0; rc == MS_ERR_UNAVAILABLE && t < 50; t++) {
                usleep(20 * 1000);
                rc = store_pin_sync(S, &r, &res, detail, sizeof detail);
            }
            if (rc == 0) {
                a->pinned += !res->duplicate;
                store_free(res);
            } else if (rc == MS_ERR_CONFLICT) {
                a->full++;
            } else {
                fprintf(stderr, "pin: %s (%s)\n", ms_err_name(rc), detail);
                a->other++;
            }
            if (a->unpin && store_unpin_sync(S, &r, &res, NULL, 0) == 0)
                store_free(res);
        }
    }
    return NULL;
}

static size_t pins_count(ms_xid ch)
{
    store_channel_req cr = {.channel_id = ch};
    store_pins_result *pins = NULL;
    assert_int_equal(store_pins_list_sync(S, &cr, &pins, NULL, 0), 0);
    size_t n = pins->count;
    store_free(pins);
    return n;
}

/* The pin cap holds when pins race for the last places, and after pins and unpins race. */
static void test_pins_racing(void **state)
{
    (void)state;
    enum { T = 8 };
    ms_xid ch = new_channel();
    for (int i = 0; i < STORE_MAX_PINS - 2; i++) {
        store_pin_req p = {.channel_id = ch, .message_id = ins(ch, "pin"), .pinned_by = U(1)};
        store_pin_result *res = NULL;
        assert_int_equal(store_pin_sync(S, &p, &res, NULL, 0), 0);
        store_free(res);
    }
    /* 8 threads pin 8 other messages at once: 2 places left */
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, T);
    pin_arg args[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        args[i] = (pin_arg){.barrier = &barrier, .ch = ch, .n = 1};
        args[i].msgs[0] = ins(ch, "last places");
    }
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, pin_main, &args[i]);
    int pinned = 0, full = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].other, 0);
        pinned += args[i].pinned;
        full += args[i].full;
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(pinned, 2);
    assert_int_equal(full, T - 2);
    assert_int_equal(pins_count(ch), STORE_MAX_PINS);

    /* churn: 8 threads pin and unpin 4 messages each (overlapping) on a fresh channel */
    ms_xid ch2 = new_channel();
    uint64_t m[T * 2];
    for (int i = 0; i < T * 2; i++)
        m[i] = ins(ch2, "churn");
    pthread_barrier_init(&barrier, NULL, T);
    for (int i = 0; i < T; i++) {
        args[i] = (pin_arg){.barrier = &barrier, .ch = ch2, .n = 4, .unpin = true};
        for (int k = 0; k < 4; k++)
            args[i].msgs[k] = m[(i * 2 + k) % (T * 2)];
        pthread_create(&th[i], NULL, pin_main, &args[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].other, 0);
        assert_int_equal(args[i].full, 0);
    }
    pthread_barrier_destroy(&barrier);
    /* whatever survived, the channel takes exactly up to the cap */
    size_t have = pins_count(ch2);
    assert_true(have <= T * 2);
    int added = 0;
    for (;;) {
        store_pin_req p = {.channel_id = ch2, .message_id = ins(ch2, "fill"), .pinned_by = U(1)};
        store_pin_result *res = NULL;
        int rc = store_pin_sync(S, &p, &res, NULL, 0);
        if (rc == MS_ERR_CONFLICT)
            break;
        assert_int_equal(rc, 0);
        store_free(res);
        added++;
        assert_true(added <= STORE_MAX_PINS);
    }
    assert_int_equal(have + (size_t)added, STORE_MAX_PINS);
    assert_int_equal(pins_count(ch2), STORE_MAX_PINS);
}

/* ------------------------------------------------------------------ read positions */

static store_read_result *read_get(ms_xid ch, uint64_t user)
{
    store_read_req r = {.channel_id = ch, .user_id = U(user)};
    store_read_result *res = NULL;
    assert_int_equal(store_read_get_sync(S, &r, &res, NULL, 0), 0);
    return res;
}

static void test_read_positions(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    uint64_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = ins(ch, "m");
    store_read_result *res = read_get(ch, 5); /* never read: everything unread */
    assert_int_equal(res->last_read_id, 0);
    assert_int_equal(res->unread_count, 8);
    assert_false(res->unread_capped);
    store_free(res);

    store_read_req s = {.channel_id = ch, .user_id = U(5), .message_id = ids[4]};
    assert_int_equal(store_read_set_sync(S, &s, &res, NULL, 0), 0);
    assert_true(res->moved);
    assert_int_equal(res->last_read_id, ids[4]);
    store_free(res);
    s.message_id = ids[2]; /* backwards: ignored */
    assert_int_equal(store_read_set_sync(S, &s, &res, NULL, 0), 0);
    assert_false(res->moved);
    assert_int_equal(res->last_read_id, ids[4]);
    store_free(res);
    res = read_get(ch, 5);
    assert_int_equal(res->last_read_id, ids[4]);
    assert_int_equal(res->unread_count, 3);
    store_free(res);
    /* deleted messages are not unread */
    store_get_req d = {.channel_id = ch, .message_id = ids[6]};
    store_message_result *mr = NULL;
    assert_int_equal(store_delete_sync(S, &d, &mr, NULL, 0), 0);
    store_free(mr);
    res = read_get(ch, 5);
    assert_int_equal(res->unread_count, 2);
    store_free(res);
    s.message_id = ids[7];
    assert_int_equal(store_read_set_sync(S, &s, &res, NULL, 0), 0);
    store_free(res);
    res = read_get(ch, 5);
    assert_int_equal(res->unread_count, 0);
    store_free(res);

    /* the cap: 150 unread reads as 100+, without counting them all */
    ms_xid ch2 = new_channel();
    many_arg args[5];
    pthread_t th[5];
    uint64_t *buf = calloc(150, sizeof *buf);
    for (int i = 0; i < 5; i++) {
        args[i] = (many_arg){.ch = ch2, .n = 30, .ids = buf + i * 30};
        pthread_create(&th[i], NULL, many_main, &args[i]);
    }
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    free(buf);
    res = read_get(ch2, 9);
    assert_true(res->unread_capped);
    assert_int_equal(res->unread_count, STORE_UNREAD_CAP);
    assert_true(res->hdr.queries <= 2 + MAX_PAGE_Q);
    store_free(res);

    /* 110 unread in one bucket, the newest 20 deleted: 90, exactly */
    ms_xid ch3 = new_channel();
    uint64_t t = now_ms() - 3600000;
    uint64_t *ids3 = calloc(110, sizeof *ids3);
    for (int i = 0; i < 110; i++)
        ids3[i] = ins_at(ch3, "m", t + (uint64_t)i * 1000);
    for (int i = 90; i < 110; i++) {
        store_get_req del = {.channel_id = ch3, .message_id = ids3[i]};
        assert_int_equal(store_delete_sync(S, &del, &mr, NULL, 0), 0);
        store_free(mr);
    }
    free(ids3);
    res = read_get(ch3, 9);
    assert_false(res->unread_capped);
    assert_int_equal(res->unread_count, 90);
    store_free(res);
}

/* ------------------------------------------------------------------ channels, sync */

static void test_channel_metadata(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    int rc;
    assert_null(channel_get(ch, &rc));
    assert_int_equal(rc, MS_ERR_NOT_FOUND);
    store_channel_upsert_req u = {
        .channel_id = ch, .name = "général", .type = "group", .created_at_ms = 1600000000000ULL};
    store_channel_result *res = NULL;
    assert_int_equal(store_channel_upsert_sync(S, &u, &res, NULL, 0), 0);
    assert_string_equal(res->channel.name, "général");
    assert_string_equal(res->channel.type, "group");
    assert_int_equal(res->channel.created_at_ms, 1600000000000ULL);
    assert_int_equal(res->channel.message_count, 0);
    assert_int_equal(res->channel.last_message_id, 0);
    store_free(res);
    store_channel_upsert_req u2 = {.channel_id = ch, .name = "renamed"}; /* type kept */
    assert_int_equal(store_channel_upsert_sync(S, &u2, &res, NULL, 0), 0);
    assert_string_equal(res->channel.name, "renamed");
    assert_string_equal(res->channel.type, "group");
    assert_int_equal(res->channel.created_at_ms, 1600000000000ULL);
    store_free(res);
    uint64_t id = ins(ch, "hello");
    ins_at(ch, "older", now_ms() - DAY_MS); /* an older import does not move last_message_id */
    res = channel_get(ch, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(res->channel.message_count, 2);
    assert_int_equal(res->channel.last_message_id, id);
    assert_string_equal(res->channel.name, "renamed");
    store_free(res);
    store_channel_upsert_req bad = {.channel_id = ch, .type = "Bad Type"};
    assert_int_equal(store_channel_upsert_sync(S, &bad, &res, NULL, 0), MS_ERR_INVALID);
}

static void test_sync_state(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    store_channel_req g = {.channel_id = ch};
    store_sync_result *res = NULL;
    assert_int_equal(store_sync_get_sync(S, &g, &res, NULL, 0), MS_ERR_NOT_FOUND);
    store_sync_update_req u = {.channel_id = ch,
                               .telegram_chat_id = -100200300,
                               .last_synced_message_id = 50,
                               .direction = STORE_SYNC_TELEGRAM_TO_WEB};
    assert_int_equal(store_sync_update_sync(S, &u, &res, NULL, 0), 0);
    assert_int_equal(res->state.last_synced_message_id, 50);
    assert_int_equal(res->state.direction, STORE_SYNC_TELEGRAM_TO_WEB);
    assert_int_equal(res->state.telegram_chat_id, -100200300);
    assert_true(res->state.last_sync_at_ms > 0);
    uint64_t created = res->state.created_at_ms;
    store_free(res);
    u.last_synced_message_id = 40; /* never backwards */
    u.direction = STORE_SYNC_BIDIRECTIONAL;
    assert_int_equal(store_sync_update_sync(S, &u, &res, NULL, 0), 0);
    assert_int_equal(res->state.last_synced_message_id, 50);
    assert_int_equal(res->state.direction, STORE_SYNC_BIDIRECTIONAL);
    assert_int_equal(res->state.created_at_ms, created);
    store_free(res);
    u.last_synced_message_id = 60;
    assert_int_equal(store_sync_update_sync(S, &u, &res, NULL, 0), 0);
    store_free(res);
    assert_int_equal(store_sync_get_sync(S, &g, &res, NULL, 0), 0);
    assert_int_equal(res->state.last_synced_message_id, 60);
    store_free(res);
    store_sync_direction d;
    assert_int_equal(store_sync_direction_parse("web_to_telegram", &d), 0);
    assert_int_equal(d, STORE_SYNC_WEB_TO_TELEGRAM);
}

/* ------------------------------------------------------------------ bad input */

static void expect_insert_error(store_insert_req r, int code, const char *words)
{
    store_message_result *res = NULL;
    char detail[256] = "";
    assert_int_equal(store_insert_sync(S, &r, &res, detail, sizeof detail), code);
    assert_null(res);
    if (!strstr(detail, words))
        fail_msg("detail \"%s\" lacks \"%s\"", detail, words);
}

static void test_bad_input(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    /* unknown channel: an empty page, not an error */
    store_page_result *p = page(ch, STORE_PAGE_LATEST, 0, STORE_LIMIT_DEFAULT);
    assert_int_equal(p->count, 0);
    assert_false(p->more_older);
    store_free(p);

    store_insert_req r = text_req(ch, "x");
    r.channel_id = U(0);
    expect_insert_error(r, MS_ERR_INVALID, "channel_id");
    if (store_id_format(S) == MS_ID_INT64) { /* a UUID may have hi 0 and any lo */
        r.channel_id = ms_xid_int((uint64_t)INT64_MAX + 1);
        expect_insert_error(r, MS_ERR_INVALID, "channel_id");
    }
    /* a UUID in an int64 store, an integer in a uuid store: the other format */
    r.channel_id = store_id_format(S) == MS_ID_INT64 ? (ms_xid){1, 1} : U(0);
    expect_insert_error(r, MS_ERR_INVALID, "channel_id");
    r = text_req(ch, "x");
    r.sender_id = U(0);
    expect_insert_error(r, MS_ERR_INVALID, "sender_id");
    char *big = malloc(4002);
    memset(big, 'a', 4001);
    big[4001] = '\0';
    r = text_req(ch, big);
    expect_insert_error(r, MS_ERR_TOO_LARGE, "4000 characters");
    /* 4000 two-byte characters are fine: the limit counts characters, not bytes */
    char *wide = malloc(8001);
    for (int i = 0; i < 4000; i++)
        memcpy(wide + 2 * i, "é", 2);
    wide[8000] = '\0';
    ms_xid ok_ch = new_channel();
    ins(ok_ch, wide);
    free(wide);
    free(big);
    r = text_req(ch, "bad \xc3\x28 utf8");
    expect_insert_error(r, MS_ERR_INVALID, "UTF-8");
    r = text_req(ch, "overlong \xc0\xaf");
    expect_insert_error(r, MS_ERR_INVALID, "UTF-8");
    r = text_req(ch, "surrogate \xed\xa0\x80");
    expect_insert_error(r, MS_ERR_INVALID, "UTF-8");
    r = text_req(ch, "nul");
    r.content = "nul\0byte";
    r.content_len = 8;
    expect_insert_error(r, MS_ERR_INVALID, "UTF-8");
    r = text_req(ch, "");
    expect_insert_error(r, MS_ERR_INVALID, "empty");
    r = text_req(ch, "x");
    r.content = NULL;
    r.content_len = 5;
    expect_insert_error(r, MS_ERR_INVALID, "missing");
    r = text_req(ch, "x");
    r.attachments = "{not json";
    expect_insert_error(r, MS_ERR_INVALID, "attachments");
    r.attachments = "{}";
    expect_insert_error(r, MS_ERR_INVALID, "array");
    r = text_req(ch, "x");
    r.metadata = "[1]";
    expect_insert_error(r, MS_ERR_INVALID, "metadata");
    r = text_req(ch, "x");
    r.nonce = "has space";
    expect_insert_error(r, MS_ERR_INVALID, "nonce");
    r.nonce = "";
    expect_insert_error(r, MS_ERR_INVALID, "nonce");
    r = text_req(ch, "x");
    r.type = (store_msg_type)99;
    expect_insert_error(r, MS_ERR_INVALID, "type");
    r = text_req(ch, "x");
    r.has_telegram = true;
    r.telegram_chat_id = 1;
    r.telegram_message_id = 0;
    expect_insert_error(r, MS_ERR_INVALID, "telegram_message_id");
    r = text_req(ch, "x");
    r.at_ms = 1000; /* before the epoch */
    expect_insert_error(r, MS_ERR_INVALID, "epoch");
    r.at_ms = now_ms() + DAY_MS;
    expect_insert_error(r, MS_ERR_INVALID, "future");

    /* nothing was written for any of them */
    p = page(ch, STORE_PAGE_LATEST, 0, 100);
    assert_int_equal(p->count, 0);
    store_free(p);
    int rc;
    assert_null(channel_get(ch, &rc));
    assert_int_equal(rc, MS_ERR_NOT_FOUND);

    /* limits */
    assert_int_equal(page_err(ch, STORE_PAGE_LATEST, 0, 0), MS_ERR_INVALID);
    assert_int_equal(page_err(ch, STORE_PAGE_LATEST, 0, 1000), MS_ERR_INVALID);
    assert_int_equal(page_err(ch, STORE_PAGE_LATEST, 0, -5), MS_ERR_INVALID);
    assert_int_equal(page_err(ch, STORE_PAGE_LATEST, 0, 101), MS_ERR_INVALID);
    assert_int_equal(page_err(ch, STORE_PAGE_LATEST, 0, 100), 0);
    assert_int_equal(page_err(ch, STORE_PAGE_BEFORE, 0, 10), MS_ERR_INVALID);
    assert_int_equal(page_err(ch, STORE_PAGE_AFTER, UINT64_MAX, 10), MS_ERR_INVALID);
    assert_int_equal(page_err(ch, (store_page_mode)9, 1, 10), MS_ERR_INVALID);
    assert_int_equal(page_err(U(0), STORE_PAGE_LATEST, 0, 10), MS_ERR_INVALID);
    store_get_req g = {.channel_id = ch, .message_id = 0};
    store_message_result *mr = NULL;
    assert_int_equal(store_get_sync(S, &g, &mr, NULL, 0), MS_ERR_INVALID);
    store_reaction_req rr = {.channel_id = ch, .message_id = 1, .emoji = "", .user_id = U(1)};
    store_reaction_result *rres = NULL;
    assert_int_equal(store_reaction_add_sync(S, &rr, &rres, NULL, 0), MS_ERR_INVALID);
    rr.emoji = "a\nb";
    assert_int_equal(store_reaction_add_sync(S, &rr, &rres, NULL, 0), MS_ERR_INVALID);
    store_reaction_users_req ur = {.channel_id = ch, .message_id = 1, .emoji = "a", .limit = 0};
    store_users_result *ures = NULL;
    assert_int_equal(store_reaction_users_sync(S, &ur, &ures, NULL, 0), MS_ERR_INVALID);
    store_read_req rd = {.channel_id = ch, .user_id = U(0)};
    store_read_result *rdr = NULL;
    assert_int_equal(store_read_get_sync(S, &rd, &rdr, NULL, 0), MS_ERR_INVALID);
    store_sync_update_req su = {.channel_id = ch, .telegram_chat_id = 0};
    store_sync_result *sr = NULL;
    assert_int_equal(store_sync_update_sync(S, &su, &sr, NULL, 0), MS_ERR_INVALID);
    /* forward-only positions are their own write timestamps: more than 3 days ahead is
     * refused (ScyllaDB would refuse the write; Cassandra and SQLite answer the same) */
    uint64_t far = ms_snowflake_from_unix_ms(now_ms() + 4 * DAY_MS, CFG.store.epoch_ms);
    store_read_req rf = {.channel_id = ch, .user_id = U(5), .message_id = far};
    assert_int_equal(store_read_set_sync(S, &rf, &rdr, NULL, 0), MS_ERR_INVALID);
    rf.message_id = ms_snowflake_from_unix_ms(now_ms() + 2 * DAY_MS, CFG.store.epoch_ms);
    assert_int_equal(store_read_set_sync(S, &rf, &rdr, NULL, 0), 0);
    store_free(rdr);
    rdr = NULL;
    su = (store_sync_update_req){.channel_id = ch,
                                 .telegram_chat_id = -100,
                                 .last_synced_message_id = (int64_t)(now_ms() + 4 * DAY_MS) * 1000};
    assert_int_equal(store_sync_update_sync(S, &su, &sr, NULL, 0), MS_ERR_INVALID);
    /* an explicit id that is taken */
    uint64_t id = ins(ok_ch, "taken");
    r = text_req(ok_ch, "again");
    r.id = id;
    expect_insert_error(r, MS_ERR_CONFLICT, "already");
    assert_int_equal(channel_count(ok_ch), 2);
}

/* ------------------------------------------------------------------ async API */

typedef struct async_ctx {
    uv_loop_t *loop;
    pthread_t loop_thread;
    int pending;
    int done;
    int errors;
    uint64_t first_id;
    int page_count[64];
    uint64_t page_first[64];
    int invalid_status;
    bool in_call; /* a callback must never run inside the store_X call */
    bool cb_inside_call;
} async_ctx;

static void on_insert(int status, const char *detail, const store_message_result *res, void *ud)
{
    async_ctx *c = ud;
    (void)detail;
    if (c->in_call)
        c->cb_inside_call = true;
    assert_true(pthread_equal(pthread_self(), c->loop_thread));
    if (status == 0) {
        if (!c->first_id)
            c->first_id = res->msg.id;
    } else {
        c->errors++;
    }
    c->done++;
}

static void on_invalid(int status, const char *detail, const store_message_result *res, void *ud)
{
    async_ctx *c = ud;
    if (c->in_call)
        c->cb_inside_call = true;
    assert_null(res);
    assert_non_null(detail);
    c->invalid_status = status;
    c->done++;
}

typedef struct page_slot {
    async_ctx *c;
    int i;
} page_slot;

static void on_page(int status, const char *detail, const store_page_result *res, void *ud)
{
    page_slot *s = ud;
    (void)detail;
    assert_int_equal(status, 0);
    s->c->page_count[s->i] = (int)res->count;
    s->c->page_first[s->i] = res->count ? res->items[0].id : 0;
    s->c->done++;
}

static void test_async_api(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    async_ctx c = {.loop = &loop, .loop_thread = pthread_self()};
    ms_xid ch = new_channel();
    store_insert_req r = text_req(ch, "async");
    for (int i = 0; i < 20; i++) {
        c.in_call = true;
        assert_int_equal(store_insert(S, &loop, &r, on_insert, &c), 0);
        c.in_call = false;
    }
    store_insert_req bad = text_req(ch, "");
    c.in_call = true;
    assert_int_equal(store_insert(S, &loop, &bad, on_invalid, &c), 0);
    c.in_call = false;
    while (c.done < 21)
        uv_run(&loop, UV_RUN_ONCE);
    assert_false(c.cb_inside_call);
    assert_int_equal(c.errors, 0);
    assert_int_equal(c.invalid_status, MS_ERR_INVALID);

    /* identical pages in flight: one answer for all, some coalesced */
    store_stats before, after;
    store_get_stats(S, &before);
    page_slot slots[64];
    c.done = 0;
    store_page_req pr = {.channel_id = ch, .mode = STORE_PAGE_LATEST, .limit = 50};
    for (int i = 0; i < 64; i++) {
        slots[i] = (page_slot){&c, i};
        assert_int_equal(store_page(S, &loop, &pr, on_page, &slots[i]), 0);
    }
    while (c.done < 64)
        uv_run(&loop, UV_RUN_ONCE);
    store_get_stats(S, &after);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(c.page_count[i], 20);
        assert_int_equal(c.page_first[i], c.page_first[0]);
    }
    uint64_t calls = after.ops[STORE_OP_PAGE].calls - before.ops[STORE_OP_PAGE].calls;
    uint64_t coalesced = after.ops[STORE_OP_PAGE].coalesced - before.ops[STORE_OP_PAGE].coalesced;
    assert_int_equal(calls, 64);
    assert_true(coalesced >= 1);
    print_message("      coalescing: %" PRIu64 " of 64 identical pages shared a query\n",
                  coalesced);

    /* read your writes: a page asked after an insert was acknowledged sees it */
    c.done = 0;
    c.first_id = 0;
    assert_int_equal(store_insert(S, &loop, &r, on_insert, &c), 0);
    while (c.done < 1)
        uv_run(&loop, UV_RUN_ONCE);
    c.done = 0;
    for (int i = 0; i < 8; i++)
        assert_int_equal(store_page(S, &loop, &pr, on_page, &slots[i]), 0);
    while (c.done < 8)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(c.page_count[i], 21);
        assert_int_equal(c.page_first[i], c.first_id);
    }

    store_loop_detach(S, &loop);
    uv_run(&loop, UV_RUN_DEFAULT); /* the async handle closes */
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(store_insert(S, NULL, &r, on_insert, &c), MS_ERR_INVALID);
}

/*
 * Issue 14 item 4: pages over buckets full of rows at their largest. On
 * ScyllaDB the reads that need no ORDER BY are paged (each page under
 * 1 MiB, so more requests than buckets chunks), those that do have their IN
 * list capped (down to one bucket a read); the pages must still be exact.
 */
static void test_large_rows_bounded_reads(void **state)
{
    (void)state;
    ms_xid ch = new_channel();
    size_t chars = (size_t)CFG.store.max_content_chars;
    char *big = malloc(chars * 4 + 1);
    assert_non_null(big);
    for (size_t i = 0; i < chars; i++)
        memcpy(big + i * 4, "\xf0\x9d\x84\x9e", 4); /* U+1D11E, 4 bytes */
    big[chars * 4] = '\0';
    enum { NB = 6, PER = 10 };
    uint64_t since_epoch = now_ms() - 80 * DAY_MS - CFG.store.epoch_ms;
    uint64_t t0 = CFG.store.epoch_ms + (since_epoch / MS_BUCKET_MS + 1) * MS_BUCKET_MS;
    uint64_t ids[NB * PER];
    for (int b = 0; b < NB; b++)
        for (int k = 0; k < PER; k++)
            ids[b * PER + k] = ins_at(ch, big, t0 + (uint64_t)b * MS_BUCKET_MS + (uint64_t)k);
    free(big);

    store_page_result *p = page(ch, STORE_PAGE_LATEST, 0, 50);
    assert_int_equal(p->count, 50);
    assert_true(p->more_older);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(p->items[i].id, ids[NB * PER - 1 - i]);
        assert_int_equal(p->items[i].content_len, chars * 4);
    }
    if (SCYLLA) { /* the first bucket, the bucket list, then the IN read in several pages */
        size_t row = chars * 4 + 2 * STORE_MAX_JSON_BYTES + STORE_MAX_NONCE_BYTES + 256;
        size_t per_page = (1024 * 1024) / row;
        size_t pages = (NB * PER + per_page - 1) / per_page;
        assert_true(pages > 1);
        assert_true(p->hdr.queries >= 2 + pages);
    }
    store_free(p);

    p = page(ch, STORE_PAGE_AFTER, ids[0], 50);
    assert_int_equal(p->count, 50);
    assert_true(p->more_newer);
    for (int i = 0; i < 50; i++) /* newest first: ids[50] .. ids[1] */
        assert_int_equal(p->items[i].id, ids[50 - i]);
    store_free(p);
}

/* ------------------------------------------------------------------ races (issue 10) */

/*
 * Issue 10 item 6: an edit racing a delete must not bring the deleted
 * content back (into the message or its edit history) nor succeed after the
 * delete. The fault makes another writer delete the message between the
 * edit's read and its write (ScyllaDB; SQLite serializes writes anyway).
 */
static void test_edit_races_delete(void **state)
{
    (void)state;
    if (store_inject_fault(S, STORE_FAULT_EDIT_RACE, 0) != 0) {
        print_message("      no fault injection on this backend: skipped\n");
        skip();
    }
    ms_xid ch = new_channel();
    uint64_t id = ins(ch, "original");
    assert_int_equal(store_inject_fault(S, STORE_FAULT_EDIT_RACE, 1), 0);
    store_edit_req e = {.channel_id = ch,
                        .message_id = id,
                        .content = "secret edit",
                        .content_len = strlen("secret edit")};
    store_message_result *res = NULL;
    char detail[256] = "";
    assert_int_equal(store_edit_sync(S, &e, &res, detail, sizeof detail), MS_ERR_CONFLICT);
    assert_null(res);
    assert_non_null(strstr(detail, "deleted"));

    store_get_req g = {.channel_id = ch, .message_id = id};
    assert_int_equal(store_get_sync(S, &g, &res, NULL, 0), 0);
    assert_true(res->msg.is_deleted);
    assert_false(res->msg.is_edited);
    assert_string_equal(res->msg.content, "");
    store_free(res);
    store_history_req h = {.channel_id = ch, .message_id = id, .limit = 10};
    store_history_result *hr = NULL;
    assert_int_equal(store_edit_history_sync(S, &h, &hr, NULL, 0), 0);
    assert_int_equal(hr->count, 0);
    store_free(hr);
}

typedef struct nonce_race {
    int done;
    int status[2];
    uint64_t id[2];
    char content[2][32];
} nonce_race;

typedef struct nonce_slot {
    nonce_race *r;
    int i;
} nonce_slot;

static void on_nonce_insert(int status, const char *detail, const store_message_result *res,
                            void *ud)
{
    nonce_slot *sl = ud;
    (void)detail;
    sl->r->status[sl->i] = status;
    if (status == 0) {
        sl->r->id[sl->i] = res->msg.id;
        snprintf(sl->r->content[sl->i], sizeof sl->r->content[sl->i], "%s", res->msg.content);
    }
    sl->r->done++;
}

typedef struct delayed_insert {
    store_insert_req req;
    uv_loop_t *loop;
    nonce_slot *slot;
} delayed_insert;

static void on_second_insert(uv_timer_t *t)
{
    delayed_insert *d = t->data;
    assert_int_equal(store_insert(S, d->loop, &d->req, on_nonce_insert, d->slot), 0);
    uv_close((uv_handle_t *)t, NULL);
}

/*
 * Issue 10 item 7: a retry of a POST (same nonce) while the first writer is
 * slow. The retry finds the nonce claimed and the message missing, waits,
 * then completes the message itself; the first writer writes later. Both
 * callers must be answered with the one message that is stored.
 */
static void test_nonce_retry_one_message(void **state)
{
    (void)state;
    if (store_inject_fault(S, STORE_FAULT_SLOW_INSERT, 0) != 0) {
        print_message("      no fault injection on this backend: skipped\n");
        skip();
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    ms_xid ch = new_channel();
    char nonce[48];
    snprintf(nonce, sizeof nonce, "slow-%" PRId64, num(ch));
    nonce_race race = {0};
    nonce_slot slots[2] = {{&race, 0}, {&race, 1}};
    store_insert_req first = text_req(ch, "first attempt");
    first.nonce = nonce;
    assert_int_equal(store_inject_fault(S, STORE_FAULT_SLOW_INSERT, 1), 0);
    assert_int_equal(store_insert(S, &loop, &first, on_nonce_insert, &slots[0]), 0);
    /* the retry, once the first one claimed the nonce and is stalled */
    delayed_insert d = {.req = text_req(ch, "the retry"), .loop = &loop, .slot = &slots[1]};
    d.req.nonce = nonce;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &d;
    uv_timer_start(&t, on_second_insert, 300, 0);
    while (race.done < 2)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(race.status[0], 0);
    assert_int_equal(race.status[1], 0);
    assert_int_equal(race.id[0], race.id[1]);
    assert_string_equal(race.content[0], race.content[1]);

    store_get_req g = {.channel_id = ch, .message_id = race.id[0]};
    store_message_result *res = NULL;
    assert_int_equal(store_get_sync(S, &g, &res, NULL, 0), 0);
    assert_string_equal(res->msg.content, race.content[0]);
    store_free(res);
    store_loop_detach(S, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------------------------ health, stats, migrations */

static void test_ping_stats_migrations(void **state)
{
    (void)state;
    store_ping_result *p = NULL;
    assert_int_equal(store_ping_sync(S, &p, NULL, 0), 0);
    size_t n = 0;
    const store_migration *m = store_migrations(SCYLLA ? MS_BACKEND_SCYLLA : MS_BACKEND_SQLITE, &n);
    assert_true(n >= 1);
    assert_int_equal(p->schema_version, m[n - 1].version);
    assert_string_equal(p->backend, store_backend_name(S));
    store_free(p);
    for (size_t i = 1; i < n; i++)
        assert_true(m[i].version > m[i - 1].version);
    if (SCYLLA) {
        /* every loop's session has its own labels: gauges such as the breaker state are
         * not overwritten by whichever loop wrote last */
        size_t len = 0;
        char *text = ms_metrics_render(&len);
        assert_non_null(text);
        assert_non_null(strstr(text, "msgstore_cql_breaker_state{session=\"store-"));
        assert_null(strstr(text, "msgstore_cql_breaker_state{session=\"store\""));
        free(text);
    }
    /* migrating again is a no-op */
    int applied = -1;
    char err[256];
    assert_int_equal(store_migrate(&CFG.store, NULL, NULL, &applied, err, sizeof err), 0);
    assert_int_equal(applied, 0);

    store_stats st;
    store_get_stats(S, &st);
    assert_true(st.ops[STORE_OP_INSERT].calls > 0);
    assert_true(st.ops[STORE_OP_INSERT].queries >=
                st.ops[STORE_OP_INSERT].calls - st.ops[STORE_OP_INSERT].errors);
    assert_true(st.ops[STORE_OP_PAGE].errors > 0); /* the bad limits above */
    assert_string_equal(store_op_name(STORE_OP_PAGE), "page");
    if (!SCYLLA) {
        assert_true(st.write_batches > 0);
        assert_true(st.batched_writes >= st.write_batches);
        print_message("      sqlite group commit: %" PRIu64 " writes in %" PRIu64 " transactions\n",
                      st.batched_writes, st.write_batches);
    }
}

/* SQLite: what was acknowledged is there after a close and reopen. */
static void test_reopen_durable(void **state)
{
    (void)state;
    if (SCYLLA)
        skip();
    ms_xid ch = new_channel();
    uint64_t id = ins(ch, "durable");
    store_close(S);
    S = NULL;
    char err[256];
    store_options opt = {.no_migrate = true, .scylla_repair_settle_ms = 300};
    assert_int_equal(store_open(&CFG.store, &opt, &S, err, sizeof err), 0);
    store_get_req g = {.channel_id = ch, .message_id = id};
    store_message_result *res = NULL;
    assert_int_equal(store_get_sync(S, &g, &res, NULL, 0), 0);
    assert_string_equal(res->msg.content, "durable");
    store_free(res);
}

/* ------------------------------------------------------------------ setup */

static const char *lookup(const char *name, void *ctx)
{
    (void)ctx;
    const char *v = storet_lookup_backend(name);
    if (v)
        return v;
    if (strcmp(name, "SCYLLA_KEYSPACE") == 0 && SCYLLA && !getenv(name))
        return "msgstore_conformance";
    return storet_lookup_env(name);
}

/* ------------------------------------------------------------------ search */

/*
 * Searches chs for q (sort, before, limit as given). On ScyllaDB the index is
 * fed asynchronously (src/search/): the search is repeated until it returns
 * `expect` hits or 20 s passed; on SQLite it must be exact at once.
 */
static store_search_result *search_in(const ms_xid *chs, size_t nch, const char *q,
                                      store_search_sort sort, uint64_t before, int limit,
                                      size_t expect)
{
    store_search_req r = {.channel_ids = chs,
                          .nchannels = nch,
                          .query = q,
                          .before = before,
                          .limit = limit,
                          .sort = sort};
    uint64_t deadline = now_ms() + (SCYLLA ? 20000 : 0);
    for (;;) {
        store_search_result *res = NULL;
        char detail[256] = "";
        int rc = store_search_sync(S, &r, &res, detail, sizeof detail);
        if (rc)
            fail_msg("search %s failed: %s (%s)", q, ms_err_name(rc), detail);
        for (size_t i = 0; i < res->count; i++) {
            assert_false(res->items[i].msg.is_deleted);
            assert_non_null(res->items[i].snippet);
            if (sort == STORE_SEARCH_NEWEST && i)
                assert_true(res->items[i - 1].msg.id > res->items[i].msg.id);
            if (sort == STORE_SEARCH_RELEVANCE && i)
                assert_true(res->items[i - 1].score >= res->items[i].score);
        }
        if (res->count == expect || now_ms() >= deadline)
            return res;
        store_free(res);
        usleep(100 * 1000);
    }
}

/*
 * Skips the calling test when the store has no search index (a ScyllaDB store
 * opened without MSGSTORE_SEARCH_PG_URL: MS_ERR_UNPROCESSABLE); SQLite always has one.
 */
static void need_search(void)
{
    ms_xid ch = U(1);
    store_search_req r = {.channel_ids = &ch, .nchannels = 1, .query = "x", .limit = 1};
    store_search_result *res = NULL;
    int rc = store_search_sync(S, &r, &res, NULL, 0);
    store_free(res);
    if (rc == MS_ERR_UNPROCESSABLE && SCYLLA) {
        print_message("      no search index attached to this ScyllaDB store: skipped\n");
        skip();
    }
}

/* The number of hits of q in one channel, newest first, limit 100. */
static size_t search_count(ms_xid ch, const char *q, size_t expect)
{
    store_search_result *res = search_in(&ch, 1, q, STORE_SEARCH_NEWEST, 0, 100, expect);
    size_t n = res->count;
    store_free(res);
    return n;
}

static bool hit_has(const store_search_result *res, uint64_t id)
{
    for (size_t i = 0; i < res->count; i++)
        if (res->items[i].msg.id == id)
            return true;
    return false;
}

static void test_search_syntax(void **state)
{
    (void)state;
    need_search();
    ms_xid ch = new_channel(), other = new_channel();
    uint64_t fox = ins(ch, "The quick brown fox jumps");
    uint64_t dogs = ins(ch, "quick brown dogs <b>bark</b> & growl");
    uint64_t lazy = ins(ch, "a lazy dog sleeps");
    uint64_t brownies = ins(ch, "Brownies are QUICK to bake");
    uint64_t cafe = ins(ch, "un café crème, s'il vous plaît");
    ins(other, "quick brown fox in another channel");

    store_search_result *res = search_in(&ch, 1, "quick", STORE_SEARCH_NEWEST, 0, 100, 3);
    assert_int_equal(res->count, 3); /* case folded; the other channel stays out */
    assert_int_equal(res->items[0].msg.id, brownies);
    assert_int_equal(res->items[1].msg.id, dogs);
    assert_int_equal(res->items[2].msg.id, fox);
    assert_false(res->more);
    assert_non_null(strstr(res->items[0].snippet, "<mark>QUICK</mark>"));
    /* the excerpt is HTML-escaped around the marks */
    assert_non_null(strstr(res->items[1].snippet, "&lt;b&gt;bark&lt;/b&gt; &amp; growl"));
    assert_string_equal(res->items[1].msg.content, "quick brown dogs <b>bark</b> & growl");
    store_free(res);

    assert_int_equal(search_count(ch, "quick brown", 2), 2);   /* every word */
    assert_int_equal(search_count(ch, "\"brown fox\"", 1), 1); /* a phrase */
    assert_int_equal(search_count(ch, "\"fox brown\"", 0), 0); /* in order */
    assert_int_equal(search_count(ch, "brown*", 3), 3);        /* brown, brown, brownies */
    assert_int_equal(search_count(ch, "quick -dogs", 2), 2);   /* an exclusion */
    assert_int_equal(search_count(ch, "quick -\"brown fox\"", 2), 2);
    assert_int_equal(search_count(ch, "dog", 1), 1);        /* words, not substrings */
    assert_int_equal(search_count(ch, "cafe CREME", 1), 1); /* accents and case */
    assert_int_equal(search_count(ch, "plaît", 1), 1);
    assert_int_equal(search_count(ch, "zebra", 0), 0);
    assert_int_equal(search_count(ch, "quick & -", 3), 3); /* punctuation is ignored */
    /* FTS5 and tsquery syntax in the text is only text */
    assert_int_equal(search_count(ch, "quick OR lazy", 0), 0);
    assert_int_equal(search_count(ch, "NEAR(quick lazy)", 0), 0);
    assert_int_equal(search_count(ch, "channel:c1 content:quick", 0), 0);
    assert_int_equal(search_count(ch, "lazy|quick", 0), 0);
    assert_int_equal(search_count(ch, "sleeps:*", 1), 1);
    res = search_in(&ch, 1, "sleeps", STORE_SEARCH_NEWEST, 0, 100, 1);
    assert_int_equal(res->count, 1);
    assert_int_equal(res->items[0].msg.id, lazy);
    store_free(res);
    res = search_in(&ch, 1, "cafe", STORE_SEARCH_NEWEST, 0, 100, 1);
    assert_int_equal(res->items[0].msg.id, cafe);
    assert_non_null(strstr(res->items[0].snippet, "<mark>café</mark>"));
    assert_non_null(strstr(res->items[0].snippet, "s&#39;il"));
    store_free(res);
}

/* Edits message id of ch to text; the edit must succeed. */
static void edit_ok(ms_xid ch, uint64_t id, const char *text)
{
    store_edit_req e = {.channel_id = ch, .message_id = id, .content = text};
    e.content_len = strlen(text);
    store_message_result *mr = NULL;
    assert_int_equal(store_edit_sync(S, &e, &mr, NULL, 0), 0);
    store_free(mr);
}

static void test_search_edit_delete(void **state)
{
    (void)state;
    need_search();
    ms_xid ch = new_channel();
    uint64_t id = ins(ch, "apple pie recipe");
    uint64_t keep = ins(ch, "apple juice");
    assert_int_equal(search_count(ch, "apple", 2), 2);
    edit_ok(ch, id, "banana bread recipe");
    store_message_result *mr = NULL;
    /* the edit re-indexed the message: the old words are gone, the new ones found */
    assert_int_equal(search_count(ch, "banana", 1), 1);
    assert_int_equal(search_count(ch, "pie", 0), 0);
    store_search_result *res = search_in(&ch, 1, "apple", STORE_SEARCH_NEWEST, 0, 100, 1);
    assert_int_equal(res->count, 1);
    assert_int_equal(res->items[0].msg.id, keep);
    store_free(res);
    res = search_in(&ch, 1, "recipe", STORE_SEARCH_NEWEST, 0, 100, 1);
    assert_int_equal(res->count, 1);
    assert_string_equal(res->items[0].msg.content, "banana bread recipe");
    assert_true(res->items[0].msg.is_edited);
    store_free(res);
    /* a deleted message is never a hit */
    store_get_req d = {.channel_id = ch, .message_id = id};
    assert_int_equal(store_delete_sync(S, &d, &mr, NULL, 0), 0);
    store_free(mr);
    assert_int_equal(search_count(ch, "banana", 0), 0);
    assert_int_equal(search_count(ch, "recipe", 0), 0);
    assert_int_equal(search_count(ch, "apple", 1), 1);
    /* an attachment-only message has nothing to find, and is no error */
    store_insert_req r = text_req(ch, "");
    r.attachments = "[{\"url\":\"https://example.com/apple.png\"}]";
    assert_int_equal(store_insert_sync(S, &r, &mr, NULL, 0), 0);
    store_free(mr);
    assert_int_equal(search_count(ch, "apple", 1), 1);
}

static void test_search_paging(void **state)
{
    (void)state;
    need_search();
    ms_xid ch = new_channel();
    uint64_t ids[7];
    for (int i = 0; i < 7; i++) {
        char text[64];
        snprintf(text, sizeof text, "paging token number %d", i);
        ids[i] = ins(ch, text);
    }
    ins(ch, "unrelated words");
    /* the default limit (20); on the cluster, also: every one indexed before paging (a page of
       3 may otherwise be full before the newest are in the index) */
    store_search_result *res =
        search_in(&ch, 1, "token", STORE_SEARCH_NEWEST, 0, STORE_LIMIT_DEFAULT, 7);
    assert_int_equal(res->count, 7);
    store_free(res);
    res = search_in(&ch, 1, "token", STORE_SEARCH_NEWEST, 0, 3, 3);
    assert_int_equal(res->count, 3);
    assert_true(res->more);
    assert_int_equal(res->items[0].msg.id, ids[6]);
    assert_int_equal(res->items[2].msg.id, ids[4]);
    uint64_t before = res->items[2].msg.id;
    store_free(res);
    res = search_in(&ch, 1, "token", STORE_SEARCH_NEWEST, before, 3, 3);
    assert_int_equal(res->count, 3);
    assert_true(res->more);
    assert_int_equal(res->items[0].msg.id, ids[3]);
    assert_int_equal(res->items[2].msg.id, ids[1]);
    before = res->items[2].msg.id;
    store_free(res);
    res = search_in(&ch, 1, "token", STORE_SEARCH_NEWEST, before, 3, 1);
    assert_int_equal(res->count, 1);
    assert_false(res->more);
    assert_int_equal(res->items[0].msg.id, ids[0]);
    store_free(res);
}

static void test_search_channels_relevance(void **state)
{
    (void)state;
    need_search();
    ms_xid a = new_channel(), b = new_channel(), c = new_channel();
    uint64_t a1 = ins(a, "kiwi once among many other words in a long message about fruit");
    uint64_t b1 = ins(b, "kiwi kiwi kiwi");
    uint64_t a2 = ins(a, "kiwi salad");
    uint64_t c1 = ins(c, "kiwi in a channel nobody asked for");
    ms_xid chs[] = {a, b, a}; /* a channel named twice is searched once */
    store_search_result *res = search_in(chs, 3, "kiwi", STORE_SEARCH_NEWEST, 0, 10, 3);
    assert_int_equal(res->count, 3);
    assert_int_equal(res->items[0].msg.id, a2);
    assert_int_equal(res->items[1].msg.id, b1);
    assert_int_equal(res->items[2].msg.id, a1);
    assert_false(hit_has(res, c1));
    store_free(res);
    res = search_in(chs, 2, "kiwi", STORE_SEARCH_NEWEST, 0, 2, 2);
    assert_int_equal(res->count, 2);
    assert_true(res->more);
    store_free(res);
    /* relevance: the dense short message first, the long one last */
    res = search_in(chs, 2, "kiwi", STORE_SEARCH_RELEVANCE, 0, 10, 3);
    assert_int_equal(res->count, 3);
    assert_int_equal(res->items[0].msg.id, b1);
    assert_int_equal(res->items[2].msg.id, a1);
    assert_true(res->items[0].score > res->items[2].score);
    store_free(res);
}

/* One write's outcome in test_search_batched_writes. */
typedef struct batch_slot {
    int *done;
    int status;
} batch_slot;

static void on_batch_write(int status, const char *detail, const store_message_result *res,
                           void *ud)
{
    (void)detail;
    (void)res;
    batch_slot *b = ud;
    b->status = status;
    (*b->done)++;
}

/*
 * SQLite: the writer indexes a group commit's new messages at its end, and
 * before any other write of the batch (sqlite_search.c). Writes queued at
 * once share a batch: an edit and a delete right behind the insert of their
 * message, an insert rolled back as a nonce's duplicate, an id taken in
 * another channel within the same batch. The index must end as if each write
 * had been committed alone.
 */
static void test_search_batched_writes(void **state)
{
    (void)state;
    need_search();
    if (SCYLLA) {
        print_message("      SQLite's group commit: skipped on ScyllaDB (no order between "
                      "writes in flight)\n");
        skip();
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    ms_xid ch = new_channel(), other = new_channel();
    uint64_t base = ms_snowflake_from_unix_ms(now_ms() - 3 * DAY_MS, CFG.store.epoch_ms) +
                    ((uint64_t)(now_ms() % 1000) << 12);
    uint64_t a = base + 1, b = base + 2, c = base + 3, d = base + 4;
    int done = 0;
    batch_slot slot[8];
    for (int i = 0; i < 8; i++)
        slot[i] = (batch_slot){.done = &done, .status = 1};
    store_insert_req ra = text_req(ch, "alphaword one"), rb = text_req(ch, "gammaword three");
    store_insert_req rc1 = text_req(ch, "deltaword four"), rc2 = text_req(ch, "epsilonword five");
    store_insert_req rd = text_req(ch, "zetaword six"), rd2 = text_req(other, "etaword seven");
    ra.id = a;
    rb.id = b;
    rc1.id = c;
    rc1.nonce = "batched-nonce";
    rc2.nonce = "batched-nonce";
    rd.id = d;
    rd2.id = d;
    store_edit_req ea = {.channel_id = ch, .message_id = a, .content = "betaword two"};
    ea.content_len = strlen(ea.content);
    store_get_req db = {.channel_id = ch, .message_id = b};
    /* writes ahead keep the writer busy while the ones below queue up behind them */
    int ahead = 0;
    batch_slot filler = {.done = &ahead};
    store_insert_req rf = text_req(new_channel(), "filler");
    for (int i = 0; i < 20; i++)
        assert_int_equal(store_insert(S, &loop, &rf, on_batch_write, &filler), 0);
    assert_int_equal(store_insert(S, &loop, &ra, on_batch_write, &slot[0]), 0);
    assert_int_equal(store_edit(S, &loop, &ea, on_batch_write, &slot[1]), 0);
    assert_int_equal(store_insert(S, &loop, &rb, on_batch_write, &slot[2]), 0);
    assert_int_equal(store_delete(S, &loop, &db, on_batch_write, &slot[3]), 0);
    assert_int_equal(store_insert(S, &loop, &rc1, on_batch_write, &slot[4]), 0);
    assert_int_equal(store_insert(S, &loop, &rc2, on_batch_write, &slot[5]), 0);
    assert_int_equal(store_insert(S, &loop, &rd, on_batch_write, &slot[6]), 0);
    assert_int_equal(store_insert(S, &loop, &rd2, on_batch_write, &slot[7]), 0);
    while (done < 8 || ahead < 20)
        uv_run(&loop, UV_RUN_ONCE);
    store_loop_detach(S, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < 7; i++)
        assert_int_equal(slot[i].status, 0); /* the nonce's second insert: its duplicate */
    assert_int_equal(slot[7].status, MS_ERR_CONFLICT);

    assert_int_equal(search_count(ch, "alphaword", 0), 0); /* edited away */
    store_search_result *res = search_in(&ch, 1, "betaword", STORE_SEARCH_NEWEST, 0, 10, 1);
    assert_int_equal(res->count, 1);
    assert_int_equal(res->items[0].msg.id, a);
    store_free(res);
    assert_int_equal(search_count(ch, "gammaword", 0), 0);   /* deleted */
    assert_int_equal(search_count(ch, "deltaword", 1), 1);   /* the nonce's message */
    assert_int_equal(search_count(ch, "epsilonword", 0), 0); /* its duplicate: not stored */
    assert_int_equal(search_count(ch, "zetaword", 1), 1);
    assert_int_equal(search_count(other, "etaword", 0), 0); /* the id was taken */
    /* and the index holds each message once: an edit of the batch's insert re-indexes it */
    edit_ok(ch, a, "thetaword");
    assert_int_equal(search_count(ch, "betaword", 0), 0);
    assert_int_equal(search_count(ch, "thetaword", 1), 1);
}

static void expect_search_error(const ms_xid *chs, size_t nch, const char *q, int limit,
                                const char *words)
{
    store_search_req r = {.channel_ids = chs, .nchannels = nch, .query = q, .limit = limit};
    store_search_result *res = NULL;
    char detail[256] = "";
    assert_int_equal(store_search_sync(S, &r, &res, detail, sizeof detail), MS_ERR_INVALID);
    assert_null(res);
    if (!strstr(detail, words))
        fail_msg("query [%s]: expected \"%s\" in \"%s\"", q ? q : "(null)", words, detail);
}

static void test_search_bad_queries(void **state)
{
    (void)state;
    need_search();
    ms_xid ch = new_channel();
    ins(ch, "something to find");
    char big[STORE_SEARCH_QUERY_MAX_BYTES + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect_search_error(&ch, 1, "", 10, "empty");
    expect_search_error(&ch, 1, " \t ", 10, "empty");
    expect_search_error(&ch, 1, NULL, 10, "required");
    expect_search_error(&ch, 1, big, 10, "longer than");
    expect_search_error(&ch, 1, "find \"something", 10, "unbalanced");
    expect_search_error(&ch, 1, "\"a\" \"b", 10, "unbalanced");
    expect_search_error(&ch, 1, "\"to find\"*", 10, "prefix");
    expect_search_error(&ch, 1, "-something -find", 10, "not excluded");
    expect_search_error(&ch, 1, "& - *", 10, "no word");
    expect_search_error(&ch, 1, "a b c d e f g h i j k l m n o p q", 10, "more than 16");
    expect_search_error(&ch, 1, "caf\xc3", 10, "UTF-8");
    expect_search_error(&ch, 1, "find", 0, "limit");
    expect_search_error(&ch, 1, "find", 101, "limit");
    expect_search_error(&ch, 0, "find", 10, "at least one channel");
    ms_xid many[STORE_SEARCH_CHANNELS_MAX + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++)
        many[i] = ch;
    expect_search_error(many, sizeof many / sizeof many[0], "find", 10, "at most");
    ms_xid zero = U(0);
    expect_search_error(&zero, 1, "find", 10, "channel_id");
    big[STORE_SEARCH_QUERY_MAX_BYTES] = '\0'; /* exactly the limit is fine */
    assert_int_equal(search_count(ch, big, 0), 0);
    /* nothing changed: the message is still found, the channel still holds one message */
    assert_int_equal(search_count(ch, "find", 1), 1);
    int rc;
    store_channel_result *cr = channel_get(ch, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(cr->channel.message_count, 1);
    store_free(cr);
}

static int group_setup(void **state)
{
    (void)state;
    if (storet_config_load(lookup) != 0)
        return -1;
    if (SCYLLA) {
        CHANNEL_BASE = (now_ms() % 1000000000ULL) * 1000; /* fresh channels per run */
    } else {
        CHANNEL_BASE = 1000;
    }
    /* a short settle time lets the counter repair finish within the test */
    store_options opt = {.scylla_repair_settle_ms = 300};
#ifdef STORE_TEST_SEARCH
    /* ScyllaDB: the PostgreSQL index of src/search/ when the fixture gives one (the store
     * writes the change log only when it knows of an index) */
    const char *pg = getenv("MSGSTORE_TEST_PG_URL");
    if (SCYLLA && pg && *pg)
        snprintf(CFG.store.search_pg_url, sizeof CFG.store.search_pg_url, "%s", pg);
#endif
    if (storet_open(&opt) != 0)
        return -1;
#ifdef STORE_TEST_SEARCH
    if (CFG.store.search_pg_url[0]) {
        char err[512];
        if (search_index_open(&CFG, S, &SEARCH, err, sizeof err) != 0) {
            fprintf(stderr, "search_index_open: %s\n", err);
            return -1;
        }
    }
#endif
    return 0;
}

static int group_teardown(void **state)
{
#ifdef STORE_TEST_SEARCH
    search_index_close(SEARCH);
    SEARCH = NULL;
#endif
    return storet_group_teardown(state);
}

int main(int argc, char **argv)
{
    int rc = storet_backend(argc, argv, "/tmp/msgstore-conformance-XXXXXX");
    if (rc != 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_get),
        cmocka_unit_test(test_insert_remembers_channel_and_bucket),
        cmocka_unit_test(test_attachment_only_and_types),
        cmocka_unit_test(test_nonce_dedup),
        cmocka_unit_test(test_telegram_dedup),
        cmocka_unit_test(test_duplicates_racing),
        cmocka_unit_test(test_many_threads_one_channel),
        cmocka_unit_test(test_paging_modes),
        cmocka_unit_test(test_bucket_boundaries),
        cmocka_unit_test(test_sparse_channel),
        cmocka_unit_test(test_edit_history),
        cmocka_unit_test(test_soft_delete),
        cmocka_unit_test(test_reactions),
        cmocka_unit_test(test_counts_exact_after_faults),
        cmocka_unit_test(test_counts_coalesced),
        cmocka_unit_test(test_counts_coalesced_faults),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_pins_racing),
        cmocka_unit_test(test_read_positions),
        cmocka_unit_test(test_channel_metadata),
        cmocka_unit_test(test_sync_state),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_async_api),
        cmocka_unit_test(test_large_rows_bounded_reads),
        cmocka_unit_test(test_edit_races_delete),
        cmocka_unit_test(test_nonce_retry_one_message),
        cmocka_unit_test(test_ping_stats_migrations),
        cmocka_unit_test(test_reopen_durable),
        cmocka_unit_test(test_search_syntax),
        cmocka_unit_test(test_search_edit_delete),
        cmocka_unit_test(test_search_paging),
        cmocka_unit_test(test_search_channels_relevance),
        cmocka_unit_test(test_search_bad_queries),
        cmocka_unit_test(test_search_batched_writes),
    };
    return cmocka_run_group_tests_name(SCYLLA ? "store conformance (scylla)"
                                              : "store conformance (sqlite)",
                                       tests, group_setup, group_teardown);
}
