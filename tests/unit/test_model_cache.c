/* Unit tests for src/model: the group cache (age expiry, byte budget) and frame limits. */
#include "test_model_util.h"

static moq_origin *origin_with(uint64_t duration_us, uint64_t capacity, uint64_t max_frame,
                               uint64_t max_group)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = 100;
    cfg.linger_us = 0;
    cfg.cache_duration_us = duration_us;
    cfg.cache_capacity = capacity;
    if (max_frame) cfg.max_frame_bytes = max_frame;
    if (max_group) cfg.max_group_bytes = max_group;
    moq_origin *o = moq_origin_new(&cfg);
    assert_non_null(o);
    return o;
}

static bool cached(moq_origin *o, const char *path, const char *name, uint64_t seq, uint64_t now)
{
    moq_group *g = NULL;
    int rc = moq_origin_fetch(o, S(path), S(name), 0, seq, 0, false, now, &g);
    if (rc == 0) moq_group_unref(g);
    return rc == 0;
}

static moq_origin_stats stats(moq_origin *o)
{
    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    return st;
}

static void expiry_by_max_latency(void **state)
{
    moq_origin *o = origin_with(0, 0, 0, 0);
    prod p = {.set_info = true};
    moq_track_info_default(&p.info);
    p.info.max_latency_ms = 1000;
    announce(o, &p, "x", NULL, 0);
    rsub s = {.keep_refs = true};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "x", "t", 0, &pr), 0);
    for (uint64_t i = 0; i < 5; i++)
        write_group_done(&p, p.last, i, 2, 100, i * 200 * MS);
    moq_group *open = write_group(&p, p.last, 5, 1, 100, 900 * MS, false);
    write_group_done(&p, p.last, 6, 1, 100, 950 * MS);
    rfol f;
    follow(&f, s.groups[5]);
    assert_int_equal(stats(o).groups_cached, 7);

    moq_origin_tick(o, 1100 * MS);
    assert_int_equal(stats(o).groups_cached, 6);
    assert_int_equal(stats(o).expirations, 1);
    assert_false(cached(o, "x", "t", 0, 1100 * MS));
    /* A holder still reads the expired (finished) group. */
    assert_int_equal(moq_group_frame_count(s.groups[0]), 2);
    assert_non_null(moq_group_frame(s.groups[0], 1));
    assert_int_equal(moq_group_state(s.groups[0], NULL), MOQ_GROUP_FINISHED);
    assert_int_equal(moq_origin_next_deadline(o), 1200 * MS + 1);

    moq_origin_tick(o, 2000 * MS);
    /* the finished ones expire; the open one is not cut short while nothing newer came */
    assert_int_equal(stats(o).groups_cached, 2);
    assert_int_equal(f.ends, 0);

    moq_origin_tick(o, 100 * SEC);
    assert_true(cached(o, "x", "t", 6, 100 * SEC)); /* the latest never expires */
    assert_true(cached(o, "x", "t", 5, 0));
    assert_int_equal(moq_origin_next_deadline(o), UINT64_MAX);

    /* A newer group ages the open one out. A fetch hit refreshes the age. */
    write_group_done(&p, p.last, 7, 1, 100, 100 * SEC);
    assert_int_equal(f.ends, 1);
    assert_int_equal(f.state, MOQ_GROUP_ABORTED);
    assert_int_equal(f.code, MOQ_REASON_OLD);
    moq_frame fr = make_frame(5, 1, 10);
    assert_int_equal(moq_group_append(open, &fr, 100 * SEC), MOQ_ERR_CLOSED);
    write_group_done(&p, p.last, 8, 1, 100, 100 * SEC);
    write_group_done(&p, p.last, 9, 1, 100, 100 * SEC);
    assert_true(cached(o, "x", "t", 7, 100 * SEC + 900 * MS));
    moq_origin_tick(o, 101 * SEC + 500 * MS);
    assert_true(cached(o, "x", "t", 7, 0) && !cached(o, "x", "t", 8, 0));
    /* Writes expire too, without a tick. */
    write_group_done(&p, p.last, 10, 1, 100, 102 * SEC);
    assert_false(cached(o, "x", "t", 7, 0));
    assert_false(cached(o, "x", "t", 9, 0));
    assert_true(cached(o, "x", "t", 10, 0));

    rfol_close(&f);
    moq_group_unref(open);
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

