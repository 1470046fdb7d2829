/* Announce stream messages: ANNOUNCE_REQUEST, ANNOUNCE_INIT (01/02), ANNOUNCE_OK (05+) and
 * ANNOUNCE (typed START/END/RESTART on 06). */
#include "moq/codec_internal.h"

#include <stdlib.h>

int moq_encode_announce_request(moq_buf *out, moq_version v, const struct moq_announce_request *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_path(out, m->prefix);
    if (rv == 0 && c->exclude_hop) rv = moq_codec_put_varint(out, m->exclude_hop);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_announce_request(moq_version v, uint8_t *body, size_t len,
                                struct moq_announce_request *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    out->exclude_hop = 0;
    int rv = moq_codec_rd_path(&r, &out->prefix);
    if (rv == 0 && c->exclude_hop) rv = moq_codec_rd_varint(&r, &out->exclude_hop);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

int moq_encode_announce_init(moq_buf *out, moq_version v, const moq_str *suffixes, size_t n)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->announce_init) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_varint(out, n);
    for (size_t i = 0; rv == 0 && i < n; i++)
        rv = moq_codec_put_path(out, suffixes[i]);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_announce_init(moq_version v, uint8_t *body, size_t len,
                             struct moq_announce_init *out)
{
    const moq_caps *c = codec_caps(v);
    *out = (struct moq_announce_init){0};
    if (!c || !c->announce_init) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    uint64_t count;
    int rv = moq_codec_rd_varint(&r, &count);
    if (rv < 0) return rv;
    if (count > MOQ_MAX_ANNOUNCE_INIT) return MOQ_ERR_TOO_LARGE;
    if (count > moq_rd_left(&r)) return MOQ_ERR_PROTO; /* each suffix takes a byte at least */
    if (count && !(out->suffixes = calloc((size_t)count, sizeof(moq_str)))) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < count; i++) {
        if ((rv = moq_codec_rd_path(&r, &out->suffixes[i])) < 0) break;
        out->count = i + 1;
    }
    if (rv == 0) rv = moq_codec_rd_end(&r);
    if (rv < 0) moq_announce_init_free(out);
    return rv;
}

void moq_announce_init_free(struct moq_announce_init *m)
{
    free(m->suffixes);
    *m = (struct moq_announce_init){0};
}

int moq_encode_announce_ok(moq_buf *out, moq_version v, const struct moq_announce_ok *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->announce_ok) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_varint(out, m->hop_id);
    if (rv == 0) rv = moq_codec_put_varint(out, m->active_count);
    return moq_codec_msg_end(out, start, start, rv);
}

int moq_decode_announce_ok(moq_version v, uint8_t *body, size_t len, struct moq_announce_ok *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->announce_ok) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_varint(&r, &out->hop_id);
    if (rv == 0) rv = moq_codec_rd_varint(&r, &out->active_count);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}

static int put_hops(moq_buf *out, const moq_caps *c, const struct moq_announce *m)
{
    if (m->hop_count > MOQ_MAX_HOPS) return MOQ_ERR_INVALID;
    if (c->announce_hops == MOQ_HOPS_NONE) return 0;
    int rv = moq_codec_put_varint(out, m->hop_count);
    if (c->announce_hops == MOQ_HOPS_COUNT) return rv;
    for (uint32_t i = 0; rv == 0 && i < m->hop_count; i++)
        rv = moq_codec_put_varint(out, m->hops[i]);
    return rv;
}

int moq_announce_type(moq_version v, const struct moq_announce *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->announce_ids) return MOQ_ERR_UNSUPPORTED;
    if (m->status > MOQ_ANNOUNCE_STATUS_RESTART) return MOQ_ERR_INVALID;
    return m->status == MOQ_ANNOUNCE_STATUS_ACTIVE  ? 0
           : m->status == MOQ_ANNOUNCE_STATUS_ENDED ? 1
                                                    : 2;
}

