/* The relay's wiring: config -> TLS, auth, origin, QUIC/WebTransport and HTTP listeners;
 * sessions; periodic maintenance; signals and shutdown. */
#include "relay/relay_int.h"

#include <errno.h>
#include <inttypes.h>
#include <gnutls/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "h3/h3.h"
#include "ietf/session.h"
#include "ietf/version.h"
#include "moq/errors.h"
#include "moq/version.h"
#include "qmux/qmux.h"
#include "relay/service.h"
#include "relay/workers.h"
#include "util/err.h"
#include "util/fdlimit.h"
#include "util/log.h"
#include "util/pool.h"
#include "util/time.h"

#define TICK_S 1.0
/* The origin is ticked when a broadcast's linger ends and at least this often (cache
 * expiry, which need not be exact). */
#define ORIGIN_TICK_MAX_US MOQ_US_PER_S

/* ---------------------------------------------------------------- access */

static void perms_summary(const moq_strlist *l, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < l->len && o + 2 < len; i++) {
        int n = snprintf(out + o, len - o, "%s\"%s\"", i ? "," : "", l->v[i]);
        if (n < 0) break;
        o += (size_t)n;
    }
    if (o >= len) out[len - 1] = '\0';
}

int moq_relay_check_access(moq_relay *r, const char *target, moq_perms *perms, char *why,
                           size_t whylen)
{
    moq_auth_error err = {0};
    int rv = moq_auth_check_target(r->auth, target, strlen(target), moq_wall_s(), perms, &err);
    if (rv < 0) snprintf(why, whylen, "%s", err.msg[0] ? err.msg : moq_strerror(rv));
    return rv;
}

/* A peer with a verified client certificate (mTLS) has full access under its path, as
 * upstream grants it, without a token. */
int moq_relay_certified_access(const char *target, int64_t expires, moq_perms *perms, char *why,
                               size_t whylen)
{
    moq_auth_error err = {0};
    int rv = moq_auth_certified(target, strlen(target), expires, perms, &err);
    if (rv < 0) snprintf(why, whylen, "%s", err.msg[0] ? err.msg : moq_strerror(rv));
    return rv;
}

static uint64_t session_authorize(void *ctx, moq_session *s, const char *path, int role,
                                  moq_perms *perms)
{
    struct relay_session *rs = ctx;
    moq_relay *r = rs->relay;
    moq_transport *t = moq_session_transport(s);
    char why[256];
    int rv = t->peer_certified
                 ? moq_relay_certified_access(path, t->peer_cert_expires, perms, why, sizeof(why))
                 : moq_relay_check_access(r, path, perms, why, sizeof(why));
    if (rv < 0) {
        r->counters.sessions_refused++;
        moq_info_repeat("refused sessions", "relay", "%s: session refused: %s", t->peer, why);
        return MOQ_CODE_UNAUTHORIZED;
    }
    char pub[256], sub[256];
    perms_summary(&perms->publish, pub, sizeof(pub));
    perms_summary(&perms->subscribe, sub, sizeof(sub));
    moq_info("relay", "%s: session accepted (%s%s) root=/%s publish=[%s] subscribe=[%s]", t->peer,
             moq_session_version(s), t->peer_certified ? ", client certificate" : "",
             perms->root ? perms->root : "", pub, sub);
    return 0;
}

/* ---------------------------------------------------------------- sessions */

/* Sessions over the whole relay (every worker). */
static size_t relay_sessions(const moq_relay *r)
{
    return r->worker.sessions ? *r->worker.sessions : r->n_sessions;
}

static void count_session(moq_relay *r, int delta)
{
    r->n_sessions += (size_t)delta;
    if (r->worker.sessions) *r->worker.sessions += (size_t)delta;
}

/* A pull through another worker's session, for the cluster on worker 0. */
struct pulled {
    moq_relay *const *relays;
    uint64_t peer_id;
    size_t len, nhops;
    uint64_t hops[MOQ_MAX_HOPS];
    uint8_t path[];
};

static void pulled_on_worker0(void *arg, unsigned worker)
{
    struct pulled *p = arg;
    moq_relay *r0 = p->relays[worker];
    if (r0->cluster)
        moq_cluster_pulled(r0->cluster, p->peer_id, p->path, p->len, p->hops, p->nhops);
    free(p);
}

static void session_upstream(void *ctx, moq_session *s, const uint8_t *path, size_t len,
                             const uint64_t *hops, size_t nhops, bool active)
{
    struct relay_session *rs = ctx;
    moq_relay *r = rs->relay;
    if (r->cluster) {
        moq_cluster_upstream(r->cluster, s, path, len, hops, nhops, active);
        return;
    }
    if (!active || r->worker.index == 0 || !r->bridge || nhops > MOQ_MAX_HOPS) return;
    struct pulled *p = malloc(sizeof(*p) + len);
    if (!p) return;
    p->relays = r->worker.relays;
    p->peer_id = moq_session_peer_origin(s);
    p->len = len;
    p->nhops = nhops;
    memcpy(p->hops, hops, nhops * sizeof(*hops));
    memcpy(p->path, path, len);
    moq_bridge_call(r->bridge, 0, pulled_on_worker0, free, p);
}

static void session_timer(void *ctx, moq_session *s, uint64_t at)
{
    struct relay_session *rs = ctx;
    moq_ev_deadline_set(&rs->timer, at);
}

static void session_timer_fired(void *ctx, uint64_t now)
{
    struct relay_session *rs = ctx;
    moq_session_on_timer(rs->session, now);
}

static void session_closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    struct relay_session *rs = ctx;
    moq_ev_deadline_stop(&rs->timer);
    moq_list_remove(&rs->link);
    count_session(rs->relay, -1);
    free(rs);
}

bool moq_relay_full(const moq_relay *r)
{
    uint64_t max = r->cfg->limits.max_sessions;
    return max && relay_sessions(r) >= max;
}

