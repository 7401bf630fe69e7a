#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the server's defences (issue 10: attacks and limits).

- more worker threads than 64: WebSocket and SSE on every worker;
- a WebSocket client that never reads: the server's queue for it stays
  bounded and the connection is closed;
- request smuggling: Content-Length with Transfer-Encoding, two different
  Content-Length values: 400 and the connection closed;
- /health and /metrics need a token in the production profile, the probes
  do not, and /health/ready answers from a short cache;
- an SSE event over the stream's frame limit never corrupts the stream;
- the JSON access log stays valid UTF-8 whatever bytes the path has;
- the Redis bridge: AUTH, a database and TLS (rediss://, a CA made by the
  test, a wrong CA reported in /health).

Real `msgstore serve` processes on free ports, raw sockets. Run it against
the ASan build too (MSGSTORE_BINARY_DIR=build-asan): heap errors abort the
server and the test sees it. Environment: MSGSTORE_BINARY_DIR,
MSGSTORE_SOURCE_DIR.
"""
import http.client
import json
import re
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtclient import Msgstore, SseClient, WsClient, free_port, wait_for  # noqa: E402

SOURCE_DIR = os.environ.get("MSGSTORE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_DIR = os.environ.get("MSGSTORE_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
MSGSTORE = os.path.join(BINARY_DIR, "src", "cli", "msgstore")
TOKEN = "hardening-token-0123456789abcdef"
H = "127.0.0.1"


def start(workdir, name, **env):
    e = {
        "MSGSTORE_API_TOKENS": TOKEN,
        "MSGSTORE_SQLITE_PATH": os.path.join(workdir, f"{name}.db"),
        "MSGSTORE_WORKERS": "2",
        "LSAN_OPTIONS": os.environ.get(
            "LSAN_OPTIONS", "suppressions=" + os.path.join(SOURCE_DIR, "tests", "e2e", "lsan.supp")),
    }
    e.update(env)
    return Msgstore(MSGSTORE, workdir, env=e, name=name)


def post(srv, channel, content, sender="7"):
    st, body = srv.request("POST", f"/v1/channels/{channel}/messages",
                           {"sender_id": sender, "content": content}, token=TOKEN)
    assert st == 201, (st, body)
    return body


def raw(port, data, timeout=5.0):
    """Sends data on a fresh connection; returns everything read until the server closes
    (or the timeout) and whether the server closed the connection."""
    s = socket.create_connection((H, port), timeout=timeout)
    s.sendall(data)
    out = b""
    closed = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        out += chunk
    s.close()
    return out, closed


def statuses(data):
    """Status codes of the HTTP/1.1 responses in data."""
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


class Server(unittest.TestCase):
    """Common setup: one server of the class's own in a temporary directory."""
    ENV = {}

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hardening_")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.srv = start(cls.dir, cls.__name__.lower(), **cls.ENV)
        cls.addClassCleanup(cls.stop_server)

    @classmethod
    def stop_server(cls):
        rc = cls.srv.stop()
        # An ASan report or a crash is a failure of the whole class.
        assert rc == 0, f"server exit code {rc}: {cls.srv.tail()}"

    def alive(self):
        st, _ = self.srv.request("GET", "/health/live")
        self.assertEqual(st, 200, self.srv.tail())


