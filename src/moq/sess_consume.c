/* The consuming half of the session engine: the peer's announcements become routes in the
 * origin; tracks the origin asks for are requested from the peer (TRACK, SUBSCRIBE, FETCH)
 * and the groups that arrive are written into the model once, as shared chunks. */
#include "moq/session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moq/path.h"
#include "util/err.h"
#include "util/log.h"
#include "util/pool.h"
#include "util/time.h"

static const moq_producer_ops consume_producer_ops;

/* up_sub lifetime: one reference for the model (until track_release) plus one per stream
 * that points at it. */
struct up_sub_ref {
    struct up_sub us;
    int refs;
};

static struct up_sub *up_ref(struct up_sub *us)
{
    ((struct up_sub_ref *)us)->refs++;
    return us;
}

static void up_unref(struct up_sub *us)
{
    struct up_sub_ref *r = (struct up_sub_ref *)us;
    if (--r->refs > 0) return;
    free(us->broadcast);
    free(us->name);
    free(r);
}

/* ---------------------------------------------------------------- frame assembly */

int moq_frame_alloc(moq_frame *out, uint64_t prev_ts, uint64_t ts, uint64_t size)
{
    return moq_frame_alloc_side(out, prev_ts, ts, size, 0);
}

int moq_frame_alloc_side(moq_frame *out, uint64_t prev_ts, uint64_t ts, uint64_t size,
                         uint32_t side_len)
{
    if (size > UINT32_MAX - FRAME_PAYLOAD_OFF - side_len) return MOQ_ERR_TOO_LARGE;
    uint8_t h5[MOQ_FRAME_HEADER_MAX], h3[MOQ_FRAME_HEADER_MAX];
    int n5 = moq_frame_header_pack(h5, MOQ_LITE_05, prev_ts, ts, size);
    int n3 = moq_frame_header_pack(h3, MOQ_LITE_03, 0, 0, size);
    if (n5 < 0 || n3 < 0 || n3 > 8 || n5 > FRAME_PAYLOAD_OFF - 8) return MOQ_ERR_INVALID;
    moq_chunk *c = moq_chunk_new(FRAME_PAYLOAD_OFF + (size_t)size + side_len);
    if (!c) return MOQ_ERR_NOMEM;
    c->len = FRAME_PAYLOAD_OFF + (size_t)size + side_len;
    memcpy(c->data + FRAME_HDR03_OFF, h3, (size_t)n3);
    memcpy(c->data + FRAME_PAYLOAD_OFF - n5, h5, (size_t)n5);
    memset(out, 0, sizeof(*out));
    out->chunk = c;
    out->payload_off = FRAME_PAYLOAD_OFF;
    out->payload_len = (uint32_t)size;
    out->timestamp = ts;
    out->hdr_off[FAMILY_05] = (uint16_t)(FRAME_PAYLOAD_OFF - n5);
    out->hdr_len[FAMILY_05] = (uint16_t)n5;
    out->hdr_off[FAMILY_03] = FRAME_HDR03_OFF;
    out->hdr_len[FAMILY_03] = (uint16_t)n3;
    out->side_off = FRAME_PAYLOAD_OFF + (uint32_t)size;
    out->side_len = side_len;
    return 0;
}

int moq_frame_asm_begin(struct frame_asm *fa, moq_session *s, uint64_t ts, uint64_t size)
{
    return moq_frame_asm_begin_side(fa, s, ts, size, NULL, 0);
}

int moq_frame_asm_begin_side(struct frame_asm *fa, moq_session *s, uint64_t ts, uint64_t size,
                             const uint8_t *side, uint32_t side_len)
{
    if (size > s->cfg.max_frame_bytes) return MOQ_ERR_TOO_LARGE;
    if (s->inbound_bytes + size > s->cfg.max_inbound_bytes) return MOQ_ERR_LIMIT;
    int rv = moq_frame_alloc_side(&fa->frame, fa->prev_ts, ts, size, side_len);
    if (rv < 0) return rv;
    if (side_len) memcpy(fa->frame.chunk->data + fa->frame.side_off, side, side_len);
    fa->chunk = fa->frame.chunk;
    fa->filled = 0;
    s->inbound_bytes += size;
    return 0;
}

int moq_frame_asm_payload(struct frame_asm *fa, const uint8_t *data, size_t len)
{
    if (!fa->chunk || fa->filled + len > fa->frame.payload_len) return MOQ_ERR_PROTO;
    memcpy(fa->chunk->data + FRAME_PAYLOAD_OFF + fa->filled, data, len);
    fa->filled += len;
    return 0;
}

int moq_frame_asm_end(struct frame_asm *fa, moq_session *s, moq_group *group)
{
    if (!fa->chunk || fa->filled != fa->frame.payload_len) return MOQ_ERR_PROTO;
    s->inbound_bytes -= fa->frame.payload_len;
    fa->prev_ts = fa->frame.timestamp;
    fa->chunk = NULL;
    s->stats.frames_in++;
    s->stats.bytes_in += fa->frame.payload_len;
    return moq_group_append(group, &fa->frame, moq_session_now(s));
}

void moq_frame_asm_clear(struct frame_asm *fa, moq_session *s)
{
    if (!fa->chunk) return;
    s->inbound_bytes -= fa->frame.payload_len;
    moq_chunk_unref(fa->chunk);
    fa->chunk = NULL;
}

/* ---------------------------------------------------------------- announcements */

