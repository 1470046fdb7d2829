#include "transport/pipe.h"
#include "util/defer.h"
#include "util/err.h"
#include "util/list.h"
#include "util/map.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum pev_type {
    PEV_OPENED,
    PEV_DATA,
    PEV_RESET,
    PEV_STOPPED,
    PEV_CLOSED_STREAM,
    PEV_DATAGRAM,
    PEV_CLOSED
};

struct pev {
    moq_list link;
    int to; /* end index receiving the event */
    enum pev_type type;
    int64_t sid;
    bool bidi;
    bool fin;
    uint64_t code;
    moq_slice data; /* holds a chunk reference (PEV_DATA, PEV_DATAGRAM) */
    char reason[128];
};

/* Per-stream state, shared by both ends. dir[i] is the direction in which end i sends. */
struct pstream {
    int64_t sid;
    bool bidi;
    int opener;
    bool announced; /* peer has seen stream_opened */
    struct {
        bool fin_sent; /* sender wrote FIN */
        bool done;     /* sender side finished: FIN delivered or reset */
        size_t queued; /* bytes written but not delivered */
    } dir[2];
    bool recv_done[2]; /* end i has nothing more to receive */
    bool closed[2];    /* stream_closed queued for end i */
    bool delivered[2]; /* stream_closed delivered to end i */
    void *ctx[2];
};

struct pend {
    moq_transport t;
    moq_pipe *pipe;
    int index;
    bool closed; /* `closed` delivered */
    int64_t next_bidi, next_uni;
};

struct moq_pipe {
    struct ev_loop *loop;
    moq_defer flush; /* delivers the events from the loop */
    struct pend ends[2];
    moq_list events;
    moq_u64map streams;
    size_t max_datagram;
    struct moq_transport_stats stats; /* what both ends report */
    bool closing;
    int alive; /* ends not yet closed */
};

static const struct moq_transport_ops pipe_ops;

#define END(t) ((struct pend *)(t))

static void schedule(moq_pipe *p)
{
    moq_defer_schedule(&p->flush); /* nothing without a loop */
}

static struct pev *push(moq_pipe *p, int to, enum pev_type type, int64_t sid)
{
    struct pev *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->to = to;
    e->type = type;
    e->sid = sid;
    moq_list_push_back(&p->events, &e->link);
    schedule(p);
    return e;
}

static bool sends(const struct pstream *s, int end)
{
    return s->bidi || s->opener == end;
}

static bool receives(const struct pstream *s, int end)
{
    return s->bidi || s->opener != end;
}

static void maybe_stream_closed(moq_pipe *p, struct pstream *s)
{
    for (int i = 0; i < 2; i++) {
        if (s->closed[i]) continue;
        bool send_done = !sends(s, i) || s->dir[i].done;
        bool recv_done = !receives(s, i) || s->recv_done[i];
        if (send_done && recv_done) {
            s->closed[i] = true;
            push(p, i, PEV_CLOSED_STREAM, s->sid);
        }
    }
}

static int p_open_stream(moq_transport *t, bool bidi, int64_t *sid)
{
    struct pend *e = END(t);
    moq_pipe *p = e->pipe;
    if (p->closing) return MOQ_ERR_CLOSED;
    struct pstream *s = calloc(1, sizeof(*s));
    if (!s) return MOQ_ERR_NOMEM;
    int64_t *next = bidi ? &e->next_bidi : &e->next_uni;
    s->sid = *next;
    *next += 4;
    s->bidi = bidi;
    s->opener = e->index;
    if (moq_u64map_put(&p->streams, (uint64_t)s->sid, s) < 0) {
        free(s);
        return MOQ_ERR_NOMEM;
    }
    *sid = s->sid;
    return 0;
}

static void announce(moq_pipe *p, struct pstream *s, int to)
{
    if (s->announced) return;
    s->announced = true;
    struct pev *ev = push(p, to, PEV_OPENED, s->sid);
    if (ev) ev->bidi = s->bidi;
}

static int p_write(moq_transport *t, int64_t sid, const moq_slice *v, size_t n, bool fin)
{
    struct pend *e = END(t);
    moq_pipe *p = e->pipe;
    struct pstream *s = moq_u64map_get(&p->streams, (uint64_t)sid);
    if (p->closing || !s || !sends(s, e->index) || s->dir[e->index].fin_sent ||
        s->dir[e->index].done)
        return MOQ_ERR_CLOSED;
    int peer = 1 - e->index;
    announce(p, s, peer);
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == 0) continue;
        struct pev *ev = push(p, peer, PEV_DATA, sid);
        if (!ev) return MOQ_ERR_NOMEM;
        ev->data = (moq_slice){moq_chunk_ref(v[i].chunk), v[i].off, v[i].len};
        s->dir[e->index].queued += v[i].len;
    }
    if (fin) {
        struct pev *ev = push(p, peer, PEV_DATA, sid);
        if (!ev) return MOQ_ERR_NOMEM;
        ev->fin = true;
        s->dir[e->index].fin_sent = true;
    }
    return 0;
}

