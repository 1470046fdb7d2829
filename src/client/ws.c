/* The client side of moq-lite over WebSocket: TCP (and TLS for wss://), the HTTP/1.1
 * upgrade offering "qmux-0N.<version>" subprotocols, then wslay in client mode carrying a
 * qmux session, driven as qmux/qmux.h prescribes. Once the session runs this object owns
 * itself: it closes the socket and frees itself when the session and the WebSocket are
 * both over. */
#include "client/client.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/base64.h>
#include <wslay/wslay.h>

#include "http/ws.h"
#include "http/ws_msgq.h"
#include "qmux/qmux.h"
#include "util/buf.h"
#include "util/defer.h"
#include "util/err.h"
#include "util/list.h"
#include "util/log.h"
#include "util/strlist.h"
#include "util/time.h"

#define MAX_RESPONSE_HEAD (16 * 1024)
#define OUT_HIGH          (256u * 1024) /* framed bytes held before wslay waits */
#define LOW_WATER         (64u * 1024)
#define RECV_BUDGET       (1u << 20)
#define CLOSE_TIMEOUT_S   2.0
#define TLS_SEND_MAX      16384

enum ws_phase { W_CONNECT, W_TLS, W_UPGRADE, W_OPEN, W_DONE };

struct moq_ws_client {
    struct ev_loop *loop;
    enum ws_phase phase;
    moq_ws_connect_fn cb;
    void *ctx;
    char host[256], port[32], authority[300];
    char *target;
    char offer[1024];
    char accept[29];
    const moq_tls_client *trust; /* wss:// only */
    struct addrinfo *addrs, *next_addr;
    int fd;
    ev_io io;
    int io_events;
    gnutls_session_t tls;
    size_t tls_pending; /* bytes of an interrupted gnutls_record_send */
    moq_buf out;        /* bytes for the socket */
    size_t out_off;
    moq_buf in; /* the response head, then bytes that followed it */
    size_t in_off;
    wslay_event_context_ptr ws;
    moq_ws_msgq out_msgs;
    moq_qmux *q;
    struct moq_qmux_selection sel;
    bool above_low;
    bool peer_eof, broken, closing, close_received;
    uint16_t peer_code;
    char peer_reason[124];
    moq_defer process;
    ev_timer timer;       /* qmux deadlines */
    ev_timer close_timer; /* bounds the closing handshake */
    size_t budget;
    char last_error[160];
};

/* ---------------------------------------------------------------- teardown */

static void client_free(moq_ws_client *c)
{
    ev_io_stop(c->loop, &c->io);
    moq_defer_fini(&c->process);
    ev_timer_stop(c->loop, &c->timer);
    ev_timer_stop(c->loop, &c->close_timer);
    if (c->q) moq_qmux_free(c->q); /* delivers `closed` if the session had not had it */
    moq_ws_msgq_free(&c->out_msgs);
    if (c->ws) wslay_event_context_free(c->ws);
    if (c->tls) gnutls_deinit(c->tls);
    if (c->fd >= 0) close(c->fd);
    if (c->addrs) freeaddrinfo(c->addrs);
    moq_buf_free(&c->out);
    moq_buf_free(&c->in);
    free(c->target);
    free(c);
}

