/* toml.c - strict TOML v1.0 parser. See toml.h for the contract. */
#include "config/toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/map.h"

/* How a table came to exist; decides whether a later header or dotted key may extend it. */
enum table_kind {
    TBL_IMPLICIT, /* created as an intermediate of a [header]: a later [header] may define it */
    TBL_HEADER,   /* defined by [header] or as an element of [[header]] (or the root) */
    TBL_DOTTED,   /* created by a dotted key: more dotted keys in the same scope may extend it */
    TBL_INLINE,   /* an inline table: sealed once its closing brace is read */
};

struct moq_toml_table {
    struct moq_toml_kv *kv;
    size_t len, cap;
    moq_map index; /* key -> kv index + 1 */
    enum table_kind kind;
    int depth;
};

struct moq_toml_array {
    struct moq_toml_value **items;
    size_t len, cap;
    bool of_tables; /* created by [[header]]: only [[header]] may append */
    int depth;
};

struct parser {
    const unsigned char *s;
    size_t len, pos;
    uint32_t line, col;
    struct moq_toml_error *err;
    struct moq_toml_value *root;
    struct moq_toml_value *cur; /* table that key/value pairs go into */
};

struct keypart {
    char *s;
    size_t len;
    uint32_t line, col;
};

struct keypath {
    struct keypart *parts;
    int n, cap;
};

struct sbuf {
    char *p;
    size_t len, cap;
};

/* ---- errors ------------------------------------------------------------------------- */

__attribute__((format(printf, 5, 6))) static int fail_at(struct parser *p, uint32_t line,
                                                         uint32_t col, int rc, const char *fmt, ...)
{
    if (p->err) {
        p->err->line = line;
        p->err->col = col;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}

#define fail(p, rc, ...) fail_at((p), (p)->line, (p)->col, (rc), __VA_ARGS__)

static int nomem(struct parser *p)
{
    return fail_at(p, 0, 0, MOQ_ERR_NOMEM, "out of memory");
}

/* Render a key for a message: printable ASCII as is, anything else escaped, truncated. */
static const char *show_key(char *out, size_t n, const char *k, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
    }
    if (o + 8 >= n && len) o += (size_t)snprintf(out + o, n - o, "...");
    out[o] = '\0';
    return out;
}

/* Render parts [0, n) of a dotted key as "a.b.c". */
static const char *show_path(char *out, size_t size, const struct keypart *parts, int n)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && o + 1 < size; i++) {
        if (i) out[o++] = '.';
        show_key(out + o, size - o, parts[i].s, parts[i].len);
        o += strlen(out + o);
    }
    return out;
}

/* Describe the character at the cursor for "unexpected ..." messages. */
static const char *show_char(struct parser *p, char *out, size_t n)
{
    if (p->pos >= p->len) return "end of file";
    unsigned char c = p->s[p->pos];
    if (c == '\n' || c == '\r') return "end of line";
    if (c >= 0x20 && c < 0x7f)
        snprintf(out, n, "'%c'", c);
    else if (c < 0x80)
        snprintf(out, n, "U+%04X", c);
    else
        snprintf(out, n, "a non-ASCII character");
    return out;
}

static const char *a_type(enum moq_toml_type type)
{
    switch (type) {
    case MOQ_TOML_INTEGER:
        return "an integer";
    case MOQ_TOML_ARRAY:
        return "an array";
    case MOQ_TOML_STRING:
        return "a string";
    case MOQ_TOML_FLOAT:
        return "a float";
    case MOQ_TOML_BOOL:
        return "a boolean";
    case MOQ_TOML_TABLE:
        return "a table";
    }
    return "a value";
}

/* ---- cursor ------------------------------------------------------------------------- */

static int peek(const struct parser *p)
{
    return p->pos < p->len ? p->s[p->pos] : -1;
}

static int peek_at(const struct parser *p, size_t k)
{
    return p->pos + k < p->len ? p->s[p->pos + k] : -1;
}

static void adv(struct parser *p)
{
    unsigned char c = p->s[p->pos++];
    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        p->col++;
    }
}

static void adv_n(struct parser *p, size_t n)
{
    while (n--)
        adv(p);
}

static bool is_ws(int c)
{
    return c == ' ' || c == '\t';
}

