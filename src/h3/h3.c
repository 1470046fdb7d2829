#include "h3/h3.h"
#include "h3/frames.h"
#include "moq/errors.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/map.h"
#include "util/pool.h"
#include "util/url.h"
#include "util/varint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A peer may hold this many WebTransport streams (and bytes per stream) for a session
 * whose CONNECT we have not processed yet. */
#define MAX_PENDING_STREAMS 64
#define MAX_PENDING_BYTES   (64 * 1024)
/* How long the QUIC connection outlives its last session, so the close capsule arrives.
 * Past that it stays open while the peer has not acknowledged everything we sent (the
 * capsule and the CONNECT stream's FIN above all: a connection closed before them reaches
 * the peer as a lost session, not a closed one), looking again every LINGER_POLL_US, up to
 * LINGER_MAX_US after the last session. */
#define LINGER_AFTER_CLOSE_US (500 * MOQ_US_PER_MS)
#define LINGER_POLL_US        (50 * MOQ_US_PER_MS)
#define LINGER_MAX_US         (5 * MOQ_US_PER_S)

enum stream_kind {
    HS_UNKNOWN,        /* peer stream whose type is not read yet */
    HS_PEER_CONTROL,   /* the peer's control stream */
    HS_DRAIN,          /* read and discard (QPACK streams, unknown types, dead sessions) */
    HS_REQUEST,        /* server: request stream awaiting its HEADERS */
    HS_CONNECT,        /* a session's CONNECT stream after the headers: capsules */
    HS_CLIENT_CONNECT, /* client: our CONNECT stream awaiting the response */
    HS_WT_PENDING,     /* WebTransport stream whose session is not established yet */
    HS_WT,             /* WebTransport stream of an established session */
    HS_LOCAL,          /* our own control stream (send only) */
};

struct wt_session;

struct h3_stream {
    int64_t sid;
    enum stream_kind kind;
    bool bidi;
    bool fin;           /* the peer finished its side */
    moq_buf in;         /* bytes held until a type, header or frame is complete */
    moq_buf capsules;   /* CONNECT stream: capsule bytes not parsed yet */
    uint64_t skip;      /* bytes of an ignored frame still to discard */
    uint64_t data_left; /* CONNECT stream: bytes left in the current DATA frame */
    uint64_t session_id;
    struct wt_session *wt;
    void *app_ctx;
};

struct wt_session {
    moq_transport t;
    struct h3_conn *conn;
    uint64_t id;
    bool established;
    bool closing;        /* close() called or the peer closed: no more app events */
    bool close_reported; /* `closed` delivered */
    uint64_t close_code;
    char close_reason[256];
    uint64_t finish_at; /* deliver `closed` and free the session then (UINT64_MAX: not yet) */
};

struct h3_conn {
    moq_transport *quic;
    struct moq_h3_driver drv;
    uint64_t reported_deadline; /* the next deadline as last reported to drv.timer */
    bool is_client;
    /* server */
    const char *const *protocols;
    size_t n_protocols;
    moq_h3_accept_fn accept;
    void *accept_ctx;
    bool (*busy)(void *ctx);
    const char *fallback_protocol; /* see moq_h3_server_config */
    /* client */
    char *authority;
    char *path;
    char *offer; /* wt-available-protocols value */
    moq_h3_connect_fn done;
    void *done_ctx;
    bool connect_sent;
    struct wt_session *client_session;

    moq_u64map streams;  /* QUIC stream id -> h3_stream */
    moq_u64map sessions; /* session id -> wt_session */
    bool have_peer_control;
    bool settings_received;
    struct moq_h3_settings peer;
    size_t pending_streams;
    bool quic_closing;
    uint64_t linger_at;    /* close the QUIC connection then unless a session came */
    uint64_t linger_until; /* ... and at the latest then, acknowledged or not */
    bool shutting_down;    /* moq_h3_shutdown: close as soon as no session is left */
};

static const struct moq_transport_ops wt_ops;
static const struct moq_transport_events h3_events;

static void client_failed(struct h3_conn *c, int err, int status);
static void client_send_connect(struct h3_conn *c);
static void client_on_response(struct h3_conn *c, struct h3_stream *s,
                               const struct moq_h3_headers *h);

/* ---------------------------------------------------------------- helpers */

static void conn_fail(struct h3_conn *c, uint64_t h3code, const char *why)
{
    if (c->quic_closing) return;
    moq_warn("h3", "%s: closing HTTP/3 connection: %s", c->quic->peer, why);
    c->quic_closing = true;
    moq_transport_close(c->quic, h3code, why);
}

static struct h3_stream *stream_new(struct h3_conn *c, int64_t sid, enum stream_kind kind,
                                    bool bidi)
{
    struct h3_stream *s = moq_pool_calloc(sizeof(*s));
    if (!s) return NULL;
    s->sid = sid;
    s->kind = kind;
    s->bidi = bidi;
    moq_buf_init(&s->in);
    moq_buf_init(&s->capsules);
    if (moq_u64map_put(&c->streams, (uint64_t)sid, s) < 0) {
        moq_pool_free(s, sizeof(*s));
        return NULL;
    }
    c->quic->ops->set_stream_ctx(c->quic, sid, s);
    return s;
}

static void stream_free(struct h3_conn *c, struct h3_stream *s)
{
    if (s->kind == HS_WT_PENDING && c->pending_streams) c->pending_streams--;
    moq_u64map_del(&c->streams, (uint64_t)s->sid);
    moq_buf_free(&s->in);
    moq_buf_free(&s->capsules);
    moq_pool_free(s, sizeof(*s));
}

static bool stream_is_local(const struct h3_conn *c, int64_t sid)
{
    return (sid & 1) == (c->is_client ? 0 : 1);
}

/* Abort both directions we own of a stream and ignore whatever else arrives on it. */
static void stream_abort(struct h3_conn *c, struct h3_stream *s, uint64_t code)
{
    if (s->bidi || !stream_is_local(c, s->sid)) c->quic->ops->stop(c->quic, s->sid, code);
    if (s->bidi || stream_is_local(c, s->sid)) c->quic->ops->reset(c->quic, s->sid, code);
    if (s->kind == HS_WT_PENDING && c->pending_streams) c->pending_streams--;
    s->kind = HS_DRAIN;
    s->wt = NULL;
    moq_buf_free(&s->in);
}

static uint64_t map_code_in(uint64_t h3)
{
    uint32_t code;
    return moq_code_from_h3(h3, &code) == 0 ? code : h3;
}