/* Before the session runs: report the failure and free everything. */
static void fail(moq_ws_client *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(moq_ws_client *c, int err, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    c->phase = W_DONE;
    c->cb(c->ctx, NULL, err, reason);
    client_free(c);
}

/* ---------------------------------------------------------------- socket */

static ssize_t sock_recv(moq_ws_client *c, uint8_t *buf, size_t len)
{
    if (c->tls) {
        ssize_t n = gnutls_record_recv(c->tls, buf, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) return MOQ_ERR_AGAIN;
        if (n == GNUTLS_E_PREMATURE_TERMINATION) return 0;
        return n < 0 ? MOQ_ERR_IO : n;
    }
    ssize_t n;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? MOQ_ERR_AGAIN : MOQ_ERR_IO;
    return n;
}

/* Write what c->out holds. 0 (maybe not all written) or MOQ_ERR_IO. */
static int flush_out(moq_ws_client *c)
{
    while (c->out_off < c->out.len) {
        size_t len = c->out.len - c->out_off;
        ssize_t n;
        if (c->tls) {
            if (len > TLS_SEND_MAX) len = TLS_SEND_MAX;
            /* an interrupted record is continued with NULL, 0 (gnutls' rule) */
            n = c->tls_pending ? gnutls_record_send(c->tls, NULL, 0)
                               : gnutls_record_send(c->tls, c->out.data + c->out_off, len);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                if (!c->tls_pending) c->tls_pending = len;
                break;
            }
            c->tls_pending = 0;
            if (n < 0) return MOQ_ERR_IO;
        } else {
            do
                n = send(c->fd, c->out.data + c->out_off, len, MSG_NOSIGNAL);
            while (n < 0 && errno == EINTR);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return MOQ_ERR_IO;
            }
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out.len) {
        moq_buf_reset(&c->out);
        c->out_off = 0;
    } else if (c->out_off > 65536 && c->out_off * 2 > c->out.len && !c->tls_pending) {
        moq_buf_consume(&c->out, c->out_off);
        c->out_off = 0;
    }
    return 0;
}

static size_t out_pending(const moq_ws_client *c)
{
    return c->out.len - c->out_off;
}

static void set_io(moq_ws_client *c, int events)
{
    if (c->fd < 0 || events == c->io_events) return;
    ev_io_stop(c->loop, &c->io);
    c->io_events = events;
    if (!events) return;
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(c->loop, &c->io);
}

/* ---------------------------------------------------------------- wslay callbacks */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    moq_ws_client *c = user;
    if (!c->budget) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > c->budget) len = c->budget;
    ssize_t n;
    if (c->in_off < c->in.len) { /* bytes that came right behind the 101 */
        n = (ssize_t)(len < c->in.len - c->in_off ? len : c->in.len - c->in_off);
        memcpy(buf, c->in.data + c->in_off, (size_t)n);
        c->in_off += (size_t)n;
    } else {
        n = sock_recv(c, buf, len);
        if (n == MOQ_ERR_AGAIN) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        if (n <= 0) {
            if (n == 0) c->peer_eof = true;
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
    }
    c->budget -= (size_t)n;
    return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    moq_ws_client *c = user;
    if (out_pending(c) >= OUT_HIGH) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (moq_buf_append(&c->out, data, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    return gnutls_rnd(GNUTLS_RND_NONCE, buf, len) < 0 ? -1 : 0;
}

static void after(moq_ws_client *c, int rv);

static void on_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    moq_ws_client *c = user;
    uint64_t now = moq_now_us();
    switch (arg->opcode) {
    case WSLAY_BINARY_FRAME:
        if (c->q) after(c, moq_qmux_on_record(c->q, arg->msg, arg->msg_length, now));
        break;
    case WSLAY_TEXT_FRAME:
        if (c->q) after(c, moq_qmux_on_text(c->q, now));
        break;
    case WSLAY_CONNECTION_CLOSE: {
        c->close_received = true;
        c->peer_code = moq_ws_close_reason(arg, c->peer_reason, sizeof(c->peer_reason));
        break;
    }
    default:
        break; /* pings are answered by wslay */
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = on_msg_cb,
};

/* ---------------------------------------------------------------- the qmux channel */

static size_t queued(const moq_ws_client *c)
{
    size_t q = c->out_msgs.bytes + out_pending(c);
    return c->ws ? q + wslay_event_get_queued_msg_length(c->ws) : q;
}

static int io_send_record(void *io, const moq_slice *v, size_t n)
{
    moq_ws_client *c = io;
    if (!c->ws || c->closing || c->broken || !wslay_event_get_write_enabled(c->ws))
        return MOQ_ERR_CLOSED;
    int rc = moq_ws_msgq_send(&c->out_msgs, c->ws, v, n);
    if (rc < 0) return rc;
    if (queued(c) >= LOW_WATER) c->above_low = true;
    moq_defer_schedule(&c->process);
    return 0;
}

static size_t io_queued(void *io)
{
    return queued(io);
}

static void start_close(moq_ws_client *c, uint16_t code, const char *reason)
{
    if (c->closing) return;
    c->closing = true;
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123) rl = 123;
    if (c->ws) wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, rl);
    ev_timer_set(&c->close_timer, CLOSE_TIMEOUT_S, 0.);
    ev_timer_start(c->loop, &c->close_timer);
    moq_defer_schedule(&c->process);
}

