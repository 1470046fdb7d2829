/*
 * conn.c - one QUIC connection (either role) driven by ngtcp2, exposed as a moq_transport;
 * plus the endpoint machinery shared by server and client (prepare/flush, blocked sends).
 *
 * Event rules (transport.h): events that ngtcp2 raises while we process received packets
 * (stream_opened, stream_data, stream_reset, datagram, accept/connect) go to the application
 * at once - we are in the loop's read handler, never inside a downcall. Everything else
 * (stream_stopped, stream_closed, stream_writable, streams_available, closed) is recorded and
 * delivered by conn_dispatch() from the endpoint's prepare watcher, because ngtcp2 may raise
 * it while we are writing packets or while the application is inside a downcall.
 */
#include "quic/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_VECS              16
#define MAX_DGRAM_QUEUE       128
#define MAX_DGRAM_QUEUE_BYTES (256 * 1024)
#define MAX_REASON            256
#define MAX_CLOSE_RESENDS     16
#define DISPATCH_ROUNDS       8
/* A write() is refused once this many times the high-water mark is queued. */
#define STREAM_HARD_LIMIT_FACTOR 64

const char moq_quic_tls_priority[] =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"
    "+AES-256-GCM:+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1";

enum conn_state {
    CS_HANDSHAKE,   /* TLS handshake in progress; application not involved yet */
    CS_ESTABLISHED, /* handed to the application */
    CS_CLOSING,     /* we sent CONNECTION_CLOSE; answer stray packets with it */
    CS_DRAINING,    /* the peer closed; stay silent */
    CS_DEAD,        /* free at the next dispatch */
};

struct stream {
    int64_t id;
    struct moq_quic_conn *c;
    void *sctx;
    moq_quic_sched_node node;
    moq_quic_sendq q;
    moq_list pending; /* in c->pending while it has deferred events */
    uint64_t close_code;
    bool has_tx;        /* we can send on it (not a peer uni stream) */
    bool fin_requested; /* the application finished writing */
    bool fin_sent;      /* the FIN went to ngtcp2 */
    bool tx_done;       /* no more sending: reset by us, by the peer, or finished */
    bool reset_by_us;
    bool blocked;       /* stream flow control */
    bool want_writable; /* unsent() went above the high-water mark */
    bool ev_writable;
    bool ev_stopped;
    bool stopped_sent; /* stream_stopped already delivered */
    bool nc_closed;    /* ngtcp2 forgot it: stream_closed is due */
};

struct dgram {
    struct dgram *next;
    size_t len;
    unsigned tries;
    uint8_t data[];
};

struct moq_quic_conn {
    moq_transport t; /* first: the application's handle */
    moq_quic_endpoint *ep;
    ngtcp2_conn *nc;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    void *creds_handle;
    ngtcp2_cid odcid; /* server: the client's first DCID (routed until we forget c) */
    moq_quic_addr local, remote;
    enum conn_state state;
    moq_list link; /* server's connection list */
    moq_list dirty_link;
    moq_list blocked_link;
    ev_timer timer;
    moq_u64map streams;
    moq_quic_sched sched;
    moq_list pending; /* streams with deferred events */
    uint64_t start_us;
    uint64_t bytes_sent, bytes_recv;
    uint64_t peer_uni_total;

    bool attached;      /* the application has (or had) the transport */
    bool reject;        /* accept returned an error: close after the read */
    bool uni_exhausted; /* max_peer_uni_streams_total reached: close after the read */
    bool app_closing;   /* the application called close() */
    bool close_sent;
    bool want_bidi, want_uni;
    bool ev_bidi, ev_uni;
    bool ev_closed; /* `closed` is due */
    bool app_gone;  /* `closed` delivered */
    bool stateless_reset;
    bool logged_end;
    bool rtt_known;      /* pacing may start */
    uint64_t close_code; /* app close request, then the code given to `closed` */
    char close_reason[MAX_REASON];
    char end_reason[MAX_REASON]; /* for the log line */
    int fail_err;                /* client: error for a failed attempt */

    uint8_t *close_pkt;
    size_t close_pkt_len;
    unsigned close_resends;

    struct dgram *dg_head, *dg_tail;
    size_t dg_count, dg_bytes;

    uint8_t *blk; /* packets the socket refused (EAGAIN) */
    size_t blk_len, blk_gso;
    moq_quic_addr blk_local, blk_remote;

    char offered_alpn[200]; /* server: what the client offered, for the refusal log */
};

static const struct moq_transport_ops conn_ops;
static void conn_on_liberr(struct moq_quic_conn *c, int liberr);
static void conn_update_timer(struct moq_quic_conn *c);
static void conn_destroy(struct moq_quic_conn *c);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

void moq_quic_random(void *buf, size_t len)
{
    if (gnutls_rnd(GNUTLS_RND_NONCE, buf, len) != 0) {
        /* gnutls_rnd only fails when the system RNG is broken; never hand out zeros. */
        moq_error("quic", "gnutls_rnd failed");
        abort();
    }
}

static inline struct moq_quic_conn *conn_of(moq_transport *t)
{
    return (struct moq_quic_conn *)t;
}

moq_list *moq_quic_conn_link(struct moq_quic_conn *c)
{
    return &c->link;
}

struct moq_quic_conn *moq_quic_conn_from_link(moq_list *l)
{
    return moq_container_of(l, struct moq_quic_conn, link);
}

void *moq_quic_conn_creds_handle(struct moq_quic_conn *c)
{
    return c->creds_handle;
}

ngtcp2_conn *moq_quic_conn_ngtcp2(struct moq_quic_conn *c)
{
    return c->nc;
}

const ngtcp2_cid *moq_quic_conn_odcid(struct moq_quic_conn *c)
{
    return &c->odcid;
}

