/*
 * Unit tests for the qmux session: a client and a server session wired back to back through
 * an in-memory record channel (with backpressure), plus raw-peer tests that feed hand-made
 * records to a server session. Every record that crosses the channel is decoded again and
 * checked against the receiver's max_record_size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qmux/qmux.h"
#include "util/err.h"
#include "util/log.h"
#include "util/varint.h"

/* ---- harness ----------------------------------------------------------------------------- */

#define MAX_STREAMS_TRACKED 4096

typedef struct app_stream {
    int64_t sid;
    bool bidi;
    bool opened_by_peer;
    uint8_t *buf;
    size_t len, cap;
    bool fin;
    bool reset;
    uint64_t reset_code;
    bool stopped;
    uint64_t stop_code;
    bool closed;
    int writable;
} app_stream;

typedef struct msg {
    uint8_t *data;
    size_t len;
} msg;

typedef struct end end;
struct end {
    const char *name;
    moq_qmux *q;
    moq_transport *t;
    end *peer;
    bool finished; /* a session call returned MOQ_ERR_CLOSED */
    /* channel */
    msg *out;
    size_t out_head, out_len, out_cap, out_bytes;
    size_t extra_queued; /* pretend the socket holds this much more */
    bool io_closed;
    bool close_signalled; /* peer told about our Close */
    uint16_t ws_code;
    char ws_reason[128];
    int wakes;
    size_t records_sent;
    size_t record_limit; /* the receiver's limit: every record we send must fit */
    bool one_frame_per_record;
    /* frames seen in records this end sent, by kind */
    size_t frames_sent[32];
    bool keep_records;
    msg *log;
    size_t log_len, log_cap;
    /* connection flow-control audit: stream bytes we sent vs. the credit delivered to us */
    uint64_t stream_bytes_out;
    uint64_t credit_in;
    /* stream-frame order (ids) for priority tests */
    int64_t order[4096];
    size_t order_len;
    /* application */
    app_stream streams[MAX_STREAMS_TRACKED];
    size_t nstreams;
    bool closed;
    uint64_t closed_code;
    char closed_reason[256];
    int avail[2];
    int datagrams;
    uint8_t dgram[16384];
    size_t dgram_len;
    int events_in_downcall; /* events seen while the test was inside a downcall */
    bool in_downcall;
    bool echo;         /* echo data back on peer bidi streams, fin when peer fins */
    bool stop_on_open; /* stop every peer stream as it opens */
    uint64_t now;
};

static void note_event(end *e)
{
    if (e->in_downcall) e->events_in_downcall++;
}

static app_stream *find_stream(end *e, int64_t sid)
{
    for (size_t i = 0; i < e->nstreams; i++)
        if (e->streams[i].sid == sid) return &e->streams[i];
    return NULL;
}

static app_stream *add_stream(end *e, int64_t sid, bool bidi, bool by_peer)
{
    assert_true(e->nstreams < MAX_STREAMS_TRACKED);
    app_stream *s = &e->streams[e->nstreams++];
    memset(s, 0, sizeof(*s));
    s->sid = sid;
    s->bidi = bidi;
    s->opened_by_peer = by_peer;
    return s;
}

static void ev_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    end *e = app;
    note_event(e);
    assert_null(find_stream(e, sid));
    app_stream *s = add_stream(e, sid, bidi, true);
    t->ops->set_stream_ctx(t, sid, s);
    if (e->stop_on_open) assert_int_equal(t->ops->stop(t, sid, 77), 0);
}

static void ev_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                    size_t len, bool fin)
{
    end *e = app;
    note_event(e);
    app_stream *s = sctx;
    assert_non_null(s);
    assert_true(s->sid == sid);
    assert_false(s->fin);
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2 + 64;
        s->buf = realloc(s->buf, s->cap);
    }
    if (len) memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->fin = fin;
    if (e->echo && s->bidi && s->opened_by_peer) {
        moq_transport_write_bytes(t, sid, data, len, fin);
    }
}

static void ev_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    end *e = app;
    note_event(e);
    app_stream *s = sctx;
    assert_non_null(s);
    s->reset = true;
    s->reset_code = code;
}

static void ev_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    end *e = app;
    note_event(e);
    app_stream *s = sctx;
    assert_non_null(s);
    s->stopped = true;
    s->stop_code = code;
}

static void ev_closed_stream(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    end *e = app;
    note_event(e);
    app_stream *s = sctx;
    assert_non_null(s);
    assert_false(s->closed);
    s->closed = true;
}

static void ev_writable(void *app, moq_transport *t, int64_t sid, void *sctx)
{
    end *e = app;
    note_event(e);
    app_stream *s = sctx;
    if (s) s->writable++;
}

static void ev_available(void *app, moq_transport *t, bool bidi)
{
    end *e = app;
    note_event(e);
    e->avail[bidi ? 0 : 1]++;
}

static void ev_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    end *e = app;
    note_event(e);
    e->datagrams++;
    assert_true(len <= sizeof(e->dgram));
    memcpy(e->dgram, data, len);
    e->dgram_len = len;
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    end *e = app;
    note_event(e);
    assert_false(e->closed);
    e->closed = true;
    e->closed_code = code;
    snprintf(e->closed_reason, sizeof(e->closed_reason), "%s", reason);
}

static const struct moq_transport_events app_events = {
    .stream_opened = ev_opened,
    .stream_data = ev_data,
    .stream_reset = ev_reset,
    .stream_stopped = ev_stopped,
    .stream_closed = ev_closed_stream,
    .stream_writable = ev_writable,
    .streams_available = ev_available,
    .datagram = ev_datagram,
    .closed = ev_closed,
};

/* Decode a record we are about to deliver: the encoder's output must be well formed. */
static void inspect_record(end *e, const uint8_t *p, size_t len)
{
    assert_true(len <= e->record_limit);
    size_t pos = 0;
    int frames = 0;
    while (pos < len) {
        moq_qmux_frame f;
        const char *why = NULL;
        int n = moq_qmux_frame_decode(p + pos, len - pos, &f, &why);
        if (n < 0) fail_msg("%s sent a malformed record: %s", e->name, why);
        e->frames_sent[f.kind]++;
        if (f.kind == MOQ_QMUX_STREAM && e->order_len < 4096)
            e->order[e->order_len++] = (int64_t)f.stream_id;
        if (f.kind == MOQ_QMUX_STREAM) {
            assert_true(f.len <= MOQ_QMUX_MAX_STREAM_PAYLOAD);
            e->stream_bytes_out += f.len;
            if (e->stream_bytes_out > e->credit_in)
                fail_msg("%s sent %llu stream bytes with %llu credit", e->name,
                         (unsigned long long)e->stream_bytes_out, (unsigned long long)e->credit_in);
        }
        pos += (size_t)n;
        frames++;
    }
    if (e->one_frame_per_record) assert_true(frames <= 1);
}

