/* The session engine's timers on a virtual clock, with no event loop: the peer's SETUP
 * timeout, a token's expiry, bandwidth probe reports, and the linger of a broadcast whose
 * publisher is lost (with the splice of one that comes back in time). The tests drive the
 * engine as a driver does: they move the clock to the deadline the session reported through
 * cfg.timer and call moq_session_on_timer, and deliver transport events by flushing
 * in-memory pipes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "model/model.h"
#include "moq/codec.h"
#include "moq/errors.h"
#include "moq/session.h"
#include "moq/stream_reader.h"
#include "transport/pipe.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/time.h"

#define MS MOQ_US_PER_MS
#define S  MOQ_US_PER_S

/* ---- the virtual clock ---- */

#define WALL_BASE_S 1700000000ull

static uint64_t now_us;

static uint64_t virtual_now(void *ctx)
{
    return now_us;
}

static uint64_t virtual_wall(void *ctx)
{
    return WALL_BASE_S * S + now_us;
}

static const moq_clock vclock = {virtual_now, virtual_wall, NULL};

/* ---- a session under test and its driver ---- */

struct end {
    moq_session *s;
    uint64_t armed; /* the deadline the session last reported */
    int closed;
    uint64_t close_code;
    char close_reason[64];
    int authorized;
    /* what authorize grants */
    const char *pub, *sub;
    int64_t expires;
};

static uint64_t authorize(void *ctx, moq_session *s, const char *path, int role, moq_perms *perms)
{
    struct end *e = ctx;
    e->authorized++;
    memset(perms, 0, sizeof(*perms));
    perms->root = strdup("");
    if (e->pub) moq_strlist_push(&perms->publish, e->pub);
    if (e->sub) moq_strlist_push(&perms->subscribe, e->sub);
    perms->expires = e->expires;
    return 0;
}

static void closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    struct end *e = ctx;
    e->closed++;
    e->close_code = code;
    snprintf(e->close_reason, sizeof(e->close_reason), "%s", reason ? reason : "");
    e->s = NULL;
}

static void timer(void *ctx, moq_session *s, uint64_t at)
{
    struct end *e = ctx;
    e->armed = at;
}

static void start(struct end *e, moq_transport *t, moq_origin *origin, bool probe)
{
    e->armed = UINT64_MAX;
    struct moq_session_config cfg = {.origin = origin,
                                     .clock = &vclock,
                                     .timer = timer,
                                     .offer_probe = probe,
                                     .authorize = authorize,
                                     .closed = closed,
                                     .ctx = e};
    e->s = moq_session_new(t, &cfg);
    assert_non_null(e->s);
    assert_true(e->armed == moq_session_next_deadline(e->s));
}

/* Fire the session's timer at every deadline up to `until`, then leave the clock there. */
static void run_until(struct end *e, moq_pipe *pipe, uint64_t until)
{
    while (e->s && e->armed <= until) {
        if (e->armed > now_us) now_us = e->armed;
        moq_session_on_timer(e->s, now_us);
        moq_pipe_flush(pipe);
    }
    now_us = until;
}

static moq_origin *new_origin(uint64_t id, uint64_t linger_us)
{
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = id;
    cfg.linger_us = linger_us;
    moq_origin *o = moq_origin_new(&cfg);
    assert_non_null(o);
    return o;
}

/* ---- a raw peer: no session, records what the relay sends ---- */

struct peer {
    moq_transport *t;
    int closed;
    uint64_t close_code;
    int64_t probe_sid;
    moq_ctrl_reader probe_reader;
    moq_version v;
    struct moq_probe reports[16];
    uint64_t report_at[16];
    size_t n_reports;
};

static void peer_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                      size_t len, bool fin)
{
    struct peer *p = app;
    if (sid != p->probe_sid) return;
    struct moq_ctrl_msg msg;
    while (moq_ctrl_reader_next(&p->probe_reader, &data, &len, fin, &msg) == 1) {
        assert_true(p->n_reports < 16);
        assert_int_equal(moq_decode_probe(p->v, msg.body, msg.len, &p->reports[p->n_reports]), 0);
        p->report_at[p->n_reports++] = now_us;
    }
}

static void peer_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct peer *p = app;
    p->closed++;
    p->close_code = code;
}

