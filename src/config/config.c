/* config.c - loading, overriding, finalizing and validating struct moq_config. */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/schema.h"
#include "config/toml.h"
#include "util/err.h"
#include "util/url.h"

extern char **environ;

#define MAX_FILE_SIZE (16u << 20)

/* What a value came with, for error messages. */
struct origin {
    enum src src;
    const char *file; /* SRC_FILE */
    uint32_t line, col;
    const char *name; /* env variable or flag spelling */
};

/* ---- small helpers ---------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int errf(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return MOQ_ERR_CONFIG;
}

/* Prefix a message with where the value came from. */
static int fail_from(char *err, size_t errlen, const struct origin *o, const char *msg)
{
    switch (o->src) {
    case SRC_FILE:
        return errf(err, errlen, "%s:%u:%u: %s", o->file, o->line, o->col, msg);
    case SRC_ENV:
        return errf(err, errlen, "%s: %s", o->name, msg);
    case SRC_FLAG:
        return errf(err, errlen, "--%s: %s", o->name, msg);
    default:
        return errf(err, errlen, "config: %s", msg);
    }
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int set_str(char **field, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = strdup(s))) return MOQ_ERR_NOMEM;
    free(*field);
    *field = copy;
    return 0;
}

static void *field(struct moq_config *cfg, const struct opt *o)
{
    return (char *)cfg + o->off;
}

static void mark_set(struct moq_config *cfg, const struct opt *o)
{
    if (o->set_off >= 0) *(bool *)((char *)cfg + o->set_off) = true;
}

/* Index of the entry that owns o's field (aliases share it). */
static size_t canon(const struct opt *o)
{
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *c = &moq_config_opts[i];
        if (c->type == o->type && c->off == o->off && !(c->flags & OPT_ALIAS)) return i;
    }
    return (size_t)(o - moq_config_opts);
}

static void record(struct moq_config *cfg, const struct opt *o, const struct origin *from)
{
    size_t i = canon(o);
    cfg->origin[i].src = (uint8_t)from->src;
    cfg->origin[i].line = from->line;
    cfg->origin[i].col = from->col;
}

static const struct opt *find_key(const char *key)
{
    for (size_t i = 0; i < moq_config_nopts; i++)
        if (moq_config_opts[i].key && strcmp(moq_config_opts[i].key, key) == 0)
            return &moq_config_opts[i];
    return NULL;
}

static const struct opt *find_opt_by_field(size_t off, enum opt_type type)
{
    for (size_t i = 0; i < moq_config_nopts; i++)
        if (moq_config_opts[i].off == off && moq_config_opts[i].type == type)
            return &moq_config_opts[i];
    return NULL;
}

/* ---- value parsers ---------------------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *port)
{
    if (!*s || strlen(s) > 5) return MOQ_ERR_INVALID;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return MOQ_ERR_INVALID;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535) return MOQ_ERR_INVALID;
    *port = (uint16_t)v;
    return 0;
}

int moq_config_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *port;
    uint16_t p;
    struct sockaddr_storage tmp;
    if (!ss) ss = &tmp;
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host)) return MOQ_ERR_INVALID;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (strchr(host, '%') || inet_pton(AF_INET6, host, &a->sin6_addr) != 1 ||
            parse_port(port, &p))
            return MOQ_ERR_INVALID;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(p);
        if (len) *len = sizeof(*a);
        return 0;
    }
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host)) return MOQ_ERR_INVALID;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1 || parse_port(colon + 1, &p))
        return MOQ_ERR_INVALID;
    a->sin_family = AF_INET;
    a->sin_port = htons(p);
    if (len) *len = sizeof(*a);
    return 0;
}

/* hostname:port, for addresses resolved at bind time (e.g. fly-global-services:443). */
static bool valid_hostport(const char *s)
{
    if (moq_config_parse_addr(s, NULL, NULL) == 0) return true;
    const char *colon = strrchr(s, ':');
    uint16_t port;
    if (!colon || colon == s || colon - s > 253 || parse_port(colon + 1, &port)) return false;
    size_t label = 0;
    for (const char *p = s; p < colon; p++) {
        if (*p == '.') {
            if (label == 0) return false;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-') {
            if (++label > 63) return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

int moq_config_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"nanos", 1},
        {"nsec", 1},
        {"ns", 1},
        {"micros", 1000},
        {"usec", 1000},
        {"us", 1000},
        {"\xc2\xb5s", 1000},
        {"millis", 1000000},
        {"msec", 1000000},
        {"ms", 1000000},
        {"seconds", 1000000000},
        {"second", 1000000000},
        {"secs", 1000000000},
        {"sec", 1000000000},
        {"s", 1000000000},
        {"minutes", 60000000000},
        {"minute", 60000000000},
        {"mins", 60000000000},
        {"min", 60000000000},
        {"m", 60000000000},
        {"hours", 3600000000000},
        {"hour", 3600000000000},
        {"hrs", 3600000000000},
        {"hr", 3600000000000},
        {"h", 3600000000000},
        {"days", 86400000000000},
        {"day", 86400000000000},
        {"d", 86400000000000},
        {"weeks", 604800000000000},
        {"week", 604800000000000},
        {"w", 604800000000000},
        {"months", 2630016000000000},
        {"month", 2630016000000000},
        {"M", 2630016000000000},
        {"years", 31557600000000000},
        {"year", 31557600000000000},
        {"y", 31557600000000000},
    };
    const char *p = s;
    while (*p == ' ')
        p++;
    if (strcmp(p, "0") == 0) {
        *ms = 0;
        return 0;
    }
    uint64_t total = 0;
    int terms = 0;
    while (*p) {
        if (*p < '0' || *p > '9') return MOQ_ERR_INVALID;
        uint64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
                return MOQ_ERR_INVALID;
            p++;
        }
        while (*p == ' ')
            p++;
        const char *u = p;
        while (*p && !(*p >= '0' && *p <= '9') && *p != ' ')
            p++;
        size_t ulen = (size_t)(p - u);
        uint64_t mult = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0) {
                mult = units[i].ns;
                break;
            }
        if (!mult) return MOQ_ERR_INVALID;
        uint64_t part;
        if (__builtin_mul_overflow(n, mult, &part) || __builtin_add_overflow(total, part, &total))
            return MOQ_ERR_INVALID;
        terms++;
        while (*p == ' ')
            p++;
    }
    if (!terms) return MOQ_ERR_INVALID;
    *ms = total / 1000000 + (total % 1000000 ? 1 : 0);
    return 0;
}

uint64_t moq_config_total_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    uint64_t phys = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (f) {
        unsigned long long limit;
        if (fscanf(f, "%llu", &limit) == 1 && limit > 0 && (phys == 0 || limit < phys))
            phys = limit;
        fclose(f);
    }
    return phys;
}

unsigned moq_config_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

unsigned moq_config_workers(const struct moq_config *cfg)
{
    uint64_t n = cfg->server.workers ? cfg->server.workers : moq_config_cpus();
    return n > MOQ_CONFIG_MAX_WORKERS ? MOQ_CONFIG_MAX_WORKERS : (unsigned)n;
}

