/*
 * track.c - tracks (one per (broadcast, name, serving route)), the subscriber aggregate
 * that drives the producer, subscriptions with replay and live fan-out, producer writes
 * and fetches.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/err.h"

void moq_track_info_default(moq_track_info *info)
{
    memset(info, 0, sizeof(*info));
    info->max_latency_ms = MOQ_DEFAULT_MAX_LATENCY_MS;
    info->timescale = 1000;
}

uint64_t moq_track_max_age_us(const moq_track *t)
{
    uint64_t ms = t->info_known ? t->info.max_latency_ms : MOQ_DEFAULT_MAX_LATENCY_MS;
    uint64_t us = ms > UINT64_MAX / 1000 ? UINT64_MAX : ms * 1000;
    uint64_t ceiling = t->origin->cfg.cache_duration_us;
    return ceiling && us > ceiling ? ceiling : us;
}

/* --- lifetime ------------------------------------------------------------------------- */

moq_track *moq_track_new(moq_broadcast *bc, const uint8_t *name, size_t name_len, moq_route *route)
{
    moq_track *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->name = malloc(name_len ? name_len : 1);
    t->path = malloc(bc->path_len ? bc->path_len : 1);
    if (!t->name || !t->path) goto fail;
    if (name_len) memcpy(t->name, name, name_len);
    if (bc->path_len) memcpy(t->path, bc->path, bc->path_len);
    t->name_len = name_len;
    t->path_len = bc->path_len;
    moq_track *head = moq_map_get(&bc->tracks_by_name, name, name_len);
    if (moq_map_put(&bc->tracks_by_name, name, name_len, t) < 0) goto fail;
    t->next_same = head;
    t->origin = bc->origin;
    t->bc = bc;
    t->route = route;
    t->state = TRACK_LIVE;
    moq_list_init(&t->subs);
    moq_list_init(&t->lru);
    moq_list_push_back(&bc->tracks, &t->bc_node.link);
    moq_list_push_back(&bc->origin->tracks, &t->all.link);
    bc->origin->stats.tracks++;
    return t;
fail:
    free(t->name);
    free(t->path);
    free(t);
    return NULL;
}

moq_track *moq_track_find(moq_broadcast *bc, const uint8_t *name, size_t name_len, moq_route *route,
                          bool any_route)
{
    for (moq_track *t = moq_map_get(&bc->tracks_by_name, name, name_len); t; t = t->next_same)
        if (any_route || t->route == route) return t;
    return NULL;
}

static void track_detach(moq_track *t)
{
    moq_broadcast *bc = t->bc;
    if (!bc) return;
    moq_track *head = moq_map_get(&bc->tracks_by_name, t->name, t->name_len);
    if (head == t) {
        if (t->next_same)
            moq_map_put(&bc->tracks_by_name, t->name, t->name_len, t->next_same);
        else
            moq_map_del(&bc->tracks_by_name, t->name, t->name_len);
    } else {
        for (moq_track *p = head; p; p = p->next_same)
            if (p->next_same == t) {
                p->next_same = t->next_same;
                break;
            }
    }
    t->next_same = NULL;
    moq_list_remove(&t->bc_node.link);
    t->bc = NULL;
}

static void track_release(moq_track *t)
{
    if (!t->requested) return;
    moq_route *r = t->route;
    t->requested = false;
    r->ops->track_release(r->ctx, r, t);
}

/* Let the previous route go (its groups in flight are done, or no longer wanted). */
static void drain_release(moq_track *t)
{
    moq_route *r = t->drain;
    if (!r) return;
    t->drain = NULL;
    r->ops->track_release(r->ctx, r, t);
}

static void track_destroy(moq_track *t)
{
    if (t->requested || t->drain) {
        t->refs = 1; /* a pin while the producers hear about it */
        track_detach(t);
        drain_release(t);
        track_release(t);
        if (--t->refs > 0) return;
    }
    track_detach(t);
    while (t->ngroups)
        moq_cache_remove(t->groups[t->ngroups - 1], false, 0);
    moq_list_remove(&t->all.link);
    t->origin->stats.tracks--;
    free(t->groups);
    free(t->name);
    free(t->path);
    free(t);
}

void moq_track_pin(moq_track *t)
{
    t->refs++;
}

