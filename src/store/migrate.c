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
#include <string.h>

void store__checksum(const char *text, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int store__migrate_run(ms_backend_kind kind, const store__migrator *mg,
                       store_migrate_progress_fn progress, void *ctx, int *applied, char *err,
                       size_t errlen)
{
    if (applied)
        *applied = 0;
    size_t n = 0;
    const store_migration *m = store_migrations(kind, &n);
    for (size_t i = 0; i < n; i++) {
        char sum[17], have[17] = "";
        store__checksum(m[i].text, sum);
        uint64_t t0 = ms_clock_realtime_ms(NULL);
        int found = mg->recorded(mg->db, m[i].version, have, err, errlen);
        if (found < 0)
            return found;
        if (found) {
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
        int rc = mg->apply(mg->db, &m[i], sum, err, errlen);
        if (rc)
            return rc;
        if (applied)
            (*applied)++;
        if (progress)
            progress(&m[i], true, ms_clock_realtime_ms(NULL) - t0, ctx);
    }
    return 0;
}
