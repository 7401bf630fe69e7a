# SPDX-License-Identifier: Apache-2.0
# All dependencies are Debian packages installed by scripts/deps.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
# libh2o.pc omits libuv and OpenSSL from Libs; libwslay ships no .pc at all.
pkg_check_modules(H2O REQUIRED IMPORTED_TARGET libh2o)
find_library(WSLAY_LIBRARY NAMES wslay REQUIRED)
add_library(msgstore_h2o INTERFACE)
target_link_libraries(msgstore_h2o INTERFACE PkgConfig::H2O PkgConfig::LIBUV PkgConfig::OPENSSL ${WSLAY_LIBRARY})
target_compile_definitions(msgstore_h2o INTERFACE H2O_USE_LIBUV=1)
