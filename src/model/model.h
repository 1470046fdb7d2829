/*
 * model.h - the relay's data model: an origin maps paths to broadcasts; a broadcast has
 * routes (producers that announced it) and tracks; a track fans groups of frames out to
 * subscriptions and keeps a cache of recent groups. Plain data structures and callbacks:
 * no sockets, no varints, no protocol versions, no event loop. Time is always passed in
 * ("now", microseconds from util/time.h).
 *
 * The moq session engine sits on both sides:
 *  - as a PRODUCER it announces broadcasts (moq_origin_announce), serves the tracks the
 *    model asks for (moq_producer_ops) and writes what its upstream sends into them
 *    (moq_track_set_info, moq_track_begin_group, moq_group_append, ...);
 *  - as a CONSUMER it watches announcements (moq_origin_watch), subscribes to tracks
 *    (moq_origin_subscribe), fetches cached groups (moq_origin_fetch) and follows groups
 *    (moq_group_follow) to write their frames downstream.
 *
 * Ownership - who frees what
 *  - moq_origin: moq_origin_new / moq_origin_free. Freeing the origin releases every
 *    broadcast, route, track, subscription and watch that is still alive WITHOUT invoking
 *    callbacks: handles of those kinds that the caller still holds become invalid. It drops
 *    the cache's group references but not other holders' (groups are refcounted, below).
 *  - moq_route: returned by moq_origin_announce; owned by the producer until it calls
 *    moq_route_unannounce (graceful) or moq_route_lost (ungraceful), which free it (also
 *    after moq_route_withdraw).
 *  - moq_watch: owned by the consumer until moq_watch_close.
 *  - moq_subscription: owned by the consumer until moq_subscription_close, also after the
 *    track finished or failed (a failed subscription simply gets no more callbacks).
 *  - moq_follower: owned by its creator until moq_follower_close; it holds a group
 *    reference, so it is independent of the origin's lifetime.
 *  - moq_track: owned by the model. A producer may use the pointer it got in track_request
 *    until the matching track_release returns. Consumers only see tracks via subscriptions.
 *    A track whose last subscriber left goes, unless track_keep_us keeps it (with its
 *    cache) a while, so that a subscriber coming back starts at its latest group.
 *  - moq_group: refcounted (moq_group_ref / moq_group_unref). The track cache holds one
 *    reference while the group is cached; moq_track_begin_group and moq_origin_fetch return
 *    a new reference owned by the caller; callbacks pass borrowed pointers (take a
 *    reference to keep one). A referenced group stays readable - frames and state - after
 *    it was evicted from the cache and after the origin was freed.
 *  - moq_chunk (util/chunk.h): moq_group_append takes over the caller's chunk reference,
 *    on success and on failure. The group keeps it until the group is freed (or the frame
 *    is dropped by the per-group byte cap). Frames are never copied.
 *
 * Threading: nothing here is thread-safe; one origin belongs to one worker thread. Only
 * chunks are atomically refcounted, so frame bytes may be handed to other threads.
 *
 * Callbacks and re-entrancy
 *  Callbacks run synchronously inside the model call that caused them (listed per
 *  callback below). Every callback may call back into the model - including closing its
 *  own handle or any other handle, subscribing, unsubscribing, announcing, writing - with
 *  one exception: never moq_origin_free from a callback. Iteration over subscribers,
 *  followers and watchers is safe against any such change: a handle closed during a
 *  notification gets no further callbacks, and a handle created during a notification does
 *  not receive that same notification (it gets the current state through its own initial
 *  replay instead). After a call that may have run callbacks, the caller must not assume
 *  that handles it closed from those callbacks are still valid.
 *  A pointer returned through an out-parameter (*out) is set before any callback of that
 *  call runs.
 */
#ifndef MOQ_MODEL_MODEL_H
#define MOQ_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/chunk.h"

/* Most origin ids in a hop chain. */
#define MOQ_MAX_HOPS 32
/* Most '/'-separated segments in a path (the wire allows 32; scoping may add a root). */
#define MOQ_MAX_PATH_PARTS 64

/* Abort reasons the model itself produces. Numerically equal to moq-lite's error codes, so
 * the engine may forward them unchanged; codes a producer passes in are opaque here. */