static void copy_reason(char *dst, size_t cap, const uint8_t *src, size_t len)
{
    if (len >= cap) len = cap - 1;
    for (size_t i = 0; i < len; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
    dst[len] = '\0';
}

static bool app_events(const struct moq_quic_conn *c)
{
    return c->attached && c->t.ev && !c->app_closing && !c->app_gone && !c->uni_exhausted;
}

void moq_quic_conn_mark_dirty(struct moq_quic_conn *c)
{
    if (!moq_list_linked(&c->dirty_link)) moq_list_push_back(&c->ep->dirty, &c->dirty_link);
}

/* ---- streams ---- */

static struct stream *stream_get(struct moq_quic_conn *c, int64_t sid)
{
    if (sid < 0) return NULL;
    return moq_u64map_get(&c->streams, (uint64_t)sid);
}

static struct stream *stream_new(struct moq_quic_conn *c, int64_t sid, bool has_tx)
{
    struct stream *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->id = sid;
    s->c = c;
    s->has_tx = has_tx;
    s->tx_done = !has_tx;
    moq_quic_sched_node_init(&s->node, 0);
    moq_quic_sendq_init(&s->q);
    moq_list_init(&s->pending);
    if (moq_u64map_put(&c->streams, (uint64_t)sid, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void stream_free(struct moq_quic_conn *c, struct stream *s)
{
    moq_quic_sched_remove(&c->sched, &s->node);
    if (moq_list_linked(&s->pending)) moq_list_remove(&s->pending);
    moq_quic_sendq_clear(&s->q);
    moq_u64map_del(&c->streams, (uint64_t)s->id);
    free(s);
}

static void stream_pending(struct moq_quic_conn *c, struct stream *s)
{
    if (!moq_list_linked(&s->pending)) moq_list_push_back(&c->pending, &s->pending);
    moq_quic_conn_mark_dirty(c);
}

static bool stream_wants_send(const struct stream *s)
{
    if (s->tx_done || s->blocked || s->nc_closed) return false;
    return moq_quic_sendq_unsent(&s->q) > 0 || (s->fin_requested && !s->fin_sent);
}

static void stream_resched(struct moq_quic_conn *c, struct stream *s)
{
    if (stream_wants_send(s)) {
        if (moq_quic_sched_push(&c->sched, &s->node) < 0)
            moq_warn("quic", "%s: scheduler out of memory", c->t.peer);
    } else {
        moq_quic_sched_remove(&c->sched, &s->node);
    }
}

/* Our sending side ended early (reset by us, or by ngtcp2 after STOP_SENDING): bytes never
 * handed out go now; in-flight ones stay until ngtcp2 forgets the stream, because ngtcp2
 * 0.12 may still retransmit them after a RESET_STREAM. */
static void stream_tx_abort(struct moq_quic_conn *c, struct stream *s)
{
    s->tx_done = true;
    moq_quic_sched_remove(&c->sched, &s->node);
    moq_quic_sendq_drop_unsent(&s->q);
    if (s->want_writable) {
        s->want_writable = false;
        s->ev_writable = false;
    }
}

static void stream_check_writable(struct moq_quic_conn *c, struct stream *s)
{
    if (s->want_writable && moq_quic_sendq_unsent(&s->q) <= c->ep->tc.stream_high_water / 2) {
        s->want_writable = false;
        s->ev_writable = true;
        stream_pending(c, s);
    }
}

/* A peer-opened unidirectional stream is finished for us (FIN delivered, reset received, or
 * stopped by the application). libngtcp2 0.12.1 never closes such streams (fixed upstream in
 * 0.14, commit 1d591bde), so stream_close would never come: we end the stream ourselves and
 * hand the stream-count credit back here, and detach from ngtcp2's copy of it. */
static void stream_peer_uni_done(struct moq_quic_conn *c, struct stream *s)
{
    if (s->nc_closed) return;
    s->nc_closed = true;
    ngtcp2_conn_set_stream_user_data(c->nc, s->id, NULL);
    ngtcp2_conn_extend_max_streams_uni(c->nc, 1);
    stream_pending(c, s);
}

/* ---- ngtcp2 callbacks ---- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct moq_quic_conn *)ref->user_data)->nc;
}

static void cb_rand(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx)
{
    (void)rand_ctx;
    moq_quic_random(dest, destlen);
}

static int cb_get_new_connection_id(ngtcp2_conn *nc, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                                    void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    if (c->ep->is_server) {
        if (cidlen != MOQ_QUIC_SCIDLEN) return NGTCP2_ERR_CALLBACK_FAILURE;
        return moq_quic_server_new_cid(c->ep->server, c, cid, token) < 0
                   ? NGTCP2_ERR_CALLBACK_FAILURE
                   : 0;
    }
    uint8_t buf[NGTCP2_MAX_CIDLEN];
    moq_quic_random(buf, cidlen);
    ngtcp2_cid_init(cid, buf, cidlen);
    moq_quic_random(token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

static int cb_remove_connection_id(ngtcp2_conn *nc, const ngtcp2_cid *cid, void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    if (c->ep->is_server) moq_quic_server_retire_cid(c->ep->server, c, cid);
    return 0;
}

static void set_protocol(struct moq_quic_conn *c)
{
    gnutls_datum_t alpn;
    c->t.protocol[0] = '\0';
    if (gnutls_alpn_get_selected_protocol(c->tls, &alpn) == 0) {
        size_t n = alpn.size < sizeof(c->t.protocol) - 1 ? alpn.size : sizeof(c->t.protocol) - 1;
        copy_reason(c->t.protocol, n + 1, alpn.data, n);
    }
    c->t.kind = strcmp(c->t.protocol, "h3") == 0 ? MOQ_TRANSPORT_H3 : MOQ_TRANSPORT_QUIC;
}

static int cb_handshake_completed(ngtcp2_conn *nc, void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    set_protocol(c);
    c->state = CS_ESTABLISHED;
    c->attached = true;
    if (c->ep->is_server) {
        moq_info("quic", "accepted %s alpn=%s", c->t.peer, c->t.protocol);
        if (moq_quic_server_established(c->ep->server, c) < 0) {
            c->reject = true;
            c->t.ev = NULL;
        }
    } else {
        moq_info("quic", "connected to %s alpn=%s", c->t.peer, c->t.protocol);
        moq_quic_client_established(c->ep->client, c);
    }
    moq_quic_conn_mark_dirty(c);
    return 0;
}

/* libngtcp2 before 0.14 never frees finished peer uni streams (see stream_peer_uni_done). */
static bool ngtcp2_keeps_peer_uni(void)
{
    const ngtcp2_info *info = ngtcp2_version(0);
    return info && info->version_num < 0x000e00;
}

static int cb_stream_open(ngtcp2_conn *nc, int64_t sid, void *user_data)
{
    struct moq_quic_conn *c = user_data;
    bool bidi = moq_stream_is_bidi(sid);
    if (!bidi && ++c->peer_uni_total > c->ep->tc.max_peer_uni_streams_total &&
        ngtcp2_keeps_peer_uni())
        c->uni_exhausted = true;
    struct stream *s = stream_new(c, sid, bidi);
    if (!s) return NGTCP2_ERR_CALLBACK_FAILURE;
    ngtcp2_conn_set_stream_user_data(nc, sid, s);
    if (app_events(c) && c->t.ev->stream_opened) c->t.ev->stream_opened(c->t.app, &c->t, sid, bidi);
    return 0;
}

static int cb_recv_stream_data(ngtcp2_conn *nc, uint32_t flags, int64_t sid, uint64_t offset,
                               const uint8_t *data, size_t datalen, void *user_data,
                               void *stream_user_data)
{
    struct moq_quic_conn *c = user_data;
    struct stream *s = stream_user_data;
    bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
    (void)offset;
    c->bytes_recv += datalen;
    if (s && app_events(c) && c->t.ev->stream_data)
        c->t.ev->stream_data(c->t.app, &c->t, sid, s->sctx, data, datalen, fin);
    /* The bytes were consumed: hand the credit back (flow control is ours in ngtcp2). */
    if (datalen) {
        ngtcp2_conn_extend_max_stream_offset(nc, sid, datalen);
        ngtcp2_conn_extend_max_offset(nc, datalen);
    }
    if (fin && s && !s->has_tx) stream_peer_uni_done(c, s);
    return 0;
}

static int cb_stream_reset(ngtcp2_conn *nc, int64_t sid, uint64_t final_size, uint64_t code,
                           void *user_data, void *stream_user_data)
{
    struct moq_quic_conn *c = user_data;
    struct stream *s = stream_user_data;
    (void)nc;
    (void)final_size;
    if (s && app_events(c) && c->t.ev->stream_reset)
        c->t.ev->stream_reset(c->t.app, &c->t, sid, s->sctx, code);
    if (s && !s->has_tx) stream_peer_uni_done(c, s);
    return 0;
}

static int cb_stream_close(ngtcp2_conn *nc, uint32_t flags, int64_t sid, uint64_t code,
                           void *user_data, void *stream_user_data)
{
    struct moq_quic_conn *c = user_data;
    struct stream *s = stream_user_data;
    /* A NULL s is a peer uni stream we already finished (and credited) ourselves. */
    if (!s) return 0;
    if (!ngtcp2_conn_is_local_stream(nc, sid)) {
        /* Hand the stream-count credit back, or long sessions stall. */
        if (moq_stream_is_bidi(sid))
            ngtcp2_conn_extend_max_streams_bidi(nc, 1);
        else
            ngtcp2_conn_extend_max_streams_uni(nc, 1);
    }
    s->nc_closed = true;
    s->close_code = code;
    /* ngtcp2 0.12 tells nobody about a received STOP_SENDING: it resets the stream with the
     * peer's code and closes it once that is acknowledged. A sending side that ended
     * neither by our reset nor by an acknowledged FIN was stopped by the peer. */
    bool completed = s->fin_sent && s->q.acked == s->q.end;
    if (s->has_tx && !s->reset_by_us && !completed && !s->stopped_sent &&
        (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)) {
        s->ev_stopped = true;
    }
    s->tx_done = true;
    s->want_writable = false;
    s->ev_writable = false;
    moq_quic_sched_remove(&c->sched, &s->node);
    moq_quic_sendq_clear(&s->q); /* ngtcp2 will not touch these bytes again */
    stream_pending(c, s);
    return 0;
}

static int cb_acked_stream_data_offset(ngtcp2_conn *nc, int64_t sid, uint64_t offset,
                                       uint64_t datalen, void *user_data, void *stream_user_data)
{
    struct stream *s = stream_user_data;
    (void)nc;
    (void)sid;
    (void)user_data;
    if (s) moq_quic_sendq_ack(&s->q, offset, datalen);
    return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn *nc, int64_t sid, uint64_t max_data,
                                     void *user_data, void *stream_user_data)
{
    struct moq_quic_conn *c = user_data;
    struct stream *s = stream_user_data;
    (void)nc;
    (void)sid;
    (void)max_data;
    if (s && s->blocked) {
        s->blocked = false;
        stream_resched(c, s);
        moq_quic_conn_mark_dirty(c);
    }
    return 0;
}

static int cb_extend_max_local_streams_bidi(ngtcp2_conn *nc, uint64_t max_streams, void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    (void)max_streams;
    if (c->want_bidi) {
        c->want_bidi = false;
        c->ev_bidi = true;
        moq_quic_conn_mark_dirty(c);
    }
    return 0;
}

static int cb_extend_max_local_streams_uni(ngtcp2_conn *nc, uint64_t max_streams, void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    (void)max_streams;
    if (c->want_uni) {
        c->want_uni = false;
        c->ev_uni = true;
        moq_quic_conn_mark_dirty(c);
    }
    return 0;
}

static int cb_recv_datagram(ngtcp2_conn *nc, uint32_t flags, const uint8_t *data, size_t datalen,
                            void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    (void)flags;
    if (app_events(c) && c->t.ev->datagram) c->t.ev->datagram(c->t.app, &c->t, data, datalen);
    return 0;
}

static int cb_recv_stateless_reset(ngtcp2_conn *nc, const ngtcp2_pkt_stateless_reset *sr,
                                   void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    (void)sr;
    c->stateless_reset = true;
    return 0;
}

static void ngtcp2_trace(void *user_data, const char *fmt, ...)
{
    struct moq_quic_conn *c = user_data;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    moq_trace("quic", "%s ngtcp2: %s", c->t.peer, line);
}

static void fill_callbacks(ngtcp2_callbacks *cb, bool server)
{
    memset(cb, 0, sizeof(*cb));
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->handshake_completed = cb_handshake_completed;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->recv_stream_data = cb_recv_stream_data;
    cb->acked_stream_data_offset = cb_acked_stream_data_offset;
    cb->stream_open = cb_stream_open;
    cb->stream_close = cb_stream_close;
    cb->recv_stateless_reset = cb_recv_stateless_reset;
    cb->extend_max_local_streams_bidi = cb_extend_max_local_streams_bidi;
    cb->extend_max_local_streams_uni = cb_extend_max_local_streams_uni;
    cb->rand = cb_rand;
    cb->get_new_connection_id = cb_get_new_connection_id;
    cb->remove_connection_id = cb_remove_connection_id;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->stream_reset = cb_stream_reset;
    cb->extend_max_stream_data = cb_extend_max_stream_data;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->recv_datagram = cb_recv_datagram;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

static void fill_settings(struct moq_quic_conn *c, ngtcp2_settings *st)
{
    const struct moq_quic_transport_config *tc = &c->ep->tc;
    ngtcp2_settings_default(st);
    st->initial_ts = moq_now_ns();
    switch (tc->cc) {
    case MOQ_QUIC_CC_BBR:
        st->cc_algo = NGTCP2_CC_ALGO_BBR2;
        break;
    case MOQ_QUIC_CC_RENO:
        st->cc_algo = NGTCP2_CC_ALGO_RENO;
        break;
    default:
        st->cc_algo = NGTCP2_CC_ALGO_CUBIC;
        break;
    }
    st->max_window = tc->receive_window * 4;
    st->max_stream_window = tc->stream_receive_window * 4;
    st->handshake_timeout = tc->handshake_timeout_ms * NGTCP2_MILLISECONDS;
    if (moq_log_enabled(MOQ_LOG_TRACE, "quic")) st->log_printf = ngtcp2_trace;
}

static void fill_params(struct moq_quic_conn *c, ngtcp2_transport_params *p)
{
    const struct moq_quic_transport_config *tc = &c->ep->tc;
    ngtcp2_transport_params_default(p);
    p->initial_max_streams_bidi = tc->max_concurrent_streams;
    p->initial_max_streams_uni = tc->max_concurrent_streams;
    p->initial_max_data = tc->receive_window;
    p->initial_max_stream_data_bidi_local = tc->stream_receive_window;
    p->initial_max_stream_data_bidi_remote = tc->stream_receive_window;
    p->initial_max_stream_data_uni = tc->stream_receive_window;
    p->max_idle_timeout = tc->idle_timeout_ms * NGTCP2_MILLISECONDS;
    p->max_datagram_frame_size = tc->max_datagram_frame_size;
    p->max_udp_payload_size = MOQ_QUIC_MAX_RX_UDP_PAYLOAD;
    p->active_connection_id_limit = 4;
}

static struct moq_quic_conn *conn_alloc(moq_quic_endpoint *ep, const moq_quic_addr *local,
                                        const moq_quic_addr *remote)
{
    struct moq_quic_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->ep = ep;
    c->t.ops = &conn_ops;
    c->t.kind = MOQ_TRANSPORT_QUIC;
    c->local = *local;
    c->remote = *remote;
    moq_quic_addr_format(remote, c->t.peer, sizeof(c->t.peer));
    c->state = CS_HANDSHAKE;
    c->start_us = moq_now_us();
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    moq_list_init(&c->link);
    moq_list_init(&c->dirty_link);
    moq_list_init(&c->blocked_link);
    moq_list_init(&c->pending);
    moq_u64map_init(&c->streams);
    moq_quic_sched_init(&c->sched);
    ev_timer_init(&c->timer, conn_timer_cb, 0., 0.);
    c->timer.data = c;
    return c;
}

static ngtcp2_path conn_path(struct moq_quic_conn *c, const moq_quic_addr *local,
                             const moq_quic_addr *remote)
{
    ngtcp2_path path;
    memset(&path, 0, sizeof(path));
    path.local.addr = (ngtcp2_sockaddr *)&local->ss;
    path.local.addrlen = local->len;
    path.remote.addr = (ngtcp2_sockaddr *)&remote->ss;
    path.remote.addrlen = remote->len;
    (void)c;
    return path;
}

/* ---- TLS ---- */

struct alpn_scan {
    char *out;
    size_t cap;
};

static int scan_client_ext(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
    struct alpn_scan *scan = ctx;
    if (tls_id != 16 || size < 2) return 0;
    size_t listlen = ((size_t)data[0] << 8) | data[1];
    if (listlen + 2 > size) return 0;
    size_t used = 0;
    for (size_t i = 2; i < listlen + 2;) {
        size_t n = data[i++];
        if (i + n > listlen + 2) break;
        if (used + n + 3 >= scan->cap) break;
        if (used) {
            memcpy(scan->out + used, ", ", 2);
            used += 2;
        }
        copy_reason(scan->out + used, n + 1, data + i, n);
        used += n;
        i += n;
    }
    scan->out[used] = '\0';
    return 0;
}

static int client_hello_hook(gnutls_session_t session, unsigned htype, unsigned when,
                             unsigned incoming, const gnutls_datum_t *msg)
{
    ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
    struct moq_quic_conn *c = ref->user_data;
    (void)htype;
    (void)incoming;
    if (when == GNUTLS_HOOK_PRE) {
        struct alpn_scan scan = {c->offered_alpn, sizeof(c->offered_alpn)};
        snprintf(c->offered_alpn, sizeof(c->offered_alpn), "none");
        gnutls_ext_raw_parse(&scan, scan_client_ext, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
        return 0;
    }
    /* GnuTLS refuses a mismatching ALPN list itself; this catches a client offering none. */
    gnutls_datum_t alpn;
    if (gnutls_alpn_get_selected_protocol(session, &alpn) != 0)
        return GNUTLS_E_NO_APPLICATION_PROTOCOL;
    return 0;
}

static int set_alpn(gnutls_session_t s, const char *const *alpn, size_t n, unsigned flags)
{
    gnutls_datum_t d[MOQ_QUIC_MAX_ALPN];
    if (n > MOQ_QUIC_MAX_ALPN) n = MOQ_QUIC_MAX_ALPN;
    for (size_t i = 0; i < n; i++) {
        d[i].data = (unsigned char *)alpn[i];
        d[i].size = (unsigned)strlen(alpn[i]);
    }
    return gnutls_alpn_set_protocols(s, d, (unsigned)n, flags);
}

static int tls_server_init(struct moq_quic_conn *c, gnutls_certificate_credentials_t creds,
                           const char *const *alpn, size_t alpn_count)
{
    if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NO_END_OF_EARLY_DATA) != 0) {
        c->tls = NULL;
        return MOQ_ERR_TLS;
    }
    if (gnutls_priority_set_direct(c->tls, moq_quic_tls_priority, NULL) != 0) return MOQ_ERR_TLS;
    gnutls_handshake_set_hook_function(c->tls, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_BOTH,
                                       client_hello_hook);
    if (ngtcp2_crypto_gnutls_configure_server_session(c->tls) != 0) return MOQ_ERR_TLS;
    gnutls_session_set_ptr(c->tls, &c->ref);
    if (gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, creds) != 0) return MOQ_ERR_TLS;
    if (set_alpn(c->tls, alpn, alpn_count, GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE) !=
        0)
        return MOQ_ERR_TLS;
    ngtcp2_conn_set_tls_native_handle(c->nc, c->tls);
    return MOQ_OK;
}

static bool is_ip_literal(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

static int tls_client_init(struct moq_quic_conn *c, const struct moq_quic_client_config *cfg)
{
    if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) != 0) {
        c->tls = NULL;
        return MOQ_ERR_TLS;
    }
    if (gnutls_priority_set_direct(c->tls, moq_quic_tls_priority, NULL) != 0) return MOQ_ERR_TLS;
    if (ngtcp2_crypto_gnutls_configure_client_session(c->tls) != 0) return MOQ_ERR_TLS;
    gnutls_session_set_ptr(c->tls, &c->ref);
    if (!is_ip_literal(cfg->host) &&
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, cfg->host, strlen(cfg->host)) != 0)
        return MOQ_ERR_TLS;
    if (set_alpn(c->tls, cfg->alpn, cfg->alpn_count, 0) != 0) return MOQ_ERR_TLS;
    if (cfg->tls_setup && cfg->tls_setup(cfg->tls_ctx, c->tls, cfg->host) < 0) return MOQ_ERR_TLS;
    ngtcp2_conn_set_tls_native_handle(c->nc, c->tls);
    return MOQ_OK;
}

/* ---- construction ---- */

struct moq_quic_conn *
moq_quic_conn_new_server(moq_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, const moq_quic_addr *local,
                         const moq_quic_addr *remote, const ngtcp2_cid *scid, const uint8_t *token,
                         gnutls_certificate_credentials_t creds, void *creds_handle,
                         const char *const *alpn, size_t alpn_count)
{
    struct moq_quic_conn *c = conn_alloc(ep, local, remote);
    if (!c) return NULL;
    c->creds_handle = creds_handle;
    c->odcid = hd->dcid;
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params params;
    fill_callbacks(&cb, true);
    fill_settings(c, &st);
    fill_params(c, &params);
    params.original_dcid = hd->dcid;
    params.stateless_reset_token_present = 1;
    memcpy(params.stateless_reset_token, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    ngtcp2_path path = conn_path(c, local, remote);
    int rv = ngtcp2_conn_server_new(&c->nc, &hd->scid, scid, &path, hd->version, &cb, &st, &params,
                                    NULL, c);
    if (rv != 0) {
        moq_warn("quic", "ngtcp2_conn_server_new: %s", ngtcp2_strerror(rv));
        c->nc = NULL;
        c->creds_handle = NULL; /* the caller still owns it */
        conn_destroy(c);
        return NULL;
    }
    if (tls_server_init(c, creds, alpn, alpn_count) < 0) {
        moq_warn("quic", "TLS session setup failed");
        c->creds_handle = NULL;
        conn_destroy(c);
        return NULL;
    }
    return c;
}

struct moq_quic_conn *moq_quic_conn_new_client(moq_quic_endpoint *ep, const moq_quic_addr *local,
                                               const moq_quic_addr *remote,
                                               const struct moq_quic_client_config *cfg)
{
    struct moq_quic_conn *c = conn_alloc(ep, local, remote);
    if (!c) return NULL;
    c->t.is_client = true;
    uint8_t buf[2 * MOQ_QUIC_SCIDLEN];
    moq_quic_random(buf, sizeof(buf));
    ngtcp2_cid dcid, scid;
    ngtcp2_cid_init(&dcid, buf, MOQ_QUIC_SCIDLEN);
    ngtcp2_cid_init(&scid, buf + MOQ_QUIC_SCIDLEN, MOQ_QUIC_SCIDLEN);
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params params;
    fill_callbacks(&cb, false);
    fill_settings(c, &st);
    fill_params(c, &params);
    ngtcp2_path path = conn_path(c, local, remote);
    int rv = ngtcp2_conn_client_new(&c->nc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &st,
                                    &params, NULL, c);
    if (rv != 0) {
        moq_warn("quic", "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
        c->nc = NULL;
        conn_destroy(c);
        return NULL;
    }
    if (tls_client_init(c, cfg) < 0) {
        conn_destroy(c);
        return NULL;
    }
    if (ep->tc.keep_alive_ms)
        ngtcp2_conn_set_keep_alive_timeout(c->nc, ep->tc.keep_alive_ms * NGTCP2_MILLISECONDS);
    moq_quic_conn_mark_dirty(c); /* the first flight goes out from the loop */
    return c;
}

/* ---- teardown ---- */

static void free_streams(struct moq_quic_conn *c)
{
    size_t it = 0;
    uint64_t key;
    void *value;
    while (moq_u64map_next(&c->streams, &it, &key, &value)) {
        struct stream *s = value;
        if (c->nc) ngtcp2_conn_set_stream_user_data(c->nc, s->id, NULL);
        stream_free(c, s); /* deleting the entry just returned is allowed */
    }
}

static void log_end(struct moq_quic_conn *c)
{
    if (c->logged_end) return;
    c->logged_end = true;
    uint64_t ms = (moq_now_us() - c->start_us) / 1000;
    if (c->attached) {
        moq_info("quic", "closed %s alpn=%s reason=\"%s\" duration=%llums sent=%llu recv=%llu",
                 c->t.peer, c->t.protocol, c->end_reason, (unsigned long long)ms,
                 (unsigned long long)c->bytes_sent, (unsigned long long)c->bytes_recv);
    } else if (c->ep->is_server) {
        moq_info("quic", "refused %s during handshake: %s", c->t.peer, c->end_reason);
    } else {
        moq_info("quic", "connection to %s failed: %s", c->t.peer, c->end_reason);
    }
}

static void conn_destroy(struct moq_quic_conn *c)
{
    if (ev_is_active(&c->timer)) ev_timer_stop(c->ep->loop, &c->timer);
    if (moq_list_linked(&c->dirty_link)) moq_list_remove(&c->dirty_link);
    if (moq_list_linked(&c->blocked_link)) moq_list_remove(&c->blocked_link);
    free_streams(c);
    moq_u64map_free(&c->streams);
    moq_quic_sched_free(&c->sched);
    for (struct dgram *d = c->dg_head, *next; d; d = next) {
        next = d->next;
        free(d);
    }
    if (c->ep->is_server && c->ep->server) moq_quic_server_forget(c->ep->server, c);
    if (c->nc) ngtcp2_conn_del(c->nc);
    if (c->tls) gnutls_deinit(c->tls);
    free(c->close_pkt);
    free(c->blk);
    moq_quic_client *cl = NULL;
    if (!c->ep->is_server && c->ep->client && moq_quic_client_conn(c->ep->client) == c)
        cl = c->ep->client;
    free(c);
    if (cl) moq_quic_client_destroy(cl);
}

void moq_quic_conn_free(struct moq_quic_conn *c)
{
    conn_destroy(c);
}

/* Record how the connection ended and what `closed` (or the client callback) will say. */
static void conn_end(struct moq_quic_conn *c, enum conn_state next, uint64_t code,
                     const char *reason, int fail_err)
{
    if (c->state == CS_DEAD) return;
    if (!c->end_reason[0]) snprintf(c->end_reason, sizeof(c->end_reason), "%s", reason);
    if (c->attached && !c->app_gone && !c->ev_closed) {
        c->ev_closed = true;
        if (!c->app_closing) {
            c->close_code = code;
            snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
        }
    }
    if (!c->fail_err) c->fail_err = fail_err;
    moq_debug("quic", "%s end state=%d -> %d: %s", c->t.peer, (int)c->state, (int)next, reason);
    c->state = next;
    if (next == CS_CLOSING || next == CS_DRAINING) {
        if (!c->ep->is_server) {
            c->state = CS_DEAD; /* a client has nobody to linger for */
        } else {
            /* Linger 3 PTO so late packets meet our close (or silence) instead of a reset. */
            double linger = (double)ngtcp2_conn_get_pto(c->nc) * 3 / NGTCP2_SECONDS;
            if (ev_is_active(&c->timer)) ev_timer_stop(c->ep->loop, &c->timer);
            ev_timer_set(&c->timer, linger, 0);
            ev_timer_start(c->ep->loop, &c->timer);
        }
    }
    moq_quic_conn_mark_dirty(c);
}

static void conn_send_raw(struct moq_quic_conn *c, const moq_quic_addr *local,
                          const moq_quic_addr *remote, const uint8_t *data, size_t len)
{
    moq_quic_udp_send(c->ep->fd, &c->ep->gso, c->ep->is_server ? local : NULL,
                      c->ep->is_server ? remote : NULL, data, len, len);
}

/* Write CONNECTION_CLOSE with ccerr, send it, keep it for retransmission, enter closing. */
static void conn_close_with(struct moq_quic_conn *c, const ngtcp2_connection_close_error *ccerr,
                            uint64_t code, const char *reason, int fail_err)
{
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE * 2];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->nc, &ps.path, NULL, buf, sizeof(buf),
                                                        ccerr, moq_now_ns());
    c->close_sent = true;
    if (n > 0) {
        conn_send_raw(c, &c->local, &c->remote, buf, (size_t)n);
        free(c->close_pkt);
        c->close_pkt = malloc((size_t)n);
        if (c->close_pkt) {
            memcpy(c->close_pkt, buf, (size_t)n);
            c->close_pkt_len = (size_t)n;
        }
        conn_end(c, CS_CLOSING, code, reason, fail_err);
    } else {
        conn_end(c, CS_DEAD, code, reason, fail_err);
    }
}

static const char *alert_name(uint8_t alert)
{
    const char *name = gnutls_alert_get_strname((gnutls_alert_description_t)alert);
    return name ? name : "unknown";
}

/* Map a library error from read/write/expiry into the connection's end. */
static void conn_on_liberr(struct moq_quic_conn *c, int liberr)
{
    ngtcp2_connection_close_error ccerr;
    char reason[MAX_REASON];
    switch (liberr) {
    case NGTCP2_ERR_DRAINING: {
        ngtcp2_conn_get_connection_close_error(c->nc, &ccerr);
        char peer_reason[160];
        copy_reason(peer_reason, sizeof(peer_reason), ccerr.reason ? ccerr.reason : (uint8_t *)"",
                    ccerr.reason ? ccerr.reasonlen : 0);
        int fail = MOQ_ERR_CLOSED;
        uint64_t code = 0;
        if (c->stateless_reset) {
            snprintf(reason, sizeof(reason), "stateless reset");
        } else if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
            code = ccerr.error_code;
            snprintf(reason, sizeof(reason), "%s", peer_reason);
        } else if (ccerr.error_code == (NGTCP2_CRYPTO_ERROR | 120)) {
            fail = MOQ_ERR_UNSUPPORTED;
            snprintf(reason, sizeof(reason), "peer refused our ALPN (no_application_protocol)");
        } else if ((ccerr.error_code & ~(uint64_t)0xff) == NGTCP2_CRYPTO_ERROR) {
            fail = MOQ_ERR_TLS;
            snprintf(reason, sizeof(reason), "peer TLS alert %s",
                     alert_name((uint8_t)ccerr.error_code));
        } else {
            snprintf(reason, sizeof(reason), "peer closed: transport error 0x%llx %s",
                     (unsigned long long)ccerr.error_code, peer_reason);
        }
        conn_end(c, CS_DRAINING, code, reason, fail);
        return;
    }
    case NGTCP2_ERR_IDLE_CLOSE:
        conn_end(c, CS_DEAD, 0, "idle timeout", MOQ_ERR_TIMEOUT);
        return;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
        conn_end(c, CS_DEAD, 0, "handshake timeout", MOQ_ERR_TIMEOUT);
        return;
    case NGTCP2_ERR_DROP_CONN:
    case NGTCP2_ERR_RETRY:
        conn_end(c, CS_DEAD, 0, "dropped", MOQ_ERR_CLOSED);
        return;
    case NGTCP2_ERR_CRYPTO: {
        uint8_t alert = ngtcp2_conn_get_tls_alert(c->nc);
        int fail = MOQ_ERR_TLS;
        if (alert == 120 && c->ep->is_server) {
            snprintf(reason, sizeof(reason), "no common ALPN (client offered: %s)",
                     c->offered_alpn[0] ? c->offered_alpn : "none");
        } else {
            snprintf(reason, sizeof(reason), "TLS handshake failed: %s", alert_name(alert));
        }
        ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, NULL, 0);
        conn_close_with(c, &ccerr, 0, reason, fail);
        return;
    }
    default:
        snprintf(reason, sizeof(reason), "quic error: %s", ngtcp2_strerror(liberr));
        ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
        conn_close_with(c, &ccerr, 0, reason, MOQ_ERR_PROTO);
        return;
    }
}

