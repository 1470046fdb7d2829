/*
 * `moq publish` and `moq clock publish`: a broadcast announced in the local origin whose
 * tracks are produced here. The relay reaches them through the session (it subscribes; the
 * model asks this producer for the track); frames are written into model groups with the
 * engine's frame layout (moq_frame_alloc).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "tool.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define READ_CHUNK        (64 * 1024)
#define MAX_FRAME         (32u * 1024 * 1024)
#define DELIVERY_POLL_S   0.01
#define DELIVERY_MAX_S    10.0
#define MOQ_CODE_NOTFOUND 13

struct pub;

struct pub_track {
    struct pub *p;
    char *name;
    char *file; /* NULL = stdin */
    int fd;
    ev_io io;
    bool io_started;
    bool eof;
    bool done; /* the track is finished */
    uint8_t *buf;
    size_t off, len, cap; /* unparsed input is buf[off .. len) */
    moq_track *track;     /* while the model has it requested from us */
    bool serving;         /* requested for data (not just its info) */
    moq_group *group;     /* the open group (it stays open while the track is released) */
    uint64_t in_group;    /* frames in it */
    uint64_t next_seq;
    uint64_t groups; /* groups begun */
    uint64_t prev_ts;
    uint64_t frames;
    bool exists_skip; /* clock: the current minute's group is already cached */
};

struct pub {
    struct tool *t;
    moq_route *route;
    struct pub_track tracks[TOOL_MAX_LIST];
    size_t n;
    size_t n_done;
    bool clock;
    ev_periodic clock_tick;
    struct clock_state clock_st;
    uint64_t clock_minute; /* minute of the open group */
    ev_timer delivery;     /* all tracks done: wait until the relay has everything */
    double delivery_started;
    bool winding_down;
};

/* ---------------------------------------------------------------- writing frames */

static void close_group(struct pub_track *pt)
{
    if (!pt->group) return;
    moq_group_finish(pt->group, moq_now_us());
    moq_group_unref(pt->group);
    pt->group = NULL;
    pt->in_group = 0;
}

/* Append one frame stamped ts (wall-clock milliseconds), opening a group when none is open.
 * Returns 0 or an error. */
static int write_frame(struct pub_track *pt, const uint8_t *data, size_t len, uint64_t group_frames,
                       uint64_t ts)
{
    struct pub *p = pt->p;
    uint64_t now = moq_now_us();
    if (!pt->group) {
        int rv = moq_track_begin_group(pt->track, p->route, pt->next_seq, now, &pt->group);
        if (rv < 0) {
            pt->group = NULL;
            return rv;
        }
        pt->next_seq++;
        pt->groups++;
        pt->prev_ts = 0;
        pt->in_group = 0;
    }
    moq_frame f;
    int rv = moq_frame_alloc(&f, pt->prev_ts, ts, len);
    if (rv < 0) return rv;
    if (len) memcpy(f.chunk->data + f.payload_off, data, len);
    rv = moq_group_append(pt->group, &f, now);
    if (rv < 0) return rv;
    pt->prev_ts = ts;
    pt->in_group++;
    pt->frames++;
    if (group_frames && pt->in_group >= group_frames) close_group(pt);
    return 0;
}

/* ---------------------------------------------------------------- winding down */

static void delivery_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct pub *p = w->data;
    struct tool *t = p->t;
    double now = ev_now(loop);
    if (p->delivery_started == 0) p->delivery_started = now;
    if (t->session && moq_session_unacked_streams(t->session) > 0 &&
        now - p->delivery_started < DELIVERY_MAX_S)
        return;
    ev_timer_stop(loop, &p->delivery);
    if (p->route) {
        moq_info("moq", "unannouncing %s", t->o->broadcast);
        moq_route_unannounce(p->route);
        p->route = NULL;
    }
    tool_finish(t, 0, true);
}

/* Every track is finished: let the relay receive everything, then unannounce and close. */
static void wind_down(struct pub *p)
{
    if (p->winding_down) return;
    p->winding_down = true;
    if (!p->t->session) {
        tool_finish(p->t, 0, false);
        return;
    }
    p->delivery_started = 0;
    ev_timer_start(p->t->loop, &p->delivery);
}

