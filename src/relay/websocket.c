/* moq-lite over WebSocket: the upgrade decision (subprotocol + access) and the glue that
 * drives a qmux session from WebSocket events, as qmux/qmux.h prescribes. */
#include "relay/relay_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmux/qmux.h"
#include "util/defer.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

/* After our QMux close record, how long the peer has to close the WebSocket itself. */
#define CLOSE_LINGER_S 2.0

struct ws_glue {
    moq_relay *r;
    moq_ws *ws;  /* NULL once the WebSocket is gone */
    moq_qmux *q; /* NULL once the session finished */
    struct moq_qmux_selection sel;
    bool peer_certified; /* mTLS over HTTPS: carried to the session's transport */
    int64_t peer_cert_expires;
    moq_defer process;
    ev_timer timer;
    ev_timer linger;
    uint16_t close_code;
    char close_reason[124];
    moq_list link;
};

static void glue_stop(struct ws_glue *g)
{
    moq_defer_fini(&g->process);
    ev_timer_stop(g->r->loop, &g->timer);
    ev_timer_stop(g->r->loop, &g->linger);
}

/* After every call into the session: free it once it finished, else re-arm its timer. */
static void after(struct ws_glue *g, int rv)
{
    if (!g->q) return;
    if (rv == MOQ_ERR_CLOSED || moq_qmux_is_finished(g->q)) {
        /* Not the linger timer: it closes a WebSocket the peer leaves open after our close
         * record. */
        moq_defer_cancel(&g->process);
        ev_timer_stop(g->r->loop, &g->timer);
        moq_qmux_free(g->q);
        g->q = NULL;
        return;
    }
    uint64_t deadline = moq_qmux_next_deadline(g->q);
    ev_timer_stop(g->r->loop, &g->timer);
    if (deadline == UINT64_MAX) return;
    uint64_t now = moq_now_us();
    double in = deadline > now ? (double)(deadline - now) / 1e6 : 0.;
    ev_timer_set(&g->timer, in, 0.);
    ev_timer_start(g->r->loop, &g->timer);
}

static void process_cb(moq_defer *d)
{
    struct ws_glue *g = d->data;
    if (g->q) after(g, moq_qmux_process(g->q, moq_now_us()));
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ws_glue *g = w->data;
    if (g->q) after(g, moq_qmux_tick(g->q, moq_now_us()));
}

/* ---- the record channel qmux writes to ---- */

static int io_send_record(void *io, const moq_slice *v, size_t n)
{
    struct ws_glue *g = io;
    return g->ws ? moq_ws_send_slices(g->ws, v, n) : MOQ_ERR_CLOSED;
}

static size_t io_queued(void *io)
{
    struct ws_glue *g = io;
    return g->ws ? moq_ws_queued(g->ws) : 0;
}

/* The close record went out. A WebSocket Close frame right behind it can overtake it at the
 * peer (@moq/net then reports a dropped connection instead of the code and reason), so the
 * peer closes the WebSocket when it read the record; we close it ourselves only if it does
 * not within CLOSE_LINGER_S. */
static void io_close(void *io, uint16_t code, const char *reason)
{
    struct ws_glue *g = io;
    if (!g->ws) return;
    g->close_code = code;
    snprintf(g->close_reason, sizeof(g->close_reason), "%s", reason ? reason : "");
    ev_timer_start(g->r->loop, &g->linger);
}

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct ws_glue *g = w->data;
    if (g->ws) moq_ws_close(g->ws, g->close_code, g->close_reason);
}

static void io_wake(void *io)
{
    struct ws_glue *g = io;
    moq_defer_schedule(&g->process);
}

static const struct moq_qmux_io glue_io = {io_send_record, io_queued, io_close, io_wake};

/* ---- WebSocket events ---- */

static void ws_opened(void *app, moq_ws *ws)
{
    struct ws_glue *g = app;
    g->ws = ws;
    struct moq_qmux_config qc;
    moq_qmux_config_default(&qc);
    qc.ack_timeout_ms = g->r->cfg->server.quic.ack_timeout_ms; /* 0: off, as in the config */
    struct moq_qmux_init init = {
        .wire = g->sel.wire,
        .protocol = g->sel.protocol,
        .path = moq_ws_target(ws),
        .authority = moq_ws_host(ws),
        .peer = moq_ws_peer(ws),
        .is_client = false,
        .config = &qc,
        .io = &glue_io,
        .io_ctx = g,
    };
    g->q = moq_qmux_new(&init, moq_now_us());
    if (!g->q) {
        moq_ws_close(ws, MOQ_WS_INTERNAL, "out of memory");
        return;
    }
    moq_transport *t = moq_qmux_transport(g->q);
    t->peer_certified = g->peer_certified;
    t->peer_cert_expires = g->peer_cert_expires;
    moq_relay_start_session(g->r, t);
    after(g, moq_qmux_process(g->q, moq_now_us()));
}

static void ws_message(void *app, moq_ws *ws, bool binary, const uint8_t *data, size_t len)
{
    struct ws_glue *g = app;
    if (!g->q) return;
    uint64_t now = moq_now_us();
    after(g, binary ? moq_qmux_on_record(g->q, data, len, now) : moq_qmux_on_text(g->q, now));
}

