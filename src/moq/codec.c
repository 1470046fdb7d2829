/* Codec primitives: field readers/writers, message framing, stream types, UTF-8. */
#include "moq/codec_internal.h"
#include "util/varint.h"

#include <string.h>

/* ---- readers ----------------------------------------------------------------------- */

static int short_is_proto(int rv)
{
    return rv == MOQ_ERR_AGAIN ? MOQ_ERR_PROTO : rv;
}

int moq_codec_rd_varint(moq_rd *r, uint64_t *out)
{
    return short_is_proto(moq_rd_varint(r, out));
}

int moq_codec_rd_u8(moq_rd *r, uint8_t *out)
{
    return short_is_proto(moq_rd_u8(r, out));
}

int moq_codec_rd_bool(moq_rd *r, bool *out)
{
    uint8_t v;
    int rv = moq_codec_rd_u8(r, &v);
    if (rv < 0) return rv;
    *out = v != 0;
    return 0;
}

int moq_codec_rd_opt(moq_rd *r, bool *has, uint64_t *value)
{
    uint64_t v;
    int rv = moq_codec_rd_varint(r, &v);
    if (rv < 0) return rv;
    *has = v != 0;
    *value = v ? v - 1 : 0;
    return 0;
}

int moq_codec_rd_string(moq_rd *r, size_t max, moq_str *out)
{
    const uint8_t *p;
    size_t n;
    int rv = short_is_proto(moq_rd_lenbytes(r, max, &p, &n));
    if (rv < 0) return rv;
    if (!moq_utf8_valid(p, n)) return MOQ_ERR_PROTO;
    *out = moq_str_make(p, n);
    return 0;
}

int moq_codec_rd_path(moq_rd *r, moq_str *out)
{
    moq_str raw;
    int rv = moq_codec_rd_string(r, MOQ_MAX_NAME_LEN, &raw);
    if (rv < 0) return rv;
    size_t n = 0;
    /* The body belongs to the caller and is documented as mutable (codec.h). */
    if (raw.len > 0) {
        rv = moq_path_normalize((char *)raw.ptr, raw.len, &n);
        if (rv < 0) return rv;
    }
    *out = moq_str_make(raw.ptr, n);
    return 0;
}

int moq_codec_rd_end(const moq_rd *r)
{
    return moq_rd_left(r) == 0 ? 0 : MOQ_ERR_PROTO;
}

/* ---- writers ----------------------------------------------------------------------- */

int moq_codec_put_varint(moq_buf *b, uint64_t v)
{
    return moq_buf_put_varint(b, v); /* MOQ_ERR_INVALID above 2^62-1 */
}

int moq_codec_put_bool(moq_buf *b, bool v)
{
    return moq_buf_put_u8(b, v ? 1 : 0);
}

int moq_codec_put_opt(moq_buf *b, bool has, uint64_t value)
{
    if (!has) return moq_codec_put_varint(b, 0);
    if (value >= MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    return moq_codec_put_varint(b, value + 1);
}

int moq_codec_put_string(moq_buf *b, moq_str s, size_t max)
{
    if (s.len > max) return MOQ_ERR_TOO_LARGE;
    if (!moq_utf8_valid((const uint8_t *)s.ptr, s.len)) return MOQ_ERR_INVALID;
    return moq_buf_put_lenbytes(b, s.ptr, s.len);
}

int moq_codec_put_path(moq_buf *b, moq_str path)
{
    if (path.len > MOQ_MAX_NAME_LEN || moq_path_count_parts(path) > MOQ_PATH_MAX_PARTS)
        return MOQ_ERR_TOO_LARGE;
    if (!moq_path_is_normalized(path)) return MOQ_ERR_INVALID;
    return moq_codec_put_string(b, path, MOQ_MAX_NAME_LEN);
}

int moq_codec_msg_end(moq_buf *b, size_t start, size_t body_start, int rv)
{
    if (rv < 0) {
        b->len = start;
        return rv;
    }
    size_t body_len = b->len - body_start;
    size_t n = moq_varint_len(body_len);
    rv = moq_buf_reserve(b, n);
    if (rv < 0) {
        b->len = start;
        return rv;
    }
    memmove(b->data + body_start + n, b->data + body_start, body_len);
    moq_varint_put(b->data + body_start, body_len);
    b->len += n;
    return 0;
}

/* ---- framing ----------------------------------------------------------------------- */

int moq_msg_split(const uint8_t *p, size_t len, bool typed, size_t max_body, uint64_t *type,
                  const uint8_t **body, size_t *body_len)
{
    moq_rd r;
    moq_rd_init(&r, p, len);
    uint64_t t = 0, size;
    int rv = typed ? moq_rd_varint(&r, &t) : 0;
    if (rv == 0) rv = moq_rd_varint(&r, &size);
    if (rv < 0) return rv;
    if (size > max_body) return MOQ_ERR_TOO_LARGE;
    if (moq_rd_left(&r) < size) return MOQ_ERR_AGAIN;
    if (type) *type = t;
    *body = r.p;
    *body_len = (size_t)size;
    size_t total = (size_t)(r.p - p) + (size_t)size;
    return total > INT32_MAX ? MOQ_ERR_TOO_LARGE : (int)total;
}

/* ---- stream types ------------------------------------------------------------------ */

bool moq_bidi_type_supported(moq_version v, uint64_t type)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return false;
    switch (type) {
    case MOQ_BIDI_ANNOUNCE:
    case MOQ_BIDI_SUBSCRIBE:
        return true;
    case MOQ_BIDI_FETCH:
        return c->fetch;
    case MOQ_BIDI_PROBE:
        return c->probe;
    case MOQ_BIDI_GOAWAY:
        return c->goaway;
    case MOQ_BIDI_TRACK:
        return c->track_stream;
    default:
        return false;
    }
}

bool moq_uni_type_supported(moq_version v, uint64_t type)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return false;
    switch (type) {
    case MOQ_UNI_GROUP:
        return true;
    case MOQ_UNI_SETUP:
        return c->setup_stream;
    default:
        return false;
    }
}

int moq_encode_stream_type(moq_buf *out, uint64_t type)
{
    return moq_codec_put_varint(out, type);
}

/* ---- UTF-8 ------------------------------------------------------------------------- */

bool moq_utf8_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0)
                lo = 0xa0; /* no overlongs */
            else if (c == 0xed)
                hi = 0x9f; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0)
                lo = 0x90; /* no overlongs */
            else if (c == 0xf4)
                hi = 0x8f; /* <= U+10FFFF */
        } else {
            return false;
        }
        if (len - i < n) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (size_t k = 2; k < n; k++)
            if ((p[i + k] & 0xc0) != 0x80) return false;
        i += n;
    }
    return true;
}
