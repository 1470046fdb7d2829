/*
 * wire.h - the primitive types of the moq-transport wire, per draft: variable-length
 * integers (QUIC's two-bit-length form through draft-16, the leading-ones form from
 * draft-17), bytes, strings, namespace tuples and locations. Sans-I/O, no allocation.
 *
 * ietf_w appends to a caller-owned moq_buf; ietf_r reads a borrowed byte range. Both keep
 * the first error they meet (sticky) so that codecs read and write a whole message and
 * check once at the end: every later call is a no-op returning zero values. Errors:
 * MOQ_ERR_PROTO for malformed or truncated input, MOQ_ERR_TOO_LARGE for a value over its
 * limit, MOQ_ERR_NOMEM when the buffer cannot grow, MOQ_ERR_INVALID for a value that cannot
 * be encoded (over 2^62-1 on QUIC varints).
 */
#ifndef MOQ_IETF_WIRE_H
#define MOQ_IETF_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ietf/version.h"
#include "moq/path.h"
#include "util/buf.h"

/* Longest encoded varint of either form. */
#define MOQ_IETF_VARINT_MAX 9
/* Namespace tuples carry at most 32 fields and 4096 bytes in all. */
#define MOQ_IETF_MAX_TUPLE        32
#define MOQ_IETF_MAX_NAMESPACE    4096
#define MOQ_IETF_MAX_TRACK_NAME   4096
#define MOQ_IETF_MAX_REASON       1024
#define MOQ_IETF_MAX_SETUP_OPTION 8192

/* ---- leading-ones varints (draft-17+) ---------------------------------------------- */

/* Bytes needed for v (1..9; the 7-byte form is never produced). */
size_t moq_lo_len(uint64_t v);
/* Write v at p (moq_lo_len(v) bytes). Returns the pointer past it. */
uint8_t *moq_lo_put(uint8_t *p, uint64_t v);
/* Decode one from p[0..len). Returns the bytes consumed, MOQ_ERR_AGAIN when len is too
 * short, MOQ_ERR_PROTO for the 7-byte form when reject7 (draft-17 reserves it). */
int moq_lo_get(const uint8_t *p, size_t len, bool reject7, uint64_t *out);

/* ---- either form, by draft ----------------------------------------------------------- */

/* Bytes needed for v on this draft; 0 when it cannot be encoded. */
size_t moq_ietf_varint_len(const moq_ietf_caps *c, uint64_t v);
/* Write v (must be encodable); returns the pointer past it. */
uint8_t *moq_ietf_varint_put(const moq_ietf_caps *c, uint8_t *p, uint64_t v);
/* As moq_lo_get / moq_varint_get for the draft's form. */
int moq_ietf_varint_get(const moq_ietf_caps *c, const uint8_t *p, size_t len, uint64_t *out);

/* ---- writer ------------------------------------------------------------------------ */

typedef struct ietf_w {
    moq_buf *b;
    const moq_ietf_caps *c;
    int err;
} ietf_w;

static inline void iw_init(ietf_w *w, moq_buf *b, const moq_ietf_caps *c)
{
    w->b = b;
    w->c = c;
    w->err = 0;
}

void iw_varint(ietf_w *w, uint64_t v);
void iw_u8(ietf_w *w, uint8_t v);
void iw_u16(ietf_w *w, uint16_t v);
void iw_raw(ietf_w *w, const void *data, size_t len);
/* varint length, then the bytes */
void iw_lenbytes(ietf_w *w, const void *data, size_t len);
/* A broadcast path as a namespace tuple ("" = empty tuple; '/' separates the fields). */
void iw_tuple(ietf_w *w, moq_str path);
void iw_location(ietf_w *w, uint64_t group, uint64_t object);

/* ---- reader ------------------------------------------------------------------------ */

typedef struct ietf_r {
    const uint8_t *p;
    const uint8_t *end;
    const moq_ietf_caps *c;
    int err;
} ietf_r;

static inline void ir_init(ietf_r *r, const void *data, size_t len, const moq_ietf_caps *c)
{
    r->p = data ? (const uint8_t *)data : (const uint8_t *)"";
    r->end = data ? r->p + len : r->p;
    r->c = c;
    r->err = 0;
}

static inline size_t ir_left(const ietf_r *r)
{
    return r->err ? 0 : (size_t)(r->end - r->p);
}

static inline void ir_fail(ietf_r *r, int err)
{
    if (!r->err) r->err = err;
}

uint64_t ir_varint(ietf_r *r);
uint8_t ir_u8(ietf_r *r);
/* A boolean byte: 0 or 1, anything else is MOQ_ERR_PROTO. */
bool ir_bool(ietf_r *r);
/* n raw bytes, a view into the input (NULL on error). */
const uint8_t *ir_raw(ietf_r *r, size_t n);
/* varint length then bytes, at most max (MOQ_ERR_TOO_LARGE beyond). */
const uint8_t *ir_lenbytes(ietf_r *r, size_t max, size_t *len);
/* A UTF-8 string (reason phrases, track names): varint length, at most max bytes. */
moq_str ir_string(ietf_r *r, size_t max);
/* A namespace tuple joined with '/' into out (normal form: empty fields vanish). */
void ir_tuple(ietf_r *r, moq_buf *out);
void ir_location(ietf_r *r, uint64_t *group, uint64_t *object);
/* MOQ_ERR_PROTO unless the input is used up; returns the sticky error (0 = ok). */
int ir_done(ietf_r *r);

#endif
