#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
End-to-end tests of the two kinds of credentials, the browser transport and
the rate limits, on real `msgstore serve` processes:
- user tokens (JWT): HS256, EdDSA and RS256 accepted; expired, not yet valid,
  wrong signature, alg none, HS/RS confusion, wrong aud refused with 401;
  a channel outside the claims, a user id other than sub, another user's
  message, a read-only scope and service-only routes refused with 403; ids
  left out filled in from sub;
- ?access_token= on SSE and WebSocket (and nowhere else), never in the logs;
- CORS preflights for an allowed and a refused origin, CORS headers on answers;
- 429 with Retry-After and the error JSON from the per-user and per-service
  buckets, counted in /metrics.

JWTs are made here (hmac for HS256, the openssl command for EdDSA and RS256).
Run: ctest -R e2e_auth, or python3 tests/e2e/test_auth.py with MSGSTORE_BIN.
"""
import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import TOKEN, Client, Failure, Server, check, expect, run  # noqa: E402
from rtclient import SseClient, WsClient, WsClosed  # noqa: E402

SECRET = "e2e-jwt-secret-0123456789abcdef-0123456789"
ID_FORMAT = os.environ.get("MSGSTORE_ID_FORMAT", "int64")
BASE = random.randrange(10**12, 10**15)
_next = [0]


def new_id():
    """A fresh channel or user id in the store's format."""
    _next[0] += 1
    if ID_FORMAT == "uuid":
        return str(uuid.uuid4())
    return str(BASE + _next[0])


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def signing_input(header, claims):
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())


def hs256(claims, secret=SECRET, header=None):
    si = signing_input(header or {"alg": "HS256", "typ": "JWT"}, claims)
    if isinstance(secret, str):
        secret = secret.encode()
    return si + "." + b64(hmac.new(secret, si.encode(), hashlib.sha256).digest())


def openssl_sign(alg, key, claims, tmp):
    si = signing_input({"alg": alg, "typ": "JWT"}, claims)
    path = os.path.join(tmp, "si")
    with open(path, "wb") as f:
        f.write(si.encode())
    if alg == "RS256":
        cmd = ["openssl", "dgst", "-sha256", "-sign", key, path]
    else:
        cmd = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", path]
    sig = subprocess.run(cmd, check=True, capture_output=True).stdout
    return si + "." + b64(sig)


def claims(sub, channels="*", **extra):
    c = {"sub": sub, "exp": int(time.time()) + 600}
    if channels is not None:
        c["channels"] = channels
    c.update(extra)
    return c


def user_client(srv, tok):
    return Client(srv.port, token=tok)


def msgs(ch):
    return "/v1/channels/%s/messages" % ch


def setup():
    tmp = tempfile.mkdtemp(prefix="msgstore-e2e-auth-")
    ctx = {"tmp": tmp}
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", tmp + "/ed.pem"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", tmp + "/ed.pem", "-pubout", "-out", tmp + "/ed.pub"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", tmp + "/rsa.pem"], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", tmp + "/rsa.pem", "-pubout", "-out", tmp + "/rsa.pub"],
                   check=True, capture_output=True)
    os.makedirs(tmp + "/hs")
    ctx["srv"] = Server(tmp + "/hs", env={"MSGSTORE_JWT_SECRET": SECRET,
                                          "MSGSTORE_CORS_ORIGINS": "http://app.example, http://b.example",
                                          "MSGSTORE_LOG_FORMAT": "text"})
    ctx["c"] = ctx["srv"].client()
    return ctx


def teardown(ctx):
    if ctx is None:
        return
    ctx["c"].close()
    bad = []
    for name in ("srv", "rsa", "ed", "aud", "rl", "nocors", "exp"):
        if name in ctx:
            rc = ctx[name].stop()
            if rc != 0:  # a sanitizer report (ASan build) or a crash
                bad.append((name, rc, ctx[name].log()[-3000:]))
    if not os.environ.get("E2E_KEEP"):
        shutil.rmtree(ctx["tmp"], ignore_errors=True)
    if bad:
        raise Failure("servers exited badly: %r" % bad)


