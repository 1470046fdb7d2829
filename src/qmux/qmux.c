/*
 * qmux session: moq_transport over a record channel. See qmux.h for the contract.
 *
 * Layout of this file: stream bookkeeping, deferred events, the transport ops (downcalls),
 * record production (flush), frame handlers (on_record), timers, lifecycle.
 *
 * Invariants
 * - Events caused by peer input (stream_opened, stream_data, stream_reset, stream_stopped,
 *   datagram) are delivered synchronously from on_record. Everything else (stream_closed,
 *   stream_writable, streams_available, closed) is queued and delivered at the end of the
 *   current session call, so no event ever comes out of a downcall.
 * - A stream struct is freed only when the application has had stream_closed for it and the
 *   transport no longer needs it (no frame of it pending, the peer finished its sending side).
 *   A stream the application stopped lingers internally until the peer's FIN or RESET so its
 *   in-flight bytes are still counted against, and credited back to, flow control.
 * - Nothing received is buffered: stream_data points into the record being decoded.
 */
#include "qmux/qmux.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/list.h"
#include "util/liveness.h"
#include "util/log.h"
#include "util/map.h"
#include "util/pool.h"
#include "util/varint.h"

#define LOG            "qmux"
#define SLICE_COST     24    /* per-slice bookkeeping charged against max_send_queue */
#define ARENA_CAP      32768 /* header/control bytes shared by many records */
#define ARENA_MIN_FREE 2048  /* start a record only with this much header room */
#define PING_RING      8     /* outstanding pings remembered for RTT */
#define PONG_RING      8     /* ping responses waiting to be sent */
#define REASON_MAX     256
#define MIN_FRAME_ROOM 32   /* stop filling a record below this much room */
#define MAX_LINGERING  1024 /* closed streams still waiting for the peer's FIN/RESET */
#define WS_REASON_MAX  123  /* a WebSocket Close reason fits in a control frame */

enum { DIR_BIDI = 0, DIR_UNI = 1 };
enum { SEND_NONE, SEND_OPEN, SEND_DONE };
enum { RECV_NONE, RECV_OPEN, RECV_STOPPED, RECV_DONE };
enum { ST_OPEN, ST_CLOSING, ST_CLOSED, ST_FINISHED };

enum close_kind {
    CK_APP,       /* local close(): APPLICATION_CLOSE */
    CK_ERROR,     /* we detected a violation: CONNECTION_CLOSE */
    CK_TEXT,      /* text message: CONNECTION_CLOSE 1003 */
    CK_HANDSHAKE, /* peer params never came: CONNECTION_CLOSE 0 */
    CK_IDLE,      /* nothing received for the idle timeout: no frame */
    CK_PEER,      /* the peer sent APPLICATION_CLOSE / CONNECTION_CLOSE */
    CK_CHANNEL,   /* the WebSocket is gone */
};

typedef struct qstream {
    int64_t id;
    void *ctx;
    uint64_t priority;
    bool local;
    bool bidi;
    uint8_t send;
    uint8_t recv;
    /* send side: queued slices [sq_head, sq_head + sq_len), each holding a chunk reference */
    moq_slice *sq;
    size_t sq_head, sq_len, sq_cap;
    uint64_t unsent; /* payload bytes queued */
    size_t cost;     /* unsent + SLICE_COST per queued slice */
    uint64_t sent;   /* bytes handed to the channel = next offset */
    uint64_t send_max;
    bool fin_queued;
    bool fin_sent;
    bool reset_queued;
    bool want_writable;
    uint64_t reset_code;
    /* receive side */
    uint64_t recv_off;
    uint64_t recv_max;
    bool stop_queued;
    bool msd_queued;
    uint64_t stop_code;
    /* application view */
    bool app_closed;
    bool close_queued;
    bool lingering; /* app_closed after stop(): waiting for the peer's FIN or RESET */
    moq_list ready_link;
    moq_list ctrl_link;
    moq_list closed_link;
    moq_list writable_link;
    moq_list want_link;
} qstream;

struct ping_sent {
    uint64_t seq;
    uint64_t at;
};

struct moq_qmux {
    moq_transport t; /* first: the ops cast back */
    struct moq_qmux_config cfg;
    struct moq_qmux_io io;
    void *io_ctx;
    enum moq_qmux_wire wire;
    bool is_server;
    int state;
    int depth;           /* nesting of session calls (upcalls) */
    bool wake_requested; /* io->wake called, process() not yet run */
    bool channel_closed; /* no more io calls */
    bool params_sent;
    bool params_received;
    moq_qmux_params ours;
    moq_qmux_params peer;
    uint64_t created_us;
    uint64_t last_recv_us;
    uint64_t last_ping_us;

    moq_u64map streams;
    /* streams we open, per direction */
    uint64_t next_local[2];
    uint64_t peer_max_streams[2];
    bool blocked[2];
    bool available_pending[2];
    /* streams the peer opens, per direction */
    uint64_t peer_next[2];        /* highest index seen + 1 */
    uint64_t recv_streams_max[2]; /* our advertised MAX_STREAMS */
    uint64_t recv_streams_released[2];
    bool max_streams_pending[2];
    moq_u64map holes[2]; /* indexes below peer_next never seen yet */
    /* connection flow control */
    uint64_t send_total;
    uint64_t send_max;
    uint64_t recv_total;
    uint64_t recv_consumed;
    uint64_t recv_max;
    bool max_data_pending;
    size_t queue_cost;
    size_t lingering;

    /* keep-alive and RTT */
    uint64_t ping_next_seq; /* = number of requests sent */
    bool ping_pending;
    struct ping_sent pings[PING_RING];
    size_t pings_head, pings_len;
    uint64_t pongs[PONG_RING];
    size_t pongs_head, pongs_len;
    bool have_peer_ping;
    uint64_t last_peer_ping;
    bool pong_seen;    /* the peer answers QX_PING: its silence can be judged */
    moq_liveness live; /* waiting for a ping response (ack_timeout_ms) */
    uint64_t srtt_us, min_rtt_us;

    /* outgoing datagrams (copies) */
    moq_chunk **dgq;
    size_t dgq_head, dgq_len;

    moq_list ready; /* streams with data or a FIN to send */
    moq_list ctrl;  /* streams with RESET/STOP/MAX_STREAM_DATA to send */
    moq_list ev_closed;
    moq_list ev_writable;
    moq_list want; /* streams waiting for stream_writable */

    /* record assembly */
    moq_chunk *arena;
    moq_slice *iov;
    size_t iov_cap;
    moq_chunk **release;
    size_t release_len, release_cap;

    /* closing */
    enum close_kind close_kind;
    bool close_frame_pending;
    uint64_t close_code;
    uint16_t ws_code;
    char close_reason[REASON_MAX];
    uint64_t ev_code;
    char ev_reason[REASON_MAX];

    uint64_t bytes_sent, bytes_recv;
};

static const struct moq_transport_ops qmux_ops;
static int protocol_error(moq_qmux *q, const char *reason);

static inline moq_qmux *from_t(moq_transport *t)
{
    return (moq_qmux *)t;
}

static inline int sdir(int64_t id)
{
    return (id & 0x2) ? DIR_UNI : DIR_BIDI;
}