/* A session started: the trim waits until the whole relay is quiet, so with several workers
 * the start is recorded where worker 0, which trims for all, reads it. */
static void memtrim_session_started(moq_relay *r, uint64_t now)
{
    if (!r->worker.session_started_us) {
        moq_memtrim_started(&r->memtrim, r->n_sessions, now);
        return;
    }
    uint64_t last = atomic_load(r->worker.session_started_us);
    while (last < now && !atomic_compare_exchange_weak(r->worker.session_started_us, &last, now))
        ;
    size_t sessions = relay_sessions(r), peak = atomic_load(r->worker.session_peak);
    while (peak < sessions &&
           !atomic_compare_exchange_weak(r->worker.session_peak, &peak, sessions))
        ;
}

/* On worker 0 of several: what every worker recorded since the last look. */
static void memtrim_collect(moq_relay *r)
{
    size_t peak = atomic_exchange(r->worker.session_peak, 0);
    uint64_t started = atomic_load(r->worker.session_started_us);
    if (started < r->memtrim.last_start_us) started = r->memtrim.last_start_us;
    if (peak || started > r->memtrim.last_start_us) moq_memtrim_started(&r->memtrim, peak, started);
}

int moq_relay_start_session(moq_relay *r, moq_transport *t)
{
    if (moq_relay_full(r)) {
        r->counters.sessions_full++;
        moq_info_repeat("sessions refused at the limit", "relay",
                        "%s: session refused: the relay is full (%zu sessions)", t->peer,
                        relay_sessions(r));
        moq_transport_close(t, MOQ_CODE_BOUNDS_EXCEEDED, "server busy: session limit reached");
        return MOQ_ERR_LIMIT;
    }
    struct relay_session *rs = calloc(1, sizeof(*rs));
    if (!rs) {
        moq_transport_close(t, MOQ_CODE_TRANSPORT, "out of memory");
        return MOQ_ERR_NOMEM;
    }
    rs->relay = r;
    rs->kind = t->kind;
    rs->started_us = moq_now_us();
    moq_ev_deadline_init(&rs->timer, r->loop, session_timer_fired, rs);
    struct moq_session_config sc = {
        .origin = r->origin,
        .clock = &moq_system_clock,
        .timer = session_timer,
        .offer_probe = true,
        .setup_timeout_us = r->cfg->limits.setup_timeout_ms * MOQ_US_PER_MS,
        .refuse_outside_grant = true,
        .compat_allowed = r->compat,
        .n_compat_allowed = r->n_compat,
        .authorize = session_authorize,
        .upstream = session_upstream,
        .closed = session_closed,
        .ctx = rs,
    };
    moq_list_push_back(&r->sessions, &rs->link);
    count_session(r, 1);
    rs->session = moq_session_new(t, &sc);
    if (!rs->session) {
        moq_ev_deadline_stop(&rs->timer);
        moq_list_remove(&rs->link);
        count_session(r, -1);
        free(rs);
        return MOQ_ERR_UNSUPPORTED;
    }
    if (t->kind < 4) r->counters.sessions_total[t->kind]++;
    if (r->worker.count > 1)
        moq_debug("relay", "%s: session on worker %u", t->peer, r->worker.index);
    memtrim_session_started(r, moq_now_us());
    return 0;
}

static int wt_accept(void *ctx, moq_transport *t)
{
    return moq_relay_start_session(ctx, t);
}

/* protocol, when the relay offers it (else NULL) */
static const char *relay_offers(const moq_relay *r, const char *protocol)
{
    for (size_t i = 0; i < r->n_versions; i++)
        if (strcmp(r->versions[i], protocol) == 0) return r->versions[i];
    return NULL;
}

static bool wt_busy(void *ctx)
{
    return moq_relay_full(ctx);
}

static int quic_accept(void *ctx, moq_transport *t)
{
    moq_relay *r = ctx;
    if (t->kind == MOQ_TRANSPORT_H3) {
        struct moq_h3_server_config hc = {r->versions, r->n_versions,
                                          wt_accept,   r,
                                          wt_busy,     relay_offers(r, MOQ_IETF_ALPN_COMPAT)};
        struct moq_h3_driver drv;
        if (moq_h3_loop_driver(r->loop, &drv) < 0) return MOQ_ERR_NOMEM;
        moq_h3_server_attach(t, &drv, &hc);
        return 0;
    }
    /* A refusal at the limit closes with its own code and reason, not the generic one. */
    int rv = moq_relay_start_session(r, t);
    return rv == MOQ_ERR_LIMIT ? 0 : rv;
}

/* ---------------------------------------------------------------- credentials */

static void *quic_creds_acquire(void *ctx, gnutls_certificate_credentials_t *out)
{
    moq_tls_creds *c = moq_tls_server_acquire(ctx);
    *out = moq_tls_creds_gnutls(c);
    return c;
}

static void creds_release(void *ctx, void *handle)
{
    moq_tls_creds_unref(handle);
}

static void quic_tls_setup(void *ctx, gnutls_session_t s)
{
    moq_tls_server_verify_client(ctx, s);
}

/* ---------------------------------------------------------------- timers */

static void origin_rearm(moq_relay *r, uint64_t now)
{
    uint64_t at = moq_origin_next_linger(r->origin), latest = now + ORIGIN_TICK_MAX_US;
    moq_ev_deadline_set(&r->origin_timer, at < latest ? at : latest);
}

static void origin_timer_fired(void *ctx, uint64_t now)
{
    moq_relay *r = ctx;
    moq_origin_tick(r->origin, now);
    origin_rearm(r, now);
}

/* A broadcast lost its last publisher: it ends at `at` unless one comes back. */
static void origin_linger(void *ctx, uint64_t at)
{
    moq_relay *r = ctx;
    if (at < r->origin_timer.at) moq_ev_deadline_set(&r->origin_timer, at);
}

