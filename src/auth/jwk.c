/* JSON Web Keys in upstream moq-token's dialect: parse, generate, derive, serialise, save. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "auth/auth_int.h"
#include "util/err.h"

static const char *const alg_names[MOQ_ALG_COUNT] = {
    [MOQ_ALG_HS256] = "HS256", [MOQ_ALG_HS384] = "HS384", [MOQ_ALG_HS512] = "HS512",
    [MOQ_ALG_ES256] = "ES256", [MOQ_ALG_ES384] = "ES384", [MOQ_ALG_RS256] = "RS256",
    [MOQ_ALG_RS384] = "RS384", [MOQ_ALG_RS512] = "RS512", [MOQ_ALG_PS256] = "PS256",
    [MOQ_ALG_PS384] = "PS384", [MOQ_ALG_PS512] = "PS512", [MOQ_ALG_EDDSA] = "EdDSA",
};

static const char *const op_names[] = {"sign", "verify", "encrypt", "decrypt"};

const char *moq_jwt_alg_name(moq_jwt_alg alg)
{
    return (unsigned)alg < MOQ_ALG_COUNT ? alg_names[alg] : "unknown";
}

int moq_jwt_alg_parse(const char *name)
{
    for (int i = 0; i < MOQ_ALG_COUNT; i++)
        if (strcmp(name, alg_names[i]) == 0) return i;
    return MOQ_ERR_INVALID;
}

static enum moq_kty alg_kty(moq_jwt_alg alg)
{
    switch (alg) {
    case MOQ_ALG_HS256:
    case MOQ_ALG_HS384:
    case MOQ_ALG_HS512:
        return MOQ_KTY_OCT;
    case MOQ_ALG_ES256:
    case MOQ_ALG_ES384:
        return MOQ_KTY_EC;
    case MOQ_ALG_EDDSA:
        return MOQ_KTY_OKP;
    default:
        return MOQ_KTY_RSA;
    }
}

static const char *kty_name(enum moq_kty kty)
{
    switch (kty) {
    case MOQ_KTY_OCT:
        return "oct";
    case MOQ_KTY_RSA:
        return "RSA";
    case MOQ_KTY_EC:
        return "EC";
    default:
        return "OKP";
    }
}

int moq_kid_validate(const char *kid, size_t len)
{
    if (len == 0 || len > MOQ_KID_MAX) return MOQ_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        char c = kid[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) return MOQ_ERR_INVALID;
    }
    return 0;
}

int moq_kid_random(char out[17])
{
    uint8_t b[8];
    if (gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof(b)) < 0) return MOQ_ERR_TLS;
    for (size_t i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* ---- lifetime ---- */

static void bytes_wipe(moq_bytes *b)
{
    if (b->p) {
        gnutls_memset(b->p, 0, b->n);
        free(b->p);
    }
    b->p = NULL;
    b->n = 0;
}

static void jwk_destroy(moq_jwk *key)
{
    moq_bytes *all[] = {&key->k,  &key->n,  &key->e,  &key->d, &key->p, &key->q,
                        &key->dp, &key->dq, &key->qi, &key->x, &key->y};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        bytes_wipe(all[i]);
    if (key->pub) gnutls_pubkey_deinit(key->pub);
    if (key->priv) gnutls_privkey_deinit(key->priv);
    if (key->scope) {
        moq_scope_free(key->scope);
        free(key->scope);
    }
    free(key->kid);
    free(key);
}

static moq_jwk *jwk_alloc(moq_jwt_alg alg)
{
    moq_jwk *key = calloc(1, sizeof(*key));
    if (!key) return NULL;
    atomic_init(&key->refs, 1);
    key->alg = alg;
    key->kty = alg_kty(alg);
    key->ops = MOQ_KEYOP_SIGN | MOQ_KEYOP_VERIFY;
    return key;
}

moq_jwk *moq_jwk_ref(moq_jwk *key)
{
    if (key) atomic_fetch_add_explicit(&key->refs, 1, memory_order_relaxed);
    return key;
}

