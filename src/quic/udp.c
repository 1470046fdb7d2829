#include "quic/udp.h"
#include "util/err.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define CMSG_SPACE_RX                                                                              \
    (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)))

struct rx_priv {
    struct mmsghdr *hdrs;
    struct iovec *iovs;
    uint8_t *cmsgs; /* CMSG_SPACE_RX bytes per slot */
};

int moq_quic_udp_parse_listen(const char *listen, moq_quic_addr *out)
{
    char host[256];
    const char *port;
    if (!listen || !*listen) return MOQ_ERR_CONFIG;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof(host))
            return MOQ_ERR_CONFIG;
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof(host)) return MOQ_ERR_CONFIG;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        if (strchr(host, ':')) return MOQ_ERR_CONFIG; /* IPv6 needs brackets */
        port = colon + 1;
    }
    if (!*port) return MOQ_ERR_CONFIG;
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9') return MOQ_ERR_CONFIG;
    if (strtoul(port, NULL, 10) > 65535) return MOQ_ERR_CONFIG;

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = host[0] ? AF_UNSPEC : AF_INET6;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res) return MOQ_ERR_CONFIG;
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return MOQ_OK;
}

static void set_buffers(int fd)
{
    int size = MOQ_QUIC_UDP_SOCKBUF;
    /* The FORCE variants exceed rmem_max/wmem_max but need CAP_NET_ADMIN. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int new_socket(int family, int *fd)
{
    int s = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (s < 0) {
        moq_error("quic", "socket: %s", strerror(errno));
        return MOQ_ERR_IO;
    }
    set_buffers(s);
    *fd = s;
    return MOQ_OK;
}

void moq_quic_addr_set_port(moq_quic_addr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

static bool is_v6_any(const moq_quic_addr *a)
{
    if (a->ss.ss_family != AF_INET6) return false;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
    return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

int moq_quic_udp_listen(const moq_quic_addr *addr, int *fd, moq_quic_addr *bound)
{
    return moq_quic_udp_listen_shared(addr, false, fd, bound);
}

int moq_quic_udp_listen_shared(const moq_quic_addr *addr, bool reuseport, int *fd,
                               moq_quic_addr *bound)
{
    int s, on = 1, off = 0;
    int rv = new_socket(addr->ss.ss_family, &s);
    if (rv < 0) return rv;
    if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0) {
        int e = errno;
        moq_error("quic", "SO_REUSEPORT: %s", strerror(e));
        close(s);
        errno = e;
        return MOQ_ERR_IO;
    }
    if (addr->ss.ss_family == AF_INET6) {
        int v6only = is_v6_any(addr) ? off : on;
        setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
        setsockopt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
        if (!v6only) setsockopt(s, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
    } else {
        setsockopt(s, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
    }
    if (bind(s, (const struct sockaddr *)&addr->ss, addr->len) < 0) {
        char text[80];
        moq_quic_addr_format(addr, text, sizeof(text));
        int e = errno;
        moq_error("quic", "bind %s: %s", text, strerror(e));
        close(s);
        errno = e; /* the caller tells "address in use" apart */
        return MOQ_ERR_IO;
    }
    bound->len = sizeof(bound->ss);
    if (getsockname(s, (struct sockaddr *)&bound->ss, &bound->len) < 0) {
        close(s);
        return MOQ_ERR_IO;
    }
    *fd = s;
    return MOQ_OK;
}

int moq_quic_udp_claim(moq_quic_addr *addr)
{
    moq_quic_addr bound;
    int fd;
    int rv = moq_quic_udp_listen_shared(addr, false, &fd, &bound);
    if (rv < 0) return rv;
    close(fd);
    *addr = bound;
    return MOQ_OK;
}

