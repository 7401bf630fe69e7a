# SPDX-License-Identifier: Apache-2.0
# CQL client (I/O half): unit tests of the pure parts, integration tests on a
# real Cassandra node, cluster tests on the 4-node cluster.
if(TARGET msgstore_cql)
  foreach(t lru breaker backoff ring lb pool tablets)
    ms_add_test(test_cql_${t} SOURCES unit/test_cql_${t}.c LIBS msgstore_cql msgstore_core LABELS unit)
  endforeach()
  # backoff also checks the SCYLLA_* settings' mapping (store_cql_options, in the store)
  target_link_libraries(test_cql_backoff PRIVATE msgstore_store)
  ms_add_test(test_cql_session SOURCES integration/test_cql_session.c
    LIBS msgstore_cql msgstore_core LABELS integration FIXTURES cassandra TIMEOUT 300)
  # an idle cql_sync through an outage of its node (a proxy of the test's own)
  ms_add_test(test_cql_sync_idle SOURCES integration/test_cql_sync_idle.c
    LIBS msgstore_cql msgstore_core LABELS integration FIXTURES cassandra TIMEOUT 120)
endif()
if(TARGET msgstore_cql)
  ms_add_test(test_cql_auth SOURCES integration/test_cql_auth.c
    LIBS msgstore_cql msgstore_core LABELS integration FIXTURES cassandra_auth TIMEOUT 120)
  ms_add_test(test_cql_tls SOURCES integration/test_cql_tls.c
    LIBS msgstore_cql msgstore_core LABELS integration FIXTURES cassandra_tls TIMEOUT 120)
endif()
# Fault tests kill, restart and pause a node of their own (127.0.0.4, the
# "faults" set of scripts/cassandra). The fixture is registered once
# fixtures.cmake (read after this file) has defined the helper.
if(TARGET msgstore_cql)
  cmake_language(DEFER CALL ms__cassandra_fixture cassandra_faults faults 600)
  ms_add_test(test_cql_faults SOURCES integration/test_cql_faults.c
    LIBS msgstore_cql msgstore_core LABELS integration FIXTURES cassandra_faults TIMEOUT 300
    ENV "MSGSTORE_TEST_CASSANDRA_FAULTS=127.0.0.4:9042")
endif()
if(TARGET msgstore_cql)
  ms_add_test(test_cql_cluster SOURCES cluster/test_cql_cluster.c
    LIBS msgstore_cql msgstore_core LABELS cluster FIXTURES cassandra_cluster TIMEOUT 900)
endif()
# Simulated ScyllaDB releases (tests/scylla_sim/scylla_sim.py): the protocol
# extensions and keyspace decisions a real Cassandra node cannot show (issue 14).
find_package(Python3 COMPONENTS Interpreter)
if(TARGET msgstore_cql AND Python3_Interpreter_FOUND)
  ms_add_test(test_cql_scylla_sim SOURCES integration/test_cql_scylla_sim.c
    LIBS msgstore_cql msgstore_core LABELS integration TIMEOUT 600)
endif()
if(TARGET msgstore_cql AND Python3_Interpreter_FOUND AND TARGET msgstore_server)
  add_test(NAME scylla_sim_migrate
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/scylla_sim/test_scylla_sim_migrate.py)
  set_tests_properties(scylla_sim_migrate PROPERTIES LABELS integration TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
  # msgstore serve rate limited by the simulator (a non-standard advertised code): 429 with
  # Retry-After, then 200 once it stops (rate limiting is no host failure).
  add_test(NAME scylla_sim_rate_limit
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/scylla_sim/test_scylla_sim_rate_limit.py)
  set_tests_properties(scylla_sim_rate_limit PROPERTIES LABELS integration TIMEOUT 300
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()
# Node loss through the service: msgstore serve on the cluster under POST and GET load, one dc1
# node SIGKILLed; after mark-down no request fails and every acknowledged message is readable.
if(TARGET msgstore_server AND TARGET msgstore_cql AND Python3_Interpreter_FOUND)
  add_test(NAME e2e_cluster_node_loss
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/cluster/test_node_loss_serve.py)
  set_tests_properties(e2e_cluster_node_loss PROPERTIES LABELS "cluster;e2e" TIMEOUT 1200
    FIXTURES_REQUIRED cassandra_cluster
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()
