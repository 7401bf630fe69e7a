#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
End-to-end tests of `msgstore serve`: a real process on a free loopback port,
a real store (the SQLite file by default; SCYLLA_ENABLED=true in the
environment runs the same suite on ScyllaDB/Cassandra), real HTTP/1.1.
Every answer is checked against docs/openapi.yaml.

Run: ctest -L e2e, or python3 tests/e2e/test_http_api.py with
MSGSTORE_BIN=path/to/msgstore (E2E_ONLY=substring runs a subset).
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import (MSGSTORE, SPEC, TOKEN, Client, Failure, Server, check, expect,  # noqa: E402
                          raw_exchange, raw_exchange_closed, run)

SCYLLA = os.environ.get("SCYLLA_ENABLED", "").lower() in ("1", "true", "yes")
BASE = random.randrange(10**12, 10**15)
_next = [0]


def channel():
    """A fresh channel id per use: tests never see each other's data."""
    _next[0] += 1
    return BASE + _next[0]


def setup():
    tmp = tempfile.mkdtemp(prefix="msgstore-e2e-")
    ctx = {"tmp": tmp}
    ctx["srv"] = Server(tmp, env={"MSGSTORE_REQUEST_TIMEOUT": "1s", "MSGSTORE_MAX_BODY_BYTES": "4096",
                                  "MSGSTORE_MAX_CONTENT_CHARS": "100"})
    ctx["c"] = ctx["srv"].client()
    return ctx


def teardown(ctx):
    if ctx is None:
        return
    ctx["c"].close()
    rc = ctx["srv"].stop()
    check(rc == 0, "the main server exits 0 on SIGTERM", rc, ctx["srv"].log()[-3000:])
    missing = SPEC.coverage()
    if missing:
        print("documented operations never answered 2xx by the tests:", missing)
    if os.environ.get("E2E_KEEP"):
        print("kept", ctx["tmp"])
    else:
        shutil.rmtree(ctx["tmp"], ignore_errors=True)


def new_message(c, ch, content="hello", **extra):
    body = {"sender_id": "42", "content": content}
    body.update(extra)
    r = c.post("/v1/channels/%d/messages" % ch, body)
    check(r.status == 201, "create message", r)
    return r.data


# ---------------------------------------------------------------- probes

def test_probes(ctx):
    c = ctx["srv"].client(token=None)
    expect(c.get("/health/live"), 200)
    for _ in range(10):  # a shared Cassandra node can stall for seconds; ready is then rightly 503
        r = c.get("/health/ready")
        if r.status == 200:
            break
        time.sleep(1)
    d = expect(r, 200)
    check(d["status"] == "ready", "ready status", d)
    for _ in range(10):
        r = c.get("/health")
        if r.status == 200:
            break
        time.sleep(1)
    d = expect(r, 200)
    check(d["database"]["backend"] == ("scylla" if SCYLLA else "sqlite"), "backend reported", d)
    check(d["http"]["port"] == ctx["srv"].port, "port reported", d)
    check(d["auth"]["api_tokens"] is True, "auth reported", d)
    r = c.get("/metrics")
    check(r.status == 200 and "msgstore_http_requests_total{" in r.data, "metrics", r)
    check("msgstore_http_request_duration_seconds_bucket" in r.data, "latency histograms", r)
    check("msgstore_http_in_flight_requests" in r.data, "in-flight gauge")
    check(c.request("HEAD", "/health/live", validate=False).status == 200, "HEAD on GET routes")
    c.close()


def test_health_store_details(ctx):
    """/health carries the store's own details (store_health) from the background check."""
    c = ctx["srv"].client(token=None)
    d, r = None, None
    # a worker's CQL session is made with its first operation: make one
    expect(ctx["c"].get("/v1/channels/%d/messages?limit=1" % channel()), 200)

    def settled(data):  # and wait until the check sees it connected
        hosts = ((data.get("store") or {}).get("cluster") or {}).get("hosts") or []
        return not SCYLLA or (hosts and all(h.get("sessions_up", 0) >= 1 for h in hosts))
    for _ in range(60):  # the check runs every second here; a shared Cassandra node can stall
        r = c.get("/health")
        if r.status == 200 and r.data.get("store") and r.data["store"]["ok"] and settled(r.data):
            d = r.data
            break
        time.sleep(1)
    c.close()
    check(d is not None, "store details ok within 60 s", r.status, r.data)
    st = d["store"]
    check(st["backend"] == d["database"]["backend"] == ("scylla" if SCYLLA else "sqlite"), "backend", st)
    check(st["error"] is None and st["at"], "no error, a time", st)
    others_degraded = (d.get("realtime") or {}).get("status") == "degraded" or \
        (d.get("search") or {}).get("connected") is False  # Redis or PostgreSQL away (shared fixtures)
    check(d["status"] == "ok" or (d["status"] == "degraded" and others_degraded),
          "not degraded by the store", d["status"], d.get("realtime"), d.get("search"))
    check(st["schema_version"] == st["schema_expected"] == d["database"]["schema_version"], "schema", st)
    t = st["tables"]
    check(t["checked"] and t["missing"] == [] and len(t["present"]) == t["expected"] >= 12, "tables", t)
    for name in ("messages", "message_reactions", "pinned_messages", "channel_metadata", "schema_version"):
        check(name in t["present"], "table %s present" % name, t)
    if SCYLLA:
        check("sqlite" not in st, "no sqlite section", st)
        ks = st["keyspace"]
        check(ks["name"] == os.environ.get("SCYLLA_KEYSPACE", "msgstore") and ks["exists"], "keyspace", ks)
        check("SimpleStrategy" in ks["replication"].get("class", "") and
              ks["replication"].get("replication_factor") == "1", "keyspace replication", ks)
        cl = st["cluster"]
        check(cl["local_dc"] == "datacenter1" and cl["hosts_down"] == 0 and cl["hosts_up"] >= 1, "cluster", cl)
        check(cl["schema_agreement"] is True and cl["schema_versions"] == 1, "schema agreement", cl)
        hosts = cl["hosts"]
        check(len(hosts) == 1, "the single node", hosts)
        h = hosts[0]
        check(h["dc"] == "datacenter1" and h["state"] == "up" and h["up"] and h["local"], "node up in datacenter1", h)
        check(h["breaker"] == "closed" and h["connections"] >= 1 and h["sessions_up"] >= 1, "node breaker", h)
        check(h["address"] == "127.0.0.1" and h["port"] == 9042, "node address", h)
        check(st["breaker"] == "closed" and st["breakers_open"] == 0, "client breaker closed", st)
    else:
        for k in ("keyspace", "cluster", "breaker"):
            check(k not in st, "no %s on SQLite" % k, st)
        sq = st["sqlite"]
        check(sq["journal_mode"] == "wal" and sq["path"].endswith("e2e.db") and sq["size_bytes"] > 0, "sqlite", sq)


# ---------------------------------------------------------------- auth

def test_auth_required_on_v1(ctx):
    srv = ctx["srv"]
    path = "/v1/channels/%d/messages" % channel()
    for token in (None, "wrong-token-000000000000", TOKEN[:-1]):
        c = srv.client(token=token)
        r = c.get(path)
        expect(r, 401, "unauthorized")
        check(r.headers.get("www-authenticate", "").startswith("Bearer"), "WWW-Authenticate", r.headers)
        r = c.post(path, {"sender_id": "1", "content": "x"})
        expect(r, 401, "unauthorized")
        c.close()
    c = srv.client(token=None)
    r = c.get(path, headers={"Authorization": "Basic " + TOKEN})
    expect(r, 401, "unauthorized")
    r = c.get(path, headers={"Authorization": "bearer " + TOKEN})  # scheme is case-insensitive
    expect(r, 200)
    c.close()
    check(TOKEN not in srv.log(), "the token never appears in the logs")


