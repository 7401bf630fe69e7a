/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_health.c - `msgstore health`: is msgstore ready? For scripts and
 * container probes: exit 0 when ready, 1 when not (or unreachable), 2 for
 * bad usage.
 *
 *   msgstore health                 GET /health/ready of the instance configured
 *                                   by MSGSTORE_BIND/MSGSTORE_PORT (TLS when
 *                                   MSGSTORE_TLS_CERT is set)
 *   msgstore health --url=URL       the same against another instance
 *   msgstore health --direct        no server: open the store and ping the database;
 *                                   when ready, also print the store's details
 *                                   (store_health: tables, hosts, breakers)
 *   --timeout=DURATION              give up after this (default 5s)
 */
#include "cli/cli.h"
#include "core/error.h"

#include <ctype.h>
#include <errno.h>
#include <msgstore/store.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    bool tls;
    char host[320];
    char port[8];
    char path[512];
} url_t;

static int parse_url(const char *u, url_t *out)
{
    memset(out, 0, sizeof *out);
    const char *p;
    if (strncmp(u, "http://", 7) == 0) {
        p = u + 7;
    } else if (strncmp(u, "https://", 8) == 0) {
        p = u + 8;
        out->tls = true;
    } else {
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hp[300];
    if (hl == 0 || hl >= sizeof hp)
        return -1;
    memcpy(hp, p, hl);
    hp[hl] = '\0';
    char *colon = hp[0] == '[' ? strstr(hp, "]:") : strrchr(hp, ':');
    if (hp[0] == '[') {
        char *end = strchr(hp, ']');
        if (!end)
            return -1;
        *end = '\0';
        snprintf(out->host, sizeof out->host, "%s", hp + 1);
        colon = end[1] == ':' ? end + 1 : NULL;
    } else if (colon) {
        *colon = '\0';
        snprintf(out->host, sizeof out->host, "%s", hp);
    } else {
        snprintf(out->host, sizeof out->host, "%s", hp);
    }
    snprintf(out->port, sizeof out->port, "%s", colon ? colon + 1 : out->tls ? "443" : "80");
    snprintf(out->path, sizeof out->path, "%s", slash ? slash : "/health/ready");
    return 0;
}

/* The first token of the configuration, to pass probes that need one. */
static void first_token(const ms_config *cfg, char *out, size_t cap)
{
    out[0] = '\0';
    const char *src = cfg->api_tokens;
    char buf[4096] = "";
    if (!src[0] && cfg->api_token_file[0]) {
        FILE *f = fopen(cfg->api_token_file, "r");
        if (f) {
            while (fgets(buf, sizeof buf, f)) {
                char *b = buf;
                while (isspace((unsigned char)*b))
                    b++;
                if (*b && *b != '#') {
                    src = b;
                    break;
                }
            }
            fclose(f);
        }
    }
    size_t n = 0;
    while (isspace((unsigned char)*src))
        src++;
    while (src[n] && src[n] != ',' && !isspace((unsigned char)src[n]) && n + 1 < cap) {
        out[n] = src[n];
        n++;
    }
    out[n] = '\0';
}

static int remaining_ms(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
                   (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

static bool wait_fd(int fd, short ev, const struct timespec *deadline)
{
    struct pollfd p = {fd, ev, 0};
    return poll(&p, 1, remaining_ms(deadline)) > 0;
}

/* Blocking GET with a deadline; returns the status (or -1) and the body in body. */
static int http_get(const url_t *u, const char *token, int64_t timeout_ms, char *body, size_t cap,
                    char *err, size_t errlen)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "%s: %s", u->host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (fd < 0 || (rc != 0 && errno != EINPROGRESS)) {
        snprintf(err, errlen, "connect to %s:%s: %s", u->host, u->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (!wait_fd(fd, POLLOUT, &deadline) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
        snprintf(err, errlen, "connect to %s:%s: %s", u->host, u->port,
                 soerr ? strerror(soerr) : "timed out");
        close(fd);
        return -1;
    }
    SSL_CTX *sctx = NULL;
    SSL *ssl = NULL;
    if (u->tls) {
        /* a local probe of our own instance: the channel is encrypted, the
         * certificate is not checked (it may be self-signed) */
        sctx = SSL_CTX_new(TLS_client_method());
        ssl = sctx ? SSL_new(sctx) : NULL;
        if (!ssl) {
            snprintf(err, errlen, "TLS: cannot create a session");
            goto fail;
        }
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, u->host);
        for (;;) {
            int r = SSL_connect(ssl);
            if (r == 1)
                break;
            int e = SSL_get_error(ssl, r);
            if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
                !wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, &deadline)) {
                snprintf(err, errlen, "TLS handshake with %s:%s failed", u->host, u->port);
                goto fail;
            }
        }
    }
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: msgstore-"
                     "health\r\n%s%s%s\r\n",
                     u->path, u->host, token[0] ? "Authorization: Bearer " : "", token,
                     token[0] ? "\r\n" : "");
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = ssl ? SSL_write(ssl, req + off, n - (int)off)
                        : send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (!wait_fd(fd, POLLOUT, &deadline)) {
            snprintf(err, errlen, "sending the request timed out");
            goto fail;
        }
    }
    char resp[16384];
    size_t got = 0;
    for (;;) {
        ssize_t r = ssl ? SSL_read(ssl, resp + got, (int)(sizeof resp - 1 - got))
                        : recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r > 0) {
            got += (size_t)r;
            if (got == sizeof resp - 1)
                break;
            continue;
        }
        if (r == 0)
            break;
        if (ssl) {
            int e = SSL_get_error(ssl, (int)r);
            if (e == SSL_ERROR_ZERO_RETURN)
                break;
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                break;
        } else if (errno != EAGAIN && errno != EINTR) {
            break;
        }
        if (!wait_fd(fd, POLLIN, &deadline)) {
            snprintf(err, errlen, "no answer within the timeout");
            goto fail;
        }
    }
    resp[got] = '\0';
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(err, errlen, "not an HTTP answer");
        goto fail;
    }
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    if (ssl)
        SSL_free(ssl);
    if (sctx)
        SSL_CTX_free(sctx);
    close(fd);
    return status;
