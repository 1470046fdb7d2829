/*
 * http_test_server: the HTTP server and web routes on ephemeral loopback ports, for
 * tests/integration/test_http.sh. Prints "http=<port> https=<port> dual=<port>" on one line,
 * then serves until SIGTERM/SIGINT, then frees everything (so LeakSanitizer checks shutdown)
 * and exits 0 if every TLS credential reference was released.
 *
 * Options: --cert F --key F (enables HTTPS), --fingerprint HEX, --header-timeout-ms N,
 * --idle-timeout-ms N, --write-timeout-ms N, --max-conns N, --ws-max-message N,
 * --max-queued N, --ws-low-water N, --ws-ping-interval-ms N, --ws-idle-timeout-ms N.
 *
 * Extra routes besides src/web: POST /echo (body up to 64 KiB echoed), GET /async (answers
 * after 20 ms), GET /stream (three chunks, 10 ms apart), GET /flood?n=N (N x 64 KiB
 * streamed at once), GET /slices (body from shared
 * chunks), GET /fail (handler error -> 500). WebSocket on any path: /reject -> 403,
 * /unauthorized -> 401; subprotocols "qmux-01.moq-lite-05", "echo" in server preference;
 * offers that match nothing -> 400; no offer -> accepted without a subprotocol. Messages
 * are echoed (binary via slices); text commands: "close" (server closes 1000 "bye"),
 * "flood N" (queues N 64 KiB messages at once), "flow N" (sends N 64 KiB messages,
 * pacing on the writable event, then text "done N").
 */
#include <ev.h>
#include <gnutls/gnutls.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/ws.h"
#include "util/err.h"
#include "util/log.h"
#include "util/url.h"
#include "web/web.h"

struct creds {
    gnutls_certificate_credentials_t cred;
    int refs;
};

static void *creds_acquire(void *ctx, gnutls_certificate_credentials_t *out)
{
    struct creds *c = ctx;
    c->refs++;
    *out = c->cred;
    return c;
}

static void creds_release(void *ctx, void *handle)
{
    struct creds *c = ctx;
    c->refs--;
}

static const char *fingerprint_value =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static int hook_fingerprint(void *ctx, char *out, size_t cap)
{
    snprintf(out, cap, "%s", fingerprint_value);
    return 0;
}

static int hook_announced(void *ctx, const char *prefix, const moq_http_request *req,
                          moq_http_response *resp)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "prefix=%s", prefix);
    moq_http_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    return moq_http_response_body(resp, body, (size_t)n);
}

static int hook_fetch(void *ctx, const struct moq_web_fetch *f, const moq_http_request *req,
                      moq_http_response *resp)
{
    char body[512];
    int n = f->latest ? snprintf(body, sizeof(body), "broadcast=%s track=%s group=latest",
                                 f->broadcast, f->track)
                      : snprintf(body, sizeof(body), "broadcast=%s track=%s group=%llu",
                                 f->broadcast, f->track, (unsigned long long)f->group);
    return moq_http_response_body(resp, body, (size_t)n);
}

static int route_echo(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_http_response_header(resp, "Content-Type", "application/octet-stream");
    return moq_http_response_body(resp, req->body, req->body_len);
}

static int route_fail(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_http_response_body(resp, "discarded", 9);
    return MOQ_ERR_INVALID;
}

static int route_slices(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_chunk *c = moq_chunk_copy("0123456789", 10);
    if (!c) return MOQ_ERR_NOMEM;
    moq_slice v[3] = {{c, 0, 3}, {c, 3, 4}, {c, 7, 3}};
    int rc = moq_http_response_body_slices(resp, v, 3);
    moq_chunk_unref(c);
    return rc;
}

/* Asynchronous responses, completed by a timer. */
struct pending {
    ev_timer t;
    moq_http_response *resp;
    int steps; /* chunks left for /stream; 0 for /async */
    bool stream;
};

static struct ev_loop *loop;

static void pending_abort(void *arg)
{
    struct pending *p = arg;
    ev_timer_stop(loop, &p->t);
    free(p);
}

static void pending_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    struct pending *p = w->data;
    if (!p->stream) {
        moq_http_response_body(p->resp, "async done\n", 11);
        moq_http_response_send(p->resp);
        free(p);
        return;
    }
    char line[32];
    int n = snprintf(line, sizeof(line), "chunk %d\n", 3 - p->steps);
    moq_http_response_stream_write_bytes(p->resp, line, (size_t)n);
    if (--p->steps == 0) {
        moq_http_response_stream_end(p->resp);
        free(p);
        return;
    }
    ev_timer_set(&p->t, 0.01, 0.);
    ev_timer_start(l, &p->t);
}