static const struct moq_transport_events peer_events = {.stream_data = peer_data,
                                                        .closed = peer_closed};

static moq_pipe *connect_peer(struct peer *p, const char *proto, moq_transport **server)
{
    memset(p, 0, sizeof(*p));
    p->probe_sid = -1;
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, proto, "/", 1200};
    moq_pipe *pipe = moq_pipe_new(NULL, &pc, &p->t, server);
    assert_non_null(pipe);
    moq_transport_attach(p->t, &peer_events, p);
    return pipe;
}

static void peer_write(struct peer *p, int64_t sid, const moq_buf *b, bool fin)
{
    assert_int_equal(moq_transport_write_bytes(p->t, sid, b->data, b->len, fin), 0);
}

static void peer_send_setup(struct peer *p)
{
    int64_t sid;
    assert_int_equal(moq_transport_open(p->t, false, &sid), 0);
    moq_buf b;
    moq_buf_init(&b);
    struct moq_setup setup = {0};
    assert_int_equal(moq_encode_stream_type(&b, MOQ_UNI_SETUP), 0);
    assert_int_equal(moq_encode_setup(&b, MOQ_LITE_05, &setup), 0);
    peer_write(p, sid, &b, true);
    moq_buf_free(&b);
}

static void finish(struct end *e, struct peer *p, moq_pipe *pipe, moq_origin *origin)
{
    if (!p->closed) { /* else the pipe is gone with both its ends */
        moq_transport_close(p->t, 0, "");
        moq_pipe_flush(pipe);
    }
    assert_int_equal(e->closed, 1);
    if (p->probe_sid >= 0) moq_ctrl_reader_free(&p->probe_reader);
    moq_origin_free(origin);
}

/* ---- the SETUP timeout ---- */

/* A lite-05 peer that sends no SETUP is cut off 10 s after the session started, not a
 * microsecond earlier, and is never authorized. */
static void setup_timeout_closes_the_session(void **state)
{
    now_us = 1234 * MS;
    moq_origin *origin = new_origin(1, 0);
    struct peer p;
    moq_transport *server;
    moq_pipe *pipe = connect_peer(&p, "moq-lite-05", &server);
    struct end e = {.pub = "", .sub = ""};
    start(&e, server, origin, false);
    assert_true(e.armed == now_us + 10 * S);

    run_until(&e, pipe, 1234 * MS + 10 * S - 1);
    assert_int_equal(e.closed, 0);
    assert_int_equal(p.closed, 0);
    run_until(&e, pipe, 1234 * MS + 10 * S);
    assert_int_equal(e.closed, 1);
    assert_int_equal(e.close_code, MOQ_CODE_TIMEOUT);
    assert_int_equal(p.closed, 1);
    assert_int_equal(p.close_code, MOQ_CODE_TIMEOUT);
    assert_int_equal(e.authorized, 0);
    finish(&e, &p, pipe, origin);
}

/* A SETUP in time clears the timeout: the session is authorized and stays up. */
static void setup_in_time_clears_the_timeout(void **state)
{
    now_us = 0;
    moq_origin *origin = new_origin(1, 0);
    struct peer p;
    moq_transport *server;
    moq_pipe *pipe = connect_peer(&p, "moq-lite-05", &server);
    struct end e = {.pub = "", .sub = ""};
    start(&e, server, origin, false);
    run_until(&e, pipe, 9 * S);
    peer_send_setup(&p);
    moq_pipe_flush(pipe);
    assert_int_equal(e.authorized, 1);
    assert_true(e.armed == UINT64_MAX);
    run_until(&e, pipe, 3600 * S);
    assert_int_equal(e.closed, 0);
    finish(&e, &p, pipe, origin);
}

/* ---- token expiry ---- */

/* A token expiring at `exp` closes its session with Unauthorized (6) exactly when the wall
 * clock reaches exp, counted on the monotonic clock from when it was granted. */
