/* impair_core.c - options, random source and per-packet decisions of the impairment proxy. */
#include "impair.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

uint64_t impair_rng_next(impair_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double impair_rng_unit(impair_rng *r)
{
    return (double)(impair_rng_next(r) >> 11) / 9007199254740992.0; /* 2^53 */
}

static bool chance(impair_rng *r, double p)
{
    return p > 0 && impair_rng_unit(r) < p;
}

/* Serialisation behind the bandwidth cap: when the last byte of len leaves. */
static bool shape(const struct impair_opts *o, struct impair_link *link, size_t len,
                  uint64_t now_us, uint64_t *out_us)
{
    if (!o->rate_bps) {
        *out_us = now_us;
        return true;
    }
    uint64_t start = link->free_at_us > now_us ? link->free_at_us : now_us;
    uint64_t backlog = (start - now_us) * o->rate_bps / 8000000u;
    if (o->mode == IMPAIR_UDP && backlog + len > o->queue_bytes) return false;
    link->free_at_us = start + (uint64_t)len * 8000000u / o->rate_bps;
    *out_us = link->free_at_us;
    return true;
}

static uint64_t delayed(const struct impair_opts *o, impair_rng *rng, uint64_t at)
{
    uint64_t d = o->delay_us;
    if (o->jitter_us) {
        uint64_t span = 2 * o->jitter_us + 1;
        uint64_t j = impair_rng_next(rng) % span;
        d = d + j >= o->jitter_us ? d + j - o->jitter_us : 0;
    }
    return at + d;
}

struct impair_fate impair_decide(const struct impair_opts *o, impair_rng *rng,
                                 struct impair_link *link, enum impair_dir d, size_t len,
                                 uint64_t now_us)
{
    struct impair_fate f = {.copies = 1};
    if (!o->dir_on[d]) {
        f.due_us[0] = now_us;
        return f;
    }
    if (o->mode == IMPAIR_UDP) {
        if (link->burst_left) {
            link->burst_left--;
            f.drop = true;
            return f;
        }
        if (chance(rng, o->loss)) {
            link->burst_left = o->burst > 1 ? o->burst - 1 : 0;
            f.drop = true;
            return f;
        }
    }
    uint64_t sent;
    if (!shape(o, link, len, now_us, &sent)) {
        f.drop = f.tail_drop = true;
        return f;
    }
    f.due_us[0] = delayed(o, rng, sent);
    if (o->mode == IMPAIR_TCP) {
        /* A byte stream keeps its order whatever the jitter. */
        if (f.due_us[0] < link->last_due_us) f.due_us[0] = link->last_due_us;
        link->last_due_us = f.due_us[0];
        return f;
    }
    if (chance(rng, o->reorder)) {
        f.reordered = true;
        f.due_us[0] += o->reorder_gap_us;
    }
    if (chance(rng, o->duplicate)) {
        f.copies = 2;
        f.due_us[1] = delayed(o, rng, sent);
    }
    return f;
}

bool impair_loopback_addr(const char *hostport, struct sockaddr_storage *ss, unsigned *sslen)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport) return false;
    size_t hl = (size_t)(colon - hostport);
    if (hostport[0] == '[') {
        if (hl < 2 || hostport[hl - 1] != ']') return false;
        hostport++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) return false;
    memcpy(host, hostport, hl);
    host[hl] = 0;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port > 65535) return false;
    if (!strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) return false;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*a4);
        return true;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) return false;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*a6);
        return true;
    }
    return false;
}

/* "250ms", "2s", "1.5s", "40us" or a bare number of milliseconds. */
static bool parse_duration(const char *s, uint64_t *us)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return false;
    double scale = 1000;
    if (!strcmp(end, "s"))
        scale = 1e6;
    else if (!strcmp(end, "us"))
        scale = 1;
    else if (*end && strcmp(end, "ms"))
        return false;
    *us = (uint64_t)(v * scale + 0.5);
    return true;
}

/* "5%" or "0.05". */
static bool parse_prob(const char *s, double *p)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s) return false;
    if (!strcmp(end, "%"))
        v /= 100;
    else if (*end)
        return false;
    if (v < 0 || v > 1) return false;
    *p = v;
    return true;
}

