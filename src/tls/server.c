/* The server's certificate material, its current creds, reload and rotation. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_int.h"
#include "util/err.h"
#include "util/log.h"

struct moq_tls_server {
    pthread_mutex_t lock;   /* guards `current` */
    moq_tls_creds *current; /* one reference owned by the server */

    size_t n_pairs;
    char **cert_paths;
    char **key_paths;
    moq_tls_pair *pairs; /* last good material read from the files */
    moq_tls_stamp *seen; /* per file as of the last read attempt: cert i at 2i, key at 2i+1 */

    char **client_roots; /* CA files for mTLS client certificates */
    size_t n_client_roots;

    char **names; /* generate names; n_names == 0 means nothing is generated */
    size_t n_names;
    moq_tls_generated gen;
    int64_t rotate_margin_s;
};

static void free_strings(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char **copy_strings(const char *const *src, size_t n)
{
    char **v = calloc(n ? n : 1, sizeof(*v));
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(src[i] ? src[i] : "");
        if (!v[i]) {
            free_strings(v, i);
            return NULL;
        }
    }
    return v;
}

static void free_pairs(moq_tls_pair *pairs, size_t n)
{
    if (!pairs) return;
    for (size_t i = 0; i < n; i++)
        moq_tls_pair_clear(&pairs[i]);
    free(pairs);
}

/* Read every file pair. Records what each file looked like before it was read, whether or
 * not loading succeeds, so maintain() retries a broken file only after it changes again. */
static int load_pairs(moq_tls_server *srv, moq_tls_pair **out, char *err, size_t errlen)
{
    *out = NULL;
    if (srv->n_pairs == 0) return MOQ_OK;
    moq_tls_pair *pairs = calloc(srv->n_pairs, sizeof(*pairs));
    if (!pairs) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < srv->n_pairs; i++) {
        moq_tls_stamp_take(srv->cert_paths[i], &srv->seen[2 * i]);
        moq_tls_stamp_take(srv->key_paths[i], &srv->seen[2 * i + 1]);
    }
    for (size_t i = 0; i < srv->n_pairs; i++) {
        int rc = moq_tls_pair_load(&pairs[i], srv->cert_paths[i], srv->key_paths[i], err, errlen);
        if (rc < 0) {
            free_pairs(pairs, srv->n_pairs);
            return rc;
        }
    }
    *out = pairs;
    return MOQ_OK;
}

static void swap_creds(moq_tls_server *srv, moq_tls_creds *next)
{
    pthread_mutex_lock(&srv->lock);
    moq_tls_creds *old = srv->current;
    srv->current = next;
    pthread_mutex_unlock(&srv->lock);
    moq_tls_creds_unref(old);
}

static int validate_config(const moq_tls_server_config *cfg, char *err, size_t errlen)
{
    if (cfg->n_certs != cfg->n_keys) {
        moq_tls_errf(err, errlen,
                     "tls: %zu certificate file(s) but %zu key file(s); they pair by index",
                     cfg->n_certs, cfg->n_keys);
        return MOQ_ERR_CONFIG;
    }
    if (cfg->n_certs == 0 && cfg->n_generate == 0) {
        moq_tls_errf(err, errlen,
                     "tls: no certificate: configure cert/key pairs or names to generate");
        return MOQ_ERR_CONFIG;
    }
    for (size_t i = 0; i < cfg->n_certs; i++) {
        if (!cfg->certs[i] || !cfg->certs[i][0] || !cfg->keys[i] || !cfg->keys[i][0]) {
            moq_tls_errf(err, errlen, "tls: certificate/key pair %zu has an empty path", i);
            return MOQ_ERR_CONFIG;
        }
    }
    for (size_t i = 0; i < cfg->n_generate; i++) {
        if (!cfg->generate[i] || !cfg->generate[i][0]) {
            moq_tls_errf(err, errlen, "tls: generate name %zu is empty", i);
            return MOQ_ERR_CONFIG;
        }
    }
    int64_t margin = cfg->rotate_margin_s;
    if (margin < 0 || margin >= MOQ_TLS_GENERATED_VALIDITY_S - MOQ_TLS_GENERATED_BACKDATE_S) {
        moq_tls_errf(err, errlen, "tls: rotate margin %lld s must be below %d s", (long long)margin,
                     MOQ_TLS_GENERATED_VALIDITY_S - MOQ_TLS_GENERATED_BACKDATE_S);
        return MOQ_ERR_CONFIG;
    }
    return MOQ_OK;
}

