# SPDX-License-Identifier: Apache-2.0
# Schemathesis against `msgstore serve` on both backends: every check, 0 failures
# (tests/e2e/test_schemathesis.py; the pinned tools come from scripts/pyvenv).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_schemathesis_sqlite
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_schemathesis.py)
  set_tests_properties(e2e_schemathesis_sqlite PROPERTIES LABELS e2e TIMEOUT 900
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()
if(Python3_Interpreter_FOUND AND TARGET msgstore_server AND TARGET msgstore_cql)
  add_test(NAME e2e_schemathesis_scylla
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_schemathesis.py)
  set_tests_properties(e2e_schemathesis_scylla PROPERTIES LABELS e2e TIMEOUT 1500
    FIXTURES_REQUIRED cassandra
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};SCYLLA_ENABLED=true;SCYLLA_CONTACT_POINTS=127.0.0.1;SCYLLA_KEYSPACE=msgstore_e2e_st")
endif()
