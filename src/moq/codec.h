/*
 * codec.h - the moq-lite wire codec for lite-01 .. lite-05 and lite-06-wip. Sans-I/O.
 *
 * Encoders append one complete message to a caller-owned moq_buf: `vi size` + body, with
 * `vi type` first for typed subscribe responses (03+) and lite-06 announcements. They never emit a
 * field the version lacks (asking for a message the version does not have is MOQ_ERR_UNSUPPORTED)
 * and leave the buffer unchanged on any failure. bool is always written as 0/1.
 *
 * Decoders take one complete message body (the bytes after the size prefix, e.g. from the
 * control reader of stream_reader.h) and must consume it exactly: leftover or missing bytes
 * are MOQ_ERR_PROTO. Other failures: MOQ_ERR_TOO_LARGE (string over its limit, path over 32
 * segments, more than 32 hops or 64 SETUP parameters), MOQ_ERR_UNSUPPORTED (the version has
 * no such message), MOQ_ERR_PROTO (bad value, invalid UTF-8, duplicate parameter, ...).
 * moq_code_from_err() (errors.h) turns any of them into the wire code Decode.
 *
 * Decoded strings are views (moq_str) into the body, which must outlive them. Paths are
 * normalised on decode *in place* inside the body (the normal form is never longer), which
 * is why control decoders take a mutable body. Bool fields ("ordered") decode leniently as
 * non-zero = true, like upstream Rust; announce status is strict.
 *
 * "opt" group fields travel as varint 0 = absent, else value + 1.
 */
#ifndef MOQ_MOQ_CODEC_H
#define MOQ_MOQ_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moq/path.h"
#include "moq/version.h"
#include "util/buf.h"

/* ---- limits ------------------------------------------------------------------------ */

#define MOQ_MAX_NAME_LEN     4096 /* broadcast paths, prefixes, suffixes, track names */
#define MOQ_MAX_URI_LEN      8192 /* GOAWAY uri, SETUP Path parameter ("/path?jwt=...") */
#define MOQ_MAX_HOPS         32   /* announce hop chain */
#define MOQ_MAX_SETUP_PARAMS 64   /* SETUP parameter count */
#define MOQ_FRAME_HEADER_MAX 16   /* zigzag ts delta + size, two varints */
#define MOQ_GROUP_HEADER_MAX 18   /* stream type + size + sub_id + sequence */

/* ---- stream types (first varint of every stream) ----------------------------------- */

enum moq_bidi_type {
    MOQ_BIDI_SESSION = 0x0, /* obsolete; receiving it is UnexpectedStream */
    MOQ_BIDI_ANNOUNCE = 0x1,
    MOQ_BIDI_SUBSCRIBE = 0x2,
    MOQ_BIDI_FETCH = 0x3,
    MOQ_BIDI_PROBE = 0x4,
    MOQ_BIDI_GOAWAY = 0x5,
    MOQ_BIDI_TRACK = 0x6,
    MOQ_BIDI_CLIENT_COMPAT = 0x20, /* compat SETUP; the session stream of lite-01/02 */
    MOQ_BIDI_SERVER_COMPAT = 0x21,
};

enum moq_uni_type {
    MOQ_UNI_GROUP = 0x0,
    MOQ_UNI_SETUP = 0x1,
};

/* Whether a peer may open this stream type on version v (Session and compat: false). */
bool moq_bidi_type_supported(moq_version v, uint64_t type);
bool moq_uni_type_supported(moq_version v, uint64_t type);

/* Append the stream type varint. */
int moq_encode_stream_type(moq_buf *out, uint64_t type);

/* ---- whole-buffer framing ---------------------------------------------------------- */

/* Split one framed message off the front of p[0..len): [vi type] vi size body. Returns the
 * bytes the whole message occupies, MOQ_ERR_AGAIN when p holds only part of it, or
 * MOQ_ERR_TOO_LARGE when the size exceeds max_body. */
int moq_msg_split(const uint8_t *p, size_t len, bool typed, size_t max_body, uint64_t *type,
                  const uint8_t **body, size_t *body_len);

/* ---- SETUP (lite-05, uni stream 0x1) ----------------------------------------------- */

enum moq_setup_param {
    MOQ_SETUP_PARAM_PROBE = 0x1,
    MOQ_SETUP_PARAM_PATH = 0x2,
    MOQ_SETUP_PARAM_ROLE = 0x3,
    MOQ_SETUP_PARAM_COST = 0x4,
    MOQ_SETUP_PARAM_ORIGIN = 0x5,
};

