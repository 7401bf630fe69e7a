# SPDX-License-Identifier: Apache-2.0
# search: the PostgreSQL fixture of the cluster backend's search index
# (src/search/, docs/architecture.md).
#
#   fixture   server                                  state
#   postgres  PostgreSQL 15 127.0.0.1:54329, db msgstore  <build>/postgres/54329 (scripts/postgres)
#
# Every test that needs it gets MSGSTORE_TEST_PG_URL. Tests that kill and
# restart PostgreSQL start their own cluster on a free port through
# scripts/postgres (same state dir), never the fixture's.
# (MS_PG_HOME, MS_PG_PORT and MS_PG_TEST_ENV are set in tests/CMakeLists.txt, for every subject)
add_test(NAME fixture_postgres_setup
  COMMAND ${CMAKE_COMMAND} -E env MSGSTORE_PG_HOME=${MS_PG_HOME}
          ${PROJECT_SOURCE_DIR}/scripts/postgres ensure ${MS_PG_PORT})
add_test(NAME fixture_postgres_cleanup
  COMMAND ${CMAKE_COMMAND} -E env MSGSTORE_PG_HOME=${MS_PG_HOME}
          ${PROJECT_SOURCE_DIR}/scripts/postgres release ${MS_PG_PORT})
set_tests_properties(fixture_postgres_setup PROPERTIES FIXTURES_SETUP postgres LABELS fixture
  TIMEOUT 120)
set_tests_properties(fixture_postgres_cleanup PROPERTIES FIXTURES_CLEANUP postgres LABELS fixture
  TIMEOUT 60)

# The fixture's server accepts connections and runs full-text queries (the
# features the indexer relies on: to_tsvector with the simple configuration).
add_test(NAME postgres_status
  COMMAND sh -c "psql -X -q -tA -v ON_ERROR_STOP=1 -c \"SELECT to_tsvector('simple', 'Hello World') @@ to_tsquery('simple', 'hello')\" \"$MSGSTORE_TEST_PG_URL\" | grep -qx t")
set_tests_properties(postgres_status PROPERTIES LABELS integration FIXTURES_REQUIRED postgres
  TIMEOUT 60 ENVIRONMENT "${MS_PG_TEST_ENV}")

# Faults of the ScyllaDB backend's index: msgstore SIGKILLed between the Cassandra write and the
# index commit (fault injection), PostgreSQL SIGKILLed and restarted under POST load (a cluster
# of the test's own on a free port through scripts/postgres).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET msgstore_search AND TARGET msgstore_server)
  add_test(NAME e2e_search_faults
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_search_faults.py)
  set_tests_properties(e2e_search_faults PROPERTIES LABELS e2e TIMEOUT 600 FIXTURES_REQUIRED cassandra
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};SCYLLA_CONTACT_POINTS=127.0.0.1")
endif()

# The query language's PostgreSQL form and the change-log shard (no server).
ms_add_test(test_search_query SOURCES unit/test_search_query.c LIBS msgstore_store LABELS unit)
