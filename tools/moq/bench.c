/*
 * `moq bench`: many moq-lite sessions in one process on one event loop. Each connection
 * has its own model origin (so its subscriptions go through the relay, never to a
 * neighbour in this process), announces its broadcasts there and dials the relay; the
 * session engine does the protocol work. Publishing is one timer per track; receiving is
 * one model subscription per followed broadcast with one follower per open group, so the
 * work per frame is constant whatever the number of sessions.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/crypto.h>

#include "bench.h"
#include "client/client.h"
#include "model/model.h"
#include "moq/session.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"
#include "util/url.h"

#define KEEP_ALIVE_MS     5000
#define MAX_FRAME         (64u * 1024 * 1024)
#define CACHE_DURATION_US (2 * 1000 * 1000)
#define CACHE_CAPACITY    (4u * 1024 * 1024)
#define RECONNECT_FIRST_S 1.0
#define RECONNECT_MAX_S   8.0
#define SHUTDOWN_GUARD_S  3.0
#define DRAIN_POLL_S      0.01
#define DRAIN_MAX_S       1.0
/* How long a stopping run waits for the groups still in flight. A relay drops a group it
 * could not deliver within its latency limit, 5 s by default: later than that, a missing
 * group is not coming. */
#define SETTLE_POLL_S  0.01
#define SETTLE_MAX_S   6.0
#define REFILL_DELAY_S 0.25
#define NOTFOUND_CODE  13

struct bench;
struct bconn;

/* One published broadcast: a track written on a timer while the relay wants it. */
struct bpub {
    struct bconn *c;
    uint64_t index;
    char *path;
    moq_route *route;
    moq_track *track; /* while the model has it requested from us */
    bool serving;
    moq_group *group; /* the open group */
    uint64_t seq;     /* the group the generator is in */
    uint64_t end;     /* one past the newest group begun on `track` */
    uint64_t pos;     /* next frame within it: 0 = the keyframe */
    uint64_t prev_ts;
    ev_timer tick;
};

struct bsub;

/* A group being received. */
struct bgroup {
    struct bsub *s;
    moq_follower *f;
    uint64_t next; /* next frame index to count */
    bool sample;   /* measure the keyframe's latency */
    struct bgroup *prev, *next_g;
};

/* One subscription slot. */
struct bsub {
    struct bconn *c;
    char *path; /* NULL: the slot is free */
    moq_subscription *sub;
    bool in_subscribe; /* inside moq_origin_subscribe */
    bool aborted;
    bool own_run;   /* a broadcast of this process: its track gets finished when we stop */
    bool finished;  /* the track ended before `final` */
    uint64_t final; /* exclusive */
    bool frozen;    /* stopping: groups above `last` are no longer counted */
    uint64_t last;
    struct bench_gap gap;
    uint64_t groups;
    struct bgroup *open;
};

struct bconn {
    struct bench *b;
    uint64_t index;
    uint64_t n_pubs, n_subs, fps, frame_size, group_size;
    moq_origin *origin;
    moq_dial *dial; /* the attempt or session in progress */
    moq_session *session;
    bool up;
    double backoff_s;
    ev_timer start; /* the ramp, then reconnects */
    struct bpub *pubs;
    struct bsub *subs;
    size_t subs_used;
    moq_watch *watch;
    char own[64];   /* "<run>/<connection>/": our own broadcasts, relative to the namespace */
    bool gathering; /* within the startup window: candidates go to the pool */
    ev_timer gather;
    ev_timer refill; /* a slot came free: pick among what is announced now */
    char **pool;
    size_t pool_len;
    uint64_t eligible;
};

struct bench {
    struct bench_config cfg;
    struct ev_loop *loop;
    struct bench_rng rng;
    uint64_t run_id;
    const char *dial_url; /* what the sessions dial (http:// resolved to a pin) */
    char *resolved_url;   /* owned when dial_url was rewritten */
    moq_tls_client *tls;  /* shared by every dial */
    const char *pin;      /* fetched fingerprint, if any */
    char pin_hex[80];
    struct bconn *conns;
    size_t n_conns;
    size_t dials_live;
    bool settling; /* the run is over: waiting for the groups in flight */
    bool stopping, ever_up, failed;
    bool progress;
    int exit_code;
    FILE *out;
    struct bench_totals t, prev;
    struct bench_hist latency, window; /* the whole run, and since the last report */
    double started, last_report;
    ev_timer report, duration, tick, guard, drain, settle;
    double drain_started, settle_started;
    ev_signal sigint, sigterm;
    moq_http_get *get;
    bool warned_connect;
};

static void bench_stop(struct bench *b);

/* Once the run is over, nothing new starts: no subscription, no reconnect. */
static bool winding_down(const struct bench *b)
{
    return b->settling || b->stopping;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (gnutls_rnd(GNUTLS_RND_NONCE, &v, sizeof(v)) < 0) v = moq_now_ns() ^ (uint64_t)getpid();
    return v;
}

/* ---------------------------------------------------------------- publishing */

static void pub_close_group(struct bpub *p)
{
    if (!p->group) return;
    moq_group_finish(p->group, moq_now_us());
    moq_group_unref(p->group);
    p->group = NULL;
}

