/* `moq bench` measurement: the keyframe's JSON header, lost groups, latency percentiles
 * and the report line. No I/O. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* ---------------------------------------------------------------- keyframe header */

/* The header without its pad value: everything up to `"pad":"` and the closing `"}`. */
static int header_head(const struct bench_header *h, char *buf, size_t cap)
{
    return snprintf(
        buf, cap,
        "{\"connection\":%" PRIu64 ",\"broadcast\":\"%s\",\"group\":%" PRIu64 ",\"fps\":%" PRIu64
        ",\"frame_size\":%" PRIu64 ",\"group_size\":%" PRIu64 ",\"broadcasts\":%" PRIu64
        ",\"subscribe\":%" PRIu64 ",\"timestamp_ms\":%" PRIu64 ",\"pad\":\"",
        h->connection, h->broadcast ? h->broadcast : "", h->group, h->fps, h->frame_size,
        h->group_size, h->broadcasts, h->subscribe, h->timestamp_us / 1000);
}

size_t bench_header_len(const struct bench_header *h, size_t size)
{
    int n = header_head(h, NULL, 0);
    size_t natural = (n < 0 ? 0 : (size_t)n) + 2; /* the closing "} */
    return natural > size ? natural : size;
}

void bench_header_write(const struct bench_header *h, size_t size, uint8_t *out)
{
    size_t total = bench_header_len(h, size);
    /* head + 2 <= total, so the head fits; its NUL is overwritten by the pad or the end */
    size_t head = (size_t)header_head(h, (char *)out, total);
    size_t pad = total - 2 - head;
    memset(out + head, '0', pad);
    out[total - 2] = '"';
    out[total - 1] = '}';
}

/* ---------------------------------------------------------------- header scanning */

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at an opening quote: the position after the closing one, or NULL. */
static const uint8_t *skip_string(const uint8_t *p, const uint8_t *end)
{
    p++;
    while (p < end) {
        const uint8_t *q = memchr(p, '"', (size_t)(end - p));
        if (!q) return NULL;
        size_t backslashes = 0;
        for (const uint8_t *b = q; b > p && b[-1] == '\\'; b--)
            backslashes++;
        if (backslashes % 2 == 0) return q + 1;
        p = q + 1;
    }
    return NULL;
}

/* Skip any JSON value (nested containers included); NULL when malformed. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end)
{
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const uint8_t *s = p;
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t')
        p++;
    return p > s ? p : NULL;
}

static bool read_u64(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *s = p;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        p++;
    }
    if (p == s || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) return false;
    *out = v;
    return true;
}

static bool key_is(const uint8_t *k, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

int bench_header_scan(const uint8_t *data, size_t len, struct bench_header_in *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *p = data, *end = data + len;
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return -1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return -1;
    while (p < end) {
        if (*p != '"') return -1;
        const uint8_t *k = p + 1;
        const uint8_t *after = skip_string(p, end);
        if (!after) return -1;
        size_t klen = (size_t)(after - 1 - k);
        p = skip_ws(after, end);
        if (p >= end || *p != ':') return -1;
        p = skip_ws(p + 1, end);
        const uint8_t *v = p;
        p = skip_value(p, end);
        if (!p) return -1;
        uint64_t n;
        bool num = read_u64(v, p, &n);
        if (num && key_is(k, klen, "timestamp_ms")) {
            out->timestamp_ms = n;
            out->has_ms = true;
        } else if (num && key_is(k, klen, "group")) {
            out->group = n;
            out->has_group = true;
        } else if (num && key_is(k, klen, "fps")) {
            out->fps = n;
        } else if (num && key_is(k, klen, "frame_size")) {
            out->frame_size = n;
        } else if (num && key_is(k, klen, "group_size")) {
            out->group_size = n;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') return out->has_ms ? 0 : -1;
        return -1;
    }
    return -1;
}

/* ---------------------------------------------------------------- latency histogram */