static int io_send(void *io, const moq_slice *v, size_t n)
{
    end *e = io;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(v[i].chunk);
        assert_true(v[i].off + v[i].len <= v[i].chunk->len);
        len += v[i].len;
    }
    uint8_t *data = malloc(len ? len : 1);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(data + pos, v[i].chunk->data + v[i].off, v[i].len);
        pos += v[i].len;
    }
    inspect_record(e, data, len);
    if (e->keep_records) {
        if (e->log_len == e->log_cap) {
            e->log_cap = e->log_cap ? e->log_cap * 2 : 16;
            e->log = realloc(e->log, e->log_cap * sizeof(*e->log));
        }
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, data, len);
        e->log[e->log_len++] = (msg){copy, len};
    }
    if (e->out_head + e->out_len == e->out_cap) {
        if (e->out_head > 0) {
            memmove(e->out, e->out + e->out_head, e->out_len * sizeof(*e->out));
            e->out_head = 0;
        } else {
            e->out_cap = e->out_cap ? e->out_cap * 2 : 64;
            e->out = realloc(e->out, e->out_cap * sizeof(*e->out));
        }
    }
    e->out[e->out_head + e->out_len++] = (msg){data, len};
    e->out_bytes += len;
    e->records_sent++;
    return 0;
}

static size_t io_queued(void *io)
{
    end *e = io;
    return e->out_bytes + e->extra_queued;
}

static void io_close(void *io, uint16_t code, const char *reason)
{
    end *e = io;
    assert_false(e->io_closed);
    e->io_closed = true;
    e->ws_code = code;
    snprintf(e->ws_reason, sizeof(e->ws_reason), "%s", reason);
}

static void io_wake(void *io)
{
    end *e = io;
    e->wakes++;
}

static const struct moq_qmux_io test_io = {io_send, io_queued, io_close, io_wake};

static void call(end *e, int rv)
{
    if (rv == MOQ_ERR_CLOSED)
        e->finished = true;
    else
        assert_int_equal(rv, 0);
}

static void end_init(end *e, const char *name, bool client, enum moq_qmux_wire wire,
                     const struct moq_qmux_config *cfg, uint64_t now)
{
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->now = now;
    e->record_limit = wire == MOQ_QMUX_00 ? MOQ_QMUX_00_MAX_FRAME_SIZE : 16382;
    e->one_frame_per_record = wire == MOQ_QMUX_00;
    struct moq_qmux_init init = {
        .wire = wire,
        .protocol = "moq-lite-05",
        .path = "/room?jwt=x",
        .authority = "relay.example:443",
        .peer = client ? "server" : "127.0.0.1:5555",
        .is_client = client,
        .config = cfg,
        .io = &test_io,
        .io_ctx = e,
    };
    e->q = moq_qmux_new(&init, now);
    assert_non_null(e->q);
    e->t = moq_qmux_transport(e->q);
    moq_transport_attach(e->t, &app_events, e);
}

static void end_free(end *e)
{
    moq_qmux_free(e->q);
    e->q = NULL;
    for (size_t i = e->out_head; i < e->out_head + e->out_len; i++)
        free(e->out[i].data);
    free(e->out);
    for (size_t i = 0; i < e->log_len; i++)
        free(e->log[i].data);
    free(e->log);
    for (size_t i = 0; i < e->nstreams; i++)
        free(e->streams[i].buf);
}

/* The receiver learns the connection credit this record grants. */
static void note_credit(end *to, const uint8_t *p, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        moq_qmux_frame f;
        int n = moq_qmux_frame_decode(p + pos, len - pos, &f, NULL);
        if (n < 0) return;
        if (f.kind == MOQ_QMUX_TRANSPORT_PARAMETERS) to->credit_in = f.params.initial_max_data;
        if (f.kind == MOQ_QMUX_MAX_DATA && f.value > to->credit_in) to->credit_in = f.value;
        pos += (size_t)n;
    }
}

/* Deliver one queued record of `from` to its peer. */
static bool deliver_one(end *from)
{
    if (from->out_len == 0) return false;
    msg m = from->out[from->out_head++];
    from->out_len--;
    from->out_bytes -= m.len;
    end *to = from->peer;
    if (to) note_credit(to, m.data, m.len);
    if (to && !to->finished) call(to, moq_qmux_on_record(to->q, m.data, m.len, to->now));
    free(m.data);
    if (!from->finished) call(from, moq_qmux_on_writable(from->q, from->now));
    return true;
}

static bool settle(end *e)
{
    bool did = false;
    if (e->wakes && !e->finished) {
        e->wakes = 0;
        call(e, moq_qmux_process(e->q, e->now));
        did = true;
    }
    if (e->io_closed && e->out_len == 0 && !e->close_signalled && e->peer) {
        e->close_signalled = true;
        if (!e->peer->finished)
            call(e->peer, moq_qmux_on_channel_closed(e->peer->q, e->ws_code, e->ws_reason));
        did = true;
    }
    return did;
}

static void pump(end *a, end *b)
{
    for (int i = 0; i < 10000000; i++) {
        bool did = settle(a);
        did = settle(b) || did;
        did = deliver_one(a) || did;
        did = deliver_one(b) || did;
        if (!did) return;
    }
    fail_msg("pump did not settle");
}

static void pair_init(end *c, end *s, enum moq_qmux_wire wire, const struct moq_qmux_config *ccfg,
                      const struct moq_qmux_config *scfg)
{
    end_init(c, "client", true, wire, ccfg, 1000000);
    end_init(s, "server", false, wire, scfg, 1000000);
    c->peer = s;
    s->peer = c;
    call(c, moq_qmux_process(c->q, c->now));
    call(s, moq_qmux_process(s->q, s->now));
}

static void pair_free(end *c, end *s)
{
    end_free(c);
    end_free(s);
}

static size_t chunks_at_start;

static int setup(void **state)
{
    chunks_at_start = moq_chunk_live_count();
    return 0;
}

static int teardown(void **state)
{
    /* no chunk outlives the sessions that held it */
    assert_int_equal(moq_chunk_live_count(), chunks_at_start);
    return 0;
}

static int write_bytes(end *e, int64_t sid, const void *data, size_t len, bool fin)
{
    e->in_downcall = true;
    int rv = moq_transport_write_bytes(e->t, sid, data, len, fin);
    e->in_downcall = false;
    return rv;
}

static int64_t open_stream(end *e, bool bidi)
{
    int64_t sid = -1;
    e->in_downcall = true;
    int rv = moq_transport_open(e->t, bidi, &sid);
    e->in_downcall = false;
    assert_int_equal(rv, 0);
    add_stream(e, sid, bidi, false);
    e->t->ops->set_stream_ctx(e->t, sid, find_stream(e, sid));
    return sid;
}

/* ---- handshake ------------------------------------------------------------------------------ */

