/*
 * session_int.h - private structures of the session engine, shared by session.c (core,
 * SETUP, authorization, dispatch, teardown), sess_serve.c (what we serve to the peer) and
 * sess_consume.c (what we take from the peer). Not for use outside src/moq.
 */
#ifndef MOQ_MOQ_SESSION_INT_H
#define MOQ_MOQ_SESSION_INT_H

#include "model/model.h"
#include "moq/codec.h"
#include "moq/errors.h"
#include "moq/session.h"
#include "moq/stream_reader.h"
#include "util/buf.h"
#include "util/list.h"
#include "util/map.h"

/* Frame chunks reserve room in front of the payload for the encoded frame headers of both
 * protocol families: [0, 8) the lite-03/04 header (size), and the lite-05 header (zigzag
 * timestamp delta + size) right-aligned to FRAME_PAYLOAD_OFF so that header and payload
 * form one contiguous slice for lite-05 peers. */
#define FRAME_HDR03_OFF   0
#define FRAME_PAYLOAD_OFF 24
#define FAMILY_05         0
#define FAMILY_03         1

/* Streams a peer may open before its session is authorized, and their bytes. */
#define MAX_HELD_STREAMS 32
#define MAX_HELD_BYTES   (256 * 1024)
/* Time allowed for the peer's SETUP (lite-05) before the session is closed. */
#define SETUP_TIMEOUT_US (10 * MOQ_US_PER_S)
/* How long a route the peer unannounced stays while a subscription of ours still receives
 * from it (groups below the end of a finished track are in flight). */
#define ENDING_MAX_US (5 * MOQ_US_PER_S)
/* While the peer listens for bandwidth probes we check the estimate this often, and report
 * it when it changed enough or after PROBE_MAX_SILENCE_US without a report. */
#define PROBE_TICK_US        (100 * MOQ_US_PER_MS)
#define PROBE_MAX_SILENCE_US (10 * MOQ_US_PER_S)
/* Broadcasts one peer may announce to us at once (more closes the session). */
#define MAX_ANNOUNCES 10000
/* Control messages larger than this are refused (the stream is reset). */
#define MAX_CONTROL_MSG (64 * 1024)
/* Incomplete control messages one peer may make us hold across all its streams; beyond
 * it the session is closed (BoundsExceeded). */
#define MAX_PENDING_CONTROL (1024 * 1024)

enum ms_kind {
    MS_NEW,           /* peer stream whose type is not read yet */
    MS_SETUP_IN,      /* the peer's SETUP */
    MS_SETUP_OUT,     /* our SETUP */
    MS_ANN_SERVE,     /* the peer wants our announcements */
    MS_ANN_CONSUME,   /* we want the peer's announcements */
    MS_SUB_SERVE,     /* the peer subscribes to a track we serve */
    MS_SUB_CONSUME,   /* we subscribe to a track the peer publishes */
    MS_TRACK_SERVE,   /* the peer asks for track info */
    MS_TRACK_CONSUME, /* we ask the peer for track info */
    MS_FETCH_SERVE,   /* the peer fetches a group from us */
    MS_FETCH_CONSUME, /* we fetch a group from the peer */
    MS_PROBE_SERVE,   /* we report bandwidth to the peer */
    MS_GROUP_OUT,     /* a group we send */
    MS_GROUP_IN,      /* a group we receive */
    MS_COMPAT,        /* lite-01/02: the compat SETUP stream, then the session stream */
    MS_IGNORE,        /* read and discard */
};

typedef struct mstream mstream;

struct mstream {
    moq_session *s;
    int64_t sid;
    enum ms_kind kind;
    bool bidi;
    bool local;      /* we opened it */
    bool send_done;  /* we finished or reset our sending side */
    bool reset_sent; /* we reset our sending side (perhaps after finishing it) */
    bool recv_done;  /* the peer finished or reset its side, or we stopped it */
    moq_varint_reader vr;
    moq_ctrl_reader cr;
    bool cr_live;
    size_t cr_pending; /* moq_ctrl_reader_pending() as last accounted */
    moq_group_parser gp;
    /* bytes of a peer stream held until the session is authorized */
    moq_buf held;
    bool held_fin;
    moq_list held_link;
    void *obj; /* the kind's object below, owned by the stream until stream_closed */
    moq_list link;
};