static size_t bucket_of(uint64_t us)
{
    if (us < 32) return (size_t)us;
    int e = 63 - __builtin_clzll(us); /* 5 .. 63 */
    uint64_t sub = (us >> (e - 5)) - 32;
    size_t idx = 32 + (size_t)(e - 5) * 32 + (size_t)sub;
    return idx < BENCH_HIST_BUCKETS ? idx : BENCH_HIST_BUCKETS - 1;
}

/* The lowest value of a bucket and its width. */
static void bucket_bounds(size_t idx, uint64_t *lo, uint64_t *width)
{
    if (idx < 32) {
        *lo = idx;
        *width = 1;
        return;
    }
    size_t e = (idx - 32) / 32 + 5, sub = (idx - 32) % 32;
    *lo = (32 + (uint64_t)sub) << (e - 5);
    *width = 1ull << (e - 5);
}

void bench_hist_add(struct bench_hist *h, uint64_t us)
{
    h->buckets[bucket_of(us)]++;
    h->count++;
    if (us > h->max_us) h->max_us = us;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->count == 0) return 0;
    if (p > 100) p = 100;
    double exact = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact) rank++;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen < rank) continue;
        uint64_t lo, width;
        bucket_bounds(i, &lo, &width);
        uint64_t mid = lo + (width - 1) / 2;
        return mid < h->max_us ? mid : h->max_us;
    }
    return h->max_us;
}

/* ---------------------------------------------------------------- lost groups */

static void gap_expect(struct bench_gap *g, uint64_t last, struct bench_totals *t)
{
    uint64_t expected = last - g->min + 1;
    t->groups_expected += expected - g->expected;
    g->expected = expected;
}

void bench_gap_observe(struct bench_gap *g, uint64_t sequence, struct bench_totals *t)
{
    t->groups_recv++;
    g->seen++;
    if (!g->started) { /* the first group is the lone frontier: nothing is settled */
        g->started = true;
        g->min = g->max = sequence;
        return;
    }
    t->groups_present++;
    if (sequence < g->min) g->min = sequence;
    if (sequence > g->max) {
        g->cap = g->max; /* the old frontier is settled now */
        g->has_cap = true;
        g->max = sequence;
    } else if (!g->has_cap || sequence > g->cap) {
        g->cap = sequence;
        g->has_cap = true;
    }
    gap_expect(g, g->cap, t);
}

bool bench_gap_complete(const struct bench_gap *g, uint64_t last)
{
    if (!g->started) return true;
    return last >= g->max && g->seen >= last - g->min + 1;
}

void bench_gap_settle(struct bench_gap *g, uint64_t last, struct bench_totals *t)
{
    if (!g->started || g->settled) return;
    g->settled = true;
    t->groups_present++; /* the first group, left out while it could be the frontier */
    gap_expect(g, last > g->max ? last : g->max, t);
}

uint64_t bench_lost_groups(const struct bench_totals *t)
{
    return t->groups_expected > t->groups_present ? t->groups_expected - t->groups_present : 0;
}

double bench_loss_pct(const struct bench_totals *t)
{
    if (t->groups_expected == 0) return 0;
    return (double)bench_lost_groups(t) * 100.0 / (double)t->groups_expected;
}

/* ---------------------------------------------------------------- report line */

static double rate(uint64_t now, uint64_t prev, double secs)
{
    return now > prev && secs > 0 ? (double)(now - prev) / secs : 0;
}

/* "PREFIXlatency_p50_ms":..,"PREFIXlatency_p99_ms":..,"PREFIXlatency_max_ms":.. */
static void format_latency(char *out, size_t cap, const char *prefix, const struct bench_hist *h)
{
    if (!h->count) {
        snprintf(out, cap,
                 "\"%slatency_p50_ms\":null,\"%slatency_p99_ms\":null,\"%slatency_max_ms\":null",
                 prefix, prefix, prefix);
        return;
    }
    snprintf(out, cap,
             "\"%slatency_p50_ms\":%.3f,\"%slatency_p99_ms\":%.3f,\"%slatency_max_ms\":%.3f",
             prefix, (double)bench_hist_percentile(h, 50) / 1000.0, prefix,
             (double)bench_hist_percentile(h, 99) / 1000.0, prefix, (double)h->max_us / 1000.0);
}