void moq_jwk_unref(moq_jwk *key)
{
    if (key && atomic_fetch_sub_explicit(&key->refs, 1, memory_order_acq_rel) == 1)
        jwk_destroy(key);
}

moq_jwt_alg moq_jwk_alg(const moq_jwk *key)
{
    return key->alg;
}

const char *moq_jwk_kid(const moq_jwk *key)
{
    return key->kid;
}

unsigned moq_jwk_ops(const moq_jwk *key)
{
    return key->ops;
}

bool moq_jwk_is_private(const moq_jwk *key)
{
    return key->kty == MOQ_KTY_OCT || key->d.p != NULL;
}

const moq_scope *moq_jwk_scope(const moq_jwk *key)
{
    return key->scope;
}

/* ---- parsing ---- */

/* A base64url member; required members must be present and non-empty. */
static int member_bytes(json_t *obj, const char *name, bool required, moq_bytes *out,
                        moq_auth_error *err)
{
    json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v)) {
        if (!required) return 0;
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "missing key member \"%s\"", name);
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "key member \"%s\" must be a non-empty base64url string", name);
    int rc = moq_b64_decode_lenient(json_string_value(v), json_string_length(v), &out->p, &out->n);
    if (rc == MOQ_ERR_NOMEM) return rc;
    if (rc)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "key member \"%s\" is not valid base64url", name);
    return 0;
}

static int parse_ops(json_t *obj, unsigned *ops, moq_auth_error *err)
{
    json_t *v = json_object_get(obj, "key_ops");
    if (!v) return 0; /* RFC 7517 makes it optional; upstream defaults to sign+verify */
    if (!json_is_array(v))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "\"key_ops\" must be a list");
    *ops = 0;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        size_t j = 0;
        while (s && j < 4 && strcmp(s, op_names[j]) != 0)
            j++;
        if (!s || j == 4)
            return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                                 "unknown key operation in \"key_ops\"");
        *ops |= 1u << j;
    }
    return 0;
}

static int parse_material(json_t *obj, moq_jwk *key, moq_auth_error *err)
{
    int rc = 0;
    switch (key->kty) {
    case MOQ_KTY_OCT:
        if ((rc = member_bytes(obj, "k", true, &key->k, err))) return rc;
        if (key->k.n < MOQ_OCT_MIN_BYTES)
            return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                                 "oct key secret must be at least %d bytes", MOQ_OCT_MIN_BYTES);
        return 0;
    case MOQ_KTY_RSA: {
        if ((rc = member_bytes(obj, "n", true, &key->n, err)) ||
            (rc = member_bytes(obj, "e", true, &key->e, err)))
            return rc;
        const char *priv[] = {"d", "p", "q", "dp", "dq", "qi"};
        moq_bytes *dst[] = {&key->d, &key->p, &key->q, &key->dp, &key->dq, &key->qi};
        size_t present = 0;
        for (size_t i = 0; i < 6; i++) {
            if ((rc = member_bytes(obj, priv[i], false, dst[i], err))) return rc;
            present += dst[i]->p != NULL;
        }
        if (present != 0 && present != 6)
            return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                                 "RSA private key needs all of d, p, q, dp, dq, qi");
        return 0;
    }
    case MOQ_KTY_EC:
    case MOQ_KTY_OKP: {
        const char *crv = json_string_value(json_object_get(obj, "crv"));
        const char *want = key->alg == MOQ_ALG_ES256   ? "P-256"
                           : key->alg == MOQ_ALG_ES384 ? "P-384"
                                                       : "Ed25519";
        if (!crv || strcmp(crv, want) != 0)
            return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                                 "algorithm %s requires curve %s", moq_jwt_alg_name(key->alg),
                                 want);
        if ((rc = member_bytes(obj, "x", true, &key->x, err))) return rc;
        if (key->kty == MOQ_KTY_EC && (rc = member_bytes(obj, "y", true, &key->y, err))) return rc;
        return member_bytes(obj, "d", false, &key->d, err);
    }
    }
    return 0;
}