int moq_config_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *name;
        double mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1e3},
        {"kb", 1e3},
        {"ki", 1024.0},
        {"kib", 1024.0},
        {"m", 1e6},
        {"mb", 1e6},
        {"mi", 1048576.0},
        {"mib", 1048576.0},
        {"g", 1e9},
        {"gb", 1e9},
        {"gi", 1073741824.0},
        {"gib", 1073741824.0},
        {"t", 1e12},
        {"tb", 1e12},
        {"ti", 1099511627776.0},
        {"tib", 1099511627776.0},
        {"p", 1e15},
        {"pb", 1e15},
        {"pi", 1125899906842624.0},
        {"pib", 1125899906842624.0},
    };
    while (*s == ' ')
        s++;
    const char *p = s;
    while ((*p >= '0' && *p <= '9') || *p == '.')
        p++;
    if (p == s) return MOQ_ERR_INVALID;
    char num[64];
    if ((size_t)(p - s) >= sizeof(num)) return MOQ_ERR_INVALID;
    memcpy(num, s, (size_t)(p - s));
    num[p - s] = '\0';
    if (strchr(num, '.') != strrchr(num, '.') || num[0] == '.' || num[p - s - 1] == '.')
        return MOQ_ERR_INVALID;
    char *end;
    double v = strtod(num, &end);
    if (*end) return MOQ_ERR_INVALID;
    while (*p == ' ')
        p++;
    char unit[8];
    size_t ulen = strlen(p);
    while (ulen && p[ulen - 1] == ' ')
        ulen--;
    if (ulen == 1 && p[0] == '%') {
        if (!(v > 0 && v <= 100)) return MOQ_ERR_INVALID;
        *bytes = (uint64_t)((double)moq_config_total_memory() * v / 100.0);
        return 0;
    }
    if (ulen >= sizeof(unit)) return MOQ_ERR_INVALID;
    for (size_t i = 0; i < ulen; i++)
        unit[i] = (char)tolower((unsigned char)p[i]);
    unit[ulen] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(units[i].name, unit) != 0) continue;
        if (!strchr(num, '.') && units[i].mult == 1) {
            /* Plain byte counts keep full 64-bit precision. */
            errno = 0;
            unsigned long long n = strtoull(num, &end, 10);
            if (errno || *end) return MOQ_ERR_INVALID;
            *bytes = n;
            return 0;
        }
        double b = v * units[i].mult;
        if (!(b < 18446744073709551616.0)) return MOQ_ERR_INVALID;
        *bytes = (uint64_t)b;
        return 0;
    }
    return MOQ_ERR_INVALID;
}

static const char *const known_versions[] = {
    "moq-lite-01",      "moq-lite-02",      "moq-lite-03",      "moq-lite-04",
    "moq-lite-05",      "moq-lite-06-wip",  "moq-transport-14", "moq-transport-15",
    "moq-transport-16", "moq-transport-17", "moq-transport-18", "moq-transport-19",
    "moq-transport-20",
};

bool moq_config_version_supported(const char *name)
{
    for (size_t i = 0; i < sizeof(known_versions) / sizeof(known_versions[0]); i++)
        if (strcmp(known_versions[i], name) == 0) return true;
    return false;
}

static bool version_known(const char *name)
{
    for (size_t i = 0; i < sizeof(known_versions) / sizeof(known_versions[0]); i++)
        if (strcmp(known_versions[i], name) == 0) return true;
    return false;
}

/* Cluster peers: https://, moql:// or moqt://; a bare host[:port] means https://host[:port]/.
 * On success *norm is a new string. */
static int normalize_peer(const char *s, char **norm, char *msg, size_t msglen)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            snprintf(msg, msglen, "peer URL \"%s\" contains whitespace or control characters", s);
            return MOQ_ERR_INVALID;
        }
    const char *sep = strstr(s, "://");
    if (!sep) {
        if (!*s || strchr(s, '/') || strchr(s, '?')) {
            snprintf(msg, msglen,
                     "invalid cluster peer \"%s\": use a URL such as https://host:port/", s);
            return MOQ_ERR_INVALID;
        }
        size_t n = strlen(s) + 10;
        if (!(*norm = malloc(n))) return MOQ_ERR_NOMEM;
        snprintf(*norm, n, "https://%s/", s);
        return 0;
    }
    size_t slen = (size_t)(sep - s);
    if (!((slen == 5 && strncmp(s, "https", 5) == 0) || (slen == 4 && strncmp(s, "moql", 4) == 0) ||
          (slen == 4 && strncmp(s, "moqt", 4) == 0))) {
        snprintf(msg, msglen,
                 "unsupported scheme \"%.*s\" in cluster peer \"%s\" (use https://, moql:// or "
                 "moqt://)",
                 (int)(slen > 20 ? 20 : slen), s, s);
        return MOQ_ERR_INVALID;
    }
    const char *host = sep + 3;
    if (!*host || *host == '/' || *host == '?' || *host == ':') {
        snprintf(msg, msglen, "cluster peer \"%s\" has no host", s);
        return MOQ_ERR_INVALID;
    }
    return (*norm = strdup(s)) ? 0 : MOQ_ERR_NOMEM;
}

/* Whether a URL's query has a jwt parameter. */
static bool carries_token(const char *url)
{
    const char *q = strchr(url, '?');
    if (!q) return false;
    q++;
    size_t len = strcspn(q, "#");
    char v[2];
    int rc = moq_query_param(q, len, "jwt", v, sizeof(v));
    if (rc == MOQ_ERR_INVALID) /* the query does not decode: look for the name as written */
        return strncmp(q, "jwt=", 4) == 0 || memmem(q, len, "&jwt=", 5);
    return rc != MOQ_ERR_NOT_FOUND;
}

/* ---- setting values --------------------------------------------------------------------- */

/* Check and store one scalar given as text. On error, msg explains (without position). */
static int set_text(struct moq_config *cfg, const struct opt *o, const char *s, char *msg,
                    size_t msglen)
{
    void *f = field(cfg, o);
    uint64_t u;
    switch (o->type) {
    case T_STR:
        if (set_str(f, s)) return MOQ_ERR_NOMEM;
        break;
    case T_ADDR:
        if (moq_config_parse_addr(s, NULL, NULL)) {
            snprintf(msg, msglen,
                     "invalid socket address \"%s\" (expected IP:port, e.g. \"0.0.0.0:443\" or "
                     "\"[::]:443\")",
                     s);
            return MOQ_ERR_INVALID;
        }
        if (set_str(f, s)) return MOQ_ERR_NOMEM;
        break;
    case T_HOSTPORT:
        if (!valid_hostport(s)) {
            snprintf(msg, msglen,
                     "invalid address \"%s\" (expected IP:port or host:port, e.g. \"[::]:443\")",
                     s);
            return MOQ_ERR_INVALID;
        }
        if (set_str(f, s)) return MOQ_ERR_NOMEM;
        break;
    case T_BOOL:
        if (!strcasecmp(s, "true") || !strcmp(s, "1")) {
            *(bool *)f = true;
        } else if (!strcasecmp(s, "false") || !strcmp(s, "0")) {
            *(bool *)f = false;
        } else {
            snprintf(msg, msglen, "invalid boolean \"%s\" (expected true, false, 1 or 0)", s);
            return MOQ_ERR_INVALID;
        }
        break;
    case T_U64: {
        char *end;
        errno = 0;
        if (!*s || *s == '-' || *s == '+' || !isdigit((unsigned char)*s) ||
            ((u = strtoull(s, &end, 10)), errno || *end)) {
            snprintf(msg, msglen, "invalid number \"%s\" (expected a non-negative integer)", s);
            return MOQ_ERR_INVALID;
        }
        *(uint64_t *)f = u;
        break;
    }
    case T_DURATION:
        if (moq_config_parse_duration(s, &u)) {
            snprintf(msg, msglen,
                     "invalid duration \"%s\" (expected e.g. \"5s\", \"500ms\", \"1h 30m\" or "
                     "\"0\")",
                     s);
            return MOQ_ERR_INVALID;
        }
        *(uint64_t *)f = u;
        break;
    case T_SIZE:
        if (moq_config_parse_size(s, &u)) {
            snprintf(msg, msglen,
                     "invalid size \"%s\" (expected bytes, e.g. \"8GiB\", \"512MB\", "
                     "\"1073741824\", or a percentage of memory in (0, 100], e.g. \"75%%\")",
                     s);
            return MOQ_ERR_INVALID;
        }
        *(uint64_t *)f = u;
        break;
    case T_LEVEL: {
        int level = moq_log_level_parse(s);
        if (level <= 0) {
            snprintf(msg, msglen,
                     "invalid log level \"%s\" (expected error, warn, info, debug or trace)", s);
            return MOQ_ERR_INVALID;
        }
        *(enum moq_log_level *)f = (enum moq_log_level)level;
        break;
    }
    case T_CONGESTION:
        if (!strcasecmp(s, "loss")) {
            *(enum moq_congestion *)f = MOQ_CONGESTION_LOSS;
        } else if (!strcasecmp(s, "delay")) {
            *(enum moq_congestion *)f = MOQ_CONGESTION_DELAY;
        } else {
            snprintf(msg, msglen, "invalid congestion control \"%s\" (expected loss or delay)", s);
            return MOQ_ERR_INVALID;
        }
        break;
    case T_BACKEND:
        if (strcasecmp(s, "quinn") && strcasecmp(s, "quiche") && strcasecmp(s, "noq")) {
            snprintf(msg, msglen, "invalid QUIC backend \"%s\" (expected quinn, quiche or noq)", s);
            return MOQ_ERR_INVALID;
        }
        if (set_str(f, s)) return MOQ_ERR_NOMEM;
        break;
    case T_HEX: {
        size_t n = strlen(s);
        bool ok = n > 0 && n % 2 == 0;
        for (size_t i = 0; ok && i < n; i++)
            ok = isxdigit((unsigned char)s[i]);
        if (!ok) {
            snprintf(msg, msglen, "invalid hex string \"%s\"", s);
            return MOQ_ERR_INVALID;
        }
        if (set_str(f, s)) return MOQ_ERR_NOMEM;
        break;
    }
    case T_MESH:
        if (!strcasecmp(s, "true") || !strcmp(s, "1")) {
            cfg->cluster.mesh = true;
        } else if (!strcasecmp(s, "false") || !strcmp(s, "0")) {
            cfg->cluster.mesh = false;
        } else {
            /* Legacy: --cluster-mesh used to take this node's URL. */
            cfg->cluster.mesh = true;
            if (set_str(&cfg->staging.mesh_legacy, s)) return MOQ_ERR_NOMEM;
        }
        break;
    case T_ROOT:
        if (set_str(&cfg->staging.cluster_root, s)) return MOQ_ERR_NOMEM;
        break;
    case T_PUBLIC_API:
        if (set_str(&cfg->staging.public_api, s)) return MOQ_ERR_NOMEM;
        break;
    default:
        snprintf(msg, msglen, "internal: not a scalar option");
        return MOQ_ERR_INVALID;
    }
    mark_set(cfg, o);
    return 0;
}

