/* Unit tests for src/auth keys and tokens: every algorithm, JWK forms, and every way a
 * token must be refused (forged in-process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/crypto.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "util/err.h"

#define NOW 1700000000

static char *read_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "../fixtures/auth/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return strdup(buf);
}

static moq_jwk *parse_key(const char *text)
{
    moq_jwk *key = NULL;
    moq_auth_error err = {0};
    int rc = moq_jwk_parse(text, strlen(text), &key, &err);
    if (rc) fail_msg("key did not parse: %s", err.msg);
    return key;
}

static int parse_key_err(const char *text, moq_auth_error *err)
{
    moq_jwk *key = NULL;
    int rc = moq_jwk_parse(text, strlen(text), &key, err);
    if (rc == 0) moq_jwk_unref(key);
    assert_null(rc == 0 ? NULL : key);
    return rc;
}

static void claims_basic(moq_claims *c)
{
    moq_claims_init(c);
    assert_int_equal(moq_claims_set_root(c, "room/123"), 0);
    assert_int_equal(moq_strlist_push(&c->publish, "alice"), 0);
    assert_int_equal(moq_strlist_push(&c->subscribe, ""), 0);
}

static char *sign_ok(const moq_jwk *key, const moq_claims *c)
{
    char *token = NULL;
    moq_auth_error err = {0};
    int rc = moq_jwt_sign(key, c, &token, &err);
    if (rc) fail_msg("sign failed: %s", err.msg);
    /* A heap copy: GCC cannot tell that &token did not end up in token. */
    char *copy = strdup(token);
    free(token);
    return copy;
}

/* Verify expecting refusal with the given reason. */
static void verify_refused(const moq_jwk *key, const char *token, int64_t now, int reason)
{
    moq_claims out;
    moq_auth_error err = {0};
    int rc = moq_jwt_verify(key, token, strlen(token), now, &out, &err);
    if (rc != MOQ_ERR_AUTH || err.reason != reason)
        fail_msg("expected refusal '%s', got rc=%d reason '%s' (%s)", moq_auth_reason_name(reason),
                 rc, moq_auth_reason_name(err.reason), err.msg);
    assert_null(out.root);
    assert_int_equal(out.publish.len + out.subscribe.len, 0);
}

static void verify_accepted(const moq_jwk *key, const char *token, int64_t now, moq_claims *out)
{
    moq_auth_error err = {0};
    int rc = moq_jwt_verify(key, token, strlen(token), now, out, &err);
    if (rc) fail_msg("verify failed: %s (%s)", err.msg, moq_auth_reason_name(err.reason));
}

/* header.payload.signature from raw JSON and raw signature bytes. */
static char *forge(const char *header, const char *payload, const uint8_t *sig, size_t sig_len)
{
    char *h = moq_b64url_encode((const uint8_t *)header, strlen(header));
    char *p = moq_b64url_encode((const uint8_t *)payload, strlen(payload));
    char *s = moq_b64url_encode(sig, sig_len);
    size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return out;
}

/* HS256-sign header.payload with an arbitrary secret. */
static char *forge_hs256(const char *header, const char *payload, const void *secret,
                         size_t secret_len)
{
    char *unsigned_tok = forge(header, payload, (const uint8_t *)"", 0);
    size_t signing_len = strlen(unsigned_tok) - 1; /* drop the trailing '.' */
    uint8_t mac[32];
    assert_int_equal(
        gnutls_hmac_fast(GNUTLS_MAC_SHA256, secret, secret_len, unsigned_tok, signing_len, mac), 0);
    char *s = moq_b64url_encode(mac, sizeof(mac));
    char *out = malloc(signing_len + strlen(s) + 2);
    memcpy(out, unsigned_tok, signing_len);
    sprintf(out + signing_len, ".%s", s);
    free(unsigned_tok);
    free(s);
    return out;
}

/* ---- shared keys (RSA generation is slow: once per run) ---- */

static moq_jwk *rsa_key;

static int setup_rsa(void **state)
{
    moq_auth_error err = {0};
    return moq_jwk_generate(MOQ_ALG_RS256, "rsa", &rsa_key, &err);
}

static int teardown_rsa(void **state)
{
    moq_jwk_unref(rsa_key);
    return 0;
}

/* The same RSA material under another algorithm name. */
static moq_jwk *rsa_as(moq_jwt_alg alg)
{
    char *json = moq_jwk_to_json(rsa_key, false);
    char *at = strstr(json, "\"RS256\"");
    assert_non_null(at);
    memcpy(at + 1, moq_jwt_alg_name(alg), 5);
    moq_jwk *key = parse_key(json);
    free(json);
    return key;
}

static moq_jwk *key_for(moq_jwt_alg alg)
{
    if (alg >= MOQ_ALG_RS256 && alg <= MOQ_ALG_PS512) return rsa_as(alg);
    moq_jwk *key = NULL;
    moq_auth_error err = {0};
    assert_int_equal(moq_jwk_generate(alg, "test-key", &key, &err), 0);
    return key;
}

/* ---- algorithms ---- */

