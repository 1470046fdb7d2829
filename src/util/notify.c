/* notify.c - service manager notifications over $NOTIFY_SOCKET (see notify.h). */
#include "util/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/err.h"

/* The address `name` stands for; returns its length, or 0 when it names no socket. */
static socklen_t notify_addr(const char *name, struct sockaddr_un *sa)
{
    size_t len = strlen(name);
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (len < 2 || len >= sizeof(sa->sun_path) || (name[0] != '/' && name[0] != '@')) return 0;
    memcpy(sa->sun_path, name, len);
    if (name[0] == '@') {
        sa->sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL, no terminator */
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

int moq_notify_send(const char *socket_name, const char *state)
{
    struct sockaddr_un sa;
    socklen_t salen = notify_addr(socket_name, &sa);
    if (!salen) return MOQ_ERR_INVALID;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return MOQ_ERR_IO;
    size_t len = strlen(state);
    ssize_t n = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)len ? 0 : MOQ_ERR_IO;
}

int moq_notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name) return 0;
    int rc = moq_notify_send(name, state);
    return rc < 0 ? rc : 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

uint64_t moq_notify_watchdog_us(const char *usec, const char *pid, pid_t self)
{
    uint64_t interval, owner;
    if (parse_u64(usec, &interval) < 0 || interval == 0) return 0;
    if (pid && *pid && (parse_u64(pid, &owner) < 0 || owner != (uint64_t)self)) return 0;
    return interval;
}
