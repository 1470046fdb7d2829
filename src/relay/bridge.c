/* bridge.c - broadcasts, subscriptions, groups and frames between worker origins
 * (bridge.h). The worker that has a broadcast is its source, a worker that wants it the
 * sink; every message names its sender in `from`. */
#include "relay/bridge.h"

#include <ev.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/list.h"
#include "util/log.h"
#include "util/map.h"
#include "util/pool.h"
#include "util/time.h"

/* Group keys of fetches carry this bit (the sink chose them); groups of subscriptions do
 * not (the source chose them). */
#define FETCH_BIT (UINT64_C(1) << 55)

enum msg_kind {
    M_ANNOUNCE,    /* source -> sink: ann, path, hops, a = announce sequence */
    M_SUBSCRIBE,   /* sink -> source: id, path, name, prefs */
    M_UPDATE,      /* sink -> source: id, prefs */
    M_UNSUBSCRIBE, /* sink -> source: id */
    M_FETCH,       /* sink -> source: id, path, name, a = sequence, priority */
    M_INFO,        /* source -> sink: id, info */
    M_GROUP,       /* source -> sink: id, gid, a = sequence, b = flags */
    M_FRAMES,      /* source -> sink: gid, frames (each holding a chunk reference) */
    M_GROUP_END,   /* source -> sink: gid, a = state, b = abort code */
    M_FINISH,      /* source -> sink: id, a = final sequence */
    M_ABORT,       /* source -> sink: id, a = code */
    M_CALL,        /* any -> any: call(call_arg, receiver) */
};

struct msg {
    struct msg *next;
    uint8_t kind;
    uint8_t ann;
    uint8_t priority;
    unsigned from;
    uint64_t id, gid, a, b;
    moq_sub_prefs prefs;
    moq_track_info info;
    size_t nhops, nframes, path_len, name_len;
    uint64_t *hops;
    moq_frame *frames;
    uint8_t *path, *name;
    void (*call)(void *arg, unsigned worker);
    void (*call_drop)(void *arg); /* when the message is dropped instead of delivered */
    void *call_arg;
    size_t size; /* bytes allocated, for moq_pool_free */
    uint64_t tail[];
};

struct moq_bridge_hub {
    unsigned n;
    moq_bridge **bridges;
};

struct moq_bridge {
    moq_bridge_hub *hub;
    unsigned index;
    struct ev_loop *loop;
    moq_origin *origin;
    ev_async wake;
    pthread_mutex_t lock; /* guards inbox and closed */
    struct msg *inbox, **inbox_tail;
    bool closed;
    /* The rest belongs to the worker's thread. */
    bool started, stopped;
    moq_watch *watch;
    moq_map *imports;     /* per source worker: path -> struct import */
    moq_u64map itracks;   /* import track id -> struct itrack */
    moq_u64map by_track;  /* moq_track pointer -> struct itrack */
    moq_u64map groups;    /* (source << 56 | gid) -> moq_group (one reference) */
    moq_u64map exports;   /* (sink << 56 | id) -> struct export */
    moq_list egroups;     /* struct egroup */
    moq_list all_imports; /* struct import, withdrawn ones included */
    uint64_t next_id;     /* import track ids and fetch ids */
    uint64_t next_gid;    /* group keys of exported subscriptions */
    struct moq_bridge_stats stats;
};

/* Sink side: another worker's broadcast announced here. Once the source withdraws it, the
 * route keeps serving the tracks it has (as the source's does) and goes with the last. */
struct import {
    moq_bridge *b;
    unsigned source;
    moq_route *route;
    uint64_t seq; /* the announce sequence of the source's route it mirrors */
    size_t ntracks;
    bool withdrawn;
    moq_list link; /* b->all_imports */
};

/* Sink side: a track of an import that our origin asked for. */
struct itrack {
    moq_bridge *b;
    unsigned source;
    uint64_t id;
    moq_track *track;
    moq_route *route;
};

/* Source side: a subscription held for a sink. */
struct export
{
    moq_bridge *b;
    unsigned sink;
    uint64_t id;
    moq_subscription *sub;
};

