/* Unit tests for src/model: tracks, subscriptions, fan-out, replay and fetch. */
#include "test_model_util.h"

static void subscribe_dedup_and_aggregate(void **state)
{
    enum { N = 50 };
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "bc", NULL, 0);
    static rsub subs[N];
    memset(subs, 0, sizeof(subs));
    for (int i = 0; i < N; i++) {
        moq_sub_prefs pr = prefs_default();
        pr.priority = (uint8_t)(i % 10);
        pr.ordered = i != 0;
        pr.max_latency_ms = 100 * (uint64_t)i;
        if (i >= 10 && i < 20) {
            pr.has_start = true;
            pr.start_group = 100 + (uint64_t)i;
        }
        if (i != 0) {
            pr.has_end = true;
            pr.end_group = 1000 + (uint64_t)i;
        }
        assert_int_equal(subscribe(o, &subs[i], "bc", "video", 0, &pr), 0);
    }
    assert_int_equal(p.requests, 1);
    assert_int_equal(p.ntracks, 1);
    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.subscriptions, N);
    assert_int_equal(st.tracks, 1);
    const moq_sub_prefs *agg = moq_track_prefs(p.last);
    assert_int_equal(agg->priority, 9);
    assert_false(agg->ordered);
    assert_int_equal(agg->max_latency_ms, 4900);
    assert_true(agg->has_start);
    assert_int_equal(agg->start_group, 110);
    assert_false(agg->has_end);
    assert_false(agg->info_only);
    assert_memory_equal(&p.prefs, agg, sizeof(*agg));

    /* The publisher's max latency clamps the aggregate. */
    moq_track_info info;
    moq_track_info_default(&info);
    info.max_latency_ms = 3000;
    int updates = p.updates;
    assert_int_equal(moq_track_set_info(p.last, p.route, &info), 0);
    assert_int_equal(p.updates, updates + 1);
    assert_int_equal(p.prefs.max_latency_ms, 3000);
    for (int i = 0; i < N; i++)
        assert_int_equal(subs[i].infos, 1);

    /* The unordered, unbounded subscriber leaves: ordered and a bounded end. */
    updates = p.updates;
    rsub_close(&subs[0]);
    assert_int_equal(p.updates, updates + 1);
    assert_true(p.prefs.ordered);
    assert_true(p.prefs.has_end);
    assert_int_equal(p.prefs.end_group, 1049);
    /* A subscriber whose leaving changes nothing causes no update. */
    updates = p.updates;
    rsub_close(&subs[25]);
    assert_int_equal(p.updates, updates);
    /* A preference change does. */
    moq_sub_prefs pr = *moq_subscription_prefs(subs[30].sub);
    pr.priority = 200;
    assert_int_equal(moq_subscription_update(subs[30].sub, &pr), 0);
    assert_int_equal(p.prefs.priority, 200);

    for (int i = 1; i < N - 1; i++)
        rsub_close(&subs[i]);
    assert_int_equal(p.releases, 0);
    rsub_close(&subs[N - 1]);
    assert_int_equal(p.releases, 1);
    assert_int_equal(p.ntracks, 0);
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.subscriptions, 0);
    assert_int_equal(st.tracks, 0);

    /* Subscribing again asks again. */
    rsub again = {0};
    assert_int_equal(subscribe(o, &again, "bc", "video", 0, &pr), 0);
    assert_int_equal(p.requests, 2);
    /* A different name is a different track. */
    rsub other = {0};
    assert_int_equal(subscribe(o, &other, "bc", "audio", 0, &pr), 0);
    assert_int_equal(p.requests, 3);
    rsub_close(&again);
    rsub_close(&other);
    assert_int_equal(p.releases, 3);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void unknown_broadcast_not_found(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "a/b", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s, "a", "t", 0, &pr), MOQ_ERR_NOT_FOUND);
    assert_int_equal(subscribe(o, &s, "a/b/c", "t", 0, &pr), MOQ_ERR_NOT_FOUND);
    assert_int_equal(subscribe(o, &s, "zzz", "t", 0, &pr), MOQ_ERR_NOT_FOUND);
    assert_null(s.sub);
    assert_int_equal(moq_origin_subscribe(o, S("a/b"), S("t"), 0, NULL, &rsub_ops, &s, &s.sub),
                     MOQ_ERR_INVALID);
    moq_group *g = NULL;
    assert_int_equal(moq_origin_fetch(o, S("nope"), S("t"), 0, 0, 0, true, 0, &g),
                     MOQ_ERR_NOT_FOUND);
    assert_int_equal(p.requests, 0);
    moq_route_unannounce(p.route);
    assert_int_equal(subscribe(o, &s, "a/b", "t", 0, &pr), MOQ_ERR_NOT_FOUND);
    moq_origin_free(o);
}

