/*
 * transport.h - the one stream API every moq session runs on.
 *
 * Raw QUIC (src/quic), WebTransport over HTTP/3 (src/h3) and qmux over WebSocket
 * (src/qmux) each implement moq_transport_ops; src/moq is written once against it and never
 * knows which transport it runs on. A transport may itself run on another transport
 * (WebTransport runs on a QUIC connection whose ALPN is h3).
 *
 * Ownership and lifetime
 * - The implementation allocates and frees the moq_transport. The application attaches
 *   itself with moq_transport_attach() and from then on receives the events below.
 * - Stream ids are the implementation's; the application may attach one context pointer
 *   per stream (set_stream_ctx) and gets it back in every stream event.
 * - write() takes a reference on every chunk it is given and drops it once the bytes are
 *   acknowledged (or the stream is reset/closed), so callers may unref their own reference
 *   right after the call. Bytes are never copied by write().
 * - stream_closed is the last event for a stream: both directions are finished (FIN'd,
 *   reset or stopped) and the implementation forgets the stream after the callback. The
 *   application frees its stream context there, not earlier.
 * - closed is the last event for the transport. It replaces stream_closed for streams still
 *   open at that point: the application frees every stream context in it. The transport is
 *   freed after the callback returns; the application must not touch it again.
 *
 * Re-entrancy: no event is ever delivered from inside a downcall. Downcalls may be made
 * from inside an event handler (including close()); their effects surface as later events.
 *
 * Error codes passed to reset/stop/close and received in events are application codes of
 * the moq protocol (src/moq/errors.h); a transport maps them to its own space if it must
 * (WebTransport's HTTP/3 code range), so applications always see moq codes.
 */
#ifndef MOQ_TRANSPORT_TRANSPORT_H
#define MOQ_TRANSPORT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/chunk.h"

typedef struct moq_transport moq_transport;

enum moq_transport_kind {
    MOQ_TRANSPORT_QUIC = 1,         /* raw QUIC, protocol chosen by ALPN */
    MOQ_TRANSPORT_WEBTRANSPORT = 2, /* WebTransport over HTTP/3 */
    MOQ_TRANSPORT_WEBSOCKET = 3,    /* qmux over WebSocket */
    MOQ_TRANSPORT_H3 = 4,           /* a QUIC connection that negotiated ALPN h3 (for src/h3) */
};

struct moq_transport_stats {
    uint64_t rtt_us; /* smoothed RTT, 0 if unknown */
    uint64_t min_rtt_us;
    uint64_t bitrate_bps; /* estimated delivery rate (bits/s), 0 if unknown */
    uint64_t cwnd;        /* congestion window, bytes (0 if not applicable) */
    uint64_t bytes_sent;  /* application stream bytes handed to the network */
    uint64_t bytes_recv;  /* application stream bytes received */
    /* Bytes the protocol stack holds for the connection now (QUIC: every block libngtcp2
     * allocated for it); 0 when the transport does not count them. */
    uint64_t memory_bytes;
};

struct moq_transport_events {
    /* The peer opened a stream. */
    void (*stream_opened)(void *app, moq_transport *t, int64_t sid, bool bidi);
    /* Bytes arrived on a stream, in order. data is valid only during the call. fin: the
     * peer finished sending (len may be 0). Flow-control credit is returned automatically
     * after the call. */
    void (*stream_data)(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                        size_t len, bool fin);
    /* The peer reset its sending side with a moq error code. */
    void (*stream_reset)(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code);
    /* The peer asked us to stop sending (STOP_SENDING). The implementation has already reset
     * our sending side with the same code. */
    void (*stream_stopped)(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code);
    /* Both directions are done; last event for the stream. */
    void (*stream_closed)(void *app, moq_transport *t, int64_t sid, void *sctx);
    /* The stream's unsent bytes dropped below the low-water mark after a write was refused
     * or queued high (see moq_transport_ops.unsent). Optional. */
    void (*stream_writable)(void *app, moq_transport *t, int64_t sid, void *sctx);
    /* open_stream() returned MOQ_ERR_AGAIN earlier and the peer has now granted credit. */
    void (*streams_available)(void *app, moq_transport *t, bool bidi);
    /* An unreliable datagram arrived (WebTransport: the session prefix is already removed). */
    void (*datagram)(void *app, moq_transport *t, const uint8_t *data, size_t len);
    /* The transport closed (peer, local close(), idle timeout or error). code/reason are
     * the application close code and reason when known. Last event. */
    void (*closed)(void *app, moq_transport *t, uint64_t code, const char *reason);
};

