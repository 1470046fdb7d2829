/* Fuzz target: node advertisements as peers deliver them. The input (after a byte choosing
 * how many hops the route has) is a path below .internal/origins, announced into an origin a
 * cluster watches, then announced again by another relay and withdrawn, so the cluster reads
 * the advertisement in every form (upstream's, a bare host:port, the older encoded one) and
 * forgets it again. Nothing may crash, leak or read out of bounds. */
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "moq/path.h"
#include "util/log.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

static void request(void *ctx, moq_route *r, moq_track *t, const moq_sub_prefs *p)
{
    moq_track_abort(t, r, 13);
}

static void release(void *ctx, moq_route *r, moq_track *t) {}

static const moq_producer_ops ops = {request, NULL, release, NULL, false};

static int no_dial(void *ctx, const char *url, moq_origin *origin,
                   const struct moq_cluster_dial_events *ev, void *arg, void **handle)
{
    abort(); /* nothing here pulls a broadcast, so nothing is dialed */
}

static void no_close(void *ctx, void *handle) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ev_loop *loop;
    if (!loop) {
        loop = ev_loop_new(EVFLAG_AUTO);
        moq_log_set_level(MOQ_LOG_OFF);
    }
    if (size < 1) return 0;
    size_t nhops = data[0] % 3;
    moq_buf path;
    moq_buf_init(&path);
    CHECK(moq_buf_append(&path, MOQ_CLUSTER_NODES_PREFIX "/", sizeof(MOQ_CLUSTER_NODES_PREFIX)) ==
          0);
    if (moq_path_normalize_append(&path, moq_str_make(data + 1, size - 1)) < 0) {
        moq_buf_free(&path);
        return 0;
    }

    moq_origin_config oc;
    moq_origin_config_default(&oc);
    oc.id = 100;
    moq_origin *origin = moq_origin_new(&oc);
    CHECK(origin);
    struct moq_cluster_config cc = {
        .loop = loop,
        .origin = origin,
        .node = "https://self.example:4443/",
        .dialer = {no_dial, no_close, NULL},
    };
    moq_cluster *c = NULL;
    CHECK(moq_cluster_new(&cc, &c) == 0);

    static const uint64_t first[] = {7, 8}, second[] = {9};
    static int producers[2]; /* two producers: distinct contexts */
    moq_route *r1 = NULL, *r2 = NULL;
    if (moq_origin_announce(origin, path.data, path.len, first, nhops, &ops, &producers[0], &r1) ==
        0) {
        if (moq_origin_announce(origin, path.data, path.len, second, 1, &ops, &producers[1], &r2) ==
            0)
            moq_route_unannounce(r2);
        moq_route_unannounce(r1);
    }
    moq_cluster_free(c);
    moq_origin_free(origin);
    moq_buf_free(&path);
    return 0;
}
