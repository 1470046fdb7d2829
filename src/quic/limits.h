/*
 * limits.h - the admission budgets of a QUIC listener: connections at once, new handshakes
 * per second before address validation, handshakes in progress per source address, and
 * replies to packets of no connection (stateless resets, version negotiation, refusals,
 * Retry).
 *
 * One moq_quic_limits serves every listener sharing a port (one per worker thread, see
 * quic/steer.h), so a budget means the same with one worker as with many: the connection
 * count is an atomic, the token buckets and the per-address counts sit behind one mutex,
 * taken only for a packet of no connection and when a handshake starts or ends - never for
 * a packet of an established connection.
 *
 * Ownership: the creator frees it with moq_quic_limits_free once no listener uses it.
 */
#ifndef MOQ_QUIC_LIMITS_H
#define MOQ_QUIC_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stateless resets and refusals a relay sends per second, one second of burst. */
#define MOQ_QUIC_DEFAULT_RESPONSE_RATE 200.0

typedef struct moq_quic_limits moq_quic_limits;

struct moq_quic_limits_config {
    size_t max_connections; /* connections at once (0 = MOQ_QUIC_DEFAULT_MAX_CONNECTIONS) */
    size_t max_half_open;   /* handshakes per address (0 = MOQ_QUIC_DEFAULT_HALF_OPEN_...) */
    double handshake_rate;  /* new handshakes/s without a Retry token; 0 = never Retry */
    double response_rate;   /* replies/s to packets of no connection (one second of burst;
                               0 = MOQ_QUIC_DEFAULT_RESPONSE_RATE) */
};

/* NULL when out of memory. */
moq_quic_limits *moq_quic_limits_new(const struct moq_quic_limits_config *cfg);
void moq_quic_limits_free(moq_quic_limits *l);

size_t moq_quic_limits_max_connections(const moq_quic_limits *l);
size_t moq_quic_limits_max_half_open(const moq_quic_limits *l);

/* A connection slot: true and counted, or false at max_connections. */
bool moq_quic_limits_connection_take(moq_quic_limits *l);
void moq_quic_limits_connection_give(moq_quic_limits *l);
/* Connections counted now (every listener sharing l). */
size_t moq_quic_limits_connections(const moq_quic_limits *l);

/* One token of the handshake rate (true when there is no rate), at now_us. */
bool moq_quic_limits_handshake_token(moq_quic_limits *l, uint64_t now_us);
/* One token of the reply budget, at now_us. */
bool moq_quic_limits_response_token(moq_quic_limits *l, uint64_t now_us);

/* A handshake in progress from the address `key`: true and counted, or false at
 * max_half_open (or out of memory). Each true is matched by one half_open_done. */
bool moq_quic_limits_half_open_take(moq_quic_limits *l, uint64_t key);
void moq_quic_limits_half_open_done(moq_quic_limits *l, uint64_t key);
/* Handshakes in progress from `key` now. */
size_t moq_quic_limits_half_open(moq_quic_limits *l, uint64_t key);

#endif
