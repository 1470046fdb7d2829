/* SUBSCRIBE and its answers, REQUEST_UPDATE, PUBLISH_DONE, FETCH, FETCH_OK, TRACK_STATUS and
 * the request id of PUBLISH. */
#include "ietf/codec_int.h"

#include <string.h>

#include "util/err.h"

#define DEFAULT_PRIORITY 128
#define DESCENDING       2

/* ---------------------------------------------------------------- helpers */

static uint8_t location_bytes(const moq_ietf_caps *c, uint8_t *buf, uint64_t g, uint64_t o)
{
    uint8_t *p = moq_ietf_varint_put(c, buf, g);
    p = moq_ietf_varint_put(c, p, o);
    return (uint8_t)(p - buf);
}

static int location_param(const moq_ietf_caps *c, const struct moq_ietf_param *p, uint64_t *g,
                          uint64_t *o)
{
    if (!p->bytes) return MOQ_ERR_PROTO;
    ietf_r r;
    ir_init(&r, p->data, p->len, c);
    ir_location(&r, g, o);
    return ir_done(&r);
}

/* A number parameter that must fit a byte (priorities, group order). */
static bool param_u8(ietf_r *r, const struct moq_ietf_params *ps, uint64_t type, uint8_t *out)
{
    const struct moq_ietf_param *p = moq_ietf_param_find(ps, type);
    if (!p) return false;
    if (p->bytes || p->value > 0xff) {
        ir_fail(r, MOQ_ERR_PROTO);
        return false;
    }
    *out = (uint8_t)p->value;
    return true;
}

static void check_group_order(ietf_r *r, uint8_t order)
{
    if (order > 2) ir_fail(r, MOQ_ERR_PROTO);
}

/* ---------------------------------------------------------------- SUBSCRIBE */

int moq_ietf_encode_subscribe(moq_buf *out, const moq_ietf_caps *c,
                              const struct moq_ietf_subscribe *m, moq_str ns)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_SUBSCRIBE);
    iw_varint(w, m->request_id);
    if (c->required_id_delta) iw_varint(w, 0);
    iw_tuple(w, ns);
    iw_lenbytes(w, m->track.ptr, m->track.len);
    if (!c->subscribe_params) {
        iw_u8(w, m->priority);
        iw_u8(w, m->group_order);
        iw_u8(w, m->forward ? 1 : 0);
        moq_ietf_filter_write(w, &m->filter);
        iw_varint(w, 0);
    } else {
        /* the filter parameter's value, encoded on its own first */
        moq_buf fb;
        moq_buf_init(&fb);
        ietf_w fw;
        iw_init(&fw, &fb, c);
        moq_ietf_filter_write(&fw, &m->filter);
        if (fw.err && !w->err) w->err = fw.err;
        struct moq_ietf_param_out ps[5];
        size_t n = 0;
        ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY, m->priority);
        ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_GROUP_ORDER, m->group_order);
        ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_FORWARD, m->forward ? 1 : 0);
        if (m->filter.kind != MOQ_IETF_FILTER_NONE)
            ps[n++] = moq_ietf_pbytes(MOQ_IETF_PARAM_FILTER, fb.data, fb.len);
        uint8_t no = 0;
        if (c->fill && !m->want_properties)
            ps[n++] = moq_ietf_pbytes(MOQ_IETF_PARAM_INCLUDE_PROPERTIES, &no, 1);
        moq_ietf_params_write(w, ps, n);
        moq_buf_free(&fb);
    }
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

