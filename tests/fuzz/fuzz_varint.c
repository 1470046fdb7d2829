/* Fuzz target: QUIC varint decoding and the buffer reader; every decoded value must
 * re-encode to a form that decodes to the same value. */
#include <stdint.h>
#include <stdlib.h>

#include "util/buf.h"
#include "util/varint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    moq_rd r;
    moq_rd_init(&r, data, size);
    uint64_t v;
    while (moq_rd_varint(&r, &v) == 0) {
        uint8_t out[8];
        uint8_t *end = moq_varint_put(out, v);
        uint64_t back;
        if (moq_varint_get(out, (size_t)(end - out), &back) != (int)(end - out) || back != v)
            abort();
    }
    moq_rd_init(&r, data, size);
    const uint8_t *p;
    size_t n;
    while (moq_rd_lenbytes(&r, 1024, &p, &n) == 0) {
    }
    return 0;
}
