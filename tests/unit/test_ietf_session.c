/* The moq-transport session engine in process, on every draft: a relay-side session over an
 * in-memory transport pair, whose peer the test plays byte for byte with the codec (SETUP,
 * requests, reading what the relay sends), and a virtual clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ietf/codec.h"
#include "ietf/objects.h"
#include "model/model.h"
#include "moq/session.h"
#include "transport/pipe.h"
#include "util/log.h"
#include "util/time.h"

static const char *const PROTOCOLS[] = {"moql",    "moqt-15", "moqt-16", "moqt-17",
                                        "moqt-18", "moqt-19", "moqt-20"};
static const moq_ietf_draft DRAFTS[] = {MOQT_14, MOQT_15, MOQT_16, MOQT_17,
                                        MOQT_18, MOQT_19, MOQT_20};
#define N_DRAFTS (sizeof(DRAFTS) / sizeof(DRAFTS[0]))

static uint64_t now_us;

static uint64_t virtual_now(void *ctx)
{
    return now_us;
}

static uint64_t virtual_wall(void *ctx)
{
    return 1700000000ull * MOQ_US_PER_S + now_us;
}

static const moq_clock test_clock = {virtual_now, virtual_wall, NULL};

/* ---- a local producer of broadcast "bbb": records what the model asks of it ---- */

struct producer {
    int requests, updates;
    uint8_t priority; /* of the last request or update */
    moq_track *track; /* the last one requested */
};

static void prod_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    struct producer *pr = ctx;
    pr->requests++;
    pr->track = t;
    pr->priority = p->priority;
}

static void prod_update(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    struct producer *pr = ctx;
    pr->updates++;
    pr->priority = p->priority;
}

static void prod_release(void *ctx, moq_route *r, moq_track *t) {}

static const moq_producer_ops producer_ops = {prod_request, prod_update, prod_release, NULL, false};

/* ---- the peer: what it received, per stream ---- */

#define MAX_STREAMS 16

struct peer {
    const moq_ietf_caps *c;
    moq_transport *t;
    moq_pipe *pipe;
    struct {
        int64_t sid;
        bool bidi;
        bool fin;
        moq_buf in;
    } rx[MAX_STREAMS];
    size_t n_rx;
    int64_t control; /* 14-16: the control stream we opened */
    uint64_t next_request;
    bool closed;
};

static moq_buf *rx_of(struct peer *p, int64_t sid, bool bidi)
{
    for (size_t i = 0; i < p->n_rx; i++)
        if (p->rx[i].sid == sid) return &p->rx[i].in;
    assert_true(p->n_rx < MAX_STREAMS);
    p->rx[p->n_rx].sid = sid;
    p->rx[p->n_rx].bidi = bidi;
    moq_buf_init(&p->rx[p->n_rx].in);
    return &p->rx[p->n_rx++].in;
}

static void peer_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    rx_of(app, sid, bidi);
}

static void peer_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                      size_t len, bool fin)
{
    struct peer *p = app;
    moq_buf_append(rx_of(p, sid, true), data, len);
    for (size_t i = 0; i < p->n_rx; i++)
        if (p->rx[i].sid == sid && fin) p->rx[i].fin = true;
}

static void peer_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    ((struct peer *)app)->closed = true;
}

static const struct moq_transport_events peer_events = {
    .stream_opened = peer_opened, .stream_data = peer_data, .closed = peer_closed};

/* The first message of `type` on any bidi stream the peer received on, decoded by the
 * caller from body[0..*len); NULL when none came. Streams the relay opened start with a
 * message too (its request streams, 17+). */
static const uint8_t *find_msg_in(struct peer *p, uint64_t type, size_t *len, int64_t *sid)
{
    for (size_t i = 0; i < p->n_rx; i++) {
        if (!p->rx[i].bidi) continue;
        const uint8_t *d = p->rx[i].in.data;
        size_t left = p->rx[i].in.len;
        while (left > 0) {
            uint64_t t;
            int n = moq_ietf_varint_get(p->c, d, left, &t);
            if (n <= 0 || left < (size_t)n + 2) break;
            size_t body = ((size_t)d[n] << 8) | d[n + 1];
            if (left < (size_t)n + 2 + body) break;
            if (t == type) {
                *len = body;
                if (sid) *sid = p->rx[i].sid;
                return d + n + 2;
            }
            d += (size_t)n + 2 + body;
            left -= (size_t)n + 2 + body;
        }
    }
    return NULL;
}

static const uint8_t *find_msg(struct peer *p, uint64_t type, size_t *len)
{
    return find_msg_in(p, type, len, NULL);
}

/* A request of ours: on the control stream (14-16) or a bidi stream of its own (17+). */
static void peer_send(struct peer *p, moq_buf *b)
{
    int64_t sid = p->control;
    if (p->c->request_streams) assert_int_equal(moq_transport_open(p->t, true, &sid), 0);
    assert_int_equal(moq_transport_write_bytes(p->t, sid, b->data, b->len, false), 0);
    moq_buf_free(b);
    moq_pipe_flush(p->pipe);
}

/* An update of the request whose stream is `sid` (17+) or on the control stream. */
static void peer_send_on(struct peer *p, int64_t sid, moq_buf *b)
{
    assert_int_equal(moq_transport_write_bytes(p->t, sid, b->data, b->len, false), 0);
    moq_buf_free(b);
    moq_pipe_flush(p->pipe);
}

static uint64_t peer_request_id(struct peer *p)
{
    uint64_t id = p->next_request;
    p->next_request += 2;
    return id;
}

/* ---- the relay side ---- */

/* The stream priorities the relay's session set, through its transport end. */
static struct {
    const struct moq_transport_ops *real;
    struct moq_transport_ops ops;
    int64_t sid[32];
    uint64_t priority[32];
    size_t n;
} prio;

static void recording_set_priority(moq_transport *t, int64_t sid, uint64_t priority)
{
    size_t i = 0;
    while (i < prio.n && prio.sid[i] != sid)
        i++;
    if (i == prio.n && prio.n < 32) prio.n++;
    if (i < 32) {
        prio.sid[i] = sid;
        prio.priority[i] = priority;
    }
    prio.real->set_priority(t, sid, priority);
}

/* The last priority set on sid; 0 (the transport's default) when none was. */
static uint64_t priority_of(int64_t sid)
{
    for (size_t i = 0; i < prio.n; i++)
        if (prio.sid[i] == sid) return prio.priority[i];
    return 0;
}

struct fixture {
    moq_origin *origin;
    moq_route *route;
    struct producer prod;
    moq_session *s;
    struct peer peer;
};

/* What the peer may subscribe to (a prefix); everything unless a test narrows it. */
static const char *subscribe_grant = "";

static uint64_t authorize(void *ctx, moq_session *s, const char *path, int role, moq_perms *p)
{
    memset(p, 0, sizeof(*p));
    p->root = strdup("");
    moq_strlist_push(&p->publish, "");
    moq_strlist_push(&p->subscribe, subscribe_grant);
    return 0;
}

static void session_closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    ((struct fixture *)ctx)->s = NULL;
}

static void timer(void *ctx, moq_session *s, uint64_t at) {}

static void start(struct fixture *f, size_t draft)
{
    memset(f, 0, sizeof(*f));
    moq_log_set_level(MOQ_LOG_OFF);
    now_us = 0;
    moq_origin_config oc;
    moq_origin_config_default(&oc);
    oc.id = 9;
    f->origin = moq_origin_new(&oc);
    assert_int_equal(moq_origin_announce(f->origin, (const uint8_t *)"bbb", 3, NULL, 0,
                                         &producer_ops, &f->prod, &f->route),
                     0);
    struct peer *p = &f->peer;
    p->c = moq_ietf_caps_get(DRAFTS[draft]);
    moq_transport *server;
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, PROTOCOLS[draft], "/", 1200};
    p->pipe = moq_pipe_new(NULL, &pc, &p->t, &server);
    moq_transport_attach(p->t, &peer_events, p);
    memset(&prio, 0, sizeof(prio));
    prio.real = server->ops;
    prio.ops = *server->ops;
    prio.ops.set_priority = recording_set_priority;
    server->ops = &prio.ops;
    struct moq_session_config sc = {.origin = f->origin,
                                    .clock = &test_clock,
                                    .timer = timer,
                                    .authorize = authorize,
                                    .closed = session_closed,
                                    .ctx = f};
    f->s = moq_session_new(server, &sc);
    assert_non_null(f->s);
    /* our SETUP */
    uint64_t version = p->c->code;
    struct moq_ietf_setup_out out = {.versions = &version,
                                     .n_versions = 1,
                                     .has_max_request_id = p->c->max_request_id,
                                     .max_request_id = 100,
                                     .implementation = "test"};
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_setup(&b, p->c, true, &out), 0);
    assert_int_equal(moq_transport_open(p->t, !p->c->uni_setup, &p->control), 0);
    peer_send_on(p, p->control, &b);
    assert_non_null(f->s);
}