/* Append one item to a list option. */
static int list_add(struct moq_config *cfg, const struct opt *o, const char *s, char *msg,
                    size_t msglen)
{
    moq_strlist *l = field(cfg, o);
    switch (o->type) {
    case T_URLS: {
        char *norm = NULL;
        int rc = normalize_peer(s, &norm, msg, msglen);
        if (rc) return rc;
        rc = moq_strlist_push(l, norm);
        free(norm);
        return rc;
    }
    case T_VERSIONS:
        if (!version_known(s)) {
            snprintf(msg, msglen,
                     "unknown version \"%s\" (this relay supports moq-lite-01 to moq-lite-05, "
                     "moq-lite-06-wip and moq-transport-14 to moq-transport-20)",
                     s);
            return MOQ_ERR_INVALID;
        }
        return moq_strlist_push(l, s);
    case T_INTLIST: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (!*s || !isdigit((unsigned char)*s) || *end || errno || v > UINT32_MAX) {
            snprintf(msg, msglen, "invalid id \"%s\" (expected a non-negative integer)", s);
            return MOQ_ERR_INVALID;
        }
        return moq_strlist_push(l, s);
    }
    case T_PUBLIC:
        cfg->auth.public_set = true;
        if (moq_strlist_push(&cfg->auth.public_subscribe, s) ||
            moq_strlist_push(&cfg->auth.public_publish, s))
            return MOQ_ERR_NOMEM;
        return 0;
    case T_PUBLIC_SUB:
        return moq_strlist_push(&cfg->staging.public_subscribe, s);
    case T_PUBLIC_PUB:
        return moq_strlist_push(&cfg->staging.public_publish, s);
    default:
        return moq_strlist_push(l, s);
    }
}

static bool is_list(enum opt_type t)
{
    return t == T_LIST || t == T_URLS || t == T_VERSIONS || t == T_INTLIST || t == T_PUBLIC ||
           t == T_PUBLIC_SUB || t == T_PUBLIC_PUB;
}

static void list_clear(struct moq_config *cfg, const struct opt *o)
{
    switch (o->type) {
    case T_PUBLIC:
        cfg->auth.public_set = false;
        moq_strlist_free(&cfg->auth.public_subscribe);
        moq_strlist_free(&cfg->auth.public_publish);
        free(cfg->auth.public_api);
        cfg->auth.public_api = NULL;
        break;
    case T_PUBLIC_SUB:
        moq_strlist_free(&cfg->staging.public_subscribe);
        break;
    case T_PUBLIC_PUB:
        moq_strlist_free(&cfg->staging.public_publish);
        break;
    default:
        moq_strlist_free(field(cfg, o));
        break;
    }
}

