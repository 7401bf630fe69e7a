/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("msgstore %s\n", MSGSTORE_VERSION);
    return MS_EXIT_OK;
}

int cmd_config(int argc, char **argv)
{
    ms_config cfg;
    char *rest[64];
    int nrest = 0;
    if (argc > 64) {
        fprintf(stderr, "msgstore config: too many arguments\n");
        return MS_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--markdown") == 0) {
            ms_config_print_markdown(stdout);
            return MS_EXIT_OK;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            ms_config_print_help(stdout, MS_PROFILE_DEVELOPMENT);
            return MS_EXIT_OK;
        }
    }
    int rc = cli_load_config(&cfg, argc, argv, rest, &nrest);
    if (rc)
        return rc;
    if (nrest) {
        fprintf(stderr, "msgstore config: unexpected argument '%s'\n", rest[0]);
        return MS_EXIT_USAGE;
    }
    ms_config_print(stdout, &cfg);
    return MS_EXIT_OK;
}
