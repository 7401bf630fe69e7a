#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of real-time delivery with real clients against running servers.

- one `msgstore serve`: WebSocket and SSE subscriptions, every event kind,
  failed writes publish nothing, resume and resync, bad input, auth, typing
  and presence, a slow consumer that does not read, 1000 subscribers;
- two instances and a redis-server: an event posted on one reaches
  subscribers of the other;
- two instances and a redis-server of their own, killed (SIGKILL) and
  restarted mid-test: local delivery goes on, /health says so, the bridge
  reconnects by itself and subscribers get a resync.

Each Redis is started by the test on a free port through scripts/redis:
other checkouts on the same machine run these tests at the same time, and
the fixture's fixed port would be shared with them. Only the Python standard
library. Environment: MSGSTORE_BINARY_DIR (the build), MSGSTORE_SOURCE_DIR,
MSGSTORE_REDIS_HOME (scripts/redis state).
"""
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time
import shutil
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtclient import Msgstore, SseClient, WsClient, WsClosed, free_port, wait_for  # noqa: E402

SOURCE_DIR = os.environ.get("MSGSTORE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_DIR = os.environ.get("MSGSTORE_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
MSGSTORE = os.path.join(BINARY_DIR, "src", "cli", "msgstore")
TOKEN = "rt-e2e-token-0123456789abcdef"
H = "127.0.0.1"
MAX_BODY = 512 * 1024


def start(workdir, name, **env):
    e = {
        "MSGSTORE_API_TOKENS": TOKEN,
        "MSGSTORE_SQLITE_PATH": os.path.join(workdir, f"{name}.db"),
        "MSGSTORE_WORKERS": "2",
    }
    e.update(env)
    return Msgstore(MSGSTORE, workdir, env=e, name=name)


def ws(srv, **kw):
    c = WsClient(H, srv.port, token=TOKEN, **kw)
    assert c.status == 101, c.status
    hello = c.recv_json()
    assert hello["type"] == "hello", hello
    return c


def subscribe(c, channels, since=None):
    req = {"op": "subscribe", "channels": [str(x) for x in channels]}
    if since is not None:
        req["since"] = since
    c.send_json(req)
    m, skipped = c.recv_until(lambda m: m["type"] in ("subscribed", "error"))
    assert m["type"] == "subscribed", m
    return skipped


def post(srv, channel, content, sender="7"):
    st, body = srv.request("POST", f"/v1/channels/{channel}/messages",
                           {"sender_id": sender, "content": content}, token=TOKEN)
    assert st == 201, (st, body)
    return body


def redis_ctl(cmd, port):
    subprocess.run([os.path.join(SOURCE_DIR, "scripts", "redis"), cmd, str(port)], check=True,
                   stdout=subprocess.DEVNULL)


def health(srv):
    st, body = srv.request("GET", "/health", token=TOKEN)
    return body


class SingleInstance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="rt_e2e_")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.srv = None
        cls.srv = start(cls.dir, "single", MSGSTORE_RT_QUEUE_MAX="64", MSGSTORE_PRESENCE_TTL="2s",
                        MSGSTORE_MAX_CONTENT_CHARS="100000",
                        MSGSTORE_MAX_BODY_BYTES=str(MAX_BODY))
        cls.addClassCleanup(cls.srv.stop)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            print(cls.srv.tail(), file=sys.stderr)
        assert rc == 0, f"msgstore exited {rc}"
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_auth_required(self):
        c = WsClient(H, self.srv.port)  # no token
        self.assertEqual(c.status, 401)
        c = WsClient(H, self.srv.port, token="wrong-token-0123456789")
        self.assertEqual(c.status, 401)
        s = SseClient(H, self.srv.port, "/v1/channels/5/events")
        self.assertEqual(s.status, 401)
        s.close()
        st, _ = self.srv.request("GET", "/v1/ws", token=TOKEN)  # not an upgrade
        self.assertEqual(st, 426)

    def test_every_kind_in_commit_order(self):
        ch = 101
        c = ws(self.srv)
        subscribe(c, [ch])
        m = post(self.srv, ch, "first")
        mid = m["id"]
        base = f"/v1/channels/{ch}"
        steps = [
            ("PATCH", f"{base}/messages/{mid}", {"content": "edited"}, "message.updated"),
            ("PUT", f"{base}/messages/{mid}/reactions/%F0%9F%91%8D/42", None, "reaction.added"),
            ("DELETE", f"{base}/messages/{mid}/reactions/%F0%9F%91%8D/42", None, "reaction.removed"),
            ("PUT", f"{base}/pins/{mid}", {"pinned_by": "42"}, "pin.added"),
            ("DELETE", f"{base}/pins/{mid}", None, "pin.removed"),
            ("PUT", f"{base}/read-positions/42", {"message_id": mid}, "read_position.updated"),
            ("PUT", base, {"name": "general"}, "channel.updated"),
            ("DELETE", f"{base}/messages/{mid}", None, "message.deleted"),
        ]
        for method, path, body, _ in steps:
            st, resp = self.srv.request(method, path, body, token=TOKEN)
            self.assertLess(st, 300, (method, path, st, resp))
        got = [c.recv_json() for _ in range(len(steps) + 1)]
        self.assertEqual([g["type"] for g in got], ["message.created"] + [s[3] for s in steps])
        for g in got:
            self.assertEqual(g["channel"], str(ch))
        self.assertEqual(got[0]["data"]["content"], "first")
        self.assertEqual(got[1]["data"]["content"], "edited")
        positions = [int(g["position"]) for g in got]
        self.assertEqual(positions, sorted(positions))
        self.assertEqual(len(set(positions)), len(positions))
        c.close()

    def test_failed_or_no_op_writes_publish_nothing(self):
        ch = 102
        c = ws(self.srv)
        subscribe(c, [ch])
        mid = post(self.srv, ch, "x")["id"]
        self.assertEqual(c.recv_json()["type"], "message.created")
        bad = [
            ("POST", f"/v1/channels/{ch}/messages", {"content": "no sender"}),
            ("POST", f"/v1/channels/{ch}/messages", {"sender_id": "7", "bogus": 1}),
            ("PATCH", f"/v1/channels/{ch}/messages/999999", {"content": "nope"}),
            ("DELETE", f"/v1/channels/{ch}/pins/999999", None),
        ]
        for method, path, body in bad:
            st, _ = self.srv.request(method, path, body, token=TOKEN)
            self.assertGreaterEqual(st, 400, (method, path))
        # A duplicate reaction changes nothing: one event for two PUTs.
        for _ in range(2):
            st, _ = self.srv.request("PUT", f"/v1/channels/{ch}/messages/{mid}/reactions/x/9", None,
                                     token=TOKEN)
            self.assertLess(st, 300)
        # then a marker (a message): events come in order, so what arrives before it is all
        # the reactions published (no time window to wait out on a loaded machine)
        post(self.srv, ch, "marker")
        _, got = c.recv_until(lambda m: m["type"] == "message.created"
                              and m["data"]["content"] == "marker", 30)
        self.assertEqual([g["type"] for g in got], ["reaction.added"], got)
        c.close()

    def test_resume_replays_what_was_missed(self):
        ch = 103
        c = ws(self.srv)
        subscribe(c, [ch])
        post(self.srv, ch, "seen")
        last = c.recv_json()["position"]
        c.close()
        post(self.srv, ch, "missed 1")
        post(self.srv, ch, "missed 2")
        c = ws(self.srv)
        subscribe(c, [ch], since={str(ch): last})
        got = [c.recv_json(), c.recv_json()]
        self.assertEqual([g["data"]["content"] for g in got], ["missed 1", "missed 2"])
        self.assertEqual(c.drain(0.3), [])
        # Live events follow, once.
        post(self.srv, ch, "live")
        self.assertEqual(c.recv_json()["data"]["content"], "live")
        self.assertEqual(c.drain(0.3), [])
        c.close()
        # A position from before this instance kept the channel: resync.
        c = ws(self.srv)
        subscribe(c, [ch], since={str(ch): "1000"})
        m = c.recv_json()
        self.assertEqual(m, {"type": "resync", "channel": str(ch), "reason": "gap"})
        c.close()

    def test_sse(self):
        ch = 104
        s = SseClient(H, self.srv.port, f"/v1/channels/{ch}/events", token=TOKEN)
        self.assertEqual(s.status, 200)
        self.assertTrue(s.headers["content-type"].startswith("text/event-stream"))
        post(self.srv, ch, "one")
        ev = s.next_event()
        self.assertEqual(ev["event"], "message.created")
        data = json.loads(ev["data"])
        self.assertEqual(ev["id"], data["position"])
        self.assertEqual(data["data"]["content"], "one")
        s.close()
        post(self.srv, ch, "two")
        # EventSource resumes with Last-Event-ID.
        s = SseClient(H, self.srv.port, f"/v1/channels/{ch}/events", token=TOKEN,
                      last_event_id=ev["id"])
        ev2 = s.next_event()
        self.assertEqual(json.loads(ev2["data"])["data"]["content"], "two")
        s.close()
        s = SseClient(H, self.srv.port, f"/v1/channels/{ch}/events?since=12", token=TOKEN)
        ev3 = s.next_event()
        self.assertEqual(ev3["event"], "resync")
        self.assertIsNone(ev3["id"])
        s.close()
        for bad in ("/v1/channels/abc/events", "/v1/channels/0/events",
                    f"/v1/channels/{ch}/events?since=x"):
            s = SseClient(H, self.srv.port, bad, token=TOKEN)
            self.assertEqual(s.status, 400, bad)
            s.close()

    def test_bad_requests_change_nothing(self):
        c = ws(self.srv)
        for req in ({"op": "subscribe", "channels": []},
                    {"op": "subscribe", "channels": ["abc"]},
                    {"op": "subscribe", "channels": ["105", "0"]},
                    {"op": "subscribe", "channels": ["105"], "since": {"105": "x"}},
                    {"op": "subscribe", "channels": [str(i) for i in range(1, 300)]},
                    {"op": "typing", "channel": "105"},
                    {"op": "presence", "user_id": "1"},
                    {"op": "nope"}, {"no": "op"}):
            c.send_json(req)
            m = c.recv_json()
            self.assertEqual(m["type"], "error", req)
            self.assertEqual(m["code"], "invalid_argument")
        c.send_text("{not json")
        self.assertEqual(c.recv_json()["type"], "error")
        # Nothing was followed: a post to 105 does not arrive.
        post(self.srv, 105, "unseen")
        self.assertEqual(c.drain(0.3), [])
        # The connection still works.
        c.send_json({"op": "ping", "id": 7})
        self.assertEqual(c.recv_json(), {"type": "pong", "id": 7})
        subscribe(c, [105])
        c.send_json({"op": "unsubscribe", "channels": ["105"]})
        self.assertEqual(c.recv_json()["type"], "unsubscribed")
        post(self.srv, 105, "unseen too")
        self.assertEqual(c.drain(0.3), [])
        c.close()

    def test_oversized_client_message_closes(self):
        c = ws(self.srv)
        # only the frame's header, which announces MAX_BODY + 1 bytes, and the first payload
        # byte: the server refuses the frame from its announced length (1009) with nothing
        # unread in its socket, so the close frame reaches us (unread bytes would make the
        # kernel answer the server's close with a reset, and the close frame could be lost)
        c.sock.sendall(struct.pack("!BBQ", 0x81, 0x80 | 127, MAX_BODY + 1) + b"\0\0\0\0" + b"x")
        with self.assertRaises(WsClosed):
            while True:
                c.recv(10)
        self.assertEqual(c.close_code, 1009)
        c.close()
        # the server is fine
        c = ws(self.srv)
        c.send_json({"op": "ping"})
        self.assertEqual(c.recv_json()["type"], "pong")
        c.close()

    def test_typing_and_presence(self):
        ch = 106
        a = ws(self.srv)
        subscribe(a, [ch])
        b = ws(self.srv)
        b.send_json({"op": "typing", "channel": str(ch), "user_id": "77"})
        t = a.recv_json()
        self.assertEqual(t["type"], "typing")
        self.assertEqual(t["data"]["user_id"], "77")
        self.assertEqual(t["data"]["ttl_ms"], 10000)
        st, _ = self.srv.request("POST", f"/v1/channels/{ch}/typing", {"user_id": "78"}, token=TOKEN)
        self.assertEqual(st, 204)
        self.assertEqual(a.recv_json()["data"]["user_id"], "78")
        st, _ = self.srv.request("POST", f"/v1/channels/{ch}/typing", {"user_id": "x"}, token=TOKEN)
        self.assertIn(st, (400, 422))
        b.send_json({"op": "presence", "user_id": "77", "channels": [str(ch)]})
        p = a.recv_json()
        self.assertEqual((p["type"], p["data"]["status"]), ("presence", "online"))
        st, pres = self.srv.request("GET", f"/v1/channels/{ch}/presence", token=TOKEN)
        self.assertEqual(st, 200)
        self.assertEqual(pres["online"], ["77"])
        self.assertEqual(sorted(pres["typing"]), ["77", "78"])
        # Heartbeats keep it online (TTL 2 s here); no new event.
        for _ in range(3):
            time.sleep(0.7)
            b.send_json({"op": "presence", "user_id": "77", "channels": [str(ch)]})
        self.assertEqual(a.drain(0.2), [])
        # Heartbeats stop: offline after the TTL.
        p = a.recv_json(timeout=5)
        self.assertEqual(p["data"], {"user_id": "77", "status": "offline"})
        # Online again, then the connection closes: offline at once.
        b.send_json({"op": "presence", "user_id": "77", "channels": [str(ch)]})
        self.assertEqual(a.recv_json()["data"]["status"], "online")
        b.close()
        self.assertEqual(a.recv_json(timeout=3)["data"]["status"], "offline")
        a.close()

    def overflows(self):
        st, text = self.srv.request("GET", "/metrics", token=TOKEN)
        text = text.decode() if isinstance(text, bytes) else str(text)
        for line in text.splitlines():
            if line.startswith("msgstore_rt_overflows_total "):
                return int(line.split()[1])
        return 0

    def test_slow_consumer_does_not_block_others(self):
        ch = 107
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((H, self.srv.port))
        slow.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").encode())
        # subscribe without reading anything more than the handshake
        mask = b"\x01\x02\x03\x04"
        payload = json.dumps({"op": "subscribe", "channels": [str(ch)]}).encode()
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(
            b ^ mask[i % 4] for i, b in enumerate(payload))
        slow.sendall(frame)
        fast = ws(self.srv)
        subscribe(fast, [ch])
        overflows0 = self.overflows()
        time.sleep(0.2)
        # More than the kernel buffers (4 MiB send buffer) and the queue (64) hold.
        big = "x" * 60000
        n = 200
        t0 = time.monotonic()
        got = 0
        for i in range(n):
            post(self.srv, ch, f"{i} {big}")
            # the fast client keeps up while the slow one does not read
            while True:
                try:
                    m = fast.recv_json(0.001 if got < i else 5)
                except socket.timeout:
                    break
                if m["type"] == "message.created":
                    got += 1
                if got > i:
                    break
        self.assertEqual(got, n)
        self.assertLess(time.monotonic() - t0, 60)
        # The slow one overflowed (queue 64): the server queued a resync for it
        # and closes it; a client that does not read even that is cut 2 s
        # later, so the resync is in what it reads only if it read in time.
        self.assertGreater(self.overflows(), overflows0)
        slow.settimeout(10)
        data = b""
        ended = "timeout"
        try:
            while True:
                chunk = slow.recv(1 << 20)
                if not chunk:
                    ended = "eof"
                    break
                data += chunk
        except ConnectionResetError:
            ended = "reset"
        except socket.timeout:
            pass
        self.assertNotEqual(ended, "timeout", "the server did not close the slow subscriber")
        self.assertLess(data.count(b'"message.created"'), n)
        slow.close()
        fast.close()

    def test_1000_subscribers(self):
        ch = 108
        n = 1000
        sel = selectors.DefaultSelector()
        conns = []
        for i in range(n):
            s = socket.create_connection((H, self.srv.port))
            s.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
                       ).encode())
            conns.append(s)
        mask = b"\x01\x02\x03\x04"
        payload = json.dumps({"op": "subscribe", "channels": [str(ch)]}).encode()
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(
            b ^ mask[i % 4] for i, b in enumerate(payload))
        bufs = {}
        for s in conns:
            s.sendall(frame)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""

        def pump(until, timeout):
            deadline = time.monotonic() + timeout
            while not until() and time.monotonic() < deadline:
                for key, _ in sel.select(0.1):
                    try:
                        d = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    self.assertTrue(d, "a subscriber was closed")
                    bufs[key.fileobj] += d

        pump(lambda: all(b"\"subscribed\"" in b for b in bufs.values()), 30)
        self.assertTrue(all(b"\"subscribed\"" in b for b in bufs.values()))
        t0 = time.monotonic()
        post(self.srv, ch, "to a thousand")
        pump(lambda: all(b"to a thousand" in b for b in bufs.values()), 30)
        missing = sum(1 for b in bufs.values() if b"to a thousand" not in b)
        self.assertEqual(missing, 0)
        print(f"  1000 subscribers: all delivered in {1000 * (time.monotonic() - t0):.0f} ms",
              file=sys.stderr)
        st, h = self.srv.request("GET", "/health", token=TOKEN)
        self.assertGreaterEqual(h["realtime"]["subscribers"], n)
        for s in conns:
            sel.unregister(s)
            s.close()
        wait_for(lambda: health(self.srv)["realtime"]["subscribers"] < n, 10)


class TwoInstances(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A Redis of its own: the fixture's port is shared with other
        # checkouts running their tests at the same time on this machine.
        port = free_port()
        redis_ctl("start", port)
        cls.addClassCleanup(redis_ctl, "stop", port)
        url = f"redis://127.0.0.1:{port}"
        cls.dir = tempfile.mkdtemp(prefix="rt_e2e2_")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.a = start(cls.dir, "a", MSGSTORE_REDIS_URL=url, MSGSTORE_WORKER_ID="11")
        cls.addClassCleanup(cls.a.stop)  # runs even when setUpClass fails
        cls.b = start(cls.dir, "b", MSGSTORE_REDIS_URL=url, MSGSTORE_WORKER_ID="12")
        cls.addClassCleanup(cls.b.stop)
        for s in (cls.a, cls.b):
            assert wait_for(lambda: health(s)["realtime"]["redis"] == "up", 10), health(s)

    @classmethod
    def tearDownClass(cls):
        ra, rb = cls.a.stop(), cls.b.stop()
        assert ra == 0 and rb == 0, (ra, rb, cls.a.tail(), cls.b.tail())
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_event_reaches_the_other_instance(self):
        ch = 201
        cb = ws(self.b)
        subscribe(cb, [ch])
        sse = SseClient(H, self.b.port, f"/v1/channels/{ch}/events", token=TOKEN)
        ca = ws(self.a)
        subscribe(ca, [ch])
        # B's shard subscription may take a moment: probe until one arrives.
        first = None
        for i in range(50):
            post(self.a, ch, f"probe {i}")
            try:
                first = cb.recv_json(0.2)
                break
            except socket.timeout:
                continue
        self.assertIsNotNone(first)
        cb.drain(0.3)
        ca.drain(0.3)
        while True:
            try:
                sse.next_event(0.3)
            except socket.timeout:
                break
        m = post(self.a, ch, "from A")
        eb = cb.recv_json()
        self.assertEqual(eb["type"], "message.created")
        self.assertEqual(eb["data"], m)
        ea = ca.recv_json()
        self.assertEqual(ea, eb)  # the same event, once on each side
        self.assertEqual(ca.drain(0.3), [])  # no echo of A's own event from Redis
        ev = sse.next_event()
        self.assertEqual(json.loads(ev["data"]), eb)
        # and the other way round
        post(self.b, ch, "from B")
        self.assertEqual(ca.recv_json()["data"]["content"], "from B")
        # typing on A is seen on B, and B's presence list knows it
        ca.send_json({"op": "typing", "channel": str(ch), "user_id": "55"})
        t, _ = cb.recv_until(lambda m: m["type"] == "typing")
        self.assertEqual(t["data"]["user_id"], "55")
        st, pres = self.b.request("GET", f"/v1/channels/{ch}/presence", token=TOKEN)
        self.assertIn("55", pres["typing"])
        for c in (ca, cb):
            c.close()
        sse.close()


class RedisKilledAndRestarted(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.PORT = free_port()  # other worktrees run this test at the same time
        redis_ctl("start", cls.PORT)
        cls.addClassCleanup(redis_ctl, "stop", cls.PORT)
        cls.dir = tempfile.mkdtemp(prefix="rt_e2e3_")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        url = f"redis://127.0.0.1:{cls.PORT}"
        cls.a = start(cls.dir, "a", MSGSTORE_REDIS_URL=url, MSGSTORE_WORKER_ID="21")
        cls.addClassCleanup(cls.a.stop)
        cls.b = start(cls.dir, "b", MSGSTORE_REDIS_URL=url, MSGSTORE_WORKER_ID="22")
        cls.addClassCleanup(cls.b.stop)

    @classmethod
    def tearDownClass(cls):
        ra, rb = cls.a.stop(), cls.b.stop()
        redis_ctl("stop", cls.PORT)
        assert ra == 0 and rb == 0, (ra, rb, cls.a.tail(), cls.b.tail())
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_kill_and_restart(self):
        ch = 301
        for s in (self.a, self.b):
            self.assertTrue(wait_for(lambda: health(s)["realtime"]["redis"] == "up", 10))
        cb = ws(self.b)
        subscribe(cb, [ch])
        # B's shard subscription may take a moment: probe until one arrives (and one must)
        arrived = None
        for i in range(150):
            post(self.a, ch, f"probe {i}")
            try:
                arrived = cb.recv_json(0.2)
                break
            except socket.timeout:
                continue
        self.assertIsNotNone(arrived, "no probe from A reached B through Redis")
        cb.drain(0.3)

        redis_ctl("kill", self.PORT)
        self.assertTrue(wait_for(lambda: health(self.b)["realtime"]["redis"] == "down", 10))
        h = health(self.b)
        self.assertEqual(h["status"], "degraded")
        self.assertEqual(h["realtime"]["status"], "degraded")
        self.assertTrue(h["realtime"].get("redis_error"))
        # B still delivers its own events; A's cannot reach B.
        post(self.b, ch, "local on B")
        post(self.a, ch, "lost from A")
        post(self.b, ch, "marker on B")  # in order after what B delivers: no time window
        _, got = cb.recv_until(lambda m: m["type"] == "message.created"
                               and m["data"]["content"] == "marker on B", 30)
        self.assertEqual([g["data"]["content"] for g in got if g["type"] == "message.created"
                          and not g["data"]["content"].startswith("probe")], ["local on B"])

        redis_ctl("start", self.PORT)
        for s in (self.a, self.b):
            self.assertTrue(wait_for(lambda: health(s)["realtime"]["redis"] == "up", 15), health(s))
        self.assertEqual(health(self.b)["status"], "ok")
        m, _ = cb.recv_until(lambda m: m["type"] == "resync", timeout=10)
        self.assertEqual(m, {"type": "resync", "channel": str(ch), "reason": "redis_gap"})
        post(self.a, ch, "A again")
        m, _ = cb.recv_until(lambda m: m["type"] == "message.created", timeout=5)
        self.assertEqual(m["data"]["content"], "A again")
        cb.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
