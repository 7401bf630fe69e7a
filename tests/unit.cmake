# SPDX-License-Identifier: Apache-2.0
# core unit tests
ms_add_test(test_snowflake SOURCES unit/test_snowflake.c LIBS msgstore_core LABELS unit)
ms_add_test(test_xid SOURCES unit/test_xid.c LIBS msgstore_core LABELS unit)
ms_add_test(test_config SOURCES unit/test_config.c LIBS msgstore_core LABELS unit)
ms_add_test(test_metrics SOURCES unit/test_metrics.c LIBS msgstore_core LABELS unit)
# README's configuration table must match the settings table in the code.
add_test(NAME docs_config_table COMMAND ${PROJECT_SOURCE_DIR}/scripts/docs-config $<TARGET_FILE:msgstore> --check)
set_tests_properties(docs_config_table PROPERTIES LABELS unit)
# the ScyllaDB backend's coroutines (src/store/coro.c)
ms_add_test(test_coro SOURCES unit/test_coro.c ${PROJECT_SOURCE_DIR}/src/store/coro.c LIBS msgstore_core LABELS unit)
target_include_directories(test_coro PRIVATE ${PROJECT_SOURCE_DIR}/src/store)
# the ScyllaDB backend's statement table: value lists against markers, generated binders
if(TARGET msgstore_cql AND EXISTS ${PROJECT_SOURCE_DIR}/src/cql/sync.c)
  ms_add_test(test_scylla_statements SOURCES unit/test_scylla_statements.c LIBS msgstore_store
              LABELS unit)
  target_include_directories(test_scylla_statements PRIVATE ${PROJECT_SOURCE_DIR}/src/store)
  target_compile_definitions(test_scylla_statements PRIVATE MSGSTORE_HAVE_CQL=1
                             MSGSTORE_HAVE_CQL_SESSION=1)
endif()
