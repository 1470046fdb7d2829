/*
 * pipe.h - an in-memory transport pair with QUIC stream semantics, for in-process
 * connections and tests: whatever one end writes, the other receives as events.
 *
 * Both ends implement moq_transport_ops exactly as transport.h specifies (events are
 * queued and delivered from the libev loop by a deferred task, never from a downcall).
 * Without a loop (loop NULL) events wait for moq_pipe_flush: tests and fuzz targets then
 * drive both ends by hand, with no event loop at all.
 * The "client" end opens even stream ids, the "server" end odd ones. There is no flow
 * control; unsent() and unacked() report bytes written but not yet delivered to the peer.
 *
 * Ownership: moq_pipe_new creates both ends; each end is freed after its `closed` event
 * (close() on either end closes both). If the loop is torn down first, call
 * moq_pipe_destroy() to free whatever is left without delivering events.
 */
#ifndef MOQ_TRANSPORT_PIPE_H
#define MOQ_TRANSPORT_PIPE_H

#include "transport/transport.h"

struct ev_loop;
typedef struct moq_pipe moq_pipe;

struct moq_pipe_config {
    enum moq_transport_kind kind; /* reported by both ends */
    const char *protocol;         /* e.g. "moq-lite-05" */
    const char *path;             /* request target reported by the server end, or NULL */
    size_t max_datagram;          /* 0 = no datagrams */
};

moq_pipe *moq_pipe_new(struct ev_loop *loop, const struct moq_pipe_config *cfg,
                       moq_transport **client, moq_transport **server);
/* Free the pipe and both ends (if still alive) without delivering further events. */
void moq_pipe_destroy(moq_pipe *p);
/* Deliver every queued event now (for tests that drive the pipe by hand). Returns the
 * number of events delivered. */
size_t moq_pipe_flush(moq_pipe *p);
/* What stats() reports on both ends from now on (all zero until set). */
void moq_pipe_set_stats(moq_pipe *p, const struct moq_transport_stats *st);

#endif
