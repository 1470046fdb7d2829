/*
 * group.c - groups of frames, followers, and the per-track group cache (sorted by
 * sequence, with per-track and origin-wide least-recently-accessed lists for age expiry
 * and the byte budget).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/err.h"
#include "util/pool.h"

moq_group *moq_group_new(moq_origin *origin, uint64_t seq)
{
    moq_group *g = moq_pool_calloc(sizeof(*g));
    if (!g) return NULL;
    g->refs = 1;
    g->seq = seq;
    g->state = MOQ_GROUP_OPEN;
    g->max_frame = origin->cfg.max_frame_bytes;
    g->max_bytes = origin->cfg.max_group_bytes;
    moq_list_init(&g->track_lru);
    moq_list_init(&g->origin_lru);
    moq_list_init(&g->followers);
    return g;
}

moq_group *moq_group_ref(moq_group *g)
{
    if (g) g->refs++;
    return g;
}

static void group_free(moq_group *g)
{
    for (size_t i = 0; i < g->count; i++)
        moq_chunk_unref(g->frames[g->head + i].chunk);
    moq_pool_free(g->frames, g->cap * sizeof(*g->frames));
    moq_pool_free(g, sizeof(*g));
}

void moq_group_unref(moq_group *g)
{
    if (!g) return;
    if (--g->refs > 0) return;
    group_free(g);
}

uint64_t moq_group_sequence(const moq_group *g)
{
    return g->seq;
}

uint32_t moq_group_flags(const moq_group *g)
{
    return g->flags;
}

int moq_group_state(const moq_group *g, uint64_t *code)
{
    if (code) *code = g->state == MOQ_GROUP_ABORTED ? g->code : 0;
    return g->state;
}

uint64_t moq_group_frame_count(const moq_group *g)
{
    return g->dropped + g->count;
}

uint64_t moq_group_first_frame(const moq_group *g)
{
    return g->dropped;
}

const moq_frame *moq_group_frame(const moq_group *g, uint64_t i)
{
    if (i < g->dropped || i - g->dropped >= g->count) return NULL;
    return &g->frames[g->head + (i - g->dropped)];
}

uint64_t moq_group_bytes(const moq_group *g)
{
    return g->bytes;
}

/* --- followers ---------------------------------------------------------------------- */

moq_follower *moq_group_follow(moq_group *g, const moq_follower_ops *ops, void *ctx)
{
    if (!g || !ops) return NULL;
    moq_follower *f = moq_pool_calloc(sizeof(*f));
    if (!f) return NULL;
    f->group = moq_group_ref(g);
    f->ops = ops;
    f->ctx = ctx;
    f->born = g->gen;
    moq_list_push_back(&g->followers, &f->node.link);
    return f;
}

moq_group *moq_follower_group(const moq_follower *f)
{
    return f->group;
}

void moq_follower_close(moq_follower *f)
{
    if (!f) return;
    moq_list_remove(&f->node.link);
    moq_group_unref(f->group);
    moq_pool_free(f, sizeof(*f));
}

/* Tell followers about new frames (end == false) or the end of the group. */
static void followers_notify(moq_group *g, bool end)
{
    uint64_t d = ++g->gen;
    moq_group_ref(g);
    moq_inode cur;
    moq_iter_begin(&g->followers, &cur);
    moq_list *n;
    while ((n = moq_iter_next(&g->followers, &cur))) {
        moq_follower *f = moq_container_of(n, moq_follower, node.link);
        if (f->born >= d) continue;
        if (end) {
            if (f->ops->on_end) f->ops->on_end(f->ctx, f, g, g->state, g->code);
        } else {
            if (g->state != MOQ_GROUP_OPEN) break; /* they got (or get) on_end instead */
            if (f->ops->on_frames) f->ops->on_frames(f->ctx, f, g, moq_group_frame_count(g));
        }
    }
    moq_iter_end(&cur);
    moq_group_unref(g);
}

static void release_held_track(moq_group *g)
{
    moq_track *t = g->held;
    if (!t) return;
    g->held = NULL;
    moq_track_unpin(t);
}

