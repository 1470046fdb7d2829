/* Unit tests for src/auth path scoping and the relay's connection authorizer: the claim
 * tables of upstream's auth guide, connection-path rebasing, public access, key, keys and
 * key_dir sources, and request parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "util/err.h"

#define NOW 1700000000

/* NULL-terminated list helpers. */
static void push_all(moq_strlist *l, const char *const *items)
{
    for (; items && *items; items++)
        assert_int_equal(moq_strlist_push(l, *items), 0);
}

static void make_claims(moq_claims *c, const char *root, const char *const *put,
                        const char *const *get)
{
    moq_claims_init(c);
    assert_int_equal(moq_claims_set_root(c, root), 0);
    push_all(&c->publish, put);
    push_all(&c->subscribe, get);
}

static void assert_list(const moq_strlist *l, const char *const *want)
{
    size_t n = 0;
    while (want && want[n])
        n++;
    if (l->len != n) {
        fprintf(stderr, "got [");
        for (size_t i = 0; i < l->len; i++)
            fprintf(stderr, "\"%s\" ", l->v[i]);
        fprintf(stderr, "]\n");
        fail_msg("list has %zu entries, want %zu", l->len, n);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->v[i], want[i]);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE   ((const char *const *)NULL)

/* ---- path helpers ---- */

static void path_helpers(void **state)
{
    static const struct {
        const char *in, *out;
    } norm[] = {{"", ""},
                {"/", ""},
                {"foo", "foo"},
                {"/foo/bar/", "foo/bar"},
                {"//foo///bar//", "foo/bar"}};
    for (size_t i = 0; i < sizeof(norm) / sizeof(norm[0]); i++) {
        char *n = moq_authpath_normalize(norm[i].in, strlen(norm[i].in));
        assert_string_equal(n, norm[i].out);
        free(n);
    }
    assert_true(moq_authpath_has_prefix("foo/bar", ""));
    assert_true(moq_authpath_has_prefix("foo/bar", "foo"));
    assert_true(moq_authpath_has_prefix("foo/bar", "foo/bar"));
    assert_false(moq_authpath_has_prefix("foo/bar", "fo"));
    assert_false(moq_authpath_has_prefix("foobar", "foo"));
    assert_false(moq_authpath_has_prefix("foo", "foo/bar"));
    assert_string_equal(moq_authpath_strip_prefix("foo/bar", "foo"), "bar");
    assert_string_equal(moq_authpath_strip_prefix("foo/bar", "foo/bar"), "");
    assert_null(moq_authpath_strip_prefix("foobar", "foo"));
    char *j = moq_authpath_join("", "bar");
    assert_string_equal(j, "bar");
    free(j);
    j = moq_authpath_join("foo", "");
    assert_string_equal(j, "foo");
    free(j);
    j = moq_authpath_join("foo", "bar");
    assert_string_equal(j, "foo/bar");
    free(j);

    /* Raw matching ignores boundary and doubled slashes but not segment edges. */
    assert_true(moq_authpath_raw_has_prefix("/demo//x/", 9, "demo", 4));
    assert_true(moq_authpath_raw_has_prefix("demo", 4, "/demo/", 6));
    assert_false(moq_authpath_raw_has_prefix("demox", 5, "demo", 4));
    assert_true(moq_authpath_raw_has_prefix("anything", 8, "", 0));

    moq_strlist l = {0};
    push_all(&l, L("demo/foo", "demo", "anon", "demo", "anon/x/y", "zz"));
    moq_authpath_canonicalize(&l);
    assert_list(&l, L("zz", "anon", "demo"));
    moq_strlist_free(&l);
    push_all(&l, L("a", "", "b"));
    moq_authpath_canonicalize(&l);
    assert_list(&l, L(""));
    moq_strlist_free(&l);

    static const struct {
        const char *in, *out;
    } dots[] = {{"/a/b/../c", "/a/c"}, {"/a/./b", "/a/b"},        {"/../a", "/a"}, {"/a/..", "/"},
                {"/a/b/.", "/a/b/"},   {"/room/x/../../y", "/y"}, {"/", "/"},      {"", ""},
                {"/a//..", "/a/"}};
    for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++) {
        char *r = moq_authpath_remove_dots(dots[i].in, strlen(dots[i].in));
        if (strcmp(r, dots[i].out) != 0)
            fail_msg("remove_dots(%s) = %s, want %s", dots[i].in, r, dots[i].out);
        free(r);
    }
}

/* ---- authorize ---- */