static void producer_refusal_propagates(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {.refuse = true, .refuse_code = 13};
    announce(o, &p, "r", NULL, 0);
    rsub a = {0}, b = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &a, "r", "missing", 0, &pr), 0);
    assert_int_equal(a.aborts, 1);
    assert_int_equal(a.code, 13);
    assert_int_equal(p.requests, 1);
    assert_int_equal(p.releases, 1);
    /* The verdict is not cached: the next subscriber asks again. */
    assert_int_equal(subscribe(o, &b, "r", "missing", 0, &pr), 0);
    assert_int_equal(p.requests, 2);
    assert_int_equal(b.aborts, 1);
    rsub_close(&a);
    rsub_close(&b);

    /* A failure after subscribers attached reaches all of them, with the code. */
    p.refuse = false;
    rsub s[3] = {{0}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(subscribe(o, &s[i], "r", "t", 0, &pr), 0);
    moq_track *t = p.last;
    moq_group *open = write_group(&p, t, 0, 1, 10, 0, false);
    rfol f;
    follow(&f, open);
    assert_int_equal(moq_track_abort(t, p.route, 77), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].aborts, 1);
        assert_int_equal(s[i].code, 77);
        assert_null(moq_subscription_info(s[i].sub));
    }
    assert_int_equal(f.ends, 1);
    assert_int_equal(f.code, 77);
    assert_int_equal(p.releases, 3);
    assert_int_equal(p.ntracks, 0);
    rfol_close(&f);
    moq_group_unref(open);
    for (int i = 0; i < 3; i++)
        rsub_close(&s[i]);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void late_joiner_starts_at_latest(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "l", NULL, 0);
    rsub first = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &first, "l", "t", 0, &pr), 0);
    for (uint64_t i = 0; i < 4; i++)
        write_group_done(&p, p.last, i, 2, 10, i * MS);
    /* The latest group is in progress with one frame. */
    moq_group *open = write_group(&p, p.last, 4, 1, 10, 4 * MS, false);
    assert_int_equal(first.ngroups, 5);

    rsub late = {.keep_refs = true};
    assert_int_equal(subscribe(o, &late, "l", "t", 0, &pr), 0);
    assert_int_equal(late.ngroups, 1);
    assert_int_equal(late.seqs[0], 4);
    assert_ptr_equal(late.groups[0], open);
    uint64_t first_group = 0;
    assert_true(moq_subscription_first_group(late.sub, &first_group));
    assert_int_equal(first_group, 4);
    rfol f;
    follow(&f, late.groups[0]); /* from its first frame */
    assert_int_equal(f.frames_seen, 1);
    moq_frame fr = make_frame(4, 1, 10);
    assert_int_equal(moq_group_append(open, &fr, 5 * MS), 0);
    assert_int_equal(f.frames_seen, 2);
    assert_int_equal(moq_group_finish(open, 5 * MS), 0);
    assert_int_equal(f.ends, 1);
    write_group_done(&p, p.last, 5, 1, 10, 6 * MS);
    assert_int_equal(late.ngroups, 2);
    assert_int_equal(late.seqs[1], 5);
    assert_int_equal(p.requests, 1);

    /* A subscriber of an empty track gets every group the producer delivers, in arrival
     * order: the upstream may send its first groups newest first, and the older ones that
     * come after are still the subscription's (none is skipped as older than the first). */
    rsub e = {0};
    assert_int_equal(subscribe(o, &e, "l", "empty", 0, &pr), 0);
    assert_false(moq_subscription_first_group(e.sub, &first_group));
    moq_track *t2 = p.last;
    write_group_done(&p, t2, 9, 1, 10, 7 * MS);
    write_group_done(&p, t2, 8, 1, 10, 7 * MS);
    write_group_done(&p, t2, 10, 1, 10, 7 * MS);
    assert_int_equal(e.ngroups, 3);
    assert_int_equal(e.seqs[0], 9);
    assert_int_equal(e.seqs[1], 8);
    assert_int_equal(e.seqs[2], 10);
    /* one joining now starts at the latest, and a straggler below it is not its */
    rsub e2 = {0};
    assert_int_equal(subscribe(o, &e2, "l", "empty", 0, &pr), 0);
    assert_int_equal(e2.ngroups, 1);
    assert_int_equal(e2.seqs[0], 10);
    assert_true(moq_subscription_first_group(e2.sub, &first_group));
    assert_int_equal(first_group, 10);
    assert_false(moq_subscription_first_group(e.sub, &first_group)); /* still every group */
    write_group_done(&p, t2, 7, 1, 10, 8 * MS);
    assert_int_equal(e2.ngroups, 1);
    assert_int_equal(e.ngroups, 4);
    assert_int_equal(e.seqs[3], 7);

    rfol_close(&f);
    moq_group_unref(open);
    rsub_close(&first);
    rsub_close(&late);
    rsub_close(&e);
    rsub_close(&e2);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void explicit_start_replays_in_order(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "e", NULL, 0);
    rsub keep = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &keep, "e", "t", 0, &pr), 0);
    const uint64_t order[] = {5, 3, 7, 4, 1};
    for (int i = 0; i < 5; i++)
        write_group_done(&p, p.last, order[i], 1, 10, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(keep.seqs[i], order[i]); /* arrival order */

    rsub from4 = {0};
    moq_sub_prefs p4 = prefs_from(4);
    assert_int_equal(subscribe(o, &from4, "e", "t", 0, &p4), 0);
    assert_int_equal(from4.ngroups, 3);
    assert_int_equal(from4.seqs[0], 4);
    uint64_t first_group = 0;
    assert_true(moq_subscription_first_group(from4.sub, &first_group));
    assert_int_equal(first_group, 4);
    assert_int_equal(from4.seqs[1], 5);
    assert_int_equal(from4.seqs[2], 7);
    write_group_done(&p, p.last, 6, 1, 10, 0); /* live, late but in range */
    write_group_done(&p, p.last, 8, 1, 10, 0);
    assert_int_equal(from4.ngroups, 5);
    assert_int_equal(from4.seqs[3], 6);
    assert_int_equal(from4.seqs[4], 8);

    /* A bounded range, then widening it replays what became in range. */
    rsub win = {0};
    moq_sub_prefs pw = prefs_from(3);
    pw.has_end = true;
    pw.end_group = 4;
    assert_int_equal(subscribe(o, &win, "e", "t", 0, &pw), 0);
    assert_int_equal(win.ngroups, 2);
    write_group_done(&p, p.last, 9, 1, 10, 0);
    assert_int_equal(win.ngroups, 2);
    pw.end_group = 6;
    pw.start_group = 1;
    assert_int_equal(moq_subscription_update(win.sub, &pw), 0);
    assert_int_equal(win.ngroups, 5);
    assert_int_equal(win.seqs[2], 1);
    assert_int_equal(win.seqs[3], 5);
    assert_int_equal(win.seqs[4], 6);
    pw.has_end = false;
    assert_int_equal(moq_subscription_update(win.sub, &pw), 0);
    assert_int_equal(win.ngroups, 8);
    assert_int_equal(win.seqs[5], 7);
    assert_int_equal(win.seqs[7], 9);
    assert_int_equal(p.requests, 1);

    rsub_close(&keep);
    rsub_close(&from4);
    rsub_close(&win);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void out_of_order_parallel_groups(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "o", NULL, 0);
    rsub s = {.keep_refs = true};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "o", "t", 0, &pr), 0);
    const uint64_t seqs[] = {3, 1, 2, 0};
    moq_group *g[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(moq_track_begin_group(p.last, p.route, seqs[i], 0, &g[i]), 0);
    assert_int_equal(s.ngroups, 4);
    rfol f[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.seqs[i], seqs[i]);
        follow(&f[i], s.groups[i]);
    }
    for (uint64_t k = 0; k < 3; k++)
        for (int i = 3; i >= 0; i--) {
            moq_frame fr = make_frame(seqs[i], k, 20);
            assert_int_equal(moq_group_append(g[i], &fr, 0), 0);
        }
    assert_int_equal(moq_group_finish(g[2], 0), 0);
    assert_int_equal(moq_group_abort(g[1], 99), 0);
    assert_int_equal(moq_group_finish(g[0], 0), 0);
    assert_int_equal(moq_group_finish(g[3], 0), 0);
    assert_int_equal(moq_group_finish(g[3], 0), MOQ_ERR_CLOSED);
    assert_int_equal(moq_group_abort(g[3], 1), MOQ_ERR_CLOSED);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(f[i].frames_seen, 3);
        assert_int_equal(f[i].ends, 1);
        assert_int_equal(f[i].state, i == 1 ? MOQ_GROUP_ABORTED : MOQ_GROUP_FINISHED);
        rfol_close(&f[i]);
        moq_group_unref(g[i]);
    }
    assert_int_equal(f[1].code, 99);
    /* The aborted group left the cache, so a fetch misses and a new one may replace it. */
    moq_group *miss = NULL;
    assert_int_equal(moq_origin_fetch(o, S("o"), S("t"), 0, 1, 0, false, 0, &miss),
                     MOQ_ERR_NOT_FOUND);
    moq_group *again = NULL;
    assert_int_equal(moq_track_begin_group(p.last, p.route, 1, 0, &again), 0);
    moq_group_unref(again);
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void frames_are_shared_not_copied(void **state)
{
    enum { N = 10 };
    size_t base = moq_chunk_live_count();
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "z", NULL, 0);
    rsub s[N];
    memset(s, 0, sizeof(s));
    moq_sub_prefs pr = prefs_from(0);
    for (int i = 0; i < N; i++) {
        s[i].keep_refs = true;
        assert_int_equal(subscribe(o, &s[i], "z", "t", 0, &pr), 0);
    }
    moq_group *g = write_group(&p, p.last, 0, 3, 1000, 0, true);
    assert_int_equal(moq_chunk_live_count(), base + 3); /* one chunk per frame, total */
    const moq_frame *f0 = moq_group_frame(g, 0);
    assert_non_null(f0);
    assert_int_equal(atomic_load(&f0->chunk->refs), 1); /* held once, by the group */
    assert_memory_equal(f0->chunk->data + f0->hdr_off[1], "HDRB", 4);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(s[i].groups[0], g);
        assert_ptr_equal(moq_group_frame(s[i].groups[0], 0)->chunk, f0->chunk);
    }
    /* Streams that want to keep bytes past the group take chunk references. */
    moq_chunk *held = moq_chunk_ref(f0->chunk);
    assert_int_equal(atomic_load(&held->refs), 2);
    for (int i = 0; i < N; i++)
        rsub_close(&s[i]);
    moq_group_unref(g);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
    assert_int_equal(moq_chunk_live_count(), base + 1);
    assert_int_equal(atomic_load(&held->refs), 1);
    moq_chunk_unref(held);
    assert_int_equal(moq_chunk_live_count(), base);
}

