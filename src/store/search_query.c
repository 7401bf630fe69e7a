/* SPDX-License-Identifier: Apache-2.0 */
/*
 * search_query.c - the search query language, parsed once, translated per
 * index; and the excerpt shown with each hit.
 *
 * A query is a list of terms separated by white space: word, "a phrase",
 * pre* and -excluded. The user's text never reaches an index's query syntax
 * as syntax: for FTS5 every term becomes a double-quoted string (a quote in
 * it doubled), for PostgreSQL every term is a bound parameter of
 * plainto_tsquery/phraseto_tsquery, or a quoted lexeme of to_tsquery for a
 * prefix. Both backends therefore accept and refuse the same queries.
 */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A term counts when it has something an index can find: a letter or digit (any non-ASCII). */
static bool has_word(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80)
            return true;
    }
    return false;
}

static int bad(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return MS_ERR_INVALID;
}

int store__query_parse(const char *text, store__query *q, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    if (!text)
        return bad(err, errlen, "query q is required");
    size_t len = strlen(text);
    if (len > STORE_SEARCH_QUERY_MAX_BYTES) {
        snprintf(err, errlen, "query q is longer than %d bytes", STORE_SEARCH_QUERY_MAX_BYTES);
        return MS_ERR_INVALID;
    }
    if (store__utf8_count(text, len, NULL) < 0)
        return bad(err, errlen, "query q is not valid UTF-8");
    size_t i = 0;
    bool any = false;
    while (i < len) {
        while (i < len && is_space(text[i]))
            i++;
        if (i == len)
            break;
        any = true;
        store__term t = {.kind = STORE__TERM_WORD};
        if (text[i] == '-' && i + 1 < len && !is_space(text[i + 1])) {
            t.exclude = true;
            i++;
        }
        if (text[i] == '"') {
            size_t start = ++i;
            while (i < len && text[i] != '"')
                i++;
            if (i == len)
                return bad(err, errlen, "query q has an unbalanced quote (\")");
            t.kind = STORE__TERM_PHRASE;
            t.text = text + start;
            t.len = i - start;
            i++; /* the closing quote */
            if (i < len && text[i] == '*')
                return bad(err, errlen,
                           "query q: a prefix (*) applies to one word, not to a \"phrase\"");
        } else {
            size_t start = i;
            while (i < len && !is_space(text[i]) && text[i] != '"')
                i++;
            t.text = text + start;
            t.len = i - start;
            while (t.len && t.text[t.len - 1] == '*') {
                t.len--;
                t.kind = STORE__TERM_PREFIX;
            }
        }
        if (!has_word(t.text, t.len))
            continue; /* punctuation alone: nothing to look for */
        if (q->n == STORE_SEARCH_TERMS_MAX) {
            snprintf(err, errlen, "query q has more than %d terms", STORE_SEARCH_TERMS_MAX);
            return MS_ERR_INVALID;
        }
        q->t[q->n++] = t;
        if (!t.exclude)
            q->npositive++;
    }
    if (!any)
        return bad(err, errlen, "query q is empty");
    if (q->n == 0)
        return bad(err, errlen, "query q has no word to search for");
    if (q->npositive == 0)
        return bad(err, errlen, "query q needs a word that is not excluded (-word)");
    return 0;
}

/* A growable string; `oom` remembers the first failure. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_lit(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* An FTS5 string: "text" with every quote doubled; the tokenizer splits it into a phrase. */
static void fts5_string(sbuf *b, const char *s, size_t n)
{
    sb_lit(b, "\"");
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            sb_add(b, s + from, i + 1 - from);
            sb_lit(b, "\"");
            from = i + 1;
        }
    }
    sb_add(b, s + from, n - from);
    sb_lit(b, "\"");
}

/* The terms with exclude == `excluded`, joined by `op`. */
static void fts5_terms(sbuf *b, const store__query *q, bool excluded, const char *op)
{
    bool first = true;
    for (size_t i = 0; i < q->n; i++) {
        const store__term *t = &q->t[i];
        if (t->exclude != excluded)
            continue;
        if (!first)
            sb_lit(b, op);
        first = false;
        fts5_string(b, t->text, t->len);
        if (t->kind == STORE__TERM_PREFIX)
            sb_lit(b, " *");
    }
}

