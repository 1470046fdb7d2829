/* Unit tests for src/relay/bridge: two worker origins, each with its own loop (both driven
 * from this thread), joined by bridges. A broadcast of worker A is announced on B; B's
 * subscribers get A's groups with the very same chunks (no copy); releases, aborts, ends,
 * fetches and shutdown with messages in flight cross as they should. */
#include <ev.h>

#include "relay/bridge.h"
#include "test_model_util.h"

#define ID 100

struct pair {
    struct ev_loop *la, *lb;
    moq_origin *a, *b;
    moq_bridge_hub *hub;
    moq_bridge *ba, *bb;
    _Atomic uint64_t announce_seq; /* shared by both origins, as by a relay's workers */
};

static moq_origin *worker_origin(struct pair *p)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = ID;
    cfg.announce_seq = &p->announce_seq;
    moq_origin *o = moq_origin_new(&cfg);
    assert_non_null(o);
    return o;
}

static void pair_new(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    p->la = ev_loop_new(EVFLAG_AUTO);
    p->lb = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(p->la);
    assert_non_null(p->lb);
    p->a = worker_origin(p);
    p->b = worker_origin(p);
    p->hub = moq_bridge_hub_new(2);
    assert_int_equal(moq_bridge_new(p->hub, 0, p->la, p->a, &p->ba), 0);
    assert_int_equal(moq_bridge_new(p->hub, 1, p->lb, p->b, &p->bb), 0);
    assert_int_equal(moq_bridge_start(p->ba), 0);
    assert_int_equal(moq_bridge_start(p->bb), 0);
}

/* Let both loops deliver what the bridges posted, back and forth. */
static void pump(struct pair *p)
{
    for (int i = 0; i < 8; i++) {
        ev_run(p->la, EVRUN_NOWAIT);
        ev_run(p->lb, EVRUN_NOWAIT);
    }
}

static void pair_free(struct pair *p)
{
    moq_bridge_stop(p->ba);
    moq_bridge_stop(p->bb);
    moq_bridge_free(p->ba);
    moq_bridge_free(p->bb);
    moq_bridge_hub_free(p->hub);
    moq_origin_free(p->a);
    moq_origin_free(p->b);
    ev_loop_destroy(p->la);
    ev_loop_destroy(p->lb);
}

static void frames_cross_without_copy(void **state)
{
    struct pair p;
    pair_new(&p);
    size_t chunks_before = moq_chunk_live_count();
    prod pub = {0};
    announce(p.a, &pub, "room/cam", (uint64_t[]){7}, 1);
    rwatch wb = {0};
    watch(p.b, &wb, "", 0);
    assert_int_equal(wb.n, 0);
    pump(&p);
    assert_int_equal(wb.n, 1);
    expect_event(&wb, 0, MOQ_ANNOUNCE_ACTIVE, "room/cam", (uint64_t[]){7}, 1);

    rsub s1 = {.keep_refs = true}, s2 = {.keep_refs = true};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(p.b, &s1, "room/cam", "video", 0, &pr), 0);
    assert_int_equal(subscribe(p.b, &s2, "room/cam", "video", 0, &pr), 0);
    pump(&p);
    assert_int_equal(pub.requests, 1); /* once for both of B's subscribers */

    moq_track_info info;
    moq_track_info_default(&info);
    info.priority = 3;
    assert_int_equal(moq_track_set_info(pub.last, pub.route, &info), 0);
    moq_group *g = write_group(&pub, pub.last, 5, 3, 100, 1, false);
    pump(&p);
    assert_int_equal(s1.infos, 1);
    assert_int_equal(s1.info.priority, 3);
    assert_int_equal(s1.ngroups, 1);
    assert_int_equal(s2.ngroups, 1);
    assert_int_equal(s1.seqs[0], 5);
    moq_group *gb = s1.groups[0];
    assert_int_equal(moq_group_frame_count(gb), 3);
    for (uint64_t i = 0; i < 3; i++)
        assert_ptr_equal(moq_group_frame(gb, i)->chunk, moq_group_frame(g, i)->chunk);
    assert_int_equal(moq_chunk_live_count(), chunks_before + 3);
    moq_frame f = make_frame(5, 3, 100);
    assert_int_equal(moq_group_append(g, &f, 2), 0);
    assert_int_equal(moq_group_finish(g, 2), 0);
    moq_group_unref(g);
    pump(&p);
    assert_int_equal(moq_group_frame_count(gb), 4);
    assert_int_equal(moq_group_state(gb, NULL), MOQ_GROUP_FINISHED);
    assert_int_equal(moq_chunk_live_count(), chunks_before + 4);

    /* The last subscriber on B leaving releases A's publisher. */
    rsub_close(&s1);
    pump(&p);
    assert_int_equal(pub.releases, 0);
    rsub_close(&s2);
    pump(&p);
    assert_int_equal(pub.releases, 1);

    /* The publisher leaving ends the broadcast on B. */
    moq_route_unannounce(pub.route);
    pump(&p);
    assert_int_equal(wb.n, 2);
    expect_event(&wb, 1, MOQ_ANNOUNCE_ENDED, "room/cam", NULL, 0);
    moq_watch_close(wb.watch);
    pair_free(&p);
    assert_int_equal(moq_chunk_live_count(), chunks_before);
}