static int parse_object(json_t *obj, moq_jwk **out, moq_auth_error *err)
{
    json_t *kty_v = json_object_get(obj, "kty");
    const char *kty = kty_v ? json_string_value(kty_v) : "oct"; /* old keys omit kty */
    const char *alg_s = json_string_value(json_object_get(obj, "alg"));
    if (!alg_s)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "key has no \"alg\" string");
    int alg = moq_jwt_alg_parse(alg_s);
    if (alg < 0)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "unsupported key algorithm \"%.32s\"", alg_s);
    if (!kty)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                             "\"kty\" must be a string");
    moq_jwk *key = jwk_alloc((moq_jwt_alg)alg);
    if (!key) return MOQ_ERR_NOMEM;
    int rc = 0;
    if (strcmp(kty, kty_name(key->kty)) != 0) {
        rc = moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                           "algorithm %s cannot be used with key type \"%.16s\"", alg_s, kty);
        goto fail;
    }
    if ((rc = parse_ops(obj, &key->ops, err)) || (rc = parse_material(obj, key, err))) goto fail;

    json_t *kid = json_object_get(obj, "kid");
    if (kid && !json_is_null(kid)) {
        if (!json_is_string(kid) ||
            moq_kid_validate(json_string_value(kid), json_string_length(kid)) != 0) {
            rc = moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KID_INVALID,
                               "key id must be 1..%d characters of A-Z a-z 0-9 - _", MOQ_KID_MAX);
            goto fail;
        }
        if (!(key->kid = strdup(json_string_value(kid)))) {
            rc = MOQ_ERR_NOMEM;
            goto fail;
        }
    }
    json_t *scope = json_object_get(obj, "scope");
    if (scope && !json_is_null(scope)) {
        key->scope = calloc(1, sizeof(*key->scope));
        if (!key->scope) {
            rc = MOQ_ERR_NOMEM;
            goto fail;
        }
        if ((rc = moq_scope_from_json(scope, key->scope, err))) {
            free(key->scope);
            key->scope = NULL;
            goto fail;
        }
    }
    if ((rc = moq_jws_import(key, err))) goto fail;
    *out = key;
    return 0;
fail:
    if (rc == MOQ_ERR_NOMEM) moq_auth_fail(err, rc, MOQ_AUTH_R_KEY_INVALID, "out of memory");
    jwk_destroy(key);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int moq_jwk_parse(const char *text, size_t len, moq_jwk **out, moq_auth_error *err)
{
    *out = NULL;
    if (len > MOQ_JWK_MAX_LEN)
        return moq_auth_fail(err, MOQ_ERR_TOO_LARGE, MOQ_AUTH_R_KEY_INVALID,
                             "key is larger than %d bytes", MOQ_JWK_MAX_LEN);
    while (len && is_space(*text)) {
        text++;
        len--;
    }
    while (len && is_space(text[len - 1]))
        len--;

    uint8_t *decoded = NULL;
    size_t decoded_len = 0;
    if (len == 0 || text[0] != '{') {
        int rc = moq_b64_decode_lenient(text, len, &decoded, &decoded_len);
        if (rc == MOQ_ERR_NOMEM) return rc;
        if (rc == 0 && decoded_len == 0) free(decoded);
        if (rc || decoded_len == 0)
            return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID,
                                 "key is neither JSON nor base64url-encoded JSON");
        text = (const char *)decoded;
        len = decoded_len;
    }
    moq_auth_error jerr = {0};
    json_t *obj = moq_auth_json_object(text, len, &jerr);
    if (decoded) {
        gnutls_memset(decoded, 0, decoded_len);
        free(decoded);
    }
    if (!obj)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_INVALID, "key: %s", jerr.msg);
    int rc = parse_object(obj, out, err);
    json_decref(obj);
    return rc;
}