static int start_pending(moq_http_response *resp, bool stream)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) return MOQ_ERR_NOMEM;
    p->resp = resp;
    p->stream = stream;
    p->steps = stream ? 3 : 0;
    ev_timer_init(&p->t, pending_cb, stream ? 0.01 : 0.02, 0.);
    p->t.data = p;
    ev_timer_start(loop, &p->t);
    moq_http_response_on_abort(resp, pending_abort, p);
    if (stream) {
        moq_http_response_header(resp, "Content-Type", "text/plain");
        moq_http_response_stream_start(resp);
    }
    return MOQ_HTTP_ASYNC;
}

/* GET /flood?n=N: stream N x 64 KiB at once; a client that does not read gets dropped
 * once max_queued_bytes is crossed. */
static int route_flood(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    char n_str[16];
    int n = moq_query_param(req->query, req->query_len, "n", n_str, sizeof(n_str)) > 0 ? atoi(n_str)
                                                                                       : 1;
    static uint8_t payload[65536];
    moq_http_response_stream_start(resp);
    for (int i = 0; i < n; i++)
        if (moq_http_response_stream_write_bytes(resp, payload, sizeof(payload)) < 0)
            return MOQ_HTTP_ASYNC; /* dropped: the connection goes away */
    moq_http_response_stream_end(resp);
    return MOQ_HTTP_ASYNC;
}

static int route_async(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    return start_pending(resp, false);
}

static int route_stream(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    return start_pending(resp, true);
}

/* --- WebSocket echo ---------------------------------------------------------------------- */

struct ws_app {
    int flow_left;
    int flow_total;
};

#define BIG 65536

static void ws_flow(struct ws_app *a, moq_ws *ws, size_t low_water)
{
    static uint8_t payload[BIG];
    while (a->flow_left > 0 && moq_ws_queued(ws) < low_water) {
        if (moq_ws_send(ws, true, payload, sizeof(payload)) < 0) return;
        a->flow_left--;
    }
    if (a->flow_left == 0) {
        char done[32];
        int n = snprintf(done, sizeof(done), "done %d", a->flow_total);
        moq_ws_send(ws, false, done, (size_t)n);
        a->flow_left = -1;
    }
}

static size_t low_water = 256 * 1024;

static void ws_opened(void *app, moq_ws *ws) {}

static void ws_message(void *app, moq_ws *ws, bool binary, const uint8_t *data, size_t len)
{
    struct ws_app *a = app;
    if (binary) {
        /* Echo without copying: the bytes go into a chunk shared by two slices. */
        moq_chunk *c = moq_chunk_copy(data, len);
        if (!c) return;
        moq_slice v[2] = {{c, 0, len / 2}, {c, len / 2, len - len / 2}};
        moq_ws_send_slices(ws, v, 2);
        moq_chunk_unref(c);
        return;
    }
    char cmd[64];
    size_t n = len < sizeof(cmd) - 1 ? len : sizeof(cmd) - 1;
    memcpy(cmd, data, n);
    cmd[n] = 0;
    int count;
    if (!strcmp(cmd, "close")) {
        moq_ws_close(ws, MOQ_WS_NORMAL, "bye");
    } else if (sscanf(cmd, "flood %d", &count) == 1) {
        static uint8_t payload[BIG];
        for (int i = 0; i < count; i++)
            if (moq_ws_send(ws, true, payload, sizeof(payload)) < 0) break;
    } else if (sscanf(cmd, "flow %d", &count) == 1) {
        a->flow_left = a->flow_total = count;
        ws_flow(a, ws, low_water);
    } else {
        moq_ws_send(ws, false, data, len);
    }
}

static void ws_writable(void *app, moq_ws *ws)
{
    struct ws_app *a = app;
    if (a->flow_left > 0) ws_flow(a, ws, low_water);
}

static void ws_closed(void *app, moq_ws *ws, uint16_t code, const char *reason)
{
    fprintf(stderr, "ws closed %u '%s'\n", code, reason);
    free(app);
}

static const struct moq_ws_events ws_events = {
    .opened = ws_opened, .message = ws_message, .writable = ws_writable, .closed = ws_closed};

static int ws_upgrade(void *ctx, const struct moq_ws_upgrade *up, struct moq_ws_accept *acc)
{
    const char *path = up->req->path;
    if (!strcmp(path, "/reject")) return 403;
    if (!strcmp(path, "/unauthorized")) return 401;
    static const char *const supported[] = {"qmux-01.moq-lite-05", "echo"};
    int i = moq_ws_select_protocol(up->offers, up->n_offers, supported, 2);
    if (up->n_offers && i < 0) return 400;
    struct ws_app *a = calloc(1, sizeof(*a));
    if (!a) return 500;
    acc->protocol = i >= 0 ? up->offers[i] : NULL;
    acc->events = &ws_events;
    acc->app = a;
    return 0;
}

