# core unit tests
ms_add_test(test_snowflake SOURCES unit/test_snowflake.c LIBS msgstore_core LABELS unit)
ms_add_test(test_config SOURCES unit/test_config.c LIBS msgstore_core LABELS unit)
ms_add_test(test_metrics SOURCES unit/test_metrics.c LIBS msgstore_core LABELS unit)
