/*
 * flood_peer - a raw QUIC moq-lite client that floods a relay within what the protocol lets
 * it send, until SIGTERM, so a test can watch the relay meanwhile. Built on src/quic
 * directly (no session engine).
 *
 *   flood_peer --url moql://host:port --fingerprint HEX --case NAME
 *              [--version 05|04|03] [--broadcast PATH]
 *
 * Cases:
 *   streams     open streams as fast as the relay's stream credit allows, each a GROUP for a
 *               subscription the relay never made (uni) or an empty stream (bidi), finished
 *               at once; opens again whenever the relay returns credit
 *   datagrams   (05) announce --broadcast, wait for the relay's SUBSCRIBE (start a
 *               subscriber), then keep the datagram queue full: one-frame groups of 1000
 *               bytes for that subscription, every fourth one for an unknown subscription
 *   announces   answer the relay's ANNOUNCE_REQUEST with rounds of 1000 new broadcasts under
 *               --broadcast, each round ended by the next (at most 1000 active at once),
 *               written as fast as the stream takes them
 *
 * Prints "<case> N" every time N passes a multiple of its step, "summary: ..." on SIGTERM
 * (exit 0). When the relay closes the session it prints "session closed (code N: reason)"
 * and exits 3; a failed connect exits 2.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "moq/codec.h"
#include "quic/quic.h"
#include "tls/tls.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/url.h"
#include "util/varint.h"

enum flood_case { FLOOD_STREAMS, FLOOD_DATAGRAMS, FLOOD_ANNOUNCES };

enum {
    ANNOUNCE_ROUND = 1000,
    ANNOUNCE_QUEUE_MAX = 64 * 1024, /* unsent bytes on the announce stream before pausing */
    DATAGRAM_BATCH = 64,
    DATAGRAM_PAYLOAD = 1000,
    UNKNOWN_SUBSCRIPTION = 777777,
    RX_MAX = 8, /* the relay's bidi streams we read (ANNOUNCE_REQUEST, SUBSCRIBE) */
};

struct rx_stream {
    int64_t sid;
    moq_buf buf;
    bool handled;
};

struct flood {
    struct ev_loop *loop;
    moq_tls_client *tls;
    moq_transport *t;
    enum flood_case kind;
    const char *name;
    moq_version v;
    const char *broadcast;
    uint64_t count; /* streams opened, datagrams queued or announcements written */
    uint64_t step;  /* progress is printed every step */
    uint64_t reactions;
    int status;
    bool blocked_uni, blocked_bidi;
    moq_chunk *group_chunk; /* shared by every uni stream of the streams case */
    int64_t announce_sid;   /* -1 until the relay asked */
    uint64_t round;
    bool subscribed;
    uint64_t sub_id, group;
    struct rx_stream rx[RX_MAX];
    size_t nrx;
    ev_timer tick;
    ev_signal sigterm, sigint;
};

static void progress(struct flood *f, uint64_t added)
{
    uint64_t before = f->count;
    f->count += added;
    if (before / f->step != f->count / f->step) {
        printf("%s %llu\n", f->name, (unsigned long long)f->count);
        fflush(stdout);
    }
}

static void stop(struct flood *f, int status)
{
    f->status = status;
    ev_timer_stop(f->loop, &f->tick);
    ev_signal_stop(f->loop, &f->sigterm);
    ev_signal_stop(f->loop, &f->sigint);
    if (f->t) moq_transport_close(f->t, 0, "done");
}

/* ---------------------------------------------------------------- streams */

static bool open_one(struct flood *f, bool bidi)
{
    int64_t sid;
    if (moq_transport_open(f->t, bidi, &sid) < 0) return false;
    if (bidi) {
        moq_transport_write(f->t, sid, NULL, 0, true);
    } else {
        moq_slice s = {f->group_chunk, 0, f->group_chunk->len};
        moq_transport_write(f->t, sid, &s, 1, true);
    }
    progress(f, 1);
    return true;
}

static void open_streams(struct flood *f)
{
    while (f->t && (!f->blocked_uni || !f->blocked_bidi)) {
        if (!f->blocked_uni && !open_one(f, false)) f->blocked_uni = true;
        if (!f->blocked_bidi && !open_one(f, true)) f->blocked_bidi = true;
    }
}

