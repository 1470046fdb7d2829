/* Clustering in process: three relays (a root and two leaves) joined by moq-lite sessions
 * over in-memory transports, dialed through a fake dialer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "auth/auth.h"
#include "cluster/cluster.h"
#include "model/model.h"
#include "moq/session.h"
#include "transport/pipe.h"
#include "util/defer.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"
#include "util/varint.h"

#define MAX_RELAYS 4

struct relay {
    const char *url;
    moq_origin *origin;
    moq_cluster *cluster;
    int inbound; /* sessions other relays opened to us */
    moq_session *sessions[16];
    bool refuse; /* refuse every inbound session (a wrong token) */
    bool down;   /* not reachable */
};

static struct ev_loop *loop;
static struct relay relays[MAX_RELAYS];
static size_t n_relays;
static int dials;
static char last_dial[256]; /* the URL of the latest dial, token included */

static struct relay *find(const char *url)
{
    for (size_t i = 0; i < n_relays; i++) {
        size_t n = strlen(relays[i].url);
        if (strncmp(url, relays[i].url, n) == 0 &&
            (url[n] == '\0' || url[n] == '?' ||
             (url[n] == '/' && (url[n + 1] == '\0' || url[n + 1] == '?'))))
            return &relays[i];
    }
    return NULL;
}

static uint64_t inbound_authorize(void *ctx, moq_session *s, const char *path, int role,
                                  moq_perms *perms)
{
    struct relay *r = ctx;
    if (r->refuse || !strstr(path, "jwt=good")) return 6;
    memset(perms, 0, sizeof(*perms));
    perms->root = strdup("");
    moq_strlist_push(&perms->publish, "");
    moq_strlist_push(&perms->subscribe, "");
    return 0;
}

static void inbound_upstream(void *ctx, moq_session *s, const uint8_t *path, size_t len,
                             const uint64_t *hops, size_t nhops, bool active)
{
    struct relay *r = ctx;
    if (r->cluster) moq_cluster_upstream(r->cluster, s, path, len, hops, nhops, active);
}

static void inbound_closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    struct relay *r = ctx;
    r->inbound--;
    for (size_t i = 0; i < 16; i++)
        if (r->sessions[i] == s) r->sessions[i] = NULL;
}

/* Take a relay off the network: close the sessions peers opened to it. */
static void relay_down(struct relay *r)
{
    r->down = true;
    for (size_t i = 0; i < 16; i++)
        if (r->sessions[i]) moq_session_close(r->sessions[i], 0, "down");
}

/* A dial: connects to an in-process relay over a pipe, reporting like a real dialer. */
struct fake_dial {
    const struct moq_cluster_dial_events *ev;
    void *arg;
    moq_session *s;
    int err;
    bool connected_sent;
    moq_defer report; /* the dial's outcome, from the loop */
};

static uint64_t full_access(void *ctx, moq_session *s, const char *path, int role, moq_perms *perms)
{
    memset(perms, 0, sizeof(*perms));
    perms->root = strdup("");
    moq_strlist_push(&perms->publish, "");
    moq_strlist_push(&perms->subscribe, "");
    return 0;
}

static void fd_upstream(void *ctx, moq_session *s, const uint8_t *path, size_t len,
                        const uint64_t *hops, size_t nhops, bool active)
{
    struct fake_dial *d = ctx;
    d->ev->upstream(d->arg, s, path, len, hops, nhops, active);
}

static void fd_closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    struct fake_dial *d = ctx;
    moq_defer_fini(&d->report);
    d->ev->closed(d->arg, 0, code, reason);
    free(d);
}

static void fd_report(moq_defer *w)
{
    struct fake_dial *d = w->data;
    if (d->s) {
        d->connected_sent = true;
        d->ev->connected(d->arg, d->s);
        return;
    }
    d->ev->closed(d->arg, d->err, 0, "unreachable");
    moq_defer_fini(&d->report);
    free(d);
}