/* A broadcast lingering, continued, expired or replaced: one line each for the operator. */
static void origin_broadcast_event(void *ctx, int event, const uint8_t *path, size_t len)
{
    moq_relay *r = ctx;
    unsigned long long linger_ms = (unsigned long long)r->cfg->cluster.linger_ms;
    int n = len > INT32_MAX ? INT32_MAX : (int)len;
    const char *p = (const char *)path;
    switch (event) {
    case MOQ_BROADCAST_LINGERING:
        moq_info_repeat("lingering broadcasts", "relay",
                        "broadcast /%.*s lost its publisher: kept %llu ms for it to come back", n,
                        p, linger_ms);
        break;
    case MOQ_BROADCAST_RESUMED:
        moq_info_repeat("resumed broadcasts", "relay",
                        "broadcast /%.*s continued by its returning publisher", n, p);
        break;
    case MOQ_BROADCAST_EXPIRED:
        moq_info_repeat("expired broadcasts", "relay",
                        "broadcast /%.*s ended: its publisher did not come back within %llu ms", n,
                        p, linger_ms);
        break;
    case MOQ_BROADCAST_REPLACED:
        moq_warn_repeat("replaced broadcasts", "relay",
                        "broadcast /%.*s replaced by another publisher's content", n, p);
        break;
    }
}

/* Hand what a load peak freed back to the system once the load fell and stayed quiet. */
static void relay_trim_memory(moq_relay *r)
{
    if (r->worker.session_started_us) {
        if (r->worker.index != 0) return; /* worker 0 trims for the whole relay */
        memtrim_collect(r);
    }
    size_t free_before = moq_memtrim_heap_free();
    if (!moq_memtrim_due(&r->memtrim, relay_sessions(r), free_before, moq_now_us())) return;
    moq_pool_release_all();
    moq_memtrim_release();
    size_t free_after = moq_memtrim_heap_free();
    moq_memtrim_done(&r->memtrim, free_after);
    r->counters.memory_trims++;
    moq_debug("relay",
              "%zu session(s): freed memory returned to the system (%zu kB in use, %zu kB free "
              "in the heap)",
              relay_sessions(r), moq_memtrim_heap_used() / 1024, free_after / 1024);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    moq_relay *r = w->data;
    int64_t now_s = moq_wall_s();
    moq_log_repeat_flush();
    relay_trim_memory(r);
    if (r->worker.index != 0) return; /* certificates are shared: worker 0 keeps them fresh */
    if (moq_tls_server_maintain(r->tls, now_s) == 1)
        moq_info("tls", "certificate rotated; new fingerprint served at /certificate.sha256");
    if (r->https_tls && moq_tls_server_maintain(r->https_tls, now_s) == 1)
        moq_info("tls", "HTTPS certificate reloaded");
}

/* ---------------------------------------------------------------- reload */

struct reload_tally {
    size_t reloaded, failed;
};

static void reload_certificate(moq_tls_server *srv, const char *what, struct reload_tally *t)
{
    size_t pairs = moq_tls_server_file_pairs(srv);
    if (pairs == 0) {
        moq_info("relay", "reload: %s: generated, no file to read", what);
        return;
    }
    char err[512];
    if (moq_tls_server_reload(srv, err, sizeof(err)) < 0) {
        moq_warn("relay", "reload: %s: failed, keeping the current one: %s", what, err);
        t->failed++;
        return;
    }
    char fp[MOQ_TLS_FINGERPRINT_HEX_LEN];
    moq_tls_server_fingerprint(srv, fp);
    moq_info("relay", "reload: %s: reloaded %zu file pair(s), fingerprint %s", what, pairs, fp);
    t->reloaded++;
}

static void report_key(void *ctx, const char *path, const moq_jwk *key, const moq_auth_error *err)
{
    struct reload_tally *t = ctx;
    if (!key) {
        moq_warn("relay",
                 "reload: auth key %s: failed, tokens it signed are refused until it loads: %s",
                 path, err->msg);
        t->failed++;
        return;
    }
    const char *kid = moq_jwk_kid(key);
    moq_info("relay", "reload: auth key %s: %s%s%s", path, moq_jwt_alg_name(moq_jwk_alg(key)),
             kid ? ", kid " : "", kid ? kid : "");
    t->reloaded++;
}

void moq_relay_reload(moq_relay *r)
{
    struct reload_tally t = {0};
    if (r->worker.index == 0) {
        reload_certificate(r->tls, "QUIC certificate", &t);
        if (r->https_tls) reload_certificate(r->https_tls, "HTTPS certificate", &t);
    }
    size_t dropped = 0;
    moq_auth_reload(r->auth, report_key, &t, &dropped);
    if (moq_auth_has_key_dir(r->auth))
        moq_info("relay", "reload: auth key_dir %s: %zu cached key(s) forgotten, read again on use",
                 r->cfg->auth.key_dir, dropped);
    if (t.failed)
        moq_warn("relay", "reload finished: %zu reloaded, %zu failed; sessions continue",
                 t.reloaded, t.failed);
    else
        moq_info("relay", "reload finished: %zu reloaded; sessions continue", t.reloaded);
}

/* ---------------------------------------------------------------- construction */

static uint64_t random_origin_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        if (gnutls_rnd(GNUTLS_RND_NONCE, &id, sizeof(id)) < 0) id = (uint64_t)moq_now_ns();
        id &= (1ull << 53) - 1; /* JavaScript peers read hop ids as doubles */
    }
    return id;
}

/* A moq-lite version with an ALPN of its own: the configured ones, else the defaults. */
static bool lite_wanted(const moq_strlist *want, const char *name)
{
    if (want->len) return moq_strlist_contains(want, name);
    const moq_caps *c = moq_caps_get((moq_version)moq_version_from_name(name));
    return c && c->by_default;
}

