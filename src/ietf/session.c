/* The moq-transport session engine (server side, control-stream drafts). */
#include "ietf/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ietf/codec.h"
#include "ietf/objects.h"
#include "moq/path.h"
#include "moq/session_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

/* Request ids we let the peer use at once; raised by half of it as they are used. */
#define REQUEST_WINDOW 1024
/* Bytes of subgroup streams held while their track alias is unknown (all of a session's
 * streams together: a group of a frame of several megabytes may overtake SUBSCRIBE_OK). */
#define MAX_ALIAS_WAIT_BYTES   (16 * 1024 * 1024)
#define MAX_ALIAS_WAIT_STREAMS 64
/* Above every group's ((priority << 56) | order, order < 2^48). */
#define MESSAGE_STREAM_PRIORITY UINT64_MAX
/* Our requests the peer may leave unanswered. */
#define MAX_PUBLISHED_NS 10000
/* Aliases of ended subscriptions remembered to stop their late streams. */
#define MAX_RELEASED_ALIASES 4096
/* A control message is at most a 16-bit length plus its header. */
#define MAX_MSG_BYTES (65535 + 16)

/* Refusal codes common to draft-14's *_ERROR messages and REQUEST_ERROR (15+). */
#define SUB_ERR_INTERNAL      0x0
#define SUB_ERR_UNAUTHORIZED  0x1
#define SUB_ERR_NOT_SUPPORTED 0x3

/* "Track does not exist": SUBSCRIBE_ERROR 0x4 on draft-14, REQUEST_ERROR 0x10 after it. */
static uint64_t err_does_not_exist(const moq_ietf_caps *c)
{
    return c->request_error ? MOQ_IETF_REQ_DOES_NOT_EXIST : 0x4;
}

/* Bidi streams of one request each (draft-16 namespaces, every request from draft-17):
 * IS_REQ until its first message names the request, then IS_NS (SUBSCRIBE_NAMESPACE),
 * IS_SUB (the peer's SUBSCRIBE), IS_PUBNS (its PUBLISH_NAMESPACE) or IS_UP (our SUBSCRIBE
 * to the peer). IS_SETUP: the peer's SETUP uni stream (draft-17+). Client role: IS_NSUB is
 * our SUBSCRIBE_NAMESPACE (16+), IS_PUBOUT our PUBLISH_NAMESPACE (17+). */
enum is_kind {
    IS_NEW,
    IS_CONTROL,
    IS_GROUP_IN,
    IS_GROUP_OUT,
    IS_REQ,
    IS_NS,
    IS_SUB,
    IS_PUBNS,
    IS_UP,
    IS_SETUP,
    IS_NSUB,
    IS_PUBOUT,
    IS_IGNORE
};

struct moq_ietf_engine;
struct dsub;
struct usub;

typedef struct istream {
    struct moq_ietf_engine *e;
    int64_t sid;
    enum is_kind kind;
    bool bidi;
    bool send_done;
    bool recv_done;
    void *obj;  /* struct gin / gout / nswatch / dsub / pubns / usub */
    moq_buf in; /* message streams: bytes of a message not complete yet */
    moq_list link;
} istream;

/* A group arriving from the peer on a subgroup stream. */
struct gin {
    struct moq_ietf_engine *e;
    istream *st; /* NULL once a stream that came whole while waiting for its alias closed */
    moq_ietf_sg_parser p;
    struct usub *us; /* NULL while the alias is unknown */
    moq_group *group;
    struct frame_asm fa;
    moq_buf ext;             /* the next object's extension block as it arrives */
    uint64_t declared_scale; /* the track's TIMESCALE (0 = none), object Timestamps' units */
    uint64_t track_scale;    /* the model track's timescale, the frames' units */
    bool waiting;            /* alias unknown: bytes held below */
    moq_buf held;
    bool held_fin;
    moq_list wait_link;
};

/* A group we send on a subgroup stream. */
struct gout {
    struct dsub *ds;
    istream *st; /* NULL while waiting for stream credit */
    moq_follower *follower;
    moq_group *group;
    uint64_t seq;
    uint64_t next;
    bool queued, blocked, fin_pending, fin_sent;
    moq_list link;  /* ds->groups */
    moq_list qlink; /* e->queue */
};

/* The peer's subscription to a track of the origin. */
struct dsub {
    struct moq_ietf_engine *e;
    istream *st; /* its request stream (17+), NULL on the control stream */
    uint64_t request_id;
    moq_subscription *sub;
    moq_list groups;
    size_t inflight;
    uint64_t streams;
    bool finished, over;
    bool ordered;        /* GROUP_ORDER ascending: oldest group first */
    uint8_t priority;    /* moq-lite's sense: higher is more important */
    moq_sub_prefs prefs; /* what the model was last asked for */
    moq_buf path, track; /* the track's global path and name (for a joining FETCH) */
};

/* A broadcast the peer published to us (PUBLISH_NAMESPACE). */
struct pubns {
    struct moq_ietf_engine *e;
    istream *st;         /* its request stream (17+) */
    uint64_t request_id; /* of the PUBLISH_NAMESPACE */
    char *path;          /* relative to the root */
    moq_route *route;
    struct nsub *ns; /* client, 16+: the NAMESPACE entry that made it */
    /* The peer ended the announcement while a subscription of ours still received from it:
     * the route is withdrawn and goes once they all ended, or at ending_deadline. */
    bool ending;
    uint64_t ending_deadline;
    int busy; /* inside a call that may release its tracks: not freed from below */
    moq_list link;
};

/* A track we subscribed to upstream, for the origin. */
struct usub {
    struct moq_ietf_engine *e;
    istream *st; /* our request stream (17+) */
    struct pubns *pn;
    moq_track *track;
    uint64_t request_id;
    uint64_t alias;
    uint8_t priority;      /* the subscriber priority last sent (IETF sense: 0 is the highest) */
    uint8_t want_priority; /* the one the subscribers want, sent once it may be */
    uint64_t start_group, start_object; /* where SUBSCRIBE_OK says the subscription starts */
    uint64_t timescale; /* the track's TIMESCALE property in SUBSCRIBE_OK, 0 = none declared */
    bool ok, released, has_seq;
    bool finished; /* PUBLISH_DONE and all its streams came: the track was ended */
    uint64_t max_seq;
    uint64_t streams; /* subgroup streams received */
    bool done;        /* PUBLISH_DONE received: the track ends after done_streams streams */
    bool done_ok;
    uint64_t done_streams;
};

/* PUBLISH_DONE counted the streams the publisher opened: end the track once they all came. */
static void pubns_ending_check(struct pubns *pn);

static void usub_check_done(struct usub *us)
{
    if (!us->done || !us->track || us->finished || us->streams < us->done_streams) return;
    moq_track *track = us->track;
    struct pubns *pn = us->pn;
    us->finished = true;
    pn->busy++;
    if (us->done_ok)
        moq_track_finish(track, pn->route, us->has_seq ? us->max_seq + 1 : 0);
    else
        moq_track_abort(track, pn->route, MOQ_REASON_CANCEL);
    pn->busy--;
    pubns_ending_check(pn);
}

/* The peer watches the origin under a prefix (SUBSCRIBE_NAMESPACE). */
struct nswatch {
    struct moq_ietf_engine *e;
    uint64_t request_id;
    moq_watch *watch;
    /* draft-16: the request's own stream, where NAMESPACE / NAMESPACE_DONE name each
     * broadcast by its suffix under the prefix; NULL on the control stream (14/15) */
    istream *st;
    char *prefix;      /* relative to the root */
    moq_map announced; /* suffixes told on st */
};

/* A broadcast we told the peer about with PUBLISH_NAMESPACE (e->announced). */
struct pubout {
    uint64_t request_id;
    istream *st; /* its request stream (17+), NULL on the control stream */
    char *path;  /* relative to the root */
};

/* Client role: our SUBSCRIBE_NAMESPACE for a prefix the peer may publish under. */
struct nsub {
    struct moq_ietf_engine *e;
    uint64_t request_id;
    istream *st;    /* its request stream (16+), NULL on the control stream */
    char *prefix;   /* relative to the root */
    moq_map routes; /* suffix -> struct pubns, from NAMESPACE (16+) */
    bool open;      /* the peer accepted it */
    moq_list link;
};

/* Client role: the origin's broadcasts under a prefix the peer may subscribe to. */
struct pubwatch {
    struct moq_ietf_engine *e;
    moq_watch *watch;
    moq_list link;
};

struct moq_ietf_engine {
    moq_session *s;
    const moq_ietf_caps *c;
    istream *control;
    istream *setup_out; /* 17+: our SETUP stream, where GOAWAY goes too */
    moq_buf ctrl_in;
    bool setup_done;
    bool setup_in;         /* 17+: the peer's SETUP stream arrived */
    bool setup_pending;    /* client: our SETUP waits for stream credit */
    uint64_t granted;      /* request ids below this the peer may use */
    uint64_t peer_limit;   /* our request ids must stay below this */
    uint64_t next_request; /* our next request id (odd: we are the server) */
    moq_list streams;
    moq_list queue;      /* gout waiting for uni stream credit */
    moq_list alias_wait; /* gin waiting for their alias */
    size_t n_alias_wait;
    size_t alias_wait_bytes; /* what they hold */
    moq_list pubns;
    moq_u64map dsubs;     /* peer request id -> dsub */
    moq_u64map nswatches; /* peer request id -> nswatch */
    moq_u64map ups;       /* our request id -> usub */
    moq_u64map aliases;   /* track alias -> usub */
    moq_u64map released;  /* aliases of subscriptions we ended -> 1 */
    moq_map announced;    /* path relative to root -> struct pubout (what we told the peer) */
    moq_u64map pubouts;   /* our request id -> struct pubout */
    moq_list nsubs;       /* client: struct nsub */
    moq_list pubwatches;  /* client: struct pubwatch */
    uint64_t setup_deadline, expiry_deadline, reported;
};

static const struct moq_transport_events engine_events;

/* client role */
static void on_request_ok(struct moq_ietf_engine *e, const uint8_t *body, size_t len);
static void on_server_setup(struct moq_ietf_engine *e, uint64_t type, const uint8_t *body,
                            size_t len);
static void on_nsub_msg(struct nsub *ns, uint64_t type, const uint8_t *body, size_t len);
static void request_accepted(struct moq_ietf_engine *e, struct pubout *po, struct nsub *ns);
static void nsub_free(struct nsub *ns, bool graceful);
static struct nsub *nsub_by_id(struct moq_ietf_engine *e, uint64_t request_id);
static void nsub_refused(struct nsub *ns);
static void send_client_setup(struct moq_ietf_engine *e);
static void engine_free(struct moq_ietf_engine *e);

static struct moq_ietf_engine *eng(const moq_session *s)
{
    return s->ietf;
}

static uint64_t now_us(struct moq_ietf_engine *e)
{
    return moq_session_now(e->s);
}

/* ---------------------------------------------------------------- closing */

static void fail(struct moq_ietf_engine *e, uint64_t code, const char *reason)
{
    moq_session *s = e->s;
    if (s->closing) return;
    moq_info("ietf", "%s: closing session: %s (code %llu)", s->t->peer, reason,
             (unsigned long long)code);
    s->closing = true;
    moq_transport_close(s->t, code, reason);
    moq_session_deadline_changed(s);
}

/* ---------------------------------------------------------------- streams */

/* Messages go before any group: a SUBSCRIBE_OK queued behind the groups of its own
 * subscription has the peer hold them until it learns their alias. */
static void st_carries_messages(istream *st)
{
    st->e->s->t->ops->set_priority(st->e->s->t, st->sid, MESSAGE_STREAM_PRIORITY);
}

/* A bidi stream carries messages (the control stream or a request's own stream). */
static istream *st_new(struct moq_ietf_engine *e, int64_t sid, enum is_kind kind, bool bidi)
{
    istream *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    st->e = e;
    st->sid = sid;
    st->kind = kind;
    st->bidi = bidi;
    moq_list_push_back(&e->streams, &st->link);
    e->s->t->ops->set_stream_ctx(e->s->t, sid, st);
    if (bidi) st_carries_messages(st);
    return st;
}

static void st_reset(istream *st, uint64_t code)
{
    if (st->send_done || st->e->s->closing) return;
    st->send_done = true;
    st->e->s->t->ops->reset(st->e->s->t, st->sid, code);
}

static void st_stop(istream *st, uint64_t code)
{
    if (st->recv_done || st->e->s->closing) return;
    st->recv_done = true;
    st->e->s->t->ops->stop(st->e->s->t, st->sid, code);
}

static void send_control(struct moq_ietf_engine *e, moq_buf *b)
{
    if (!e->control || e->control->send_done || e->s->closing || b->len == 0) return;
    if (moq_transport_write_bytes(e->s->t, e->control->sid, b->data, b->len, false) < 0)
        fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot write the control stream");
}

/* End our side of a request stream. */
static void st_fin(istream *st)
{
    if (!st || st->send_done || st->e->s->closing) return;
    if (moq_transport_write(st->e->s->t, st->sid, NULL, 0, true) == 0) st->send_done = true;
}

/* A message on a request's own stream (draft-16), or on the control stream when st is NULL. */
static void send_on(struct moq_ietf_engine *e, istream *st, moq_buf *b)
{
    if (!st) {
        send_control(e, b);
        return;
    }
    if (st->send_done || e->s->closing || b->len == 0) return;
    if (moq_transport_write_bytes(e->s->t, st->sid, b->data, b->len, false) < 0)
        st_reset(st, MOQ_IETF_STREAM_INTERNAL_ERROR);
}

/* Our next request id, or false when the peer's limit is reached. */
static bool take_request_id(struct moq_ietf_engine *e, uint64_t *id)
{
    if (e->c->max_request_id && e->next_request >= e->peer_limit) {
        moq_buf b;
        moq_buf_init(&b);
        if (moq_ietf_encode_id_msg(&b, e->c, MOQ_IETF_REQUESTS_BLOCKED, e->peer_limit) == 0)
            send_control(e, &b);
        moq_buf_free(&b);
        return false;
    }
    *id = e->next_request;
    e->next_request += 2;
    return true;
}

/* The peer used request id `id`: refuse ids beyond the grant, widen it as it is used. */
static bool accept_request_id(struct moq_ietf_engine *e, uint64_t id)
{
    if (!e->c->max_request_id) return true;
    if (id >= e->granted) {
        fail(e, MOQ_IETF_TOO_MANY_REQUESTS, "request id beyond MAX_REQUEST_ID");
        return false;
    }
    if (id + REQUEST_WINDOW / 2 >= e->granted) {
        e->granted += REQUEST_WINDOW;
        moq_buf b;
        moq_buf_init(&b);
        if (moq_ietf_encode_id_msg(&b, e->c, MOQ_IETF_MAX_REQUEST_ID, e->granted) == 0)
            send_control(e, &b);
        moq_buf_free(&b);
    }
    return true;
}

/* ---------------------------------------------------------------- serving: groups out */

static void gout_end(struct gout *go);
static void dsub_maybe_done(struct dsub *ds);

/* A frame's object header in a chunk of its own: every object carries an extension block,
 * the one an IETF publisher gave it (kept in canonical form, written in this draft's) or an
 * empty one, with the frame's timestamp as its Timestamp property in the units declared in
 * SUBSCRIBE_OK (the frame's are the track's). NULL when out of memory (a block kept is
 * well-formed). */
static moq_chunk *object_header(const struct dsub *ds, const moq_frame *f)
{
    const moq_track_info *info = ds->sub ? moq_subscription_info(ds->sub) : NULL;
    uint64_t ts;
    bool has_ts = moq_ietf_time_convert(f->timestamp, info ? info->timescale : 1000,
                                        MOQ_IETF_TIMESCALE_DEFAULT, &ts);
    moq_buf b;
    moq_buf_init(&b);
    const uint8_t *ext = f->side_len ? f->chunk->data + f->side_off : NULL;
    moq_chunk *hc = NULL;
    if (moq_ietf_object_header_time(&b, ds->e->c, ext, f->side_len, has_ts, ts, f->payload_len) ==
            0 &&
        (hc = moq_chunk_copy(b.data, b.len)))
        hc->len = b.len;
    moq_buf_free(&b);
    return hc;
}

/* Write what the group has; false when the group ended for this subscriber (go is gone). */
static bool gout_write(struct gout *go)
{
    struct moq_ietf_engine *e = go->ds->e;
    moq_session *s = e->s;
    moq_group *g = go->group;
    if (go->next < moq_group_first_frame(g)) {
        st_reset(go->st, MOQ_IETF_STREAM_TOO_FAR_BEHIND);
        gout_end(go);
        return false;
    }
    go->blocked = false;
    uint64_t count = moq_group_frame_count(g);
    for (; go->next < count; go->next++) {
        const moq_frame *f = moq_group_frame(g, go->next);
        if (!f) break;
        moq_chunk *hc = object_header(go->ds, f);
        if (!hc) {
            st_reset(go->st, MOQ_IETF_STREAM_INTERNAL_ERROR);
            gout_end(go);
            return false;
        }
        size_t hn = hc->len;
        moq_slice v[2] = {{hc, 0, hn}, {f->chunk, f->payload_off, f->payload_len}};
        int rv = moq_transport_write(s->t, go->st->sid, v, f->payload_len ? 2 : 1, false);
        moq_chunk_unref(hc);
        if (rv == MOQ_ERR_AGAIN) {
            go->blocked = true;
            return true;
        }
        if (rv < 0) {
            gout_end(go);
            return false;
        }
        s->stats.frames_out++;
        s->stats.bytes_out += f->payload_len;
    }
    return true;
}