/* Returns MOQ_ERR_AGAIN when the stream must wait for credit. */
static int announce_request(moq_session *s, const char *prefix, bool police)
{
    mstream *ms;
    int orv = moq_ms_open(s, MS_ANN_CONSUME, true, &ms);
    if (orv < 0) return orv;
    struct ann_consume *ac = calloc(1, sizeof(*ac));
    moq_buf full;
    moq_buf_init(&full);
    if (!ac || moq_session_global_path(s, (const uint8_t *)prefix, strlen(prefix), &full) < 0 ||
        !(ac->prefix = strdup(prefix)) || !(ac->full = strdup((const char *)full.data))) {
        if (ac) free(ac->prefix);
        free(ac);
        moq_buf_free(&full);
        moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
        return 0;
    }
    moq_buf_free(&full);
    ac->ms = ms;
    ac->police = police;
    moq_map_init(&ac->routes);
    moq_u64map_init(&ac->by_id);
    moq_list_push_back(&s->ann_consumes, &ac->link);
    ms->obj = ac;
    moq_ctrl_reader_init(&ms->cr, 0, MAX_CONTROL_MSG);
    ms->cr_live = true;
    struct moq_announce_request req = {moq_str_make(prefix, strlen(prefix)),
                                       moq_origin_id(s->cfg.origin)};
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_encode_stream_type(&b, MOQ_BIDI_ANNOUNCE);
    if (rv == 0) rv = moq_encode_announce_request(&b, s->v, &req);
    if (rv == 0) moq_ms_write(ms, &b, false);
    moq_buf_free(&b);
    return 0;
}

/* Whether to ask the peer at the root too, to refuse what it publishes outside its grant. */
static bool polices_publish(const moq_session *s)
{
    return s->cfg.refuse_outside_grant && s->peer_role != MOQ_ROLE_SUBSCRIBER &&
           !moq_perms_can_publish(&s->perms, "", 0);
}

/* Ask the peer for its announcements under each prefix it may publish, from ann_next on,
 * then at the root when it is policed. */
static void request_announcements(moq_session *s)
{
    s->ann_pending = false;
    size_t n = s->perms.publish.len + (polices_publish(s) ? 1 : 0);
    for (; s->ann_next < n && !s->closing; s->ann_next++) {
        bool police = s->ann_next == s->perms.publish.len;
        const char *prefix = police ? "" : s->perms.publish.v[s->ann_next];
        if (announce_request(s, prefix, police) == MOQ_ERR_AGAIN) {
            s->ann_pending = true;
            return;
        }
    }
}

void moq_consume_start(moq_session *s)
{
    s->ann_next = 0;
    request_announcements(s);
}

/* Drop every route the peer announced on this stream: graceful (ended) or lost. */
static void routes_end(struct ann_consume *ac, bool graceful)
{
    uint64_t now = moq_session_now(ac->ms->s);
    size_t it = 0;
    void *v;
    moq_route *list[64];
    for (;;) {
        size_t n = 0;
        it = 0;
        while (n < 64 && moq_map_next(&ac->routes, &it, NULL, NULL, &v))
            list[n++] = v;
        if (n == 0) break;
        for (size_t i = 0; i < n; i++) {
            size_t plen;
            const uint8_t *path = moq_route_path(list[i], &plen);
            moq_str suffix;
            if (moq_path_strip_prefix(moq_str_make(path, plen),
                                      moq_str_make(ac->full, strlen(ac->full)), &suffix) == 0)
                moq_map_del(&ac->routes, suffix.ptr, suffix.len);
            if (graceful)
                moq_route_unannounce(list[i]);
            else
                moq_route_lost(list[i], now);
        }
    }
}

/* ---------------------------------------------------------------- routes that end */

/* Whether one of our subscriptions still receives from the route: its SUBSCRIBE stream is
 * open and the peer has not ended it (a finished track may still have groups in flight). */
static bool route_feeds_subscription(moq_session *s, const moq_route *route)
{
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&s->up_by_track, &it, NULL, &v)) {
        const struct up_sub *us = v;
        if (us->route == route && !us->released && us->sub_ms && !us->sub_over) return true;
    }
    return false;
}

static void ending_rearm(moq_session *s)
{
    moq_session_deadline_changed(s);
}

static void ending_forget(moq_session *s, const moq_route *route)
{
    for (size_t i = 0; i < s->n_ending; i++) {
        if (s->ending[i].route != route) continue;
        s->ending[i] = s->ending[--s->n_ending];
        ending_rearm(s);
        return;
    }
}

/* The peer unannounced a route. Watchers learn it at once, but a subscription runs until
 * its own stream ends, so while one of ours still receives from the route it is only
 * withdrawn and the unannounce waits for it (the peer FINs a finished track's subscription
 * once every group went out). */
static void route_end(moq_session *s, moq_route *route)
{
    if (!s->closing && route_feeds_subscription(s, route)) {
        moq_route_withdraw(route); /* (its tracks may move to another route) */
    }
    if (!s->closing && route_feeds_subscription(s, route)) {
        if (s->n_ending == s->cap_ending) {
            size_t cap = s->cap_ending ? s->cap_ending * 2 : 4;
            struct ending_route *n = realloc(s->ending, cap * sizeof(*n));
            if (!n) {
                moq_route_unannounce(route);
                return;
            }
            s->ending = n;
            s->cap_ending = cap;
        }
        s->ending[s->n_ending++] = (struct ending_route){route, moq_session_now(s) + ENDING_MAX_US};
        ending_rearm(s);
        return;
    }
    moq_route_unannounce(route);
}

void moq_consume_ending_check(moq_session *s)
{
    if (s->closing) return;
    if (s->ending_busy) {
        s->ending_again = true; /* re-entered from a model callback: the outer loop rescans */
        return;
    }
    s->ending_busy = true;
    do {
        s->ending_again = false;
        uint64_t now = moq_session_now(s);
        for (size_t i = 0; i < s->n_ending && !s->closing; i++) {
            moq_route *route = s->ending[i].route;
            if (s->ending[i].deadline > now && route_feeds_subscription(s, route)) continue;
            s->ending[i] = s->ending[--s->n_ending];
            moq_route_unannounce(route); /* callbacks may change the list: rescan */
            s->ending_again = true;
            break;
        }
    } while (s->ending_again && !s->closing);
    s->ending_busy = false;
    ending_rearm(s);
}

/* Close the session for announcing rel (relative to the session's root), which it may not. */
static void refuse_announce(moq_session *s, const char *rel, size_t len, const char *why)
{
    char grant[256], reason[160];
    moq_info_repeat("refused announcements", "moq",
                    "%s: refused: the peer may not publish /%s%s%.*s (root /%s, publish=[%s]%s)",
                    s->t->peer, s->perms.root, s->perms.root[0] ? "/" : "", (int)len, rel,
                    s->perms.root, moq_session_grant_text(&s->perms.publish, grant, sizeof(grant)),
                    why);
    snprintf(reason, sizeof(reason), MOQ_SESSION_PUBLISH_REFUSED "%.*s",
             (int)(len < 120 ? len : 120), rel);
    moq_session_close(s, MOQ_CODE_UNAUTHORIZED, reason);
}

