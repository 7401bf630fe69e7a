#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The systemd unit as installed (`cmake --install` into a temporary prefix):
#  1. `systemd-analyze verify` accepts it, with no warning (an unknown or
#     misspelt key is only a warning there: any output fails this test);
#  2. `systemd-analyze security --offline` rates its hardening at most 2.0
#     ("OK"; 10 is an unprotected service);
#  3. its readiness check (ExecStartPost) waits for a real `msgstore serve`
#     and succeeds once /health/ready answers; it keeps waiting while
#     nothing serves.
# Needs MSGSTORE_SOURCE_DIR and MSGSTORE_BINARY_DIR (set by ctest).
set -euo pipefail
bin=${MSGSTORE_BINARY_DIR:?}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "check_systemd: $*" >&2; exit 1; }
prefix=$tmp/prefix
cmake --install "$bin" --prefix "$prefix" >/dev/null
unit=$prefix/lib/systemd/system/msgstore.service
[ -f "$unit" ] || fail "the unit is not installed"
[ -f "$prefix/share/doc/msgstore/msgstore.env" ] || fail "the environment file is not installed"
grep -q "^ExecStart=$prefix/bin/msgstore serve$" "$unit" || fail "ExecStart does not name the installed binary"
grep -q "^EnvironmentFile=$prefix/etc/msgstore/msgstore.env$" "$unit" || fail "EnvironmentFile path"

echo "== systemd-analyze verify"
out=$(systemd-analyze verify "$unit" 2>&1) || fail "verify failed: $out"
[ -z "$out" ] || fail "verify warns: $out"

echo "== systemd-analyze security --offline"
sec=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1) ||
  fail "exposure above 2.0: $(tail -1 <<<"$sec")"
tail -1 <<<"$sec"

echo "== readiness: the unit's ExecStartPost against a real msgstore serve"
post=$(sed -n 's/^ExecStartPost=//p' "$unit")
[ -n "$post" ] || fail "no ExecStartPost"
# systemd runs it with the environment file's settings: a free port here
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MSGSTORE_PORT=$port MSGSTORE_BIND=127.0.0.1 MSGSTORE_SQLITE_PATH=$tmp/msgstore.db
# nothing serves yet: the check keeps waiting (killed after 3 s)
if timeout 3 bash -c "$post"; then fail "the readiness check succeeded with nothing serving"; fi
"$prefix/bin/msgstore" serve >"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
timeout 60 bash -c "$post" || fail "the readiness check did not succeed: $(tail -5 "$tmp/serve.err")"
echo "check_systemd: ok"