enum moq_reason {
    MOQ_REASON_CANCEL = 0,           /* cancelled (the model itself no longer uses it) */
    MOQ_REASON_OLD = 2,              /* an in-progress group expired from the cache */
    MOQ_REASON_NOT_FOUND = 13,       /* producer refused a fetch */
    MOQ_REASON_DROPPED = 24,         /* broadcast ended (unannounced, linger expired) */
    MOQ_REASON_FRAME_TOO_LARGE = 27, /* a frame exceeded the configured maximum */
    MOQ_REASON_UNROUTABLE = 30,      /* no route left that this subscriber may use */
    MOQ_REASON_EVICTED = 31,         /* an in-progress group was evicted (byte budget) */
};

typedef struct moq_origin moq_origin;
typedef struct moq_route moq_route;
typedef struct moq_watch moq_watch;
typedef struct moq_track moq_track;
typedef struct moq_subscription moq_subscription;
typedef struct moq_group moq_group;
typedef struct moq_follower moq_follower;

/* ---------------------------------------------------------------------------------------
 * Origin
 */

typedef struct moq_origin_config {
    uint64_t id;                /* this relay's origin id (1 .. 2^62-1; keep it < 2^53 for JS
                                   clients); chains holding it are loops */
    uint64_t linger_us;         /* keep a broadcast after ungraceful loss (default 5 s; 0 = none) */
    uint64_t track_keep_us;     /* keep a track and its cache after its last subscriber left
                                   (default 0 = no; UINT64_MAX = while announced): a
                                   publisher keeps its latest group for a new subscriber */
    uint64_t cache_duration_us; /* ceiling on any track's cache window (0 = no ceiling) */
    uint64_t cache_capacity;    /* byte budget for cached groups (0 = unbounded): payload plus
                                   256 bytes per group; when a write or tick finds it exceeded,
                                   the least recently accessed (written or fetched) groups
                                   across all tracks are evicted, never a track's latest group
                                   nor the group being written */
    /* Non-NULL: cache_capacity is a budget shared with every origin adding its charge to
     * this counter (one origin per worker thread). Each origin evicts its own least recently
     * used groups while the sum is over the budget. Must outlive the origin. */
    _Atomic uint64_t *shared_charge;
    /* Non-NULL: announce sequences are drawn from this counter, shared with the origins of
     * the relay's other workers, so that publishers are ordered alike relay-wide (the newest
     * remaining one wins everywhere). Must outlive the origin. */
    _Atomic uint64_t *announce_seq;
    uint64_t max_frame_bytes; /* larger frames are refused (default 32 MiB) */
    uint64_t max_group_bytes; /* a group keeps at most this many payload bytes (default 32 MiB);
                                 older frames of a longer group are dropped */
    /* A broadcast lingers until `at` (moq_route_lost): re-arm the timer that calls
     * moq_origin_tick if it is set later than that. Must not call into the model. Optional
     * (then tick at least as often as the linger precision needed). */
    void (*linger_deadline)(void *ctx, uint64_t at);
    void *linger_ctx;
    /* A broadcast's life changed in a way an operator wants to hear about (enum
     * moq_broadcast_event). Must not call into the model. Optional. */
    void (*broadcast_event)(void *ctx, int event, const uint8_t *path, size_t path_len);
    void *broadcast_ctx;
} moq_origin_config;

/* What broadcast_event reports. */
enum moq_broadcast_event {
    MOQ_BROADCAST_LINGERING = 1, /* its publisher's last route was lost: kept for the linger */
    MOQ_BROADCAST_RESUMED = 2,   /* its publisher announced it again within the linger */
    MOQ_BROADCAST_EXPIRED = 3,   /* the linger ran out without its publisher: it ends */
    MOQ_BROADCAST_REPLACED = 4,  /* another publisher's content took the path over */
};

/* Defaults: id 0 (set it), linger 5 s, no track keep, no duration ceiling, unbounded
 * capacity, 32 MiB. */
void moq_origin_config_default(moq_origin_config *cfg);

/* A new origin, or NULL on OOM / invalid config (id 0 or >= 2^62). cfg is copied. */
moq_origin *moq_origin_new(const moq_origin_config *cfg);
/* See "Ownership" above. Never from a callback. NULL is a no-op. */
void moq_origin_free(moq_origin *origin);
uint64_t moq_origin_id(const moq_origin *origin);

/* Runs lingering-broadcast deadlines, cache expiry/eviction and the release of unused
 * tracks due at `now`. May invoke watch, subscription, follower and producer callbacks.
 * Call it at moq_origin_next_deadline() and at least about once a second. */
void moq_origin_tick(moq_origin *origin, uint64_t now);
/* The earliest time something becomes due (a linger deadline, a cache expiry, an unused
 * track's release), or UINT64_MAX when nothing is pending. Cost: one pass over the tracks. */
