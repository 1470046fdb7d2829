/* Fuzz target: the control-stream reader and every control-message decoder of lite-01 .. 06.
 *
 * Input: byte 0 picks the version (bits 0-1: 03, 04, 05, 05; with bit 3 set: 01, 02, 06-wip,
 * 06-wip) and typed framing (bit 2); byte 1 seeds how the
 * rest is split into pieces. Each message the reader yields is offered to every decoder of
 * that version; whatever decodes must re-encode, and the re-encoding must decode and encode
 * to the same bytes again. The same stream read as one piece must give the same messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moq/codec.h"
#include "moq/stream_reader.h"

static const moq_version versions[] = {MOQ_LITE_03, MOQ_LITE_04, MOQ_LITE_05,     MOQ_LITE_05,
                                       MOQ_LITE_01, MOQ_LITE_02, MOQ_LITE_06_WIP, MOQ_LITE_06_WIP};

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

/* Decode body as message kind k; on success re-encode into out. Returns decode result. */
static int decode_encode(int k, moq_version v, uint64_t type, uint8_t *body, size_t len,
                         moq_buf *out)
{
    int rv;
    switch (k) {
    case 0: {
        struct moq_setup m;
        if ((rv = moq_decode_setup(v, body, len, &m)) == 0)
            CHECK(moq_encode_setup(out, v, &m) == 0);
        return rv;
    }
    case 1: {
        struct moq_announce_request m;
        if ((rv = moq_decode_announce_request(v, body, len, &m)) == 0)
            CHECK(moq_encode_announce_request(out, v, &m) == 0);
        return rv;
    }
    case 2: {
        struct moq_announce_ok m;
        if ((rv = moq_decode_announce_ok(v, body, len, &m)) == 0)
            CHECK(moq_encode_announce_ok(out, v, &m) == 0);
        return rv;
    }
    case 3: {
        struct moq_announce m;
        if ((rv = moq_decode_announce(v, body, len, &m)) == 0)
            CHECK(moq_encode_announce(out, v, &m) == 0);
        return rv;
    }
    case 4: {
        struct moq_subscribe m;
        if ((rv = moq_decode_subscribe(v, body, len, &m)) == 0)
            CHECK(moq_encode_subscribe(out, v, &m) == 0);
        return rv;
    }
    case 5: {
        struct moq_subscribe_opts m;
        if ((rv = moq_decode_subscribe_update(v, body, len, &m)) == 0)
            CHECK(moq_encode_subscribe_update(out, v, &m) == 0);
        return rv;
    }
    case 6: {
        struct moq_subscribe_response m;
        if ((rv = moq_decode_subscribe_response(v, type, body, len, &m)) == 0)
            CHECK(moq_encode_subscribe_response(out, v, &m) == 0);
        return rv;
    }
    case 7: {
        struct moq_msg_track m;
        if ((rv = moq_decode_track(v, body, len, &m)) == 0)
            CHECK(moq_encode_track(out, v, &m) == 0);
        return rv;
    }
    case 8: {
        struct moq_msg_track_info m;
        if ((rv = moq_decode_track_info(v, body, len, &m)) == 0)
            CHECK(moq_encode_track_info(out, v, &m) == 0);
        return rv;
    }
    case 9: {
        struct moq_fetch m;
        if ((rv = moq_decode_fetch(v, body, len, &m)) == 0)
            CHECK(moq_encode_fetch(out, v, &m) == 0);
        return rv;
    }
    case 10: {
        struct moq_probe m;
        if ((rv = moq_decode_probe(v, body, len, &m)) == 0)
            CHECK(moq_encode_probe(out, v, &m) == 0);
        return rv;
    }
    case 11: {
        struct moq_goaway m;
        if ((rv = moq_decode_goaway(v, body, len, &m)) == 0)
            CHECK(moq_encode_goaway(out, v, &m) == 0);
        return rv;
    }
    case 12: {
        struct moq_group_header m;
        if ((rv = moq_decode_group_header(v, body, len, &m)) == 0)
            CHECK(moq_encode_group_header(out, v, &m) == 0);
        return rv;
    }
    case 13: {
        struct moq_announce_init m;
        if ((rv = moq_decode_announce_init(v, body, len, &m)) == 0) {
            CHECK(moq_encode_announce_init(out, v, m.suffixes, m.count) == 0);
            moq_announce_init_free(&m);
        }
        return rv;
    }
    case 14: {
        uint64_t bitrate;
        if ((rv = moq_decode_session_info(v, body, len, &bitrate)) == 0)
            CHECK(moq_encode_session_info(out, v, bitrate) == 0);
        return rv;
    }
    default: {
        struct moq_announce m;
        if ((rv = moq_decode_announce_typed(v, type, body, len, &m)) == 0)
            CHECK(moq_encode_announce(out, v, &m) == 0);
        return rv;
    }
    }
}
#define N_KINDS 16