/* Every frame is written: FIN the stream. The group stays in flight for its subscription
 * until the stream closes (the peer has everything), so PUBLISH_DONE never overtakes it. */
static void gout_finish(struct gout *go)
{
    istream *st = go->st;
    if (!st->send_done && moq_transport_write(go->ds->e->s->t, st->sid, NULL, 0, true) == 0)
        st->send_done = true;
    go->fin_sent = true;
    go->fin_pending = false;
    if (go->follower) {
        moq_follower_close(go->follower);
        go->follower = NULL;
    }
}

/* The group is over for the subscriber; the stream lives on until it closes. */
static void gout_end(struct gout *go)
{
    if (go->follower) {
        moq_follower_close(go->follower);
        go->follower = NULL;
    }
    if (go->st) {
        go->st->obj = NULL;
        go->st = NULL;
    }
    struct dsub *ds = go->ds;
    if (go->queued) moq_list_remove(&go->qlink);
    moq_list_remove(&go->link);
    if (go->group) moq_group_unref(go->group);
    free(go);
    ds->inflight--;
    dsub_maybe_done(ds);
}

static void gout_on_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    struct gout *go = ctx;
    if (go->st && !go->ds->e->s->closing && !go->blocked) gout_write(go);
}

static void gout_on_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct gout *go = ctx;
    if (!go->st || go->ds->e->s->closing) return;
    if (!go->blocked && !gout_write(go)) return; /* ended while writing */
    if (state == MOQ_GROUP_FINISHED && go->blocked) {
        go->fin_pending = true;
        return;
    }
    if (state == MOQ_GROUP_FINISHED) {
        gout_finish(go);
        return;
    }
    st_reset(go->st, MOQ_IETF_STREAM_CANCELLED);
    gout_end(go);
}

static const moq_follower_ops gout_follow_ops = {gout_on_frames, gout_on_end};

/* Open the subgroup stream and start writing; false when out of stream credit. */
static bool gout_start(struct gout *go)
{
    struct dsub *ds = go->ds;
    struct moq_ietf_engine *e = ds->e;
    moq_session *s = e->s;
    int64_t sid;
    if (moq_transport_open(s->t, false, &sid) < 0) return false;
    if (go->queued) {
        moq_list_remove(&go->qlink);
        go->queued = false;
    }
    istream *st = st_new(e, sid, IS_GROUP_OUT, false);
    if (!st) {
        s->t->ops->reset(s->t, sid, MOQ_IETF_STREAM_INTERNAL_ERROR);
        gout_end(go);
        return true;
    }
    go->st = st;
    st->obj = go;
    ds->streams++;
    s->stats.groups_out++;
    /* as moq-lite: the subscriber's priority, then newest group first unless it asked for
     * ascending order */
    uint64_t seq = go->seq & ((1ull << 48) - 1);
    uint64_t order = ds->ordered ? ((1ull << 48) - 1) - seq : seq;
    s->t->ops->set_priority(s->t, sid, ((uint64_t)ds->priority << 56) | order);
    uint8_t hdr[MOQ_IETF_SUBGROUP_HEADER_MAX];
    size_t hn = moq_ietf_subgroup_header_pack_ext(e->c, hdr, ds->request_id, go->seq,
                                                  MOQ_IETF_RELAY_PRIORITY, true);
    go->follower = moq_group_follow(go->group, &gout_follow_ops, go);
    if (!go->follower || moq_transport_write_bytes(s->t, sid, hdr, hn, false) < 0) {
        st_reset(st, MOQ_IETF_STREAM_INTERNAL_ERROR);
        gout_end(go);
        return true;
    }
    uint64_t code = 0;
    int state = moq_group_state(go->group, &code);
    if (gout_write(go) && state != MOQ_GROUP_OPEN)
        gout_on_end(go, go->follower, go->group, state, code);
    return true;
}

static void drain_queue(struct moq_ietf_engine *e)
{
    while (!moq_list_empty(&e->queue) && !e->s->closing) {
        struct gout *go = moq_list_first(&e->queue, struct gout, qlink);
        if (!gout_start(go)) return;
    }
}

/* ---------------------------------------------------------------- serving: SUBSCRIBE */

static void dsub_free(struct dsub *ds)
{
    struct moq_ietf_engine *e = ds->e;
    while (!moq_list_empty(&ds->groups)) {
        struct gout *go = moq_list_first(&ds->groups, struct gout, link);
        if (go->st && !go->fin_sent) st_reset(go->st, MOQ_IETF_STREAM_CANCELLED);
        ds->over = true; /* no PUBLISH_DONE from gout_end */
        gout_end(go);
    }
    if (ds->sub) moq_subscription_close(ds->sub);
    if (ds->st) {
        st_fin(ds->st);
        ds->st->obj = NULL;
        ds->st->kind = IS_IGNORE;
    }
    moq_u64map_del(&e->dsubs, ds->request_id);
    moq_buf_free(&ds->path);
    moq_buf_free(&ds->track);
    free(ds);
}

static void send_publish_done(struct dsub *ds, uint64_t status, const char *reason)
{
    struct moq_ietf_publish_done m = {ds->request_id, status, ds->streams,
                                      moq_str_make(reason, strlen(reason))};
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_publish_done(&b, ds->e->c, &m) == 0) send_on(ds->e, ds->st, &b);
    moq_buf_free(&b);
}

static void dsub_maybe_done(struct dsub *ds)
{
    if (!ds->finished || ds->over || ds->inflight) return;
    ds->over = true;
    send_publish_done(ds, MOQ_IETF_DONE_TRACK_ENDED, "track ended");
    dsub_free(ds);
}

static void ds_on_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    struct dsub *ds = ctx;
    struct moq_ietf_engine *e = ds->e;
    if (e->s->closing || ds->over) return;
    struct gout *go = calloc(1, sizeof(*go));
    if (!go) return;
    go->ds = ds;
    go->seq = moq_group_sequence(g);
    go->group = moq_group_ref(g);
    moq_list_push_back(&ds->groups, &go->link);
    ds->inflight++;
    if (!moq_list_empty(&e->queue) || !gout_start(go)) {
        go->queued = true;
        moq_list_push_back(&e->queue, &go->qlink);
    }
}

static void ds_on_finish(void *ctx, moq_subscription *sub, uint64_t final_seq)
{
    struct dsub *ds = ctx;
    if (ds->e->s->closing || ds->over) return;
    ds->finished = true;
    dsub_maybe_done(ds);
}

static void ds_on_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    struct dsub *ds = ctx;
    if (ds->e->s->closing || ds->over) return;
    ds->over = true;
    bool ended = code == MOQ_REASON_DROPPED || code == MOQ_REASON_UNROUTABLE;
    send_publish_done(ds, ended ? MOQ_IETF_DONE_TRACK_ENDED : MOQ_IETF_DONE_INTERNAL_ERROR,
                      ended ? "broadcast ended" : "track failed");
    ds->sub = NULL; /* a failed subscription gets no more callbacks; still ours to close */
    moq_subscription_close(sub);
    dsub_free(ds);
}

static const moq_subscriber_ops dsub_ops = {
    .on_group = ds_on_group,
    .on_finish = ds_on_finish,
    .on_abort = ds_on_abort,
};

/* Refuse a request on the stream it came on (st, or the control stream when NULL). */
static void refuse_on(struct moq_ietf_engine *e, istream *st, enum moq_ietf_request_kind kind,
                      uint64_t id, uint64_t code, const char *reason)
{
    struct moq_ietf_request_error m = {id, code, 0, moq_str_make(reason, strlen(reason))};
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_request_error(&b, e->c, kind, &m) == 0) send_on(e, st, &b);
    moq_buf_free(&b);
}

static void refuse(struct moq_ietf_engine *e, enum moq_ietf_request_kind kind, uint64_t id,
                   uint64_t code, const char *reason)
{
    refuse_on(e, NULL, kind, id, code, reason);
}

/* A downstream subscription of the track (path, track), registered under request_id; NULL
 * when out of memory. */
static struct dsub *dsub_new(struct moq_ietf_engine *e, uint64_t request_id, const moq_buf *path,
                             moq_str track)
{
    struct dsub *ds = calloc(1, sizeof(*ds));
    if (!ds) return NULL;
    ds->e = e;
    ds->request_id = request_id;
    moq_list_init(&ds->groups);
    moq_buf_init(&ds->path);
    moq_buf_init(&ds->track);
    if (moq_buf_append(&ds->path, path->data, path->len) < 0 ||
        moq_buf_append(&ds->track, track.ptr, track.len) < 0 ||
        moq_u64map_put(&e->dsubs, request_id, ds) < 0) {
        moq_buf_free(&ds->path);
        moq_buf_free(&ds->track);
        free(ds);
        return NULL;
    }
    return ds;
}

/* SUBSCRIBE on the control stream (st NULL) or on its own stream (17+). */
static void on_subscribe(struct moq_ietf_engine *e, istream *st, const uint8_t *body, size_t len)
{
    moq_session *s = e->s;
    struct moq_ietf_subscribe m;
    int rv = moq_ietf_decode_subscribe(e->c, body, len, &m);
    if (rv < 0) {
        moq_buf_free(&m.ns);
        fail(e, moq_ietf_close_code(rv), "malformed SUBSCRIBE");
        return;
    }
    if (!accept_request_id(e, m.request_id) || moq_u64map_get(&e->dsubs, m.request_id)) {
        moq_buf_free(&m.ns);
        if (!s->closing) fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "duplicate request id");
        return;
    }
    moq_buf full;
    moq_buf_init(&full);
    if (!moq_perms_can_subscribe(&s->perms, (const char *)m.ns.data, m.ns.len) ||
        moq_session_global_path(s, m.ns.data, m.ns.len, &full) < 0) {
        moq_info("ietf", "%s: refused: the peer may not subscribe to /%.*s", s->t->peer,
                 (int)m.ns.len, (const char *)m.ns.data);
        refuse_on(e, st, MOQ_IETF_REQ_SUBSCRIBE, m.request_id, SUB_ERR_UNAUTHORIZED,
                  "unauthorized");
        st_fin(st);
        moq_buf_free(&m.ns);
        moq_buf_free(&full);
        return;
    }
    struct dsub *ds = dsub_new(e, m.request_id, &full, m.track);
    if (!ds) {
        refuse_on(e, st, MOQ_IETF_REQ_SUBSCRIBE, m.request_id, SUB_ERR_INTERNAL, "out of memory");
        st_fin(st);
        moq_buf_free(&m.ns);
        moq_buf_free(&full);
        return;
    }
    if (st) {
        ds->st = st;
        st->kind = IS_SUB;
        st->obj = ds;
    }
    moq_sub_prefs prefs = {0};
    prefs.priority = (uint8_t)(255 - m.priority); /* IETF: lower is more important */
    prefs.ordered = m.group_order == 1;
    ds->ordered = prefs.ordered;
    ds->priority = prefs.priority;
    if (m.filter.kind == MOQ_IETF_FILTER_ABSOLUTE) {
        prefs.has_start = true;
        prefs.start_group = m.filter.start_group;
        prefs.has_end = m.filter.has_end;
        prefs.end_group = m.filter.end_group;
    }
    ds->prefs = prefs;
    /* SUBSCRIBE_OK goes first: groups the origin replays at once follow on their streams */
    if (moq_origin_lookup(s->cfg.origin, full.data, full.len, 0, NULL, NULL) < 0) {
        moq_debug("ietf", "%s: SUBSCRIBE %llu /%s: not found", s->t->peer,
                  (unsigned long long)m.request_id, (const char *)full.data);
        ds->over = true;
        refuse_on(e, st, MOQ_IETF_REQ_SUBSCRIBE, m.request_id, err_does_not_exist(e->c),
                  "not found");
        dsub_free(ds);
        moq_buf_free(&full);
        moq_buf_free(&m.ns);
        return;
    }
    /* the units of every object Timestamp we write (declared from draft 17 on); the track's
     * own may not be known yet, so the relay declares microseconds and converts into them */
    struct moq_ietf_subscribe_ok ok = {.request_id = m.request_id,
                                       .track_alias = m.request_id,
                                       .group_order = 2,
                                       .props.timescale = MOQ_IETF_TIMESCALE_DEFAULT};
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_subscribe_ok(&b, e->c, &ok) == 0) send_on(e, st, &b);
    moq_buf_free(&b);
    rv = moq_origin_subscribe(s->cfg.origin, full.data, full.len, (const uint8_t *)m.track.ptr,
                              m.track.len, 0, &prefs, &dsub_ops, ds, &ds->sub);
    moq_debug("ietf", "%s: SUBSCRIBE %llu /%s track %.*s: %s", s->t->peer,
              (unsigned long long)m.request_id, (const char *)full.data, (int)m.track.len,
              m.track.ptr, rv < 0 ? moq_strerror(rv) : "ok");
    if (rv == 0)
        moq_session_emit(s, MOQ_SESSION_PEER_SUBSCRIBED, full.data, full.len, m.track.ptr,
                         m.track.len);
    moq_buf_free(&full);
    moq_buf_free(&m.ns);
    if (rv < 0) {
        ds->sub = NULL;
        ds->over = true;
        send_publish_done(ds, MOQ_IETF_DONE_INTERNAL_ERROR, moq_strerror(rv));
        dsub_free(ds);
    }
}

/* The peer's REQUEST_UPDATE (SUBSCRIBE_UPDATE) of its subscription: on the control stream
 * naming it (14-16), or on the subscription's request stream `st` (17+). A new priority and
 * end group reach the model, and from there the publisher (moq-lite SUBSCRIBE_UPDATE or our
 * REQUEST_UPDATE upstream); forward and a new start have no moq-lite equivalent and are
 * ignored. An update of a subscription that already ended is ignored. */
static void on_request_update(struct moq_ietf_engine *e, istream *st, const uint8_t *body,
                              size_t len)
{
    struct moq_ietf_request_update m;
    int rv = moq_ietf_decode_request_update(e->c, body, len, &m);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed REQUEST_UPDATE");
        return;
    }
    if (!st && e->c->request_error && !accept_request_id(e, m.request_id)) return;
    struct dsub *ds = st ? st->obj : moq_u64map_get(&e->dsubs, m.subscription_id);
    if (!ds || !ds->sub || ds->over) return;
    if (m.has_priority) {
        ds->prefs.priority = (uint8_t)(255 - m.priority);
        ds->priority = ds->prefs.priority;
    }
    if (m.has_end) {
        ds->prefs.has_end = true;
        ds->prefs.end_group = m.end_group;
    }
    moq_debug("ietf", "%s: REQUEST_UPDATE of SUBSCRIBE %llu: priority %u%s", e->s->t->peer,
              (unsigned long long)ds->request_id, (unsigned)ds->prefs.priority,
              m.has_end ? ", new end group" : "");
    moq_subscription_update(ds->sub, &ds->prefs);
}

/* "Invalid range": FETCH_ERROR 0x5 on draft-14, REQUEST_ERROR 0x11 after it. */
static uint64_t err_invalid_range(const moq_ietf_caps *c)
{
    return c->request_error ? MOQ_IETF_REQ_INVALID_RANGE : 0x5;
}

/* "Invalid joining request id": FETCH_ERROR 0x7 on draft-14, REQUEST_ERROR 0x32 after it. */
static uint64_t err_invalid_joining(const moq_ietf_caps *c)
{
    return c->request_error ? MOQ_IETF_REQ_INVALID_JOINING_REQUEST_ID : 0x7;
}

/* Most groups one FETCH serves, and most sequences it looks up (the rest of its range is
 * left out). */
#define FETCH_MAX_GROUPS 1024

/* The cached groups a FETCH serves, and the objects of each: [from, to). */
struct fetch_plan {
    size_t n;
    moq_group *groups[FETCH_MAX_GROUPS];
    uint64_t from[FETCH_MAX_GROUPS], to[FETCH_MAX_GROUPS];
    bool end_of_track;
};

static void fetch_plan_free(struct fetch_plan *fp)
{
    for (size_t i = 0; i < fp->n; i++)
        moq_group_unref(fp->groups[i]);
    free(fp);
}

/* The objects of group g in the range (end object 0: the whole end group, else the draft's
 * "end location plus one"); false when none is there. */
static bool fetch_objects_of(const struct moq_ietf_fetch *f, moq_group *g, uint64_t *from,
                             uint64_t *to)
{
    uint64_t seq = moq_group_sequence(g);
    *from = moq_group_first_frame(g);
    if (seq == f->start_group && f->start_object > *from) *from = f->start_object;
    *to = moq_group_frame_count(g);
    if (seq == f->end_group && f->end_object && f->end_object < *to) *to = f->end_object;
    return *from < *to;
}

/* Take what the cache holds of the range: the groups present now, each with the objects
 * written so far (groups not cached are absent; nothing is requested from the publisher). */
