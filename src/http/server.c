/* HTTP/1.1 server: listeners, connections, TLS, request processing, timeouts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/internal.h"
#include "tls/tls.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define READ_CHUNK     16384
#define IOV_BATCH      64
#define TLS_BATCH      (64 * 1024)
#define ACCEPT_BATCH   64
#define OFFERS_STORAGE 4096
/* Connections the kernel queues before accept: a burst of thousands of WebSocket upgrades
 * waits there. The kernel caps it at net.core.somaxconn (4096 by default). */
#define MOQ_HTTP_LISTEN_BACKLOG 65535

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_deferred(moq_defer *d);
static void conn_http_work(struct moq_http_conn *c);
static void conn_free(struct moq_http_conn *c, uint16_t ws_code);

/* --- configuration -------------------------------------------------------------------- */

void moq_http_config_default(struct moq_http_config *cfg)
{
    *cfg = (struct moq_http_config){
        .max_conns = 10000,
        .max_header_bytes = 16384,
        .max_headers = 100,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .write_timeout_ms = 30000,
        .linger_ms = 2000,
        .max_output_bytes = 1u << 20,
        .ws_max_message = 16u << 20,
        .max_queued_bytes = 16u << 20,
        .ws_low_water = 256u << 10,
        .ws_ping_interval_ms = 15000,
        .ws_idle_timeout_ms = 45000,
        .ws_ack_timeout_ms = 5000,
        .ws_close_timeout_ms = 5000,
        .reserve_fds = 1,
    };
}

static void fill_defaults(struct moq_http_config *cfg)
{
    struct moq_http_config d;
    moq_http_config_default(&d);
#define DEF(f)                                                                                     \
    if (!cfg->f) cfg->f = d.f
    DEF(max_conns);
    DEF(max_header_bytes);
    DEF(max_headers);
    DEF(header_timeout_ms);
    DEF(idle_timeout_ms);
    DEF(write_timeout_ms);
    DEF(linger_ms);
    DEF(max_output_bytes);
    DEF(ws_max_message);
    DEF(max_queued_bytes);
    DEF(ws_low_water);
    DEF(ws_ping_interval_ms);
    DEF(ws_idle_timeout_ms);
    DEF(ws_ack_timeout_ms);
    DEF(ws_close_timeout_ms);
    DEF(reserve_fds);
#undef DEF
}

static size_t in_limit(const moq_http_server *s)
{
    return s->cfg.max_header_bytes + READ_CHUNK;
}

/* --- addresses ------------------------------------------------------------------------ */

int moq_http_parse_addr(const char *addr, struct sockaddr_storage *out, unsigned *len)
{
    if (!addr) return MOQ_ERR_CONFIG;
    char host[64];
    const char *port_str;
    memset(out, 0, sizeof(*out));
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof(host))
            return MOQ_ERR_CONFIG;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = 0;
        port_str = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof(host) || strchr(addr, ':') != colon)
            return MOQ_ERR_CONFIG;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = 0;
        port_str = colon + 1;
    }
    char *endp;
    if (!*port_str) return MOQ_ERR_CONFIG;
    long port = strtol(port_str, &endp, 10);
    if (*endp || port < 0 || port > 65535) return MOQ_ERR_CONFIG;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    if (addr[0] == '[') {
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) return MOQ_ERR_CONFIG;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
    } else {
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return MOQ_ERR_CONFIG;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
    }
    return 0;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(s4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(out, cap, "%s:%u", host, ntohs(s6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
            snprintf(out, cap, "[%s]:%u", host, ntohs(s6->sin6_port));
        }
    } else {
        snprintf(out, cap, "unknown");
    }
}

/* --- connection I/O ------------------------------------------------------------------- */

ssize_t moq_conn_recv(struct moq_http_conn *c, void *buf, size_t len)
{
    if (c->tls) {
        for (;;) {
            ssize_t r = gnutls_record_recv(c->tls, buf, len);
            if (r >= 0) return r;
            if (r == GNUTLS_E_INTERRUPTED) continue;
            if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_REHANDSHAKE) return MOQ_ERR_AGAIN;
            if (r == GNUTLS_E_PREMATURE_TERMINATION) return 0;
            moq_debug("http", "%s: TLS receive failed: %s", c->peer, gnutls_strerror((int)r));
            return MOQ_ERR_TLS;
        }
    }
    for (;;) {
        ssize_t r = recv(c->fd, buf, len, 0);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MOQ_ERR_AGAIN;
        return MOQ_ERR_IO;
    }
}

static int flush_plain(struct moq_http_conn *c)
{
    while (c->out.bytes) {
        struct iovec iov[IOV_BATCH];
        size_t n = moq_outq_peek(&c->out, iov, IOV_BATCH, SIZE_MAX);
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t r = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return MOQ_ERR_IO;
        }
        moq_outq_consume(&c->out, (size_t)r);
        c->last_write = ev_now(c->srv->loop);
    }
    return 0;
}

