# The message store: one conformance suite run against every backend.
#   test_store_conformance         SQLite (a fresh file in a temp dir)
#   test_store_conformance_scylla  the same suite on the Cassandra node (fixture cassandra;
#                                  keyspace msgstore_conformance, fresh channels every run)
ms_add_test(test_store_conformance SOURCES integration/test_store_conformance.c
            LIBS msgstore_store LABELS integration TIMEOUT 600)
if(TARGET msgstore_cql AND EXISTS ${PROJECT_SOURCE_DIR}/src/cql/sync.c)
  ms_add_test(test_store_conformance_scylla SOURCES integration/test_store_conformance.c
              LIBS msgstore_store LABELS integration FIXTURES cassandra TIMEOUT 900)
  target_compile_definitions(test_store_conformance_scylla PRIVATE
                             STORE_TEST_DEFAULT_BACKEND="scylla")
endif()

# `msgstore migrate` on a SQLite file (runs the built binary).
ms_add_test(test_store_migrate SOURCES integration/test_store_migrate.c
            LIBS msgstore_store LABELS integration TIMEOUT 120)
add_dependencies(test_store_migrate msgstore)