uint64_t moq_origin_next_deadline(const moq_origin *origin);
/* The earliest linger deadline alone, or UINT64_MAX. Cost: one pass over the lingering
 * broadcasts (for a driver that ticks at linger deadlines exactly and lets cache expiry wait
 * for its regular tick). */
uint64_t moq_origin_next_linger(const moq_origin *origin);

typedef struct moq_origin_stats {
    uint64_t broadcasts; /* announced (live or lingering) */
    uint64_t routes;
    uint64_t tracks;
    uint64_t subscriptions; /* open subscription handles */
    uint64_t watches;
    uint64_t groups_cached;
    uint64_t cached_bytes; /* payload bytes of cached groups */
    uint64_t evictions;    /* groups dropped for the byte budget */
    uint64_t expirations;  /* groups dropped for age */
} moq_origin_stats;

void moq_origin_stats_get(const moq_origin *origin, moq_origin_stats *out);

/* Inspection (the relay's /debug endpoints and status page). The snapshots point into the
 * model and are valid only during the callback; fn must not call into the model. */
typedef struct moq_broadcast_view {
    const uint8_t *path;
    size_t path_len;
    size_t routes;        /* routes attached (live, standby or withdrawn) */
    size_t bridge_routes; /* of those, bridges from another worker (moq_producer_ops.bridge) */
    size_t tracks;        /* track instances open */
    bool lingering;       /* lost its last publisher, ends unless one returns */
    const uint64_t *hops; /* the best usable route's hops, oldest first; NULL when none */
    size_t nhops;
} moq_broadcast_view;

typedef struct moq_track_view {
    const uint8_t *broadcast;
    size_t broadcast_len;
    const uint8_t *name;
    size_t name_len;
    size_t subscribers;
    size_t groups_cached;
    uint64_t cached_bytes; /* payload bytes of the cached groups */
    bool has_latest;
    uint64_t latest;                         /* highest group sequence seen */
    uint64_t groups_in, frames_in, bytes_in; /* delivered by the producer since creation */
    bool routed;                             /* a route serves it (false: stalled or ended) */
    bool bridged;                            /* that route is a bridge from another worker */
    const uint64_t *hops;                    /* the serving route's hops, oldest first */
    size_t nhops;
} moq_track_view;

/* Every announced or lingering broadcast / every open track, in creation order. Return the
 * number visited. */
size_t moq_origin_each_broadcast(const moq_origin *origin,
                                 void (*fn)(void *ctx, const moq_broadcast_view *b), void *ctx);
size_t moq_origin_each_track(const moq_origin *origin,
                             void (*fn)(void *ctx, const moq_track_view *t), void *ctx);

/* Calls fn for every broadcast under `prefix` that has a route visible to `exclude_hop`
 * (0 = no exclusion), with the best visible route's hops. fn must not call into the model.
 * Returns the number of broadcasts listed. Order is unspecified. */
typedef void (*moq_list_fn)(void *ctx, const uint8_t *path, size_t path_len, const uint64_t *hops,
                            size_t nhops);
size_t moq_origin_list(const moq_origin *origin, const uint8_t *prefix, size_t prefix_len,
                       uint64_t exclude_hop, moq_list_fn fn, void *ctx);

/* 0 when a broadcast is announced at `path` with a route visible to `exclude_hop`; copies
 * the best visible hops into hops[MOQ_MAX_HOPS] (may be NULL). MOQ_ERR_NOT_FOUND otherwise. */
int moq_origin_lookup(const moq_origin *origin, const uint8_t *path, size_t path_len,
                      uint64_t exclude_hop, uint64_t *hops, size_t *nhops);

/* ---------------------------------------------------------------------------------------
 * Producers: announcing broadcasts and serving tracks
 */

/* What a consumer wants from a track; the producer receives the aggregate of all
 * subscribers of the track (priority = max, ordered = AND, max latency = max clamped to
 * the track's max latency once known, start = min of explicit starts, end = max with any
 * unbounded end making it unbounded, info_only = AND). */
typedef struct moq_sub_prefs {
    uint8_t priority;
    bool ordered;
    uint64_t max_latency_ms;
    bool has_start;
    uint64_t start_group; /* first group wanted (inclusive) */
    bool has_end;
    uint64_t end_group; /* last group wanted (inclusive) */
    bool info_only;     /* wants only the track info (e.g. a lite-05 TRACK request) */
} moq_sub_prefs;

