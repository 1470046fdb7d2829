/* SETUP (lite-05 uni stream 0x1): a bag of (id, bytes) parameters. */
#include "moq/codec_internal.h"
#include "util/varint.h"

static int put_param_bytes(moq_buf *b, uint64_t id, const void *p, size_t n)
{
    int rv = moq_codec_put_varint(b, id);
    return rv < 0 ? rv : moq_buf_put_lenbytes(b, p, n);
}

static int put_param_varint(moq_buf *b, uint64_t id, uint64_t v)
{
    uint8_t tmp[MOQ_VARINT_MAXLEN];
    if (v > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    uint8_t *end = moq_varint_put(tmp, v);
    return put_param_bytes(b, id, tmp, (size_t)(end - tmp));
}

int moq_encode_setup(moq_buf *out, moq_version v, const struct moq_setup *m)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->setup_stream) return MOQ_ERR_UNSUPPORTED;
    if (m->has_path && m->path.len > MOQ_MAX_URI_LEN) return MOQ_ERR_TOO_LARGE;
    if (m->has_path && !moq_utf8_valid((const uint8_t *)m->path.ptr, m->path.len))
        return MOQ_ERR_INVALID;

    size_t start = codec_msg_begin(out);
    uint64_t count =
        (m->probe != 0) + m->has_path + (m->role != 0) + m->has_cost + (m->origin != 0);
    int rv = moq_codec_put_varint(out, count);
    if (rv == 0 && m->probe) rv = put_param_varint(out, MOQ_SETUP_PARAM_PROBE, m->probe);
    if (rv == 0 && m->has_path)
        rv = put_param_bytes(out, MOQ_SETUP_PARAM_PATH, m->path.ptr, m->path.len);
    if (rv == 0 && m->role) rv = put_param_varint(out, MOQ_SETUP_PARAM_ROLE, m->role);
    if (rv == 0 && m->has_cost) rv = put_param_varint(out, MOQ_SETUP_PARAM_COST, m->cost);
    if (rv == 0 && m->origin) rv = put_param_varint(out, MOQ_SETUP_PARAM_ORIGIN, m->origin);
    return moq_codec_msg_end(out, start, start, rv);
}

/* A varint parameter value must be exactly one varint. */
static int param_varint(const uint8_t *p, size_t n, uint64_t *out)
{
    int used = moq_varint_get(p, n, out);
    if (used < 0 || (size_t)used != n) return MOQ_ERR_PROTO;
    return 0;
}

static int apply_param(struct moq_setup *out, uint64_t id, const uint8_t *p, size_t n)
{
    uint64_t v;
    int rv;
    switch (id) {
    case MOQ_SETUP_PARAM_PROBE:
        if ((rv = param_varint(p, n, &v)) < 0) return rv;
        out->probe = v >= MOQ_PROBE_INCREASE ? MOQ_PROBE_INCREASE : v;
        return 0;
    case MOQ_SETUP_PARAM_PATH:
        if (n > MOQ_MAX_URI_LEN) return MOQ_ERR_TOO_LARGE;
        if (!moq_utf8_valid(p, n)) return MOQ_ERR_PROTO;
        out->has_path = true;
        out->path = moq_str_make(p, n);
        return 0;
    case MOQ_SETUP_PARAM_ROLE:
        if ((rv = param_varint(p, n, &v)) < 0) return rv;
        out->role = (v == MOQ_ROLE_PUBLISHER || v == MOQ_ROLE_SUBSCRIBER) ? v : MOQ_ROLE_BOTH;
        return 0;
    case MOQ_SETUP_PARAM_COST:
        if ((rv = param_varint(p, n, &v)) < 0) return rv;
        out->has_cost = true;
        out->cost = v;
        return 0;
    case MOQ_SETUP_PARAM_ORIGIN:
        if ((rv = param_varint(p, n, &v)) < 0) return rv;
        out->origin = v;
        return 0;
    default:
        return 0; /* unknown parameters are ignored */
    }
}

int moq_decode_setup(moq_version v, uint8_t *body, size_t len, struct moq_setup *out)
{
    const moq_caps *c = codec_caps(v);
    if (!c || !c->setup_stream) return MOQ_ERR_UNSUPPORTED;
    *out = (struct moq_setup){0};

    moq_rd r;
    moq_rd_init(&r, body, len);
    uint64_t count;
    int rv = moq_codec_rd_varint(&r, &count);
    if (rv < 0) return rv;
    if (count > MOQ_MAX_SETUP_PARAMS) return MOQ_ERR_TOO_LARGE;

    uint64_t seen[MOQ_MAX_SETUP_PARAMS];
    for (uint64_t i = 0; i < count; i++) {
        uint64_t id;
        const uint8_t *p;
        size_t n;
        if ((rv = moq_codec_rd_varint(&r, &id)) < 0) return rv;
        for (uint64_t k = 0; k < i; k++)
            if (seen[k] == id) return MOQ_ERR_PROTO;
        seen[i] = id;
        /* A value can be no longer than the body holding it. */
        rv = moq_rd_lenbytes(&r, len, &p, &n);
        if (rv < 0) return MOQ_ERR_PROTO;
        if ((rv = apply_param(out, id, p, n)) < 0) return rv;
    }
    return moq_codec_rd_end(&r);
}