static void finish(struct fixture *f)
{
    if (f->s) {
        moq_transport_close(f->peer.t, 0, "");
        moq_pipe_flush(f->peer.pipe);
    }
    assert_null(f->s);
    for (size_t i = 0; i < f->peer.n_rx; i++)
        moq_buf_free(&f->peer.rx[i].in);
    moq_route_unannounce(f->route);
    moq_origin_free(f->origin);
}

/* SUBSCRIBE ns/t as request ID, from the largest object (the draft's way of saying so). */
static void encode_subscribe_to(const struct peer *p, const char *ns, uint64_t id, uint8_t priority,
                                moq_buf *b)
{
    struct moq_ietf_subscribe m = {.request_id = id,
                                   .track = moq_str_make("t", 1),
                                   .priority = priority,
                                   .forward = true,
                                   .want_properties = true};
    m.filter.kind =
        p->c->filter == MOQ_IETF_FILTER_FIELDS ? MOQ_IETF_FILTER_NONE : MOQ_IETF_FILTER_LARGEST;
    moq_buf_init(b);
    assert_int_equal(moq_ietf_encode_subscribe(b, p->c, &m, moq_str_make(ns, strlen(ns))), 0);
}

static void encode_subscribe(const struct peer *p, uint64_t id, uint8_t priority, moq_buf *b)
{
    encode_subscribe_to(p, "bbb", id, priority, b);
}

/* ---- SUBSCRIBE_UPDATE ---- */

/* A downstream subscriber's REQUEST_UPDATE reaches the publisher: the model's priority of
 * the track follows the update (moq-lite's sense: 255 - the IETF priority). */
static void update_from_subscriber_reaches_the_publisher(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        uint64_t id = peer_request_id(p);
        moq_buf b;
        encode_subscribe(p, id, 200, &b);
        int64_t sub_sid = p->control;
        if (p->c->request_streams) {
            assert_int_equal(moq_transport_open(p->t, true, &sub_sid), 0);
            peer_send_on(p, sub_sid, &b);
        } else {
            peer_send(p, &b);
        }
        assert_int_equal(f.prod.requests, 1);
        assert_int_equal(f.prod.priority, 255 - 200);

        struct moq_ietf_request_update up = {.request_id = peer_request_id(p),
                                             .subscription_id = id,
                                             .has_priority = true,
                                             .priority = 10,
                                             .has_forward = true,
                                             .forward = true};
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_encode_request_update(&b, p->c, &up), 0);
        peer_send_on(p, sub_sid, &b);
        assert_non_null(f.s);
        assert_int_equal(f.prod.updates, 1);
        assert_int_equal(f.prod.priority, 255 - 10);

        /* an update of a subscription that does not exist changes nothing */
        if (!p->c->request_streams) {
            up.request_id = peer_request_id(p);
            up.subscription_id = 999;
            up.priority = 1;
            moq_buf_init(&b);
            assert_int_equal(moq_ietf_encode_request_update(&b, p->c, &up), 0);
            peer_send_on(p, p->control, &b);
            assert_non_null(f.s);
            assert_int_equal(f.prod.updates, 1);
        }
        finish(&f);
    }
}

static void sub_on_info(void *ctx, moq_subscription *sub, const moq_track_info *info) {}

static void sub_on_group(void *ctx, moq_subscription *sub, moq_group *group) {}

static const moq_subscriber_ops sub_ops = {sub_on_info, sub_on_group, NULL, NULL};

/* A relay subscriber's new priority reaches an IETF publisher as a REQUEST_UPDATE of the
 * relay's SUBSCRIBE; on draft-14 a SUBSCRIBE_UPDATE that repeats the start SUBSCRIBE_OK
 * gave (after the largest location), so it waits for that answer. */
static void update_reaches_an_ietf_publisher(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_encode_publish_namespace(&b, p->c, peer_request_id(p),
                                                           moq_str_make("pub", 3), NULL),
                         0);
        peer_send(p, &b);
        moq_sub_prefs prefs = {.priority = 55};
        moq_subscription *sub = NULL;
        assert_int_equal(moq_origin_subscribe(f.origin, (const uint8_t *)"pub", 3,
                                              (const uint8_t *)"t", 1, 0, &prefs, &sub_ops, NULL,
                                              &sub),
                         0);
        moq_pipe_flush(p->pipe);
        size_t len;
        const uint8_t *body = find_msg(p, MOQ_IETF_SUBSCRIBE, &len);
        assert_non_null(body);
        struct moq_ietf_subscribe m;
        assert_int_equal(moq_ietf_decode_subscribe(p->c, body, len, &m), 0);
        moq_buf_free(&m.ns);
        assert_int_equal(m.priority, 255 - 55);

        prefs.priority = 250;
        assert_int_equal(moq_subscription_update(sub, &prefs), 0);
        moq_pipe_flush(p->pipe);
        body = find_msg(p, MOQ_IETF_REQUEST_UPDATE, &len);
        if (!p->c->subscribe_params) {
            assert_null(body);
            struct moq_ietf_subscribe_ok ok = {.request_id = m.request_id,
                                               .track_alias = 3,
                                               .group_order = 2,
                                               .has_largest = true,
                                               .largest_group = 4,
                                               .largest_object = 2};
            moq_buf_init(&b);
            assert_int_equal(moq_ietf_encode_subscribe_ok(&b, p->c, &ok), 0);
            peer_send_on(p, p->control, &b);
            body = find_msg(p, MOQ_IETF_REQUEST_UPDATE, &len);
        }
        assert_non_null(body);
        struct moq_ietf_request_update up;
        assert_int_equal(moq_ietf_decode_request_update(p->c, body, len, &up), 0);
        assert_true(up.has_priority);
        assert_int_equal(up.priority, 255 - 250);
        if (p->c->response_ids) assert_int_equal(up.subscription_id, m.request_id);
        assert_true(up.request_id != m.request_id);
        if (!p->c->subscribe_params) {
            assert_true(up.has_filter);
            assert_int_equal(up.filter.start_group, 4);
            assert_int_equal(up.filter.start_object, 3);
            assert_false(up.has_end);
            assert_true(up.forward);
        }
        assert_non_null(f.s);
        moq_subscription_close(sub);
        moq_pipe_flush(p->pipe);
        finish(&f);
    }
}

/* The uni stream the relay opened that starts with `type` (as a varint), or -1. */
static int find_uni(struct peer *p, uint64_t type)
{
    for (size_t i = 0; i < p->n_rx; i++) {
        uint64_t t;
        if (p->rx[i].bidi || p->rx[i].in.len == 0) continue;
        if (moq_ietf_varint_get(p->c, p->rx[i].in.data, p->rx[i].in.len, &t) > 0 && t == type)
            return (int)i;
    }
    return -1;
}

/* The group order the FETCHes of send_fetch and run_fetch ask for. */
static uint8_t fetch_group_order = 1;

static void send_fetch(struct peer *p, int type, uint64_t id, uint64_t joining, uint64_t start)
{
    struct moq_ietf_fetch m = {.request_id = id,
                               .type = type,
                               .track = moq_str_make("t", 1),
                               .priority = 1,
                               .group_order = fetch_group_order,
                               .end_group = 5,
                               .has_range = true,
                               .joining_request_id = joining,
                               .joining_start = start};
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_fetch(&b, p->c, &m, moq_str_make("bbb", 3)), 0);
    peer_send(p, &b);
}

/* A joining FETCH of offset 0 is answered FETCH_OK on every draft (never REQUEST_OK, which
 * upstream sends from draft-15 but no draft allows) and a fetch stream of its header alone
 * (a subscription starts at the beginning of a group, so nothing precedes it); a standalone fetch
 * of a range with nothing cached and a join of no subscription are refused and the session goes on.
 */
static void joining_fetch_is_answered_empty(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        uint64_t sub_id = peer_request_id(p);
        moq_buf b;
        encode_subscribe(p, sub_id, 1, &b);
        peer_send(p, &b);
        assert_int_equal(f.prod.requests, 1);

        uint64_t fetch_id = peer_request_id(p);
        send_fetch(p, MOQ_IETF_FETCH_RELATIVE, fetch_id, sub_id, 0);
        size_t len;
        assert_null(find_msg(p, MOQ_IETF_REQUEST_OK, &len));
        const uint8_t *body = find_msg(p, MOQ_IETF_FETCH_OK, &len);
        assert_non_null(body);
        struct moq_ietf_fetch_ok ok;
        assert_int_equal(moq_ietf_decode_fetch_ok(p->c, body, len, &ok), 0);
        if (p->c->response_ids) assert_int_equal(ok.request_id, fetch_id);
        assert_false(ok.end_of_track);
        int i = find_uni(p, MOQ_IETF_STREAM_FETCH);
        assert_true(i >= 0);
        uint8_t want[2 * MOQ_IETF_VARINT_MAX], *w = want;
        w = moq_ietf_varint_put(p->c, w, MOQ_IETF_STREAM_FETCH);
        w = moq_ietf_varint_put(p->c, w, fetch_id);
        assert_int_equal(p->rx[i].in.len, (size_t)(w - want));
        assert_memory_equal(p->rx[i].in.data, want, (size_t)(w - want));
        assert_true(p->rx[i].fin);

        /* refused: standalone with nothing cached, a join of no subscription; the session
         * goes on */
        uint64_t refusal = p->c->request_error ? MOQ_IETF_REQUEST_ERROR : MOQ_IETF_FETCH_ERROR;
        assert_null(find_msg(p, refusal, &len));
        send_fetch(p, MOQ_IETF_FETCH_STANDALONE, peer_request_id(p), 0, 0);
        assert_non_null(find_msg(p, refusal, &len));
        send_fetch(p, MOQ_IETF_FETCH_RELATIVE, peer_request_id(p), 1000, 0);
        assert_non_null(f.s);
        assert_int_equal(find_uni(p, MOQ_IETF_STREAM_FETCH), i); /* no second fetch stream */
        finish(&f);
    }
}