/* Source side: a group followed for a sink. */
struct egroup {
    moq_bridge *b;
    unsigned sink;
    uint64_t gid;
    moq_follower *follower;
    uint64_t sent; /* frames handed over (absolute index) */
    moq_list link;
};

static uint64_t key_of(unsigned worker, uint64_t id)
{
    return (uint64_t)worker << 56 | id;
}

/* ---------------------------------------------------------------- messages */

static struct msg *msg_new(uint8_t kind, size_t nhops, size_t nframes, const uint8_t *path,
                           size_t path_len, const uint8_t *name, size_t name_len)
{
    size_t words = nhops + (nframes * sizeof(moq_frame) + 7) / 8 + (path_len + name_len + 7) / 8;
    size_t size = sizeof(struct msg) + words * 8;
    struct msg *m = moq_pool_calloc(size);
    if (!m) return NULL;
    m->size = size;
    m->kind = kind;
    m->hops = m->tail;
    m->frames = (moq_frame *)(m->tail + nhops);
    m->path = (uint8_t *)(m->tail + nhops + (nframes * sizeof(moq_frame) + 7) / 8);
    m->name = m->path + path_len;
    m->nhops = nhops;
    m->path_len = path_len;
    m->name_len = name_len;
    if (path_len) memcpy(m->path, path, path_len);
    if (name_len) memcpy(m->name, name, name_len);
    return m;
}

static void msg_free(struct msg *m)
{
    if (m->call_drop) m->call_drop(m->call_arg);
    for (size_t i = 0; i < m->nframes; i++)
        moq_chunk_unref(m->frames[i].chunk);
    moq_pool_free(m, m->size);
}

/* Hand m to worker `to` (any thread). A stopped bridge drops it. */
static void post(moq_bridge *from, unsigned to, struct msg *m)
{
    if (!m) {
        moq_warn("relay", "out of memory: a message to worker %u is lost", to);
        return;
    }
    moq_bridge *dst = from->hub->bridges[to];
    m->from = from->index;
    if (!dst) {
        msg_free(m);
        return;
    }
    pthread_mutex_lock(&dst->lock);
    bool closed = dst->closed;
    if (!closed) {
        *dst->inbox_tail = m;
        dst->inbox_tail = &m->next;
    }
    pthread_mutex_unlock(&dst->lock);
    if (closed)
        msg_free(m);
    else
        ev_async_send(dst->loop, &dst->wake);
}

static struct msg *take_inbox(moq_bridge *b)
{
    pthread_mutex_lock(&b->lock);
    struct msg *m = b->inbox;
    b->inbox = NULL;
    b->inbox_tail = &b->inbox;
    pthread_mutex_unlock(&b->lock);
    return m;
}

static void drop_all(struct msg *m)
{
    while (m) {
        struct msg *next = m->next;
        msg_free(m);
        m = next;
    }
}

/* ---------------------------------------------------------------- source side */

static void egroup_free(struct egroup *eg)
{
    moq_list_remove(&eg->link);
    moq_follower_close(eg->follower);
    moq_pool_free(eg, sizeof(*eg));
}

/* Hand the frames the group has that the sink has not, then its end once it ended. */
static void egroup_pump(struct egroup *eg)
{
    moq_group *g = moq_follower_group(eg->follower);
    uint64_t count = moq_group_frame_count(g), first = moq_group_first_frame(g);
    uint64_t from = eg->sent > first ? eg->sent : first;
    if (count > from) {
        size_t n = (size_t)(count - from);
        struct msg *m = msg_new(M_FRAMES, 0, n, NULL, 0, NULL, 0);
        if (m) {
            m->gid = eg->gid;
            for (size_t i = 0; i < n; i++) {
                const moq_frame *f = moq_group_frame(g, from + i);
                if (!f) continue;
                m->frames[m->nframes] = *f;
                moq_chunk_ref(f->chunk);
                m->nframes++;
            }
        }
        post(eg->b, eg->sink, m);
        eg->sent = count;
    }
    uint64_t code = 0;
    int state = moq_group_state(g, &code);
    if (state == MOQ_GROUP_OPEN) return;
    struct msg *m = msg_new(M_GROUP_END, 0, 0, NULL, 0, NULL, 0);
    if (m) {
        m->gid = eg->gid;
        m->a = (uint64_t)state;
        m->b = code;
    }
    post(eg->b, eg->sink, m);
    egroup_free(eg);
}

