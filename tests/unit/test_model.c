/* Unit tests for src/model: origin, announcements, watches, routes and linger. */
#include "test_model_util.h"

static int find_event(const rwatch *w, int kind, const char *path)
{
    for (int i = 0; i < w->n; i++)
        if (w->ev[i].kind == kind && strcmp(w->ev[i].path, path) == 0) return i;
    return -1;
}

static void watch_initial_set_and_updates(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod a = {0}, b = {0}, c = {0}, d = {0}, e = {0};
    announce(o, &a, "room/a", (uint64_t[]){1}, 1);
    announce(o, &b, "room/b", (uint64_t[]){2}, 1);
    announce(o, &c, "other", (uint64_t[]){3}, 1);

    rwatch w = {0};
    watch(o, &w, "room", 0);
    assert_int_equal(w.n, 2);
    int ia = find_event(&w, MOQ_ANNOUNCE_ACTIVE, "room/a");
    int ib = find_event(&w, MOQ_ANNOUNCE_ACTIVE, "room/b");
    assert_true(ia >= 0 && ib >= 0);
    assert_true(w.ev[ia].initial && w.ev[ib].initial);
    assert_string_equal(w.ev[ia].suffix, "a");
    expect_event(&w, ia, MOQ_ANNOUNCE_ACTIVE, "room/a", (uint64_t[]){1}, 1);
    expect_event(&w, ib, MOQ_ANNOUNCE_ACTIVE, "room/b", (uint64_t[]){2}, 1);

    announce(o, &d, "room/c/deep", (uint64_t[]){4, 5}, 2);
    assert_int_equal(w.n, 3);
    expect_event(&w, 2, MOQ_ANNOUNCE_ACTIVE, "room/c/deep", (uint64_t[]){4, 5}, 2);
    assert_false(w.ev[2].initial);
    assert_string_equal(w.ev[2].suffix, "c/deep");

    announce(o, &e, "roomy/x", NULL, 0); /* not under "room" */
    assert_int_equal(w.n, 3);

    moq_route_unannounce(a.route);
    assert_int_equal(w.n, 4);
    expect_event(&w, 3, MOQ_ANNOUNCE_ENDED, "room/a", NULL, 0);

    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.broadcasts, 4);
    assert_int_equal(st.watches, 1);
    assert_int_equal(moq_origin_list(o, S("room"), 0, NULL, NULL), 2);
    assert_int_equal(moq_origin_list(o, S(""), 0, NULL, NULL), 4);

    moq_watch_close(w.watch);
    moq_route_unannounce(b.route);
    moq_route_unannounce(c.route);
    moq_route_unannounce(d.route);
    moq_route_unannounce(e.route);
    assert_int_equal(w.n, 4); /* closed watch hears nothing */
    stats_zero(o);
    moq_origin_free(o);
}

static void path_prefix_rules(void **state)
{
    moq_origin *o = new_origin(100, 0);
    rwatch w = {0}, all = {0};
    watch(o, &w, "a/b", 0);
    watch(o, &all, "", 0);
    prod p1 = {0}, p2 = {0}, p3 = {0}, p4 = {0};
    announce(o, &p1, "a/b", NULL, 0);
    announce(o, &p2, "a/b/c", NULL, 0);
    announce(o, &p3, "a/bc", NULL, 0);
    announce(o, &p4, "a", NULL, 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.ev[0].path, "a/b");
    assert_string_equal(w.ev[0].suffix, "");
    assert_string_equal(w.ev[1].suffix, "c");
    assert_int_equal(all.n, 4);
    assert_string_equal(all.ev[2].suffix, "a/bc");
    assert_int_equal(moq_origin_list(o, S("a/b"), 0, NULL, NULL), 2);
    assert_int_equal(moq_origin_list(o, S("a/bc"), 0, NULL, NULL), 1);
    assert_int_equal(moq_origin_list(o, S("nope"), 0, NULL, NULL), 0);
    assert_int_equal(moq_origin_lookup(o, S("a/b/c"), 0, NULL, NULL), 0);
    assert_int_equal(moq_origin_lookup(o, S("a/b/x"), 0, NULL, NULL), MOQ_ERR_NOT_FOUND);
    moq_route_unannounce(p1.route);
    moq_route_unannounce(p2.route);
    moq_route_unannounce(p3.route);
    moq_route_unannounce(p4.route);
    moq_watch_close(w.watch);
    moq_watch_close(all.watch);
    stats_zero(o);
    moq_origin_free(o);
}