/* ---- objects: extension headers and subgroups ---- */

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *q = hex; *q;) {
        if (*q == ' ') {
            q++;
            continue;
        }
        unsigned v;
        sscanf(q, "%2x", &v);
        out[n++] = (uint8_t)v;
        q += 2;
    }
    return n;
}

/* Extension blocks in draft-14 form (absolute types, QUIC varints): a bytes pair 0x0b "hi"
 * and a Timestamp (0x10) of 4; and a lone bytes pair 0x0d "z". */
static const char *EXT0 = "0b 02 6869 10 04";
static const char *EXT1 = "0d 01 7a";
/* What the relay writes for them when the publisher declared no timescale: the Timestamp
 * is the wall clock at arrival (1700000000 s, in microseconds). */
static const char *EXT0_OUT = "0b 02 6869 10 c0060a24181e4000";
static const char *EXT1_OUT = "0d 01 7a 10 c0060a24181e4000";
static const char *EXT2_OUT = "10 c0060a24181e4000";
#define WALL_US 1700000000000000ull

/* An extension block in draft d's form. */
static void ext_in(const moq_ietf_caps *c, const char *hex14, moq_buf *out)
{
    uint8_t raw[64];
    size_t n = unhex(hex14, raw);
    moq_buf_init(out);
    assert_int_equal(moq_ietf_ext_convert(moq_ietf_caps_get(MOQT_14), raw, n, c, out), 0);
}

/* One object of a subgroup stream with extensions: id delta 0, the block, the payload. */
static void put_object(struct peer *p, moq_buf *b, const char *ext14, const char *payload)
{
    moq_buf ext;
    ext_in(p->c, ext14, &ext);
    uint8_t v[MOQ_IETF_VARINT_MAX];
    moq_buf_append(b, v, (size_t)(moq_ietf_varint_put(p->c, v, 0) - v));
    moq_buf_append(b, v, (size_t)(moq_ietf_varint_put(p->c, v, ext.len) - v));
    moq_buf_append(b, ext.data, ext.len);
    moq_buf_append(b, v, (size_t)(moq_ietf_varint_put(p->c, v, strlen(payload)) - v));
    moq_buf_append(b, payload, strlen(payload));
    moq_buf_free(&ext);
}

/* A subgroup stream from the peer: header type (the draft's FIRST_OBJECT bit added), alias,
 * group, the subgroup id when the type has the field, priority, then `body`. */
static void send_subgroup(struct peer *p, uint64_t type, uint64_t alias, uint64_t group,
                          uint64_t subgroup, moq_buf *body)
{
    uint8_t h[5 * MOQ_IETF_VARINT_MAX], *q = h;
    q = moq_ietf_varint_put(p->c, q, type | (p->c->first_object_bit ? 0x40 : 0));
    q = moq_ietf_varint_put(p->c, q, alias);
    q = moq_ietf_varint_put(p->c, q, group);
    if ((type & 0x06) == 0x04) q = moq_ietf_varint_put(p->c, q, subgroup);
    *q++ = 7;
    int64_t sid;
    assert_int_equal(moq_transport_open(p->t, false, &sid), 0);
    assert_int_equal(moq_transport_write_bytes(p->t, sid, h, (size_t)(q - h), false), 0);
    assert_int_equal(moq_transport_write_bytes(p->t, sid, body->data, body->len, true), 0);
    moq_buf_free(body);
    moq_pipe_flush(p->pipe);
}

struct groups {
    moq_group *g[4];
    size_t n;
};

static void groups_on_group(void *ctx, moq_subscription *sub, moq_group *group)
{
    struct groups *gs = ctx;
    if (gs->n < 4) gs->g[gs->n++] = moq_group_ref(group);
}

static const moq_subscriber_ops groups_ops = {sub_on_info, groups_on_group, NULL, NULL};

/* What a subscriber reads off one of the relay's subgroup streams: per object "X<ext
 * hex>" when it carried a non-empty block, then its payload, objects separated by '|'. */
static void read_subgroup(const struct peer *p, const moq_buf *in, uint64_t *group, char *out,
                          size_t cap)
{
    moq_ietf_sg_parser sp;
    moq_ietf_sg_init(&sp, p->c);
    const uint8_t *d = in->data;
    size_t left = in->len, o = 0;
    struct moq_ietf_sg_ev ev;
    out[0] = 0;
    while (moq_ietf_sg_next(&sp, &d, &left, &ev) > 0) {
        if (ev.kind == MOQ_IETF_SG_HEADER) {
            assert_true(ev.header.extensions);
            assert_int_equal(ev.header.priority, MOQ_IETF_RELAY_PRIORITY);
            *group = ev.header.group;
        } else if (ev.kind == MOQ_IETF_SG_EXT) {
            o += (size_t)snprintf(out + o, cap - o, "X");
            for (size_t i = 0; i < ev.len; i++)
                o += (size_t)snprintf(out + o, cap - o, "%02x", ev.data[i]);
            o += (size_t)snprintf(out + o, cap - o, " ");
        } else if (ev.kind == MOQ_IETF_SG_PAYLOAD) {
            o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)ev.len, ev.data);
        } else if (ev.kind == MOQ_IETF_SG_OBJECT_END) {
            o += (size_t)snprintf(out + o, cap - o, "|");
        }
    }
    assert_int_equal(left, 0);
}

/* The peer announces namespace "pub", and the model subscribes to pub/t into `got` as a
 * moq-lite session would. */
static moq_subscription *lite_subscribes_to_peer(struct fixture *f, struct groups *got)
{
    struct peer *p = &f->peer;
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_publish_namespace(&b, p->c, peer_request_id(p),
                                                       moq_str_make("pub", 3), NULL),
                     0);
    peer_send(p, &b);
    moq_sub_prefs prefs = {.priority = 1};
    moq_subscription *sub = NULL;
    assert_int_equal(moq_origin_subscribe(f->origin, (const uint8_t *)"pub", 3,
                                          (const uint8_t *)"t", 1, 0, &prefs, &groups_ops, got,
                                          &sub),
                     0);
    return sub;
}

/* The request id of the relay's SUBSCRIBE to the peer; *sid is the stream it came on. */
static uint64_t relay_subscribe_id(struct peer *p, int64_t *sid)
{
    size_t len = 0;
    const uint8_t *body = find_msg_in(p, MOQ_IETF_SUBSCRIBE, &len, sid);
    assert_non_null(body);
    struct moq_ietf_subscribe up;
    assert_int_equal(moq_ietf_decode_subscribe(p->c, body, len, &up), 0);
    moq_buf_free(&up.ns);
    return up.request_id;
}

/* The peer's SUBSCRIBE_OK to the relay's SUBSCRIBE, on the stream that came on (17+) or the
 * control stream. */
static void answer_relay_subscribe(struct peer *p, int64_t up_sid,
                                   const struct moq_ietf_subscribe_ok *ok)
{
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_subscribe_ok(&b, p->c, ok), 0);
    peer_send_on(p, p->c->request_streams ? up_sid : p->control, &b);
}

/* An IETF publisher's objects with extension headers reach an IETF subscriber with the same
 * pairs in the subscriber's draft's form, and a moq-lite subscriber (the model's frames)
 * with the payload alone; a stream of subgroup 1 is dropped, one whose subgroup is its
 * first object's id (0) is taken, a group with a gap in its object ids is dropped, and the
 * session goes on. The peer is publisher and subscriber
 * at once, through the relay. */
