/* effective.c - the settings a configuration resolves to, as `moq-relay --check` prints
 * them (see config.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/schema.h"
#include "util/log.h"

#define REDACTED "<redacted>"

static const void *field_of(const struct moq_config *cfg, const struct opt *o)
{
    return (const char *)cfg + o->off;
}

/* Append to a fixed buffer, truncating. */
struct text {
    char buf[2048];
    size_t len;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    if (t->len >= sizeof(t->buf) - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n < sizeof(t->buf) - t->len ? (size_t)n : sizeof(t->buf) - t->len - 1;
}

static void put_string(struct text *t, const char *s)
{
    put(t, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            put(t, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            put(t, "\\u%04x", (unsigned)(unsigned char)*s);
        else
            put(t, "%c", *s);
    }
    put(t, "\"");
}

static void put_list(struct text *t, const moq_strlist *l, bool numbers)
{
    put(t, "[");
    for (size_t i = 0; i < l->len; i++) {
        if (i) put(t, ", ");
        if (numbers)
            put(t, "%s", l->v[i]);
        else
            put_string(t, l->v[i]);
    }
    put(t, "]");
}

static void put_duration(struct text *t, uint64_t ms)
{
    if (ms && ms % 1000 == 0)
        put(t, "\"%llus\"", (unsigned long long)(ms / 1000));
    else
        put(t, "\"%llums\"", (unsigned long long)ms);
}

static bool is_unset_scalar(const struct moq_config *cfg, const struct opt *o)
{
    return o->set_off >= 0 && !*(const bool *)((const char *)cfg + o->set_off);
}

/* The value of o in TOML syntax; false when the option has no value to show. */
static bool format_value(const struct moq_config *cfg, const struct opt *o, struct text *t)
{
    const void *f = field_of(cfg, o);
    switch (o->type) {
    case T_STR:
    case T_ADDR:
    case T_HOSTPORT:
    case T_BACKEND:
    case T_HEX: {
        const char *s = *(char *const *)f;
        if (!s) return false;
        bool secret = !strcmp(o->key, "iroh.secret") ||
                      (!strcmp(o->key, "cluster.token") && access(s, F_OK) != 0);
        if (secret)
            put(t, "\"%s\"", REDACTED);
        else
            put_string(t, s);
        return true;
    }
    case T_LIST:
    case T_URLS:
    case T_VERSIONS:
    case T_INTLIST: {
        const moq_strlist *l = f;
        if (!l->len && !o->def) return false;
        put_list(t, l, o->type == T_INTLIST);
        return true;
    }
    case T_BOOL:
        if (is_unset_scalar(cfg, o) && !o->def) return false;
        put(t, "%s", *(const bool *)f ? "true" : "false");
        return true;
    case T_MESH:
        put(t, "%s", cfg->cluster.mesh ? "true" : "false");
        return true;
    case T_U64:
    case T_SIZE:
        if (is_unset_scalar(cfg, o) && !o->def) return false;
        put(t, "%llu", (unsigned long long)*(const uint64_t *)f);
        return true;
    case T_DURATION:
        if (is_unset_scalar(cfg, o) && !o->def) return false;
        put_duration(t, *(const uint64_t *)f);
        return true;
    case T_LEVEL: {
        put(t, "\"");
        for (const char *n = moq_log_level_name(*(const enum moq_log_level *)f); *n; n++)
            put(t, "%c", tolower((unsigned char)*n));
        put(t, "\"");
        return true;
    }
    case T_CONGESTION:
        if (is_unset_scalar(cfg, o) && !o->def) return false;
        put(t, "\"%s\"",
            *(const enum moq_congestion *)f == MOQ_CONGESTION_DELAY ? "delay" : "loss");
        return true;
    default: /* legacy spellings folded into other options by finalize */
        return false;
    }
}

static void put_source(const struct moq_config *cfg, size_t i, struct text *t)
{
    const struct opt *o = &moq_config_opts[i];
    switch ((enum src)cfg->origin[i].src) {
    case SRC_FILE:
        put(t, "%s:%u:%u", cfg->file ? cfg->file : "config", cfg->origin[i].line,
            cfg->origin[i].col);
        break;
    case SRC_ENV:
        put(t, "%s", o->env);
        break;
    case SRC_FLAG:
        put(t, "--%s", o->flag);
        break;
    default:
        put(t, "default");
        break;
    }
}

static void emit(FILE *out, struct text *t)
{
    t->len = moq_log_redact(t->buf, t->len, sizeof(t->buf) - 1);
    t->buf[t->len] = '\0';
    fprintf(out, "%s\n", t->buf);
}

/* auth.public resolves to two lists (and the flag-only publish/subscribe prefixes). */
static void print_public(const struct moq_config *cfg, size_t i, FILE *out)
{
    const struct {
        const char *key;
        const moq_strlist *l;
    } parts[] = {{"auth.public.subscribe", &cfg->auth.public_subscribe},
                 {"auth.public.publish", &cfg->auth.public_publish}};
    for (size_t p = 0; p < 2; p++) {
        struct text t = {.len = 0};
        put(&t, "%s = ", parts[p].key);
        put_list(&t, parts[p].l, false);
        put(&t, "  # ");
        put_source(cfg, i, &t);
        emit(out, &t);
    }
}

void moq_config_print_effective(const struct moq_config *cfg, FILE *out)
{
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (!o->key || (o->flags & OPT_ALIAS)) continue;
        if (o->type == T_PUBLIC) {
            if (cfg->auth.public_set) print_public(cfg, i, out);
            continue;
        }
        struct text t = {.len = 0};
        put(&t, "%s = ", o->key);
        if (!format_value(cfg, o, &t)) continue;
        put(&t, "  # ");
        put_source(cfg, i, &t);
        if (o->flags & OPT_IGNORED) put(&t, " (accepted, no effect)");
        emit(out, &t);
    }
}