static void exclude_hop_and_own_id(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod loop = {0};
    assert_int_equal(
        moq_origin_announce(o, S("x"), (uint64_t[]){5, 100}, 2, &prod_ops, &loop, &loop.route),
        MOQ_ERR_INVALID);
    assert_null(loop.route);
    uint64_t many[MOQ_MAX_HOPS + 1] = {0};
    assert_int_equal(
        moq_origin_announce(o, S("x"), many, MOQ_MAX_HOPS + 1, &prod_ops, &loop, &loop.route),
        MOQ_ERR_INVALID);
    assert_int_equal(moq_origin_list(o, S(""), 0, NULL, NULL), 0);

    prod p1 = {0}, p2 = {0};
    /* one publisher (5), reached through peer 7 or through 8 and 9 */
    announce(o, &p1, "x", (uint64_t[]){5, 7}, 2);
    rwatch plain = {0}, peer7 = {0};
    watch(o, &plain, "", 0);
    watch(o, &peer7, "", 7);
    assert_int_equal(plain.n, 1);
    assert_int_equal(peer7.n, 0); /* its own broadcast is not advertised back to it */
    assert_int_equal(moq_origin_lookup(o, S("x"), 7, NULL, NULL), MOQ_ERR_NOT_FOUND);
    rsub s7 = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s7, "x", "t", 7, &pr), MOQ_ERR_NOT_FOUND);

    announce(o, &p2, "x", (uint64_t[]){5, 8, 9}, 3);
    assert_int_equal(plain.n, 1); /* best route for it unchanged: {5, 7} is shorter */
    assert_int_equal(peer7.n, 1);
    expect_event(&peer7, 0, MOQ_ANNOUNCE_ACTIVE, "x", (uint64_t[]){5, 8, 9}, 3);
    uint64_t hops[MOQ_MAX_HOPS];
    size_t nh = 0;
    assert_int_equal(moq_origin_lookup(o, S("x"), 7, hops, &nh), 0);
    assert_int_equal(nh, 3);
    assert_int_equal(hops[1], 8);
    assert_int_equal(moq_origin_list(o, S(""), 9, NULL, NULL), 1); /* via {5, 7} */

    /* The peer's subscription is served by the route that avoids it. */
    assert_int_equal(subscribe(o, &s7, "x", "t", 7, &pr), 0);
    assert_int_equal(p1.requests, 0);
    assert_int_equal(p2.requests, 1);

    moq_route_unannounce(p1.route);
    assert_int_equal(plain.n, 2);
    expect_event(&plain, 1, MOQ_ANNOUNCE_RESTART, "x", (uint64_t[]){5, 8, 9}, 3);
    assert_int_equal(peer7.n, 1);

    rsub_close(&s7);
    assert_int_equal(p2.releases, 1);
    moq_route_unannounce(p2.route);
    expect_event(&plain, 2, MOQ_ANNOUNCE_ENDED, "x", NULL, 0);
    expect_event(&peer7, 1, MOQ_ANNOUNCE_ENDED, "x", NULL, 0);
    moq_watch_close(plain.watch);
    moq_watch_close(peer7.watch);
    stats_zero(o);
    moq_origin_free(o);
}

/* The cluster-wide key, computed independently of the model's code. */
static uint64_t expected_key(const char *path, const uint64_t *hops, size_t n)
{
    uint64_t h = 0x420C0DECB00Bull;
    for (const char *c = path; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    for (size_t i = 0; i < n; i++) {
        uint8_t le[8];
        for (int b = 0; b < 8; b++)
            le[b] = (uint8_t)(hops[i] >> (8 * b));
        for (int b = 0; b < 8; b++)
            h = (h ^ le[b]) * 0x100000001b3ull;
    }
    return h;
}

static void best_route_choice(void **state)
{
    /* Three routes to publisher 4's broadcast: two of equal length, one longer. */
    const uint64_t ha[] = {4, 11, 12}, hb[] = {4, 21, 22}, hlong[] = {4, 1, 2, 3};
    uint64_t want = expected_key("br", ha, 3) < expected_key("br", hb, 3) ? 11 : 21;

    /* Same winner whatever the announce order, so every relay agrees. */
    for (int order = 0; order < 2; order++) {
        moq_origin *o = new_origin(100, 0);
        prod pa = {0}, pb = {0}, pl = {0};
        announce(o, &pl, "br", hlong, 4);
        if (order == 0) {
            announce(o, &pa, "br", ha, 3);
            announce(o, &pb, "br", hb, 3);
        } else {
            announce(o, &pb, "br", hb, 3);
            announce(o, &pa, "br", ha, 3);
        }
        uint64_t hops[MOQ_MAX_HOPS];
        size_t nh;
        assert_int_equal(moq_origin_lookup(o, S("br"), 0, hops, &nh), 0);
        assert_int_equal(nh, 3);
        assert_int_equal(hops[1], want);

        /* Re-announce by the same producer replaces its chain and keeps the handle. */
        rwatch w = {0};
        watch(o, &w, "", 0);
        assert_int_equal(w.n, 1);
        prod *winner = want == 11 ? &pa : &pb, *loser = want == 11 ? &pb : &pa;
        moq_route *before = winner->route;
        assert_int_equal(moq_origin_announce(o, S("br"), (uint64_t[]){4, 9, 9, 9, 9}, 5, &prod_ops,
                                             winner, &winner->route),
                         0);
        assert_ptr_equal(before, winner->route);
        assert_int_equal(w.n, 2);
        const uint64_t *lh = want == 11 ? hb : ha;
        expect_event(&w, 1, MOQ_ANNOUNCE_RESTART, "br", lh, 3);
        /* A shorter chain wins outright. */
        assert_int_equal(moq_route_update(winner->route, (uint64_t[]){4, 5}, 2), 0);
        expect_event(&w, 2, MOQ_ANNOUNCE_RESTART, "br", (uint64_t[]){4, 5}, 2);
        /* An update to a non-best route is invisible. */
        assert_int_equal(moq_route_update(loser->route, (uint64_t[]){4, 6, 6}, 3), 0);
        assert_int_equal(w.n, 3);
        assert_int_equal(moq_route_update(loser->route, (uint64_t[]){4, 100}, 2), MOQ_ERR_INVALID);

        moq_watch_close(w.watch);
        moq_route_unannounce(pa.route);
        moq_route_unannounce(pb.route);
        moq_route_unannounce(pl.route);
        stats_zero(o);
        moq_origin_free(o);
    }

    /* An exact tie (same chain) goes to the newest route. */
    moq_origin *o = new_origin(100, 0);
    prod old = {0}, fresh = {0};
    announce(o, &old, "tie", (uint64_t[]){3}, 1);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s, "tie", "t", 0, &pr), 0);
    assert_int_equal(old.requests, 1);
    announce(o, &fresh, "tie", (uint64_t[]){3}, 1);
    assert_int_equal(old.releases, 1); /* the track moved to the new session */
    assert_int_equal(fresh.requests, 1);
    rsub_close(&s);
    moq_route_unannounce(old.route);
    moq_route_unannounce(fresh.route);
    moq_origin_free(o);
}

