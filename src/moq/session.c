/* The session engine's core: lifecycle, SETUP, authorization, stream dispatch, teardown. */
#include "moq/session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ietf/session.h"
#include "moq/path.h"
#include "util/err.h"
#include "util/log.h"
#include "util/pool.h"
#include "util/time.h"

static const struct moq_transport_events session_events;
static void send_compat_setup(moq_session *s);

uint64_t moq_session_now(const moq_session *s)
{
    return s->cfg.clock->now_us(s->cfg.clock->ctx);
}

uint64_t moq_session_wall_ms(const moq_session *s)
{
    return s->cfg.clock->wall_us(s->cfg.clock->ctx) / MOQ_US_PER_MS;
}

/* ---------------------------------------------------------------- paths */

const char *moq_session_grant_text(const moq_strlist *l, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->len && o + 1 < len; i++) {
        int n = snprintf(out + o, len - o, "%s\"%s\"", i ? "," : "", l->v[i]);
        if (n < 0) break;
        o += (size_t)n;
    }
    return out;
}

int moq_session_global_path(const moq_session *s, const uint8_t *rel, size_t len, moq_buf *out)
{
    int rv = moq_path_join(out, moq_str_make(s->perms.root, strlen(s->perms.root)),
                           moq_str_make(rel, len));
    if (rv < 0) return rv;
    rv = moq_buf_put_u8(out, 0);
    if (rv == 0) out->len--; /* keep the NUL outside len */
    return rv;
}

static const struct moq_ms_ops *ms_ops(const mstream *ms);

void moq_session_emit(moq_session *s, enum moq_session_event_kind kind, const void *path,
                      size_t path_len, const void *track, size_t track_len)
{
    if (!s->cfg.event || s->closing) return;
    char *p = strndup(path, path_len);
    char *t = strndup(track ? track : "", track ? track_len : 0);
    if (p && t) {
        struct moq_session_event ev = {kind, p, t};
        s->cfg.event(s->cfg.ctx, s, &ev);
    }
    free(p);
    free(t);
}

int moq_session_relative_path(const moq_session *s, const uint8_t *path, size_t len,
                              const uint8_t **rel, size_t *rel_len)
{
    moq_str suffix;
    if (moq_path_strip_prefix(moq_str_make(path, len),
                              moq_str_make(s->perms.root, strlen(s->perms.root)), &suffix) < 0)
        return -1;
    *rel = (const uint8_t *)suffix.ptr;
    *rel_len = suffix.len;
    return 0;
}

/* ---------------------------------------------------------------- streams */

static mstream *ms_new(moq_session *s, int64_t sid, enum ms_kind kind, bool bidi, bool local)
{
    mstream *ms = moq_pool_calloc(sizeof(*ms));
    if (!ms) return NULL;
    ms->s = s;
    ms->sid = sid;
    ms->kind = kind;
    ms->bidi = bidi;
    ms->local = local;
    /* a stream we cannot send on, or cannot receive on, is done in that direction */
    if (!bidi) {
        if (local)
            ms->recv_done = true;
        else
            ms->send_done = true;
    }
    moq_varint_reader_init(&ms->vr);
    moq_buf_init(&ms->held);
    moq_list_init(&ms->held_link);
    moq_list_push_back(&s->streams, &ms->link);
    s->t->ops->set_stream_ctx(s->t, sid, ms);
    return ms;
}

int moq_ms_open(moq_session *s, enum ms_kind kind, bool bidi, mstream **out)
{
    *out = NULL;
    if (s->closing) return MOQ_ERR_CLOSED;
    int64_t sid;
    int rv = moq_transport_open(s->t, bidi, &sid);
    if (rv < 0) return rv;
    mstream *ms = ms_new(s, sid, kind, bidi, true);
    if (!ms) {
        s->t->ops->reset(s->t, sid, MOQ_CODE_TRANSPORT);
        return MOQ_ERR_NOMEM;
    }
    *out = ms;
    return 0;
}

int moq_ms_write(mstream *ms, const moq_buf *b, bool fin)
{
    moq_session *s = ms->s;
    if (s->closing || ms->send_done) return MOQ_ERR_CLOSED;
    int rv = moq_transport_write_bytes(s->t, ms->sid, b ? b->data : NULL, b ? b->len : 0, fin);
    if (fin && rv == 0) ms->send_done = true;
    return rv;
}

void moq_ms_finish(mstream *ms)
{
    if (!ms->send_done) moq_ms_write(ms, NULL, true);
}

void moq_ms_reset(mstream *ms, uint64_t code)
{
    if (ms->send_done || ms->s->closing) return;
    ms->send_done = ms->reset_sent = true;
    ms->s->t->ops->reset(ms->s->t, ms->sid, code);
}