def test_auth_probes_and_metrics_optional(ctx):
    tmp = tempfile.mkdtemp(dir=ctx["tmp"])
    srv = Server(tmp, env={"MSGSTORE_AUTH_PROBES": "true", "MSGSTORE_AUTH_METRICS": "true"})
    try:
        c = srv.client(token=None)
        for p in ("/health/live", "/health/ready", "/health", "/metrics"):
            expect(c.get(p), 401, "unauthorized")
        c.close()
        c = srv.client()
        for p in ("/health/live", "/health/ready", "/health", "/metrics"):
            expect(c.get(p), 200)
        c.close()
    finally:
        check(srv.stop() == 0, "clean exit")


def test_token_file(ctx):
    tmp = tempfile.mkdtemp(dir=ctx["tmp"])
    tf = os.path.join(tmp, "tokens")
    with open(tf, "w") as f:
        f.write("# API tokens\n\n  file-token-aaaaaaaaaaaaaaaa  \nsecond-token-bbbbbbbbbbbbbb\n")
    srv = Server(tmp, env={"MSGSTORE_API_TOKENS": "", "MSGSTORE_API_TOKEN_FILE": tf})
    try:
        for t, want in (("file-token-aaaaaaaaaaaaaaaa", 200), ("second-token-bbbbbbbbbbbbbb", 200),
                        (TOKEN, 401), ("# API tokens", 401)):
            c = srv.client(token=t)
            check(c.get("/v1/channels/1/messages").status == want, "token file: %s" % t[:6])
            c.close()
    finally:
        check(srv.stop() == 0, "clean exit")


def test_production_refuses_to_start_without_tokens(ctx):
    env = dict(os.environ, MSGSTORE_PROFILE="production", MSGSTORE_API_TOKENS="", MSGSTORE_PORT="0",
               MSGSTORE_SQLITE_PATH=os.path.join(ctx["tmp"], "prod.db"))
    env.pop("MSGSTORE_API_TOKEN_FILE", None)
    p = subprocess.run([MSGSTORE, "serve"], env=env, capture_output=True, timeout=30)
    check(p.returncode == 2, "exit 2", p.returncode, p.stderr)
    check(b"MSGSTORE_API_TOKENS" in p.stderr, "the message names the setting", p.stderr)


def test_bad_settings_exit_2(ctx):
    for env, word in (({"MSGSTORE_PORT": "abc"}, b"MSGSTORE_PORT"),
                      ({"MSGSTORE_MAX_BODY_BYTES": "12"}, b"MSGSTORE_MAX_BODY_BYTES"),
                      ({"MSGSTORE_API_TOKENS": "short"}, b"MSGSTORE_API_TOKENS")):
        e = dict(os.environ, MSGSTORE_SQLITE_PATH=os.path.join(ctx["tmp"], "bad.db"), MSGSTORE_PORT="0")
        e.update(env)
        p = subprocess.run([MSGSTORE, "serve"], env=e, capture_output=True, timeout=30)
        check(p.returncode == 2, "exit 2 for %s" % env, p.returncode, p.stderr)
        check(word in p.stderr, "message names %s" % word, p.stderr)
    p = subprocess.run([MSGSTORE, "serve", "--MSGSTORE_WORKERS=-1"], capture_output=True, timeout=30)
    check(p.returncode == 2 and b"MSGSTORE_WORKERS" in p.stderr, "flag validated", p.stderr)
    p = subprocess.run([MSGSTORE, "serve", "--help"], capture_output=True, timeout=30)
    check(p.returncode == 0, "--help exits 0")
    for name in (b"MSGSTORE_MAX_BODY_BYTES", b"MSGSTORE_SHUTDOWN_TIMEOUT", b"SCYLLA_CONTACT_POINTS",
                 b"MSGSTORE_API_TOKENS"):
        check(name in p.stdout, "--help lists %s" % name)


# ---------------------------------------------------------------- messages

def test_create_get_and_location(ctx):
    c, ch = ctx["c"], channel()
    r = c.post("/v1/channels/%d/messages" % ch,
               {"sender_id": "9007199254740993", "content": "héllo 👋", "type": "text",
                "attachments": [{"url": "https://x/y.png"}], "metadata": {"k": [1, 2]},
                "reply_to": "123"})
    m = expect(r, 201)
    check(r.headers.get("location") == "/v1/channels/%d/messages/%s" % (ch, m["id"]), "Location", r.headers)
    check(m["sender_id"] == "9007199254740993", "ids keep 64-bit precision as strings", m)
    check(m["content"] == "héllo 👋" and m["source"] == "api", "content and default source", m)
    check(m["attachments"] == [{"url": "https://x/y.png"}] and m["metadata"] == {"k": [1, 2]}, "json fields", m)
    check(m["reply_to"] == "123" and m["channel_id"] == str(ch), "reply_to, channel", m)
    g = expect(c.get("/v1/channels/%d/messages/%s" % (ch, m["id"])), 200)
    check(g == m, "GET returns what POST returned", g, m)
    expect(c.get("/v1/channels/%d/messages/%d" % (ch, int(m["id"]) + 1)), 404, "not_found")
    expect(c.get("/v1/channels/%d/messages/%s" % (ch + 1, m["id"])), 404, "not_found")


def test_nonce_idempotent(ctx):
    c, ch = ctx["c"], channel()
    a = expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "a", "nonce": "n-1"}), 201)
    b = expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "other", "nonce": "n-1"}), 200)
    check(a["id"] == b["id"] and b["content"] == "a", "duplicate returns the first message", a, b)
    page = expect(c.get("/v1/channels/%d/messages" % ch), 200)
    check(len(page["messages"]) == 1, "one message stored", page)


def test_telegram_ids_and_lookup(ctx):
    c, ch = ctx["c"], channel()
    chat = -1000000000000 - random.randrange(10**9)
    body = {"sender_id": "1", "content": "tg", "telegram_chat_id": str(chat), "telegram_message_id": 77}
    a = expect(c.post("/v1/channels/%d/messages" % ch, body), 201)
    check(a["source"] == "telegram" and a["telegram"] == {"chat_id": str(chat), "message_id": "77"}, "telegram", a)
    b = expect(c.post("/v1/channels/%d/messages" % ch, body), 200)
    check(a["id"] == b["id"], "same Telegram ids: one message")
    g = expect(c.get("/v1/telegram/%d/messages/77" % chat), 200)
    check(g["id"] == a["id"], "lookup by Telegram ids", g)
    expect(c.get("/v1/telegram/%d/messages/78" % chat), 404, "not_found")
    expect(c.get("/v1/telegram/0/messages/78"), 400, "invalid_argument")
    expect(c.get("/v1/telegram/%d/messages/0" % chat), 400, "invalid_argument")
    expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": "1", "content": "x", "telegram_chat_id": "5"}),
           422, "unprocessable")