static int flush_tls(struct moq_http_conn *c)
{
    for (;;) {
        if (c->uncork_pending) {
            int r = gnutls_record_uncork(c->tls, 0);
            if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) return 0;
            if (r < 0) return MOQ_ERR_TLS;
            c->uncork_pending = false;
            c->last_write = ev_now(c->srv->loop);
        }
        if (!c->out.bytes) return 0;
        /* Hand gnutls a bounded batch under cork so small pieces share records; a batch
         * accepted under cork is ours no more, even if the socket then blocks. */
        struct iovec iov[IOV_BATCH];
        size_t n = moq_outq_peek(&c->out, iov, IOV_BATCH, TLS_BATCH), total = 0;
        gnutls_record_cork(c->tls);
        for (size_t i = 0; i < n; i++) {
            ssize_t r = gnutls_record_send(c->tls, iov[i].iov_base, iov[i].iov_len);
            if (r < 0) return MOQ_ERR_TLS;
            total += (size_t)r;
        }
        moq_outq_consume(&c->out, total);
        c->uncork_pending = true;
    }
}

int moq_conn_flush(struct moq_http_conn *c)
{
    return c->tls ? flush_tls(c) : flush_plain(c);
}

bool moq_conn_want_write(const struct moq_http_conn *c)
{
    return c->out.bytes || c->uncork_pending;
}

static bool conn_wants_read(const struct moq_http_conn *c)
{
    if (c->peer_eof || c->dead) return false;
    switch (c->state) {
    case CONN_HANDSHAKE:
        return false; /* handled by the handshake direction */
    case CONN_HTTP:
        return !c->close_after && c->in.len < in_limit(c->srv);
    case CONN_WS:
        return moq_ws_wants_read(c);
    case CONN_LINGER:
        return true;
    }
    return false;
}

void moq_conn_update_io(struct moq_http_conn *c)
{
    int ev = 0;
    if (!c->dead) {
        if (c->state == CONN_HANDSHAKE) {
            ev = c->tls && gnutls_record_get_direction(c->tls) ? EV_WRITE : EV_READ;
        } else {
            if (conn_wants_read(c)) ev |= EV_READ;
            if (moq_conn_want_write(c) || (c->state == CONN_WS && moq_ws_wants_write(c)))
                ev |= EV_WRITE;
        }
    }
    if (ev == c->io_events) return;
    ev_io_stop(c->srv->loop, &c->io);
    ev_io_set(&c->io, c->fd, ev);
    if (ev) ev_io_start(c->srv->loop, &c->io);
    c->io_events = ev;
}

void moq_conn_schedule(struct moq_http_conn *c)
{
    moq_defer_schedule(&c->defer);
}

void moq_conn_kill(struct moq_http_conn *c)
{
    c->dead = true;
    moq_conn_schedule(c);
}

/* The deadline that matters now (0: none). */
static ev_tstamp conn_deadline(struct moq_http_conn *c)
{
    const struct moq_http_config *cfg = &c->srv->cfg;
    switch (c->state) {
    case CONN_HANDSHAKE:
        return c->created + cfg->header_timeout_ms / 1000.0;
    case CONN_LINGER:
        return c->linger_start + cfg->linger_ms / 1000.0;
    case CONN_WS:
        return moq_ws_deadline(c);
    case CONN_HTTP:
        break;
    }
    if (moq_conn_want_write(c)) return c->last_write + cfg->write_timeout_ms / 1000.0;
    if (c->resp.state != RESP_IDLE) return 0; /* the application holds the response */
    if (c->close_after) return c->last_write + cfg->write_timeout_ms / 1000.0;
    if (moq_http_parser_headers_done(c->parser))
        return c->last_read + cfg->idle_timeout_ms / 1000.0;
    if (moq_http_parser_started(c->parser) || c->idle_since == 0)
        return c->request_start + cfg->header_timeout_ms / 1000.0;
    return c->idle_since + cfg->idle_timeout_ms / 1000.0;
}

void moq_conn_arm_timer(struct moq_http_conn *c)
{
    struct ev_loop *loop = c->srv->loop;
    ev_tstamp deadline = c->dead ? 0 : conn_deadline(c);
    ev_timer_stop(loop, &c->timer);
    if (!deadline) return;
    ev_tstamp delay = deadline - ev_now(loop);
    ev_timer_set(&c->timer, delay > 0 ? delay : 0.0, 0.);
    ev_timer_start(loop, &c->timer);
}

/* End of every watcher callback: free a dead connection, else re-arm its watchers. */
static void conn_after(struct moq_http_conn *c)
{
    if (c->dead) {
        conn_free(c, MOQ_WS_ABNORMAL);
        return;
    }
    moq_conn_update_io(c);
    moq_conn_arm_timer(c);
}

/* --- responses on a connection -------------------------------------------------------- */

static int64_t now_wall(void)
{
    return moq_wall_s();
}

static void queue_head(struct moq_http_conn *c, const moq_http_response *resp, bool keep_alive,
                       enum moq_http_framing framing)
{
    const moq_http_request *req = moq_http_parser_request(c->parser);
    moq_buf head;
    moq_buf_init(&head);
    bool http10 = req->http_major == 1 && req->http_minor == 0;
    bool was_idle = !moq_conn_want_write(c);
    if (moq_http_response_head(resp, now_wall(), keep_alive, http10, framing, &head) < 0 ||
        moq_outq_append(&c->out, head.data, head.len) < 0)
        moq_conn_kill(c);
    moq_buf_free(&head);
    if (was_idle) c->last_write = ev_now(c->srv->loop);
}