static void fetch_plan_fill(moq_session *s, const moq_buf *full, const struct moq_ietf_fetch *f,
                            const moq_track_cache *tc, struct fetch_plan *fp)
{
    uint64_t lo = f->start_group > tc->first ? f->start_group : tc->first;
    uint64_t hi = f->end_group < tc->last ? f->end_group : tc->last;
    uint64_t tries = 0;
    for (uint64_t seq = lo; seq <= hi && fp->n < FETCH_MAX_GROUPS; seq++) {
        if (++tries > 4 * FETCH_MAX_GROUPS) break; /* a sparse range: its start is served */
        moq_group *g = NULL;
        if (moq_origin_fetch(s->cfg.origin, full->data, full->len, (const uint8_t *)f->track.ptr,
                             f->track.len, 0, seq, 0, false, moq_session_now(s), &g) < 0)
            continue;
        size_t i = fp->n;
        if (!fetch_objects_of(f, g, &fp->from[i], &fp->to[i])) {
            moq_group_unref(g);
            continue;
        }
        fp->groups[fp->n++] = g;
        if (seq == UINT64_MAX) break;
    }
    if (fp->n && tc->finished) {
        size_t last = fp->n - 1;
        moq_group *g = fp->groups[last];
        fp->end_of_track = moq_group_sequence(g) + 1 == tc->final_seq &&
                           moq_group_state(g, NULL) == MOQ_GROUP_FINISHED &&
                           fp->to[last] == moq_group_frame_count(g);
    }
}

/* One object of a fetch stream in the draft's form: its header in a chunk of its own, then
 * the payload straight from the frame's chunk. */
static int fetch_object_write(struct moq_ietf_engine *e, int64_t sid,
                              struct moq_ietf_fetch_cursor *cur, uint64_t group, uint64_t id,
                              const moq_frame *f)
{
    moq_buf b;
    moq_buf_init(&b);
    const uint8_t *ext = f->side_len ? f->chunk->data + f->side_off : NULL;
    int rv =
        moq_ietf_fetch_object_header(&b, e->c, cur, group, id, ext, f->side_len, f->payload_len);
    moq_chunk *hc = NULL;
    if (rv == 0 && (hc = moq_chunk_copy(b.data, b.len)))
        hc->len = b.len;
    else if (rv == 0)
        rv = MOQ_ERR_NOMEM;
    moq_buf_free(&b);
    if (rv < 0) return rv;
    moq_slice v[2] = {{hc, 0, hc->len}, {f->chunk, f->payload_off, f->payload_len}};
    rv = moq_transport_write(e->s->t, sid, v, f->payload_len ? 2 : 1, false);
    moq_chunk_unref(hc);
    return rv;
}

/* The fetch stream: its header, every object of the plan (none when fp is NULL), FIN. A
 * stream the transport will not take whole is reset (the peer sees the fetch cut short). */
static void fetch_stream_write(struct moq_ietf_engine *e, istream *st, uint64_t request_id,
                               const struct fetch_plan *fp, bool descending)
{
    moq_session *s = e->s;
    int64_t sid;
    istream *fs = NULL;
    if (moq_transport_open(s->t, false, &sid) < 0 || !(fs = st_new(e, sid, IS_IGNORE, false))) {
        refuse_on(e, st, MOQ_IETF_REQ_FETCH, request_id, SUB_ERR_INTERNAL, "no stream credit");
        return;
    }
    uint8_t hdr[2 * MOQ_IETF_VARINT_MAX], *p = hdr;
    p = moq_ietf_varint_put(e->c, p, MOQ_IETF_STREAM_FETCH);
    p = moq_ietf_varint_put(e->c, p, request_id);
    int rv = moq_transport_write_bytes(s->t, sid, hdr, (size_t)(p - hdr), false);
    struct moq_ietf_fetch_cursor cur = {.descending = descending,
                                        .priority = MOQ_IETF_RELAY_PRIORITY};
    size_t n = fp ? fp->n : 0;
    for (size_t k = 0; k < n && rv >= 0; k++) {
        size_t i = descending ? n - 1 - k : k;
        moq_group *g = fp->groups[i];
        for (uint64_t id = fp->from[i]; id < fp->to[i] && rv >= 0; id++) {
            const moq_frame *f = moq_group_frame(g, id);
            if (!f) continue;
            rv = fetch_object_write(e, sid, &cur, moq_group_sequence(g), id, f);
            if (rv >= 0) {
                s->stats.frames_out++;
                s->stats.bytes_out += f->payload_len;
            }
        }
    }
    if (rv < 0)
        st_reset(fs, MOQ_IETF_STREAM_INTERNAL_ERROR);
    else
        st_fin(fs);
}

/* The empty answer of a joining fetch whose range starts at group `start`: FETCH_OK, its
 * End Location that start (an empty range; anything smaller is a protocol violation to the
 * peer), then a fetch stream of its header alone. */
static void fetch_answer_empty(struct moq_ietf_engine *e, istream *st, uint64_t request_id,
                               uint64_t start)
{
    struct moq_ietf_fetch_ok ok = {.request_id = request_id, .group_order = 1, .end_group = start};
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_fetch_ok(&b, e->c, &ok) == 0) send_on(e, st, &b);
    moq_buf_free(&b);
    fetch_stream_write(e, st, request_id, NULL, false);
}

/* FETCH_OK's End Location for plan fp of f, in the draft's encoding: the last object served
 * (draft-20), or that object plus one - object 0 when f asked for the whole of that group
 * and got all of it, the group being finished (drafts 14-19). */
static void fetch_end_location(const moq_ietf_caps *c, const struct moq_ietf_fetch *f,
                               const struct fetch_plan *fp, struct moq_ietf_fetch_ok *ok)
{
    size_t last = fp->n - 1;
    moq_group *g = fp->groups[last];
    ok->end_group = moq_group_sequence(g);
    ok->end_object = c->fetch_end_inclusive ? fp->to[last] - 1 : fp->to[last];
    bool whole_group = f->end_object == 0 && ok->end_group == f->end_group &&
                       moq_group_state(g, NULL) == MOQ_GROUP_FINISHED &&
                       fp->to[last] == moq_group_frame_count(g);
    if (!c->fetch_end_inclusive && whole_group) ok->end_object = 0;
}

/* Answer a FETCH with plan fp (which it frees): FETCH_OK naming the end of what is served,
 * then the fetch stream, groups in the order the FETCH asked for (ascending unless
 * descending: the objects of a group always ascend). */
static void fetch_answer_plan(struct moq_ietf_engine *e, istream *st,
                              const struct moq_ietf_fetch *f, struct fetch_plan *fp)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_ietf_fetch_ok ok = {.request_id = f->request_id,
                                   .group_order = f->group_order == 2 ? 2 : 1,
                                   .end_of_track = fp->end_of_track};
    fetch_end_location(e->c, f, fp, &ok);
    if (moq_ietf_encode_fetch_ok(&b, e->c, &ok) == 0) send_on(e, st, &b);
    moq_buf_free(&b);
    fetch_stream_write(e, st, f->request_id, fp, ok.group_order == 2);
    fetch_plan_free(fp);
}

/* Place a draft-20 start given from the Largest Object, here the last object of cached group
 * `last` (section "Location Filters"): RELATIVE N is {last + 1 - N, 0}, group 0 at the
 * least. false for the next group and the next object: past the Largest Object, which a
 * FETCH is refused for ("Fetch Handling"). */
static bool fetch_start_place(struct moq_ietf_fetch *f, uint64_t last)
{
    switch (f->start_kind) {
    case MOQ_IETF_FILTER_RELATIVE:
        if (f->start_groups == 0) return false; /* the next group */
        f->start_group = f->start_groups - 1 > last ? 0 : last - (f->start_groups - 1);
        f->start_object = 0;
        return true;
    case MOQ_IETF_FILTER_NEXT_GROUP:
    case MOQ_IETF_FILTER_LARGEST:
        return false;
    default:
        return true;
    }
}

/* What the cache holds now of the range of f in the track (path, f->track), its start placed
 * (fetch_start_place): NULL and a plan of at least one group in *out, or why there is none
 * and the code to refuse it with. */
static const char *fetch_plan_make(struct moq_ietf_engine *e, const moq_buf *path,
                                   struct moq_ietf_fetch *f, struct fetch_plan **out,
                                   uint64_t *code)
{
    moq_session *s = e->s;
    *out = NULL;
    *code = err_invalid_range(e->c);
    moq_track_cache tc;
    if (moq_origin_track_cache(s->cfg.origin, path->data, path->len, (const uint8_t *)f->track.ptr,
                               f->track.len, 0, &tc) < 0) {
        *code = err_does_not_exist(e->c);
        return "not found";
    }
    if (!tc.has_groups) return "nothing cached in the range";
    if (!fetch_start_place(f, tc.last)) return "starts after the largest object";
    if (f->end_group < f->start_group || f->start_group > tc.last || f->end_group < tc.first)
        return "nothing cached in the range";
    struct fetch_plan *fp = calloc(1, sizeof(*fp));
    if (!fp) {
        *code = SUB_ERR_INTERNAL;
        return "out of memory";
    }
    fetch_plan_fill(s, path, f, &tc, fp);
    if (fp->n == 0) {
        fetch_plan_free(fp);
        return "nothing cached in the range";
    }
    *out = fp;
    return NULL;
}

/* A standalone FETCH: the cached objects of its range, as the cache holds them now
 * (fetch_answer_plan); a range the cache holds nothing of is refused. */
static void fetch_standalone(struct moq_ietf_engine *e, istream *st, struct moq_ietf_fetch *f)
{
    moq_session *s = e->s;
    moq_buf full;
    moq_buf_init(&full);
    if (!moq_perms_can_subscribe(&s->perms, (const char *)f->ns.data, f->ns.len) ||
        moq_session_global_path(s, f->ns.data, f->ns.len, &full) < 0) {
        moq_info("ietf", "%s: refused: the peer may not fetch from /%.*s", s->t->peer,
                 (int)f->ns.len, (const char *)f->ns.data);
        refuse_on(e, st, MOQ_IETF_REQ_FETCH, f->request_id, SUB_ERR_UNAUTHORIZED, "unauthorized");
        moq_buf_free(&full);
        return;
    }
    struct fetch_plan *fp;
    uint64_t code;
    const char *refusal = fetch_plan_make(e, &full, f, &fp, &code);
    moq_debug("ietf", "%s: FETCH %llu /%s track %.*s: %s", s->t->peer,
              (unsigned long long)f->request_id, (const char *)full.data, (int)f->track.len,
              f->track.ptr, refusal ? refusal : "served from the cache");
    moq_buf_free(&full);
    if (refusal)
        refuse_on(e, st, MOQ_IETF_REQ_FETCH, f->request_id, code, refusal);
    else
        fetch_answer_plan(e, st, f, fp);
}

/* The first group of a joining FETCH's range, its subscription starting at group `first`. */
static uint64_t joining_range_start(const struct moq_ietf_fetch *f, uint64_t first)
{
    if (f->type == MOQ_IETF_FETCH_ABSOLUTE) return f->joining_start;
    return f->joining_start < first ? first - f->joining_start : 0;
}

/*
 * A joining FETCH of the subscription it names: the groups before the first one that
 * subscription delivers (a subscription here delivers whole groups from its first, so the
 * two give every object once, with no gap and no overlap), from that group minus the offset
 * (relative; the draft's "Largest Location.Group - Joining Start") or from the given group
 * (absolute), served from the cache as a standalone FETCH would be. Nothing cached in that
 * range - always so for offset 0, or when the subscription takes every group that arrives -
 * is answered FETCH_OK and an empty fetch stream (upstream answers offset 0 so, but with
 * REQUEST_OK from draft-15, which no draft allows). An absolute start after the
 * subscription's first group is an invalid range; a subscription that does not exist (or
 * ended) is an invalid joining request id.
 */
static void fetch_joining(struct moq_ietf_engine *e, istream *st, struct moq_ietf_fetch *f)
{
    struct dsub *ds = moq_u64map_get(&e->dsubs, f->joining_request_id);
    bool live = ds && ds->sub && !ds->over;
    uint64_t first = 0;
    bool has_first = live && moq_subscription_first_group(ds->sub, &first);
    bool absolute = f->type == MOQ_IETF_FETCH_ABSOLUTE;
    struct fetch_plan *fp = NULL;
    const char *refusal = NULL;
    uint64_t code = 0;
    if (!live) {
        refusal = "no such subscription to join";
        code = err_invalid_joining(e->c);
    } else if (absolute && has_first && f->joining_start > first) {
        refusal = "starts after the subscription";
        code = err_invalid_range(e->c);
    } else if (has_first && first > 0 && (absolute || f->joining_start > 0)) {
        f->start_group = joining_range_start(f, first);
        if (first - f->start_group > FETCH_MAX_GROUPS) /* the groups next to it */
            f->start_group = first - FETCH_MAX_GROUPS;
        f->start_object = 0;
        f->end_group = first - 1;
        f->end_object = 0; /* the whole group */
        f->track = moq_str_make(ds->track.data, ds->track.len);
        const char *why = fetch_plan_make(e, &ds->path, f, &fp, &code);
        if (why && code == SUB_ERR_INTERNAL) refusal = why;
    }
    moq_debug("ietf", "%s: FETCH %llu joining SUBSCRIBE %llu: %s", e->s->t->peer,
              (unsigned long long)f->request_id, (unsigned long long)f->joining_request_id,
              refusal ? refusal
              : fp    ? "served from the cache"
                      : "nothing before it, answered empty");
    if (refusal)
        refuse_on(e, st, MOQ_IETF_REQ_FETCH, f->request_id, code, refusal);
    else if (fp)
        fetch_answer_plan(e, st, f, fp);
    else
        fetch_answer_empty(e, st, f->request_id, joining_range_start(f, first));
}

/* The prologue of a request that may come on the control stream (st NULL, 14-16) or on its
 * own stream (17+): false, with ns freed, when it could not be decoded (decode_rv < 0: the
 * session is closed) or its request id is refused on the control stream. */
static bool request_decoded(struct moq_ietf_engine *e, istream *st, int decode_rv,
                            uint64_t request_id, moq_buf *ns, const char *malformed)
{
    if (decode_rv < 0) {
        moq_buf_free(ns);
        fail(e, moq_ietf_close_code(decode_rv), malformed);
        return false;
    }
    if (!st && !accept_request_id(e, request_id)) {
        moq_buf_free(ns);
        return false;
    }
    return true;
}

/* FETCH, on the control stream (14-16) or its own stream st (17+): standalone or joining,
 * served from the cache. */
static void on_fetch(struct moq_ietf_engine *e, istream *st, const uint8_t *body, size_t len)
{
    struct moq_ietf_fetch f;
    int rv = moq_ietf_decode_fetch(e->c, body, len, &f);
    if (!request_decoded(e, st, rv, f.request_id, &f.ns, "malformed FETCH")) return;
    if (f.type == MOQ_IETF_FETCH_STANDALONE) {
        if (!f.has_range) f.end_group = UINT64_MAX; /* draft-20 without a filter: all of it */
        fetch_standalone(e, st, &f);
    } else {
        fetch_joining(e, st, &f);
    }
    moq_buf_free(&f.ns);
    st_fin(st);
}

/* TRACK_STATUS, on the control stream (14-16) or its own stream st (17+), answered from the
 * cache: the largest cached group and its last object written, or - for a broadcast that
 * exists but whose track is not cached - an answer without a largest location (nothing is
 * subscribed to find out). A broadcast that does not exist is "does not exist". */
static void on_track_status(struct moq_ietf_engine *e, istream *st, const uint8_t *body, size_t len)
{
    moq_session *s = e->s;
    struct moq_ietf_track_status m;
    int rv = moq_ietf_decode_track_status(e->c, body, len, &m);
    if (!request_decoded(e, st, rv, m.request_id, &m.ns, "malformed TRACK_STATUS")) return;
    moq_buf full;
    moq_buf_init(&full);
    moq_track_cache tc;
    const char *answer = "answered";
    if (!moq_perms_can_subscribe(&s->perms, (const char *)m.ns.data, m.ns.len) ||
        moq_session_global_path(s, m.ns.data, m.ns.len, &full) < 0) {
        answer = "unauthorized";
        refuse_on(e, st, MOQ_IETF_REQ_TRACK_STATUS, m.request_id, SUB_ERR_UNAUTHORIZED, answer);
    } else if (moq_origin_track_cache(s->cfg.origin, full.data, full.len,
                                      (const uint8_t *)m.track.ptr, m.track.len, 0, &tc) < 0) {
        answer = "not found";
        refuse_on(e, st, MOQ_IETF_REQ_TRACK_STATUS, m.request_id, err_does_not_exist(e->c), answer);
    } else {
        struct moq_ietf_request_ok ok = {.request_id = m.request_id,
                                         .has_largest = tc.has_groups,
                                         .largest_group = tc.last,
                                         .largest_object = tc.last_frames ? tc.last_frames - 1 : 0};
        moq_buf b;
        moq_buf_init(&b);
        if (moq_ietf_encode_request_ok(&b, e->c, MOQ_IETF_REQ_TRACK_STATUS, &ok) == 0)
            send_on(e, st, &b);
        moq_buf_free(&b);
    }
    moq_debug("ietf", "%s: TRACK_STATUS %llu /%.*s track %.*s: %s", s->t->peer,
              (unsigned long long)m.request_id, (int)m.ns.len, (const char *)m.ns.data,
              (int)m.track.len, m.track.ptr, answer);
    moq_buf_free(&full);
    moq_buf_free(&m.ns);
    st_fin(st);
}

static void on_unsubscribe(struct moq_ietf_engine *e, const uint8_t *body, size_t len)
{
    uint64_t id;
    int rv = moq_ietf_decode_id_msg(e->c, body, len, &id);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed UNSUBSCRIBE");
        return;
    }
    struct dsub *ds = moq_u64map_get(&e->dsubs, id);
    if (!ds) return; /* ended already */
    ds->over = true;
    dsub_free(ds);
}

/* ---------------------------------------------------------------- serving: namespaces */

