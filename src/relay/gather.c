/* gather.c - whole-relay views over several workers (relay_int.h): a snapshot from every
 * worker, each taken on its own thread, handed to the requesting worker. */
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "relay/relay_int.h"
#include "util/err.h"
#include "util/log.h"

struct gather {
    atomic_uint refs;
    moq_relay *r;            /* the requesting worker */
    moq_http_response *resp; /* NULL once the client went away */
    moq_relay_gather_done done;
    void *arg;
    unsigned n, got; /* got: the requester's thread only */
    moq_buf *parts;  /* parts[i] is written by worker i only, before its reply */
};

static void gather_unref(void *arg)
{
    struct gather *g = arg;
    if (atomic_fetch_sub(&g->refs, 1) != 1) return;
    for (unsigned i = 0; i < g->n; i++)
        moq_buf_free(&g->parts[i]);
    free(g->parts);
    free(g);
}

static void gather_finish(struct gather *g)
{
    json_t **parts = calloc(g->n, sizeof(*parts));
    int rc = parts ? 0 : MOQ_ERR_NOMEM;
    for (unsigned i = 0; rc == 0 && i < g->n; i++) {
        parts[i] = json_loadb((const char *)g->parts[i].data, g->parts[i].len, 0, NULL);
        if (!parts[i]) rc = MOQ_ERR_NOMEM;
    }
    if (rc == 0) rc = g->done(g->r, g->arg, parts, g->n, g->resp);
    if (rc < 0) {
        moq_warn("relay", "cannot merge the workers' views: %s", moq_strerror(rc));
        moq_http_response_set_status(g->resp, 500);
    }
    moq_http_response_send(g->resp);
    g->resp = NULL;
    for (unsigned i = 0; parts && i < g->n; i++)
        json_decref(parts[i]);
    free(parts);
    gather_unref(g); /* the requester's reference */
}

/* On the requesting worker: one more snapshot arrived. */
static void gather_reply(void *arg, unsigned worker)
{
    struct gather *g = arg;
    if (++g->got == g->n && g->resp) gather_finish(g);
    gather_unref(g);
}

/* On worker `worker`: its snapshot, then back to the requester. */
static void gather_run(void *arg, unsigned worker)
{
    struct gather *g = arg;
    moq_relay *self = g->r->worker.relays[worker];
    moq_relay_snapshot(self, &g->parts[worker]);
    moq_bridge_call(self->bridge, g->r->worker.index, gather_reply, gather_unref, g);
}

static void gather_aborted(void *arg)
{
    struct gather *g = arg;
    g->resp = NULL;
    gather_unref(g);
}

int moq_relay_gather(moq_relay *r, moq_http_response *resp, moq_relay_gather_done done, void *arg)
{
    struct gather *g = calloc(1, sizeof(*g));
    if (!g) return MOQ_ERR_NOMEM;
    g->parts = calloc(r->worker.count, sizeof(*g->parts));
    if (!g->parts) {
        free(g);
        return MOQ_ERR_NOMEM;
    }
    for (unsigned i = 0; i < r->worker.count; i++)
        moq_buf_init(&g->parts[i]);
    g->r = r;
    g->resp = resp;
    g->done = done;
    g->arg = arg;
    g->n = r->worker.count;
    atomic_init(&g->refs, 1);
    moq_http_response_on_abort(resp, gather_aborted, g);
    moq_relay_snapshot(r, &g->parts[r->worker.index]);
    g->got = 1;
    for (unsigned i = 0; i < g->n; i++) {
        if (i == r->worker.index) continue;
        atomic_fetch_add(&g->refs, 1);
        moq_bridge_call(r->bridge, i, gather_run, gather_unref, g);
    }
    if (g->got == g->n) gather_finish(g);
    return MOQ_HTTP_ASYNC;
}