void moq_group_end_internal(moq_group *g, int state, uint64_t code)
{
    if (g->state != MOQ_GROUP_OPEN) return;
    moq_group_ref(g);
    moq_track *t = g->cached ? g->track : NULL;
    if (t) moq_track_pin(t);
    g->state = state;
    g->code = state == MOQ_GROUP_ABORTED ? code : 0;
    if (state == MOQ_GROUP_ABORTED && g->cached) moq_cache_remove(g, false, 0);
    followers_notify(g, true);
    release_held_track(g);
    if (t) {
        moq_track_group_ended(t);
        moq_track_unpin(t);
    }
    moq_group_unref(g);
}

/* --- producer writes ------------------------------------------------------------------ */

static bool range_ok(uint64_t off, uint64_t len, uint64_t total)
{
    return off <= total && len <= total - off;
}

static int frames_reserve(moq_group *g)
{
    if (g->head + g->count < g->cap) return 0;
    if (g->head > 0 && g->head >= g->cap / 2) {
        memmove(g->frames, g->frames + g->head, g->count * sizeof(*g->frames));
        g->head = 0;
        return 0;
    }
    size_t cap = g->cap ? g->cap * 2 : 4;
    moq_frame *frames =
        moq_pool_realloc(g->frames, g->cap * sizeof(*frames), cap * sizeof(*frames));
    if (!frames) return MOQ_ERR_NOMEM;
    g->frames = frames;
    g->cap = cap;
    return 0;
}

/* The cache charge of o grows by add and shrinks by sub (the shared sum too). */
static void charge(moq_origin *o, uint64_t add, uint64_t sub)
{
    o->charge += add;
    o->charge -= sub;
    if (!o->cfg.shared_charge) return;
    if (add) atomic_fetch_add(o->cfg.shared_charge, add);
    if (sub) atomic_fetch_sub(o->cfg.shared_charge, sub);
}

/* What counts against cache_capacity: this origin's charge, or every origin's. */
static uint64_t charged(const moq_origin *o)
{
    return o->cfg.shared_charge ? atomic_load(o->cfg.shared_charge) : o->charge;
}

static void account_bytes(moq_group *g, uint64_t add, uint64_t sub)
{
    if (!g->cached) return;
    moq_origin *o = g->track->origin;
    o->stats.cached_bytes += add;
    o->stats.cached_bytes -= sub;
    charge(o, add, sub);
}

/* The per-group cap: drop the oldest frames of a group that grew past max_bytes. */
static void drop_front_frames(moq_group *g)
{
    while (g->bytes > g->max_bytes && g->count > 1) {
        moq_frame *f = &g->frames[g->head];
        g->bytes -= f->payload_len;
        account_bytes(g, 0, f->payload_len);
        moq_chunk_unref(f->chunk);
        g->head++;
        g->count--;
        g->dropped++;
    }
}

int moq_group_append(moq_group *g, const moq_frame *frame, uint64_t now)
{
    if (!g || !frame || !frame->chunk) {
        if (frame) moq_chunk_unref(frame->chunk);
        return MOQ_ERR_INVALID;
    }
    moq_chunk *c = frame->chunk;
    if (g->state != MOQ_GROUP_OPEN) {
        moq_chunk_unref(c);
        return MOQ_ERR_CLOSED;
    }
    bool valid = range_ok(frame->payload_off, frame->payload_len, c->len);
    for (int i = 0; i < 2; i++)
        if (frame->hdr_len[i] && !range_ok(frame->hdr_off[i], frame->hdr_len[i], c->len))
            valid = false;
    if (frame->side_len && !range_ok(frame->side_off, frame->side_len, c->len)) valid = false;
    if (!valid) {
        moq_chunk_unref(c);
        return MOQ_ERR_INVALID;
    }
    if (frame->payload_len > g->max_frame) {
        moq_chunk_unref(c);
        moq_group_end_internal(g, MOQ_GROUP_ABORTED, MOQ_REASON_FRAME_TOO_LARGE);
        return MOQ_ERR_TOO_LARGE;
    }
    if (frames_reserve(g) < 0) {
        moq_chunk_unref(c);
        return MOQ_ERR_NOMEM;
    }
    g->frames[g->head + g->count++] = *frame;
    g->bytes += frame->payload_len;
    account_bytes(g, frame->payload_len, 0);
    drop_front_frames(g);

    moq_group_ref(g);
    if (g->cached) {
        moq_track *t = g->track;
        moq_origin *o = t->origin;
        t->frames_in++;
        t->bytes_in += frame->payload_len;
        moq_origin_saw(o, now);
        moq_cache_touch(g, now);
        moq_cache_expire(t, now, false);
        moq_cache_enforce_budget(o, g);
    }
    followers_notify(g, false);
    moq_group_unref(g);
    return 0;
}