/* Publisher-side track properties (lite-05 TRACK_INFO). Defaults 0 / false / 5000 / 1000. */
typedef struct moq_track_info {
    uint8_t priority;
    bool ordered;
    uint64_t max_latency_ms;
    uint64_t timescale; /* timestamp units per second, never 0 */
} moq_track_info;

void moq_track_info_default(moq_track_info *info);

/*
 * Producer interface, one per route. All three track callbacks are required.
 *  - track_request: start serving `track` (open TRACK/SUBSCRIBE upstream) and write what
 *    arrives into it. Called when a track's first subscriber attaches, when a track moves
 *    to this route (failover, splice after linger, better route) and when a track is
 *    subscribed again after all subscribers left. Invoked from moq_origin_subscribe,
 *    moq_subscription_update, moq_origin_announce, moq_route_update, moq_route_unannounce,
 *    moq_route_lost, moq_route_withdraw, or any call that ends a subscription.
 *    A track that moves to another route of the same publisher moves make-before-break:
 *    when this route has a group in flight, it stays requested (no track_release yet) and
 *    may still begin and write groups up to the newest one the track had; the new route
 *    writes the groups after it. This route is released once its groups in flight ended.
 *  - track_update: the aggregate preferences changed (SUBSCRIBE_UPDATE). Optional.
 *  - track_release: stop; called exactly once for every track_request - when the last
 *    subscriber leaves, when the track moves to another route (after its groups in flight,
 *    see above: then from inside the call that ended the last of them), when this route is
 *    removed (from inside moq_route_unannounce / moq_route_lost), when the broadcast ends,
 *    and from inside moq_track_abort. After it returns the producer must not call track-level
 *    functions on the track, and the pointer may be gone. Groups the producer already
 *    began stay valid (it holds references) and may still be finished or aborted.
 *  - fetch_request: fill `group` (track `track`, sequence moq_group_sequence(group)) from
 *    upstream (lite-05 FETCH). Optional (NULL = this producer cannot fetch). Return 0 when
 *    accepted: the producer takes its own reference (moq_group_ref) and later appends
 *    frames and finishes or aborts it. Return < 0 to refuse: the model aborts the group
 *    with MOQ_REASON_NOT_FOUND. `track` is only valid during the call.
 */
typedef struct moq_producer_ops {
    void (*track_request)(void *ctx, moq_route *route, moq_track *track,
                          const moq_sub_prefs *prefs);
    void (*track_update)(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs);
    void (*track_release)(void *ctx, moq_route *route, moq_track *track);
    int (*fetch_request)(void *ctx, moq_route *route, moq_track *track, moq_group *group,
                         uint8_t priority);
    /* Routes of these ops carry another worker's broadcast into this origin (a bridge
     * between worker threads): consumers passing MOQ_EXCLUDE_BRIDGES do not see them. */
    bool bridge;
} moq_producer_ops;

/* The exclude_hop of a watch, subscription or fetch that must only see this worker's own
 * routes (what a bridge to another worker re-exports). Not a valid origin id. */
#define MOQ_EXCLUDE_BRIDGES UINT64_MAX

/*
 * Announce a broadcast at `path` reached through `hops` (oldest first, <= MOQ_MAX_HOPS;
 * the chain as it should be stored and re-advertised) served by ops/ctx (ops must stay
 * valid while the route lives). Announcing again with the same ops and ctx at the same
 * path replaces that producer's chain (like moq_route_update) and returns the same route.
 *
 * Publishers. The first hop of a chain is the origin id of the publisher whose content it
 * carries (for a chain starting with unknown ids, 0: the first known id; no hops: this
 * origin). Several routes of the same publisher are alternatives: the active one has the
 * shortest chain, ties broken by an FNV-1a key of (path, hops) (the same on every relay),
 * exact ties by the newest route; a producer announcing a path that is lingering is
 * spliced in (subscriptions there are re-requested from it). A route of ANOTHER publisher
 * (or of an unknown one: all ids 0) is new content and takes the path over at once: the
 * broadcast ends (watchers see it end, subscriptions abort with MOQ_REASON_DROPPED) and a
 * new broadcast is announced with this route; the previous publisher's routes stay as
 * standbys, invisible, and take the path over in turn when the current publisher's last
 * route is gone (unannounced, withdrawn, or lost and its linger expired).
 * Errors: MOQ_ERR_INVALID (too many hops or path parts, a chain containing this origin's
 * id - a loop - or missing callbacks), MOQ_ERR_NOMEM.
 * May invoke watch callbacks and producer callbacks (of this and other routes).
 */
