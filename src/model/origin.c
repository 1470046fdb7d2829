/*
 * origin.c - the path trie, broadcasts and their routes (best-route choice, linger),
 * announcement watches, tick, listing and teardown.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/err.h"

#define MIB (1024ull * 1024ull)

void moq_origin_config_default(moq_origin_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->linger_us = 5000000;
    cfg->max_frame_bytes = 32 * MIB;
    cfg->max_group_bytes = 32 * MIB;
}

/* --- paths and hops -------------------------------------------------------------------- */

bool moq_path_valid(const uint8_t *path, size_t len)
{
    size_t parts = len ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '/') parts++;
    return parts <= MOQ_MAX_PATH_PARTS;
}

bool moq_hops_contain(const uint64_t *hops, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (hops[i] == id) return true;
    return false;
}

/* The cluster-wide route key: FNV-1a-64 with a custom basis over the path bytes, then each
 * hop as 8 little-endian bytes. Every relay computes the same value for the same inputs. */
static uint64_t route_rank(const uint8_t *path, size_t len, const uint64_t *hops, size_t n)
{
    const uint64_t prime = 0x100000001b3ull;
    uint64_t h = 0x420C0DECB00Bull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ path[i]) * prime;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            h = (h ^ ((hops[i] >> (8 * b)) & 0xff)) * prime;
    return h;
}

/* Who published the content a chain carries: its first hop (the original publisher's
 * origin id), or the first known id when the publisher's own is unknown (a lite-03 hop
 * count: then the relay it entered through stands for it). */
static uint64_t chain_publisher(const uint64_t *hops, size_t n)
{
    if (n == 0) return MOQ_PUB_LOCAL;
    for (size_t i = 0; i < n; i++)
        if (hops[i]) return hops[i];
    return MOQ_PUB_UNKNOWN;
}

/* Whether two routes carry the same content, so one may continue what the other served.
 * An unknown publisher is never the same as another. */
static bool same_publisher(uint64_t a, uint64_t b)
{
    return a != MOQ_PUB_UNKNOWN && a == b;
}

/* Identity of an advertised hop chain, for noticing changes (never 0). */
static uintptr_t hops_tag(const uint64_t *hops, size_t n)
{
    uint64_t h = moq_hash_bytes(hops, n * sizeof(*hops)) ^ (n * 0x9e3779b97f4a7c15ull);
    return (uintptr_t)(h | 1);
}

_Static_assert(sizeof(uintptr_t) >= sizeof(uint64_t), "advertised-hops tags need 64-bit pointers");

/* --- trie -------------------------------------------------------------------------------- */

static moq_node *node_new(moq_node *parent, const uint8_t *seg, size_t len)
{
    moq_node *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->seg = malloc(len ? len : 1);
    if (!n->seg) {
        free(n);
        return NULL;
    }
    if (len) memcpy(n->seg, seg, len);
    n->seg_len = len;
    n->parent = parent;
    moq_map_init(&n->children);
    moq_list_init(&n->watches);
    return n;
}

static void node_free(moq_node *n)
{
    moq_map_free(&n->children);
    free(n->seg);
    free(n);
}

/* The node for `path`, created on demand when `create`. NULL when absent or on OOM. */
static moq_node *node_walk(moq_node *root, const uint8_t *path, size_t len, bool create)
{
    moq_node *n = root;
    size_t i = 0;
    while (len > 0 && i <= len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        moq_node *child = moq_map_get(&n->children, path + i, j - i);
        if (!child) {
            if (!create) return NULL;
            child = node_new(n, path + i, j - i);
            if (!child) return NULL;
            if (moq_map_put(&n->children, path + i, j - i, child) < 0) {
                node_free(child);
                return NULL;
            }
        }
        n = child;
        i = j + 1;
    }
    return n;
}

/* Remove empty nodes from n upwards. */
static void node_prune(moq_node *n)
{
    while (n && n->parent && !n->bc && n->nwatches == 0 && n->pins == 0 &&
           moq_map_len(&n->children) == 0) {
        moq_node *parent = n->parent;
        moq_map_del(&parent->children, n->seg, n->seg_len);
        node_free(n);
        n = parent;
    }
}

moq_broadcast *moq_bc_lookup(const moq_origin *o, const uint8_t *path, size_t len)
{
    moq_node *n = node_walk(o->root, path, len, false);
    return n ? n->bc : NULL;
}

/* --- broadcasts and routes ------------------------------------------------------------------ */

void moq_bc_pin(moq_broadcast *bc)
{
    bc->refs++;
}

void moq_bc_unpin(moq_broadcast *bc)
{
    if (--bc->refs > 0) return;
    moq_list_remove(&bc->all);
    moq_map_free(&bc->tracks_by_name);
    free(bc->path);
    free(bc);
}