/* ---- receive ---- */

void moq_quic_conn_read(struct moq_quic_conn *c, const moq_quic_addr *local,
                        const moq_quic_addr *remote, const uint8_t *data, size_t len)
{
    if (c->state == CS_CLOSING) {
        /* Repeat our close, but ever more sparingly. */
        c->close_resends++;
        if (c->close_pkt && c->close_resends <= MAX_CLOSE_RESENDS &&
            (c->close_resends & (c->close_resends - 1)) == 0)
            conn_send_raw(c, local, remote, c->close_pkt, c->close_pkt_len);
        return;
    }
    if (c->state != CS_HANDSHAKE && c->state != CS_ESTABLISHED) return;
    ngtcp2_path path = conn_path(c, local, remote);
    ngtcp2_pkt_info pi = {0};
    int rv = ngtcp2_conn_read_pkt(c->nc, &path, &pi, data, len, moq_now_ns());
    if (rv != 0) {
        conn_on_liberr(c, rv);
        return;
    }
    if (c->uni_exhausted && !c->close_sent && !c->reject) {
        ngtcp2_connection_close_error ccerr;
        static const char limit[] = "stream limit reached, reconnect";
        ngtcp2_connection_close_error_set_application_error(&ccerr, 0, (const uint8_t *)limit,
                                                            sizeof(limit) - 1);
        moq_warn("quic", "%s opened %llu uni streams: closing (libngtcp2 < 0.14 keeps them all)",
                 c->t.peer, (unsigned long long)c->peer_uni_total);
        conn_close_with(c, &ccerr, 0, "peer stream limit reached", MOQ_ERR_LIMIT);
        return;
    }
    if (c->reject && !c->close_sent) {
        ngtcp2_connection_close_error ccerr;
        static const char refused[] = "refused";
        ngtcp2_connection_close_error_set_application_error(&ccerr, 0, (const uint8_t *)refused,
                                                            sizeof(refused) - 1);
        c->attached = false;
        conn_close_with(c, &ccerr, 0, "refused by the application", MOQ_ERR_CLOSED);
        return;
    }
    moq_quic_conn_mark_dirty(c);
}