static void fetch_hit_miss_coalesce(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod p = {0};
    announce(o, &p, "f", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "f", "t", 0, &pr), 0);
    write_group_done(&p, p.last, 0, 2, 10, 0);
    write_group_done(&p, p.last, 1, 2, 10, 0);

    moq_group *g = NULL;
    assert_int_equal(moq_origin_fetch(o, S("f"), S("t"), 0, 0, 0, false, 1 * SEC, &g), 0);
    assert_int_equal(moq_group_sequence(g), 0);
    assert_int_equal(moq_group_state(g, NULL), MOQ_GROUP_FINISHED);
    assert_int_equal(moq_group_frame_count(g), 2);
    moq_group_unref(g);
    assert_int_equal(p.fetches, 0);

    /* Miss without forwarding. */
    assert_int_equal(moq_origin_fetch(o, S("f"), S("t"), 0, 7, 0, false, 0, &g), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_origin_fetch(o, S("f"), S("nope"), 0, 0, 0, false, 0, &g),
                     MOQ_ERR_NOT_FOUND);

    /* Miss with forwarding: one upstream fetch for concurrent requests. */
    moq_group *a = NULL, *b = NULL;
    assert_int_equal(moq_origin_fetch(o, S("f"), S("old"), 0, 3, 5, true, 0, &a), 0);
    assert_int_equal(p.fetches, 1);
    assert_ptr_equal(p.fetched, a);
    assert_int_equal(moq_group_state(a, NULL), MOQ_GROUP_OPEN);
    assert_int_equal(moq_origin_fetch(o, S("f"), S("old"), 0, 3, 5, true, 0, &b), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(p.fetches, 1);
    rfol fa, fb;
    follow(&fa, a);
    follow(&fb, b);
    moq_frame fr = make_frame(3, 0, 10);
    assert_int_equal(moq_group_append(p.fetched, &fr, 0), 0);
    assert_int_equal(moq_group_finish(p.fetched, 0), 0);
    assert_int_equal(fa.frames_seen, 1);
    assert_int_equal(fb.ends, 1);
    rfol_close(&fa);
    rfol_close(&fb);
    moq_group_unref(a);
    moq_group_unref(b);
    moq_group_unref(p.fetched);
    p.fetched = NULL;
    /* Nobody subscribes to "old": its track went away with the fetch, so this asks again. */
    assert_int_equal(moq_origin_fetch(o, S("f"), S("old"), 0, 3, 5, true, 0, &a), 0);
    assert_int_equal(p.fetches, 2);
    moq_group_abort(p.fetched, 13);
    moq_group_unref(p.fetched);
    p.fetched = NULL;
    assert_int_equal(moq_group_state(a, NULL), MOQ_GROUP_ABORTED);
    moq_group_unref(a);

    /* A fetch on a subscribed track is served by sequence, not delivered to subscribers. */
    int before = s.ngroups;
    assert_int_equal(moq_origin_fetch(o, S("f"), S("t"), 0, 0xffff, 5, true, 0, &a), 0);
    assert_int_equal(s.ngroups, before);
    moq_group_finish(p.fetched, 0);
    moq_group_unref(p.fetched);
    p.fetched = NULL;
    moq_group_unref(a);

    /* Refusal. */
    p.fetch_refuse = true;
    assert_int_equal(moq_origin_fetch(o, S("f"), S("t"), 0, 50, 0, true, 0, &a), MOQ_ERR_NOT_FOUND);
    assert_null(a);

    /* During linger the cache still answers, nothing is forwarded. */
    moq_route_lost(p.route, 0);
    assert_int_equal(moq_origin_fetch(o, S("f"), S("t"), 0, 1, 0, true, 0, &a), 0);
    moq_group_unref(a);
    assert_int_equal(moq_origin_fetch(o, S("f"), S("t"), 0, 60, 0, true, 0, &a), MOQ_ERR_NOT_FOUND);
    rsub_close(&s);
    moq_origin_free(o);
}