static int pub_write(struct bpub *p, bool key)
{
    struct bconn *c = p->c;
    struct bench *b = c->b;
    uint64_t now = moq_now_us(), wus = wall_us();
    struct bench_header h = {
        .connection = c->index,
        .broadcast = p->path,
        .group = p->seq,
        .fps = c->fps,
        .frame_size = c->frame_size,
        .group_size = c->group_size,
        .broadcasts = c->n_pubs,
        .subscribe = c->n_subs,
        .timestamp_us = wus,
    };
    size_t len = key ? bench_header_len(&h, c->frame_size) : c->frame_size;
    uint64_t ts = wus / 1000;
    moq_frame f;
    int rv = moq_frame_alloc(&f, p->prev_ts, ts, len);
    if (rv < 0) return rv;
    uint8_t *dst = f.chunk->data + f.payload_off;
    if (key)
        bench_header_write(&h, c->frame_size, dst);
    else if (len)
        memset(dst, 0, len);
    rv = moq_group_append(p->group, &f, now);
    if (rv < 0) return rv;
    p->prev_ts = ts;
    b->t.frames_sent++;
    b->t.bytes_sent += len;
    return 0;
}

/* Stop producing: finish the open group and the track after the newest group begun, so
 * that subscribers learn which groups are still to come. */
static void pub_finish(struct bpub *p)
{
    ev_timer_stop(p->c->b->loop, &p->tick);
    pub_close_group(p);
    p->serving = false;
    if (!p->track) return;
    int rv = moq_track_finish(p->track, p->route, p->end);
    if (rv < 0)
        moq_debug("bench", "%s: cannot finish the track at %" PRIu64 ": %s", p->path, p->end,
                  moq_strerror(rv));
}

/* One frame time: write the frame at the generator's position when the track is wanted. */
static void pub_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bpub *p = w->data;
    struct bconn *c = p->c;
    bool key = p->pos == 0;
    if (key) pub_close_group(p);
    if (p->serving && p->track && (key || p->group)) {
        int rv = 0;
        if (key) {
            rv = moq_track_begin_group(p->track, p->route, p->seq, moq_now_us(), &p->group);
            if (rv < 0) p->group = NULL;
            if (rv == 0) p->end = p->seq + 1;
            p->prev_ts = 0;
        }
        if (rv == 0) rv = pub_write(p, key);
        if (rv < 0) {
            moq_debug("bench", "%s: cannot write group %" PRIu64 ": %s", p->path, p->seq,
                      moq_strerror(rv));
            if (p->group) {
                moq_group_unref(p->group);
                p->group = NULL;
            }
        }
    }
    if (++p->pos > c->group_size) {
        pub_close_group(p);
        p->pos = 0;
        p->seq++;
    }
}

static bool is_bench_track(moq_track *track)
{
    size_t len;
    const uint8_t *name = moq_track_name(track, &len);
    return len == strlen(BENCH_TRACK) && memcmp(name, BENCH_TRACK, len) == 0;
}

static void track_request(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    struct bpub *p = ctx;
    if (!is_bench_track(track)) {
        moq_track_abort(track, route, NOTFOUND_CODE);
        return;
    }
    p->track = track;
    p->end = p->seq;
    p->serving = !prefs->info_only;
    moq_track_info info;
    moq_track_info_default(&info);
    info.timescale = 1000; /* frame timestamps are wall-clock milliseconds */
    moq_track_set_info(track, route, &info);
    if (winding_down(p->c->b)) pub_finish(p);
}

static void track_update(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    struct bpub *p = ctx;
    if (p->track == track && !winding_down(p->c->b)) p->serving = !prefs->info_only;
}

static void track_release(void *ctx, moq_route *route, moq_track *track)
{
    struct bpub *p = ctx;
    if (p->track != track) return;
    pub_close_group(p);
    p->track = NULL;
    p->serving = false;
}

static const moq_producer_ops pub_ops = {
    .track_request = track_request,
    .track_update = track_update,
    .track_release = track_release,
};

static int pubs_announce(struct bconn *c)
{
    struct bench *b = c->b;
    for (uint64_t i = 0; i < c->n_pubs; i++) {
        struct bpub *p = &c->pubs[i];
        p->c = c;
        p->index = i;
        char path[512];
        int n = snprintf(path, sizeof(path), "%s/%s%" PRIu64, b->cfg.name, c->own, i);
        if (n < 0 || (size_t)n >= sizeof(path) || !(p->path = strdup(path))) return MOQ_ERR_NOMEM;
        int rv = moq_origin_announce(c->origin, (const uint8_t *)p->path, strlen(p->path), NULL, 0,
                                     &pub_ops, p, &p->route);
        if (rv < 0) {
            p->route = NULL;
            return rv;
        }
        b->t.broadcasts++;
        ev_timer_init(&p->tick, pub_tick_cb, 0., 0.);
        p->tick.data = p;
        if (c->fps > 0) {
            /* a random phase, so that tracks of the same rate do not all write at once */
            double period = 1.0 / (double)c->fps;
            double phase = (double)(bench_rng_next(&b->rng) % 1000000) / 1e6;
            ev_timer_set(&p->tick, period * (1.0 + phase), period);
            ev_timer_start(b->loop, &p->tick);
        }
    }
    return 0;
}

static void pubs_release(struct bconn *c)
{
    if (!c->pubs) return;
    for (uint64_t i = 0; i < c->n_pubs; i++) {
        struct bpub *p = &c->pubs[i];
        ev_timer_stop(c->b->loop, &p->tick);
        if (p->route) {
            moq_route_unannounce(p->route); /* may call track_release */
            p->route = NULL;
            c->b->t.broadcasts--;
        }
        if (p->group) {
            moq_group_unref(p->group);
            p->group = NULL;
        }
        free(p->path);
        p->path = NULL;
    }
}

/* ---------------------------------------------------------------- receiving */