int moq_quic_udp_connect(const moq_quic_addr *remote, int *fd, moq_quic_addr *local)
{
    int s;
    int rv = new_socket(remote->ss.ss_family, &s);
    if (rv < 0) return rv;
    if (connect(s, (const struct sockaddr *)&remote->ss, remote->len) < 0) {
        moq_debug("quic", "udp connect: %s", strerror(errno));
        close(s);
        return MOQ_ERR_IO;
    }
    local->len = sizeof(local->ss);
    if (getsockname(s, (struct sockaddr *)&local->ss, &local->len) < 0) {
        close(s);
        return MOQ_ERR_IO;
    }
    *fd = s;
    return MOQ_OK;
}

void moq_quic_addr_format(const moq_quic_addr *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(buf, len, "%s:%u", host, ntohs(sin6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
            snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
        }
    } else {
        snprintf(buf, len, "?");
    }
}

bool moq_quic_addr_equal(const moq_quic_addr *a, const moq_quic_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family) return false;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

int moq_quic_udp_rx_init(moq_quic_udp_rx *rx, size_t slots)
{
    memset(rx, 0, sizeof(*rx));
    struct rx_priv *p = calloc(1, sizeof(*p));
    rx->bufs = malloc(slots * MOQ_QUIC_UDP_RX_SLOT);
    rx->msgs = calloc(slots, sizeof(*rx->msgs));
    if (p) {
        p->hdrs = calloc(slots, sizeof(*p->hdrs));
        p->iovs = calloc(slots, sizeof(*p->iovs));
        p->cmsgs = calloc(slots, CMSG_SPACE_RX);
    }
    rx->priv = p;
    rx->slots = slots;
    if (!p || !rx->bufs || !rx->msgs || !p->hdrs || !p->iovs || !p->cmsgs) {
        moq_quic_udp_rx_free(rx);
        return MOQ_ERR_NOMEM;
    }
    return MOQ_OK;
}

void moq_quic_udp_rx_free(moq_quic_udp_rx *rx)
{
    struct rx_priv *p = rx->priv;
    if (p) {
        free(p->hdrs);
        free(p->iovs);
        free(p->cmsgs);
        free(p);
    }
    free(rx->bufs);
    free(rx->msgs);
    memset(rx, 0, sizeof(*rx));
}

/* Fill m->local from the packet-info cmsgs (bound address when there are none). */
static void read_local(struct msghdr *h, const moq_quic_addr *bound, moq_quic_addr *local)
{
    *local = *bound;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&local->ss;
            sin6->sin6_addr = pi.ipi6_addr;
            return;
        }
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            if (bound->ss.ss_family == AF_INET) {
                ((struct sockaddr_in *)&local->ss)->sin_addr = pi.ipi_addr;
            } else {
                /* An IPv4 datagram on a dual-stack socket: v4-mapped, like the peer. */
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&local->ss;
                memset(&sin6->sin6_addr, 0, sizeof(sin6->sin6_addr));
                sin6->sin6_addr.s6_addr[10] = 0xff;
                sin6->sin6_addr.s6_addr[11] = 0xff;
                memcpy(&sin6->sin6_addr.s6_addr[12], &pi.ipi_addr, 4);
            }
            return;
        }
    }
}

int moq_quic_udp_recv(moq_quic_udp_rx *rx, int fd, const moq_quic_addr *bound)
{
    struct rx_priv *p = rx->priv;
    for (size_t i = 0; i < rx->slots; i++) {
        struct msghdr *h = &p->hdrs[i].msg_hdr;
        p->iovs[i].iov_base = rx->bufs + i * MOQ_QUIC_UDP_RX_SLOT;
        p->iovs[i].iov_len = MOQ_QUIC_UDP_RX_SLOT;
        h->msg_name = &rx->msgs[i].remote.ss;
        h->msg_namelen = sizeof(rx->msgs[i].remote.ss);
        h->msg_iov = &p->iovs[i];
        h->msg_iovlen = 1;
        h->msg_control = p->cmsgs + i * CMSG_SPACE_RX;
        h->msg_controllen = CMSG_SPACE_RX;
        h->msg_flags = 0;
    }
    int n;
    do {
        n = recvmmsg(fd, p->hdrs, (unsigned)rx->slots, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        /* A connected client socket reports ICMP errors here; the datagram is gone anyway. */
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) return 0;
        moq_debug("quic", "recvmmsg: %s", strerror(errno));
        return MOQ_ERR_IO;
    }
    int out = 0;
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &p->hdrs[i].msg_hdr;
        if (h->msg_flags & MSG_TRUNC) continue;
        struct moq_quic_udp_msg *m = &rx->msgs[out];
        if (out != i) m->remote = rx->msgs[i].remote;
        m->remote.len = h->msg_namelen;
        m->data = rx->bufs + (size_t)i * MOQ_QUIC_UDP_RX_SLOT;
        m->len = p->hdrs[i].msg_len;
        read_local(h, bound, &m->local);
        out++;
    }
    return out;
}