static void params_gate_everything(void **state)
{
    end c, s;
    end_init(&c, "client", true, MOQ_QMUX_01, NULL, 5);
    end_init(&s, "server", false, MOQ_QMUX_01, NULL, 5);
    c.peer = &s;
    s.peer = &c;
    c.keep_records = s.keep_records = true;
    /* before any exchange no stream can be opened and nothing is sent */
    int64_t sid;
    assert_int_equal(moq_transport_open(c.t, true, &sid), MOQ_ERR_AGAIN);
    assert_int_equal(moq_transport_open(s.t, false, &sid), MOQ_ERR_AGAIN);
    assert_int_equal(s.t->ops->max_datagram(s.t), 0);
    assert_int_equal(c.records_sent + s.records_sent, 0);
    /* the first record of each side is QX_TRANSPORT_PARAMETERS */
    call(&s, moq_qmux_process(s.q, s.now));
    assert_int_equal(s.records_sent, 1);
    assert_memory_equal(s.log[0].data, "\xff\x51\x53\x30\x0d\x0a\x0d\x0a", 8);
    assert_int_equal(s.frames_sent[MOQ_QMUX_TRANSPORT_PARAMETERS], 1);
    /* the client receives the server's params: it still may not open (ours not sent yet is
     * irrelevant; it has the server's credit now) */
    deliver_one(&s);
    assert_int_equal(c.avail[0], 1); /* our earlier AGAIN is answered */
    assert_int_equal(moq_transport_open(c.t, true, &sid), 0);
    assert_int_equal(sid, 0);
    /* the server has not heard the client's params: still no credit */
    assert_int_equal(moq_transport_open(s.t, false, &sid), MOQ_ERR_AGAIN);
    pump(&c, &s);
    assert_int_equal(s.avail[1], 1);
    assert_int_equal(moq_transport_open(s.t, false, &sid), 0);
    assert_int_equal(sid, 3);
    assert_int_equal(moq_transport_open(s.t, true, &sid), 0);
    assert_int_equal(sid, 1);
    assert_int_equal(moq_transport_open(c.t, false, &sid), 0);
    assert_int_equal(sid, 2);
    assert_int_equal(moq_transport_open(c.t, true, &sid), 0);
    assert_int_equal(sid, 4);
    /* transport fields */
    assert_string_equal(s.t->protocol, "moq-lite-05");
    assert_string_equal(s.t->path, "/room?jwt=x");
    assert_string_equal(s.t->authority, "relay.example:443");
    assert_int_equal(s.t->kind, MOQ_TRANSPORT_WEBSOCKET);
    assert_false(s.t->is_client);
    assert_true(c.t->is_client);
    pair_free(&c, &s);
}

static void handshake_timeout(void **state)
{
    end s;
    end_init(&s, "server", false, MOQ_QMUX_02, NULL, 0);
    s.keep_records = true;
    call(&s, moq_qmux_process(s.q, 0));
    assert_true(moq_qmux_next_deadline(s.q) == 10000000);
    call(&s, moq_qmux_tick(s.q, 9999999));
    assert_false(s.closed);
    call(&s, moq_qmux_tick(s.q, 10000000));
    assert_true(s.finished && s.closed);
    assert_string_equal(s.closed_reason, "handshake timeout");
    assert_int_equal(s.ws_code, MOQ_QMUX_WS_GOING_AWAY);
    /* the last record is CONNECTION_CLOSE 0 "handshake timeout" */
    msg last = s.log[s.log_len - 1];
    moq_qmux_frame f;
    assert_true(moq_qmux_frame_decode(last.data, last.len, &f, NULL) > 0);
    assert_int_equal(f.kind, MOQ_QMUX_CONNECTION_CLOSE);
    assert_true(f.code == 0);
    assert_int_equal(f.len, strlen("handshake timeout"));
    end_free(&s);
}

/* ---- streams --------------------------------------------------------------------------------- */

static void bidi_and_uni_exact_bytes(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, NULL);
    pump(&c, &s);
    c.keep_records = s.keep_records = true;
    s.echo = true;

    int64_t b = open_stream(&c, true);
    assert_int_equal(b, 0);
    assert_int_equal(write_bytes(&c, b, "hello", 5, true), 0);
    assert_int_equal(c.events_in_downcall, 0);
    call(&c, moq_qmux_process(c.q, c.now));
    assert_int_equal(c.log_len, 1);
    assert_int_equal(c.log[0].len, 9);
    assert_memory_equal(c.log[0].data, "\x0f\x00\x00\x05hello", 9);
    pump(&c, &s);
    app_stream *ss = find_stream(&s, 0);
    assert_non_null(ss);
    assert_true(ss->bidi && ss->fin && ss->len == 5);
    assert_memory_equal(ss->buf, "hello", 5);
    app_stream *cs = find_stream(&c, 0);
    assert_true(cs->fin && cs->len == 5);
    assert_memory_equal(cs->buf, "hello", 5);
    /* both directions finished: both sides saw stream_closed */
    assert_true(ss->closed && cs->closed);

    /* server uni stream id 3: "ab", then FIN alone at offset 2 (the digest's bytes) */
    int64_t u = open_stream(&s, false);
    assert_int_equal(u, 3);
    size_t before = s.log_len;
    assert_int_equal(write_bytes(&s, u, "ab", 2, false), 0);
    call(&s, moq_qmux_process(s.q, s.now));
    assert_int_equal(write_bytes(&s, u, NULL, 0, true), 0);
    call(&s, moq_qmux_process(s.q, s.now));
    assert_int_equal(s.log_len, before + 2);
    assert_int_equal(s.log[before].len, 6);
    assert_memory_equal(s.log[before].data, "\x0e\x03\x00\x02\x61\x62", 6);
    assert_int_equal(s.log[before + 1].len, 4);
    assert_memory_equal(s.log[before + 1].data, "\x0f\x03\x02\x00", 4);
    pump(&c, &s);
    app_stream *cu = find_stream(&c, 3);
    assert_true(cu && !cu->bidi && cu->fin && cu->len == 2 && cu->closed);
    assert_true(find_stream(&s, 3)->closed);
    /* writes after FIN are refused, unknown streams are not found, uni is one-way */
    assert_int_equal(write_bytes(&s, u, "x", 1, false), MOQ_ERR_NOT_FOUND);
    int64_t u2 = open_stream(&c, false);
    assert_int_equal(write_bytes(&c, u2, "x", 1, true), 0);
    assert_int_equal(write_bytes(&c, u2, "y", 1, false), MOQ_ERR_CLOSED);
    assert_int_equal(c.t->ops->stop(c.t, u2, 1), MOQ_ERR_INVALID);
    pump(&c, &s);
    app_stream *su2 = find_stream(&s, u2);
    assert_int_equal(s.t->ops->reset(s.t, u2, 1), MOQ_ERR_NOT_FOUND); /* closed already */
    assert_true(su2->closed);
    assert_int_equal(c.events_in_downcall + s.events_in_downcall, 0);
    pair_free(&c, &s);
}

static void big_transfer_flow_control(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_02, NULL, NULL);
    pump(&c, &s);
    enum { TOTAL = 4 << 20, PIECE = 64 << 10 };
    int64_t u = open_stream(&c, false);
    moq_chunk *chunks[TOTAL / PIECE];
    for (int i = 0; i < TOTAL / PIECE; i++) {
        chunks[i] = moq_chunk_new(PIECE);
        for (int j = 0; j < PIECE; j++)
            chunks[i]->data[j] = (uint8_t)((i * PIECE + j) * 7 + 3);
        chunks[i]->len = PIECE;
        moq_slice sl = {chunks[i], 0, PIECE};
        assert_int_equal(moq_transport_write(c.t, u, &sl, 1, i == TOTAL / PIECE - 1), 0);
        /* write() took its own reference */
        assert_int_equal(atomic_load(&chunks[i]->refs), 2);
    }
    for (int i = 0; i < TOTAL / PIECE; i++)
        moq_chunk_unref(chunks[i]);
    assert_true(c.t->ops->unsent(c.t, u) == TOTAL);
    pump(&c, &s);
    app_stream *su = find_stream(&s, u);
    assert_non_null(su);
    assert_true(su->fin);
    assert_int_equal(su->len, TOTAL);
    for (size_t j = 0; j < TOTAL; j++)
        if (su->buf[j] != (uint8_t)(j * 7 + 3)) fail_msg("byte %zu differs", j);
    /* far more than the 4 MiB window's worth of credit had to be granted while it flowed */
    assert_true(s.frames_sent[MOQ_QMUX_MAX_DATA] >= 1);
    assert_true(s.frames_sent[MOQ_QMUX_MAX_STREAM_DATA] >= 3);
    assert_true(c.t->ops->unsent(c.t, u) == 0);
    struct moq_transport_stats st;
    c.t->ops->stats(c.t, &st);
    assert_true(st.bytes_sent == TOTAL);
    s.t->ops->stats(s.t, &st);
    assert_true(st.bytes_recv == TOTAL);
    assert_true(su->closed && find_stream(&c, u)->closed);
    pair_free(&c, &s);
}