/* ---------------------------------------------------------------- sessions */

static void maybe_linger(struct h3_conn *c);

static void session_detach_streams(struct h3_conn *c, struct wt_session *w, bool abort)
{
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&c->streams, &it, NULL, &v)) {
        struct h3_stream *s = v;
        if (s->wt != w) continue;
        if (abort && s->kind == HS_WT) stream_abort(c, s, MOQ_WT_SESSION_GONE);
        s->wt = NULL;
        if (s->kind == HS_WT) s->kind = HS_DRAIN;
    }
}

/* Deliver `closed` (once) and free the session. Its streams are aborted here, a loop
 * iteration after the close: by then the CLOSE_WEBTRANSPORT_SESSION capsule has gone out
 * in an earlier packet. Chromium, handed the stream resets first, sometimes reported the
 * session as lost instead of closed with our code. */
static void session_finish(struct h3_conn *c, struct wt_session *w)
{
    session_detach_streams(c, w, !c->quic_closing);
    moq_u64map_del(&c->sessions, w->id);
    if (c->client_session == w) c->client_session = NULL;
    if (w->established && !w->close_reported && w->t.ev && w->t.ev->closed) {
        w->close_reported = true;
        w->t.ev->closed(w->t.app, &w->t, w->close_code, w->close_reason);
    }
    moq_info("h3", "%s: WebTransport session %llu closed (code %llu%s%s)", c->quic->peer,
             (unsigned long long)w->id, (unsigned long long)w->close_code,
             w->close_reason[0] ? ": " : "", w->close_reason);
    free(w->t.path);
    free(w->t.authority);
    free(w);
    maybe_linger(c);
}

/* ---------------------------------------------------------------- time */

static uint64_t conn_now(const struct h3_conn *c)
{
    return c->drv.clock->now_us(c->drv.clock->ctx);
}

uint64_t moq_h3_next_deadline(const moq_h3_conn *c)
{
    uint64_t next = c->linger_at;
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&c->sessions, &it, NULL, &v)) {
        const struct wt_session *w = v;
        if (w->finish_at < next) next = w->finish_at;
    }
    return next;
}

static void report_deadline(struct h3_conn *c, bool always)
{
    uint64_t next = moq_h3_next_deadline(c);
    if (next == c->reported_deadline && !always) return;
    c->reported_deadline = next;
    c->drv.timer(c->drv.ctx, c, next);
}

/* Mark the session over and deliver `closed` from the next timer call: the application
 * is never called back from inside its own downcall (close()), and the close capsule
 * leaves before the session's streams are reset. */
static void session_close_later(struct h3_conn *c, struct wt_session *w, uint64_t code,
                                const char *reason)
{
    if (w->closing) return;
    w->closing = true;
    w->close_code = code;
    snprintf(w->close_reason, sizeof(w->close_reason), "%s", reason ? reason : "");
    w->finish_at = conn_now(c);
    report_deadline(c, false);
}

/* Close the QUIC connection now; its CONNECTION_CLOSE leaves at once. */
static void close_quic(struct h3_conn *c)
{
    c->linger_at = UINT64_MAX;
    c->quic_closing = true;
    moq_transport_close(c->quic, MOQ_H3_NO_ERROR, "");
}

static bool conn_unused(const struct h3_conn *c)
{
    return !c->quic_closing && moq_u64map_len(&c->sessions) == 0;
}

/* The connection was left without a session: close it after the linger, or at once when
 * shutting down. */
static void maybe_linger(struct h3_conn *c)
{
    if (!conn_unused(c)) return;
    if (c->shutting_down) {
        close_quic(c);
    } else {
        uint64_t now = conn_now(c);
        c->linger_at = now + LINGER_AFTER_CLOSE_US;
        c->linger_until = now + LINGER_MAX_US;
    }
    report_deadline(c, false);
}

/* True while some byte we wrote on a stream still open for sending is unacknowledged. */
static bool conn_has_unacked(struct h3_conn *c)
{
    if (!c->quic->ops->unacked) return false;
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&c->streams, &it, NULL, &v)) {
        const struct h3_stream *s = v;
        bool sends = s->bidi || stream_is_local(c, s->sid);
        if (sends && c->quic->ops->unacked(c->quic, s->sid) > 0) return true;
    }
    return false;
}

static void linger_expired(struct h3_conn *c, uint64_t now)
{
    c->linger_at = UINT64_MAX;
    if (!conn_unused(c)) return; /* a session came */
    if (now < c->linger_until && conn_has_unacked(c)) {
        uint64_t next = now + LINGER_POLL_US;
        c->linger_at = next < c->linger_until ? next : c->linger_until;
        return;
    }
    close_quic(c);
}

void moq_h3_shutdown(moq_h3_conn *c)
{
    c->shutting_down = true;
    maybe_linger(c);
}

/* One session whose `closed` is due at now, or NULL. */
static struct wt_session *session_due(struct h3_conn *c, uint64_t now)
{
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&c->sessions, &it, NULL, &v)) {
        struct wt_session *w = v;
        if (w->finish_at <= now) return w;
    }
    return NULL;
}

void moq_h3_on_timer(moq_h3_conn *c, uint64_t now)
{
    struct wt_session *w;
    while ((w = session_due(c, now)))
        session_finish(c, w);
    if (c->linger_at <= now) linger_expired(c, now);
    report_deadline(c, true); /* even when unchanged: the driver's timer has fired */
}

static struct wt_session *session_new(struct h3_conn *c, uint64_t id, const char *path,
                                      const char *authority, const char *protocol)
{
    struct wt_session *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->conn = c;
    w->id = id;
    w->t.ops = &wt_ops;
    w->t.kind = MOQ_TRANSPORT_WEBTRANSPORT;
    w->t.is_client = c->is_client;
    snprintf(w->t.protocol, sizeof(w->t.protocol), "%s", protocol ? protocol : "");
    snprintf(w->t.peer, sizeof(w->t.peer), "%s", c->quic->peer);
    w->t.peer_certified = c->quic->peer_certified;
    w->t.peer_cert_expires = c->quic->peer_cert_expires;
    w->t.path = path ? strdup(path) : NULL;
    w->t.authority = authority ? strdup(authority) : NULL;
    w->finish_at = UINT64_MAX;
    if ((path && !w->t.path) || (authority && !w->t.authority) ||
        moq_u64map_put(&c->sessions, id, w) < 0) {
        free(w->t.path);
        free(w->t.authority);
        free(w);
        return NULL;
    }
    return w;
}