int moq_origin_announce(moq_origin *origin, const uint8_t *path, size_t path_len,
                        const uint64_t *hops, size_t nhops, const moq_producer_ops *ops, void *ctx,
                        moq_route **out);

/* Replace the route's hop chain (a restart / route change by the same producer). Watchers
 * whose best visible route changed see a restart; tracks move if another route is now
 * better for them. A chain of another publisher takes the path over (see announce), and
 * so does a withdrawn route announcing again. Errors as for announce (the route is
 * unchanged then); MOQ_ERR_CLOSED for a withdrawn route whose broadcast ended. */
int moq_route_update(moq_route *route, const uint64_t *hops, size_t nhops);

/* Like moq_route_update, but the route now carries new content (what it served was
 * replaced at its source, as if it was withdrawn and announced again at once): it takes
 * the path over as a new announcement would, with no moment without it in between. */
int moq_route_renew(moq_route *route, const uint64_t *hops, size_t nhops);

/* Announce sequences. Every announcement of new content (moq_origin_announce, a renewal, a
 * chain of another publisher) draws the next sequence (config announce_seq). New content
 * takes the path over only when its sequence is above the current publisher's (or, when
 * no route of it remains, above every standby's); when the current publisher's last route
 * goes, the standby with the highest sequence takes over. A route mirroring another
 * worker's route of the same relay (a bridge) passes the sequence its source drew instead,
 * with these two; a route announced with a sequence below the current publisher's waits as
 * a standby. */
int moq_origin_announce_seq(moq_origin *origin, const uint8_t *path, size_t path_len,
                            const uint64_t *hops, size_t nhops, uint64_t seq,
                            const moq_producer_ops *ops, void *ctx, moq_route **out);
int moq_route_renew_seq(moq_route *route, const uint64_t *hops, size_t nhops, uint64_t seq);

/* Graceful unannounce: the route is removed now and freed; if it was the last one the
 * broadcast ends immediately (watchers see it end, its live tracks abort with
 * MOQ_REASON_DROPPED). A track that was already finished does not abort: its subscribers
 * keep receiving the groups below its final sequence that they were given or that are
 * still cached or being written (a publisher finishes its tracks, then unannounces).
 * Calls track_release on this route's tracks first. */
void moq_route_unannounce(moq_route *route);

/* Ungraceful loss (session gone). As unannounce, except that losing the last route keeps
 * the broadcast announced for the linger window from `now`: subscribers stall, and a
 * producer announcing the path before the deadline is spliced in. */
void moq_route_lost(moq_route *route, uint64_t now);

/* The producer stopped announcing, but what it serves keeps flowing until it ends it. The
 * route is no longer advertised nor chosen for anything new; if it was the broadcast's
 * last route, the broadcast ends now for watchers and new subscribers (as with
 * unannounce), except for the tracks this route serves: their subscribers keep receiving
 * until the producer finishes or aborts them, or moq_route_unannounce / moq_route_lost
 * removes the route (then a track still live aborts with MOQ_REASON_DROPPED). Tracks
 * that another route can serve move there. Announcing the path again with the same ops
 * and ctx while the broadcast is still live revives the route. */
void moq_route_withdraw(moq_route *route);

const uint8_t *moq_route_path(const moq_route *route, size_t *len);
const uint64_t *moq_route_hops(const moq_route *route, size_t *nhops);

/* --- Producer writes into a track it serves (route = the route that got track_request;
 * any other route gets MOQ_ERR_CLOSED). --- */

const uint8_t *moq_track_name(const moq_track *track, size_t *len);
const uint8_t *moq_track_path(const moq_track *track, size_t *len);
/* The aggregate the producer was last told about. */
const moq_sub_prefs *moq_track_prefs(const moq_track *track);

/* Publish the track info (max latency is clamped to cache_duration). The first call makes
 * the info known: subscribers get on_info. Later calls replace it silently. A track that
 * gets a group before any info uses the defaults. MOQ_ERR_INVALID for timescale 0. */
int moq_track_set_info(moq_track *track, moq_route *route, const moq_track_info *info);
/* The track info, or NULL while unknown. */
const moq_track_info *moq_track_get_info(const moq_track *track);

/*
 * Start group `sequence` (groups may arrive in any order and be written in parallel).
 * On success *out is a new reference owned by the caller (unref when done writing).
 * Subscribers whose range includes it get on_group before this returns.
 * Errors: MOQ_ERR_CLOSED (route mismatch, track aborted, sequence >= final sequence of
 * a finished track, or a route the track moved away from beginning a group after the
 * newest it had), MOQ_ERR_EXISTS (the sequence is cached and not superseded, or it is not
 * after the newest group the track had when it moved to this route: that one and those
 * before belong to the previous route), MOQ_ERR_NOMEM. A cached group with the same
 * sequence that was aborted is replaced. May release a route the track moved away from.
 */
