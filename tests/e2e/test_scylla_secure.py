#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
`msgstore migrate` and `msgstore serve` against the password node and the TLS node
(client certificates required), configured only through the settings an operator uses:
SCYLLA_USERNAME / SCYLLA_PASSWORD and SCYLLA_SSL_ENABLED / SCYLLA_SSL_CA_CERTS /
SCYLLA_SSL_CERTFILE / SCYLLA_SSL_KEYFILE / SCYLLA_SSL_VERIFY_HOSTNAME.

Each works with the right settings (migrate exits 0, serve stores and reads a message),
and each refuses with a message and a non-zero exit when one is wrong: a wrong password, no
credentials, no client certificate, a CA that does not know the server, a host name the
certificate does not carry.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgstore_e2e import MSGSTORE, Server, check, expect, run  # noqa: E402

AUTH = os.environ.get("MSGSTORE_TEST_CASSANDRA_AUTH", "127.0.0.2:9042").split(":")[0]
TLS = os.environ.get("MSGSTORE_TEST_CASSANDRA_TLS", "127.0.0.3:9042").split(":")[0]
TLS_DIR = os.environ.get("MSGSTORE_TEST_TLS_DIR", "")
USER = os.environ.get("MSGSTORE_TEST_CASSANDRA_USER", "cassandra")
PASSWORD = os.environ.get("MSGSTORE_TEST_CASSANDRA_PASSWORD", "cassandra")
KEYSPACE = "msgstore_e2e_secure"


def base_env(contact):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCYLLA_")}
    env.update({"SCYLLA_ENABLED": "true", "SCYLLA_CONTACT_POINTS": contact, "SCYLLA_KEYSPACE": KEYSPACE,
                "SCYLLA_CONNECT_TIMEOUT": "5s", "MSGSTORE_LOG_LEVEL": "warn", "MSGSTORE_PROFILE": "test"})
    return env


def auth_env(**over):
    env = base_env(AUTH)
    env.update({"SCYLLA_USERNAME": USER, "SCYLLA_PASSWORD": PASSWORD})
    env.update(over)
    return env


def tls_env(**over):
    env = base_env(TLS)
    env.update({"SCYLLA_SSL_ENABLED": "true", "SCYLLA_SSL_CA_CERTS": os.path.join(TLS_DIR, "ca.pem"),
                "SCYLLA_SSL_CERTFILE": os.path.join(TLS_DIR, "client.pem"),
                "SCYLLA_SSL_KEYFILE": os.path.join(TLS_DIR, "client.key")})
    env.update(over)
    return {k: v for k, v in env.items() if v is not None}


def migrate(env):
    p = subprocess.run([MSGSTORE, "migrate"], env=env, capture_output=True, timeout=300)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def serve_roundtrip(tmp, env):
    srv = Server(tmp, env={k: env[k] for k in env if k.startswith("SCYLLA_")}, start_timeout=300)
    try:
        c = srv.client(timeout=30)
        m = expect(c.post("/v1/channels/4242/messages", {"sender_id": "1", "content": "secure"}), 201)
        g = expect(c.get("/v1/channels/4242/messages/%s" % m["id"]), 200)
        check(g["content"] == "secure", "read back", g)
        # (503 too on a loaded machine: a check slower than MSGSTORE_READY_THRESHOLD)
        h = c.get("/health")
        check(h.status in (200, 503) and h.data["database"]["backend"] == "scylla", "served by the cluster",
              h.status, h.data["database"])
        c.close()
    finally:
        rc = srv.stop()
    check(rc == 0, "serve exits 0 on SIGTERM", rc, srv.log()[-2000:])


def setup():
    check(TLS_DIR and os.path.exists(os.path.join(TLS_DIR, "ca.pem")), "the tls node's CA", TLS_DIR)
    return {"tmp": tempfile.mkdtemp(prefix="msgstore-secure-")}


def teardown(ctx):
    if ctx:
        shutil.rmtree(ctx["tmp"], ignore_errors=True)


def test_password_node(ctx):
    rc, out = migrate(auth_env())
    check(rc == 0, "migrate with SCYLLA_USERNAME/SCYLLA_PASSWORD", rc, out)
    rc, out = migrate(auth_env(SCYLLA_PASSWORD="wrong-password"))
    check(rc != 0, "a wrong password is refused", rc, out)
    check("auth" in out.lower() or "credentials" in out.lower() or "password" in out.lower(),
          "the message says why", out)
    env = auth_env()
    del env["SCYLLA_USERNAME"], env["SCYLLA_PASSWORD"]
    rc, out = migrate(env)
    check(rc != 0, "no credentials: refused", rc, out)
    serve_roundtrip(tempfile.mkdtemp(dir=ctx["tmp"]), auth_env())


def test_tls_node_with_client_certificate(ctx):
    check(os.path.exists(os.path.join(TLS_DIR, "client-auth-required")),
          "the tls node requires client certificates (restart it with this scripts/cassandra)")
    rc, out = migrate(tls_env())
    check(rc == 0, "migrate over TLS with the client certificate", rc, out)
    rc, out = migrate(tls_env(SCYLLA_SSL_CERTFILE=None, SCYLLA_SSL_KEYFILE=None))
    check(rc != 0, "no client certificate: the node refuses", rc, out)
    rc, out = migrate(tls_env(SCYLLA_SSL_CA_CERTS=None))
    check(rc != 0 and "certificate verification failed" in out, "a CA that does not know the server", rc, out)
    rc, out = migrate(tls_env(SCYLLA_SSL_ENABLED="false"))
    check(rc != 0, "plaintext against the TLS node", rc, out)
    serve_roundtrip(tempfile.mkdtemp(dir=ctx["tmp"]), tls_env())


if __name__ == "__main__":
    sys.exit(run(globals(), setup, teardown))