/* Three large groups in flight at once, the publisher sending the newest first: the oldest
 * gets no byte for longer than the max latency while the newer ones are written. It is not
 * cut short for that; only a group newer than all of them ages it out. A frame still
 * arriving (moq_group_touch) counts as an access. */
static void open_group_outlives_newer_ones_being_written(void **state)
{
    moq_origin *o = origin_with(0, 0, 0, 0);
    prod p = {.set_info = true};
    moq_track_info_default(&p.info);
    p.info.max_latency_ms = 1000;
    announce(o, &p, "x", NULL, 0);
    rsub s = {.keep_refs = true};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "x", "t", 0, &pr), 0);
    moq_group *g1 = write_group(&p, p.last, 1, 1, 100, 0, false);
    moq_group *g2 = write_group(&p, p.last, 2, 1, 100, 0, false);
    moq_group *g3 = write_group(&p, p.last, 3, 1, 100, 0, false);
    rfol f1, f2;
    follow(&f1, g1);
    follow(&f2, g2);
    uint64_t idx = 1;
    for (uint64_t t = 100 * MS; t <= 3 * SEC; t += 100 * MS) {
        moq_frame fr = make_frame(3, idx++, 100);
        assert_int_equal(moq_group_append(g3, &fr, t), 0); /* only the newest moves */
        moq_origin_tick(o, t);
        if (t == 2900 * MS) moq_group_touch(g2, t); /* part of g2's next frame arrived */
    }
    assert_int_equal(f1.ends, 0);
    assert_int_equal(f2.ends, 0);
    moq_frame fr = make_frame(1, 1, 100);
    assert_int_equal(moq_group_append(g1, &fr, 3 * SEC), 0);
    assert_int_equal(moq_group_finish(g3, 3 * SEC), 0);

    /* newer groups: g1 (written at 3 s) and g2 (touched at 2.9 s) age out a second later */
    write_group_done(&p, p.last, 4, 1, 100, 3 * SEC + 500 * MS);
    assert_int_equal(f1.ends, 0);
    assert_int_equal(f2.ends, 0);
    write_group_done(&p, p.last, 5, 1, 100, 4 * SEC + 500 * MS);
    assert_int_equal(f1.ends, 1);
    assert_int_equal(f1.code, MOQ_REASON_OLD);
    assert_int_equal(f2.ends, 1);
    assert_int_equal(f2.code, MOQ_REASON_OLD);

    rfol_close(&f1);
    rfol_close(&f2);
    moq_group_unref(g1);
    moq_group_unref(g2);
    moq_group_unref(g3);
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

static void expiry_clamped_by_cache_duration(void **state)
{
    moq_origin *o = origin_with(300 * MS, 0, 0, 0);
    prod p = {0};
    announce(o, &p, "d", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "d", "t", 0, &pr), 0);
    write_group_done(&p, p.last, 0, 1, 100, 0); /* no TRACK_INFO: default 5 s, clamped */
    write_group_done(&p, p.last, 1, 1, 100, 100 * MS);
    write_group_done(&p, p.last, 2, 1, 100, 200 * MS);
    assert_int_equal(s.info.max_latency_ms, 300);
    moq_origin_tick(o, 300 * MS);
    assert_true(cached(o, "d", "t", 0, 0));
    moq_origin_tick(o, 301 * MS);
    assert_false(cached(o, "d", "t", 0, 0));
    assert_true(cached(o, "d", "t", 1, 0)); /* a peek (now 0) does not refresh */
    moq_origin_tick(o, 401 * MS);
    assert_false(cached(o, "d", "t", 1, 0));
    assert_true(cached(o, "d", "t", 2, 0));
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

enum { TRACKS = 4, GROUP_BYTES = 10240, CAPACITY = 200 * 1024 };

static uint64_t charge(moq_origin *o)
{
    moq_origin_stats st = stats(o);
    return st.cached_bytes + 256 * st.groups_cached;
}

