#include "util/url.h"
#include "util/err.h"

#include <ctype.h>
#include <http_parser.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static const char *default_port(const char *scheme)
{
    if (strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0) return "80";
    return "443";
}

void moq_url_free(moq_url *u)
{
    free(u->scheme);
    free(u->host);
    free(u->port);
    free(u->path);
    free(u->query);
    memset(u, 0, sizeof(*u));
}

static int valid_port(const char *p, size_t n)
{
    if (n == 0 || n > 5) return 0;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return 0;
        v = v * 10 + (p[i] - '0');
    }
    return v > 0 && v <= 65535;
}

int moq_url_parse(const char *text, moq_url *u)
{
    memset(u, 0, sizeof(*u));
    const char *sep = strstr(text, "://");
    if (!sep || sep == text) return MOQ_ERR_INVALID;
    for (const char *p = text; p < sep; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return MOQ_ERR_INVALID;
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *rest = auth + auth_len;
    if (auth_len == 0 || memchr(auth, '@', auth_len)) return MOQ_ERR_INVALID;

    const char *host = auth, *port = NULL;
    size_t host_len, port_len = 0;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', auth_len);
        if (!close) return MOQ_ERR_INVALID;
        host = auth + 1;
        host_len = (size_t)(close - host);
        const char *after = close + 1;
        if (after < auth + auth_len) {
            if (*after != ':') return MOQ_ERR_INVALID;
            port = after + 1;
            port_len = (size_t)(auth + auth_len - port);
        }
    } else {
        const char *colon = memchr(auth, ':', auth_len);
        host_len = colon ? (size_t)(colon - auth) : auth_len;
        if (colon) {
            port = colon + 1;
            port_len = (size_t)(auth + auth_len - port);
        }
    }
    if (host_len == 0 || (port && !valid_port(port, port_len))) return MOQ_ERR_INVALID;

    const char *path = rest;
    size_t path_len = strcspn(path, "?#");
    const char *query = path + path_len;
    size_t query_len = 0;
    if (*query == '?') {
        query++;
        query_len = strcspn(query, "#");
    } else {
        query = "";
    }

    u->scheme = dup_range(text, (size_t)(sep - text));
    u->host = dup_range(host, host_len);
    u->port = port ? dup_range(port, port_len) : NULL;
    u->path = path_len ? dup_range(path, path_len) : strdup("/");
    u->query = dup_range(query, query_len);
    if (!u->scheme || !u->host || !u->path || !u->query || (port && !u->port)) {
        moq_url_free(u);
        return MOQ_ERR_NOMEM;
    }
    for (char *p = u->scheme; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!u->port && !(u->port = strdup(default_port(u->scheme)))) {
        moq_url_free(u);
        return MOQ_ERR_NOMEM;
    }
    return 0;
}

int moq_url_authority(const moq_url *u, char *out, size_t outlen)
{
    int n = strchr(u->host, ':') ? snprintf(out, outlen, "[%s]:%s", u->host, u->port)
                                 : snprintf(out, outlen, "%s:%s", u->host, u->port);
    if (n < 0 || (size_t)n >= outlen) return MOQ_ERR_TOO_LARGE;
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The decoder itself. out NULL: check only, and count the decoded length. */
static int decode(const char *src, size_t len, char *out, size_t outlen, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (len - i < 3) return MOQ_ERR_INVALID;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0) return MOQ_ERR_INVALID;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') return MOQ_ERR_INVALID;
        if (out) {
            if (o + 1 >= outlen) return MOQ_ERR_TOO_LARGE;
            out[o] = c;
        }
        o++;
    }
    if (out) {
        if (outlen == 0) return MOQ_ERR_TOO_LARGE;
        out[o] = '\0';
    }
    return o > INT_MAX ? MOQ_ERR_TOO_LARGE : (int)o;
}

int moq_percent_decode(const char *src, size_t len, char *out, size_t outlen, int plus_is_space)
{
    return decode(src, len, out, outlen, plus_is_space);
}

int moq_target_split(const char *target, size_t len, moq_target *out)
{
    memset(out, 0, sizeof(*out));
    out->path = out->query = "";
    if (len > UINT16_MAX) return MOQ_ERR_INVALID;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(target, len, 0, &u) != 0) return MOQ_ERR_INVALID;
    if (u.field_set & (1u << UF_PATH)) {
        out->path = target + u.field_data[UF_PATH].off;
        out->path_len = u.field_data[UF_PATH].len;
    }
    if (u.field_set & (1u << UF_QUERY)) {
        out->query = target + u.field_data[UF_QUERY].off;
        out->query_len = u.field_data[UF_QUERY].len;
        out->has_query = 1;
    }
    if (decode(out->path, out->path_len, NULL, 0, 0) < 0 ||
        moq_query_validate(out->query, out->query_len) < 0)
        return MOQ_ERR_INVALID;
    return 0;
}

/* One name=value pair of a query: name [np, np + nl), value [vp, vp + vl). */
struct query_pair {
    const char *np, *vp;
    size_t nl, vl;
};

/* The pair starting at *pos (advanced past it and its '&'). Returns 0 at the end. */
static int next_pair(const char *query, size_t len, size_t *pos, struct query_pair *pair)
{
    if (*pos >= len) return 0;
    const char *p = query + *pos;
    const char *amp = memchr(p, '&', len - *pos);
    size_t item = amp ? (size_t)(amp - p) : len - *pos;
    const char *eq = memchr(p, '=', item);
    pair->np = p;
    pair->nl = eq ? (size_t)(eq - p) : item;
    pair->vp = eq ? eq + 1 : p + item;
    pair->vl = eq ? item - pair->nl - 1 : 0;
    *pos += item + 1;
    return 1;
}

int moq_query_validate(const char *query, size_t len)
{
    size_t pos = 0;
    struct query_pair pr;
    while (next_pair(query, len, &pos, &pr)) {
        if (decode(pr.np, pr.nl, NULL, 0, 1) < 0 || decode(pr.vp, pr.vl, NULL, 0, 1) < 0)
            return MOQ_ERR_INVALID;
    }
    return 0;
}

static int name_is(const struct query_pair *pr, const char *name, size_t name_len)
{
    char key[128] = "";
    int n = name_len < sizeof(key) ? decode(pr->np, pr->nl, key, sizeof(key), 1) : -1;
    return n == (int)name_len && memcmp(key, name, name_len) == 0;
}

int moq_query_param(const char *query, size_t len, const char *name, char *out, size_t outlen)
{
    if (moq_query_validate(query, len) < 0) return MOQ_ERR_INVALID;
    size_t name_len = strlen(name);
    size_t pos = 0;
    struct query_pair pr, found = {0};
    int have = 0;
    while (next_pair(query, len, &pos, &pr)) {
        if (!name_is(&pr, name, name_len)) continue;
        if (!have || pr.vl) found = pr;
        have = 1;
    }
    if (!have) return MOQ_ERR_NOT_FOUND;
    return decode(found.vp, found.vl, out, outlen, 1);
}
