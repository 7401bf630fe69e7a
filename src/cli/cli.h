/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the msgstore subcommands. Each lives in its own file
 * (src/cli/cmd_<name>.c) and is listed in main.c's table.
 *
 * A command returns the process exit code: 0 success, 1 failure at run time,
 * 2 bad usage or configuration (with a message on stderr naming the problem).
 */
#ifndef MS_CLI_H
#define MS_CLI_H

#include "core/config.h"

#define MS_EXIT_OK    0
#define MS_EXIT_FAIL  1
#define MS_EXIT_USAGE 2

/*
 * Loads the configuration from the environment, then applies --NAME=VALUE
 * flags from argv (argv[0] is the command). Unknown arguments go back in
 * rest[] (*nrest of them). Prints a message and returns MS_EXIT_USAGE on a
 * bad setting, otherwise 0.
 */
int cli_load_config(ms_config *cfg, int argc, char **argv, char **rest, int *nrest);

/*
 * cli_load_config for a command that takes no other argument than its own
 * flags (already removed from argv): an argument left over is reported as
 * "msgstore CMD: unexpected argument" and gives MS_EXIT_USAGE.
 */
int cli_load_config_only(ms_config *cfg, int argc, char **argv, const char *cmd);

/* Sets logging up from cfg. */
void cli_setup_logging(const ms_config *cfg);

int cmd_version(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_copy(int argc, char **argv);

#endif
