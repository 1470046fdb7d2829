/* The relay's HTTP endpoints beyond the static ones: /certificate.sha256, /announced,
 * /fetch and /metrics, answered from the origin as upstream moq-relay does. */
#include <jansson.h>

#include "relay/relay_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moq/path.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define FETCH_TIMEOUT_S 30.0

static int hook_fingerprint(void *ctx, char *out, size_t cap)
{
    moq_relay *r = ctx;
    char fp[MOQ_TLS_FINGERPRINT_HEX_LEN];
    moq_tls_server_fingerprint(r->tls, fp);
    if (cap < sizeof(fp)) return MOQ_ERR_TOO_LARGE;
    memcpy(out, fp, sizeof(fp));
    return 0;
}

/* Authorize an HTTP request for `path` (already decoded by the HTTP server) with the
 * request's ?jwt=. Path and query stay apart: a decoded '?' or '#' is part of the path. */
static int web_access(moq_relay *r, const char *path, const moq_http_request *req, moq_perms *perms)
{
    moq_auth_error err = {0};
    int rv = moq_auth_check_path(r->auth, path, strlen(path), req->query, req->query_len,
                                 moq_wall_s(), perms, &err);
    if (rv < 0)
        moq_debug("web", "%s: %s refused: %s", req->peer, req->target,
                  err.msg[0] ? err.msg : moq_strerror(rv));
    return rv;
}

static void text_response(moq_http_response *resp, int status, const char *body)
{
    moq_http_response_set_status(resp, status);
    moq_http_response_header(resp, "content-type", "text/plain; charset=utf-8");
    moq_http_response_body(resp, body, strlen(body));
}

/* ---------------------------------------------------------------- /announced */

struct announced_list {
    const moq_perms *perms;
    size_t root_len;
    char **paths;
    size_t n, cap;
};

static void collect(void *ctx, const uint8_t *path, size_t len, const uint64_t *hops, size_t nhops)
{
    struct announced_list *l = ctx;
    moq_str suffix;
    if (moq_path_strip_prefix(moq_str_make(path, len),
                              moq_str_make(l->perms->root, strlen(l->perms->root)), &suffix) < 0)
        return;
    if (!moq_perms_can_subscribe(l->perms, suffix.ptr, suffix.len)) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = realloc(l->paths, cap * sizeof(char *));
        if (!p) return;
        l->paths = p;
        l->cap = cap;
    }
    char *s = malloc(suffix.len + 1);
    if (!s) return;
    memcpy(s, suffix.ptr, suffix.len);
    s[suffix.len] = '\0';
    l->paths[l->n++] = s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int hook_announced(void *ctx, const char *prefix, const moq_http_request *req,
                          moq_http_response *resp)
{
    moq_relay *r = ctx;
    moq_perms perms = {0};
    if (web_access(r, prefix, req, &perms) < 0 || perms.subscribe.len == 0) {
        moq_perms_free(&perms);
        text_response(resp, 401, "unauthorized\n");
        return 0;
    }
    struct announced_list l = {&perms, strlen(perms.root), NULL, 0, 0};
    moq_origin_list(r->origin, (const uint8_t *)perms.root, l.root_len, 0, collect, &l);
    if (l.n > 1) qsort(l.paths, l.n, sizeof(char *), cmp_str);
    moq_buf body;
    moq_buf_init(&body);
    for (size_t i = 0; i < l.n; i++) {
        if (i) moq_buf_put_u8(&body, '\n');
        moq_buf_append(&body, l.paths[i], strlen(l.paths[i]));
        free(l.paths[i]);
    }
    free(l.paths);
    moq_perms_free(&perms);
    moq_http_response_set_status(resp, 200);
    moq_http_response_header(resp, "content-type", "text/plain; charset=utf-8");
    moq_http_response_body(resp, body.data, body.len);
    moq_buf_free(&body);
    return 0;
}

/* ---------------------------------------------------------------- /fetch */

