/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rt_bench - real-time delivery: latency from POST to delivery and memory per
 * idle subscriber, against a `msgstore serve` it starts itself.
 *
 *   rt_bench --binary PATH [--subs 1,10000] [--messages 50] [--interval-ms 100]
 *            [--workers 2] [--timeout 300]
 *
 * For each subscriber count N: opens N WebSocket connections (one epoll
 * thread, handshakes in batches), subscribes all of them to one fresh
 * channel, lets them sit idle and reads the server's RSS (VmRSS of its pid)
 * before and after: (after - before) / N is the memory per idle subscriber.
 * Then POSTs `messages` messages to the channel, one every interval-ms, on a
 * keep-alive HTTP connection, and records for every (subscriber, message)
 * the time from just before the POST was written to the moment the event
 * frame was read (CLOCK_MONOTONIC, same host). Prints p50/p99/max and the
 * number of deliveries missing (must be 0).
 *
 * Bounded: the whole run stops after --timeout seconds (SIGALRM). RLIMIT_NOFILE
 * is raised to its hard limit (the server inherits it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "rt-bench-token-0123456789abcdef"

typedef struct conn {
    int fd;
    int state; /* 0 connecting/handshake, 1 open (waiting subscribed), 2 subscribed */
    char *buf;
    size_t len, cap;
    int idx;
} conn;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static pid_t server_pid;
static char state_dir[64];

/* Never leave the server or its files behind, whatever the exit. */
static void cleanup(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        int st;
        waitpid(server_pid, &st, 0);
        server_pid = 0;
    }
    if (state_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", state_dir);
        if (system(cmd) != 0) {
        }
        state_dir[0] = '\0';
    }
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rt_bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "rt_bench: timeout, stopping\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    if (server_pid > 0)
        kill(server_pid, SIGKILL);
    _exit(2);
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* CPU time (user + system) a process used so far, in µs. */
static int64_t cpu_us(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st) * 1000000 / sysconf(_SC_CLK_TCK);
}

/* A port nothing listens on now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("no free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

static int tcp_connect(int port, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            die("write: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* One blocking HTTP request; returns the status, body in out (NUL-terminated). */
static int http_req(int fd, const char *method, const char *path, const char *body, char *out,
                    size_t outlen)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, body ? strlen(body) : 0, body ? body : "");
    write_all(fd, req, (size_t)n);
    size_t len = 0;
    char *hdr_end = NULL;
    long clen = -1;
    for (;;) {
        ssize_t r = read(fd, out + len, outlen - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        out[len] = '\0';
        if (!hdr_end && (hdr_end = strstr(out, "\r\n\r\n"))) {
            const char *cl = strcasestr(out, "content-length:");
            clen = cl ? strtol(cl + 15, NULL, 10) : 0;
        }
        if (hdr_end && (long)(len - (size_t)(hdr_end + 4 - out)) >= clen)
            break;
        if (len + 1 >= outlen)
            return -1;
    }
    int status = atoi(out + 9);
    memmove(out, hdr_end + 4, len - (size_t)(hdr_end + 4 - out) + 1);
    return status;
}

static bool server_live(int port)
{
    int fd = tcp_connect(port, false);
    if (fd < 0)
        return false;
    char buf[4096];
    int st = http_req(fd, "GET", "/health/live", NULL, buf, sizeof buf);
    close(fd);
    return st == 200;
}