static void every_algorithm_round_trips(void **state)
{
    for (int alg = 0; alg < MOQ_ALG_COUNT; alg++) {
        moq_jwk *key = key_for((moq_jwt_alg)alg);
        assert_int_equal(moq_jwk_alg(key), alg);
        moq_claims c;
        claims_basic(&c);
        c.has_exp = true;
        c.exp = NOW + 60;
        char *token = sign_ok(key, &c);

        /* The header names the algorithm and kid exactly as upstream writes them. */
        moq_jwt_header h;
        assert_int_equal(moq_jwt_header_parse(token, strlen(token), &h, NULL), 0);
        assert_int_equal(h.alg, alg);
        assert_non_null(h.kid);
        moq_jwt_header_free(&h);

        moq_claims out;
        verify_accepted(key, token, NOW, &out);
        assert_string_equal(out.root, "room/123");
        assert_int_equal(out.publish.len, 1);
        assert_string_equal(out.publish.v[0], "alice");
        assert_int_equal(out.subscribe.len, 1);
        assert_string_equal(out.subscribe.v[0], "");
        assert_true(out.has_exp);
        assert_int_equal(out.exp, NOW + 60);
        moq_claims_free(&out);

        if (alg >= MOQ_ALG_ES256) {
            /* The public half verifies, cannot sign, and carries no secret. */
            moq_jwk *pub;
            assert_int_equal(moq_jwk_public(key, &pub, NULL), 0);
            assert_false(moq_jwk_is_private(pub));
            assert_int_equal(moq_jwk_ops(pub), MOQ_KEYOP_VERIFY);
            verify_accepted(pub, token, NOW, &out);
            moq_claims_free(&out);
            char *t2 = NULL;
            moq_auth_error err = {0};
            assert_int_equal(moq_jwt_sign(pub, &c, &t2, &err), MOQ_ERR_AUTH);
            assert_int_equal(err.reason, MOQ_AUTH_R_KEY_OPS);
            char *json = moq_jwk_to_json(pub, false);
            assert_null(strstr(json, "\"d\""));
            free(json);
            moq_jwk_unref(pub);
        } else {
            moq_jwk *pub = NULL;
            assert_int_not_equal(moq_jwk_public(key, &pub, NULL), 0);
            assert_null(pub);
        }
        free(token);
        moq_claims_free(&c);
        moq_jwk_unref(key);
    }
}

static void fixed_signature_sizes(void **state)
{
    static const struct {
        moq_jwt_alg alg;
        size_t sig;
    } cases[] = {{MOQ_ALG_HS256, 32}, {MOQ_ALG_HS384, 48}, {MOQ_ALG_HS512, 64},
                 {MOQ_ALG_ES256, 64}, {MOQ_ALG_ES384, 96}, {MOQ_ALG_EDDSA, 64}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        moq_jwk *key = key_for(cases[i].alg);
        moq_claims c;
        claims_basic(&c);
        char *token = sign_ok(key, &c);
        const char *sig = strrchr(token, '.') + 1;
        uint8_t *raw;
        size_t raw_len;
        assert_int_equal(moq_b64url_decode_strict(sig, strlen(sig), &raw, &raw_len), 0);
        assert_int_equal(raw_len, cases[i].sig);
        free(raw);
        free(token);
        moq_claims_free(&c);
        moq_jwk_unref(key);
    }
}

static void cross_algorithm_fails(void **state)
{
    moq_jwk *hs256 = key_for(MOQ_ALG_HS256), *hs384 = key_for(MOQ_ALG_HS384);
    moq_jwk *rs = rsa_as(MOQ_ALG_RS256), *ps = rsa_as(MOQ_ALG_PS256);
    moq_claims c;
    claims_basic(&c);
    char *t1 = sign_ok(hs256, &c), *t2 = sign_ok(rs, &c);
    verify_refused(hs384, t1, NOW, MOQ_AUTH_R_ALGORITHM);
    /* Same RSA material, other padding: the algorithm is the key's, not the token's. */
    verify_refused(ps, t2, NOW, MOQ_AUTH_R_ALGORITHM);
    /* And another HS256 key does not verify it. */
    moq_jwk *other = key_for(MOQ_ALG_HS256);
    verify_refused(other, t1, NOW, MOQ_AUTH_R_SIGNATURE);
    free(t1);
    free(t2);
    moq_claims_free(&c);
    moq_jwk_unref(hs256);
    moq_jwk_unref(hs384);
    moq_jwk_unref(rs);
    moq_jwk_unref(ps);
    moq_jwk_unref(other);
}

/* ---- rejections ---- */

static const char payload_ok[] = "{\"root\":\"demo\",\"put\":[\"\"],\"get\":[\"\"]}";

static void alg_none_rejected(void **state)
{
    moq_jwk *key = key_for(MOQ_ALG_HS256);
    const char *headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}",
                             "{\"alg\":\"NONE\",\"kid\":\"test-key\"}"};
    for (size_t i = 0; i < 3; i++) {
        char *t = forge(headers[i], payload_ok, (const uint8_t *)"", 0);
        verify_refused(key, t, NOW, MOQ_AUTH_R_ALGORITHM);
        free(t);
        /* Even with a bogus signature attached. */
        t = forge(headers[i], payload_ok, (const uint8_t *)"xx", 2);
        verify_refused(key, t, NOW, MOQ_AUTH_R_ALGORITHM);
        free(t);
    }
    char *t = forge("{\"alg\":\"HS1\"}", payload_ok, (const uint8_t *)"x", 1);
    verify_refused(key, t, NOW, MOQ_AUTH_R_ALGORITHM);
    free(t);
    moq_jwk_unref(key);
}