static void close_from_callbacks(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "c", NULL, 0);
    moq_sub_prefs pr = prefs_from(0);
    rsub a = {.close_on_group = true}, b = {0}, c = {0}, d = {0};
    b.close_other_on_group = true;
    b.other = &c;
    assert_int_equal(subscribe(o, &a, "c", "t", 0, &pr), 0);
    assert_int_equal(subscribe(o, &b, "c", "t", 0, &pr), 0);
    assert_int_equal(subscribe(o, &c, "c", "t", 0, &pr), 0);
    assert_int_equal(subscribe(o, &d, "c", "t", 0, &pr), 0);
    write_group_done(&p, p.last, 0, 1, 10, 0);
    assert_int_equal(a.ngroups, 1);
    assert_null(a.sub);
    assert_int_equal(b.ngroups, 1);
    assert_int_equal(c.ngroups, 0); /* closed by b before its turn */
    assert_null(c.sub);
    assert_int_equal(d.ngroups, 1);
    write_group_done(&p, p.last, 1, 1, 10, 0);
    assert_int_equal(a.ngroups, 1);
    assert_int_equal(b.ngroups, 2);
    assert_int_equal(d.ngroups, 2);

    /* The last two leave from inside callbacks: the producer is released exactly once. */
    b.close_on_group = true;
    d.close_on_group = true;
    write_group_done(&p, p.last, 2, 1, 10, 0);
    assert_null(b.sub);
    assert_null(d.sub);
    assert_int_equal(p.releases, 1);
    assert_int_equal(p.ntracks, 0);
    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.subscriptions, 0);
    assert_int_equal(st.tracks, 0);

    /* Closing during the replay inside moq_origin_subscribe stops the replay. */
    rsub keep = {0};
    assert_int_equal(subscribe(o, &keep, "c", "t", 0, &pr), 0);
    for (uint64_t i = 0; i < 5; i++)
        write_group_done(&p, p.last, i, 1, 10, 0);
    rsub quick = {.close_on_group = true};
    assert_int_equal(subscribe(o, &quick, "c", "t", 0, &pr), 0);
    assert_int_equal(quick.ngroups, 1);
    rsub_close(&keep);
    assert_int_equal(p.releases, 2);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