/* Append the source-address cmsg for local to the message. Returns bytes used. */
static size_t put_pktinfo(uint8_t *buf, const moq_quic_addr *local, int sock_family)
{
    struct cmsghdr *c = (struct cmsghdr *)buf;
    if (local->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&local->ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            struct in_pktinfo pi = {0};
            memcpy(&pi.ipi_spec_dst, &sin6->sin6_addr.s6_addr[12], 4);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(c), &pi, sizeof(pi));
            return CMSG_SPACE(sizeof(pi));
        }
        if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) return 0;
        struct in6_pktinfo pi = {0};
        pi.ipi6_addr = sin6->sin6_addr;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(pi));
    }
    if (local->ss.ss_family == AF_INET && sock_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&local->ss;
        if (sin->sin_addr.s_addr == htonl(INADDR_ANY)) return 0;
        struct in_pktinfo pi = {0};
        pi.ipi_spec_dst = sin->sin_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(pi));
    }
    return 0;
}

static long send_one(int fd, const moq_quic_addr *local, const moq_quic_addr *remote,
                     const uint8_t *data, size_t len, size_t gso_size)
{
    union {
        uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {(void *)data, len};
    struct msghdr h = {0};
    if (remote) {
        h.msg_name = (void *)&remote->ss;
        h.msg_namelen = remote->len;
    }
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    size_t used = 0;
    if (local) used += put_pktinfo(ctl.buf, local, remote ? remote->ss.ss_family : AF_UNSPEC);
    if (gso_size && len > gso_size) {
        struct cmsghdr *c = (struct cmsghdr *)(ctl.buf + used);
        uint16_t seg = (uint16_t)gso_size;
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(seg));
        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        used += CMSG_SPACE(sizeof(seg));
    }
    if (used) {
        h.msg_control = ctl.buf;
        h.msg_controllen = used;
    }
    ssize_t n;
    do {
        n = sendmsg(fd, &h, 0);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : (long)n;
}

long moq_quic_udp_send(int fd, bool *gso, const moq_quic_addr *local, const moq_quic_addr *remote,
                       const uint8_t *data, size_t len, size_t gso_size)
{
    if (gso_size == 0 || gso_size > len) gso_size = len;
    if (*gso || len == gso_size) {
        long n = send_one(fd, local, remote, data, len, len > gso_size ? gso_size : 0);
        if (n >= 0) return (long)len;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MOQ_ERR_AGAIN;
        if (len > gso_size &&
            (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
            moq_info("quic", "UDP GSO unavailable (%s), sending one datagram per call",
                     strerror(errno));
            *gso = false;
        } else {
            moq_debug("quic", "sendmsg: %s", strerror(errno));
            return (long)len;
        }
    }
    size_t off = 0;
    while (off < len) {
        size_t seg = len - off < gso_size ? len - off : gso_size;
        long n = send_one(fd, local, remote, data + off, seg, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return off ? (long)off : MOQ_ERR_AGAIN;
            moq_debug("quic", "sendmsg: %s", strerror(errno));
        }
        off += seg;
    }
    return (long)len;
}
