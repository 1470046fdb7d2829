/*
 * frames.h - sans-I/O pieces of HTTP/3 and WebTransport (draft-02 as Chrome speaks it):
 * frame and stream type ids, SETTINGS, header field sections (QPACK decoding through
 * nghttp3 with a zero-capacity dynamic table; encoding with static-name references and
 * literals only), capsules and structured-field protocol lists. (The WebTransport
 * error-code mapping lives with the moq codes in moq/errors.h.)
 *
 * Nothing here allocates except moq_h3_headers (owned by the caller, released with
 * moq_h3_headers_free) and moq_buf outputs (owned by the caller).
 */
#ifndef MOQ_H3_FRAMES_H
#define MOQ_H3_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* HTTP/3 frame types */
#define MOQ_H3_FRAME_DATA         0x00
#define MOQ_H3_FRAME_HEADERS      0x01
#define MOQ_H3_FRAME_CANCEL_PUSH  0x03
#define MOQ_H3_FRAME_SETTINGS     0x04
#define MOQ_H3_FRAME_PUSH_PROMISE 0x05
#define MOQ_H3_FRAME_GOAWAY       0x07
#define MOQ_H3_FRAME_MAX_PUSH_ID  0x0d

/* Unidirectional stream types */
#define MOQ_H3_STREAM_CONTROL       0x00
#define MOQ_H3_STREAM_PUSH          0x01
#define MOQ_H3_STREAM_QPACK_ENCODER 0x02
#define MOQ_H3_STREAM_QPACK_DECODER 0x03
#define MOQ_WT_STREAM_UNI           0x54
/* Signal value opening a WebTransport bidirectional stream */
#define MOQ_WT_STREAM_BIDI 0x41

/* Settings */
#define MOQ_H3_SETTING_QPACK_MAX_TABLE_CAPACITY 0x01
#define MOQ_H3_SETTING_MAX_FIELD_SECTION_SIZE   0x06
#define MOQ_H3_SETTING_QPACK_BLOCKED_STREAMS    0x07
#define MOQ_H3_SETTING_ENABLE_CONNECT_PROTOCOL  0x08
#define MOQ_H3_SETTING_H3_DATAGRAM              0x33
#define MOQ_H3_SETTING_H3_DATAGRAM_DRAFT04      0xffd277
#define MOQ_H3_SETTING_WT_MAX_SESSIONS          0xc671706a
#define MOQ_H3_SETTING_WT_MAX_SESSIONS_DRAFT    0x2b603743
#define MOQ_H3_SETTING_ENABLE_WEBTRANSPORT      0x2b603742

/* Capsules */
#define MOQ_WT_CAPSULE_CLOSE_SESSION 0x2843
#define MOQ_WT_CAPSULE_DRAIN_SESSION 0x78ae

/* HTTP/3 error codes (RFC 9114 section 8.1) */
#define MOQ_H3_NO_ERROR                0x100
#define MOQ_H3_GENERAL_PROTOCOL_ERROR  0x101
#define MOQ_H3_INTERNAL_ERROR          0x102
#define MOQ_H3_STREAM_CREATION_ERROR   0x103
#define MOQ_H3_CLOSED_CRITICAL_STREAM  0x104
#define MOQ_H3_FRAME_UNEXPECTED        0x105
#define MOQ_H3_FRAME_ERROR             0x106
#define MOQ_H3_EXCESSIVE_LOAD          0x107
#define MOQ_H3_ID_ERROR                0x108
#define MOQ_H3_SETTINGS_ERROR          0x109
#define MOQ_H3_MISSING_SETTINGS        0x10a
#define MOQ_H3_REQUEST_REJECTED        0x10b
#define MOQ_H3_REQUEST_CANCELLED       0x10c
#define MOQ_H3_MESSAGE_ERROR           0x10e
#define MOQ_QPACK_DECOMPRESSION_FAILED 0x200
/* WebTransport: session gone (draft-02 WEBTRANSPORT_SESSION_GONE) */
#define MOQ_WT_SESSION_GONE 0x170d7b68

