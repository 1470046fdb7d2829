/* Tests of the moq-token command line: runs $MOQ_BUILD_DIR/moq-token and checks files,
 * output, and exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"

static char bin[PATH_MAX];
static char dir[64];
static char out_text[65536];
static char err_text[65536];

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
}

/* Run moq-token with a shell-quoted argument string; stdin from in_file (or /dev/null).
 * Returns the exit status; stdout/stderr land in out_text/err_text. */
static int run(const char *in_file, const char *fmt, ...)
{
    char args[4096], cmd[4096 + PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s < %s > out.txt 2> err.txt", dir, bin, args,
             in_file ? in_file : "/dev/null");
    int status = system(cmd);
    char path[256];
    snprintf(path, sizeof(path), "%s/out.txt", dir);
    slurp(path, out_text, sizeof(out_text));
    snprintf(path, sizeof(path), "%s/err.txt", dir);
    slurp(path, err_text, sizeof(err_text));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect(int got, int want, const char *what)
{
    if (got != want)
        fail_msg("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, got, want, out_text,
                 err_text);
}

static void save_text(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static moq_jwk *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    moq_jwk *key = NULL;
    moq_auth_error err = {0};
    if (moq_jwk_load(path, &key, &err) != 0) fail_msg("%s", err.msg);
    return key;
}

static mode_t file_mode(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

static int setup(void **state)
{
    const char *build = getenv("MOQ_BUILD_DIR");
    char rel[512];
    snprintf(rel, sizeof(rel), "%s/moq-token", build ? build : "../../build");
    /* Absolute: the commands run from a scratch directory. */
    if (!realpath(rel, bin) || access(bin, X_OK) != 0) {
        fprintf(stderr, "moq-token not found at %s\n", bin);
        return -1;
    }
    snprintf(dir, sizeof(dir), "/tmp/moq-token-cli-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void help_and_usage(void **state)
{
    expect(run(NULL, "--help"), 0, "--help");
    assert_non_null(strstr(out_text, "generate"));
    expect(run(NULL, "--version"), 0, "--version");
    assert_non_null(strstr(out_text, "moq-token "));
    const char *cmds[] = {"generate", "sign", "verify"};
    const char *flags[] = {"--public-dir", "--cluster", "--root"};
    for (size_t i = 0; i < 3; i++) {
        expect(run(NULL, "%s --help", cmds[i]), 0, cmds[i]);
        assert_non_null(strstr(out_text, flags[i]));
    }
    expect(run(NULL, "frobnicate"), 2, "unknown command");
    assert_non_null(strstr(err_text, "frobnicate"));
    expect(run(NULL, "sign --root x"), 2, "sign without key");
    assert_non_null(strstr(err_text, "--key"));
    expect(run(NULL, "generate --algorithm XX256"), 2, "bad algorithm");
    assert_non_null(strstr(err_text, "XX256"));
    expect(run(NULL, ""), 2, "no command");
}

static void generate_files(void **state)
{
    /* Default: HS256 to stdout, base64url, loadable. */
    expect(run(NULL, "generate"), 0, "generate");
    moq_jwk *key = NULL;
    assert_int_equal(moq_jwk_parse(out_text, strlen(out_text), &key, NULL), 0);
    assert_int_equal(moq_jwk_alg(key), MOQ_ALG_HS256);
    assert_int_equal(strlen(moq_jwk_kid(key)), 16);
    moq_jwk_unref(key);

    /* Pair to files: private owner-only, public verify-only. */
    expect(run(NULL, "generate --algorithm ES256 --id pair --out priv.jwk --public pub.jwk"), 0,
           "pair");
    assert_int_equal(file_mode("priv.jwk"), 0600);
    moq_jwk *priv = load("priv.jwk"), *pub = load("pub.jwk");
    assert_true(moq_jwk_is_private(priv));
    assert_false(moq_jwk_is_private(pub));
    assert_string_equal(moq_jwk_kid(pub), "pair");
    moq_jwk_unref(priv);
    moq_jwk_unref(pub);

    /* Directories name files after the kid; --json writes JSON. */
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/keys", dir);
    mkdir(sub, 0700);
    expect(run(NULL, "generate --algorithm EdDSA --id dk --out-dir . --public-dir keys --json"), 0,
           "dirs");
    moq_jwk *dk = load("keys/dk.jwk");
    assert_false(moq_jwk_is_private(dk));
    moq_jwk_unref(dk);
    dk = load("dk.jwk");
    assert_true(moq_jwk_is_private(dk));
    moq_jwk_unref(dk);
    char text[4096];
    char path[256];
    snprintf(path, sizeof(path), "%s/dk.jwk", dir);
    slurp(path, text, sizeof(text));
    assert_true(text[0] == '{');

    /* Missing directories are created: the private one owner-only. */
    expect(run(NULL, "generate --algorithm ES256 --id nd --out-dir new/priv --public-dir new/pub"),
           0, "new dirs");
    dk = load("new/pub/nd.jwk");
    assert_false(moq_jwk_is_private(dk));
    moq_jwk_unref(dk);
    dk = load("new/priv/nd.jwk");
    assert_true(moq_jwk_is_private(dk));
    moq_jwk_unref(dk);
    struct stat st;
    snprintf(path, sizeof(path), "%s/new/priv", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    save_text("plain", "not a directory\n");
    expect(run(NULL, "generate --id nd --out-dir plain/keys"), 1, "a file in the way");
    assert_non_null(strstr(err_text, "cannot create directory plain/keys"));

    /* Refusals with reasons. */
    expect(run(NULL, "generate --public pub-hs.jwk"), 1, "HS has no public half");
    assert_non_null(strstr(err_text, "public"));
    expect(run(NULL, "generate --algorithm ES256 --public -"), 1, "both to stdout");
    assert_non_null(strstr(err_text, "stdout"));
    expect(run(NULL, "generate --id ../evil"), 1, "bad kid");
    assert_non_null(strstr(err_text, "key ID"));
    expect(run(NULL, "generate --out a.jwk --out-dir ."), 2, "conflicting outputs");
}

static void sign_and_verify(void **state)
{
    expect(run(NULL, "generate --algorithm ES256 --id sv --out sv.jwk --public sv.pub.jwk"), 0,
           "keys");
    expect(run(NULL, "sign --key sv.jwk --root demo --publish alice --subscribe ''"), 0, "sign");
    save_text("t.jwt", out_text);
    expect(run("t.jwt", "verify --key sv.pub.jwk"), 0, "verify");
    assert_non_null(strstr(out_text, "\"root\": \"demo\""));
    assert_non_null(strstr(out_text, "\"alice\""));
    expect(run(NULL, "verify --key sv.pub.jwk --in t.jwt --root demo/alice"), 0, "verify --root");
    expect(run(NULL, "verify --key sv.pub.jwk --in t.jwt --root other"), 1, "wrong root");
    assert_non_null(strstr(err_text, "other"));
    expect(run("sv.pub.jwk", "verify --key - --in t.jwt"), 0, "key from stdin");
    expect(run(NULL, "verify --key - --in -"), 1, "both stdin");
    assert_non_null(strstr(err_text, "stdin"));

    /* Another key refuses it, with the reason on stderr. */
    expect(run(NULL, "generate --algorithm ES256 --out other.jwk"), 0, "other key");
    expect(run("t.jwt", "verify --key other.jwk"), 1, "wrong key");
    assert_non_null(strstr(err_text, "signature"));
    assert_string_equal(out_text, "");

    /* Legacy global --key and the cluster token. */
    expect(run(NULL, "--key sv.jwk sign --root '' --subscribe '' --publish '' --cluster"), 0,
           "cluster");
    save_text("c.jwt", out_text);
    expect(run("c.jwt", "--key sv.pub.jwk verify"), 0, "verify cluster");
    assert_non_null(strstr(out_text, "\"cluster\": true"));

    /* A token granting nothing is refused. */
    expect(run(NULL, "sign --key sv.jwk --root demo"), 1, "useless");
    assert_non_null(strstr(err_text, "neither"));
}

static int64_t exp_of(const char *claims_json)
{
    const char *p = strstr(claims_json, "\"exp\": ");
    assert_non_null(p);
    return strtoll(p + 7, NULL, 10);
}

static void expiry_forms(void **state)
{
    expect(run(NULL, "generate --out e.jwk"), 0, "key");
    expect(run(NULL, "sign --key e.jwk --publish '' --expires 4102444800 --issued 1700000000"), 0,
           "unix");
    save_text("e1.jwt", out_text);
    expect(run("e1.jwt", "verify --key e.jwk"), 0, "verify unix");
    assert_int_equal(exp_of(out_text), 4102444800LL);
    assert_non_null(strstr(out_text, "\"iat\": 1700000000"));

    expect(run(NULL, "sign --key e.jwk --publish '' --expires 2100-01-01T01:00:00+01:00"), 0,
           "rfc3339");
    save_text("e2.jwt", out_text);
    expect(run("e2.jwt", "verify --key e.jwk"), 0, "verify rfc3339");
    assert_int_equal(exp_of(out_text), 4102444800LL);

    int64_t before = (int64_t)time(NULL);
    expect(run(NULL, "sign --key e.jwk --publish '' --expires +2h"), 0, "relative");
    save_text("e3.jwt", out_text);
    expect(run("e3.jwt", "verify --key e.jwk"), 0, "verify relative");
    int64_t exp = exp_of(out_text);
    assert_true(exp >= before + 7200 && exp <= (int64_t)time(NULL) + 7200);

    /* In the past (or now): refused, as it would never verify; --allow-expired signs it. */
    expect(run(NULL, "sign --key e.jwk --publish '' --expires 1000"), 2, "past");
    assert_non_null(
        strstr(err_text, "--expires '1000' (1970-01-01T00:16:40Z) is not in the future"));
    assert_int_equal(out_text[0], '\0');
    expect(run(NULL, "sign --key e.jwk --publish '' --expires 2001-01-01T00:00:00Z"), 2,
           "past date");
    expect(run(NULL, "sign --key e.jwk --publish '' --expires +0"), 2, "now");
    expect(run(NULL, "sign --key e.jwk --publish '' --expires 1000 --allow-expired"), 0, "allowed");
    save_text("e4.jwt", out_text);
    expect(run("e4.jwt", "verify --key e.jwk"), 1, "expired");
    assert_non_null(strstr(err_text, "expired"));

    expect(run(NULL, "sign --key e.jwk --publish '' --expires tomorrow"), 2, "garbage");
    expect(run(NULL, "sign --key e.jwk --publish '' --expires -5"), 2, "negative");
}

static void scoped_keys(void **state)
{
    expect(run(NULL, "generate --algorithm EdDSA --root project --publish live --out s.jwk "
                     "--public s.pub.jwk"),
           0, "scoped");
    moq_jwk *pub = load("s.pub.jwk");
    assert_non_null(moq_jwk_scope(pub)); /* both halves carry the scope */
    moq_jwk_unref(pub);
    expect(run(NULL, "sign --key s.jwk --root project/live/room --publish ''"), 0, "within");
    expect(run(NULL, "sign --key s.jwk --root project --publish other"), 1, "beyond");
    assert_non_null(strstr(err_text, "scope"));
    expect(run(NULL, "sign --key s.jwk --root project/live --subscribe ''"), 1, "other role");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_and_usage),  cmocka_unit_test(generate_files),
        cmocka_unit_test(sign_and_verify), cmocka_unit_test(expiry_forms),
        cmocka_unit_test(scoped_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
