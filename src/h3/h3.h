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
 */
#ifndef MOQ_H3_H3_H
#define MOQ_H3_H3_H

#include <stddef.h>

#include "transport/transport.h"

struct ev_loop;

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
};

/* Take over a QUIC connection (kind MOQ_TRANSPORT_H3) as an HTTP/3 server. The config is
 * copied (the protocol strings must outlive the connection). Returns 0 or an error (then
 * the QUIC connection is closed). */
int moq_h3_server_attach(moq_transport *quic, struct ev_loop *loop,
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
 * `done` is called exactly once from the event loop. */
int moq_h3_client_attach(moq_transport *quic, struct ev_loop *loop,
                         const struct moq_h3_client_config *cfg);

#endif