/* Whether a track nobody holds any more stays, for a subscriber coming back to its cache. */
static bool track_may_stay_warm(const moq_track *t)
{
    return t->origin->cfg.track_keep_us > 0 && !t->keep_expired && t->state != TRACK_ABORTED &&
           t->bc && t->bc->state != BC_ENDED && t->ngroups > 0 && !t->requested && !t->drain;
}

void moq_track_unpin(moq_track *t)
{
    if (--t->refs > 0) return;
    if (track_may_stay_warm(t)) {
        t->refs = 1; /* the warm reference */
        t->warm = true;
        t->warm_since = t->origin->now;
        return;
    }
    track_destroy(t);
}

/* Drop the warm reference: for good (expire) or because a subscriber took the track. */
static void track_cool(moq_track *t, bool expire)
{
    if (expire) t->keep_expired = true;
    if (!t->warm) return;
    t->warm = false;
    moq_track_unpin(t);
}

void moq_track_free_all(moq_track *t)
{
    for (size_t i = 0; i < t->ngroups; i++)
        if (t->groups[i]->held == t) t->groups[i]->held = NULL;
    t->requested = false;
    track_detach(t);
    while (t->ngroups)
        moq_cache_remove(t->groups[t->ngroups - 1], false, 0);
    moq_list_remove(&t->all.link);
    free(t->groups);
    free(t->name);
    free(t->path);
    free(t);
}

/* --- the producer side of a track: aggregate, request, release ----------------------- */

static void track_aggregate(const moq_track *t, moq_sub_prefs *out)
{
    memset(out, 0, sizeof(*out));
    out->info_only = true;
    bool any = false, unbounded = false;
    uint64_t start = UINT64_MAX, end = 0;
    moq_list *pos;
    moq_inode_each(pos, &t->subs)
    {
        const moq_subscription *s = moq_container_of(pos, moq_subscription, node.link);
        const moq_sub_prefs *p = &s->prefs;
        if (p->info_only) continue;
        if (!any) out->ordered = true;
        any = true;
        out->info_only = false;
        if (p->priority > out->priority) out->priority = p->priority;
        out->ordered = out->ordered && p->ordered;
        if (p->max_latency_ms > out->max_latency_ms) out->max_latency_ms = p->max_latency_ms;
        if (p->has_start && p->start_group < start) start = p->start_group;
        if (!p->has_end)
            unbounded = true;
        else if (p->end_group > end)
            end = p->end_group;
    }
    if (!any) return;
    out->has_start = start != UINT64_MAX;
    out->start_group = out->has_start ? start : 0;
    out->has_end = !unbounded;
    out->end_group = unbounded ? 0 : end;
    if (t->info_known && out->max_latency_ms > t->info.max_latency_ms)
        out->max_latency_ms = t->info.max_latency_ms;
}

static bool prefs_equal(const moq_sub_prefs *a, const moq_sub_prefs *b)
{
    return a->priority == b->priority && a->ordered == b->ordered &&
           a->max_latency_ms == b->max_latency_ms && a->has_start == b->has_start &&
           a->start_group == b->start_group && a->has_end == b->has_end &&
           a->end_group == b->end_group && a->info_only == b->info_only;
}

void moq_track_sync_producer(moq_track *t)
{
    moq_route *r = t->route;
    if (t->nsubs == 0 && t->state != TRACK_ABORTED) drain_release(t);
    if (!r || t->state == TRACK_ABORTED) return;
    if (t->nsubs == 0) {
        track_release(t);
        return;
    }
    if (r->removing || (r->withdrawn && !t->requested)) return;
    if (!t->requested && t->state == TRACK_FINISHED) return; /* nothing left to ask for */
    moq_sub_prefs agg;
    track_aggregate(t, &agg);
    if (!t->requested) {
        t->requested = true;
        t->agg = agg;
        r->ops->track_request(r->ctx, r, t, &t->agg);
    } else if (!prefs_equal(&agg, &t->agg)) {
        t->agg = agg;
        if (r->ops->track_update) r->ops->track_update(r->ctx, r, t, &t->agg);
    }
}

/* --- notifications to subscribers ------------------------------------------------------ */

static bool sub_wants(const moq_subscription *s, uint64_t seq)
{
    if (s->prefs.info_only) return false;
    if (s->floor_set && seq < s->floor) return false;
    if (s->prefs.has_end && seq > s->prefs.end_group) return false;
    return true;
}