/* On the policing stream: a broadcast outside perms.publish closes the session (what the
 * grant covers arrives on the grant's own stream). */
static void police_announce(moq_session *s, const struct moq_announce *m)
{
    if (m->status == MOQ_ANNOUNCE_STATUS_ENDED ||
        moq_perms_can_publish(&s->perms, m->suffix.ptr, m->suffix.len))
        return;
    refuse_announce(s, m->suffix.ptr, m->suffix.len, "");
}

/* Whether the global path lies in the relay's own namespace. */
static bool under_internal(const uint8_t *path, size_t len)
{
    size_t n = strlen(MOQ_INTERNAL_PREFIX);
    while (len && *path == '/')
        path++, len--;
    return len >= n && memcmp(path, MOQ_INTERNAL_PREFIX, n) == 0 && (len == n || path[n] == '/');
}

/* A peer without a token publishing in the relay's own namespace, where the relays of a
 * cluster advertise the URLs they dial with the cluster credential. */
static bool forbidden_internal(const moq_session *s, const moq_buf *path)
{
    return s->cfg.refuse_outside_grant && s->perms.anonymous &&
           under_internal(path->data, path->len);
}

static void on_announce_msg(moq_session *s, struct ann_consume *ac, const struct moq_announce *m)
{
    if (ac->police) {
        police_announce(s, m);
        return;
    }
    moq_buf path;
    moq_buf_init(&path);
    if (moq_path_join(&path, moq_str_make(ac->full, strlen(ac->full)), m->suffix) < 0) {
        moq_buf_free(&path);
        return;
    }
    moq_route *route = moq_map_get(&ac->routes, m->suffix.ptr, m->suffix.len);
    if (m->status == MOQ_ANNOUNCE_STATUS_ENDED) {
        if (route) {
            moq_map_del(&ac->routes, m->suffix.ptr, m->suffix.len);
            if (s->stats.announces_in) s->stats.announces_in--;
            moq_info_repeat("unannounced broadcasts", "moq", "%s: unannounced /%.*s", s->t->peer,
                            (int)path.len, (char *)path.data);
            route_end(s, route);
        }
        moq_buf_free(&path);
        return;
    }
    uint64_t hops[MOQ_MAX_HOPS + 1];
    size_t n = m->hop_count;
    memcpy(hops, m->hops, n * sizeof(uint64_t));
    if (s->caps->announce_hops == MOQ_HOPS_IDS_WITHOUT_SENDER && ac->hop_id) hops[n++] = ac->hop_id;
    if (n > MOQ_MAX_HOPS) {
        moq_buf_free(&path);
        return;
    }
    if (!route && forbidden_internal(s, &path)) {
        size_t skip = strlen(s->perms.root);
        skip = skip && path.len > skip && path.data[skip] == '/' ? skip + 1 : 0;
        refuse_announce(s, (const char *)path.data + skip, path.len - skip,
                        ", a token is needed under /" MOQ_INTERNAL_PREFIX);
        moq_buf_free(&path);
        return;
    }
    if (route) {
        moq_route_update(route, hops, n);
    } else if (s->stats.announces_in >= MAX_ANNOUNCES) {
        moq_buf_free(&path);
        moq_session_fail(s, MOQ_CODE_BOUNDS_EXCEEDED, "too many announced broadcasts");
        return;
    } else {
        int rv = moq_origin_announce(s->cfg.origin, path.data, path.len, hops, n,
                                     &consume_producer_ops, s, &route);
        if (rv == 0) ending_forget(s, route); /* announced again before it ended */
        if (rv == 0 && moq_map_put(&ac->routes, m->suffix.ptr, m->suffix.len, route) == 0) {
            s->stats.announces_in++;
            moq_info_repeat("announced broadcasts", "moq", "%s: announced /%.*s", s->t->peer,
                            (int)path.len, (char *)path.data);
        } else if (rv == 0) {
            moq_route_unannounce(route);
        } else {
            moq_debug("moq", "%s: announcement of /%.*s ignored: %s", s->t->peer, (int)path.len,
                      (char *)path.data, moq_strerror(rv));
        }
    }
    moq_buf_free(&path);
}

static void announces_open(moq_session *s, struct ann_consume *ac)
{
    if (ac->open_reported || ac->police) return;
    ac->open_reported = true;
    moq_session_emit(s, MOQ_SESSION_ANNOUNCES_OPEN, ac->full, strlen(ac->full), NULL, 0);
}

/* ANNOUNCE_INIT (01/02): each listed suffix is active, with no hops known. */
static bool on_announce_init(moq_session *s, struct ann_consume *ac, struct moq_ctrl_msg *msg)
{
    struct moq_announce_init init;
    if (moq_decode_announce_init(s->v, msg->body, msg->len, &init) < 0) {
        moq_session_fail(s, MOQ_CODE_DECODE, "malformed ANNOUNCE_INIT");
        return false;
    }
    ac->ok_received = true;
    announces_open(s, ac);
    for (size_t i = 0; i < init.count && !s->closing; i++) {
        struct moq_announce m = {.status = MOQ_ANNOUNCE_STATUS_ACTIVE, .suffix = init.suffixes[i]};
        on_announce_msg(s, ac, &m);
    }
    moq_announce_init_free(&init);
    return !s->closing;
}

static void forget_ids(struct ann_consume *ac)
{
    size_t it = 0;
    uint64_t id;
    void *v;
    while (moq_u64map_next(&ac->by_id, &it, &id, &v))
        free(v);
    moq_u64map_free(&ac->by_id);
}

/* lite-06: START assigns the next announce id to its suffix; END and RESTART name the
 * suffix by id (an id never assigned, or retired, is a violation). Returns false when the
 * session failed. */
