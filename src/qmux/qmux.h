/*
 * qmux.h - QUIC-style streams over WebSocket messages (QMux qmux-00/01/02), sans-I/O.
 *
 * A moq_qmux session implements the one stream API (transport/transport.h) on top of an
 * abstract record channel: the embedder (the WebSocket glue in src/http) feeds it every binary
 * message it receives and gives it a way to send messages; timers are deadlines the embedder
 * arms. Nothing here touches a socket, the event loop or the clock.
 *
 * Ownership
 * - The embedder creates the session (moq_qmux_new) and frees it (moq_qmux_free). The
 *   application sees only the moq_transport from moq_qmux_transport(), attaches itself to it,
 *   and must stop touching it once the `closed` event was delivered (transport.h rules).
 * - write() stores references to the caller's chunks (no copy). Records are handed to the
 *   channel as slices: a small header chunk owned by the session plus the payload slices;
 *   send_record must take its own references for anything it keeps after returning.
 * - Received bytes are delivered straight from the record (stream_data points into it) and
 *   are never buffered, so receive windows cost no memory here. Flow-control credit is
 *   returned as soon as the stream_data callback returns.
 *
 * Driving a session (what the embedder must do)
 * 1. moq_qmux_new(&init, now), hand moq_qmux_transport(q) to the application (which attaches),
 *    then call moq_qmux_process(q, now): that sends QX_TRANSPORT_PARAMETERS, the first frame.
 * 2. For every binary message: moq_qmux_on_record(q, data, len, now). For a text message:
 *    moq_qmux_on_text(q, now). When the socket can take more after send_record was held back
 *    (queued_bytes fell): moq_qmux_on_writable(q, now). When the WebSocket is gone (peer Close
 *    frame, EOF, error): moq_qmux_on_channel_closed(q, code, reason).
 * 3. After every call into the session, (re)arm one timer at moq_qmux_next_deadline(q)
 *    (UINT64_MAX = none) and call moq_qmux_tick(q, now) when it fires.
 * 4. When io->wake is called, schedule moq_qmux_process(q, now) soon from the event loop (a
 *    util/defer.h task; never from inside wake). Application downcalls made outside
 *    any session call (for example a relay writing to a subscriber from another session's
 *    event) only queue work and call wake; their records and events come out of process().
 *    Events caused by downcalls are always delivered later from process() or from the next
 *    session call, never from inside the downcall.
 * 5. Every call above returns 0 while the session lives and MOQ_ERR_CLOSED once it is
 *    finished: the `closed` event was delivered and io->close was called if the channel was
 *    still open. Then free it with moq_qmux_free() (the channel may still be flushing its
 *    queued records and the Close frame; the session no longer needs it).
 *
 *    Never call a moq_qmux_* function of a session from inside that session's io callbacks
 *    or event handlers (the application uses only transport ops there); in particular free it
 *    only after a call returned MOQ_ERR_CLOSED, not from the `closed` handler.
 * 6. The WebSocket layer keeps its own Ping/Pong keep-alive: on qmux-00 there is no QX_PING
 *    and no QMux idle timeout, so it is the only dead-peer detection there. Inbound messages
 *    larger than max_record_size are refused here (CONNECTION_CLOSE), so the WebSocket layer
 *    only needs a sane cap of its own (e.g. 64 KiB).
 *
 * Event semantics specific to this transport
 * - stream_closed for a sending direction comes once its FIN was handed to the channel (qmux
 *   has no acknowledgements); write() references are dropped as bytes are handed over.
 * - stream_stopped is not delivered when the FIN already went out (nothing left to reset).
 * - stream_reset is not delivered after the application called stop() on that stream.
 * - closed(code, reason): the peer's APPLICATION_CLOSE or CONNECTION_CLOSE code and reason;
 *   our own close() code and reason; MOQ_QMUX_CLOSE_PROTOCOL and a reason for a violation we
 *   detected (also sent as CONNECTION_CLOSE); 0 with "idle timeout", "ack timeout",
 *   "handshake timeout", "websocket closed: <code> <reason>", "websocket send failed" or
 *   "transport freed".
 *
 * Time is in microseconds of any monotonic clock (moq_now_us()).
 */
#ifndef MOQ_QMUX_QMUX_H
#define MOQ_QMUX_QMUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qmux/qmux_frame.h"
#include "transport/transport.h"
#include "util/chunk.h"

/* ---- subprotocol negotiation (Sec-WebSocket-Protocol) ------------------------------- */

