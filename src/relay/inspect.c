/* What the relay is doing, for operators: GET / (relay information, public listeners and
 * [internal]) and, on [internal] only, /debug/sessions, /debug/broadcasts, /debug/tracks,
 * /nodes and the live /status page. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/relay_int.h"
#include "util/err.h"
#include "util/json.h"
#include "util/log.h"
#include "util/time.h"

extern const char moq_relay_status_page[];

static const char *transport_name(enum moq_transport_kind kind)
{
    switch (kind) {
    case MOQ_TRANSPORT_QUIC:
        return "quic";
    case MOQ_TRANSPORT_WEBTRANSPORT:
        return "webtransport";
    case MOQ_TRANSPORT_WEBSOCKET:
        return "websocket";
    default:
        return "h3";
    }
}

static int send_json(moq_http_response *resp, moq_json *j, moq_buf *body)
{
    int rc = moq_json_finish(j);
    if (rc == 0) rc = moq_buf_append(body, "\n", 1);
    if (rc == 0) {
        moq_http_response_set_status(resp, 200);
        moq_http_response_header(resp, "content-type", "application/json");
        moq_http_response_header(resp, "cache-control", "no-store");
        rc = moq_http_response_body(resp, body->data, body->len);
    }
    moq_buf_free(body);
    return rc;
}

/* Origin ids as strings: they may exceed what a JavaScript number holds exactly. */
static void json_id(moq_json *j, uint64_t id)
{
    char t[24];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)id);
    moq_json_str(j, t);
}

static void json_hops(moq_json *j, const uint64_t *hops, size_t n)
{
    moq_json_array(j);
    for (size_t i = 0; i < n; i++)
        json_id(j, hops[i]);
    moq_json_end(j);
}

/* A URL as configured may carry a token in its query. */
static void json_url(moq_json *j, const char *url)
{
    char buf[512];
    size_t len = strlen(url) < sizeof(buf) - 1 ? strlen(url) : sizeof(buf) - 1;
    memcpy(buf, url, len);
    len = moq_log_redact(buf, len, sizeof(buf) - 1);
    buf[len] = '\0';
    moq_json_str(j, buf);
}

/* ---------------------------------------------------------------- GET / */

struct relay_counts {
    size_t sessions, broadcasts, tracks, subscriptions, peers;
};

static void count(moq_relay *r, struct relay_counts *c)
{
    moq_origin_stats os;
    moq_origin_stats_get(r->origin, &os);
    c->sessions = r->n_sessions;
    c->broadcasts = os.broadcasts;
    c->tracks = os.tracks;
    c->subscriptions = os.subscriptions;
    c->peers = r->cluster ? moq_cluster_connected(r->cluster) : 0;
}

static double uptime_s(const moq_relay *r)
{
    return (double)(moq_now_us() - r->started_us) / 1e6;
}

