/*
 * qmux cross-check peer: our server session on stdin/stdout, for crosscheck.mjs, which drives
 * the published @moq/qmux client against it.
 *
 * Channel framing on both pipes: u32 big-endian length, then one WebSocket binary message.
 * A length with the top bit set is a WebSocket Close instead: u16 code, then the reason.
 *
 * The application is an echo server:
 * - a client bidi stream is echoed back as it arrives and finished when the client finishes;
 *   one whose bytes are "cmd:close" makes the server close the session (7, "done");
 * - a client uni stream is answered on a new server uni stream: "echo:" + its bytes;
 * - a client reset answers "reset:<code>", a STOP_SENDING answers "stopped:<code>";
 * - datagrams are echoed; the server opens a uni stream "hello" as soon as it can.
 * Results go to stderr as lines for the script: "measured rtt <us>" once QX_PING measured a
 * round trip, and at the end "rtt <us>" and "closed <code> <reason>".
 * Built by tests/CMakeLists.txt as qmux_crosscheck_peer.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qmux/qmux.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

typedef struct sstate {
    int64_t sid;
    bool bidi;
    char *buf;
    size_t len, cap;
    struct sstate *next;
} sstate;

typedef struct reply {
    char *text;
    struct reply *next;
} reply;

static moq_qmux *Q;
static moq_transport *T;
static bool wake_flag, closed_out, finished;
static reply *pending_head, *pending_tail;
static sstate *all_streams;

static void die(const char *what)
{
    fprintf(stderr, "peer: %s\n", what);
    exit(2);
}

static void put_all(const void *p, size_t n)
{
    if (fwrite(p, 1, n, stdout) != n) die("stdout write failed");
}

static int io_send(void *io, const moq_slice *v, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += v[i].len;
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    put_all(hdr, 4);
    for (size_t i = 0; i < n; i++)
        put_all(v[i].chunk->data + v[i].off, v[i].len);
    return 0;
}

static size_t io_queued(void *io)
{
    return 0;
}

static void io_close(void *io, uint16_t code, const char *reason)
{
    size_t rlen = strlen(reason);
    uint32_t len = 0x80000000u | (uint32_t)(2 + rlen);
    uint8_t hdr[6] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len,         (uint8_t)(code >> 8), (uint8_t)code};
    put_all(hdr, 6);
    put_all(reason, rlen);
    fflush(stdout);
    closed_out = true;
}

static void io_wake(void *io)
{
    wake_flag = true;
}

static void send_reply_now_or_later(const char *text)
{
    int64_t sid;
    if (!pending_head && moq_transport_open(T, false, &sid) == 0) {
        moq_transport_write_bytes(T, sid, text, strlen(text), true);
        return;
    }
    reply *r = calloc(1, sizeof(*r));
    r->text = strdup(text);
    if (pending_tail)
        pending_tail->next = r;
    else
        pending_head = r;
    pending_tail = r;
}

static void flush_replies(void)
{
    int64_t sid;
    while (pending_head && moq_transport_open(T, false, &sid) == 0) {
        reply *r = pending_head;
        pending_head = r->next;
        if (!pending_head) pending_tail = NULL;
        moq_transport_write_bytes(T, sid, r->text, strlen(r->text), true);
        free(r->text);
        free(r);
    }
}

static void ev_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    sstate *s = calloc(1, sizeof(*s));
    s->sid = sid;
    s->bidi = bidi;
    s->next = all_streams;
    all_streams = s;
    t->ops->set_stream_ctx(t, sid, s);
}

static void ev_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                    size_t len, bool fin)
{
    sstate *s = sctx;
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2 + 64;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    if (s->bidi) {
        if (fin && s->len == 9 && memcmp(s->buf, "cmd:close", 9) == 0) {
            moq_transport_close(t, 7, "done");
            return;
        }
        if (len || fin) moq_transport_write_bytes(t, sid, data, len, fin);
        return;
    }
    if (fin) {
        char *text = malloc(s->len + 6);
        memcpy(text, "echo:", 5);
        memcpy(text + 5, s->buf, s->len);
        text[s->len + 5] = '\0';
        send_reply_now_or_later(text);
        free(text);
    }
}

static void ev_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    char text[64];
    snprintf(text, sizeof(text), "reset:%llu", (unsigned long long)code);
    send_reply_now_or_later(text);
}

static void ev_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    char text[64];
    snprintf(text, sizeof(text), "stopped:%llu", (unsigned long long)code);
    send_reply_now_or_later(text);
}

static void ev_stream_closed(void *app, moq_transport *t, int64_t sid, void *sctx) {}

static void ev_available(void *app, moq_transport *t, bool bidi)
{
    if (!bidi) flush_replies();
}

static void ev_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    t->ops->send_datagram(t, data, len);
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct moq_transport_stats st;
    t->ops->stats(t, &st);
    fprintf(stderr, "rtt %llu\n", (unsigned long long)st.rtt_us);
    fprintf(stderr, "closed %llu %s\n", (unsigned long long)code, reason);
}

static const struct moq_transport_events events = {
    .stream_opened = ev_opened,
    .stream_data = ev_data,
    .stream_reset = ev_reset,
    .stream_stopped = ev_stopped,
    .stream_closed = ev_stream_closed,
    .streams_available = ev_available,
    .datagram = ev_datagram,
    .closed = ev_closed,
};

/* The script waits for this line instead of waiting for a ping to have happened. */
static void report_rtt_once(void)
{
    static bool reported;
    struct moq_transport_stats st;
    if (reported) return;
    T->ops->stats(T, &st);
    if (st.rtt_us == 0) return;
    reported = true;
    fprintf(stderr, "measured rtt %llu\n", (unsigned long long)st.rtt_us);
}