/* Queue a complete response (head and body) for the current request. */
static void queue_full_response(struct moq_http_conn *c)
{
    moq_http_request *req = moq_http_parser_request(c->parser);
    moq_http_response *resp = &c->resp;
    bool keep = req->keep_alive && !c->close_after && !c->peer_eof;
    queue_head(c, resp, keep, MOQ_HTTP_FRAME_LENGTH);
    if (req->method != MOQ_HTTP_HEAD && !moq_http_status_bodyless(resp->status)) {
        for (size_t i = 0; i < resp->n_body; i++)
            if (moq_outq_push(&c->out, &resp->body[i]) < 0) moq_conn_kill(c);
    }
    if (!keep) c->close_after = true;
    moq_debug("http", "%s: %s %s -> %d", c->peer, req->method_name, req->target, resp->status);
}

/* The exchange is over: get ready for the next request. */
static void request_done(struct moq_http_conn *c)
{
    moq_http_response_clear(&c->resp);
    c->resp.state = RESP_IDLE;
    c->resp.in_handler = false;
    c->resp.finished = false;
    moq_http_parser_reset(c->parser);
    c->idle_since = ev_now(c->srv->loop);
    c->request_start = c->idle_since;
}

/* Answer a request the server refuses itself (parse errors, bad handshakes) and close. */
static void send_error(struct moq_http_conn *c, int status, const char *extra_name,
                       const char *extra_value)
{
    moq_http_response resp;
    moq_http_response_init(&resp);
    moq_http_response_set_status(&resp, status);
    if (extra_name) moq_http_response_header(&resp, extra_name, extra_value);
    c->close_after = true;
    queue_head(c, &resp, false, MOQ_HTTP_FRAME_LENGTH);
    moq_http_response_clear(&resp);
    moq_buf_free(&resp.headers);
    moq_debug("http", "%s: request refused with %d", c->peer, status);
}

int moq_http_response_send(moq_http_response *resp)
{
    struct moq_http_conn *c = resp->conn;
    if (!c || resp->state != RESP_ACTIVE) return MOQ_ERR_INVALID;
    if (resp->in_handler) {
        resp->finished = true;
        return 0;
    }
    if (!c->dead) queue_full_response(c);
    request_done(c);
    moq_conn_schedule(c);
    return 0;
}

void moq_http_response_on_abort(moq_http_response *resp, void (*cb)(void *arg), void *arg)
{
    resp->abort_cb = cb;
    resp->abort_arg = arg;
}

int moq_http_response_stream_start(moq_http_response *resp)
{
    struct moq_http_conn *c = resp->conn;
    if (!c || resp->state != RESP_ACTIVE) return MOQ_ERR_INVALID;
    if (c->dead) return MOQ_ERR_CLOSED;
    const moq_http_request *req = moq_http_parser_request(c->parser);
    bool http10 = req->http_major == 1 && req->http_minor == 0;
    resp->chunked = !http10;
    bool keep = req->keep_alive && !http10 && !c->close_after;
    /* Body parts added before the start become the first chunk. */
    size_t pending = resp->n_body;
    resp->body_len = 0;
    queue_head(c, resp, keep, resp->chunked ? MOQ_HTTP_FRAME_CHUNKED : MOQ_HTTP_FRAME_CLOSE);
    if (!keep) c->close_after = true;
    resp->state = RESP_STREAMING;
    int rc = moq_http_response_stream_write(resp, resp->body, pending);
    for (size_t i = 0; i < pending; i++)
        moq_chunk_unref(resp->body[i].chunk);
    resp->n_body = 0;
    moq_conn_update_io(c);
    moq_conn_arm_timer(c);
    return rc;
}

static size_t slices_len(const moq_slice *v, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += v[i].len;
    return len;
}

