# SPDX-License-Identifier: Apache-2.0
"""
store_fixture.py - a store holding every kind of data, written through the
HTTP API, and the API reads that show it: for tests that move a store
(backup and restore, copy to a cluster) and check that it reads the same on
the other side.

populate(c, first_channel) writes messages (text, attachments, metadata,
replies, nonces, Telegram ids), edits with history, soft deletes,
reactions with several users, pins, read positions, channel metadata and
Telegram sync state; it returns the GET paths that show all of it.
snapshot(c, paths) reads them: {path: (status, body)}.
"""
import urllib.parse

from msgstore_e2e import check, expect


def populate(c, ch0, n=30):
    """Every kind of data in channels ch0..ch0+2; returns the paths to compare."""
    paths = []
    thumbs = urllib.parse.quote("👍", safe="")
    heart = urllib.parse.quote("❤️", safe="")
    for k in range(3):
        ch = ch0 + k
        expect(c.put("/v1/channels/%d" % ch, {"name": "fixture %d é" % k, "type": "group"}), 200)
        ids = []
        for i in range(n):
            body = {"sender_id": str(100 + i % 7), "content": "msg %d/%d ✓" % (k, i)}
            if i % 5 == 1:
                body["nonce"] = "fx-%d-%d" % (k, i)
            if i % 7 == 2:
                body["attachments"] = [{"url": "https://example.org/%d.png" % i, "size": i}]
                body["metadata"] = {"k": i, "tags": ["a", "b"]}
            if i % 6 == 3 and ids:
                body["reply_to"] = ids[-1]
            if i % 8 == 4:
                body["telegram_chat_id"] = str(-1000000000 - ch % 100000)
                body["telegram_message_id"] = str(1000 + i)
            m = expect(c.post("/v1/channels/%d/messages" % ch, body), 201)
            ids.append(m["id"])
            base = "/v1/channels/%d/messages/%s" % (ch, m["id"])
            paths.append(base)
            if i % 4 == 0:
                expect(c.patch(base, {"content": "edited %d" % i}), 200)
                expect(c.patch(base, {"content": "edited again %d" % i}), 200)
                paths.append(base + "/history")
            if i % 9 == 5:
                expect(c.delete(base), 200)
            elif i % 3 == 0:
                for u in range(1 + i % 4):
                    expect(c.put("%s/reactions/%s/%d" % (base, thumbs, 500 + u)), 201)
                expect(c.put("%s/reactions/%s/%d" % (base, heart, 501)), 201)
                paths += [base + "/reactions", "%s/reactions/%s" % (base, thumbs)]
            if i % 10 == 7:
                expect(c.put("/v1/channels/%d/pins/%s" % (ch, m["id"]), {"pinned_by": "9"}), 201)
            if i % 8 == 4:
                paths.append("/v1/telegram/%s/messages/%s" % (body["telegram_chat_id"], body["telegram_message_id"]))
        for u, at in ((77, 3), (78, n - 1), (79, n // 2)):
            expect(c.put("/v1/channels/%d/read-positions/%d" % (ch, u), {"message_id": ids[at]}), 200)
            paths.append("/v1/channels/%d/read-positions/%d" % (ch, u))
        expect(c.put("/v1/channels/%d/telegram-sync" % ch,
                     {"telegram_chat_id": str(-1000000000 - ch % 100000), "last_synced_message_id": "1042",
                      "direction": "bidirectional"}), 200)
        paths += ["/v1/channels/%d" % ch, "/v1/channels/%d/pins" % ch, "/v1/channels/%d/telegram-sync" % ch,
                  "/v1/channels/%d/messages?limit=100" % ch]
        # a nonce retried answers the original message (200), also after the move
        paths.append(("POST", "/v1/channels/%d/messages" % ch,
                      {"sender_id": "101", "content": "other", "nonce": "fx-%d-1" % k}))
    return paths


def snapshot(c, paths):
    """{path: (status, body)} of every read (and of the nonce retries)."""
    out = {}
    for p in paths:
        if isinstance(p, tuple):
            method, path, body = p
            r = c.request(method, path, body)
            check(r.status == 200, "nonce retry answers the original (200)", path, r)
            out[(method, path)] = (r.status, r.data)
        else:
            r = c.get(p)
            out[p] = (r.status, r.data)
    return out


def compare(before, after, what):
    """Every read answers the same; returns how many were compared."""
    check(set(before) == set(after), what + ": the same reads")
    for k in before:
        check(before[k] == after[k], "%s: %s differs" % (what, k), before[k], after[k])
    return len(before)