fail:
    if (ssl)
        SSL_free(ssl);
    if (sctx)
        SSL_CTX_free(sctx);
    close(fd);
    return -1;
}

/* The store's details (store_health) under the ready line; informative, the exit code stays. */
static void print_details(store *st)
{
    store_health_result *h = NULL;
    char err[256] = "";
    int rc = store_health_sync(st, &h, err, sizeof err);
    if (rc) {
        printf("details: %s\n", err[0] ? err : ms_err_str(rc));
        return;
    }
    printf("details: %s; schema %d of %d; tables %zu of %zu present\n",
           h->ok      ? "ok"
           : h->error ? h->error
                      : "not ok",
           h->schema_version, h->schema_expected, h->ntables - h->tables_missing, h->ntables);
    if (h->path)
        printf("  sqlite %s, journal %s, %llu bytes\n", h->path, h->journal_mode,
               (unsigned long long)h->size_bytes);
    if (h->keyspace) {
        printf("  keyspace %s:", h->keyspace);
        for (size_t i = 0; i < h->nreplication; i++)
            printf(" %s=%s", h->replication[i].key, h->replication[i].value);
        printf("\n  client breaker %s; %zu host(s) up, %zu down\n", h->breaker, h->hosts_up,
               h->hosts_down);
        for (size_t i = 0; i < h->nhosts; i++)
            printf("  host %s:%d dc=%s rack=%s %s breaker=%s\n", h->hosts[i].address,
                   h->hosts[i].port, h->hosts[i].dc, h->hosts[i].rack, h->hosts[i].state,
                   h->hosts[i].breaker);
    }
    store_free(h);
}