static moq_broadcast *bc_new(moq_origin *o, moq_node *node, const uint8_t *path, size_t len)
{
    moq_broadcast *bc = calloc(1, sizeof(*bc));
    if (!bc) return NULL;
    bc->path = malloc(len ? len : 1);
    if (!bc->path) {
        free(bc);
        return NULL;
    }
    if (len) memcpy(bc->path, path, len);
    bc->path_len = len;
    bc->refs = 1;
    bc->origin = o;
    bc->node = node;
    bc->id = ++o->next_bc_id;
    bc->state = BC_LIVE;
    moq_list_init(&bc->routes);
    moq_list_init(&bc->linger_link);
    moq_list_init(&bc->tracks);
    moq_map_init(&bc->tracks_by_name);
    moq_list_push_back(&o->broadcasts, &bc->all);
    node->bc = bc;
    o->stats.broadcasts++;
    return bc;
}

/* Among routes of one publisher: the shortest chain, then the cluster-wide key (so every
 * relay agrees), then the newest (a publisher's new session beats its old one). */
static bool route_better(const moq_route *a, const moq_route *b)
{
    if (a->nhops != b->nhops) return a->nhops < b->nhops;
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->seq > b->seq;
}

moq_route *moq_bc_best_route(const moq_broadcast *bc, uint64_t exclude)
{
    moq_route *best = NULL;
    for (moq_list *pos = bc->routes.next; pos != &bc->routes; pos = pos->next) {
        moq_route *r = moq_container_of(pos, moq_route, link);
        if (!moq_route_usable(r)) continue;
        if (moq_route_excluded(r, exclude)) continue;
        if (!best || route_better(r, best)) best = r;
    }
    return best;
}

/* --- watches ------------------------------------------------------------------------------- */

static void watch_unpin(moq_watch *w)
{
    if (--w->pins == 0 && w->closed) free(w);
}

/* The route a watch advertises a live broadcast with, or NULL: the best usable one it may
 * see; for a bridge's watch, failing that, the newest standby it may see. */
static moq_route *watch_route(const moq_broadcast *bc, uint64_t exclude)
{
    moq_route *best = moq_bc_best_route(bc, exclude);
    if (best || exclude != MOQ_EXCLUDE_BRIDGES) return best;
    for (moq_list *pos = bc->routes.next; pos != &bc->routes; pos = pos->next) {
        moq_route *r = moq_container_of(pos, moq_route, link);
        if (!r->standby || r->removing || r->withdrawn || moq_route_excluded(r, exclude)) continue;
        if (!best || r->seq > best->seq) best = r;
    }
    return best;
}

/* Bring one watch's view of one broadcast up to date, emitting at most one event. State
 * based, so nested or repeated calls never duplicate or lose an event. */
static void watch_reconcile(moq_watch *w, moq_broadcast *bc, bool initial)
{
    if (w->closed) return;
    uint64_t hops[MOQ_MAX_HOPS];
    size_t nhops = 0;
    uint64_t seq = 0;
    bool visible = false;
    void *cur = moq_u64map_get(&w->adv, bc->id);
    if (bc->state == BC_LIVE) {
        moq_route *r = watch_route(bc, w->exclude);
        if (r) {
            visible = true;
            nhops = r->nhops;
            memcpy(hops, r->hops, nhops * sizeof(*hops));
            seq = r->seq;
        }
    } else if (bc->state == BC_LINGERING) {
        if (cur) return; /* still announced as it was */
        if (!w->exclude || !moq_hops_contain(bc->adv_hops, bc->adv_nhops, w->exclude)) {
            visible = true;
            nhops = bc->adv_nhops;
            memcpy(hops, bc->adv_hops, nhops * sizeof(*hops));
        }
    }
    /* A bridge tells the other workers of another publisher with the same chain too. */
    uint64_t seq_mix = w->exclude == MOQ_EXCLUDE_BRIDGES ? seq << 1 : 0;
    uintptr_t tag = visible ? hops_tag(hops, nhops) ^ (uintptr_t)seq_mix : 0;
    int kind;
    if (visible && !cur)
        kind = MOQ_ANNOUNCE_ACTIVE;
    else if (visible && (uintptr_t)cur != tag)
        kind = MOQ_ANNOUNCE_RESTART;
    else if (!visible && cur)
        kind = MOQ_ANNOUNCE_ENDED;
    else
        return;
    if (kind == MOQ_ANNOUNCE_ENDED)
        moq_u64map_del(&w->adv, bc->id);
    else if (moq_u64map_put(&w->adv, bc->id, (void *)tag) < 0)
        return; /* out of memory: stay silent rather than lose track of what we said */

    size_t skip = w->prefix_len;
    if (skip && bc->path_len > skip) skip++; /* the joining '/' */
    moq_broadcast *succ = bc->successor;
    moq_announce_event ev = {
        .kind = kind,
        .path = bc->path,
        .path_len = bc->path_len,
        .suffix = bc->path + skip,
        .suffix_len = bc->path_len - skip,
        .hops = hops,
        .nhops = kind == MOQ_ANNOUNCE_ENDED ? 0 : nhops,
        .seq = kind == MOQ_ANNOUNCE_ENDED ? 0 : seq,
        .initial = initial,
        .replaced = kind == MOQ_ANNOUNCE_ENDED && succ && succ->state == BC_LIVE &&
                    watch_route(succ, w->exclude) != NULL,
    };
    w->ops->on_announce(w->ctx, w, &ev);
}

