#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cluster check (ctest label "cluster", fixture cassandra_cluster): the four
# test nodes (dc1: 127.0.1.1-3, dc2: 127.0.1.4) are up, each sees the three
# others as Up/Normal in gossip (nodetool status over each node's JMX) and in
# system.peers with the right data center, and a write at consistency ALL
# through a dc1 node is readable from the dc2 node.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cass=$top/scripts/cassandra
probe() { python3 "$top/scripts/cqlprobe.py" --timeout 30 "$@"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

declare -A dc_of=([127.0.1.1]=dc1 [127.0.1.2]=dc1 [127.0.1.3]=dc1 [127.0.1.4]=dc2)
all="127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4"
checks=0

for i in 1 2 3 4; do
  me=127.0.1.$i
  # system.local: the node's own data center
  got=$(probe --host "$me" --query "SELECT data_center FROM system.local") ||
    fail "$me does not answer CQL"
  [ "$got" = "${dc_of[$me]}" ] || fail "$me reports data center '$got', want ${dc_of[$me]}"
  checks=$((checks + 1))

  # system.peers: exactly the three others, each with its data center
  peers=$(probe --host "$me" --query "SELECT peer, data_center FROM system.peers" | sort)
  want=$(for a in $all; do [ "$a" = "$me" ] || printf '%s\t%s\n' "$a" "${dc_of[$a]}"; done | sort)
  [ "$peers" = "$want" ] || fail "$me system.peers is:
$peers
want:
$want"
  checks=$((checks + 1))

  # gossip/failure detector view: all four Up and Normal, in the right DC
  status=$("$cass" nodetool "cluster/node$i" status 2>&1) || fail "nodetool on node$i: $status"
  for a in $all; do
    line=$(awk -v a="$a" '$2 == a' <<<"$status")
    [ "${line%% *}" = UN ] || fail "node$i sees $a as '${line:-absent}' (want UN):
$status"
    dc=$(awk -v a="$a" '/^Datacenter:/ {dc = $2} $2 == a {print dc}' <<<"$status")
    [ "$dc" = "${dc_of[$a]}" ] || fail "node$i places $a in '$dc', want ${dc_of[$a]}"
  done
  checks=$((checks + 1))
done

# Replication across both data centers.
ks=cluster_check_$$
probe --host 127.0.1.1 --query "CREATE KEYSPACE $ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 1}" >/dev/null
probe --host 127.0.1.1 --query "CREATE TABLE $ks.t (k int PRIMARY KEY, v text)" >/dev/null
probe --host 127.0.1.2 --consistency ALL --query "INSERT INTO $ks.t (k, v) VALUES (1, 'hello')" >/dev/null
got=$(probe --host 127.0.1.4 --consistency LOCAL_ONE --query "SELECT v FROM $ks.t WHERE k = 1")
[ "$got" = hello ] || fail "dc2 node reads '$got' after a write at ALL, want 'hello'"
got=$(probe --host 127.0.1.3 --consistency ALL --query "SELECT v FROM $ks.t WHERE k = 1")
[ "$got" = hello ] || fail "read at ALL from node3 gives '$got'"
probe --host 127.0.1.1 --query "DROP KEYSPACE $ks" >/dev/null
checks=$((checks + 2))

echo "cluster: 4 nodes up, each sees the others (dc1 x3, dc2 x1); cross-DC replication works"
echo "$checks passed, 0 failed"
