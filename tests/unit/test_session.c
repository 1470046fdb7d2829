/* The session engine end to end, in process: a publisher's origin, a relay origin and a
 * subscriber's origin joined by moq-lite sessions over in-memory transport pairs, for
 * every version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "auth/auth.h"
#include "model/model.h"
#include "moq/session.h"
#include "transport/pipe.h"
#include "util/chunk.h"
#include "util/log.h"
#include "util/time.h"
#include "util/err.h"
#include "util/varint.h"

#define RELAY_ID 1
#define PUB_ID   2
#define SUB_ID   3

/* ---- a local publisher: serves tracks from frames the test writes ---- */

struct local_pub {
    moq_route *route;
    moq_track *track;
    int requests;
    int releases;
    int updates;
};

static void lp_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    struct local_pub *lp = ctx;
    lp->requests++;
    lp->track = t;
    moq_track_info info;
    moq_track_info_default(&info);
    info.timescale = 1000;
    moq_track_set_info(t, r, &info);
}

static void lp_update(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    ((struct local_pub *)ctx)->updates++;
}

static void lp_release(void *ctx, moq_route *r, moq_track *t)
{
    struct local_pub *lp = ctx;
    lp->releases++;
    if (lp->track == t) lp->track = NULL;
}

static const moq_producer_ops local_pub_ops = {lp_request, lp_update, lp_release, NULL, false};

/* Frames are laid out by the engine's moq_frame_alloc (headers in front of the payload). */
static int write_group(struct local_pub *lp, uint64_t seq, const char *const *frames, size_t n,
                       uint64_t ts0)
{
    moq_group *g = NULL;
    int rv = moq_track_begin_group(lp->track, lp->route, seq, moq_now_us(), &g);
    if (rv < 0) return rv;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(frames[i]);
        uint64_t ts = ts0 + i * 10, prev = i ? ts0 + (i - 1) * 10 : 0;
        moq_frame f;
        rv = moq_frame_alloc(&f, prev, ts, len);
        if (rv < 0) break;
        memcpy(f.chunk->data + f.payload_off, frames[i], len);
        rv = moq_group_append(g, &f, moq_now_us());
        if (rv < 0) break;
    }
    if (rv == 0) rv = moq_group_finish(g, moq_now_us());
    moq_group_unref(g);
    return rv;
}

/* ---- a local subscriber: records what arrives ---- */

struct received_group {
    uint64_t seq;
    moq_follower *f;
    size_t frames_seen;
    bool done;
    int state;
};

struct local_sub {
    moq_subscription *sub;
    struct received_group groups[64];
    size_t ngroups;
    char log[4096]; /* "seq:frame;" entries */
    size_t log_len;
    bool info;
    uint64_t timescale;
    bool aborted;
    uint64_t abort_code;
    uint64_t timestamps[64];
    size_t nts;
};

static void log_frames(struct local_sub *ls, struct received_group *rg, moq_group *g)
{
    uint64_t count = moq_group_frame_count(g);
    for (; rg->frames_seen < count; rg->frames_seen++) {
        const moq_frame *f = moq_group_frame(g, rg->frames_seen);
        int n = snprintf(ls->log + ls->log_len, sizeof(ls->log) - ls->log_len, "%llu:%.*s;",
                         (unsigned long long)rg->seq, (int)f->payload_len,
                         (const char *)f->chunk->data + f->payload_off);
        if (n > 0) ls->log_len += (size_t)n;
        if (ls->nts < 64) ls->timestamps[ls->nts++] = f->timestamp;
    }
}

static struct local_sub *owner_of(struct received_group *rg);
static struct local_sub *current_ls;

static struct local_sub *owner_of(struct received_group *rg)
{
    return current_ls;
}

static void rg_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    struct received_group *rg = ctx;
    log_frames(owner_of(rg), rg, g);
}

static void rg_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct received_group *rg = ctx;
    log_frames(owner_of(rg), rg, g);
    rg->done = true;
    rg->state = state;
}

static const moq_follower_ops rg_ops = {rg_frames, rg_end};

static void ls_info(void *ctx, moq_subscription *s, const moq_track_info *info)
{
    struct local_sub *ls = ctx;
    ls->info = true;
    ls->timescale = info->timescale;
}

