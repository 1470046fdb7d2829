/* The session engine on a transport that pushes back: stream credit granted late, as qmux
 * does until the peer's transport parameters arrive (and as any peer does once its stream
 * limit is used up): open_stream() answers MOQ_ERR_AGAIN and streams_available follows;
 * writes refused while the send queue is full: write() answers MOQ_ERR_AGAIN and
 * stream_writable follows; and streams whose data the peer acknowledges late (stream_closed
 * of a finished stream comes later). A "gate" wraps one end of an in-memory pipe and does
 * all three on the test's command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "model/model.h"
#include "moq/session.h"
#include "transport/pipe.h"
#include "util/chunk.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"
#include "util/varint.h"

/* ---- the gate: a transport forwarding to a pipe end, with counted stream credit ---- */

#define GATE_MAX_REFUSED 16

struct gate {
    moq_transport t; /* what the session sees; first member */
    moq_transport *inner;
    int credit[2]; /* opens still allowed: [0] uni, [1] bidi */
    bool blocked[2];
    int writes; /* writes still accepted; -1 = no limit */
    struct {
        int64_t sid;
        void *ctx;
    } refused[GATE_MAX_REFUSED], ctxs[64], held[GATE_MAX_REFUSED];
    size_t nrefused, nctxs, nheld;
    bool hold_closed; /* keep stream_closed of unidirectional streams back */
    size_t unsent;    /* added to every stream's unsent(): a link too slow to send it */
    int open_error;   /* what open_stream() answers when set (a connection already closing) */
    /* The data of the next unidirectional stream the peer opens is held back (held_*) and
     * handed on piecemeal by gate_release_data, as a slow link would. */
    bool hold_next_uni, holding, held_fin, held_closed;
    int64_t held_sid;
    void *held_ctx;
    uint8_t held_data[8192];
    size_t held_len, held_off;
    int bidi_fins; /* writes that finished a bidirectional stream */
};

#define UNI(sid) (((sid)&2) != 0)

#define GATE(x) ((struct gate *)(x))

static int g_open(moq_transport *t, bool bidi, int64_t *sid)
{
    struct gate *g = GATE(t);
    if (g->open_error) return g->open_error;
    if (g->credit[bidi] == 0) {
        g->blocked[bidi] = true;
        return MOQ_ERR_AGAIN;
    }
    int rv = g->inner->ops->open_stream(g->inner, bidi, sid);
    if (rv == 0) g->credit[bidi]--;
    return rv;
}

static void *g_ctx_of(struct gate *g, int64_t sid)
{
    for (size_t i = 0; i < g->nctxs; i++)
        if (g->ctxs[i].sid == sid) return g->ctxs[i].ctx;
    return NULL;
}

static int g_write(moq_transport *t, int64_t sid, const moq_slice *v, size_t n, bool fin)
{
    struct gate *g = GATE(t);
    if (g->writes == 0) {
        assert_true(g->nrefused < GATE_MAX_REFUSED);
        g->refused[g->nrefused].sid = sid;
        g->refused[g->nrefused++].ctx = g_ctx_of(g, sid);
        return MOQ_ERR_AGAIN;
    }
    if (g->writes > 0) g->writes--;
    int rv = g->inner->ops->write(g->inner, sid, v, n, fin);
    if (rv == 0 && fin && !UNI(sid)) g->bidi_fins++;
    return rv;
}

static size_t g_unsent(moq_transport *t, int64_t sid)
{
    return GATE(t)->inner->ops->unsent(GATE(t)->inner, sid) + GATE(t)->unsent;
}

static void g_priority(moq_transport *t, int64_t sid, uint64_t p)
{
    GATE(t)->inner->ops->set_priority(GATE(t)->inner, sid, p);
}

static int g_reset(moq_transport *t, int64_t sid, uint64_t code)
{
    return GATE(t)->inner->ops->reset(GATE(t)->inner, sid, code);
}

static int g_stop(moq_transport *t, int64_t sid, uint64_t code)
{
    return GATE(t)->inner->ops->stop(GATE(t)->inner, sid, code);
}