/* The classic confusion: an attacker HMACs a token with the public key bytes and
 * hopes the verifier takes "alg" from the token. */
static void hmac_with_public_key_rejected(void **state)
{
    moq_jwk *pub;
    assert_int_equal(moq_jwk_public(rsa_key, &pub, NULL), 0);
    gnutls_datum_t pem = {0};
    assert_int_equal(gnutls_pubkey_export2(pub->pub, GNUTLS_X509_FMT_PEM, &pem), 0);
    char *pub_json = moq_jwk_to_json(pub, false);

    const void *secrets[] = {pem.data, pub_json};
    size_t lens[] = {pem.size, strlen(pub_json)};
    for (size_t i = 0; i < 2; i++) {
        char *t = forge_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa\"}", payload_ok,
                              secrets[i], lens[i]);
        verify_refused(pub, t, NOW, MOQ_AUTH_R_ALGORITHM);
        verify_refused(rsa_key, t, NOW, MOQ_AUTH_R_ALGORITHM);
        free(t);
    }
    /* Same for EC and Ed25519 public keys. */
    moq_jwk *ec = key_for(MOQ_ALG_ES256), *ed = key_for(MOQ_ALG_EDDSA);
    moq_jwk *asym[] = {ec, ed};
    for (size_t i = 0; i < 2; i++) {
        char *json = moq_jwk_to_json(asym[i], false);
        char *t = forge_hs256("{\"alg\":\"HS256\"}", payload_ok, json, strlen(json));
        verify_refused(asym[i], t, NOW, MOQ_AUTH_R_ALGORITHM);
        free(t);
        free(json);
    }
    /* A token whose header claims the key's algorithm but carries an HMAC is just a
     * bad signature. */
    char *t = forge_hs256("{\"alg\":\"RS256\"}", payload_ok, pem.data, pem.size);
    verify_refused(pub, t, NOW, MOQ_AUTH_R_SIGNATURE);
    free(t);
    gnutls_free(pem.data);
    free(pub_json);
    moq_jwk_unref(pub);
    moq_jwk_unref(ec);
    moq_jwk_unref(ed);
}

static void tampering_rejected(void **state)
{
    moq_jwt_alg algs[] = {MOQ_ALG_HS256, MOQ_ALG_ES256, MOQ_ALG_EDDSA, MOQ_ALG_RS256};
    for (size_t i = 0; i < 4; i++) {
        moq_jwk *key = key_for(algs[i]);
        moq_claims c;
        claims_basic(&c);
        char *token = sign_ok(key, &c);
        char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');

        /* Swap in a payload granting more, keeping header and signature. */
        char *bigger = moq_b64url_encode((const uint8_t *)payload_ok, strlen(payload_ok));
        size_t n = strlen(token) + strlen(bigger) + 1;
        char *forged = malloc(n);
        snprintf(forged, n, "%.*s.%s%s", (int)(dot1 - token), token, bigger, dot2);
        verify_refused(key, forged, NOW, MOQ_AUTH_R_SIGNATURE);

        /* Flip one bit of the signature. */
        char *flipped = strdup(token);
        char *s = flipped + (dot2 - token) + 2;
        *s = *s == 'A' ? 'B' : 'A';
        verify_refused(key, flipped, NOW, MOQ_AUTH_R_SIGNATURE);

        /* Drop the last signature byte (re-encoded, so only the length is wrong). */
        uint8_t *sig;
        size_t sig_len;
        assert_int_equal(moq_b64url_decode_strict(dot2 + 1, strlen(dot2 + 1), &sig, &sig_len), 0);
        char *short_sig = moq_b64url_encode(sig, sig_len - 1);
        n = strlen(token) + 1;
        char *truncated = malloc(n);
        snprintf(truncated, n, "%.*s.%s", (int)(dot2 - token), token, short_sig);
        verify_refused(key, truncated, NOW, MOQ_AUTH_R_SIGNATURE);
        free(sig);
        free(short_sig);
        free(truncated);
        free(bigger);
        free(forged);
        free(flipped);
        free(token);
        moq_claims_free(&c);
        moq_jwk_unref(key);
    }
}

static void expiry(void **state)
{
    moq_jwk *key = key_for(MOQ_ALG_HS256);
    moq_claims c;
    claims_basic(&c);
    c.has_exp = true;
    c.exp = NOW;
    char *token = sign_ok(key, &c);
    moq_claims out;
    /* exp == now is still valid; one second later it is not (no skew, as upstream). */
    verify_accepted(key, token, NOW, &out);
    assert_int_equal(out.exp, NOW);
    moq_claims_free(&out);
    verify_refused(key, token, NOW + 1, MOQ_AUTH_R_EXPIRED);
    verify_refused(key, token, NOW + 86400, MOQ_AUTH_R_EXPIRED);
    free(token);

    /* exp: null is no expiry; a string or float exp is malformed. */
    const char *payloads[] = {"{\"root\":\"a\",\"put\":\"\",\"exp\":null}",
                              "{\"root\":\"a\",\"put\":\"\",\"exp\":\"1\"}",
                              "{\"root\":\"a\",\"put\":\"\",\"exp\":1.5}"};
    moq_claims_free(&c);
    for (size_t i = 0; i < 3; i++) {
        /* Sign the raw payload with the key's secret to reach the claims parser. */
        char *t = forge_hs256("{\"alg\":\"HS256\"}", payloads[i], key->k.p, key->k.n);
        if (i == 0) {
            verify_accepted(key, t, NOW, &out);
            assert_false(out.has_exp);
            moq_claims_free(&out);
        } else {
            verify_refused(key, t, NOW, MOQ_AUTH_R_MALFORMED);
        }
        free(t);
    }
    moq_jwk_unref(key);
}

