/* WebSocket connections: upgrade, wslay event loop glue, close handshake, keep-alive. */
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

#include "http/internal.h"
#include "http/ws_msgq.h"
#include "util/err.h"
#include "util/log.h"

/* Bytes read per drive before yielding to other connections. */
#define RECV_BUDGET (1u << 20)
/* Framed bytes we hold in the connection's output queue before telling wslay to wait. */
#define OUTQ_BATCH (256u << 10)
/* Frames at least this large are written straight to a plain socket when nothing is queued. */
#define DIRECT_SEND_MIN 16384

struct moq_ws {
    struct moq_http_conn *conn;
    wslay_event_context_ptr ctx;
    const struct moq_ws_events *ev;
    void *app;
    bool opened;
    bool closing;   /* we queued a close frame (application, idle or error) */
    bool got_close; /* the peer's close frame arrived */
    bool above_low; /* queued output went above the low-water mark */
    bool budget_hit;
    bool in_recv;
    uint16_t peer_code;
    char peer_reason[124];
    ev_tstamp last_recv, last_ping, close_started;
    ev_tstamp first_unanswered; /* the first ping sent after last_recv (ack timeout) */
    size_t budget;
    moq_ws_msgq out_msgs;
    const char *protocol, *target, *host; /* point into strings[] */
    char strings[];
};

/* --- wslay callbacks ------------------------------------------------------------------ */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    moq_ws *ws = user;
    struct moq_http_conn *c = ws->conn;
    if (!ws->budget) {
        ws->budget_hit = true;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > ws->budget) len = ws->budget;
    ssize_t r;
    if (c->in.len) {
        /* Bytes that arrived behind the upgrade request. */
        r = (ssize_t)(len < c->in.len ? len : c->in.len);
        memcpy(buf, c->in.data, (size_t)r);
        moq_buf_consume(&c->in, (size_t)r);
    } else {
        r = moq_conn_recv(c, buf, len);
        if (r == MOQ_ERR_AGAIN) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        if (r <= 0) {
            if (r == 0) c->peer_eof = true;
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
    }
    ws->budget -= (size_t)r;
    ws->last_recv = ev_now(c->srv->loop);
    return r;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    moq_ws *ws = user;
    struct moq_http_conn *c = ws->conn;
    if (c->out.bytes >= OUTQ_BATCH) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    bool was_idle = !moq_conn_want_write(c);
    if (was_idle && !c->tls && len >= DIRECT_SEND_MIN) {
        ssize_t r;
        do {
            r = send(c->fd, data, len, MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        if (r >= 0) {
            c->last_write = ev_now(c->srv->loop);
            return r;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
        /* Blocked: fall through and queue the frame so the write timeout starts. */
    }
    if (moq_outq_append(&c->out, data, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (was_idle) c->last_write = ev_now(c->srv->loop);
    return (ssize_t)len;
}

static void on_msg_recv_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    moq_ws *ws = user;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
        if (!ws->closing && !ws->conn->dead && ws->ev->message)
            ws->ev->message(ws->app, ws, arg->opcode == WSLAY_BINARY_FRAME, arg->msg,
                            arg->msg_length);
        break;
    case WSLAY_CONNECTION_CLOSE: {
        ws->got_close = true;
        ws->peer_code = moq_ws_close_reason(arg, ws->peer_reason, sizeof(ws->peer_reason));
        if (!ws->closing) ws->close_started = ev_now(ws->conn->srv->loop);
        ws->closing = true;
        break;
    }
    default:
        break; /* ping (answered by wslay) and pong: liveness only */
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg_recv_cb,
};

/* --- upgrade -------------------------------------------------------------------------- */

static moq_ws *ws_alloc(struct moq_http_conn *c, const moq_http_request *req, size_t proto_max)
{
    const char *host = moq_http_header(req, "host");
    if (!host) host = "";
    size_t tl = req->target_len, hl = strlen(host);
    moq_ws *ws = calloc(1, sizeof(*ws) + tl + 1 + hl + 1 + proto_max + 1);
    if (!ws) return NULL;
    char *p = ws->strings;
    memcpy(p, req->target, tl);
    ws->target = p;
    p += tl + 1;
    memcpy(p, host, hl);
    ws->host = p;
    p += hl + 1;
    ws->protocol = p;
    ws->conn = c;
    moq_ws_msgq_init(&ws->out_msgs);
    if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
        free(ws);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, c->srv->cfg.ws_max_message);
    return ws;
}

static void ws_free(moq_ws *ws)
{
    moq_ws_msgq_free(&ws->out_msgs);
    wslay_event_context_free(ws->ctx);
    free(ws);
}

static bool is_offer(const char *const *offers, size_t n, const char *p)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(offers[i], p)) return true;
    return false;
}

/* The hook's explanation goes out as the body of the refusal. */
static void refusal_body(struct moq_http_conn *c, const char *text)
{
    moq_http_response_clear(&c->resp);
    if (moq_http_response_header(&c->resp, "Content-Type", "text/plain; charset=utf-8") < 0 ||
        moq_http_response_body(&c->resp, text, strlen(text)) < 0)
        moq_http_response_clear(&c->resp);
}

int moq_ws_start(struct moq_http_conn *c, const moq_http_request *req)
{
    moq_http_server *s = c->srv;
    char storage[4096];
    const char *offers[MOQ_WS_MAX_OFFERS];
    int n = moq_ws_parse_offers(req, offers, MOQ_WS_MAX_OFFERS, storage, sizeof(storage));
    if (n < 0) return MOQ_ERR_TOO_LARGE;
    size_t proto_max = 0;
    for (int i = 0; i < n; i++)
        if (strlen(offers[i]) > proto_max) proto_max = strlen(offers[i]);
    char accept[29];
    const char *key = moq_http_header(req, "sec-websocket-key");
    if (!key || moq_ws_accept_key(key, strlen(key), accept) < 0) return 400;
    /* Everything that can fail is done before the application is asked, so an accepted
     * upgrade always leads to `opened` and `closed`. */
    moq_ws *ws = ws_alloc(c, req, proto_max);
    if (!ws) return MOQ_ERR_NOMEM;
    struct moq_ws_upgrade up = {req, offers, (size_t)n};
    struct moq_ws_accept acc = {0};
    int status = s->ws_fn(s->ws_ctx, &up, &acc);
    if (status != 0 || !acc.events || !acc.events->closed ||
        (acc.protocol && !is_offer(offers, (size_t)n, acc.protocol))) {
        ws_free(ws);
        if (status >= 400 && status <= 599 && acc.refusal) refusal_body(c, acc.refusal);
        if (status == 0) {
            moq_error("http",
                      "%s: WebSocket hook accepted without events or with a protocol "
                      "that was not offered",
                      c->peer);
            return 500;
        }
        return status >= 400 && status <= 599 ? status : 500;
    }
    if (acc.protocol) strcpy(ws->strings + (ws->protocol - ws->strings), acc.protocol);
    ws->ev = acc.events;
    ws->app = acc.app;
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                      accept, acc.protocol ? "Sec-WebSocket-Protocol: " : "",
                      acc.protocol ? acc.protocol : "", acc.protocol ? "\r\n" : "");
    bool was_idle = !moq_conn_want_write(c);
    if (hl < 0 || (size_t)hl >= sizeof(head) || moq_outq_append(&c->out, head, (size_t)hl) < 0)
        moq_conn_kill(c);
    ev_tstamp now = ev_now(s->loop);
    if (was_idle) c->last_write = now;
    ws->last_recv = ws->last_ping = ws->first_unanswered = now;
    c->ws = ws;
    c->state = CONN_WS;
    moq_debug("http", "%s: WebSocket open on %s (protocol '%s')", c->peer, ws->target,
              ws->protocol);
    ws->opened = true;
    if (ws->ev->opened) ws->ev->opened(ws->app, ws);
    moq_conn_schedule(c);
    return 0;
}

