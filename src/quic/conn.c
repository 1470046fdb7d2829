/*
 * conn.c - one QUIC connection (either role) driven by ngtcp2: construction, the ngtcp2
 * callbacks, receiving, closing/draining, timers, deferred events and teardown. Streams and
 * the moq_transport operations live in stream.c, packet writing in send.c.
 *
 * Event rules (transport.h): events that ngtcp2 raises while we process received packets
 * (stream_opened, stream_data, stream_reset, datagram, accept/connect) go to the application
 * at once - we are in the loop's read handler, never inside a downcall. Everything else
 * (stream_stopped, stream_closed, stream_writable, streams_available, closed) is recorded and
 * delivered by conn_dispatch() from the endpoint's prepare watcher (endpoint.c), because ngtcp2 may
 * raise it while we are writing packets or while the application is inside a downcall.
 */
#include "quic/internal.h"
#include "quic/mem.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLOSE_RESENDS 16

static void conn_update_timer(struct moq_quic_conn *c);
static void conn_destroy(struct moq_quic_conn *c);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static bool app_events(const struct moq_quic_conn *c)
{
    return c->attached && c->t.ev && !c->app_closing && !c->app_gone && !c->uni_exhausted;
}

void moq_quic_conn_mark_dirty(struct moq_quic_conn *c)
{
    if (moq_list_linked(&c->dirty_link)) return;
    moq_list_push_back(&c->ep->dirty, &c->dirty_link);
    moq_quic_endpoint_wake(c->ep);
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

static int cb_handshake_completed(ngtcp2_conn *nc, void *user_data)
{
    struct moq_quic_conn *c = user_data;
    (void)nc;
    moq_quic_tls_set_protocol(c);
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

/* libngtcp2 before 0.14 never frees finished peer uni streams (see moq_quic_stream_peer_uni_done).
 */
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
    struct moq_quic_stream *s = moq_quic_stream_new(c, sid, bidi);
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
    struct moq_quic_stream *s = stream_user_data;
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
    if (fin && s && !s->has_tx) moq_quic_stream_peer_uni_done(c, s);
    return 0;
}

static int cb_stream_reset(ngtcp2_conn *nc, int64_t sid, uint64_t final_size, uint64_t code,
                           void *user_data, void *stream_user_data)
{
    struct moq_quic_conn *c = user_data;
    struct moq_quic_stream *s = stream_user_data;
    (void)nc;
    (void)final_size;
    if (s && app_events(c) && c->t.ev->stream_reset)
        c->t.ev->stream_reset(c->t.app, &c->t, sid, s->sctx, code);
    if (s && !s->has_tx) moq_quic_stream_peer_uni_done(c, s);
    return 0;
}

static int cb_stream_close(ngtcp2_conn *nc, uint32_t flags, int64_t sid, uint64_t code,
                           void *user_data, void *stream_user_data)
{
    struct moq_quic_conn *c = user_data;
    struct moq_quic_stream *s = stream_user_data;
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
    moq_quic_stream_pending(c, s);
    return 0;
}

static int cb_acked_stream_data_offset(ngtcp2_conn *nc, int64_t sid, uint64_t offset,
                                       uint64_t datalen, void *user_data, void *stream_user_data)
{
    struct moq_quic_stream *s = stream_user_data;
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
    struct moq_quic_stream *s = stream_user_data;
    (void)nc;
    (void)sid;
    (void)max_data;
    if (s && s->blocked) {
        s->blocked = false;
        moq_quic_stream_resched(c, s);
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

static int cb_recv_retry(ngtcp2_conn *nc, const ngtcp2_pkt_hd *hd, void *user_data)
{
    struct moq_quic_conn *c = user_data;
    moq_debug("quic", "%s asks us to validate our address (Retry)", c->t.peer);
    return ngtcp2_crypto_recv_retry_cb(nc, hd, user_data);
}

static void fill_callbacks(ngtcp2_callbacks *cb, bool server)
{
    memset(cb, 0, sizeof(*cb));
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = cb_recv_retry;
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
    c->t.ops = &moq_quic_conn_ops;
    c->t.kind = MOQ_TRANSPORT_QUIC;
    c->local = *local;
    c->remote = *remote;
    moq_quic_addr_format(remote, c->t.peer, sizeof(c->t.peer));
    c->state = CS_HANDSHAKE;
    c->start_us = moq_now_us();
    moq_quic_arena_init(&c->arena);
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
    moq_liveness_init(&c->live);
    return c;
}

static ngtcp2_path make_path(const moq_quic_addr *local, const moq_quic_addr *remote)
{
    ngtcp2_path path;
    memset(&path, 0, sizeof(path));
    path.local.addr = (ngtcp2_sockaddr *)&local->ss;
    path.local.addrlen = local->len;
    path.remote.addr = (ngtcp2_sockaddr *)&remote->ss;
    path.remote.addrlen = remote->len;
    return path;
}

/* ---- construction ---- */

struct moq_quic_conn *
moq_quic_conn_new_server(moq_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, const moq_quic_addr *local,
                         const moq_quic_addr *remote, const ngtcp2_cid *scid, const uint8_t *token,
                         gnutls_certificate_credentials_t creds, void *creds_handle,
                         const char *const *alpn, size_t alpn_count)
{
    return moq_quic_conn_new_server_validated(ep, hd, NULL, local, remote, scid, token, creds,
                                              creds_handle, alpn, alpn_count);
}

struct moq_quic_conn *
moq_quic_conn_new_server_validated(moq_quic_endpoint *ep, const ngtcp2_pkt_hd *hd,
                                   const ngtcp2_cid *odcid, const moq_quic_addr *local,
                                   const moq_quic_addr *remote, const ngtcp2_cid *scid,
                                   const uint8_t *token, gnutls_certificate_credentials_t creds,
                                   void *creds_handle, const char *const *alpn, size_t alpn_count)
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
    if (odcid) {
        /* After our Retry: the address is validated, so no amplification limit applies. */
        params.original_dcid = *odcid;
        params.retry_scid = hd->dcid;
        params.retry_scid_present = 1;
        st.token = hd->token;
    }
    params.stateless_reset_token_present = 1;
    memcpy(params.stateless_reset_token, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    ngtcp2_path path = make_path(local, remote);
    int rv = ngtcp2_conn_server_new(&c->nc, &hd->scid, scid, &path, hd->version, &cb, &st, &params,
                                    &c->arena.mem, c);
    if (rv != 0) {
        moq_warn("quic", "ngtcp2_conn_server_new: %s", ngtcp2_strerror(rv));
        c->nc = NULL;
        c->creds_handle = NULL; /* the caller still owns it */
        conn_destroy(c);
        return NULL;
    }
    if (moq_quic_tls_server_init(c, creds, alpn, alpn_count) < 0) {
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
    ngtcp2_path path = make_path(local, remote);
    int rv = ngtcp2_conn_client_new(&c->nc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &st,
                                    &params, &c->arena.mem, c);
    if (rv != 0) {
        moq_warn("quic", "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
        c->nc = NULL;
        conn_destroy(c);
        return NULL;
    }
    if (moq_quic_tls_client_init(c, cfg) < 0) {
        conn_destroy(c);
        return NULL;
    }
    if (ep->tc.keep_alive_ms)
        ngtcp2_conn_set_keep_alive_timeout(c->nc, ep->tc.keep_alive_ms * NGTCP2_MILLISECONDS);
    moq_quic_conn_mark_dirty(c); /* the first flight goes out from the loop */
    return c;
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
        moq_info_repeat("refused QUIC connections", "quic", "refused %s: %s", c->t.peer,
                        c->end_reason);
    } else {
        moq_info("quic", "connection to %s failed: %s", c->t.peer, c->end_reason);
    }
}

static _Atomic size_t leftover_blocks; /* connections live on several worker threads */

size_t moq_quic_leftover_blocks(void)
{
    return leftover_blocks;
}

static void conn_destroy(struct moq_quic_conn *c)
{
    /* An expired timer is no longer active but may still be pending in this iteration:
     * stopping it clears that too. */
    ev_timer_stop(c->ep->loop, &c->timer);
    if (moq_list_linked(&c->dirty_link)) moq_list_remove(&c->dirty_link);
    if (moq_list_linked(&c->blocked_link)) moq_list_remove(&c->blocked_link);
    moq_quic_conn_free_streams(c);
    moq_u64map_free(&c->streams);
    moq_quic_sched_free(&c->sched);
    for (struct moq_quic_dgram *d = c->dg_head, *next; d; d = next) {
        next = d->next;
        free(d);
    }
    if (c->ep->is_server && c->ep->server) moq_quic_server_forget(c->ep->server, c);
    if (c->nc) ngtcp2_conn_del(c->nc);
    size_t lost = moq_quic_arena_release(&c->arena);
    if (lost) {
        leftover_blocks += lost;
        moq_debug("quic", "%s: freed %zu blocks libngtcp2 left behind", c->t.peer, lost);
    }
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
static void conn_end(struct moq_quic_conn *c, enum moq_quic_conn_state next, uint64_t code,
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

/* Write CONNECTION_CLOSE with ccerr, send it, keep it for retransmission, enter closing. */
void moq_quic_conn_close_with(struct moq_quic_conn *c, const ngtcp2_connection_close_error *ccerr,
                              uint64_t code, const char *reason, int fail_err)
{
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE * 2];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->nc, &ps.path, NULL, buf, sizeof(buf),
                                                        ccerr, moq_now_ns());
    c->close_sent = true;
    if (n > 0) {
        /* The current path (it may have migrated since the handshake). */
        if (ps.path.remote.addrlen) {
            memcpy(&c->local.ss, ps.path.local.addr, ps.path.local.addrlen);
            c->local.len = ps.path.local.addrlen;
            memcpy(&c->remote.ss, ps.path.remote.addr, ps.path.remote.addrlen);
            c->remote.len = ps.path.remote.addrlen;
        }
        moq_quic_conn_send_raw(c, &c->local, &c->remote, buf, (size_t)n);
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
void moq_quic_conn_on_liberr(struct moq_quic_conn *c, int liberr)
{
    ngtcp2_connection_close_error ccerr;
    char reason[MOQ_QUIC_MAX_REASON];
    switch (liberr) {
    case NGTCP2_ERR_DRAINING: {
        ngtcp2_conn_get_connection_close_error(c->nc, &ccerr);
        char peer_reason[160];
        moq_quic_copy_printable(peer_reason, sizeof(peer_reason),
                                ccerr.reason ? ccerr.reason : (uint8_t *)"",
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
            snprintf(reason, sizeof(reason), "TLS handshake failed (%s)", alert_name(alert));
        }
        ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, NULL, 0);
        moq_quic_conn_close_with(c, &ccerr, 0, reason, fail);
        return;
    }
    default:
        snprintf(reason, sizeof(reason), "quic error: %s", ngtcp2_strerror(liberr));
        ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, liberr, NULL, 0);
        moq_quic_conn_close_with(c, &ccerr, 0, reason, MOQ_ERR_PROTO);
        return;
    }
}

/* ---- the peer's liveness (util/liveness.h) ---- */

/* Packets that need an acknowledgement are in flight. */
static bool awaiting_acks(struct moq_quic_conn *c)
{
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->nc, &st);
    return st.bytes_in_flight > 0;
}

/* The configured ack timeout, never less than 3 PTO (so a long path is not cut short). */
static uint64_t ack_timeout_ns(struct moq_quic_conn *c)
{
    uint64_t ms = c->ep->tc.ack_timeout_ms;
    if (ms == MOQ_QUIC_ACK_TIMEOUT_OFF) return 0;
    uint64_t ns = ms > UINT64_MAX / NGTCP2_MILLISECONDS ? UINT64_MAX : ms * NGTCP2_MILLISECONDS;
    uint64_t floor = 3 * ngtcp2_conn_get_pto(c->nc);
    return ns > floor ? ns : floor;
}

static void close_ack_timeout(struct moq_quic_conn *c)
{
    static const char why[] = "ack timeout";
    moq_debug("quic", "%s: nothing heard for %llums while packets await acknowledgement", c->t.peer,
              (unsigned long long)(ack_timeout_ns(c) / NGTCP2_MILLISECONDS));
    ngtcp2_connection_close_error ccerr;
    ngtcp2_connection_close_error_set_transport_error(&ccerr, NGTCP2_NO_ERROR, (const uint8_t *)why,
                                                      sizeof(why) - 1);
    moq_quic_conn_close_with(c, &ccerr, 0, why, MOQ_ERR_TIMEOUT);
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
            moq_quic_conn_send_raw(c, local, remote, c->close_pkt, c->close_pkt_len);
        return;
    }
    if (c->state != CS_HANDSHAKE && c->state != CS_ESTABLISHED) return;
    ngtcp2_path path = make_path(local, remote);
    ngtcp2_pkt_info pi = {0};
    ngtcp2_tstamp now = moq_now_ns();
    int rv = ngtcp2_conn_read_pkt(c->nc, &path, &pi, data, len, now);
    if (rv != 0) {
        moq_quic_conn_on_liberr(c, rv);
        return;
    }
    if (c->state == CS_ESTABLISHED) moq_liveness_heard(&c->live, now, awaiting_acks(c));
    if (c->uni_exhausted && !c->close_sent && !c->reject) {
        ngtcp2_connection_close_error ccerr;
        static const char limit[] = "stream limit reached, reconnect";
        ngtcp2_connection_close_error_set_application_error(&ccerr, 0, (const uint8_t *)limit,
                                                            sizeof(limit) - 1);
        moq_warn("quic", "%s opened %llu uni streams: closing (libngtcp2 < 0.14 keeps them all)",
                 c->t.peer, (unsigned long long)c->peer_uni_total);
        moq_quic_conn_close_with(c, &ccerr, 0, "peer stream limit reached", MOQ_ERR_LIMIT);
        return;
    }
    if (c->reject && !c->close_sent) {
        ngtcp2_connection_close_error ccerr;
        static const char refused[] = "refused";
        ngtcp2_connection_close_error_set_application_error(&ccerr, 0, (const uint8_t *)refused,
                                                            sizeof(refused) - 1);
        c->attached = false;
        moq_quic_conn_close_with(c, &ccerr, 0, "refused by the application", MOQ_ERR_CLOSED);
        return;
    }
    moq_quic_conn_mark_dirty(c);
}

/* When the peer counts as gone (util/liveness.h) on ngtcp2's clock, or UINT64_MAX. */
static ngtcp2_tstamp ack_deadline(struct moq_quic_conn *c)
{
    if (c->state != CS_ESTABLISHED) return UINT64_MAX;
    return moq_liveness_deadline(&c->live, ack_timeout_ns(c));
}

static void conn_update_timer(struct moq_quic_conn *c)
{
    if (c->state != CS_HANDSHAKE && c->state != CS_ESTABLISHED) return;
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->nc);
    ngtcp2_tstamp gone = ack_deadline(c);
    if (gone < expiry) expiry = gone;
    if (ev_is_active(&c->timer) && expiry == c->timer_expiry) return;
    c->timer_expiry = expiry;
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
    if (c->state == CS_CLOSING || c->state == CS_DRAINING) {
        c->state = CS_DEAD;
        moq_quic_conn_mark_dirty(c);
        return;
    }
    if (c->state != CS_HANDSHAKE && c->state != CS_ESTABLISHED) return;
    if (moq_now_ns() >= ack_deadline(c)) {
        /* Packets that came while the loop was busy elsewhere may be the answer: read them
         * before judging (libev runs expired timers before the I/O of the same iteration). */
        c->ep->on_readable(c->ep);
        if (c->state != CS_ESTABLISHED) return; /* what was read ended it */
        if (moq_now_ns() >= ack_deadline(c)) {
            close_ack_timeout(c);
            return;
        }
    }
    int rv = ngtcp2_conn_handle_expiry(c->nc, moq_now_ns());
    if (rv != 0) moq_quic_conn_on_liberr(c, rv);
    moq_quic_conn_mark_dirty(c);
}

/* ---- deferred events ---- */

static void dispatch_stream(struct moq_quic_conn *c, struct moq_quic_stream *s)
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
        moq_quic_stream_free(c, s);
    }
}

static void conn_dispatch(struct moq_quic_conn *c)
{
    while (!moq_list_empty(&c->pending)) {
        struct moq_quic_stream *s = moq_list_first(&c->pending, struct moq_quic_stream, pending);
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
        moq_quic_conn_free_streams(c);
    }
}

/* One connection's turn in the prepare watcher. Returns false if c was freed. */
bool moq_quic_conn_service(struct moq_quic_conn *c)
{
    conn_dispatch(c);
    if (c->state == CS_HANDSHAKE || c->state == CS_ESTABLISHED) moq_quic_conn_flush(c);
    if (c->state == CS_ESTABLISHED) moq_liveness_sent(&c->live, moq_now_ns(), awaiting_acks(c));
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
        moq_quic_conn_close_with(c, &ccerr, 0, bye, MOQ_ERR_CLOSED);
    }
    conn_dispatch(c);
    log_end(c);
    conn_destroy(c);
}
