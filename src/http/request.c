/* Read-side helpers over a parsed request: header lookup and token lists. */
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
