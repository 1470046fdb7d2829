#include "cluster/cluster.h"

#include <errno.h>
#include <ev.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The advertisement's path, written as upstream writes it: the node URL joined under the
 * prefix as a broadcast path, which drops the slashes at its ends and collapses "//", so
 * "https://a.example:4443/" is advertised as ".internal/origins/https:/a.example:4443". */
static int advertisement_path(moq_buf *out, const char *node)
{
    size_t len = strlen(node);
    if (moq_path_count_parts(moq_str_make(node, len)) == 0) return MOQ_ERR_INVALID;
    int rv = moq_buf_append(out, MOQ_CLUSTER_NODES_PREFIX "/", sizeof(MOQ_CLUSTER_NODES_PREFIX));
    return rv ? rv : moq_path_normalize_append(out, moq_str_make(node, len));
}

/* The older form of this relay: the whole URL in one segment, '/' and '%' percent-encoded. */
static bool is_encoded_node(const uint8_t *s, size_t len)
{
    if (memchr(s, '/', len)) return false;
    for (size_t i = 0; i + 2 < len; i++)
        if (s[i] == '%' && s[i + 1] == '2' && (s[i + 2] == 'F' || s[i + 2] == 'f')) return true;
    return false;
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

/* The URL to dial for an advertisement (its path below the prefix). The upstream form puts
 * back the "//" the path collapsed: a first segment ending in ':' is a scheme
 * ("https:/a.example:4443" -> "https://a.example:4443/", the root path restored as upstream's
 * URL parser does); without one the advertisement is a bare host[:port], which means
 * https://host[:port]/. The older one-segment form is decoded. */
static char *node_url(const uint8_t *s, size_t len)
{
    if (is_encoded_node(s, len)) return decode_node(s, len);
    if (memchr(s, '\0', len)) return NULL;
    const uint8_t *slash = memchr(s, '/', len);
    bool has_scheme = slash && slash > s && slash[-1] == ':';
    const char *scheme = has_scheme ? (const char *)s : "https:";
    int scheme_len = has_scheme ? (int)(slash - s) : 6;
    const char *rest = has_scheme ? (const char *)slash + 1 : (const char *)s;
    size_t rest_len = has_scheme ? len - (size_t)(slash - s) - 1 : len;
    size_t host_len = 0;
    while (host_len < rest_len && !strchr("/?#", rest[host_len]))
        host_len++;
    bool add_root = host_len == rest_len || rest[host_len] != '/';
    size_t n = len + 12;
    char *out = malloc(n);
    if (!out) return NULL;
    snprintf(out, n, "%.*s//%.*s%s%.*s", scheme_len, scheme, (int)host_len, rest,
             add_root ? "/" : "", (int)(rest_len - host_len), rest + host_len);
    return out;
}

/* Whether two node URLs name the same relay: the query, a fragment and trailing slashes do not
 * count, case does not matter and a bare host[:port] means https://. */
static bool same_node(const char *a, const char *b)
{
    const char *v[2] = {a, b};
    size_t len[2];
    for (int i = 0; i < 2; i++) {
        if (strncasecmp(v[i], "https://", 8) == 0) v[i] += 8;
        len[i] = strcspn(v[i], "?#");
        while (len[i] && v[i][len[i] - 1] == '/')
            len[i]--;
    }
    return len[0] == len[1] && strncasecmp(v[0], v[1], len[0]) == 0;
}

/* The advertisement carries no tracks. */
static void node_track_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    moq_track_abort(t, r, 13 /* NotFound */);
}

static void node_track_release(void *ctx, moq_route *r, moq_track *t) {}

static const moq_producer_ops node_ops = {node_track_request, NULL, node_track_release, NULL,
                                          false};