void moq_ms_retract(mstream *ms, uint64_t code)
{
    if (ms->reset_sent || ms->s->closing) return;
    ms->send_done = ms->reset_sent = true;
    ms->s->t->ops->reset(ms->s->t, ms->sid, code);
}

void moq_ms_stop(mstream *ms, uint64_t code)
{
    if (ms->recv_done || ms->s->closing) return;
    ms->recv_done = true;
    ms->s->t->ops->stop(ms->s->t, ms->sid, code);
}

void moq_ms_abort(mstream *ms, uint64_t code)
{
    moq_ms_reset(ms, code);
    moq_ms_stop(ms, code);
}

void moq_ms_release(mstream *ms)
{
    const struct moq_ms_ops *ops = ms_ops(ms);
    if (ops->release) ops->release(ms);
    ms->obj = NULL;
}

void moq_ms_drop(mstream *ms)
{
    moq_ms_release(ms);
    ms->kind = MS_IGNORE;
}

/* One message of a control stream: 1 with *msg set, 0 when more bytes are needed, -1 at FIN
 * or on a malformed message (the stream is then aborted). */
static int next_msg(mstream *ms, const uint8_t **data, size_t *len, bool fin,
                    struct moq_ctrl_msg *msg)
{
    int rv = moq_ctrl_reader_next(&ms->cr, data, len, fin, msg);
    if (rv >= 0) return rv;
    if (rv != MOQ_ERR_CLOSED) {
        moq_debug("moq", "%s: bad control message: %s", ms->s->t->peer, moq_strerror(rv));
        moq_ms_abort(ms, rv == MOQ_ERR_TOO_LARGE ? MOQ_CODE_BOUNDS_EXCEEDED : MOQ_CODE_DECODE);
    }
    return -1;
}

int moq_ms_each_msg(mstream *ms, const uint8_t *data, size_t len, bool fin,
                    bool (*on_msg)(mstream *ms, const struct moq_ctrl_msg *msg))
{
    while (!ms->s->closing) {
        struct moq_ctrl_msg msg;
        int rv = next_msg(ms, &data, &len, fin, &msg);
        if (rv <= 0) return rv;
        if (!on_msg(ms, &msg)) return 0;
    }
    return 0;
}

static void ms_free(mstream *ms)
{
    moq_session *s = ms->s;
    s->pending_control -= ms->cr_pending;
    moq_ms_release(ms);
    if (ms->cr_live) moq_ctrl_reader_free(&ms->cr);
    if (moq_list_linked(&ms->held_link)) {
        moq_list_remove(&ms->held_link);
        s->held_streams--;
        s->held_bytes -= ms->held.len;
    }
    moq_buf_free(&ms->held);
    moq_list_remove(&ms->link);
    moq_pool_free(ms, sizeof(*ms));
}

/* ---------------------------------------------------------------- closing */

void moq_session_fail(moq_session *s, uint64_t code, const char *reason)
{
    if (s->closing) return;
    moq_info("moq", "%s: closing session: %s (code %llu)", s->t->peer, reason,
             (unsigned long long)code);
    s->closing = true;
    moq_transport_close(s->t, code, reason);
    moq_session_deadline_changed(s); /* none while closing */
}

bool moq_session_goaway(moq_session *s)
{
    return s->ietf ? moq_ietf_session_goaway(s) : false;
}

void moq_session_close(moq_session *s, uint64_t code, const char *reason)
{
    if (s->closing) return;
    s->closing = true;
    moq_transport_close(s->t, code, reason);
    moq_session_deadline_changed(s);
}

static void session_teardown(moq_session *s, uint64_t code, const char *reason)
{
    s->closing = true;
    s->gone = true;
    /* What we serve first (closing consumer handles gets no callbacks), then the routes the
     * peer gave us (their tracks are released through the producer ops), then the rest. */
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &s->streams)
    {
        mstream *ms = moq_container_of(pos, mstream, link);
        if (ms->kind != MS_GROUP_IN && ms->kind != MS_FETCH_CONSUME) moq_ms_release(ms);
    }
    moq_consume_teardown(s);
    while (!moq_list_empty(&s->streams))
        ms_free(moq_list_first(&s->streams, mstream, link));
    moq_u64map_free(&s->up_by_id);
    moq_u64map_free(&s->up_by_track);
    if (s->cfg.closed) s->cfg.closed(s->cfg.ctx, s, code, reason);
    moq_perms_free(&s->perms);
    free(s->setup_path);
    free(s);
}

/* ---------------------------------------------------------------- timers */

uint64_t moq_session_next_deadline(const moq_session *s)
{
    if (s->ietf) return moq_ietf_session_next_deadline(s);
    if (s->closing) return UINT64_MAX;
    uint64_t next = s->setup_deadline;
    if (s->expiry_deadline < next) next = s->expiry_deadline;
    if (s->probe_deadline < next) next = s->probe_deadline;
    for (size_t i = 0; i < s->n_ending; i++)
        if (s->ending[i].deadline < next) next = s->ending[i].deadline;
    return next;
}

