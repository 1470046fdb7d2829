/* `moq bench` configuration: ranges, durations, the TOML preset and the command line, with
 * upstream moq-bench's precedence (flags over the file over the defaults). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "config/toml.h"
#include "util/log.h"

const char bench_usage[] =
    "A load generator for a moq-lite relay, with the model and options of upstream moq-bench.\n"
    "\n"
    "A connections each publish B broadcasts of one track, subscribe to C other broadcasts\n"
    "found by announcement, and write D frames/s of E bytes in groups of F frames (F = 0:\n"
    "every frame its own group). Every knob is a value or a min:max range rolled per\n"
    "connection. One JSON line of statistics per --report interval goes to --output; the\n"
    "last one also to stdout.\n"
    "\n"
    "At the end (--duration, SIGINT or SIGTERM) publishing stops and every track is finished;\n"
    "the last line waits until each subscription has every group up to the last one of its\n"
    "track (a broadcast of another bench process: up to the newest it had at the end), or\n"
    "ended, for at most 6 s; groups still missing then count as lost. A second signal ends\n"
    "the wait.\n"
    "\n"
    "Usage: moq bench URL [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --connections N|MIN:MAX  Connections (A, rolled once; default 1)\n"
    "  --broadcasts N|MIN:MAX   Broadcasts published per connection (B; default 1)\n"
    "  --subscribe N|MIN:MAX    Announced broadcasts each connection subscribes to (C; default 0)\n"
    "  --fps N|MIN:MAX          Frames per second per track (D; 0 = idle; default 30)\n"
    "  --frame-size N|MIN:MAX   Bytes per frame (E; default 1200)\n"
    "  --group-size N|MIN:MAX   Frames per group after the keyframe (F; default 60)\n"
    "  --startup DURATION       Ramp connections over this window, then pick subscriptions\n"
    "                           among what was announced (default 10s)\n"
    "  --duration DURATION      Stop after this long (default: until interrupted)\n"
    "  --report DURATION        Statistics interval (default 1s)\n"
    "  --output FILE            Write every report as a JSON line to FILE (truncated)\n"
    "  --file PRESET.toml       Load settings from a preset; flags win over it\n"
    "  --name NAME              Broadcast namespace (default \"bench\")\n"
    "  --max-loss PERCENT       Exit 3 when more than PERCENT of the groups were lost\n"
    "  --max-p99 DURATION       Exit 3 when the p99 latency is above this (e.g. 50ms)\n"
    "  --quiet                  No progress line on a terminal\n"
    "\n"
    "URL: moql://host:port/path (raw QUIC), https://host:port/path (WebTransport),\n"
    "http://host:port/path (pin the certificate served at /certificate.sha256, then\n"
    "WebTransport, or raw QUIC with --raw-quic), ws://host:port/path or wss:// (WebSocket).\n"
    "--client-connect URL is accepted too.\n"
    "\n"
    "Connection options:\n"
    "  --tls-fingerprint HEX  Accept only a server certificate with this SHA-256 (repeatable)\n"
    "  --tls-root FILE        Trust the CA certificates in this PEM file (repeatable)\n"
    "  --tls-disable-verify   Accept any server certificate (development only)\n"
    "  --moq-version V        Offer only this moq-lite version: 05, 04 or 03 (default: all)\n"
    "  --raw-quic             With an http:// URL, dial raw QUIC instead of WebTransport\n"
    "  --timeout DURATION     Limit for each connection attempt (default 10s)\n"
    "  --log-level LEVEL      error, warn (default), info, debug or trace; MOQ_LOG wins\n"
    "  -h, --help             Print help\n"
    "  -V, --version          Print version\n";

/* ---------------------------------------------------------------- values */

static int parse_u64_str(const char *s, size_t n, uint64_t *out)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n > 20) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int bench_range_parse(const char *s, struct bench_range *out)
{
    if (!s) return -1;
    static const char *const seps[] = {"..", ":", "-"};
    for (size_t i = 0; i < 3; i++) {
        const char *at = strstr(s, seps[i]);
        if (!at) continue;
        struct bench_range r;
        if (parse_u64_str(s, (size_t)(at - s), &r.min) < 0) return -1;
        const char *rest = at + strlen(seps[i]);
        if (parse_u64_str(rest, strlen(rest), &r.max) < 0) return -1;
        *out = r;
        return 0;
    }
    uint64_t v;
    if (parse_u64_str(s, strlen(s), &v) < 0) return -1;
    out->min = out->max = v;
    return 0;
}

