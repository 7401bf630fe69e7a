#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
MSGSTORE_READ_COALESCING: identical reads in flight share one store query by default
(msgstore_store_coalesced_total{op="page"} grows under concurrent identical latest pages);
with MSGSTORE_READ_COALESCING=false every request queries the store (the counter stays 0
and the page's operations equal its queries). SQLite, 16 concurrent clients.
"""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import Server, check, in_threads, run, stop_servers  # noqa: E402

CLIENTS = 16


def page_metrics(srv):
    text = srv.metrics()

    def value(name):
        m = re.search(r'^%s\{[^}]*op="page"[^}]*\} (\d+)' % name, text, re.M)
        return int(m.group(1)) if m else 0
    return value("msgstore_store_coalesced_total"), value("msgstore_store_ops_total")


def hammer(srv, ch, rounds):
    """CLIENTS threads GET the channel's latest page `rounds` times each."""
    errors = []

    def one():
        c = srv.client()
        try:
            for _ in range(rounds):
                r = c.get("/v1/channels/%d/messages" % ch, validate=False)
                if r.status != 200:
                    errors.append(r.status)
        finally:
            c.close()
    in_threads(lambda _: one(), CLIENTS, 120)
    check(not errors, "every page answered 200", errors[:5])


def serve(ctx, coalescing):
    env = {} if coalescing is None else {"MSGSTORE_READ_COALESCING": coalescing}
    srv = Server(tempfile.mkdtemp(prefix="msgstore-coalesce-"), env=env)
    ctx.append(srv)
    c = srv.client()
    for i in range(60):
        r = c.post("/v1/channels/42/messages", {"sender_id": "7", "content": "m %d" % i})
        check(r.status == 201, "seed POST", r)
    c.close()
    return srv


def test_coalescing_on_by_default(ctx):
    srv = serve(ctx, None)
    coalesced = 0
    for _ in range(10):  # until identical pages were in flight together (bounded)
        hammer(srv, 42, 20)
        coalesced, ops = page_metrics(srv)
        if coalesced > 0:
            break
    check(coalesced > 0, "identical latest pages in flight were coalesced", coalesced)


def test_coalescing_off(ctx):
    srv = serve(ctx, "false")
    hammer(srv, 42, 100)
    coalesced, ops = page_metrics(srv)
    check(ops >= CLIENTS * 100, "every page reached the store", ops)
    check(coalesced == 0, "nothing coalesced with MSGSTORE_READ_COALESCING=false", coalesced)


if __name__ == "__main__":
    sys.exit(run(globals(), lambda: [], stop_servers))
