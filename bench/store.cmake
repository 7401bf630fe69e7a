# The message store benchmark (numbers in docs/benchmarks.md, section "Message store").
if(TARGET msgstore_store)
  add_executable(store_bench ${CMAKE_CURRENT_SOURCE_DIR}/store_bench.c)
  target_link_libraries(store_bench PRIVATE msgstore_store)
endif()