static void linger_keeps_and_splices(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod p1 = {0}, p2 = {0};
    announce(o, &p1, "live", (uint64_t[]){1, 5}, 2); /* publisher 1 through relay 5 */
    rwatch w = {0};
    watch(o, &w, "", 0);
    assert_int_equal(w.n, 1);
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    pr.priority = 7;
    assert_int_equal(subscribe(o, &s, "live", "video", 0, &pr), 0);
    assert_int_equal(p1.requests, 1);
    write_group_done(&p1, p1.last, 0, 2, 100, 1 * SEC);
    assert_int_equal(s.ngroups, 1);

    /* Ungraceful loss: still announced, subscriber stalls, nothing ends. */
    moq_route_lost(p1.route, 10 * SEC);
    assert_int_equal(p1.releases, 1);
    assert_int_equal(w.n, 1);
    assert_int_equal(s.aborts, 0);
    assert_int_equal(moq_origin_next_deadline(o), 15 * SEC);
    moq_origin_tick(o, 14 * SEC);
    assert_int_equal(moq_origin_lookup(o, S("live"), 0, NULL, NULL), 0);
    rwatch late = {0};
    watch(o, &late, "", 0); /* a new watcher still sees it, with the last hops */
    expect_event(&late, 0, MOQ_ANNOUNCE_ACTIVE, "live", (uint64_t[]){1, 5}, 2);
    rsub s2 = {0};
    moq_sub_prefs pr2 = prefs_default();
    assert_int_equal(subscribe(o, &s2, "live", "video", 0, &pr2), 0); /* stalls too */

    /* A route to the same publisher within the window is spliced in. */
    announce(o, &p2, "live", (uint64_t[]){1, 6}, 2);
    assert_int_equal(p2.requests, 1);
    assert_int_equal(p2.prefs.priority, 7);
    assert_true(p2.prefs.has_start);
    expect_event(&w, 1, MOQ_ANNOUNCE_RESTART, "live", (uint64_t[]){1, 6}, 2);
    write_group_done(&p2, p2.last, 1, 1, 100, 14 * SEC);
    assert_int_equal(s.ngroups, 2);
    assert_int_equal(s.seqs[1], 1);
    assert_int_equal(s2.ngroups, 2); /* late joiner: latest cached group 0, then 1 */
    assert_int_equal(s2.seqs[0], 0);

    /* Lost again, and this time the window expires. */
    moq_route_lost(p2.route, 20 * SEC);
    moq_origin_tick(o, 24 * SEC);
    assert_int_equal(w.n, 2);
    moq_origin_tick(o, 25 * SEC);
    assert_int_equal(w.n, 3);
    expect_event(&w, 2, MOQ_ANNOUNCE_ENDED, "live", NULL, 0);
    assert_int_equal(s.aborts, 1);
    assert_int_equal(s.code, MOQ_REASON_DROPPED);
    assert_int_equal(s2.aborts, 1);
    assert_int_equal(moq_origin_lookup(o, S("live"), 0, NULL, NULL), MOQ_ERR_NOT_FOUND);
    assert_null(moq_subscription_info(s.sub));
    assert_int_equal(moq_subscription_update(s.sub, &pr), MOQ_ERR_CLOSED);
    rsub_close(&s);
    rsub_close(&s2);
    moq_watch_close(w.watch);
    moq_watch_close(late.watch);
    stats_zero(o);
    moq_origin_free(o);
}

