#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
`msgstore copy --to-cluster` from a real SQLite store into the test
Cassandra node (a keyspace of its own).

- A store holding every kind of data (store_fixture.py) plus a few thousand
  messages; the copy is SIGKILLed while it copies messages (the checkpoint
  says so), run again: it resumes from the checkpoint and its verify step
  passes; the message counts show no duplicate.
- The source keeps serving after that copy (new messages, an edit, a delete,
  reactions, a pin, a read position); after serve stops, a final run copies
  only what changed since the last pass began, and verifies.
- 1000 messages spread over the store, with their reactions, plus every
  fixture read (pins, read positions, history, channel metadata, Telegram
  lookups, nonce retries) read through the HTTP API of `msgstore serve` on
  SQLite and on the cluster give the same answers.
- Bad input: an unreachable cluster, a missing store, a missing
  --to-cluster: a clear message, a non-zero exit, nothing changed.

Run: ctest -R e2e_copy, or python3 tests/e2e/test_copy.py with MSGSTORE_BIN.
"""
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import MSGSTORE, Client, Server, check, expect, in_threads, run  # noqa: E402
from store_fixture import compare, populate, snapshot  # noqa: E402

BASE = random.randrange(10**12, 10**14)
CONTACT = os.environ.get("MSGSTORE_TEST_CASSANDRA", "127.0.0.1:9042").split(",")[0].split(":")[0]
KEYSPACE = "msgstore_e2e_copy"  # channel ids are random per run: earlier runs do not interfere
ENV = {"MSGSTORE_ID_FORMAT": "int64"}  # numeric channel and user ids in paths
BULK = 2500
CONTENTS = {}  # message id -> content, of the bulk messages
# the PostgreSQL of the search index (ctest's fixture postgres)
PG_URL = os.environ.get("MSGSTORE_TEST_PG_URL", "postgresql://msgstore@127.0.0.1:54329/msgstore")


def copy_env(db, extra=None):
    env = dict(os.environ)
    env.update({"MSGSTORE_SQLITE_PATH": db, "MSGSTORE_PROFILE": "test", "MSGSTORE_LOG_LEVEL": "warn",
                "SCYLLA_CONTACT_POINTS": CONTACT, "SCYLLA_KEYSPACE": KEYSPACE,
                "SCYLLA_REPLICATION": "SimpleStrategy:1", "SCYLLA_CONNECT_TIMEOUT": "5s"})
    env.update(ENV)
    env["MSGSTORE_SEARCH_PG_URL"] = PG_URL  # as serve's: the copy logs its messages for the index
    env.update(extra or {})
    return env


def expect_found(c, ch, q, mid, timeout=240):
    """Searches channel ch for q until message mid is among the hits (the index catches up)."""
    path = "/v1/channels/%d/search?%s" % (ch, urllib.parse.urlencode({"q": q}))
    deadline = time.time() + timeout
    ids = []
    while time.time() < deadline:
        r = c.get(path)
        check(r.status == 200, "search answers 200", r.status, r.body[:300])
        ids = [h["message"]["id"] for h in r.data["hits"]]
        if mid in ids:
            return
        time.sleep(0.5)
    check(False, "search finds the copied message", ch, q, mid, ids[:10])


def caught_up(c, timeout=240):
    """Waits until the indexer reports no change waiting, twice a second apart."""
    deadline = time.time() + timeout
    zeros = 0
    while time.time() < deadline and zeros < 2:
        r = c.get("/metrics", validate=False)
        text = r.body.decode() if isinstance(r.body, bytes) else r.body
        m = re.search(r"^msgstore_search_lag_messages(?:\{[^}]*\})? (\d+)", text, re.M)
        zeros = zeros + 1 if m and m.group(1) == "0" else 0
        time.sleep(1)
    check(zeros >= 2, "the search index caught up with the copy")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def setup():
    return {"tmp": tempfile.mkdtemp(prefix="msgstore-copy-")}


def teardown(ctx):
    if os.environ.get("E2E_KEEP"):
        print("kept", ctx["tmp"])
    else:
        shutil.rmtree(ctx["tmp"], ignore_errors=True)


def bulk_load(port, channels, n, threads=4):
    ids = []
    lock = threading.Lock()

    def worker(i):
        c = Client(port)
        for j in range(i, n, threads):
            ch = channels[j % len(channels)]
            m = expect(c.post("/v1/channels/%d/messages" % ch,
                              {"sender_id": str(1 + j % 13), "content": "bulk %d ünïcode" % j}), 201)
            with lock:
                ids.append((ch, m["id"]))
                CONTENTS[m["id"]] = m["content"]
        c.close()

    in_threads(worker, threads)
    return ids


def test_copy_killed_resumed_verified_same_reads(ctx):
    tmp = ctx["tmp"]
    db = os.path.join(tmp, "store.db")
    srv = Server(tmp, env=dict(ENV, MSGSTORE_SQLITE_PATH=db))
    try:
        c = srv.client()
        paths = populate(c, BASE)
        bulk = bulk_load(srv.port, [BASE + 10 + k for k in range(5)], BULK)
        # a sample of 1000 messages over the whole store, with their reactions
        sample = [p for p in paths if isinstance(p, str) and "/messages/" in p and p.count("/") == 5]
        every = len(bulk) // (1000 - len(sample))
        sample += ["/v1/channels/%d/messages/%s" % x for x in bulk[::every]]
        sample = sample[:1000]
        check(len(sample) == 1000, "a sample of 1000 messages", len(sample))
        # the copy runs while serve still holds the store (no writes now); killed mid-messages
        ckpt = db + ".copy-checkpoint"
        env = copy_env(db)
        p = subprocess.Popen([MSGSTORE, "copy", "--to-cluster", "--in-flight=2"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        killed_at = None
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:
            try:
                with open(ckpt) as f:
                    lines = f.read().split("\n")
                if "table 2" in lines:  # messages: "table 2" then the last key ("i ...")
                    at = lines.index("table 2")
                    if len(lines) > at + 1 and lines[at + 1].startswith("i "):
                        p.send_signal(signal.SIGKILL)
                        killed_at = lines[at:at + 3]
                        break
            except OSError:
                pass
            time.sleep(0.01)
        out, err = p.communicate(timeout=60)
        check(killed_at is not None and p.returncode == -signal.SIGKILL,
              "killed while copying messages", p.returncode, err[-2000:])
        print("   killed at checkpoint %s" % killed_at)

        # run again: resumes from the checkpoint, verify passes
        r = subprocess.run([MSGSTORE, "copy", "--to-cluster"], env=env, capture_output=True, text=True,
                           timeout=900)
        check(r.returncode == 0, "second run exits 0", r.returncode, r.stdout[-2000:], r.stderr[-3000:])
        check("resumed from the checkpoint" in r.stdout and "verify:" in r.stdout and ": ok" in r.stdout,
              "resumed and verified", r.stdout)
        check("messages/s" in r.stderr and "ETA" in r.stderr, "progress with messages/s and ETA", r.stderr[-500:])
        print("   " + r.stdout.strip().replace("\n", "\n   "))
        # a verify-only run agrees
        r = subprocess.run([MSGSTORE, "copy", "--to-cluster", "--verify-only"], env=env, capture_output=True,
                           text=True, timeout=600)
        check(r.returncode == 0 and ": ok" in r.stdout, "verify-only", r.stdout, r.stderr[-2000:])

        # the source keeps serving: new messages, an edit, a delete, reactions, a pin, a read position
        c = srv.client()
        ch = BASE + 10
        new_ids = [expect(c.post("/v1/channels/%d/messages" % ch,
                                 {"sender_id": "3", "content": "after the copy %d" % i,
                                  "nonce": "late-%d" % i}), 201)["id"] for i in range(20)]
        old = bulk[0]
        old_path = "/v1/channels/%d/messages/%s" % old
        expect(c.patch(old_path, {"content": "edited after the copy"}), 200)
        expect(c.delete("/v1/channels/%d/messages/%s" % bulk[5]), 200)
        for u in (601, 602, 603):
            expect(c.put("%s/reactions/%s/%d" % (old_path, "%F0%9F%8E%89", u)), 201)
        expect(c.put("/v1/channels/%d/pins/%s" % (ch, new_ids[3]), {"pinned_by": "4"}), 201)
        expect(c.put("/v1/channels/%d/read-positions/88" % ch, {"message_id": new_ids[-1]}), 200)
        late = ["/v1/channels/%d/messages/%s" % (ch, i) for i in new_ids]
        late += [old_path, old_path + "/history", old_path + "/reactions",
                 "/v1/channels/%d/messages/%s" % bulk[5], "/v1/channels/%d/pins" % ch,
                 "/v1/channels/%d/read-positions/88" % ch]
        late.append(("POST", "/v1/channels/%d/messages" % ch, {"sender_id": "3", "content": "x", "nonce": "late-7"}))
        reads = paths + sample + [p + "/reactions" for p in sample] + late
        reads += ["/v1/channels/%d/messages?limit=100" % (BASE + 10 + k) for k in range(5)]
        reads += ["/v1/channels/%d" % (BASE + 10 + k) for k in range(5)]
        before = snapshot(c, reads)
        c.close()
    finally:
        check(srv.stop() == 0, "serve on SQLite stopped cleanly")

    # the final pass: only what changed since the last pass began, then verify
    # (no margin: every write of this test was acknowledged before the first pass began)
    r = subprocess.run([MSGSTORE, "copy", "--to-cluster", "--catch-up-margin=0"], env=env, capture_output=True,
                       text=True, timeout=900)
    check(r.returncode == 0 and "caught up with the changes since" in r.stdout and ": ok" in r.stdout,
          "the final pass catches up", r.returncode, r.stdout, r.stderr[-2000:])
    m = re.search(r"\((\d+) messages\)", r.stdout)
    check(m and 20 <= int(m.group(1)) < BULK, "the final pass copies the changed messages, not all", r.stdout)
    print("   " + r.stdout.strip().replace("\n", "\n   "))

    # the same reads through the API of a server on the cluster
    scylla = Server(tmp, env=dict(ENV, SCYLLA_ENABLED="true", SCYLLA_CONTACT_POINTS=CONTACT,
                                  SCYLLA_KEYSPACE=KEYSPACE, SCYLLA_REPLICATION="SimpleStrategy:1",
                                  MSGSTORE_SEARCH_PG_URL=PG_URL))
    try:
        c = scylla.client(timeout=30)
        after = snapshot(c, reads)
        n = compare(before, after, "the cluster through the API")
        print("   %d reads equal on both backends (1000 sampled messages and their reactions)" % n)
        # the copy logged every message for the cluster's search index: serve's indexer finds
        # copied messages by their content as stored (an edit's new content; a delete never)
        expect_found(c, old[0], "edited", old[1])
        expect_found(c, ch, '"after the copy 3"', new_ids[3])
        for chx, mid in bulk[100:1100:250]:
            expect_found(c, chx, '"%s"' % CONTENTS[mid].rsplit(" ", 1)[0], mid)
        # once the indexer has nothing left waiting, the message deleted before the final pass
        # is not found by its old content (nor the edited one by its old content)
        caught_up(c)
        for (chx, mid) in (bulk[5], old):
            r = expect(c.get("/v1/channels/%d/search?%s" % (chx, urllib.parse.urlencode(
                {"q": '"%s"' % CONTENTS[mid].rsplit(" ", 1)[0]}))), 200)
            check(mid not in [h["message"]["id"] for h in r["hits"]],
                  "a deleted message, or an edit's old content, is never found", mid, r)
        c.close()
        print("   the copied messages are found by the cluster's search (PostgreSQL)")
    finally:
        check(scylla.stop() == 0, "serve on the cluster stopped cleanly")


def test_bad_input(ctx):
    tmp = os.path.join(ctx["tmp"], "bad")
    os.makedirs(tmp)
    db = os.path.join(tmp, "store.db")
    env = copy_env(db)
    subprocess.run([MSGSTORE, "migrate"], env=dict(env, SCYLLA_ENABLED="false"), check=True,
                   capture_output=True)
    before = digest(db)
    listing = sorted(os.listdir(tmp))
    # an unreachable cluster (a closed port)
    r = subprocess.run([MSGSTORE, "copy", "--to-cluster"], env=copy_env(db, {"SCYLLA_CONTACT_POINTS": "127.0.0.1:1"}),
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 1 and "127.0.0.1:1" in r.stderr and "unavailable" in r.stderr,
          "unreachable cluster: exit 1 and a message naming it", r.returncode, r.stderr[-1000:])
    check(digest(db) == before and sorted(os.listdir(tmp)) == listing, "unreachable cluster: nothing changed",
          sorted(os.listdir(tmp)), listing)
    # a missing store
    r = subprocess.run([MSGSTORE, "copy", "--to-cluster"], env=copy_env(os.path.join(tmp, "nope.db")),
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "does not exist" in r.stderr, "missing store", r.returncode, r.stderr)
    check(sorted(os.listdir(tmp)) == listing, "missing store: nothing created", sorted(os.listdir(tmp)))
    # usage
    r = subprocess.run([MSGSTORE, "copy"], env=env, capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "--to-cluster" in r.stderr, "copy without --to-cluster", r.returncode, r.stderr)


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
