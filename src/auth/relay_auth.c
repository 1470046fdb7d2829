/*
 * The relay's connection authorizer: [auth] config + connection path + token -> the
 * permissions of the session (upstream moq-relay auth.rs semantics).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/map.h"
#include "util/url.h"

/* key_dir lookups are cached per kid; the cache is dropped whole when it grows this big. */
#define KEY_DIR_CACHE_MAX 1024

/* One key file, re-read when the file changes on disk. */
typedef struct key_slot {
    char *path;
    moq_jwk *key;
    struct stat st;
    bool loaded;
    bool warned; /* a load failure was logged; quiet until the key loads again */
} key_slot;

struct moq_auth {
    pthread_mutex_t lock;
    key_slot *slots; /* from key + keys */
    size_t slots_len;
    char *key_dir;
    moq_map dir_cache; /* kid -> key_slot* */
    moq_strlist public_publish;
    moq_strlist public_subscribe;
};

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void slot_clear(key_slot *s)
{
    moq_jwk_unref(s->key);
    free(s->path);
    memset(s, 0, sizeof(*s));
}

/* The slot's current key (one reference to the caller), reloading it if the file
 * changed. Called with the lock held. A missing file is KEY_NOT_FOUND. */
static int slot_key(key_slot *s, moq_jwk **out, moq_auth_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(s->path, &st) != 0) {
        if (errno == ENOENT)
            return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KEY_NOT_FOUND, "no key file %s",
                                 s->path);
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KEY_INVALID, "cannot stat %s: %s",
                             s->path, strerror(errno));
    }
    if (!s->loaded || !same_file(&st, &s->st)) {
        moq_jwk *key;
        moq_auth_error lerr = {0};
        int rc = moq_jwk_load(s->path, &key, &lerr);
        if (rc) return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KEY_INVALID, "%s", lerr.msg);
        if (s->loaded) moq_info("auth", "reloaded key %s", s->path);
        moq_jwk_unref(s->key);
        s->key = key;
        s->st = st;
        s->loaded = true;
        s->warned = false;
    }
    *out = moq_jwk_ref(s->key);
    return 0;
}

static int normalize_list(const char *const *in, size_t n, moq_strlist *out)
{
    for (size_t i = 0; i < n; i++) {
        char *p = moq_authpath_normalize(in[i], strlen(in[i]));
        int rc = p ? moq_strlist_push(out, p) : MOQ_ERR_NOMEM;
        free(p);
        if (rc) return rc;
    }
    moq_authpath_canonicalize(out);
    return 0;
}

static int add_slot(moq_auth *a, const char *path, moq_auth_error *err)
{
    key_slot *s = &a->slots[a->slots_len];
    memset(s, 0, sizeof(*s));
    if (!(s->path = strdup(path))) return MOQ_ERR_NOMEM;
    a->slots_len++;
    moq_jwk *key;
    if (slot_key(s, &key, err) != 0) return MOQ_ERR_CONFIG;
    moq_jwk_unref(key);
    if (!(moq_jwk_ops(s->key) & MOQ_KEYOP_VERIFY))
        return moq_auth_fail(err, MOQ_ERR_CONFIG, MOQ_AUTH_R_KEY_OPS,
                             "key %s cannot verify (key_ops)", path);
    return 0;
}