/* --- driving -------------------------------------------------------------------------- */

size_t moq_ws_queued(const moq_ws *ws)
{
    return wslay_event_get_queued_msg_length(ws->ctx) + ws->out_msgs.bytes + ws->conn->out.bytes;
}

bool moq_ws_wants_read(const struct moq_http_conn *c)
{
    return c->ws && wslay_event_want_read(c->ws->ctx);
}

bool moq_ws_wants_write(const struct moq_http_conn *c)
{
    return c->ws && wslay_event_want_write(c->ws->ctx) && c->out.bytes < OUTQ_BATCH;
}

static void check_low_water(moq_ws *ws)
{
    if (!ws->above_low || moq_ws_queued(ws) >= ws->conn->srv->cfg.ws_low_water) return;
    ws->above_low = false;
    if (ws->ev->writable && !ws->conn->dead) ws->ev->writable(ws->app, ws);
}

/* The closing handshake is over (or can go no further): tell the application, then shut
 * the TCP connection gracefully. */
static void ws_finish(struct moq_http_conn *c)
{
    moq_ws_destroy(c, MOQ_WS_ABNORMAL);
    moq_conn_linger(c);
}

void moq_ws_drive(struct moq_http_conn *c, int revents)
{
    moq_ws *ws = c->ws;
    if (!ws || c->dead) return;
    if (wslay_event_want_read(ws->ctx) && (c->in.len || (revents & EV_READ))) {
        ws->budget = RECV_BUDGET;
        ws->budget_hit = false;
        if (wslay_event_recv(ws->ctx) != 0) {
            moq_debug("http", "%s: WebSocket connection lost", c->peer);
            c->dead = true;
            return;
        }
        if (ws->budget_hit) moq_conn_schedule(c);
    }
    for (int round = 0; round < 8 && !c->dead; round++) {
        if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0) {
            c->dead = true;
            return;
        }
        if (moq_conn_flush(c) < 0) {
            c->dead = true;
            return;
        }
        if (!wslay_event_want_write(ws->ctx) || moq_conn_want_write(c)) break;
    }
    if (c->dead) return;
    check_low_water(ws);
    if (c->ws != ws || c->dead) return;
    bool read_done = wslay_event_get_close_received(ws->ctx) ||
                     !wslay_event_get_read_enabled(ws->ctx) || c->peer_eof;
    if (wslay_event_get_close_sent(ws->ctx) && !moq_conn_want_write(c) && read_done)
        ws_finish(c);
    else if (c->peer_eof && !wslay_event_get_close_sent(ws->ctx))
        c->dead = true;
}

