#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
Message counts coalesced per loop turn (issue 9 item 2), through `msgstore serve`
on the Cassandra node (SCYLLA_ENABLED=true, a keyspace of its own):

- many concurrent POSTs to one channel are each answered 201, and the
  channel's message_count is exactly the number of messages acknowledged;
- the server counted them with fewer counter updates than messages
  (msgstore_store_count_updates_total < msgstore_store_count_increments_total,
  and the increments are exactly the messages): POSTs whose batch answered in
  the same turn of a worker loop shared one `count = count + n`.

Coalescing needs POSTs whose batches answer in the same loop turn; the burst
is repeated (a bounded number of times) until that happened at least once, as
test_coalescing.py does for reads. The count must be exact after every burst.
"""
import os
import re
import sys
import tempfile
import random
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import Server, check, in_threads, run, stop_servers  # noqa: E402

CLIENTS = 32
PER_CLIENT = 10
ROUNDS = 5


def metric(srv, name):
    total = 0
    for m in re.finditer(r"^%s\{[^}]*\} (\d+)$" % name, srv.metrics(), re.M):
        total += int(m.group(1))
    return total


def burst(srv, ch, sender):
    """CLIENTS threads POST PER_CLIENT messages each to ch; returns how many got 201."""
    ok = []
    errors = []

    def one():
        c = srv.client(timeout=30)
        try:
            for i in range(PER_CLIENT):
                r = c.post("/v1/channels/%s/messages" % ch,
                           {"sender_id": sender, "content": "burst %d" % i}, validate=False)
                if r.status == 201:
                    ok.append(1)
                else:
                    errors.append((r.status, r.body[:200]))
        finally:
            c.close()
    in_threads(lambda _: one(), CLIENTS, 300)
    check(not errors, "every POST answered 201", errors[:5])
    return len(ok)


def message_count(srv, ch):
    c = srv.client()
    try:
        r = c.get("/v1/channels/%s" % ch)
    finally:
        c.close()
    check(r.status == 200, "the channel's metadata answers", r)
    return r.data["message_count"]


def wait_ready(srv):
    """The cluster backend serves before it reached the node: wait for readiness (bounded)."""
    c = srv.client()
    try:
        for _ in range(600):
            if c.get("/health/ready", validate=False).status == 200:
                return
            time.sleep(0.1)
    finally:
        c.close()
    check(False, "the server became ready", srv.log()[-2000:])


def test_concurrent_posts_counted_exactly_with_fewer_updates(ctx):
    srv = Server(tempfile.mkdtemp(prefix="msgstore-e2e-counts-"))
    ctx.append(srv)
    wait_ready(srv)
    ch, sender = str(random.randrange(1 << 40, 1 << 62)), "7"  # the suite's int64 ids
    up0 = metric(srv, "msgstore_store_count_updates_total")
    inc0 = metric(srv, "msgstore_store_count_increments_total")
    sent = 0
    for _ in range(ROUNDS):
        sent += burst(srv, ch, sender)
        check(message_count(srv, ch) == sent, "message_count is exactly the messages acknowledged",
              message_count(srv, ch), sent)
        updates = metric(srv, "msgstore_store_count_updates_total") - up0
        incs = metric(srv, "msgstore_store_count_increments_total") - inc0
        check(incs == sent, "every message was counted once", incs, sent)
        if updates < incs:
            break
    print("  %d POSTs counted by %d counter updates" % (incs, updates))
    check(updates < incs, "concurrent POSTs shared counter updates", updates, incs)


if __name__ == "__main__":
    sys.exit(run(globals(), lambda: [], stop_servers))