static void info_json(moq_relay *r, const struct relay_counts *counts, moq_json *j)
{
    const struct moq_config *cfg = r->cfg;
    const struct relay_counts c = *counts;
    moq_json_object(j);
    moq_json_key(j, "name");
    moq_json_str(j, "moq-relay");
    moq_json_key(j, "version");
    moq_json_str(j, MOQ_VERSION);
    moq_json_key(j, "node");
    if (cfg->cluster.node)
        json_url(j, cfg->cluster.node);
    else
        moq_json_null(j);
    moq_json_key(j, "origin_id");
    json_id(j, moq_origin_id(r->origin));
    moq_json_key(j, "uptime_s");
    moq_json_double(j, uptime_s(r));
    moq_json_key(j, "versions");
    moq_json_array(j);
    for (size_t i = 0; i < r->n_versions; i++)
        moq_json_str(j, r->versions[i]);
    moq_json_end(j);
    moq_json_key(j, "transports");
    moq_json_array(j);
    moq_json_object(j);
    moq_json_key(j, "name");
    moq_json_str(j, "quic");
    moq_json_key(j, "port");
    moq_json_u64(j, moq_relay_quic_port(r));
    moq_json_key(j, "alpns");
    moq_json_array(j);
    for (size_t i = 0; i < r->n_alpns; i++)
        if (strcmp(r->alpns[i], "h3") != 0) moq_json_str(j, r->alpns[i]);
    moq_json_end(j);
    moq_json_end(j);
    moq_json_object(j);
    moq_json_key(j, "name");
    moq_json_str(j, "webtransport");
    moq_json_key(j, "port");
    moq_json_u64(j, moq_relay_quic_port(r));
    moq_json_key(j, "alpns");
    moq_json_array(j);
    moq_json_str(j, "h3");
    moq_json_end(j);
    moq_json_end(j);
    if (r->http && cfg->web.ws) {
        moq_json_object(j);
        moq_json_key(j, "name");
        moq_json_str(j, "websocket");
        moq_json_key(j, "ports");
        moq_json_array(j);
        if (r->http_port) moq_json_u64(j, r->http_port);
        if (r->https_port) moq_json_u64(j, r->https_port);
        moq_json_end(j);
        moq_json_end(j);
    }
    moq_json_end(j);
    moq_json_key(j, "counts");
    moq_json_object(j);
    moq_json_key(j, "sessions");
    moq_json_u64(j, c.sessions);
    moq_json_key(j, "broadcasts");
    moq_json_u64(j, c.broadcasts);
    moq_json_key(j, "tracks");
    moq_json_u64(j, c.tracks);
    moq_json_key(j, "subscriptions");
    moq_json_u64(j, c.subscriptions);
    moq_json_key(j, "cluster_peers");
    moq_json_u64(j, c.peers);
    moq_json_end(j);
    moq_json_end(j);
}

static bool wants_json(const moq_http_request *req)
{
    const char *accept = moq_http_header(req, "accept");
    return accept && strstr(accept, "application/json");
}

static void html_escaped(moq_buf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '<'   ? "&lt;"
                        : *s == '>' ? "&gt;"
                        : *s == '&' ? "&amp;"
                        : *s == '"' ? "&quot;"
                                    : NULL;
        if (e)
            moq_buf_append(b, e, strlen(e));
        else
            moq_buf_append(b, s, 1);
    }
}

static void html_row(moq_buf *b, const char *name, const char *value)
{
    moq_buf_append(b, "<tr><th>", 8);
    html_escaped(b, name);
    moq_buf_append(b, "</th><td>", 9);
    html_escaped(b, value);
    moq_buf_append(b, "</td></tr>\n", 11);
}

static int serve_info_html(moq_relay *r, const struct relay_counts *counts, moq_http_response *resp)
{
    const struct relay_counts c = *counts;
    char v[256], alpns[160] = "";
    size_t o = 0;
    for (size_t i = 0; i < r->n_alpns && o < sizeof(alpns); i++) {
        int n = snprintf(alpns + o, sizeof(alpns) - o, "%s%s", i ? ", " : "", r->alpns[i]);
        if (n > 0) o += (size_t)n;
    }
    moq_buf b;
    moq_buf_init(&b);
    static const char head[] =
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>moq-relay</title>"
        "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
        "</style></head><body>\n<h1>moq-relay</h1>\n<table>\n";
    moq_buf_append(&b, head, sizeof(head) - 1);
    html_row(&b, "version", MOQ_VERSION);
    if (r->cfg->cluster.node) html_row(&b, "node", r->cfg->cluster.node);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)moq_origin_id(r->origin));
    html_row(&b, "origin id", v);
    snprintf(v, sizeof(v), "%.0f s", uptime_s(r));
    html_row(&b, "uptime", v);
    snprintf(v, sizeof(v), "QUIC and WebTransport on UDP %u%s", moq_relay_quic_port(r),
             r->http && r->cfg->web.ws ? ", WebSocket on the web listeners" : "");
    html_row(&b, "transports", v);
    html_row(&b, "ALPNs", alpns);
    snprintf(v, sizeof(v), "%zu sessions, %zu broadcasts, %zu tracks, %zu subscriptions",
             c.sessions, c.broadcasts, c.tracks, c.subscriptions);
    html_row(&b, "now", v);
    static const char tail[] =
        "</table>\n<p>JSON: <code>curl -H 'Accept: application/json' URL</code></p>\n"
        "</body></html>\n";
    moq_buf_append(&b, tail, sizeof(tail) - 1);
    moq_http_response_set_status(resp, 200);
    moq_http_response_header(resp, "content-type", "text/html; charset=utf-8");
    moq_http_response_header(resp, "cache-control", "no-store");
    int rc = moq_http_response_body(resp, b.data, b.len);
    moq_buf_free(&b);
    return rc;
}