static void authorize_case(const char *root, const char *const *put, const char *const *get,
                           const char *path, const char *want_root, const char *const *want_put,
                           const char *const *want_get)
{
    moq_claims c;
    make_claims(&c, root, put, get);
    moq_perms p;
    moq_auth_error err = {0};
    if (moq_claims_authorize(&c, path, &p, &err) != 0)
        fail_msg("authorize(root=%s, path=%s): %s", root, path, err.msg);
    assert_string_equal(p.root, want_root);
    assert_list(&p.publish, want_put);
    assert_list(&p.subscribe, want_get);
    moq_perms_free(&p);
    moq_claims_free(&c);
}

static void authorize_refused(const char *root, const char *const *put, const char *const *get,
                              const char *path, int reason)
{
    moq_claims c;
    make_claims(&c, root, put, get);
    moq_perms p;
    moq_auth_error err = {0};
    assert_int_equal(moq_claims_authorize(&c, path, &p, &err), MOQ_ERR_AUTH);
    if (err.reason != reason) fail_msg("root=%s path=%s: %s", root, path, err.msg);
    assert_null(p.root);
    moq_claims_free(&c);
}

static void authorize_rebasing(void **state)
{
    /* The path equals the root. */
    authorize_case("room/123", L("alice"), L(""), "room/123", "room/123", L("alice"), L(""));
    /* The path extends the root: grants narrow, those outside vanish. */
    authorize_case("room/123", L("alice"), L("bob"), "room/123/alice", "room/123/alice", L(""),
                   NONE);
    authorize_case("room/123", L("alice"), L("bob"), "/room/123/bob", "room/123/bob", NONE, L(""));
    authorize_case("room/123", L(""), L(""), "/room/123/alice", "room/123/alice", L(""), L(""));
    authorize_case("room/123", L("users/alice/camera"), L("users/bob/screen"), "/room/123/users",
                   "room/123/users", L("alice/camera"), L("bob/screen"));
    authorize_case("room/123", L("users/alice/camera"), L("users/bob/screen"),
                   "/room/123/users/alice", "room/123/users/alice", L("camera"), NONE);
    /* The path is a parent of the root: grants keep the rest of the root. */
    authorize_case("demo", L("alice"), L(""), "/", "", L("demo/alice"), L("demo"));
    authorize_case("room/123", L("alice"), L(""), "/room", "room", L("123/alice"), L("123"));
    /* An empty root grants what it lists wherever it connects. */
    authorize_case("", NONE, L("demo"), "demo/room", "demo/room", NONE, L(""));
    /* Slashes are implicit. */
    authorize_case("/room/123/", NONE, L("/bob/"), "//room/123//", "room/123", NONE, L("bob"));
    /* Redundant grants collapse. */
    authorize_case("", L("demo", "demo/x", "anon"), NONE, "", "", L("anon", "demo"), NONE);

    /* Segment boundaries, unrelated paths, and no access left. */
    authorize_refused("foo", L(""), L(""), "foobar", MOQ_AUTH_R_ROOT_MISMATCH);
    authorize_refused("demo", L(""), L(""), "/other", MOQ_AUTH_R_ROOT_MISMATCH);
    authorize_refused("room/123", L(""), L(""), "/secret", MOQ_AUTH_R_ROOT_MISMATCH);
    authorize_refused("", NONE, L("demo"), "other", MOQ_AUTH_R_NO_ACCESS);
    authorize_refused("room", L("alice"), L("bob"), "room/carol", MOQ_AUTH_R_NO_ACCESS);
}

/* The claims table of upstream's auth guide, checked through the engine functions at the
 * server root (the widest connection path). */
static void guide_table(void **state)
{
    const struct {
        const char *root;
        const char *const *put, *const *get;
        const char *const *can_pub, *const *cannot_pub, *const *can_sub, *const *cannot_sub;
    } rows[] = {
        {"demo", L("my-stream"), L(""), L("demo/my-stream", "demo/my-stream/video"),
         L("demo/other", "demo/my-streamer", "my-stream", "demo"),
         L("demo/x", "demo", "/demo/a/b/"), L("other", "demox", "")},
        {"rooms/123", L("alice"), L(""), L("rooms/123/alice"),
         L("rooms/123/bob", "rooms/1234/alice"), L("rooms/123/bob"), L("rooms/1234")},
        {"", L(""), L(""), L("a", "b/c", ""), NONE, L("a", "x/y"), NONE},
        {"", NONE, L(""), NONE, L("a", ""), L("a"), NONE},
        {"", L(""), NONE, L("a"), NONE, NONE, L("a", "")},
        {"demo", NONE, L(""), NONE, L("demo/x"), L("demo/x"), L("other/x")},
    };
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        moq_claims c;
        make_claims(&c, rows[r].root, rows[r].put, rows[r].get);
        moq_perms p;
        assert_int_equal(moq_claims_authorize(&c, "/", &p, NULL), 0);
        for (const char *const *s = rows[r].can_pub; s && *s; s++)
            if (!moq_perms_can_publish(&p, *s, strlen(*s))) fail_msg("row %zu: publish %s", r, *s);
        for (const char *const *s = rows[r].cannot_pub; s && *s; s++)
            if (moq_perms_can_publish(&p, *s, strlen(*s))) fail_msg("row %zu: !publish %s", r, *s);
        for (const char *const *s = rows[r].can_sub; s && *s; s++) {
            if (!moq_perms_can_subscribe(&p, *s, strlen(*s))) fail_msg("row %zu: sub %s", r, *s);
            assert_true(moq_perms_announce_visible(&p, *s, strlen(*s)));
        }
        for (const char *const *s = rows[r].cannot_sub; s && *s; s++) {
            if (moq_perms_can_subscribe(&p, *s, strlen(*s))) fail_msg("row %zu: !sub %s", r, *s);
            assert_false(moq_perms_announce_visible(&p, *s, strlen(*s)));
        }
        moq_perms_free(&p);
        moq_claims_free(&c);
    }
}

