/*
 * JWS signature primitives on GnuTLS: HMAC (HS*), RSASSA-PKCS1-v1_5 (RS*), RSASSA-PSS with
 * salt = hash length (PS*), ECDSA with raw r||s signatures (ES*), and Ed25519 (EdDSA).
 * The algorithm always comes from the key, never from a token.
 */
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "auth/auth_int.h"
#include "util/err.h"

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192

static const char pairwise_probe[] = "moq-relay jwk pairwise consistency check";

bool moq_auth_ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

static gnutls_mac_algorithm_t mac_algo(moq_jwt_alg alg)
{
    switch (alg) {
    case MOQ_ALG_HS256:
        return GNUTLS_MAC_SHA256;
    case MOQ_ALG_HS384:
        return GNUTLS_MAC_SHA384;
    case MOQ_ALG_HS512:
        return GNUTLS_MAC_SHA512;
    default:
        return GNUTLS_MAC_UNKNOWN;
    }
}

static gnutls_sign_algorithm_t sign_algo(moq_jwt_alg alg)
{
    switch (alg) {
    case MOQ_ALG_RS256:
        return GNUTLS_SIGN_RSA_SHA256;
    case MOQ_ALG_RS384:
        return GNUTLS_SIGN_RSA_SHA384;
    case MOQ_ALG_RS512:
        return GNUTLS_SIGN_RSA_SHA512;
    case MOQ_ALG_PS256:
        return GNUTLS_SIGN_RSA_PSS_RSAE_SHA256;
    case MOQ_ALG_PS384:
        return GNUTLS_SIGN_RSA_PSS_RSAE_SHA384;
    case MOQ_ALG_PS512:
        return GNUTLS_SIGN_RSA_PSS_RSAE_SHA512;
    case MOQ_ALG_ES256:
        return GNUTLS_SIGN_ECDSA_SECP256R1_SHA256;
    case MOQ_ALG_ES384:
        return GNUTLS_SIGN_ECDSA_SECP384R1_SHA384;
    case MOQ_ALG_EDDSA:
        return GNUTLS_SIGN_EDDSA_ED25519;
    default:
        return GNUTLS_SIGN_UNKNOWN;
    }
}

/* Coordinate / scalar size of the EC curve an ES algorithm uses. */
static size_t ec_size(moq_jwt_alg alg)
{
    return alg == MOQ_ALG_ES256 ? 32 : alg == MOQ_ALG_ES384 ? 48 : 0;
}

static gnutls_ecc_curve_t ec_curve(moq_jwt_alg alg)
{
    return alg == MOQ_ALG_ES256   ? GNUTLS_ECC_CURVE_SECP256R1
           : alg == MOQ_ALG_ES384 ? GNUTLS_ECC_CURVE_SECP384R1
                                  : GNUTLS_ECC_CURVE_INVALID;
}

size_t moq_jws_fixed_sig_len(moq_jwt_alg alg)
{
    gnutls_mac_algorithm_t mac = mac_algo(alg);
    if (mac != GNUTLS_MAC_UNKNOWN) return gnutls_hmac_get_len(mac);
    if (ec_size(alg)) return 2 * ec_size(alg);
    if (alg == MOQ_ALG_EDDSA) return 64;
    return 0;
}

static gnutls_datum_t datum(const moq_bytes *b)
{
    gnutls_datum_t d = {b->p, (unsigned int)b->n};
    return d;
}

static size_t significant_bits(const moq_bytes *b)
{
    size_t i = 0;
    while (i < b->n && b->p[i] == 0)
        i++;
    if (i == b->n) return 0;
    size_t bits = (b->n - i) * 8;
    for (uint8_t top = b->p[i]; !(top & 0x80); top <<= 1)
        bits--;
    return bits;
}

static int pairwise_check(moq_jwk *key)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    int rc = moq_jws_sign(key, (const uint8_t *)pairwise_probe, sizeof(pairwise_probe) - 1, &sig,
                          &sig_len);
    if (rc == 0)
        rc = moq_jws_verify(key, (const uint8_t *)pairwise_probe, sizeof(pairwise_probe) - 1, sig,
                            sig_len);
    free(sig);
    return rc;
}

static bool odd(const moq_bytes *b)
{
    return b->n && (b->p[b->n - 1] & 1);
}