static void bgroup_free(struct bgroup *g)
{
    struct bsub *s = g->s;
    if (g->prev)
        g->prev->next_g = g->next_g;
    else
        s->open = g->next_g;
    if (g->next_g) g->next_g->prev = g->prev;
    moq_follower_close(g->f);
    free(g);
}

static void count_frames(struct bgroup *g)
{
    struct bench *b = g->s->c->b;
    moq_group *grp = moq_follower_group(g->f);
    uint64_t first = moq_group_first_frame(grp), count = moq_group_frame_count(grp);
    if (g->next < first) g->next = first;
    for (; g->next < count; g->next++) {
        const moq_frame *f = moq_group_frame(grp, g->next);
        if (!f) break;
        b->t.frames_recv++;
        b->t.bytes_recv += f->payload_len;
        if (g->next != 0 || !g->sample) continue;
        struct bench_header_in h;
        if (bench_header_scan(f->chunk->data + f->payload_off, f->payload_len, &h) < 0) continue;
        uint64_t sent = h.timestamp_ms * 1000; /* 1 ms resolution, as upstream writes it */
        uint64_t now = wall_us();
        bench_hist_add(&b->latency, now > sent ? now - sent : 0);
        bench_hist_add(&b->window, now > sent ? now - sent : 0);
    }
}

static void grp_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    count_frames(ctx);
}

static void grp_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct bgroup *bg = ctx;
    count_frames(bg);
    bgroup_free(bg);
}

static const moq_follower_ops grp_ops = {.on_frames = grp_frames, .on_end = grp_end};

static void on_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    struct bsub *s = ctx;
    struct bench *b = s->c->b;
    uint64_t seq = moq_group_sequence(g);
    if (s->gap.settled || (s->frozen && (!s->gap.started || seq > s->last))) return;
    bench_gap_observe(&s->gap, seq, &b->t);
    struct bgroup *bg = calloc(1, sizeof(*bg));
    if (!bg) return;
    bg->s = s;
    /* The first group of a subscription may be the relay's cached latest one, started long
     * before we asked: its age says nothing about delivery. */
    bg->sample = s->groups++ > 0;
    bg->f = moq_group_follow(g, &grp_ops, bg);
    if (!bg->f) {
        free(bg);
        return;
    }
    bg->next_g = s->open;
    if (s->open) s->open->prev = bg;
    s->open = bg;
    count_frames(bg);
    if (moq_group_state(g, NULL) != MOQ_GROUP_OPEN) bgroup_free(bg);
}

/* A subscription slot came free (the broadcast ended, the session went away, or it was
 * refused): fill it a little later from what is announced then. */
static void schedule_refill(struct bconn *c)
{
    if (winding_down(c->b) || c->gathering || ev_is_active(&c->refill)) return;
    ev_timer_set(&c->refill, REFILL_DELAY_S, 0.);
    ev_timer_start(c->b->loop, &c->refill);
}

static void sub_release(struct bsub *s)
{
    while (s->open)
        bgroup_free(s->open);
    if (s->sub) moq_subscription_close(s->sub);
    s->sub = NULL;
    if (s->path) {
        free(s->path);
        s->path = NULL;
        s->c->subs_used--;
        s->c->b->t.subscriptions--;
    }
}

static void on_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    struct bsub *s = ctx;
    moq_debug("bench", "subscription to %s ended (code %" PRIu64 ")", s->path, code);
    if (s->in_subscribe) {
        s->aborted = true; /* released once moq_origin_subscribe returned */
        return;
    }
    sub_release(s);
    schedule_refill(s->c);
}

static void on_finish(void *ctx, moq_subscription *sub, uint64_t final_seq)
{
    struct bsub *s = ctx;
    s->finished = true;
    s->final = final_seq;
}

static const moq_subscriber_ops sub_ops = {
    .on_group = on_group,
    .on_finish = on_finish,
    .on_abort = on_abort,
};

static bool subscribed_to(const struct bconn *c, const uint8_t *path, size_t len)
{
    for (uint64_t i = 0; i < c->n_subs; i++) {
        const char *p = c->subs[i].path;
        if (p && strlen(p) == len && memcmp(p, path, len) == 0) return true;
    }
    return false;
}

/* A broadcast published by a connection of this process ("<name>/<run>/..."). */
static bool is_own_run(const struct bench *b, const uint8_t *path, size_t len)
{
    char run[32];
    size_t nlen = strlen(b->cfg.name);
    int rlen = snprintf(run, sizeof(run), "%08" PRIx64 "/", b->run_id);
    return len >= nlen + 1 + (size_t)rlen && memcmp(path + nlen + 1, run, (size_t)rlen) == 0;
}

/* Take a free slot for path. */
static void subscribe_to(struct bconn *c, const uint8_t *path, size_t len)
{
    if (c->subs_used >= c->n_subs || subscribed_to(c, path, len)) return;
    struct bsub *s = NULL;
    for (uint64_t i = 0; i < c->n_subs && !s; i++)
        if (!c->subs[i].path) s = &c->subs[i];
    if (!s || !(s->path = strndup((const char *)path, len))) return;
    s->c = c;
    s->gap = (struct bench_gap){0};
    s->groups = 0;
    s->aborted = false;
    s->own_run = is_own_run(c->b, path, len);
    s->finished = s->frozen = false;
    c->subs_used++;
    c->b->t.subscriptions++;
    moq_sub_prefs prefs = {0}; /* upstream's default: unordered, max latency 0 */
    s->in_subscribe = true;
    int rv = moq_origin_subscribe(c->origin, path, len, (const uint8_t *)BENCH_TRACK,
                                  strlen(BENCH_TRACK), 0, &prefs, &sub_ops, s, &s->sub);
    s->in_subscribe = false;
    if (rv < 0) s->sub = NULL;
    if (rv < 0 || s->aborted) {
        sub_release(s);
        schedule_refill(c);
    }
}