/* ---- send ---- */

/* Park what the socket refused; the endpoint's write watcher sends it later. */
static void conn_block(struct moq_quic_conn *c, const uint8_t *data, size_t len, size_t gso,
                       const moq_quic_addr *local, const moq_quic_addr *remote)
{
    c->blk = malloc(len);
    if (!c->blk) return; /* dropped: QUIC will retransmit */
    memcpy(c->blk, data, len);
    c->blk_len = len;
    c->blk_gso = gso;
    c->blk_local = *local;
    c->blk_remote = *remote;
    moq_list_push_back(&c->ep->blocked, &c->blocked_link);
    if (!ev_is_active(&c->ep->wio)) ev_io_start(c->ep->loop, &c->ep->wio);
}

static void addr_from_ngtcp2(moq_quic_addr *a, const ngtcp2_addr *na)
{
    memcpy(&a->ss, na->addr, na->addrlen);
    a->len = na->addrlen;
}

/* Send one batch; returns false when the socket was full (the rest is parked). */
static bool conn_send_batch(struct moq_quic_conn *c, const uint8_t *data, size_t len, size_t gso,
                            const moq_quic_addr *local, const moq_quic_addr *remote)
{
    moq_quic_endpoint *ep = c->ep;
    long n = moq_quic_udp_send(ep->fd, &ep->gso, ep->is_server ? local : NULL,
                               ep->is_server ? remote : NULL, data, len, gso);
    if (n == (long)len) return true;
    size_t done = n > 0 ? (size_t)n : 0;
    conn_block(c, data + done, len - done, gso, local, remote);
    return false;
}