int moq_track_begin_group(moq_track *track, moq_route *route, uint64_t sequence, uint64_t now,
                          moq_group **out);

/* Group flags, opaque to the model, visible to consumers from on_group on. */
#define MOQ_GROUP_DATAGRAM 0x1u /* arrived as a datagram: one frame, may leave as one too */

/* moq_track_begin_group with flags set before any subscriber is told about the group. */
int moq_track_begin_group_flags(moq_track *track, moq_route *route, uint64_t sequence, uint64_t now,
                                uint32_t flags, moq_group **out);

/* The track ends before `final_sequence` (exclusive; groups below it may still arrive and
 * be written). Subscribers get on_finish. MOQ_ERR_INVALID when a group >= final_sequence
 * exists already, MOQ_ERR_CLOSED when finished/aborted or route mismatch. */
int moq_track_finish(moq_track *track, moq_route *route, uint64_t final_sequence);

/* The track failed or was refused (`code` is passed through to consumers). track_release
 * is called on `route` first, then open cached groups abort with the same code and
 * subscribers get on_abort. New subscribers of the name get a fresh track (the verdict is
 * not cached). From a route the track moved away from, it only releases that route. */
int moq_track_abort(moq_track *track, moq_route *route, uint64_t code);

/* ---------------------------------------------------------------------------------------
 * Groups and frames
 */

/*
 * A frame: `payload_len` bytes at `payload_off` in `chunk`, a timestamp in the track's
 * timescale, up to two opaque byte ranges in the same chunk that the engine reserved for
 * encoded wire headers of different protocol families (hdr_len 0 = unused), and one more
 * opaque range, `side_len` bytes at `side_off`, for what one protocol carries alongside the
 * payload and the others drop (IETF object extension headers; 0 = none). The model never
 * interprets them. As stored in a group, `chunk` holds one reference owned by the group.
 */
typedef struct moq_frame {
    moq_chunk *chunk;
    uint32_t payload_off;
    uint32_t payload_len;
    uint64_t timestamp;
    uint16_t hdr_off[2];
    uint16_t hdr_len[2];
    uint32_t side_off;
    uint32_t side_len;
} moq_frame;

enum moq_group_state {
    MOQ_GROUP_OPEN = 0,
    MOQ_GROUP_FINISHED = 1,
    MOQ_GROUP_ABORTED = 2,
};

moq_group *moq_group_ref(moq_group *group);
void moq_group_unref(moq_group *group);

uint64_t moq_group_sequence(const moq_group *group);
uint32_t moq_group_flags(const moq_group *group);
/* State; *code (may be NULL) receives the abort code when aborted. */
int moq_group_state(const moq_group *group, uint64_t *code);
/* Frame indices are absolute within the group: [first .. count). `first` > 0 only when
 * the per-group byte cap dropped old frames (a reader behind it has lagged). */
uint64_t moq_group_frame_count(const moq_group *group);
uint64_t moq_group_first_frame(const moq_group *group);
/* The frame at absolute index i, or NULL when dropped / not yet written. The pointer is
 * valid until the group is next appended to; the frame's chunk lives as long as the group
 * (take a chunk reference to keep bytes beyond that, e.g. until the peer acknowledges). */
const moq_frame *moq_group_frame(const moq_group *group, uint64_t i);
/* Payload bytes currently held by the group. */
uint64_t moq_group_bytes(const moq_group *group);

/*
 * Append a frame (producer). Takes over frame->chunk's reference in every case. The
 * payload range, header ranges and side range must lie within chunk->len (else MOQ_ERR_INVALID).
 * A payload above max_frame_bytes is refused with MOQ_ERR_TOO_LARGE and aborts the group
 * with MOQ_REASON_FRAME_TOO_LARGE. MOQ_ERR_CLOSED when the group is finished or aborted
 * (for example expired or evicted meanwhile). Followers get on_frames before this returns;
 * cache expiry and eviction may run (any callbacks).
 */
int moq_group_append(moq_group *group, const moq_frame *frame, uint64_t now);
/* Part of the next frame arrived (producer), the rest is on its way: the group is being
 * written, so its age in the cache counts from now, as after an append. No callbacks. */