def other_server(ctx, name, env):
    if name not in ctx:
        os.makedirs(os.path.join(ctx["tmp"], name))
        ctx[name] = Server(os.path.join(ctx["tmp"], name), env=env)
    return ctx[name]


# ---------------------------------------------------------------------------


def test_user_token_posts_as_its_sub(ctx):
    srv = ctx["srv"]
    ch, me = new_id(), new_id()
    c = user_client(srv, hs256(claims(me, [ch])))
    m = expect(c.post(msgs(ch), {"content": "hello"}), 201)
    check(m["sender_id"] == me, "sender_id filled in from sub", m)
    m = expect(c.post(msgs(ch), {"content": "again", "sender_id": me}), 201)
    check(m["sender_id"] == me, "its own sender_id accepted", m)
    page = expect(c.get(msgs(ch)), 200)
    check(len(page["messages"]) == 2, "reads its channel", page)


def test_sub_not_matching_the_body(ctx):
    ch, me, other = new_id(), new_id(), new_id()
    c = user_client(ctx["srv"], hs256(claims(me, [ch])))
    expect(c.post(msgs(ch), {"content": "spoof", "sender_id": other}), 403, "forbidden")
    expect(c.post("/v1/channels/%s/typing" % ch, {"user_id": other}), 403, "forbidden")
    r = c.post("/v1/channels/%s/typing" % ch, {})
    check(r.status == 204, "typing without user_id: sub", r)
    # nothing was stored by the refused post
    page = expect(ctx["c"].get(msgs(ch)), 200)
    check(page["messages"] == [], "a refused request changes nothing", page)


def test_channel_outside_claims(ctx):
    ch, other_ch, me = new_id(), new_id(), new_id()
    c = user_client(ctx["srv"], hs256(claims(me, [ch])))
    expect(c.post(msgs(other_ch), {"content": "x"}), 403, "forbidden")
    expect(c.get(msgs(other_ch)), 403, "forbidden")
    r = c.stream("/v1/channels/%s/events" % other_ch)
    check(r.status == 403, "no subscription outside the claims", r)
    # no channels claim: no channel; "*": every channel
    expect(user_client(ctx["srv"], hs256(claims(me, None))).get(msgs(ch)), 403, "forbidden")
    expect(user_client(ctx["srv"], hs256(claims(me, "*"))).get(msgs(other_ch)), 200)


def test_other_users_path_ids(ctx):
    ch, me, other = new_id(), new_id(), new_id()
    svc = ctx["c"]
    m = expect(svc.post(msgs(ch), {"content": "react to me", "sender_id": other}), 201)
    c = user_client(ctx["srv"], hs256(claims(me, [ch])))
    thumbs = urllib.parse.quote("\U0001F44D")
    base = "%s/%s/reactions/%s/" % (msgs(ch), m["id"], thumbs)
    expect(c.put(base + other), 403, "forbidden")
    expect(c.put(base + me), 201)
    expect(c.put("/v1/channels/%s/read-positions/%s" % (ch, other), {"message_id": m["id"]}), 403)
    expect(c.put("/v1/channels/%s/read-positions/%s" % (ch, me), {"message_id": m["id"]}), 200)
    expect(c.get("/v1/channels/%s/read-positions/%s" % (ch, other)), 403)


def test_edit_and_delete_only_own_messages(ctx):
    ch, alice, bob = new_id(), new_id(), new_id()
    a = user_client(ctx["srv"], hs256(claims(alice, [ch])))
    b = user_client(ctx["srv"], hs256(claims(bob, [ch])))
    m = expect(a.post(msgs(ch), {"content": "mine"}), 201)
    path = "%s/%s" % (msgs(ch), m["id"])
    expect(b.patch(path, {"content": "hijacked"}), 403, "forbidden")
    expect(b.delete(path), 403, "forbidden")
    check(expect(a.get(path), 200)["content"] == "mine", "unchanged after the refusals")
    check(expect(a.patch(path, {"content": "edited"}), 200)["content"] == "edited", "own edit")
    check(expect(a.delete(path), 200)["is_deleted"], "own delete")
    expect(b.patch("%s/%s" % (msgs(ch), "12345"), {"content": "x"}), 404)


