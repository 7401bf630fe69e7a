/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - configuration from the environment.
 *
 * Every setting has one row in a table (config.c): its environment name, type,
 * allowed range or values, a default per profile, and a line of help. The
 * seed's SCYLLA_* names configure the database; MSGSTORE_* the service.
 * Profiles (MSGSTORE_PROFILE): development (default), production, test; a
 * profile only changes defaults, an explicit variable always wins.
 *
 * A bad value is rejected with a message naming the variable, the value and
 * what is allowed, e.g.
 *   SCYLLA_PORT="abc": expected an integer from 1 to 65535
 */
#ifndef MS_CORE_CONFIG_H
#define MS_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum ms_profile {
    MS_PROFILE_DEVELOPMENT = 0,
    MS_PROFILE_PRODUCTION = 1,
    MS_PROFILE_TEST = 2,
} ms_profile;

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

#include "msgstore/backend.h" /* ms_backend_kind */
#include "msgstore/id.h"      /* ms_id_format */

#define MS_CONFIG_STR 256

typedef struct ms_config {
    ms_profile profile;

    /* --- database: the seed's SCYLLA_* settings --- */
    bool scylla_enabled;                       /* false: embedded SQLite */
    char scylla_contact_points[MS_CONFIG_STR]; /* comma-separated hosts or host:port */
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
    char scylla_ssl_ca_certs[MS_CONFIG_STR];
    char scylla_ssl_certfile[MS_CONFIG_STR];
    char scylla_ssl_keyfile[MS_CONFIG_STR];
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
    bool scylla_compression;                /* LZ4 when the server offers it */
    char scylla_replication[MS_CONFIG_STR]; /* "SimpleStrategy:1" or "dc1:3,dc2:3" */

    /* --- service: MSGSTORE_* --- */
    char bind[64];
    int port;
    int workers; /* 0: one per core */
    char sqlite_path[MS_CONFIG_STR];
    ms_id_format id_format; /* channel and user ids of a new store; must match an existing one */
    int worker_id;          /* snowflake worker id, unique per instance */
    uint64_t epoch_ms;      /* snowflake epoch, Unix ms */
    int max_content_chars;
    bool read_coalescing; /* identical reads in flight share one query */
    int64_t max_body_bytes;
    char api_tokens[1024]; /* comma-separated bearer tokens */
    char api_token_file[MS_CONFIG_STR];
    bool auth_probes;       /* /health/live and /health/ready need a token */
    bool auth_metrics;      /* /health and /metrics need a token */
    char ops_tokens[1024];  /* comma-separated tokens for /health and /metrics only */
    int64_t ready_cache_ms; /* /health/ready reuses its last check this long */
    char log_level[16];     /* debug, info, warn, error */
    char log_format[16];    /* json, text */
    int64_t shutdown_timeout_ms;
    int64_t health_interval_ms;
    int64_t ready_threshold_ms;
    int64_t idle_timeout_ms;
    int64_t request_timeout_ms;
    int max_connections;
    int ws_max_queued; /* bytes of answers a WebSocket may leave unread */
    char tls_cert[MS_CONFIG_STR];
    char tls_key[MS_CONFIG_STR];
    char redis_url[MS_CONFIG_STR];           /* empty: single instance, in-process fan-out */
    char redis_tls_ca_file[MS_CONFIG_STR];   /* rediss://: CA (empty: system store) */
    char redis_tls_cert_file[MS_CONFIG_STR]; /* rediss://: client certificate */
    char redis_tls_key_file[MS_CONFIG_STR];  /* rediss://: its key */
    int rt_queue_max;                        /* events queued per real-time subscriber */
    int64_t presence_ttl_ms;                 /* presence heartbeat lifetime */

    /* --- user tokens (JWT), browsers, rate limits --- */
    char jwt_secret[512]; /* HS256 shared secret */
    char jwt_secret_file[MS_CONFIG_STR];
    char jwt_public_key_file[MS_CONFIG_STR]; /* PEM: Ed25519 (EdDSA) or RSA (RS256) */
    char jwt_audience[MS_CONFIG_STR];        /* required aud when set */
    int64_t jwt_leeway_ms;                   /* clock leeway for exp and nbf */
    char cors_origins[1024];                 /* comma-separated origins, or "*" */
    int64_t cors_max_age_ms;
    int rate_user_rps;    /* requests per second per user token's sub; 0: no limit */
    int rate_user_burst;  /* bucket size; 0: the rate */
    int rate_service_rps; /* per service token */
    int rate_service_burst;
    int rate_table_size; /* buckets kept (least recently used ones are reused) */
    /* --- search index of the ScyllaDB backend (src/search/): PostgreSQL --- */
    char search_pg_url[MS_CONFIG_STR];      /* libpq URL; empty: no index (SQLite has its own) */
    char search_text_config[MS_CONFIG_STR]; /* PostgreSQL text-search configuration ("simple") */
    int search_shards;                      /* change-log partitions drained independently */
    int64_t search_poll_ms;                 /* how often an idle indexer looks for changes */
    int64_t search_log_ttl_ms;              /* change-log entries expire after this */
} ms_config;

/* Looks a variable up; returns NULL when unset. getenv() fits. */
typedef const char *(*ms_config_lookup_fn)(const char *name, void *ctx);

/*
 * Fills *cfg from the variables that lookup returns (NULL: getenv).
 * MSGSTORE_PROFILE is read first and picks the defaults. Returns 0, or
 * MS_ERR_INVALID with a message naming the variable, its value and what is
 * allowed written to err (always NUL-terminated). Stops at the first error.
 */
int ms_config_load(ms_config *cfg, ms_config_lookup_fn lookup, void *ctx, char *err, size_t errlen);

/*
 * Applies one NAME=VALUE override (command-line flags) to a loaded config,
 * with the same validation. Returns 0 or MS_ERR_INVALID (err filled).
 */
int ms_config_set(ms_config *cfg, const char *name, const char *value, char *err, size_t errlen);

/* Prints every setting with its type, default (for cfg's profile) and help. */
void ms_config_print_help(FILE *out, ms_profile profile);

/* Prints the settings as a Markdown table (README's configuration table is generated by it). */
void ms_config_print_markdown(FILE *out);

/* Prints the effective settings, secrets masked. */
void ms_config_print(FILE *out, const ms_config *cfg);

const char *ms_profile_name(ms_profile p);
const char *ms_consistency_name(ms_consistency cl);
ms_backend_kind ms_config_backend(const ms_config *cfg);

#endif