/* A subscriber that subscribes someone else from inside on_group. */
static rsub spawned;
static void spawn_hook(rsub *s, moq_group *g)
{
    if (spawned.sub || moq_group_sequence(g) != 1) return;
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(s->user, &spawned, "c", "t", 0, &pr), 0);
}

static void subscribe_from_callback_sees_each_group_once(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "c", NULL, 0);
    memset(&spawned, 0, sizeof(spawned));
    rsub host = {.hook_group = spawn_hook};
    host.user = o;
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &host, "c", "t", 0, &pr), 0);
    write_group_done(&p, p.last, 0, 1, 10, 0);
    write_group_done(&p, p.last, 1, 1, 10, 0); /* spawns during this notification */
    write_group_done(&p, p.last, 2, 1, 10, 0);
    assert_int_equal(spawned.ngroups, 3); /* 0 and 1 by replay, 2 live; 1 not twice */
    assert_int_equal(spawned.seqs[0], 0);
    assert_int_equal(spawned.seqs[1], 1);
    assert_int_equal(spawned.seqs[2], 2);
    assert_int_equal(p.requests, 1);
    rsub_close(&spawned);
    rsub_close(&host);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

/* A subscriber whose callback makes the producer write into the same track: a nested
 * notification over the same subscriber list while the outer one is still walking it. */
static void nested_write_hook(rsub *s, moq_group *g)
{
    prod *p = s->user;
    if (moq_group_sequence(g) != 0) return;
    write_group_done(p, p->last, 100, 1, 10, 0);
}

static void nested_notifications(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "n", NULL, 0);
    rsub s[4];
    memset(s, 0, sizeof(s));
    moq_sub_prefs pr = prefs_from(0);
    s[1].hook_group = nested_write_hook;
    s[1].user = &p;
    for (int i = 0; i < 4; i++)
        assert_int_equal(subscribe(o, &s[i], "n", "t", 0, &pr), 0);
    write_group_done(&p, p.last, 0, 1, 10, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s[i].ngroups, 2); /* each group exactly once */
        assert_true((s[i].seqs[0] == 0 && s[i].seqs[1] == 100) ||
                    (s[i].seqs[0] == 100 && s[i].seqs[1] == 0));
    }
    assert_int_equal(s[0].seqs[0], 0);
    assert_int_equal(s[3].seqs[0], 100); /* the nested one reached it first */
    for (int i = 0; i < 4; i++)
        rsub_close(&s[i]);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

/* Followers that close each other, or follow again, from inside their callbacks. */
typedef struct fol_pair {
    rfol a, b, c;
    rfol spawned;
    bool spawn_on_end;
} fol_pair;

static fol_pair pair;

static void pair_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    rfol *r = ctx;
    rfol_frames(ctx, f, g, count);
    if (r == &pair.a && pair.b.f) { /* a closes b before b's turn */
        moq_follower_close(pair.b.f);
        pair.b.f = NULL;
    }
}

static const moq_follower_ops pair_ops_frames = {pair_frames, rfol_end};

static void pair_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    rfol *r = ctx;
    r->ends++;
    r->state = state;
    if (r == &pair.a && pair.spawn_on_end) { /* follows again during the end notification */
        memset(&pair.spawned, 0, sizeof(pair.spawned));
        pair.spawned.f = moq_group_follow(g, &rfol_ops, &pair.spawned);
    }
    moq_follower_close(r->f); /* closing itself from its own callback */
    r->f = NULL;
}

static const moq_follower_ops pair_ops_end = {rfol_frames, pair_end};