static bool is_bare_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool is_control(int c)
{
    return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static void skip_ws(struct parser *p)
{
    while (is_ws(peek(p)))
        adv(p);
}

/* At a newline (LF or CRLF)? A lone CR is never a newline. */
static int newline_len(const struct parser *p)
{
    if (peek(p) == '\n') return 1;
    if (peek(p) == '\r' && peek_at(p, 1) == '\n') return 2;
    return 0;
}

static int comment(struct parser *p)
{
    adv(p); /* '#' */
    for (;;) {
        int c = peek(p);
        if (c < 0 || c == '\n' || newline_len(p)) return 0;
        if (is_control(c))
            return fail(p, MOQ_ERR_INVALID, "control character U+%04X is not allowed in a comment",
                        c);
        adv(p);
    }
}

/* Skip whitespace, comments and newlines (inside arrays). */
static int skip_blank(struct parser *p)
{
    for (;;) {
        int nl;
        skip_ws(p);
        if (peek(p) == '#') {
            int rc = comment(p);
            if (rc) return rc;
        } else if ((nl = newline_len(p))) {
            adv_n(p, (size_t)nl);
        } else {
            return 0;
        }
    }
}

/* After an expression: optional whitespace and comment, then a newline or the end. */
static int end_of_line(struct parser *p, const char *what)
{
    skip_ws(p);
    if (peek(p) == '#') {
        int rc = comment(p);
        if (rc) return rc;
    }
    if (peek(p) < 0) return 0;
    int nl = newline_len(p);
    if (nl) {
        adv_n(p, (size_t)nl);
        return 0;
    }
    char buf[32];
    if (peek(p) == '\r') return fail(p, MOQ_ERR_INVALID, "carriage return without a line feed");
    return fail(p, MOQ_ERR_INVALID, "expected a newline after %s, found %s", what,
                show_char(p, buf, sizeof(buf)));
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

static int check_utf8(struct parser *p)
{
    const unsigned char *s = p->s;
    size_t i = p->pos, n = p->len;
    uint32_t line = p->line, col = p->col;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            if (c == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return fail_at(p, line, col, MOQ_ERR_INVALID, "invalid UTF-8 byte 0x%02X", c);
        }
        if (i + len > n) return fail_at(p, line, col, MOQ_ERR_INVALID, "truncated UTF-8 sequence");
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return fail_at(p, line, col, MOQ_ERR_INVALID, "invalid UTF-8 sequence");
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail_at(p, line, col, MOQ_ERR_INVALID,
                           "invalid UTF-8 sequence (overlong, surrogate or out of range)");
        i += len;
        col++;
    }
    return 0;
}

/* ---- tree building ---------------------------------------------------------------------- */

static void free_value(struct moq_toml_value *v);

static void free_table(struct moq_toml_table *t)
{
    for (size_t i = 0; i < t->len; i++) {
        free(t->kv[i].key);
        free_value(t->kv[i].value);
    }
    free(t->kv);
    moq_map_free(&t->index);
    free(t);
}

static void free_value(struct moq_toml_value *v)
{
    if (!v) return;
    switch (v->type) {
    case MOQ_TOML_STRING:
        free(v->u.str.ptr);
        break;
    case MOQ_TOML_ARRAY:
        for (size_t i = 0; i < v->u.arr->len; i++)
            free_value(v->u.arr->items[i]);
        free(v->u.arr->items);
        free(v->u.arr);
        break;
    case MOQ_TOML_TABLE:
        free_table(v->u.tbl);
        break;
    default:
        break;
    }
    free(v);
}

static int check_depth(struct parser *p, int depth, uint32_t line, uint32_t col)
{
    if (depth > MOQ_TOML_MAX_DEPTH)
        return fail_at(p, line, col, MOQ_ERR_LIMIT, "tables and arrays nest deeper than %d levels",
                       MOQ_TOML_MAX_DEPTH);
    return 0;
}

static struct moq_toml_value *new_value(enum moq_toml_type type, uint32_t line, uint32_t col)
{
    struct moq_toml_value *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    v->type = type;
    v->line = line;
    v->col = col;
    return v;
}

static struct moq_toml_value *new_table(enum table_kind kind, int depth, uint32_t line,
                                        uint32_t col)
{
    struct moq_toml_value *v = new_value(MOQ_TOML_TABLE, line, col);
    if (!v) return NULL;
    v->u.tbl = calloc(1, sizeof(*v->u.tbl));
    if (!v->u.tbl) {
        free(v);
        return NULL;
    }
    moq_map_init(&v->u.tbl->index);
    v->u.tbl->kind = kind;
    v->u.tbl->depth = depth;
    return v;
}

static struct moq_toml_value *new_array(int depth, uint32_t line, uint32_t col)
{
    struct moq_toml_value *v = new_value(MOQ_TOML_ARRAY, line, col);
    if (!v) return NULL;
    v->u.arr = calloc(1, sizeof(*v->u.arr));
    if (!v->u.arr) {
        free(v);
        return NULL;
    }
    v->u.arr->depth = depth;
    return v;
}

static int array_push(struct moq_toml_array *a, struct moq_toml_value *v)
{
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        struct moq_toml_value **items = realloc(a->items, cap * sizeof(*items));
        if (!items) return MOQ_ERR_NOMEM;
        a->items = items;
        a->cap = cap;
    }
    a->items[a->len++] = v;
    return 0;
}

static struct moq_toml_kv *table_find(const struct moq_toml_table *t, const char *key, size_t len)
{
    uintptr_t idx = (uintptr_t)moq_map_get(&t->index, key, len);
    return idx ? &t->kv[idx - 1] : NULL;
}

/* Insert key -> v. On success the table owns v; on failure the caller still does. */
static int table_put(struct moq_toml_table *t, const char *key, size_t len, uint32_t line,
                     uint32_t col, struct moq_toml_value *v)
{
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct moq_toml_kv *kv = realloc(t->kv, cap * sizeof(*kv));
        if (!kv) return MOQ_ERR_NOMEM;
        t->kv = kv;
        t->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return MOQ_ERR_NOMEM;
    memcpy(copy, key, len);
    copy[len] = '\0';
    if (moq_map_put(&t->index, key, len, (void *)(uintptr_t)(t->len + 1)) < 0) {
        free(copy);
        return MOQ_ERR_NOMEM;
    }
    t->kv[t->len++] = (struct moq_toml_kv){copy, len, line, col, v};
    return 0;
}

/* ---- strings ---------------------------------------------------------------------------- */

