/*
 * auth_int.h - helpers shared by the files of src/auth only (not part of the module API):
 * base64url, path normalisation and prefix logic, error formatting, JSON helpers, and the
 * GnuTLS signing primitives behind each JWS algorithm.
 *
 * Path helpers work on normalised paths (no leading/trailing slash, no empty segment)
 * unless they say otherwise, and return malloc'd strings the caller frees.
 */
#ifndef MOQ_AUTH_INT_H
#define MOQ_AUTH_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/auth.h"

/* ---- errors ---- */

/* Fill err (if not NULL) and return ret. */
int moq_auth_fail(moq_auth_error *err, int ret, int reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- base64 ---- */

/* Unpadded base64url; returns a NUL-terminated malloc'd string or NULL. */
char *moq_b64url_encode(const uint8_t *data, size_t len);
/* Strict: base64url alphabet, no padding, zero trailing bits (what JWS requires).
 * *out is malloc'd (at least 1 byte, NUL-terminated for convenience). */
int moq_b64url_decode_strict(const char *s, size_t len, uint8_t **out, size_t *out_len);
/* Lenient: url-safe or standard alphabet, optional '=' padding (key files and members). */
int moq_b64_decode_lenient(const char *s, size_t len, uint8_t **out, size_t *out_len);

/* ---- paths ---- */

/* Trim slashes and collapse doubled ones: "/a//b/" -> "a/b". */
char *moq_authpath_normalize(const char *path, size_t len);
/* prefix is a segment-aligned prefix of path ("" matches everything). Both normalised. */
bool moq_authpath_has_prefix(const char *path, const char *prefix);
/* path minus prefix and its delimiter, pointing into path; NULL when not a prefix. */
const char *moq_authpath_strip_prefix(const char *path, const char *prefix);
/* base + "/" + other, skipping the delimiter when either is empty. */
char *moq_authpath_join(const char *base, const char *other);
/* Segment-aligned prefix test on raw (non-normalised) input. */
bool moq_authpath_raw_has_prefix(const char *path, size_t path_len, const char *prefix,
                                 size_t prefix_len);
/* Sort by length then bytes, drop duplicates and entries covered by a shorter one. */
void moq_authpath_canonicalize(moq_strlist *l);
/* RFC 3986 5.2.4 dot-segment removal on a path (malloc'd). */
char *moq_authpath_remove_dots(const char *path, size_t len);

/* ---- JSON ---- */

/* Parse an object, refusing duplicate members and trailing bytes. */
json_t *moq_auth_json_object(const char *text, size_t len, moq_auth_error *err);
/* A string member, or a list of strings, appended to l. Absent: nothing appended. */
int moq_auth_json_strings(json_t *obj, const char *name, bool allow_single, moq_strlist *l,
                          moq_auth_error *err);
char *moq_auth_json_dump(json_t *v, bool pretty);

int moq_scope_copy(moq_scope *dst, const moq_scope *src);
int moq_scope_from_json(json_t *v, moq_scope *out, moq_auth_error *err);
json_t *moq_scope_to_json(const moq_scope *s);
bool moq_scope_is_useless(const moq_scope *s);

/* ---- keys ---- */

#include <gnutls/abstract.h>
#include <stdatomic.h>

enum moq_kty { MOQ_KTY_OCT, MOQ_KTY_RSA, MOQ_KTY_EC, MOQ_KTY_OKP };

typedef struct moq_bytes {
    uint8_t *p;
    size_t n;
} moq_bytes;

/* The JWK members as decoded bytes (kept for serialisation) plus the GnuTLS handles
 * built from them once, at load time. Secret bytes are wiped on free. */
struct moq_jwk {
    atomic_int refs;
    moq_jwt_alg alg;
    enum moq_kty kty;
    unsigned ops;
    char *kid;
    moq_scope *scope;
    /* oct */
    moq_bytes k;
    /* RSA */
    moq_bytes n, e, d, p, q, dp, dq, qi;
    /* EC / OKP (d shared with RSA's private exponent slot) */
    moq_bytes x, y;
    gnutls_pubkey_t pub;   /* asymmetric keys */
    gnutls_privkey_t priv; /* asymmetric keys with private material */
};

/* Build pub/priv from the decoded members; checks sizes and that both halves match. */
int moq_jws_import(moq_jwk *key, moq_auth_error *err);
/* Fill the decoded members of key with a fresh key pair for key->alg. */
int moq_jws_generate(moq_jwk *key, moq_auth_error *err);

/* ---- crypto (GnuTLS) ---- */

/* Signature size in bytes for fixed-size algorithms (HS, ES, EdDSA), else 0. */
size_t moq_jws_fixed_sig_len(moq_jwt_alg alg);
/* Sign data with key (must be private). *sig is malloc'd. */
int moq_jws_sign(const moq_jwk *key, const uint8_t *data, size_t len, uint8_t **sig,
                 size_t *sig_len);
/* 0 when sig is a valid signature of data under key, MOQ_ERR_AUTH when not. */
int moq_jws_verify(const moq_jwk *key, const uint8_t *data, size_t len, const uint8_t *sig,
                   size_t sig_len);

/* Constant-time comparison of equal-length buffers. */
bool moq_auth_ct_equal(const uint8_t *a, const uint8_t *b, size_t len);

#endif