static inline bool id_is_local(const moq_qmux *q, uint64_t id)
{
    return ((id & 0x1) != 0) == q->is_server;
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static void copy_reason(char *dst, const void *src, size_t len)
{
    if (len >= REASON_MAX) len = REASON_MAX - 1;
    if (len) memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ---- scheduling of deferred work ----------------------------------------------------- */

static void schedule(moq_qmux *q)
{
    if (q->depth > 0 || q->wake_requested || !q->io.wake || q->state == ST_FINISHED) return;
    q->wake_requested = true;
    q->io.wake(q->io_ctx);
}

/* ---- streams ------------------------------------------------------------------------- */

static qstream *stream_get(moq_qmux *q, uint64_t id)
{
    return moq_u64map_get(&q->streams, id);
}

/* A stream the application may still use (not yet given stream_closed). */
static qstream *app_stream(moq_qmux *q, int64_t sid)
{
    if (sid < 0) return NULL;
    qstream *s = stream_get(q, (uint64_t)sid);
    return s && !s->app_closed ? s : NULL;
}

static qstream *stream_new(moq_qmux *q, uint64_t id, bool local)
{
    qstream *s = moq_pool_calloc(sizeof(*s));
    if (!s) return NULL;
    s->id = (int64_t)id;
    s->local = local;
    s->bidi = sdir((int64_t)id) == DIR_BIDI;
    moq_list_init(&s->ready_link);
    moq_list_init(&s->ctrl_link);
    moq_list_init(&s->closed_link);
    moq_list_init(&s->writable_link);
    moq_list_init(&s->want_link);
    if (moq_u64map_put(&q->streams, id, s) < 0) {
        moq_pool_free(s, sizeof(*s));
        return NULL;
    }
    return s;
}

static void sq_clear(moq_qmux *q, qstream *s)
{
    for (size_t i = 0; i < s->sq_len; i++)
        moq_chunk_unref(s->sq[s->sq_head + i].chunk);
    free(s->sq);
    s->sq = NULL;
    s->sq_head = s->sq_len = s->sq_cap = 0;
    q->queue_cost -= s->cost;
    s->cost = 0;
    s->unsent = 0;
}

static int sq_reserve(qstream *s, size_t extra)
{
    if (s->sq_head + s->sq_len + extra <= s->sq_cap) return 0;
    if (s->sq_head > 0) {
        memmove(s->sq, s->sq + s->sq_head, s->sq_len * sizeof(*s->sq));
        s->sq_head = 0;
        if (s->sq_len + extra <= s->sq_cap) return 0;
    }
    size_t cap = s->sq_cap ? s->sq_cap : 4;
    while (cap < s->sq_len + extra)
        cap *= 2;
    moq_slice *n = realloc(s->sq, cap * sizeof(*n));
    if (!n) return MOQ_ERR_NOMEM;
    s->sq = n;
    s->sq_cap = cap;
    return 0;
}

static bool sendable(const qstream *s)
{
    if (s->send != SEND_OPEN) return false;
    if (s->unsent > 0) return s->sent < s->send_max;
    return s->fin_queued && !s->fin_sent;
}

static void ready_update(moq_qmux *q, qstream *s)
{
    bool want = q->state == ST_OPEN && sendable(s);
    if (want && !moq_list_linked(&s->ready_link)) moq_list_push_back(&q->ready, &s->ready_link);
    if (!want && moq_list_linked(&s->ready_link)) moq_list_remove(&s->ready_link);
}

static void ctrl_link(moq_qmux *q, qstream *s)
{
    if (!moq_list_linked(&s->ctrl_link)) moq_list_push_back(&q->ctrl, &s->ctrl_link);
}

static bool send_app_done(const qstream *s)
{
    return s->send != SEND_OPEN;
}

static bool recv_app_done(const qstream *s)
{
    return s->recv != RECV_OPEN;
}

static bool transport_done(const qstream *s)
{
    return s->send != SEND_OPEN && !s->reset_queued &&
           (s->recv == RECV_NONE || s->recv == RECV_DONE) && !s->stop_queued;
}

/* Queue stream_closed once both directions are finished from the application's view. */
static void check_app_done(moq_qmux *q, qstream *s)
{
    if (s->app_closed || s->close_queued) return;
    if (!send_app_done(s) || !recv_app_done(s)) return;
    s->close_queued = true;
    moq_list_push_back(&q->ev_closed, &s->closed_link);
}

static void release_peer_stream_credit(moq_qmux *q, int dir)
{
    /* Same policy as the @moq/qmux and Rust peers: raise the limit by what was released once
     * used + 2 * released exceeds it. */
    q->recv_streams_released[dir]++;
    if (q->peer_next[dir] + 2 * q->recv_streams_released[dir] > q->recv_streams_max[dir]) {
        uint64_t nmax = q->recv_streams_max[dir] + q->recv_streams_released[dir];
        if (nmax > MOQ_QMUX_MAX_STREAMS_LIMIT) nmax = MOQ_QMUX_MAX_STREAMS_LIMIT;
        q->recv_streams_max[dir] = nmax;
        q->recv_streams_released[dir] = 0;
        q->max_streams_pending[dir] = true;
    }
}

static void stop_lingering(moq_qmux *q, qstream *s)
{
    if (!s->lingering) return;
    s->lingering = false;
    q->lingering--;
}

static void stream_destroy(moq_qmux *q, qstream *s)
{
    stop_lingering(q, s);
    moq_list_remove(&s->ready_link);
    moq_list_remove(&s->ctrl_link);
    moq_list_remove(&s->closed_link);
    moq_list_remove(&s->writable_link);
    moq_list_remove(&s->want_link);
    moq_u64map_del(&q->streams, (uint64_t)s->id);
    sq_clear(q, s);
    moq_pool_free(s, sizeof(*s));
}

static void maybe_free(moq_qmux *q, qstream *s)
{
    if (!s->app_closed || !transport_done(s) || moq_list_linked(&s->ctrl_link)) return;
    bool peer_stream = !s->local;
    int dir = sdir(s->id);
    stream_destroy(q, s);
    if (peer_stream && q->state == ST_OPEN) release_peer_stream_credit(q, dir);
}

/* ---- events -------------------------------------------------------------------------- */

#define EV(q, name) ((q)->t.ev && (q)->t.ev->name)

static void free_all_streams(moq_qmux *q)
{
    size_t it = 0;
    uint64_t key;
    void *val;
    while (moq_u64map_next(&q->streams, &it, &key, &val))
        stream_destroy(q, val);
}

static void drop_outgoing(moq_qmux *q)
{
    size_t it = 0;
    uint64_t key;
    void *val;
    while (moq_u64map_next(&q->streams, &it, &key, &val)) {
        qstream *s = val;
        sq_clear(q, s);
        moq_list_remove(&s->ready_link);
        moq_list_remove(&s->ctrl_link);
        moq_list_remove(&s->closed_link);
        moq_list_remove(&s->writable_link);
        moq_list_remove(&s->want_link);
        s->close_queued = false;
    }
    while (q->dgq_len) {
        moq_chunk_unref(q->dgq[q->dgq_head]);
        q->dgq_head = (q->dgq_head + 1) % q->cfg.max_datagram_queue;
        q->dgq_len--;
    }
}

static void deliver_closed(moq_qmux *q)
{
    q->state = ST_FINISHED;
    moq_info(LOG, "session %s closed: code %llu \"%s\"", q->t.peer, (unsigned long long)q->ev_code,
             q->ev_reason);
    if (EV(q, closed)) q->t.ev->closed(q->t.app, &q->t, q->ev_code, q->ev_reason);
    free_all_streams(q);
}

/* Deliver queued events. Returns true if any was delivered. */
static bool deliver_events(moq_qmux *q)
{
    bool any = false;
    for (int budget = 100000; budget > 0 && q->state == ST_OPEN; budget--) {
        if (!moq_list_empty(&q->ev_writable)) {
            qstream *s = moq_list_first(&q->ev_writable, qstream, writable_link);
            moq_list_remove(&s->writable_link);
            any = true;
            if (EV(q, stream_writable) && !s->app_closed)
                q->t.ev->stream_writable(q->t.app, &q->t, s->id, s->ctx);
            continue;
        }
        if (!moq_list_empty(&q->ev_closed)) {
            qstream *s = moq_list_first(&q->ev_closed, qstream, closed_link);
            moq_list_remove(&s->closed_link);
            s->close_queued = false;
            s->app_closed = true;
            moq_list_remove(&s->want_link);
            any = true;
            void *ctx = s->ctx;
            s->ctx = NULL;
            if (s->recv == RECV_STOPPED) {
                s->lingering = true;
                q->lingering++;
            }
            if (EV(q, stream_closed)) q->t.ev->stream_closed(q->t.app, &q->t, s->id, ctx);
            if (q->lingering > MAX_LINGERING) {
                /* A peer that never answers STOP_SENDING would pin these forever. */
                protocol_error(q, "peer leaves stopped streams unfinished");
                continue;
            }
            maybe_free(q, s);
            continue;
        }
        bool fired = false;
        for (int dir = 0; dir < 2 && q->state == ST_OPEN; dir++) {
            if (!q->available_pending[dir]) continue;
            q->available_pending[dir] = false;
            fired = any = true;
            if (EV(q, streams_available))
                q->t.ev->streams_available(q->t.app, &q->t, dir == DIR_BIDI);
        }
        if (!fired) break;
    }
    if (q->state == ST_CLOSED) {
        deliver_closed(q);
        any = true;
    }
    return any;
}

/* ---- closing ------------------------------------------------------------------------- */

static void session_close(moq_qmux *q, enum close_kind kind, uint64_t code, const char *reason,
                          size_t reason_len)
{
    if (q->state != ST_OPEN) return;
    q->close_kind = kind;
    q->ev_code = code;
    copy_reason(q->ev_reason, reason, reason_len);
    copy_reason(q->close_reason, reason, reason_len);
    q->close_code = code;
    q->close_frame_pending =
        kind == CK_APP || kind == CK_ERROR || kind == CK_TEXT || kind == CK_HANDSHAKE;
    switch (kind) {
    case CK_APP:
    case CK_PEER:
        q->ws_code = MOQ_QMUX_WS_NORMAL;
        break;
    case CK_ERROR:
    case CK_TEXT:
        q->ws_code = MOQ_QMUX_WS_PROTOCOL_ERROR;
        break;
    case CK_HANDSHAKE:
    case CK_IDLE:
        q->ws_code = MOQ_QMUX_WS_GOING_AWAY;
        break;
    case CK_CHANNEL:
        q->ws_code = 0;
        break;
    }
    if (kind == CK_ERROR || kind == CK_TEXT || kind == CK_HANDSHAKE || kind == CK_IDLE)
        moq_info(LOG, "session %s: closing: %s", q->t.peer, q->ev_reason);
    drop_outgoing(q);
    if (kind == CK_CHANNEL) {
        q->channel_closed = true;
        q->state = ST_CLOSED;
    } else {
        q->state = ST_CLOSING;
    }
    schedule(q);
}

static int protocol_error(moq_qmux *q, const char *reason)
{
    session_close(q, CK_ERROR, MOQ_QMUX_CLOSE_PROTOCOL, reason, strlen(reason));
    return MOQ_ERR_PROTO;
}

/* ---- transport ops (downcalls) -------------------------------------------------------- */

static int op_open_stream(moq_transport *t, bool bidi, int64_t *sid)
{
    moq_qmux *q = from_t(t);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    int dir = bidi ? DIR_BIDI : DIR_UNI;
    if (!q->params_received || q->next_local[dir] >= q->peer_max_streams[dir]) {
        q->blocked[dir] = true;
        return MOQ_ERR_AGAIN;
    }
    uint64_t id = (q->next_local[dir] << 2) | (bidi ? 0 : 0x2) | (q->is_server ? 0x1 : 0);
    qstream *s = stream_new(q, id, true);
    if (!s) return MOQ_ERR_NOMEM;
    q->next_local[dir]++;
    s->send = SEND_OPEN;
    s->recv = bidi ? RECV_OPEN : RECV_NONE;
    s->send_max =
        bidi ? q->peer.initial_max_stream_data_bidi_remote : q->peer.initial_max_stream_data_uni;
    s->recv_max = bidi ? q->ours.initial_max_stream_data_bidi_local : 0;
    *sid = (int64_t)id;
    return 0;
}

static void want_writable(moq_qmux *q, qstream *s)
{
    s->want_writable = true;
    if (!moq_list_linked(&s->want_link)) moq_list_push_back(&q->want, &s->want_link);
}

static int op_write(moq_transport *t, int64_t sid, const moq_slice *v, size_t n, bool fin)
{
    moq_qmux *q = from_t(t);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    qstream *s = app_stream(q, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (s->send == SEND_NONE) return MOQ_ERR_INVALID;
    if (s->send == SEND_DONE || s->fin_queued) return MOQ_ERR_CLOSED;
    uint64_t bytes = 0;
    size_t cost = 0, slices = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == 0) continue;
        if (!v[i].chunk || v[i].off > v[i].chunk->len || v[i].len > v[i].chunk->len - v[i].off)
            return MOQ_ERR_INVALID;
        bytes += v[i].len;
        cost += v[i].len + SLICE_COST;
        slices++;
    }
    if (bytes == 0 && !fin) return 0;
    if (q->queue_cost > 0 && q->queue_cost + cost > q->cfg.max_send_queue) {
        want_writable(q, s);
        return MOQ_ERR_AGAIN;
    }
    if (sq_reserve(s, slices) < 0) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len == 0) continue;
        s->sq[s->sq_head + s->sq_len++] = v[i];
        moq_chunk_ref(v[i].chunk);
    }
    s->unsent += bytes;
    s->cost += cost;
    q->queue_cost += cost;
    if (fin) s->fin_queued = true;
    if (s->unsent > q->cfg.stream_low_water) want_writable(q, s);
    ready_update(q, s);
    schedule(q);
    return 0;
}