int moq_jwk_load(const char *path, moq_jwk **out, moq_auth_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return moq_auth_fail(err, MOQ_ERR_IO, MOQ_AUTH_R_KEY_INVALID, "cannot open key %s: %s",
                             path, strerror(errno));
    char *buf = malloc(MOQ_JWK_MAX_LEN + 1);
    size_t len = 0;
    int rc = buf ? 0 : MOQ_ERR_NOMEM;
    while (rc == 0 && len <= MOQ_JWK_MAX_LEN) {
        ssize_t n = read(fd, buf + len, MOQ_JWK_MAX_LEN + 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            rc = moq_auth_fail(err, MOQ_ERR_IO, MOQ_AUTH_R_KEY_INVALID, "cannot read key %s: %s",
                               path, strerror(errno));
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (rc == 0) {
        rc = moq_jwk_parse(buf, len, out, err);
        if (rc && err) {
            char msg[sizeof(err->msg)];
            snprintf(msg, sizeof(msg), "%.100s: %.150s", path, err->msg);
            memcpy(err->msg, msg, sizeof(msg));
        }
    }
    if (buf) {
        gnutls_memset(buf, 0, len);
        free(buf);
    }
    return rc;
}

/* ---- generation and derivation ---- */

int moq_jwk_generate(moq_jwt_alg alg, const char *kid, moq_jwk **out, moq_auth_error *err)
{
    *out = NULL;
    if ((unsigned)alg >= MOQ_ALG_COUNT)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_ALGORITHM, "unknown algorithm");
    if (kid && moq_kid_validate(kid, strlen(kid)) != 0)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KID_INVALID,
                             "key id must be 1..%d characters of A-Z a-z 0-9 - _", MOQ_KID_MAX);
    moq_jwk *key = jwk_alloc(alg);
    if (!key) return MOQ_ERR_NOMEM;
    int rc = kid && !(key->kid = strdup(kid)) ? MOQ_ERR_NOMEM : 0;
    if (!rc) rc = moq_jws_generate(key, err);
    if (!rc) rc = moq_jws_import(key, err);
    if (rc) {
        jwk_destroy(key);
        return rc;
    }
    *out = key;
    return 0;
}

static int bytes_copy(moq_bytes *dst, const moq_bytes *src)
{
    if (!src->p) return 0;
    dst->p = malloc(src->n ? src->n : 1);
    if (!dst->p) return MOQ_ERR_NOMEM;
    memcpy(dst->p, src->p, src->n);
    dst->n = src->n;
    return 0;
}

/* A new key with the same metadata and the public members (and private ones if asked). */
static int jwk_copy(const moq_jwk *src, bool with_private, moq_jwk **out, moq_auth_error *err)
{
    moq_jwk *key = jwk_alloc(src->alg);
    if (!key) return MOQ_ERR_NOMEM;
    key->ops = src->ops;
    int rc = 0;
    if (src->kid && !(key->kid = strdup(src->kid))) rc = MOQ_ERR_NOMEM;
    if (!rc && src->scope) {
        key->scope = calloc(1, sizeof(*key->scope));
        rc = key->scope ? moq_scope_copy(key->scope, src->scope) : MOQ_ERR_NOMEM;
        if (rc) {
            free(key->scope);
            key->scope = NULL;
        }
    }
    const moq_bytes *pub_src[] = {&src->n, &src->e, &src->x, &src->y};
    moq_bytes *pub_dst[] = {&key->n, &key->e, &key->x, &key->y};
    for (size_t i = 0; i < 4 && !rc; i++)
        rc = bytes_copy(pub_dst[i], pub_src[i]);
    if (with_private) {
        const moq_bytes *priv_src[] = {&src->k,  &src->d,  &src->p, &src->q,
                                       &src->dp, &src->dq, &src->qi};
        moq_bytes *priv_dst[] = {&key->k, &key->d, &key->p, &key->q, &key->dp, &key->dq, &key->qi};
        for (size_t i = 0; i < 7 && !rc; i++)
            rc = bytes_copy(priv_dst[i], priv_src[i]);
    }
    if (!rc) rc = moq_jws_import(key, err);
    if (rc) {
        jwk_destroy(key);
        return rc;
    }
    *out = key;
    return 0;
}

