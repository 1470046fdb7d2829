/*
 * Client trust policy and per-session verification.
 *
 * GnuTLS gives a verification callback nothing but the session, and the session's user
 * pointer belongs to whoever drives it (ngtcp2 keeps its conn_ref there). So the state the
 * callback needs (the client, a copy of the hostname, the failure reason) is stored as the
 * private data of a session-local extension registered with gnutls_session_ext_register:
 * GnuTLS hands it back through gnutls_ext_get_data and frees it with the session. The
 * extension itself is never sent (its send hook writes nothing, which makes GnuTLS omit
 * it) and uses a number from the private-use range.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "tls/tls_int.h"
#include "util/err.h"
#include "util/log.h"

#define SESSION_EXT_ID 0xff6d /* private use (RFC 8446 section 11), never on the wire */
#define MAX_HOSTNAME   255

enum verify_mode {
    VERIFY_NONE,
    VERIFY_PIN,
    VERIFY_CA,
};

struct moq_tls_client {
    _Atomic unsigned refs; /* the owner's, plus one per session set up with it */
    gnutls_certificate_credentials_t cred;
    enum verify_mode mode;
    uint8_t (*pins)[MOQ_TLS_FINGERPRINT_LEN];
    size_t n_pins;
};

typedef struct session_ctx {
    moq_tls_client *client;          /* a reference, dropped when GnuTLS frees the session */
    char hostname[MAX_HOSTNAME + 1]; /* GnuTLS keeps a pointer to this for CA verification */
    char reason[192];                /* why the pin check failed, for verify_error */
} session_ctx;

/* ---- construction -------------------------------------------------------------------- */

static int validate(const moq_tls_client_config *cfg, char *err, size_t errlen)
{
    bool roots = cfg->n_roots > 0 || cfg->system_roots == MOQ_TLS_SYSTEM_ROOTS_ON;
    if (cfg->disable_verify && (roots || cfg->n_fingerprints > 0)) {
        moq_tls_errf(err, errlen,
                     "tls client: disable_verify accepts every certificate, so it cannot be "
                     "combined with roots or fingerprints (they would be ignored)");
        return MOQ_ERR_CONFIG;
    }
    if (cfg->n_fingerprints > 0 && roots) {
        moq_tls_errf(err, errlen,
                     "tls client: a pinned fingerprint bypasses CA verification, so it cannot "
                     "be combined with roots or system roots");
        return MOQ_ERR_CONFIG;
    }
    if (!cfg->disable_verify && cfg->n_fingerprints == 0 && cfg->n_roots == 0 &&
        cfg->system_roots == MOQ_TLS_SYSTEM_ROOTS_OFF) {
        moq_tls_errf(err, errlen,
                     "tls client: no trusted roots: give root files, enable system roots, pin a "
                     "fingerprint or disable verification");
        return MOQ_ERR_CONFIG;
    }
    return MOQ_OK;
}

static int load_pins(moq_tls_client *c, const moq_tls_client_config *cfg, char *err, size_t errlen)
{
    c->pins = calloc(cfg->n_fingerprints, sizeof(*c->pins));
    if (!c->pins) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_fingerprints; i++) {
        if (moq_tls_fingerprint_parse(cfg->fingerprints[i], c->pins[i]) < 0) {
            moq_tls_errf(err, errlen,
                         "tls client: invalid fingerprint \"%s\": expected 64 hex characters "
                         "(SHA-256 of the certificate)",
                         cfg->fingerprints[i] ? cfg->fingerprints[i] : "");
            return MOQ_ERR_CONFIG;
        }
        c->n_pins++;
    }
    return MOQ_OK;
}

static int load_root_file(gnutls_certificate_credentials_t cred, const char *path, char *err,
                          size_t errlen)
{
    gnutls_datum_t data;
    gnutls_x509_crt_t *certs = NULL;
    unsigned n = 0;
    int rc = moq_tls_read_file(path, "root certificate file", &data, err, errlen);
    if (rc < 0) return rc;
    rc = moq_tls_parse_certs(&data, path, "root certificate file", &certs, &n, err, errlen);
    free(data.data);
    if (rc < 0) return rc;
    int added = gnutls_certificate_set_x509_trust(cred, certs, (int)n);
    moq_tls_free_certs(certs, n);
    if (added <= 0) {
        moq_tls_errf(err, errlen, "root certificate file %s: no usable certificate (%s)", path,
                     added < 0 ? gnutls_strerror(added) : "none added");
        return MOQ_ERR_INVALID;
    }
    return MOQ_OK;
}