/* Only a worker's own routes are carried: B does not send A's broadcast back to A. */
static void no_echo(void **state)
{
    struct pair p;
    pair_new(&p);
    prod pub = {0};
    announce(p.a, &pub, "x", NULL, 0);
    rwatch wa = {0};
    watch(p.a, &wa, "", 0);
    pump(&p);
    assert_int_equal(wa.n, 1); /* the original only */
    moq_origin_stats st;
    moq_origin_stats_get(p.a, &st);
    assert_int_equal(st.routes, 1);
    moq_origin_stats_get(p.b, &st);
    assert_int_equal(st.routes, 1);
    moq_watch_close(wa.watch);
    moq_route_unannounce(pub.route);
    pump(&p);
    moq_origin_stats_get(p.b, &st);
    assert_int_equal(st.broadcasts, 0);
    pair_free(&p);
}

static void abort_and_finish_cross(void **state)
{
    struct pair p;
    pair_new(&p);
    prod pub = {.refuse = true, .refuse_code = 13};
    announce(p.a, &pub, "b", NULL, 0);
    pump(&p);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(p.b, &s, "b", "t", 0, &pr), 0);
    pump(&p);
    assert_int_equal(s.aborts, 1);
    assert_int_equal(s.code, 13);
    rsub_close(&s);

    pub.refuse = false;
    rsub s2 = {0};
    assert_int_equal(subscribe(p.b, &s2, "b", "t", 0, &pr), 0);
    pump(&p);
    write_group_done(&pub, pub.last, 0, 1, 20, 1);
    assert_int_equal(moq_track_finish(pub.last, pub.route, 1), 0);
    pump(&p);
    assert_int_equal(s2.ngroups, 1);
    assert_true(s2.finished);
    assert_int_equal(s2.final_seq, 1);
    rsub_close(&s2);
    moq_route_unannounce(pub.route);
    pump(&p);
    pair_free(&p);
}

/* A publisher that stops announcing keeps serving what is subscribed until it ends it, on
 * every worker: the tail written after the unannounce still reaches B's subscriber. */
static void withdrawn_tracks_keep_flowing(void **state)
{
    struct pair p;
    pair_new(&p);
    prod pub = {0};
    announce(p.a, &pub, "w", NULL, 0);
    pump(&p);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(p.b, &s, "w", "t", 0, &pr), 0);
    pump(&p);
    assert_int_equal(pub.requests, 1);
    moq_track *t = pub.last;
    moq_route_withdraw(pub.route);
    pump(&p);
    moq_origin_stats st;
    moq_origin_stats_get(p.b, &st);
    assert_int_equal(st.routes, 1); /* withdrawn, still serving */
    write_group_done(&pub, t, 3, 2, 20, 1);
    assert_int_equal(moq_track_finish(t, pub.route, 4), 0);
    pump(&p);
    assert_int_equal(s.aborts, 0);
    assert_int_equal(s.ngroups, 1);
    assert_int_equal(s.seqs[0], 3);
    assert_true(s.finished);
    rsub_close(&s);
    pump(&p);
    moq_origin_stats_get(p.b, &st);
    assert_int_equal(st.routes, 0); /* gone with its last track */
    assert_int_equal(st.broadcasts, 0);
    moq_route_unannounce(pub.route);
    pump(&p);
    pair_free(&p);
}

/* A group B does not hold is fetched from A; A's cache answers. */
static void fetch_crosses(void **state)
{
    struct pair p;
    pair_new(&p);
    prod pub = {0};
    announce(p.a, &pub, "f", NULL, 0);
    pump(&p);
    rsub keep = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(p.a, &keep, "f", "t", 0, &pr), 0);
    write_group_done(&pub, pub.last, 9, 2, 50, 1);
    moq_group *g = NULL;
    assert_int_equal(moq_origin_fetch(p.b, S("f"), S("t"), 0, 9, 0, true, 1, &g), 0);
    assert_int_equal(moq_group_state(g, NULL), MOQ_GROUP_OPEN);
    pump(&p);
    assert_int_equal(moq_group_state(g, NULL), MOQ_GROUP_FINISHED);
    assert_int_equal(moq_group_frame_count(g), 2);
    moq_group_unref(g);
    /* A group A's publisher refuses: the fetch fails on B too. */
    pub.fetch_refuse = true;
    assert_int_equal(moq_origin_fetch(p.b, S("f"), S("t"), 0, 42, 0, true, 1, &g), 0);
    pump(&p);
    uint64_t code = 0;
    assert_int_equal(moq_group_state(g, &code), MOQ_GROUP_ABORTED);
    assert_int_equal(code, MOQ_REASON_NOT_FOUND);
    assert_int_equal(pub.fetches, 1);
    moq_group_unref(g);
    rsub_close(&keep);
    moq_route_unannounce(pub.route);
    pump(&p);
    pair_free(&p);
}