static void g_ctx(moq_transport *t, int64_t sid, void *ctx)
{
    struct gate *g = GATE(t);
    if (g->nctxs < 64) {
        g->ctxs[g->nctxs].sid = sid;
        g->ctxs[g->nctxs++].ctx = ctx;
    }
    g->inner->ops->set_stream_ctx(g->inner, sid, ctx);
}

static int g_dgram(moq_transport *t, const uint8_t *d, size_t n)
{
    return GATE(t)->inner->ops->send_datagram(GATE(t)->inner, d, n);
}

static size_t g_max_dgram(moq_transport *t)
{
    return GATE(t)->inner->ops->max_datagram(GATE(t)->inner);
}

static void g_close(moq_transport *t, uint64_t code, const char *reason)
{
    GATE(t)->inner->ops->close(GATE(t)->inner, code, reason);
}

static void g_stats(moq_transport *t, struct moq_transport_stats *out)
{
    GATE(t)->inner->ops->stats(GATE(t)->inner, out);
}

static size_t g_unacked(moq_transport *t, int64_t sid)
{
    moq_transport *inner = GATE(t)->inner;
    return inner->ops->unacked ? inner->ops->unacked(inner, sid) : 0;
}

static const struct moq_transport_ops gate_ops = {
    g_open, g_write, g_unsent,    g_priority, g_reset, g_stop,
    g_ctx,  g_dgram, g_max_dgram, g_close,    g_stats, g_unacked,
};

/* Inner events go to the session with the gate as the transport. */
static void e_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    struct gate *g = app;
    g->t.ev->stream_opened(g->t.app, &g->t, sid, bidi);
}

static void e_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *d, size_t n,
                   bool fin)
{
    struct gate *g = app;
    if (g->hold_next_uni && UNI(sid)) {
        g->hold_next_uni = false;
        g->holding = true;
        g->held_sid = sid;
        g->held_ctx = sctx;
    }
    if (g->holding && sid == g->held_sid) {
        assert_true(g->held_len + n <= sizeof(g->held_data));
        if (n) memcpy(g->held_data + g->held_len, d, n);
        g->held_len += n;
        g->held_fin = g->held_fin || fin;
        return;
    }
    g->t.ev->stream_data(g->t.app, &g->t, sid, sctx, d, n, fin);
}

/* Hand on the next n bytes held back (all that is left when n is larger), and the FIN once
 * everything went. */
static void gate_release_data(struct gate *g, size_t n)
{
    size_t left = g->held_len - g->held_off;
    if (n > left) n = left;
    bool fin = g->held_fin && n == left;
    g->t.ev->stream_data(g->t.app, &g->t, g->held_sid, g->held_ctx, g->held_data + g->held_off, n,
                         fin);
    g->held_off += n;
    if (!fin) return;
    g->holding = false;
    if (g->held_closed) g->t.ev->stream_closed(g->t.app, &g->t, g->held_sid, g->held_ctx);
}

static void e_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct gate *g = app;
    g->t.ev->stream_reset(g->t.app, &g->t, sid, sctx, code);
}

static void e_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct gate *g = app;
    g->t.ev->stream_stopped(g->t.app, &g->t, sid, sctx, code);
}

static void e_closed_stream(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    struct gate *g = app;
    if (g->holding && sid == g->held_sid) {
        g->held_closed = true; /* after the data held back */
        return;
    }
    if (g->hold_closed && UNI(sid)) {
        assert_true(g->nheld < GATE_MAX_REFUSED);
        g->held[g->nheld].sid = sid;
        g->held[g->nheld++].ctx = sctx;
        return;
    }
    g->t.ev->stream_closed(g->t.app, &g->t, sid, sctx);
}

static void e_writable(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    struct gate *g = app;
    if (g->t.ev->stream_writable) g->t.ev->stream_writable(g->t.app, &g->t, sid, sctx);
}

static void e_available(void *app, moq_transport *t, bool bidi)
{
    /* the pipe has no flow control: it never reports this */
}

static void e_datagram(void *app, moq_transport *t, const uint8_t *d, size_t n)
{
    struct gate *g = app;
    g->t.ev->datagram(g->t.app, &g->t, d, n);
}

static void e_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct gate *g = app;
    g->t.ev->closed(g->t.app, &g->t, code, reason);
    free(g);
}

