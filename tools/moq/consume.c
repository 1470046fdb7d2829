/*
 * The consuming commands: `moq subscribe`, `moq clock subscribe`, `moq fetch` and
 * `moq announced`. The session relays the relay's announcements into the local origin as
 * routes; these commands watch the origin and subscribe or fetch through it, so the model
 * and the engine do the protocol work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moq/errors.h"
#include "tool.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define FINISH_GRACE_S 2.0
/* How long a subscription refused as unroutable waits to hear that the broadcast ended. A
 * relay whose upstream lost the route already refuses it, but announces the end only once it
 * noticed the loss itself (a keep-alive, an idle timeout) and its linger passed: seconds on
 * a cluster tuned for fast failover, more on a loaded machine. */
#define UNROUTABLE_WAIT_S 10.0

/* A group being written to stdout (groups go out in sequence order, one after another). */
struct rgroup {
    struct consumer *c;
    moq_follower *f;
    uint64_t seq;
    uint64_t next; /* next frame index to write */
    bool ended;
    char *clock_base; /* clock: the group's first frame */
    struct rgroup *next_group;
};

struct consumer {
    struct tool *t;
    moq_watch *watch;
    moq_subscription *sub;
    bool started; /* subscribed or fetching */
    struct rgroup *head;
    bool have_done;
    uint64_t last_done; /* highest group sequence written completely */
    uint64_t written;   /* frames (or clock lines, announcement lines) written */
    /* The last group written ended early (reset): the relay may deliver it again, from its
     * first frame, when it switches to another route to the same publisher. */
    bool resume;
    uint64_t resume_seq;
    uint64_t resume_next;    /* frames of it already written */
    char *resume_clock_base; /* clock: its first frame */
    bool finished;
    uint64_t final_seq;
    bool unannounced; /* the broadcast's end was announced */
    ev_timer grace;
    ev_timer unroutable; /* refused as unroutable: waiting to hear whether the broadcast ended */
    ev_timer dropped;    /* the broadcast ended: exit 0 unless the session is going away */
    bool pumping;
    /* fetch */
    moq_follower *fetch;
    uint64_t fetch_next;
};

static void done(struct consumer *c, int code)
{
    tool_finish(c->t, code, false);
}

static bool count_reached(const struct consumer *c)
{
    return c->t->o->has_count && c->written >= c->t->o->count;
}

/* ---------------------------------------------------------------- writing */

static bool write_one(struct consumer *c, struct rgroup *rg, const moq_frame *f)
{
    const uint8_t *payload = f->chunk->data + f->payload_off;
    if (c->t->o->cmd != CMD_CLOCK_SUBSCRIBE) {
        c->written++;
        return tool_write_frame(c->t->o->framing, payload, f->payload_len);
    }
    if (!rg->clock_base) {
        rg->clock_base = strndup((const char *)payload, f->payload_len);
        return rg->clock_base != NULL;
    }
    char line[256];
    int n = snprintf(line, sizeof(line), "%s%.*s\n", rg->clock_base, (int)f->payload_len,
                     (const char *)payload);
    if (n < 0) return false;
    c->written++;
    return tool_write_stdout(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void rgroup_free(struct rgroup *rg)
{
    if (rg->f) moq_follower_close(rg->f);
    free(rg->clock_base);
    free(rg);
}

static void check_finished(struct consumer *c);

/* Write what the first group has; move on when it ended. */
static void pump(struct consumer *c)
{
    if (c->pumping || c->t->stopping) return;
    c->pumping = true;
    while (c->head && !c->t->stopping) {
        struct rgroup *rg = c->head;
        moq_group *g = moq_follower_group(rg->f);
        if (rg->next < moq_group_first_frame(g)) {
            moq_warn("moq", "group %llu: frames were dropped before they could be written",
                     (unsigned long long)rg->seq);
            rg->ended = true;
            rg->next = moq_group_frame_count(g);
        }
        uint64_t count = moq_group_frame_count(g);
        bool out_ok = true;
        for (; rg->next < count && out_ok && !count_reached(c); rg->next++) {
            const moq_frame *f = moq_group_frame(g, rg->next);
            if (!f) break;
            out_ok = write_one(c, rg, f);
        }
        if (!out_ok) { /* stdout is gone: nobody to write for */
            done(c, 0);
            break;
        }
        if (count_reached(c)) {
            done(c, 0);
            break;
        }
        if (!rg->ended) break;
        uint64_t code = 0;
        c->resume = moq_group_state(g, &code) == MOQ_GROUP_ABORTED;
        if (c->resume) {
            moq_debug("moq", "group %llu ended early (code %llu)", (unsigned long long)rg->seq,
                      (unsigned long long)code);
            c->resume_seq = rg->seq;
            c->resume_next = rg->next;
            free(c->resume_clock_base);
            c->resume_clock_base = rg->clock_base;
            rg->clock_base = NULL;
        }
        c->head = rg->next_group;
        if (!c->have_done || rg->seq > c->last_done) c->last_done = rg->seq;
        c->have_done = true;
        rgroup_free(rg);
    }
    c->pumping = false;
    if (!c->t->stopping) check_finished(c);
}

static void rg_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    struct rgroup *rg = ctx;
    if (rg == rg->c->head) pump(rg->c);
}

static void rg_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct rgroup *rg = ctx;
    rg->ended = true;
    if (rg == rg->c->head) pump(rg->c);
}

