/* JWS compact serialisation of moq tokens: header.payload.signature, all base64url. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "util/err.h"

/* The three segments of a compact token. */
typedef struct jws_parts {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *sig;
    size_t sig_len;
} jws_parts;

static int split(const char *token, size_t len, jws_parts *out, moq_auth_error *err)
{
    if (len > MOQ_JWT_MAX_LEN)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_TOO_LARGE,
                             "token is %zu bytes, more than the %d allowed", len, MOQ_JWT_MAX_LEN);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED,
                             "token is not three dot-separated parts");
    out->header = token;
    out->header_len = (size_t)(d1 - token);
    out->payload = d1 + 1;
    out->payload_len = (size_t)(d2 - d1 - 1);
    out->sig = d2 + 1;
    out->sig_len = len - (size_t)(d2 + 1 - token);
    if (!out->header_len || !out->payload_len)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED, "token has an empty part");
    return 0;
}

static int decode_part(const char *s, size_t len, const char *what, uint8_t **out, size_t *out_len,
                       moq_auth_error *err)
{
    int rc = moq_b64url_decode_strict(s, len, out, out_len);
    if (rc == MOQ_ERR_NOMEM) return moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "out of memory");
    if (rc)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED,
                             "token %s is not valid base64url", what);
    return 0;
}

static int parse_header(const jws_parts *parts, moq_jwt_header *out, moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    uint8_t *raw;
    size_t raw_len;
    int rc = decode_part(parts->header, parts->header_len, "header", &raw, &raw_len, err);
    if (rc) return rc;
    moq_auth_error jerr = {0};
    json_t *obj = moq_auth_json_object((const char *)raw, raw_len, &jerr);
    free(raw);
    if (!obj)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED, "token header: %s", jerr.msg);
    const char *alg = json_string_value(json_object_get(obj, "alg"));
    json_t *kid = json_object_get(obj, "kid");
    int alg_id = alg ? moq_jwt_alg_parse(alg) : MOQ_ERR_INVALID;
    if (!alg)
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED, "token header has no alg");
    else if (strcasecmp(alg, "none") == 0)
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_ALGORITHM,
                           "unsigned tokens (alg none) are never accepted");
    else if (alg_id < 0)
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_ALGORITHM,
                           "unsupported token algorithm \"%.16s\"", alg);
    else if (kid && !json_is_null(kid) && !json_is_string(kid))
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED, "token kid is not a string");
    else if (json_object_get(obj, "crit"))
        /* RFC 7515 section 4.1.11: extensions named critical must be understood, and this
         * verifier understands none. */
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_CRITICAL,
                           "token header lists critical extensions (crit); none is supported");
    if (rc == 0) {
        out->alg = (moq_jwt_alg)alg_id;
        if (json_is_string(kid) && !(out->kid = strdup(json_string_value(kid))))
            rc = moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    }
    json_decref(obj);
    return rc;
}

int moq_jwt_header_parse(const char *token, size_t len, moq_jwt_header *out, moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    jws_parts parts;
    int rc = split(token, len, &parts, err);
    return rc ? rc : parse_header(&parts, out, err);
}

void moq_jwt_header_free(moq_jwt_header *h)
{
    free(h->kid);
    h->kid = NULL;
}

static int check_claims(const moq_jwk *key, const moq_claims *c, moq_auth_error *err)
{
    int rc = moq_claims_validate(c, err);
    if (rc) return rc;
    if (key->scope && !moq_scope_allows(key->scope, c))
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_SCOPE,
                             "token grants more than the key's scope allows");
    return 0;
}

