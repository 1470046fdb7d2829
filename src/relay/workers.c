/* workers.c - the relay on several worker threads (server.workers > 1): one event loop, one
 * relay (origin, QUIC socket, HTTP sockets, sessions) and one bridge per worker; the main
 * thread keeps the signals and tells the workers to reload or stop. */
#include "relay/workers.h"

#include <gnutls/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/bridge.h"
#include "relay/relay_int.h"
#include "relay/service.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

enum { CMD_RELOAD = 1, CMD_STOP = 2 };

struct worker {
    unsigned index;
    pthread_t thread;
    bool running;
    struct ev_loop *loop;
    moq_relay *relay;
    ev_async control;
    atomic_int commands; /* CMD_* bits the main thread set */
};

struct workers {
    unsigned n;
    struct worker *w;
    moq_bridge_hub *hub;
    moq_tls_server *tls, *https_tls;
    uint8_t reset_secret[32];
    /* The relay-wide limits: sessions, QUIC admission, web connections, cache bytes. */
    _Atomic size_t sessions;
    moq_quic_limits *quic_limits;
    _Atomic size_t http_conns;
    _Atomic uint64_t cache_charge;
    _Atomic uint64_t announce_seq; /* the workers' origins draw announce sequences from it */
    _Atomic uint64_t session_started_us;
    _Atomic size_t session_peak;
    moq_relay **relays; /* by worker, filled as they are built */
};

static void control_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct worker *w = a->data;
    int cmd = atomic_exchange(&w->commands, 0);
    if (cmd & CMD_RELOAD) moq_relay_reload(w->relay);
    if (cmd & CMD_STOP) ev_break(loop, EVBREAK_ALL);
}

static void command(struct workers *ws, int cmd)
{
    for (unsigned i = 0; ws->w && i < ws->n; i++) {
        if (!ws->w[i].running) continue;
        atomic_fetch_or(&ws->w[i].commands, cmd);
        ev_async_send(ws->w[i].loop, &ws->w[i].control);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ev_run(w->loop, 0);
    moq_relay_drain(w->relay);
    return NULL;
}

static uint64_t random_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        if (gnutls_rnd(GNUTLS_RND_NONCE, &id, sizeof(id)) < 0) id = (uint64_t)moq_now_ns();
        id &= (1ull << 53) - 1; /* JavaScript peers read hop ids as doubles */
    }
    return id;
}

/* Build worker i's relay; workers after the first join the ports worker 0 was given. */
static int build_worker(struct workers *ws, const struct moq_config *cfg, unsigned i,
                        uint64_t origin_id, char *err, size_t errlen)
{
    struct worker *w = &ws->w[i];
    w->index = i;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (!w->loop) {
        snprintf(err, errlen, "cannot create the event loop of worker %u", i);
        return MOQ_ERR_NOMEM;
    }
    moq_relay *first = i ? ws->w[0].relay : NULL;
    struct moq_relay_worker rw = {
        .index = i,
        .count = ws->n,
        .tls = ws->tls,
        .https_tls = ws->https_tls,
        .origin_id = origin_id,
        .reset_secret = ws->reset_secret,
        .quic_port = first ? moq_relay_quic_port(first) : 0,
        .http_port = first ? moq_relay_http_port(first) : 0,
        .https_port = first ? moq_relay_https_port(first) : 0,
        .hub = ws->hub,
        .sessions = &ws->sessions,
        .quic_limits = ws->quic_limits,
        .http_conns = &ws->http_conns,
        .cache_charge = &ws->cache_charge,
        .announce_seq = &ws->announce_seq,
        .session_started_us = &ws->session_started_us,
        .session_peak = &ws->session_peak,
        .relays = ws->relays,
    };
    int rv = moq_relay_new_worker(w->loop, cfg, &rw, &w->relay, err, errlen);
    if (rv < 0) return rv;
    ws->relays[i] = w->relay;
    ev_async_init(&w->control, control_cb);
    w->control.data = w;
    ev_async_start(w->loop, &w->control);
    return 0;
}