/* A client certificate is optional; one that is presented must verify against the roots. */
static int verify_client_cert(gnutls_session_t s)
{
    unsigned n = 0;
    if (!gnutls_certificate_get_peers(s, &n) || n == 0) return 0;
    unsigned status = 1;
    if (gnutls_certificate_verify_peers2(s, &status) < 0 || status != 0) return -1;
    return 0;
}

/* Creds from the material, trusting the client roots (read again each time). */
static int build_creds(moq_tls_server *srv, const moq_tls_pair *pairs, const moq_tls_generated *gen,
                       moq_tls_creds **out, char *err, size_t errlen)
{
    int rc = moq_tls_creds_build(pairs, srv->n_pairs, gen, out, err, errlen);
    for (size_t i = 0; rc >= 0 && i < srv->n_client_roots; i++) {
        int n = gnutls_certificate_set_x509_trust_file(moq_tls_creds_gnutls(*out),
                                                       srv->client_roots[i], GNUTLS_X509_FMT_PEM);
        if (n <= 0) {
            moq_tls_errf(err, errlen, "client root file %s: %s", srv->client_roots[i],
                         n == 0 ? "no certificate in it" : gnutls_strerror(n));
            moq_tls_creds_unref(*out);
            *out = NULL;
            rc = MOQ_ERR_INVALID;
        }
    }
    if (rc >= 0 && srv->n_client_roots)
        gnutls_certificate_set_verify_function(moq_tls_creds_gnutls(*out), verify_client_cert);
    return rc;
}

void moq_tls_server_verify_client(const moq_tls_server *srv, gnutls_session_t s)
{
    if (!srv->n_client_roots) return;
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
}

bool moq_tls_peer_certified(gnutls_session_t s, int64_t *expires)
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n == 0) return false;
    unsigned status = 1;
    if (gnutls_certificate_verify_peers2(s, &status) < 0 || status != 0) return false;
    if (expires) {
        *expires = 0;
        gnutls_x509_crt_t crt;
        if (gnutls_x509_crt_init(&crt) == 0) {
            if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0)
                *expires = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
            gnutls_x509_crt_deinit(crt);
        }
    }
    return true;
}

int moq_tls_server_new(const moq_tls_server_config *cfg, int64_t now_s, moq_tls_server **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    moq_tls_errf(err, errlen, "%s", "");
    int rc = validate_config(cfg, err, errlen);
    if (rc < 0) return rc;

    moq_tls_server *srv = calloc(1, sizeof(*srv));
    if (!srv) return MOQ_ERR_NOMEM;
    pthread_mutex_init(&srv->lock, NULL);
    srv->rotate_margin_s =
        cfg->rotate_margin_s ? cfg->rotate_margin_s : MOQ_TLS_DEFAULT_ROTATE_MARGIN_S;
    srv->n_pairs = cfg->n_certs;
    srv->n_names = cfg->n_generate;
    srv->cert_paths = copy_strings(cfg->certs, cfg->n_certs);
    srv->key_paths = copy_strings(cfg->keys, cfg->n_keys);
    srv->names = copy_strings(cfg->generate, cfg->n_generate);
    srv->n_client_roots = cfg->n_client_roots;
    srv->client_roots = copy_strings(cfg->client_roots, cfg->n_client_roots);
    srv->seen = calloc(2 * srv->n_pairs + 1, sizeof(*srv->seen));
    rc = MOQ_ERR_NOMEM;
    if (!srv->cert_paths || !srv->key_paths || !srv->names || !srv->seen || !srv->client_roots)
        goto fail;

    rc = load_pairs(srv, &srv->pairs, err, errlen);
    if (rc < 0) goto fail;
    if (srv->n_names > 0) {
        rc = moq_tls_generate(&srv->gen, (const char *const *)srv->names, srv->n_names, now_s, err,
                              errlen);
        if (rc < 0) goto fail;
    }
    rc = build_creds(srv, srv->pairs, srv->n_names ? &srv->gen : NULL, &srv->current, err, errlen);
    if (rc < 0) goto fail;
    moq_info("tls", "serving %zu certificate(s), fingerprint %s", moq_tls_creds_count(srv->current),
             moq_tls_creds_fingerprint(srv->current));
    *out = srv;
    return MOQ_OK;
fail:
    moq_tls_server_free(srv);
    return rc;
}