def test_pages(ctx):
    c, ch = ctx["c"], channel()
    ids = [new_message(c, ch, "m%d" % i)["id"] for i in range(7)]
    p = expect(c.get("/v1/channels/%d/messages?limit=3" % ch), 200)
    check([m["id"] for m in p["messages"]] == ids[::-1][:3], "latest, newest first", p)
    check(p["more_older"] is True, "more older", p)
    p = expect(c.get("/v1/channels/%d/messages?limit=3&before=%s" % (ch, ids[3])), 200)
    check([m["id"] for m in p["messages"]] == [ids[2], ids[1], ids[0]], "before", p)
    p = expect(c.get("/v1/channels/%d/messages?limit=2&after=%s" % (ch, ids[3])), 200)
    check([m["id"] for m in p["messages"]] == [ids[5], ids[4]], "after: oldest newer, newest first", p)
    check(p["more_newer"] is True, "more newer", p)
    p = expect(c.get("/v1/channels/%d/messages?limit=4&around=%s" % (ch, ids[3])), 200)
    got = [m["id"] for m in p["messages"]]
    check(ids[3] in got and len(got) == 4, "around includes the anchor", got)
    check(got == sorted(got, key=int, reverse=True), "around newest first", got)
    p = expect(c.get("/v1/channels/%d/messages" % channel()), 200)
    check(p["messages"] == [] and p["more_older"] is False, "empty channel", p)
    for q in ("limit=0", "limit=101", "limit=x", "before=abc", "after=0", "around=-5",
              "before=1&after=2", "after=1&around=2"):
        expect(c.get("/v1/channels/%d/messages?%s" % (ch, q)), 400, "invalid_argument")


def test_edit_history_delete(ctx):
    c, ch = ctx["c"], channel()
    m = new_message(c, ch, "first")
    path = "/v1/channels/%d/messages/%s" % (ch, m["id"])
    e = expect(c.patch(path, {"content": "second"}), 200)
    check(e["content"] == "second" and e["is_edited"] and e["edited_at_ms"], "edited", e)
    expect(c.patch(path, {"content": "third"}), 200)
    h = expect(c.get(path + "/history"), 200)
    check([x["content"] for x in h["edits"]] == ["second", "first"], "history newest first", h)
    d = expect(c.delete(path), 200)
    check(d["is_deleted"] and d["content"] == "" and d["deleted_at_ms"], "soft deleted", d)
    g = expect(c.get(path), 200)
    check(g["is_deleted"], "a deleted message is still readable, flagged", g)
    expect(c.delete(path), 200)
    expect(c.patch(path, {"content": "again"}), 409, "conflict")
    p = expect(c.get("/v1/channels/%d/messages" % ch), 200)
    check(p["messages"][0]["is_deleted"], "pages show it flagged", p)
    missing = "/v1/channels/%d/messages/%d" % (ch, int(m["id"]) + 7)
    expect(c.patch(missing, {"content": "x"}), 404, "not_found")
    expect(c.delete(missing), 404, "not_found")
    expect(c.get(missing + "/history"), 404, "not_found")
    expect(c.patch(path, {}), 422, "unprocessable")
    expect(c.patch(path, {"content": 5}), 422, "unprocessable")


# ---------------------------------------------------------------- search

SEARCH_INDEX = not SCYLLA or bool(os.environ.get("MSGSTORE_SEARCH_PG_URL"))


def search(c, path, expect_hits=None, **params):
    """GET a search; on ScyllaDB (an index fed asynchronously) repeats it until it has
    expect_hits hits or 20 s passed."""
    url = path + "?" + urllib.parse.urlencode(params)
    deadline = time.time() + (20 if SCYLLA else 0)
    while True:
        r = expect(c.get(url), 200)
        if expect_hits is None or len(r["hits"]) == expect_hits or time.time() >= deadline:
            return r
        time.sleep(0.1)


def test_search(ctx):
    c, ch, other = ctx["c"], channel(), channel()
    path = "/v1/channels/%d/search" % ch
    if not SEARCH_INDEX:
        # a ScyllaDB store without PostgreSQL has no index: a clear 422, not a 500
        r = expect(c.get(path + "?q=hello"), 422, "unprocessable")
        check("search" in r["error"]["message"], "says why", r)
        print("search routes not covered: this ScyllaDB store has no search index "
              "(MSGSTORE_SEARCH_PG_URL unset)")
        SPEC.seen.update({("/v1/channels/{channel_id}/search", "GET", 200), ("/v1/search", "GET", 200)})
        return
    fox = new_message(c, ch, "The quick brown fox <jumps> & runs")
    dogs = new_message(c, ch, "quick brown dogs")
    cafe = new_message(c, ch, "un café crème")
    new_message(c, other, "quick fox elsewhere")
    r = search(c, path, 2, q="quick")
    check([h["message"]["id"] for h in r["hits"]] == [dogs["id"], fox["id"]], "newest first", r)
    check("<mark>quick</mark> brown fox &lt;jumps&gt; &amp; runs" in r["hits"][1]["snippet"],
          "marked, HTML-escaped excerpt", r)
    check(r["more"] is False and r["next_before"] is None, "one page", r)
    check(len(search(c, path, 1, q='"brown fox"')["hits"]) == 1, "phrase")
    check(len(search(c, path, 2, q="bro*")["hits"]) == 2, "prefix")
    check(len(search(c, path, 1, q="quick -dogs")["hits"]) == 1, "exclusion")
    check(search(c, path, 1, q="CAFE")["hits"][0]["message"]["id"] == cafe["id"], "accents, case")
    # paging newest first with before
    p1 = search(c, path, 1, q="quick", limit=1)
    check(p1["more"] and p1["next_before"] == dogs["id"], "next_before", p1)
    p2 = search(c, path, 1, q="quick", limit=1, before=p1["next_before"])
    check([h["message"]["id"] for h in p2["hits"]] == [fox["id"]] and not p2["more"], "page 2", p2)
    rel = search(c, path, 2, q="quick", sort="relevance")
    check(rel["next_before"] is None and len(rel["hits"]) == 2, "relevance", rel)
    # several channels
    both = search(c, "/v1/search", 3, q="quick", channels="%d,%d" % (ch, other))
    check(len(both["hits"]) == 3 and both["hits"][0]["message"]["channel_id"] == str(other),
          "two channels, newest first", both)
    # edit re-indexes, delete removes
    mpath = "/v1/channels/%d/messages/%s" % (ch, dogs["id"])
    expect(c.patch(mpath, {"content": "slow grey cats"}), 200)
    check(len(search(c, path, 1, q="cats")["hits"]) == 1, "edit re-indexed")
    check(len(search(c, path, 1, q="quick")["hits"]) == 1, "old words gone")
    expect(c.delete(mpath), 200)
    check(len(search(c, path, 0, q="cats")["hits"]) == 0, "deleted: never a hit")
    # bad queries: 400 invalid_argument, nothing changes
    before = expect(c.get("/v1/channels/%d/messages" % ch), 200)
    for q in ["", "   ", '"unbalanced', "x" * 513, "-only -excluded", " ".join("abcdefghijklmnopq")]:
        r = expect(c.get(path + "?" + urllib.parse.urlencode({"q": q})), 400, "invalid_argument")
        check(r["error"]["message"].startswith("query q"), "says what is wrong", q, r)
    expect(c.get(path), 400, "invalid_argument")
    for bad in ["sort=oldest&q=x", "limit=0&q=x", "limit=101&q=x", "before=abc&q=x"]:
        expect(c.get(path + "?" + bad), 400, "invalid_argument")
    for bad in ["", "channels=", "channels=1,,2", "channels=abc", "channels=0",
                "channels=" + ",".join(str(ch) for _ in range(51))]:
        expect(c.get("/v1/search?q=x&" + bad), 400, "invalid_argument")
    after = expect(c.get("/v1/channels/%d/messages" % ch), 200)
    check(before == after, "bad searches changed nothing")
    expect(ctx["srv"].client(token=None).get(path + "?q=x"), 401, "unauthorized")
    if SCYLLA:  # the PostgreSQL index reports itself and its lag
        h = c.get("/health").data
        check(h["search"]["backend"] == "postgresql" and h["search"]["connected"] is True
              and h["search"]["lag_seconds"] >= 0 and h["search"]["indexed"] > 0, "health search", h)
        m = c.get("/metrics").data
        check("msgstore_search_lag_seconds " in m and "msgstore_search_lag_messages " in m,
              "lag metrics")