static struct stream *next_stream(struct moq_quic_conn *c)
{
    moq_quic_sched_node *n = moq_quic_sched_peek(&c->sched);
    return n ? moq_container_of(n, struct stream, node) : NULL;
}

/* Account for what ngtcp2 took from stream s in the last write. */
static void stream_wrote(struct moq_quic_conn *c, struct stream *s, ngtcp2_ssize ndatalen, bool fin,
                         uint64_t offered)
{
    moq_quic_sendq_advance(&s->q, (uint64_t)ndatalen);
    c->bytes_sent += (uint64_t)ndatalen;
    if (fin && (uint64_t)ndatalen == offered) s->fin_sent = true;
    stream_check_writable(c, s);
    if (stream_wants_send(s))
        moq_quic_sched_requeue(&c->sched, &s->node);
    else
        moq_quic_sched_remove(&c->sched, &s->node);
}

/* Try to put the oldest queued datagram into the packet being built. */
static ngtcp2_ssize write_datagram(struct moq_quic_conn *c, ngtcp2_path *path, ngtcp2_pkt_info *pi,
                                   uint8_t *dest, size_t destlen, ngtcp2_tstamp ts)
{
    struct dgram *d = c->dg_head;
    ngtcp2_vec v = {d->data, d->len};
    int accepted = 0;
    ngtcp2_ssize n = ngtcp2_conn_writev_datagram(c->nc, path, pi, dest, destlen, &accepted,
                                                 NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &v, 1, ts);
    bool drop = accepted || n == NGTCP2_ERR_INVALID_ARGUMENT || n == NGTCP2_ERR_INVALID_STATE ||
                ++d->tries >= 3;
    if (drop) {
        c->dg_head = d->next;
        if (!c->dg_head) c->dg_tail = NULL;
        c->dg_count--;
        c->dg_bytes -= d->len;
        free(d);
    }
    if (n == NGTCP2_ERR_INVALID_ARGUMENT || n == NGTCP2_ERR_INVALID_STATE)
        return NGTCP2_ERR_WRITE_MORE;
    return n;
}