int moq_auth_new(const moq_auth_config *cfg, moq_auth **out, moq_auth_error *err)
{
    *out = NULL;
    size_t nkeys = (cfg->key ? 1 : 0) + cfg->keys_len;
    if (cfg->key_dir && nkeys)
        return moq_auth_fail(err, MOQ_ERR_CONFIG, MOQ_AUTH_R_NONE,
                             "auth: key_dir cannot be combined with key or keys");
    if (!cfg->key_dir && !nkeys && !cfg->public_publish_len && !cfg->public_subscribe_len)
        return moq_auth_fail(err, MOQ_ERR_CONFIG, MOQ_AUTH_R_NONE,
                             "auth: no key, keys, key_dir or public path configured");
    moq_auth *a = calloc(1, sizeof(*a));
    if (!a) return MOQ_ERR_NOMEM;
    pthread_mutex_init(&a->lock, NULL);
    moq_map_init(&a->dir_cache);
    int rc = 0;
    if (nkeys && !(a->slots = calloc(nkeys, sizeof(key_slot)))) rc = MOQ_ERR_NOMEM;
    if (!rc && cfg->key) rc = add_slot(a, cfg->key, err);
    for (size_t i = 0; !rc && i < cfg->keys_len; i++)
        rc = add_slot(a, cfg->keys[i], err);
    if (!rc && cfg->key_dir) {
        struct stat st;
        if (stat(cfg->key_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = moq_auth_fail(err, MOQ_ERR_CONFIG, MOQ_AUTH_R_NONE,
                               "auth: key_dir %s is not a directory", cfg->key_dir);
        else if (!(a->key_dir = strdup(cfg->key_dir)))
            rc = MOQ_ERR_NOMEM;
    }
    if (!rc) rc = normalize_list(cfg->public_publish, cfg->public_publish_len, &a->public_publish);
    if (!rc)
        rc = normalize_list(cfg->public_subscribe, cfg->public_subscribe_len, &a->public_subscribe);
    if (rc) {
        if (rc == MOQ_ERR_NOMEM) moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "out of memory");
        moq_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

static void drop_dir_cache(moq_auth *a)
{
    size_t it = 0;
    const void *k;
    size_t kl;
    void *v;
    while (moq_map_next(&a->dir_cache, &it, &k, &kl, &v)) {
        slot_clear(v);
        free(v);
    }
    moq_map_free(&a->dir_cache);
    moq_map_init(&a->dir_cache);
}

void moq_auth_free(moq_auth *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->slots_len; i++)
        slot_clear(&a->slots[i]);
    free(a->slots);
    drop_dir_cache(a);
    free(a->key_dir);
    moq_strlist_free(&a->public_publish);
    moq_strlist_free(&a->public_subscribe);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

size_t moq_auth_reload(moq_auth *a, moq_auth_reload_report report, void *ctx, size_t *dropped)
{
    size_t failed = 0;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->slots_len; i++) {
        key_slot *s = &a->slots[i];
        s->loaded = false; /* read it again even when stat() sees no change */
        moq_jwk *key = NULL;
        moq_auth_error err = {0};
        if (slot_key(s, &key, &err) != 0) {
            failed++;
            s->warned = true; /* reported here; connections need not repeat it */
        }
        if (report) report(ctx, s->path, key, key ? NULL : &err);
        moq_jwk_unref(key);
    }
    if (dropped) *dropped = moq_map_len(&a->dir_cache);
    drop_dir_cache(a);
    pthread_mutex_unlock(&a->lock);
    return failed;
}

size_t moq_auth_key_files(const moq_auth *a)
{
    return a->slots_len;
}

bool moq_auth_has_key_dir(const moq_auth *a)
{
    return a->key_dir != NULL;
}

/* "{key_dir}/{kid}.jwk", the kid validated first so it can never leave the directory. */
static int key_dir_lookup(moq_auth *a, const char *kid, moq_jwk **out, moq_auth_error *err)
{
    if (!kid)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KID_MISSING,
                             "token has no kid, which key_dir requires");
    size_t kl = strlen(kid);
    if (moq_kid_validate(kid, kl) != 0)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KID_INVALID,
                             "token kid is not a valid key id");
    pthread_mutex_lock(&a->lock);
    key_slot *s = moq_map_get(&a->dir_cache, kid, kl);
    int rc = 0;
    if (!s) {
        if (moq_map_len(&a->dir_cache) >= KEY_DIR_CACHE_MAX) drop_dir_cache(a);
        size_t dl = strlen(a->key_dir);
        s = calloc(1, sizeof(*s));
        if (s) s->path = malloc(dl + 1 + kl + sizeof(".jwk"));
        if (!s || !s->path || moq_map_put(&a->dir_cache, kid, kl, s) != 0) {
            if (s) free(s->path);
            free(s);
            pthread_mutex_unlock(&a->lock);
            return moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
        }
        memcpy(s->path, a->key_dir, dl);
        s->path[dl] = '/';
        memcpy(s->path + dl + 1, kid, kl);
        memcpy(s->path + dl + 1 + kl, ".jwk", sizeof(".jwk"));
    }
    rc = slot_key(s, out, err);
    if (rc && !s->loaded) {
        /* Never cache misses: the file may appear later, and misses must not pile up. */
        moq_map_del(&a->dir_cache, kid, kl);
        slot_clear(s);
        free(s);
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

static bool kid_equal(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Verify against the configured key files. A token kid picks the key with that kid (or
 * kid-less keys); a token without kid is tried against every key. */
static int verify_with_slots(moq_auth *a, const moq_jwt_header *h, const char *jwt, int64_t now,
                             moq_claims *claims, moq_auth_error *err)
{
    moq_jwk **keys = calloc(a->slots_len, sizeof(moq_jwk *));
    if (!keys) return moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    int rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KEY_NOT_FOUND,
                           "no configured key matches the token kid");
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->slots_len; i++) {
        moq_auth_error lerr = {0};
        if (slot_key(&a->slots[i], &keys[i], &lerr) != 0) {
            if (!a->slots[i].warned) moq_warn("auth", "key unusable: %s", lerr.msg);
            a->slots[i].warned = true;
            if (a->slots_len == 1)
                rc = moq_auth_fail(err, MOQ_ERR_AUTH, lerr.reason, "%s", lerr.msg);
        }
    }
    pthread_mutex_unlock(&a->lock);

    bool any_kid_match = false;
    for (size_t i = 0; h->kid && i < a->slots_len; i++)
        any_kid_match |= keys[i] && kid_equal(moq_jwk_kid(keys[i]), h->kid);
    if (h->kid && a->slots_len == 1 && keys[0] && moq_jwk_kid(keys[0]) && !any_kid_match)
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_KID_MISMATCH,
                           "token kid does not match the key's kid \"%s\"", moq_jwk_kid(keys[0]));

    /* A key that did not sign the token says nothing; any other answer is final. Among
     * "not signed by this key" answers, a bad signature beats an algorithm mismatch. */
    moq_auth_error best = *err;
    bool tried = false;
    for (size_t i = 0; i < a->slots_len; i++) {
        if (!keys[i]) continue;
        const char *kid = moq_jwk_kid(keys[i]);
        bool candidate = !h->kid || (any_kid_match ? kid_equal(kid, h->kid) : kid == NULL);
        if (!candidate) continue;
        rc = moq_jwt_verify(keys[i], jwt, strlen(jwt), now, claims, err);
        if (rc == 0 || (err->reason != MOQ_AUTH_R_SIGNATURE && err->reason != MOQ_AUTH_R_ALGORITHM))
            break;
        if (!tried || err->reason == MOQ_AUTH_R_SIGNATURE) best = *err;
        tried = true;
    }
    if (rc && tried && (err->reason == MOQ_AUTH_R_SIGNATURE || err->reason == MOQ_AUTH_R_ALGORITHM))
        *err = best;
    for (size_t i = 0; i < a->slots_len; i++)
        moq_jwk_unref(keys[i]);
    free(keys);
    return rc;
}

