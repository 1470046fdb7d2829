/*
 * tls.h - TLS credentials for every listener and dialer (GnuTLS 3.7).
 *
 * Server side
 *   moq_tls_server owns the configured material: certificate chains and private keys loaded
 *   from PEM files (paired by index) and, when `generate` names are given, a self-signed
 *   ECDSA P-256 certificate it creates itself. From that material it builds immutable,
 *   refcounted moq_tls_creds (a gnutls_certificate_credentials_t plus the SHA-256
 *   fingerprints of the leaves). The server always holds one reference to its *current*
 *   creds. Listeners take their own reference per connection:
 *
 *       moq_tls_creds *creds = moq_tls_server_acquire(srv);   // +1, never NULL
 *       moq_tls_creds_attach(creds, session);                 // gnutls_credentials_set
 *       ... handshake, connection lifetime ...
 *       gnutls_deinit(session);
 *       moq_tls_creds_unref(creds);                           // -1 after the session is gone
 *
 *   Rotation (moq_tls_server_maintain) and reload (moq_tls_server_reload) build new creds
 *   and swap them in; connections that still hold the old creds keep using them, and the old
 *   creds are freed when the last reference drops. A failed reload or rotation keeps the last
 *   good creds and logs why. Refcounts are atomic and acquire/fingerprint are guarded by a
 *   mutex, so worker threads may acquire creds while the main loop rotates them;
 *   reload/maintain themselves must be called from one thread at a time.
 *
 *   Certificates chosen per handshake: GnuTLS picks among the configured certificates by SNI
 *   (the names in each certificate) and by what the client's signature algorithms allow;
 *   without a match it uses the first usable one. The order is: file pairs in configuration
 *   order, then the generated certificate. The "fingerprint" of a server is the first one's.
 *
 * Client side
 *   moq_tls_client owns the trust policy (CA roots, pinned leaf fingerprints, or none) and
 *   one gnutls_certificate_credentials_t that every session it sets up points to. It is
 *   reference counted (atomically): moq_tls_client_new returns the owner's reference,
 *   moq_tls_client_free drops it, and every session set up with it holds one more, dropped
 *   by gnutls_deinit; the credentials are freed with the last reference, so a connection
 *   that outlives its owner (a QUIC connection lingering so its close reaches the peer)
 *   never points to freed credentials. moq_tls_client_setup_session attaches the
 *   credentials, SNI and the verification to a session; the per-session verification state
 *   (a copy of the hostname, the client's reference) lives inside the gnutls session and is
 *   freed by gnutls_deinit. Priorities and ALPN are the caller's job.
 *
 * Errors: functions return 0 (or a positive count) on success and a negative MOQ_ERR_* on
 * failure. Where a caller needs to tell an operator what went wrong (bad path, garbled PEM,
 * key that does not match its certificate), the function also writes a one-line message
 * naming the file into `err` (may be NULL; always NUL-terminated when errlen > 0).
 */
#ifndef MOQ_TLS_TLS_H
#define MOQ_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

/* Hex SHA-256 plus the terminating NUL. */
#define MOQ_TLS_FINGERPRINT_HEX_LEN 65
#define MOQ_TLS_FINGERPRINT_LEN     32

/* Generated certificates: not_before is backdated one day (tolerates clients whose clock is
 * behind), not_after = not_before + 14 days, the longest validity Chrome accepts for
 * WebTransport serverCertificateHashes (it checks not_after - not_before <= 14 days). */
#define MOQ_TLS_GENERATED_BACKDATE_S (24 * 3600)
#define MOQ_TLS_GENERATED_VALIDITY_S (14 * 24 * 3600)
/* Default: rotate the generated certificate when less than one day of validity remains,
 * i.e. about 12 days after it was made. */
#define MOQ_TLS_DEFAULT_ROTATE_MARGIN_S (24 * 3600)

/* Largest certificate or key file we read. */
#define MOQ_TLS_MAX_FILE_SIZE (1024 * 1024)

typedef struct moq_tls_creds moq_tls_creds;
typedef struct moq_tls_server moq_tls_server;
typedef struct moq_tls_client moq_tls_client;

/* ---- fingerprints -------------------------------------------------------------------- */

/* SHA-256 of `der`, as 64 lower-case hex characters + NUL. Returns 0 or MOQ_ERR_TLS. */
int moq_tls_fingerprint_hex(const gnutls_datum_t *der, char out[MOQ_TLS_FINGERPRINT_HEX_LEN]);

/* Fingerprint of the first certificate in a PEM (or DER) file. Returns 0, MOQ_ERR_IO when
 * the file cannot be read, MOQ_ERR_INVALID when it holds no certificate. */
