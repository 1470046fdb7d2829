/* Legacy compat SETUP (bidi 0x20/0x21, IETF draft-14 framing: u16 BE size) and the
 * SESSION_INFO that may follow it on the lite-01/02 session stream. */
#include "moq/codec_internal.h"

#include <string.h>

int moq_decode_compat_client_setup(const uint8_t *body, size_t len,
                                   struct moq_compat_client_setup *out)
{
    moq_rd r;
    moq_rd_init(&r, body, len);
    uint64_t n;
    int rv = moq_codec_rd_varint(&r, &n);
    if (rv < 0) return rv;
    if (n > MOQ_COMPAT_MAX_VERSIONS) return MOQ_ERR_TOO_LARGE;
    out->n_versions = (size_t)n;
    for (size_t i = 0; i < out->n_versions; i++) {
        uint64_t version;
        if ((rv = moq_codec_rd_varint(&r, &version)) < 0) return rv;
        if (i < MOQ_COMPAT_KEEP_VERSIONS) out->versions[i] = version;
    }
    out->params = r.p;
    out->params_len = moq_rd_left(&r);
    return 0;
}

/* u16 size + body; the body is what `fill` appended. */
static int u16_framed_end(moq_buf *out, size_t start, int rv)
{
    if (rv == 0 && out->len - start > UINT16_MAX) rv = MOQ_ERR_TOO_LARGE;
    if (rv == 0) rv = moq_buf_reserve(out, 2);
    if (rv < 0) {
        out->len = start;
        return rv;
    }
    size_t body_len = out->len - start;
    memmove(out->data + start + 2, out->data + start, body_len);
    out->data[start] = (uint8_t)(body_len >> 8);
    out->data[start + 1] = (uint8_t)body_len;
    out->len += 2;
    return 0;
}

int moq_encode_compat_client_setup(moq_buf *out, const uint64_t *versions, size_t n,
                                   const void *params, size_t params_len)
{
    if (n > MOQ_COMPAT_MAX_VERSIONS) return MOQ_ERR_INVALID;
    size_t start = out->len;
    int rv = moq_codec_put_varint(out, n);
    for (size_t i = 0; rv == 0 && i < n; i++)
        rv = moq_codec_put_varint(out, versions[i]);
    if (rv == 0) rv = moq_buf_append(out, params, params_len);
    return u16_framed_end(out, start, rv);
}

int moq_encode_compat_server_setup(moq_buf *out, uint64_t version, const void *params,
                                   size_t params_len)
{
    size_t start = out->len;
    int rv = moq_codec_put_varint(out, version);
    if (rv == 0) rv = moq_buf_append(out, params, params_len);
    return u16_framed_end(out, start, rv);
}

int moq_decode_compat_server_setup(const uint8_t *body, size_t len, uint64_t *version,
                                   const uint8_t **params, size_t *params_len)
{
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_varint(&r, version);
    if (rv < 0) return rv;
    *params = r.p;
    *params_len = moq_rd_left(&r);
    return 0;
}

int moq_encode_session_info(moq_buf *out, moq_version v, uint64_t bitrate)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->compat_setup) return MOQ_ERR_UNSUPPORTED;
    size_t start = codec_msg_begin(out);
    return moq_codec_msg_end(out, start, start, moq_codec_put_varint(out, bitrate));
}

int moq_decode_session_info(moq_version v, uint8_t *body, size_t len, uint64_t *bitrate)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->compat_setup) return MOQ_ERR_UNSUPPORTED;
    moq_rd r;
    moq_rd_init(&r, body, len);
    int rv = moq_codec_rd_varint(&r, bitrate);
    return rv < 0 ? rv : moq_codec_rd_end(&r);
}