static void follower_reentrancy(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "f", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "f", "t", 0, &pr), 0);
    moq_group *g = write_group(&p, p.last, 0, 0, 10, 0, false);
    memset(&pair, 0, sizeof(pair));
    pair.a.f = moq_group_follow(g, &pair_ops_frames, &pair.a);
    pair.b.f = moq_group_follow(g, &pair_ops_frames, &pair.b);
    pair.c.f = moq_group_follow(g, &pair_ops_frames, &pair.c);
    moq_frame fr = make_frame(0, 0, 10);
    assert_int_equal(moq_group_append(g, &fr, 0), 0);
    assert_int_equal(pair.a.frames_seen, 1);
    assert_int_equal(pair.b.frames_seen, 0);
    assert_int_equal(pair.c.frames_seen, 1);
    moq_follower_close(pair.a.f);
    moq_follower_close(pair.c.f);

    memset(&pair, 0, sizeof(pair));
    pair.spawn_on_end = true;
    pair.a.f = moq_group_follow(g, &pair_ops_end, &pair.a);
    pair.c.f = moq_group_follow(g, &pair_ops_end, &pair.c);
    assert_int_equal(moq_group_finish(g, 0), 0);
    assert_int_equal(pair.a.ends, 1);
    assert_int_equal(pair.c.ends, 1);
    assert_null(pair.a.f);
    assert_non_null(pair.spawned.f);
    assert_int_equal(pair.spawned.ends, 0); /* created during that notification */
    assert_int_equal(moq_group_state(moq_follower_group(pair.spawned.f), NULL), MOQ_GROUP_FINISHED);
    moq_follower_close(pair.spawned.f);
    moq_group_unref(g);
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

/* Producers reacting synchronously: leaving, or unsubscribing someone, inside track_request. */
static void unannounce_in_request(prod *p, moq_track *t)
{
    moq_route_unannounce(p->route);
    p->route = NULL;
}

static void close_sub_in_request(prod *p, moq_track *t)
{
    rsub *victim = p->user;
    moq_subscription_close(victim->sub);
    victim->sub = NULL;
}

static void write_in_request(prod *p, moq_track *t)
{
    write_group_done(p, t, 0, 2, 10, 0);
}

static void producer_reentrancy(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod gone = {.hook_request = unannounce_in_request};
    announce(o, &gone, "p", NULL, 0);
    rsub a = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &a, "p", "t", 0, &pr), 0);
    assert_int_equal(gone.requests, 1);
    assert_int_equal(gone.releases, 1);
    assert_int_equal(a.aborts, 1);
    assert_int_equal(a.code, MOQ_REASON_DROPPED);
    rsub_close(&a);

    prod q = {.hook_request = close_sub_in_request};
    announce(o, &q, "q", NULL, 0);
    rsub b = {0};
    q.user = &b;
    assert_int_equal(subscribe(o, &b, "q", "t", 0, &pr), 0);
    assert_null(b.sub);
    assert_int_equal(q.requests, 1);
    assert_int_equal(q.releases, 1);
    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.tracks, 0);
    assert_int_equal(st.subscriptions, 0);

    /* A local producer that has data at once: the first subscriber gets it live. */
    q.hook_request = write_in_request;
    rsub c = {0};
    assert_int_equal(subscribe(o, &c, "q", "t", 0, &pr), 0);
    assert_int_equal(c.ngroups, 1);
    assert_int_equal(c.infos, 1);
    rsub_close(&c);
    moq_route_unannounce(q.route);
    moq_origin_free(o);
}