/* Reservoir sampling (algorithm R) over the announcements of the startup window, so the
 * subscribers spread over the broadcasts instead of all taking the first ones listed. */
static void pool_offer(struct bconn *c, const uint8_t *path, size_t len)
{
    for (size_t i = 0; i < c->pool_len; i++)
        if (strlen(c->pool[i]) == len && memcmp(c->pool[i], path, len) == 0) return;
    c->eligible++;
    size_t slot = c->pool_len;
    if (c->pool_len >= c->n_subs) {
        uint64_t r = bench_rng_next(&c->b->rng) % c->eligible;
        if (r >= c->n_subs) return;
        slot = (size_t)r;
    }
    char *copy = strndup((const char *)path, len);
    if (!copy) return;
    if (slot == c->pool_len)
        c->pool[c->pool_len++] = copy;
    else {
        free(c->pool[slot]);
        c->pool[slot] = copy;
    }
}

static void pool_clear(struct bconn *c)
{
    for (size_t i = 0; i < c->pool_len; i++)
        free(c->pool[i]);
    c->pool_len = 0;
}

/* One of our own broadcasts (path is the full path). */
static bool is_own(const struct bconn *c, const uint8_t *path, size_t len)
{
    size_t nlen = strlen(c->b->cfg.name), olen = strlen(c->own);
    return len >= nlen + 1 + olen && memcmp(path + nlen + 1, c->own, olen) == 0;
}

static void on_announce(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    struct bconn *c = ctx;
    if (winding_down(c->b) || ev->kind != MOQ_ANNOUNCE_ACTIVE || ev->suffix_len == 0) return;
    if (is_own(c, ev->path, ev->path_len)) return;
    if (c->gathering)
        pool_offer(c, ev->path, ev->path_len);
    else
        subscribe_to(c, ev->path, ev->path_len);
}

static const moq_watch_ops watch_ops = {.on_announce = on_announce};

static void list_cb(void *ctx, const uint8_t *path, size_t len, const uint64_t *hops, size_t nhops)
{
    struct bconn *c = ctx;
    size_t nlen = strlen(c->b->cfg.name);
    if (len > nlen && !is_own(c, path, len) && !subscribed_to(c, path, len))
        pool_offer(c, path, len);
}

static void refill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bconn *c = w->data;
    if (winding_down(c->b) || c->subs_used >= c->n_subs) return;
    pool_clear(c);
    c->eligible = 0;
    const char *name = c->b->cfg.name;
    moq_origin_list(c->origin, (const uint8_t *)name, strlen(name), 0, list_cb, c);
    for (size_t i = 0; i < c->pool_len && !winding_down(c->b); i++)
        subscribe_to(c, (const uint8_t *)c->pool[i], strlen(c->pool[i]));
    pool_clear(c);
}

static void gather_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bconn *c = w->data;
    c->gathering = false;
    for (size_t i = 0; i < c->pool_len && !winding_down(c->b); i++)
        subscribe_to(c, (const uint8_t *)c->pool[i], strlen(c->pool[i]));
    pool_clear(c);
}

/* ---------------------------------------------------------------- connections */

static void conn_dial(struct bconn *c);

static void conn_start_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bconn *c = w->data;
    if (!winding_down(c->b)) conn_dial(c);
}

static void on_connected(void *ctx, moq_dial *d, moq_session *s)
{
    struct bconn *c = ctx;
    struct bench *b = c->b;
    c->session = s;
    c->up = true;
    c->backoff_s = RECONNECT_FIRST_S;
    b->ever_up = true;
    b->t.connections++;
    if (c->n_subs && !c->watch) {
        c->gathering = b->cfg.startup_ms > 0;
        if (c->gathering) {
            ev_timer_set(&c->gather, (double)b->cfg.startup_ms / 1000.0, 0.);
            ev_timer_start(b->loop, &c->gather);
        }
        int rv = moq_origin_watch(c->origin, (const uint8_t *)b->cfg.name, strlen(b->cfg.name), 0,
                                  &watch_ops, c, &c->watch);
        if (rv < 0) c->watch = NULL;
    }
}

static void on_closed(void *ctx, moq_dial *d, int err, uint64_t code, const char *reason)
{
    struct bconn *c = ctx;
    struct bench *b = c->b;
    c->dial = NULL;
    c->session = NULL;
    b->dials_live--;
    if (c->up) {
        c->up = false;
        b->t.connections--;
        if (!winding_down(b))
            moq_warn("bench", "connection %" PRIu64 " ended: %s (code %" PRIu64 ")", c->index,
                     reason && reason[0] ? reason : "closed", code);
    } else if (err != MOQ_ERR_CLOSED || !winding_down(b)) {
        b->t.connect_failures++;
        if (!b->warned_connect) {
            b->warned_connect = true;
            moq_warn("bench", "cannot connect to %s: %s", b->cfg.url, reason);
        } else {
            moq_debug("bench", "connection %" PRIu64 ": %s", c->index, reason);
        }
    }
    if (b->stopping) {
        if (b->dials_live == 0) ev_break(b->loop, EVBREAK_ALL);
        return;
    }
    if (b->settling) return;
    ev_timer_set(&c->start, c->backoff_s, 0.);
    ev_timer_start(b->loop, &c->start);
    c->backoff_s = c->backoff_s * 2 < RECONNECT_MAX_S ? c->backoff_s * 2 : RECONNECT_MAX_S;
}