static int fake_dial(void *ctx, const char *url, moq_origin *origin,
                     const struct moq_cluster_dial_events *ev, void *arg, void **handle)
{
    dials++;
    snprintf(last_dial, sizeof(last_dial), "%s", url);
    struct fake_dial *d = calloc(1, sizeof(*d));
    d->ev = ev;
    d->arg = arg;
    /* Queued before the sessions exist: as with a real dial, `connected` comes before any
     * event of the session. */
    assert_int_equal(moq_defer_init(&d->report, loop, fd_report, d), 0);
    moq_defer_schedule(&d->report);
    struct relay *target = find(url);
    if (!target || target->down) {
        d->err = MOQ_ERR_IO;
    } else {
        moq_transport *ct, *st;
        char path[256];
        const char *q = strchr(url, '?');
        snprintf(path, sizeof(path), "/%s", q ? q : "");
        struct moq_pipe_config pc = {MOQ_TRANSPORT_WEBTRANSPORT, "moq-lite-05", path, 1200};
        moq_pipe_new(loop, &pc, &ct, &st);
        struct moq_session_config sc = {.origin = target->origin,
                                        .clock = &moq_system_clock,
                                        .authorize = inbound_authorize,
                                        .upstream = inbound_upstream,
                                        .closed = inbound_closed,
                                        .ctx = target};
        target->inbound++;
        moq_session *in = moq_session_new(st, &sc);
        for (size_t i = 0; i < 16; i++)
            if (!target->sessions[i]) {
                target->sessions[i] = in;
                break;
            }
        struct moq_session_config cc = {.origin = origin,
                                        .clock = &moq_system_clock,
                                        .authorize = full_access,
                                        .upstream = fd_upstream,
                                        .closed = fd_closed,
                                        .ctx = d};
        d->s = moq_session_new(ct, &cc);
    }
    *handle = d;
    return 0;
}

static void fake_close(void *ctx, void *handle)
{
    struct fake_dial *d = handle;
    if (d->s) {
        moq_session_close(d->s, 0, "closed");
        return;
    }
    d->err = MOQ_ERR_CLOSED;
    moq_defer_schedule(&d->report);
}

static struct relay *add_relay(const char *url, uint64_t id)
{
    struct relay *r = &relays[n_relays++];
    memset(r, 0, sizeof(*r));
    r->url = url;
    moq_origin_config oc;
    moq_origin_config_default(&oc);
    oc.id = id;
    oc.linger_us = 0;
    r->origin = moq_origin_new(&oc);
    return r;
}

static void start_cluster_as(struct relay *r, const char *node, const char *const *peers, size_t n,
                             const char *token)
{
    struct moq_cluster_config cc = {
        .loop = loop,
        .origin = r->origin,
        .node = node,
        .peers = peers,
        .n_peers = n,
        .token = token,
        .dialer = {fake_dial, fake_close, NULL},
        .backoff_initial_ms = 20,
        .backoff_max_ms = 100,
        .idle_close_ms = 50,
    };
    assert_int_equal(moq_cluster_new(&cc, &r->cluster), 0);
}

static void start_cluster(struct relay *r, const char *const *peers, size_t n, const char *token)
{
    start_cluster_as(r, r->url, peers, n, token);
}

static void spin_ms(int ms)
{
    uint64_t end = moq_now_us() + (uint64_t)ms * 1000;
    while (moq_now_us() < end)
        ev_run(loop, EVRUN_NOWAIT);
}

static void tick(struct ev_loop *l, ev_timer *w, int revents) {}

/* Run the loop until cond holds; false if it still does not after a generous 10 s. */
static bool spin_until(bool (*cond)(void *), void *arg)
{
    ev_timer guard;
    ev_timer_init(&guard, tick, 0.002, 0.002);
    ev_timer_start(loop, &guard);
    uint64_t end = moq_now_us() + 10 * 1000 * 1000;
    while (!cond(arg) && moq_now_us() < end)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &guard);
    return cond(arg);
}

/* ---- a publisher on leaf A ---- */

struct pub {
    moq_route *route;
    moq_track *track;
    moq_route *track_route;
    int requests;
};

static void p_request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *pr)
{
    struct pub *p = ctx;
    p->requests++;
    p->track = t;
    p->track_route = r;
    moq_track_info info;
    moq_track_info_default(&info);
    moq_track_set_info(t, r, &info);
}

static void p_release(void *ctx, moq_route *r, moq_track *t)
{
    struct pub *p = ctx;
    if (p->track == t) p->track = NULL;
}