static int sb_put(struct sbuf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return MOQ_ERR_NOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int sb_put_utf8(struct sbuf *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18)), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    return sb_put(b, out, n);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int unicode_escape(struct parser *p, struct sbuf *b, int digits)
{
    uint32_t line = p->line, col = p->col - 2; /* at the backslash */
    uint32_t cp = 0;
    for (int i = 0; i < digits; i++) {
        int h = hexval(peek(p));
        if (h < 0)
            return fail_at(p, line, col, MOQ_ERR_INVALID, "\\%c escape needs exactly %d hex digits",
                           digits == 4 ? 'u' : 'U', digits);
        cp = (cp << 4) | (uint32_t)h;
        adv(p);
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail_at(p, line, col, MOQ_ERR_INVALID,
                       "escape \\%c%0*X is not a Unicode scalar value", digits == 4 ? 'u' : 'U',
                       digits, cp);
    return sb_put_utf8(b, cp) ? nomem(p) : 0;
}

static int escape(struct parser *p, struct sbuf *b, bool multiline)
{
    uint32_t line = p->line, col = p->col;
    adv(p); /* backslash */
    int c = peek(p);
    const char *simple = NULL;
    switch (c) {
    case 'b':
        simple = "\b";
        break;
    case 't':
        simple = "\t";
        break;
    case 'n':
        simple = "\n";
        break;
    case 'f':
        simple = "\f";
        break;
    case 'r':
        simple = "\r";
        break;
    case '"':
        simple = "\"";
        break;
    case '\\':
        simple = "\\";
        break;
    case 'u':
        adv(p);
        return unicode_escape(p, b, 4);
    case 'U':
        adv(p);
        return unicode_escape(p, b, 8);
    default:
        break;
    }
    if (simple) {
        adv(p);
        return sb_put(b, simple, 1) ? nomem(p) : 0;
    }
    if (multiline && (is_ws(c) || newline_len(p))) {
        /* Line-ending backslash: drop whitespace up to and including the newline(s). */
        skip_ws(p);
        if (!newline_len(p))
            return fail_at(p, line, col, MOQ_ERR_INVALID,
                           "a backslash followed by whitespace must end the line");
        for (;;) {
            int nl = newline_len(p);
            if (nl)
                adv_n(p, (size_t)nl);
            else if (is_ws(peek(p)))
                adv(p);
            else
                return 0;
        }
    }
    char buf[32];
    if (c == '\n' || c == '\r' || c < 0)
        return fail_at(p, line, col, MOQ_ERR_INVALID,
                       "a backslash at the end of the line is only allowed in multi-line strings");
    return fail_at(p, line, col, MOQ_ERR_INVALID, "invalid escape sequence: backslash then %s",
                   show_char(p, buf, sizeof(buf)));
}

/* Parse any of the four string forms at the cursor into b. */
static int string(struct parser *p, struct sbuf *b)
{
    uint32_t line = p->line, col = p->col;
    int q = peek(p);
    bool literal = q == '\'';
    bool multiline = peek_at(p, 1) == q && peek_at(p, 2) == q;
    adv_n(p, multiline ? 3 : 1);
    if (sb_put(b, "", 0)) return nomem(p);
    if (multiline) {
        int nl = newline_len(p);
        if (nl) adv_n(p, (size_t)nl); /* a newline right after the delimiter is trimmed */
    }
    for (;;) {
        int c = peek(p);
        if (c < 0) return fail_at(p, line, col, MOQ_ERR_INVALID, "unterminated string");
        if (c == q) {
            if (!multiline) {
                adv(p);
                return 0;
            }
            size_t run = 0;
            while (peek_at(p, run) == q)
                run++;
            if (run >= 3) {
                if (run > 5)
                    return fail(p, MOQ_ERR_INVALID,
                                "too many quotes at the end of a multi-line string");
                if (sb_put(b, p->s + p->pos, run - 3)) return nomem(p);
                adv_n(p, run);
                return 0;
            }
            if (sb_put(b, p->s + p->pos, run)) return nomem(p);
            adv_n(p, run);
            continue;
        }
        if (c == '\\' && !literal) {
            int rc = escape(p, b, multiline);
            if (rc) return rc;
            continue;
        }
        int nl = newline_len(p);
        if (nl) {
            if (!multiline)
                return fail(p, MOQ_ERR_INVALID,
                            "newline in a single-line string (use \\n or a "
                            "multi-line string)");
            adv_n(p, (size_t)nl);
            if (sb_put(b, "\n", 1)) return nomem(p);
            continue;
        }
        if (is_control(c))
            return fail(p, MOQ_ERR_INVALID, "control character U+%04X is not allowed in a string%s",
                        c, literal ? "" : " (use an escape)");
        size_t n = 1;
        while (p->pos + n < p->len && (p->s[p->pos + n] & 0xC0) == 0x80)
            n++;
        if (sb_put(b, p->s + p->pos, n)) return nomem(p);
        adv_n(p, n);
    }
}

/* ---- keys ------------------------------------------------------------------------------- */

static void keypath_free(struct keypath *k)
{
    for (int i = 0; i < k->n; i++)
        free(k->parts[i].s);
    free(k->parts);
    k->parts = NULL;
    k->n = k->cap = 0;
}

static int simple_key(struct parser *p, struct keypart *out)
{
    out->line = p->line;
    out->col = p->col;
    int c = peek(p);
    struct sbuf b = {0};
    if (c == '"' || c == '\'') {
        if (peek_at(p, 1) == c && peek_at(p, 2) == c)
            return fail(p, MOQ_ERR_INVALID, "a multi-line string cannot be a key");
        int rc = string(p, &b);
        if (rc) {
            free(b.p);
            return rc;
        }
    } else if (is_bare_key_char(c)) {
        size_t start = p->pos;
        while (is_bare_key_char(peek(p)))
            adv(p);
        if (sb_put(&b, (const char *)p->s + start, p->pos - start)) {
            free(b.p);
            return nomem(p);
        }
        /* Catch "ke@y" / "kéy" here so the message names the real problem. */
        c = peek(p);
        if (c >= 0 && !is_ws(c) && c != '=' && c != '.' && c != ']' && c != '\n' && c != '\r' &&
            c != '#' && c != ',' && c != '}') {
            char buf[32];
            free(b.p);
            return fail(p, MOQ_ERR_INVALID,
                        "invalid character %s in a bare key (bare keys may only use A-Z a-z "
                        "0-9 _ -; quote other keys)",
                        show_char(p, buf, sizeof(buf)));
        }
    } else {
        char buf[32];
        return fail(p, MOQ_ERR_INVALID, "expected a key, found %s", show_char(p, buf, sizeof(buf)));
    }
    out->s = b.p;
    out->len = b.len;
    return 0;
}

/* key = simple-key *( ws "." ws simple-key ) */
static int key(struct parser *p, struct keypath *k)
{
    for (;;) {
        if (k->n == k->cap) {
            if (k->n >= MOQ_TOML_MAX_DEPTH)
                return fail(p, MOQ_ERR_LIMIT, "dotted key has more than %d parts",
                            MOQ_TOML_MAX_DEPTH);
            int cap = k->cap ? k->cap * 2 : 4;
            struct keypart *parts = realloc(k->parts, (size_t)cap * sizeof(*parts));
            if (!parts) return nomem(p);
            k->parts = parts;
            k->cap = cap;
        }
        int rc = simple_key(p, &k->parts[k->n]);
        if (rc) return rc;
        k->n++;
        skip_ws(p);
        if (peek(p) != '.') return 0;
        adv(p);
        skip_ws(p);
    }
}

/* ---- scalars ---------------------------------------------------------------------------- */

/* digits with single underscores between digits; returns the count of digits or -1. */
static int check_digits(struct parser *p, const char *tok, size_t len, uint32_t col,
                        int (*digit)(int), const char *what)
{
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '_') {
            if (i == 0 || i + 1 == len || tok[i - 1] == '_' || !digit(tok[i + 1]))
                return fail_at(p, p->line, col + (uint32_t)i, MOQ_ERR_INVALID,
                               "underscores in %s must be between digits", what),
                       -1;
            continue;
        }
        if (!digit(tok[i]))
            return fail_at(p, p->line, col + (uint32_t)i, MOQ_ERR_INVALID,
                           "invalid character '%c' in %s", tok[i], what),
                   -1;
        n++;
    }
    if (n == 0) return fail_at(p, p->line, col, MOQ_ERR_INVALID, "%s has no digits", what), -1;
    return n;
}