static int info_respond(moq_relay *r, const struct relay_counts *c, bool json,
                        moq_http_response *resp)
{
    if (!json) return serve_info_html(r, c, resp);
    moq_buf body;
    moq_buf_init(&body);
    moq_json j;
    moq_json_init(&j, &body);
    info_json(r, c, &j);
    return send_json(resp, &j, &body);
}

static int merged_info(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                       moq_http_response *resp);

static int serve_info(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_relay *r = ctx;
    /* arg: whether JSON was asked for */
    if (r->worker.count > 1)
        return moq_relay_gather(r, resp, merged_info, wants_json(req) ? r : NULL);
    struct relay_counts c;
    count(r, &c);
    return info_respond(r, &c, wants_json(req), resp);
}

/* ---------------------------------------------------------------- /debug/sessions */

static void json_strlist(moq_json *j, const moq_strlist *l)
{
    moq_json_array(j);
    for (size_t i = 0; i < l->len; i++)
        moq_json_str(j, l->v[i]);
    moq_json_end(j);
}

static void session_json(moq_json *j, const moq_session *s, const char *direction, uint64_t age_us,
                         const char *dialed)
{
    moq_transport *t = moq_session_transport(s);
    struct moq_transport_stats ts = {0};
    if (t->ops->stats) t->ops->stats(t, &ts);
    struct moq_session_stats ss;
    moq_session_stats_get(s, &ss);
    const moq_perms *p = moq_session_perms(s);
    moq_json_object(j);
    moq_json_key(j, "remote");
    moq_json_str(j, t->peer);
    moq_json_key(j, "direction");
    moq_json_str(j, direction);
    if (dialed) {
        moq_json_key(j, "url");
        json_url(j, dialed);
    }
    moq_json_key(j, "transport");
    moq_json_str(j, transport_name(t->kind));
    moq_json_key(j, "version");
    moq_json_str(j, moq_session_version(s));
    moq_json_key(j, "root");
    if (p)
        moq_json_str(j, p->root ? p->root : "");
    else
        moq_json_null(j);
    if (p) {
        moq_json_key(j, "publish");
        json_strlist(j, &p->publish);
        moq_json_key(j, "subscribe");
        json_strlist(j, &p->subscribe);
    }
    moq_json_key(j, "peer_origin_id");
    if (moq_session_peer_origin(s))
        json_id(j, moq_session_peer_origin(s));
    else
        moq_json_null(j);
    moq_json_key(j, "bytes_in");
    moq_json_u64(j, ts.bytes_recv);
    moq_json_key(j, "bytes_out");
    moq_json_u64(j, ts.bytes_sent);
    moq_json_key(j, "payload_in");
    moq_json_u64(j, ss.bytes_in);
    moq_json_key(j, "payload_out");
    moq_json_u64(j, ss.bytes_out);
    moq_json_key(j, "rtt_ms");
    if (ts.rtt_us)
        moq_json_double(j, (double)ts.rtt_us / 1000.);
    else
        moq_json_null(j);
    moq_json_key(j, "memory");
    if (ts.memory_bytes)
        moq_json_u64(j, ts.memory_bytes);
    else
        moq_json_null(j);
    moq_json_key(j, "streams");
    moq_json_u64(j, ss.streams);
    moq_json_key(j, "announces_in");
    moq_json_u64(j, ss.announces_in);
    moq_json_key(j, "subscriptions");
    moq_json_u64(j, ss.subscriptions);
    moq_json_key(j, "groups_in");
    moq_json_u64(j, ss.groups_in);
    moq_json_key(j, "groups_out");
    moq_json_u64(j, ss.groups_out);
    moq_json_key(j, "groups_dropped");
    moq_json_u64(j, ss.groups_dropped);
    moq_json_key(j, "age_s");
    moq_json_double(j, (double)age_us / 1e6);
    moq_json_end(j);
}