# ---------------------------------------------------------------- reactions

def test_reactions(ctx):
    c, ch = ctx["c"], channel()
    m = new_message(c, ch)
    base = "/v1/channels/%d/messages/%s/reactions" % (ch, m["id"])
    thumbs = urllib.parse.quote("👍", safe="")
    r = expect(c.put("%s/%s/7" % (base, thumbs)), 201)
    check(r["emoji"] == "👍" and r["count"] == 1 and r["changed"], "added, decoded emoji", r)
    r = expect(c.put("%s/%s/7" % (base, thumbs)), 200)
    check(r["count"] == 1 and not r["changed"], "repeat changes nothing", r)
    for u in (3, 9, 11):
        expect(c.put("%s/%s/%d" % (base, thumbs, u)), 201)
    expect(c.put("%s/%s/3" % (base, urllib.parse.quote("❤️", safe=""))), 201)
    counts = expect(c.get(base), 200)
    check({x["emoji"]: x["count"] for x in counts["reactions"]} == {"👍": 4, "❤️": 1}, "counts", counts)
    u = expect(c.get("%s/%s?limit=2" % (base, thumbs)), 200)
    check(u["users"] == ["3", "7"] and u["more"] and u["next_after"] == "7", "users page 1", u)
    u = expect(c.get("%s/%s?limit=2&after=%s" % (base, thumbs, u["next_after"])), 200)
    check(u["users"] == ["9", "11"] and not u["more"] and u["next_after"] is None, "users page 2", u)
    r = expect(c.delete("%s/%s/7" % (base, thumbs)), 200)
    check(r["changed"] and r["count"] == 3, "removed", r)
    r = expect(c.delete("%s/%s/7" % (base, thumbs)), 200)
    check(not r["changed"] and r["count"] == 3, "remove again: no change", r)
    other = "/v1/channels/%d/messages/%d/reactions" % (ch, int(m["id"]) + 3)
    expect(c.put("%s/%s/7" % (other, thumbs)), 404, "not_found")
    expect(c.put("%s/%s/7" % (base, "%ZZ")), 400, "invalid_argument")
    expect(c.put("%s/%s/7" % (base, "a" * 65)), 400, "invalid_argument")
    expect(c.put("%s/%s/0" % (base, thumbs)), 400, "invalid_argument")
    expect(c.get("%s/%s?limit=500" % (base, thumbs)), 400, "invalid_argument")


# ---------------------------------------------------------------- pins

def test_pins(ctx):
    c, ch = ctx["c"], channel()
    m1, m2 = new_message(c, ch, "pin me"), new_message(c, ch, "and me")
    p = expect(c.put("/v1/channels/%d/pins/%s" % (ch, m1["id"]), {"pinned_by": "5"}), 201)
    check(p["message_id"] == m1["id"] and p["pinned_by"] == "5" and p["content_preview"] == "pin me", "pin", p)
    expect(c.put("/v1/channels/%d/pins/%s" % (ch, m1["id"]), {"pinned_by": "5"}), 200)
    expect(c.put("/v1/channels/%d/pins/%s" % (ch, m2["id"]), {"pinned_by": 6}), 201)
    lst = expect(c.get("/v1/channels/%d/pins" % ch), 200)
    check([x["message_id"] for x in lst["pins"]] == [m2["id"], m1["id"]], "newest pin first", lst)
    expect(c.delete("/v1/channels/%d/pins/%s" % (ch, m1["id"])), 200)
    expect(c.delete("/v1/channels/%d/pins/%s" % (ch, m1["id"])), 404, "not_found")
    expect(c.put("/v1/channels/%d/pins/%d" % (ch, int(m2["id"]) + 9), {"pinned_by": "5"}), 404, "not_found")
    expect(c.put("/v1/channels/%d/pins/%s" % (ch, m1["id"])), 400, "invalid_argument")
    expect(c.put("/v1/channels/%d/pins/%s" % (ch, m1["id"]), {"pinned_by": "x"}), 400, "invalid_argument")
    expect(c.put("/v1/channels/%d/pins/%s" % (ch, m1["id"]), {"pinned_by": "5", "extra": 1}), 422, "unprocessable")
    expect(c.delete("/v1/channels/%d/messages/%s" % (ch, m2["id"])), 200)
    lst = expect(c.get("/v1/channels/%d/pins" % ch), 200)
    check(lst["pins"] == [], "deleting a message unpins it", lst)
    expect(c.put("/v1/channels/%d/pins/%s" % (ch, m2["id"]), {"pinned_by": "5"}), 409, "conflict")


# ---------------------------------------------------------------- read positions

def test_read_positions(ctx):
    c, ch = ctx["c"], channel()
    ids = [new_message(c, ch, "r%d" % i)["id"] for i in range(5)]
    path = "/v1/channels/%d/read-positions/77" % ch
    g = expect(c.get(path), 200)
    check(g["last_read_id"] is None and g["unread_count"] == 5, "never read: all unread", g)
    s = expect(c.put(path, {"message_id": ids[2]}), 200)
    check(s["moved"] and s["last_read_id"] == ids[2], "set", s)
    s = expect(c.put(path, {"message_id": ids[1]}), 200)
    check(not s["moved"] and s["last_read_id"] == ids[2], "never backwards", s)
    g = expect(c.get(path), 200)
    check(g["unread_count"] == 2 and not g["unread_capped"], "unread after position", g)
    expect(c.put(path, {}), 422, "unprocessable")
    expect(c.put(path, {"message_id": "-3"}), 422, "unprocessable")
    expect(c.put(path, raw=b"[1,2]"), 400, "invalid_argument")
    expect(c.get("/v1/channels/%d/read-positions/abc" % ch), 400, "invalid_argument")


# ---------------------------------------------------------------- channels, sync

def test_channel_metadata(ctx):
    c, ch = ctx["c"], channel()
    expect(c.get("/v1/channels/%d" % ch), 404, "not_found")
    d = expect(c.put("/v1/channels/%d" % ch, {"name": "général", "type": "group"}), 200)
    check(d["name"] == "général" and d["type"] == "group" and d["message_count"] == 0, "upsert", d)
    m = new_message(c, ch)
    g = expect(c.get("/v1/channels/%d" % ch), 200)
    check(g["last_message_id"] == m["id"] and g["message_count"] == 1 and g["name"] == "général", "kept current", g)
    expect(c.put("/v1/channels/%d" % ch, {"type": "Bad Type!"}), 422, "unprocessable")
    expect(c.put("/v1/channels/%d" % ch, {"name": 1}), 422, "unprocessable")
    d = expect(c.put("/v1/channels/%d" % channel()), 200)
    check(d["type"] == "channel", "empty body creates with defaults", d)


