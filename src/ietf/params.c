/* Parameters, setup options, track properties, location filters and message framing of the
 * moq-transport drafts. */
#include "ietf/codec.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Decoder failures that concern a key-value block are reported with this marker so that the
 * session closes with KEY_VALUE_FORMATTING_ERROR rather than PROTOCOL_VIOLATION. */
#define ERR_KVP MOQ_ERR_INVALID

uint64_t moq_ietf_close_code(int err)
{
    return err == ERR_KVP ? MOQ_IETF_KEY_VALUE_FORMATTING_ERROR : MOQ_IETF_PROTOCOL_VIOLATION;
}

/* ---------------------------------------------------------------- framing */

size_t moq_ietf_msg_begin(ietf_w *w, uint64_t type)
{
    iw_varint(w, type);
    size_t at = w->b->len;
    iw_u16(w, 0);
    return at;
}

int moq_ietf_msg_end(ietf_w *w, size_t at)
{
    if (w->err) return w->err;
    size_t body = w->b->len - at - 2;
    if (body > 0xffff) {
        w->err = MOQ_ERR_TOO_LARGE;
        return w->err;
    }
    w->b->data[at] = (uint8_t)(body >> 8);
    w->b->data[at + 1] = (uint8_t)body;
    return 0;
}

/* ---------------------------------------------------------------- parameters */

const struct moq_ietf_param *moq_ietf_param_find(const struct moq_ietf_params *ps, uint64_t type)
{
    for (size_t i = 0; i < ps->n; i++)
        if (ps->p[i].type == type) return &ps->p[i];
    return NULL;
}

enum kind { K_VARINT, K_U8, K_BOOL, K_BYTES, K_UNKNOWN };

/* How a message parameter's value is framed on draft-17+ ("definition-specific"). */
static enum kind typed_kind(uint64_t type)
{
    switch (type) {
    case MOQ_IETF_PARAM_DELIVERY_TIMEOUT:
    case MOQ_IETF_PARAM_MAX_CACHE_DURATION:
    case MOQ_IETF_PARAM_SUBGROUP_DELIVERY_TIMEOUT:
    case MOQ_IETF_PARAM_EXPIRES:
    case MOQ_IETF_PARAM_ROUTE_COST:
        return K_VARINT;
    case MOQ_IETF_PARAM_PUBLISHER_PRIORITY:
    case MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY:
    case MOQ_IETF_PARAM_GROUP_ORDER:
        return K_U8;
    case MOQ_IETF_PARAM_FORWARD:
        return K_BOOL;
    default:
        /* every odd type is length-prefixed (the Key-Value-Pair rule) */
        return (type & 1) ? K_BYTES : K_UNKNOWN;
    }
}

static bool is_known(uint64_t type)
{
    switch (type) {
    case MOQ_IETF_PARAM_DELIVERY_TIMEOUT:
    case MOQ_IETF_PARAM_AUTHORIZATION_TOKEN:
    case MOQ_IETF_PARAM_MAX_CACHE_DURATION:
    case MOQ_IETF_PARAM_SUBGROUP_DELIVERY_TIMEOUT:
    case MOQ_IETF_PARAM_EXPIRES:
    case MOQ_IETF_PARAM_LARGEST_OBJECT:
    case MOQ_IETF_PARAM_PUBLISHER_PRIORITY:
    case MOQ_IETF_PARAM_FORWARD:
    case MOQ_IETF_PARAM_SUBSCRIBER_PRIORITY:
    case MOQ_IETF_PARAM_FILTER:
    case MOQ_IETF_PARAM_GROUP_ORDER:
    case MOQ_IETF_PARAM_FILL:
    case MOQ_IETF_PARAM_INCLUDE_PROPERTIES:
    case MOQ_IETF_PARAM_HOP_PATH:
    case MOQ_IETF_PARAM_ROUTE_COST:
        return true;
    default:
        return false;
    }
}

/* Read one (type, value) whose type is already known. */
static void read_value(ietf_r *r, uint64_t type, bool typed, struct moq_ietf_param *p)
{
    memset(p, 0, sizeof(*p));
    p->type = type;
    enum kind k = typed ? typed_kind(type) : ((type & 1) ? K_BYTES : K_VARINT);
    switch (k) {
    case K_VARINT:
        p->value = ir_varint(r);
        break;
    case K_U8:
        p->value = ir_u8(r);
        break;
    case K_BOOL:
        p->value = ir_u8(r);
        if (p->value > 1) ir_fail(r, ERR_KVP);
        break;
    case K_BYTES:
        p->bytes = true;
        p->data = ir_lenbytes(r, 0xffff, &p->len);
        break;
    default:
        /* an even type we cannot frame: the rest of the message is unreadable */
        ir_fail(r, ERR_KVP);
        break;
    }
}