static void linger_same_hops_is_silent_and_graceful_is_immediate(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod p1 = {0}, p2 = {0}, g = {0};
    announce(o, &p1, "s", (uint64_t[]){1}, 1);
    rwatch w = {0};
    watch(o, &w, "", 0);
    moq_route_lost(p1.route, 0);
    announce(o, &p2, "s", (uint64_t[]){1}, 1); /* reconnect with the same chain */
    assert_int_equal(w.n, 1);
    assert_int_equal(moq_origin_next_deadline(o), UINT64_MAX);
    moq_origin_tick(o, 100 * SEC); /* not lingering any more */
    assert_int_equal(moq_origin_lookup(o, S("s"), 0, NULL, NULL), 0);

    announce(o, &g, "g", NULL, 0);
    assert_int_equal(w.n, 2);
    moq_route_unannounce(g.route); /* graceful: no linger */
    assert_int_equal(w.n, 3);
    expect_event(&w, 2, MOQ_ANNOUNCE_ENDED, "g", NULL, 0);
    moq_route_unannounce(p2.route);
    expect_event(&w, 3, MOQ_ANNOUNCE_ENDED, "s", NULL, 0);
    moq_watch_close(w.watch);

    /* Linger 0: a loss ends it at once. */
    moq_origin *z = new_origin(100, 0);
    prod q = {0};
    rwatch wz = {0};
    watch(z, &wz, "", 0);
    announce(z, &q, "q", NULL, 0);
    moq_route_lost(q.route, 0);
    assert_int_equal(wz.n, 2);
    expect_event(&wz, 1, MOQ_ANNOUNCE_ENDED, "q", NULL, 0);
    moq_watch_close(wz.watch);
    stats_zero(z);
    moq_origin_free(z);
    stats_zero(o);
    moq_origin_free(o);
}

static void failover_moves_tracks(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod near = {0}, far = {0};
    announce(o, &near, "f", (uint64_t[]){1}, 1);
    announce(o, &far, "f", (uint64_t[]){1, 2, 3}, 3); /* the same publisher, further away */
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "f", "t", 0, &pr), 0);
    assert_int_equal(near.requests, 1);
    assert_int_equal(far.requests, 0);
    moq_group *open = write_group(&near, near.last, 0, 1, 50, 0, false);
    assert_int_equal(s.ngroups, 1);

    moq_route_lost(near.route, 1 * SEC); /* other routes remain: no linger, just move */
    assert_int_equal(near.releases, 1);
    assert_int_equal(far.requests, 1);
    /* The new route starts after the newest group: it never delivers group 0 again (the
     * subscriber has part of it), and what the old producer still writes reaches it. */
    moq_group *dup = NULL;
    assert_int_equal(moq_track_begin_group(far.last, far.route, 0, 1 * SEC, &dup), MOQ_ERR_EXISTS);
    rfol fl;
    follow(&fl, open);
    moq_frame f = make_frame(0, 1, 10);
    assert_int_equal(moq_group_append(open, &f, 1 * SEC), 0);
    assert_int_equal(fl.frames_seen, 2);
    assert_int_equal(moq_group_abort(open, 5), 0); /* (the lost session gives up on it) */
    moq_group *g1 = write_group(&far, far.last, 1, 2, 50, 1 * SEC, true);
    assert_int_equal(s.ngroups, 2);
    assert_int_equal(s.seqs[1], 1);
    /* A duplicate of a finished group is refused. */
    assert_int_equal(moq_track_begin_group(far.last, far.route, 1, 1 * SEC, &dup), MOQ_ERR_EXISTS);
    rfol_close(&fl);
    moq_group_unref(open);
    moq_group_unref(g1);
    rsub_close(&s);
    assert_int_equal(far.releases, 1);
    moq_route_unannounce(far.route);
    stats_zero(o);
    moq_origin_free(o);
}

static void unroutable_subscriber_is_failed(void **state)
{
    /* A shared track whose only remaining route flows through one of its subscribers. */
    moq_origin *o = new_origin(100, 0);
    prod direct = {0}, via9 = {0};
    announce(o, &direct, "u", (uint64_t[]){1}, 1);
    announce(o, &via9, "u", (uint64_t[]){1, 9}, 2);
    rsub a = {0}, peer = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &a, "u", "t", 0, &pr), 0);
    assert_int_equal(subscribe(o, &peer, "u", "t", 9, &pr), 0);
    assert_int_equal(direct.requests, 1); /* one shared upstream */
    moq_route_unannounce(direct.route);
    assert_int_equal(peer.aborts, 1);
    assert_int_equal(peer.code, MOQ_REASON_UNROUTABLE);
    assert_int_equal(a.aborts, 0);
    assert_int_equal(via9.requests, 1);
    assert_int_equal(via9.ntracks, 1);
    rsub_close(&peer);
    rsub_close(&a);
    assert_int_equal(via9.releases, 1);
    moq_route_unannounce(via9.route);
    stats_zero(o);
    moq_origin_free(o);
}

