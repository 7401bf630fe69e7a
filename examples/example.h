/* SPDX-License-Identifier: Apache-2.0 */
/*
 * example.h - what every example shares: where the cluster is, and dying
 * with a message. Each example is one .c file that includes only this and
 * the installed headers; build one with
 *
 *   cc -o connect connect.c $(pkg-config --cflags --libs msgstore-cql)
 *
 * and run it as `./connect [CONTACT_POINTS]` (default 127.0.0.1, or the
 * CQL_CONTACT_POINTS environment variable).
 */
#ifndef MSGSTORE_EXAMPLE_H
#define MSGSTORE_EXAMPLE_H

#include <msgstore/cql.h>
#include <stdio.h>
#include <stdlib.h>

#define EXAMPLE_KEYSPACE "msgstore_examples"

/* Prints what failed and why (the status' code name and message), then exits 1. */
static inline void example_die(const char *what, const cql_status *st)
{
    fprintf(stderr, "%s: %s (%s)\n", what, st->message[0] ? st->message : ms_err_str(st->code),
            ms_err_name(st->code));
    exit(1);
}

/* Session options for the cluster named on the command line or in the environment. */
static inline void example_options(cql_options *o, int argc, char **argv)
{
    cql_options_init(o);
    const char *env = getenv("CQL_CONTACT_POINTS");
    o->contact_points = argc > 1 ? argv[1] : env && *env ? env : "127.0.0.1";
    o->request_timeout_ms = 20000; /* DDL on a busy single test node can be slow */
}

/* Connects synchronously and makes sure the examples' keyspace exists. */
static inline cql_sync *example_connect(int argc, char **argv)
{
    cql_options o;
    example_options(&o, argc, argv);
    cql_sync *c;
    cql_status st;
    if (cql_sync_connect(&o, &c, &st) != 0)
        example_die("connect", &st);
    if (cql_sync_query(c,
                       "CREATE KEYSPACE IF NOT EXISTS " EXAMPLE_KEYSPACE
                       " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
                       NULL, &st) != 0)
        example_die("create keyspace", &st);
    return c;
}

#endif
