/*
 * garbage_peer - a raw QUIC moq-lite client that sends malformed input to a relay and
 * reports how the relay contained it. Built on src/quic directly (no session engine), so
 * it can say things the engine never would.
 *
 *   garbage_peer --url moql://host:port --fingerprint HEX --version 05|04|03 --case NAME
 *                [--broadcast PATH]
 *
 * Cases (each opens one offending stream unless noted):
 *   bad-bidi-type       a bidi stream of an unknown type
 *   bad-uni-type        a uni stream of an unknown type
 *   oversized-control   an ANNOUNCE_REQUEST claiming 1 MiB (over the control limit)
 *   truncated-control   a SUBSCRIBE shorter than its size prefix, then FIN
 *   malformed-control   a SUBSCRIBE whose body does not parse
 *   unknown-group       a GROUP stream for a subscription the relay never made
 *   bad-setup           (05) a SETUP whose parameters do not parse: the session is closed
 *   partial-flood       2000 bidi streams, each with a SUBSCRIBE cut short at 60 KB: the
 *                       relay must bound what it buffers for one session
 *   frame-too-large     announce --broadcast like a publisher, wait for the relay's
 *                       SUBSCRIBE (start a subscriber), answer with a GROUP whose first
 *                       frame claims 48 MiB
 *   announce-flood      answer the relay's ANNOUNCE_REQUEST with 10001 broadcasts under
 *                       --broadcast, one more than one session may announce
 *
 * Prints "contained: stream reset (code N)", "contained: stream stopped (code N)" or
 * "contained: session closed (code N ...)" and exits 0 when the relay reacted, or prints
 * "not contained: ..." and exits 1 after 10 s without a reaction.
 */
#include <stdarg.h>
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

#define MAX_STREAMS 32

struct rx_stream {
    int64_t sid;
    moq_buf buf;
    bool handled;
};

struct peer {
    struct ev_loop *loop;
    moq_tls_client *tls;
    moq_transport *t;
    const char *name;
    moq_version v;
    const char *broadcast;
    int64_t target;  /* the offending stream, -1 until opened */
    bool any_stream; /* a reaction on any of our streams counts */
    bool done;
    int status;
    struct rx_stream rx[MAX_STREAMS];
    size_t nrx;
    ev_timer timeout;
};

static void finish(struct peer *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct peer *p, int status, const char *fmt, ...)
{
    if (p->done) return;
    p->done = true;
    p->status = status;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    ev_timer_stop(p->loop, &p->timeout);
    if (p->t) moq_transport_close(p->t, 0, "done");
}

static int open_and_write(struct peer *p, bool bidi, const moq_buf *b, bool fin, int64_t *sid)
{
    int rv = moq_transport_open(p->t, bidi, sid);
    if (rv == 0) rv = moq_transport_write_bytes(p->t, *sid, b->data, b->len, fin);
    return rv;
}

static void send_setup(struct peer *p)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_setup setup = {0};
    int64_t sid;
    if (moq_encode_stream_type(&b, MOQ_UNI_SETUP) == 0 && moq_encode_setup(&b, p->v, &setup) == 0)
        open_and_write(p, false, &b, true, &sid);
    moq_buf_free(&b);
}

/* ---------------------------------------------------------------- the cases */

static void put_varint(moq_buf *b, uint64_t v)
{
    moq_buf_put_varint(b, v);
}

/* Many streams, each holding an incomplete control message; one shared chunk is written to
 * all of them so this side stays small. The first stream the relay resets or stops counts
 * as the reaction (as does closing the session). */
static int partial_flood(struct peer *p)
{
    enum { STREAMS = 2000, BODY = 60000 };
    moq_chunk *c = moq_chunk_new(BODY + 16);
    if (!c) return -1;
    uint8_t *w = c->data;
    w = moq_varint_put(w, MOQ_BIDI_SUBSCRIBE);
    w = moq_varint_put(w, BODY + 100);
    memset(w, 'x', BODY);
    c->len = (size_t)(w - c->data) + BODY;
    int opened = 0;
    for (int i = 0; i < STREAMS; i++) {
        int64_t sid;
        if (moq_transport_open(p->t, true, &sid) < 0) break;
        moq_slice v = {c, 0, c->len};
        if (moq_transport_write(p->t, sid, &v, 1, false) < 0) break;
        if (p->target < 0) p->target = sid;
        opened++;
    }
    moq_chunk_unref(c);
    printf("opened %d streams\n", opened);
    fflush(stdout);
    p->any_stream = true;
    return opened > 0 ? 0 : -1;
}