static void sub_unpin(moq_subscription *s)
{
    if (--s->pins == 0 && s->closed) free(s);
}

static void subs_notify_group(moq_track *t, moq_group *g)
{
    uint64_t d = g->born;
    moq_track_pin(t);
    moq_group_ref(g);
    moq_inode cur;
    moq_iter_begin(&t->subs, &cur);
    moq_list *n;
    while ((n = moq_iter_next(&t->subs, &cur))) {
        if (t->state == TRACK_ABORTED || g->state == MOQ_GROUP_ABORTED) break;
        moq_subscription *s = moq_container_of(n, moq_subscription, node.link);
        if (s->born >= d || s->ended || !sub_wants(s, g->seq)) continue;
        if (s->ops->on_group) s->ops->on_group(s->ctx, s, g);
    }
    moq_iter_end(&cur);
    moq_group_unref(g);
    moq_track_unpin(t);
}

enum { NOTE_INFO, NOTE_FINISH, NOTE_ABORT };

static void subs_notify(moq_track *t, int what)
{
    uint64_t d = ++t->gen;
    moq_track_pin(t);
    moq_inode cur;
    moq_iter_begin(&t->subs, &cur);
    moq_list *n;
    while ((n = moq_iter_next(&t->subs, &cur))) {
        moq_subscription *s = moq_container_of(n, moq_subscription, node.link);
        if (s->born >= d || s->ended) continue;
        switch (what) {
        case NOTE_INFO:
            if (s->ops->on_info) s->ops->on_info(s->ctx, s, &t->info);
            break;
        case NOTE_FINISH:
            if (s->ops->on_finish) s->ops->on_finish(s->ctx, s, t->final_seq);
            break;
        case NOTE_ABORT:
            s->ended = true;
            if (s->ops->on_abort) s->ops->on_abort(s->ctx, s, t->abort_code);
            break;
        }
    }
    moq_iter_end(&cur);
    moq_track_unpin(t);
}

/* --- subscription attach / detach / replay --------------------------------------------- */

static void sub_attach(moq_subscription *s, moq_track *t)
{
    s->track = t;
    s->born = t->gen;
    moq_list_push_back(&t->subs, &s->node.link);
    t->nsubs++;
    moq_track_pin(t);
    t->keep_expired = false;
    track_cool(t, false);
}

/* Detach from the track (which may then release its producer or be freed). */
static void sub_detach(moq_subscription *s)
{
    moq_track *t = s->track;
    if (!t) return;
    moq_list_remove(&s->node.link);
    t->nsubs--;
    s->track = NULL;
    moq_track_sync_producer(t);
    moq_track_unpin(t);
}

static moq_group *latest_visible(const moq_track *t)
{
    if (t->latest) return t->latest;
    for (size_t i = t->ngroups; i > 0; i--) {
        moq_group *g = t->groups[i - 1];
        if (g->visible && g->state != MOQ_GROUP_ABORTED) return g;
    }
    return NULL;
}

static void sub_init_floor(moq_subscription *s, const moq_track *t)
{
    if (s->prefs.has_start) {
        s->floor_set = true;
        s->floor = s->prefs.start_group;
        return;
    }
    moq_group *g = latest_visible(t);
    s->floor_set = g != NULL;
    s->floor = g ? g->seq : 0;
}

/* What a subscription was able to receive before an update. */
typedef struct sub_range {
    bool none;
    bool floor_set;
    uint64_t floor;
    bool has_end;
    uint64_t end;
} sub_range;

static bool range_has(const sub_range *r, uint64_t seq)
{
    if (r->none) return false;
    if (r->floor_set && seq < r->floor) return false;
    if (r->has_end && seq > r->end) return false;
    return true;
}

/* Deliver cached visible groups born at or before `born` that the subscription wants now
 * and could not receive under `before` (NULL: nothing), in sequence order. */