static void ls_group(void *ctx, moq_subscription *s, moq_group *g)
{
    struct local_sub *ls = ctx;
    if (ls->ngroups == 64) return;
    struct received_group *rg = &ls->groups[ls->ngroups++];
    rg->seq = moq_group_sequence(g);
    rg->f = moq_group_follow(g, &rg_ops, rg);
    log_frames(ls, rg, g);
    uint64_t code;
    int st = moq_group_state(g, &code);
    if (st != MOQ_GROUP_OPEN) {
        rg->done = true;
        rg->state = st;
    }
}

static void ls_abort(void *ctx, moq_subscription *s, uint64_t code)
{
    struct local_sub *ls = ctx;
    ls->aborted = true;
    ls->abort_code = code;
}

static const moq_subscriber_ops ls_ops = {ls_info, ls_group, NULL, ls_abort};

static void local_sub_free(struct local_sub *ls)
{
    for (size_t i = 0; i < ls->ngroups; i++)
        if (ls->groups[i].f) moq_follower_close(ls->groups[i].f);
    if (ls->sub) moq_subscription_close(ls->sub);
    memset(ls, 0, sizeof(*ls));
}

/* ---- sessions ---- */

struct end {
    moq_session *session;
    int closed;
    uint64_t close_code;
    char close_reason[128];
    bool strict;      /* server: refuse_outside_grant */
    char refused[64]; /* client: the last announce prefix the peer refused */
    int refusals;
    const char *pub;  /* what the peer may publish to us ("" or NULL for nothing) */
    const char *sub;  /* what the peer may read from us */
    const char *root; /* session root */
};

static uint64_t authorize(void *ctx, moq_session *s, const char *path, int role, moq_perms *perms)
{
    struct end *e = ctx;
    memset(perms, 0, sizeof(*perms));
    perms->root = strdup(e->root ? e->root : "");
    if (e->pub) moq_strlist_push(&perms->publish, e->pub);
    if (e->sub) moq_strlist_push(&perms->subscribe, e->sub);
    return 0;
}

static void closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    struct end *e = ctx;
    e->closed++;
    e->close_code = code;
    snprintf(e->close_reason, sizeof(e->close_reason), "%s", reason ? reason : "");
    e->session = NULL;
}

static void announce_refused(void *ctx, moq_session *s, const char *prefix)
{
    struct end *e = ctx;
    e->refusals++;
    snprintf(e->refused, sizeof(e->refused), "%s", prefix);
}

struct world {
    struct ev_loop *loop;
    moq_origin *relay, *pub, *sub;
    struct end pub_client, relay_from_pub, sub_client, relay_from_sub;
    struct local_pub lp;
    const char *proto;
};

static moq_origin *origin_keep(uint64_t id, uint64_t track_keep_us)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = id;
    cfg.linger_us = 0;
    cfg.track_keep_us = track_keep_us;
    return moq_origin_new(&cfg);
}

static moq_origin *origin(uint64_t id)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    return origin_keep(id, cfg.track_keep_us);
}

static void connect(struct world *w, moq_origin *client_origin, struct end *client,
                    struct end *server, const char *path)
{
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, w->proto, path, 1200};
    assert_non_null(moq_pipe_new(w->loop, &pc, &ct, &st));
    struct moq_session_config cc = {.origin = client_origin,
                                    .clock = &moq_system_clock,
                                    .authorize = authorize,
                                    .announce_refused = announce_refused,
                                    .closed = closed,
                                    .ctx = client};
    struct moq_session_config sc = {.origin = w->relay,
                                    .clock = &moq_system_clock,
                                    .refuse_outside_grant = server->strict,
                                    .authorize = authorize,
                                    .closed = closed,
                                    .ctx = server};
    server->session = moq_session_new(st, &sc);
    client->session = moq_session_new(ct, &cc);
    assert_non_null(server->session);
    assert_non_null(client->session);
}

static void spin(struct world *w, int n)
{
    for (int i = 0; i < n; i++)
        ev_run(w->loop, EVRUN_NOWAIT);
}