static int build(struct workers *ws, const struct moq_config *cfg, char *err, size_t errlen)
{
    ws->w = calloc(ws->n, sizeof(*ws->w));
    ws->relays = calloc(ws->n, sizeof(*ws->relays));
    ws->hub = moq_bridge_hub_new(ws->n);
    struct moq_quic_limits_config lc;
    moq_relay_quic_limits_config(cfg, &lc);
    ws->quic_limits = moq_quic_limits_new(&lc);
    if (!ws->w || !ws->relays || !ws->hub || !ws->quic_limits) return MOQ_ERR_NOMEM;
    if (gnutls_rnd(GNUTLS_RND_KEY, ws->reset_secret, sizeof(ws->reset_secret)) < 0)
        return MOQ_ERR_TLS;
    int rv = moq_relay_tls_new(cfg, &ws->tls, &ws->https_tls, err, errlen);
    if (rv < 0) return rv;
    uint64_t id = cfg->cluster.id_set && cfg->cluster.id ? cfg->cluster.id : random_id();
    for (unsigned i = 0; i < ws->n; i++) {
        rv = build_worker(ws, cfg, i, id, err, errlen);
        if (rv < 0) return rv;
    }
    for (unsigned i = 0; i < ws->n; i++) {
        rv = moq_relay_worker_ready(ws->w[i].relay);
        if (rv < 0) return rv;
    }
    return 0;
}

static int start_threads(struct workers *ws)
{
    /* Signals belong to the main thread's loop: workers start with them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rv = 0;
    for (unsigned i = 0; i < ws->n && rv == 0; i++) {
        if (pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]) != 0)
            rv = MOQ_ERR_NOMEM;
        else
            ws->w[i].running = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rv;
}

static void join_threads(struct workers *ws)
{
    command(ws, CMD_STOP);
    for (unsigned i = 0; i < ws->n; i++) {
        if (ws->w[i].running) pthread_join(ws->w[i].thread, NULL);
        ws->w[i].running = false;
    }
}

/* With every thread joined: unbridge all, then free each relay and, once what it left
 * closing on its loop has ended, the loop. */
static void destroy(struct workers *ws)
{
    for (unsigned i = 0; ws->w && i < ws->n; i++)
        if (ws->w[i].relay) moq_relay_unbridge(ws->w[i].relay);
    for (unsigned i = 0; ws->w && i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (!w->loop) continue;
        ev_async_stop(w->loop, &w->control);
        if (w->relay) moq_relay_free(w->relay);
        moq_relay_settle(w->loop);
        ev_loop_destroy(w->loop);
    }
    free(ws->w);
    free(ws->relays);
    moq_bridge_hub_free(ws->hub);
    moq_quic_limits_free(ws->quic_limits);
    if (ws->tls) moq_tls_server_free(ws->tls);
    if (ws->https_tls) moq_tls_server_free(ws->https_tls);
    explicit_bzero(ws->reset_secret, sizeof(ws->reset_secret));
}

static void on_hangup(struct ev_loop *loop, ev_signal *w, int revents)
{
    moq_info("relay", "received SIGHUP, reloading certificates and keys (other settings take "
                      "effect on restart)");
    command(w->data, CMD_RELOAD);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    moq_info("relay", "received %s, shutting down", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    ev_break(loop, EVBREAK_ALL);
}

int moq_relay_run_workers(const struct moq_config *cfg, unsigned n)
{
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (!loop) {
        moq_error("relay", "cannot create the event loop");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct workers ws = {.n = n};
    ev_signal sigint, sigterm, sighup;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sighup, on_hangup, SIGHUP);
    sighup.data = &ws;
    /* Caught from before "ready" is logged: a signal sent early waits for the loop. */
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sighup);
    char err[512] = "";
    int rv = build(&ws, cfg, err, sizeof(err));
    if (rv == 0) rv = start_threads(&ws);
    if (rv < 0) {
        moq_error("relay", "%s", err[0] ? err : moq_strerror(rv));
        join_threads(&ws);
        ev_signal_stop(loop, &sigint);
        ev_signal_stop(loop, &sigterm);
        ev_signal_stop(loop, &sighup);
        destroy(&ws);
        return 1;
    }
    struct moq_service service;
    moq_service_ready(&service, loop);
    ev_run(loop, 0);
    moq_service_stopping(&service);
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
    join_threads(&ws); /* each worker closes its sessions first */
    moq_service_stop(&service);
    ev_signal_stop(loop, &sighup);
    signal(SIGHUP, SIG_IGN);
    destroy(&ws);
    moq_info("relay", "stopped");
    return 0;
}