static const moq_producer_ops pub_ops = {p_request, NULL, p_release, NULL, false};

static void publish_group(struct pub *p, uint64_t seq, const char *text)
{
    assert_non_null(p->track);
    moq_group *g = NULL;
    assert_int_equal(moq_track_begin_group(p->track, p->track_route, seq, moq_now_us(), &g), 0);
    size_t len = strlen(text);
    moq_chunk *c = moq_chunk_new(24 + len);
    c->len = 24 + len;
    memcpy(c->data + 24, text, len);
    uint8_t h5[16], *e = moq_varint_put(moq_varint_put(h5, 0), len);
    size_t n5 = (size_t)(e - h5);
    memcpy(c->data + 24 - n5, h5, n5);
    uint8_t *q = moq_varint_put(c->data, len);
    moq_frame f = {
        c, 24, (uint32_t)len, 0, {(uint16_t)(24 - n5), 0}, {(uint16_t)n5, (uint16_t)(q - c->data)},
        0, 0};
    assert_int_equal(moq_group_append(g, &f, moq_now_us()), 0);
    assert_int_equal(moq_group_finish(g, moq_now_us()), 0);
    moq_group_unref(g);
}

/* ---- a subscriber on leaf B ---- */

struct sub {
    moq_subscription *s;
    char seen[512];
    size_t len;
    moq_follower *followers[32];
    size_t n;
    bool aborted;
};

static void f_frames(void *ctx, moq_follower *f, moq_group *g, uint64_t count) {}

static void f_end(void *ctx, moq_follower *f, moq_group *g, int state, uint64_t code)
{
    struct sub *s = ctx;
    if (state != MOQ_GROUP_FINISHED) return;
    for (uint64_t i = 0; i < moq_group_frame_count(g); i++) {
        const moq_frame *fr = moq_group_frame(g, i);
        int n = snprintf(s->seen + s->len, sizeof(s->seen) - s->len, "%.*s;", (int)fr->payload_len,
                         (const char *)fr->chunk->data + fr->payload_off);
        if (n > 0) s->len += (size_t)n;
    }
}

static const moq_follower_ops follow_ops = {f_frames, f_end};

static void s_group(void *ctx, moq_subscription *sub, moq_group *g)
{
    struct sub *s = ctx;
    if (s->n < 32) s->followers[s->n++] = moq_group_follow(g, &follow_ops, s);
}

static void s_abort(void *ctx, moq_subscription *sub, uint64_t code)
{
    ((struct sub *)ctx)->aborted = true;
}

static const moq_subscriber_ops sub_ops = {.on_group = s_group, .on_abort = s_abort};

static void sub_free(struct sub *s)
{
    for (size_t i = 0; i < s->n; i++)
        moq_follower_close(s->followers[i]);
    if (s->s) moq_subscription_close(s->s);
}

static void setup(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    n_relays = 0;
    dials = 0;
}

static void teardown(void)
{
    for (size_t i = 0; i < n_relays; i++)
        if (relays[i].cluster) moq_cluster_free(relays[i].cluster);
    spin_ms(20);
    for (size_t i = 0; i < n_relays; i++)
        moq_origin_free(relays[i].origin);
    ev_loop_destroy(loop);
}

static size_t tracks(struct relay *r)
{
    moq_origin_stats st;
    moq_origin_stats_get(r->origin, &st);
    return st.tracks;
}

