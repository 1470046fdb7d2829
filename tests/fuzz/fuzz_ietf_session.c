/* Fuzz target: a relay-side moq-transport session (the IETF engine behind moq_session) fed by
 * a hostile peer, with no event loop and on a virtual clock. As fuzz_moq_session, the input
 * is a script of stream operations an in-memory peer performs against a server session whose
 * origin holds a live broadcast "bbb" (track "t"), and of clock steps that fire the
 * session's and the origin's timers (SETUP timeout, token expiry, ending routes, linger);
 * besides raw bytes the peer can write well-formed messages of the session's draft, so the
 * fuzzer reaches the states behind SETUP (subscriptions, namespaces, fetches, track status,
 * updates, subgroup streams from the peer). The session must neither crash nor leak and must
 * always have reported its next deadline.
 *
 * Byte 0: the protocol (% 8: "moql", "moq-00", "moqt-15" .. "moqt-20"), (/ 8 % 2) a strict
 * relay with a narrow grant, (/ 16 % 2) no SETUP sent for the peer first. Then (op, arg)
 * pairs: (op & 127) % 7 = open bidi, open uni, write raw (arg = length, the bytes follow), write
 * raw
 * + FIN, reset, stop, write a message (arg picks it); (op & 127) / 7 picks the stream. An op with
 * its high bit set first advances the clock by arg * 50 ms and runs what is due. FUZZ_LOG=1 in the
 * environment turns the session's debug log on (to see what a seed reaches). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ietf/codec.h"
#include "ietf/objects.h"
#include "model/model.h"
#include "moq/session.h"
#include "transport/pipe.h"
#include "util/log.h"
#include "util/time.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

#define WALL_BASE_S  1700000000ull
#define EXPIRES_IN_S 30
#define STEP_US      (50 * MOQ_US_PER_MS)
#define MAX_STREAMS  8

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

/* The local broadcast: every requested track gets group 3 with one frame "hi". */
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
        c->data[22] = 0x00;
        c->data[23] = 0x02;
        c->data[0] = 0x02;
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
    uint64_t armed;
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

static void advance(struct run *r, moq_origin *origin, moq_pipe *pipe, uint64_t by)
{
    now_us += by;
    moq_origin_tick(origin, now_us);
    if (r->s && r->armed <= now_us) moq_session_on_timer(r->s, now_us);
    moq_pipe_flush(pipe);
}

static moq_str str(const char *s)
{
    return moq_str_make(s, strlen(s));
}

/* The peer's CLIENT_SETUP (14-16, on a bidi control stream) or SETUP (17+, on a uni stream). */
static void send_setup(moq_transport *peer, const moq_ietf_caps *c, int64_t *sid)
{
    uint64_t version = c->code;
    struct moq_ietf_setup_out out = {.versions = &version,
                                     .n_versions = 1,
                                     .has_max_request_id = c->max_request_id,
                                     .max_request_id = 64,
                                     .implementation = "fuzz"};
    moq_buf b;
    moq_buf_init(&b);
    if (moq_transport_open(peer, !c->uni_setup, sid) == 0 &&
        moq_ietf_encode_setup(&b, c, true, &out) == 0)
        moq_transport_write_bytes(peer, *sid, b.data, b.len, false);
    moq_buf_free(&b);
}

static void filter_of(uint8_t arg, struct moq_ietf_filter *f)
{
    memset(f, 0, sizeof(*f));
    static const int kinds[] = {MOQ_IETF_FILTER_LARGEST, MOQ_IETF_FILTER_NEXT_GROUP,
                                MOQ_IETF_FILTER_ABSOLUTE, MOQ_IETF_FILTER_NONE};
    f->kind = kinds[(arg >> 3) % 4];
    f->start_group = (arg >> 5) & 3;
    f->has_end = arg & 0x80;
    f->end_group = f->start_group + 2;
}

