/*
 * test_model_util.h - recording producers, subscribers, watchers and followers shared by
 * the model's unit tests (test_model*.c). Header-only; each test binary includes it once.
 */
#ifndef TEST_MODEL_UTIL_H
#define TEST_MODEL_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "util/chunk.h"
#include "util/err.h"

#define S(str) (const uint8_t *)(str), strlen(str)
#define SEC    1000000ull
#define MS     1000ull

static inline moq_origin *new_origin(uint64_t id, uint64_t linger_us)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = id;
    cfg.linger_us = linger_us;
    moq_origin *o = moq_origin_new(&cfg);
    assert_non_null(o);
    return o;
}

/* Nothing left in the origin. */
static inline void stats_zero(moq_origin *o)
{
    moq_origin_stats st;
    moq_origin_stats_get(o, &st);
    assert_int_equal(st.broadcasts, 0);
    assert_int_equal(st.routes, 0);
    assert_int_equal(st.tracks, 0);
    assert_int_equal(st.subscriptions, 0);
    assert_int_equal(st.watches, 0);
    assert_int_equal(st.groups_cached, 0);
    assert_int_equal(st.cached_bytes, 0);
}

static inline moq_sub_prefs prefs_default(void)
{
    moq_sub_prefs p;
    memset(&p, 0, sizeof(p));
    return p;
}

static inline moq_sub_prefs prefs_from(uint64_t start)
{
    moq_sub_prefs p = prefs_default();
    p.has_start = true;
    p.start_group = start;
    return p;
}

/* A frame whose chunk holds two 4-byte header variants then the payload; the payload
 * starts with (seq, idx) so readers can check what they got. */
static inline moq_frame make_frame(uint64_t seq, uint64_t idx, size_t payload_len)
{
    if (payload_len < 16) payload_len = 16;
    moq_chunk *c = moq_chunk_new(8 + payload_len);
    assert_non_null(c);
    memcpy(c->data, "HDRAHDRB", 8);
    memset(c->data + 8, 0xab, payload_len);
    memcpy(c->data + 8, &seq, 8);
    memcpy(c->data + 16, &idx, 8);
    c->len = 8 + payload_len;
    moq_frame f;
    memset(&f, 0, sizeof(f));
    f.chunk = c;
    f.payload_off = 8;
    f.payload_len = (uint32_t)payload_len;
    f.timestamp = seq * 1000 + idx;
    f.hdr_off[0] = 0;
    f.hdr_len[0] = 4;
    f.hdr_off[1] = 4;
    f.hdr_len[1] = 4;
    return f;
}

static inline void frame_ids(const moq_frame *f, uint64_t *seq, uint64_t *idx)
{
    memcpy(seq, f->chunk->data + f->payload_off, 8);
    memcpy(idx, f->chunk->data + f->payload_off + 8, 8);
}

/* ------------------------------------------------------------------------------------- */
/* Recording producer                                                                       */

#define MAX_TRACKS 64

typedef struct prod {
    moq_route *route;
    int requests, updates, releases, fetches;
    moq_track *tracks[MAX_TRACKS]; /* currently requested */
    int ntracks;
    moq_track *last;
    moq_sub_prefs prefs; /* last request/update */
    /* behaviour */
    bool refuse; /* abort inside track_request */
    uint64_t refuse_code;
    bool set_info; /* set info inside track_request */
    moq_track_info info;
    bool fetch_refuse;
    moq_group *fetched; /* reference taken in fetch_request */
    void (*hook_request)(struct prod *p, moq_track *t);
    void (*hook_release)(struct prod *p, moq_track *t);
    void *user;
} prod;

static inline void prod_add(prod *p, moq_track *t)
{
    assert_true(p->ntracks < MAX_TRACKS);
    for (int i = 0; i < p->ntracks; i++)
        assert_ptr_not_equal(p->tracks[i], t);
    p->tracks[p->ntracks++] = t;
}

static inline void prod_remove(prod *p, moq_track *t)
{
    for (int i = 0; i < p->ntracks; i++)
        if (p->tracks[i] == t) {
            p->tracks[i] = p->tracks[--p->ntracks];
            return;
        }
    fail_msg("release of a track that was not requested");
}

static inline void prod_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *prefs)
{
    prod *p = ctx;
    assert_ptr_equal(r, p->route);
    p->requests++;
    p->last = t;
    p->prefs = *prefs;
    prod_add(p, t);
    if (p->set_info) assert_int_equal(moq_track_set_info(t, r, &p->info), 0);
    if (p->hook_request) p->hook_request(p, t);
    if (p->refuse) moq_track_abort(t, r, p->refuse_code);
}

