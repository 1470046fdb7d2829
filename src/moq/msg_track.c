/* TRACK / TRACK_INFO (05), FETCH (05), PROBE (03+) and GOAWAY (04+). */
#include "moq/codec_internal.h"

int moq_encode_track(moq_buf *out, moq_version v, const struct moq_msg_track *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->track_stream) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_path(out, m->broadcast);
    if (rv == 0) rv = moq_codec_put_string(out, m->track, MOQ_MAX_NAME_LEN);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_track(moq_version v, uint8_t *body, size_t len, struct moq_msg_track *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->track_stream) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_path(&r, &out->broadcast);
    if (rv == 0) rv = moq_codec_rd_string(&r, MOQ_MAX_NAME_LEN, &out->track);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

int moq_encode_track_info(moq_buf *out, moq_version v, const struct moq_msg_track_info *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->track_stream) return MOQ_ERR_UNSUPPORTED;
    if (m->timescale == 0) return MOQ_ERR_INVALID;
    size_t start = codec_msg_begin(out);
    int rv = moq_buf_put_u8(out, m->priority);
    if (rv == 0) rv = moq_codec_put_bool(out, m->ordered);
    if (rv == 0) rv = moq_codec_put_varint(out, m->max_latency_ms);
    if (rv == 0) rv = moq_codec_put_varint(out, m->timescale);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_track_info(moq_version v, uint8_t *body, size_t len, struct moq_msg_track_info *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->track_stream) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_u8(&r, &out->priority);
    if (rv == 0) rv = moq_codec_rd_bool(&r, &out->ordered);
    if (rv == 0) rv = moq_codec_rd_varint(&r, &out->max_latency_ms);
    if (rv == 0) rv = moq_codec_rd_varint(&r, &out->timescale);
    if (rv < 0) return rv;
    if (out->timescale == 0) return MOQ_ERR_PROTO;
    return moq_codec_rd_end(&r);
}

int moq_encode_fetch(moq_buf *out, moq_version v, const struct moq_fetch *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->fetch) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_path(out, m->broadcast);
    if (rv == 0) rv = moq_codec_put_string(out, m->track, MOQ_MAX_NAME_LEN);
    if (rv == 0) rv = moq_buf_put_u8(out, m->priority);
    if (rv == 0) rv = moq_codec_put_varint(out, m->group);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_fetch(moq_version v, uint8_t *body, size_t len, struct moq_fetch *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->fetch) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_path(&r, &out->broadcast);
    if (rv == 0) rv = moq_codec_rd_string(&r, MOQ_MAX_NAME_LEN, &out->track);
    if (rv == 0) rv = moq_codec_rd_u8(&r, &out->priority);
    if (rv == 0) rv = moq_codec_rd_varint(&r, &out->group);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

int moq_encode_probe(moq_buf *out, moq_version v, const struct moq_probe *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->probe) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_varint(out, m->bitrate_bps);
    if (rv == 0 && c->probe_rtt) rv = moq_codec_put_varint(out, m->rtt_ms);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_probe(moq_version v, uint8_t *body, size_t len, struct moq_probe *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->probe) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    out->rtt_ms = 0;
    int rv = moq_codec_rd_varint(&r, &out->bitrate_bps);
    if (rv == 0 && c->probe_rtt) rv = moq_codec_rd_varint(&r, &out->rtt_ms);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

int moq_encode_goaway(moq_buf *out, moq_version v, const struct moq_goaway *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->goaway) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    return moq_codec_msg_end(out, start, start, moq_codec_put_string(out, m->uri, MOQ_MAX_URI_LEN));
}

int moq_decode_goaway(moq_version v, uint8_t *body, size_t len, struct moq_goaway *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->goaway) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_string(&r, MOQ_MAX_URI_LEN, &out->uri);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}
