/* Fuzz target: a relay-side moq session fed by a hostile peer, with no event loop and on a
 * virtual clock. The input is a script of stream operations (open, write, finish, reset,
 * stop, datagram) that an in-memory peer performs against a server session whose origin
 * holds a live broadcast, and of clock steps that fire the session's and the origin's
 * timers (SETUP timeout, token expiry, probe reports, ending routes, linger). The session
 * must neither crash nor leak, whatever the peer does and whenever time passes, and must
 * always have reported its next deadline. First byte: the protocol (% 5: lite-03, 04, 05,
 * "moql" whose compat SETUP may choose lite-01/02 or moq-transport-14, lite-06-wip), and
 * (/ 5 % 2) a strict relay with a narrow grant; then (op, arg) pairs: op % 7 = open bidi,
 * open uni, write, write+FIN, reset, stop, datagram; op / 7 picks the stream; arg is the
 * write length (followed by the bytes) or the code. An op with its high bit set first
 * advances the clock by arg * 50 ms and runs what is due. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "model/model.h"
#include "moq/session.h"
#include "transport/pipe.h"
#include "util/log.h"
#include "util/time.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

/* The virtual clock: monotonic time from 0, the wall clock from a fixed date. */
#define WALL_BASE_S  1700000000ull
#define EXPIRES_IN_S 30
#define STEP_US      (50 * MOQ_US_PER_MS)

static uint64_t now_us;

static uint64_t virtual_now(void *ctx)
{
    return now_us;
}

static uint64_t virtual_wall(void *ctx)
{
    return WALL_BASE_S * MOQ_US_PER_S + now_us;
}

static const moq_clock clock = {virtual_now, virtual_wall, NULL};

static moq_route *route;
static moq_track *served;

static void req(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    served = t;
    moq_track_info info;
    moq_track_info_default(&info);
    moq_track_set_info(t, r, &info);
    moq_group *g = NULL;
    if (moq_track_begin_group(t, r, 3, now_us, &g) == 0) {
        moq_chunk *c = moq_chunk_new(24 + 2);
        c->len = 26;
        memcpy(c->data + 24, "hi", 2);
        c->data[22] = 0x00; /* lite-05 header: delta 0, size 2 */
        c->data[23] = 0x02;
        c->data[0] = 0x02; /* lite-03 header: size 2 */
        moq_frame f = {c, 24, 2, 0, {22, 0}, {2, 1}, 0, 0};
        moq_group_append(g, &f, now_us);
        moq_group_unref(g);
    }
}

static void rel(void *ctx, moq_route *r, moq_track *t)
{
    if (served == t) served = NULL;
}

static const moq_producer_ops local_ops = {req, NULL, rel, NULL, false};

/* Full access, or (strict) a narrow grant on a relay that refuses what it does not allow. */
static bool strict;

static uint64_t authorize(void *ctx, moq_session *s, const char *path, int role, moq_perms *p)
{
    memset(p, 0, sizeof(*p));
    p->root = strdup("");
    moq_strlist_push(&p->publish, strict ? "bbb/in" : "");
    moq_strlist_push(&p->subscribe, strict ? "bbb" : "");
    p->expires = (int64_t)(WALL_BASE_S + EXPIRES_IN_S);
    return 0;
}

struct run {
    moq_session *s;
    bool done;
    uint64_t armed; /* the deadline the session last reported */
};

static void closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    struct run *r = ctx;
    r->done = true;
    r->s = NULL;
}

static void timer(void *ctx, moq_session *s, uint64_t at)
{
    ((struct run *)ctx)->armed = at;
}

static const struct moq_transport_events peer_events = {0};

/* Let time pass: deliver what is queued, then fire what is due, as a driver would. */
static void advance(struct run *r, moq_origin *origin, moq_pipe *pipe, uint64_t by)
{
    now_us += by;
    moq_origin_tick(origin, now_us);
    if (r->s && r->armed <= now_us) moq_session_on_timer(r->s, now_us);
    moq_pipe_flush(pipe);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    moq_log_set_level(MOQ_LOG_OFF);
    if (size < 1) return 0;
    static const char *const versions[] = {"moq-lite-03", "moq-lite-04", "moq-lite-05", "moql",
                                           "moq-lite-06-wip"};
    now_us = 0;
    moq_origin_config oc;
    moq_origin_config_default(&oc);
    oc.id = 77;
    oc.linger_us = 2 * MOQ_US_PER_S;
    moq_origin *origin = moq_origin_new(&oc);
    moq_origin_announce(origin, (const uint8_t *)"bbb", 3, NULL, 0, &local_ops, NULL, &route);

    moq_transport *peer, *server;
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, versions[data[0] % 5], "/", 1200};
    moq_pipe *pipe = moq_pipe_new(NULL, &pc, &peer, &server);
    struct run r = {.armed = UINT64_MAX};
    strict = (data[0] / 5) % 2;
    struct moq_session_config sc = {.origin = origin,
                                    .clock = &clock,
                                    .timer = timer,
                                    .refuse_outside_grant = strict,
                                    .offer_probe = true,
                                    .authorize = authorize,
                                    .closed = closed,
                                    .ctx = &r};
    moq_transport_attach(peer, &peer_events, NULL);
    r.s = moq_session_new(server, &sc);
    CHECK(r.s);

    int64_t streams[8];
    size_t nstreams = 0;
    size_t i = 1;
    while (i + 2 <= size && !r.done) {
        /* op: low part = operation, high part = which stream; arg: length or code */
        uint8_t op = data[i++], arg = data[i++];
        if (op & 0x80) advance(&r, origin, pipe, arg * STEP_US);
        if (r.done) break;
        int64_t sid = nstreams ? streams[(op / 7) % nstreams] : -1;
        switch (op % 7) {
        case 0:
        case 1:
            if (nstreams < 8 && moq_transport_open(peer, op % 2 == 0, &streams[nstreams]) == 0)
                nstreams++;
            break;
        case 2:
        case 3: {
            size_t len = arg % 32;
            if (len > size - i) len = size - i;
            if (sid >= 0) moq_transport_write_bytes(peer, sid, data + i, len, op % 7 == 3);
            i += len;
            break;
        }
        case 4:
            if (sid >= 0) peer->ops->reset(peer, sid, arg);
            break;
        case 5:
            if (sid >= 0) peer->ops->stop(peer, sid, arg);
            break;
        default: {
            size_t len = arg % 32;
            if (len > size - i) len = size - i;
            peer->ops->send_datagram(peer, data + i, len);
            i += len;
            break;
        }
        }
        moq_pipe_flush(pipe);
        /* every deadline change was reported to the driver */
        if (r.s) CHECK(r.armed == moq_session_next_deadline(r.s));
    }
    if (!r.done) {
        moq_transport_close(peer, 0, "");
        moq_pipe_flush(pipe);
    }
    CHECK(r.done);
    moq_route_unannounce(route);
    moq_origin_free(origin);
    return 0;
}