class ManyWorkers(Server):
    """MSGSTORE_WORKERS=100: the realtime side had 64 slots (heap overflow past them)."""
    ENV = {"MSGSTORE_WORKERS": "100"}

    def test_sse_and_ws_on_every_worker(self):
        # Connections spread over the 100 workers (SO_REUSEPORT): with 40 of
        # each, some land on workers >= 64 (all below: probability 0.64^80).
        channel = 4242
        sse = [SseClient(H, self.srv.port, f"/v1/channels/{channel}/events", token=TOKEN)
               for _ in range(40)]
        wss = []
        for _ in range(40):
            c = WsClient(H, self.srv.port, token=TOKEN)
            self.assertEqual(c.status, 101)
            self.assertEqual(c.recv_json()["type"], "hello")
            c.send_json({"op": "subscribe", "channels": [str(channel)]})
            m, _ = c.recv_until(lambda m: m["type"] in ("subscribed", "error"))
            self.assertEqual(m["type"], "subscribed", m)
            wss.append(c)
        for s in sse:
            self.assertEqual(s.status, 200)
        msg = post(self.srv, channel, "to every worker")
        for s in sse:
            ev = s.next_event(timeout=10)
            self.assertEqual(ev["event"], "message.created")
            self.assertEqual(json.loads(ev["data"])["data"]["id"], msg["id"])
            s.close()
        for c in wss:
            m, _ = c.recv_until(lambda m: m["type"] == "message.created", timeout=10)
            self.assertEqual(m["data"]["id"], msg["id"])
            c.close()
        self.alive()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def metric(srv, name):
    st, body = srv.request("GET", "/metrics", token=TOKEN)
    assert st == 200, st
    text = body.decode() if isinstance(body, bytes) else str(body)
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ws_frame(opcode, payload):
    """A masked client frame (RFC 6455 5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return head + mask + body


class WebSocketThatNeverReads(Server):
    """A client that sends pings (WebSocket PING frames, and app-level pings with a 60 KB id)
    and never reads: the server's queue for it stays bounded (it stops reading the client)
    and the connection is closed. It used to queue every answer: 512 MB and more."""
    ENV = {"MSGSTORE_WS_MAX_QUEUED": "262144"}

    def test_bounded_and_closed(self):
        pid = self.srv.proc.pid
        before = rss_bytes(pid)
        overflows = metric(self.srv, "msgstore_http_ws_queue_overflows_total")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
        s.connect((H, self.srv.port))
        s.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        self.assertIn(b" 101 ", head.split(b"\r\n")[0])
        app_ping = ws_frame(0x1, json.dumps({"op": "ping", "id": "x" * 60000}).encode())
        pings = ws_frame(0x9, b"") * 200
        s.settimeout(5)
        sent = 0
        stopped = None
        for _ in range(3000):  # 180 MB of app pings, 600,000 PING frames
            try:
                s.sendall(app_ping + pings)
                sent += len(app_ping) + len(pings)
            except socket.timeout:
                stopped = "the server stopped reading"
                break
            except (BrokenPipeError, ConnectionResetError):
                stopped = "the server closed the connection"
                break
        self.assertIsNotNone(stopped, f"the server read all {sent} bytes and answered none")
        grown = rss_bytes(pid) - before
        self.assertLess(grown, 64 * 1024 * 1024, f"server RSS grew by {grown} bytes")
        # Reading now: what the kernel holds, then the end of the connection.
        s.settimeout(30)
        closed = False
        try:
            while s.recv(65536):
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        s.close()
        self.assertTrue(closed)
        self.assertEqual(metric(self.srv, "msgstore_http_ws_queue_overflows_total"), overflows + 1)
        # others are served as before
        c = WsClient(H, self.srv.port, token=TOKEN)
        self.assertEqual(c.recv_json()["type"], "hello")
        c.send_json({"op": "ping", "id": "small"})
        self.assertEqual(c.recv_json(), {"type": "pong", "id": "small"})
        c.send_json({"op": "ping", "id": "y" * 200})
        m = c.recv_json()
        self.assertEqual((m["type"], m["code"]), ("error", "invalid_argument"), m)
        c.close()


def get(port, path, token=None):
    c = http.client.HTTPConnection(H, port, timeout=10)
    c.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


OPS_TOKEN = "monitoring-token-0123456789abcdef"


class ProductionHealth(Server):
    """The production profile: /health and /metrics need a token (an API or an ops token),
    /health/live and /health/ready stay open, and ready answers from a short cache."""
    ENV = {"MSGSTORE_PROFILE": "production", "MSGSTORE_OPS_TOKENS": OPS_TOKEN,
           "MSGSTORE_READY_CACHE": "60s", "MSGSTORE_LOG_LEVEL": "warn"}

    def test_details_need_a_token(self):
        port = self.srv.port
        for path in ("/health", "/metrics"):
            st, body = get(port, path)
            self.assertEqual(st, 401, (path, body))
            self.assertNotIn(b"sqlite", body)
            self.assertNotIn(self.dir.encode(), body)  # no file path
            self.assertEqual(get(port, path, "not-a-valid-token-at-all")[0], 401)
            self.assertEqual(get(port, path, TOKEN)[0], 200, path)
            self.assertEqual(get(port, path, OPS_TOKEN)[0], 200, path)
        st, body = get(port, "/health", OPS_TOKEN)
        self.assertIn(self.dir.encode(), body)  # the details are there for the token holder
        # the ops token is for monitoring only
        self.assertEqual(get(port, "/v1/channels/1/messages", OPS_TOKEN)[0], 401)
        self.assertEqual(get(port, "/v1/channels/1/messages", TOKEN)[0], 200)
        for path in ("/health/live", "/health/ready"):
            self.assertEqual(get(port, path)[0], 200, path)

    def test_ready_is_cached(self):
        port = self.srv.port

        def pings():
            st, body = get(port, "/metrics", OPS_TOKEN)
            self.assertEqual(st, 200)
            m = re.search(rb'msgstore_store_ops_total\{backend="sqlite",op="ping"\} (\d+)', body)
            return int(m.group(1)) if m else 0
        self.assertEqual(get(port, "/health/ready")[0], 200)
        before = pings()
        for _ in range(50):
            st, body = get(port, "/health/ready")
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(body)["status"], "ready")
        # 50 unauthenticated calls within the 60 s cache: no database round trip
        # (the background checker may ping once meanwhile)
        self.assertLessEqual(pings() - before, 1)


def redis_ctl(cmd, port, *args):
    subprocess.run([os.path.join(SOURCE_DIR, "scripts", "redis"), cmd, str(port), *args],
                   check=True, stdout=subprocess.DEVNULL)


class Resp:
    """A minimal Redis client (RESP2) over a socket: what the test needs to forge messages."""

    def __init__(self, port):
        self.sock = socket.create_connection((H, port), timeout=5)
        self.f = self.sock.makefile("rb")

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()

    def _read(self):
        line = self.f.readline().rstrip(b"\r\n")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            return [self._read() for _ in range(int(rest))]
        raise AssertionError(f"bad reply {line!r}")

    def close(self):
        self.sock.close()


def health(srv):
    return json.loads(get(srv.port, "/health", TOKEN)[1])


def make_tls_files(d):
    """A test CA, a server certificate it signs for IP 127.0.0.1, and another CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=msgstore-test-ca"],
                ["req", "-x509", *ec, "-keyout", "other.key", "-out", "other.pem", "-days", "2",
                 "-subj", "/CN=other-ca"],
                ["req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]):
        subprocess.run(["openssl", *cmd], cwd=d, check=True, capture_output=True)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(["openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
                    "ca.key", "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile",
                    "ext.cnf"], cwd=d, check=True, capture_output=True)


class RedisPair(unittest.TestCase):
    """Two instances sharing a redis-server of the test's own on a free port."""
    REDIS_ARGS = ()
    URL_AUTH = ""
    DB = ""
    TLS = False  # rediss:// to a TLS port of the server (its plain port stays for the test)

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hardening_redis_")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.rport = free_port()
        args, env, scheme, port = list(cls.REDIS_ARGS), {}, "redis", cls.rport
        if cls.TLS:
            make_tls_files(cls.dir)
            port = cls.tls_port = free_port()
            args += ["--tls-port", str(port), "--tls-cert-file", os.path.join(cls.dir, "srv.pem"),
                     "--tls-key-file", os.path.join(cls.dir, "srv.key"), "--tls-ca-cert-file",
                     os.path.join(cls.dir, "ca.pem"), "--tls-auth-clients", "no"]
            env["MSGSTORE_REDIS_TLS_CA_FILE"] = os.path.join(cls.dir, "ca.pem")
            scheme = "rediss"
        redis_ctl("start", cls.rport, *args)
        cls.addClassCleanup(redis_ctl, "stop", cls.rport)
        url = f"{scheme}://{cls.URL_AUTH}127.0.0.1:{port}{cls.DB}"
        cls.a = start(cls.dir, "a", MSGSTORE_REDIS_URL=url, MSGSTORE_WORKER_ID="31", **env)
        cls.addClassCleanup(cls.stop_server, cls.a)
        cls.b = start(cls.dir, "b", MSGSTORE_REDIS_URL=url, MSGSTORE_WORKER_ID="32", **env)
        cls.addClassCleanup(cls.stop_server, cls.b)
        for srv in (cls.a, cls.b):
            assert wait_for(lambda: health(srv)["realtime"]["redis"] == "up", 15), health(srv)

    @staticmethod
    def stop_server(srv):
        rc = srv.stop()
        assert rc == 0, f"server exit code {rc}: {srv.tail()}"

    def sse_following(self, channel):
        """An SSE stream on A whose shard A is subscribed to (an event from B came through)."""
        sse = SseClient(H, self.a.port, f"/v1/channels/{channel}/events", token=TOKEN)
        self.assertEqual(sse.status, 200)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            probe = post(self.b, channel, "probe")
            try:
                ev = sse.next_event(timeout=1)
            except socket.timeout:
                continue
            self.assertEqual(json.loads(ev["data"])["data"]["id"], probe["id"])
            # drain the probes still on their way
            while True:
                try:
                    sse.next_event(timeout=0.5)
                except socket.timeout:
                    return sse
        self.fail("no event from B reached A")


class ForgedRedisEvents(RedisPair):
    """What comes from Redis is checked: a PUBLISH with embedded newlines used to forge a
    separate SSE event (chosen id and kind) at a subscriber."""

    def test_forged_events_are_dropped(self):
        channel = 9191
        sse = self.sse_following(channel)
        before = metric(self.a, "msgstore_rt_redis_invalid_total")
        ch = str(channel)
        good_json = ('{"type":"message.created","channel":"%s","position":"123","data":{}}' % ch)
        forged = [
            # a raw newline: the rest would have been a second SSE event
            ("E 00000000000000aa 0 %s 123 0\n" % ch) + good_json +
            '\n\nid: 999\nevent: message.deleted\ndata: {"type":"message.deleted"}',
            # the JSON's type is not the header's kind
            ("E 00000000000000aa 2 %s 123 0\n" % ch) + good_json,
            # another channel in the JSON than in the header
            ("E 00000000000000aa 0 %s 123 0\n" % ch) + good_json.replace(ch, "1"),
            # not JSON
            ("E 00000000000000aa 0 %s 123 0\n" % ch) + "{not json",
            # a header that is not ours
            ("E  00000000000000aa 0 %s 123 0\n" % ch) + good_json,
        ]
        r = Resp(self.rport)
        for text in forged:
            for shard in range(64):
                self.assertIsInstance(r("PUBLISH", f"msgstore:rt:{shard}", text), int)
        r.close()
        real = post(self.b, channel, "the real one")
        ev = sse.next_event(timeout=10)
        sse.close()
        self.assertNotEqual(ev["id"], "123", "a forged event reached the subscriber")
        self.assertEqual(ev["event"], "message.created")
        self.assertEqual(json.loads(ev["data"])["data"].get("id"), real["id"])
        self.assertGreaterEqual(metric(self.a, "msgstore_rt_redis_invalid_total") - before,
                                len(forged))


class RedisWithAuthAndDb(RedisPair):
    """AUTH with an ACL user and password, and a database number, from MSGSTORE_REDIS_URL."""
    REDIS_ARGS = ("--requirepass", "default-secret-pw", "--databases", "16",
                  "--user", "app", "on", ">app-secret-pw", "~*", "&*", "+@all")
    URL_AUTH = "app:app-secret-pw@"
    DB = "/5"

    def test_events_and_keys(self):
        channel = 5151
        sse = self.sse_following(channel)  # events cross through the authenticated Redis
        sse.close()
        st, _ = self.a.request("POST", f"/v1/channels/{channel}/typing", {"user_id": "77"},
                               token=TOKEN)
        self.assertEqual(st, 204)
        r = Resp(self.rport)
        self.assertIsInstance(r("PING"), RuntimeError)  # NOAUTH: the server needs a password
        self.assertEqual(r("AUTH", "app", "app-secret-pw"), "OK")
        key = f"msgstore:typing:{channel}:77"
        self.assertTrue(wait_for(lambda: r("SELECT", 5) == "OK" and r("EXISTS", key) == 1, 5))
        self.assertEqual(r("SELECT", 0), "OK")
        self.assertEqual(r("EXISTS", key), 0)  # in db 5, not 0
        r.close()
        for srv in (self.a, self.b):
            self.assertNotIn("app-secret-pw", srv.tail())

    def test_requirepass_of_the_default_user(self):
        d = tempfile.mkdtemp(prefix="hardening_defaultpw_", dir=self.dir)
        srv = start(d, "e", MSGSTORE_REDIS_URL=f"redis://:default-secret-pw@127.0.0.1:{self.rport}",
                    MSGSTORE_WORKER_ID="34")
        try:
            self.assertTrue(wait_for(lambda: health(srv)["realtime"]["redis"] == "up", 15),
                            health(srv))
        finally:
            self.stop_server(srv)

    def test_wrong_password_is_reported(self):
        d = tempfile.mkdtemp(prefix="hardening_badpw_", dir=self.dir)
        srv = start(d, "c", MSGSTORE_REDIS_URL=f"redis://app:wrong-pw@127.0.0.1:{self.rport}/5",
                    MSGSTORE_WORKER_ID="33")
        try:
            h = wait_for(lambda: (lambda x: x if x["realtime"].get("redis_error") else None)(
                health(srv)), 10)
            self.assertIsNotNone(h)
            self.assertNotEqual(h["realtime"]["redis"], "up")
            self.assertIn("WRONGPASS", h["realtime"]["redis_error"])
            self.assertNotIn("wrong-pw", json.dumps(h))
        finally:
            self.stop_server(srv)



class RedisOverTls(RedisPair):
    """rediss://: the same AUTH and database over TLS, the server's certificate verified
    against MSGSTORE_REDIS_TLS_CA_FILE and the address in the URL."""
    REDIS_ARGS = RedisWithAuthAndDb.REDIS_ARGS
    URL_AUTH = "app:app-secret-pw@"
    DB = "/5"
    TLS = True

    def test_events_cross_over_tls(self):
        sse = self.sse_following(6161)  # an event published by B reached A's subscriber
        sse.close()
        for srv in (self.a, self.b):
            self.assertNotIn("app-secret-pw", srv.tail())

    def test_wrong_ca_is_reported(self):
        d = tempfile.mkdtemp(prefix="hardening_tls_", dir=self.dir)
        srv = start(d, "c", MSGSTORE_REDIS_URL=f"rediss://app:app-secret-pw@127.0.0.1:"
                    f"{self.tls_port}/5", MSGSTORE_WORKER_ID="35",
                    MSGSTORE_REDIS_TLS_CA_FILE=os.path.join(self.dir, "other.pem"))
        try:
            h = wait_for(lambda: (lambda x: x if x["realtime"].get("redis_error") else None)(
                health(srv)), 10)
            self.assertIsNotNone(h)
            self.assertNotEqual(h["realtime"]["redis"], "up")
            self.assertIn("certificate verification failed", h["realtime"]["redis_error"])
            self.assertNotIn("app-secret-pw", json.dumps(h))
        finally:
            self.stop_server(srv)

    def test_unreadable_ca_file_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="hardening_tls_", dir=self.dir)
        with self.assertRaises(RuntimeError) as cm:
            start(d, "d", MSGSTORE_REDIS_URL=f"rediss://app:app-secret-pw@127.0.0.1:{self.tls_port}",
                  MSGSTORE_REDIS_TLS_CA_FILE=os.path.join(d, "missing.pem"))
        self.assertIn("CA file", str(cm.exception))
        self.assertNotIn("app-secret-pw", str(cm.exception))


