/*
 * relay.h - the relay: configuration turned into listeners (QUIC for raw moq-lite and
 * WebTransport, HTTP/HTTPS for the web endpoints and WebSocket), one origin shared by every
 * session, authentication, and the timers that keep certificates and the cache fresh.
 *
 * Ownership: moq_relay_new takes a pointer to a finalized, validated configuration that
 * must outlive the relay. moq_relay_free closes every session (delivering their `closed`
 * events), every listener, and releases everything. Single-threaded: all calls on the
 * thread that runs the loop.
 */
#ifndef MOQ_RELAY_RELAY_H
#define MOQ_RELAY_RELAY_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "config/config.h"
#include "model/model.h"

struct ev_loop;
typedef struct moq_relay moq_relay;

/* One worker of several (server.workers > 1): what the workers share. Worker 0 also runs
 * the [internal] listener, the cluster and certificate maintenance. The shared objects
 * belong to the caller and outlive the relay. */
struct moq_relay_worker {
    unsigned index, count;
    struct moq_tls_server *tls, *https_tls;    /* shared certificates (mutex-guarded inside) */
    uint64_t origin_id;                        /* every worker's origin has the relay's id */
    const uint8_t *reset_secret;               /* 32 bytes: stateless resets and Retry tokens */
    uint16_t quic_port, http_port, https_port; /* nonzero: join these ports (workers > 0) */
    struct moq_bridge_hub *hub;                /* carries broadcasts between the workers */
    _Atomic size_t *sessions;                  /* sessions over all workers (limits) */
    struct moq_quic_limits *quic_limits;       /* the QUIC listeners' shared budgets */
    _Atomic size_t *http_conns;                /* web connections over all workers */
    _Atomic uint64_t *cache_charge;            /* cached bytes over all workers' origins */
    _Atomic uint64_t *announce_seq;            /* orders publishers alike on every worker */
    /* limits.memory_trim_quiet over the whole relay: when a session last started on any
     * worker, and the most sessions at once since worker 0 (which trims) last looked. */
    _Atomic uint64_t *session_started_us;
    _Atomic size_t *session_peak;
    moq_relay *const *relays; /* every worker's relay, by index (each used on its thread) */
};

/* Build and start the relay: bind every configured listener. Returns 0, or a negative
 * MOQ_ERR_* with a message in err (e.g. "UDP [::]:443: address in use"). */
int moq_relay_new(struct ev_loop *loop, const struct moq_config *cfg, moq_relay **out, char *err,
                  size_t errlen);
void moq_relay_free(moq_relay *r);
/* A worker of several; see struct moq_relay_worker. Bind worker 0 first, then the others in
 * order, on the thread that will then run each loop (or before it runs). */
int moq_relay_new_worker(struct ev_loop *loop, const struct moq_config *cfg,
                         const struct moq_relay_worker *w, moq_relay **out, char *err,
                         size_t errlen);
/* Every worker was built: start carrying broadcasts between them; worker 0 logs "ready". */
int moq_relay_worker_ready(moq_relay *r);
/* Close every session gracefully and run the loop until the closes went out (shutdown). */
void moq_relay_drain(moq_relay *r);
/* After moq_relay_free, with every other watcher of the loop stopped: run the loop until
 * what the relay started on it has ended (connections it dialled close at once, without
 * waiting for the peer to acknowledge their session's close), a couple of seconds at most,
 * so the loop can be destroyed with nothing on it. */
void moq_relay_settle(struct ev_loop *loop);
/* Stop carrying broadcasts between workers (before any worker's relay is freed). */
void moq_relay_unbridge(moq_relay *r);

/* Bound ports (useful when the configuration asked for port 0); 0 when not listening. */
uint16_t moq_relay_quic_port(const moq_relay *r);
uint16_t moq_relay_http_port(const moq_relay *r);
uint16_t moq_relay_https_port(const moq_relay *r);

moq_origin *moq_relay_origin(moq_relay *r);

/* Re-read the certificate and key files of [server.tls] and [web.https] and the auth key
 * files (SIGHUP): sessions continue, new handshakes and tokens use what was read. A file
 * that fails keeps the current certificate; a key file that fails is refused until it
 * loads. Logs one line per item and a summary. Other settings are not re-read. */
void moq_relay_reload(moq_relay *r);

/* --check: load every certificate, key and token file the configuration names, as startup
 * would, without binding anything. Problems go to stderr as "WHERE: KEY: why" (WHERE is
 * FILE:LINE:COL, a MOQ_* variable or a --flag); when there are none the effective settings go
 * to out. Returns the exit status: 0 or 1. */
int moq_relay_check(const struct moq_config *cfg, FILE *out);

/* Run until SIGINT/SIGTERM (SIGHUP: moq_relay_reload), then shut down gracefully. Returns a process
 * exit status. */
int moq_relay_run(const struct moq_config *cfg);

#endif