static const struct moq_transport_events gate_events = {
    e_opened,   e_data,      e_reset,    e_stopped, e_closed_stream,
    e_writable, e_available, e_datagram, e_closed,
};

static struct gate *gate_new(moq_transport *inner, int uni, int bidi)
{
    struct gate *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    g->t = *inner;
    g->t.ops = &gate_ops;
    g->t.ev = NULL;
    g->t.app = NULL;
    g->inner = inner;
    g->credit[0] = uni;
    g->credit[1] = bidi;
    g->writes = -1;
    moq_transport_attach(inner, &gate_events, g);
    return g;
}

/* Grant n more opens in one direction and tell the session, as a transport would. Called
 * from the test, never from inside a session callback. */
static void gate_grant(struct gate *g, bool bidi, int n)
{
    g->credit[bidi] += n;
    if (g->blocked[bidi]) {
        g->blocked[bidi] = false;
        g->t.ev->streams_available(g->t.app, &g->t, bidi);
    }
}

/* Accept writes again and tell every stream that was refused one (once each). */
static void gate_allow_writes(struct gate *g)
{
    g->writes = -1;
    for (size_t i = 0; i < g->nrefused; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || g->refused[j].sid == g->refused[i].sid;
        if (!seen) g->t.ev->stream_writable(g->t.app, &g->t, g->refused[i].sid, g->refused[i].ctx);
    }
    g->nrefused = 0;
}

/* The peer acknowledged everything: deliver the stream_closed events held back. */
static void gate_release_closed(struct gate *g)
{
    g->hold_closed = false;
    for (size_t i = 0; i < g->nheld; i++)
        g->t.ev->stream_closed(g->t.app, &g->t, g->held[i].sid, g->held[i].ctx);
    g->nheld = 0;
}

/* ---- a publisher with one broadcast "bbb" and a subscriber that counts what arrives ---- */

struct pub {
    moq_route *route;
    moq_track *track;
    int requests;
};

static void p_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *prefs)
{
    struct pub *p = ctx;
    p->requests++;
    p->track = t;
    moq_track_info info;
    moq_track_info_default(&info);
    info.timescale = 1000;
    moq_track_set_info(t, r, &info);
}

static void p_update(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *prefs) {}

static void p_release(void *ctx, moq_route *r, moq_track *t)
{
    struct pub *p = ctx;
    if (p->track == t) p->track = NULL;
}

static const moq_producer_ops pub_ops = {p_request, p_update, p_release, NULL, false};

/* One group of n frames "x" (payload after 24 bytes of header room, both header forms). */
static void publish_group(struct pub *p, uint64_t seq, int n)
{
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(p->track, p->route, seq, moq_now_us(), &g), 0);
    for (int i = 0; i < n; i++) {
        moq_chunk *c = moq_chunk_new(25);
        c->len = 25;
        c->data[24] = 'x';
        c->data[22] = 0; /* lite-05: zigzag timestamp delta 0, size 1 */
        c->data[23] = 1;
        c->data[0] = 1; /* lite-03/04: size 1 */
        moq_frame f = {c, 24, 1, 0, {22, 0}, {2, 1}, 0, 0};
        assert_int_equal(moq_group_append(g, &f, moq_now_us()), 0);
    }
    assert_int_equal(moq_group_finish(g, moq_now_us()), 0);
    moq_group_unref(g);
}

/* What a subscriber received: per group, frames seen and how it ended. */
struct rgroup {
    moq_follower *f;
    uint64_t frames;
    int state; /* MOQ_GROUP_OPEN until it ends */
};

struct sub {
    moq_subscription *sub;
    int groups;
    bool aborted;
    struct rgroup g[8];
};

static void rg_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    ((struct rgroup *)ctx)->frames = count;
}

static void rg_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct rgroup *rg = ctx;
    rg->frames = moq_group_frame_count(g);
    rg->state = state;
}

static const moq_follower_ops rg_ops = {rg_frames, rg_end};

static void sub_free(struct sub *s)
{
    for (int i = 0; i < s->groups && i < 8; i++)
        if (s->g[i].f) moq_follower_close(s->g[i].f);
    moq_subscription_close(s->sub);
}

