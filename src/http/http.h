/*
 * http.h - the relay's TCP side: HTTP/1.1 and HTTPS listeners, a route table, and the
 * request/response objects handlers see. WebSocket upgrades are in http/ws.h; the
 * sans-I/O request parser is in http/parser.h.
 *
 * Ownership
 * - moq_http_server owns its listeners, every connection, the route table and all
 *   responses. moq_http_server_free() closes everything: pending asynchronous responses get
 *   their abort callback, open WebSockets get their `closed` event, then the memory goes.
 * - The server never owns handler contexts (the `ctx` pointers given to routes).
 * - A moq_http_request is a read-only view owned by its connection. It stays valid until
 *   the response to it is complete (synchronous return, moq_http_response_send, end of a
 *   streamed body) or aborted.
 * - A moq_http_response is owned by the connection too. A handler fills it and returns 0
 *   (sent at once) or MOQ_HTTP_ASYNC (the handler keeps the pointer as a handle and later
 *   calls moq_http_response_send or streams the body). Exactly one of "the app completes it"
 *   or "the abort callback runs" ends the handle's life; after either, do not touch it.
 *
 * Threading: one server per event loop; nothing here is thread-safe.
 *
 * Paths: the request target is split with http-parser's URL parser (moq_target_split in
 * util/url.h); the path is percent-decoded exactly once, with the relay's one decoder
 * (moq_percent_decode). Decoding is strict: a '%' must be followed by two hex digits, the
 * decoded path must be valid UTF-8 without control characters (NUL included), and no
 * segment may be "." or ".." after decoding (so "%2e%2e" is caught too). The query stays
 * encoded, but every name and value in it must decode the same way (moq_query_validate).
 * Anything else is 400. Nothing is normalised: "//", a trailing "/" and case are kept as
 * sent, and "%2F" decodes to "/" like any other byte. Routes match the decoded path byte
 * for byte. Query parameters are read with moq_query_param (util/url.h).
 */
#ifndef MOQ_HTTP_HTTP_H
#define MOQ_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include "util/chunk.h"

struct ev_loop;

typedef struct moq_http_server moq_http_server;
typedef struct moq_http_router moq_http_router;
typedef struct moq_http_response moq_http_response;

/* Methods, as bits so routes can accept several. */
enum moq_http_method {
    MOQ_HTTP_GET = 1u << 0,
    MOQ_HTTP_HEAD = 1u << 1,
    MOQ_HTTP_POST = 1u << 2,
    MOQ_HTTP_PUT = 1u << 3,
    MOQ_HTTP_DELETE = 1u << 4,
    MOQ_HTTP_OPTIONS = 1u << 5,
    MOQ_HTTP_PATCH = 1u << 6,
    MOQ_HTTP_CONNECT = 1u << 7,
    MOQ_HTTP_TRACE = 1u << 8,
    MOQ_HTTP_OTHER = 1u << 15,
};

struct moq_http_header {
    const char *name;  /* as sent; NUL-terminated */
    const char *value; /* surrounding whitespace removed; NUL-terminated */
    size_t name_len;
    size_t value_len;
};

typedef struct moq_http_request {
    unsigned method;         /* one enum moq_http_method bit */
    const char *method_name; /* "GET", ... */
    const char *target;      /* raw request-target as sent, NUL-terminated */
    size_t target_len;
    const char *path; /* percent-decoded path (see above), NUL-terminated */
    size_t path_len;
    const char *query; /* raw query after '?' (not decoded, but decodable), "" when absent */
    size_t query_len;
    bool has_query;
    const struct moq_http_header *headers;
    size_t n_headers;
    const uint8_t *body; /* whole request body (chunked bodies are de-chunked) */
    size_t body_len;
    unsigned short http_major, http_minor;
    bool keep_alive; /* the connection stays open after this exchange */
    /* Set by the router for the matched route: the part of `path` after the route's
     * path (after the prefix for prefix routes, "" for exact routes). */
    const char *route_rest;
    /* Peer address "addr:port" or "[addr]:port"; "" outside a server. */
    const char *peer;
    bool tls; /* arrived over HTTPS */
    /* The client presented a certificate the TLS handshake verified (mTLS; see
     * moq_http_tls.tls_setup), valid until peer_cert_expires (wall seconds). */
    bool peer_certified;
    int64_t peer_cert_expires;
} moq_http_request;

/* First header with this name (case-insensitive), or NULL. */
const char *moq_http_header(const moq_http_request *req, const char *name);
/* True when a comma-separated header (all occurrences) has this token
 * (case-insensitive), e.g. Connection: keep-alive, Upgrade. */
bool moq_http_header_has_token(const moq_http_request *req, const char *name, const char *token);

/*
 * Handlers. Return 0 when `resp` is complete (it is sent at once), MOQ_HTTP_ASYNC to keep
 * the response as a handle and finish it later, or a negative MOQ_ERR_* which becomes a 500
 * (whatever was put in resp is discarded).
 */
#define MOQ_HTTP_ASYNC 1
typedef int (*moq_http_handler)(void *ctx, const moq_http_request *req, moq_http_response *resp);