int moq_jwk_public(const moq_jwk *key, moq_jwk **out, moq_auth_error *err)
{
    *out = NULL;
    if (!(key->ops & MOQ_KEYOP_VERIFY))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_OPS,
                             "key does not support verification");
    if (key->kty == MOQ_KTY_OCT)
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_KEY_OPS,
                             "an oct (symmetric) key has no public half");
    int rc = jwk_copy(key, false, out, err);
    if (rc == 0) (*out)->ops = MOQ_KEYOP_VERIFY;
    return rc;
}

int moq_jwk_with_scope(const moq_jwk *key, const moq_scope *scope, moq_jwk **out,
                       moq_auth_error *err)
{
    *out = NULL;
    if (moq_scope_is_useless(scope))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_SCOPE,
                             "key scope grants neither publish nor subscribe");
    moq_jwk *copy;
    int rc = jwk_copy(key, true, &copy, err);
    if (rc) return rc;
    if (!copy->scope)
        copy->scope = calloc(1, sizeof(*copy->scope));
    else
        moq_scope_free(copy->scope);
    if (!copy->scope || moq_scope_copy(copy->scope, scope) != 0) {
        free(copy->scope);
        copy->scope = NULL;
        jwk_destroy(copy);
        return MOQ_ERR_NOMEM;
    }
    *out = copy;
    return 0;
}

/* ---- serialisation ---- */

static int set_bytes(json_t *obj, const char *name, const moq_bytes *b)
{
    if (!b->p) return 0;
    char *s = moq_b64url_encode(b->p, b->n);
    if (!s) return -1;
    int rc = json_object_set_new(obj, name, json_string(s));
    gnutls_memset(s, 0, strlen(s));
    free(s);
    return rc;
}

