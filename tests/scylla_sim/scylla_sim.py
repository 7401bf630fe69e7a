#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A simulated ScyllaDB at the CQL protocol level (native protocol v4).

No ScyllaDB server can run where msgstore is tested, so this answers as
ScyllaDB 5.4, 6.2, 2025.4 and 2026.1 would, for exactly the exchanges msgstore
depends on (issue 14), and nothing more:

- OPTIONS: SUPPORTED with the sharding keys, SCYLLA_RATE_LIMIT_ERROR
  (ERROR_CODE=<n>) and, from 6.0, TABLETS_ROUTING_V1; "cassandra" answers
  without any SCYLLA_* key;
- system.local / system.peers / system_schema.keyspaces (the driver's
  metadata), system.versions, system_schema.columns (does
  scylla_keyspaces.initial_tablets exist?), system_schema.scylla_keyspaces;
- CREATE KEYSPACE with or without tablets = {'enabled': false}: 5.4 answers
  "Unknown property 'tablets'" (a syntax error), 6.0+ makes NetworkTopology
  keyspaces tablet keyspaces unless told otherwise, "enforced" (2025.2+)
  refuses enabled: false with ScyllaDB's own message;
- any other DDL: a SCHEMA_CHANGE; msgstore's schema_version rows are kept, so
  a second `msgstore migrate` finds them;
- tables named "rate_limited": the rate-limit error with the advertised code;
  likewise any statement matching Sim.rate_limit_match (a regex, None: off;
  it may be changed while running), so `msgstore serve` can be rate limited
  and then let through;
- PREPARE of any other statement: each marker a blob (any bytes fit), the
  selected columns blobs; its EXECUTE answers no rows (a SELECT) or void;
- tables named "slow...": the first execution for a key is answered after
  5 s, later ones at once (speculative executions);
- PREPARE/EXECUTE of "SELECT v FROM <ks>.<table> WHERE k = ?" (k bigint):
  the row names the host and shard that served it; on a tablet keyspace a
  request served by a host or shard that is not the tablet's replica gets the
  "tablets-routing-v1" custom payload. Each table is one tablet (the whole
  ring) whose replica is the last host, shard 1; a table whose name ends in
  "_b" lives on the second host, shard 0.

It is a test double for protocol facts a real Cassandra cannot produce; every
other test runs against a real Cassandra node.

