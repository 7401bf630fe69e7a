# SPDX-License-Identifier: Apache-2.0
# install: `cmake --install` into a temporary prefix, the installed headers
# alone, the shared library's exports, examples/ built through pkg-config and
# run against the test node (tests/install/check_install.sh).
if(TARGET msgstore_cql_shared)
  add_test(NAME install_examples COMMAND ${PROJECT_SOURCE_DIR}/tests/install/check_install.sh)
  set_tests_properties(install_examples PROPERTIES LABELS e2e TIMEOUT 600
    FIXTURES_REQUIRED cassandra
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()

# The systemd unit: systemd-analyze verify and security (offline), and its
# readiness check against a real msgstore serve (tests/install/check_systemd.sh).
# (scripts/deps check installs systemd: without systemd-analyze the test fails.)
if(TARGET msgstore)
  add_test(NAME systemd_unit COMMAND ${PROJECT_SOURCE_DIR}/tests/install/check_systemd.sh)
  set_tests_properties(systemd_unit PROPERTIES LABELS integration TIMEOUT 120
    ENVIRONMENT "MSGSTORE_SOURCE_DIR=${PROJECT_SOURCE_DIR};MSGSTORE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endif()