static void conn_dial(struct bconn *c)
{
    struct bench *b = c->b;
    const char *everything = b->cfg.name;
    struct moq_dial_config dc = {
        .url = b->dial_url,
        .tls_client = b->tls,
        .versions = b->cfg.version ? &b->cfg.version : NULL,
        .n_versions = b->cfg.version ? 1 : 0,
        .raw_quic = b->cfg.raw_quic,
        .timeout_ms = b->cfg.timeout_ms,
        .transport = {.keep_alive_ms = KEEP_ALIVE_MS},
        .origin = c->origin,
        /* the relay may announce into us what we may follow, and read what we publish */
        .publish = c->n_subs ? &everything : NULL,
        .n_publish = c->n_subs ? 1 : 0,
        .subscribe = &everything,
        .n_subscribe = 1,
        .max_frame_bytes = MAX_FRAME,
        .connected = on_connected,
        .closed = on_closed,
        .ctx = c,
    };
    char err[512] = "";
    int rv = moq_dial_start(b->loop, &dc, &c->dial, err, sizeof(err));
    if (rv < 0) {
        c->dial = NULL;
        b->t.connect_failures++;
        if (!b->warned_connect) {
            b->warned_connect = true;
            moq_warn("bench", "cannot connect to %s: %s", b->cfg.url, err);
        }
        ev_timer_set(&c->start, c->backoff_s, 0.);
        ev_timer_start(b->loop, &c->start);
        c->backoff_s = c->backoff_s * 2 < RECONNECT_MAX_S ? c->backoff_s * 2 : RECONNECT_MAX_S;
        return;
    }
    b->dials_live++;
}

static int conn_setup(struct bench *b, struct bconn *c, uint64_t index)
{
    c->b = b;
    c->index = index;
    c->n_pubs = bench_range_roll(&b->cfg.broadcasts, &b->rng);
    c->n_subs = bench_range_roll(&b->cfg.subscribe, &b->rng);
    c->fps = bench_range_roll(&b->cfg.fps, &b->rng);
    c->frame_size = bench_range_roll(&b->cfg.frame_size, &b->rng);
    c->group_size = bench_range_roll(&b->cfg.group_size, &b->rng);
    c->backoff_s = RECONNECT_FIRST_S;
    snprintf(c->own, sizeof(c->own), "%08" PRIx64 "/%" PRIu64 "/", b->run_id, index);
    ev_timer_init(&c->start, conn_start_cb, 0., 0.);
    c->start.data = c;
    ev_timer_init(&c->gather, gather_cb, 0., 0.);
    c->gather.data = c;
    ev_timer_init(&c->refill, refill_cb, 0., 0.);
    c->refill.data = c;
    if (c->frame_size > MAX_FRAME) return MOQ_ERR_TOO_LARGE;
    moq_origin_config oc;
    moq_origin_config_default(&oc);
    do
        oc.id = random_u64() & ((1ull << 53) - 1);
    while (oc.id == 0);
    oc.linger_us = 0;
    oc.cache_duration_us = CACHE_DURATION_US;
    oc.cache_capacity = CACHE_CAPACITY;
    oc.max_frame_bytes = MAX_FRAME;
    /* A connection that only subscribes counts each frame as it arrives and never reads it
     * again: its groups keep only their newest frame, so a thousand subscribers do not hold
     * a thousand copies of every group. */
    if (c->n_pubs == 0) oc.max_group_bytes = 1;
    if (!(c->origin = moq_origin_new(&oc))) return MOQ_ERR_NOMEM;
    c->pubs = calloc(c->n_pubs ? c->n_pubs : 1, sizeof(*c->pubs));
    c->subs = calloc(c->n_subs ? c->n_subs : 1, sizeof(*c->subs));
    c->pool = calloc(c->n_subs ? c->n_subs : 1, sizeof(*c->pool));
    if (!c->pubs || !c->subs || !c->pool) return MOQ_ERR_NOMEM;
    for (uint64_t i = 0; i < c->n_subs; i++)
        c->subs[i].c = c;
    return pubs_announce(c);
}

/* Everything of the connection that lives in its origin (the dial is closed separately). */
static void conn_release(struct bconn *c)
{
    if (!c->b) return; /* never set up */
    struct ev_loop *loop = c->b->loop;
    ev_timer_stop(loop, &c->start);
    ev_timer_stop(loop, &c->gather);
    ev_timer_stop(loop, &c->refill);
    if (c->subs)
        for (uint64_t i = 0; i < c->n_subs; i++)
            sub_release(&c->subs[i]);
    if (c->watch) moq_watch_close(c->watch);
    c->watch = NULL;
    pubs_release(c);
    if (c->pool) pool_clear(c);
}

static void conn_free(struct bconn *c)
{
    moq_origin_free(c->origin);
    free(c->pubs);
    free(c->subs);
    free(c->pool);
}

/* ---------------------------------------------------------------- reports */

