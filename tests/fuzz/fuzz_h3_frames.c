/* Fuzz target: HTTP/3 and WebTransport parsers - SETTINGS bodies, QPACK field sections,
 * capsules and structured-field protocol lists. The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>

#include "h3/frames.h"

static int count(void *ctx, const char *item)
{
    (*(int *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: {
        struct moq_h3_settings s;
        moq_h3_decode_settings(p, n, &s);
        break;
    }
    case 1: {
        struct moq_h3_headers h;
        if (moq_h3_decode_headers(p, n, &h) == 0) {
            moq_h3_headers_get(&h, ":path");
            moq_h3_headers_free(&h);
        }
        break;
    }
    case 2: {
        uint64_t type;
        const uint8_t *payload;
        size_t plen;
        while (n) {
            int used = moq_h3_capsule(p, n, &type, &payload, &plen);
            if (used <= 0) break;
            p += used;
            n -= (size_t)used;
        }
        break;
    }
    default: {
        int items = 0;
        moq_sf_string_list((const char *)p, n, count, &items);
        char out[64];
        moq_sf_string_parse((const char *)p, n, out, sizeof(out));
        break;
    }
    }
    return 0;
}
