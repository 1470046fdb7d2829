/* Unit tests for src/config/toml: every TOML feature the parser accepts, every error it must
 * report (with line:col), positions kept in the tree, limits, and print/re-parse round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "config/toml.h"
#include "util/err.h"

static struct moq_toml_value *parse_ok(const char *doc)
{
    struct moq_toml_value *root = NULL;
    struct moq_toml_error err;
    int rc = moq_toml_parse(doc, strlen(doc), &root, &err);
    if (rc != 0)
        fail_msg("unexpected error %d at %u:%u: %s\n--- doc:\n%s", rc, err.line, err.col, err.msg,
                 doc);
    assert_non_null(root);
    assert_int_equal(root->type, MOQ_TOML_TABLE);
    return root;
}

static const struct moq_toml_value *get(const struct moq_toml_value *root, const char *path)
{
    const struct moq_toml_value *v = moq_toml_get_path(root, path);
    if (!v) fail_msg("missing %s", path);
    return v;
}

static int64_t get_int(const struct moq_toml_value *root, const char *path)
{
    const struct moq_toml_value *v = get(root, path);
    assert_int_equal(v->type, MOQ_TOML_INTEGER);
    return v->u.i;
}

static double get_float(const struct moq_toml_value *root, const char *path)
{
    const struct moq_toml_value *v = get(root, path);
    assert_int_equal(v->type, MOQ_TOML_FLOAT);
    return v->u.f;
}

static const char *get_str(const struct moq_toml_value *root, const char *path)
{
    const struct moq_toml_value *v = get(root, path);
    assert_int_equal(v->type, MOQ_TOML_STRING);
    return v->u.str.ptr;
}

/* ---- valid documents ---------------------------------------------------------------------- */