static int is_dec(int c)
{
    return c >= '0' && c <= '9';
}
static int is_hex(int c)
{
    return hexval(c) >= 0;
}
static int is_oct(int c)
{
    return c >= '0' && c <= '7';
}
static int is_bin(int c)
{
    return c == '0' || c == '1';
}

static int prefixed_integer(struct parser *p, const char *tok, size_t len, uint32_t col,
                            int64_t *out)
{
    int base = tok[1] == 'x' ? 16 : tok[1] == 'o' ? 8 : 2;
    int (*digit)(int) = base == 16 ? is_hex : base == 8 ? is_oct : is_bin;
    const char *what = base == 16  ? "a hexadecimal integer"
                       : base == 8 ? "an octal integer"
                                   : "a binary integer";
    if (check_digits(p, tok + 2, len - 2, col + 2, digit, what) < 0) return MOQ_ERR_INVALID;
    uint64_t v = 0;
    for (size_t i = 2; i < len; i++) {
        if (tok[i] == '_') continue;
        uint64_t d = (uint64_t)hexval(tok[i]);
        if (v > (UINT64_C(0x7FFFFFFFFFFFFFFF) - d) / (uint64_t)base)
            return fail_at(p, p->line, col, MOQ_ERR_INVALID,
                           "integer does not fit in 64 bits (signed)");
        v = v * (uint64_t)base + d;
    }
    *out = (int64_t)v;
    return 0;
}

/* Decimal integer part: no leading zeros. */
static int dec_part(struct parser *p, const char *tok, size_t len, uint32_t col, const char *what)
{
    if (check_digits(p, tok, len, col, is_dec, what) < 0) return MOQ_ERR_INVALID;
    if (tok[0] == '0' && len > 1)
        return fail_at(p, p->line, col, MOQ_ERR_INVALID, "leading zeros are not allowed in %s",
                       what);
    return 0;
}

