/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite_backup.c - online backup and restore of the SQLite store
 * (msgstore/store_backup.h), and the lock that marks a store in use.
 *
 * Why the read transaction: sqlite3_backup_step restarts the copy from the
 * first page whenever another connection changes the source between steps,
 * so under a steady write load a stepped backup might never finish. Holding
 * one read transaction on the source connection for the whole copy pins the
 * snapshot: the steps read that snapshot, nothing restarts, and in WAL mode
 * writers go on (they append to the WAL; only checkpoints wait).
 */
#include "sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msgstore/store_backup.h"

/* ------------------------------------------------------------------ in use */

/*
 * The lock lives in a file of its own, PATH-lock: an fd of the database file
 * itself must not be closed while SQLite has the file open in this process
 * (closing any fd of a file drops the process's POSIX locks on it, SQLite's
 * included).
 */
static int open_lock_file(const char *path, bool *created, char *err, size_t errlen)
{
    char p[4096];
    snprintf(p, sizeof p, "%s-lock", path);
    *created = false;
    int fd = open(p, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        *created = fd >= 0;
        if (fd < 0 && errno == EEXIST)
            fd = open(p, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0)
        snprintf(err, errlen, "cannot open the lock file %s: %s", p, strerror(errno));
    return fd;
}

static void remove_lock_file(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s-lock", path);
    unlink(p);
}

int store__sq_hold(const char *path, int *fd_out, char *err, size_t errlen)
{
    bool created;
    int fd = open_lock_file(path, &created, err, errlen);
    if (fd < 0)
        return MS_ERR_IO;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            snprintf(err, errlen, "the SQLite file %s is being restored (msgstore restore)", path);
            return MS_ERR_UNAVAILABLE;
        }
        snprintf(err, errlen, "cannot lock SQLite file %s: %s", path, strerror(e));
        return MS_ERR_IO;
    }
    *fd_out = fd;
    return 0;
}

/* ------------------------------------------------------------------ helpers */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int expected_version(void)
{
    size_t n = 0;
    const store_migration *m = store_migrations(MS_BACKEND_SQLITE, &n);
    return n ? m[n - 1].version : 0;
}

static void remove_files(const char *path)
{
    static const char *const suffix[] = {"", "-journal", "-wal", "-shm"};
    char p[4096];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

static int fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int fsync_parent(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    return fsync_path(dirname(buf), true);
}

/* Opens an existing file as a database (never creates one). */
static int open_existing(const char *path, const char *what, sqlite3 **out, char *err,
                         size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return errno == ENOENT ? MS_ERR_NOT_FOUND : MS_ERR_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s %s is not a regular file", what, path);
        return MS_ERR_INVALID;
    }
    int flags = (access(path, W_OK) == 0 ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) |
                SQLITE_OPEN_NOMUTEX;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s %s: %s", what, path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return MS_ERR_IO;
    }
    sqlite3_busy_timeout(db, 5000);
    *out = db;
    return 0;
}

/* The store's schema version (> 0), or a negative code with err set. */
static int store_version(sqlite3 *db, const char *what, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                                "name IN ('schema_version', 'messages')",
                                -1, &st, NULL);
    int n = -1;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (n < 0) {
        snprintf(err, errlen, "%s %s is not a SQLite database (%s)", what, path,
                 sqlite3_errmsg(db));
        return MS_ERR_INVALID;
    }
    int v = n == 2 ? store__sq_schema_version(db) : 0;
    if (v <= 0) {
        snprintf(err, errlen, "%s %s is not a msgstore store (no schema_version or messages table)",
                 what, path);
        return MS_ERR_INVALID;
    }
    return v;
}

/*
 * Opens path (an existing store or backup: what) and starts the read
 * transaction the copy runs in; *version gets its schema version.
 */