static void eg_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    egroup_pump(ctx);
}

static void eg_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    egroup_pump(ctx);
}

static const moq_follower_ops egroup_ops = {eg_frames, eg_end};

/* Follow group g for sink under key gid and hand over what it already has. */
static void egroup_start(moq_bridge *b, unsigned sink, uint64_t gid, moq_group *g)
{
    struct egroup *eg = moq_pool_calloc(sizeof(*eg));
    if (eg) {
        eg->b = b;
        eg->sink = sink;
        eg->gid = gid;
        eg->follower = moq_group_follow(g, &egroup_ops, eg);
    }
    if (!eg || !eg->follower) {
        moq_pool_free(eg, sizeof(*eg));
        struct msg *m = msg_new(M_GROUP_END, 0, 0, NULL, 0, NULL, 0);
        if (m) {
            m->gid = gid;
            m->a = MOQ_GROUP_ABORTED;
            m->b = MOQ_REASON_CANCEL;
        }
        post(b, sink, m);
        return;
    }
    moq_list_push_back(&b->egroups, &eg->link);
    egroup_pump(eg);
}

static void ex_info(void *ctx, moq_subscription *sub, const moq_track_info *info)
{
    struct export *ex = ctx;
    struct msg *m = msg_new(M_INFO, 0, 0, NULL, 0, NULL, 0);
    if (m) {
        m->id = ex->id;
        m->info = *info;
    }
    post(ex->b, ex->sink, m);
}

static void ex_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    struct export *ex = ctx;
    moq_bridge *b = ex->b;
    uint64_t gid = ++b->next_gid;
    struct msg *m = msg_new(M_GROUP, 0, 0, NULL, 0, NULL, 0);
    if (m) {
        m->id = ex->id;
        m->gid = gid;
        m->a = moq_group_sequence(g);
        m->b = moq_group_flags(g);
    }
    post(b, ex->sink, m);
    egroup_start(b, ex->sink, gid, g);
}

static void ex_finish(void *ctx, moq_subscription *sub, uint64_t final_sequence)
{
    struct export *ex = ctx;
    struct msg *m = msg_new(M_FINISH, 0, 0, NULL, 0, NULL, 0);
    if (m) {
        m->id = ex->id;
        m->a = final_sequence;
    }
    post(ex->b, ex->sink, m);
}

static void ex_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    struct export *ex = ctx;
    struct msg *m = msg_new(M_ABORT, 0, 0, NULL, 0, NULL, 0);
    if (m) {
        m->id = ex->id;
        m->a = code;
    }
    post(ex->b, ex->sink, m);
}

static const moq_subscriber_ops export_ops = {ex_info, ex_group, ex_finish, ex_abort};

static void send_abort(moq_bridge *b, unsigned sink, uint64_t id, uint64_t code)
{
    struct msg *m = msg_new(M_ABORT, 0, 0, NULL, 0, NULL, 0);
    if (m) {
        m->id = id;
        m->a = code;
    }
    post(b, sink, m);
}

static void on_subscribe(moq_bridge *b, const struct msg *m)
{
    struct export *ex = calloc(1, sizeof(*ex));
    if (!ex || moq_u64map_put(&b->exports, key_of(m->from, m->id), ex) < 0) {
        free(ex);
        send_abort(b, m->from, m->id, MOQ_REASON_CANCEL);
        return;
    }
    ex->b = b;
    ex->sink = m->from;
    ex->id = m->id;
    b->stats.exported_tracks++;
    /* Only this worker's own routes: a bridged one would lead back to another worker. */
    int rv = moq_origin_subscribe(b->origin, m->path, m->path_len, m->name, m->name_len,
                                  MOQ_EXCLUDE_BRIDGES, &m->prefs, &export_ops, ex, &ex->sub);
    if (rv < 0) {
        ex->sub = NULL;
        send_abort(b, m->from, m->id,
                   rv == MOQ_ERR_NOT_FOUND ? MOQ_REASON_UNROUTABLE : MOQ_REASON_CANCEL);
        return;
    }
    moq_debug("relay", "worker %u: /%.*s/%.*s carried to worker %u", b->index, (int)m->path_len,
              (const char *)m->path, (int)m->name_len, (const char *)m->name, m->from);
}

