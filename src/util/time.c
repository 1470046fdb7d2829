#include "util/time.h"

#include <time.h>

uint64_t moq_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t moq_now_us(void)
{
    return moq_now_ns() / 1000ull;
}

uint64_t moq_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

int64_t moq_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

uint64_t moq_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

static uint64_t system_now_us(void *ctx)
{
    return moq_now_us();
}

static uint64_t system_wall_us(void *ctx)
{
    return moq_wall_us();
}

const moq_clock moq_system_clock = {system_now_us, system_wall_us, NULL};