void moq_group_touch(moq_group *group, uint64_t now);
/* Finish (all frames written). Followers get on_end. MOQ_ERR_CLOSED if not open. May
 * release a route its track moved away from (track_release). */
int moq_group_finish(moq_group *group, uint64_t now);
/* Abort with `code`; the group leaves the cache. Followers get on_end. MOQ_ERR_CLOSED if
 * not open (a finished group cannot be aborted). */
int moq_group_abort(moq_group *group, uint64_t code);

/* Following a group: notifications about frames appended and the end, for a consumer that
 * writes the group downstream (one per subscriber stream / fetch). Callbacks report changes
 * after moq_group_follow; read the current state right after following.
 *  - on_frames: the group now has `count` frames (absolute). From moq_group_append.
 *  - on_end: the group finished or was aborted (state, code). From moq_group_finish,
 *    moq_group_abort, and any call that expires, evicts or replaces groups or aborts a
 *    track. The follower stays allocated until moq_follower_close. */
typedef struct moq_follower_ops {
    void (*on_frames)(void *ctx, moq_follower *follower, moq_group *group, uint64_t count);
    void (*on_end)(void *ctx, moq_follower *follower, moq_group *group, int state, uint64_t code);
} moq_follower_ops;

/* NULL on OOM. The follower holds a group reference until closed. */
moq_follower *moq_group_follow(moq_group *group, const moq_follower_ops *ops, void *ctx);
moq_group *moq_follower_group(const moq_follower *follower);
void moq_follower_close(moq_follower *follower);

/* ---------------------------------------------------------------------------------------
 * Consumers: announcement watches
 */

enum moq_announce_kind {
    MOQ_ANNOUNCE_ACTIVE = 1,  /* a broadcast became visible */
    MOQ_ANNOUNCE_ENDED = 2,   /* it is gone (hops empty) */
    MOQ_ANNOUNCE_RESTART = 3, /* still there, but its best visible route's hops changed */
};

typedef struct moq_announce_event {
    int kind;
    const uint8_t *path; /* full path */
    size_t path_len;
    const uint8_t *suffix; /* path relative to the watched prefix ("" = the prefix itself) */
    size_t suffix_len;
    const uint64_t *hops; /* best route visible to this watch (ACTIVE / RESTART) */
    size_t nhops;
    uint64_t seq; /* that route's announce sequence (ACTIVE / RESTART) */
    bool initial; /* part of the initial set delivered inside moq_origin_watch */
    /* ENDED only: another publisher's content took the path over, and its broadcast is
     * announced to this watch (ACTIVE) right after this event, within the same call. */
    bool replaced;
} moq_announce_event;

/* on_announce runs from moq_origin_watch (initial set), announce/update/unannounce/lost,
 * and moq_origin_tick (linger expiry). */
typedef struct moq_watch_ops {
    void (*on_announce)(void *ctx, moq_watch *watch, const moq_announce_event *ev);
} moq_watch_ops;

/*
 * Watch broadcasts under `prefix`. Routes whose chain contains `exclude_hop` (0 = none)
 * are invisible to this watch. A watch excluding MOQ_EXCLUDE_BRIDGES (a bridge telling the
 * other workers what this one publishes) also sees a broadcast whose only visible routes are
 * standbys, through the newest of them: each worker's publishers reach the others, so every
 * worker knows which remaining one is the newest; for it, a change of the advertised
 * route's sequence is a RESTART. The initial set - every visible broadcast under the prefix
 * with its best visible route, events flagged `initial` - is delivered before this
 * returns; live updates follow. A broadcast lingering after ungraceful loss stays
 * announced. MOQ_ERR_INVALID / MOQ_ERR_NOMEM.
 */
int moq_origin_watch(moq_origin *origin, const uint8_t *prefix, size_t prefix_len,
                     uint64_t exclude_hop, const moq_watch_ops *ops, void *ctx, moq_watch **out);
void moq_watch_close(moq_watch *watch);

/* ---------------------------------------------------------------------------------------
 * Consumers: subscriptions and fetches
 */

/*
 * Subscription callbacks:
 *  - on_info: the track info became known (at most once; replayed inside subscribe when
 *    already known). The lite-05 TRACK answer.
 *  - on_group: a group to deliver (sequence in range, each group object once, `group`
 *    borrowed). Order: replayed cached groups in sequence order first, then live ones in
 *    arrival order. Not called for info_only subscriptions.
 *  - on_finish: the track ends before `final_sequence` (exclusive); groups below it may
 *    still come.
 *  - on_abort: the subscription failed for good: the producer refused or failed the track
 *    (its code), the broadcast ended before the track finished (MOQ_REASON_DROPPED), or
 *    no route remains that this subscriber may use (MOQ_REASON_UNROUTABLE). No callbacks
 *    follow.
 *  Invoked from moq_origin_subscribe (replay and synchronous producer reactions),
 *  moq_subscription_update, producer writes, route changes and moq_origin_tick.
 */
