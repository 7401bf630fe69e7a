#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the seed corpus of fuzz_cql_frame (fuzz/corpus/fuzz_cql_frame/*.bin).

Each seed is <mode byte><payload>; see the modes in fuzz_cql_frame.c. The
bodies follow native_protocol_v4.spec. Run from anywhere; rewrites the files.
"""
import os
import struct

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_cql_frame")
os.makedirs(out, exist_ok=True)


def s(x):
    b = x.encode()
    return struct.pack(">H", len(b)) + b


def by(x):
    return struct.pack(">i", -1) if x is None else struct.pack(">i", len(x)) + x


def i32(x):
    return struct.pack(">i", x)


def u16(x):
    return struct.pack(">H", x)


def frame(op, body, flags=0, stream=1):
    return bytes([0x84, flags]) + struct.pack(">hBI", stream, op, len(body)) + body


rows = (i32(2) + i32(1) + i32(4) + s("ks") + s("t")
        + s("id") + u16(2) + s("name") + u16(0x0D)
        + s("tags") + u16(0x21) + u16(0x0D) + u16(0x20) + u16(9)
        + s("u") + u16(0x30) + s("ks") + s("udt") + u16(2) + s("a") + u16(0x31) + u16(2)
        + u16(9) + u16(0x0E) + s("b") + u16(6)
        + i32(2)
        + by(struct.pack(">q", 42)) + by(b"alice")
        + by(i32(1) + by(b"k") + by(i32(2) + by(i32(1)) + by(i32(2))))
        + by(by(i32(1) + by(b"\x7f") ) + by(i32(2) + b"\x01\x00"))
        + by(struct.pack(">q", -1)) + by(None) + by(i32(0)) + by(None))
prepared = (i32(4) + u16(4) + b"\xde\xad\xbe\xef"
            + i32(1) + i32(2) + i32(1) + u16(1) + s("ks") + s("t")
            + s("a") + u16(9) + s("b") + u16(0x22) + u16(0x0C)
            + i32(0) + i32(1) + s("ks") + s("t") + s("[applied]") + u16(4))
error = i32(0x1100) + s("timeout") + u16(6) + i32(1) + i32(2) + s("SIMPLE")
fnerr = i32(0x1400) + s("f failed") + s("ks") + s("f") + u16(2) + s("int") + s("text")
event = s("STATUS_CHANGE") + s("UP") + b"\x04\x7f\x00\x00\x01" + i32(9042)
schema = s("SCHEMA_CHANGE") + s("CREATED") + s("FUNCTION") + s("ks") + s("f") + u16(1) + s("int")
supported = (u16(3) + s("SCYLLA_SHARD") + u16(1) + s("1") + s("SCYLLA_NR_SHARDS") + u16(1) + s("12")
             + s("COMPRESSION") + u16(2) + s("lz4") + s("snappy"))
trace = bytes(range(16))
warn = u16(1) + s("warning")

seeds = {
    "stream": b"\x00" + frame(2, b"") + frame(8, rows) + frame(0, error) + frame(0x0C, event, stream=-1)
              + frame(6, supported) + frame(8, trace + warn + i32(1), flags=0x0A)
              + frame(3, s("org.apache.cassandra.auth.PasswordAuthenticator"))
              + frame(0x10, by(None)) + frame(8, prepared),
    # LZ4 body "4-byte length + raw block": a literal-only block of a Void result
    "stream_lz4": b"\x00" + frame(8, struct.pack(">I", 4) + b"\x40\x00\x00\x00\x01", flags=1),
    "rows": b"\x01" + rows,
    "prepared": b"\x01" + prepared,
    "setks": b"\x01" + i32(3) + s("msgstore"),
    "schema_result": b"\x01" + i32(5) + s("DROPPED") + s("TABLE") + s("ks") + s("t"),
    "error": b"\x02" + error,
    "error_fn": b"\x02" + fnerr,
    "error_unprepared": b"\x02" + i32(0x2500) + s("unprepared") + u16(2) + b"\x01\x02",
    "error_read_failure": b"\x02" + i32(0x1300) + s("rf") + u16(1) + i32(0) + i32(1) + i32(1) + b"\x00",
    "event": b"\x03" + event,
    "event_schema": b"\x03" + schema,
    "supported": b"\x04" + supported,
    "lz4": b"\x05" + struct.pack(">I", 4) + b"\x40\x00\x00\x00\x01",
    "typed": b"\x06" + u16(0x21) + u16(0x0D) + u16(0x20) + u16(9) + i32(1) + by(b"k") + by(i32(1) + by(i32(5))),
}
for name, data in seeds.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