/* The fields draft-15+ carry as parameters. */
static void subscribe_from_params(ietf_r *r, const moq_ietf_caps *c,
                                  const struct moq_ietf_params *ps, struct moq_ietf_subscribe *m)
{
    param_u8(r, ps, MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY, &m->priority);
    if (param_u8(r, ps, MOQ_IETF_PARAM_GROUP_ORDER, &m->group_order))
        check_group_order(r, m->group_order);
    const struct moq_ietf_param *p = moq_ietf_param_find(ps, MOQ_IETF_PARAM_FORWARD);
    if (p) {
        if (p->bytes || p->value > 1) ir_fail(r, MOQ_ERR_PROTO);
        m->forward = p->value == 1;
    }
    p = moq_ietf_param_find(ps, MOQ_IETF_PARAM_FILTER);
    if (p) {
        if (!p->bytes || moq_ietf_filter_decode(c, p->data, p->len, &m->filter) < 0)
            ir_fail(r, MOQ_ERR_PROTO);
    }
    p = moq_ietf_param_find(ps, MOQ_IETF_PARAM_DELIVERY_TIMEOUT);
    if (p && !p->bytes) {
        m->has_delivery_timeout = true;
        m->delivery_timeout_ms = p->value;
    }
    p = moq_ietf_param_find(ps, MOQ_IETF_PARAM_INCLUDE_PROPERTIES);
    if (p) {
        if (!c->fill || !p->bytes || p->len != 1 || p->data[0] > 1)
            ir_fail(r, MOQ_ERR_PROTO);
        else
            m->want_properties = p->data[0] == 1;
    }
    if (moq_ietf_param_find(ps, MOQ_IETF_PARAM_FILL) && !c->fill) ir_fail(r, MOQ_ERR_PROTO);
}

int moq_ietf_decode_subscribe(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                              struct moq_ietf_subscribe *out)
{
    memset(out, 0, sizeof(*out));
    moq_buf_init(&out->ns);
    out->priority = DEFAULT_PRIORITY;
    out->group_order = 0;
    out->forward = true;
    out->want_properties = true;
    ietf_r r;
    dec_start(&r, c, body, len);
    out->request_id = ir_varint(&r);
    if (c->required_id_delta) ir_varint(&r);
    ir_tuple(&r, &out->ns);
    out->track = ir_string(&r, MOQ_IETF_MAX_TRACK_NAME);
    struct moq_ietf_params ps;
    if (!c->subscribe_params) {
        out->priority = ir_u8(&r);
        out->group_order = ir_u8(&r);
        check_group_order(&r, out->group_order);
        uint8_t fwd = ir_u8(&r);
        if (fwd > 1) ir_fail(&r, MOQ_ERR_PROTO);
        out->forward = fwd == 1;
        /* the inline filter: tag and fields, End Group absolute */
        uint64_t tag = ir_varint(&r);
        switch (tag) {
        case 0x1:
            out->filter.kind = MOQ_IETF_FILTER_NEXT_GROUP;
            break;
        case 0x2:
            out->filter.kind = MOQ_IETF_FILTER_LARGEST;
            break;
        case 0x3:
        case 0x4:
            out->filter.kind = MOQ_IETF_FILTER_ABSOLUTE;
            ir_location(&r, &out->filter.start_group, &out->filter.start_object);
            if (tag == 0x4) {
                out->filter.has_end = true;
                out->filter.end_group = ir_varint(&r);
                if (!r.err && out->filter.end_group < out->filter.start_group)
                    ir_fail(&r, MOQ_ERR_PROTO);
            }
            break;
        default:
            ir_fail(&r, MOQ_ERR_PROTO);
        }
        moq_ietf_params_read(&r, &ps);
        const struct moq_ietf_param *p = moq_ietf_param_find(&ps, MOQ_IETF_PARAM_DELIVERY_TIMEOUT);
        if (p && !p->bytes) {
            out->has_delivery_timeout = true;
            out->delivery_timeout_ms = p->value;
        }
    } else {
        moq_ietf_params_read(&r, &ps);
        if (!r.err) subscribe_from_params(&r, c, &ps, out);
    }
    return ir_done(&r);
}

/* ---------------------------------------------------------------- SUBSCRIBE_OK */

