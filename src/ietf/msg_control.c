/* SETUP, the generic answers (REQUEST_OK / REQUEST_ERROR and draft-14's per-request
 * messages), single-id messages and GOAWAY. */
#include "ietf/codec_int.h"

#include <string.h>

#include "util/err.h"

/* ---------------------------------------------------------------- SETUP */

int moq_ietf_encode_setup(moq_buf *out, const moq_ietf_caps *c, bool client,
                          const struct moq_ietf_setup_out *s)
{
    struct moq_ietf_param_out ps[8];
    size_t n = 0;
    if (s->path) ps[n++] = moq_ietf_pbytes(MOQ_IETF_OPT_PATH, s->path, strlen(s->path));
    if (s->has_max_request_id)
        ps[n++] = moq_ietf_pnum(MOQ_IETF_OPT_MAX_REQUEST_ID, s->max_request_id);
    if (s->implementation)
        ps[n++] = moq_ietf_pbytes(MOQ_IETF_OPT_IMPLEMENTATION, s->implementation,
                                  strlen(s->implementation));
    if (s->solicit) ps[n++] = moq_ietf_pnum(MOQ_IETF_OPT_SOLICIT, 1);
    uint8_t hop[MOQ_IETF_VARINT_MAX];
    if (s->has_hop_id && c->cluster) {
        size_t hl = (size_t)(moq_ietf_varint_put(c, hop, s->hop_id) - hop);
        ps[n++] = moq_ietf_pbytes(MOQ_IETF_OPT_RELAY_HOPS, hop, hl);
    }
    uint64_t type = c->uni_setup ? MOQ_IETF_SETUP
                    : client     ? MOQ_IETF_CLIENT_SETUP
                                 : MOQ_IETF_SERVER_SETUP;
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, type);
    if (c->setup_versions && client) {
        iw_varint(w, s->n_versions);
        for (size_t i = 0; i < s->n_versions; i++)
            iw_varint(w, s->versions[i]);
    } else if (c->setup_versions) {
        iw_varint(w, s->version);
    }
    moq_ietf_options_write(w, ps, n);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_setup(const moq_ietf_caps *c, bool client, const uint8_t *body, size_t len,
                          struct moq_ietf_setup *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    ir_init(&r, body, len, c);
    if (c->setup_versions && client) {
        uint64_t n = ir_varint(&r);
        if (!r.err && n > MOQ_IETF_MAX_VERSIONS) ir_fail(&r, MOQ_ERR_TOO_LARGE);
        for (uint64_t i = 0; i < n && !r.err; i++)
            out->versions[out->n_versions++] = ir_varint(&r);
    } else if (c->setup_versions) {
        out->version = ir_varint(&r);
    }
    moq_ietf_options_read(&r, &out->options);
    return ir_done(&r);
}

moq_str moq_ietf_setup_bytes(const struct moq_ietf_setup *s, uint64_t option)
{
    const struct moq_ietf_param *p = moq_ietf_param_find(&s->options, option);
    if (!p || !p->bytes) return (moq_str){NULL, 0};
    return moq_str_make(p->data, p->len);
}

bool moq_ietf_setup_number(const struct moq_ietf_setup *s, uint64_t option, uint64_t *out)
{
    const struct moq_ietf_param *p = moq_ietf_param_find(&s->options, option);
    if (!p || p->bytes) return false;
    *out = p->value;
    return true;
}

int moq_ietf_setup_hop_id(const moq_ietf_caps *c, const struct moq_ietf_setup *s, bool *has,
                          uint64_t *hop_id)
{
    *has = false;
    *hop_id = 0;
    if (!c->cluster) return 0;
    const struct moq_ietf_param *p = moq_ietf_param_find(&s->options, MOQ_IETF_OPT_RELAY_HOPS);
    if (!p || !p->bytes) return 0;
    int n = moq_ietf_varint_get(c, p->data, p->len, hop_id);
    if (n < 0 || (size_t)n != p->len) return MOQ_ERR_PROTO;
    *has = true;
    return 0;
}

/* ---------------------------------------------------------------- answers */

static uint64_t error_type(const moq_ietf_caps *c, enum moq_ietf_request_kind kind)
{
    if (c->request_error) return MOQ_IETF_REQUEST_ERROR;
    switch (kind) {
    case MOQ_IETF_REQ_PUBLISH_NAMESPACE:
        return 0x08; /* PUBLISH_NAMESPACE_ERROR */
    case MOQ_IETF_REQ_SUBSCRIBE_NAMESPACE:
        return MOQ_IETF_SUBSCRIBE_NAMESPACE_ERROR;
    case MOQ_IETF_REQ_FETCH:
        return MOQ_IETF_FETCH_ERROR;
    case MOQ_IETF_REQ_PUBLISH:
        return MOQ_IETF_PUBLISH_ERROR;
    case MOQ_IETF_REQ_TRACK_STATUS:
        return 0x0f; /* TRACK_STATUS_ERROR */
    default:
        return 0x05; /* SUBSCRIBE_ERROR */
    }
}