/* A ping went out and nothing at all came back since. */
static bool ping_unanswered(const moq_ws *ws)
{
    return ws->first_unanswered > ws->last_recv;
}

ev_tstamp moq_ws_deadline(struct moq_http_conn *c)
{
    moq_ws *ws = c->ws;
    const struct moq_http_config *cfg = &c->srv->cfg;
    if (!ws) return ev_now(c->srv->loop);
    ev_tstamp d = ws->last_recv + cfg->ws_idle_timeout_ms / 1000.0;
    ev_tstamp ping = (ws->last_recv > ws->last_ping ? ws->last_recv : ws->last_ping) +
                     cfg->ws_ping_interval_ms / 1000.0;
    if (!ws->closing && ping < d) d = ping;
    if (ping_unanswered(ws) && cfg->ws_ack_timeout_ms != UINT32_MAX) {
        ev_tstamp gone = ws->first_unanswered + cfg->ws_ack_timeout_ms / 1000.0;
        if (gone < d) d = gone;
    }
    if (moq_conn_want_write(c) || wslay_event_want_write(ws->ctx)) {
        ev_tstamp w = c->last_write + cfg->write_timeout_ms / 1000.0;
        if (w < d) d = w;
    }
    if (ws->closing) {
        ev_tstamp cl = ws->close_started + cfg->ws_close_timeout_ms / 1000.0;
        if (cl < d) d = cl;
    }
    return d;
}

static void start_close(moq_ws *ws, uint16_t code, const char *reason)
{
    if (ws->closing) return;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123) rl = 123;
    wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, rl);
    ws->closing = true;
    ws->close_started = ev_now(ws->conn->srv->loop);
}

void moq_ws_on_timer(struct moq_http_conn *c)
{
    moq_ws *ws = c->ws;
    const struct moq_http_config *cfg = &c->srv->cfg;
    ev_tstamp now = ev_now(c->srv->loop) + 0.0005;
    if (!ws) {
        c->dead = true;
        return;
    }
    if (ws->closing && now >= ws->close_started + cfg->ws_close_timeout_ms / 1000.0) {
        moq_debug("http", "%s: WebSocket close timed out", c->peer);
        c->dead = true;
    } else if ((moq_conn_want_write(c) || wslay_event_want_write(ws->ctx)) &&
               now >= c->last_write + cfg->write_timeout_ms / 1000.0) {
        moq_debug("http", "%s: WebSocket write timed out", c->peer);
        c->dead = true;
    } else if (ping_unanswered(ws) && cfg->ws_ack_timeout_ms != UINT32_MAX &&
               now >= ws->first_unanswered + cfg->ws_ack_timeout_ms / 1000.0) {
        /* The peer is gone: a close handshake would only wait for it. */
        moq_info("http", "%s: WebSocket ping unanswered for %u ms: dropping", c->peer,
                 cfg->ws_ack_timeout_ms);
        c->dead = true;
    } else if (now >= ws->last_recv + cfg->ws_idle_timeout_ms / 1000.0) {
        moq_debug("http", "%s: WebSocket idle", c->peer);
        start_close(ws, MOQ_WS_GOING_AWAY, "idle timeout");
        moq_ws_drive(c, 0);
    } else if (!ws->closing) {
        ev_tstamp base = ws->last_recv > ws->last_ping ? ws->last_recv : ws->last_ping;
        if (now >= base + cfg->ws_ping_interval_ms / 1000.0) {
            struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
            wslay_event_queue_msg(ws->ctx, &ping);
            /* Later pings to a silent peer do not restart its ack timeout. */
            if (!ping_unanswered(ws)) ws->first_unanswered = ev_now(c->srv->loop);
            ws->last_ping = ev_now(c->srv->loop);
            moq_ws_drive(c, 0);
        }
    }
}

