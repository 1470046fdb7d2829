/*
 * stream.c - streams of a connection and the moq_transport operations (the downcalls).
 * Downcalls only queue work and mark the connection dirty; packets leave from the loop.
 */
#include "quic/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DGRAM_QUEUE       128
#define MAX_DGRAM_QUEUE_BYTES (256 * 1024)
/* A write() is refused once this many times the high-water mark is queued. */
#define STREAM_HARD_LIMIT_FACTOR 64

/* ---- streams ---- */

struct moq_quic_stream *moq_quic_stream_get(struct moq_quic_conn *c, int64_t sid)
{
    if (sid < 0) return NULL;
    return moq_u64map_get(&c->streams, (uint64_t)sid);
}

struct moq_quic_stream *moq_quic_stream_new(struct moq_quic_conn *c, int64_t sid, bool has_tx)
{
    struct moq_quic_stream *s = moq_pool_calloc(sizeof(*s));
    if (!s) return NULL;
    s->id = sid;
    s->c = c;
    s->has_tx = has_tx;
    s->tx_done = !has_tx;
    moq_quic_sched_node_init(&s->node, 0);
    moq_quic_sendq_init(&s->q);
    moq_list_init(&s->pending);
    if (moq_u64map_put(&c->streams, (uint64_t)sid, s) < 0) {
        moq_pool_free(s, sizeof(*s));
        return NULL;
    }
    return s;
}

void moq_quic_stream_free(struct moq_quic_conn *c, struct moq_quic_stream *s)
{
    moq_quic_sched_remove(&c->sched, &s->node);
    if (moq_list_linked(&s->pending)) moq_list_remove(&s->pending);
    moq_quic_sendq_clear(&s->q);
    moq_u64map_del(&c->streams, (uint64_t)s->id);
    moq_pool_free(s, sizeof(*s));
}

void moq_quic_stream_pending(struct moq_quic_conn *c, struct moq_quic_stream *s)
{
    if (!moq_list_linked(&s->pending)) moq_list_push_back(&c->pending, &s->pending);
    moq_quic_conn_mark_dirty(c);
}

bool moq_quic_stream_wants_send(const struct moq_quic_stream *s)
{
    if (s->tx_done || s->blocked || s->nc_closed) return false;
    return moq_quic_sendq_unsent(&s->q) > 0 || (s->fin_requested && !s->fin_sent);
}

void moq_quic_stream_resched(struct moq_quic_conn *c, struct moq_quic_stream *s)
{
    if (moq_quic_stream_wants_send(s)) {
        if (moq_quic_sched_push(&c->sched, &s->node) < 0)
            moq_warn("quic", "%s: scheduler out of memory", c->t.peer);
    } else {
        moq_quic_sched_remove(&c->sched, &s->node);
    }
}

/* Our sending side ended early (reset by us, or by ngtcp2 after STOP_SENDING): bytes never
 * handed out go now; in-flight ones stay until ngtcp2 forgets the stream, because ngtcp2
 * 0.12 may still retransmit them after a RESET_STREAM. */
void moq_quic_stream_tx_abort(struct moq_quic_conn *c, struct moq_quic_stream *s)
{
    s->tx_done = true;
    moq_quic_sched_remove(&c->sched, &s->node);
    moq_quic_sendq_drop_unsent(&s->q);
    if (s->want_writable) {
        s->want_writable = false;
        s->ev_writable = false;
    }
}

void moq_quic_stream_check_writable(struct moq_quic_conn *c, struct moq_quic_stream *s)
{
    if (s->want_writable && moq_quic_sendq_unsent(&s->q) <= c->ep->tc.stream_high_water / 2) {
        s->want_writable = false;
        s->ev_writable = true;
        moq_quic_stream_pending(c, s);
    }
}

/* A peer-opened unidirectional stream is finished for us (FIN delivered, reset received, or
 * stopped by the application). libngtcp2 0.12.1 never closes such streams (fixed upstream in
 * 0.14, commit 1d591bde), so stream_close would never come: we end the stream ourselves and
 * hand the stream-count credit back here, and detach from ngtcp2's copy of it. */
void moq_quic_stream_peer_uni_done(struct moq_quic_conn *c, struct moq_quic_stream *s)
{
    if (s->nc_closed) return;
    s->nc_closed = true;
    ngtcp2_conn_set_stream_user_data(c->nc, s->id, NULL);
    ngtcp2_conn_extend_max_streams_uni(c->nc, 1);
    moq_quic_stream_pending(c, s);
}

/* ---- teardown ---- */

void moq_quic_conn_free_streams(struct moq_quic_conn *c)
{
    size_t it = 0;
    uint64_t key;
    void *value;
    while (moq_u64map_next(&c->streams, &it, &key, &value)) {
        struct moq_quic_stream *s = value;
        if (c->nc) ngtcp2_conn_set_stream_user_data(c->nc, s->id, NULL);
        moq_quic_stream_free(c, s); /* deleting the entry just returned is allowed */
    }
}

/* ---- moq_transport ops ---- */

static bool conn_usable(struct moq_quic_conn *c)
{
    return c->state == CS_ESTABLISHED && !c->app_closing && !c->app_gone;
}

