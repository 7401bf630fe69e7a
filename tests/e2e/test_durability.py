#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Nothing acknowledged is lost when a process dies by SIGKILL under write load.

  DURABILITY_BACKEND=sqlite     `msgstore serve` on SQLite is SIGKILLed while 8 writers
                                POST; a new server on the same file reads back every message
                                that was answered 201 (and `PRAGMA integrity_check` is ok).
  DURABILITY_BACKEND=cassandra  `msgstore serve` on the faults node (127.0.0.4, production
                                durability: commitlog_sync batch, fsync on, schema flushed,
                                see scripts/cassandra); the NODE is SIGKILLed while 8 writers
                                POST, restarted on its data, and every message answered 201
                                is read back through the server (which recovers by itself).

Writers record every answer: 201 counts as acknowledged, 503 (the node is away) and broken
connections (the server is gone) do not; anything else fails the test, and so does an
exception in a writer thread. The node's durability is checked before it is killed (its
command line has no -Dcassandra.skip_sync, its cassandra.yaml says commitlog_sync: batch).

  DURABILITY_LOAD_SECONDS  load before the kill (default 4)
"""
import fcntl
import http.client
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import SOURCE_DIR, Background, Failure, Server, check, read_back, run  # noqa: E402

BACKEND = os.environ.get("DURABILITY_BACKEND", "sqlite")
LOAD = float(os.environ.get("DURABILITY_LOAD_SECONDS", "4"))
WRITERS = 8
FAULTS = "127.0.0.4"


class Writer(Background):
    """POSTs to its own channel until stopped; keeps what was acknowledged."""

    def __init__(self, srv, ch):
        self.srv, self.ch = srv, ch
        self.what = "writer of channel %d" % ch
        self.acked = {}  # id -> content
        self.refused = 0
        self.broken = 0
        Background.__init__(self)

    def work(self):
        c = self.srv.client(timeout=30)
        i = 0
        while self.running:
            i += 1
            content = "durable %d/%d" % (self.ch, i)
            try:
                r = c.post("/v1/channels/%d/messages" % self.ch, {"sender_id": "7", "content": content})
            except (OSError, http.client.HTTPException):
                self.broken += 1  # no answer: not acknowledged
                c.close()
                time.sleep(0.05)
                c = self.srv.client(timeout=30)
                continue
            if r.status == 201:
                self.acked[r.data["id"]] = content
            elif r.status == 503:
                self.refused += 1
                time.sleep(0.02)
            else:
                raise Failure("unexpected answer to a POST: %r" % r)
        c.close()


def wait_ready(srv, timeout):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        c = srv.client(timeout=10)
        try:
            last = c.get("/health/ready")
            if last.status == 200:
                return
        except (OSError, http.client.HTTPException) as e:
            last = e
        finally:
            c.close()
        time.sleep(0.5)
    raise Failure("server not ready within %ds: %r" % (timeout, last))


# ---------------------------------------------------------------- SQLite

def sqlite_setup():
    tmp = tempfile.mkdtemp(prefix="msgstore-durable-")
    return {"tmp": tmp}


def test_sqlite_sigkill_under_load(ctx):
    if BACKEND != "sqlite":
        return
    tmp = ctx["tmp"]
    srv = Server(tmp, env={"MSGSTORE_WORKERS": "2"})
    base = int(time.time() * 1000) % 10**9 * 1000
    writers = [Writer(srv, base + i) for i in range(WRITERS)]
    time.sleep(LOAD)
    acked_before = sum(len(w.acked) for w in writers)
    rc = srv.stop(signal_kill())
    check(rc == -9, "msgstore serve died by SIGKILL", rc)
    for w in writers:
        w.stop()
    acked = sum(len(w.acked) for w in writers)
    check(acked_before >= 50 and acked >= acked_before, "the writers were acknowledged", acked_before, acked)
    db = os.path.join(tmp, "e2e.db")
    con = sqlite3.connect(db)
    check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity_check ok after SIGKILL")
    con.close()
    srv2 = Server(tmp, env={"MSGSTORE_WORKERS": "2"})
    try:
        lost = read_back(srv2, writers)
    finally:
        rc2 = srv2.stop()
    print("sqlite: %d acknowledged, %d lost, %d answers cut by the kill" %
          (acked, len(lost), sum(w.broken for w in writers)))
    check(not lost, "every acknowledged message is readable after SIGKILL", lost[:10])
    check(rc2 == 0, "the second server exits 0 on SIGTERM", rc2, srv2.log()[-2000:])


def signal_kill():
    import signal
    return signal.SIGKILL


# ---------------------------------------------------------------- Cassandra

def faults_home():
    """The state directory of the running faults node (whichever checkout started it)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        for a in args:
            if a.startswith(b"-Dcassandra.storagedir=") and a.endswith(b"/faults"):
                return a.split(b"=", 1)[1].decode()[:-len("/faults")], args
    return None, None