static void pubout_free(struct moq_ietf_engine *e, struct pubout *po)
{
    moq_u64map_del(&e->pubouts, po->request_id);
    if (po->st) {
        po->st->obj = NULL;
        po->st->kind = IS_IGNORE;
    }
    free(po->path);
    free(po);
}

/* PUBLISH_NAMESPACE for rel: on the control stream, or on a stream of its own (17+). */
static struct pubout *publish_namespace_out(struct moq_ietf_engine *e, const uint8_t *rel,
                                            size_t rel_len)
{
    moq_session *s = e->s;
    uint64_t id;
    if (moq_map_len(&e->announced) >= MAX_PUBLISHED_NS || !take_request_id(e, &id)) {
        moq_warn("ietf", "%s: cannot tell the peer about /%.*s: out of request ids", s->t->peer,
                 (int)rel_len, (const char *)rel);
        return NULL;
    }
    struct pubout *po = calloc(1, sizeof(*po));
    if (!po || !(po->path = strndup((const char *)rel, rel_len))) {
        free(po);
        return NULL;
    }
    po->request_id = id;
    if (e->c->request_streams) {
        int64_t sid;
        bool opened = moq_transport_open(s->t, true, &sid) == 0;
        if (!opened || !(po->st = st_new(e, sid, IS_PUBOUT, true))) {
            if (opened) s->t->ops->reset(s->t, sid, MOQ_IETF_STREAM_INTERNAL_ERROR);
            free(po->path);
            free(po);
            return NULL;
        }
        po->st->obj = po;
    }
    if (moq_map_put(&e->announced, rel, rel_len, po) < 0 ||
        moq_u64map_put(&e->pubouts, id, po) < 0) {
        moq_map_del(&e->announced, rel, rel_len);
        if (po->st) st_reset(po->st, MOQ_IETF_STREAM_INTERNAL_ERROR);
        pubout_free(e, po);
        return NULL;
    }
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_publish_namespace(&b, e->c, id, moq_str_make(rel, rel_len), NULL) == 0)
        send_on(e, po->st, &b);
    moq_buf_free(&b);
    return po;
}

/* The end of a broadcast we told the peer about: PUBLISH_NAMESPACE_DONE, or the end of the
 * request's stream (17+). */
static void publish_namespace_done(struct moq_ietf_engine *e, struct pubout *po)
{
    moq_map_del(&e->announced, po->path, strlen(po->path));
    if (po->st) {
        st_fin(po->st);
    } else {
        moq_buf b;
        moq_buf_init(&b);
        if (moq_ietf_encode_publish_namespace_done(&b, e->c, po->request_id,
                                                   moq_str_make(po->path, strlen(po->path))) == 0)
            send_control(e, &b);
        moq_buf_free(&b);
    }
    pubout_free(e, po);
}

static void announce_to_peer(struct moq_ietf_engine *e, const moq_announce_event *ev)
{
    moq_session *s = e->s;
    const uint8_t *rel;
    size_t rel_len;
    if (moq_session_relative_path(s, ev->path, ev->path_len, &rel, &rel_len) < 0) return;
    if (!moq_perms_announce_visible(&s->perms, (const char *)rel, rel_len)) return;
    struct pubout *po = moq_map_get(&e->announced, rel, rel_len);
    if (ev->kind == MOQ_ANNOUNCE_ACTIVE && !po)
        publish_namespace_out(e, rel, rel_len);
    else if (ev->kind == MOQ_ANNOUNCE_ENDED && po)
        publish_namespace_done(e, po);
}

/* Draft-16: NAMESPACE / NAMESPACE_DONE with the suffix, on the request's stream. */
static void announce_on_stream(struct nswatch *nw, const moq_announce_event *ev)
{
    struct moq_ietf_engine *e = nw->e;
    moq_session *s = e->s;
    const uint8_t *rel;
    size_t rel_len;
    moq_str suffix;
    if (moq_session_relative_path(s, ev->path, ev->path_len, &rel, &rel_len) < 0) return;
    if (!moq_perms_announce_visible(&s->perms, (const char *)rel, rel_len)) return;
    if (moq_path_strip_prefix(moq_str_make(rel, rel_len),
                              moq_str_make(nw->prefix, strlen(nw->prefix)), &suffix) < 0)
        return;
    bool known = moq_map_get(&nw->announced, suffix.ptr, suffix.len) != NULL;
    bool active = ev->kind == MOQ_ANNOUNCE_ACTIVE;
    if (active == known) return;
    if (active ? moq_map_put(&nw->announced, suffix.ptr, suffix.len, (void *)1) < 0
               : (moq_map_del(&nw->announced, suffix.ptr, suffix.len), false))
        return;
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_namespace(&b, e->c, !active, suffix, NULL) == 0) send_on(e, nw->st, &b);
    moq_buf_free(&b);
}

static void nsw_on_announce(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    struct nswatch *nw = ctx;
    if (nw->e->s->closing) return;
    if (nw->st)
        announce_on_stream(nw, ev);
    else
        announce_to_peer(nw->e, ev);
}

static const moq_watch_ops nsw_ops = {.on_announce = nsw_on_announce};

/* SUBSCRIBE_NAMESPACE on the control stream (st NULL) or on its own stream st (16). */
static void on_subscribe_namespace(struct moq_ietf_engine *e, istream *st, uint64_t type,
                                   const uint8_t *body, size_t len)
{
    moq_session *s = e->s;
    struct moq_ietf_subscribe_namespace m;
    int rv = moq_ietf_decode_subscribe_namespace(e->c, type, body, len, &m);
    if (rv < 0) {
        moq_buf_free(&m.prefix);
        fail(e, moq_ietf_close_code(rv), "malformed SUBSCRIBE_NAMESPACE");
        return;
    }
    if (!accept_request_id(e, m.request_id)) {
        moq_buf_free(&m.prefix);
        return;
    }
    moq_buf full;
    moq_buf_init(&full);
    const char *why = NULL;
    uint64_t code = SUB_ERR_INTERNAL;
    struct nswatch *nw = NULL;
    if (!moq_perms_subscribe_overlaps(&s->perms, (const char *)m.prefix.data, m.prefix.len) ||
        moq_session_global_path(s, m.prefix.data, m.prefix.len, &full) < 0) {
        moq_info("ietf", "%s: refused: the peer may not see announcements under /%.*s", s->t->peer,
                 (int)m.prefix.len, (const char *)m.prefix.data);
        why = "unauthorized";
        code = SUB_ERR_UNAUTHORIZED;
    } else if (moq_u64map_get(&e->nswatches, m.request_id)) {
        why = "duplicate request id";
    } else if (!(nw = calloc(1, sizeof(*nw))) || !(nw->prefix = malloc(m.prefix.len + 1)) ||
               moq_u64map_put(&e->nswatches, m.request_id, nw) < 0) {
        why = "out of memory";
    }
    if (why) {
        if (nw) free(nw->prefix);
        free(nw);
        refuse_on(e, st, MOQ_IETF_REQ_SUBSCRIBE_NAMESPACE, m.request_id, code, why);
        if (st) {
            st->kind = IS_IGNORE;
            if (!st->send_done && moq_transport_write(s->t, st->sid, NULL, 0, true) == 0)
                st->send_done = true;
        }
        moq_buf_free(&m.prefix);
        moq_buf_free(&full);
        return;
    }
    nw->e = e;
    nw->request_id = m.request_id;
    nw->st = st;
    memcpy(nw->prefix, m.prefix.data, m.prefix.len);
    nw->prefix[m.prefix.len] = '\0';
    moq_map_init(&nw->announced);
    if (st) {
        st->obj = nw;
        st->kind = IS_NS;
    }
    struct moq_ietf_request_ok ok = {.request_id = m.request_id};
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_request_ok(&b, e->c, MOQ_IETF_REQ_SUBSCRIBE_NAMESPACE, &ok) == 0)
        send_on(e, st, &b);
    moq_buf_free(&b);
    /* the initial set follows the OK (PUBLISH_NAMESPACE requests, or NAMESPACE entries) */
    if (moq_origin_watch(s->cfg.origin, full.data, full.len, 0, &nsw_ops, nw, &nw->watch) < 0)
        nw->watch = NULL;
    moq_debug("ietf", "%s: announcing /%s to the peer", s->t->peer, (const char *)full.data);
    moq_buf_free(&m.prefix);
    moq_buf_free(&full);
}

static void nswatch_free(struct nswatch *nw)
{
    if (nw->watch) moq_watch_close(nw->watch);
    if (nw->st) nw->st->obj = NULL;
    moq_u64map_del(&nw->e->nswatches, nw->request_id);
    moq_map_free(&nw->announced);
    free(nw->prefix);
    free(nw);
}

static void on_unsubscribe_namespace(struct moq_ietf_engine *e, const uint8_t *body, size_t len)
{
    uint64_t id;
    int rv = moq_ietf_decode_id_msg(e->c, body, len, &id);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed UNSUBSCRIBE_NAMESPACE");
        return;
    }
    struct nswatch *nw = moq_u64map_get(&e->nswatches, id);
    if (nw) nswatch_free(nw);
}

/* ---------------------------------------------------------------- consuming: upstream */

static void usub_free(struct usub *us)
{
    struct moq_ietf_engine *e = us->e;
    if (us->st) {
        us->st->obj = NULL;
        us->st->kind = IS_IGNORE;
    }
    moq_u64map_del(&e->ups, us->request_id);
    if (us->ok && moq_u64map_get(&e->aliases, us->alias) == us) {
        moq_u64map_del(&e->aliases, us->alias);
        /* streams of it still coming are stopped rather than held for an alias */
        if (moq_u64map_len(&e->released) >= MAX_RELEASED_ALIASES) moq_u64map_free(&e->released);
        if (!e->s->closing) moq_u64map_put(&e->released, us->alias, (void *)1);
    }
    /* groups still arriving keep their group reference and lose the usub */
    moq_list *pos;
    for (pos = e->streams.next; pos != &e->streams; pos = pos->next) {
        istream *st = moq_container_of(pos, istream, link);
        struct gin *gi = st->kind == IS_GROUP_IN ? st->obj : NULL;
        if (gi && gi->us == us) gi->us = NULL;
    }
    free(us);
}

/* GROUP_ORDER of our SUBSCRIBE: ascending when the subscribers want order, and while the
 * only one is a moq-lite TRACK request (info only; its SUBSCRIBE follows, and the order is
 * not updated upstream), so that a subscription starting before the first group gets the
 * groups from there in order; descending (newest first) otherwise. */
static uint8_t upstream_group_order(const moq_sub_prefs *prefs)
{
    return prefs->ordered || prefs->info_only ? 1 : 2;
}

static void pn_track_request(void *ctx, moq_route *route, moq_track *track,
                             const moq_sub_prefs *prefs)
{
    struct pubns *pn = ctx;
    struct moq_ietf_engine *e = pn->e;
    if (e->s->closing) return;
    struct usub *us = calloc(1, sizeof(*us));
    uint64_t id;
    if (!us || !take_request_id(e, &id) || moq_u64map_put(&e->ups, id, us) < 0) {
        free(us);
        moq_track_abort(track, route, MOQ_REASON_NOT_FOUND);
        return;
    }
    us->e = e;
    us->pn = pn;
    us->track = track;
    us->request_id = id;
    us->priority = (uint8_t)(255 - prefs->priority);
    us->want_priority = us->priority;
    if (e->c->request_streams) {
        int64_t sid;
        istream *st = NULL;
        bool opened = moq_transport_open(e->s->t, true, &sid) == 0;
        if (!opened || !(st = st_new(e, sid, IS_UP, true))) {
            if (opened) e->s->t->ops->reset(e->s->t, sid, MOQ_IETF_STREAM_INTERNAL_ERROR);
            moq_u64map_del(&e->ups, id);
            free(us);
            moq_track_abort(track, route, MOQ_REASON_NOT_FOUND);
            return;
        }
        st->obj = us;
        us->st = st;
    }
    size_t name_len;
    const uint8_t *name = moq_track_name(track, &name_len);
    struct moq_ietf_subscribe m = {.request_id = id,
                                   .priority = (uint8_t)(255 - prefs->priority),
                                   .group_order = upstream_group_order(prefs),
                                   .forward = true,
                                   .want_properties = true};
    m.track = moq_str_make(name, name_len);
    /* moq-lite's join point, the start of the latest group: draft-20 says so by sending no
     * filter (its {0, 0} joins mid-group); earlier drafts by Largest Object */
    m.filter.kind =
        e->c->filter == MOQ_IETF_FILTER_FIELDS ? MOQ_IETF_FILTER_NONE : MOQ_IETF_FILTER_LARGEST;
    if (prefs->has_start) {
        m.filter.kind = MOQ_IETF_FILTER_ABSOLUTE;
        m.filter.start_group = prefs->start_group;
    }
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_subscribe(&b, e->c, &m, moq_str_make(pn->path, strlen(pn->path))) == 0)
        send_on(e, us->st, &b);
    moq_buf_free(&b);
    moq_debug("ietf", "%s: SUBSCRIBE %llu /%s track %.*s upstream", e->s->t->peer,
              (unsigned long long)id, pn->path, (int)name_len, (const char *)name);
}

static struct usub *usub_of_track(struct moq_ietf_engine *e, moq_track *track)
{
    size_t it = 0;
    uint64_t key;
    void *v;
    while (moq_u64map_next(&e->ups, &it, &key, &v)) {
        struct usub *us = v;
        if (us->track == track) return us;
    }
    return NULL;
}

static void pn_track_release(void *ctx, moq_route *route, moq_track *track)
{
    struct pubns *pn = ctx;
    struct moq_ietf_engine *e = pn->e;
    struct usub *us = usub_of_track(e, track);
    if (!us) return;
    us->released = true;
    us->track = NULL;
    if (!e->s->closing)
        moq_debug("ietf", "%s: SUBSCRIBE %llu /%s upstream released", e->s->t->peer,
                  (unsigned long long)us->request_id, pn->path);
    if (us->st) {
        /* 17+: STOP_SENDING and our FIN on the request stream unsubscribe */
        st_stop(us->st, MOQ_IETF_STREAM_CANCELLED);
        st_fin(us->st);
    } else if (!e->s->closing) {
        moq_buf b;
        moq_buf_init(&b);
        if (moq_ietf_encode_id_msg(&b, e->c, MOQ_IETF_UNSUBSCRIBE, us->request_id) == 0)
            send_control(e, &b);
        moq_buf_free(&b);
    }
    usub_free(us);
    pubns_ending_check(pn);
}

/* A new subscriber priority goes to the publisher as a REQUEST_UPDATE (SUBSCRIBE_UPDATE) of
 * our subscription. Draft-14's repeats the start location, which may not move back: it is
 * sent once SUBSCRIBE_OK said where the subscription starts (from there, as upstream
 * encodes it: that start, an open end, forward). */
static void usub_send_update(struct moq_ietf_engine *e, struct usub *us)
{
    if (us->released || e->s->closing || us->want_priority == us->priority) return;
    if (!e->c->subscribe_params && !us->ok) return;
    struct moq_ietf_request_update m = {
        .subscription_id = us->request_id, .has_priority = true, .priority = us->want_priority};
    if (!e->c->subscribe_params) {
        m.has_filter = true;
        m.filter.kind = MOQ_IETF_FILTER_ABSOLUTE;
        m.filter.start_group = us->start_group;
        m.filter.start_object = us->start_object;
        m.has_forward = true;
        m.forward = true;
    }
    if (!take_request_id(e, &m.request_id)) return;
    us->priority = us->want_priority;
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_request_update(&b, e->c, &m) == 0) send_on(e, us->st, &b);
    moq_buf_free(&b);
    moq_debug("ietf", "%s: REQUEST_UPDATE of SUBSCRIBE %llu upstream: priority %u", e->s->t->peer,
              (unsigned long long)us->request_id, (unsigned)us->priority);
}

/* The subscribers' preferences changed: their priority goes upstream. */
static void pn_track_update(void *ctx, moq_route *route, moq_track *track,
                            const moq_sub_prefs *prefs)
{
    struct pubns *pn = ctx;
    struct moq_ietf_engine *e = pn->e;
    struct usub *us = usub_of_track(e, track);
    if (!us) return;
    us->want_priority = (uint8_t)(255 - prefs->priority);
    usub_send_update(e, us);
}

static const moq_producer_ops pubns_ops = {
    .track_request = pn_track_request,
    .track_update = pn_track_update,
    .track_release = pn_track_release,
};

static struct pubns *pubns_find(struct moq_ietf_engine *e, const uint8_t *path, size_t len)
{
    moq_list *pos;
    for (pos = e->pubns.next; pos != &e->pubns; pos = pos->next) {
        struct pubns *pn = moq_container_of(pos, struct pubns, link);
        if (strlen(pn->path) == len && memcmp(pn->path, path, len) == 0) return pn;
    }
    return NULL;
}

static struct pubns *pubns_by_id(struct moq_ietf_engine *e, uint64_t request_id)
{
    moq_list *pos;
    for (pos = e->pubns.next; pos != &e->pubns; pos = pos->next) {
        struct pubns *pn = moq_container_of(pos, struct pubns, link);
        if (pn->request_id == request_id) return pn;
    }
    return NULL;
}

/* PUBLISH_NAMESPACE on the control stream (st NULL) or on its own stream (17+, where the
 * stream's end withdraws it). */
