/* service.c - readiness, watchdog and stopping notifications (see service.h). */
#include "relay/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"
#include "util/log.h"
#include "util/notify.h"

static void notify(const char *state, const char *what)
{
    int rc = moq_notify(state);
    if (rc > 0) moq_debug("service", "told the service manager: %s", what);
    if (rc < 0)
        moq_warn("service", "cannot tell the service manager at $NOTIFY_SOCKET (%s): %s", what,
                 rc == MOQ_ERR_IO ? strerror(errno) : moq_strerror(rc));
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    if (moq_notify("WATCHDOG=1") < 0) moq_debug("service", "watchdog ping not delivered");
}

void moq_service_ready(struct moq_service *s, struct ev_loop *loop)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    char state[64];
    snprintf(state, sizeof(state), "READY=1\nMAINPID=%ld\nSTATUS=accepting sessions",
             (long)getpid());
    notify(state, "ready");
    uint64_t us = moq_notify_watchdog_us(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid());
    if (!us || !getenv("NOTIFY_SOCKET")) return;
    /* the manager's advice: ping at half the interval */
    double every = (double)us / 2e6;
    ev_timer_init(&s->watchdog, watchdog_cb, every, every);
    ev_timer_start(loop, &s->watchdog);
    s->watching = true;
    moq_info("service", "watchdog: pinging the service manager every %.3g s", every);
}

void moq_service_stopping(struct moq_service *s)
{
    notify("STOPPING=1\nSTATUS=closing sessions", "stopping");
}

void moq_service_stop(struct moq_service *s)
{
    if (s->watching) ev_timer_stop(s->loop, &s->watchdog);
    s->watching = false;
}