int moq_tls_fingerprint_file(const char *path, char out[MOQ_TLS_FINGERPRINT_HEX_LEN], char *err,
                             size_t errlen);

/* Parse a hex SHA-256 fingerprint (upper or lower case; ':' separators allowed, as printed
 * by openssl). Returns 0 or MOQ_ERR_INVALID (not hex, or not exactly 32 bytes). */
int moq_tls_fingerprint_parse(const char *hex, uint8_t out[MOQ_TLS_FINGERPRINT_LEN]);

/* ---- credentials (refcounted, immutable) --------------------------------------------- */

/* Take another reference. Returns `c`. */
moq_tls_creds *moq_tls_creds_ref(moq_tls_creds *c);
/* Drop a reference; the last one frees the GnuTLS credentials. NULL is ignored. Sessions
 * that point at the credentials must be deinitialised before their reference is dropped. */
void moq_tls_creds_unref(moq_tls_creds *c);

/* gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, ...). The caller keeps a reference
 * for as long as the session exists. Returns 0 or MOQ_ERR_TLS. */
int moq_tls_creds_attach(moq_tls_creds *c, gnutls_session_t session);

/* The underlying credentials (borrowed; valid while the reference is held). */
gnutls_certificate_credentials_t moq_tls_creds_gnutls(const moq_tls_creds *c);

/* Number of certificates (leaf + chain pairs) in these credentials. */
size_t moq_tls_creds_count(const moq_tls_creds *c);
/* Hex fingerprint of the i-th certificate's leaf, or NULL when out of range. Borrowed;
 * valid while the reference is held. */
const char *moq_tls_creds_fingerprint_at(const moq_tls_creds *c, size_t i);
/* The first certificate's fingerprint (what /certificate.sha256 serves). Never NULL. */
const char *moq_tls_creds_fingerprint(const moq_tls_creds *c);

/* ---- server -------------------------------------------------------------------------- */

typedef struct moq_tls_server_config {
    /* PEM certificate chains (leaf first) and PEM private keys, paired by index. */
    const char *const *certs;
    size_t n_certs;
    const char *const *keys;
    size_t n_keys;
    /* Names for a generated self-signed certificate: each becomes a SAN, an IP address
     * SAN when it parses as IPv4/IPv6 (brackets allowed), a DNS name otherwise. */
    const char *const *generate;
    size_t n_generate;
    /* Rotate the generated certificate when less than this much validity remains.
     * 0 = MOQ_TLS_DEFAULT_ROTATE_MARGIN_S. Must be shorter than the validity. */
    int64_t rotate_margin_s;
    /* PEM files of CAs that client certificates (mTLS) must chain to: every creds built
     * trusts them, re-read on reload. The listener decides whether to ask for a client
     * certificate (see moq_tls_server_verify_client). */
    const char *const *client_roots;
    size_t n_client_roots;
} moq_tls_server_config;

/* Load every pair and generate the self-signed certificate (valid from now_s - 1 day).
 * Needs at least one pair or one generate name; as many certs as keys.
 * Returns 0, MOQ_ERR_CONFIG (bad configuration, message in err), MOQ_ERR_IO (a file cannot
 * be read), MOQ_ERR_INVALID (a file holds no usable certificate/key, or a key does not match
 * its certificate), MOQ_ERR_TLS or MOQ_ERR_NOMEM. */
int moq_tls_server_new(const moq_tls_server_config *cfg, int64_t now_s, moq_tls_server **out,
                       char *err, size_t errlen);

/* Drops the server's reference to its current creds; creds still held elsewhere live on. */
void moq_tls_server_free(moq_tls_server *srv);

/* A new reference to the current creds (never NULL). The caller unrefs it. */
moq_tls_creds *moq_tls_server_acquire(moq_tls_server *srv);

/* Copy the current first fingerprint into `out`. */
void moq_tls_server_fingerprint(moq_tls_server *srv, char out[MOQ_TLS_FINGERPRINT_HEX_LEN]);

/* Re-read every certificate/key file now (e.g. on SIGHUP) and swap in new creds; the
 * generated certificate is kept as is. On failure the current creds stay and the reason
 * (naming the file) is written to err; nothing is logged, the caller reports. Returns 0 or
 * the negative error of the failed file. */
int moq_tls_server_reload(moq_tls_server *srv, char *err, size_t errlen);

/* Server side of mTLS, on a session set up with this server's creds (before the handshake):
 * ask the client for a certificate (optional, as upstream) and fail the handshake when one
 * is presented that does not chain to client_roots. No-op without client_roots. */