struct web_fetch {
    moq_relay *r;
    moq_http_response *resp;
    moq_subscription *sub; /* "latest": until the first group shows up */
    moq_follower *follower;
    uint64_t next;
    bool in_hook;       /* still inside the handler: answer synchronously */
    moq_group *pending; /* a group found while in_hook */
    bool failed;        /* the subscription failed while in_hook */
    bool head_pending;  /* following a group that has shown neither a frame nor its end */
    ev_timer timeout;
};

static void fetch_free(struct web_fetch *wf)
{
    ev_timer_stop(wf->r->loop, &wf->timeout);
    if (wf->sub) moq_subscription_close(wf->sub);
    if (wf->follower) moq_follower_close(wf->follower);
    if (wf->pending) moq_group_unref(wf->pending);
    free(wf);
}

static void fetch_write(struct web_fetch *wf, moq_group *g)
{
    uint64_t count = moq_group_frame_count(g);
    for (; wf->next < count; wf->next++) {
        const moq_frame *f = moq_group_frame(g, wf->next);
        if (!f) break;
        if (!f->payload_len) continue;
        moq_slice s = {f->chunk, f->payload_off, f->payload_len};
        if (moq_http_response_stream_write(wf->resp, &s, 1) < 0) break;
    }
}

/* The followed group showed its first frame: commit to 200 and stream from now on. */
static void fetch_begin_stream(struct web_fetch *wf)
{
    wf->head_pending = false;
    ev_timer_stop(wf->r->loop, &wf->timeout);
    moq_http_response_set_status(wf->resp, 200);
    moq_http_response_header(wf->resp, "content-type", "application/octet-stream");
    moq_http_response_stream_start(wf->resp);
}

static void wf_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count)
{
    struct web_fetch *wf = ctx;
    if (wf->head_pending) fetch_begin_stream(wf);
    fetch_write(wf, g);
}

static void wf_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct web_fetch *wf = ctx;
    if (wf->head_pending) {
        /* nothing was sent yet: a group that failed before its first frame is not found */
        if (state == MOQ_GROUP_ABORTED) {
            text_response(wf->resp, 404, "group not available\n");
        } else {
            moq_http_response_set_status(wf->resp, 200);
            moq_http_response_header(wf->resp, "content-type", "application/octet-stream");
            moq_http_response_body(wf->resp, "", 0);
        }
        moq_http_response_send(wf->resp);
        fetch_free(wf);
        return;
    }
    fetch_write(wf, g);
    moq_http_response_stream_end(wf->resp);
    fetch_free(wf);
}

static const moq_follower_ops fetch_follower_ops = {wf_frames, wf_end};

static void fetch_aborted(void *arg)
{
    fetch_free(arg);
}

/* Fill the response with the group's frames. Returns 0 when the response is complete (the
 * caller sends it), MOQ_HTTP_ASYNC when it completes later (wf lives on): the body streams
 * as frames arrive, and a group that has no frame yet (a fetch forwarded upstream) decides
 * the status with its first frame or its end. */
static int fetch_serve_group(struct web_fetch *wf, moq_group *g)
{
    uint64_t code = 0;
    int state = moq_group_state(g, &code);
    if (state == MOQ_GROUP_ABORTED || moq_group_first_frame(g) > 0) {
        text_response(wf->resp, 404, "group not available\n");
        return 0;
    }
    if (state == MOQ_GROUP_FINISHED) {
        moq_http_response_set_status(wf->resp, 200);
        moq_http_response_header(wf->resp, "content-type", "application/octet-stream");
        uint64_t n = moq_group_frame_count(g);
        moq_slice *v = calloc(n ? n : 1, sizeof(*v));
        size_t k = 0;
        for (uint64_t i = 0; v && i < n; i++) {
            const moq_frame *f = moq_group_frame(g, i);
            if (f && f->payload_len) v[k++] = (moq_slice){f->chunk, f->payload_off, f->payload_len};
        }
        if (v) moq_http_response_body_slices(wf->resp, v, k);
        free(v);
        return 0;
    }
    wf->follower = moq_group_follow(g, &fetch_follower_ops, wf);
    if (!wf->follower) return MOQ_ERR_NOMEM;
    moq_http_response_on_abort(wf->resp, fetch_aborted, wf);
    if (moq_group_frame_count(g) == 0) {
        wf->head_pending = true;
        ev_timer_start(wf->r->loop, &wf->timeout);
        return MOQ_HTTP_ASYNC;
    }
    fetch_begin_stream(wf);
    fetch_write(wf, g);
    return MOQ_HTTP_ASYNC;
}