static void leaves_link_directly_and_survive_the_root(void **state)
{
    setup();
    struct relay *root = add_relay("https://root", 100);
    struct relay *a = add_relay("https://leaf-a", 200);
    struct relay *b = add_relay("https://leaf-b", 300);
    static const char *const to_root[] = {"https://root"};
    start_cluster(root, NULL, 0, NULL);
    start_cluster(a, to_root, 1, "good");
    start_cluster(b, to_root, 1, "good");
    spin_ms(50);
    assert_int_equal(moq_cluster_connected(a->cluster), 1);
    assert_int_equal(moq_cluster_connected(b->cluster), 1);

    struct pub p = {0};
    assert_int_equal(
        moq_origin_announce(a->origin, (const uint8_t *)"live", 4, NULL, 0, &pub_ops, &p, &p.route),
        0);
    spin_ms(50);
    uint64_t hops[32];
    size_t nhops = 0;
    assert_int_equal(moq_origin_lookup(b->origin, (const uint8_t *)"live", 4, 0, hops, &nhops), 0);
    assert_int_equal(nhops, 2); /* a, root */

    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(b->origin, (const uint8_t *)"live", 4,
                                          (const uint8_t *)"t", 1, 0, &prefs, &sub_ops, &s, &s.s),
                     0);
    spin_ms(100);
    /* B opened a direct link to A and pulls from it; the root no longer carries the track */
    assert_int_equal(moq_cluster_connected(b->cluster), 2);
    assert_int_equal(moq_origin_lookup(b->origin, (const uint8_t *)"live", 4, 0, hops, &nhops), 0);
    assert_int_equal(nhops, 1);
    assert_int_equal(tracks(root), 0);
    assert_int_equal(p.requests >= 1, 1);
    publish_group(&p, 1, "one");
    spin_ms(50);
    assert_string_equal(s.seen, "one;");

    /* the root goes away: content keeps flowing leaf to leaf */
    relay_down(root);
    spin_ms(50);
    assert_int_equal(root->inbound, 0);
    assert_int_equal(moq_cluster_connected(b->cluster), 1); /* only the direct link is left */
    publish_group(&p, 2, "two");
    spin_ms(50);
    assert_string_equal(s.seen, "one;two;");
    sub_free(&s);
    moq_route_unannounce(p.route);
    spin_ms(100);
    teardown();
}

static void wrong_token_is_retried_with_backoff(void **state)
{
    setup();
    struct relay *root = add_relay("https://root", 100);
    struct relay *leaf = add_relay("https://leaf", 200);
    static const char *const to_root[] = {"https://root"};
    start_cluster(leaf, to_root, 1, "bad");
    spin_ms(400);
    assert_int_equal(moq_cluster_connected(leaf->cluster), 0);
    /* 20 ms doubling to a 100 ms cap over 400 ms: a handful of attempts, not hundreds */
    assert_true(dials >= 2 && dials <= 10);
    (void)root;
    teardown();
}

static void unreachable_peer_comes_back(void **state)
{
    setup();
    struct relay *root = add_relay("https://root", 100);
    struct relay *leaf = add_relay("https://leaf", 200);
    root->down = true;
    static const char *const to_root[] = {"https://root"};
    start_cluster(leaf, to_root, 1, "good");
    spin_ms(100);
    assert_int_equal(moq_cluster_connected(leaf->cluster), 0);
    root->down = false;
    spin_ms(300);
    assert_int_equal(moq_cluster_connected(leaf->cluster), 1);
    teardown();
}

/* ---- mixed clusters: the node advertisement as upstream moq-relay writes and reads it ---- */

static bool has_path(struct relay *r, const char *path)
{
    return moq_origin_lookup(r->origin, (const uint8_t *)path, strlen(path), 0, NULL, NULL) == 0;
}

struct seen_at {
    struct relay *r;
    const char *path;
};

static bool seen(void *arg)
{
    struct seen_at *w = arg;
    return has_path(w->r, w->path);
}

/* "https://leaf-a:4443/" is advertised as upstream's Path::new(prefix).join(node) spells it. */
static void node_is_advertised_in_the_upstream_form(void **state)
{
    setup();
    struct relay *root = add_relay("https://root", 100);
    struct relay *a = add_relay("https://leaf-a:4443/", 200);
    static const char *const to_root[] = {"https://root"};
    start_cluster(root, NULL, 0, NULL);
    start_cluster(a, to_root, 1, "good");
    struct seen_at w = {root, ".internal/origins/https:/leaf-a:4443"};
    assert_true(spin_until(seen, &w));
    uint64_t hops[32];
    size_t nhops = 0;
    assert_int_equal(
        moq_origin_lookup(root->origin, (const uint8_t *)w.path, strlen(w.path), 0, hops, &nhops),
        0);
    assert_int_equal(nhops, 1);
    assert_int_equal(hops[0], 200);   /* the advertising relay's origin id comes first */
    assert_true(has_path(a, w.path)); /* announced locally, without hops */
    assert_false(has_path(root, ".internal/origins/https:%2F%2Fleaf-a:4443%2F"));
    teardown();
}

