/*
 * session.h - the moq-lite session engine: one moq-lite 03/04/05 session on any transport
 * (raw QUIC, WebTransport, qmux over WebSocket), bridging its peer and a model origin.
 *
 * Both roles run on every session, limited by the session's permissions:
 *  - serving: what the peer may subscribe to (perms.subscribe, relative to perms.root; see
 *    auth/auth.h for moq_perms) is
 *    served from the origin - announcements (the peer's Announce streams), track info
 *    (TRACK), subscriptions (SUBSCRIBE -> one uni stream per group), FETCH and PROBE;
 *  - consuming: for what the peer may publish (perms.publish) the engine opens Announce
 *    streams to the peer and puts the broadcasts it announces into the origin as routes;
 *    when the origin asks for one of their tracks, it subscribes upstream (TRACK then
 *    SUBSCRIBE on 05) and writes the groups it receives into the model, once, for every
 *    downstream subscriber.
 *
 * Authorization: the engine calls cfg->authorize once it knows the request path: at once
 * on 03/04 and on transports that carry a URL, after the peer's SETUP on raw-QUIC 05 (its
 * Path parameter). Until then the peer's streams wait (bounded). A refusal closes the
 * session with the code authorize returns. Requests outside the permissions are refused
 * with Unauthorized (6): TRACK, SUBSCRIBE and FETCH (and, with refuse_outside_grant, announce
 * requests) by resetting their stream; with refuse_outside_grant a broadcast the peer
 * announces outside perms.publish closes the session ("not allowed to publish <path>"), and
 * so does a broadcast under MOQ_INTERNAL_PREFIX from a peer without a token
 * (perms.anonymous): the relays of a cluster advertise themselves there and dial what they
 * read, with the cluster credential.
 *
 * Lifetime: moq_session_new attaches the session to the transport as its application.
 * The session ends when the transport closes (by the peer, by moq_session_close or by an
 * error); cfg->closed is then called once and the session frees itself and everything it
 * holds in the model (its routes are reported lost, so they linger). The transport frees
 * itself after that. The config strings, the clock and the origin must outlive the session.
 *
 * Time (sans-I/O): the engine reads time only from cfg->clock and arms no timer. Its
 * timers (the peer's SETUP timeout, the token's expiry, bandwidth probe reports, routes
 * that wait for their subscriptions to end) are one deadline: whenever it changes the
 * engine calls cfg->timer with the new one, and the driver (re)arms one timer that calls
 * moq_session_on_timer(s, now) once it has passed. A driver without cfg->timer polls
 * moq_session_next_deadline after every call into the engine and every transport event.
 */
#ifndef MOQ_MOQ_SESSION_H
#define MOQ_MOQ_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "model/model.h"
#include "moq/version.h"
#include "transport/transport.h"
#include "util/time.h"

typedef struct moq_session moq_session;

/* Milestones of a session's requests, reported through cfg->event (the `moq` tool turns them
 * into its --ready-file lines). Paths are global (root joined), NUL-terminated. */
enum moq_session_event_kind {
    /* The peer accepted our announce request under `path`: lite-05 ANNOUNCE_OK. lite-03/04
     * acknowledge nothing; their first ANNOUNCE on the stream stands for it. Once per
     * request. */
    MOQ_SESSION_ANNOUNCES_OPEN,
    /* We told the peer that broadcast `path` is active, answering its announce request
     * (the initial set, or later). */
    MOQ_SESSION_ANNOUNCED,
    /* The peer subscribed to `path`/`track` and the subscription is attached to the origin. */
    MOQ_SESSION_PEER_SUBSCRIBED,
    /* The peer accepted our subscription to `path`/`track`: lite-03/04 SUBSCRIBE_OK;
     * lite-05 answers nothing before its first group, so SUBSCRIBE_START or the first group,
     * whichever comes first. Once per upstream subscription. */
    MOQ_SESSION_SUBSCRIBE_ACCEPTED,
};

struct moq_session_event {
    enum moq_session_event_kind kind;
    const char *path;
    const char *track; /* "" for the announcement kinds */
};