/* What an origin reports for the operator's log: a broadcast lingering, resumed by its
 * publisher, expired, replaced by another publisher. */
struct bc_events {
    int kinds[16];
    char paths[16][16];
    int n;
};

static void record_bc_event(void *ctx, int event, const uint8_t *path, size_t len)
{
    struct bc_events *e = ctx;
    assert_true(e->n < 16 && len < 16);
    e->kinds[e->n] = event;
    memcpy(e->paths[e->n], path, len);
    e->paths[e->n][len] = '\0';
    e->n++;
}

static void broadcast_events_for_the_log(void **state)
{
    struct bc_events ev = {0};
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = 100;
    cfg.linger_us = 5 * SEC;
    cfg.broadcast_event = record_bc_event;
    cfg.broadcast_ctx = &ev;
    moq_origin *o = moq_origin_new(&cfg);
    assert_non_null(o);
    prod p1 = {0}, p2 = {0}, p3 = {0}, other = {0};
    announce(o, &p1, "cam", (uint64_t[]){1}, 1);
    assert_int_equal(ev.n, 0);
    moq_route_lost(p1.route, 10 * SEC);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.kinds[0], MOQ_BROADCAST_LINGERING);
    assert_string_equal(ev.paths[0], "cam");
    announce(o, &p2, "cam", (uint64_t[]){1}, 1); /* the same publisher, back in time */
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.kinds[1], MOQ_BROADCAST_RESUMED);
    moq_route_lost(p2.route, 20 * SEC);
    moq_origin_tick(o, 25 * SEC);
    assert_int_equal(ev.n, 4);
    assert_int_equal(ev.kinds[2], MOQ_BROADCAST_LINGERING);
    assert_int_equal(ev.kinds[3], MOQ_BROADCAST_EXPIRED);
    announce(o, &p3, "cam", (uint64_t[]){1}, 1); /* too late: a new broadcast, no event */
    assert_int_equal(ev.n, 4);
    announce(o, &other, "cam", (uint64_t[]){2}, 1);
    assert_int_equal(ev.n, 5);
    assert_int_equal(ev.kinds[4], MOQ_BROADCAST_REPLACED);
    moq_route_unannounce(other.route); /* publisher 1 takes it back: replaced again */
    assert_int_equal(ev.n, 6);
    assert_int_equal(ev.kinds[5], MOQ_BROADCAST_REPLACED);
    moq_route_unannounce(p3.route); /* graceful: no event */
    assert_int_equal(ev.n, 6);
    stats_zero(o);
    moq_origin_free(o);
}

/* A publisher that comes back on a new session (a new origin id) while its old session has
 * gone quiet is new content: it takes the path over at once, whatever the routes' keys,
 * as a new broadcast. Its groups are numbered afresh, so no subscriber is spliced across:
 * the old broadcast's subscriptions end and new ones start at the new publisher's latest
 * group. */
static void new_publisher_takes_over(void **state)
{
    for (uint64_t i = 0; i < 40; i++) {
        moq_origin *o = new_origin(100, 5 * SEC);
        prod quiet = {0}, fresh = {0};
        uint64_t old_id = 1000 + i * 7919, new_id = 2000 + i * 104729;
        announce(o, &quiet, "cam", (uint64_t[]){old_id}, 1);
        rwatch w = {0};
        watch(o, &w, "", 0);
        rsub s = {0};
        moq_sub_prefs pr = prefs_default();
        assert_int_equal(subscribe(o, &s, "cam", "v", 0, &pr), 0);
        for (uint64_t seq = 20; seq < 25; seq++)
            write_group_done(&quiet, quiet.last, seq, 1, 10, seq * MS);

        announce(o, &fresh, "cam", (uint64_t[]){new_id}, 1);
        assert_int_equal(w.n, 3);
        expect_event(&w, 1, MOQ_ANNOUNCE_ENDED, "cam", NULL, 0);
        expect_event(&w, 2, MOQ_ANNOUNCE_ACTIVE, "cam", (uint64_t[]){new_id}, 1);
        assert_int_equal(s.aborts, 1);
        assert_int_equal(s.code, MOQ_REASON_DROPPED);
        assert_int_equal(quiet.releases, 1);
        uint64_t hops[MOQ_MAX_HOPS];
        size_t nh = 0;
        assert_int_equal(moq_origin_lookup(o, S("cam"), 0, hops, &nh), 0);
        assert_int_equal(hops[0], new_id);

        /* a new subscription gets the new numbering from its start */
        rsub s2 = {0};
        assert_int_equal(subscribe(o, &s2, "cam", "v", 0, &pr), 0);
        assert_int_equal(quiet.requests, 1);
        assert_int_equal(fresh.requests, 1);
        write_group_done(&fresh, fresh.last, 0, 1, 10, 30 * MS);
        write_group_done(&fresh, fresh.last, 1, 1, 10, 31 * MS);
        assert_int_equal(s2.ngroups, 2);
        assert_int_equal(s2.seqs[0], 0);
        assert_int_equal(s2.seqs[1], 1);
        assert_int_equal(s.ngroups, 5);

        /* the quiet session finally times out: nothing visible happens */
        moq_route_lost(quiet.route, 40 * SEC);
        assert_int_equal(w.n, 3);
        assert_int_equal(s2.aborts, 0);
        rsub_close(&s);
        rsub_close(&s2);
        moq_route_unannounce(fresh.route);
        expect_event(&w, 3, MOQ_ANNOUNCE_ENDED, "cam", NULL, 0);
        moq_watch_close(w.watch);
        stats_zero(o);
        moq_origin_free(o);
    }
}