static void start_server(const char *binary, int port, int workers, const char *dir)
{
    server_pid = fork();
    if (server_pid < 0)
        die("fork: %s", strerror(errno));
    if (server_pid == 0) {
        char p[16], w[16], db[512];
        snprintf(p, sizeof p, "%d", port);
        snprintf(w, sizeof w, "%d", workers);
        snprintf(db, sizeof db, "%s/bench.db", dir);
        setenv("MSGSTORE_PORT", p, 1);
        setenv("MSGSTORE_BIND", "127.0.0.1", 1);
        setenv("MSGSTORE_WORKERS", w, 1);
        setenv("MSGSTORE_SQLITE_PATH", db, 1);
        setenv("MSGSTORE_API_TOKENS", TOKEN, 1);
        setenv("MSGSTORE_LOG_LEVEL", "warn", 1);
        setenv("MSGSTORE_MAX_CONNECTIONS", "60000", 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execl(binary, binary, "serve", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {
        if (server_live(port))
            return;
        int st;
        if (waitpid(server_pid, &st, WNOHANG) == server_pid)
            die("the server exited at start (status %d)", st);
        usleep(25000);
    }
    die("the server did not answer /health/live");
}

static void buf_reserve(conn *c, size_t more)
{
    if (c->len + more <= c->cap)
        return;
    size_t cap = c->cap ? c->cap : 1024;
    while (cap < c->len + more)
        cap *= 2;
    c->buf = realloc(c->buf, cap);
    if (!c->buf)
        die("out of memory");
    c->cap = cap;
}

static void ws_send_text(int fd, const char *text)
{
    size_t n = strlen(text);
    unsigned char head[8];
    size_t hl = 0;
    head[hl++] = 0x81;
    if (n < 126) {
        head[hl++] = (unsigned char)(0x80 | n);
    } else {
        head[hl++] = 0x80 | 126;
        head[hl++] = (unsigned char)(n >> 8);
        head[hl++] = (unsigned char)n;
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    char frame[1024];
    if (n + hl + 4 > sizeof frame)
        die("frame too long");
    memcpy(frame, head, hl);
    memcpy(frame + hl, mask, 4);
    for (size_t i = 0; i < n; i++)
        frame[hl + 4 + i] = (char)(text[i] ^ mask[i % 4]);
    write_all(fd, frame, hl + 4 + n);
}

typedef struct run {
    conn *conns;
    int n;
    int epfd;
    int port;
    uint64_t channel;
    int messages;
    int64_t *t0;    /* per message, ns; 0 until posted */
    int64_t *tpost; /* per message: time to the POST's answer, ns */
    int64_t *lat;   /* per delivery, ns */
    size_t nlat;
    int subscribed;
    int opened;
} run;

/* Parses complete frames in c's buffer; handles handshake replies. */
static void on_data(run *R, conn *c)
{
    for (;;) {
        if (c->state == 0) {
            char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end)
                return;
            if (c->len < 12 || memcmp(c->buf + 9, "101", 3) != 0)
                die("websocket handshake refused: %.*s", (int)(c->len < 200 ? c->len : 200),
                    c->buf);
            size_t used = (size_t)(end + 4 - c->buf);
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            c->state = 1;
            R->opened++;
            char sub[128];
            snprintf(sub, sizeof sub, "{\"op\":\"subscribe\",\"channels\":[\"%" PRIu64 "\"]}",
                     R->channel);
            ws_send_text(c->fd, sub);
            continue;
        }
        if (c->len < 2)
            return;
        unsigned char *p = (unsigned char *)c->buf;
        size_t plen = p[1] & 0x7f, hl = 2;
        if (plen == 126) {
            if (c->len < 4)
                return;
            plen = (size_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (plen == 127) {
            if (c->len < 10)
                return;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | p[2 + i];
            hl = 10;
        }
        if (c->len < hl + plen)
            return;
        int64_t t = now_ns();
        const char *payload = c->buf + hl;
        int op = p[0] & 0x0f;
        if (op == 1) {
            if (c->state == 1 && memmem(payload, plen, "\"subscribed\"", 12)) {
                c->state = 2;
                R->subscribed++;
            } else if (memmem(payload, plen, "\"message.created\"", 17)) {
                const char *k = memmem(payload, plen, "rtb#", 4);
                if (k) {
                    int seq = atoi(k + 4);
                    if (seq >= 0 && seq < R->messages && R->t0[seq])
                        R->lat[R->nlat++] = t - R->t0[seq];
                }
            }
        } else if (op == 8) {
            die("a subscriber was closed by the server");
        }
        memmove(c->buf, c->buf + hl + plen, c->len - hl - plen);
        c->len -= hl + plen;
    }
}

static void pump(run *R, int timeout_ms)
{
    struct epoll_event evs[256];
    int k = epoll_wait(R->epfd, evs, 256, timeout_ms);
    for (int i = 0; i < k; i++) {
        conn *c = &R->conns[evs[i].data.u32];
        if (evs[i].events & EPOLLOUT) {
            /* connected: send the handshake */
            char req[512];
            int n =
                snprintf(req, sizeof req,
                         "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer " TOKEN "\r\n\r\n");
            write_all(c->fd, req, (size_t)n);
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)c->idx};
            epoll_ctl(R->epfd, EPOLL_CTL_MOD, c->fd, &ev);
            continue;
        }
        for (;;) {
            buf_reserve(c, 16384);
            ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
            if (r > 0) {
                c->len += (size_t)r;
                continue;
            }
            if (r == 0)
                die("connection %d closed by the server", c->idx);
            if (errno == EAGAIN)
                break;
            if (errno != EINTR)
                die("read: %s", strerror(errno));
        }
        on_data(R, c);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void bench_one(const char *binary, int port, int nsubs, int messages, int interval_ms,
                      uint64_t channel)
{
    run R = {0};
    R.n = nsubs;
    R.port = port;
    R.channel = channel;
    R.messages = messages;
    R.conns = calloc((size_t)nsubs, sizeof *R.conns);
    R.t0 = calloc((size_t)messages, sizeof *R.t0);
    R.tpost = calloc((size_t)messages, sizeof *R.tpost);
    R.lat = calloc((size_t)nsubs * (size_t)messages + 1, sizeof *R.lat);
    R.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!R.conns || !R.t0 || !R.lat || R.epfd < 0)
        die("out of memory");
    (void)binary;

    sleep(1);
    long rss0 = rss_kib(server_pid);
    int64_t tc = now_ns();
    /* Connect in batches to stay under the listen backlog. */
    for (int i = 0; i < nsubs;) {
        int batch = 0;
        for (; i < nsubs && batch < 500; i++, batch++) {
            conn *c = &R.conns[i];
            c->idx = i;
            c->fd = tcp_connect(port, true);
            if (c->fd < 0)
                die("connect %d: %s", i, strerror(errno));
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
            epoll_ctl(R.epfd, EPOLL_CTL_ADD, c->fd, &ev);
        }
        while (R.subscribed < i)
            pump(&R, 100);
    }
    double connect_s = (double)(now_ns() - tc) / 1e9;
    /* Idle: let the server settle, then read its memory. */
    for (int i = 0; i < 10; i++)
        pump(&R, 100);
    long rss1 = rss_kib(server_pid);

    int pfd = tcp_connect(port, false);
    if (pfd < 0)
        die("connect (POST): %s", strerror(errno));
    char path[96], body[256], resp[65536];
    int64_t srv_cpu0 = cpu_us(server_pid), own_cpu0 = cpu_us(getpid());
    snprintf(path, sizeof path, "/v1/channels/%" PRIu64 "/messages", channel);
    for (int m = 0; m < messages; m++) {
        snprintf(body, sizeof body, "{\"sender_id\":\"42\",\"content\":\"rtb#%d\"}", m);
        R.t0[m] = now_ns();
        int st = http_req(pfd, "POST", path, body, resp, sizeof resp);
        if (st != 201)
            die("POST answered %d: %.200s", st, resp);
        R.tpost[m] = now_ns() - R.t0[m];
        int64_t next = R.t0[m] + (int64_t)interval_ms * 1000000;
        while (now_ns() < next)
            pump(&R, (int)((next - now_ns()) / 1000000) + 1);
    }
    /* Wait for the stragglers (at most 5 s). */
    size_t want = (size_t)nsubs * (size_t)messages;
    int64_t deadline = now_ns() + 5000000000LL;
    while (R.nlat < want && now_ns() < deadline)
        pump(&R, 50);
    close(pfd);
    double srv_cpu = (double)(cpu_us(server_pid) - srv_cpu0),
           own_cpu = (double)(cpu_us(getpid()) - own_cpu0);
    double per = R.nlat ? 1.0 / (double)R.nlat : 0;

    qsort(R.lat, R.nlat, sizeof *R.lat, cmp_i64);
    qsort(R.tpost, (size_t)messages, sizeof *R.tpost, cmp_i64);
    double post50 = (double)R.tpost[messages / 2] / 1e6;
    double post99 = (double)R.tpost[(size_t)((double)messages * 0.99)] / 1e6;
    double p50 = R.nlat ? (double)R.lat[R.nlat / 2] / 1e6 : -1;
    double p99 = R.nlat ? (double)R.lat[(size_t)((double)R.nlat * 0.99)] / 1e6 : -1;
    double mx = R.nlat ? (double)R.lat[R.nlat - 1] / 1e6 : -1;
    printf("| %6d | %4d | %8.2f | %8.2f | %8.2f | %6.2f / %6.2f | %9zu | %7zu | %8.2f | %5.1f / "
           "%5.1f | %7.1f |\n",
           nsubs, messages, p50, p99, mx, post50, post99, R.nlat, want - R.nlat,
           nsubs > 0 ? (double)(rss1 - rss0) / nsubs : 0.0, srv_cpu * per, own_cpu * per,
           connect_s);
    fflush(stdout);
    for (int i = 0; i < nsubs; i++) {
        close(R.conns[i].fd);
        free(R.conns[i].buf);
    }
    close(R.epfd);
    free(R.conns);
    free(R.t0);
    free(R.tpost);
    free(R.lat);
}

int main(int argc, char **argv)
{
    const char *binary = NULL;
    char subs_list[256] = "1,10000";
    int messages = 50, interval_ms = 100, workers = 2, timeout = 300;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("%s needs a value", a);
        if (strcmp(a, "--binary") == 0)
            binary = v;
        else if (strcmp(a, "--subs") == 0)
            snprintf(subs_list, sizeof subs_list, "%s", v);
        else if (strcmp(a, "--messages") == 0)
            messages = atoi(v);
        else if (strcmp(a, "--interval-ms") == 0)
            interval_ms = atoi(v);
        else if (strcmp(a, "--workers") == 0)
            workers = atoi(v);
        else if (strcmp(a, "--timeout") == 0)
            timeout = atoi(v);
        else
            die("unknown option %s", a);
        i++;
    }
    if (!binary)
        die("usage: rt_bench --binary PATH [--subs 1,10000] [--messages 50] [--interval-ms 100] "
            "[--workers 2] [--timeout 300]");
    if (messages < 1 || messages > 100000 || interval_ms < 0 || workers < 1)
        die("bad --messages, --interval-ms or --workers");
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)timeout);

    char dir[] = "/tmp/rt_bench.XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp: %s", strerror(errno));
    snprintf(state_dir, sizeof state_dir, "%s", dir);
    atexit(cleanup);
    int port = free_port();
    start_server(binary, port, workers, dir);
    printf("rt_bench: msgstore serve pid %d, %d workers, RLIMIT_NOFILE %llu\n\n", (int)server_pid,
           workers, (unsigned long long)rl.rlim_cur);
    printf("|   subs | msgs | p50 (ms) | p99 (ms) | max (ms) | POST p50 / p99 (ms) | delivered |"
           " missing | KiB/sub | CPU µs/delivery server / client | conn (s) |\n");
    printf("|-------:|-----:|---------:|---------:|---------:|--------------------:|----------:|"
           "--------:|--------:|-------------:|---------:|\n");
    uint64_t channel = 1000;
    for (char *tok = strtok(subs_list, ","); tok; tok = strtok(NULL, ","))
        bench_one(binary, port, atoi(tok), messages, interval_ms, channel++);
    cleanup();
    return 0;
}
