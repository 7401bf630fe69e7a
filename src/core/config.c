/* SPDX-License-Identifier: Apache-2.0 */
#include "core/config.h"
#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_BOOL,
    T_INT,      /* int, range min..max */
    T_U64,      /* uint64_t, range min..max */
    T_DURATION, /* int64_t ms; "5" and "1.5" are seconds, or "250ms", "5s", "2m", "1h" */
    T_STR,      /* char[size]; choices (|-separated) restrict it when set */
    T_CL,       /* ms_consistency */
    T_PROFILE,  /* ms_profile */
    T_IDFMT,    /* ms_id_format */
} opt_type;

typedef struct {
    const char *name;
    opt_type type;
    size_t off;
    size_t size;
    int64_t min, max;
    const char *choices;
    const char *def[3]; /* development, production, test; NULL: same as development */
    bool secret;
    const char *help;
} opt;

#define F(field) offsetof(ms_config, field), sizeof(((ms_config *)0)->field)
#define D(dev)                                                                                     \
    {                                                                                              \
        dev, NULL, NULL                                                                            \
    }
#define D3(dev, prod, test)                                                                        \
    {                                                                                              \
        dev, prod, test                                                                            \
    }
#define CL_CHOICES                                                                                 \
    "ANY|ONE|TWO|THREE|QUORUM|ALL|LOCAL_QUORUM|EACH_QUORUM|SERIAL|LOCAL_SERIAL|LOCAL_ONE"