def test_telegram_sync(ctx):
    c, ch = ctx["c"], channel()
    path = "/v1/channels/%d/telegram-sync" % ch
    expect(c.get(path), 404, "not_found")
    s = expect(c.put(path, {"telegram_chat_id": "-100200300", "last_synced_message_id": "50",
                            "direction": "telegram_to_web"}), 200)
    check(s["telegram_chat_id"] == "-100200300" and s["last_synced_message_id"] == "50", "sync", s)
    s = expect(c.put(path, {"telegram_chat_id": -100200300, "last_synced_message_id": 40}), 200)
    check(s["last_synced_message_id"] == "50", "never backwards", s)
    g = expect(c.get(path), 200)
    check(g["direction"] in ("telegram_to_web", "bidirectional"), "direction", g)
    expect(c.put(path, {"telegram_chat_id": "1", "last_synced_message_id": "1", "direction": "up"}),
           422, "unprocessable")
    expect(c.put(path, {"last_synced_message_id": "1"}), 422, "unprocessable")
    expect(c.put(path, {"telegram_chat_id": "0", "last_synced_message_id": "1"}), 422, "unprocessable")


# ---------------------------------------------------------------- input errors

def test_bad_input_never_500(ctx):
    c, ch = ctx["c"], channel()
    path = "/v1/channels/%d/messages" % ch
    for raw in (b"{", b"not json", b'{"a":}', b"\xff\xfe", b'{"sender_id":"1","content":"\\ud800"}',
                b'{"sender_id":"1","sender_id":"2","content":"x"}'):
        expect(c.post(path, raw=raw), 400, "invalid_argument")
    for raw in (b"[]", b'"str"', b"42"):
        expect(c.post(path, raw=raw), 400, "invalid_argument")
    expect(c.post(path, raw=b""), 400, "invalid_argument")
    for body in ({}, {"content": "x"}, {"sender_id": "0", "content": "x"}, {"sender_id": "-1", "content": "x"},
                 {"sender_id": "99999999999999999999", "content": "x"}, {"sender_id": 1.5, "content": "x"},
                 {"sender_id": "1", "content": "x", "type": "gif"}, {"sender_id": "1", "content": ["x"]},
                 {"sender_id": "1", "content": "x", "attachments": {}}, {"sender_id": "1", "content": "x", "id": "5"},
                 {"sender_id": "1", "content": "x", "metadata": [1]}, {"sender_id": "1", "content": ""},
                 {"sender_id": "1", "content": "x", "nonce": ""}, {"sender_id": "1", "content": "x", "nonce": "a" * 65}):
        r = c.post(path, body)
        check(r.status in (400, 422), "rejected: %s" % body, r)
    for p in ("/v1/channels/abc/messages", "/v1/channels/0/messages", "/v1/channels/-1/messages",
              "/v1/channels/9223372036854775808/messages", "/v1/channels/1.5/messages",
              "/v1/channels/%20/messages", "/v1/channels/12/messages/xyz", "/v1/channels/12%00/messages",
              "/v1/channels/12/messages?limit=5%00", "/v1/channels/12/messages?before=%zz"):
        expect(c.get(p), 400, "invalid_argument")
    expect(c.get("/v1/channels/9223372036854775807/messages"), 200)
    r = c.post(path, {"sender_id": "1", "content": "x" * 101})
    expect(r, 413, "payload_too_large")


def _spec_accepts(schema_ref, value):
    try:
        SPEC.validate({"$ref": "#/components/schemas/" + schema_ref}, value)
        return True
    except Failure:
        return False


def test_spec_checker_enforces_every_keyword(ctx):
    """The answers' checker is a real OpenAPI 3.0 validator: minimum, maxLength, pattern,
    enum, nullable, required, additionalProperties all count."""
    def rejects(schema, value):
        try:
            SPEC.validate(schema, value)
        except Failure:
            return True
        return False
    check(rejects({"type": "integer", "minimum": 1}, 0), "minimum")
    check(rejects({"type": "string", "maxLength": 3}, "abcd"), "maxLength")
    check(rejects({"$ref": "#/components/schemas/Id"}, "0"), "Id pattern: 0")
    check(rejects({"$ref": "#/components/schemas/Id"}, "9223372036854775808"), "Id pattern: range")
    check(rejects({"$ref": "#/components/schemas/Error"}, {"error": {"code": "nope", "message": "x"}}), "enum")
    check(rejects({"$ref": "#/components/schemas/Presence"},
                  {"channel_id": "1", "online": [], "typing": [], "extra": 1}), "additionalProperties")
    check(rejects({"type": "integer"}, None), "null where not nullable")
    check(not rejects({"type": "integer", "nullable": True}, None), "nullable")
    check(not rejects({"$ref": "#/components/schemas/Id"}, "9223372036854775807"), "Id max")


def test_spec_and_server_agree_on_edges(ctx):
    """What the spec allows the server takes, what it refuses the server refuses (the edges
    a schema fuzzer found: ids "0" and out of range, null optional fields, lengths)."""
    c, ch = ctx["c"], channel()
    for cid in ("1", "0", "007", "9223372036854775807", "9223372036854775808", "-1", "+5",
                "00000000000000000001", "000000000000000000001", "99999999999999999999"):
        r = c.get("/v1/channels/%s/messages?limit=1" % cid)
        check((r.status == 200) == _spec_accepts("Id", cid), "path id %s: server %d vs spec" % (cid, r.status))
        r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": cid, "content": "x"})
        check((r.status == 201) == _spec_accepts("IdIn", cid), "body id %s: server %d vs spec" % (cid, r.status))
    for n in (1, 0, -1, 2**63 - 1):
        r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": n, "content": "x"})
        check((r.status == 201) == _spec_accepts("IdIn", n), "JSON integer id %d: %d" % (n, r.status))
    # null is "absent" for optional fields, as the spec says (nullable)
    expect(c.post("/v1/channels/%d/messages" % ch,
                  {"sender_id": "1", "content": "x", "reply_to": None, "nonce": None, "type": None,
                   "source": None, "attachments": None, "metadata": None, "telegram_chat_id": None,
                   "telegram_message_id": None}), 201)
    expect(c.put("/v1/channels/%d" % ch, {"name": None, "type": None, "created_at_ms": None}), 200)
    expect(c.post("/v1/channels/%d/messages" % ch, {"sender_id": None, "content": "x"}), 422, "unprocessable")
    # lengths are characters, as JSON Schema counts them
    expect(c.put("/v1/channels/%d" % ch, {"name": "é" * 256}), 200)
    expect(c.put("/v1/channels/%d" % ch, {"name": "é" * 257}), 422, "unprocessable")
    m = new_message(c, ch)
    base = "/v1/channels/%d/messages/%s/reactions" % (ch, m["id"])
    expect(c.put("%s/%s/7" % (base, urllib.parse.quote("😀" * 16, safe=""))), 201)
    expect(c.put("%s/%s/7" % (base, urllib.parse.quote("a" * 17, safe=""))), 400, "invalid_argument")
    # Telegram ids name one message: posting them in another channel is a conflict, not that message
    chat = -2000000000000 - random.randrange(10**9)
    body = {"sender_id": "1", "content": "tg", "telegram_chat_id": chat, "telegram_message_id": 5}
    expect(c.post("/v1/channels/%d/messages" % ch, body), 201)
    expect(c.post("/v1/channels/%d/messages" % channel(), body), 409, "conflict")


