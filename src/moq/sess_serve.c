/* The serving half of the session engine: announcements, track info, subscriptions (one uni
 * stream per group, frames written straight from the model's shared chunks), fetches and
 * bandwidth probes toward the peer. */
#include "moq/session_int.h"

#include <stdlib.h>
#include <string.h>

#include "moq/path.h"
#include "util/err.h"
#include "util/log.h"
#include "util/pool.h"
#include "util/time.h"

#define SEQ_MASK 0xffffffffffffull

static void group_out_end(struct group_out *go);

/* ---------------------------------------------------------------- helpers */

/* The next control message of a request stream; 1 = got one, 0 = need more, -1 = the
 * stream was refused or closed (already handled). */
/* Whether the peer may read `broadcast` (relative to its root); its global path in full. */
static bool may_subscribe(moq_session *s, moq_str broadcast, moq_buf *full)
{
    if (!moq_perms_can_subscribe(&s->perms, broadcast.ptr, broadcast.len)) return false;
    return moq_session_global_path(s, (const uint8_t *)broadcast.ptr, broadcast.len, full) == 0;
}

/* The peer asked to read outside perms.subscribe: log it with the grant and refuse. */
static void refuse_read(mstream *ms, const char *what, moq_str broadcast, moq_str track)
{
    moq_session *s = ms->s;
    char grant[256];
    moq_info_repeat("refused requests", "moq",
                    "%s: refused: the peer may not %s /%s%s%.*s%s%.*s (root /%s, subscribe=[%s])",
                    s->t->peer, what, s->perms.root, s->perms.root[0] && broadcast.len ? "/" : "",
                    (int)broadcast.len, broadcast.ptr, track.len ? " track " : "", (int)track.len,
                    track.ptr, s->perms.root,
                    moq_session_grant_text(&s->perms.subscribe, grant, sizeof(grant)));
    moq_ms_abort(ms, MOQ_CODE_UNAUTHORIZED);
}

static uint64_t exclude_hop(const moq_session *s)
{
    return s->peer_origin;
}

/* ---------------------------------------------------------------- announcements */

/* The chain we advertise for a route: ours appended where the version wants the sender. */
static bool announce_hops(moq_session *s, struct moq_announce *m, const moq_announce_event *ev)
{
    size_t n = ev->nhops;
    bool append_self = s->caps->announce_hops != MOQ_HOPS_IDS_WITHOUT_SENDER;
    if (n + (append_self ? 1 : 0) > MOQ_MAX_HOPS) return false;
    for (size_t i = 0; i < n; i++)
        m->hops[i] = ev->hops[i];
    if (append_self) m->hops[n++] = moq_origin_id(s->cfg.origin);
    m->hop_count = (uint32_t)n;
    return true;
}

/* lite-06: each START gets the stream's next announce id; END references it, and a route
 * that changed goes out as END + START (as upstream sends a replacement). Returns 1 when
 * written, 0 when skipped. */
static int encode_announce_by_id(moq_session *s, moq_buf *out, struct ann_serve *as, moq_str suffix,
                                 const moq_announce_event *ev)
{
    uintptr_t known = (uintptr_t)moq_map_get(&as->ids, suffix.ptr, suffix.len);
    struct moq_announce m;
    memset(&m, 0, sizeof(m));
    if (known && ev->kind != MOQ_ANNOUNCE_ACTIVE) {
        m.status = MOQ_ANNOUNCE_STATUS_ENDED;
        m.id = known - 1;
        if (moq_encode_announce(out, s->v, &m) < 0) return 0;
        moq_map_del(&as->ids, suffix.ptr, suffix.len);
    }
    if (ev->kind == MOQ_ANNOUNCE_ENDED) return known ? 1 : 0;
    if (known && ev->kind == MOQ_ANNOUNCE_ACTIVE) return 0; /* already advertised */
    m.status = MOQ_ANNOUNCE_STATUS_ACTIVE;
    m.suffix = suffix;
    m.cost = 0; /* route costs are not ranked here: every link is free */
    if (!announce_hops(s, &m, ev) || moq_encode_announce(out, s->v, &m) < 0) return known ? 1 : 0;
    if (moq_map_put(&as->ids, suffix.ptr, suffix.len, (void *)(uintptr_t)(as->next_id + 1)) < 0)
        moq_session_fail(s, MOQ_CODE_TRANSPORT, "out of memory");
    as->next_id++;
    return 1;
}

/* Encode one ANNOUNCE for the peer's version. Returns 1 when written, 0 when skipped. */
static int encode_announce(moq_session *s, moq_buf *out, struct ann_serve *as,
                           const moq_announce_event *ev)
{
    struct moq_announce m;
    memset(&m, 0, sizeof(m));
    moq_str suffix;
    if (moq_path_strip_prefix(moq_str_make(ev->path, ev->path_len),
                              moq_str_make(as->full, strlen(as->full)), &suffix) < 0)
        return 0;
    if (s->caps->announce_ids) return encode_announce_by_id(s, out, as, suffix, ev);
    m.suffix = suffix;
    if (ev->kind == MOQ_ANNOUNCE_ENDED) {
        m.status = MOQ_ANNOUNCE_STATUS_ENDED;
    } else {
        if (ev->kind == MOQ_ANNOUNCE_RESTART && !s->caps->restart) return 0;
        m.status = MOQ_ANNOUNCE_STATUS_ACTIVE;
        if (!announce_hops(s, &m, ev)) return 0;
    }
    return moq_encode_announce(out, s->v, &m) == 0 ? 1 : 0;
}

