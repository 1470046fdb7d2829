/* Read-side helpers over a parsed request: header lookup, token lists, query parameters. */
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "util/err.h"

const char *moq_http_header(const moq_http_request *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct moq_http_header *h = &req->headers[i];
        if (h->name_len == nl && !strncasecmp(h->name, name, nl)) return h->value;
    }
    return NULL;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool list_has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(v[end - 1]))
            end--;
        if (end - start == tl && !strncasecmp(v + start, token, tl)) return true;
    }
    return false;
}

bool moq_http_header_has_token(const moq_http_request *req, const char *name, const char *token)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct moq_http_header *h = &req->headers[i];
        if (h->name_len == nl && !strncasecmp(h->name, name, nl) &&
            list_has_token(h->value, h->value_len, token))
            return true;
    }
    return false;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Form-decode s[0..len) into out; returns the length or a negative error. */
static int form_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (len - i < 3) return MOQ_ERR_INVALID;
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return MOQ_ERR_INVALID;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= cap) return MOQ_ERR_TOO_LARGE;
        out[o++] = c;
    }
    if (!cap) return MOQ_ERR_TOO_LARGE;
    out[o] = 0;
    return (int)o;
}

int moq_http_query_param(const char *query, size_t query_len, const char *name, char *out,
                         size_t cap)
{
    size_t i = 0;
    char key[256];
    while (i < query_len) {
        size_t start = i;
        while (i < query_len && query[i] != '&')
            i++;
        size_t end = i++;
        const char *eq = memchr(query + start, '=', end - start);
        size_t klen = eq ? (size_t)(eq - (query + start)) : end - start;
        if (!klen) continue;
        int kn = form_decode(query + start, klen, key, sizeof(key));
        if (kn < 0 || strcmp(key, name) != 0) continue;
        const char *v = eq ? eq + 1 : query + end;
        return form_decode(v, (size_t)(query + end - v), out, cap);
    }
    return MOQ_ERR_NOT_FOUND;
}