/* With refuse_outside_grant, the close reason (code 6) of a session that announced a
 * broadcast outside its publish grant: this text, then the broadcast's path. */
#define MOQ_SESSION_PUBLISH_REFUSED "not allowed to publish "

/* The relay's own namespace: cluster nodes advertise themselves under it. */
#define MOQ_INTERNAL_PREFIX ".internal"

struct moq_session_config {
    moq_origin *origin;
    /* The engine's only source of time (util/time.h). Required. */
    const moq_clock *clock;
    /* The engine's next deadline changed to `at` (clock->now_us time, UINT64_MAX = none):
     * arm the timer that calls moq_session_on_timer. Called from inside engine calls and
     * transport events (also from moq_session_new, with the new session); must not call
     * into the session. Not called after `closed`: stop the timer there. Optional. */
    void (*timer)(void *ctx, moq_session *s, uint64_t at);
    /* Client side, raw QUIC, lite-05: the Path parameter of our SETUP ("/path?query"). */
    const char *setup_path;
    /* Client side, protocol "moql": the moq-lite version offered in the compat SETUP
     * (MOQ_LITE_01 or MOQ_LITE_02). 0 on other protocols. */
    int compat_version;
    /* Server side, protocol "moql": the version names the compat SETUP may choose
     * ("moq-lite-02", "moq-lite-01", "moq-transport-14"); none = all three. Not copied: must
     * outlive the session. */
    const char *const *compat_allowed;
    size_t n_compat_allowed;
    /* Offer bandwidth probes (SETUP Probe = report) when the transport can measure. */
    bool offer_probe;
    /* Largest frame accepted from the peer (default 32 MiB); inbound frames in progress
     * may hold at most max_inbound_bytes in total (default 64 MiB). */
    uint64_t max_frame_bytes;
    uint64_t max_inbound_bytes;
    /* Server, lite-05: time allowed for the peer's SETUP before the session is closed with
     * Timeout (3) "no SETUP from the peer" (default 10 s). */
    uint64_t setup_timeout_us;
    /* Decide what the peer may do. `path` is "/path?query" (the transport URL, the SETUP
     * Path, or "/" when there is none); role is enum moq_role of the peer's SETUP (BOTH
     * when absent). Fill *perms (auth/auth.h; the engine takes ownership of it) and return
     * 0, or return a moq error code (> 0, e.g. 6 Unauthorized) to refuse. Required. */
    uint64_t (*authorize)(void *ctx, moq_session *s, const char *path, int role, moq_perms *perms);
    /* The origin started (active) or stopped pulling a track from this session's peer;
     * path is the broadcast's global path and hops the route's chain (oldest first).
     * Optional: clustering uses it to open direct links to the relay a broadcast comes
     * from. Must not close the session from inside the call. */
    void (*upstream)(void *ctx, moq_session *s, const uint8_t *path, size_t len,
                     const uint64_t *hops, size_t nhops, bool active);
    /* Server side: refuse what the peer's grant does not allow instead of ignoring it, and
     * log each refusal at info with the path and the grant. Announce requests outside
     * perms.subscribe are reset; to learn what the peer publishes outside perms.publish the
     * engine also asks it for its announcements at the root (unless the grant covers the
     * root or the peer declared the subscriber role), and such a broadcast closes the
     * session, the only refusal a publishing client notices. */
    bool refuse_outside_grant;
    /* The peer refused our announce request for `prefix` (relative to the root): it reset
     * the stream with Unauthorized (6), we may not subscribe there. Optional; may close the
     * session. */
    void (*announce_refused)(void *ctx, moq_session *s, const char *prefix);
    /* A milestone (enum moq_session_event_kind) was reached. Optional; must not call into
     * the session. */
    void (*event)(void *ctx, moq_session *s, const struct moq_session_event *ev);
    /* The session has ended (after authorization or not). Optional. */
    void (*closed)(void *ctx, moq_session *s, uint64_t code, const char *reason);
    void *ctx;
};

