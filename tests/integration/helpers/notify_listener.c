/* notify_listener SOCKET [tcp:PORT | udp:PORT]...
 *
 * A stand-in for systemd's end of Type=notify: binds the AF_UNIX datagram socket SOCKET (a
 * path, or @name in the abstract namespace), prints "listening", then for every datagram
 * "datagram from pid N" and each of its assignments on a line of its own. When a datagram
 * says READY=1 it first checks, at that moment, every listener given: "tcp:PORT open" (a
 * connection to 127.0.0.1:PORT succeeds) or "tcp:PORT closed", "udp:PORT bound" (a socket
 * has that local port in /proc/net/udp or udp6) or "udp:PORT unbound". Runs until killed. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int bind_notify_socket(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    if (len < 2 || len >= sizeof(sa.sun_path)) return -1;
    memcpy(sa.sun_path, name, len);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
        salen--;
    } else {
        unlink(name);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, salen) < 0) {
        perror(name);
        return -1;
    }
    return fd;
}

static bool tcp_open(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

static bool udp_bound_in(const char *table, int port)
{
    FILE *f = fopen(table, "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned local_port;
        if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x", &local_port) == 1)
            found = (int)local_port == port;
    }
    fclose(f);
    return found;
}

static void check_listeners(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        int port = atoi(argv[i] + 4);
        if (!strncmp(argv[i], "tcp:", 4))
            printf("%s %s\n", argv[i], tcp_open(port) ? "open" : "closed");
        else if (!strncmp(argv[i], "udp:", 4))
            printf("%s %s\n", argv[i],
                   udp_bound_in("/proc/net/udp", port) || udp_bound_in("/proc/net/udp6", port)
                       ? "bound"
                       : "unbound");
    }
}

static long sender_pid(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(c), sizeof(cred));
            return (long)cred.pid;
        }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: notify_listener SOCKET [tcp:PORT | udp:PORT]...\n");
        return 2;
    }
    int fd = bind_notify_socket(argv[1]);
    if (fd < 0) return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("listening\n");
    for (;;) {
        char buf[4096];
        union {
            struct cmsghdr align;
            char space[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {buf, sizeof(buf) - 1};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = &control,
                             .msg_controllen = sizeof(control)};
        ssize_t n = recvmsg(fd, &msg, 0);
        if (n < 0) {
            perror("recvmsg");
            return 1;
        }
        buf[n] = '\0';
        printf("datagram from pid %ld\n", sender_pid(&msg));
        if (strstr(buf, "READY=1")) check_listeners(argc, argv);
        printf("%s\n", buf);
    }
}