static void on_publish_namespace(struct moq_ietf_engine *e, istream *st, const uint8_t *body,
                                 size_t len)
{
    moq_session *s = e->s;
    struct moq_ietf_publish_namespace m;
    int rv = moq_ietf_decode_publish_namespace(e->c, body, len, &m);
    if (rv < 0) {
        moq_buf_free(&m.ns);
        fail(e, moq_ietf_close_code(rv), "malformed PUBLISH_NAMESPACE");
        return;
    }
    if (!accept_request_id(e, m.request_id)) {
        moq_buf_free(&m.ns);
        return;
    }
    moq_buf full;
    moq_buf_init(&full);
    const char *why = NULL;
    if (!moq_perms_can_publish(&s->perms, (const char *)m.ns.data, m.ns.len))
        why = "unauthorized";
    else if (pubns_find(e, m.ns.data, m.ns.len))
        why = "duplicate namespace";
    else if (moq_session_global_path(s, m.ns.data, m.ns.len, &full) < 0)
        why = "bad namespace";
    struct pubns *pn = why ? NULL : calloc(1, sizeof(*pn));
    if (!why && (!pn || !(pn->path = malloc(m.ns.len + 1)))) why = "out of memory";
    if (!why) {
        memcpy(pn->path, m.ns.data, m.ns.len);
        pn->path[m.ns.len] = '\0';
        pn->e = e;
        pn->request_id = m.request_id;
        if (st) {
            pn->st = st;
            st->kind = IS_PUBNS;
            st->obj = pn;
        }
        moq_list_push_back(&e->pubns, &pn->link);
        /* the OK first: subscriptions the announcement triggers follow it */
        struct moq_ietf_request_ok ok = {.request_id = m.request_id};
        moq_buf b;
        moq_buf_init(&b);
        if (moq_ietf_encode_request_ok(&b, e->c, MOQ_IETF_REQ_PUBLISH_NAMESPACE, &ok) == 0)
            send_on(e, st, &b);
        moq_buf_free(&b);
        rv = moq_origin_announce(s->cfg.origin, full.data, full.len, NULL, 0, &pubns_ops, pn,
                                 &pn->route);
        if (rv < 0) {
            pn->route = NULL;
            moq_warn("ietf", "%s: cannot announce /%s: %s", s->t->peer, (const char *)full.data,
                     moq_strerror(rv));
        } else {
            moq_info("ietf", "%s: the peer publishes /%s", s->t->peer, (const char *)full.data);
            s->stats.announces_in++;
        }
    } else {
        if (pn) free(pn);
        moq_info("ietf", "%s: PUBLISH_NAMESPACE /%.*s refused: %s", s->t->peer, (int)m.ns.len,
                 (const char *)m.ns.data, why);
        refuse_on(e, st, MOQ_IETF_REQ_PUBLISH_NAMESPACE, m.request_id, SUB_ERR_UNAUTHORIZED, why);
        st_fin(st);
    }
    moq_buf_free(&full);
    moq_buf_free(&m.ns);
}

static void pubns_free(struct pubns *pn, bool graceful)
{
    struct moq_ietf_engine *e = pn->e;
    pn->busy++; /* its tracks are released from inside */
    pn->ending = false;
    moq_list_remove(&pn->link);
    moq_str suffix;
    if (pn->ns &&
        moq_path_strip_prefix(moq_str_make(pn->path, strlen(pn->path)),
                              moq_str_make(pn->ns->prefix, strlen(pn->ns->prefix)), &suffix) == 0)
        moq_map_del(&pn->ns->routes, suffix.ptr, suffix.len);
    if (pn->st) {
        st_fin(pn->st);
        pn->st->obj = NULL;
        pn->st->kind = IS_IGNORE;
    }
    if (pn->route) {
        if (graceful)
            moq_route_unannounce(pn->route);
        else
            moq_route_lost(pn->route, now_us(e));
    }
    free(pn->path);
    free(pn);
}

/* Whether a subscription of ours still receives from pn's route. */
static bool pubns_feeds(const struct pubns *pn)
{
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&pn->e->ups, &it, NULL, &v)) {
        const struct usub *us = v;
        if (us->pn == pn && us->track && !us->released && !us->finished) return true;
    }
    return false;
}

static void pubns_ending_check(struct pubns *pn)
{
    if (pn->ending && !pn->busy && !pubns_feeds(pn)) pubns_free(pn, true);
}

/* The peer ended an announcement. A subscription runs until its PUBLISH_DONE and the
 * streams it counts arrived (they may come after the announcement's end), so while one of
 * ours still receives from the route it is only withdrawn. */
static void pubns_end(struct pubns *pn, bool graceful)
{
    struct moq_ietf_engine *e = pn->e;
    if (!graceful || e->s->closing || !pn->route || !pubns_feeds(pn)) {
        pubns_free(pn, graceful);
        return;
    }
    if (pn->ending) return;
    if (pn->st) {
        st_fin(pn->st);
        pn->st->obj = NULL;
        pn->st->kind = IS_IGNORE;
        pn->st = NULL;
    }
    moq_str suffix;
    if (pn->ns &&
        moq_path_strip_prefix(moq_str_make(pn->path, strlen(pn->path)),
                              moq_str_make(pn->ns->prefix, strlen(pn->ns->prefix)), &suffix) == 0)
        moq_map_del(&pn->ns->routes, suffix.ptr, suffix.len);
    pn->ns = NULL;
    pn->request_id = UINT64_MAX;
    pn->ending = true;
    pn->ending_deadline = now_us(e) + ENDING_MAX_US;
    pn->busy++;
    moq_route_withdraw(pn->route);
    pn->busy--;
    moq_session_deadline_changed(e->s);
    pubns_ending_check(pn);
}

static void on_publish_namespace_done(struct moq_ietf_engine *e, const uint8_t *body, size_t len)
{
    struct moq_ietf_namespace_done m;
    int rv = moq_ietf_decode_publish_namespace_done(e->c, false, body, len, &m);
    if (rv < 0) {
        moq_buf_free(&m.ns);
        fail(e, moq_ietf_close_code(rv), "malformed PUBLISH_NAMESPACE_DONE");
        return;
    }
    struct pubns *pn =
        e->c->ns_done_by_id ? pubns_by_id(e, m.request_id) : pubns_find(e, m.ns.data, m.ns.len);
    moq_buf_free(&m.ns);
    if (pn) pubns_end(pn, true);
}

static void on_subscribe_ok(struct moq_ietf_engine *e, istream *st, const uint8_t *body,
                            size_t len);
static void on_subscribe_error(struct moq_ietf_engine *e, istream *st, const uint8_t *body,
                               size_t len);
static void on_publish_done(struct moq_ietf_engine *e, istream *st, const uint8_t *body,
                            size_t len);

/* ---------------------------------------------------------------- consuming: groups in */

static void gin_free(struct gin *gi)
{
    struct moq_ietf_engine *e = gi->e;
    if (gi->waiting) {
        moq_list_remove(&gi->wait_link);
        e->n_alias_wait--;
    }
    e->alias_wait_bytes -= gi->held.len;
    moq_frame_asm_clear(&gi->fa, e->s);
    moq_buf_free(&gi->ext);
    if (gi->group) {
        if (moq_group_state(gi->group, NULL) == MOQ_GROUP_OPEN)
            moq_group_abort(gi->group, MOQ_REASON_CANCEL);
        moq_group_unref(gi->group);
    }
    moq_buf_free(&gi->held);
    free(gi);
}

/* The stream's group is done with (or never was): the stream goes on being ignored. */
static void gin_detach(struct gin *gi)
{
    istream *st = gi->st;
    gi->st = NULL;
    if (!st) return;
    st->kind = IS_IGNORE;
    st->obj = NULL;
}

static void gin_drop(struct gin *gi, uint64_t code)
{
    if (gi->st) st_stop(gi->st, code);
    gin_detach(gi);
    gin_free(gi);
}

static bool gin_begin(struct gin *gi, struct usub *us)
{
    struct moq_ietf_engine *e = gi->e;
    gi->us = us;
    if (!us->track || us->released) return false;
    int rv =
        moq_track_begin_group(us->track, us->pn->route, gi->p.header.group, now_us(e), &gi->group);
    if (rv < 0) {
        gi->group = NULL;
        return false;
    }
    const moq_track_info *info = moq_track_get_info(us->track);
    gi->declared_scale = us->timescale;
    gi->track_scale = info ? info->timescale : 1000;
    if (!us->has_seq || gi->p.header.group > us->max_seq) us->max_seq = gi->p.header.group;
    us->has_seq = true;
    us->streams++;
    e->s->stats.groups_in++;
    usub_check_done(us);
    return true;
}

static void gin_data(struct gin *gi, const uint8_t *data, size_t len, bool fin);

static void gin_wait(struct gin *gi, const uint8_t *data, size_t len, bool fin)
{
    struct moq_ietf_engine *e = gi->e;
    if (!gi->waiting) {
        if (e->n_alias_wait >= MAX_ALIAS_WAIT_STREAMS) {
            gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
            return;
        }
        gi->waiting = true;
        e->n_alias_wait++;
        moq_list_push_back(&e->alias_wait, &gi->wait_link);
    }
    if (len > MAX_ALIAS_WAIT_BYTES - e->alias_wait_bytes ||
        moq_buf_append(&gi->held, data, len) < 0) {
        moq_debug("ietf", "%s: a stream of group %llu dropped: over %u bytes wait for an alias",
                  e->s->t->peer, (unsigned long long)gi->p.header.group,
                  (unsigned)MAX_ALIAS_WAIT_BYTES);
        gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
        return;
    }
    e->alias_wait_bytes += len;
    gi->held_fin = fin;
}

/* The alias of waiting streams became known. */
static void release_alias_waiters(struct moq_ietf_engine *e, struct usub *us)
{
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &e->alias_wait)
    {
        struct gin *gi = moq_container_of(pos, struct gin, wait_link);
        if (gi->p.header.track_alias != us->alias) continue;
        moq_list_remove(&gi->wait_link);
        e->n_alias_wait--;
        gi->waiting = false;
        if (!gin_begin(gi, us)) {
            gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
            continue;
        }
        moq_buf held = gi->held;
        moq_buf_init(&gi->held);
        e->alias_wait_bytes -= held.len;
        gin_data(gi, held.data, held.len, gi->held_fin);
        moq_buf_free(&held);
        if (e->s->closing) return;
    }
}

/* The frame timestamp of the object whose extension block is gi->ext (well-formed), in the
 * track's units: the object's Timestamp property when the track declared a timescale (as
 * upstream, a track that declared none opted out of timestamps), else the time it arrived.
 * False when the Timestamp cannot be expressed (a zero Timescale, out of range). */
static bool object_timestamp(struct gin *gi, uint64_t *ts)
{
    moq_session *s = gi->e->s;
    struct moq_ietf_time t;
    int rv = 0;
    if (gi->declared_scale && gi->ext.len)
        rv = moq_ietf_object_time_decode(gi->e->c, gi->ext.data, gi->ext.len, gi->declared_scale,
                                         &t);
    if (rv < 0) return false;
    if (rv == 0) t = (struct moq_ietf_time){s->cfg.clock->wall_us(s->cfg.clock->ctx), 1000000};
    return moq_ietf_time_convert(t.value, t.scale, gi->track_scale, ts);
}

static void gin_data(struct gin *gi, const uint8_t *data, size_t len, bool fin)
{
    struct moq_ietf_engine *e = gi->e;
    moq_session *s = e->s;
    if (gi->waiting) {
        gin_wait(gi, data, len, fin);
        return;
    }
    struct moq_ietf_sg_ev ev;
    int rv;
    while ((rv = moq_ietf_sg_next(&gi->p, &data, &len, &ev)) > 0) {
        switch (ev.kind) {
        case MOQ_IETF_SG_HEADER: {
            /* as upstream: a group is subgroup 0 (or the one named by its first object, 0 as
             * well), the model has no place for others */
            if (ev.header.subgroup != 0) {
                moq_debug("ietf", "%s: a stream of subgroup %llu of group %llu dropped", s->t->peer,
                          (unsigned long long)ev.header.subgroup,
                          (unsigned long long)ev.header.group);
                gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
                return;
            }
            struct usub *us = moq_u64map_get(&e->aliases, ev.header.track_alias);
            if (!us && moq_u64map_get(&e->released, ev.header.track_alias)) {
                gin_drop(gi, MOQ_IETF_STREAM_CANCELLED); /* we unsubscribed */
                return;
            }
            if (!us) {
                gin_wait(gi, data, len, fin);
                return;
            }
            if (!gin_begin(gi, us)) {
                gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
                return;
            }
            break;
        }
        case MOQ_IETF_SG_EXT:
            if (moq_buf_append(&gi->ext, ev.data, ev.len) < 0) {
                moq_group_abort(gi->group, MOQ_REASON_CANCEL);
                gin_drop(gi, MOQ_IETF_STREAM_INTERNAL_ERROR);
                return;
            }
            break;
        case MOQ_IETF_SG_OBJECT: {
            uint64_t expect = moq_group_frame_count(gi->group);
            if (ev.object_id != expect) {
                /* as upstream: the frames after a gap would be renumbered */
                moq_debug("ietf", "%s: group %llu dropped: object %llu where %llu was due",
                          s->t->peer, (unsigned long long)gi->p.header.group,
                          (unsigned long long)ev.object_id, (unsigned long long)expect);
                moq_group_abort(gi->group, MOQ_REASON_CANCEL);
                gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
                return;
            }
            moq_buf side;
            moq_buf_init(&side);
            const moq_ietf_caps *canon = moq_ietf_caps_get(MOQ_IETF_EXT_CANONICAL);
            rv = moq_ietf_ext_convert(e->c, gi->ext.data, gi->ext.len, canon, &side);
            if (rv == MOQ_ERR_PROTO) {
                moq_buf_free(&side);
                fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "malformed object extensions");
                return;
            }
            if (rv == MOQ_ERR_INVALID) { /* a value over 2^62: no place for it on 14-16 */
                side.len = 0;
                rv = 0;
            }
            uint64_t ts = 0;
            if (rv == 0 && !object_timestamp(gi, &ts)) {
                moq_buf_free(&side);
                moq_debug("ietf", "%s: group %llu dropped: an object Timestamp out of range",
                          s->t->peer, (unsigned long long)gi->p.header.group);
                moq_group_abort(gi->group, MOQ_REASON_CANCEL);
                gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
                return;
            }
            gi->ext.len = 0;
            if (rv == 0)
                rv = moq_frame_asm_begin_side(&gi->fa, s, ts, ev.size, side.data,
                                              (uint32_t)side.len);
            moq_buf_free(&side);
            if (rv < 0) {
                moq_group_abort(gi->group, MOQ_REASON_FRAME_TOO_LARGE);
                gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
                return;
            }
            break;
        }
        case MOQ_IETF_SG_PAYLOAD:
            moq_frame_asm_payload(&gi->fa, ev.data, ev.len);
            /* a frame that takes long to arrive keeps its group from expiring meanwhile */
            moq_group_touch(gi->group, moq_session_now(s));
            break;
        case MOQ_IETF_SG_OBJECT_END:
            if (moq_frame_asm_end(&gi->fa, s, gi->group) < 0) {
                gin_drop(gi, MOQ_IETF_STREAM_CANCELLED);
                return;
            }
            break;
        default: /* end of group: the FIN follows */
            gi->ext.len = 0;
            break;
        }
    }
    if (rv < 0) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "malformed subgroup stream");
        return;
    }
    if (!fin) return;
    if (!moq_ietf_sg_idle(&gi->p) || !gi->group) {
        if (gi->group) moq_group_abort(gi->group, MOQ_REASON_CANCEL);
    } else {
        moq_group_finish(gi->group, now_us(e));
    }
    gin_detach(gi);
    gin_free(gi);
}

/* ---------------------------------------------------------------- SETUP and control */

static void authorize(struct moq_ietf_engine *e, const struct moq_ietf_setup *setup)
{
    moq_session *s = e->s;
    char path[1024] = "/";
    moq_str sp = moq_ietf_setup_bytes(setup, MOQ_IETF_OPT_PATH);
    if (s->t->path)
        snprintf(path, sizeof(path), "%s", s->t->path);
    else if (sp.len && sp.len < sizeof(path))
        snprintf(path, sizeof(path), "%.*s", (int)sp.len, sp.ptr);
    moq_perms perms = {0};
    uint64_t code = s->cfg.authorize(s->cfg.ctx, s, path, MOQ_ROLE_BOTH, &perms);
    if (code == 0 && !perms.root && !(perms.root = strdup(""))) code = 1;
    if (code == 0 && perms.publish.len == 0 && perms.subscribe.len == 0) code = 1;
    if (code != 0) {
        moq_perms_free(&perms);
        fail(e, MOQ_IETF_UNAUTHORIZED, "not authorized");
        return;
    }
    s->perms = perms;
    s->authorized = true;
    if (perms.expires > 0) {
        uint64_t now = now_us(e), wall = s->cfg.clock->wall_us(s->cfg.clock->ctx);
        uint64_t at = (uint64_t)perms.expires * MOQ_US_PER_S;
        e->expiry_deadline = at <= wall ? now : now + (at - wall);
    }
}