/* --- responses ----------------------------------------------------------------------- */

/* Set the status code (default 200). */
void moq_http_response_set_status(moq_http_response *resp, int status);
int moq_http_response_status(const moq_http_response *resp);
/* Add a header. Content-Length, Transfer-Encoding, Connection and Date belong to the server
 * and are refused (MOQ_ERR_INVALID), as are names that are not tokens and values with
 * CR, LF or NUL. */
int moq_http_response_header(moq_http_response *resp, const char *name, const char *value);
/* Value of a header added with moq_http_response_header, or NULL (for tests). */
const char *moq_http_response_get_header(const moq_http_response *resp, const char *name, char *buf,
                                         size_t cap);
/* Append body bytes (copied). */
int moq_http_response_body(moq_http_response *resp, const void *data, size_t len);
/* Append refcounted body bytes without copying: the response takes its own reference on
 * each chunk and drops it once the bytes are written (or the response is dropped). */
int moq_http_response_body_slices(moq_http_response *resp, const moq_slice *v, size_t n);
size_t moq_http_response_body_len(const moq_http_response *resp);
/* Copy of the body so far into out (at most cap bytes). Returns the bytes copied. */
size_t moq_http_response_body_copy(const moq_http_response *resp, void *out, size_t cap);

/* Asynchronous completion: send a response whose handler returned MOQ_HTTP_ASYNC. The
 * handle is invalid afterwards. Never calls back into the application. */
int moq_http_response_send(moq_http_response *resp);
/* Called if the connection goes away (or the server is freed) before the application
 * completes an asynchronous or streamed response. The handle dies after the callback. */
void moq_http_response_on_abort(moq_http_response *resp, void (*cb)(void *arg), void *arg);

/* Streaming (for bodies that are not complete yet, e.g. a media group still arriving):
 * start sends the status and headers set so far with chunked transfer coding (or, for an
 * HTTP/1.0 client, a body delimited by closing the connection); write queues body bytes
 * (slices are not copied); end finishes the body and invalidates the handle. Start may be
 * called from the handler (which then returns MOQ_HTTP_ASYNC) or later. */
int moq_http_response_stream_start(moq_http_response *resp);
int moq_http_response_stream_write(moq_http_response *resp, const moq_slice *v, size_t n);
int moq_http_response_stream_write_bytes(moq_http_response *resp, const void *data, size_t len);
int moq_http_response_stream_end(moq_http_response *resp);
/* Bytes of this connection's output not yet handed to the kernel (backpressure). A stream
 * write that takes it past max_queued_bytes drops the connection (MOQ_ERR_LIMIT; the abort
 * callback follows from the event loop). */
size_t moq_http_response_queued(const moq_http_response *resp);

/* A standalone response for sans-I/O use (tests, tools); the server makes its own. */
moq_http_response *moq_http_response_new(void);
void moq_http_response_free(moq_http_response *resp);

/* --- routing ------------------------------------------------------------------------- */

enum moq_http_match {
    MOQ_HTTP_EXACT = 0,  /* the path equals the route's path */
    MOQ_HTTP_PREFIX = 1, /* the path starts with the route's path */
};

moq_http_router *moq_http_router_new(void);
void moq_http_router_free(moq_http_router *r);

/*
 * Register a handler. `methods` is a mask of enum moq_http_method; a route with GET also
 * answers HEAD (the body is dropped). `max_body` is the largest request body accepted
 * (0: the route takes no body; a request with one gets 413). Exact routes win over prefix
 * routes, and the longest prefix wins among prefixes. Registering the same path, match and
 * method twice is MOQ_ERR_EXISTS.
 */
int moq_http_route(moq_http_router *r, unsigned methods, const char *path,
                   enum moq_http_match match, size_t max_body, moq_http_handler fn, void *ctx);
/* Remove every route (and the fallback) whose ctx is `ctx`. */
void moq_http_router_remove(moq_http_router *r, void *ctx);
/* Handler for paths no route matches (default: an empty 404). */
void moq_http_router_set_fallback(moq_http_router *r, moq_http_handler fn, void *ctx);
/* CORS like upstream moq-relay: every routed response (routes, fallback, 404, 405) gets
 * `Access-Control-Allow-Origin: *` and a Vary header, and any OPTIONS request is answered
 * as a preflight (200, empty body, Access-Control-Allow-Methods: allow_methods).
 * allow_methods NULL disables CORS. The string is copied. */
int moq_http_router_set_cors(moq_http_router *r, const char *allow_methods);

/* Whether a route takes this method and path, and if so the largest request body it
 * accepts (*max_body). Used by the server when the headers are in. */
bool moq_http_router_lookup(const moq_http_router *r, unsigned method, const char *path,
                            size_t *max_body);

/* Route a complete request into resp (sans-I/O core of the server). Returns what the
 * handler returned (0 or MOQ_HTTP_ASYNC); handler failures are turned into a 500 here
 * and return 0. */
int moq_http_router_dispatch(moq_http_router *r, moq_http_request *req, moq_http_response *resp);

/* --- server -------------------------------------------------------------------------- */