def test_service_only_routes(ctx):
    ch, me = new_id(), new_id()
    svc = ctx["c"]
    m = expect(svc.post(msgs(ch), {"content": "pin me", "sender_id": me}), 201)
    c = user_client(ctx["srv"], hs256(claims(me, "*")))
    expect(c.put("/v1/channels/%s/pins/%s" % (ch, m["id"]), {"pinned_by": me}), 403, "forbidden")
    expect(c.put("/v1/channels/%s" % ch, {"name": "x"}), 403, "forbidden")
    expect(c.put("/v1/channels/%s/telegram-sync" % ch,
                 {"telegram_chat_id": "-100", "last_synced_message_id": "1"}), 403, "forbidden")
    expect(c.get("/v1/channels/%s/telegram-sync" % ch), 403, "forbidden")
    expect(c.get("/v1/telegram/-100/messages/1"), 403, "forbidden")
    expect(svc.put("/v1/channels/%s/pins/%s" % (ch, m["id"]), {"pinned_by": me}), 201)
    expect(c.get("/v1/channels/%s/pins" % ch), 200)


def test_search_within_claims(ctx):
    ch, other_ch, me = new_id(), new_id(), new_id()
    svc = ctx["c"]
    expect(svc.post(msgs(ch), {"content": "needle in mine", "sender_id": me}), 201)
    expect(svc.post(msgs(other_ch), {"content": "needle in theirs", "sender_id": me}), 201)
    c = user_client(ctx["srv"], hs256(claims(me, [ch])))
    r = expect(c.get("/v1/channels/%s/search?q=needle" % ch), 200)
    check(len(r["hits"]) == 1, "its channel is searched", r)
    expect(c.get("/v1/channels/%s/search?q=needle" % other_ch), 403, "forbidden")
    r = expect(c.get("/v1/search?q=needle&channels=%s" % ch), 200)
    check(len(r["hits"]) == 1, "across its channels", r)
    expect(c.get("/v1/search?q=needle&channels=%s,%s" % (ch, other_ch)), 403, "forbidden")


def test_scope(ctx):
    ch, me = new_id(), new_id()
    ro = user_client(ctx["srv"], hs256(claims(me, [ch], scope="read")))
    expect(ro.get(msgs(ch)), 200)
    expect(ro.post(msgs(ch), {"content": "x"}), 403, "forbidden")
    wo = user_client(ctx["srv"], hs256(claims(me, [ch], scope=["write"])))
    expect(wo.get(msgs(ch)), 403, "forbidden")
    expect(wo.post(msgs(ch), {"content": "x"}), 201)


def test_expired_and_not_yet_valid(ctx):
    ch, me = new_id(), new_id()
    now = int(time.time())
    for bad, why in ((claims(me, [ch], exp=now - 3600), "expired"),
                     (claims(me, [ch], nbf=now + 3600), "nbf"),
                     ({"sub": me, "channels": [ch]}, "exp")):
        r = user_client(ctx["srv"], hs256(bad)).get(msgs(ch))
        expect(r, 401, "unauthorized")
        check(why in r.data["error"]["message"], "the reason is given", r)
        check(r.headers.get("www-authenticate", "").startswith("Bearer"), "WWW-Authenticate", r)
    # within the clock leeway (30 s by default)
    expect(user_client(ctx["srv"], hs256(claims(me, [ch], exp=now - 5))).get(msgs(ch)), 200)
    expect(user_client(ctx["srv"], hs256(claims(me, [ch], nbf=now + 5))).get(msgs(ch)), 200)