static void report_deadline(moq_session *s, bool always)
{
    if (s->gone) return;
    uint64_t next = moq_session_next_deadline(s);
    if (next == s->reported_deadline && !always) return;
    s->reported_deadline = next;
    if (s->cfg.timer) s->cfg.timer(s->cfg.ctx, s, next);
}

void moq_session_deadline_changed(moq_session *s)
{
    report_deadline(s, false);
}

void moq_session_on_timer(moq_session *s, uint64_t now)
{
    if (s->ietf) {
        moq_ietf_session_on_timer(s, now);
        report_deadline(s, true);
        return;
    }
    if (!s->closing && now >= s->setup_deadline) {
        s->setup_deadline = UINT64_MAX;
        moq_session_fail(s, MOQ_CODE_TIMEOUT, "no SETUP from the peer");
    }
    if (!s->closing && now >= s->expiry_deadline) {
        s->expiry_deadline = UINT64_MAX;
        moq_session_fail(s, MOQ_CODE_UNAUTHORIZED, "token expired");
    }
    if (!s->closing && now >= s->probe_deadline) {
        s->probe_deadline = now + PROBE_TICK_US;
        moq_serve_probe_tick(s, now);
    }
    for (size_t i = 0; i < s->n_ending && !s->closing; i++) {
        if (now < s->ending[i].deadline) continue;
        moq_consume_ending_check(s);
        break;
    }
    report_deadline(s, true); /* even when unchanged: the driver's timer has fired */
}

/* When a token expiring at `expires` (Unix seconds) runs out, in clock time: its expiry
 * is counted from the wall clock, the deadline on the monotonic one. */
static uint64_t expiry_deadline(const moq_session *s, int64_t expires)
{
    const moq_clock *c = s->cfg.clock;
    uint64_t now = c->now_us(c->ctx), wall = c->wall_us(c->ctx);
    if ((uint64_t)expires > UINT64_MAX / MOQ_US_PER_S) return UINT64_MAX;
    uint64_t at = (uint64_t)expires * MOQ_US_PER_S;
    if (at <= wall) return now;
    return at - wall > UINT64_MAX - now ? UINT64_MAX : now + (at - wall);
}

/* ---------------------------------------------------------------- SETUP and authorization */

static void send_setup(moq_session *s)
{
    mstream *ms;
    int orv = moq_ms_open(s, MS_SETUP_OUT, false, &ms);
    s->setup_pending = orv == MOQ_ERR_AGAIN; /* sent once the peer grants a uni stream */
    if (orv == MOQ_ERR_AGAIN) return;
    if (orv < 0) {
        moq_session_fail(s, MOQ_CODE_TRANSPORT, "cannot open the SETUP stream");
        return;
    }
    struct moq_setup setup = {0};
    setup.origin = moq_origin_id(s->cfg.origin);
    if (s->cfg.offer_probe && s->t->kind != MOQ_TRANSPORT_WEBSOCKET) setup.probe = MOQ_PROBE_REPORT;
    if (s->t->is_client && s->cfg.setup_path && s->t->kind == MOQ_TRANSPORT_QUIC) {
        setup.has_path = true;
        setup.path = moq_str_make(s->cfg.setup_path, strlen(s->cfg.setup_path));
    }
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_encode_stream_type(&b, MOQ_UNI_SETUP);
    if (rv == 0) rv = moq_encode_setup(&b, s->v, &setup);
    if (rv == 0) rv = moq_ms_write(ms, &b, true);
    moq_buf_free(&b);
    if (rv < 0) moq_session_fail(s, MOQ_CODE_TRANSPORT, "cannot send SETUP");
}

/* A client that declares one role gets only that direction (upstream prunes the other). */
static void apply_role(moq_perms *p, int role)
{
    if (role == MOQ_ROLE_PUBLISHER)
        moq_strlist_free(&p->subscribe);
    else if (role == MOQ_ROLE_SUBSCRIBER)
        moq_strlist_free(&p->publish);
}

static void session_stream_data(moq_session *s, mstream *ms, const uint8_t *data, size_t len,
                                bool fin);
static void session_stream_dispatch(moq_session *s, mstream *ms, const uint8_t *data, size_t len,
                                    bool fin);

static void release_held(moq_session *s)
{
    while (!moq_list_empty(&s->held) && !s->closing) {
        mstream *ms = moq_list_first(&s->held, mstream, held_link);
        moq_list_remove(&ms->held_link);
        s->held_streams--;
        s->held_bytes -= ms->held.len;
        moq_buf held = ms->held;
        moq_buf_init(&ms->held);
        session_stream_data(s, ms, held.data, held.len, ms->held_fin);
        moq_buf_free(&held);
    }
}

