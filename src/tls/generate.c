/*
 * Self-signed certificates for development and WebTransport certificate pinning.
 *
 * What Chrome requires of a certificate pinned through serverCertificateHashes: X.509 v3,
 * not_after - not_before <= 14 days, the current time inside that window, and a non-RSA
 * key (ECDSA P-256 is the one every browser must support). Chrome checks neither names nor
 * chain for pinned certificates, but native clients that verify normally (or pin and then
 * check names) expect the usual server profile, so we also set: SANs for each name,
 * basicConstraints CA:FALSE, keyUsage digitalSignature, extKeyUsage serverAuth.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "tls/tls_int.h"
#include "util/err.h"

int moq_tls_parse_ip(const char *name, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        if (len - 2 >= sizeof(buf)) return 0;
        memcpy(buf, name + 1, len - 2);
        buf[len - 2] = '\0';
        return inet_pton(AF_INET6, buf, out) == 1 ? 16 : 0;
    }
    if (inet_pton(AF_INET, name, out) == 1) return 4;
    if (inet_pton(AF_INET6, name, out) == 1) return 16;
    return 0;
}

/* A DNS SAN is an IA5String; we accept printable ASCII without spaces (wildcards such as
 * "*.example.com" included) and leave finer rules to the clients. */
static bool valid_dns_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253) return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] <= ' ' || name[i] > '~') return false;
    return true;
}

void moq_tls_generated_clear(moq_tls_generated *gen)
{
    if (gen->crt) gnutls_x509_crt_deinit(gen->crt);
    if (gen->key) gnutls_x509_privkey_deinit(gen->key);
    memset(gen, 0, sizeof(*gen));
}

static int set_names(gnutls_x509_crt_t crt, const char *const *names, size_t n, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t ip[16];
        int iplen = moq_tls_parse_ip(names[i], ip);
        int rc;
        if (iplen > 0) {
            rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip,
                                                      (unsigned)iplen, GNUTLS_FSAN_APPEND);
        } else if (valid_dns_name(names[i])) {
            rc = gnutls_x509_crt_set_subject_alt_name(
                crt, GNUTLS_SAN_DNSNAME, names[i], (unsigned)strlen(names[i]), GNUTLS_FSAN_APPEND);
        } else {
            moq_tls_errf(err, errlen,
                         "tls generate: \"%s\" is neither an IP address nor a DNS name", names[i]);
            return MOQ_ERR_CONFIG;
        }
        if (rc < 0) {
            moq_tls_errf(err, errlen, "tls generate: cannot add name \"%s\" (%s)", names[i],
                         gnutls_strerror(rc));
            return MOQ_ERR_TLS;
        }
    }
    /* The common name is informational (clients match SANs); X.520 caps it at 64 chars. */
    const char *cn = strlen(names[0]) <= 64 ? names[0] : "moq-relay self-signed";
    if (gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                      (unsigned)strlen(cn)) < 0)
        return MOQ_ERR_TLS;
    return MOQ_OK;
}

static int set_serial(gnutls_x509_crt_t crt)
{
    uint8_t serial[16];
    if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0) return MOQ_ERR_TLS;
    /* positive and minimally encoded: first byte in 0x01..0x7f */
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x01);
    return gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ? MOQ_ERR_TLS : MOQ_OK;
}

static int set_profile(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, int64_t now_s)
{
    time_t not_before = (time_t)(now_s - MOQ_TLS_GENERATED_BACKDATE_S);
    time_t not_after = not_before + MOQ_TLS_GENERATED_VALIDITY_S;
    uint8_t key_id[64];
    size_t key_id_len = sizeof(key_id);
    if (gnutls_x509_crt_set_version(crt, 3) < 0 || set_serial(crt) < 0 ||
        gnutls_x509_crt_set_activation_time(crt, not_before) < 0 ||
        gnutls_x509_crt_set_expiration_time(crt, not_after) < 0 ||
        gnutls_x509_crt_set_key(crt, key) < 0 ||
        gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
        gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
        gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
        gnutls_x509_crt_get_key_id(crt, 0, key_id, &key_id_len) < 0 ||
        gnutls_x509_crt_set_subject_key_id(crt, key_id, key_id_len) < 0)
        return MOQ_ERR_TLS;
    return MOQ_OK;
}

int moq_tls_generate(moq_tls_generated *gen, const char *const *names, size_t n, int64_t now_s,
                     char *err, size_t errlen)
{
    memset(gen, 0, sizeof(*gen));
    if (n == 0) {
        moq_tls_errf(err, errlen, "tls generate: no names given");
        return MOQ_ERR_CONFIG;
    }
    int rc = MOQ_ERR_NOMEM;
    if (gnutls_x509_privkey_init(&gen->key) < 0) {
        gen->key = NULL;
        goto fail;
    }
    if (gnutls_x509_crt_init(&gen->crt) < 0) {
        gen->crt = NULL;
        goto fail;
    }
    rc = MOQ_ERR_TLS;
    int grc = gnutls_x509_privkey_generate(gen->key, GNUTLS_PK_ECDSA,
                                           GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (grc < 0) {
        moq_tls_errf(err, errlen, "tls generate: key generation failed (%s)", gnutls_strerror(grc));
        goto fail;
    }
    rc = set_names(gen->crt, names, n, err, errlen);
    if (rc < 0) goto fail;
    rc = set_profile(gen->crt, gen->key, now_s);
    if (rc < 0) {
        moq_tls_errf(err, errlen, "tls generate: cannot build the certificate");
        goto fail;
    }
    grc = gnutls_x509_crt_sign2(gen->crt, gen->crt, gen->key, GNUTLS_DIG_SHA256, 0);
    if (grc < 0) {
        moq_tls_errf(err, errlen, "tls generate: signing failed (%s)", gnutls_strerror(grc));
        rc = MOQ_ERR_TLS;
        goto fail;
    }
    gnutls_datum_t der = {NULL, 0};
    if (gnutls_x509_crt_export2(gen->crt, GNUTLS_X509_FMT_DER, &der) < 0) {
        rc = MOQ_ERR_TLS;
        goto fail;
    }
    rc = moq_tls_fingerprint_hex(&der, gen->fingerprint);
    gnutls_free(der.data);
    if (rc < 0) goto fail;
    gen->not_after = now_s - MOQ_TLS_GENERATED_BACKDATE_S + MOQ_TLS_GENERATED_VALIDITY_S;
    return MOQ_OK;
fail:
    moq_tls_generated_clear(gen);
    return rc;
}
