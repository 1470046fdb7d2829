/* Refcounted credentials, fingerprints, and loading certificate/key files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "tls/tls_int.h"
#include "util/err.h"
#include "util/log.h"

void moq_tls_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- fingerprints -------------------------------------------------------------------- */

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

int moq_tls_fingerprint_hex(const gnutls_datum_t *der, char out[MOQ_TLS_FINGERPRINT_HEX_LEN])
{
    uint8_t digest[MOQ_TLS_FINGERPRINT_LEN];
    out[0] = '\0';
    if (!der || !der->data) return MOQ_ERR_INVALID;
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der->data, der->size, digest) < 0) return MOQ_ERR_TLS;
    hex_encode(digest, sizeof(digest), out);
    return MOQ_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int moq_tls_fingerprint_parse(const char *hex, uint8_t out[MOQ_TLS_FINGERPRINT_LEN])
{
    if (!hex) return MOQ_ERR_INVALID;
    size_t n = 0;
    int high = -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ':' && high < 0) continue;
        int v = hex_value(*p);
        if (v < 0) return MOQ_ERR_INVALID;
        if (high < 0) {
            high = v;
            continue;
        }
        if (n == MOQ_TLS_FINGERPRINT_LEN) return MOQ_ERR_INVALID;
        out[n++] = (uint8_t)(high << 4 | v);
        high = -1;
    }
    return n == MOQ_TLS_FINGERPRINT_LEN && high < 0 ? MOQ_OK : MOQ_ERR_INVALID;
}

static int crt_fingerprint(gnutls_x509_crt_t crt, char out[MOQ_TLS_FINGERPRINT_HEX_LEN])
{
    gnutls_datum_t der = {NULL, 0};
    if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0) return MOQ_ERR_TLS;
    int rc = moq_tls_fingerprint_hex(&der, out);
    gnutls_free(der.data);
    return rc;
}

int moq_tls_fingerprint_file(const char *path, char out[MOQ_TLS_FINGERPRINT_HEX_LEN], char *err,
                             size_t errlen)
{
    gnutls_datum_t data;
    gnutls_x509_crt_t *certs = NULL;
    unsigned n = 0;
    out[0] = '\0';
    int rc = moq_tls_read_file(path, "certificate file", &data, err, errlen);
    if (rc < 0) return rc;
    rc = moq_tls_parse_certs(&data, path, "certificate file", &certs, &n, err, errlen);
    free(data.data);
    if (rc < 0) return rc;
    rc = crt_fingerprint(certs[0], out);
    moq_tls_free_certs(certs, n);
    if (rc < 0) moq_tls_errf(err, errlen, "certificate file %s: cannot hash certificate", path);
    return rc;
}

/* ---- files --------------------------------------------------------------------------- */

void moq_tls_stamp_take(const char *path, moq_tls_stamp *st)
{
    struct stat sb;
    memset(st, 0, sizeof(*st));
    if (stat(path, &sb) != 0) return;
    st->exists = true;
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
    st->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

bool moq_tls_stamp_equal(const moq_tls_stamp *a, const moq_tls_stamp *b)
{
    if (a->exists != b->exists) return false;
    if (!a->exists) return true;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

int moq_tls_read_file(const char *path, const char *what, gnutls_datum_t *out, char *err,
                      size_t errlen)
{
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        moq_tls_errf(err, errlen, "%s %s: %s", what, path, strerror(errno));
        return MOQ_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        moq_tls_errf(err, errlen, "%s %s: not a regular file", what, path);
        close(fd);
        return MOQ_ERR_IO;
    }
    if (sb.st_size > MOQ_TLS_MAX_FILE_SIZE) {
        moq_tls_errf(err, errlen, "%s %s: larger than %d bytes", what, path, MOQ_TLS_MAX_FILE_SIZE);
        close(fd);
        return MOQ_ERR_TOO_LARGE;
    }
    /* One spare byte tells us whether the file grew past its stat size while reading. */
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return MOQ_ERR_NOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            moq_tls_errf(err, errlen, "%s %s: %s", what, path, strerror(errno));
            free(buf);
            close(fd);
            return MOQ_ERR_IO;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len == cap) {
            if (cap > MOQ_TLS_MAX_FILE_SIZE) {
                moq_tls_errf(err, errlen, "%s %s: larger than %d bytes", what, path,
                             MOQ_TLS_MAX_FILE_SIZE);
                free(buf);
                close(fd);
                return MOQ_ERR_TOO_LARGE;
            }
            size_t ncap = cap * 2 > MOQ_TLS_MAX_FILE_SIZE + 1 ? MOQ_TLS_MAX_FILE_SIZE + 1 : cap * 2;
            uint8_t *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                close(fd);
                return MOQ_ERR_NOMEM;
            }
            buf = nbuf;
            cap = ncap;
        }
    }
    close(fd);
    if (len == 0) {
        moq_tls_errf(err, errlen, "%s %s: file is empty", what, path);
        free(buf);
        return MOQ_ERR_INVALID;
    }
    out->data = buf;
    out->size = (unsigned)len;
    return MOQ_OK;
}