/* nbf and crit are enforced here; upstream's verifier (jsonwebtoken with its default
 * Validation) checks neither. */
static void not_before(void **state)
{
    moq_jwk *key = key_for(MOQ_ALG_HS256);
    moq_claims c;
    claims_basic(&c);
    c.has_nbf = true;
    c.nbf = NOW;
    char *token = sign_ok(key, &c);
    moq_claims out;
    /* Valid from the second nbf on, without skew (as exp). */
    verify_refused(key, token, NOW - 1, MOQ_AUTH_R_NOT_YET_VALID);
    verify_refused(key, token, NOW - 86400, MOQ_AUTH_R_NOT_YET_VALID);
    verify_accepted(key, token, NOW, &out);
    assert_true(out.has_nbf);
    assert_int_equal(out.nbf, NOW);
    moq_claims_free(&out);
    verify_accepted(key, token, NOW + 3600, &out);
    moq_claims_free(&out);
    free(token);
    moq_claims_free(&c);

    /* nbf: null is none; a string is malformed. */
    char *t = forge_hs256("{\"alg\":\"HS256\"}", "{\"root\":\"a\",\"put\":\"\",\"nbf\":null}",
                          key->k.p, key->k.n);
    verify_accepted(key, t, NOW, &out);
    assert_false(out.has_nbf);
    moq_claims_free(&out);
    free(t);
    t = forge_hs256("{\"alg\":\"HS256\"}", "{\"root\":\"a\",\"put\":\"\",\"nbf\":\"0\"}", key->k.p,
                    key->k.n);
    verify_refused(key, t, NOW, MOQ_AUTH_R_MALFORMED);
    free(t);
    moq_jwk_unref(key);
}

static void critical_header_refused(void **state)
{
    moq_jwk *key = key_for(MOQ_ALG_HS256);
    static const char *const headers[] = {
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
        "{\"alg\":\"HS256\",\"crit\":[]}",
        "{\"alg\":\"HS256\",\"crit\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = forge_hs256(headers[i], payload_ok, key->k.p, key->k.n);
        verify_refused(key, t, NOW, MOQ_AUTH_R_CRITICAL);
        free(t);
    }
    /* The same token without crit verifies: the refusal is about crit alone. */
    char *t = forge_hs256("{\"alg\":\"HS256\",\"x-extra\":1}", payload_ok, key->k.p, key->k.n);
    moq_claims out;
    verify_accepted(key, t, NOW, &out);
    moq_claims_free(&out);
    free(t);
    moq_jwk_unref(key);
}

static void malformed_rejected(void **state)
{
    moq_jwk *key = key_for(MOQ_ALG_HS256);
    static const struct {
        const char *token;
        int reason;
    } bad[] = {
        {"", MOQ_AUTH_R_MALFORMED},
        {"abc", MOQ_AUTH_R_MALFORMED},
        {"a.b", MOQ_AUTH_R_MALFORMED},
        {"a.b.c.d", MOQ_AUTH_R_MALFORMED},
        {"..", MOQ_AUTH_R_MALFORMED},
        {"eyJhbGciOiJIUzI1NiJ9..sig", MOQ_AUTH_R_MALFORMED},
        {"!!!.e30.AAAA", MOQ_AUTH_R_MALFORMED},
        {"eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", MOQ_AUTH_R_MALFORMED}, /* '=' is not base64url */
        {"eyJhbGciOiJIUzI1NiJ9.e30.AA+/", MOQ_AUTH_R_MALFORMED},
        {"eyJhbGciOiJIUzI1NiJ9.e30.AAAAA", MOQ_AUTH_R_MALFORMED}, /* impossible length */
        {"eyJhbGciOiJIUzI1NiJ9.e30.AB", MOQ_AUTH_R_MALFORMED},    /* non-zero spare bits */
        {"e30.e30.AAAA", MOQ_AUTH_R_MALFORMED},                   /* header without alg */
        {"bm90IGpzb24.e30.AAAA", MOQ_AUTH_R_MALFORMED},           /* header not JSON */
        {"WzFd.e30.AAAA", MOQ_AUTH_R_MALFORMED},                  /* header is an array */
        {"eyJhbGciOjF9.e30.AAAA", MOQ_AUTH_R_MALFORMED},          /* alg is a number */
        /* Well-formed but unsigned: an empty signature never verifies. */
        {"eyJhbGciOiJIUzI1NiJ9.e30.", MOQ_AUTH_R_SIGNATURE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        moq_claims out;
        moq_auth_error err = {0};
        const char *t = bad[i].token;
        assert_int_equal(moq_jwt_verify(key, t, strlen(t), NOW, &out, &err), MOQ_ERR_AUTH);
        if (err.reason != bad[i].reason) fail_msg("case %zu (%s): %s", i, t, err.msg);
        assert_true(strlen(err.msg) > 0);
    }
    /* Correctly signed, but the payload is not claims. */
    const char *payloads[] = {"not json",
                              "[1,2]",
                              "{\"root\":1,\"put\":\"\"}",
                              "{\"put\":[1]}",
                              "{\"put\":\"\",\"put\":\"x\"}",
                              "{\"get\":{}}"};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char *t = forge_hs256("{\"alg\":\"HS256\"}", payloads[i], key->k.p, key->k.n);
        verify_refused(key, t, NOW, MOQ_AUTH_R_MALFORMED);
        free(t);
    }
    /* Duplicate header members are refused too (no parser differentials). */
    char *t = forge_hs256("{\"alg\":\"HS256\",\"alg\":\"none\"}", payload_ok, key->k.p, key->k.n);
    verify_refused(key, t, NOW, MOQ_AUTH_R_MALFORMED);
    free(t);
    moq_jwk_unref(key);
}