static void outbound_session(void *ctx, const struct moq_cluster_node *n)
{
    moq_json *j = ctx;
    if (n->session) session_json(j, n->session, "outbound", n->connected_ms * 1000, n->url);
}

static int merged_sessions(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                           moq_http_response *resp);

static int serve_sessions(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_relay *r = ctx;
    if (r->worker.count > 1) return moq_relay_gather(r, resp, merged_sessions, NULL);
    moq_buf body;
    moq_buf_init(&body);
    moq_json j;
    moq_json_init(&j, &body);
    uint64_t now = moq_now_us();
    moq_json_object(&j);
    moq_json_key(&j, "sessions");
    moq_json_array(&j);
    for (moq_list *pos = r->sessions.next; pos != &r->sessions; pos = pos->next) {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        session_json(&j, rs->session, "inbound", now - rs->started_us, NULL);
    }
    if (r->cluster) moq_cluster_each_node(r->cluster, outbound_session, &j);
    moq_json_end(&j);
    moq_json_end(&j);
    return send_json(resp, &j, &body);
}

/* ---------------------------------------------------------------- /debug/broadcasts */

struct view_ctx {
    moq_json *j;
    bool snapshot; /* a worker's part of a whole-relay view: add what merging needs */
};

static void broadcast_json(void *ctx, const moq_broadcast_view *b)
{
    const struct view_ctx *c = ctx;
    moq_json *j = c->j;
    moq_json_object(j);
    moq_json_key(j, "path");
    moq_json_bytes(j, b->path, b->path_len);
    moq_json_key(j, "routes");
    moq_json_u64(j, b->routes);
    moq_json_key(j, "tracks");
    moq_json_u64(j, b->tracks);
    moq_json_key(j, "lingering");
    moq_json_bool(j, b->lingering);
    moq_json_key(j, "hops");
    json_hops(j, b->hops, b->hops ? b->nhops : 0);
    if (c->snapshot) {
        moq_json_key(j, "bridge_routes");
        moq_json_u64(j, b->bridge_routes);
    }
    moq_json_end(j);
}

static int merged_broadcasts(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                             moq_http_response *resp);

static int serve_broadcasts(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_relay *r = ctx;
    if (r->worker.count > 1) return moq_relay_gather(r, resp, merged_broadcasts, NULL);
    moq_buf body;
    moq_buf_init(&body);
    moq_json j;
    moq_json_init(&j, &body);
    moq_json_object(&j);
    moq_json_key(&j, "broadcasts");
    moq_json_array(&j);
    struct view_ctx c = {&j, false};
    moq_origin_each_broadcast(r->origin, broadcast_json, &c);
    moq_json_end(&j);
    moq_json_end(&j);
    return send_json(resp, &j, &body);
}

/* ---------------------------------------------------------------- /debug/tracks */

struct track_ctx {
    moq_relay *r;
    moq_json *j;
    uint64_t now_us;
    bool snapshot;
};

/* The session a route's content arrives through: the one whose peer is its last hop. */
static const char *route_via(moq_relay *r, const uint64_t *hops, size_t nhops)
{
    if (!nhops) return NULL;
    for (moq_list *pos = r->sessions.next; pos != &r->sessions; pos = pos->next) {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        if (moq_session_peer_origin(rs->session) == hops[nhops - 1])
            return moq_session_transport(rs->session)->peer;
    }
    return NULL;
}