static void sub_replay_groups(moq_subscription *s, moq_track *t, uint64_t born,
                              const sub_range *before)
{
    uint64_t next = s->floor_set ? s->floor : 0;
    for (;;) {
        if (s->closed || s->ended || s->track != t || t->state == TRACK_ABORTED) return;
        moq_group *g = NULL;
        for (size_t i = moq_cache_lower_bound(t, next); i < t->ngroups; i++) {
            moq_group *c = t->groups[i];
            if (s->prefs.has_end && c->seq > s->prefs.end_group) break;
            if (c->visible && c->born <= born && c->state != MOQ_GROUP_ABORTED &&
                sub_wants(s, c->seq) && !(before && range_has(before, c->seq))) {
                g = c;
                break;
            }
        }
        if (!g) return;
        moq_group_ref(g);
        if (s->ops->on_group) s->ops->on_group(s->ctx, s, g);
        bool last = g->seq == UINT64_MAX;
        next = g->seq + 1;
        moq_group_unref(g);
        if (last) return;
    }
}

static bool sub_alive(const moq_subscription *s, const moq_track *t)
{
    return !s->closed && !s->ended && s->track == t;
}

/* Bring a new subscription up to the track's state as of its birth. */
static void sub_replay(moq_subscription *s, moq_track *t, bool info, bool finished,
                       uint64_t final_seq)
{
    uint64_t born = s->born;
    if (info && sub_alive(s, t) && s->ops->on_info) s->ops->on_info(s->ctx, s, &t->info);
    if (!s->prefs.info_only && sub_alive(s, t)) sub_replay_groups(s, t, born, NULL);
    if (finished && sub_alive(s, t) && s->ops->on_finish) s->ops->on_finish(s->ctx, s, final_seq);
}

static void sub_fail(moq_subscription *s, uint64_t code)
{
    s->ended = true;
    s->pins++;
    sub_detach(s);
    if (!s->closed && s->ops->on_abort) s->ops->on_abort(s->ctx, s, code);
    sub_unpin(s);
}

/* --- routing ------------------------------------------------------------------------------ */

/* As in origin.c: among routes of one publisher. */
static bool route_better(const moq_route *a, const moq_route *b)
{
    if (a->nhops != b->nhops) return a->nhops < b->nhops;
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->seq > b->seq;
}

static bool route_clean_for_subs(const moq_track *t, const moq_route *r)
{
    moq_list *pos;
    moq_inode_each(pos, &t->subs)
    {
        const moq_subscription *s = moq_container_of(pos, moq_subscription, node.link);
        if (moq_route_excluded(r, s->exclude)) return false;
    }
    return true;
}

static moq_route *best_route_for_subs(const moq_track *t)
{
    moq_route *best = NULL;
    moq_list *pos;
    for (pos = t->bc->routes.next; pos != &t->bc->routes; pos = pos->next) {
        moq_route *r = moq_container_of(pos, moq_route, link);
        if (!moq_route_usable(r) || !route_clean_for_subs(t, r)) continue;
        if (!best || route_better(r, best)) best = r;
    }
    return best;
}

/* Fail the subscribers that may not use r. Returns true if any callback ran. */
static bool unroute_tainted(moq_track *t, const moq_route *r)
{
    uint64_t hops[MOQ_MAX_HOPS];
    size_t nhops = r->nhops;
    memcpy(hops, r->hops, nhops * sizeof(*hops));
    bool bridge = r->ops->bridge;
    bool any = false;
    moq_inode cur;
    moq_iter_begin(&t->subs, &cur);
    moq_list *n;
    while ((n = moq_iter_next(&t->subs, &cur))) {
        moq_subscription *s = moq_container_of(n, moq_subscription, node.link);
        bool excluded = s->exclude == MOQ_EXCLUDE_BRIDGES
                            ? bridge
                            : s->exclude && moq_hops_contain(hops, nhops, s->exclude);
        if (!excluded) continue;
        any = true;
        sub_fail(s, MOQ_REASON_UNROUTABLE);
    }
    moq_iter_end(&cur);
    return any;
}

/* Whether the serving route has a group in flight that subscribers were given. */
static bool route_has_open_group(const moq_track *t, uint32_t epoch)
{
    for (size_t i = 0; i < t->ngroups; i++) {
        const moq_group *g = t->groups[i];
        if (g->visible && g->state == MOQ_GROUP_OPEN && g->epoch == epoch) return true;
    }
    return false;
}

/* A new route writes groups after the newest one the track has: groups already given to
 * subscribers are never delivered twice, from the start or in part. */
static void track_switch_route(moq_track *t, moq_route *to)
{
    t->route = to;
    t->epoch++;
    if (t->has_max_seq && t->max_seq < UINT64_MAX && (!t->floor_set || t->floor < t->max_seq + 1)) {
        t->floor_set = true;
        t->floor = t->max_seq + 1;
    }
}