/* Reconcile every watch whose prefix covers the broadcast at `leaf`. */
static void notify_watches(moq_node *leaf, moq_broadcast *bc)
{
    leaf->pins++;
    /* Ancestors of a pinned node keep a child, so they are never pruned meanwhile. */
    for (moq_node *n = leaf; n; n = n->parent) {
        moq_inode cur;
        moq_iter_begin(&n->watches, &cur);
        moq_list *it;
        while ((it = moq_iter_next(&n->watches, &cur)))
            watch_reconcile(moq_container_of(it, moq_watch, node.link), bc, false);
        moq_iter_end(&cur);
    }
    leaf->pins--;
    node_prune(leaf);
}

/* --- route changes -------------------------------------------------------------------------- */

/* After the route set changed: refresh the advertised hops, tell watchers, move tracks. */
static void bc_routes_changed(moq_broadcast *bc)
{
    if (bc->state == BC_ENDED) return;
    moq_bc_pin(bc);
    moq_route *best = moq_bc_best_route(bc, 0);
    if (best) {
        bc->adv_nhops = best->nhops;
        memcpy(bc->adv_hops, best->hops, best->nhops * sizeof(*best->hops));
    }
    if (bc->node) notify_watches(bc->node, bc);
    if (bc->state != BC_ENDED) {
        moq_inode cur;
        moq_iter_begin(&bc->tracks, &cur);
        moq_list *it;
        while ((it = moq_iter_next(&bc->tracks, &cur)))
            moq_track_reroute(moq_container_of(it, moq_track, bc_node.link));
        moq_iter_end(&cur);
    }
    moq_bc_unpin(bc);
}

/* The broadcast ends for watchers and new subscribers. Its tracks end too (code), except
 * those a withdrawn route still serves: they run until that route goes. */
static void bc_end(moq_broadcast *bc, uint64_t code)
{
    if (bc->state == BC_ENDED) return;
    moq_origin *o = bc->origin;
    moq_bc_pin(bc);
    moq_list_remove(&bc->linger_link);
    bc->state = BC_ENDED;
    o->stats.broadcasts--;
    moq_node *node = bc->node;
    bc->node = NULL;
    if (node->bc == bc) node->bc = NULL; /* (a takeover already put its successor there) */
    node->pins++;
    notify_watches(node, bc);
    moq_inode cur;
    moq_iter_begin(&bc->tracks, &cur);
    moq_list *it;
    while ((it = moq_iter_next(&bc->tracks, &cur))) {
        moq_track *t = moq_container_of(it, moq_track, bc_node.link);
        if (!moq_track_outlives_broadcast(t)) moq_track_broadcast_ended(t, code);
    }
    moq_iter_end(&cur);
    node->pins--;
    node_prune(node);
    bc->refs--; /* the trie's reference; our pin keeps it alive */
    moq_bc_unpin(bc);
}

static void bc_event(const moq_broadcast *bc, int event)
{
    const moq_origin_config *cfg = &bc->origin->cfg;
    if (cfg->broadcast_event)
        cfg->broadcast_event(cfg->broadcast_ctx, event, bc->path, bc->path_len);
}

/* A route of the lingering broadcast's publisher is back: it is live again. */
static void bc_splice(moq_broadcast *bc)
{
    if (bc->state != BC_LINGERING) return;
    bc->state = BC_LIVE;
    moq_list_remove(&bc->linger_link);
    bc_event(bc, MOQ_BROADCAST_RESUMED);
}

static bool bc_has_usable_route(const moq_broadcast *bc)
{
    for (moq_list *pos = bc->routes.next; pos != &bc->routes; pos = pos->next)
        if (moq_route_usable(moq_container_of(pos, moq_route, link))) return true;
    return false;
}