static void pick_versions(moq_relay *r)
{
    static const char *const lite[] = {"moq-lite-06-wip", "moq-lite-05", "moq-lite-04",
                                       "moq-lite-03"};
    static const char *const compat[] = {"moq-lite-02", "moq-lite-01", "moq-transport-14"};
    const moq_strlist *want = &r->cfg->server.version;
    for (size_t i = 0; i < sizeof(lite) / sizeof(lite[0]); i++)
        if (lite_wanted(want, lite[i])) r->versions[r->n_versions++] = lite[i];
    /* moq-lite-02/01 and moq-transport-14 are reached through the "moql" ALPN and the
     * compat SETUP */
    for (size_t i = 0; i < sizeof(compat) / sizeof(compat[0]); i++)
        if (want->len && moq_strlist_contains(want, compat[i]))
            r->compat[r->n_compat++] = compat[i];
    if (!want->len || r->n_compat) r->versions[r->n_versions++] = MOQ_IETF_ALPN_COMPAT;
    for (const moq_ietf_caps *const *c = moq_ietf_drafts; *c; c++) {
        if (!moq_ietf_engine_runs((*c)->draft)) continue;
        if (want->len && !moq_strlist_contains(want, (*c)->name)) continue;
        r->versions[r->n_versions++] = (*c)->alpn;
    }
    for (size_t i = 0; i < r->n_versions; i++)
        r->alpns[r->n_alpns++] = r->versions[i];
    r->alpns[r->n_alpns++] = "h3";
}

int moq_relay_tls_new(const struct moq_config *c, moq_tls_server **tls, moq_tls_server **https,
                      char *err, size_t errlen)
{
    moq_tls_server_config tc = {
        .certs = (const char *const *)c->server.tls.cert.v,
        .n_certs = c->server.tls.cert.len,
        .keys = (const char *const *)c->server.tls.key.v,
        .n_keys = c->server.tls.key.len,
        .generate = (const char *const *)c->server.tls.generate.v,
        .n_generate = c->server.tls.generate.len,
        .client_roots = (const char *const *)c->server.tls.root.v,
        .n_client_roots = c->server.tls.root.len,
    };
    int rv = moq_tls_server_new(&tc, moq_wall_s(), tls, err, errlen);
    if (rv < 0) return rv;
    if (c->web.https.listen) {
        moq_tls_server_config hc = {
            .certs = (const char *const *)c->web.https.cert.v,
            .n_certs = c->web.https.cert.len,
            .keys = (const char *const *)c->web.https.key.v,
            .n_keys = c->web.https.key.len,
            .client_roots = (const char *const *)c->web.https.root.v,
            .n_client_roots = c->web.https.root.len,
        };
        rv = moq_tls_server_new(&hc, moq_wall_s(), https, err, errlen);
        if (rv < 0) return rv;
    }
    return 0;
}

static int setup_tls(moq_relay *r, char *err, size_t errlen)
{
    if (r->worker.tls) {
        r->tls = r->worker.tls;
        r->https_tls = r->worker.https_tls;
        return 0;
    }
    r->owns_tls = true;
    return moq_relay_tls_new(r->cfg, &r->tls, &r->https_tls, err, errlen);
}

static int setup_auth(moq_relay *r, char *err, size_t errlen)
{
    const struct moq_config_auth *a = &r->cfg->auth;
    moq_auth_config ac = {
        .key = a->key,
        .keys = (const char *const *)a->keys.v,
        .keys_len = a->keys.len,
        .key_dir = a->key_dir,
        .public_publish = (const char *const *)a->public_publish.v,
        .public_publish_len = a->public_publish.len,
        .public_subscribe = (const char *const *)a->public_subscribe.v,
        .public_subscribe_len = a->public_subscribe.len,
    };
    moq_auth_error e = {0};
    int rv = moq_auth_new(&ac, &r->auth, &e);
    if (rv < 0) snprintf(err, errlen, "auth: %s", e.msg);
    return rv;
}

/* A listener that could not be opened (rv, with errno e); an address in use names the
 * option that moves it. */
static void listen_failed(char *err, size_t errlen, const char *what, const char *addr, int rv,
                          int e, const char *option)
{
    if (rv == MOQ_ERR_IO && e == EADDRINUSE)
        snprintf(err, errlen,
                 "%s on %s: address already in use (another relay running?); choose another "
                 "address with %s",
                 what, addr, option);
    else
        snprintf(err, errlen, "%s on %s: %s", what, addr, moq_strerror(rv));
}

/* The QUIC layer's ack timeout for a config value (0 there means off). */
static uint64_t quic_ack_timeout(const struct moq_config_quic *q)
{
    return q->ack_timeout_ms ? q->ack_timeout_ms : MOQ_QUIC_ACK_TIMEOUT_OFF;
}

void moq_relay_quic_limits_config(const struct moq_config *c, struct moq_quic_limits_config *lc)
{
    /* Connections still handshaking or closing count too: leave them room, so that the
     * session limit itself is what a client meets first. */
    uint64_t max = c->limits.max_sessions;
    uint64_t rate = c->limits.handshake_rate;
    *lc = (struct moq_quic_limits_config){
        .max_connections = max && max < SIZE_MAX / 2 ? (size_t)(max + max / 4 + 16) : SIZE_MAX,
        .max_half_open =
            c->limits.half_open_per_address ? c->limits.half_open_per_address : SIZE_MAX,
        .handshake_rate = (double)(rate > UINT32_MAX ? UINT32_MAX : rate),
    };
}