typedef struct moq_subscriber_ops {
    void (*on_info)(void *ctx, moq_subscription *sub, const moq_track_info *info);
    void (*on_group)(void *ctx, moq_subscription *sub, moq_group *group);
    void (*on_finish)(void *ctx, moq_subscription *sub, uint64_t final_sequence);
    void (*on_abort)(void *ctx, moq_subscription *sub, uint64_t code);
} moq_subscriber_ops;

/*
 * Subscribe to (path, name). Subscribers of one track share one upstream request.
 * Without prefs->has_start the subscription starts at the latest cached group (from its
 * first frame); when none is cached it gets every group that arrives, in arrival order,
 * also one older than a group it already got (an upstream may send its first groups newest
 * first). With has_start, cached groups >= start are replayed in order, then live ones
 * follow. Routes containing exclude_hop (0 = none) are
 * not used for this subscriber.
 * Errors: MOQ_ERR_NOT_FOUND (no broadcast at path, or no route visible to exclude_hop),
 * MOQ_ERR_INVALID, MOQ_ERR_NOMEM.
 */
int moq_origin_subscribe(moq_origin *origin, const uint8_t *path, size_t path_len,
                         const uint8_t *name, size_t name_len, uint64_t exclude_hop,
                         const moq_sub_prefs *prefs, const moq_subscriber_ops *ops, void *ctx,
                         moq_subscription **out);

/* Change preferences (SUBSCRIBE_UPDATE). A lower start or a higher (or removed) end
 * replays the cached groups newly in range; clearing info_only starts delivery like a new
 * subscription. The producer sees the new aggregate. MOQ_ERR_CLOSED after on_abort. */
int moq_subscription_update(moq_subscription *sub, const moq_sub_prefs *prefs);
/* Unsubscribe and free. The last subscriber leaving releases the producer. */
void moq_subscription_close(moq_subscription *sub);

const moq_sub_prefs *moq_subscription_prefs(const moq_subscription *sub);
/* The first group the subscription delivers: its start group, or the latest group cached
 * when it began. False when it takes every group that arrives (nothing was cached then) or
 * wants only the track info. */
bool moq_subscription_first_group(const moq_subscription *sub, uint64_t *seq);
/* The track info, or NULL while unknown or after the subscription failed. */
const moq_track_info *moq_subscription_info(const moq_subscription *sub);

/*
 * Fetch group `sequence` of (path, name). A cached group - also one whose fetch is already
 * in progress (coalescing) - is returned at once and its age refreshed. Otherwise, when
 * `forward` is set and the best visible route has fetch_request, an open group is
 * registered in the cache and requested from that producer. *out is a new reference the
 * caller must drop; follow it to learn about frames and the end.
 * Errors: MOQ_ERR_NOT_FOUND (no visible broadcast, not cached and not forwarded, or the
 * producer refused), MOQ_ERR_INVALID, MOQ_ERR_NOMEM.
 */
int moq_origin_fetch(moq_origin *origin, const uint8_t *path, size_t path_len, const uint8_t *name,
                     size_t name_len, uint64_t exclude_hop, uint64_t sequence, uint8_t priority,
                     bool forward, uint64_t now, moq_group **out);

/* What the cache holds of a track (IETF TRACK_STATUS, the range of a standalone FETCH). */
typedef struct moq_track_cache {
    bool known;           /* the track is open (subscribed, kept or being fetched) */
    bool has_groups;      /* a group that was not aborted is cached */
    uint64_t first, last; /* the lowest and the highest such group */
    uint64_t last_frames; /* frames written into `last` so far */
    bool finished;        /* the producer ended the track before final_seq */
    uint64_t final_seq;
} moq_track_cache;

/* The cache state of (path, name), as seen with exclude_hop. No callbacks, no side effects.
 * MOQ_ERR_NOT_FOUND when no broadcast is visible at path, MOQ_ERR_INVALID. */
int moq_origin_track_cache(const moq_origin *origin, const uint8_t *path, size_t path_len,
                           const uint8_t *name, size_t name_len, uint64_t exclude_hop,
                           moq_track_cache *out);

#endif