static const opt opts[] = {
    {"MSGSTORE_PROFILE", T_PROFILE, F(profile), 0, 0, "development|production|test",
     D("development"), false, "profile that picks the defaults below"},

    {"SCYLLA_ENABLED", T_BOOL, F(store.scylla_enabled), 0, 0, NULL, D("false"), false,
     "store messages in ScyllaDB/Cassandra instead of the embedded SQLite file"},
    {"SCYLLA_CONTACT_POINTS", T_STR, F(store.scylla_contact_points), 1, 0, NULL, D("localhost"),
     false, "comma-separated hosts (host or host:port) used to discover the cluster"},
    {"SCYLLA_PORT", T_INT, F(store.scylla_port), 1, 65535, NULL, D("9042"), false,
     "CQL native protocol port"},
    {"SCYLLA_KEYSPACE", T_STR, F(store.scylla_keyspace), 1, 48, NULL,
     D3("msgstore", "msgstore", "msgstore_test"), false, "keyspace holding msgstore's tables"},
    {"SCYLLA_USERNAME", T_STR, F(store.scylla_username), 0, 0, NULL, D(""), false,
     "user for PasswordAuthenticator (empty: no authentication)"},
    {"SCYLLA_PASSWORD", T_STR, F(store.scylla_password), 0, 0, NULL, D(""), true,
     "password for SCYLLA_USERNAME"},
    {"SCYLLA_LOCAL_DATACENTER", T_STR, F(store.scylla_local_datacenter), 1, 0, NULL,
     D("datacenter1"), false, "datacenter whose nodes are preferred"},
    {"SCYLLA_PROTOCOL_VERSION", T_INT, F(store.scylla_protocol_version), 4, 4, NULL, D("4"), false,
     "CQL native protocol version (ScyllaDB speaks v4)"},
    {"SCYLLA_CONNECT_TIMEOUT", T_DURATION, F(store.scylla_connect_timeout_ms), 1, 600000, NULL,
     D3("5s", "5s", "2s"), false, "timeout of each connection attempt"},
    {"SCYLLA_REQUEST_TIMEOUT", T_DURATION, F(store.scylla_request_timeout_ms), 1, 600000, NULL,
     D3("10s", "10s", "5s"), false, "timeout of each request"},
    {"SCYLLA_DEFAULT_CONSISTENCY", T_CL, F(store.scylla_default_consistency), 0, 0, CL_CHOICES,
     D("LOCAL_QUORUM"), false, "consistency of statements that are neither reads nor writes"},
    {"SCYLLA_READ_CONSISTENCY", T_CL, F(store.scylla_read_consistency), 0, 0, CL_CHOICES,
     D("LOCAL_QUORUM"), false,
     "consistency of reads; LOCAL_QUORUM with LOCAL_QUORUM writes reads your own writes "
     "(the seed's LOCAL_ONE does not at RF 3)"},
    {"SCYLLA_WRITE_CONSISTENCY", T_CL, F(store.scylla_write_consistency), 0, 0, CL_CHOICES,
     D("LOCAL_QUORUM"), false, "consistency of writes"},
    {"SCYLLA_SERIAL_CONSISTENCY", T_CL, F(store.scylla_serial_consistency), 0, 0,
     "SERIAL|LOCAL_SERIAL", D("LOCAL_SERIAL"), false,
     "serial consistency of lightweight transactions"},
    {"SCYLLA_SSL_ENABLED", T_BOOL, F(store.scylla_ssl_enabled), 0, 0, NULL, D("false"), false,
     "connect to the cluster over TLS"},
    {"SCYLLA_SSL_CA_CERTS", T_STR, F(store.scylla_ssl_ca_certs), 0, 0, NULL, D(""), false,
     "PEM file of CAs that sign the nodes' certificates (empty: system CAs)"},
    {"SCYLLA_SSL_CERTFILE", T_STR, F(store.scylla_ssl_certfile), 0, 0, NULL, D(""), false,
     "client certificate (PEM) for mutual TLS"},
    {"SCYLLA_SSL_KEYFILE", T_STR, F(store.scylla_ssl_keyfile), 0, 0, NULL, D(""), false,
     "client private key (PEM) for mutual TLS"},
    {"SCYLLA_SSL_VERIFY_HOSTNAME", T_BOOL, F(store.scylla_ssl_verify_hostname), 0, 0, NULL,
     D("true"), false, "check that a node's certificate names the address connected to"},
    {"SCYLLA_POOL_SIZE", T_INT, F(store.scylla_pool_size), 1, 64, NULL, D("1"), false,
     "connections per host (per shard on ScyllaDB) and per worker thread"},
    {"SCYLLA_MAX_IN_FLIGHT", T_INT, F(store.scylla_max_in_flight), 1, 1000000, NULL, D("4096"),
     false,
     "store operations in flight at once on the ScyllaDB backend; past it, 503 with Retry-After"},
    {"SCYLLA_PREPARED_CACHE_SIZE", T_INT, F(store.scylla_prepared_cache_size), 1, 1000000, NULL,
     D("1000"), false, "prepared statements kept (LRU)"},
    {"SCYLLA_RETRY_MAX_ATTEMPTS", T_INT, F(store.scylla_retry_max_attempts), 1, 100, NULL, D("3"),
     false, "tries of an idempotent statement, the first included"},
    {"SCYLLA_RETRY_BASE_DELAY", T_DURATION, F(store.scylla_retry_base_delay_ms), 0, 60000, NULL,
     D("100ms"), false, "backoff before the first retry (exponential, full jitter)"},
    {"SCYLLA_RETRY_MAX_DELAY", T_DURATION, F(store.scylla_retry_max_delay_ms), 0, 600000, NULL,
     D("2s"), false, "cap of the retry backoff"},
    {"SCYLLA_BREAKER_FAILURE_THRESHOLD", T_INT, F(store.scylla_breaker_failure_threshold), 1,
     1000000, NULL, D("5"), false, "consecutive failures that open the circuit breaker"},
    {"SCYLLA_BREAKER_RESET_TIMEOUT", T_DURATION, F(store.scylla_breaker_reset_timeout_ms), 1,
     3600000, NULL, D3("30s", "30s", "1s"), false, "time the breaker stays open before one probe"},
    {"SCYLLA_SPECULATIVE_DELAY", T_DURATION, F(store.scylla_speculative_delay_ms), 0, 600000, NULL,
     D("200ms"), false,
     "idempotent reads still unanswered after this go to a second node too (0: never); far above "
     "a healthy read, far below SCYLLA_REQUEST_TIMEOUT (docs/cql-client.md)"},
    {"SCYLLA_SPECULATIVE_MAX", T_INT, F(store.scylla_speculative_max), 1, 3, NULL, D("1"), false,
     "extra executions of one read at most"},
    {"SCYLLA_RECONNECT_POLICY", T_STR, F(store.scylla_reconnect_policy), 0, 0,
     "exponential|constant", D("exponential"), false,
     "delays between reconnection attempts to a node: exponential (doubling from the base delay "
     "to the max, equal jitter) or constant (the base delay); the seed's is constant, 1s, 10 "
     "attempts"},
    {"SCYLLA_RECONNECT_BASE_DELAY", T_DURATION, F(store.scylla_reconnect_base_delay_ms), 0, 3600000,
     NULL, D("500ms"), false, "first reconnection delay (constant: every delay)"},
    {"SCYLLA_RECONNECT_MAX_DELAY", T_DURATION, F(store.scylla_reconnect_max_delay_ms), 0, 3600000,
     NULL, D("30s"), false, "cap of the exponential reconnection delay"},
    {"SCYLLA_RECONNECT_MAX_ATTEMPTS", T_INT, F(store.scylla_reconnect_max_attempts), 0, 1000000,
     NULL, D("0"), false,
     "reconnection attempts before a node is left until it is announced up again (0: no limit)"},
    {"SCYLLA_ALLOW_REMOTE_DC", T_BOOL, F(store.scylla_allow_remote_dc), 0, 0, NULL, D("false"),
     false, "send requests to other datacenters when no local node is up"},
    {"SCYLLA_COMPRESSION", T_BOOL, F(store.scylla_compression), 0, 0, NULL, D("true"), false,
     "LZ4 frame compression when the server offers it"},
    {"SCYLLA_REPLICATION", T_STR, F(store.scylla_replication), 1, 0, NULL,
     D3("SimpleStrategy:1", "datacenter1:3", "SimpleStrategy:1"), false,
     "keyspace replication for msgstore migrate: SimpleStrategy:RF, or DC:RF,DC:RF for "
     "NetworkTopologyStrategy"},

    {"MSGSTORE_BIND", T_STR, F(bind), 1, 0, NULL, D("127.0.0.1"), false,
     "address the API listens on"},
    {"MSGSTORE_PORT", T_INT, F(port), 0, 65535, NULL, D("8080"), false,
     "port the API listens on (0: any free port)"},
    {"MSGSTORE_WORKERS", T_INT, F(workers), 0, 256, NULL, D("0"), false,
     "worker threads, each with its own event loop (0: one per core)"},
    {"MSGSTORE_SQLITE_PATH", T_STR, F(store.sqlite_path), 1, 0, NULL, D("msgstore.db"), false,
     "file of the embedded SQLite store, created and migrated on first start"},
    {"MSGSTORE_ID_FORMAT", T_IDFMT, F(store.id_format), 0, 0, "uuid|int64", D("uuid"), false,
     "channel and user ids: uuid or int64; chosen when the store is created and recorded with "
     "its schema; a store with the other format (a store made before this setting: int64) is "
     "refused"},
    {"MSGSTORE_WORKER_ID", T_INT, F(store.worker_id), 0, 1023, NULL, D("0"), false,
     "snowflake worker id; give every instance writing to one cluster its own"},
    {"MSGSTORE_READ_COALESCING", T_BOOL, F(read_coalescing), 0, 0, NULL, D("true"), false,
     "identical reads in flight (a hot channel's latest page) share one store query; false: "
     "every request queries (benchmarks compare)"},
    {"MSGSTORE_EPOCH_MS", T_U64, F(store.epoch_ms), 0, INT64_MAX, NULL, D("1420070400000"), false,
     "snowflake epoch in Unix milliseconds (default 2015-01-01, as Discord); never change it on "
     "existing data"},
    {"MSGSTORE_MAX_CONTENT_CHARS", T_INT, F(store.max_content_chars), 1, 1000000, NULL, D("4000"),
     false, "longest message content, in Unicode characters"},
    {"MSGSTORE_MAX_BODY_BYTES", T_INT, F(max_body_bytes), 1024, 64 * 1024 * 1024, NULL, D("65536"),
     false, "largest request body; larger gets 413"},
    {"MSGSTORE_API_TOKENS", T_STR, F(api_tokens), 0, 0, NULL, D(""), true,
     "comma-separated bearer tokens accepted on /v1 (empty and no token file: API open, "
     "development only)"},
    {"MSGSTORE_API_TOKEN_FILE", T_STR, F(api_token_file), 0, 0, NULL, D(""), false,
     "file with one bearer token per line"},
    {"MSGSTORE_AUTH_PROBES", T_BOOL, F(auth_probes), 0, 0, NULL, D("false"), false,
     "require a token on /health/live and /health/ready"},
    {"MSGSTORE_AUTH_METRICS", T_BOOL, F(auth_metrics), 0, 0, NULL, D3("false", "true", "false"),
     false,
     "require a token (an API or an ops token) on /health and /metrics, which show file paths, "
     "hosts, versions and database errors"},
    {"MSGSTORE_OPS_TOKENS", T_STR, F(ops_tokens), 0, 0, NULL, D(""), true,
     "comma-separated bearer tokens accepted on /health and /metrics only (for monitoring), "
     "besides the API tokens"},
    {"MSGSTORE_READY_CACHE", T_DURATION, F(ready_cache_ms), 0, 60000, NULL, D("1s"), false,
     "/health/ready answers from its last database check for this long (0: one check per call)"},
    {"MSGSTORE_LOG_LEVEL", T_STR, F(log_level), 0, 0, "debug|info|warn|error",
     D3("info", "info", "warn"), false, "lowest level logged"},
    {"MSGSTORE_LOG_FORMAT", T_STR, F(log_format), 0, 0, "json|text", D3("text", "json", "text"),
     false, "log lines as JSON or as text"},
    {"MSGSTORE_SHUTDOWN_TIMEOUT", T_DURATION, F(store.shutdown_timeout_ms), 0, 3600000, NULL,
     D("10s"), false, "time in-flight requests get to finish on SIGTERM"},
    {"MSGSTORE_HEALTH_INTERVAL", T_DURATION, F(health_interval_ms), 100, 3600000, NULL, D("30s"),
     false, "period of the background health check"},
    {"MSGSTORE_READY_THRESHOLD", T_DURATION, F(ready_threshold_ms), 1, 600000, NULL, D("100ms"),
     false, "slowest database answer that still counts as ready"},
    {"MSGSTORE_IDLE_TIMEOUT", T_DURATION, F(idle_timeout_ms), 100, 3600000, NULL, D("60s"), false,
     "idle keep-alive connections are closed after this"},
    {"MSGSTORE_REQUEST_TIMEOUT", T_DURATION, F(request_timeout_ms), 100, 3600000, NULL, D("10s"),
     false, "a request (headers and body) must arrive within this"},
    {"MSGSTORE_MAX_CONNECTIONS", T_INT, F(max_connections), 1, 1000000, NULL, D("10000"), false,
     "open client connections per instance"},
    {"MSGSTORE_WS_MAX_QUEUED", T_INT, F(ws_max_queued), 4096, 1073741824, NULL, D("1048576"), false,
     "bytes of answers (pongs, replies) a WebSocket client may leave unread; past it the "
     "server stops reading it and closes it with 1008"},
    {"MSGSTORE_TLS_CERT", T_STR, F(tls_cert), 0, 0, NULL, D(""), false,
     "PEM certificate for serving HTTPS (empty: plain HTTP)"},
    {"MSGSTORE_TLS_KEY", T_STR, F(tls_key), 0, 0, NULL, D(""), false,
     "PEM key for MSGSTORE_TLS_CERT"},
    {"MSGSTORE_REDIS_URL", T_STR, F(redis_url), 0, 0, NULL, D(""), true,
     "redis://[[user]:password@]host[:port][/db] of the Redis that carries events between "
     "instances (empty: one instance); AUTH with user and password, db for the typing and "
     "presence keys; rediss:// for TLS (the certificate verified against "
     "MSGSTORE_REDIS_TLS_CA_FILE and the host name)"},
    {"MSGSTORE_REDIS_TLS_CA_FILE", T_STR, F(redis_tls_ca_file), 0, 0, NULL, D(""), false,
     "PEM CA certificates that sign the Redis server's certificate with rediss:// (empty: the "
     "system store)"},
    {"MSGSTORE_REDIS_TLS_CERT", T_STR, F(redis_tls_cert_file), 0, 0, NULL, D(""), false,
     "PEM client certificate for rediss:// (a Redis with tls-auth-clients; empty: none)"},
    {"MSGSTORE_REDIS_TLS_KEY", T_STR, F(redis_tls_key_file), 0, 0, NULL, D(""), false,
     "PEM key of MSGSTORE_REDIS_TLS_CERT (empty: in the certificate file)"},
    {"MSGSTORE_RT_QUEUE_MAX", T_INT, F(rt_queue_max), 16, 1000000, NULL, D("1024"), false,
     "events queued per real-time subscriber; a subscriber that falls further behind gets a "
     "resync event and is closed"},
    {"MSGSTORE_PRESENCE_TTL", T_DURATION, F(presence_ttl_ms), 1000, 3600000, NULL, D("30s"), false,
     "presence heartbeat lifetime: a user whose heartbeats stop for this long goes offline"},
    {"MSGSTORE_JWT_SECRET", T_STR, F(jwt_secret), 0, 0, NULL, D(""), true,
     "HS256 secret of user tokens (JWTs), at least 32 bytes (empty: no HS256)"},
    {"MSGSTORE_JWT_SECRET_FILE", T_STR, F(jwt_secret_file), 0, 0, NULL, D(""), false,
     "file holding the HS256 secret (trailing newline ignored)"},
    {"MSGSTORE_JWT_PUBLIC_KEY_FILE", T_STR, F(jwt_public_key_file), 0, 0, NULL, D(""), false,
     "PEM public key of user tokens: Ed25519 (alg EdDSA) or RSA (alg RS256)"},
    {"MSGSTORE_JWT_AUDIENCE", T_STR, F(jwt_audience), 0, 0, NULL, D(""), false,
     "aud a user token must carry (empty: aud not checked)"},
    {"MSGSTORE_JWT_LEEWAY", T_DURATION, F(jwt_leeway_ms), 0, 300000, NULL, D("30s"), false,
     "clock leeway allowed on a user token's exp and nbf"},
    {"MSGSTORE_CORS_ORIGINS", T_STR, F(cors_origins), 0, 0, NULL, D(""), false,
     "comma-separated origins (https://app.example) browsers may call the API from, or * "
     "(empty: no CORS)"},
    {"MSGSTORE_CORS_MAX_AGE", T_DURATION, F(cors_max_age_ms), 0, 86400000, NULL, D("10m"), false,
     "how long a browser may cache a preflight answer"},
    {"MSGSTORE_RATE_LIMIT_USER", T_INT, F(rate_user_rps), 0, 1000000, NULL, D("0"), false,
     "requests per second per user (user token's sub); over it: 429 (0: no limit)"},
    {"MSGSTORE_RATE_LIMIT_USER_BURST", T_INT, F(rate_user_burst), 0, 1000000, NULL, D("0"), false,
     "requests a user may make at once before the rate applies (0: the rate)"},
    {"MSGSTORE_RATE_LIMIT_SERVICE", T_INT, F(rate_service_rps), 0, 10000000, NULL, D("0"), false,
     "requests per second per service token; over it: 429 (0: no limit)"},
    {"MSGSTORE_RATE_LIMIT_SERVICE_BURST", T_INT, F(rate_service_burst), 0, 10000000, NULL, D("0"),
     false, "requests a service token may make at once (0: the rate)"},
    {"MSGSTORE_RATE_LIMIT_TABLE", T_INT, F(rate_table_size), 64, 16777216, NULL, D("65536"), false,
     "rate-limit buckets kept in memory (about 48 bytes each); past it the least recently used "
     "bucket is reused"},
    {"MSGSTORE_SEARCH_PG_URL", T_STR, F(store.search_pg_url), 0, 0, NULL, D(""), false,
     "ScyllaDB backend: PostgreSQL (libpq URL) holding the search index, fed from a change log "
     "by an indexer in every instance (empty: no search; SQLite always has its own index)"},
    {"MSGSTORE_SEARCH_TEXT_CONFIG", T_STR, F(search_text_config), 0, 0, NULL, D("simple"), false,
     "PostgreSQL text-search configuration of the index (simple: no stemming, any language); "
     "changing it applies to messages indexed afterwards"},
    {"MSGSTORE_SEARCH_SHARDS", T_INT, F(store.search_shards), 1, 1024, NULL, D("16"), false,
     "change-log partitions; each is drained by one instance at a time (keep it equal on every "
     "instance of a cluster)"},
    {"MSGSTORE_SEARCH_POLL", T_DURATION, F(search_poll_ms), 10, 60000, NULL, D("100ms"), false,
     "how often an idle indexer looks for new changes (the floor of the index lag)"},
    {"MSGSTORE_SEARCH_LOG_TTL", T_DURATION, F(store.search_log_ttl_ms), 3600000, 31536000000, NULL,
     D("336h"), false,
     "change-log entries not indexed within this expire (PostgreSQL down longer: reindex)"},
};