struct moq_qmux_selection {
    enum moq_qmux_wire wire;
    char protocol[32];    /* application protocol, e.g. "moq-lite-05" */
    char subprotocol[48]; /* the exact value to echo, e.g. "qmux-02.moq-lite-05" */
};

/* Our default wire preference: qmux-02, then qmux-01, then qmux-00 (see qmux_subprotocol.c
 * for why qmux-02 leads, unlike upstream moq-relay which stops at qmux-01). */
extern const enum moq_qmux_wire moq_qmux_default_wires[3];

/* Whether an application protocol may ride a framing: false for the IETF drafts pinned to
 * qmux-01 ("moqt-18", "moqt-19", "moqt-20") paired with another one; true otherwise. The
 * offer and the selection below skip the pairs it refuses. */
bool moq_qmux_wire_allowed(const char *protocol, enum moq_qmux_wire w);

/* Choose a subprotocol in SERVER preference order: for each of our application protocols
 * (versions[0] first), each wire format of `wires` (NULL = moq_qmux_default_wires), the first
 * "qmux-0N.<version>" the client offered wins. `offered` is the raw header value (comma
 * separated; the embedder joins repeated headers with ','); whitespace around entries is
 * ignored. Bare "qmux-0N", "webtransport", unknown values and an empty or absent header match
 * nothing. Returns 0 with *out filled, or MOQ_ERR_NOT_FOUND (answer HTTP 400). */
int moq_qmux_select_subprotocol(const char *offered, size_t offered_len,
                                const char *const *versions, size_t n_versions,
                                const enum moq_qmux_wire *wires, size_t n_wires,
                                struct moq_qmux_selection *out);

/* Split a selected value "qmux-0N.<app>" into wire format and application protocol (the
 * client side reads the server's answer with it). Returns 0, or MOQ_ERR_NOT_FOUND when the
 * value is not a prefixed qmux subprotocol (or the app name is empty or too long). */
int moq_qmux_parse_subprotocol(const char *value, size_t len, struct moq_qmux_selection *out);

/* The client offer for our versions: "qmux-02.v1, qmux-01.v1, qmux-00.v1, qmux-02.v2, ...".
 * Returns the length written (NUL-terminated), or MOQ_ERR_TOO_LARGE. */
int moq_qmux_offer_subprotocols(char *out, size_t cap, const char *const *versions,
                                size_t n_versions, const enum moq_qmux_wire *wires, size_t n_wires);

/* ---- session ------------------------------------------------------------------------- */

/* Limits and the transport parameters we advertise. */
struct moq_qmux_config {
    uint64_t max_idle_timeout_ms;         /* advertised; idle = min of both non-zero values */
    uint64_t max_data;                    /* connection receive window */
    uint64_t max_stream_data_bidi_local;  /* receive window on bidi streams we open */
    uint64_t max_stream_data_bidi_remote; /* receive window on bidi streams the peer opens */
    uint64_t max_stream_data_uni;         /* receive window on uni streams the peer opens */
    uint64_t max_streams_bidi;            /* concurrent peer-opened bidi streams */
    uint64_t max_streams_uni;             /* concurrent peer-opened uni streams */
    uint64_t max_record_size;             /* largest record we accept (>= 16382) */
    uint64_t max_datagram_frame_size;     /* 0 = no datagrams (qmux-01/02 only) */
    uint64_t handshake_timeout_ms;        /* peer params must arrive within this */
    uint64_t ping_interval_ms;            /* QX_PING cadence for RTT and keep-alive; 0 = off */
    /* Close the session ("ack timeout", WebSocket code 1001) when a QX_PING request has gone
     * unanswered this long with nothing at all received meanwhile (util/liveness.h): a peer
     * gone without a FIN is noticed in seconds. Armed once the peer has answered a ping
     * (qmux-01/02 only); 0 = off. */
    uint64_t ack_timeout_ms;
    size_t send_high_water;    /* produce no record while the channel queues this much */
    size_t stream_low_water;   /* stream_writable fires when unsent drops to this */
    size_t max_send_queue;     /* unsent bytes (+24 per slice) across streams; write() then
                                  answers MOQ_ERR_AGAIN until it drains */
    size_t max_record_out;     /* cap on the records we send (peer's max_record_size too) */
    size_t max_datagram_queue; /* datagrams waiting for the channel; more are dropped */
};

