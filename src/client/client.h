/*
 * client.h - the client side: dial a relay (or any moq-lite server) by URL and run a moq
 * session on it, plus the small asynchronous HTTP/1.1 GET the dialer uses to fetch a
 * development certificate's fingerprint, and the loop driver of HTTP/3 connections. Used by
 * the `moq` tool and by the relay (clustering, WebTransport).
 *
 * URLs (see util/url.h):
 *   moql://host:port/path?query, moqt://...  raw QUIC; ALPN offer moq-lite-05, -04, -03 (or the
 *                                           configured versions); "/path?query" travels in the
 *                                           lite-05 SETUP Path (older versions have none)
 *   https://host:port/path?query            WebTransport: QUIC with ALPN h3, then an extended
 *                                           CONNECT to "/path?query" offering the versions
 *   ws://host:port/path?query, wss://...    WebSocket: an HTTP/1.1 upgrade offering qmux
 *                                           subprotocols for the versions, then qmux
 *   http://host:port/path?query             first GET http://host:port/certificate.sha256,
 *                                           pin that fingerprint, then dial https:// on the
 *                                           same host and port (raw QUIC with `raw_quic`),
 *                                           like @moq/net does for http:// URLs
 *
 * Ownership and lifetime
 * - moq_dial_start copies everything in the config (strings and lists included) except the
 *   origin, which must outlive the dial. It returns a handle that stays valid until the
 *   `closed` callback has returned; the dial frees itself (and its TLS state) afterwards.
 * - `closed` runs exactly once, from the event loop, for every dial that started: when the
 *   attempt fails (err < 0, reason says why: resolution, fingerprint fetch, TLS, refused
 *   CONNECT, timeout), when it is cancelled with moq_dial_close (err MOQ_ERR_CLOSED), or when
 *   the established session ends (err 0, with the session's close code and reason).
 * - The session (moq/session.h) belongs to the dial: use it between `connected` and
 *   `closed`, close it with moq_dial_close (or moq_session_close).
 * - The HTTP GET frees itself after its callback returned; cancelled requests never call
 *   back.
 *
 * Permissions: the session's peer may publish into `origin` under the `publish` prefixes
 * (the engine asks the peer for its announcements there and relays them in as routes) and
 * may read from it under the `subscribe` prefixes (our announcements and tracks). Prefixes
 * are relative to the origin's root; "" means everything.
 *
 * All functions run on the loop's thread; callbacks never run inside the call that
 * caused them.
 */
#ifndef MOQ_CLIENT_CLIENT_H
#define MOQ_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h3/h3.h"
#include "model/model.h"
#include "moq/session.h"
#include "quic/quic.h"
#include "tls/tls.h"

struct ev_loop;

/* ---- HTTP GET ------------------------------------------------------------------------- */

#define MOQ_HTTP_GET_DEFAULT_TIMEOUT_MS 10000
#define MOQ_HTTP_GET_DEFAULT_MAX_BODY   (64 * 1024)

typedef struct moq_http_get moq_http_get;

struct moq_http_get_config {
    const char *host;    /* DNS name or IP literal (no brackets) */
    const char *port;    /* numeric or service name */
    const char *target;  /* "/path?query" */
    uint64_t timeout_ms; /* whole request; 0 = MOQ_HTTP_GET_DEFAULT_TIMEOUT_MS */
    size_t max_body;     /* larger bodies fail; 0 = MOQ_HTTP_GET_DEFAULT_MAX_BODY */
};

/* The request finished. err 0: the server answered `status` with body[0..len) (any status;
 * the body is valid during the call only). err < 0: no answer (MOQ_ERR_IO connection failed
 * or broke, MOQ_ERR_TIMEOUT, MOQ_ERR_PROTO malformed response, MOQ_ERR_TOO_LARGE body over
 * max_body), reason describes it. */
typedef void (*moq_http_get_fn)(void *ctx, int err, int status, const uint8_t *body, size_t len,
                                const char *reason);

/* Start a GET (Connection: close). Returns 0 and optionally *out (valid until the callback
 * or cancel), or MOQ_ERR_INVALID / MOQ_ERR_NOT_FOUND (name does not resolve) /
 * MOQ_ERR_NOMEM without calling back. */
int moq_http_get_start(struct ev_loop *loop, const struct moq_http_get_config *cfg,
                       moq_http_get_fn cb, void *ctx, moq_http_get **out);
/* Abandon a request whose callback has not run; it never calls back. */
void moq_http_get_cancel(moq_http_get *g);

/* ---- HTTP/3 connections on a loop ---------------------------------------------------- */

/* Fill *drv so that one HTTP/3 connection (h3/h3.h) runs on `loop` with the system clock,
 * on a timer of its own that goes with the connection. Pass it to exactly one
 * moq_h3_server_attach or moq_h3_client_attach. Returns 0 or MOQ_ERR_NOMEM. */
int moq_h3_loop_driver(struct ev_loop *loop, struct moq_h3_driver *drv);
/* Shutdown: moq_h3_shutdown every HTTP/3 connection running on `loop` through
 * moq_h3_loop_driver, so that none lingers waiting for acknowledgements: those without a
 * session close their QUIC connection now, the others once their last session has ended.
 * Call it on the loop's thread (or while no thread runs the loop). */
void moq_h3_loop_shutdown(struct ev_loop *loop);

