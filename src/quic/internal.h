/*
 * internal.h - what the files of src/quic share (endpoint, conn, stream, send, tls, server,
 * client). Not a public API.
 *
 * An endpoint is one UDP socket on one loop with the per-iteration machinery: a deferred
 * task (util/defer.h) that delivers deferred events and flushes every "dirty" connection once
 * per loop iteration, and a write watcher for connections whose packets met a full socket buffer.
 * A server endpoint carries many connections (routed by CID); a client endpoint carries one.
 * Connections (struct moq_quic_conn) embed their moq_transport as the first member; the
 * endpoint's owner (server or client) frees them through conn.c, which frees their streams.
 */
#ifndef MOQ_QUIC_INTERNAL_H
#define MOQ_QUIC_INTERNAL_H

#include <ev.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "quic/arena.h"
#include "quic/quic.h"
#include "quic/sched.h"
#include "quic/sendq.h"
#include "quic/udp.h"
#include "util/defer.h"
#include "util/list.h"
#include "util/liveness.h"
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
    moq_defer dispatch; /* services `dirty` */
    bool started;
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
/* The same after a Retry: hd carried a valid Retry token for the client's first DCID odcid. */
struct moq_quic_conn *
moq_quic_conn_new_server_validated(moq_quic_endpoint *ep, const ngtcp2_pkt_hd *hd,
                                   const ngtcp2_cid *odcid, const moq_quic_addr *local,
                                   const moq_quic_addr *remote, const ngtcp2_cid *scid,
                                   const uint8_t *token, gnutls_certificate_credentials_t creds,
                                   void *creds_handle, const char *const *alpn, size_t alpn_count);
struct moq_quic_conn *moq_quic_conn_new_client(moq_quic_endpoint *ep, const moq_quic_addr *local,
                                               const moq_quic_addr *remote,
                                               const struct moq_quic_client_config *cfg);
/* Feed one received datagram. */
void moq_quic_conn_read(struct moq_quic_conn *c, const moq_quic_addr *local,
                        const moq_quic_addr *remote, const uint8_t *data, size_t len);
/* Schedule dispatch + flush in this loop iteration. */
void moq_quic_conn_mark_dirty(struct moq_quic_conn *c);
/* Run the endpoint's dispatch soon (once it started): connections were marked dirty. */
void moq_quic_endpoint_wake(moq_quic_endpoint *ep);
/* Server shutdown: deliver `closed` to an attached application (the one event delivered from
 * inside a call, documented on moq_quic_server_free), try to tell the peer, and free. */
void moq_quic_conn_shutdown(struct moq_quic_conn *c);
/* Free without events or packets (client cancel). */
void moq_quic_conn_free(struct moq_quic_conn *c);

/* ---- connection internals (conn.c, stream.c, send.c, tls.c, endpoint.c) ---- */

#define MOQ_QUIC_MAX_REASON 256

enum moq_quic_conn_state {
    CS_HANDSHAKE,   /* TLS handshake in progress; application not involved yet */
    CS_ESTABLISHED, /* handed to the application */
    CS_CLOSING,     /* we sent CONNECTION_CLOSE; answer stray packets with it */
    CS_DRAINING,    /* the peer closed; stay silent */
    CS_DEAD,        /* free at the next dispatch */
};

struct moq_quic_dgram {
    struct moq_quic_dgram *next;
    size_t len;
    unsigned tries;
    uint8_t data[];
};

