/* Unit tests for src/moq/path: normalisation, per-segment prefix and suffix rules, join,
 * and the 32-segment limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "moq/path.h"
#include "util/err.h"

static void assert_str(moq_str got, const char *want)
{
    assert_int_equal(got.len, strlen(want));
    if (got.len) assert_memory_equal(got.ptr, want, got.len);
}

static void normalize_case(const char *in, const char *want)
{
    char buf[256];
    size_t n = strlen(in), out = 999;
    memcpy(buf, in, n);
    assert_int_equal(moq_path_normalize(buf, n, &out), 0);
    assert_str(moq_str_make(buf, out), want);
    assert_true(moq_path_is_normalized(moq_str_make(buf, out)));

    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_buf_append(&b, "x", 1), 0);
    assert_int_equal(moq_path_normalize_append(&b, moq_str_make(in, n)), 0);
    assert_int_equal(b.len, 1 + strlen(want));
    assert_memory_equal(b.data + 1, want, strlen(want));
    moq_buf_free(&b);
}

static void normalisation(void **state)
{
    normalize_case("", "");
    normalize_case("/", "");
    normalize_case("////", "");
    normalize_case("a", "a");
    normalize_case("/a/", "a");
    normalize_case("a//b", "a/b");
    normalize_case("//a///b//c//", "a/b/c");
    normalize_case("room/123", "room/123");
    normalize_case("anon/bbb/", "anon/bbb");

    assert_false(moq_path_is_normalized(MOQ_STR("/a")));
    assert_false(moq_path_is_normalized(MOQ_STR("a/")));
    assert_false(moq_path_is_normalized(MOQ_STR("a//b")));
    assert_true(moq_path_is_normalized(MOQ_STR("")));
    assert_true(moq_path_is_normalized(MOQ_STR("a/b")));
}

static void paths_are_byte_strings_not_c_strings(void **state)
{
    /* An embedded NUL is just a byte of a segment. */
    char buf[] = {'/', 'a', '\0', 'b', '/', '/', 'c', '/'};
    size_t n;
    assert_int_equal(moq_path_normalize(buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "a\0b/c", 5);
    moq_str p = moq_str_make(buf, n);
    assert_int_equal(moq_path_count_parts(p), 2);
    assert_true(moq_path_has_prefix(p, moq_str_make("a\0b", 3)));
    assert_false(moq_path_has_prefix(p, moq_str_make("a", 1)));
}

/* A path of n one-letter segments joined by sep ("/" or "//"). */
static size_t make_parts(char *out, int n, const char *sep)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (i) len += (size_t)sprintf(out + len, "%s", sep);
        out[len++] = (char)('a' + i % 26);
    }
    return len;
}