#define NOPTS (sizeof opts / sizeof opts[0])

static const char *const cl_names[] = {"ANY",    "ONE",          "TWO",          "THREE",
                                       "QUORUM", "ALL",          "LOCAL_QUORUM", "EACH_QUORUM",
                                       "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE"};
static const char *const profile_names[] = {"development", "production", "test"};

const char *ms_profile_name(ms_profile p)
{
    return (unsigned)p < 3 ? profile_names[p] : "unknown";
}

const char *ms_consistency_name(ms_consistency cl)
{
    return (unsigned)cl < sizeof cl_names / sizeof cl_names[0] ? cl_names[cl] : "UNKNOWN";
}

ms_backend_kind store_config_backend(const store_config *c)
{
    return c->scylla_enabled ? MS_BACKEND_SCYLLA : MS_BACKEND_SQLITE;
}

ms_backend_kind ms_config_backend(const ms_config *cfg)
{
    return store_config_backend(&cfg->store);
}

static const char *no_variables(const char *name, void *ctx)
{
    (void)name;
    (void)ctx;
    return NULL;
}

void store_config_defaults(store_config *c)
{
    ms_config cfg;
    char err[256];
    if (ms_config_load(&cfg, no_variables, NULL, err, sizeof err) != 0)
        abort(); /* the table's own defaults are valid (tests/unit/test_config.c) */
    *c = cfg.store;
}