/* Deliver one WebTransport stream's bytes to the application. */
static void wt_deliver(struct h3_conn *c, struct h3_stream *s, const uint8_t *data, size_t len,
                       bool fin)
{
    struct wt_session *w = s->wt;
    if (!w || w->closing || !w->t.ev) return;
    if (len == 0 && !fin) return;
    w->t.ev->stream_data(w->t.app, &w->t, s->sid, s->app_ctx, data, len, fin);
}

static void wt_open_peer_stream(struct h3_conn *c, struct h3_stream *s, struct wt_session *w)
{
    s->kind = HS_WT;
    s->wt = w;
    if (w->t.ev && w->t.ev->stream_opened) w->t.ev->stream_opened(w->t.app, &w->t, s->sid, s->bidi);
}

/* Attach streams that arrived before their session was established. */
static void session_adopt_pending(struct h3_conn *c, struct wt_session *w)
{
    size_t it = 0;
    void *v;
    struct h3_stream *list[MAX_PENDING_STREAMS];
    size_t n = 0;
    while (moq_u64map_next(&c->streams, &it, NULL, &v) && n < MAX_PENDING_STREAMS) {
        struct h3_stream *s = v;
        if (s->kind == HS_WT_PENDING && s->session_id == w->id) list[n++] = s;
    }
    for (size_t i = 0; i < n && !w->closing; i++) {
        struct h3_stream *s = list[i];
        c->pending_streams--;
        wt_open_peer_stream(c, s, w);
        moq_buf held = s->in;
        moq_buf_init(&s->in);
        if (held.len || s->fin) wt_deliver(c, s, held.data, held.len, s->fin);
        moq_buf_free(&held);
    }
}

/* ---------------------------------------------------------------- server requests */

struct pick_ctx {
    struct h3_conn *c;
    const char *chosen;
};

static int pick_protocol(void *ctx, const char *item)
{
    struct pick_ctx *p = ctx;
    for (size_t i = 0; i < p->c->n_protocols; i++) {
        if (strcmp(p->c->protocols[i], item) == 0) {
            p->chosen = p->c->protocols[i];
            return 1;
        }
    }
    return 0;
}

static int respond(struct h3_conn *c, int64_t sid, const char *status, const char *protocol,
                   bool fin)
{
    const char *names[3] = {":status", "sec-webtransport-http3-draft", "wt-protocol"};
    const char *values[3] = {status, "draft02", NULL};
    size_t n = 1;
    moq_buf proto;
    moq_buf_init(&proto);
    if (strcmp(status, "200") == 0) n = 2;
    if (protocol) {
        if (moq_sf_string_encode(&proto, protocol) < 0 || moq_buf_put_u8(&proto, 0) < 0) {
            moq_buf_free(&proto);
            return MOQ_ERR_NOMEM;
        }
        values[2] = (const char *)proto.data;
        n = 3;
    }
    moq_buf out;
    moq_buf_init(&out);
    int rv = moq_h3_encode_headers(&out, names, values, n);
    if (rv == 0) rv = moq_transport_write_bytes(c->quic, sid, out.data, out.len, fin);
    moq_buf_free(&out);
    moq_buf_free(&proto);
    return rv;
}

/* The refusal's reason as the response body: one DATA frame of text. */
static void respond_body(struct h3_conn *c, int64_t sid, const char *why)
{
    size_t n = strlen(why);
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_buf_put_varint(&b, MOQ_H3_FRAME_DATA);
    if (rv == 0) rv = moq_buf_put_varint(&b, n + 1);
    if (rv == 0) rv = moq_buf_append(&b, why, n);
    if (rv == 0) rv = moq_buf_put_u8(&b, '\n');
    if (rv == 0)
        moq_transport_write_bytes(c->quic, sid, b.data, b.len, true);
    else
        moq_transport_write_bytes(c->quic, sid, NULL, 0, true);
    moq_buf_free(&b);
}

static void reject_request(struct h3_conn *c, struct h3_stream *s, const char *status,
                           const char *why)
{
    moq_info_repeat("refused HTTP/3 requests", "h3", "%s: request refused with %s: %s",
                    c->quic->peer, status, why);
    /* No STOP_SENDING: Chromium handles it before the response and reports a QUIC
     * protocol error instead of the refusal; it cancels the stream itself once it has
     * read the status. Whatever else arrives on the stream is drained. */
    if (respond(c, s->sid, status, NULL, false) == 0) respond_body(c, s->sid, why);
    s->kind = HS_DRAIN;
    moq_buf_free(&s->in);
    /* A connection left without a session is closed after the linger time, as when its
     * last session ends (a browser opens one connection per WebTransport session). */
    maybe_linger(c);
}

/* Without a fallback protocol, a CONNECT offering none we implement is refused: the 400
 * names what to offer instead (and makes @moq/net fall back to WebSocket). */
static void refuse_protocols(struct h3_conn *c, struct h3_stream *s, bool offered_some)
{
    char list[256] = "";
    size_t o = 0;
    for (size_t i = 0; i < c->n_protocols && o < sizeof(list); i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s\"%s\"", i ? ", " : "",
                              c->protocols[i]);
    char why[512];
    snprintf(why, sizeof(why),
             "%s: this relay needs wt-available-protocols with one of %s (the compat SETUP of "
             "clients that send none is not supported)",
             offered_some ? "no offered WebTransport protocol is supported"
                          : "no WebTransport protocol offered",
             list);
    reject_request(c, s, "400", why);
}

static const char *field(const struct moq_h3_headers *h, const char *name)
{
    const struct moq_h3_field *f = moq_h3_headers_get(h, name);
    return f ? f->value : NULL;
}

