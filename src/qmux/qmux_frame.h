/*
 * qmux_frame.h - QMux frame and transport-parameter codec (qmux-00, qmux-01, qmux-02).
 *
 * Pure functions over caller memory: nothing here allocates or keeps a pointer. A decoded
 * frame's data/reason pointers point into the input bytes and are valid as long as they are.
 * Encoders write into caller buffers and report how many bytes they wrote.
 *
 * Wire facts (QUIC v1 frame layouts, RFC 9000 section 19, plus the QMux extensions):
 * every frame type is a varint; a record (one WebSocket binary message) carries one or more
 * frames back to back on qmux-01/02 and exactly one on qmux-00. Used by src/qmux/qmux.c and by
 * the unit tests and fuzz targets.
 */
#ifndef MOQ_QMUX_QMUX_FRAME_H
#define MOQ_QMUX_QMUX_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* QMux wire format, fixed by the negotiated subprotocol prefix. */
enum moq_qmux_wire {
    MOQ_QMUX_00 = 0, /* one frame per message, no records, no QX_PING/DATAGRAM sending */
    MOQ_QMUX_01 = 1, /* records, QX_PING, PADDING, DATAGRAM, max_record_size */
    MOQ_QMUX_02 = 2, /* as 01, plus RESET_STREAM_AT and stricter params/ping rules */
};

/* Frame type values on the wire. */
#define MOQ_QMUX_FT_PADDING              0x00
#define MOQ_QMUX_FT_RESET_STREAM         0x04
#define MOQ_QMUX_FT_STOP_SENDING         0x05
#define MOQ_QMUX_FT_STREAM               0x08 /* 0x08..0x0f: | OFF 0x04 | LEN 0x02 | FIN 0x01 */
#define MOQ_QMUX_FT_MAX_DATA             0x10
#define MOQ_QMUX_FT_MAX_STREAM_DATA      0x11
#define MOQ_QMUX_FT_MAX_STREAMS_BIDI     0x12
#define MOQ_QMUX_FT_MAX_STREAMS_UNI      0x13
#define MOQ_QMUX_FT_DATA_BLOCKED         0x14
#define MOQ_QMUX_FT_STREAM_DATA_BLOCKED  0x15
#define MOQ_QMUX_FT_STREAMS_BLOCKED_BIDI 0x16
#define MOQ_QMUX_FT_STREAMS_BLOCKED_UNI  0x17
#define MOQ_QMUX_FT_CONNECTION_CLOSE     0x1c
#define MOQ_QMUX_FT_APPLICATION_CLOSE    0x1d
#define MOQ_QMUX_FT_RESET_STREAM_AT      0x24
#define MOQ_QMUX_FT_DATAGRAM             0x30 /* payload to the end of the record */
#define MOQ_QMUX_FT_DATAGRAM_LEN         0x31 /* length-prefixed payload (what we send) */
#define MOQ_QMUX_FT_TRANSPORT_PARAMETERS 0x3f5153300d0a0d0aull
#define MOQ_QMUX_FT_PING_REQUEST         0x348c67529ef8c7bdull
#define MOQ_QMUX_FT_PING_RESPONSE        0x348c67529ef8c7beull

#define MOQ_QMUX_STREAM_OFF 0x04
#define MOQ_QMUX_STREAM_LEN 0x02
#define MOQ_QMUX_STREAM_FIN 0x01

/* Transport parameter ids. */
#define MOQ_QMUX_TP_MAX_IDLE_TIMEOUT                    0x01
#define MOQ_QMUX_TP_INITIAL_MAX_DATA                    0x04
#define MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL  0x05
#define MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE 0x06
#define MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_UNI         0x07
#define MOQ_QMUX_TP_INITIAL_MAX_STREAMS_BIDI            0x08
#define MOQ_QMUX_TP_INITIAL_MAX_STREAMS_UNI             0x09
#define MOQ_QMUX_TP_RESET_STREAM_AT                     0x1d
#define MOQ_QMUX_TP_MAX_DATAGRAM_FRAME_SIZE             0x20
#define MOQ_QMUX_TP_MAX_RECORD_SIZE                     0x0571c59429cd0845ull
#define MOQ_QMUX_TP_APPLICATION_PROTOCOLS               0x3d4f9c2a8b1e6075ull

/* max_record_size when absent, and the smallest value a peer may advertise (qmux-01+). */
#define MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE 16382
/* qmux-00 bounds each message (one frame) to this many bytes. */
#define MOQ_QMUX_00_MAX_FRAME_SIZE 16384
/* Largest STREAM payload we put in one frame: released peers enforce it on receive. */
#define MOQ_QMUX_MAX_STREAM_PAYLOAD 16352
/* A stream count above this cannot be expressed as a stream id (RFC 9000 section 4.6). */
#define MOQ_QMUX_MAX_STREAMS_LIMIT (1ull << 60)

typedef struct moq_qmux_params {
    uint64_t max_idle_timeout_ms;
    uint64_t initial_max_data;
    uint64_t initial_max_stream_data_bidi_local;
    uint64_t initial_max_stream_data_bidi_remote;
    uint64_t initial_max_stream_data_uni;
    uint64_t initial_max_streams_bidi;
    uint64_t initial_max_streams_uni;
    uint64_t max_datagram_frame_size; /* 0 = no datagrams */
    uint64_t max_record_size;         /* decoded as 16382 when absent */
    bool reset_stream_at;             /* empty-valued flag (qmux-02) */
} moq_qmux_params;

