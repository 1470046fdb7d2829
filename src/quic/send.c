/*
 * send.c - writing packets: datagrams first, then stream data in scheduler order, several
 * streams per packet, up to send_quantum of equal-size packets sent with one GSO sendmsg.
 */
#include "quic/internal.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

#define MAX_VECS 16

void moq_quic_conn_send_raw(struct moq_quic_conn *c, const moq_quic_addr *local,
                            const moq_quic_addr *remote, const uint8_t *data, size_t len)
{
    moq_quic_udp_send(c->ep->fd, &c->ep->gso, c->ep->is_server ? local : NULL,
                      c->ep->is_server ? remote : NULL, data, len, len);
}

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

static struct moq_quic_stream *next_stream(struct moq_quic_conn *c)
{
    moq_quic_sched_node *n = moq_quic_sched_peek(&c->sched);
    return n ? moq_container_of(n, struct moq_quic_stream, node) : NULL;
}

/* Account for what ngtcp2 took from stream s in the last write. */
static void stream_wrote(struct moq_quic_conn *c, struct moq_quic_stream *s, ngtcp2_ssize ndatalen,
                         bool fin, uint64_t offered)
{
    moq_quic_sendq_advance(&s->q, (uint64_t)ndatalen);
    c->bytes_sent += (uint64_t)ndatalen;
    if (fin && (uint64_t)ndatalen == offered) s->fin_sent = true;
    moq_quic_stream_check_writable(c, s);
    if (moq_quic_stream_wants_send(s))
        moq_quic_sched_requeue(&c->sched, &s->node);
    else
        moq_quic_sched_remove(&c->sched, &s->node);
}

/* Try to put the oldest queued datagram into the packet being built. */
static ngtcp2_ssize write_datagram(struct moq_quic_conn *c, ngtcp2_path *path, ngtcp2_pkt_info *pi,
                                   uint8_t *dest, size_t destlen, ngtcp2_tstamp ts)
{
    struct moq_quic_dgram *d = c->dg_head;
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
    moq_quic_conn_close_with(c, &ccerr, c->close_code, c->close_reason, MOQ_ERR_CLOSED);
}

/* Write one GSO batch: up to send_quantum worth of equal-size packets. */
void moq_quic_conn_flush(struct moq_quic_conn *c)
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
            struct moq_quic_stream *s = NULL;
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
                moq_quic_stream_tx_abort(c, s);
                continue;
            }
        }
        if (nwrite < 0) {
            moq_quic_conn_on_liberr(c, (int)nwrite);
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
        } else if ((size_t)nwrite > gso || !moq_quic_addr_equal(&remote, &first_remote) ||
                   !moq_quic_addr_equal(&local, &first_local)) {
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
