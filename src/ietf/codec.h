/*
 * codec.h - the moq-transport control messages of draft-14 .. draft-20. Sans-I/O.
 *
 * Framing: every control message is `type (varint) | length (u16) | body`; the varint form
 * is the draft's (wire.h). Encoders append one framed message to a caller-owned moq_buf and
 * leave it unchanged on failure; they never write a field the draft lacks. Decoders take
 * one body (the bytes after the length) and must consume it exactly: leftover or missing
 * bytes, bad values and duplicate known parameters are MOQ_ERR_PROTO, values over their
 * limits MOQ_ERR_TOO_LARGE. moq_ietf_close_code() maps these to the drafts' session error.
 *
 * Decoded strings are views into the body, which must outlive them. Namespaces are joined
 * into paths (fields separated by '/', normal form) in a moq_buf the struct owns: call
 * moq_buf_free() on it (decoders leave it initialised on every path, success or not).
 *
 * Messages whose type id means different things on different drafts are named by what
 * they mean; the encoder picks the id (e.g. a refusal is SUBSCRIBE_ERROR, FETCH_ERROR ... on
 * draft-14 and REQUEST_ERROR after it).
 */
#ifndef MOQ_IETF_CODEC_H
#define MOQ_IETF_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ietf/version.h"
#include "ietf/wire.h"
#include "util/buf.h"

/* ---- message types ----------------------------------------------------------------- */

enum moq_ietf_msg {
    MOQ_IETF_REQUEST_UPDATE = 0x02, /* SUBSCRIBE_UPDATE through draft-16 */
    MOQ_IETF_SUBSCRIBE = 0x03,
    MOQ_IETF_SUBSCRIBE_OK = 0x04,
    MOQ_IETF_REQUEST_ERROR = 0x05, /* SUBSCRIBE_ERROR on draft-14 */
    MOQ_IETF_PUBLISH_NAMESPACE = 0x06,
    MOQ_IETF_REQUEST_OK = 0x07, /* PUBLISH_NAMESPACE_OK on draft-14 */
    MOQ_IETF_NAMESPACE = 0x08,  /* PUBLISH_NAMESPACE_ERROR on draft-14 */
    MOQ_IETF_PUBLISH_NAMESPACE_DONE = 0x09,
    MOQ_IETF_UNSUBSCRIBE = 0x0a,
    MOQ_IETF_PUBLISH_DONE = 0x0b,
    MOQ_IETF_PUBLISH_NAMESPACE_CANCEL = 0x0c,
    MOQ_IETF_TRACK_STATUS = 0x0d,
    MOQ_IETF_NAMESPACE_DONE = 0x0e,  /* TRACK_STATUS_OK on draft-14 */
    MOQ_IETF_PUBLISH_BLOCKED = 0x0f, /* TRACK_STATUS_ERROR on draft-14 */
    MOQ_IETF_GOAWAY = 0x10,
    MOQ_IETF_SUBSCRIBE_NAMESPACE_V1 = 0x11,
    MOQ_IETF_SUBSCRIBE_NAMESPACE_OK = 0x12,    /* draft-14 */
    MOQ_IETF_SUBSCRIBE_NAMESPACE_ERROR = 0x13, /* draft-14 */
    MOQ_IETF_UNSUBSCRIBE_NAMESPACE = 0x14,
    MOQ_IETF_MAX_REQUEST_ID = 0x15,
    MOQ_IETF_FETCH = 0x16,
    MOQ_IETF_FETCH_CANCEL = 0x17,
    MOQ_IETF_FETCH_OK = 0x18,
    MOQ_IETF_FETCH_ERROR = 0x19, /* draft-14 */
    MOQ_IETF_REQUESTS_BLOCKED = 0x1a,
    MOQ_IETF_PUBLISH = 0x1d,
    MOQ_IETF_PUBLISH_OK = 0x1e,
    MOQ_IETF_PUBLISH_ERROR = 0x1f, /* draft-14 */
    MOQ_IETF_CLIENT_SETUP = 0x20,
    MOQ_IETF_SERVER_SETUP = 0x21,
    MOQ_IETF_SUBSCRIBE_NAMESPACE_V2 = 0x50,
    MOQ_IETF_SUBSCRIBE_TRACKS = 0x51,
    MOQ_IETF_SETUP = 0x2f00, /* draft-17+: also the type of the SETUP uni stream */
};