/* Assembles inbound frames into chunks laid out as described above. */
struct frame_asm {
    moq_chunk *chunk; /* the frame in progress, NULL between frames */
    moq_frame frame;
    size_t filled;
    uint64_t prev_ts; /* lite-05 delta base: the previous frame's timestamp in the group */
};

/* The peer announced broadcasts to us under `prefix` (our Announce stream to it). */
struct ann_consume {
    mstream *ms;
    char *prefix; /* relative to the root, as sent */
    char *full;   /* global prefix */
    uint64_t hop_id;
    bool ok_received;
    bool open_reported; /* MOQ_SESSION_ANNOUNCES_OPEN was reported */
    bool police;        /* at the root, only to refuse what perms.publish does not cover */
    bool refused;       /* the peer refused the request (reported once) */
    moq_map routes;     /* suffix -> moq_route* */
    moq_u64map by_id;   /* lite-06: announce id -> suffix (owned, NUL-terminated) */
    uint64_t next_id;   /* lite-06: the id the next START assigns */
    moq_list link;
};

/* The peer wants our announcements under a prefix. */
struct ann_serve {
    mstream *ms;
    char *full; /* global requested prefix */
    uint64_t exclude;
    moq_watch *watches[8];
    size_t n_watches;
    bool collecting; /* gathering the initial set for ANNOUNCE_OK */
    moq_buf initial;
    moq_buf initial_paths; /* their paths, each NUL-terminated, for cfg->event */
    uint64_t initial_count;
    moq_map ids;      /* lite-06: suffix -> announce id + 1, for what the peer holds */
    uint64_t next_id; /* lite-06: the id the next START assigns */
};

/* One track we serve from the peer (an upstream subscription for the whole relay). */
struct up_sub {
    moq_session *s;
    moq_route *route;
    moq_track *track;
    uint64_t id;     /* our subscribe id toward the peer */
    char *broadcast; /* relative to the root */
    char *name;
    moq_sub_prefs prefs;
    mstream *track_ms; /* lite-05 TRACK request in flight */
    mstream *sub_ms;   /* SUBSCRIBE stream */
    bool info_known;
    bool accepted; /* MOQ_SESSION_SUBSCRIBE_ACCEPTED was reported */
    bool released; /* track_release received: no more writes to the track */
    bool sub_over; /* the peer finished or reset the SUBSCRIBE stream */
    bool have_seq;
    uint64_t max_seq;
    /* TRACK / SUBSCRIBE still to open once the peer grants bidi stream credit */
    bool want_track, want_sub;
    moq_list wait_link; /* moq_session.bidi_wait; holds a reference while linked */
};

/* A group on its way to the peer. */
struct group_out {
    mstream *ms; /* NULL while waiting for stream credit */
    struct down_sub *ds;
    moq_follower *follower;
    moq_group *group; /* a reference while queued; the follower holds one after */
    uint64_t seq;
    uint64_t next; /* next frame index to write */
    uint64_t created_us;
    bool queued;
    bool datagram; /* waiting to leave as a datagram (no stream) */
    /* The transport refused a write (MOQ_ERR_AGAIN): the rest waits for stream_writable,
     * and so does the FIN of a group that finished meanwhile (fin_pending). */
    bool blocked;
    bool fin_pending;
    bool fin_sent;  /* all written and FIN'd; in ds->groups until the stream closes */
    moq_list link;  /* ds->groups */
    moq_list qlink; /* session queue */
};

/* A peer's subscription to a track we serve. */
struct down_sub {
    mstream *ms;
    moq_subscription *sub;
    uint64_t id; /* the peer's subscribe id, echoed in group headers */
    moq_sub_prefs prefs;
    moq_list groups; /* group_out */
    size_t inflight;
    bool start_sent;
    bool finished;
    uint64_t final_seq;
    bool over; /* aborted or unsubscribed: no more groups */
};

/* A group arriving from the peer. */
struct group_in {
    mstream *ms;
    struct up_sub *us;
    moq_group *group;
    struct frame_asm fa;
};

/* A FETCH we answer. */
struct fetch_out {
    mstream *ms;
    moq_follower *follower;
    uint64_t next;
    bool blocked; /* as in group_out */
    bool fin_pending;
};

/* A FETCH we forwarded to the peer. */
struct fetch_in {
    mstream *ms;
    moq_group *group;
    struct frame_asm fa;
};

