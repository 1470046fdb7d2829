#include "util/url.h"
#include "util/err.h"

#include <ctype.h>
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

int moq_percent_decode(const char *src, size_t len, char *out, size_t outlen, int plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (len - i < 3) return MOQ_ERR_INVALID;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0) return MOQ_ERR_INVALID;
            c = (char)(hi * 16 + lo);
            if (c == '\0') return MOQ_ERR_INVALID;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= outlen) return MOQ_ERR_TOO_LARGE;
        out[o++] = c;
    }
    if (outlen == 0) return MOQ_ERR_TOO_LARGE;
    out[o] = '\0';
    return (int)o;
}

int moq_query_param(const char *query, const char *name, char *out, size_t outlen)
{
    size_t name_len = strlen(name);
    const char *p = query;
    while (*p) {
        size_t item_len = strcspn(p, "&");
        const char *eq = memchr(p, '=', item_len);
        size_t key_len = eq ? (size_t)(eq - p) : item_len;
        char key[128];
        if (key_len < sizeof(key) &&
            moq_percent_decode(p, key_len, key, sizeof(key), 1) == (int)name_len &&
            memcmp(key, name, name_len) == 0) {
            if (!eq) return moq_percent_decode("", 0, out, outlen, 1);
            return moq_percent_decode(eq + 1, item_len - key_len - 1, out, outlen, 1);
        }
        p += item_len;
        if (*p == '&') p++;
    }
    return MOQ_ERR_NOT_FOUND;
}
