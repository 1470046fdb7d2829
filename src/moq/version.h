/*
 * version.h - the moq-lite versions this relay speaks (lite-01 .. lite-05, and lite-06-wip when
 * configured) and the one table of what differs between them.
 *
 * Every per-version difference of the wire is a named capability here; protocol code asks
 * `if (caps->x)` instead of comparing version numbers. The table is static and immutable:
 * moq_caps_get() returns a pointer into it that never needs freeing.
 *
 * How a version is reached:
 *  - lite-01/02: the "moql" ALPN (or WebSocket subprotocol / WebTransport protocol) and the
 *    compat SETUP on the first bidi stream (types 0x20/0x21), which stays open as the
 *    session stream; the same SETUP may choose moq-transport-14 instead (ietf/);
 *  - lite-03/04/05: their own ALPN, no in-band negotiation (05 adds a SETUP uni stream);
 *  - lite-06-wip: its own ALPN "moq-lite-06-wip", never offered unless configured.
 */
#ifndef MOQ_MOQ_VERSION_H
#define MOQ_MOQ_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum moq_version {
    MOQ_LITE_01 = 1,
    MOQ_LITE_02 = 2,
    MOQ_LITE_03 = 3,
    MOQ_LITE_04 = 4,
    MOQ_LITE_05 = 5,
    MOQ_LITE_06_WIP = 6,
} moq_version;

/* The ALPN shared by the versions chosen inside the compat SETUP. */
#define MOQ_COMPAT_ALPN "moql"

/* Version codes used only inside the legacy compat SETUP exchange. */
#define MOQ_COMPAT_CODE_LITE_01 0xff0dad01ull
#define MOQ_COMPAT_CODE_LITE_02 0xff0dad02ull
#define MOQ_COMPAT_CODE_LITE_03 0xff0dad03ull
#define MOQ_COMPAT_CODE_LITE_04 0xff0dad04ull
#define MOQ_COMPAT_CODE_LITE_05 0xff0dad05ull
#define MOQ_COMPAT_CODE_LITE_06 0xff0dad06ull
#define MOQ_COMPAT_CODE_MOQT_14 0xff00000eull

/* How an ANNOUNCE carries its hop chain. */
enum moq_hops_format {
    MOQ_HOPS_NONE = 0,            /* no hops on the wire (lite-01/02) */
    MOQ_HOPS_COUNT = 1,           /* vi count only; ids unknown (lite-03) */
    MOQ_HOPS_IDS_WITH_SENDER = 2, /* vi count + ids; the sender appends itself (lite-04) */
    MOQ_HOPS_IDS_WITHOUT_SENDER =
        3 /* vi count + ids; the receiver appends ANNOUNCE_OK.hop_id (05) */
};

/* Which typed responses the subscribe stream carries. */
enum moq_subscribe_responses {
    MOQ_SUBRESP_OK_DROP = 0,        /* 0 SUBSCRIBE_OK, 1 SUBSCRIBE_DROP (lite-03/04) */
    MOQ_SUBRESP_START_END_DROP = 1, /* 0 SUBSCRIBE_START, 1 SUBSCRIBE_END, 2 DROP (lite-05+) */
    MOQ_SUBRESP_UNTYPED_OK = 2,     /* one untyped SUBSCRIBE_OK, nothing else (lite-01/02) */
};

typedef struct moq_caps {
    moq_version version;
    const char *name;     /* "moq-lite-0N" (logs, config, moq_session_version) */
    const char *alpn;     /* ALPN / protocol: the name, or "moql" for the compat versions */
    uint64_t compat_code; /* 0xff0dad0N */
    bool by_default;      /* offered when no version is configured (not lite-06-wip) */
    bool compat_setup;    /* chosen inside the compat SETUP; its bidi stays the session
                             stream, carrying SESSION_INFO (01/02) */
    bool setup_stream;    /* uni stream type 0x1 carrying one SETUP (05+) */
    bool announce_init;   /* ANNOUNCE_INIT (list of suffixes) opens the announce reply (01/02) */
    bool announce_ok;     /* ANNOUNCE_OK opens the announce reply (05+) */
    bool announce_ids;    /* typed ANNOUNCE_START/END/RESTART; START assigns the next id and
                             END/RESTART reference it (06) */
    bool route_cost;      /* announcements carry a route cost after the hops (06) */
    enum moq_hops_format announce_hops;
    bool exclude_hop;       /* ANNOUNCE_REQUEST carries exclude_hop (04, 05) */
    bool restart;           /* duplicate ANNOUNCE active / status 2 = restart (05) */
    bool subscribe_options; /* SUBSCRIBE carries ordered, max latency, start and end (03+) */
    bool subscribe_update;  /* SUBSCRIBE_UPDATE exists (03+) */
    enum moq_subscribe_responses subscribe_responses;
    bool subscribe_ok_priority; /* the untyped SUBSCRIBE_OK carries the priority (01) */
    bool track_stream;          /* bidi 0x6 TRACK / TRACK_INFO (05) */
    bool fetch;                 /* bidi 0x3 FETCH (05 in both implementations) */
    bool frame_timestamps;      /* FRAME = zigzag ts delta + size (05) */
    bool datagrams;             /* group-of-one-frame datagrams (05) */
    bool probe;                 /* bidi 0x4 PROBE stream (03+) */
    bool probe_rtt;             /* PROBE carries rtt_ms after bitrate (04+) */
    bool goaway;                /* bidi 0x5 GOAWAY (04+) */
} moq_caps;

/* The capability row of a version, or NULL when the version is not supported. */
const moq_caps *moq_caps_get(moq_version v);

/* Whether v is one of the versions above. */
bool moq_version_supported(moq_version v);

/* The version's ALPN ("moq-lite-05", "moql" for 01/02), or "unknown". */
const char *moq_version_alpn(moq_version v);
/* The version's name ("moq-lite-02"), or "unknown". */
const char *moq_version_name(moq_version v);

/* Look a version up by its own ALPN / WebTransport protocol / WebSocket subprotocol suffix
 * (exact byte match, e.g. "moq-lite-05"; "moql" names no single version). Returns the
 * version, or MOQ_ERR_NOT_FOUND. */
int moq_version_from_alpn(const char *alpn, size_t len);
/* Look a version up by its name ("moq-lite-02"). Returns the version or MOQ_ERR_NOT_FOUND. */
int moq_version_from_name(const char *name);
/* The moq-lite version a compat SETUP code stands for when that version is negotiated
 * there (lite-01/02), or MOQ_ERR_NOT_FOUND. */
int moq_version_from_compat_code(uint64_t code);

/* The ALPNs offered by default in server preference order (lite-05 first; lite-06-wip is
 * absent), NULL-terminated. */
extern const char *const moq_version_alpns[];
/* The compat SETUP versions in server preference order (lite-02, lite-01), NULL-terminated
 * names. */
extern const char *const moq_version_compat_names[];

/* Name of a compat SETUP version code for logs ("moq-lite-02", "moq-transport-14", ...), or
 * NULL when unknown. */
const char *moq_compat_version_name(uint64_t code);

#endif