/* The routes of a displaced publisher wait: when the current publisher leaves, the most
 * recent waiting one takes the path over, again as a new broadcast. */
static void standby_publisher_takes_over_when_current_leaves(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod a = {0}, a2 = {0}, b = {0};
    announce(o, &a, "p", (uint64_t[]){1}, 1);
    announce(o, &b, "p", (uint64_t[]){2}, 1);     /* takes over */
    announce(o, &a2, "p", (uint64_t[]){1, 7}, 2); /* publisher 1 again: not new, waits */
    rwatch w = {0};
    watch(o, &w, "", 0);
    expect_event(&w, 0, MOQ_ANNOUNCE_ACTIVE, "p", (uint64_t[]){2}, 1);
    assert_int_equal(moq_origin_list(o, S(""), 0, NULL, NULL), 1);

    moq_route_unannounce(b.route);
    assert_int_equal(w.n, 3);
    expect_event(&w, 1, MOQ_ANNOUNCE_ENDED, "p", NULL, 0);
    expect_event(&w, 2, MOQ_ANNOUNCE_ACTIVE, "p", (uint64_t[]){1}, 1);
    /* publisher 1's two routes are alternatives again */
    moq_route_unannounce(a.route);
    expect_event(&w, 3, MOQ_ANNOUNCE_RESTART, "p", (uint64_t[]){1, 7}, 2);

    /* a lost publisher lingers before a waiting one takes over */
    prod c = {0};
    announce(o, &c, "p", (uint64_t[]){3}, 1);
    expect_event(&w, 5, MOQ_ANNOUNCE_ACTIVE, "p", (uint64_t[]){3}, 1);
    moq_route_lost(c.route, 10 * SEC);
    assert_int_equal(w.n, 6);
    moq_origin_tick(o, 15 * SEC);
    assert_int_equal(w.n, 8);
    expect_event(&w, 6, MOQ_ANNOUNCE_ENDED, "p", NULL, 0);
    expect_event(&w, 7, MOQ_ANNOUNCE_ACTIVE, "p", (uint64_t[]){1, 7}, 2);
    moq_route_unannounce(a2.route);
    expect_event(&w, 8, MOQ_ANNOUNCE_ENDED, "p", NULL, 0);
    moq_watch_close(w.watch);
    stats_zero(o);
    moq_origin_free(o);
}

/* Chains of unknown ids (lite-03 counts) name no publisher: one announced again where it
 * was (a publisher that reconnected) is new content, a longer one (the same broadcast
 * reflected back by a peer) is not. */
static void unknown_publishers(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod first = {0}, reflected = {0}, again = {0};
    announce(o, &first, "u", (uint64_t[]){0}, 1);
    rwatch w = {0};
    watch(o, &w, "", 0);
    announce(o, &reflected, "u", (uint64_t[]){0, 0, 0}, 3);
    assert_int_equal(w.n, 1);
    announce(o, &again, "u", (uint64_t[]){0}, 1);
    assert_int_equal(w.n, 3);
    expect_event(&w, 1, MOQ_ANNOUNCE_ENDED, "u", NULL, 0);
    expect_event(&w, 2, MOQ_ANNOUNCE_ACTIVE, "u", (uint64_t[]){0}, 1);
    moq_route_unannounce(first.route);
    moq_route_unannounce(reflected.route);
    assert_int_equal(w.n, 3);
    moq_route_unannounce(again.route);
    expect_event(&w, 3, MOQ_ANNOUNCE_ENDED, "u", NULL, 0);
    /* relays with known ids behind unknown publishers stand for them */
    prod x = {0}, y = {0};
    announce(o, &x, "v", (uint64_t[]){0, 8}, 2);
    announce(o, &y, "v", (uint64_t[]){0, 8, 9}, 3);
    assert_int_equal(w.n, 5); /* +v, and nothing for the second route */
    moq_route_unannounce(x.route);
    expect_event(&w, 5, MOQ_ANNOUNCE_RESTART, "v", (uint64_t[]){0, 8, 9}, 3);
    moq_route_unannounce(y.route);
    moq_watch_close(w.watch);
    stats_zero(o);
    moq_origin_free(o);
}

/* A withdrawn route is no longer announced, but the subscriptions it serves keep receiving
 * until the producer ends them or the route is removed. */