static int run_case(struct peer *p)
{
    moq_buf b;
    moq_buf_init(&b);
    bool bidi = true, fin = false;
    const char *n = p->name;
    if (strcmp(n, "bad-bidi-type") == 0) {
        put_varint(&b, 0x3fff);
        moq_buf_append(&b, "garbage", 7);
    } else if (strcmp(n, "bad-uni-type") == 0) {
        bidi = false;
        put_varint(&b, 0x17);
        moq_buf_append(&b, "garbage", 7);
    } else if (strcmp(n, "oversized-control") == 0) {
        put_varint(&b, MOQ_BIDI_ANNOUNCE);
        put_varint(&b, 1024 * 1024);
        static uint8_t junk[96 * 1024];
        memset(junk, 'x', sizeof(junk));
        moq_buf_append(&b, junk, sizeof(junk));
    } else if (strcmp(n, "truncated-control") == 0) {
        put_varint(&b, MOQ_BIDI_SUBSCRIBE);
        put_varint(&b, 40);
        moq_buf_append(&b,
                       "\x01\x03"
                       "abc",
                       5);
        fin = true;
    } else if (strcmp(n, "malformed-control") == 0) {
        put_varint(&b, MOQ_BIDI_SUBSCRIBE);
        put_varint(&b, 4);
        moq_buf_append(&b, "\x01\x3f\xff\xff", 4); /* a string longer than the message */
    } else if (strcmp(n, "unknown-group") == 0) {
        bidi = false;
        uint8_t hdr[MOQ_GROUP_HEADER_MAX];
        int len = moq_group_header_pack(hdr, true, 777, 0);
        moq_buf_append(&b, hdr, (size_t)len);
        put_varint(&b, 5);
        moq_buf_append(&b, "hello", 5);
    } else if (strcmp(n, "bad-setup") == 0) {
        bidi = false;
        put_varint(&b, MOQ_UNI_SETUP);
        put_varint(&b, 3);
        moq_buf_append(&b, "\x09\x01\x05", 3); /* nine parameters announced, one half there */
        fin = true;
    } else if (strcmp(n, "frame-too-large") == 0 || strcmp(n, "announce-flood") == 0) {
        moq_buf_free(&b);
        return 0; /* driven by the relay's streams */
    } else if (strcmp(n, "partial-flood") == 0) {
        moq_buf_free(&b);
        return partial_flood(p);
    } else {
        moq_buf_free(&b);
        return -1;
    }
    int rv = open_and_write(p, bidi, &b, fin, &p->target);
    moq_buf_free(&b);
    return rv;
}

/* frame-too-large: answer the relay's ANNOUNCE_REQUEST, then its SUBSCRIBE. */
static void publisher_stream(struct peer *p, struct rx_stream *rs)
{
    uint64_t type;
    int n = moq_varint_get(rs->buf.data, rs->buf.len, &type);
    if (n < 0) return;
    const uint8_t *body;
    size_t body_len;
    uint64_t mtype;
    int m = moq_msg_split(rs->buf.data + n, rs->buf.len - (size_t)n, false, 65536, &mtype, &body,
                          &body_len);
    if (m < 0) return;
    rs->handled = true;
    moq_buf out;
    moq_buf_init(&out);
    if (type == MOQ_BIDI_ANNOUNCE && strcmp(p->name, "announce-flood") == 0) {
        enum { FLOOD = 10001 };
        char path[256];
        for (int i = 0; i < FLOOD; i++) {
            struct moq_announce a = {0};
            a.status = MOQ_ANNOUNCE_STATUS_ACTIVE;
            int len = snprintf(path, sizeof(path), "%s/%d", p->broadcast, i);
            a.suffix = moq_str_make(path, (size_t)len);
            if (moq_encode_announce(&out, p->v, &a) < 0) break;
        }
        p->target = rs->sid;
        moq_transport_write_bytes(p->t, rs->sid, out.data, out.len, false);
        printf("announced %d broadcasts\n", FLOOD);
        fflush(stdout);
    } else if (type == MOQ_BIDI_ANNOUNCE) {
        struct moq_announce a = {0};
        a.status = MOQ_ANNOUNCE_STATUS_ACTIVE;
        a.suffix = moq_str_make(p->broadcast, strlen(p->broadcast));
        if (moq_encode_announce(&out, p->v, &a) == 0)
            moq_transport_write_bytes(p->t, rs->sid, out.data, out.len, false);
        printf("announced %s\n", p->broadcast);
        fflush(stdout);
    } else if (type == MOQ_BIDI_SUBSCRIBE) {
        uint8_t copy[4096];
        if (body_len > sizeof(copy)) goto out;
        memcpy(copy, body, body_len);
        struct moq_subscribe sub;
        if (moq_decode_subscribe(p->v, copy, body_len, &sub) < 0) goto out;
        printf("subscribed by the relay (id %llu)\n", (unsigned long long)sub.id);
        fflush(stdout);
        uint8_t hdr[MOQ_GROUP_HEADER_MAX];
        int len = moq_group_header_pack(hdr, true, sub.id, 0);
        moq_buf_append(&out, hdr, (size_t)len);
        moq_buf_put_varint(&out, 48ull * 1024 * 1024);
        static uint8_t junk[4096];
        moq_buf_append(&out, junk, sizeof(junk));
        if (moq_transport_open(p->t, false, &p->target) == 0)
            moq_transport_write_bytes(p->t, p->target, out.data, out.len, false);
    }
out:
    moq_buf_free(&out);
}

/* ---------------------------------------------------------------- transport events */