/* The most recently attached route waiting behind another publisher, or NULL. */
static moq_route *bc_newest_standby(const moq_broadcast *bc)
{
    moq_route *newest = NULL;
    for (moq_list *pos = bc->routes.next; pos != &bc->routes; pos = pos->next) {
        moq_route *r = moq_container_of(pos, moq_route, link);
        if (r->standby && !r->removing && !r->withdrawn && (!newest || r->seq > newest->seq))
            newest = r;
    }
    return newest;
}

static void route_attach(moq_route *r, moq_broadcast *bc)
{
    r->bc = bc;
    moq_bc_pin(bc);
    moq_list_push_back(&bc->routes, &r->link);
    bc->nroutes++;
}

static void route_detach(moq_route *r)
{
    moq_broadcast *bc = r->bc;
    moq_list_remove(&r->link);
    bc->nroutes--;
    moq_bc_unpin(bc);
}

/* `winner`, a route of `old`, carries another publisher's content, which replaces the
 * broadcast: `old` ends for watchers (they see it end, then the new one announced) and its
 * tracks end, so no subscriber is ever spliced from one publisher's groups into another's.
 * A new broadcast at the same path takes over every route that still announces; those of
 * other publishers wait as standbys. */
static void bc_takeover(moq_broadcast *old, moq_route *winner)
{
    moq_origin *o = old->origin;
    moq_bc_pin(old);
    moq_broadcast *nb = bc_new(o, old->node, old->path, old->path_len);
    if (!nb) {
        /* Out of memory: keep the broadcast, but still never mix the two publishers. */
        old->publisher = winner->publisher;
        moq_inode cur;
        moq_iter_begin(&old->tracks, &cur);
        moq_list *it;
        while ((it = moq_iter_next(&old->tracks, &cur)))
            moq_track_broadcast_ended(moq_container_of(it, moq_track, bc_node.link),
                                      MOQ_REASON_DROPPED);
        moq_iter_end(&cur);
        for (moq_list *pos = old->routes.next; pos != &old->routes; pos = pos->next) {
            moq_route *r = moq_container_of(pos, moq_route, link);
            r->standby = !same_publisher(old->publisher, r->publisher);
        }
        winner->standby = false;
        if (old->state == BC_LINGERING) {
            old->state = BC_LIVE;
            moq_list_remove(&old->linger_link);
        }
        bc_event(old, MOQ_BROADCAST_REPLACED);
        bc_routes_changed(old);
        moq_bc_unpin(old);
        return;
    }
    moq_bc_pin(nb);
    nb->publisher = winner->publisher;
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &old->routes)
    {
        moq_route *r = moq_container_of(pos, moq_route, link);
        if (r->removing || r->withdrawn) continue;
        route_detach(r);
        route_attach(r, nb);
        r->standby = !same_publisher(nb->publisher, r->publisher);
    }
    winner->standby = false;
    bc_event(old, MOQ_BROADCAST_REPLACED);
    old->successor = nb; /* watchers learn the end is a replacement (announced next) */
    bc_end(old, MOQ_REASON_DROPPED);
    old->successor = NULL;
    bc_routes_changed(nb);
    moq_bc_unpin(nb);
    moq_bc_unpin(old);
}

/* Whether new content on route r may take the broadcast over. Not when its publisher is
 * one the current publisher displaced already (more routes to old content win nothing
 * back). Nor when all its ids are unknown (lite-03 hop counts) and its chain is longer than
 * the current one: that cannot be told from the current content reflected back by a peer
 * that cannot detect loops, while a publisher reconnecting where it was is as close. */
static bool takeover_allowed(const moq_broadcast *bc, const moq_route *r)
{
    for (const moq_list *pos = bc->routes.next; pos != &bc->routes; pos = pos->next) {
        const moq_route *o = moq_container_of(pos, moq_route, link);
        if (o != r && o->standby && !o->removing && same_publisher(o->publisher, r->publisher))
            return false;
    }
    if (r->publisher != MOQ_PUB_UNKNOWN) return true;
    const moq_route *best = moq_bc_best_route(bc, 0);
    return !best || r->nhops <= best->nhops;
}

/* Whether new content on r is older than what the path serves without it: the current
 * publisher's routes, or when none is left, the newest standby. Announce sequences are
 * relay-wide, so every worker of a relay decides alike. */
static bool older_than_rivals(const moq_broadcast *bc, const moq_route *r)
{
    uint64_t current = 0, standby = 0;
    for (const moq_list *pos = bc->routes.next; pos != &bc->routes; pos = pos->next) {
        const moq_route *o = moq_container_of(pos, moq_route, link);
        if (o == r || o->removing || o->withdrawn) continue;
        if (!o->standby && o->seq > current) current = o->seq;
        if (o->standby && o->seq > standby) standby = o->seq;
    }
    return r->seq < (current ? current : standby);
}