static void print_progress(struct bench *b, double secs)
{
    double send = secs > 0 ? (double)(b->t.bytes_sent - b->prev.bytes_sent) * 8 / secs / 1e6 : 0;
    double recv = secs > 0 ? (double)(b->t.bytes_recv - b->prev.bytes_recv) * 8 / secs / 1e6 : 0;
    fprintf(stderr,
            "\r\033[Kmoq bench: %" PRIu64 "/%" PRIu64 " sessions up, send %.1f Mbps, recv %.1f "
            "Mbps, %" PRIu64 " groups, %" PRIu64 " lost, p99 %.1f ms",
            b->t.connections, b->t.target_connections, send, recv, b->t.groups_recv,
            bench_lost_groups(&b->t), (double)bench_hist_percentile(&b->latency, 99) / 1000.0);
    fflush(stderr);
}

static void emit_report(struct bench *b, bool final)
{
    double now = ev_time();
    double secs = now - b->last_report;
    /* the final line's rates are averages over the whole run */
    struct bench_totals zero = {0};
    char line[2048];
    size_t n =
        bench_report_format(line, sizeof(line), moq_wall_ms(), &b->t, final ? &zero : &b->prev,
                            final ? now - b->started : secs, &b->latency, &b->window, final);
    if (b->out) {
        if (fprintf(b->out, "%.*s\n", (int)n, line) < 0 || fflush(b->out) != 0) {
            fprintf(stderr, "moq bench: cannot write %s: %s\n", b->cfg.output, strerror(errno));
            b->failed = true;
            bench_stop(b);
        }
    }
    if (b->progress) {
        print_progress(b, secs);
        if (final) fputc('\n', stderr);
    }
    if (final) {
        printf("%.*s\n", (int)n, line);
        fflush(stdout);
    }
    b->prev = b->t;
    b->last_report = now;
    memset(&b->window, 0, sizeof(b->window));
}

static void report_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    emit_report(w->data, false);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bench *b = w->data;
    uint64_t now = moq_now_us();
    for (size_t i = 0; i < b->n_conns; i++)
        if (b->conns[i].origin) moq_origin_tick(b->conns[i].origin, now);
}

/* ---------------------------------------------------------------- stopping */

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* ---- settling: the groups in flight when the run ends */

/* Whether a subscription has all it can still count. One to a broadcast of this process
 * waits for the track's end and every group below it; one to a broadcast of another
 * process (which keeps publishing) waits for every group up to the newest it had when the
 * run stopped. */
static bool sub_settled(const struct bsub *s)
{
    if (!s->path) return true; /* free, or ended */
    if (!s->own_run) return bench_gap_complete(&s->gap, s->last);
    if (!s->finished || s->open) return false;
    return s->final == 0 || bench_gap_complete(&s->gap, s->final - 1);
}

/* Groups below the newest that have not arrived (yet). */
static uint64_t sub_missing(const struct bsub *s)
{
    if (!s->path || !s->gap.started) return 0;
    uint64_t span = s->gap.max - s->gap.min + 1;
    return span > s->gap.seen ? span - s->gap.seen : 0;
}

static void sub_freeze(struct bsub *s)
{
    if (s->own_run) return;
    s->frozen = true;
    s->last = s->gap.max;
}

/* The final group a subscription could count: its track's last one, or the newest. */
static void sub_settle(struct bsub *s, struct bench_totals *t)
{
    if (!s->path) return;
    uint64_t last = s->gap.max;
    if (s->frozen)
        last = s->last;
    else if (s->finished && s->final > 0)
        last = s->final - 1;
    bench_gap_settle(&s->gap, last, t);
}

static size_t subs_unsettled(const struct bench *b, uint64_t *missing)
{
    size_t n = 0;
    *missing = 0;
    for (size_t i = 0; i < b->n_conns; i++) {
        const struct bconn *c = &b->conns[i];
        for (uint64_t j = 0; c->subs && j < c->n_subs; j++) {
            if (sub_settled(&c->subs[j])) continue;
            n++;
            *missing += sub_missing(&c->subs[j]);
        }
    }
    return n;
}

static void bench_close(struct bench *b);

/* Every subscription settled or the time is up: count what never came as lost, report. */
static void settle_end(struct bench *b)
{
    ev_timer_stop(b->loop, &b->settle);
    uint64_t missing;
    size_t left = subs_unsettled(b, &missing);
    double waited = ev_time() - b->settle_started;
    if (left)
        moq_warn("bench",
                 "%zu subscriptions still lacked groups after %.1f s; %" PRIu64
                 " groups below the newest count as lost",
                 left, waited, missing);
    else
        moq_info("bench", "every group in flight arrived within %.0f ms", waited * 1000);
    for (size_t i = 0; i < b->n_conns; i++)
        for (uint64_t j = 0; b->conns[i].subs && j < b->conns[i].n_subs; j++)
            sub_settle(&b->conns[i].subs[j], &b->t);
    bench_close(b);
}

static void settle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bench *b = w->data;
    uint64_t missing;
    if (subs_unsettled(b, &missing) == 0 || ev_time() - b->settle_started > SETTLE_MAX_S)
        settle_end(b);
}

/* The run is over (duration, signal): publishers finish their tracks and nothing new
 * starts, while the subscriptions receive what is in flight; the final report waits for
 * them (settle_end). A second signal, or a failure, does not wait. */