int moq_ietf_encode_subscribe_ok(moq_buf *out, const moq_ietf_caps *c,
                                 const struct moq_ietf_subscribe_ok *m)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_SUBSCRIBE_OK);
    if (c->response_ids) iw_varint(w, m->request_id);
    iw_varint(w, m->track_alias);
    uint8_t order = m->group_order ? m->group_order : DESCENDING;
    if (!c->subscribe_params) {
        iw_varint(w, 0); /* expires */
        iw_u8(w, order);
        iw_u8(w, m->has_largest ? 1 : 0);
        if (m->has_largest) iw_location(w, m->largest_group, m->largest_object);
        iw_varint(w, 0);
    } else {
        struct moq_ietf_param_out ps[2];
        size_t n = 0;
        uint8_t loc[2 * MOQ_IETF_VARINT_MAX];
        if (c->group_order_param) ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_GROUP_ORDER, order);
        if (c->largest_param && m->has_largest) {
            uint8_t l = location_bytes(c, loc, m->largest_group, m->largest_object);
            ps[n++] = moq_ietf_pbytes(MOQ_IETF_PARAM_LARGEST_OBJECT, loc, l);
        }
        moq_ietf_params_write(w, ps, n);
        if (!m->no_properties) {
            struct moq_ietf_props props = m->props;
            if (!props.group_order) props.group_order = order;
            moq_ietf_props_write(w, &props);
        }
    }
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_subscribe_ok(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                 struct moq_ietf_subscribe_ok *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    dec_start(&r, c, body, len);
    if (c->response_ids) out->request_id = ir_varint(&r);
    out->track_alias = ir_varint(&r);
    struct moq_ietf_params ps;
    if (!c->subscribe_params) {
        uint64_t expires = ir_varint(&r);
        (void)expires;
        out->group_order = ir_u8(&r);
        check_group_order(&r, out->group_order);
        uint8_t exists = ir_u8(&r);
        if (exists > 1) ir_fail(&r, MOQ_ERR_PROTO);
        if (exists == 1) {
            out->has_largest = true;
            ir_location(&r, &out->largest_group, &out->largest_object);
        }
        moq_ietf_params_read(&r, &ps);
    } else {
        moq_ietf_params_read(&r, &ps);
        if (!r.err) {
            uint8_t order;
            if (param_u8(&r, &ps, MOQ_IETF_PARAM_GROUP_ORDER, &order)) {
                check_group_order(&r, order);
                out->group_order = order;
            }
            const struct moq_ietf_param *p =
                moq_ietf_param_find(&ps, MOQ_IETF_PARAM_LARGEST_OBJECT);
            if (p) {
                if (location_param(c, p, &out->largest_group, &out->largest_object) < 0)
                    ir_fail(&r, MOQ_ERR_PROTO);
                out->has_largest = true;
            }
        }
        moq_ietf_props_read(&r, &out->props);
        if (out->props.group_order) out->group_order = out->props.group_order;
    }
    return ir_done(&r);
}

/* ---------------------------------------------------------------- REQUEST_UPDATE */