static void handle_connect(struct h3_conn *c, struct h3_stream *s, const struct moq_h3_headers *h)
{
    const char *method = field(h, ":method");
    const char *protocol = field(h, ":protocol");
    const char *scheme = field(h, ":scheme");
    const char *authority = field(h, ":authority");
    const char *path = field(h, ":path");
    if (!method || !path || !scheme) {
        conn_fail(c, MOQ_H3_MESSAGE_ERROR, "request without :method, :scheme or :path");
        return;
    }
    if (strcmp(method, "CONNECT") != 0 || !protocol || strcmp(protocol, "webtransport") != 0) {
        reject_request(c, s, "404", "not a WebTransport CONNECT");
        return;
    }
    moq_target target;
    if (!authority || path[0] != '/' || moq_target_split(path, strlen(path), &target) < 0) {
        reject_request(c, s, "400", "CONNECT without :authority or with a bad :path");
        return;
    }
    struct pick_ctx pick = {c, NULL};
    const struct moq_h3_field *offer = moq_h3_headers_get(h, "wt-available-protocols");
    if (offer && moq_sf_string_list(offer->value, offer->value_len, pick_protocol, &pick) < 0) {
        reject_request(c, s, "400", "malformed wt-available-protocols");
        return;
    }
    bool fallback = !pick.chosen && c->fallback_protocol;
    if (fallback) pick.chosen = c->fallback_protocol;
    if (!pick.chosen) {
        refuse_protocols(c, s, offer != NULL);
        return;
    }
    if (moq_u64map_get(&c->sessions, (uint64_t)s->sid)) {
        conn_fail(c, MOQ_H3_ID_ERROR, "duplicate session");
        return;
    }
    if (c->busy && c->busy(c->accept_ctx)) {
        reject_request(c, s, "503", "server busy: session limit reached");
        return;
    }
    struct wt_session *w = session_new(c, (uint64_t)s->sid, path, authority, pick.chosen);
    if (!w) {
        reject_request(c, s, "500", "out of memory");
        return;
    }
    s->kind = HS_CONNECT;
    s->wt = w;
    if (respond(c, s->sid, "200", fallback ? NULL : pick.chosen, false) < 0) {
        moq_u64map_del(&c->sessions, w->id);
        free(w->t.path);
        free(w->t.authority);
        free(w);
        s->wt = NULL;
        stream_abort(c, s, MOQ_H3_INTERNAL_ERROR);
        return;
    }
    w->established = true;
    moq_info("h3", "%s: WebTransport session %llu on %s (%s)", c->quic->peer,
             (unsigned long long)w->id, path, pick.chosen);
    if (c->accept(c->accept_ctx, &w->t) < 0 || !w->t.ev) {
        w->t.ev = NULL;
        session_close_later(c, w, 0, "refused");
        moq_buf cap;
        moq_buf_init(&cap);
        if (moq_h3_encode_close_capsule(&cap, 0, "refused") == 0)
            moq_transport_write_bytes(c->quic, s->sid, cap.data, cap.len, true);
        moq_buf_free(&cap);
        return;
    }
    session_adopt_pending(c, w);
}

/* ---------------------------------------------------------------- frame parsing */

/* Drop buffered bytes of a frame being ignored; true while more of it is still to come. */
static bool skip_ignored(struct h3_stream *s)
{
    if (!s->skip) return false;
    uint64_t n = s->skip < s->in.len ? s->skip : s->in.len;
    moq_buf_consume(&s->in, (size_t)n);
    s->skip -= n;
    return s->skip != 0;
}

/* Process bytes of the peer's control stream. */
static void on_control_bytes(struct h3_conn *c, struct h3_stream *s)
{
    for (;;) {
        if (skip_ignored(s)) return;
        uint64_t type, len;
        int hl = moq_h3_frame_header(s->in.data, s->in.len, &type, &len);
        if (hl < 0) return;
        if (!c->settings_received && type != MOQ_H3_FRAME_SETTINGS) {
            conn_fail(c, MOQ_H3_MISSING_SETTINGS, "first control frame is not SETTINGS");
            return;
        }
        switch (type) {
        case MOQ_H3_FRAME_SETTINGS:
            if (c->settings_received) {
                conn_fail(c, MOQ_H3_FRAME_UNEXPECTED, "second SETTINGS frame");
                return;
            }
            if (len > 4096) {
                conn_fail(c, MOQ_H3_EXCESSIVE_LOAD, "SETTINGS frame too large");
                return;
            }
            if (s->in.len < (size_t)hl + len) return;
            if (moq_h3_decode_settings(s->in.data + hl, (size_t)len, &c->peer) < 0) {
                conn_fail(c, MOQ_H3_SETTINGS_ERROR, "malformed SETTINGS");
                return;
            }
            c->settings_received = true;
            if (!c->peer.h3_datagram || !(c->peer.enable_webtransport || c->peer.wt_max_sessions))
                moq_debug("h3", "%s: peer SETTINGS lack datagram or WebTransport support",
                          c->quic->peer);
            moq_buf_consume(&s->in, hl + (size_t)len);
            if (c->is_client && !c->connect_sent) client_send_connect(c);
            continue;
        case MOQ_H3_FRAME_DATA:
        case MOQ_H3_FRAME_HEADERS:
        case MOQ_H3_FRAME_PUSH_PROMISE:
        case 0x02:
        case 0x06:
        case 0x08:
        case 0x09: /* HTTP/2 frame types */
            conn_fail(c, MOQ_H3_FRAME_UNEXPECTED, "unexpected frame on the control stream");
            return;
        default: /* GOAWAY, MAX_PUSH_ID, CANCEL_PUSH and unknown frames are ignored */
            moq_buf_consume(&s->in, (size_t)hl);
            s->skip = len;
            continue;
        }
    }
}

/* Server: bytes of a request stream until its HEADERS frame is complete. */
static void on_request_bytes(struct h3_conn *c, struct h3_stream *s)
{
    while (s->kind == HS_REQUEST || s->kind == HS_CLIENT_CONNECT) {
        if (skip_ignored(s)) return;
        uint64_t type, len;
        int hl = moq_h3_frame_header(s->in.data, s->in.len, &type, &len);
        if (hl < 0) {
            if (s->fin) stream_abort(c, s, MOQ_H3_MESSAGE_ERROR);
            return;
        }
        if (type == MOQ_H3_FRAME_HEADERS) {
            if (len > MOQ_H3_MAX_FIELD_SECTION) {
                stream_abort(c, s, MOQ_H3_EXCESSIVE_LOAD);
                return;
            }
            if (s->in.len < (size_t)hl + len) {
                if (s->fin) stream_abort(c, s, MOQ_H3_MESSAGE_ERROR);
                return;
            }
            struct moq_h3_headers h;
            int rv = moq_h3_decode_headers(s->in.data + hl, (size_t)len, &h);
            moq_buf_consume(&s->in, hl + (size_t)len);
            if (rv < 0) {
                conn_fail(c, MOQ_QPACK_DECOMPRESSION_FAILED, "undecodable header section");
                return;
            }
            if (s->kind == HS_REQUEST) {
                handle_connect(c, s, &h);
            } else {
                client_on_response(c, s, &h);
            }
            moq_h3_headers_free(&h);
            return;
        }
        if (type == MOQ_H3_FRAME_DATA || !(moq_h3_is_grease(type) || type > 0x0d)) {
            stream_abort(c, s, MOQ_H3_FRAME_UNEXPECTED);
            return;
        }
        moq_buf_consume(&s->in, (size_t)hl);
        s->skip = len;
    }
}