static bool resolve_announce_id(moq_session *s, struct ann_consume *ac, struct moq_announce *m)
{
    if (m->status == MOQ_ANNOUNCE_STATUS_ACTIVE) {
        char *suffix = malloc(m->suffix.len + 1);
        if (!suffix || moq_u64map_put(&ac->by_id, ac->next_id, suffix) < 0) {
            free(suffix);
            moq_session_fail(s, MOQ_CODE_TRANSPORT, "out of memory");
            return false;
        }
        memcpy(suffix, m->suffix.ptr, m->suffix.len);
        suffix[m->suffix.len] = '\0';
        ac->next_id++;
        return true;
    }
    char *suffix = m->status == MOQ_ANNOUNCE_STATUS_ENDED ? moq_u64map_del(&ac->by_id, m->id)
                                                          : moq_u64map_get(&ac->by_id, m->id);
    if (!suffix) {
        moq_session_fail(s, MOQ_CODE_PROTOCOL_VIOLATION, "unknown announce id");
        return false;
    }
    /* the suffix outlives the message: ENDED's is freed by the caller, RESTART's stays */
    m->suffix = moq_str_make(suffix, strlen(suffix));
    if (m->status == MOQ_ANNOUNCE_STATUS_RESTART) m->status = MOQ_ANNOUNCE_STATUS_ACTIVE;
    return true;
}

static void on_announce_by_id(moq_session *s, struct ann_consume *ac, struct moq_ctrl_msg *msg)
{
    struct moq_announce m;
    if (moq_decode_announce_typed(s->v, msg->type, msg->body, msg->len, &m) < 0) {
        moq_session_fail(s, MOQ_CODE_DECODE, "malformed ANNOUNCE");
        return;
    }
    bool ended = m.status == MOQ_ANNOUNCE_STATUS_ENDED;
    if (!resolve_announce_id(s, ac, &m)) return;
    on_announce_msg(s, ac, &m);
    if (ended) free((char *)m.suffix.ptr);
}

void moq_consume_announce_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = ms->s;
    struct ann_consume *ac = ms->obj;
    while (!s->closing && ac) {
        struct moq_ctrl_msg msg;
        int rv = moq_ctrl_reader_next(&ms->cr, &data, &len, fin, &msg);
        if (rv == 0) return;
        if (rv < 0) {
            /* FIN: the peer stops announcing; a broken stream: its routes are lost */
            routes_end(ac, rv == MOQ_ERR_CLOSED);
            moq_ms_finish(ms);
            return;
        }
        if (s->caps->announce_init && !ac->ok_received) {
            if (!on_announce_init(s, ac, &msg)) return;
            continue;
        }
        if (s->caps->announce_ok && !ac->ok_received) {
            struct moq_announce_ok ok;
            if (moq_decode_announce_ok(s->v, msg.body, msg.len, &ok) < 0) {
                moq_session_fail(s, MOQ_CODE_DECODE, "malformed ANNOUNCE_OK");
                return;
            }
            ac->ok_received = true;
            ac->hop_id = ok.hop_id;
            if (s->caps->announce_ids) moq_ctrl_reader_set_typed(&ms->cr, true);
            announces_open(s, ac);
            continue;
        }
        if (s->caps->announce_ids) {
            on_announce_by_id(s, ac, &msg);
            continue;
        }
        struct moq_announce m;
        if (moq_decode_announce(s->v, msg.body, msg.len, &m) < 0) {
            moq_session_fail(s, MOQ_CODE_DECODE, "malformed ANNOUNCE");
            return;
        }
        announces_open(s, ac); /* lite-03/04: the first ANNOUNCE is all the answer there is */
        on_announce_msg(s, ac, &m);
    }
}

/* ---------------------------------------------------------------- upstream tracks */

static int write_request(mstream *ms, uint64_t type,
                         int (*encode)(moq_buf *, moq_session *, const struct up_sub *),
                         const struct up_sub *us)
{
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_encode_stream_type(&b, type);
    if (rv == 0) rv = encode(&b, ms->s, us);
    if (rv == 0) rv = moq_ms_write(ms, &b, false);
    moq_buf_free(&b);
    return rv;
}

static int encode_track(moq_buf *b, moq_session *s, const struct up_sub *us)
{
    struct moq_msg_track m = {moq_str_make(us->broadcast, strlen(us->broadcast)),
                              moq_str_make(us->name, strlen(us->name))};
    return moq_encode_track(b, s->v, &m);
}

static void opts_from_prefs(struct moq_subscribe_opts *o, const moq_sub_prefs *p)
{
    memset(o, 0, sizeof(*o));
    o->priority = p->priority;
    o->ordered = p->ordered;
    o->max_latency_ms = p->max_latency_ms;
    o->has_start = p->has_start;
    o->start_group = p->start_group;
    o->has_end = p->has_end;
    o->end_group = p->end_group;
}

static int encode_subscribe(moq_buf *b, moq_session *s, const struct up_sub *us)
{
    struct moq_subscribe m;
    m.id = us->id;
    m.broadcast = moq_str_make(us->broadcast, strlen(us->broadcast));
    m.track = moq_str_make(us->name, strlen(us->name));
    opts_from_prefs(&m.opts, &us->prefs);
    return moq_encode_subscribe(b, s->v, &m);
}

/* Park an up_sub until the peer grants bidi stream credit. */
static void wait_for_credit(moq_session *s, struct up_sub *us)
{
    if (moq_list_linked(&us->wait_link)) return;
    moq_list_push_back(&s->bidi_wait, &us->wait_link);
    up_ref(us);
}

/* Open one of our requests for a track (TRACK or SUBSCRIBE); without stream credit it waits
 * (*want stays set) until the peer grants some. */
static void open_request(moq_session *s, struct up_sub *us, enum ms_kind kind, uint64_t type,
                         unsigned reader_flags,
                         int (*encode)(moq_buf *, moq_session *, const struct up_sub *),
                         mstream **slot, bool *want)
{
    mstream *ms;
    *want = false;
    int orv = moq_ms_open(s, kind, true, &ms);
    if (orv == MOQ_ERR_AGAIN) {
        *want = true;
        wait_for_credit(s, us);
        return;
    }
    if (orv < 0) {
        moq_track_abort(us->track, us->route, MOQ_CODE_TRANSPORT);
        return;
    }
    *slot = ms;
    ms->obj = up_ref(us);
    moq_ctrl_reader_init(&ms->cr, reader_flags, MAX_CONTROL_MSG);
    ms->cr_live = true;
    if (write_request(ms, type, encode, us) < 0) moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
}

