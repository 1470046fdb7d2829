/* Unit tests for src/util/url: URL parsing, authorities, the percent-decoder, request
 * targets and query parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/url.h"

static void parses_the_schemes_we_use(void **state)
{
    moq_url u;
    assert_int_equal(moq_url_parse("moql://localhost:4443/room?jwt=abc", &u), 0);
    assert_string_equal(u.scheme, "moql");
    assert_string_equal(u.host, "localhost");
    assert_string_equal(u.port, "4443");
    assert_string_equal(u.path, "/room");
    assert_string_equal(u.query, "jwt=abc");
    moq_url_free(&u);

    assert_int_equal(moq_url_parse("HTTPS://relay.example", &u), 0);
    assert_string_equal(u.scheme, "https");
    assert_string_equal(u.port, "443");
    assert_string_equal(u.path, "/");
    assert_string_equal(u.query, "");
    char auth[64];
    assert_int_equal(moq_url_authority(&u, auth, sizeof(auth)), 17);
    assert_string_equal(auth, "relay.example:443");
    moq_url_free(&u);

    assert_int_equal(moq_url_parse("http://[::1]:4443/?x=1#frag", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_string_equal(u.port, "4443");
    assert_string_equal(u.path, "/");
    assert_string_equal(u.query, "x=1");
    assert_true(moq_url_authority(&u, auth, sizeof(auth)) > 0);
    assert_string_equal(auth, "[::1]:4443");
    moq_url_free(&u);

    assert_int_equal(moq_url_parse("http://127.0.0.1", &u), 0);
    assert_string_equal(u.port, "80");
    moq_url_free(&u);
}

static void rejects_malformed_urls(void **state)
{
    moq_url u;
    const char *bad[] = {
        "localhost:4443",  "://x",          "moql://",      "moql://:443/", "moql://h:0/",
        "moql://h:99999/", "moql://h:12a/", "moql://[::1/", "moql://u@h/",  "mo ql://h/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(moq_url_parse(bad[i], &u), MOQ_ERR_INVALID);
}

#define QP(q, name, out, cap) moq_query_param(q, strlen(q), name, out, cap)

static void query_parameters(void **state)
{
    char out[64];
    assert_int_equal(QP("a=1&jwt=ab%2Ecd&b", "jwt", out, sizeof(out)), 5);
    assert_string_equal(out, "ab.cd");
    assert_int_equal(QP("a=1&jwt=ab%2Ecd&b", "b", out, sizeof(out)), 0);
    assert_int_equal(QP("a=x+y", "a", out, sizeof(out)), 3);
    assert_string_equal(out, "x y");
    assert_int_equal(QP("a=1", "jwt", out, sizeof(out)), MOQ_ERR_NOT_FOUND);
    assert_int_equal(QP("", "jwt", out, sizeof(out)), MOQ_ERR_NOT_FOUND);
    assert_int_equal(QP("jwt=%zz", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(QP("jwt=%4", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(QP("jwt=%00", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(QP("jwt=abcdef", "jwt", out, 4), MOQ_ERR_TOO_LARGE);
    /* The last non-empty occurrence wins, as upstream reads `jwt`. */
    assert_int_equal(QP("jwt=first&jwt=second", "jwt", out, sizeof(out)), 6);
    assert_string_equal(out, "second");
    assert_int_equal(QP("jwt=first&jwt=", "jwt", out, sizeof(out)), 5);
    assert_string_equal(out, "first");
    assert_int_equal(QP("jwt=&jwt", "jwt", out, sizeof(out)), 0);
    assert_int_equal(QP("jw%74=enc", "jwt", out, sizeof(out)), 3);
    /* A bad escape in another parameter spoils the whole query, so no reader can skip it. */
    assert_int_equal(QP("x=%zz&jwt=ok", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(QP("jwt=ok&%g0", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(moq_query_validate("a=1&b=%41+&c", 12), 0);
    assert_int_equal(moq_query_validate("a=1&b=%4", 8), MOQ_ERR_INVALID);
}

static void percent_decoding(void **state)
{
    char out[16];
    assert_int_equal(moq_percent_decode("a%2Fb%41+", 9, out, sizeof(out), 0), 5);
    assert_string_equal(out, "a/bA+");
    assert_int_equal(moq_percent_decode("a+b", 3, out, sizeof(out), 1), 3);
    assert_string_equal(out, "a b");
    assert_int_equal(moq_percent_decode("", 0, out, sizeof(out), 0), 0);
    assert_string_equal(out, "");
    static const char *const bad[] = {"%", "%4", "%g1", "%1g", "a%00", "%%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(moq_percent_decode(bad[i], strlen(bad[i]), out, sizeof(out), 0),
                         MOQ_ERR_INVALID);
    assert_int_equal(moq_percent_decode("a\0b", 3, out, sizeof(out), 0), MOQ_ERR_INVALID);
    assert_int_equal(moq_percent_decode("abcd", 4, out, 4, 0), MOQ_ERR_TOO_LARGE);
    assert_int_equal(moq_percent_decode("abcd", 4, out, 5, 0), 4);
    assert_int_equal(moq_percent_decode("", 0, out, 0, 0), MOQ_ERR_TOO_LARGE);
}

static void target_split(void **state)
{
    moq_target t;
    const char *s = "/room/a%20b?jwt=x&y=1#frag";
    assert_int_equal(moq_target_split(s, strlen(s), &t), 0);
    assert_int_equal(t.path_len, 11);
    assert_memory_equal(t.path, "/room/a%20b", 11);
    assert_true(t.has_query);
    assert_int_equal(t.query_len, 9);
    assert_memory_equal(t.query, "jwt=x&y=1", 9);

    s = "https://relay:443/x?";
    assert_int_equal(moq_target_split(s, strlen(s), &t), 0);
    assert_memory_equal(t.path, "/x", 2);
    assert_false(t.has_query); /* http-parser reports an empty query as none */
    assert_int_equal(t.query_len, 0);

    assert_int_equal(moq_target_split("/", 1, &t), 0);
    assert_false(t.has_query);
    assert_string_equal(t.query, "");

    static const char *const bad[] = {"",          "room",     "/a b",  "/a%zz",
                                      "/a?jwt=%4", "/a?%g0=1", "/a\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(moq_target_split(bad[i], strlen(bad[i]), &t), MOQ_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_schemes_we_use),
        cmocka_unit_test(rejects_malformed_urls),
        cmocka_unit_test(query_parameters),
        cmocka_unit_test(percent_decoding),
        cmocka_unit_test(target_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