static void io_close(void *io, uint16_t code, const char *reason)
{
    start_close(io, code, reason);
}

static void io_wake(void *io)
{
    moq_ws_client *c = io;
    moq_defer_schedule(&c->process);
}

static const struct moq_qmux_io qmux_io = {io_send_record, io_queued, io_close, io_wake};

/* After every call into the session: drop it once finished, else re-arm its timer. */
static void after(moq_ws_client *c, int rv)
{
    if (!c->q) return;
    if (rv == MOQ_ERR_CLOSED || moq_qmux_is_finished(c->q)) {
        ev_timer_stop(c->loop, &c->timer);
        moq_qmux_free(c->q);
        c->q = NULL;
        if (!c->closing) start_close(c, MOQ_WS_NORMAL, "");
        return;
    }
    uint64_t deadline = moq_qmux_next_deadline(c->q);
    ev_timer_stop(c->loop, &c->timer);
    if (deadline == UINT64_MAX) return;
    uint64_t now = moq_now_us();
    ev_timer_set(&c->timer, deadline > now ? (double)(deadline - now) / 1e6 : 0., 0.);
    ev_timer_start(c->loop, &c->timer);
}

/* ---------------------------------------------------------------- the open WebSocket */

/* The WebSocket is over: tell the session (if it still runs), then free everything. */
static void finish_open(moq_ws_client *c)
{
    if (c->q) {
        char reason[160];
        if (c->close_received)
            snprintf(reason, sizeof(reason), "websocket closed: %u %s", c->peer_code,
                     c->peer_reason);
        else
            snprintf(reason, sizeof(reason), "websocket connection lost");
        moq_qmux_on_channel_closed(c->q, c->close_received ? c->peer_code : MOQ_WS_ABNORMAL,
                                   reason);
        after(c, MOQ_ERR_CLOSED);
    }
    c->phase = W_DONE;
    client_free(c);
}

/* Move bytes both ways; returns false when the client was freed. */
static bool drive(moq_ws_client *c, int revents)
{
    /* gnutls may hold decrypted records the socket no longer signals */
    bool tls_pending = c->tls && gnutls_record_check_pending(c->tls) > 0;
    if (!c->broken && wslay_event_want_read(c->ws) &&
        ((revents & EV_READ) || c->in_off < c->in.len || tls_pending)) {
        c->budget = RECV_BUDGET;
        if (wslay_event_recv(c->ws) != 0) c->broken = true;
        if (!c->budget && !c->broken && c->tls)
            moq_defer_schedule(&c->process); /* records may wait inside gnutls */
    }
    for (int round = 0; round < 8 && !c->broken; round++) {
        if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) c->broken = true;
        if (!c->broken && flush_out(c) < 0) c->broken = true;
        if (!wslay_event_want_write(c->ws) || out_pending(c) > 0) break;
    }
    if (c->above_low && queued(c) < LOW_WATER && c->q && !c->broken) {
        c->above_low = false;
        after(c, moq_qmux_on_writable(c->q, moq_now_us()));
    }
    bool read_done = c->close_received || c->peer_eof || !wslay_event_get_read_enabled(c->ws);
    bool sent_all = wslay_event_get_close_sent(c->ws) && out_pending(c) == 0;
    if (c->broken || (sent_all && read_done) ||
        (c->peer_eof && !wslay_event_get_close_sent(c->ws))) {
        finish_open(c);
        return false;
    }
    int events = EV_READ;
    if (out_pending(c) || (wslay_event_want_write(c->ws) && out_pending(c) < OUT_HIGH))
        events |= EV_WRITE;
    set_io(c, events);
    return true;
}