static void on_signal(struct ev_loop *l, ev_signal *w, int revents)
{
    ev_break(l, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    struct moq_http_config cfg;
    moq_http_config_default(&cfg);
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        unsigned long n = strtoul(v, NULL, 10);
        if (!strcmp(k, "--cert"))
            cert = v;
        else if (!strcmp(k, "--key"))
            key = v;
        else if (!strcmp(k, "--fingerprint"))
            fingerprint_value = v;
        else if (!strcmp(k, "--header-timeout-ms"))
            cfg.header_timeout_ms = (uint32_t)n;
        else if (!strcmp(k, "--idle-timeout-ms"))
            cfg.idle_timeout_ms = (uint32_t)n;
        else if (!strcmp(k, "--write-timeout-ms"))
            cfg.write_timeout_ms = (uint32_t)n;
        else if (!strcmp(k, "--max-conns"))
            cfg.max_conns = n;
        else if (!strcmp(k, "--ws-max-message"))
            cfg.ws_max_message = n;
        else if (!strcmp(k, "--max-queued"))
            cfg.max_queued_bytes = n;
        else if (!strcmp(k, "--ws-low-water"))
            cfg.ws_low_water = low_water = n;
        else if (!strcmp(k, "--ws-ping-interval-ms"))
            cfg.ws_ping_interval_ms = (uint32_t)n;
        else if (!strcmp(k, "--ws-idle-timeout-ms"))
            cfg.ws_idle_timeout_ms = (uint32_t)n;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    const char *log = getenv("MOQ_LOG");
    moq_log_configure(log ? log : "warn");

    loop = ev_loop_new(EVFLAG_AUTO);
    moq_http_server *srv = moq_http_server_new(loop, &cfg);
    moq_http_router *r = moq_http_server_router(srv);
    struct moq_web_hooks hooks = {
        .fingerprint = hook_fingerprint, .announced = hook_announced, .fetch = hook_fetch};
    moq_web *web = moq_web_new(r, &hooks);
    if (!web) return 1;
    moq_http_route(r, MOQ_HTTP_POST, "/echo", MOQ_HTTP_EXACT, 65536, route_echo, NULL);
    moq_http_route(r, MOQ_HTTP_GET, "/async", MOQ_HTTP_EXACT, 0, route_async, NULL);
    moq_http_route(r, MOQ_HTTP_GET, "/stream", MOQ_HTTP_EXACT, 0, route_stream, NULL);
    moq_http_route(r, MOQ_HTTP_GET, "/slices", MOQ_HTTP_EXACT, 0, route_slices, NULL);
    moq_http_route(r, MOQ_HTTP_GET, "/flood", MOQ_HTTP_EXACT, 0, route_flood, NULL);
    moq_http_route(r, MOQ_HTTP_GET, "/fail", MOQ_HTTP_EXACT, 0, route_fail, NULL);
    moq_http_server_set_ws(srv, ws_upgrade, NULL);

    uint16_t http_port = 0, https_port = 0, dual_port = 0;
    if (moq_http_server_listen(srv, "127.0.0.1:0", NULL, &http_port) < 0) return 1;
    if (moq_http_server_listen(srv, "[::]:0", NULL, &dual_port) < 0) dual_port = 0;

    struct creds creds = {0};
    if (cert && key) {
        if (gnutls_certificate_allocate_credentials(&creds.cred) < 0 ||
            gnutls_certificate_set_x509_key_file(creds.cred, cert, key, GNUTLS_X509_FMT_PEM) < 0) {
            fprintf(stderr, "cannot load %s / %s\n", cert, key);
            return 1;
        }
        struct moq_http_tls tls = {creds_acquire, creds_release, &creds, NULL};
        if (moq_http_server_listen(srv, "127.0.0.1:0", &tls, &https_port) < 0) return 1;
    }
    printf("http=%u https=%u dual=%u\n", http_port, https_port, dual_port);
    fflush(stdout);

    ev_signal sig_term, sig_int;
    ev_signal_init(&sig_term, on_signal, SIGTERM);
    ev_signal_init(&sig_int, on_signal, SIGINT);
    ev_signal_start(loop, &sig_term);
    ev_signal_start(loop, &sig_int);
    ev_run(loop, 0);

    moq_web_free(web);
    moq_http_server_free(srv);
    ev_signal_stop(loop, &sig_term);
    ev_signal_stop(loop, &sig_int);
    ev_loop_destroy(loop);
    if (creds.cred) gnutls_certificate_free_credentials(creds.cred);
    if (creds.refs != 0) {
        fprintf(stderr, "TLS credential references leaked: %d\n", creds.refs);
        return 1;
    }
    if (moq_chunk_live_count() != 0) {
        fprintf(stderr, "chunks leaked: %zu\n", moq_chunk_live_count());
        return 1;
    }
    fprintf(stderr, "clean shutdown\n");
    return 0;
}