static struct rx_stream *rx_get(struct peer *p, int64_t sid)
{
    for (size_t i = 0; i < p->nrx; i++)
        if (p->rx[i].sid == sid) return &p->rx[i];
    if (p->nrx == MAX_STREAMS) return NULL;
    struct rx_stream *rs = &p->rx[p->nrx++];
    rs->sid = sid;
    moq_buf_init(&rs->buf);
    return rs;
}

static void ev_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                    size_t len, bool fin)
{
    struct peer *p = app;
    if (p->done ||
        (strcmp(p->name, "frame-too-large") != 0 && strcmp(p->name, "announce-flood") != 0))
        return;
    if (!moq_stream_is_bidi(sid)) return;
    struct rx_stream *rs = rx_get(p, sid);
    if (!rs || rs->handled) return;
    moq_buf_append(&rs->buf, data, len);
    publisher_stream(p, rs);
}

static void ev_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct peer *p = app;
    if (sid == p->target)
        finish(p, 0, "contained: stream reset (code %llu)", (unsigned long long)code);
}

static void ev_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct peer *p = app;
    if (sid == p->target || (p->any_stream && moq_stream_is_bidi(sid)))
        finish(p, 0, "contained: stream stopped (code %llu)", (unsigned long long)code);
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct peer *p = app;
    p->t = NULL;
    finish(p, 0, "contained: session closed (code %llu: %s)", (unsigned long long)code,
           reason ? reason : "");
    for (size_t i = 0; i < p->nrx; i++)
        moq_buf_free(&p->rx[i].buf);
    p->nrx = 0;
}

static const struct moq_transport_events events = {
    .stream_data = ev_data,
    .stream_reset = ev_reset,
    .stream_stopped = ev_stopped,
    .closed = ev_closed,
};

static void on_connect(void *ctx, moq_transport *t, int err, const char *reason)
{
    struct peer *p = ctx;
    if (!t) {
        finish(p, 2, "connect failed: %s", reason ? reason : moq_strerror(err));
        ev_break(p->loop, EVBREAK_ALL);
        return;
    }
    p->t = t;
    moq_transport_attach(t, &events, p);
    if (p->v == MOQ_LITE_05 && strcmp(p->name, "bad-setup") != 0) send_setup(p);
    if (run_case(p) < 0) finish(p, 2, "cannot run case %s", p->name);
}

static int tls_setup(void *ctx, gnutls_session_t s, const char *host)
{
    struct peer *p = ctx;
    return moq_tls_client_setup_session(p->tls, s, host);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct peer *p = w->data;
    finish(p, 1, "not contained: no reaction from the relay to %s", p->name);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *fp = NULL, *version = "05";
    struct peer p = {.target = -1, .broadcast = "garbage"};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--fingerprint") == 0)
            fp = argv[i + 1];
        else if (strcmp(argv[i], "--version") == 0)
            version = argv[i + 1];
        else if (strcmp(argv[i], "--case") == 0)
            p.name = argv[i + 1];
        else if (strcmp(argv[i], "--broadcast") == 0)
            p.broadcast = argv[i + 1];
    }
    moq_url u;
    if (!url || !fp || !p.name || moq_url_parse(url, &u) < 0) {
        fprintf(stderr, "usage: garbage_peer --url moql://HOST:PORT --fingerprint HEX "
                        "--version 05|04|03 --case NAME [--broadcast PATH]\n");
        return 2;
    }
    moq_log_set_level(MOQ_LOG_WARN);
    p.v = strcmp(version, "03") == 0   ? MOQ_LITE_03
          : strcmp(version, "04") == 0 ? MOQ_LITE_04
                                       : MOQ_LITE_05;
    char alpn_buf[16];
    snprintf(alpn_buf, sizeof(alpn_buf), "moq-lite-%s", version);
    const char *alpn[] = {alpn_buf};
    const char *pins[] = {fp};
    moq_tls_client_config tc = {.fingerprints = pins, .n_fingerprints = 1};
    char err[256];
    if (moq_tls_client_new(&tc, &p.tls, err, sizeof(err)) < 0) {
        fprintf(stderr, "tls: %s\n", err);
        return 2;
    }
    p.loop = ev_default_loop(0);
    struct moq_quic_client_config qc = {
        .host = u.host,
        .port = u.port,
        .alpn = alpn,
        .alpn_count = 1,
        .tls_setup = tls_setup,
        .tls_ctx = &p,
    };
    ev_timer_init(&p.timeout, timeout_cb, 10., 0.);
    p.timeout.data = &p;
    ev_timer_start(p.loop, &p.timeout);
    int rv = moq_quic_connect(p.loop, &qc, on_connect, &p, NULL);
    if (rv < 0) {
        fprintf(stderr, "connect: %s\n", moq_strerror(rv));
        return 2;
    }
    ev_run(p.loop, 0);
    moq_tls_client_free(p.tls);
    moq_url_free(&u);
    for (size_t i = 0; i < p.nrx; i++)
        moq_buf_free(&p.rx[i].buf);
    return p.status;
}
