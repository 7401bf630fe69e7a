# SPDX-License-Identifier: Apache-2.0
# rt_bench: POST-to-delivery latency (p50/p99) and memory per idle WebSocket
# subscriber against a `msgstore serve` it starts (docs/benchmarks.md, "Real-time").
add_executable(rt_bench ${CMAKE_CURRENT_SOURCE_DIR}/rt_bench.c)
