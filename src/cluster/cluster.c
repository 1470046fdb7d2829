#include "cluster/cluster.h"

#include <ev.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "moq/path.h"
#include "util/err.h"
#include "util/list.h"
#include "util/log.h"
#include "util/map.h"
#include "util/time.h"
#include "util/url.h"

#define DEFAULT_BACKOFF_INITIAL_MS 500
#define DEFAULT_BACKOFF_MAX_MS     10000
#define DEFAULT_IDLE_CLOSE_MS      10000
/* A session that lived this long resets the backoff when it ends. */
#define STABLE_MS 10000

struct peer {
    moq_cluster *c; /* NULL once the cluster is gone and only the session remains */
    char *url;      /* as configured or advertised (no token added) */
    bool on_demand;
    uint64_t node_id; /* the origin id we dialed it for (on-demand), else 0 */
    moq_session *session;
    void *dial; /* from dial() until its `closed` event */
    uint64_t backoff_ms;
    uint64_t connected_at;
    ev_timer retry;
    ev_timer idle;
    size_t pulls; /* tracks the origin pulls through this session now */
    bool closing; /* closed on purpose: do not redial */
    moq_list link;
};

struct moq_cluster {
    struct ev_loop *loop;
    moq_origin *origin;
    char *node;
    char *token;
    struct moq_cluster_dialer dialer;
    uint64_t backoff_initial_ms, backoff_max_ms, idle_close_ms;
    moq_list peers;
    moq_u64map nodes; /* origin id -> char *url */
    moq_watch *nodes_watch;
    moq_route *self_route;
};

static void peer_dial(struct peer *p);
static void peer_free(struct peer *p);

/* ---------------------------------------------------------------- node advertisement */

/* Node URLs become one path segment: '/' and '%' are percent-encoded. */
static int encode_node(moq_buf *out, const char *url)
{
    int rv = moq_buf_append(out, MOQ_CLUSTER_NODES_PREFIX "/", sizeof(MOQ_CLUSTER_NODES_PREFIX));
    for (const char *p = url; rv == 0 && *p; p++) {
        if (*p == '/' || *p == '%') {
            char esc[4];
            snprintf(esc, sizeof(esc), "%%%02X", (unsigned char)*p);
            rv = moq_buf_append(out, esc, 3);
        } else {
            rv = moq_buf_put_u8(out, (uint8_t)*p);
        }
    }
    return rv;
}

/* NULL when out of memory or when the name is not a valid encoding (it is then ignored). */
static char *decode_node(const uint8_t *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out && moq_percent_decode((const char *)s, len, out, len + 1, 0) < 0) {
        moq_debug("cluster", "ignoring a node advertisement with a bad percent-escape");
        free(out);
        return NULL;
    }
    return out;
}

/* The advertisement carries no tracks. */
static void node_track_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    moq_track_abort(t, r, 13 /* NotFound */);
}

static void node_track_release(void *ctx, moq_route *r, moq_track *t) {}

static const moq_producer_ops node_ops = {node_track_request, NULL, node_track_release, NULL};

static void on_node(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    moq_cluster *c = ctx;
    if (ev->suffix_len == 0 || memchr(ev->suffix, '/', ev->suffix_len)) return;
    char *url = decode_node(ev->suffix, ev->suffix_len);
    if (!url) return;
    /* The relay that created the advertisement is the oldest hop of its chain. */
    if (ev->kind == MOQ_ANNOUNCE_ENDED || ev->nhops == 0) {
        size_t it = 0;
        uint64_t id;
        void *v;
        while (moq_u64map_next(&c->nodes, &it, &id, &v)) {
            if (strcmp(v, url) == 0) {
                free(moq_u64map_del(&c->nodes, id));
                break;
            }
        }
        free(url);
        return;
    }
    uint64_t id = ev->hops[0];
    free(moq_u64map_del(&c->nodes, id));
    if (moq_u64map_put(&c->nodes, id, url) < 0) {
        free(url);
        return;
    }
    moq_debug("cluster", "node %s has origin id %llu", url, (unsigned long long)id);
}

static const moq_watch_ops node_watch_ops = {on_node};

/* ---------------------------------------------------------------- sessions */

static uint64_t jitter(uint64_t ms)
{
    uint32_t r = 0;
    gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
    uint64_t span = ms / 5;
    return ms - span + (span ? (r % (2 * span + 1)) : 0);
}

static void schedule_retry(struct peer *p)
{
    moq_cluster *c = p->c;
    if (!c || p->closing) return;
    if (!p->backoff_ms) p->backoff_ms = c->backoff_initial_ms;
    uint64_t delay = jitter(p->backoff_ms);
    p->backoff_ms = p->backoff_ms * 2 > c->backoff_max_ms ? c->backoff_max_ms : p->backoff_ms * 2;
    ev_timer_stop(c->loop, &p->retry);
    ev_timer_set(&p->retry, (double)delay / 1000., 0.);
    ev_timer_start(c->loop, &p->retry);
    moq_info("cluster", "redialing %s in %.1fs", p->url, (double)delay / 1000.);
}