static int make_group_chunk(struct flood *f)
{
    f->group_chunk = moq_chunk_new(MOQ_GROUP_HEADER_MAX + 16);
    if (!f->group_chunk) return -1;
    uint8_t *w = f->group_chunk->data;
    w += moq_group_header_pack(w, true, UNKNOWN_SUBSCRIPTION, 0);
    w = moq_varint_put(w, 5);
    memcpy(w, "flood", 5);
    f->group_chunk->len = (size_t)(w + 5 - f->group_chunk->data);
    return 0;
}

/* ---------------------------------------------------------------- datagrams */

static void send_datagrams(struct flood *f)
{
    static uint8_t payload[DATAGRAM_PAYLOAD];
    moq_buf b;
    moq_buf_init(&b);
    for (int i = 0; i < DATAGRAM_BATCH && f->t; i++) {
        bool unknown = f->count % 4 == 3;
        struct moq_datagram d = {
            .sub_id = unknown ? UNKNOWN_SUBSCRIPTION : f->sub_id,
            .group = f->group++,
            .timestamp = (uint64_t)(ev_now(f->loop) * 1e6),
            .payload = payload,
            .payload_len = sizeof(payload),
        };
        b.len = 0;
        if (moq_encode_datagram(&b, f->v, &d) < 0) break;
        if (f->t->ops->send_datagram(f->t, b.data, b.len) < 0) break;
        progress(f, 1);
    }
    moq_buf_free(&b);
}

/* ---------------------------------------------------------------- announcements */

/* A round announces 1000 new broadcasts and ends the previous round's. */
static void write_announce_round(struct flood *f)
{
    moq_buf b;
    moq_buf_init(&b);
    char path[256];
    for (int i = 0; i < ANNOUNCE_ROUND; i++) {
        struct moq_announce a = {0};
        a.status = MOQ_ANNOUNCE_STATUS_ACTIVE;
        int len = snprintf(path, sizeof(path), "%s/%llu/%d", f->broadcast,
                           (unsigned long long)f->round, i);
        a.suffix = moq_str_make(path, (size_t)len);
        moq_encode_announce(&b, f->v, &a);
        if (f->round == 0) continue;
        a.status = MOQ_ANNOUNCE_STATUS_ENDED;
        len = snprintf(path, sizeof(path), "%s/%llu/%d", f->broadcast,
                       (unsigned long long)(f->round - 1), i);
        a.suffix = moq_str_make(path, (size_t)len);
        moq_encode_announce(&b, f->v, &a);
    }
    moq_transport_write_bytes(f->t, f->announce_sid, b.data, b.len, false);
    moq_buf_free(&b);
    f->round++;
    progress(f, ANNOUNCE_ROUND);
}

static void announce_more(struct flood *f)
{
    while (f->t && f->t->ops->unsent(f->t, f->announce_sid) < ANNOUNCE_QUEUE_MAX)
        write_announce_round(f);
}

/* ---------------------------------------------------------------- the relay's streams */

static void announce_broadcast(struct flood *f, int64_t sid)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_announce a = {0};
    a.status = MOQ_ANNOUNCE_STATUS_ACTIVE;
    a.suffix = moq_str_make(f->broadcast, strlen(f->broadcast));
    if (moq_encode_announce(&b, f->v, &a) == 0)
        moq_transport_write_bytes(f->t, sid, b.data, b.len, false);
    moq_buf_free(&b);
}

/* lite-05 answers an ANNOUNCE_REQUEST with ANNOUNCE_OK first (no initial set). */
static void announce_ok(struct flood *f, int64_t sid)
{
    if (f->v != MOQ_LITE_05) return;
    moq_buf b;
    moq_buf_init(&b);
    struct moq_announce_ok ok = {.hop_id = 0x5151, .active_count = 0};
    if (moq_encode_announce_ok(&b, f->v, &ok) == 0)
        moq_transport_write_bytes(f->t, sid, b.data, b.len, false);
    moq_buf_free(&b);
}