static void token_expiry_closes_at_exp(void **state)
{
    now_us = 250 * MS; /* the wall clock reads WALL_BASE_S + 0.25 s */
    moq_origin *origin = new_origin(1, 0);
    struct peer p;
    moq_transport *server;
    moq_pipe *pipe = connect_peer(&p, "moq-lite-04", &server);
    struct end e = {.pub = "", .sub = "", .expires = (int64_t)WALL_BASE_S + 3};
    start(&e, server, origin, false);
    assert_int_equal(e.authorized, 1);
    assert_true(e.armed == 3 * S);

    run_until(&e, pipe, 3 * S - 1);
    assert_int_equal(e.closed, 0);
    assert_int_equal(p.closed, 0);
    run_until(&e, pipe, 3 * S);
    assert_int_equal(e.closed, 1);
    assert_int_equal(e.close_code, MOQ_CODE_UNAUTHORIZED);
    assert_string_equal(e.close_reason, "token expired");
    assert_int_equal(p.close_code, MOQ_CODE_UNAUTHORIZED);
    finish(&e, &p, pipe, origin);
}

/* Granted on a lite-05 SETUP: the expiry counts from then; a token without one never ends
 * its session; a token that has already expired ends it at the first timer call. */
static void token_expiry_after_setup_and_without_expiry(void **state)
{
    now_us = 0;
    moq_origin *origin = new_origin(1, 0);
    struct peer p;
    moq_transport *server;
    moq_pipe *pipe = connect_peer(&p, "moq-lite-05", &server);
    struct end e = {.pub = "", .sub = "", .expires = (int64_t)WALL_BASE_S + 8};
    start(&e, server, origin, false);
    run_until(&e, pipe, 2 * S);
    peer_send_setup(&p);
    moq_pipe_flush(pipe);
    assert_true(e.armed == 8 * S);
    run_until(&e, pipe, 8 * S);
    assert_int_equal(e.close_code, MOQ_CODE_UNAUTHORIZED);
    finish(&e, &p, pipe, origin);

    origin = new_origin(1, 0);
    pipe = connect_peer(&p, "moq-lite-04", &server);
    e = (struct end){.pub = "", .sub = ""};
    start(&e, server, origin, false);
    assert_true(e.armed == UINT64_MAX);
    finish(&e, &p, pipe, origin);

    now_us = 100 * S;
    origin = new_origin(1, 0);
    pipe = connect_peer(&p, "moq-lite-04", &server);
    e = (struct end){.pub = "", .sub = "", .expires = (int64_t)WALL_BASE_S + 50};
    start(&e, server, origin, false);
    assert_true(e.armed == 100 * S);
    run_until(&e, pipe, 100 * S);
    assert_int_equal(e.close_code, MOQ_CODE_UNAUTHORIZED);
    finish(&e, &p, pipe, origin);
}

/* ---- bandwidth probes ---- */

static void set_bitrate(moq_pipe *pipe, uint64_t bps)
{
    struct moq_transport_stats st = {.rtt_us = 20 * MS, .bitrate_bps = bps};
    moq_pipe_set_stats(pipe, &st);
}

/* While the peer listens on a PROBE stream, the estimate is checked every 100 ms: reported
 * at once, again at the first check after it moved by a quarter or more, and otherwise
 * every 10 s. The checks stop when the peer ends the stream. */
static void probe_cadence(void **state)
{
    now_us = 0;
    moq_origin *origin = new_origin(1, 0);
    struct peer p;
    moq_transport *server;
    moq_pipe *pipe = connect_peer(&p, "moq-lite-04", &server);
    p.v = MOQ_LITE_04;
    set_bitrate(pipe, 1000000);
    struct end e = {.pub = "", .sub = ""};
    start(&e, server, origin, true);

    now_us = 1 * S;
    assert_int_equal(moq_transport_open(p.t, true, &p.probe_sid), 0);
    moq_ctrl_reader_init(&p.probe_reader, 0, MOQ_CTRL_DEFAULT_MAX_MSG);
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_encode_stream_type(&b, MOQ_BIDI_PROBE), 0);
    peer_write(&p, p.probe_sid, &b, false);
    moq_buf_free(&b);
    moq_pipe_flush(pipe);
    assert_int_equal(p.n_reports, 1);
    assert_true(p.reports[0].bitrate_bps == 1000000 && p.reports[0].rtt_ms == 20);
    assert_true(p.report_at[0] == 1 * S);
    assert_true(e.armed == 1 * S + 100 * MS);

    run_until(&e, pipe, 5 * S); /* unchanged: nothing new */
    assert_int_equal(p.n_reports, 1);
    set_bitrate(pipe, 1200000); /* +20%: not enough */
    run_until(&e, pipe, 6 * S + 50 * MS);
    assert_int_equal(p.n_reports, 1);
    set_bitrate(pipe, 2000000); /* doubled: reported at the next check */
    run_until(&e, pipe, 7 * S);
    assert_int_equal(p.n_reports, 2);
    assert_true(p.reports[1].bitrate_bps == 2000000);
    assert_true(p.report_at[1] == 6 * S + 100 * MS);

    run_until(&e, pipe, 16 * S); /* steady: the next report comes 10 s after the last */
    assert_int_equal(p.n_reports, 2);
    run_until(&e, pipe, 16 * S + 100 * MS);
    assert_int_equal(p.n_reports, 3);
    assert_true(p.report_at[2] == 16 * S + 100 * MS);

    moq_transport_write_bytes(p.t, p.probe_sid, NULL, 0, true);
    moq_pipe_flush(pipe);
    assert_true(e.armed == UINT64_MAX);
    finish(&e, &p, pipe, origin);
}