static void export_free(moq_bridge *b, uint64_t key)
{
    struct export *ex = moq_u64map_del(&b->exports, key);
    if (!ex) return;
    if (ex->sub) moq_subscription_close(ex->sub);
    b->stats.exported_tracks--;
    free(ex);
}

static void on_update(moq_bridge *b, const struct msg *m)
{
    struct export *ex = moq_u64map_get(&b->exports, key_of(m->from, m->id));
    if (ex && ex->sub) moq_subscription_update(ex->sub, &m->prefs);
}

static void on_fetch(moq_bridge *b, const struct msg *m)
{
    moq_group *g = NULL;
    uint64_t gid = m->id | FETCH_BIT;
    int rv = moq_origin_fetch(b->origin, m->path, m->path_len, m->name, m->name_len,
                              MOQ_EXCLUDE_BRIDGES, m->a, m->priority, true, moq_now_us(), &g);
    if (rv < 0) {
        struct msg *r = msg_new(M_GROUP_END, 0, 0, NULL, 0, NULL, 0);
        if (r) {
            r->gid = gid;
            r->a = MOQ_GROUP_ABORTED;
            r->b = MOQ_REASON_NOT_FOUND;
        }
        post(b, m->from, r);
        return;
    }
    egroup_start(b, m->from, gid, g);
    moq_group_unref(g);
}

static void on_announce_local(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    moq_bridge *b = ctx;
    /* A takeover: the new broadcast is announced next and replaces this one on the other
     * workers in one step. Ending it there first would let them fall back to a publisher
     * this worker displaced, which they would then announce back here as new content. */
    if (ev->kind == MOQ_ANNOUNCE_ENDED && ev->replaced) return;
    for (unsigned i = 0; i < b->hub->n; i++) {
        if (i == b->index) continue;
        struct msg *m = msg_new(M_ANNOUNCE, ev->nhops, 0, ev->path, ev->path_len, NULL, 0);
        if (m) {
            m->ann = (uint8_t)ev->kind;
            m->a = ev->seq;
            if (ev->nhops) memcpy(m->hops, ev->hops, ev->nhops * sizeof(*ev->hops));
        }
        post(b, i, m);
    }
}

static const moq_watch_ops local_watch_ops = {on_announce_local};

/* ---------------------------------------------------------------- sink side */

static void import_free(struct import *imp)
{
    moq_list_remove(&imp->link);
    imp->withdrawn = false;           /* its tracks' releases below must not reap it again */
    moq_route_unannounce(imp->route); /* releases its tracks (im_release) */
    free(imp);
}

/* A withdrawn import whose last track went: removed from the loop, outside the model's
 * callback that released the track. */
static void reap_import(void *arg, unsigned worker)
{
    import_free(arg);
}

static struct msg *track_msg(uint8_t kind, struct itrack *it, const moq_sub_prefs *prefs)
{
    size_t plen = 0, nlen = 0;
    const uint8_t *path = moq_track_path(it->track, &plen);
    const uint8_t *name = moq_track_name(it->track, &nlen);
    struct msg *m = kind == M_SUBSCRIBE ? msg_new(kind, 0, 0, path, plen, name, nlen)
                                        : msg_new(kind, 0, 0, NULL, 0, NULL, 0);
    if (m) {
        m->id = it->id;
        if (prefs) m->prefs = *prefs;
    }
    return m;
}