/* Whether the private parts are in proportion with the modulus and each other, as in
 * every real key (n = pq, dp and dq below their prime, qi below p, odd primes). nettle
 * asserts these while signing instead of failing, so anything else would abort us. */
static bool rsa_private_proportionate(const moq_jwk *key)
{
    size_t n = significant_bits(&key->n), p = significant_bits(&key->p),
           q = significant_bits(&key->q);
    return p && q && p + q <= n + 1 && odd(&key->p) && odd(&key->q) &&
           significant_bits(&key->dp) <= p && significant_bits(&key->dq) <= q &&
           significant_bits(&key->qi) <= p;
}

static int import_rsa(moq_jwk *key, moq_auth_error *err)
{
    size_t bits = significant_bits(&key->n);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "RSA modulus has %zu bits (need %d..%d)", bits, RSA_MIN_BITS,
                             RSA_MAX_BITS);
    if (significant_bits(&key->e) == 0 || key->e.n > 8)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "invalid RSA public exponent");
    gnutls_datum_t n = datum(&key->n), e = datum(&key->e);
    if (gnutls_pubkey_init(&key->pub) < 0 || gnutls_pubkey_import_rsa_raw(key->pub, &n, &e) < 0)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "invalid RSA public key");
    if (!key->d.p) return 0;
    if (!rsa_private_proportionate(key))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "invalid RSA private key");
    gnutls_datum_t d = datum(&key->d), p = datum(&key->p), q = datum(&key->q), u = datum(&key->qi),
                   e1 = datum(&key->dp), e2 = datum(&key->dq);
    if (gnutls_privkey_init(&key->priv) < 0 ||
        gnutls_privkey_import_rsa_raw(key->priv, &n, &e, &d, &p, &q, &u, &e1, &e2) < 0)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "invalid RSA private key");
    return 0;
}

static int import_ec(moq_jwk *key, gnutls_ecc_curve_t curve, size_t size, bool has_y,
                     moq_auth_error *err)
{
    const char *name = gnutls_ecc_curve_get_name(curve);
    if (key->x.n != size || (has_y && key->y.n != size) || (key->d.p && key->d.n != size))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "invalid coordinate length for %s", name);
    gnutls_datum_t x = datum(&key->x), y = datum(&key->y);
    if (gnutls_pubkey_init(&key->pub) < 0 ||
        gnutls_pubkey_import_ecc_raw(key->pub, curve, &x, has_y ? &y : NULL) < 0)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID, "invalid %s public key",
                             name);
    if (!key->d.p) return 0;
    gnutls_datum_t d = datum(&key->d);
    if (gnutls_privkey_init(&key->priv) < 0 ||
        gnutls_privkey_import_ecc_raw(key->priv, curve, &x, has_y ? &y : NULL, &d) < 0)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID, "invalid %s private key",
                             name);
    return 0;
}

int moq_jws_import(moq_jwk *key, moq_auth_error *err)
{
    int rc = 0;
    switch (key->kty) {
    case MOQ_KTY_OCT:
        return 0;
    case MOQ_KTY_RSA:
        rc = import_rsa(key, err);
        break;
    case MOQ_KTY_EC:
        rc = import_ec(key, ec_curve(key->alg), ec_size(key->alg), true, err);
        break;
    case MOQ_KTY_OKP:
        rc = import_ec(key, GNUTLS_ECC_CURVE_ED25519, 32, false, err);
        break;
    }
    if (rc == 0 && key->priv && pairwise_check(key) != 0)
        rc = moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                           "private and public key material do not match");
    return rc;
}

/* Copy a GnuTLS-allocated integer into b, left-padded or trimmed to size (0: as is). */
static int take_fixed(moq_bytes *b, const gnutls_datum_t *src, size_t size)
{
    const uint8_t *p = src->data;
    size_t n = src->size;
    while (size && n > size && *p == 0) {
        p++;
        n--;
    }
    if (size && n > size) return MOQ_ERR_INVALID;
    size_t out_len = size ? size : n;
    b->p = calloc(1, out_len ? out_len : 1);
    if (!b->p) return MOQ_ERR_NOMEM;
    memcpy(b->p + (out_len - n), p, n);
    b->n = out_len;
    return 0;
}

