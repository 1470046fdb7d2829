/*
 * udp.h - the UDP socket layer of src/quic: bind/connect, batched receive (recvmmsg with
 * destination-address cmsgs) and batched send (sendmsg with a UDP_SEGMENT cmsg, falling back
 * to one datagram per segment when the kernel refuses GSO).
 *
 * Sockets are created non-blocking and close-on-exec; the caller owns and closes them.
 * moq_quic_udp_rx owns its receive buffers (moq_quic_udp_rx_free).
 */
#ifndef MOQ_QUIC_UDP_H
#define MOQ_QUIC_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>

#define MOQ_QUIC_UDP_SOCKBUF (4 * 1024 * 1024)
/* Receive slot size: larger than the max_udp_payload_size we advertise (1500). */
#define MOQ_QUIC_UDP_RX_SLOT      2048
#define MOQ_QUIC_UDP_MAX_SEGMENTS 64
#define MOQ_QUIC_UDP_MAX_BATCH    65000 /* bytes in one GSO send */

typedef struct moq_quic_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} moq_quic_addr;

/* Parse "[::]:4443", "0.0.0.0:443", "127.0.0.1:0", "[::1]:0", "host:port" (numeric port;
 * an empty host means the IPv6 wildcard). MOQ_ERR_CONFIG on a malformed address. */
int moq_quic_udp_parse_listen(const char *listen, moq_quic_addr *out);

/* A listening socket on addr: 4 MiB buffers, destination-address cmsgs enabled, dual stack
 * when addr is the IPv6 wildcard. *bound receives the actual address (port filled in). */
int moq_quic_udp_listen(const moq_quic_addr *addr, int *fd, moq_quic_addr *bound);
/* As moq_quic_udp_listen; with reuseport the socket joins (or starts) the SO_REUSEPORT group
 * of addr, which worker threads sharing one port form (quic/steer.h). */
int moq_quic_udp_listen_shared(const moq_quic_addr *addr, bool reuseport, int *fd,
                               moq_quic_addr *bound);
/* Before the first socket of a new SO_REUSEPORT group: whether addr is free. A socket
 * without SO_REUSEPORT is bound to it and closed again, so a port some other socket holds
 * - another relay's group included, which a reuseport socket would silently join - fails
 * with MOQ_ERR_IO and errno EADDRINUSE. Port 0 in *addr is replaced by the port it got. */
int moq_quic_udp_claim(moq_quic_addr *addr);
/* A socket connected to remote; *local receives the local address chosen by the kernel. */
int moq_quic_udp_connect(const moq_quic_addr *remote, int *fd, moq_quic_addr *local);

void moq_quic_addr_set_port(moq_quic_addr *a, uint16_t port);

/* "[addr]:port" or "addr:port"; IPv4-mapped IPv6 addresses print as IPv4. */
void moq_quic_addr_format(const moq_quic_addr *a, char *buf, size_t len);
bool moq_quic_addr_equal(const moq_quic_addr *a, const moq_quic_addr *b);

struct moq_quic_udp_msg {
    uint8_t *data;
    size_t len;
    moq_quic_addr remote;
    moq_quic_addr local; /* destination address of the datagram (port = bound port) */
};

typedef struct moq_quic_udp_rx {
    size_t slots;
    uint8_t *bufs;
    struct moq_quic_udp_msg *msgs;
    void *priv; /* mmsghdr/iovec/cmsg arrays */
} moq_quic_udp_rx;

int moq_quic_udp_rx_init(moq_quic_udp_rx *rx, size_t slots);
void moq_quic_udp_rx_free(moq_quic_udp_rx *rx);
/* Receive up to rx->slots datagrams without blocking. Returns the count (0 when none),
 * or MOQ_ERR_IO. bound: the socket's bound address (its port completes msg.local). Truncated
 * datagrams are dropped. */
int moq_quic_udp_recv(moq_quic_udp_rx *rx, int fd, const moq_quic_addr *bound);

/* Send len bytes as datagrams of gso_size bytes (the last may be shorter) from local (NULL:
 * let the kernel choose) to remote (NULL on a connected socket). *gso is cleared when the
 * kernel rejects UDP_SEGMENT, and segments then go one per datagram. Returns the bytes
 * sent: len, or fewer when the socket buffer filled up (MOQ_ERR_AGAIN if none went out).
 * Other errors drop the datagrams (QUIC recovers) and return len. */
long moq_quic_udp_send(int fd, bool *gso, const moq_quic_addr *local, const moq_quic_addr *remote,
                       const uint8_t *data, size_t len, size_t gso_size);

#endif