/* Input held while no subscriber wants the track. */
#define HOLD_LIMIT (1024 * 1024)

static void stop_reading(struct pub_track *pt)
{
    if (pt->io_started) {
        ev_io_stop(pt->p->t->loop, &pt->io);
        pt->io_started = false;
    }
}

static void finish_track(struct pub_track *pt)
{
    if (pt->done) return;
    struct pub *p = pt->p;
    pt->done = true;
    stop_reading(pt);
    close_group(pt);
    if (pt->track) moq_track_finish(pt->track, p->route, pt->next_seq);
    moq_info("moq", "track %s finished: %llu frames in %llu groups", pt->name,
             (unsigned long long)pt->frames, (unsigned long long)pt->groups);
    if (++p->n_done == p->n) wind_down(p);
}

/* ---------------------------------------------------------------- input parsing */

static void fail_track(struct pub_track *pt, const char *what)
{
    stop_reading(pt);
    tool_fail(pt->p->t, "track %s: %s", pt->name, what);
}

/* Take the next complete frame from the buffer. 1 = got one, 0 = need more, -1 = failed. */
static int next_frame(struct pub_track *pt, const uint8_t **data, size_t *len)
{
    size_t avail = pt->len - pt->off;
    if (avail == 0) return 0; /* (no buffer yet) */
    const uint8_t *b = pt->buf + pt->off;
    if (pt->p->t->o->framing == FRAMING_LENGTH) {
        if (avail < 4) {
            if (pt->eof && avail) {
                fail_track(pt, "input ends inside a frame length");
                return -1;
            }
            return 0;
        }
        uint64_t n = ((uint64_t)b[0] << 24) | ((uint64_t)b[1] << 16) | ((uint64_t)b[2] << 8) | b[3];
        if (n > MAX_FRAME) {
            char msg[96];
            snprintf(msg, sizeof(msg), "a frame of %llu bytes is larger than 32 MiB",
                     (unsigned long long)n);
            fail_track(pt, msg);
            return -1;
        }
        if (avail - 4 < n) {
            if (pt->eof) {
                fail_track(pt, "input ends inside a frame");
                return -1;
            }
            return 0;
        }
        *data = b + 4;
        *len = (size_t)n;
        pt->off += 4 + (size_t)n;
        return 1;
    }
    if (avail == 0) return 0;
    const uint8_t *nl = memchr(b, '\n', avail);
    if (!nl) {
        if (avail > MAX_FRAME) {
            fail_track(pt, "a line is longer than 32 MiB");
            return -1;
        }
        if (!pt->eof || avail == 0) return 0;
        *data = b; /* the last line has no newline */
        *len = avail;
        pt->off += avail;
        return 1;
    }
    *data = b;
    *len = (size_t)(nl - b);
    pt->off += *len + 1;
    return 1;
}

static void process_input(struct pub_track *pt)
{
    struct tool *t = pt->p->t;
    while (pt->serving && pt->track && !pt->done && !t->stopping) {
        const uint8_t *data;
        size_t len;
        int rv = next_frame(pt, &data, &len);
        if (rv < 0) return;
        if (rv == 0) break;
        rv = write_frame(pt, data, len, t->o->group_frames, moq_wall_ms());
        if (rv < 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "cannot write a frame: %s", moq_strerror(rv));
            fail_track(pt, msg);
            return;
        }
    }
    if (pt->off == pt->len) {
        pt->off = pt->len = 0;
    } else if (pt->off > 0 && pt->off >= pt->cap / 2) {
        memmove(pt->buf, pt->buf + pt->off, pt->len - pt->off);
        pt->len -= pt->off;
        pt->off = 0;
    }
    if (pt->eof && pt->off == pt->len && pt->track && !pt->done) finish_track(pt);
}