char *store__query_fts5(const store__query *q, const char *column)
{
    sbuf b = {0};
    sb_lit(&b, column);
    sb_lit(&b, " : ( ");
    fts5_terms(&b, q, false, " AND ");
    sb_lit(&b, " )");
    if (q->n > q->npositive) {
        sb_lit(&b, " NOT ");
        sb_lit(&b, column);
        sb_lit(&b, " : ( ");
        fts5_terms(&b, q, true, " OR ");
        sb_lit(&b, " )");
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

const char *store__snippet_html(store_result_hdr *res, const char *s, size_t n)
{
    sbuf b = {0};
    bool open = false;
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case STORE__MARK_OPEN:
            rep = open ? "" : "<mark>";
            open = true;
            break;
        case STORE__MARK_CLOSE:
            rep = open ? "</mark>" : "";
            open = false;
            break;
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        sb_add(&b, s + from, i - from);
        sb_lit(&b, rep);
        from = i + 1;
    }
    sb_add(&b, s + from, n - from);
    if (open)
        sb_lit(&b, "</mark>");
    const char *out = NULL;
    if (!b.oom)
        out = store__res_strndup(res, b.p ? b.p : "", b.p ? b.len : 0);
    free(b.p);
    return out;
}

int store_search_shard(ms_xid channel_id, int shards)
{
    if (shards <= 1)
        return 0;
    uint64_t h = ms_xid_key64(channel_id) * 0x9E3779B97F4A7C15ULL;
    return (int)((h >> 32) % (uint64_t)shards);
}

/* A to_tsquery lexeme 'text':* with quotes doubled and backslashes escaped. */
static char *pg_prefix(const char *s, size_t n)
{
    sbuf b = {0};
    sb_lit(&b, "'");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'')
            sb_lit(&b, "''");
        else if (s[i] == '\\')
            sb_lit(&b, "\\\\");
        else
            sb_add(&b, s + i, 1);
    }
    sb_lit(&b, "':*");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

int store_search_query_pg(const char *query, int cfg_param, int first, char **expr, char **params,
                          int *nparams, char *detail, size_t dlen)
{
    store__query q;
    char scratch[STORE_DETAIL_LEN];
    if (!detail || !dlen) {
        detail = scratch;
        dlen = sizeof scratch;
    }
    *expr = NULL;
    *nparams = 0;
    int rc = store__query_parse(query, &q, detail, dlen);
    if (rc)
        return rc;
    sbuf b = {0};
    char part[96];
    bool firstpos = true;
    for (int pass = 0; pass < 2; pass++) { /* the required terms, then the excluded ones */
        for (size_t i = 0; i < q.n; i++) {
            const store__term *t = &q.t[i];
            if (t->exclude != (pass == 1))
                continue;
            int p = first + *nparams;
            char *param = t->kind == STORE__TERM_PREFIX ? pg_prefix(t->text, t->len)
                                                        : strndup(t->text, t->len);
            if (!param)
                goto oom;
            params[(*nparams)++] = param;
            const char *fn = t->kind == STORE__TERM_PHRASE   ? "phraseto_tsquery"
                             : t->kind == STORE__TERM_PREFIX ? "to_tsquery"
                                                             : "plainto_tsquery";
            snprintf(part, sizeof part, "%s%s%s($%d::regconfig, $%d)%s", firstpos ? "" : " && ",
                     t->exclude ? "!!(" : "", fn, cfg_param, p, t->exclude ? ")" : "");
            sb_lit(&b, part);
            firstpos = false;
        }
    }
    if (b.oom)
        goto oom;
    *expr = b.p;
    return 0;
oom:
    free(b.p);
    for (int i = 0; i < *nparams; i++)
        free(params[i]);
    *nparams = 0;
    snprintf(detail, dlen, "out of memory");
    return MS_ERR_NOMEM;
}