static int open_snapshot(const char *path, const char *what, sqlite3 **db, int *version, char *err,
                         size_t errlen)
{
    int rc = open_existing(path, what, db, err, errlen);
    if (rc)
        return rc;
    if (sqlite3_exec(*db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, path, sqlite3_errmsg(*db));
        rc = MS_ERR_IO;
    } else {
        rc = store_version(*db, what, path, err, errlen);
        if (rc > 0) {
            *version = rc;
            return 0;
        }
    }
    sqlite3_exec(*db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(*db);
    *db = NULL;
    return rc;
}

static int integrity_ok(sqlite3 *db, char *msg, size_t cap)
{
    sqlite3_stmt *st = NULL;
    snprintf(msg, cap, "%s", "no answer");
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        snprintf(msg, cap, "%s", sqlite3_errmsg(db));
        return 0;
    }
    int ok = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        ok = t && strcmp(t, "ok") == 0;
        snprintf(msg, cap, "%s", t ? t : "?");
    } else {
        snprintf(msg, cap, "%s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return ok;
}

/* Rows of every ordinary table (virtual tables are counted through their shadow tables). */
static int count_tables(sqlite3 *db, store_backup_report *rep, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    rep->ntables = 0;
    rep->messages = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE "
                           "'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%' "
                           "ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (rep->ntables == STORE_BACKUP_MAX_TABLES)
            break;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        snprintf(rep->tables[rep->ntables].name, sizeof rep->tables[0].name, "%s", name);
        char q[160];
        snprintf(q, sizeof q, "SELECT count(*) FROM \"%s\"", rep->tables[rep->ntables].name);
        sqlite3_stmt *c = NULL;
        int64_t rows = -1;
        if (sqlite3_prepare_v2(db, q, -1, &c, NULL) == SQLITE_OK && sqlite3_step(c) == SQLITE_ROW)
            rows = sqlite3_column_int64(c, 0);
        sqlite3_finalize(c);
        if (rows < 0)
            goto fail;
        rep->tables[rep->ntables].rows = rows;
        if (strcmp(name, "messages") == 0)
            rep->messages = (uint64_t)rows;
        rep->ntables++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        goto fail_msg;
    return 0;
fail:
    sqlite3_finalize(st);
fail_msg:
    snprintf(err, errlen, "cannot count rows: %s", sqlite3_errmsg(db));
    return MS_ERR_IO;
}

/* The same tables with the same row counts? */
static int same_counts(const store_backup_report *a, const store_backup_report *b, char *err,
                       size_t errlen)
{
    if (a->ntables != b->ntables) {
        snprintf(err, errlen, "the copy has %zu tables, the source %zu", b->ntables, a->ntables);
        return 0;
    }
    for (size_t i = 0; i < a->ntables; i++) {
        if (strcmp(a->tables[i].name, b->tables[i].name) != 0 ||
            a->tables[i].rows != b->tables[i].rows) {
            snprintf(err, errlen, "table %s: %lld rows in the source, %s has %lld",
                     a->tables[i].name, (long long)a->tables[i].rows, b->tables[i].name,
                     (long long)b->tables[i].rows);
            return 0;
        }
    }
    return 1;
}

/* Copies src's main database into dst in steps. */
static int copy_pages(sqlite3 *src, sqlite3 *dst, const store_backup_options *opt,
                      store_backup_report *rep, char *err, size_t errlen)
{
    sqlite3_backup *bk = sqlite3_backup_init(dst, "main", src, "main");
    if (!bk) {
        snprintf(err, errlen, "cannot start the copy: %s", sqlite3_errmsg(dst));
        return MS_ERR_IO;
    }
    int step = opt->step_pages > 0 ? opt->step_pages : 256;
    int rc;
    for (;;) {
        rc = sqlite3_backup_step(bk, step);
        rep->steps++;
        uint64_t total = (uint64_t)sqlite3_backup_pagecount(bk);
        uint64_t left = (uint64_t)sqlite3_backup_remaining(bk);
        if (opt->progress)
            opt->progress(total - left, total, opt->progress_ctx);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
            break;
        if (opt->pause_ms > 0)
            usleep((useconds_t)opt->pause_ms * 1000);
    }
    sqlite3_backup_finish(bk);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "copy failed: %s", sqlite3_errstr(rc));
        return MS_ERR_IO;
    }
    return 0;
}

