#include "util/log.h"
#include "util/err.h"

#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 16
#define TARGET_LEN  16

struct target_level {
    char name[TARGET_LEN];
    enum moq_log_level level;
};

static enum moq_log_level default_level = MOQ_LOG_INFO;
static const moq_clock *log_clock = &moq_system_clock;
static uint64_t repeat_interval_us = MOQ_LOG_DEFAULT_REPEAT_INTERVAL_US;
static uint64_t repeat_burst = MOQ_LOG_DEFAULT_REPEAT_BURST;
static moq_log_repeat *repeat_sites; /* every call site that has counted a line */
/* Call sites are shared by worker threads: their counts and the site list change under it. */
static pthread_mutex_t repeat_lock = PTHREAD_MUTEX_INITIALIZER;
static struct target_level overrides[MAX_TARGETS];
static int n_overrides;

/* Upstream crate names map onto our targets so RUST_LOG specs written for the Rust relay
 * keep their meaning. */
static const struct {
    const char *crate;
    const char *targets;
} crate_aliases[] = {
    {"moq_relay", "relay,web,cluster,auth,config"},
    {"moq_net", "moq,ietf"},
    {"moq_lite", "moq"},
    {"moq_native", "quic,h3,http,tls,qmux"},
    {"web_transport_quinn", "h3"},
    {"qmux", "qmux"},
};

static const char *const known_targets[] = {"relay", "quic",    "h3",     "http",   "moq",
                                            "auth",  "cluster", "tls",    "config", "web",
                                            "qmux",  "model",   "client", "ietf"};

int moq_log_level_parse(const char *name)
{
    static const char *const names[] = {"off", "error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 6; i++)
        if (strcasecmp(name, names[i]) == 0) return i;
    if (strcasecmp(name, "warning") == 0) return MOQ_LOG_WARN;
    return -1;
}

const char *moq_log_level_name(enum moq_log_level level)
{
    static const char *const names[] = {"OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    return level <= MOQ_LOG_TRACE ? names[level] : "?";
}

void moq_log_set_level(enum moq_log_level level)
{
    default_level = level;
    n_overrides = 0;
}

static void set_target(const char *name, size_t len, enum moq_log_level level)
{
    if (len == 0 || len >= TARGET_LEN) return;
    for (int i = 0; i < n_overrides; i++) {
        if (strlen(overrides[i].name) == len && memcmp(overrides[i].name, name, len) == 0) {
            overrides[i].level = level;
            return;
        }
    }
    if (n_overrides == MAX_TARGETS) return;
    memcpy(overrides[n_overrides].name, name, len);
    overrides[n_overrides].name[len] = '\0';
    overrides[n_overrides].level = level;
    n_overrides++;
}

static bool is_known_target(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(known_targets) / sizeof(known_targets[0]); i++)
        if (strlen(known_targets[i]) == len && memcmp(known_targets[i], name, len) == 0)
            return true;
    return false;
}

static void apply_target(const char *name, size_t len, enum moq_log_level level)
{
    /* "moq_relay::connection" -> "moq_relay" */
    const char *colon = memchr(name, ':', len);
    if (colon) len = (size_t)(colon - name);
    for (size_t i = 0; i < sizeof(crate_aliases) / sizeof(crate_aliases[0]); i++) {
        if (strlen(crate_aliases[i].crate) != len || memcmp(crate_aliases[i].crate, name, len) != 0)
            continue;
        const char *t = crate_aliases[i].targets;
        while (*t) {
            size_t n = strcspn(t, ",");
            set_target(t, n, level);
            t += n;
            if (*t == ',') t++;
        }
        return;
    }
    if (is_known_target(name, len)) set_target(name, len, level);
}

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

static int parse_level_n(const char *s, size_t len)
{
    char buf[16];
    if (len == 0 || len >= sizeof(buf)) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return moq_log_level_parse(buf);
}

int moq_log_configure(const char *spec)
{
    /* Validate first so a bad spec changes nothing. */
    for (int pass = 0; pass < 2; pass++) {
        const char *p = spec;
        while (*p) {
            size_t n = strcspn(p, ",");
            const char *item = p;
            size_t len = n;
            p += n;
            if (*p == ',') p++;
            trim(&item, &len);
            if (len == 0) continue;
            const char *eq = memchr(item, '=', len);
            if (!eq) {
                int level = parse_level_n(item, len);
                if (level < 0) {
                    /* A bare target name means "trace" for it in RUST_LOG syntax. */
                    if (pass == 1) apply_target(item, len, MOQ_LOG_TRACE);
                    continue;
                }
                if (pass == 1) {
                    default_level = (enum moq_log_level)level;
                }
                continue;
            }
            const char *lv = eq + 1;
            size_t lvlen = len - (size_t)(lv - item);
            size_t tlen = (size_t)(eq - item);
            trim(&lv, &lvlen);
            trim(&item, &tlen);
            int level = parse_level_n(lv, lvlen);
            if (level < 0) return MOQ_ERR_INVALID;
            if (pass == 1) apply_target(item, tlen, (enum moq_log_level)level);
        }
    }
    return 0;
}

bool moq_log_enabled(enum moq_log_level level, const char *target)
{
    for (int i = 0; i < n_overrides; i++)
        if (strcmp(overrides[i].name, target) == 0) return level <= overrides[i].level;
    return level <= default_level;
}

/* Characters a (possibly percent-encoded) JWT is made of. */
static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '%' || c == '~' || c == '+' || c == '=' || c == '/';
}

