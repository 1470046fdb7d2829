/*
 * impair - a user-space network impairment proxy for tests, between clients and a server on
 * loopback (the kernels the tests run on have no netem qdisc).
 *
 *   impair udp|tcp --listen 127.0.0.1:0 --to 127.0.0.1:PORT [--port-file F] [impairments]
 *
 * UDP: every client address gets its own upstream socket (the server sees one source per
 * client). Packets can be lost (--loss P, in bursts of --burst N), delayed (--delay,
 * --jitter), reordered (--reorder P held back by --reorder-gap), duplicated (--duplicate P)
 * and squeezed through a bandwidth cap (--rate, tail drop beyond --queue bytes).
 * TCP (WebSocket): delay and the cap apply to the byte stream, in order.
 *
 * A blackout drops every packet both ways (UDP) or stalls every connection without closing it
 * (TCP: the peers see silence, no FIN): SIGUSR1 starts one (for --blackout, or until
 * SIGUSR2), --blackout-at starts one after a set time. SIGHUP cuts every TCP connection with
 * a reset. The proxy exits by itself after --lifetime (default 120 s), and on SIGTERM or
 * SIGINT, printing what it did. It only listens on and sends to loopback addresses.
 * Decisions come from --seed: the same seed and the same traffic give the same run.
 */
#include "impair.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS  64
#define MAX_QUEUED 65536        /* UDP packets in flight inside the proxy */
#define TCP_WINDOW (256 * 1024) /* bytes held per direction before we stop reading */
#define TCP_CHUNK  16384