uint64_t bench_rng_next(struct bench_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t bench_range_roll(const struct bench_range *r, struct bench_rng *rng)
{
    uint64_t lo = r->min < r->max ? r->min : r->max;
    uint64_t hi = r->min < r->max ? r->max : r->min;
    if (lo == hi) return lo;
    uint64_t span = hi - lo + 1;
    if (span == 0) return bench_rng_next(rng); /* the whole 64-bit range */
    return lo + bench_rng_next(rng) % span;
}

int bench_duration_parse(const char *s, uint64_t *ms)
{
    if (!s) return -1;
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6},   {"us", 1e-3},   {"ms", 1},          {"sec", 1000},
                 {"s", 1000},    {"min", 60000}, {"m", 60000},       {"hours", 3600000},
                 {"h", 3600000}, {"secs", 1000}, {"minutes", 60000}, {"seconds", 1000}};
    double total = 0;
    bool any = false;
    const char *p = s;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        if (*p < '0' || *p > '9') return -1;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (errno || end == p) return -1;
        p = end;
        size_t ulen = 0;
        while ((p[ulen] >= 'a' && p[ulen] <= 'z') || (p[ulen] >= 'A' && p[ulen] <= 'Z'))
            ulen++;
        if (ulen == 0) {
            if (v != 0) return -1; /* a bare number other than 0 has no unit */
        } else {
            bool found = false;
            for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !found; i++) {
                if (strlen(units[i].unit) == ulen && strncmp(p, units[i].unit, ulen) == 0) {
                    total += v * units[i].ms;
                    found = true;
                }
            }
            if (!found) return -1;
        }
        p += ulen;
        any = true;
    }
    if (!any || total > 1e12 || !isfinite(total)) return -1;
    *ms = (uint64_t)llround(total);
    return 0;
}

/* ---------------------------------------------------------------- config lifecycle */

void bench_config_defaults(struct bench_config *c)
{
    if (!(c->set & BF_STARTUP)) c->startup_ms = 10000;
    if (!(c->set & BF_REPORT)) c->report_ms = 1000;
    if (!(c->set & BF_CONNECTIONS)) c->connections = (struct bench_range){1, 1};
    if (!(c->set & BF_BROADCASTS)) c->broadcasts = (struct bench_range){1, 1};
    if (!(c->set & BF_SUBSCRIBE)) c->subscribe = (struct bench_range){0, 0};
    if (!(c->set & BF_FPS)) c->fps = (struct bench_range){30, 30};
    if (!(c->set & BF_FRAME_SIZE)) c->frame_size = (struct bench_range){1200, 1200};
    if (!(c->set & BF_GROUP_SIZE)) c->group_size = (struct bench_range){60, 60};
}

static void free_list(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    *n = 0;
}

void bench_config_free(struct bench_config *c)
{
    free(c->url);
    free(c->name);
    free(c->output);
    free(c->file);
    free(c->log_level);
    free_list(c->roots, &c->n_roots);
    free_list(c->fingerprints, &c->n_fingerprints);
    memset(c, 0, sizeof(*c));
}

