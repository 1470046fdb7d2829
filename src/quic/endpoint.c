/*
 * endpoint.c - the per-socket machinery shared by server and client: the deferred task
 * that services dirty connections once per loop iteration, the write watcher for packets
 * the socket refused, transport defaults and randomness.
 */
#include "quic/internal.h"
#include "util/err.h"
#include "util/log.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DISPATCH_ROUNDS 8

void moq_quic_random(void *buf, size_t len)
{
    if (gnutls_rnd(GNUTLS_RND_NONCE, buf, len) == 0) return;
    /* gnutls_rnd fails only when its generator is broken: ask the kernel directly. */
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            /* Predictable CIDs and tokens would be worse than stopping. */
            moq_error("quic", "no randomness available: %s", strerror(errno));
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

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
    if (!out->ack_timeout_ms) out->ack_timeout_ms = MOQ_QUIC_DEFAULT_ACK_TIMEOUT_MS;
    if (!out->max_peer_uni_streams_total)
        out->max_peer_uni_streams_total = MOQ_QUIC_DEFAULT_MAX_PEER_UNI_TOTAL;
}

/* Service every dirty connection, a few rounds; what is still dirty then waits for the next
 * loop iteration (which does not block). */
static void ep_dispatch(moq_defer *d)
{
    moq_quic_endpoint *ep = d->data;
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
            if (!moq_quic_conn_service(c) && last) return;
        }
    }
    if (!moq_list_empty(&ep->dirty)) moq_defer_schedule(d);
}

void moq_quic_endpoint_wake(moq_quic_endpoint *ep)
{
    if (ep->started) moq_defer_schedule(&ep->dispatch);
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
    if (moq_defer_init(&ep->dispatch, loop, ep_dispatch, ep) < 0) {
        moq_quic_udp_rx_free(&ep->rx);
        free(ep->txbuf);
        ep->txbuf = NULL;
        return MOQ_ERR_NOMEM;
    }
    ev_io_init(&ep->rio, ep_read_cb, fd, EV_READ);
    ev_io_init(&ep->wio, ep_write_cb, fd, EV_WRITE);
    ep->rio.data = ep->wio.data = ep;
    return MOQ_OK;
}

void moq_quic_endpoint_start(moq_quic_endpoint *ep)
{
    ev_io_start(ep->loop, &ep->rio);
    ep->started = true;
    if (!moq_list_empty(&ep->dirty)) moq_defer_schedule(&ep->dispatch);
}

void moq_quic_endpoint_close(moq_quic_endpoint *ep)
{
    if (ep->loop) {
        ev_io_stop(ep->loop, &ep->rio);
        ev_io_stop(ep->loop, &ep->wio);
    }
    moq_defer_fini(&ep->dispatch);
    moq_quic_udp_rx_free(&ep->rx);
    free(ep->txbuf);
    ep->txbuf = NULL;
    if (ep->fd >= 0) close(ep->fd);
    ep->fd = -1;
}