static int load_roots(moq_tls_client *c, const moq_tls_client_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_roots; i++) {
        int rc = load_root_file(c->cred, cfg->roots[i] ? cfg->roots[i] : "", err, errlen);
        if (rc < 0) return rc;
    }
    bool system = cfg->system_roots == MOQ_TLS_SYSTEM_ROOTS_ON ||
                  (cfg->system_roots == MOQ_TLS_SYSTEM_ROOTS_AUTO && cfg->n_roots == 0);
    if (system) {
        int n = gnutls_certificate_set_x509_system_trust(c->cred);
        if (n <= 0)
            moq_warn("tls", "no system root certificates loaded (%s); servers will not verify",
                     n < 0 ? gnutls_strerror(n) : "the system store is empty");
        else
            moq_debug("tls", "loaded %d system root certificates", n);
    }
    return MOQ_OK;
}

/* The client certificate presented for mTLS. */
static int load_identity(moq_tls_client *c, const moq_tls_client_config *cfg, char *err,
                         size_t errlen)
{
    if (!cfg->cert || !cfg->key) {
        moq_tls_errf(err, errlen, "a client certificate needs both a certificate and a key file");
        return MOQ_ERR_CONFIG;
    }
    int rc = gnutls_certificate_set_x509_key_file2(c->cred, cfg->cert, cfg->key,
                                                   GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        moq_tls_errf(err, errlen, "client certificate %s with key %s: %s", cfg->cert, cfg->key,
                     gnutls_strerror(rc));
        return MOQ_ERR_INVALID;
    }
    return MOQ_OK;
}

int moq_tls_client_new(const moq_tls_client_config *cfg, moq_tls_client **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    moq_tls_errf(err, errlen, "%s", "");
    int rc = validate(cfg, err, errlen);
    if (rc < 0) return rc;
    moq_tls_client *c = calloc(1, sizeof(*c));
    if (!c) return MOQ_ERR_NOMEM;
    c->refs = 1;
    if (gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        free(c);
        return MOQ_ERR_NOMEM;
    }
    if (cfg->disable_verify) {
        c->mode = VERIFY_NONE;
        moq_warn("tls", "server certificate verification is disabled; a man-in-the-middle "
                        "can impersonate any server");
    } else if (cfg->n_fingerprints > 0) {
        c->mode = VERIFY_PIN;
        rc = load_pins(c, cfg, err, errlen);
    } else {
        c->mode = VERIFY_CA;
        rc = load_roots(c, cfg, err, errlen);
    }
    if (rc >= 0 && (cfg->cert || cfg->key)) rc = load_identity(c, cfg, err, errlen);
    if (rc < 0) {
        moq_tls_client_free(c);
        return rc;
    }
    *out = c;
    return MOQ_OK;
}

/* The reference count is bookkeeping, not part of the trust policy the const pointers of
 * callers promise not to change. */
static moq_tls_client *client_ref(const moq_tls_client *c)
{
    moq_tls_client *m = (moq_tls_client *)c;
    m->refs++;
    return m;
}

void moq_tls_client_free(moq_tls_client *c)
{
    if (!c || --c->refs > 0) return;
    gnutls_certificate_free_credentials(c->cred);
    free(c->pins);
    free(c);
}

/* ---- per-session state --------------------------------------------------------------- */

static int ext_recv(gnutls_session_t s, const unsigned char *data, size_t len)
{
    return 0;
}

static int ext_send(gnutls_session_t s, gnutls_buffer_t extdata)
{
    return 0; /* nothing appended: GnuTLS leaves the extension out of the ClientHello */
}

/* Called by gnutls_deinit before it lets go of the session's credential list (which it only
 * unlinks, never reads), so the credentials outlive every use the session makes of them. */
static void ext_deinit(gnutls_ext_priv_data_t data)
{
    session_ctx *ctx = data;
    moq_tls_client_free(ctx->client);
    free(ctx);
}

static session_ctx *session_ctx_get(gnutls_session_t s)
{
    gnutls_ext_priv_data_t data = NULL;
    if (gnutls_ext_get_data(s, SESSION_EXT_ID, &data) < 0) return NULL;
    return data;
}

