#include "moq/path.h"
#include "util/err.h"

#include <string.h>

bool moq_str_eq(moq_str a, moq_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

size_t moq_path_count_parts(moq_str path)
{
    size_t parts = 0;
    bool in_segment = false;
    for (size_t i = 0; i < path.len; i++) {
        if (path.ptr[i] == '/') {
            in_segment = false;
        } else if (!in_segment) {
            in_segment = true;
            parts++;
        }
    }
    return parts;
}

bool moq_path_is_normalized(moq_str path)
{
    if (path.len == 0) return true;
    if (path.ptr[0] == '/' || path.ptr[path.len - 1] == '/') return false;
    for (size_t i = 1; i < path.len; i++)
        if (path.ptr[i] == '/' && path.ptr[i - 1] == '/') return false;
    return moq_path_count_parts(path) <= MOQ_PATH_MAX_PARTS;
}

int moq_path_normalize(char *buf, size_t len, size_t *out_len)
{
    size_t w = 0, parts = 0;
    bool in_segment = false;
    for (size_t r = 0; r < len; r++) {
        char c = buf[r];
        if (c == '/') {
            in_segment = false;
            continue;
        }
        if (!in_segment) {
            in_segment = true;
            if (++parts > MOQ_PATH_MAX_PARTS) return MOQ_ERR_TOO_LARGE;
            if (w > 0) buf[w++] = '/';
        }
        buf[w++] = c;
    }
    *out_len = w;
    return 0;
}

int moq_path_normalize_append(moq_buf *out, moq_str src)
{
    if (moq_path_count_parts(src) > MOQ_PATH_MAX_PARTS) return MOQ_ERR_TOO_LARGE;
    int rv = moq_buf_reserve(out, src.len);
    if (rv < 0) return rv;
    if (src.len == 0) return 0;
    char *dst = (char *)out->data + out->len;
    memcpy(dst, src.ptr, src.len);
    size_t n;
    rv = moq_path_normalize(dst, src.len, &n);
    if (rv < 0) return rv;
    out->len += n;
    return 0;
}

bool moq_path_has_prefix(moq_str path, moq_str prefix)
{
    if (prefix.len == 0) return true;
    if (path.len < prefix.len || memcmp(path.ptr, prefix.ptr, prefix.len) != 0) return false;
    return path.len == prefix.len || path.ptr[prefix.len] == '/';
}

int moq_path_strip_prefix(moq_str path, moq_str prefix, moq_str *suffix)
{
    if (!moq_path_has_prefix(path, prefix)) return MOQ_ERR_NOT_FOUND;
    if (prefix.len == 0) {
        *suffix = path;
    } else if (path.len == prefix.len) {
        *suffix = moq_str_make(path.ptr + path.len, 0);
    } else {
        *suffix = moq_str_make(path.ptr + prefix.len + 1, path.len - prefix.len - 1);
    }
    return 0;
}

int moq_path_join(moq_buf *out, moq_str a, moq_str b)
{
    if (moq_path_count_parts(a) + moq_path_count_parts(b) > MOQ_PATH_MAX_PARTS)
        return MOQ_ERR_TOO_LARGE;
    size_t start = out->len;
    int rv = moq_buf_reserve(out, a.len + b.len + 1);
    if (rv < 0) return rv;
    rv = moq_buf_append(out, a.ptr, a.len);
    if (rv == 0 && a.len > 0 && b.len > 0) rv = moq_buf_put_u8(out, '/');
    if (rv == 0) rv = moq_buf_append(out, b.ptr, b.len);
    if (rv < 0) out->len = start;
    return rv;
}