/* Set from text (env or flag). Lists are split on commas when split is true. */
static int set_from_text(struct moq_config *cfg, const struct opt *o, const char *s, bool append,
                         bool split, const struct origin *from, char *err, size_t errlen)
{
    char msg[320] = "";
    int rc = 0;
    if (is_list(o->type)) {
        if (!append) list_clear(cfg, o);
        const char *p = s;
        do {
            size_t n = split ? strcspn(p, ",") : strlen(p);
            char *item = strndup(p, n);
            if (!item) return MOQ_ERR_NOMEM;
            /* tolerate "a, b" */
            char *t = item;
            while (split && (*t == ' ' || *t == '\t'))
                t++;
            size_t tl = strlen(t);
            while (split && tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
                t[--tl] = '\0';
            bool prefix = o->type == T_PUBLIC || o->type == T_PUBLIC_SUB || o->type == T_PUBLIC_PUB;
            rc = *t || prefix || !split ? list_add(cfg, o, t, msg, sizeof(msg)) : 0;
            free(item);
            if (rc) break;
            p += n;
        } while (*p++ == ',' && split);
    } else {
        rc = set_text(cfg, o, s, msg, sizeof(msg));
    }
    if (rc == MOQ_ERR_NOMEM) return errf(err, errlen, "out of memory");
    if (rc) return fail_from(err, errlen, from, msg);
    record(cfg, o, from);
    return 0;
}

/* ---- the TOML file ---------------------------------------------------------------------- */

struct loader {
    struct moq_config *cfg;
    const char *name;
    char *err;
    size_t errlen;
    int seen[MOQ_CONFIG_MAX_OPTIONS]; /* line + 1 where this file set an option */
};

static int at(struct loader *ld, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int at(struct loader *ld, uint32_t line, uint32_t col, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return errf(ld->err, ld->errlen, "%s:%u:%u: %s", ld->name, line, col, msg);
}

static const char *expected_type(enum opt_type t)
{
    switch (t) {
    case T_BOOL:
        return "a boolean (true or false)";
    case T_U64:
        return "a non-negative integer";
    case T_SIZE:
        return "a size: an integer number of bytes or a string like \"8GiB\"";
    case T_DURATION:
        return "a duration string like \"5s\" or \"500ms\"";
    case T_LIST:
        return "a string or an array of strings";
    case T_URLS:
        return "a URL string or an array of URL strings";
    case T_VERSIONS:
        return "an array of version strings";
    case T_INTLIST:
        return "an array of integers";
    case T_PUBLIC:
        return "a string, an array of strings, or a table with subscribe/publish";
    case T_MESH:
        return "a boolean";
    case T_ADDR:
    case T_HOSTPORT:
        return "an address string like \"[::]:443\"";
    default:
        return "a string";
    }
}

static bool string_ok(struct loader *ld, const struct moq_toml_value *v, int *rc)
{
    if (strlen(v->u.str.ptr) != v->u.str.len) {
        *rc = at(ld, v->line, v->col, "strings may not contain NUL characters");
        return false;
    }
    return true;
}

static int load_list_items(struct loader *ld, const struct opt *o, const struct moq_toml_value *v,
                           const char *key)
{
    char msg[320] = "";
    int rc = 0;
    if (v->type == MOQ_TOML_STRING && o->type != T_INTLIST) {
        if (!string_ok(ld, v, &rc)) return rc;
        rc = list_add(ld->cfg, o, v->u.str.ptr, msg, sizeof(msg));
    } else if (v->type == MOQ_TOML_INTEGER && o->type == T_INTLIST) {
        char num[24];
        snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
        rc = list_add(ld->cfg, o, num, msg, sizeof(msg));
    } else if (v->type == MOQ_TOML_ARRAY) {
        for (size_t i = 0; i < moq_toml_array_len(v) && !rc; i++) {
            const struct moq_toml_value *item = moq_toml_array_at(v, i);
            bool ok = o->type == T_INTLIST ? item->type == MOQ_TOML_INTEGER
                                           : item->type == MOQ_TOML_STRING;
            if (!ok)
                return at(ld, item->line, item->col, "%s: array items must be %s, not %s", key,
                          o->type == T_INTLIST ? "integers" : "strings",
                          moq_toml_type_name(item->type));
            rc = load_list_items(ld, o, item, key);
        }
        return rc;
    } else {
        return at(ld, v->line, v->col, "%s must be %s, not %s", key, expected_type(o->type),
                  moq_toml_type_name(v->type));
    }
    if (rc == MOQ_ERR_NOMEM) return errf(ld->err, ld->errlen, "out of memory");
    if (rc) return at(ld, v->line, v->col, "%s: %s", key, msg);
    return 0;
}

static int load_public(struct loader *ld, const struct opt *o, const struct moq_toml_value *v)
{
    struct moq_config *cfg = ld->cfg;
    list_clear(cfg, o);
    if (v->type == MOQ_TOML_STRING || v->type == MOQ_TOML_ARRAY) {
        int rc = load_list_items(ld, o, v, "auth.public");
        /* An empty array means no public access, as upstream. */
        if (!rc && v->type == MOQ_TOML_ARRAY && moq_toml_array_len(v) == 0) list_clear(cfg, o);
        return rc;
    }
    if (v->type != MOQ_TOML_TABLE)
        return at(ld, v->line, v->col, "auth.public must be %s, not %s", expected_type(T_PUBLIC),
                  moq_toml_type_name(v->type));
    const struct opt *sub = find_opt_by_field(o->off, T_PUBLIC_SUB);
    const struct opt *pub = find_opt_by_field(o->off, T_PUBLIC_PUB);
    for (size_t i = 0; i < moq_toml_table_len(v); i++) {
        const struct moq_toml_kv *kv = moq_toml_table_at(v, i);
        moq_strlist *dst;
        if (!strcmp(kv->key, "subscribe")) {
            dst = &cfg->auth.public_subscribe;
        } else if (!strcmp(kv->key, "publish")) {
            dst = &cfg->auth.public_publish;
        } else if (!strcmp(kv->key, "api")) {
            if (kv->value->type != MOQ_TOML_STRING)
                return at(ld, kv->value->line, kv->value->col,
                          "auth.public.api must be a string, not %s",
                          moq_toml_type_name(kv->value->type));
            int rc = 0;
            if (!string_ok(ld, kv->value, &rc)) return rc;
            if (set_str(&cfg->auth.public_api, kv->value->u.str.ptr)) return MOQ_ERR_NOMEM;
            continue;
        } else {
            return at(ld, kv->line, kv->col,
                      "unknown key 'auth.public.%s' (expected subscribe, publish or api)", kv->key);
        }
        /* Load through the flag-only entries, then move into the final list. */
        const struct opt *via = dst == &cfg->auth.public_subscribe ? sub : pub;
        moq_strlist *stage = dst == &cfg->auth.public_subscribe ? &cfg->staging.public_subscribe
                                                                : &cfg->staging.public_publish;
        moq_strlist keep = *stage;
        *stage = (moq_strlist){0};
        char key[40];
        snprintf(key, sizeof(key), "auth.public.%s", kv->key);
        int rc = load_list_items(ld, via, kv->value, key);
        for (size_t k = 0; !rc && k < stage->len; k++)
            rc = moq_strlist_push(dst, stage->v[k]);
        moq_strlist_free(stage);
        *stage = keep;
        if (rc) return rc;
    }
    cfg->auth.public_set =
        cfg->auth.public_subscribe.len || cfg->auth.public_publish.len || cfg->auth.public_api;
    return 0;
}

static int load_value(struct loader *ld, const struct opt *o, const struct moq_toml_kv *kv)
{
    const struct moq_toml_value *v = kv->value;
    struct moq_config *cfg = ld->cfg;
    if (o->type == T_PUBLIC) return load_public(ld, o, v);
    if (is_list(o->type)) {
        list_clear(cfg, o);
        return load_list_items(ld, o, v, o->key);
    }
    char msg[320] = "";
    char num[24];
    const char *text = NULL;
    int rc = 0;
    switch (o->type) {
    case T_BOOL:
        if (v->type != MOQ_TOML_BOOL) break;
        *(bool *)field(cfg, o) = v->u.b;
        mark_set(cfg, o);
        return 0;
    case T_MESH:
        if (v->type == MOQ_TOML_BOOL) {
            cfg->cluster.mesh = v->u.b;
            return 0;
        }
        if (v->type == MOQ_TOML_STRING) text = v->u.str.ptr;
        break;
    case T_U64:
        if (v->type != MOQ_TOML_INTEGER) break;
        if (v->u.i < 0) return at(ld, v->line, v->col, "%s must not be negative", o->key);
        *(uint64_t *)field(cfg, o) = (uint64_t)v->u.i;
        mark_set(cfg, o);
        return 0;
    case T_SIZE:
        if (v->type == MOQ_TOML_INTEGER) {
            if (v->u.i < 0) return at(ld, v->line, v->col, "%s must not be negative", o->key);
            snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
            text = num;
        } else if (v->type == MOQ_TOML_STRING) {
            text = v->u.str.ptr;
        }
        break;
    default:
        if (v->type == MOQ_TOML_STRING) text = v->u.str.ptr;
        break;
    }
    if (!text)
        return at(ld, v->line, v->col, "%s must be %s, not %s", o->key, expected_type(o->type),
                  moq_toml_type_name(v->type));
    if (text != num && !string_ok(ld, v, &rc)) return rc;
    rc = set_text(cfg, o, text, msg, sizeof(msg));
    if (rc == MOQ_ERR_NOMEM) return errf(ld->err, ld->errlen, "out of memory");
    if (rc) return at(ld, v->line, v->col, "%s: %s", o->key, msg);
    return 0;
}

static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    unsigned d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            unsigned sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            unsigned del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* Is `path` a section (a table that holds options)? */
static bool is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const char *k = moq_config_opts[i].key;
        if (k && strncmp(k, path, n) == 0 && k[n] == '.') return true;
    }
    return false;
}

/* The closest known key (or section) in the same section, for "did you mean". */
static const char *suggest(const char *section, const char *key, char *out, size_t outlen)
{
    size_t n = section ? strlen(section) : 0;
    unsigned best_d = 3;
    bool found = false;
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const char *k = moq_config_opts[i].key;
        if (!k) continue;
        if (n && (strncmp(k, section, n) != 0 || k[n] != '.')) continue;
        const char *rest = n ? k + n + 1 : k;
        size_t fl = strcspn(rest, ".");
        if (fl >= outlen) continue;
        char first[64];
        if (fl >= sizeof(first)) continue;
        memcpy(first, rest, fl);
        first[fl] = '\0';
        unsigned d = edit_distance(first, key);
        size_t longest = fl > strlen(key) ? fl : strlen(key);
        if (d < best_d && d * 3 <= longest) {
            best_d = d;
            memcpy(out, first, fl + 1);
            found = true;
        }
    }
    return found ? out : NULL;
}