static int verify_token(moq_auth *a, const char *jwt, int64_t now, moq_claims *claims,
                        moq_auth_error *err)
{
    if (!a->key_dir && !a->slots_len)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_TOKEN_UNEXPECTED,
                             "a token was given but no key is configured");
    moq_jwt_header h;
    int rc = moq_jwt_header_parse(jwt, strlen(jwt), &h, err);
    if (rc) return rc;
    if (a->key_dir) {
        moq_jwk *key;
        rc = key_dir_lookup(a, h.kid, &key, err);
        if (!rc) {
            rc = moq_jwt_verify(key, jwt, strlen(jwt), now, claims, err);
            moq_jwk_unref(key);
        }
    } else {
        rc = verify_with_slots(a, &h, jwt, now, claims, err);
    }
    moq_jwt_header_free(&h);
    return rc;
}

/* Anonymous claims when some public prefix overlaps the path in either direction. */
static int public_claims(moq_auth *a, const char *path, moq_claims *claims, moq_auth_error *err)
{
    char *p = moq_authpath_normalize(path, strlen(path));
    if (!p) return moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    const moq_strlist *lists[2] = {&a->public_publish, &a->public_subscribe};
    bool overlaps = false;
    for (size_t l = 0; l < 2 && !overlaps; l++)
        for (size_t i = 0; i < lists[l]->len && !overlaps; i++)
            overlaps = moq_authpath_has_prefix(p, lists[l]->v[i]) ||
                       moq_authpath_has_prefix(lists[l]->v[i], p);
    free(p);
    if (!overlaps)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_TOKEN_REQUIRED,
                             "a token is required at this path");
    int rc = moq_claims_set_root(claims, "");
    for (size_t i = 0; !rc && i < a->public_publish.len; i++)
        rc = moq_strlist_push(&claims->publish, a->public_publish.v[i]);
    for (size_t i = 0; !rc && i < a->public_subscribe.len; i++)
        rc = moq_strlist_push(&claims->subscribe, a->public_subscribe.v[i]);
    if (rc) return moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "out of memory");
    return 0;
}