static void oversized_rejected(void **state)
{
    moq_jwk *key = key_for(MOQ_ALG_HS256);
    moq_claims c;
    claims_basic(&c);
    /* A genuinely signed token over the cap is still refused, before any decoding. */
    char long_path[7000];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    assert_int_equal(moq_strlist_push(&c.subscribe, long_path), 0);
    char *token = sign_ok(key, &c);
    assert_true(strlen(token) > MOQ_JWT_MAX_LEN);
    verify_refused(key, token, NOW, MOQ_AUTH_R_TOO_LARGE);
    free(token);
    moq_claims_free(&c);
    moq_jwk_unref(key);
}

static void useless_and_scope(void **state)
{
    moq_jwk *key = key_for(MOQ_ALG_HS256);
    moq_claims c;
    moq_claims_init(&c);
    moq_claims_set_root(&c, "demo");
    char *token = NULL;
    moq_auth_error err = {0};
    assert_int_equal(moq_jwt_sign(key, &c, &token, &err), MOQ_ERR_AUTH);
    assert_int_equal(err.reason, MOQ_AUTH_R_USELESS);
    /* Explicit empty lists grant nothing either. */
    char *t = forge_hs256("{\"alg\":\"HS256\"}", "{\"root\":\"demo\",\"put\":[],\"get\":[]}",
                          key->k.p, key->k.n);
    verify_refused(key, t, NOW, MOQ_AUTH_R_USELESS);
    free(t);

    /* A scoped key signs and verifies only within its scope. */
    moq_scope scope = {0};
    scope.root = strdup("test-path");
    moq_strlist_push(&scope.publish, "allowed");
    moq_jwk *scoped;
    assert_int_equal(moq_jwk_with_scope(key, &scope, &scoped, &err), 0);
    assert_non_null(moq_jwk_scope(scoped));
    assert_null(moq_jwk_scope(key));

    moq_claims ok, denied;
    moq_claims_init(&ok);
    moq_claims_init(&denied);
    moq_claims_set_root(&ok, "test-path");
    moq_strlist_push(&ok.publish, "allowed/room");
    moq_claims_set_root(&denied, "test-path");
    moq_strlist_push(&denied.publish, "other");
    char *good = sign_ok(scoped, &ok);
    assert_int_equal(moq_jwt_sign(scoped, &denied, &token, &err), MOQ_ERR_AUTH);
    assert_int_equal(err.reason, MOQ_AUTH_R_SCOPE);
    /* A token the unscoped twin signs beyond the scope is refused whole. */
    char *forged = sign_ok(key, &denied);
    verify_refused(scoped, forged, NOW, MOQ_AUTH_R_SCOPE);
    moq_claims out;
    verify_accepted(scoped, good, NOW, &out);
    moq_claims_free(&out);
    /* Adding a subscribe grant to an allowed publish escalates the role: refused. */
    moq_strlist_push(&ok.subscribe, "allowed");
    char *escalated = sign_ok(key, &ok);
    verify_refused(scoped, escalated, NOW, MOQ_AUTH_R_SCOPE);

    /* The scope survives serialisation (both halves of an asymmetric key too). */
    char *json = moq_jwk_to_json(scoped, false);
    assert_non_null(strstr(json, "\"scope\":{\"root\":\"test-path\",\"put\":[\"allowed\"]}"));
    moq_jwk *back = parse_key(json);
    verify_refused(back, forged, NOW, MOQ_AUTH_R_SCOPE);

    /* A scope granting nothing makes an unusable key: refused. */
    moq_scope empty = {0};
    moq_jwk *none = NULL;
    assert_int_equal(moq_jwk_with_scope(key, &empty, &none, &err), MOQ_ERR_INVALID);
    assert_null(none);
    assert_int_equal(parse_key_err("{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":"
                                   "\"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68\","
                                   "\"scope\":{\"root\":\"x\"}}",
                                   &err),
                     MOQ_ERR_INVALID);
    assert_int_equal(err.reason, MOQ_AUTH_R_SCOPE);

    free(json);
    free(good);
    free(forged);
    free(escalated);
    moq_jwk_unref(back);
    moq_jwk_unref(scoped);
    moq_scope_free(&scope);
    moq_claims_free(&ok);
    moq_claims_free(&denied);
    moq_claims_free(&c);
    moq_jwk_unref(key);
}

