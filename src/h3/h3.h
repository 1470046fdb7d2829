/*
 * h3.h - a minimal HTTP/3 endpoint that carries WebTransport sessions (draft-02, as
 * Chromium and moq-relay speak it) on a QUIC connection that negotiated ALPN "h3".
 *
 * The HTTP/3 connection attaches to that QUIC connection through the one transport
 * interface (it is the QUIC transport's application) and presents every WebTransport
 * session as a moq_transport of kind MOQ_TRANSPORT_WEBTRANSPORT, so the moq session engine
 * runs on it unchanged. Requests other than an extended CONNECT for `webtransport` get
 * a 404; a CONNECT whose offered protocols (wt-available-protocols) include none we
 * support gets a 400, so clients fall back to another transport.
 *
 * Ownership: moq_h3_server_attach/moq_h3_client_attach create the HTTP/3 connection; it
 * frees itself (and every session) when the QUIC connection closes. Sessions are
 * moq_transport objects owned by the HTTP/3 connection: their lifetime ends with the
 * `closed` event as transport.h describes. The QUIC connection is closed shortly after it
 * is left without a WebTransport session: its last session closed or its request was
 * refused.
 *
 * Lingering: a connection left without a session keeps its QUIC connection open 500 ms,
 * then as long as the peer has not acknowledged what we sent on a stream still open for
 * sending (the CLOSE_WEBTRANSPORT_SESSION capsule and the CONNECT stream's FIN: a browser
 * whose connection closes before they arrive reports a lost session, not our close code),
 * 5 s after the last session at most. Shutdown ends that wait at once: moq_h3_shutdown.
 *
 * Time (sans-I/O): a connection reads time only from its driver's clock and arms no timer.
 * It reports its next deadline through drv->timer once when it is created (none yet) and
 * whenever that changes; the driver keeps one timer per connection that calls
 * moq_h3_on_timer once the deadline has passed, and drops it when drv->freed says the
 * connection is gone. Sessions' `closed` events and the QUIC close after the last session
 * are delivered from there.
 */
#ifndef MOQ_H3_H3_H
#define MOQ_H3_H3_H

#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"
#include "util/time.h"

typedef struct h3_conn moq_h3_conn;

/* What a connection needs from its driver to keep time (see "Time" above). Copied. */
struct moq_h3_driver {
    const moq_clock *clock; /* must outlive the connection */
    /* The connection's next deadline changed to `at` (clock->now_us time, UINT64_MAX =
     * none): arm the timer that calls moq_h3_on_timer. Must not call into the connection. */
    void (*timer)(void *ctx, moq_h3_conn *c, uint64_t at);
    /* The connection is gone; no call follows. Called exactly once per attach call: from
     * inside attach with c = NULL when it could not create the connection, otherwise once
     * its QUIC connection has closed. */
    void (*freed)(void *ctx, moq_h3_conn *c);
    void *ctx;
};

/* The earliest time moq_h3_on_timer has work, or UINT64_MAX. */
uint64_t moq_h3_next_deadline(const moq_h3_conn *c);
/* Run what is due at `now`. Never frees the connection. Afterwards the next deadline is
 * reported through drv->timer (even when unchanged). */
void moq_h3_on_timer(moq_h3_conn *c, uint64_t now);

/* Shutdown: from now on the connection does not linger. Without a WebTransport session (its
 * last one ended, or none was established yet) it closes its QUIC connection now, whatever
 * the peer has not acknowledged; otherwise as soon as its last session has ended. The
 * QUIC connection's `closed` then frees it (drv->freed), never from inside this call. */
void moq_h3_shutdown(moq_h3_conn *c);

/* Called for every established WebTransport session. Attach to it (moq_transport_attach)
 * and return 0 to keep it; a negative return rejects it (the session is closed and never
 * reported again). t->protocol, t->path and t->authority are set. */
typedef int (*moq_h3_accept_fn)(void *ctx, moq_transport *t);

struct moq_h3_server_config {
    /* Application protocols we implement, e.g. {"moq-lite-05","moq-lite-04","moq-lite-03"}.
     * The first entry of the client's offer that appears here is chosen (client order). */
    const char *const *protocols;
    size_t n_protocols;
    moq_h3_accept_fn accept;
    void *ctx;
    /* Optional: true when no session can be taken now; a CONNECT is then answered 503 with
     * the reason "server busy: session limit reached". Called with ctx. */
    bool (*busy)(void *ctx);
    /* Optional: the protocol of a CONNECT that offers none of the above (or no
     * wt-available-protocols at all), answered 200 without wt-protocol so that the client
     * negotiates in band, as upstream does ("moql": the compat SETUP). NULL: such a CONNECT
     * is refused with 400 and a body naming what to offer. */
    const char *fallback_protocol;
};

/* Take over a QUIC connection (kind MOQ_TRANSPORT_H3) as an HTTP/3 server. The config is
 * copied (the protocol strings must outlive the connection). Returns 0 or an error (then
 * the QUIC connection is closed). */
int moq_h3_server_attach(moq_transport *quic, const struct moq_h3_driver *drv,
                         const struct moq_h3_server_config *cfg);

/* Result of a client CONNECT: t is the session (attach to it inside the callback), or NULL
 * with err < 0 and an HTTP status when the server answered one (0 otherwise). */
typedef void (*moq_h3_connect_fn)(void *ctx, moq_transport *t, int err, int status);

struct moq_h3_client_config {
    const char *authority;        /* "host:port" */
    const char *path;             /* "/path?query" */
    const char *const *protocols; /* offered in order, e.g. moq-lite-05, -04, -03 */
    size_t n_protocols;
    moq_h3_connect_fn done;
    void *ctx;
};

/* Open one WebTransport session on a QUIC connection (kind MOQ_TRANSPORT_H3, client side).
 * `done` is called exactly once, from a later transport event. */
int moq_h3_client_attach(moq_transport *quic, const struct moq_h3_driver *drv,
                         const struct moq_h3_client_config *cfg);

#endif
