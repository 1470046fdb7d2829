/*
 * toml.h - a small, strict TOML v1.0 parser (sans-I/O: bytes in, tree out).
 *
 * Supported: tables, dotted keys, inline tables, arrays (mixed types), arrays of tables,
 * the four string forms with every escape, integers (decimal/hex/octal/binary, 64-bit,
 * overflow is an error), floats (including inf/nan), booleans and comments. Offset and
 * local dates/times are rejected with "datetimes are not supported".
 *
 * Everything that TOML forbids is an error: duplicate keys, redefined tables, extending an
 * inline table or a static array, invalid UTF-8, control characters, bad escapes, leading
 * zeros, misplaced underscores. Parsing stops at the first error, which carries a 1-based
 * line and column (columns count Unicode characters) and a message. Containers nest at most
 * MOQ_TOML_MAX_DEPTH deep, so hostile input cannot exhaust the stack.
 *
 * Ownership: moq_toml_parse() returns a root table that the caller frees with one call to
 * moq_toml_free(). Every pointer obtained from the tree (values, keys, strings) is owned by
 * the tree and lives until then. Strings and keys are NUL-terminated for convenience but may
 * contain NUL bytes (from \u0000); use the stored length when that matters.
 */
#ifndef MOQ_CONFIG_TOML_H
#define MOQ_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOQ_TOML_MAX_DEPTH 128

enum moq_toml_type {
    MOQ_TOML_STRING,
    MOQ_TOML_INTEGER,
    MOQ_TOML_FLOAT,
    MOQ_TOML_BOOL,
    MOQ_TOML_ARRAY,
    MOQ_TOML_TABLE,
};

struct moq_toml_table;
struct moq_toml_array;

/* A value and where it starts in the document (for tables: the header or key that made it). */
struct moq_toml_value {
    enum moq_toml_type type;
    uint32_t line, col;
    union {
        struct {
            char *ptr;
            size_t len;
        } str;
        int64_t i;
        double f;
        bool b;
        struct moq_toml_array *arr;
        struct moq_toml_table *tbl;
    } u;
};

/* One key of a table: the key text, where the key was written, and its value. */
struct moq_toml_kv {
    char *key;
    size_t key_len;
    uint32_t line, col;
    struct moq_toml_value *value;
};

struct moq_toml_error {
    uint32_t line, col; /* 1-based; 0 when the error has no position (out of memory) */
    char msg[192];
};

/* Parse a whole document. On success *root is a MOQ_TOML_TABLE value and 0 is returned.
 * On failure *root is NULL, err (if not NULL) is filled in, and MOQ_ERR_INVALID (syntax or
 * semantics), MOQ_ERR_UNSUPPORTED (datetimes), MOQ_ERR_LIMIT (nesting too deep) or
 * MOQ_ERR_NOMEM is returned. */
int moq_toml_parse(const char *buf, size_t len, struct moq_toml_value **root,
                   struct moq_toml_error *err);

/* Free a tree returned by moq_toml_parse(). NULL is allowed. */
void moq_toml_free(struct moq_toml_value *root);

/* "string", "integer", "float", "boolean", "array", "table". */
const char *moq_toml_type_name(enum moq_toml_type type);

/* Tables: look up one key (NULL when absent or when t is not a table), or iterate the keys in
 * document order with moq_toml_table_len()/moq_toml_table_at(). */
const struct moq_toml_value *moq_toml_get(const struct moq_toml_value *t, const char *key);
const struct moq_toml_kv *moq_toml_get_kv(const struct moq_toml_value *t, const char *key);
size_t moq_toml_table_len(const struct moq_toml_value *t);
const struct moq_toml_kv *moq_toml_table_at(const struct moq_toml_value *t, size_t i);

/* Follow a dotted path of bare keys ("server.tls.cert") through nested tables. */
const struct moq_toml_value *moq_toml_get_path(const struct moq_toml_value *t, const char *path);

/* Arrays (0 / NULL when a is not an array or i is out of range). */
size_t moq_toml_array_len(const struct moq_toml_value *a);
const struct moq_toml_value *moq_toml_array_at(const struct moq_toml_value *a, size_t i);

#endif