static void on_connected(void *arg, moq_session *s)
{
    struct peer *p = arg;
    p->session = s;
    if (!p->c) return;
    p->connected_at = moq_now_us() / 1000;
    moq_info("cluster", "connected to %s%s", p->url, p->on_demand ? " (on demand)" : "");
    if (p->on_demand && p->pulls == 0) {
        ev_timer_set(&p->idle, (double)p->c->idle_close_ms / 1000., 0.);
        ev_timer_start(p->c->loop, &p->idle);
    }
}

static void on_upstream(void *arg, moq_session *s, const uint8_t *path, size_t len,
                        const uint64_t *hops, size_t nhops, bool active)
{
    struct peer *p = arg;
    if (p->c) moq_cluster_upstream(p->c, s, path, len, hops, nhops, active);
}

static void on_closed(void *arg, int err, uint64_t code, const char *reason)
{
    struct peer *p = arg;
    bool was_connected = p->session != NULL;
    p->session = NULL;
    p->dial = NULL;
    if (!p->c) { /* the cluster is gone; only this peer was left */
        free(p->url);
        free(p);
        return;
    }
    moq_cluster *c = p->c;
    ev_timer_stop(c->loop, &p->idle);
    const char *why = reason && reason[0] ? reason : moq_strerror(err);
    if (!was_connected)
        moq_warn("cluster", "dialing %s failed: %s", p->url, why);
    else if (code == 6)
        moq_warn("cluster", "%s refused our credentials (code 6%s%s)", p->url,
                 reason && reason[0] ? ": " : "", reason ? reason : "");
    else
        moq_info("cluster", "session with %s ended (code %llu%s%s)", p->url,
                 (unsigned long long)code, reason && reason[0] ? ": " : "", reason ? reason : "");
    if (p->closing || p->on_demand) {
        peer_free(p);
        return;
    }
    if (was_connected && moq_now_us() / 1000 - p->connected_at >= STABLE_MS) p->backoff_ms = 0;
    schedule_retry(p);
}

static const struct moq_cluster_dial_events dial_events = {on_connected, on_upstream, on_closed};

static char *dial_url(const moq_cluster *c, const char *url)
{
    const char *q = strchr(url, '?');
    bool has_jwt = q && (strstr(q, "?jwt=") || strstr(q, "&jwt="));
    size_t n = strlen(url) + (c->token && !has_jwt ? strlen(c->token) + 6 : 0) + 1;
    char *out = malloc(n);
    if (!out) return NULL;
    if (c->token && !has_jwt)
        snprintf(out, n, "%s%sjwt=%s", url, q ? "&" : "?", c->token);
    else
        snprintf(out, n, "%s", url);
    return out;
}

static void peer_dial(struct peer *p)
{
    moq_cluster *c = p->c;
    char *url = dial_url(c, p->url);
    if (!url) {
        schedule_retry(p);
        return;
    }
    moq_debug("cluster", "dialing %s", p->url);
    int rv = c->dialer.dial(c->dialer.ctx, url, c->origin, &dial_events, p, &p->dial);
    free(url);
    if (rv < 0) {
        p->dial = NULL;
        moq_warn("cluster", "cannot dial %s: %s", p->url, moq_strerror(rv));
        if (p->on_demand)
            peer_free(p);
        else
            schedule_retry(p);
    }
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    peer_dial(w->data);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct peer *p = w->data;
    if (!p->session || p->pulls) return;
    moq_info("cluster", "closing unused direct link to %s", p->url);
    p->closing = true;
    p->c->dialer.close(p->c->dialer.ctx, p->dial);
}

static struct peer *peer_new(moq_cluster *c, const char *url, bool on_demand, uint64_t node_id)
{
    struct peer *p = calloc(1, sizeof(*p));
    if (!p || !(p->url = strdup(url))) {
        free(p);
        return NULL;
    }
    p->c = c;
    p->on_demand = on_demand;
    p->node_id = node_id;
    ev_timer_init(&p->retry, retry_cb, 0., 0.);
    ev_timer_init(&p->idle, idle_cb, 0., 0.);
    p->retry.data = p->idle.data = p;
    moq_list_push_back(&c->peers, &p->link);
    return p;
}

/* Forget a peer whose dial is over (or never started). */
static void peer_free(struct peer *p)
{
    if (p->c) {
        ev_timer_stop(p->c->loop, &p->retry);
        ev_timer_stop(p->c->loop, &p->idle);
        moq_list_remove(&p->link);
    }
    free(p->url);
    free(p);
}

/* ---------------------------------------------------------------- on-demand links */

static struct peer *peer_by_session(moq_cluster *c, moq_session *s)
{
    moq_list *pos;
    for (pos = c->peers.next; pos != &c->peers; pos = pos->next) {
        struct peer *p = moq_container_of(pos, struct peer, link);
        if (p->session == s) return p;
    }
    return NULL;
}

