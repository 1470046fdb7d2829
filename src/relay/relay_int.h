/*
 * relay_int.h - private structures of the relay, shared by relay.c (wiring, sessions,
 * timers), websocket.c (qmux over WebSocket) and web_hooks.c (HTTP endpoints).
 */
#ifndef MOQ_RELAY_RELAY_INT_H
#define MOQ_RELAY_RELAY_INT_H

#include <ev.h>

#include "auth/auth.h"
#include "cluster/cluster.h"
#include "http/http.h"
#include "http/ws.h"
#include "moq/session.h"
#include "quic/limits.h"
#include "quic/quic.h"
#include "relay/bridge.h"
#include "relay/relay.h"
#include "tls/tls.h"
#include "util/buf.h"
#include "util/ev_deadline.h"
#include "util/loopwatch.h"
#include "util/memtrim.h"
#include "util/list.h"
#include "web/web.h"

#define RELAY_MAX_VERSIONS 16

struct relay_counters {
    uint64_t sessions_total[4]; /* by moq_transport_kind (QUIC, WebTransport, WebSocket) */
    uint64_t sessions_refused;
    uint64_t ws_refused;
    uint64_t sessions_full; /* refused at limits.max_sessions */
    uint64_t memory_trims;  /* times freed memory went back to the system */
};

struct moq_relay {
    struct ev_loop *loop;
    const struct moq_config *cfg;
    struct moq_relay_worker worker; /* index 0, count 1 for a relay alone */
    bool owns_tls;                  /* tls and https_tls are ours to free */
    struct moq_bridge *bridge;      /* NULL for a relay alone */
    moq_origin *origin;
    moq_tls_server *tls;       /* QUIC (and WebTransport) certificates */
    moq_tls_server *https_tls; /* [web.https] certificates */
    moq_auth *auth;
    moq_quic_server *quic;
    moq_http_server *http;
    moq_web *web;
    moq_http_server *internal; /* [internal] listener: /health and /metrics only */
    moq_web *internal_web;
    uint16_t http_port, https_port;
    const char *versions[RELAY_MAX_VERSIONS]; /* moq-lite ALPNs we offer, preferred first */
    size_t n_versions;
    /* What the compat SETUP ("moql") may choose: configured names among moq-lite-02,
     * moq-lite-01 and moq-transport-14 (none: the configuration lists no version, all) */
    const char *compat[3];
    size_t n_compat;
    const char *alpns[RELAY_MAX_VERSIONS + 1];
    size_t n_alpns;
    moq_list sessions; /* struct relay_session */
    size_t n_sessions;
    moq_list websockets; /* struct ws_glue */
    moq_cluster *cluster;
    char *cluster_token;
    size_t dials; /* cluster dials not finished yet */
    ev_timer tick;
    moq_loopwatch loopwatch; /* warns when one loop iteration runs over a second */
    char loop_name[16];
    moq_memtrim memtrim;
    moq_ev_deadline origin_timer; /* the origin's next linger deadline, or its regular tick */
    struct relay_counters counters;
    uint64_t started_us; /* moq_now_us() when built, for uptime */
};

struct relay_session {
    moq_relay *relay;
    moq_session *session;
    enum moq_transport_kind kind;
    moq_ev_deadline timer; /* the session's next deadline */
    uint64_t started_us;   /* moq_now_us() when the session started */
    moq_list link;
};

/* relay.c */
/* The certificates of [server.tls] and (when it listens) [web.https], as startup loads them. */
int moq_relay_tls_new(const struct moq_config *c, moq_tls_server **tls, moq_tls_server **https,
                      char *err, size_t errlen);
/* The QUIC listener budgets of a configuration (limits.*), for one listener or shared. */
void moq_relay_quic_limits_config(const struct moq_config *c, struct moq_quic_limits_config *lc);
/* limits.max_sessions reached. */
bool moq_relay_full(const moq_relay *r);
/* Start a moq session on an established transport; closes it on failure. */
int moq_relay_start_session(moq_relay *r, moq_transport *t);
/* Check a connection's path and token; fills perms or returns a reason (logged). */
int moq_relay_check_access(moq_relay *r, const char *target, moq_perms *perms, char *why,
                           size_t whylen);

/* The permissions of a peer with a verified client certificate (mTLS): everything under
 * the target's path until the certificate expires; or a reason (logged). */
int moq_relay_certified_access(const char *target, int64_t expires, moq_perms *perms, char *why,
                               size_t whylen);

/* gather.c: whole-relay views when the relay runs on several workers. Every worker renders
 * its snapshot (inspect.c) on its own thread; once all arrived, done(r, arg, parts, n, resp)
 * runs on r's thread with the parsed snapshots by worker index, fills resp and returns 0 (or
 * an error: 500). Returns MOQ_HTTP_ASYNC (the response is sent later) or an error. */
struct json_t;
typedef int (*moq_relay_gather_done)(moq_relay *r, void *arg, struct json_t *const *parts,
                                     unsigned n, moq_http_response *resp);
int moq_relay_gather(moq_relay *r, moq_http_response *resp, moq_relay_gather_done done, void *arg);

/* inspect.c: this worker's part of a whole-relay view, as a JSON object: its sessions,
 * broadcasts and tracks (as /debug renders them, plus what merging needs) and counters. */
int moq_relay_snapshot(moq_relay *r, moq_buf *out);

/* websocket.c */
int moq_relay_ws_upgrade(void *ctx, const struct moq_ws_upgrade *up, struct moq_ws_accept *acc);
void moq_relay_ws_close_all(moq_relay *r);

/* inspect.c: GET / on a public router; GET /, /debug/sessions, /debug/broadcasts,
 * /debug/tracks, /nodes and /status on the [internal] router. The routes' ctx is the relay. */
int moq_relay_inspect_public(moq_relay *r, moq_http_router *router);
int moq_relay_inspect_internal(moq_relay *r, moq_http_router *router);

/* web_hooks.c */
extern const struct moq_web_hooks moq_relay_web_hooks_template;

#endif