static bool is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Length of a token standing on its own at text[i]: base64url of a JSON object begins with
 * "eyJ" ('{"'), so a run of base64url and dots starting so is a JWT (or a base64url key), not
 * words. 0 when there is none at i. */
static size_t bare_token_len(const char *text, size_t len, size_t i)
{
    if (len - i < 3 || memcmp(text + i, "eyJ", 3) != 0) return 0;
    if (i > 0 && (is_b64url_char(text[i - 1]) || text[i - 1] == '.')) return 0;
    size_t v = i;
    while (v < len && (is_b64url_char(text[v]) || text[v] == '.'))
        v++;
    return v - i >= 16 ? v - i : 0;
}

static size_t put_mark(char *out, size_t o, size_t cap)
{
    static const char mark[] = "<redacted>";
    size_t n = sizeof(mark) - 1 < cap - o ? sizeof(mark) - 1 : cap - o;
    memcpy(out + o, mark, n);
    return o + n;
}

/* Tokens never reach the logs: the value of every "jwt=" and every bare JWT become
 * "<redacted>". */
size_t moq_log_redact(char *line, size_t len, size_t cap)
{
    char out[2048];
    size_t o = 0, bare;
    for (size_t i = 0; i < len && o < sizeof(out);) {
        if (len - i > 4 && memcmp(line + i, "jwt=", 4) == 0) {
            memcpy(out + o, "jwt=", 4 < sizeof(out) - o ? 4 : sizeof(out) - o);
            o += 4;
            i += 4;
            size_t v = i;
            while (v < len && is_token_char(line[v]))
                v++;
            if (v > i && o < sizeof(out)) o = put_mark(out, o, sizeof(out));
            i = v;
        } else if ((bare = bare_token_len(line, len, i)) > 0) {
            o = put_mark(out, o, sizeof(out));
            i += bare;
        } else {
            out[o++] = line[i++];
        }
    }
    if (o > cap) o = cap;
    memcpy(line, out, o);
    return o;
}

void moq_log_write(enum moq_log_level level, const char *target, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %5s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
                     moq_log_level_name(level), target);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    /* Control characters from peers must not forge log lines. */
    for (size_t i = (size_t)n; i < len; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t') line[i] = '?';
    size_t body = len - (size_t)n;
    if (memmem(line + n, body, "jwt=", 4) || memmem(line + n, body, "eyJ", 3))
        len = (size_t)n + moq_log_redact(line + n, body, sizeof(line) - 2 - (size_t)n);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* ---- repetitive lines ---- */

void moq_log_set_clock(const moq_clock *clock)
{
    log_clock = clock ? clock : &moq_system_clock;
    for (moq_log_repeat *r = repeat_sites; r; r = r->next)
        r->window_start_us = 0, r->written = 0, r->suppressed = 0;
}

void moq_log_set_repeat(uint64_t interval_us, uint64_t burst)
{
    repeat_interval_us = interval_us;
    repeat_burst = burst;
}

static uint64_t log_now_us(void)
{
    return log_clock->now_us(log_clock->ctx);
}

/* Summarise r's interval if it has passed; start the next one at now. */
static void repeat_roll(moq_log_repeat *r, uint64_t now)
{
    if (r->written == 0 && r->suppressed == 0) return;
    if (now - r->window_start_us < repeat_interval_us) return;
    if (r->suppressed && moq_log_enabled(r->level, r->target)) {
        uint64_t secs = (now - r->window_start_us + MOQ_US_PER_S / 2) / MOQ_US_PER_S;
        moq_log_write(r->level, r->target, "%s: %llu more in the last %llus not logged one by one",
                      r->what, (unsigned long long)r->suppressed, (unsigned long long)secs);
    }
    r->written = 0;
    r->suppressed = 0;
}

static bool repeat_admit_locked(moq_log_repeat *r, enum moq_log_level level, const char *target)
{
    r->level = level;
    r->target = target;
    if (!r->registered) {
        r->registered = true;
        r->next = repeat_sites;
        repeat_sites = r;
    }
    uint64_t now = log_now_us();
    repeat_roll(r, now);
    if (r->written == 0 && r->suppressed == 0) r->window_start_us = now;
    if (r->written < repeat_burst) {
        r->written++;
        return true;
    }
    r->suppressed++;
    return false;
}

bool moq_log_repeat_admit(moq_log_repeat *r, enum moq_log_level level, const char *target)
{
    if (repeat_interval_us == 0) return true;
    pthread_mutex_lock(&repeat_lock);
    bool admit = repeat_admit_locked(r, level, target);
    pthread_mutex_unlock(&repeat_lock);
    return admit;
}

void moq_log_repeat_flush(void)
{
    if (repeat_interval_us == 0) return;
    uint64_t now = log_now_us();
    pthread_mutex_lock(&repeat_lock);
    for (moq_log_repeat *r = repeat_sites; r; r = r->next)
        repeat_roll(r, now);
    pthread_mutex_unlock(&repeat_lock);
}