struct moq_transport_ops {
    /* Open a stream. Returns 0 and the id, MOQ_ERR_AGAIN when the peer's stream-count
     * credit is exhausted (streams_available follows), or another error. */
    int (*open_stream)(moq_transport *t, bool bidi, int64_t *sid);
    /* Queue slices of refcounted chunks on a stream, optionally finishing it (n may be 0
     * with fin). Never copies. MOQ_ERR_CLOSED when the sending side is gone. */
    int (*write)(moq_transport *t, int64_t sid, const moq_slice *v, size_t n, bool fin);
    /* Bytes queued on the stream that the network has not taken yet. */
    size_t (*unsent)(moq_transport *t, int64_t sid);
    /* Scheduling weight: among streams with data, higher values are sent first. */
    void (*set_priority)(moq_transport *t, int64_t sid, uint64_t priority);
    /* Abort our sending side (RESET_STREAM) / ask the peer to stop (STOP_SENDING). */
    int (*reset)(moq_transport *t, int64_t sid, uint64_t code);
    int (*stop)(moq_transport *t, int64_t sid, uint64_t code);
    void (*set_stream_ctx)(moq_transport *t, int64_t sid, void *sctx);
    /* Send a datagram; MOQ_ERR_UNSUPPORTED if the peer accepts none, MOQ_ERR_TOO_LARGE if
     * over max_datagram. Datagrams may be dropped silently. */
    int (*send_datagram)(moq_transport *t, const uint8_t *data, size_t len);
    /* Largest datagram payload accepted now (0 = datagrams unavailable). */
    size_t (*max_datagram)(moq_transport *t);
    /* Close with an application code and reason; `closed` follows from the event loop. */
    void (*close)(moq_transport *t, uint64_t code, const char *reason);
    void (*stats)(moq_transport *t, struct moq_transport_stats *out);
    /* Bytes written on the stream that the peer has not acknowledged yet; 0 once all are, or
     * when our sending side is gone (reset, stopped, closed). Optional: a transport without
     * acknowledgements leaves it NULL. */
    size_t (*unacked)(moq_transport *t, int64_t sid);
};

struct moq_transport {
    const struct moq_transport_ops *ops;
    const struct moq_transport_events *ev; /* set by moq_transport_attach */
    void *app;
    enum moq_transport_kind kind;
    /* Negotiated application protocol, e.g. "moq-lite-05" (ALPN, wt-protocol or the
     * WebSocket subprotocol suffix); "" when none was negotiated. */
    char protocol[32];
    /* Request target "/path?query" on transports that carry a URL (WebTransport, WebSocket);
     * NULL on raw QUIC. Owned by the implementation. */
    char *path;
    /* Host (":authority" / Host header) when known, else NULL. Owned by the implementation. */
    char *authority;
    /* Peer address as text, "[addr]:port" or "addr:port". */
    char peer[64];
    /* True when we dialed (client side). */
    bool is_client;
    /* The peer presented a client certificate that the TLS handshake verified against the
     * listener's client roots (mTLS), valid until peer_cert_expires (wall seconds). */
    bool peer_certified;
    int64_t peer_cert_expires;
};

static inline void moq_transport_attach(moq_transport *t, const struct moq_transport_events *ev,
                                        void *app)
{
    t->ev = ev;
    t->app = app;
}

static inline int moq_transport_open(moq_transport *t, bool bidi, int64_t *sid)
{
    return t->ops->open_stream(t, bidi, sid);
}

static inline int moq_transport_write(moq_transport *t, int64_t sid, const moq_slice *v, size_t n,
                                      bool fin)
{
    return t->ops->write(t, sid, v, n, fin);
}

static inline void moq_transport_close(moq_transport *t, uint64_t code, const char *reason)
{
    t->ops->close(t, code, reason);
}

/* Copy bytes into a fresh chunk and write it (for small control messages). */
int moq_transport_write_bytes(moq_transport *t, int64_t sid, const void *data, size_t len,
                              bool fin);

/* Stream-id helpers for QUIC-numbered transports (raw QUIC, WebTransport, qmux). */
static inline bool moq_stream_is_bidi(int64_t sid)
{
    return (sid & 0x2) == 0;
}

static inline bool moq_stream_is_server_initiated(int64_t sid)
{
    return (sid & 0x1) != 0;
}

#endif