static void on_announce(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    struct ann_serve *as = ctx;
    moq_session *s = as->ms->s;
    if (s->closing) return;
    if (as->collecting) {
        if (ev->kind != MOQ_ANNOUNCE_ACTIVE) return;
        if (s->caps->announce_init) { /* the paths go out as ANNOUNCE_INIT */
            as->initial_count++;
            if (moq_buf_append(&as->initial_paths, ev->path, ev->path_len) == 0)
                moq_buf_put_u8(&as->initial_paths, 0);
        } else if (encode_announce(s, &as->initial, as, ev)) {
            as->initial_count++;
            if (moq_buf_append(&as->initial_paths, ev->path, ev->path_len) == 0)
                moq_buf_put_u8(&as->initial_paths, 0);
        }
        return;
    }
    moq_buf b;
    moq_buf_init(&b);
    bool written = encode_announce(s, &b, as, ev) && moq_ms_write(as->ms, &b, false) >= 0;
    moq_buf_free(&b);
    if (written && ev->kind != MOQ_ANNOUNCE_ENDED)
        moq_session_emit(s, MOQ_SESSION_ANNOUNCED, ev->path, ev->path_len, NULL, 0);
}

static const moq_watch_ops announce_watch_ops = {.on_announce = on_announce};

/* The prefixes to watch: the request intersected with each subscribe grant, without
 * overlaps (a watch covered by another is dropped). */
static size_t watch_prefixes(moq_session *s, const char *full, char **out, size_t max)
{
    size_t n = 0;
    moq_str fp = moq_str_make(full, strlen(full));
    for (size_t i = 0; i < s->perms.subscribe.len && n < max; i++) {
        moq_buf g;
        moq_buf_init(&g);
        const char *grant = s->perms.subscribe.v[i];
        if (moq_session_global_path(s, (const uint8_t *)grant, strlen(grant), &g) < 0) {
            moq_buf_free(&g);
            continue;
        }
        moq_str fg = moq_str_make(g.data, g.len);
        const char *pick = NULL;
        if (moq_path_has_prefix(fg, fp))
            pick = (const char *)g.data;
        else if (moq_path_has_prefix(fp, fg))
            pick = full;
        if (pick) out[n++] = strdup(pick);
        moq_buf_free(&g);
        if (n && !out[n - 1]) n--;
    }
    /* drop covered or duplicate prefixes */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (i == j || !out[i] || !out[j]) continue;
            moq_str a = moq_str_make(out[i], strlen(out[i]));
            moq_str b = moq_str_make(out[j], strlen(out[j]));
            if (moq_path_has_prefix(a, b) && (!moq_str_eq(a, b) || i > j)) {
                free(out[i]);
                out[i] = NULL;
            }
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (out[i]) out[k++] = out[i];
    return k;
}

/* ANNOUNCE_INIT (01/02): the initial set's paths as suffixes of the requested prefix. */
static void encode_announce_init(moq_session *s, moq_buf *out, const struct ann_serve *as)
{
    moq_str *suffixes = calloc(as->initial_count ? as->initial_count : 1, sizeof(moq_str));
    if (!suffixes) return;
    size_t n = 0;
    moq_str full = moq_str_make(as->full, strlen(as->full));
    for (size_t off = 0; off < as->initial_paths.len && n < as->initial_count;) {
        const char *path = (const char *)as->initial_paths.data + off;
        size_t len = strlen(path);
        off += len + 1;
        if (moq_path_strip_prefix(moq_str_make(path, len), full, &suffixes[n]) == 0) n++;
    }
    moq_encode_announce_init(out, s->v, suffixes, n);
    free(suffixes);
}

static void start_announce(mstream *ms, const struct moq_announce_request *req)
{
    moq_session *s = ms->s;
    if (s->cfg.refuse_outside_grant &&
        !moq_perms_subscribe_overlaps(&s->perms, req->prefix.ptr, req->prefix.len)) {
        refuse_read(ms, "see announcements under", req->prefix, (moq_str){NULL, 0});
        ms->kind = MS_IGNORE;
        return;
    }
    struct ann_serve *as = calloc(1, sizeof(*as));
    moq_buf full;
    moq_buf_init(&full);
    if (!as ||
        moq_session_global_path(s, (const uint8_t *)req->prefix.ptr, req->prefix.len, &full) < 0 ||
        !(as->full = strdup((const char *)full.data))) {
        free(as);
        moq_buf_free(&full);
        moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
        return;
    }
    moq_buf_free(&full);
    as->ms = ms;
    as->exclude = s->caps->exclude_hop && req->exclude_hop ? req->exclude_hop : s->peer_origin;
    moq_buf_init(&as->initial);
    moq_buf_init(&as->initial_paths);
    moq_map_init(&as->ids);
    ms->obj = as;
    as->collecting = true;
    char *prefixes[8];
    size_t n = watch_prefixes(s, as->full, prefixes, 8);
    for (size_t i = 0; i < n; i++) {
        moq_watch *w = NULL;
        if (moq_origin_watch(s->cfg.origin, (const uint8_t *)prefixes[i], strlen(prefixes[i]),
                             as->exclude, &announce_watch_ops, as, &w) == 0)
            as->watches[as->n_watches++] = w;
        free(prefixes[i]);
    }
    as->collecting = false;
    moq_buf b;
    moq_buf_init(&b);
    if (s->caps->announce_ok) {
        struct moq_announce_ok ok = {moq_origin_id(s->cfg.origin), as->initial_count};
        moq_encode_announce_ok(&b, s->v, &ok);
    }
    if (s->caps->announce_init) encode_announce_init(s, &b, as);
    moq_buf_append(&b, as->initial.data, as->initial.len);
    moq_buf_free(&as->initial);
    bool written = !b.len || moq_ms_write(ms, &b, false) >= 0;
    moq_buf_free(&b);
    moq_debug("moq", "%s: announcing /%s to the peer (%zu watches, %llu active)", s->t->peer,
              as->full, as->n_watches, (unsigned long long)as->initial_count);
    for (size_t off = 0; written && off < as->initial_paths.len;) {
        const char *path = (const char *)as->initial_paths.data + off;
        size_t len = strlen(path);
        moq_session_emit(s, MOQ_SESSION_ANNOUNCED, path, len, NULL, 0);
        off += len + 1;
    }
    moq_buf_free(&as->initial_paths);
}