static bool connected_to(moq_cluster *c, uint64_t id, const char *url)
{
    moq_list *pos;
    for (pos = c->peers.next; pos != &c->peers; pos = pos->next) {
        struct peer *p = moq_container_of(pos, struct peer, link);
        if (p->node_id == id || strcmp(p->url, url) == 0) return true;
        if (p->session && moq_session_peer_origin(p->session) == id) return true;
    }
    return false;
}

void moq_cluster_upstream(moq_cluster *c, moq_session *s, const uint8_t *path, size_t len,
                          const uint64_t *hops, size_t nhops, bool active)
{
    struct peer *via = peer_by_session(c, s);
    if (via && via->on_demand) {
        if (active) {
            via->pulls++;
            ev_timer_stop(c->loop, &via->idle);
        } else if (via->pulls && --via->pulls == 0) {
            ev_timer_set(&via->idle, (double)c->idle_close_ms / 1000., 0.);
            ev_timer_start(c->loop, &via->idle);
        }
    }
    if (!active) return;
    /* The relay closest to the source: the oldest hop that is a known node. */
    uint64_t self = moq_origin_id(c->origin);
    uint64_t peer_id = moq_session_peer_origin(s);
    for (size_t i = 0; i < nhops; i++) {
        if (hops[i] == self) return;
        const char *url = moq_u64map_get(&c->nodes, hops[i]);
        if (!url) continue;
        if (hops[i] == peer_id || (c->node && strcmp(url, c->node) == 0)) return; /* direct */
        if (connected_to(c, hops[i], url)) return;
        moq_info("cluster", "/%.*s comes from %s: opening a direct link", (int)len,
                 (const char *)path, url);
        struct peer *p = peer_new(c, url, true, hops[i]);
        if (p) peer_dial(p);
        return;
    }
}

/* ---------------------------------------------------------------- lifecycle */

int moq_cluster_new(const struct moq_cluster_config *cfg, moq_cluster **out)
{
    *out = NULL;
    moq_cluster *c = calloc(1, sizeof(*c));
    if (!c) return MOQ_ERR_NOMEM;
    c->loop = cfg->loop;
    c->origin = cfg->origin;
    c->dialer = cfg->dialer;
    c->backoff_initial_ms =
        cfg->backoff_initial_ms ? cfg->backoff_initial_ms : DEFAULT_BACKOFF_INITIAL_MS;
    c->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    c->idle_close_ms = cfg->idle_close_ms ? cfg->idle_close_ms : DEFAULT_IDLE_CLOSE_MS;
    moq_list_init(&c->peers);
    moq_u64map_init(&c->nodes);
    if ((cfg->node && !(c->node = strdup(cfg->node))) ||
        (cfg->token && !(c->token = strdup(cfg->token)))) {
        moq_cluster_free(c);
        return MOQ_ERR_NOMEM;
    }
    int rv = moq_origin_watch(c->origin, (const uint8_t *)MOQ_CLUSTER_NODES_PREFIX,
                              sizeof(MOQ_CLUSTER_NODES_PREFIX) - 1, 0, &node_watch_ops, c,
                              &c->nodes_watch);
    if (rv == 0 && c->node) {
        moq_buf path;
        moq_buf_init(&path);
        rv = encode_node(&path, c->node);
        if (rv == 0)
            rv = moq_origin_announce(c->origin, path.data, path.len, NULL, 0, &node_ops, c,
                                     &c->self_route);
        moq_buf_free(&path);
        if (rv == 0) moq_info("cluster", "advertising this relay as %s", c->node);
    }
    if (rv < 0) {
        moq_cluster_free(c);
        return rv;
    }
    for (size_t i = 0; i < cfg->n_peers; i++) {
        struct peer *p = peer_new(c, cfg->peers[i], false, 0);
        if (!p) {
            moq_cluster_free(c);
            return MOQ_ERR_NOMEM;
        }
        peer_dial(p);
    }
    *out = c;
    return 0;
}

void moq_cluster_free(moq_cluster *c)
{
    if (!c) return;
    while (!moq_list_empty(&c->peers)) {
        struct peer *p = moq_list_first(&c->peers, struct peer, link);
        moq_list_remove(&p->link);
        ev_timer_stop(c->loop, &p->retry);
        ev_timer_stop(c->loop, &p->idle);
        if (p->dial) {
            /* the peer struct lives on until its dial's `closed` event */
            p->c = NULL;
            p->closing = true;
            c->dialer.close(c->dialer.ctx, p->dial);
        } else {
            free(p->url);
            free(p);
        }
    }
    if (c->nodes_watch) moq_watch_close(c->nodes_watch);
    if (c->self_route) moq_route_unannounce(c->self_route);
    size_t it = 0;
    void *v;
    while (moq_u64map_next(&c->nodes, &it, NULL, &v))
        free(v);
    moq_u64map_free(&c->nodes);
    free(c->node);
    free(c->token);
    free(c);
}

size_t moq_cluster_connected(const moq_cluster *c)
{
    size_t n = 0;
    moq_list *pos;
    for (pos = c->peers.next; pos != &c->peers; pos = pos->next)
        if (moq_container_of(pos, struct peer, link)->session) n++;
    return n;
}