static void bench_stop(struct bench *b)
{
    if (b->stopping) return;
    if (b->settling || b->failed) {
        settle_end(b);
        return;
    }
    b->settling = true;
    b->settle_started = ev_time();
    ev_timer_stop(b->loop, &b->duration);
    if (b->get) { /* nothing started yet */
        moq_http_get_cancel(b->get);
        b->get = NULL;
    }
    for (size_t i = 0; i < b->n_conns; i++) {
        struct bconn *c = &b->conns[i];
        if (!c->b) continue; /* never set up */
        ev_timer_stop(b->loop, &c->start);
        ev_timer_stop(b->loop, &c->gather);
        ev_timer_stop(b->loop, &c->refill);
        for (uint64_t j = 0; c->pubs && j < c->n_pubs; j++)
            pub_finish(&c->pubs[j]);
        for (uint64_t j = 0; c->subs && j < c->n_subs; j++)
            sub_freeze(&c->subs[j]);
    }
    uint64_t missing;
    size_t left = subs_unsettled(b, &missing);
    if (left)
        moq_info("bench",
                 "stopping: waiting for %zu subscriptions (%" PRIu64
                 " groups below the newest not arrived yet)",
                 left, missing);
    ev_timer_start(b->loop, &b->settle);
}

/* Report, then close every session; the loop ends once all have closed (or the guard). */
static void bench_close(struct bench *b)
{
    b->settling = false;
    b->stopping = true;
    emit_report(b, true);
    ev_timer_stop(b->loop, &b->settle);
    ev_timer_stop(b->loop, &b->report);
    ev_timer_stop(b->loop, &b->duration);
    ev_timer_stop(b->loop, &b->tick);
    ev_signal_stop(b->loop, &b->sigint);
    ev_signal_stop(b->loop, &b->sigterm);
    if (b->get) {
        moq_http_get_cancel(b->get);
        b->get = NULL;
    }
    for (size_t i = 0; i < b->n_conns; i++)
        conn_release(&b->conns[i]);
    /* let the unannouncements reach the relay before the sessions close, so it does not
     * keep our broadcasts lingering for the next run */
    b->drain_started = ev_time();
    ev_timer_start(b->loop, &b->drain);
}

static void close_all(struct bench *b)
{
    ev_timer_stop(b->loop, &b->drain);
    for (size_t i = 0; i < b->n_conns; i++)
        if (b->conns[i].dial) moq_dial_close(b->conns[i].dial, 0, "bench over");
    if (b->dials_live == 0) {
        ev_break(b->loop, EVBREAK_ALL);
        return;
    }
    ev_timer_start(b->loop, &b->guard);
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct bench *b = w->data;
    bool pending = false;
    for (size_t i = 0; i < b->n_conns && !pending; i++)
        pending = b->conns[i].session && moq_session_unacked_streams(b->conns[i].session) > 0;
    if (!pending || ev_time() - b->drain_started > DRAIN_MAX_S) close_all(b);
}

static void duration_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    bench_stop(w->data);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    bench_stop(w->data);
}

/* ---------------------------------------------------------------- starting */

/* Connections start evenly spread over the startup window. */
static void start_ramp(struct bench *b)
{
    double startup = (double)b->cfg.startup_ms / 1000.0;
    for (size_t i = 0; i < b->n_conns; i++) {
        struct bconn *c = &b->conns[i];
        double delay = b->n_conns > 1 ? startup * (double)i / (double)b->n_conns : 0;
        ev_timer_set(&c->start, delay, 0.);
        ev_timer_start(b->loop, &c->start);
    }
    ev_timer_start(b->loop, &b->report);
    if (b->cfg.duration_ms) ev_timer_start(b->loop, &b->duration);
}

static int make_tls(struct bench *b)
{
    char *fps[BENCH_MAX_LIST + 1];
    size_t nfp = 0;
    if (b->pin) {
        fps[nfp++] = (char *)b->pin;
    } else {
        for (size_t i = 0; i < b->cfg.n_fingerprints; i++)
            fps[nfp++] = b->cfg.fingerprints[i];
    }
    moq_tls_client_config tc = {
        .disable_verify = b->pin ? false : b->cfg.disable_verify,
        .roots = b->pin ? NULL : (const char *const *)b->cfg.roots,
        .n_roots = b->pin ? 0 : b->cfg.n_roots,
        .fingerprints = (const char *const *)fps,
        .n_fingerprints = nfp,
    };
    char err[256] = "";
    int rv = moq_tls_client_new(&tc, &b->tls, err, sizeof(err));
    if (rv < 0) fprintf(stderr, "moq bench: %s\n", err[0] ? err : moq_strerror(rv));
    return rv;
}

/* http:// URLs: fetch the certificate's fingerprint once for every session, then dial
 * https:// (or moql:// with --raw-quic) with that pin. */
static void fingerprint_done(void *ctx, int err, int status, const uint8_t *body, size_t len,
                             const char *reason)
{
    struct bench *b = ctx;
    b->get = NULL;
    size_t n = 0;
    for (size_t i = 0; err == 0 && status == 200 && i < len && n + 1 < sizeof(b->pin_hex); i++)
        if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t')
            b->pin_hex[n++] = (char)body[i];
    b->pin_hex[n] = '\0';
    uint8_t raw[MOQ_TLS_FINGERPRINT_LEN];
    if (err < 0 || status != 200 || moq_tls_fingerprint_parse(b->pin_hex, raw) < 0) {
        if (err < 0)
            fprintf(stderr, "moq bench: fetching the certificate fingerprint: %s\n", reason);
        else
            fprintf(stderr, "moq bench: %s/certificate.sha256 gave no SHA-256 fingerprint\n",
                    b->cfg.url);
        b->failed = true;
        bench_stop(b);
        return;
    }
    b->pin = b->pin_hex;
    if (make_tls(b) < 0) {
        b->failed = true;
        bench_stop(b);
        return;
    }
    start_ramp(b);
}

