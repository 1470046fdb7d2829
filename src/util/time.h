/*
 * time.h - clocks. All protocol code takes "now" as an argument or reads an injected
 * moq_clock (sans-I/O); only the event-loop layers call the functions below.
 */
#ifndef MOQ_UTIL_TIME_H
#define MOQ_UTIL_TIME_H

#include <stdint.h>

#define MOQ_US_PER_MS 1000ull
#define MOQ_US_PER_S  1000000ull

/* Monotonic time in microseconds. */
uint64_t moq_now_us(void);
/* Monotonic time in nanoseconds (ngtcp2's timestamp unit). */
uint64_t moq_now_ns(void);
/* Wall-clock time in milliseconds since the Unix epoch. */
uint64_t moq_wall_ms(void);
/* Wall-clock time in seconds since the Unix epoch. */
int64_t moq_wall_s(void);
/* Wall-clock time in microseconds since the Unix epoch. */
uint64_t moq_wall_us(void);

/* A clock handed to a protocol engine (src/moq, src/h3), which reads time through it alone:
 * the event-loop layers pass &moq_system_clock, tests a virtual clock they advance. */
typedef struct moq_clock {
    uint64_t (*now_us)(void *ctx);  /* monotonic microseconds: deadlines, ages */
    uint64_t (*wall_us)(void *ctx); /* microseconds since the Unix epoch: token expiry */
    void *ctx;
} moq_clock;

/* moq_now_us and moq_wall_us. */
extern const moq_clock moq_system_clock;

#endif