/* Bytes of a session's CONNECT stream: DATA frames carrying capsules. */
static void on_connect_bytes(struct h3_conn *c, struct h3_stream *s, moq_buf *capsules)
{
    for (;;) {
        if (skip_ignored(s)) return;
        if (s->data_left) {
            uint64_t n = s->data_left < s->in.len ? s->data_left : s->in.len;
            if (moq_buf_append(capsules, s->in.data, (size_t)n) < 0) return;
            moq_buf_consume(&s->in, (size_t)n);
            s->data_left -= n;
            if (s->data_left) return;
            continue;
        }
        uint64_t type, len;
        int hl = moq_h3_frame_header(s->in.data, s->in.len, &type, &len);
        if (hl < 0) return;
        moq_buf_consume(&s->in, (size_t)hl);
        if (type == MOQ_H3_FRAME_DATA)
            s->data_left = len;
        else
            s->skip = len; /* trailers and unknown frames are ignored */
    }
}

static void parse_capsules(struct h3_conn *c, struct h3_stream *s, moq_buf *capsules)
{
    struct wt_session *w = s->wt;
    for (;;) {
        uint64_t type;
        const uint8_t *payload;
        size_t plen;
        int n = moq_h3_capsule(capsules->data, capsules->len, &type, &payload, &plen);
        if (n == MOQ_ERR_AGAIN) return;
        if (n < 0) {
            conn_fail(c, MOQ_H3_MESSAGE_ERROR, "oversized capsule");
            return;
        }
        if (type == MOQ_WT_CAPSULE_CLOSE_SESSION && w && plen >= 4) {
            uint32_t code = ((uint32_t)payload[0] << 24) | ((uint32_t)payload[1] << 16) |
                            ((uint32_t)payload[2] << 8) | payload[3];
            char reason[256];
            size_t rl = plen - 4 < sizeof(reason) - 1 ? plen - 4 : sizeof(reason) - 1;
            memcpy(reason, payload + 4, rl);
            reason[rl] = '\0';
            moq_transport_write_bytes(c->quic, s->sid, NULL, 0, true);
            session_close_later(c, w, code, reason);
        }
        moq_buf_consume(capsules, (size_t)n);
    }
}

/* Read the stream type (and session id) of a new peer stream. Returns false while more
 * bytes are needed. */
static bool classify_peer_stream(struct h3_conn *c, struct h3_stream *s)
{
    uint64_t type;
    int n = moq_varint_get(s->in.data, s->in.len, &type);
    if (n < 0) return false;
    if (!s->bidi) {
        switch (type) {
        case MOQ_H3_STREAM_CONTROL:
            if (c->have_peer_control) {
                conn_fail(c, MOQ_H3_STREAM_CREATION_ERROR, "second control stream");
                return true;
            }
            c->have_peer_control = true;
            s->kind = HS_PEER_CONTROL;
            moq_buf_consume(&s->in, (size_t)n);
            return true;
        case MOQ_WT_STREAM_UNI:
            break;
        case MOQ_H3_STREAM_QPACK_ENCODER:
        case MOQ_H3_STREAM_QPACK_DECODER:
            s->kind = HS_DRAIN;
            moq_buf_free(&s->in);
            return true;
        default:
            c->quic->ops->stop(c->quic, s->sid, MOQ_H3_STREAM_CREATION_ERROR);
            s->kind = HS_DRAIN;
            moq_buf_free(&s->in);
            return true;
        }
    } else if (type != MOQ_WT_STREAM_BIDI) {
        if (c->is_client) {
            stream_abort(c, s, MOQ_H3_STREAM_CREATION_ERROR);
            return true;
        }
        s->kind = HS_REQUEST; /* a request: the type byte belongs to its first frame */
        return true;
    }
    uint64_t session_id;
    int m = moq_varint_get(s->in.data + n, s->in.len - (size_t)n, &session_id);
    if (m < 0) return false;
    moq_buf_consume(&s->in, (size_t)(n + m));
    s->session_id = session_id;
    struct wt_session *w = moq_u64map_get(&c->sessions, session_id);
    if (w && w->established && !w->closing) {
        moq_buf held = s->in;
        moq_buf_init(&s->in);
        wt_open_peer_stream(c, s, w);
        if (held.len) wt_deliver(c, s, held.data, held.len, false);
        moq_buf_free(&held);
        return true;
    }
    if (w || c->pending_streams >= MAX_PENDING_STREAMS) {
        stream_abort(c, s, MOQ_WT_SESSION_GONE);
        return true;
    }
    s->kind = HS_WT_PENDING;
    c->pending_streams++;
    return true;
}

/* ---------------------------------------------------------------- QUIC events */

static void ev_stream_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    struct h3_conn *c = app;
    if (!stream_new(c, sid, HS_UNKNOWN, bidi)) conn_fail(c, MOQ_H3_INTERNAL_ERROR, "out of memory");
}

