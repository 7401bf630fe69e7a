# SPDX-License-Identifier: Apache-2.0
# backup/restore and copy --to-cluster: `msgstore backup` under POST load on a real `msgstore serve`,
# `msgstore restore`, and bad input (tests/e2e/test_backup.py).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_backup COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_backup.py)
  set_tests_properties(e2e_backup PROPERTIES LABELS e2e TIMEOUT 600
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()

# copy --to-cluster: a store with every kind of data into the test node, SIGKILL mid-copy,
# resume, verify, the same API reads on both backends, the copied messages found by the cluster's
# PostgreSQL search; bad input (tests/e2e/test_copy.py).
if(Python3_Interpreter_FOUND AND TARGET msgstore_server AND TARGET msgstore_cql)
  add_test(NAME e2e_copy COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_copy.py)
  set_tests_properties(e2e_copy PROPERTIES LABELS e2e TIMEOUT 1200 FIXTURES_REQUIRED "cassandra;postgres"
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};${MS_PG_TEST_ENV}")
endif()