static void open_subscribe(moq_session *s, struct up_sub *us)
{
    unsigned flags = moq_subscribe_responses_typed(s->v) ? MOQ_CTRL_TYPED : 0;
    open_request(s, us, MS_SUB_CONSUME, MOQ_BIDI_SUBSCRIBE, flags, encode_subscribe, &us->sub_ms,
                 &us->want_sub);
}

static void open_track(moq_session *s, struct up_sub *us)
{
    open_request(s, us, MS_TRACK_CONSUME, MOQ_BIDI_TRACK, 0, encode_track, &us->track_ms,
                 &us->want_track);
}

static void notify_upstream(moq_session *s, moq_route *route, bool active)
{
    if (!s->cfg.upstream) return;
    size_t plen, nhops;
    const uint8_t *path = moq_route_path(route, &plen);
    const uint64_t *hops = moq_route_hops(route, &nhops);
    s->cfg.upstream(s->cfg.ctx, s, path, plen, hops, nhops, active);
}

static void track_request(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    moq_session *s = ctx;
    struct up_sub_ref *r = calloc(1, sizeof(*r));
    if (!r) return;
    struct up_sub *us = &r->us;
    r->refs = 1;
    moq_list_init(&us->wait_link);
    us->s = s;
    us->route = route;
    us->track = track;
    us->prefs = *prefs;
    size_t plen, nlen;
    const uint8_t *path = moq_track_path(track, &plen);
    const uint8_t *name = moq_track_name(track, &nlen);
    const uint8_t *rel;
    size_t rel_len;
    if (moq_session_relative_path(s, path, plen, &rel, &rel_len) < 0) rel_len = 0, rel = path;
    us->broadcast = malloc(rel_len + 1);
    us->name = malloc(nlen + 1);
    if (!us->broadcast || !us->name) {
        free(us->broadcast);
        free(us->name);
        free(r);
        return;
    }
    memcpy(us->broadcast, rel, rel_len);
    us->broadcast[rel_len] = '\0';
    memcpy(us->name, name, nlen);
    us->name[nlen] = '\0';
    us->id = s->next_sub_id++;
    if (moq_u64map_put(&s->up_by_id, us->id, us) < 0 ||
        moq_u64map_put(&s->up_by_track, (uint64_t)(uintptr_t)track, us) < 0) {
        moq_u64map_del(&s->up_by_id, us->id);
        up_unref(us);
        return;
    }
    if (s->closing) return; /* released at teardown */
    moq_debug("moq", "%s: requesting %s/%s upstream (id %llu)", s->t->peer, us->broadcast, us->name,
              (unsigned long long)us->id);
    /* Opening a stream can fail and abort the track, and setting the info runs subscribers'
     * callbacks: either may release the track (and the model's reference) before we return. */
    up_ref(us);
    notify_upstream(s, route, true);
    if (s->caps->track_stream) {
        open_track(s, us);
    } else if (!moq_track_get_info(track)) {
        moq_track_info info;
        moq_track_info_default(&info);
        moq_track_set_info(track, route, &info);
    }
    if (!us->released && !us->prefs.info_only && !us->sub_ms) {
        if (us->want_track)
            us->want_sub = true; /* keep TRACK ahead of SUBSCRIBE */
        else
            open_subscribe(s, us);
    }
    up_unref(us);
}

void moq_consume_streams_available(moq_session *s)
{
    if (s->ann_pending) request_announcements(s);
    while (!s->ann_pending && !s->closing && !moq_list_empty(&s->bidi_wait)) {
        struct up_sub *us = moq_list_first(&s->bidi_wait, struct up_sub, wait_link);
        moq_list_remove(&us->wait_link);
        if (!us->released && us->want_track) open_track(s, us);
        if (!us->released && !us->want_track && us->want_sub && !us->sub_ms) open_subscribe(s, us);
        bool blocked = moq_list_linked(&us->wait_link);
        if (blocked) { /* re-parked: it goes first next time, so its SUBSCRIBE follows its TRACK */
            moq_list_remove(&us->wait_link);
            moq_list_push_front(&s->bidi_wait, &us->wait_link);
        }
        up_unref(us); /* the reference the wait list held (re-parking took a new one) */
        if (blocked) return;
    }
}

static void track_update(void *ctx, moq_route *route, moq_track *track, const moq_sub_prefs *prefs)
{
    moq_session *s = ctx;
    struct up_sub *us = moq_u64map_get(&s->up_by_track, (uint64_t)(uintptr_t)track);
    if (!us || us->released || s->closing) return;
    us->prefs = *prefs;
    if (prefs->info_only) return;
    if (!us->sub_ms) {
        if (us->want_track || moq_list_linked(&us->wait_link))
            us->want_sub = true; /* opened once credit arrives, with these prefs */
        else
            open_subscribe(s, us);
        return;
    }
    if (!s->caps->subscribe_update) return;
    struct moq_subscribe_opts o;
    opts_from_prefs(&o, prefs);
    moq_buf b;
    moq_buf_init(&b);
    if (moq_encode_subscribe_update(&b, s->v, &o) == 0) moq_ms_write(us->sub_ms, &b, false);
    moq_buf_free(&b);
}

static void track_release(void *ctx, moq_route *route, moq_track *track)
{
    moq_session *s = ctx;
    struct up_sub *us = moq_u64map_del(&s->up_by_track, (uint64_t)(uintptr_t)track);
    if (!us) return;
    moq_u64map_del(&s->up_by_id, us->id);
    moq_debug("moq", "%s: releasing %s/%s upstream (id %llu)", s->t->peer, us->broadcast, us->name,
              (unsigned long long)us->id);
    us->released = true;
    us->track = NULL;
    if (!s->gone) notify_upstream(s, route, false);
    if (us->sub_ms) moq_ms_finish(us->sub_ms); /* unsubscribe */
    if (us->track_ms) moq_ms_abort(us->track_ms, MOQ_CODE_CANCEL);
    up_unref(us);
    moq_consume_ending_check(s);
}