static void on_client_setup(struct moq_ietf_engine *e, uint64_t type, const uint8_t *body,
                            size_t len)
{
    moq_session *s = e->s;
    if (type != (e->c->uni_setup ? MOQ_IETF_SETUP : MOQ_IETF_CLIENT_SETUP)) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "expected CLIENT_SETUP");
        return;
    }
    struct moq_ietf_setup setup;
    int rv = moq_ietf_decode_setup(e->c, true, body, len, &setup);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed CLIENT_SETUP");
        return;
    }
    bool offered = !e->c->setup_versions; /* 15+: the ALPN chose the draft */
    for (size_t i = 0; i < setup.n_versions; i++)
        if (setup.versions[i] == e->c->code) offered = true;
    if (!offered) {
        fail(e, MOQ_IETF_VERSION_NEGOTIATION_FAILED, "no supported version offered");
        return;
    }
    uint64_t limit = 0;
    moq_ietf_setup_number(&setup, MOQ_IETF_OPT_MAX_REQUEST_ID, &limit);
    e->peer_limit = limit;
    e->setup_done = true;
    e->setup_deadline = UINT64_MAX;
    authorize(e, &setup);
    if (s->closing) return;
    struct moq_ietf_setup_out out = {.version = e->c->code,
                                     .has_max_request_id = e->c->max_request_id,
                                     .max_request_id = e->granted,
                                     .implementation = "moq-relay"};
    int64_t sid = e->control ? e->control->sid : -1;
    if (e->c->uni_setup) { /* 17+: our SETUP opens a uni stream of our own */
        istream *st = NULL;
        if (moq_transport_open(s->t, false, &sid) < 0 || !(st = st_new(e, sid, IS_IGNORE, false))) {
            fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot open the SETUP stream");
            return;
        }
        st_carries_messages(st);
        e->setup_out = st;
    }
    moq_buf b;
    moq_buf_init(&b);
    rv = moq_ietf_encode_setup(&b, e->c, false, &out);
    if (rv == 0) rv = moq_transport_write_bytes(s->t, sid, b.data, b.len, false);
    moq_buf_free(&b);
    if (rv < 0) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot send SETUP");
        return;
    }
    moq_session_deadline_changed(s);
    moq_debug("ietf", "%s: %s session authorized at /%s", s->t->peer, e->c->name, s->perms.root);
}

static void on_control_msg(struct moq_ietf_engine *e, uint64_t type, const uint8_t *body,
                           size_t len)
{
    if (!e->setup_done) {
        if (e->s->t->is_client)
            on_server_setup(e, type, body, len);
        else
            on_client_setup(e, type, body, len);
        return;
    }
    switch (type) {
    case MOQ_IETF_SUBSCRIBE:
        on_subscribe(e, NULL, body, len);
        break;
    case MOQ_IETF_UNSUBSCRIBE:
        on_unsubscribe(e, body, len);
        break;
    case MOQ_IETF_SUBSCRIBE_NAMESPACE_V1:
        if (e->c->ns_stream) {
            fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "SUBSCRIBE_NAMESPACE on the control stream");
            return;
        }
        on_subscribe_namespace(e, NULL, type, body, len);
        break;
    case MOQ_IETF_UNSUBSCRIBE_NAMESPACE:
        on_unsubscribe_namespace(e, body, len);
        break;
    case MOQ_IETF_PUBLISH_NAMESPACE:
        on_publish_namespace(e, NULL, body, len);
        break;
    case MOQ_IETF_PUBLISH_NAMESPACE_DONE:
        on_publish_namespace_done(e, body, len);
        break;
    case MOQ_IETF_SUBSCRIBE_OK:
        on_subscribe_ok(e, NULL, body, len);
        break;
    case MOQ_IETF_REQUEST_ERROR:
        on_subscribe_error(e, NULL, body, len);
        break;
    case MOQ_IETF_PUBLISH_DONE:
        on_publish_done(e, NULL, body, len);
        break;
    case MOQ_IETF_REQUEST_OK:             /* PUBLISH_NAMESPACE_OK for what we advertised */
    case MOQ_IETF_SUBSCRIBE_NAMESPACE_OK: /* draft-14 */
        on_request_ok(e, body, len);
        break;
    case MOQ_IETF_SUBSCRIBE_NAMESPACE_ERROR: /* draft-14 */
        on_subscribe_error(e, NULL, body, len);
        break;
    case MOQ_IETF_NAMESPACE: /* PUBLISH_NAMESPACE_ERROR on draft-14 */
        if (!e->c->request_error) on_subscribe_error(e, NULL, body, len);
        break;
    case MOQ_IETF_REQUEST_UPDATE:
        on_request_update(e, NULL, body, len);
        break;
    case MOQ_IETF_PUBLISH_NAMESPACE_CANCEL: /* the peer no longer wants one */
    case MOQ_IETF_REQUESTS_BLOCKED:
        break;
    case MOQ_IETF_MAX_REQUEST_ID: {
        uint64_t id;
        int rv = moq_ietf_decode_id_msg(e->c, body, len, &id);
        if (rv < 0 || id < e->peer_limit) {
            fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "bad MAX_REQUEST_ID");
            return;
        }
        e->peer_limit = id;
        break;
    }
    case MOQ_IETF_GOAWAY:
        fail(e, MOQ_IETF_NO_ERROR, "peer sent GOAWAY");
        break;
    case MOQ_IETF_FETCH:
        on_fetch(e, NULL, body, len);
        break;
    case MOQ_IETF_TRACK_STATUS:
        on_track_status(e, NULL, body, len);
        break;
    case MOQ_IETF_PUBLISH: {
        uint64_t id;
        ietf_r r;
        ir_init(&r, body, len, e->c);
        id = ir_varint(&r);
        if (r.err) {
            fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "malformed request");
            return;
        }
        if (accept_request_id(e, id))
            refuse(e, MOQ_IETF_REQ_PUBLISH, id, SUB_ERR_NOT_SUPPORTED, "not supported");
        break;
    }
    default:
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "unknown control message");
        break;
    }
}

/* One message at p[0..left): 1 with its type, header and body length, 0 when incomplete,
 * < 0 when malformed. */
static int msg_frame(struct moq_ietf_engine *e, const uint8_t *p, size_t left, uint64_t *type,
                     size_t *hdr, size_t *body_len)
{
    int n = moq_ietf_varint_get(e->c, p, left, type);
    if (n == MOQ_ERR_AGAIN) return 0;
    if (n < 0) return n;
    if (left < (size_t)n + 2) return 0;
    *hdr = (size_t)n + 2;
    *body_len = ((size_t)p[n] << 8) | p[n + 1];
    return left < *hdr + *body_len ? 0 : 1;
}

/* PUBLISH on its own stream (17+): refused there (this relay subscribes instead). */
static void refuse_publish(struct moq_ietf_engine *e, istream *st, const uint8_t *body, size_t len)
{
    ietf_r r;
    ir_init(&r, body, len, e->c);
    uint64_t id = ir_varint(&r);
    if (r.err) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "malformed request");
        return;
    }
    refuse_on(e, st, MOQ_IETF_REQ_PUBLISH, id, SUB_ERR_NOT_SUPPORTED, "not supported");
    st_fin(st);
}

/* The first message of a request stream names the request. */
static void on_request(struct moq_ietf_engine *e, istream *st, uint64_t type, const uint8_t *body,
                       size_t len)
{
    const moq_ietf_caps *c = e->c;
    uint64_t ns_type = c->ns_v2 ? MOQ_IETF_SUBSCRIBE_NAMESPACE_V2 : MOQ_IETF_SUBSCRIBE_NAMESPACE_V1;
    if (type == ns_type)
        on_subscribe_namespace(e, st, type, body, len);
    else if (c->request_streams && type == MOQ_IETF_SUBSCRIBE)
        on_subscribe(e, st, body, len);
    else if (c->request_streams && type == MOQ_IETF_PUBLISH_NAMESPACE)
        on_publish_namespace(e, st, body, len);
    else if (c->request_streams && type == MOQ_IETF_FETCH)
        on_fetch(e, st, body, len);
    else if (c->request_streams && type == MOQ_IETF_TRACK_STATUS)
        on_track_status(e, st, body, len);
    else if (c->request_streams && type == MOQ_IETF_PUBLISH)
        refuse_publish(e, st, body, len);
    else
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "unexpected request on a stream");
    if (!e->s->closing && st->kind == IS_REQ) st->kind = IS_IGNORE; /* refused */
}

/* ---- what each kind of message stream does with the peer's messages and with its end ---- */

static void unexpected_msg(istream *st, uint64_t type, const uint8_t *body, size_t len)
{
    fail(st->e, MOQ_IETF_PROTOCOL_VIOLATION, "unexpected message on a request stream");
}

/* The first message of a request stream names the request. */
static void req_msg(istream *st, uint64_t type, const uint8_t *body, size_t len)
{
    on_request(st->e, st, type, body, len);
}

/* The peer's SUBSCRIBE or PUBLISH_NAMESPACE: only updates may follow (those of a
 * PUBLISH_NAMESPACE change nothing here). */
static void update_msg(istream *st, uint64_t type, const uint8_t *body, size_t len)
{
    if (type != MOQ_IETF_REQUEST_UPDATE)
        unexpected_msg(st, type, body, len);
    else if (st->kind == IS_SUB)
        on_request_update(st->e, st, body, len);
}

/* Answers to our SUBSCRIBE (17+). */
static void up_msg(istream *st, uint64_t type, const uint8_t *body, size_t len)
{
    struct moq_ietf_engine *e = st->e;
    if (type == MOQ_IETF_SUBSCRIBE_OK)
        on_subscribe_ok(e, st, body, len);
    else if (type == MOQ_IETF_REQUEST_ERROR)
        on_subscribe_error(e, st, body, len);
    else if (type == MOQ_IETF_PUBLISH_DONE)
        on_publish_done(e, st, body, len);
    else
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "unexpected answer to SUBSCRIBE");
}

/* The peer's SETUP stream (17+): its SETUP, then GOAWAY. */
static void setup_msg(istream *st, uint64_t type, const uint8_t *body, size_t len)
{
    struct moq_ietf_engine *e = st->e;
    if (!e->setup_done && e->s->t->is_client)
        on_server_setup(e, type, body, len);
    else if (!e->setup_done)
        on_client_setup(e, type, body, len);
    else if (type == MOQ_IETF_GOAWAY)
        fail(e, MOQ_IETF_NO_ERROR, "peer sent GOAWAY");
}

static void nsub_msg(istream *st, uint64_t type, const uint8_t *body, size_t len)
{
    on_nsub_msg(st->obj, type, body, len);
}

/* The peer refused our PUBLISH_NAMESPACE. A refusal for want of authorization ends the
 * session as a moq-lite relay ends the session of a client publishing outside its grant, so
 * the publishing client learns why and stops; other refusals only leave it unannounced. */
static void pubout_refused(struct moq_ietf_engine *e, const struct pubout *po, uint64_t code)
{
    moq_warn("ietf", "%s: the peer refused PUBLISH_NAMESPACE /%s (code %llu)", e->s->t->peer,
             po->path, (unsigned long long)code);
    if (code != SUB_ERR_UNAUTHORIZED || !e->s->t->is_client) return;
    char why[320];
    snprintf(why, sizeof(why), "not allowed to publish %.256s", po->path);
    fail(e, MOQ_IETF_UNAUTHORIZED, why);
}

/* Answers to our PUBLISH_NAMESPACE (17+). */
static void pubout_msg(istream *st, uint64_t type, const uint8_t *body, size_t len)
{
    if (type == MOQ_IETF_REQUEST_OK) {
        request_accepted(st->e, st->obj, NULL);
    } else if (type == MOQ_IETF_REQUEST_ERROR) {
        struct moq_ietf_request_error m;
        int rv = moq_ietf_decode_request_error(st->e->c, body, len, &m);
        if (rv < 0)
            fail(st->e, moq_ietf_close_code(rv), "malformed REQUEST_ERROR");
        else
            pubout_refused(st->e, st->obj, m.code);
    }
}

/* The end handlers return false when the stream is to stay as it is; otherwise our side
 * follows the peer's (FIN or reset) and the stream is ignored from then on. */

static bool ns_end(istream *st, bool graceful)
{
    if (st->obj) nswatch_free(st->obj); /* the peer unsubscribed */
    return true;
}

static bool sub_end(istream *st, bool graceful)
{
    struct dsub *ds = st->obj;
    if (ds) {
        ds->over = true;
        dsub_free(ds);
    }
    return true;
}

static bool pubns_stream_end(istream *st, bool graceful)
{
    if (st->obj) pubns_end(st->obj, graceful);
    return true;
}

/* Our SUBSCRIBE's stream: the peer's FIN comes after PUBLISH_DONE; a reset ends the track. */
static bool up_end(istream *st, bool graceful)
{
    struct usub *us = st->obj;
    if (!us || graceful) return false;
    moq_track *track = us->track;
    moq_route *route = us->pn->route;
    us->released = true;
    us->track = NULL;
    usub_free(us);
    if (track) moq_track_abort(track, route, MOQ_REASON_CANCEL);
    return false;
}

static bool setup_end(istream *st, bool graceful)
{
    if (graceful) fail(st->e, MOQ_IETF_PROTOCOL_VIOLATION, "SETUP stream closed");
    return false;
}

static bool nsub_end(istream *st, bool graceful)
{
    if (st->obj) nsub_free(st->obj, graceful);
    return true;
}

static bool pubout_end(istream *st, bool graceful)
{
    if (st->obj) ((struct pubout *)st->obj)->st = NULL; /* withdrawn by the peer */
    st->obj = NULL;
    return true;
}

struct is_ops {
    /* one whole message; NULL for the kinds that are not message streams */
    void (*msg)(istream *st, uint64_t type, const uint8_t *body, size_t len);
    /* the peer ended its side (reset: !graceful); NULL: nothing but following it */
    bool (*end)(istream *st, bool graceful);
};

static const struct is_ops not_msg_ops = {0};
static const struct is_ops req_ops = {req_msg, NULL};
static const struct is_ops ns_ops = {unexpected_msg, ns_end};
static const struct is_ops sub_ops = {update_msg, sub_end};
static const struct is_ops pubns_stream_ops = {update_msg, pubns_stream_end};
static const struct is_ops up_ops = {up_msg, up_end};
static const struct is_ops setup_ops = {setup_msg, setup_end};
static const struct is_ops nsub_ops = {nsub_msg, nsub_end};
static const struct is_ops pubout_ops = {pubout_msg, pubout_end};

static const struct is_ops *const kind_ops[] = {
    [IS_NEW] = &not_msg_ops,
    [IS_CONTROL] = &not_msg_ops,
    [IS_GROUP_IN] = &not_msg_ops,
    [IS_GROUP_OUT] = &not_msg_ops,
    [IS_REQ] = &req_ops,
    [IS_NS] = &ns_ops,
    [IS_SUB] = &sub_ops,
    [IS_PUBNS] = &pubns_stream_ops,
    [IS_UP] = &up_ops,
    [IS_SETUP] = &setup_ops,
    [IS_NSUB] = &nsub_ops,
    [IS_PUBOUT] = &pubout_ops,
    [IS_IGNORE] = &not_msg_ops,
};
_Static_assert(sizeof(kind_ops) / sizeof(kind_ops[0]) == IS_IGNORE + 1,
               "every stream kind has its operations");

static void on_stream_msg(struct moq_ietf_engine *e, istream *st, uint64_t type,
                          const uint8_t *body, size_t len)
{
    const struct is_ops *o = kind_ops[st->kind];
    (o->msg ? o->msg : unexpected_msg)(st, type, body, len);
}

/* The peer ended its side of a message stream (reset: !graceful). */
static void on_stream_end(struct moq_ietf_engine *e, istream *st, bool graceful)
{
    const struct is_ops *o = kind_ops[st->kind];
    if (o->end && !o->end(st, graceful)) return;
    if (graceful)
        st_fin(st);
    else
        st_reset(st, MOQ_IETF_STREAM_CANCELLED);
    st->kind = IS_IGNORE;
}

/* A stream of framed messages: request streams (16+) and the SETUP stream (17+). */
static bool is_msg_stream(const istream *st)
{
    return kind_ops[st->kind]->msg != NULL;
}

static void msg_stream_data(struct moq_ietf_engine *e, istream *st, const uint8_t *data, size_t len,
                            bool fin)
{
    if (moq_buf_append(&st->in, data, len) < 0) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return;
    }
    uint64_t type;
    size_t hdr, body_len, off = 0;
    int n;
    while (st->kind != IS_IGNORE && off < st->in.len &&
           (n = msg_frame(e, st->in.data + off, st->in.len - off, &type, &hdr, &body_len)) != 0) {
        if (n < 0) {
            fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "malformed message on a request stream");
            return;
        }
        const uint8_t *body = st->in.data + off + hdr;
        off += hdr + body_len;
        on_stream_msg(e, st, type, body, body_len);
        if (e->s->closing) return;
    }
    if (off) {
        memmove(st->in.data, st->in.data + off, st->in.len - off);
        st->in.len -= off;
    }
    if (st->in.len > MAX_MSG_BYTES) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "message too long");
        return;
    }
    if (fin && st->kind != IS_IGNORE) on_stream_end(e, st, true);
}

/* ---------------------------------------------------------------- compat SETUP */

/* Whether the relay lets the compat SETUP choose the version named so. */
static bool compat_allowed(const moq_session *s, const char *name)
{
    if (!s->cfg.n_compat_allowed) return true;
    for (size_t i = 0; i < s->cfg.n_compat_allowed; i++)
        if (strcmp(s->cfg.compat_allowed[i], name) == 0) return true;
    return false;
}

/* The version a compat CLIENT_SETUP gets: the first offered one we allow, in the client's
 * order, as upstream picks. Returns a moq-lite version (01/02), 0 for draft-14, or
 * MOQ_ERR_NOT_FOUND / a decode error. */