def cassandra_script(home, *args, timeout=900):
    env = dict(os.environ, MSGSTORE_CASSANDRA_HOME=home, MSGSTORE_CASSANDRA_START_TIMEOUT="600")
    r = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "cassandra")] + list(args), env=env,
                       timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode(errors="replace")


def node_is_durable(home, args):
    if args is None or any(a.startswith(b"-Dcassandra.skip_sync=true") or
                           a.startswith(b"-Dcassandra.test.flush_local_schema_changes=false") for a in args):
        return False
    with open(os.path.join(home, "faults", "conf", "cassandra.yaml")) as f:
        return "\ncommitlog_sync: batch\n" in f.read()


def cassandra_setup():
    home, args = faults_home()
    if home is None:
        home = os.environ.get("MSGSTORE_CASSANDRA_HOME", os.path.join(SOURCE_DIR, "build", "cassandra"))
    # the lock the fault tests share: nobody else kills the node meanwhile
    lock = open(os.path.join(home, ".faults-test.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    ctx = {"tmp": tempfile.mkdtemp(prefix="msgstore-durable-"), "home": home, "lock": lock}
    cassandra_script(home, "resume", "faults")  # a failed run may have left it paused
    home2, args = faults_home()
    if home2 is None or not node_is_durable(home, args):
        # down, or started by an older script without production durability: restart it on
        # its data with this checkout's settings (commitlog batch, fsync, schema flushed)
        rc, out = cassandra_script(home, "restart", "faults")
        check(rc == 0, "restart of the faults node", out[-3000:])
        home2, args = faults_home()
    check(node_is_durable(home, args), "the faults node runs with production durability", home)
    return ctx


def test_cassandra_node_sigkill_under_load(ctx):
    if BACKEND != "cassandra":
        return
    home = ctx["home"]
    env = {"SCYLLA_ENABLED": "true", "SCYLLA_CONTACT_POINTS": FAULTS,
           "SCYLLA_KEYSPACE": "msgstore_e2e_durable", "MSGSTORE_WORKERS": "2",
           "SCYLLA_REQUEST_TIMEOUT": "5s", "MSGSTORE_LOG_LEVEL": "warn"}
    srv = Server(ctx["tmp"], env=env, start_timeout=300)
    ctx["srv"] = srv
    base = int(time.time() * 1000) % 10**9 * 1000
    writers = [Writer(srv, base + i) for i in range(WRITERS)]
    time.sleep(LOAD)
    acked_before = sum(len(w.acked) for w in writers)
    rc, out = cassandra_script(home, "kill", "faults")
    check(rc == 0, "SIGKILL of the faults node", out)
    time.sleep(2)  # writers keep going against the dead node: 503, nothing acknowledged
    for w in writers:
        w.stop()
    acked = sum(len(w.acked) for w in writers)
    refused = sum(w.refused for w in writers)
    check(acked_before >= 50, "the writers were acknowledged before the kill", acked_before)
    rc, out = cassandra_script(home, "restart", "faults")
    check(rc == 0, "restart of the faults node on its data", out[-3000:])
    wait_ready(srv, 180)
    lost = read_back(srv, writers)
    print("cassandra: %d acknowledged (%d before the kill), %d refused with 503 while down, %d lost" %
          (acked, acked_before, refused, len(lost)))
    check(not lost, "every acknowledged message is readable after the node's SIGKILL", lost[:10])


def setup():
    return cassandra_setup() if BACKEND == "cassandra" else sqlite_setup()


def teardown(ctx):
    if ctx is None:
        return
    srv = ctx.get("srv")
    if srv is not None:
        rc = srv.stop()
        if rc != 0:
            print(srv.log()[-3000:])
            raise Failure("msgstore serve exited with %s" % rc)
    if "home" in ctx:
        # leave the node up for the next test
        if faults_home()[0] is None:
            cassandra_script(ctx["home"], "restart", "faults")
        fcntl.flock(ctx["lock"], fcntl.LOCK_UN)
        ctx["lock"].close()
    shutil.rmtree(ctx["tmp"], ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