static void small_windows_hold_the_sender(void **state)
{
    /* Windows far below what the sender has queued: it must wait for every MAX_DATA and
     * MAX_STREAM_DATA (a sender running past them gets closed for flow control). */
    struct moq_qmux_config scfg;
    moq_qmux_config_default(&scfg);
    scfg.max_data = 20000;
    scfg.max_stream_data_uni = 8000;
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, &scfg);
    pump(&c, &s);
    static uint8_t blob[100000];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 13);
    int64_t u[3];
    for (int i = 0; i < 3; i++) {
        u[i] = open_stream(&c, false);
        assert_int_equal(write_bytes(&c, u[i], blob, sizeof(blob), true), 0);
    }
    pump(&c, &s);
    assert_false(s.closed || c.closed);
    for (int i = 0; i < 3; i++) {
        app_stream *ss = find_stream(&s, u[i]);
        assert_true(ss->fin && ss->len == sizeof(blob));
        assert_memory_equal(ss->buf, blob, sizeof(blob));
    }
    /* every window's worth needed a grant: 300000 / 20000 and 100000 / 8000 per stream */
    assert_true(s.frames_sent[MOQ_QMUX_MAX_DATA] >= 300000 / 20000);
    assert_true(s.frames_sent[MOQ_QMUX_MAX_STREAM_DATA] >= 3 * (100000 / 8000));
    pair_free(&c, &s);
}

static void many_sequential_uni_streams(void **state)
{
    /* the server allows only 100 concurrent uni streams (like the JS client) */
    struct moq_qmux_config scfg;
    moq_qmux_config_default(&scfg);
    scfg.max_streams_uni = 100;
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, &scfg);
    pump(&c, &s);
    for (int i = 0; i < 1000; i++) {
        int64_t sid = -1;
        int rv = moq_transport_open(c.t, false, &sid);
        assert_int_equal(rv, 0); /* credit is always back by the time we need it */
        assert_int_equal(sid, 2 + 4 * i);
        add_stream(&c, sid, false, false);
        c.t->ops->set_stream_ctx(c.t, sid, find_stream(&c, sid));
        char text[16];
        int n = snprintf(text, sizeof(text), "group %d", i);
        assert_int_equal(moq_transport_write_bytes(c.t, sid, text, (size_t)n, true), 0);
        pump(&c, &s);
        app_stream *ss = find_stream(&s, sid);
        assert_true(ss && ss->fin && ss->closed && ss->len == (size_t)n);
        assert_memory_equal(ss->buf, text, (size_t)n);
    }
    assert_true(s.frames_sent[MOQ_QMUX_MAX_STREAMS_UNI] >= 9);
    /* the server never holds the closed streams */
    pair_free(&c, &s);
}

static void stream_limit_blocks_then_available(void **state)
{
    struct moq_qmux_config scfg;
    moq_qmux_config_default(&scfg);
    scfg.max_streams_bidi = 2;
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, &scfg);
    pump(&c, &s);
    int64_t a = open_stream(&c, true), b = open_stream(&c, true), x;
    assert_int_equal(moq_transport_open(c.t, true, &x), MOQ_ERR_AGAIN);
    assert_int_equal(write_bytes(&c, a, "1", 1, true), 0);
    assert_int_equal(write_bytes(&c, b, "2", 1, true), 0);
    pump(&c, &s);
    assert_int_equal(c.avail[0], 0); /* streams still half open: the server must finish them */
    assert_int_equal(write_bytes(&s, a, "r", 1, true), 0);
    assert_int_equal(write_bytes(&s, b, "r", 1, true), 0);
    pump(&c, &s);
    assert_int_equal(c.avail[0], 1);
    assert_int_equal(moq_transport_open(c.t, true, &x), 0);
    assert_int_equal(x, 8);
    pair_free(&c, &s);
}

static void priorities_and_round_robin(void **state)
{
    struct moq_qmux_config scfg;
    moq_qmux_config_default(&scfg);
    scfg.send_high_water = 1; /* one record in flight at a time */
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, &scfg);
    pump(&c, &s);
    int64_t lo = open_stream(&s, false), hi1 = open_stream(&s, false), hi2 = open_stream(&s, false);
    s.t->ops->set_priority(s.t, lo, 1);
    s.t->ops->set_priority(s.t, hi1, 5);
    s.t->ops->set_priority(s.t, hi2, 5);
    static uint8_t blob[40000];
    memset(blob, 'p', sizeof(blob));
    s.extra_queued = 1 << 30; /* the socket is full: everything queues */
    assert_int_equal(write_bytes(&s, lo, blob, sizeof(blob), true), 0);
    assert_int_equal(write_bytes(&s, hi1, blob, sizeof(blob), true), 0);
    assert_int_equal(write_bytes(&s, hi2, blob, sizeof(blob), true), 0);
    call(&s, moq_qmux_process(s.q, s.now));
    assert_int_equal(s.order_len, 0);
    s.extra_queued = 0;
    call(&s, moq_qmux_on_writable(s.q, s.now));
    pump(&c, &s);
    /* 40000 bytes = 16352 + 16352 + 7296 each: the two priority-5 streams alternate frame by
     * frame, and only then does the priority-1 stream get bytes (the tail of the last record,
     * then its own records) */
    assert_int_equal(s.order_len, 10);
    const int64_t want[] = {hi1, hi2, hi1, hi2, hi1, hi2, lo, lo, lo, lo};
    for (int i = 0; i < 10; i++)
        if (s.order[i] != want[i]) fail_msg("frame %d is stream %lld", i, (long long)s.order[i]);
    assert_true(find_stream(&c, lo)->fin && find_stream(&c, lo)->len == sizeof(blob));
    pair_free(&c, &s);
}

static void reset_and_stop_codes(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, NULL);
    pump(&c, &s);
    c.keep_records = true;
    /* RESET after some data: the peer gets the data, then the code */
    int64_t u = open_stream(&c, false);
    assert_int_equal(write_bytes(&c, u, "abc", 3, false), 0);
    pump(&c, &s);
    c.in_downcall = true;
    assert_int_equal(c.t->ops->reset(c.t, u, 13), 0);
    c.in_downcall = false;
    size_t before = c.log_len;
    pump(&c, &s);
    assert_memory_equal(c.log[before].data, "\x04\x02\x0d\x03", 4);
    app_stream *su = find_stream(&s, u);
    assert_true(su->len == 3 && su->reset && su->reset_code == 13 && su->closed);
    assert_true(find_stream(&c, u)->closed);

    /* STOP_SENDING: the sender resets with the same code and the bytes it sent */
    int64_t b = open_stream(&c, true);
    assert_int_equal(write_bytes(&c, b, "12345", 5, false), 0);
    pump(&c, &s);
    assert_int_equal(s.t->ops->stop(s.t, b, 7), 0);
    before = c.log_len;
    pump(&c, &s);
    app_stream *cb = find_stream(&c, b);
    assert_true(cb->stopped && cb->stop_code == 7);
    assert_memory_equal(c.log[before].data, "\x04\x00\x07\x05", 4);
    assert_int_equal(write_bytes(&c, b, "more", 4, false), MOQ_ERR_CLOSED);
    /* the client's receive side is still open: the server answers, then both close */
    assert_false(cb->closed);
    assert_int_equal(write_bytes(&s, b, "reply", 5, true), 0);
    pump(&c, &s);
    assert_true(cb->fin && cb->len == 5 && cb->closed);
    assert_true(find_stream(&s, b)->closed);

    /* STOP after our FIN went out: no RESET follows */
    int64_t b2 = open_stream(&c, true);
    assert_int_equal(write_bytes(&c, b2, "done", 4, true), 0);
    pump(&c, &s);
    assert_int_equal(s.t->ops->stop(s.t, b2, 9), 0);
    size_t resets = c.frames_sent[MOQ_QMUX_RESET_STREAM];
    pump(&c, &s);
    assert_int_equal(c.frames_sent[MOQ_QMUX_RESET_STREAM], resets);
    assert_false(find_stream(&c, b2)->stopped);
    assert_int_equal(c.events_in_downcall, 0);
    pair_free(&c, &s);
}

