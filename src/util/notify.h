/*
 * notify.h - the service manager's notification protocol (systemd's sd_notify, Type=notify):
 * one datagram of newline-separated "KEY=VALUE" assignments ("READY=1", "STOPPING=1",
 * "WATCHDOG=1", "STATUS=...") sent to the AF_UNIX datagram socket that $NOTIFY_SOCKET names:
 * a filesystem path, or "@name" for the abstract namespace. Also reads the watchdog interval
 * the manager asks for ($WATCHDOG_USEC, for the process $WATCHDOG_PID names).
 *
 * No state: every call opens and closes its own socket. Nothing to free.
 */
#ifndef MOQ_UTIL_NOTIFY_H
#define MOQ_UTIL_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

/* Send `state` to the socket named `socket` ("/path" or "@abstract"). Returns 0,
 * MOQ_ERR_INVALID for a name that is neither (or too long), MOQ_ERR_IO when the datagram
 * could not be sent (errno says why). */
int moq_notify_send(const char *socket, const char *state);

/* moq_notify_send to $NOTIFY_SOCKET. Returns 1 when sent, 0 when the variable is unset or
 * empty (no service manager listens), or the negative error of moq_notify_send. */
int moq_notify(const char *state);

/* The watchdog interval in microseconds given the values of $WATCHDOG_USEC and
 * $WATCHDOG_PID (either may be NULL) for the process `self`: the interval when it is a
 * positive integer and the PID is unset or `self`; 0 (no watchdog) otherwise. */
uint64_t moq_notify_watchdog_us(const char *usec, const char *pid, pid_t self);

#endif
