# SPDX-License-Identifier: Apache-2.0
"""
msgstore_e2e.py - helpers for the end-to-end tests: start a real `msgstore serve`
process, talk HTTP/1.1 to it over loopback (http.client, keep-alive), and check
every answer against docs/openapi.yaml (status documented for the route, body
matching the schema with a real OpenAPI 3.0 validator: openapi-schema-validator).

Runs in the venv of scripts/pyvenv (<build>/e2e-venv, pinned packages of
tests/e2e/requirements.txt): a test started with any other python re-executes
itself there, making the venv first if needed.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

SOURCE_DIR = os.environ.get("MSGSTORE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY_DIR = os.environ.get("MSGSTORE_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
VENV = os.environ.get("MSGSTORE_E2E_VENV", os.path.join(BINARY_DIR, "e2e-venv"))


def _in_venv():
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        if os.environ.get("MSGSTORE_E2E_REEXEC"):
            sys.exit("msgstore_e2e: the venv %s does not run as itself" % VENV)
        subprocess.run([os.path.join(SOURCE_DIR, "scripts", "pyvenv"), VENV], check=True,
                       stdout=subprocess.DEVNULL)
        os.environ["MSGSTORE_E2E_REEXEC"] = "1"
        py = os.path.join(VENV, "bin", "python")
        os.execv(py, [py] + sys.argv)


_in_venv()

import yaml  # noqa: E402 - from the venv
from openapi_schema_validator import OAS30Validator  # noqa: E402
from referencing import Registry, Resource  # noqa: E402
from referencing.jsonschema import DRAFT4  # noqa: E402
MSGSTORE = os.environ.get("MSGSTORE_BIN", os.path.join(BINARY_DIR, "src", "cli", "msgstore"))

# The suites name channels and users by integers: their servers and CLI runs (which inherit
# this environment) use int64 stores unless a test asks for uuid (test_uuid_ids.py runs the
# API with UUIDs; the store conformance suite runs every operation in both formats).
os.environ.setdefault("MSGSTORE_ID_FORMAT", "int64")
ID_FORMAT = os.environ["MSGSTORE_ID_FORMAT"]
TOKEN = "e2e-token-0123456789abcdef"


class Failure(Exception):
    pass


def check(cond, what, *ctx):
    if not cond:
        raise Failure(what + ("" if not ctx else " | " + " | ".join(str(c) for c in ctx)))


# ---------------------------------------------------------------------------
# OpenAPI: the routes, their documented statuses, and the schemas, checked with
# openapi-schema-validator's OpenAPI 3.0 validator (every keyword: minimum,
# maxLength, pattern, nullable, anyOf...).

SPEC_URI = "urn:msgstore:openapi"


class Spec:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(self.doc, default_specification=DRAFT4))
        self.validators = {}
        self.routes = []
        for tmpl, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\{[^/]+\}", "[^/]+", tmpl) + "$"
            self.routes.append((re.compile(rx), tmpl, item))
        self.seen = set()  # (template, method, status) actually exercised

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            check(ref.startswith("#/"), "only local $ref", ref)
            cur = self.doc
            for part in ref[2:].split("/"):
                cur = cur[part]
            node = cur
        return node

    def operation(self, method, path):
        path = path.split("?", 1)[0]
        for rx, tmpl, item in self.routes:
            if rx.match(path):
                return tmpl, item.get(method.lower())
        return None, None

    def validate(self, schema, value, where="$"):
        """Checks value against a schema of the spec (a node of self.doc or a $ref)."""
        if isinstance(schema, dict) and set(schema) == {"$ref"}:
            ref = schema["$ref"]
            check(ref.startswith("#/"), "only local $ref", ref)
            schema = {"$ref": SPEC_URI + ref}
        key = json.dumps(schema, sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            v = self.validators[key] = OAS30Validator(_absolute_refs(schema), registry=self.registry)
        errors = sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))
        check(not errors, "schema violation at %s" % where,
              *["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "$", e.message[:300])
                for e in errors[:5]])

    def check_response(self, method, path, status, headers, body):
        """Checks an answer against the spec; returns the parsed JSON (or text)."""
        ctype = headers.get("content-type", "")
        check(headers.get("x-request-id"), "every answer has X-Request-Id", method, path, status)
        tmpl, op = self.operation(method, path)
        layer = {404: "NotFound", 405: None, 408: None, 413: "TooLarge", 431: None, 503: "Unavailable"}
        if op is None or str(status) not in op.get("responses", {}):
            # answers of the HTTP layer itself, on any route: JSON errors
            check(status in layer or (op is None and status == 404),
                  "status %d not documented for %s %s" % (status, method, tmpl or path))
            check(ctype.startswith("application/json"), "layer errors are JSON", ctype)
            data = json.loads(body)
            self.validate({"$ref": "#/components/schemas/Error"}, data)
            return data
        self.seen.add((tmpl, method.upper(), status))
        resp = self.resolve(op["responses"][str(status)])
        content = resp.get("content", {})
        if not content:
            check(len(body) == 0, "no body documented", body[:100])
            return None
        if "application/json" in content:
            check(ctype.startswith("application/json"), "JSON expected", method, path, status, ctype)
            data = json.loads(body)
            self.validate(content["application/json"]["schema"], data)
            return data
        if "text/plain" in content:
            check(ctype.startswith("text/plain"), "text expected", ctype)
            return body.decode()
        check(any(ctype.startswith(t) for t in content), "content type documented", method, path, ctype, list(content))
        return body

    def coverage(self):
        """(documented operations never exercised with a success: a 2xx, or a 101 for an
        operation whose only success is the 101 of an upgrade, e.g. the WebSocket)"""
        missing = []
        for rx, tmpl, item in self.routes:
            for m, op in item.items():
                if m in ("parameters",):
                    continue
                ok = [s for s in op.get("responses", {}) if s.startswith("2")]
                if not ok:
                    ok = [s for s in op.get("responses", {}) if s == "101"]
                if not any((tmpl, m.upper(), int(s)) in self.seen for s in ok):
                    missing.append("%s %s" % (m.upper(), tmpl))
        return missing


def _absolute_refs(node):
    """A schema taken out of the spec, its local $refs made to point into the spec."""
    if isinstance(node, dict):
        return {k: (SPEC_URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#/")
                    else _absolute_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_refs(v) for v in node]
    return node


SPEC = Spec(os.path.join(SOURCE_DIR, "docs", "openapi.yaml"))


# ---------------------------------------------------------------------------
# The server process

class Server:
    def __init__(self, workdir, env=None, args=(), expect_start=True, start_timeout=None):
        self.workdir = workdir
        scylla = (env or {}).get("SCYLLA_ENABLED", os.environ.get("SCYLLA_ENABLED", "")).lower() == "true"
        # a first start on Cassandra creates the keyspace and tables (schema agreement)
        self.start_timeout = start_timeout or (180 if scylla else 30)
        self.env = dict(os.environ)
        self.env.update({
            "MSGSTORE_PROFILE": "test",
            "MSGSTORE_PORT": "0",
            "MSGSTORE_BIND": "127.0.0.1",
            "MSGSTORE_WORKERS": "2",
            "MSGSTORE_SQLITE_PATH": os.path.join(workdir, "e2e.db"),
            "MSGSTORE_API_TOKENS": TOKEN,
            "MSGSTORE_LOG_LEVEL": "info",
            "MSGSTORE_LOG_FORMAT": "json",
            "MSGSTORE_HEALTH_INTERVAL": "1s",
        })
        self.env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(SOURCE_DIR, "tests", "e2e", "lsan.supp"))
        self.env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        self.env.update(env or {})
        self.args = list(args)
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(workdir, "serve-%d.log" % int(time.time() * 1000))
        if expect_start:
            self.start()

    def start(self):
        self.errf = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([MSGSTORE, "serve"] + self.args, env=self.env,
                                     stdout=subprocess.PIPE, stderr=self.errf)
        line = b""
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        m = re.search(rb"serving on https?://[^:]+:(\d+)", line)
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise Failure("msgstore serve did not start: %r\n%s" % (line, self.log()))
        self.port = int(m.group(1))
        # stdout is not read anymore: let it drain into nothing
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("msgstore serve did not stop within %ds" % timeout)
        self.errf.close()
        return rc

    def client(self, token=TOKEN, timeout=10):
        return Client(self.port, token, timeout)

    def metrics(self):
        """The text of GET /metrics (checked to answer 200)."""
        c = self.client()
        try:
            r = c.get("/metrics", validate=False)
        finally:
            c.close()
        check(r.status == 200, "/metrics answers", r)
        return r.body.decode()


class Response:
    def __init__(self, status, headers, body, data):
        self.status = status
        self.headers = headers
        self.body = body
        self.data = data

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


class Client:
    """One keep-alive connection; every answer is checked against the spec."""

    def __init__(self, port, token=TOKEN, timeout=10):
        self.port = port
        self.token = token
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def close(self):
        self.conn.close()

    def request(self, method, path, body=None, headers=None, raw=None, validate=True):
        h = {}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            self.conn.request(method, path, body=raw, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if r.getheader("connection", "").lower() == "close":
            self.conn.close()
        parsed = None
        if validate:
            parsed = SPEC.check_response(method, path, r.status, hdrs, data)
        return Response(r.status, hdrs, data, parsed)

    def stream(self, path, headers=None, first=64, timeout=5.0):
        """GET a streaming answer (Server-Sent Events): a 2xx is checked against the spec with
        the first bytes of the stream as its body (at most `first`, what arrived within
        `timeout`), then the connection is closed (a stream ends with it); any other answer is
        read whole and checked like request() does."""
        h = {"Accept": "text/event-stream"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        try:
            self.conn.request("GET", path, headers=h)
            self.conn.sock.settimeout(timeout)  # the response keeps this socket
            r = self.conn.getresponse()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if 200 <= r.status < 300:
                data = r.read1(first)
                r.close()
                self.conn.close()
            else:
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                elif self.conn.sock:
                    self.conn.sock.settimeout(self.timeout)
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        parsed = SPEC.check_response("GET", path, r.status, hdrs, data)
        return Response(r.status, hdrs, data, parsed)

    def websocket(self, path="/v1/ws", headers=None):
        """A real WebSocket handshake on a connection of its own (rtclient.WsClient: checks
        Sec-WebSocket-Accept); its answer is checked against the spec (a 101 has no body: the
        bytes after it are frames). Returns the WsClient (open when its status is 101)."""
        from rtclient import WsClient
        ws = WsClient("127.0.0.1", self.port, path=path, token=self.token, timeout=self.timeout,
                      headers=headers)
        hdrs = dict(ws.response_headers)
        SPEC.check_response("GET", path, ws.status, hdrs, b"" if ws.status == 101 else ws.body)
        return ws

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class Background:
    """A thread that runs self.work() from construction until stop(); whatever it raises fails
    the test at stop(). Subclasses set their attributes before calling Background.__init__."""

    what = "background thread"

    def __init__(self):
        self.error = None
        self.running = True
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self):
        try:
            self.work()
        except Exception as e:  # noqa: BLE001 - handed to the test, which fails with it
            self.error = e

    def stop(self, timeout=90):
        self.running = False
        self.thread.join(timeout)
        check(not self.thread.is_alive(), "%s did not stop" % self.what)
        if self.error is not None:
            raise Failure("%s failed: %r" % (self.what, self.error))


def read_back(srv, writers):
    """Reads every message the writers saw acknowledged (w.ch, w.acked: id -> content) back
    through srv: the (channel, id, status) of each one missing or changed."""
    c = srv.client(timeout=30)
    lost = []
    for w in writers:
        for mid, content in w.acked.items():
            r = c.get("/v1/channels/%d/messages/%s" % (w.ch, mid))
            if r.status != 200 or r.data["content"] != content:
                lost.append((w.ch, mid, r.status))
    c.close()
    return lost


def stop_servers(servers):
    """A teardown for tests whose context is the list of servers they started: each must exit 0."""
    for srv in servers:
        rc = srv.stop()
        check(rc == 0, "msgstore serve exits 0", rc, srv.log()[-2000:])


def in_threads(fn, n, timeout=None):
    """Runs fn(i) for i in 0..n-1, each in a thread of its own, and waits for them all."""
    ts = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)


def expect(resp, status, code=None):
    check(resp.status == status, "expected HTTP %d" % status, resp)
    if code is not None:
        check(resp.data["error"]["code"] == code, "expected error code %s" % code, resp)
    return resp.data


def raw_exchange_closed(port, data, timeout=5.0):
    """Sends raw bytes and reads until the server closes the connection. Returns (what came
    back, True) when the server closed it (or reset it), (what came back, False) when the
    timeout passed first: an empty answer means something only with the flag."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
    finally:
        s.close()


def raw_exchange(port, data, timeout=5.0, read_until_close=False):
    """Sends raw bytes, returns what came back before close or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
        return out
    finally:
        s.close()


# ---------------------------------------------------------------------------
# A tiny runner: every function named test_* in the calling module, in order.

def run(module_globals, setup=None, teardown=None):
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    only = os.environ.get("E2E_ONLY")
    failed = []
    ctx = setup() if setup else None
    try:
        for name, fn in tests:
            if only and only not in name:
                continue
            t0 = time.time()
            try:
                fn(ctx)
                print("ok   %-45s %.2fs" % (name, time.time() - t0), flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure
                failed.append(name)
                print("FAIL %-45s %s" % (name, e), flush=True)
                traceback.print_exc()
    finally:
        if teardown:
            try:
                teardown(ctx)
            except Exception as e:  # noqa: BLE001 - e.g. the server's exit code: a failure too
                failed.append("teardown")
                print("FAIL %-45s %s" % ("teardown", e), flush=True)
                traceback.print_exc()
    print("%d tests, %d failed%s" % (len(tests), len(failed), (": " + ", ".join(failed)) if failed else ""))
    return 1 if failed else 0