static void track_json(void *arg, const moq_track_view *t)
{
    struct track_ctx *c = arg;
    moq_json *j = c->j;
    moq_json_object(j);
    moq_json_key(j, "broadcast");
    moq_json_bytes(j, t->broadcast, t->broadcast_len);
    moq_json_key(j, "track");
    moq_json_bytes(j, t->name, t->name_len);
    moq_json_key(j, "subscribers");
    moq_json_u64(j, t->subscribers);
    moq_json_key(j, "groups_cached");
    moq_json_u64(j, t->groups_cached);
    moq_json_key(j, "cached_bytes");
    moq_json_u64(j, t->cached_bytes);
    moq_json_key(j, "latest_group");
    if (t->has_latest)
        moq_json_u64(j, t->latest);
    else
        moq_json_null(j);
    moq_json_key(j, "groups_in");
    moq_json_u64(j, t->groups_in);
    moq_json_key(j, "frames_in");
    moq_json_u64(j, t->frames_in);
    moq_json_key(j, "bytes_in");
    moq_json_u64(j, t->bytes_in);
    moq_json_key(j, "upstream");
    if (t->routed) {
        moq_json_object(j);
        moq_json_key(j, "hops");
        json_hops(j, t->hops, t->nhops);
        moq_json_key(j, "via");
        moq_json_str(j, route_via(c->r, t->hops, t->nhops));
        moq_json_end(j);
    } else {
        moq_json_null(j);
    }
    if (c->snapshot) {
        moq_json_key(j, "bridged");
        moq_json_bool(j, t->bridged);
    }
    moq_json_end(j);
}

static int merged_tracks(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                         moq_http_response *resp);

static int serve_tracks(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_relay *r = ctx;
    if (r->worker.count > 1) return moq_relay_gather(r, resp, merged_tracks, NULL);
    moq_buf body;
    moq_buf_init(&body);
    moq_json j;
    moq_json_init(&j, &body);
    struct track_ctx c = {r, &j, moq_now_us(), false};
    moq_json_object(&j);
    moq_json_key(&j, "time_s");
    moq_json_double(&j, uptime_s(r));
    moq_json_key(&j, "tracks");
    moq_json_array(&j);
    moq_origin_each_track(r->origin, track_json, &c);
    moq_json_end(&j);
    moq_json_end(&j);
    return send_json(resp, &j, &body);
}

/* ---------------------------------------------------------------- /nodes */

struct nodes_ctx {
    moq_relay *r;
    moq_json *j;
    json_t *const *parts; /* with several workers: their snapshots (sessions) */
    unsigned nparts;
};

static void inbound_json(moq_json *j, const char *remote, double connected_s)
{
    moq_json_object(j);
    moq_json_key(j, "direction");
    moq_json_str(j, "inbound");
    moq_json_key(j, "state");
    moq_json_str(j, "connected");
    moq_json_key(j, "remote");
    moq_json_str(j, remote);
    moq_json_key(j, "connected_s");
    moq_json_double(j, connected_s);
    moq_json_end(j);
}

/* Inbound sessions of every worker from the relay with origin id `id`. */
static void inbound_from_parts(const struct nodes_ctx *c, uint64_t id)
{
    char want[24];
    snprintf(want, sizeof(want), "%llu", (unsigned long long)id);
    for (unsigned i = 0; i < c->nparts; i++) {
        size_t k;
        json_t *sess;
        json_array_foreach(json_object_get(c->parts[i], "sessions"), k, sess)
        {
            const char *peer = json_string_value(json_object_get(sess, "peer_origin_id"));
            const char *dir = json_string_value(json_object_get(sess, "direction"));
            if (!peer || !dir || strcmp(peer, want) != 0 || strcmp(dir, "inbound") != 0) continue;
            inbound_json(c->j, json_string_value(json_object_get(sess, "remote")),
                         json_number_value(json_object_get(sess, "age_s")));
        }
    }
}

