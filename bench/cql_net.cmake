# SPDX-License-Identifier: Apache-2.0
# CQL client load tool: prepared single-row INSERT/SELECT at a concurrency,
# ops/s, latency percentiles and client CPU per operation; and the floor mode
# (the ScyllaDB backend's own statements of a POST and of a latest page, their
# texts from the store's statement table, hence the store's internal headers).
if(TARGET msgstore_cql AND TARGET msgstore_store AND EXISTS ${PROJECT_SOURCE_DIR}/src/cql/sync.c)
  add_executable(cql_bench ${CMAKE_CURRENT_SOURCE_DIR}/cql_bench.c)
  target_include_directories(cql_bench PRIVATE ${PROJECT_SOURCE_DIR}/src/store)
  target_compile_definitions(cql_bench PRIVATE MSGSTORE_HAVE_CQL_SESSION=1)
  target_link_libraries(cql_bench PRIVATE msgstore_store msgstore_cql msgstore_core)
endif()
