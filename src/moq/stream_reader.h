/*
 * stream_reader.h - incremental, sans-I/O readers for moq-lite streams. Each is fed the
 * byte pieces a stream delivers (any split, down to one byte at a time) and yields complete
 * items one at a time.
 *
 * Calling convention shared by all three: next(reader, &in, &in_len, fin, &out) consumes
 * what it needs from the front of in[0..in_len) (advancing in and in_len) and returns
 *   > 0  one item is ready in out;
 *   0    the input is used up and more is needed (call again when the next piece arrives);
 *   < 0  an error (sticky: later calls return it again), or MOQ_ERR_CLOSED for a stream
 *        that ended cleanly (FIN) where an item would start.
 * `fin` says the stream ends after in[0..in_len); pass it with every call for that piece.
 *
 * - moq_varint_reader: one varint, e.g. the stream type that opens every stream.
 * - moq_ctrl_reader: size-prefixed control messages, optionally typed; copies each message
 *   into its own buffer (bounded by max_msg; buffers over 4 KiB are released after use), so
 *   the body it yields is mutable (the codec normalises paths in place) and valid until the
 *   next call. Owns heap memory: free it.
 * - moq_group_parser: the group stream hot path (and lite-05 fetch responses): header once,
 *   then per frame BEGIN (timestamp, size), PAYLOAD pieces that point into the caller's
 *   input (no copy), END. Never allocates; nothing to free.
 */
#ifndef MOQ_MOQ_STREAM_READER_H
#define MOQ_MOQ_STREAM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moq/version.h"
#include "util/buf.h"

/* ---- one varint -------------------------------------------------------------------- */

typedef struct moq_varint_reader {
    uint8_t buf[8];
    uint8_t have;
    uint8_t need; /* 0 until the first byte is seen */
} moq_varint_reader;

void moq_varint_reader_init(moq_varint_reader *r);

/* 1 with *value set; 0 need more; MOQ_ERR_CLOSED at FIN before any byte; MOQ_ERR_PROTO at
 * FIN inside the varint. The reader can be reused after init. */
int moq_varint_reader_next(moq_varint_reader *r, const uint8_t **in, size_t *in_len, bool fin,
                           uint64_t *value);

/* ---- control messages -------------------------------------------------------------- */

#define MOQ_CTRL_DEFAULT_MAX_MSG (64 * 1024)

enum moq_ctrl_flags {
    MOQ_CTRL_TYPED = 1 << 0,    /* vi type before the size (subscribe responses) */
    MOQ_CTRL_U16_SIZE = 1 << 1, /* u16 big-endian size (legacy compat SETUP) */
};

typedef struct moq_ctrl_reader {
    unsigned flags;
    size_t max_msg;
    int state;
    int error;
    moq_varint_reader vr;
    uint8_t size16[2];
    uint8_t size16_have;
    uint64_t type;
    size_t size;
    moq_buf body;
} moq_ctrl_reader;

struct moq_ctrl_msg {
    uint64_t type; /* only with MOQ_CTRL_TYPED */
    uint8_t *body; /* the reader's buffer; valid until the next call; may be NULL if len 0 */
    size_t len;
};

/* flags: enum moq_ctrl_flags; max_msg: largest body accepted (MOQ_ERR_TOO_LARGE beyond). */
void moq_ctrl_reader_init(moq_ctrl_reader *r, unsigned flags, size_t max_msg);
void moq_ctrl_reader_free(moq_ctrl_reader *r);

/* Switch between typed and untyped messages (lite-06 announce streams turn typed after
 * ANNOUNCE_OK). Only between messages: right after init or after a message was handed out. */
void moq_ctrl_reader_set_typed(moq_ctrl_reader *r, bool typed);

/* 1 = a message; 0 = need more; MOQ_ERR_CLOSED = FIN at a message boundary;
 * MOQ_ERR_PROTO = FIN inside a message; MOQ_ERR_TOO_LARGE = body over max_msg. */
int moq_ctrl_reader_next(moq_ctrl_reader *r, const uint8_t **in, size_t *in_len, bool fin,
                         struct moq_ctrl_msg *msg);

/* Bytes the reader has allocated for a message it has not completed yet (the declared size
 * is reserved as soon as it is known), 0 between messages. Lets a session bound what
 * peers make it buffer across many streams. */
size_t moq_ctrl_reader_pending(const moq_ctrl_reader *r);

/* ---- group streams ----------------------------------------------------------------- */

#define MOQ_DEFAULT_MAX_FRAME (32u * 1024 * 1024)

enum moq_group_event_kind {
    MOQ_GROUP_EV_HEADER = 1,    /* sub_id, sequence (once, first) */
    MOQ_GROUP_EV_FRAME = 2,     /* a frame begins: timestamp (lite-05, else 0), size */
    MOQ_GROUP_EV_PAYLOAD = 3,   /* data/len: the next payload bytes, a view into the input */
    MOQ_GROUP_EV_FRAME_END = 4, /* the frame's payload is complete */
    MOQ_GROUP_EV_END = 5,       /* FIN at a frame boundary: the group is complete */
};

struct moq_group_event {
    int kind; /* enum moq_group_event_kind */
    uint64_t sub_id;
    uint64_t sequence;
    uint64_t timestamp; /* absolute, in the track timescale */
    uint64_t size;
    const uint8_t *data;
    size_t len;
};

typedef struct moq_group_parser {
    bool timestamps;
    uint64_t max_frame;
    int state;
    int error;
    uint64_t error_code; /* wire code (errors.h) of the error, for RESET/STOP_SENDING */
    moq_varint_reader vr;
    uint8_t hdr[16];
    uint8_t hdr_size;
    uint8_t hdr_have;
    uint64_t sub_id;
    uint64_t sequence;
    uint64_t prev_ts;
    uint64_t frame_ts;
    uint64_t remaining;
} moq_group_parser;

/* has_header: a group stream (after its stream type) starts with [sub_id, sequence]; a
 * lite-05 FETCH response has no header. max_frame: larger declared payloads fail with
 * MOQ_ERR_TOO_LARGE / FrameTooLarge. Returns MOQ_ERR_UNSUPPORTED for an unknown version. */
int moq_group_parser_init(moq_group_parser *gp, moq_version v, bool has_header, uint64_t max_frame);

/* Returns an event kind (> 0) or 0 / error as described at the top. Errors and their
 * error_code: FIN inside the header, a malformed header -> MOQ_ERR_PROTO / Decode;
 * FIN inside a frame -> MOQ_ERR_PROTO / WrongSize; size over max_frame -> MOQ_ERR_TOO_LARGE /
 * FrameTooLarge; a timestamp outside [0, 2^62) -> MOQ_ERR_PROTO / BoundsExceeded. After
 * MOQ_GROUP_EV_END every call returns MOQ_GROUP_EV_END again. */
int moq_group_parser_next(moq_group_parser *gp, const uint8_t **in, size_t *in_len, bool fin,
                          struct moq_group_event *ev);

#endif