/* Append a decoded entry; duplicates of the types we know are refused. */
static void push(ietf_r *r, struct moq_ietf_params *out, const struct moq_ietf_param *p)
{
    if (r->err) return;
    if (is_known(p->type) && p->type != MOQ_IETF_PARAM_AUTHORIZATION_TOKEN &&
        moq_ietf_param_find(out, p->type)) {
        ir_fail(r, ERR_KVP);
        return;
    }
    if (out->n == MOQ_IETF_MAX_PARAMS) {
        ir_fail(r, MOQ_ERR_TOO_LARGE);
        return;
    }
    out->p[out->n++] = *p;
}

static void read_kvps(ietf_r *r, struct moq_ietf_params *out, uint64_t count, bool to_end,
                      bool typed)
{
    out->n = 0;
    uint64_t prev = 0;
    for (uint64_t i = 0; !r->err && (to_end ? ir_left(r) > 0 : i < count); i++) {
        uint64_t t = ir_varint(r);
        if (r->c->kvp_delta) {
            if (i && t > UINT64_MAX - prev) ir_fail(r, ERR_KVP);
            t = i ? prev + t : t;
        }
        prev = t;
        struct moq_ietf_param p;
        read_value(r, t, typed, &p);
        push(r, out, &p);
    }
}

void moq_ietf_params_read(ietf_r *r, struct moq_ietf_params *out)
{
    out->n = 0;
    uint64_t count = ir_varint(r);
    if (!r->err && count > MOQ_IETF_MAX_PARAMS) ir_fail(r, MOQ_ERR_TOO_LARGE);
    read_kvps(r, out, count, false, r->c->typed_params);
}

void moq_ietf_options_read(ietf_r *r, struct moq_ietf_params *out)
{
    out->n = 0;
    if (r->c->setup_count) {
        uint64_t count = ir_varint(r);
        if (!r->err && count > MOQ_IETF_MAX_PARAMS) ir_fail(r, MOQ_ERR_TOO_LARGE);
        read_kvps(r, out, count, false, false);
    } else {
        read_kvps(r, out, 0, true, false);
    }
}

static int cmp_param(const void *a, const void *b)
{
    const struct moq_ietf_param_out *x = a, *y = b;
    return x->type < y->type ? -1 : x->type > y->type;
}

static void write_kvps(ietf_w *w, const struct moq_ietf_param_out *in, size_t n, bool count,
                       bool typed)
{
    struct moq_ietf_param_out ps[MOQ_IETF_MAX_PARAMS];
    if (n > MOQ_IETF_MAX_PARAMS) {
        w->err = w->err ? w->err : MOQ_ERR_TOO_LARGE;
        return;
    }
    memcpy(ps, in, n * sizeof(*ps));
    if (w->c->kvp_delta) qsort(ps, n, sizeof(*ps), cmp_param);
    if (count) iw_varint(w, n);
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        iw_varint(w, w->c->kvp_delta ? ps[i].type - prev : ps[i].type);
        prev = ps[i].type;
        enum kind k = typed ? typed_kind(ps[i].type) : ((ps[i].type & 1) ? K_BYTES : K_VARINT);
        switch (k) {
        case K_U8:
        case K_BOOL:
            iw_u8(w, (uint8_t)ps[i].value);
            break;
        case K_BYTES:
            iw_lenbytes(w, ps[i].data, ps[i].len);
            break;
        default:
            iw_varint(w, ps[i].value);
            break;
        }
    }
}

void moq_ietf_params_write(ietf_w *w, const struct moq_ietf_param_out *ps, size_t n)
{
    write_kvps(w, ps, n, true, w->c->typed_params);
}

void moq_ietf_options_write(ietf_w *w, const struct moq_ietf_param_out *ps, size_t n)
{
    write_kvps(w, ps, n, w->c->setup_count, false);
}

/* ---------------------------------------------------------------- track properties */

void moq_ietf_props_read(ietf_r *r, struct moq_ietf_props *out)
{
    memset(out, 0, sizeof(*out));
    if (!r->c->read_properties) return;
    uint64_t prev = 0;
    for (size_t i = 0; !r->err && ir_left(r) > 0; i++) {
        uint64_t t = ir_varint(r);
        if (i && t > UINT64_MAX - prev) ir_fail(r, ERR_KVP);
        t = i ? prev + t : t;
        prev = t;
        if (t & 1) {
            size_t len;
            ir_lenbytes(r, 0xffff, &len);
            continue;
        }
        uint64_t v = ir_varint(r);
        if (t == MOQ_IETF_PROP_TIMESCALE)
            out->timescale = v; /* 0 = none, as if absent */
        else if (t == MOQ_IETF_PROP_GROUP_ORDER) {
            if (v < 1 || v > 2) ir_fail(r, MOQ_ERR_PROTO);
            out->group_order = (uint8_t)v;
        }
    }
}