static int set_str(char **dst, const char *v)
{
    char *copy = strdup(v);
    if (!copy) return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

static int push_str(char **list, size_t *n, const char *v)
{
    if (*n >= BENCH_MAX_LIST) return -1;
    if (!(list[*n] = strdup(v))) return -1;
    (*n)++;
    return 0;
}

/* Move the settings marked in src->set over those of dst. */
static void overlay(struct bench_config *dst, struct bench_config *src)
{
#define MOVE_STR(bit, f)                                                                           \
    if (src->set & (bit)) {                                                                        \
        free(dst->f);                                                                              \
        dst->f = src->f;                                                                           \
        src->f = NULL;                                                                             \
    }
#define MOVE_VAL(bit, f)                                                                           \
    if (src->set & (bit)) dst->f = src->f;
    MOVE_STR(BF_URL, url)
    MOVE_STR(BF_NAME, name)
    MOVE_STR(BF_OUTPUT, output)
    MOVE_STR(BF_LOG_LEVEL, log_level)
    MOVE_VAL(BF_STARTUP, startup_ms)
    MOVE_VAL(BF_DURATION, duration_ms)
    MOVE_VAL(BF_REPORT, report_ms)
    MOVE_VAL(BF_CONNECTIONS, connections)
    MOVE_VAL(BF_BROADCASTS, broadcasts)
    MOVE_VAL(BF_SUBSCRIBE, subscribe)
    MOVE_VAL(BF_FPS, fps)
    MOVE_VAL(BF_FRAME_SIZE, frame_size)
    MOVE_VAL(BF_GROUP_SIZE, group_size)
    MOVE_VAL(BF_DISABLE_VERIFY, disable_verify)
#undef MOVE_STR
#undef MOVE_VAL
    if (src->set & BF_ROOTS) {
        free_list(dst->roots, &dst->n_roots);
        memcpy(dst->roots, src->roots, sizeof(src->roots));
        dst->n_roots = src->n_roots;
        src->n_roots = 0;
    }
    if (src->set & BF_FINGERPRINTS) {
        free_list(dst->fingerprints, &dst->n_fingerprints);
        memcpy(dst->fingerprints, src->fingerprints, sizeof(src->fingerprints));
        dst->n_fingerprints = src->n_fingerprints;
        src->n_fingerprints = 0;
    }
    dst->set |= src->set;
}

/* ---------------------------------------------------------------- TOML preset */

static int toml_fail(char *err, size_t errlen, const struct moq_toml_value *v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int toml_fail(char *err, size_t errlen, const struct moq_toml_value *v, const char *fmt, ...)
{
    int n = v ? snprintf(err, errlen, "line %u: ", v->line) : 0;
    if (n < 0 || (size_t)n >= errlen) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int toml_range(const struct moq_toml_value *v, struct bench_range *out)
{
    if (v->type == MOQ_TOML_INTEGER) {
        if (v->u.i < 0) return -1;
        out->min = out->max = (uint64_t)v->u.i;
        return 0;
    }
    if (v->type == MOQ_TOML_STRING) return bench_range_parse(v->u.str.ptr, out);
    if (v->type != MOQ_TOML_TABLE || moq_toml_table_len(v) != 2) return -1;
    const struct moq_toml_value *lo = moq_toml_get(v, "min"), *hi = moq_toml_get(v, "max");
    if (!lo || !hi || lo->type != MOQ_TOML_INTEGER || hi->type != MOQ_TOML_INTEGER || lo->u.i < 0 ||
        hi->u.i < 0)
        return -1;
    out->min = (uint64_t)lo->u.i;
    out->max = (uint64_t)hi->u.i;
    return 0;
}

static int toml_strings(const struct moq_toml_value *v, char **list, size_t *n)
{
    if (v->type == MOQ_TOML_STRING) return push_str(list, n, v->u.str.ptr);
    if (v->type != MOQ_TOML_ARRAY) return -1;
    for (size_t i = 0; i < moq_toml_array_len(v); i++) {
        const struct moq_toml_value *e = moq_toml_array_at(v, i);
        if (e->type != MOQ_TOML_STRING || push_str(list, n, e->u.str.ptr) < 0) return -1;
    }
    return 0;
}

struct range_key {
    const char *key;
    uint32_t bit;
    size_t off;
};

static const struct range_key range_keys[] = {
    {"connections", BF_CONNECTIONS, offsetof(struct bench_config, connections)},
    {"broadcasts", BF_BROADCASTS, offsetof(struct bench_config, broadcasts)},
    {"subscribe", BF_SUBSCRIBE, offsetof(struct bench_config, subscribe)},
    {"fps", BF_FPS, offsetof(struct bench_config, fps)},
    {"frame_size", BF_FRAME_SIZE, offsetof(struct bench_config, frame_size)},
    {"group_size", BF_GROUP_SIZE, offsetof(struct bench_config, group_size)},
};

static int apply_client_tls(struct bench_config *c, const struct moq_toml_value *tls, char *err,
                            size_t errlen)
{
    if (tls->type != MOQ_TOML_TABLE) return toml_fail(err, errlen, tls, "client.tls: not a table");
    for (size_t i = 0; i < moq_toml_table_len(tls); i++) {
        const struct moq_toml_kv *kv = moq_toml_table_at(tls, i);
        const struct moq_toml_value *v = kv->value;
        if (strcmp(kv->key, "disable_verify") == 0) {
            if (v->type != MOQ_TOML_BOOL)
                return toml_fail(err, errlen, v, "client.tls.disable_verify: expected a boolean");
            c->disable_verify = v->u.b;
            c->set |= BF_DISABLE_VERIFY;
        } else if (strcmp(kv->key, "root") == 0) {
            free_list(c->roots, &c->n_roots);
            if (toml_strings(v, c->roots, &c->n_roots) < 0)
                return toml_fail(err, errlen, v, "client.tls.root: expected file names");
            c->set |= BF_ROOTS;
        } else if (strcmp(kv->key, "fingerprint") == 0) {
            free_list(c->fingerprints, &c->n_fingerprints);
            if (toml_strings(v, c->fingerprints, &c->n_fingerprints) < 0)
                return toml_fail(err, errlen, v, "client.tls.fingerprint: expected strings");
            c->set |= BF_FINGERPRINTS;
        } else {
            return toml_fail(err, errlen, v, "unknown key client.tls.%s", kv->key);
        }
    }
    return 0;
}

static int apply_table(struct bench_config *c, const char *table, const struct moq_toml_value *t,
                       char *err, size_t errlen)
{
    if (t->type != MOQ_TOML_TABLE) return toml_fail(err, errlen, t, "%s: not a table", table);
    for (size_t i = 0; i < moq_toml_table_len(t); i++) {
        const struct moq_toml_kv *kv = moq_toml_table_at(t, i);
        const struct moq_toml_value *v = kv->value;
        if (strcmp(table, "client") == 0 && strcmp(kv->key, "connect") == 0) {
            if (v->type != MOQ_TOML_STRING || set_str(&c->url, v->u.str.ptr) < 0)
                return toml_fail(err, errlen, v, "client.connect: expected a URL");
            c->set |= BF_URL;
        } else if (strcmp(table, "client") == 0 && strcmp(kv->key, "tls") == 0) {
            if (apply_client_tls(c, v, err, errlen) < 0) return -1;
        } else if (strcmp(table, "log") == 0 && strcmp(kv->key, "level") == 0) {
            if (v->type != MOQ_TOML_STRING || moq_log_level_parse(v->u.str.ptr) < 0 ||
                set_str(&c->log_level, v->u.str.ptr) < 0)
                return toml_fail(err, errlen, v, "log.level: expected a log level");
            c->set |= BF_LOG_LEVEL;
        } else {
            return toml_fail(err, errlen, v, "unknown key %s.%s", table, kv->key);
        }
    }
    return 0;
}

static int apply_duration(const struct moq_toml_value *v, const char *key, uint64_t *out, char *err,
                          size_t errlen)
{
    if (v->type != MOQ_TOML_STRING || bench_duration_parse(v->u.str.ptr, out) < 0)
        return toml_fail(err, errlen, v, "%s: expected a duration such as \"30s\"", key);
    return 0;
}

int bench_config_apply_toml(struct bench_config *c, const char *text, size_t len, char *err,
                            size_t errlen)
{
    struct moq_toml_value *root = NULL;
    struct moq_toml_error te;
    if (moq_toml_parse(text, len, &root, &te) < 0) {
        snprintf(err, errlen, "line %u, column %u: %s", te.line, te.col, te.msg);
        return -1;
    }
    int rv = 0;
    for (size_t i = 0; i < moq_toml_table_len(root) && rv == 0; i++) {
        const struct moq_toml_kv *kv = moq_toml_table_at(root, i);
        const char *k = kv->key;
        const struct moq_toml_value *v = kv->value;
        bool done = false;
        for (size_t r = 0; r < sizeof(range_keys) / sizeof(range_keys[0]) && !done; r++) {
            if (strcmp(k, range_keys[r].key) != 0) continue;
            done = true;
            if (toml_range(v, (struct bench_range *)((char *)c + range_keys[r].off)) < 0)
                rv = toml_fail(err, errlen, v, "%s: expected N, \"MIN:MAX\" or {min, max}", k);
            c->set |= range_keys[r].bit;
        }
        if (done) continue;
        if (strcmp(k, "startup") == 0) {
            rv = apply_duration(v, k, &c->startup_ms, err, errlen);
            c->set |= BF_STARTUP;
        } else if (strcmp(k, "duration") == 0) {
            rv = apply_duration(v, k, &c->duration_ms, err, errlen);
            c->set |= BF_DURATION;
        } else if (strcmp(k, "report") == 0) {
            rv = apply_duration(v, k, &c->report_ms, err, errlen);
            c->set |= BF_REPORT;
        } else if (strcmp(k, "name") == 0 || strcmp(k, "output") == 0) {
            bool name = k[0] == 'n';
            if (v->type != MOQ_TOML_STRING || set_str(name ? &c->name : &c->output, v->u.str.ptr))
                rv = toml_fail(err, errlen, v, "%s: expected a string", k);
            c->set |= name ? BF_NAME : BF_OUTPUT;
        } else if (strcmp(k, "client") == 0 || strcmp(k, "log") == 0) {
            rv = apply_table(c, k, v, err, errlen);
        } else {
            rv = toml_fail(err, errlen, v, "unknown key '%s'", k);
        }
    }
    moq_toml_free(root);
    return rv;
}

static int load_file(struct bench_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            if (cap > (1u << 20)) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "%s is larger than 1 MiB", path);
                return -1;
            }
            cap = cap ? cap * 2 : 8192;
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                fclose(f);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            text = nt;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    char msg[240];
    int rv = bench_config_apply_toml(c, text, len, msg, sizeof(msg));
    free(text);
    if (rv < 0) snprintf(err, errlen, "%s: %s", path, msg);
    return rv;
}

/* ---------------------------------------------------------------- command line */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "moq bench: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun `moq bench --help` for usage.\n");
    return 2;
}