static volatile sig_atomic_t sig_stop, sig_black_on, sig_black_off, sig_cut;
static int wake_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGTERM || sig == SIGINT) sig_stop = 1;
    if (sig == SIGUSR1) sig_black_on = 1;
    if (sig == SIGUSR2) sig_black_off = 1;
    if (sig == SIGHUP) sig_cut = 1;
    if (write(wake_pipe[1], "x", 1) < 0) { /* the loop wakes up anyway on its timer */
    }
    errno = saved;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("impair: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- shared state ---- */

struct counters {
    uint64_t in, out, lost, tail_dropped, dup, reordered, blacked_out, bytes;
};

static struct impair_opts opt;
static impair_rng rng;
static struct impair_link links[2];
static struct counters count[2];
static struct sockaddr_storage target;
static unsigned target_len;
static uint64_t blackout_until; /* 0: none; UINT64_MAX: until SIGUSR2 */
static bool black;

static void blackout_start(uint64_t now)
{
    blackout_until = opt.blackout_us ? now + opt.blackout_us : UINT64_MAX;
    if (!black) say("blackout on");
    black = true;
}

static void blackout_end(void)
{
    if (black) say("blackout off");
    black = false;
    blackout_until = 0;
}

static const char *dir_name(int d)
{
    return d == IMPAIR_UP ? "up" : "down";
}

/* ---- UDP ---- */

struct flow {
    struct sockaddr_storage client;
    socklen_t client_len;
    int up_fd; /* connected to the target */
};

struct qpkt {
    uint64_t due, seq;
    int flow, dir;
    size_t len;
    uint8_t data[];
};

static struct flow flows[MAX_FLOWS];
static int nflows;
static struct qpkt *heap[MAX_QUEUED];
static size_t heap_len;
static uint64_t heap_seq;

static bool before(const struct qpkt *a, const struct qpkt *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_push(struct qpkt *p)
{
    size_t i = heap_len++;
    heap[i] = p;
    while (i && before(heap[i], heap[(i - 1) / 2])) {
        struct qpkt *t = heap[i];
        heap[i] = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct qpkt *heap_pop(void)
{
    struct qpkt *top = heap[0];
    heap[0] = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && before(heap[l], heap[m])) m = l;
        if (r < heap_len && before(heap[r], heap[m])) m = r;
        if (m == i) break;
        struct qpkt *t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
    return top;
}

static void enqueue(int flow, int dir, const uint8_t *data, size_t len, uint64_t due)
{
    if (heap_len == MAX_QUEUED) {
        count[dir].tail_dropped++;
        return;
    }
    struct qpkt *p = malloc(sizeof(*p) + len);
    if (!p) return;
    *p = (struct qpkt){.due = due, .seq = heap_seq++, .flow = flow, .dir = dir, .len = len};
    memcpy(p->data, data, len);
    heap_push(p);
}

static void udp_arrived(int flow, int dir, const uint8_t *data, size_t len, uint64_t now)
{
    count[dir].in++;
    count[dir].bytes += len;
    if (black) {
        count[dir].blacked_out++;
        return;
    }
    struct impair_fate f = impair_decide(&opt, &rng, &links[dir], dir, len, now);
    if (f.drop) {
        if (f.tail_drop)
            count[dir].tail_dropped++;
        else
            count[dir].lost++;
        return;
    }
    if (f.reordered) count[dir].reordered++;
    if (f.copies == 2) count[dir].dup++;
    for (unsigned i = 0; i < f.copies; i++)
        enqueue(flow, dir, data, len, f.due_us[i]);
}

static void udp_send(int front, struct qpkt *p)
{
    struct flow *fl = &flows[p->flow];
    ssize_t n;
    if (p->dir == IMPAIR_UP)
        n = send(fl->up_fd, p->data, p->len, 0);
    else
        n = sendto(front, p->data, p->len, 0, (struct sockaddr *)&fl->client, fl->client_len);
    if (n == (ssize_t)p->len) count[p->dir].out++;
}

static int flow_for(const struct sockaddr_storage *src, socklen_t len)
{
    for (int i = 0; i < nflows; i++)
        if (flows[i].client_len == len && !memcmp(&flows[i].client, src, len)) return i;
    if (nflows == MAX_FLOWS) return -1;
    int fd = socket(target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (connect(fd, (struct sockaddr *)&target, target_len) < 0) {
        close(fd);
        return -1;
    }
    flows[nflows] = (struct flow){.client_len = len, .up_fd = fd};
    memcpy(&flows[nflows].client, src, len);
    say("flow %d: a new client", nflows);
    return nflows++;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return false;
}

static void udp_read_front(int front, uint64_t now)
{
    static uint8_t buf[65536];
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage src;
        socklen_t slen = sizeof(src);
        ssize_t n = recvfrom(front, buf, sizeof(buf), 0, (struct sockaddr *)&src, &slen);
        if (n < 0) return;
        if (!is_loopback(&src)) continue;
        int fl = flow_for(&src, slen);
        if (fl >= 0) udp_arrived(fl, IMPAIR_UP, buf, (size_t)n, now);
    }
}

static void udp_read_back(int fl, uint64_t now)
{
    static uint8_t buf[65536];
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(flows[fl].up_fd, buf, sizeof(buf), 0);
        if (n < 0) return;
        udp_arrived(fl, IMPAIR_DOWN, buf, (size_t)n, now);
    }
}

/* ---- TCP ---- */

struct chunk {
    struct chunk *next;
    uint64_t due;
    size_t len, off;
    uint8_t data[];
};

struct half { /* one direction of a connection: read from `from`, write to `to` */
    struct chunk *head, *tail;
    size_t held;
    bool eof;  /* `from` said FIN */
    bool shut; /* we passed the FIN on */
};

struct tconn {
    bool used;
    int fd[2]; /* [IMPAIR_UP] the client side: we read up from it; [IMPAIR_DOWN] the server */
    bool connecting;
    struct half h[2]; /* h[IMPAIR_UP]: client to server */
};

#define MAX_TCONNS 128
static struct tconn tconns[MAX_TCONNS];

static void half_free(struct half *h)
{
    while (h->head) {
        struct chunk *c = h->head;
        h->head = c->next;
        free(c);
    }
    h->tail = NULL;
    h->held = 0;
}

static void tconn_close(struct tconn *t, bool reset)
{
    for (int i = 0; i < 2; i++) {
        if (reset) {
            struct linger lg = {1, 0};
            setsockopt(t->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(t->fd[i]);
        half_free(&t->h[i]);
    }
    t->used = false;
}

static void tcp_accept(int lfd)
{
    for (;;) {
        struct sockaddr_storage src;
        socklen_t slen = sizeof(src);
        int c = accept4(lfd, (struct sockaddr *)&src, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) return;
        struct tconn *t = NULL;
        for (int i = 0; i < MAX_TCONNS && !t; i++)
            if (!tconns[i].used) t = &tconns[i];
        if (!t || !is_loopback(&src)) {
            close(c);
            continue;
        }
        int s = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) {
            close(c);
            continue;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(s, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS) {
            close(c);
            close(s);
            continue;
        }
        *t = (struct tconn){.used = true, .fd = {c, s}, .connecting = true};
        say("connection %d: accepted", (int)(t - tconns));
    }
}

static void tcp_read(struct tconn *t, int dir, uint64_t now)
{
    struct half *h = &t->h[dir];
    while (!h->eof && h->held < TCP_WINDOW) {
        struct chunk *c = malloc(sizeof(*c) + TCP_CHUNK);
        if (!c) return;
        ssize_t n = recv(t->fd[dir], c->data, TCP_CHUNK, 0);
        if (n <= 0) {
            free(c);
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) h->eof = true;
            return;
        }
        count[dir].in++;
        count[dir].bytes += (size_t)n;
        struct impair_fate f = impair_decide(&opt, &rng, &links[dir], dir, (size_t)n, now);
        *c = (struct chunk){.due = f.due_us[0], .len = (size_t)n};
        if (h->tail)
            h->tail->next = c;
        else
            h->head = c;
        h->tail = c;
        h->held += (size_t)n;
    }
}

/* Returns false when the connection broke. */
static bool tcp_write(struct tconn *t, int dir, uint64_t now)
{
    struct half *h = &t->h[dir];
    int to = t->fd[1 - dir];
    while (h->head && h->head->due <= now) {
        struct chunk *c = h->head;
        ssize_t n = send(to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        c->off += (size_t)n;
        h->held -= (size_t)n;
        if (c->off < c->len) return true;
        count[dir].out++;
        h->head = c->next;
        if (!h->head) h->tail = NULL;
        free(c);
    }
    if (!h->head && h->eof && !h->shut) {
        shutdown(to, SHUT_WR);
        h->shut = true;
    }
    return true;
}

static void tcp_cut_all(void)
{
    int n = 0;
    for (int i = 0; i < MAX_TCONNS; i++)
        if (tconns[i].used) {
            tconn_close(&tconns[i], true);
            n++;
        }
    say("cut %d connections", n);
}

/* ---- the loop ---- */

static int listen_on(const char *addr, int type)
{
    struct sockaddr_storage ss;
    unsigned len;
    impair_loopback_addr(addr, &ss, &len);
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int big = 4 << 20;
    if (type == SOCK_DGRAM) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (type == SOCK_STREAM && listen(fd, 128) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static uint64_t next_due(void)
{
    uint64_t d = UINT64_MAX;
    if (opt.mode == IMPAIR_UDP) {
        if (heap_len) d = heap[0]->due;
    } else if (!black) {
        for (int i = 0; i < MAX_TCONNS; i++)
            for (int k = 0; k < 2; k++)
                if (tconns[i].used && tconns[i].h[k].head && tconns[i].h[k].head->due < d)
                    d = tconns[i].h[k].head->due;
    }
    if (black && blackout_until && blackout_until < d) d = blackout_until;
    return d;
}

static void report(void)
{
    for (int d = 0; d < 2; d++) {
        const struct counters *c = &count[d];
        say("%s: in %llu out %llu lost %llu tail-dropped %llu duplicated %llu reordered %llu "
            "blacked-out %llu bytes %llu",
            dir_name(d), (unsigned long long)c->in, (unsigned long long)c->out,
            (unsigned long long)c->lost, (unsigned long long)c->tail_dropped,
            (unsigned long long)c->dup, (unsigned long long)c->reordered,
            (unsigned long long)c->blacked_out, (unsigned long long)c->bytes);
    }
}

static void handle_signals(uint64_t now)
{
    char drain[64];
    while (read(wake_pipe[0], drain, sizeof(drain)) > 0) {
    }
    if (sig_black_on) {
        sig_black_on = 0;
        blackout_start(now);
    }
    if (sig_black_off) {
        sig_black_off = 0;
        blackout_end();
    }
    if (sig_cut) {
        sig_cut = 0;
        if (opt.mode == IMPAIR_TCP) tcp_cut_all();
    }
}

static int build_pollset(struct pollfd *p, int lfd, int *map)
{
    int n = 0;
    p[n++] = (struct pollfd){.fd = wake_pipe[0], .events = POLLIN};
    p[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
    if (opt.mode == IMPAIR_UDP) {
        for (int i = 0; i < nflows; i++) {
            map[n] = i;
            p[n++] = (struct pollfd){.fd = flows[i].up_fd, .events = POLLIN};
        }
        return n;
    }
    for (int i = 0; i < MAX_TCONNS; i++) {
        struct tconn *t = &tconns[i];
        if (!t->used) continue;
        for (int k = 0; k < 2; k++) {
            short ev = 0;
            if (t->connecting && k == IMPAIR_DOWN)
                ev = POLLOUT;
            else if (!t->connecting && !black) {
                if (!t->h[k].eof && t->h[k].held < TCP_WINDOW) ev |= POLLIN;
                if (t->h[1 - k].head && t->h[1 - k].head->due <= now_us()) ev |= POLLOUT;
            }
            map[n] = i * 2 + k;
            p[n++] = (struct pollfd){.fd = ev ? t->fd[k] : -1, .events = ev};
        }
    }
    return n;
}

static void tcp_service(struct pollfd *p, int n, const int *map, uint64_t now)
{
    for (int j = 2; j < n; j++) {
        if (p[j].fd < 0 || !p[j].revents) continue;
        struct tconn *t = &tconns[map[j] / 2];
        int k = map[j] % 2;
        if (!t->used) continue;
        if (t->connecting && k == IMPAIR_DOWN) {
            int e = 0;
            socklen_t el = sizeof(e);
            getsockopt(t->fd[k], SOL_SOCKET, SO_ERROR, &e, &el);
            if (e) {
                tconn_close(t, true);
                continue;
            }
            t->connecting = false;
            continue;
        }
        if (p[j].revents & (POLLIN | POLLHUP | POLLERR)) tcp_read(t, k, now);
    }
    if (black) return;
    for (int i = 0; i < MAX_TCONNS; i++) {
        struct tconn *t = &tconns[i];
        if (!t->used || t->connecting) continue;
        if (!tcp_write(t, IMPAIR_UP, now) || !tcp_write(t, IMPAIR_DOWN, now)) {
            tconn_close(t, true);
            continue;
        }
        if (t->h[0].shut && t->h[1].shut) tconn_close(t, false);
    }
}

static int run(void)
{
    int lfd = listen_on(opt.listen, opt.mode == IMPAIR_UDP ? SOCK_DGRAM : SOCK_STREAM);
    if (lfd < 0) {
        say("cannot listen on %s: %s", opt.listen, strerror(errno));
        return 2;
    }
    unsigned port = bound_port(lfd);
    say("%s 127.0.0.1:%u -> %s, seed %llu", opt.mode == IMPAIR_UDP ? "udp" : "tcp", port, opt.to,
        (unsigned long long)opt.seed);
    if (opt.port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", opt.port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, opt.port_file)) {
            say("cannot write %s", opt.port_file);
            return 2;
        }
    }
    uint64_t start = now_us(), end = start + opt.lifetime_us;
    bool scheduled_blackout = opt.blackout_at_us > 0;
    static struct pollfd p[2 + 2 * MAX_TCONNS + MAX_FLOWS];
    static int map[2 + 2 * MAX_TCONNS + MAX_FLOWS];
    for (;;) {
        uint64_t now = now_us();
        handle_signals(now);
        if (sig_stop || now >= end) {
            say(sig_stop ? "stopped" : "lifetime over");
            break;
        }
        if (scheduled_blackout && now >= start + opt.blackout_at_us) {
            scheduled_blackout = false;
            blackout_start(now);
        }
        if (black && blackout_until != UINT64_MAX && now >= blackout_until) blackout_end();
        if (opt.mode == IMPAIR_UDP)
            while (heap_len && heap[0]->due <= now) {
                struct qpkt *q = heap_pop();
                udp_send(lfd, q);
                free(q);
            }
        uint64_t d = next_due();
        if (end < d) d = end;
        if (scheduled_blackout && start + opt.blackout_at_us < d) d = start + opt.blackout_at_us;
        int timeout = d <= now ? 0 : (int)((d - now + 999) / 1000);
        int n = build_pollset(p, lfd, map);
        if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            say("poll: %s", strerror(errno));
            return 2;
        }
        now = now_us();
        if (opt.mode == IMPAIR_UDP) {
            if (p[1].revents) udp_read_front(lfd, now);
            for (int j = 2; j < n; j++)
                if (p[j].revents) udp_read_back(map[j], now);
        } else {
            if (p[1].revents) tcp_accept(lfd);
            tcp_service(p, n, map, now);
        }
    }
    report();
    return 0;
}

int main(int argc, char **argv)
{
    char err[256];
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs("usage: impair udp|tcp --listen 127.0.0.1:0 --to 127.0.0.1:PORT [--port-file F]\n"
              "  [--loss P] [--burst N] [--delay D] [--jitter D] [--reorder P] [--reorder-gap D]\n"
              "  [--duplicate P] [--rate R] [--queue BYTES] [--blackout D] [--blackout-at D]\n"
              "  [--direction both|up|down] [--seed N] [--lifetime D]\n"
              "P: 5% or 0.05; D: 250ms, 2s; R: 800kbit, 2mbit.\n"
              "SIGUSR1 starts a blackout, SIGUSR2 ends it, SIGHUP resets TCP connections.\n",
              stdout);
        return 0;
    }
    if (impair_parse(&opt, argc - 1, argv + 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "impair: %s (see --help)\n", err);
        return 2;
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    rng.s = opt.seed;
    impair_loopback_addr(opt.to, &target, &target_len);
    if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0) return 2;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = run();
    while (heap_len)
        free(heap_pop());
    for (int i = 0; i < MAX_TCONNS; i++)
        if (tconns[i].used) tconn_close(&tconns[i], false);
    for (int i = 0; i < nflows; i++)
        close(flows[i].up_fd);
    return rc;
}