static uint64_t draw_seq(moq_origin *o)
{
    if (o->cfg.announce_seq) return atomic_fetch_add(o->cfg.announce_seq, 1) + 1;
    return ++o->next_route_seq;
}

/* The last route of the current publisher is gone or withdrawn: a standby publisher takes
 * the path over, or the broadcast ends. */
static void bc_publisher_gone(moq_broadcast *bc)
{
    moq_route *next = bc_newest_standby(bc);
    if (next)
        bc_takeover(bc, next);
    else
        bc_end(bc, MOQ_REASON_DROPPED);
}

static int check_hops(const moq_origin *o, const uint64_t *hops, size_t nhops)
{
    if (nhops > MOQ_MAX_HOPS || (nhops && !hops)) return MOQ_ERR_INVALID;
    if (moq_hops_contain(hops, nhops, o->cfg.id)) return MOQ_ERR_INVALID; /* a loop */
    return 0;
}

static void route_set_hops(moq_route *r, const uint64_t *hops, size_t nhops)
{
    if (nhops) memcpy(r->hops, hops, nhops * sizeof(*hops));
    r->nhops = nhops;
    r->rank = route_rank(r->bc->path, r->bc->path_len, hops, nhops);
    r->publisher = chain_publisher(hops, nhops);
}

/* A route's new chain; `renewed`: it carries new content (announced again after a
 * withdrawal, or replaced at its source), which takes the path over like an announcement.
 * New content gets `seq`, or a new sequence when that is 0. */
static int route_update(moq_route *r, const uint64_t *hops, size_t nhops, bool renewed,
                        uint64_t seq)
{
    if (!r || r->removing) return MOQ_ERR_INVALID;
    moq_broadcast *bc = r->bc;
    if (bc->state == BC_ENDED) return MOQ_ERR_CLOSED;
    int rc = check_hops(bc->origin, hops, nhops);
    if (rc < 0) return rc;
    bool same_chain = nhops == r->nhops && (nhops == 0 || memcmp(hops, r->hops, nhops * 8) == 0);
    uint64_t before = r->publisher;
    renewed = renewed || r->withdrawn;
    route_set_hops(r, hops, nhops);
    r->withdrawn = false;
    if (same_chain && !renewed) return 0;
    if (renewed || !same_publisher(before, r->publisher)) r->seq = seq ? seq : draw_seq(bc->origin);
    if (same_publisher(bc->publisher, r->publisher)) {
        r->standby = false; /* (a standby of this publisher joins) */
        bc_splice(bc);
        bc_routes_changed(bc);
        return 0;
    }
    bool was_usable = !r->standby;
    r->standby = true;
    if ((renewed || was_usable || !same_publisher(before, r->publisher)) &&
        takeover_allowed(bc, r) && !older_than_rivals(bc, r))
        bc_takeover(bc, r); /* new content wins the path */
    else if (was_usable && !bc_has_usable_route(bc))
        bc_publisher_gone(bc);
    else if (was_usable)
        bc_routes_changed(bc);
    /* else a standby's chain changed, not its publisher: it keeps waiting */
    return 0;
}

int moq_route_update(moq_route *r, const uint64_t *hops, size_t nhops)
{
    return route_update(r, hops, nhops, false, 0);
}

int moq_route_renew(moq_route *r, const uint64_t *hops, size_t nhops)
{
    return route_update(r, hops, nhops, true, 0);
}

int moq_route_renew_seq(moq_route *r, const uint64_t *hops, size_t nhops, uint64_t seq)
{
    return route_update(r, hops, nhops, true, seq);
}

int moq_origin_announce(moq_origin *o, const uint8_t *path, size_t path_len, const uint64_t *hops,
                        size_t nhops, const moq_producer_ops *ops, void *ctx, moq_route **out)
{
    return moq_origin_announce_seq(o, path, path_len, hops, nhops, 0, ops, ctx, out);
}