static const moq_follower_ops rgroup_ops = {.on_frames = rg_frames, .on_end = rg_end};

/* ---------------------------------------------------------------- subscription */

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct consumer *c = w->data;
    moq_info("moq", "track ended; groups before %llu never arrived",
             (unsigned long long)c->final_seq);
    done(c, 0);
}

static void check_finished(struct consumer *c)
{
    if (!c->finished || c->head) return;
    if (c->final_seq == 0 || (c->have_done && c->last_done + 1 >= c->final_seq)) {
        moq_info("moq", "track ended after %llu frames", (unsigned long long)c->written);
        done(c, 0);
        return;
    }
    if (!ev_is_active(&c->grace)) ev_timer_start(c->t->loop, &c->grace);
}

static void on_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    struct consumer *c = ctx;
    uint64_t seq = moq_group_sequence(g);
    /* The group that was cut short comes again, and nothing after it was written yet:
     * continue it where it stopped. */
    bool again =
        c->resume && seq == c->resume_seq && seq == c->last_done && !(c->head && c->head->next > 0);
    bool stale = !again && ((c->have_done && seq <= c->last_done) ||
                            (c->head && c->head->next > 0 && seq < c->head->seq));
    struct rgroup **pos = &c->head;
    while (!stale && *pos && (*pos)->seq < seq)
        pos = &(*pos)->next_group;
    if (stale || (*pos && (*pos)->seq == seq)) {
        moq_debug("moq", "group %llu arrived too late; skipped", (unsigned long long)seq);
        return;
    }
    struct rgroup *rg = calloc(1, sizeof(*rg));
    if (!rg) {
        tool_fail(c->t, "out of memory");
        return;
    }
    rg->c = c;
    rg->seq = seq;
    if (again) {
        moq_debug("moq", "group %llu delivered again; resuming at frame %llu",
                  (unsigned long long)seq, (unsigned long long)c->resume_next);
        c->resume = false;
        rg->next = c->resume_next;
        rg->clock_base = c->resume_clock_base;
        c->resume_clock_base = NULL;
    }
    rg->f = moq_group_follow(g, &rgroup_ops, rg);
    if (!rg->f) {
        rgroup_free(rg);
        tool_fail(c->t, "out of memory");
        return;
    }
    rg->ended = moq_group_state(g, NULL) != MOQ_GROUP_OPEN;
    rg->next_group = *pos;
    *pos = rg;
    pump(c);
}

static void on_finish(void *ctx, moq_subscription *sub, uint64_t final_seq)
{
    struct consumer *c = ctx;
    c->finished = true;
    c->final_seq = final_seq;
    check_finished(c);
}

static void broadcast_ended(struct consumer *c)
{
    moq_info("moq", "broadcast %s ended after %llu frames", c->t->o->broadcast,
             (unsigned long long)c->written);
    done(c, 0);
}

static void dropped_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broadcast_ended(w->data);
}

static void unroutable_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct consumer *c = w->data;
    tool_fail(c->t, "subscription to %s/%s failed: %s (code %d)", c->t->o->broadcast,
              c->t->o->tracks[0], moq_code_name(MOQ_REASON_UNROUTABLE), MOQ_REASON_UNROUTABLE);
}