static void withdrawn_route_keeps_serving(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod p = {0}, next = {0};
    announce(o, &p, "w", (uint64_t[]){1}, 1);
    rwatch w = {0};
    watch(o, &w, "", 0);
    rsub s = {0}, s2 = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s, "w", "a", 0, &pr), 0);
    assert_int_equal(subscribe(o, &s2, "w", "b", 0, &pr), 0);
    moq_track *ta = p.tracks[0], *tb = p.tracks[1];
    write_group_done(&p, ta, 0, 1, 10, 0);

    moq_route_withdraw(p.route);
    assert_int_equal(w.n, 2);
    expect_event(&w, 1, MOQ_ANNOUNCE_ENDED, "w", NULL, 0);
    assert_int_equal(moq_origin_lookup(o, S("w"), 0, NULL, NULL), MOQ_ERR_NOT_FOUND);
    rsub late = {0};
    assert_int_equal(subscribe(o, &late, "w", "a", 0, &pr), MOQ_ERR_NOT_FOUND);
    assert_int_equal(p.releases, 0);
    assert_int_equal(s.aborts + s2.aborts, 0);
    write_group_done(&p, ta, 1, 1, 10, 0);
    assert_int_equal(s.ngroups, 2);

    /* a new broadcast at the path is unrelated to what still flows */
    announce(o, &next, "w", (uint64_t[]){2}, 1);
    expect_event(&w, 2, MOQ_ANNOUNCE_ACTIVE, "w", (uint64_t[]){2}, 1);
    write_group_done(&p, ta, 2, 1, 10, 0);
    assert_int_equal(s.ngroups, 3);
    assert_int_equal(next.requests, 0);

    /* the producer ends one track; removing the route ends the other */
    assert_int_equal(moq_track_finish(ta, p.route, 3), 0);
    assert_true(s.finished);
    moq_route_unannounce(p.route);
    assert_int_equal(p.releases, 2);
    assert_int_equal(s.aborts, 0);
    assert_int_equal(s2.aborts, 1);
    assert_int_equal(s2.code, MOQ_REASON_DROPPED);
    assert_int_equal(w.n, 3);
    (void)tb;
    rsub_close(&s);
    rsub_close(&s2);
    moq_route_unannounce(next.route);
    moq_watch_close(w.watch);
    stats_zero(o);
    moq_origin_free(o);

    /* with another route of the publisher, the tracks move there */
    o = new_origin(100, 5 * SEC);
    prod a = {0}, b = {0};
    announce(o, &a, "m", (uint64_t[]){1}, 1);
    announce(o, &b, "m", (uint64_t[]){1, 2}, 2);
    rwatch wm = {0};
    watch(o, &wm, "", 0);
    rsub sm = {0};
    assert_int_equal(subscribe(o, &sm, "m", "t", 0, &pr), 0);
    assert_int_equal(a.requests, 1);
    moq_route_withdraw(a.route);
    expect_event(&wm, 1, MOQ_ANNOUNCE_RESTART, "m", (uint64_t[]){1, 2}, 2);
    assert_int_equal(a.releases, 1);
    assert_int_equal(b.requests, 1);
    /* announcing again revives it */
    announce(o, &a, "m", (uint64_t[]){1}, 1);
    expect_event(&wm, 2, MOQ_ANNOUNCE_RESTART, "m", (uint64_t[]){1}, 1);
    assert_int_equal(a.requests, 2);
    rsub_close(&sm);
    moq_route_unannounce(a.route);
    moq_route_unannounce(b.route);
    moq_watch_close(wm.watch);
    stats_zero(o);
    moq_origin_free(o);
}

/* Re-entrancy: callbacks that close watches or announce from inside notifications. */
static void reannounce_hook(rwatch *w, const moq_announce_event *ev)
{
    prod *p = w->user;
    if (ev->kind == MOQ_ANNOUNCE_ENDED && !p->route)
        announce(p->user, p, "again", (uint64_t[]){4}, 1);
}

static void watch_reentrancy(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod a = {0}, b = {0}, again = {0};
    announce(o, &a, "w/a", NULL, 0);
    announce(o, &b, "w/b", NULL, 0);

    /* Closing a watch during its initial set stops the rest of it. */
    rwatch closing = {.close_on_event = true};
    assert_int_equal(moq_origin_watch(o, S("w"), 0, &rwatch_ops, &closing, &closing.watch), 0);
    assert_int_equal(closing.n, 1);
    assert_null(closing.watch);

    /* Several watchers; the first closes itself on the next event, the others still hear it. */
    rwatch w1 = {0}, w2 = {0}, w3 = {0};
    watch(o, &w1, "w", 0);
    watch(o, &w2, "w", 0);
    watch(o, &w3, "", 0);
    w1.close_on_event = true;
    again.user = o;
    w2.user = &again;
    w2.hook = reannounce_hook;
    moq_route_unannounce(a.route);
    assert_int_equal(w1.n, 3);
    assert_null(w1.watch);
    assert_int_equal(w2.n, 3);
    expect_event(&w2, 2, MOQ_ANNOUNCE_ENDED, "w/a", NULL, 0);
    /* w3 hears both the end and the announce made from inside w2's callback, once each. */
    assert_int_equal(find_event(&w3, MOQ_ANNOUNCE_ENDED, "w/a") >= 0, true);
    assert_int_equal(find_event(&w3, MOQ_ANNOUNCE_ACTIVE, "again") >= 0, true);
    int actives = 0;
    for (int i = 0; i < w3.n; i++)
        if (strcmp(w3.ev[i].path, "again") == 0) actives++;
    assert_int_equal(actives, 1);

    moq_watch_close(w2.watch);
    moq_watch_close(w3.watch);
    moq_route_unannounce(b.route);
    moq_route_unannounce(again.route);
    stats_zero(o);
    moq_origin_free(o);
}

