/*
 * version.h - the IETF moq-transport drafts this relay speaks (draft-14 .. draft-20) and the
 * one table of what differs between them.
 *
 * Every per-draft difference of the wire is a named capability here; protocol code asks
 * `if (caps->x)` instead of comparing draft numbers. The table is static and immutable:
 * moq_ietf_caps_get() returns a pointer into it that never needs freeing.
 *
 * How a draft is reached:
 *  - draft-14: ALPN "moq-00", or the "moql" ALPN (or none) whose CLIENT_SETUP offers it;
 *  - draft-15/16: ALPN "moqt-15"/"moqt-16", confirmed by a CLIENT_SETUP without versions;
 *  - draft-17+: ALPN "moqt-17".."moqt-20" alone; SETUP rides a uni stream of type 0x2F00.
 */
#ifndef MOQ_IETF_VERSION_H
#define MOQ_IETF_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum moq_ietf_draft {
    MOQT_14 = 14,
    MOQT_15 = 15,
    MOQT_16 = 16,
    MOQT_17 = 17,
    MOQT_18 = 18,
    MOQT_19 = 19,
    MOQT_20 = 20,
} moq_ietf_draft;

/* The "moql" ALPN: moq-lite 01/02 or draft-14, chosen inside the compat CLIENT_SETUP. */
#define MOQ_IETF_ALPN_COMPAT "moql"
/* Version codes of the compat CLIENT_SETUP that are not IETF drafts. */
#define MOQ_IETF_CODE_LITE_01 0xff0dad01ull
#define MOQ_IETF_CODE_LITE_02 0xff0dad02ull

/* How a SUBSCRIBE carries its subscription filter. */
enum moq_ietf_filter_form {
    MOQ_IETF_FILTER_INLINE = 0,    /* draft-14: fields in the message body, End Group absolute */
    MOQ_IETF_FILTER_TAG_ABS = 1,   /* 15/16: parameter 0x21, tag + location, End Group absolute */
    MOQ_IETF_FILTER_TAG_DELTA = 2, /* 17-19: parameter 0x21, tag + location, End Group delta */
    MOQ_IETF_FILTER_FIELDS = 3,    /* 20: parameter 0x21, up to four varints */
};

/* How FETCH objects are serialized on a fetch stream. */
enum moq_ietf_fetch_objects {
    MOQ_IETF_FETCH_PLAIN = 0,       /* 14: group, subgroup, object, priority, ext, size, status */
    MOQ_IETF_FETCH_FLAGS8 = 1,      /* 15: 8-bit flags, absolute ids, status when empty */
    MOQ_IETF_FETCH_FLAGS = 2,       /* 16/17: varint flags, absolute ids */
    MOQ_IETF_FETCH_FLAGS_DELTA = 3, /* 18+: varint flags, group and object id deltas */
};

typedef struct moq_ietf_caps {
    moq_ietf_draft draft;
    const char *alpn;       /* "moq-00", "moqt-15", ... */
    const char *name;       /* "moq-transport-14", ... (logs, config) */
    uint64_t code;          /* 0xff00000e, ... */
    bool leading_ones;      /* 17+: varints use the leading-ones encoding */
    bool uni_setup;         /* 17+: SETUP (0x2F00) on a uni stream per side, pinned by ALPN */
    bool setup_versions;    /* 14: CLIENT_SETUP lists versions, SERVER_SETUP picks one */
    bool setup_count;       /* 14-16: setup options are count-prefixed */
    bool kvp_delta;         /* 16+: parameter / property types are delta-encoded */
    bool typed_params;      /* 17+: message parameters are typed by definition */
    bool request_streams;   /* 17+: every request on its own bidi stream (no control stream) */
    bool ns_stream;         /* 16+: SUBSCRIBE_NAMESPACE on its own bidi stream, NAMESPACE inline */
    bool ns_v2;             /* 18+: SUBSCRIBE_NAMESPACE is type 0x50 without Subscribe Options */
    bool subscribe_options; /* 16/17: SUBSCRIBE_NAMESPACE (0x11) carries Subscribe Options */
    bool response_ids;      /* 14-16: responses repeat the request id */
    bool required_id_delta; /* 17: requests carry a Required Request ID Delta */
    bool request_error;     /* 15+: REQUEST_OK / REQUEST_ERROR replace per-message answers */
    bool retry_interval;    /* 16+: REQUEST_ERROR carries a retry interval */
    bool subscribe_params;  /* 15+: priority, order, forward and filter are parameters */
    enum moq_ietf_filter_form filter;
    bool track_properties;         /* 17+: SUBSCRIBE_OK / PUBLISH / FETCH_OK end with a properties
                                      block we write (16 is read but never written) */
    bool read_properties;          /* 16+: such a block may end the message */
    bool group_order_param;        /* 15: GROUP_ORDER is a SUBSCRIBE_OK / PUBLISH parameter */
    bool largest_param;            /* 20: SUBSCRIBE_OK carries LARGEST_OBJECT when known */
    bool max_request_id;           /* 14-16: MAX_REQUEST_ID flow control */
    bool unsubscribe;              /* 14-16: UNSUBSCRIBE / FETCH_CANCEL messages */
    bool ns_done_msg;              /* 14-16: PUBLISH_NAMESPACE_DONE / _CANCEL messages */
    bool ns_done_by_id;            /* 16: they name the request id (14/15: the namespace) */
    bool goaway_timeout;           /* 17+: GOAWAY carries a timeout */
    bool first_object_bit;         /* 18+: SUBGROUP_HEADER types carry FIRST_OBJECT (0x40) */
    bool header_priority_optional; /* 15+: SUBGROUP_HEADER types 0x30.. omit the priority */
    bool track_status_ok;          /* 14: TRACK_STATUS is answered by TRACK_STATUS_OK (0x0E) */
    bool fetch_inline;             /* 14: FETCH carries priority and group order in its body */
    bool fetch_end_inclusive;      /* 20: FETCH_OK End Location is the last object (14-19: the
                                      last plus one, or object 0 for a whole group) */
    bool fetch_filter;             /* 20: FETCH ranges are a LOCATION_FILTER parameter */
    enum moq_ietf_fetch_objects fetch_objects;
    bool cluster; /* 17+: the MoQ Cluster extension may be negotiated */
    bool fill;    /* 20: FILL_PARAMETERS / INCLUDE_PROPERTIES exist */
} moq_ietf_caps;

/* The row of a draft, or NULL when it is not one of the above. */
const moq_ietf_caps *moq_ietf_caps_get(moq_ietf_draft d);

/* The row whose ALPN is alpn[0..len) exactly ("moq-00", "moqt-15" .. "moqt-20"), or NULL. */
const moq_ietf_caps *moq_ietf_caps_from_alpn(const char *alpn, size_t len);

/* The row whose name is `name` ("moq-transport-14" ..), or NULL. */
const moq_ietf_caps *moq_ietf_caps_from_name(const char *name);

/* The row of a SETUP version code (0xff00000e ..), or NULL. */
const moq_ietf_caps *moq_ietf_caps_from_code(uint64_t code);

/* Every draft, newest first, NULL-terminated. */
extern const moq_ietf_caps *const moq_ietf_drafts[];

#endif
