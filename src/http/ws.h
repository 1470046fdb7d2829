/*
 * ws.h - WebSocket (RFC 6455) on the HTTP server: upgrade decision, message channel, and the
 * sans-I/O handshake helpers (accept key, subprotocol offers and selection).
 *
 * Upgrade: any request with `Upgrade: websocket` goes to the server's upgrade hook (set with
 * moq_http_server_set_ws), whatever its path, over HTTP and HTTPS alike. A malformed
 * handshake is answered 400 (426 with Sec-WebSocket-Version: 13 for another version)
 * before the hook is asked. The hook sees the request and the offered subprotocols in the
 * client's order, and either accepts (choosing one offer or none, and naming its events
 * and context) or refuses with an HTTP status. Framing is done by wslay's event API.
 *
 * Lifetime of a moq_ws
 * - The server creates it when the hook accepts, queues the 101 response, and delivers
 *   `opened` right away. From then on the application receives `message` and `writable`
 *   events, and exactly one `closed` event, which is the last: the moq_ws is freed when
 *   `closed` returns, so the application drops its pointer there.
 * - Events are delivered from the event loop only, never from inside a moq_ws_* call.
 *   moq_ws_* calls are allowed inside event handlers (close included).
 * - After moq_ws_close() no more `message` events arrive; `closed` follows once the peer
 *   answers the close frame, the close timeout passes, or the connection fails.
 * - moq_http_server_free() delivers `closed` (code 1001) to every open WebSocket.
 *
 * Flow control: messages are queued without limit by the send calls up to max_queued_bytes
 * bytes; beyond that the peer is considered stuck and dropped (send returns MOQ_ERR_LIMIT,
 * `closed` with 1006 follows). moq_ws_queued() reports bytes not yet written to the socket;
 * `writable` fires when it falls below ws_low_water after having been above it.
 */
#ifndef MOQ_HTTP_WS_H
#define MOQ_HTTP_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "util/chunk.h"

typedef struct moq_ws moq_ws;

/* Close codes used here (RFC 6455 section 7.4.1). */
enum moq_ws_close_code {
    MOQ_WS_NORMAL = 1000,
    MOQ_WS_GOING_AWAY = 1001,
    MOQ_WS_PROTOCOL_ERROR = 1002,
    MOQ_WS_UNSUPPORTED_DATA = 1003,
    MOQ_WS_ABNORMAL = 1006, /* never sent: the connection failed without a close frame */
    MOQ_WS_INVALID_DATA = 1007,
    MOQ_WS_POLICY = 1008,
    MOQ_WS_TOO_BIG = 1009,
    MOQ_WS_INTERNAL = 1011,
};

struct moq_ws_events {
    /* The upgrade is done (the 101 is queued). First event. */
    void (*opened)(void *app, moq_ws *ws);
    /* A complete message (fragments reassembled). data is valid only during the call. */
    void (*message)(void *app, moq_ws *ws, bool binary, const uint8_t *data, size_t len);
    /* Queued output fell below the low-water mark. Optional. */
    void (*writable)(void *app, moq_ws *ws);
    /* Last event. code/reason: the peer's close frame if one arrived, else the code we
     * sent, else 1006. reason is "" when none. */
    void (*closed)(void *app, moq_ws *ws, uint16_t code, const char *reason);
};

#define MOQ_WS_MAX_OFFERS 64

/* What the upgrade hook is asked to decide on. */
struct moq_ws_upgrade {
    const moq_http_request *req;
    const char *const *offers; /* Sec-WebSocket-Protocol values in the client's order */
    size_t n_offers;
};

/* Filled by the hook when it accepts. */
struct moq_ws_accept {
    const char *protocol; /* one of the offers (copied), or NULL for no subprotocol */
    const struct moq_ws_events *events;
    void *app;
    /* When refusing: optional text/plain body of the refusal, saying what is wrong
     * (copied; the hook may point it at its own storage). */
    const char *refusal;
};

/* Return 0 to accept (filling *acc), or an HTTP status >= 400 to refuse (acc->refusal may
 * explain why). */
typedef int (*moq_ws_upgrade_fn)(void *ctx, const struct moq_ws_upgrade *up,
                                 struct moq_ws_accept *acc);

/* Install the upgrade hook (NULL: upgrade requests are routed like any other request). */
void moq_http_server_set_ws(moq_http_server *s, moq_ws_upgrade_fn fn, void *ctx);

/* Queue one message, copying the bytes. Returns 0, MOQ_ERR_CLOSED after close, or
 * MOQ_ERR_LIMIT when the queue bound is crossed (the connection is then dropped). */
int moq_ws_send(moq_ws *ws, bool binary, const void *data, size_t len);
/* Queue one binary message made of the concatenated slices without copying them: a
 * reference is taken on each chunk and dropped once its bytes are framed. */
int moq_ws_send_slices(moq_ws *ws, const moq_slice *v, size_t n);
/* Start the closing handshake (reason truncated to 123 bytes). Idempotent. */
void moq_ws_close(moq_ws *ws, uint16_t code, const char *reason);
/* Bytes queued and not yet written to the socket. */
size_t moq_ws_queued(const moq_ws *ws);

const char *moq_ws_protocol(const moq_ws *ws); /* chosen subprotocol, "" when none */
const char *moq_ws_target(const moq_ws *ws);   /* request target "/path?query" */
const char *moq_ws_host(const moq_ws *ws);     /* Host header, "" when absent */
const char *moq_ws_peer(const moq_ws *ws);     /* "addr:port" */
bool moq_ws_is_tls(const moq_ws *ws);
/* Kernel TCP statistics of the underlying socket (smoothed RTT, delivery rate). Returns 0
 * or MOQ_ERR_IO. Either output may be NULL. */
int moq_ws_tcp_stats(const moq_ws *ws, uint64_t *rtt_us, uint64_t *delivery_rate_bps);

/* --- sans-I/O helpers ---------------------------------------------------------------- */

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + RFC 6455 GUID)).
 * out gets 28 characters + NUL. Returns 0 or MOQ_ERR_INVALID (key not 16 bytes base64). */
int moq_ws_accept_key(const char *key, size_t key_len, char out[29]);

/* Check that req is a valid version-13 handshake. Returns 0, or the HTTP status to answer:
 * 400 (bad method/version/headers/key), 426 (unsupported Sec-WebSocket-Version). */
int moq_ws_check_handshake(const moq_http_request *req);

/* True when the request asks for a WebSocket (an Upgrade header with the token websocket). */
bool moq_ws_is_upgrade(const moq_http_request *req);

/* Split every Sec-WebSocket-Protocol header into its comma-separated values, trimmed and
 * without empty entries, in order. Values are copied into storage (NUL-terminated) and
 * out[i] points into it. Returns the count, or MOQ_ERR_TOO_LARGE when more than max values
 * or more than storage_len bytes. */
int moq_ws_parse_offers(const moq_http_request *req, const char **out, size_t max, char *storage,
                        size_t storage_len);

/* Pick a subprotocol the way upstream moq-relay does: the first entry of `supported` (the
 * server's preference order) that the client offered. Returns its index in offers, or -1. */
int moq_ws_select_protocol(const char *const *offers, size_t n_offers, const char *const *supported,
                           size_t n_supported);

#endif