static void on_node(void *ctx, moq_watch *w, const moq_announce_event *ev)
{
    moq_cluster *c = ctx;
    if (ev->suffix_len == 0) return;
    char *url = node_url(ev->suffix, ev->suffix_len);
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

/* The token a URL carries in its query (the last non-empty `jwt`), or NULL (also when the
 * query does not decode). */
static char *url_token(const char *url)
{
    const char *q = strchr(url, '?');
    char *jwt = NULL;
    if (q && moq_auth_query_jwt(q + 1, strcspn(q + 1, "#"), &jwt) < 0) jwt = NULL;
    return jwt;
}

static void free_secret(char *s)
{
    if (!s) return;
    gnutls_memset(s, 0, strlen(s));
    free(s);
}

/* A URL with its own non-empty ?jwt= is dialed as is; every other dial carries the cluster's
 * credential. */
static char *dial_url(const moq_cluster *c, const char *url)
{
    const char *q = strchr(url, '?');
    char *own = url_token(url);
    bool has_jwt = own != NULL;
    free_secret(own);
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
    free_secret(url);
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
        if (p->node_id == id || same_node(p->url, url)) return true;
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
    if (active) moq_cluster_pulled(c, moq_session_peer_origin(s), path, len, hops, nhops);
}

void moq_cluster_pulled(moq_cluster *c, uint64_t peer_id, const uint8_t *path, size_t len,
                        const uint64_t *hops, size_t nhops)
{
    /* The relay closest to the source: the oldest hop that is a known node. */
    uint64_t self = moq_origin_id(c->origin);
    for (size_t i = 0; i < nhops; i++) {
        if (hops[i] == self) return;
        const char *url = moq_u64map_get(&c->nodes, hops[i]);
        if (!url) continue;
        if (hops[i] == peer_id || (c->node && same_node(url, c->node))) return; /* direct */
        if (connected_to(c, hops[i], url)) return;
        moq_info("cluster", "/%.*s comes from %s: opening a direct link", (int)len,
                 (const char *)path, url);
        struct peer *p = peer_new(c, url, true, hops[i]);
        if (p) peer_dial(p);
        return;
    }
}

/* ---------------------------------------------------------------- lifecycle */

/* The cluster's credential: cluster.token, or else the token the configured peers' URLs carry
 * (the guide gives it only as root = "https://root/?jwt=..."), so that links opened on demand
 * to relays learned from advertisements authenticate too. Peers carrying different tokens
 * leave no single credential to use. */
static int pick_token(moq_cluster *c, const struct moq_cluster_config *cfg)
{
    if (cfg->token) return (c->token = strdup(cfg->token)) ? 0 : MOQ_ERR_NOMEM;
    bool conflict = false;
    for (size_t i = 0; i < cfg->n_peers && !conflict; i++) {
        char *t = url_token(cfg->peers[i]);
        if (!t) continue;
        if (!c->token) {
            c->token = t;
            continue;
        }
        conflict = strcmp(t, c->token) != 0;
        free_secret(t);
    }
    if (conflict) {
        free_secret(c->token);
        c->token = NULL;
        moq_warn("cluster", "the peer URLs carry different tokens: links opened to other relays "
                            "carry none; set cluster.token");
    }
    return 0;
}

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
    if ((cfg->node && !(c->node = strdup(cfg->node))) || pick_token(c, cfg) < 0) {
        moq_cluster_free(c);
        return MOQ_ERR_NOMEM;
    }
    int rv = moq_origin_watch(c->origin, (const uint8_t *)MOQ_CLUSTER_NODES_PREFIX,
                              sizeof(MOQ_CLUSTER_NODES_PREFIX) - 1, 0, &node_watch_ops, c,
                              &c->nodes_watch);
    if (rv == 0 && c->node) {
        moq_buf path;
        moq_buf_init(&path);
        rv = advertisement_path(&path, c->node);
        if (rv == 0)
            rv = moq_origin_announce(c->origin, path.data, path.len, NULL, 0, &node_ops, c,
                                     &c->self_route);
        if (rv == 0)
            moq_info("cluster", "advertising this relay as %s (/%.*s)", c->node, (int)path.len,
                     (const char *)path.data);
        moq_buf_free(&path);
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
    free_secret(c->token);
    free(c);
}

/* The advertisement of `url`, when one is visible. */
static void find_advertisement(const moq_cluster *c, const char *url, struct moq_cluster_node *n,
                               uint64_t *hops)
{
    moq_buf path;
    moq_buf_init(&path);
    if (advertisement_path(&path, url) == 0 &&
        moq_origin_lookup(c->origin, path.data, path.len, 0, hops, &n->nhops) == 0) {
        n->advertised = true;
        n->hops = hops;
    }
    moq_buf_free(&path);
}

static void describe_peer(const struct peer *p, struct moq_cluster_node *n)
{
    n->dialed = true;
    n->on_demand = p->on_demand;
    n->session = p->session;
    n->state = p->session ? "connected" : p->dial ? "dialing" : "waiting";
    if (p->session) n->connected_ms = moq_now_us() / 1000 - p->connected_at;
}

size_t moq_cluster_each_node(const moq_cluster *c,
                             void (*fn)(void *ctx, const struct moq_cluster_node *n), void *ctx)
{
    size_t visited = 0, npeers = 0;
    for (const moq_list *pos = c->peers.next; pos != &c->peers; pos = pos->next)
        npeers++;
    bool *matched = calloc(npeers ? npeers : 1, sizeof(bool));
    if (!matched) return 0;
    uint64_t hops[MOQ_MAX_HOPS];
    if (c->node) {
        struct moq_cluster_node n = {.url = c->node,
                                     .self = true,
                                     .has_origin = true,
                                     .origin_id = moq_origin_id(c->origin)};
        find_advertisement(c, c->node, &n, hops);
        fn(ctx, &n);
        visited++;
    }
    size_t it = 0;
    uint64_t id;
    void *v;
    while (moq_u64map_next(&c->nodes, &it, &id, &v)) {
        struct moq_cluster_node n = {.url = v, .has_origin = true, .origin_id = id};
        find_advertisement(c, v, &n, hops);
        size_t i = 0;
        for (const moq_list *pos = c->peers.next; pos != &c->peers; pos = pos->next, i++) {
            const struct peer *p = moq_container_of(pos, struct peer, link);
            if (matched[i] || !same_node(p->url, v)) continue;
            matched[i] = true;
            describe_peer(p, &n);
            break;
        }
        fn(ctx, &n);
        visited++;
    }
    size_t i = 0;
    for (const moq_list *pos = c->peers.next; pos != &c->peers; pos = pos->next, i++) {
        if (matched[i]) continue;
        const struct peer *p = moq_container_of(pos, struct peer, link);
        struct moq_cluster_node n = {.url = p->url};
        describe_peer(p, &n);
        fn(ctx, &n);
        visited++;
    }
    free(matched);
    return visited;
}

size_t moq_cluster_connected(const moq_cluster *c)
{
    size_t n = 0;
    moq_list *pos;
    for (pos = c->peers.next; pos != &c->peers; pos = pos->next)
        if (moq_container_of(pos, struct peer, link)->session) n++;
    return n;
}

/* ---------------------------------------------------------------- the cluster token */

static bool is_jwt(const char *s, size_t len, moq_auth_error *why)
{
    moq_jwt_header h;
    int rc = moq_jwt_header_parse(s, len, &h, why);
    moq_jwt_header_free(&h);
    return rc == 0;
}

/* Whether a value might be a token, so that no message may repeat it. */
static bool may_be_token(const char *s)
{
    const char *dot = strchr(s, '.');
    return strncmp(s, "eyJ", 3) == 0 || (dot && strchr(dot + 1, '.') && !strchr(s, '/'));
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_space((*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1]))
        (*len)--;
}