static void ev_stream_data(void *app, moq_transport *t, int64_t sid, void *sctx,
                           const uint8_t *data, size_t len, bool fin)
{
    struct h3_conn *c = app;
    struct h3_stream *s = sctx;
    if (!s) return;
    if (fin) s->fin = true;
    if (s->kind == HS_WT) {
        wt_deliver(c, s, data, len, fin);
        return;
    }
    if (s->kind == HS_DRAIN || s->kind == HS_LOCAL) return;
    if (s->kind == HS_WT_PENDING && s->in.len + len > MAX_PENDING_BYTES) {
        stream_abort(c, s, MOQ_H3_EXCESSIVE_LOAD);
        return;
    }
    if (moq_buf_append(&s->in, data, len) < 0) {
        stream_abort(c, s, MOQ_H3_INTERNAL_ERROR);
        return;
    }
    if (s->kind == HS_UNKNOWN) {
        if (s->in.len > 16 + MOQ_H3_MAX_FIELD_SECTION) {
            stream_abort(c, s, MOQ_H3_EXCESSIVE_LOAD);
            return;
        }
        if (!classify_peer_stream(c, s)) {
            if (fin) stream_abort(c, s, MOQ_H3_STREAM_CREATION_ERROR);
            return;
        }
        if (s->kind == HS_WT) {
            if (fin) wt_deliver(c, s, NULL, 0, true);
            return;
        }
    }
    switch (s->kind) {
    case HS_PEER_CONTROL:
        if (fin) {
            conn_fail(c, MOQ_H3_CLOSED_CRITICAL_STREAM, "control stream closed");
            return;
        }
        on_control_bytes(c, s);
        break;
    case HS_REQUEST:
    case HS_CLIENT_CONNECT:
        if (s->in.len > 16 + MOQ_H3_MAX_FIELD_SECTION) {
            stream_abort(c, s, MOQ_H3_EXCESSIVE_LOAD);
            return;
        }
        on_request_bytes(c, s);
        if (s->kind != HS_CONNECT || (!s->in.len && !fin)) break;
        /* bytes after the headers are capsules */
        __attribute__((fallthrough));
    case HS_CONNECT:
        /* capsules may span DATA frames: their bytes collect in s->capsules */
        on_connect_bytes(c, s, &s->capsules);
        if (s->capsules.len > MOQ_H3_MAX_CAPSULE + 16) {
            conn_fail(c, MOQ_H3_EXCESSIVE_LOAD, "oversized capsule");
            return;
        }
        if (s->capsules.len) parse_capsules(c, s, &s->capsules);
        if (fin && s->wt) {
            moq_transport_write_bytes(c->quic, s->sid, NULL, 0, true);
            session_close_later(c, s->wt, s->wt->closing ? s->wt->close_code : 0,
                                s->wt->closing ? s->wt->close_reason : "");
        }
        break;
    case HS_WT_PENDING:
    case HS_DRAIN:
    default:
        break;
    }
}

static void ev_stream_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct h3_conn *c = app;
    struct h3_stream *s = sctx;
    if (!s) return;
    if (s->kind == HS_WT && s->wt && !s->wt->closing && s->wt->t.ev->stream_reset) {
        s->wt->t.ev->stream_reset(s->wt->t.app, &s->wt->t, sid, s->app_ctx, map_code_in(code));
    } else if (s->kind == HS_PEER_CONTROL) {
        conn_fail(c, MOQ_H3_CLOSED_CRITICAL_STREAM, "control stream reset");
    } else if (s->kind == HS_CONNECT && s->wt) {
        session_close_later(c, s->wt, 0, "CONNECT stream reset");
    } else if (s->kind == HS_CLIENT_CONNECT) {
        client_failed(c, MOQ_ERR_CLOSED, 0);
    }
}

static void ev_stream_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct h3_conn *c = app;
    struct h3_stream *s = sctx;
    if (!s) return;
    if (s->kind == HS_WT && s->wt && !s->wt->closing && s->wt->t.ev->stream_stopped)
        s->wt->t.ev->stream_stopped(s->wt->t.app, &s->wt->t, sid, s->app_ctx, map_code_in(code));
    else if (s->kind == HS_LOCAL)
        conn_fail(c, MOQ_H3_CLOSED_CRITICAL_STREAM, "control stream stopped");
    else if (s->kind == HS_CONNECT && s->wt)
        session_close_later(c, s->wt, 0, "CONNECT stream stopped");
}

static void ev_stream_closed(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    struct h3_conn *c = app;
    struct h3_stream *s = sctx;
    if (!s) return;
    if (s->kind == HS_WT && s->wt && !s->wt->closing && s->wt->t.ev->stream_closed)
        s->wt->t.ev->stream_closed(s->wt->t.app, &s->wt->t, sid, s->app_ctx);
    else if (s->kind == HS_CONNECT && s->wt)
        session_close_later(c, s->wt, s->wt->closing ? s->wt->close_code : 0,
                            s->wt->closing ? s->wt->close_reason : "");
    stream_free(c, s);
}

static void ev_streams_available(void *app, moq_transport *t, bool bidi)
{
    struct h3_conn *c = app;
    size_t it = 0;
    void *v;
    struct wt_session *list[16];
    size_t n = 0;
    while (moq_u64map_next(&c->sessions, &it, NULL, &v) && n < 16)
        list[n++] = v;
    for (size_t i = 0; i < n; i++) {
        struct wt_session *w = list[i];
        if (w->established && !w->closing && w->t.ev && w->t.ev->streams_available)
            w->t.ev->streams_available(w->t.app, &w->t, bidi);
    }
}

static void ev_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    struct h3_conn *c = app;
    uint64_t quarter;
    int n = moq_varint_get(data, len, &quarter);
    if (n < 0 || quarter > (MOQ_VARINT_MAX >> 2)) return;
    struct wt_session *w = moq_u64map_get(&c->sessions, quarter * 4);
    if (!w || !w->established || w->closing || !w->t.ev || !w->t.ev->datagram) return;
    w->t.ev->datagram(w->t.app, &w->t, data + n, len - (size_t)n);
}

static void conn_free(struct h3_conn *c)
{
    c->drv.freed(c->drv.ctx, c);
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&c->streams, &it, NULL, &v)) {
        struct h3_stream *s = v;
        moq_buf_free(&s->in);
        moq_buf_free(&s->capsules);
        moq_pool_free(s, sizeof(*s));
    }
    moq_u64map_free(&c->streams);
    moq_u64map_free(&c->sessions);
    free(c->authority);
    free(c->path);
    free(c->offer);
    free(c);
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct h3_conn *c = app;
    c->quic_closing = true; /* the QUIC connection is gone: never close it again */
    if (c->is_client) client_failed(c, MOQ_ERR_CLOSED, 0);
    /* Every session ends with the connection. */
    for (;;) {
        size_t it = 0;
        void *v;
        if (!moq_u64map_next(&c->sessions, &it, NULL, &v)) break;
        struct wt_session *w = v;
        if (!w->closing) {
            w->closing = true;
            w->close_code = map_code_in(code);
            snprintf(w->close_reason, sizeof(w->close_reason), "%s", reason ? reason : "");
        }
        c->quic_closing = true; /* no linger timer from session_finish */
        session_finish(c, w);
    }
    conn_free(c);
}

