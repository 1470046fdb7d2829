/* codec_int.h - helpers shared by the moq-transport message codecs (src/ietf/msg_*.c). */
#ifndef MOQ_IETF_CODEC_INT_H
#define MOQ_IETF_CODEC_INT_H

#include "ietf/codec.h"

/* An encoder writes straight into the caller's buffer and rolls back on failure, so that a
 * failed encode leaves the buffer unchanged. */
struct enc {
    ietf_w w;
    size_t start;
};

static inline ietf_w *enc_start(struct enc *e, moq_buf *out, const moq_ietf_caps *c)
{
    iw_init(&e->w, out, c);
    e->start = out->len;
    return &e->w;
}

static inline int enc_commit(struct enc *e)
{
    if (e->w.err) e->w.b->len = e->start;
    return e->w.err;
}

/* A decoder's reader over a whole body, plus the namespace buffer it may own. */
static inline void dec_start(ietf_r *r, const moq_ietf_caps *c, const uint8_t *body, size_t len)
{
    ir_init(r, body, len, c);
}

#endif