static void stopped_stream_keeps_flow_control(void **state)
{
    /* A stopped stream's in-flight bytes still count and are credited back: after the app
     * stops many streams mid-transfer, the connection window is not lost. */
    struct moq_qmux_config scfg;
    moq_qmux_config_default(&scfg);
    scfg.max_data = 64 << 10;
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, &scfg);
    pump(&c, &s);
    s.stop_on_open = true;
    static uint8_t blob[30000];
    for (int i = 0; i < 40; i++) {
        int64_t u = open_stream(&c, false);
        assert_int_equal(write_bytes(&c, u, blob, sizeof(blob), false), 0);
        pump(&c, &s);
        app_stream *cs = find_stream(&c, u);
        assert_true(cs->stopped && cs->stop_code == 77 && cs->closed);
    }
    s.stop_on_open = false;
    int64_t u = open_stream(&c, false);
    assert_int_equal(write_bytes(&c, u, blob, sizeof(blob), true), 0);
    pump(&c, &s);
    assert_true(find_stream(&s, u)->fin && find_stream(&s, u)->len == sizeof(blob));
    pair_free(&c, &s);
}

/* ---- keep-alive, idle, close ------------------------------------------------------------------
 */

static void ping_pong_rtt(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_02, NULL, NULL);
    pump(&c, &s);
    s.keep_records = true;
    uint64_t d = moq_qmux_next_deadline(s.q);
    assert_true(d == s.now + 1000000); /* 1 s ping cadence */
    s.now = d;
    size_t before = s.log_len;
    call(&s, moq_qmux_tick(s.q, s.now));
    assert_int_equal(s.log_len, before + 1);
    assert_int_equal(s.log[before].len, 9);
    assert_memory_equal(s.log[before].data, "\xf4\x8c\x67\x52\x9e\xf8\xc7\xbd\x00", 9);
    /* 30 ms later the client answers with the same sequence */
    s.now += 30000;
    c.now = s.now;
    c.keep_records = true;
    pump(&c, &s);
    assert_memory_equal(c.log[c.log_len - 1].data, "\xf4\x8c\x67\x52\x9e\xf8\xc7\xbe\x00", 9);
    struct moq_transport_stats st;
    s.t->ops->stats(s.t, &st);
    assert_true(st.rtt_us == 30000 && st.min_rtt_us == 30000);
    /* a second round trip of 10 ms smooths the estimate */
    s.now += 1000000;
    call(&s, moq_qmux_tick(s.q, s.now));
    s.now += 10000;
    c.now = s.now;
    pump(&c, &s);
    s.t->ops->stats(s.t, &st);
    assert_true(st.min_rtt_us == 10000);
    assert_true(st.rtt_us == (30000 * 7 + 10000) / 8);
    assert_false(s.closed || c.closed);
    pair_free(&c, &s);
}

static void idle_timeout_closes(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, NULL);
    pump(&c, &s);
    /* the client goes silent: nothing it sends reaches the server any more */
    uint64_t start = s.now;
    while (!s.finished) {
        uint64_t d = moq_qmux_next_deadline(s.q);
        assert_true(d != UINT64_MAX && d >= s.now);
        s.now = d;
        call(&s, moq_qmux_tick(s.q, s.now));
        /* drop what the server sends too */
        while (s.out_len) {
            free(s.out[s.out_head].data);
            s.out_bytes -= s.out[s.out_head].len;
            s.out_head++;
            s.out_len--;
        }
    }
    assert_true(s.now - start == 30000000);
    assert_true(s.closed && s.closed_code == 0);
    assert_string_equal(s.closed_reason, "idle timeout");
    assert_true(s.io_closed && s.ws_code == MOQ_QMUX_WS_GOING_AWAY);
    pair_free(&c, &s);
}

static void keepalive_keeps_idle_session_open(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, NULL);
    pump(&c, &s);
    /* two idle minutes of timers on both sides, records delivered: nobody times out */
    for (int i = 0; i < 400; i++) {
        uint64_t dc = moq_qmux_next_deadline(c.q), ds = moq_qmux_next_deadline(s.q);
        uint64_t now = dc < ds ? dc : ds;
        c.now = s.now = now;
        if (dc == now) call(&c, moq_qmux_tick(c.q, now));
        if (ds == now) call(&s, moq_qmux_tick(s.q, now));
        pump(&c, &s);
    }
    assert_true(s.now > 120000000);
    assert_false(c.closed || s.closed);
    pair_free(&c, &s);
}

/* Drop whatever e has queued for its peer: the cable between them is pulled. */
static void drop_output(end *e)
{
    while (e->out_len) {
        free(e->out[e->out_head].data);
        e->out_bytes -= e->out[e->out_head].len;
        e->out_head++;
        e->out_len--;
    }
}

/* Run the server's timers alone (the client has vanished) until it ends the session. */
static uint64_t run_server_until_finished(end *s)
{
    uint64_t start = s->now;
    while (!s->finished) {
        uint64_t d = moq_qmux_next_deadline(s->q);
        assert_true(d != UINT64_MAX && d >= s->now);
        s->now = d;
        call(s, moq_qmux_tick(s->q, s->now));
        drop_output(s);
    }
    return s->now - start;
}

/* Both sides tick and exchange records until the server has seen its ping answered. */
static void until_ping_answered(end *c, end *s)
{
    struct moq_transport_stats st = {0};
    for (int i = 0; i < 100 && st.rtt_us == 0; i++) {
        uint64_t dc = moq_qmux_next_deadline(c->q), ds = moq_qmux_next_deadline(s->q);
        uint64_t now = dc < ds ? dc : ds;
        c->now = s->now = now;
        if (dc == now) call(c, moq_qmux_tick(c->q, now));
        if (ds == now) call(s, moq_qmux_tick(s->q, now));
        c->now = s->now = now + 1000; /* 1 ms on the wire */
        pump(c, s);
        s->t->ops->stats(s->t, &st);
    }
    assert_true(st.rtt_us > 0);
}

/* A peer that answered pings and then vanished is dropped after the ack timeout (5 s by
 * default) of its first unanswered ping, long before the 30 s idle timeout. */