/* The newest publisher of a path wins on every worker at once, whichever workers it and
 * the publishers it displaced (still connected, as a killed one is until its session times
 * out) are on: each worker's watcher sees the old broadcast end and the new one announced,
 * once, and a subscriber on either worker reaches the newest publisher. */
#define PUBLISHERS 4

static void takeover_placed(unsigned placement)
{
    struct pair p;
    pair_new(&p);
    moq_origin *at[2] = {p.a, p.b};
    rwatch w[2] = {{0}, {0}};
    watch(p.a, &w[0], "", 0);
    watch(p.b, &w[1], "", 0);
    prod pub[PUBLISHERS] = {{0}};
    for (unsigned k = 0; k < PUBLISHERS; k++) {
        uint64_t hop = 1000 + k;
        int seen[2] = {w[0].n, w[1].n};
        announce(at[placement >> k & 1], &pub[k], "cam", &hop, 1);
        pump(&p);
        for (int i = 0; i < 2; i++) {
            int n = w[i].n - seen[i];
            if (n != (k ? 2 : 1))
                fail_msg("placement %u, publisher %u: worker %d saw %d events", placement, k, i, n);
            if (k) expect_event(&w[i], seen[i], MOQ_ANNOUNCE_ENDED, "cam", NULL, 0);
            expect_event(&w[i], w[i].n - 1, MOQ_ANNOUNCE_ACTIVE, "cam", &hop, 1);
        }
        int requests = pub[k].requests;
        for (int i = 0; i < 2; i++) {
            rsub s = {0};
            moq_sub_prefs pr = prefs_default();
            assert_int_equal(subscribe(at[i], &s, "cam", "t", 0, &pr), 0);
            pump(&p);
            if (pub[k].requests != requests + 1)
                fail_msg("placement %u, publisher %u: a subscriber on worker %d did not reach it",
                         placement, k, i);
            requests = pub[k].requests;
            rsub_close(&s);
            pump(&p);
        }
    }
    for (int i = 0; i < 2; i++)
        moq_watch_close(w[i].watch);
    for (unsigned k = 0; k < PUBLISHERS; k++)
        moq_route_unannounce(pub[k].route);
    pump(&p);
    pair_free(&p);
}

static void takeover_on_any_worker(void **state)
{
    for (unsigned placement = 0; placement < 1u << PUBLISHERS; placement++)
        takeover_placed(placement);
}

/* Three publishers of a path, placed on the workers every way; the newest unannounces. The
 * newest remaining one, the second, carries the path on both workers, as on one origin. */
static void standby_order_placed(unsigned placement)
{
    struct pair p;
    pair_new(&p);
    moq_origin *at[2] = {p.a, p.b};
    prod pub[3] = {{0}};
    for (unsigned k = 0; k < 3; k++) {
        uint64_t hop = 2000 + k;
        announce(at[placement >> k & 1], &pub[k], "cam", &hop, 1);
        pump(&p);
    }
    moq_route_unannounce(pub[2].route);
    pump(&p);
    for (int i = 0; i < 2; i++) {
        int before[2] = {pub[0].requests, pub[1].requests};
        rsub s = {0};
        moq_sub_prefs pr = prefs_default();
        assert_int_equal(subscribe(at[i], &s, "cam", "t", 0, &pr), 0);
        pump(&p);
        if (pub[1].requests != before[1] + 1 || pub[0].requests != before[0])
            fail_msg("placement %u: a subscriber on worker %d did not reach the second publisher",
                     placement, i);
        rsub_close(&s);
        pump(&p);
    }
    for (unsigned k = 0; k < 2; k++)
        moq_route_unannounce(pub[k].route);
    pump(&p);
    pair_free(&p);
}

static void newest_remaining_publisher_wins_on_every_worker(void **state)
{
    for (unsigned placement = 0; placement < 8; placement++)
        standby_order_placed(placement);
}

/* Stopping with subscriptions, groups and messages in flight frees everything. */
static void stop_in_flight(void **state)
{
    size_t chunks_before = moq_chunk_live_count();
    struct pair p;
    pair_new(&p);
    prod pub = {0};
    announce(p.a, &pub, "s", NULL, 0);
    pump(&p);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(p.b, &s, "s", "t", 0, &pr), 0);
    pump(&p);
    moq_group *g = write_group(&pub, pub.last, 1, 2, 10, 1, false);
    /* not pumped: the frames wait in B's queue */
    rsub_close(&s);
    moq_bridge_stop(p.ba);
    moq_bridge_stop(p.bb);
    moq_group_unref(g);
    moq_route_unannounce(pub.route);
    pair_free(&p);
    assert_int_equal(moq_chunk_live_count(), chunks_before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_cross_without_copy),
        cmocka_unit_test(no_echo),
        cmocka_unit_test(abort_and_finish_cross),
        cmocka_unit_test(withdrawn_tracks_keep_flowing),
        cmocka_unit_test(fetch_crosses),
        cmocka_unit_test(stop_in_flight),
        cmocka_unit_test(takeover_on_any_worker),
        cmocka_unit_test(newest_remaining_publisher_wins_on_every_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