static bool announce_msg(mstream *ms, const struct moq_ctrl_msg *msg)
{
    if (ms->obj) return true; /* nothing else is expected from the requester */
    struct moq_announce_request req;
    if (moq_decode_announce_request(ms->s->v, msg->body, msg->len, &req) < 0) {
        moq_ms_abort(ms, MOQ_CODE_DECODE);
        return false;
    }
    start_announce(ms, &req);
    if (ms->kind == MS_IGNORE) return false; /* refused */
    return true;
}

static void announce_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    if (moq_ms_each_msg(ms, data, len, fin, announce_msg) < 0) {
        /* FIN: discovery is over for the peer; end ours too */
        moq_ms_finish(ms);
        moq_ms_drop(ms);
    }
}

/* ---------------------------------------------------------------- track info (lite-05) */

static void track_send_info(struct track_serve *ts, const moq_track_info *info)
{
    mstream *ms = ts->ms;
    if (ms->send_done) return;
    struct moq_msg_track_info m = {info->priority, info->ordered, info->max_latency_ms,
                                   info->timescale};
    moq_buf b;
    moq_buf_init(&b);
    if (moq_encode_track_info(&b, ms->s->v, &m) == 0) moq_ms_write(ms, &b, true);
    moq_buf_free(&b);
}

static void ts_on_info(void *ctx, moq_subscription *sub, const moq_track_info *info)
{
    struct track_serve *ts = ctx;
    if (!ts->ms->s->closing) track_send_info(ts, info);
}

static void ts_on_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    struct track_serve *ts = ctx;
    if (!ts->ms->s->closing) moq_ms_abort(ts->ms, code);
}

static const moq_subscriber_ops track_sub_ops = {
    .on_info = ts_on_info,
    .on_abort = ts_on_abort,
};

static bool track_msg(mstream *ms, const struct moq_ctrl_msg *msg)
{
    moq_session *s = ms->s;
    int rv;
    if (ms->obj) return true;
    struct moq_msg_track req;
    if (moq_decode_track(s->v, msg->body, msg->len, &req) < 0) {
        moq_ms_abort(ms, MOQ_CODE_DECODE);
        return false;
    }
    moq_buf full;
    moq_buf_init(&full);
    if (!may_subscribe(s, req.broadcast, &full)) {
        moq_buf_free(&full);
        refuse_read(ms, "read track info of", req.broadcast, req.track);
        return false;
    }
    struct track_serve *ts = calloc(1, sizeof(*ts));
    if (!ts) {
        moq_buf_free(&full);
        moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
        return false;
    }
    ts->ms = ms;
    ms->obj = ts;
    moq_sub_prefs prefs = {.info_only = true};
    rv = moq_origin_subscribe(s->cfg.origin, full.data, full.len, (const uint8_t *)req.track.ptr,
                              req.track.len, exclude_hop(s), &prefs, &track_sub_ops, ts, &ts->sub);
    moq_buf_free(&full);
    if (rv < 0) {
        ts->sub = NULL;
        moq_ms_abort(ms, rv == MOQ_ERR_NOT_FOUND ? MOQ_CODE_UNROUTABLE : MOQ_CODE_TRANSPORT);
    }
    return true;
}

static void track_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    /* FIN after the request is normal: the answer still goes out */
    moq_ms_each_msg(ms, data, len, fin, track_msg);
}

/* ---------------------------------------------------------------- subscriptions */

static uint64_t group_priority(const struct down_sub *ds, uint64_t seq)
{
    const moq_track_info *info = ds->sub ? moq_subscription_info(ds->sub) : NULL;
    uint64_t pub = info ? info->priority : 0;
    uint64_t order = ds->prefs.ordered ? SEQ_MASK - (seq & SEQ_MASK) : (seq & SEQ_MASK);
    return ((uint64_t)ds->prefs.priority << 56) | (pub << 48) | order;
}

static uint64_t latency_us(const struct down_sub *ds)
{
    uint64_t ms = ds->prefs.max_latency_ms;
    const moq_track_info *info = ds->sub ? moq_subscription_info(ds->sub) : NULL;
    if (!ms && info) ms = info->max_latency_ms;
    if (!ms) ms = 5000;
    return ms * 1000;
}

static void maybe_finish_subscription(struct down_sub *ds)
{
    if (ds->finished && ds->inflight == 0 && !ds->over) moq_ms_finish(ds->ms);
}

