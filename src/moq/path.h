/*
 * path.h - moq-lite broadcast paths: byte strings with explicit lengths (never NUL-dependent).
 *
 * Normal form: no leading or trailing '/', no empty segment ("a//b" -> "a/b"), "" = root, at
 * most MOQ_PATH_MAX_PARTS segments. Prefix tests are per segment: "a/b" is under "a",
 * "a/bc" is not under "a/b", everything is under "". The suffix of a path under a prefix is
 * the path minus the prefix and the joining '/' ("" when equal).
 *
 * moq_str is a borrowed view; nothing here allocates except moq_path_join, which appends to
 * the caller's moq_buf. Prefix, suffix and join take paths already in normal form.
 */
#ifndef MOQ_MOQ_PATH_H
#define MOQ_MOQ_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define MOQ_PATH_MAX_PARTS 32

/* A borrowed byte string. ptr may be NULL when len is 0. */
typedef struct moq_str {
    const char *ptr;
    size_t len;
} moq_str;

#define MOQ_STR(lit) ((moq_str){(lit), sizeof(lit) - 1})

static inline moq_str moq_str_make(const void *ptr, size_t len)
{
    moq_str s = {(const char *)ptr, len};
    return s;
}

bool moq_str_eq(moq_str a, moq_str b);

/* Number of non-empty '/'-separated segments (works on any input, normalised or not). */
size_t moq_path_count_parts(moq_str path);

/* Whether path is in normal form (segment limit included). */
bool moq_path_is_normalized(moq_str path);

/* Rewrite buf[0..len) to normal form in place (the result is never longer) and store the
 * new length. MOQ_ERR_TOO_LARGE when the path has more than MOQ_PATH_MAX_PARTS segments
 * (buf is then left in an unspecified state). */
int moq_path_normalize(char *buf, size_t len, size_t *out_len);

/* Append the normal form of src to out. MOQ_ERR_TOO_LARGE as above (out unchanged). */
int moq_path_normalize_append(moq_buf *out, moq_str src);

/* Whether path is prefix or lies under it, segment-wise. */
bool moq_path_has_prefix(moq_str path, moq_str prefix);

/* The part of path below prefix (a view into path). MOQ_ERR_NOT_FOUND when path is not
 * under prefix. */
int moq_path_strip_prefix(moq_str path, moq_str prefix, moq_str *suffix);

/* Append a "/" b (or whichever side is non-empty) to out. MOQ_ERR_TOO_LARGE when the
 * result would exceed MOQ_PATH_MAX_PARTS segments (out unchanged). */
int moq_path_join(moq_buf *out, moq_str a, moq_str b);

#endif