static size_t op_unsent(moq_transport *t, int64_t sid)
{
    qstream *s = app_stream(from_t(t), sid);
    return s ? (size_t)s->unsent : 0;
}

static void op_set_priority(moq_transport *t, int64_t sid, uint64_t priority)
{
    qstream *s = app_stream(from_t(t), sid);
    if (s) s->priority = priority;
}

static int op_reset(moq_transport *t, int64_t sid, uint64_t code)
{
    moq_qmux *q = from_t(t);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    if (code > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    qstream *s = app_stream(q, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (s->send == SEND_NONE) return MOQ_ERR_INVALID;
    if (s->send == SEND_DONE) return 0;
    sq_clear(q, s);
    s->send = SEND_DONE;
    s->reset_queued = true;
    s->reset_code = code;
    s->want_writable = false;
    moq_list_remove(&s->want_link);
    ready_update(q, s);
    ctrl_link(q, s);
    check_app_done(q, s);
    schedule(q);
    return 0;
}

static int op_stop(moq_transport *t, int64_t sid, uint64_t code)
{
    moq_qmux *q = from_t(t);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    if (code > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    qstream *s = app_stream(q, sid);
    if (!s) return MOQ_ERR_NOT_FOUND;
    if (s->recv == RECV_NONE) return MOQ_ERR_INVALID;
    if (s->recv != RECV_OPEN) return 0;
    s->recv = RECV_STOPPED;
    s->stop_queued = true;
    s->stop_code = code;
    s->msd_queued = false;
    ctrl_link(q, s);
    check_app_done(q, s);
    schedule(q);
    return 0;
}

static void op_set_stream_ctx(moq_transport *t, int64_t sid, void *sctx)
{
    qstream *s = app_stream(from_t(t), sid);
    if (s) s->ctx = sctx;
}

static size_t record_budget(const moq_qmux *q)
{
    if (q->wire == MOQ_QMUX_00) return MOQ_QMUX_00_MAX_FRAME_SIZE;
    uint64_t peer = q->params_received ? q->peer.max_record_size : MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE;
    return (size_t)min_u64(peer, q->cfg.max_record_out);
}

static size_t op_max_datagram(moq_transport *t)
{
    moq_qmux *q = from_t(t);
    if (q->wire == MOQ_QMUX_00 || !q->params_received || q->peer.max_datagram_frame_size == 0 ||
        q->state != ST_OPEN)
        return 0;
    uint64_t cap = min_u64(q->peer.max_datagram_frame_size, record_budget(q));
    uint64_t overhead = 1 + moq_varint_len(cap);
    return cap > overhead ? (size_t)(cap - overhead) : 0;
}

static int op_send_datagram(moq_transport *t, const uint8_t *data, size_t len)
{
    moq_qmux *q = from_t(t);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    size_t max = op_max_datagram(t);
    if (max == 0) return MOQ_ERR_UNSUPPORTED;
    if (len > max) return MOQ_ERR_TOO_LARGE;
    /* Unreliable: shed load instead of queueing behind a backpressured channel. */
    if (q->dgq_len >= q->cfg.max_datagram_queue ||
        (!q->channel_closed && q->io.queued_bytes(q->io_ctx) >= q->cfg.send_high_water))
        return 0;
    moq_chunk *c = moq_chunk_copy(data, len);
    if (!c) return MOQ_ERR_NOMEM;
    q->dgq[(q->dgq_head + q->dgq_len) % q->cfg.max_datagram_queue] = c;
    q->dgq_len++;
    schedule(q);
    return 0;
}

static void op_close(moq_transport *t, uint64_t code, const char *reason)
{
    moq_qmux *q = from_t(t);
    if (code > MOQ_VARINT_MAX) code = MOQ_VARINT_MAX;
    if (!reason) reason = "";
    session_close(q, CK_APP, code, reason, strlen(reason));
}

static void op_stats(moq_transport *t, struct moq_transport_stats *out)
{
    moq_qmux *q = from_t(t);
    memset(out, 0, sizeof(*out));
    out->rtt_us = q->srtt_us;
    out->min_rtt_us = q->min_rtt_us;
    out->bytes_sent = q->bytes_sent;
    out->bytes_recv = q->bytes_recv;
}

static const struct moq_transport_ops qmux_ops = {
    .open_stream = op_open_stream,
    .write = op_write,
    .unsent = op_unsent,
    .set_priority = op_set_priority,
    .reset = op_reset,
    .stop = op_stop,
    .set_stream_ctx = op_set_stream_ctx,
    .send_datagram = op_send_datagram,
    .max_datagram = op_max_datagram,
    .close = op_close,
    .stats = op_stats,
};

/* ---- record production ---------------------------------------------------------------- */

typedef struct {
    size_t budget;
    size_t used;
    size_t n_iov;
    int frames;
} record;

static bool arena_ensure(moq_qmux *q)
{
    if (q->arena && q->arena->cap - q->arena->len >= ARENA_MIN_FREE) return true;
    moq_chunk *a = moq_chunk_new(ARENA_CAP);
    if (!a) return false;
    moq_chunk_unref(q->arena);
    q->arena = a;
    return true;
}

static bool iov_reserve(moq_qmux *q, size_t need)
{
    if (need <= q->iov_cap) return true;
    size_t cap = q->iov_cap ? q->iov_cap : 16;
    while (cap < need)
        cap *= 2;
    moq_slice *n = realloc(q->iov, cap * sizeof(*n));
    if (!n) return false;
    q->iov = n;
    q->iov_cap = cap;
    return true;
}

static bool release_reserve(moq_qmux *q, size_t extra)
{
    if (q->release_len + extra <= q->release_cap) return true;
    size_t cap = q->release_cap ? q->release_cap : 16;
    while (cap < q->release_len + extra)
        cap *= 2;
    moq_chunk **n = realloc(q->release, cap * sizeof(*n));
    if (!n) return false;
    q->release = n;
    q->release_cap = cap;
    return true;
}

/* Chunks whose last queued byte went into the current record: unreferenced after sending. */
static bool release_push(moq_qmux *q, moq_chunk *c)
{
    if (!release_reserve(q, 1)) return false;
    q->release[q->release_len++] = c;
    return true;
}

static size_t arena_free(const moq_qmux *q)
{
    return q->arena->cap - q->arena->len;
}

static bool frame_allowed(const moq_qmux *q, const record *r)
{
    return q->wire != MOQ_QMUX_00 || r->frames == 0;
}

/* Append header bytes just written at the arena's end (n bytes) to the record. */
static bool rec_commit_arena(moq_qmux *q, record *r, size_t n)
{
    size_t off = q->arena->len;
    if (r->n_iov > 0) {
        moq_slice *last = &q->iov[r->n_iov - 1];
        if (last->chunk == q->arena && last->off + last->len == off) {
            last->len += n;
            q->arena->len += n;
            r->used += n;
            return true;
        }
    }
    if (!iov_reserve(q, r->n_iov + 1)) return false;
    q->iov[r->n_iov++] = (moq_slice){q->arena, off, n};
    q->arena->len += n;
    r->used += n;
    return true;
}

/* Encode a whole frame (header and payload copied) into the record. */
static bool rec_frame(moq_qmux *q, record *r, const moq_qmux_frame *f)
{
    if (!frame_allowed(q, r)) return false;
    size_t room = min_u64(arena_free(q), r->budget - r->used);
    int n = moq_qmux_frame_encode(f, q->arena->data + q->arena->len, room);
    if (n < 0 || !rec_commit_arena(q, r, (size_t)n)) return false;
    r->frames++;
    return true;
}

static bool rec_control(moq_qmux *q, record *r, uint64_t now)
{
    moq_qmux_frame f;
    if (q->max_data_pending) {
        f = (moq_qmux_frame){.kind = MOQ_QMUX_MAX_DATA, .value = q->recv_max};
        if (!rec_frame(q, r, &f)) return false;
        q->max_data_pending = false;
    }
    for (int dir = 0; dir < 2; dir++) {
        if (!q->max_streams_pending[dir]) continue;
        f = (moq_qmux_frame){.kind = dir == DIR_BIDI ? MOQ_QMUX_MAX_STREAMS_BIDI
                                                     : MOQ_QMUX_MAX_STREAMS_UNI,
                             .value = q->recv_streams_max[dir]};
        if (!rec_frame(q, r, &f)) return false;
        q->max_streams_pending[dir] = false;
    }
    while (q->pongs_len) {
        f = (moq_qmux_frame){.kind = MOQ_QMUX_PING_RESPONSE, .value = q->pongs[q->pongs_head]};
        if (!rec_frame(q, r, &f)) return false;
        q->pongs_head = (q->pongs_head + 1) % PONG_RING;
        q->pongs_len--;
    }
    if (q->ping_pending) {
        f = (moq_qmux_frame){.kind = MOQ_QMUX_PING_REQUEST, .value = q->ping_next_seq};
        if (!rec_frame(q, r, &f)) return false;
        q->ping_pending = false;
        if (q->pings_len == PING_RING) {
            q->pings_head = (q->pings_head + 1) % PING_RING;
            q->pings_len--;
        }
        q->pings[(q->pings_head + q->pings_len++) % PING_RING] =
            (struct ping_sent){q->ping_next_seq, now};
        q->ping_next_seq++;
        if (q->pong_seen) moq_liveness_sent(&q->live, now, true);
    }
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &q->ctrl)
    {
        qstream *s = moq_container_of(pos, qstream, ctrl_link);
        if (s->reset_queued) {
            f = (moq_qmux_frame){.kind = MOQ_QMUX_RESET_STREAM,
                                 .stream_id = (uint64_t)s->id,
                                 .code = s->reset_code,
                                 .final_size = s->sent};
            if (!rec_frame(q, r, &f)) return false;
            s->reset_queued = false;
        }
        if (s->stop_queued) {
            f = (moq_qmux_frame){
                .kind = MOQ_QMUX_STOP_SENDING, .stream_id = (uint64_t)s->id, .code = s->stop_code};
            if (!rec_frame(q, r, &f)) return false;
            s->stop_queued = false;
        }
        if (s->msd_queued) {
            if (s->recv == RECV_OPEN) {
                f = (moq_qmux_frame){.kind = MOQ_QMUX_MAX_STREAM_DATA,
                                     .stream_id = (uint64_t)s->id,
                                     .value = s->recv_max};
                if (!rec_frame(q, r, &f)) return false;
            }
            s->msd_queued = false;
        }
        moq_list_remove(&s->ctrl_link);
        maybe_free(q, s);
    }
    return true;
}

static bool rec_datagrams(moq_qmux *q, record *r)
{
    while (q->dgq_len) {
        moq_chunk *c = q->dgq[q->dgq_head];
        if (!frame_allowed(q, r)) return false;
        uint8_t *p = q->arena->data + q->arena->len;
        size_t head = 1 + moq_varint_len(c->len);
        if (arena_free(q) < head || r->used + head + c->len > r->budget) return false;
        if (!iov_reserve(q, r->n_iov + 2) || !release_push(q, c)) return false;
        p = moq_varint_put(p, MOQ_QMUX_FT_DATAGRAM_LEN);
        moq_varint_put(p, c->len);
        rec_commit_arena(q, r, head);
        q->iov[r->n_iov++] = (moq_slice){c, 0, c->len};
        r->used += c->len;
        r->frames++;
        q->dgq_head = (q->dgq_head + 1) % q->cfg.max_datagram_queue;
        q->dgq_len--;
    }
    return true;
}

/* Highest-priority ready stream; the first in list order among equals (round robin: a
 * served stream moves to the back). Streams with nothing sendable leave the list. */
static qstream *pick_stream(moq_qmux *q, bool conn_credit)
{
    qstream *best = NULL;
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &q->ready)
    {
        qstream *s = moq_container_of(pos, qstream, ready_link);
        if (!sendable(s)) {
            moq_list_remove(&s->ready_link);
            continue;
        }
        if (s->unsent > 0 && !conn_credit) continue;
        if (!best || s->priority > best->priority) best = s;
    }
    return best;
}

/* Move `len` payload bytes of s into the record as slices. */
static bool take_payload(moq_qmux *q, record *r, qstream *s, uint64_t len)
{
    size_t need = 0;
    uint64_t left = len;
    for (size_t i = 0; left > 0; i++) {
        const moq_slice *sl = &s->sq[s->sq_head + i];
        left -= min_u64(left, sl->len);
        need++;
    }
    if (!iov_reserve(q, r->n_iov + need) || !release_reserve(q, need)) return false;
    left = len;
    while (left > 0) {
        moq_slice *sl = &s->sq[s->sq_head];
        uint64_t take = min_u64(left, sl->len);
        q->iov[r->n_iov++] = (moq_slice){sl->chunk, sl->off, (size_t)take};
        left -= take;
        s->cost -= (size_t)take;
        q->queue_cost -= (size_t)take;
        if (take == sl->len) {
            q->release[q->release_len++] = sl->chunk;
            s->cost -= SLICE_COST;
            q->queue_cost -= SLICE_COST;
            s->sq_head++;
            s->sq_len--;
        } else {
            sl->off += (size_t)take;
            sl->len -= (size_t)take;
        }
    }
    if (s->sq_len == 0) s->sq_head = 0;
    return true;
}

static bool rec_streams(moq_qmux *q, record *r)
{
    while (frame_allowed(q, r) && r->used + MIN_FRAME_ROOM <= r->budget && arena_free(q) >= 32) {
        bool conn_credit = q->send_total < q->send_max;
        qstream *s = pick_stream(q, conn_credit);
        if (!s) break;
        uint64_t len = 0;
        if (s->unsent > 0) {
            uint64_t want = min_u64(s->unsent, s->send_max - s->sent);
            want = min_u64(want, q->send_max - q->send_total);
            want = min_u64(want, MOQ_QMUX_MAX_STREAM_PAYLOAD);
            len = min_u64(
                want, moq_qmux_stream_payload_fit(r->budget - r->used, (uint64_t)s->id, s->sent));
            if (len == 0) break; /* the record is full */
        }
        bool fin = s->fin_queued && len == s->unsent;
        uint8_t *hdr = q->arena->data + q->arena->len;
        size_t hlen = moq_qmux_stream_header(hdr, (uint64_t)s->id, s->sent, len, fin);
        if (r->used + hlen + len > r->budget) break;
        size_t saved_iov = r->n_iov, saved_used = r->used;
        if (!rec_commit_arena(q, r, hlen)) break;
        if (!take_payload(q, r, s, len)) {
            /* undo the header: nothing of this frame goes out */
            q->arena->len -= hlen;
            r->n_iov = saved_iov;
            r->used = saved_used;
            if (r->n_iov > 0) {
                moq_slice *last = &q->iov[r->n_iov - 1];
                if (last->chunk == q->arena && last->off + last->len > q->arena->len)
                    last->len = q->arena->len - last->off;
            }
            break;
        }
        r->used += (size_t)len;
        r->frames++;
        s->sent += len;
        s->unsent -= len;
        q->send_total += len;
        q->bytes_sent += len;
        if (fin) {
            s->fin_sent = true;
            s->send = SEND_DONE;
            check_app_done(q, s);
        }
        moq_list_remove(&s->ready_link);
        ready_update(q, s);
    }
    return true;
}

/* Build and send one record. Returns 1 if one was sent, 0 if there was nothing to send,
 * negative if the channel failed. */
static int send_one_record(moq_qmux *q, uint64_t now)
{
    if (!arena_ensure(q)) return 0;
    record r = {.budget = record_budget(q)};
    if (!q->params_sent) {
        moq_qmux_frame f = {.kind = MOQ_QMUX_TRANSPORT_PARAMETERS, .params = q->ours};
        if (rec_frame(q, &r, &f)) q->params_sent = true;
    }
    if (q->state == ST_CLOSING && q->close_frame_pending) {
        bool app = q->close_kind == CK_APP;
        uint64_t code = q->close_kind == CK_TEXT ? MOQ_QMUX_CLOSE_TEXT : q->close_code;
        moq_qmux_frame f = {.kind = app ? MOQ_QMUX_APPLICATION_CLOSE : MOQ_QMUX_CONNECTION_CLOSE,
                            .code = code,
                            .data = (const uint8_t *)q->close_reason,
                            .len = strlen(q->close_reason)};
        if (rec_frame(q, &r, &f)) q->close_frame_pending = false;
    } else if (q->state == ST_OPEN) {
        if (rec_control(q, &r, now) && rec_datagrams(q, &r)) rec_streams(q, &r);
    }
    int rv = 0;
    if (r.n_iov > 0) {
        rv = q->io.send_record(q->io_ctx, q->iov, r.n_iov) < 0 ? MOQ_ERR_IO : 1;
    }
    for (size_t i = 0; i < q->release_len; i++)
        moq_chunk_unref(q->release[i]);
    q->release_len = 0;
    return rv;
}

static void queue_writable_events(moq_qmux *q)
{
    /* Below half the session cap, so a refused writer is not woken into another refusal. */
    if (moq_list_empty(&q->want) || q->queue_cost > q->cfg.max_send_queue / 2) return;
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &q->want)
    {
        qstream *s = moq_container_of(pos, qstream, want_link);
        if (s->unsent > q->cfg.stream_low_water && s->send == SEND_OPEN) continue;
        moq_list_remove(&s->want_link);
        s->want_writable = false;
        if (s->send == SEND_OPEN && !moq_list_linked(&s->writable_link))
            moq_list_push_back(&q->ev_writable, &s->writable_link);
    }
}