int moq_http_response_stream_write(moq_http_response *resp, const moq_slice *v, size_t n)
{
    struct moq_http_conn *c = resp->conn;
    if (!c || resp->state != RESP_STREAMING) return MOQ_ERR_INVALID;
    if (c->dead) return MOQ_ERR_CLOSED;
    size_t len = slices_len(v, n);
    const moq_http_request *req = moq_http_parser_request(c->parser);
    if (!len || req->method == MOQ_HTTP_HEAD) return 0;
    if (c->out.bytes + len > c->srv->cfg.max_queued_bytes) {
        moq_warn_repeat("dropped HTTP clients", "http",
                        "%s: client is not reading the streamed body: dropping", c->peer);
        moq_conn_kill(c);
        return MOQ_ERR_LIMIT;
    }
    bool was_idle = !moq_conn_want_write(c);
    if (resp->chunked) {
        char line[32];
        int k = snprintf(line, sizeof(line), "%zx\r\n", len);
        if (moq_outq_append(&c->out, line, (size_t)k) < 0) goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (moq_outq_push(&c->out, &v[i]) < 0) goto fail;
    if (resp->chunked && moq_outq_append(&c->out, "\r\n", 2) < 0) goto fail;
    if (was_idle) c->last_write = ev_now(c->srv->loop);
    moq_conn_update_io(c);
    if (was_idle) moq_conn_arm_timer(c);
    return 0;
fail:
    moq_conn_kill(c);
    return MOQ_ERR_NOMEM;
}

int moq_http_response_stream_write_bytes(moq_http_response *resp, const void *data, size_t len)
{
    if (!len) return 0;
    moq_chunk *ch = moq_chunk_copy(data, len);
    if (!ch) return MOQ_ERR_NOMEM;
    moq_slice s = {ch, 0, len};
    int rc = moq_http_response_stream_write(resp, &s, 1);
    moq_chunk_unref(ch);
    return rc;
}

int moq_http_response_stream_end(moq_http_response *resp)
{
    struct moq_http_conn *c = resp->conn;
    if (!c || resp->state != RESP_STREAMING) return MOQ_ERR_INVALID;
    const moq_http_request *req = moq_http_parser_request(c->parser);
    if (!c->dead && resp->chunked && req->method != MOQ_HTTP_HEAD &&
        moq_outq_append(&c->out, "0\r\n\r\n", 5) < 0)
        moq_conn_kill(c);
    if (resp->in_handler) {
        resp->finished = true;
        return 0;
    }
    request_done(c);
    moq_conn_schedule(c);
    return 0;
}

size_t moq_http_response_queued(const moq_http_response *resp)
{
    return resp->conn ? resp->conn->out.bytes : 0;
}

/* --- request processing --------------------------------------------------------------- */

/* Bodies sent to requests no route takes are read and dropped up to this size, so the
 * client gets the 404/405 it would get without a body. */
#define DRAIN_MAX (64 * 1024)

static int conn_on_headers(void *ctx, moq_http_parser *p, moq_http_request *req)
{
    struct moq_http_conn *c = ctx;
    if (!moq_http_parser_has_body(p)) return 0;
    uint64_t declared = moq_http_parser_content_length(p);
    size_t max;
    bool routed = moq_http_router_lookup(c->srv->router, req->method, req->path, &max);
    if (!routed || (c->srv->ws_fn && moq_ws_is_upgrade(req))) {
        if (declared != UINT64_MAX && declared > DRAIN_MAX) return 413;
        moq_http_parser_discard_body(p, DRAIN_MAX);
        return 0;
    }
    moq_http_parser_set_max_body(p, max);
    if (!max || (declared != UINT64_MAX && declared > max)) return 413;
    const char *expect = moq_http_header(req, "expect");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0) return 417;
        if (req->http_minor >= 1) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (moq_outq_append(&c->out, cont, sizeof(cont) - 1) < 0) return 500;
            c->last_write = ev_now(c->srv->loop);
        }
    }
    return 0;
}

static void handle_upgrade(struct moq_http_conn *c, moq_http_request *req)
{
    int status = moq_ws_check_handshake(req);
    if (status == 426) {
        send_error(c, 426, "Sec-WebSocket-Version", "13");
        return;
    }
    if (status) {
        send_error(c, status, NULL, NULL);
        return;
    }
    int rc = moq_ws_start(c, req);
    if (rc > 0) {
        /* Refused by the application: an ordinary response, the connection stays. */
        c->resp.state = RESP_ACTIVE;
        moq_http_response_set_status(&c->resp, rc);
        queue_full_response(c);
        request_done(c);
    } else if (rc < 0) {
        send_error(c, rc == MOQ_ERR_TOO_LARGE ? 400 : 500, NULL, NULL);
    }
}

static void handle_request(struct moq_http_conn *c)
{
    moq_http_request *req = moq_http_parser_request(c->parser);
    req->peer = c->peer;
    req->tls = c->tls != NULL;
    req->peer_certified = c->peer_certified;
    req->peer_cert_expires = c->peer_cert_expires;
    if (req->method == MOQ_HTTP_CONNECT) c->close_after = true;
    if (c->srv->ws_fn && moq_ws_is_upgrade(req)) {
        handle_upgrade(c, req);
        return;
    }
    moq_http_response *resp = &c->resp;
    resp->state = RESP_ACTIVE;
    resp->in_handler = true;
    int rc = moq_http_router_dispatch(c->srv->router, req, resp);
    resp->in_handler = false;
    if (resp->finished) {
        if (resp->state == RESP_ACTIVE) queue_full_response(c);
        request_done(c);
    } else if (resp->state == RESP_STREAMING) {
        if (resp->status >= 500 && rc == 0) {
            /* The handler failed after the head went out: the body cannot be finished. */
            c->close_after = true;
            request_done(c);
        }
    } else if (rc != MOQ_HTTP_ASYNC) {
        queue_full_response(c);
        request_done(c);
    }
}