static void conn_send_app_close(struct moq_quic_conn *c)
{
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_application_error(
        &ccerr, c->close_code, (const uint8_t *)c->close_reason, strlen(c->close_reason));
    conn_close_with(c, &ccerr, c->close_code, c->close_reason, MOQ_ERR_CLOSED);
}

/* Write one GSO batch: up to send_quantum worth of equal-size packets. */
static void conn_flush(struct moq_quic_conn *c)
{
    if (c->state != CS_HANDSHAKE && c->state != CS_ESTABLISHED) return;
    if (c->app_closing && !c->close_sent) {
        conn_send_app_close(c);
        return;
    }
    if (c->blk) return;

    moq_quic_endpoint *ep = c->ep;
    ngtcp2_tstamp ts = moq_now_ns();
    size_t max_udp = ngtcp2_conn_get_max_tx_udp_payload_size(c->nc);
    size_t max_pkts = ngtcp2_conn_get_send_quantum(c->nc) / max_udp;
    if (max_pkts < 1) max_pkts = 1;
    if (max_pkts > MOQ_QUIC_UDP_MAX_SEGMENTS) max_pkts = MOQ_QUIC_UDP_MAX_SEGMENTS;
    if (max_pkts * max_udp > MOQ_QUIC_UDP_MAX_BATCH) max_pkts = MOQ_QUIC_UDP_MAX_BATCH / max_udp;

    uint8_t *buf = ep->txbuf;
    size_t off = 0, npkts = 0, gso = 0;
    moq_quic_addr first_local, first_remote;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    bool conn_blocked = false;
    unsigned stalls = 0;

    for (;;) {
        ngtcp2_ssize nwrite;
        if (c->dg_head && c->state == CS_ESTABLISHED) {
            nwrite = write_datagram(c, &ps.path, &pi, buf + off, max_udp, ts);
            if (nwrite == NGTCP2_ERR_WRITE_MORE) continue;
        } else {
            struct stream *s = NULL;
            if (c->state == CS_ESTABLISHED && !conn_blocked && stalls < 8) s = next_stream(c);
            ngtcp2_vec vec[MAX_VECS];
            size_t nvec = 0;
            uint64_t offered = 0;
            uint32_t flags = s ? NGTCP2_WRITE_STREAM_FLAG_MORE : NGTCP2_WRITE_STREAM_FLAG_NONE;
            bool fin = false;
            if (s) {
                nvec = moq_quic_sendq_peek(&s->q, vec, MAX_VECS);
                for (size_t i = 0; i < nvec; i++)
                    offered += vec[i].len;
                fin = s->fin_requested && offered == moq_quic_sendq_unsent(&s->q);
                if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
            }
            ngtcp2_ssize ndatalen = -1;
            nwrite = ngtcp2_conn_writev_stream(c->nc, &ps.path, &pi, buf + off, max_udp, &ndatalen,
                                               flags, s ? s->id : -1, vec, nvec, ts);
            if (s && ndatalen >= 0) {
                if (ndatalen == 0 && !(fin && offered == 0)) stalls++;
                stream_wrote(c, s, ndatalen, fin, offered);
            }
            if (s && nwrite == NGTCP2_ERR_WRITE_MORE) {
                if ((uint64_t)ndatalen < offered) {
                    if (ngtcp2_conn_get_max_stream_data_left(c->nc, s->id) == 0) {
                        s->blocked = true;
                        moq_quic_sched_remove(&c->sched, &s->node);
                    } else if (ngtcp2_conn_get_max_data_left(c->nc) == 0) {
                        conn_blocked = true;
                    }
                }
                continue;
            }
            if (s && nwrite == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
                if (ngtcp2_conn_get_max_stream_data_left(c->nc, s->id) == 0) {
                    s->blocked = true;
                    moq_quic_sched_remove(&c->sched, &s->node);
                } else {
                    conn_blocked = true;
                }
                continue;
            }
            if (s &&
                (nwrite == NGTCP2_ERR_STREAM_SHUT_WR || nwrite == NGTCP2_ERR_STREAM_NOT_FOUND)) {
                /* The peer's STOP_SENDING made ngtcp2 reset it; `stopped` comes at close. */
                stream_tx_abort(c, s);
                continue;
            }
        }
        if (nwrite < 0) {
            conn_on_liberr(c, (int)nwrite);
            return;
        }
        if (nwrite == 0) break;

        moq_quic_addr local, remote;
        addr_from_ngtcp2(&local, &ps.path.local);
        addr_from_ngtcp2(&remote, &ps.path.remote);
        if (npkts == 0) {
            first_local = local;
            first_remote = remote;
            gso = (size_t)nwrite;
        } else if ((size_t)nwrite > gso || !moq_quic_addr_equal(&remote, &first_remote)) {
            /* Cannot join the batch: send the batch, then this packet alone. */
            if (conn_send_batch(c, buf, off, gso, &first_local, &first_remote))
                conn_send_batch(c, buf + off, (size_t)nwrite, (size_t)nwrite, &local, &remote);
            off = 0;
            break;
        }
        off += (size_t)nwrite;
        npkts++;
        if (npkts == max_pkts || (size_t)nwrite < gso) break;
    }
    if (off) conn_send_batch(c, buf, off, gso, &first_local, &first_remote);
    /* Pace only once an RTT sample exists: ngtcp2 0.12 would otherwise space the handshake
     * flights by the 333 ms default RTT (tens of milliseconds per flight). */
    if (!c->rtt_known) {
        ngtcp2_conn_stat st;
        ngtcp2_conn_get_conn_stat(c->nc, &st);
        c->rtt_known = st.first_rtt_sample_ts != UINT64_MAX;
    }
    if (c->rtt_known) ngtcp2_conn_update_pkt_tx_time(c->nc, ts);
}

static void conn_update_timer(struct moq_quic_conn *c)
{
    if (c->state != CS_HANDSHAKE && c->state != CS_ESTABLISHED) return;
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->nc);
    if (ev_is_active(&c->timer)) ev_timer_stop(c->ep->loop, &c->timer);
    if (expiry == UINT64_MAX) return;
    ngtcp2_tstamp now = moq_now_ns();
    double delay = expiry > now ? (double)(expiry - now) / NGTCP2_SECONDS : 0;
    ev_timer_set(&c->timer, delay, 0);
    ev_timer_start(c->ep->loop, &c->timer);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct moq_quic_conn *c = w->data;
    (void)loop;
    (void)revents;
    moq_debug("quic", "%s timer state=%d", c->t.peer, (int)c->state);
    if (c->state == CS_CLOSING || c->state == CS_DRAINING) {
        c->state = CS_DEAD;
        moq_quic_conn_mark_dirty(c);
        return;
    }
    if (c->state != CS_HANDSHAKE && c->state != CS_ESTABLISHED) return;
    int rv = ngtcp2_conn_handle_expiry(c->nc, moq_now_ns());
    if (rv != 0) conn_on_liberr(c, rv);
    moq_quic_conn_mark_dirty(c);
}

/* ---- deferred events ---- */