static void segment_limit(void **state)
{
    char buf[256];
    size_t n, out;

    n = make_parts(buf, 32, "//");
    assert_int_equal(moq_path_count_parts(moq_str_make(buf, n)), 32);
    assert_int_equal(moq_path_normalize(buf, n, &out), 0);
    assert_int_equal(out, 63);
    assert_true(moq_path_is_normalized(moq_str_make(buf, out)));

    n = make_parts(buf, 33, "/");
    assert_int_equal(moq_path_count_parts(moq_str_make(buf, n)), 33);
    assert_false(moq_path_is_normalized(moq_str_make(buf, n)));
    assert_int_equal(moq_path_normalize(buf, n, &out), MOQ_ERR_TOO_LARGE);

    /* Empty segments do not count: 33 slashes around 32 parts are fine. */
    n = make_parts(buf + 1, 32, "/") + 2;
    buf[0] = '/';
    buf[n - 1] = '/';
    assert_int_equal(moq_path_normalize(buf, n, &out), 0);

    moq_buf b;
    moq_buf_init(&b);
    n = make_parts(buf, 40, "/");
    assert_int_equal(moq_path_normalize_append(&b, moq_str_make(buf, n)), MOQ_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    moq_buf_free(&b);
}

static void prefix_rules(void **state)
{
    assert_true(moq_path_has_prefix(MOQ_STR("a/b"), MOQ_STR("a")));
    assert_true(moq_path_has_prefix(MOQ_STR("a/b"), MOQ_STR("a/b")));
    assert_true(moq_path_has_prefix(MOQ_STR("a/b/c"), MOQ_STR("a/b")));
    assert_false(moq_path_has_prefix(MOQ_STR("a/bc"), MOQ_STR("a/b")));
    assert_false(moq_path_has_prefix(MOQ_STR("ab"), MOQ_STR("a")));
    assert_false(moq_path_has_prefix(MOQ_STR("a"), MOQ_STR("a/b")));
    assert_false(moq_path_has_prefix(MOQ_STR("b/a"), MOQ_STR("a")));
    assert_true(moq_path_has_prefix(MOQ_STR("anything/at/all"), MOQ_STR("")));
    assert_true(moq_path_has_prefix(MOQ_STR(""), MOQ_STR("")));
    assert_false(moq_path_has_prefix(MOQ_STR(""), MOQ_STR("a")));
}

static void suffix_rules(void **state)
{
    moq_str s;
    assert_int_equal(moq_path_strip_prefix(MOQ_STR("a/b/c"), MOQ_STR("a"), &s), 0);
    assert_str(s, "b/c");
    assert_int_equal(moq_path_strip_prefix(MOQ_STR("a/b/c"), MOQ_STR("a/b"), &s), 0);
    assert_str(s, "c");
    assert_int_equal(moq_path_strip_prefix(MOQ_STR("a/b"), MOQ_STR("a/b"), &s), 0);
    assert_str(s, "");
    assert_int_equal(moq_path_strip_prefix(MOQ_STR("a/b"), MOQ_STR(""), &s), 0);
    assert_str(s, "a/b");
    assert_int_equal(moq_path_strip_prefix(MOQ_STR("a/bc"), MOQ_STR("a/b"), &s), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_path_strip_prefix(MOQ_STR("a"), MOQ_STR("a/b"), &s), MOQ_ERR_NOT_FOUND);
}

static void join_rules(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_path_join(&b, MOQ_STR("anon"), MOQ_STR("bbb")), 0);
    assert_str(moq_str_make(b.data, b.len), "anon/bbb");
    moq_buf_reset(&b);
    assert_int_equal(moq_path_join(&b, MOQ_STR(""), MOQ_STR("bbb")), 0);
    assert_str(moq_str_make(b.data, b.len), "bbb");
    moq_buf_reset(&b);
    assert_int_equal(moq_path_join(&b, MOQ_STR("anon"), MOQ_STR("")), 0);
    assert_str(moq_str_make(b.data, b.len), "anon");
    moq_buf_reset(&b);
    assert_int_equal(moq_path_join(&b, MOQ_STR(""), MOQ_STR("")), 0);
    assert_int_equal(b.len, 0);

    /* prefix + suffix joins back to the path */
    moq_str s;
    assert_int_equal(moq_path_strip_prefix(MOQ_STR("x/y/z"), MOQ_STR("x"), &s), 0);
    assert_int_equal(moq_path_join(&b, MOQ_STR("x"), s), 0);
    assert_str(moq_str_make(b.data, b.len), "x/y/z");

    char left[128], right[128];
    size_t ln = make_parts(left, 20, "/"), rn = make_parts(right, 13, "/");
    moq_buf_reset(&b);
    assert_int_equal(moq_buf_append(&b, "keep", 4), 0);
    assert_int_equal(moq_path_join(&b, moq_str_make(left, ln), moq_str_make(right, rn)),
                     MOQ_ERR_TOO_LARGE);
    assert_int_equal(b.len, 4);
    rn = make_parts(right, 12, "/");
    assert_int_equal(moq_path_join(&b, moq_str_make(left, ln), moq_str_make(right, rn)), 0);
    assert_int_equal(moq_path_count_parts(moq_str_make(b.data + 4, b.len - 4)), 32);
    moq_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalisation), cmocka_unit_test(paths_are_byte_strings_not_c_strings),
        cmocka_unit_test(segment_limit), cmocka_unit_test(prefix_rules),
        cmocka_unit_test(suffix_rules),  cmocka_unit_test(join_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
