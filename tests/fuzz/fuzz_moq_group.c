/* Fuzz target: the group stream parser (and lite-05 fetch responses) under random splits.
 *
 * Input: byte 0 picks the version (bits 0-1), header or fetch mode (bit 2) and a small or the
 * default max frame size (bit 3); byte 1 seeds the split. The parse must give the same
 * events, payload bytes and outcome whether the stream arrives in one piece or many, payload
 * events must point into the current piece, and frame sizes must match their payloads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moq/codec.h"
#include "moq/stream_reader.h"

static const moq_version versions[] = {MOQ_LITE_03, MOQ_LITE_04, MOQ_LITE_05, MOQ_LITE_05};

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

static uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 1099511628211ull;
}

struct outcome {
    uint64_t hash;
    int end;
    uint64_t code;
};

static void parse(moq_version v, bool header, uint64_t max_frame, const uint8_t *data, size_t size,
                  uint8_t seed, struct outcome *o)
{
    moq_group_parser gp;
    CHECK(moq_group_parser_init(&gp, v, header, max_frame) == 0);
    o->hash = 1469598103934665603ull;
    uint64_t frame_size = 0, frame_got = 0;
    bool in_frame = false;
    size_t off = 0;
    uint32_t rng = seed * 2654435761u + 7;
    for (;;) {
        rng = rng * 1103515245u + 12345u;
        size_t take = seed == 0 ? size : (rng >> 16) % 23;
        if (take > size - off) take = size - off;
        const uint8_t *in = data + off, *piece = data + off;
        size_t in_len = take;
        off += take;
        bool fin = off == size;
        struct moq_group_event ev;
        int rv;
        while ((rv = moq_group_parser_next(&gp, &in, &in_len, fin, &ev)) > 0) {
            /* payload arrives in split-dependent pieces: hash its bytes, not its events */
            if (ev.kind != MOQ_GROUP_EV_PAYLOAD) o->hash = mix(o->hash, (uint64_t)ev.kind);
            switch (ev.kind) {
            case MOQ_GROUP_EV_HEADER:
                o->hash = mix(mix(o->hash, ev.sub_id), ev.sequence);
                break;
            case MOQ_GROUP_EV_FRAME:
                CHECK(!in_frame && ev.size <= max_frame);
                in_frame = true;
                frame_size = ev.size;
                frame_got = 0;
                o->hash = mix(mix(o->hash, ev.timestamp), ev.size);
                break;
            case MOQ_GROUP_EV_PAYLOAD:
                CHECK(in_frame && ev.len > 0 && ev.data >= piece &&
                      ev.data + ev.len <= piece + take);
                frame_got += ev.len;
                CHECK(frame_got <= frame_size);
                for (size_t i = 0; i < ev.len; i++)
                    o->hash = mix(o->hash, ev.data[i]);
                break;
            case MOQ_GROUP_EV_FRAME_END:
                CHECK(in_frame && frame_got == frame_size);
                in_frame = false;
                break;
            default:
                CHECK(ev.kind == MOQ_GROUP_EV_END && !in_frame && fin);
                o->end = rv;
                o->code = 0;
                return;
            }
        }
        CHECK(rv < 0 || in_len == 0); /* errors stop consuming */
        if (rv < 0) {
            o->end = rv;
            o->code = gp.error_code;
            return;
        }
        CHECK(!fin);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    moq_version v = versions[data[0] & 3];
    bool header = !(data[0] & 4) || !moq_caps_get(v)->fetch;
    uint64_t max_frame = (data[0] & 8) ? 64 : MOQ_DEFAULT_MAX_FRAME;
    struct outcome split, whole;
    parse(v, header, max_frame, data + 2, size - 2, data[1] | 1, &split);
    parse(v, header, max_frame, data + 2, size - 2, 0, &whole);
    CHECK(split.hash == whole.hash && split.end == whole.end && split.code == whole.code);
    return 0;
}
