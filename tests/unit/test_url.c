/* Unit tests for src/util/url: URL parsing, authorities, query parameters. */
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

static void query_parameters(void **state)
{
    char out[64];
    assert_int_equal(moq_query_param("a=1&jwt=ab%2Ecd&b", "jwt", out, sizeof(out)), 5);
    assert_string_equal(out, "ab.cd");
    assert_int_equal(moq_query_param("a=1&jwt=ab%2Ecd&b", "b", out, sizeof(out)), 0);
    assert_int_equal(moq_query_param("a=x+y", "a", out, sizeof(out)), 3);
    assert_string_equal(out, "x y");
    assert_int_equal(moq_query_param("a=1", "jwt", out, sizeof(out)), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_query_param("", "jwt", out, sizeof(out)), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_query_param("jwt=%zz", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(moq_query_param("jwt=%4", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(moq_query_param("jwt=%00", "jwt", out, sizeof(out)), MOQ_ERR_INVALID);
    assert_int_equal(moq_query_param("jwt=abcdef", "jwt", out, 4), MOQ_ERR_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_schemes_we_use),
        cmocka_unit_test(rejects_malformed_urls),
        cmocka_unit_test(query_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