static void write_frames(struct group_out *go)
{
    moq_session *s = go->ms->s;
    moq_group *g = go->group;
    uint64_t count = moq_group_frame_count(g);
    if (go->next < moq_group_first_frame(g)) {
        /* frames we never sent were dropped by the group's byte cap */
        moq_ms_reset(go->ms, MOQ_CODE_LAGGED);
        group_out_end(go);
        return;
    }
    bool v05 = s->caps->frame_timestamps;
    go->blocked = false;
    for (; go->next < count; go->next++) {
        const moq_frame *f = moq_group_frame(g, go->next);
        if (!f) break;
        moq_slice v[2];
        size_t n;
        if (v05) {
            v[0] = (moq_slice){f->chunk, f->hdr_off[FAMILY_05],
                               f->hdr_len[FAMILY_05] + (size_t)f->payload_len};
            n = 1;
        } else {
            v[0] = (moq_slice){f->chunk, f->hdr_off[FAMILY_03], f->hdr_len[FAMILY_03]};
            v[1] = (moq_slice){f->chunk, f->payload_off, f->payload_len};
            n = f->payload_len ? 2 : 1;
        }
        int rv = moq_transport_write(s->t, go->ms->sid, v, n, false);
        if (rv == MOQ_ERR_AGAIN) {
            go->blocked = true; /* nothing was queued: resume at this frame when writable */
            break;
        }
        if (rv < 0) {
            group_out_end(go);
            return;
        }
        s->stats.frames_out++;
        s->stats.bytes_out += f->payload_len;
    }
}

/* Every frame of the group is written: FIN its stream. The group still counts as in flight
 * for its subscription until the stream closes (the peer acknowledged everything), so the
 * subscription's own FIN, which a client takes as the end of the track, never overtakes
 * data still on its way. */
static void group_out_fin(struct group_out *go)
{
    moq_ms_finish(go->ms);
    go->fin_sent = true;
    if (go->follower) {
        moq_follower_close(go->follower);
        go->follower = NULL;
    }
}

/* The group is over for this subscriber (delivered, reset or abandoned). */
static void group_out_end(struct group_out *go)
{
    if (go->follower) {
        moq_follower_close(go->follower);
        go->follower = NULL;
    }
    struct down_sub *ds = go->ds;
    if (ds) {
        moq_list_remove(&go->link);
        go->ds = NULL;
        ds->inflight--;
        maybe_finish_subscription(ds);
    }
}

static void go_on_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    struct group_out *go = ctx;
    if (go->ms && !go->ms->s->closing && !go->blocked) write_frames(go);
}

static void go_on_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct group_out *go = ctx;
    if (!go->ms || go->ms->s->closing) return;
    if (!go->blocked) write_frames(go);
    if (!go->follower) return; /* ended while writing */
    if (state == MOQ_GROUP_FINISHED && go->blocked) {
        go->fin_pending = true; /* after the frames still to write */
        return;
    }
    if (state == MOQ_GROUP_FINISHED) {
        group_out_fin(go);
        return;
    }
    moq_ms_reset(go->ms, code);
    group_out_end(go);
}

static const moq_follower_ops group_follow_ops = {
    .on_frames = go_on_frames,
    .on_end = go_on_end,
};

static void group_out_free(struct group_out *go)
{
    if (go->queued) moq_list_remove(&go->qlink);
    if (go->group) moq_group_unref(go->group);
    moq_pool_free(go, sizeof(*go));
}

/* Open the uni stream and start writing. Returns false when out of stream credit. */
static bool group_out_start(struct group_out *go)
{
    struct down_sub *ds = go->ds;
    moq_session *s = ds->ms->s;
    mstream *ms;
    if (moq_ms_open(s, MS_GROUP_OUT, false, &ms) < 0) return false;
    if (go->queued) {
        moq_list_remove(&go->qlink);
        go->queued = false;
    }
    go->ms = ms;
    ms->obj = go;
    s->stats.groups_out++;
    s->t->ops->set_priority(s->t, ms->sid, group_priority(ds, go->seq));
    uint8_t hdr[MOQ_GROUP_HEADER_MAX];
    int n = moq_group_header_pack(hdr, true, ds->id, go->seq);
    if (n < 0 || moq_transport_write_bytes(s->t, ms->sid, hdr, (size_t)n, false) < 0) {
        moq_ms_reset(ms, MOQ_CODE_TRANSPORT);
        group_out_end(go);
        return true;
    }
    moq_group *g = go->group;
    go->follower = moq_group_follow(g, &group_follow_ops, go);
    if (!go->follower) {
        moq_ms_reset(ms, MOQ_CODE_TRANSPORT);
        group_out_end(go);
        return true;
    }
    uint64_t code = 0;
    int state = moq_group_state(g, &code);
    write_frames(go);
    if (go->follower && state != MOQ_GROUP_OPEN) go_on_end(go, go->follower, g, state, code);
    return true;
}

/* Can the transport still drop part of this group: not started, or bytes not sent yet? */
static bool droppable(moq_session *s, const struct group_out *go)
{
    return go->queued || (go->ms && (go->blocked || s->t->ops->unsent(s->t, go->ms->sid) > 0));
}

static void drop_group(moq_session *s, struct group_out *go)
{
    s->stats.groups_dropped++;
    if (go->queued) {
        group_out_end(go);
        group_out_free(go);
        return;
    }
    moq_ms_retract(go->ms, MOQ_CODE_OLD);
    group_out_end(go);
    /* Its stream closes once the peer acknowledges the reset, which a peer that stopped
     * reading may never do: let go of the frames now. */
    moq_group_unref(go->group);
    go->group = NULL;
}