static int read_more(struct pub_track *pt)
{
    if (pt->cap - pt->len < READ_CHUNK) {
        size_t cap = pt->cap ? pt->cap * 2 : 2 * READ_CHUNK;
        while (cap - pt->len < READ_CHUNK)
            cap *= 2;
        uint8_t *nb = realloc(pt->buf, cap);
        if (!nb) return MOQ_ERR_NOMEM;
        pt->buf = nb;
        pt->cap = cap;
    }
    ssize_t n = read(pt->fd, pt->buf + pt->len, READ_CHUNK);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : MOQ_ERR_IO;
    if (n == 0)
        pt->eof = true;
    else
        pt->len += (size_t)n;
    return 0;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct pub_track *pt = w->data;
    if (pt->done) {
        stop_reading(pt);
        return;
    }
    if (!pt->serving || !pt->track) {
        /* Nobody wants the track: hold input (bounded) for the next subscriber, but notice
         * the end of input so the publisher can finish. */
        if ((revents & EV_READ) && !pt->eof && pt->len - pt->off < HOLD_LIMIT &&
            read_more(pt) < 0) {
            fail_track(pt, "reading input failed");
            return;
        }
        /* input that ended with nothing left to deliver finishes the track; held frames
         * wait for a subscriber */
        if (pt->eof && pt->off == pt->len)
            finish_track(pt);
        else if (pt->eof || pt->len - pt->off >= HOLD_LIMIT)
            stop_reading(pt);
        return;
    }
    if ((revents & EV_READ) && !pt->eof) {
        int rv = read_more(pt);
        if (rv < 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "reading %s: %s", pt->file ? pt->file : "stdin",
                     strerror(errno));
            fail_track(pt, msg);
            return;
        }
    }
    process_input(pt);
    if (pt->eof) stop_reading(pt);
}

/* Read (again) while the track is wanted; buffered input goes first. */
static void update_reading(struct pub_track *pt)
{
    struct ev_loop *loop = pt->p->t->loop;
    if (pt->done || pt->p->clock) {
        stop_reading(pt);
        return;
    }
    bool serving = pt->serving && pt->track;
    if (!serving) {
        /* keep watching for the end of input while there is room to hold what arrives */
        if (!pt->eof && !pt->io_started && pt->len - pt->off < HOLD_LIMIT) {
            ev_io_start(loop, &pt->io);
            pt->io_started = true;
        }
        return;
    }
    if (!pt->eof && !pt->io_started) {
        ev_io_start(loop, &pt->io);
        pt->io_started = true;
    }
    /* process buffered input (or the end of input) from the loop, not from the model */
    ev_feed_event(loop, &pt->io, EV_CUSTOM);
}

/* ---------------------------------------------------------------- the clock */

/* Write the second that contains now_ms (read just before), stamped with that reading. */
static void clock_write(struct pub_track *pt, uint64_t now_ms)
{
    struct pub *p = pt->p;
    if (!pt->serving || !pt->track || pt->done) return;
    struct clock_frame cf;
    if (!clock_frame_at(&p->clock_st, now_ms, &cf)) return; /* this second is written */
    if (pt->group && cf.minute != p->clock_minute) close_group(pt);
    if (pt->exists_skip && cf.minute != p->clock_minute) pt->exists_skip = false;
    if (pt->exists_skip) return;
    if (!pt->group) {
        pt->next_seq = cf.group;
        p->clock_minute = cf.minute;
        int rv = write_frame(pt, (const uint8_t *)cf.base, strlen(cf.base), 0, cf.ts_ms);
        if (rv == MOQ_ERR_EXISTS) {
            pt->exists_skip = true; /* this minute is cached already; start with the next */
            return;
        }
        if (rv < 0) {
            tool_fail(p->t, "cannot write the clock: %s", moq_strerror(rv));
            return;
        }
    }
    int rv = write_frame(pt, (const uint8_t *)cf.text, strlen(cf.text), 0, cf.ts_ms);
    if (rv < 0) {
        tool_fail(p->t, "cannot write the clock: %s", moq_strerror(rv));
        return;
    }
    clock_state_written(&p->clock_st, &cf);
}

/* Fires on each second boundary; the frame names the time read now, not the boundary. */
static void clock_cb(struct ev_loop *loop, ev_periodic *w, int revents)
{
    struct pub *p = w->data;
    clock_write(&p->tracks[0], moq_wall_ms());
}