def test_unknown_route_and_method(ctx):
    c = ctx["c"]
    expect(c.get("/v1/nothing"), 404, "not_found")
    expect(c.get("/"), 404, "not_found")
    expect(c.get("/v1/channels/1/messages/2/extra/segments"), 404, "not_found")
    r = c.request("DELETE", "/v1/channels/1/messages")
    expect(r, 405, "method_not_allowed")
    check("GET" in r.headers.get("allow", "") and "POST" in r.headers["allow"], "Allow header", r.headers)
    expect(c.request("POST", "/health/live"), 405, "method_not_allowed")
    expect(c.request("BREW", "/v1/channels/1/messages"), 405, "method_not_allowed")


def test_oversize_body_413(ctx):
    srv, ch = ctx["srv"], channel()
    c = srv.client()
    big = json.dumps({"sender_id": "1", "content": "x" * 5000}).encode()
    r = c.post("/v1/channels/%d/messages" % ch, raw=big)
    expect(r, 413, "payload_too_large")
    c.close()
    out = raw_exchange(srv.port, b"POST /v1/channels/1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                       + TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n" + b"a" * 0x2000
                       + b"\r\n0\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 413") and b'"payload_too_large"' in out, "chunked oversize gets JSON 413", out[:300])
    out = raw_exchange(srv.port, b"POST /v1/channels/1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 413"), "announced oversize refused before reading", out[:100])


def test_headers_too_large_431(ctx):
    c = ctx["srv"].client()
    r = c.get("/health/live", headers={"X-Filler": "a" * 20000})
    expect(r, 431, "headers_too_large")
    c.close()
    out, closed = raw_exchange_closed(ctx["srv"].port,
                                      b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"b" * 30000,
                                      timeout=10)
    check(closed, "an unterminated header block is cut by the server (not our 10 s timeout)", out[:100])
    check(out.startswith(b"HTTP/1.1 431") or out == b"", "431 or closed", out[:100])


def test_request_id(ctx):
    c = ctx["c"]
    r = c.get("/health/live", headers={"X-Request-Id": "trace-abc.123:4"})
    check(r.headers["x-request-id"] == "trace-abc.123:4", "echoes the client's request id", r.headers)
    r = c.get("/health/live", headers={"X-Request-Id": "bad id with spaces"})
    check(r.headers["x-request-id"] != "bad id with spaces", "replaces a bad one", r.headers)
    a = c.get("/health/live").headers["x-request-id"]
    b = c.get("/health/live").headers["x-request-id"]
    check(a != b, "generated ids differ", a, b)
    check(all(len(x) == 16 and all(ch in "0123456789abcdef" for ch in x) for x in (a, b)),
          "a generated id is 16 lowercase hex digits (worker prefix, counter)", a, b)


def test_structured_logs(ctx):
    srv = ctx["srv"]
    ctx["c"].get("/v1/channels/1/messages", headers={"X-Request-Id": "log-check-1"})
    time.sleep(0.2)
    lines = [l for l in srv.log().splitlines() if l.strip()]
    check(lines, "some log lines")
    for l in lines:
        json.loads(l)  # every line is one JSON object
    hit = [json.loads(l) for l in lines if "log-check-1" in l]
    check(hit and hit[0]["request_id"] == "log-check-1" and hit[0]["status"] == 200
          and hit[0]["route"] == "/v1/channels/{channel_id}/messages", "request line", hit)


# ---------------------------------------------------------------- limits and timeouts

def test_slow_client_held_off(ctx):
    srv = ctx["srv"]
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    t0 = time.time()
    # others are served meanwhile
    c = srv.client()
    for _ in range(5):
        expect(c.get("/health/live"), 200)
    c.close()
    out, closed = b"", False
    try:
        while True:
            d = s.recv(4096)
            if not d:
                closed = True
                break
            out += d
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    took = time.time() - t0
    s.close()
    # cut by the server (MSGSTORE_REQUEST_TIMEOUT 1s), not by our 10 s socket timeout
    check(closed and took < 8.0, "cut by the server within MSGSTORE_REQUEST_TIMEOUT", closed, took)
    check(out == b"" or (out.startswith(b"HTTP/1.1 408") and b'"timeout"' in out), "JSON 408 or closed",
          out[:300])
    # a body that trickles in is cut the same way
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(b"POST /v1/channels/1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    t0 = time.time()
    closed = False
    try:
        while s.recv(4096):
            pass
        closed = True
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    check(closed and time.time() - t0 < 8.0, "slow body cut by the server", closed, time.time() - t0)
    s.close()



def test_request_timeout_is_per_request(ctx):
    """MSGSTORE_REQUEST_TIMEOUT (1 s here) bounds each request's arrival, not a keep-alive
    connection's life: requests whose body follows their headers 0.4 s later (a sweep of the
    server sees each one half arrived) keep being served well past 1 s of such requests."""
    srv = ctx["srv"]
    ch = channel()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    statuses = []
    t0 = time.time()
    try:
        while time.time() - t0 < 3.5:
            body = json.dumps({"sender_id": "1", "content": "slow %d" % len(statuses)}).encode()
            conn.putrequest("POST", "/v1/channels/%d/messages" % ch)
            conn.putheader("Authorization", "Bearer " + TOKEN)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            time.sleep(0.4)
            conn.send(body)
            r = conn.getresponse()
            statuses.append((r.status, r.read()[:200]))
            if r.status != 201:
                break
    finally:
        conn.close()
    check(len(statuses) >= 6 and all(st == 201 for st, _ in statuses),
          "every request of the connection answered 201 (none cut as too slow)", statuses[-3:])

def test_idle_and_max_connections(ctx):
    tmp = tempfile.mkdtemp(dir=ctx["tmp"])
    srv = Server(tmp, env={"MSGSTORE_MAX_CONNECTIONS": "4", "MSGSTORE_IDLE_TIMEOUT": "1s",
                           "MSGSTORE_WORKERS": "1"})
    try:
        held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(4)]
        time.sleep(0.2)
        out, closed = raw_exchange_closed(srv.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
        check(closed, "over the limit: the server closes the connection (not our timeout)", out[:200])
        check(out == b"" or (out.startswith(b"HTTP/1.1 503") and b"retry-after" in out.lower()),
              "over the limit: 503 with Retry-After, or closed", out[:200])
        t0 = time.time()
        for h in held:  # idle keep-alive connections are closed by the server
            h.settimeout(5)
            try:
                check(h.recv(100) == b"", "idle connection closed")
            except ConnectionResetError:
                pass
            h.close()
        check(time.time() - t0 < 8.0, "closed after MSGSTORE_IDLE_TIMEOUT (1s), not our 5 s timeouts", time.time() - t0)
        time.sleep(0.2)
        c = srv.client()
        expect(c.get("/health/live"), 200)
        c.close()
    finally:
        check(srv.stop() == 0, "clean exit")


# ---------------------------------------------------------------- TLS

def test_tls(ctx):
    import ssl
    tmp = tempfile.mkdtemp(dir=ctx["tmp"])
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1"], capture_output=True, timeout=60)
    check(p.returncode == 0, "openssl made a certificate", p.stderr)
    srv = Server(tmp, env={"MSGSTORE_TLS_CERT": cert, "MSGSTORE_TLS_KEY": key})
    try:
        sc = ssl.create_default_context(cafile=cert)
        sc.check_hostname = False
        import http.client
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=sc, timeout=10)
        conn.request("GET", "/health/ready")
        r = conn.getresponse()
        check(r.status == 200 and b"ready" in r.read(), "HTTPS answers")
        conn.request("POST", "/v1/channels/%d/messages" % channel(), body=b'{"sender_id":"1","content":"tls"}',
                     headers={"Authorization": "Bearer " + TOKEN})
        r = conn.getresponse()
        check(r.status == 201, "API over TLS", r.status, r.read())
        r.read()
        conn.close()
        check(sc.wrap_socket(socket.create_connection(("127.0.0.1", srv.port)), server_hostname="x").version()
              in ("TLSv1.2", "TLSv1.3"), "TLS 1.2+")
        # plain HTTP on the TLS port does not get an answer in clear
        out = raw_exchange(srv.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3, read_until_close=True)
        check(not out.startswith(b"HTTP/1.1 200"), "no clear-text answer on the TLS port", out[:50])
        env = dict(srv.env, MSGSTORE_PORT=str(srv.port))
        p = subprocess.run([MSGSTORE, "health"], env=env, capture_output=True, timeout=30)
        check(p.returncode == 0, "msgstore health speaks TLS", p.stdout, p.stderr)
        if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rtclient.py")):
            # WebSocket over TLS: every frame, including events, goes through the TLS session
            import rtclient
            plain = rtclient.socket.create_connection
            rtclient.socket.create_connection = lambda addr, timeout=None: sc.wrap_socket(
                plain(addr, timeout=timeout), server_hostname="x")
            try:
                ws = rtclient.WsClient("127.0.0.1", srv.port, token=TOKEN)
            finally:
                rtclient.socket.create_connection = plain
            check(ws.status == 101, "WebSocket upgrade over TLS", ws.status)
            check(ws.recv_json()["type"] == "hello", "hello over TLS")
            ch = channel()
            ws.send_json({"op": "subscribe", "channels": [str(ch)]})
            ws.recv_until(lambda m: m["type"] == "subscribed")
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=sc, timeout=10)
            for i in range(3):
                conn.request("POST", "/v1/channels/%d/messages" % ch, body=b'{"sender_id":"1","content":"ws-tls"}',
                             headers={"Authorization": "Bearer " + TOKEN})
                check(conn.getresponse().read() and True, "posted")
            conn.close()
            for i in range(3):
                ev, _ = ws.recv_until(lambda m: m["type"] == "message.created", timeout=10)
                check(ev["data"]["content"] == "ws-tls", "event over TLS", ev)
            ws.sock.close()
    finally:
        check(srv.stop() == 0, "clean exit")
    env = dict(os.environ, MSGSTORE_PORT="0", MSGSTORE_TLS_CERT=key, MSGSTORE_TLS_KEY=key,
               MSGSTORE_SQLITE_PATH=os.path.join(tmp, "x.db"))
    p = subprocess.run([MSGSTORE, "serve"], env=env, capture_output=True, timeout=30)
    check(p.returncode == 2 and b"MSGSTORE_TLS_CERT" in p.stderr, "a bad certificate stops the start", p.stderr)


