/* Subscribe stream messages: SUBSCRIBE, SUBSCRIBE_UPDATE and the typed responses. */
#include "moq/codec_internal.h"

#include <string.h>

static int put_opts(moq_buf *out, const struct moq_subscribe_opts *m)
{
    int rv = moq_buf_put_u8(out, m->priority);
    if (rv == 0) rv = moq_codec_put_bool(out, m->ordered);
    if (rv == 0) rv = moq_codec_put_varint(out, m->max_latency_ms);
    if (rv == 0) rv = moq_codec_put_opt(out, m->has_start, m->start_group);
    if (rv == 0) rv = moq_codec_put_opt(out, m->has_end, m->end_group);
    return rv;
}

static int rd_opts(moq_rd *r, struct moq_subscribe_opts *out)
{
    int rv = moq_codec_rd_u8(r, &out->priority);
    if (rv == 0) rv = moq_codec_rd_bool(r, &out->ordered);
    if (rv == 0) rv = moq_codec_rd_varint(r, &out->max_latency_ms);
    if (rv == 0) rv = moq_codec_rd_opt(r, &out->has_start, &out->start_group);
    if (rv == 0) rv = moq_codec_rd_opt(r, &out->has_end, &out->end_group);
    return rv;
}

int moq_encode_subscribe(moq_buf *out, moq_version v, const struct moq_subscribe *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_varint(out, m->id);
    if (rv == 0) rv = moq_codec_put_path(out, m->broadcast);
    if (rv == 0) rv = moq_codec_put_string(out, m->track, MOQ_MAX_NAME_LEN);
    if (rv == 0 && c->subscribe_options) rv = put_opts(out, &m->opts);
    if (rv == 0 && !c->subscribe_options) rv = moq_buf_put_u8(out, m->opts.priority);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_subscribe(moq_version v, uint8_t *body, size_t len, struct moq_subscribe *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    memset(&out->opts, 0, sizeof(out->opts)); /* 01/02: defaults for what is not sent */
    int rv = moq_codec_rd_varint(&r, &out->id);
    if (rv == 0) rv = moq_codec_rd_path(&r, &out->broadcast);
    if (rv == 0) rv = moq_codec_rd_string(&r, MOQ_MAX_NAME_LEN, &out->track);
    if (rv == 0 && c->subscribe_options) rv = rd_opts(&r, &out->opts);
    if (rv == 0 && !c->subscribe_options) rv = moq_codec_rd_u8(&r, &out->opts.priority);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

int moq_encode_subscribe_update(moq_buf *out, moq_version v, const struct moq_subscribe_opts *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->subscribe_update) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    return moq_codec_msg_end(out, start, start, put_opts(out, m));
}

int moq_decode_subscribe_update(moq_version v, uint8_t *body, size_t len,
                                struct moq_subscribe_opts *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->subscribe_update) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = rd_opts(&r, out);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

/* Wire types per generation of the subscribe stream. */
enum { WIRE_OK = 0, WIRE_DROP_03 = 1, WIRE_START = 0, WIRE_END = 1, WIRE_DROP_05 = 2 };

bool moq_subscribe_responses_typed(moq_version v)
{
    const moq_caps *c = codec_caps(v);
    return c && c->subscribe_responses != MOQ_SUBRESP_UNTYPED_OK;
}

int moq_subscribe_response_type(moq_version v, int kind)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    if (c->subscribe_responses == MOQ_SUBRESP_UNTYPED_OK) {
        if (kind == MOQ_SUBSCRIBE_OK) return WIRE_OK;
    } else if (c->subscribe_responses == MOQ_SUBRESP_OK_DROP) {
        if (kind == MOQ_SUBSCRIBE_OK) return WIRE_OK;
        if (kind == MOQ_SUBSCRIBE_DROP) return WIRE_DROP_03;
    } else {
        if (kind == MOQ_SUBSCRIBE_START) return WIRE_START;
        if (kind == MOQ_SUBSCRIBE_END) return WIRE_END;
        if (kind == MOQ_SUBSCRIBE_DROP) return WIRE_DROP_05;
    }
    return MOQ_ERR_UNSUPPORTED;
}

static int response_kind(const moq_caps *c, uint64_t type)
{
    if (c->subscribe_responses == MOQ_SUBRESP_UNTYPED_OK) return MOQ_SUBSCRIBE_OK;
    if (c->subscribe_responses == MOQ_SUBRESP_OK_DROP) {
        if (type == WIRE_OK) return MOQ_SUBSCRIBE_OK;
        if (type == WIRE_DROP_03) return MOQ_SUBSCRIBE_DROP;
    } else {
        if (type == WIRE_START) return MOQ_SUBSCRIBE_START;
        if (type == WIRE_END) return MOQ_SUBSCRIBE_END;
        if (type == WIRE_DROP_05) return MOQ_SUBSCRIBE_DROP;
    }
    return MOQ_ERR_PROTO;
}

int moq_encode_subscribe_response(moq_buf *out, moq_version v,
                                  const struct moq_subscribe_response *m)
{
    int type = moq_subscribe_response_type(v, m->kind);
    if (type < 0) return type;
    const moq_caps *c = codec_caps(v);
    bool typed = c->subscribe_responses != MOQ_SUBRESP_UNTYPED_OK;
    size_t start = codec_msg_begin(out);
    int rv = typed ? moq_codec_put_varint(out, (uint64_t)type) : 0;
    size_t body = out->len;
    if (rv == 0) {
        switch (m->kind) {
        case MOQ_SUBSCRIBE_OK:
            if (typed)
                rv = put_opts(out, &m->ok);
            else if (c->subscribe_ok_priority)
                rv = moq_buf_put_u8(out, m->ok.priority);
            break;
        case MOQ_SUBSCRIBE_START:
        case MOQ_SUBSCRIBE_END:
            rv = moq_codec_put_varint(out, m->group);
            break;
        default:
            rv = moq_codec_put_varint(out, m->drop_start);
            if (rv == 0) rv = moq_codec_put_varint(out, m->drop_end);
            if (rv == 0) rv = moq_codec_put_varint(out, m->drop_error);
            break;
        }
    }
    return moq_codec_msg_end(out, start, body, rv);
}

int moq_decode_subscribe_response(moq_version v, uint64_t type, uint8_t *body, size_t len,
                                  struct moq_subscribe_response *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    *out = (struct moq_subscribe_response){0};
    int kind = response_kind(c, type);
    if (kind < 0) return kind;
    out->kind = kind;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv;
    switch (kind) {
    case MOQ_SUBSCRIBE_OK:
        if (c->subscribe_responses == MOQ_SUBRESP_OK_DROP)
            rv = rd_opts(&r, &out->ok);
        else
            rv = c->subscribe_ok_priority ? moq_codec_rd_u8(&r, &out->ok.priority) : 0;
        break;
    case MOQ_SUBSCRIBE_START:
    case MOQ_SUBSCRIBE_END:
        rv = moq_codec_rd_varint(&r, &out->group);
        break;
    default:
        rv = moq_codec_rd_varint(&r, &out->drop_start);
        if (rv == 0) rv = moq_codec_rd_varint(&r, &out->drop_end);
        if (rv == 0) rv = moq_codec_rd_varint(&r, &out->drop_error);
        break;
    }
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}
