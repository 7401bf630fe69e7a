#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
The database goes away while msgstore serves, and comes back.

`msgstore serve` runs on ScyllaDB/Cassandra (the ctest fixture's node,
127.0.0.1:9042) reached through a TCP proxy owned by this test. "Stopping
Cassandra" closes the proxy's listener and resets every connection through
it; "starting it again" listens again on the same port. The shared node
itself is never touched (other tests use it).

Checked: readiness turns 503; API calls fail fast with 503 and Retry-After
(no request hangs for the driver's timeouts once the outage is known);
/health reports the failed check. The outage then lasts a while with no
client traffic at all (the reconnection backoff grows, the store's worker
sessions sit idle). When the database is back the service recovers by
itself within RECOVERY_BOUND seconds: ready 200, and a second later every
worker's session (bursts of concurrent reads wider than the worker pool all
succeed: no worker is left waiting out its own reconnection backoff), writes
and reads work. No acknowledged write is lost: a writer posts steadily from
before the cut until the outage is known, and every message answered 201 is
read back afterwards.
"""
import http.client
import os
import random
import select
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import Background, Server, check, expect, in_threads, run  # noqa: E402

NODE = ("127.0.0.1", int(os.environ.get("MSGSTORE_TEST_CQL_PORT", "9042")))
OUTAGE = float(os.environ.get("OUTAGE_SECONDS", "10"))  # from the cut to the node's return
RECOVERY_BOUND = 30.0  # seconds from the node's return to a fully working service
WORKERS = 8  # the store's ScyllaDB worker threads (store_options default), one session each


class Proxy:
    """A TCP forwarder to the Cassandra node that can be switched off and on, or frozen: it then
    stops forwarding while keeping every connection open (a hung node)."""

    frozen = False

    def __init__(self):
        self.port = None
        self.lsock = None
        self.conns = []
        self.lock = threading.Lock()
        self.thread = None
        self.running = False

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port or 0))
        s.listen(64)
        self.port = s.getsockname()[1]
        self.lsock = s
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(NODE, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, a, b):
        socks = [a, b]
        try:
            while self.running:
                if self.frozen:
                    time.sleep(0.05)
                    continue
                r, _, _ = select.select(socks, [], [], 0.2)
                for s in r:
                    d = s.recv(65536)
                    if not d:
                        return
                    (b if s is a else a).sendall(d)
        except (OSError, ValueError):  # ValueError: a socket closed by stop()
            return
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self):
        """Like a dead node: connections reset, new ones refused."""
        self.running = False
        try:
            # close() alone does not wake a thread blocked in accept(): the socket would
            # go on listening (and accepting into its backlog) until then
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            for s in self.conns:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    s.close()
                except OSError:
                    pass
            self.conns = []
        if self.thread:
            self.thread.join(5)


def wait_until(what, fn, timeout):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        last = fn()
        if last:
            return time.time() - t0
        time.sleep(0.2)
    raise AssertionError("%s: not within %.0fs (last: %r)" % (what, timeout, last))


def setup():
    tmp = tempfile.mkdtemp(prefix="msgstore-outage-")
    proxy = Proxy()
    proxy.start()
    # one keyspace for every run (created once; channels are random): a keyspace per
    # run would pile up schema on the shared node
    ks = os.environ.get("OUTAGE_KEYSPACE", "msgstore_e2e_outage")
    env = {
        "SCYLLA_ENABLED": "true",
        "SCYLLA_CONTACT_POINTS": "127.0.0.1:%d" % proxy.port,
        "SCYLLA_KEYSPACE": ks,
        "SCYLLA_LOCAL_DATACENTER": os.environ.get("SCYLLA_LOCAL_DATACENTER", "datacenter1"),
        "SCYLLA_CONNECT_TIMEOUT": "1s",
        "SCYLLA_REQUEST_TIMEOUT": "2s",
        "SCYLLA_BREAKER_RESET_TIMEOUT": "1s",
        # ready means the database answers; a loaded machine may answer slowly (not an outage)
        "MSGSTORE_READY_THRESHOLD": "5s",
        "MSGSTORE_HEALTH_INTERVAL": "500ms",
        "MSGSTORE_LOG_LEVEL": os.environ.get("E2E_LOG_LEVEL", "warn"),
    }
    srv = Server(tmp, env=env, start_timeout=180)
    return {"tmp": tmp, "proxy": proxy, "srv": srv}


def teardown(ctx):
    if not ctx:
        return
    rc = ctx["srv"].stop()
    ctx["proxy"].stop()
    shutil.rmtree(ctx["tmp"], ignore_errors=True)
    check(rc == 0, "msgstore serve exits 0 on SIGTERM", rc, ctx["srv"].log()[-3000:])


class Writer(Background):
    """Posts messages one after another; remembers those acknowledged (201)."""

    what = "the writer"

    def __init__(self, srv, ch):
        self.srv, self.ch = srv, ch
        self.acked = {}  # id -> content
        self.statuses = {}
        Background.__init__(self)

    def work(self):
        c = self.srv.client(timeout=30)
        i = 0
        while self.running:
            content = "w%d" % i
            i += 1
            try:
                r = c.post("/v1/channels/%d/messages" % self.ch, {"sender_id": "2", "content": content})
            except (OSError, http.client.HTTPException) as e:  # no answer: not acknowledged
                self.statuses[type(e).__name__] = self.statuses.get(type(e).__name__, 0) + 1
                c.close()
                c = self.srv.client(timeout=30)
                continue
            self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
            if r.status == 201:
                self.acked[r.data["id"]] = content
            else:
                check(r.status == 503, "a write answers 201 or 503", r)
            time.sleep(0.01)
        c.close()


def burst(srv, path, n):
    """n concurrent GETs (one connection each); their statuses."""
    out = [None] * n

    def one(i):
        c = srv.client(timeout=30)
        try:
            out[i] = c.get(path).status
        except Exception as e:  # noqa: BLE001
            out[i] = type(e).__name__
        finally:
            c.close()

    in_threads(one, n, 60)
    return out


def test_outage_and_recovery(ctx):
    srv, proxy = ctx["srv"], ctx["proxy"]
    c = srv.client(timeout=30)
    ch = random.randrange(10**12, 10**15)
    wch = ch + 1
    expect(c.get("/health/ready"), 200)
    before = expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "before"}), 201)
    writer = Writer(srv, wch)
    wait_until("the writer's first acknowledged write", lambda: len(writer.acked) > 0, 30)
    time.sleep(1)

    proxy.stop()
    t_down = time.time()
    took = wait_until("ready turns 503", lambda: c.get("/health/ready").status == 503, 30)
    print("     ready 503 after %.1fs" % took)

    # once the outage is known, API calls fail fast with 503 and Retry-After
    wait_until("API answers 503", lambda: c.get("/v1/channels/%d/messages/%s" % (ch, before["id"])).status == 503, 30)
    slow = []
    for i in range(10):
        t0 = time.time()
        r = c.get("/v1/channels/%d/messages/%s" % (ch, before["id"]))
        dt = time.time() - t0
        check(r.status == 503, "503 while the database is down", r)
        check(r.headers.get("retry-after", "").isdigit(), "Retry-After", r.headers)
        check(r.data["error"]["code"] in ("unavailable", "timeout", "io_error"), "error code", r.data)
        slow.append(dt)
        r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "during %d" % i})
        check(r.status == 503, "writes 503 too", r)
    slow.sort()
    print("     503 answers: median %.0f ms, max %.0f ms" % (slow[5] * 1000, slow[-1] * 1000))
    # behaviour, not speed: a call that waited for the driver would take its 2 s deadline
    check(slow[5] < 1.0, "503 without waiting for the 2 s request deadline (median)", slow)
    # the background check (every 500 ms here) reports the failure, or a check that hangs
    wait_until("/health reports the failed check", lambda: (lambda h: h.status == 503 and h.data["last_check"]["ok"]
               is False and bool(h.data["last_check"]["error"]))(c.get("/health")), 15)
    expect(c.get("/health/live"), 200)  # the process is fine: no restart wanted
    writer.stop()
    check(writer.statuses.get(503, 0) > 0, "the writer saw the outage", writer.statuses)
    print("     writer: %s" % writer.statuses)

    # the rest of the outage without a single client request: the workers sit idle
    c.close()
    time.sleep(max(0.0, OUTAGE - (time.time() - t_down)))

    proxy.start()  # same port
    t_up = time.time()
    c = srv.client(timeout=30)
    took = wait_until("ready again", lambda: c.get("/health/ready").status == 200, RECOVERY_BOUND)
    print("     ready again %.1fs after the node came back (outage %.1fs)" % (took, t_up - t_down))

    # every worker's session is back with the first one (they reconnect together, not each
    # after its own backoff, which has grown to several seconds by now): bursts wider than
    # the worker pool all succeed soon after ready, and go on succeeding
    path = "/v1/channels/%d/messages/%s" % (ch, before["id"])
    wait_until("every worker serving", lambda: all(st == 200 for st in burst(srv, path, 2 * WORKERS)), 5)
    for i in range(3):
        statuses = burst(srv, path, 2 * WORKERS)
        check(all(st == 200 for st in statuses), "every worker serves %.1fs after ready (burst %d)"
              % (time.time() - t_up - took, i), statuses)
        time.sleep(0.5)
    print("     every worker serving (%d bursts of %d reads)" % (4, 2 * WORKERS))
    expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "after"}), 201)
    g = expect(c.get("/v1/channels/%d/messages/%s" % (ch, before["id"])), 200)
    check(g["content"] == "before", "data from before the outage", g)

    # nothing acknowledged is lost
    for mid, content in writer.acked.items():
        g = expect(c.get("/v1/channels/%d/messages/%s" % (wch, mid)), 200)
        check(g["content"] == content, "acknowledged write %s" % mid, g)
    print("     %d acknowledged writes all read back" % len(writer.acked))
    wait_until("/health ok", lambda: c.get("/health").status == 200, 10)
    c.close()


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