static void on_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    struct consumer *c = ctx;
    pump(c);
    if (c->t->stopping) return;
    if (c->finished) {
        broadcast_ended(c);
        return;
    }
    if (code == MOQ_REASON_DROPPED) {
        /* A lost session drops its broadcasts too, just before it reports its close: decide
         * from the loop, once that report (a failure, exit 1) had its chance. */
        ev_timer_start(c->t->loop, &c->dropped);
        return;
    }
    if (code == MOQ_REASON_UNROUTABLE) {
        /* The subscription may have crossed the broadcast's end on its way to the relay:
         * then the end is (or is about to be) announced too. */
        if (c->unannounced)
            broadcast_ended(c);
        else
            ev_timer_start(c->t->loop, &c->unroutable);
        return;
    }
    if (code == MOQ_CODE_UNAUTHORIZED)
        tool_fail(c->t, "not allowed to subscribe to %s (track %s)", c->t->o->broadcast,
                  c->t->o->tracks[0]);
    else
        tool_fail(c->t, "subscription to %s/%s failed: %s (code %llu)", c->t->o->broadcast,
                  c->t->o->tracks[0], moq_code_name(code), (unsigned long long)code);
}

static const moq_subscriber_ops sub_ops = {
    .on_group = on_group,
    .on_finish = on_finish,
    .on_abort = on_abort,
};

static void start_subscription(struct consumer *c)
{
    const struct tool_opts *o = c->t->o;
    moq_sub_prefs prefs = {.ordered = true, .max_latency_ms = o->max_latency_ms};
    c->started = true;
    moq_info("moq", "subscribing to %s/%s", o->broadcast, o->tracks[0]);
    int rv = moq_origin_subscribe(c->t->origin, (const uint8_t *)o->broadcast, strlen(o->broadcast),
                                  (const uint8_t *)o->tracks[0], strlen(o->tracks[0]), 0, &prefs,
                                  &sub_ops, c, &c->sub);
    if (rv < 0) {
        c->sub = NULL;
        tool_fail(c->t, "cannot subscribe to %s/%s: %s", o->broadcast, o->tracks[0],
                  moq_strerror(rv));
    }
}

/* ---------------------------------------------------------------- fetch */

static void fetch_write(struct consumer *c)
{
    moq_group *g = moq_follower_group(c->fetch);
    uint64_t count = moq_group_frame_count(g);
    for (; c->fetch_next < count; c->fetch_next++) {
        const moq_frame *f = moq_group_frame(g, c->fetch_next);
        if (!f) break;
        if (!tool_write_frame(c->t->o->framing, f->chunk->data + f->payload_off, f->payload_len)) {
            done(c, 0);
            return;
        }
        c->written++;
    }
}

static void fetch_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    struct consumer *c = ctx;
    if (!c->t->stopping) fetch_write(c);
}

static void fetch_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct consumer *c = ctx;
    if (c->t->stopping) return;
    fetch_write(c);
    if (c->t->stopping) return;
    if (state == MOQ_GROUP_FINISHED) {
        moq_info("moq", "fetched group %llu: %llu frames", (unsigned long long)c->t->o->group,
                 (unsigned long long)c->written);
        done(c, 0);
    } else {
        tool_fail(c->t, "group %llu of %s/%s is not available: %s (code %llu)",
                  (unsigned long long)c->t->o->group, c->t->o->broadcast, c->t->o->tracks[0],
                  moq_code_name(code), (unsigned long long)code);
    }
}

static const moq_follower_ops fetch_ops = {.on_frames = fetch_frames, .on_end = fetch_end};

static void start_fetch(struct consumer *c)
{
    const struct tool_opts *o = c->t->o;
    c->started = true;
    const char *version = c->t->session ? moq_session_version(c->t->session) : "";
    if (strcmp(version, "moq-lite-05") != 0) {
        tool_fail(c->t, "fetch needs moq-lite-05; the session speaks %s", version);
        return;
    }
    moq_group *g = NULL;
    int rv = moq_origin_fetch(c->t->origin, (const uint8_t *)o->broadcast, strlen(o->broadcast),
                              (const uint8_t *)o->tracks[0], strlen(o->tracks[0]), 0, o->group, 0,
                              true, moq_now_us(), &g);
    if (rv < 0) {
        tool_fail(c->t, "cannot fetch group %llu of %s/%s: %s", (unsigned long long)o->group,
                  o->broadcast, o->tracks[0], moq_strerror(rv));
        return;
    }
    c->fetch = moq_group_follow(g, &fetch_ops, c);
    uint64_t code = 0;
    int state = moq_group_state(g, &code);
    moq_group_unref(g);
    if (!c->fetch) {
        tool_fail(c->t, "out of memory");
        return;
    }
    fetch_write(c);
    if (state != MOQ_GROUP_OPEN) fetch_end(c, c->fetch, moq_follower_group(c->fetch), state, code);
}

