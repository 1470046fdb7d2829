/*
 * json.h - writing JSON text into a moq_buf (the relay's inspection endpoints).
 *
 * The caller lays out the document; these helpers escape strings and keep commas right
 * through a small nesting stack. Nothing is allocated beyond the buffer, which the caller
 * owns. Allocation failures are sticky: moq_json_finish reports them.
 */
#ifndef MOQ_UTIL_JSON_H
#define MOQ_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MOQ_JSON_MAX_DEPTH 16

typedef struct moq_json {
    moq_buf *out;
    int depth;
    bool first[MOQ_JSON_MAX_DEPTH]; /* nothing written yet at this level */
    char close[MOQ_JSON_MAX_DEPTH]; /* '}' or ']' */
    bool after_key;
    bool failed;     /* a write failed */
    bool unbalanced; /* an end without an open level, or nesting too deep */
} moq_json;

void moq_json_init(moq_json *j, moq_buf *out);
void moq_json_object(moq_json *j); /* { */
void moq_json_array(moq_json *j);  /* [ */
void moq_json_end(moq_json *j);    /* } or ] */
/* A member name inside an object; the value follows. */
void moq_json_key(moq_json *j, const char *name);
/* Values. Bytes are written as a string: valid UTF-8 as is, other bytes as U+FFFD. */
void moq_json_str(moq_json *j, const char *s);
void moq_json_bytes(moq_json *j, const void *s, size_t len);
void moq_json_u64(moq_json *j, uint64_t v);
void moq_json_double(moq_json *j, double v);
void moq_json_bool(moq_json *j, bool v);
void moq_json_null(moq_json *j);
/* 0, or MOQ_ERR_NOMEM when a write failed, MOQ_ERR_INVALID when unbalanced. */
int moq_json_finish(moq_json *j);

#endif