enum moq_probe_level { MOQ_PROBE_NONE = 0, MOQ_PROBE_REPORT = 1, MOQ_PROBE_INCREASE = 2 };
enum moq_role { MOQ_ROLE_BOTH = 0, MOQ_ROLE_PUBLISHER = 1, MOQ_ROLE_SUBSCRIBER = 2 };

struct moq_setup {
    uint64_t probe; /* enum moq_probe_level; absent = NONE, unknown >= 2 decodes as INCREASE */
    bool has_path;  /* Path given (an empty path means the root, like absent) */
    moq_str path;   /* raw "/path?query" bytes, UTF-8 checked, not normalised */
    uint64_t role;  /* enum moq_role; absent or unknown = BOTH */
    bool has_cost;  /* Cost (lite-06 routing; carried for completeness) */
    uint64_t cost;
    uint64_t origin; /* sender's hop id; 0 = none (absent) */
};

/* Encodes params in id order; omits probe NONE, role BOTH, origin 0 and absent path/cost. */
int moq_encode_setup(moq_buf *out, moq_version v, const struct moq_setup *m);
/* Unknown ids are ignored, duplicates are an error, known varint values must fill their
 * bytes exactly, at most MOQ_MAX_SETUP_PARAMS entries. */
int moq_decode_setup(moq_version v, uint8_t *body, size_t len, struct moq_setup *out);

/* ---- announce stream (bidi 0x1) ---------------------------------------------------- */

struct moq_announce_request {
    moq_str prefix;       /* normalised path */
    uint64_t exclude_hop; /* 04/05 only (0 = none); not sent on 03, decodes as 0 there */
};

int moq_encode_announce_request(moq_buf *out, moq_version v, const struct moq_announce_request *m);
int moq_decode_announce_request(moq_version v, uint8_t *body, size_t len,
                                struct moq_announce_request *out);

/* ANNOUNCE_INIT (lite-01/02): the first message of the reply, the active broadcasts as
 * suffixes of the requested prefix. */
#define MOQ_MAX_ANNOUNCE_INIT 100000

struct moq_announce_init {
    size_t count;
    moq_str *suffixes; /* normalised; views into the body; the array is owned (free below) */
};

int moq_encode_announce_init(moq_buf *out, moq_version v, const moq_str *suffixes, size_t n);
int moq_decode_announce_init(moq_version v, uint8_t *body, size_t len,
                             struct moq_announce_init *out);
void moq_announce_init_free(struct moq_announce_init *m);

struct moq_announce_ok {   /* lite-05+ */
    uint64_t hop_id;       /* responder's origin id (0 = unknown) */
    uint64_t active_count; /* ANNOUNCE(active) messages that follow as the initial set */
};

int moq_encode_announce_ok(moq_buf *out, moq_version v, const struct moq_announce_ok *m);
int moq_decode_announce_ok(moq_version v, uint8_t *body, size_t len, struct moq_announce_ok *out);

/* Before lite-06: one ANNOUNCE `[u8 status, str suffix, hops]`. On lite-06 the status is
 * the message type before the size: 0 START `[suffix, hops, vi cost]` assigns the next
 * announce id of the stream (from 0), 1 END `[vi id]`, 2 RESTART `[vi id, hops, vi cost]`. */
enum moq_announce_status {
    MOQ_ANNOUNCE_STATUS_ENDED = 0,   /* lite-06: END, by id */
    MOQ_ANNOUNCE_STATUS_ACTIVE = 1,  /* lite-06: START */
    MOQ_ANNOUNCE_STATUS_RESTART = 2, /* lite-05: treated like ACTIVE; lite-06: RESTART by id */
};

struct moq_announce {
    uint8_t status;              /* enum moq_announce_status */
    moq_str suffix;              /* normalised, relative to the requested prefix (not on
                                    lite-06 END/RESTART) */
    uint32_t hop_count;          /* <= MOQ_MAX_HOPS */
    uint64_t hops[MOQ_MAX_HOPS]; /* ids (04+); lite-03 carries only the count, ids read 0;
                                    01/02 carry none */
    uint64_t id;                 /* lite-06 END/RESTART: the announce id referenced */
    uint64_t cost;               /* lite-06 START/RESTART: route cost */
};

/* Wire type of a lite-06 announcement (its status), or MOQ_ERR_UNSUPPORTED before 06. */
int moq_announce_type(moq_version v, const struct moq_announce *m);
/* Appends [vi type] vi size body; typed on lite-06 only. */
int moq_encode_announce(moq_buf *out, moq_version v, const struct moq_announce *m);
/* Before lite-06 (untyped reader). */
int moq_decode_announce(moq_version v, uint8_t *body, size_t len, struct moq_announce *out);
/* Lite-06: type is the varint read before the size (the control reader's typed mode). */
int moq_decode_announce_typed(moq_version v, uint64_t type, uint8_t *body, size_t len,
                              struct moq_announce *out);