/* Start a session on an established transport whose protocol is a moq-lite version.
 * Returns NULL (and closes the transport with an error code) when the protocol is not one
 * we implement or memory runs out. */
moq_session *moq_session_new(moq_transport *t, const struct moq_session_config *cfg);

/* For the moq-transport engine: its server read a compat CLIENT_SETUP on bidi stream sid
 * (protocol "moql") and chose moq-lite version v (01/02). The session, attached to no
 * engine now (s->ietf released, s->t, s->cfg and stats kept), becomes a moq-lite session:
 * it answers with SERVER_SETUP on sid, which stays open as the session stream, and reads
 * `rest` (what followed the CLIENT_SETUP there) and everything after. */
void moq_session_compat_adopt(moq_session *s, int64_t sid, moq_version v, const uint8_t *rest,
                              size_t len, bool fin);

/* Before a graceful close: tell the peer we are going away (IETF sessions: GOAWAY).
 * Returns whether a message went out (moq-lite sessions: never; their close says it). */
bool moq_session_goaway(moq_session *s);

/* Close the session (and its transport) with a moq error code; `closed` follows. */
void moq_session_close(moq_session *s, uint64_t code, const char *reason);

/* The earliest time moq_session_on_timer has work, or UINT64_MAX. */
uint64_t moq_session_next_deadline(const moq_session *s);
/* Run what is due at `now` (clock->now_us time; calling early does nothing harmful). A
 * timer may close the session: `closed` then follows from the transport, never from inside
 * this call. Afterwards the next deadline is reported through cfg->timer (even when it did
 * not change, so a driver whose timer fired early re-arms it). */
void moq_session_on_timer(moq_session *s, uint64_t now);

moq_transport *moq_session_transport(const moq_session *s);
/* The permissions in force, or NULL before authorization. */
const moq_perms *moq_session_perms(const moq_session *s);
/* The negotiated moq-lite version name ("moq-lite-05"). */
const char *moq_session_version(const moq_session *s);
/* The peer's origin id from its SETUP (05), 0 when unknown. */
uint64_t moq_session_peer_origin(const moq_session *s);

/* Streams toward the peer that still hold data it has not received: our group, fetch and
 * SETUP streams until the peer acknowledged everything on them (or they were reset), and
 * other streams while they have unsent bytes. moq_session_close discards what is in
 * flight, so a client that must deliver everything waits for 0 first. */
size_t moq_session_unacked_streams(const moq_session *s);

struct moq_session_stats {
    uint64_t announces_in;  /* broadcasts the peer announced to us (live routes) */
    uint64_t subscriptions; /* downstream subscriptions the peer holds */
    uint64_t groups_out;    /* group streams opened toward the peer */
    uint64_t groups_in;     /* group streams received from the peer */
    uint64_t frames_out;
    uint64_t frames_in;
    uint64_t bytes_out;      /* payload bytes queued toward the peer */
    uint64_t bytes_in;       /* payload bytes received from the peer */
    uint64_t groups_dropped; /* group streams reset because the peer fell behind */
    uint64_t streams;        /* streams open now (filled by moq_session_stats_get) */
};

void moq_session_stats_get(const moq_session *s, struct moq_session_stats *out);

/* A frame for moq_group_append as the engine sends it: a new chunk with room for `size`
 * payload bytes at f->payload_off (the caller copies them in before appending) and the
 * wire headers of every moq-lite version already encoded in front of them. `prev_ts` is the
 * timestamp of the previous frame in the same group (0 for the first), `ts` this frame's,
 * in the track's timescale. The caller owns f->chunk's reference until it hands the frame
 * to moq_group_append. Returns 0, MOQ_ERR_TOO_LARGE (size over 4 GiB) or MOQ_ERR_NOMEM. */
int moq_frame_alloc(moq_frame *f, uint64_t prev_ts, uint64_t ts, uint64_t size);
/* The same with `side_len` more bytes after the payload for f->side_off / f->side_len (the
 * caller copies them in too). */
int moq_frame_alloc_side(moq_frame *f, uint64_t prev_ts, uint64_t ts, uint64_t size,
                         uint32_t side_len);

#endif