static void dispatch_stream(struct moq_quic_conn *c, struct stream *s)
{
    const struct moq_transport_events *ev = c->t.ev;
    if (s->ev_stopped) {
        s->ev_stopped = false;
        s->stopped_sent = true;
        if (app_events(c) && ev->stream_stopped)
            ev->stream_stopped(c->t.app, &c->t, s->id, s->sctx, s->close_code);
    }
    if (s->ev_writable) {
        s->ev_writable = false;
        if (app_events(c) && ev->stream_writable)
            ev->stream_writable(c->t.app, &c->t, s->id, s->sctx);
    }
    if (s->nc_closed) {
        if (app_events(c) && ev->stream_closed) ev->stream_closed(c->t.app, &c->t, s->id, s->sctx);
        stream_free(c, s);
    }
}

static void conn_dispatch(struct moq_quic_conn *c)
{
    while (!moq_list_empty(&c->pending)) {
        struct stream *s = moq_list_first(&c->pending, struct stream, pending);
        moq_list_remove(&s->pending);
        dispatch_stream(c, s);
    }
    if (c->ev_bidi || c->ev_uni) {
        bool bidi = c->ev_bidi, uni = c->ev_uni;
        c->ev_bidi = c->ev_uni = false;
        if (app_events(c) && c->t.ev->streams_available) {
            if (bidi) c->t.ev->streams_available(c->t.app, &c->t, true);
            if (uni && app_events(c)) c->t.ev->streams_available(c->t.app, &c->t, false);
        }
    }
    if (c->ev_closed) {
        c->ev_closed = false;
        c->app_gone = true;
        const struct moq_transport_events *ev = c->t.ev;
        c->t.ev = NULL;
        if (ev && ev->closed) ev->closed(c->t.app, &c->t, c->close_code, c->close_reason);
        free_streams(c);
    }
}

/* One connection's turn in the prepare watcher. Returns false if c was freed. */
static bool conn_service(struct moq_quic_conn *c)
{
    conn_dispatch(c);
    if (c->state == CS_HANDSHAKE || c->state == CS_ESTABLISHED) conn_flush(c);
    if (c->state == CS_HANDSHAKE || c->state == CS_ESTABLISHED) conn_update_timer(c);
    if (c->ev_closed || !moq_list_empty(&c->pending)) conn_dispatch(c);
    if (c->state == CS_DEAD ||
        ((c->state == CS_CLOSING || c->state == CS_DRAINING) && !c->ep->is_server)) {
        if (!c->attached && !c->ep->is_server && c->ep->client) {
            moq_quic_client_failed(c->ep->client, c->fail_err ? c->fail_err : MOQ_ERR_CLOSED,
                                   c->end_reason);
        }
        log_end(c);
        conn_destroy(c);
        return false;
    }
    if (c->state == CS_CLOSING || c->state == CS_DRAINING) log_end(c);
    return true;
}

void moq_quic_conn_shutdown(struct moq_quic_conn *c)
{
    if ((c->state == CS_HANDSHAKE || c->state == CS_ESTABLISHED) && !c->close_sent) {
        ngtcp2_connection_close_error ccerr;
        static const char bye[] = "server shutting down";
        ngtcp2_connection_close_error_set_application_error(&ccerr, 0, (const uint8_t *)bye,
                                                            sizeof(bye) - 1);
        conn_close_with(c, &ccerr, 0, bye, MOQ_ERR_CLOSED);
    }
    conn_dispatch(c);
    log_end(c);
    conn_destroy(c);
}

/* ---- moq_transport ops ---- */

static bool conn_usable(struct moq_quic_conn *c)
{
    return c->state == CS_ESTABLISHED && !c->app_closing && !c->app_gone;
}

static int op_open_stream(moq_transport *t, bool bidi, int64_t *sid)
{
    struct moq_quic_conn *c = conn_of(t);
    if (!conn_usable(c)) return MOQ_ERR_CLOSED;
    int64_t id;
    int rv = bidi ? ngtcp2_conn_open_bidi_stream(c->nc, &id, NULL)
                  : ngtcp2_conn_open_uni_stream(c->nc, &id, NULL);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
        if (bidi)
            c->want_bidi = true;
        else
            c->want_uni = true;
        return MOQ_ERR_AGAIN;
    }
    if (rv != 0) return MOQ_ERR_NOMEM;
    struct stream *s = stream_new(c, id, true);
    if (!s) {
        ngtcp2_conn_shutdown_stream(c->nc, id, 0);
        return MOQ_ERR_NOMEM;
    }
    ngtcp2_conn_set_stream_user_data(c->nc, id, s);
    *sid = id;
    return MOQ_OK;
}

static int op_write(moq_transport *t, int64_t sid, const moq_slice *v, size_t n, bool fin)
{
    struct moq_quic_conn *c = conn_of(t);
    if (!conn_usable(c)) return MOQ_ERR_CLOSED;
    struct stream *s = stream_get(c, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (!s->has_tx) return MOQ_ERR_INVALID;
    if (s->tx_done || s->fin_requested || s->nc_closed) return MOQ_ERR_CLOSED;
    uint64_t add = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].chunk || v[i].off + v[i].len > v[i].chunk->len) return MOQ_ERR_INVALID;
        add += v[i].len;
    }
    uint64_t high = c->ep->tc.stream_high_water;
    if (moq_quic_sendq_unsent(&s->q) + add > high * STREAM_HARD_LIMIT_FACTOR) {
        s->want_writable = true;
        return MOQ_ERR_AGAIN;
    }
    int rv = moq_quic_sendq_push(&s->q, v, n);
    if (rv < 0) return rv;
    if (fin) s->fin_requested = true;
    if (moq_quic_sendq_unsent(&s->q) > high) s->want_writable = true;
    stream_resched(c, s);
    moq_quic_conn_mark_dirty(c);
    return MOQ_OK;
}

static size_t op_unsent(moq_transport *t, int64_t sid)
{
    struct stream *s = stream_get(conn_of(t), sid);
    return s ? (size_t)moq_quic_sendq_unsent(&s->q) : 0;
}

static void op_set_priority(moq_transport *t, int64_t sid, uint64_t priority)
{
    struct moq_quic_conn *c = conn_of(t);
    struct stream *s = stream_get(c, sid);
    if (s) moq_quic_sched_set_priority(&c->sched, &s->node, priority);
}