static int decimal_integer(struct parser *p, const char *tok, size_t len, uint32_t col, bool neg,
                           int64_t *out)
{
    int rc = dec_part(p, tok, len, col, "an integer");
    if (rc) return rc;
    uint64_t limit = neg ? UINT64_C(0x8000000000000000) : UINT64_C(0x7FFFFFFFFFFFFFFF);
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '_') continue;
        uint64_t d = (uint64_t)(tok[i] - '0');
        if (v > (limit - d) / 10)
            return fail_at(p, p->line, col, MOQ_ERR_INVALID,
                           "integer does not fit in 64 bits (signed)");
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int float_value(struct parser *p, const char *tok, size_t len, uint32_t col, double *out)
{
    /* tok excludes the sign: int-part [ "." frac ] [ ("e"|"E") [sign] exp ] */
    size_t i = 0;
    while (i < len && tok[i] != '.' && tok[i] != 'e' && tok[i] != 'E')
        i++;
    if (i == 0)
        return fail_at(p, p->line, col, MOQ_ERR_INVALID, "a float needs digits before the '%c'",
                       tok[0]);
    int rc = dec_part(p, tok, i, col, "a float");
    if (rc) return rc;
    if (i < len && tok[i] == '.') {
        size_t f = ++i;
        while (i < len && tok[i] != 'e' && tok[i] != 'E')
            i++;
        if (i == f)
            return fail_at(p, p->line, col + (uint32_t)f - 1, MOQ_ERR_INVALID,
                           "a float needs digits after the decimal point");
        if (check_digits(p, tok + f, i - f, col + (uint32_t)f, is_dec, "a float fraction") < 0)
            return MOQ_ERR_INVALID;
    }
    if (i < len) {
        size_t e = ++i; /* past 'e' */
        if (e < len && (tok[e] == '+' || tok[e] == '-')) e++;
        if (e == len)
            return fail_at(p, p->line, col + (uint32_t)i - 1, MOQ_ERR_INVALID,
                           "a float exponent needs digits");
        if (check_digits(p, tok + e, len - e, col + (uint32_t)e, is_dec, "a float exponent") < 0)
            return MOQ_ERR_INVALID;
    }
    char buf[128];
    size_t o = 0;
    for (size_t k = 0; k < len; k++) {
        if (tok[k] == '_') continue;
        if (o + 1 >= sizeof(buf))
            return fail_at(p, p->line, col, MOQ_ERR_INVALID, "float literal is too long");
        buf[o++] = tok[k];
    }
    buf[o] = '\0';
    errno = 0;
    double v = strtod(buf, NULL); /* the relay never calls setlocale: '.' is the separator */
    if (isinf(v))
        return fail_at(p, p->line, col, MOQ_ERR_INVALID, "float is out of range (use inf)");
    *out = v;
    return 0;
}

static bool looks_like_datetime(const struct parser *p)
{
    size_t i = 0;
    while (is_dec(peek_at(p, i)))
        i++;
    return (i == 4 && peek_at(p, 4) == '-') || (i == 2 && peek_at(p, 2) == ':');
}

static int number(struct parser *p, struct moq_toml_value **out)
{
    uint32_t line = p->line, col = p->col;
    if (looks_like_datetime(p)) return fail(p, MOQ_ERR_UNSUPPORTED, "datetimes are not supported");
    size_t start = p->pos;
    while (p->pos < p->len) {
        int c = peek(p);
        if (!(is_bare_key_char(c) || c == '.' || c == '+')) break;
        adv(p);
    }
    const char *tok = (const char *)p->s + start;
    size_t len = p->pos - start;
    bool neg = false;
    uint32_t c0 = col;
    if (tok[0] == '+' || tok[0] == '-') {
        neg = tok[0] == '-';
        tok++, len--, c0++;
    }
    if (len == 0)
        return fail_at(p, line, col, MOQ_ERR_INVALID, "a sign must be followed by a number");
    if ((len == 3 && memcmp(tok, "inf", 3) == 0) || (len == 3 && memcmp(tok, "nan", 3) == 0)) {
        struct moq_toml_value *v = new_value(MOQ_TOML_FLOAT, line, col);
        if (!v) return nomem(p);
        v->u.f = tok[0] == 'i' ? INFINITY : NAN;
        if (neg) v->u.f = -v->u.f;
        *out = v;
        return 0;
    }
    if (!is_dec(tok[0]))
        return fail_at(p, line, col, MOQ_ERR_INVALID,
                       "invalid value (strings must be quoted; booleans are true or false)");
    int rc;
    int64_t iv = 0;
    double fv = 0;
    enum moq_toml_type type = MOQ_TOML_INTEGER;
    if (len >= 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'o' || tok[1] == 'b')) {
        if (c0 != col)
            return fail_at(p, line, col, MOQ_ERR_INVALID,
                           "a sign is not allowed on hexadecimal, octal or binary integers");
        rc = prefixed_integer(p, tok, len, c0, &iv);
    } else if (memchr(tok, '.', len) || memchr(tok, 'e', len) || memchr(tok, 'E', len)) {
        type = MOQ_TOML_FLOAT;
        rc = float_value(p, tok, len, c0, &fv);
        if (neg) fv = -fv;
    } else {
        rc = decimal_integer(p, tok, len, c0, neg, &iv);
    }
    if (rc) return rc;
    struct moq_toml_value *v = new_value(type, line, col);
    if (!v) return nomem(p);
    if (type == MOQ_TOML_INTEGER)
        v->u.i = iv;
    else
        v->u.f = fv;
    *out = v;
    return 0;
}

/* ---- values, arrays, inline tables ------------------------------------------------------ */

static int value(struct parser *p, int depth, struct moq_toml_value **out);
static int keyval(struct parser *p, struct moq_toml_value *table);

static int array(struct parser *p, int depth, struct moq_toml_value **out)
{
    uint32_t line = p->line, col = p->col;
    int rc = check_depth(p, depth, line, col);
    if (rc) return rc;
    struct moq_toml_value *a = new_array(depth, line, col);
    if (!a) return nomem(p);
    adv(p); /* '[' */
    for (;;) {
        if ((rc = skip_blank(p))) break;
        if (peek(p) == ']') {
            adv(p);
            *out = a;
            return 0;
        }
        struct moq_toml_value *item = NULL;
        if ((rc = value(p, depth + 1, &item))) break;
        if (array_push(a->u.arr, item)) {
            free_value(item);
            rc = nomem(p);
            break;
        }
        if ((rc = skip_blank(p))) break;
        if (peek(p) == ',') {
            adv(p);
            continue;
        }
        if (peek(p) == ']') continue;
        char buf[32];
        if (peek(p) < 0) {
            rc = fail_at(p, line, col, MOQ_ERR_INVALID, "unterminated array");
            break;
        }
        rc = fail(p, MOQ_ERR_INVALID, "expected ',' or ']' in an array, found %s",
                  show_char(p, buf, sizeof(buf)));
        break;
    }
    free_value(a);
    return rc;
}