static void node_json(void *arg, const struct moq_cluster_node *n)
{
    struct nodes_ctx *c = arg;
    moq_json *j = c->j;
    moq_json_object(j);
    moq_json_key(j, "node");
    json_url(j, n->url);
    moq_json_key(j, "self");
    moq_json_bool(j, n->self);
    moq_json_key(j, "origin_id");
    if (n->has_origin)
        json_id(j, n->origin_id);
    else
        moq_json_null(j);
    moq_json_key(j, "announced");
    if (n->advertised) {
        moq_json_object(j);
        moq_json_key(j, "hops");
        json_hops(j, n->hops, n->nhops);
        moq_json_key(j, "hop_count");
        moq_json_u64(j, n->nhops);
        moq_json_end(j);
    } else {
        moq_json_null(j);
    }
    moq_json_key(j, "connections");
    moq_json_array(j);
    if (n->dialed) {
        moq_json_object(j);
        moq_json_key(j, "direction");
        moq_json_str(j, "outbound");
        moq_json_key(j, "state");
        moq_json_str(j, n->state);
        moq_json_key(j, "on_demand");
        moq_json_bool(j, n->on_demand);
        if (n->session) {
            moq_json_key(j, "remote");
            moq_json_str(j, moq_session_transport(n->session)->peer);
            moq_json_key(j, "connected_s");
            moq_json_double(j, (double)n->connected_ms / 1000.);
        }
        moq_json_end(j);
    }
    if (c->parts && n->has_origin && !n->self) inbound_from_parts(c, n->origin_id);
    for (moq_list *pos = c->r->sessions.next;
         !c->parts && n->has_origin && !n->self && pos != &c->r->sessions; pos = pos->next) {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        if (moq_session_peer_origin(rs->session) != n->origin_id) continue;
        inbound_json(j, moq_session_transport(rs->session)->peer,
                     (double)(moq_now_us() - rs->started_us) / 1e6);
    }
    moq_json_end(j);
    moq_json_end(j);
}

static int nodes_respond(moq_relay *r, json_t *const *parts, unsigned n, moq_http_response *resp)
{
    moq_buf body;
    moq_buf_init(&body);
    moq_json j;
    moq_json_init(&j, &body);
    struct nodes_ctx c = {r, &j, parts, n};
    moq_json_object(&j);
    moq_json_key(&j, "nodes");
    moq_json_array(&j);
    if (r->cluster) moq_cluster_each_node(r->cluster, node_json, &c);
    moq_json_end(&j);
    moq_json_end(&j);
    return send_json(resp, &j, &body);
}

static int merged_nodes(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                        moq_http_response *resp)
{
    return nodes_respond(r, parts, n, resp);
}

static int serve_nodes(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_relay *r = ctx;
    if (r->worker.count > 1) return moq_relay_gather(r, resp, merged_nodes, NULL);
    return nodes_respond(r, NULL, 0, resp);
}

/* ---------------------------------------------------------------- /status */

static int serve_status(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_http_response_set_status(resp, 200);
    moq_http_response_header(resp, "content-type", "text/html; charset=utf-8");
    moq_http_response_header(resp, "cache-control", "no-store");
    return moq_http_response_body(resp, moq_relay_status_page, strlen(moq_relay_status_page));
}

/* ---------------------------------------------------------------- several workers */

static void stat_u64(moq_json *j, const char *key, uint64_t v)
{
    moq_json_key(j, key);
    moq_json_u64(j, v);
}