/* Defaults (chosen to match the @moq/qmux client and the Rust qmux crate where they have a
 * value, and sized so a relay can fan out without waiting on round trips):
 * idle 30000 ms, max_data 4 MiB, stream windows 1 MiB each, 256 bidi / 256 uni peer streams,
 * max_record_size 16382, max_datagram_frame_size 16382, handshake 10000 ms, ping 1000 ms (RTT
 * for moq-lite PROBE, like moq-relay), ack timeout 5000 ms, send_high_water 64 KiB,
 * stream_low_water 64 KiB, max_send_queue 16 MiB, max_record_out 16382, max_datagram_queue 64. */
void moq_qmux_config_default(struct moq_qmux_config *c);

/* The record channel the embedder provides. */
struct moq_qmux_io {
    /* Send one record (one WebSocket binary message): the concatenation of v[0..n). Take a
     * reference on every chunk kept after returning. Return 0, or a negative error when the
     * channel is broken (the session then ends). Must not call into the session. */
    int (*send_record)(void *io, const moq_slice *v, size_t n);
    /* Bytes accepted by send_record that the socket has not taken yet. */
    size_t (*queued_bytes)(void *io);
    /* Finish the channel: send a WebSocket Close with this code and reason after every
     * record already queued, then close. Called at most once; no io call follows. */
    void (*close)(void *io, uint16_t ws_code, const char *reason);
    /* The session has work queued by a downcall: call moq_qmux_process() soon, from the
     * loop. Optional: without it the embedder must call process() after each loop batch. */
    void (*wake)(void *io);
};

struct moq_qmux_init {
    enum moq_qmux_wire wire;
    const char *protocol;  /* negotiated application protocol, e.g. "moq-lite-05" (copied) */
    const char *path;      /* "/path?query" of the upgrade request, or NULL (copied) */
    const char *authority; /* Host header, or NULL (copied) */
    const char *peer;      /* peer address text, or NULL (copied) */
    bool is_client;        /* we dialed: client stream-id parity */
    const struct moq_qmux_config *config; /* NULL = defaults (copied) */
    const struct moq_qmux_io *io;         /* copied */
    void *io_ctx;
};

typedef struct moq_qmux moq_qmux;

/* NULL on OOM or invalid init (config->max_record_size < 16382, NULL io callbacks). */
moq_qmux *moq_qmux_new(const struct moq_qmux_init *init, uint64_t now_us);

/* The transport the application uses (kind MOQ_TRANSPORT_WEBSOCKET). */
moq_transport *moq_qmux_transport(moq_qmux *q);

/* Release everything. If the application has not had its `closed` event yet it gets it now
 * (code 0, "transport freed"), so stream contexts are never leaked. */
void moq_qmux_free(moq_qmux *q);

/* One binary message arrived. data is only read during the call. */
int moq_qmux_on_record(moq_qmux *q, const uint8_t *data, size_t len, uint64_t now_us);

/* A text message arrived: a protocol error (CONNECTION_CLOSE 1003). */
int moq_qmux_on_text(moq_qmux *q, uint64_t now_us);

/* The channel drained (queued_bytes fell): produce more records. */
int moq_qmux_on_writable(moq_qmux *q, uint64_t now_us);

/* The WebSocket is closed (Close frame received, EOF or error). The session calls no io
 * function afterwards; the application gets `closed` (with the peer's QMux close code and
 * reason if one arrived first, else code 0 and this reason). */
int moq_qmux_on_channel_closed(moq_qmux *q, uint16_t ws_code, const char *reason);

/* Earliest time tick() has work (handshake/idle timeout, ping), or UINT64_MAX. */
uint64_t moq_qmux_next_deadline(const moq_qmux *q);

/* Run the timers due at now. */
int moq_qmux_tick(moq_qmux *q, uint64_t now_us);

/* Deliver deferred events and send what is queued (see "Driving a session"). */
int moq_qmux_process(moq_qmux *q, uint64_t now_us);

/* True once the `closed` event was delivered. */
bool moq_qmux_is_finished(const moq_qmux *q);

/* The close codes this module puts on the wire or in `closed` for transport errors. */
#define MOQ_QMUX_CLOSE_PROTOCOL    1002 /* malformed frame, flow control, stream limit, ... */
#define MOQ_QMUX_CLOSE_TEXT        1003 /* a text message */
#define MOQ_QMUX_WS_NORMAL         1000 /* WebSocket Close code after a QMux close */
#define MOQ_QMUX_WS_GOING_AWAY     1001 /* idle or handshake timeout */
#define MOQ_QMUX_WS_PROTOCOL_ERROR 1002

#endif