static void byte_budget_converges(void **state)
{
    moq_origin *o = origin_with(0, CAPACITY, 0, 0);
    prod p = {0};
    announce(o, &p, "b", NULL, 0);
    const char *names[TRACKS] = {"t0", "t1", "t2", "t3"};
    rsub s[TRACKS];
    moq_track *t[TRACKS];
    memset(s, 0, sizeof(s));
    moq_sub_prefs pr = prefs_from(0);
    for (int k = 0; k < TRACKS; k++) {
        assert_int_equal(subscribe(o, &s[k], "b", names[k], 0, &pr), 0);
        t[k] = p.last;
    }
    uint64_t now = 0;
    for (uint64_t i = 0; i < 60; i++)
        for (int k = 0; k < TRACKS; k++) {
            now += MS;
            write_group_done(&p, t[k], i, 1, GROUP_BYTES, now);
            assert_true(charge(o) <= CAPACITY);
        }
    moq_origin_stats st = stats(o);
    assert_true(st.evictions > 0);
    assert_true(charge(o) > CAPACITY - GROUP_BYTES - 256); /* converged on the budget */
    for (int k = 0; k < TRACKS; k++)
        assert_true(cached(o, "b", names[k], 59, 0));

    /* 19 groups fit: 55 (t1..t3) to 59. A group someone fetched outlives groups nobody
     * read, even newer ones. */
    assert_false(cached(o, "b", "t0", 55, 0));
    assert_true(cached(o, "b", "t1", 55, 0));
    assert_true(cached(o, "b", "t0", 56, now));
    for (uint64_t i = 60; i < 62; i++)
        for (int k = 0; k < TRACKS; k++) {
            now += MS;
            write_group_done(&p, t[k], i, 1, GROUP_BYTES, now);
        }
    assert_true(cached(o, "b", "t0", 56, 0));
    assert_false(cached(o, "b", "t1", 56, 0));
    assert_false(cached(o, "b", "t3", 56, 0));
    assert_false(cached(o, "b", "t0", 57, 0));
    assert_true(cached(o, "b", "t2", 57, 0));

    /* A straggler (older sequence, not the latest) is never evicted by its own write. */
    moq_group *late = NULL;
    assert_int_equal(moq_track_begin_group(t[1], p.route, 30, ++now, &late), 0);
    for (int k = 0; k < 20; k++) {
        moq_frame fr = make_frame(30, (uint64_t)k, GROUP_BYTES);
        assert_int_equal(moq_group_append(late, &fr, ++now), 0);
        assert_int_equal(moq_group_state(late, NULL), MOQ_GROUP_OPEN);
    }
    assert_true(cached(o, "b", "t1", 30, 0));
    assert_int_equal(moq_group_finish(late, now), 0);
    moq_group_unref(late);
    for (int k = 0; k < TRACKS; k++)
        write_group_done(&p, t[k], 62, 1, GROUP_BYTES, ++now);
    assert_false(cached(o, "b", "t1", 30, 0)); /* then it is stale like any other */

    /* An in-progress group that is evicted is aborted for its followers. */
    uint64_t last[TRACKS] = {65, 62, 62, 62};
    moq_group *open = write_group(&p, t[0], 64, 1, GROUP_BYTES, ++now, false);
    rfol f;
    follow(&f, open);
    write_group_done(&p, t[0], 65, 1, GROUP_BYTES, ++now); /* 64 is no longer the latest */
    while (f.ends == 0 && last[1] < 200)
        for (int k = 1; k < TRACKS; k++)
            write_group_done(&p, t[k], ++last[k], 1, GROUP_BYTES, ++now);
    assert_int_equal(f.ends, 1);
    assert_int_equal(f.state, MOQ_GROUP_ABORTED);
    assert_int_equal(f.code, MOQ_REASON_EVICTED);
    moq_frame fr = make_frame(64, 1, 10);
    assert_int_equal(moq_group_append(open, &fr, now), MOQ_ERR_CLOSED);
    rfol_close(&f);
    moq_group_unref(open);

    /* The latest group is never evicted, even when it alone exceeds the budget. */
    moq_group *big = write_group(&p, t[3], 1000, 25, GROUP_BYTES, ++now, false);
    assert_true(moq_group_bytes(big) > CAPACITY);
    assert_true(cached(o, "b", "t3", 1000, 0));
    for (int k = 0; k < 3; k++)
        assert_true(cached(o, "b", names[k], last[k], 0));
    assert_false(cached(o, "b", "t3", last[3], 0));
    assert_int_equal(moq_group_state(big, NULL), MOQ_GROUP_OPEN);
    write_group_done(&p, t[0], 500, 1, GROUP_BYTES, ++now);
    assert_true(cached(o, "b", "t3", 1000, 0));
    moq_group_finish(big, now);
    moq_group_unref(big);

    for (int k = 0; k < TRACKS; k++)
        rsub_close(&s[k]);
    st = stats(o);
    assert_int_equal(st.groups_cached, 0);
    assert_int_equal(st.cached_bytes, 0);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

/* Origins sharing one cache budget (a relay's worker threads): the sum of their charges
 * stays within it, each evicting its own least recently used groups. */
static void byte_budget_shared(void **state)
{
    _Atomic uint64_t shared = 0;
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.linger_us = 0;
    cfg.cache_capacity = CAPACITY;
    cfg.shared_charge = &shared;
    moq_origin *o[2];
    prod p[2];
    rsub s[2];
    moq_track *t[2];
    memset(p, 0, sizeof(p));
    memset(s, 0, sizeof(s));
    moq_sub_prefs pr = prefs_from(0);
    for (int k = 0; k < 2; k++) {
        cfg.id = 100 + (uint64_t)k;
        o[k] = moq_origin_new(&cfg);
        assert_non_null(o[k]);
        announce(o[k], &p[k], "b", NULL, 0);
        assert_int_equal(subscribe(o[k], &s[k], "b", "t", 0, &pr), 0);
        t[k] = p[k].last;
    }
    uint64_t now = 0;
    for (uint64_t i = 0; i < 40; i++)
        write_group_done(&p[0], t[0], i, 1, GROUP_BYTES, now += MS);
    assert_true(charge(o[0]) <= CAPACITY);
    assert_true(charge(o[0]) > CAPACITY / 2); /* one origin alone may use the whole budget */
    assert_int_equal(shared, charge(o[0]));
    /* The second origin's writes evict its own groups while the sum is over the budget: only
     * its latest group (never evicted) can stand above it. */
    for (uint64_t i = 0; i < 10; i++) {
        write_group_done(&p[1], t[1], i, 1, GROUP_BYTES, now += MS);
        assert_true(charge(o[0]) + charge(o[1]) <= CAPACITY + GROUP_BYTES + 256);
    }
    assert_true(stats(o[1]).evictions > 0);
    /* The first origin's next write brings the sum back within the budget. */
    write_group_done(&p[0], t[0], 40, 1, GROUP_BYTES, now += MS);
    assert_true(charge(o[0]) + charge(o[1]) <= CAPACITY);
    assert_int_equal(shared, charge(o[0]) + charge(o[1]));
    for (int k = 0; k < 2; k++) {
        rsub_close(&s[k]);
        moq_route_unannounce(p[k].route);
        moq_origin_free(o[k]);
    }
}

static void frame_too_large_refused(void **state)
{
    size_t base = moq_chunk_live_count();
    moq_origin *o = origin_with(0, 0, 1000, 0);
    prod p = {0};
    announce(o, &p, "big", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "big", "t", 0, &pr), 0);
    moq_group *g = write_group(&p, p.last, 0, 1, 1000, 0, false); /* exactly the max: fine */
    rfol f;
    follow(&f, g);
    moq_frame fr = make_frame(0, 1, 1001);
    assert_int_equal(moq_group_append(g, &fr, 0), MOQ_ERR_TOO_LARGE);
    assert_int_equal(f.ends, 1);
    assert_int_equal(f.code, MOQ_REASON_FRAME_TOO_LARGE);
    uint64_t code = 0;
    assert_int_equal(moq_group_state(g, &code), MOQ_GROUP_ABORTED);
    assert_int_equal(code, 27);
    assert_int_equal(moq_group_frame_count(g), 1);
    assert_int_equal(moq_chunk_live_count(), base + 1); /* the refused chunk was released */
    fr = make_frame(0, 1, 10);
    assert_int_equal(moq_group_append(g, &fr, 0), MOQ_ERR_CLOSED);
    assert_int_equal(moq_chunk_live_count(), base + 1);
    rfol_close(&f);
    moq_group_unref(g);
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
    assert_int_equal(moq_chunk_live_count(), base);
}