def test_wrong_signature_and_alg_none(ctx):
    ch, me = new_id(), new_id()
    good = hs256(claims(me, [ch]))
    forged = hs256(claims(me, [ch]), secret="another-secret-0123456789abcdef-0123")
    expect(user_client(ctx["srv"], forged).get(msgs(ch)), 401, "unauthorized")
    head, payload, sig = good.split(".")
    tampered = head + "." + b64(json.dumps(claims(new_id(), "*")).encode()) + "." + sig
    expect(user_client(ctx["srv"], tampered).get(msgs(ch)), 401, "unauthorized")
    none = signing_input({"alg": "none", "typ": "JWT"}, claims(me, [ch])) + "."
    r = user_client(ctx["srv"], none).get(msgs(ch))
    expect(r, 401, "unauthorized")
    none_sig = signing_input({"alg": "none"}, claims(me, [ch])) + "." + sig
    expect(user_client(ctx["srv"], none_sig).get(msgs(ch)), 401, "unauthorized")
    # the secret server refuses asymmetric algorithms (no public key configured)
    rs = openssl_sign("RS256", ctx["tmp"] + "/rsa.pem", claims(me, [ch]), ctx["tmp"])
    expect(user_client(ctx["srv"], rs).get(msgs(ch)), 401, "unauthorized")


def test_rs256_and_hs_rs_confusion(ctx):
    srv = other_server(ctx, "rsa", {"MSGSTORE_JWT_PUBLIC_KEY_FILE": ctx["tmp"] + "/rsa.pub"})
    ch, me = new_id(), new_id()
    tok = openssl_sign("RS256", ctx["tmp"] + "/rsa.pem", claims(me, [ch]), ctx["tmp"])
    expect(user_client(srv, tok).post(msgs(ch), {"content": "rs256"}), 201)
    # HS256 signed with the public key's PEM text as the HMAC secret: the classic confusion
    with open(ctx["tmp"] + "/rsa.pub", "rb") as f:
        pem = f.read()
    confused = hs256(claims(me, [ch]), secret=pem)
    expect(user_client(srv, confused).get(msgs(ch)), 401, "unauthorized")
    # EdDSA is not RSA's kind either
    ed = openssl_sign("EdDSA", ctx["tmp"] + "/ed.pem", claims(me, [ch]), ctx["tmp"])
    expect(user_client(srv, ed).get(msgs(ch)), 401, "unauthorized")


def test_eddsa(ctx):
    srv = other_server(ctx, "ed", {"MSGSTORE_JWT_PUBLIC_KEY_FILE": ctx["tmp"] + "/ed.pub"})
    ch, me = new_id(), new_id()
    tok = openssl_sign("EdDSA", ctx["tmp"] + "/ed.pem", claims(me, [ch]), ctx["tmp"])
    m = expect(user_client(srv, tok).post(msgs(ch), {"content": "ed25519"}), 201)
    check(m["sender_id"] == me, "sub", m)
    with open(ctx["tmp"] + "/ed.pub", "rb") as f:
        pem = f.read()
    expect(user_client(srv, hs256(claims(me, [ch]), secret=pem)).get(msgs(ch)), 401)
    rs = openssl_sign("RS256", ctx["tmp"] + "/rsa.pem", claims(me, [ch]), ctx["tmp"])
    expect(user_client(srv, rs).get(msgs(ch)), 401, "unauthorized")


def test_audience(ctx):
    srv = other_server(ctx, "aud", {"MSGSTORE_JWT_SECRET": SECRET, "MSGSTORE_JWT_AUDIENCE": "msgstore"})
    ch, me = new_id(), new_id()
    expect(user_client(srv, hs256(claims(me, [ch], aud="msgstore"))).get(msgs(ch)), 200)
    expect(user_client(srv, hs256(claims(me, [ch], aud=["other", "msgstore"]))).get(msgs(ch)), 200)
    r = user_client(srv, hs256(claims(me, [ch], aud="other"))).get(msgs(ch))
    expect(r, 401, "unauthorized")
    check("aud" in r.data["error"]["message"], "the reason", r)
    expect(user_client(srv, hs256(claims(me, [ch]))).get(msgs(ch)), 401, "unauthorized")