static void channel_failed(moq_qmux *q)
{
    const char *why = "websocket send failed";
    if (q->state == ST_OPEN) {
        session_close(q, CK_CHANNEL, 0, why, strlen(why));
    } else {
        q->channel_closed = true;
        if (q->state == ST_CLOSING) q->state = ST_CLOSED;
    }
}

static void flush(moq_qmux *q, uint64_t now)
{
    if (q->channel_closed || q->state == ST_CLOSED || q->state == ST_FINISHED) return;
    if (q->state == ST_CLOSING) {
        /* The close record goes out regardless of backpressure, then the WebSocket Close. */
        while (!q->params_sent || q->close_frame_pending) {
            int rv = send_one_record(q, now);
            if (rv < 0) {
                channel_failed(q);
                return;
            }
            if (rv == 0) break;
        }
        q->channel_closed = true;
        q->state = ST_CLOSED;
        char ws_reason[WS_REASON_MAX + 1] = "";
        if (q->ws_code != MOQ_QMUX_WS_NORMAL) /* only our own ASCII reasons get here */
            snprintf(ws_reason, sizeof(ws_reason), "%.*s", WS_REASON_MAX, q->ev_reason);
        q->io.close(q->io_ctx, q->ws_code, ws_reason);
        return;
    }
    while (q->state == ST_OPEN && q->io.queued_bytes(q->io_ctx) < q->cfg.send_high_water) {
        int rv = send_one_record(q, now);
        if (rv < 0) {
            channel_failed(q);
            return;
        }
        if (rv == 0) break;
    }
    queue_writable_events(q);
}