static void free_datums(gnutls_datum_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i].data) {
            gnutls_memset(d[i].data, 0, d[i].size);
            gnutls_free(d[i].data);
        }
    }
}

static int generate_rsa(moq_jwk *key, gnutls_privkey_t pk)
{
    gnutls_datum_t v[8] = {{0}};
    int rc = MOQ_ERR_TLS;
    if (gnutls_privkey_generate2(pk, GNUTLS_PK_RSA, 2048, 0, NULL, 0) < 0) goto out;
    if (gnutls_privkey_export_rsa_raw2(pk, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                                       GNUTLS_EXPORT_FLAG_NO_LZ) < 0)
        goto out;
    moq_bytes *dst[8] = {&key->n, &key->e, &key->d, &key->p, &key->q, &key->qi, &key->dp, &key->dq};
    rc = 0;
    for (size_t i = 0; i < 8 && rc == 0; i++)
        rc = take_fixed(dst[i], &v[i], 0);
out:
    free_datums(v, 8);
    return rc;
}

static int generate_ec(moq_jwk *key, gnutls_privkey_t pk, gnutls_pk_algorithm_t algo,
                       gnutls_ecc_curve_t curve, size_t size)
{
    gnutls_datum_t x = {0}, y = {0}, d = {0};
    gnutls_ecc_curve_t got;
    int rc = MOQ_ERR_TLS;
    if (gnutls_privkey_generate2(pk, algo, GNUTLS_CURVE_TO_BITS(curve), 0, NULL, 0) < 0 ||
        gnutls_privkey_export_ecc_raw2(pk, &got, &x, algo == GNUTLS_PK_ECDSA ? &y : NULL, &d, 0) <
            0)
        goto out;
    rc = take_fixed(&key->x, &x, size);
    if (!rc && algo == GNUTLS_PK_ECDSA) rc = take_fixed(&key->y, &y, size);
    if (!rc) rc = take_fixed(&key->d, &d, size);
out:
    free_datums(&x, 1);
    free_datums(&y, 1);
    free_datums(&d, 1);
    return rc;
}

int moq_jws_generate(moq_jwk *key, moq_auth_error *err)
{
    gnutls_mac_algorithm_t mac = mac_algo(key->alg);
    if (mac != GNUTLS_MAC_UNKNOWN) {
        /* As upstream: the secret is as long as the hash (32/48/64 bytes). */
        key->k.n = gnutls_hmac_get_len(mac);
        key->k.p = malloc(key->k.n);
        if (!key->k.p) return MOQ_ERR_NOMEM;
        if (gnutls_rnd(GNUTLS_RND_KEY, key->k.p, key->k.n) < 0)
            return moq_auth_fail(err, MOQ_ERR_TLS, MOQ_AUTH_R_NONE, "random generator failed");
        return 0;
    }
    gnutls_privkey_t pk;
    if (gnutls_privkey_init(&pk) < 0) return MOQ_ERR_NOMEM;
    int rc;
    if (key->kty == MOQ_KTY_RSA)
        rc = generate_rsa(key, pk);
    else if (key->kty == MOQ_KTY_EC)
        rc = generate_ec(key, pk, GNUTLS_PK_ECDSA, ec_curve(key->alg), ec_size(key->alg));
    else
        rc = generate_ec(key, pk, GNUTLS_PK_EDDSA_ED25519, GNUTLS_ECC_CURVE_ED25519, 32);
    gnutls_privkey_deinit(pk);
    if (rc)
        return moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "key generation failed for %s",
                             moq_jwt_alg_name(key->alg));
    return 0;
}

static int hmac(const moq_jwk *key, const uint8_t *data, size_t len, uint8_t *out)
{
    return gnutls_hmac_fast(mac_algo(key->alg), key->k.p, key->k.n, data, len, out) < 0
               ? MOQ_ERR_TLS
               : 0;
}

