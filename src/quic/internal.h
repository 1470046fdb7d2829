/*
 * internal.h - what conn.c, server.c and client.c share inside src/quic. Not a public API.
 *
 * An endpoint is one UDP socket on one loop with the per-iteration machinery: a prepare
 * watcher that delivers deferred events and flushes every "dirty" connection once per loop
 * iteration, and a write watcher for connections whose packets met a full socket buffer.
 * A server endpoint carries many connections (routed by CID); a client endpoint carries one.
 * Connections (struct moq_quic_conn) embed their moq_transport as the first member.
 */
#ifndef MOQ_QUIC_INTERNAL_H
#define MOQ_QUIC_INTERNAL_H

#include <ev.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "quic/quic.h"
#include "quic/sched.h"
#include "quic/sendq.h"
#include "quic/udp.h"
#include "util/list.h"
#include "util/map.h"

#define MOQ_QUIC_SCIDLEN 16
/* Our advertised max_udp_payload_size; receive slots are larger. */
#define MOQ_QUIC_MAX_RX_UDP_PAYLOAD 1500
#define MOQ_QUIC_TXBUF_SIZE         (MOQ_QUIC_UDP_MAX_BATCH + 2048)

struct moq_quic_conn;

typedef struct moq_quic_endpoint {
    struct ev_loop *loop;
    int fd;
    moq_quic_addr bound;
    bool gso;
    bool is_server;
    ev_io rio;
    ev_io wio;
    ev_prepare prep;
    ev_idle idle;
    moq_list dirty;   /* connections to dispatch + flush this iteration */
    moq_list blocked; /* connections holding packets the socket refused */
    moq_quic_udp_rx rx;
    uint8_t *txbuf;
    struct moq_quic_transport_config tc; /* defaults resolved */
    moq_quic_server *server;             /* server role */
    moq_quic_client *client;             /* client role */
    void (*on_readable)(struct moq_quic_endpoint *ep);
} moq_quic_endpoint;

/* Fill in the defaults of a transport config. */
void moq_quic_transport_config_resolve(struct moq_quic_transport_config *out,
                                       const struct moq_quic_transport_config *in);

int moq_quic_endpoint_init(moq_quic_endpoint *ep, struct ev_loop *loop, int fd, size_t rx_slots,
                           const struct moq_quic_transport_config *tc);
void moq_quic_endpoint_start(moq_quic_endpoint *ep);
/* Stops watchers and frees buffers; closes the socket. Connections must be gone. */
void moq_quic_endpoint_close(moq_quic_endpoint *ep);

/* ---- connections ---- */

struct moq_quic_conn *
moq_quic_conn_new_server(moq_quic_endpoint *ep, const ngtcp2_pkt_hd *hd, const moq_quic_addr *local,
                         const moq_quic_addr *remote, const ngtcp2_cid *scid, const uint8_t *token,
                         gnutls_certificate_credentials_t creds, void *creds_handle,
                         const char *const *alpn, size_t alpn_count);
struct moq_quic_conn *moq_quic_conn_new_client(moq_quic_endpoint *ep, const moq_quic_addr *local,
                                               const moq_quic_addr *remote,
                                               const struct moq_quic_client_config *cfg);
/* Feed one received datagram. */
void moq_quic_conn_read(struct moq_quic_conn *c, const moq_quic_addr *local,
                        const moq_quic_addr *remote, const uint8_t *data, size_t len);
/* Schedule dispatch + flush on the endpoint's next prepare. */
void moq_quic_conn_mark_dirty(struct moq_quic_conn *c);
/* Server shutdown: deliver `closed` to an attached application (the one event delivered from
 * inside a call, documented on moq_quic_server_free), try to tell the peer, and free. */
void moq_quic_conn_shutdown(struct moq_quic_conn *c);
/* Free without events or packets (client cancel). */
void moq_quic_conn_free(struct moq_quic_conn *c);

moq_list *moq_quic_conn_link(struct moq_quic_conn *c);
struct moq_quic_conn *moq_quic_conn_from_link(moq_list *l);
void *moq_quic_conn_creds_handle(struct moq_quic_conn *c);
ngtcp2_conn *moq_quic_conn_ngtcp2(struct moq_quic_conn *c);
const ngtcp2_cid *moq_quic_conn_odcid(struct moq_quic_conn *c);

/* ---- role hooks called by conn.c ---- */

/* Server: a fresh unique CID (registered for c) and its stateless reset token. */
int moq_quic_server_new_cid(moq_quic_server *s, struct moq_quic_conn *c, ngtcp2_cid *cid,
                            uint8_t *token);
void moq_quic_server_retire_cid(moq_quic_server *s, struct moq_quic_conn *c, const ngtcp2_cid *cid);
/* The handshake completed: returns the accept callback's result. */
int moq_quic_server_established(moq_quic_server *s, struct moq_quic_conn *c);
/* c is about to be freed: unregister its CIDs, release its credentials. */
void moq_quic_server_forget(moq_quic_server *s, struct moq_quic_conn *c);

void moq_quic_client_established(moq_quic_client *cl, struct moq_quic_conn *c);
void moq_quic_client_failed(moq_quic_client *cl, int err, const char *reason);
/* The client's connection (NULL before it exists). */
struct moq_quic_conn *moq_quic_client_conn(moq_quic_client *cl);
/* Its connection is gone: free the client and its endpoint. */
void moq_quic_client_destroy(moq_quic_client *cl);

/* gnutls priority string for QUIC (TLS 1.3 only). */
extern const char moq_quic_tls_priority[];

void moq_quic_random(void *buf, size_t len);

#endif
