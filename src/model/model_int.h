/*
 * model_int.h - private structures shared by the model's .c files (origin.c, track.c,
 * group.c). Not for use outside src/model.
 *
 * Re-entrancy technique: lists whose members receive callbacks (a track's subscriptions,
 * a group's followers, a node's watches) are iterated with a bookmark node that lives in
 * the list during the walk, so a callback may unlink and free any member, including the
 * next one. Containers walked this way (tracks, groups, broadcasts, trie nodes) are pinned
 * (refcount or pin count) for the duration. Handles created during a notification carry a
 * generation number ("born") so that notification skips them.
 */
#ifndef MOQ_MODEL_MODEL_INT_H
#define MOQ_MODEL_MODEL_INT_H

#include "model/model.h"
#include "util/list.h"
#include "util/map.h"

/* Bookmarks are stack nodes linked into heap lists for the length of a walk and always
 * unlinked before the walking function returns; GCC cannot see that. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif

/* Cache charge per cached group on top of its payload bytes, so floods of tiny groups
 * still count against the byte budget. */
#define MOQ_GROUP_OVERHEAD         256
#define MOQ_DEFAULT_MAX_LATENCY_MS 5000

/* A list member that may be a bookmark. Must be the first field of iterable members. */
typedef struct moq_inode {
    moq_list link;
    bool cursor;
} moq_inode;

static inline void moq_iter_begin(moq_list *head, moq_inode *cur)
{
    cur->cursor = true;
    moq_list_init(&cur->link);
    moq_list_push_front(head, &cur->link);
}

/* The next real member after the bookmark (advancing the bookmark past it), or NULL. */
static inline moq_list *moq_iter_next(moq_list *head, moq_inode *cur)
{
    for (moq_list *n = cur->link.next; n != head; n = cur->link.next) {
        moq_list_remove(&cur->link);
        moq_list_insert_after(n, &cur->link);
        if (!moq_container_of(n, moq_inode, link)->cursor) return n;
    }
    return NULL;
}

static inline void moq_iter_end(moq_inode *cur)
{
    moq_list_remove(&cur->link);
}

/* Plain walk that skips bookmarks (for loops that invoke no callbacks). */
#define moq_inode_each(pos, head)                                                                  \
    for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)                               \
        if (!moq_container_of((pos), moq_inode, link)->cursor)

enum { BC_LIVE = 0, BC_LINGERING = 1, BC_ENDED = 2 };
enum { TRACK_LIVE = 0, TRACK_FINISHED = 1, TRACK_ABORTED = 2 };

typedef struct moq_node {
    struct moq_node *parent;
    uint8_t *seg; /* this node's segment (key in parent->children) */
    size_t seg_len;
    moq_map children; /* segment -> moq_node* */
    struct moq_broadcast *bc;
    moq_list watches; /* moq_watch (inode) */
    size_t nwatches;
    int pins;
} moq_node;

typedef struct moq_broadcast {
    int refs;     /* one while announced (in the trie), one per route, plus pins */
    moq_list all; /* origin->broadcasts */
    moq_origin *origin;
    moq_node *node; /* NULL once ended */
    uint64_t id;
    uint8_t *path;
    size_t path_len;
    moq_list routes; /* moq_route.link */
    size_t nroutes;
    uint64_t publisher; /* whose content it is (see moq_route.publisher) */
    int state;
    uint64_t linger_deadline;
    moq_list linger_link;            /* origin->lingering */
    uint64_t adv_hops[MOQ_MAX_HOPS]; /* best route's hops, kept while lingering */
    size_t adv_nhops;
    moq_map tracks_by_name;          /* name -> first moq_track with that name */
    moq_list tracks;                 /* moq_track.bc_node (inode) */
    struct moq_broadcast *successor; /* while a takeover ends it: the broadcast replacing it */
} moq_broadcast;

/* Publisher identities (moq_route.publisher) that are not origin ids. */
#define MOQ_PUB_UNKNOWN 0          /* a chain of unknown ids: never the same as another */
#define MOQ_PUB_LOCAL   UINT64_MAX /* no hops: produced in this origin */

struct moq_route {
    moq_list link;
    moq_broadcast *bc; /* holds a reference on it */
    uint64_t seq;      /* attach order: newer wins exact ties */
    uint64_t hops[MOQ_MAX_HOPS];
    size_t nhops;
    uint64_t rank;      /* FNV-1a key of (path, hops) */
    uint64_t publisher; /* who published the content: the chain's first known id */
    const moq_producer_ops *ops;
    void *ctx;
    bool removing;
    bool withdrawn; /* no longer announced; still serves the tracks it has */
    bool standby;   /* another publisher's content: waits until the current one is gone */
};