static void s_info(void *ctx, moq_subscription *s, const moq_track_info *info) {}

static void s_group(void *ctx, moq_subscription *s, moq_group *g)
{
    struct sub *sb = ctx;
    if (sb->groups < 8) {
        struct rgroup *rg = &sb->g[sb->groups];
        rg->state = moq_group_state(g, NULL);
        rg->frames = moq_group_frame_count(g);
        rg->f = moq_group_follow(g, &rg_ops, rg);
    }
    sb->groups++;
}

static void s_abort(void *ctx, moq_subscription *s, uint64_t code)
{
    ((struct sub *)ctx)->aborted = true;
}

static const moq_subscriber_ops sub_ops = {s_info, s_group, NULL, s_abort};

/* ---- sessions ---- */

/* The sessions' clock: the system's, moved ahead by the test. */
static uint64_t clock_skew_us;

static uint64_t skewed_now(void *ctx)
{
    (void)ctx;
    return moq_now_us() + clock_skew_us;
}

static uint64_t skewed_wall(void *ctx)
{
    (void)ctx;
    return moq_wall_us() + clock_skew_us;
}

static const moq_clock skewed_clock = {skewed_now, skewed_wall, NULL};

struct end {
    moq_session *session;
    int closed;
};

static uint64_t authorize(void *ctx, moq_session *s, const char *path, int role, moq_perms *perms)
{
    memset(perms, 0, sizeof(*perms));
    perms->root = strdup("");
    moq_strlist_push(&perms->publish, "");
    moq_strlist_push(&perms->subscribe, "");
    return 0;
}

static void closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    struct end *e = ctx;
    e->closed++;
    e->session = NULL;
}

static moq_origin *origin(uint64_t id)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = id;
    cfg.linger_us = 0;
    return moq_origin_new(&cfg);
}

struct world {
    struct ev_loop *loop;
    moq_origin *relay, *po, *so;
    struct pub pub;
    struct end pub_client, relay_pub, sub_client, relay_sub;
    struct gate *gate;     /* the relay's end toward the publisher */
    struct gate *sub_gate; /* the relay's end toward the subscriber */
};

/* Connect client_origin to the relay; the relay's end is gated when gate_out is set. */
static void connect(struct world *w, const char *proto, moq_origin *client_origin,
                    struct end *client, struct end *server, struct gate **gate_out, int uni,
                    int bidi)
{
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBSOCKET, proto, "/", 0};
    assert_non_null(moq_pipe_new(w->loop, &pc, &ct, &st));
    moq_transport *relay_t = st;
    if (gate_out) {
        *gate_out = gate_new(st, uni, bidi);
        relay_t = &(*gate_out)->t;
    }
    struct moq_session_config sc = {.origin = w->relay,
                                    .clock = &skewed_clock,
                                    .authorize = authorize,
                                    .closed = closed,
                                    .ctx = server};
    struct moq_session_config cc = {.origin = client_origin,
                                    .clock = &skewed_clock,
                                    .authorize = authorize,
                                    .closed = closed,
                                    .ctx = client};
    server->session = moq_session_new(relay_t, &sc);
    client->session = moq_session_new(ct, &cc);
    assert_non_null(server->session);
    assert_non_null(client->session);
}

static void spin(struct world *w)
{
    for (int i = 0; i < 100; i++)
        ev_run(w->loop, EVRUN_NOWAIT);
}

static bool relay_has_bbb(struct world *w)
{
    return moq_origin_lookup(w->relay, (const uint8_t *)"bbb", 3, 0, NULL, NULL) == 0;
}

static void setup(struct world *w, const char *proto, int uni, int bidi)
{
    memset(w, 0, sizeof(*w));
    clock_skew_us = 0;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    w->relay = origin(1);
    w->po = origin(2);
    w->so = origin(3);
    assert_int_equal(moq_origin_announce(w->po, (const uint8_t *)"bbb", 3, NULL, 0, &pub_ops,
                                         &w->pub, &w->pub.route),
                     0);
    connect(w, proto, w->po, &w->pub_client, &w->relay_pub, &w->gate, uni, bidi);
    connect(w, proto, w->so, &w->sub_client, &w->relay_sub, &w->sub_gate, 1000, 1000);
    spin(w);
}