static bool contains(const gnutls_datum_t *data, const char *needle)
{
    return memmem(data->data, data->size, needle, strlen(needle)) != NULL;
}

static bool looks_pem(const gnutls_datum_t *data)
{
    return contains(data, "-----BEGIN ");
}

void moq_tls_free_certs(gnutls_x509_crt_t *certs, unsigned n)
{
    if (!certs) return;
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(certs[i]);
    gnutls_free(certs);
}

int moq_tls_parse_certs(const gnutls_datum_t *data, const char *path, const char *what,
                        gnutls_x509_crt_t **certs, unsigned *n, char *err, size_t errlen)
{
    *certs = NULL;
    *n = 0;
    if (looks_pem(data)) {
        if (!contains(data, "-----BEGIN CERTIFICATE-----")) {
            moq_tls_errf(err, errlen, "%s %s: no PEM CERTIFICATE block", what, path);
            return MOQ_ERR_INVALID;
        }
        int rc = gnutls_x509_crt_list_import2(certs, n, data, GNUTLS_X509_FMT_PEM, 0);
        if (rc < 0 || *n == 0) {
            moq_tls_errf(err, errlen, "%s %s: invalid PEM certificate (%s)", what, path,
                         rc < 0 ? gnutls_strerror(rc) : "none found");
            moq_tls_free_certs(*certs, *n);
            *certs = NULL;
            *n = 0;
            return MOQ_ERR_INVALID;
        }
        return MOQ_OK;
    }
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) return MOQ_ERR_NOMEM;
    int rc = gnutls_x509_crt_import(crt, data, GNUTLS_X509_FMT_DER);
    if (rc < 0) {
        gnutls_x509_crt_deinit(crt);
        moq_tls_errf(err, errlen, "%s %s: neither PEM nor a DER certificate (%s)", what, path,
                     gnutls_strerror(rc));
        return MOQ_ERR_INVALID;
    }
    *certs = gnutls_malloc(sizeof(**certs));
    if (!*certs) {
        gnutls_x509_crt_deinit(crt);
        return MOQ_ERR_NOMEM;
    }
    (*certs)[0] = crt;
    *n = 1;
    return MOQ_OK;
}

static int parse_key(const gnutls_datum_t *data, const char *path, gnutls_x509_privkey_t *out,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (contains(data, "ENCRYPTED PRIVATE KEY") || contains(data, "Proc-Type: 4,ENCRYPTED")) {
        moq_tls_errf(err, errlen,
                     "private key file %s: encrypted keys are not supported, store it unencrypted",
                     path);
        return MOQ_ERR_UNSUPPORTED;
    }
    bool pem = looks_pem(data);
    if (pem && !contains(data, "PRIVATE KEY-----")) {
        moq_tls_errf(err, errlen, "private key file %s: no PEM PRIVATE KEY block", path);
        return MOQ_ERR_INVALID;
    }
    gnutls_x509_privkey_t key;
    if (gnutls_x509_privkey_init(&key) < 0) return MOQ_ERR_NOMEM;
    int rc = gnutls_x509_privkey_import2(key, data, pem ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER,
                                         NULL, 0);
    if (rc < 0) {
        gnutls_x509_privkey_deinit(key);
        moq_tls_errf(err, errlen, "private key file %s: invalid private key (%s)", path,
                     gnutls_strerror(rc));
        return MOQ_ERR_INVALID;
    }
    *out = key;
    return MOQ_OK;
}

/* The key matches the certificate when both hash to the same public key ID: GnuTLS computes
 * the ID over the SubjectPublicKeyInfo, derived from the private key on one side. */
static bool key_matches_cert(gnutls_x509_privkey_t key, gnutls_x509_crt_t crt)
{
    uint8_t a[64], b[64];
    size_t alen = sizeof(a), blen = sizeof(b);
    if (gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, a, &alen) < 0) return false;
    if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, b, &blen) < 0) return false;
    return alen == blen && memcmp(a, b, alen) == 0;
}

static void warn_validity(gnutls_x509_crt_t leaf, const char *path)
{
    time_t now = time(NULL);
    time_t not_before = gnutls_x509_crt_get_activation_time(leaf);
    time_t not_after = gnutls_x509_crt_get_expiration_time(leaf);
    if (not_after != (time_t)-1 && not_after < now)
        moq_warn("tls", "certificate %s has expired; clients will reject it", path);
    else if (not_before != (time_t)-1 && not_before > now)
        moq_warn("tls", "certificate %s is not valid yet; clients will reject it", path);
}

