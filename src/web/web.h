/*
 * web.h - the relay's HTTP endpoints, registered on an HTTP route table (src/http).
 *
 * Served like upstream moq-relay (rs/moq-relay/src/web.rs):
 *   GET /health              200 "ok\n" (text/plain; charset=utf-8)
 *   GET /certificate.sha256  200 lower-case hex SHA-256 of the QUIC leaf certificate, no
 *                            trailing newline (text/plain; charset=utf-8); 404
 *                            "no certificate\n" when the hook reports none
 *   GET /announced[/prefix]  hook `announced` (text list, one path per line upstream)
 *   GET /fetch/<broadcast>/<track>[?group=N|latest]   hook `fetch`; 400 when the path has
 *                            no broadcast part or group is neither a number nor "latest"
 *   GET /metrics             hook `metrics`
 *   anything else            404 with a small HTML page for browsers
 * A route whose hook is NULL is not registered (so it answers 404). Every answer carries
 * `Access-Control-Allow-Origin: *`, and OPTIONS preflights get 200 with
 * `Access-Control-Allow-Methods: GET`, like upstream's CORS layer. GET routes also answer
 * HEAD; other methods get 405 with Allow.
 *
 * Paths reach the hooks percent-decoded once, with "." and ".." segments, control
 * characters and invalid UTF-8 already refused by src/http (400); nothing else is
 * normalised.
 *
 * Ownership: moq_web holds copies of the hooks struct; the hooks' ctx belongs to the caller.
 * moq_web_free() removes the routes it added; free it before the router (or server).
 * Hooks may return MOQ_HTTP_ASYNC and complete the response later (see http.h).
 */
#ifndef MOQ_WEB_WEB_H
#define MOQ_WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

typedef struct moq_web moq_web;

/* Length of a hex SHA-256 fingerprint, without the NUL. */
#define MOQ_WEB_FINGERPRINT_LEN 64

struct moq_web_fetch {
    const char *broadcast; /* path before the last '/' */
    const char *track;     /* last path segment */
    bool latest;           /* no group given, or group=latest */
    uint64_t group;        /* when !latest */
};

struct moq_web_hooks {
    void *ctx;
    /* Write the current fingerprint (NUL-terminated) into out. Return 0, or
     * MOQ_ERR_NOT_FOUND when the relay has no certificate. */
    int (*fingerprint)(void *ctx, char *out, size_t cap);
    /* The handlers below fill resp like any moq_http_handler (0, MOQ_HTTP_ASYNC, or a
     * negative error for a 500). The request gives access to the query (?jwt=...). */
    int (*announced)(void *ctx, const char *prefix, const moq_http_request *req,
                     moq_http_response *resp);
    int (*fetch)(void *ctx, const struct moq_web_fetch *f, const moq_http_request *req,
                 moq_http_response *resp);
    int (*metrics)(void *ctx, const moq_http_request *req, moq_http_response *resp);
};

/* Register the endpoints on router. Returns NULL on allocation failure or when a route
 * is already taken. */
moq_web *moq_web_new(moq_http_router *router, const struct moq_web_hooks *hooks);
void moq_web_free(moq_web *web);

/* Parse the part of a /fetch path after "/fetch/" and its query. Returns 0 or 400. The
 * broadcast/track strings are written into buf (cap bytes) and f points into it. */
int moq_web_parse_fetch(const char *rest, const char *query, size_t query_len, char *buf,
                        size_t cap, struct moq_web_fetch *f);

#endif