/* Whether message kind k carries a type before its size on version v. */
static bool kind_typed(int k, moq_version v)
{
    if (k == 6) return moq_subscribe_responses_typed(v);
    return k == 15;
}

static void check_message(moq_version v, bool typed, uint64_t type, const uint8_t *body, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy);
    moq_buf first, second;
    moq_buf_init(&first);
    moq_buf_init(&second);
    for (int k = 0; k < N_KINDS; k++) {
        if (kind_typed(k, v) != typed) continue;
        if (len) memcpy(copy, body, len);
        moq_buf_reset(&first);
        if (decode_encode(k, v, type, copy, len, &first) != 0) continue;
        /* first = encode(decode(body)); it must be stable under another round */
        uint64_t t2;
        const uint8_t *b2;
        size_t l2;
        CHECK(moq_msg_split(first.data, first.len, typed, SIZE_MAX, &t2, &b2, &l2) ==
              (int)first.len);
        uint8_t *again = malloc(l2 ? l2 : 1);
        CHECK(again);
        if (l2) memcpy(again, b2, l2);
        moq_buf_reset(&second);
        CHECK(decode_encode(k, v, t2, again, l2, &second) == 0);
        CHECK(second.len == first.len && memcmp(second.data, first.data, first.len) == 0);
        free(again);
    }
    moq_buf_free(&first);
    moq_buf_free(&second);
    free(copy);
}

struct digest {
    size_t count;
    uint64_t hash;
    int end;
};

static void read_all(moq_version v, bool typed, const uint8_t *data, size_t size, uint8_t seed,
                     bool check, struct digest *d)
{
    moq_ctrl_reader r;
    moq_ctrl_reader_init(&r, typed ? MOQ_CTRL_TYPED : 0, 4096);
    d->count = 0;
    d->hash = 1469598103934665603ull;
    size_t off = 0;
    uint32_t rng = seed * 2654435761u + 1;
    int rv;
    do {
        rng = rng * 1103515245u + 12345u;
        size_t take = seed == 0 ? size : 1 + (rng >> 16) % 17;
        if (take > size - off) take = size - off;
        const uint8_t *in = data + off;
        size_t in_len = take;
        off += take;
        struct moq_ctrl_msg m;
        while ((rv = moq_ctrl_reader_next(&r, &in, &in_len, off == size, &m)) == 1) {
            d->count++;
            d->hash = (d->hash ^ m.type) * 1099511628211ull;
            for (size_t i = 0; i < m.len; i++)
                d->hash = (d->hash ^ m.body[i]) * 1099511628211ull;
            if (check) check_message(v, typed, m.type, m.body, m.len);
        }
        CHECK(rv < 0 || in_len == 0); /* errors stop consuming */
    } while (rv == 0 && off < size);
    d->end = rv;
    CHECK(rv < 0); /* a finished stream always ends in CLOSED or an error */
    moq_ctrl_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    moq_version v = versions[(data[0] & 3) | ((data[0] >> 1) & 4)];
    bool typed = data[0] & 4;
    uint8_t seed = data[1];
    struct digest split, whole;
    read_all(v, typed, data + 2, size - 2, seed, true, &split);
    read_all(v, typed, data + 2, size - 2, 0, false, &whole);
    CHECK(split.count == whole.count && split.hash == whole.hash && split.end == whole.end);
    return 0;
}