/* TLS credentials for an HTTPS listener, supplied by the caller so they can rotate while
 * running. acquire returns an opaque handle (NULL on failure: the connection is dropped)
 * and the credentials to use for one connection; release is called with that handle when
 * the connection is freed. */
struct moq_http_tls {
    void *(*creds_acquire)(void *ctx, gnutls_certificate_credentials_t *out);
    void (*creds_release)(void *ctx, void *handle);
    void *ctx;
    /* mTLS: called on every connection's TLS session before its handshake (e.g.
     * moq_tls_server_verify_client); NULL asks for no client certificate. A verified one
     * sets peer_certified on the connection's requests. */
    void (*tls_setup)(void *ctx, gnutls_session_t s);
};

struct moq_http_config {
    size_t max_conns; /* open connections per server (default 10000) */
    /* Non-NULL: max_conns counts the connections of every server sharing this counter
     * (worker threads listening on the same ports); it must outlive the server. */
    _Atomic size_t *shared_conns;
    size_t max_header_bytes;    /* request line + headers (default 16384) -> 431 */
    size_t max_headers;         /* header count (default 100) -> 431 */
    uint32_t header_timeout_ms; /* whole request head, TLS handshake included (10000) */
    uint32_t idle_timeout_ms;   /* keep-alive idle, and body read progress (60000) */
    uint32_t write_timeout_ms;  /* no write progress while output is queued (30000) */
    uint32_t linger_ms;         /* drain time after a final response (2000) */
    size_t max_output_bytes;    /* queued output that pauses request processing (1 MiB) */
    size_t max_queued_bytes;    /* queued output (WebSocket messages, streamed bodies) after
                                   which a peer that is not reading is dropped (16 MiB) */
    /* WebSocket */
    size_t ws_max_message;        /* largest message received, else close 1009 (16 MiB) */
    size_t ws_low_water;          /* `writable` fires when queued output drops below (256 KiB) */
    uint32_t ws_ping_interval_ms; /* ping when nothing was received for this long (15000) */
    uint32_t ws_idle_timeout_ms;  /* close when nothing was received for this long (45000) */
    /* Drop the connection when a ping has had no answer - nothing at all received since it
     * went out - for this long: a peer gone without a FIN (5000; UINT32_MAX = never). */
    uint32_t ws_ack_timeout_ms;
    uint32_t ws_close_timeout_ms; /* wait for the peer's close frame (5000) */
    /* File descriptors: the server holds reserve_fds descriptors (default 1) open for when
     * the process runs out (accept fails with EMFILE or ENFILE). One is then let go so the
     * waiting connection can be accepted: with reserve_serve it is served as usual (an
     * operations listener keeps answering however busy the public ones are; its reserve
     * bounds how many such connections it holds at once), without it the connection gets a
     * 503 (plain HTTP) and is closed, so clients are told at once instead of hanging in the
     * backlog. The descriptor is taken back as soon as the connection closes. */
    size_t reserve_fds;
    bool reserve_serve;
};

/* Fill cfg with the defaults above. */
void moq_http_config_default(struct moq_http_config *cfg);

/* A server on `loop` with its own (empty) route table. cfg NULL = defaults. */
moq_http_server *moq_http_server_new(struct ev_loop *loop, const struct moq_http_config *cfg);
/* Close every listener and connection (see Ownership) and free the server. Not from
 * inside one of this server's callbacks. */
void moq_http_server_free(moq_http_server *s);
moq_http_router *moq_http_server_router(moq_http_server *s);

/*
 * Listen on "addr:port" with a numeric address: "[::]:4443" (dual-stack: IPV6_V6ONLY off),
 * "0.0.0.0:80", "127.0.0.1:0" (ephemeral). tls NULL = plain HTTP; otherwise HTTPS (TLS 1.2
 * and 1.3, ALPN http/1.1); the struct is copied. The bound port is stored in *port when
 * port is not NULL. Returns 0, MOQ_ERR_CONFIG for a bad address, MOQ_ERR_IO on bind errors.
 */
int moq_http_server_listen(moq_http_server *s, const char *addr, const struct moq_http_tls *tls,
                           uint16_t *port);
/* As moq_http_server_listen; reuseport joins the address's SO_REUSEPORT group (one listener
 * per worker thread, the kernel spreads connections), and a nonzero port_override replaces
 * the address's port (workers joining the port the first one was given for ":0"). */
int moq_http_server_listen_shared(moq_http_server *s, const char *addr,
                                  const struct moq_http_tls *tls, bool reuseport,
                                  uint16_t port_override, uint16_t *port);

/* Open connections (HTTP, WebSocket, lingering). */
size_t moq_http_server_conn_count(const moq_http_server *s);

/* Parse "host:port" / "[v6]:port" into a sockaddr (numeric only). */
struct sockaddr_storage;
int moq_http_parse_addr(const char *addr, struct sockaddr_storage *out, unsigned *len);

/* Reason phrase for a status code ("OK", "Not Found", ...; "Unknown" otherwise). */
const char *moq_http_reason(int status);
/* IMF-fixdate for a Unix time, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (29 chars + NUL). */
void moq_http_date(int64_t unix_s, char out[30]);

#endif