static json_t *jwk_to_object(const moq_jwk *key)
{
    json_t *obj = json_object();
    json_t *ops = json_array();
    if (!obj || !ops) {
        json_decref(obj);
        json_decref(ops);
        return NULL;
    }
    int rc = json_object_set_new(obj, "alg", json_string(moq_jwt_alg_name(key->alg)));
    for (size_t i = 0; i < 4; i++)
        if (key->ops & (1u << i)) rc |= json_array_append_new(ops, json_string(op_names[i]));
    rc |= json_object_set_new(obj, "key_ops", ops);
    rc |= json_object_set_new(obj, "kty", json_string(kty_name(key->kty)));
    switch (key->kty) {
    case MOQ_KTY_OCT:
        rc |= set_bytes(obj, "k", &key->k);
        break;
    case MOQ_KTY_EC:
    case MOQ_KTY_OKP:
        rc |= json_object_set_new(obj, "crv",
                                  json_string(key->alg == MOQ_ALG_ES256   ? "P-256"
                                              : key->alg == MOQ_ALG_ES384 ? "P-384"
                                                                          : "Ed25519"));
        rc |= set_bytes(obj, "x", &key->x);
        if (key->kty == MOQ_KTY_EC) rc |= set_bytes(obj, "y", &key->y);
        rc |= set_bytes(obj, "d", &key->d);
        break;
    case MOQ_KTY_RSA: {
        const char *names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
        const moq_bytes *vals[] = {&key->n, &key->e,  &key->d,  &key->p,
                                   &key->q, &key->dp, &key->dq, &key->qi};
        for (size_t i = 0; i < 8; i++)
            rc |= set_bytes(obj, names[i], vals[i]);
        break;
    }
    }
    if (key->kid) rc |= json_object_set_new(obj, "kid", json_string(key->kid));
    if (key->scope) rc |= json_object_set_new(obj, "scope", moq_scope_to_json(key->scope));
    if (rc) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* Wipe and free a serialised key (it may hold secrets). */
static void secret_free(char *s)
{
    if (s) {
        gnutls_memset(s, 0, strlen(s));
        free(s);
    }
}

char *moq_jwk_to_json(const moq_jwk *key, bool pretty)
{
    json_t *obj = jwk_to_object(key);
    if (!obj) return NULL;
    char *s = moq_auth_json_dump(obj, pretty);
    json_decref(obj);
    return s;
}

char *moq_jwk_to_base64(const moq_jwk *key)
{
    char *json = moq_jwk_to_json(key, false);
    if (!json) return NULL;
    char *out = moq_b64url_encode((const uint8_t *)json, strlen(json));
    secret_free(json);
    return out;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return MOQ_ERR_IO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Replace an existing regular file: the secret goes to a fresh 0600 file beside it that
 * is renamed over it, so no reader of the old file (or its old mode) ever sees it. */
static int replace_regular(const char *path, const char *data, moq_auth_error *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_NONE, "path too long: %s", path);
    mode_t old = umask(077);
    int fd = mkostemp(tmp, O_CLOEXEC);
    umask(old);
    if (fd < 0)
        return moq_auth_fail(err, MOQ_ERR_IO, MOQ_AUTH_R_NONE, "cannot create %s: %s", tmp,
                             strerror(errno));
    int rc = fchmod(fd, 0600) == 0 ? 0 : MOQ_ERR_IO;
    if (!rc) rc = write_all(fd, data, strlen(data));
    if (!rc && fsync(fd) != 0) rc = MOQ_ERR_IO;
    if (close(fd) != 0 && !rc) rc = MOQ_ERR_IO;
    if (!rc && rename(tmp, path) != 0) rc = MOQ_ERR_IO;
    if (rc) {
        int saved = errno;
        unlink(tmp);
        return moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "cannot write %s: %s", path,
                             strerror(saved));
    }
    return 0;
}

/* Write secret material owner-only. A new file is created 0600 (O_EXCL); an existing
 * regular file is replaced through a temporary file; anything else (a symlink, a device
 * such as /dev/stdout, a FIFO) is opened and written in place, and only a regular file
 * behind it gets its mode tightened - a device's mode is never touched. */
static int save_private(const char *path, const char *data, moq_auth_error *err)
{
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) return replace_regular(path, data, err);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) fd = open(path, O_WRONLY | O_TRUNC | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return moq_auth_fail(err, MOQ_ERR_IO, MOQ_AUTH_R_NONE, "cannot create %s: %s", path,
                             strerror(errno));
    int rc = fstat(fd, &st) == 0 ? 0 : MOQ_ERR_IO;
    if (!rc && S_ISREG(st.st_mode) && fchmod(fd, 0600) != 0) rc = MOQ_ERR_IO;
    if (!rc) rc = write_all(fd, data, strlen(data));
    int saved = errno;
    if (close(fd) != 0 && !rc) rc = MOQ_ERR_IO;
    if (rc)
        return moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "cannot write %s: %s", path,
                             strerror(saved));
    return 0;
}

static int save_public(const char *path, const char *data, moq_auth_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return moq_auth_fail(err, MOQ_ERR_IO, MOQ_AUTH_R_NONE, "cannot create %s: %s", path,
                             strerror(errno));
    int rc = write_all(fd, data, strlen(data));
    if (close(fd) != 0) rc = MOQ_ERR_IO;
    if (rc)
        return moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "cannot write %s: %s", path,
                             strerror(errno));
    return 0;
}

int moq_jwk_save(const moq_jwk *key, const char *path, bool as_json, moq_auth_error *err)
{
    char *data = as_json ? moq_jwk_to_json(key, true) : moq_jwk_to_base64(key);
    if (!data) return moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    int rc = moq_jwk_is_private(key) ? save_private(path, data, err) : save_public(path, data, err);
    secret_free(data);
    return rc;
}
