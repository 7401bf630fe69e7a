#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Rate-limit errors reach the API as 429 (issue 14), end to end.

`msgstore serve` runs against the simulated ScyllaDB (scylla_sim.py), which
advertises SCYLLA_RATE_LIMIT_ERROR with a non-standard error code and answers
the store's message reads with that error. The HTTP answer must be 429 with
the usual error JSON and a Retry-After header; once the simulator stops rate
limiting, the same request succeeds on the same server (rate limiting is not
a host failure: no circuit breaker opens, no host is marked down).
"""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scylla_sim  # noqa: E402
import test_scylla_sim_migrate as mig  # noqa: E402  (its tests are not collected here)

TOKEN = "sim-rate-limit-token"
CODE = 61447  # not ScyllaDB's usual 0xF000: the advertised code is what counts


class RateLimitThroughServe(unittest.TestCase):
    def setUp(self):
        self.sim = scylla_sim.Sim("6.2", rate_limit_code=CODE).start()
        self.addCleanup(self.sim.stop)
        self.assertIsNotNone(self.sim.port, "the simulator did not start")
        env = mig.sim_env(self.sim)
        # one counted failure would open the breaker for a minute: then the request after the
        # rate limiting would be refused (503), not served
        env.update({"MSGSTORE_BIND": "127.0.0.1", "MSGSTORE_API_TOKENS": TOKEN,
                    "SCYLLA_BREAKER_FAILURE_THRESHOLD": "1", "SCYLLA_BREAKER_RESET_TIMEOUT": "60s"})
        self.proc = subprocess.Popen([mig.MSGSTORE, "serve"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_serve)
        self.out = []
        port = None
        for line in self.proc.stdout:
            self.out.append(line.decode(errors="replace"))
            m = re.search(rb"serving on https?://[^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        self.assertIsNotNone(port, "msgstore serve did not start:\n" + "".join(self.out))
        self.port = port
        self.reader = threading.Thread(target=self.drain, daemon=True)
        self.reader.start()

    def drain(self):
        for line in self.proc.stdout:
            self.out.append(line.decode(errors="replace"))

    def stop_serve(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(10)
        self.proc.stdout.close()

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def test_rate_limited_read_is_429_then_succeeds(self):
        path = "/v1/channels/%s/messages?limit=10" % uuid.uuid4()
        self.sim.rate_limit_match = r"\bFROM\s+(\w+\.)?(messages|channel_buckets)\b"
        for attempt in range(3):  # more than one: the breaker must stay closed
            status, headers, body = self.get(path)
            log = "".join(self.out)
            self.assertEqual(status, 429, "attempt %d: %r\n%s" % (attempt, body, log))
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], "rate_limited", err)
            self.assertTrue(err.get("message"), err)
            self.assertIn("retry-after", headers)
            self.assertGreaterEqual(int(headers["retry-after"]), 1)
        executed = [e for e in self.sim.log if e[2] in ("EXECUTE", "QUERY")
                    and self.sim.limited(e[3])]
        self.assertTrue(executed, "the store never read a message table")

        self.sim.rate_limit_match = None
        status, headers, body = self.get(path)
        self.assertEqual(status, 200, "%r\n%s" % (body, "".join(self.out)))
        self.assertEqual(json.loads(body)["messages"], [])
        # /health (503 here: the simulator keeps no tables) shows no breaker open, no host down
        _, _, body = self.get("/health")
        store = json.loads(body)["store"]
        self.assertEqual(store["breakers_open"], 0, body)
        self.assertEqual(store["cluster"]["hosts_down"], 0, body)
        for h in store["cluster"]["hosts"]:
            self.assertEqual(h["breaker"], "closed", body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