static int fetch_request(void *ctx, moq_route *route, moq_track *track, moq_group *group,
                         uint8_t priority)
{
    moq_session *s = ctx;
    if (!s->caps->fetch || s->closing) return MOQ_ERR_UNSUPPORTED;
    size_t plen, nlen;
    const uint8_t *path = moq_track_path(track, &plen);
    const uint8_t *name = moq_track_name(track, &nlen);
    const uint8_t *rel;
    size_t rel_len;
    if (moq_session_relative_path(s, path, plen, &rel, &rel_len) < 0) return MOQ_ERR_NOT_FOUND;
    mstream *ms;
    if (moq_ms_open(s, MS_FETCH_CONSUME, true, &ms) < 0) return MOQ_ERR_LIMIT;
    struct fetch_in *fi = calloc(1, sizeof(*fi));
    if (!fi) {
        moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
        return MOQ_ERR_NOMEM;
    }
    fi->ms = ms;
    fi->group = moq_group_ref(group);
    ms->obj = fi;
    moq_group_parser_init(&ms->gp, s->v, false, s->cfg.max_frame_bytes);
    struct moq_fetch m = {moq_str_make(rel, rel_len), moq_str_make(name, nlen), priority,
                          moq_group_sequence(group)};
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_encode_stream_type(&b, MOQ_BIDI_FETCH);
    if (rv == 0) rv = moq_encode_fetch(&b, s->v, &m);
    if (rv == 0) rv = moq_ms_write(ms, &b, true);
    moq_buf_free(&b);
    if (rv < 0) moq_ms_abort(ms, MOQ_CODE_TRANSPORT);
    return 0;
}

static const moq_producer_ops consume_producer_ops = {
    .track_request = track_request,
    .track_update = track_update,
    .track_release = track_release,
    .fetch_request = fetch_request,
};

/* ---------------------------------------------------------------- responses */

void moq_consume_track_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = ms->s;
    struct up_sub *us = ms->obj;
    while (!s->closing && us) {
        struct moq_ctrl_msg msg;
        int rv = moq_ctrl_reader_next(&ms->cr, &data, &len, fin, &msg);
        if (rv == 0) return;
        if (rv < 0) {
            if (rv != MOQ_ERR_CLOSED)
                moq_ms_abort(ms, MOQ_CODE_DECODE);
            else
                moq_ms_finish(ms);
            if (!us->released && !us->info_known)
                moq_track_abort(us->track, us->route, MOQ_CODE_NOT_FOUND);
            return;
        }
        struct moq_msg_track_info m;
        if (moq_decode_track_info(s->v, msg.body, msg.len, &m) < 0) {
            moq_ms_abort(ms, MOQ_CODE_DECODE);
            if (!us->released) moq_track_abort(us->track, us->route, MOQ_CODE_DECODE);
            return;
        }
        if (us->released || us->info_known) continue;
        us->info_known = true;
        moq_track_info info = {m.priority, m.ordered, m.max_latency_ms, m.timescale};
        moq_track_set_info(us->track, us->route, &info);
    }
}

static void subscribe_accepted(struct up_sub *us)
{
    if (us->accepted) return;
    us->accepted = true;
    if (!us->s->cfg.event) return;
    moq_buf full;
    moq_buf_init(&full);
    if (moq_session_global_path(us->s, (const uint8_t *)us->broadcast, strlen(us->broadcast),
                                &full) == 0)
        moq_session_emit(us->s, MOQ_SESSION_SUBSCRIBE_ACCEPTED, full.data, full.len, us->name,
                         strlen(us->name));
    moq_buf_free(&full);
}

void moq_consume_subscribe_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = ms->s;
    struct up_sub *us = ms->obj;
    while (!s->closing && us) {
        struct moq_ctrl_msg msg;
        int rv = moq_ctrl_reader_next(&ms->cr, &data, &len, fin, &msg);
        if (rv == 0) return;
        if (rv < 0) {
            us->sub_over = true;
            if (rv != MOQ_ERR_CLOSED) {
                moq_ms_abort(ms, MOQ_CODE_DECODE);
                if (!us->released) moq_track_abort(us->track, us->route, MOQ_CODE_DECODE);
            } else {
                /* the publisher ended the subscription: the track is over */
                moq_ms_finish(ms);
                if (!us->released)
                    moq_track_finish(us->track, us->route, us->have_seq ? us->max_seq + 1 : 0);
            }
            moq_consume_ending_check(s);
            return;
        }
        struct moq_subscribe_response r;
        if (moq_decode_subscribe_response(s->v, msg.type, msg.body, msg.len, &r) < 0) {
            moq_ms_abort(ms, MOQ_CODE_DECODE);
            if (!us->released) moq_track_abort(us->track, us->route, MOQ_CODE_DECODE);
            return;
        }
        if ((r.kind == MOQ_SUBSCRIBE_OK || r.kind == MOQ_SUBSCRIBE_START) && !us->released)
            subscribe_accepted(us);
        if (r.kind == MOQ_SUBSCRIBE_END && !us->released) {
            us->have_seq = true;
            us->max_seq = r.group ? r.group - 1 : 0;
            moq_track_finish(us->track, us->route, r.group);
        }
    }
}

/* ---------------------------------------------------------------- groups */

static void group_in_fail(mstream *ms, struct group_in *gi, uint64_t code)
{
    moq_ms_stop(ms, code);
    if (gi && gi->group) moq_group_abort(gi->group, code);
    ms->kind = MS_IGNORE;
    if (gi) {
        moq_frame_asm_clear(&gi->fa, ms->s);
        if (gi->group) moq_group_unref(gi->group);
        if (gi->us) up_unref(gi->us);
        moq_pool_free(gi, sizeof(*gi));
    }
    ms->obj = NULL;
}

