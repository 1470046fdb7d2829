/* The relay's HTTP endpoints on top of the src/http route table. */
#include "web/web.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/log.h"
#include "util/url.h"

struct moq_web {
    moq_http_router *router;
    struct moq_web_hooks hooks;
    bool set_cors;
};

static const char text_plain[] = "text/plain; charset=utf-8";

static const char landing_page[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head><meta charset=\"utf-8\"><title>moq-relay</title></head>\n"
    "<body>\n"
    "<h1>moq-relay</h1>\n"
    "<p>A Media over QUIC relay. Connect with a MoQ client over WebTransport, QUIC or "
    "WebSocket; there is nothing to browse here.</p>\n"
    "<p><a href=\"https://moq.dev\">moq.dev</a></p>\n"
    "</body>\n"
    "</html>\n";

static int text(moq_http_response *resp, int status, const char *body, size_t len)
{
    moq_http_response_set_status(resp, status);
    int rc = moq_http_response_header(resp, "Content-Type", text_plain);
    if (rc == 0) rc = moq_http_response_body(resp, body, len);
    return rc;
}

static int serve_health(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    return text(resp, 200, "ok\n", 3);
}

static int serve_fingerprint(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_web *web = ctx;
    char fp[256];
    int rc = web->hooks.fingerprint(web->hooks.ctx, fp, sizeof(fp));
    if (rc == MOQ_ERR_NOT_FOUND) {
        static const char none[] = "no certificate\n";
        return text(resp, 404, none, sizeof(none) - 1);
    }
    if (rc < 0) return rc;
    fp[sizeof(fp) - 1] = 0;
    return text(resp, 200, fp, strlen(fp));
}

static int serve_announced(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_web *web = ctx;
    /* "/announced" has no prefix; "/announced/<prefix>" has everything after the slash. */
    const char *prefix = req->route_rest[0] == '/' ? req->route_rest + 1 : req->route_rest;
    return web->hooks.announced(web->hooks.ctx, prefix, req, resp);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int moq_web_parse_fetch(const char *rest, const char *query, size_t query_len, char *buf,
                        size_t cap, struct moq_web_fetch *f)
{
    size_t len = strlen(rest);
    const char *slash = strrchr(rest, '/');
    if (!slash || len + 2 > cap) return 400;
    size_t bl = (size_t)(slash - rest);
    memcpy(buf, rest, bl);
    buf[bl] = 0;
    memcpy(buf + bl + 1, slash + 1, len - bl - 1);
    buf[len] = 0;
    f->broadcast = buf;
    f->track = buf + bl + 1;
    f->latest = true;
    f->group = 0;
    char group[32];
    int rc = moq_query_param(query, query_len, "group", group, sizeof(group));
    if (rc == MOQ_ERR_NOT_FOUND) return 0;
    if (rc < 0) return 400;
    if (!strcmp(group, "latest")) return 0;
    if (!parse_u64(group, &f->group)) return 400;
    f->latest = false;
    return 0;
}

static int serve_fetch(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_web *web = ctx;
    size_t cap = strlen(req->route_rest) + 2;
    char *buf = malloc(cap);
    if (!buf) return MOQ_ERR_NOMEM;
    struct moq_web_fetch f;
    int rc;
    if (moq_web_parse_fetch(req->route_rest, req->query, req->query_len, buf, cap, &f) != 0) {
        moq_http_response_set_status(resp, 400);
        rc = 0;
    } else {
        rc = web->hooks.fetch(web->hooks.ctx, &f, req, resp);
    }
    free(buf);
    return rc;
}

static int serve_metrics(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_web *web = ctx;
    return web->hooks.metrics(web->hooks.ctx, req, resp);
}

static int serve_landing(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_http_response_set_status(resp, 404);
    int rc = moq_http_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    if (rc == 0) rc = moq_http_response_body(resp, landing_page, sizeof(landing_page) - 1);
    return rc;
}

moq_web *moq_web_new(moq_http_router *router, const struct moq_web_hooks *hooks)
{
    moq_web *web = calloc(1, sizeof(*web));
    if (!web) return NULL;
    web->router = router;
    if (hooks) web->hooks = *hooks;
    const unsigned get = MOQ_HTTP_GET;
    int rc = moq_http_route(router, get, "/health", MOQ_HTTP_EXACT, 0, serve_health, web);
    if (!rc && web->hooks.fingerprint)
        rc = moq_http_route(router, get, "/certificate.sha256", MOQ_HTTP_EXACT, 0,
                            serve_fingerprint, web);
    if (!rc && web->hooks.announced) {
        rc = moq_http_route(router, get, "/announced", MOQ_HTTP_EXACT, 0, serve_announced, web);
        if (!rc)
            rc = moq_http_route(router, get, "/announced/", MOQ_HTTP_PREFIX, 0, serve_announced,
                                web);
    }
    if (!rc && web->hooks.fetch)
        rc = moq_http_route(router, get, "/fetch/", MOQ_HTTP_PREFIX, 0, serve_fetch, web);
    if (!rc && web->hooks.metrics)
        rc = moq_http_route(router, get, "/metrics", MOQ_HTTP_EXACT, 0, serve_metrics, web);
    if (!rc) rc = moq_http_router_set_cors(router, "GET");
    if (!rc) web->set_cors = true;
    if (rc < 0) {
        moq_error("web", "cannot register HTTP routes: %s", moq_strerror(rc));
        moq_web_free(web);
        return NULL;
    }
    moq_http_router_set_fallback(router, serve_landing, web);
    return web;
}

void moq_web_free(moq_web *web)
{
    if (!web) return;
    moq_http_router_remove(web->router, web);
    if (web->set_cors) moq_http_router_set_cors(web->router, NULL);
    free(web);
}
