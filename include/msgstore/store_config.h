/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msgstore/store_config.h - the settings a store is opened with.
 *
 * Which database holds the messages and how to reach it (the seed's SCYLLA_*
 * settings, or the embedded SQLite file), and what the store's data looks
 * like (id format, snowflake epoch and worker, content limit, the cluster's
 * search change log). The msgstore binary fills it from the environment
 * (src/core/config.c: each field has one row there, with its variable, range,
 * defaults and help); a program that embeds the store fills it itself, from
 * store_config_defaults(). store_open() copies it.
 *
 * This header stands alone: plain data, no library state.
 */
#ifndef MSGSTORE_STORE_CONFIG_H
#define MSGSTORE_STORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "msgstore/backend.h" /* ms_backend_kind */
#include "msgstore/id.h"      /* ms_id_format */

#ifdef __cplusplus
extern "C" {
#endif

#define STORE_CONFIG_STR 256

/* CQL consistency levels, with the protocol's numeric values. */
typedef enum ms_consistency {
    MS_CL_ANY = 0x0000,
    MS_CL_ONE = 0x0001,
    MS_CL_TWO = 0x0002,
    MS_CL_THREE = 0x0003,
    MS_CL_QUORUM = 0x0004,
    MS_CL_ALL = 0x0005,
    MS_CL_LOCAL_QUORUM = 0x0006,
    MS_CL_EACH_QUORUM = 0x0007,
    MS_CL_SERIAL = 0x0008,
    MS_CL_LOCAL_SERIAL = 0x0009,
    MS_CL_LOCAL_ONE = 0x000A,
} ms_consistency;

typedef struct store_config {
    /* --- database: the seed's SCYLLA_* settings --- */
    bool scylla_enabled;                          /* false: embedded SQLite */
    char scylla_contact_points[STORE_CONFIG_STR]; /* comma-separated hosts or host:port */
    int scylla_port;
    char scylla_keyspace[64];
    char scylla_username[128];
    char scylla_password[128];
    char scylla_local_datacenter[64];
    int scylla_protocol_version; /* 4 only */
    int64_t scylla_connect_timeout_ms;
    int64_t scylla_request_timeout_ms;
    ms_consistency scylla_default_consistency;
    ms_consistency scylla_read_consistency;
    ms_consistency scylla_write_consistency;
    ms_consistency scylla_serial_consistency;
    bool scylla_ssl_enabled;
    char scylla_ssl_ca_certs[STORE_CONFIG_STR];
    char scylla_ssl_certfile[STORE_CONFIG_STR];
    char scylla_ssl_keyfile[STORE_CONFIG_STR];
    bool scylla_ssl_verify_hostname;
    int scylla_pool_size;     /* connections per host (per shard) */
    int scylla_max_in_flight; /* store operations in flight (all worker loops) */
    int scylla_prepared_cache_size;
    int scylla_retry_max_attempts;
    int64_t scylla_retry_base_delay_ms;
    int64_t scylla_retry_max_delay_ms;
    int scylla_breaker_failure_threshold;
    int64_t scylla_breaker_reset_timeout_ms;
    int64_t scylla_speculative_delay_ms; /* 0: off */
    int scylla_speculative_max;
    char scylla_reconnect_policy[16]; /* exponential | constant */
    int64_t scylla_reconnect_base_delay_ms;
    int64_t scylla_reconnect_max_delay_ms;
    int scylla_reconnect_max_attempts; /* 0: forever */
    bool scylla_allow_remote_dc;
    bool scylla_compression;                   /* LZ4 when the server offers it */
    char scylla_replication[STORE_CONFIG_STR]; /* "SimpleStrategy:1" or "dc1:3,dc2:3" */
    /* --- the embedded backend, and the data --- */
    char sqlite_path[STORE_CONFIG_STR];
    ms_id_format id_format; /* channel and user ids of a new store; must match an existing one */
    int worker_id;          /* snowflake worker id, unique per instance */
    uint64_t epoch_ms;      /* snowflake epoch, Unix ms */
    int max_content_chars;
    int64_t shutdown_timeout_ms;
    /* --- the cluster's search change log (the index itself: src/search/) --- */
    char search_pg_url[STORE_CONFIG_STR]; /* libpq URL; empty: no index (SQLite has its own) */
    int search_shards;                    /* change-log partitions drained independently */
    int64_t search_log_ttl_ms;            /* change-log entries expire after this */
} store_config;

/*
 * The defaults of the development profile (msgstore's own, without any
 * environment variable): SQLite file msgstore.db, uuid ids, LOCAL_QUORUM...
 */
void store_config_defaults(store_config *c);

/* MS_BACKEND_SCYLLA when c->scylla_enabled, else MS_BACKEND_SQLITE. */
ms_backend_kind store_config_backend(const store_config *c);

#ifdef __cplusplus
}
#endif

#endif
