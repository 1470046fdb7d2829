/*
 * quic.h - raw QUIC (ngtcp2 0.12 + GnuTLS) endpoints that hand out moq_transport objects.
 *
 * A server listens on one UDP socket, accepts connections, completes the TLS handshake
 * (ALPN chosen by server preference) and then gives each connection to the accept callback
 * as a moq_transport (kind MOQ_TRANSPORT_QUIC, or MOQ_TRANSPORT_H3 when the ALPN is "h3").
 * A client dials one host:port from its own UDP socket and gives the connection to its
 * callback the same way.
 *
 * Ownership
 * - moq_quic_server_new() copies the config (strings included); moq_quic_server_free()
 *   closes every connection (delivering `closed` to attached applications first), frees
 *   them and the socket. Call it on the server's loop thread, never from inside one of the
 *   server's own callbacks.
 * - Each connection owns its moq_transport; the application's view of it ends with the
 *   `closed` event (see transport/transport.h). Connections may linger internally for a
 *   short closing/draining period after that; the server frees them.
 * - Credentials: the server calls creds_acquire once per accepted Initial and
 *   creds_release with the returned handle when that connection is freed, so rotating
 *   credentials never pull the rug from a handshake in flight.
 * - Client: moq_quic_connect() returns a handle that is valid until the callback runs (use
 *   it only to cancel). The callback runs exactly once, from the event loop, unless the
 *   attempt is cancelled first. On success it receives the transport; on failure NULL plus
 *   an error and a reason. The client's socket and timers are freed with its connection.
 *
 * Events (transport.h rules hold: never from inside a downcall)
 * - stream_opened, stream_data, stream_reset, datagram and the accept/connect callbacks run
 *   while received packets are processed; the rest (stream_stopped, stream_closed,
 *   stream_writable, streams_available, closed) from the endpoint's deferred dispatch
 *   (util/defer.h). Writes made in any event are sent in one flush per loop iteration.
 * - Exception: moq_quic_server_free() delivers `closed` from inside the call.
 * - `closed` carries the application code and reason of a CONNECTION_CLOSE (ours after
 *   close(), or the peer's); for other ends the code is 0 and the reason says what
 *   happened ("idle timeout", "ack timeout", "stateless reset", "peer closed: transport
 *   error 0x...").
 * - libngtcp2 0.12 does not report a received STOP_SENDING: it resets our sending side with
 *   the peer's code by itself. We deliver stream_stopped (with that code) when the stream
 *   closes; writes fail with MOQ_ERR_CLOSED as soon as the reset is noticed. On a bidi
 *   stream whose receiving side stays open that is later than the STOP_SENDING arrived.
 * - Peer-opened uni streams end (stream_closed, stream-count credit returned) when their FIN
 *   was delivered, their reset arrived, or the application stopped them.
 *
 * All functions must be called on the thread that runs the given loop.
 */
#ifndef MOQ_QUIC_QUIC_H
#define MOQ_QUIC_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <gnutls/gnutls.h>

#include "transport/transport.h"

#define MOQ_QUIC_MAX_ALPN 16

/* Defaults applied when a field of moq_quic_transport_config is 0. */
#define MOQ_QUIC_DEFAULT_MAX_STREAMS          1024               /* per direction, like upstream */
#define MOQ_QUIC_DEFAULT_RECEIVE_WINDOW       (8u * 1024 * 1024) /* connection-level bytes */
#define MOQ_QUIC_DEFAULT_STREAM_WINDOW        (2u * 1024 * 1024) /* per-stream bytes */
#define MOQ_QUIC_DEFAULT_IDLE_TIMEOUT_MS      30000              /* like upstream */
#define MOQ_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define MOQ_QUIC_DEFAULT_MAX_DATAGRAM_FRAME   65535
#define MOQ_QUIC_DEFAULT_MAX_CONNECTIONS      10000
#define MOQ_QUIC_DEFAULT_STREAM_HIGH_WATER    (1024u * 1024) /* stream_writable threshold */
#define MOQ_QUIC_DEFAULT_MAX_PEER_UNI_TOTAL   1000000ull     /* see max_peer_uni_streams_total */
#define MOQ_QUIC_DEFAULT_ACK_TIMEOUT_MS       5000
#define MOQ_QUIC_ACK_TIMEOUT_OFF              UINT64_MAX /* ack_timeout_ms: never */
#define MOQ_QUIC_DEFAULT_HALF_OPEN_PER_ADDR   100        /* see max_half_open_per_address */