/* A newer group arrived: reset those this subscriber is too far behind on, not started yet
 * or with bytes the transport has not sent yet, even when all of them were written and the
 * FIN queued (a slow path would otherwise carry every stale group before the newest). */
static void drop_stale_groups(struct down_sub *ds, uint64_t now)
{
    moq_session *s = ds->ms->s;
    uint64_t limit = latency_us(ds);
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &ds->groups)
    {
        struct group_out *go = moq_container_of(pos, struct group_out, link);
        if (now - go->created_us > limit && droppable(s, go)) drop_group(s, go);
    }
}

/* ---- groups that arrived as datagrams leave as datagrams (lite-05) ---- */

/* Send a finished one-frame group as a datagram. False when it does not fit. */
static bool send_as_datagram(moq_session *s, struct down_sub *ds, moq_group *g)
{
    if (moq_group_frame_count(g) != 1 || moq_group_first_frame(g) != 0) return false;
    const moq_frame *f = moq_group_frame(g, 0);
    struct moq_datagram d = {ds->id, moq_group_sequence(g), f->timestamp,
                             f->chunk->data + f->payload_off, f->payload_len};
    moq_buf b;
    moq_buf_init(&b);
    bool fits = moq_encode_datagram(&b, s->v, &d) == 0 && b.len <= s->t->ops->max_datagram(s->t);
    if (fits && s->t->ops->send_datagram(s->t, b.data, b.len) == MOQ_ERR_TOO_LARGE) fits = false;
    moq_trace("moq", "%s: group %llu as a datagram of %zu bytes: %s", s->t->peer,
              (unsigned long long)d.group, b.len, fits ? "sent" : "too large");
    moq_buf_free(&b);
    if (fits) {
        s->stats.frames_out++;
        s->stats.bytes_out += f->payload_len;
    }
    return fits;
}

static void dg_on_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count) {}

static void dg_on_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct group_out *go = ctx;
    struct down_sub *ds = go->ds;
    if (!ds) return;
    moq_session *s = ds->ms->s;
    moq_follower_close(go->follower);
    go->follower = NULL;
    if (s->closing || ds->over || state != MOQ_GROUP_FINISHED || send_as_datagram(s, ds, g)) {
        group_out_end(go);
        group_out_free(go);
        return;
    }
    /* too large for this peer's datagrams: a stream carries it */
    go->datagram = false;
    if (!moq_list_empty(&s->queue) || !group_out_start(go)) {
        go->queued = true;
        moq_list_push_back(&s->queue, &go->qlink);
    }
}

static const moq_follower_ops datagram_follow_ops = {dg_on_frames, dg_on_end};

static bool wants_datagram(moq_session *s, moq_group *g)
{
    return (moq_group_flags(g) & MOQ_GROUP_DATAGRAM) && s->caps->datagrams &&
           s->t->ops->max_datagram(s->t) > 0;
}

static void ds_on_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    struct down_sub *ds = ctx;
    moq_session *s = ds->ms->s;
    if (s->closing || ds->over) return;
    uint64_t now = moq_session_now(s);
    drop_stale_groups(ds, now);
    uint64_t seq = moq_group_sequence(g);
    if (s->caps->subscribe_responses == MOQ_SUBRESP_START_END_DROP && !ds->start_sent) {
        struct moq_subscribe_response r = {.kind = MOQ_SUBSCRIBE_START, .group = seq};
        moq_buf b;
        moq_buf_init(&b);
        if (moq_encode_subscribe_response(&b, s->v, &r) == 0) moq_ms_write(ds->ms, &b, false);
        moq_buf_free(&b);
        ds->start_sent = true;
    }
    struct group_out *go = moq_pool_calloc(sizeof(*go));
    if (!go) return;
    go->ds = ds;
    go->seq = seq;
    go->created_us = now;
    go->group = moq_group_ref(g);
    moq_list_push_back(&ds->groups, &go->link);
    ds->inflight++;
    if (wants_datagram(s, g)) {
        go->datagram = true;
        go->follower = moq_group_follow(g, &datagram_follow_ops, go);
        if (go->follower) {
            uint64_t code = 0;
            int state = moq_group_state(g, &code);
            if (state != MOQ_GROUP_OPEN) dg_on_end(go, go->follower, g, state, code);
            return; /* go may be gone */
        }
        go->datagram = false;
    }
    if (!moq_list_empty(&s->queue) || !group_out_start(go)) {
        go->queued = true;
        moq_list_push_back(&s->queue, &go->qlink);
    }
}

static void ds_on_finish(void *ctx, moq_subscription *sub, uint64_t final_seq)
{
    struct down_sub *ds = ctx;
    moq_session *s = ds->ms->s;
    if (s->closing || ds->over || ds->finished) return;
    ds->finished = true;
    ds->final_seq = final_seq;
    if (s->caps->subscribe_responses == MOQ_SUBRESP_START_END_DROP) {
        struct moq_subscribe_response r = {.kind = MOQ_SUBSCRIBE_END, .group = final_seq};
        moq_buf b;
        moq_buf_init(&b);
        if (moq_encode_subscribe_response(&b, s->v, &r) == 0) moq_ms_write(ds->ms, &b, false);
        moq_buf_free(&b);
    }
    maybe_finish_subscription(ds);
}

static void ds_on_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    struct down_sub *ds = ctx;
    if (ds->ms->s->closing || ds->over) return;
    ds->over = true;
    moq_ms_abort(ds->ms, code);
}

static const moq_subscriber_ops down_sub_ops = {
    .on_group = ds_on_group,
    .on_finish = ds_on_finish,
    .on_abort = ds_on_abort,
};