void moq_track_reroute(moq_track *t)
{
    moq_track_pin(t);
    if (t->drain && t->drain->removing) drain_release(t);
    for (int round = 0; round < 16; round++) {
        if (t->state == TRACK_ABORTED || !t->bc || t->bc->state == BC_ENDED) break;
        moq_route *desired = NULL;
        if (t->bc->nroutes > 0) {
            desired = best_route_for_subs(t);
            if (!desired) {
                desired = moq_bc_best_route(t->bc, 0);
                if (desired && unroute_tainted(t, desired)) continue;
            }
        }
        if (t->route == desired) break;
        moq_route *old = t->route;
        bool make_before_break =
            t->requested && old && !old->removing && desired && route_has_open_group(t, t->epoch);
        if (make_before_break && t->drain) {
            drain_release(t); /* a second move: the oldest route goes */
            continue;
        }
        if (make_before_break) {
            /* the old route finishes its groups in flight while the new one starts */
            t->drain = old;
            t->drain_epoch = t->epoch;
            t->drain_end = t->max_seq;
            t->requested = false;
            track_switch_route(t, desired);
            break;
        }
        if (t->requested) {
            track_release(t);
            continue; /* callbacks ran: look again */
        }
        track_switch_route(t, desired);
        break;
    }
    moq_track_sync_producer(t);
    moq_track_unpin(t);
}

void moq_track_group_ended(moq_track *t)
{
    if (t->drain && !route_has_open_group(t, t->drain_epoch)) drain_release(t);
}

bool moq_track_outlives_broadcast(const moq_track *t)
{
    return t->route && t->route->withdrawn && !t->route->removing && t->requested &&
           t->state != TRACK_ABORTED;
}

void moq_track_route_gone(moq_track *t, const moq_route *r, uint64_t code)
{
    moq_track_pin(t);
    if (t->drain == r) drain_release(t);
    if (t->route == r && t->bc) moq_track_broadcast_ended(t, code);
    moq_track_unpin(t);
}

void moq_track_tick(moq_track *t, uint64_t now)
{
    moq_track_pin(t);
    if (!moq_list_empty(&t->lru)) moq_cache_expire(t, now, false);
    uint64_t keep = t->origin->cfg.track_keep_us;
    if (t->warm && (t->ngroups == 0 || (now >= t->warm_since && now - t->warm_since >= keep)))
        track_cool(t, true);
    moq_track_unpin(t);
}

uint64_t moq_track_next_deadline(const moq_track *t)
{
    uint64_t next = moq_cache_next_expiry(t);
    uint64_t keep = t->origin->cfg.track_keep_us;
    if (t->warm && t->warm_since <= UINT64_MAX - keep) {
        uint64_t at = t->warm_since + keep;
        if (at < next) next = at;
    }
    return next;
}

void moq_track_abort_internal(moq_track *t, uint64_t code)
{
    if (t->state == TRACK_ABORTED) return;
    moq_track_pin(t);
    t->state = TRACK_ABORTED;
    t->abort_code = code;
    track_detach(t);
    /* Release first: the route may be freed by any callback after this. */
    drain_release(t);
    track_release(t);
    t->route = NULL;
    while (t->ngroups)
        moq_cache_remove(t->groups[t->ngroups - 1], true, code);
    subs_notify(t, NOTE_ABORT);
    track_cool(t, true);
    moq_track_unpin(t);
}

void moq_track_broadcast_ended(moq_track *t, uint64_t code)
{
    if (t->state != TRACK_FINISHED) {
        moq_track_abort_internal(t, code);
        return;
    }
    /* A finished track is complete: its subscribers keep the groups they were given and
     * those still cached, and hear nothing new. Only the producer goes. */
    moq_track_pin(t);
    track_detach(t);
    drain_release(t);
    track_release(t);
    t->route = NULL;
    track_cool(t, true);
    moq_track_unpin(t);
}

/* --- producer API ------------------------------------------------------------------------ */

const uint8_t *moq_track_name(const moq_track *t, size_t *len)
{
    if (len) *len = t->name_len;
    return t->name;
}

const uint8_t *moq_track_path(const moq_track *t, size_t *len)
{
    if (len) *len = t->path_len;
    return t->path;
}

