/*
 * steer.h - keeping a QUIC connection on one worker thread when several workers share a UDP
 * port through SO_REUSEPORT.
 *
 * Every connection ID a server worker chooses (the SCID of its Initial and Handshake
 * packets, Retry SCIDs, NEW_CONNECTION_ID) starts with a byte equal to the worker index
 * modulo the worker count. A classic BPF program attached to the reuseport group reads the
 * first byte of the destination connection ID - offset 1 in a short-header packet, offset 6
 * in a long-header one - and picks the socket at that byte modulo the worker count. A
 * client's first flight (Initial, 0-RTT) carries a DCID the client chose at random, so it
 * lands on the worker its first byte names; every later packet carries one of that worker's
 * own IDs and lands there too, across NAT rebinding and migration. Packets too short to
 * read go to worker 0, which answers them as any worker would.
 *
 * Sockets of the group are indexed in the order they were bound: bind worker 0 first, then
 * 1, 2, ... Unprivileged; no state beyond the socket.
 */
#ifndef MOQ_QUIC_STEER_H
#define MOQ_QUIC_STEER_H

#include <stddef.h>
#include <stdint.h>

/* Offsets of the DCID's first byte in the UDP payload. */
#define MOQ_QUIC_STEER_SHORT_OFF 1
#define MOQ_QUIC_STEER_LONG_OFF  6

/* The worker a datagram is steered to (what the BPF program computes; for tests and for
 * the worker that receives a datagram meant for another during startup). */
unsigned moq_quic_steer_worker(const uint8_t *pkt, size_t len, unsigned workers);

/* Make cid[0] name `worker` of `workers` (keeps the other bytes, which stay random). */
void moq_quic_steer_mark(uint8_t *cid, unsigned worker, unsigned workers);

/* Attach the steering program to fd's reuseport group. 0, or MOQ_ERR_IO (errno kept). */
int moq_quic_steer_attach(int fd, unsigned workers);

#endif