static const struct moq_transport_events h3_events = {
    .stream_opened = ev_stream_opened,
    .stream_data = ev_stream_data,
    .stream_reset = ev_stream_reset,
    .stream_stopped = ev_stream_stopped,
    .stream_closed = ev_stream_closed,
    .streams_available = ev_streams_available,
    .datagram = ev_datagram,
    .closed = ev_closed,
};

/* ---------------------------------------------------------------- session transport ops */

#define SESSION(t) ((struct wt_session *)(t))

static struct h3_stream *session_stream(struct wt_session *w, int64_t sid)
{
    if (w->closing) return NULL; /* its streams are about to be aborted */
    struct h3_stream *s = moq_u64map_get(&w->conn->streams, (uint64_t)sid);
    return s && s->wt == w && s->kind == HS_WT ? s : NULL;
}

static int wt_open_stream(moq_transport *t, bool bidi, int64_t *sid)
{
    struct wt_session *w = SESSION(t);
    struct h3_conn *c = w->conn;
    if (w->closing) return MOQ_ERR_CLOSED;
    int rv = moq_transport_open(c->quic, bidi, sid);
    if (rv < 0) return rv;
    struct h3_stream *s = stream_new(c, *sid, HS_WT, bidi);
    if (!s) {
        c->quic->ops->reset(c->quic, *sid, MOQ_H3_INTERNAL_ERROR);
        return MOQ_ERR_NOMEM;
    }
    s->wt = w;
    s->session_id = w->id;
    uint8_t hdr[16];
    uint8_t *p = moq_varint_put(hdr, bidi ? MOQ_WT_STREAM_BIDI : MOQ_WT_STREAM_UNI);
    p = moq_varint_put(p, w->id);
    return moq_transport_write_bytes(c->quic, *sid, hdr, (size_t)(p - hdr), false);
}

static int wt_write(moq_transport *t, int64_t sid, const moq_slice *v, size_t n, bool fin)
{
    struct wt_session *w = SESSION(t);
    if (!session_stream(w, sid)) return MOQ_ERR_CLOSED;
    return moq_transport_write(w->conn->quic, sid, v, n, fin);
}

static size_t wt_unsent(moq_transport *t, int64_t sid)
{
    struct wt_session *w = SESSION(t);
    return session_stream(w, sid) ? w->conn->quic->ops->unsent(w->conn->quic, sid) : 0;
}

static size_t wt_unacked(moq_transport *t, int64_t sid)
{
    struct wt_session *w = SESSION(t);
    moq_transport *quic = w->conn->quic;
    return session_stream(w, sid) && quic->ops->unacked ? quic->ops->unacked(quic, sid) : 0;
}

static void wt_set_priority(moq_transport *t, int64_t sid, uint64_t priority)
{
    struct wt_session *w = SESSION(t);
    if (session_stream(w, sid)) w->conn->quic->ops->set_priority(w->conn->quic, sid, priority);
}

static int wt_reset(moq_transport *t, int64_t sid, uint64_t code)
{
    struct wt_session *w = SESSION(t);
    if (!session_stream(w, sid)) return MOQ_ERR_CLOSED;
    return w->conn->quic->ops->reset(w->conn->quic, sid, moq_code_to_h3((uint32_t)code));
}

static int wt_stop(moq_transport *t, int64_t sid, uint64_t code)
{
    struct wt_session *w = SESSION(t);
    if (!session_stream(w, sid)) return MOQ_ERR_CLOSED;
    return w->conn->quic->ops->stop(w->conn->quic, sid, moq_code_to_h3((uint32_t)code));
}

static void wt_set_stream_ctx(moq_transport *t, int64_t sid, void *sctx)
{
    struct h3_stream *s = session_stream(SESSION(t), sid);
    if (s) s->app_ctx = sctx;
}

static int wt_send_datagram(moq_transport *t, const uint8_t *data, size_t len)
{
    struct wt_session *w = SESSION(t);
    if (w->closing) return MOQ_ERR_CLOSED;
    size_t max = w->conn->quic->ops->max_datagram(w->conn->quic);
    size_t hl = moq_varint_len(w->id / 4);
    if (max == 0) return MOQ_ERR_UNSUPPORTED;
    if (len + hl > max) return MOQ_ERR_TOO_LARGE;
    uint8_t stackbuf[1500];
    uint8_t *buf = len + hl <= sizeof(stackbuf) ? stackbuf : malloc(len + hl);
    if (!buf) return MOQ_ERR_NOMEM;
    moq_varint_put(buf, w->id / 4);
    memcpy(buf + hl, data, len);
    int rv = w->conn->quic->ops->send_datagram(w->conn->quic, buf, len + hl);
    if (buf != stackbuf) free(buf);
    return rv;
}

static size_t wt_max_datagram(moq_transport *t)
{
    struct wt_session *w = SESSION(t);
    size_t max = w->conn->quic->ops->max_datagram(w->conn->quic);
    size_t hl = moq_varint_len(w->id / 4);
    return max > hl ? max - hl : 0;
}

static void wt_close(moq_transport *t, uint64_t code, const char *reason)
{
    struct wt_session *w = SESSION(t);
    struct h3_conn *c = w->conn;
    if (w->closing) return;
    moq_buf cap;
    moq_buf_init(&cap);
    if (moq_h3_encode_close_capsule(&cap, (uint32_t)code, reason) == 0)
        moq_transport_write_bytes(c->quic, (int64_t)w->id, cap.data, cap.len, true);
    moq_buf_free(&cap);
    session_close_later(c, w, code, reason);
}

static void wt_stats(moq_transport *t, struct moq_transport_stats *out)
{
    struct wt_session *w = SESSION(t);
    w->conn->quic->ops->stats(w->conn->quic, out);
}

static const struct moq_transport_ops wt_ops = {
    .open_stream = wt_open_stream,
    .write = wt_write,
    .unsent = wt_unsent,
    .unacked = wt_unacked,
    .set_priority = wt_set_priority,
    .reset = wt_reset,
    .stop = wt_stop,
    .set_stream_ctx = wt_set_stream_ctx,
    .send_datagram = wt_send_datagram,
    .max_datagram = wt_max_datagram,
    .close = wt_close,
    .stats = wt_stats,
};

/* ---------------------------------------------------------------- attach */

static struct h3_conn *conn_new(moq_transport *quic, const struct moq_h3_driver *drv,
                                bool is_client)
{
    struct h3_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        drv->freed(drv->ctx, NULL);
        return NULL;
    }
    c->quic = quic;
    c->drv = *drv;
    c->reported_deadline = UINT64_MAX;
    c->linger_at = UINT64_MAX;
    c->is_client = is_client;
    moq_u64map_init(&c->streams);
    moq_u64map_init(&c->sessions);
    report_deadline(c, true); /* none yet: this introduces the connection to its driver */
    return c;
}