/* Uni stream types besides SETUP and SUBGROUP_HEADER (0b0XX1XXXX). */
#define MOQ_IETF_STREAM_FETCH   0x05
#define MOQ_IETF_STREAM_PADDING 0x132b3e28ull

/* The request kinds a refusal can answer (draft-14 has a message per kind). */
enum moq_ietf_request_kind {
    MOQ_IETF_REQ_SUBSCRIBE,
    MOQ_IETF_REQ_PUBLISH_NAMESPACE,
    MOQ_IETF_REQ_SUBSCRIBE_NAMESPACE,
    MOQ_IETF_REQ_FETCH,
    MOQ_IETF_REQ_PUBLISH,
    MOQ_IETF_REQ_TRACK_STATUS,
};

/* ---- error codes (the drafts' registries) -------------------------------------------- */

enum moq_ietf_session_code {
    MOQ_IETF_NO_ERROR = 0x0,
    MOQ_IETF_INTERNAL_ERROR = 0x1,
    MOQ_IETF_UNAUTHORIZED = 0x2,
    MOQ_IETF_PROTOCOL_VIOLATION = 0x3,
    MOQ_IETF_INVALID_REQUEST_ID = 0x4,
    MOQ_IETF_DUPLICATE_TRACK_ALIAS = 0x5,
    MOQ_IETF_KEY_VALUE_FORMATTING_ERROR = 0x6,
    MOQ_IETF_TOO_MANY_REQUESTS = 0x7,
    MOQ_IETF_INVALID_PATH = 0x8,
    MOQ_IETF_MALFORMED_PATH = 0x9,
    MOQ_IETF_GOAWAY_TIMEOUT = 0x10,
    MOQ_IETF_CONTROL_MESSAGE_TIMEOUT = 0x11,
    MOQ_IETF_DATA_STREAM_TIMEOUT = 0x12,
    MOQ_IETF_VERSION_NEGOTIATION_FAILED = 0x15,
};

/* REQUEST_ERROR codes (draft-19 numbering, the ones we send). */
enum moq_ietf_request_code {
    MOQ_IETF_REQ_INTERNAL_ERROR = 0x0,
    MOQ_IETF_REQ_UNAUTHORIZED = 0x1,
    MOQ_IETF_REQ_TIMEOUT = 0x2,
    MOQ_IETF_REQ_NOT_SUPPORTED = 0x3,
    MOQ_IETF_REQ_DOES_NOT_EXIST = 0x10,
    MOQ_IETF_REQ_INVALID_RANGE = 0x11,
    MOQ_IETF_REQ_PREFIX_OVERLAP = 0x30,
    MOQ_IETF_REQ_INVALID_JOINING_REQUEST_ID = 0x32,
};

/* PUBLISH_DONE status codes. */
enum moq_ietf_done_code {
    MOQ_IETF_DONE_INTERNAL_ERROR = 0x0,
    MOQ_IETF_DONE_UNAUTHORIZED = 0x1,
    MOQ_IETF_DONE_TRACK_ENDED = 0x2,
    MOQ_IETF_DONE_SUBSCRIPTION_ENDED = 0x3,
    MOQ_IETF_DONE_GOING_AWAY = 0x4,
    MOQ_IETF_DONE_TOO_FAR_BEHIND = 0x5,
};

/* RESET_STREAM / STOP_SENDING codes. */
enum moq_ietf_stream_code {
    MOQ_IETF_STREAM_INTERNAL_ERROR = 0x0,
    MOQ_IETF_STREAM_CANCELLED = 0x1,
    MOQ_IETF_STREAM_DELIVERY_TIMEOUT = 0x2,
    MOQ_IETF_STREAM_SESSION_CLOSED = 0x3,
    MOQ_IETF_STREAM_TOO_FAR_BEHIND = 0x5,
};