static void authorize(moq_session *s)
{
    const char *path = "/";
    if (s->t->path)
        path = s->t->path;
    else if (s->setup_path && s->setup_path[0])
        path = s->setup_path;
    moq_perms perms = {0};
    uint64_t code = s->cfg.authorize(s->cfg.ctx, s, path, s->peer_role, &perms);
    if (code == 0) {
        apply_role(&perms, s->peer_role);
        if (!perms.root) perms.root = strdup("");
        if (!perms.root)
            code = MOQ_CODE_TRANSPORT;
        else if (perms.publish.len == 0 && perms.subscribe.len == 0)
            code = MOQ_CODE_UNAUTHORIZED;
    }
    if (code != 0) {
        moq_perms_free(&perms);
        moq_session_fail(s, code, "not authorized");
        return;
    }
    s->perms = perms;
    s->authorized = true;
    if (perms.expires > 0) {
        s->expiry_deadline = expiry_deadline(s, perms.expires);
        moq_session_deadline_changed(s);
    }
    moq_debug("moq", "%s: %s session authorized at /%s", s->t->peer, s->caps->name, perms.root);
    moq_consume_start(s);
    release_held(s);
}

static void on_setup(moq_session *s, mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    while (!s->closing) {
        struct moq_ctrl_msg msg;
        int rv = moq_ctrl_reader_next(&ms->cr, &data, &len, fin, &msg);
        if (rv == 0) return;
        if (rv < 0 || s->setup_received) {
            if (rv == MOQ_ERR_CLOSED && s->setup_received) return;
            moq_session_fail(s, MOQ_CODE_PROTOCOL_VIOLATION, "bad SETUP stream");
            return;
        }
        struct moq_setup setup;
        if (moq_decode_setup(s->v, msg.body, msg.len, &setup) < 0) {
            moq_session_fail(s, MOQ_CODE_DECODE, "malformed SETUP");
            return;
        }
        s->setup_received = true;
        s->peer_origin = setup.origin;
        s->peer_role = (int)setup.role;
        if (setup.has_path && setup.path.len) {
            s->setup_path = malloc(setup.path.len + 1);
            if (!s->setup_path) {
                moq_session_fail(s, MOQ_CODE_TRANSPORT, "out of memory");
                return;
            }
            memcpy(s->setup_path, setup.path.ptr, setup.path.len);
            s->setup_path[setup.path.len] = '\0';
        }
        s->setup_deadline = UINT64_MAX;
        moq_session_deadline_changed(s);
        if (!s->authorized) authorize(s);
    }
}

/* ---------------------------------------------------------------- stream kinds */

static void setup_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    on_setup(ms->s, ms, data, len, fin);
}

static void setup_reset(mstream *ms, uint64_t code)
{
    (void)code;
    moq_session_fail(ms->s, MOQ_CODE_PROTOCOL_VIOLATION, "SETUP stream reset");
}

static const struct moq_ms_ops setup_in_ops = {.data = setup_data, .reset = setup_reset};

/* ---- lite-01/02: the compat SETUP stream, then the session stream */

/* Client: SERVER_SETUP (vi 0x21, u16 size, body) chose the version we offered. */
static bool compat_server_setup(moq_session *s, mstream *ms, const uint8_t **data, size_t *len,
                                bool fin)
{
    if (!ms->cr_live) {
        uint64_t type;
        int rv = moq_varint_reader_next(&ms->vr, data, len, fin, &type);
        if (rv == 0) return false;
        if (rv < 0 || type != MOQ_BIDI_SERVER_COMPAT) {
            moq_session_fail(s, MOQ_CODE_PROTOCOL_VIOLATION, "expected SERVER_SETUP");
            return false;
        }
        moq_ctrl_reader_init(&ms->cr, MOQ_CTRL_U16_SIZE, MAX_CONTROL_MSG);
        ms->cr_live = true;
    }
    struct moq_ctrl_msg msg;
    int rv = moq_ctrl_reader_next(&ms->cr, data, len, fin, &msg);
    if (rv == 0) return false;
    uint64_t version = 0;
    const uint8_t *params;
    size_t params_len;
    if (rv < 0 ||
        moq_decode_compat_server_setup(msg.body, msg.len, &version, &params, &params_len) < 0) {
        moq_session_fail(s, MOQ_CODE_DECODE, "malformed SERVER_SETUP");
        return false;
    }
    if (version != s->caps->compat_code) {
        moq_session_fail(s, MOQ_CODE_VERSION, "the server chose a version we did not offer");
        return false;
    }
    s->setup_received = true;
    s->setup_deadline = UINT64_MAX;
    moq_session_deadline_changed(s);
    moq_ctrl_reader_free(&ms->cr);
    moq_ctrl_reader_init(&ms->cr, 0, MAX_CONTROL_MSG);
    authorize(s);
    return !s->closing;
}