static int send_control_stream(struct h3_conn *c)
{
    int64_t sid;
    int rv = moq_transport_open(c->quic, false, &sid);
    if (rv < 0) return rv;
    if (!stream_new(c, sid, HS_LOCAL, false)) return MOQ_ERR_NOMEM;
    moq_buf out;
    moq_buf_init(&out);
    rv = moq_buf_put_varint(&out, MOQ_H3_STREAM_CONTROL);
    if (rv == 0) rv = moq_h3_encode_our_settings(&out);
    if (rv == 0) rv = moq_transport_write_bytes(c->quic, sid, out.data, out.len, false);
    moq_buf_free(&out);
    return rv;
}

int moq_h3_server_attach(moq_transport *quic, const struct moq_h3_driver *drv,
                         const struct moq_h3_server_config *cfg)
{
    struct h3_conn *c = conn_new(quic, drv, false);
    if (!c) {
        moq_transport_close(quic, MOQ_H3_INTERNAL_ERROR, "out of memory");
        return MOQ_ERR_NOMEM;
    }
    c->protocols = cfg->protocols;
    c->n_protocols = cfg->n_protocols;
    c->fallback_protocol = cfg->fallback_protocol;
    c->accept = cfg->accept;
    c->accept_ctx = cfg->ctx;
    c->busy = cfg->busy;
    moq_transport_attach(quic, &h3_events, c);
    int rv = send_control_stream(c);
    if (rv < 0) conn_fail(c, MOQ_H3_INTERNAL_ERROR, "cannot open the control stream");
    return rv;
}

/* ---------------------------------------------------------------- client */

static void client_failed(struct h3_conn *c, int err, int status)
{
    moq_h3_connect_fn done = c->done;
    if (!done) return;
    c->done = NULL;
    done(c->done_ctx, NULL, err, status);
    conn_fail(c, MOQ_H3_NO_ERROR, "WebTransport CONNECT failed");
}

static void client_send_connect(struct h3_conn *c)
{
    c->connect_sent = true;
    int64_t sid;
    if (moq_transport_open(c->quic, true, &sid) < 0) {
        client_failed(c, MOQ_ERR_LIMIT, 0);
        return;
    }
    struct h3_stream *s = stream_new(c, sid, HS_CLIENT_CONNECT, true);
    if (!s) {
        client_failed(c, MOQ_ERR_NOMEM, 0);
        return;
    }
    s->session_id = (uint64_t)sid;
    const char *names[] = {":method",
                           ":protocol",
                           ":scheme",
                           ":authority",
                           ":path",
                           "sec-webtransport-http3-draft02",
                           "wt-available-protocols"};
    const char *values[] = {"CONNECT", "webtransport", "https", c->authority, c->path,
                            "1",       c->offer};
    moq_buf out;
    moq_buf_init(&out);
    int rv = moq_h3_encode_headers(&out, names, values, c->offer[0] ? 7 : 6);
    if (rv == 0) rv = moq_transport_write_bytes(c->quic, sid, out.data, out.len, false);
    moq_buf_free(&out);
    if (rv < 0) client_failed(c, rv, 0);
}

static void client_on_response(struct h3_conn *c, struct h3_stream *s,
                               const struct moq_h3_headers *h)
{
    const char *status = field(h, ":status");
    int code = status ? atoi(status) : 0;
    if (code < 200 || code > 299) {
        stream_abort(c, s, MOQ_H3_REQUEST_CANCELLED);
        client_failed(c, code == 401 || code == 403 ? MOQ_ERR_AUTH : MOQ_ERR_PROTO, code);
        return;
    }
    char protocol[64] = "";
    const struct moq_h3_field *p = moq_h3_headers_get(h, "wt-protocol");
    if (p && moq_sf_string_parse(p->value, p->value_len, protocol, sizeof(protocol)) < 0)
        protocol[0] = '\0';
    struct wt_session *w = session_new(c, s->session_id, c->path, c->authority, protocol);
    if (!w) {
        client_failed(c, MOQ_ERR_NOMEM, 0);
        return;
    }
    w->established = true;
    s->kind = HS_CONNECT;
    s->wt = w;
    c->client_session = w;
    moq_h3_connect_fn done = c->done;
    c->done = NULL;
    done(c->done_ctx, &w->t, 0, code);
    if (!w->t.ev) {
        wt_close(&w->t, 0, "");
        return;
    }
    session_adopt_pending(c, w);
}

static int join_offer(char **out, const char *const *protocols, size_t n)
{
    moq_buf b;
    moq_buf_init(&b);
    int rv = 0;
    for (size_t i = 0; rv == 0 && i < n; i++) {
        if (i) rv = moq_buf_append(&b, ", ", 2);
        if (rv == 0) rv = moq_sf_string_encode(&b, protocols[i]);
    }
    if (rv == 0) rv = moq_buf_put_u8(&b, 0);
    if (rv < 0) {
        moq_buf_free(&b);
        return rv;
    }
    *out = (char *)b.data;
    return 0;
}

int moq_h3_client_attach(moq_transport *quic, const struct moq_h3_driver *drv,
                         const struct moq_h3_client_config *cfg)
{
    struct h3_conn *c = conn_new(quic, drv, true);
    if (!c) {
        moq_transport_close(quic, MOQ_H3_INTERNAL_ERROR, "out of memory");
        return MOQ_ERR_NOMEM;
    }
    c->authority = strdup(cfg->authority);
    c->path = strdup(cfg->path && cfg->path[0] ? cfg->path : "/");
    c->done = cfg->done;
    c->done_ctx = cfg->ctx;
    int rv = join_offer(&c->offer, cfg->protocols, cfg->n_protocols);
    moq_transport_attach(quic, &h3_events, c);
    if (!c->authority || !c->path || rv < 0) {
        c->done = NULL;
        conn_fail(c, MOQ_H3_INTERNAL_ERROR, "out of memory");
        return MOQ_ERR_NOMEM;
    }
    rv = send_control_stream(c);
    if (rv < 0) {
        c->done = NULL;
        conn_fail(c, MOQ_H3_INTERNAL_ERROR, "cannot open the control stream");
    }
    return rv;
}