static const char *version_alpn(const char *v)
{
    static const char *const names[][2] = {
        {"05", "moq-lite-05"}, {"04", "moq-lite-04"}, {"03", "moq-lite-03"}};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(v, names[i][0]) == 0 || strcmp(v, names[i][1]) == 0 ||
            (strncmp(v, "lite-", 5) == 0 && strcmp(v + 5, names[i][0]) == 0))
            return names[i][1];
    }
    return NULL;
}

/* Option names: upstream's, plus the `moq` tool's connection options. */
static const char *canonical(const char *name)
{
    static const char *const alias[][2] = {
        {"--client-connect", "--url"},
        {"--client-tls-disable-verify", "--tls-disable-verify"},
        {"--client-tls-root", "--tls-root"},
        {"--client-tls-fingerprint", "--tls-fingerprint"},
        {"--client-connect-timeout", "--timeout"},
        {"--client-version", "--moq-version"},
    };
    for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
        if (strcmp(name, alias[i][0]) == 0) return alias[i][1];
    return name;
}

static int parse_flag_value(const char *name, const char *eq, bool *on)
{
    *on = true;
    if (!eq) return 0;
    if (strcmp(eq + 1, "true") == 0) return 0;
    if (strcmp(eq + 1, "false") == 0) {
        *on = false;
        return 0;
    }
    return usage_error("%s takes true or false", name);
}