static int setup_quic(moq_relay *r, char *err, size_t errlen)
{
    const struct moq_config_server *s = &r->cfg->server;
    struct moq_quic_server_config qc = {
        .listen = s->bind ? s->bind : MOQ_CONFIG_DEFAULT_BIND,
        .alpn = r->alpns,
        .alpn_count = r->n_alpns,
        .creds_acquire = quic_creds_acquire,
        .creds_release = creds_release,
        .creds_ctx = r->tls,
        .tls_setup = r->cfg->server.tls.root.len ? quic_tls_setup : NULL,
        .accept = quic_accept,
        .accept_ctx = r,
        .reset_secret = r->worker.reset_secret,
        .worker = r->worker.index,
        .workers = r->worker.count,
        .port = r->worker.quic_port,
    };
    struct moq_quic_limits_config lc;
    moq_relay_quic_limits_config(r->cfg, &lc);
    qc.max_connections = lc.max_connections;
    qc.max_half_open_per_address = lc.max_half_open;
    qc.retry_above_rate = (uint32_t)lc.handshake_rate;
    qc.limits = r->worker.quic_limits;
    qc.transport.max_concurrent_streams = s->quic.max_streams;
    if (s->quic.receive_window_set) qc.transport.receive_window = s->quic.receive_window;
    qc.transport.idle_timeout_ms = s->quic.idle_timeout_ms;
    qc.transport.keep_alive_ms = s->quic.keep_alive_ms;
    qc.transport.ack_timeout_ms = quic_ack_timeout(&s->quic);
    qc.transport.disable_gso = s->quic.gso_set && !s->quic.gso;
    qc.transport.cc =
        s->quic.congestion_control == MOQ_CONGESTION_DELAY ? MOQ_QUIC_CC_BBR : MOQ_QUIC_CC_CUBIC;
    int rv = moq_quic_server_new(r->loop, &qc, &r->quic);
    if (rv < 0) {
        listen_failed(err, errlen, "QUIC listener", qc.listen, rv, errno,
                      "--server-bind or MOQ_SERVER_BIND (server.bind in the config file)");
        return rv;
    }
    return 0;
}

static uint32_t ms32(uint64_t ms)
{
    return ms < UINT32_MAX ? (uint32_t)ms : UINT32_MAX - 1;
}

