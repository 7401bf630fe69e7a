#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The installed tree works for a program outside this repository:
#  1. `cmake --install` into a temporary prefix lays out bin, lib (shared
#     library with its SONAME links, static archive, pkg-config file),
#     include/msgstore and share/doc (LICENSE, docs, examples);
#  2. every installed header compiles on its own (and store.h, which is not
#     installed, with nothing but include/);
#  3. the shared library exports the public API only;
#  4. examples/ builds against the installed tree through pkg-config (shared,
#     and one program statically), and the examples run against the test
#     node (MSGSTORE_TEST_CASSANDRA).
# Needs MSGSTORE_SOURCE_DIR and MSGSTORE_BINARY_DIR (set by ctest).
set -euo pipefail
src=${MSGSTORE_SOURCE_DIR:?}
bin=${MSGSTORE_BINARY_DIR:?}
node=${MSGSTORE_TEST_CASSANDRA:-127.0.0.1:9042}
tmp=$(mktemp -d)
# KEEP_TMP=1 keeps the prefix and the examples' build for a look
[ -n "${KEEP_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "check_install: $*" >&2; exit 1; }

echo "== cmake --install into a temporary prefix"
cmake --install "$bin" --prefix "$prefix" >/dev/null
libdir=$(sed -n 's/^libdir=\${prefix}\///p' "$bin/msgstore-cql.pc")
[ -n "$libdir" ] || fail "msgstore-cql.pc: no libdir relative to the prefix"
for f in bin/msgstore "$libdir/libmsgstore-cql.a" "$libdir/pkgconfig/msgstore-cql.pc" \
         include/msgstore/cql.h include/msgstore/cql_value.h include/msgstore/error.h \
         include/msgstore/id.h include/msgstore/version.h \
         share/doc/msgstore/LICENSE share/doc/msgstore/README.md \
         share/doc/msgstore/cql-client.md share/doc/msgstore/examples/connect.c; do
  [ -e "$prefix/$f" ] || fail "missing after install: $f"
done
so=$(readlink "$prefix/$libdir/libmsgstore-cql.so") || fail "no libmsgstore-cql.so link"
soname=$(objdump -p "$prefix/$libdir/$so" | awk '/SONAME/ {print $2}')
[ -n "$soname" ] || fail "libmsgstore-cql.so has no SONAME"
[ -e "$prefix/$libdir/$soname" ] || fail "no $soname link"
real=$(readlink -f "$prefix/$libdir/libmsgstore-cql.so")
case "$real" in *.so.*.*.*) ;; *) fail "the shared library file has no full version: $real" ;; esac
echo "   $libdir/libmsgstore-cql.so -> $so (SONAME $soname)"

echo "== installed headers stand alone"
cc=${CC:-cc}
for h in "$prefix"/include/msgstore/*.h; do
  printf '#include <msgstore/%s>\n' "$(basename "$h")" >"$tmp/h.c"
  $cc -std=gnu17 -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include" \
      $(pkg-config --cflags-only-I libuv) "$tmp/h.c" || fail "$(basename "$h") does not stand alone"
done
# store.h is not installed, but must not need src/ (only include/ and the generated version.h).
printf '#include <msgstore/store.h>\n' >"$tmp/h.c"
$cc -std=gnu17 -Wall -Wextra -Werror -fsyntax-only -I"$src/include" -I"$bin/include" \
    $(pkg-config --cflags-only-I libuv) "$tmp/h.c" || fail "store.h does not stand alone"

echo "== the shared library exports the public API only"
syms=$(nm -D --defined-only "$prefix/$libdir/$so")
leaked=$(awk '{print $3}' <<<"$syms" | grep -Ev '^(cql_[^_]|ms_err_|ms_xid_|ms_uuid_|ms_id_format_|MSGSTORE_CQL_)' || true)
[ -z "$leaked" ] || fail "internal symbols exported: $(echo $leaked | head -c 300)"
grep -Eq ' T cql_session_new(@|$)' <<<"$syms" ||
  fail "cql_session_new is not exported"

echo "== examples build against the installed tree (pkg-config)"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
pkg-config --exists msgstore-cql || fail "pkg-config does not find msgstore-cql"
[ "$(pkg-config --modversion msgstore-cql)" = "$(sed -n 's/^#define MSGSTORE_VERSION_STRING "\(.*\)"/\1/p' "$prefix/include/msgstore/version.h")" ] ||
  fail "msgstore-cql.pc and version.h disagree on the version"
cmake -S "$prefix/share/doc/msgstore/examples" -B "$tmp/ex" -G Ninja >/dev/null
cmake --build "$tmp/ex" >/dev/null || fail "the examples do not build"
# one program statically, by hand, as a Makefile would (system libraries stay shared)
$cc -std=gnu17 -Wall -Wextra -Werror -o "$tmp/connect-static" "$src/examples/connect.c" \
    $(pkg-config --cflags msgstore-cql) "$prefix/$libdir/libmsgstore-cql.a" \
    $(pkg-config --libs --static msgstore-cql | sed 's/-lmsgstore-cql//') ||
  fail "connect.c does not link against libmsgstore-cql.a"
deps=$(ldd "$tmp/ex/connect")
[[ $deps == *"$soname"* ]] || fail "examples do not use $soname"
deps=$(ldd "$tmp/connect-static")
[[ $deps != *libmsgstore-cql* ]] || fail "static build uses the shared library"

echo "== the examples run against the test node ($node)"
export LD_LIBRARY_PATH="$prefix/$libdir"
host=${node%%,*}
for ex in connect prepared paging batch async; do
  echo "-- $ex"
  "$tmp/ex/$ex" "$host" || fail "example $ex failed"
done
"$tmp/connect-static" "$host" >/dev/null || fail "the static connect failed"
echo "check_install: ok"