static int resolve_url(struct bench *b)
{
    moq_url u;
    if (moq_url_parse(b->cfg.url, &u) < 0) {
        fprintf(stderr, "moq bench: invalid URL '%s'\n", b->cfg.url);
        return -1;
    }
    int rv = 0;
    b->dial_url = b->cfg.url;
    if (strcmp(u.scheme, "http") == 0) {
        size_t n = strlen(b->cfg.url) + 8;
        b->resolved_url = malloc(n);
        if (!b->resolved_url) rv = -1;
        if (rv == 0) {
            snprintf(b->resolved_url, n, "%s%s", b->cfg.raw_quic ? "moql" : "https",
                     b->cfg.url + strlen("http"));
            b->dial_url = b->resolved_url;
            struct moq_http_get_config gc = {
                .host = u.host,
                .port = u.port,
                .target = "/certificate.sha256",
                .timeout_ms = b->cfg.timeout_ms,
                .max_body = 1024,
            };
            rv = moq_http_get_start(b->loop, &gc, fingerprint_done, b, &b->get);
            if (rv < 0) {
                b->get = NULL;
                fprintf(stderr, "moq bench: cannot fetch http://%s:%s/certificate.sha256: %s\n",
                        u.host, u.port, moq_strerror(rv));
            }
        }
    } else {
        rv = make_tls(b);
        if (rv == 0) start_ramp(b);
    }
    moq_url_free(&u);
    return rv < 0 ? -1 : 0;
}

static void raise_fd_limit(size_t sessions)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* each session holds one socket (a few more while connecting) */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < sessions + 64)
        moq_warn("bench", "the open file limit (%llu) is low for %zu sessions",
                 (unsigned long long)rl.rlim_cur, sessions);
}

static int finish(struct bench *b)
{
    if (b->failed) return 1;
    if (!b->ever_up) {
        fprintf(stderr, "moq bench: no session could be established\n");
        return 1;
    }
    char msg[256];
    int code = bench_verdict(&b->cfg, &b->t, &b->latency, msg, sizeof(msg));
    if (code) fprintf(stderr, "moq bench: %s\n", msg);
    return code;
}

int bench_main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof(*b));
    if (!b) return 1;
    int rv = bench_config_load(&b->cfg, argc, argv);
    if (rv != 0) {
        bench_config_free(&b->cfg);
        free(b);
        return rv == 1 ? 0 : 2;
    }
    const char *level = b->cfg.log_level ? b->cfg.log_level : "warn";
    moq_log_set_level((enum moq_log_level)moq_log_level_parse(level));
    const char *env = getenv("MOQ_LOG");
    if (!env || !*env) env = getenv("RUST_LOG");
    if (env && *env) moq_log_configure(env);

    signal(SIGPIPE, SIG_IGN);
    b->loop = ev_default_loop(EVFLAG_AUTO);
    b->rng.state = random_u64();
    b->run_id = bench_rng_next(&b->rng) & 0xffffffffu;
    b->n_conns = (size_t)bench_range_roll(&b->cfg.connections, &b->rng);
    if (b->n_conns == 0) b->n_conns = 1;
    b->t.target_connections = b->n_conns;
    b->progress = !b->cfg.quiet && isatty(STDERR_FILENO);
    raise_fd_limit(b->n_conns);
    int code = 1;
    if (b->cfg.output && !(b->out = fopen(b->cfg.output, "w"))) {
        fprintf(stderr, "moq bench: cannot write %s: %s\n", b->cfg.output, strerror(errno));
        goto out;
    }
    b->conns = calloc(b->n_conns, sizeof(*b->conns));
    if (!b->conns) goto out;
    for (size_t i = 0; i < b->n_conns; i++) {
        rv = conn_setup(b, &b->conns[i], i);
        if (rv < 0) {
            fprintf(stderr, "moq bench: cannot set up connection %zu: %s\n", i, moq_strerror(rv));
            goto out;
        }
    }
    double report = (double)b->cfg.report_ms / 1000.0;
    ev_timer_init(&b->report, report_cb, report, report);
    ev_timer_init(&b->duration, duration_cb, (double)b->cfg.duration_ms / 1000.0, 0.);
    ev_timer_init(&b->tick, tick_cb, 1., 1.);
    ev_timer_init(&b->guard, guard_cb, SHUTDOWN_GUARD_S, 0.);
    ev_timer_init(&b->drain, drain_cb, DRAIN_POLL_S, DRAIN_POLL_S);
    ev_timer_init(&b->settle, settle_cb, 0., SETTLE_POLL_S);
    ev_signal_init(&b->sigint, signal_cb, SIGINT);
    ev_signal_init(&b->sigterm, signal_cb, SIGTERM);
    b->report.data = b->duration.data = b->tick.data = b->guard.data = b->drain.data = b;
    b->settle.data = b;
    b->sigint.data = b->sigterm.data = b;
    b->started = b->last_report = ev_time();
    if (resolve_url(b) < 0) goto out;
    ev_timer_start(b->loop, &b->tick);
    ev_signal_start(b->loop, &b->sigint);
    ev_signal_start(b->loop, &b->sigterm);
    ev_run(b->loop, 0);
    code = finish(b);
out:
    if (b->get) moq_http_get_cancel(b->get);
    if (b->conns) {
        for (size_t i = 0; i < b->n_conns; i++)
            conn_release(&b->conns[i]);
        for (size_t i = 0; i < b->n_conns; i++)
            conn_free(&b->conns[i]);
    }
    free(b->conns);
    if (b->out) fclose(b->out);
    moq_tls_client_free(b->tls);
    free(b->resolved_url);
    bench_config_free(&b->cfg);
    free(b);
    return code;
}