static int compat_choice(const moq_session *s, const uint8_t *body, size_t len)
{
    struct moq_compat_client_setup m;
    int rv = moq_decode_compat_client_setup(body, len, &m);
    if (rv < 0) return rv;
    size_t n = m.n_versions < MOQ_COMPAT_KEEP_VERSIONS ? m.n_versions : MOQ_COMPAT_KEEP_VERSIONS;
    for (size_t i = 0; i < n; i++) {
        int lite = moq_version_from_compat_code(m.versions[i]);
        if (lite > 0 && compat_allowed(s, moq_version_name((moq_version)lite))) return lite;
        const moq_ietf_caps *c = moq_ietf_caps_get(MOQT_14);
        if (lite < 0 && m.versions[i] == c->code && compat_allowed(s, c->name)) return 0;
    }
    return MOQ_ERR_NOT_FOUND;
}

/* The compat SETUP chose moq-lite: the session becomes a moq-lite one on the same stream. */
static void hand_to_lite(struct moq_ietf_engine *e, int lite, const uint8_t *rest, size_t len,
                         bool fin)
{
    moq_session *s = e->s;
    int64_t sid = e->control->sid;
    moq_buf copy;
    moq_buf_init(&copy);
    if (moq_buf_append(&copy, rest, len) < 0) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return;
    }
    engine_free(e);
    moq_session_compat_adopt(s, sid, (moq_version)lite, copy.data, copy.len, fin);
    moq_buf_free(&copy);
}

/* Server on "moql": a CLIENT_SETUP that picks moq-lite leaves this engine. Returns whether
 * it did (or failed), i.e. the message is consumed. */
static bool compat_setup(struct moq_ietf_engine *e, uint64_t type, const uint8_t *body,
                         size_t body_len, size_t end, bool fin)
{
    moq_session *s = e->s;
    if (e->setup_done || s->t->is_client || type != MOQ_IETF_CLIENT_SETUP ||
        strcmp(s->t->protocol, MOQ_IETF_ALPN_COMPAT) != 0)
        return false;
    int choice = compat_choice(s, body, body_len);
    if (choice == 0) return false; /* moq-transport-14: this engine goes on */
    if (choice == MOQ_ERR_NOT_FOUND) {
        fail(e, MOQ_IETF_VERSION_NEGOTIATION_FAILED, "no supported version offered");
        return true;
    }
    if (choice < 0) {
        fail(e, moq_ietf_close_code(choice), "malformed CLIENT_SETUP");
        return true;
    }
    hand_to_lite(e, choice, e->ctrl_in.data + end, e->ctrl_in.len - end, fin);
    return true;
}

/* Frame control messages out of the stream's bytes. */
static void control_data(struct moq_ietf_engine *e, const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = e->s;
    if (moq_buf_append(&e->ctrl_in, data, len) < 0) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return;
    }
    size_t off = 0;
    while (!s->closing && off < e->ctrl_in.len) {
        uint64_t type;
        size_t hdr, body_len;
        int n = msg_frame(e, e->ctrl_in.data + off, e->ctrl_in.len - off, &type, &hdr, &body_len);
        if (n == 0) break;
        if (n < 0) {
            fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "malformed control message");
            return;
        }
        const uint8_t *body = e->ctrl_in.data + off + hdr;
        off += hdr + body_len;
        if (compat_setup(e, type, body, body_len, off, fin)) return; /* e may be gone */
        on_control_msg(e, type, body, body_len);
    }
    if (s->closing) return;
    if (off) {
        memmove(e->ctrl_in.data, e->ctrl_in.data + off, e->ctrl_in.len - off);
        e->ctrl_in.len -= off;
    }
    if (fin) fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "control stream closed");
}

/* ---------------------------------------------------------------- upstream answers */

static void subscribe_accepted(struct moq_ietf_engine *e, struct usub *us)
{
    moq_buf full;
    moq_buf_init(&full);
    size_t name_len;
    const uint8_t *name = moq_track_name(us->track, &name_len);
    if (moq_session_global_path(e->s, (const uint8_t *)us->pn->path, strlen(us->pn->path), &full) ==
        0)
        moq_session_emit(e->s, MOQ_SESSION_SUBSCRIBE_ACCEPTED, full.data, full.len, name, name_len);
    moq_buf_free(&full);
}

/* Answers to our SUBSCRIBE: on the control stream by request id, or on its stream st (17+). */
static void on_subscribe_ok(struct moq_ietf_engine *e, istream *st, const uint8_t *body, size_t len)
{
    struct moq_ietf_subscribe_ok m;
    int rv = moq_ietf_decode_subscribe_ok(e->c, body, len, &m);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed SUBSCRIBE_OK");
        return;
    }
    struct usub *us = st ? st->obj : moq_u64map_get(&e->ups, m.request_id);
    if (!us || us->ok) return; /* unsubscribed meanwhile */
    if (moq_u64map_get(&e->aliases, m.track_alias)) {
        fail(e, MOQ_IETF_DUPLICATE_TRACK_ALIAS, "duplicate track alias");
        return;
    }
    us->ok = true;
    us->alias = m.track_alias;
    us->timescale = m.props.timescale;
    /* our filter is Largest Object: the subscription starts after the largest location */
    if (m.has_largest) {
        us->start_group = m.largest_group;
        us->start_object = m.largest_object + 1;
    }
    moq_u64map_del(&e->released, m.track_alias);
    if (moq_u64map_put(&e->aliases, m.track_alias, us) < 0) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return;
    }
    if (us->track) {
        /* frames are kept in microseconds: each object's Timestamp converts into them */
        moq_track_info info;
        moq_track_info_default(&info);
        info.timescale = MOQ_IETF_TIMESCALE_DEFAULT;
        if (!moq_track_get_info(us->track)) moq_track_set_info(us->track, us->pn->route, &info);
        subscribe_accepted(e, us);
    }
    uint64_t id = us->request_id;
    release_alias_waiters(e, us);
    /* a priority that changed before the answer (draft-14) goes now, unless that ended it */
    if (!e->s->closing && (us = moq_u64map_get(&e->ups, id))) usub_send_update(e, us);
}

/* Answers to our SUBSCRIBE: on the control stream by request id, or on its stream st (17+). */
static void on_subscribe_error(struct moq_ietf_engine *e, istream *st, const uint8_t *body,
                               size_t len)
{
    struct moq_ietf_request_error m;
    int rv = moq_ietf_decode_request_error(e->c, body, len, &m);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed SUBSCRIBE_ERROR");
        return;
    }
    struct usub *us = st ? st->obj : moq_u64map_get(&e->ups, m.request_id);
    if (!us) {
        struct nsub *ns = st ? NULL : nsub_by_id(e, m.request_id);
        struct pubout *po = st ? NULL : moq_u64map_get(&e->pubouts, m.request_id);
        if (ns)
            nsub_refused(ns);
        else if (po)
            pubout_refused(e, po, m.code);
        return;
    }
    moq_track *track = us->track;
    moq_route *route = us->pn->route;
    us->released = true;
    us->track = NULL;
    usub_free(us);
    if (track) moq_track_abort(track, route, MOQ_REASON_NOT_FOUND);
}

/* Answers to our SUBSCRIBE: on the control stream by request id, or on its stream st (17+). */
static void on_publish_done(struct moq_ietf_engine *e, istream *st, const uint8_t *body, size_t len)
{
    struct moq_ietf_publish_done m;
    int rv = moq_ietf_decode_publish_done(e->c, body, len, &m);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed PUBLISH_DONE");
        return;
    }
    struct usub *us = st ? st->obj : moq_u64map_get(&e->ups, m.request_id);
    if (!us || !us->track || us->done) return;
    us->done = true;
    us->done_ok =
        m.status == MOQ_IETF_DONE_TRACK_ENDED || m.status == MOQ_IETF_DONE_SUBSCRIPTION_ENDED;
    us->done_streams = m.stream_count;
    usub_check_done(us);
}

/* ---------------------------------------------------------------- client role */

static struct nsub *nsub_by_id(struct moq_ietf_engine *e, uint64_t request_id)
{
    moq_list *pos;
    for (pos = e->nsubs.next; pos != &e->nsubs; pos = pos->next) {
        struct nsub *ns = moq_container_of(pos, struct nsub, link);
        if (ns->request_id == request_id) return ns;
    }
    return NULL;
}

/* Our SUBSCRIBE_NAMESPACE ended: the broadcasts its NAMESPACE entries announced end too. */
static void nsub_free(struct nsub *ns, bool graceful)
{
    moq_list_remove(&ns->link);
    if (ns->st) {
        ns->st->obj = NULL;
        ns->st->kind = IS_IGNORE;
    }
    size_t it = 0;
    void *v;
    while (moq_map_next(&ns->routes, &it, NULL, NULL, &v)) {
        struct pubns *pn = v;
        pn->ns = NULL; /* the map goes as a whole below */
        pubns_end(pn, graceful);
    }
    moq_map_free(&ns->routes);
    free(ns->prefix);
    free(ns);
}

/* The peer accepted a request of ours: a PUBLISH_NAMESPACE or a SUBSCRIBE_NAMESPACE. */
static void request_accepted(struct moq_ietf_engine *e, struct pubout *po, struct nsub *ns)
{
    moq_session *s = e->s;
    moq_buf full;
    moq_buf_init(&full);
    const char *rel = po ? po->path : ns->prefix;
    if (moq_session_global_path(s, (const uint8_t *)rel, strlen(rel), &full) == 0) {
        if (po) {
            moq_debug("ietf", "%s: the peer accepted PUBLISH_NAMESPACE /%s", s->t->peer, rel);
            moq_session_emit(s, MOQ_SESSION_ANNOUNCED, full.data, full.len, NULL, 0);
        } else if (!ns->open) {
            ns->open = true;
            moq_session_emit(s, MOQ_SESSION_ANNOUNCES_OPEN, full.data, full.len, NULL, 0);
        }
    }
    moq_buf_free(&full);
}

/* REQUEST_OK (or a draft-14 *_NAMESPACE_OK) on the control stream names the request by id. */
static void on_request_ok(struct moq_ietf_engine *e, const uint8_t *body, size_t len)
{
    struct moq_ietf_request_ok m;
    int rv = moq_ietf_decode_request_ok(e->c, body, len, &m);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed REQUEST_OK");
        return;
    }
    struct pubout *po = moq_u64map_get(&e->pubouts, m.request_id);
    struct nsub *ns = po ? NULL : nsub_by_id(e, m.request_id);
    if (po || ns) request_accepted(e, po, ns);
}

/* The peer refused our SUBSCRIBE_NAMESPACE: we may not see what is under its prefix. */
static void nsub_refused(struct nsub *ns)
{
    moq_session *s = ns->e->s;
    moq_info("ietf", "%s: the peer refused SUBSCRIBE_NAMESPACE /%s", s->t->peer, ns->prefix);
    char *prefix = strdup(ns->prefix);
    if (ns->st) st_fin(ns->st);
    nsub_free(ns, true);
    if (prefix && s->cfg.announce_refused) s->cfg.announce_refused(s->cfg.ctx, s, prefix);
    free(prefix);
}

/* SUBSCRIBE_NAMESPACE for a prefix the peer may publish under. */
static void nsub_start(struct moq_ietf_engine *e, const char *prefix)
{
    moq_session *s = e->s;
    uint64_t id;
    struct nsub *ns = calloc(1, sizeof(*ns));
    if (!ns || !(ns->prefix = strdup(prefix)) || !take_request_id(e, &id)) {
        if (ns) free(ns->prefix);
        free(ns);
        fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot subscribe to namespaces");
        return;
    }
    ns->e = e;
    ns->request_id = id;
    moq_map_init(&ns->routes);
    moq_list_push_back(&e->nsubs, &ns->link);
    if (e->c->ns_stream) {
        int64_t sid;
        if (moq_transport_open(s->t, true, &sid) < 0 || !(ns->st = st_new(e, sid, IS_NSUB, true))) {
            fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot open a SUBSCRIBE_NAMESPACE stream");
            return;
        }
        ns->st->obj = ns;
    }
    moq_buf b;
    moq_buf_init(&b);
    if (moq_ietf_encode_subscribe_namespace(&b, e->c, id, moq_str_make(prefix, strlen(prefix))) ==
        0)
        send_on(e, ns->st, &b);
    moq_buf_free(&b);
    moq_debug("ietf", "%s: SUBSCRIBE_NAMESPACE %llu /%s", s->t->peer, (unsigned long long)id,
              prefix);
}

/* A NAMESPACE entry: the broadcast rel (global path full) is announced on the origin. */
static void nsub_announce(struct nsub *ns, moq_str suffix, const moq_buf *rel, const moq_buf *full)
{
    struct moq_ietf_engine *e = ns->e;
    moq_session *s = e->s;
    struct pubns *pn = calloc(1, sizeof(*pn));
    if (!pn || !(pn->path = strndup((const char *)rel->data, rel->len))) {
        free(pn);
        fail(e, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return;
    }
    pn->e = e;
    pn->request_id = UINT64_MAX;
    moq_list_push_back(&e->pubns, &pn->link);
    if (moq_map_put(&ns->routes, suffix.ptr, suffix.len, pn) < 0) {
        pubns_free(pn, true);
        return;
    }
    pn->ns = ns;
    if (moq_origin_announce(s->cfg.origin, full->data, full->len, NULL, 0, &pubns_ops, pn,
                            &pn->route) < 0) {
        pn->route = NULL;
        pubns_free(pn, true);
        return;
    }
    moq_info("ietf", "%s: the peer publishes /%s", s->t->peer, (const char *)full->data);
    s->stats.announces_in++;
}

/* NAMESPACE / NAMESPACE_DONE (16+) on our SUBSCRIBE_NAMESPACE stream: a broadcast under the
 * prefix starts or ends. */
static void on_namespace(struct nsub *ns, bool done, const uint8_t *body, size_t len)
{
    struct moq_ietf_engine *e = ns->e;
    moq_session *s = e->s;
    struct moq_ietf_namespace m;
    int rv = moq_ietf_decode_namespace(e->c, done, false, body, len, &m);
    moq_buf rel, full;
    moq_buf_init(&rel);
    moq_buf_init(&full);
    if (rv < 0 || moq_path_join(&rel, moq_str_make(ns->prefix, strlen(ns->prefix)),
                                moq_str_make((const char *)m.suffix.data, m.suffix.len)) < 0) {
        moq_buf_free(&m.suffix);
        moq_buf_free(&rel);
        fail(e, rv < 0 ? moq_ietf_close_code(rv) : MOQ_IETF_PROTOCOL_VIOLATION,
             done ? "malformed NAMESPACE_DONE" : "malformed NAMESPACE");
        return;
    }
    struct pubns *pn = moq_map_get(&ns->routes, m.suffix.data, m.suffix.len);
    if (done && pn)
        pubns_end(pn, true);
    else if (!done && !pn && moq_perms_can_publish(&s->perms, (const char *)rel.data, rel.len) &&
             moq_session_global_path(s, rel.data, rel.len, &full) == 0)
        nsub_announce(ns, moq_str_make((const char *)m.suffix.data, m.suffix.len), &rel, &full);
    moq_buf_free(&m.suffix);
    moq_buf_free(&rel);
    moq_buf_free(&full);
}

/* A message on our SUBSCRIBE_NAMESPACE stream (16+). */
static void on_nsub_msg(struct nsub *ns, uint64_t type, const uint8_t *body, size_t len)
{
    if (type == MOQ_IETF_REQUEST_OK)
        request_accepted(ns->e, NULL, ns);
    else if (type == MOQ_IETF_REQUEST_ERROR)
        nsub_refused(ns);
    else if (type == MOQ_IETF_NAMESPACE || type == MOQ_IETF_NAMESPACE_DONE)
        on_namespace(ns, type == MOQ_IETF_NAMESPACE_DONE, body, len);
    else
        fail(ns->e, MOQ_IETF_PROTOCOL_VIOLATION, "unexpected message on a namespace stream");
}

static void pubwatch_on_announce(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    struct pubwatch *pw = ctx;
    if (!pw->e->s->closing) announce_to_peer(pw->e, ev);
}

static const moq_watch_ops pubwatch_ops = {.on_announce = pubwatch_on_announce};

/* Tell the peer about the origin's broadcasts under a prefix it may subscribe to. */
static void pubwatch_start(struct moq_ietf_engine *e, const char *prefix)
{
    moq_session *s = e->s;
    moq_buf full;
    moq_buf_init(&full);
    struct pubwatch *pw = calloc(1, sizeof(*pw));
    if (!pw || moq_session_global_path(s, (const uint8_t *)prefix, strlen(prefix), &full) < 0) {
        free(pw);
        moq_buf_free(&full);
        fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot watch the origin");
        return;
    }
    pw->e = e;
    moq_list_push_back(&e->pubwatches, &pw->link);
    if (moq_origin_watch(s->cfg.origin, full.data, full.len, 0, &pubwatch_ops, pw, &pw->watch) < 0)
        pw->watch = NULL;
    moq_buf_free(&full);
}

static void pubwatch_free(struct pubwatch *pw)
{
    moq_list_remove(&pw->link);
    if (pw->watch) moq_watch_close(pw->watch);
    free(pw);
}

/* Client: the peer's SETUP came and we are authorized; ask for what the peer publishes and
 * tell it what we publish. */
static void client_start(struct moq_ietf_engine *e)
{
    moq_session *s = e->s;
    for (size_t i = 0; i < s->perms.publish.len && !s->closing; i++)
        nsub_start(e, s->perms.publish.v[i]);
    for (size_t i = 0; i < s->perms.subscribe.len && !s->closing; i++)
        pubwatch_start(e, s->perms.subscribe.v[i]);
}

/* Client: CLIENT_SETUP on a control stream we open (14-16) or SETUP on a uni stream (17+). */
static void send_client_setup(struct moq_ietf_engine *e)
{
    moq_session *s = e->s;
    const moq_ietf_caps *c = e->c;
    int64_t sid;
    istream *st = NULL;
    int orv = moq_transport_open(s->t, !c->uni_setup, &sid);
    e->setup_pending = orv == MOQ_ERR_AGAIN; /* sent once the peer grants the stream */
    if (e->setup_pending) return;
    if (orv < 0 || !(st = st_new(e, sid, c->uni_setup ? IS_IGNORE : IS_CONTROL, !c->uni_setup))) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot open the SETUP stream");
        return;
    }
    if (!c->uni_setup) {
        e->control = st;
    } else {
        st_carries_messages(st);
        e->setup_out = st;
    }
    uint64_t version = c->code;
    struct moq_ietf_setup_out out = {.versions = &version,
                                     .n_versions = 1,
                                     .has_max_request_id = c->max_request_id,
                                     .max_request_id = e->granted,
                                     .implementation = "moq-relay"};
    if (s->t->kind == MOQ_TRANSPORT_QUIC && s->cfg.setup_path) out.path = s->cfg.setup_path;
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_ietf_encode_setup(&b, c, true, &out);
    if (rv == 0) rv = moq_transport_write_bytes(s->t, sid, b.data, b.len, false);
    moq_buf_free(&b);
    if (rv < 0) fail(e, MOQ_IETF_INTERNAL_ERROR, "cannot send SETUP");
}

