#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Node loss through the service (issue 9, "Measure"): `msgstore serve` on the 4-node test cluster
(scripts/cassandra `cluster`: 127.0.1.1-3 in dc1, 127.0.1.4 in dc2), keyspace at RF dc1:3 +
dc2:1, reads and writes at LOCAL_QUORUM, under load of POST writers and GET readers through
HTTP. One of the three dc1 nodes (node3) is SIGKILLed. After mark-down, that is once

  - the surviving dc1 nodes' failure detectors list node3 as down (nodetool status: DN), and
  - the service's CQL sessions list it as down (msgstore_cql_host_up{host="127.0.1.3:9042"} 0
    for every session on /metrics),

every request started later must succeed (POST 201, GET 200): RF 3 at LOCAL_QUORUM needs two
replicas, and two are up. Then every acknowledged message (201) is read back through the
service while node3 is still down. Requests that failed before mark-down are counted and
printed, not asserted (a counter update led by the dead replica waits out the request timeout
until the others mark it down: docs/benchmarks.md). Behaviour only: no speed is asserted.
Finally node3 is restarted on its data so the cluster is whole for the next test.

  NODE_LOSS_LOAD_SECONDS   load before the kill (default 4)
  NODE_LOSS_AFTER_SECONDS  load after mark-down (default 10)
"""
import fcntl
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "e2e"))
from msgstore_e2e import (MSGSTORE, SOURCE_DIR, Background, Failure, Server, check,  # noqa: E402
                          read_back, run)

LOAD = float(os.environ.get("NODE_LOSS_LOAD_SECONDS", "4"))
AFTER = float(os.environ.get("NODE_LOSS_AFTER_SECONDS", "10"))
WRITERS = 8
READERS = 4
DC1 = ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
VICTIM = "cluster/node3"
VICTIM_ADDR = "127.0.1.3"


def cluster_home():
    """The state directory the running cluster was started from (whichever checkout)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        for a in args:
            if a.startswith(b"-Dcassandra.storagedir=") and a.endswith(b"/cluster/node3"):
                return a.split(b"=", 1)[1].decode()[:-len("/cluster/node3")]
    return None


def cassandra(home, *args, timeout=900):
    env = dict(os.environ, MSGSTORE_CASSANDRA_HOME=home, MSGSTORE_CASSANDRA_START_TIMEOUT="600")
    r = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "cassandra")] + list(args), env=env,
                       timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode(errors="replace")


