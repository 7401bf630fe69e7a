/* SPDX-License-Identifier: Apache-2.0 */
/*
 * health.c - what both backends' health checks share: the result, and the
 * tables the schema expects.
 *
 * The expected tables are read from the migrations embedded in the binary
 * (every CREATE TABLE, less any DROP TABLE, plus the runner's own
 * schema_version), so the check follows the schema without a list to keep in
 * step by hand.
 */
#include "store_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_TABLES 64

typedef struct tbl_name {
    char name[64];
} tbl_name;

/* Skips blanks and comments (-- and // to the line end, C-style blocks). */
static const char *skip_space(const char *p)
{
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '/')) {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else {
            return p;
        }
    }
}

/* Consumes the keyword kw (case-insensitive, whole word) at *pp. */
static bool keyword(const char **pp, const char *kw)
{
    const char *p = skip_space(*pp);
    size_t n = strlen(kw);
    if (strncasecmp(p, kw, n) != 0 || isalnum((unsigned char)p[n]) || p[n] == '_')
        return false;
    *pp = p + n;
    return true;
}

/* Reads a table name, possibly qualified ("ks.name", quoted parts): its last part, lower case. */
static bool table_name(const char **pp, char *out, size_t cap)
{
    const char *p = skip_space(*pp);
    size_t n = 0;
    for (;;) {
        n = 0;
        bool quoted = *p == '"';
        if (quoted)
            p++;
        while (*p && (quoted ? *p != '"' : (isalnum((unsigned char)*p) || *p == '_'))) {
            if (n + 1 < cap)
                out[n++] = quoted ? *p : (char)tolower((unsigned char)*p);
            p++;
        }
        if (quoted && *p == '"')
            p++;
        out[n] = '\0';
        if (*p != '.')
            break;
        p++;
    }
    *pp = p;
    return n > 0;
}

static int find(const tbl_name *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The tables the embedded migrations of `kind` leave, in creation order. */
static size_t expected_tables(ms_backend_kind kind, tbl_name *out, size_t max)
{
    size_t n = 0, nm = 0;
    snprintf(out[n++].name, sizeof out[0].name, "schema_version");
    const store_migration *m = store_migrations(kind, &nm);
    for (size_t i = 0; i < nm; i++) {
        const char *p = m[i].text;
        while (*p) {
            p = skip_space(p);
            if (!*p)
                break;
            bool create = keyword(&p, "create"), drop = !create && keyword(&p, "drop");
            if ((create || drop) && keyword(&p, "table")) {
                if (keyword(&p, "if")) {
                    if (create)
                        (void)(keyword(&p, "not") && keyword(&p, "exists"));
                    else
                        (void)keyword(&p, "exists");
                }
                char name[64];
                if (table_name(&p, name, sizeof name)) {
                    int at = find(out, n, name);
                    if (create && at < 0 && n < max)
                        snprintf(out[n++].name, sizeof out[0].name, "%s", name);
                    else if (drop && at >= 0 && strcmp(name, "schema_version") != 0) {
                        memmove(&out[at], &out[at + 1], (n - (size_t)at - 1) * sizeof *out);
                        n--;
                    }
                }
            }
            /* on to the next statement */
            while (*p && *p != ';') {
                if (*p == '\'') { /* a string may hold a ';' */
                    p++;
                    while (*p && *p != '\'')
                        p++;
                }
                if (*p)
                    p++;
            }
            if (*p == ';')
                p++;
        }
    }
    return n;
}

const char *store__health_str(store_health_result *h, const char *s, size_t len)
{
    if (!s)
        return "";
    const char *d = store__res_strndup(&h->hdr, s, len);
    return d ? d : "";
}

store_health_result *store__health_result(store_op *op, ms_backend_kind kind)
{
    store_health_result *h = store__op_result(op, sizeof *h);
    if (!h)
        return NULL;
    h->backend = kind == MS_BACKEND_SCYLLA ? "scylla" : "sqlite";
    h->ok = true;
    h->schema_version = -1;
    size_t nm = 0;
    const store_migration *m = store_migrations(kind, &nm);
    h->schema_expected = nm ? m[nm - 1].version : 0;
    tbl_name names[MAX_TABLES];
    size_t n = expected_tables(kind, names, MAX_TABLES);
    store_health_table *t = store__res_alloc(&h->hdr, n * sizeof *t);
    if (!t) {
        store__op_fail(op, MS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        t[i].name = store__health_str(h, names[i].name, strlen(names[i].name));
        t[i].present = false;
    }
    h->tables = t;
    h->ntables = n;
    h->tables_missing = n;
    return h;
}

bool store__health_mark(store_health_result *h, const char *name, size_t len)
{
    store_health_table *t = (store_health_table *)h->tables;
    for (size_t i = 0; i < h->ntables; i++) {
        if (strlen(t[i].name) == len && memcmp(t[i].name, name, len) == 0) {
            t[i].present = true;
            return true;
        }
    }
    return false;
}

void store__health_tables_done(store_health_result *h)
{
    h->tables_checked = true;
    h->tables_missing = 0;
    const char *first = NULL;
    for (size_t i = 0; i < h->ntables; i++) {
        if (!h->tables[i].present) {
            if (!first)
                first = h->tables[i].name;
            h->tables_missing++;
        }
    }
    if (h->tables_missing)
        store__health_problem(h, "%zu of %zu tables missing (%s%s): run `msgstore migrate`",
                              h->tables_missing, h->ntables, first,
                              h->tables_missing > 1 ? ", ..." : "");
}

void store__health_problem(store_health_result *h, const char *fmt, ...)
{
    bool first = h->ok || !h->error;
    h->ok = false;
    if (!first)
        return;
    char buf[STORE_DETAIL_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    h->error = store__health_str(h, buf, strlen(buf));
}