/* Parse and answer buffered requests, one at a time, while nothing is pending. */
static void conn_process(struct moq_http_conn *c)
{
    while (c->state == CONN_HTTP && !c->dead && !c->close_after && c->resp.state == RESP_IDLE &&
           c->in.len && c->out.bytes <= c->srv->cfg.max_output_bytes) {
        bool was_started = moq_http_parser_started(c->parser);
        size_t used;
        int rc = moq_http_parser_feed(c->parser, c->in.data, c->in.len, &used);
        moq_buf_consume(&c->in, used);
        if (!was_started && moq_http_parser_started(c->parser) && c->idle_since)
            c->request_start = ev_now(c->srv->loop);
        if (rc == MOQ_HTTP_PARSE_MORE) break;
        if (rc == MOQ_HTTP_PARSE_ERROR) {
            int status = moq_http_parser_error_status(c->parser);
            send_error(c, status, NULL, NULL);
            break;
        }
        handle_request(c);
    }
}

/* Read what the buffer allows. Returns 1 when it stopped because the buffer is full (more
 * may be waiting, in the kernel or in gnutls), 0 otherwise. */
static int conn_read(struct moq_http_conn *c)
{
    size_t limit = in_limit(c->srv);
    while (!c->peer_eof && c->in.len < limit) {
        size_t want = limit - c->in.len;
        if (want > READ_CHUNK) want = READ_CHUNK;
        if (moq_buf_reserve(&c->in, want) < 0) {
            moq_conn_kill(c);
            return 0;
        }
        ssize_t r = moq_conn_recv(c, c->in.data + c->in.len, want);
        if (r == MOQ_ERR_AGAIN) return 0;
        if (r < 0) {
            moq_conn_kill(c);
            return 0;
        }
        if (r == 0) {
            c->peer_eof = true;
            return 0;
        }
        c->in.len += (size_t)r;
        c->last_read = ev_now(c->srv->loop);
    }
    return c->peer_eof ? 0 : 1;
}

void moq_conn_linger(struct moq_http_conn *c)
{
    if (c->tls) gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* best effort, non-blocking */
    shutdown(c->fd, SHUT_WR);
    if (c->peer_eof) {
        c->dead = true;
        return;
    }
    c->state = CONN_LINGER;
    c->linger_start = ev_now(c->srv->loop);
    moq_buf_reset(&c->in);
}

static void conn_linger_read(struct moq_http_conn *c)
{
    uint8_t buf[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t r = moq_conn_recv(c, buf, sizeof(buf));
        if (r == MOQ_ERR_AGAIN) return;
        if (r <= 0) {
            c->dead = true;
            return;
        }
    }
}

static void conn_http_work(struct moq_http_conn *c)
{
    int round;
    for (round = 0; round < 16 && c->state == CONN_HTTP && !c->dead; round++) {
        int full = conn_wants_read(c) ? conn_read(c) : 0;
        size_t before = c->in.len;
        conn_process(c);
        if (c->state != CONN_HTTP) return;
        if (moq_conn_flush(c) < 0) {
            c->dead = true;
            return;
        }
        /* Go round again only if room was made and more bytes may be waiting (in the
         * kernel, or decrypted inside gnutls where no EV_READ would announce them). */
        bool more = full || (c->tls && gnutls_record_check_pending(c->tls));
        if (c->in.len == before || !more) break;
    }
    if (round == 16) moq_conn_schedule(c);
    if (c->state != CONN_HTTP || c->dead) return;
    if (c->peer_eof && c->resp.state == RESP_IDLE && !c->in.len) {
        /* Every complete request that was buffered has been answered. */
        c->close_after = true;
    }
    if (c->peer_eof && c->resp.state != RESP_IDLE && !moq_conn_want_write(c)) {
        /* The client went away while the application held the response. */
        c->dead = true;
        return;
    }
    if (c->close_after && !moq_conn_want_write(c) && c->resp.state == RESP_IDLE) moq_conn_linger(c);
}

/* --- TLS handshake -------------------------------------------------------------------- */

static void conn_handshake(struct moq_http_conn *c)
{
    for (int i = 0; i < 8; i++) {
        int r = gnutls_handshake(c->tls);
        if (r == 0) {
            /* The first request's head timeout keeps counting from the accept. */
            c->state = CONN_HTTP;
            if (c->lst->tls.tls_setup)
                c->peer_certified = moq_tls_peer_certified(c->tls, &c->peer_cert_expires);
            moq_debug("http", "%s: TLS handshake done%s", c->peer,
                      c->peer_certified ? " (client certificate)" : "");
            return;
        }
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) return;
        if (gnutls_error_is_fatal(r)) {
            moq_debug("http", "%s: TLS handshake failed: %s", c->peer, gnutls_strerror(r));
            c->dead = true;
            return;
        }
    }
}

/* --- watchers ------------------------------------------------------------------------- */