static void im_request(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    struct import *imp = ctx;
    moq_bridge *b = imp->b;
    struct itrack *it = calloc(1, sizeof(*it));
    if (!it) {
        moq_track_abort(track, route, MOQ_REASON_CANCEL);
        return;
    }
    it->b = b;
    it->source = imp->source;
    it->id = ++b->next_id;
    it->track = track;
    it->route = route;
    if (moq_u64map_put(&b->itracks, it->id, it) < 0 ||
        moq_u64map_put(&b->by_track, (uintptr_t)track, it) < 0) {
        moq_u64map_del(&b->itracks, it->id);
        free(it);
        moq_track_abort(track, route, MOQ_REASON_CANCEL);
        return;
    }
    b->stats.imported_tracks++;
    imp->ntracks++;
    post(b, it->source, track_msg(M_SUBSCRIBE, it, prefs));
}

static void im_update(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    struct import *imp = ctx;
    struct itrack *it = moq_u64map_get(&imp->b->by_track, (uintptr_t)track);
    if (it) post(imp->b, it->source, track_msg(M_UPDATE, it, prefs));
}

static void im_release(void *ctx, moq_route *route, moq_track *track)
{
    struct import *imp = ctx;
    moq_bridge *b = imp->b;
    struct itrack *it = moq_u64map_del(&b->by_track, (uintptr_t)track);
    if (!it) return;
    moq_u64map_del(&b->itracks, it->id);
    b->stats.imported_tracks--;
    post(b, it->source, track_msg(M_UNSUBSCRIBE, it, NULL));
    free(it);
    if (--imp->ntracks == 0 && imp->withdrawn && !b->stopped)
        moq_bridge_call(b, b->index, reap_import, NULL, imp);
}

static int im_fetch(void *ctx, moq_route *route, moq_track *track, moq_group *group,
                    uint8_t priority)
{
    struct import *imp = ctx;
    moq_bridge *b = imp->b;
    uint64_t id = ++b->next_id;
    if (moq_u64map_put(&b->groups, key_of(imp->source, id | FETCH_BIT), group) < 0)
        return MOQ_ERR_NOMEM;
    moq_group_ref(group);
    size_t plen = 0, nlen = 0;
    const uint8_t *path = moq_track_path(track, &plen);
    const uint8_t *name = moq_track_name(track, &nlen);
    struct msg *m = msg_new(M_FETCH, 0, 0, path, plen, name, nlen);
    if (m) {
        m->id = id;
        m->a = moq_group_sequence(group);
        m->priority = priority;
    }
    post(b, imp->source, m);
    return 0;
}

static const moq_producer_ops import_ops = {im_request, im_update, im_release, im_fetch, true};

static void on_announce(moq_bridge *b, const struct msg *m)
{
    moq_map *imports = &b->imports[m->from];
    struct import *imp = moq_map_get(imports, m->path, m->path_len);
    if (m->ann == MOQ_ANNOUNCE_ENDED) {
        if (!imp) return;
        moq_map_del(imports, m->path, m->path_len);
        if (imp->ntracks == 0) {
            import_free(imp);
            return;
        }
        /* What it serves keeps flowing until the source ends it (unannounce is graceful). */
        imp->withdrawn = true;
        moq_route_withdraw(imp->route);
        return;
    }
    if (imp) {
        /* Another sequence: the source advertises other content (its broadcast was taken
         * over, or another of its publishers is the newest it has), with no end between. */
        bool renewed = m->a != imp->seq;
        imp->seq = m->a;
        int rc = renewed ? moq_route_renew_seq(imp->route, m->hops, m->nhops, m->a)
                         : moq_route_update(imp->route, m->hops, m->nhops);
        if (rc < 0)
            moq_debug("relay", "worker %u: route from worker %u not updated", b->index, m->from);
        return;
    }
    imp = calloc(1, sizeof(*imp));
    if (!imp || moq_map_put(imports, m->path, m->path_len, imp) < 0) {
        free(imp);
        moq_warn("relay", "out of memory: a broadcast of worker %u is not seen on worker %u",
                 m->from, b->index);
        return;
    }
    imp->b = b;
    imp->source = m->from;
    imp->seq = m->a;
    if (moq_origin_announce_seq(b->origin, m->path, m->path_len, m->hops, m->nhops, m->a,
                                &import_ops, imp, &imp->route) < 0) {
        moq_map_del(imports, m->path, m->path_len);
        free(imp);
        return;
    }
    moq_list_push_back(&b->all_imports, &imp->link);
}