/* ---- subscribe stream (bidi 0x2) --------------------------------------------------- */

/* The preference block shared by SUBSCRIBE, SUBSCRIBE_UPDATE and SUBSCRIBE_OK. */
struct moq_subscribe_opts {
    uint8_t priority; /* raw byte, higher = more important */
    bool ordered;
    uint64_t max_latency_ms;
    bool has_start; /* absent = latest group */
    uint64_t start_group;
    bool has_end; /* absent = unbounded */
    uint64_t end_group;
};

struct moq_subscribe {
    uint64_t id;
    moq_str broadcast; /* normalised path */
    moq_str track;     /* track name (not a path) */
    struct moq_subscribe_opts opts;
};

int moq_encode_subscribe(moq_buf *out, moq_version v, const struct moq_subscribe *m);
int moq_decode_subscribe(moq_version v, uint8_t *body, size_t len, struct moq_subscribe *out);

int moq_encode_subscribe_update(moq_buf *out, moq_version v, const struct moq_subscribe_opts *m);
int moq_decode_subscribe_update(moq_version v, uint8_t *body, size_t len,
                                struct moq_subscribe_opts *out);

enum moq_subscribe_response_kind {
    MOQ_SUBSCRIBE_OK = 1,    /* 03/04, wire type 0 */
    MOQ_SUBSCRIBE_START = 2, /* 05, wire type 0: first group that will be delivered */
    MOQ_SUBSCRIBE_END = 3,   /* 05, wire type 1: exclusive end (0 = no groups) */
    MOQ_SUBSCRIBE_DROP = 4,  /* 03/04 wire type 1, 05 wire type 2 */
};

struct moq_subscribe_response {
    int kind;                     /* enum moq_subscribe_response_kind */
    struct moq_subscribe_opts ok; /* OK */
    uint64_t group;               /* START / END */
    uint64_t drop_start;          /* DROP: inclusive range, absolute */
    uint64_t drop_end;
    uint64_t drop_error;
};

/* Whether responses carry a type before the size (03+; 01/02 send one untyped OK). */
bool moq_subscribe_responses_typed(moq_version v);
/* The wire type of a response kind on version v, or MOQ_ERR_UNSUPPORTED (01/02: OK = 0,
 * though no type is written). */
int moq_subscribe_response_type(moq_version v, int kind);
/* Appends vi type + vi size + body. */
int moq_encode_subscribe_response(moq_buf *out, moq_version v,
                                  const struct moq_subscribe_response *m);
/* type is the varint read before the size (the control reader's typed mode). */
int moq_decode_subscribe_response(moq_version v, uint64_t type, uint8_t *body, size_t len,
                                  struct moq_subscribe_response *out);

/* ---- track stream (bidi 0x6, lite-05) ---------------------------------------------- */

struct moq_msg_track {
    moq_str broadcast; /* normalised path */
    moq_str track;
};

int moq_encode_track(moq_buf *out, moq_version v, const struct moq_msg_track *m);
int moq_decode_track(moq_version v, uint8_t *body, size_t len, struct moq_msg_track *out);

struct moq_msg_track_info {
    uint8_t priority; /* publisher priority */
    bool ordered;
    uint64_t max_latency_ms; /* publisher max latency (cache window) */
    uint64_t timescale;      /* timestamp units per second, never 0 */
};

#define MOQ_TRACK_INFO_DEFAULT                                                                     \
    {                                                                                              \
        0, false, 5000, 1000                                                                       \
    }

int moq_encode_track_info(moq_buf *out, moq_version v, const struct moq_msg_track_info *m);
int moq_decode_track_info(moq_version v, uint8_t *body, size_t len, struct moq_msg_track_info *out);

/* ---- fetch stream (bidi 0x3, lite-05); the response is bare 05 frames, see
 * moq_group_parser in stream_reader.h ------------------------------------------------- */

struct moq_fetch {
    moq_str broadcast; /* normalised path */
    moq_str track;
    uint8_t priority;
    uint64_t group;
};

int moq_encode_fetch(moq_buf *out, moq_version v, const struct moq_fetch *m);
int moq_decode_fetch(moq_version v, uint8_t *body, size_t len, struct moq_fetch *out);

/* ---- probe stream (bidi 0x4) and GOAWAY (bidi 0x5, 04+) ---------------------------- */

