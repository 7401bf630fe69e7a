#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Faults of the ScyllaDB backend's search index (issue 12): real `msgstore serve`
processes on the fixture's Cassandra node, a PostgreSQL of this test's own
(scripts/postgres on a free port, killed and restarted here), real HTTP.

  test_killed_between_write_and_index
      msgstore is SIGKILLed by fault injection (MSGSTORE_SEARCH_FAULT=
      kill_before_index) after the message's Cassandra write was acknowledged and
      before its index row commits; after a restart the message is found.
  test_postgres_killed_under_load
      PostgreSQL is SIGKILLed and restarted while POSTs go on; every POST keeps
      answering 201, /health says degraded meanwhile, and once the indexer caught
      up every acknowledged message is found by a word only it contains.

Run: ctest -R e2e_search_faults, or python3 tests/e2e/test_search_faults.py
with MSGSTORE_BIN / MSGSTORE_SOURCE_DIR / MSGSTORE_BINARY_DIR set.
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import Server, check, expect, run  # noqa: E402

SOURCE_DIR = os.environ.get("MSGSTORE_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY_DIR = os.environ.get("MSGSTORE_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
PG_SCRIPT = os.path.join(SOURCE_DIR, "scripts", "postgres")
KEYSPACE = "msgstore_e2e_search_faults"
CONTACT = os.environ.get("SCYLLA_CONTACT_POINTS", "127.0.0.1")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pg(cmd, port):
    env = dict(os.environ, MSGSTORE_PG_HOME=os.path.join(BINARY_DIR, "postgres"))
    r = subprocess.run([PG_SCRIPT, cmd, str(port)], env=env, capture_output=True, text=True, timeout=180)
    check(r.returncode == 0, "scripts/postgres %s %d" % (cmd, port), r.stderr)
    return r.stdout.strip()


def cql(query):
    """One CQL statement through scripts/cqlprobe.py; errors are the caller's concern."""
    return subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "scripts", "cqlprobe.py"),
                           "--host", CONTACT.split(",")[0], "--query", query],
                          capture_output=True, text=True, timeout=60)


def serve(ctx, **extra):
    env = {"SCYLLA_ENABLED": "true", "SCYLLA_CONTACT_POINTS": CONTACT, "SCYLLA_KEYSPACE": KEYSPACE,
           "MSGSTORE_SEARCH_PG_URL": ctx["url"], "MSGSTORE_SEARCH_SHARDS": "4"}
    env.update(extra)
    return Server(ctx["tmp"], env=env)


def found(c, ch, word, timeout=60):
    """True once a search of channel ch for word returns a hit (the index catches up)."""
    deadline = time.time() + timeout
    path = "/v1/channels/%d/search?%s" % (ch, urllib.parse.urlencode({"q": word}))
    while time.time() < deadline:
        r = c.get(path)
        if r.status == 200 and r.data["hits"]:
            return True
        time.sleep(0.2)
    return False


def setup():
    tmp = tempfile.mkdtemp(prefix="msgstore-search-faults-")
    port = free_port()
    url = pg("start", port)
    url = pg("url", port)
    # entries left in the log by an earlier run belong to an index that is gone: start clean
    cql("TRUNCATE %s.search_log" % KEYSPACE)
    return {"tmp": tmp, "pg_port": port, "url": url, "servers": []}


def teardown(ctx):
    if not ctx:
        return
    for s in ctx["servers"]:
        s.stop()
    pg("stop", ctx["pg_port"])
    if os.environ.get("E2E_KEEP"):
        print("kept", ctx["tmp"])
    else:
        shutil.rmtree(ctx["tmp"], ignore_errors=True)


def test_killed_between_write_and_index(ctx):
    ch = random.randrange(10**12, 10**15)
    word = "crashword%d" % random.randrange(10**9)
    # a slow poll: the indexer's next round (which dies before committing) comes after the 201
    srv = serve(ctx, MSGSTORE_SEARCH_FAULT="kill_before_index", MSGSTORE_SEARCH_POLL="3s")
    c = srv.client()
    time.sleep(0.5)  # past the indexer's first round (nothing to index yet)
    r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": "7", "content": "before the crash " + word})
    check(r.status == 201, "acknowledged", r)
    rc = srv.proc.wait(30)
    check(rc == -9, "SIGKILLed by the fault before the index row committed", rc, srv.log()[-2000:])
    check("fault injection: SIGKILL before committing" in srv.log(), "the fault fired")
    srv2 = serve(ctx)
    ctx["servers"].append(srv2)
    c2 = srv2.client()
    check(found(c2, ch, word), "found after the restart")
    # and it was not found before: the kill came before the commit (the checkpoint replayed it)
    h = expect(c2.get("/health"), 200)
    check(h["search"]["connected"] and h["search"]["indexed"] >= 1, "indexed by the restarted instance", h)
    srv2.stop()
    ctx["servers"].remove(srv2)


def test_postgres_killed_under_load(ctx):
    srv = serve(ctx)
    ctx["servers"].append(srv)
    ch = random.randrange(10**12, 10**15)
    acked, errors, stop = [], [], threading.Event()

    def writer(k):
        c = srv.client()
        n = 0
        while not stop.is_set():
            word = "w%dx%dx%d" % (k, n, random.randrange(10**6))
            try:
                r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": "9", "content": "load " + word})
            except Exception as e:  # noqa: BLE001 - every failure fails the test
                errors.append(repr(e))
                c = srv.client()
                continue
            if r.status == 201:
                acked.append(word)
            else:
                errors.append((r.status, r.data))
            n += 1
            time.sleep(0.005)  # steady load, not a flood: every message is searched for below

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    c = srv.client()
    time.sleep(2)
    pg("kill", ctx["pg_port"])
    t_kill = time.time()
    degraded = False
    while time.time() - t_kill < 4:
        h = c.get("/health")
        if h.status == 200 and h.data.get("status") == "degraded" and not h.data["search"]["connected"]:
            degraded = True
        time.sleep(0.2)
    during = len(acked)
    pg("restart", ctx["pg_port"])
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join(30)
    check(not errors, "every POST answered 201 while PostgreSQL was away", errors[:5])
    check(degraded, "/health said degraded while PostgreSQL was away")
    check(during > 0 and len(acked) > during, "writes went on", during, len(acked))
    # caught up: nothing waiting, connected
    deadline = time.time() + 120
    while time.time() < deadline:
        h = c.get("/health").data
        if h["search"]["connected"] and h["search"]["lag_messages"] == 0 and h["status"] == "ok":
            break
        time.sleep(0.5)
    check(h["search"]["connected"] and h["search"]["lag_messages"] == 0, "caught up", h)
    missing = [w for w in acked if not found(c, ch, w, timeout=5)]
    check(not missing, "every acknowledged message is found (%d acknowledged)" % len(acked), missing[:10])
    print("      %d messages acknowledged, %d while PostgreSQL was away; all found" % (len(acked), during))


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