class Smuggling(Server):
    """RFC 9112 §6.1, §6.3: framing that a proxy in front may read otherwise gets 400 and a
    closed connection; what follows on the connection is never served."""

    SECOND = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"

    def refused(self, request, why):
        data, closed = raw(self.srv.port, request + self.SECOND)
        self.assertEqual(statuses(data), [400], data)
        self.assertTrue(closed, "connection left open")
        body = data.partition(b"\r\n\r\n")[2]
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "invalid_argument")
        self.assertIn(why, err["message"])

    def test_content_length_and_transfer_encoding(self):
        body = b"5\r\nhello\r\n0\r\n\r\n"
        req = (b"POST /v1/channels/1/messages HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
               b"Content-Type: application/json\r\n"
               b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        self.refused(req, "both Transfer-Encoding and Content-Length")
        # the other order
        req = (b"POST /v1/channels/1/messages HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + body)
        self.refused(req, "both Transfer-Encoding and Content-Length")

    def test_two_content_lengths(self):
        req = (b"POST /v1/channels/1/messages HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\n"
               b"Content-Length: 2\r\ncontent-length: 40\r\n\r\n{}")
        self.refused(req, "two different Content-Length values")

    def test_same_content_length_twice_and_pipelining_still_work(self):
        req = (b"GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               b"Content-Length: 0\r\n\r\n" + self.SECOND +
               b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, closed = raw(self.srv.port, req)
        self.assertEqual(statuses(data), [200, 200, 200], data)
        # a smuggling head behind a good one on the same connection is refused too
        bad = (b"POST /v1/channels/1/messages HTTP/1.1\r\nHost: x\r\n"
               b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        data, closed = raw(self.srv.port, self.SECOND + bad + self.SECOND)
        self.assertEqual(statuses(data), [200, 400], data)
        self.assertTrue(closed)
        self.alive()


class LargeEvents(Server):
    """An SSE event over the stream's 1 MiB queue limit goes out whole: the events around it
    stay intact (it used to lose its data line after writing its header lines)."""
    ENV = {"MSGSTORE_MAX_CONTENT_CHARS": "1000000", "MSGSTORE_MAX_BODY_BYTES": "8388608"}

    def test_sse_event_over_one_mib(self):
        channel = 77
        sse = SseClient(H, self.srv.port, f"/v1/channels/{channel}/events", token=TOKEN)
        self.assertEqual(sse.status, 200)
        small1 = post(self.srv, channel, "before")
        big_text = "\u00e9" * 700000  # 1.4 MB of UTF-8 in the event
        big = post(self.srv, channel, big_text)
        small2 = post(self.srv, channel, "after")
        got = []
        for _ in range(3):
            ev = sse.next_event(timeout=20)
            self.assertEqual(ev["event"], "message.created", ev["event"])
            got.append(json.loads(ev["data"]))  # a corrupted stream does not parse
        sse.close()
        self.assertEqual([g["data"]["id"] for g in got], [small1["id"], big["id"], small2["id"]])
        self.assertEqual(got[1]["data"]["content"], big_text)
        self.alive()

    def test_large_events_behind_a_client_that_reads_late(self):
        # Posted while the client does not read, through a small receive window: the
        # stream's queue fills behind the socket, so a large event finds bytes queued
        # before it and waits for the queue to drain. Every event arrives whole, in order.
        channel = 78
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
        s.connect((H, self.srv.port))
        s.sendall((f"GET /v1/channels/{channel}/events HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())
        texts = ["\u00e9" * 600000, "small 1", "\u00e8" * 600000, "small 2", "\u00ea" * 600000,
                 "small 3", "\u00eb" * 600000]
        ids = [post(self.srv, channel, t)["id"] for t in texts]
        sse = SseClient.__new__(SseClient)  # its parser, on this socket
        sse.sock, sse.raw, sse.text, sse.ended, sse.last_id = s, b"", b"", False, None
        s.settimeout(20)
        while b"\r\n\r\n" not in sse.raw:
            sse.raw += s.recv(65536)
        head, sse.raw = sse.raw.split(b"\r\n\r\n", 1)
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        sse.chunked = b"chunked" in head.lower()
        for want_id, want_text in zip(ids, texts):
            ev = sse.next_event(timeout=20)
            self.assertEqual(ev["event"], "message.created")
            data = json.loads(ev["data"])["data"]
            self.assertEqual((data["id"], data["content"]), (want_id, want_text))
        s.close()
        self.alive()


class AccessLog(Server):
    """The JSON access log is valid UTF-8 JSON whatever bytes the request path has."""
    ENV = {"MSGSTORE_LOG_FORMAT": "json", "MSGSTORE_LOG_LEVEL": "info"}

    def test_path_bytes_not_utf8(self):
        path = b"/v1/nothing/\xff\xc3\x28-\xc3\xa9-\xed\xa0\x80-\xf0\x9f\x98\x80-end"
        data, _ = raw(self.srv.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
        self.assertEqual(statuses(data), [404], data)
        self.srv.log.flush()

        def logged():
            with open(self.srv.log_path, "rb") as f:
                lines = f.read().splitlines()
            return [ln for ln in lines if b"/v1/nothing/" in ln]
        lines = wait_for(logged, timeout=5)
        self.assertEqual(len(lines), 1, lines)
        entry = json.loads(lines[0].decode("utf-8"))  # strict: raises on invalid UTF-8
        # valid sequences kept (é, 😀), the rest percent-encoded byte by byte
        self.assertEqual(entry["path"],
                         "/v1/nothing/%FF%C3(-\u00e9-%ED%A0%80-\U0001f600-end")


if __name__ == "__main__":
    unittest.main(verbosity=2)