static void objects_carry_extensions_through(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        moq_buf b;
        struct groups lite = {0};
        moq_subscription *sub = lite_subscribes_to_peer(&f, &lite);
        /* and the peer's own subscription through the relay */
        encode_subscribe_to(p, "pub", peer_request_id(p), 1, &b);
        peer_send(p, &b);
        int64_t up_sid = -1;
        uint64_t up_id = relay_subscribe_id(p, &up_sid);
        struct moq_ietf_subscribe_ok ok = {.request_id = up_id, .track_alias = 7, .group_order = 2};
        answer_relay_subscribe(p, up_sid, &ok);

        size_t before = p->n_rx;
        moq_buf_init(&b); /* group 0: extensions (type 0x19), end of group */
        put_object(p, &b, EXT0, "abc");
        put_object(p, &b, EXT1, "de");
        put_object(p, &b, "", "f");
        send_subgroup(p, 0x19, 7, 0, 0, &b);
        moq_buf_init(&b); /* group 1 on subgroup 1: dropped */
        put_object(p, &b, EXT1, "no");
        send_subgroup(p, 0x1d, 7, 1, 1, &b);
        moq_buf_init(&b); /* group 2, subgroup = first object id (type 0x1b) */
        put_object(p, &b, EXT1, "yes");
        send_subgroup(p, 0x1b, 7, 2, 0, &b);
        moq_buf_init(&b); /* group 3 starts at object 1: a gap, dropped */
        static const uint8_t gap[] = {0x01, 0x00, 0x01, 'g'};
        moq_buf_append(&b, gap, sizeof(gap));
        send_subgroup(p, 0x19, 7, 3, 0, &b);
        assert_non_null(f.s);
        assert_int_equal(lite.n, 3);
        assert_int_equal(moq_group_state(lite.g[2], NULL), MOQ_GROUP_ABORTED);
        moq_group_unref(lite.g[2]);
        lite.n = 2;

        /* the lite view: payloads alone, the pairs kept aside in canonical form */
        assert_int_equal(lite.n, 2);
        assert_int_equal(moq_group_sequence(lite.g[0]), 0);
        assert_int_equal(moq_group_sequence(lite.g[1]), 2);
        assert_int_equal(moq_group_frame_count(lite.g[0]), 3);
        const moq_frame *fr = moq_group_frame(lite.g[0], 0);
        assert_int_equal(fr->payload_len, 3);
        assert_memory_equal(fr->chunk->data + fr->payload_off, "abc", 3);
        uint8_t want[32];
        size_t wn = unhex(EXT0, want);
        assert_int_equal(fr->side_len, wn);
        assert_memory_equal(fr->chunk->data + fr->side_off, want, wn);
        assert_int_equal(moq_group_frame(lite.g[0], 2)->side_len, 0);
        /* no timescale declared: the frames are stamped on arrival, in microseconds */
        assert_int_equal(fr->timestamp, WALL_US);

        /* the IETF view: every pair, in this draft's form */
        char seen[3][256];
        size_t n_seen = 0;
        for (size_t i = before; i < p->n_rx; i++) {
            if (p->rx[i].bidi || !p->rx[i].fin) continue;
            uint64_t group = 99;
            char text[256];
            read_subgroup(p, &p->rx[i].in, &group, text, sizeof(text));
            if (group > 2) continue;
            assert_true(n_seen < 3);
            snprintf(seen[group], sizeof(seen[group]), "%s", text);
            n_seen++;
        }
        assert_int_equal(n_seen, 2);
        char want0[256], want2[256];
        moq_buf e0, e1, e2;
        ext_in(p->c, EXT0_OUT, &e0);
        ext_in(p->c, EXT1_OUT, &e1);
        ext_in(p->c, EXT2_OUT, &e2);
        int o = snprintf(want0, sizeof(want0), "X");
        for (size_t i = 0; i < e0.len; i++)
            o += snprintf(want0 + o, sizeof(want0) - (size_t)o, "%02x", e0.data[i]);
        o += snprintf(want0 + o, sizeof(want0) - (size_t)o, " abc|X");
        for (size_t i = 0; i < e1.len; i++)
            o += snprintf(want0 + o, sizeof(want0) - (size_t)o, "%02x", e1.data[i]);
        o += snprintf(want0 + o, sizeof(want0) - (size_t)o, " de|X");
        for (size_t i = 0; i < e2.len; i++)
            o += snprintf(want0 + o, sizeof(want0) - (size_t)o, "%02x", e2.data[i]);
        snprintf(want0 + o, sizeof(want0) - (size_t)o, " f|");
        o = snprintf(want2, sizeof(want2), "X");
        for (size_t i = 0; i < e1.len; i++)
            o += snprintf(want2 + o, sizeof(want2) - (size_t)o, "%02x", e1.data[i]);
        snprintf(want2 + o, sizeof(want2) - (size_t)o, " yes|");
        assert_string_equal(seen[0], want0);
        assert_string_equal(seen[2], want2);
        moq_buf_free(&e0);
        moq_buf_free(&e1);
        moq_buf_free(&e2);

        for (size_t i = 0; i < lite.n; i++)
            moq_group_unref(lite.g[i]);
        moq_subscription_close(sub);
        moq_pipe_flush(p->pipe);
        finish(&f);
    }
}

/* ---- groups that come before SUBSCRIBE_OK ---- */

/* One object without extensions (id delta 0, an empty block) of `size` bytes of `fill`. */
static void put_plain_object(struct peer *p, moq_buf *b, size_t size, char fill)
{
    uint8_t v[MOQ_IETF_VARINT_MAX];
    moq_buf_append(b, v, (size_t)(moq_ietf_varint_put(p->c, v, 0) - v));
    moq_buf_append(b, v, (size_t)(moq_ietf_varint_put(p->c, v, 0) - v));
    moq_buf_append(b, v, (size_t)(moq_ietf_varint_put(p->c, v, size) - v));
    char *payload = malloc(size ? size : 1);
    assert_non_null(payload);
    memset(payload, fill, size);
    moq_buf_append(b, payload, size);
    free(payload);
}

/* A publisher whose groups overtake its SUBSCRIBE_OK, newest first (as a publisher sends
 * them when its data streams outrank the answer, or the network reorders them), one of
 * them a frame of over a megabyte: once the answer names the alias, the subscription that
 * made the relay subscribe gets every group from the first, none skipped as older than
 * the one that happened to come first. */
static void groups_before_subscribe_ok_all_arrive(void **state)
{
    const size_t big = 1024 * 1024 + 64;
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        moq_buf b;
        struct groups got = {0};
        moq_subscription *sub = lite_subscribes_to_peer(&f, &got);
        moq_pipe_flush(p->pipe);
        int64_t up_sid = -1;
        uint64_t up_id = relay_subscribe_id(p, &up_sid);

        moq_buf_init(&b);
        put_plain_object(p, &b, 3, 'c');
        send_subgroup(p, 0x19, 7, 2, 0, &b);
        moq_buf_init(&b);
        put_plain_object(p, &b, big, 'b');
        send_subgroup(p, 0x19, 7, 1, 0, &b);
        moq_buf_init(&b);
        put_plain_object(p, &b, 7, 'a');
        send_subgroup(p, 0x19, 7, 0, 0, &b);
        assert_int_equal(got.n, 0); /* held: the alias is not known yet */

        struct moq_ietf_subscribe_ok ok = {.request_id = up_id, .track_alias = 7, .group_order = 2};
        answer_relay_subscribe(p, up_sid, &ok);
        assert_non_null(f.s);

        const size_t sizes[3] = {7, big, 3};
        bool seen[3] = {false, false, false};
        assert_int_equal(got.n, 3);
        for (size_t i = 0; i < got.n; i++) {
            uint64_t seq = moq_group_sequence(got.g[i]);
            assert_true(seq < 3);
            assert_false(seen[seq]);
            seen[seq] = true;
            assert_int_equal(moq_group_state(got.g[i], NULL), MOQ_GROUP_FINISHED);
            assert_int_equal(moq_group_frame_count(got.g[i]), 1);
            assert_int_equal(moq_group_frame(got.g[i], 0)->payload_len, sizes[seq]);
            moq_group_unref(got.g[i]);
        }
        moq_subscription_close(sub);
        moq_pipe_flush(p->pipe);
        finish(&f);
    }
}

/* The relay's message streams outrank its subgroup streams: the SUBSCRIBE_OK of a
 * subscription is never queued behind that subscription's groups (whose alias the
 * subscriber would not know yet), whatever the subscriber's priority. */
static void messages_go_before_groups(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        moq_buf b;
        encode_subscribe(p, peer_request_id(p), 0, &b); /* the highest IETF priority */
        peer_send(p, &b);
        assert_non_null(f.prod.track);
        moq_group *g = NULL;
        assert_int_equal(moq_track_begin_group(f.prod.track, f.route, 5, now_us, &g), 0);
        moq_pipe_flush(p->pipe);
        size_t len;
        int64_t ok_sid = -1;
        assert_non_null(find_msg_in(p, MOQ_IETF_SUBSCRIBE_OK, &len, &ok_sid));
        int64_t group_sid = -1;
        for (size_t k = 0; k < p->n_rx; k++) {
            if (p->rx[k].bidi) continue;
            moq_ietf_sg_parser sp;
            moq_ietf_sg_init(&sp, p->c);
            const uint8_t *data = p->rx[k].in.data;
            size_t left = p->rx[k].in.len;
            struct moq_ietf_sg_ev ev;
            if (moq_ietf_sg_next(&sp, &data, &left, &ev) > 0 && ev.kind == MOQ_IETF_SG_HEADER &&
                ev.header.group == 5)
                group_sid = p->rx[k].sid;
        }
        assert_true(group_sid >= 0);
        assert_true(priority_of(group_sid) > 0);
        assert_true(priority_of(ok_sid) > priority_of(group_sid));
        moq_group_abort(g, 0);
        moq_group_unref(g);
        finish(&f);
    }
}