static void wf_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    struct web_fetch *wf = ctx;
    if (!wf->sub || wf->pending) return;
    moq_subscription_close(wf->sub);
    wf->sub = NULL;
    if (wf->in_hook) {
        wf->pending = moq_group_ref(g);
        return;
    }
    ev_timer_stop(wf->r->loop, &wf->timeout);
    int rv = fetch_serve_group(wf, g);
    if (rv == MOQ_HTTP_ASYNC) return;
    if (rv < 0) text_response(wf->resp, 500, "internal error\n");
    moq_http_response_send(wf->resp);
    fetch_free(wf);
}

static void wf_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    struct web_fetch *wf = ctx;
    moq_subscription_close(wf->sub);
    wf->sub = NULL;
    if (wf->in_hook) {
        wf->failed = true;
        return;
    }
    text_response(wf->resp, 404, "not found\n");
    moq_http_response_send(wf->resp);
    fetch_free(wf);
}

static const moq_subscriber_ops fetch_sub_ops = {.on_group = wf_group, .on_abort = wf_abort};

static void fetch_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct web_fetch *wf = w->data;
    text_response(wf->resp, 504, "timed out\n");
    moq_http_response_send(wf->resp);
    fetch_free(wf);
}

static void fetch_wait_aborted(void *arg)
{
    fetch_free(arg);
}

static int hook_fetch(void *ctx, const struct moq_web_fetch *f, const moq_http_request *req,
                      moq_http_response *resp)
{
    moq_relay *r = ctx;
    moq_perms perms = {0};
    if (web_access(r, f->broadcast, req, &perms) < 0 || !moq_perms_can_subscribe(&perms, "", 0)) {
        moq_perms_free(&perms);
        text_response(resp, 401, "unauthorized\n");
        return 0;
    }
    struct web_fetch *wf = calloc(1, sizeof(*wf));
    if (!wf) {
        moq_perms_free(&perms);
        return MOQ_ERR_NOMEM;
    }
    wf->r = r;
    wf->resp = resp;
    ev_timer_init(&wf->timeout, fetch_timeout, FETCH_TIMEOUT_S, 0.);
    wf->timeout.data = wf;
    const uint8_t *path = (const uint8_t *)perms.root;
    size_t plen = strlen(perms.root);
    const uint8_t *track = (const uint8_t *)f->track;
    size_t tlen = strlen(f->track);
    moq_info("web", "%s: fetching %s/%s, %s", req->peer, perms.root, f->track,
             f->latest ? "latest group" : "one group");
    moq_group *g = NULL;
    int rv;
    wf->in_hook = true;
    if (f->latest) {
        moq_sub_prefs prefs = {0};
        rv = moq_origin_subscribe(r->origin, path, plen, track, tlen, 0, &prefs, &fetch_sub_ops, wf,
                                  &wf->sub);
        if (rv < 0) wf->sub = NULL;
        g = wf->pending;
        wf->pending = NULL;
    } else {
        rv = moq_origin_fetch(r->origin, path, plen, track, tlen, 0, f->group, 0, true,
                              moq_now_us(), &g);
    }
    wf->in_hook = false;
    moq_perms_free(&perms);
    if (rv < 0 || wf->failed) {
        fetch_free(wf);
        text_response(resp, rv == MOQ_ERR_NOMEM ? 500 : 404, "not found\n");
        return 0;
    }
    if (!g) {
        /* latest: no group yet; wait for one */
        moq_http_response_on_abort(resp, fetch_wait_aborted, wf);
        ev_timer_start(r->loop, &wf->timeout);
        return MOQ_HTTP_ASYNC;
    }
    rv = fetch_serve_group(wf, g);
    moq_group_unref(g);
    if (rv != MOQ_HTTP_ASYNC) fetch_free(wf);
    return rv;
}

/* ---------------------------------------------------------------- /metrics */