static void integers(void **state)
{
    static const struct {
        const char *doc;
        int64_t v;
    } cases[] = {
        {"a = 0", 0},
        {"a = +0", 0},
        {"a = -0", 0},
        {"a = 42", 42},
        {"a = +99", 99},
        {"a = -17", -17},
        {"a = 1_000", 1000},
        {"a = 5_349_221", 5349221},
        {"a = 1_2_3_4_5", 12345},
        {"a = 9223372036854775807", INT64_MAX},
        {"a = -9223372036854775808", INT64_MIN},
        {"a = 0xDEADBEEF", 0xDEADBEEF},
        {"a = 0xdeadbeef", 0xDEADBEEF},
        {"a = 0xdead_beef", 0xDEADBEEF},
        {"a = 0x7FFFFFFFFFFFFFFF", INT64_MAX},
        {"a = 0x0000_01", 1},
        {"a = 0o01234567", 01234567},
        {"a = 0o755", 0755},
        {"a = 0b11010110", 214},
        {"a = 0b1_0", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct moq_toml_value *r = parse_ok(cases[i].doc);
        if (get_int(r, "a") != cases[i].v) fail_msg("%s", cases[i].doc);
        moq_toml_free(r);
    }
}

static void floats(void **state)
{
    static const struct {
        const char *doc;
        double v;
    } cases[] = {
        {"a = +1.0", 1.0},
        {"a = 3.1415", 3.1415},
        {"a = -0.01", -0.01},
        {"a = 5e+22", 5e22},
        {"a = 1e06", 1e6},
        {"a = -2E-2", -2e-2},
        {"a = 6.626e-34", 6.626e-34},
        {"a = 224_617.445_991_228", 224617.445991228},
        {"a = 0.0", 0.0},
        {"a = 0e0", 0.0},
        {"a = 1e1_0", 1e10},
        {"a = 9_9.9_9e9_9", 99.99e99},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct moq_toml_value *r = parse_ok(cases[i].doc);
        if (get_float(r, "a") != cases[i].v) fail_msg("%s", cases[i].doc);
        moq_toml_free(r);
    }
    struct moq_toml_value *r = parse_ok("a = inf\nb = +inf\nc = -inf\nd = nan\ne = +nan\nf = -nan\n"
                                        "g = -0.0");
    assert_true(isinf(get_float(r, "a")) && get_float(r, "a") > 0);
    assert_true(isinf(get_float(r, "b")) && get_float(r, "b") > 0);
    assert_true(isinf(get_float(r, "c")) && get_float(r, "c") < 0);
    assert_true(isnan(get_float(r, "d")));
    assert_true(isnan(get_float(r, "e")));
    assert_true(isnan(get_float(r, "f")));
    assert_true(get_float(r, "g") == 0.0 && signbit(get_float(r, "g")));
    moq_toml_free(r);
}

static void booleans_and_comments(void **state)
{
    struct moq_toml_value *r = parse_ok("# leading comment\n"
                                        "t = true # trailing\n"
                                        "f = false\t#\ttabbed comment with \xc3\xa9\n"
                                        "   # indented comment\n"
                                        "#\n");
    assert_int_equal(get(r, "t")->type, MOQ_TOML_BOOL);
    assert_true(get(r, "t")->u.b);
    assert_false(get(r, "f")->u.b);
    assert_int_equal(moq_toml_table_len(r), 2);
    moq_toml_free(r);
}

static void basic_strings_and_escapes(void **state)
{
    struct moq_toml_value *r = parse_ok("a = \"\\b\\t\\n\\f\\r\\\"\\\\\"\n"
                                        "b = \"caf\\u00e9 \\U0001F600 \\u0041\"\n"
                                        "c = \"tab\there\"\n"
                                        "d = \"\"\n"
                                        "e = \"\\u0000x\"\n"
                                        "f = \"# not a comment\"\n"
                                        "g = \"utf-8 \xe2\x82\xac\"\n");
    assert_string_equal(get_str(r, "a"), "\b\t\n\f\r\"\\");
    assert_string_equal(get_str(r, "b"), "caf\xc3\xa9 \xf0\x9f\x98\x80 A");
    assert_string_equal(get_str(r, "c"), "tab\there");
    assert_string_equal(get_str(r, "d"), "");
    const struct moq_toml_value *e = get(r, "e");
    assert_int_equal(e->u.str.len, 2); /* embedded NUL keeps its length */
    assert_memory_equal(e->u.str.ptr, "\0x", 2);
    assert_string_equal(get_str(r, "f"), "# not a comment");
    assert_string_equal(get_str(r, "g"), "utf-8 \xe2\x82\xac");
    moq_toml_free(r);
}

static void multiline_strings(void **state)
{
    struct moq_toml_value *r =
        parse_ok("a = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n"
                 "b = \"\"\"\\\n  The quick \\\n\n   brown fox.\\\n  \"\"\"\n"
                 "c = \"\"\"Here are two quotes: \"\". Simple.\"\"\"\n"
                 "d = \"\"\"\"one quote inside\"\"\"\"\n"
                 "e = \"\"\"\"\"two quotes\"\"\"\"\"\n"
                 "f = \"\"\"trailing ws backslash \\   \n  next\"\"\"\n"
                 "g = \"\"\"crlf\r\nline\"\"\"\n"
                 "h = \"\"\"tab\\tescape\"\"\"\n");
    assert_string_equal(get_str(r, "a"), "Roses are red\nViolets are blue");
    assert_string_equal(get_str(r, "b"), "The quick brown fox.");
    assert_string_equal(get_str(r, "c"), "Here are two quotes: \"\". Simple.");
    assert_string_equal(get_str(r, "d"), "\"one quote inside\"");
    assert_string_equal(get_str(r, "e"), "\"\"two quotes\"\"");
    assert_string_equal(get_str(r, "f"), "trailing ws backslash next");
    assert_string_equal(get_str(r, "g"), "crlf\nline");
    assert_string_equal(get_str(r, "h"), "tab\tescape");
    moq_toml_free(r);
}

static void literal_strings(void **state)
{
    struct moq_toml_value *r = parse_ok("a = 'C:\\Users\\nodejs\\templates'\n"
                                        "b = '<\\i\\c*\\s*>'\n"
                                        "c = '''\nraw \\n text\n  kept'''\n"
                                        "d = ''''That,' she said'''\n"
                                        "e = '''''two'''''\n"
                                        "f = ''\n"
                                        "g = 'tab\there \"double\"'\n");
    assert_string_equal(get_str(r, "a"), "C:\\Users\\nodejs\\templates");
    assert_string_equal(get_str(r, "b"), "<\\i\\c*\\s*>");
    assert_string_equal(get_str(r, "c"), "raw \\n text\n  kept");
    assert_string_equal(get_str(r, "d"), "'That,' she said");
    assert_string_equal(get_str(r, "e"), "''two''");
    assert_string_equal(get_str(r, "f"), "");
    assert_string_equal(get_str(r, "g"), "tab\there \"double\"");
    moq_toml_free(r);
}

static void keys(void **state)
{
    struct moq_toml_value *r = parse_ok("bare_key-1 = 1\n"
                                        "1234 = 2\n"
                                        "\"quoted key\" = 3\n"
                                        "'literal.key' = 4\n"
                                        "\"\" = 5\n"
                                        "a . b  .\tc = 6\n"
                                        "site.\"google.com\" = 7\n"
                                        "\"\\u00e9\" = 8\n");
    assert_int_equal(get_int(r, "bare_key-1"), 1);
    assert_int_equal(get_int(r, "1234"), 2);
    assert_int_equal(moq_toml_get(r, "quoted key")->u.i, 3);
    assert_int_equal(moq_toml_get(r, "literal.key")->u.i, 4);
    assert_int_equal(moq_toml_get(r, "")->u.i, 5);
    assert_int_equal(get_int(r, "a.b.c"), 6);
    assert_int_equal(moq_toml_get(get(r, "site"), "google.com")->u.i, 7);
    assert_int_equal(moq_toml_get(r, "\xc3\xa9")->u.i, 8);
    assert_null(moq_toml_get_path(r, "a.b.x"));
    assert_null(moq_toml_get_path(r, "a.b.c.d")); /* c is an integer */
    moq_toml_free(r);
}

static void tables(void **state)
{
    struct moq_toml_value *r = parse_ok("top = 0\n"
                                        "[server]\n"
                                        "listen = \"[::]:443\"\n"
                                        "tls.generate = [\"localhost\"]\n"
                                        "[server.quic]\n"
                                        "max = 1\n"
                                        "[ web . http ]  # spaced header\n"
                                        "listen = 2\n"
                                        "[x.y.z.w] # implicit x, x.y, x.y.z\n"
                                        "[x] # defining an implicit table later is allowed\n"
                                        "k = 3\n"
                                        "[fruit]\n"
                                        "apple.color = \"red\"\n"
                                        "apple.taste.sweet = true\n"
                                        "[fruit.apple.texture] # sub-table of a dotted table\n"
                                        "smooth = true\n"
                                        "[empty]\n");
    assert_int_equal(get_int(r, "top"), 0);
    assert_string_equal(get_str(r, "server.listen"), "[::]:443");
    assert_string_equal(moq_toml_array_at(get(r, "server.tls.generate"), 0)->u.str.ptr,
                        "localhost");
    assert_int_equal(get_int(r, "server.quic.max"), 1);
    assert_int_equal(get_int(r, "web.http.listen"), 2);
    assert_int_equal(get(r, "x.y.z.w")->type, MOQ_TOML_TABLE);
    assert_int_equal(get_int(r, "x.k"), 3);
    assert_true(get(r, "fruit.apple.taste.sweet")->u.b);
    assert_true(get(r, "fruit.apple.texture.smooth")->u.b);
    assert_int_equal(moq_toml_table_len(get(r, "empty")), 0);
    /* document order is kept */
    const char *order[] = {"top", "server", "web", "x", "fruit", "empty"};
    assert_int_equal(moq_toml_table_len(r), 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(moq_toml_table_at(r, i)->key, order[i]);
    assert_null(moq_toml_table_at(r, 6));
    moq_toml_free(r);

    /* A table implied by a deeper header may be completed with dotted keys once. */
    r = parse_ok("[a.b.c]\nz = 1\n[a]\nb.x = 2\n");
    assert_int_equal(get_int(r, "a.b.x"), 2);
    assert_int_equal(get_int(r, "a.b.c.z"), 1);
    moq_toml_free(r);
}

static void inline_tables(void **state)
{
    struct moq_toml_value *r = parse_ok("name = { first = \"Tom\", last = \"Preston-Werner\" }\n"
                                        "point = {x=1,y=2}\n"
                                        "animal = { type.name = \"pug\", type.size = 1 }\n"
                                        "nested = { a = { b = { c = [1, {d = 2}] } } }\n"
                                        "empty = {}\n"
                                        "spaced = {   }\n");
    assert_string_equal(get_str(r, "name.last"), "Preston-Werner");
    assert_int_equal(get_int(r, "point.y"), 2);
    assert_string_equal(get_str(r, "animal.type.name"), "pug");
    const struct moq_toml_value *c = get(r, "nested.a.b.c");
    assert_int_equal(moq_toml_array_len(c), 2);
    assert_int_equal(moq_toml_get(moq_toml_array_at(c, 1), "d")->u.i, 2);
    assert_int_equal(moq_toml_table_len(get(r, "empty")), 0);
    assert_int_equal(moq_toml_table_len(get(r, "spaced")), 0);
    moq_toml_free(r);
}

static void arrays(void **state)
{
    struct moq_toml_value *r = parse_ok("ints = [ 1, 2, 3 ]\n"
                                        "empty = []\n"
                                        "mixed = [ 1, 2.5, \"x\", true, [1], {a = 1} ]\n"
                                        "nested = [ [ 1, 2 ], [\"a\", 'b'] ]\n"
                                        "multi = [\n"
                                        "  1, # one\n"
                                        "  # a comment line\n"
                                        "\n"
                                        "  2,\n"
                                        "]\n"
                                        "trailing = [1,]\n");
    assert_int_equal(moq_toml_array_len(get(r, "ints")), 3);
    assert_int_equal(moq_toml_array_at(get(r, "ints"), 2)->u.i, 3);
    assert_int_equal(moq_toml_array_len(get(r, "empty")), 0);
    const struct moq_toml_value *m = get(r, "mixed");
    static const enum moq_toml_type types[] = {MOQ_TOML_INTEGER, MOQ_TOML_FLOAT, MOQ_TOML_STRING,
                                               MOQ_TOML_BOOL,    MOQ_TOML_ARRAY, MOQ_TOML_TABLE};
    assert_int_equal(moq_toml_array_len(m), 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(moq_toml_array_at(m, i)->type, types[i]);
    assert_null(moq_toml_array_at(m, 6));
    assert_string_equal(moq_toml_array_at(moq_toml_array_at(get(r, "nested"), 1), 1)->u.str.ptr,
                        "b");
    assert_int_equal(moq_toml_array_len(get(r, "multi")), 2);
    assert_int_equal(moq_toml_array_len(get(r, "trailing")), 1);
    assert_null(moq_toml_get_path(r, "ints.x")); /* not a table */
    moq_toml_free(r);
}

static void arrays_of_tables(void **state)
{
    struct moq_toml_value *r = parse_ok("[[products]]\n"
                                        "name = \"Hammer\"\n"
                                        "sku = 738594937\n"
                                        "[[products]]  # empty table\n"
                                        "[[products]]\n"
                                        "name = \"Nail\"\n"
                                        "[[fruits]]\n"
                                        "name = \"apple\"\n"
                                        "[fruits.physical]\n"
                                        "color = \"red\"\n"
                                        "[[fruits.varieties]]\n"
                                        "name = \"red delicious\"\n"
                                        "[[fruits.varieties]]\n"
                                        "name = \"granny smith\"\n"
                                        "[[fruits]]\n"
                                        "name = \"banana\"\n"
                                        "[[fruits.varieties]]\n"
                                        "name = \"plantain\"\n");
    const struct moq_toml_value *p = get(r, "products");
    assert_int_equal(moq_toml_array_len(p), 3);
    assert_string_equal(moq_toml_get(moq_toml_array_at(p, 0), "name")->u.str.ptr, "Hammer");
    assert_int_equal(moq_toml_table_len(moq_toml_array_at(p, 1)), 0);
    assert_string_equal(moq_toml_get(moq_toml_array_at(p, 2), "name")->u.str.ptr, "Nail");
    const struct moq_toml_value *f = get(r, "fruits");
    assert_int_equal(moq_toml_array_len(f), 2);
    const struct moq_toml_value *apple = moq_toml_array_at(f, 0);
    assert_string_equal(moq_toml_get_path(apple, "physical.color")->u.str.ptr, "red");
    assert_int_equal(moq_toml_array_len(moq_toml_get(apple, "varieties")), 2);
    const struct moq_toml_value *banana = moq_toml_array_at(f, 1);
    assert_string_equal(
        moq_toml_get(moq_toml_array_at(moq_toml_get(banana, "varieties"), 0), "name")->u.str.ptr,
        "plantain");
    moq_toml_free(r);
}

static void line_endings_bom_and_empty(void **state)
{
    struct moq_toml_value *r = parse_ok("\xEF\xBB\xBF"
                                        "a = 1\r\n[t]\r\nb = \"x\"\r\n");
    assert_int_equal(get_int(r, "a"), 1);
    assert_string_equal(get_str(r, "t.b"), "x");
    moq_toml_free(r);
    r = parse_ok("");
    assert_int_equal(moq_toml_table_len(r), 0);
    moq_toml_free(r);
    r = parse_ok("\n\n   \n# only comments\n");
    assert_int_equal(moq_toml_table_len(r), 0);
    moq_toml_free(r);
    r = parse_ok("a = 1"); /* no final newline */
    assert_int_equal(get_int(r, "a"), 1);
    moq_toml_free(r);
}

static void value_and_key_positions(void **state)
{
    struct moq_toml_value *r = parse_ok("# comment\n"
                                        "[server]\n"
                                        "  listen   = \"[::]:443\"\n"
                                        "\"caf\xc3\xa9\" = 7 # col counts characters\n"
                                        "tls.cert = [\"a\", \n   \"b\"]\n"
                                        "[[peers]]\n");
    const struct moq_toml_value *server = get(r, "server");
    assert_int_equal(server->line, 2);
    assert_int_equal(server->col, 1);
    const struct moq_toml_kv *kv = moq_toml_get_kv(server, "listen");
    assert_int_equal(kv->line, 3);
    assert_int_equal(kv->col, 3);
    assert_int_equal(kv->value->line, 3);
    assert_int_equal(kv->value->col, 14);
    kv = moq_toml_get_kv(server, "caf\xc3\xa9");
    assert_int_equal(kv->value->line, 4);
    assert_int_equal(kv->value->col, 10);
    const struct moq_toml_value *cert = get(r, "server.tls.cert");
    assert_int_equal(cert->line, 5);
    assert_int_equal(cert->col, 12);
    assert_int_equal(moq_toml_array_at(cert, 1)->line, 6);
    assert_int_equal(moq_toml_array_at(cert, 1)->col, 4);
    assert_int_equal(moq_toml_get_kv(get(r, "server.tls"), "cert")->col, 5);
    assert_int_equal(moq_toml_array_at(get(r, "peers"), 0)->line, 7);
    moq_toml_free(r);
}

/* ---- invalid documents ---------------------------------------------------------------------- */

struct bad {
    const char *doc;
    uint32_t line, col;
    const char *msg; /* substring of the message */
};

static void check_bad(const struct bad *b, int expect_rc)
{
    struct moq_toml_value *root = (void *)1;
    struct moq_toml_error err;
    int rc = moq_toml_parse(b->doc, strlen(b->doc), &root, &err);
    if (rc != expect_rc || root != NULL || err.line != b->line || err.col != b->col ||
        !strstr(err.msg, b->msg))
        fail_msg("doc %s\n  got rc=%d %u:%u: %s\n  want rc=%d %u:%u: ...%s...", b->doc, rc,
                 err.line, err.col, err.msg, expect_rc, b->line, b->col, b->msg);
}

static void syntax_errors(void **state)
{
    static const struct bad cases[] = {
        {"a = 1\nb = ", 2, 5, "missing value"},
        {"a", 1, 2, "expected '='"},
        {"a = 1 b = 2", 1, 7, "expected a newline"},
        {"= 1", 1, 1, "expected a key"},
        {"ke@y = 1", 1, 3, "invalid character '@' in a bare key"},
        {"k\xc3\xa9y = 1", 1, 2, "in a bare key"},
        {"a = hello", 1, 5, "strings must be quoted"},
        {"a = truex", 1, 5, "invalid value"},
        {"a = [1 2]", 1, 8, "expected ',' or ']'"},
        {"a = [1,,]", 1, 8, "expected a value"},
        {"a = [1,\n2", 1, 5, "unterminated array"},
        {"a = {x = 1,}", 1, 12, "trailing comma"},
        {"a = {x = 1\n}", 1, 11, "same line"},
        {"a = {\nx = 1}", 1, 6, "newlines are not allowed"},
        {"a = {x = 1 y = 2}", 1, 12, "expected ',' or '}'"},
        {"[a", 1, 3, "expected ']'"},
        {"[[a]", 1, 4, "expected ']]'"},
        {"[]", 1, 2, "expected a key"},
        {"[ [a] ]", 1, 3, "expected a key"},
        {"[a] b = 1", 1, 5, "expected a newline after a table header"},
        {"a = 1 # c \x01", 1, 11, "control character U+0001"},
        {"a = 1\rb = 2", 1, 6, "carriage return"},
        {"\"\"\"a\"\"\" = 1", 1, 1, "multi-line string cannot be a key"},
        {".a = 1", 1, 1, "expected a key"},
        {"a. = 1", 1, 4, "expected a key"},
        {"a = .5", 1, 5, "expected a value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i], MOQ_ERR_INVALID);
}

static void string_errors(void **state)
{
    static const struct bad cases[] = {
        {"a = \"abc", 1, 5, "unterminated string"},
        {"a = \"ab\nc\"", 1, 8, "newline in a single-line string"},
        {"a = 'ab\nc'", 1, 8, "newline in a single-line string"},
        {"a = \"\\e\"", 1, 6, "invalid escape"},
        {"a = \"\\x41\"", 1, 6, "invalid escape"},
        {"a = \"\\u12\"", 1, 6, "exactly 4 hex digits"},
        {"a = \"\\U0000004\"", 1, 6, "exactly 8 hex digits"},
        {"a = \"\\uD800\"", 1, 6, "not a Unicode scalar value"},
        {"a = \"\\U00110000\"", 1, 6, "not a Unicode scalar value"},
        {"a = \"x\\ \ny\"", 1, 7, "invalid escape"},
        {"a = \"x\\\ny\"", 1, 7, "only allowed in multi-line"},
        {"a = \"\"\"x\\  y\"\"\"", 1, 9, "must end the line"},
        {"a = \"\"\"abc\"\"\"\"\"\"", 1, 11, "too many quotes"},
        {"a = \"\"\"abc", 1, 5, "unterminated string"},
        {"a = '''abc''", 1, 5, "unterminated string"},
        {"a = \"tab\x01\"", 1, 9, "control character U+0001"},
        {"a = 'del\x7f'", 1, 9, "control character U+007F"},
        {"a = \"\"\"x\ry\"\"\"", 1, 9, "control character U+000D"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i], MOQ_ERR_INVALID);
}

static void number_errors(void **state)
{
    static const struct bad cases[] = {
        {"a = 01", 1, 5, "leading zeros"},
        {"a = -01", 1, 6, "leading zeros"},
        {"a = 0_1", 1, 5, "leading zeros"},
        {"a = 1__0", 1, 6, "underscores"},
        {"a = 1_", 1, 6, "underscores"},
        {"a = _1", 1, 5, "invalid value"},
        {"a = 0x_1", 1, 7, "underscores"},
        {"a = 0x", 1, 7, "no digits"},
        {"a = 0b102", 1, 9, "invalid character '2'"},
        {"a = 0o8", 1, 7, "invalid character '8'"},
        {"a = 0X10", 1, 6, "invalid character 'X'"},
        {"a = +0x10", 1, 5, "sign is not allowed"},
        {"a = 9223372036854775808", 1, 5, "64 bits"},
        {"a = -9223372036854775809", 1, 6, "64 bits"},
        {"a = 0x8000000000000000", 1, 5, "64 bits"},
        {"a = 1.", 1, 6, "after the decimal point"},
        {"a = 1.e5", 1, 6, "after the decimal point"},
        {"a = 01.5", 1, 5, "leading zeros"},
        {"a = 1e", 1, 6, "exponent needs digits"},
        {"a = 1e+", 1, 6, "exponent needs digits"},
        {"a = 1.5_", 1, 8, "underscores"},
        {"a = 1._5", 1, 7, "underscores"},
        {"a = 1e_5", 1, 7, "underscores"},
        {"a = 1.2.3", 1, 8, "invalid character '.'"},
        {"a = 1e400", 1, 5, "out of range"},
        {"a = +", 1, 5, "sign must be followed"},
        {"a = infinity", 1, 5, "invalid value"},
        {"a = Inf", 1, 5, "invalid value"},
        {"a = 1-2", 1, 6, "invalid character '-'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i], MOQ_ERR_INVALID);
}

static void semantic_errors(void **state)
{
    static const struct bad cases[] = {
        {"a = 1\na = 2", 2, 1, "duplicate key 'a' (first defined at line 1)"},
        {"a = 1\n\"a\" = 2", 2, 1, "duplicate key"},
        {"a.b = 1\na.b = 2", 2, 3, "duplicate key 'b'"},
        {"[t]\nx = 1\n[t]\ny = 2", 3, 1, "table 't' is defined twice (line 1)"},
        {"[a.b]\n[a]\n[a.b]", 3, 1, "defined twice"},
        {"a = 1\n[a]", 2, 1, "already an integer"},
        {"a.b = 1\na.b.c = 2", 2, 3, "already an integer"},
        {"a = {x = 1}\na.y = 2", 2, 1, "inline table 'a'"},
        {"a = {x = 1}\n[a]", 2, 1, "already defined as an inline table"},
        {"a = {x = {y = 1}}\n[a.x.z]", 2, 2, "cannot add to inline table 'a'"},
        {"a = {x = 1, x = 2}", 1, 13, "duplicate key 'x'"},
        {"a = {b = {c = 1}, b.d = 2}", 1, 19, "inline table"},
        {"[fruit]\napple.color = 1\n[fruit.apple]", 3, 1, "already defined by dotted keys"},
        {"[a.b.c]\nz = 9\n[a]\nb.c.t = 1", 4, 3, "defined by a [header]"},
        {"a = [1]\n[[a]]", 2, 1, "cannot append to static array"},
        {"a = [{b = 1}]\n[a.c]", 2, 2, "already an array"},
        {"[a]\n[[a]]", 2, 1, "cannot become an array of tables"},
        {"[[a]]\n[a]", 2, 1, "cannot be redefined as a table"},
        {"[[a.b]]\n[a]\nb = 1", 3, 1, "duplicate key 'b'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i], MOQ_ERR_INVALID);
}

static void encoding_errors(void **state)
{
    static const struct bad cases[] = {
        {"a = \"\xff\"", 1, 6, "invalid UTF-8 byte"},
        {"a = 1\n# \xc3\x28", 2, 3, "invalid UTF-8"},
        {"a = \"\xc0\xaf\"", 1, 6, "invalid UTF-8 byte"},   /* overlong '/' */
        {"a = \"\xe0\x80\xaf\"", 1, 6, "overlong"},         /* overlong 3-byte */
        {"a = \"\xed\xa0\x80\"", 1, 6, "surrogate"},        /* U+D800 */
        {"a = \"\xf4\x90\x80\x80\"", 1, 6, "out of range"}, /* > U+10FFFF */
        {"\xc3\xa9\xc3\xa9 = \"\xe2\x82", 1, 7, "truncated"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i], MOQ_ERR_INVALID);
    /* A NUL byte in the document (not via an escape) is a control character. */
    static const char nul_doc[] = "a = \"x\0y\"";
    struct moq_toml_value *root;
    struct moq_toml_error err;
    assert_int_equal(moq_toml_parse(nul_doc, sizeof(nul_doc) - 1, &root, &err), MOQ_ERR_INVALID);
    assert_int_equal(err.col, 7);
    assert_non_null(strstr(err.msg, "U+0000"));
}

static void datetimes_rejected(void **state)
{
    static const struct bad cases[] = {
        {"a = 1979-05-27T07:32:00Z", 1, 5, "datetimes are not supported"},
        {"a = 1979-05-27", 1, 5, "datetimes are not supported"},
        {"a = 07:32:00", 1, 5, "datetimes are not supported"},
        {"x = 1\nb = [1979-05-27]", 2, 6, "datetimes are not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_bad(&cases[i], MOQ_ERR_UNSUPPORTED);
}

/* ---- limits ----------------------------------------------------------------------------- */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t len = strlen(head) + strlen(unit) * n + strlen(tail) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    size_t hl = strlen(head), ul = strlen(unit);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    strcpy(s + hl + n * ul, tail);
    return s;
}

static void nesting_limits(void **state)
{
    struct moq_toml_value *root;
    struct moq_toml_error err;
    /* The root table is level 0; a = [[...]] with 128 brackets is at the limit. */
    char *open = repeat("a = ", "[", MOQ_TOML_MAX_DEPTH, "");
    char *ok = repeat(open, "]", MOQ_TOML_MAX_DEPTH, "");
    assert_int_equal(moq_toml_parse(ok, strlen(ok), &root, &err), 0);
    moq_toml_free(root);
    free(ok);
    free(open);

    open = repeat("a = ", "[", MOQ_TOML_MAX_DEPTH + 1, "");
    char *deep = repeat(open, "]", MOQ_TOML_MAX_DEPTH + 1, "");
    assert_int_equal(moq_toml_parse(deep, strlen(deep), &root, &err), MOQ_ERR_LIMIT);
    assert_null(root);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.col, 5 + MOQ_TOML_MAX_DEPTH);
    free(deep);
    free(open);

    /* 100000 unclosed brackets must fail cleanly, not overflow the stack. */
    deep = repeat("a = ", "[", 100000, "");
    assert_int_equal(moq_toml_parse(deep, strlen(deep), &root, &err), MOQ_ERR_LIMIT);
    free(deep);
    deep = repeat("a = ", "{b = ", 100000, "");
    assert_int_equal(moq_toml_parse(deep, strlen(deep), &root, &err), MOQ_ERR_LIMIT);
    free(deep);

    /* Dotted keys and headers count too, including across inline tables. */
    deep = repeat("x", ".x", 200, " = 1");
    assert_int_equal(moq_toml_parse(deep, strlen(deep), &root, &err), MOQ_ERR_LIMIT);
    free(deep);
    deep = repeat("[x", ".x", 200, "]");
    assert_int_equal(moq_toml_parse(deep, strlen(deep), &root, &err), MOQ_ERR_LIMIT);
    free(deep);
    char *prefix = repeat("[a", ".a", 100, "]\n");
    char *more = repeat(prefix, "b.", 100, "c = 1\n");
    assert_int_equal(moq_toml_parse(more, strlen(more), &root, &err), MOQ_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "deeper than 128"));
    free(more);
    free(prefix);
}

static void many_keys(void **state)
{
    /* Wide tables stay fast (hashed lookups) and keep their order. */
    size_t n = 20000, cap = n * 24 + 1, len = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(doc + len, cap - len, "k%zu = %zu\n", i, i);
    struct moq_toml_value *root = parse_ok(doc);
    assert_int_equal(moq_toml_table_len(root), n);
    assert_int_equal(moq_toml_get(root, "k12345")->u.i, 12345);
    assert_string_equal(moq_toml_table_at(root, 19999)->key, "k19999");
    moq_toml_free(root);
    free(doc);
}

static void api_on_wrong_types(void **state)
{
    struct moq_toml_value *r = parse_ok("a = 1\nb = [1]\n");
    const struct moq_toml_value *a = get(r, "a");
    assert_null(moq_toml_get(a, "x"));
    assert_int_equal(moq_toml_table_len(a), 0);
    assert_null(moq_toml_table_at(a, 0));
    assert_int_equal(moq_toml_array_len(a), 0);
    assert_null(moq_toml_array_at(a, 0));
    assert_null(moq_toml_get(NULL, "a"));
    assert_null(moq_toml_get_path(r, "b.c"));
    assert_string_equal(moq_toml_type_name(MOQ_TOML_BOOL), "boolean");
    moq_toml_free(r);
    moq_toml_free(NULL);
}

/* ---- round trips -------------------------------------------------------------------------- */

struct out {
    char *p;
    size_t len, cap;
};

static void emit(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (o->len + (size_t)n + 1 > o->cap) {
        o->cap = (o->len + (size_t)n + 1) * 2;
        o->p = realloc(o->p, o->cap);
        assert_non_null(o->p);
    }
    va_start(ap, fmt);
    vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

static void emit_string(struct out *o, const char *s, size_t len)
{
    emit(o, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            emit(o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            emit(o, "\\u%04X", c);
        else
            emit(o, "%c", c);
    }
    emit(o, "\"");
}

/* Print a value as TOML (tables as inline tables). */
static void emit_value(struct out *o, const struct moq_toml_value *v)
{
    switch (v->type) {
    case MOQ_TOML_STRING:
        emit_string(o, v->u.str.ptr, v->u.str.len);
        break;
    case MOQ_TOML_INTEGER:
        emit(o, "%lld", (long long)v->u.i);
        break;
    case MOQ_TOML_BOOL:
        emit(o, v->u.b ? "true" : "false");
        break;
    case MOQ_TOML_FLOAT:
        if (isnan(v->u.f))
            emit(o, "nan");
        else if (isinf(v->u.f))
            emit(o, v->u.f > 0 ? "inf" : "-inf");
        else {
            char buf[40];
            snprintf(buf, sizeof(buf), "%.17g", v->u.f);
            if (!strpbrk(buf, ".e")) strcat(buf, ".0");
            emit(o, "%s", buf);
        }
        break;
    case MOQ_TOML_ARRAY:
        emit(o, "[");
        for (size_t i = 0; i < moq_toml_array_len(v); i++) {
            if (i) emit(o, ", ");
            emit_value(o, moq_toml_array_at(v, i));
        }
        emit(o, "]");
        break;
    case MOQ_TOML_TABLE:
        emit(o, "{");
        for (size_t i = 0; i < moq_toml_table_len(v); i++) {
            const struct moq_toml_kv *kv = moq_toml_table_at(v, i);
            if (i) emit(o, ", ");
            emit_string(o, kv->key, kv->key_len);
            emit(o, " = ");
            emit_value(o, kv->value);
        }
        emit(o, "}");
        break;
    }
}

static bool same(const struct moq_toml_value *a, const struct moq_toml_value *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case MOQ_TOML_STRING:
        return a->u.str.len == b->u.str.len && !memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len);
    case MOQ_TOML_INTEGER:
        return a->u.i == b->u.i;
    case MOQ_TOML_BOOL:
        return a->u.b == b->u.b;
    case MOQ_TOML_FLOAT:
        return (isnan(a->u.f) && isnan(b->u.f)) ||
               (a->u.f == b->u.f && signbit(a->u.f) == signbit(b->u.f));
    case MOQ_TOML_ARRAY:
        if (moq_toml_array_len(a) != moq_toml_array_len(b)) return false;
        for (size_t i = 0; i < moq_toml_array_len(a); i++)
            if (!same(moq_toml_array_at(a, i), moq_toml_array_at(b, i))) return false;
        return true;
    case MOQ_TOML_TABLE:
        if (moq_toml_table_len(a) != moq_toml_table_len(b)) return false;
        for (size_t i = 0; i < moq_toml_table_len(a); i++) {
            const struct moq_toml_kv *x = moq_toml_table_at(a, i), *y = moq_toml_table_at(b, i);
            if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) ||
                !same(x->value, y->value))
                return false;
        }
        return true;
    }
    return false;
}

static void round_trips(void **state)
{
    static const char *docs[] = {
        "a = 1\nb = -9223372036854775808\nc = 0x7fffffffffffffff\nd = 0b101\ne = 0o17",
        "f = 0.1\ng = -2.5e-300\nh = 1e300\ni = inf\nj = -inf\nk = nan\nl = -0.0\nm = 5e-324",
        "s = \"quote \\\" backslash \\\\ tab \\t nl \\n nul \\u0000 del \\u007F \\U0001F600\"",
        "ml = \"\"\"\nline1\nline2 \"quoted\"\"\"\"\nlit = 'raw \\n'",
        "[t]\nx.y.z = [1, 'two', 3.0, true, [[]], {}]\n[[aot]]\nn = 1\n[[aot]]\nn = 2\n"
        "[aot.sub]\nm = 3",
        "\"weird key\\n\" = {\"\" = '', \"a.b\" = {c = [{d = false}]}}",
        "[server]\nlisten = \"[::]:443\"\ntls.cert = [\"a.pem\", \"b.pem\"]\n"
        "[auth.public]\nsubscribe = [\"\", \"demo\"]\n",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct moq_toml_value *first = parse_ok(docs[i]);
        struct out o = {0};
        for (size_t k = 0; k < moq_toml_table_len(first); k++) {
            const struct moq_toml_kv *kv = moq_toml_table_at(first, k);
            emit_string(&o, kv->key, kv->key_len);
            emit(&o, " = ");
            emit_value(&o, kv->value);
            emit(&o, "\n");
        }
        struct moq_toml_value *second = parse_ok(o.p ? o.p : "");
        if (!same(first, second)) fail_msg("round trip changed doc %zu:\n%s", i, o.p);
        moq_toml_free(first);
        moq_toml_free(second);
        free(o.p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers),
        cmocka_unit_test(floats),
        cmocka_unit_test(booleans_and_comments),
        cmocka_unit_test(basic_strings_and_escapes),
        cmocka_unit_test(multiline_strings),
        cmocka_unit_test(literal_strings),
        cmocka_unit_test(keys),
        cmocka_unit_test(tables),
        cmocka_unit_test(inline_tables),
        cmocka_unit_test(arrays),
        cmocka_unit_test(arrays_of_tables),
        cmocka_unit_test(line_endings_bom_and_empty),
        cmocka_unit_test(value_and_key_positions),
        cmocka_unit_test(syntax_errors),
        cmocka_unit_test(string_errors),
        cmocka_unit_test(number_errors),
        cmocka_unit_test(semantic_errors),
        cmocka_unit_test(encoding_errors),
        cmocka_unit_test(datetimes_rejected),
        cmocka_unit_test(nesting_limits),
        cmocka_unit_test(many_keys),
        cmocka_unit_test(api_on_wrong_types),
        cmocka_unit_test(round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