bool moq_hops_contain(const uint64_t *hops, size_t n, uint64_t id);

/* A consumer excluding `exclude` (0 = nothing, MOQ_EXCLUDE_BRIDGES = routes bridged from
 * another worker, else an origin id in the chain) may not use r. */
static inline bool moq_route_excluded(const moq_route *r, uint64_t exclude)
{
    if (!exclude) return false;
    if (exclude == MOQ_EXCLUDE_BRIDGES) return r->ops->bridge;
    return moq_hops_contain(r->hops, r->nhops, exclude);
}

/* A route the broadcast may advertise and serve new requests from. */
static inline bool moq_route_usable(const moq_route *r)
{
    return !r->removing && !r->withdrawn && !r->standby;
}

struct moq_track {
    moq_inode bc_node; /* in bc->tracks */
    moq_inode all;     /* origin->tracks */
    int refs;          /* subscriptions + open fetch groups + pins */
    moq_origin *origin;
    moq_broadcast *bc;           /* NULL once detached (aborted / broadcast ended) */
    struct moq_track *next_same; /* chain of instances with the same name */
    uint8_t *name;
    size_t name_len;
    uint8_t *path;
    size_t path_len;
    moq_route *route; /* serving (or designated) route; NULL while stalled */
    bool requested;   /* track_request sent to route, release pending */
    uint32_t epoch;   /* bumped when the route changes */
    /* Make-before-break: after a route change the previous route (still requested) may
     * finish the groups it has in flight, up to drain_end; the new route writes groups from
     * `floor` on. */
    moq_route *drain;
    uint32_t drain_epoch;
    uint64_t drain_end;
    bool floor_set;
    uint64_t floor;
    /* Kept after the last subscriber left (holding one reference) so a returning one finds
     * the cache; dropped once track_keep_us passed since warm_since. */
    bool warm;
    bool keep_expired;
    uint64_t warm_since;
    moq_list subs; /* moq_subscription (inode) */
    size_t nsubs;
    moq_sub_prefs agg; /* as last told to the producer */
    bool info_known;
    moq_track_info info;
    int state;
    uint64_t final_seq;
    uint64_t abort_code;
    uint64_t gen; /* notification generation */
    /* cache */
    moq_group **groups; /* cached groups sorted by sequence */
    size_t ngroups, cap_groups;
    moq_group *latest; /* newest visible group: protected from expiry/eviction */
    moq_list lru;      /* evictable cached groups, least recently accessed first */
    bool has_max_seq;
    uint64_t max_seq;
    /* What the producer delivered into the track since it was created (inspection). */
    uint64_t groups_in, frames_in, bytes_in;
};

struct moq_subscription {
    moq_inode node; /* in track->subs */
    moq_list all;   /* origin->subs */
    moq_origin *origin;
    moq_track *track; /* NULL once failed / closed */
    uint64_t exclude;
    moq_sub_prefs prefs;
    const moq_subscriber_ops *ops;
    void *ctx;
    uint64_t born;
    bool floor_set;
    uint64_t floor;
    bool ended; /* on_abort delivered */
    bool closed;
    int pins;
};

struct moq_group {
    int refs;
    uint64_t seq;
    moq_track *track; /* set while cached */
    moq_frame *frames;
    size_t head, count, cap; /* live frames are frames[head .. head+count) */
    uint64_t dropped;        /* frames dropped from the front (absolute index of head) */
    uint64_t bytes;
    int state;
    uint64_t code;
    uint64_t last_access;
    bool cached;
    bool visible; /* delivered to subscribers (false: fetched by sequence) */
    bool in_lru;
    moq_track *held; /* an open fetch group keeps its track alive (one pin) */
    uint32_t epoch;
    uint64_t born; /* track generation when inserted */
    moq_list track_lru, origin_lru;
    moq_list followers; /* moq_follower (inode) */
    uint64_t gen;
    uint64_t max_frame, max_bytes;
    uint32_t flags; /* MOQ_GROUP_* */
};

struct moq_follower {
    moq_inode node;
    moq_group *group;
    const moq_follower_ops *ops;
    void *ctx;
    uint64_t born;
};

