# SPDX-License-Identifier: Apache-2.0
# The message store benchmark (numbers in docs/benchmarks.md, section "Message store").
if(TARGET msgstore_store)
  add_executable(store_bench ${CMAKE_CURRENT_SOURCE_DIR}/store_bench.c)
  target_link_libraries(store_bench PRIVATE msgstore_store)
endif()

# Search (issue 12): POST throughput search on / off, search latency, index lag (ScyllaDB);
# numbers in docs/benchmarks.md, section "Search".
if(TARGET msgstore_search)
  add_executable(search_bench ${CMAKE_CURRENT_SOURCE_DIR}/search_bench.c)
  target_link_libraries(search_bench PRIVATE msgstore_search msgstore_store m)
endif()