/*
 * Copies src (a read transaction open on it) into a fresh file tmp, makes it
 * a single file (journal mode DELETE) and checks it against src's counts
 * (taken in the same transaction). rep gets the copy's numbers.
 */
static int copy_checked(sqlite3 *src, const char *tmp, const store_backup_options *opt,
                        store_backup_report *rep, char *err, size_t errlen)
{
    remove_files(tmp);
    sqlite3 *dst = NULL;
    int rc = MS_ERR_IO;
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, dst ? sqlite3_errmsg(dst) : "?");
        goto out;
    }
    rc = copy_pages(src, dst, opt, rep, err, errlen);
    if (rc)
        goto out;
    store_backup_report want;
    memset(&want, 0, sizeof want);
    rc = count_tables(src, &want, err, errlen);
    if (rc)
        goto out;
    rc = MS_ERR_IO;
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set the copy's journal mode: %s", sqlite3_errmsg(dst));
        goto out;
    }
    char msg[256];
    rc = MS_ERR_INTERNAL;
    if (!integrity_ok(dst, msg, sizeof msg)) {
        snprintf(err, errlen, "the copy fails integrity_check: %s", msg);
        goto out;
    }
    rc = count_tables(dst, rep, err, errlen);
    if (rc)
        goto out;
    rc = MS_ERR_INTERNAL;
    if (!same_counts(&want, rep, err, errlen))
        goto out;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(dst, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        rep->pages = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(dst, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        rep->page_size = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    rc = 0;
out:
    if (dst && sqlite3_close(dst) != SQLITE_OK && rc == 0) {
        snprintf(err, errlen, "cannot close %s", tmp);
        rc = MS_ERR_IO;
    }
    if (rc == 0 && fsync_path(tmp, false) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        rc = MS_ERR_IO;
    }
    return rc;
}

/* Renames tmp to dst and syncs the directory. */
static int publish(const char *tmp, const char *dst, store_backup_report *rep, char *err,
                   size_t errlen)
{
    if (rename(tmp, dst) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
        return MS_ERR_IO;
    }
    fsync_parent(dst);
    struct stat sb;
    if (stat(dst, &sb) == 0)
        rep->bytes = (uint64_t)sb.st_size;
    return 0;
}

static void tmp_name(char *out, size_t cap, const char *dst)
{
    snprintf(out, cap, "%s.tmp-%ld", dst, (long)getpid());
}

/* ------------------------------------------------------------------ backup */

/*
 * Copies the snapshot src (a read transaction, closed here whatever happens) to a temporary
 * file beside dst_path, checks it and publishes it as dst_path; on failure nothing is left
 * behind. replace_store: dst_path is a store being replaced (its lock held by the caller), whose
 * WAL and shared-memory index belong to the old file and go with it.
 */
static int copy_publish(sqlite3 *src, const char *dst_path, bool replace_store,
                        const store_backup_options *opt, store_backup_report *rep, char *err,
                        size_t errlen)
{
    char tmp[4096];
    tmp_name(tmp, sizeof tmp, dst_path);
    int rc = copy_checked(src, tmp, opt, rep, err, errlen);
    sqlite3_exec(src, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    sqlite3_close(src);
    if (rc == 0 && replace_store) {
        char p[4096];
        snprintf(p, sizeof p, "%s-wal", dst_path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", dst_path);
        unlink(p);
    }
    if (rc == 0)
        rc = publish(tmp, dst_path, rep, err, errlen);
    if (rc)
        remove_files(tmp);
    return rc;
}

int store_sqlite_backup(const char *src_path, const char *dst_path, const store_backup_options *opt,
                        store_backup_report *rep, char *err, size_t errlen)
{
    static const store_backup_options defaults = {0};
    opt = opt ? opt : &defaults;
    memset(rep, 0, sizeof *rep);
    double t0 = now_s();
    if (!src_path || !dst_path || !*dst_path) {
        snprintf(err, errlen, "no backup file given");
        return MS_ERR_INVALID;
    }
    struct stat ss, ds;
    if (stat(dst_path, &ds) == 0) {
        if (stat(src_path, &ss) == 0 && ss.st_dev == ds.st_dev && ss.st_ino == ds.st_ino) {
            snprintf(err, errlen, "%s is the store itself", dst_path);
            return MS_ERR_INVALID;
        }
        if (!opt->force) {
            snprintf(err, errlen, "%s exists; pass --force to replace it", dst_path);
            return MS_ERR_CONFLICT;
        }
        if (!S_ISREG(ds.st_mode)) {
            snprintf(err, errlen, "%s is not a regular file", dst_path);
            return MS_ERR_INVALID;
        }
    }
    /* The snapshot: one read transaction from here to the counts after the copy. */
    sqlite3 *src = NULL;
    int rc = open_snapshot(src_path, "store", &src, &rep->schema_version, err, errlen);
    if (rc)
        return rc;
    rc = copy_publish(src, dst_path, false, opt, rep, err, errlen);
    rep->seconds = now_s() - t0;
    return rc;
}

/* ------------------------------------------------------------------ restore */

int store_sqlite_restore(const char *backup_path, const char *dst_path,
                         const store_backup_options *opt, store_backup_report *rep, char *err,
                         size_t errlen)
{
    static const store_backup_options defaults = {0};
    opt = opt ? opt : &defaults;
    memset(rep, 0, sizeof *rep);
    double t0 = now_s();
    if (!backup_path || !*backup_path || !dst_path || !*dst_path) {
        snprintf(err, errlen, "no backup file given");
        return MS_ERR_INVALID;
    }
    sqlite3 *src = NULL;
    int lock_fd = -1;
    bool created_lock = false;
    int rc = open_snapshot(backup_path, "backup", &src, &rep->schema_version, err, errlen);
    if (rc)
        return rc;
    int v = rep->schema_version;
    int want = expected_version();
    if (v != want) {
        snprintf(err, errlen,
                 "backup %s has schema version %d, this msgstore (%s) uses %d: restore it with "
                 "the msgstore that wrote it",
                 backup_path, v, MSGSTORE_VERSION, want);
        rc = MS_ERR_UNPROCESSABLE;
        goto out;
    }
    char msg[256];
    if (!integrity_ok(src, msg, sizeof msg)) {
        snprintf(err, errlen, "backup %s fails integrity_check: %s", backup_path, msg);
        rc = MS_ERR_INVALID;
        goto out;
    }
    struct stat bs, ds;
    if (stat(dst_path, &ds) == 0) {
        if (stat(backup_path, &bs) == 0 && bs.st_dev == ds.st_dev && bs.st_ino == ds.st_ino) {
            snprintf(err, errlen, "%s is the backup itself", dst_path);
            rc = MS_ERR_INVALID;
            goto out;
        }
        lock_fd = open_lock_file(dst_path, &created_lock, err, errlen);
        if (lock_fd < 0) {
            rc = MS_ERR_IO;
            goto out;
        }
        if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, errlen,
                     "%s is in use by a running msgstore (serve or another command); stop it "
                     "first",
                     dst_path);
            rc = MS_ERR_CONFLICT;
            goto out;
        }
        if (!opt->force) {
            snprintf(err, errlen, "%s exists; pass --force to replace it", dst_path);
            rc = MS_ERR_CONFLICT;
            goto out;
        }
    }
    rc = copy_publish(src, dst_path, true, opt, rep, err, errlen);
    src = NULL; /* closed by copy_publish */
out:
    if (src) {
        sqlite3_exec(src, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(src);
    }
    if (lock_fd >= 0) {
        if (rc && created_lock)
            remove_lock_file(dst_path); /* leave nothing behind on failure */
        close(lock_fd);
    }
    rep->seconds = now_s() - t0;
    return rc;
}