/* SESSION_INFO messages are read and ignored; the stream ends with the session. */
static void compat_data(mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = ms->s;
    if (!s->setup_received && !compat_server_setup(s, ms, &data, &len, fin)) return;
    while (!s->closing) {
        struct moq_ctrl_msg msg;
        int rv = moq_ctrl_reader_next(&ms->cr, &data, &len, fin, &msg);
        if (rv == 0) return;
        if (rv == MOQ_ERR_CLOSED) {
            moq_session_close(s, MOQ_CODE_CANCEL, "session stream finished");
            return;
        }
        uint64_t bitrate;
        if (rv < 0 || moq_decode_session_info(s->v, msg.body, msg.len, &bitrate) < 0) {
            moq_session_fail(s, MOQ_CODE_DECODE, "malformed SESSION_INFO");
            return;
        }
    }
}

static void compat_reset(mstream *ms, uint64_t code)
{
    (void)code;
    moq_session_fail(ms->s, MOQ_CODE_PROTOCOL_VIOLATION, "session stream reset");
}

static void compat_release(mstream *ms)
{
    if (ms->s->compat == ms) ms->s->compat = NULL;
}

static const struct moq_ms_ops compat_ops = {
    .data = compat_data, .reset = compat_reset, .stopped = compat_reset, .release = compat_release};
static const struct moq_ms_ops inert_ops = {0};

static const struct moq_ms_ops *const kind_ops[] = {
    [MS_NEW] = &inert_ops,
    [MS_SETUP_IN] = &setup_in_ops,
    [MS_SETUP_OUT] = &inert_ops,
    [MS_ANN_SERVE] = &moq_serve_announce_ops,
    [MS_ANN_CONSUME] = &moq_consume_announce_ops,
    [MS_SUB_SERVE] = &moq_serve_subscribe_ops,
    [MS_SUB_CONSUME] = &moq_consume_subscribe_ops,
    [MS_TRACK_SERVE] = &moq_serve_track_ops,
    [MS_TRACK_CONSUME] = &moq_consume_track_ops,
    [MS_FETCH_SERVE] = &moq_serve_fetch_ops,
    [MS_FETCH_CONSUME] = &moq_consume_fetch_ops,
    [MS_PROBE_SERVE] = &moq_serve_probe_ops,
    [MS_GROUP_OUT] = &moq_serve_group_ops,
    [MS_GROUP_IN] = &moq_consume_group_ops,
    [MS_COMPAT] = &compat_ops,
    [MS_IGNORE] = &inert_ops,
};
_Static_assert(sizeof(kind_ops) / sizeof(kind_ops[0]) == MS_IGNORE + 1,
               "every stream kind has its operations");

static const struct moq_ms_ops *ms_ops(const mstream *ms)
{
    return kind_ops[ms->kind];
}

/* ---------------------------------------------------------------- dispatch */

static void dispatch_type(moq_session *s, mstream *ms, uint64_t type)
{
    const moq_caps *caps = s->caps;
    if (!ms->bidi) {
        if (type == MOQ_UNI_GROUP) {
            ms->kind = MS_GROUP_IN;
            return;
        }
        if (type == MOQ_UNI_SETUP && caps->setup_stream) {
            ms->kind = MS_SETUP_IN;
            moq_ctrl_reader_init(&ms->cr, 0, MAX_CONTROL_MSG);
            ms->cr_live = true;
            return;
        }
    } else if (moq_bidi_type_supported(s->v, type)) {
        moq_ctrl_reader_init(&ms->cr, 0, MAX_CONTROL_MSG);
        ms->cr_live = true;
        switch (type) {
        case MOQ_BIDI_ANNOUNCE:
            ms->kind = MS_ANN_SERVE;
            return;
        case MOQ_BIDI_SUBSCRIBE:
            ms->kind = MS_SUB_SERVE;
            return;
        case MOQ_BIDI_TRACK:
            ms->kind = MS_TRACK_SERVE;
            return;
        case MOQ_BIDI_FETCH:
            ms->kind = MS_FETCH_SERVE;
            return;
        case MOQ_BIDI_PROBE:
            ms->kind = MS_PROBE_SERVE;
            moq_serve_probe_open(ms);
            return;
        case MOQ_BIDI_GOAWAY:
            moq_info("moq", "%s: peer sent GOAWAY", s->t->peer);
            ms->kind = MS_IGNORE;
            return;
        default:
            break;
        }
    }
    moq_debug("moq", "%s: unexpected %s stream type %llu", s->t->peer, ms->bidi ? "bidi" : "uni",
              (unsigned long long)type);
    ms->kind = MS_IGNORE;
    moq_ms_abort(ms, MOQ_CODE_UNEXPECTED_STREAM);
}