static inline void prod_update(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *prefs)
{
    prod *p = ctx;
    assert_ptr_equal(r, p->route);
    p->updates++;
    p->prefs = *prefs;
}

static inline void prod_release(void *ctx, moq_route *r, moq_track *t)
{
    prod *p = ctx;
    assert_ptr_equal(r, p->route);
    p->releases++;
    prod_remove(p, t);
    if (p->last == t) p->last = NULL;
    if (p->hook_release) p->hook_release(p, t);
}

static inline int prod_fetch(void *ctx, moq_route *r, moq_track *t, moq_group *g, uint8_t priority)
{
    prod *p = ctx;
    p->fetches++;
    if (p->fetch_refuse) return MOQ_ERR_NOT_FOUND;
    assert_null(p->fetched);
    p->fetched = moq_group_ref(g);
    return 0;
}

static const moq_producer_ops prod_ops = {prod_request, prod_update, prod_release, prod_fetch,
                                          false};

static inline void announce(moq_origin *o, prod *p, const char *path, const uint64_t *hops,
                            size_t nhops)
{
    assert_int_equal(moq_origin_announce(o, S(path), hops, nhops, &prod_ops, p, &p->route), 0);
    assert_non_null(p->route);
}

/* Write a whole group: begin, n frames, finish. Returns the producer's reference. */
static inline moq_group *write_group(prod *p, moq_track *t, uint64_t seq, int nframes, size_t bytes,
                                     uint64_t now, bool finish)
{
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(t, p->route, seq, now, &g), 0);
    for (int i = 0; i < nframes; i++) {
        moq_frame f = make_frame(seq, (uint64_t)i, bytes);
        assert_int_equal(moq_group_append(g, &f, now), 0);
    }
    if (finish) assert_int_equal(moq_group_finish(g, now), 0);
    return g;
}

static inline void write_group_done(prod *p, moq_track *t, uint64_t seq, int nframes, size_t bytes,
                                    uint64_t now)
{
    moq_group_unref(write_group(p, t, seq, nframes, bytes, now, true));
}

/* ------------------------------------------------------------------------------------- */
/* Recording subscriber                                                                    */

#define MAX_SEEN 4096

typedef struct rsub {
    moq_subscription *sub;
    int infos;
    moq_track_info info;
    int ngroups;
    uint64_t seqs[MAX_SEEN];
    moq_group *groups[MAX_SEEN]; /* references when keep_refs */
    bool keep_refs;
    bool finished;
    uint64_t final_seq;
    int aborts;
    uint64_t code;
    /* behaviour */
    bool close_on_group; /* unsubscribe from inside on_group */
    bool close_other_on_group;
    struct rsub *other;
    void (*hook_group)(struct rsub *s, moq_group *g);
    void *user;
} rsub;

static inline void rsub_info(void *ctx, moq_subscription *sub, const moq_track_info *info)
{
    rsub *s = ctx;
    assert_ptr_equal(sub, s->sub);
    s->infos++;
    s->info = *info;
}

static inline void rsub_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    rsub *s = ctx;
    assert_ptr_equal(sub, s->sub);
    assert_false(s->aborts);
    assert_true(s->ngroups < MAX_SEEN);
    s->groups[s->ngroups] = s->keep_refs ? moq_group_ref(g) : NULL;
    s->seqs[s->ngroups++] = moq_group_sequence(g);
    if (s->hook_group) s->hook_group(s, g);
    if (s->close_other_on_group && s->other && s->other->sub) {
        moq_subscription_close(s->other->sub);
        s->other->sub = NULL;
    }
    if (s->close_on_group) {
        moq_subscription_close(s->sub);
        s->sub = NULL;
    }
}

static inline void rsub_finish(void *ctx, moq_subscription *sub, uint64_t final_seq)
{
    rsub *s = ctx;
    s->finished = true;
    s->final_seq = final_seq;
}

static inline void rsub_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    rsub *s = ctx;
    assert_ptr_equal(sub, s->sub);
    s->aborts++;
    s->code = code;
}

static const moq_subscriber_ops rsub_ops = {rsub_info, rsub_group, rsub_finish, rsub_abort};