void moq_group_touch(moq_group *g, uint64_t now)
{
    if (!g || !g->cached || g->state != MOQ_GROUP_OPEN) return;
    moq_origin_saw(g->track->origin, now);
    moq_cache_touch(g, now);
}

int moq_group_finish(moq_group *g, uint64_t now)
{
    if (!g) return MOQ_ERR_INVALID;
    if (g->state != MOQ_GROUP_OPEN) return MOQ_ERR_CLOSED;
    if (g->cached) {
        moq_origin_saw(g->track->origin, now);
        moq_cache_touch(g, now);
    }
    moq_group_end_internal(g, MOQ_GROUP_FINISHED, 0);
    return 0;
}

int moq_group_abort(moq_group *g, uint64_t code)
{
    if (!g) return MOQ_ERR_INVALID;
    if (g->state != MOQ_GROUP_OPEN) return MOQ_ERR_CLOSED;
    moq_group_end_internal(g, MOQ_GROUP_ABORTED, code);
    return 0;
}

/* --- cache ------------------------------------------------------------------------------ */

size_t moq_cache_lower_bound(const moq_track *t, uint64_t seq)
{
    size_t lo = 0, hi = t->ngroups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->groups[mid]->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

moq_group *moq_cache_find(const moq_track *t, uint64_t seq)
{
    size_t i = moq_cache_lower_bound(t, seq);
    return i < t->ngroups && t->groups[i]->seq == seq ? t->groups[i] : NULL;
}

/* Insert into both LRU lists keeping them ordered by last access (usually at the tail). */
static void lru_insert(moq_group *g)
{
    moq_track *t = g->track;
    moq_origin *o = t->origin;
    moq_list *pos = t->lru.prev;
    while (pos != &t->lru &&
           moq_container_of(pos, moq_group, track_lru)->last_access > g->last_access)
        pos = pos->prev;
    moq_list_insert_after(pos, &g->track_lru);
    pos = o->lru.prev;
    while (pos != &o->lru &&
           moq_container_of(pos, moq_group, origin_lru)->last_access > g->last_access)
        pos = pos->prev;
    moq_list_insert_after(pos, &g->origin_lru);
    g->in_lru = true;
}

static void lru_remove(moq_group *g)
{
    if (!g->in_lru) return;
    moq_list_remove(&g->track_lru);
    moq_list_remove(&g->origin_lru);
    g->in_lru = false;
}

int moq_cache_insert(moq_track *t, moq_group *g, uint64_t now)
{
    if (t->ngroups == t->cap_groups) {
        size_t cap = t->cap_groups ? t->cap_groups * 2 : 8;
        moq_group **groups = realloc(t->groups, cap * sizeof(*groups));
        if (!groups) return MOQ_ERR_NOMEM;
        t->groups = groups;
        t->cap_groups = cap;
    }
    size_t i = moq_cache_lower_bound(t, g->seq);
    memmove(t->groups + i + 1, t->groups + i, (t->ngroups - i) * sizeof(*t->groups));
    t->groups[i] = moq_group_ref(g);
    t->ngroups++;
    g->track = t;
    g->cached = true;
    g->last_access = now;
    g->born = ++t->gen;

    if (g->visible && (!t->latest || g->seq > t->latest->seq)) {
        if (t->latest) lru_insert(t->latest);
        t->latest = g;
    } else {
        lru_insert(g);
    }

    moq_origin *o = t->origin;
    o->stats.groups_cached++;
    o->stats.cached_bytes += g->bytes;
    charge(o, g->bytes + MOQ_GROUP_OVERHEAD, 0);
    return 0;
}

void moq_cache_remove(moq_group *g, bool abort_open, uint64_t code)
{
    if (!g->cached) return;
    moq_track *t = g->track;
    moq_origin *o = t->origin;
    size_t i = moq_cache_lower_bound(t, g->seq);
    if (i < t->ngroups && t->groups[i] == g) {
        memmove(t->groups + i, t->groups + i + 1, (t->ngroups - i - 1) * sizeof(*t->groups));
        t->ngroups--;
    }
    if (t->latest == g) t->latest = NULL;
    lru_remove(g);
    o->stats.groups_cached--;
    o->stats.cached_bytes -= g->bytes;
    charge(o, 0, g->bytes + MOQ_GROUP_OVERHEAD);
    g->track = NULL;
    g->cached = false;
    /* The cache's reference keeps g alive through the notifications below. */
    bool end = abort_open && g->state == MOQ_GROUP_OPEN;
    if (end) {
        moq_track_pin(t);
        moq_group_end_internal(g, MOQ_GROUP_ABORTED, code);
    }
    release_held_track(g);
    moq_group_unref(g);
    if (end) {
        moq_track_group_ended(t);
        moq_track_unpin(t);
    }
}

void moq_cache_touch(moq_group *g, uint64_t now)
{
    if (now <= g->last_access) return; /* keeps the LRU lists ordered */
    g->last_access = now;
    if (!g->in_lru) return;
    moq_track *t = g->track;
    moq_list_remove(&g->track_lru);
    moq_list_push_back(&t->lru, &g->track_lru);
    moq_list_remove(&g->origin_lru);
    moq_list_push_back(&t->origin->lru, &g->origin_lru);
}

/* The least recently used group older than the track's max age: the first in the LRU list,
 * or with open_too false the first finished one (the list is ordered by last access). */
static moq_group *expired_group(const moq_track *t, uint64_t now, bool open_too)
{
    uint64_t max_age = moq_track_max_age_us(t);
    const moq_list *pos;
    for (pos = t->lru.next; pos != &t->lru; pos = pos->next) {
        moq_group *g = moq_container_of(pos, moq_group, track_lru);
        if (now <= g->last_access || now - g->last_access <= max_age) return NULL;
        if (open_too || g->state != MOQ_GROUP_OPEN) return g;
    }
    return NULL;
}

void moq_cache_expire(moq_track *t, uint64_t now, bool open_too)
{
    moq_track_pin(t);
    moq_group *g;
    while ((g = expired_group(t, now, open_too))) {
        t->origin->stats.expirations++;
        moq_cache_remove(g, true, MOQ_REASON_OLD);
    }
    moq_track_unpin(t);
}

void moq_cache_enforce_budget(moq_origin *o, const moq_group *keep)
{
    if (!o->cfg.cache_capacity) return;
    while (charged(o) > o->cfg.cache_capacity && !moq_list_empty(&o->lru)) {
        moq_group *g = moq_list_first(&o->lru, moq_group, origin_lru);
        if (g == keep) break; /* never the victim of its own write */
        moq_track *t = g->track;
        o->stats.evictions++;
        moq_track_pin(t);
        moq_cache_remove(g, true, MOQ_REASON_EVICTED);
        moq_track_unpin(t);
    }
}

uint64_t moq_cache_next_expiry(const moq_track *t)
{
    /* only finished groups expire on time alone */
    const moq_list *pos;
    for (pos = t->lru.next; pos != &t->lru; pos = pos->next) {
        const moq_group *g = moq_container_of(pos, moq_group, track_lru);
        if (g->state == MOQ_GROUP_OPEN) continue;
        uint64_t age = moq_track_max_age_us(t);
        if (g->last_access > UINT64_MAX - age - 1) return UINT64_MAX;
        return g->last_access + age + 1;
    }
    return UINT64_MAX;
}