static void key_ops_enforced(void **state)
{
    const char *verify_only = "{\"kty\":\"oct\",\"alg\":\"HS256\",\"key_ops\":[\"verify\"],"
                              "\"k\":\"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68\"}";
    const char *sign_only = "{\"kty\":\"oct\",\"alg\":\"HS256\",\"key_ops\":[\"sign\"],"
                            "\"k\":\"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68\"}";
    moq_jwk *v = parse_key(verify_only), *s = parse_key(sign_only);
    moq_claims c;
    claims_basic(&c);
    char *token = NULL;
    moq_auth_error err = {0};
    assert_int_equal(moq_jwt_sign(v, &c, &token, &err), MOQ_ERR_AUTH);
    assert_int_equal(err.reason, MOQ_AUTH_R_KEY_OPS);
    token = sign_ok(s, &c);
    verify_refused(s, token, NOW, MOQ_AUTH_R_KEY_OPS);
    moq_claims out;
    verify_accepted(v, token, NOW, &out);
    moq_claims_free(&out);
    free(token);
    moq_claims_free(&c);
    moq_jwk_unref(v);
    moq_jwk_unref(s);
}

/* ---- JWK forms ---- */

static void jwk_key_types(void **state)
{
    moq_auth_error err = {0};
    /* Missing kty means oct (keys from before kty was written); no key_ops means both. */
    moq_jwk *legacy = parse_key("{\"alg\":\"HS256\",\"k\":\"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-"
                                "QpqopIGrbrD68\"}");
    assert_int_equal(moq_jwk_alg(legacy), MOQ_ALG_HS256);
    assert_int_equal(moq_jwk_ops(legacy), MOQ_KEYOP_SIGN | MOQ_KEYOP_VERIFY);
    assert_null(moq_jwk_kid(legacy));
    /* Re-serialised in upstream's member order, with kty and key_ops now explicit. */
    char *json = moq_jwk_to_json(legacy, false);
    assert_string_equal(json, "{\"alg\":\"HS256\",\"key_ops\":[\"sign\",\"verify\"],\"kty\":"
                              "\"oct\",\"k\":\"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68\"}");
    free(json);
    moq_jwk_unref(legacy);

    /* Padded base64url members still load (older writers padded). */
    moq_jwk *padded = parse_key("{\"kty\":\"oct\",\"alg\":\"HS256\",\"key_ops\":[\"sign\","
                                "\"verify\"],\"k\":\"dGVzdC1zZWNyZXQtdGhhdC1pcy1sb25nLWVub3VnaC1"
                                "mb3ItaG1hYy1zaGEyNTY=\",\"kid\":\"test-key-1\"}");
    assert_int_equal(padded->k.n, strlen("test-secret-that-is-long-enough-for-hmac-sha256"));
    assert_memory_equal(padded->k.p, "test-secret-that-is-long-enough-for-hmac-sha256",
                        padded->k.n);
    assert_string_equal(moq_jwk_kid(padded), "test-key-1");
    moq_jwk_unref(padded);

    /* Unknown members (e.g. old @moq/token "guest" lists) are ignored. */
    moq_jwk *guest = parse_key("{\"kty\":\"oct\",\"alg\":\"HS512\",\"k\":\"Fp8kipWUJeUFqeSqWym_"
                               "tRC_tyI8z-QpqopIGrbrD68\",\"guest\":[],\"guest_sub\":[]}");
    moq_jwk_unref(guest);

    /* Each generated type survives JSON and base64url round trips. */
    for (int alg = 0; alg < MOQ_ALG_COUNT; alg++) {
        moq_jwk *key = key_for((moq_jwt_alg)alg);
        char *j = moq_jwk_to_json(key, true), *b = moq_jwk_to_base64(key);
        assert_null(strchr(b, '='));
        assert_null(strchr(b, '{'));
        moq_jwk *k1 = parse_key(j), *k2 = parse_key(b);
        char *j1 = moq_jwk_to_json(k1, false), *j2 = moq_jwk_to_json(k2, false),
             *j0 = moq_jwk_to_json(key, false);
        assert_string_equal(j0, j1);
        assert_string_equal(j0, j2);
        free(j);
        free(b);
        free(j0);
        free(j1);
        free(j2);
        moq_jwk_unref(k1);
        moq_jwk_unref(k2);
        moq_jwk_unref(key);
    }

    struct {
        const char *json;
        int reason;
    } bad[] = {
        {"{\"kty\":\"oct\",\"alg\":\"HS256\"}", MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"\"}", MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
         MOQ_AUTH_R_KEY_INVALID}, /* 16-byte secret */
        {"{\"kty\":\"oct\",\"alg\":\"ES256\",\"k\":\"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-"
         "QpqopIGrbrD68\"}",
         MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"oct\",\"alg\":\"none\",\"k\":\"Fp8kipWUJeUFqeSqWym_tRC_tyI8z-"
         "QpqopIGrbrD68\"}",
         MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"oct\",\"alg\":\"HS256\",\"kid\":\"../etc\",\"k\":\"Fp8kipWUJeUFqeSqWym_"
         "tRC_tyI8z-QpqopIGrbrD68\"}",
         MOQ_AUTH_R_KID_INVALID},
        {"{\"kty\":\"oct\",\"alg\":\"HS256\",\"key_ops\":[\"wrap\"],\"k\":\"Fp8kipWUJeUFqeSqWym_"
         "tRC_tyI8z-QpqopIGrbrD68\"}",
         MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"EC\",\"alg\":\"ES256\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}",
         MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"EC\",\"alg\":\"ES256\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}",
         MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"OKP\",\"alg\":\"EdDSA\",\"crv\":\"Ed448\",\"x\":\"AA\"}",
         MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
         MOQ_AUTH_R_KEY_INVALID}, /* tiny modulus */
        {"{\"kty\":\"RSA\",\"alg\":\"EdDSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
         MOQ_AUTH_R_KEY_INVALID},
        {"{\"kty\":\"XYZ\",\"alg\":\"HS256\"}", MOQ_AUTH_R_KEY_INVALID},
        {"[]", MOQ_AUTH_R_KEY_INVALID},
        {"{", MOQ_AUTH_R_KEY_INVALID},
        {"!!notbase64!!", MOQ_AUTH_R_KEY_INVALID},
        {"", MOQ_AUTH_R_KEY_INVALID},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_not_equal(parse_key_err(bad[i].json, &err), 0);
        if (err.reason != bad[i].reason) fail_msg("case %zu: %s", i, err.msg);
    }

    /* A private half that does not belong to the public half is refused. */
    moq_jwk *a = key_for(MOQ_ALG_ES256), *b2 = key_for(MOQ_ALG_ES256);
    char *ja = moq_jwk_to_json(a, false);
    char *db = moq_b64url_encode(b2->d.p, b2->d.n);
    char *d_at = strstr(ja, "\"d\":\"") + 5;
    memcpy(d_at, db, strlen(db));
    assert_int_not_equal(parse_key_err(ja, &err), 0);
    assert_int_equal(err.reason, MOQ_AUTH_R_KEY_INVALID);
    free(ja);
    free(db);
    moq_jwk_unref(a);
    moq_jwk_unref(b2);
}

