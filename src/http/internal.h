/*
 * internal.h - structures shared by the files of src/http (not for other modules).
 *
 * A connection (moq_http_conn) owns its socket, TLS session, input buffer, output queue,
 * parser, current response and, after an upgrade, its moq_ws. Connections are freed only
 * from the top of an event-loop callback (conn_release), never from inside application
 * code, so application downcalls only set flags and arm watchers.
 */
#ifndef MOQ_HTTP_INTERNAL_H
#define MOQ_HTTP_INTERNAL_H

#include <ev.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "http/http.h"
#include "http/parser.h"
#include "http/ws.h"
#include "util/buf.h"
#include "util/chunk.h"
#include "util/defer.h"
#include "util/list.h"

/* --- output queue: slices of refcounted chunks, written with writev or TLS records ---- */

struct moq_outq {
    moq_slice *v; /* ring of slices; each holds one chunk reference */
    size_t head, count, cap;
    size_t bytes;       /* unsent bytes */
    moq_chunk *staging; /* tail chunk small copies are appended to (ours alone) */
};

void moq_outq_init(struct moq_outq *q);
void moq_outq_free(struct moq_outq *q);
/* Copy bytes in (coalesced into a staging chunk). */
int moq_outq_append(struct moq_outq *q, const void *data, size_t len);
/* Queue a slice without copying (takes a reference). Empty slices are skipped. */
int moq_outq_push(struct moq_outq *q, const moq_slice *s);
/* Up to max iovecs / max_bytes of the front of the queue. Returns the iovec count. */
struct iovec;
size_t moq_outq_peek(const struct moq_outq *q, struct iovec *iov, size_t max, size_t max_bytes);
/* Drop n sent bytes from the front. */
void moq_outq_consume(struct moq_outq *q, size_t n);

/* --- responses ------------------------------------------------------------------------ */

enum resp_state {
    RESP_IDLE = 0,  /* no request in progress */
    RESP_ACTIVE,    /* being filled: by the handler, or later by the application */
    RESP_STREAMING, /* head sent, body being streamed */
};

struct moq_http_response {
    int status;
    moq_buf headers; /* "Name: value\r\n" lines added by the application */
    moq_slice *body; /* body parts; each holds one chunk reference */
    size_t n_body, cap_body;
    size_t body_len;
    bool cors; /* add the CORS response headers (set by the router) */
    /* Server side */
    struct moq_http_conn *conn; /* NULL for standalone responses */
    enum resp_state state;
    bool in_handler; /* the handler call is on the stack */
    bool finished;   /* completed while in_handler: the server sends it on return */
    void (*abort_cb)(void *arg);
    void *abort_arg;
    bool chunked; /* streaming with chunked coding (else close-delimited) */
};

void moq_http_response_init(moq_http_response *resp);
/* Drop headers and body (releasing chunk references) and reset to a fresh 200. */
void moq_http_response_clear(moq_http_response *resp);

/* Response head for resp. keep_alive: the connection stays open (else Connection: close);
 * http10: the client spoke HTTP/1.0; mode: how the body is framed. */
enum moq_http_framing { MOQ_HTTP_FRAME_LENGTH, MOQ_HTTP_FRAME_CHUNKED, MOQ_HTTP_FRAME_CLOSE };
int moq_http_response_head(const moq_http_response *resp, int64_t now_s, bool keep_alive,
                           bool http10, enum moq_http_framing framing, moq_buf *out);
/* True when this status never carries a body (1xx, 204, 304). */
bool moq_http_status_bodyless(int status);

/* --- connections ---------------------------------------------------------------------- */

struct moq_http_listener {
    moq_list link;
    moq_http_server *srv;
    int fd;
    ev_io io;
    ev_timer retry; /* accept paused after EMFILE/ENFILE with no reserve left */
    bool exhausted; /* accept failed for want of descriptors; logged until it succeeds */
    bool has_tls;
    struct moq_http_tls tls;
    gnutls_priority_t prio;
    uint16_t port;
};

enum conn_state {
    CONN_HANDSHAKE, /* TLS handshake */
    CONN_HTTP,
    CONN_WS,
    CONN_LINGER, /* final response sent, write side shut: draining input before close */
};

struct moq_http_conn {
    moq_list link;
    moq_http_server *srv;
    struct moq_http_listener *lst;
    int fd;
    bool reserved; /* accepted in the slot of a reserve descriptor: give it back on close */
    ev_io io;
    int io_events;
    ev_timer timer;  /* the one deadline that matters in the current state */
    moq_defer defer; /* resume work outside application calls */
    enum conn_state state;
    char peer[64];
    bool peer_certified; /* mTLS: a verified client certificate */
    int64_t peer_cert_expires;

    gnutls_session_t tls;
    void *creds_handle;
    bool uncork_pending; /* gnutls holds corked bytes it could not send yet */

    moq_buf in;
    struct moq_outq out;
    moq_http_parser *parser;
    moq_http_response resp;

    bool close_after; /* close once the output is flushed */
    bool peer_eof;
    bool dead; /* free at the end of the current callback */

    ev_tstamp created;
    ev_tstamp request_start; /* first byte of the current request head */
    ev_tstamp last_read;
    ev_tstamp last_write; /* last write progress (or when output started) */
    ev_tstamp idle_since;
    ev_tstamp linger_start;

    moq_ws *ws;
};

struct moq_http_server {
    struct ev_loop *loop;
    struct moq_http_config cfg;
    moq_http_router *router;
    moq_list listeners;
    moq_list conns;
    size_t n_conns;
    moq_ws_upgrade_fn ws_fn;
    void *ws_ctx;
    int *spares; /* cfg.reserve_fds descriptors held in reserve; -1 while lent out */
    int64_t date_s;
    char date[30];
};

/* Connection I/O used by ws.c. */
ssize_t moq_conn_recv(struct moq_http_conn *c, void *buf, size_t len); /* >0, 0 EOF, <0 err */
int moq_conn_flush(struct moq_http_conn *c);                           /* 0 or MOQ_ERR_IO */
void moq_conn_update_io(struct moq_http_conn *c);
void moq_conn_schedule(struct moq_http_conn *c); /* run the defer watcher soon */
void moq_conn_arm_timer(struct moq_http_conn *c);
bool moq_conn_want_write(const struct moq_http_conn *c);
/* Mark for freeing from the loop (safe inside application downcalls). */
void moq_conn_kill(struct moq_http_conn *c);
/* Shut our write side and drain input until the peer closes (or linger_ms passes). */
void moq_conn_linger(struct moq_http_conn *c);

/* WebSocket side (ws.c). moq_ws_start asks the application: returns 0 when accepted (the
 * connection is now CONN_WS), an HTTP status (> 0) when refused, or a negative error
 * (MOQ_ERR_TOO_LARGE: too many offers). */
int moq_ws_start(struct moq_http_conn *c, const moq_http_request *req);
void moq_ws_drive(struct moq_http_conn *c, int revents);
void moq_ws_on_timer(struct moq_http_conn *c);
ev_tstamp moq_ws_deadline(struct moq_http_conn *c);
bool moq_ws_wants_write(const struct moq_http_conn *c);
bool moq_ws_wants_read(const struct moq_http_conn *c);
/* Deliver `closed` if `opened` was delivered, then free the moq_ws. */
void moq_ws_destroy(struct moq_http_conn *c, uint16_t code_if_open);

#endif