/* The relay's and the publisher's origins keep unused tracks for the given times. */
static void setup_world_keep(struct world *w, const char *proto, uint64_t relay_keep_us,
                             uint64_t pub_keep_us)
{
    memset(w, 0, sizeof(*w));
    w->proto = proto;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    w->relay = origin_keep(RELAY_ID, relay_keep_us);
    w->pub = origin_keep(PUB_ID, pub_keep_us);
    w->sub = origin(SUB_ID);
    /* the relay may read everything the publisher has, and accept everything it announces */
    w->pub_client = (struct end){.sub = ""};
    w->relay_from_pub = (struct end){.pub = "", .sub = ""};
    w->sub_client = (struct end){.pub = ""};
    w->relay_from_sub = (struct end){.pub = "", .sub = ""};
    assert_int_equal(moq_origin_announce(w->pub, (const uint8_t *)"bbb", 3, NULL, 0, &local_pub_ops,
                                         &w->lp, &w->lp.route),
                     0);
    connect(w, w->pub, &w->pub_client, &w->relay_from_pub, "/");
    connect(w, w->sub, &w->sub_client, &w->relay_from_sub, "/");
    spin(w, 50);
}

static void setup_world(struct world *w, const char *proto)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    setup_world_keep(w, proto, cfg.track_keep_us, cfg.track_keep_us);
}

static void teardown_world(struct world *w)
{
    if (w->pub_client.session) moq_session_close(w->pub_client.session, 0, "");
    if (w->sub_client.session) moq_session_close(w->sub_client.session, 0, "");
    ev_run(w->loop, 0);
    assert_int_equal(w->relay_from_pub.closed, 1);
    assert_int_equal(w->relay_from_sub.closed, 1);
    moq_origin_free(w->sub);
    moq_origin_free(w->relay);
    moq_origin_free(w->pub);
    ev_loop_destroy(w->loop);
}

static void announcements_reach_the_subscriber(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    uint64_t hops[32];
    size_t nhops = 0;
    assert_int_equal(moq_origin_lookup(w.relay, (const uint8_t *)"bbb", 3, 0, hops, &nhops), 0);
    assert_int_equal(moq_origin_lookup(w.sub, (const uint8_t *)"bbb", 3, 0, hops, &nhops), 0);
    if (strcmp(proto, "moq-lite-03") != 0) {
        /* the chain records the publisher, then the relay */
        assert_int_equal(nhops, 2);
        assert_true(hops[0] == PUB_ID);
        assert_true(hops[1] == RELAY_ID);
    } else {
        assert_int_equal(nhops, 2); /* lite-03 carries only the count */
    }
    teardown_world(&w);
}

static void frames_flow_end_to_end(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    struct local_sub ls = {0};
    current_ls = &ls;
    moq_sub_prefs prefs = {.priority = 128};
    assert_int_equal(moq_origin_subscribe(w.sub, (const uint8_t *)"bbb", 3,
                                          (const uint8_t *)"video", 5, 0, &prefs, &ls_ops, &ls,
                                          &ls.sub),
                     0);
    spin(&w, 50);
    assert_int_equal(w.lp.requests, 1);
    assert_non_null(w.lp.track);
    assert_true(ls.info);
    const char *g0[] = {"hello", "world", ""};
    const char *g1[] = {"x"};
    assert_int_equal(write_group(&w.lp, 0, g0, 3, 1000), 0);
    assert_int_equal(write_group(&w.lp, 1, g1, 1, 2000), 0);
    spin(&w, 100);
    assert_string_equal(ls.log, "0:hello;0:world;0:;1:x;");
    assert_int_equal(ls.ngroups, 2);
    assert_true(ls.groups[0].done && ls.groups[0].state == MOQ_GROUP_FINISHED);
    assert_true(ls.groups[1].done && ls.groups[1].state == MOQ_GROUP_FINISHED);
    if (strcmp(proto, "moq-lite-05") == 0) {
        /* timestamps survive two hops on lite-05 */
        assert_int_equal(ls.nts, 4);
        assert_true(ls.timestamps[0] == 1000 && ls.timestamps[1] == 1010);
        assert_true(ls.timestamps[2] == 1020 && ls.timestamps[3] == 2000);
    }
    /* a second subscriber in the relay shares the one upstream subscription */
    local_sub_free(&ls);
    spin(&w, 50);
    assert_int_equal(w.lp.releases, 1);
    teardown_world(&w);
    current_ls = NULL;
}

/* A local subscriber of bbb/t in the subscribing relay, with default preferences; it is
 * the one the ls_ops callbacks record into from now on. */