/* The session error for a decoder's failure: KEY_VALUE_FORMATTING_ERROR for parameters,
 * PROTOCOL_VIOLATION otherwise. */
uint64_t moq_ietf_close_code(int err);

/* ---- setup options and parameters -------------------------------------------------- */

enum moq_ietf_setup_option {
    MOQ_IETF_OPT_PATH = 0x01,
    MOQ_IETF_OPT_MAX_REQUEST_ID = 0x02,
    MOQ_IETF_OPT_AUTHORIZATION_TOKEN = 0x03,
    MOQ_IETF_OPT_MAX_AUTH_TOKEN_CACHE_SIZE = 0x04,
    MOQ_IETF_OPT_AUTHORITY = 0x05,
    MOQ_IETF_OPT_IMPLEMENTATION = 0x07,
    MOQ_IETF_OPT_RELAY_HOPS = 0x40b55,
    MOQ_IETF_OPT_RELAY_COST = 0x40b56,
    MOQ_IETF_OPT_SOLICIT = 0x40b5a,
};

enum moq_ietf_param_type {
    MOQ_IETF_PARAM_DELIVERY_TIMEOUT = 0x02,
    MOQ_IETF_PARAM_AUTHORIZATION_TOKEN = 0x03,
    MOQ_IETF_PARAM_MAX_CACHE_DURATION = 0x04,
    MOQ_IETF_PARAM_SUBGROUP_DELIVERY_TIMEOUT = 0x06,
    MOQ_IETF_PARAM_EXPIRES = 0x08,
    MOQ_IETF_PARAM_LARGEST_OBJECT = 0x09,
    MOQ_IETF_PARAM_PUBLISHER_PRIORITY = 0x0e,
    MOQ_IETF_PARAM_FORWARD = 0x10,
    MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY = 0x20,
    MOQ_IETF_PARAM_FILTER = 0x21,
    MOQ_IETF_PARAM_GROUP_ORDER = 0x22,
    MOQ_IETF_PARAM_FILL = 0x23,
    MOQ_IETF_PARAM_INCLUDE_PROPERTIES = 0x35,
    MOQ_IETF_PARAM_HOP_PATH = 0x40b57,
    MOQ_IETF_PARAM_ROUTE_COST = 0x40b58,
};

/* Track / object properties. */
#define MOQ_IETF_PROP_TIMESCALE     0x08
#define MOQ_IETF_PROP_TIMESTAMP     0x10
#define MOQ_IETF_PROP_TIMESTAMP_OLD 0x06
#define MOQ_IETF_PROP_GROUP_ORDER   0x22

#define MOQ_IETF_MAX_PARAMS 64

struct moq_ietf_param {
    uint64_t type;
    bool bytes;     /* a byte value (odd types, locations, filters), else a number */
    uint64_t value; /* numbers */
    const uint8_t *data;
    size_t len;
};

/* A decoded set of setup options or message parameters (views into the message). */
struct moq_ietf_params {
    size_t n;
    struct moq_ietf_param p[MOQ_IETF_MAX_PARAMS];
};

const struct moq_ietf_param *moq_ietf_param_find(const struct moq_ietf_params *ps, uint64_t type);
/* A parameter to encode. Which wire form it takes depends on the draft and the type. */
struct moq_ietf_param_out {
    uint64_t type;
    uint64_t value;
    const void *data; /* non-NULL: a byte value */
    size_t len;
};

static inline struct moq_ietf_param_out moq_ietf_pnum(uint64_t type, uint64_t value)
{
    struct moq_ietf_param_out p = {type, value, NULL, 0};
    return p;
}

static inline struct moq_ietf_param_out moq_ietf_pbytes(uint64_t type, const void *data, size_t len)
{
    static const uint8_t empty[1];
    struct moq_ietf_param_out p = {type, 0, data ? data : empty, len};
    return p;
}

