/*
 * url.h - the URLs the relay and its tools accept: scheme://host[:port][/path][?query].
 *
 * Schemes: moql/moqt (raw QUIC), https (WebTransport), http (fetch the certificate
 * fingerprint over HTTP, then WebTransport or raw QUIC on the same port), ws/wss.
 * Hosts may be DNS names, IPv4 literals or bracketed IPv6 literals. moq_url owns copies of
 * every part; moq_url_free releases them.
 */
#ifndef MOQ_UTIL_URL_H
#define MOQ_UTIL_URL_H

#include <stddef.h>

typedef struct moq_url {
    char *scheme; /* lower-case */
    char *host;   /* without brackets */
    char *port;   /* explicit or the scheme's default, as text */
    char *path;   /* starts with '/', "/" when absent; percent-encoding kept */
    char *query;  /* without '?', "" when absent */
} moq_url;

/* Parse text into u. Returns 0 or MOQ_ERR_INVALID (u is then empty). */
int moq_url_parse(const char *text, moq_url *u);
void moq_url_free(moq_url *u);

/* "host:port" with brackets for IPv6, into out. Returns the length or MOQ_ERR_TOO_LARGE. */
int moq_url_authority(const moq_url *u, char *out, size_t outlen);

/*
 * Percent-decoding. This is the relay's one decoder: HTTP paths and queries, the `jwt`
 * parameter the authorizer reads, /fetch parameters and cluster node names all go through
 * it, so nothing can read a request differently from another part. It is strict: a '%'
 * must be followed by two hex digits, and a NUL byte (raw or encoded) is refused, so the
 * result is always a whole C string.
 *
 * Decode src[0..len) into out (NUL-terminated); plus_is_space for form data. Returns the
 * decoded length, MOQ_ERR_INVALID for a bad escape or a NUL, MOQ_ERR_TOO_LARGE
 * when out (outlen bytes, NUL included) is too small. len + 1 bytes always suffice.
 */
int moq_percent_decode(const char *src, size_t len, char *out, size_t outlen, int plus_is_space);

/* A request target split by http-parser's URL parser (http_parser_parse_url): origin-form
 * "/path?query" or absolute-form "scheme://host/path?query"; a fragment is dropped. The
 * pointers point into the target; nothing is decoded, but the path and every name and
 * value of the query are checked to decode (moq_percent_decode). */
typedef struct moq_target {
    const char *path; /* "" when the target has none (absolute-form without a path) */
    size_t path_len;
    const char *query; /* after '?', "" when absent */
    size_t query_len;
    int has_query;
} moq_target;

/* Returns 0, or MOQ_ERR_INVALID when http-parser refuses the target (or it is longer than
 * 65535 bytes, which http-parser cannot describe) or a percent-escape in it is bad. */
int moq_target_split(const char *target, size_t len, moq_target *out);

/* Whether every name and value of a form-encoded query decodes (moq_percent_decode with
 * '+' as a space). Returns 0 or MOQ_ERR_INVALID. */
int moq_query_validate(const char *query, size_t len);

/* Look up a parameter of a form-encoded query (no leading '?'). The value is that of the
 * last occurrence with a non-empty value, "" when every occurrence is empty (upstream's
 * rule for `jwt`). The whole query is checked first, so a bad escape anywhere is
 * MOQ_ERR_INVALID whichever parameter is asked for. Returns the length of the value copied
 * into out (NUL-terminated), MOQ_ERR_NOT_FOUND, MOQ_ERR_INVALID or MOQ_ERR_TOO_LARGE. */
int moq_query_param(const char *query, size_t len, const char *name, char *out, size_t outlen);

#endif
