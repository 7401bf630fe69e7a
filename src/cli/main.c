/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - msgstore's command line: `msgstore <command> [--NAME=VALUE ...]`.
 */
#include "cli/cli.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"version", cmd_version, "print the version and exit"},
    {"config", cmd_config, "print the effective configuration (secrets masked) and exit"},
    {"migrate", cmd_migrate, "apply the schema migrations to the SQLite file or the keyspace"},
    {"serve", cmd_serve, "serve the HTTP/JSON API until SIGTERM (--help lists the settings)"},
    {"health", cmd_health,
     "check a running instance (/health/ready) or the database; exit 0 if ready"},
    {"backup", cmd_backup, "copy the SQLite store to a file while it serves (--to FILE)"},
    {"restore", cmd_restore, "put a backup back as the SQLite store (--from FILE)"},
    {"copy", cmd_copy, "copy the SQLite store into the SCYLLA_* cluster (--to-cluster)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: msgstore <command> [--NAME=VALUE ...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nSettings come from the environment (SCYLLA_*, MSGSTORE_*); a flag\n"
                 "--NAME=VALUE overrides one. `msgstore config --help` lists them all.\n");
}

int cli_load_config(ms_config *cfg, int argc, char **argv, char **rest, int *nrest)
{
    char err[512];
    if (ms_config_load(cfg, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "msgstore: %s\n", err);
        return MS_EXIT_USAGE;
    }
    *nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq && eq > a + 2) {
            char name[128];
            size_t n = (size_t)(eq - a - 2);
            if (n >= sizeof name) {
                fprintf(stderr, "msgstore: %s: setting name too long\n", a);
                return MS_EXIT_USAGE;
            }
            memcpy(name, a + 2, n);
            name[n] = '\0';
            if (ms_config_set(cfg, name, eq + 1, err, sizeof err) != 0) {
                fprintf(stderr, "msgstore: %s\n", err);
                return MS_EXIT_USAGE;
            }
        } else {
            rest[(*nrest)++] = argv[i];
        }
    }
    return 0;
}

int cli_load_config_only(ms_config *cfg, int argc, char **argv, const char *cmd)
{
    char *rest[64];
    int nrest = 0;
    if (argc > 64) {
        fprintf(stderr, "msgstore %s: too many arguments\n", cmd);
        return MS_EXIT_USAGE;
    }
    int rc = cli_load_config(cfg, argc, argv, rest, &nrest);
    if (rc == 0 && nrest > 0) {
        fprintf(stderr, "msgstore %s: unexpected argument '%s'\n", cmd, rest[0]);
        rc = MS_EXIT_USAGE;
    }
    return rc;
}

void cli_setup_logging(const ms_config *cfg)
{
    int lvl = ms_log_level_parse(cfg->log_level);
    ms_log_setup(lvl < 0 ? MS_LOG_INFO : (ms_log_level)lvl, strcmp(cfg->log_format, "json") == 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return MS_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return MS_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0)
        cmd = "version";
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, cmd) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "msgstore: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return MS_EXIT_USAGE;
}