static void teardown(struct world *w)
{
    if (w->pub_client.session) moq_session_close(w->pub_client.session, 0, "");
    if (w->sub_client.session) moq_session_close(w->sub_client.session, 0, "");
    ev_run(w->loop, 0);
    assert_int_equal(w->relay_pub.closed, 1);
    assert_int_equal(w->relay_sub.closed, 1);
    moq_origin_free(w->so);
    moq_origin_free(w->relay);
    moq_origin_free(w->po);
    ev_loop_destroy(w->loop);
}

/* The relay's session starts with no stream credit at all: it must wait (not close), then
 * send its SETUP (lite-05) and ask for the publisher's announcements once credit arrives. */
static void session_waits_for_first_credit(const char *proto)
{
    struct world w;
    setup(&w, proto, 0, 0);
    assert_non_null(w.relay_pub.session);
    assert_int_equal(w.relay_pub.closed, 0);
    assert_false(relay_has_bbb(&w));
    gate_grant(w.gate, false, 10);
    gate_grant(w.gate, true, 10);
    spin(&w);
    assert_int_equal(w.relay_pub.closed, 0);
    assert_true(relay_has_bbb(&w));
    teardown(&w);
}

/* With the bidi credit used up, a track request toward the publisher waits instead of failing
 * the subscription, and goes out (TRACK then SUBSCRIBE on lite-05) when credit arrives. */
static void track_request_waits_for_bidi_credit(const char *proto)
{
    struct world w;
    setup(&w, proto, 100, 1); /* one bidi stream: the announce request */
    assert_true(relay_has_bbb(&w));
    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.so, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &sub_ops, &s, &s.sub),
                     0);
    spin(&w);
    assert_false(s.aborted);
    assert_int_equal(w.pub.requests, 0);
    /* one stream at a time: lite-05 needs a TRACK and a SUBSCRIBE, in that order */
    for (int i = 0; i < 3; i++) {
        gate_grant(w.gate, true, 1);
        spin(&w);
    }
    assert_false(s.aborted);
    assert_non_null(w.pub.track);
    publish_group(&w.pub, 7, 1);
    spin(&w);
    assert_int_equal(s.groups, 1);
    sub_free(&s);
    teardown(&w);
}

/* Writes toward the subscriber are refused right after a group's header: the group waits
 * (neither abandoned nor finished early) and completes, FIN included, once writes resume. */
static void refused_writes_resume_on_writable(const char *proto)
{
    struct world w;
    setup(&w, proto, 100, 100);
    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.so, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &sub_ops, &s, &s.sub),
                     0);
    spin(&w);
    assert_non_null(w.pub.track);
    publish_group(&w.pub, 2, 1); /* the subscription is running (lite-05: START sent) */
    spin(&w);
    assert_int_equal(s.groups, 1);
    assert_int_equal(s.g[0].state, MOQ_GROUP_FINISHED);
    w.sub_gate->writes = 1; /* the next group's header; its frames are refused */
    publish_group(&w.pub, 3, 3);
    spin(&w);
    assert_int_equal(s.groups, 2);
    assert_int_equal(s.g[1].frames, 0);
    assert_int_equal(s.g[1].state, MOQ_GROUP_OPEN);
    assert_true(w.sub_gate->nrefused > 0);
    gate_allow_writes(w.sub_gate);
    spin(&w);
    assert_int_equal(s.g[1].frames, 3);
    assert_int_equal(s.g[1].state, MOQ_GROUP_FINISHED);
    sub_free(&s);
    teardown(&w);
}

/* The track ends while a group is still unacknowledged on its way to the subscriber: the
 * relay finishes the subscription stream only once that group's stream has closed, so a
 * client that takes the subscription's end as the end of the track (as @moq/net does) never
 * loses groups still in flight. */