static void process_cb(moq_defer *d)
{
    moq_ws_client *c = d->data;
    if (c->q) after(c, moq_qmux_process(c->q, moq_now_us()));
    drive(c, 0);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    moq_ws_client *c = w->data;
    if (c->q) after(c, moq_qmux_tick(c->q, moq_now_us()));
    drive(c, 0);
}

static void close_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    moq_ws_client *c = w->data;
    c->broken = true; /* the peer did not finish the closing handshake in time */
    drive(c, 0);
}

/* ---------------------------------------------------------------- the upgrade */

static const char *header_value(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line && line[2] != '\r') {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *end = strstr(v, "\r\n");
            if (!end) return NULL;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            size_t len = (size_t)(end - v);
            if (len >= outlen) len = outlen - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

static bool has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = value; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0) return true;
        p = e;
    }
    return false;
}

static void open_session(moq_ws_client *c)
{
    if (wslay_event_context_client_init(&c->ws, &ws_callbacks, c) != 0) {
        c->ws = NULL;
        fail(c, MOQ_ERR_NOMEM, "out of memory");
        return;
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, 1u << 20);
    struct moq_qmux_init init = {
        .wire = c->sel.wire,
        .protocol = c->sel.protocol,
        .path = c->target,
        .authority = c->authority,
        .peer = c->authority,
        .is_client = true,
        .io = &qmux_io,
        .io_ctx = c,
    };
    c->q = moq_qmux_new(&init, moq_now_us());
    if (!c->q) {
        fail(c, MOQ_ERR_NOMEM, "out of memory");
        return;
    }
    c->phase = W_OPEN;
    moq_debug("client", "WebSocket to %s%s open (%s)", c->authority, c->target, c->sel.subprotocol);
    c->cb(c->ctx, moq_qmux_transport(c->q), 0, NULL); /* the application attaches */
    if (c->q) after(c, moq_qmux_process(c->q, moq_now_us()));
    drive(c, 0);
}

/* The response head is complete at c->in[0 .. head_len). */
static void check_response(moq_ws_client *c, size_t head_len)
{
    char *head = malloc(head_len + 1);
    if (!head) {
        fail(c, MOQ_ERR_NOMEM, "out of memory");
        return;
    }
    memcpy(head, c->in.data, head_len);
    head[head_len] = '\0';
    c->in_off = head_len;
    int status = 0;
    char v[256];
    const char *why = NULL;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        why = "the server did not answer with HTTP";
    else if (status != 101)
        why = "refused";
    else if (!header_value(head, "upgrade", v, sizeof(v)) || !has_token(v, "websocket"))
        why = "the response has no Upgrade: websocket";
    else if (!header_value(head, "sec-websocket-accept", v, sizeof(v)) || strcmp(v, c->accept))
        why = "wrong Sec-WebSocket-Accept";
    else if (!header_value(head, "sec-websocket-protocol", v, sizeof(v)) ||
             moq_qmux_parse_subprotocol(v, strlen(v), &c->sel) < 0 || !strstr(c->offer, v))
        why = "the server chose no qmux subprotocol that was offered";
    free(head);
    if (why && status && status != 101) {
        fail(c, MOQ_ERR_PROTO, "WebSocket upgrade at %s%s refused with HTTP status %d",
             c->authority, c->target, status);
        return;
    }
    if (why) {
        fail(c, MOQ_ERR_PROTO, "WebSocket upgrade at %s%s failed: %s", c->authority, c->target,
             why);
        return;
    }
    open_session(c);
}