/* ---- session calls (upcalls) ---------------------------------------------------------- */

static void enter(moq_qmux *q)
{
    q->depth++;
}

static int leave(moq_qmux *q, uint64_t now)
{
    if (q->depth == 1) {
        q->wake_requested = false;
        for (int round = 0; round < 64 && q->state != ST_FINISHED; round++) {
            flush(q, now);
            if (!deliver_events(q)) break;
        }
    }
    q->depth--;
    if (q->state == ST_FINISHED) return MOQ_ERR_CLOSED;
    bool pending = !moq_list_empty(&q->ev_closed) || !moq_list_empty(&q->ev_writable) ||
                   q->available_pending[0] || q->available_pending[1] || q->state != ST_OPEN;
    if (pending) schedule(q);
    return 0;
}

/* ---- frame handlers -------------------------------------------------------------------- */

/* Replenish a receive window the way the @moq/qmux client does: once at most half the window
 * is left, advertise consumed + window. */
static bool replenish(uint64_t consumed, uint64_t *max, uint64_t window)
{
    if (window == 0 || *max - consumed > window / 2) return false;
    *max = consumed + window;
    return true;
}

static void conn_consumed(moq_qmux *q, uint64_t n)
{
    q->recv_consumed += n;
    if (replenish(q->recv_consumed, &q->recv_max, q->ours.initial_max_data))
        q->max_data_pending = true;
}

static uint64_t stream_window(const moq_qmux *q, const qstream *s)
{
    if (!s->bidi) return q->ours.initial_max_stream_data_uni;
    return s->local ? q->ours.initial_max_stream_data_bidi_local
                    : q->ours.initial_max_stream_data_bidi_remote;
}