static int fail(char *err, size_t errlen, const opt *o, const char *value, const char *fmt, ...)
{
    int n = snprintf(err, errlen, "%s=\"%s\": ", o->name, value);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return MS_ERR_INVALID;
}

/* Case-insensitive match of value against a |-separated list; returns the index or -1. */
static int choice_index(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == vlen && strncasecmp(p, value, len) == 0)
            return idx;
        if (!end)
            break;
        p = end + 1;
    }
    return -1;
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* "1.5" and "2" are seconds; a unit suffix (ms, s, m, h) says otherwise. */
static int parse_duration_ms(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v))
        return -1;
    double scale;
    if (!*end || strcmp(end, "s") == 0)
        scale = 1000.0;
    else if (strcmp(end, "ms") == 0)
        scale = 1.0;
    else if (strcmp(end, "m") == 0)
        scale = 60000.0;
    else if (strcmp(end, "h") == 0)
        scale = 3600000.0;
    else
        return -1;
    double ms = v * scale;
    if (ms > 9.0e15 || ms != ms)
        return -1;
    *out = (int64_t)llround(ms);
    return 0;
}

static int apply(ms_config *cfg, const opt *o, const char *value, char *err, size_t errlen)
{
    void *field = (char *)cfg + o->off;
    switch (o->type) {
    case T_BOOL: {
        static const char *const yes[] = {"1", "true", "yes", "on"};
        static const char *const no[] = {"0", "false", "no", "off"};
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(value, yes[i]) == 0) {
                *(bool *)field = true;
                return 0;
            }
            if (strcasecmp(value, no[i]) == 0) {
                *(bool *)field = false;
                return 0;
            }
        }
        return fail(err, errlen, o, value, "expected true or false (also 1/0, yes/no, on/off)");
    }
    case T_INT:
    case T_U64: {
        int64_t v;
        if (parse_i64(value, &v) != 0 || v < o->min || v > o->max)
            return fail(err, errlen, o, value, "expected an integer from %" PRId64 " to %" PRId64,
                        o->min, o->max);
        if (o->type == T_INT)
            *(int *)field = (int)v;
        else
            *(uint64_t *)field = (uint64_t)v;
        return 0;
    }
    case T_DURATION: {
        int64_t v;
        if (parse_duration_ms(value, &v) != 0 || v < o->min || v > o->max)
            return fail(err, errlen, o, value,
                        "expected a duration from %" PRId64 "ms to %" PRId64
                        "ms (seconds, or with a unit: 250ms, 5s, 2m, 1h)",
                        o->min, o->max);
        *(int64_t *)field = v;
        return 0;
    }
    case T_STR: {
        size_t len = strlen(value);
        if (o->choices && choice_index(o->choices, value) < 0)
            return fail(err, errlen, o, value, "expected one of %s", o->choices);
        if (len >= o->size)
            return fail(err, errlen, o, value, "longer than %zu bytes", o->size - 1);
        if (o->min > 0 && len == 0)
            return fail(err, errlen, o, value, "must not be empty");
        if (o->max > 0 && len > (size_t)o->max)
            return fail(err, errlen, o, value, "longer than %" PRId64 " characters", o->max);
        if (o->choices) {
            /* store the canonical spelling */
            int i = choice_index(o->choices, value);
            const char *p = o->choices;
            while (i-- > 0)
                p = strchr(p, '|') + 1;
            const char *end = strchr(p, '|');
            len = end ? (size_t)(end - p) : strlen(p);
            memcpy(field, p, len);
            ((char *)field)[len] = '\0';
            return 0;
        }
        memcpy(field, value, len + 1);
        return 0;
    }
    case T_CL: {
        int i = choice_index(o->choices, value);
        if (i < 0)
            return fail(err, errlen, o, value, "expected one of %s", o->choices);
        int cl = choice_index(CL_CHOICES, value); /* index in CL_CHOICES is the protocol value */
        *(ms_consistency *)field = (ms_consistency)cl;
        return 0;
    }
    case T_PROFILE: {
        int i = choice_index(o->choices, value);
        if (i < 0)
            return fail(err, errlen, o, value, "expected one of %s", o->choices);
        *(ms_profile *)field = (ms_profile)i;
        return 0;
    }
    case T_IDFMT: {
        ms_id_format f;
        if (ms_id_format_parse(value, &f) != 0)
            return fail(err, errlen, o, value, "expected one of %s", o->choices);
        *(ms_id_format *)field = f;
        return 0;
    }
    }
    return MS_ERR_INVALID;
}