struct moq_probe {
    uint64_t bitrate_bps; /* 0 = unknown */
    uint64_t rtt_ms;      /* 04+; 0 = unknown; not sent on 03 (decodes as 0) */
};

int moq_encode_probe(moq_buf *out, moq_version v, const struct moq_probe *m);
int moq_decode_probe(moq_version v, uint8_t *body, size_t len, struct moq_probe *out);

struct moq_goaway {
    moq_str uri; /* "" = no redirect */
};

int moq_encode_goaway(moq_buf *out, moq_version v, const struct moq_goaway *m);
int moq_decode_goaway(moq_version v, uint8_t *body, size_t len, struct moq_goaway *out);

/* ---- group streams (uni 0x0) ------------------------------------------------------- */

struct moq_group_header {
    uint64_t sub_id;
    uint64_t sequence;
};

int moq_encode_group_header(moq_buf *out, moq_version v, const struct moq_group_header *m);
int moq_decode_group_header(moq_version v, uint8_t *body, size_t len, struct moq_group_header *out);

/* Hot-path writer: the start of a group stream into a fixed buffer, optionally preceded by
 * the stream type 0x0. Returns the byte count or MOQ_ERR_INVALID (value over 2^62-1). */
int moq_group_header_pack(uint8_t out[MOQ_GROUP_HEADER_MAX], bool with_stream_type, uint64_t sub_id,
                          uint64_t sequence);

/* One FRAME header: lite-03/04 `vi size`; lite-05 `vi zigzag(ts - prev_ts)` `vi size`
 * (prev_ts = 0 for the first frame of a group or fetch). Returns the byte count, or
 * MOQ_ERR_INVALID when a value or the delta (|d| must be < 2^61) cannot be encoded. */
int moq_frame_header_pack(uint8_t out[MOQ_FRAME_HEADER_MAX], moq_version v, uint64_t prev_ts,
                          uint64_t ts, uint64_t payload_size);

/* ---- datagrams (lite-05): vi sub_id, vi group, vi timestamp (absolute), payload to end */

struct moq_datagram {
    uint64_t sub_id;
    uint64_t group;
    uint64_t timestamp;
    const uint8_t *payload; /* view into the datagram */
    size_t payload_len;
};

int moq_encode_datagram(moq_buf *out, moq_version v, const struct moq_datagram *m);
int moq_decode_datagram(moq_version v, const uint8_t *data, size_t len, struct moq_datagram *out);

/* ---- SESSION_INFO (lite-01/02, on the session stream): [ vi bitrate ], 0 = unknown --- */

int moq_encode_session_info(moq_buf *out, moq_version v, uint64_t bitrate);
int moq_decode_session_info(moq_version v, uint8_t *body, size_t len, uint64_t *bitrate);

/* ---- legacy compat SETUP (bidi 0x20 / 0x21) -----------------------------------------
 * The client offers version codes (lite-02/01 and moq-transport-14); the server picks one.
 * For a lite choice the parameters are ignored on receipt and sent as `vi 0`. */

#define MOQ_COMPAT_MAX_VERSIONS  128 /* more offered versions is an error */
#define MOQ_COMPAT_KEEP_VERSIONS 16  /* how many are kept for reporting */

struct moq_compat_client_setup {
    size_t n_versions;                           /* offered, <= MOQ_COMPAT_MAX_VERSIONS */
    uint64_t versions[MOQ_COMPAT_KEEP_VERSIONS]; /* the first ones, in offer order */
    const uint8_t *params;                       /* draft-14 parameters, left unparsed */
    size_t params_len;
};

/* Body = the bytes after the u16 size (control reader with MOQ_CTRL_U16_SIZE). */
int moq_decode_compat_client_setup(const uint8_t *body, size_t len,
                                   struct moq_compat_client_setup *out);
/* Appends u16 size + body (the stream type 0x20 / 0x21 is written separately). */
int moq_encode_compat_client_setup(moq_buf *out, const uint64_t *versions, size_t n,
                                   const void *params, size_t params_len);
int moq_encode_compat_server_setup(moq_buf *out, uint64_t version, const void *params,
                                   size_t params_len);
/* Body = the bytes after the u16 size; *params points into it. */
int moq_decode_compat_server_setup(const uint8_t *body, size_t len, uint64_t *version,
                                   const uint8_t **params, size_t *params_len);

/* ---- helpers ----------------------------------------------------------------------- */

/* Strict UTF-8 validation (no overlongs, surrogates or code points above U+10FFFF). */
bool moq_utf8_valid(const uint8_t *p, size_t len);

#endif