static struct itrack *itrack_of(moq_bridge *b, const struct msg *m)
{
    return moq_u64map_get(&b->itracks, m->id);
}

static void on_group(moq_bridge *b, const struct msg *m)
{
    struct itrack *it = itrack_of(b, m);
    if (!it) return;
    moq_group *g = NULL;
    if (moq_track_begin_group_flags(it->track, it->route, m->a, moq_now_us(), (uint32_t)m->b, &g) <
        0)
        return; /* its frames are dropped */
    if (moq_u64map_put(&b->groups, key_of(m->from, m->gid), g) < 0) {
        moq_group_abort(g, MOQ_REASON_CANCEL);
        moq_group_unref(g);
    }
}

static void on_frames(moq_bridge *b, struct msg *m)
{
    moq_group *g = moq_u64map_get(&b->groups, key_of(m->from, m->gid));
    if (!g) return; /* msg_free releases the chunks */
    uint64_t now = moq_now_us();
    for (size_t i = 0; i < m->nframes; i++) {
        moq_group_append(g, &m->frames[i], now); /* takes over the reference */
        b->stats.frames_in++;
    }
    m->nframes = 0;
}

static void on_group_end(moq_bridge *b, const struct msg *m)
{
    moq_group *g = moq_u64map_del(&b->groups, key_of(m->from, m->gid));
    if (!g) return;
    if (m->a == MOQ_GROUP_FINISHED)
        moq_group_finish(g, moq_now_us());
    else
        moq_group_abort(g, m->b);
    moq_group_unref(g);
}

static void on_info(moq_bridge *b, const struct msg *m)
{
    struct itrack *it = itrack_of(b, m);
    if (it) moq_track_set_info(it->track, it->route, &m->info);
}

static void on_finish(moq_bridge *b, const struct msg *m)
{
    struct itrack *it = itrack_of(b, m);
    if (it) moq_track_finish(it->track, it->route, m->a);
}

static void on_abort(moq_bridge *b, const struct msg *m)
{
    struct itrack *it = itrack_of(b, m);
    if (it) moq_track_abort(it->track, it->route, m->a); /* releases it (im_release) */
}

/* ---------------------------------------------------------------- dispatch */

static void dispatch(moq_bridge *b, struct msg *m)
{
    b->stats.messages_in++;
    switch (m->kind) {
    case M_ANNOUNCE:
        on_announce(b, m);
        break;
    case M_SUBSCRIBE:
        on_subscribe(b, m);
        break;
    case M_UPDATE:
        on_update(b, m);
        break;
    case M_UNSUBSCRIBE:
        export_free(b, key_of(m->from, m->id));
        break;
    case M_FETCH:
        on_fetch(b, m);
        break;
    case M_INFO:
        on_info(b, m);
        break;
    case M_GROUP:
        on_group(b, m);
        break;
    case M_FRAMES:
        on_frames(b, m);
        break;
    case M_GROUP_END:
        on_group_end(b, m);
        break;
    case M_FINISH:
        on_finish(b, m);
        break;
    case M_ABORT:
        on_abort(b, m);
        break;
    case M_CALL:
        m->call_drop = NULL;
        m->call(m->call_arg, b->index);
        break;
    }
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    moq_bridge *b = w->data;
    struct msg *m = take_inbox(b);
    while (m && !b->stopped) {
        struct msg *next = m->next;
        dispatch(b, m);
        msg_free(m);
        m = next;
    }
    drop_all(m);
}

/* ---------------------------------------------------------------- lifecycle */

moq_bridge_hub *moq_bridge_hub_new(unsigned workers)
{
    moq_bridge_hub *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->bridges = calloc(workers ? workers : 1, sizeof(*h->bridges));
    if (!h->bridges) {
        free(h);
        return NULL;
    }
    h->n = workers;
    return h;
}