/* Decode / encode message parameters (count-prefixed) for the draft. */
void moq_ietf_params_read(ietf_r *r, struct moq_ietf_params *out);
void moq_ietf_params_write(ietf_w *w, const struct moq_ietf_param_out *ps, size_t n);
/* Setup options: count-prefixed through draft-16, to the end of the message after. */
void moq_ietf_options_read(ietf_r *r, struct moq_ietf_params *out);
void moq_ietf_options_write(ietf_w *w, const struct moq_ietf_param_out *ps, size_t n);

/* Track properties ending a message (draft-16+ read, 17+ written): an absent field is 0. */
struct moq_ietf_props {
    uint64_t timescale;  /* TIMESCALE, 0 = none */
    uint8_t group_order; /* DEFAULT_PUBLISHER_GROUP_ORDER, 0 = none */
};
void moq_ietf_props_read(ietf_r *r, struct moq_ietf_props *out);
void moq_ietf_props_write(ietf_w *w, const struct moq_ietf_props *p);

/* ---- framing ----------------------------------------------------------------------- */

/* Begin a framed message of `type` (writes the type and reserves the length); returns the
 * offset to pass to moq_ietf_msg_end. */
size_t moq_ietf_msg_begin(ietf_w *w, uint64_t type);
/* Patch the length; MOQ_ERR_TOO_LARGE over 65535 bytes. Returns w->err. */
int moq_ietf_msg_end(ietf_w *w, size_t at);

/* ---- SETUP ------------------------------------------------------------------------- */

#define MOQ_IETF_MAX_VERSIONS 64

struct moq_ietf_setup {
    /* CLIENT_SETUP on draft-14 (and the compat SETUP): the offered versions */
    size_t n_versions;
    uint64_t versions[MOQ_IETF_MAX_VERSIONS];
    /* SERVER_SETUP on draft-14: the chosen version */
    uint64_t version;
    struct moq_ietf_params options;
};

/* What we put in our SETUP (absent fields are not sent). */
struct moq_ietf_setup_out {
    const uint64_t *versions; /* CLIENT_SETUP, draft-14 */
    size_t n_versions;
    uint64_t version; /* SERVER_SETUP, draft-14 */
    const char *path; /* PATH (client on raw QUIC) */
    bool has_max_request_id;
    uint64_t max_request_id;
    const char *implementation;
    bool solicit;    /* SOLICIT = 1 */
    bool has_hop_id; /* RELAY_HOPS (draft-17+): our hop id */
    uint64_t hop_id;
};

/* client: CLIENT_SETUP (0x20) on draft-14..16, SETUP (0x2F00) after; server: SERVER_SETUP
 * (0x21) on draft-14..16, SETUP after. On draft-17+ the 0x2F00 type doubles as the uni
 * stream type: this writes it once, as the start of the stream. */
int moq_ietf_encode_setup(moq_buf *out, const moq_ietf_caps *c, bool client,
                          const struct moq_ietf_setup_out *s);
/* The body of CLIENT_SETUP (client) / SERVER_SETUP or of a draft-17+ SETUP. */
int moq_ietf_decode_setup(const moq_ietf_caps *c, bool client, const uint8_t *body, size_t len,
                          struct moq_ietf_setup *out);

/* A setup option as a string (PATH, AUTHORITY): a view, or {NULL,0} when absent. */
moq_str moq_ietf_setup_bytes(const struct moq_ietf_setup *s, uint64_t option);
/* A numeric setup option; false when absent. */
bool moq_ietf_setup_number(const struct moq_ietf_setup *s, uint64_t option, uint64_t *out);
/* RELAY_HOPS: the peer's hop id (a varint of the draft's form filling the value). */
int moq_ietf_setup_hop_id(const moq_ietf_caps *c, const struct moq_ietf_setup *s, bool *has,
                          uint64_t *hop_id);

/* ---- subscriptions ----------------------------------------------------------------- */