static int inline_table(struct parser *p, int depth, struct moq_toml_value **out)
{
    uint32_t line = p->line, col = p->col;
    int rc = check_depth(p, depth, line, col);
    if (rc) return rc;
    /* Built as a dotted-key scope, sealed as TBL_INLINE when the brace closes. */
    struct moq_toml_value *t = new_table(TBL_HEADER, depth, line, col);
    if (!t) return nomem(p);
    adv(p); /* '{' */
    skip_ws(p);
    if (peek(p) == '}') {
        adv(p);
        goto done;
    }
    for (;;) {
        skip_ws(p);
        if (newline_len(p) || peek(p) == '\n') {
            rc = fail(p, MOQ_ERR_INVALID, "newlines are not allowed inside an inline table");
            break;
        }
        if (peek(p) == '}') {
            rc = fail(p, MOQ_ERR_INVALID, "trailing comma is not allowed in an inline table");
            break;
        }
        if ((rc = keyval(p, t))) break;
        skip_ws(p);
        if (peek(p) == ',') {
            adv(p);
            continue;
        }
        if (peek(p) == '}') {
            adv(p);
            goto done;
        }
        char buf[32];
        if (peek(p) < 0 || newline_len(p) || peek(p) == '\n')
            rc = fail(p, MOQ_ERR_INVALID,
                      "inline table must close with '}' on the same line, found %s",
                      show_char(p, buf, sizeof(buf)));
        else
            rc = fail(p, MOQ_ERR_INVALID, "expected ',' or '}' in an inline table, found %s",
                      show_char(p, buf, sizeof(buf)));
        break;
    }
    free_value(t);
    return rc;
done:
    t->u.tbl->kind = TBL_INLINE;
    *out = t;
    return 0;
}

static int boolean(struct parser *p, struct moq_toml_value **out)
{
    uint32_t line = p->line, col = p->col;
    bool b = peek(p) == 't';
    size_t n = b ? 4 : 5;
    if (p->len - p->pos < n || memcmp(p->s + p->pos, b ? "true" : "false", n) != 0 ||
        is_bare_key_char(peek_at(p, n)))
        return fail(p, MOQ_ERR_INVALID,
                    "invalid value (strings must be quoted; booleans are true or false)");
    adv_n(p, n);
    struct moq_toml_value *v = new_value(MOQ_TOML_BOOL, line, col);
    if (!v) return nomem(p);
    v->u.b = b;
    *out = v;
    return 0;
}

static int value(struct parser *p, int depth, struct moq_toml_value **out)
{
    int c = peek(p);
    char buf[32];
    switch (c) {
    case '"':
    case '\'': {
        uint32_t line = p->line, col = p->col;
        struct sbuf b = {0};
        int rc = string(p, &b);
        if (rc) {
            free(b.p);
            return rc;
        }
        struct moq_toml_value *v = new_value(MOQ_TOML_STRING, line, col);
        if (!v) {
            free(b.p);
            return nomem(p);
        }
        v->u.str.ptr = b.p;
        v->u.str.len = b.len;
        *out = v;
        return 0;
    }
    case 't':
    case 'f':
        return boolean(p, out);
    case '[':
        return array(p, depth, out);
    case '{':
        return inline_table(p, depth, out);
    case 'i':
    case 'n':
    case '+':
    case '-':
        return number(p, out);
    default:
        if (is_dec(c)) return number(p, out);
        if (c < 0 || c == '\n' || c == '\r' || c == '#')
            return fail(p, MOQ_ERR_INVALID, "missing value");
        if (is_bare_key_char(c))
            return fail(p, MOQ_ERR_INVALID,
                        "invalid value (strings must be quoted; booleans are true or false)");
        return fail(p, MOQ_ERR_INVALID, "expected a value, found %s",
                    show_char(p, buf, sizeof(buf)));
    }
}

/* ---- key/value pairs and headers -------------------------------------------------------- */

/* Walk dotted-key intermediates below t, creating them as needed. */
static int walk_dotted(struct parser *p, struct moq_toml_value **t, const struct keypath *k)
{
    char kb[160];
    for (int i = 0; i < k->n - 1; i++) {
        const struct keypart *kp = &k->parts[i];
        struct moq_toml_table *tbl = (*t)->u.tbl;
        struct moq_toml_kv *kv = table_find(tbl, kp->s, kp->len);
        if (!kv) {
            int rc = check_depth(p, tbl->depth + 1, kp->line, kp->col);
            if (rc) return rc;
            struct moq_toml_value *child = new_table(TBL_DOTTED, tbl->depth + 1, kp->line, kp->col);
            if (!child) return nomem(p);
            if (table_put(tbl, kp->s, kp->len, kp->line, kp->col, child)) {
                free_value(child);
                return nomem(p);
            }
            *t = child;
            continue;
        }
        struct moq_toml_value *v = kv->value;
        if (v->type != MOQ_TOML_TABLE)
            return fail_at(p, kp->line, kp->col, MOQ_ERR_INVALID,
                           "key '%s' is already %s (line %u), not a table",
                           show_path(kb, sizeof(kb), k->parts, i + 1), a_type(v->type), kv->line);
        if (v->u.tbl->kind == TBL_INLINE)
            return fail_at(p, kp->line, kp->col, MOQ_ERR_INVALID,
                           "cannot add keys to inline table '%s' (line %u)",
                           show_path(kb, sizeof(kb), k->parts, i + 1), kv->line);
        if (v->u.tbl->kind == TBL_HEADER)
            return fail_at(p, kp->line, kp->col, MOQ_ERR_INVALID,
                           "table '%s' was defined by a [header] (line %u); dotted keys cannot "
                           "add to it",
                           show_path(kb, sizeof(kb), k->parts, i + 1), v->line);
        /* A table only implied by a deeper header is defined here, by dotted keys. */
        v->u.tbl->kind = TBL_DOTTED;
        *t = v;
    }
    return 0;
}

