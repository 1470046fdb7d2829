/*
 * service.h - the relay as a systemd Type=notify service: READY=1 once every listener is
 * bound, WATCHDOG=1 at half the interval the manager asks for while the loop runs, and
 * STOPPING=1 when shutdown begins. Without $NOTIFY_SOCKET every call does nothing.
 *
 * The caller owns struct moq_service (usually on the stack of the run loop); it holds a
 * watchdog timer on the loop between moq_service_ready and moq_service_stop.
 */
#ifndef MOQ_RELAY_SERVICE_H
#define MOQ_RELAY_SERVICE_H

#include <ev.h>
#include <stdbool.h>

struct moq_service {
    struct ev_loop *loop;
    ev_timer watchdog;
    bool watching;
};

/* Every listener is bound: tell the manager, and start watchdog pings when asked for. */
void moq_service_ready(struct moq_service *s, struct ev_loop *loop);
/* Shutdown has begun (sessions are closing); the watchdog keeps pinging until stop. */
void moq_service_stopping(struct moq_service *s);
/* Stop the watchdog pings; call before the loop goes away. */
void moq_service_stop(struct moq_service *s);

#endif