int moq_ietf_encode_request_update(moq_buf *out, const moq_ietf_caps *c,
                                   const struct moq_ietf_request_update *m)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_REQUEST_UPDATE);
    iw_varint(w, m->request_id);
    if (c->response_ids) iw_varint(w, m->subscription_id);
    if (c->required_id_delta) iw_varint(w, 0);
    if (!c->subscribe_params) {
        iw_location(w, m->has_filter ? m->filter.start_group : 0,
                    m->has_filter ? m->filter.start_object : 0);
        iw_varint(w, m->has_end ? m->end_group + 1 : 0);
        iw_u8(w, m->has_priority ? m->priority : DEFAULT_PRIORITY);
        iw_u8(w, !m->has_forward || m->forward ? 1 : 0);
        iw_varint(w, 0);
    } else {
        struct moq_ietf_param_out ps[3];
        size_t n = 0;
        if (m->has_priority)
            ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY, m->priority);
        if (m->has_forward) ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_FORWARD, m->forward ? 1 : 0);
        moq_buf fb;
        moq_buf_init(&fb);
        if (m->has_filter) {
            ietf_w fw;
            iw_init(&fw, &fb, c);
            moq_ietf_filter_write(&fw, &m->filter);
            ps[n++] = moq_ietf_pbytes(MOQ_IETF_PARAM_FILTER, fb.data, fb.len);
            if (fw.err && !w->err) w->err = fw.err;
        }
        moq_ietf_params_write(w, ps, n);
        moq_buf_free(&fb);
    }
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_request_update(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                   struct moq_ietf_request_update *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    dec_start(&r, c, body, len);
    out->request_id = ir_varint(&r);
    if (c->response_ids) out->subscription_id = ir_varint(&r);
    if (c->required_id_delta) ir_varint(&r);
    struct moq_ietf_params ps;
    if (!c->subscribe_params) {
        out->has_filter = true;
        out->filter.kind = MOQ_IETF_FILTER_ABSOLUTE;
        ir_location(&r, &out->filter.start_group, &out->filter.start_object);
        uint64_t end = ir_varint(&r); /* End Group + 1; 0 = open */
        out->priority = ir_u8(&r);
        out->has_priority = true;
        uint8_t fwd = ir_u8(&r);
        if (fwd > 1) ir_fail(&r, MOQ_ERR_PROTO);
        out->has_forward = true;
        out->forward = fwd == 1;
        out->has_end = end > 0;
        out->end_group = end ? end - 1 : 0;
        moq_ietf_params_read(&r, &ps);
    } else {
        moq_ietf_params_read(&r, &ps);
        if (!r.err) {
            out->has_priority =
                param_u8(&r, &ps, MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY, &out->priority);
            const struct moq_ietf_param *p = moq_ietf_param_find(&ps, MOQ_IETF_PARAM_FORWARD);
            if (p) {
                if (p->bytes || p->value > 1) ir_fail(&r, MOQ_ERR_PROTO);
                out->has_forward = true;
                out->forward = p->value == 1;
            }
            p = moq_ietf_param_find(&ps, MOQ_IETF_PARAM_FILTER);
            if (p) {
                if (!p->bytes || moq_ietf_filter_decode(c, p->data, p->len, &out->filter) < 0)
                    ir_fail(&r, MOQ_ERR_PROTO);
                out->has_filter = true;
                out->has_end = out->filter.has_end;
                out->end_group = out->filter.end_group;
            }
        }
    }
    return ir_done(&r);
}

/* ---------------------------------------------------------------- PUBLISH_DONE */

int moq_ietf_encode_publish_done(moq_buf *out, const moq_ietf_caps *c,
                                 const struct moq_ietf_publish_done *m)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_PUBLISH_DONE);
    if (c->response_ids) iw_varint(w, m->request_id);
    iw_varint(w, m->status);
    iw_varint(w, m->stream_count);
    iw_lenbytes(w, m->reason.ptr, m->reason.len);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_publish_done(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                 struct moq_ietf_publish_done *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    dec_start(&r, c, body, len);
    if (c->response_ids) out->request_id = ir_varint(&r);
    out->status = ir_varint(&r);
    out->stream_count = ir_varint(&r);
    out->reason = ir_string(&r, MOQ_IETF_MAX_REASON);
    return ir_done(&r);
}

/* ---------------------------------------------------------------- FETCH */

/* The LOCATION_FILTER of a draft-20 standalone FETCH (section "Location Filters"): the
 * start where start_kind puts it; after an absolute start the end group unless it is
 * UINT64_MAX (the Largest Object), and the end object, inclusive there, unless the whole end
 * group is asked. No filter for all of the track: {0, 0} alone would be the next object. */
static void fetch_filter_of(const struct moq_ietf_fetch *m, struct moq_ietf_filter *f)
{
    f->kind = m->start_kind == MOQ_IETF_FILTER_NONE ? MOQ_IETF_FILTER_ABSOLUTE : m->start_kind;
    f->groups = m->start_groups;
    if (f->kind != MOQ_IETF_FILTER_ABSOLUTE) return;
    f->start_group = m->start_group;
    f->start_object = m->start_object;
    f->has_end = m->end_group != UINT64_MAX;
    f->end_group = m->end_group;
    f->has_end_object = f->has_end && m->end_object != 0;
    f->end_object = m->end_object - 1;
    if (!f->has_end && f->start_group == 0 && f->start_object == 0) f->kind = MOQ_IETF_FILTER_NONE;
}

/* The range of a draft-20 standalone FETCH from its LOCATION_FILTER f: a start relative to
 * the Largest Object is left to the publisher (start_kind); no end group is the Largest
 * Object, and the inclusive end object becomes the exclusive one of drafts 14-19 (0 when
 * absent: the whole end group; the last object there is can only be the whole group). */