/* A block as read_subgroup shows it: "X" and the hex of the draft-14 block in c's form. */
static void shown(const moq_ietf_caps *c, const char *hex14, char *out, size_t cap)
{
    moq_buf e;
    ext_in(c, hex14, &e);
    size_t o = (size_t)snprintf(out, cap, "X");
    for (size_t i = 0; i < e.len; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", e.data[i]);
    moq_buf_free(&e);
}

/* An IETF publisher's object Timestamps become the frames' timestamps, as a lite-05
 * subscriber gets them (the track kept in microseconds): in the track's declared units (a
 * TIMESCALE of 1000 in SUBSCRIBE_OK, from draft 17), in an object's own Timescale when it
 * has one, at loc-03's id 0x06 too; an object without one, or any object of a track that
 * declared no timescale (drafts 14-16 here), gets the time it arrived. */
static void ietf_timestamps_reach_the_model(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        moq_buf b;
        struct groups lite = {0};
        moq_subscription *sub = lite_subscribes_to_peer(&f, &lite);
        moq_pipe_flush(p->pipe);
        int64_t up_sid = -1;
        uint64_t up_id = relay_subscribe_id(p, &up_sid);
        struct moq_ietf_subscribe_ok ok = {
            .request_id = up_id, .track_alias = 7, .group_order = 2, .props.timescale = 1000};
        answer_relay_subscribe(p, up_sid, &ok);

        moq_buf_init(&b);
        put_object(p, &b, "10 44d2", "a");                 /* 1234 ms */
        put_object(p, &b, "08 80015f90 10 80015f90", "b"); /* 90000 at 90 kHz: 1 s */
        put_object(p, &b, "06 05", "c");                   /* loc-03's id: 5 ms */
        put_object(p, &b, "", "d");                        /* none */
        put_object(p, &b, "0b 02 6869", "e");              /* none among other pairs */
        send_subgroup(p, 0x19, 7, 0, 0, &b);
        assert_non_null(f.s);
        assert_int_equal(lite.n, 1);
        const moq_track_info *info = moq_subscription_info(sub);
        assert_non_null(info);
        assert_int_equal(info->timescale, 1000000);
        assert_int_equal(moq_group_frame_count(lite.g[0]), 5);
        bool declared = p->c->track_properties;
        const uint64_t want[5] = {declared ? 1234000 : WALL_US, declared ? 1000000 : WALL_US,
                                  declared ? 5000 : WALL_US, WALL_US, WALL_US};
        for (uint64_t i = 0; i < 5; i++)
            assert_int_equal(moq_group_frame(lite.g[0], i)->timestamp, want[i]);

        /* a zero Timescale on an object: that group is dropped, the session goes on */
        if (declared) {
            moq_buf_init(&b);
            put_object(p, &b, "08 00 10 01", "z");
            send_subgroup(p, 0x19, 7, 1, 0, &b);
            assert_non_null(f.s);
            assert_int_equal(lite.n, 2);
            assert_int_equal(moq_group_state(lite.g[1], NULL), MOQ_GROUP_ABORTED);
        }
        for (size_t i = 0; i < lite.n; i++)
            moq_group_unref(lite.g[i]);
        moq_subscription_close(sub);
        moq_pipe_flush(p->pipe);
        finish(&f);
    }
}

/* A frame appended with `ts` and `payload`, and a carried block (draft-14 form) when side. */
static void append_frame(moq_group *g, uint64_t ts, const char *payload, const char *side)
{
    uint8_t raw[64];
    size_t sn = side ? unhex(side, raw) : 0;
    size_t pn = strlen(payload);
    uint8_t buf[128];
    memcpy(buf, payload, pn);
    memcpy(buf + pn, raw, sn);
    moq_frame fr = {.chunk = moq_chunk_copy(buf, pn + sn),
                    .payload_off = 0,
                    .payload_len = (uint32_t)pn,
                    .timestamp = ts,
                    .side_off = (uint32_t)pn,
                    .side_len = (uint32_t)sn};
    fr.chunk->len = pn + sn;
    assert_int_equal(moq_group_append(g, &fr, 0), 0);
}

/* A moq-lite publisher's frame timestamps (a lite-05 track in milliseconds) reach an IETF
 * subscriber as each object's Timestamp property in the microseconds SUBSCRIBE_OK declares
 * (from draft 17); a Timestamp and a Timescale carried in the frame's block give way to it,
 * the other pairs stay. */
static void model_timestamps_reach_an_ietf_subscriber(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        moq_buf b;
        encode_subscribe(p, peer_request_id(p), 1, &b);
        peer_send(p, &b);
        assert_non_null(f.prod.track);
        size_t len = 0;
        const uint8_t *body = find_msg(p, MOQ_IETF_SUBSCRIBE_OK, &len);
        assert_non_null(body);
        struct moq_ietf_subscribe_ok ok;
        assert_int_equal(moq_ietf_decode_subscribe_ok(p->c, body, len, &ok), 0);
        assert_int_equal(ok.props.timescale, p->c->track_properties ? 1000000 : 0);

        moq_track_info info;
        moq_track_info_default(&info);
        info.timescale = 1000;
        assert_int_equal(moq_track_set_info(f.prod.track, f.route, &info), 0);
        moq_group *g = NULL;
        assert_int_equal(moq_track_begin_group(f.prod.track, f.route, 0, 0, &g), 0);
        size_t before = p->n_rx;
        append_frame(g, 2000, "a", NULL);
        append_frame(g, 2001, "b", NULL);
        append_frame(g, 2002, "c", "0b 02 6869 08 01 10 07");
        assert_int_equal(moq_group_finish(g, 0), 0);
        moq_group_unref(g);
        moq_pipe_flush(p->pipe);
        assert_non_null(f.s);

        char text[256] = "", want[256], x[128];
        for (size_t i = before; i < p->n_rx; i++) {
            if (p->rx[i].bidi || !p->rx[i].fin) continue;
            uint64_t group = 99;
            read_subgroup(p, &p->rx[i].in, &group, text, sizeof(text));
        }
        size_t o = 0;
        shown(p->c, "10 801e8480", x, sizeof(x));
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%s a|", x);
        shown(p->c, "10 801e8868", x, sizeof(x));
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%s b|", x);
        shown(p->c, "0b 02 6869 10 801e8c50", x, sizeof(x));
        snprintf(want + o, sizeof(want) - o, "%s c|", x);
        assert_string_equal(text, want);
        finish(&f);
    }
}

/* ---- standalone FETCH and TRACK_STATUS, served from the cache ---- */

/* Cache groups 3, 4 and 5 of bbb/t, objects "<g>a" "<g>b" "<g>c" each, object 4/1 with an
 * extension block; a local subscription keeps the track (returned, close it). */
static moq_subscription *fill_cache(struct fixture *f)
{
    moq_sub_prefs prefs = {.priority = 1};
    moq_subscription *sub = NULL;
    assert_int_equal(moq_origin_subscribe(f->origin, (const uint8_t *)"bbb", 3,
                                          (const uint8_t *)"t", 1, 0, &prefs, &sub_ops, NULL, &sub),
                     0);
    assert_non_null(f->prod.track);
    for (uint64_t seq = 3; seq <= 5; seq++) {
        moq_group *g = NULL;
        assert_int_equal(moq_track_begin_group(f->prod.track, f->route, seq, 0, &g), 0);
        for (char o = 'a'; o <= 'c'; o++) {
            char payload[3] = {(char)('0' + seq), o, 0};
            append_frame(g, 0, payload, seq == 4 && o == 'b' ? "0d 01 7a" : NULL);
        }
        assert_int_equal(moq_group_finish(g, 0), 0);
        moq_group_unref(g);
    }
    return sub;
}

static uint64_t get_varint(const moq_ietf_caps *c, const uint8_t **d, size_t *left)
{
    uint64_t v = 0;
    int n = moq_ietf_varint_get(c, *d, *left, &v);
    assert_true(n > 0);
    *d += n;
    *left -= (size_t)n;
    return v;
}

static void get_bytes(const uint8_t **d, size_t *left, size_t n, char *out, size_t cap, bool hex)
{
    assert_true(n <= *left);
    size_t o = strlen(out);
    for (size_t i = 0; i < n && o + 3 < cap; i++)
        o += (size_t)(hex ? snprintf(out + o, cap - o, "%02x", (*d)[i])
                          : snprintf(out + o, cap - o, "%c", (*d)[i]));
    *d += n;
    *left -= n;
}

