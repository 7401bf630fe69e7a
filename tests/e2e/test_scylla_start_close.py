#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Issue 9: the ScyllaDB backend at the edges of a server's life.

test_start_without_cluster: `msgstore serve` starts while no contact point
answers (behind a TCP proxy of this test's own that does not listen yet):
it serves, /health/live is 200, /health/ready and the API answer 503 with
Retry-After, and it says in its log that it waits for the cluster. Once the
cluster answers (the proxy listens), the migrations run by themselves and
the service turns ready; writes and reads work.

test_close_bounded_with_stopped_node: shutdown while the node stops
answering (SIGSTOP: scripts/cassandra pause on the faults node; when that
node cannot be had on a shared machine, the same seen from the client: a
proxy to the shared node that stops forwarding, connections left open)
with requests waiting for it, and a request timeout far longer than the
shutdown timeout. `msgstore serve` must exit by itself, cleanly, long
before a request timeout: store_close and the worker loops are bounded by
MSGSTORE_SHUTDOWN_TIMEOUT. The node is resumed at the end in any case.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import SOURCE_DIR, Server, check, expect, run  # noqa: E402
from test_scylla_outage import Proxy, wait_until  # noqa: E402

FAULTS_NODE = os.environ.get("MSGSTORE_FAULTS_NODE", "127.0.0.4")
CASSANDRA = os.path.join(SOURCE_DIR, "scripts", "cassandra")


def base_env(contact, ks):
    return {
        "SCYLLA_ENABLED": "true",
        "SCYLLA_CONTACT_POINTS": contact,
        "SCYLLA_KEYSPACE": ks,
        "SCYLLA_LOCAL_DATACENTER": os.environ.get("SCYLLA_LOCAL_DATACENTER", "datacenter1"),
        "SCYLLA_CONNECT_TIMEOUT": "1s",
        "MSGSTORE_READY_THRESHOLD": "1s",
        "MSGSTORE_HEALTH_INTERVAL": "500ms",
        "MSGSTORE_READY_CACHE": "0",
        "MSGSTORE_LOG_LEVEL": "info",
    }


def setup():
    return {"tmp": tempfile.mkdtemp(prefix="msgstore-startclose-")}


def teardown(ctx):
    shutil.rmtree(ctx["tmp"], ignore_errors=True)


def test_start_without_cluster(ctx):
    proxy = Proxy()
    proxy.start()  # to learn a free port...
    port = proxy.port
    proxy.stop()  # ...that nothing listens on: the cluster cannot be reached
    proxy.port = port
    env = base_env("127.0.0.1:%d" % port, "msgstore_e2e_start")
    env["SCYLLA_REQUEST_TIMEOUT"] = "2s"
    srv = Server(ctx["tmp"], env=env, start_timeout=60)
    try:
        c = srv.client(timeout=30)
        expect(c.get("/health/live"), 200)
        r = c.get("/health/ready")
        check(r.status == 503, "ready 503 without a cluster", r)
        ch = random.randrange(10**12, 10**15)
        r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "too early"})
        check(r.status == 503, "writes 503 without a cluster", r)
        check(r.headers.get("retry-after", "").isdigit(), "Retry-After", r.headers)
        wait_until("the log says it waits for the cluster",
                   lambda: "waiting for the cluster" in srv.log() or "serving anyway" in srv.log(), 30)

        proxy.start()  # the cluster appears
        took = wait_until("ready once the cluster answers", lambda: c.get("/health/ready").status == 200, 120)
        print("     ready %.1fs after the cluster appeared" % took)
        m = expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "now"}), 201)
        g = expect(c.get("/v1/channels/%d/messages/%s" % (ch, m["id"])), 200)
        check(g["content"] == "now", "read back", g)
        c.close()
    finally:
        rc = srv.stop(timeout=60)
        proxy.stop()
    check(rc == 0, "clean exit", rc, srv.log()[-2000:])


def cassandra(*args):
    return subprocess.run([CASSANDRA] + list(args), capture_output=True, text=True, timeout=600)


def test_close_bounded_with_stopped_node(ctx):
    proxy = None
    # the faults node when this build's scripts own it (a pause/resume probe), else the proxy
    usable = os.environ.get("CLOSE_TEST_PROXY") != "1" and cassandra("pause", "faults").returncode == 0
    if usable:
        usable = cassandra("resume", "faults").returncode == 0
    if usable:
        contact, how = FAULTS_NODE, "the faults node SIGSTOPped"
        pause = lambda: cassandra("pause", "faults")  # noqa: E731
        resume = lambda: cassandra("resume", "faults")  # noqa: E731
    else:
        proxy = Proxy()  # frozen below: a hung node
        proxy.start()
        contact, how = "127.0.0.1:%d" % proxy.port, "a frozen proxy (faults node unavailable)"

        def pause():
            proxy.frozen = True
            return subprocess.CompletedProcess([], 0, "", "")

        def resume():
            proxy.frozen = False
    print("     hung node: %s" % how)
    env = base_env(contact, "msgstore_e2e_close")
    env["SCYLLA_REQUEST_TIMEOUT"] = "120s"  # a request alone would hold shutdown for minutes
    env["MSGSTORE_SHUTDOWN_TIMEOUT"] = "3s"
    srv = Server(ctx["tmp"], env=env, start_timeout=180)
    paused = False
    try:
        c = srv.client(timeout=30)
        ch = random.randrange(10**12, 10**15)
        m = expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "before"}), 201)
        r = pause()
        check(r.returncode == 0, "node paused", r.stderr[-500:])
        paused = True
        # requests that now wait for the stopped node
        def reader():
            try:
                cc = srv.client(timeout=200)
                cc.get("/v1/channels/%d/messages/%s" % (ch, m["id"]))
            except Exception:  # noqa: BLE001 - cut at shutdown: expected
                pass
        ts = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
        for t in ts:
            t.start()
        time.sleep(1.0)
        t0 = time.time()
        rc = srv.stop(timeout=90)
        took = time.time() - t0
        log = srv.log()
        print("\n".join(l for l in log[log.find("SIGTERM"):].splitlines() if '"level":"info"' not in l)[-3000:])
        print("     stopped in %.1fs with the node stopped (shutdown timeout 3 s, request timeout 120 s)"
              % took)
        check(rc == 0, "clean exit", rc, srv.log()[-2000:])
        # far below the request timeout (the old store waited for it); not a speed test
        check(took < 60, "shutdown bounded (well under the 120 s request timeout)", took)
    finally:
        if paused:
            resume()
        srv.stop(timeout=90)
        if proxy:
            proxy.stop()


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
