/* Unit tests for src/util/json: nesting and commas, string escapes, bytes that are not
 * UTF-8, numbers, and unbalanced documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/json.h"

static void expect_text(moq_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

static void nesting_and_commas(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    moq_json j;
    moq_json_init(&j, &b);
    moq_json_object(&j);
    moq_json_key(&j, "a");
    moq_json_array(&j);
    moq_json_u64(&j, 1);
    moq_json_object(&j);
    moq_json_end(&j);
    moq_json_array(&j);
    moq_json_end(&j);
    moq_json_null(&j);
    moq_json_end(&j);
    moq_json_key(&j, "b");
    moq_json_bool(&j, true);
    moq_json_key(&j, "c");
    moq_json_double(&j, 1.5);
    moq_json_key(&j, "d");
    moq_json_str(&j, NULL);
    moq_json_end(&j);
    assert_int_equal(moq_json_finish(&j), 0);
    expect_text(&b, "{\"a\":[1,{},[],null],\"b\":true,\"c\":1.500,\"d\":null}");
    moq_buf_free(&b);
}

static void escapes_and_bad_utf8(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    moq_json j;
    moq_json_init(&j, &b);
    moq_json_array(&j);
    moq_json_str(&j, "q\"b\\n\n\x01\x7f");
    moq_json_str(&j, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5");
    /* a lone continuation byte, an overlong '/', a surrogate, a truncated sequence */
    moq_json_bytes(&j, "\x80\xc0\xaf\xed\xa0\x80\xe2\x82", 8);
    moq_json_end(&j);
    assert_int_equal(moq_json_finish(&j), 0);
    expect_text(&b,
                "[\"q\\\"b\\\\n\\u000a\\u0001\\u007f\",\"caf\xc3\xa9 \xe2\x82\xac "
                "\xf0\x9f\x8e\xa5\",\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"]");
    moq_buf_free(&b);
}

static void unbalanced(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    moq_json j;
    moq_json_init(&j, &b);
    moq_json_object(&j);
    assert_int_equal(moq_json_finish(&j), MOQ_ERR_INVALID);
    moq_json_end(&j);
    assert_int_equal(moq_json_finish(&j), 0);
    moq_json_end(&j); /* one too many */
    assert_int_equal(moq_json_finish(&j), MOQ_ERR_INVALID);
    moq_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nesting_and_commas),
        cmocka_unit_test(escapes_and_bad_utf8),
        cmocka_unit_test(unbalanced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