/* A peer-initiated index we have not created: new (or a hole being filled), or closed. */
static bool peer_index_closed(moq_qmux *q, int dir, uint64_t index)
{
    return index < q->peer_next[dir] && !moq_u64map_get(&q->holes[dir], index);
}

/* Account a peer-initiated index as opened (implicitly opening every lower one). */
static int peer_index_open(moq_qmux *q, int dir, uint64_t index)
{
    if (index >= q->recv_streams_max[dir]) return protocol_error(q, "stream limit exceeded");
    if (index < q->peer_next[dir]) {
        moq_u64map_del(&q->holes[dir], index);
        return 0;
    }
    for (uint64_t i = q->peer_next[dir]; i < index; i++)
        if (moq_u64map_put(&q->holes[dir], i, (void *)1) < 0)
            return protocol_error(q, "out of memory");
    q->peer_next[dir] = index + 1;
    return 0;
}

/* Find the stream a frame is about. Returns 1 with *out set, 0 when the frame is to be
 * ignored (a stream already closed), negative on a protocol error. create: the frame may open
 * a peer stream. */
static int frame_stream(moq_qmux *q, uint64_t id, bool create, qstream **out)
{
    qstream *s = stream_get(q, id);
    if (s) {
        *out = s;
        return 1;
    }
    int dir = sdir((int64_t)id);
    uint64_t index = id >> 2;
    if (id_is_local(q, id))
        return index >= q->next_local[dir] ? protocol_error(q, "frame for a stream never opened")
                                           : 0;
    if (peer_index_closed(q, dir, index) || !create) return 0;
    int rv = peer_index_open(q, dir, index);
    if (rv < 0) return rv;
    s = stream_new(q, id, false);
    if (!s) return protocol_error(q, "out of memory");
    s->recv = RECV_OPEN;
    s->send = s->bidi ? SEND_OPEN : SEND_NONE;
    s->send_max = s->bidi ? q->peer.initial_max_stream_data_bidi_local : 0;
    s->recv_max = stream_window(q, s);
    *out = s;
    if (EV(q, stream_opened)) q->t.ev->stream_opened(q->t.app, &q->t, s->id, s->bidi);
    return q->state == ST_OPEN ? 1 : MOQ_ERR_CLOSED;
}

static bool can_recv(const moq_qmux *q, uint64_t id)
{
    return sdir((int64_t)id) == DIR_BIDI || !id_is_local(q, id);
}

static bool can_send(const moq_qmux *q, uint64_t id)
{
    return sdir((int64_t)id) == DIR_BIDI || id_is_local(q, id);
}

static int on_stream(moq_qmux *q, const moq_qmux_frame *f)
{
    if (!can_recv(q, f->stream_id)) return protocol_error(q, "STREAM on a send-only stream");
    qstream *s;
    int rv = frame_stream(q, f->stream_id, true, &s);
    if (rv <= 0) return rv;
    if (s->recv == RECV_DONE) return 0; /* after FIN/RESET: ignored, like the peers do */
    if (f->has_offset && f->offset != s->recv_off)
        return protocol_error(q, "stream data out of order");
    uint64_t len = f->len;
    if (s->recv_off + len > s->recv_max || q->recv_total + len > q->recv_max)
        return protocol_error(q, "flow control error");
    s->recv_off += len;
    q->recv_total += len;
    q->bytes_recv += len;
    if (s->recv == RECV_STOPPED) {
        /* discarded: the credit comes back at once */
        conn_consumed(q, len);
        if (f->fin) {
            s->recv = RECV_DONE;
            stop_lingering(q, s);
            maybe_free(q, s);
        }
        return 0;
    }
    if ((len > 0 || f->fin) && EV(q, stream_data))
        q->t.ev->stream_data(q->t.app, &q->t, s->id, s->ctx, f->data, (size_t)len, f->fin);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    conn_consumed(q, len);
    if (f->fin) {
        s->recv = RECV_DONE;
        s->stop_queued = false;
        s->msd_queued = false;
        check_app_done(q, s);
        maybe_free(q, s);
    } else if (s->recv == RECV_OPEN && replenish(s->recv_off, &s->recv_max, stream_window(q, s))) {
        s->msd_queued = true;
        ctrl_link(q, s);
    }
    return 0;
}

static int on_reset(moq_qmux *q, const moq_qmux_frame *f)
{
    if (f->has_reliable_size && !q->ours.reset_stream_at)
        return protocol_error(q, "RESET_STREAM_AT without reset_stream_at");
    if (!can_recv(q, f->stream_id)) return protocol_error(q, "RESET_STREAM on a send-only stream");
    qstream *s = stream_get(q, f->stream_id);
    if (!s) {
        int dir = sdir((int64_t)f->stream_id);
        uint64_t index = f->stream_id >> 2;
        if (id_is_local(q, f->stream_id))
            return index >= q->next_local[dir]
                       ? protocol_error(q, "RESET_STREAM for a stream never opened")
                       : 0;
        if (peer_index_closed(q, dir, index)) return 0;
        /* The reset is the stream's first frame: it opens and closes it; the application
         * never hears of it (as with the @moq/qmux and Rust peers). */
        uint64_t window = dir == DIR_BIDI ? q->ours.initial_max_stream_data_bidi_remote
                                          : q->ours.initial_max_stream_data_uni;
        if (f->final_size > window || q->recv_total + f->final_size > q->recv_max)
            return protocol_error(q, "flow control error");
        int rv = peer_index_open(q, dir, index);
        if (rv < 0) return rv;
        q->recv_total += f->final_size;
        conn_consumed(q, f->final_size);
        release_peer_stream_credit(q, dir);
        return 0;
    }
    if (s->recv == RECV_DONE) return 0;
    /* Drafts up to 02 tolerate a final size below what was received (older peers sent 0). */
    uint64_t final = f->final_size > s->recv_off ? f->final_size : s->recv_off;
    uint64_t gap = final - s->recv_off;
    if (final > s->recv_max || q->recv_total + gap > q->recv_max)
        return protocol_error(q, "flow control error");
    s->recv_off = final;
    q->recv_total += gap;
    conn_consumed(q, gap);
    bool was_open = s->recv == RECV_OPEN;
    s->recv = RECV_DONE;
    stop_lingering(q, s);
    s->stop_queued = false;
    s->msd_queued = false;
    if (was_open && EV(q, stream_reset))
        q->t.ev->stream_reset(q->t.app, &q->t, s->id, s->ctx, f->code);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    check_app_done(q, s);
    maybe_free(q, s);
    return 0;
}

static int on_stop_sending(moq_qmux *q, const moq_qmux_frame *f)
{
    if (!can_send(q, f->stream_id))
        return protocol_error(q, "STOP_SENDING on a receive-only stream");
    qstream *s;
    int rv = frame_stream(q, f->stream_id, false, &s);
    if (rv <= 0) return rv;
    if (s->send != SEND_OPEN) return 0; /* finished or already reset */
    sq_clear(q, s);
    s->send = SEND_DONE;
    s->reset_queued = true;
    s->reset_code = f->code;
    s->want_writable = false;
    moq_list_remove(&s->want_link);
    ready_update(q, s);
    ctrl_link(q, s);
    if (!s->app_closed && EV(q, stream_stopped))
        q->t.ev->stream_stopped(q->t.app, &q->t, s->id, s->ctx, f->code);
    if (q->state != ST_OPEN) return MOQ_ERR_CLOSED;
    check_app_done(q, s);
    return 0;
}

static void mark_available(moq_qmux *q, int dir)
{
    if (q->blocked[dir] && q->next_local[dir] < q->peer_max_streams[dir]) {
        q->blocked[dir] = false;
        q->available_pending[dir] = true;
    }
}

static int on_params(moq_qmux *q, const moq_qmux_params *p)
{
    if (q->params_received) return protocol_error(q, "duplicate transport parameters");
    if (q->wire != MOQ_QMUX_00 && p->max_record_size < MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE)
        return protocol_error(q, "max_record_size below 16382");
    q->params_received = true;
    q->peer = *p;
    if (q->wire == MOQ_QMUX_00) q->peer.max_datagram_frame_size = 0;
    q->send_max = p->initial_max_data;
    q->peer_max_streams[DIR_BIDI] = p->initial_max_streams_bidi;
    q->peer_max_streams[DIR_UNI] = p->initial_max_streams_uni;
    /* Peer streams that arrived before its parameters (tolerated on 00/01). */
    size_t it = 0;
    uint64_t key;
    void *val;
    while (moq_u64map_next(&q->streams, &it, &key, &val)) {
        qstream *s = val;
        if (s->send != SEND_OPEN || s->local) continue;
        if (p->initial_max_stream_data_bidi_local > s->send_max)
            s->send_max = p->initial_max_stream_data_bidi_local;
        ready_update(q, s);
    }
    mark_available(q, DIR_BIDI);
    mark_available(q, DIR_UNI);
    return 0;
}