/* ---------------------------------------------------------------- announcements */

static void on_announce(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    struct consumer *c = ctx;
    struct tool *t = c->t;
    if (t->stopping) return;
    if (t->o->cmd == CMD_ANNOUNCED) {
        if (ev->kind == MOQ_ANNOUNCE_RESTART) return;
        char line[4200];
        int n =
            snprintf(line, sizeof(line), "%c%.*s\n", ev->kind == MOQ_ANNOUNCE_ACTIVE ? '+' : '-',
                     (int)ev->path_len, (const char *)ev->path);
        if (n < 0 || (size_t)n >= sizeof(line) || !tool_write_stdout(line, (size_t)n)) {
            done(c, 0);
            return;
        }
        c->written++;
        if (count_reached(c)) done(c, 0);
        return;
    }
    if (ev->suffix_len != 0) return; /* something below our broadcast */
    c->unannounced = ev->kind == MOQ_ANNOUNCE_ENDED;
    if (c->unannounced && ev_is_active(&c->unroutable)) {
        ev_timer_stop(t->loop, &c->unroutable);
        broadcast_ended(c);
        return;
    }
    if (ev->kind == MOQ_ANNOUNCE_ACTIVE && !c->started) {
        moq_info("moq", "broadcast %s is announced", t->o->broadcast);
        if (t->o->cmd == CMD_FETCH)
            start_fetch(c);
        else
            start_subscription(c);
    } else if (ev->kind == MOQ_ANNOUNCE_ENDED && t->o->cmd == CMD_FETCH && !c->fetch) {
        tool_fail(t, "broadcast %s ended", t->o->broadcast);
    }
}

static const moq_watch_ops watch_ops = {.on_announce = on_announce};

/* ---------------------------------------------------------------- lifecycle */

static void consumer_connected(struct tool *t)
{
    struct consumer *c = t->app;
    const char *prefix = tool_consume_prefix(t->o);
    if (t->o->cmd != CMD_ANNOUNCED) moq_info("moq", "waiting for %s", prefix);
    int rv = moq_origin_watch(t->origin, (const uint8_t *)prefix, strlen(prefix), 0, &watch_ops, c,
                              &c->watch);
    if (rv < 0) {
        c->watch = NULL;
        tool_fail(t, "cannot watch %s: %s", prefix, moq_strerror(rv));
    }
}

static void consumer_stop(struct tool *t)
{
    struct consumer *c = t->app;
    if (!c) return;
    ev_timer_stop(t->loop, &c->grace);
    ev_timer_stop(t->loop, &c->dropped);
    ev_timer_stop(t->loop, &c->unroutable);
    free(c->resume_clock_base);
    while (c->head) {
        struct rgroup *rg = c->head;
        c->head = rg->next_group;
        rgroup_free(rg);
    }
    if (c->fetch) moq_follower_close(c->fetch);
    if (c->sub) moq_subscription_close(c->sub);
    if (c->watch) moq_watch_close(c->watch);
    free(c);
    t->app = NULL;
}

static int consumer_setup(struct tool *t)
{
    struct consumer *c = calloc(1, sizeof(*c));
    if (!c) return MOQ_ERR_NOMEM;
    c->t = t;
    ev_timer_init(&c->grace, grace_cb, FINISH_GRACE_S, 0.);
    c->grace.data = c;
    ev_timer_init(&c->dropped, dropped_cb, 0., 0.);
    c->dropped.data = c;
    ev_timer_init(&c->unroutable, unroutable_cb, UNROUTABLE_WAIT_S, 0.);
    c->unroutable.data = c;
    t->app = c;
    t->app_connected = consumer_connected;
    t->app_stop = consumer_stop;
    return 0;
}

int subscribe_init(struct tool *t)
{
    return consumer_setup(t);
}

int fetch_init(struct tool *t)
{
    return consumer_setup(t);
}

int announced_init(struct tool *t)
{
    return consumer_setup(t);
}