static void subscription_ends_after_its_groups(const char *proto)
{
    struct world w;
    setup(&w, proto, 100, 100);
    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.so, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &sub_ops, &s, &s.sub),
                     0);
    spin(&w);
    assert_non_null(w.pub.track);
    publish_group(&w.pub, 0, 1);
    spin(&w);
    assert_int_equal(s.groups, 1);
    w.sub_gate->hold_closed = true;
    publish_group(&w.pub, 1, 3);
    int fins = w.sub_gate->bidi_fins;
    assert_int_equal(moq_track_finish(w.pub.track, w.pub.route, 2), 0);
    spin(&w);
    assert_int_equal(s.groups, 2);
    assert_int_equal(s.g[1].state, MOQ_GROUP_FINISHED);
    assert_int_equal(w.sub_gate->nheld, 1);
    assert_int_equal(w.sub_gate->bidi_fins, fins); /* the subscription is still open */
    gate_release_closed(w.sub_gate);
    spin(&w);
    assert_int_equal(w.sub_gate->bidi_fins, fins + 1);
    sub_free(&s);
    teardown(&w);
}

/* The connection to the publisher is already closing (the peer's CONNECTION_CLOSE arrived,
 * the session has not heard yet): opening the request's stream fails, the track is aborted
 * from inside the request, and the upstream subscription it released is not touched after. */
static void track_request_survives_refused_open(const char *proto)
{
    struct world w;
    setup(&w, proto, 100, 100);
    assert_true(relay_has_bbb(&w));
    w.gate->open_error = MOQ_ERR_CLOSED;
    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.so, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &sub_ops, &s, &s.sub),
                     0);
    spin(&w);
    assert_true(s.aborted);
    assert_int_equal(w.pub.requests, 0);
    assert_int_equal(w.relay_pub.closed, 0);
    w.gate->open_error = 0;
    sub_free(&s);
    teardown(&w);
}

/* A frame that takes long to arrive from the publisher keeps its group young in the relay's
 * cache: a newer group arriving more than the track's max latency after the group began,
 * but less after the frame's last bytes came, leaves it alone, and it completes there. */
static void slow_frame_keeps_its_group(const char *proto)
{
    struct world w;
    setup(&w, proto, 100, 100);
    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.so, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &sub_ops, &s, &s.sub),
                     0);
    spin(&w);
    assert_non_null(w.pub.track);
    publish_group(&w.pub, 0, 1); /* the subscription is running */
    spin(&w);
    assert_int_equal(s.groups, 1);

    w.gate->hold_next_uni = true;
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(w.pub.track, w.pub.route, 1, moq_now_us(), &g), 0);
    moq_frame f;
    assert_int_equal(moq_frame_alloc(&f, 0, 0, 1000), 0);
    memset(f.chunk->data + f.payload_off, 'y', 1000);
    assert_int_equal(moq_group_append(g, &f, moq_now_us()), 0);
    spin(&w);
    assert_true(w.gate->holding && w.gate->held_len > 1000);
    gate_release_data(w.gate, w.gate->held_len - 900); /* the group begins at the relay */
    spin(&w);
    assert_int_equal(s.groups, 2);
    clock_skew_us += 3 * MOQ_US_PER_S;
    gate_release_data(w.gate, 500); /* more of its frame */
    spin(&w);
    clock_skew_us += 3 * MOQ_US_PER_S;
    publish_group(&w.pub, 2, 1); /* 6 s after the group began, 3 s after its last bytes */
    spin(&w);
    assert_int_equal(moq_group_finish(g, moq_now_us()), 0);
    moq_group_unref(g);
    spin(&w);
    gate_release_data(w.gate, SIZE_MAX);
    spin(&w);
    /* (in the relay's cache: downstream sees nothing of a frame before it is complete) */
    moq_group *cached = NULL;
    assert_int_equal(moq_origin_fetch(w.relay, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                      0, 1, 0, false, moq_now_us() + clock_skew_us, &cached),
                     0);
    assert_int_equal(moq_group_state(cached, NULL), MOQ_GROUP_FINISHED);
    assert_int_equal(moq_group_frame_count(cached), 1);
    moq_group_unref(cached);
    sub_free(&s);
    teardown(&w);
}

/* A subscriber on the relay that leaves as soon as it learns the track's info. */
static void leave_on_info(void *ctx, moq_subscription *s, const moq_track_info *info)
{
    moq_subscription_close(s);
    *(bool *)ctx = true;
}

