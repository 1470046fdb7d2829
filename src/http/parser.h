/*
 * parser.h - sans-I/O HTTP/1.x request parser: bytes in, one complete request out.
 *
 * Wraps http-parser (which does all the HTTP syntax work) and adds the limits and
 * bookkeeping the server needs: request head size and header count (431), body size (413),
 * strict path decoding and a query that decodes (400, see http.h), exactly one Host header
 * for HTTP/1.1 and at most one for HTTP/1.0 (400), version check (505). The parser stops after each
 * complete request so pipelined requests are handled one at a time: bytes after the request are
 * left unconsumed, and the caller resets the parser before feeding them.
 *
 * The parser owns all request storage; the moq_http_request it exposes stays valid until
 * moq_http_parser_reset() or moq_http_parser_free().
 */
#ifndef MOQ_HTTP_PARSER_H
#define MOQ_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

typedef struct moq_http_parser moq_http_parser;

enum moq_http_parse_result {
    MOQ_HTTP_PARSE_MORE = 0,    /* all input consumed; need more bytes */
    MOQ_HTTP_PARSE_REQUEST = 1, /* a complete request is ready */
    MOQ_HTTP_PARSE_ERROR = 2,   /* bad request: answer moq_http_parser_error_status and close */
};

struct moq_http_parser_limits {
    size_t max_header_bytes; /* request line + headers */
    size_t max_headers;      /* header count */
    size_t max_body_bytes;   /* default body limit; on_headers may change it per request */
};

/* Called once the request head is complete, before any body byte. Return 0 to go on, or
 * an HTTP status (>= 400) to refuse the request (the parser then fails with it). The
 * callback may call moq_http_parser_set_max_body(). */
typedef int (*moq_http_on_headers)(void *ctx, moq_http_parser *p, moq_http_request *req);

moq_http_parser *moq_http_parser_new(const struct moq_http_parser_limits *lim,
                                     moq_http_on_headers on_headers, void *ctx);
void moq_http_parser_free(moq_http_parser *p);

/* Feed bytes. *consumed gets the number of bytes used (less than len after a complete
 * request or an error). Returns an enum moq_http_parse_result. */
int moq_http_parser_feed(moq_http_parser *p, const uint8_t *data, size_t len, size_t *consumed);
/* Forget the current request and get ready for the next one on the same connection. */
void moq_http_parser_reset(moq_http_parser *p);

/* The request once feed returned MOQ_HTTP_PARSE_REQUEST (and, for on_headers, during the
 * callback; the body is empty then). The caller may set the `peer`, `tls` and
 * `route_rest` fields. */
moq_http_request *moq_http_parser_request(moq_http_parser *p);
/* Status to answer after MOQ_HTTP_PARSE_ERROR: 400, 413, 417, 431, 505, ... */
int moq_http_parser_error_status(const moq_http_parser *p);
/* True once the first byte of a request has been parsed (and until reset). */
bool moq_http_parser_started(const moq_http_parser *p);
/* True once the request head is complete (and until reset). */
bool moq_http_parser_headers_done(const moq_http_parser *p);
/* True when the current request carries a body (Content-Length > 0 or chunked). */
bool moq_http_parser_has_body(const moq_http_parser *p);
/* Declared body length once the head is complete: 0 for none, UINT64_MAX when chunked
 * (meaningful during on_headers; it counts down as the body is parsed). */
uint64_t moq_http_parser_content_length(const moq_http_parser *p);
/* Body limit for the current request. */
void moq_http_parser_set_max_body(moq_http_parser *p, size_t max);
/* Read up to max body bytes of the current request without keeping them (the request
 * will be answered without looking at its body); more is 413. */
void moq_http_parser_discard_body(moq_http_parser *p, size_t max);
/* True when the request asked the connection to upgrade (Connection: upgrade + Upgrade,
 * or CONNECT): bytes after the request belong to another protocol. */
bool moq_http_parser_upgrade(const moq_http_parser *p);

/* Strict percent-decoding of a request path (rules in http.h). out must hold len + 1
 * bytes; the result is NUL-terminated. Returns the decoded length or MOQ_ERR_INVALID. */
int moq_http_decode_path(const char *raw, size_t len, char *out);

#endif
