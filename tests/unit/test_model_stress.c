/* Stress test for src/model: 1000 groups x 50 subscribers, two groups in flight at a time,
 * with cache expiry running; every subscriber must see every frame exactly once, in order. */
#include "test_model_util.h"

enum { SUBS = 50, GROUPS = 1000, FRAMES = 3 };

typedef struct viewer {
    moq_subscription *sub;
    uint64_t next_group; /* groups arrive in sequence order here */
    uint64_t groups_done;
    uint64_t frames;
    int open_followers;
} viewer;

typedef struct stream {
    viewer *v;
    moq_follower *f;
    uint64_t read;
} stream;

static void stream_drain(stream *st, moq_group *g)
{
    uint64_t n = moq_group_frame_count(g);
    for (; st->read < n; st->read++) {
        const moq_frame *f = moq_group_frame(g, st->read);
        assert_non_null(f);
        uint64_t seq, idx;
        frame_ids(f, &seq, &idx);
        assert_int_equal(seq, moq_group_sequence(g));
        assert_int_equal(idx, st->read);
        st->v->frames++;
    }
}

static void stream_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    stream_drain(ctx, g);
}

static void stream_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    stream *st = ctx;
    assert_int_equal(state, MOQ_GROUP_FINISHED);
    stream_drain(st, g);
    assert_int_equal(st->read, FRAMES);
    st->v->groups_done++;
    st->v->open_followers--;
    moq_follower_close(st->f);
    free(st);
}

static const moq_follower_ops stream_ops = {stream_frames, stream_end};

static void viewer_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    viewer *v = ctx;
    assert_int_equal(moq_group_sequence(g), v->next_group);
    v->next_group++;
    stream *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    st->v = v;
    st->f = moq_group_follow(g, &stream_ops, st);
    assert_non_null(st->f);
    v->open_followers++;
    stream_drain(st, g);
}

static void viewer_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    fail_msg("unexpected abort %llu", (unsigned long long)code);
}

static const moq_subscriber_ops viewer_ops = {NULL, viewer_group, NULL, viewer_abort};

static void thousand_groups_fifty_subscribers(void **state)
{
    size_t base = moq_chunk_live_count();
    moq_origin *o = new_origin(100, 0);
    prod p = {0};
    announce(o, &p, "stress", (uint64_t[]){1, 2}, 2);
    static viewer v[SUBS];
    memset(v, 0, sizeof(v));
    moq_sub_prefs pr = prefs_from(0);
    for (int i = 0; i < SUBS; i++)
        assert_int_equal(
            moq_origin_subscribe(o, S("stress"), S("video"), 0, &pr, &viewer_ops, &v[i], &v[i].sub),
            0);
    assert_int_equal(p.requests, 1);
    moq_track *t = p.last;

    moq_group *prev = NULL;
    uint64_t now = 0;
    for (uint64_t seq = 0; seq < GROUPS; seq++) {
        now += 10 * MS; /* 10 s in total: older groups expire as we go */
        moq_group *g = NULL;
        assert_int_equal(moq_track_begin_group(t, p.route, seq, now, &g), 0);
        for (uint64_t k = 0; k < FRAMES; k++) {
            moq_frame f = make_frame(seq, k, 64 + (size_t)(seq % 7) * 100);
            assert_int_equal(moq_group_append(g, &f, now), 0);
            if (prev && k == 0) { /* the previous group finishes while this one runs */
                assert_int_equal(moq_group_finish(prev, now), 0);
                moq_group_unref(prev);
                prev = NULL;
            }
        }
        prev = g;
    }
    assert_int_equal(moq_group_finish(prev, now), 0);
    moq_group_unref(prev);

    for (int i = 0; i < SUBS; i++) {
        assert_int_equal(v[i].next_group, GROUPS);
        assert_int_equal(v[i].groups_done, GROUPS);
        assert_int_equal(v[i].frames, (uint64_t)GROUPS * FRAMES);
        assert_int_equal(v[i].open_followers, 0);
    }
    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    assert_true(st.expirations > 0);
    assert_true(st.groups_cached < GROUPS);
    assert_int_equal(st.evictions, 0);

    for (int i = 0; i < SUBS; i++)
        moq_subscription_close(v[i].sub);
    assert_int_equal(p.releases, 1);
    moq_route_unannounce(p.route);
    moq_origin_free(o);
    assert_int_equal(moq_chunk_live_count(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thousand_groups_fifty_subscribers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