int moq_relay_snapshot(moq_relay *r, moq_buf *out)
{
    moq_json j;
    moq_json_init(&j, out);
    uint64_t now = moq_now_us();
    moq_json_object(&j);
    moq_json_key(&j, "sessions");
    moq_json_array(&j);
    for (moq_list *pos = r->sessions.next; pos != &r->sessions; pos = pos->next) {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        session_json(&j, rs->session, "inbound", now - rs->started_us, NULL);
    }
    if (r->cluster) moq_cluster_each_node(r->cluster, outbound_session, &j);
    moq_json_end(&j);
    moq_json_key(&j, "broadcasts");
    moq_json_array(&j);
    struct view_ctx vc = {&j, true};
    moq_origin_each_broadcast(r->origin, broadcast_json, &vc);
    moq_json_end(&j);
    moq_json_key(&j, "tracks");
    moq_json_array(&j);
    struct track_ctx tc = {r, &j, now, true};
    moq_origin_each_track(r->origin, track_json, &tc);
    moq_json_end(&j);
    moq_origin_stats os;
    moq_origin_stats_get(r->origin, &os);
    struct moq_bridge_stats bs = {0};
    if (r->bridge) moq_bridge_stats_get(r->bridge, &bs);
    moq_json_key(&j, "stats");
    moq_json_object(&j);
    stat_u64(&j, "sessions", r->n_sessions);
    stat_u64(&j, "peers", r->cluster ? moq_cluster_connected(r->cluster) : 0);
    /* Subscriptions and tracks a bridge holds for another worker are not the relay's own. */
    stat_u64(&j, "subscriptions", os.subscriptions - bs.exported_tracks);
    uint64_t live[4] = {0};
    for (moq_list *pos = r->sessions.next; pos != &r->sessions; pos = pos->next) {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        if (rs->kind < 4) live[rs->kind]++;
    }
    static const char *const live_keys[] = {"", "live_quic", "live_webtransport", "live_websocket"};
    static const char *const total_keys[] = {"", "total_quic", "total_webtransport",
                                             "total_websocket"};
    for (int k = 1; k < 4; k++) {
        stat_u64(&j, live_keys[k], live[k]);
        stat_u64(&j, total_keys[k], r->counters.sessions_total[k]);
    }
    stat_u64(&j, "refused", r->counters.sessions_refused);
    stat_u64(&j, "full", r->counters.sessions_full);
    stat_u64(&j, "memory_trims", r->counters.memory_trims);
    struct moq_quic_server_stats qs = {0};
    if (r->quic) moq_quic_server_stats_get(r->quic, &qs);
    stat_u64(&j, "quic_half_open", qs.half_open);
    stat_u64(&j, "quic_retries", qs.retries_sent);
    stat_u64(&j, "quic_retry_invalid", qs.retry_invalid);
    stat_u64(&j, "quic_refused_full", qs.refused_full);
    stat_u64(&j, "quic_refused_half_open", qs.refused_half_open);
    stat_u64(&j, "quic_connections", qs.connections);
    stat_u64(&j, "quic_memory", qs.memory_bytes);
    stat_u64(&j, "tracks", os.tracks - bs.imported_tracks);
    stat_u64(&j, "broadcasts", os.broadcasts);
    stat_u64(&j, "groups_cached", os.groups_cached);
    stat_u64(&j, "cached_bytes", os.cached_bytes);
    stat_u64(&j, "evictions", os.evictions);
    stat_u64(&j, "expirations", os.expirations);
    stat_u64(&j, "bridged_frames", bs.frames_in);
    moq_json_end(&j);
    moq_json_end(&j);
    return moq_json_finish(&j);
}

static int send_jansson(moq_http_response *resp, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) return MOQ_ERR_NOMEM;
    moq_http_response_set_status(resp, 200);
    moq_http_response_header(resp, "content-type", "application/json");
    moq_http_response_header(resp, "cache-control", "no-store");
    int rc = moq_http_response_body(resp, text, strlen(text));
    if (rc == 0) rc = moq_http_response_body(resp, "\n", 1);
    free(text);
    return rc;
}

static uint64_t ju64(const json_t *o, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(o, key));
}

static void set_u64(json_t *o, const char *key, uint64_t v)
{
    json_object_set_new(o, key, json_integer((json_int_t)v));
}

static int merged_sessions(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                           moq_http_response *resp)
{
    json_t *all = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_extend(all, json_object_get(parts[i], "sessions"));
    return send_jansson(resp, json_pack("{s:o}", "sessions", all));
}

/* A broadcast appears on every worker (bridged to the others): the workers that have a route
 * of their own (or keep it lingering) describe it. */
static json_t *merge_broadcasts(json_t *const *parts, unsigned n)
{
    json_t *list = json_array(), *by_path = json_object();
    for (unsigned i = 0; i < n; i++) {
        size_t k;
        json_t *b;
        json_array_foreach(json_object_get(parts[i], "broadcasts"), k, b)
        {
            uint64_t own = ju64(b, "routes") - ju64(b, "bridge_routes");
            bool lingering = json_is_true(json_object_get(b, "lingering"));
            if (own == 0 && !lingering) continue;
            const char *path = json_string_value(json_object_get(b, "path"));
            json_t *e = json_object_get(by_path, path ? path : "");
            if (!e) {
                e = json_deep_copy(b);
                json_object_del(e, "bridge_routes");
                set_u64(e, "routes", own);
                json_array_append_new(list, e);
                json_object_set(by_path, path ? path : "", e);
                continue;
            }
            set_u64(e, "routes", ju64(e, "routes") + own);
            set_u64(e, "tracks", ju64(e, "tracks") + ju64(b, "tracks"));
            if (!lingering) json_object_set_new(e, "lingering", json_false());
        }
    }
    json_decref(by_path);
    return list;
}