static void conn_drive(struct moq_http_conn *c, int revents)
{
    if (c->state == CONN_HANDSHAKE) {
        conn_handshake(c);
        if (c->dead || c->state == CONN_HANDSHAKE) return;
    }
    switch (c->state) {
    case CONN_HTTP:
        conn_http_work(c);
        break;
    case CONN_WS:
        moq_ws_drive(c, revents);
        break;
    case CONN_LINGER:
        conn_linger_read(c);
        break;
    case CONN_HANDSHAKE:
        break;
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct moq_http_conn *c = w->data;
    conn_drive(c, revents);
    conn_after(c);
}

static void conn_deferred(moq_defer *d)
{
    struct moq_http_conn *c = d->data;
    if (!c->dead) conn_drive(c, EV_READ | EV_WRITE);
    conn_after(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct moq_http_conn *c = w->data;
    ev_tstamp deadline = conn_deadline(c);
    if (!deadline || ev_now(loop) + 0.0005 < deadline) {
        conn_after(c);
        return;
    }
    switch (c->state) {
    case CONN_HANDSHAKE:
        moq_debug("http", "%s: TLS handshake timed out", c->peer);
        c->dead = true;
        break;
    case CONN_LINGER:
        c->dead = true;
        break;
    case CONN_WS:
        moq_ws_on_timer(c);
        break;
    case CONN_HTTP:
        if (moq_conn_want_write(c) || c->close_after) {
            moq_debug("http", "%s: write timed out", c->peer);
            c->dead = true;
        } else if (moq_http_parser_started(c->parser)) {
            moq_debug("http", "%s: request timed out", c->peer);
            send_error(c, 408, NULL, NULL);
            if (moq_conn_flush(c) < 0) c->dead = true;
            if (!c->dead && !moq_conn_want_write(c)) moq_conn_linger(c);
        } else {
            c->dead = true; /* idle keep-alive connection */
        }
        break;
    }
    conn_after(c);
}

/* --- connections ---------------------------------------------------------------------- */

static int conn_setup_tls(struct moq_http_conn *c)
{
    struct moq_http_listener *l = c->lst;
    gnutls_certificate_credentials_t creds = NULL;
    c->creds_handle = l->tls.creds_acquire(l->tls.ctx, &creds);
    if (!c->creds_handle || !creds) return MOQ_ERR_TLS;
    if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
        c->tls = NULL;
        return MOQ_ERR_TLS;
    }
    static const gnutls_datum_t alpn = {(unsigned char *)"http/1.1", 8};
    if (gnutls_priority_set(c->tls, l->prio) < 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, creds) < 0 ||
        gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_SERVER_PRECEDENCE) < 0)
        return MOQ_ERR_TLS;
    gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
    if (l->tls.tls_setup) l->tls.tls_setup(l->tls.ctx, c->tls);
    gnutls_transport_set_int(c->tls, c->fd);
    c->state = CONN_HANDSHAKE;
    return 0;
}

/* --- descriptor reserve --------------------------------------------------------------- */

/* Open every reserve slot that is not (any more). Returns how many are open. */
static size_t spares_fill(moq_http_server *s)
{
    size_t open_now = 0;
    for (size_t i = 0; i < s->cfg.reserve_fds; i++) {
        if (s->spares[i] < 0) s->spares[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->spares[i] >= 0) open_now++;
    }
    return open_now;
}

/* Close one reserve descriptor so accept can use its slot. False when none is left. */
static bool spare_release(moq_http_server *s)
{
    for (size_t i = 0; i < s->cfg.reserve_fds; i++) {
        if (s->spares[i] >= 0) {
            close(s->spares[i]);
            s->spares[i] = -1;
            return true;
        }
    }
    return false;
}

/* Room for one more connection under max_conns: taken, or false. */
static bool conn_slot_take(moq_http_server *s)
{
    _Atomic size_t *shared = s->cfg.shared_conns;
    if (!shared) return s->n_conns < s->cfg.max_conns;
    size_t n = atomic_load(shared);
    do {
        if (n >= s->cfg.max_conns) return false;
    } while (!atomic_compare_exchange_weak(shared, &n, n + 1));
    return true;
}

static void conn_slot_give(moq_http_server *s)
{
    if (s->cfg.shared_conns) atomic_fetch_sub(s->cfg.shared_conns, 1);
}

/* Serve a connection accepted with a slot taken (conn_slot_take). */
static void conn_new(struct moq_http_listener *l, int fd, const struct sockaddr_storage *ss,
                     bool reserved)
{
    moq_http_server *s = l->srv;
    struct moq_http_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        conn_slot_give(s);
        close(fd);
        if (reserved) spares_fill(s);
        return;
    }
    c->srv = s;
    c->lst = l;
    c->fd = fd;
    c->reserved = reserved;
    format_peer(ss, c->peer, sizeof(c->peer));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    moq_buf_init(&c->in);
    moq_outq_init(&c->out);
    moq_http_response_init(&c->resp);
    c->resp.conn = c;
    struct moq_http_parser_limits lim = {s->cfg.max_header_bytes, s->cfg.max_headers, 0};
    c->parser = moq_http_parser_new(&lim, conn_on_headers, c);
    ev_io_init(&c->io, conn_io_cb, fd, 0);
    c->io.data = c;
    ev_timer_init(&c->timer, conn_timer_cb, 0., 0.);
    c->timer.data = c;
    int deferred = moq_defer_init(&c->defer, s->loop, conn_deferred, c);
    moq_list_push_back(&s->conns, &c->link);
    s->n_conns++;
    c->created = c->request_start = c->last_read = ev_now(s->loop);
    c->state = CONN_HTTP;
    if (!c->parser || deferred < 0 || (l->has_tls && conn_setup_tls(c) < 0)) {
        moq_warn("http", "%s: cannot set up connection", c->peer);
        conn_free(c, MOQ_WS_ABNORMAL);
        return;
    }
    moq_debug("http", "%s: connected%s", c->peer, l->has_tls ? " (TLS)" : "");
    conn_drive(c, EV_READ);
    conn_after(c);
}

