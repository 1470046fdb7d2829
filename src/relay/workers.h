/*
 * workers.h - running the relay on several worker threads (server.workers > 1).
 *
 * The main thread binds worker 0's listeners, then the others' on the same ports (the
 * kernel spreads TCP connections, and QUIC datagrams follow their connection IDs: see
 * quic/steer.h), starts one thread per worker, each running its own event loop and relay,
 * and keeps SIGINT/SIGTERM/SIGHUP and the service manager to itself. Workers share the
 * certificates, the origin id, the stateless-reset secret and the relay-wide limits (the
 * session count, the QUIC admission budgets of quic/limits.h, the web connection count and
 * the cache charge); each owns its origin, sessions and auth key cache; relay/bridge.h
 * carries broadcasts between them.
 *
 * Ownership: everything is built and freed inside moq_relay_run_workers.
 */
#ifndef MOQ_RELAY_WORKERS_H
#define MOQ_RELAY_WORKERS_H

#include "config/config.h"

/* Run n workers until SIGINT/SIGTERM; SIGHUP reloads on every worker. Returns the exit
 * status. */
int moq_relay_run_workers(const struct moq_config *cfg, unsigned n);

#endif
