/* Token claims, key scopes, and scoping claims to a connection path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "util/err.h"

/* ---- errors ---- */

int moq_auth_fail(moq_auth_error *err, int ret, int reason, const char *fmt, ...)
{
    if (err) {
        err->reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return ret;
}

const char *moq_auth_reason_name(int reason)
{
    switch (reason) {
    case MOQ_AUTH_R_NONE:
        return "none";
    case MOQ_AUTH_R_MALFORMED:
        return "malformed";
    case MOQ_AUTH_R_TOO_LARGE:
        return "too_large";
    case MOQ_AUTH_R_ALGORITHM:
        return "algorithm";
    case MOQ_AUTH_R_SIGNATURE:
        return "signature";
    case MOQ_AUTH_R_EXPIRED:
        return "expired";
    case MOQ_AUTH_R_USELESS:
        return "useless";
    case MOQ_AUTH_R_SCOPE:
        return "scope";
    case MOQ_AUTH_R_KEY_OPS:
        return "key_ops";
    case MOQ_AUTH_R_KID_MISSING:
        return "kid_missing";
    case MOQ_AUTH_R_KID_INVALID:
        return "kid_invalid";
    case MOQ_AUTH_R_KID_MISMATCH:
        return "kid_mismatch";
    case MOQ_AUTH_R_KEY_NOT_FOUND:
        return "key_not_found";
    case MOQ_AUTH_R_KEY_INVALID:
        return "key_invalid";
    case MOQ_AUTH_R_TOKEN_UNEXPECTED:
        return "token_unexpected";
    case MOQ_AUTH_R_TOKEN_REQUIRED:
        return "token_required";
    case MOQ_AUTH_R_ROOT_MISMATCH:
        return "root_mismatch";
    case MOQ_AUTH_R_NO_ACCESS:
        return "no_access";
    case MOQ_AUTH_R_NOT_YET_VALID:
        return "not_yet_valid";
    case MOQ_AUTH_R_CRITICAL:
        return "critical";
    default:
        return "unknown";
    }
}

int moq_auth_http_status(int reason)
{
    (void)reason;
    return 401;
}

/* ---- JSON helpers ---- */

json_t *moq_auth_json_object(const char *text, size_t len, moq_auth_error *err)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED, "invalid JSON: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED, "expected a JSON object");
        return NULL;
    }
    return v;
}

int moq_auth_json_strings(json_t *obj, const char *name, bool allow_single, moq_strlist *l,
                          moq_auth_error *err)
{
    json_t *v = json_object_get(obj, name);
    if (!v) return 0;
    if (json_is_string(v) && allow_single) return moq_strlist_push(l, json_string_value(v));
    if (!json_is_array(v))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED, "\"%s\" must be %s", name,
                             allow_single ? "a string or a list of strings" : "a list of strings");
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED,
                                 "\"%s\" must contain only strings", name);
        int rc = moq_strlist_push(l, json_string_value(item));
        if (rc) return rc;
    }
    return 0;
}

char *moq_auth_json_dump(json_t *v, bool pretty)
{
    size_t flags = pretty ? JSON_INDENT(2) : JSON_COMPACT;
    return json_dumps(v, flags | JSON_PRESERVE_ORDER);
}

