#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
`msgstore backup` and `msgstore restore` against a real `msgstore serve` on
the SQLite store.

- Under POST load (writer threads posting all along): every message
  acknowledged (201) before the backup started is in the backup; the store
  restored from it passes the API reads of a store holding every kind of
  data (store_fixture.py) with the same answers as the original.
- Bad input: a wrong path, a store in use, an existing file, a mismatched
  schema, a file that is not a store: a message naming the problem, exit 1,
  and nothing changed (files compared byte for byte).

Run: ctest -R e2e_backup, or python3 tests/e2e/test_backup.py with MSGSTORE_BIN.
"""
import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import MSGSTORE, Client, Server, check, expect, run  # noqa: E402
from store_fixture import compare, populate, snapshot  # noqa: E402

BASE = random.randrange(10**12, 10**14)
ENV = {"MSGSTORE_ID_FORMAT": "int64"}  # numeric channel and user ids in paths


def msgstore(args, db, check_rc=None):
    env = dict(os.environ)
    env.update({"MSGSTORE_SQLITE_PATH": db, "MSGSTORE_PROFILE": "test", "MSGSTORE_LOG_LEVEL": "warn"})
    env.update(ENV)
    p = subprocess.run([MSGSTORE] + args, env=env, capture_output=True, text=True, timeout=600)
    if check_rc is not None:
        check(p.returncode == check_rc, "msgstore %s: exit %d, expected %d" % (" ".join(args), p.returncode, check_rc),
              p.stdout[-2000:], p.stderr[-2000:])
    return p


def digest(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def setup():
    return {"tmp": tempfile.mkdtemp(prefix="msgstore-backup-")}


def teardown(ctx):
    if os.environ.get("E2E_KEEP"):
        print("kept", ctx["tmp"])
    else:
        shutil.rmtree(ctx["tmp"], ignore_errors=True)


class Load:
    """Writer threads posting messages; records each acknowledged id with the time of its 201."""

    def __init__(self, port, channels, threads=4):
        self.port, self.channels = port, channels
        self.acked = []  # (t_ack, channel, id, content)
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def worker(self, i):
        c = Client(self.port)
        n = 0
        while not self.stop.is_set():
            ch = self.channels[n % len(self.channels)]
            content = "load %d-%d" % (i, n)
            n += 1
            try:
                r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": str(1 + i), "content": content})
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                c.close()
                c = Client(self.port)
                continue
            if r.status == 201:
                with self.lock:
                    self.acked.append((time.monotonic(), ch, r.data["id"], content))
            else:
                self.errors.append("%d %s" % (r.status, r.body[:200]))
        c.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def test_backup_under_post_load_and_restore(ctx):
    tmp = ctx["tmp"]
    src = os.path.join(tmp, "live.db")
    srv = Server(tmp, env=dict(ENV, MSGSTORE_SQLITE_PATH=src))
    try:
        c = srv.client()
        paths = populate(c, BASE)
        before = snapshot(c, paths)
        load_channels = [BASE + 100 + k for k in range(4)]
        load = Load(srv.port, load_channels)
        time.sleep(3)  # the load runs before, during and after the backup
        out = os.path.join(tmp, "backup.db")
        t_start = time.monotonic()
        # small steps and a pause: many steps while the writers commit between them
        p = msgstore(["backup", "--to", out, "--step-pages=8"], src, check_rc=0)
        t_end = time.monotonic()
        time.sleep(1)
        load.finish()
        check(not load.errors, "load errors", load.errors[:5])
        acked_before = [a for a in load.acked if a[0] < t_start]
        acked_after = [a for a in load.acked if a[0] > t_end]
        check(len(acked_before) > 50 and acked_after, "load before and after the backup",
              len(acked_before), len(acked_after))
        check("integrity_check ok" in p.stdout and "%: " not in p.stdout, "report on stdout", p.stdout)
        lines = [x for x in p.stderr.splitlines() if x.startswith("backup: ")]
        check(lines and lines[-1].startswith("backup: 100%"), "percent lines when not a terminal", p.stderr[-500:])
        print("   backup: %d messages acknowledged before it, %.2fs, %s" % (
            len(acked_before), t_end - t_start, p.stdout.splitlines()[0]))
        c.close()
    finally:
        check(srv.stop() == 0, "serve stopped cleanly")

    # every message acknowledged before the backup started is in it, as posted
    db = sqlite3.connect(out)
    ids = {row[0]: row[1] for row in db.execute("SELECT message_id, content FROM messages")}
    check(db.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "the backup is one file")
    db.close()
    missing = [a for a in acked_before if int(a[2]) not in ids]
    check(not missing, "%d acknowledged messages missing from the backup" % len(missing), missing[:3])
    check(all(ids[int(a[2])] == a[3] for a in acked_before), "contents as posted")

    # restore into a new store; it serves the same answers as the original did
    restored = os.path.join(tmp, "restored.db")
    p = msgstore(["restore", "--from", out], restored, check_rc=0)
    check(p.stdout.startswith("restored "), "restore report", p.stdout)
    srv2 = Server(tmp, env=dict(ENV, MSGSTORE_SQLITE_PATH=restored))
    try:
        c2 = srv2.client()
        n = compare(before, snapshot(c2, paths), "restored store")
        for a in acked_before[:: max(1, len(acked_before) // 200)]:
            g = expect(c2.get("/v1/channels/%d/messages/%s" % (a[1], a[2])), 200)
            check(g["content"] == a[3], "restored message", a, g)
        c2.close()
        print("   restored store: %d fixture reads equal, acknowledged messages readable" % n)
    finally:
        check(srv2.stop() == 0, "serve on the restored store stopped cleanly")
    h = msgstore(["health", "--direct"], restored)
    check(h.returncode == 0, "health --direct on the restored store", h.stdout[-1000:], h.stderr[-1000:])


def test_bad_input_changes_nothing(ctx):
    tmp = os.path.join(ctx["tmp"], "bad")
    os.makedirs(tmp)
    store = os.path.join(tmp, "store.db")
    msgstore(["migrate"], store, check_rc=0)
    good = os.path.join(tmp, "good.db")
    msgstore(["backup", "--to", good], store, check_rc=0)

    def fails(args, db, words, files):
        sums = {f: digest(f) for f in files}
        listing = sorted(os.listdir(tmp))
        p = msgstore(args, db)
        check(p.returncode == 1, "%s: exit 1" % args, p.returncode, p.stderr)
        for w in words:
            check(w in p.stderr, "%s: message names %r" % (args, w), p.stderr)
        check(sums == {f: digest(f) for f in files}, "%s: files unchanged" % args)
        check(sorted(os.listdir(tmp)) == listing, "%s: no file left behind" % args,
              sorted(os.listdir(tmp)), listing)

    # wrong paths
    fails(["backup", "--to", os.path.join(tmp, "x.db")], os.path.join(tmp, "nope.db"), ["nope.db", "No such file"], [])
    fails(["backup", "--to", os.path.join(tmp, "no-dir", "x.db")], store, ["cannot create"], [store])
    fails(["restore", "--from", os.path.join(tmp, "nope.db")], os.path.join(tmp, "new.db"),
          ["nope.db", "No such file"], [])
    junk = os.path.join(tmp, "junk.db")
    with open(junk, "wb") as f:
        f.write(b"not a database at all" * 100)
    fails(["restore", "--from", junk], os.path.join(tmp, "new.db"), ["not a SQLite database"], [junk])
    plain = os.path.join(tmp, "plain.db")
    sqlite3.connect(plain).execute("CREATE TABLE t(x)").connection.close()
    fails(["restore", "--from", plain], os.path.join(tmp, "new.db"), ["not a msgstore store"], [plain])
    fails(["backup", "--to", store], store, ["the store itself"], [store])
    # existing files without --force
    fails(["backup", "--to", good], store, ["exists", "--force"], [good, store])
    fails(["restore", "--from", good], store, ["exists", "--force"], [good, store])
    # a mismatched schema: a backup whose recorded version is not this binary's
    old = os.path.join(tmp, "old.db")
    shutil.copy(good, old)
    db = sqlite3.connect(old)
    v = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    db.execute("DELETE FROM schema_version WHERE version = ?", (v,))
    db.commit()
    db.close()
    fails(["restore", "--from", old, "--force"], store, ["schema version %d" % (v - 1), "uses %d" % v], [old, store])
    newer = os.path.join(tmp, "newer.db")
    shutil.copy(good, newer)
    db = sqlite3.connect(newer)
    db.execute("INSERT INTO schema_version(version, name, checksum, applied_at) VALUES (?, 'future', 'x', 0)",
               (v + 1,))
    db.commit()
    db.close()
    fails(["restore", "--from", newer, "--force"], store, ["schema version %d" % (v + 1)], [newer, store])
    # a store a running server holds: refused even with --force
    srv = Server(tmp, env=dict(ENV, MSGSTORE_SQLITE_PATH=store))
    try:
        c = srv.client()
        m = expect(c.post("/v1/channels/%d/messages" % (BASE + 900), {"sender_id": "1", "content": "kept"}), 201)
        p = msgstore(["restore", "--from", good, "--force"], store)
        check(p.returncode == 1 and "in use by a running msgstore" in p.stderr, "restore over a served store",
              p.returncode, p.stderr)
        g = expect(c.get("/v1/channels/%d/messages/%s" % (BASE + 900, m["id"])), 200)
        check(g["content"] == "kept", "the served store still holds its data", g)
        c.close()
    finally:
        check(srv.stop() == 0, "serve stopped cleanly")
    # once it stopped, --force replaces it
    msgstore(["restore", "--from", good, "--force"], store, check_rc=0)
    # usage errors: exit 2
    p = msgstore(["backup"], store)
    check(p.returncode == 2 and "--to FILE is required" in p.stderr, "backup without --to", p.stderr)
    p = msgstore(["restore", "--from"], store)
    check(p.returncode == 2 and "needs a file" in p.stderr, "restore --from without a file", p.stderr)


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