static void subscribe_local(struct world *w, struct local_sub *ls)
{
    current_ls = ls;
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w->sub, (const uint8_t *)"bbb", 3, (const uint8_t *)"t",
                                          1, 0, &prefs, &ls_ops, ls, &ls->sub),
                     0);
}

static void late_joiner_starts_at_latest_group(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    /* a first subscriber makes the relay pull the track; groups get cached there */
    struct local_sub first = {0};
    subscribe_local(&w, &first);
    moq_sub_prefs prefs = {0};
    spin(&w, 50);
    const char *a[] = {"a"}, *b[] = {"b1", "b2"};
    assert_int_equal(write_group(&w.lp, 5, a, 1, 0), 0);
    assert_int_equal(write_group(&w.lp, 6, b, 2, 0), 0);
    spin(&w, 100);
    assert_string_equal(first.log, "5:a;6:b1;6:b2;");

    /* a late joiner on another session gets the latest group from the relay cache */
    struct end late_client = {.pub = ""}, relay_side = {.pub = "", .sub = ""};
    moq_origin *late = origin(9);
    connect(&w, late, &late_client, &relay_side, "/");
    spin(&w, 50);
    struct local_sub second = {0};
    current_ls = &second;
    assert_int_equal(moq_origin_subscribe(late, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &ls_ops, &second, &second.sub),
                     0);
    spin(&w, 100);
    assert_string_equal(second.log, "6:b1;6:b2;");
    assert_int_equal(w.lp.requests, 1); /* still one upstream subscription */
    local_sub_free(&second);
    moq_session_close(late_client.session, 0, "");
    spin(&w, 50);
    assert_int_equal(relay_side.closed, 1);
    moq_origin_free(late);
    current_ls = &first;
    local_sub_free(&first);
    teardown_world(&w);
    current_ls = NULL;
}

/* A subscriber arriving after the previous one left gets the latest group: the relay let
 * go of the track with its last subscriber, and the publisher, which keeps its tracks as
 * `moq publish` does, answers the new upstream subscription with it. */
static void late_joiner_after_the_last_left(const char *proto)
{
    struct world w;
    setup_world_keep(&w, proto, 0, UINT64_MAX);
    struct local_sub first = {0};
    subscribe_local(&w, &first);
    moq_sub_prefs prefs = {0};
    spin(&w, 50);
    const char *a[] = {"a"}, *b[] = {"b1", "b2"};
    assert_int_equal(write_group(&w.lp, 0, a, 1, 0), 0);
    assert_int_equal(write_group(&w.lp, 1, b, 2, 0), 0);
    spin(&w, 100);
    assert_string_equal(first.log, "0:a;1:b1;1:b2;");
    local_sub_free(&first);
    spin(&w, 50);
    assert_int_equal(w.lp.releases, 1); /* the relay let go of its upstream subscription */

    /* the late joiner is a new client */
    struct end late_client = {.pub = ""}, relay_side = {.pub = "", .sub = ""};
    moq_origin *late = origin(9);
    connect(&w, late, &late_client, &relay_side, "/");
    spin(&w, 50);
    struct local_sub second = {0};
    current_ls = &second;
    assert_int_equal(moq_origin_subscribe(late, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &ls_ops, &second, &second.sub),
                     0);
    spin(&w, 100);
    assert_string_equal(second.log, "1:b1;1:b2;");
    assert_int_equal(w.lp.requests, 2);
    const char *c[] = {"c"};
    assert_int_equal(write_group(&w.lp, 2, c, 1, 0), 0);
    spin(&w, 100);
    assert_string_equal(second.log, "1:b1;1:b2;2:c;");
    local_sub_free(&second);
    moq_session_close(late_client.session, 0, "");
    spin(&w, 50);
    moq_origin_free(late);
    teardown_world(&w);
    current_ls = NULL;
}

/* A publisher with every group ready when the relay's subscription arrives sends them
 * newest first (unordered subscribers): the subscriber that caused the subscription still
 * gets each one, the older ones after the newest. */
