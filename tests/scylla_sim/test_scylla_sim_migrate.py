#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`msgstore migrate` against simulated ScyllaDB releases (issue 14).

For each release the simulator (scylla_sim.py) answers as that release would;
the test runs the real binary and checks what it sent and decided:

- Cassandra (no SCYLLA_* keys): never the tablets clause;
- 5.4: no clause (the release does not know it), vnodes; with the schema
  unreadable, the clause is retried without on exactly "Unknown property";
- 6.2 / 2025.4 / 2026.1: the clause, vnodes; a second run finds every migration;
- a tablet keyspace made by someone else: refused before 2026.1, accepted on it;
- enforced tablets: a clear refusal before 2026.1, tablets on 2026.1;
- `msgstore serve` (which migrates at start) decides the same, before it listens.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scylla_sim  # noqa: E402

SOURCE_DIR = os.environ.get("MSGSTORE_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BINARY_DIR = os.environ.get("MSGSTORE_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
MSGSTORE = os.environ.get("MSGSTORE_BIN", os.path.join(BINARY_DIR, "src", "cli", "msgstore"))
CLAUSE = "tablets = {'enabled': false}"


def sim_env(sim, keyspace="msgstore_sim"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCYLLA_", "MSGSTORE_"))}
    env.update({
        "SCYLLA_ENABLED": "true",
        "SCYLLA_CONTACT_POINTS": sim.hosts[0].addr,
        "SCYLLA_PORT": str(sim.port),
        "SCYLLA_KEYSPACE": keyspace,
        "SCYLLA_REPLICATION": "datacenter1:1",
        "MSGSTORE_LOG_LEVEL": "info",
        "MSGSTORE_PORT": "0",
    })
    return env


def migrate(sim, keyspace="msgstore_sim"):
    p = subprocess.run([MSGSTORE, "migrate"], env=sim_env(sim, keyspace), capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def serve(sim):
    """Starts `msgstore serve`: (exit code, output) when it exits, or (None, output) once it
    says it is serving (then it is stopped)."""
    p = subprocess.Popen([MSGSTORE, "serve"], env=sim_env(sim), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out = []
    try:
        for line in p.stdout:
            out.append(line)
            if "serving on" in line:
                p.terminate()
                p.wait(timeout=30)
                return None, "".join(out)
        return p.wait(timeout=30), "".join(out)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


class MigrateOnSimulatedScylla(unittest.TestCase):
    def run_sim(self, version, **kw):
        sim = scylla_sim.Sim(version, **kw).start()
        self.addCleanup(sim.stop)
        self.assertIsNotNone(sim.port, "the simulator did not start")
        return sim

    def creates(self, sim):
        return sim.queries("CREATE KEYSPACE")

    def assert_applied(self, sim, out):
        self.assertTrue(sim.versions_applied, "no migration was recorded:\n" + out)

    def test_cassandra_never_gets_the_clause(self):
        sim = self.run_sim("cassandra")
        rc, out = migrate(sim)
        self.assertEqual(rc, 0, out)
        self.assertTrue(self.creates(sim))
        for q in self.creates(sim):
            self.assertNotIn("tablets", q)
        self.assertFalse(sim.queries("SELECT version FROM system.versions"))

    def test_5_4_without_the_clause(self):
        sim = self.run_sim("5.4")
        rc, out = migrate(sim)
        self.assertEqual(rc, 0, out)
        creates = self.creates(sim)
        self.assertEqual(len(creates), 1, creates)
        self.assertNotIn("tablets", creates[0])
        self.assertFalse(sim.keyspaces["msgstore_sim"]["tablets"])
        self.assert_applied(sim, out)

    def test_5_4_retries_on_unknown_property(self):
        sim = self.run_sim("5.4", deny_columns=True)
        rc, out = migrate(sim)
        self.assertEqual(rc, 0, out)
        creates = self.creates(sim)
        self.assertEqual(len(creates), 2, creates)
        self.assertIn(CLAUSE, creates[0])
        self.assertNotIn("tablets", creates[1])

    def test_vnodes_asked_where_tablets_exist(self):
        for version in ("6.2", "2025.4", "2026.1"):
            with self.subTest(version=version):
                sim = self.run_sim(version)
                rc, out = migrate(sim)
                self.assertEqual(rc, 0, out)
                creates = self.creates(sim)
                self.assertEqual(len(creates), 1, creates)
                self.assertIn(CLAUSE, creates[0])
                self.assertFalse(sim.keyspaces["msgstore_sim"]["tablets"])
                self.assert_applied(sim, out)
                # again: every migration is found, nothing applied twice
                n = len(sim.versions_applied)
                rc, out = migrate(sim)
                self.assertEqual(rc, 0, out)
                self.assertEqual(len(sim.versions_applied), n)

    def test_existing_tablet_keyspace(self):
        for version, ok in (("6.2", False), ("2025.4", False), ("2026.1", True)):
            with self.subTest(version=version):
                sim = self.run_sim(version, tablet_keyspaces=["msgstore_sim"])
                rc, out = migrate(sim)
                if ok:
                    self.assertEqual(rc, 0, out)
                    self.assert_applied(sim, out)
                else:
                    self.assertNotEqual(rc, 0, out)
                    self.assertIn("uses tablets", out)
                    self.assertIn("2026.1", out)
                    self.assertFalse(sim.versions_applied, "migrations ran on a tablet keyspace")

    def test_serve_decides_as_migrate(self):
        # serve migrates at start: the same decision, before it listens
        sim = self.run_sim("6.2", tablet_keyspaces=["msgstore_sim"])
        rc, out = serve(sim)
        self.assertIsNotNone(rc, "serve started on a tablet keyspace of 6.2:\n" + out)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("uses tablets", out)
        sim = self.run_sim("2026.1", tablet_keyspaces=["msgstore_sim"])
        rc, out = serve(sim)
        self.assertIsNone(rc, "serve refused a tablet keyspace of 2026.1:\n" + out)
        sim = self.run_sim("5.4")
        rc, out = serve(sim)
        self.assertIsNone(rc, out)
        self.assertFalse([q for q in self.creates(sim) if "tablets" in q])

    def test_enforced_tablets(self):
        for version, ok in (("2025.4", False), ("2026.1", True)):
            with self.subTest(version=version):
                sim = self.run_sim(version, enforced=True)
                rc, out = migrate(sim)
                if ok:
                    self.assertEqual(rc, 0, out)
                    self.assertTrue(sim.keyspaces["msgstore_sim"]["tablets"])
                    self.assert_applied(sim, out)
                else:
                    self.assertNotEqual(rc, 0, out)
                    self.assertIn("enforces tablets", out)
                    self.assertNotIn("msgstore_sim", sim.keyspaces)

    def test_rate_limit_extension_negotiated(self):
        sim = self.run_sim("6.2", rate_limit_code=61441)
        rc, out = migrate(sim)
        self.assertEqual(rc, 0, out)
        self.assertTrue(sim.startups)
        for _, opts in sim.startups:
            self.assertIn("SCYLLA_RATE_LIMIT_ERROR", opts)
            self.assertIn("TABLETS_ROUTING_V1", opts)
        sim = self.run_sim("cassandra")
        rc, out = migrate(sim)
        self.assertEqual(rc, 0, out)
        for _, opts in sim.startups:
            self.assertNotIn("SCYLLA_RATE_LIMIT_ERROR", opts)
            self.assertNotIn("TABLETS_ROUTING_V1", opts)


if __name__ == "__main__":
    unittest.main(verbosity=2)