static int load_table(struct loader *ld, const struct moq_toml_value *t, const char *prefix)
{
    for (size_t i = 0; i < moq_toml_table_len(t); i++) {
        const struct moq_toml_kv *kv = moq_toml_table_at(t, i);
        char path[128];
        bool bad_key = strlen(kv->key) != kv->key_len || strchr(kv->key, '.') || kv->key_len > 48;
        snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
                 bad_key ? "?" : kv->key);
        const struct opt *o = bad_key ? NULL : find_key(path);
        if (o) {
            size_t c = canon(o);
            if (ld->seen[c])
                return at(ld, kv->line, kv->col,
                          "'%s' sets the same option as the key on line %d; set it once", path,
                          ld->seen[c]);
            int rc = load_value(ld, o, kv);
            if (rc) return rc;
            struct origin from = {SRC_FILE, ld->name, kv->line, kv->col, NULL};
            record(ld->cfg, o, &from);
            ld->seen[c] = (int)kv->line;
            continue;
        }
        if (!bad_key && is_section(path)) {
            if (kv->value->type != MOQ_TOML_TABLE)
                return at(ld, kv->line, kv->col, "'%s' must be a table, not %s", path,
                          moq_toml_type_name(kv->value->type));
            int rc = load_table(ld, kv->value, path);
            if (rc) return rc;
            continue;
        }
        char hint_buf[64];
        const char *hint = bad_key ? NULL : suggest(prefix, kv->key, hint_buf, sizeof(hint_buf));
        char shown[72];
        size_t k = 0;
        if (bad_key) shown[k++] = '"'; /* a quoted key holding '.' is one key, not a path */
        shown[k] = '\0';
        for (size_t j = 0; j < kv->key_len && k + 8 < sizeof(shown); j++) {
            unsigned char ch = (unsigned char)kv->key[j];
            k += (size_t)snprintf(shown + k, sizeof(shown) - k,
                                  ch >= 0x20 && ch < 0x7f ? "%c" : "\\x%02x", ch);
        }
        if (bad_key) snprintf(shown + k, sizeof(shown) - k, "\"");
        if (hint)
            return at(ld, kv->line, kv->col, "unknown key '%s%s%s' (did you mean '%s%s%s'?)",
                      prefix ? prefix : "", prefix ? "." : "", shown, prefix ? prefix : "",
                      prefix ? "." : "", hint);
        return at(ld, kv->line, kv->col, "unknown key '%s%s%s'", prefix ? prefix : "",
                  prefix ? "." : "", shown);
    }
    return 0;
}

int moq_config_load_string(struct moq_config *cfg, const char *name, const char *buf, size_t len,
                           char *err, size_t errlen)
{
    struct moq_toml_value *root = NULL;
    struct moq_toml_error terr;
    int rc = moq_toml_parse(buf, len, &root, &terr);
    if (rc == MOQ_ERR_NOMEM) return errf(err, errlen, "%s: out of memory", name);
    if (rc) return errf(err, errlen, "%s:%u:%u: %s", name, terr.line, terr.col, terr.msg);
    struct loader *ld = calloc(1, sizeof(*ld));
    if (!ld) {
        moq_toml_free(root);
        return errf(err, errlen, "%s: out of memory", name);
    }
    *ld = (struct loader){.cfg = cfg, .name = name, .err = err, .errlen = errlen};
    if (cfg->file != name && set_str(&cfg->file, name)) {
        free(ld);
        moq_toml_free(root);
        return errf(err, errlen, "%s: out of memory", name);
    }
    rc = load_table(ld, root, NULL);
    free(ld);
    moq_toml_free(root);
    cfg->staging.finalized = false;
    return rc;
}

int moq_config_load_file(struct moq_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(MAX_FILE_SIZE + 1);
    if (!buf) {
        fclose(f);
        return errf(err, errlen, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, MAX_FILE_SIZE + 1, f);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err) {
        free(buf);
        return errf(err, errlen, "%s: read error", path);
    }
    if (n > MAX_FILE_SIZE) {
        free(buf);
        return errf(err, errlen, "%s: file is larger than %u MiB", path, MAX_FILE_SIZE >> 20);
    }
    int rc = moq_config_load_string(cfg, path, buf, n, err, errlen);
    free(buf);
    return rc;
}

/* ---- environment ------------------------------------------------------------------------ */

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

int moq_config_apply_env(struct moq_config *cfg, char *const *envp, char *err, size_t errlen)
{
    if (!envp) envp = environ;
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (!o->env) continue;
        const char *v = env_get(envp, o->env);
        if (!v || (!*v && o->type != T_PUBLIC)) continue;
        struct origin from = {SRC_ENV, NULL, 0, 0, o->env};
        int rc = set_from_text(cfg, o, v, false, true, &from, err, errlen);
        if (rc) return rc;
    }
    cfg->staging.finalized = false;
    return 0;
}

/* ---- command line ----------------------------------------------------------------------- */

static const struct opt *find_flag(const char *name, size_t len, const char **spelling)
{
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        const char *names[2] = {o->flag, o->flag_alias};
        for (int k = 0; k < 2; k++)
            if (names[k] && strlen(names[k]) == len && strncmp(names[k], name, len) == 0) {
                *spelling = names[k];
                return o;
            }
    }
    return NULL;
}

static bool flag_is_bool(const struct opt *o)
{
    return o->type == T_BOOL || o->type == T_MESH;
}

/* Walk argv; calls apply for every flag when cfg_apply is set. */
static int walk_args(struct moq_config *cfg, int argc, char *const *argv,
                     enum moq_config_action *action, bool apply, char *err, size_t errlen)
{
    bool seen_flag[MOQ_CONFIG_MAX_OPTIONS] = {false};
    const char *file = NULL;
    bool only_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (file)
                return errf(err, errlen,
                            "unexpected argument \"%s\": only one config file may be given", a);
            file = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_positional = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (action && !apply) *action = MOQ_CONFIG_HELP;
            continue;
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            if (action && !apply && *action == MOQ_CONFIG_RUN) *action = MOQ_CONFIG_VERSION;
            continue;
        }
        if (!strcmp(a, "--help-man") || !strcmp(a, "--help-markdown")) {
            if (action && !apply)
                *action = strcmp(a, "--help-man") ? MOQ_CONFIG_HELP_MARKDOWN : MOQ_CONFIG_HELP_MAN;
            continue;
        }
        if (!strcmp(a, "--check")) {
            if (!apply) cfg->check = true;
            continue;
        }
        if (!strcmp(a, "--file") || !strncmp(a, "--file=", 7)) {
            /* upstream's packaged unit names the file this way */
            const char *path = a[6] == '=' ? a + 7 : NULL;
            if (!path && i + 1 >= argc) return errf(err, errlen, "--file: missing value");
            if (!path) path = argv[++i];
            if (file)
                return errf(err, errlen,
                            "unexpected argument \"%s\": only one config file may be given", path);
            file = path;
            continue;
        }
        if (a[1] != '-') return errf(err, errlen, "%s: unknown option (see --help)", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *spelling;
        const struct opt *o = find_flag(name, nlen, &spelling);
        if (!o) return errf(err, errlen, "--%.*s: unknown option (see --help)", (int)nlen, name);
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (flag_is_bool(o)) {
            value = "true";
        } else {
            if (i + 1 >= argc) return errf(err, errlen, "--%s: missing value", spelling);
            value = argv[++i];
        }
        if (!apply) continue;
        size_t c = canon(o);
        struct origin from = {SRC_FLAG, NULL, 0, 0, spelling};
        bool list = is_list(o->type);
        int rc = set_from_text(cfg, o, value, list && seen_flag[c], list && (o->flags & OPT_COMMA),
                               &from, err, errlen);
        if (rc) return rc;
        seen_flag[c] = true;
    }
    if (!apply && file && set_str(&cfg->file, file)) return errf(err, errlen, "out of memory");
    return 0;
}