struct track_serve {
    mstream *ms;
    moq_subscription *sub;
};

struct probe_serve {
    mstream *ms;
    uint64_t last_bitrate;
    uint64_t last_rtt;
    bool sent;
    uint64_t last_sent;
};

/* A route the peer unannounced whose unannounce waits for our subscriptions to end. */
struct ending_route {
    moq_route *route;
    uint64_t deadline;
};

struct moq_ietf_engine;

struct moq_session {
    /* Set when the session speaks moq-transport (ietf/session.h): that engine owns the
     * transport's events, and only t, cfg, perms, authorized, closing, gone, stats and
     * reported_deadline below are used. */
    struct moq_ietf_engine *ietf;
    moq_transport *t;
    struct moq_session_config cfg;
    moq_version v;
    const moq_caps *caps;
    moq_perms perms;
    bool authorized;
    bool closing;        /* close requested: no more writes */
    bool gone;           /* the transport is closed */
    bool setup_received; /* the peer's SETUP (05+; compat SERVER_SETUP for a 01/02 client) */
    mstream *compat;     /* lite-01/02: the session stream (the compat SETUP's bidi) */
    uint64_t peer_origin;
    int peer_role;
    char *setup_path; /* the peer's SETUP Path (owned) */
    moq_list streams;
    moq_list held;
    size_t held_streams;
    size_t held_bytes;
    moq_list ann_consumes;
    moq_u64map up_by_id;    /* our subscribe id -> up_sub */
    moq_u64map up_by_track; /* (uintptr_t)moq_track* -> up_sub */
    uint64_t next_sub_id;
    moq_list queue; /* group_out waiting for uni stream credit, oldest first */
    /* Opens deferred until the transport grants stream credit (a qmux peer grants none
     * before its transport parameters arrive): our SETUP, the announce requests from
     * perms.publish[ann_next] on, and up_subs whose TRACK/SUBSCRIBE wait (oldest first). */
    bool setup_pending;
    bool compat_pending; /* our compat CLIENT_SETUP (lite-01/02 client) */
    bool ann_pending;
    size_t ann_next;
    moq_list bidi_wait;
    uint64_t inbound_bytes;
    size_t pending_control; /* sum of the streams' cr_pending */
    struct probe_serve *probe;
    struct ending_route *ending;
    size_t n_ending, cap_ending;
    bool ending_busy, ending_again;
    /* Deadlines in clock time (UINT64_MAX = none), and the next one as last reported to
     * cfg.timer. */
    uint64_t setup_deadline;
    uint64_t expiry_deadline;
    uint64_t probe_deadline;
    uint64_t reported_deadline;
    struct moq_session_stats stats;
};

/* session.c */
/* Open a stream of ours: 0 with *out set, MOQ_ERR_AGAIN when the peer's stream credit is
 * exhausted (streams_available follows), or another error. */
int moq_ms_open(moq_session *s, enum ms_kind kind, bool bidi, mstream **out);
int moq_ms_write(mstream *ms, const moq_buf *b, bool fin);
void moq_ms_finish(mstream *ms);
void moq_ms_reset(mstream *ms, uint64_t code);
/* Reset our sending side even after its FIN was queued: what the peer has not been sent
 * yet is dropped (a group gone stale behind a slow path). */
void moq_ms_retract(mstream *ms, uint64_t code);
void moq_ms_stop(mstream *ms, uint64_t code);
/* Reset what we send and stop what we receive (refusing a request). */
void moq_ms_abort(mstream *ms, uint64_t code);
void moq_session_fail(moq_session *s, uint64_t code, const char *reason);
/* Report a milestone through cfg->event (paths need not be NUL-terminated). */
void moq_session_emit(moq_session *s, enum moq_session_event_kind kind, const void *path,
                      size_t path_len, const void *track, size_t track_len);
/* Global path = root joined with a relative path; appended NUL-terminated to out. */
int moq_session_global_path(const moq_session *s, const uint8_t *rel, size_t len, moq_buf *out);
/* The path relative to the root, or -1 when outside it. */
int moq_session_relative_path(const moq_session *s, const uint8_t *path, size_t len,
                              const uint8_t **rel, size_t *rel_len);