static void fetch_range_of(const struct moq_ietf_filter *f, struct moq_ietf_fetch *out)
{
    out->has_range = f->kind != MOQ_IETF_FILTER_NONE;
    out->start_kind = f->kind;
    out->start_groups = f->groups;
    out->start_group = f->start_group;
    out->start_object = f->start_object;
    out->end_group = f->has_end ? f->end_group : UINT64_MAX;
    out->end_object = f->has_end_object && f->end_object != UINT64_MAX ? f->end_object + 1 : 0;
}

int moq_ietf_encode_fetch(moq_buf *out, const moq_ietf_caps *c, const struct moq_ietf_fetch *m,
                          moq_str ns)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_FETCH);
    iw_varint(w, m->request_id);
    if (c->required_id_delta) iw_varint(w, 0);
    if (c->fetch_inline) {
        iw_u8(w, m->priority);
        iw_u8(w, m->group_order);
    }
    iw_varint(w, (uint64_t)m->type);
    struct moq_ietf_filter f = {0};
    if (m->type == MOQ_IETF_FETCH_STANDALONE) {
        iw_tuple(w, ns);
        iw_lenbytes(w, m->track.ptr, m->track.len);
        if (!c->fetch_filter) {
            iw_location(w, m->start_group, m->start_object);
            iw_location(w, m->end_group, m->end_object);
        } else if (m->has_range) {
            fetch_filter_of(m, &f);
        }
    } else {
        iw_varint(w, m->joining_request_id);
        if (!c->fetch_filter) {
            iw_varint(w, m->joining_start);
        } else {
            f.kind = m->type == MOQ_IETF_FETCH_RELATIVE ? MOQ_IETF_FILTER_RELATIVE
                                                        : MOQ_IETF_FILTER_ABSOLUTE;
            f.groups = m->joining_start;
            f.start_group = m->joining_start;
        }
    }
    if (c->fetch_inline) {
        iw_varint(w, 0);
    } else {
        struct moq_ietf_param_out ps[3];
        size_t n = 0;
        ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY, m->priority);
        ps[n++] = moq_ietf_pnum(MOQ_IETF_PARAM_GROUP_ORDER, m->group_order);
        moq_buf fb;
        moq_buf_init(&fb);
        if (c->fetch_filter && f.kind != MOQ_IETF_FILTER_NONE) {
            ietf_w fw;
            iw_init(&fw, &fb, c);
            moq_ietf_filter_write(&fw, &f);
            ps[n++] = moq_ietf_pbytes(MOQ_IETF_PARAM_FILTER, fb.data, fb.len);
        }
        moq_ietf_params_write(w, ps, n);
        moq_buf_free(&fb);
    }
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_fetch(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                          struct moq_ietf_fetch *out)
{
    memset(out, 0, sizeof(*out));
    moq_buf_init(&out->ns);
    out->priority = DEFAULT_PRIORITY;
    ietf_r r;
    dec_start(&r, c, body, len);
    out->request_id = ir_varint(&r);
    if (c->required_id_delta) ir_varint(&r);
    if (c->fetch_inline) {
        out->priority = ir_u8(&r);
        out->group_order = ir_u8(&r);
        check_group_order(&r, out->group_order);
    }
    uint64_t type = ir_varint(&r);
    if (!r.err && (type < MOQ_IETF_FETCH_STANDALONE || type > MOQ_IETF_FETCH_ABSOLUTE))
        ir_fail(&r, MOQ_ERR_PROTO);
    out->type = (int)type;
    if (type == MOQ_IETF_FETCH_STANDALONE) {
        ir_tuple(&r, &out->ns);
        out->track = ir_string(&r, MOQ_IETF_MAX_TRACK_NAME);
        if (!c->fetch_filter) {
            ir_location(&r, &out->start_group, &out->start_object);
            ir_location(&r, &out->end_group, &out->end_object);
            out->has_range = true;
        }
    } else {
        out->joining_request_id = ir_varint(&r);
        if (!c->fetch_filter) out->joining_start = ir_varint(&r);
    }
    struct moq_ietf_params ps;
    moq_ietf_params_read(&r, &ps);
    if (!r.err && !c->fetch_inline) {
        param_u8(&r, &ps, MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY, &out->priority);
        if (param_u8(&r, &ps, MOQ_IETF_PARAM_GROUP_ORDER, &out->group_order))
            check_group_order(&r, out->group_order);
        const struct moq_ietf_param *p = moq_ietf_param_find(&ps, MOQ_IETF_PARAM_FILTER);
        if (p && c->fetch_filter && !r.err) {
            struct moq_ietf_filter f;
            if (!p->bytes || moq_ietf_filter_decode(c, p->data, p->len, &f) < 0) {
                ir_fail(&r, MOQ_ERR_PROTO);
            } else if (out->type == MOQ_IETF_FETCH_STANDALONE) {
                fetch_range_of(&f, out);
            } else {
                out->joining_start = f.kind == MOQ_IETF_FILTER_RELATIVE ? f.groups : f.start_group;
            }
        }
    }
    return ir_done(&r);
}

