#include "ietf/wire.h"

#include <string.h>

#include "util/err.h"
#include "util/varint.h"

/* ---------------------------------------------------------------- leading-ones varints */

size_t moq_lo_len(uint64_t v)
{
    if (v < (1ull << 7)) return 1;
    if (v < (1ull << 14)) return 2;
    if (v < (1ull << 21)) return 3;
    if (v < (1ull << 28)) return 4;
    if (v < (1ull << 35)) return 5;
    if (v < (1ull << 42)) return 6;
    if (v < (1ull << 56)) return 8;
    return 9;
}

uint8_t *moq_lo_put(uint8_t *p, uint64_t v)
{
    size_t n = moq_lo_len(v);
    if (n == 9) {
        *p++ = 0xff;
        for (int shift = 56; shift >= 0; shift -= 8)
            *p++ = (uint8_t)(v >> shift);
        return p;
    }
    if (n == 8) {
        *p++ = 0xfe;
        for (int shift = 48; shift >= 0; shift -= 8)
            *p++ = (uint8_t)(v >> shift);
        return p;
    }
    /* n-1 leading ones, a zero, then the value's top bits in the first byte */
    uint8_t prefix = (uint8_t)(0xff00u >> (n - 1));
    *p++ = (uint8_t)(prefix | (uint8_t)(v >> (8 * (n - 1))));
    for (size_t i = n - 1; i-- > 0;)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

int moq_lo_get(const uint8_t *p, size_t len, bool reject7, uint64_t *out)
{
    if (len == 0) return MOQ_ERR_AGAIN;
    uint8_t b = p[0];
    size_t ones = 0;
    while (ones < 8 && (b & (0x80u >> ones)))
        ones++;
    size_t n = ones <= 6 ? ones + 1 : ones == 7 ? 8 : 9;
    if (ones == 6 && reject7) return MOQ_ERR_PROTO;
    if (len < n) return MOQ_ERR_AGAIN;
    uint64_t v = ones <= 6 ? (uint64_t)(b & (0x7fu >> ones)) : 0;
    for (size_t i = 1; i < n; i++)
        v = (v << 8) | p[i];
    *out = v;
    return (int)n;
}

/* ---------------------------------------------------------------- per draft */

size_t moq_ietf_varint_len(const moq_ietf_caps *c, uint64_t v)
{
    return c->leading_ones ? moq_lo_len(v) : moq_varint_len(v);
}

uint8_t *moq_ietf_varint_put(const moq_ietf_caps *c, uint8_t *p, uint64_t v)
{
    return c->leading_ones ? moq_lo_put(p, v) : moq_varint_put(p, v);
}

int moq_ietf_varint_get(const moq_ietf_caps *c, const uint8_t *p, size_t len, uint64_t *out)
{
    if (c->leading_ones) return moq_lo_get(p, len, c->draft == MOQT_17, out);
    return moq_varint_get(p, len, out);
}

/* ---------------------------------------------------------------- writer */

static void w_fail(ietf_w *w, int err)
{
    if (!w->err) w->err = err;
}

void iw_varint(ietf_w *w, uint64_t v)
{
    if (w->err) return;
    size_t n = moq_ietf_varint_len(w->c, v);
    if (n == 0) {
        w_fail(w, MOQ_ERR_INVALID);
        return;
    }
    if (moq_buf_reserve(w->b, n) < 0) {
        w_fail(w, MOQ_ERR_NOMEM);
        return;
    }
    moq_ietf_varint_put(w->c, w->b->data + w->b->len, v);
    w->b->len += n;
}

void iw_u8(ietf_w *w, uint8_t v)
{
    if (!w->err && moq_buf_put_u8(w->b, v) < 0) w_fail(w, MOQ_ERR_NOMEM);
}

void iw_u16(ietf_w *w, uint16_t v)
{
    if (!w->err && moq_buf_put_u16be(w->b, v) < 0) w_fail(w, MOQ_ERR_NOMEM);
}

void iw_raw(ietf_w *w, const void *data, size_t len)
{
    if (!w->err && len && moq_buf_append(w->b, data, len) < 0) w_fail(w, MOQ_ERR_NOMEM);
}

void iw_lenbytes(ietf_w *w, const void *data, size_t len)
{
    iw_varint(w, len);
    iw_raw(w, data, len);
}

void iw_tuple(ietf_w *w, moq_str path)
{
    size_t n = moq_path_count_parts(path);
    if (n > MOQ_IETF_MAX_TUPLE || path.len > MOQ_IETF_MAX_NAMESPACE) {
        w_fail(w, MOQ_ERR_TOO_LARGE);
        return;
    }
    iw_varint(w, n);
    size_t i = 0;
    while (i < path.len) {
        size_t start = i;
        while (i < path.len && path.ptr[i] != '/')
            i++;
        if (i > start) iw_lenbytes(w, path.ptr + start, i - start);
        i++;
    }
}

void iw_location(ietf_w *w, uint64_t group, uint64_t object)
{
    iw_varint(w, group);
    iw_varint(w, object);
}

/* ---------------------------------------------------------------- reader */

uint64_t ir_varint(ietf_r *r)
{
    if (r->err) return 0;
    uint64_t v = 0;
    int n = moq_ietf_varint_get(r->c, r->p, (size_t)(r->end - r->p), &v);
    if (n < 0) {
        ir_fail(r, MOQ_ERR_PROTO);
        return 0;
    }
    r->p += n;
    return v;
}

uint8_t ir_u8(ietf_r *r)
{
    if (r->err) return 0;
    if (r->p >= r->end) {
        ir_fail(r, MOQ_ERR_PROTO);
        return 0;
    }
    return *r->p++;
}

bool ir_bool(ietf_r *r)
{
    uint8_t v = ir_u8(r);
    if (v > 1) ir_fail(r, MOQ_ERR_PROTO);
    return v == 1;
}

const uint8_t *ir_raw(ietf_r *r, size_t n)
{
    if (r->err) return NULL;
    if ((size_t)(r->end - r->p) < n) {
        ir_fail(r, MOQ_ERR_PROTO);
        return NULL;
    }
    const uint8_t *out = r->p;
    r->p += n;
    return out;
}

const uint8_t *ir_lenbytes(ietf_r *r, size_t max, size_t *len)
{
    *len = 0;
    uint64_t n = ir_varint(r);
    if (r->err) return NULL;
    if (n > max) {
        ir_fail(r, MOQ_ERR_TOO_LARGE);
        return NULL;
    }
    const uint8_t *p = ir_raw(r, (size_t)n);
    if (p) *len = (size_t)n;
    return p;
}

moq_str ir_string(ietf_r *r, size_t max)
{
    size_t len;
    const uint8_t *p = ir_lenbytes(r, max, &len);
    return moq_str_make(p, p ? len : 0);
}

void ir_tuple(ietf_r *r, moq_buf *out)
{
    uint64_t n = ir_varint(r);
    if (r->err) return;
    if (n > MOQ_IETF_MAX_TUPLE) {
        ir_fail(r, MOQ_ERR_TOO_LARGE);
        return;
    }
    size_t total = 0;
    moq_buf joined;
    moq_buf_init(&joined);
    for (uint64_t i = 0; i < n && !r->err; i++) {
        size_t len;
        const uint8_t *p = ir_lenbytes(r, MOQ_IETF_MAX_NAMESPACE, &len);
        if (!p) break;
        total += len;
        if (total > MOQ_IETF_MAX_NAMESPACE) {
            ir_fail(r, MOQ_ERR_TOO_LARGE);
            break;
        }
        if ((i && moq_buf_put_u8(&joined, '/') < 0) || moq_buf_append(&joined, p, len) < 0)
            ir_fail(r, MOQ_ERR_NOMEM);
    }
    if (!r->err) {
        int rv = moq_path_normalize_append(out, moq_str_make(joined.data, joined.len));
        if (rv < 0) ir_fail(r, rv == MOQ_ERR_TOO_LARGE ? MOQ_ERR_TOO_LARGE : MOQ_ERR_NOMEM);
        /* the root (no fields) is "", never a NULL pointer for the path and grant checks */
        else if (!out->data && moq_buf_reserve(out, 1) < 0)
            ir_fail(r, MOQ_ERR_NOMEM);
    }
    moq_buf_free(&joined);
}

void ir_location(ietf_r *r, uint64_t *group, uint64_t *object)
{
    *group = ir_varint(r);
    *object = ir_varint(r);
}

int ir_done(ietf_r *r)
{
    if (!r->err && r->p != r->end) r->err = MOQ_ERR_PROTO;
    return r->err;
}