static void conn_free(struct moq_http_conn *c, uint16_t ws_code)
{
    moq_http_server *s = c->srv;
    if (c->ws) moq_ws_destroy(c, ws_code);
    if (c->resp.state != RESP_IDLE && c->resp.abort_cb) {
        void (*cb)(void *) = c->resp.abort_cb;
        c->resp.abort_cb = NULL;
        c->resp.state = RESP_IDLE;
        cb(c->resp.abort_arg);
    }
    ev_io_stop(s->loop, &c->io);
    ev_timer_stop(s->loop, &c->timer);
    moq_defer_fini(&c->defer);
    if (c->tls) gnutls_deinit(c->tls);
    if (c->creds_handle) c->lst->tls.creds_release(c->lst->tls.ctx, c->creds_handle);
    close(c->fd);
    if (c->reserved) spares_fill(s);
    moq_http_parser_free(c->parser);
    moq_buf_free(&c->in);
    moq_outq_free(&c->out);
    moq_http_response_clear(&c->resp);
    free(c->resp.body);
    moq_buf_free(&c->resp.headers);
    moq_list_remove(&c->link);
    s->n_conns--;
    conn_slot_give(s);
    moq_debug("http", "%s: closed", c->peer);
    free(c);
}

/* --- listeners ------------------------------------------------------------------------ */

static void refuse_busy(int fd, bool tls)
{
    if (!tls) {
        static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n";
        ssize_t r = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
    }
    close(fd);
}

static void listener_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct moq_http_listener *l = w->data;
    ev_io_start(loop, &l->io);
}

static void listener_pause(struct ev_loop *loop, struct moq_http_listener *l)
{
    ev_io_stop(loop, &l->io);
    ev_timer_set(&l->retry, 0.1, 0.);
    ev_timer_start(loop, &l->retry);
}

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE;
}

enum reserve_result {
    RESERVE_TAKEN,   /* a connection was accepted (and served or turned away) */
    RESERVE_SPENT,   /* no reserve descriptor left: pause accepts */
    RESERVE_NOTHING, /* the backlog emptied meanwhile */
};

/* accept failed for want of descriptors: take the waiting connection in the slot of a
 * reserve descriptor, to serve it or to turn it away. */
static enum reserve_result accept_from_reserve(struct moq_http_listener *l)
{
    moq_http_server *s = l->srv;
    if (!l->exhausted)
        moq_warn("http", "out of file descriptors on port %u: %s", l->port,
                 s->cfg.reserve_serve ? "serving from the reserve"
                                      : "answering 503 and closing new connections");
    l->exhausted = true;
    if (!spare_release(s)) return RESERVE_SPENT;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        bool empty = errno == EAGAIN || errno == EWOULDBLOCK;
        spares_fill(s);
        return empty ? RESERVE_NOTHING : RESERVE_SPENT;
    }
    if (s->cfg.reserve_serve && conn_slot_take(s)) {
        conn_new(l, fd, &ss, true);
    } else {
        refuse_busy(fd, l->has_tls);
        spares_fill(s);
    }
    return RESERVE_TAKEN;
}

static void listener_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct moq_http_listener *l = w->data;
    moq_http_server *s = l->srv;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (!out_of_descriptors(errno)) {
                moq_warn("http", "accept failed: %s; pausing accepts", strerror(errno));
                listener_pause(loop, l);
                return;
            }
            enum reserve_result rr = accept_from_reserve(l);
            if (rr == RESERVE_TAKEN) continue;
            if (rr == RESERVE_SPENT) listener_pause(loop, l);
            return;
        }
        if (l->exhausted) {
            l->exhausted = false;
            /* the reserve may have been spent on connections that are gone by now */
            spares_fill(s);
            moq_info("http", "port %u: accepting connections again", l->port);
        }
        if (!conn_slot_take(s)) {
            moq_debug("http", "connection limit (%zu) reached: refusing", s->cfg.max_conns);
            refuse_busy(fd, l->has_tls);
            continue;
        }
        conn_new(l, fd, &ss, false);
    }
}

int moq_http_server_listen(moq_http_server *s, const char *addr, const struct moq_http_tls *tls,
                           uint16_t *port)
{
    return moq_http_server_listen_shared(s, addr, tls, false, 0, port);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
}