int moq_config_scan_args(struct moq_config *cfg, int argc, char *const *argv,
                         enum moq_config_action *action, char *err, size_t errlen)
{
    *action = MOQ_CONFIG_RUN;
    return walk_args(cfg, argc, argv, action, false, err, errlen);
}

int moq_config_apply_args(struct moq_config *cfg, int argc, char *const *argv, char *err,
                          size_t errlen)
{
    cfg->staging.finalized = false;
    return walk_args(cfg, argc, argv, NULL, true, err, errlen);
}

/* ---- defaults, finalize, load ----------------------------------------------------------- */

static void quic_defaults(struct moq_config_quic *q)
{
    q->max_streams = 10000;
    q->gso = true;
    q->idle_timeout_ms = 30000;
    q->keep_alive_ms = 5000;
    q->ack_timeout_ms = 5000;
}

void moq_config_init(struct moq_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log.level = MOQ_LOG_INFO;
    cfg->log.repeat_interval_ms = MOQ_LOG_DEFAULT_REPEAT_INTERVAL_US / 1000;
    cfg->log.repeat_burst = MOQ_LOG_DEFAULT_REPEAT_BURST;
    cfg->server.bind = xstrdup(MOQ_CONFIG_DEFAULT_BIND);
    cfg->server.workers = 0; /* one per CPU */
    quic_defaults(&cfg->server.quic);
    quic_defaults(&cfg->client.quic);
    cfg->client.bind = xstrdup("[::]:0");
    cfg->client.failover_delay_ms = 250;
    cfg->client.resolution_delay_ms = 50;
    cfg->client.timeout_ms = 30000;
    cfg->client.backoff.initial_ms = 1000;
    cfg->client.backoff.multiplier = 2;
    cfg->client.backoff.max_ms = 5000;
    cfg->client.backoff.timeout_ms = 10000;
    cfg->client.websocket.enabled = true;
    cfg->client.websocket.delay_ms = 200;
    cfg->cluster.linger_ms = 5000;
    cfg->limits.max_sessions = 10000;
    cfg->limits.handshake_rate = 200;
    cfg->limits.half_open_per_address = 100;
    cfg->limits.setup_timeout_ms = 10000;
    cfg->limits.http_header_timeout_ms = 10000;
    cfg->limits.http_max_header_size = 16384;
    cfg->limits.http_max_connections = 10000;
    cfg->limits.ws_max_message = 16u << 20;
    cfg->limits.memory_trim_quiet_ms = 5000;
    cfg->web.ws = true;
    cfg->stats.prefix = xstrdup(".stats");
    cfg->stats.interval_s = 1;
}

void moq_config_free(struct moq_config *cfg)
{
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (o->flags & OPT_ALIAS) continue;
        switch (o->type) {
        case T_STR:
        case T_ADDR:
        case T_HOSTPORT:
        case T_BACKEND:
        case T_HEX:
            free(*(char **)field(cfg, o));
            break;
        case T_LIST:
        case T_URLS:
        case T_VERSIONS:
        case T_INTLIST:
            moq_strlist_free(field(cfg, o));
            break;
        default:
            break;
        }
    }
    moq_strlist_free(&cfg->auth.public_subscribe);
    moq_strlist_free(&cfg->auth.public_publish);
    free(cfg->auth.public_api);
    free(cfg->file);
    moq_strlist_free(&cfg->warnings);
    free(cfg->staging.cluster_root);
    free(cfg->staging.mesh_legacy);
    moq_strlist_free(&cfg->staging.public_subscribe);
    moq_strlist_free(&cfg->staging.public_publish);
    free(cfg->staging.public_api);
    memset(cfg, 0, sizeof(*cfg));
}

/* Where option `key` was set, for cross-field messages. */
static struct origin origin_of(const struct moq_config *cfg, const char *key)
{
    const struct opt *o = find_key(key);
    struct origin from = {SRC_DEFAULT, cfg->file ? cfg->file : "config", 0, 0, key};
    if (!o) return from;
    size_t c = canon(o);
    from.src = (enum src)cfg->origin[c].src;
    from.line = cfg->origin[c].line;
    from.col = cfg->origin[c].col;
    const struct opt *co = &moq_config_opts[c];
    from.name = from.src == SRC_ENV ? co->env : co->flag;
    return from;
}

const char *moq_config_where(const struct moq_config *cfg, const char *key, char *buf, size_t len)
{
    struct origin from = origin_of(cfg, key);
    switch (from.src) {
    case SRC_FILE:
        snprintf(buf, len, "%s:%u:%u", from.file, from.line, from.col);
        break;
    case SRC_ENV:
        snprintf(buf, len, "%s", from.name);
        break;
    case SRC_FLAG:
        snprintf(buf, len, "--%s", from.name);
        break;
    default:
        snprintf(buf, len, "%s (default)", key);
        break;
    }
    return buf;
}

__attribute__((format(printf, 5, 6))) static int fail_key(const struct moq_config *cfg,
                                                          const char *key, char *err, size_t errlen,
                                                          const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct origin from = origin_of(cfg, key);
    return fail_from(err, errlen, &from, msg);
}

static int check_pairs(const struct moq_config *cfg, const char *cert_key, const char *key_key,
                       const moq_strlist *cert, const moq_strlist *key, char *err, size_t errlen)
{
    if (cert->len == key->len) return 0;
    const char *blame = key->len < cert->len ? cert_key : key_key;
    if (!key->len)
        return fail_key(cfg, cert_key, err, errlen,
                        "%s is set but %s is not (each certificate needs its key)", cert_key,
                        key_key);
    if (!cert->len)
        return fail_key(cfg, key_key, err, errlen,
                        "%s is set but %s is not (each key needs its certificate)", key_key,
                        cert_key);
    return fail_key(cfg, blame, err, errlen,
                    "%s has %zu entries but %s has %zu; certificates and keys are paired by index",
                    cert_key, cert->len, key_key, key->len);
}