static bool track_requested(void *arg)
{
    return ((struct pub *)arg)->track != NULL;
}

struct direct {
    struct relay *b;
    struct sub *s;
    const char *want;
};

static bool pulled_directly(void *arg)
{
    struct direct *d = arg;
    uint64_t hops[32];
    size_t nhops = 0;
    return moq_cluster_connected(d->b->cluster) == 2 &&
           moq_origin_lookup(d->b->origin, (const uint8_t *)"live", 4, 0, hops, &nhops) == 0 &&
           nhops == 1;
}

static bool received(void *arg)
{
    struct direct *d = arg;
    return strcmp(d->s->seen, d->want) == 0;
}

/* A relay that is not this implementation advertises itself (the advertisement is put in its
 * origin as upstream's cluster does: a local broadcast at the path, no hops) and publishes
 * "live"; a subscriber on leaf B makes B dial it directly at the advertised URL. */
static void pull_directly_from(const char *advertisement, const char *dialed)
{
    setup();
    struct relay *root = add_relay("https://root", 100);
    struct relay *r = add_relay("https://leaf-r:4443", 400);
    struct relay *b = add_relay("https://leaf-b", 300);
    static const char *const to_root[] = {"https://root"};
    start_cluster(root, NULL, 0, NULL);
    start_cluster_as(r, NULL, to_root, 1, "good"); /* dials the root, advertises nothing */
    start_cluster(b, to_root, 1, "good");
    struct pub adv = {0}, p = {0};
    assert_int_equal(moq_origin_announce(r->origin, (const uint8_t *)advertisement,
                                         strlen(advertisement), NULL, 0, &pub_ops, &adv,
                                         &adv.route),
                     0);
    assert_int_equal(
        moq_origin_announce(r->origin, (const uint8_t *)"live", 4, NULL, 0, &pub_ops, &p, &p.route),
        0);
    struct seen_at w = {b, "live"};
    assert_true(spin_until(seen, &w));
    w.path = advertisement;
    assert_true(spin_until(seen, &w));

    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(b->origin, (const uint8_t *)"live", 4,
                                          (const uint8_t *)"t", 1, 0, &prefs, &sub_ops, &s, &s.s),
                     0);
    struct direct d = {b, &s, "one;"};
    assert_true(spin_until(pulled_directly, &d));
    assert_true(strncmp(last_dial, dialed, strlen(dialed)) == 0);
    assert_non_null(strstr(last_dial, "jwt=good"));
    assert_true(spin_until(track_requested, &p));
    publish_group(&p, 1, "one");
    assert_true(spin_until(received, &d));
    sub_free(&s);
    moq_route_unannounce(p.route);
    moq_route_unannounce(adv.route);
    spin_ms(50);
    teardown();
}

static void upstream_advertisement_opens_a_direct_link(void **state)
{
    pull_directly_from(".internal/origins/https:/leaf-r:4443", "https://leaf-r:4443/?");
}

/* Upstream's legacy node form, a bare host:port, means https://host:port/. */
static void bare_host_advertisement_means_https(void **state)
{
    pull_directly_from(".internal/origins/leaf-r:4443", "https://leaf-r:4443/?");
}

/* What relays of this implementation advertised before they wrote the upstream form. */
static void older_encoded_advertisement_is_still_read(void **state)
{
    pull_directly_from(".internal/origins/https:%2F%2Fleaf-r:4443%2F", "https://leaf-r:4443/?");
}

/* The guide gives the cluster token only in the root URL: the links a leaf opens to other
 * leaves on demand carry it too (the fake peers refuse a dial without jwt=good). */