struct moq_watch {
    moq_inode node; /* in node->watches */
    moq_list all;   /* origin->watches */
    moq_origin *origin;
    moq_node *at;
    uint8_t *prefix;
    size_t prefix_len;
    uint64_t exclude;
    const moq_watch_ops *ops;
    void *ctx;
    moq_u64map adv; /* broadcast id -> advertised hops hash | 1 */
    bool closed;
    int pins;
};

struct moq_origin {
    moq_origin_config cfg;
    moq_node *root;
    moq_list broadcasts; /* moq_broadcast.all: announced, lingering and ended ones alive */
    uint64_t now;        /* the latest time the model was given */
    uint64_t next_bc_id;
    uint64_t next_route_seq;
    moq_list lingering; /* moq_broadcast.linger_link */
    moq_list tracks;    /* moq_track.all */
    moq_list subs;      /* moq_subscription.all */
    moq_list watches;   /* moq_watch.all */
    moq_list lru;       /* moq_group.origin_lru: evictable cached groups, stalest first */
    uint64_t charge;    /* cached payload + overhead, against cache_capacity */
    moq_origin_stats stats;
};

static inline void moq_origin_saw(moq_origin *o, uint64_t now)
{
    if (now > o->now) o->now = now;
}

/* origin.c */
moq_broadcast *moq_bc_lookup(const moq_origin *origin, const uint8_t *path, size_t len);
bool moq_path_valid(const uint8_t *path, size_t len);
moq_route *moq_bc_best_route(const moq_broadcast *bc, uint64_t exclude);
bool moq_hops_contain(const uint64_t *hops, size_t n, uint64_t id);
void moq_bc_pin(moq_broadcast *bc);
void moq_bc_unpin(moq_broadcast *bc);

/* track.c */
moq_track *moq_track_new(moq_broadcast *bc, const uint8_t *name, size_t name_len, moq_route *route);
moq_track *moq_track_find(moq_broadcast *bc, const uint8_t *name, size_t name_len, moq_route *route,
                          bool any_route);
void moq_track_pin(moq_track *t);
void moq_track_unpin(moq_track *t);
void moq_track_abort_internal(moq_track *t, uint64_t code);
/* The track's broadcast ended: a live track aborts with code; a finished one only loses its
 * producer and stays readable for the subscribers it has. */
void moq_track_broadcast_ended(moq_track *t, uint64_t code);
/* Whether the track keeps running after its broadcast ended: a withdrawn route still
 * serves it. */
bool moq_track_outlives_broadcast(const moq_track *t);
/* Route r of an ended broadcast is going: end what it still serves of t. */
void moq_track_route_gone(moq_track *t, const moq_route *r, uint64_t code);
void moq_track_reroute(moq_track *t);
void moq_track_sync_producer(moq_track *t);
/* A group of t ended: a drained route with nothing left in flight is released. */
void moq_track_group_ended(moq_track *t);
/* Drop warm tracks whose keep time passed (and empty ones). */
void moq_track_tick(moq_track *t, uint64_t now);
uint64_t moq_track_next_deadline(const moq_track *t);
void moq_track_free_all(moq_track *t); /* origin teardown, no callbacks */
void moq_sub_free_all(moq_subscription *sub);
uint64_t moq_track_max_age_us(const moq_track *t);

/* group.c */
moq_group *moq_group_new(moq_origin *origin, uint64_t seq);
int moq_cache_insert(moq_track *t, moq_group *g, uint64_t now);
moq_group *moq_cache_find(const moq_track *t, uint64_t seq);
size_t moq_cache_lower_bound(const moq_track *t, uint64_t seq);
/* Remove g from its track's cache; open groups are aborted with `code` when abort_open. */
void moq_cache_remove(moq_group *g, bool abort_open, uint64_t code);
void moq_cache_touch(moq_group *g, uint64_t now);
/* Drop the groups older than the track's max age (MOQ_REASON_OLD). Open ones only with
 * open_too, when a newer group arrives: a group still being written, or starved by its
 * publisher's newer ones, is not cut short while nothing newer came (as upstream). */
void moq_cache_expire(moq_track *t, uint64_t now, bool open_too);
void moq_cache_enforce_budget(moq_origin *origin, const moq_group *keep);
uint64_t moq_cache_next_expiry(const moq_track *t);
void moq_group_end_internal(moq_group *g, int state, uint64_t code);

#endif