int moq_config_finalize(struct moq_config *cfg, char *err, size_t errlen)
{
    if (cfg->staging.finalized) return 0;
    int rc;
    if (cfg->staging.cluster_root) {
        char msg[320], *norm = NULL;
        rc = normalize_peer(cfg->staging.cluster_root, &norm, msg, sizeof(msg));
        if (rc == MOQ_ERR_NOMEM) return errf(err, errlen, "out of memory");
        if (rc) return fail_key(cfg, "cluster.root", err, errlen, "%s", msg);
        rc = moq_strlist_contains(&cfg->cluster.connect, norm)
                 ? 0
                 : moq_strlist_push(&cfg->cluster.connect, norm);
        free(norm);
        if (rc) return errf(err, errlen, "out of memory");
        free(cfg->staging.cluster_root);
        cfg->staging.cluster_root = NULL;
    }
    if (cfg->staging.mesh_legacy) {
        if (cfg->cluster.node && strcmp(cfg->cluster.node, cfg->staging.mesh_legacy) != 0)
            return fail_key(cfg, "cluster.mesh", err, errlen,
                            "the legacy form mesh = \"%s\" conflicts with cluster.node = \"%s\"; "
                            "set mesh = true",
                            cfg->staging.mesh_legacy, cfg->cluster.node);
        if (!cfg->cluster.node) {
            cfg->cluster.node = cfg->staging.mesh_legacy;
            cfg->staging.mesh_legacy = NULL;
        }
        free(cfg->staging.mesh_legacy);
        cfg->staging.mesh_legacy = NULL;
    }
    if (cfg->cluster.node && carries_token(cfg->cluster.node))
        return fail_key(cfg, "cluster.node", err, errlen,
                        "cluster.node must not carry a token (?jwt=): it is advertised to every "
                        "relay of the cluster; set cluster.token instead");
    struct moq_config_auth *a = &cfg->auth;
    for (size_t i = 0; i < cfg->staging.public_subscribe.len; i++)
        if (moq_strlist_push(&a->public_subscribe, cfg->staging.public_subscribe.v[i]))
            return errf(err, errlen, "out of memory");
    for (size_t i = 0; i < cfg->staging.public_publish.len; i++)
        if (moq_strlist_push(&a->public_publish, cfg->staging.public_publish.v[i]))
            return errf(err, errlen, "out of memory");
    moq_strlist_free(&cfg->staging.public_subscribe);
    moq_strlist_free(&cfg->staging.public_publish);
    if (cfg->staging.public_api) {
        if (a->public_api)
            return errf(err, errlen, "--auth-public-api cannot be combined with [auth.public] api");
        a->public_api = cfg->staging.public_api;
        cfg->staging.public_api = NULL;
    }
    a->public_set = a->public_subscribe.len || a->public_publish.len || a->public_api;

    if ((rc = check_pairs(cfg, "server.tls.cert", "server.tls.key", &cfg->server.tls.cert,
                          &cfg->server.tls.key, err, errlen)))
        return rc;
    if ((rc = check_pairs(cfg, "web.https.cert", "web.https.key", &cfg->web.https.cert,
                          &cfg->web.https.key, err, errlen)))
        return rc;
    if (!cfg->client.tls.cert != !cfg->client.tls.key)
        return fail_key(cfg, cfg->client.tls.cert ? "client.tls.cert" : "client.tls.key", err,
                        errlen, "client.tls.cert and client.tls.key must be set together");
    if (!cfg->auth.tls.cert != !cfg->auth.tls.key)
        return fail_key(cfg, cfg->auth.tls.cert ? "auth.tls.cert" : "auth.tls.key", err, errlen,
                        "auth.tls.cert and auth.tls.key must be set together");
    if (cfg->web.https.listen && !cfg->web.https.cert.len)
        return fail_key(cfg, "web.https.listen", err, errlen,
                        "web.https.listen needs web.https.cert and web.https.key");
    if (a->key && a->key_dir)
        return fail_key(cfg, "auth.key_dir", err, errlen,
                        "auth.key and auth.key_dir cannot both be set");
    if (a->api && (a->key || a->key_dir || a->keys.len || a->public_set))
        return fail_key(cfg, "auth.auth_api", err, errlen,
                        "auth.auth_api cannot be combined with auth.key, auth.key_dir or "
                        "auth.public");
    if (cfg->cluster.mesh && !cfg->cluster.node)
        return fail_key(cfg, "cluster.mesh", err, errlen,
                        "cluster.mesh needs cluster.node (this relay's own URL)");
    if (cfg->cluster.id_set && (cfg->cluster.id == 0 || cfg->cluster.id >= (UINT64_C(1) << 62)))
        return fail_key(cfg, "cluster.id", err, errlen,
                        "cluster.id must be between 1 and 2^62-1, got %llu",
                        (unsigned long long)cfg->cluster.id);
    if (cfg->cache.headroom_set && cfg->cache.headroom == 0)
        return fail_key(cfg, "cache.headroom", err, errlen, "cache.headroom must be non-zero");
    if (cfg->server.quic_lb_nonce_set && !cfg->server.quic_lb_id)
        return fail_key(cfg, "server.quic.quic_lb_nonce", err, errlen,
                        "server.quic.quic_lb_nonce needs server.quic.quic_lb_id");
    if (!cfg->server.bind || !*cfg->server.bind)
        return fail_key(cfg, "server.bind", err, errlen, "server.bind must not be empty");
    if (cfg->server.workers > MOQ_CONFIG_MAX_WORKERS)
        return fail_key(cfg, "server.workers", err, errlen,
                        "server.workers must be at most %d (0: one per CPU), got %llu",
                        MOQ_CONFIG_MAX_WORKERS, (unsigned long long)cfg->server.workers);
    cfg->staging.finalized = true;
    return 0;
}

int moq_config_load(struct moq_config *cfg, int argc, char *const *argv, char *const *envp,
                    enum moq_config_action *action, char *err, size_t errlen)
{
    moq_config_init(cfg);
    int rc = moq_config_scan_args(cfg, argc, argv, action, err, errlen);
    if (rc || *action != MOQ_CONFIG_RUN) return rc;
    if (cfg->file) {
        char *path = strdup(cfg->file);
        if (!path) return errf(err, errlen, "out of memory");
        rc = moq_config_load_file(cfg, path, err, errlen);
        free(path);
        if (rc) return rc;
    }
    if ((rc = moq_config_apply_env(cfg, envp, err, errlen))) return rc;
    if ((rc = moq_config_apply_args(cfg, argc, argv, err, errlen))) return rc;
    return moq_config_finalize(cfg, err, errlen);
}

/* ---- validation ------------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void warn(struct moq_config *cfg, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    moq_strlist_push(&cfg->warnings, msg);
}

static const char *opt_label(const struct opt *o, char *buf, size_t n)
{
    if (o->key)
        snprintf(buf, n, "%s", o->key);
    else
        snprintf(buf, n, "--%s", o->flag);
    return buf;
}

/* Timers that defeat each other: an idle timeout that drops healthy idle sessions before a
 * keep-alive can hold them, or an ack timeout the idle timeout always beats. */
static void warn_quic_timers(struct moq_config *cfg, const char *side,
                             const struct moq_config_quic *q)
{
    unsigned long long idle = q->idle_timeout_ms, keep = q->keep_alive_ms, ack = q->ack_timeout_ms;
    if (idle && keep && idle <= keep)
        warn(cfg,
             "%s.quic.idle_timeout (%llu ms) is not longer than %s.quic.keep_alive (%llu ms): "
             "healthy idle sessions time out before a keep-alive holds them; make the idle "
             "timeout longer than the keep-alive interval (upstream: 30s and 5s)",
             side, idle, side, keep);
    if (idle && ack && ack >= idle)
        warn(cfg,
             "%s.quic.ack_timeout (%llu ms) is not shorter than %s.quic.idle_timeout (%llu ms): "
             "a vanished peer is noticed only at the idle timeout",
             side, ack, side, idle);
}

int moq_config_validate(struct moq_config *cfg, char *err, size_t errlen)
{
    int rc = moq_config_finalize(cfg, err, errlen);
    if (rc) return rc;
    moq_strlist_free(&cfg->warnings);

    if (cfg->iroh.enabled)
        return fail_key(cfg, "iroh.enabled", err, errlen,
                        "iroh is not supported by this relay; set iroh.enabled = false or remove "
                        "the [iroh] section");
    if (cfg->auth.api)
        return fail_key(cfg, "auth.auth_api", err, errlen,
                        "the unified auth API (auth.auth_api) is not supported by this relay; "
                        "use auth.key or auth.key_dir");
    if (cfg->auth.public_api)
        return errf(err, errlen,
                    "auth.public.api (--auth-public-api) is not supported by this relay; list "
                    "the prefixes in [auth.public] subscribe/publish");

    const struct moq_config_server *s = &cfg->server;
    if (!s->tls.cert.len && !s->tls.generate.len)
        return errf(err, errlen,
                    "no TLS certificate for the QUIC listener %s: set [server.tls] cert and key "
                    "(--tls-cert/--tls-key), or generate = [\"localhost\"] (--tls-generate) for "
                    "development",
                    s->bind);

    const struct moq_config_auth *a = &cfg->auth;
    bool has_auth = a->key || a->keys.len || a->key_dir || a->public_set;
    if (!has_auth)
        return errf(err, errlen,
                    "no authentication configured, so nobody could connect: set [auth] key "
                    "(--auth-key) to verify tokens, and/or [auth] public = \"prefix\" "
                    "(--auth-public) for anonymous access (public = \"\" allows everything)");

    for (int side = 0; side < 2; side++) {
        const moq_strlist *v = side ? &cfg->client.version : &s->version;
        if (!v->len) continue;
        char bad[256] = "";
        size_t good = 0;
        for (size_t i = 0; i < v->len; i++) {
            if (moq_config_version_supported(v->v[i])) {
                good++;
            } else {
                size_t l = strlen(bad);
                snprintf(bad + l, sizeof(bad) - l, "%s%s", l ? ", " : "", v->v[i]);
            }
        }
        const char *key = side ? "client.version" : "server.version";
        if (!good)
            return fail_key(
                cfg, key, err, errlen,
                "none of the versions in %s is supported (unsupported: %s); this "
                "relay speaks moq-lite-01 to moq-lite-05, moq-lite-06-wip and moq-transport-14 "
                "to moq-transport-20",
                key, bad);
        if (*bad) warn(cfg, "%s: %s not supported by this relay and will not be offered", key, bad);
    }

    warn_quic_timers(cfg, "server", &s->quic);
    warn_quic_timers(cfg, "client", &cfg->client.quic);

    if (cfg->stats.enabled)
        warn(cfg, "stats.enabled = true: stats publishing is not implemented by this relay; no "
                  "stats broadcasts will be published");

    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (o->flags & OPT_ALIAS || cfg->origin[i].src == SRC_DEFAULT) continue;
        char label[64];
        if (o->flags & OPT_IGNORED && o->off == offsetof(struct moq_config, stats.enabled) &&
            cfg->stats.enabled)
            continue; /* warned above */
        if (o->flags & OPT_IGNORED)
            warn(cfg, "%s is accepted for compatibility but has no effect in this relay",
                 opt_label(o, label, sizeof(label)));
        else if (o->flags & OPT_DEPRECATED)
            warn(cfg, "%s is deprecated%s", opt_label(o, label, sizeof(label)),
                 o->type == T_ROOT ? "; use cluster.connect" : "");
    }
    return 0;
}