void moq_tls_pair_clear(moq_tls_pair *pair)
{
    moq_tls_free_certs(pair->chain, pair->chain_len);
    if (pair->key) gnutls_x509_privkey_deinit(pair->key);
    memset(pair, 0, sizeof(*pair));
}

int moq_tls_pair_load(moq_tls_pair *pair, const char *cert_path, const char *key_path, char *err,
                      size_t errlen)
{
    memset(pair, 0, sizeof(*pair));
    gnutls_datum_t data;
    int rc = moq_tls_read_file(cert_path, "certificate file", &data, err, errlen);
    if (rc < 0) return rc;
    rc = moq_tls_parse_certs(&data, cert_path, "certificate file", &pair->chain, &pair->chain_len,
                             err, errlen);
    free(data.data);
    if (rc < 0) goto fail;

    rc = moq_tls_read_file(key_path, "private key file", &data, err, errlen);
    if (rc < 0) goto fail;
    rc = parse_key(&data, key_path, &pair->key, err, errlen);
    gnutls_memset(data.data, 0, data.size);
    free(data.data);
    if (rc < 0) goto fail;

    if (!key_matches_cert(pair->key, pair->chain[0])) {
        moq_tls_errf(err, errlen,
                     "private key file %s does not match certificate file %s (the first "
                     "certificate must be the one the key belongs to)",
                     key_path, cert_path);
        rc = MOQ_ERR_INVALID;
        goto fail;
    }
    rc = crt_fingerprint(pair->chain[0], pair->fingerprint);
    if (rc < 0) {
        moq_tls_errf(err, errlen, "certificate file %s: cannot hash certificate", cert_path);
        goto fail;
    }
    warn_validity(pair->chain[0], cert_path);
    return MOQ_OK;
fail:
    moq_tls_pair_clear(pair);
    return rc;
}

/* ---- credentials --------------------------------------------------------------------- */

static void creds_free(moq_tls_creds *c)
{
    if (c->cred) gnutls_certificate_free_credentials(c->cred);
    free(c->fingerprints);
    free(c);
}

int moq_tls_creds_build(const moq_tls_pair *pairs, size_t n_pairs, const moq_tls_generated *gen,
                        moq_tls_creds **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t count = n_pairs + (gen ? 1 : 0);
    if (count == 0) {
        moq_tls_errf(err, errlen, "no certificate to serve");
        return MOQ_ERR_CONFIG;
    }
    moq_tls_creds *c = calloc(1, sizeof(*c));
    if (!c) return MOQ_ERR_NOMEM;
    atomic_init(&c->refs, 1);
    c->fingerprints = calloc(count, sizeof(*c->fingerprints));
    if (!c->fingerprints || gnutls_certificate_allocate_credentials(&c->cred) < 0) {
        c->cred = NULL;
        creds_free(c);
        return MOQ_ERR_NOMEM;
    }
    for (size_t i = 0; i < n_pairs; i++) {
        int rc = gnutls_certificate_set_x509_key(c->cred, pairs[i].chain, pairs[i].chain_len,
                                                 pairs[i].key);
        if (rc < 0) {
            moq_tls_errf(err, errlen, "cannot use certificate %zu (%s)", i, gnutls_strerror(rc));
            creds_free(c);
            return MOQ_ERR_TLS;
        }
        memcpy(c->fingerprints[c->count++], pairs[i].fingerprint, MOQ_TLS_FINGERPRINT_HEX_LEN);
    }
    if (gen) {
        gnutls_x509_crt_t crt = gen->crt;
        int rc = gnutls_certificate_set_x509_key(c->cred, &crt, 1, gen->key);
        if (rc < 0) {
            moq_tls_errf(err, errlen, "cannot use the generated certificate (%s)",
                         gnutls_strerror(rc));
            creds_free(c);
            return MOQ_ERR_TLS;
        }
        memcpy(c->fingerprints[c->count++], gen->fingerprint, MOQ_TLS_FINGERPRINT_HEX_LEN);
    }
    *out = c;
    return MOQ_OK;
}

moq_tls_creds *moq_tls_creds_ref(moq_tls_creds *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void moq_tls_creds_unref(moq_tls_creds *c)
{
    if (!c) return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) creds_free(c);
}

int moq_tls_creds_attach(moq_tls_creds *c, gnutls_session_t session)
{
    return gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, c->cred) < 0 ? MOQ_ERR_TLS
                                                                                : MOQ_OK;
}

gnutls_certificate_credentials_t moq_tls_creds_gnutls(const moq_tls_creds *c)
{
    return c->cred;
}

size_t moq_tls_creds_count(const moq_tls_creds *c)
{
    return c->count;
}

const char *moq_tls_creds_fingerprint_at(const moq_tls_creds *c, size_t i)
{
    return i < c->count ? c->fingerprints[i] : NULL;
}

const char *moq_tls_creds_fingerprint(const moq_tls_creds *c)
{
    return c->fingerprints[0];
}