/* ---------------------------------------------------------------- producer */

static struct pub_track *find_track(struct pub *p, moq_track *track)
{
    size_t len;
    const uint8_t *name = moq_track_name(track, &len);
    for (size_t i = 0; i < p->n; i++) {
        if (strlen(p->tracks[i].name) == len && memcmp(p->tracks[i].name, name, len) == 0)
            return &p->tracks[i];
    }
    return NULL;
}

static void set_serving(struct pub_track *pt, const moq_sub_prefs *prefs)
{
    bool was = pt->serving;
    pt->serving = !prefs->info_only;
    if (pt->serving && !was) moq_info("moq", "track %s requested by the relay", pt->name);
    if (pt->p->clock) {
        if (pt->serving && !was) clock_write(pt, moq_wall_ms());
        return;
    }
    update_reading(pt);
}

/* Whether g is still the track's group of its sequence: the model keeps a track and its
 * cache while the broadcast is announced, so an open group goes on when the track is
 * requested again; a group of a track dropped since is over. */
static bool group_still_cached(struct pub *p, moq_track *track, moq_group *g)
{
    size_t plen, nlen;
    const uint8_t *path = moq_track_path(track, &plen);
    const uint8_t *name = moq_track_name(track, &nlen);
    moq_group *cached = NULL;
    if (moq_origin_fetch(p->t->origin, path, plen, name, nlen, 0, moq_group_sequence(g), 0, false,
                         moq_now_us(), &cached) < 0)
        return false;
    moq_group_unref(cached);
    return cached == g;
}

static void track_request(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    struct pub *p = ctx;
    struct pub_track *pt = find_track(p, track);
    if (!pt) {
        size_t len;
        const uint8_t *name = moq_track_name(track, &len);
        moq_info("moq", "unknown track '%.*s' requested", (int)len, (const char *)name);
        moq_track_abort(track, route, MOQ_CODE_NOTFOUND);
        return;
    }
    if (pt->group && !group_still_cached(p, track, pt->group)) close_group(pt);
    pt->track = track;
    moq_track_info info;
    moq_track_info_default(&info);
    info.timescale = 1000; /* timestamps are wall-clock milliseconds */
    if (p->t->o->max_latency_ms) info.max_latency_ms = p->t->o->max_latency_ms;
    moq_track_set_info(track, route, &info);
    if (pt->done) {
        moq_track_finish(track, route, pt->next_seq);
        return;
    }
    set_serving(pt, prefs);
}

static void track_update(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    struct pub_track *pt = find_track(ctx, track);
    if (pt && pt->track == track) set_serving(pt, prefs);
}

static void track_release(void *ctx, moq_route *route, moq_track *track)
{
    struct pub_track *pt = find_track(ctx, track);
    if (!pt || pt->track != track) return;
    moq_info("moq", "track %s released by the relay", pt->name);
    /* The open group stays open: a new subscription is answered with it (the latest group),
     * and it goes on from where it stopped. */
    pt->track = NULL;
    pt->serving = false;
    stop_reading(pt);
    update_reading(pt);
}

static const moq_producer_ops pub_ops = {
    .track_request = track_request,
    .track_update = track_update,
    .track_release = track_release,
};

/* ---------------------------------------------------------------- lifecycle */

static void pub_connected(struct tool *t)
{
    moq_info("moq", "publishing %s", t->o->broadcast);
    moq_info("moq", "waiting for a subscriber to %s", t->o->broadcast);
    struct pub *p = t->app;
    /* watch the input from the start, so its end is noticed even with no subscriber */
    for (size_t i = 0; i < p->n; i++)
        update_reading(&p->tracks[i]);
}

/* The session was lost and a redial follows. The relay cut the groups in flight, and the
 * broadcast it keeps for us continues after the newest group it had: the next frame starts
 * a new group. */
static void pub_disconnected(struct tool *t)
{
    struct pub *p = t->app;
    if (p->clock) return; /* (the clock's groups are the minutes) */
    for (size_t i = 0; i < p->n; i++)
        close_group(&p->tracks[i]);
}