static void metric(moq_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
                     type, name, (unsigned long long)v);
    if (n > 0) moq_buf_append(b, line, (size_t)n);
}

/* What /metrics reports: one worker's figures, or the sum over every worker. */
struct metrics_in {
    uint64_t live[4], total[4], refused, full, trims;
    bool has_quic;
    struct moq_quic_server_stats quic;
    moq_origin_stats origin;
    unsigned workers;
    uint64_t bridged_frames;
};

static int render_metrics(const struct metrics_in *m, moq_http_response *resp)
{
    moq_buf b;
    moq_buf_init(&b);
    static const char *const kinds[] = {"", "quic", "webtransport", "websocket"};
    char line[256];
    static const char sessions_head[] =
        "# HELP moq_relay_sessions Sessions open now, by transport.\n"
        "# TYPE moq_relay_sessions gauge\n";
    moq_buf_append(&b, sessions_head, sizeof(sessions_head) - 1);
    for (int k = 1; k < 4; k++) {
        int n = snprintf(line, sizeof(line), "moq_relay_sessions{transport=\"%s\"} %llu\n",
                         kinds[k], (unsigned long long)m->live[k]);
        moq_buf_append(&b, line, (size_t)n);
    }
    static const char total_head[] =
        "# HELP moq_relay_sessions_total Sessions started, by transport.\n"
        "# TYPE moq_relay_sessions_total counter\n";
    moq_buf_append(&b, total_head, sizeof(total_head) - 1);
    for (int k = 1; k < 4; k++) {
        int n = snprintf(line, sizeof(line), "moq_relay_sessions_total{transport=\"%s\"} %llu\n",
                         kinds[k], (unsigned long long)m->total[k]);
        moq_buf_append(&b, line, (size_t)n);
    }
    metric(&b, "moq_relay_sessions_refused_total", "counter", "Sessions refused by authorization.",
           m->refused);
    metric(&b, "moq_relay_sessions_full_total", "counter",
           "Sessions refused because limits.max_sessions were open.", m->full);
    metric(&b, "moq_relay_memory_trims_total", "counter",
           "Times freed memory was returned to the system after the load fell.", m->trims);
    if (m->has_quic) {
        const struct moq_quic_server_stats *qs = &m->quic;
        metric(&b, "moq_relay_quic_half_open", "gauge", "QUIC handshakes in progress.",
               qs->half_open);
        metric(&b, "moq_relay_quic_retries_total", "counter",
               "Retry packets sent to validate client addresses.", qs->retries_sent);
        metric(&b, "moq_relay_quic_retry_invalid_total", "counter",
               "Initials dropped for a Retry token that did not verify.", qs->retry_invalid);
        metric(&b, "moq_relay_quic_refused_full_total", "counter",
               "QUIC connections refused at the connection limit.", qs->refused_full);
        metric(&b, "moq_relay_quic_refused_half_open_total", "counter",
               "QUIC connections refused for too many handshakes from one address.",
               qs->refused_half_open);
        metric(&b, "moq_relay_quic_connections", "gauge",
               "QUIC connections open (handshaking, established or closing).", qs->connections);
        metric(&b, "moq_relay_quic_memory_bytes", "gauge",
               "Bytes libngtcp2 holds for the open QUIC connections (per connection: divide by "
               "moq_relay_quic_connections).",
               qs->memory_bytes);
    }
    const moq_origin_stats *st = &m->origin;
    metric(&b, "moq_relay_broadcasts", "gauge", "Broadcasts announced.", st->broadcasts);
    metric(&b, "moq_relay_tracks", "gauge", "Tracks being relayed.", st->tracks);
    metric(&b, "moq_relay_subscriptions", "gauge", "Subscriptions open.", st->subscriptions);
    metric(&b, "moq_relay_cache_groups", "gauge", "Groups in the cache.", st->groups_cached);
    metric(&b, "moq_relay_cache_bytes", "gauge", "Payload bytes in the cache.", st->cached_bytes);
    metric(&b, "moq_relay_cache_evictions_total", "counter", "Groups evicted for the byte budget.",
           st->evictions);
    metric(&b, "moq_relay_cache_expirations_total", "counter", "Groups expired for age.",
           st->expirations);
    metric(&b, "moq_relay_chunk_bytes", "gauge", "Bytes held in frame chunks.",
           moq_chunk_live_bytes());
    if (m->workers > 1) {
        metric(&b, "moq_relay_workers", "gauge", "Worker threads (server.workers).", m->workers);
        metric(&b, "moq_relay_bridged_frames_total", "counter",
               "Frames handed from one worker to another.", m->bridged_frames);
    }
    moq_http_response_set_status(resp, 200);
    moq_http_response_header(resp, "content-type", "text/plain; version=0.0.4");
    int rc = moq_http_response_body(resp, b.data, b.len);
    moq_buf_free(&b);
    return rc;
}