static const char *default_of(const opt *o, ms_profile p)
{
    return o->def[p] ? o->def[p] : o->def[0];
}

static const char *env_lookup(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* Checks that span several settings. */
static int validate(const ms_config *cfg, char *err, size_t errlen)
{
    /* The keyspace is the one identifier that cannot be bound in CQL. */
    for (const char *p = cfg->store.scylla_keyspace; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_') {
            snprintf(err, errlen,
                     "SCYLLA_KEYSPACE=\"%s\": expected letters, digits and underscores only",
                     cfg->store.scylla_keyspace);
            return MS_ERR_INVALID;
        }
    }
    if ((cfg->store.scylla_username[0] != '\0') != (cfg->store.scylla_password[0] != '\0')) {
        snprintf(err, errlen,
                 "SCYLLA_USERNAME and SCYLLA_PASSWORD: set both for password authentication, or "
                 "neither");
        return MS_ERR_INVALID;
    }
    if ((cfg->store.scylla_ssl_certfile[0] != '\0') != (cfg->store.scylla_ssl_keyfile[0] != '\0')) {
        snprintf(err, errlen, "SCYLLA_SSL_CERTFILE and SCYLLA_SSL_KEYFILE: set both, or neither");
        return MS_ERR_INVALID;
    }
    if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
        snprintf(err, errlen, "MSGSTORE_TLS_CERT and MSGSTORE_TLS_KEY: set both, or neither");
        return MS_ERR_INVALID;
    }
    if (cfg->store.scylla_retry_base_delay_ms > cfg->store.scylla_retry_max_delay_ms) {
        snprintf(err, errlen,
                 "SCYLLA_RETRY_BASE_DELAY=%" PRId64
                 "ms is larger than SCYLLA_RETRY_MAX_DELAY=%" PRId64 "ms",
                 cfg->store.scylla_retry_base_delay_ms, cfg->store.scylla_retry_max_delay_ms);
        return MS_ERR_INVALID;
    }
    if (strcmp(cfg->store.scylla_reconnect_policy, "exponential") == 0 &&
        cfg->store.scylla_reconnect_base_delay_ms > cfg->store.scylla_reconnect_max_delay_ms) {
        snprintf(err, errlen,
                 "SCYLLA_RECONNECT_BASE_DELAY=%" PRId64
                 "ms is larger than SCYLLA_RECONNECT_MAX_DELAY=%" PRId64 "ms",
                 cfg->store.scylla_reconnect_base_delay_ms,
                 cfg->store.scylla_reconnect_max_delay_ms);
        return MS_ERR_INVALID;
    }
    if (cfg->store.scylla_speculative_delay_ms > 0 &&
        cfg->store.scylla_speculative_delay_ms >= cfg->store.scylla_request_timeout_ms) {
        snprintf(err, errlen,
                 "SCYLLA_SPECULATIVE_DELAY=%" PRId64
                 "ms is not shorter than SCYLLA_REQUEST_TIMEOUT=%" PRId64
                 "ms: no speculative execution could start",
                 cfg->store.scylla_speculative_delay_ms, cfg->store.scylla_request_timeout_ms);
        return MS_ERR_INVALID;
    }
    return 0;
}