static int merged_broadcasts(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                             moq_http_response *resp)
{
    return send_jansson(resp, json_pack("{s:o}", "broadcasts", merge_broadcasts(parts, n)));
}

/* A track wanted on several workers exists on each: the worker its route is its own on
 * describes it; each bridged copy elsewhere counts there as one subscriber, replaced by the
 * copy's own subscribers. */
static json_t *merge_tracks(json_t *const *parts, unsigned n)
{
    json_t *list = json_array(), *by_key = json_object(), *copies = json_array();
    for (unsigned i = 0; i < n; i++) {
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(parts[i], "tracks"), k, t)
        {
            if (json_is_true(json_object_get(t, "bridged"))) {
                json_array_append(copies, t);
                continue;
            }
            char key[1024];
            snprintf(key, sizeof(key), "%s\x1f%s",
                     json_string_value(json_object_get(t, "broadcast")),
                     json_string_value(json_object_get(t, "track")));
            json_t *e = json_object_get(by_key, key);
            if (e) {
                set_u64(e, "subscribers", ju64(e, "subscribers") + ju64(t, "subscribers"));
                continue;
            }
            e = json_deep_copy(t);
            json_object_del(e, "bridged");
            json_array_append_new(list, e);
            json_object_set(by_key, key, e);
        }
    }
    size_t k;
    json_t *t;
    json_array_foreach(copies, k, t)
    {
        char key[1024];
        snprintf(key, sizeof(key), "%s\x1f%s", json_string_value(json_object_get(t, "broadcast")),
                 json_string_value(json_object_get(t, "track")));
        json_t *e = json_object_get(by_key, key);
        if (!e) {
            e = json_deep_copy(t);
            json_object_del(e, "bridged");
            json_array_append_new(list, e);
            json_object_set(by_key, key, e);
            continue;
        }
        uint64_t subs = ju64(e, "subscribers");
        set_u64(e, "subscribers", (subs ? subs - 1 : 0) + ju64(t, "subscribers"));
    }
    json_decref(copies);
    json_decref(by_key);
    return list;
}

static int merged_tracks(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                         moq_http_response *resp)
{
    return send_jansson(
        resp, json_pack("{s:f,s:o}", "time_s", uptime_s(r), "tracks", merge_tracks(parts, n)));
}

static int merged_info(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                       moq_http_response *resp)
{
    struct relay_counts c = {0};
    for (unsigned i = 0; i < n; i++) {
        json_t *st = json_object_get(parts[i], "stats");
        c.sessions += ju64(st, "sessions");
        c.subscriptions += ju64(st, "subscriptions");
        c.peers += ju64(st, "peers");
    }
    json_t *b = merge_broadcasts(parts, n), *t = merge_tracks(parts, n);
    c.broadcasts = json_array_size(b);
    c.tracks = json_array_size(t);
    json_decref(b);
    json_decref(t);
    return info_respond(r, &c, arg != NULL, resp);
}

/* ---------------------------------------------------------------- registration */

int moq_relay_inspect_public(moq_relay *r, moq_http_router *router)
{
    return moq_http_route(router, MOQ_HTTP_GET, "/", MOQ_HTTP_EXACT, 0, serve_info, r);
}

int moq_relay_inspect_internal(moq_relay *r, moq_http_router *router)
{
    static const struct {
        const char *path;
        moq_http_handler fn;
    } routes[] = {
        {"/", serve_info},
        {"/debug/sessions", serve_sessions},
        {"/debug/broadcasts", serve_broadcasts},
        {"/debug/tracks", serve_tracks},
        {"/nodes", serve_nodes},
        {"/status", serve_status},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = moq_http_route(router, MOQ_HTTP_GET, routes[i].path, MOQ_HTTP_EXACT, 0,
                                routes[i].fn, r);
        if (rc < 0) return rc;
    }
    return 0;
}