/* A listening TCP socket bound to ss (with SO_REUSEPORT when asked), or -1 with errno. */
static int listening_socket(const struct sockaddr_storage *ss, unsigned len, bool reuseport)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss->ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, MOQ_HTTP_LISTEN_BACKLOG) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Before the first socket of a new SO_REUSEPORT group: a socket without SO_REUSEPORT must
 * be able to listen on ss, else a listener already there (another relay's group included,
 * which a reuseport socket would silently join) holds it: -1 with errno EADDRINUSE. Port 0
 * in ss is replaced by the port it got. */
static int claim_port(struct sockaddr_storage *ss, unsigned len)
{
    int fd = listening_socket(ss, len, false);
    if (fd < 0) return -1;
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    int rv = getsockname(fd, (struct sockaddr *)&bound, &bl);
    close(fd);
    if (rv < 0) return -1;
    set_port(ss, ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                   : ((struct sockaddr_in *)&bound)->sin_port));
    return 0;
}

int moq_http_server_listen_shared(moq_http_server *s, const char *addr,
                                  const struct moq_http_tls *tls, bool reuseport,
                                  uint16_t port_override, uint16_t *port)
{
    struct sockaddr_storage ss;
    unsigned len;
    int rc = moq_http_parse_addr(addr, &ss, &len);
    if (rc < 0) {
        moq_error("http", "invalid listen address '%s'", addr ? addr : "(null)");
        return rc;
    }
    if (tls && (!tls->creds_acquire || !tls->creds_release)) return MOQ_ERR_INVALID;
    int fd = -1;
    if (port_override)
        set_port(&ss, port_override);
    else if (reuseport) /* the first socket of a new group */
        rc = claim_port(&ss, len);
    if (rc == 0) fd = listening_socket(&ss, len, reuseport);
    if (fd < 0) {
        int e = errno;
        moq_error("http", "cannot listen on %s: %s", addr, strerror(e));
        errno = e; /* the caller tells "address in use" apart */
        return MOQ_ERR_IO;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &bl);
    uint16_t bport = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                       : ((struct sockaddr_in *)&bound)->sin_port);
    struct moq_http_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        close(fd);
        return MOQ_ERR_NOMEM;
    }
    l->srv = s;
    l->fd = fd;
    l->port = bport;
    if (tls) {
        l->has_tls = true;
        l->tls = *tls;
        if (gnutls_priority_init2(&l->prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", NULL, 0) <
            0) {
            close(fd);
            free(l);
            return MOQ_ERR_TLS;
        }
    }
    ev_io_init(&l->io, listener_cb, fd, EV_READ);
    l->io.data = l;
    ev_timer_init(&l->retry, listener_retry_cb, 0., 0.);
    l->retry.data = l;
    ev_io_start(s->loop, &l->io);
    moq_list_push_back(&s->listeners, &l->link);
    if (port) *port = bport;
    if (port_override)
        moq_debug("http", "listening on %s (port %u, %s) too", addr, bport, tls ? "https" : "http");
    else
        moq_info("http", "listening on %s (port %u, %s)", addr, bport, tls ? "https" : "http");
    return 0;
}

/* --- server --------------------------------------------------------------------------- */

moq_http_server *moq_http_server_new(struct ev_loop *loop, const struct moq_http_config *cfg)
{
    moq_http_server *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->loop = loop;
    if (cfg) s->cfg = *cfg;
    fill_defaults(&s->cfg);
    s->router = moq_http_router_new();
    s->spares = malloc(s->cfg.reserve_fds * sizeof(int));
    if (!s->router || !s->spares) {
        moq_http_router_free(s->router);
        free(s->spares);
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < s->cfg.reserve_fds; i++)
        s->spares[i] = -1;
    if (spares_fill(s) < s->cfg.reserve_fds)
        moq_warn("http", "cannot hold %zu file descriptors in reserve: %s", s->cfg.reserve_fds,
                 strerror(errno));
    moq_list_init(&s->listeners);
    moq_list_init(&s->conns);
    return s;
}

void moq_http_server_free(moq_http_server *s)
{
    if (!s) return;
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &s->listeners)
    {
        struct moq_http_listener *l = moq_container_of(pos, struct moq_http_listener, link);
        ev_io_stop(s->loop, &l->io);
        ev_timer_stop(s->loop, &l->retry);
        close(l->fd);
        if (l->has_tls) gnutls_priority_deinit(l->prio);
        moq_list_remove(pos);
        free(l);
    }
    while (!moq_list_empty(&s->conns)) {
        struct moq_http_conn *c = moq_list_first(&s->conns, struct moq_http_conn, link);
        conn_free(c, MOQ_WS_GOING_AWAY);
    }
    moq_http_router_free(s->router);
    for (size_t i = 0; i < s->cfg.reserve_fds; i++)
        if (s->spares[i] >= 0) close(s->spares[i]);
    free(s->spares);
    free(s);
}

moq_http_router *moq_http_server_router(moq_http_server *s)
{
    return s->router;
}

size_t moq_http_server_conn_count(const moq_http_server *s)
{
    return s->n_conns;
}

void moq_http_server_set_ws(moq_http_server *s, moq_ws_upgrade_fn fn, void *ctx)
{
    s->ws_fn = fn;
    s->ws_ctx = ctx;
}