static void unanswered_ping_closes_after_ack_timeout(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_02, NULL, NULL);
    pump(&c, &s);
    until_ping_answered(&c, &s);
    drop_output(&c);
    uint64_t took = run_server_until_finished(&s);
    /* the next ping goes out within a second, and 5 s later nothing has answered it */
    assert_true(took > 5000000 && took <= 6000000);
    assert_true(s.closed && s.closed_code == 0);
    assert_string_equal(s.closed_reason, "ack timeout");
    assert_true(s.io_closed && s.ws_code == MOQ_QMUX_WS_GOING_AWAY);
    pair_free(&c, &s);
}

/* ack_timeout_ms = 0 leaves a vanished peer to the idle timeout. */
static void ack_timeout_off_leaves_it_to_idle(void **state)
{
    struct moq_qmux_config cfg;
    moq_qmux_config_default(&cfg);
    cfg.ack_timeout_ms = 0;
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_02, NULL, &cfg);
    pump(&c, &s);
    until_ping_answered(&c, &s);
    drop_output(&c);
    uint64_t took = run_server_until_finished(&s);
    assert_true(took >= 29000000 && took <= 30000000);
    assert_string_equal(s.closed_reason, "idle timeout");
    pair_free(&c, &s);
}

static void close_with_code_and_reason(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, NULL);
    pump(&c, &s);
    c.keep_records = true;
    int64_t b = open_stream(&c, true);
    assert_int_equal(write_bytes(&c, b, "x", 1, false), 0);
    pump(&c, &s);
    c.in_downcall = true;
    moq_transport_close(c.t, 42, "bye");
    c.in_downcall = false;
    /* no event from inside the downcall; it comes from process() */
    assert_false(c.closed);
    assert_true(c.wakes == 1);
    size_t before = c.log_len;
    pump(&c, &s);
    assert_true(c.closed && c.finished);
    assert_true(c.closed_code == 42);
    assert_string_equal(c.closed_reason, "bye");
    assert_memory_equal(c.log[before].data,
                        "\x1d\x2a\x03"
                        "bye",
                        6);
    assert_true(c.io_closed && c.ws_code == MOQ_QMUX_WS_NORMAL);
    assert_true(s.closed && s.finished);
    assert_true(s.closed_code == 42);
    assert_string_equal(s.closed_reason, "bye");
    assert_true(s.io_closed && s.ws_code == MOQ_QMUX_WS_NORMAL);
    /* streams still open got no stream_closed: `closed` replaced it */
    assert_false(find_stream(&c, b)->closed);
    assert_false(find_stream(&s, b)->closed);
    assert_int_equal(c.events_in_downcall, 0);
    assert_int_equal(moq_transport_write_bytes(c.t, b, "y", 1, false), MOQ_ERR_CLOSED);
    pair_free(&c, &s);
}

static void channel_loss_and_free(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, NULL);
    pump(&c, &s);
    int64_t u = open_stream(&c, false);
    assert_int_equal(write_bytes(&c, u, "abc", 3, false), 0);
    pump(&c, &s);
    call(&s, moq_qmux_on_channel_closed(s.q, 1006, "eof"));
    assert_true(s.finished && s.closed && s.closed_code == 0);
    assert_string_equal(s.closed_reason, "websocket closed: 1006 eof");
    assert_false(s.io_closed); /* the channel was gone: no io call */
    /* freeing a live session still tells its application */
    moq_qmux_free(c.q);
    c.q = NULL;
    assert_true(c.closed);
    assert_string_equal(c.closed_reason, "transport freed");
    moq_qmux_free(NULL);
    end_free(&s);
    end_free(&c);
}

static void datagrams_both_ways(void **state)
{
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, NULL, NULL);
    pump(&c, &s);
    size_t max = c.t->ops->max_datagram(c.t);
    assert_int_equal(max, 16382 - 3);
    assert_int_equal(c.t->ops->send_datagram(c.t, (const uint8_t *)"tick", 4), 0);
    pump(&c, &s);
    assert_int_equal(s.datagrams, 1);
    assert_int_equal(s.dgram_len, 4);
    assert_memory_equal(s.dgram, "tick", 4);
    static uint8_t big[16382];
    assert_int_equal(c.t->ops->send_datagram(c.t, big, max + 1), MOQ_ERR_TOO_LARGE);
    assert_int_equal(c.t->ops->send_datagram(c.t, big, max), 0);
    pump(&c, &s);
    assert_int_equal(s.datagrams, 2);
    pair_free(&c, &s);

    /* qmux-00 has no datagrams; records hold one frame each */
    pair_init(&c, &s, MOQ_QMUX_00, NULL, NULL);
    pump(&c, &s);
    assert_int_equal(c.t->ops->max_datagram(c.t), 0);
    assert_int_equal(c.t->ops->send_datagram(c.t, (const uint8_t *)"x", 1), MOQ_ERR_UNSUPPORTED);
    static uint8_t blob[100000];
    int64_t u = open_stream(&c, false);
    assert_int_equal(write_bytes(&c, u, blob, sizeof(blob), true), 0);
    pump(&c, &s);
    assert_true(find_stream(&s, u)->len == sizeof(blob));
    /* no QX_PING on qmux-00 */
    assert_true(moq_qmux_next_deadline(c.q) == UINT64_MAX);
    pair_free(&c, &s);
}

static void writable_after_backlog(void **state)
{
    struct moq_qmux_config ccfg;
    moq_qmux_config_default(&ccfg);
    ccfg.max_send_queue = 100000;
    end c, s;
    pair_init(&c, &s, MOQ_QMUX_01, &ccfg, NULL);
    pump(&c, &s);
    int64_t u = open_stream(&c, false);
    static uint8_t blob[90000];
    c.extra_queued = 1 << 30;
    assert_int_equal(write_bytes(&c, u, blob, sizeof(blob), false), 0);
    /* over the session budget: refused, stream_writable follows once it drains */
    assert_int_equal(write_bytes(&c, u, blob, 20000, false), MOQ_ERR_AGAIN);
    call(&c, moq_qmux_process(c.q, c.now));
    assert_int_equal(find_stream(&c, u)->writable, 0);
    c.extra_queued = 0;
    call(&c, moq_qmux_on_writable(c.q, c.now));
    pump(&c, &s);
    assert_int_equal(find_stream(&c, u)->writable, 1);
    assert_int_equal(write_bytes(&c, u, blob, 20000, true), 0);
    pump(&c, &s);
    assert_true(find_stream(&s, u)->len == sizeof(blob) + 20000);
    pair_free(&c, &s);
}

/* ---- a raw peer: hand-made records into a server session --------------------------------------
 */

typedef struct {
    end s;
    uint8_t rec[70000];
    size_t len;
} raw;

static void raw_init(raw *r, enum moq_qmux_wire wire, const struct moq_qmux_config *cfg)
{
    end_init(&r->s, "server", false, wire, cfg, 1000);
    r->s.keep_records = true;
    call(&r->s, moq_qmux_process(r->s.q, r->s.now));
    r->len = 0;
}

static void raw_frame(raw *r, const moq_qmux_frame *f)
{
    int n = moq_qmux_frame_encode(f, r->rec + r->len, sizeof(r->rec) - r->len);
    assert_true(n > 0);
    r->len += (size_t)n;
}

