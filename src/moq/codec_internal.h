/*
 * codec_internal.h - primitives shared by the codec's message files (msg_*.c). Not a
 * public interface: use codec.h.
 *
 * Readers work on one complete message body, so running short is MOQ_ERR_PROTO (truncated
 * body), never MOQ_ERR_AGAIN. Writers append to a moq_buf; wrap each message in
 * codec_msg_begin()/moq_codec_msg_end() so a failure leaves the buffer as it was.
 */
#ifndef MOQ_MOQ_CODEC_INTERNAL_H
#define MOQ_MOQ_CODEC_INTERNAL_H

#include "moq/codec.h"
#include "util/buf.h"
#include "util/err.h"

int moq_codec_rd_varint(moq_rd *r, uint64_t *out);
int moq_codec_rd_u8(moq_rd *r, uint8_t *out);
/* Lenient bool (non-zero = true), as upstream Rust reads "ordered". */
int moq_codec_rd_bool(moq_rd *r, bool *out);
int moq_codec_rd_opt(moq_rd *r, bool *has, uint64_t *value);
/* vi length + UTF-8 bytes, at most max bytes (MOQ_ERR_TOO_LARGE). */
int moq_codec_rd_string(moq_rd *r, size_t max, moq_str *out);
/* A string normalised in place as a path (the body is mutable; see codec.h). */
int moq_codec_rd_path(moq_rd *r, moq_str *out);
/* MOQ_ERR_PROTO unless the body is fully consumed. */
int moq_codec_rd_end(const moq_rd *r);

int moq_codec_put_varint(moq_buf *b, uint64_t v);
int moq_codec_put_bool(moq_buf *b, bool v);
int moq_codec_put_opt(moq_buf *b, bool has, uint64_t value);
int moq_codec_put_string(moq_buf *b, moq_str s, size_t max);
/* A normalised path: MOQ_ERR_INVALID if not normalised, MOQ_ERR_TOO_LARGE over limits. */
int moq_codec_put_path(moq_buf *b, moq_str path);

/* Message framing. begin returns the offset where the message starts; end prefixes the body
 * written since with its size, or rolls the buffer back to `start` when rv < 0. For typed
 * messages, write the type between begin and body_begin. */
static inline size_t codec_msg_begin(const moq_buf *b)
{
    return b->len;
}
int moq_codec_msg_end(moq_buf *b, size_t start, size_t body_start, int rv);

/* Version row or NULL; every public codec function starts with it. */
static inline const moq_caps *codec_caps(moq_version v)
{
    return moq_caps_get(v);
}

#endif