static void result(int rv)
{
    if (rv == MOQ_ERR_CLOSED) finished = true;
}

int main(int argc, char **argv)
{
    moq_log_configure(getenv("PEER_LOG") ? getenv("PEER_LOG") : "warn");
    struct moq_qmux_selection sel;
    const char *sub = argc > 1 ? argv[1] : "qmux-02.moq-lite-05";
    if (moq_qmux_parse_subprotocol(sub, strlen(sub), &sel) < 0) die("bad subprotocol");
    static const struct moq_qmux_io io = {io_send, io_queued, io_close, io_wake};
    struct moq_qmux_init init = {
        .wire = sel.wire, .protocol = sel.protocol, .path = "/", .io = &io, .peer = "node"};
    Q = moq_qmux_new(&init, moq_now_us());
    T = moq_qmux_transport(Q);
    moq_transport_attach(T, &events, NULL);
    send_reply_now_or_later("hello");
    result(moq_qmux_process(Q, moq_now_us()));
    fflush(stdout);

    static uint8_t in[1 << 20];
    size_t have = 0;
    bool eof = false;
    while (!finished) {
        uint64_t now = moq_now_us();
        uint64_t deadline = moq_qmux_next_deadline(Q);
        int timeout = deadline == UINT64_MAX ? 1000
                      : deadline <= now      ? 0
                                             : (int)((deadline - now) / 1000 + 1);
        struct pollfd pfd = {0, POLLIN, 0};
        int n = eof ? 0 : poll(&pfd, 1, timeout);
        if (n < 0 && errno != EINTR) die("poll");
        if (n > 0) {
            ssize_t r = read(0, in + have, sizeof(in) - have);
            if (r < 0 && errno != EINTR) die("read");
            if (r == 0) eof = true;
            if (r > 0) have += (size_t)r;
        }
        size_t pos = 0;
        while (!finished && have - pos >= 4) {
            uint32_t len = (uint32_t)in[pos] << 24 | (uint32_t)in[pos + 1] << 16 |
                           (uint32_t)in[pos + 2] << 8 | in[pos + 3];
            uint32_t body = len & 0x7fffffff;
            if (body > sizeof(in) - 4) die("message too large");
            if (have - pos - 4 < body) break;
            const uint8_t *p = in + pos + 4;
            if (len & 0x80000000u) {
                char reason[128] = "";
                uint16_t code = body >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 1005;
                if (body > 2) snprintf(reason, sizeof(reason), "%.*s", (int)(body - 2), p + 2);
                result(moq_qmux_on_channel_closed(Q, code, reason));
            } else {
                result(moq_qmux_on_record(Q, p, body, moq_now_us()));
            }
            pos += 4 + body;
        }
        memmove(in, in + pos, have - pos);
        have -= pos;
        if (eof && !finished) result(moq_qmux_on_channel_closed(Q, 1006, "eof"));
        now = moq_now_us();
        if (!finished && moq_qmux_next_deadline(Q) <= now) result(moq_qmux_tick(Q, now));
        if (!finished && wake_flag) {
            wake_flag = false;
            result(moq_qmux_process(Q, now));
        }
        if (!finished) report_rtt_once();
        fflush(stdout);
    }
    moq_qmux_free(Q);
    while (all_streams) {
        sstate *s = all_streams;
        all_streams = s->next;
        free(s->buf);
        free(s);
    }
    while (pending_head) {
        reply *r = pending_head;
        pending_head = r->next;
        free(r->text);
        free(r);
    }
    fflush(stdout);
    fprintf(stderr, "finished\n");
    return closed_out ? 0 : 0;
}