static void relay_request(struct flood *f, struct rx_stream *rs)
{
    uint64_t type, mtype;
    int n = moq_varint_get(rs->buf.data, rs->buf.len, &type);
    if (n < 0) return;
    const uint8_t *body;
    size_t body_len;
    if (moq_msg_split(rs->buf.data + n, rs->buf.len - (size_t)n, false, 65536, &mtype, &body,
                      &body_len) < 0)
        return;
    rs->handled = true;
    if (type == MOQ_BIDI_ANNOUNCE) announce_ok(f, rs->sid);
    if (type == MOQ_BIDI_ANNOUNCE && f->kind == FLOOD_ANNOUNCES) {
        f->announce_sid = rs->sid;
        announce_more(f);
    } else if (type == MOQ_BIDI_ANNOUNCE && f->kind == FLOOD_DATAGRAMS) {
        announce_broadcast(f, rs->sid);
    } else if (type == MOQ_BIDI_SUBSCRIBE && f->kind == FLOOD_DATAGRAMS && !f->subscribed) {
        uint8_t copy[4096];
        struct moq_subscribe sub;
        if (body_len > sizeof(copy)) return;
        memcpy(copy, body, body_len);
        if (moq_decode_subscribe(f->v, copy, body_len, &sub) < 0) return;
        f->subscribed = true;
        f->sub_id = sub.id;
        printf("subscribed by the relay (id %llu)\n", (unsigned long long)sub.id);
        fflush(stdout);
    }
}

static struct rx_stream *rx_get(struct flood *f, int64_t sid)
{
    for (size_t i = 0; i < f->nrx; i++)
        if (f->rx[i].sid == sid) return &f->rx[i];
    if (f->nrx == RX_MAX) return NULL;
    struct rx_stream *rs = &f->rx[f->nrx++];
    rs->sid = sid;
    moq_buf_init(&rs->buf);
    return rs;
}

/* ---------------------------------------------------------------- events */

static void ev_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                    size_t len, bool fin)
{
    struct flood *f = app;
    if (!moq_stream_is_bidi(sid) || !moq_stream_is_server_initiated(sid)) return;
    struct rx_stream *rs = rx_get(f, sid);
    if (!rs || rs->handled) return;
    moq_buf_append(&rs->buf, data, len);
    relay_request(f, rs);
}

static void ev_reaction(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct flood *f = app;
    f->reactions++;
}

static void ev_streams_available(void *app, moq_transport *t, bool bidi)
{
    struct flood *f = app;
    if (bidi)
        f->blocked_bidi = false;
    else
        f->blocked_uni = false;
    if (f->kind == FLOOD_STREAMS) open_streams(f);
}

static void ev_writable(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    struct flood *f = app;
    if (f->kind == FLOOD_ANNOUNCES && sid == f->announce_sid) announce_more(f);
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct flood *f = app;
    f->t = NULL;
    if (f->status < 0) {
        printf("session closed (code %llu: %s) after %s %llu\n", (unsigned long long)code,
               reason ? reason : "", f->name, (unsigned long long)f->count);
        fflush(stdout);
        stop(f, 3);
    }
}

static const struct moq_transport_events events = {
    .stream_data = ev_data,
    .stream_reset = ev_reaction,
    .stream_stopped = ev_reaction,
    .stream_writable = ev_writable,
    .streams_available = ev_streams_available,
    .closed = ev_closed,
};

static void send_setup(struct flood *f)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_setup setup = {0};
    int64_t sid;
    if (moq_encode_stream_type(&b, MOQ_UNI_SETUP) == 0 && moq_encode_setup(&b, f->v, &setup) == 0 &&
        moq_transport_open(f->t, false, &sid) == 0)
        moq_transport_write_bytes(f->t, sid, b.data, b.len, true);
    moq_buf_free(&b);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct flood *f = w->data;
    if (!f->t) return;
    if (f->kind == FLOOD_DATAGRAMS && f->subscribed) send_datagrams(f);
    if (f->kind == FLOOD_ANNOUNCES && f->announce_sid >= 0) announce_more(f);
}