static void perms_overlap_and_flags(void **state)
{
    moq_claims c;
    make_claims(&c, "", L("pub"), L("demo/room", "live"));
    c.cluster = true;
    c.has_exp = true;
    c.exp = NOW + 5;
    moq_perms p;
    assert_int_equal(moq_claims_authorize(&c, "", &p, NULL), 0);
    assert_true(p.cluster);
    assert_int_equal(p.expires, NOW + 5);
    /* An announce interest overlaps when either side contains the other. */
    assert_true(moq_perms_subscribe_overlaps(&p, "", 0));
    assert_true(moq_perms_subscribe_overlaps(&p, "demo", 4));
    assert_true(moq_perms_subscribe_overlaps(&p, "demo/room/cam", 13));
    assert_true(moq_perms_subscribe_overlaps(&p, "/live/", 6));
    assert_false(moq_perms_subscribe_overlaps(&p, "demo/other", 10));
    assert_false(moq_perms_subscribe_overlaps(&p, "lively", 6));
    assert_false(moq_perms_subscribe_overlaps(&p, "pub", 3));
    moq_perms_free(&p);
    moq_claims_free(&c);

    /* No exp means no expiry. */
    make_claims(&c, "", L(""), NONE);
    assert_int_equal(moq_claims_authorize(&c, "", &p, NULL), 0);
    assert_int_equal(p.expires, 0);
    assert_false(p.cluster);
    moq_perms_free(&p);
    moq_claims_free(&c);
}