static void newest_first_groups_all_arrive(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    struct local_sub ls = {0};
    subscribe_local(&w, &ls);
    spin(&w, 50);
    const char *c[] = {"c"}, *b[] = {"b"}, *a[] = {"a"};
    assert_int_equal(write_group(&w.lp, 2, c, 1, 0), 0);
    assert_int_equal(write_group(&w.lp, 1, b, 1, 0), 0);
    assert_int_equal(write_group(&w.lp, 0, a, 1, 0), 0);
    spin(&w, 100);
    assert_int_equal(strlen(ls.log), strlen("2:c;1:b;0:a;"));
    assert_non_null(strstr(ls.log, "0:a;"));
    assert_non_null(strstr(ls.log, "1:b;"));
    assert_non_null(strstr(ls.log, "2:c;"));
    local_sub_free(&ls);
    teardown_world(&w);
    current_ls = NULL;
}

static void unknown_broadcast_is_refused(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    /* announce a path in the subscriber's origin that the relay does not have, pointing at
     * the relay session, by subscribing through a broadcast the relay never saw */
    struct local_sub ls = {0};
    current_ls = &ls;
    moq_sub_prefs prefs = {0};
    int rv = moq_origin_subscribe(w.sub, (const uint8_t *)"nope", 4, (const uint8_t *)"t", 1, 0,
                                  &prefs, &ls_ops, &ls, &ls.sub);
    assert_int_equal(rv, MOQ_ERR_NOT_FOUND);
    ls.sub = NULL;
    teardown_world(&w);
    current_ls = NULL;
}

/* A one-frame group that arrived as a datagram leaves as a datagram on lite-05: through the
 * relay to the subscriber without any group stream. */
static void datagram_groups_travel_as_datagrams(void **state)
{
    struct world w;
    setup_world(&w, "moq-lite-05");
    struct local_sub ls = {0};
    current_ls = &ls;
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(w.sub, (const uint8_t *)"bbb", 3, (const uint8_t *)"dg",
                                          2, 0, &prefs, &ls_ops, &ls, &ls.sub),
                     0);
    spin(&w, 50);
    assert_non_null(w.lp.track);
    for (uint64_t seq = 10; seq < 13; seq++) {
        moq_group *g = NULL;
        assert_int_equal(moq_track_begin_group_flags(w.lp.track, w.lp.route, seq, moq_now_us(),
                                                     MOQ_GROUP_DATAGRAM, &g),
                         0);
        moq_frame f;
        assert_int_equal(moq_frame_alloc(&f, 0, 500 + seq, 2), 0);
        memcpy(f.chunk->data + f.payload_off, "dg", 2);
        assert_int_equal(moq_group_append(g, &f, moq_now_us()), 0);
        assert_int_equal(moq_group_finish(g, moq_now_us()), 0);
        moq_group_unref(g);
        spin(&w, 20);
    }
    assert_string_equal(ls.log, "10:dg;11:dg;12:dg;");
    assert_true(ls.timestamps[0] == 510 && ls.timestamps[2] == 512);
    struct moq_session_stats relay_out, pub_out;
    moq_session_stats_get(w.relay_from_sub.session, &relay_out);
    moq_session_stats_get(w.pub_client.session, &pub_out);
    assert_int_equal(relay_out.groups_out, 0);
    assert_int_equal(pub_out.groups_out, 0);
    assert_int_equal(relay_out.frames_out, 3);
    local_sub_free(&ls);
    teardown_world(&w);
    current_ls = NULL;
}

/* A peer announcing more broadcasts than a session may hold is cut off (BoundsExceeded),
 * without disturbing the relay's other sessions. */
static void too_many_announcements_close_the_session(void **state)
{
    struct world w;
    setup_world(&w, "moq-lite-05");
    static moq_route *routes[10001];
    static struct local_pub pubs[10001];
    char path[32];
    for (int i = 0; i < 10001; i++) {
        int n = snprintf(path, sizeof(path), "many/%d", i);
        assert_int_equal(moq_origin_announce(w.pub, (const uint8_t *)path, (size_t)n, NULL, 0,
                                             &local_pub_ops, &pubs[i], &routes[i]),
                         0);
    }
    for (int i = 0; i < 200 && !w.relay_from_pub.closed; i++)
        spin(&w, 10);
    assert_int_equal(w.relay_from_pub.closed, 1);
    assert_true(w.relay_from_pub.close_code == 11);
    assert_int_equal(w.sub_client.closed, 0); /* the subscriber's session is unaffected */
    for (int i = 0; i < 10001; i++)
        moq_route_unannounce(routes[i]);
    teardown_world(&w);
}