/* ---- linger ---- */

/* A publisher: a local route in its own origin that writes one-frame groups. */
struct publisher {
    moq_origin *origin;
    moq_route *route;
    moq_track *track;
    int requests;
    moq_transport *ct, *st;
    moq_pipe *pipe;
    struct end client, relay_side;
};

static void pub_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    struct publisher *pub = ctx;
    pub->requests++;
    pub->track = t;
    moq_track_info info;
    moq_track_info_default(&info);
    moq_track_set_info(t, r, &info);
}

static void pub_release(void *ctx, moq_route *r, moq_track *t)
{
    struct publisher *pub = ctx;
    if (pub->track == t) pub->track = NULL;
}

static const moq_producer_ops pub_ops = {pub_request, NULL, pub_release, NULL, false};

static void publish_group(struct publisher *pub, uint64_t seq)
{
    assert_non_null(pub->track);
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(pub->track, pub->route, seq, now_us, &g), 0);
    moq_frame f;
    assert_int_equal(moq_frame_alloc(&f, 0, seq, 1), 0);
    f.chunk->data[f.payload_off] = 'x';
    assert_int_equal(moq_group_append(g, &f, now_us), 0);
    assert_int_equal(moq_group_finish(g, now_us), 0);
    moq_group_unref(g);
}

/* The publisher's own origin announces "bbb" and connects to the relay, which may take it. */
static void publisher_connect(struct publisher *pub, uint64_t id, moq_origin *relay)
{
    memset(pub, 0, sizeof(*pub));
    pub->origin = new_origin(id, 0);
    assert_int_equal(moq_origin_announce(pub->origin, (const uint8_t *)"bbb", 3, NULL, 0, &pub_ops,
                                         pub, &pub->route),
                     0);
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, "moq-lite-05", "/", 1200};
    pub->pipe = moq_pipe_new(NULL, &pc, &pub->ct, &pub->st);
    assert_non_null(pub->pipe);
    pub->relay_side = (struct end){.pub = ""};
    pub->client = (struct end){.sub = ""};
    start(&pub->relay_side, pub->st, relay, false);
    start(&pub->client, pub->ct, pub->origin, false);
}

static void publisher_free(struct publisher *pub)
{
    if (pub->client.s) moq_session_close(pub->client.s, 0, "");
    moq_pipe_flush(pub->pipe);
    assert_int_equal(pub->relay_side.closed, 1);
    moq_route_unannounce(pub->route);
    moq_origin_free(pub->origin);
}

/* A subscriber inside the relay's origin. */
struct watcher {
    moq_subscription *sub;
    uint64_t groups[8];
    size_t n_groups;
    int aborts;
    uint64_t abort_code;
};

static void w_group(void *ctx, moq_subscription *s, moq_group *g)
{
    struct watcher *w = ctx;
    if (w->n_groups < 8) w->groups[w->n_groups++] = moq_group_sequence(g);
}

static void w_abort(void *ctx, moq_subscription *s, uint64_t code)
{
    struct watcher *w = ctx;
    w->aborts++;
    w->abort_code = code;
}

static const moq_subscriber_ops watcher_ops = {NULL, w_group, NULL, w_abort};