size_t bench_report_format(char *buf, size_t cap, uint64_t timestamp_ms,
                           const struct bench_totals *now, const struct bench_totals *prev,
                           double secs, const struct bench_hist *latency,
                           const struct bench_hist *window, bool final)
{
    uint64_t lost = bench_lost_groups(now);
    char lat[400];
    format_latency(lat, 200, "", latency);
    size_t l = strlen(lat);
    lat[l++] = ',';
    format_latency(lat + l, sizeof(lat) - l, "window_", window);
    int n = snprintf(
        buf, cap,
        "{\"timestamp_ms\":%" PRIu64 ",\"connections\":%" PRIu64 ",\"target_connections\":%" PRIu64
        ",\"connect_failures\":%" PRIu64 ",\"broadcasts\":%" PRIu64 ",\"subscriptions\":%" PRIu64
        ",\"frames_sent\":%" PRIu64 ",\"bytes_sent\":%" PRIu64 ",\"frames_recv\":%" PRIu64
        ",\"bytes_recv\":%" PRIu64 ",\"recv_frames\":%" PRIu64 ",\"recv_bytes\":%" PRIu64
        ",\"recv_groups\":%" PRIu64 ",\"groups_recv\":%" PRIu64 ",\"groups_expected\":%" PRIu64
        ",\"groups_present\":%" PRIu64 ",\"lost_groups\":%" PRIu64
        ",\"loss\":%.3f,\"send_mbps\":%.3f,\"recv_mbps\":%.3f,\"send_fps\":%.1f,"
        "\"recv_fps\":%.1f,%s,\"latency_samples\":%" PRIu64 ",\"final\":%s}",
        timestamp_ms, now->connections, now->target_connections, now->connect_failures,
        now->broadcasts, now->subscriptions, now->frames_sent, now->bytes_sent, now->frames_recv,
        now->bytes_recv, now->frames_recv, now->bytes_recv, now->groups_recv, now->groups_recv,
        now->groups_expected, now->groups_present, lost, bench_loss_pct(now),
        rate(now->bytes_sent, prev->bytes_sent, secs) * 8 / 1e6,
        rate(now->bytes_recv, prev->bytes_recv, secs) * 8 / 1e6,
        rate(now->frames_sent, prev->frames_sent, secs),
        rate(now->frames_recv, prev->frames_recv, secs), lat, latency->count,
        final ? "true" : "false");
    if (n < 0) return 0;
    return (size_t)n < cap ? (size_t)n : cap ? cap - 1 : 0;
}

/* ---------------------------------------------------------------- verdict */

int bench_verdict(const struct bench_config *c, const struct bench_totals *t,
                  const struct bench_hist *latency, char *msg, size_t len)
{
    size_t n = 0;
    int code = 0;
    msg[0] = '\0';
    if (c->has_max_loss && bench_loss_pct(t) > c->max_loss_pct) {
        n += (size_t)snprintf(msg + n, len - n, "%.3f%% of the groups were lost (limit %g%%)",
                              bench_loss_pct(t), c->max_loss_pct);
        code = BENCH_EXIT_THRESHOLD;
    }
    if (c->has_max_p99 && n < len) {
        const char *sep = code ? "; " : "";
        double p99 = (double)bench_hist_percentile(latency, 99) / 1000.0;
        if (latency->count == 0) {
            snprintf(msg + n, len - n, "%sno latency was measured (--max-p99 needs samples)", sep);
            code = BENCH_EXIT_THRESHOLD;
        } else if (p99 > c->max_p99_ms) {
            snprintf(msg + n, len - n, "%sp99 latency %.3f ms is above the limit of %g ms", sep,
                     p99, c->max_p99_ms);
            code = BENCH_EXIT_THRESHOLD;
        }
    }
    return code;
}