static void on_connect(void *ctx, moq_transport *t, int err, const char *reason)
{
    struct flood *f = ctx;
    if (!t) {
        printf("connect failed: %s\n", reason ? reason : moq_strerror(err));
        stop(f, 2);
        return;
    }
    f->t = t;
    moq_transport_attach(t, &events, f);
    if (f->v == MOQ_LITE_05) send_setup(f);
    printf("connected\n");
    fflush(stdout);
    if (f->kind == FLOOD_STREAMS) open_streams(f);
    ev_timer_start(f->loop, &f->tick);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct flood *f = w->data;
    printf("summary: %s %llu, %llu streams reset or stopped by the relay\n", f->name,
           (unsigned long long)f->count, (unsigned long long)f->reactions);
    fflush(stdout);
    stop(f, 0);
}

static int tls_setup(void *ctx, gnutls_session_t s, const char *host)
{
    struct flood *f = ctx;
    return moq_tls_client_setup_session(f->tls, s, host);
}

static int parse_case(struct flood *f, const char *name)
{
    static const struct {
        const char *name;
        enum flood_case kind;
        uint64_t step;
    } cases[] = {
        {"streams", FLOOD_STREAMS, 1000},
        {"datagrams", FLOOD_DATAGRAMS, 1000},
        {"announces", FLOOD_ANNOUNCES, 10000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(name, cases[i].name) != 0) continue;
        f->name = cases[i].name;
        f->kind = cases[i].kind;
        f->step = cases[i].step;
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *fp = NULL, *version = "05", *name = NULL;
    struct flood f = {.announce_sid = -1, .broadcast = "flood", .status = -1};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--fingerprint") == 0)
            fp = argv[i + 1];
        else if (strcmp(argv[i], "--version") == 0)
            version = argv[i + 1];
        else if (strcmp(argv[i], "--case") == 0)
            name = argv[i + 1];
        else if (strcmp(argv[i], "--broadcast") == 0)
            f.broadcast = argv[i + 1];
    }
    moq_url u;
    if (!url || !fp || !name || parse_case(&f, name) < 0 || moq_url_parse(url, &u) < 0) {
        fprintf(stderr, "usage: flood_peer --url moql://HOST:PORT --fingerprint HEX "
                        "--case streams|datagrams|announces [--version 05|04|03] "
                        "[--broadcast PATH]\n");
        return 2;
    }
    moq_log_set_level(MOQ_LOG_WARN);
    f.v = strcmp(version, "03") == 0   ? MOQ_LITE_03
          : strcmp(version, "04") == 0 ? MOQ_LITE_04
                                       : MOQ_LITE_05;
    char alpn_buf[16];
    snprintf(alpn_buf, sizeof(alpn_buf), "moq-lite-%s", version);
    const char *alpn[] = {alpn_buf};
    const char *pins[] = {fp};
    moq_tls_client_config tc = {.fingerprints = pins, .n_fingerprints = 1};
    char err[256];
    if (make_group_chunk(&f) < 0 || moq_tls_client_new(&tc, &f.tls, err, sizeof(err)) < 0) {
        fprintf(stderr, "setup failed\n");
        return 2;
    }
    f.loop = ev_default_loop(0);
    ev_timer_init(&f.tick, on_tick, 0.001, 0.001);
    f.tick.data = &f;
    ev_signal_init(&f.sigterm, on_signal, SIGTERM);
    ev_signal_init(&f.sigint, on_signal, SIGINT);
    f.sigterm.data = f.sigint.data = &f;
    ev_signal_start(f.loop, &f.sigterm);
    ev_signal_start(f.loop, &f.sigint);
    struct moq_quic_client_config qc = {
        .host = u.host,
        .port = u.port,
        .alpn = alpn,
        .alpn_count = 1,
        .tls_setup = tls_setup,
        .tls_ctx = &f,
    };
    int rv = moq_quic_connect(f.loop, &qc, on_connect, &f, NULL);
    if (rv < 0) {
        fprintf(stderr, "connect: %s\n", moq_strerror(rv));
        return 2;
    }
    ev_run(f.loop, 0);
    moq_tls_client_free(f.tls);
    moq_chunk_unref(f.group_chunk);
    moq_url_free(&u);
    for (size_t i = 0; i < f.nrx; i++)
        moq_buf_free(&f.rx[i].buf);
    return f.status < 0 ? 1 : f.status;
}