/* ---- WebSocket ----------------------------------------------------------------------- */

/* moq-lite over WebSocket (qmux, see qmux/qmux.h): TCP (TLS for wss://), an HTTP/1.1 upgrade
 * offering "qmux-0N.<version>" for each version, then a qmux session. The dialer uses it for
 * ws:// and wss:// URLs. Once `done` has handed over a transport the connection owns
 * itself: it ends when the transport's application closes it or the peer goes away. */
typedef struct moq_ws_client moq_ws_client;

struct moq_ws_client_config {
    const char *host;            /* DNS name or IP literal (no brackets) */
    const char *port;            /* numeric or service name */
    const char *authority;       /* Host header ("host:port"); NULL = host */
    const char *target;          /* "/path?query" */
    const char *const *versions; /* moq-lite versions to offer, in preference order */
    size_t n_versions;
    const moq_tls_client *tls; /* wss://: the trust policy (must outlive the handshake);
                                  NULL = plain ws:// */
};

/* The handshake finished: t is the session's transport (attach to it during the call), or
 * NULL with err < 0 and a reason. Runs from the loop, exactly once unless cancelled. */
typedef void (*moq_ws_connect_fn)(void *ctx, moq_transport *t, int err, const char *reason);

/* Start. Returns 0 and *out (valid until the callback), or MOQ_ERR_INVALID,
 * MOQ_ERR_NOT_FOUND (name does not resolve), MOQ_ERR_IO or MOQ_ERR_NOMEM without calling
 * back. */
int moq_ws_connect(struct ev_loop *loop, const struct moq_ws_client_config *cfg,
                   moq_ws_connect_fn cb, void *ctx, moq_ws_client **out);
/* Abandon a handshake whose callback has not run; it never calls back. */
void moq_ws_connect_cancel(moq_ws_client *c);

/* ---- dialing -------------------------------------------------------------------------- */

#define MOQ_DIAL_DEFAULT_TIMEOUT_MS 10000

typedef struct moq_dial moq_dial;

struct moq_dial_config {
    const char *url;
    /* Server certificate trust (tls/tls.h). With http:// URLs the fetched fingerprint is
     * pinned instead (any trust configured here is ignored then). Nothing configured on a
     * moql/https URL means the system roots. */
    moq_tls_client_config tls;
    /* Or an existing trust policy shared by many dials (not copied; it must outlive the
     * dial): `tls` is ignored then, except for http:// URLs, which pin what they fetch. */
    const moq_tls_client *tls_client;
    /* moq-lite versions to offer ("moq-lite-05", ...), in preference order; NULL/0 = all
     * supported (moq_version_alpns). */
    const char *const *versions;
    size_t n_versions;
    /* http:// URLs: after fetching the fingerprint dial raw QUIC instead of WebTransport. */
    bool raw_quic;
    /* From moq_dial_start until the session runs; 0 = MOQ_DIAL_DEFAULT_TIMEOUT_MS. */
    uint64_t timeout_ms;
    struct moq_quic_transport_config transport;

    /* The session's side of the model and what the peer may do with it (see above). */
    moq_origin *origin;
    const char *const *publish;
    size_t n_publish;
    const char *const *subscribe;
    size_t n_subscribe;
    uint64_t max_frame_bytes; /* 0 = the engine's default */

    /* The session runs (optional). */
    void (*connected)(void *ctx, moq_dial *d, moq_session *s);
    /* The origin starts or stops pulling a track through this session (optional; see
     * moq_session_config.upstream). */
    void (*upstream)(void *ctx, moq_dial *d, moq_session *s, const uint8_t *path, size_t len,
                     const uint64_t *hops, size_t nhops, bool active);
    /* The peer refused to announce to us under `prefix`: we may not subscribe there (see
     * moq_session_config.announce_refused; optional). */
    void (*announce_refused)(void *ctx, moq_dial *d, const char *prefix);
    /* A milestone of the session's requests (see moq_session_config.event; optional). */
    void (*event)(void *ctx, moq_dial *d, const struct moq_session_event *ev);
    /* Appended to the reason when the server's certificate is not trusted: how the caller's
     * user makes it trusted (optional). */
    const char *tls_hint;
    /* The dial is over (required); see "Ownership and lifetime". */
    void (*closed)(void *ctx, moq_dial *d, int err, uint64_t code, const char *reason);
    void *ctx;
};

/* Start dialing. Returns 0 and *out, or a negative error with a message in err (bad or
 * unsupported URL, contradictory TLS options, unreadable root file, name that does not
 * resolve, out of memory); then no callback runs. */
int moq_dial_start(struct ev_loop *loop, const struct moq_dial_config *cfg, moq_dial **out,
                   char *err, size_t errlen);

/* Abandon the attempt or close the session (with `code` and `reason`). `closed` follows
 * from the loop. Calling it again, or after `closed`, is not allowed (the handle is gone). */
void moq_dial_close(moq_dial *d, uint64_t code, const char *reason);

/* The running session, or NULL before `connected`. */
moq_session *moq_dial_session(const moq_dial *d);
/* "QUIC" or "WebTransport" (what the dial uses or used). */
const char *moq_dial_transport_name(const moq_dial *d);
/* The URL as given. */
const char *moq_dial_url(const moq_dial *d);

#endif
