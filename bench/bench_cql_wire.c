/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_cql_wire: CPU time per operation of the pure CQL codec, single thread.
 *
 *   bench_cql_wire [iterations]     (default 1000000)
 *
 * Cases mirror the message store's hot path: bind an INSERT of a message
 * (6 values) and encode its EXECUTE frame; the same with LZ4; cut a response
 * out of a byte stream; decode a 50-row page of messages (NO_METADATA with
 * cached metadata, as a prepared SELECT does) and read every cell; the token
 * and shard of a (channel_id, bucket) key. Prints ns/op and malloc calls/op.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cql/proto.h"

/* Allocation counter (link with --wrap=malloc/realloc/calloc). */
static unsigned long n_alloc;
void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t a, size_t b);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_malloc(size_t n)
{
    n_alloc++;
    return __real_malloc(n);
}
void *__wrap_realloc(void *p, size_t n)
{
    n_alloc++;
    return __real_realloc(p, n);
}
void *__wrap_calloc(size_t a, size_t b)
{
    n_alloc++;
    return __real_calloc(a, b);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile int64_t sink;

#define RUN(name, iters, ...)                                                                      \
    do {                                                                                           \
        for (long i_ = 0; i_ < (iters) / 10; i_++) { /* warm up */                                 \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
        unsigned long a0_ = n_alloc;                                                               \
        double t0_ = now_ns();                                                                     \
        for (long i_ = 0; i_ < (iters); i_++) {                                                    \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
        double dt_ = now_ns() - t0_;                                                               \
        printf("%-44s %9.1f ns/op  %6.3f allocs/op\n", name, dt_ / (double)(iters),                \
               (double)(n_alloc - a0_) / (double)(iters));                                         \
    } while (0)

static const char CONTENT[] =
    "Hello from the benchmark: a chat message of about one hundred bytes, "
    "typical for a busy channel.";

static void bind_message(cql_values *v, long i)
{
    cql_values_reset(v);
    cql_values_add_bigint(v, 1234567890123LL);           /* channel_id */
    cql_values_add_int(v, 1950);                         /* bucket */
    cql_values_add_bigint(v, 1100000000000000000LL + i); /* message_id */
    cql_values_add_bigint(v, 98765);                     /* author_id */
    cql_values_add_text(v, CONTENT, sizeof CONTENT - 1); /* content */
    cql_values_add_timestamp(v, 1700000000000LL + i);    /* created_at */
}

/* A 50-row page of (message_id bigint, author_id bigint, content text, created_at timestamp). */
static void build_page(cql_buf *b, bool no_metadata)
{
    cql__put_int(b, CQL_RESULT_ROWS);
    cql__put_int(b, no_metadata ? CQL_META_NO_METADATA | CQL_META_HAS_MORE_PAGES
                                : CQL_META_GLOBAL_TABLES_SPEC | CQL_META_HAS_MORE_PAGES);
    cql__put_int(b, 4);
    cql__put_bytes(b, "0123456789abcdef0123", 20);
    if (!no_metadata) {
        cql__put_string(b, "msgstore", 8);
        cql__put_string(b, "messages", 8);
        const char *names[] = {"message_id", "author_id", "content", "created_at"};
        uint16_t types[] = {CQL_TYPE_BIGINT, CQL_TYPE_BIGINT, CQL_TYPE_VARCHAR, CQL_TYPE_TIMESTAMP};
        for (int c = 0; c < 4; c++) {
            cql__put_string(b, names[c], strlen(names[c]));
            cql__put_short(b, types[c]);
        }
    }
    cql__put_int(b, 50);
    for (int r = 0; r < 50; r++) {
        cql__put_int(b, 8);
        cql__put_long(b, 1100000000000000000LL + r);
        cql__put_int(b, 8);
        cql__put_long(b, 98765);
        cql__put_bytes(b, CONTENT, (int32_t)(sizeof CONTENT - 1));
        cql__put_int(b, 8);
        cql__put_long(b, 1700000000000LL + r);
    }
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    if (iters < 10)
        iters = 10;
    printf("bench_cql_wire: %ld iterations per case, single thread\n", iters);

    cql_values v;
    cql_values_init(&v);
    cql_buf out = {0}, scratch = {0};
    const uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    cql_query_params p;
    cql__query_params_init(&p);
    p.consistency = CQL_CONSISTENCY_LOCAL_QUORUM;
    p.values = &v;
    p.timestamp = 1700000000000000LL;

    RUN("bind 6 values + encode EXECUTE", iters, {
        bind_message(&v, i_);
        cql_buf_reset(&out);
        cql__enc_execute(&out, (int16_t)(i_ & 0x7fff), 0, id, 16, &p);
        sink += (int64_t)out.len;
    });
    RUN("bind + EXECUTE + LZ4 compress frame", iters / 4, {
        bind_message(&v, i_);
        cql_buf_reset(&out);
        cql__enc_execute(&out, 1, 0, id, 16, &p);
        cql__frame_compress(&out, 0, &scratch);
        sink += (int64_t)out.len;
    });
    /* 64 EXECUTE frames coalesced in one write buffer */
    RUN("64 EXECUTEs into one write buffer (per 64)", iters / 64, {
        cql_buf_reset(&out);
        for (int k = 0; k < 64; k++) {
            bind_message(&v, k);
            cql__enc_execute(&out, (int16_t)k, 0, id, 16, &p);
        }
        sink += (int64_t)out.len;
    });

    /* token + shard of the (channel_id, bucket) partition key */
    const uint16_t pk[2] = {0, 1};
    bind_message(&v, 0);
    RUN("token of (channel_id, bucket) + shard_of", iters, {
        int64_t t;
        cql__token_of_values(&v, pk, 2, &scratch, &t);
        sink += cql__scylla_shard_of(t, 12, 12);
    });

    /* responses */
    cql_buf page = {0}, page_meta = {0}, stream = {0};
    build_page(&page, true);
    build_page(&page_meta, false);
    cql_result full;
    cql__result_decode(&full, page_meta.data, page_meta.len, NULL, NULL);
    cql_metadata *cached;
    if (cql__metadata_clone(&full.meta, &cached) != 0)
        return 1;
    cql_result_free(&full);
    /* a RESULT frame as it arrives */
    size_t fs = cql__frame_start(&stream, 0, 5, CQL_OP_RESULT);
    cql_buf_append(&stream, page.data, page.len);
    cql__frame_finish(&stream, fs);
    stream.data[0] = 0x84;

    RUN("frame_parse + response_open (50-row page)", iters, {
        cql_frame_header h;
        size_t fl, need;
        cql_response r;
        cql__frame_parse(stream.data, stream.len, 0, &h, &fl, &need);
        cql__response_open(&h, stream.data + 9, h.length, &r);
        sink += (int64_t)r.body_len;
    });
    long piters = iters / 10;
    double t0 = now_ns();
    unsigned long a0 = n_alloc;
    for (long i = 0; i < piters; i++) {
        cql_result r;
        cql__result_decode(&r, page.data, page.len, NULL, cached);
        while (cql_result_next_row(&r) == 0) {
            int64_t mid, author, ts;
            cql_str content;
            cql_row_get_bigint(&r, 0, &mid);
            cql_row_get_bigint(&r, 1, &author);
            cql_row_get_text(&r, 2, &content);
            cql_row_get_timestamp(&r, 3, &ts);
            sink += mid + author + ts + (int64_t)content.len;
        }
        cql_result_free(&r);
    }
    double dt = now_ns() - t0;
    printf("%-44s %9.1f ns/op  %6.3f allocs/op  (%.1f ns/row)\n",
           "decode 50-row page, NO_METADATA, read all", dt / (double)piters,
           (double)(n_alloc - a0) / (double)piters, dt / (double)piters / 50);
    RUN("decode 50-row page with metadata, read all", piters, {
        cql_result r;
        cql__result_decode(&r, page_meta.data, page_meta.len, NULL, NULL);
        while (cql_result_next_row(&r) == 0) {
            int64_t mid;
            cql_row_get_bigint(&r, 0, &mid);
            sink += mid;
        }
        cql_result_free(&r);
    });
    cql_buf one = {0};
    cql__put_int(&one, CQL_RESULT_VOID);
    RUN("decode RESULT Void (write ack)", iters, {
        cql_result r;
        cql__result_decode(&r, one.data, one.len, NULL, NULL);
        sink += r.kind;
        cql_result_free(&r);
    });
    cql_buf lz = {0}, un = {0};
    cql__lz4_compress(&lz, page.data, page.len);
    RUN("LZ4 decompress 50-row page body", piters, {
        cql_buf_reset(&un);
        cql__lz4_decompress(&un, lz.data, lz.len, 0);
        sink += (int64_t)un.len;
    });
    printf("(page body %zu bytes, %zu compressed; EXECUTE frame %zu bytes)\n", page.len, lz.len,
           (size_t)0 + 9 + 2 + 16 + 3 + 2 + v.buf.len + 8);

    free(cached);
    cql_values_free(&v);
    cql_buf_free(&out);
    cql_buf_free(&scratch);
    cql_buf_free(&page);
    cql_buf_free(&page_meta);
    cql_buf_free(&stream);
    cql_buf_free(&one);
    cql_buf_free(&lz);
    cql_buf_free(&un);
    return sink == 42 ? 2 : 0;
}