static void direct_links_carry_the_token_of_the_root_url(void **state)
{
    setup();
    struct relay *root = add_relay("https://root", 100);
    struct relay *a = add_relay("https://leaf-a", 200);
    struct relay *b = add_relay("https://leaf-b", 300);
    static const char *const to_root[] = {"https://root/?jwt=good"};
    start_cluster(root, NULL, 0, NULL);
    start_cluster(a, to_root, 1, NULL);
    start_cluster(b, to_root, 1, NULL);
    struct pub p = {0};
    assert_int_equal(
        moq_origin_announce(a->origin, (const uint8_t *)"live", 4, NULL, 0, &pub_ops, &p, &p.route),
        0);
    struct seen_at w = {b, "live"};
    assert_true(spin_until(seen, &w));
    struct sub s = {0};
    moq_sub_prefs prefs = {0};
    assert_int_equal(moq_origin_subscribe(b->origin, (const uint8_t *)"live", 4,
                                          (const uint8_t *)"t", 1, 0, &prefs, &sub_ops, &s, &s.s),
                     0);
    struct direct d = {b, &s, "one;"};
    assert_true(spin_until(pulled_directly, &d));
    assert_string_equal(last_dial, "https://leaf-a/?jwt=good");
    assert_true(spin_until(track_requested, &p));
    publish_group(&p, 1, "one");
    assert_true(spin_until(received, &d));
    sub_free(&s);
    moq_route_unannounce(p.route);
    spin_ms(50);
    teardown();
}

/* ---- the cluster token: inline or in a file, never repeated in an error ---- */

#define JWT "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb290IjoiIn0.c2lnbmF0dXJl"

static char *temp_file(const char *content)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/test_cluster_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void cluster_token_is_a_jwt_or_a_file(void **state)
{
    char *tok = NULL, err[256] = "";
    assert_int_equal(moq_cluster_token_load(JWT, &tok, err, sizeof(err)), 0);
    assert_string_equal(tok, JWT);
    free(tok);

    char *path = temp_file("\n  " JWT "\r\n");
    assert_int_equal(moq_cluster_token_load(path, &tok, err, sizeof(err)), 0);
    assert_string_equal(tok, JWT);
    free(tok);
    unlink(path);

    path = temp_file("  \n");
    assert_int_equal(moq_cluster_token_load(path, &tok, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_null(tok);
    assert_non_null(strstr(err, "is empty"));
    assert_non_null(strstr(err, path));
    unlink(path);

    path = temp_file("not a token\n");
    assert_int_equal(moq_cluster_token_load(path, &tok, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "does not hold a JWT"));
    assert_null(strstr(err, "not a token"));
    unlink(path);

    assert_int_equal(moq_cluster_token_load("/nonexistent/cluster.jwt", &tok, err, sizeof(err)),
                     MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "cannot read /nonexistent/cluster.jwt"));
    assert_non_null(strstr(err, "the JWT itself or a file"));
}

/* A token with a typo is neither a JWT nor a file: the message says so without repeating it. */
static void cluster_token_errors_never_show_a_token(void **state)
{
    static const char *const broken[] = {
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb290IjoiIn0",           /* two parts */
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb290IjoiIn0.c2ln.Zm9v", /* four */
        "eyJub3RhbGciOjF9.eyJyb290IjoiIn0.c2lnbmF0dXJl",                  /* no alg */
        "Zm9vYmFyYmF6.eyJyb290IjoiIn0.c2lnbmF0dXJl",                      /* not JSON */
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        char *tok = NULL, err[256] = "";
        assert_int_equal(moq_cluster_token_load(broken[i], &tok, err, sizeof(err)), MOQ_ERR_CONFIG);
        assert_null(tok);
        assert_non_null(strstr(err, "neither a valid JWT"));
        assert_null(strstr(err, "eyJyb290"));
        assert_null(strstr(err, "c2ln"));
    }
}

int main(void)
{
    moq_log_set_level(getenv("TEST_DEBUG") ? MOQ_LOG_DEBUG : MOQ_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leaves_link_directly_and_survive_the_root),
        cmocka_unit_test(wrong_token_is_retried_with_backoff),
        cmocka_unit_test(unreachable_peer_comes_back),
        cmocka_unit_test(node_is_advertised_in_the_upstream_form),
        cmocka_unit_test(upstream_advertisement_opens_a_direct_link),
        cmocka_unit_test(bare_host_advertisement_means_https),
        cmocka_unit_test(older_encoded_advertisement_is_still_read),
        cmocka_unit_test(direct_links_carry_the_token_of_the_root_url),
        cmocka_unit_test(cluster_token_is_a_jwt_or_a_file),
        cmocka_unit_test(cluster_token_errors_never_show_a_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