static void read_response(moq_ws_client *c)
{
    for (;;) {
        if (moq_buf_reserve(&c->in, 4096) < 0) {
            fail(c, MOQ_ERR_NOMEM, "out of memory");
            return;
        }
        ssize_t n = sock_recv(c, c->in.data + c->in.len, 4096);
        if (n == MOQ_ERR_AGAIN) return;
        if (n <= 0) {
            fail(c, MOQ_ERR_CLOSED, "%s closed the connection during the WebSocket upgrade",
                 c->authority);
            return;
        }
        c->in.len += (size_t)n;
        const uint8_t *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
        if (end) {
            check_response(c, (size_t)(end - c->in.data) + 4);
            return;
        }
        if (c->in.len > MAX_RESPONSE_HEAD) {
            fail(c, MOQ_ERR_PROTO, "%s sent an oversized upgrade response", c->authority);
            return;
        }
    }
}

static int queue_request(moq_ws_client *c)
{
    uint8_t nonce[16];
    if (gnutls_rnd(GNUTLS_RND_NONCE, nonce, sizeof(nonce)) < 0) return MOQ_ERR_TLS;
    char key[BASE64_ENCODE_RAW_LENGTH(16) + 1];
    base64_encode_raw((char *)key, sizeof(nonce), nonce);
    key[BASE64_ENCODE_RAW_LENGTH(16)] = '\0';
    if (moq_ws_accept_key(key, strlen(key), c->accept) < 0) return MOQ_ERR_INVALID;
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: %s\r\n\r\n",
                     c->target, c->authority, key, c->offer);
    if (n < 0 || (size_t)n >= sizeof(req)) return MOQ_ERR_TOO_LARGE;
    return moq_buf_append(&c->out, req, (size_t)n);
}

/* ---------------------------------------------------------------- connecting */

static void try_next_address(moq_ws_client *c);

static void begin_upgrade(moq_ws_client *c)
{
    c->phase = W_UPGRADE;
    int rv = queue_request(c);
    if (rv < 0) {
        fail(c, rv, "cannot build the WebSocket upgrade: %s", moq_strerror(rv));
        return;
    }
    if (flush_out(c) < 0) {
        fail(c, MOQ_ERR_IO, "cannot send the WebSocket upgrade to %s", c->authority);
        return;
    }
    set_io(c, out_pending(c) ? EV_READ | EV_WRITE : EV_READ);
}

static void tls_step(moq_ws_client *c)
{
    int rv = gnutls_handshake(c->tls);
    if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED) {
        set_io(c, gnutls_record_get_direction(c->tls) ? EV_WRITE : EV_READ);
        return;
    }
    if (rv < 0) {
        char why[200];
        moq_tls_client_verify_error(c->tls, why, sizeof(why));
        fail(c, MOQ_ERR_TLS, "TLS handshake with %s failed: %s", c->authority,
             why[0] ? why : gnutls_strerror(rv));
        return;
    }
    begin_upgrade(c);
}

static int start_tls(moq_ws_client *c)
{
    if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0) {
        c->tls = NULL;
        return MOQ_ERR_TLS;
    }
    static const gnutls_datum_t alpn = {(unsigned char *)"http/1.1", 8};
    if (gnutls_set_default_priority(c->tls) < 0 ||
        moq_tls_client_setup_session(c->trust, c->tls, c->host) < 0 ||
        gnutls_alpn_set_protocols(c->tls, &alpn, 1, 0) < 0)
        return MOQ_ERR_TLS;
    gnutls_transport_set_int(c->tls, c->fd);
    c->phase = W_TLS;
    tls_step(c);
    return 0;
}