static session_ctx *session_ctx_attach(gnutls_session_t s)
{
    session_ctx *ctx = session_ctx_get(s);
    if (ctx) return ctx;
    int rc = gnutls_session_ext_register(s, "moq-verify-state", SESSION_EXT_ID, GNUTLS_EXT_TLS,
                                         ext_recv, ext_send, ext_deinit, NULL, NULL,
                                         GNUTLS_EXT_FLAG_CLIENT_HELLO | GNUTLS_EXT_FLAG_TLS);
    if (rc < 0 && rc != GNUTLS_E_ALREADY_REGISTERED) return NULL;
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return NULL;
    gnutls_ext_set_data(s, SESSION_EXT_ID, ctx);
    return ctx;
}

static int verify_pinned(gnutls_session_t s)
{
    session_ctx *ctx = session_ctx_get(s);
    if (!ctx || !ctx->client) return -1;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509 || !peers ||
        n == 0) {
        snprintf(ctx->reason, sizeof(ctx->reason), "server sent no X.509 certificate");
        return -1;
    }
    uint8_t digest[MOQ_TLS_FINGERPRINT_LEN];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, peers[0].data, peers[0].size, digest) < 0) {
        snprintf(ctx->reason, sizeof(ctx->reason), "cannot hash the server certificate");
        return -1;
    }
    const moq_tls_client *c = ctx->client;
    for (size_t i = 0; i < c->n_pins; i++)
        if (memcmp(digest, c->pins[i], sizeof(digest)) == 0) return 0;
    char hex[MOQ_TLS_FINGERPRINT_HEX_LEN];
    moq_tls_fingerprint_hex(&peers[0], hex);
    snprintf(ctx->reason, sizeof(ctx->reason),
             "server certificate %s matches no pinned fingerprint", hex);
    moq_debug("tls", "%s", ctx->reason);
    return -1;
}

/* Copy hostname without IPv6 brackets into out; returns its length or -1 when too long. */
static int normalise_host(const char *hostname, char out[MAX_HOSTNAME + 1])
{
    size_t len = strlen(hostname);
    if (len >= 2 && hostname[0] == '[' && hostname[len - 1] == ']') {
        hostname++;
        len -= 2;
    }
    if (len > MAX_HOSTNAME) return -1;
    memcpy(out, hostname, len);
    out[len] = '\0';
    return (int)len;
}

int moq_tls_client_setup_session(const moq_tls_client *c, gnutls_session_t s, const char *hostname)
{
    char host[MAX_HOSTNAME + 1] = "";
    int len = hostname ? normalise_host(hostname, host) : 0;
    if (len < 0) return MOQ_ERR_INVALID;
    if (c->mode == VERIFY_CA && len == 0) return MOQ_ERR_INVALID;
    /* The session holds the client (and so its credentials) before it may point to them. */
    session_ctx *ctx = session_ctx_attach(s);
    if (!ctx) return MOQ_ERR_NOMEM;
    moq_tls_client *previous = ctx->client;
    ctx->client = client_ref(c);
    moq_tls_client_free(previous);
    ctx->reason[0] = '\0';
    memcpy(ctx->hostname, host, (size_t)len + 1);
    if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->cred) < 0) return MOQ_ERR_TLS;

    uint8_t ip[16];
    if (len > 0 && moq_tls_parse_ip(host, ip) == 0 &&
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, host, (size_t)len) < 0)
        return MOQ_ERR_TLS;

    switch (c->mode) {
    case VERIFY_NONE:
        gnutls_session_set_verify_function(s, NULL);
        break;
    case VERIFY_PIN:
        gnutls_session_set_verify_function(s, verify_pinned);
        break;
    case VERIFY_CA:
        /* GnuTLS matches an IP literal against IP SANs and a name against DNS SANs. */
        gnutls_session_set_verify_cert(s, ctx->hostname, 0);
        break;
    }
    return MOQ_OK;
}

void moq_tls_client_verify_error(gnutls_session_t s, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    buf[0] = '\0';
    session_ctx *ctx = session_ctx_get(s);
    if (ctx && ctx->reason[0]) {
        snprintf(buf, len, "%s", ctx->reason);
        return;
    }
    unsigned status = gnutls_session_get_verify_cert_status(s);
    if (status == 0 || status == (unsigned)-1) return;
    gnutls_datum_t text = {NULL, 0};
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) < 0) {
        snprintf(buf, len, "certificate verification failed (status 0x%x)", status);
        return;
    }
    snprintf(buf, len, "%s", (const char *)text.data);
    gnutls_free(text.data);
}