void moq_ws_destroy(struct moq_http_conn *c, uint16_t code_if_open)
{
    moq_ws *ws = c->ws;
    if (!ws) return;
    if (code_if_open == MOQ_WS_GOING_AWAY && !ws->closing && !c->dead) {
        /* Server shutdown: a best-effort close frame. */
        start_close(ws, MOQ_WS_GOING_AWAY, "server shutting down");
        wslay_event_send(ws->ctx);
        moq_conn_flush(c);
    }
    c->ws = NULL;
    uint16_t code = code_if_open;
    const char *reason = "";
    if (ws->got_close) {
        code = ws->peer_code;
        reason = ws->peer_reason;
    } else if (wslay_event_get_close_sent(ws->ctx)) {
        code = wslay_event_get_status_code_sent(ws->ctx);
    }
    if (ws->opened) ws->ev->closed(ws->app, ws, code, reason);
    moq_debug("http", "%s: WebSocket closed (%u)", c->peer, code);
    ws_free(ws);
}

/* --- application API ------------------------------------------------------------------ */

static int check_queue(moq_ws *ws, size_t len)
{
    struct moq_http_conn *c = ws->conn;
    if (c->dead || ws->closing || !wslay_event_get_write_enabled(ws->ctx)) return MOQ_ERR_CLOSED;
    size_t q = moq_ws_queued(ws);
    if (q + len > c->srv->cfg.max_queued_bytes) {
        moq_warn_repeat("dropped WebSocket peers", "http",
                        "%s: WebSocket peer is not reading (%zu bytes queued): dropping", c->peer,
                        q);
        moq_conn_kill(c);
        return MOQ_ERR_LIMIT;
    }
    return 0;
}

static void after_queue(moq_ws *ws)
{
    struct moq_http_conn *c = ws->conn;
    if (moq_ws_queued(ws) >= c->srv->cfg.ws_low_water) ws->above_low = true;
    if (!moq_conn_want_write(c)) c->last_write = ev_now(c->srv->loop);
    moq_conn_update_io(c);
    moq_conn_arm_timer(c);
}

int moq_ws_send(moq_ws *ws, bool binary, const void *data, size_t len)
{
    int rc = check_queue(ws, len);
    if (rc < 0) return rc;
    struct wslay_event_msg msg = {binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME, data, len};
    rc = wslay_event_queue_msg(ws->ctx, &msg);
    if (rc == WSLAY_ERR_NO_MORE_MSG) return MOQ_ERR_CLOSED;
    if (rc != 0) return rc == WSLAY_ERR_NOMEM ? MOQ_ERR_NOMEM : MOQ_ERR_INVALID;
    after_queue(ws);
    return 0;
}

int moq_ws_send_slices(moq_ws *ws, const moq_slice *v, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len && (!v[i].chunk || v[i].off + v[i].len > v[i].chunk->len))
            return MOQ_ERR_INVALID;
        len += v[i].len;
    }
    int rc = check_queue(ws, len);
    if (rc < 0) return rc;
    rc = moq_ws_msgq_send(&ws->out_msgs, ws->ctx, v, n);
    if (rc < 0) return rc;
    after_queue(ws);
    return 0;
}

void moq_ws_close(moq_ws *ws, uint16_t code, const char *reason)
{
    struct moq_http_conn *c = ws->conn;
    if (c->dead || ws->closing) return;
    start_close(ws, code, reason);
    moq_conn_update_io(c);
    moq_conn_arm_timer(c);
}

const char *moq_ws_protocol(const moq_ws *ws)
{
    return ws->protocol;
}

const char *moq_ws_target(const moq_ws *ws)
{
    return ws->target;
}

const char *moq_ws_host(const moq_ws *ws)
{
    return ws->host;
}

const char *moq_ws_peer(const moq_ws *ws)
{
    return ws->conn->peer;
}

bool moq_ws_is_tls(const moq_ws *ws)
{
    return ws->conn->tls != NULL;
}

int moq_ws_tcp_stats(const moq_ws *ws, uint64_t *rtt_us, uint64_t *delivery_rate_bps)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(ws->conn->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return MOQ_ERR_IO;
    if (rtt_us) *rtt_us = ti.tcpi_rtt;
    if (delivery_rate_bps) {
        bool has_rate =
            len >= offsetof(struct tcp_info, tcpi_delivery_rate) + sizeof(ti.tcpi_delivery_rate);
        *delivery_rate_bps = has_rate ? ti.tcpi_delivery_rate * 8 : 0;
    }
    return 0;
}
