# SPDX-License-Identifier: Apache-2.0
# cql wire codec (pure, no I/O): frames, values, results, lz4, tokens, shards.
foreach(t frame response types token)
  ms_add_test(test_cql_${t} SOURCES unit/test_cql_${t}.c LIBS msgstore_cql LABELS unit)
endforeach()
# The codec against a real Cassandra node over a plain blocking socket.
ms_add_test(test_cql_wire_live SOURCES integration/test_cql_wire_live.c LIBS msgstore_cql
  LABELS integration FIXTURES cassandra TIMEOUT 180)