struct fetch_result {
    bool ok;
    uint64_t code;                  /* refused */
    uint64_t end_group, end_object; /* answered */
    char objects[512];
    size_t n_objects;
    size_t n_priorities; /* objects that carry a publisher priority */
    uint8_t priority;    /* the one they carry (all the same) */
};

/* A fetch object's Publisher Priority (8 bits): the same on every object that has one. */
static void read_priority(const uint8_t **d, size_t *left, struct fetch_result *r)
{
    assert_true(*left > 0);
    if (r->n_priorities++) assert_int_equal(**d, r->priority);
    r->priority = **d;
    (*d)++, (*left)--;
}

/* A fetch stream read the way the draft defines it (section "Fetch Header": the
 * serialization flags of 15+ in full, the id deltas from 18), as "group/object:payload[ext]|"
 * per object into r->objects, and the publisher priorities the objects carry. */
static void read_fetch_stream(const struct peer *p, const moq_buf *in, uint64_t request_id,
                              bool descending, struct fetch_result *r)
{
    const moq_ietf_caps *c = p->c;
    char *out = r->objects;
    size_t cap = sizeof(r->objects);
    const uint8_t *d = in->data;
    size_t left = in->len;
    assert_int_equal(get_varint(c, &d, &left), MOQ_IETF_STREAM_FETCH);
    assert_int_equal(get_varint(c, &d, &left), request_id);
    bool first = true;
    uint64_t group = 0, object = 0, subgroup = 0;
    out[0] = 0;
    while (left > 0) {
        size_t ext = 0;
        if (c->fetch_objects == MOQ_IETF_FETCH_PLAIN) {
            group = get_varint(c, &d, &left);
            subgroup = get_varint(c, &d, &left);
            object = get_varint(c, &d, &left);
            read_priority(&d, &left, r);
            ext = get_varint(c, &d, &left);
        } else {
            uint64_t flags;
            if (c->fetch_objects == MOQ_IETF_FETCH_FLAGS8) {
                assert_true(left > 0);
                flags = *d++;
                left--;
            } else {
                flags = get_varint(c, &d, &left);
            }
            assert_true(flags < 0x40);
            bool deltas = c->fetch_objects == MOQ_IETF_FETCH_FLAGS_DELTA && !first;
            if (flags & 0x08) {
                uint64_t v = get_varint(c, &d, &left);
                if (!deltas)
                    group = v;
                else
                    group = descending ? group - v - 1 : group + v + 1;
            } else {
                assert_false(first);
            }
            switch (flags & 0x03) {
            case 0:
                subgroup = 0;
                break;
            case 1:
                break;
            case 2:
                subgroup++;
                break;
            default:
                subgroup = get_varint(c, &d, &left);
            }
            if (flags & 0x04) {
                uint64_t v = get_varint(c, &d, &left);
                object = deltas && !(flags & 0x08) ? object + v : v;
            } else {
                assert_false(first);
                object++;
            }
            if (flags & 0x10)
                read_priority(&d, &left, r);
            else
                assert_false(first); /* the first object's is not inherited */
            if (flags & 0x20) ext = get_varint(c, &d, &left);
        }
        assert_int_equal(subgroup, 0);
        first = false;
        r->n_objects++;
        char ext_hex[64] = "";
        get_bytes(&d, &left, ext, ext_hex, sizeof(ext_hex), true);
        uint64_t size = get_varint(c, &d, &left);
        if (size == 0 && c->fetch_objects <= MOQ_IETF_FETCH_FLAGS8)
            assert_int_equal(get_varint(c, &d, &left), MOQ_IETF_STATUS_NORMAL);
        size_t o = strlen(out);
        snprintf(out + o, cap - o, "%llu/%llu:", (unsigned long long)group,
                 (unsigned long long)object);
        get_bytes(&d, &left, (size_t)size, out, cap, false);
        o = strlen(out);
        snprintf(out + o, cap - o, ext ? "[%s]|" : "|", ext_hex);
    }
}

/* The relay's answer to FETCH `id`: a refusal (its code), or FETCH_OK (never REQUEST_OK)
 * and the objects of the fetch stream. */
static void read_fetch_answer(struct peer *p, uint64_t id, struct fetch_result *r)
{
    size_t len;
    uint64_t refusal = p->c->request_error ? MOQ_IETF_REQUEST_ERROR : MOQ_IETF_FETCH_ERROR;
    const uint8_t *body = find_msg(p, refusal, &len);
    if (body) {
        struct moq_ietf_request_error err;
        assert_int_equal(moq_ietf_decode_request_error(p->c, body, len, &err), 0);
        if (p->c->response_ids) assert_int_equal(err.request_id, id);
        r->code = err.code;
        assert_true(find_uni(p, MOQ_IETF_STREAM_FETCH) < 0);
        return;
    }
    struct moq_ietf_fetch_ok ok;
    assert_null(find_msg(p, MOQ_IETF_REQUEST_OK, &len));
    body = find_msg(p, MOQ_IETF_FETCH_OK, &len);
    assert_non_null(body);
    assert_int_equal(moq_ietf_decode_fetch_ok(p->c, body, len, &ok), 0);
    r->ok = true;
    if (p->c->response_ids) assert_int_equal(ok.request_id, id);
    r->end_group = ok.end_group;
    r->end_object = ok.end_object;
    int i = find_uni(p, MOQ_IETF_STREAM_FETCH);
    assert_true(i >= 0);
    assert_true(p->rx[i].fin);
    read_fetch_stream(p, &p->rx[i].in, id, fetch_group_order == 2, r);
}

/* A standalone FETCH of ns/track over the range of m (its start and end fields) in a
 * session of draft d, with bbb/t cached when `cached`, and what came back. */
static void run_fetch_range(size_t d, const char *ns, const char *track, struct moq_ietf_fetch m,
                            bool cached, struct fetch_result *r)
{
    memset(r, 0, sizeof(*r));
    struct fixture f;
    start(&f, d);
    struct peer *p = &f.peer;
    moq_subscription *sub = cached ? fill_cache(&f) : NULL;
    uint64_t id = peer_request_id(p);
    m.request_id = id;
    m.type = MOQ_IETF_FETCH_STANDALONE;
    m.track = moq_str_make(track, strlen(track));
    m.priority = 1;
    m.group_order = fetch_group_order;
    m.has_range = true;
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_fetch(&b, p->c, &m, moq_str_make(ns, strlen(ns))), 0);
    peer_send(p, &b);
    assert_non_null(f.s);
    read_fetch_answer(p, id, r);
    if (sub) moq_subscription_close(sub);
    finish(&f);
}

/* The same for [start .. end] (end object 0: the whole end group). */
static void run_fetch(size_t d, const char *ns, const char *track, uint64_t sg, uint64_t so,
                      uint64_t eg, uint64_t eo, bool cached, struct fetch_result *r)
{
    struct moq_ietf_fetch m = {
        .start_group = sg, .start_object = so, .end_group = eg, .end_object = eo};
    run_fetch_range(d, ns, track, m, cached, r);
}

#define SUB_UNAUTHORIZED 0x1

/* FETCH_OK's End Location object when the last object served is `last` (section
 * "FETCH_OK"): that object on draft-20 (its filters are inclusive), else one past it - or 0
 * when the FETCH asked for the whole of that group and got all of it (`whole`). */
static uint64_t end_object(const moq_ietf_caps *c, uint64_t last, bool whole)
{
    if (c->fetch_end_inclusive) return last;
    return whole ? 0 : last + 1;
}

static uint64_t invalid_range(const moq_ietf_caps *c)
{
    return c->request_error ? MOQ_IETF_REQ_INVALID_RANGE : 0x5;
}

static uint64_t does_not_exist(const moq_ietf_caps *c)
{
    return c->request_error ? MOQ_IETF_REQ_DOES_NOT_EXIST : 0x4;
}

/* A standalone FETCH is served from the cache on every draft: the cached objects of the
 * range on one fetch stream (groups in the order asked for), FETCH_OK naming the end of
 * what was served; a range of nothing cached, an unknown broadcast and a path outside the grant are
 * refused. */