/* SIGINT/SIGTERM: end every track as if its input ended, then wind down as usual. */
static void pub_interrupted(struct tool *t)
{
    struct pub *p = t->app;
    if (p->winding_down) {
        tool_finish(t, 0, false);
        return;
    }
    if (p->clock) ev_periodic_stop(t->loop, &p->clock_tick);
    for (size_t i = 0; i < p->n; i++) {
        struct pub_track *pt = &p->tracks[i];
        if (!pt->track) {
            pt->done = true;
            if (++p->n_done == p->n) wind_down(p);
            continue;
        }
        finish_track(pt);
    }
}

static void pub_stop(struct tool *t)
{
    struct pub *p = t->app;
    if (!p) return;
    ev_timer_stop(t->loop, &p->delivery);
    if (p->clock) ev_periodic_stop(t->loop, &p->clock_tick);
    if (p->route) moq_route_unannounce(p->route); /* may call track_release */
    p->route = NULL;
    for (size_t i = 0; i < p->n; i++) {
        struct pub_track *pt = &p->tracks[i];
        stop_reading(pt);
        ev_clear_pending(t->loop, &pt->io);
        if (pt->group) {
            moq_group_unref(pt->group);
            pt->group = NULL;
        }
        if (pt->file && pt->fd >= 0) close(pt->fd);
        free(pt->name);
        free(pt->file);
        free(pt->buf);
    }
    free(p);
    t->app = NULL;
}

static int pub_setup(struct tool *t, bool clock)
{
    struct pub *p = calloc(1, sizeof(*p));
    if (!p) return MOQ_ERR_NOMEM;
    p->t = t;
    p->clock = clock;
    t->app = p;
    t->app_connected = pub_connected;
    t->app_interrupted = pub_interrupted;
    t->app_disconnected = pub_disconnected;
    t->app_stop = pub_stop;
    ev_timer_init(&p->delivery, delivery_cb, 0., DELIVERY_POLL_S);
    p->delivery.data = p;
    bool stdin_used = false;
    for (size_t i = 0; i < t->o->n_tracks; i++) {
        struct pub_track *pt = &p->tracks[p->n++];
        pt->p = p;
        pt->fd = -1;
        pt->next_seq = t->o->group_start_now ? moq_wall_ms() : t->o->group_start;
        const char *spec = t->o->tracks[i];
        const char *eq = strchr(spec, '=');
        pt->name = eq ? strndup(spec, (size_t)(eq - spec)) : strdup(spec);
        if (!pt->name) return MOQ_ERR_NOMEM;
        if (clock) continue;
        if (eq) {
            pt->file = strdup(eq + 1);
            if (!pt->file) return MOQ_ERR_NOMEM;
            pt->fd = open(pt->file, O_RDONLY | O_CLOEXEC);
            if (pt->fd < 0) {
                tool_note(t, "cannot open %s: %s", pt->file, strerror(errno));
                return MOQ_ERR_IO;
            }
        } else {
            if (stdin_used) {
                tool_note(t, "only one track can read stdin; give the others a file");
                return MOQ_ERR_INVALID;
            }
            stdin_used = true;
            pt->fd = STDIN_FILENO;
        }
        ev_io_init(&pt->io, io_cb, pt->fd, EV_READ);
        pt->io.data = pt;
    }
    const char *path = t->o->broadcast;
    int rv = moq_origin_announce(t->origin, (const uint8_t *)path, strlen(path), NULL, 0, &pub_ops,
                                 p, &p->route);
    if (rv < 0) {
        p->route = NULL;
        tool_note(t, "cannot announce %s: %s", path, moq_strerror(rv));
        return rv;
    }
    return 0;
}

int publish_init(struct tool *t)
{
    return pub_setup(t, false);
}

int clock_publish_init(struct tool *t)
{
    int rv = pub_setup(t, true);
    if (rv < 0) return rv;
    struct pub *p = t->app;
    clock_state_init(&p->clock_st, moq_wall_ms());
    ev_periodic_init(&p->clock_tick, clock_cb, 0., 1., NULL);
    p->clock_tick.data = p;
    ev_periodic_start(t->loop, &p->clock_tick);
    return 0;
}