const moq_sub_prefs *moq_track_prefs(const moq_track *t)
{
    return &t->agg;
}

const moq_track_info *moq_track_get_info(const moq_track *t)
{
    return t->info_known ? &t->info : NULL;
}

static bool track_served_by(const moq_track *t, const moq_route *r)
{
    return t && r && t->route == r && t->requested && t->state != TRACK_ABORTED;
}

/* r is the route the track moved away from, finishing its groups in flight. */
static bool track_drained_by(const moq_track *t, const moq_route *r)
{
    return t && r && t->drain == r && t->state != TRACK_ABORTED;
}

static void track_install_info(moq_track *t, const moq_track_info *info)
{
    t->info = *info;
    uint64_t ceiling_ms = t->origin->cfg.cache_duration_us / 1000;
    if (t->origin->cfg.cache_duration_us && t->info.max_latency_ms > ceiling_ms)
        t->info.max_latency_ms = ceiling_ms;
    if (t->info_known) return;
    t->info_known = true;
    subs_notify(t, NOTE_INFO);
}

int moq_track_set_info(moq_track *t, moq_route *r, const moq_track_info *info)
{
    if (!info || info->timescale == 0) return MOQ_ERR_INVALID;
    if (!track_served_by(t, r)) return MOQ_ERR_CLOSED;
    moq_track_pin(t);
    track_install_info(t, info);
    moq_track_sync_producer(t); /* the latency clamp may change the aggregate */
    moq_track_unpin(t);
    return 0;
}

int moq_track_begin_group(moq_track *t, moq_route *r, uint64_t seq, uint64_t now, moq_group **out)
{
    return moq_track_begin_group_flags(t, r, seq, now, 0, out);
}

int moq_track_begin_group_flags(moq_track *t, moq_route *r, uint64_t seq, uint64_t now,
                                uint32_t flags, moq_group **out)
{
    if (!out) return MOQ_ERR_INVALID;
    *out = NULL;
    bool drain = track_drained_by(t, r);
    if (!drain && !track_served_by(t, r)) return MOQ_ERR_CLOSED;
    if (drain && seq > t->drain_end) return MOQ_ERR_CLOSED;              /* the new route's part */
    if (!drain && t->floor_set && seq < t->floor) return MOQ_ERR_EXISTS; /* the old route's */
    if (t->state == TRACK_FINISHED && seq >= t->final_seq) return MOQ_ERR_CLOSED;
    int rc = 0;
    moq_origin_saw(t->origin, now);
    moq_track_pin(t);
    if (!t->info_known) {
        moq_track_info def;
        moq_track_info_default(&def);
        track_install_info(t, &def);
    }
    moq_group *old = moq_cache_find(t, seq);
    if (old && (!old->visible || old->state == MOQ_GROUP_ABORTED)) moq_cache_remove(old, false, 0);
    if (drain ? !track_drained_by(t, r) : !track_served_by(t, r)) {
        rc = MOQ_ERR_CLOSED;
        goto out;
    }
    if (moq_cache_find(t, seq)) {
        rc = MOQ_ERR_EXISTS;
        goto out;
    }
    moq_group *g = moq_group_new(t->origin, seq);
    if (!g) {
        rc = MOQ_ERR_NOMEM;
        goto out;
    }
    g->visible = true;
    g->epoch = drain ? t->drain_epoch : t->epoch;
    g->flags = flags;
    if (moq_cache_insert(t, g, now) < 0) {
        moq_group_unref(g);
        rc = MOQ_ERR_NOMEM;
        goto out;
    }
    if (!t->has_max_seq || seq > t->max_seq) t->max_seq = seq;
    t->has_max_seq = true;
    t->groups_in++;
    *out = g;
    moq_cache_expire(t, now, true);
    moq_cache_enforce_budget(t->origin, g);
    subs_notify_group(t, g);
out:
    moq_track_unpin(t);
    return rc;
}

int moq_track_finish(moq_track *t, moq_route *r, uint64_t final_seq)
{
    if (!track_served_by(t, r) || t->state != TRACK_LIVE) return MOQ_ERR_CLOSED;
    if (t->has_max_seq && final_seq <= t->max_seq) return MOQ_ERR_INVALID;
    t->state = TRACK_FINISHED;
    t->final_seq = final_seq;
    subs_notify(t, NOTE_FINISH);
    return 0;
}

