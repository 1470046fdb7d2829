/* PUBLISH_NAMESPACE, its withdrawal and cancellation, SUBSCRIBE_NAMESPACE and the inline
 * NAMESPACE / NAMESPACE_DONE entries, with the MoQ Cluster advertisement parameters. */
#include "ietf/codec_int.h"

#include <string.h>

#include "util/err.h"

/* ---------------------------------------------------------------- cluster parameters */

/* HOP_PATH: the hop ids as consecutive varints filling the value. */
static size_t hop_path_bytes(const moq_ietf_caps *c, const struct moq_ietf_advert *a, uint8_t *buf)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < a->n_hops; i++)
        p = moq_ietf_varint_put(c, p, a->hops[i]);
    return (size_t)(p - buf);
}

static void write_advert(ietf_w *w, const struct moq_ietf_advert *a)
{
    uint8_t hops[MOQ_IETF_MAX_HOPS * MOQ_IETF_VARINT_MAX];
    struct moq_ietf_param_out ps[2];
    size_t n = 0;
    if (a && a->n_hops && a->n_hops <= MOQ_IETF_MAX_HOPS) {
        ps[n++] = moq_ietf_pbytes(MOQ_IETF_PARAM_HOP_PATH, hops, hop_path_bytes(w->c, a, hops));
        if (a->cost) ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_ROUTE_COST, a->cost);
    }
    moq_ietf_params_write(w, ps, n);
}

/* The advertisement in a decoded parameter set; *has = false when there is no HOP_PATH. */
static void read_advert(ietf_r *r, const struct moq_ietf_params *ps, bool *has,
                        struct moq_ietf_advert *a)
{
    memset(a, 0, sizeof(*a));
    *has = false;
    const struct moq_ietf_param *p = moq_ietf_param_find(ps, MOQ_IETF_PARAM_HOP_PATH);
    if (!p) return;
    if (!p->bytes || p->len == 0) {
        ir_fail(r, MOQ_ERR_PROTO);
        return;
    }
    ietf_r hr;
    ir_init(&hr, p->data, p->len, r->c);
    while (ir_left(&hr) > 0 && !hr.err) {
        if (a->n_hops == MOQ_IETF_MAX_HOPS) {
            ir_fail(&hr, MOQ_ERR_TOO_LARGE);
            break;
        }
        a->hops[a->n_hops++] = ir_varint(&hr);
    }
    if (hr.err) {
        ir_fail(r, MOQ_ERR_PROTO);
        return;
    }
    /* a non-zero hop id twice is a loop no conforming sender forwards */
    for (size_t i = 0; i < a->n_hops; i++)
        for (size_t j = i + 1; a->hops[i] && j < a->n_hops; j++)
            if (a->hops[i] == a->hops[j]) ir_fail(r, MOQ_ERR_PROTO);
    p = moq_ietf_param_find(ps, MOQ_IETF_PARAM_ROUTE_COST);
    if (p && !p->bytes) a->cost = p->value;
    *has = !r->err;
}

/* ---------------------------------------------------------------- PUBLISH_NAMESPACE */

int moq_ietf_encode_publish_namespace(moq_buf *out, const moq_ietf_caps *c, uint64_t request_id,
                                      moq_str ns, const struct moq_ietf_advert *advert)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_PUBLISH_NAMESPACE);
    iw_varint(w, request_id);
    if (c->required_id_delta) iw_varint(w, 0);
    iw_tuple(w, ns);
    write_advert(w, c->cluster ? advert : NULL);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_publish_namespace(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                      struct moq_ietf_publish_namespace *out)
{
    memset(out, 0, sizeof(*out));
    moq_buf_init(&out->ns);
    ietf_r r;
    dec_start(&r, c, body, len);
    out->request_id = ir_varint(&r);
    if (c->required_id_delta) ir_varint(&r);
    ir_tuple(&r, &out->ns);
    struct moq_ietf_params ps;
    moq_ietf_params_read(&r, &ps);
    if (!r.err && c->cluster) read_advert(&r, &ps, &out->has_advert, &out->advert);
    return ir_done(&r);
}

