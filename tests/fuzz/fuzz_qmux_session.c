/*
 * Fuzz target: a server qmux session fed arbitrary records, with an application that reacts
 * (echoes, stops, resets, opens streams, sends datagrams, closes) and timers that fire.
 *
 * Input: byte 0 picks the wire format (and whether the app misbehaves); then a sequence of
 * [u16 big-endian length][record] entries. A length with the top bit set is not a record but
 * an action: the low bits pick what the app or the clock does. The session must never crash,
 * leak or grow without bound, and every record it sends must decode and fit the limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qmux/qmux.h"
#include "util/chunk.h"
#include "util/err.h"
#include "util/log.h"

typedef struct {
    moq_qmux *q;
    moq_transport *t;
    size_t queued;
    bool closed_io;
    bool finished;
    int64_t last_sid;
    uint64_t now;
    size_t limit;
    int mode;
} fz;

static int io_send(void *io, const moq_slice *v, size_t n)
{
    fz *f = io;
    static uint8_t rec[1 << 17];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].chunk || v[i].off + v[i].len > v[i].chunk->len) abort();
        if (len + v[i].len > sizeof(rec)) abort();
        memcpy(rec + len, v[i].chunk->data + v[i].off, v[i].len);
        len += v[i].len;
    }
    if (len > f->limit) abort();
    size_t pos = 0;
    while (pos < len) {
        moq_qmux_frame fr;
        int m = moq_qmux_frame_decode(rec + pos, len - pos, &fr, NULL);
        if (m <= 0) abort();
        pos += (size_t)m;
    }
    f->queued += len;
    return 0;
}

static size_t io_queued(void *io)
{
    return ((fz *)io)->queued;
}

static void io_close(void *io, uint16_t code, const char *reason)
{
    fz *f = io;
    if (f->closed_io) abort();
    f->closed_io = true;
}

static void io_wake(void *io) {}

static const struct moq_qmux_io fz_io = {io_send, io_queued, io_close, io_wake};

static void ev_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    fz *f = app;
    f->last_sid = sid;
    if (f->mode & 1) t->ops->set_priority(t, sid, (uint64_t)sid);
}

static void ev_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                    size_t len, bool fin)
{
    fz *f = app;
    if (moq_stream_is_bidi(sid) && len) moq_transport_write_bytes(t, sid, data, len, fin);
    if ((f->mode & 2) && len > 3 && data[0] == 'S') t->ops->stop(t, sid, data[1]);
    if ((f->mode & 2) && len > 3 && data[0] == 'R') t->ops->reset(t, sid, data[1]);
    if ((f->mode & 4) && len > 3 && data[0] == 'C') moq_transport_close(t, data[1], "bye");
}

static void ev_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    if (moq_stream_is_bidi(sid)) moq_transport_write_bytes(t, sid, "r", 1, true);
}

static void ev_stopped(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code) {}

static void ev_stream_closed(void *app, moq_transport *t, int64_t sid, void *sctx) {}

static void ev_writable(void *app, moq_transport *t, int64_t sid, void *sctx) {}

static void ev_available(void *app, moq_transport *t, bool bidi) {}

static void ev_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    t->ops->send_datagram(t, data, len);
}

static void ev_closed(void *app, moq_transport *t, uint64_t code, const char *reason) {}

static const struct moq_transport_events fz_events = {
    ev_opened,   ev_data,      ev_reset,    ev_stopped, ev_stream_closed,
    ev_writable, ev_available, ev_datagram, ev_closed,
};

static void result(fz *f, int rv)
{
    if (rv == MOQ_ERR_CLOSED)
        f->finished = true;
    else if (rv != 0)
        abort();
}

static void action(fz *f, unsigned a)
{
    moq_transport *t = f->t;
    static uint8_t blob[40000];
    int64_t sid;
    switch (a % 8) {
    case 0: /* the channel drains */
        f->queued = 0;
        result(f, moq_qmux_on_writable(f->q, f->now));
        break;
    case 1: /* time passes to the next deadline */ {
        uint64_t d = moq_qmux_next_deadline(f->q);
        if (d != UINT64_MAX && d > f->now) f->now = d;
        result(f, moq_qmux_tick(f->q, f->now));
        break;
    }
    case 2:
        if (moq_transport_open(t, (a & 8) != 0, &sid) == 0) {
            moq_transport_write_bytes(t, sid, blob, (a >> 4) * 1000 % sizeof(blob), (a & 16));
            f->last_sid = sid;
        }
        break;
    case 3:
        t->ops->reset(t, f->last_sid, a >> 3);
        break;
    case 4:
        t->ops->stop(t, f->last_sid, a >> 3);
        break;
    case 5:
        t->ops->send_datagram(t, blob, (a >> 3) * 100);
        break;
    case 6:
        result(f, moq_qmux_process(f->q, f->now));
        break;
    case 7:
        if (a & 8)
            moq_transport_close(t, a >> 4, "fuzz");
        else
            result(f, moq_qmux_on_channel_closed(f->q, 1000, ""));
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        moq_log_set_level(MOQ_LOG_OFF);
        quiet = true;
    }
    if (size < 1) return 0;
    size_t chunks_before = moq_chunk_live_count();
    fz f = {.now = 1000, .last_sid = 0};
    enum moq_qmux_wire wire = (enum moq_qmux_wire)(data[0] % 3);
    f.mode = data[0] >> 2;
    f.limit = wire == MOQ_QMUX_00 ? MOQ_QMUX_00_MAX_FRAME_SIZE : MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE;
    struct moq_qmux_config cfg;
    moq_qmux_config_default(&cfg);
    cfg.max_streams_bidi = 8;
    cfg.max_streams_uni = 8;
    cfg.max_data = 50000;
    cfg.max_stream_data_uni = 20000;
    cfg.max_send_queue = 200000;
    struct moq_qmux_init init = {
        .wire = wire, .protocol = "moq-lite-05", .config = &cfg, .io = &fz_io, .io_ctx = &f};
    f.q = moq_qmux_new(&init, f.now);
    if (!f.q) abort();
    f.t = moq_qmux_transport(f.q);
    moq_transport_attach(f.t, &fz_events, &f);
    result(&f, moq_qmux_process(f.q, f.now));
    size_t pos = 1;
    while (pos + 2 <= size && !f.finished) {
        unsigned len = (unsigned)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (len & 0x8000) {
            action(&f, len & 0x7fff);
            continue;
        }
        if (len > size - pos) len = (unsigned)(size - pos);
        f.now += 1000;
        result(&f, moq_qmux_on_record(f.q, data + pos, len, f.now));
        pos += len;
    }
    moq_qmux_free(f.q);
    if (moq_chunk_live_count() != chunks_before) abort();
    return 0;
}