void moq_tls_server_free(moq_tls_server *srv)
{
    if (!srv) return;
    moq_tls_creds_unref(srv->current);
    free_pairs(srv->pairs, srv->n_pairs);
    free_strings(srv->cert_paths, srv->n_pairs);
    free_strings(srv->key_paths, srv->n_pairs);
    free_strings(srv->names, srv->n_names);
    free_strings(srv->client_roots, srv->n_client_roots);
    free(srv->seen);
    moq_tls_generated_clear(&srv->gen);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

moq_tls_creds *moq_tls_server_acquire(moq_tls_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    moq_tls_creds *c = moq_tls_creds_ref(srv->current);
    pthread_mutex_unlock(&srv->lock);
    return c;
}

void moq_tls_server_fingerprint(moq_tls_server *srv, char out[MOQ_TLS_FINGERPRINT_HEX_LEN])
{
    pthread_mutex_lock(&srv->lock);
    memcpy(out, moq_tls_creds_fingerprint(srv->current), MOQ_TLS_FINGERPRINT_HEX_LEN);
    pthread_mutex_unlock(&srv->lock);
}

int moq_tls_server_reload(moq_tls_server *srv, char *err, size_t errlen)
{
    char local[512];
    if (!err || errlen == 0) {
        err = local;
        errlen = sizeof(local);
    }
    err[0] = '\0';
    moq_tls_pair *pairs = NULL;
    moq_tls_creds *next = NULL;
    int rc = load_pairs(srv, &pairs, err, errlen);
    if (rc >= 0) rc = build_creds(srv, pairs, srv->n_names ? &srv->gen : NULL, &next, err, errlen);
    if (rc < 0) {
        free_pairs(pairs, srv->n_pairs);
        if (!err[0]) snprintf(err, errlen, "%s", moq_strerror(rc));
        return rc;
    }
    free_pairs(srv->pairs, srv->n_pairs);
    srv->pairs = pairs;
    swap_creds(srv, next);
    return MOQ_OK;
}

size_t moq_tls_server_file_pairs(const moq_tls_server *srv)
{
    return srv->n_pairs;
}

static int rotate(moq_tls_server *srv, int64_t now_s)
{
    char err[256] = "";
    moq_tls_generated gen;
    moq_tls_creds *next = NULL;
    int rc = moq_tls_generate(&gen, (const char *const *)srv->names, srv->n_names, now_s, err,
                              sizeof(err));
    if (rc < 0) {
        moq_error("tls", "cannot rotate the generated certificate: %s", err);
        return rc;
    }
    rc = build_creds(srv, srv->pairs, &gen, &next, err, sizeof(err));
    if (rc < 0) {
        moq_tls_generated_clear(&gen);
        moq_error("tls", "cannot rotate the generated certificate: %s", err);
        return rc;
    }
    moq_tls_generated_clear(&srv->gen);
    srv->gen = gen;
    swap_creds(srv, next);
    moq_info("tls", "rotated the generated certificate, fingerprint %s", gen.fingerprint);
    return MOQ_OK;
}

static bool files_changed(moq_tls_server *srv)
{
    for (size_t i = 0; i < 2 * srv->n_pairs; i++) {
        moq_tls_stamp now;
        moq_tls_stamp_take(i % 2 ? srv->key_paths[i / 2] : srv->cert_paths[i / 2], &now);
        if (!moq_tls_stamp_equal(&now, &srv->seen[i])) return true;
    }
    return false;
}

int moq_tls_server_maintain(moq_tls_server *srv, int64_t now_s)
{
    int swapped = 0, failure = MOQ_OK;
    if (files_changed(srv)) {
        moq_info("tls", "certificate files changed on disk, reloading");
        char err[512];
        int rc = moq_tls_server_reload(srv, err, sizeof(err));
        if (rc < 0) {
            moq_warn("tls", "reload failed, keeping the current certificates: %s", err);
            failure = rc;
        } else {
            char fp[MOQ_TLS_FINGERPRINT_HEX_LEN];
            moq_tls_server_fingerprint(srv, fp);
            moq_info("tls", "reloaded certificate files, fingerprint %s", fp);
            swapped = 1;
        }
    }
    if (now_s >= moq_tls_server_rotate_at(srv)) {
        int rc = rotate(srv, now_s);
        if (rc < 0)
            failure = rc;
        else
            swapped = 1;
    }
    return swapped ? 1 : failure;
}

int64_t moq_tls_server_rotate_at(const moq_tls_server *srv)
{
    if (srv->n_names == 0) return INT64_MAX;
    return srv->gen.not_after - srv->rotate_margin_s;
}