static int on_ping(moq_qmux *q, const moq_qmux_frame *f, uint64_t now)
{
    if (f->kind == MOQ_QMUX_PING_REQUEST) {
        if (q->wire == MOQ_QMUX_02) {
            if (q->have_peer_ping && f->value <= q->last_peer_ping)
                return protocol_error(q, "QX_PING request sequence must increase");
            q->have_peer_ping = true;
            q->last_peer_ping = f->value;
        }
        if (q->pongs_len == PONG_RING) { /* a flood: answer the newest */
            q->pongs_head = (q->pongs_head + 1) % PONG_RING;
            q->pongs_len--;
        }
        q->pongs[(q->pongs_head + q->pongs_len++) % PONG_RING] = f->value;
        return 0;
    }
    if (q->wire == MOQ_QMUX_02 && f->value >= q->ping_next_seq)
        return protocol_error(q, "QX_PING response for a sequence never sent");
    /* Acknowledges every outstanding request up to its sequence; time the newest of them. */
    bool found = false;
    uint64_t sent_at = 0;
    while (q->pings_len && q->pings[q->pings_head].seq <= f->value) {
        found = true;
        sent_at = q->pings[q->pings_head].at;
        q->pings_head = (q->pings_head + 1) % PING_RING;
        q->pings_len--;
    }
    if (found) q->pong_seen = true;
    if (found && now >= sent_at) {
        uint64_t sample = now - sent_at;
        q->srtt_us = q->srtt_us ? (q->srtt_us * 7 + sample) / 8 : sample;
        if (!q->min_rtt_us || sample < q->min_rtt_us) q->min_rtt_us = sample;
    }
    return 0;
}

static int on_datagram(moq_qmux *q, const moq_qmux_frame *f)
{
    if (q->ours.max_datagram_frame_size == 0)
        return protocol_error(q, "DATAGRAM without max_datagram_frame_size");
    uint64_t size = (f->has_length ? 1 + moq_varint_len(f->len) : 1) + f->len;
    if (size > q->ours.max_datagram_frame_size)
        return protocol_error(q, "DATAGRAM larger than max_datagram_frame_size");
    if (EV(q, datagram)) q->t.ev->datagram(q->t.app, &q->t, f->data, f->len);
    return q->state == ST_OPEN ? 0 : MOQ_ERR_CLOSED;
}

static int on_frame(moq_qmux *q, const moq_qmux_frame *f, uint64_t now)
{
    if (f->kind == MOQ_QMUX_PADDING) return 0;
    bool is_params = f->kind == MOQ_QMUX_TRANSPORT_PARAMETERS;
    if (q->wire == MOQ_QMUX_02 && is_params == q->params_received)
        return protocol_error(q, "QX_TRANSPORT_PARAMETERS must be the first frame, once");
    switch (f->kind) {
    case MOQ_QMUX_TRANSPORT_PARAMETERS:
        return on_params(q, &f->params);
    case MOQ_QMUX_STREAM:
        return on_stream(q, f);
    case MOQ_QMUX_RESET_STREAM:
        return on_reset(q, f);
    case MOQ_QMUX_STOP_SENDING:
        return on_stop_sending(q, f);
    case MOQ_QMUX_MAX_DATA:
        if (f->value > q->send_max) q->send_max = f->value;
        return 0;
    case MOQ_QMUX_MAX_STREAM_DATA: {
        qstream *s;
        int rv = frame_stream(q, f->stream_id, false, &s);
        if (rv <= 0) return rv;
        if (s->send == SEND_OPEN && f->value > s->send_max) {
            s->send_max = f->value;
            ready_update(q, s);
        }
        return 0;
    }
    case MOQ_QMUX_MAX_STREAMS_BIDI:
    case MOQ_QMUX_MAX_STREAMS_UNI: {
        int dir = f->kind == MOQ_QMUX_MAX_STREAMS_BIDI ? DIR_BIDI : DIR_UNI;
        if (f->value > q->peer_max_streams[dir]) q->peer_max_streams[dir] = f->value;
        mark_available(q, dir);
        return 0;
    }
    case MOQ_QMUX_PADDING:
    case MOQ_QMUX_DATA_BLOCKED:
    case MOQ_QMUX_STREAM_DATA_BLOCKED:
    case MOQ_QMUX_STREAMS_BLOCKED_BIDI:
    case MOQ_QMUX_STREAMS_BLOCKED_UNI:
        return 0; /* informational: our windows already follow consumption */
    case MOQ_QMUX_CONNECTION_CLOSE:
    case MOQ_QMUX_APPLICATION_CLOSE:
        moq_debug(LOG, "session %s: peer %s code %llu", q->t.peer, moq_qmux_frame_name(f->kind),
                  (unsigned long long)f->code);
        session_close(q, CK_PEER, f->code, (const char *)f->data, f->len);
        return MOQ_ERR_CLOSED;
    case MOQ_QMUX_DATAGRAM:
        return on_datagram(q, f);
    case MOQ_QMUX_PING_REQUEST:
    case MOQ_QMUX_PING_RESPONSE:
        return on_ping(q, f, now);
    }
    return 0;
}

int moq_qmux_on_record(moq_qmux *q, const uint8_t *data, size_t len, uint64_t now_us)
{
    if (q->state == ST_FINISHED) return MOQ_ERR_CLOSED;
    enter(q);
    if (q->state == ST_OPEN) {
        q->last_recv_us = now_us;
        size_t limit =
            q->wire == MOQ_QMUX_00 ? MOQ_QMUX_00_MAX_FRAME_SIZE : (size_t)q->cfg.max_record_size;
        if (len > limit) {
            protocol_error(q, "record exceeds max_record_size");
        } else {
            size_t pos = 0;
            while (pos < len && q->state == ST_OPEN) {
                moq_qmux_frame f;
                const char *why = "malformed frame";
                int n = moq_qmux_frame_decode(data + pos, len - pos, &f, &why);
                if (n < 0) {
                    protocol_error(q, why);
                    break;
                }
                pos += (size_t)n;
                if (on_frame(q, &f, now_us) < 0) break;
            }
        }
        moq_liveness_heard(&q->live, now_us, q->pong_seen && q->pings_len > 0);
    }
    return leave(q, now_us);
}

int moq_qmux_on_text(moq_qmux *q, uint64_t now_us)
{
    if (q->state == ST_FINISHED) return MOQ_ERR_CLOSED;
    enter(q);
    const char *why = "text frames are not valid for QMux";
    session_close(q, CK_TEXT, MOQ_QMUX_CLOSE_TEXT, why, strlen(why));
    return leave(q, now_us);
}

int moq_qmux_on_writable(moq_qmux *q, uint64_t now_us)
{
    if (q->state == ST_FINISHED) return MOQ_ERR_CLOSED;
    enter(q);
    return leave(q, now_us);
}

int moq_qmux_process(moq_qmux *q, uint64_t now_us)
{
    if (q->state == ST_FINISHED) return MOQ_ERR_CLOSED;
    enter(q);
    return leave(q, now_us);
}

int moq_qmux_on_channel_closed(moq_qmux *q, uint16_t ws_code, const char *reason)
{
    if (q->state == ST_FINISHED) return MOQ_ERR_CLOSED;
    enter(q);
    if (q->state == ST_OPEN) {
        char buf[96];
        if (reason && *reason)
            snprintf(buf, sizeof(buf), "websocket closed: %u %s", ws_code, reason);
        else
            snprintf(buf, sizeof(buf), "websocket closed: %u", ws_code);
        session_close(q, CK_CHANNEL, 0, buf, strlen(buf));
    } else {
        q->channel_closed = true;
        if (q->state == ST_CLOSING) q->state = ST_CLOSED;
    }
    return leave(q, 0);
}

/* ---- timers ---------------------------------------------------------------------------- */