static void track_info_and_info_only(void **state)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = 100;
    cfg.cache_duration_us = 2 * SEC;
    moq_origin *o = moq_origin_new(&cfg);
    prod p = {.set_info = true};
    moq_track_info_default(&p.info);
    p.info.priority = 3;
    p.info.ordered = true;
    p.info.max_latency_ms = 10000;
    p.info.timescale = 90000;
    announce(o, &p, "i", NULL, 0);

    rsub q = {0};
    moq_sub_prefs info_only = prefs_default();
    info_only.info_only = true;
    assert_int_equal(subscribe(o, &q, "i", "t", 0, &info_only), 0);
    assert_int_equal(p.requests, 1);
    assert_true(p.prefs.info_only);
    assert_int_equal(q.infos, 1);
    assert_int_equal(q.info.timescale, 90000);
    assert_int_equal(q.info.priority, 3);
    assert_int_equal(q.info.max_latency_ms, 2000); /* clamped to cache.duration */
    assert_int_equal(moq_subscription_info(q.sub)->max_latency_ms, 2000);
    moq_track_info bad = p.info;
    bad.timescale = 0;
    assert_int_equal(moq_track_set_info(p.last, p.route, &bad), MOQ_ERR_INVALID);
    write_group_done(&p, p.last, 0, 1, 10, 0);
    write_group_done(&p, p.last, 1, 1, 10, 0);
    assert_int_equal(q.ngroups, 0); /* info only: no groups */

    /* A real subscriber joins: the aggregate now wants data. */
    rsub r = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &r, "i", "t", 0, &pr), 0);
    assert_int_equal(r.infos, 1); /* replayed */
    assert_false(p.prefs.info_only);
    assert_int_equal(r.ngroups, 1);
    /* The TRACK requester becomes the subscriber (SUBSCRIBE after TRACK). */
    assert_int_equal(moq_subscription_update(q.sub, &pr), 0);
    assert_int_equal(q.ngroups, 1);
    assert_int_equal(q.seqs[0], 1);
    assert_int_equal(q.infos, 1);
    rsub_close(&q);
    rsub_close(&r);

    /* A producer without TRACK_INFO: the first group installs the defaults. */
    p.set_info = false;
    rsub d = {0};
    assert_int_equal(subscribe(o, &d, "i", "u", 0, &pr), 0);
    assert_null(moq_subscription_info(d.sub));
    assert_int_equal(d.infos, 0);
    write_group_done(&p, p.last, 0, 1, 10, 0);
    assert_int_equal(d.infos, 1);
    assert_int_equal(d.info.timescale, 1000);
    assert_int_equal(d.info.max_latency_ms, 2000);
    rsub_close(&d);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void track_finish(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "t", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "t", "x", 0, &pr), 0);
    moq_track *t = p.last;
    write_group_done(&p, t, 0, 1, 10, 0);
    moq_group *open = write_group(&p, t, 1, 1, 10, 0, false);
    assert_int_equal(moq_track_finish(t, p.route, 1), MOQ_ERR_INVALID);
    prod other = {0};
    assert_int_equal(moq_track_finish(t, (moq_route *)&other, 3), MOQ_ERR_CLOSED);
    assert_int_equal(moq_track_finish(t, p.route, 3), 0);
    assert_true(s.finished);
    assert_int_equal(s.final_seq, 3);
    assert_int_equal(moq_track_finish(t, p.route, 4), MOQ_ERR_CLOSED);
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(t, p.route, 3, 0, &g), MOQ_ERR_CLOSED);
    assert_int_equal(moq_track_begin_group(t, p.route, 2, 0, &g), 0); /* trailing group */
    assert_int_equal(s.ngroups, 3);
    assert_int_equal(moq_group_finish(open, 0), 0);
    /* A subscriber arriving now gets the cache and the end. */
    rsub late = {0};
    assert_int_equal(subscribe(o, &late, "t", "x", 0, &pr), 0);
    assert_int_equal(late.ngroups, 3);
    assert_true(late.finished);
    assert_int_equal(late.final_seq, 3);
    moq_group_unref(g);
    moq_group_unref(open);
    rsub_close(&s);
    rsub_close(&late);
    assert_int_equal(p.releases, 1);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void released_producer_cannot_write(void **state)
{
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "w", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s, "w", "x", 0, &pr), 0);
    moq_track *t = p.last;
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(t, p.route, 0, 0, &g), 0);
    /* Another route handle is refused. */
    prod q = {0};
    announce(o, &q, "other", NULL, 0);
    moq_group *x = NULL;
    assert_int_equal(moq_track_begin_group(t, q.route, 1, 0, &x), MOQ_ERR_CLOSED);
    moq_track_info info;
    moq_track_info_default(&info);
    assert_int_equal(moq_track_set_info(t, q.route, &info), MOQ_ERR_CLOSED);
    /* Groups already begun stay writable by their holder after the release. */
    rsub_close(&s);
    assert_int_equal(p.releases, 1);
    moq_frame f = make_frame(0, 0, 10);
    assert_int_equal(moq_group_append(g, &f, 0), 0);
    assert_int_equal(moq_group_finish(g, 0), 0);
    moq_group_unref(g);
    moq_route_unannounce(p.route);
    moq_route_unannounce(q.route);
    moq_origin_free(o);
}

/* A track moving to a better route of the same publisher moves make-before-break: the old
 * route finishes the group it has in flight, the new one writes the groups after it, and a
 * subscriber gets every frame once - no group cut short, none delivered twice. */
static void route_change_is_make_before_break(void **state)
{
    moq_origin *o = new_origin(100, 5 * SEC);
    prod far = {0}, near = {0};
    announce(o, &far, "r", (uint64_t[]){1, 2, 3}, 3);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s, "r", "t", 0, &pr), 0);
    moq_track *t = far.last;
    write_group_done(&far, t, 0, 2, 10, 0);
    moq_group *open = write_group(&far, t, 1, 1, 10, 0, false);
    rfol fl;
    follow(&fl, open);

    announce(o, &near, "r", (uint64_t[]){1}, 1); /* shorter: the track moves */
    assert_int_equal(near.requests, 1);
    assert_ptr_equal(near.last, t);
    assert_int_equal(far.releases, 0); /* still finishing group 1 */
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(t, near.route, 1, 0, &g), MOQ_ERR_EXISTS);
    assert_int_equal(moq_track_begin_group(t, near.route, 0, 0, &g), MOQ_ERR_EXISTS);
    moq_frame f = make_frame(1, 1, 10);
    assert_int_equal(moq_group_append(open, &f, 0), 0);
    assert_int_equal(moq_track_begin_group(t, far.route, 2, 0, &g), MOQ_ERR_CLOSED);
    assert_int_equal(moq_group_finish(open, 0), 0);
    assert_int_equal(far.releases, 1); /* its group done, the old route goes */
    assert_int_equal(fl.frames_seen, 2);
    assert_int_equal(fl.state, MOQ_GROUP_FINISHED);
    write_group_done(&near, t, 2, 2, 10, 0);
    assert_int_equal(s.ngroups, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s.seqs[i], (uint64_t)i);
    assert_int_equal(s.aborts, 0);

    /* without a group in flight the move is immediate */
    moq_route_update(far.route, (uint64_t[]){1, 9}, 2);
    moq_route_update(near.route, (uint64_t[]){1, 9, 9}, 3);
    assert_int_equal(near.releases, 1);
    assert_int_equal(far.requests, 2);
    assert_int_equal(moq_track_begin_group(t, far.route, 2, 0, &g), MOQ_ERR_EXISTS);
    write_group_done(&far, t, 3, 1, 10, 0);
    assert_int_equal(s.ngroups, 4);

    rfol_close(&fl);
    moq_group_unref(open);
    rsub_close(&s);
    moq_route_unannounce(far.route);
    moq_route_unannounce(near.route);
    stats_zero(o);
    moq_origin_free(o);
}