static void raw_params(raw *r, uint64_t max_streams, uint64_t window)
{
    moq_qmux_frame f = {.kind = MOQ_QMUX_TRANSPORT_PARAMETERS};
    moq_qmux_params_init(&f.params);
    f.params.initial_max_data = window;
    f.params.initial_max_stream_data_bidi_local = window;
    f.params.initial_max_stream_data_bidi_remote = window;
    f.params.initial_max_stream_data_uni = window;
    f.params.initial_max_streams_bidi = max_streams;
    f.params.initial_max_streams_uni = max_streams;
    f.params.max_idle_timeout_ms = 30000;
    raw_frame(r, &f);
}

static void raw_send(raw *r)
{
    if (!r->s.finished) call(&r->s, moq_qmux_on_record(r->s.q, r->rec, r->len, r->s.now));
    r->len = 0;
}

static void raw_stream(raw *r, uint64_t id, uint64_t off, const void *data, size_t len, bool fin)
{
    moq_qmux_frame f = {.kind = MOQ_QMUX_STREAM,
                        .stream_id = id,
                        .offset = off,
                        .has_offset = true,
                        .has_length = true,
                        .fin = fin,
                        .data = data,
                        .len = len};
    raw_frame(r, &f);
}

/* The server closed with CONNECTION_CLOSE carrying this reason. */
static void assert_closed_with(raw *r, uint64_t code, const char *reason)
{
    end *s = &r->s;
    assert_true(s->finished && s->closed);
    if (strcmp(s->closed_reason, reason) != 0)
        fail_msg("closed with \"%s\", want \"%s\"", s->closed_reason, reason);
    assert_true(s->closed_code == code);
    msg last = s->log[s->log_len - 1];
    moq_qmux_frame f;
    assert_true(moq_qmux_frame_decode(last.data, last.len, &f, NULL) > 0);
    assert_int_equal(f.kind, MOQ_QMUX_CONNECTION_CLOSE);
    assert_true(f.code == code);
    assert_int_equal(f.len, strlen(reason));
    assert_memory_equal(f.data, reason, f.len);
    assert_true(s->io_closed);
}

static void peer_exceeding_flow_control_is_closed(void **state)
{
    struct moq_qmux_config cfg;
    moq_qmux_config_default(&cfg);
    cfg.max_stream_data_uni = 1000;
    raw r;
    raw_init(&r, MOQ_QMUX_01, &cfg);
    raw_params(&r, 10, 1 << 20);
    raw_send(&r);
    static uint8_t data[2000];
    raw_stream(&r, 2, 0, data, 1000, false); /* exactly the window: fine */
    raw_send(&r);
    assert_false(r.s.finished);
    /* the credit came back (MAX_STREAM_DATA 2000); 1001 more bytes are one too many */
    raw_stream(&r, 2, 1000, data, 1001, false);
    raw_send(&r);
    assert_closed_with(&r, 1002, "flow control error");
    assert_int_equal(r.s.ws_code, MOQ_QMUX_WS_PROTOCOL_ERROR);
    end_free(&r.s);

    /* connection-level: many streams each inside their window, together over max_data */
    moq_qmux_config_default(&cfg);
    cfg.max_data = 5000;
    raw_init(&r, MOQ_QMUX_01, &cfg);
    raw_params(&r, 10, 1 << 20);
    static uint8_t big[6000];
    raw_stream(&r, 2, 0, big, 4000, false); /* 1000 left: MAX_DATA 9000 follows */
    raw_send(&r);
    assert_false(r.s.finished);
    raw_stream(&r, 6, 0, big, 5001, false);
    raw_send(&r);
    assert_closed_with(&r, 1002, "flow control error");
    end_free(&r.s);
}

static void peer_exceeding_stream_limit_is_closed(void **state)
{
    struct moq_qmux_config cfg;
    moq_qmux_config_default(&cfg);
    cfg.max_streams_uni = 4;
    raw r;
    raw_init(&r, MOQ_QMUX_01, &cfg);
    raw_params(&r, 10, 1 << 20);
    raw_stream(&r, 2 + 4 * 3, 0, "x", 1, false); /* index 3 opens 0..3 implicitly */
    raw_send(&r);
    assert_false(r.s.finished);
    assert_int_equal(r.s.nstreams, 1);
    raw_stream(&r, 2 + 4 * 1, 0, "y", 1, false); /* a hole fills in */
    raw_send(&r);
    assert_int_equal(r.s.nstreams, 2);
    raw_stream(&r, 2 + 4 * 4, 0, "z", 1, false); /* index 4 >= 4 */
    raw_send(&r);
    assert_closed_with(&r, 1002, "stream limit exceeded");
    end_free(&r.s);
}

