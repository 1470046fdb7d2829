/* JSON text writer (json.h). */
#include "util/json.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"

static void raw(moq_json *j, const void *s, size_t len)
{
    if (!j->failed && moq_buf_append(j->out, s, len) < 0) j->failed = true;
}

/* Separator before a value or key at the current level. */
static void before_value(moq_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0) {
        if (!j->first[j->depth - 1]) raw(j, ",", 1);
        j->first[j->depth - 1] = false;
    }
}

void moq_json_init(moq_json *j, moq_buf *out)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
}

static void open_level(moq_json *j, char open, char close)
{
    before_value(j);
    raw(j, &open, 1);
    if (j->depth == MOQ_JSON_MAX_DEPTH) {
        j->unbalanced = true;
        return;
    }
    j->close[j->depth] = close;
    j->first[j->depth++] = true;
}

void moq_json_object(moq_json *j)
{
    open_level(j, '{', '}');
}

void moq_json_array(moq_json *j)
{
    open_level(j, '[', ']');
}

void moq_json_end(moq_json *j)
{
    if (j->depth == 0) {
        j->unbalanced = true;
        return;
    }
    j->depth--;
    raw(j, &j->close[j->depth], 1);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || n > left) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (s[i] & 0x3F);
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

void moq_json_bytes(moq_json *j, const void *data, size_t len)
{
    before_value(j);
    const unsigned char *s = data;
    raw(j, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            raw(j, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            raw(j, esc, 6);
            i++;
        } else {
            size_t n = utf8_len(s + i, len - i);
            if (n) {
                raw(j, s + i, n);
                i += n;
            } else {
                raw(j, "\\ufffd", 6);
                i++;
            }
        }
    }
    raw(j, "\"", 1);
}

void moq_json_str(moq_json *j, const char *s)
{
    if (!s) {
        moq_json_null(j);
        return;
    }
    moq_json_bytes(j, s, strlen(s));
}

void moq_json_key(moq_json *j, const char *name)
{
    moq_json_str(j, name);
    raw(j, ":", 1);
    j->after_key = true;
}

static void number(moq_json *j, const char *text)
{
    before_value(j);
    raw(j, text, strlen(text));
}

void moq_json_u64(moq_json *j, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
    number(j, t);
}

void moq_json_double(moq_json *j, double v)
{
    char t[40];
    if (v != v || v > 1e300 || v < -1e300) v = 0; /* JSON has no NaN or infinity */
    snprintf(t, sizeof(t), "%.3f", v);
    number(j, t);
}

void moq_json_bool(moq_json *j, bool v)
{
    number(j, v ? "true" : "false");
}

void moq_json_null(moq_json *j)
{
    number(j, "null");
}

int moq_json_finish(moq_json *j)
{
    if (j->failed) return MOQ_ERR_NOMEM;
    return j->depth == 0 && !j->after_key && !j->unbalanced ? 0 : MOQ_ERR_INVALID;
}