static void connected(moq_ws_client *c)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) soerr = errno;
    if (soerr) {
        snprintf(c->last_error, sizeof(c->last_error), "%s", strerror(soerr));
        set_io(c, 0);
        close(c->fd);
        c->fd = -1;
        try_next_address(c);
        return;
    }
    if (!c->trust) {
        begin_upgrade(c);
        return;
    }
    if (start_tls(c) < 0) fail(c, MOQ_ERR_TLS, "cannot set up TLS for %s", c->authority);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    moq_ws_client *c = w->data;
    switch (c->phase) {
    case W_CONNECT:
        connected(c);
        break;
    case W_TLS:
        tls_step(c);
        break;
    case W_UPGRADE:
        if ((revents & EV_WRITE) && flush_out(c) < 0) {
            fail(c, MOQ_ERR_IO, "cannot send the WebSocket upgrade to %s", c->authority);
            return;
        }
        set_io(c, out_pending(c) ? EV_READ | EV_WRITE : EV_READ);
        if (revents & EV_READ) read_response(c);
        break;
    case W_OPEN:
        drive(c, revents);
        break;
    case W_DONE:
        break;
    }
}

/* Start a TCP connect to the next address. 0 when one is under way, -1 when none is left. */
static int open_next(moq_ws_client *c)
{
    while (c->next_addr) {
        struct addrinfo *ai = c->next_addr;
        c->next_addr = ai->ai_next;
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            snprintf(c->last_error, sizeof(c->last_error), "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            snprintf(c->last_error, sizeof(c->last_error), "%s", strerror(errno));
            close(fd);
            continue;
        }
        c->fd = fd;
        c->io_events = 0;
        set_io(c, EV_WRITE);
        return 0;
    }
    return -1;
}

static void try_next_address(moq_ws_client *c)
{
    if (open_next(c) < 0)
        fail(c, MOQ_ERR_IO, "cannot connect to %s over TCP: %s", c->authority,
             c->last_error[0] ? c->last_error : "no address");
}

int moq_ws_connect(struct ev_loop *loop, const struct moq_ws_client_config *cfg,
                   moq_ws_connect_fn cb, void *ctx, moq_ws_client **out)
{
    if (!loop || !cfg || !cfg->host || !cfg->port || !cfg->target || !cb || !out)
        return MOQ_ERR_INVALID;
    moq_ws_client *c = calloc(1, sizeof(*c));
    if (!c) return MOQ_ERR_NOMEM;
    c->loop = loop;
    c->cb = cb;
    c->ctx = ctx;
    c->fd = -1;
    c->trust = cfg->tls;
    moq_ws_msgq_init(&c->out_msgs);
    ev_io_init(&c->io, io_cb, -1, 0);
    c->io.data = c;
    int deferred = moq_defer_init(&c->process, loop, process_cb, c);
    ev_timer_init(&c->timer, timer_cb, 0., 0.);
    c->timer.data = c;
    ev_timer_init(&c->close_timer, close_timer_cb, CLOSE_TIMEOUT_S, 0.);
    c->close_timer.data = c;
    snprintf(c->host, sizeof(c->host), "%s", cfg->host);
    snprintf(c->port, sizeof(c->port), "%s", cfg->port);
    snprintf(c->authority, sizeof(c->authority), "%s", cfg->authority ? cfg->authority : cfg->host);
    c->target = strdup(cfg->target);
    int n = moq_qmux_offer_subprotocols(c->offer, sizeof(c->offer), cfg->versions, cfg->n_versions,
                                        NULL, 0);
    if (!c->target || deferred < 0 || n < 0) {
        client_free(c);
        return !c->target || deferred < 0 ? MOQ_ERR_NOMEM : MOQ_ERR_INVALID;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    if (getaddrinfo(c->host, c->port, &hints, &c->addrs) != 0) {
        c->addrs = NULL;
        client_free(c);
        return MOQ_ERR_NOT_FOUND;
    }
    c->next_addr = c->addrs;
    c->phase = W_CONNECT;
    if (open_next(c) < 0) {
        client_free(c);
        return MOQ_ERR_IO;
    }
    *out = c;
    return 0;
}

void moq_ws_connect_cancel(moq_ws_client *c)
{
    if (c && c->phase != W_OPEN && c->phase != W_DONE) client_free(c);
}