int moq_track_abort(moq_track *t, moq_route *r, uint64_t code)
{
    if (track_drained_by(t, r)) {
        /* the previous route failed: the new one carries on */
        moq_track_pin(t);
        drain_release(t);
        moq_track_unpin(t);
        return 0;
    }
    if (!track_served_by(t, r)) return MOQ_ERR_CLOSED;
    moq_track_abort_internal(t, code);
    return 0;
}

/* --- consumer API ------------------------------------------------------------------------ */

/* The route a consumer excluding `exclude` would use (NULL while lingering), or an error. */
static int resolve(moq_origin *o, const uint8_t *path, size_t path_len, uint64_t exclude,
                   moq_broadcast **bc_out, moq_route **route_out)
{
    moq_broadcast *bc = moq_bc_lookup(o, path, path_len);
    if (!bc || bc->state == BC_ENDED) return MOQ_ERR_NOT_FOUND;
    moq_route *r = NULL;
    if (bc->state == BC_LIVE) {
        r = moq_bc_best_route(bc, exclude);
        if (!r) return MOQ_ERR_NOT_FOUND;
    } else if (exclude && moq_hops_contain(bc->adv_hops, bc->adv_nhops, exclude)) {
        return MOQ_ERR_NOT_FOUND;
    }
    *bc_out = bc;
    *route_out = r;
    return 0;
}

int moq_origin_subscribe(moq_origin *o, const uint8_t *path, size_t path_len, const uint8_t *name,
                         size_t name_len, uint64_t exclude, const moq_sub_prefs *prefs,
                         const moq_subscriber_ops *ops, void *ctx, moq_subscription **out)
{
    if (!o || !out || !prefs || !ops || (path_len && !path) || (name_len && !name))
        return MOQ_ERR_INVALID;
    *out = NULL;
    if (!moq_path_valid(path, path_len)) return MOQ_ERR_INVALID;
    moq_broadcast *bc;
    moq_route *r;
    int rc = resolve(o, path, path_len, exclude, &bc, &r);
    if (rc < 0) return rc;

    moq_subscription *s = calloc(1, sizeof(*s));
    if (!s) return MOQ_ERR_NOMEM;
    moq_track *t = moq_track_find(bc, name, name_len, r, false);
    if (!t) t = moq_track_new(bc, name, name_len, r);
    if (!t) {
        free(s);
        return MOQ_ERR_NOMEM;
    }
    s->origin = o;
    s->exclude = exclude;
    s->prefs = *prefs;
    s->ops = ops;
    s->ctx = ctx;
    sub_attach(s, t);
    moq_list_push_back(&o->subs, &s->all);
    o->stats.subscriptions++;
    if (!prefs->info_only) sub_init_floor(s, t);
    *out = s;

    bool info = t->info_known, finished = t->state == TRACK_FINISHED;
    uint64_t final_seq = t->final_seq;
    moq_track_pin(t);
    s->pins++;
    sub_replay(s, t, info, finished, final_seq);
    if (s->track == t) moq_track_sync_producer(t);
    sub_unpin(s);
    moq_track_unpin(t);
    return 0;
}

int moq_subscription_update(moq_subscription *s, const moq_sub_prefs *prefs)
{
    if (!s || !prefs) return MOQ_ERR_INVALID;
    moq_track *t = s->track;
    if (!t || s->ended || t->state == TRACK_ABORTED) return MOQ_ERR_CLOSED;
    sub_range before = {s->prefs.info_only, s->floor_set, s->floor, s->prefs.has_end,
                        s->prefs.end_group};
    bool was_info_only = s->prefs.info_only;
    s->prefs = *prefs;
    if (!prefs->info_only) {
        if (was_info_only)
            sub_init_floor(s, t);
        else if (prefs->has_start) {
            s->floor_set = true;
            s->floor = prefs->start_group;
        }
    }
    moq_track_pin(t);
    s->pins++;
    if (!prefs->info_only) sub_replay_groups(s, t, t->gen, &before);
    if (s->track == t) moq_track_sync_producer(t);
    sub_unpin(s);
    moq_track_unpin(t);
    return 0;
}