static void prefs_from_opts(moq_sub_prefs *p, const struct moq_subscribe_opts *o)
{
    memset(p, 0, sizeof(*p));
    p->priority = o->priority;
    p->ordered = o->ordered;
    p->max_latency_ms = o->max_latency_ms;
    p->has_start = o->has_start;
    p->start_group = o->start_group;
    p->has_end = o->has_end;
    p->end_group = o->end_group;
}

static void start_subscription(mstream *ms, struct moq_subscribe *req)
{
    moq_session *s = ms->s;
    moq_buf full;
    moq_buf_init(&full);
    if (!may_subscribe(s, req->broadcast, &full)) {
        moq_buf_free(&full);
        refuse_read(ms, "subscribe to", req->broadcast, req->track);
        return;
    }
    struct down_sub *ds = calloc(1, sizeof(*ds));
    if (!ds) {
        moq_buf_free(&full);
        moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
        return;
    }
    ds->ms = ms;
    ds->id = req->id;
    moq_list_init(&ds->groups);
    prefs_from_opts(&ds->prefs, &req->opts);
    ms->obj = ds;
    if (s->caps->subscribe_responses != MOQ_SUBRESP_START_END_DROP) {
        /* lite-01 .. 04 expect SUBSCRIBE_OK first */
        struct moq_subscribe_response r = {.kind = MOQ_SUBSCRIBE_OK};
        r.ok.priority = req->opts.priority;
        moq_buf b;
        moq_buf_init(&b);
        if (moq_encode_subscribe_response(&b, s->v, &r) == 0) moq_ms_write(ms, &b, false);
        moq_buf_free(&b);
    }
    int rv = moq_origin_subscribe(s->cfg.origin, full.data, full.len,
                                  (const uint8_t *)req->track.ptr, req->track.len, exclude_hop(s),
                                  &ds->prefs, &down_sub_ops, ds, &ds->sub);
    if (rv < 0) {
        ds->sub = NULL;
        ds->over = true;
        moq_debug("moq", "%s: subscribe to %s/%.*s failed: %s", s->t->peer, (char *)full.data,
                  (int)req->track.len, req->track.ptr, moq_strerror(rv));
        moq_ms_abort(ms, rv == MOQ_ERR_NOT_FOUND ? MOQ_CODE_UNROUTABLE : MOQ_CODE_TRANSPORT);
    } else {
        s->stats.subscriptions++;
        moq_debug("moq", "%s: subscribed to %s/%.*s (id %llu)", s->t->peer, (char *)full.data,
                  (int)req->track.len, req->track.ptr, (unsigned long long)req->id);
        moq_session_emit(s, MOQ_SESSION_PEER_SUBSCRIBED, full.data, full.len, req->track.ptr,
                         req->track.len);
    }
    moq_buf_free(&full);
}

/* The peer unsubscribed (FIN): end every group in flight and our side of the stream. */
/* Let go of every group of a subscription. Groups with a stream are reset (when reset is
 * set) and freed when their stream closes; the others (queued, datagram) are freed here. */
static void drop_groups(struct down_sub *ds, bool reset)
{
    while (!moq_list_empty(&ds->groups)) {
        struct group_out *go = moq_list_first(&ds->groups, struct group_out, link);
        if (reset && go->ms) moq_ms_reset(go->ms, MOQ_CODE_CANCEL);
        bool detached = go->queued || go->datagram;
        group_out_end(go);
        if (detached) group_out_free(go);
    }
}

static void end_subscription(struct down_sub *ds)
{
    moq_debug("moq", "%s: unsubscribed (id %llu)", ds->ms->s->t->peer, (unsigned long long)ds->id);
    ds->over = true;
    drop_groups(ds, true);
    moq_ms_finish(ds->ms);
}

static void update_subscription(struct down_sub *ds, const struct moq_subscribe_opts *opts)
{
    moq_session *s = ds->ms->s;
    prefs_from_opts(&ds->prefs, opts);
    if (ds->sub) moq_subscription_update(ds->sub, &ds->prefs);
    moq_list *pos;
    for (pos = ds->groups.next; pos != &ds->groups; pos = pos->next) {
        struct group_out *go = moq_container_of(pos, struct group_out, link);
        if (go->ms) s->t->ops->set_priority(s->t, go->ms->sid, group_priority(ds, go->seq));
    }
}

static bool subscribe_msg(mstream *ms, const struct moq_ctrl_msg *msg)
{
    moq_session *s = ms->s;
    struct down_sub *ds = ms->obj;
    if (!ds) {
        struct moq_subscribe req;
        if (moq_decode_subscribe(s->v, msg->body, msg->len, &req) < 0) {
            moq_ms_abort(ms, MOQ_CODE_DECODE);
            return false;
        }
        start_subscription(ms, &req);
        return true;
    }
    struct moq_subscribe_opts opts;
    if (!s->caps->subscribe_update ||
        moq_decode_subscribe_update(s->v, msg->body, msg->len, &opts) < 0) {
        moq_ms_abort(ms, MOQ_CODE_DECODE);
        return false;
    }
    if (!ds->over) update_subscription(ds, &opts);
    return true;
}

static void subscribe_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    if (moq_ms_each_msg(ms, data, len, fin, subscribe_msg) < 0) {
        if (ms->obj && !ms->recv_done)
            end_subscription(ms->obj);
        else
            moq_ms_finish(ms);
    }
}