static int keyval(struct parser *p, struct moq_toml_value *table)
{
    struct keypath k = {0};
    int rc = key(p, &k);
    if (rc) goto out;
    skip_ws(p);
    if (peek(p) != '=') {
        char buf[32];
        rc = fail(p, MOQ_ERR_INVALID, "expected '=' after a key, found %s",
                  show_char(p, buf, sizeof(buf)));
        goto out;
    }
    adv(p);
    skip_ws(p);
    struct moq_toml_value *t = table;
    if ((rc = walk_dotted(p, &t, &k))) goto out;
    const struct keypart *last = &k.parts[k.n - 1];
    struct moq_toml_kv *dup = table_find(t->u.tbl, last->s, last->len);
    if (dup) {
        char kb[96];
        rc = fail_at(p, last->line, last->col, MOQ_ERR_INVALID,
                     "duplicate key '%s' (first defined at line %u)",
                     show_key(kb, sizeof(kb), last->s, last->len), dup->line);
        goto out;
    }
    struct moq_toml_value *v = NULL;
    if ((rc = value(p, t->u.tbl->depth + 1, &v))) goto out;
    if (table_put(t->u.tbl, last->s, last->len, last->line, last->col, v)) {
        free_value(v);
        rc = nomem(p);
    }
out:
    keypath_free(&k);
    return rc;
}

/* [a.b.c] or [[a.b.c]] */
static int header(struct parser *p)
{
    uint32_t line = p->line, col = p->col;
    bool aot = peek_at(p, 1) == '[';
    adv_n(p, aot ? 2 : 1);
    skip_ws(p);
    struct keypath k = {0};
    char kb[160];
    int rc = key(p, &k);
    if (rc) goto out;
    if (peek(p) != ']' || (aot && peek_at(p, 1) != ']')) {
        char buf[32];
        rc = fail(p, MOQ_ERR_INVALID, "expected '%s' to close the table header, found %s",
                  aot ? "]]" : "]", show_char(p, buf, sizeof(buf)));
        goto out;
    }
    adv_n(p, aot ? 2 : 1);

    struct moq_toml_value *t = p->root;
    for (int i = 0; i < k.n - 1; i++) {
        const struct keypart *kp = &k.parts[i];
        struct moq_toml_table *tbl = t->u.tbl;
        struct moq_toml_kv *kv = table_find(tbl, kp->s, kp->len);
        if (!kv) {
            if ((rc = check_depth(p, tbl->depth + 1, kp->line, kp->col))) goto out;
            struct moq_toml_value *child =
                new_table(TBL_IMPLICIT, tbl->depth + 1, kp->line, kp->col);
            if (!child || table_put(tbl, kp->s, kp->len, kp->line, kp->col, child)) {
                free_value(child);
                rc = nomem(p);
                goto out;
            }
            t = child;
            continue;
        }
        struct moq_toml_value *v = kv->value;
        if (v->type == MOQ_TOML_ARRAY && v->u.arr->of_tables) {
            t = v->u.arr->items[v->u.arr->len - 1];
            continue;
        }
        if (v->type != MOQ_TOML_TABLE) {
            rc = fail_at(p, kp->line, kp->col, MOQ_ERR_INVALID,
                         "key '%s' is already %s (line %u), not a table",
                         show_path(kb, sizeof(kb), k.parts, i + 1), a_type(v->type), kv->line);
            goto out;
        }
        if (v->u.tbl->kind == TBL_INLINE) {
            rc = fail_at(p, kp->line, kp->col, MOQ_ERR_INVALID,
                         "cannot add to inline table '%s' (line %u)",
                         show_path(kb, sizeof(kb), k.parts, i + 1), kv->line);
            goto out;
        }
        t = v;
    }

    const struct keypart *last = &k.parts[k.n - 1];
    struct moq_toml_table *tbl = t->u.tbl;
    struct moq_toml_kv *kv = table_find(tbl, last->s, last->len);
    show_path(kb, sizeof(kb), k.parts, k.n);
    if (aot) {
        struct moq_toml_value *arr;
        if (!kv) {
            if ((rc = check_depth(p, tbl->depth + 1, line, col))) goto out;
            arr = new_array(tbl->depth + 1, line, col);
            if (!arr || table_put(tbl, last->s, last->len, last->line, last->col, arr)) {
                free_value(arr);
                rc = nomem(p);
                goto out;
            }
            arr->u.arr->of_tables = true;
        } else if (kv->value->type == MOQ_TOML_ARRAY && kv->value->u.arr->of_tables) {
            arr = kv->value;
        } else if (kv->value->type == MOQ_TOML_ARRAY) {
            rc = fail_at(p, line, col, MOQ_ERR_INVALID,
                         "cannot append to static array '%s' (line %u) with [[...]]", kb, kv->line);
            goto out;
        } else {
            rc = fail_at(p, line, col, MOQ_ERR_INVALID,
                         "key '%s' is already %s (line %u); it cannot become an array of tables",
                         kb, a_type(kv->value->type), kv->line);
            goto out;
        }
        if ((rc = check_depth(p, arr->u.arr->depth + 1, line, col))) goto out;
        struct moq_toml_value *elem = new_table(TBL_HEADER, arr->u.arr->depth + 1, line, col);
        if (!elem || array_push(arr->u.arr, elem)) {
            free_value(elem);
            rc = nomem(p);
            goto out;
        }
        p->cur = elem;
    } else if (!kv) {
        if ((rc = check_depth(p, tbl->depth + 1, line, col))) goto out;
        struct moq_toml_value *child = new_table(TBL_HEADER, tbl->depth + 1, line, col);
        if (!child || table_put(tbl, last->s, last->len, last->line, last->col, child)) {
            free_value(child);
            rc = nomem(p);
            goto out;
        }
        p->cur = child;
    } else {
        struct moq_toml_value *v = kv->value;
        if (v->type != MOQ_TOML_TABLE) {
            rc = fail_at(p, line, col, MOQ_ERR_INVALID,
                         "key '%s' is already %s (line %u); it cannot be redefined as a table", kb,
                         a_type(v->type), kv->line);
            goto out;
        }
        switch (v->u.tbl->kind) {
        case TBL_IMPLICIT:
            v->u.tbl->kind = TBL_HEADER;
            v->line = line;
            v->col = col;
            p->cur = v;
            break;
        case TBL_HEADER:
            rc = fail_at(p, line, col, MOQ_ERR_INVALID, "table '%s' is defined twice (line %u)", kb,
                         v->line);
            goto out;
        case TBL_DOTTED:
            rc = fail_at(p, line, col, MOQ_ERR_INVALID,
                         "table '%s' was already defined by dotted keys (line %u)", kb, v->line);
            goto out;
        case TBL_INLINE:
            rc =
                fail_at(p, line, col, MOQ_ERR_INVALID,
                        "table '%s' was already defined as an inline table (line %u)", kb, v->line);
            goto out;
        }
    }
out:
    keypath_free(&k);
    return rc;
}

