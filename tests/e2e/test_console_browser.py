#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
The console page (/console) in a real browser: headless Chromium (Debian's
chromium and chromium-driver), driven through chromedriver's W3C WebDriver
protocol (plain HTTP/JSON, spoken here with http.client: the same protocol
Selenium speaks, without a client library to install).

Two browser sessions with different user tokens (JWTs of two users) open one
channel on a real `msgstore serve`; a message posted in one appears in the
other within 1 s (both times taken in the browsers); the other sees the
first one typing, reacts, and scrolls back to older pages. Screenshots of
both sessions are saved under the build directory (console-test/).

Run: ctest -R e2e_console_browser, or python3 tests/e2e/test_console_browser.py
with MSGSTORE_BIN (and MSGSTORE_BINARY_DIR for the screenshots).
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import BINARY_DIR, Failure, Server, check, expect, run  # noqa: E402

SECRET = "console-jwt-secret-0123456789abcdef-0123"
ID_FORMAT = os.environ.get("MSGSTORE_ID_FORMAT", "int64")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")
SHOTS = os.path.join(BINARY_DIR, "console-test")


def new_id():
    if ID_FORMAT == "uuid":
        return str(uuid.uuid4())
    return str(random.randrange(10**12, 10**15))


def jwt(sub, channels):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    si = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(
        {"sub": sub, "exp": int(time.time()) + 3600, "channels": channels}).encode())
    return si + "." + b64(hmac.new(SECRET.encode(), si.encode(), hashlib.sha256).digest())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class WebDriver:
    """One chromedriver process; sessions are browsers of their own."""

    def __init__(self, tmp):
        self.port = free_port()
        self.log = open(os.path.join(tmp, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen([CHROMEDRIVER, "--port=%d" % self.port], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.call("GET", "/status")["ready"]:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise Failure("chromedriver did not start")

    def call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = json.loads(r.read() or b"{}")
        finally:
            conn.close()
        if r.status != 200:
            raise Failure("webdriver %s %s: %d %s" % (method, path, r.status, data))
        return data.get("value")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Browser:
    def __init__(self, wd, profile_dir):
        self.wd = wd
        # As root Chromium needs --no-sandbox; the closed network refuses its background
        # connections, so they are off; a fresh profile per session.
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1000,700", "--user-data-dir=" + profile_dir]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}}
        self.sid = wd.call("POST", "/session", caps)["sessionId"]

    def _p(self, rest):
        return "/session/%s%s" % (self.sid, rest)

    def go(self, url):
        self.wd.call("POST", self._p("/url"), {"url": url})

    def find(self, css):
        return self.wd.call("POST", self._p("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css, text):
        self.wd.call("POST", self._p("/element/%s/value" % self.find(css)), {"text": text})

    def click(self, css):
        self.wd.call("POST", self._p("/element/%s/click" % self.find(css)), {})

    def js(self, script, *args):
        return self.wd.call("POST", self._p("/execute/sync"), {"script": script, "args": list(args)})

    def wait(self, script, what, timeout=10.0, *args):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = self.js(script, *args)
            if v:
                return v
            time.sleep(0.05)
        raise Failure("browser: timed out waiting for " + what + "; status: " +
                      str(self.js("return document.getElementById('status').textContent")))

    def screenshot(self, path):
        png = base64.b64decode(self.wd.call("GET", self._p("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)
        return png

    def quit(self):
        try:
            self.wd.call("DELETE", self._p(""))
        except (Failure, OSError):
            pass

    def open_channel(self, base, token, channel):
        self.go(base + "/console")
        self.type("#token", token)
        self.type("#channel", channel)
        self.click("#open")
        self.wait("return document.getElementById('status').textContent.startsWith('live')",
                  "the live stream")


def setup():
    tmp = tempfile.mkdtemp(prefix="msgstore-console-")
    os.makedirs(SHOTS, exist_ok=True)
    ctx = {"tmp": tmp, "browsers": []}
    ctx["srv"] = Server(tmp, env={"MSGSTORE_JWT_SECRET": SECRET})
    ctx["wd"] = WebDriver(tmp)
    return ctx


def teardown(ctx):
    if ctx is None:
        return
    for b in ctx["browsers"]:
        b.quit()
    if "wd" in ctx:
        ctx["wd"].stop()
    rc = ctx["srv"].stop()
    log = ctx["srv"].log()
    if not os.environ.get("E2E_KEEP"):
        shutil.rmtree(ctx["tmp"], ignore_errors=True)
    if rc != 0:  # a sanitizer report (ASan build) or a crash
        raise Failure("msgstore exited %r: %s" % (rc, log[-3000:]))


def test_two_users_live_in_one_channel(ctx):
    srv = ctx["srv"]
    base = "http://127.0.0.1:%d" % srv.port
    ch, alice, bob = new_id(), new_id(), new_id()
    # history to scroll back through: 60 messages (a page is 50)
    svc = srv.client()
    for i in range(60):
        expect(svc.post("/v1/channels/%s/messages" % ch,
                        {"content": "history %02d" % i, "sender_id": new_id()}), 201)
    a = Browser(ctx["wd"], os.path.join(ctx["tmp"], "profile-a"))
    ctx["browsers"].append(a)
    b = Browser(ctx["wd"], os.path.join(ctx["tmp"], "profile-b"))
    ctx["browsers"].append(b)
    a.open_channel(base, jwt(alice, [ch]), ch)
    b.open_channel(base, jwt(bob, [ch]), ch)
    check(a.js("return document.getElementById('user').value") == alice, "user from the token's sub")

    # scroll back: the newest page is shown, the older one comes on demand
    shown = "return document.querySelectorAll('#messages .msg').length"
    check(b.js(shown) == 50, "first page", b.js(shown))
    b.js("document.getElementById('log').scrollTop = 0;"
         "document.getElementById('log').dispatchEvent(new Event('scroll'));")
    b.wait("return document.querySelectorAll('#messages .msg').length === 60", "older messages")
    first = b.js("return document.querySelector('#messages .msg .text').textContent")
    check(first == "history 00", "oldest message at the top after scrolling back", first)

    # B records when a message arrives; A takes the time it sends
    b.js("window.__seen = null; const want = arguments[0];"
         "new MutationObserver((ms, obs) => {"
         "  for (const el of document.querySelectorAll('#messages .msg .text'))"
         "    if (el.textContent === want) { window.__seen = Date.now(); obs.disconnect(); }"
         "}).observe(document.getElementById('messages'), {childList: true, subtree: true});",
         "hello from alice")
    a.type("#text", "hello from alice")  # typing: B is told
    b.wait("return document.getElementById('typing').textContent.includes(arguments[0])",
           "typing shown", 10.0, alice)
    sent = a.js("const t = Date.now(); document.getElementById('send').click(); return t;")
    seen = b.wait("return window.__seen", "the message in the other browser", 10.0)
    delay_ms = seen - sent
    print("delivered to the other browser in %d ms" % delay_ms)
    check(delay_ms <= 1000, "a message posted in one browser appears in the other within 1 s",
          delay_ms)
    sender = b.js("const els = [...document.querySelectorAll('#messages .msg')];"
                  "const m = els.find(e => e.querySelector('.text').textContent === arguments[0]);"
                  "return m && m.querySelector('.who').textContent;", "hello from alice")
    check(sender == alice, "posted as alice's sub", sender)

    # B reacts; A sees the count
    b.js("const els = [...document.querySelectorAll('#messages .msg')];"
         "els.find(e => e.querySelector('.text').textContent === arguments[0])"
         "   .querySelector('button.react').click();", "hello from alice")
    a.wait("const els = [...document.querySelectorAll('#messages .msg')];"
           "const m = els.find(e => e.querySelector('.text').textContent === arguments[0]);"
           "return m && m.querySelector('.reactions').textContent.endsWith(' 1');",
           "the reaction in the other browser", 10.0, "hello from alice")
    for name, br in (("alice", a), ("bob", b)):
        png = br.screenshot(os.path.join(SHOTS, "console-%s.png" % name))
        check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000, "a screenshot", len(png))
    print("screenshots in", SHOTS)


def test_outside_the_claims_the_page_says_so(ctx):
    srv = ctx["srv"]
    base = "http://127.0.0.1:%d" % srv.port
    ch, other, carol = new_id(), new_id(), new_id()
    c = Browser(ctx["wd"], os.path.join(ctx["tmp"], "profile-c"))
    ctx["browsers"].append(c)
    c.go(base + "/console")
    c.type("#token", jwt(carol, [ch]))
    c.type("#channel", other)
    c.click("#open")
    msg = c.wait("const s = document.getElementById('status');"
                 "return s.className === 'error' && s.textContent;", "the refusal")
    check(msg.startswith("forbidden"), "403 shown", msg)


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