/* Client: SERVER_SETUP (14-16) or the peer's SETUP (17+). */
static void on_server_setup(struct moq_ietf_engine *e, uint64_t type, const uint8_t *body,
                            size_t len)
{
    moq_session *s = e->s;
    if (type != (e->c->uni_setup ? MOQ_IETF_SETUP : MOQ_IETF_SERVER_SETUP)) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "expected SERVER_SETUP");
        return;
    }
    struct moq_ietf_setup setup;
    int rv = moq_ietf_decode_setup(e->c, false, body, len, &setup);
    if (rv < 0) {
        fail(e, moq_ietf_close_code(rv), "malformed SERVER_SETUP");
        return;
    }
    if (e->c->setup_versions && setup.version != e->c->code) {
        fail(e, MOQ_IETF_VERSION_NEGOTIATION_FAILED, "the server chose a version we did not offer");
        return;
    }
    uint64_t limit = 0;
    moq_ietf_setup_number(&setup, MOQ_IETF_OPT_MAX_REQUEST_ID, &limit);
    e->peer_limit = limit;
    e->setup_done = true;
    e->setup_deadline = UINT64_MAX;
    authorize(e, &setup);
    if (s->closing) return;
    moq_session_deadline_changed(s);
    moq_debug("ietf", "%s: %s session established", s->t->peer, e->c->name);
    client_start(e);
}

/* ---------------------------------------------------------------- transport events */

static void ev_stream_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    struct moq_ietf_engine *e = app;
    if (e->s->closing) return;
    istream *st = st_new(e, sid, IS_NEW, bidi);
    if (!st) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return;
    }
    if (bidi && !e->c->request_streams && !e->control) {
        st->kind = IS_CONTROL;
        e->control = st;
        return;
    }
    if (bidi && (!e->c->ns_stream || !e->setup_done)) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "a second bidirectional stream");
        return;
    }
    if (bidi) {
        st->kind = IS_REQ;
        return;
    }
    if (e->c->uni_setup && !e->setup_in) {
        st->kind = IS_SETUP; /* the peer's first uni stream carries its SETUP */
        e->setup_in = true;
        return;
    }
    if (!e->setup_done) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "a data stream before SETUP");
        return;
    }
    struct gin *gi = calloc(1, sizeof(*gi));
    if (!gi) {
        fail(e, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return;
    }
    gi->e = e;
    gi->st = st;
    moq_ietf_sg_init(&gi->p, e->c);
    moq_buf_init(&gi->held);
    moq_buf_init(&gi->ext);
    st->kind = IS_GROUP_IN;
    st->obj = gi;
}

static void ev_stream_data(void *app, moq_transport *t, int64_t sid, void *sctx,
                           const uint8_t *data, size_t len, bool fin)
{
    struct moq_ietf_engine *e = app;
    istream *st = sctx;
    if (!st || e->s->closing || st->recv_done) return;
    if (fin) st->recv_done = true;
    if (st->kind == IS_CONTROL)
        control_data(e, data, len, fin);
    else if (st->kind == IS_GROUP_IN && st->obj)
        gin_data(st->obj, data, len, fin);
    else if (is_msg_stream(st))
        msg_stream_data(e, st, data, len, fin);
}

static void ev_stream_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct moq_ietf_engine *e = app;
    istream *st = sctx;
    if (!st || e->s->closing) return;
    st->recv_done = true;
    if (st->kind == IS_CONTROL) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "control stream reset");
    } else if (st->kind == IS_GROUP_IN && st->obj) {
        struct gin *gi = st->obj;
        st->kind = IS_IGNORE;
        st->obj = NULL;
        gin_free(gi);
    } else if (st->kind == IS_SETUP) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "SETUP stream reset");
    } else if (is_msg_stream(st)) {
        on_stream_end(e, st, false);
    }
}

static void ev_stream_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct moq_ietf_engine *e = app;
    istream *st = sctx;
    if (!st || e->s->closing) return;
    st->send_done = true;
    if (st->kind == IS_CONTROL) {
        fail(e, MOQ_IETF_PROTOCOL_VIOLATION, "control stream stopped");
    } else if (st->kind == IS_GROUP_OUT && st->obj) {
        gout_end(st->obj); /* the subscriber gave up on this group */
    } else if ((st->kind == IS_NS || st->kind == IS_SUB) && st->obj) {
        on_stream_end(e, st, false); /* the peer no longer wants what we send there */
    }
}

/* A stream that came whole while its alias is unknown: its bytes wait on without it. */
static void gin_closed(struct gin *gi)
{
    if (gi->waiting && gi->held_fin) {
        gin_detach(gi);
        return;
    }
    gin_detach(gi);
    gin_free(gi);
}

static void ev_stream_closed(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    struct moq_ietf_engine *e = app;
    istream *st = sctx;
    if (!st) return;
    if (st->kind == IS_GROUP_IN && st->obj) gin_closed(st->obj);
    if (st->kind == IS_GROUP_OUT && st->obj) {
        struct gout *go = st->obj;
        go->st = NULL;
        if (!e->s->closing) gout_end(go);
    }
    st->send_done = st->recv_done = true;
    if (is_msg_stream(st) && st->kind != IS_SETUP && st->obj) on_stream_end(e, st, false);
    if (e->control == st) e->control = NULL;
    if (e->setup_out == st) e->setup_out = NULL;
    moq_list_remove(&st->link);
    moq_buf_free(&st->in);
    free(st);
}

static void ev_stream_writable(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    struct moq_ietf_engine *e = app;
    istream *st = sctx;
    if (!st || e->s->closing || st->kind != IS_GROUP_OUT || !st->obj) return;
    struct gout *go = st->obj;
    if (!go->blocked) return;
    if (gout_write(go) && !go->blocked && go->fin_pending) gout_finish(go);
}

static void ev_streams_available(void *app, moq_transport *t, bool bidi)
{
    struct moq_ietf_engine *e = app;
    if (e->s->closing) return;
    if (e->setup_pending && bidi == !e->c->uni_setup) send_client_setup(e);
    if (!bidi) drain_queue(e);
}

static void ev_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    /* object datagrams are not used by this relay */
}

/* Free the engine's own structures (what it holds in the model is let go before). */
static void engine_free(struct moq_ietf_engine *e)
{
    while (!moq_list_empty(&e->streams)) {
        istream *st = moq_list_first(&e->streams, istream, link);
        moq_list_remove(&st->link);
        moq_buf_free(&st->in);
        free(st);
    }
    moq_u64map_free(&e->dsubs);
    moq_u64map_free(&e->nswatches);
    moq_u64map_free(&e->ups);
    moq_u64map_free(&e->aliases);
    moq_u64map_free(&e->released);
    moq_map_free(&e->announced);
    moq_u64map_free(&e->pubouts);
    moq_buf_free(&e->ctrl_in);
    e->s->ietf = NULL;
    free(e);
}

static void teardown(struct moq_ietf_engine *e, uint64_t code, const char *reason)
{
    moq_session *s = e->s;
    s->closing = true;
    s->gone = true;
    /* what we serve */
    size_t it = 0;
    uint64_t key;
    void *v;
    while (moq_u64map_len(&e->dsubs)) {
        it = 0;
        if (!moq_u64map_next(&e->dsubs, &it, &key, &v)) break;
        struct dsub *ds = v;
        ds->over = true;
        dsub_free(ds);
    }
    while (moq_u64map_len(&e->nswatches)) {
        it = 0;
        if (!moq_u64map_next(&e->nswatches, &it, &key, &v)) break;
        nswatch_free(v);
    }
    /* groups arriving, then the routes the peer gave us */
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &e->streams)
    {
        istream *st = moq_container_of(pos, istream, link);
        if (st->kind == IS_GROUP_IN && st->obj) {
            gin_free(st->obj);
            st->obj = NULL;
        }
    }
    while (!moq_list_empty(&e->alias_wait)) /* those whose streams closed */
        gin_free(moq_list_first(&e->alias_wait, struct gin, wait_link));
    while (!moq_list_empty(&e->pubwatches))
        pubwatch_free(moq_list_first(&e->pubwatches, struct pubwatch, link));
    while (!moq_list_empty(&e->nsubs))
        nsub_free(moq_list_first(&e->nsubs, struct nsub, link), false);
    while (!moq_list_empty(&e->pubns))
        pubns_free(moq_list_first(&e->pubns, struct pubns, link), false);
    size_t mit = 0;
    void *po;
    while (moq_map_next(&e->announced, &mit, NULL, NULL, &po))
        pubout_free(e, po);
    while (moq_u64map_len(&e->ups)) {
        it = 0;
        if (!moq_u64map_next(&e->ups, &it, &key, &v)) break;
        usub_free(v);
    }
    engine_free(e);
    if (s->cfg.closed) s->cfg.closed(s->cfg.ctx, s, code, reason);
    moq_perms_free(&s->perms);
    free(s);
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct moq_ietf_engine *e = app;
    moq_info("ietf", "%s: %s session closed (code %llu%s%s)", t->peer, e->c->name,
             (unsigned long long)code, reason && reason[0] ? ": " : "", reason ? reason : "");
    teardown(e, code, reason);
}

static const struct moq_transport_events engine_events = {
    .stream_opened = ev_stream_opened,
    .stream_data = ev_stream_data,
    .stream_reset = ev_stream_reset,
    .stream_stopped = ev_stream_stopped,
    .stream_closed = ev_stream_closed,
    .stream_writable = ev_stream_writable,
    .streams_available = ev_streams_available,
    .datagram = ev_datagram,
    .closed = ev_closed,
};

/* ---------------------------------------------------------------- public */

/* The draft an ALPN (or WebSocket subprotocol) pins, when this engine runs it. */
static const moq_ietf_caps *caps_of_protocol(const char *protocol)
{
    if (strcmp(protocol, MOQ_IETF_ALPN_COMPAT) == 0) return moq_ietf_caps_get(MOQT_14);
    const moq_ietf_caps *c = moq_ietf_caps_from_alpn(protocol, strlen(protocol));
    return c && moq_ietf_engine_runs(c->draft) ? c : NULL;
}

bool moq_ietf_engine_runs(moq_ietf_draft d)
{
    return moq_ietf_caps_get(d) != NULL;
}

bool moq_ietf_protocol(const char *protocol)
{
    return caps_of_protocol(protocol) != NULL;
}

moq_session *moq_ietf_session_new(moq_transport *t, const struct moq_session_config *cfg)
{
    if (!cfg->clock || !caps_of_protocol(t->protocol) ||
        (t->is_client && strcmp(t->protocol, MOQ_IETF_ALPN_COMPAT) == 0)) {
        moq_transport_close(t, MOQ_IETF_INTERNAL_ERROR, "unsupported");
        return NULL;
    }
    moq_session *s = calloc(1, sizeof(*s));
    struct moq_ietf_engine *e = calloc(1, sizeof(*e));
    if (!s || !e) {
        free(s);
        free(e);
        moq_transport_close(t, MOQ_IETF_INTERNAL_ERROR, "out of memory");
        return NULL;
    }
    s->t = t;
    s->cfg = *cfg;
    if (!s->cfg.max_frame_bytes) s->cfg.max_frame_bytes = MOQ_DEFAULT_MAX_FRAME;
    if (!s->cfg.max_inbound_bytes) s->cfg.max_inbound_bytes = 64ull * 1024 * 1024;
    s->ietf = e;
    s->reported_deadline = UINT64_MAX;
    moq_list_init(&s->streams);
    e->s = s;
    e->c = caps_of_protocol(t->protocol);
    e->granted = REQUEST_WINDOW;
    e->next_request = t->is_client ? 0 : 1; /* clients' request ids are even */
    moq_list_init(&e->streams);
    moq_list_init(&e->queue);
    moq_list_init(&e->alias_wait);
    moq_list_init(&e->pubns);
    moq_list_init(&e->nsubs);
    moq_list_init(&e->pubwatches);
    moq_u64map_init(&e->pubouts);
    moq_u64map_init(&e->dsubs);
    moq_u64map_init(&e->nswatches);
    moq_u64map_init(&e->ups);
    moq_u64map_init(&e->aliases);
    moq_u64map_init(&e->released);
    moq_map_init(&e->announced);
    moq_buf_init(&e->ctrl_in);
    e->expiry_deadline = UINT64_MAX;
    e->setup_deadline = moq_session_now(s) + SETUP_TIMEOUT_US;
    moq_transport_attach(t, &engine_events, e);
    moq_info("ietf", "%s: %s session over %s%s%s", t->peer, t->protocol,
             t->kind == MOQ_TRANSPORT_QUIC           ? "QUIC"
             : t->kind == MOQ_TRANSPORT_WEBTRANSPORT ? "WebTransport"
                                                     : "WebSocket",
             t->path ? " at " : "", t->path ? t->path : "");
    if (t->is_client) send_client_setup(e);
    moq_session_deadline_changed(s);
    return s;
}

uint64_t moq_ietf_session_next_deadline(const moq_session *s)
{
    const struct moq_ietf_engine *e = eng(s);
    if (s->closing) return UINT64_MAX;
    uint64_t next = e->setup_deadline < e->expiry_deadline ? e->setup_deadline : e->expiry_deadline;
    const moq_list *pos;
    for (pos = e->pubns.next; pos != &e->pubns; pos = pos->next) {
        const struct pubns *pn = moq_container_of(pos, struct pubns, link);
        if (pn->ending && pn->ending_deadline < next) next = pn->ending_deadline;
    }
    return next;
}

void moq_ietf_session_on_timer(moq_session *s, uint64_t now)
{
    struct moq_ietf_engine *e = eng(s);
    if (!s->closing && now >= e->setup_deadline) {
        e->setup_deadline = UINT64_MAX;
        fail(e, MOQ_IETF_CONTROL_MESSAGE_TIMEOUT, "no SETUP from the peer");
    }
    if (!s->closing && now >= e->expiry_deadline) {
        e->expiry_deadline = UINT64_MAX;
        fail(e, MOQ_IETF_UNAUTHORIZED, "token expired");
    }
    bool again = true;
    while (again && !s->closing) { /* freeing one may free others: rescan */
        again = false;
        moq_list *pos;
        for (pos = e->pubns.next; pos != &e->pubns; pos = pos->next) {
            struct pubns *pn = moq_container_of(pos, struct pubns, link);
            if (!pn->ending || pn->busy || pn->ending_deadline > now) continue;
            pubns_free(pn, true);
            again = true;
            break;
        }
    }
}

bool moq_ietf_session_goaway(moq_session *s)
{
    struct moq_ietf_engine *e = eng(s);
    istream *st = e->c->uni_setup ? e->setup_out : e->control;
    if (s->closing || !e->setup_done || !st || st->send_done) return false;
    struct moq_ietf_goaway m = {{NULL, 0}, 0};
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_ietf_encode_goaway(&b, e->c, &m);
    if (rv == 0) rv = moq_transport_write_bytes(s->t, st->sid, b.data, b.len, false);
    moq_buf_free(&b);
    if (rv == 0) moq_debug("ietf", "%s: GOAWAY sent", s->t->peer);
    return rv == 0;
}

size_t moq_ietf_session_unacked_streams(const moq_session *s)
{
    const struct moq_ietf_engine *e = eng(s);
    size_t n = 0;
    const moq_list *pos;
    for (pos = e->queue.next; pos != &e->queue; pos = pos->next)
        n++; /* groups waiting for stream credit */
    for (pos = e->streams.next; pos != &e->streams; pos = pos->next) {
        const istream *st = moq_container_of(pos, istream, link);
        if (st->kind == IS_GROUP_OUT)
            n++; /* ours alone: it closes once the peer acknowledged all of it */
        else if (!s->gone && s->t->ops->unsent(s->t, st->sid) > 0)
            n++;
    }
    return n;
}

const char *moq_ietf_session_version(const moq_session *s)
{
    return eng(s)->c->name;
}