static uint64_t linger_reported;

static void on_linger(void *ctx, uint64_t at)
{
    linger_reported = at;
}

static bool announced(moq_origin *o)
{
    return moq_origin_lookup(o, (const uint8_t *)"bbb", 3, 0, NULL, NULL) == 0;
}

/* The relay with linger 3 s, a publisher whose group 0 reached a subscriber in the relay,
 * and then the publisher's session lost at 10 s. */
static moq_origin *linger_world(struct publisher *pub, struct watcher *w)
{
    now_us = 1 * S;
    linger_reported = 0;
    moq_origin_config cfg;
    moq_origin_config_default(&cfg);
    cfg.id = 1;
    cfg.linger_us = 3 * S;
    cfg.linger_deadline = on_linger;
    moq_origin *relay = moq_origin_new(&cfg);
    assert_non_null(relay);
    publisher_connect(pub, 2, relay);
    moq_pipe_flush(pub->pipe);
    assert_true(announced(relay));
    memset(w, 0, sizeof(*w));
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(relay, (const uint8_t *)"bbb", 3, (const uint8_t *)"t", 1,
                                          0, &prefs, &watcher_ops, w, &w->sub),
                     0);
    moq_pipe_flush(pub->pipe);
    assert_int_equal(pub->requests, 1);
    publish_group(pub, 0);
    moq_pipe_flush(pub->pipe);
    assert_int_equal(w->n_groups, 1);

    now_us = 10 * S;
    moq_transport_close(pub->ct, MOQ_CODE_TRANSPORT, "network gone");
    moq_pipe_flush(pub->pipe);
    assert_int_equal(pub->relay_side.closed, 1);
    assert_true(linger_reported == 13 * S);
    assert_true(moq_origin_next_linger(relay) == 13 * S);
    return relay;
}

/* Nobody comes back: the broadcast stays announced for the linger time, then ends. */
static void linger_ends_the_broadcast(void **state)
{
    struct publisher pub;
    struct watcher w;
    moq_origin *relay = linger_world(&pub, &w);
    moq_origin_tick(relay, 13 * S - 1);
    assert_true(announced(relay));
    assert_int_equal(w.aborts, 0);
    moq_origin_tick(relay, 13 * S);
    assert_false(announced(relay));
    assert_int_equal(w.aborts, 1);
    assert_int_equal(w.abort_code, MOQ_REASON_DROPPED);
    moq_subscription_close(w.sub);
    moq_route_unannounce(pub.route);
    moq_origin_free(pub.origin);
    moq_origin_free(relay);
}

/* A publisher that reconnects within the linger time (the same publisher, origin id 2, on
 * a new session) is spliced in: the subscriber goes on with its groups and the broadcast
 * outlives the old deadline. */
static void reconnecting_publisher_is_spliced(void **state)
{
    struct publisher pub, again;
    struct watcher w;
    moq_origin *relay = linger_world(&pub, &w);
    moq_route_unannounce(pub.route);
    moq_origin_free(pub.origin);

    now_us = 12 * S;
    publisher_connect(&again, 2, relay);
    moq_pipe_flush(again.pipe);
    assert_int_equal(again.requests, 1); /* the relay asks the new session for the track */
    publish_group(&again, 1);
    moq_pipe_flush(again.pipe);
    assert_int_equal(w.n_groups, 2);
    assert_true(w.groups[1] == 1);

    moq_origin_tick(relay, 20 * S);
    assert_true(announced(relay));
    assert_int_equal(w.aborts, 0);
    assert_true(moq_origin_next_linger(relay) == UINT64_MAX);
    moq_subscription_close(w.sub);
    publisher_free(&again);
    moq_origin_free(relay);
}

int main(void)
{
    moq_log_set_level(getenv("TEST_DEBUG") ? MOQ_LOG_TRACE : MOQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(setup_timeout_closes_the_session),
        cmocka_unit_test(setup_in_time_clears_the_timeout),
        cmocka_unit_test(token_expiry_closes_at_exp),
        cmocka_unit_test(token_expiry_after_setup_and_without_expiry),
        cmocka_unit_test(probe_cadence),
        cmocka_unit_test(linger_ends_the_broadcast),
        cmocka_unit_test(reconnecting_publisher_is_spliced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