static json_t *strlist_to_json(const moq_strlist *l)
{
    json_t *a = json_array();
    if (!a) return NULL;
    for (size_t i = 0; i < l->len; i++) {
        if (json_array_append_new(a, json_string(l->v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ---- claims ---- */

void moq_claims_init(moq_claims *c)
{
    memset(c, 0, sizeof(*c));
}

void moq_claims_free(moq_claims *c)
{
    free(c->root);
    moq_strlist_free(&c->publish);
    moq_strlist_free(&c->subscribe);
    moq_claims_init(c);
}

int moq_claims_set_root(moq_claims *c, const char *root)
{
    char *copy = strdup(root ? root : "");
    if (!copy) return MOQ_ERR_NOMEM;
    free(c->root);
    c->root = copy;
    return 0;
}

int moq_claims_validate(const moq_claims *c, moq_auth_error *err)
{
    if (c->publish.len == 0 && c->subscribe.len == 0)
        return moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_USELESS,
                             "token grants neither publish nor subscribe");
    return 0;
}

/* An optional integer timestamp; null counts as absent. */
static int json_timestamp(json_t *obj, const char *name, bool *has, int64_t *out,
                          moq_auth_error *err)
{
    json_t *v = json_object_get(obj, name);
    *has = false;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED,
                             "\"%s\" must be an integer timestamp", name);
    *has = true;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int moq_claims_from_json(const char *json, size_t len, moq_claims *out, moq_auth_error *err)
{
    moq_claims_init(out);
    json_t *obj = moq_auth_json_object(json, len, err);
    if (!obj) return MOQ_ERR_INVALID;
    int rc = 0;
    json_t *root = json_object_get(obj, "root");
    if (root && !json_is_string(root)) {
        rc = moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED, "\"root\" must be a string");
        goto out;
    }
    if ((rc = moq_claims_set_root(out, root ? json_string_value(root) : "")) ||
        (rc = moq_auth_json_strings(obj, "put", true, &out->publish, err)) ||
        (rc = moq_auth_json_strings(obj, "get", true, &out->subscribe, err)) ||
        (rc = json_timestamp(obj, "exp", &out->has_exp, &out->exp, err)) ||
        (rc = json_timestamp(obj, "iat", &out->has_iat, &out->iat, err)) ||
        (rc = json_timestamp(obj, "nbf", &out->has_nbf, &out->nbf, err)))
        goto out;
    out->cluster = json_is_true(json_object_get(obj, "cluster"));
out:
    json_decref(obj);
    if (rc) {
        if (rc == MOQ_ERR_NOMEM) moq_auth_fail(err, rc, MOQ_AUTH_R_MALFORMED, "out of memory");
        moq_claims_free(out);
    }
    return rc;
}

char *moq_claims_to_json(const moq_claims *c, bool pretty)
{
    json_t *obj = json_object();
    if (!obj) return NULL;
    bool ok = json_object_set_new(obj, "root", json_string(c->root ? c->root : "")) == 0;
    if (ok && c->publish.len)
        ok = json_object_set_new(obj, "put", strlist_to_json(&c->publish)) == 0;
    if (ok && c->subscribe.len)
        ok = json_object_set_new(obj, "get", strlist_to_json(&c->subscribe)) == 0;
    if (ok && c->cluster) ok = json_object_set_new(obj, "cluster", json_true()) == 0;
    if (ok && c->has_exp) ok = json_object_set_new(obj, "exp", json_integer(c->exp)) == 0;
    if (ok && c->has_iat) ok = json_object_set_new(obj, "iat", json_integer(c->iat)) == 0;
    if (ok && c->has_nbf) ok = json_object_set_new(obj, "nbf", json_integer(c->nbf)) == 0;
    char *s = ok ? moq_auth_json_dump(obj, pretty) : NULL;
    json_decref(obj);
    return s;
}

/* ---- scope ---- */

void moq_scope_free(moq_scope *s)
{
    free(s->root);
    moq_strlist_free(&s->publish);
    moq_strlist_free(&s->subscribe);
    memset(s, 0, sizeof(*s));
}

bool moq_scope_is_useless(const moq_scope *s)
{
    return s->publish.len == 0 && s->subscribe.len == 0;
}

int moq_scope_copy(moq_scope *dst, const moq_scope *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->root = strdup(src->root ? src->root : "");
    if (!dst->root || moq_strlist_copy(&dst->publish, &src->publish) ||
        moq_strlist_copy(&dst->subscribe, &src->subscribe)) {
        moq_scope_free(dst);
        return MOQ_ERR_NOMEM;
    }
    return 0;
}

int moq_scope_from_json(json_t *v, moq_scope *out, moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(v))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED,
                             "\"scope\" must be an object");
    json_t *root = json_object_get(v, "root");
    if (root && !json_is_string(root))
        return moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_MALFORMED,
                             "\"scope.root\" must be a string");
    out->root = strdup(root ? json_string_value(root) : "");
    int rc = out->root ? 0 : MOQ_ERR_NOMEM;
    if (!rc) rc = moq_auth_json_strings(v, "put", false, &out->publish, err);
    if (!rc) rc = moq_auth_json_strings(v, "get", false, &out->subscribe, err);
    if (!rc && moq_scope_is_useless(out))
        rc = moq_auth_fail(err, MOQ_ERR_INVALID, MOQ_AUTH_R_SCOPE,
                           "key scope grants neither publish nor subscribe");
    if (rc) moq_scope_free(out);
    return rc;
}