def test_access_token_on_sse_and_ws_only(ctx):
    srv = ctx["srv"]
    ch, me = new_id(), new_id()
    tok = hs256(claims(me, [ch]))
    q = "?access_token=" + urllib.parse.quote(tok)
    sse = SseClient("127.0.0.1", srv.port, "/v1/channels/%s/events%s" % (ch, q))
    try:
        check(sse.status == 200, "SSE with ?access_token=", sse.status)
        expect(user_client(srv, tok).post(msgs(ch), {"content": "live"}), 201)
        ev = sse.next_event(timeout=5)
        check(ev["event"] == "message.created" and json.loads(ev["data"])["data"]["content"] == "live",
              "event delivered", ev)
    finally:
        sse.close()
    # not on other routes, and a bad one is refused
    r = Client(srv.port, token=None).get(msgs(ch) + q)
    expect(r, 401, "unauthorized")
    r = Client(srv.port, token=None).stream("/v1/channels/%s/events?access_token=nope" % ch)
    check(r.status == 401, "bad access_token", r)
    check("nope" not in r.body.decode(), "the token is not echoed", r)
    # WebSocket: subscribe within the claims only; typing only as sub
    other_ch = new_id()
    ws = WsClient("127.0.0.1", srv.port, path="/v1/ws" + q)
    try:
        check(ws.status == 101, "WebSocket with ?access_token=", ws.status)
        check(ws.recv_json()["type"] == "hello", "hello")
        ws.send_json({"op": "subscribe", "channels": [other_ch]})
        e = ws.recv_json()
        check(e["type"] == "error" and e["code"] == "forbidden", "outside the claims", e)
        ws.send_json({"op": "subscribe", "channels": [ch]})
        check(ws.recv_json()["type"] == "subscribed", "inside the claims")
        ws.send_json({"op": "typing", "channel": ch, "user_id": new_id()})
        e = ws.recv_json()
        check(e["type"] == "error" and e["code"] == "forbidden", "typing as another user", e)
        ws.send_json({"op": "typing", "channel": ch})
        e = ws.recv_json()
        check(e.get("type") != "error" and "typing" in json.dumps(e), "typing as sub goes out", e)
    finally:
        ws.close()


def test_cors(ctx):
    c = ctx["c"]
    ch = new_id()
    pre = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    r = Client(ctx["srv"].port, token=None).request("OPTIONS", msgs(ch), headers=pre, validate=False)
    check(r.status == 204, "preflight answered", r)
    check(r.headers.get("access-control-allow-origin") == "http://app.example", "origin", r.headers)
    check("POST" in r.headers.get("access-control-allow-methods", ""), "methods", r.headers)
    check("authorization" in r.headers.get("access-control-allow-headers", "").lower(), "headers", r.headers)
    check(int(r.headers.get("access-control-max-age", "0")) > 0, "max-age", r.headers)
    pre["Origin"] = "http://evil.example"
    r = Client(ctx["srv"].port, token=None).request("OPTIONS", msgs(ch), headers=pre, validate=False)
    check(r.status == 403, "preflight of an origin not listed refused", r)
    check(not any(k.startswith("access-control-") for k in r.headers), "no CORS headers", r.headers)
    r = c.get(msgs(ch), headers={"Origin": "http://b.example"})
    check(r.status == 200 and r.headers.get("access-control-allow-origin") == "http://b.example",
          "actual answer carries the origin", r.headers)
    r = c.get(msgs(ch), headers={"Origin": "http://evil.example"})
    check(r.status == 200 and "access-control-allow-origin" not in r.headers, "not for others", r.headers)
    # no MSGSTORE_CORS_ORIGINS: no CORS at all
    srv = other_server(ctx, "nocors", {})
    pre["Origin"] = "http://app.example"
    r = Client(srv.port, token=None).request("OPTIONS", msgs(ch), headers=pre, validate=False)
    check(r.status == 405 and "access-control-allow-origin" not in r.headers, "CORS off", r)