void moq_tls_server_verify_client(const moq_tls_server *srv, gnutls_session_t s);

/* After a handshake: true when the client presented a certificate, which the handshake then
 * verified; *expires (may be NULL) gets its notAfter in wall seconds. */
bool moq_tls_peer_certified(gnutls_session_t s, int64_t *expires);

/* Number of certificate/key file pairs configured (0 when only generated). */
size_t moq_tls_server_file_pairs(const moq_tls_server *srv);

/* Periodic upkeep; the relay calls it from a libev timer (ev_timer, or ev_periodic on wall
 * time). It
 *   - rotates the generated certificate once now_s >= moq_tls_server_rotate_at(), i.e. when
 *     less than rotate_margin_s of validity remains (new key, new fingerprint);
 *   - reloads the files when any certificate/key file changed on disk (device, inode, size
 *     or mtime differ from what was last read). A broken file is reported once and retried
 *     only after it changes again.
 * It costs a stat() per file, so calling it every few seconds is fine; at minimum call it
 * at moq_tls_server_rotate_at(). Returns 1 when new creds were swapped in, 0 when nothing
 * changed, or a negative error (the current creds stay). */
int moq_tls_server_maintain(moq_tls_server *srv, int64_t now_s);

/* Wall-clock second at which maintain() rotates the generated certificate, or INT64_MAX
 * when nothing is generated. */
int64_t moq_tls_server_rotate_at(const moq_tls_server *srv);

/* ---- client -------------------------------------------------------------------------- */

enum moq_tls_system_roots {
    MOQ_TLS_SYSTEM_ROOTS_AUTO = 0, /* trust the system roots only when no `roots` are given */
    MOQ_TLS_SYSTEM_ROOTS_ON = 1,   /* also trust them alongside `roots` */
    MOQ_TLS_SYSTEM_ROOTS_OFF = 2,  /* only `roots` */
};

typedef struct moq_tls_client_config {
    /* Accept any certificate (development only). Cannot be combined with roots,
     * fingerprints or system_roots = ON. */
    bool disable_verify;
    /* PEM files of trusted root CAs. Each must hold at least one certificate. */
    const char *const *roots;
    size_t n_roots;
    enum moq_tls_system_roots system_roots;
    /* Pinned SHA-256 fingerprints (hex) of the server leaf certificate: accept exactly those
     * leaves, ignoring CA chain and hostname, like browsers' serverCertificateHashes and the
     * `moq` tool's --tls-fingerprint. Cannot be combined with roots or system_roots = ON. */
    const char *const *fingerprints;
    size_t n_fingerprints;
    /* mTLS: a PEM certificate chain and its key, presented when the server asks. */
    const char *cert;
    const char *key;
} moq_tls_client_config;

/* Returns 0, MOQ_ERR_CONFIG (contradictory options, bad fingerprint, no trust at all; message
 * in err), MOQ_ERR_IO / MOQ_ERR_INVALID (a root file cannot be read or holds no certificate),
 * MOQ_ERR_TLS or MOQ_ERR_NOMEM. */
int moq_tls_client_new(const moq_tls_client_config *cfg, moq_tls_client **out, char *err,
                       size_t errlen);

/* Drop the owner's reference: the client is freed now, or when the last session set up with
 * it is deinitialised. */
void moq_tls_client_free(moq_tls_client *c);

/* Prepare a client session (before the first gnutls_handshake): attach the credentials, set
 * SNI to `hostname` unless it is an IP literal ("[v6]" brackets accepted), and install the
 * verification:
 *   - pinned fingerprints: the leaf's SHA-256 must equal one of them (hostname ignored);
 *   - CA roots: the chain must verify and the certificate must match `hostname` (DNS SAN,
 *     or IP SAN for IP literals); hostname is required;
 *   - disable_verify: nothing is checked.
 * `hostname` is copied. A failed verification makes the handshake fail with
 * GNUTLS_E_CERTIFICATE_ERROR (pin) or GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR (CA); see
 * moq_tls_client_verify_error. Returns 0, MOQ_ERR_INVALID (missing/oversized hostname in CA
 * mode), MOQ_ERR_NOMEM or MOQ_ERR_TLS. */
int moq_tls_client_setup_session(const moq_tls_client *c, gnutls_session_t s, const char *hostname);

/* After a failed handshake: a one-line description of why the server certificate was
 * rejected ("pinned fingerprint mismatch (got ...)", "The certificate is NOT trusted. ..."),
 * or "" when verification did not fail. */
void moq_tls_client_verify_error(gnutls_session_t s, char *buf, size_t len);

#endif
