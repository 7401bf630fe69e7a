# SPDX-License-Identifier: Apache-2.0
"""Minimal real-time clients for msgstore's end-to-end tests (Python stdlib only).

WsClient: an RFC 6455 WebSocket client over a plain socket (client frames
masked, fragmented and control frames handled, close handshake).
SseClient: a Server-Sent Events reader over http.client.
Msgstore: starts and stops `msgstore serve` instances on free ports.
"""

import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import subprocess
import time

# The suites that start servers through Msgstore name channels and users by integers: int64
# stores, unless the environment says otherwise (as msgstore_e2e does; test_uuid_ids.py runs
# UUIDs).
os.environ.setdefault("MSGSTORE_ID_FORMAT", "int64")

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsClosed(Exception):
    pass


class WsClient:
    def __init__(self, host, port, path="/v1/ws", token=None, timeout=10.0, headers=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        head = self._read_until(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        self.status = int(status_line.split()[1])
        self.response_headers = {}
        for line in rest.split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                self.response_headers[k.strip().lower().decode()] = v.strip().decode()
        if self.status != 101:
            # Read the body that came with the refusal (its Content-Length), for the test.
            n = int(self.response_headers.get("content-length", "0"))
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            self.body = self.buf[:n] if n else self.buf
            self.sock.close()
            self.sock = None
            return
        want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        if self.response_headers.get("sec-websocket-accept") != want:
            raise AssertionError("bad Sec-WebSocket-Accept")
        self.closed = False
        self.close_code = None

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsClosed("connection closed during handshake")
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsClosed("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_json(self, obj):
        self._send_frame(0x1, json.dumps(obj).encode())

    def send_text(self, text):
        self._send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def _read_frame(self):
        b0, b1 = self._read_exact(2)
        fin, opcode = b0 & 0x80, b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8))
        if b1 & 0x80:
            raise AssertionError("server frames must not be masked")
        return fin, opcode, self._read_exact(n)

    def recv(self, timeout=5.0):
        """The next text message (str); raises socket.timeout, WsClosed."""
        self.sock.settimeout(timeout)
        parts = []
        while True:
            fin, opcode, payload = self._read_frame()
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = True
                try:
                    self._send_frame(0x8, payload[:2])
                except OSError:
                    pass
                raise WsClosed(f"closed by server, code {self.close_code}")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode()

    def recv_json(self, timeout=5.0):
        return json.loads(self.recv(timeout))

    def recv_until(self, pred, timeout=5.0):
        """Messages until pred(msg) is true; returns (msg, skipped)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no matching message; got {skipped[-5:]}")
            m = self.recv_json(left)
            if pred(m):
                return m, skipped
            skipped.append(m)

    def drain(self, quiet=0.3):
        """Every message that arrives until none came for `quiet` seconds."""
        out = []
        while True:
            try:
                out.append(self.recv_json(quiet))
            except socket.timeout:
                return out

    def close(self):
        if self.sock is None:
            return
        try:
            if not getattr(self, "closed", True):
                self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()
        self.sock = None


class SseClient:
    """Server-Sent Events over a raw socket (chunked transfer decoded here:
    http.client's reader cannot be used again after a read timed out)."""

    def __init__(self, host, port, path, token=None, last_event_id=None, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        while b"\r\n\r\n" not in self.raw:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsClosed("connection closed before the response")
            self.raw += chunk
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        status_line, _, rest = head.partition(b"\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in rest.split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                self.headers[k.strip().lower().decode()] = v.strip().decode()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self.text = b""  # decoded body not yet parsed
        self.ended = False
        self.last_id = None

    def _decode(self):
        if not self.chunked:
            self.text += self.raw
            self.raw = b""
            return
        while True:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i].split(b";")[0], 16)
            if size == 0:
                self.ended = True
                self.raw = b""
                return
            if len(self.raw) < i + 2 + size + 2:
                return
            self.text += self.raw[i + 2:i + 2 + size]
            self.raw = self.raw[i + 2 + size + 2:]

    def _line(self, deadline):
        while True:
            self._decode()
            j = self.text.find(b"\n")
            if j >= 0:
                line, self.text = self.text[:j], self.text[j + 1:]
                return line.decode().rstrip("\r")
            if self.ended:
                raise WsClosed("stream ended")
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no event")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsClosed("stream ended")
            self.raw += chunk

    def next_event(self, timeout=5.0):
        """The next event as dict(id, event, data) (comments skipped); raises socket.timeout."""
        deadline = time.monotonic() + timeout
        ev = {"id": None, "event": "message", "data": []}
        while True:
            line = self._line(deadline)
            if line == "":
                if ev["data"]:
                    ev["data"] = "\n".join(ev["data"])
                    if ev["id"] is not None:
                        self.last_id = ev["id"]
                    return ev
                ev = {"id": None, "event": "message", "data": []}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                ev["data"].append(value)
            elif field in ("id", "event"):
                ev[field] = value

    def close(self):
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Msgstore:
    """One `msgstore serve` process on a free port."""

    def __init__(self, binary, workdir, env=None, name="msgstore"):
        self.port = free_port()
        self.name = name
        e = dict(os.environ)
        e.update(
            {
                "MSGSTORE_PROFILE": "test",
                "MSGSTORE_BIND": "127.0.0.1",
                "MSGSTORE_PORT": str(self.port),
                "MSGSTORE_LOG_LEVEL": "warn",
            }
        )
        e.update(env or {})
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "serve"], env=e, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.tail()}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/health/live")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError(f"{name} did not start: {self.tail()}")

    def tail(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def request(self, method, path, body=None, token=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data

    def stop(self, timeout=15):
        """SIGTERM, SIGKILL after timeout; the exit code. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