int moq_ietf_encode_fetch_ok(moq_buf *out, const moq_ietf_caps *c,
                             const struct moq_ietf_fetch_ok *m)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_FETCH_OK);
    if (c->response_ids) iw_varint(w, m->request_id);
    if (c->fetch_inline) iw_u8(w, m->group_order ? m->group_order : 1);
    iw_u8(w, m->end_of_track ? 1 : 0);
    iw_location(w, m->end_group, m->end_object);
    iw_varint(w, 0);
    struct moq_ietf_props none = {0};
    moq_ietf_props_write(w, &none);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_fetch_ok(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                             struct moq_ietf_fetch_ok *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    dec_start(&r, c, body, len);
    if (c->response_ids) out->request_id = ir_varint(&r);
    if (c->fetch_inline) {
        out->group_order = ir_u8(&r);
        check_group_order(&r, out->group_order);
    }
    uint8_t eot = ir_u8(&r);
    if (eot > 1) ir_fail(&r, MOQ_ERR_PROTO);
    out->end_of_track = eot == 1;
    ir_location(&r, &out->end_group, &out->end_object);
    struct moq_ietf_params ps;
    moq_ietf_params_read(&r, &ps);
    struct moq_ietf_props props;
    moq_ietf_props_read(&r, &props);
    return ir_done(&r);
}

/* ---------------------------------------------------------------- TRACK_STATUS */

int moq_ietf_encode_track_status(moq_buf *out, const moq_ietf_caps *c, uint64_t request_id,
                                 moq_str ns, moq_str track)
{
    struct enc e;
    ietf_w *w = enc_start(&e, out, c);
    size_t at = moq_ietf_msg_begin(w, MOQ_IETF_TRACK_STATUS);
    iw_varint(w, request_id);
    if (c->required_id_delta) iw_varint(w, 0);
    iw_tuple(w, ns);
    iw_lenbytes(w, track.ptr, track.len);
    if (!c->subscribe_params) {
        iw_u8(w, 0);
        iw_u8(w, DESCENDING);
        iw_u8(w, 0);
        iw_varint(w, 0x2);
    }
    iw_varint(w, 0);
    moq_ietf_msg_end(w, at);
    return enc_commit(&e);
}

int moq_ietf_decode_track_status(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                 struct moq_ietf_track_status *out)
{
    /* SUBSCRIBE's layout on every draft (delivery fields are ignored) */
    struct moq_ietf_subscribe s;
    int rv = moq_ietf_decode_subscribe(c, body, len, &s);
    memset(out, 0, sizeof(*out));
    out->request_id = s.request_id;
    out->ns = s.ns;
    out->track = s.track;
    return rv;
}

/* ---------------------------------------------------------------- PUBLISH */

int moq_ietf_decode_publish_request_id(const moq_ietf_caps *c, const uint8_t *body, size_t len,
                                       uint64_t *request_id)
{
    ietf_r r;
    dec_start(&r, c, body, len);
    *request_id = ir_varint(&r);
    return r.err;
}