static void standalone_fetch_is_served_from_the_cache(void **state)
{
    const char *all = "3/0:3a|3/1:3b|3/2:3c|4/0:4a|4/1:4b[0d017a]|4/2:4c|5/0:5a|5/1:5b|5/2:5c|";
    for (size_t d = 0; d < N_DRAFTS; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get(DRAFTS[d]);
        struct fetch_result r;

        run_fetch(d, "bbb", "t", 0, 0, 10, 0, true, &r); /* the whole track */
        assert_true(r.ok);
        assert_string_equal(r.objects, all);
        assert_int_equal(r.end_group, 5);
        assert_int_equal(r.end_object, end_object(c, 2, false));

        fetch_group_order = 2; /* newest group first, the objects of a group in order */
        run_fetch(d, "bbb", "t", 0, 0, 10, 0, true, &r);
        fetch_group_order = 1;
        assert_true(r.ok);
        assert_string_equal(r.objects, "5/0:5a|5/1:5b|5/2:5c|4/0:4a|4/1:4b[0d017a]|4/2:4c|"
                                       "3/0:3a|3/1:3b|3/2:3c|");
        assert_int_equal(r.end_group, 5);
        assert_int_equal(r.end_object, end_object(c, 2, false));

        run_fetch(d, "bbb", "t", 3, 1, 4, 0, true, &r); /* a middle range */
        assert_true(r.ok);
        assert_string_equal(r.objects, "3/1:3b|3/2:3c|4/0:4a|4/1:4b[0d017a]|4/2:4c|");
        assert_int_equal(r.end_group, 4);
        assert_int_equal(r.end_object, end_object(c, 2, true));

        /* an end object: "end location plus one" through 19, the last object on 20 */
        run_fetch(d, "bbb", "t", 4, 0, 4, 2, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, "4/0:4a|4/1:4b[0d017a]|");
        assert_int_equal(r.end_group, 4);
        assert_int_equal(r.end_object, end_object(c, 1, false));

        run_fetch(d, "bbb", "t", 5, 1, 100, 0, true, &r); /* running past the end */
        assert_true(r.ok);
        assert_string_equal(r.objects, "5/1:5b|5/2:5c|");
        assert_int_equal(r.end_group, 5);
        assert_int_equal(r.end_object, end_object(c, 2, false));

        run_fetch(d, "bbb", "t", 6, 0, 100, 0, true, &r); /* after the cache */
        assert_false(r.ok);
        assert_int_equal(r.code, invalid_range(c));
        run_fetch(d, "bbb", "t", 0, 0, 10, 0, false, &r); /* nothing cached */
        assert_false(r.ok);
        assert_int_equal(r.code, invalid_range(c));
        run_fetch(d, "zzz", "t", 0, 0, 10, 0, true, &r); /* no such broadcast */
        assert_false(r.ok);
        assert_int_equal(r.code, does_not_exist(c));

        subscribe_grant = "other";
        run_fetch(d, "bbb", "t", 0, 0, 10, 0, true, &r);
        subscribe_grant = "";
        assert_false(r.ok);
        assert_int_equal(r.code, SUB_UNAUTHORIZED);
    }
}

/* draft-20's LOCATION_FILTER in a standalone FETCH, each form (section "Location Filters"),
 * over groups 3..5 of objects 0..2: an inclusive end object; an absolute start with no end
 * (up to the Largest Object, here 5/2); StartGroup alone, N > 0 groups before the group
 * after the Largest Object (group 0 at the least); no filter (all of it); and the two starts
 * past the Largest Object - the next group (StartGroup 0) and the next object ({0, 0}) -
 * refused INVALID_RANGE ("Fetch Handling"), as is an end before the start. */
static void standalone_fetch_filter_forms(void **state)
{
    const size_t d = N_DRAFTS - 1;
    const moq_ietf_caps *c = moq_ietf_caps_get(DRAFTS[d]);
    assert_true(c->fetch_filter);
    const char *all = "3/0:3a|3/1:3b|3/2:3c|4/0:4a|4/1:4b[0d017a]|4/2:4c|5/0:5a|5/1:5b|5/2:5c|";
    struct fetch_result r;
    struct moq_ietf_fetch m = {
        .start_group = 4, .start_object = 1, .end_group = 5, .end_object = 2}; /* to 5/1 */
    run_fetch_range(d, "bbb", "t", m, true, &r);
    assert_true(r.ok);
    assert_string_equal(r.objects, "4/1:4b[0d017a]|4/2:4c|5/0:5a|5/1:5b|");
    assert_int_equal(r.end_group, 5);
    assert_int_equal(r.end_object, 1);

    m = (struct moq_ietf_fetch){.start_group = 4, .start_object = 1, .end_group = UINT64_MAX};
    run_fetch_range(d, "bbb", "t", m, true, &r);
    assert_true(r.ok);
    assert_string_equal(r.objects, "4/1:4b[0d017a]|4/2:4c|5/0:5a|5/1:5b|5/2:5c|");
    assert_int_equal(r.end_group, 5);
    assert_int_equal(r.end_object, 2);

    const struct {
        uint64_t groups;
        const char *objects;
    } relative[] = {{1, "5/0:5a|5/1:5b|5/2:5c|"},
                    {2, "4/0:4a|4/1:4b[0d017a]|4/2:4c|5/0:5a|5/1:5b|5/2:5c|"},
                    {6, all},
                    {100, all}};
    for (size_t i = 0; i < sizeof(relative) / sizeof(relative[0]); i++) {
        m = (struct moq_ietf_fetch){.start_kind = MOQ_IETF_FILTER_RELATIVE,
                                    .start_groups = relative[i].groups};
        run_fetch_range(d, "bbb", "t", m, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, relative[i].objects);
        assert_int_equal(r.end_group, 5);
        assert_int_equal(r.end_object, 2);
    }

    m = (struct moq_ietf_fetch){.end_group = UINT64_MAX}; /* {0, 0} with no end: no filter */
    run_fetch_range(d, "bbb", "t", m, true, &r);
    assert_true(r.ok);
    assert_string_equal(r.objects, all);

    const int past[] = {MOQ_IETF_FILTER_NEXT_GROUP, MOQ_IETF_FILTER_LARGEST};
    for (size_t i = 0; i < 2; i++) {
        m = (struct moq_ietf_fetch){.start_kind = past[i]};
        run_fetch_range(d, "bbb", "t", m, true, &r);
        assert_false(r.ok);
        assert_int_equal(r.code, invalid_range(c));
    }
    m = (struct moq_ietf_fetch){
        .start_group = 4, .start_object = 2, .end_group = 4, .end_object = 2}; /* 4/2 .. 4/1 */
    run_fetch_range(d, "bbb", "t", m, true, &r);
    assert_false(r.ok);
    assert_int_equal(r.code, invalid_range(c));
}

/* Fetch objects carry the publisher priority the relay gives the track's subgroup headers
 * (read_subgroup checks those): on every object of draft-14, on the first one only after
 * it (the others inherit it; section "Fetch Header", flag 0x10). */
static void fetch_objects_carry_the_relay_priority(void **state)
{
    const moq_ietf_draft drafts[] = {MOQT_14, MOQT_16, MOQT_20};
    for (size_t d = 0; d < N_DRAFTS; d++) {
        bool checked = false;
        for (size_t i = 0; i < 3; i++)
            checked |= DRAFTS[d] == drafts[i];
        if (!checked) continue;
        const moq_ietf_caps *c = moq_ietf_caps_get(DRAFTS[d]);
        struct fetch_result r;
        run_fetch(d, "bbb", "t", 0, 0, 10, 0, true, &r);
        assert_true(r.ok);
        assert_int_equal(r.n_objects, 9);
        assert_int_equal(r.priority, MOQ_IETF_RELAY_PRIORITY);
        assert_int_equal(r.n_priorities, c->fetch_objects == MOQ_IETF_FETCH_PLAIN ? 9 : 1);
    }
}

enum joining_cache { JOIN_CACHED_BEFORE, JOIN_CACHED_AFTER, JOIN_NOT_CACHED };

/* A joining FETCH (type, joining start) in a session of draft d of the peer's subscription
 * to bbb/t (of request id + 100 when !known), with groups 3..5 of bbb/t cached before that
 * subscription, after it, or not at all, and what came back. */
static void run_joining(size_t d, int type, uint64_t joining_start, enum joining_cache cache,
                        bool known, struct fetch_result *r)
{
    memset(r, 0, sizeof(*r));
    struct fixture f;
    start(&f, d);
    struct peer *p = &f.peer;
    moq_subscription *sub = cache == JOIN_CACHED_BEFORE ? fill_cache(&f) : NULL;
    uint64_t sub_id = peer_request_id(p);
    moq_buf b;
    encode_subscribe(p, sub_id, 1, &b);
    peer_send(p, &b);
    if (cache == JOIN_CACHED_AFTER) sub = fill_cache(&f);
    uint64_t id = peer_request_id(p);
    send_fetch(p, type, id, known ? sub_id : sub_id + 100, joining_start);
    assert_non_null(f.s);
    read_fetch_answer(p, id, r);
    if (sub) moq_subscription_close(sub);
    finish(&f);
}

static uint64_t invalid_joining(const moq_ietf_caps *c)
{
    return c->request_error ? MOQ_IETF_REQ_INVALID_JOINING_REQUEST_ID : 0x7;
}

/* A joining FETCH gets the groups before the first one its subscription delivers (the
 * latest cached when it began: group 5 here), served from the cache on every draft: from 5
 * minus the offset (relative), or from the group it names (absolute). With nothing before
 * that group - offset 0, an absolute start of 5, or a subscription that takes every group
 * that arrives - it gets the empty answer; an absolute start after 5 is an invalid range and
 * a join of no subscription an invalid joining request id. */