/* Whether a peer stream must wait: only the SETUP stream goes ahead of authorization. */
static bool must_hold(moq_session *s, mstream *ms, const uint8_t *data, size_t len)
{
    if (s->authorized) return false;
    if (moq_list_linked(&ms->held_link)) return true;
    if (ms->kind != MS_NEW) return false;
    if (!ms->bidi && len > 0) {
        uint64_t type;
        moq_varint_reader probe = ms->vr;
        const uint8_t *p = data;
        size_t n = len;
        if (moq_varint_reader_next(&probe, &p, &n, false, &type) == 1 && type == MOQ_UNI_SETUP)
            return false;
    }
    return true;
}

static void hold(moq_session *s, mstream *ms, const uint8_t *data, size_t len, bool fin)
{
    if (!moq_list_linked(&ms->held_link)) {
        if (s->held_streams >= MAX_HELD_STREAMS) {
            ms->kind = MS_IGNORE;
            moq_ms_abort(ms, MOQ_CODE_BOUNDS_EXCEEDED);
            return;
        }
        moq_list_push_back(&s->held, &ms->held_link);
        s->held_streams++;
    }
    if (s->held_bytes + len > MAX_HELD_BYTES || moq_buf_append(&ms->held, data, len) < 0) {
        moq_session_fail(s, MOQ_CODE_BOUNDS_EXCEEDED, "too much data before SETUP");
        return;
    }
    s->held_bytes += len;
    if (fin) ms->held_fin = true;
}

/* Keep the session's total of incomplete control messages within MAX_PENDING_CONTROL: a
 * peer could otherwise make us reserve 64 KiB on each of thousands of streams. */
static void account_control(moq_session *s, mstream *ms)
{
    size_t now = ms->cr_live ? moq_ctrl_reader_pending(&ms->cr) : 0;
    s->pending_control = s->pending_control - ms->cr_pending + now;
    ms->cr_pending = now;
    if (s->pending_control > MAX_PENDING_CONTROL)
        moq_session_fail(s, MOQ_CODE_BOUNDS_EXCEEDED, "too many incomplete control messages");
}

static void session_stream_data(moq_session *s, mstream *ms, const uint8_t *data, size_t len,
                                bool fin)
{
    session_stream_dispatch(s, ms, data, len, fin);
    account_control(s, ms);
}

static void session_stream_dispatch(moq_session *s, mstream *ms, const uint8_t *data, size_t len,
                                    bool fin)
{
    if (must_hold(s, ms, data, len)) {
        hold(s, ms, data, len, fin);
        return;
    }
    if (ms->kind == MS_NEW) {
        uint64_t type;
        int rv = moq_varint_reader_next(&ms->vr, &data, &len, fin, &type);
        if (rv == 0) return;
        if (rv < 0) {
            ms->kind = MS_IGNORE;
            moq_ms_abort(ms, MOQ_CODE_DECODE);
            return;
        }
        dispatch_type(s, ms, type);
    }
    if (len == 0 && !fin) return;
    const struct moq_ms_ops *ops = ms_ops(ms);
    if (ops->data) ops->data(ms, data, len, fin);
    if (fin) ms->recv_done = true;
}

/* ---------------------------------------------------------------- transport events */

static void ev_stream_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    moq_session *s = app;
    if (s->closing) return;
    if (!ms_new(s, sid, MS_NEW, bidi, false))
        moq_session_fail(s, MOQ_CODE_TRANSPORT, "out of memory");
}

static void ev_stream_data(void *app, moq_transport *t, int64_t sid, void *sctx,
                           const uint8_t *data, size_t len, bool fin)
{
    moq_session *s = app;
    mstream *ms = sctx;
    if (!ms || s->closing || ms->recv_done) return;
    session_stream_data(s, ms, data, len, fin);
}

static void ev_stream_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    moq_session *s = app;
    mstream *ms = sctx;
    if (!ms || s->closing) return;
    ms->recv_done = true;
    const struct moq_ms_ops *ops = ms_ops(ms);
    if (ops->reset) ops->reset(ms, code);
}

static void ev_stream_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    moq_session *s = app;
    mstream *ms = sctx;
    if (!ms || s->closing) return;
    ms->send_done = true;
    const struct moq_ms_ops *ops = ms_ops(ms);
    if (ops->stopped) ops->stopped(ms, code);
}

static void ev_stream_closed(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    mstream *ms = sctx;
    moq_trace("moq", "%s: stream %lld closed (kind %d)", t->peer, (long long)sid,
              ms ? (int)ms->kind : -1);
    if (ms) ms_free(ms);
}

static void ev_stream_writable(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    moq_session *s = app;
    mstream *ms = sctx;
    if (ms && !s->closing) moq_serve_stream_writable(ms);
}

