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

/* Look up a query parameter (form-decoded: '+' is a space, %XX decoded). Returns the
 * length of the value copied into out (NUL-terminated), MOQ_ERR_NOT_FOUND, or
 * MOQ_ERR_TOO_LARGE / MOQ_ERR_INVALID. query has no leading '?'. */
int moq_query_param(const char *query, const char *name, char *out, size_t outlen);

/* Percent-decode src[0..len) into out (NUL-terminated); plus_is_space for forms. Returns the
 * decoded length or MOQ_ERR_INVALID for bad escapes / embedded NUL, MOQ_ERR_TOO_LARGE. */
int moq_percent_decode(const char *src, size_t len, char *out, size_t outlen, int plus_is_space);

#endif