static int op_reset(moq_transport *t, int64_t sid, uint64_t code)
{
    struct moq_quic_conn *c = conn_of(t);
    if (c->state != CS_ESTABLISHED || c->app_gone) return MOQ_ERR_CLOSED;
    struct stream *s = stream_get(c, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (!s->has_tx) return MOQ_ERR_INVALID;
    if (s->tx_done || s->nc_closed) return MOQ_OK;
    int rv = ngtcp2_conn_shutdown_stream_write(c->nc, sid, code);
    if (rv != 0) return rv == NGTCP2_ERR_NOMEM ? MOQ_ERR_NOMEM : MOQ_ERR_INVALID;
    s->reset_by_us = true;
    stream_tx_abort(c, s);
    moq_quic_conn_mark_dirty(c);
    return MOQ_OK;
}

static int op_stop(moq_transport *t, int64_t sid, uint64_t code)
{
    struct moq_quic_conn *c = conn_of(t);
    if (c->state != CS_ESTABLISHED || c->app_gone) return MOQ_ERR_CLOSED;
    struct stream *s = stream_get(c, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (!moq_stream_is_bidi(sid) && s->has_tx) return MOQ_ERR_INVALID; /* our own uni */
    if (s->nc_closed) return MOQ_OK;
    int rv = ngtcp2_conn_shutdown_stream_read(c->nc, sid, code);
    if (rv != 0) return rv == NGTCP2_ERR_NOMEM ? MOQ_ERR_NOMEM : MOQ_ERR_INVALID;
    /* ngtcp2 hides whatever the peer still sends, so a stopped peer uni stream is over. */
    if (!s->has_tx) stream_peer_uni_done(c, s);
    moq_quic_conn_mark_dirty(c);
    return MOQ_OK;
}

static void op_set_stream_ctx(moq_transport *t, int64_t sid, void *sctx)
{
    struct stream *s = stream_get(conn_of(t), sid);
    if (s) s->sctx = sctx;
}

static size_t op_max_datagram(moq_transport *t)
{
    struct moq_quic_conn *c = conn_of(t);
    if (c->state != CS_ESTABLISHED) return 0;
    const ngtcp2_transport_params *rp = ngtcp2_conn_get_remote_transport_params(c->nc);
    if (!rp || rp->max_datagram_frame_size == 0) return 0;
    /* DATAGRAM frame: type + length varint; packet: flags, DCID, packet number, AEAD tag. */
    size_t frame_max =
        rp->max_datagram_frame_size > 9 ? (size_t)rp->max_datagram_frame_size - 9 : 0;
    size_t pkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->nc);
    size_t overhead = 1 + NGTCP2_MAX_CIDLEN + 4 + 16 + 9;
    size_t path_max = pkt > overhead ? pkt - overhead : 0;
    return frame_max < path_max ? frame_max : path_max;
}

static int op_send_datagram(moq_transport *t, const uint8_t *data, size_t len)
{
    struct moq_quic_conn *c = conn_of(t);
    if (!conn_usable(c)) return MOQ_ERR_CLOSED;
    size_t max = op_max_datagram(t);
    if (max == 0) return MOQ_ERR_UNSUPPORTED;
    if (len > max) return MOQ_ERR_TOO_LARGE;
    if (c->dg_count >= MAX_DGRAM_QUEUE || c->dg_bytes + len > MAX_DGRAM_QUEUE_BYTES)
        return MOQ_OK; /* dropped, as datagrams may be */
    struct dgram *d = malloc(sizeof(*d) + len);
    if (!d) return MOQ_ERR_NOMEM;
    d->next = NULL;
    d->len = len;
    d->tries = 0;
    if (len) memcpy(d->data, data, len);
    if (c->dg_tail)
        c->dg_tail->next = d;
    else
        c->dg_head = d;
    c->dg_tail = d;
    c->dg_count++;
    c->dg_bytes += len;
    moq_quic_conn_mark_dirty(c);
    return MOQ_OK;
}

static void op_close(moq_transport *t, uint64_t code, const char *reason)
{
    struct moq_quic_conn *c = conn_of(t);
    if (c->app_closing || c->app_gone) return;
    c->app_closing = true;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
    if (c->state == CS_ESTABLISHED) {
        moq_quic_conn_mark_dirty(c); /* CONNECTION_CLOSE goes out from the loop */
    } else if (!c->ev_closed) {
        /* Already closing or drained: only `closed` is left to deliver. */
        c->ev_closed = true;
        moq_quic_conn_mark_dirty(c);
    }
}

static void op_stats(moq_transport *t, struct moq_transport_stats *out)
{
    struct moq_quic_conn *c = conn_of(t);
    memset(out, 0, sizeof(*out));
    out->bytes_sent = c->bytes_sent;
    out->bytes_recv = c->bytes_recv;
    if (!c->nc) return;
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->nc, &st);
    if (st.first_rtt_sample_ts != UINT64_MAX) {
        out->rtt_us = st.smoothed_rtt / NGTCP2_MICROSECONDS;
        out->min_rtt_us = st.min_rtt / NGTCP2_MICROSECONDS;
    }
    out->cwnd = st.cwnd;
    out->bitrate_bps = st.delivery_rate_sec * 8;
}

static const struct moq_transport_ops conn_ops = {
    .open_stream = op_open_stream,
    .write = op_write,
    .unsent = op_unsent,
    .set_priority = op_set_priority,
    .reset = op_reset,
    .stop = op_stop,
    .set_stream_ctx = op_set_stream_ctx,
    .send_datagram = op_send_datagram,
    .max_datagram = op_max_datagram,
    .close = op_close,
    .stats = op_stats,
};

/* ---- endpoint ---- */

void moq_quic_transport_config_resolve(struct moq_quic_transport_config *out,
                                       const struct moq_quic_transport_config *in)
{
    *out = *in;
    if (!out->max_concurrent_streams) out->max_concurrent_streams = MOQ_QUIC_DEFAULT_MAX_STREAMS;
    if (!out->receive_window) out->receive_window = MOQ_QUIC_DEFAULT_RECEIVE_WINDOW;
    if (!out->stream_receive_window) out->stream_receive_window = MOQ_QUIC_DEFAULT_STREAM_WINDOW;
    if (!out->idle_timeout_ms) out->idle_timeout_ms = MOQ_QUIC_DEFAULT_IDLE_TIMEOUT_MS;
    if (!out->handshake_timeout_ms)
        out->handshake_timeout_ms = MOQ_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    if (!out->max_datagram_frame_size)
        out->max_datagram_frame_size = MOQ_QUIC_DEFAULT_MAX_DATAGRAM_FRAME;
    if (!out->stream_high_water) out->stream_high_water = MOQ_QUIC_DEFAULT_STREAM_HIGH_WATER;
    if (!out->max_peer_uni_streams_total)
        out->max_peer_uni_streams_total = MOQ_QUIC_DEFAULT_MAX_PEER_UNI_TOTAL;
}

static void ep_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    moq_quic_endpoint *ep = w->data;
    (void)loop;
    (void)revents;
    for (int round = 0; round < DISPATCH_ROUNDS && !moq_list_empty(&ep->dirty); round++) {
        moq_list batch;
        moq_list_init(&batch);
        /* Take the list: connections dirtied while we serve go to the next round. */
        batch.next = ep->dirty.next;
        batch.prev = ep->dirty.prev;
        batch.next->prev = &batch;
        batch.prev->next = &batch;
        moq_list_init(&ep->dirty);
        while (!moq_list_empty(&batch)) {
            struct moq_quic_conn *c = moq_list_first(&batch, struct moq_quic_conn, dirty_link);
            moq_list_remove(&c->dirty_link);
            /* The client endpoint dies with its connection: stop touching it then. */
            bool last = !ep->is_server;
            if (!conn_service(c) && last) return;
        }
    }
    /* Still dirty after the rounds: do not let the loop block. */
    if (!moq_list_empty(&ep->dirty) && !ev_is_active(&ep->idle)) ev_idle_start(ep->loop, &ep->idle);
}

static void ep_idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
}

static void ep_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    moq_quic_endpoint *ep = w->data;
    (void)loop;
    (void)revents;
    ep->on_readable(ep);
}

static void ep_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    moq_quic_endpoint *ep = w->data;
    (void)revents;
    while (!moq_list_empty(&ep->blocked)) {
        struct moq_quic_conn *c = moq_list_first(&ep->blocked, struct moq_quic_conn, blocked_link);
        long n = moq_quic_udp_send(ep->fd, &ep->gso, ep->is_server ? &c->blk_local : NULL,
                                   ep->is_server ? &c->blk_remote : NULL, c->blk, c->blk_len,
                                   c->blk_gso);
        if (n != (long)c->blk_len) {
            if (n > 0) {
                /* Keep the unsent tail (whole segments). */
                memmove(c->blk, c->blk + n, c->blk_len - (size_t)n);
                c->blk_len -= (size_t)n;
            }
            return;
        }
        free(c->blk);
        c->blk = NULL;
        c->blk_len = 0;
        moq_list_remove(&c->blocked_link);
        moq_quic_conn_mark_dirty(c);
    }
    ev_io_stop(loop, w);
}

int moq_quic_endpoint_init(moq_quic_endpoint *ep, struct ev_loop *loop, int fd, size_t rx_slots,
                           const struct moq_quic_transport_config *tc)
{
    memset(ep, 0, sizeof(*ep));
    ep->loop = loop;
    ep->fd = fd;
    ep->gso = !tc->disable_gso;
    moq_quic_transport_config_resolve(&ep->tc, tc);
    moq_list_init(&ep->dirty);
    moq_list_init(&ep->blocked);
    ep->txbuf = malloc(MOQ_QUIC_TXBUF_SIZE);
    if (!ep->txbuf || moq_quic_udp_rx_init(&ep->rx, rx_slots) < 0) {
        free(ep->txbuf);
        ep->txbuf = NULL;
        return MOQ_ERR_NOMEM;
    }
    ev_io_init(&ep->rio, ep_read_cb, fd, EV_READ);
    ev_io_init(&ep->wio, ep_write_cb, fd, EV_WRITE);
    ev_prepare_init(&ep->prep, ep_prepare_cb);
    ev_idle_init(&ep->idle, ep_idle_cb);
    ep->rio.data = ep->wio.data = ep->prep.data = ep->idle.data = ep;
    return MOQ_OK;
}

void moq_quic_endpoint_start(moq_quic_endpoint *ep)
{
    ev_io_start(ep->loop, &ep->rio);
    ev_prepare_start(ep->loop, &ep->prep);
}

void moq_quic_endpoint_close(moq_quic_endpoint *ep)
{
    if (ep->loop) {
        ev_io_stop(ep->loop, &ep->rio);
        ev_io_stop(ep->loop, &ep->wio);
        ev_prepare_stop(ep->loop, &ep->prep);
        ev_idle_stop(ep->loop, &ep->idle);
    }
    moq_quic_udp_rx_free(&ep->rx);
    free(ep->txbuf);
    ep->txbuf = NULL;
    if (ep->fd >= 0) close(ep->fd);
    ep->fd = -1;
}