static void bad_frames_and_group_cap(void **state)
{
    size_t base = moq_chunk_live_count();
    moq_origin *o = origin_with(0, 0, 0, 1000);
    prod p = {0};
    announce(o, &p, "g", NULL, 0);
    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "g", "t", 0, &pr), 0);
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(p.last, p.route, 0, 0, &g), 0);

    moq_frame fr = make_frame(0, 0, 100);
    fr.payload_len = 200; /* beyond the chunk */
    assert_int_equal(moq_group_append(g, &fr, 0), MOQ_ERR_INVALID);
    fr = make_frame(0, 0, 100);
    fr.hdr_off[1] = 100;
    fr.hdr_len[1] = 50;
    assert_int_equal(moq_group_append(g, &fr, 0), MOQ_ERR_INVALID);
    moq_frame none = {0};
    assert_int_equal(moq_group_append(g, &none, 0), MOQ_ERR_INVALID);
    assert_int_equal(moq_chunk_live_count(), base);
    assert_int_equal(moq_group_state(g, NULL), MOQ_GROUP_OPEN);

    rfol f;
    follow(&f, g);
    for (uint64_t i = 0; i < 5; i++) {
        fr = make_frame(0, i, 300);
        assert_int_equal(moq_group_append(g, &fr, 0), 0);
    }
    /* 1500 bytes > 1000: the two oldest frames were dropped from the group. */
    assert_int_equal(moq_group_frame_count(g), 5);
    assert_int_equal(moq_group_first_frame(g), 2);
    assert_null(moq_group_frame(g, 1));
    assert_non_null(moq_group_frame(g, 2));
    assert_null(moq_group_frame(g, 5));
    assert_int_equal(moq_group_bytes(g), 900);
    assert_int_equal(stats(o).cached_bytes, 900);
    assert_int_equal(moq_chunk_live_count(), base + 3);
    assert_int_equal(f.frames_seen, 5); /* it kept up, so it lost nothing */
    rfol_close(&f);
    moq_group_finish(g, 0);
    moq_group_unref(g);
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
    assert_int_equal(moq_chunk_live_count(), base);
}