json_t *moq_scope_to_json(const moq_scope *s)
{
    json_t *obj = json_object();
    if (!obj) return NULL;
    bool ok = true;
    if (s->root && s->root[0]) ok = json_object_set_new(obj, "root", json_string(s->root)) == 0;
    if (ok && s->publish.len)
        ok = json_object_set_new(obj, "put", strlist_to_json(&s->publish)) == 0;
    if (ok && s->subscribe.len)
        ok = json_object_set_new(obj, "get", strlist_to_json(&s->subscribe)) == 0;
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* root + "/" + path, both normalised first. */
static char *absolute(const char *root, const char *rel)
{
    char *r = moq_authpath_normalize(root ? root : "", root ? strlen(root) : 0);
    char *p = moq_authpath_normalize(rel, strlen(rel));
    char *out = r && p ? moq_authpath_join(r, p) : NULL;
    free(r);
    free(p);
    return out;
}

/* Every requested path (under claims_root) lies under some granted prefix (under
 * scope_root). Nothing granted denies everything; nothing requested is always covered.
 * Allocation failure counts as not covered. */
static bool covers(const char *scope_root, const moq_strlist *granted, const char *claims_root,
                   const moq_strlist *requested)
{
    for (size_t i = 0; i < requested->len; i++) {
        char *req = absolute(claims_root, requested->v[i]);
        if (!req) return false;
        bool found = false;
        for (size_t j = 0; j < granted->len && !found; j++) {
            char *grant = absolute(scope_root, granted->v[j]);
            found = grant && moq_authpath_has_prefix(req, grant);
            free(grant);
        }
        free(req);
        if (!found) return false;
    }
    return true;
}

bool moq_scope_allows(const moq_scope *s, const moq_claims *c)
{
    return covers(s->root, &s->publish, c->root, &c->publish) &&
           covers(s->root, &s->subscribe, c->root, &c->subscribe);
}

/* ---- authorize ---- */

void moq_perms_free(moq_perms *p)
{
    free(p->root);
    moq_strlist_free(&p->publish);
    moq_strlist_free(&p->subscribe);
    memset(p, 0, sizeof(*p));
}

/* Rebase grants (relative to the token root) onto the connection path. Exactly one of
 * suffix (path beyond root) and prefix (root beyond path) is non-empty, or both empty. */
static int rebase(const moq_strlist *grants, const char *prefix, const char *suffix,
                  moq_strlist *out)
{
    for (size_t i = 0; i < grants->len; i++) {
        char *norm = moq_authpath_normalize(grants->v[i], strlen(grants->v[i]));
        char *granted = norm ? moq_authpath_join(prefix, norm) : NULL;
        free(norm);
        if (!granted) return MOQ_ERR_NOMEM;
        int rc = 0;
        const char *rest = moq_authpath_strip_prefix(granted, suffix);
        if (rest)
            rc = moq_strlist_push(out, rest); /* the grant reaches into the path */
        else if (moq_authpath_has_prefix(suffix, granted))
            rc = moq_strlist_push(out, ""); /* the grant contains the whole path */
        free(granted);
        if (rc) return rc;
    }
    moq_authpath_canonicalize(out);
    return 0;
}

int moq_claims_authorize(const moq_claims *c, const char *path, moq_perms *out, moq_auth_error *err)
{
    memset(out, 0, sizeof(*out));
    char *p = moq_authpath_normalize(path ? path : "", path ? strlen(path) : 0);
    char *r = moq_authpath_normalize(c->root ? c->root : "", c->root ? strlen(c->root) : 0);
    int rc = MOQ_ERR_NOMEM;
    if (!p || !r) goto fail;

    const char *suffix = moq_authpath_strip_prefix(p, r);
    const char *prefix = "";
    if (!suffix) {
        suffix = "";
        prefix = moq_authpath_strip_prefix(r, p);
        if (!prefix) {
            rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_ROOT_MISMATCH,
                               "path \"%.64s\" does not overlap the token root \"%.64s\"", p, r);
            goto fail;
        }
    }
    if ((rc = rebase(&c->publish, prefix, suffix, &out->publish)) ||
        (rc = rebase(&c->subscribe, prefix, suffix, &out->subscribe)))
        goto fail;
    if (out->publish.len == 0 && out->subscribe.len == 0) {
        rc = moq_auth_fail(err, MOQ_ERR_AUTH, MOQ_AUTH_R_NO_ACCESS,
                           "token grants no access at path \"%.64s\"", p);
        goto fail;
    }
    out->root = p;
    out->expires = c->has_exp ? c->exp : 0;
    out->cluster = c->cluster;
    free(r);
    return 0;
fail:
    if (rc == MOQ_ERR_NOMEM) moq_auth_fail(err, rc, MOQ_AUTH_R_NONE, "out of memory");
    free(p);
    free(r);
    moq_perms_free(out);
    return rc;
}

/* ---- engine checks ---- */

static bool any_prefix(const moq_strlist *l, const char *path, size_t len)
{
    for (size_t i = 0; i < l->len; i++)
        if (moq_authpath_raw_has_prefix(path, len, l->v[i], strlen(l->v[i]))) return true;
    return false;
}

bool moq_perms_can_publish(const moq_perms *p, const char *path, size_t len)
{
    return any_prefix(&p->publish, path, len);
}

bool moq_perms_can_subscribe(const moq_perms *p, const char *path, size_t len)
{
    return any_prefix(&p->subscribe, path, len);
}

bool moq_perms_announce_visible(const moq_perms *p, const char *path, size_t len)
{
    return moq_perms_can_subscribe(p, path, len);
}

bool moq_perms_subscribe_overlaps(const moq_perms *p, const char *prefix, size_t len)
{
    for (size_t i = 0; i < p->subscribe.len; i++) {
        const char *s = p->subscribe.v[i];
        size_t sl = strlen(s);
        if (moq_authpath_raw_has_prefix(prefix, len, s, sl) ||
            moq_authpath_raw_has_prefix(s, sl, prefix, len))
            return true;
    }
    return false;
}