static void kid_rules(void **state)
{
    assert_int_equal(moq_kid_validate("abc-123_DEF", 11), 0);
    assert_int_equal(moq_kid_validate("a", 1), 0);
    const char *bad[] = {"", "../etc/passwd", "key with spaces", "key/slash", "key.dot", "a\\b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(moq_kid_validate(bad[i], strlen(bad[i])), MOQ_ERR_INVALID);
    char long_kid[130];
    memset(long_kid, 'k', sizeof(long_kid));
    assert_int_equal(moq_kid_validate(long_kid, 128), 0);
    assert_int_equal(moq_kid_validate(long_kid, 129), MOQ_ERR_INVALID);
    char r1[17], r2[17];
    assert_int_equal(moq_kid_random(r1), 0);
    assert_int_equal(moq_kid_random(r2), 0);
    assert_int_equal(strlen(r1), 16);
    assert_int_equal(moq_kid_validate(r1, 16), 0);
    assert_string_not_equal(r1, r2);
    moq_jwk *key = NULL;
    assert_int_equal(moq_jwk_generate(MOQ_ALG_HS256, "bad kid", &key, NULL), MOQ_ERR_INVALID);
}

static void save_modes(void **state)
{
    char dir[] = "/tmp/moq-jwt-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char priv_path[256], pub_path[256];
    snprintf(priv_path, sizeof(priv_path), "%s/priv.jwk", dir);
    snprintf(pub_path, sizeof(pub_path), "%s/pub.jwk", dir);

    /* Replacing a world-readable file leaves an owner-only one without the old bytes. */
    FILE *f = fopen(priv_path, "w");
    fputs("stale", f);
    fclose(f);
    chmod(priv_path, 0644);
    moq_jwk *key = key_for(MOQ_ALG_ES256), *pub;
    assert_int_equal(moq_jwk_save(key, priv_path, false, NULL), 0);
    struct stat st;
    assert_int_equal(stat(priv_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A public key keeps ordinary permissions: relays running as other users read it. */
    mode_t old_mask = umask(022);
    assert_int_equal(moq_jwk_public(key, &pub, NULL), 0);
    assert_int_equal(moq_jwk_save(pub, pub_path, true, NULL), 0);
    umask(old_mask);
    assert_int_equal(stat(pub_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    moq_jwk *back;
    assert_int_equal(moq_jwk_load(priv_path, &back, NULL), 0);
    char *j1 = moq_jwk_to_json(key, false), *j2 = moq_jwk_to_json(back, false);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
    moq_jwk_unref(back);
    assert_int_equal(moq_jwk_load(pub_path, &back, NULL), 0);
    assert_false(moq_jwk_is_private(back));
    moq_jwk_unref(back);

    /* The file holds base64url text, no JSON braces. */
    f = fopen(priv_path, "r");
    char buf[1024] = {0};
    assert_true(fread(buf, 1, sizeof(buf) - 1, f) > 0);
    fclose(f);
    assert_null(strchr(buf, '{'));
    assert_null(strstr(buf, "stale"));

    /* A symlink is written through, and stays a symlink; the file behind it is 0600. */
    char link_path[256], target_path[256];
    snprintf(link_path, sizeof(link_path), "%s/link.jwk", dir);
    snprintf(target_path, sizeof(target_path), "%s/target.jwk", dir);
    f = fopen(target_path, "w");
    fclose(f);
    chmod(target_path, 0644);
    assert_int_equal(symlink("target.jwk", link_path), 0);
    assert_int_equal(moq_jwk_save(key, link_path, false, NULL), 0);
    assert_int_equal(lstat(link_path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat(target_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(moq_jwk_load(link_path, &back, NULL), 0);
    moq_jwk_unref(back);

    /* A device node (e.g. --out /dev/null) is written in place: never replaced, never
     * chmod'ed. Only root can make one; elsewhere this part is skipped. */
    char dev_path[256];
    snprintf(dev_path, sizeof(dev_path), "%s/null", dir);
    if (mknod(dev_path, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        chmod(dev_path, 0666);
        assert_int_equal(moq_jwk_save(key, dev_path, false, NULL), 0);
        assert_int_equal(lstat(dev_path, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0666);
        unlink(dev_path);
    }
    unlink(link_path);
    unlink(target_path);

    moq_auth_error err = {0};
    assert_int_equal(moq_jwk_load("/nonexistent/key.jwk", &back, &err), MOQ_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/key.jwk"));

    unlink(priv_path);
    unlink(pub_path);
    rmdir(dir);
    moq_jwk_unref(key);
    moq_jwk_unref(pub);
}

/* Keys and tokens made by the published @moq/token (tests/interop/token). */
static void js_fixtures_verify(void **state)
{
    static const struct {
        const char *key, *pub, *token, *root;
        size_t put, get;
    } cases[] = {
        {"js-hs256.jwk", NULL, "js-hs256.jwt", "live", 1, 2},
        {"js-hs256.b64.jwk", NULL, "js-hs256.jwt", "live", 1, 2},
        {"js-es256.jwk", "js-es256.pub.jwk", "js-es256.jwt", "room/1", 0, 1},
        {"js-eddsa.jwk", "js-eddsa.pub.jwk", "js-eddsa.jwt", "stream", 1, 0},
        {"js-rs256.jwk", "js-rs256.pub.jwk", "js-rs256.jwt", "", 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *token = read_fixture(cases[i].token);
        const char *names[2] = {cases[i].key, cases[i].pub};
        for (size_t j = 0; j < 2 && names[j]; j++) {
            char *text = read_fixture(names[j]);
            moq_jwk *key = parse_key(text);
            moq_claims out;
            verify_accepted(key, token, NOW + 10 * 365 * 86400LL, &out);
            assert_string_equal(out.root, cases[i].root);
            assert_int_equal(out.publish.len, cases[i].put);
            assert_int_equal(out.subscribe.len, cases[i].get);
            assert_true(out.has_iat);
            moq_claims_free(&out);
            /* One flipped payload byte breaks it. */
            char *t = strdup(token);
            char *p = strchr(t, '.') + 3;
            *p = *p == 'A' ? 'B' : 'A';
            verify_refused(key, t, NOW, MOQ_AUTH_R_SIGNATURE);
            free(t);
            free(text);
            moq_jwk_unref(key);
        }
        free(token);
    }
}

static void claims_json(void **state)
{
    moq_claims c;
    moq_auth_error err = {0};
    /* put/get: a single string is a one-element list. */
    const char *j =
        "{\"root\":\"test\",\"put\":\"single\",\"get\":[\"m1\",\"m2\"],\"cluster\":true,"
        "\"sub\":\"ignored\",\"iat\":5}";
    assert_int_equal(moq_claims_from_json(j, strlen(j), &c, &err), 0);
    assert_string_equal(c.root, "test");
    assert_int_equal(c.publish.len, 1);
    assert_string_equal(c.publish.v[0], "single");
    assert_int_equal(c.subscribe.len, 2);
    assert_true(c.cluster);
    assert_true(c.has_iat);
    assert_false(c.has_exp);
    char *out = moq_claims_to_json(&c, false);
    assert_string_equal(out, "{\"root\":\"test\",\"put\":[\"single\"],\"get\":[\"m1\",\"m2\"],"
                             "\"cluster\":true,\"iat\":5}");
    free(out);
    moq_claims_free(&c);

    /* Root is optional on input and always written on output. */
    assert_int_equal(moq_claims_from_json("{\"get\":\"\"}", 10, &c, &err), 0);
    assert_string_equal(c.root, "");
    out = moq_claims_to_json(&c, false);
    assert_string_equal(out, "{\"root\":\"\",\"get\":[\"\"]}");
    free(out);
    moq_claims_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_algorithm_round_trips),
        cmocka_unit_test(fixed_signature_sizes),
        cmocka_unit_test(cross_algorithm_fails),
        cmocka_unit_test(alg_none_rejected),
        cmocka_unit_test(hmac_with_public_key_rejected),
        cmocka_unit_test(tampering_rejected),
        cmocka_unit_test(expiry),
        cmocka_unit_test(not_before),
        cmocka_unit_test(critical_header_refused),
        cmocka_unit_test(malformed_rejected),
        cmocka_unit_test(oversized_rejected),
        cmocka_unit_test(useless_and_scope),
        cmocka_unit_test(key_ops_enforced),
        cmocka_unit_test(jwk_key_types),
        cmocka_unit_test(kid_rules),
        cmocka_unit_test(save_modes),
        cmocka_unit_test(js_fixtures_verify),
        cmocka_unit_test(claims_json),
    };
    return cmocka_run_group_tests(tests, setup_rsa, teardown_rsa);
}