/* DER ECDSA signature -> JWS r||s, each left-padded to size. */
static int der_to_raw(const gnutls_datum_t *der, size_t size, uint8_t **out)
{
    gnutls_datum_t r = {0}, s = {0};
    if (gnutls_decode_rs_value(der, &r, &s) < 0) return MOQ_ERR_TLS;
    moq_bytes rb = {0}, sb = {0};
    int rc = take_fixed(&rb, &r, size);
    if (!rc) rc = take_fixed(&sb, &s, size);
    if (!rc) {
        *out = malloc(2 * size);
        if (*out) {
            memcpy(*out, rb.p, size);
            memcpy(*out + size, sb.p, size);
        } else {
            rc = MOQ_ERR_NOMEM;
        }
    }
    free(rb.p);
    free(sb.p);
    gnutls_free(r.data);
    gnutls_free(s.data);
    return rc;
}

int moq_jws_sign(const moq_jwk *key, const uint8_t *data, size_t len, uint8_t **sig,
                 size_t *sig_len)
{
    *sig = NULL;
    *sig_len = 0;
    if (key->kty == MOQ_KTY_OCT) {
        size_t n = moq_jws_fixed_sig_len(key->alg);
        uint8_t *out = malloc(n);
        if (!out) return MOQ_ERR_NOMEM;
        if (hmac(key, data, len, out) != 0) {
            free(out);
            return MOQ_ERR_TLS;
        }
        *sig = out;
        *sig_len = n;
        return 0;
    }
    if (!key->priv) return MOQ_ERR_INVALID;
    gnutls_datum_t msg = {(unsigned char *)data, (unsigned int)len}, out = {0};
    if (gnutls_privkey_sign_data2(key->priv, sign_algo(key->alg), 0, &msg, &out) < 0)
        return MOQ_ERR_TLS;
    int rc = 0;
    if (key->kty == MOQ_KTY_EC) {
        rc = der_to_raw(&out, ec_size(key->alg), sig);
        if (!rc) *sig_len = 2 * ec_size(key->alg);
    } else {
        *sig = malloc(out.size);
        if (*sig) {
            memcpy(*sig, out.data, out.size);
            *sig_len = out.size;
        } else {
            rc = MOQ_ERR_NOMEM;
        }
    }
    gnutls_free(out.data);
    return rc;
}

/* Strip leading zero bytes (keeping one) so the DER integer is minimal. */
static gnutls_datum_t trim_integer(const uint8_t *p, size_t n)
{
    while (n > 1 && *p == 0) {
        p++;
        n--;
    }
    gnutls_datum_t d = {(unsigned char *)p, (unsigned int)n};
    return d;
}

static int verify_ecdsa(const moq_jwk *key, const gnutls_datum_t *msg, const uint8_t *sig,
                        size_t sig_len)
{
    size_t size = ec_size(key->alg);
    if (sig_len != 2 * size) return MOQ_ERR_AUTH;
    gnutls_datum_t r = trim_integer(sig, size), s = trim_integer(sig + size, size), der = {0};
    if (gnutls_encode_rs_value(&der, &r, &s) < 0) return MOQ_ERR_AUTH;
    int ok = gnutls_pubkey_verify_data2(key->pub, sign_algo(key->alg), 0, msg, &der);
    gnutls_free(der.data);
    return ok < 0 ? MOQ_ERR_AUTH : 0;
}

int moq_jws_verify(const moq_jwk *key, const uint8_t *data, size_t len, const uint8_t *sig,
                   size_t sig_len)
{
    if (key->kty == MOQ_KTY_OCT) {
        uint8_t mac[64];
        size_t n = moq_jws_fixed_sig_len(key->alg);
        if (sig_len != n || hmac(key, data, len, mac) != 0) return MOQ_ERR_AUTH;
        bool ok = moq_auth_ct_equal(mac, sig, n);
        gnutls_memset(mac, 0, sizeof(mac));
        return ok ? 0 : MOQ_ERR_AUTH;
    }
    if (!key->pub) return MOQ_ERR_AUTH;
    gnutls_datum_t msg = {(unsigned char *)data, (unsigned int)len};
    if (key->kty == MOQ_KTY_EC) return verify_ecdsa(key, &msg, sig, sig_len);
    size_t fixed = moq_jws_fixed_sig_len(key->alg);
    if (fixed && sig_len != fixed) return MOQ_ERR_AUTH;
    gnutls_datum_t s = {(unsigned char *)sig, (unsigned int)sig_len};
    return gnutls_pubkey_verify_data2(key->pub, sign_algo(key->alg), 0, &msg, &s) < 0 ? MOQ_ERR_AUTH
                                                                                      : 0;
}
