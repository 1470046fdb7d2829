/*
 * bridge.h - carrying broadcasts between the origins of the relay's worker threads.
 *
 * Each worker owns an origin. Its bridge exports what the worker's own sessions publish
 * (routes that are not themselves bridges) to every other worker, where it appears as a
 * route whose producer is the bridge (moq_producer_ops.bridge, same path and hop chain).
 * A track wanted on worker B and published on worker A is subscribed once on A for all of
 * B's subscribers - like a cluster link, but in memory: A's bridge follows each group and
 * hands B the same frames (the immutable chunks, with one more atomic reference each,
 * never a copy). Fetches of groups B does not have go to A the same way.
 *
 * Threads: the hub is shared. Each bridge belongs to its worker's loop thread, except
 * that any thread may post to it: a mutex-guarded message queue per bridge, woken with
 * ev_async. Messages carry only plain values and chunk references, never a model pointer
 * of another worker. No lock is taken on the per-frame path within a worker.
 *
 * Ownership and lifetime:
 * - moq_bridge_hub_new(n) / moq_bridge_hub_free (after every bridge was freed).
 * - moq_bridge_new registers worker `index`'s bridge in the hub; call it for every worker
 *   before any of them runs. moq_bridge_start begins exporting (from the worker's thread or
 *   before it runs).
 * - Shutdown: moq_bridge_stop on every bridge (each on its loop's thread, or all from one
 *   thread once no loop runs) - it closes every model handle the bridge holds, so it
 *   precedes moq_origin_free - then moq_bridge_free on each. Messages posted to a stopped
 *   bridge are dropped (their chunk references released).
 */
#ifndef MOQ_RELAY_BRIDGE_H
#define MOQ_RELAY_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct ev_loop;
typedef struct moq_bridge_hub moq_bridge_hub;
typedef struct moq_bridge moq_bridge;

/* What one bridge has carried (for /metrics; read on the bridge's thread). */
struct moq_bridge_stats {
    uint64_t imported_tracks; /* tracks served here from other workers (open now) */
    uint64_t exported_tracks; /* subscriptions held here for other workers (open now) */
    uint64_t frames_in;       /* frames received from other workers */
    uint64_t messages_in;
};

moq_bridge_hub *moq_bridge_hub_new(unsigned workers);
void moq_bridge_hub_free(moq_bridge_hub *h);

int moq_bridge_new(moq_bridge_hub *h, unsigned index, struct ev_loop *loop, moq_origin *origin,
                   moq_bridge **out);
int moq_bridge_start(moq_bridge *b);
void moq_bridge_stop(moq_bridge *b);
void moq_bridge_free(moq_bridge *b);

/* Run fn(arg, to) on worker `to`'s thread, from its loop, after what was posted to it before.
 * If `to` has stopped, fn never runs and drop(arg) (optional) runs instead: at once, or when
 * `to` stops with the call still queued. Any thread, with its own worker's bridge as from. */
void moq_bridge_call(moq_bridge *from, unsigned to, void (*fn)(void *arg, unsigned worker),
                     void (*drop)(void *arg), void *arg);

void moq_bridge_stats_get(const moq_bridge *b, struct moq_bridge_stats *out);

#endif