enum moq_quic_cc {
    MOQ_QUIC_CC_CUBIC = 0, /* loss based (default) */
    MOQ_QUIC_CC_BBR = 1,   /* delay based (BBRv2 in ngtcp2 0.12) */
    MOQ_QUIC_CC_RENO = 2,
};

/* Per-connection transport settings, shared by both roles. 0 means "default". */
struct moq_quic_transport_config {
    /* Peer-initiated streams allowed at once, per direction (initial_max_streams_bidi/uni).
     * Credit is handed back as streams close, so the total over time is unbounded. */
    uint64_t max_concurrent_streams;
    /* Receive flow-control windows: connection (initial_max_data) and per stream
     * (initial_max_stream_data_*). ngtcp2 may auto-tune each up to 4x when the application
     * keeps up. Received bytes are handed to the application at once, never queued, so
     * these bound what a peer can make us buffer out of order. */
    uint64_t receive_window;
    uint64_t stream_receive_window;
    uint64_t idle_timeout_ms;
    uint64_t handshake_timeout_ms;
    /* Send a PING after this much quiet time (0 = never; upstream uses 5000). */
    uint64_t keep_alive_ms;
    /* Close a connection (reason "ack timeout") whose ack-eliciting packets - keep-alive
     * PINGs, data, retransmissions - have gone unacknowledged this long with nothing at all
     * heard from the peer meanwhile (util/liveness.h), so a vanished peer is noticed in
     * seconds rather than at the idle timeout, which our own keep-alives keep restarting.
     * Never less than 3 PTO. 0 = MOQ_QUIC_DEFAULT_ACK_TIMEOUT_MS; MOQ_QUIC_ACK_TIMEOUT_OFF
     * disables it. */
    uint64_t ack_timeout_ms;
    /* Largest DATAGRAM frame we accept (WebTransport/lite-05 datagrams); 0 = 65535. */
    uint64_t max_datagram_frame_size;
    /* unsent() level above which stream_writable is armed; it fires below half of it. */
    uint64_t stream_high_water;
    /* Peer-opened unidirectional streams one connection may open in its lifetime
     * (0 = MOQ_QUIC_DEFAULT_MAX_PEER_UNI_TOTAL). Only enforced with libngtcp2 < 0.14, which
     * keeps ~250 bytes for every finished peer uni stream until the connection ends; the
     * limit bounds that memory. Reaching it closes the connection (the peer may reconnect). */
    uint64_t max_peer_uni_streams_total;
    enum moq_quic_cc cc;
    bool disable_gso; /* send one datagram per system call */
};

struct moq_quic_server_config {
    /* "[::]:4443" (dual stack), "0.0.0.0:443", "127.0.0.1:0" (ephemeral port), "[::1]:0". */
    const char *listen;
    /* ALPN identifiers in server preference order, e.g. moq-lite-05, moq-lite-04,
     * moq-lite-03, h3. The first entry the client also offered wins; a client offering none
     * of them is refused (TLS no_application_protocol, CONNECTION_CLOSE 0x178). */
    const char *const *alpn;
    size_t alpn_count;
    /* Credentials for one new connection: set *out and return a non-NULL handle, which is
     * passed back to creds_release when the connection is freed. NULL refuses the
     * connection. */
    void *(*creds_acquire)(void *ctx, gnutls_certificate_credentials_t *out);
    void (*creds_release)(void *ctx, void *handle);
    void *creds_ctx;
    /* mTLS: called on every new connection's TLS session before its handshake (e.g.
     * moq_tls_server_verify_client); NULL for none. A verified client certificate sets the
     * transport's peer_certified before `accept`. */
    void (*tls_setup)(void *ctx, gnutls_session_t s);
    /* The handshake completed. Attach with moq_transport_attach() and return 0; a negative
     * return closes the connection without any event. Called from the event loop. */
    int (*accept)(void *ctx, moq_transport *t);
    void *accept_ctx;
    /* Connections at once, handshaking ones included (0 = MOQ_QUIC_DEFAULT_MAX_CONNECTIONS).
     * Beyond it an Initial is answered with CONNECTION_CLOSE (CONNECTION_REFUSED, reason
     * "server busy: connection limit reached"). */
    size_t max_connections;
    /* Handshakes in progress at once from one source address (an IPv4 address, an IPv6 /64);
     * beyond it CONNECTION_REFUSED ("too many handshakes from this address"). 0 = default. */
    size_t max_half_open_per_address;
    /* Address validation: new handshakes per second (token bucket, one second of burst)
     * above which an Initial without a valid Retry token is answered with a Retry, so a
     * spoofed source address gets no state and no amplification. 0 = never send Retry. */
    uint32_t retry_above_rate;
    /* The three budgets above and the reply budget, shared with the other listeners of the
     * port (quic/limits.h): then the three fields above are not read. NULL: the listener
     * has budgets of its own. */
    struct moq_quic_limits *limits;
    /* 32-byte secret for stateless reset tokens; NULL = random per server. Workers sharing a
     * port must share it. */
    const uint8_t *reset_secret;
    /* Worker threads sharing the port (quic/steer.h): with workers > 1 the socket joins the
     * address's SO_REUSEPORT group, worker 0 attaches the steering program, and every
     * connection ID this server chooses names `worker`. Bind worker 0 first, then the
     * others in order, all with the same reset_secret (it also signs Retry tokens).
     * workers 0 or 1: a socket of its own, as without workers. */
    unsigned worker, workers;
    /* Nonzero: bind this port instead of the one in `listen` (workers after the first
     * join the port worker 0 was given for ":0"). */
    uint16_t port;
    struct moq_quic_transport_config transport;
};

