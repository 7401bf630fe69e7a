# SPDX-License-Identifier: Apache-2.0
# server: end-to-end tests of `msgstore serve` over real HTTP on loopback
# (tests/e2e/; responses checked against docs/openapi.yaml with a real OpenAPI
# validator). The tests run in the venv of scripts/pyvenv (<build>/e2e-venv, the
# pinned packages of tests/e2e/requirements.txt), which they make when missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_http_sqlite
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_http_api.py)
  set_tests_properties(e2e_http_sqlite PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()

# MSGSTORE_READ_COALESCING: on by default, off makes every read query the store.
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_coalescing
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_coalescing.py)
  set_tests_properties(e2e_coalescing PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()

# The HTTP layer's extension points (streams, WebSocket, posts, hooks) over loopback.
if(TARGET msgstore_server)
  # libh2o keeps up to 16 pool chunks per worker thread in a private cache
  # that LeakSanitizer sees at exit: tests/e2e/lsan.supp names it.
  ms_add_test(test_http_layer SOURCES integration/test_http_layer.c LIBS msgstore_server
              LABELS integration TIMEOUT 60
              ENV "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/e2e/lsan.supp")
endif()

# The same HTTP suite on ScyllaDB/Cassandra (the fixture's node, a keyspace of its own).
if(Python3_Interpreter_FOUND AND TARGET msgstore_server AND TARGET msgstore_cql)
  add_test(NAME e2e_http_scylla
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_http_api.py)
  set_tests_properties(e2e_http_scylla PROPERTIES LABELS e2e TIMEOUT 600
    FIXTURES_REQUIRED "cassandra;postgres"
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};SCYLLA_ENABLED=true;SCYLLA_CONTACT_POINTS=127.0.0.1;SCYLLA_KEYSPACE=msgstore_e2e_http;MSGSTORE_SEARCH_PG_URL=postgresql://msgstore@127.0.0.1:54329/msgstore")
  # UUID ids on the cluster: CQL uuid columns (a keyspace of its own)
  add_test(NAME e2e_uuid_scylla
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_uuid_ids.py)
  set_tests_properties(e2e_uuid_scylla PROPERTIES LABELS e2e TIMEOUT 600
    FIXTURES_REQUIRED "cassandra"
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};SCYLLA_ENABLED=true;SCYLLA_CONTACT_POINTS=127.0.0.1;SCYLLA_KEYSPACE=msgstore_e2e_uuid")
  # concurrent POSTs to one channel: exact message_count, fewer counter updates than messages
  add_test(NAME e2e_counts_coalesced
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_counts_coalesced.py)
  set_tests_properties(e2e_counts_coalesced PROPERTIES LABELS e2e TIMEOUT 600
    FIXTURES_REQUIRED "cassandra"
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};SCYLLA_ENABLED=true;SCYLLA_CONTACT_POINTS=127.0.0.1;SCYLLA_KEYSPACE=msgstore_e2e_counts")
endif()

# The node goes away while serving (behind a TCP proxy of the test's own) and comes back:
# 503 fast while it is away, recovery by itself when it is back, nothing acknowledged lost.
if(Python3_Interpreter_FOUND AND TARGET msgstore_server AND TARGET msgstore_cql)
  add_test(NAME e2e_scylla_outage
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_scylla_outage.py)
  set_tests_properties(e2e_scylla_outage PROPERTIES LABELS e2e TIMEOUT 300 FIXTURES_REQUIRED cassandra
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()

# Start-up without a reachable cluster (serve, ready 503, migrate once it answers) and a
# shutdown bounded by MSGSTORE_SHUTDOWN_TIMEOUT while the faults node is SIGSTOPped (issue 9).
if(Python3_Interpreter_FOUND AND TARGET msgstore_server AND TARGET msgstore_cql)
  add_test(NAME e2e_scylla_start_close
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_scylla_start_close.py)
  set_tests_properties(e2e_scylla_start_close PROPERTIES LABELS e2e TIMEOUT 600
    FIXTURES_REQUIRED cassandra
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};MSGSTORE_CASSANDRA_HOME=${PROJECT_BINARY_DIR}/cassandra")
endif()

# Attacks and limits (issue 10): more than 64 workers, a WebSocket client that
# never reads, request smuggling, /health and /metrics behind a token, SSE
# events over the frame limit, the access log's UTF-8; Redis with AUTH and
# a db number through scripts/redis on free ports.
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_hardening
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_hardening.py)
  set_tests_properties(e2e_hardening PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};MSGSTORE_REDIS_HOME=${PROJECT_BINARY_DIR}/redis")
  # The memory-safety cases also in the sanitized build's integration run (make check runs
  # unit and integration there): more than 64 workers, a client that never reads, SSE
  # events over 1 MiB.
  if(MSGSTORE_SANITIZE)
    add_test(NAME e2e_hardening_sanitized
             COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_hardening.py
                     ManyWorkers WebSocketThatNeverReads LargeEvents)
    set_tests_properties(e2e_hardening_sanitized PROPERTIES LABELS integration TIMEOUT 300
      ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
  endif()
endif()

# UUID channel and user ids end to end (test_uuid_ids.py): SQLite, and the Cassandra node
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_uuid_sqlite
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_uuid_ids.py)
  set_tests_properties(e2e_uuid_sqlite PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()

# User tokens (JWT), ?access_token=, CORS and rate limits, on SQLite, in both id formats
# (the sub and channels claims are parsed in the store's format).
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  foreach(fmt int64 uuid)
    add_test(NAME e2e_auth_${fmt}
             COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_auth.py)
    set_tests_properties(e2e_auth_${fmt} PROPERTIES LABELS e2e TIMEOUT 300
      ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};MSGSTORE_ID_FORMAT=${fmt}")
  endforeach()
endif()

# /console in headless Chromium (Debian's chromium + chromium-driver, scripts/deps check):
# two users in one channel, live delivery, typing, reactions, scroll back; screenshots
# under the build directory (console-test/). UUID ids, the seed platform's (the page treats
# ids as opaque strings; the int64 format's claims are covered by e2e_auth_int64).
if(Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME e2e_console_browser
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/e2e/test_console_browser.py)
  set_tests_properties(e2e_console_browser PROPERTIES LABELS e2e TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR};MSGSTORE_ID_FORMAT=uuid")
endif()

# User tokens and rate-limit buckets, without a server.
if(TARGET msgstore_server)
  ms_add_test(test_jwt SOURCES unit/test_jwt.c LIBS msgstore_server LABELS unit)
  ms_add_test(test_ratelimit SOURCES unit/test_ratelimit.c LIBS msgstore_server LABELS unit)
  ms_add_test(test_json_out SOURCES unit/test_json_out.c LIBS msgstore_server LABELS unit)
  target_include_directories(test_json_out PRIVATE ${PROJECT_SOURCE_DIR}/src)
endif()