void moq_serve_streams_available(moq_session *s)
{
    while (!moq_list_empty(&s->queue) && !s->closing) {
        /* the most important waiting group first */
        struct group_out *best = NULL;
        uint64_t best_prio = 0;
        moq_list *pos;
        for (pos = s->queue.next; pos != &s->queue; pos = pos->next) {
            struct group_out *go = moq_container_of(pos, struct group_out, qlink);
            uint64_t p = group_priority(go->ds, go->seq);
            if (!best || p > best_prio) {
                best = go;
                best_prio = p;
            }
        }
        if (!group_out_start(best)) return;
    }
}

/* ---------------------------------------------------------------- fetch (lite-05) */

static void fetch_write(struct fetch_out *fo)
{
    mstream *ms = fo->ms;
    moq_group *g = moq_follower_group(fo->follower);
    uint64_t count = moq_group_frame_count(g);
    if (fo->next < moq_group_first_frame(g)) {
        moq_ms_reset(ms, MOQ_CODE_LAGGED);
        moq_follower_close(fo->follower);
        fo->follower = NULL;
        return;
    }
    fo->blocked = false;
    for (; fo->next < count; fo->next++) {
        const moq_frame *f = moq_group_frame(g, fo->next);
        if (!f) break;
        moq_slice v = {f->chunk, f->hdr_off[FAMILY_05],
                       f->hdr_len[FAMILY_05] + (size_t)f->payload_len};
        int rv = moq_transport_write(ms->s->t, ms->sid, &v, 1, false);
        if (rv == MOQ_ERR_AGAIN) {
            fo->blocked = true; /* resumed at this frame by stream_writable */
            return;
        }
        if (rv < 0) {
            moq_ms_reset(ms, MOQ_CODE_TRANSPORT); /* never FIN a response with frames missing */
            moq_follower_close(fo->follower);
            fo->follower = NULL;
            return;
        }
    }
}

static void fo_on_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    struct fetch_out *fo = ctx;
    if (!fo->ms->s->closing && !fo->blocked) fetch_write(fo);
}

static void fo_on_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct fetch_out *fo = ctx;
    if (fo->ms->s->closing) return;
    if (!fo->blocked) fetch_write(fo);
    if (!fo->follower) return;
    if (state == MOQ_GROUP_FINISHED && fo->blocked) {
        fo->fin_pending = true;
        return;
    }
    if (state == MOQ_GROUP_FINISHED)
        moq_ms_finish(fo->ms);
    else
        moq_ms_reset(fo->ms, code);
    moq_follower_close(fo->follower);
    fo->follower = NULL;
}

static const moq_follower_ops fetch_follow_ops = {
    .on_frames = fo_on_frames,
    .on_end = fo_on_end,
};

void moq_serve_stream_writable(mstream *ms)
{
    if (ms->kind == MS_GROUP_OUT) {
        struct group_out *go = ms->obj;
        if (!go || !go->follower || !go->blocked) return;
        write_frames(go);
        if (!go->follower || go->blocked || !go->fin_pending) return;
        group_out_fin(go);
    } else if (ms->kind == MS_FETCH_SERVE) {
        struct fetch_out *fo = ms->obj;
        if (!fo || !fo->follower || !fo->blocked) return;
        fetch_write(fo);
        if (!fo->follower || fo->blocked || !fo->fin_pending) return;
        moq_ms_finish(ms);
        moq_follower_close(fo->follower);
        fo->follower = NULL;
    }
}

static bool fetch_msg(mstream *ms, const struct moq_ctrl_msg *msg)
{
    moq_session *s = ms->s;
    int rv;
    if (ms->obj) return true;
    struct moq_fetch req;
    if (moq_decode_fetch(s->v, msg->body, msg->len, &req) < 0) {
        moq_ms_abort(ms, MOQ_CODE_DECODE);
        return false;
    }
    moq_buf full;
    moq_buf_init(&full);
    if (!may_subscribe(s, req.broadcast, &full)) {
        moq_buf_free(&full);
        refuse_read(ms, "fetch from", req.broadcast, req.track);
        return false;
    }
    moq_group *g = NULL;
    rv = moq_origin_fetch(s->cfg.origin, full.data, full.len, (const uint8_t *)req.track.ptr,
                          req.track.len, exclude_hop(s), req.group, req.priority, true,
                          moq_session_now(s), &g);
    moq_buf_free(&full);
    if (rv < 0) {
        moq_ms_abort(ms, rv == MOQ_ERR_NOT_FOUND ? MOQ_CODE_NOT_FOUND : MOQ_CODE_TRANSPORT);
        return false;
    }
    struct fetch_out *fo = calloc(1, sizeof(*fo));
    if (!fo) {
        moq_group_unref(g);
        moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
        return false;
    }
    fo->ms = ms;
    ms->obj = fo;
    fo->follower = moq_group_follow(g, &fetch_follow_ops, fo);
    uint64_t code = 0;
    int state = moq_group_state(g, &code);
    moq_group_unref(g);
    if (!fo->follower) {
        moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
        return false;
    }
    s->t->ops->set_priority(s->t, ms->sid, (uint64_t)req.priority << 56);
    fetch_write(fo);
    if (fo->follower && state != MOQ_GROUP_OPEN) fo_on_end(fo, fo->follower, g, state, code);
    return true;
}

static void fetch_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    moq_ms_each_msg(ms, data, len, fin, fetch_msg);
}

/* ---------------------------------------------------------------- probe */