/* Limits applied to what a peer may send. */
#define MOQ_H3_MAX_FIELD_SECTION 16384
#define MOQ_H3_MAX_HEADERS       64
#define MOQ_H3_MAX_SETTINGS      64
#define MOQ_H3_MAX_CAPSULE       4096

struct moq_h3_settings {
    uint64_t qpack_max_table_capacity;
    uint64_t qpack_blocked_streams;
    uint64_t max_field_section_size; /* 0 = unlimited */
    bool enable_connect_protocol;
    bool h3_datagram;
    bool enable_webtransport; /* draft-02 setting */
    uint64_t wt_max_sessions; /* draft-07+ (either id) */
};

/* The SETTINGS frame (type + length + body) this endpoint sends: extended CONNECT,
 * H3 datagrams (both ids), WebTransport draft-02 and WT_MAX_SESSIONS (both ids);
 * QPACK capacity and blocked streams left at 0. */
int moq_h3_encode_our_settings(moq_buf *out);
/* Decode a SETTINGS frame body. Duplicate identifiers and HTTP/2-only settings are
 * errors (MOQ_ERR_PROTO); unknown identifiers (GREASE) are ignored. */
int moq_h3_decode_settings(const uint8_t *body, size_t len, struct moq_h3_settings *out);

/* Read a frame header (type, length) from the front of data. Returns bytes consumed or
 * MOQ_ERR_AGAIN. */
int moq_h3_frame_header(const uint8_t *data, size_t len, uint64_t *type, uint64_t *flen);

/* True for reserved/GREASE frame types (0x1f * N + 0x21) and other types to skip. */
bool moq_h3_is_grease(uint64_t type);

struct moq_h3_field {
    char *name;
    char *value;
    size_t name_len;
    size_t value_len;
};

struct moq_h3_headers {
    struct moq_h3_field fields[MOQ_H3_MAX_HEADERS];
    size_t count;
};

/* Decode a complete field section (HEADERS frame payload). Fields are copied into h (the
 * caller frees them with moq_h3_headers_free). Returns 0, MOQ_ERR_PROTO for malformed
 * sections or references to a dynamic table, MOQ_ERR_TOO_LARGE past the limits. */
int moq_h3_decode_headers(const uint8_t *block, size_t len, struct moq_h3_headers *h);
void moq_h3_headers_free(struct moq_h3_headers *h);
/* Value of the first field named name (lower-case), or NULL. */
const struct moq_h3_field *moq_h3_headers_get(const struct moq_h3_headers *h, const char *name);

/* Encode a HEADERS frame (type + length + field section) with the given (name, value)
 * pairs, using only static-table references and literals (no dynamic table, no
 * Huffman), so it is valid for any peer. */
int moq_h3_encode_headers(moq_buf *out, const char *const *names, const char *const *values,
                          size_t count);

/* Capsule parsing: returns bytes consumed (type, payload view) or MOQ_ERR_AGAIN /
 * MOQ_ERR_TOO_LARGE. */
int moq_h3_capsule(const uint8_t *data, size_t len, uint64_t *type, const uint8_t **payload,
                   size_t *plen);
/* A DATA frame carrying a CLOSE_WEBTRANSPORT_SESSION capsule. */
int moq_h3_encode_close_capsule(moq_buf *out, uint32_t code, const char *reason);

/* Parse an RFC 8941 list of sf-strings ("a", "b";param, ...) and call fn for each string
 * in order (unescaped into a small buffer). Stops early when fn returns non-zero and
 * returns that value. Malformed lists give MOQ_ERR_INVALID. */
int moq_sf_string_list(const char *s, size_t len, int (*fn)(void *ctx, const char *item),
                       void *ctx);
/* Encode one sf-string ("moq-lite-05" with quotes, escaping '"' and '\'). */
int moq_sf_string_encode(moq_buf *out, const char *s);
/* Parse a single sf-string into out (NUL-terminated). */
int moq_sf_string_parse(const char *s, size_t len, char *out, size_t outlen);

#endif