static void ev_streams_available(void *app, moq_transport *t, bool bidi)
{
    moq_session *s = app;
    if (s->closing) return;
    if (bidi && s->compat_pending) send_compat_setup(s);
    if (bidi && !s->compat_pending) moq_consume_streams_available(s);
    if (bidi) return;
    if (s->setup_pending) send_setup(s);
    if (!s->setup_pending) moq_serve_streams_available(s);
}

static void ev_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    moq_session *s = app;
    if (!s->closing && s->authorized && s->caps->datagrams) moq_consume_datagram(s, data, len);
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    moq_session *s = app;
    moq_info("moq", "%s: %s session closed (code %llu%s%s)", t->peer, s->caps->name,
             (unsigned long long)code, reason && reason[0] ? ": " : "", reason ? reason : "");
    session_teardown(s, code, reason);
}

static const struct moq_transport_events session_events = {
    .stream_opened = ev_stream_opened,
    .stream_data = ev_stream_data,
    .stream_reset = ev_stream_reset,
    .stream_stopped = ev_stream_stopped,
    .stream_closed = ev_stream_closed,
    .stream_writable = ev_stream_writable,
    .streams_available = ev_streams_available,
    .datagram = ev_datagram,
    .closed = ev_closed,
};

/* ---------------------------------------------------------------- public */

/* The moq-lite part of a session: everything but t and cfg, which are set. */
static void lite_init(moq_session *s, const moq_caps *caps)
{
    if (!s->cfg.max_frame_bytes) s->cfg.max_frame_bytes = MOQ_DEFAULT_MAX_FRAME;
    if (!s->cfg.max_inbound_bytes) s->cfg.max_inbound_bytes = 64ull * 1024 * 1024;
    s->v = caps->version;
    s->caps = caps;
    s->peer_role = MOQ_ROLE_BOTH;
    moq_list_init(&s->streams);
    moq_list_init(&s->held);
    moq_list_init(&s->ann_consumes);
    moq_list_init(&s->queue);
    moq_list_init(&s->bidi_wait);
    moq_u64map_init(&s->up_by_id);
    moq_u64map_init(&s->up_by_track);
    s->setup_deadline = s->expiry_deadline = s->probe_deadline = UINT64_MAX;
    moq_transport_attach(s->t, &session_events, s);
}

static const char *transport_name(const moq_transport *t)
{
    return t->kind == MOQ_TRANSPORT_QUIC           ? "QUIC"
           : t->kind == MOQ_TRANSPORT_WEBTRANSPORT ? "WebTransport"
                                                   : "WebSocket";
}

static void log_start(const moq_session *s)
{
    const moq_transport *t = s->t;
    moq_info("moq", "%s: %s session over %s%s%s", t->peer, s->caps->name, transport_name(t),
             t->path ? " at " : "", t->path ? t->path : "");
}

/* Wait for the peer's SETUP (a lite-05+ client's, or the SERVER_SETUP a compat client
 * asked for) before anything else. */
static void await_setup(moq_session *s)
{
    s->setup_deadline =
        moq_session_now(s) + (s->cfg.setup_timeout_us ? s->cfg.setup_timeout_us : SETUP_TIMEOUT_US);
    moq_session_deadline_changed(s);
}

/* Client, lite-01/02: CLIENT_SETUP offering our one version on the first bidi stream. */
static void send_compat_setup(moq_session *s)
{
    mstream *ms;
    int rv = moq_ms_open(s, MS_COMPAT, true, &ms);
    s->compat_pending = rv == MOQ_ERR_AGAIN; /* sent once the peer grants a bidi stream */
    if (rv == MOQ_ERR_AGAIN) return;
    if (rv < 0) {
        moq_session_fail(s, MOQ_CODE_TRANSPORT, "cannot open the SETUP stream");
        return;
    }
    s->compat = ms;
    static const uint8_t no_params[] = {0};
    uint64_t offer = s->caps->compat_code;
    moq_buf b;
    moq_buf_init(&b);
    rv = moq_encode_stream_type(&b, MOQ_BIDI_CLIENT_COMPAT);
    if (rv == 0) rv = moq_encode_compat_client_setup(&b, &offer, 1, no_params, sizeof(no_params));
    if (rv == 0) rv = moq_ms_write(ms, &b, false);
    moq_buf_free(&b);
    if (rv < 0) moq_session_fail(s, MOQ_CODE_TRANSPORT, "cannot send SETUP");
}