uint64_t moq_session_now(const moq_session *s);
/* Wall-clock milliseconds (the timestamp of frames from peers that send none). */
uint64_t moq_session_wall_ms(const moq_session *s);
/* A deadline was set or cleared: report the session's next one if it moved. */
void moq_session_deadline_changed(moq_session *s);
/* A grant list for the log: "a","b" (empty when it grants nothing). Returns out. */
const char *moq_session_grant_text(const moq_strlist *l, char *out, size_t len);

/* What a stream of one kind does on the transport's events for it (NULL: nothing). session.c
 * maps every ms_kind to its ops; the serving kinds are in sess_serve.c, the consuming ones in
 * sess_consume.c. */
struct moq_ms_ops {
    void (*data)(mstream *ms, const uint8_t *data, size_t len, bool fin);
    void (*reset)(mstream *ms, uint64_t code);   /* the peer reset what it sends */
    void (*stopped)(mstream *ms, uint64_t code); /* the peer stopped reading what we send */
    void (*release)(mstream *ms); /* free ms->obj and every model handle it holds (no writes) */
};

/* Release the kind's object (ms->obj becomes NULL). */
void moq_ms_release(mstream *ms);
/* Release the kind's object and read and discard whatever else arrives on the stream. */
void moq_ms_drop(mstream *ms);
/* Hand the stream's whole control messages to on_msg, one at a time, while the session is open
 * and on_msg returns true. Returns 0 when the bytes are used up or on_msg stopped, -1 at the
 * end of the messages: FIN, or a malformed one (the stream was aborted then). */
int moq_ms_each_msg(mstream *ms, const uint8_t *data, size_t len, bool fin,
                    bool (*on_msg)(mstream *ms, const struct moq_ctrl_msg *msg));

/* sess_serve.c */
extern const struct moq_ms_ops moq_serve_announce_ops, moq_serve_subscribe_ops, moq_serve_track_ops,
    moq_serve_fetch_ops, moq_serve_probe_ops, moq_serve_group_ops;
void moq_serve_probe_open(mstream *ms);
void moq_serve_streams_available(moq_session *s);
/* A stream refused a write earlier and can take more: resume the group or fetch on it. */
void moq_serve_stream_writable(mstream *ms);
void moq_serve_probe_tick(moq_session *s, uint64_t now);

/* sess_consume.c */
extern const struct moq_ms_ops moq_consume_announce_ops, moq_consume_subscribe_ops,
    moq_consume_track_ops, moq_consume_fetch_ops, moq_consume_group_ops;
void moq_consume_start(moq_session *s);
/* The peer granted bidi stream credit: open what moq_consume_start and track requests deferred. */
void moq_consume_streams_available(moq_session *s);
void moq_consume_announce_data(mstream *ms, const uint8_t *data, size_t len, bool fin);
void moq_consume_subscribe_data(mstream *ms, const uint8_t *data, size_t len, bool fin);
void moq_consume_track_data(mstream *ms, const uint8_t *data, size_t len, bool fin);
void moq_consume_group_data(mstream *ms, const uint8_t *data, size_t len, bool fin);
void moq_consume_fetch_data(mstream *ms, const uint8_t *data, size_t len, bool fin);
void moq_consume_stream_reset(mstream *ms, uint64_t code);
void moq_consume_datagram(moq_session *s, const uint8_t *data, size_t len);
void moq_consume_release(mstream *ms);
/* Unannounce the routes that waited for their subscriptions (now ended or timed out). */
void moq_consume_ending_check(moq_session *s);
/* Report every route lost and drop every upstream track (teardown). */
void moq_consume_teardown(moq_session *s);

/* frame assembly (sess_consume.c) */
int moq_frame_asm_begin(struct frame_asm *fa, moq_session *s, uint64_t ts, uint64_t size);
/* The same, keeping side[0..side_len) with the frame as its side range. */
int moq_frame_asm_begin_side(struct frame_asm *fa, moq_session *s, uint64_t ts, uint64_t size,
                             const uint8_t *side, uint32_t side_len);
int moq_frame_asm_payload(struct frame_asm *fa, const uint8_t *data, size_t len);
/* Hands the frame to the group (consumes the chunk). */
int moq_frame_asm_end(struct frame_asm *fa, moq_session *s, moq_group *group);
void moq_frame_asm_clear(struct frame_asm *fa, moq_session *s);

#endif