static int direct_check(const ms_config *cfg)
{
    char err[512];
    store *st = NULL;
    store_options opt = {.no_migrate = true};
    int rc = store_open(&cfg->store, &opt, &st, err, sizeof err);
    if (rc) {
        printf("not ready: cannot open the store: %s\n", err[0] ? err : ms_err_str(rc));
        return MS_EXIT_FAIL;
    }
    store_ping_result *res = NULL;
    rc = store_ping_sync(st, &res, err, sizeof err);
    int code = MS_EXIT_OK;
    if (rc) {
        printf("not ready: %s: %s\n", ms_err_name(rc), err[0] ? err : ms_err_str(rc));
        code = MS_EXIT_FAIL;
    } else if (res->latency_us > (uint64_t)cfg->ready_threshold_ms * 1000) {
        printf("not ready: %s answered in %.1f ms, over MSGSTORE_READY_THRESHOLD\n", res->backend,
               (double)res->latency_us / 1000.0);
        code = MS_EXIT_FAIL;
    } else {
        printf("ready: %s answered in %.1f ms (schema version %d)\n", res->backend,
               (double)res->latency_us / 1000.0, res->schema_version);
    }
    store_free(res);
    if (code == MS_EXIT_OK)
        print_details(st);
    store_close(st);
    return code;
}

int cmd_health(int argc, char **argv)
{
    const char *url = NULL, *timeout = "5s";
    bool direct = false;
    char *pass[64];
    int npass = 0;
    if (argc > 64) {
        fprintf(stderr, "msgstore health: too many arguments\n");
        return MS_EXIT_USAGE;
    }
    pass[npass++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--url=", 6) == 0)
            url = argv[i] + 6;
        else if (strncmp(argv[i], "--timeout=", 10) == 0)
            timeout = argv[i] + 10;
        else if (strcmp(argv[i], "--direct") == 0)
            direct = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: msgstore health [--url=URL] [--direct] [--timeout=DURATION] "
                   "[--NAME=VALUE ...]\n\n"
                   "Exit 0 when msgstore is ready, 1 when it is not or cannot be reached, 2 for\n"
                   "bad usage. Without --url it asks GET /health/ready of the instance that\n"
                   "MSGSTORE_BIND and MSGSTORE_PORT describe; --direct opens the store itself\n"
                   "and pings the database (no server needed).\n");
            return MS_EXIT_OK;
        } else
            pass[npass++] = argv[i];
    }
    ms_config cfg;
    char *rest[64];
    int nrest = 0;
    int rc = cli_load_config(&cfg, npass, pass, rest, &nrest);
    if (rc)
        return rc;
    if (nrest) {
        fprintf(stderr, "msgstore health: unexpected argument '%s'\n", rest[0]);
        return MS_EXIT_USAGE;
    }
    char err[512];
    ms_config tcfg;
    if (ms_config_load(&tcfg, NULL, NULL, err, sizeof err) != 0 ||
        ms_config_set(&tcfg, "MSGSTORE_IDLE_TIMEOUT", timeout, err, sizeof err) != 0) {
        fprintf(stderr, "msgstore health: --timeout=%s: expected a duration such as 2s or 500ms\n",
                timeout);
        return MS_EXIT_USAGE;
    }
    int64_t timeout_ms = tcfg.idle_timeout_ms;
    cli_setup_logging(&cfg);
    if (direct)
        return direct_check(&cfg);

    url_t u;
    char built[600];
    if (!url) {
        const char *host = cfg.bind;
        if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
            host = "127.0.0.1";
        else if (strcmp(host, "::") == 0)
            host = "::1";
        bool v6 = strchr(host, ':') != NULL;
        snprintf(built, sizeof built, "%s://%s%s%s:%d/health/ready",
                 cfg.tls_cert[0] ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "", cfg.port);
        url = built;
    }
    if (parse_url(url, &u) != 0) {
        fprintf(stderr, "msgstore health: --url=%s: expected http://host:port[/path]\n", url);
        return MS_EXIT_USAGE;
    }
    char token[600];
    first_token(&cfg, token, sizeof token);
    char body[4096];
    int status = http_get(&u, token, timeout_ms, body, sizeof body, err, sizeof err);
    if (status < 0) {
        printf("not ready: %s\n", err);
        return MS_EXIT_FAIL;
    }
    size_t bl = strlen(body);
    while (bl && (body[bl - 1] == '\n' || body[bl - 1] == '\r'))
        body[--bl] = '\0';
    printf("%s: HTTP %d %s\n", status == 200 ? "ready" : "not ready", status, body);
    return status == 200 ? MS_EXIT_OK : MS_EXIT_FAIL;
}