/* The version this side speaks on t, or NULL. */
static const moq_caps *caps_for(const moq_transport *t, const struct moq_session_config *cfg)
{
    if (t->is_client && strcmp(t->protocol, MOQ_COMPAT_ALPN) == 0) {
        const moq_caps *c = moq_caps_get((moq_version)cfg->compat_version);
        return c && c->compat_setup ? c : NULL;
    }
    int version = moq_version_from_alpn(t->protocol, strlen(t->protocol));
    return version > 0 ? moq_caps_get((moq_version)version) : NULL;
}

moq_session *moq_session_new(moq_transport *t, const struct moq_session_config *cfg)
{
    bool compat_client = t->is_client && cfg->compat_version;
    if (!compat_client && moq_ietf_protocol(t->protocol)) return moq_ietf_session_new(t, cfg);
    const moq_caps *caps = caps_for(t, cfg);
    if (!caps) {
        moq_warn("moq", "%s: unsupported protocol '%s'", t->peer, t->protocol);
        moq_transport_close(t, MOQ_CODE_VERSION, "unsupported protocol");
        return NULL;
    }
    if (!cfg->clock) {
        moq_error("moq", "%s: a session needs a clock", t->peer);
        moq_transport_close(t, MOQ_CODE_TRANSPORT, "no clock");
        return NULL;
    }
    moq_session *s = calloc(1, sizeof(*s));
    if (!s) {
        moq_transport_close(t, MOQ_CODE_TRANSPORT, "out of memory");
        return NULL;
    }
    s->t = t;
    s->cfg = *cfg;
    s->reported_deadline = UINT64_MAX; /* what a driver's timer starts as: unarmed */
    lite_init(s, caps);
    log_start(s);
    if (caps->setup_stream) send_setup(s);
    if (caps->compat_setup) send_compat_setup(s);
    /* Servers on lite-05 wait for the client's SETUP (it may carry the path and role), and
     * compat clients for the server's; other clients and older versions are authorized at
     * once. */
    if ((caps->setup_stream && !t->is_client) || caps->compat_setup)
        await_setup(s);
    else if (!s->closing)
        authorize(s);
    return s;
}

void moq_session_compat_adopt(moq_session *s, int64_t sid, moq_version v, const uint8_t *rest,
                              size_t len, bool fin)
{
    const moq_caps *caps = moq_caps_get(v);
    moq_transport *t = s->t;
    lite_init(s, caps);
    moq_info("moq", "%s: %s session over %s%s%s (compat SETUP)", t->peer, caps->name,
             transport_name(t), t->path ? " at " : "", t->path ? t->path : "");
    mstream *ms = ms_new(s, sid, MS_COMPAT, true, false);
    if (!ms) {
        moq_session_fail(s, MOQ_CODE_TRANSPORT, "out of memory");
        return;
    }
    s->compat = ms;
    moq_ctrl_reader_init(&ms->cr, 0, MAX_CONTROL_MSG);
    ms->cr_live = true;
    s->setup_received = true;
    moq_session_deadline_changed(s); /* the other engine's SETUP timeout is gone */
    static const uint8_t no_params[] = {0};
    moq_buf b;
    moq_buf_init(&b);
    int rv = moq_encode_stream_type(&b, MOQ_BIDI_SERVER_COMPAT);
    if (rv == 0)
        rv = moq_encode_compat_server_setup(&b, caps->compat_code, no_params, sizeof(no_params));
    if (rv == 0) rv = moq_ms_write(ms, &b, false);
    moq_buf_free(&b);
    if (rv < 0) {
        moq_session_fail(s, MOQ_CODE_TRANSPORT, "cannot send SETUP");
        return;
    }
    authorize(s);
    if (!s->closing && (len || fin)) session_stream_data(s, ms, rest, len, fin);
}

moq_transport *moq_session_transport(const moq_session *s)
{
    return s->t;
}

const moq_perms *moq_session_perms(const moq_session *s)
{
    return s->authorized ? &s->perms : NULL;
}

const char *moq_session_version(const moq_session *s)
{
    if (s->ietf) return moq_ietf_session_version(s);
    return s->caps->name;
}

uint64_t moq_session_peer_origin(const moq_session *s)
{
    return s->peer_origin;
}

size_t moq_session_unacked_streams(const moq_session *s)
{
    size_t n = 0;
    if (s->ietf) return moq_ietf_session_unacked_streams(s);
    moq_list *pos;
    for (pos = s->streams.next; pos != &s->streams; pos = pos->next) {
        mstream *ms = moq_container_of(pos, mstream, link);
        if (ms->local && !ms->bidi)
            n++; /* ours alone: it closes once the peer acknowledged all of it */
        else if (!s->gone && s->t->ops->unsent(s->t, ms->sid) > 0)
            n++;
    }
    return n;
}

void moq_session_stats_get(const moq_session *s, struct moq_session_stats *out)
{
    *out = s->stats;
    out->streams = 0;
    for (const moq_list *pos = s->streams.next; pos != &s->streams; pos = pos->next)
        out->streams++;
}