Run standalone: scylla_sim.py --version 6.2 [--hosts 3] [--enforced] prints
"PORT <n>" once listening. Or import it and use Sim(...).start().
"""
import argparse
import asyncio
import re
import struct
import sys
import threading
import uuid

OP_ERROR, OP_STARTUP, OP_READY, OP_OPTIONS, OP_SUPPORTED = 0x00, 0x01, 0x02, 0x05, 0x06
OP_QUERY, OP_RESULT, OP_PREPARE, OP_EXECUTE, OP_REGISTER = 0x07, 0x08, 0x09, 0x0A, 0x0B
T_BLOB, T_BIGINT, T_INT, T_UUID, T_VARCHAR, T_INET = 0x0003, 0x0002, 0x0009, 0x000C, 0x000D, 0x0010
T_LIST, T_MAP, T_SET = 0x0020, 0x0021, 0x0022
SYNTAX, INVALID, CONFIG = 0x2000, 0x2200, 0x2300
NR_SHARDS = 2

VERSIONS = {
    # release: (system.versions text, knows tablets, tablets by default for NTS)
    "cassandra": (None, False, False),
    "5.4": ("5.4.10-0.20240820.2a8d4b7e0c8b", False, False),
    "6.2": ("6.2.3-0.20250119.bff9ddde1283", True, True),
    "2025.4": ("2025.4.1-0.20251201.8a1b7c2d3e4f", True, True),
    "2026.1": ("2026.1.0-0.20260115.1f2e3d4c5b6a", True, True),
}


def string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def cbytes(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def sbytes(b):
    return struct.pack(">H", len(b)) + b


def typ(t):
    if isinstance(t, tuple):
        out = struct.pack(">H", t[0])
        for sub in t[1:]:
            out += typ(sub)
        return out
    return struct.pack(">H", t)


def rows(ks, table, cols, data):
    """cols: [(name, type)], data: [[bytes or None]]."""
    out = struct.pack(">iii", 2, 0x0001, len(cols)) + string(ks) + string(table)
    for name, t in cols:
        out += string(name) + typ(t)
    out += struct.pack(">i", len(data))
    for r in data:
        for cell in r:
            out += cbytes(cell)
    return out


def text(s):
    return s.encode()


def collection(items):
    out = struct.pack(">i", len(items))
    for it in items:
        out += cbytes(it)
    return out


def text_map(d):
    out = struct.pack(">i", len(d))
    for k, v in d.items():
        out += cbytes(k.encode()) + cbytes(v.encode())
    return out


class Host:
    def __init__(self, addr, idx, ntokens_base):
        self.addr = addr
        self.idx = idx
        self.host_id = uuid.uuid5(uuid.NAMESPACE_DNS, "sim-%s" % addr)
        # a vnode ring that spreads tokens over the hosts
        self.tokens = [str(-(2**62) + ntokens_base * (2**61) + k * (2**59)) for k in range(4)]
        self.nconns = 0


class Sim:
    def __init__(self, version, hosts=1, enforced=False, rate_limit_code=61440,
                 rate_limit_ext=True, deny_columns=False, tablet_keyspaces=(), base_ip=11):
        if version not in VERSIONS:
            raise ValueError("unknown version %s" % version)
        self.version = version
        self.release, self.knows_tablets, self.tablets_default = VERSIONS[version]
        self.scylla = self.release is not None
        self.enforced = enforced
        self.rate_limit_code = rate_limit_code
        self.rate_limit_ext = rate_limit_ext
        self.deny_columns = deny_columns
        self.hosts = [Host("127.0.0.%d" % (base_ip + i), i, i) for i in range(hosts)]
        self.keyspaces = {}  # name -> {"replication": {...}, "tablets": bool}
        for ks in tablet_keyspaces:
            self.keyspaces[ks] = {"replication": {"class": "NetworkTopologyStrategy", "datacenter1": "1"},
                                  "tablets": True}
        self.schema = uuid.uuid4()
        self.versions_applied = {}
        self.id_format = None  # the id format row msgstore records (bytes)
        self.log = []  # (host addr, shard, opcode name, text)
        self.startups = []  # (host addr, options dict)
        self.prepared = {}
        self.slow_seen = {}
        self.rate_limit_match = None
        self.port = None
        self.loop = None
        self._servers = []
        self._writers = set()
        self._ready = threading.Event()

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self):
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.listen())
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._shutdown())
        self.loop.close()

    async def _shutdown(self):
        for srv in self._servers:
            srv.close()
        for w in list(self._writers):
            w.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def listen(self, port=0):
        first = self.hosts[0]
        srv = await asyncio.start_server(lambda r, w: self.serve(first, r, w), first.addr, port)
        self.port = srv.sockets[0].getsockname()[1]
        self._servers.append(srv)
        for h in self.hosts[1:]:
            self._servers.append(await asyncio.start_server(
                lambda r, w, h=h: self.serve(h, r, w), h.addr, self.port))

    def stop(self):
        if self.loop:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def queries(self, prefix=""):
        return [e[3] for e in self.log if e[3].upper().startswith(prefix.upper())]

    # ---- protocol -----------------------------------------------------------------------
    async def serve(self, host, reader, writer):
        shard = host.nconns % NR_SHARDS
        host.nconns += 1
        self._writers.add(writer)
        try:
            while True:
                hdr = await reader.readexactly(9)
                _, flags, stream, op, length = struct.unpack(">BBhBi", hdr)
                body = await reader.readexactly(length) if length else b""
                resp = self.answer(host, shard, op, body)
                if resp is None:
                    continue
                rop, rbody, payload = resp[:3]
                delay = resp[3] if len(resp) > 3 else 0
                rflags = 0
                if payload:
                    rflags |= 0x04
                    pm = struct.pack(">H", len(payload))
                    for k, v in payload.items():
                        pm += string(k) + cbytes(v)
                    rbody = pm + rbody
                frame = struct.pack(">BBhBi", 0x84, rflags, stream, rop, len(rbody)) + rbody
                if delay:
                    asyncio.get_running_loop().call_later(
                        delay, lambda w=writer, f=frame: None if w.is_closing() else w.write(f))
                    continue
                writer.write(frame)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def supported(self, shard):
        m = {"CQL_VERSION": ["3.3.1"], "PROTOCOL_VERSIONS": ["3/v3", "4/v4"]}
        if self.scylla:
            m.update({
                "SCYLLA_SHARD": [str(shard)],
                "SCYLLA_NR_SHARDS": [str(NR_SHARDS)],
                "SCYLLA_PARTITIONER": ["org.apache.cassandra.dht.Murmur3Partitioner"],
                "SCYLLA_SHARDING_ALGORITHM": ["biased-token-round-robin"],
                "SCYLLA_SHARDING_IGNORE_MSB": ["12"],
                "SCYLLA_LWT_ADD_METADATA_MARK": ["LWT_OPTIMIZATION_META_BIT_MASK=2147483648"],
            })
            if self.rate_limit_ext:
                m["SCYLLA_RATE_LIMIT_ERROR"] = ["ERROR_CODE=%d" % self.rate_limit_code]
            if self.knows_tablets:
                m["TABLETS_ROUTING_V1"] = [""]
        out = struct.pack(">H", len(m))
        for k, vs in m.items():
            out += string(k) + struct.pack(">H", len(vs)) + b"".join(string(v) for v in vs)
        return out

    def error(self, code, msg, extra=b""):
        return (OP_ERROR, struct.pack(">i", code) + string(msg) + extra, None)

    def answer(self, host, shard, op, body):
        if op == OP_OPTIONS:
            return (OP_SUPPORTED, self.supported(shard), None)
        if op == OP_STARTUP:
            n = struct.unpack(">H", body[:2])[0]
            p, opts = 2, {}
            for _ in range(n):
                kl = struct.unpack(">H", body[p:p + 2])[0]
                k = body[p + 2:p + 2 + kl].decode()
                p += 2 + kl
                vl = struct.unpack(">H", body[p:p + 2])[0]
                opts[k] = body[p + 2:p + 2 + vl].decode()
                p += 2 + vl
            self.startups.append((host.addr, opts))
            return (OP_READY, b"", None)
        if op == OP_REGISTER:
            return (OP_READY, b"", None)
        if op == OP_QUERY:
            ql = struct.unpack(">i", body[:4])[0]
            q = body[4:4 + ql].decode()
            values = self.values(body[4 + ql:])
            self.log.append((host.addr, shard, "QUERY", q))
            return self.query(host, q, values)
        if op == OP_PREPARE:
            ql = struct.unpack(">i", body[:4])[0]
            q = body[4:4 + ql].decode()
            self.log.append((host.addr, shard, "PREPARE", q))
            return self.prepare(q)
        if op == OP_EXECUTE:
            il = struct.unpack(">H", body[:2])[0]
            pid = body[2:2 + il]
            q = self.prepared.get(pid)
            if q is None:
                return self.error(0x2500, "unprepared", sbytes(pid))
            self.log.append((host.addr, shard, "EXECUTE", q))
            return self.execute(host, shard, q, self.values(body[2 + il:]))
        return self.error(0x000A, "unsupported opcode %d" % op)

    @staticmethod
    def values(params):
        """Bound values of a QUERY/EXECUTE's parameters (positional only)."""
        flags = params[2]
        out = []
        if flags & 0x01:
            n = struct.unpack(">H", params[3:5])[0]
            p = 5
            for _ in range(n):
                ln = struct.unpack(">i", params[p:p + 4])[0]
                p += 4
                if ln < 0:
                    out.append(None)
                else:
                    out.append(params[p:p + ln])
                    p += ln
        return out

    # ---- statements ---------------------------------------------------------------------
    def schema_change(self, change, target, ks, name=None):
        b = struct.pack(">i", 5) + string(change) + string(target) + string(ks)
        if name is not None:
            b += string(name)
        return (OP_RESULT, b, None)

    def select_cols(self, q):
        m = re.match(r"\s*SELECT\s+(.*?)\s+FROM\s", q, re.I | re.S)
        return [c.strip() for c in m.group(1).split(",")] if m else []

    def host_cols(self, h, peer):
        return {
            "key": (T_VARCHAR, text("local")),
            "data_center": (T_VARCHAR, text("datacenter1")),
            "rack": (T_VARCHAR, text("rack1")),
            "host_id": (T_UUID, h.host_id.bytes),
            "tokens": ((T_SET, T_VARCHAR), collection([text(t) for t in h.tokens])),
            "release_version": (T_VARCHAR, text("3.0.8" if self.scylla else "5.0.9")),
            "schema_version": (T_UUID, self.schema.bytes),
            "partitioner": (T_VARCHAR, text("org.apache.cassandra.dht.Murmur3Partitioner")),
            "peer": (T_INET, bytes(int(x) for x in h.addr.split("."))),
            "rpc_address": (T_INET, bytes(int(x) for x in h.addr.split("."))),
        }

    def host_rows(self, q, hosts, table):
        cols = self.select_cols(q)
        data = []
        spec = None
        for h in hosts:
            hc = self.host_cols(h, table == "peers")
            spec = [(c, hc[c][0]) for c in cols]
            data.append([hc[c][1] for c in cols])
        if spec is None:
            spec = [(c, T_VARCHAR) for c in cols]
        return (OP_RESULT, rows("system", table, spec, data), None)

    def query(self, host, q, values):
        qs = " ".join(q.split())
        up = qs.upper()
        if "FROM SYSTEM.LOCAL" in up:
            return self.host_rows(qs, [host], "local")
        if "FROM SYSTEM.PEERS" in up:
            return self.host_rows(qs, [h for h in self.hosts if h is not host], "peers")
        if "FROM SYSTEM_SCHEMA.KEYSPACES" in up:
            data = [[text(k), text_map(v["replication"])] for k, v in self.keyspaces.items()]
            spec = [("keyspace_name", T_VARCHAR), ("replication", (T_MAP, T_VARCHAR, T_VARCHAR))]
            return (OP_RESULT, rows("system_schema", "keyspaces", spec, data), None)
        if "FROM SYSTEM.VERSIONS" in up:
            if not self.scylla:
                return self.error(INVALID, "unconfigured table versions")
            spec = [("version", T_VARCHAR)]
            return (OP_RESULT, rows("system", "versions", spec, [[text(self.release)]]), None)
        if "FROM SYSTEM_SCHEMA.COLUMNS" in up:
            if self.deny_columns:
                return self.error(0x2100, "User has no SELECT permission on system_schema.columns")
            found = self.knows_tablets and "'SCYLLA_KEYSPACES'" in up and "'INITIAL_TABLETS'" in up
            spec = [("column_name", T_VARCHAR)]
            data = [[text("initial_tablets")]] if found else []
            return (OP_RESULT, rows("system_schema", "columns", spec, data), None)
        if "FROM SYSTEM_SCHEMA.SCYLLA_KEYSPACES" in up:
            if not self.knows_tablets:
                return self.error(INVALID, "unconfigured table scylla_keyspaces")
            m = re.search(r"keyspace_name\s*=\s*'(\w+)'", qs, re.I)
            ks = self.keyspaces.get(m.group(1)) if m else None
            data = []
            if ks is not None and ks["tablets"]:
                data = [[struct.pack(">i", 0)]]
            spec = [("initial_tablets", T_INT)]
            return (OP_RESULT, rows("system_schema", "scylla_keyspaces", spec, data), None)
        if up.startswith("CREATE KEYSPACE"):
            return self.create_keyspace(qs)
        if up.startswith("USE "):
            ks = qs[4:].strip().strip('"')
            return (OP_RESULT, struct.pack(">i", 3) + string(ks), None)
        if "RATE_LIMITED" in up or self.limited(q):
            return self.rate_limited()
        if re.match(r"INSERT INTO (\w+\.)?SCHEMA_VERSION", up) and "'ID_FORMAT'" in up and values:
            # the store's id format row (scope 'id_format', version 0, name = the format)
            self.id_format = self.id_format or values[0]
            return (OP_RESULT, struct.pack(">i", 1), None)
        if re.match(r"SELECT NAME FROM (\w+\.)?SCHEMA_VERSION WHERE SCOPE = 'ID_FORMAT'", up):
            data = [[self.id_format]] if self.id_format else []
            return (OP_RESULT, rows("ks", "schema_version", [("name", T_VARCHAR)], data), None)
        if up.startswith("INSERT INTO SCHEMA_VERSION") and values:
            self.versions_applied[values[0]] = values[2]
            return (OP_RESULT, struct.pack(">i", 1), None)
        if up.startswith("SELECT CHECKSUM FROM SCHEMA_VERSION") and values:
            have = self.versions_applied.get(values[0])
            data = [[have]] if have is not None else []
            return (OP_RESULT, rows("ks", "schema_version", [("checksum", T_VARCHAR)], data), None)
        if up.startswith(("CREATE", "ALTER", "DROP")):
            m = re.search(r"(TABLE|INDEX|TYPE)\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)", qs, re.I)
            name = m.group(2).split(".")[-1] if m else "x"
            return self.schema_change("CREATED", "TABLE", "ks", name)
        if up.startswith("SELECT"):
            spec = [(c, T_VARCHAR) for c in self.select_cols(qs)]
            return (OP_RESULT, rows("ks", "t", spec, []), None)
        return (OP_RESULT, struct.pack(">i", 1), None)

    def limited(self, q):
        pat = self.rate_limit_match
        return pat is not None and re.search(pat, q, re.I) is not None

    def rate_limited(self):
        # ScyllaDB's body after the message: <op_type byte: 0 read, 1 write><rejected_by_coordinator byte>
        return self.error(self.rate_limit_code, "Per-partition rate limit reached for reads",
                          bytes([0, 0]))

    def create_keyspace(self, q):
        m = re.match(r"CREATE KEYSPACE (IF NOT EXISTS )?(\w+) WITH replication = (\{[^}]*\})(.*)$",
                     q, re.I)
        if not m:
            return self.error(SYNTAX, "line 1: no viable alternative")
        name, repl, rest = m.group(2), m.group(3), m.group(4)
        if "tablets" in rest.lower():
            if not self.knows_tablets:
                return self.error(SYNTAX, "Unknown property 'tablets'")
            off = re.search(r"'enabled'\s*:\s*false", rest, re.I) is not None
            if off and self.enforced:
                return self.error(CONFIG, "Cannot disable tablets for keyspace since tablets are "
                                          "enforced using the `tablets_mode_for_new_keyspaces: "
                                          "enforced` config option.")
            tablets = not off
        else:
            tablets = self.knows_tablets and (self.tablets_default or self.enforced) and \
                "NetworkTopologyStrategy" in repl
        if name in self.keyspaces:
            if m.group(1):
                return (OP_RESULT, struct.pack(">i", 1), None)
            return self.error(0x2400, "Keyspace %s already exists" % name, string(name) + string(""))
        pairs = dict(re.findall(r"'(\w+)'\s*:\s*'?(\w+)'?", repl))
        self.keyspaces[name] = {"replication": pairs, "tablets": tablets}
        return self.schema_change("CREATED", "KEYSPACE", name)

    def prepare(self, q):
        m = re.match(r"\s*SELECT v FROM (\w+)\.(\w+) WHERE k = \?\s*$", q, re.I)
        pid = uuid.uuid5(uuid.NAMESPACE_OID, q).bytes
        self.prepared[pid] = q
        if not m:
            return self.prepare_any(pid, q)
        ks, table = m.group(1), m.group(2)
        bind = struct.pack(">iii", 0x0001, 1, 1) + struct.pack(">H", 0) + string(ks) + \
            string(table) + string("k") + typ(T_BIGINT)
        res = struct.pack(">ii", 0x0001, 1) + string(ks) + string(table) + string("v") + \
            typ(T_VARCHAR)
        return (OP_RESULT, struct.pack(">i", 4) + sbytes(pid) + bind + res, None)

    def prepare_any(self, pid, q):
        """Any other statement: its markers and selected columns as blobs."""
        n = q.count("?")
        bind = struct.pack(">iii", 0x0001, n, 0)
        if n:
            bind += string("ks") + string("t")
            bind += b"".join(string("p%d" % i) + typ(T_BLOB) for i in range(n))
        cols = self.select_cols(q) if q.lstrip().upper().startswith("SELECT") else []
        res = struct.pack(">ii", 0x0001 if cols else 0, len(cols))
        if cols:
            res += string("ks") + string("t") + b"".join(string(c) + typ(T_BLOB) for c in cols)
        return (OP_RESULT, struct.pack(">i", 4) + sbytes(pid) + bind + res, None)

    def tablet_of(self, table):
        """The (host, shard) of the one tablet of table (see the module comment)."""
        if table.endswith("_b") and len(self.hosts) > 1:
            return self.hosts[1], 0
        return self.hosts[-1], 1

    def execute(self, host, shard, q, values):
        if self.limited(q):
            return self.rate_limited()
        m = re.match(r"\s*SELECT v FROM (\w+)\.(\w+)\s", q, re.I)
        if not m:
            cols = self.select_cols(q) if q.lstrip().upper().startswith("SELECT") else []
            if not cols:
                return (OP_RESULT, struct.pack(">i", 1), None)
            return (OP_RESULT, rows("ks", "t", [(c, T_BLOB) for c in cols], []), None)
        ks, table = m.group(1), m.group(2)
        if "rate_limited" in table:
            return self.rate_limited()
        if table.startswith("slow"):
            # the first execution for each key is slow (a stalled coordinator): a speculative
            # execution answers first; the row says which attempt served it
            key = (table, values[0] if values else b"")
            n = self.slow_seen.get(key, 0)
            self.slow_seen[key] = n + 1
            served = "%s/%d/%d" % (host.addr, shard, n + 1)
            data = rows(ks, table, [("v", T_VARCHAR)], [[text(served)]])
            return (OP_RESULT, data, None, 5.0 if n == 0 else 0)
        served = "%s/%d" % (host.addr, shard)
        data = rows(ks, table, [("v", T_VARCHAR)], [[text(served)]])
        payload = None
        info = self.keyspaces.get(ks)
        if info and info["tablets"] and self.knows_tablets:
            rh, rs = self.tablet_of(table)
            if rh is not host or rs != shard:
                # tuple<bigint, bigint, list<tuple<uuid, int>>>: the whole ring, one replica
                rep = cbytes(rh.host_id.bytes) + cbytes(struct.pack(">i", rs))
                lst = struct.pack(">i", 1) + cbytes(rep)
                value = cbytes(struct.pack(">q", -(2**63))) + cbytes(struct.pack(">q", 2**63 - 1)) \
                    + cbytes(lst)
                payload = {"tablets-routing-v1": value}
        return (OP_RESULT, data, payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", required=True, choices=sorted(VERSIONS))
    ap.add_argument("--hosts", type=int, default=1)
    ap.add_argument("--enforced", action="store_true")
    ap.add_argument("--rate-limit-code", type=int, default=61440)
    ap.add_argument("--no-rate-limit-ext", action="store_true")
    ap.add_argument("--tablet-keyspace", action="append", default=[])
    ap.add_argument("--base-ip", type=int, default=11)
    a = ap.parse_args()
    sim = Sim(a.version, hosts=a.hosts, enforced=a.enforced, rate_limit_code=a.rate_limit_code,
              rate_limit_ext=not a.no_rate_limit_ext, tablet_keyspaces=a.tablet_keyspace,
              base_ip=a.base_ip)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(sim.listen())
    print("PORT %d" % sim.port, flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