enum moq_qmux_frame_kind {
    MOQ_QMUX_PADDING = 1,
    MOQ_QMUX_STREAM,
    MOQ_QMUX_RESET_STREAM, /* also RESET_STREAM_AT: has_reliable_size set */
    MOQ_QMUX_STOP_SENDING,
    MOQ_QMUX_MAX_DATA,
    MOQ_QMUX_MAX_STREAM_DATA,
    MOQ_QMUX_MAX_STREAMS_BIDI,
    MOQ_QMUX_MAX_STREAMS_UNI,
    MOQ_QMUX_DATA_BLOCKED,
    MOQ_QMUX_STREAM_DATA_BLOCKED,
    MOQ_QMUX_STREAMS_BLOCKED_BIDI,
    MOQ_QMUX_STREAMS_BLOCKED_UNI,
    MOQ_QMUX_CONNECTION_CLOSE,
    MOQ_QMUX_APPLICATION_CLOSE,
    MOQ_QMUX_DATAGRAM,
    MOQ_QMUX_TRANSPORT_PARAMETERS,
    MOQ_QMUX_PING_REQUEST,
    MOQ_QMUX_PING_RESPONSE,
};

/* One decoded (or to-be-encoded) frame. Fields not used by a kind are ignored. */
typedef struct moq_qmux_frame {
    enum moq_qmux_frame_kind kind;
    uint64_t stream_id;     /* STREAM, RESET, STOP, MAX_STREAM_DATA, STREAM_DATA_BLOCKED */
    uint64_t offset;        /* STREAM (0 when the OFF bit is clear) */
    bool has_offset;        /* STREAM: OFF bit */
    bool has_length;        /* STREAM: LEN bit; DATAGRAM: 0x31 form */
    bool fin;               /* STREAM: FIN bit */
    bool has_reliable_size; /* RESET_STREAM_AT */
    uint64_t code;          /* RESET, STOP, CONNECTION_CLOSE, APPLICATION_CLOSE */
    uint64_t final_size;    /* RESET */
    uint64_t reliable_size; /* RESET_STREAM_AT */
    uint64_t value;         /* MAX_* maximum, *_BLOCKED limit, PING sequence, PADDING run length */
    uint64_t error_frame_type; /* CONNECTION_CLOSE: the frame type that caused the error */
    const uint8_t *data;       /* STREAM/DATAGRAM payload, close reason */
    size_t len;
    moq_qmux_params params; /* TRANSPORT_PARAMETERS */
} moq_qmux_frame;

/* Defaults a decoder assumes for absent parameters (all zero, max_record_size 16382). */
void moq_qmux_params_init(moq_qmux_params *p);

/* Encode parameters as id/len/value tuples (zero values omitted, reset_stream_at as an empty
 * flag). Returns the bytes written, or MOQ_ERR_TOO_LARGE if cap is short, MOQ_ERR_INVALID if a
 * value exceeds a varint. 128 bytes always suffice. */
int moq_qmux_params_encode(const moq_qmux_params *p, uint8_t *out, size_t cap);

/* Decode a parameter block. Rules: a recognised id twice, a forbidden QUIC v1 id (0x00, 0x02,
 * 0x03, 0x0a-0x10), application_protocols, a non-empty reset_stream_at, a value that is not
 * exactly one varint, a stream count above 2^60 or a truncated tuple is an error; unknown ids
 * are skipped. Returns 0, or MOQ_ERR_PROTO with *why set to a static reason. */
int moq_qmux_params_decode(const uint8_t *p, size_t len, moq_qmux_params *out, const char **why);

/* Decode one frame from p[0..len) (a record's remaining bytes). A run of PADDING bytes is one
 * frame. Returns the bytes consumed (> 0), or MOQ_ERR_PROTO with *why set to a static reason:
 * unknown type, truncated field, length beyond the record, bad parameters, reliable_size >
 * final_size. len must be > 0. */
int moq_qmux_frame_decode(const uint8_t *p, size_t len, moq_qmux_frame *f, const char **why);

/* Bytes moq_qmux_frame_encode would write, or 0 if a field does not fit a varint. */
size_t moq_qmux_frame_size(const moq_qmux_frame *f);

/* Encode a frame including its payload bytes. STREAM uses the OFF/LEN/FIN bits the frame
 * asks for; DATAGRAM uses 0x31 when has_length, else 0x30; a PADDING frame writes `value`
 * zero bytes (at least one). Returns bytes written, MOQ_ERR_TOO_LARGE if cap is short, or
 * MOQ_ERR_INVALID for a value that does not fit a varint. */
int moq_qmux_frame_encode(const moq_qmux_frame *f, uint8_t *out, size_t cap);

/* The header of a STREAM frame 0x0e/0x0f (type, id, offset, length) whose payload follows
 * separately. out needs 25 bytes. Returns the bytes written. */
size_t moq_qmux_stream_header(uint8_t *out, uint64_t id, uint64_t offset, uint64_t len, bool fin);

/* Largest STREAM payload n such that the 0x0e/0x0f frame for (id, offset, n) is at most
 * budget bytes long; 0 when not even an empty frame fits. */
size_t moq_qmux_stream_payload_fit(size_t budget, uint64_t id, uint64_t offset);

/* Human-readable name of a frame kind, for logs. */
const char *moq_qmux_frame_name(enum moq_qmux_frame_kind kind);

#endif
