# SPDX-License-Identifier: Apache-2.0
# realtime: hub, queues, presence (unit); Redis bridge against a real
# redis-server (integration); the redis fixture.
#
#   fixture  server                      state
#   redis    redis-server 127.0.0.1:6390 <build>/redis/6390 (scripts/redis)
#
# Tests that kill and restart Redis start their own server on a free port
# through scripts/redis (same state dir), never the fixture's.
set(MS_REDIS_HOME "${PROJECT_BINARY_DIR}/redis")
add_test(NAME fixture_redis_setup
  COMMAND ${CMAKE_COMMAND} -E env MSGSTORE_REDIS_HOME=${MS_REDIS_HOME}
          ${PROJECT_SOURCE_DIR}/scripts/redis ensure 6390)
add_test(NAME fixture_redis_cleanup
  COMMAND ${CMAKE_COMMAND} -E env MSGSTORE_REDIS_HOME=${MS_REDIS_HOME}
          ${PROJECT_SOURCE_DIR}/scripts/redis release 6390)
set_tests_properties(fixture_redis_setup PROPERTIES FIXTURES_SETUP redis LABELS fixture TIMEOUT 60)
set_tests_properties(fixture_redis_cleanup PROPERTIES FIXTURES_CLEANUP redis LABELS fixture TIMEOUT 60)
set(MS_REDIS_TEST_ENV "MSGSTORE_TEST_REDIS=redis://127.0.0.1:6390" "MSGSTORE_REDIS_HOME=${MS_REDIS_HOME}")

ms_add_test(test_rt_hub SOURCES unit/test_rt_hub.c LIBS msgstore_realtime LABELS unit)
ms_add_test(test_rt_bridge SOURCES integration/test_rt_bridge.c LIBS msgstore_realtime
  LABELS integration FIXTURES redis ENV ${MS_REDIS_TEST_ENV} TIMEOUT 120)

# End to end: `msgstore serve` processes, real WebSocket/SSE clients (Python
# standard library) and redis-servers of the test's own on free ports (one it
# kills and restarts).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_realtime
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_realtime.py)
  set_tests_properties(e2e_realtime PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};MSGSTORE_REDIS_HOME=${MS_REDIS_HOME}")
endif()