static void origin_free_releases_everything(void **state)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    assert_null(moq_origin_new(&cfg)); /* id 0 */
    cfg.id = 1ull << 62;
    assert_null(moq_origin_new(&cfg));

    size_t chunks = moq_chunk_live_count();
    moq_origin *o = new_origin(100, 5 * SEC);
    prod p = {0}, q = {0};
    announce(o, &p, "a/b", (uint64_t[]){1}, 1);
    announce(o, &q, "a/c", (uint64_t[]){2}, 1);
    rwatch w = {0};
    watch(o, &w, "a", 0);
    rsub s1 = {0}, s2 = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s1, "a/b", "t1", 0, &pr), 0);
    assert_int_equal(subscribe(o, &s2, "a/c", "t2", 0, &pr), 0);
    for (uint64_t i = 0; i < 5; i++)
        write_group_done(&p, p.last, i, 3, 1000, i * MS);
    moq_group *open = write_group(&q, q.last, 0, 2, 1000, 0, false);
    moq_group_unref(open);
    moq_route_lost(q.route, 0); /* leaves a lingering broadcast behind */
    assert_true(moq_chunk_live_count() > chunks);
    moq_origin_free(o); /* no callbacks, nothing left */
    assert_int_equal(moq_chunk_live_count(), chunks);
}

/* Routes bridged from another worker are invisible to consumers that pass
 * MOQ_EXCLUDE_BRIDGES (what a bridge re-exports), and visible to everyone else. */
static const moq_producer_ops bridge_ops = {prod_request, prod_update, prod_release, prod_fetch,
                                            true};

static void bridged_routes_excluded(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod bridged = {0}, local = {0};
    assert_int_equal(moq_origin_announce(o, S("b"), NULL, 0, &bridge_ops, &bridged, &bridged.route),
                     0);
    rwatch all = {0}, own = {0};
    watch(o, &all, "", 0);
    watch(o, &own, "", MOQ_EXCLUDE_BRIDGES);
    assert_int_equal(all.n, 1);
    assert_int_equal(own.n, 0);
    assert_int_equal(moq_origin_list(o, S(""), MOQ_EXCLUDE_BRIDGES, NULL, NULL), 0);
    rsub s = {0}, sb = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s, "b", "t", MOQ_EXCLUDE_BRIDGES, &pr), MOQ_ERR_NOT_FOUND);
    assert_int_equal(subscribe(o, &sb, "b", "t", 0, &pr), 0);
    assert_int_equal(bridged.requests, 1);

    /* A local publisher of the same path: only it serves the excluding subscriber. */
    announce(o, &local, "b", NULL, 0);
    assert_int_equal(own.n, 1);
    expect_event(&own, 0, MOQ_ANNOUNCE_ACTIVE, "b", NULL, 0);
    assert_int_equal(subscribe(o, &s, "b", "t", MOQ_EXCLUDE_BRIDGES, &pr), 0);
    assert_int_equal(local.requests, 1);
    moq_route_unannounce(local.route);
    assert_int_equal(s.aborts, 1);
    assert_int_equal(own.n, 2);
    expect_event(&own, 1, MOQ_ANNOUNCE_ENDED, "b", NULL, 0);
    rsub_close(&s);
    rsub_close(&sb);
    moq_watch_close(all.watch);
    moq_watch_close(own.watch);
    moq_route_unannounce(bridged.route);
    stats_zero(o);
    moq_origin_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(watch_initial_set_and_updates),
        cmocka_unit_test(path_prefix_rules),
        cmocka_unit_test(exclude_hop_and_own_id),
        cmocka_unit_test(bridged_routes_excluded),
        cmocka_unit_test(best_route_choice),
        cmocka_unit_test(linger_keeps_and_splices),
        cmocka_unit_test(linger_same_hops_is_silent_and_graceful_is_immediate),
        cmocka_unit_test(broadcast_events_for_the_log),
        cmocka_unit_test(failover_moves_tracks),
        cmocka_unit_test(unroutable_subscriber_is_failed),
        cmocka_unit_test(new_publisher_takes_over),
        cmocka_unit_test(standby_publisher_takes_over_when_current_leaves),
        cmocka_unit_test(unknown_publishers),
        cmocka_unit_test(withdrawn_route_keeps_serving),
        cmocka_unit_test(watch_reentrancy),
        cmocka_unit_test(origin_free_releases_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
