# SPDX-License-Identifier: Apache-2.0
# ctest fixtures for the real Cassandra nodes (scripts/cassandra) and the infra
# tests. A fixture's setup test runs `scripts/cassandra ensure NAME` before the
# first test that lists it in FIXTURES; its cleanup test runs `release NAME`
# after the last one, also when tests failed. release stops only what ensure
# started, so a node reused under MSGSTORE_CASSANDRA_REUSE=1 keeps running.
#
#   fixture            node set  address(es), port 9042
#   cassandra          single    127.0.0.1
#   cassandra_auth     auth      127.0.0.2 (cassandra/cassandra)
#   cassandra_tls      tls       127.0.0.3 (CA, client cert: $MSGSTORE_TEST_TLS_DIR)
#   cassandra_cluster  cluster   127.0.1.1-3 (dc1), 127.0.1.4 (dc2)
#   cassandra_faults   faults    127.0.0.4 (tests kill/restart/pause it)
#
# Every test gets the addresses in its environment (MSGSTORE_TEST_CASSANDRA*,
# MSGSTORE_TEST_TLS_DIR), see docs/testing.md.

if(DEFINED ENV{MSGSTORE_CASSANDRA_HOME})
  set(MS_CASSANDRA_HOME "$ENV{MSGSTORE_CASSANDRA_HOME}")
else()
  set(MS_CASSANDRA_HOME "${PROJECT_SOURCE_DIR}/build/cassandra")
endif()
set(MS_CASSANDRA_SCRIPT "${PROJECT_SOURCE_DIR}/scripts/cassandra")

function(ms__cassandra_fixture fixture set timeout)
  if(TEST fixture_${fixture}_setup)
    return()
  endif()
  add_test(NAME fixture_${fixture}_setup
    COMMAND ${CMAKE_COMMAND} -E env MSGSTORE_CASSANDRA_HOME=${MS_CASSANDRA_HOME}
            ${MS_CASSANDRA_SCRIPT} ensure ${set})
  add_test(NAME fixture_${fixture}_cleanup
    COMMAND ${CMAKE_COMMAND} -E env MSGSTORE_CASSANDRA_HOME=${MS_CASSANDRA_HOME}
            ${MS_CASSANDRA_SCRIPT} release ${set})
  set_tests_properties(fixture_${fixture}_setup PROPERTIES
    FIXTURES_SETUP ${fixture} LABELS fixture TIMEOUT ${timeout})
  set_tests_properties(fixture_${fixture}_cleanup PROPERTIES
    FIXTURES_CLEANUP ${fixture} LABELS fixture TIMEOUT 300)
endfunction()


set(MS_CASSANDRA_TEST_ENV
  "MSGSTORE_TEST_CASSANDRA=127.0.0.1:9042"
  "MSGSTORE_TEST_CASSANDRA_AUTH=127.0.0.2:9042"
  "MSGSTORE_TEST_CASSANDRA_USER=cassandra"
  "MSGSTORE_TEST_CASSANDRA_PASSWORD=cassandra"
  "MSGSTORE_TEST_CASSANDRA_TLS=127.0.0.3:9042"
  "MSGSTORE_TEST_TLS_DIR=${MS_CASSANDRA_HOME}/tls"
  "MSGSTORE_TEST_CASSANDRA_CLUSTER=127.0.1.1:9042,127.0.1.2:9042,127.0.1.3:9042,127.0.1.4:9042"
  "MSGSTORE_CASSANDRA_HOME=${MS_CASSANDRA_HOME}")

# Runs once every tests/*.cmake is read (tests registered before and after
# this file alike): adds the fixture environment to every test, and defines
# the setup/cleanup tests of the fixtures that some test requires (a plain
# `ctest` would otherwise start nodes nobody uses).
function(ms__cassandra_fixtures_finish)
  get_property(tests DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY TESTS)
  set(used "")
  foreach(t ${tests})
    if(t MATCHES "^fixture_")
      continue()
    endif()
    get_test_property(${t} ENVIRONMENT env)
    if(NOT env)
      set(env "")
    endif()
    set_tests_properties(${t} PROPERTIES ENVIRONMENT "${env};${MS_CASSANDRA_TEST_ENV}")
    get_test_property(${t} FIXTURES_REQUIRED req)
    get_test_property(${t} LABELS labels)
    if(req)
      list(APPEND used ${req})
      # a fixture's setup/cleanup carry the labels of the tests that need it,
      # so `ctest -LE cluster` does not start the cluster for nobody
      foreach(r ${req})
        if(labels)
          list(APPEND MS_FIXTURE_LABELS_${r} ${labels})
        endif()
      endforeach()
    endif()
  endforeach()
  foreach(f "cassandra single 600" "cassandra_auth auth 600" "cassandra_tls tls 600"
            "cassandra_cluster cluster 1800" "cassandra_faults faults 600")
    separate_arguments(f)
    list(GET f 0 fixture)
    if(fixture IN_LIST used)
      ms__cassandra_fixture(${f})
      set(labels fixture ${MS_FIXTURE_LABELS_${fixture}})
      list(REMOVE_DUPLICATES labels)
      set_tests_properties(fixture_${fixture}_setup fixture_${fixture}_cleanup PROPERTIES
        LABELS "${labels}")
    endif()
  endforeach()
endfunction()
cmake_language(DEFER CALL ms__cassandra_fixtures_finish)

# Infra tests: the node answers the native protocol v4 handshake.
ms_add_test(test_cql_options SOURCES integration/test_cql_options.c LABELS integration
  FIXTURES cassandra TIMEOUT 60)

# The four-node cluster is up and every node sees the others (label cluster).
add_test(NAME cluster_status COMMAND ${PROJECT_SOURCE_DIR}/tests/cluster/check_cluster.sh)
set_tests_properties(cluster_status PROPERTIES LABELS cluster FIXTURES_REQUIRED cassandra_cluster
  TIMEOUT 300)