static void publisher_exit_unannounces(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    assert_int_equal(moq_origin_lookup(w.sub, (const uint8_t *)"bbb", 3, 0, NULL, NULL), 0);
    moq_session_close(w.pub_client.session, 0, "bye");
    spin(&w, 100);
    assert_int_equal(w.relay_from_pub.closed, 1);
    /* linger is 0 in these tests: gone from the relay and from the subscriber */
    assert_int_equal(moq_origin_lookup(w.relay, (const uint8_t *)"bbb", 3, 0, NULL, NULL),
                     MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_origin_lookup(w.sub, (const uint8_t *)"bbb", 3, 0, NULL, NULL),
                     MOQ_ERR_NOT_FOUND);
    teardown_world(&w);
}

/* A relay that refuses what a grant does not allow. A publisher granted "alice" may announce
 * alice/...: a route; announcing anything else closes its session with Unauthorized, the
 * reason naming the path. A subscriber granted "alice" asking for announcements under "bob"
 * has that request refused (its session lives on); under "" it sees alice/... only. */
static void grant_refusals(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    static struct local_pub lp_ok, lp_bad;
    moq_origin *pub = origin(20), *sub = origin(21);
    struct end pub_client = {.sub = ""},
               relay_pub = {.pub = "alice", .sub = "alice", .strict = true};
    struct end sub_client = {.pub = "bob"},
               relay_sub = {.pub = "alice", .sub = "alice", .strict = true};
    assert_int_equal(moq_origin_announce(pub, (const uint8_t *)"alice/cam", 9, NULL, 0,
                                         &local_pub_ops, &lp_ok, &lp_ok.route),
                     0);
    connect(&w, pub, &pub_client, &relay_pub, "/");
    connect(&w, sub, &sub_client, &relay_sub, "/");
    spin(&w, 50);
    assert_int_equal(moq_origin_lookup(w.relay, (const uint8_t *)"alice/cam", 9, 0, NULL, NULL), 0);
    assert_int_equal(relay_pub.closed, 0);
    /* the subscriber's request under "bob" is refused; nothing else happens to it */
    assert_int_equal(sub_client.refusals, 1);
    assert_string_equal(sub_client.refused, "bob");
    assert_int_equal(sub_client.closed, 0);

    /* a broadcast outside the grant ends the publisher's session */
    assert_int_equal(moq_origin_announce(pub, (const uint8_t *)"bob/cam", 7, NULL, 0,
                                         &local_pub_ops, &lp_bad, &lp_bad.route),
                     0);
    for (int i = 0; i < 20 && !pub_client.closed; i++)
        spin(&w, 10);
    assert_int_equal(relay_pub.closed, 1);
    assert_int_equal(pub_client.closed, 1);
    assert_true(pub_client.close_code == 6);
    assert_string_equal(pub_client.close_reason, "not allowed to publish bob/cam");
    assert_int_equal(moq_origin_lookup(w.relay, (const uint8_t *)"bob/cam", 7, 0, NULL, NULL),
                     MOQ_ERR_NOT_FOUND);
    assert_int_equal(sub_client.closed, 0);

    moq_session_close(sub_client.session, 0, "");
    spin(&w, 50);
    moq_route_unannounce(lp_ok.route);
    moq_route_unannounce(lp_bad.route);
    moq_origin_free(pub);
    moq_origin_free(sub);
    teardown_world(&w);
}

/* Without refuse_outside_grant (a client, or a relay configured so), nothing outside the
 * grant is asked for, and an announce request outside it gets an empty answer. */
static void lenient_sessions_ignore_what_is_outside(void **state)
{
    struct world w;
    setup_world(&w, "moq-lite-05");
    static struct local_pub lp;
    moq_origin *pub = origin(20), *sub = origin(21);
    struct end pub_client = {.sub = ""}, relay_pub = {.pub = "alice", .sub = "alice"};
    struct end sub_client = {.pub = "bob"}, relay_sub = {.pub = "alice", .sub = "alice"};
    assert_int_equal(moq_origin_announce(pub, (const uint8_t *)"bob/cam", 7, NULL, 0,
                                         &local_pub_ops, &lp, &lp.route),
                     0);
    connect(&w, pub, &pub_client, &relay_pub, "/");
    connect(&w, sub, &sub_client, &relay_sub, "/");
    spin(&w, 50);
    assert_int_equal(relay_pub.closed, 0);
    assert_int_equal(sub_client.refusals, 0);
    assert_int_equal(moq_origin_lookup(w.relay, (const uint8_t *)"bob/cam", 7, 0, NULL, NULL),
                     MOQ_ERR_NOT_FOUND);
    moq_session_close(pub_client.session, 0, "");
    moq_session_close(sub_client.session, 0, "");
    spin(&w, 50);
    moq_route_unannounce(lp.route);
    moq_origin_free(pub);
    moq_origin_free(sub);
    teardown_world(&w);
}

