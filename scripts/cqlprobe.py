#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tiny CQL native-protocol v4 probe (python3 stdlib only).

Connects, sends STARTUP (answering PasswordAuthenticator with SASL PLAIN when
--user/--password are given), runs ONE query and prints the result rows, one
per line, columns separated by tabs. Used by scripts/cassandra to decide that a
node is ready and by the cluster check to read system tables.

Exit codes: 0 query answered; 1 could not connect / timed out / TLS failed;
2 the server answered with an error (printed on stderr).
"""
import argparse
import socket
import ssl
import struct
import sys
import uuid

OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
CONSISTENCY = {"ANY": 0, "ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": 4, "ALL": 5,
               "LOCAL_QUORUM": 6, "EACH_QUORUM": 7, "LOCAL_ONE": 10}
OP_QUERY, OP_RESULT, OP_AUTH_CHALLENGE, OP_AUTH_RESPONSE, OP_AUTH_SUCCESS = (
    0x07, 0x08, 0x0E, 0x0F, 0x10)


class ServerError(Exception):
    pass


def frame(opcode, body, stream=0):
    return struct.pack(">BBhBi", 0x04, 0, stream, opcode, len(body)) + body


def string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def read_frame(sock):
    version, _flags, _stream, opcode, length = struct.unpack(
        ">BBhBi", recv_exact(sock, 9))
    if version != 0x84:
        raise ConnectionError("unexpected response version 0x%02x" % version)
    body = recv_exact(sock, length)
    if opcode == OP_ERROR:
        code, = struct.unpack_from(">i", body, 0)
        n, = struct.unpack_from(">H", body, 4)
        raise ServerError("error 0x%04x: %s" % (code, body[6:6 + n].decode()))
    return opcode, body


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">H")
        s = self.b[self.o:self.o + n].decode()
        self.o += n
        return s

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return None
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def option(self):
        tid = self.take(">H")
        if tid == 0x0000:  # custom
            self.string()
        elif tid in (0x0020, 0x0022):  # list, set
            self.option()
        elif tid == 0x0021:  # map
            self.option()
            self.option()
        elif tid == 0x0030:  # udt
            self.string()
            self.string()
            for _ in range(self.take(">H")):
                self.string()
                self.option()
        elif tid == 0x0031:  # tuple
            for _ in range(self.take(">H")):
                self.option()
        return tid


def render(tid, v):
    if v is None:
        return "null"
    if tid in (0x0001, 0x000D):  # ascii, varchar
        return v.decode()
    if tid == 0x0010:  # inet
        return socket.inet_ntop(socket.AF_INET if len(v) == 4 else socket.AF_INET6, v)
    if tid in (0x000C, 0x000F):  # uuid, timeuuid
        return str(uuid.UUID(bytes=v))
    if tid in (0x0002, 0x0009, 0x000B, 0x0013, 0x0014):  # ints and timestamp
        return str(int.from_bytes(v, "big", signed=True))
    if tid == 0x0004:  # boolean
        return "true" if v[0] else "false"
    return "0x" + v.hex()


def parse_rows(body):
    r = Reader(body)
    kind = r.take(">i")
    if kind != 0x0002:  # Void, SetKeyspace, SchemaChange...
        return []
    flags, ncols = r.take(">ii")
    if flags & 0x0002:  # has_more_pages
        r.bytes()
    types = []
    if not flags & 0x0004:  # metadata present
        if flags & 0x0001:  # global table spec
            r.string()
            r.string()
        for _ in range(ncols):
            if not flags & 0x0001:
                r.string()
                r.string()
            r.string()
            types.append(r.option())
    rows = []
    for _ in range(r.take(">i")):
        rows.append([render(types[i] if types else -1, r.bytes())
                     for i in range(ncols)])
    return rows


def run(args):
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    sock.settimeout(args.timeout)
    if args.ca or args.tls:
        ctx = ssl.create_default_context(cafile=args.ca)
        if not args.ca:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if args.cert:
            ctx.load_cert_chain(args.cert, args.key)
        sock = ctx.wrap_socket(sock, server_hostname=args.host)
    try:
        sock.sendall(frame(OP_STARTUP, struct.pack(">H", 1) +
                           string("CQL_VERSION") + string("3.0.0")))
        op, body = read_frame(sock)
        if op == OP_AUTHENTICATE:
            if args.user is None:
                raise ServerError("server requires authentication (%s)"
                                  % Reader(body).string())
            token = b"\0" + args.user.encode() + b"\0" + args.password.encode()
            sock.sendall(frame(OP_AUTH_RESPONSE, struct.pack(">i", len(token)) + token))
            op, body = read_frame(sock)
            if op != OP_AUTH_SUCCESS:
                raise ServerError("unexpected auth reply opcode 0x%02x" % op)
        elif op != OP_READY:
            raise ServerError("unexpected STARTUP reply opcode 0x%02x" % op)
        sock.sendall(frame(OP_QUERY, long_string(args.query) +
                           struct.pack(">HB", CONSISTENCY[args.consistency], 0), stream=1))
        op, body = read_frame(sock)
        if op != OP_RESULT:
            raise ServerError("unexpected QUERY reply opcode 0x%02x" % op)
        for row in parse_rows(body):
            print("\t".join(row))
    finally:
        sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9042)
    p.add_argument("--user")
    p.add_argument("--password", default="")
    p.add_argument("--tls", action="store_true", help="TLS without verification")
    p.add_argument("--ca", help="CA bundle: TLS, verify the server (IP SAN)")
    p.add_argument("--cert", help="client certificate (PEM)")
    p.add_argument("--key", help="client key (PEM)")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--consistency", default="ONE", choices=sorted(CONSISTENCY))
    p.add_argument("--query", default="SELECT release_version FROM system.local")
    args = p.parse_args()
    try:
        run(args)
    except ServerError as e:
        print("cqlprobe: %s:%d: %s" % (args.host, args.port, e), file=sys.stderr)
        return 2
    except (OSError, ConnectionError, ssl.SSLError) as e:
        print("cqlprobe: %s:%d: %s" % (args.host, args.port, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
