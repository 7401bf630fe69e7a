# SPDX-License-Identifier: Apache-2.0
# CPU cost of the CQL wire codec per operation, with an allocation counter
# (malloc/realloc are wrapped at link time to count calls in the hot path).
add_executable(bench_cql_wire ${CMAKE_CURRENT_SOURCE_DIR}/bench_cql_wire.c)
target_link_libraries(bench_cql_wire PRIVATE msgstore_cql msgstore_core)
target_link_options(bench_cql_wire PRIVATE -Wl,--wrap=malloc -Wl,--wrap=realloc -Wl,--wrap=calloc)
