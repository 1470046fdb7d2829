/*
 * quic_flood - abusive QUIC peers for the abuse tests, on loopback only.
 *
 *   quic_flood garbage HOST PORT N      N forged Initial packets (valid header, random
 *                                       payload) from one socket, then exit
 *   quic_flood half-open HOST PORT N    N real handshakes started and never finished:
 *                                       each sends its first flight, then the process holds
 *                                       the sockets without reading until killed
 *
 * HOST must be a loopback literal (127.0.0.1 or ::1). Prints "sent N" / "started N" when done.
 */
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "quic/quic.h"

#define INITIAL_SIZE 1200

static int loopback_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (strcmp(host, "127.0.0.1") == 0) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = sizeof(*a);
        return 0;
    }
    if (strcmp(host, "::1") == 0) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        *len = sizeof(*a);
        return 0;
    }
    return -1;
}

/* A long-header Initial of QUIC v1 with random CIDs and a payload no key decrypts. */
static size_t forge_initial(uint8_t *p)
{
    size_t o = 0;
    p[o++] = 0xc3; /* long header, fixed bit, Initial, 4-byte packet number */
    p[o++] = 0, p[o++] = 0, p[o++] = 0, p[o++] = 1;
    p[o++] = 16;
    for (int i = 0; i < 16; i++)
        p[o++] = (uint8_t)rand();
    p[o++] = 8;
    for (int i = 0; i < 8; i++)
        p[o++] = (uint8_t)rand();
    p[o++] = 0; /* no token */
    size_t rest = INITIAL_SIZE - o - 2;
    p[o++] = (uint8_t)(0x40 | (rest >> 8));
    p[o++] = (uint8_t)rest;
    while (o < INITIAL_SIZE)
        p[o++] = (uint8_t)rand();
    return o;
}

static int garbage(const char *host, int port, int n)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (loopback_addr(host, port, &ss, &sl) < 0) return 2;
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0) return 1;
    uint8_t pkt[INITIAL_SIZE];
    for (int i = 0; i < n; i++) {
        size_t len = forge_initial(pkt);
        if (send(fd, pkt, len, 0) < 0) usleep(1000); /* loopback buffer full: let it drain */
        if (i % 256 == 255) usleep(2000);
    }
    close(fd);
    printf("sent %d\n", n);
    return 0;
}

static void never_called(void *ctx, moq_transport *t, int err, const char *reason)
{
    (void)ctx, (void)t, (void)err, (void)reason;
}

static int no_verify(void *ctx, gnutls_session_t s, const char *hostname)
{
    (void)ctx, (void)s, (void)hostname;
    return 0;
}

static int half_open(const char *host, int port, int n)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (loopback_addr(host, port, &ss, &sl) < 0) return 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 32) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 32 ? rl.rlim_max : (rlim_t)n + 32;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct ev_loop *loop = ev_default_loop(0);
    static const char *const alpn[] = {"moq-lite-05"};
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct moq_quic_client_config cfg = {
        .host = host, .port = portstr, .alpn = alpn, .alpn_count = 1, .tls_setup = no_verify};
    for (int i = 0; i < n; i++) {
        if (moq_quic_connect(loop, &cfg, never_called, NULL, NULL) < 0) return 1;
    }
    /* One iteration sends every first flight; the loop never runs again, so the answers are
     * never read and no handshake completes. */
    ev_run(loop, EVRUN_NOWAIT);
    printf("started %d\n", n);
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: quic_flood garbage|half-open HOST PORT N\n");
        return 2;
    }
    int port = atoi(argv[3]), n = atoi(argv[4]);
    if (port <= 0 || port > 65535 || n <= 0 || n > 1000000) return 2;
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[1], "garbage") == 0) return garbage(argv[2], port, n);
    if (strcmp(argv[1], "half-open") == 0) return half_open(argv[2], port, n);
    return 2;
}