def test_rate_limits(ctx):
    srv = other_server(ctx, "rl", {"MSGSTORE_JWT_SECRET": SECRET, "MSGSTORE_RATE_LIMIT_USER": "1",
                                   "MSGSTORE_RATE_LIMIT_USER_BURST": "3",
                                   "MSGSTORE_RATE_LIMIT_SERVICE": "1",
                                   "MSGSTORE_RATE_LIMIT_SERVICE_BURST": "5"})
    ch, alice, bob = new_id(), new_id(), new_id()
    a = user_client(srv, hs256(claims(alice, [ch])))
    statuses = [a.get(msgs(ch)).status for _ in range(6)]
    check(statuses[:3] == [200, 200, 200] and 429 in statuses[3:], "user bucket of 3", statuses)
    r = a.get(msgs(ch))
    expect(r, 429, "rate_limited")
    check(int(r.headers.get("retry-after", "0")) >= 1, "Retry-After", r.headers)
    # another user has a bucket of its own; so has a second token of the same user? no: per sub
    expect(user_client(srv, hs256(claims(bob, [ch]))).get(msgs(ch)), 200)
    expect(user_client(srv, hs256(claims(alice, "*"))).get(msgs(ch)), 429, "rate_limited")
    svc = srv.client()
    statuses = [svc.get(msgs(ch)).status for _ in range(8)]
    check(statuses[:5] == [200] * 5 and statuses[-1] == 429, "service bucket of 5", statuses)
    time.sleep(1.2)
    expect(a.get(msgs(ch)), 200)  # refilled at 1 per second
    text = Client(srv.port, token=None).get("/metrics").body.decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("msgstore_rate_limited_total{"):
            counts[line.split('kind="')[1].split('"')[0]] = float(line.split()[-1])
    check(counts.get("user", 0) >= 3 and counts.get("service", 0) >= 1, "refusals counted", counts)


def test_websocket_messages_rate_limited(ctx):
    srv = other_server(ctx, "rl", {"MSGSTORE_JWT_SECRET": SECRET, "MSGSTORE_RATE_LIMIT_USER": "1",
                                   "MSGSTORE_RATE_LIMIT_USER_BURST": "3",
                                   "MSGSTORE_RATE_LIMIT_SERVICE": "1",
                                   "MSGSTORE_RATE_LIMIT_SERVICE_BURST": "5"})
    ch, carol = new_id(), new_id()
    q = "?access_token=" + urllib.parse.quote(hs256(claims(carol, [ch])))
    ws = WsClient("127.0.0.1", srv.port, path="/v1/ws" + q)  # the upgrade takes one
    try:
        check(ws.status == 101, "upgrade", ws.status)
        check(ws.recv_json()["type"] == "hello", "hello")
        answers = []
        for i in range(4):
            ws.send_json({"op": "ping", "id": i})
            answers.append(ws.recv_json())
        kinds = [a.get("code") if a["type"] == "error" else a["type"] for a in answers]
        check(kinds[:2] == ["pong", "pong"] and "rate_limited" in kinds[2:], "messages counted", kinds)
    finally:
        ws.close()


def test_sessions_end_with_the_token(ctx):
    """An SSE stream and a WebSocket of a user token are closed once the token expires
    (checked with the 15 s keep-alive ping; no leeway configured here)."""
    srv = other_server(ctx, "exp", {"MSGSTORE_JWT_SECRET": SECRET, "MSGSTORE_JWT_LEEWAY": "0"})
    ch, dave = new_id(), new_id()
    tok = hs256(claims(dave, [ch], exp=int(time.time()) + 2))
    q = "?access_token=" + urllib.parse.quote(tok)
    sse = SseClient("127.0.0.1", srv.port, "/v1/channels/%s/events%s" % (ch, q))
    ws = WsClient("127.0.0.1", srv.port, path="/v1/ws" + q)
    try:
        check(sse.status == 200 and ws.status == 101, "open while the token is valid")
        check(ws.recv_json()["type"] == "hello", "hello")
        deadline = time.time() + 25
        ended = False
        while time.time() < deadline and not ended:
            try:
                sse.next_event(timeout=1)
            except socket.timeout:
                pass
            except (WsClosed, OSError):
                ended = True
        check(ended, "the SSE stream ended after exp")
        got = ws.recv_json(timeout=10)
        check(got.get("type") == "error" and got.get("code") == "unauthorized", "told why", got)
    finally:
        sse.close()
        ws.close()


def test_zz_tokens_never_logged(ctx):
    """Every token of this suite went through the main server; none is in its log."""
    log = ctx["srv"].log()
    check("access_token" not in log, "no ?access_token= in the access log")
    check(SECRET not in log and TOKEN not in log, "no secret in the log")
    check(".eyJ" not in log and "eyJ" not in log, "no JWT in the log")


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