int moq_ietf_encode_publish_namespace_done(moq_buf *out, const moq_ietf_caps *c,
                                           uint64_t request_id, moq_str ns)
{
    if (!c->ns_done_msg) return MOQ_ERR_UNSUPPORTED;
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_PUBLISH_NAMESPACE_DONE);
    if (c->ns_done_by_id)
        iw_varint(w, request_id);
    else
        iw_tuple(w, ns);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_publish_namespace_done(const moq_ietf_caps *c, bool cancel, const uint8_t *body,
                                           size_t len, struct moq_ietf_namespace_done *out)
{
    memset(out, 0, sizeof(*out));
    moq_buf_init(&out->ns);
    if (!c->ns_done_msg) return MOQ_ERR_PROTO;
    ietf_r r;
    dec_start(&r, c, body, len);
    if (c->ns_done_by_id)
        out->request_id = ir_varint(&r);
    else
        ir_tuple(&r, &out->ns);
    if (cancel) {
        out->code = ir_varint(&r);
        out->reason = ir_string(&r, MOQ_IETF_MAX_REASON);
    }
    return ir_done(&r);
}

/* ---------------------------------------------------------------- SUBSCRIBE_NAMESPACE */

int moq_ietf_encode_subscribe_namespace(moq_buf *out, const moq_ietf_caps *c, uint64_t request_id,
                                        moq_str prefix)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, c->ns_v2 ? MOQ_IETF_SUBSCRIBE_NAMESPACE_V2
                                               : MOQ_IETF_SUBSCRIBE_NAMESPACE_V1);
    iw_varint(w, request_id);
    if (c->required_id_delta) iw_varint(w, 0);
    iw_tuple(w, prefix);
    if (c->subscribe_options) iw_varint(w, 1); /* NAMESPACE only */
    iw_varint(w, 0);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_subscribe_namespace(const moq_ietf_caps *c, uint64_t type, const uint8_t *body,
                                        size_t len, struct moq_ietf_subscribe_namespace *out)
{
    memset(out, 0, sizeof(*out));
    moq_buf_init(&out->prefix);
    out->options = 1;
    uint64_t want = c->ns_v2 ? MOQ_IETF_SUBSCRIBE_NAMESPACE_V2 : MOQ_IETF_SUBSCRIBE_NAMESPACE_V1;
    if (type != want) return MOQ_ERR_PROTO;
    ietf_r r;
    dec_start(&r, c, body, len);
    out->request_id = ir_varint(&r);
    if (c->required_id_delta) ir_varint(&r);
    ir_tuple(&r, &out->prefix);
    if (c->subscribe_options) {
        out->options = ir_varint(&r);
        if (!r.err && out->options > 2) ir_fail(&r, MOQ_ERR_PROTO);
    }
    struct moq_ietf_params ps;
    moq_ietf_params_read(&r, &ps);
    return ir_done(&r);
}

/* ---------------------------------------------------------------- NAMESPACE entries */

int moq_ietf_encode_namespace(moq_buf *out, const moq_ietf_caps *c, bool done, moq_str suffix,
                              const struct moq_ietf_advert *advert)
{
    if (!c->ns_stream) return MOQ_ERR_UNSUPPORTED;
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, done ? MOQ_IETF_NAMESPACE_DONE : MOQ_IETF_NAMESPACE);
    iw_tuple(w, suffix);
    /* the extended form (cluster parameters) only on a session that negotiated it */
    if (!done && advert && c->cluster) write_advert(w, advert);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_namespace(const moq_ietf_caps *c, bool done, bool negotiated,
                              const uint8_t *body, size_t len, struct moq_ietf_namespace *out)
{
    memset(out, 0, sizeof(*out));
    moq_buf_init(&out->suffix);
    if (!c->ns_stream) return MOQ_ERR_PROTO;
    ietf_r r;
    dec_start(&r, c, body, len);
    ir_tuple(&r, &out->suffix);
    if (!done && negotiated && c->cluster) {
        struct moq_ietf_params ps;
        moq_ietf_params_read(&r, &ps);
        if (!r.err) read_advert(&r, &ps, &out->has_advert, &out->advert);
    }
    return ir_done(&r);
}