static uint64_t stat_of(const json_t *part, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(json_object_get(part, "stats"), key));
}

static int merged_metrics(moq_relay *r, void *arg, json_t *const *parts, unsigned n,
                          moq_http_response *resp)
{
    struct metrics_in m = {.has_quic = r->quic != NULL, .workers = n};
    static const char *const live_keys[] = {"", "live_quic", "live_webtransport", "live_websocket"};
    static const char *const total_keys[] = {"", "total_quic", "total_webtransport",
                                             "total_websocket"};
    for (unsigned i = 0; i < n; i++) {
        const json_t *p = parts[i];
        for (int k = 1; k < 4; k++) {
            m.live[k] += stat_of(p, live_keys[k]);
            m.total[k] += stat_of(p, total_keys[k]);
        }
        m.refused += stat_of(p, "refused");
        m.full += stat_of(p, "full");
        m.trims += stat_of(p, "memory_trims");
        m.quic.half_open += stat_of(p, "quic_half_open");
        m.quic.retries_sent += stat_of(p, "quic_retries");
        m.quic.retry_invalid += stat_of(p, "quic_retry_invalid");
        m.quic.refused_full += stat_of(p, "quic_refused_full");
        m.quic.refused_half_open += stat_of(p, "quic_refused_half_open");
        m.quic.connections += stat_of(p, "quic_connections");
        m.quic.memory_bytes += stat_of(p, "quic_memory");
        /* Every worker's origin sees every broadcast (bridged): the largest count is the
         * relay's; tracks and subscriptions a bridge holds are left out by each worker. */
        uint64_t bcs = stat_of(p, "broadcasts");
        if (bcs > m.origin.broadcasts) m.origin.broadcasts = bcs;
        m.origin.tracks += stat_of(p, "tracks");
        m.origin.subscriptions += stat_of(p, "subscriptions");
        m.origin.groups_cached += stat_of(p, "groups_cached");
        m.origin.cached_bytes += stat_of(p, "cached_bytes");
        m.origin.evictions += stat_of(p, "evictions");
        m.origin.expirations += stat_of(p, "expirations");
        m.bridged_frames += stat_of(p, "bridged_frames");
    }
    return render_metrics(&m, resp);
}

static int hook_metrics(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_relay *r = ctx;
    if (r->worker.count > 1) return moq_relay_gather(r, resp, merged_metrics, NULL);
    struct metrics_in m = {.refused = r->counters.sessions_refused,
                           .full = r->counters.sessions_full,
                           .trims = r->counters.memory_trims,
                           .has_quic = r->quic != NULL,
                           .workers = 1};
    for (moq_list *pos = r->sessions.next; pos != &r->sessions; pos = pos->next) {
        struct relay_session *rs = moq_container_of(pos, struct relay_session, link);
        if (rs->kind < 4) m.live[rs->kind]++;
    }
    for (int k = 1; k < 4; k++)
        m.total[k] = r->counters.sessions_total[k];
    if (r->quic) moq_quic_server_stats_get(r->quic, &m.quic);
    moq_origin_stats_get(r->origin, &m.origin);
    return render_metrics(&m, resp);
}

const struct moq_web_hooks moq_relay_web_hooks_template = {
    .ctx = NULL,
    .fingerprint = hook_fingerprint,
    .announced = hook_announced,
    .fetch = hook_fetch,
    .metrics = hook_metrics,
};