# ---------------------------------------------------------------- CLI

def test_health_command(ctx):
    srv = ctx["srv"]
    env = dict(srv.env, MSGSTORE_PORT=str(srv.port))
    for _ in range(5):  # a shared Cassandra node can stall for seconds; ready is then rightly 503
        p = subprocess.run([MSGSTORE, "health"], env=env, capture_output=True, timeout=30)
        if p.returncode == 0:
            break
        time.sleep(2)
    check(p.returncode == 0 and b"ready" in p.stdout, "health: ready", p.returncode, p.stdout, p.stderr)
    p = subprocess.run([MSGSTORE, "health", "--url=http://127.0.0.1:%d/health/live" % srv.port],
                       env=env, capture_output=True, timeout=30)
    check(p.returncode == 0, "health --url", p.stdout)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    p = subprocess.run([MSGSTORE, "health", "--timeout=1s"], env=dict(env, MSGSTORE_PORT=str(dead)),
                       capture_output=True, timeout=30)
    check(p.returncode == 1 and b"not ready" in p.stdout, "health: unreachable -> 1", p.returncode, p.stdout)
    p = subprocess.run([MSGSTORE, "health", "--direct"], env=env, capture_output=True, timeout=60)
    check(p.returncode == 0 and b"ready" in p.stdout, "health --direct", p.returncode, p.stdout, p.stderr)
    check(b"details: " in p.stdout and b"tables " in p.stdout, "health --direct prints the details", p.stdout)
    if SCYLLA:
        check(b"dc=datacenter1" in p.stdout, "health --direct lists the hosts", p.stdout)
    else:
        check(b"details: ok" in p.stdout and b"journal wal" in p.stdout, "health --direct: sqlite details", p.stdout)
    p = subprocess.run([MSGSTORE, "health", "--url=ftp://x"], env=env, capture_output=True, timeout=30)
    check(p.returncode == 2, "bad usage -> 2", p.returncode)


# ---------------------------------------------------------------- graceful shutdown

def test_graceful_shutdown_keeps_every_201(ctx):
    """Writers hammer the server; SIGTERM arrives mid-flight. The process exits 0,
    and after a restart on the same database every message answered 201 is there."""
    tmp = tempfile.mkdtemp(dir=ctx["tmp"])
    env = {"MSGSTORE_SHUTDOWN_TIMEOUT": "10s", "MSGSTORE_LOG_LEVEL": "warn"}
    srv = Server(tmp, env=env)
    ch = channel()
    created, errors = [], []
    lock = threading.Lock()
    stop = threading.Event()
    stopping = threading.Event()

    def writer(n):
        c = srv.client(timeout=15)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = c.post("/v1/channels/%d/messages" % ch, {"sender_id": str(n + 1), "content": "w%d-%d" % (n, i),
                                                             "nonce": "w%d-%d" % (n, i)})
            except (OSError, http.client.HTTPException) as e:
                # refused/closed: expected once SIGTERM was sent, a failure before
                if not stopping.is_set():
                    with lock:
                        errors.append("connection error before SIGTERM: %r" % e)
                break
            except Exception as e:  # noqa: BLE001 - a Failure (spec check) or a bug: fails the test
                with lock:
                    errors.append("writer %d: %r" % (n, e))
                break
            with lock:
                if r.status in (200, 201):
                    created.append((r.data["id"], r.data["content"]))
                elif r.status != 503:
                    errors.append("unexpected %d %s" % (r.status, r.body[:200]))
            if r.headers.get("connection", "").lower() == "close":
                c = srv.client(timeout=15)
        c.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t0 = time.time()
    stopping.set()
    rc = srv.stop(signal.SIGTERM, timeout=30)
    took = time.time() - t0
    stop.set()
    for t in threads:
        t.join(30)
    check(not any(t.is_alive() for t in threads), "every writer thread ended")
    check(rc == 0, "exit code 0 after SIGTERM", rc, srv.log()[-2000:])
    check(took < 10.0, "stopped within MSGSTORE_SHUTDOWN_TIMEOUT", took)
    check(not errors, "no unexpected answers", errors[:5])
    check(len(created) > 10, "writes happened before the stop", len(created))
    srv2 = Server(tmp, env=env)
    try:
        c = srv2.client()
        for mid, content in created:
            g = expect(c.get("/v1/channels/%d/messages/%s" % (ch, mid)), 200)
            check(g["content"] == content, "acknowledged message intact after restart", mid)
        c.close()
    finally:
        check(srv2.stop() == 0, "second instance exits 0")
    print("     %d acknowledged messages, all readable after restart; stop took %.2fs" % (len(created), took))