static void scope_rules(void **state)
{
    moq_scope s = {0};
    s.root = strdup("project");
    push_all(&s.publish, L("live"));
    push_all(&s.subscribe, L("watch"));
    moq_claims c;
    make_claims(&c, "project/live/room", L(""), NONE);
    assert_true(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    /* Siblings are not children; roles are separate. */
    make_claims(&c, "project/lively", L(""), NONE);
    assert_false(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    make_claims(&c, "project/live", NONE, L(""));
    assert_false(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    /* However the root is split, the same grant compares the same. */
    make_claims(&c, "project", L("live/room"), NONE);
    assert_true(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    make_claims(&c, "", L("project/live/room"), NONE);
    assert_true(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    make_claims(&c, "/project/live/", L("/room"), NONE);
    assert_true(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    /* A root above the scope cannot widen it. */
    make_claims(&c, "", L(""), NONE);
    assert_false(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    /* Every requested path must be covered. */
    make_claims(&c, "project", L("live/room", "other"), NONE);
    assert_false(moq_scope_allows(&s, &c));
    moq_claims_free(&c);
    moq_scope_free(&s);
}

/* ---- relay authorizer ---- */

typedef struct fixture {
    char dir[64];
    char keys[96]; /* key_dir */
} fixture;

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/moq-auth-test-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
    mkdir(f->keys, 0700);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    free(f);
    return 0;
}

static moq_jwk *gen(moq_jwt_alg alg, const char *kid)
{
    moq_jwk *key = NULL;
    assert_int_equal(moq_jwk_generate(alg, kid, &key, NULL), 0);
    return key;
}

static void save(const moq_jwk *key, const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(moq_jwk_save(key, path, false, NULL), 0);
}

static char *sign(const moq_jwk *key, const char *root, const char *const *put,
                  const char *const *get)
{
    moq_claims c;
    make_claims(&c, root, put, get);
    char *token = NULL;
    moq_auth_error err = {0};
    if (moq_jwt_sign(key, &c, &token, &err) != 0) fail_msg("sign: %s", err.msg);
    moq_claims_free(&c);
    char *copy = strdup(token);
    free(token);
    return copy;
}

static moq_auth *auth_new(const moq_auth_config *cfg)
{
    moq_auth *a = NULL;
    moq_auth_error err = {0};
    if (moq_auth_new(cfg, &a, &err) != 0) fail_msg("auth config: %s", err.msg);
    return a;
}

static void expect_ok(moq_auth *a, const char *path, const char *jwt, const char *root,
                      const char *const *put, const char *const *get)
{
    moq_perms p;
    moq_auth_error err = {0};
    if (moq_auth_check(a, path, jwt, NOW, &p, &err) != 0)
        fail_msg("check(%s): %s (%s)", path, err.msg, moq_auth_reason_name(err.reason));
    assert_string_equal(p.root, root);
    assert_list(&p.publish, put);
    assert_list(&p.subscribe, get);
    /* Public access is marked as such (the relay keeps anonymous peers out of .internal). */
    assert_int_equal(p.anonymous, !jwt || !jwt[0]);
    moq_perms_free(&p);
}

static void expect_refused(moq_auth *a, const char *path, const char *jwt, int reason)
{
    moq_perms p;
    moq_auth_error err = {0};
    assert_int_equal(moq_auth_check(a, path, jwt, NOW, &p, &err), MOQ_ERR_AUTH);
    if (err.reason != reason)
        fail_msg("check(%s): want %s, got %s (%s)", path, moq_auth_reason_name(reason),
                 moq_auth_reason_name(err.reason), err.msg);
    assert_null(p.root);
    assert_int_equal(moq_auth_http_status(err.reason), 401);
}

static void public_access(void **state)
{
    const char *anon[] = {"anon"};
    moq_auth_config cfg = {.public_publish = anon,
                           .public_publish_len = 1,
                           .public_subscribe = anon,
                           .public_subscribe_len = 1};
    moq_auth *a = auth_new(&cfg);
    expect_ok(a, "/anon", NULL, "anon", L(""), L(""));
    expect_ok(a, "/anon/room/123", "", "anon/room/123", L(""), L(""));
    expect_ok(a, "/", NULL, "", L("anon"), L("anon"));
    expect_ok(a, "", NULL, "", L("anon"), L("anon"));
    expect_refused(a, "/secret", NULL, MOQ_AUTH_R_TOKEN_REQUIRED);
    expect_refused(a, "/anonymous", NULL, MOQ_AUTH_R_TOKEN_REQUIRED);
    /* A token with no key configured is refused even where public access exists. */
    expect_refused(a, "/anon", "fake-token", MOQ_AUTH_R_TOKEN_UNEXPECTED);
    moq_auth_free(a);

    /* "" makes everything public. */
    const char *all[] = {""};
    moq_auth_config everything = {.public_publish = all,
                                  .public_publish_len = 1,
                                  .public_subscribe = all,
                                  .public_subscribe_len = 1};
    a = auth_new(&everything);
    expect_ok(a, "/any/path", NULL, "any/path", L(""), L(""));
    moq_auth_free(a);

    /* Separate lists: subscribe-only and publish-only prefixes. */
    const char *demo[] = {"demo"};
    moq_auth_config sub_only = {.public_subscribe = demo, .public_subscribe_len = 1};
    a = auth_new(&sub_only);
    expect_ok(a, "/", NULL, "", NONE, L("demo"));
    expect_ok(a, "/demo", NULL, "demo", NONE, L(""));
    expect_ok(a, "/demo/room/123", NULL, "demo/room/123", NONE, L(""));
    expect_refused(a, "/other", NULL, MOQ_AUTH_R_TOKEN_REQUIRED);
    moq_auth_free(a);
    moq_auth_config pub_only = {.public_publish = demo, .public_publish_len = 1};
    a = auth_new(&pub_only);
    expect_ok(a, "/", NULL, "", L("demo"), NONE);
    moq_auth_free(a);

    /* Nothing configured is a config error. */
    moq_auth_config empty = {0};
    moq_auth *none = NULL;
    moq_auth_error err = {0};
    assert_int_equal(moq_auth_new(&empty, &none, &err), MOQ_ERR_CONFIG);
    assert_null(none);
    assert_true(strlen(err.msg) > 0);
}

static void key_dir_tokens(void **state)
{
    fixture *f = *state;
    moq_jwk *k1 = gen(MOQ_ALG_HS256, "key-1"), *k2 = gen(MOQ_ALG_ES256, "key-2");
    save(k1, f->keys, "key-1.jwk");
    moq_jwk *k2pub;
    assert_int_equal(moq_jwk_public(k2, &k2pub, NULL), 0);
    save(k2pub, f->keys, "key-2.jwk");
    moq_auth_config cfg = {.key_dir = f->keys};
    moq_auth *a = auth_new(&cfg);

    char *t = sign(k1, "room/123", L("alice"), L(""));
    expect_ok(a, "/room/123", t, "room/123", L("alice"), L(""));
    expect_ok(a, "/room/123/alice", t, "room/123/alice", L(""), L(""));
    expect_ok(a, "/room", t, "room", L("123/alice"), L("123"));
    expect_ok(a, "/", t, "", L("room/123/alice"), L("room/123"));
    expect_refused(a, "/secret", t, MOQ_AUTH_R_ROOT_MISMATCH);
    expect_refused(a, "/room/1234", t, MOQ_AUTH_R_ROOT_MISMATCH);
    free(t);

    /* The second key verifies through its public half. */
    t = sign(k2, "room/2", NONE, L(""));
    expect_ok(a, "/room/2", t, "room/2", NONE, L(""));
    free(t);
    /* Read-only / write-only tokens lose one role when narrowed, not the connection. */
    t = sign(k1, "room/123", L("alice"), L("bob"));
    expect_ok(a, "/room/123/alice", t, "room/123/alice", L(""), NONE);
    expect_ok(a, "/room/123/bob", t, "room/123/bob", NONE, L(""));
    expect_refused(a, "/room/123/carol", t, MOQ_AUTH_R_NO_ACCESS);
    free(t);

    /* No token and no public access. */
    expect_refused(a, "/room/123", NULL, MOQ_AUTH_R_TOKEN_REQUIRED);

    /* kid: missing, unknown, or not a plain name (never a path). */
    moq_jwk *nokid = gen(MOQ_ALG_HS256, NULL), *unknown = gen(MOQ_ALG_HS256, "nonexistent");
    t = sign(nokid, "test", NONE, L(""));
    expect_refused(a, "/test", t, MOQ_AUTH_R_KID_MISSING);
    free(t);
    t = sign(unknown, "test", NONE, L(""));
    expect_refused(a, "/test", t, MOQ_AUTH_R_KEY_NOT_FOUND);
    free(t);
    /* A key planted outside key_dir is never reached through "../". */
    moq_jwk *evil = gen(MOQ_ALG_HS256, "escape");
    save(evil, f->dir, "escape.jwk");
    const char *bad_kids[] = {"../escape", "..%2fescape", "sub/key-1", "key-1.jwk", ".", ""};
    for (size_t i = 0; i < sizeof(bad_kids) / sizeof(bad_kids[0]); i++) {
        char header[128];
        snprintf(header, sizeof(header), "{\"alg\":\"HS256\",\"kid\":\"%s\"}", bad_kids[i]);
        const char *payload = "{\"root\":\"\",\"put\":\"\",\"get\":\"\"}";
        char *h = moq_b64url_encode((const uint8_t *)header, strlen(header));
        char *p = moq_b64url_encode((const uint8_t *)payload, strlen(payload));
        char forged[512];
        snprintf(forged, sizeof(forged), "%s.%s.AAAA", h, p);
        expect_refused(a, "/", forged, MOQ_AUTH_R_KID_INVALID);
        free(h);
        free(p);
    }
    /* A key file that appears later is picked up; one that vanishes is gone. */
    moq_jwk *late = gen(MOQ_ALG_EDDSA, "late");
    t = sign(late, "x", L(""), NONE);
    expect_refused(a, "/x", t, MOQ_AUTH_R_KEY_NOT_FOUND);
    save(late, f->keys, "late.jwk");
    expect_ok(a, "/x", t, "x", L(""), NONE);
    char path[256];
    snprintf(path, sizeof(path), "%s/late.jwk", f->keys);
    unlink(path);
    expect_refused(a, "/x", t, MOQ_AUTH_R_KEY_NOT_FOUND);
    free(t);

    moq_auth_free(a);
    moq_jwk_unref(k1);
    moq_jwk_unref(k2);
    moq_jwk_unref(k2pub);
    moq_jwk_unref(nokid);
    moq_jwk_unref(unknown);
    moq_jwk_unref(evil);
    moq_jwk_unref(late);
}

static void single_key(void **state)
{
    fixture *f = *state;
    moq_jwk *key = gen(MOQ_ALG_HS256, "main"), *other = gen(MOQ_ALG_HS256, "other");
    moq_jwk *nokid = gen(MOQ_ALG_HS256, NULL);
    save(key, f->dir, "main.jwk");
    char path[256];
    snprintf(path, sizeof(path), "%s/main.jwk", f->dir);
    const char *demo[] = {"demo"};
    moq_auth_config cfg = {.key = path, .public_subscribe = demo, .public_subscribe_len = 1};
    moq_auth *a = auth_new(&cfg);

    char *t = sign(key, "secret", L("alice"), L(""));
    expect_ok(a, "/secret", t, "secret", L("alice"), L(""));
    free(t);
    /* Public access still works without a token. */
    expect_ok(a, "/demo", NULL, "demo", NONE, L(""));
    /* Another key's token: same kid rules do not matter, the signature does. */
    t = sign(other, "secret", L(""), NONE);
    expect_refused(a, "/secret", t, MOQ_AUTH_R_KID_MISMATCH);
    free(t);

    /* A key file without kid accepts tokens with or without one (upstream --auth-key). */
    save(nokid, f->dir, "nokid.jwk");
    snprintf(path, sizeof(path), "%s/nokid.jwk", f->dir);
    moq_auth_config cfg2 = {.key = path};
    moq_auth *b = auth_new(&cfg2);
    t = sign(nokid, "r", L(""), NONE);
    expect_ok(b, "/r", t, "r", L(""), NONE);
    free(t);
    t = sign(other, "r", L(""), NONE);
    expect_refused(b, "/r", t, MOQ_AUTH_R_SIGNATURE);
    free(t);
    /* Expired and malformed tokens surface their own reasons. */
    moq_claims c;
    make_claims(&c, "r", L(""), NONE);
    c.has_exp = true;
    c.exp = NOW - 1;
    char *expired = NULL;
    assert_int_equal(moq_jwt_sign(nokid, &c, &expired, NULL), 0);
    expect_refused(b, "/r", expired, MOQ_AUTH_R_EXPIRED);
    free(expired);
    c.exp = NOW + 100;
    assert_int_equal(moq_jwt_sign(nokid, &c, &expired, NULL), 0);
    moq_perms p;
    assert_int_equal(moq_auth_check(b, "/r", expired, NOW, &p, NULL), 0);
    assert_int_equal(p.expires, NOW + 100);
    moq_perms_free(&p);
    free(expired);
    moq_claims_free(&c);
    expect_refused(b, "/r", "not-a-token", MOQ_AUTH_R_MALFORMED);

    /* Rotating the file in place is picked up on the next connection. */
    moq_jwk *next = gen(MOQ_ALG_HS256, NULL);
    char *old_token = sign(nokid, "r", L(""), NONE);
    save(next, f->dir, "nokid.jwk");
    char *new_token = sign(next, "r", L(""), NONE);
    expect_refused(b, "/r", old_token, MOQ_AUTH_R_SIGNATURE);
    expect_ok(b, "/r", new_token, "r", L(""), NONE);
    /* A broken replacement fails closed. */
    FILE *fp = fopen(path, "w");
    fputs("garbage", fp);
    fclose(fp);
    expect_refused(b, "/r", new_token, MOQ_AUTH_R_KEY_INVALID);
    free(old_token);
    free(new_token);

    /* Config errors: unreadable key file, key_dir with key. */
    moq_auth *bad = NULL;
    moq_auth_error err = {0};
    moq_auth_config missing = {.key = "/nonexistent/key.jwk"};
    assert_int_equal(moq_auth_new(&missing, &bad, &err), MOQ_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "/nonexistent/key.jwk"));
    moq_auth_config both = {.key = path, .key_dir = f->keys};
    assert_int_equal(moq_auth_new(&both, &bad, &err), MOQ_ERR_CONFIG);
    moq_auth_config not_dir = {.key_dir = "/nonexistent-dir"};
    assert_int_equal(moq_auth_new(&not_dir, &bad, &err), MOQ_ERR_CONFIG);
    assert_null(bad);

    moq_auth_free(a);
    moq_auth_free(b);
    moq_jwk_unref(key);
    moq_jwk_unref(other);
    moq_jwk_unref(nokid);
    moq_jwk_unref(next);
}

static void key_rotation_list(void **state)
{
    fixture *f = *state;
    moq_jwk *a1 = gen(MOQ_ALG_HS256, "a"), *b1 = gen(MOQ_ALG_EDDSA, "b");
    moq_jwk *c1 = gen(MOQ_ALG_HS256, "c"), *bpub;
    assert_int_equal(moq_jwk_public(b1, &bpub, NULL), 0);
    save(a1, f->dir, "a.jwk");
    save(bpub, f->dir, "b.jwk");
    char pa[256], pb[256];
    snprintf(pa, sizeof(pa), "%s/a.jwk", f->dir);
    snprintf(pb, sizeof(pb), "%s/b.jwk", f->dir);
    const char *files[] = {pa, pb};
    moq_auth_config cfg = {.keys = files, .keys_len = 2};
    moq_auth *a = auth_new(&cfg);

    char *t = sign(a1, "x", L(""), NONE);
    expect_ok(a, "/x", t, "x", L(""), NONE);
    free(t);
    t = sign(b1, "y", NONE, L(""));
    expect_ok(a, "/y", t, "y", NONE, L(""));
    free(t);
    /* An unknown kid is not found; without a kid every key is tried. */
    t = sign(c1, "x", L(""), NONE);
    expect_refused(a, "/x", t, MOQ_AUTH_R_KEY_NOT_FOUND);
    free(t);
    moq_jwk *b_nokid;
    {
        char *json = moq_jwk_to_json(b1, false);
        char *kid = strstr(json, ",\"kid\":\"b\"");
        memmove(kid, kid + 10, strlen(kid + 10) + 1);
        assert_int_equal(moq_jwk_parse(json, strlen(json), &b_nokid, NULL), 0);
        free(json);
    }
    t = sign(b_nokid, "z", L(""), NONE);
    expect_ok(a, "/z", t, "z", L(""), NONE);
    free(t);
    moq_jwk *stranger = gen(MOQ_ALG_HS256, NULL);
    t = sign(stranger, "z", L(""), NONE);
    expect_refused(a, "/z", t, MOQ_AUTH_R_SIGNATURE);
    free(t);

    moq_auth_free(a);
    moq_jwk_unref(a1);
    moq_jwk_unref(b1);
    moq_jwk_unref(c1);
    moq_jwk_unref(bpub);
    moq_jwk_unref(b_nokid);
    moq_jwk_unref(stranger);
}

struct reload_seen {
    char paths[4][256];
    bool ok[4];
    size_t n;
};

static void record_reload(void *ctx, const char *path, const moq_jwk *key,
                          const moq_auth_error *err)
{
    struct reload_seen *seen = ctx;
    assert_true(seen->n < 4);
    assert_true((key == NULL) == (err != NULL));
    snprintf(seen->paths[seen->n], sizeof(seen->paths[0]), "%s", path);
    seen->ok[seen->n++] = key != NULL;
}

/* An explicit reload re-reads every key file, reports each, fails closed on a broken one
 * and forgets the key_dir cache. */
static void explicit_reload(void **state)
{
    fixture *f = *state;
    moq_jwk *k1 = gen(MOQ_ALG_ES256, NULL), *k2 = gen(MOQ_ALG_HS256, "two");
    save(k1, f->dir, "one.jwk");
    save(k2, f->dir, "two.jwk");
    char one[256], two[256];
    snprintf(one, sizeof(one), "%s/one.jwk", f->dir);
    snprintf(two, sizeof(two), "%s/two.jwk", f->dir);
    const char *keys[] = {two};
    moq_auth_config cfg = {.key = one, .keys = keys, .keys_len = 1};
    moq_auth *a = auth_new(&cfg);
    assert_int_equal(moq_auth_key_files(a), 2);
    assert_false(moq_auth_has_key_dir(a));
    char *t1 = sign(k1, "r", L(""), NONE);
    expect_ok(a, "/r", t1, "r", L(""), NONE);

    struct reload_seen seen = {0};
    size_t dropped = 99;
    assert_int_equal(moq_auth_reload(a, record_reload, &seen, &dropped), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.paths[0], one);
    assert_string_equal(seen.paths[1], two);
    assert_true(seen.ok[0] && seen.ok[1]);
    assert_int_equal(dropped, 0);
    expect_ok(a, "/r", t1, "r", L(""), NONE);

    FILE *fp = fopen(one, "w");
    fputs("{not json", fp);
    fclose(fp);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(moq_auth_reload(a, record_reload, &seen, NULL), 1);
    assert_false(seen.ok[0]);
    assert_true(seen.ok[1]);
    expect_refused(a, "/r", t1, MOQ_AUTH_R_ALGORITHM); /* only the other key is left */
    char *t2 = sign(k2, "r", L(""), NONE);
    expect_ok(a, "/r", t2, "r", L(""), NONE);
    save(k1, f->dir, "one.jwk");
    assert_int_equal(moq_auth_reload(a, NULL, NULL, NULL), 0);
    expect_ok(a, "/r", t1, "r", L(""), NONE);
    moq_auth_free(a);

    save(k2, f->keys, "two.jwk");
    moq_auth_config dir = {.key_dir = f->keys};
    a = auth_new(&dir);
    assert_true(moq_auth_has_key_dir(a));
    expect_ok(a, "/r", t2, "r", L(""), NONE);
    assert_int_equal(moq_auth_reload(a, NULL, NULL, &dropped), 0);
    assert_int_equal(dropped, 1);
    expect_ok(a, "/r", t2, "r", L(""), NONE);
    moq_auth_free(a);
    free(t1);
    free(t2);
    moq_jwk_unref(k1);
    moq_jwk_unref(k2);
}

static void request_parsing(void **state)
{
    static const struct {
        const char *query, *jwt;
    } q[] = {
        {"jwt=xd", "xd"},
        {"a=1&jwt=ab%20cd", "ab cd"},
        {"jwt=a+b", "a b"},
        {"jwt=first&jwt=second", "second"},
        {"jwt=first&jwt=", "first"},
        {"jwt=", NULL},
        {"jwt", NULL},
        {"", NULL},
        {"jw%74=enc", "enc"},
        {"xjwt=1&jwtx=2", NULL},
    };
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        char *got = NULL;
        assert_int_equal(moq_auth_query_jwt(q[i].query, strlen(q[i].query), &got), 0);
        if (q[i].jwt == NULL) {
            assert_null(got);
        } else {
            assert_non_null(got);
            assert_string_equal(got, q[i].jwt);
        }
        free(got);
    }
    /* The token is read by the same strict decoder as every other query parameter: a bad
     * escape anywhere in the query is refused, never passed through as it is. */
    static const char *const bad[] = {"jwt=%zz", "jwt=ok&x=%4", "jwt=a%00b", "%zz=1&jwt=ok"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *got = NULL;
        assert_int_equal(moq_auth_query_jwt(bad[i], strlen(bad[i]), &got), MOQ_ERR_INVALID);
        assert_null(got);
    }

    fixture *f = *state;
    moq_jwk *key = gen(MOQ_ALG_HS256, NULL);
    save(key, f->dir, "k.jwk");
    char path[256];
    snprintf(path, sizeof(path), "%s/k.jwk", f->dir);
    const char *anon[] = {"anon"};
    moq_auth_config cfg = {.key = path, .public_publish = anon, .public_publish_len = 1};
    moq_auth *a = auth_new(&cfg);
    char *t = sign(key, "room/123", L(""), L(""));
    char target[1024];
    moq_perms p;
    moq_auth_error err = {0};

    snprintf(target, sizeof(target), "/room/123?foo=bar&jwt=%s#frag", t);
    assert_int_equal(moq_auth_check_target(a, target, strlen(target), NOW, &p, &err), 0);
    assert_string_equal(p.root, "room/123");
    moq_perms_free(&p);
    /* Dot segments resolve like a URL parser would. */
    snprintf(target, sizeof(target), "/room/x/../123/./alice?jwt=%s", t);
    assert_int_equal(moq_auth_check_target(a, target, strlen(target), NOW, &p, &err), 0);
    assert_string_equal(p.root, "room/123/alice");
    moq_perms_free(&p);
    snprintf(target, sizeof(target), "/room/123/../../secret?jwt=%s", t);
    assert_int_equal(moq_auth_check_target(a, target, strlen(target), NOW, &p, &err), MOQ_ERR_AUTH);
    assert_int_equal(err.reason, MOQ_AUTH_R_ROOT_MISMATCH);
    /* An empty jwt is anonymous. */
    assert_int_equal(moq_auth_check_target(a, "/anon?jwt=", 10, NOW, &p, &err), 0);
    assert_string_equal(p.root, "anon");
    moq_perms_free(&p);
    assert_int_equal(moq_auth_check_target(a, "/anon\0x", 7, NOW, &p, &err), MOQ_ERR_AUTH);
    /* A bad escape is refused before any access is looked at, even on a public path. */
    assert_int_equal(moq_auth_check_target(a, "/anon?jwt=%zz", 13, NOW, &p, &err), MOQ_ERR_AUTH);
    assert_int_equal(err.reason, MOQ_AUTH_R_MALFORMED);
    assert_int_equal(moq_auth_check_target(a, "/an%zzon", 8, NOW, &p, &err), MOQ_ERR_AUTH);
    assert_int_equal(err.reason, MOQ_AUTH_R_MALFORMED);
    assert_int_equal(moq_auth_check_path(a, "/anon", 5, "x=%4", 4, NOW, &p, &err), MOQ_ERR_AUTH);
    assert_int_equal(err.reason, MOQ_AUTH_R_MALFORMED);
    /* An absolute-form target is split like the HTTP server splits it. */
    snprintf(target, sizeof(target), "http://relay:4443/room/123?jwt=%s", t);
    assert_int_equal(moq_auth_check_target(a, target, strlen(target), NOW, &p, &err), 0);
    assert_string_equal(p.root, "room/123");
    moq_perms_free(&p);

    /* SETUP-carried path and query: empty path is the root; no dot handling. */
    snprintf(target, sizeof(target), "jwt=%s", t);
    assert_int_equal(moq_auth_check_path(a, "/room/123", 9, target, strlen(target), NOW, &p, &err),
                     0);
    assert_string_equal(p.root, "room/123");
    moq_perms_free(&p);
    assert_int_equal(moq_auth_check_path(a, "", 0, NULL, 0, NOW, &p, &err), 0);
    assert_string_equal(p.root, "");
    assert_list(&p.publish, L("anon"));
    moq_perms_free(&p);

    free(t);
    moq_auth_free(a);
    moq_jwk_unref(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_helpers),
        cmocka_unit_test(authorize_rebasing),
        cmocka_unit_test(guide_table),
        cmocka_unit_test(perms_overlap_and_flags),
        cmocka_unit_test(scope_rules),
        cmocka_unit_test(public_access),
        cmocka_unit_test_setup_teardown(key_dir_tokens, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(single_key, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(key_rotation_list, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(request_parsing, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(explicit_reload, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
