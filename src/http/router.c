/* Route table: exact and prefix routes by method, fallback, CORS, 404/405. Sans-I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "util/err.h"

struct route {
    unsigned methods;
    char *path;
    size_t path_len;
    enum moq_http_match match;
    size_t max_body;
    moq_http_handler fn;
    void *ctx;
};

struct moq_http_router {
    struct route *routes;
    size_t n, cap;
    moq_http_handler fallback;
    void *fallback_ctx;
    char *cors_methods;
};

moq_http_router *moq_http_router_new(void)
{
    return calloc(1, sizeof(moq_http_router));
}

void moq_http_router_free(moq_http_router *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        free(r->routes[i].path);
    free(r->routes);
    free(r->cors_methods);
    free(r);
}

int moq_http_route(moq_http_router *r, unsigned methods, const char *path,
                   enum moq_http_match match, size_t max_body, moq_http_handler fn, void *ctx)
{
    if (!path || !fn || !methods) return MOQ_ERR_INVALID;
    for (size_t i = 0; i < r->n; i++) {
        struct route *x = &r->routes[i];
        if (x->match == match && !strcmp(x->path, path) && (x->methods & methods))
            return MOQ_ERR_EXISTS;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct route *v = realloc(r->routes, cap * sizeof(*v));
        if (!v) return MOQ_ERR_NOMEM;
        r->routes = v;
        r->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy) return MOQ_ERR_NOMEM;
    r->routes[r->n++] = (struct route){methods, copy, strlen(path), match, max_body, fn, ctx};
    return 0;
}

void moq_http_router_remove(moq_http_router *r, void *ctx)
{
    size_t o = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->routes[i].ctx == ctx) {
            free(r->routes[i].path);
        } else {
            r->routes[o++] = r->routes[i];
        }
    }
    r->n = o;
    if (r->fallback_ctx == ctx) {
        r->fallback = NULL;
        r->fallback_ctx = NULL;
    }
}

void moq_http_router_set_fallback(moq_http_router *r, moq_http_handler fn, void *ctx)
{
    r->fallback = fn;
    r->fallback_ctx = ctx;
}

int moq_http_router_set_cors(moq_http_router *r, const char *allow_methods)
{
    char *copy = NULL;
    if (allow_methods && !(copy = strdup(allow_methods))) return MOQ_ERR_NOMEM;
    free(r->cors_methods);
    r->cors_methods = copy;
    return 0;
}

/* How well a route matches a path: 0 = no match; exact beats any prefix; longer prefixes
 * beat shorter ones. */
static size_t match_rank(const struct route *x, const char *path, size_t len)
{
    if (x->match == MOQ_HTTP_EXACT)
        return x->path_len == len && !memcmp(x->path, path, len) ? SIZE_MAX : 0;
    return len >= x->path_len && !memcmp(x->path, path, x->path_len) ? x->path_len + 1 : 0;
}

static unsigned effective_methods(unsigned m)
{
    return (m & MOQ_HTTP_GET) ? (m | MOQ_HTTP_HEAD) : m;
}

/* The best-ranked routes for path: the one for `method` (or NULL), and the union of the
 * methods the best-ranked routes take. */
static const struct route *lookup(const moq_http_router *r, unsigned method, const char *path,
                                  unsigned *allowed)
{
    size_t len = strlen(path), best = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t rank = match_rank(&r->routes[i], path, len);
        if (rank > best) best = rank;
    }
    *allowed = 0;
    const struct route *found = NULL;
    if (!best) return NULL;
    for (size_t i = 0; i < r->n; i++) {
        const struct route *x = &r->routes[i];
        if (match_rank(x, path, len) != best) continue;
        *allowed |= effective_methods(x->methods);
        if (!found && (effective_methods(x->methods) & method)) found = x;
    }
    return found;
}

bool moq_http_router_lookup(const moq_http_router *r, unsigned method, const char *path,
                            size_t *max_body)
{
    unsigned allowed;
    const struct route *x = lookup(r, method, path, &allowed);
    *max_body = x ? x->max_body : 0;
    return x != NULL;
}

static void format_allow(unsigned allowed, char *out, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{MOQ_HTTP_GET, "GET"},         {MOQ_HTTP_HEAD, "HEAD"},
                 {MOQ_HTTP_POST, "POST"},       {MOQ_HTTP_PUT, "PUT"},
                 {MOQ_HTTP_DELETE, "DELETE"},   {MOQ_HTTP_PATCH, "PATCH"},
                 {MOQ_HTTP_OPTIONS, "OPTIONS"}, {MOQ_HTTP_TRACE, "TRACE"}};
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(allowed & names[i].bit)) continue;
        int n = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", names[i].name);
        if (n < 0 || (size_t)n >= cap - o) break;
        o += (size_t)n;
    }
}

int moq_http_router_dispatch(moq_http_router *r, moq_http_request *req, moq_http_response *resp)
{
    resp->cors = r->cors_methods != NULL;
    if (r->cors_methods && req->method == MOQ_HTTP_OPTIONS) {
        moq_http_response_set_status(resp, 200);
        moq_http_response_header(resp, "Access-Control-Allow-Methods", r->cors_methods);
        return 0;
    }
    unsigned allowed;
    const struct route *x = lookup(r, req->method, req->path, &allowed);
    moq_http_handler fn = NULL;
    void *ctx = NULL;
    if (x) {
        fn = x->fn;
        ctx = x->ctx;
        req->route_rest = req->path + (x->match == MOQ_HTTP_PREFIX ? x->path_len : req->path_len);
    } else if (allowed) {
        char allow[128];
        format_allow(allowed, allow, sizeof(allow));
        moq_http_response_set_status(resp, 405);
        moq_http_response_header(resp, "Allow", allow);
        return 0;
    } else if (r->fallback) {
        fn = r->fallback;
        ctx = r->fallback_ctx;
        req->route_rest = req->path;
    } else {
        moq_http_response_set_status(resp, 404);
        return 0;
    }
    int rc = fn(ctx, req, resp);
    if (rc < 0) {
        bool cors = resp->cors;
        moq_http_response_clear(resp);
        resp->cors = cors;
        moq_http_response_set_status(resp, 500);
        return 0;
    }
    return rc;
}