/* ---- logging ---------------------------------------------------------------------------- */

int moq_config_apply_log(const struct moq_config *cfg, char *const *envp, char *warn_msg,
                         size_t warnlen)
{
    if (!envp) envp = environ;
    moq_log_set_level(cfg->log.level);
    moq_log_set_repeat(cfg->log.repeat_interval_ms * 1000, cfg->log.repeat_burst);
    const char *name = "MOQ_LOG";
    const char *spec = env_get(envp, name);
    if (!spec || !*spec) {
        name = "RUST_LOG";
        spec = env_get(envp, name);
    }
    if (!spec || !*spec) return 0;
    if (moq_log_configure(spec) < 0) {
        if (warn_msg && warnlen)
            snprintf(warn_msg, warnlen, "%s=\"%s\" has an unknown level; ignored (using %s)", name,
                     spec, moq_log_level_name(cfg->log.level));
        return MOQ_ERR_INVALID;
    }
    return 0;
}

/* ---- help and reference ----------------------------------------------------------------- */

const char *moq_config_placeholder(const struct opt *o)
{
    switch (o->type) {
    case T_BOOL:
    case T_MESH:
        return "[=BOOL]";
    case T_U64:
        return " <N>";
    case T_DURATION:
        return " <DURATION>";
    case T_SIZE:
        return " <SIZE>";
    case T_ADDR:
    case T_HOSTPORT:
        return " <ADDR>";
    case T_LEVEL:
        return " <LEVEL>";
    case T_URLS:
    case T_ROOT:
    case T_PUBLIC_API:
        return " <URL>";
    case T_VERSIONS:
        return " <VERSION>";
    case T_PUBLIC:
    case T_PUBLIC_SUB:
    case T_PUBLIC_PUB:
        return " <PREFIX>";
    case T_CONGESTION:
        return " <loss|delay>";
    default:
        return " <VALUE>";
    }
}

void moq_config_print_help(FILE *out)
{
    fprintf(out,
            "moq-relay %s - Media over QUIC relay\n\n"
            "Usage: moq-relay [OPTIONS] [CONFIG.toml]\n\n%s\nOptions:\n",
            MOQ_VERSION, moq_config_help_intro);
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (!o->flag || (o->flags & (OPT_HIDDEN | OPT_ALIAS))) continue;
        char left[80];
        snprintf(left, sizeof(left), "--%s%s", o->flag, moq_config_placeholder(o));
        fprintf(out, "  %-42s %s", left, o->help);
        if (o->flags & OPT_IGNORED) fputs(" [accepted, no effect]", out);
        if (o->def) fprintf(out, " [default: %s]", o->def);
        if (o->env) fprintf(out, " [env: %s]", o->env);
        if (o->flag_alias) fprintf(out, " [alias: --%s]", o->flag_alias);
        fputc('\n', out);
    }
    for (size_t i = 0; i < moq_config_ncli_opts; i++) {
        const struct cli_opt *c = &moq_config_cli_opts[i];
        char left[80];
        snprintf(left, sizeof(left), "%s%s%s--%s%s", c->short_flag ? "-" : "",
                 c->short_flag ? c->short_flag : "", c->short_flag ? ", " : "", c->flag,
                 c->placeholder ? c->placeholder : "");
        fprintf(out, "  %-42s %s\n", left, c->help);
    }
}

static const char *type_doc(enum opt_type t)
{
    switch (t) {
    case T_STR:
        return "string";
    case T_ADDR:
        return "address";
    case T_HOSTPORT:
        return "address or host:port";
    case T_LIST:
        return "string or list";
    case T_URLS:
        return "URL or list";
    case T_VERSIONS:
        return "list of versions";
    case T_INTLIST:
        return "list of integers";
    case T_BOOL:
        return "bool";
    case T_U64:
        return "integer";
    case T_DURATION:
        return "duration";
    case T_SIZE:
        return "size";
    case T_LEVEL:
        return "level";
    case T_CONGESTION:
        return "\"loss\" or \"delay\"";
    case T_BACKEND:
        return "string";
    case T_HEX:
        return "hex string";
    case T_PUBLIC:
        return "string, list or table";
    case T_PUBLIC_SUB:
    case T_PUBLIC_PUB:
        return "prefix";
    case T_PUBLIC_API:
        return "URL";
    case T_MESH:
        return "bool";
    case T_ROOT:
        return "URL";
    }
    return "?";
}

void moq_config_print_reference(FILE *out)
{
    fprintf(out, "| key | type | default | flag | env | description |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (o->flags & OPT_ALIAS) continue;
        char key[64], def[48], flag[112], env[48];
        snprintf(key, sizeof(key), o->key ? "`%s`" : "(flag only)", o->key ? o->key : "");
        snprintf(def, sizeof(def), o->def ? "`%s`" : "unset", o->def ? o->def : "");
        if (o->flag_alias)
            snprintf(flag, sizeof(flag), "`--%s` (or `--%s`)", o->flag, o->flag_alias);
        else
            snprintf(flag, sizeof(flag), "%s%s%s", o->flag ? "`--" : "", o->flag ? o->flag : "",
                     o->flag ? "`" : "");
        snprintf(env, sizeof(env), "%s%s%s", o->env ? "`" : "", o->env ? o->env : "",
                 o->env ? "`" : "");
        if (o->flags & OPT_COMMA) {
            size_t fl = strlen(flag);
            snprintf(flag + fl, sizeof(flag) - fl, " (comma)");
        }
        fprintf(out, "| %s | %s | %s | %s | %s | %s%s%s |\n", key, type_doc(o->type), def, flag,
                env, o->help, (o->flags & OPT_IGNORED) ? " (accepted, ignored)" : "",
                (o->flags & OPT_DEPRECATED) ? " (deprecated)" : "");
    }
    for (size_t i = 0; i < moq_config_ncli_opts; i++) {
        const struct cli_opt *c = &moq_config_cli_opts[i];
        fprintf(out, "| (flag only) | %s | unset | `--%s`%s%s%s |  | %s |\n",
                c->placeholder ? "string" : "-", c->flag, c->short_flag ? " (or `-" : "",
                c->short_flag ? c->short_flag : "", c->short_flag ? "`)" : "", c->help);
    }
}
