# SPDX-License-Identifier: Apache-2.0
# Operations e2e: nothing acknowledged is lost when a process dies by SIGKILL under POST load
# (tests/e2e/test_durability.py): msgstore serve on SQLite; the faults node
# (production durability, scripts/cassandra) under msgstore serve.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_durability_sqlite
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_durability.py)
  set_tests_properties(e2e_durability_sqlite PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};DURABILITY_BACKEND=sqlite")
endif()
if(Python3_Interpreter_FOUND AND TARGET msgstore_server AND TARGET msgstore_cql)
  add_test(NAME e2e_durability_cassandra
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_durability.py)
  set_tests_properties(e2e_durability_cassandra PROPERTIES LABELS e2e TIMEOUT 1200
    FIXTURES_REQUIRED cassandra_faults
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};DURABILITY_BACKEND=cassandra")
endif()

# msgstore migrate and serve against the password node and the TLS node (client
# certificates required), through SCYLLA_USERNAME/SCYLLA_PASSWORD and SCYLLA_SSL_*.
if(Python3_Interpreter_FOUND AND TARGET msgstore_server AND TARGET msgstore_cql)
  add_test(NAME e2e_scylla_secure
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_scylla_secure.py)
  set_tests_properties(e2e_scylla_secure PROPERTIES LABELS e2e TIMEOUT 900
    FIXTURES_REQUIRED "cassandra_auth;cassandra_tls"
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()
