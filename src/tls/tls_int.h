/*
 * tls_int.h - internals shared by the files of src/tls (not for other modules).
 *
 * A moq_tls_pair is one certificate chain + private key read from disk and checked to match;
 * a moq_tls_generated is the self-signed certificate we made. Both are plain owned objects
 * (freed with their *_clear function); moq_tls_creds_build copies them into new GnuTLS
 * credentials, so the server can rebuild creds from its last good material at any time.
 */
#ifndef MOQ_TLS_TLS_INT_H
#define MOQ_TLS_TLS_INT_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tls/tls.h"

struct moq_tls_creds {
    atomic_uint refs;
    gnutls_certificate_credentials_t cred;
    size_t count;
    char (*fingerprints)[MOQ_TLS_FINGERPRINT_HEX_LEN];
};

/* Identity of a file as last seen on disk, to notice replacements and rewrites. */
typedef struct moq_tls_stamp {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
} moq_tls_stamp;

typedef struct moq_tls_pair {
    gnutls_x509_crt_t *chain; /* leaf first; owned (gnutls_x509_crt_deinit each + free) */
    unsigned chain_len;
    gnutls_x509_privkey_t key;
    char fingerprint[MOQ_TLS_FINGERPRINT_HEX_LEN];
} moq_tls_pair;

typedef struct moq_tls_generated {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
    int64_t not_after; /* wall seconds */
    char fingerprint[MOQ_TLS_FINGERPRINT_HEX_LEN];
} moq_tls_generated;

/* snprintf into err when err != NULL && errlen > 0. */
void moq_tls_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* stat() path into *st (exists = false when it cannot be stat'ed). */
void moq_tls_stamp_take(const char *path, moq_tls_stamp *st);
bool moq_tls_stamp_equal(const moq_tls_stamp *a, const moq_tls_stamp *b);

/* Read a whole file (at most MOQ_TLS_MAX_FILE_SIZE) into out->data (free() it).
 * `what` names the file's role in messages ("certificate file"). */
int moq_tls_read_file(const char *path, const char *what, gnutls_datum_t *out, char *err,
                      size_t errlen);

/* Parse every certificate of a PEM (or single DER) blob. */
int moq_tls_parse_certs(const gnutls_datum_t *data, const char *path, const char *what,
                        gnutls_x509_crt_t **certs, unsigned *n, char *err, size_t errlen);
void moq_tls_free_certs(gnutls_x509_crt_t *certs, unsigned n);

/* Read + parse + match-check one cert/key pair. Clears *pair first. */
int moq_tls_pair_load(moq_tls_pair *pair, const char *cert_path, const char *key_path, char *err,
                      size_t errlen);
void moq_tls_pair_clear(moq_tls_pair *pair);

/* Make a self-signed ECDSA P-256 certificate for `names` valid from
 * now_s - MOQ_TLS_GENERATED_BACKDATE_S for MOQ_TLS_GENERATED_VALIDITY_S. */
int moq_tls_generate(moq_tls_generated *gen, const char *const *names, size_t n, int64_t now_s,
                     char *err, size_t errlen);
void moq_tls_generated_clear(moq_tls_generated *gen);

/* New creds (refcount 1) holding copies of the pairs then the generated certificate
 * (gen may be NULL). */
int moq_tls_creds_build(const moq_tls_pair *pairs, size_t n_pairs, const moq_tls_generated *gen,
                        moq_tls_creds **out, char *err, size_t errlen);

/* Parse "a.b.c.d", "::1" or "[::1]" into raw bytes. Returns 4, 16, or 0 (not an IP). */
int moq_tls_parse_ip(const char *name, uint8_t out[16]);

#endif
