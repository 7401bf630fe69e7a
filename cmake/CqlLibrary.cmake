# SPDX-License-Identifier: Apache-2.0
# The CQL client as a library other programs link: libmsgstore-cql.so (SONAME
# libmsgstore-cql.so.MAJOR.MINOR while the major version is 0, i.e. every
# minor release may break the ABI) and libmsgstore-cql.a, each holding the
# client (src/cql) and the core pieces it uses (errors, logging, metrics,
# settings). The shared library exports only the public API (cql_*, ms_err_*,
# ms_xid_*; cmake/cql-exports.map). msgstore itself links the layer archives
# (msgstore_cql + msgstore_core); these two targets exist for installation.
if(NOT TARGET msgstore_cql)
  return()
endif()

# The sources of the client and of core, as absolute paths.
set(ms_lib_srcs "")
foreach(layer cql core)
  get_target_property(srcs msgstore_${layer} SOURCES)
  foreach(f ${srcs})
    if(NOT IS_ABSOLUTE "${f}")
      set(f "${PROJECT_SOURCE_DIR}/src/${layer}/${f}")
    endif()
    list(APPEND ms_lib_srcs "${f}")
  endforeach()
endforeach()

if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(MS_CQL_SOVERSION "${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}")
else()
  set(MS_CQL_SOVERSION "${PROJECT_VERSION_MAJOR}")
endif()

set(MS_CQL_EXPORTS ${PROJECT_SOURCE_DIR}/cmake/cql-exports.map)
add_library(msgstore_cql_shared SHARED ${ms_lib_srcs})
set_target_properties(msgstore_cql_shared PROPERTIES
  OUTPUT_NAME msgstore-cql VERSION ${PROJECT_VERSION} SOVERSION ${MS_CQL_SOVERSION}
  C_VISIBILITY_PRESET default LINK_DEPENDS ${MS_CQL_EXPORTS})
target_link_options(msgstore_cql_shared PRIVATE "LINKER:--version-script=${MS_CQL_EXPORTS}"
                    "LINKER:--no-undefined")
target_link_libraries(msgstore_cql_shared PRIVATE PkgConfig::LZ4 PkgConfig::OPENSSL
                      PkgConfig::LIBUV Threads::Threads m)

add_library(msgstore_cql_static STATIC ${ms_lib_srcs})
set_target_properties(msgstore_cql_static PROPERTIES OUTPUT_NAME msgstore-cql
                      POSITION_INDEPENDENT_CODE ON)
target_link_libraries(msgstore_cql_static PUBLIC PkgConfig::LZ4 PkgConfig::OPENSSL
                      PkgConfig::LIBUV Threads::Threads m)

install(TARGETS msgstore_cql_shared msgstore_cql_static
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/msgstore/cql.h
              ${PROJECT_SOURCE_DIR}/include/msgstore/cql_value.h
              ${PROJECT_SOURCE_DIR}/include/msgstore/error.h
              ${PROJECT_SOURCE_DIR}/include/msgstore/id.h
              ${PROJECT_BINARY_DIR}/include/msgstore/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/msgstore)

# pkg-config: paths relative to the prefix the tree is installed in, so
# `cmake --install build --prefix DIR` gives a working DIR/lib/pkgconfig.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MS_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(MS_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MS_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(MS_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/msgstore-cql.pc.in
               ${PROJECT_BINARY_DIR}/msgstore-cql.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/msgstore-cql.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