static void append_text(moq_group *g, const char *text, uint64_t prev_ts, uint64_t ts)
{
    moq_frame f;
    size_t len = strlen(text);
    assert_int_equal(moq_frame_alloc(&f, prev_ts, ts, len), 0);
    memcpy(f.chunk->data + f.payload_off, text, len);
    assert_int_equal(moq_group_append(g, &f, moq_now_us()), 0);
}

/* Announcement events a watch saw, as "+path" / "-path" entries. */
struct seen {
    char log[256];
};

static void seen_event(void *ctx, moq_watch *watch, const moq_announce_event *ev)
{
    struct seen *sn = ctx;
    if (ev->kind == MOQ_ANNOUNCE_RESTART) return;
    size_t n = strlen(sn->log);
    snprintf(sn->log + n, sizeof(sn->log) - n, "%c%.*s;",
             ev->kind == MOQ_ANNOUNCE_ENDED ? '-' : '+', (int)ev->path_len, (const char *)ev->path);
}

static const moq_watch_ops seen_ops = {seen_event};

/* A publisher finishes its track and unannounces while its last group is still being
 * written: watchers everywhere hear that the broadcast ended at once, the group still
 * reaches the subscriber in full, and the subscription ends as finished (not aborted). */
static void finished_track_outlives_unannounce(const char *proto)
{
    struct world w;
    setup_world(&w, proto);
    struct seen seen = {0};
    moq_watch *watch = NULL;
    assert_int_equal(moq_origin_watch(w.sub, (const uint8_t *)"", 0, 0, &seen_ops, &seen, &watch),
                     0);
    assert_string_equal(seen.log, "+bbb;");
    struct local_sub ls = {0};
    subscribe_local(&w, &ls);
    spin(&w, 50);
    assert_non_null(w.lp.track);
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(w.lp.track, w.lp.route, 0, moq_now_us(), &g), 0);
    append_text(g, "first", 0, 10);
    spin(&w, 50);
    assert_string_equal(ls.log, "0:first;");

    /* the end of the track, then the end of the broadcast, with group 0 still open */
    assert_int_equal(moq_track_finish(w.lp.track, w.lp.route, 1), 0);
    moq_route_unannounce(w.lp.route);
    w.lp.route = NULL;
    assert_null(w.lp.track); /* the producer was released */
    spin(&w, 50);
    assert_false(ls.aborted);
    assert_string_equal(seen.log, "+bbb;-bbb;");
    assert_int_equal(moq_origin_lookup(w.relay, (const uint8_t *)"bbb", 3, 0, NULL, NULL),
                     MOQ_ERR_NOT_FOUND);
    append_text(g, "second", 10, 20);
    assert_int_equal(moq_group_finish(g, moq_now_us()), 0);
    moq_group_unref(g);
    spin(&w, 100);
    assert_string_equal(ls.log, "0:first;0:second;");
    assert_true(ls.groups[0].done && ls.groups[0].state == MOQ_GROUP_FINISHED);
    assert_false(ls.aborted);
    assert_int_equal(moq_origin_lookup(w.relay, (const uint8_t *)"bbb", 3, 0, NULL, NULL),
                     MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_origin_lookup(w.sub, (const uint8_t *)"bbb", 3, 0, NULL, NULL),
                     MOQ_ERR_NOT_FOUND);
    assert_string_equal(seen.log, "+bbb;-bbb;");
    moq_watch_close(watch);
    local_sub_free(&ls);
    teardown_world(&w);
    current_ls = NULL;
}

/* A raw peer (no session) holding an incomplete SUBSCRIBE on each of `streams` streams. */
static void noop_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    *(int *)app = 1;
}