static inline int subscribe(moq_origin *o, rsub *s, const char *path, const char *name,
                            uint64_t exclude, const moq_sub_prefs *prefs)
{
    return moq_origin_subscribe(o, S(path), S(name), exclude, prefs, &rsub_ops, s, &s->sub);
}

static inline void rsub_close(rsub *s)
{
    if (s->sub) moq_subscription_close(s->sub);
    s->sub = NULL;
    for (int i = 0; i < s->ngroups; i++)
        moq_group_unref(s->groups[i]);
    s->ngroups = 0;
}

/* ------------------------------------------------------------------------------------- */
/* Recording watcher                                                                        */

#define MAX_EVENTS 256

typedef struct wev {
    int kind;
    char path[128];
    char suffix[128];
    uint64_t hops[MOQ_MAX_HOPS];
    size_t nhops;
    bool initial;
} wev;

typedef struct rwatch {
    moq_watch *watch;
    wev ev[MAX_EVENTS];
    int n;
    bool close_on_event;
    void (*hook)(struct rwatch *w, const moq_announce_event *ev);
    void *user;
} rwatch;

static inline void rwatch_cb(void *ctx, moq_watch *watch, const moq_announce_event *e)
{
    rwatch *w = ctx;
    assert_ptr_equal(watch, w->watch);
    assert_true(w->n < MAX_EVENTS);
    wev *v = &w->ev[w->n++];
    v->kind = e->kind;
    assert_true(e->path_len < sizeof(v->path) && e->suffix_len < sizeof(v->suffix));
    memcpy(v->path, e->path, e->path_len);
    v->path[e->path_len] = 0;
    memcpy(v->suffix, e->suffix, e->suffix_len);
    v->suffix[e->suffix_len] = 0;
    v->nhops = e->nhops;
    memcpy(v->hops, e->hops, e->nhops * sizeof(uint64_t));
    v->initial = e->initial;
    if (w->hook) w->hook(w, e);
    if (w->close_on_event) {
        moq_watch_close(w->watch);
        w->watch = NULL;
    }
}

static const moq_watch_ops rwatch_ops = {rwatch_cb};

static inline void watch(moq_origin *o, rwatch *w, const char *prefix, uint64_t exclude)
{
    assert_int_equal(moq_origin_watch(o, S(prefix), exclude, &rwatch_ops, w, &w->watch), 0);
}

static inline void expect_event(const rwatch *w, int i, int kind, const char *path,
                                const uint64_t *hops, size_t nhops)
{
    assert_true(i < w->n);
    assert_int_equal(w->ev[i].kind, kind);
    assert_string_equal(w->ev[i].path, path);
    assert_int_equal(w->ev[i].nhops, nhops);
    for (size_t k = 0; k < nhops; k++)
        assert_int_equal(w->ev[i].hops[k], hops[k]);
}

/* ------------------------------------------------------------------------------------- */
/* Recording follower                                                                       */

typedef struct rfol {
    moq_follower *f;
    uint64_t read; /* next absolute frame index to read */
    uint64_t frames_seen;
    int ends;
    int state;
    uint64_t code;
    bool close_on_end;
} rfol;

static inline void rfol_drain(rfol *r, moq_group *g)
{
    uint64_t n = moq_group_frame_count(g);
    for (; r->read < n; r->read++) {
        const moq_frame *f = moq_group_frame(g, r->read);
        assert_non_null(f);
        uint64_t seq, idx;
        frame_ids(f, &seq, &idx);
        assert_int_equal(seq, moq_group_sequence(g));
        assert_int_equal(idx, r->read);
        r->frames_seen++;
    }
}

static inline void rfol_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    rfol *r = ctx;
    assert_int_equal(count, moq_group_frame_count(g));
    rfol_drain(r, g);
}

static inline void rfol_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    rfol *r = ctx;
    r->ends++;
    r->state = state;
    r->code = code;
    if (state == MOQ_GROUP_FINISHED) rfol_drain(r, g);
    if (r->close_on_end) {
        moq_follower_close(r->f);
        r->f = NULL;
    }
}

static const moq_follower_ops rfol_ops = {rfol_frames, rfol_end};

static inline void follow(rfol *r, moq_group *g)
{
    memset(r, 0, sizeof(*r));
    r->f = moq_group_follow(g, &rfol_ops, r);
    assert_non_null(r->f);
    rfol_drain(r, g);
}

static inline void rfol_close(rfol *r)
{
    if (r->f) moq_follower_close(r->f);
    r->f = NULL;
}

#endif
