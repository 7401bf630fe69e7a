# SPDX-License-Identifier: Apache-2.0
# The systemd unit (packaging/systemd/msgstore.service.in). Its paths are those
# of the prefix the tree is installed in (`cmake --install build --prefix P`),
# so it is configured at install time: P/lib/systemd/system/msgstore.service,
# and the example environment file as P/share/doc/msgstore/msgstore.env.
set(MS_UNIT_IN ${PROJECT_SOURCE_DIR}/packaging/systemd/msgstore.service.in)
install(CODE "
  set(p \"\${CMAKE_INSTALL_PREFIX}\")
  set(MS_BINDIR \"\${p}/${CMAKE_INSTALL_BINDIR}\")
  set(MS_DOCDIR \"\${p}/${CMAKE_INSTALL_DATAROOTDIR}/doc/msgstore\")
  set(MS_UNITDIR \"\${p}/lib/systemd/system\")
  if(p STREQUAL \"/usr\")
    set(MS_SYSCONFDIR /etc)
  else()
    set(MS_SYSCONFDIR \"\${p}/etc\")
  endif()
  message(STATUS \"Installing: \$ENV{DESTDIR}\${MS_UNITDIR}/msgstore.service\")
  configure_file(\"${MS_UNIT_IN}\" \"\$ENV{DESTDIR}\${MS_UNITDIR}/msgstore.service\" @ONLY)
")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/msgstore.env DESTINATION ${CMAKE_INSTALL_DOCDIR})