enum moq_ietf_filter_kind {
    MOQ_IETF_FILTER_NONE = 0,   /* unfiltered (draft-20), or no filter parameter */
    MOQ_IETF_FILTER_NEXT_GROUP, /* tag 0x1 / relative 0 */
    MOQ_IETF_FILTER_LARGEST,    /* tag 0x2 / {0,0}: the next object after the live edge */
    MOQ_IETF_FILTER_ABSOLUTE,   /* tag 0x3/0x4 / absolute fields */
    MOQ_IETF_FILTER_RELATIVE,   /* draft-20: `groups` before the next group */
};

struct moq_ietf_filter {
    int kind;
    uint64_t start_group, start_object;
    bool has_end;
    uint64_t end_group; /* absolute, inclusive */
    bool has_end_object;
    uint64_t end_object; /* inclusive (draft-20) */
    uint64_t groups;     /* RELATIVE */
};

/* Decode / encode the filter parameter value (15+), or the inline filter (14). */
int moq_ietf_filter_decode(const moq_ietf_caps *c, const uint8_t *p, size_t len,
                           struct moq_ietf_filter *out);
void moq_ietf_filter_write(ietf_w *w, const struct moq_ietf_filter *f); /* the value bytes */

struct moq_ietf_subscribe {
    uint64_t request_id;
    moq_buf ns; /* owned */
    moq_str track;
    uint8_t priority;    /* subscriber priority (0 = highest), default 128 */
    uint8_t group_order; /* 0 = publisher's, 1 ascending, 2 descending */
    bool forward;        /* default true */
    struct moq_ietf_filter filter;
    bool has_delivery_timeout;
    uint64_t delivery_timeout_ms;
    bool want_properties; /* INCLUDE_PROPERTIES (20), default true */
};

int moq_ietf_encode_subscribe(moq_buf *out, const moq_ietf_caps *c,
                              const struct moq_ietf_subscribe *m, moq_str ns);
int moq_ietf_decode_subscribe(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                              struct moq_ietf_subscribe *out);

struct moq_ietf_subscribe_ok {
    uint64_t request_id; /* draft-14..16 */
    uint64_t track_alias;
    uint8_t group_order; /* 1 or 2; draft-14 body, 15 parameter, 17+ property */
    bool has_largest;
    uint64_t largest_group, largest_object;
    struct moq_ietf_props props; /* timescale (17+; read on 16+) */
    bool no_properties;          /* write an empty properties block (INCLUDE_PROPERTIES = 0) */
};

int moq_ietf_encode_subscribe_ok(moq_buf *out, const moq_ietf_caps *c,
                                 const struct moq_ietf_subscribe_ok *m);
int moq_ietf_decode_subscribe_ok(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                 struct moq_ietf_subscribe_ok *out);

/* REQUEST_UPDATE (SUBSCRIBE_UPDATE through draft-16). Fields absent on the wire keep their
 * "unchanged" markers. */
struct moq_ietf_request_update {
    uint64_t request_id;
    uint64_t subscription_id; /* draft-14..16: the subscription it updates */
    bool has_priority;
    uint8_t priority;
    bool has_forward;
    bool forward;
    bool has_end;
    uint64_t end_group; /* inclusive; draft-14: 0 = open */
    bool has_filter;
    struct moq_ietf_filter filter;
};

int moq_ietf_encode_request_update(moq_buf *out, const moq_ietf_caps *c,
                                   const struct moq_ietf_request_update *m);
int moq_ietf_decode_request_update(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                   struct moq_ietf_request_update *out);

struct moq_ietf_publish_done {
    uint64_t request_id; /* draft-14..16 */
    uint64_t status;
    uint64_t stream_count;
    moq_str reason;
};

int moq_ietf_encode_publish_done(moq_buf *out, const moq_ietf_caps *c,
                                 const struct moq_ietf_publish_done *m);
int moq_ietf_decode_publish_done(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                 struct moq_ietf_publish_done *out);

/* ---- generic answers and single-id messages ----------------------------------------- */

