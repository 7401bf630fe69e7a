# SPDX-License-Identifier: Apache-2.0
# store_health: the backend details behind /health (tests/integration/test_store_health.c).
#   test_store_health          SQLite (a fresh file in a temp dir)
#   test_store_health_scylla   the Cassandra node of the fixture, keyspace msgstore_health
#                              (int64 ids: kept from before MSGSTORE_ID_FORMAT existed; the
#                              health details do not depend on the format); also a node that
#                              goes away (a TCP proxy in front of it is cut)
ms_add_test(test_store_health SOURCES integration/test_store_health.c
            LIBS msgstore_store LABELS integration TIMEOUT 120)
if(TARGET msgstore_cql AND EXISTS ${PROJECT_SOURCE_DIR}/src/cql/sync.c)
  ms_add_test(test_store_health_scylla SOURCES integration/test_store_health.c
              LIBS msgstore_store LABELS integration FIXTURES cassandra TIMEOUT 300
              ENV "MSGSTORE_ID_FORMAT=int64")
  target_compile_definitions(test_store_health_scylla PRIVATE
                             STORE_TEST_DEFAULT_BACKEND="scylla")
endif()