void moq_subscription_close(moq_subscription *s)
{
    if (!s || s->closed) return;
    s->closed = true;
    moq_list_remove(&s->all);
    s->origin->stats.subscriptions--;
    s->pins++;
    sub_detach(s);
    sub_unpin(s);
}

void moq_sub_free_all(moq_subscription *s)
{
    if (s->track) {
        moq_list_remove(&s->node.link);
        s->track->nsubs--;
        s->track->refs--;
    }
    moq_list_remove(&s->all);
    free(s);
}

const moq_sub_prefs *moq_subscription_prefs(const moq_subscription *s)
{
    return &s->prefs;
}

bool moq_subscription_first_group(const moq_subscription *s, uint64_t *seq)
{
    if (s->prefs.info_only || !s->floor_set) return false;
    *seq = s->floor;
    return true;
}

const moq_track_info *moq_subscription_info(const moq_subscription *s)
{
    return s->track && !s->ended && s->track->info_known ? &s->track->info : NULL;
}

int moq_origin_fetch(moq_origin *o, const uint8_t *path, size_t path_len, const uint8_t *name,
                     size_t name_len, uint64_t exclude, uint64_t seq, uint8_t priority,
                     bool forward, uint64_t now, moq_group **out)
{
    if (!o || !out || (path_len && !path) || (name_len && !name)) return MOQ_ERR_INVALID;
    *out = NULL;
    if (!moq_path_valid(path, path_len)) return MOQ_ERR_INVALID;
    moq_origin_saw(o, now);
    moq_broadcast *bc;
    moq_route *r;
    int rc = resolve(o, path, path_len, exclude, &bc, &r);
    if (rc < 0) return rc;

    for (moq_track *t = moq_track_find(bc, name, name_len, NULL, true); t; t = t->next_same) {
        moq_group *g = moq_cache_find(t, seq);
        if (g && g->state != MOQ_GROUP_ABORTED) {
            moq_cache_touch(g, now);
            *out = moq_group_ref(g);
            return 0;
        }
    }
    if (!forward || !r || !r->ops->fetch_request) return MOQ_ERR_NOT_FOUND;

    moq_track *t = moq_track_find(bc, name, name_len, r, false);
    if (!t) t = moq_track_new(bc, name, name_len, r);
    if (!t) return MOQ_ERR_NOMEM;
    moq_track_pin(t); /* becomes the group's hold on the track */
    moq_group *g = moq_group_new(o, seq);
    if (!g || moq_cache_insert(t, g, now) < 0) {
        moq_group_unref(g);
        moq_track_unpin(t);
        return MOQ_ERR_NOMEM;
    }
    g->held = t;
    g->epoch = t->epoch;
    *out = g;
    moq_cache_enforce_budget(o, g);
    if (r->ops->fetch_request(r->ctx, r, t, g, priority) < 0) {
        moq_group_end_internal(g, MOQ_GROUP_ABORTED, MOQ_REASON_NOT_FOUND);
        moq_group_unref(g);
        *out = NULL;
        return MOQ_ERR_NOT_FOUND;
    }
    return 0;
}

static void track_cache_add(const moq_track *t, moq_track_cache *out)
{
    out->known = true;
    if (t->state == TRACK_FINISHED) {
        out->finished = true;
        out->final_seq = t->final_seq;
    }
    for (size_t i = 0; i < t->ngroups; i++) {
        const moq_group *g = t->groups[i];
        if (g->state == MOQ_GROUP_ABORTED) continue;
        if (!out->has_groups || g->seq < out->first) out->first = g->seq;
        if (!out->has_groups || g->seq > out->last) {
            out->last = g->seq;
            out->last_frames = g->dropped + g->count;
        }
        out->has_groups = true;
    }
}

int moq_origin_track_cache(const moq_origin *o, const uint8_t *path, size_t path_len,
                           const uint8_t *name, size_t name_len, uint64_t exclude,
                           moq_track_cache *out)
{
    if (!o || !out || (path_len && !path) || (name_len && !name)) return MOQ_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (!moq_path_valid(path, path_len)) return MOQ_ERR_INVALID;
    moq_broadcast *bc;
    moq_route *r;
    int rc = resolve((moq_origin *)o, path, path_len, exclude, &bc, &r);
    if (rc < 0) return rc;
    for (moq_track *t = moq_track_find(bc, name, name_len, NULL, true); t; t = t->next_same)
        track_cache_add(t, out);
    return 0;
}