int moq_origin_announce_seq(moq_origin *o, const uint8_t *path, size_t path_len,
                            const uint64_t *hops, size_t nhops, uint64_t seq,
                            const moq_producer_ops *ops, void *ctx, moq_route **out)
{
    if (!o || !out || !ops || !ops->track_request || !ops->track_release || (path_len && !path))
        return MOQ_ERR_INVALID;
    *out = NULL;
    if (!moq_path_valid(path, path_len)) return MOQ_ERR_INVALID;
    int rc = check_hops(o, hops, nhops);
    if (rc < 0) return rc;

    moq_node *node = node_walk(o->root, path, path_len, true);
    if (!node) return MOQ_ERR_NOMEM;
    moq_broadcast *bc = node->bc;
    if (bc) {
        for (moq_list *pos = bc->routes.next; pos != &bc->routes; pos = pos->next) {
            moq_route *r = moq_container_of(pos, moq_route, link);
            if (r->ops == ops && r->ctx == ctx && !r->removing) {
                *out = r;
                return route_update(r, hops, nhops, false, seq);
            }
        }
    }
    moq_route *r = calloc(1, sizeof(*r));
    if (!r) {
        node_prune(node);
        return MOQ_ERR_NOMEM;
    }
    bool created = !bc;
    if (!bc) bc = bc_new(o, node, path, path_len);
    if (!bc) {
        free(r);
        node_prune(node);
        return MOQ_ERR_NOMEM;
    }
    r->ops = ops;
    r->ctx = ctx;
    r->seq = seq ? seq : draw_seq(o);
    route_attach(r, bc);
    route_set_hops(r, hops, nhops);
    if (created) bc->publisher = r->publisher;
    o->stats.routes++;
    *out = r;
    if (!created && !same_publisher(bc->publisher, r->publisher)) {
        r->standby = true;
        if (takeover_allowed(bc, r) && !older_than_rivals(bc, r))
            bc_takeover(bc, r); /* new content replaces the broadcast */
        return 0;
    }
    bc_splice(bc);
    bc_routes_changed(bc);
    return 0;
}

static void route_remove(moq_route *r, bool graceful, uint64_t now)
{
    if (!r || r->removing) return;
    moq_broadcast *bc = r->bc;
    moq_origin *o = bc->origin;
    bool was_usable = moq_route_usable(r);
    r->removing = true;
    moq_list_remove(&r->link);
    bc->nroutes--;
    o->stats.routes--;
    moq_origin_saw(o, now);
    if (bc->state == BC_ENDED) {
        /* a withdrawn route of an ended broadcast: what it still served ends now */
        moq_inode cur;
        moq_iter_begin(&bc->tracks, &cur);
        moq_list *it;
        while ((it = moq_iter_next(&bc->tracks, &cur)))
            moq_track_route_gone(moq_container_of(it, moq_track, bc_node.link), r,
                                 MOQ_REASON_DROPPED);
        moq_iter_end(&cur);
    } else if (!was_usable || bc_has_usable_route(bc)) {
        bc_routes_changed(bc);
    } else if (graceful || o->cfg.linger_us == 0) {
        bc_publisher_gone(bc);
    } else if (bc->state == BC_LIVE) {
        bc->state = BC_LINGERING;
        bc->linger_deadline =
            now > UINT64_MAX - o->cfg.linger_us ? UINT64_MAX : now + o->cfg.linger_us;
        moq_list_push_back(&o->lingering, &bc->linger_link);
        if (o->cfg.linger_deadline) o->cfg.linger_deadline(o->cfg.linger_ctx, bc->linger_deadline);
        bc_event(bc, MOQ_BROADCAST_LINGERING);
        bc_routes_changed(bc);
    }
    /* Safety net: nothing may keep pointing at a freed route. */
    moq_list *pos;
    moq_inode_each(pos, &bc->tracks)
    {
        moq_track *t = moq_container_of(pos, moq_track, bc_node.link);
        if (t->drain == r) t->drain = NULL;
        if (t->route != r) continue;
        t->requested = false;
        t->route = NULL;
    }
    moq_bc_unpin(bc); /* the route's reference */
    free(r);
}

void moq_route_unannounce(moq_route *r)
{
    route_remove(r, true, 0);
}

void moq_route_lost(moq_route *r, uint64_t now)
{
    route_remove(r, false, now);
}

void moq_route_withdraw(moq_route *r)
{
    if (!r || r->removing || r->withdrawn) return;
    moq_broadcast *bc = r->bc;
    bool was_usable = moq_route_usable(r);
    r->withdrawn = true;
    if (!was_usable || bc->state == BC_ENDED) return;
    moq_bc_pin(bc);
    if (bc_has_usable_route(bc))
        bc_routes_changed(bc);
    else
        bc_publisher_gone(bc);
    moq_bc_unpin(bc);
}

const uint8_t *moq_route_path(const moq_route *r, size_t *len)
{
    if (len) *len = r->bc->path_len;
    return r->bc->path;
}

const uint64_t *moq_route_hops(const moq_route *r, size_t *nhops)
{
    if (nhops) *nhops = r->nhops;
    return r->hops;
}

/* --- watches (API) -------------------------------------------------------------------------- */

/* Pins every broadcast under n into *arr (grown as needed). */
static int collect(moq_node *n, moq_broadcast ***arr, size_t *len, size_t *cap)
{
    if (n->bc) {
        if (*len == *cap) {
            size_t c = *cap ? *cap * 2 : 16;
            moq_broadcast **a = realloc(*arr, c * sizeof(*a));
            if (!a) return MOQ_ERR_NOMEM;
            *arr = a;
            *cap = c;
        }
        moq_bc_pin(n->bc);
        (*arr)[(*len)++] = n->bc;
    }
    size_t it = 0;
    const void *key;
    size_t klen;
    void *value;
    while (moq_map_next(&n->children, &it, &key, &klen, &value))
        if (collect(value, arr, len, cap) < 0) return MOQ_ERR_NOMEM;
    return 0;
}