/* A well-formed message of the draft ((arg & 15) % 10 picks it, the rest varies its fields). */
static void encode_message(const moq_ietf_caps *c, uint8_t arg, uint64_t rid, moq_buf *b)
{
    const char *track = (arg & 0x10) ? "t" : "u";
    switch ((arg & 15) % 10) {
    case 0: {
        struct moq_ietf_subscribe m = {.request_id = rid,
                                       .track = str(track),
                                       .priority = 128,
                                       .forward = !(arg & 0x40),
                                       .want_properties = true};
        filter_of(arg, &m.filter);
        moq_ietf_encode_subscribe(b, c, &m, str("bbb"));
        break;
    }
    case 1:
        moq_ietf_encode_subscribe_namespace(b, c, rid, str((arg & 0x10) ? "bbb" : ""));
        break;
    case 2:
        moq_ietf_encode_publish_namespace(b, c, rid, str((arg & 0x10) ? "bbb/in" : "zzz"), NULL);
        break;
    case 3: {
        struct moq_ietf_fetch m = {.request_id = rid,
                                   .type = MOQ_IETF_FETCH_STANDALONE + (arg >> 4) % 3,
                                   .track = str(track),
                                   .priority = 1,
                                   .start_group = (arg >> 6) & 3,
                                   .end_group = 4,
                                   .has_range = true,
                                   .joining_request_id = rid >= 2 ? rid - 2 : 0,
                                   .joining_start = (arg >> 6) & 1};
        moq_ietf_encode_fetch(b, c, &m, str("bbb"));
        break;
    }
    case 4:
        moq_ietf_encode_track_status(b, c, rid, str("bbb"), str(track));
        break;
    case 5: {
        struct moq_ietf_request_update m = {.request_id = rid,
                                            .subscription_id = rid >= 2 ? rid - 2 : 0,
                                            .has_priority = true,
                                            .priority = arg,
                                            .has_forward = true,
                                            .forward = arg & 0x20,
                                            .has_end = arg & 0x40,
                                            .end_group = 5};
        moq_ietf_encode_request_update(b, c, &m);
        break;
    }
    case 6:
        moq_ietf_encode_id_msg(b, c, (arg & 0x10) ? MOQ_IETF_UNSUBSCRIBE : MOQ_IETF_FETCH_CANCEL,
                               rid >= 2 ? rid - 2 : 0);
        break;
    case 7:
        moq_ietf_encode_publish_namespace_done(b, c, rid >= 2 ? rid - 2 : 0, str("bbb/in"));
        break;
    case 8: {
        struct moq_ietf_publish_done m = {0};
        moq_ietf_encode_publish_done(b, c, &m);
        break;
    }
    default: {
        /* a subgroup stream of the peer: header, then one object, with an extension
         * block (a Timestamp and a bytes pair) when arg's low bit says so */
        uint8_t hdr[MOQ_IETF_SUBGROUP_HEADER_MAX + MOQ_IETF_OBJECT_HEADER_MAX + 2];
        bool ext = arg & 1;
        size_t n =
            moq_ietf_subgroup_header_pack_ext(c, hdr, (arg >> 4) & 3, (arg >> 6) & 3, 1, ext);
        if (!ext) {
            n += moq_ietf_object_header_pack(c, hdr + n, 2);
            memcpy(hdr + n, "ok", 2);
            moq_buf_append(b, hdr, n + 2);
            break;
        }
        static const uint8_t block[] = {0x0b, 0x02, 'h', 'i', 0x10, 0x04};
        moq_buf_append(b, hdr, n);
        moq_ietf_object_header_ext(b, c, block, sizeof(block), 2);
        moq_buf_append(b, "ok", 2);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    moq_log_set_level(getenv("FUZZ_LOG") ? MOQ_LOG_DEBUG : MOQ_LOG_OFF);
    if (size < 1) return 0;
    static const char *const protocols[] = {"moql",    "moq-00",  "moqt-15", "moqt-16",
                                            "moqt-17", "moqt-18", "moqt-19", "moqt-20"};
    static const moq_ietf_draft drafts[] = {MOQT_14, MOQT_14, MOQT_15, MOQT_16,
                                            MOQT_17, MOQT_18, MOQT_19, MOQT_20};
    const moq_ietf_caps *caps = moq_ietf_caps_get(drafts[data[0] % 8]);
    now_us = 0;
    moq_origin_config oc;
    moq_origin_config_default(&oc);
    oc.id = 77;
    oc.linger_us = 2 * MOQ_US_PER_S;
    moq_origin *origin = moq_origin_new(&oc);
    moq_origin_announce(origin, (const uint8_t *)"bbb", 3, NULL, 0, &local_ops, NULL, &route);

    moq_transport *peer, *server;
    struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, protocols[data[0] % 8], "/", 1200};
    moq_pipe *pipe = moq_pipe_new(NULL, &pc, &peer, &server);
    struct run r = {.armed = UINT64_MAX};
    strict = (data[0] / 8) % 2;
    struct moq_session_config sc = {.origin = origin,
                                    .clock = &clock,
                                    .timer = timer,
                                    .refuse_outside_grant = strict,
                                    .authorize = authorize,
                                    .closed = closed,
                                    .ctx = &r};
    moq_transport_attach(peer, &peer_events, NULL);
    r.s = moq_session_new(server, &sc);
    CHECK(r.s);

    int64_t streams[MAX_STREAMS];
    size_t nstreams = 0;
    uint64_t rid = 0; /* the peer is the client: even request ids */
    if (!((data[0] / 16) % 2)) {
        send_setup(peer, caps, &streams[0]);
        nstreams = 1;
        moq_pipe_flush(pipe);
    }
    size_t i = 1;
    while (i + 2 <= size && !r.done) {
        uint8_t op = data[i++], arg = data[i++];
        if (op & 0x80) advance(&r, origin, pipe, arg * STEP_US);
        if (r.done) break;
        int64_t sid = nstreams ? streams[((op & 0x7f) / 7) % nstreams] : -1;
        switch ((op & 0x7f) % 7) {
        case 0:
        case 1:
            if (nstreams < MAX_STREAMS &&
                moq_transport_open(peer, (op & 0x7f) % 2 == 0, &streams[nstreams]) == 0)
                nstreams++;
            break;
        case 2:
        case 3: {
            size_t len = arg % 32;
            if (len > size - i) len = size - i;
            if (sid >= 0) moq_transport_write_bytes(peer, sid, data + i, len, (op & 0x7f) % 7 == 3);
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
            moq_buf b;
            moq_buf_init(&b);
            encode_message(caps, arg, rid, &b);
            rid += 2;
            if (sid >= 0 && b.len) moq_transport_write_bytes(peer, sid, b.data, b.len, false);
            moq_buf_free(&b);
            break;
        }
        }
        moq_pipe_flush(pipe);
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