/* moq_origin_track_cache reports the cached range, the frames of the largest group, the
 * track's end, skips aborted groups, and tells an unknown broadcast from an unknown track. */
static void track_cache_reports_the_range(void **state)
{
    moq_origin *o = origin_with(0, 0, 0, 0);
    prod p = {0};
    announce(o, &p, "x", NULL, 0);
    moq_track_cache tc;
    assert_int_equal(moq_origin_track_cache(o, S("y"), S("t"), 0, &tc), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_origin_track_cache(o, S("x"), S("t"), 0, &tc), 0);
    assert_false(tc.known);
    assert_false(tc.has_groups);

    rsub s = {0};
    moq_sub_prefs pr = prefs_from(0);
    assert_int_equal(subscribe(o, &s, "x", "t", 0, &pr), 0);
    assert_int_equal(moq_origin_track_cache(o, S("x"), S("t"), 0, &tc), 0);
    assert_true(tc.known);
    assert_false(tc.has_groups);

    write_group_done(&p, p.last, 4, 3, 10, 0);
    write_group_done(&p, p.last, 2, 1, 10, 0);
    moq_group *open = write_group(&p, p.last, 7, 2, 10, 0, false);
    moq_group *bad = write_group(&p, p.last, 9, 1, 10, 0, false);
    assert_int_equal(moq_group_abort(bad, 5), 0);
    assert_int_equal(moq_origin_track_cache(o, S("x"), S("t"), 0, &tc), 0);
    assert_true(tc.has_groups);
    assert_int_equal(tc.first, 2);
    assert_int_equal(tc.last, 7);
    assert_int_equal(tc.last_frames, 2);
    assert_false(tc.finished);

    assert_int_equal(moq_group_finish(open, 0), 0);
    assert_int_equal(moq_track_finish(p.last, p.route, 10), 0);
    assert_int_equal(moq_origin_track_cache(o, S("x"), S("t"), 0, &tc), 0);
    assert_true(tc.finished);
    assert_int_equal(tc.final_seq, 10);

    moq_group_unref(open);
    moq_group_unref(bad);
    rsub_close(&s);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expiry_by_max_latency),
        cmocka_unit_test(open_group_outlives_newer_ones_being_written),
        cmocka_unit_test(expiry_clamped_by_cache_duration),
        cmocka_unit_test(byte_budget_converges),
        cmocka_unit_test(byte_budget_shared),
        cmocka_unit_test(frame_too_large_refused),
        cmocka_unit_test(bad_frames_and_group_cap),
        cmocka_unit_test(track_cache_reports_the_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