int moq_origin_watch(moq_origin *o, const uint8_t *prefix, size_t prefix_len, uint64_t exclude_hop,
                     const moq_watch_ops *ops, void *ctx, moq_watch **out)
{
    if (!o || !out || !ops || !ops->on_announce || (prefix_len && !prefix)) return MOQ_ERR_INVALID;
    *out = NULL;
    if (!moq_path_valid(prefix, prefix_len)) return MOQ_ERR_INVALID;
    moq_node *node = node_walk(o->root, prefix, prefix_len, true);
    if (!node) return MOQ_ERR_NOMEM;
    moq_watch *w = calloc(1, sizeof(*w));
    if (w) w->prefix = malloc(prefix_len ? prefix_len : 1);
    moq_broadcast **arr = NULL;
    size_t n = 0, cap = 0;
    int rc = w && w->prefix ? collect(node, &arr, &n, &cap) : MOQ_ERR_NOMEM;
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            moq_bc_unpin(arr[i]);
        free(arr);
        if (w) free(w->prefix);
        free(w);
        node_prune(node);
        return rc;
    }
    if (prefix_len) memcpy(w->prefix, prefix, prefix_len);
    w->prefix_len = prefix_len;
    w->origin = o;
    w->at = node;
    w->exclude = exclude_hop;
    w->ops = ops;
    w->ctx = ctx;
    moq_u64map_init(&w->adv);
    moq_list_push_back(&node->watches, &w->node.link);
    node->nwatches++;
    moq_list_push_back(&o->watches, &w->all);
    o->stats.watches++;
    *out = w;

    w->pins++;
    for (size_t i = 0; i < n; i++) {
        watch_reconcile(w, arr[i], true);
        moq_bc_unpin(arr[i]);
    }
    free(arr);
    watch_unpin(w);
    return 0;
}

void moq_watch_close(moq_watch *w)
{
    if (!w || w->closed) return;
    w->closed = true;
    moq_list_remove(&w->node.link);
    moq_list_remove(&w->all);
    w->at->nwatches--;
    w->origin->stats.watches--;
    moq_u64map_free(&w->adv);
    free(w->prefix);
    node_prune(w->at);
    w->pins++;
    watch_unpin(w);
}

/* --- origin ------------------------------------------------------------------------------- */

moq_origin *moq_origin_new(const moq_origin_config *cfg)
{
    if (!cfg || cfg->id == 0 || cfg->id >= (1ull << 62)) return NULL;
    moq_origin *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->cfg = *cfg;
    if (!o->cfg.max_frame_bytes) o->cfg.max_frame_bytes = 32 * MIB;
    if (!o->cfg.max_group_bytes) o->cfg.max_group_bytes = 32 * MIB;
    o->root = node_new(NULL, NULL, 0);
    if (!o->root) {
        free(o);
        return NULL;
    }
    moq_list_init(&o->broadcasts);
    moq_list_init(&o->lingering);
    moq_list_init(&o->tracks);
    moq_list_init(&o->subs);
    moq_list_init(&o->watches);
    moq_list_init(&o->lru);
    return o;
}

uint64_t moq_origin_id(const moq_origin *o)
{
    return o->cfg.id;
}

void moq_origin_stats_get(const moq_origin *o, moq_origin_stats *out)
{
    *out = o->stats;
}

static void free_subtree(moq_node *n)
{
    size_t it = 0;
    const void *key;
    size_t klen;
    void *value;
    while (moq_map_next(&n->children, &it, &key, &klen, &value))
        free_subtree(value);
    node_free(n);
}

void moq_origin_free(moq_origin *o)
{
    if (!o) return;
    while (!moq_list_empty(&o->subs))
        moq_sub_free_all(moq_list_first(&o->subs, moq_subscription, all));
    while (!moq_list_empty(&o->watches)) {
        moq_watch *w = moq_list_first(&o->watches, moq_watch, all);
        moq_list_remove(&w->all);
        moq_list_remove(&w->node.link);
        moq_u64map_free(&w->adv);
        free(w->prefix);
        free(w);
    }
    while (!moq_list_empty(&o->tracks))
        moq_track_free_all(moq_list_first(&o->tracks, moq_track, all.link));
    while (!moq_list_empty(&o->broadcasts)) {
        moq_broadcast *bc = moq_list_first(&o->broadcasts, moq_broadcast, all);
        while (!moq_list_empty(&bc->routes)) {
            moq_route *r = moq_list_first(&bc->routes, moq_route, link);
            moq_list_remove(&r->link);
            free(r);
        }
        moq_list_remove(&bc->all);
        moq_map_free(&bc->tracks_by_name);
        free(bc->path);
        free(bc);
    }
    free_subtree(o->root);
    free(o);
}