/* Every error of a setting reads the same, whether it came from the environment or a
 * --NAME=VALUE flag: "invalid configuration: NAME=\"value\": what is expected". */
static int prefixed(int rc, char *err, size_t errlen)
{
    static const char pre[] = "invalid configuration: ";
    size_t plen = sizeof pre - 1;
    if (rc == 0 || errlen <= plen)
        return rc;
    size_t n = strnlen(err, errlen - 1);
    if (n > errlen - 1 - plen)
        n = errlen - 1 - plen;
    memmove(err + plen, err, n);
    memcpy(err, pre, plen);
    err[plen + n] = '\0';
    return rc;
}

int ms_config_load(ms_config *cfg, ms_config_lookup_fn lookup, void *ctx, char *err, size_t errlen)
{
    if (!lookup)
        lookup = env_lookup;
    if (errlen)
        err[0] = '\0';
    memset(cfg, 0, sizeof *cfg);

    ms_profile profile = MS_PROFILE_DEVELOPMENT;
    const char *pv = lookup("MSGSTORE_PROFILE", ctx);
    if (pv) {
        int rc = apply(cfg, &opts[0], pv, err, errlen);
        if (rc)
            return prefixed(rc, err, errlen);
        profile = cfg->profile;
    }
    for (size_t i = 0; i < NOPTS; i++) {
        int rc = apply(cfg, &opts[i], default_of(&opts[i], profile), err, errlen);
        if (rc) /* a bad default is a bug in the table */
            return MS_ERR_INTERNAL;
    }
    cfg->profile = profile;
    for (size_t i = 1; i < NOPTS; i++) {
        const char *v = lookup(opts[i].name, ctx);
        if (v) {
            int rc = apply(cfg, &opts[i], v, err, errlen);
            if (rc)
                return prefixed(rc, err, errlen);
        }
    }
    return prefixed(validate(cfg, err, errlen), err, errlen);
}