void moq_serve_probe_open(mstream *ms)
{
    moq_session *s = ms->s;
    bool measurable = s->t->kind != MOQ_TRANSPORT_WEBSOCKET;
    if (!s->cfg.offer_probe || !measurable || s->probe) {
        moq_ms_reset(ms, MOQ_CODE_UNSUPPORTED);
        ms->kind = MS_IGNORE;
        return;
    }
    struct probe_serve *ps = calloc(1, sizeof(*ps));
    if (!ps) {
        moq_ms_reset(ms, MOQ_CODE_TRANSPORT);
        ms->kind = MS_IGNORE;
        return;
    }
    ps->ms = ms;
    ms->obj = ps;
    s->probe = ps;
    uint64_t now = moq_session_now(s);
    s->probe_deadline = now + PROBE_TICK_US;
    moq_session_deadline_changed(s);
    moq_serve_probe_tick(s, now);
}

static bool changed_enough(uint64_t before, uint64_t now)
{
    if (before == 0) return now != 0;
    uint64_t diff = before > now ? before - now : now - before;
    return diff * 4 >= before;
}

void moq_serve_probe_tick(moq_session *s, uint64_t now)
{
    struct probe_serve *ps = s->probe;
    if (!ps || s->closing) return;
    struct moq_transport_stats st;
    s->t->ops->stats(s->t, &st);
    struct moq_probe p = {st.bitrate_bps, (st.rtt_us + 999) / 1000};
    if (st.rtt_us && p.rtt_ms == 0) p.rtt_ms = 1;
    bool due = !ps->sent || now - ps->last_sent >= PROBE_MAX_SILENCE_US ||
               changed_enough(ps->last_bitrate, p.bitrate_bps) ||
               (s->caps->probe_rtt && changed_enough(ps->last_rtt, p.rtt_ms));
    if (!due) return;
    moq_buf b;
    moq_buf_init(&b);
    if (moq_encode_probe(&b, s->v, &p) == 0 && moq_ms_write(ps->ms, &b, false) == 0) {
        ps->sent = true;
        ps->last_sent = now;
        ps->last_bitrate = p.bitrate_bps;
        ps->last_rtt = p.rtt_ms;
    }
    moq_buf_free(&b);
}

/* ---------------------------------------------------------------- release */

static void announce_release(mstream *ms)
{
    struct ann_serve *as = ms->obj;
    if (!as) return;
    for (size_t i = 0; i < as->n_watches; i++)
        moq_watch_close(as->watches[i]);
    moq_buf_free(&as->initial);
    moq_buf_free(&as->initial_paths);
    moq_map_free(&as->ids);
    free(as->full);
    free(as);
}

static void track_release(mstream *ms)
{
    struct track_serve *ts = ms->obj;
    if (!ts) return;
    if (ts->sub) moq_subscription_close(ts->sub);
    free(ts);
}

static void subscribe_release(mstream *ms)
{
    moq_session *s = ms->s;
    struct down_sub *ds = ms->obj;
    if (!ds) return;
    ds->over = true;
    if (ds->sub) moq_subscription_close(ds->sub);
    ds->sub = NULL;
    drop_groups(ds, false);
    if (s->stats.subscriptions) s->stats.subscriptions--;
    free(ds);
}

static void group_release(mstream *ms)
{
    struct group_out *go = ms->obj;
    if (!go) return;
    group_out_end(go);
    group_out_free(go);
}

static void fetch_release(mstream *ms)
{
    struct fetch_out *fo = ms->obj;
    if (!fo) return;
    if (fo->follower) moq_follower_close(fo->follower);
    free(fo);
}

static void probe_release(mstream *ms)
{
    moq_session *s = ms->s;
    struct probe_serve *ps = ms->obj;
    if (!ps) return;
    if (s->probe == ps) {
        s->probe = NULL;
        s->probe_deadline = UINT64_MAX;
        moq_session_deadline_changed(s);
    }
    free(ps);
}

/* ---------------------------------------------------------------- stream kinds */

/* The opener writes nothing after the type; FIN ends the reports. */
static void probe_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    (void)data;
    (void)len;
    if (!fin) return;
    moq_ms_finish(ms);
    moq_ms_drop(ms);
}

/* The peer abandoned its request: stop serving it. */
static void serve_abandoned(mstream *ms, uint64_t code)
{
    (void)code;
    moq_ms_reset(ms, MOQ_CODE_CANCEL);
    moq_ms_drop(ms);
}

/* The peer reads no more of what we send. */
static void serve_unread(mstream *ms, uint64_t code)
{
    (void)code;
    moq_ms_drop(ms);
}

/* The peer reads no more of a request stream: we read no more of it either. */
static void request_unread(mstream *ms, uint64_t code)
{
    (void)code;
    moq_ms_stop(ms, MOQ_CODE_CANCEL);
    moq_ms_drop(ms);
}

const struct moq_ms_ops moq_serve_announce_ops = {announce_data, serve_abandoned, request_unread,
                                                  announce_release};
const struct moq_ms_ops moq_serve_subscribe_ops = {subscribe_data, serve_abandoned, request_unread,
                                                   subscribe_release};
const struct moq_ms_ops moq_serve_track_ops = {track_data, serve_abandoned, serve_unread,
                                               track_release};
const struct moq_ms_ops moq_serve_fetch_ops = {fetch_data, serve_abandoned, serve_unread,
                                               fetch_release};
const struct moq_ms_ops moq_serve_probe_ops = {probe_data, serve_abandoned, serve_unread,
                                               probe_release};
const struct moq_ms_ops moq_serve_group_ops = {NULL, NULL, serve_unread, group_release};