int moq_ietf_encode_request_error(moq_buf *out, const moq_ietf_caps *c,
                                  enum moq_ietf_request_kind kind,
                                  const struct moq_ietf_request_error *m)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, error_type(c, kind));
    if (c->response_ids) iw_varint(w, m->request_id);
    iw_varint(w, m->code);
    if (c->retry_interval) iw_varint(w, m->retry_interval);
    iw_lenbytes(w, m->reason.ptr, m->reason.len);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_request_error(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                  struct moq_ietf_request_error *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    ir_init(&r, body, len, c);
    if (c->response_ids) out->request_id = ir_varint(&r);
    out->code = ir_varint(&r);
    if (c->retry_interval) out->retry_interval = ir_varint(&r);
    out->reason = ir_string(&r, MOQ_IETF_MAX_REASON);
    return ir_done(&r);
}

int moq_ietf_encode_request_ok(moq_buf *out, const moq_ietf_caps *c,
                               enum moq_ietf_request_kind kind, const struct moq_ietf_request_ok *m)
{
    if (!c->request_error && kind == MOQ_IETF_REQ_TRACK_STATUS) {
        /* draft-14: TRACK_STATUS_OK has SUBSCRIBE_OK's layout, with track alias 0 */
        struct enc e;
        ietf_w *w = enc_start(&e, out, c);
        size_t at = moq_ietf_msg_begin(w, 0x0e);
        iw_varint(w, m->request_id);
        iw_varint(w, 0); /* track alias */
        iw_varint(w, 0); /* expires */
        iw_u8(w, 2);     /* descending */
        iw_u8(w, m->has_largest ? 1 : 0);
        if (m->has_largest) iw_location(w, m->largest_group, m->largest_object);
        iw_varint(w, 0); /* parameters */
        moq_ietf_msg_end(w, at);
        return enc_commit(&e);
    }
    uint64_t type = MOQ_IETF_REQUEST_OK;
    if (!c->request_error && kind == MOQ_IETF_REQ_SUBSCRIBE_NAMESPACE)
        type = MOQ_IETF_SUBSCRIBE_NAMESPACE_OK;
    uint8_t loc[2 * MOQ_IETF_VARINT_MAX];
    size_t loc_len = 0;
    if (m->has_largest) {
        uint8_t *p = moq_ietf_varint_put(c, loc, m->largest_group);
        p = moq_ietf_varint_put(c, p, m->largest_object);
        loc_len = (size_t)(p - loc);
    }
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, type);
    if (c->response_ids) iw_varint(w, m->request_id);
    if (c->request_error) {
        struct moq_ietf_param_out ps[1] = {{MOQ_IETF_PARAM_LARGEST_OBJECT, 0, loc, loc_len}};
        moq_ietf_params_write(w, ps, m->has_largest ? 1 : 0);
    }
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_request_ok(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                               struct moq_ietf_request_ok *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    ir_init(&r, body, len, c);
    if (c->response_ids) out->request_id = ir_varint(&r);
    if (c->request_error) {
        struct moq_ietf_params ps;
        moq_ietf_params_read(&r, &ps);
        const struct moq_ietf_param *p = moq_ietf_param_find(&ps, MOQ_IETF_PARAM_LARGEST_OBJECT);
        if (p && p->bytes && !r.err) {
            ietf_r lr;
            ir_init(&lr, p->data, p->len, c);
            ir_location(&lr, &out->largest_group, &out->largest_object);
            if (ir_done(&lr)) ir_fail(&r, MOQ_ERR_PROTO);
            out->has_largest = true;
        }
        struct moq_ietf_props props;
        moq_ietf_props_read(&r, &props);
    }
    return ir_done(&r);
}

int moq_ietf_encode_id_msg(moq_buf *out, const moq_ietf_caps *c, uint64_t type, uint64_t id)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, type);
    iw_varint(w, id);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_id_msg(const moq_ietf_caps *c, const uint8_t *body, size_t len, uint64_t *id)
{
    ietf_r r;
    ir_init(&r, body, len, c);
    *id = ir_varint(&r);
    return ir_done(&r);
}

int moq_ietf_encode_goaway(moq_buf *out, const moq_ietf_caps *c, const struct moq_ietf_goaway *m)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_GOAWAY);
    iw_lenbytes(w, m->uri.ptr, m->uri.len);
    if (c->goaway_timeout) iw_varint(w, m->timeout_ms);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_goaway(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                           struct moq_ietf_goaway *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    ir_init(&r, body, len, c);
    out->uri = ir_string(&r, 8192);
    if (c->goaway_timeout) out->timeout_ms = ir_varint(&r);
    /* draft-18 may append a request id; nothing else may follow */
    if (c->first_object_bit && ir_left(&r) > 0) ir_varint(&r);
    return ir_done(&r);
}