/* Lite-06: START [suffix, hops, cost], END [id], RESTART [id, hops, cost]. */
static int encode_announce_typed(moq_buf *out, const moq_caps *c, const struct moq_announce *m)
{
    int type = moq_announce_type(c->version, m);
    if (type < 0) return type;
    size_t start = codec_msg_begin(out);
    int rv = moq_codec_put_varint(out, (uint64_t)type);
    size_t body = out->len;
    if (rv == 0 && m->status == MOQ_ANNOUNCE_STATUS_ACTIVE) rv = moq_codec_put_path(out, m->suffix);
    if (rv == 0 && m->status != MOQ_ANNOUNCE_STATUS_ACTIVE) rv = moq_codec_put_varint(out, m->id);
    if (rv == 0 && m->status != MOQ_ANNOUNCE_STATUS_ENDED) rv = put_hops(out, c, m);
    if (rv == 0 && m->status != MOQ_ANNOUNCE_STATUS_ENDED) rv = moq_codec_put_varint(out, m->cost);
    return moq_codec_msg_end(out, start, body, rv);
}

int moq_encode_announce(moq_buf *out, moq_version v, const struct moq_announce *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c) return MOQ_ERR_UNSUPPORTED;
    if (c->announce_ids) return encode_announce_typed(out, c, m);
    if (m->status > MOQ_ANNOUNCE_STATUS_RESTART) return MOQ_ERR_INVALID;
    if (m->status == MOQ_ANNOUNCE_STATUS_RESTART && !c->restart) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    int rv = moq_buf_put_u8(out, m->status);
    if (rv == 0) rv = moq_codec_put_path(out, m->suffix);
    if (rv == 0) rv = put_hops(out, c, m);
    return moq_codec_msg_end(out, start, start, rv);
}

static int rd_hops(moq_rd *r, const moq_caps *c, struct moq_announce *out)
{
    out->hop_count = 0;
    if (c->announce_hops == MOQ_HOPS_NONE) return 0;
    uint64_t count;
    int rv = moq_codec_rd_varint(r, &count);
    if (rv < 0) return rv;
    if (count > MOQ_MAX_HOPS) return MOQ_ERR_TOO_LARGE;
    out->hop_count = (uint32_t)count;
    for (uint32_t i = 0; i < out->hop_count; i++) {
        out->hops[i] = 0;
        if (c->announce_hops != MOQ_HOPS_COUNT && (rv = moq_codec_rd_varint(r, &out->hops[i])) < 0)
            return rv;
    }
    return 0;
}

int moq_decode_announce(moq_version v, uint8_t *body, size_t len, struct moq_announce *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || c->announce_ids) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    out->id = out->cost = 0;
    int rv = moq_codec_rd_u8(&r, &out->status);
    if (rv < 0) return rv;
    if (out->status > MOQ_ANNOUNCE_STATUS_RESTART) return MOQ_ERR_PROTO;
    if (out->status == MOQ_ANNOUNCE_STATUS_RESTART && !c->restart) return MOQ_ERR_PROTO;
    if ((rv = moq_codec_rd_path(&r, &out->suffix)) < 0) return rv;
    if ((rv = rd_hops(&r, c, out)) < 0) return rv;
    return moq_codec_rd_end(&r);
}

int moq_decode_announce_typed(moq_version v, uint64_t type, uint8_t *body, size_t len,
                              struct moq_announce *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->announce_ids) return MOQ_ERR_UNSUPPORTED;
    static const uint8_t status_of_type[] = {MOQ_ANNOUNCE_STATUS_ACTIVE, MOQ_ANNOUNCE_STATUS_ENDED,
                                             MOQ_ANNOUNCE_STATUS_RESTART};
    if (type > 2) return MOQ_ERR_PROTO;
    out->status = status_of_type[type];
    out->suffix = (moq_str){NULL, 0};
    out->hop_count = 0;
    out->id = out->cost = 0;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = out->status == MOQ_ANNOUNCE_STATUS_ACTIVE ? moq_codec_rd_path(&r, &out->suffix)
                                                       : moq_codec_rd_varint(&r, &out->id);
    if (rv == 0 && out->status != MOQ_ANNOUNCE_STATUS_ENDED) rv = rd_hops(&r, c, out);
    if (rv == 0 && out->status != MOQ_ANNOUNCE_STATUS_ENDED)
        rv = moq_codec_rd_varint(&r, &out->cost);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}