static int parse_percent(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || !isfinite(v)) return -1;
    if (*end == '%') end++;
    if (*end) return -1;
    *out = v;
    return 0;
}

/* One option with its value. Returns 0 or -1 for an invalid value. */
static int set_option(struct bench_config *c, const char *name, const char *value)
{
    for (size_t r = 0; r < sizeof(range_keys) / sizeof(range_keys[0]); r++) {
        char flag[32];
        snprintf(flag, sizeof(flag), "--%s", range_keys[r].key);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_') *p = '-';
        if (strcmp(name, flag) != 0) continue;
        c->set |= range_keys[r].bit;
        return bench_range_parse(value, (struct bench_range *)((char *)c + range_keys[r].off));
    }
    uint64_t ms;
    if (strcmp(name, "--url") == 0) {
        c->set |= BF_URL;
        return set_str(&c->url, value);
    } else if (strcmp(name, "--name") == 0) {
        c->set |= BF_NAME;
        return value[0] ? set_str(&c->name, value) : -1;
    } else if (strcmp(name, "--startup") == 0) {
        c->set |= BF_STARTUP;
        return bench_duration_parse(value, &c->startup_ms);
    } else if (strcmp(name, "--duration") == 0) {
        c->set |= BF_DURATION;
        return bench_duration_parse(value, &c->duration_ms);
    } else if (strcmp(name, "--report") == 0) {
        c->set |= BF_REPORT;
        return bench_duration_parse(value, &c->report_ms);
    } else if (strcmp(name, "--output") == 0) {
        c->set |= BF_OUTPUT;
        return set_str(&c->output, value);
    } else if (strcmp(name, "--file") == 0) {
        return set_str(&c->file, value);
    } else if (strcmp(name, "--max-loss") == 0) {
        c->has_max_loss = true;
        return parse_percent(value, &c->max_loss_pct);
    } else if (strcmp(name, "--max-p99") == 0) {
        c->has_max_p99 = true;
        if (bench_duration_parse(value, &ms) == 0) {
            c->max_p99_ms = (double)ms;
            return 0;
        }
        return -1;
    } else if (strcmp(name, "--tls-root") == 0) {
        c->set |= BF_ROOTS;
        return push_str(c->roots, &c->n_roots, value);
    } else if (strcmp(name, "--tls-fingerprint") == 0) {
        c->set |= BF_FINGERPRINTS;
        return push_str(c->fingerprints, &c->n_fingerprints, value);
    } else if (strcmp(name, "--moq-version") == 0) {
        c->version = version_alpn(value);
        return c->version ? 0 : -1;
    } else if (strcmp(name, "--timeout") == 0) {
        return bench_duration_parse(value, &c->timeout_ms) < 0 || c->timeout_ms == 0 ? -1 : 0;
    } else if (strcmp(name, "--log-level") == 0) {
        c->set |= BF_LOG_LEVEL;
        return moq_log_level_parse(value) < 0 ? -1 : set_str(&c->log_level, value);
    }
    return -2;
}

