/* Data plane encodings: GROUP header, FRAME header, datagram body. */
#include "moq/codec_internal.h"
#include "util/varint.h"

#include <string.h>

/* |delta| must stay below 2^61 so that its zigzag form fits a varint. */
#define ZIGZAG_DELTA_LIMIT (1ll << 61)

int moq_encode_group_header(moq_buf *out, moq_version v, const struct moq_group_header *m)
{
    if (!codec_caps(v)) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_varint(out, m->sub_id);
    if (rv == 0) rv = moq_codec_put_varint(out, m->sequence);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_group_header(moq_version v, uint8_t *body, size_t len, struct moq_group_header *out)
{
    if (!codec_caps(v)) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_varint(&r, &out->sub_id);
    if (rv == 0) rv = moq_codec_rd_varint(&r, &out->sequence);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

int moq_group_header_pack(uint8_t out[MOQ_GROUP_HEADER_MAX], bool with_stream_type, uint64_t sub_id,
                          uint64_t sequence)
{
    if (sub_id > MOQ_VARINT_MAX || sequence > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    uint8_t *p = out;
    if (with_stream_type) *p++ = MOQ_UNI_GROUP;
    size_t body = moq_varint_len(sub_id) + moq_varint_len(sequence);
    *p++ = (uint8_t)body; /* at most 16: always a one-byte varint */
    p = moq_varint_put(p, sub_id);
    p = moq_varint_put(p, sequence);
    return (int)(p - out);
}

int moq_frame_header_pack(uint8_t out[MOQ_FRAME_HEADER_MAX], moq_version v, uint64_t prev_ts,
                          uint64_t ts, uint64_t payload_size)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    if (payload_size > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    uint8_t *p = out;
    if (c->frame_timestamps) {
        if (ts > MOQ_VARINT_MAX || prev_ts > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
        int64_t delta = (int64_t)ts - (int64_t)prev_ts; /* both < 2^62: cannot overflow */
        if (delta >= ZIGZAG_DELTA_LIMIT || delta < -ZIGZAG_DELTA_LIMIT) return MOQ_ERR_INVALID;
        p = moq_varint_put(p, moq_zigzag_encode(delta));
    }
    p = moq_varint_put(p, payload_size);
    return (int)(p - out);
}

int moq_encode_datagram(moq_buf *out, moq_version v, const struct moq_datagram *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->datagrams) return MOQ_ERR_UNSUPPORTED;
    size_t start = out->len;
    int rv = moq_codec_put_varint(out, m->sub_id);
    if (rv == 0) rv = moq_codec_put_varint(out, m->group);
    if (rv == 0) rv = moq_codec_put_varint(out, m->timestamp);
    if (rv == 0) rv = moq_buf_append(out, m->payload, m->payload_len);
    if (rv < 0) out->len = start;
    return rv;
}

int moq_decode_datagram(moq_version v, const uint8_t *data, size_t len, struct moq_datagram *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->datagrams) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, data, len);
    int rv = moq_codec_rd_varint(&r, &out->sub_id);
    if (rv == 0) rv = moq_codec_rd_varint(&r, &out->group);
    if (rv == 0) rv = moq_codec_rd_varint(&r, &out->timestamp);
    if (rv < 0) return rv;
    out->payload = r.p;
    out->payload_len = moq_rd_left(&r);
    return 0;
}