void moq_ietf_props_write(ietf_w *w, const struct moq_ietf_props *p)
{
    if (!w->c->track_properties) return;
    uint64_t prev = 0;
    if (p->timescale) {
        iw_varint(w, MOQ_IETF_PROP_TIMESCALE);
        iw_varint(w, p->timescale);
        prev = MOQ_IETF_PROP_TIMESCALE;
    }
    if (p->group_order) {
        iw_varint(w, MOQ_IETF_PROP_GROUP_ORDER - prev);
        iw_varint(w, p->group_order);
    }
}

/* ---------------------------------------------------------------- filters */

/* The tagged form of drafts 14-19 read from r (inline on 14, a parameter value after). */
static void filter_read_tagged(ietf_r *r, struct moq_ietf_filter *f, bool end_delta)
{
    uint64_t tag = ir_varint(r);
    switch (tag) {
    case 0x1:
        f->kind = MOQ_IETF_FILTER_NEXT_GROUP;
        break;
    case 0x2:
        f->kind = MOQ_IETF_FILTER_LARGEST;
        break;
    case 0x3:
    case 0x4:
        f->kind = MOQ_IETF_FILTER_ABSOLUTE;
        ir_location(r, &f->start_group, &f->start_object);
        if (tag == 0x4) {
            uint64_t end = ir_varint(r);
            f->has_end = true;
            if (end_delta) {
                if (end > UINT64_MAX - f->start_group) ir_fail(r, MOQ_ERR_PROTO);
                end += f->start_group;
            }
            f->end_group = end;
            if (!r->err && f->end_group < f->start_group) ir_fail(r, MOQ_ERR_PROTO);
        }
        break;
    default:
        ir_fail(r, MOQ_ERR_PROTO);
        break;
    }
}

int moq_ietf_filter_decode(const moq_ietf_caps *c, const uint8_t *p, size_t len,
                           struct moq_ietf_filter *out)
{
    memset(out, 0, sizeof(*out));
    ietf_r r;
    ir_init(&r, p, len, c);
    if (c->filter != MOQ_IETF_FILTER_FIELDS) {
        filter_read_tagged(&r, out, c->filter == MOQ_IETF_FILTER_TAG_DELTA);
        return ir_done(&r);
    }
    uint64_t v[4];
    size_t n = 0;
    while (ir_left(&r) > 0 && !r.err) {
        if (n == 4) {
            ir_fail(&r, MOQ_ERR_PROTO);
            break;
        }
        v[n++] = ir_varint(&r);
    }
    if (r.err) return r.err;
    switch (n) {
    case 0:
        out->kind = MOQ_IETF_FILTER_NONE;
        break;
    case 1:
        out->kind = v[0] == 0 ? MOQ_IETF_FILTER_NEXT_GROUP : MOQ_IETF_FILTER_RELATIVE;
        out->groups = v[0];
        break;
    default:
        if (n == 2 && v[0] == 0 && v[1] == 0) {
            out->kind = MOQ_IETF_FILTER_LARGEST;
            break;
        }
        out->kind = MOQ_IETF_FILTER_ABSOLUTE;
        out->start_group = v[0];
        out->start_object = v[1];
        if (n >= 3) {
            if (v[2] > UINT64_MAX - v[0]) return MOQ_ERR_PROTO;
            out->has_end = true;
            out->end_group = v[0] + v[2];
        }
        if (n == 4) {
            out->has_end_object = true;
            out->end_object = v[3];
        }
        break;
    }
    return 0;
}

void moq_ietf_filter_write(ietf_w *w, const struct moq_ietf_filter *f)
{
    bool fields = w->c->filter == MOQ_IETF_FILTER_FIELDS;
    bool delta = w->c->filter != MOQ_IETF_FILTER_TAG_ABS && w->c->filter != MOQ_IETF_FILTER_INLINE;
    switch (f->kind) {
    case MOQ_IETF_FILTER_NEXT_GROUP:
        iw_varint(w, fields ? 0 : 0x1);
        return;
    case MOQ_IETF_FILTER_LARGEST:
        if (fields) {
            iw_varint(w, 0);
            iw_varint(w, 0);
        } else {
            iw_varint(w, 0x2);
        }
        return;
    case MOQ_IETF_FILTER_RELATIVE:
        if (fields) {
            iw_varint(w, f->groups);
            return;
        }
        iw_varint(w, f->groups ? 0x2 : 0x1); /* no relative form before draft-20 */
        return;
    case MOQ_IETF_FILTER_ABSOLUTE:
        if (!fields) iw_varint(w, f->has_end ? 0x4 : 0x3);
        iw_location(w, f->start_group, f->start_object);
        if (f->has_end) {
            iw_varint(w, delta ? f->end_group - f->start_group : f->end_group);
            if (fields && f->has_end_object) iw_varint(w, f->end_object);
        }
        return;
    default:
        /* unfiltered: nothing on draft-20, the whole track as an absolute start before */
        if (!fields) {
            iw_varint(w, 0x3);
            iw_location(w, 0, 0);
        }
        return;
    }
}