static void raw_peer_protocol_errors(void **state)
{
    static const struct {
        enum moq_qmux_wire wire;
        const char *hex_after_params; /* NULL: the case builds its own record */
        const char *reason;
    } cases[] = {
        {MOQ_QMUX_01, "21", "unknown frame type"},
        {MOQ_QMUX_01, "0e 03 00 01 61", "STREAM on a send-only stream"},
        {MOQ_QMUX_01, "0e 02 05 01 61", "stream data out of order"},
        {MOQ_QMUX_01, "05 02 00", "STOP_SENDING on a receive-only stream"},
        {MOQ_QMUX_01, "04 03 00 00", "RESET_STREAM on a send-only stream"},
        {MOQ_QMUX_01, "05 01 00", "frame for a stream never opened"},
        {MOQ_QMUX_01, "24 02 00 01 01", "RESET_STREAM_AT without reset_stream_at"},
        {MOQ_QMUX_01, "30 61", "DATAGRAM larger than max_datagram_frame_size"},
        {MOQ_QMUX_00, "31 01 61", "DATAGRAM without max_datagram_frame_size"},
        {MOQ_QMUX_01, "ff5153300d0a0d0a 00", "duplicate transport parameters"},
        {MOQ_QMUX_02, "ff5153300d0a0d0a 00",
         "QX_TRANSPORT_PARAMETERS must be the first frame, once"},
        {MOQ_QMUX_02, "f48c67529ef8c7bd 05 f48c67529ef8c7bd 05",
         "QX_PING request sequence must increase"},
        {MOQ_QMUX_02, "f48c67529ef8c7be 00", "QX_PING response for a sequence never sent"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct moq_qmux_config cfg;
        moq_qmux_config_default(&cfg);
        cfg.max_datagram_frame_size = 1; /* so the 0x30 case is oversized */
        raw r;
        raw_init(&r, cases[i].wire, &cfg);
        raw_params(&r, 10, 1 << 20);
        const char *h = cases[i].hex_after_params;
        int hi = -1;
        for (; *h; h++) {
            int v = (*h >= '0' && *h <= '9')   ? *h - '0'
                    : (*h >= 'a' && *h <= 'f') ? *h - 'a' + 10
                                               : -1;
            if (v < 0) continue;
            if (hi < 0) {
                hi = v;
            } else {
                r.rec[r.len++] = (uint8_t)(hi << 4 | v);
                hi = -1;
            }
        }
        raw_send(&r);
        if (!r.s.finished) fail_msg("case %zu (%s) not closed", i, cases[i].reason);
        assert_closed_with(&r, 1002, cases[i].reason);
        end_free(&r.s);
    }
}

static void unanswered_stop_sending_is_bounded(void **state)
{
    /* We open bidi streams and abandon both directions; a peer that never answers our
     * STOP_SENDING with FIN or RESET cannot make us keep them forever. */
    raw r;
    raw_init(&r, MOQ_QMUX_01, NULL);
    raw_params(&r, 5000, 1 << 20);
    raw_send(&r);
    moq_transport *t = r.s.t;
    int i;
    for (i = 0; i < 2000 && !r.s.finished; i++) {
        int64_t sid = open_stream(&r.s, true);
        assert_int_equal(t->ops->stop(t, sid, 1), 0);
        assert_int_equal(t->ops->reset(t, sid, 1), 0);
        call(&r.s, moq_qmux_process(r.s.q, r.s.now));
    }
    assert_int_equal(i, 1025);
    assert_closed_with(&r, 1002, "peer leaves stopped streams unfinished");
    end_free(&r.s);

    /* answered, the same churn goes on indefinitely */
    raw_init(&r, MOQ_QMUX_01, NULL);
    raw_params(&r, 5000, 1 << 20);
    raw_send(&r);
    t = r.s.t;
    for (i = 0; i < 3000; i++) {
        int64_t sid = open_stream(&r.s, true);
        assert_int_equal(t->ops->stop(t, sid, 1), 0);
        assert_int_equal(t->ops->reset(t, sid, 1), 0);
        call(&r.s, moq_qmux_process(r.s.q, r.s.now));
        moq_qmux_frame f = {.kind = MOQ_QMUX_RESET_STREAM, .stream_id = (uint64_t)sid, .code = 1};
        raw_frame(&r, &f);
        if (i % 1000 == 999) {
            f = (moq_qmux_frame){.kind = MOQ_QMUX_MAX_STREAMS_BIDI, .value = (uint64_t)i + 5000};
            raw_frame(&r, &f);
        }
        raw_send(&r);
    }
    assert_false(r.s.finished);
    end_free(&r.s);
}

static void qmux02_rules(void **state)
{
    /* a frame before the parameters */
    raw r;
    raw_init(&r, MOQ_QMUX_02, NULL);
    moq_qmux_frame f = {.kind = MOQ_QMUX_MAX_DATA, .value = 10};
    raw_frame(&r, &f);
    raw_send(&r);
    assert_closed_with(&r, 1002, "QX_TRANSPORT_PARAMETERS must be the first frame, once");
    end_free(&r.s);
    /* leading PADDING is fine, then params; max_record_size below 16382 is refused */
    raw_init(&r, MOQ_QMUX_02, NULL);
    r.rec[r.len++] = 0;
    r.rec[r.len++] = 0;
    f = (moq_qmux_frame){.kind = MOQ_QMUX_TRANSPORT_PARAMETERS};
    moq_qmux_params_init(&f.params);
    f.params.max_record_size = 1200;
    raw_frame(&r, &f);
    raw_send(&r);
    assert_closed_with(&r, 1002, "max_record_size below 16382");
    end_free(&r.s);
    /* RESET_STREAM_AT (advertised on 02): data so far delivered, then the reset */
    raw_init(&r, MOQ_QMUX_02, NULL);
    raw_params(&r, 10, 1 << 20);
    raw_stream(&r, 2, 0, "abcd", 4, false);
    f = (moq_qmux_frame){.kind = MOQ_QMUX_RESET_STREAM,
                         .stream_id = 2,
                         .code = 5,
                         .final_size = 4,
                         .has_reliable_size = true,
                         .reliable_size = 4};
    raw_frame(&r, &f);
    raw_send(&r);
    assert_false(r.s.finished);
    app_stream *s = find_stream(&r.s, 2);
    assert_true(s && s->len == 4 && s->reset && s->reset_code == 5 && s->closed);
    /* increasing ping requests are answered with the same sequence, in one record */
    f = (moq_qmux_frame){.kind = MOQ_QMUX_PING_REQUEST, .value = 3};
    raw_frame(&r, &f);
    f.value = 9;
    raw_frame(&r, &f);
    raw_send(&r);
    msg last = r.s.log[r.s.log_len - 1];
    assert_int_equal(last.len, 18);
    assert_memory_equal(last.data, "\xf4\x8c\x67\x52\x9e\xf8\xc7\xbe\x03", 9);
    assert_memory_equal(last.data + 9, "\xf4\x8c\x67\x52\x9e\xf8\xc7\xbe\x09", 9);
    /* a frame on a stream already reset is ignored, not an error */
    raw_stream(&r, 2, 4, "zz", 2, false);
    raw_send(&r);
    assert_false(r.s.finished);
    /* text message */
    call(&r.s, moq_qmux_on_text(r.s.q, r.s.now));
    assert_closed_with(&r, 1003, "text frames are not valid for QMux");
    end_free(&r.s);
}

static void oversized_record_and_peer_close(void **state)
{
    raw r;
    raw_init(&r, MOQ_QMUX_01, NULL);
    raw_params(&r, 10, 1 << 20);
    raw_send(&r);
    memset(r.rec, 0, 16383); /* 16383 bytes of PADDING: one byte over */
    r.len = 16383;
    raw_send(&r);
    assert_closed_with(&r, 1002, "record exceeds max_record_size");
    end_free(&r.s);
    /* 16382 bytes are fine */
    raw_init(&r, MOQ_QMUX_01, NULL);
    raw_params(&r, 10, 1 << 20);
    raw_send(&r);
    memset(r.rec, 0, 16382);
    r.len = 16382;
    raw_send(&r);
    assert_false(r.s.finished);
    /* a RESET as a stream's first frame opens and retires it silently */
    moq_qmux_frame f = {.kind = MOQ_QMUX_RESET_STREAM, .stream_id = 6, .code = 1, .final_size = 10};
    raw_frame(&r, &f);
    raw_stream(&r, 6, 10, "late", 4, false); /* then ignored */
    raw_send(&r);
    assert_false(r.s.finished);
    assert_int_equal(r.s.nstreams, 0);
    /* the peer's CONNECTION_CLOSE: `closed` with its code and reason, no frame back */
    size_t sent = r.s.log_len;
    f = (moq_qmux_frame){
        .kind = MOQ_QMUX_CONNECTION_CLOSE, .code = 1002, .data = (const uint8_t *)"nope", .len = 4};
    raw_frame(&r, &f);
    raw_send(&r);
    assert_true(r.s.finished && r.s.closed && r.s.closed_code == 1002);
    assert_string_equal(r.s.closed_reason, "nope");
    assert_int_equal(r.s.log_len, sent);
    assert_true(r.s.io_closed && r.s.ws_code == MOQ_QMUX_WS_NORMAL);
    end_free(&r.s);
}

int main(void)
{
    moq_log_set_level(MOQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(params_gate_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(handshake_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(bidi_and_uni_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(big_transfer_flow_control, setup, teardown),
        cmocka_unit_test_setup_teardown(small_windows_hold_the_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(many_sequential_uni_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(stream_limit_blocks_then_available, setup, teardown),
        cmocka_unit_test_setup_teardown(priorities_and_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_and_stop_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(stopped_stream_keeps_flow_control, setup, teardown),
        cmocka_unit_test_setup_teardown(ping_pong_rtt, setup, teardown),
        cmocka_unit_test_setup_teardown(idle_timeout_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(unanswered_ping_closes_after_ack_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(ack_timeout_off_leaves_it_to_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive_keeps_idle_session_open, setup, teardown),
        cmocka_unit_test_setup_teardown(close_with_code_and_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(channel_loss_and_free, setup, teardown),
        cmocka_unit_test_setup_teardown(datagrams_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(writable_after_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(peer_exceeding_flow_control_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(peer_exceeding_stream_limit_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(raw_peer_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(unanswered_stop_sending_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(qmux02_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_record_and_peer_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
