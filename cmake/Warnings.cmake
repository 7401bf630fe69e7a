# SPDX-License-Identifier: Apache-2.0
# Warnings for our own code. Third-party headers come in through pkg-config
# imported targets, whose include directories are SYSTEM, so they stay quiet.
set(MSGSTORE_WARNINGS
    -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes
    -Wmissing-prototypes -Wold-style-definition -Wvla -Wpointer-arith
    -Wwrite-strings -Wundef -Wnull-dereference -Wdouble-promotion)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  list(APPEND MSGSTORE_WARNINGS -Wlogical-op -Wduplicated-cond)
endif()
if(MSGSTORE_WERROR)
  list(APPEND MSGSTORE_WARNINGS -Werror)
endif()
add_compile_options(${MSGSTORE_WARNINGS})