static size_t p_unsent(moq_transport *t, int64_t sid)
{
    struct pend *e = END(t);
    struct pstream *s = moq_u64map_get(&e->pipe->streams, (uint64_t)sid);
    return s ? s->dir[e->index].queued : 0;
}

static void p_set_priority(moq_transport *t, int64_t sid, uint64_t priority) {}

static void drop_queued(moq_pipe *p, struct pstream *s, int from)
{
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &p->events)
    {
        struct pev *ev = moq_container_of(pos, struct pev, link);
        if (ev->sid != s->sid || ev->to == from || ev->type != PEV_DATA) continue;
        moq_list_remove(pos);
        moq_chunk_unref(ev->data.chunk);
        free(ev);
    }
    s->dir[from].queued = 0;
}

static int p_reset(moq_transport *t, int64_t sid, uint64_t code)
{
    struct pend *e = END(t);
    moq_pipe *p = e->pipe;
    struct pstream *s = moq_u64map_get(&p->streams, (uint64_t)sid);
    if (!s || !sends(s, e->index)) return MOQ_ERR_CLOSED;
    if (s->dir[e->index].done) return 0;
    drop_queued(p, s, e->index);
    s->dir[e->index].done = true;
    int peer = 1 - e->index;
    announce(p, s, peer);
    struct pev *ev = push(p, peer, PEV_RESET, sid);
    if (ev) ev->code = code;
    s->recv_done[peer] = true;
    maybe_stream_closed(p, s);
    return 0;
}

static int p_stop(moq_transport *t, int64_t sid, uint64_t code)
{
    struct pend *e = END(t);
    moq_pipe *p = e->pipe;
    struct pstream *s = moq_u64map_get(&p->streams, (uint64_t)sid);
    if (!s || !receives(s, e->index)) return MOQ_ERR_CLOSED;
    if (s->recv_done[e->index]) return 0;
    s->recv_done[e->index] = true;
    int peer = 1 - e->index;
    if (!s->dir[peer].done) {
        /* The peer's sending side is reset with the same code, as QUIC stacks do. */
        drop_queued(p, s, peer);
        s->dir[peer].done = true;
        struct pev *ev = push(p, peer, PEV_STOPPED, sid);
        if (ev) ev->code = code;
    }
    maybe_stream_closed(p, s);
    return 0;
}

static void p_set_stream_ctx(moq_transport *t, int64_t sid, void *sctx)
{
    struct pend *e = END(t);
    struct pstream *s = moq_u64map_get(&e->pipe->streams, (uint64_t)sid);
    if (s) s->ctx[e->index] = sctx;
}

static int p_send_datagram(moq_transport *t, const uint8_t *data, size_t len)
{
    struct pend *e = END(t);
    moq_pipe *p = e->pipe;
    if (p->max_datagram == 0) return MOQ_ERR_UNSUPPORTED;
    if (len > p->max_datagram) return MOQ_ERR_TOO_LARGE;
    if (p->closing) return MOQ_ERR_CLOSED;
    moq_chunk *c = moq_chunk_copy(data, len);
    if (!c) return MOQ_ERR_NOMEM;
    struct pev *ev = push(p, 1 - e->index, PEV_DATAGRAM, -1);
    if (!ev) {
        moq_chunk_unref(c);
        return MOQ_ERR_NOMEM;
    }
    ev->data = (moq_slice){c, 0, len};
    return 0;
}

static size_t p_max_datagram(moq_transport *t)
{
    return END(t)->pipe->max_datagram;
}

static void p_close(moq_transport *t, uint64_t code, const char *reason)
{
    moq_pipe *p = END(t)->pipe;
    if (p->closing) return;
    p->closing = true;
    for (int i = 0; i < 2; i++) {
        struct pev *ev = push(p, i, PEV_CLOSED, -1);
        if (!ev) continue;
        ev->code = code;
        snprintf(ev->reason, sizeof(ev->reason), "%s", reason ? reason : "");
    }
}

static void p_stats(moq_transport *t, struct moq_transport_stats *out)
{
    *out = END(t)->pipe->stats;
}

void moq_pipe_set_stats(moq_pipe *p, const struct moq_transport_stats *st)
{
    p->stats = *st;
}

static const struct moq_transport_ops pipe_ops = {
    .open_stream = p_open_stream,
    .write = p_write,
    .unsent = p_unsent,
    .unacked = p_unsent, /* a byte counts as acknowledged once delivered */
    .set_priority = p_set_priority,
    .reset = p_reset,
    .stop = p_stop,
    .set_stream_ctx = p_set_stream_ctx,
    .send_datagram = p_send_datagram,
    .max_datagram = p_max_datagram,
    .close = p_close,
    .stats = p_stats,
};

