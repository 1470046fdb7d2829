/*
 * Fuzz target: the sans-I/O request layer of src/http. The first input byte picks how the
 * rest is cut into feeds; every complete request is then run through the route table (with
 * the src/web endpoints), the WebSocket handshake helpers, query decoding and response
 * serialisation, and the parser is reset for the next pipelined request, as the server
 * does. Everything is freed before returning.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/internal.h"
#include "http/parser.h"
#include "http/ws.h"
#include "util/err.h"
#include "util/url.h"
#include "web/web.h"

static int fingerprint(void *ctx, char *out, size_t cap)
{
    strncpy(out, "00", cap);
    return 0;
}

static int announced(void *ctx, const char *prefix, const moq_http_request *req,
                     moq_http_response *resp)
{
    return moq_http_response_body(resp, prefix, strlen(prefix));
}

static int fetch(void *ctx, const struct moq_web_fetch *f, const moq_http_request *req,
                 moq_http_response *resp)
{
    moq_http_response_body(resp, f->broadcast, strlen(f->broadcast));
    return moq_http_response_body(resp, f->track, strlen(f->track));
}

static int echo(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    return moq_http_response_body(resp, req->body, req->body_len);
}

static int on_headers(void *ctx, moq_http_parser *p, moq_http_request *req)
{
    size_t max;
    if (moq_http_router_lookup(ctx, req->method, req->path, &max))
        moq_http_parser_set_max_body(p, max);
    else
        moq_http_parser_discard_body(p, 512);
    return 0;
}

static void exercise(moq_http_router *r, moq_http_request *req)
{
    (void)moq_http_header(req, "host");
    (void)moq_http_header_has_token(req, "connection", "upgrade");
    char value[64];
    /* The parser let the query through, so every parameter of it decodes. */
    if (moq_query_param(req->query, req->query_len, "jwt", value, sizeof(value)) == MOQ_ERR_INVALID)
        abort();
    if (moq_ws_is_upgrade(req) && moq_ws_check_handshake(req) == 0) {
        const char *offers[MOQ_WS_MAX_OFFERS];
        char storage[1024];
        int n = moq_ws_parse_offers(req, offers, MOQ_WS_MAX_OFFERS, storage, sizeof(storage));
        static const char *const supported[] = {"qmux-01.moq-lite-05", "webtransport"};
        if (n >= 0) (void)moq_ws_select_protocol(offers, (size_t)n, supported, 2);
        const char *key = moq_http_header(req, "sec-websocket-key");
        char accept[29];
        if (moq_ws_accept_key(key, strlen(key), accept) != 0) abort();
    }
    moq_http_response *resp = moq_http_response_new();
    if (!resp) return;
    int rc = moq_http_router_dispatch(r, req, resp);
    if (rc != 0) abort(); /* no asynchronous handler is registered here */
    moq_buf head;
    moq_buf_init(&head);
    moq_http_response_head(resp, 0, req->keep_alive, req->http_minor == 0, MOQ_HTTP_FRAME_LENGTH,
                           &head);
    moq_buf_free(&head);
    moq_http_response_free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    data++;
    size--;

    moq_http_router *r = moq_http_router_new();
    struct moq_web_hooks hooks = {
        .fingerprint = fingerprint, .announced = announced, .fetch = fetch};
    moq_web *web = moq_web_new(r, &hooks);
    moq_http_route(r, MOQ_HTTP_POST | MOQ_HTTP_PUT, "/echo", MOQ_HTTP_EXACT, 256, echo, NULL);
    struct moq_http_parser_limits lim = {1024, 16, 0};
    moq_http_parser *p = moq_http_parser_new(&lim, on_headers, r);

    size_t off = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        size_t used;
        int rc = moq_http_parser_feed(p, data + off, n, &used);
        if (used > n) abort();
        off += used;
        if (rc == MOQ_HTTP_PARSE_ERROR) {
            int status = moq_http_parser_error_status(p);
            if (status < 400 || status > 599) abort();
            break;
        }
        if (rc == MOQ_HTTP_PARSE_REQUEST) {
            moq_http_request *req = moq_http_parser_request(p);
            if (strlen(req->path) != req->path_len) abort();
            exercise(r, req);
            moq_http_parser_reset(p);
        } else if (used != n) {
            abort(); /* "need more" must have consumed everything */
        }
    }

    /* Path decoding on raw bytes as well. */
    char *out = malloc(size + 1);
    if (out) {
        int n = moq_http_decode_path((const char *)data, size, out);
        if (n >= 0 && (size_t)n > size) abort();
        free(out);
    }
    moq_http_parser_free(p);
    moq_web_free(web);
    moq_http_router_free(r);
    return 0;
}