struct moq_ietf_request_error {
    uint64_t request_id; /* draft-14..16 */
    uint64_t code;
    uint64_t retry_interval; /* 16+ */
    moq_str reason;
};

/* REQUEST_ERROR (15+), or on draft-14 the refusal message of `kind`. */
int moq_ietf_encode_request_error(moq_buf *out, const moq_ietf_caps *c,
                                  enum moq_ietf_request_kind kind,
                                  const struct moq_ietf_request_error *m);
/* The body of REQUEST_ERROR or of a draft-14 refusal (same layout, no retry interval). */
int moq_ietf_decode_request_error(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                  struct moq_ietf_request_error *out);

/* REQUEST_OK (15+) with optional LARGEST_OBJECT; on draft-14 PUBLISH_NAMESPACE_OK or
 * SUBSCRIBE_NAMESPACE_OK by kind. */
struct moq_ietf_request_ok {
    uint64_t request_id;
    bool has_largest;
    uint64_t largest_group, largest_object;
};
int moq_ietf_encode_request_ok(moq_buf *out, const moq_ietf_caps *c,
                               enum moq_ietf_request_kind kind,
                               const struct moq_ietf_request_ok *m);
int moq_ietf_decode_request_ok(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                               struct moq_ietf_request_ok *out);

/* Messages that are one request id: UNSUBSCRIBE, FETCH_CANCEL, UNSUBSCRIBE_NAMESPACE,
 * MAX_REQUEST_ID, REQUESTS_BLOCKED, PUBLISH_NAMESPACE_DONE (16), draft-14 OKs. */
int moq_ietf_encode_id_msg(moq_buf *out, const moq_ietf_caps *c, uint64_t type, uint64_t id);
int moq_ietf_decode_id_msg(const moq_ietf_caps *c, const uint8_t *body, size_t len, uint64_t *id);

struct moq_ietf_goaway {
    moq_str uri;
    uint64_t timeout_ms; /* 17+ */
};
int moq_ietf_encode_goaway(moq_buf *out, const moq_ietf_caps *c, const struct moq_ietf_goaway *m);
int moq_ietf_decode_goaway(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                           struct moq_ietf_goaway *out);

/* ---- namespaces -------------------------------------------------------------------- */

/* HOP_PATH / ROUTE_COST of the MoQ Cluster extension, when the session negotiated it. */
#define MOQ_IETF_MAX_HOPS 32
struct moq_ietf_advert {
    size_t n_hops;
    uint64_t hops[MOQ_IETF_MAX_HOPS];
    uint64_t cost;
};

struct moq_ietf_publish_namespace {
    uint64_t request_id;
    moq_buf ns; /* owned */
    bool has_advert;
    struct moq_ietf_advert advert;
};

/* advert may be NULL (no cluster parameters). */
int moq_ietf_encode_publish_namespace(moq_buf *out, const moq_ietf_caps *c, uint64_t request_id,
                                      moq_str ns, const struct moq_ietf_advert *advert);
int moq_ietf_decode_publish_namespace(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                      struct moq_ietf_publish_namespace *out);

/* PUBLISH_NAMESPACE_DONE / _CANCEL (14-16): by namespace (14/15) or request id (16). */
struct moq_ietf_namespace_done {
    uint64_t request_id;
    moq_buf ns;     /* owned */
    uint64_t code;  /* CANCEL */
    moq_str reason; /* CANCEL */
};
int moq_ietf_encode_publish_namespace_done(moq_buf *out, const moq_ietf_caps *c,
                                           uint64_t request_id, moq_str ns);
int moq_ietf_decode_publish_namespace_done(const moq_ietf_caps *c, bool cancel, const uint8_t *body,
                                           size_t len, struct moq_ietf_namespace_done *out);

struct moq_ietf_subscribe_namespace {
    uint64_t request_id;
    moq_buf prefix;   /* owned */
    uint64_t options; /* 16/17: 0 PUBLISH, 1 NAMESPACE, 2 both */
};
/* 0x11 through draft-17, 0x50 after. */
int moq_ietf_encode_subscribe_namespace(moq_buf *out, const moq_ietf_caps *c, uint64_t request_id,
                                        moq_str prefix);
