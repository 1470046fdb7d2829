/* Fuzz target: the scanner `moq bench` runs on the first frame of every group it receives
 * (any publisher's bytes). Checks: no read outside the input, a success always carries a
 * timestamp, and a header written from values taken from the input scans back to them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

static uint64_t take_u64(const uint8_t *d, size_t n, size_t at)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && at + i < n; i++)
        v = v << 8 | d[at + i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so ASan sees any read past the end */
    uint8_t *copy = calloc(1, size ? size : 1);
    CHECK(copy);
    if (size) memcpy(copy, data, size);
    struct bench_header_in in;
    if (bench_header_scan(copy, size, &in) == 0) CHECK(in.has_ms);
    free(copy);

    struct bench_header h = {
        .connection = take_u64(data, size, 0),
        .broadcast = "bench/0/1/2",
        .group = take_u64(data, size, 8),
        .fps = take_u64(data, size, 16),
        .frame_size = take_u64(data, size, 24) % 4096,
        .group_size = take_u64(data, size, 32),
        .timestamp_us = take_u64(data, size, 40),
    };
    size_t len = bench_header_len(&h, (size_t)h.frame_size);
    CHECK(len >= h.frame_size);
    uint8_t *buf = malloc(len);
    CHECK(buf);
    bench_header_write(&h, (size_t)h.frame_size, buf);
    CHECK(bench_header_scan(buf, len, &in) == 0);
    CHECK(in.has_group && in.group == h.group && in.fps == h.fps);
    CHECK(in.timestamp_ms == h.timestamp_us / 1000 && in.frame_size == h.frame_size);
    free(buf);
    return 0;
}