int moq_jwt_verify(const moq_jwk *key, const char *token, size_t len, int64_t now, moq_claims *out,
                   moq_auth_error *err)
{
    moq_claims_init(out);
    if (!(key->ops & MOQ_KEYOP_VERIFY))
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KEY_OPS,
                             "key_ops of the key do not allow verify");
    jws_parts parts;
    moq_jwt_header header;
    int rc = split(token, len, &parts, err);
    if (rc || (rc = parse_header(&parts, &header, err))) return rc;
    moq_jwt_header_free(&header);
    /* The key decides the algorithm; the token only has to agree with it. */
    if (header.alg != key->alg)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_ALGORITHM,
                             "token algorithm %s does not match the key's %s",
                             moq_jwt_alg_name(header.alg), moq_jwt_alg_name(key->alg));

    uint8_t *sig;
    size_t sig_len;
    if ((rc = decode_part(parts.sig, parts.sig_len, "signature", &sig, &sig_len, err))) return rc;
    size_t signed_len = parts.header_len + 1 + parts.payload_len;
    rc = moq_jws_verify(key, (const uint8_t *)token, signed_len, sig, sig_len);
    free(sig);
    if (rc)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_SIGNATURE, "invalid token signature");

    uint8_t *payload;
    size_t payload_len;
    if ((rc =
             decode_part(parts.payload, parts.payload_len, "payload", &payload, &payload_len, err)))
        return rc;
    moq_auth_error jerr = {0};
    rc = moq_claims_from_json((const char *)payload, payload_len, out, &jerr);
    free(payload);
    if (rc == MOQ_ERR_NOMEM) return moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "out of memory");
    if (rc)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED, "token claims: %s", jerr.msg);
    if (out->has_exp && out->exp < now)
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_EXPIRED, "token expired %lld s ago",
                           (long long)(now - out->exp));
    else if (out->has_nbf && out->nbf > now)
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_NOT_YET_VALID,
                           "token is not valid for another %lld s (nbf)",
                           (long long)(out->nbf - now));
    else
        rc = check_claims(key, out, err);
    if (rc) moq_claims_free(out);
    return rc;
}

/* base64url(json) of a JSON value, consuming the value. */
static char *encode_json(json_t *v)
{
    char *json = v ? moq_auth_json_dump(v, false) : NULL;
    json_decref(v);
    if (!json) return NULL;
    char *out = moq_b64url_encode((const uint8_t *)json, strlen(json));
    free(json);
    return out;
}

static json_t *header_json(const moq_jwk *key)
{
    json_t *h = json_object();
    if (!h) return NULL;
    /* Member order as upstream's jsonwebtoken writes it. */
    int rc = json_object_set_new(h, "typ", json_string("JWT"));
    rc |= json_object_set_new(h, "alg", json_string(moq_jwt_alg_name(key->alg)));
    if (key->kid) rc |= json_object_set_new(h, "kid", json_string(key->kid));
    if (rc) {
        json_decref(h);
        return NULL;
    }
    return h;
}

int moq_jwt_sign(const moq_jwk *key, const moq_claims *claims, char **out, moq_auth_error *err)
{
    *out = NULL;
    if (!(key->ops & MOQ_KEYOP_SIGN) || !moq_jwk_is_private(key))
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KEY_OPS,
                             !(key->ops & MOQ_KEYOP_SIGN) ? "key_ops of the key do not allow sign"
                                                          : "key has no private half to sign with");
    int rc = check_claims(key, claims, err);
    if (rc) return rc;

    char *payload_json = moq_claims_to_json(claims, false);
    char *header = encode_json(header_json(key));
    char *payload = payload_json
                        ? moq_b64url_encode((const uint8_t *)payload_json, strlen(payload_json))
                        : NULL;
    free(payload_json);
    char *signing = NULL, *sig_b64 = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    rc = MOQ_ERR_NOMEM;
    if (!header || !payload) goto out;
    size_t hl = strlen(header), pl = strlen(payload);
    if (!(signing = malloc(hl + pl + 2))) goto out;
    memcpy(signing, header, hl);
    signing[hl] = '.';
    memcpy(signing + hl + 1, payload, pl + 1);
    if ((rc = moq_jws_sign(key, (const uint8_t *)signing, hl + 1 + pl, &sig, &sig_len))) goto out;
    rc = MOQ_ERR_NOMEM;
    if (!(sig_b64 = moq_b64url_encode(sig, sig_len))) goto out;
    size_t sl = strlen(sig_b64);
    char *token = malloc(hl + pl + sl + 3);
    if (!token) goto out;
    memcpy(token, signing, hl + 1 + pl);
    token[hl + 1 + pl] = '.';
    memcpy(token + hl + pl + 2, sig_b64, sl + 1);
    *out = token;
    rc = 0;
out:
    free(header);
    free(payload);
    free(signing);
    free(sig);
    free(sig_b64);
    if (rc) moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "cannot sign token: %s", moq_strerror(rc));
    return rc;
}