static int token_from_file(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (!may_be_token(path)) {
            snprintf(err, errlen,
                     "cluster.token: cannot read %s: %s (give the JWT itself or a file holding it)",
                     path, strerror(e));
            return MOQ_ERR_CONFIG;
        }
        moq_auth_error why = {0};
        is_jwt(path, strlen(path), &why);
        snprintf(err, errlen,
                 "cluster.token is neither a valid JWT (%s) nor a readable file (the value is not "
                 "shown: it may be a token)",
                 why.msg);
        return MOQ_ERR_CONFIG;
    }
    char buf[MOQ_JWT_MAX_LEN + 2];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    bool failed = ferror(f);
    fclose(f);
    buf[n] = '\0';
    const char *tok = buf;
    size_t len = n;
    trim(&tok, &len);
    moq_auth_error why = {0};
    int rv = MOQ_ERR_CONFIG;
    if (failed)
        snprintf(err, errlen, "cluster.token: cannot read %s", path);
    else if (n > MOQ_JWT_MAX_LEN)
        snprintf(err, errlen, "cluster.token: %s holds more than a token (over %d bytes)", path,
                 MOQ_JWT_MAX_LEN);
    else if (!len)
        snprintf(err, errlen, "cluster.token: %s is empty", path);
    else if (!is_jwt(tok, len, &why))
        snprintf(err, errlen, "cluster.token: %s does not hold a JWT (%s)", path, why.msg);
    else
        rv = (*out = strndup(tok, len)) ? 0 : MOQ_ERR_NOMEM;
    gnutls_memset(buf, 0, sizeof(buf));
    return rv;
}

int moq_cluster_token_load(const char *value, char **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *v = value;
    size_t len = strlen(value);
    trim(&v, &len);
    if (!len) {
        snprintf(err, errlen, "cluster.token is empty (give the JWT itself or a file holding it)");
        return MOQ_ERR_CONFIG;
    }
    if (is_jwt(v, len, NULL)) return (*out = strndup(v, len)) ? 0 : MOQ_ERR_NOMEM;
    return token_from_file(value, out, err, errlen);
}