typedef struct moq_quic_server moq_quic_server;

/* Bind and start listening. Returns 0 and *out, or MOQ_ERR_CONFIG (bad address or ALPN
 * list), MOQ_ERR_IO (socket errors, e.g. address in use), MOQ_ERR_NOMEM. */
int moq_quic_server_new(struct ev_loop *loop, const struct moq_quic_server_config *cfg,
                        moq_quic_server **out);
/* The bound UDP port (useful with port 0). */
uint16_t moq_quic_server_port(const moq_quic_server *s);
/* Live connections (handshaking, established or closing). */
size_t moq_quic_server_connection_count(const moq_quic_server *s);

/* What the listener refused or challenged since it started. */
struct moq_quic_server_stats {
    uint64_t retries_sent;      /* address validation challenges */
    uint64_t retry_invalid;     /* Initials with a token that did not verify (dropped) */
    uint64_t refused_full;      /* max_connections reached */
    uint64_t refused_half_open; /* max_half_open_per_address reached */
    size_t half_open;           /* handshakes in progress now */
    size_t connections;         /* connections now: handshaking, established or closing */
    uint64_t memory_bytes;      /* what libngtcp2 holds for them now (quic/arena.h) */
};
void moq_quic_server_stats_get(const moq_quic_server *s, struct moq_quic_server_stats *out);
void moq_quic_server_free(moq_quic_server *s);

struct moq_quic_client_config {
    const char *host;        /* DNS name or IP literal; also the SNI name unless it is an IP */
    const char *port;        /* numeric port or service name */
    const char *const *alpn; /* offered, in client preference order */
    size_t alpn_count;
    /* Configure the client session: credentials, verification, pinning. Return 0, or a
     * negative value to abort (moq_quic_connect then returns MOQ_ERR_TLS). hostname is
     * cfg->host. SNI (for names) and the ALPN offer are already set. */
    int (*tls_setup)(void *tls_ctx, gnutls_session_t s, const char *hostname);
    void *tls_ctx;
    struct moq_quic_transport_config transport;
};

typedef struct moq_quic_client moq_quic_client;

/* The attempt finished. On success t is connected (is_client, protocol = ALPN) and err 0:
 * attach to it. On failure t is NULL, err is MOQ_ERR_TIMEOUT (handshake timeout),
 * MOQ_ERR_TLS (handshake/verification failure), MOQ_ERR_UNSUPPORTED (the server accepted
 * none of our ALPNs), MOQ_ERR_CLOSED (the server closed, refused or reset the attempt) or
 * MOQ_ERR_PROTO (a QUIC protocol error), and reason describes it. */
typedef void (*moq_quic_connect_cb)(void *ctx, moq_transport *t, int err, const char *reason);

/* Start dialing. Returns 0 and optionally *out (valid until the callback), or an error
 * without calling the callback: MOQ_ERR_INVALID (config), MOQ_ERR_NOT_FOUND (name does not
 * resolve), MOQ_ERR_IO, MOQ_ERR_TLS, MOQ_ERR_NOMEM. */
int moq_quic_connect(struct ev_loop *loop, const struct moq_quic_client_config *cfg,
                     moq_quic_connect_cb cb, void *ctx, moq_quic_client **out);
/* Abandon an attempt whose callback has not run yet; the callback will not run. */
void moq_quic_connect_cancel(moq_quic_client *c);

/* How many blocks libngtcp2 had not freed when its connections were deleted, and that we
 * freed for it (see arena.h); all connections of the process. */
size_t moq_quic_leftover_blocks(void);

#endif