static int setup_http(moq_relay *r, char *err, size_t errlen)
{
    const struct moq_config *c = r->cfg;
    if (!c->web.http.listen && !c->web.https.listen) return 0;
    struct moq_http_config hc;
    moq_http_config_default(&hc);
    /* A qmux session stops producing records once the WebSocket queues send_high_water
     * bytes and resumes on the WebSocket's `writable` event, which fires only after the
     * queue rose above ws_low_water and fell below it again: with a low-water mark above the
     * high-water mark, a session whose queue stops in between never resumes. */
    struct moq_qmux_config qc;
    moq_qmux_config_default(&qc);
    hc.ws_low_water = qc.send_high_water;
    /* WebSocket sessions notice a vanished peer like QUIC ones: pings at the keep-alive
     * interval, dropped after the ack timeout without an answer (qmux-01/02 sessions also
     * time their QX_PINGs out, moq_relay_ws_upgrade). */
    const struct moq_config_quic *sq = &c->server.quic;
    if (sq->keep_alive_ms) hc.ws_ping_interval_ms = ms32(sq->keep_alive_ms);
    hc.ws_ack_timeout_ms = sq->ack_timeout_ms ? ms32(sq->ack_timeout_ms) : UINT32_MAX;
    /* 0 keeps the server's default (moq_http_config_default). */
    hc.max_conns = c->limits.http_max_connections ? c->limits.http_max_connections : SIZE_MAX;
    hc.shared_conns = r->worker.http_conns;
    hc.max_header_bytes = c->limits.http_max_header_size;
    hc.header_timeout_ms = (uint32_t)c->limits.http_header_timeout_ms;
    hc.ws_max_message = c->limits.ws_max_message;
    r->http = moq_http_server_new(r->loop, &hc);
    if (!r->http) return MOQ_ERR_NOMEM;
    struct moq_web_hooks hooks = moq_relay_web_hooks_template;
    hooks.ctx = r;
    /* Upstream keeps /metrics off the public listeners: it is for [internal]. */
    if (!c->web.metrics) hooks.metrics = NULL;
    r->web = moq_web_new(moq_http_server_router(r->http), &hooks);
    if (!r->web) return MOQ_ERR_NOMEM;
    int rc = moq_relay_inspect_public(r, moq_http_server_router(r->http));
    if (rc < 0) return rc;
    if (c->web.ws) moq_http_server_set_ws(r->http, moq_relay_ws_upgrade, r);
    int rv;
    if (c->web.http.listen) {
        rv = moq_http_server_listen_shared(r->http, c->web.http.listen, NULL, r->worker.count > 1,
                                           r->worker.http_port, &r->http_port);
        if (rv < 0) {
            listen_failed(err, errlen, "HTTP listener", c->web.http.listen, rv, errno,
                          "--web-http-listen or MOQ_WEB_HTTP_LISTEN (web.http.listen in the "
                          "config file)");
            return rv;
        }
    }
    if (c->web.https.listen) {
        struct moq_http_tls tls = {quic_creds_acquire, creds_release, r->https_tls,
                                   c->web.https.root.len ? quic_tls_setup : NULL};
        rv = moq_http_server_listen_shared(r->http, c->web.https.listen, &tls, r->worker.count > 1,
                                           r->worker.https_port, &r->https_port);
        if (rv < 0) {
            listen_failed(err, errlen, "HTTPS listener", c->web.https.listen, rv, errno,
                          "--web-https-listen or MOQ_WEB_HTTPS_LISTEN (web.https.listen in the "
                          "config file)");
            return rv;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- cluster */

/* Cluster dials go through src/client: the peer may publish and read everything. */
struct relay_dial {
    moq_relay *r;
    const struct moq_cluster_dial_events *ev;
    void *arg;
    moq_dial *d;
};

static void rd_connected(void *ctx, moq_dial *d, moq_session *s)
{
    struct relay_dial *rd = ctx;
    rd->ev->connected(rd->arg, s);
}

static void rd_upstream(void *ctx, moq_dial *d, moq_session *s, const uint8_t *path, size_t len,
                        const uint64_t *hops, size_t nhops, bool active)
{
    struct relay_dial *rd = ctx;
    rd->ev->upstream(rd->arg, s, path, len, hops, nhops, active);
}

static void rd_closed(void *ctx, moq_dial *d, int err, uint64_t code, const char *reason)
{
    struct relay_dial *rd = ctx;
    rd->r->dials--;
    rd->ev->closed(rd->arg, err, code, reason);
    free(rd);
}

static int relay_dial(void *ctx, const char *url, moq_origin *origin,
                      const struct moq_cluster_dial_events *ev, void *arg, void **handle)
{
    moq_relay *r = ctx;
    const struct moq_config_client *cc = &r->cfg->client;
    static const char *const everything[] = {""};
    struct relay_dial *rd = calloc(1, sizeof(*rd));
    if (!rd) return MOQ_ERR_NOMEM;
    rd->r = r;
    rd->ev = ev;
    rd->arg = arg;
    struct moq_dial_config dc = {
        .url = url,
        .versions = cc->version.len ? (const char *const *)cc->version.v : NULL,
        .n_versions = cc->version.len,
        .timeout_ms = cc->timeout_ms,
        .origin = origin,
        .publish = everything,
        .n_publish = 1,
        .subscribe = everything,
        .n_subscribe = 1,
        .connected = rd_connected,
        .upstream = rd_upstream,
        .tls_hint = "to trust it, set [client] tls.fingerprint (--client-tls-fingerprint, the "
                    "peer's /certificate.sha256) or tls.root (--client-tls-root, its CA file)",
        .closed = rd_closed,
        .ctx = rd,
    };
    dc.tls.disable_verify = cc->tls.disable_verify;
    dc.tls.roots = (const char *const *)cc->tls.root.v;
    dc.tls.n_roots = cc->tls.root.len;
    dc.tls.fingerprints = (const char *const *)cc->tls.fingerprint.v;
    dc.tls.n_fingerprints = cc->tls.fingerprint.len;
    dc.tls.cert = cc->tls.cert;
    dc.tls.key = cc->tls.key;
    if (cc->tls.system_roots_set)
        dc.tls.system_roots =
            cc->tls.system_roots ? MOQ_TLS_SYSTEM_ROOTS_ON : MOQ_TLS_SYSTEM_ROOTS_OFF;
    dc.transport.keep_alive_ms = cc->quic.keep_alive_ms ? cc->quic.keep_alive_ms : 5000;
    dc.transport.idle_timeout_ms = cc->quic.idle_timeout_ms;
    dc.transport.ack_timeout_ms = quic_ack_timeout(&cc->quic);
    char err[256] = "";
    int rv = moq_dial_start(r->loop, &dc, &rd->d, err, sizeof(err));
    if (rv < 0) {
        moq_warn("cluster", "cannot dial %s: %s", url, err);
        free(rd);
        return rv;
    }
    r->dials++;
    *handle = rd;
    return 0;
}

static void relay_dial_close(void *ctx, void *handle)
{
    struct relay_dial *rd = handle;
    moq_dial_close(rd->d, 0, "closed");
}

static int setup_cluster(moq_relay *r, char *err, size_t errlen)
{
    const struct moq_config_cluster *cc = &r->cfg->cluster;
    if (!cc->connect.len && !cc->node) return 0;
    if (r->worker.index != 0) return 0; /* worker 0 links the relay; bridges carry the rest */
    int rv = cc->token ? moq_cluster_token_load(cc->token, &r->cluster_token, err, errlen) : 0;
    if (rv < 0) return rv;
    struct moq_cluster_config c = {
        .loop = r->loop,
        .origin = r->origin,
        .node = cc->node,
        .peers = (const char *const *)cc->connect.v,
        .n_peers = cc->connect.len,
        .token = r->cluster_token,
        .dialer = {relay_dial, relay_dial_close, r},
        .backoff_initial_ms = r->cfg->client.backoff.initial_ms,
        .backoff_max_ms = r->cfg->client.backoff.max_ms,
    };
    rv = moq_cluster_new(&c, &r->cluster);
    if (rv < 0) snprintf(err, errlen, "cluster: %s", moq_strerror(rv));
    return rv;
}

/* The operations listener for a private network: /health, /metrics, relay information at /,
 * /debug/sessions, /debug/broadcasts, /debug/tracks, /nodes and the /status page, without
 * authentication. It keeps descriptors in reserve and serves from them, so it answers even
 * when the public listeners have used up every descriptor the process may open. */

#define INTERNAL_RESERVE_FDS 4

static int setup_internal(moq_relay *r, char *err, size_t errlen)
{
    const char *listen = r->cfg->internal.listen;
    if (!listen || r->worker.index != 0) return 0;
    struct moq_http_config hc;
    moq_http_config_default(&hc);
    hc.reserve_fds = INTERNAL_RESERVE_FDS;
    hc.reserve_serve = true;
    r->internal = moq_http_server_new(r->loop, &hc);
    if (!r->internal) return MOQ_ERR_NOMEM;
    struct moq_web_hooks hooks = {.ctx = r, .metrics = moq_relay_web_hooks_template.metrics};
    r->internal_web = moq_web_new(moq_http_server_router(r->internal), &hooks);
    if (!r->internal_web) return MOQ_ERR_NOMEM;
    int rc = moq_relay_inspect_internal(r, moq_http_server_router(r->internal));
    if (rc < 0) return rc;
    uint16_t port;
    int rv = moq_http_server_listen(r->internal, listen, NULL, &port);
    if (rv < 0)
        listen_failed(err, errlen, "internal listener", listen, rv, errno,
                      "--internal-listen or MOQ_INTERNAL_LISTEN (internal.listen in the config "
                      "file)");
    return rv;
}

int moq_relay_new(struct ev_loop *loop, const struct moq_config *cfg, moq_relay **out, char *err,
                  size_t errlen)
{
    return moq_relay_new_worker(loop, cfg, NULL, out, err, errlen);
}

static void log_ready(const moq_relay *r)
{
    char offered[256] = "";
    for (size_t i = 0, o = 0; i < r->n_versions && o < sizeof(offered); i++) {
        int n = snprintf(offered + o, sizeof(offered) - o, "%s%s", i ? ", " : "", r->versions[i]);
        if (n < 0) break;
        o += (size_t)n;
    }
    char workers[32] = "";
    if (r->worker.count > 1) snprintf(workers, sizeof(workers), ", %u workers", r->worker.count);
    moq_info("relay", "ready: origin id %llu, moq versions %s over QUIC, WebTransport%s%s",
             (unsigned long long)moq_origin_id(r->origin), offered,
             r->http && r->cfg->web.ws ? " and WebSocket" : "", workers);
}

static int setup_bridge(moq_relay *r)
{
    if (!r->worker.hub) return 0;
    return moq_bridge_new(r->worker.hub, r->worker.index, r->loop, r->origin, &r->bridge);
}

int moq_relay_new_worker(struct ev_loop *loop, const struct moq_config *cfg,
                         const struct moq_relay_worker *w, moq_relay **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    moq_relay *r = calloc(1, sizeof(*r));
    if (!r) return MOQ_ERR_NOMEM;
    r->loop = loop;
    r->cfg = cfg;
    if (w)
        r->worker = *w;
    else
        r->worker.count = 1;
    r->started_us = moq_now_us();
    moq_ev_deadline_init(&r->origin_timer, loop, origin_timer_fired, r);
    moq_list_init(&r->sessions);
    moq_list_init(&r->websockets);
    pick_versions(r);

    moq_origin_config oc;
    moq_origin_config_default(&oc);
    oc.id = r->worker.origin_id                      ? r->worker.origin_id
            : cfg->cluster.id_set && cfg->cluster.id ? cfg->cluster.id
                                                     : random_origin_id();
    oc.linger_us = cfg->cluster.linger_ms * 1000;
    oc.linger_deadline = origin_linger;
    oc.linger_ctx = r;
    oc.broadcast_event = origin_broadcast_event;
    oc.broadcast_ctx = r;
    if (cfg->cache.duration_set) oc.cache_duration_us = cfg->cache.duration_ms * 1000;
    if (cfg->cache.capacity_set) oc.cache_capacity = cfg->cache.capacity;
    oc.shared_charge = r->worker.cache_charge;
    oc.announce_seq = r->worker.announce_seq;
    r->origin = moq_origin_new(&oc);
    int rv = r->origin ? 0 : MOQ_ERR_NOMEM;
    if (rv == 0) rv = setup_bridge(r);
    if (rv == 0) rv = setup_tls(r, err, errlen);
    if (rv == 0) rv = setup_auth(r, err, errlen);
    if (rv == 0) rv = setup_quic(r, err, errlen);
    if (rv == 0) rv = setup_http(r, err, errlen);
    if (rv == 0) rv = setup_internal(r, err, errlen);
    if (rv == 0) rv = setup_cluster(r, err, errlen);
    if (rv < 0) {
        if (!err[0]) snprintf(err, errlen, "%s", moq_strerror(rv));
        moq_relay_free(r);
        return rv;
    }
    moq_memtrim_init(&r->memtrim, cfg->limits.memory_trim_quiet_ms * MOQ_US_PER_MS, moq_now_us());
    ev_timer_init(&r->tick, tick_cb, TICK_S, TICK_S);
    r->tick.data = r;
    ev_timer_start(loop, &r->tick);
    if (r->worker.count > 1)
        snprintf(r->loop_name, sizeof(r->loop_name), "worker %u", r->worker.index);
    else
        snprintf(r->loop_name, sizeof(r->loop_name), "relay");
    moq_loopwatch_start(&r->loopwatch, loop, r->loop_name, MOQ_US_PER_S);
    origin_rearm(r, moq_now_us());
    if (r->worker.count <= 1) log_ready(r);
    *out = r;
    return 0;
}

int moq_relay_worker_ready(moq_relay *r)
{
    int rv = r->bridge ? moq_bridge_start(r->bridge) : 0;
    if (rv == 0 && r->worker.index == 0) log_ready(r);
    return rv;
}

void moq_relay_free(moq_relay *r)
{
    if (!r) return;
    ev_timer_stop(r->loop, &r->tick);
    moq_loopwatch_stop(&r->loopwatch, r->loop);
    /* Cluster links first; their sessions finish closing from the loop. */
    if (r->cluster) moq_cluster_free(r->cluster);
    for (int i = 0; i < 200 && r->dials; i++)
        ev_run(r->loop, EVRUN_ONCE | EVRUN_NOWAIT);
    if (r->cluster_token) explicit_bzero(r->cluster_token, strlen(r->cluster_token));
    free(r->cluster_token);
    /* Listeners next: closing them delivers `closed` to every session, which releases its
     * handles in the origin. */
    if (r->quic) moq_quic_server_free(r->quic);
    moq_relay_ws_close_all(r);
    if (r->web) moq_web_free(r->web);
    if (r->http) moq_http_server_free(r->http);
    moq_relay_ws_close_all(r);
    if (r->internal_web) moq_web_free(r->internal_web);
    if (r->internal) moq_http_server_free(r->internal);
    moq_ev_deadline_stop(&r->origin_timer); /* sessions ending above may have armed it */
    moq_relay_unbridge(r);
    if (r->origin) moq_origin_free(r->origin);
    moq_bridge_free(r->bridge);
    if (r->auth) moq_auth_free(r->auth);
    if (r->owns_tls && r->tls) moq_tls_server_free(r->tls);
    if (r->owns_tls && r->https_tls) moq_tls_server_free(r->https_tls);
    free(r);
    moq_pool_release_thread(); /* what this thread's teardown cached */
}

void moq_relay_unbridge(moq_relay *r)
{
    if (r->bridge) moq_bridge_stop(r->bridge);
}

uint16_t moq_relay_quic_port(const moq_relay *r)
{
    return r->quic ? moq_quic_server_port(r->quic) : 0;
}

uint16_t moq_relay_http_port(const moq_relay *r)
{
    return r->http_port;
}

uint16_t moq_relay_https_port(const moq_relay *r)
{
    return r->https_port;
}

moq_origin *moq_relay_origin(moq_relay *r)
{
    return r->origin;
}

/* ---------------------------------------------------------------- run */

#define DRAIN_S  0.5
#define GOAWAY_S 0.1

static void drain_done(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void run_for(moq_relay *r, double seconds)
{
    ev_timer t;
    ev_timer_init(&t, drain_done, seconds, 0.);
    ev_timer_start(r->loop, &t);
    ev_run(r->loop, 0);
    ev_timer_stop(r->loop, &t);
}

/* What the relay started on its loop may outlive moq_relay_free by a moment: a cluster dial's
 * QUIC connection stays open after its WebTransport session closed until the peer has
 * acknowledged the close (h3/h3.h), which a peer shutting down too may never do. Settling
 * ends those waits at once (moq_h3_loop_shutdown) and runs the loop until the connections
 * have closed and are freed: a loop destroyed under them would leave them allocated. The
 * bound only turns something unforeseen that keeps the loop busy into a warning. */
#define SETTLE_S 2.0

struct settle {
    ev_timer bound;
    bool expired;
};

static void settle_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct settle *st = w->data;
    st->expired = true;
    ev_break(loop, EVBREAK_ALL);
}

void moq_relay_settle(struct ev_loop *loop)
{
    struct settle st = {.expired = false};
    moq_h3_loop_shutdown(loop);
    ev_timer_init(&st.bound, settle_expired, SETTLE_S, 0.);
    st.bound.data = &st;
    ev_timer_start(loop, &st.bound);
    ev_unref(loop); /* the bound alone does not keep the loop running */
    ev_run(loop, 0);
    ev_ref(loop);
    ev_timer_stop(loop, &st.bound);
    if (st.expired)
        moq_warn("relay", "shutdown: connections still closing after %.0f s are left open",
                 SETTLE_S);
}

/* Close every session gracefully: IETF sessions get a GOAWAY first, which a close at once
 * would drop with the stream data still unsent, so those have GOAWAY_S to go out; then
 * every session is closed (clients see a clean close with code 0, and WebSocket clients a
 * qmux APPLICATION_CLOSE before the Close frame), and the closes have a moment to reach the
 * wire before the listeners go. */
void moq_relay_drain(moq_relay *r)
{
    if (r->n_sessions == 0) return;
    moq_info("relay", "closing %zu session(s)", r->n_sessions);
    moq_list *pos, *tmp;
    bool goaway = false;
    moq_list_each(pos, tmp, &r->sessions)
    {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        if (moq_session_goaway(rs->session)) goaway = true;
    }
    if (goaway) run_for(r, GOAWAY_S);
    moq_list_each(pos, tmp, &r->sessions)
    {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        moq_session_close(rs->session, 0, "relay shutting down");
    }
    run_for(r, DRAIN_S);
}

static void on_hangup(struct ev_loop *loop, ev_signal *w, int revents)
{
    moq_info("relay", "received SIGHUP, reloading certificates and keys (other settings take "
                      "effect on restart)");
    moq_relay **r = w->data;
    moq_relay_reload(*r);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    moq_info("relay", "received %s, shutting down", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    ev_break(loop, EVBREAK_ALL);
}

/* Thousands of sessions need descriptors (WebSocket connections, the cluster's dials). */
static void raise_open_files(void)
{
    struct moq_fdlimit fl;
    moq_fdlimit_raise(&fl);
    if (fl.err) {
        moq_warn("relay", "open files limit %" PRIu64 ": cannot raise it to the hard limit: %s",
                 fl.before, strerror(fl.err));
    } else if (fl.raised) {
        moq_info("relay",
                 "open files limit raised from %" PRIu64 " to %" PRIu64 " (the hard limit)",
                 fl.before, fl.after);
    } else {
        moq_info("relay", "open files limit %" PRIu64 " (the hard limit)", fl.after);
    }
}

int moq_relay_run(const struct moq_config *cfg)
{
    raise_open_files();
    unsigned workers = moq_config_workers(cfg);
    if (workers > 1) return moq_relay_run_workers(cfg, workers);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (!loop) {
        moq_error("relay", "cannot create the event loop");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* SIGHUP is caught from before "ready" is logged: a reload asked for early waits. */
    moq_relay *r = NULL;
    ev_signal sigint, sigterm, sighup;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sighup, on_hangup, SIGHUP);
    sighup.data = &r;
    ev_signal_start(loop, &sigint);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sighup);
    char err[512] = "";
    if (moq_relay_new(loop, cfg, &r, err, sizeof(err)) < 0) {
        moq_error("relay", "%s", err);
        ev_signal_stop(loop, &sigint);
        ev_signal_stop(loop, &sigterm);
        ev_signal_stop(loop, &sighup);
        return 1;
    }
    struct moq_service service;
    moq_service_ready(&service, loop);
    ev_run(loop, 0);
    moq_service_stopping(&service);
    ev_signal_stop(loop, &sigint);
    ev_signal_stop(loop, &sigterm);
    moq_relay_drain(r);
    moq_service_stop(&service);
    ev_signal_stop(loop, &sighup);
    signal(SIGHUP, SIG_IGN); /* shutting down: nothing left to reload */
    moq_relay_free(r);
    moq_relay_settle(loop);
    moq_info("relay", "stopped");
    return 0;
}