int moq_ietf_decode_subscribe_namespace(const moq_ietf_caps *c, uint64_t type, const uint8_t *body,
                                        size_t len, struct moq_ietf_subscribe_namespace *out);

/* NAMESPACE (0x08) / NAMESPACE_DONE (0x0E), draft-16+: a suffix under the prefix. */
struct moq_ietf_namespace {
    moq_buf suffix; /* owned */
    bool has_advert;
    struct moq_ietf_advert advert;
};
int moq_ietf_encode_namespace(moq_buf *out, const moq_ietf_caps *c, bool done, moq_str suffix,
                              const struct moq_ietf_advert *advert);
/* `negotiated`: the session negotiated the MoQ Cluster extension (NAMESPACE carries its
 * parameters then). */
int moq_ietf_decode_namespace(const moq_ietf_caps *c, bool done, bool negotiated,
                              const uint8_t *body, size_t len, struct moq_ietf_namespace *out);

/* ---- fetch, track status, publish -------------------------------------------------- */

enum moq_ietf_fetch_type {
    MOQ_IETF_FETCH_STANDALONE = 1,
    MOQ_IETF_FETCH_RELATIVE = 2,
    MOQ_IETF_FETCH_ABSOLUTE = 3,
};

struct moq_ietf_fetch {
    uint64_t request_id;
    int type;
    moq_buf ns; /* owned (standalone) */
    moq_str track;
    uint8_t priority;
    uint8_t group_order;
    /* standalone: start and end (end object 0 = the whole end group, else draft-14..19's
     * "End Location plus one"; end group UINT64_MAX = up to the Largest Object); joining:
     * joining request id and start */
    uint64_t start_group, start_object;
    uint64_t end_group, end_object;
    bool has_range; /* draft-20: a LOCATION_FILTER was given */
    /* draft-20 standalone: where the filter puts the start (MOQ_IETF_FILTER_*): ABSOLUTE (or
     * NONE) at start_group/start_object; RELATIVE start_groups groups before the one after
     * the Largest Object; NEXT_GROUP and LARGEST just past the Largest Object. A start not
     * absolute has no end: the range ends at the Largest Object. */
    int start_kind;
    uint64_t start_groups;
    uint64_t joining_request_id;
    uint64_t joining_start;
};
int moq_ietf_encode_fetch(moq_buf *out, const moq_ietf_caps *c, const struct moq_ietf_fetch *m,
                          moq_str ns);
int moq_ietf_decode_fetch(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                          struct moq_ietf_fetch *out);

/* The answer to a FETCH, standalone or joining, on every draft: FETCH_OK (section "FETCH_OK"
 * of drafts 14-20; REQUEST_OK never answers a FETCH). Its request id through
 * draft-16, the group order on 14 only, end of track, the End Location in the draft's
 * encoding (moq_ietf_caps.fetch_end_inclusive), no parameters, and the track properties
 * (none) from 17. */
struct moq_ietf_fetch_ok {
    uint64_t request_id; /* 14..16 */
    uint8_t group_order; /* 14 */
    bool end_of_track;
    uint64_t end_group, end_object;
};
int moq_ietf_encode_fetch_ok(moq_buf *out, const moq_ietf_caps *c,
                             const struct moq_ietf_fetch_ok *m);
int moq_ietf_decode_fetch_ok(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                             struct moq_ietf_fetch_ok *out);

struct moq_ietf_track_status {
    uint64_t request_id;
    moq_buf ns; /* owned */
    moq_str track;
};
int moq_ietf_encode_track_status(moq_buf *out, const moq_ietf_caps *c, uint64_t request_id,
                                 moq_str ns, moq_str track);
int moq_ietf_decode_track_status(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                 struct moq_ietf_track_status *out);

/* PUBLISH is refused (this relay subscribes instead); only its request id matters. */
int moq_ietf_decode_publish_request_id(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                       uint64_t *request_id);

#endif