int ms_config_set(ms_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    for (size_t i = 1; i < NOPTS; i++) {
        if (strcmp(opts[i].name, name) == 0) {
            int rc = apply(cfg, &opts[i], value, err, errlen);
            return prefixed(rc ? rc : validate(cfg, err, errlen), err, errlen);
        }
    }
    snprintf(err, errlen, "%s: unknown setting (msgstore serve --help lists them)", name);
    return prefixed(MS_ERR_INVALID, err, errlen);
}

static const char *type_name(const opt *o)
{
    switch (o->type) {
    case T_BOOL:
        return "bool";
    case T_INT:
    case T_U64:
        return "int";
    case T_DURATION:
        return "duration";
    case T_STR:
        return o->choices ? "enum" : "string";
    case T_CL:
        return "consistency";
    case T_PROFILE:
    case T_IDFMT:
        return "enum";
    }
    return "?";
}

void ms_config_print_help(FILE *out, ms_profile profile)
{
    fprintf(out, "Settings (environment variable, or --NAME=VALUE), defaults of profile %s:\n",
            ms_profile_name(profile));
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        fprintf(out, "  %-34s %-11s default: %s\n", o->name, type_name(o),
                default_of(o, profile)[0] ? default_of(o, profile) : "(empty)");
        fprintf(out, "      %s", o->help);
        if (o->choices)
            fprintf(out, " [%s]", o->choices);
        if (o->type == T_INT || (o->type == T_DURATION))
            fprintf(out, " (%" PRId64 "..%" PRId64 "%s)", o->min, o->max,
                    o->type == T_DURATION ? "ms" : "");
        fputc('\n', out);
    }
}

