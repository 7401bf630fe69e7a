# SPDX-License-Identifier: Apache-2.0
# The message store: one conformance suite run against every backend, in both id formats
# (MSGSTORE_ID_FORMAT: the suite names channels and users through U(n), an id of the store's
# format, so every operation runs with UUIDs and with integers):
#   test_store_conformance[_int64]        SQLite (a fresh file in a temp dir)
#   test_store_conformance_scylla[_uuid]  the same suite on the Cassandra node (fixture
#                                  cassandra; keyspaces msgstore_conformance (int64, kept from
#                                  before the format existed) and msgstore_conformance_uuid,
#                                  fresh channels every run), searches through the PostgreSQL
#                                  index (fixture postgres)
ms_add_test(test_store_conformance SOURCES integration/test_store_conformance.c
            LIBS msgstore_store LABELS integration TIMEOUT 600 ENV "MSGSTORE_ID_FORMAT=uuid")
ms_add_test(test_store_conformance_int64 SOURCES integration/test_store_conformance.c
            LIBS msgstore_store LABELS integration TIMEOUT 600 ENV "MSGSTORE_ID_FORMAT=int64")
if(TARGET msgstore_cql AND EXISTS ${PROJECT_SOURCE_DIR}/src/cql/sync.c)
  # ... with the search cases answered by the PostgreSQL index (src/search/, fixture postgres)
  ms_add_test(test_store_conformance_scylla SOURCES integration/test_store_conformance.c
              LIBS msgstore_store msgstore_search LABELS integration
              FIXTURES cassandra postgres TIMEOUT 900
              ENV "MSGSTORE_TEST_PG_URL=postgresql://msgstore@127.0.0.1:54329/msgstore"
                  "MSGSTORE_ID_FORMAT=int64")
  target_compile_definitions(test_store_conformance_scylla PRIVATE
                             STORE_TEST_DEFAULT_BACKEND="scylla" STORE_TEST_SEARCH=1)
  ms_add_test(test_store_conformance_scylla_uuid SOURCES integration/test_store_conformance.c
              LIBS msgstore_store msgstore_search LABELS integration
              FIXTURES cassandra postgres TIMEOUT 900
              ENV "MSGSTORE_TEST_PG_URL=postgresql://msgstore@127.0.0.1:54329/msgstore"
                  "MSGSTORE_ID_FORMAT=uuid" "SCYLLA_KEYSPACE=msgstore_conformance_uuid")
  target_compile_definitions(test_store_conformance_scylla_uuid PRIVATE
                             STORE_TEST_DEFAULT_BACKEND="scylla" STORE_TEST_SEARCH=1)
endif()

# `msgstore migrate` on a SQLite file (runs the built binary).
ms_add_test(test_store_migrate SOURCES integration/test_store_migrate.c
            LIBS msgstore_store LABELS integration TIMEOUT 120)
add_dependencies(test_store_migrate msgstore)