/* One stream of a connection: its send queue, scheduling node and pending events. */
struct moq_quic_stream {
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

/* A connection; the moq_transport comes first so the two convert into each other. */
struct moq_quic_conn {
    moq_transport t; /* first: the application's handle */
    moq_quic_endpoint *ep;
    ngtcp2_conn *nc;
    moq_quic_arena arena; /* what ngtcp2 allocates for nc */
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    void *creds_handle;
    ngtcp2_cid odcid;  /* server: the client's first DCID (routed until we forget c) */
    uint64_t addr_key; /* server: the source address's key for the half-open count */
    bool half_open;    /* server: counted as a handshake in progress from addr_key */
    moq_quic_addr local, remote;
    enum moq_quic_conn_state state;
    moq_list link; /* server's connection list */
    moq_list dirty_link;
    moq_list blocked_link;
    ev_timer timer;
    ngtcp2_tstamp timer_expiry; /* what the armed timer is set for */
    moq_liveness live;          /* established: waiting for the peer's acknowledgements */
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
    char close_reason[MOQ_QUIC_MAX_REASON];
    char end_reason[MOQ_QUIC_MAX_REASON]; /* for the log line */
    int fail_err;                         /* client: error for a failed attempt */

    uint8_t *close_pkt;
    size_t close_pkt_len;
    unsigned close_resends;

    struct moq_quic_dgram *dg_head, *dg_tail;
    size_t dg_count, dg_bytes;

    uint8_t *blk; /* packets the socket refused (EAGAIN) */
    size_t blk_len, blk_gso;
    moq_quic_addr blk_local, blk_remote;

    char offered_alpn[200]; /* server: what the client offered, for the refusal log */
    /* server: every ALPN we speak, in preference order (the server's list, which outlives
     * the connection); each handshake offers GnuTLS the ones the client asked for */
    const char *const *server_alpn;
    size_t server_alpn_count;
};

static inline struct moq_quic_conn *moq_quic_conn_of(moq_transport *t)
{
    return (struct moq_quic_conn *)t;
}

extern const struct moq_transport_ops moq_quic_conn_ops;

/* conn.c */
void moq_quic_conn_on_liberr(struct moq_quic_conn *c, int liberr);
void moq_quic_conn_close_with(struct moq_quic_conn *c, const ngtcp2_connection_close_error *ccerr,
                              uint64_t code, const char *reason, int fail_err);
/* Deliver deferred events, flush, re-arm the timer. Returns false if c was freed. */
bool moq_quic_conn_service(struct moq_quic_conn *c);
void moq_quic_conn_free_streams(struct moq_quic_conn *c);
/* Copy len bytes of peer text into dst (cap bytes, NUL-terminated), non-printables as '?'. */
void moq_quic_copy_printable(char *dst, size_t cap, const uint8_t *src, size_t len);

/* send.c: one GSO batch of packets; raw datagrams (close packets). */
void moq_quic_conn_flush(struct moq_quic_conn *c);
void moq_quic_conn_send_raw(struct moq_quic_conn *c, const moq_quic_addr *local,
                            const moq_quic_addr *remote, const uint8_t *data, size_t len);

/* stream.c */
struct moq_quic_stream *moq_quic_stream_get(struct moq_quic_conn *c, int64_t sid);
struct moq_quic_stream *moq_quic_stream_new(struct moq_quic_conn *c, int64_t sid, bool has_tx);
void moq_quic_stream_free(struct moq_quic_conn *c, struct moq_quic_stream *s);
void moq_quic_stream_pending(struct moq_quic_conn *c, struct moq_quic_stream *s);
bool moq_quic_stream_wants_send(const struct moq_quic_stream *s);
void moq_quic_stream_resched(struct moq_quic_conn *c, struct moq_quic_stream *s);
void moq_quic_stream_tx_abort(struct moq_quic_conn *c, struct moq_quic_stream *s);
void moq_quic_stream_check_writable(struct moq_quic_conn *c, struct moq_quic_stream *s);
void moq_quic_stream_peer_uni_done(struct moq_quic_conn *c, struct moq_quic_stream *s);

/* tls.c */
int moq_quic_tls_server_init(struct moq_quic_conn *c, gnutls_certificate_credentials_t creds,
                             const char *const *alpn, size_t alpn_count);
int moq_quic_tls_client_init(struct moq_quic_conn *c, const struct moq_quic_client_config *cfg);
/* Fill t.protocol and t.kind from the negotiated ALPN. */
void moq_quic_tls_set_protocol(struct moq_quic_conn *c);

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