static const struct moq_transport_events raw_events = {.closed = noop_closed};

static uint64_t partial_control_flood(int streams, int *raw_closed, struct end *server)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    moq_origin *relay = origin(RELAY_ID);
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, "moq-lite-03", "/", 0};
    assert_non_null(moq_pipe_new(loop, &pc, &ct, &st));
    moq_transport_attach(ct, &raw_events, raw_closed);
    *server = (struct end){.pub = "", .sub = ""};
    struct moq_session_config sc = {.origin = relay,
                                    .clock = &moq_system_clock,
                                    .authorize = authorize,
                                    .closed = closed,
                                    .ctx = server};
    server->session = moq_session_new(st, &sc);
    assert_non_null(server->session);
    uint8_t msg[16], *p = msg;
    p = moq_varint_put(p, 0x2);   /* SUBSCRIBE */
    p = moq_varint_put(p, 60000); /* a size we never complete */
    memcpy(p,
           "\x01\x03"
           "abc",
           5);
    p += 5;
    for (int i = 0; i < streams; i++) {
        int64_t sid;
        assert_int_equal(moq_transport_open(ct, true, &sid), 0);
        assert_int_equal(moq_transport_write_bytes(ct, sid, msg, (size_t)(p - msg), false), 0);
    }
    for (int i = 0; i < 50; i++)
        ev_run(loop, EVRUN_NOWAIT);
    uint64_t code = server->closed ? server->close_code : UINT64_MAX;
    if (!*raw_closed) moq_transport_close(ct, 0, "");
    ev_run(loop, 0);
    moq_origin_free(relay);
    ev_loop_destroy(loop);
    return code;
}

/* Each incomplete control message reserves its declared size; one peer may not make the
 * session hold more than 1 MiB of them across its streams. */
static void incomplete_control_messages_are_bounded(void **state)
{
    int raw_closed = 0;
    struct end server;
    /* 16 x ~60 KB fits */
    assert_true(partial_control_flood(16, &raw_closed, &server) == UINT64_MAX);
    /* 20 do not: the session is closed with BoundsExceeded */
    raw_closed = 0;
    assert_int_equal(partial_control_flood(20, &raw_closed, &server), 11);
    assert_int_equal(raw_closed, 1);
}

#define PER_VERSION(fn)                                                                            \
    static void fn##_03(void **s)                                                                  \
    {                                                                                              \
        fn("moq-lite-03");                                                                         \
    }                                                                                              \
    static void fn##_04(void **s)                                                                  \
    {                                                                                              \
        fn("moq-lite-04");                                                                         \
    }                                                                                              \
    static void fn##_05(void **s)                                                                  \
    {                                                                                              \
        fn("moq-lite-05");                                                                         \
    }

PER_VERSION(announcements_reach_the_subscriber)
PER_VERSION(frames_flow_end_to_end)
PER_VERSION(late_joiner_starts_at_latest_group)
PER_VERSION(newest_first_groups_all_arrive)
PER_VERSION(late_joiner_after_the_last_left)
PER_VERSION(unknown_broadcast_is_refused)
PER_VERSION(publisher_exit_unannounces)
PER_VERSION(finished_track_outlives_unannounce)
PER_VERSION(grant_refusals)

#define TESTS(fn) cmocka_unit_test(fn##_03), cmocka_unit_test(fn##_04), cmocka_unit_test(fn##_05)

int main(void)
{
    moq_log_set_level(getenv("TEST_DEBUG") ? MOQ_LOG_TRACE : MOQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        TESTS(announcements_reach_the_subscriber),
        TESTS(frames_flow_end_to_end),
        TESTS(late_joiner_starts_at_latest_group),
        TESTS(newest_first_groups_all_arrive),
        TESTS(late_joiner_after_the_last_left),
        TESTS(unknown_broadcast_is_refused),
        TESTS(publisher_exit_unannounces),
        cmocka_unit_test(too_many_announcements_close_the_session),
        cmocka_unit_test(datagram_groups_travel_as_datagrams),
        TESTS(finished_track_outlives_unannounce),
        cmocka_unit_test(incomplete_control_messages_are_bounded),
        TESTS(grant_refusals),
        cmocka_unit_test(lenient_sessions_ignore_what_is_outside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