static const moq_subscriber_ops leave_ops = {leave_on_info, NULL, NULL, NULL};

/* lite-03/04 carry no track info: the relay sets a default one while requesting the track,
 * and a subscriber that leaves on it releases the track from inside the request. */
static void track_request_survives_release_from_info(const char *proto)
{
    struct world w;
    setup(&w, proto, 100, 100);
    assert_true(relay_has_bbb(&w));
    bool left = false;
    moq_subscription *sub;
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.relay, (const uint8_t *)"bbb", 3, (const uint8_t *)"t",
                                          1, 0, &prefs, &leave_ops, &left, &sub),
                     0);
    spin(&w);
    assert_true(left);
    assert_int_equal(w.relay_pub.closed, 0);
    teardown(&w);
}

/* A subscriber too slow to take what the relay wrote: a group written to the end (its FIN
 * queued) but still waiting in the transport is reset once it is older than the max
 * latency, as a group not yet written is, so a stalled subscriber does not make the relay
 * hold every group that comes. */
static void written_but_unsent_group_is_dropped_when_stale(const char *proto)
{
    struct world w;
    setup(&w, proto, 100, 100);
    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.so, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &sub_ops, &s, &s.sub),
                     0);
    spin(&w);
    assert_non_null(w.pub.track);
    publish_group(&w.pub, 0, 1);
    spin(&w);
    assert_int_equal(s.groups, 1);

    w.sub_gate->hold_closed = true; /* nothing acknowledged */
    w.sub_gate->unsent = 1000;      /* nor sent */
    publish_group(&w.pub, 1, 1);
    spin(&w);
    struct moq_session_stats st;
    moq_session_stats_get(w.relay_sub.session, &st);
    assert_int_equal(st.groups_dropped, 0);
    clock_skew_us += 6 * MOQ_US_PER_S; /* beyond the 5 s max latency */
    publish_group(&w.pub, 2, 1);
    spin(&w);
    moq_session_stats_get(w.relay_sub.session, &st);
    assert_int_equal(st.groups_dropped, 1);

    w.sub_gate->unsent = 0;
    gate_release_closed(w.sub_gate);
    spin(&w);
    sub_free(&s);
    teardown(&w);
}

#define PER_VERSION(fn)                                                                            \
    static void fn##_03(void **st)                                                                 \
    {                                                                                              \
        fn("moq-lite-03");                                                                         \
    }                                                                                              \
    static void fn##_04(void **st)                                                                 \
    {                                                                                              \
        fn("moq-lite-04");                                                                         \
    }                                                                                              \
    static void fn##_05(void **st)                                                                 \
    {                                                                                              \
        fn("moq-lite-05");                                                                         \
    }

PER_VERSION(session_waits_for_first_credit)
PER_VERSION(track_request_waits_for_bidi_credit)
PER_VERSION(refused_writes_resume_on_writable)
PER_VERSION(subscription_ends_after_its_groups)
PER_VERSION(track_request_survives_refused_open)
PER_VERSION(slow_frame_keeps_its_group)
PER_VERSION(written_but_unsent_group_is_dropped_when_stale)

static void track_request_survives_release_from_info_03(void **st)
{
    track_request_survives_release_from_info("moq-lite-03");
}

static void track_request_survives_release_from_info_04(void **st)
{
    track_request_survives_release_from_info("moq-lite-04");
}

#define TESTS(fn) cmocka_unit_test(fn##_03), cmocka_unit_test(fn##_04), cmocka_unit_test(fn##_05)

int main(void)
{
    moq_log_set_level(getenv("TEST_DEBUG") ? MOQ_LOG_TRACE : MOQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        TESTS(session_waits_for_first_credit),
        TESTS(track_request_waits_for_bidi_credit),
        TESTS(refused_writes_resume_on_writable),
        TESTS(subscription_ends_after_its_groups),
        cmocka_unit_test(track_request_survives_release_from_info_03),
        cmocka_unit_test(track_request_survives_release_from_info_04),
        TESTS(track_request_survives_refused_open),
        TESTS(slow_frame_keeps_its_group),
        TESTS(written_but_unsent_group_is_dropped_when_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
