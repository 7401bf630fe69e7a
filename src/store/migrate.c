/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate.c - the one migration runner of both backends.
 *
 * For each migration embedded in the binary (schema/sqlite, schema/cql), in
 * version order: when schema_version records it, its checksum must be the
 * binary's (a migration file never changes once applied); otherwise its text
 * runs and it is recorded. The backend says how (store__migrator): SQLite in
 * one transaction per migration, ScyllaDB statement by statement (each one
 * safe to run again when an interrupted migration is retried).
 */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *store__migration_text(ms_backend_kind kind, const char *text, ms_id_format f)
{
    bool sq = kind == MS_BACKEND_SQLITE;
    const char *type = f == MS_ID_UUID ? (sq ? "BLOB" : "uuid") : (sq ? "INTEGER" : "bigint");
    size_t cap = strlen(text) + 1;
    for (const char *p = text; (p = strstr(p, "{{")) != NULL; p += 2)
        cap += 8; /* the longest type is longer than "{{id}}" by less */
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (const char *p = text; *p;) {
        const char *end = strncmp(p, "{{", 2) == 0 ? strstr(p, "}}") : NULL;
        if (end && (size_t)(end - p) == 4 && strncmp(p, "{{id}}", 6) == 0) {
            o += sprintf(o, "%s", type);
            p = end + 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

int store__id_format_check(const char *what, ms_id_format have, ms_id_format want, char *err,
                           size_t errlen)
{
    if (have == want)
        return 0;
    snprintf(err, errlen,
             "%s holds %s channel and user ids but MSGSTORE_ID_FORMAT is %s: set "
             "MSGSTORE_ID_FORMAT=%s to use it (a store created before MSGSTORE_ID_FORMAT existed "
             "holds int64 ids), or give this configuration a new store",
             what, ms_id_format_name(have), ms_id_format_name(want), ms_id_format_name(have));
    return MS_ERR_CONFLICT;
}

void store__checksum(const char *text, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int store__migrate_run(ms_backend_kind kind, const store__migrator *mg, ms_id_format want,
                       store_migrate_progress_fn progress, void *ctx, int *applied, char *err,
                       size_t errlen)
{
    if (applied)
        *applied = 0;
    ms_id_format fmt = want;
    int frc = mg->id_format(mg->db, want, &fmt, err, errlen);
    if (frc == 0)
        frc = store__id_format_check(mg->what, fmt, want, err, errlen);
    if (frc)
        return frc;
    size_t n = 0;
    const store_migration *m = store_migrations(kind, &n);
    for (size_t i = 0; i < n; i++) {
        char sum[17], have[17] = "";
        char *canon = store__migration_text(kind, m[i].text, MS_ID_INT64);
        char *text = store__migration_text(kind, m[i].text, fmt);
        if (!canon || !text) {
            free(canon);
            free(text);
            snprintf(err, errlen, "out of memory");
            return MS_ERR_NOMEM;
        }
        store__checksum(canon, sum);
        free(canon);
        store_migration mt = m[i];
        mt.text = text;
        uint64_t t0 = ms_clock_realtime_ms(NULL);
        int found = mg->recorded(mg->db, m[i].version, have, err, errlen);
        if (found < 0) {
            free(text);
            return found;
        }
        if (found) {
            free(text);
            if (mg->skip)
                mg->skip(mg->db);
            if (strcmp(have, sum) != 0) {
                snprintf(err, errlen,
                         "migration %s was applied with checksum %s but the binary's copy has "
                         "%s: the file changed after it was applied",
                         m[i].name, have, sum);
                return MS_ERR_CONFLICT;
            }
            if (progress)
                progress(&m[i], false, 0, ctx);
            continue;
        }
        int rc = mg->apply(mg->db, &mt, sum, err, errlen);
        free(text);
        if (rc)
            return rc;
        if (applied)
            (*applied)++;
        if (progress)
            progress(&m[i], true, ms_clock_realtime_ms(NULL) - t0, ctx);
    }
    return 0;
}
