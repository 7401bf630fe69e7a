#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
End-to-end tests of a uuid store (MSGSTORE_ID_FORMAT=uuid, the default) on a
real `msgstore serve`: the SQLite file, or ScyllaDB/Cassandra with
SCYLLA_ENABLED=true (keyspace SCYLLA_KEYSPACE, a uuid keyspace of its own).

- every route that takes a channel or user id works with UUIDs: upper case
  in, the canonical lower case out (bodies, Location, events);
- anything that is not a UUID (an integer, the nil UUID, braces, a short
  one) is 400 invalid_argument naming the parameter or field, and changes
  nothing;
- starting the server on the same store with MSGSTORE_ID_FORMAT=int64 is
  refused with a message naming both formats.

The other e2e suites run the same routes on int64 stores (their ids are
integers); the id format only changes how ids are parsed at the edge and
bound in the backend (one parse, one format, one bind/read pair per
backend), which the store conformance suite covers for every operation in
both formats. This suite is the subset that proves the edges with UUIDs.
"""
import json
import os
import shutil
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["MSGSTORE_ID_FORMAT"] = "uuid"
from msgstore_e2e import TOKEN, Failure, Server, check, expect, run  # noqa: E402
from rtclient import SseClient  # noqa: E402

SCYLLA = os.environ.get("SCYLLA_ENABLED", "").lower() in ("1", "true", "yes")


def new_id():
    return str(uuid.uuid4())


def setup():
    tmp = tempfile.mkdtemp(prefix="msgstore-e2e-uuid-")
    ctx = {"tmp": tmp, "srv": Server(tmp, env={"MSGSTORE_ID_FORMAT": "uuid"})}
    ctx["c"] = ctx["srv"].client()
    return ctx


def teardown(ctx):
    if ctx is None:
        return
    ctx["c"].close()
    rc = ctx["srv"].stop()
    check(rc == 0, "the server exits 0 on SIGTERM", rc)
    shutil.rmtree(ctx["tmp"], ignore_errors=True)


def test_routes_take_uuids_upper_in_lower_out(ctx):
    c = ctx["c"]
    ch, sender, reactor, reader = new_id(), new_id(), new_id(), new_id()
    CH = ch.upper()
    resp = c.post("/v1/channels/%s/messages" % CH, {"sender_id": sender.upper(), "content": "hello"})
    m = expect(resp, 201)
    check(m["channel_id"] == ch and m["sender_id"] == sender, "canonical lower-case ids out", m)
    loc = resp.headers.get("location")
    check(loc == "/v1/channels/%s/messages/%s" % (ch, m["id"]), "Location in lower case", loc)
    mid = m["id"]
    got = expect(c.get("/v1/channels/%s/messages/%s" % (CH, mid)), 200)
    check(got["channel_id"] == ch and got["content"] == "hello", "get by the upper-case channel", got)
    page = expect(c.get("/v1/channels/%s/messages" % ch), 200)
    check([x["id"] for x in page["messages"]] == [mid], "page of the lower-case channel", page)
    expect(c.patch("/v1/channels/%s/messages/%s" % (ch, mid), {"content": "edited"}), 200)

    r = expect(c.put("/v1/channels/%s/messages/%s/reactions/%%F0%%9F%%91%%8D/%s" % (CH, mid, reactor.upper())), 201)
    check(r["user_id"] == reactor and r["channel_id"] == ch and r["count"] == 1, "reaction", r)
    other = new_id()
    expect(c.put("/v1/channels/%s/messages/%s/reactions/%%F0%%9F%%91%%8D/%s" % (ch, mid, other)), 201)
    users = expect(c.get("/v1/channels/%s/messages/%s/reactions/%%F0%%9F%%91%%8D?limit=1" % (ch, mid)), 200)
    first = min(reactor, other)  # users come by ascending id: the order of the UUIDs' bytes
    check(users["users"] == [first] and users["more"] and users["next_after"] == first, "users page", users)
    rest = expect(c.get("/v1/channels/%s/messages/%s/reactions/%%F0%%9F%%91%%8D?after=%s"
                        % (ch, mid, first.upper())), 200)
    check(rest["users"] == [max(reactor, other)] and not rest["more"], "after= takes either case", rest)

    p = expect(c.put("/v1/channels/%s/pins/%s" % (ch, mid), {"pinned_by": reader.upper()}), 201)
    check(p["pinned_by"] == reader and p["sender_id"] == sender and p["channel_id"] == ch, "pin", p)
    pins = expect(c.get("/v1/channels/%s/pins" % CH), 200)
    check(len(pins["pins"]) == 1 and pins["pins"][0]["pinned_by"] == reader, "pins", pins)

    rp = expect(c.put("/v1/channels/%s/read-positions/%s" % (ch, reader.upper()), {"message_id": mid}), 200)
    check(rp["user_id"] == reader and rp["last_read_id"] == mid, "read position", rp)
    rg = expect(c.get("/v1/channels/%s/read-positions/%s" % (CH, reader)), 200)
    check(rg["user_id"] == reader and rg["unread_count"] == 0, "read position back", rg)

    meta = expect(c.put("/v1/channels/%s" % CH, {"name": "uuid room"}), 200)
    check(meta["channel_id"] == ch and meta["name"] == "uuid room", "channel metadata", meta)
    sync = expect(c.put("/v1/channels/%s/telegram-sync" % ch,
                        {"telegram_chat_id": "-100123", "last_synced_message_id": "7"}), 200)
    check(sync["channel_id"] == ch, "telegram sync", sync)

    expect(c.post("/v1/channels/%s/typing" % CH, {"user_id": sender.upper()}), 204)
    pres = expect(c.get("/v1/channels/%s/presence" % ch), 200)
    check(pres["channel_id"] == ch and pres["typing"] == [sender], "typing users in lower case", pres)

    if not SCYLLA:  # on ScyllaDB search needs the PostgreSQL index (its own tests)
        hits = expect(c.get("/v1/channels/%s/search?q=edited" % CH), 200)
        check([h["message"]["id"] for h in hits["hits"]] == [mid], "search in a uuid channel", hits)
        many = expect(c.get("/v1/search?q=edited&channels=%s,%s" % (CH, new_id())), 200)
        check(len(many["hits"]) == 1, "search over UUID channels", many)


def test_events_name_the_channel_in_lower_case(ctx):
    srv, c = ctx["srv"], ctx["c"]
    ch = new_id()
    sse = SseClient("127.0.0.1", srv.port, "/v1/channels/%s/events" % ch.upper(), token=TOKEN)
    try:
        check(sse.status == 200, "SSE on an upper-case UUID channel", sse.status)
        m = expect(c.post("/v1/channels/%s/messages" % ch, {"sender_id": new_id(), "content": "live"}), 201)
        ev = sse.next_event(timeout=5)
        data = json.loads(ev["data"])
        check(data["channel"] == ch and data["data"]["id"] == m["id"], "the event's channel", data)
    finally:
        sse.close()


def test_malformed_ids_are_400_naming_the_field(ctx):
    c = ctx["c"]
    ch = new_id()
    bad = ["42", "00000000-0000-0000-0000-000000000000", "{%s}" % ch, ch[:-1], ch + "0",
           ch.replace("-", ""), "g" + ch[1:]]
    for b in bad:
        d = expect(c.get("/v1/channels/%s/messages" % b), 400, "invalid_argument")
        check("channel_id" in d["error"]["message"], "names channel_id", b, d)
        d = expect(c.post("/v1/channels/%s/messages" % ch, {"sender_id": b, "content": "x"}), 400,
                   "invalid_argument")
        check("sender_id" in d["error"]["message"], "names sender_id", b, d)
    d = expect(c.post("/v1/channels/%s/messages" % ch, {"sender_id": 42, "content": "x"}), 400, "invalid_argument")
    check("sender_id" in d["error"]["message"], "a JSON integer is not a UUID", d)
    m = expect(c.post("/v1/channels/%s/messages" % ch, {"sender_id": new_id(), "content": "x"}), 201)
    d = expect(c.put("/v1/channels/%s/pins/%s" % (ch, m["id"]), {"pinned_by": "7"}), 400, "invalid_argument")
    check("pinned_by" in d["error"]["message"], "names pinned_by", d)
    d = expect(c.put("/v1/channels/%s/read-positions/12" % ch, {"message_id": m["id"]}), 400, "invalid_argument")
    check("user_id" in d["error"]["message"], "names user_id", d)
    d = expect(c.get("/v1/channels/%s/messages/%s/reactions/x?after=1" % (ch, m["id"])), 400, "invalid_argument")
    check("after" in d["error"]["message"], "names after", d)
    d = expect(c.post("/v1/channels/%s/typing" % ch, {"user_id": "nope"}), 400, "invalid_argument")
    check("user_id" in d["error"]["message"], "names user_id", d)
    # nothing was written by the refused requests
    page = expect(c.get("/v1/channels/%s/messages" % ch), 200)
    check([x["id"] for x in page["messages"]] == [m["id"]], "bad input changed nothing", page)
    pins = expect(c.get("/v1/channels/%s/pins" % ch), 200)
    check(pins["pins"] == [], "no pin", pins)


def test_other_format_refused_at_start(ctx):
    """The same store with MSGSTORE_ID_FORMAT=int64: refused, naming both formats."""
    env = {"MSGSTORE_ID_FORMAT": "int64"}
    try:
        other = Server(ctx["tmp"], env=env)
    except Failure as e:
        text = str(e)
        check("holds uuid channel and user ids" in text and "MSGSTORE_ID_FORMAT is int64" in text,
              "the refusal names both formats", text[-2000:])
        return
    other.stop()
    raise Failure("an int64 server started on a uuid store")


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