class Log:
    """Every answer with the time its request started (monotonic) and its outcome."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []  # (start, seconds, what, ok, detail)

    def add(self, start, what, ok, detail):
        with self.lock:
            self.entries.append((start, time.monotonic() - start, what, ok, detail))


class Worker(Background):
    """A POST writer on its own channel, or a reader of the channels' latest pages and of
    acknowledged messages. A request fails when it does not answer 201/200 (503, a timeout
    and a broken connection all count)."""

    def __init__(self, srv, ch, log, writer, writers=()):
        self.srv, self.ch, self.log, self.writer, self.writers = srv, ch, log, writer, writers
        self.what = "worker of channel %d" % ch
        self.acked = {}  # id -> content (writers)
        Background.__init__(self)

    def _request(self, c, method, path, body=None):
        t0 = time.monotonic()
        try:
            r = c.request(method, path, body)
        except (OSError, http.client.HTTPException) as e:
            self.log.add(t0, method, False, "no answer: %r" % e)
            return None, True
        want = 201 if method == "POST" else 200
        self.log.add(t0, method, r.status == want, "%d %s" % (r.status, r.body[:200]))
        return r, False

    def work(self):
        c = self.srv.client(timeout=30)
        i = 0
        while self.running:
            i += 1
            if self.writer:
                content = "node loss %d/%d" % (self.ch, i)
                r, broken = self._request(c, "POST", "/v1/channels/%d/messages" % self.ch,
                                          {"sender_id": "7", "content": content})
                if r is not None and r.status == 201:
                    self.acked[r.data["id"]] = content
            else:
                w = self.writers[i % len(self.writers)]
                ids = list(w.acked)
                if i % 2 and ids:
                    path = "/v1/channels/%d/messages/%s" % (w.ch, ids[-1])
                else:
                    path = "/v1/channels/%d/messages" % w.ch
                r, broken = self._request(c, "GET", path)
            if broken:
                c.close()
                c = self.srv.client(timeout=30)
            elif r.status not in (200, 201):
                time.sleep(0.02)
        c.close()


def gossip_down(home, observer):
    """True when node `observer` lists node3 as DN (nodetool status)."""
    rc, out = cassandra(home, "nodetool", observer, "status", timeout=120)
    line = [ln for ln in out.splitlines() if VICTIM_ADDR in ln.split()[1:2]]
    return rc == 0 and bool(line) and line[0].startswith("DN")


def client_down(srv):
    """True when every CQL session of the service lists node3 as down."""
    c = srv.client(timeout=10)
    try:
        r = c.get("/metrics", validate=False)
    finally:
        c.close()
    if r.status != 200:
        return False
    text = r.body.decode() if isinstance(r.body, bytes) else r.body
    ups = re.findall(r'^msgstore_cql_host_up\{[^}]*host="%s:9042"[^}]*\} (\d+)' %
                     re.escape(VICTIM_ADDR), text, re.M)
    return bool(ups) and all(v == "0" for v in ups)


def setup():
    home = cluster_home()
    check(home is not None, "the 4-node cluster is running (scripts/cassandra ensure cluster)")
    # this test kills and restarts node3 of a cluster other checkouts may share: one at a time
    # (the lock test_cql_cluster takes too)
    lock = open(os.path.join(home, ".cluster-test.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return {"home": home, "lock": lock, "tmp": tempfile.mkdtemp(prefix="msgstore-node-loss-")}


def test_node_loss_through_serve(ctx):
    home = ctx["home"]
    ks = "msgstore_e2e_node_loss_%d" % os.getpid()
    env = {"SCYLLA_ENABLED": "true", "SCYLLA_CONTACT_POINTS": ",".join(DC1),
           "SCYLLA_LOCAL_DATACENTER": "dc1", "SCYLLA_KEYSPACE": ks,
           "SCYLLA_REPLICATION": "dc1:3,dc2:1", "SCYLLA_READ_CONSISTENCY": "LOCAL_QUORUM",
           "SCYLLA_WRITE_CONSISTENCY": "LOCAL_QUORUM", "MSGSTORE_WORKERS": "2",
           "MSGSTORE_LOG_LEVEL": "warn", "MSGSTORE_AUTH_METRICS": "false"}
    # as in production: the schema first (msgstore migrate), then the service. On a fresh
    # keyspace a replica may not have applied a new table yet when migrate reads it back
    # ("Unknown CF"): migrate waits for it, so one run must succeed.
    r = subprocess.run([MSGSTORE, "migrate"], env=dict(os.environ, **env), timeout=600,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 0, "msgstore migrate on the cluster", r.stdout.decode(errors="replace")[-3000:])
    srv = Server(ctx["tmp"], env=env, start_timeout=600)
    ctx["srv"] = srv
    log = Log()
    base = int(time.time() * 1000) % 10**9 * 1000
    writers = [Worker(srv, base + i, log, True) for i in range(WRITERS)]
    readers = [Worker(srv, base + 100 + i, log, False, writers) for i in range(READERS)]
    time.sleep(LOAD)
    acked_before = sum(len(w.acked) for w in writers)
    check(acked_before >= 20, "the writers were acknowledged before the kill", acked_before)

    t_kill = time.monotonic()
    rc, out = cassandra(home, "kill", VICTIM)
    check(rc == 0, "SIGKILL of node3", out)
    ctx["killed"] = True
    deadline = t_kill + 180
    seen = {"node1": False, "node2": False, "client": False}
    while not all(seen.values()):
        check(time.monotonic() < deadline, "node3 marked down within 180 s", seen)
        for n in ("node1", "node2"):
            if not seen[n]:
                seen[n] = gossip_down(home, "cluster/" + n)
        if not seen["client"]:
            seen["client"] = client_down(srv)
        time.sleep(0.5)
    t_down = time.monotonic()
    time.sleep(AFTER)
    for w in writers + readers:
        w.stop()

    entries = list(log.entries)
    after = [e for e in entries if e[0] >= t_down]
    failed_after = [e for e in after if not e[3]]
    failed_before = [e for e in entries if e[0] < t_down and not e[3]]
    acked = sum(len(w.acked) for w in writers)
    slow = max((e[1] for e in entries if t_kill <= e[0] < t_down), default=0)
    print("node loss: %d requests (%d POST acknowledged), node3 marked down %.1f s after the kill; "
          "%d failed before mark-down (slowest answer meanwhile %.1f s), %d after it (%d requests)" %
          (len(entries), acked, t_down - t_kill, len(failed_before), slow, len(failed_after),
           len(after)))
    for e in failed_before[:10]:
        print("  before mark-down: %s %.1f s after the kill, took %.1f s: %s" %
              (e[2], e[0] - t_kill, e[1], e[4]))
    check(len(after) >= 20, "load went on after mark-down", len(after))
    check(not failed_after, "no request fails after node3 is marked down",
          [(e[2], round(e[0] - t_down, 1), e[4]) for e in failed_after[:10]])

    # every acknowledged message, read back through the service while node3 is still down
    lost = read_back(srv, writers)
    print("read back %d acknowledged messages with node3 down: %d missing" % (acked, len(lost)))
    check(not lost, "every acknowledged message is readable", lost[:10])


def teardown(ctx):
    if ctx is None:
        return
    try:
        srv = ctx.get("srv")
        if srv is not None:
            rc = srv.stop()
            if rc != 0:
                print(srv.log()[-3000:])
                raise Failure("msgstore serve exited with %s" % rc)
    finally:
        if ctx.get("killed"):
            rc, out = cassandra(ctx["home"], "restart", VICTIM)
            if rc != 0:
                print(out[-3000:])
        fcntl.flock(ctx["lock"], fcntl.LOCK_UN)


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