/* ---- entry points ----------------------------------------------------------------------- */

int moq_toml_parse(const char *buf, size_t len, struct moq_toml_value **root,
                   struct moq_toml_error *err)
{
    struct parser p = {
        .s = (const unsigned char *)buf, .len = len, .line = 1, .col = 1, .err = err};
    *root = NULL;
    if (err) {
        err->line = err->col = 0;
        err->msg[0] = '\0';
    }
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) p.pos = 3; /* byte order mark */
    int rc = check_utf8(&p);
    if (rc) return rc;
    p.root = new_table(TBL_HEADER, 0, 1, 1);
    if (!p.root) return nomem(&p);
    p.cur = p.root;
    for (;;) {
        skip_ws(&p);
        int c = peek(&p), nl;
        if (c < 0) break;
        if ((nl = newline_len(&p))) {
            adv_n(&p, (size_t)nl);
            continue;
        }
        if (c == '#') {
            rc = comment(&p);
        } else if (c == '[') {
            rc = header(&p);
            if (!rc) rc = end_of_line(&p, "a table header");
        } else if (c == '\r') {
            rc = fail(&p, MOQ_ERR_INVALID, "carriage return without a line feed");
        } else {
            rc = keyval(&p, p.cur);
            if (!rc) rc = end_of_line(&p, "a value");
        }
        if (rc) {
            free_value(p.root);
            return rc;
        }
    }
    *root = p.root;
    return 0;
}

void moq_toml_free(struct moq_toml_value *root)
{
    free_value(root);
}

const char *moq_toml_type_name(enum moq_toml_type type)
{
    switch (type) {
    case MOQ_TOML_STRING:
        return "string";
    case MOQ_TOML_INTEGER:
        return "integer";
    case MOQ_TOML_FLOAT:
        return "float";
    case MOQ_TOML_BOOL:
        return "boolean";
    case MOQ_TOML_ARRAY:
        return "array";
    case MOQ_TOML_TABLE:
        return "table";
    }
    return "?";
}

const struct moq_toml_kv *moq_toml_get_kv(const struct moq_toml_value *t, const char *key)
{
    if (!t || t->type != MOQ_TOML_TABLE || !key) return NULL;
    return table_find(t->u.tbl, key, strlen(key));
}

const struct moq_toml_value *moq_toml_get(const struct moq_toml_value *t, const char *key)
{
    const struct moq_toml_kv *kv = moq_toml_get_kv(t, key);
    return kv ? kv->value : NULL;
}

size_t moq_toml_table_len(const struct moq_toml_value *t)
{
    return t && t->type == MOQ_TOML_TABLE ? t->u.tbl->len : 0;
}

const struct moq_toml_kv *moq_toml_table_at(const struct moq_toml_value *t, size_t i)
{
    return t && t->type == MOQ_TOML_TABLE && i < t->u.tbl->len ? &t->u.tbl->kv[i] : NULL;
}

const struct moq_toml_value *moq_toml_get_path(const struct moq_toml_value *t, const char *path)
{
    while (t && path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (t->type != MOQ_TOML_TABLE) return NULL;
        struct moq_toml_kv *kv = table_find(t->u.tbl, path, n);
        if (!kv) return NULL;
        t = kv->value;
        if (!dot) return t;
        path = dot + 1;
    }
    return NULL;
}

size_t moq_toml_array_len(const struct moq_toml_value *a)
{
    return a && a->type == MOQ_TOML_ARRAY ? a->u.arr->len : 0;
}

const struct moq_toml_value *moq_toml_array_at(const struct moq_toml_value *a, size_t i)
{
    return a && a->type == MOQ_TOML_ARRAY && i < a->u.arr->len ? a->u.arr->items[i] : NULL;
}
