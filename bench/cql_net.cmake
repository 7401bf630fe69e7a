# CQL client load tool: prepared single-row INSERT/SELECT at a concurrency,
# ops/s, latency percentiles and client CPU per operation.
if(TARGET msgstore_cql)
  add_executable(cql_bench ${CMAKE_CURRENT_SOURCE_DIR}/cql_bench.c)
  target_link_libraries(cql_bench PRIVATE msgstore_cql msgstore_core)
endif()