static void group_in_header(mstream *ms, const struct moq_group_event *ev)
{
    moq_session *s = ms->s;
    struct up_sub *us = moq_u64map_get(&s->up_by_id, ev->sub_id);
    if (!us || us->released) {
        group_in_fail(ms, NULL, MOQ_CODE_CANCEL);
        return;
    }
    moq_group *g = NULL;
    int rv = moq_track_begin_group(us->track, us->route, ev->sequence, moq_session_now(s), &g);
    if (rv == MOQ_ERR_EXISTS && (!us->have_seq || ev->sequence > us->max_seq)) {
        us->max_seq = ev->sequence; /* (the track has it: the end of the track counts it) */
        us->have_seq = true;
    }
    if (rv < 0) {
        size_t plen, nlen;
        const uint8_t *path = moq_track_path(us->track, &plen);
        const uint8_t *name = moq_track_name(us->track, &nlen);
        moq_debug("moq", "%s: group %llu of %.*s/%.*s refused: %s", s->t->peer,
                  (unsigned long long)ev->sequence, (int)plen, (const char *)path, (int)nlen,
                  (const char *)name, moq_strerror(rv));
        group_in_fail(ms, NULL, rv == MOQ_ERR_EXISTS ? MOQ_CODE_DUPLICATE : MOQ_CODE_CANCEL);
        return;
    }
    subscribe_accepted(us); /* a group may overtake its SUBSCRIBE_START */
    struct group_in *gi = moq_pool_calloc(sizeof(*gi));
    if (!gi) {
        moq_group_abort(g, MOQ_CODE_TRANSPORT);
        moq_group_unref(g);
        group_in_fail(ms, NULL, MOQ_CODE_TRANSPORT);
        return;
    }
    gi->ms = ms;
    gi->us = up_ref(us);
    gi->group = g;
    ms->obj = gi;
    if (!us->have_seq || ev->sequence > us->max_seq) us->max_seq = ev->sequence;
    us->have_seq = true;
    s->stats.groups_in++;
}

void moq_consume_group_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = ms->s;
    if (!ms->obj && ms->gp.state == 0 && ms->gp.max_frame == 0)
        moq_group_parser_init(&ms->gp, s->v, true, s->cfg.max_frame_bytes);
    while (!s->closing && ms->kind == MS_GROUP_IN) {
        struct moq_group_event ev;
        int rv = moq_group_parser_next(&ms->gp, &data, &len, fin, &ev);
        if (rv == 0) return;
        struct group_in *gi = ms->obj;
        if (rv < 0) {
            group_in_fail(ms, gi, ms->gp.error_code);
            return;
        }
        switch (rv) {
        case MOQ_GROUP_EV_HEADER:
            group_in_header(ms, &ev);
            break;
        case MOQ_GROUP_EV_FRAME: {
            uint64_t ts = s->caps->frame_timestamps ? ev.timestamp : moq_session_wall_ms(s);
            rv = moq_frame_asm_begin(&gi->fa, s, ts, ev.size);
            if (rv < 0) {
                group_in_fail(ms, gi,
                              rv == MOQ_ERR_TOO_LARGE ? MOQ_CODE_FRAME_TOO_LARGE
                                                      : MOQ_CODE_BOUNDS_EXCEEDED);
                return;
            }
            break;
        }
        case MOQ_GROUP_EV_PAYLOAD:
            moq_frame_asm_payload(&gi->fa, ev.data, ev.len);
            /* a frame that takes long to arrive keeps its group from expiring meanwhile */
            moq_group_touch(gi->group, moq_session_now(s));
            break;
        case MOQ_GROUP_EV_FRAME_END:
            if (moq_frame_asm_end(&gi->fa, s, gi->group) < 0) {
                group_in_fail(ms, gi, MOQ_CODE_CANCEL);
                return;
            }
            break;
        case MOQ_GROUP_EV_END:
            moq_group_finish(gi->group, moq_session_now(s));
            return;
        default:
            break;
        }
    }
}

void moq_consume_fetch_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = ms->s;
    struct fetch_in *fi = ms->obj;
    while (!s->closing && fi) {
        struct moq_group_event ev;
        int rv = moq_group_parser_next(&ms->gp, &data, &len, fin, &ev);
        if (rv == 0) return;
        if (rv < 0) {
            moq_ms_stop(ms, ms->gp.error_code);
            moq_group_abort(fi->group, ms->gp.error_code);
            return;
        }
        switch (rv) {
        case MOQ_GROUP_EV_FRAME:
            rv = moq_frame_asm_begin(&fi->fa, s, ev.timestamp, ev.size);
            if (rv < 0) {
                moq_ms_stop(ms, MOQ_CODE_FRAME_TOO_LARGE);
                moq_group_abort(fi->group, MOQ_CODE_FRAME_TOO_LARGE);
                return;
            }
            break;
        case MOQ_GROUP_EV_PAYLOAD:
            moq_frame_asm_payload(&fi->fa, ev.data, ev.len);
            break;
        case MOQ_GROUP_EV_FRAME_END:
            if (moq_frame_asm_end(&fi->fa, s, fi->group) < 0) {
                moq_ms_stop(ms, MOQ_CODE_CANCEL);
                return;
            }
            break;
        case MOQ_GROUP_EV_END:
            moq_group_finish(fi->group, moq_session_now(s));
            return;
        default:
            break;
        }
    }
}

void moq_consume_datagram(moq_session *s, const uint8_t *data, size_t len)
{
    struct moq_datagram d;
    if (moq_decode_datagram(s->v, data, len, &d) < 0) return;
    moq_trace("moq", "%s: datagram for subscription %llu, group %llu, %zu bytes", s->t->peer,
              (unsigned long long)d.sub_id, (unsigned long long)d.group, d.payload_len);
    struct up_sub *us = moq_u64map_get(&s->up_by_id, d.sub_id);
    if (!us || us->released || d.payload_len > s->cfg.max_frame_bytes) return;
    uint64_t now = moq_session_now(s);
    moq_group *g = NULL;
    if (moq_track_begin_group_flags(us->track, us->route, d.group, now, MOQ_GROUP_DATAGRAM, &g) < 0)
        return;
    struct frame_asm fa = {0};
    if (moq_frame_asm_begin(&fa, s, d.timestamp, d.payload_len) == 0) {
        moq_frame_asm_payload(&fa, d.payload, d.payload_len);
        if (moq_frame_asm_end(&fa, s, g) == 0) moq_group_finish(g, now);
    }
    if (moq_group_state(g, NULL) == MOQ_GROUP_OPEN) moq_group_abort(g, MOQ_CODE_CANCEL);
    moq_group_unref(g);
    s->stats.groups_in++;
}