void ms_config_print_markdown(FILE *out)
{
    fprintf(out, "| variable | default | production | test | meaning |\n");
    fprintf(out, "|---|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        fprintf(out, "| `%s` | `%s` | %s%s%s | %s%s%s | %s", o->name, o->def[0],
                o->def[1] ? "`" : "", o->def[1] ? o->def[1] : "same", o->def[1] ? "`" : "",
                o->def[2] ? "`" : "", o->def[2] ? o->def[2] : "same", o->def[2] ? "`" : "",
                o->help);
        if (o->choices && o->type != T_CL) {
            fputs(" (", out);
            for (const char *c = o->choices; *c; c++) {
                if (c == o->choices)
                    fputc('`', out);
                if (*c == '|')
                    fputs("`, `", out);
                else
                    fputc(*c, out);
            }
            fputs("`)", out);
        }
        if (o->type == T_INT)
            fprintf(out, " (%" PRId64 "..%" PRId64 ")", o->min, o->max);
        if (o->type == T_DURATION)
            fprintf(out, " (duration: `250ms`, `5s`, `2m`; a bare number is seconds)");
        if (o->type == T_CL)
            fprintf(out, " (a consistency level)");
        fprintf(out, " |\n");
    }
}

void ms_config_print(FILE *out, const ms_config *cfg)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        const void *field = (const char *)cfg + o->off;
        fprintf(out, "%s=", o->name);
        switch (o->type) {
        case T_BOOL:
            fputs(*(const bool *)field ? "true" : "false", out);
            break;
        case T_INT:
            fprintf(out, "%d", *(const int *)field);
            break;
        case T_U64:
            fprintf(out, "%" PRIu64, *(const uint64_t *)field);
            break;
        case T_DURATION:
            fprintf(out, "%" PRId64 "ms", *(const int64_t *)field);
            break;
        case T_STR:
            fputs(o->secret && ((const char *)field)[0] ? "********" : (const char *)field, out);
            break;
        case T_CL:
            fputs(ms_consistency_name(*(const ms_consistency *)field), out);
            break;
        case T_PROFILE:
            fputs(ms_profile_name(*(const ms_profile *)field), out);
            break;
        case T_IDFMT:
            fputs(ms_id_format_name(*(const ms_id_format *)field), out);
            break;
        }
        fputc('\n', out);
    }
}