# ---------------------------------------------------------------- real time (docs/realtime.md)

def test_realtime_websocket(ctx):
    """GET /v1/ws: a real upgrade (101, Sec-WebSocket-Accept checked by the client), the hello,
    a ping, and a committed message delivered to a subscriber; 426 and 401 otherwise."""
    srv, ch = ctx["srv"], channel()
    c = srv.client()
    ws = c.websocket()
    try:
        check(ws.status == 101, "101 Switching Protocols", ws.status)
        check(ws.response_headers.get("upgrade", "").lower() == "websocket", "Upgrade", ws.response_headers)
        check(ws.response_headers.get("sec-websocket-accept"), "Sec-WebSocket-Accept", ws.response_headers)
        hello = ws.recv_json()
        check(hello["type"] == "hello" and hello["protocol"] == 1 and hello["typing_ttl_ms"] == 10000, "hello", hello)
        ws.send_json({"op": "ping", "id": 7})
        pong = ws.recv_json()
        check(pong == {"type": "pong", "id": 7}, "pong", pong)
        ws.send_json({"op": "subscribe", "channels": [str(ch)]})
        check(ws.recv_json() == {"type": "subscribed", "channels": [str(ch)]}, "subscribed")
        m = new_message(c, ch, "over the socket")
        ev, _ = ws.recv_until(lambda e: e.get("type") == "message.created")
        check(ev["channel"] == str(ch) and ev["data"]["id"] == m["id"], "the committed message", ev)
    finally:
        ws.close()
    r = c.get("/v1/ws")  # no Upgrade
    expect(r, 426, "upgrade_required")
    check(r.headers.get("upgrade", "").lower() == "websocket", "a 426 names the protocol", r.headers)
    r = c.get("/v1/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "short"})
    expect(r, 426, "upgrade_required")
    c.close()
    for token in (None, "wrong-token-000000000000"):
        ws = srv.client(token=token).websocket()
        check(ws.status == 401, "no upgrade without the token", ws.status, ws.body)
        check(json.loads(ws.body)["error"]["code"] == "unauthorized", "unauthorized", ws.body)


def test_realtime_sse(ctx):
    """GET /v1/channels/{id}/events: the stream opens (200 text/event-stream) with or without a
    resume position; a bad position or channel is 400 and opens nothing; 401 without the token."""
    srv, ch = ctx["srv"], channel()
    c = srv.client()
    path = "/v1/channels/%d/events" % ch
    for p, h in ((path, None), (path + "?since=1171405320192737280", None), (path, {"Last-Event-ID": "12345"})):
        r = c.stream(p, headers=h)
        check(r.status == 200, "stream opened", p, h, r)
        check(r.headers["content-type"].startswith("text/event-stream"), "content type", r.headers)
        check(r.headers.get("cache-control") == "no-cache", "not cached", r.headers)
        check(r.body.startswith(b"retry: 2000\n"), "the stream's first bytes", r.body)
    for p, h in ((path + "?since=abc", None), (path + "?since=0", None), (path, {"Last-Event-ID": "xyz"}),
                 (path, {"Last-Event-ID": "1" * 40}),  # too long for a position: refused, not ignored
                 (path + "?since=5", {"Last-Event-ID": "-1"}),  # Last-Event-ID wins over since
                 ("/v1/channels/0/events", None), ("/v1/channels/abc/events", None)):
        expect(c.stream(p, headers=h), 400, "invalid_argument")
    expect(srv.client(token=None).stream(path), 401, "unauthorized")
    # A resume from a position this instance cannot serve: a resync, then live events.
    from rtclient import SseClient
    sse = SseClient("127.0.0.1", srv.port, path, token=TOKEN, last_event_id="1")
    try:
        check(sse.status == 200, "SSE status", sse.status)
        ev = sse.next_event()
        check(ev["event"] == "resync" and json.loads(ev["data"])["reason"] == "gap", "gap resync", ev)
        m = new_message(c, ch, "over SSE")
        ev = sse.next_event()
        d = json.loads(ev["data"])
        check(ev["event"] == "message.created" and ev["id"] == d["position"] and d["data"]["id"] == m["id"],
              "live event with its position as id", ev)
    finally:
        sse.close()
    c.close()


def test_realtime_typing_and_presence(ctx):
    srv, ch = ctx["srv"], channel()
    c = srv.client()
    typing, presence = "/v1/channels/%d/typing" % ch, "/v1/channels/%d/presence" % ch
    d = expect(c.get(presence), 200)
    check(d == {"channel_id": str(ch), "online": [], "typing": []}, "nobody yet", d)
    r = expect(c.post(typing, {"user_id": "77"}), 204)
    d = expect(c.get(presence), 200)
    check(d["typing"] == ["77"] and d["online"] == [], "typing listed", d)
    expect(c.post(typing, {"user_id": 78}), 204)  # a JSON integer is accepted too
    for body in ({}, {"user_id": "77", "channel": "1"}):
        expect(c.post(typing, body), 422, "unprocessable")
    for body in ({"user_id": "0"}, {"user_id": "-1"}, {"user_id": "x"}):  # not an id: 400 naming it
        d = expect(c.post(typing, body), 400, "invalid_argument")
        check("user_id" in d["error"]["message"], "names the field", d)
    for raw in (b"", b"{", b"[]"):
        expect(c.post(typing, raw=raw), 400, "invalid_argument")
    expect(c.post("/v1/channels/0/typing", {"user_id": "77"}), 400, "invalid_argument")
    expect(c.get("/v1/channels/abc/presence"), 400, "invalid_argument")
    u = srv.client(token=None)
    expect(u.post(typing, {"user_id": "77"}), 401, "unauthorized")
    expect(u.get(presence), 401, "unauthorized")
    u.close()
    d = expect(c.get(presence), 200)
    check(sorted(d["typing"]) == ["77", "78"], "bad requests changed nothing", d)
    # online: a presence heartbeat over the WebSocket; offline when its connection closes
    ws = c.websocket()
    try:
        ws.recv_json()
        ws.send_json({"op": "presence", "user_id": "88", "channels": [str(ch)]})
        for _ in range(50):
            d = expect(c.get(presence), 200)
            if d["online"]:
                break
            time.sleep(0.05)
        check(d["online"] == ["88"], "online listed", d)
    finally:
        ws.close()
    for _ in range(50):
        d = expect(c.get(presence), 200)
        if not d["online"]:
            break
        time.sleep(0.05)
    check(d["online"] == [], "offline once its connection closed", d)
    c.close()


def test_console_page(ctx):
    """/console: one page from the binary, public, loading nothing from elsewhere."""
    r = Client(ctx["srv"].port, token=None).get("/console")
    check(r.status == 200, "console served without a token", r)
    check(r.headers["content-type"].startswith("text/html"), "HTML", r.headers)
    page = r.body.decode()
    check("EventSource" in page and "access_token" in page, "the page subscribes with SSE")
    check("http://" not in page.replace("http://www.w3.org", "") and "https://" not in page,
          "nothing fetched from another origin")
    check("connect-src 'self'" in r.headers.get("content-security-policy", ""), "CSP", r.headers)


def test_zz_every_documented_operation_exercised(ctx):
    if os.environ.get("E2E_ONLY"):
        return
    missing = SPEC.coverage()
    check(not missing, "documented operations the suite never saw succeed", missing)


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
