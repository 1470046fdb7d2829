/*
 * time.h - clocks. All protocol code takes "now" as an argument (sans-I/O); only the
 * event-loop layers call these.
 */
#ifndef MOQ_UTIL_TIME_H
#define MOQ_UTIL_TIME_H

#include <stdint.h>

#define MOQ_US_PER_MS 1000ull
#define MOQ_US_PER_S 1000000ull

/* Monotonic time in microseconds. */
uint64_t moq_now_us(void);
/* Monotonic time in nanoseconds (ngtcp2's timestamp unit). */
uint64_t moq_now_ns(void);
/* Wall-clock time in milliseconds since the Unix epoch. */
uint64_t moq_wall_ms(void);
/* Wall-clock time in seconds since the Unix epoch. */
int64_t moq_wall_s(void);

#endif