/* "800kbit", "2mbit", "100000" (bits/s). */
static bool parse_rate(const char *s, uint64_t *bps)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return false;
    double scale = 1;
    if (!strcmp(end, "kbit"))
        scale = 1e3;
    else if (!strcmp(end, "mbit"))
        scale = 1e6;
    else if (*end && strcmp(end, "bit"))
        return false;
    *bps = (uint64_t)(v * scale);
    return *bps > 0;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return false;
    *v = x;
    return true;
}

int impair_parse(struct impair_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    o->burst = 1;
    o->reorder_gap_us = 20000;
    o->queue_bytes = 64 * 1024;
    o->lifetime_us = 120 * 1000000ull;
    o->dir_on[IMPAIR_UP] = o->dir_on[IMPAIR_DOWN] = true;
    o->seed = 1;
    if (argc < 1) {
        snprintf(err, errlen, "missing mode: udp or tcp");
        return -1;
    }
    if (!strcmp(argv[0], "udp"))
        o->mode = IMPAIR_UDP;
    else if (!strcmp(argv[0], "tcp"))
        o->mode = IMPAIR_TCP;
    else {
        snprintf(err, errlen, "unknown mode \"%s\": udp or tcp", argv[0]);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) {
            snprintf(err, errlen, "%s: missing value", k);
            return -1;
        }
        const char *v = argv[++i];
        uint64_t n;
        bool ok = true;
        if (!strcmp(k, "--listen"))
            o->listen = v;
        else if (!strcmp(k, "--to"))
            o->to = v;
        else if (!strcmp(k, "--port-file"))
            o->port_file = v;
        else if (!strcmp(k, "--loss"))
            ok = parse_prob(v, &o->loss);
        else if (!strcmp(k, "--burst"))
            ok = parse_u64(v, &n) && n >= 1 && n <= 1000 && ((o->burst = (unsigned)n), true);
        else if (!strcmp(k, "--duplicate"))
            ok = parse_prob(v, &o->duplicate);
        else if (!strcmp(k, "--reorder"))
            ok = parse_prob(v, &o->reorder);
        else if (!strcmp(k, "--reorder-gap"))
            ok = parse_duration(v, &o->reorder_gap_us);
        else if (!strcmp(k, "--delay"))
            ok = parse_duration(v, &o->delay_us);
        else if (!strcmp(k, "--jitter"))
            ok = parse_duration(v, &o->jitter_us);
        else if (!strcmp(k, "--rate"))
            ok = parse_rate(v, &o->rate_bps);
        else if (!strcmp(k, "--queue"))
            ok = parse_u64(v, &o->queue_bytes) && o->queue_bytes > 0;
        else if (!strcmp(k, "--blackout"))
            ok = parse_duration(v, &o->blackout_us);
        else if (!strcmp(k, "--blackout-at"))
            ok = parse_duration(v, &o->blackout_at_us);
        else if (!strcmp(k, "--lifetime"))
            ok = parse_duration(v, &o->lifetime_us) && o->lifetime_us > 0;
        else if (!strcmp(k, "--seed"))
            ok = parse_u64(v, &o->seed);
        else if (!strcmp(k, "--direction")) {
            ok = !strcmp(v, "both") || !strcmp(v, "up") || !strcmp(v, "down");
            o->dir_on[IMPAIR_UP] = strcmp(v, "down") != 0;
            o->dir_on[IMPAIR_DOWN] = strcmp(v, "up") != 0;
        } else {
            snprintf(err, errlen, "unknown option %s", k);
            return -1;
        }
        if (!ok) {
            snprintf(err, errlen, "%s: invalid value \"%s\"", k, v);
            return -1;
        }
    }
    struct sockaddr_storage ss;
    unsigned len;
    if (!o->listen || !o->to) {
        snprintf(err, errlen, "--listen and --to are required");
        return -1;
    }
    if (!impair_loopback_addr(o->listen, &ss, &len) || !impair_loopback_addr(o->to, &ss, &len)) {
        snprintf(err, errlen, "--listen and --to must be loopback host:port (127.x.x.x, ::1)");
        return -1;
    }
    return 0;
}