void moq_origin_tick(moq_origin *o, uint64_t now)
{
    moq_origin_saw(o, now);
    for (;;) {
        moq_broadcast *due = NULL;
        for (moq_list *pos = o->lingering.next; pos != &o->lingering; pos = pos->next) {
            moq_broadcast *bc = moq_container_of(pos, moq_broadcast, linger_link);
            if (bc->linger_deadline <= now) {
                due = bc;
                break;
            }
        }
        if (!due) break;
        moq_list_remove(&due->linger_link); /* (so it is not picked again) */
        bc_event(due, MOQ_BROADCAST_EXPIRED);
        bc_publisher_gone(due);
    }
    moq_inode cur;
    moq_iter_begin(&o->tracks, &cur);
    moq_list *it;
    while ((it = moq_iter_next(&o->tracks, &cur)))
        moq_track_tick(moq_container_of(it, moq_track, all.link), now);
    moq_iter_end(&cur);
    moq_cache_enforce_budget(o, NULL);
}

uint64_t moq_origin_next_linger(const moq_origin *o)
{
    uint64_t next = UINT64_MAX;
    for (moq_list *pos = o->lingering.next; pos != &o->lingering; pos = pos->next) {
        moq_broadcast *bc = moq_container_of(pos, moq_broadcast, linger_link);
        if (bc->linger_deadline < next) next = bc->linger_deadline;
    }
    return next;
}

uint64_t moq_origin_next_deadline(const moq_origin *o)
{
    uint64_t next = moq_origin_next_linger(o);
    moq_list *pos;
    moq_inode_each(pos, &o->tracks)
    {
        uint64_t at = moq_track_next_deadline(moq_container_of(pos, moq_track, all.link));
        if (at < next) next = at;
    }
    return next;
}

/* --- listing -------------------------------------------------------------------------------- */

static size_t list_subtree(const moq_node *n, uint64_t exclude, moq_list_fn fn, void *ctx)
{
    size_t count = 0;
    const moq_broadcast *bc = n->bc;
    if (bc) {
        const uint64_t *hops = NULL;
        size_t nhops = 0;
        bool visible = false;
        if (bc->state == BC_LIVE) {
            const moq_route *r = moq_bc_best_route(bc, exclude);
            if (r) {
                visible = true;
                hops = r->hops;
                nhops = r->nhops;
            }
        } else if (!exclude || !moq_hops_contain(bc->adv_hops, bc->adv_nhops, exclude)) {
            visible = true;
            hops = bc->adv_hops;
            nhops = bc->adv_nhops;
        }
        if (visible) {
            if (fn) fn(ctx, bc->path, bc->path_len, hops, nhops);
            count++;
        }
    }
    size_t it = 0;
    const void *key;
    size_t klen;
    void *value;
    while (moq_map_next(&n->children, &it, &key, &klen, &value))
        count += list_subtree(value, exclude, fn, ctx);
    return count;
}

size_t moq_origin_list(const moq_origin *o, const uint8_t *prefix, size_t prefix_len,
                       uint64_t exclude_hop, moq_list_fn fn, void *ctx)
{
    if (!o || (prefix_len && !prefix)) return 0;
    const moq_node *n = node_walk(o->root, prefix, prefix_len, false);
    return n ? list_subtree(n, exclude_hop, fn, ctx) : 0;
}

int moq_origin_lookup(const moq_origin *o, const uint8_t *path, size_t path_len,
                      uint64_t exclude_hop, uint64_t *hops, size_t *nhops)
{
    if (!o || (path_len && !path)) return MOQ_ERR_INVALID;
    const moq_broadcast *bc = moq_bc_lookup(o, path, path_len);
    if (!bc) return MOQ_ERR_NOT_FOUND;
    const uint64_t *src;
    size_t n;
    if (bc->state == BC_LIVE) {
        const moq_route *r = moq_bc_best_route(bc, exclude_hop);
        if (!r) return MOQ_ERR_NOT_FOUND;
        src = r->hops;
        n = r->nhops;
    } else {
        if (exclude_hop && moq_hops_contain(bc->adv_hops, bc->adv_nhops, exclude_hop))
            return MOQ_ERR_NOT_FOUND;
        src = bc->adv_hops;
        n = bc->adv_nhops;
    }
    if (hops) memcpy(hops, src, n * sizeof(*src));
    if (nhops) *nhops = n;
    return 0;
}
