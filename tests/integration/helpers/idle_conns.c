/*
 * idle_conns - open N TCP connections to a loopback port and hold them without sending a
 * byte, to use up a server's file descriptors.
 *
 *   idle_conns PORT N
 *
 * Prints "open N" once every connection is established (the kernel completes a handshake
 * even when the server cannot accept it yet), then "closed K" whenever the count of
 * connections the server has closed changes. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: idle_conns PORT N\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    if (port <= 0 || port > 65535 || n <= 0 || n > 4096) {
        fprintf(stderr, "idle_conns: bad PORT or N\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 16 ? rl.rlim_max : (rlim_t)n + 16;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct pollfd *fds = calloc((size_t)n, sizeof(*fds));
    if (!fds) return 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            fprintf(stderr, "idle_conns: connection %d: %s\n", i, strerror(errno));
            return 1;
        }
        fds[i].fd = fd;
        fds[i].events = POLLIN;
    }
    printf("open %d\n", n);
    fflush(stdout);
    int closed = 0;
    for (;;) {
        if (poll(fds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            char buf[512];
            ssize_t r = read(fds[i].fd, buf, sizeof(buf));
            if (r > 0) continue; /* a response before the close: keep reading */
            close(fds[i].fd);
            fds[i].fd = -1;
            closed++;
            printf("closed %d\n", closed);
            fflush(stdout);
        }
    }
}