/* ---------------------------------------------------------------- resets and release */

void moq_consume_stream_reset(mstream *ms, uint64_t code)
{
    moq_session *s = ms->s;
    switch (ms->kind) {
    case MS_ANN_CONSUME: {
        struct ann_consume *ac = ms->obj;
        if (ac) routes_end(ac, false);
        moq_ms_abort(ms, MOQ_CODE_CANCEL);
        if (ac && !ac->refused && !ac->police && code == MOQ_CODE_UNAUTHORIZED &&
            s->cfg.announce_refused) {
            ac->refused = true;
            s->cfg.announce_refused(s->cfg.ctx, s, ac->prefix);
        }
        break;
    }
    case MS_SUB_CONSUME:
    case MS_TRACK_CONSUME: {
        struct up_sub *us = ms->obj;
        if (us && ms->kind == MS_SUB_CONSUME) us->sub_over = true;
        moq_ms_abort(ms, MOQ_CODE_CANCEL);
        /* A TRACK stream has served its purpose once TRACK_INFO arrived: the responder may
         * then stop our side (@moq/net sends STOP_SENDING 0 when it closes the stream). */
        bool answered = ms->kind == MS_TRACK_CONSUME && us && us->info_known;
        if (us && !us->released && !answered) moq_track_abort(us->track, us->route, code);
        if (ms->kind == MS_SUB_CONSUME) moq_consume_ending_check(s);
        break;
    }
    case MS_GROUP_IN: {
        struct group_in *gi = ms->obj;
        if (gi) group_in_fail(ms, gi, code);
        break;
    }
    case MS_FETCH_CONSUME: {
        struct fetch_in *fi = ms->obj;
        if (fi) moq_group_abort(fi->group, code);
        moq_ms_abort(ms, MOQ_CODE_CANCEL);
        break;
    }
    default:
        break;
    }
    (void)s;
}

void moq_consume_release(mstream *ms)
{
    moq_session *s = ms->s;
    switch (ms->kind) {
    case MS_ANN_CONSUME: {
        struct ann_consume *ac = ms->obj;
        if (!ac) break;
        routes_end(ac, false);
        moq_map_free(&ac->routes);
        forget_ids(ac);
        moq_list_remove(&ac->link);
        free(ac->prefix);
        free(ac->full);
        free(ac);
        break;
    }
    case MS_SUB_CONSUME:
    case MS_TRACK_CONSUME: {
        struct up_sub *us = ms->obj;
        if (!us) break;
        bool was_sub = us->sub_ms == ms;
        if (us->sub_ms == ms) us->sub_ms = NULL;
        if (us->track_ms == ms) us->track_ms = NULL;
        up_unref(us);
        if (was_sub) moq_consume_ending_check(s);
        break;
    }
    case MS_GROUP_IN: {
        struct group_in *gi = ms->obj;
        if (!gi) break;
        moq_frame_asm_clear(&gi->fa, s);
        if (moq_group_state(gi->group, NULL) == MOQ_GROUP_OPEN)
            moq_group_abort(gi->group, MOQ_CODE_CANCEL);
        moq_group_unref(gi->group);
        up_unref(gi->us);
        moq_pool_free(gi, sizeof(*gi));
        break;
    }
    case MS_FETCH_CONSUME: {
        struct fetch_in *fi = ms->obj;
        if (!fi) break;
        moq_frame_asm_clear(&fi->fa, s);
        if (moq_group_state(fi->group, NULL) == MOQ_GROUP_OPEN)
            moq_group_abort(fi->group, MOQ_CODE_CANCEL);
        moq_group_unref(fi->group);
        free(fi);
        break;
    }
    default:
        break;
    }
    ms->obj = NULL;
}

void moq_consume_teardown(moq_session *s)
{
    while (!moq_list_empty(&s->bidi_wait)) {
        struct up_sub *us = moq_list_first(&s->bidi_wait, struct up_sub, wait_link);
        moq_list_remove(&us->wait_link);
        up_unref(us);
    }
    /* Routes go first: the model releases their tracks through track_release. Those the
     * peer unannounced end gracefully; the others are lost. */
    while (s->n_ending) {
        moq_route *route = s->ending[--s->n_ending].route;
        moq_route_unannounce(route);
    }
    free(s->ending);
    s->ending = NULL;
    s->cap_ending = 0;
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &s->ann_consumes)
    {
        struct ann_consume *ac = moq_container_of(pos, struct ann_consume, link);
        routes_end(ac, false);
    }
    /* Tracks requested but never released (should not happen) are dropped. */
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&s->up_by_track, &it, NULL, &v)) {
        struct up_sub *us = v;
        us->released = true;
        up_unref(us);
    }
    moq_u64map_free(&s->up_by_track);
    moq_u64map_init(&s->up_by_track);
}

/* ---------------------------------------------------------------- stream kinds */

const struct moq_ms_ops moq_consume_announce_ops = {moq_consume_announce_data,
                                                    moq_consume_stream_reset,
                                                    moq_consume_stream_reset, moq_consume_release};
const struct moq_ms_ops moq_consume_subscribe_ops = {moq_consume_subscribe_data,
                                                     moq_consume_stream_reset,
                                                     moq_consume_stream_reset, moq_consume_release};
const struct moq_ms_ops moq_consume_track_ops = {moq_consume_track_data, moq_consume_stream_reset,
                                                 moq_consume_stream_reset, moq_consume_release};
const struct moq_ms_ops moq_consume_fetch_ops = {moq_consume_fetch_data, moq_consume_stream_reset,
                                                 moq_consume_stream_reset, moq_consume_release};
/* A group arrives on a stream of the peer's: only the peer can stop its sending side. */
const struct moq_ms_ops moq_consume_group_ops = {moq_consume_group_data, moq_consume_stream_reset,
                                                 NULL, moq_consume_release};