static int parse_args(struct bench_config *c, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(bench_usage, stdout);
            return 1;
        }
        if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            printf("moq %s\n", MOQ_VERSION);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (arg[0] == '-' && arg[1] != '\0') return usage_error("unknown option '%s'", arg);
            if (c->set & BF_URL) return usage_error("unexpected argument '%s'", arg);
            c->set |= BF_URL;
            if (set_str(&c->url, arg) < 0) return usage_error("out of memory");
            continue;
        }
        char raw[64];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen >= sizeof(raw)) return usage_error("unknown option '%s'", arg);
        memcpy(raw, arg, nlen);
        raw[nlen] = '\0';
        const char *name = canonical(raw);
        bool on;
        if (strcmp(name, "--tls-disable-verify") == 0) {
            if (parse_flag_value(raw, eq, &on)) return 2;
            c->disable_verify = on;
            c->set |= BF_DISABLE_VERIFY;
            continue;
        }
        if (strcmp(name, "--raw-quic") == 0 || strcmp(name, "--quiet") == 0) {
            if (parse_flag_value(raw, eq, &on)) return 2;
            if (name[2] == 'r')
                c->raw_quic = on;
            else
                c->quiet = on;
            continue;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) {
                /* an unknown option is reported as such, not as missing its value */
                if (set_option(c, name, "") == -2) return usage_error("unknown option '%s'", raw);
                return usage_error("%s needs a value", raw);
            }
            value = argv[++i];
        }
        int rv = set_option(c, name, value);
        if (rv == -2) return usage_error("unknown option '%s'", raw);
        if (rv < 0) return usage_error("invalid value '%s' for %s", value, raw);
    }
    return 0;
}

static int validate(struct bench_config *c)
{
    if (!c->url || !c->url[0])
        return usage_error("missing URL (moq bench URL, or [client] connect in the --file)");
    if (c->report_ms == 0) return usage_error("--report must be greater than 0s");
    if ((c->set & BF_DURATION) && c->duration_ms == 0)
        return usage_error("--duration must be greater than 0s");
    if (c->disable_verify && (c->n_fingerprints || c->n_roots))
        return usage_error("--tls-disable-verify cannot be combined with other TLS trust");
    if (c->n_fingerprints && c->n_roots)
        return usage_error("--tls-fingerprint and --tls-root cannot be combined");
    if (!c->name && set_str(&c->name, "bench") < 0) return usage_error("out of memory");
    for (const char *p = c->name; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return usage_error("--name may not contain quotes, backslashes or control characters");
    return 0;
}

int bench_config_load(struct bench_config *c, int argc, char **argv)
{
    struct bench_config cli = {0};
    int rv = parse_args(&cli, argc, argv);
    if (rv == 0 && cli.file) {
        char err[320];
        if (set_str(&c->file, cli.file) < 0 || load_file(c, cli.file, err, sizeof(err)) < 0)
            rv = usage_error("%s", err);
    }
    if (rv == 0) {
        overlay(c, &cli);
        c->version = cli.version;
        c->raw_quic = cli.raw_quic;
        c->timeout_ms = cli.timeout_ms;
        c->quiet = cli.quiet;
        c->has_max_loss = cli.has_max_loss;
        c->max_loss_pct = cli.max_loss_pct;
        c->has_max_p99 = cli.has_max_p99;
        c->max_p99_ms = cli.max_p99_ms;
        bench_config_defaults(c);
        rv = validate(c);
    }
    bench_config_free(&cli);
    return rv;
}