/* The route a track moved away from is let go early when nothing needs it any more: the
 * subscribers left, the route went away, or it failed the track (which goes on). */
static void moved_away_route_released_early(void **state)
{
    for (int how = 0; how < 3; how++) {
        moq_origin *o = new_origin(100, 5 * SEC);
        prod far = {0}, near = {0};
        announce(o, &far, "e", (uint64_t[]){1, 2}, 2);
        rsub s = {0};
        moq_sub_prefs pr = prefs_default();
        assert_int_equal(subscribe(o, &s, "e", "t", 0, &pr), 0);
        moq_track *t = far.last;
        moq_group *open = write_group(&far, t, 4, 1, 10, 0, false);
        announce(o, &near, "e", (uint64_t[]){1}, 1);
        assert_int_equal(far.releases, 0);
        assert_int_equal(near.requests, 1);
        if (how == 0) {
            rsub_close(&s);
            assert_int_equal(far.releases, 1);
            assert_int_equal(near.releases, 1);
        } else if (how == 1) {
            moq_route_lost(far.route, 0);
            far.route = NULL;
            assert_int_equal(far.releases, 1);
            assert_int_equal(s.aborts, 0);
        } else {
            assert_int_equal(moq_track_abort(t, far.route, 7), 0);
            assert_int_equal(far.releases, 1);
            assert_int_equal(s.aborts, 0);
            write_group_done(&near, t, 5, 1, 10, 0);
            assert_int_equal(s.ngroups, 2);
        }
        moq_group_abort(open, 9);
        moq_group_unref(open);
        rsub_close(&s);
        if (far.route) moq_route_unannounce(far.route);
        moq_route_unannounce(near.route);
        stats_zero(o);
        moq_origin_free(o);
    }
}

/* With track_keep_us, a track keeps its cache after its last subscriber left: a
 * subscriber coming back starts at the latest group at once, and the producer is asked
 * again. Then the track goes. (By default a track goes with its last subscriber.) */
static void unused_track_keeps_its_cache(void **state)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    assert_int_equal(cfg.track_keep_us, 0);
    cfg.id = 100;
    cfg.linger_us = 0;
    cfg.track_keep_us = 30 * SEC;
    moq_origin *o = moq_origin_new(&cfg);
    prod p = {0};
    announce(o, &p, "k", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_default();
    assert_int_equal(subscribe(o, &s, "k", "t", 0, &pr), 0);
    for (uint64_t seq = 0; seq < 3; seq++)
        write_group_done(&p, p.last, seq, 2, 10, 1 * SEC);
    rsub_close(&s);
    assert_int_equal(p.releases, 1);
    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.tracks, 1);
    moq_origin_tick(o, 20 * SEC); /* the older groups expire, the latest stays */
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.groups_cached, 1);
    assert_int_equal(moq_origin_next_deadline(o), 31 * SEC);
    rsub back = {0};
    assert_int_equal(subscribe(o, &back, "k", "t", 0, &pr), 0);
    assert_int_equal(back.ngroups, 1);
    assert_int_equal(back.seqs[0], 2);
    assert_int_equal(p.requests, 2);
    write_group_done(&p, p.last, 3, 1, 10, 21 * SEC);
    assert_int_equal(back.ngroups, 2);
    rsub_close(&back);
    assert_int_equal(moq_origin_next_deadline(o), 51 * SEC);
    moq_origin_tick(o, 50 * SEC);
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.tracks, 1);
    moq_origin_tick(o, 51 * SEC);
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.tracks, 0);
    assert_int_equal(st.groups_cached, 0);
    assert_int_equal(moq_origin_next_deadline(o), UINT64_MAX);

    /* a track with nothing cached is not kept */
    rsub once = {0};
    assert_int_equal(subscribe(o, &once, "k", "t", 0, &pr), 0);
    assert_int_equal(once.ngroups, 0);
    rsub_close(&once);
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.tracks, 0);
    moq_route_unannounce(p.route);
    stats_zero(o);
    moq_origin_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(subscribe_dedup_and_aggregate),
        cmocka_unit_test(unknown_broadcast_not_found),
        cmocka_unit_test(producer_refusal_propagates),
        cmocka_unit_test(late_joiner_starts_at_latest),
        cmocka_unit_test(explicit_start_replays_in_order),
        cmocka_unit_test(out_of_order_parallel_groups),
        cmocka_unit_test(frames_are_shared_not_copied),
        cmocka_unit_test(fetch_hit_miss_coalesce),
        cmocka_unit_test(close_from_callbacks),
        cmocka_unit_test(subscribe_from_callback_sees_each_group_once),
        cmocka_unit_test(nested_notifications),
        cmocka_unit_test(follower_reentrancy),
        cmocka_unit_test(producer_reentrancy),
        cmocka_unit_test(track_info_and_info_only),
        cmocka_unit_test(track_finish),
        cmocka_unit_test(released_producer_cannot_write),
        cmocka_unit_test(route_change_is_make_before_break),
        cmocka_unit_test(moved_away_route_released_early),
        cmocka_unit_test(unused_track_keeps_its_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