int moq_auth_check(moq_auth *a, const char *path, const char *jwt, int64_t now, moq_perms *out,
                   moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    moq_auth_error local = {0};
    if (!err) err = &local;
    if (!path || !path[0]) path = "/";
    moq_claims claims;
    moq_claims_init(&claims);
    bool token = jwt && jwt[0];
    int rc = token ? verify_token(a, jwt, now, &claims, err) : public_claims(a, path, &claims, err);
    if (!rc) rc = moq_claims_authorize(&claims, path, out, err);
    if (!rc) out->anonymous = !token;
    moq_claims_free(&claims);
    if (rc)
        moq_debug("auth", "refused %s connection at %.128s: %s (%s)", token ? "token" : "anonymous",
                  path, err->msg, moq_auth_reason_name(err->reason));
    return rc;
}

/* ---- request parsing ---- */

int moq_auth_query_jwt(const char *query, size_t len, char **out)
{
    *out = NULL;
    char *jwt = malloc(len + 1);
    if (!jwt) return MOQ_ERR_NOMEM;
    int n = moq_query_param(query, len, "jwt", jwt, len + 1);
    if (n <= 0) {
        /* len + 1 bytes always hold the value: the only error left is a bad escape */
        free(jwt);
        return n == MOQ_ERR_NOT_FOUND || n == 0 ? 0 : MOQ_ERR_INVALID;
    }
    *out = jwt;
    return 0;
}

static int check_split(moq_auth *a, char *path, const char *query, size_t query_len, int64_t now,
                       moq_perms *out, moq_auth_error *err)
{
    char *jwt = NULL;
    int rc = query ? moq_auth_query_jwt(query, query_len, &jwt) : 0;
    if (rc == MOQ_ERR_NOMEM)
        rc = moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "out of memory");
    else if (rc)
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED,
                           "request query has an invalid percent-escape");
    else
        rc = moq_auth_check(a, path, jwt, now, out, err);
    if (jwt) {
        memset(jwt, 0, strlen(jwt));
        free(jwt);
    }
    free(path);
    return rc;
}

int moq_auth_check_target(moq_auth *a, const char *target, size_t len, int64_t now, moq_perms *out,
                          moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    moq_target t;
    if (memchr(target, '\0', len))
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED, "request target has a NUL");
    if (moq_target_split(target, len, &t) < 0)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED,
                             "request target is not a valid URL path");
    char *path = moq_authpath_remove_dots(t.path, t.path_len);
    if (!path) return moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    return check_split(a, path, t.has_query ? t.query : NULL, t.query_len, now, out, err);
}

int moq_auth_check_path(moq_auth *a, const char *path, size_t path_len, const char *query,
                        size_t query_len, int64_t now, moq_perms *out, moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    if (memchr(path, '\0', path_len) || (query && memchr(query, '\0', query_len)))
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED, "request path has a NUL");
    char *p = malloc(path_len + 1);
    if (!p) return moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    memcpy(p, path, path_len);
    p[path_len] = '\0';
    return check_split(a, p, query, query_len, now, out, err);
}

int moq_auth_certified(const char *target, size_t len, int64_t expires, moq_perms *out,
                       moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    if (len == 0) {
        target = "/";
        len = 1;
    }
    moq_target t;
    if (memchr(target, '\0', len) || moq_target_split(target, len, &t) < 0)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_MALFORMED,
                             "request target is not a valid URL path");
    char *path = moq_authpath_remove_dots(t.path, t.path_len);
    if (!path) return moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    moq_claims claims;
    moq_claims_init(&claims);
    int rc = moq_claims_set_root(&claims, path[0] ? path : "/");
    if (!rc) rc = moq_strlist_push(&claims.publish, "");
    if (!rc) rc = moq_strlist_push(&claims.subscribe, "");
    if (rc) rc = moq_auth_fail(err, MOQ_ERR_NOMEM, MOQ_AUTH_R_NONE, "out of memory");
    if (!rc) {
        claims.has_exp = expires > 0;
        claims.exp = expires;
        rc = moq_claims_authorize(&claims, path[0] ? path : "/", out, err);
    }
    moq_claims_free(&claims);
    free(path);
    return rc;
}