static void joining_fetch_is_served_from_the_cache(void **state)
{
    const char *g4 = "4/0:4a|4/1:4b[0d017a]|4/2:4c|";
    const char *g34 = "3/0:3a|3/1:3b|3/2:3c|4/0:4a|4/1:4b[0d017a]|4/2:4c|";
    for (size_t d = 0; d < N_DRAFTS; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get(DRAFTS[d]);
        struct fetch_result r;

        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 1, JOIN_CACHED_BEFORE, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, g4);
        assert_int_equal(r.end_group, 4);
        assert_int_equal(r.end_object, end_object(c, 2, true));

        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 2, JOIN_CACHED_BEFORE, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, g34);
        assert_int_equal(r.end_group, 4);
        assert_int_equal(r.end_object, end_object(c, 2, true));

        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 9, JOIN_CACHED_BEFORE, true, &r); /* past 0 */
        assert_true(r.ok);
        assert_string_equal(r.objects, g34);

        fetch_group_order = 2;
        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 2, JOIN_CACHED_BEFORE, true, &r);
        fetch_group_order = 1;
        assert_true(r.ok);
        assert_string_equal(r.objects, "4/0:4a|4/1:4b[0d017a]|4/2:4c|3/0:3a|3/1:3b|3/2:3c|");

        run_joining(d, MOQ_IETF_FETCH_ABSOLUTE, 4, JOIN_CACHED_BEFORE, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, g4);
        assert_int_equal(r.end_group, 4);
        assert_int_equal(r.end_object, end_object(c, 2, true));
        run_joining(d, MOQ_IETF_FETCH_ABSOLUTE, 0, JOIN_CACHED_BEFORE, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, g34);

        /* nothing before the subscription's first group: the empty answer, its End
         * Location the start of its range (5, 0) */
        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 0, JOIN_CACHED_BEFORE, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, "");
        assert_int_equal(r.end_group, 5);
        assert_int_equal(r.end_object, 0);
        run_joining(d, MOQ_IETF_FETCH_ABSOLUTE, 5, JOIN_CACHED_BEFORE, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, "");
        assert_int_equal(r.end_group, 5);
        assert_int_equal(r.end_object, 0);
        /* groups that came after the subscription are all its own */
        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 2, JOIN_CACHED_AFTER, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, "");
        run_joining(d, MOQ_IETF_FETCH_ABSOLUTE, 3, JOIN_CACHED_AFTER, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, "");
        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 2, JOIN_NOT_CACHED, true, &r);
        assert_true(r.ok);
        assert_string_equal(r.objects, "");

        /* refused */
        run_joining(d, MOQ_IETF_FETCH_ABSOLUTE, 6, JOIN_CACHED_BEFORE, true, &r);
        assert_false(r.ok);
        assert_int_equal(r.code, invalid_range(c));
        run_joining(d, MOQ_IETF_FETCH_RELATIVE, 1, JOIN_CACHED_BEFORE, false, &r);
        assert_false(r.ok);
        assert_int_equal(r.code, invalid_joining(c));
        run_joining(d, MOQ_IETF_FETCH_ABSOLUTE, 4, JOIN_CACHED_BEFORE, false, &r);
        assert_false(r.ok);
        assert_int_equal(r.code, invalid_joining(c));
    }
}

/* A joining FETCH reaching further back than 1024 groups gets the 1024 next to its
 * subscription's first group (1100 here), not the oldest ones. */
static void joining_fetch_keeps_the_groups_next_to_the_subscription(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        struct fixture f;
        start(&f, d);
        struct peer *p = &f.peer;
        moq_sub_prefs prefs = {.priority = 1};
        moq_subscription *sub = NULL;
        assert_int_equal(moq_origin_subscribe(f.origin, (const uint8_t *)"bbb", 3,
                                              (const uint8_t *)"t", 1, 0, &prefs, &sub_ops, NULL,
                                              &sub),
                         0);
        for (uint64_t seq = 0; seq <= 1100; seq++) {
            moq_group *g = NULL;
            assert_int_equal(moq_track_begin_group(f.prod.track, f.route, seq, 0, &g), 0);
            append_frame(g, 0, "x", NULL);
            assert_int_equal(moq_group_finish(g, 0), 0);
            moq_group_unref(g);
        }
        uint64_t sub_id = peer_request_id(p);
        moq_buf b;
        encode_subscribe(p, sub_id, 1, &b);
        peer_send(p, &b);
        uint64_t id = peer_request_id(p);
        send_fetch(p, MOQ_IETF_FETCH_RELATIVE, id, sub_id, 5000);
        struct fetch_result r;
        memset(&r, 0, sizeof(r));
        read_fetch_answer(p, id, &r);
        assert_true(r.ok);
        assert_int_equal(r.end_group, 1099);
        assert_memory_equal(r.objects, "76/0:x|77/0:x|", 14);
        moq_subscription_close(sub);
        finish(&f);
    }
}

struct status_result {
    bool ok, has_largest;
    uint64_t code, group, object;
};

/* TRACK_STATUS of ns/track in a session of draft d, with bbb/t cached when `cached`. */
static void run_track_status(size_t d, const char *ns, const char *track, bool cached,
                             struct status_result *r)
{
    memset(r, 0, sizeof(*r));
    struct fixture f;
    start(&f, d);
    struct peer *p = &f.peer;
    moq_subscription *sub = cached ? fill_cache(&f) : NULL;
    uint64_t id = peer_request_id(p);
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_track_status(&b, p->c, id, moq_str_make(ns, strlen(ns)),
                                                  moq_str_make(track, strlen(track))),
                     0);
    peer_send(p, &b);
    assert_non_null(f.s);
    size_t len;
    uint64_t refusal = p->c->request_error ? MOQ_IETF_REQUEST_ERROR : MOQ_IETF_PUBLISH_BLOCKED;
    const uint8_t *body = find_msg(p, refusal, &len);
    if (body) {
        struct moq_ietf_request_error err;
        assert_int_equal(moq_ietf_decode_request_error(p->c, body, len, &err), 0);
        r->code = err.code;
    } else if (p->c->request_error) {
        body = find_msg(p, MOQ_IETF_REQUEST_OK, &len);
        assert_non_null(body);
        struct moq_ietf_request_ok ok;
        assert_int_equal(moq_ietf_decode_request_ok(p->c, body, len, &ok), 0);
        r->ok = true;
        r->has_largest = ok.has_largest;
        r->group = ok.largest_group;
        r->object = ok.largest_object;
    } else { /* draft-14: TRACK_STATUS_OK, laid out as SUBSCRIBE_OK */
        body = find_msg(p, MOQ_IETF_NAMESPACE_DONE, &len);
        assert_non_null(body);
        struct moq_ietf_subscribe_ok ok;
        assert_int_equal(moq_ietf_decode_subscribe_ok(p->c, body, len, &ok), 0);
        assert_int_equal(ok.request_id, id);
        r->ok = true;
        r->has_largest = ok.has_largest;
        r->group = ok.largest_group;
        r->object = ok.largest_object;
    }
    if (sub) moq_subscription_close(sub);
    finish(&f);
}

/* TRACK_STATUS is answered from the cache: the largest cached group and its last object;
 * a track of an existing broadcast that is not cached gets an answer without a largest
 * location; an unknown broadcast "does not exist", a path outside the grant is refused. */
static void track_status_is_answered_from_the_cache(void **state)
{
    for (size_t d = 0; d < N_DRAFTS; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get(DRAFTS[d]);
        struct status_result r;
        run_track_status(d, "bbb", "t", true, &r);
        assert_true(r.ok);
        assert_true(r.has_largest);
        assert_int_equal(r.group, 5);
        assert_int_equal(r.object, 2);

        run_track_status(d, "bbb", "u", true, &r);
        assert_true(r.ok);
        assert_false(r.has_largest);

        run_track_status(d, "zzz", "t", true, &r);
        assert_false(r.ok);
        assert_int_equal(r.code, does_not_exist(c));

        subscribe_grant = "other";
        run_track_status(d, "bbb", "t", true, &r);
        subscribe_grant = "";
        assert_false(r.ok);
        assert_int_equal(r.code, SUB_UNAUTHORIZED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(update_from_subscriber_reaches_the_publisher),
        cmocka_unit_test(update_reaches_an_ietf_publisher),
        cmocka_unit_test(joining_fetch_is_answered_empty),
        cmocka_unit_test(objects_carry_extensions_through),
        cmocka_unit_test(groups_before_subscribe_ok_all_arrive),
        cmocka_unit_test(messages_go_before_groups),
        cmocka_unit_test(ietf_timestamps_reach_the_model),
        cmocka_unit_test(model_timestamps_reach_an_ietf_subscriber),
        cmocka_unit_test(standalone_fetch_is_served_from_the_cache),
        cmocka_unit_test(standalone_fetch_filter_forms),
        cmocka_unit_test(fetch_objects_carry_the_relay_priority),
        cmocka_unit_test(joining_fetch_is_served_from_the_cache),
        cmocka_unit_test(joining_fetch_keeps_the_groups_next_to_the_subscription),
        cmocka_unit_test(track_status_is_answered_from_the_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