static void free_pipe(moq_pipe *p)
{
    moq_defer_fini(&p->flush);
    while (!moq_list_empty(&p->events)) {
        struct pev *ev = moq_list_first(&p->events, struct pev, link);
        moq_list_remove(&ev->link);
        moq_chunk_unref(ev->data.chunk);
        free(ev);
    }
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&p->streams, &it, NULL, &v))
        free(v);
    moq_u64map_free(&p->streams);
    for (int i = 0; i < 2; i++) {
        free(p->ends[i].t.path);
        free(p->ends[i].t.authority);
    }
    free(p);
}

static void deliver(moq_pipe *p, struct pev *e)
{
    struct pend *end = &p->ends[e->to];
    moq_transport *t = &end->t;
    const struct moq_transport_events *h = t->ev;
    if (end->closed || !h) return;
    struct pstream *s = e->sid >= 0 ? moq_u64map_get(&p->streams, (uint64_t)e->sid) : NULL;
    if (e->type != PEV_CLOSED && e->type != PEV_DATAGRAM && !s) return;
    if (p->closing && e->type != PEV_CLOSED) return;
    switch (e->type) {
    case PEV_OPENED:
        if (h->stream_opened) h->stream_opened(t->app, t, e->sid, e->bidi);
        break;
    case PEV_DATA: {
        int from = 1 - e->to;
        if (s->recv_done[e->to]) break; /* stopped: discard */
        s->dir[from].queued -= e->data.len;
        const uint8_t *data = e->data.chunk ? e->data.chunk->data + e->data.off : NULL;
        if (e->fin) {
            s->recv_done[e->to] = true;
            s->dir[from].done = true;
        }
        if (h->stream_data)
            h->stream_data(t->app, t, e->sid, s->ctx[e->to], data, e->data.len, e->fin);
        if (e->fin) maybe_stream_closed(p, s);
        break;
    }
    case PEV_RESET:
        if (h->stream_reset) h->stream_reset(t->app, t, e->sid, s->ctx[e->to], e->code);
        break;
    case PEV_STOPPED:
        if (h->stream_stopped) h->stream_stopped(t->app, t, e->sid, s->ctx[e->to], e->code);
        maybe_stream_closed(p, s);
        break;
    case PEV_CLOSED_STREAM:
        if (h->stream_closed) h->stream_closed(t->app, t, e->sid, s->ctx[e->to]);
        s->ctx[e->to] = NULL;
        s->delivered[e->to] = true;
        if (s->delivered[0] && s->delivered[1]) {
            moq_u64map_del(&p->streams, (uint64_t)s->sid);
            free(s);
        }
        break;
    case PEV_DATAGRAM:
        if (h->datagram) h->datagram(t->app, t, e->data.chunk->data, e->data.len);
        break;
    case PEV_CLOSED:
        end->closed = true;
        p->alive--;
        if (h->closed) h->closed(t->app, t, e->code, e->reason);
        break;
    }
}

size_t moq_pipe_flush(moq_pipe *p)
{
    size_t n = 0;
    while (!moq_list_empty(&p->events)) {
        struct pev *e = moq_list_first(&p->events, struct pev, link);
        moq_list_remove(&e->link);
        deliver(p, e);
        moq_chunk_unref(e->data.chunk);
        free(e);
        n++;
        if (p->alive == 0) {
            free_pipe(p);
            return n;
        }
    }
    moq_defer_cancel(&p->flush);
    return n;
}

static void flush_cb(moq_defer *d)
{
    moq_pipe_flush(d->data);
}

moq_pipe *moq_pipe_new(struct ev_loop *loop, const struct moq_pipe_config *cfg,
                       moq_transport **client, moq_transport **server)
{
    moq_pipe *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->loop = loop;
    p->max_datagram = cfg->max_datagram;
    p->alive = 2;
    moq_list_init(&p->events);
    moq_u64map_init(&p->streams);
    if (loop && moq_defer_init(&p->flush, loop, flush_cb, p) < 0) {
        moq_u64map_free(&p->streams);
        free(p);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        struct pend *e = &p->ends[i];
        e->pipe = p;
        e->index = i;
        e->t.ops = &pipe_ops;
        e->t.kind = cfg->kind;
        e->t.is_client = i == 0;
        e->next_bidi = i;
        e->next_uni = 2 + i;
        snprintf(e->t.protocol, sizeof(e->t.protocol), "%s", cfg->protocol ? cfg->protocol : "");
        snprintf(e->t.peer, sizeof(e->t.peer), "pipe:%s", i == 0 ? "server" : "client");
    }
    if (cfg->path) p->ends[1].t.path = strdup(cfg->path);
    *client = &p->ends[0].t;
    *server = &p->ends[1].t;
    return p;
}

void moq_pipe_destroy(moq_pipe *p)
{
    if (p) free_pipe(p);
}