static uint64_t idle_timeout_us(const moq_qmux *q)
{
    if (q->wire == MOQ_QMUX_00 || !q->params_received) return 0;
    uint64_t a = q->ours.max_idle_timeout_ms, b = q->peer.max_idle_timeout_ms;
    uint64_t ms = !a ? b : !b ? a : min_u64(a, b);
    return ms > UINT64_MAX / 1000 ? UINT64_MAX : ms * 1000;
}

/* QX_PING cadence: the configured interval, and at least three per idle timeout. */
static uint64_t ping_period_us(const moq_qmux *q)
{
    if (q->wire == MOQ_QMUX_00 || !q->params_received) return 0;
    uint64_t period = q->cfg.ping_interval_ms * 1000;
    uint64_t idle = idle_timeout_us(q);
    if (idle && idle != UINT64_MAX) {
        uint64_t third = idle / 3 ? idle / 3 : 1;
        if (!period || third < period) period = third;
    }
    return period;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t ack_timeout_us(const moq_qmux *q)
{
    uint64_t ms = q->cfg.ack_timeout_ms;
    return ms > UINT64_MAX / 1000 ? UINT64_MAX : ms * 1000;
}

uint64_t moq_qmux_next_deadline(const moq_qmux *q)
{
    if (q->state != ST_OPEN) return UINT64_MAX;
    if (!q->params_received)
        return q->cfg.handshake_timeout_ms
                   ? add_sat(q->created_us, q->cfg.handshake_timeout_ms * 1000)
                   : UINT64_MAX;
    uint64_t d = UINT64_MAX;
    uint64_t idle = idle_timeout_us(q);
    if (idle) d = add_sat(q->last_recv_us, idle);
    uint64_t ping = ping_period_us(q);
    if (ping) d = min_u64(d, add_sat(q->last_ping_us, ping));
    d = min_u64(d, moq_liveness_deadline(&q->live, ack_timeout_us(q)));
    return d;
}

int moq_qmux_tick(moq_qmux *q, uint64_t now_us)
{
    if (q->state == ST_FINISHED) return MOQ_ERR_CLOSED;
    enter(q);
    if (q->state == ST_OPEN) {
        uint64_t idle = idle_timeout_us(q);
        uint64_t ping = ping_period_us(q);
        if (!q->params_received) {
            if (q->cfg.handshake_timeout_ms &&
                now_us >= add_sat(q->created_us, q->cfg.handshake_timeout_ms * 1000)) {
                const char *why = "handshake timeout";
                session_close(q, CK_HANDSHAKE, 0, why, strlen(why));
            }
        } else if (moq_liveness_expired(&q->live, now_us, ack_timeout_us(q))) {
            const char *why = "ack timeout";
            session_close(q, CK_IDLE, 0, why, strlen(why));
        } else if (idle && now_us >= add_sat(q->last_recv_us, idle)) {
            const char *why = "idle timeout";
            session_close(q, CK_IDLE, 0, why, strlen(why));
        } else if (ping && now_us >= add_sat(q->last_ping_us, ping)) {
            q->last_ping_us = now_us;
            /* A wedged channel could not carry it anyway; do not pile pings behind it. */
            if (q->io.queued_bytes(q->io_ctx) < q->cfg.send_high_water) q->ping_pending = true;
        }
    }
    return leave(q, now_us);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

void moq_qmux_config_default(struct moq_qmux_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_idle_timeout_ms = 30000;
    c->max_data = 4u << 20;
    c->max_stream_data_bidi_local = 1u << 20;
    c->max_stream_data_bidi_remote = 1u << 20;
    c->max_stream_data_uni = 1u << 20;
    c->max_streams_bidi = 256;
    c->max_streams_uni = 256;
    c->max_record_size = MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE;
    c->max_datagram_frame_size = MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE;
    c->handshake_timeout_ms = 10000;
    c->ping_interval_ms = 1000;
    c->ack_timeout_ms = 5000;
    c->send_high_water = 64u << 10;
    c->stream_low_water = 64u << 10;
    c->max_send_queue = 16u << 20;
    c->max_record_out = MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE;
    c->max_datagram_queue = 64;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

moq_qmux *moq_qmux_new(const struct moq_qmux_init *init, uint64_t now_us)
{
    if (!init->io || !init->io->send_record || !init->io->queued_bytes || !init->io->close)
        return NULL;
    struct moq_qmux_config cfg;
    if (init->config)
        cfg = *init->config;
    else
        moq_qmux_config_default(&cfg);
    if (cfg.max_record_size < MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE ||
        cfg.max_record_out < MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE || cfg.max_datagram_queue == 0 ||
        cfg.max_streams_bidi > MOQ_QMUX_MAX_STREAMS_LIMIT ||
        cfg.max_streams_uni > MOQ_QMUX_MAX_STREAMS_LIMIT || init->wire > MOQ_QMUX_02)
        return NULL;
    moq_qmux *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->dgq = calloc(cfg.max_datagram_queue, sizeof(*q->dgq));
    q->t.path = dup_or_null(init->path);
    q->t.authority = dup_or_null(init->authority);
    if (!q->dgq || (init->path && !q->t.path) || (init->authority && !q->t.authority)) {
        free(q->dgq);
        free(q->t.path);
        free(q->t.authority);
        free(q);
        return NULL;
    }
    q->t.ops = &qmux_ops;
    q->t.kind = MOQ_TRANSPORT_WEBSOCKET;
    q->t.is_client = init->is_client;
    snprintf(q->t.protocol, sizeof(q->t.protocol), "%s", init->protocol ? init->protocol : "");
    snprintf(q->t.peer, sizeof(q->t.peer), "%s", init->peer ? init->peer : "");
    q->cfg = cfg;
    q->io = *init->io;
    q->io_ctx = init->io_ctx;
    q->wire = init->wire;
    q->is_server = !init->is_client;
    q->created_us = q->last_recv_us = q->last_ping_us = now_us;
    moq_liveness_init(&q->live);
    moq_u64map_init(&q->streams);
    moq_u64map_init(&q->holes[0]);
    moq_u64map_init(&q->holes[1]);
    moq_list_init(&q->ready);
    moq_list_init(&q->ctrl);
    moq_list_init(&q->ev_closed);
    moq_list_init(&q->ev_writable);
    moq_list_init(&q->want);
    moq_qmux_params_init(&q->peer);
    moq_qmux_params *o = &q->ours;
    moq_qmux_params_init(o);
    o->max_idle_timeout_ms = cfg.max_idle_timeout_ms;
    o->initial_max_data = cfg.max_data;
    o->initial_max_stream_data_bidi_local = cfg.max_stream_data_bidi_local;
    o->initial_max_stream_data_bidi_remote = cfg.max_stream_data_bidi_remote;
    o->initial_max_stream_data_uni = cfg.max_stream_data_uni;
    o->initial_max_streams_bidi = cfg.max_streams_bidi;
    o->initial_max_streams_uni = cfg.max_streams_uni;
    o->max_datagram_frame_size =
        init->wire == MOQ_QMUX_00 ? 0 : min_u64(cfg.max_datagram_frame_size, cfg.max_record_size);
    o->max_record_size = cfg.max_record_size;
    o->reset_stream_at = init->wire == MOQ_QMUX_02;
    q->recv_max = cfg.max_data;
    q->recv_streams_max[DIR_BIDI] = cfg.max_streams_bidi;
    q->recv_streams_max[DIR_UNI] = cfg.max_streams_uni;
    return q;
}

moq_transport *moq_qmux_transport(moq_qmux *q)
{
    return &q->t;
}

bool moq_qmux_is_finished(const moq_qmux *q)
{
    return q->state == ST_FINISHED;
}

void moq_qmux_free(moq_qmux *q)
{
    if (!q) return;
    if (q->state != ST_FINISHED) {
        if (q->state == ST_OPEN) {
            q->ev_code = 0;
            copy_reason(q->ev_reason, "transport freed", strlen("transport freed"));
            drop_outgoing(q);
        }
        q->channel_closed = true;
        q->depth++; /* no wake from here on */
        deliver_closed(q);
    }
    free_all_streams(q);
    drop_outgoing(q);
    moq_u64map_free(&q->streams);
    moq_u64map_free(&q->holes[0]);
    moq_u64map_free(&q->holes[1]);
    moq_chunk_unref(q->arena);
    free(q->iov);
    free(q->release);
    free(q->dgq);
    free(q->t.path);
    free(q->t.authority);
    free(q);
}