static void ws_writable(void *app, moq_ws *ws)
{
    struct ws_glue *g = app;
    if (g->q) after(g, moq_qmux_on_writable(g->q, moq_now_us()));
}

static void ws_closed(void *app, moq_ws *ws, uint16_t code, const char *reason)
{
    struct ws_glue *g = app;
    g->ws = NULL;
    if (g->q) {
        moq_qmux_on_channel_closed(g->q, code, reason);
        after(g, MOQ_ERR_CLOSED);
    }
    glue_stop(g);
    moq_list_remove(&g->link);
    free(g);
}

static const struct moq_ws_events glue_events = {ws_opened, ws_message, ws_writable, ws_closed};

/* ---- upgrade ---- */

/* Upstream accepts an upgrade without Sec-WebSocket-Protocol: the client then speaks the
 * legacy framing and negotiates moq-lite-01/02 or moq-transport-14 with the compat SETUP;
 * this relay speaks that SETUP only inside qmux (the "moql" subprotocol). Such a client
 * (and one offering only values we do not know) gets a 400 whose body says what to offer
 * instead. */
static void explain_subprotocol(moq_relay *r, bool offered_some, struct moq_ws_accept *acc)
{
    static _Thread_local char why[1600];
    char supported[1024]; /* every version in every qmux framing */
    if (moq_qmux_offer_subprotocols(supported, sizeof(supported), r->versions, r->n_versions, NULL,
                                    0) < 0)
        snprintf(supported, sizeof(supported), "qmux-0N.%s", r->versions[0]);
    snprintf(
        why, sizeof(why),
        "%s: this relay needs Sec-WebSocket-Protocol with one of %s (moq-lite and moq-transport "
        "over qmux; the legacy framing and compat SETUP of clients that offer no subprotocol are "
        "not supported)\n",
        offered_some ? "no offered Sec-WebSocket-Protocol is supported"
                     : "no Sec-WebSocket-Protocol offered",
        supported);
    acc->refusal = why;
}

int moq_relay_ws_upgrade(void *ctx, const struct moq_ws_upgrade *up, struct moq_ws_accept *acc)
{
    moq_relay *r = ctx;
    const moq_http_request *req = up->req;
    char offered[2048];
    size_t o = 0;
    for (size_t i = 0; i < up->n_offers; i++) {
        size_t n = strlen(up->offers[i]);
        if (o + n + 2 >= sizeof(offered)) break;
        if (o) offered[o++] = ',';
        memcpy(offered + o, up->offers[i], n);
        o += n;
    }
    offered[o] = '\0';
    struct moq_qmux_selection sel;
    if (moq_qmux_select_subprotocol(offered, o, r->versions, r->n_versions, NULL, 0, &sel) < 0) {
        r->counters.ws_refused++;
        moq_info_repeat("refused WebSocket upgrades", "relay",
                        "%s: WebSocket refused: no supported subprotocol offered (%s)", req->peer,
                        o ? offered : "none");
        explain_subprotocol(r, o > 0, acc);
        return 400;
    }
    if (moq_relay_full(r)) {
        r->counters.sessions_full++;
        moq_info_repeat("sessions refused at the limit", "relay",
                        "%s: WebSocket refused: the relay is full (%zu sessions)", req->peer,
                        r->n_sessions);
        acc->refusal = "server busy: session limit reached\n";
        return 503;
    }
    moq_perms perms = {0};
    char why[256];
    int rv = req->peer_certified ? moq_relay_certified_access(req->target, req->peer_cert_expires,
                                                              &perms, why, sizeof(why))
                                 : moq_relay_check_access(r, req->target, &perms, why, sizeof(why));
    if (rv < 0) {
        r->counters.ws_refused++;
        moq_info_repeat("refused WebSocket upgrades", "relay", "%s: WebSocket refused: %s",
                        req->peer, why);
        return 401;
    }
    moq_perms_free(&perms);
    struct ws_glue *g = calloc(1, sizeof(*g));
    if (!g) return 503;
    if (moq_defer_init(&g->process, r->loop, process_cb, g) < 0) {
        free(g);
        return 503;
    }
    g->r = r;
    g->sel = sel;
    g->peer_certified = req->peer_certified;
    g->peer_cert_expires = req->peer_cert_expires;
    ev_timer_init(&g->timer, timer_cb, 0., 0.);
    ev_timer_init(&g->linger, linger_cb, CLOSE_LINGER_S, 0.);
    g->timer.data = g->linger.data = g;
    moq_list_push_back(&r->websockets, &g->link);
    acc->protocol = g->sel.subprotocol;
    acc->events = &glue_events;
    acc->app = g;
    return 0;
}

void moq_relay_ws_close_all(moq_relay *r)
{
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &r->websockets)
    {
        struct ws_glue *g = moq_container_of(pos, struct ws_glue, link);
        if (!g->q) {
            if (g->ws && ev_is_active(&g->linger))
                moq_ws_close(g->ws, g->close_code, g->close_reason);
            continue;
        }
        moq_qmux_on_channel_closed(g->q, MOQ_WS_GOING_AWAY, "relay shutting down");
        after(g, MOQ_ERR_CLOSED);
    }
}