void moq_bridge_hub_free(moq_bridge_hub *h)
{
    if (!h) return;
    free(h->bridges);
    free(h);
}

int moq_bridge_new(moq_bridge_hub *h, unsigned index, struct ev_loop *loop, moq_origin *origin,
                   moq_bridge **out)
{
    if (index >= h->n || h->bridges[index]) return MOQ_ERR_INVALID;
    moq_bridge *b = calloc(1, sizeof(*b));
    if (!b) return MOQ_ERR_NOMEM;
    b->imports = calloc(h->n, sizeof(*b->imports));
    if (!b->imports) {
        free(b);
        return MOQ_ERR_NOMEM;
    }
    for (unsigned i = 0; i < h->n; i++)
        moq_map_init(&b->imports[i]);
    b->hub = h;
    b->index = index;
    b->loop = loop;
    b->origin = origin;
    pthread_mutex_init(&b->lock, NULL);
    b->inbox_tail = &b->inbox;
    moq_u64map_init(&b->itracks);
    moq_u64map_init(&b->by_track);
    moq_u64map_init(&b->groups);
    moq_u64map_init(&b->exports);
    moq_list_init(&b->egroups);
    moq_list_init(&b->all_imports);
    ev_async_init(&b->wake, wake_cb);
    b->wake.data = b;
    ev_async_start(loop, &b->wake);
    h->bridges[index] = b;
    *out = b;
    return MOQ_OK;
}

int moq_bridge_start(moq_bridge *b)
{
    if (b->started) return MOQ_OK;
    b->started = true;
    return moq_origin_watch(b->origin, NULL, 0, MOQ_EXCLUDE_BRIDGES, &local_watch_ops, b,
                            &b->watch);
}

void moq_bridge_stop(moq_bridge *b)
{
    if (!b || b->stopped) return;
    pthread_mutex_lock(&b->lock);
    b->closed = true;
    pthread_mutex_unlock(&b->lock);
    b->stopped = true;
    drop_all(take_inbox(b));
    ev_async_stop(b->loop, &b->wake);
    if (b->watch) moq_watch_close(b->watch);
    b->watch = NULL;
    size_t it = 0;
    uint64_t key;
    void *v;
    while (moq_u64map_next(&b->exports, &it, &key, &v))
        export_free(b, key);
    while (!moq_list_empty(&b->egroups))
        egroup_free(moq_list_first(&b->egroups, struct egroup, link));
    it = 0;
    while (moq_u64map_next(&b->groups, &it, &key, &v)) {
        moq_u64map_del(&b->groups, key);
        moq_group_abort(v, MOQ_REASON_DROPPED);
        moq_group_unref(v);
    }
    for (unsigned i = 0; i < b->hub->n; i++) {
        const void *k;
        size_t klen;
        it = 0;
        while (moq_map_next(&b->imports[i], &it, &k, &klen, &v))
            moq_map_del(&b->imports[i], k, klen);
    }
    while (!moq_list_empty(&b->all_imports))
        import_free(moq_list_first(&b->all_imports, struct import, link));
}

void moq_bridge_free(moq_bridge *b)
{
    if (!b) return;
    moq_bridge_stop(b);
    drop_all(take_inbox(b));
    b->hub->bridges[b->index] = NULL;
    for (unsigned i = 0; i < b->hub->n; i++)
        moq_map_free(&b->imports[i]);
    free(b->imports);
    moq_u64map_free(&b->itracks);
    moq_u64map_free(&b->by_track);
    moq_u64map_free(&b->groups);
    moq_u64map_free(&b->exports);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

void moq_bridge_call(moq_bridge *from, unsigned to, void (*fn)(void *arg, unsigned worker),
                     void (*drop)(void *arg), void *arg)
{
    struct msg *m = msg_new(M_CALL, 0, 0, NULL, 0, NULL, 0);
    if (!m) {
        if (drop) drop(arg);
        return;
    }
    m->call = fn;
    m->call_drop = drop;
    m->call_arg = arg;
    post(from, to, m);
}

void moq_bridge_stats_get(const moq_bridge *b, struct moq_bridge_stats *out)
{
    *out = b->stats;
}