static int op_open_stream(moq_transport *t, bool bidi, int64_t *sid)
{
    struct moq_quic_conn *c = moq_quic_conn_of(t);
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
    struct moq_quic_stream *s = moq_quic_stream_new(c, id, true);
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
    struct moq_quic_conn *c = moq_quic_conn_of(t);
    if (!conn_usable(c)) return MOQ_ERR_CLOSED;
    struct moq_quic_stream *s = moq_quic_stream_get(c, sid);
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
    moq_quic_stream_resched(c, s);
    moq_quic_conn_mark_dirty(c);
    return MOQ_OK;
}

static size_t op_unsent(moq_transport *t, int64_t sid)
{
    struct moq_quic_stream *s = moq_quic_stream_get(moq_quic_conn_of(t), sid);
    return s ? (size_t)moq_quic_sendq_unsent(&s->q) : 0;
}

static size_t op_unacked(moq_transport *t, int64_t sid)
{
    struct moq_quic_stream *s = moq_quic_stream_get(moq_quic_conn_of(t), sid);
    if (!s || !s->has_tx || s->nc_closed || s->reset_by_us || s->ev_stopped || s->stopped_sent)
        return 0;
    return (size_t)(s->q.end - s->q.acked);
}

static void op_set_priority(moq_transport *t, int64_t sid, uint64_t priority)
{
    struct moq_quic_conn *c = moq_quic_conn_of(t);
    struct moq_quic_stream *s = moq_quic_stream_get(c, sid);
    if (s) moq_quic_sched_set_priority(&c->sched, &s->node, priority);
}

static int op_reset(moq_transport *t, int64_t sid, uint64_t code)
{
    struct moq_quic_conn *c = moq_quic_conn_of(t);
    if (c->state != CS_ESTABLISHED || c->app_gone) return MOQ_ERR_CLOSED;
    struct moq_quic_stream *s = moq_quic_stream_get(c, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (!s->has_tx) return MOQ_ERR_INVALID;
    if (s->tx_done || s->nc_closed) return MOQ_OK;
    int rv = ngtcp2_conn_shutdown_stream_write(c->nc, sid, code);
    if (rv != 0) return rv == NGTCP2_ERR_NOMEM ? MOQ_ERR_NOMEM : MOQ_ERR_INVALID;
    s->reset_by_us = true;
    moq_quic_stream_tx_abort(c, s);
    moq_quic_conn_mark_dirty(c);
    return MOQ_OK;
}

static int op_stop(moq_transport *t, int64_t sid, uint64_t code)
{
    struct moq_quic_conn *c = moq_quic_conn_of(t);
    if (c->state != CS_ESTABLISHED || c->app_gone) return MOQ_ERR_CLOSED;
    struct moq_quic_stream *s = moq_quic_stream_get(c, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (!moq_stream_is_bidi(sid) && s->has_tx) return MOQ_ERR_INVALID; /* our own uni */
    if (s->nc_closed) return MOQ_OK;
    int rv = ngtcp2_conn_shutdown_stream_read(c->nc, sid, code);
    if (rv != 0) return rv == NGTCP2_ERR_NOMEM ? MOQ_ERR_NOMEM : MOQ_ERR_INVALID;
    /* ngtcp2 hides whatever the peer still sends, so a stopped peer uni stream is over. */
    if (!s->has_tx) moq_quic_stream_peer_uni_done(c, s);
    moq_quic_conn_mark_dirty(c);
    return MOQ_OK;
}

static void op_set_stream_ctx(moq_transport *t, int64_t sid, void *sctx)
{
    struct moq_quic_stream *s = moq_quic_stream_get(moq_quic_conn_of(t), sid);
    if (s) s->sctx = sctx;
}

static size_t op_max_datagram(moq_transport *t)
{
    struct moq_quic_conn *c = moq_quic_conn_of(t);
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
    struct moq_quic_conn *c = moq_quic_conn_of(t);
    if (!conn_usable(c)) return MOQ_ERR_CLOSED;
    size_t max = op_max_datagram(t);
    if (max == 0) return MOQ_ERR_UNSUPPORTED;
    if (len > max) return MOQ_ERR_TOO_LARGE;
    if (c->dg_count >= MAX_DGRAM_QUEUE || c->dg_bytes + len > MAX_DGRAM_QUEUE_BYTES)
        return MOQ_OK; /* dropped, as datagrams may be */
    struct moq_quic_dgram *d = malloc(sizeof(*d) + len);
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
    struct moq_quic_conn *c = moq_quic_conn_of(t);
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
    struct moq_quic_conn *c = moq_quic_conn_of(t);
    memset(out, 0, sizeof(*out));
    out->bytes_sent = c->bytes_sent;
    out->bytes_recv = c->bytes_recv;
    out->memory_bytes = c->arena.bytes;
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

const struct moq_transport_ops moq_quic_conn_ops = {
    .open_stream = op_open_stream,
    .write = op_write,
    .unsent = op_unsent,
    .unacked = op_unacked,
    .set_priority = op_set_priority,
    .reset = op_reset,
    .stop = op_stop,
    .set_stream_ctx = op_set_stream_ctx,
    .send_datagram = op_send_datagram,
    .max_datagram = op_max_datagram,
    .close = op_close,
    .stats = op_stats,
};
