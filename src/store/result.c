/* SPDX-License-Identifier: Apache-2.0 */
/*
 * result.c - result objects: a struct and its strings in one arena, shared by
 * reference count (coalesced readers receive the same result); and the
 * results both backends build alike (an operation's result, an insert's).
 */
#include "store_internal.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    alignas(max_align_t) unsigned char data[];
} chunk;

typedef struct res_block {
    _Atomic int refs;
    chunk *chunks;
    alignas(max_align_t) unsigned char body[]; /* the result struct */
} res_block;

#define CHUNK_MIN 4096

void *store__res_new(size_t size)
{
    res_block *b = calloc(1, sizeof *b + size);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    store_result_hdr *h = (store_result_hdr *)b->body;
    h->_priv = b;
    return h;
}

void *store__res_alloc(store_result_hdr *res, size_t n)
{
    res_block *b = res->_priv;
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (n == 0)
        n = alignof(max_align_t);
    chunk *c = b->chunks;
    if (!c || c->size - c->used < n) {
        size_t sz = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = malloc(sizeof *c + sz);
        if (!c)
            return NULL;
        c->size = sz;
        c->used = 0;
        c->next = b->chunks;
        b->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *store__res_strndup(store_result_hdr *res, const char *s, size_t len)
{
    if (!s)
        return NULL;
    char *d = store__res_alloc(res, len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

const char *store__res_text(store_result_hdr *res, const char *s, size_t n, size_t *len, bool *oom)
{
    char *d = store__res_strndup(res, s ? s : "", s ? n : 0);
    if (!d)
        *oom = true;
    if (len)
        *len = s ? n : 0;
    return d;
}

void store__res_ref(store_result_hdr *res)
{
    res_block *b = res->_priv;
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void store_free(const void *result)
{
    if (!result)
        return;
    const store_result_hdr *h = result;
    res_block *b = h->_priv;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    chunk *c = b->chunks;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(b);
}

void *store__op_result(store_op *op, size_t size)
{
    store_result_hdr *res = store__res_new(size);
    if (!res) {
        store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    op->res = res;
    return res;
}

int store__insert_result(store_op *op, uint64_t created_ms)
{
    const store_insert_req *r = &op->req.insert;
    store_message_result *res = store__op_result(op, sizeof *res);
    if (!res)
        return op->status;
    store_result_hdr *h = &res->hdr;
    store_message *m = &res->msg;
    m->id = r->id;
    m->channel_id = r->channel_id;
    m->bucket = ms_bucket_of(r->id);
    m->sender_id = r->sender_id;
    m->type = r->type;
    m->source = r->source;
    m->content = store__res_strndup(h, r->content, r->content_len);
    m->content_len = r->content_len;
    m->reply_to = r->reply_to;
    m->attachments =
        r->attachments ? store__res_strndup(h, r->attachments, strlen(r->attachments)) : NULL;
    m->metadata = r->metadata ? store__res_strndup(h, r->metadata, strlen(r->metadata)) : NULL;
    m->nonce = r->nonce ? store__res_strndup(h, r->nonce, strlen(r->nonce)) : NULL;
    m->has_telegram = r->has_telegram;
    m->telegram_chat_id = r->has_telegram ? r->telegram_chat_id : 0;
    m->telegram_message_id = r->has_telegram ? r->telegram_message_id : 0;
    m->created_at_ms = created_ms;
    if (!m->content || (r->attachments && !m->attachments) || (r->metadata && !m->metadata) ||
        (r->nonce && !m->nonce))
        return store__op_fail(op, MS_ERR_NOMEM, "out of memory");
    return 0;
}
