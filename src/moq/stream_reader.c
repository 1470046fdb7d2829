#include "moq/stream_reader.h"
#include "moq/codec.h"
#include "moq/errors.h"
#include "util/err.h"
#include "util/varint.h"

#include <string.h>

static void advance(const uint8_t **in, size_t *in_len, size_t n)
{
    if (n == 0) return; /* *in may be NULL with an empty piece */
    *in += n;
    *in_len -= n;
}

/* ---- one varint -------------------------------------------------------------------- */

void moq_varint_reader_init(moq_varint_reader *r)
{
    r->have = 0;
    r->need = 0;
}

int moq_varint_reader_next(moq_varint_reader *r, const uint8_t **in, size_t *in_len, bool fin,
                           uint64_t *value)
{
    if (r->need == 0) {
        if (*in_len == 0) return fin ? MOQ_ERR_CLOSED : 0;
        r->need = (uint8_t)(1u << ((*in)[0] >> 6));
        if (*in_len >= r->need) { /* whole varint in the input: no copy */
            moq_varint_get(*in, r->need, value);
            advance(in, in_len, r->need);
            moq_varint_reader_init(r);
            return 1;
        }
    }
    size_t take = r->need - r->have;
    if (take > *in_len) take = *in_len;
    if (take) memcpy(r->buf + r->have, *in, take);
    r->have = (uint8_t)(r->have + take);
    advance(in, in_len, take);
    if (r->have < r->need) return fin ? MOQ_ERR_PROTO : 0;
    moq_varint_get(r->buf, r->need, value);
    moq_varint_reader_init(r);
    return 1;
}

/* ---- control messages -------------------------------------------------------------- */

enum { CTRL_TYPE, CTRL_SIZE, CTRL_BODY };

#define CTRL_KEEP_CAP 4096

static int ctrl_boundary_state(const moq_ctrl_reader *r)
{
    return (r->flags & MOQ_CTRL_TYPED) ? CTRL_TYPE : CTRL_SIZE;
}

void moq_ctrl_reader_init(moq_ctrl_reader *r, unsigned flags, size_t max_msg)
{
    memset(r, 0, sizeof(*r));
    r->flags = flags;
    r->max_msg = max_msg;
    r->state = ctrl_boundary_state(r);
    moq_varint_reader_init(&r->vr);
    moq_buf_init(&r->body);
}

void moq_ctrl_reader_set_typed(moq_ctrl_reader *r, bool typed)
{
    bool handed_out = r->state == CTRL_BODY && r->body.len == r->size;
    bool fresh = r->state == ctrl_boundary_state(r) && r->vr.need == 0;
    if (typed)
        r->flags |= MOQ_CTRL_TYPED;
    else
        r->flags &= ~(unsigned)MOQ_CTRL_TYPED;
    if (fresh && !handed_out) r->state = ctrl_boundary_state(r);
}

void moq_ctrl_reader_free(moq_ctrl_reader *r)
{
    moq_buf_free(&r->body);
}

static int ctrl_fail(moq_ctrl_reader *r, int err)
{
    r->error = err;
    return err;
}

/* Reads the size field; 1 when known. */
static int ctrl_read_size(moq_ctrl_reader *r, const uint8_t **in, size_t *in_len, bool fin)
{
    uint64_t size;
    if (r->flags & MOQ_CTRL_U16_SIZE) {
        size_t take = 2 - r->size16_have;
        if (take > *in_len) take = *in_len;
        if (take) memcpy(r->size16 + r->size16_have, *in, take);
        r->size16_have = (uint8_t)(r->size16_have + take);
        advance(in, in_len, take);
        if (r->size16_have < 2) return fin ? MOQ_ERR_PROTO : 0;
        r->size16_have = 0;
        size = ((uint64_t)r->size16[0] << 8) | r->size16[1];
    } else {
        int rv = moq_varint_reader_next(&r->vr, in, in_len, fin, &size);
        if (rv == MOQ_ERR_CLOSED) return MOQ_ERR_PROTO; /* typed: FIN after the type */
        if (rv <= 0) return rv;
    }
    if (size > r->max_msg) return MOQ_ERR_TOO_LARGE;
    r->size = (size_t)size;
    return 1;
}

size_t moq_ctrl_reader_pending(const moq_ctrl_reader *r)
{
    if (r->state != CTRL_BODY || r->body.len == r->size) return 0;
    return r->body.cap;
}

int moq_ctrl_reader_next(moq_ctrl_reader *r, const uint8_t **in, size_t *in_len, bool fin,
                         struct moq_ctrl_msg *msg)
{
    if (r->error) return r->error;
    if (r->state == CTRL_BODY && r->body.len == r->size) { /* previous message handed out */
        /* Long-lived streams should not keep a rare large message's buffer. */
        if (r->body.cap > CTRL_KEEP_CAP) moq_buf_free(&r->body);
        moq_buf_reset(&r->body);
        r->state = ctrl_boundary_state(r);
    }
    int rv;
    if (r->state == CTRL_TYPE) {
        rv = moq_varint_reader_next(&r->vr, in, in_len, fin, &r->type);
        if (rv <= 0) return rv == 0 ? 0 : ctrl_fail(r, rv);
        r->state = CTRL_SIZE;
    }
    if (r->state == CTRL_SIZE) {
        bool at_boundary = !(r->flags & MOQ_CTRL_TYPED) && r->vr.need == 0 && r->size16_have == 0;
        if (at_boundary && *in_len == 0) return fin ? ctrl_fail(r, MOQ_ERR_CLOSED) : 0;
        rv = ctrl_read_size(r, in, in_len, fin);
        if (rv <= 0) return rv == 0 ? 0 : ctrl_fail(r, rv);
        rv = moq_buf_reserve(&r->body, r->size);
        if (rv < 0) return ctrl_fail(r, rv);
        r->state = CTRL_BODY;
    }
    size_t take = r->size - r->body.len;
    if (take > *in_len) take = *in_len;
    if (take > 0) {
        memcpy(r->body.data + r->body.len, *in, take);
        r->body.len += take;
        advance(in, in_len, take);
    }
    if (r->body.len < r->size) return fin ? ctrl_fail(r, MOQ_ERR_PROTO) : 0;
    msg->type = r->type;
    msg->body = r->body.data;
    msg->len = r->size;
    return 1;
}

/* ---- group streams ----------------------------------------------------------------- */

enum { GP_HDR_SIZE, GP_HDR_BODY, GP_FRAME_TS, GP_FRAME_SIZE, GP_PAYLOAD, GP_DONE };

int moq_group_parser_init(moq_group_parser *gp, moq_version v, bool has_header, uint64_t max_frame)
{
    const moq_caps *c = moq_caps_get(v);
    memset(gp, 0, sizeof(*gp));
    if (!c) return MOQ_ERR_UNSUPPORTED;
    gp->timestamps = c->frame_timestamps;
    gp->max_frame = max_frame;
    gp->state = has_header ? GP_HDR_SIZE : GP_FRAME_TS;
    moq_varint_reader_init(&gp->vr);
    return 0;
}

static int gp_fail(moq_group_parser *gp, int err, uint64_t code)
{
    gp->error = err;
    gp->error_code = code;
    return err;
}

static int gp_header(moq_group_parser *gp, const uint8_t **in, size_t *in_len, bool fin,
                     struct moq_group_event *ev)
{
    if (gp->state == GP_HDR_SIZE) {
        uint64_t size;
        int rv = moq_varint_reader_next(&gp->vr, in, in_len, fin, &size);
        if (rv == 0) return 0;
        if (rv < 0) return gp_fail(gp, MOQ_ERR_PROTO, MOQ_CODE_DECODE);
        /* Two varints take 2..16 bytes; anything else cannot be consumed exactly. */
        if (size < 2 || size > sizeof(gp->hdr)) return gp_fail(gp, MOQ_ERR_PROTO, MOQ_CODE_DECODE);
        gp->hdr_size = (uint8_t)size;
        gp->state = GP_HDR_BODY;
    }
    size_t take = (size_t)(gp->hdr_size - gp->hdr_have);
    if (take > *in_len) take = *in_len;
    if (take) memcpy(gp->hdr + gp->hdr_have, *in, take);
    gp->hdr_have = (uint8_t)(gp->hdr_have + take);
    advance(in, in_len, take);
    if (gp->hdr_have < gp->hdr_size) return fin ? gp_fail(gp, MOQ_ERR_PROTO, MOQ_CODE_DECODE) : 0;

    struct moq_group_header h;
    if (moq_decode_group_header(MOQ_LITE_03, gp->hdr, gp->hdr_size, &h) < 0)
        return gp_fail(gp, MOQ_ERR_PROTO, MOQ_CODE_DECODE);
    gp->sub_id = h.sub_id;
    gp->sequence = h.sequence;
    gp->state = GP_FRAME_TS;
    memset(ev, 0, sizeof(*ev));
    ev->kind = MOQ_GROUP_EV_HEADER;
    ev->sub_id = h.sub_id;
    ev->sequence = h.sequence;
    return MOQ_GROUP_EV_HEADER;
}

/* Reads a frame-header varint; FIN before its first byte is the clean end of the group only
 * when `boundary` (nothing of this frame read yet). */
static int gp_frame_varint(moq_group_parser *gp, const uint8_t **in, size_t *in_len, bool fin,
                           bool boundary, uint64_t *value)
{
    int rv = moq_varint_reader_next(&gp->vr, in, in_len, fin, value);
    if (rv == MOQ_ERR_CLOSED && boundary) {
        gp->state = GP_DONE;
        return MOQ_GROUP_EV_END;
    }
    if (rv < 0) return gp_fail(gp, MOQ_ERR_PROTO, MOQ_CODE_WRONG_SIZE);
    return rv;
}

int moq_group_parser_next(moq_group_parser *gp, const uint8_t **in, size_t *in_len, bool fin,
                          struct moq_group_event *ev)
{
    if (gp->error) return gp->error;
    int rv;
    switch (gp->state) {
    case GP_HDR_SIZE:
    case GP_HDR_BODY:
        return gp_header(gp, in, in_len, fin, ev);

    case GP_FRAME_TS:
        if (gp->timestamps) {
            uint64_t zz;
            rv = gp_frame_varint(gp, in, in_len, fin, true, &zz);
            if (rv != 1) break;
            int64_t delta = moq_zigzag_decode(zz);
            /* prev_ts < 2^62 and |delta| < 2^63: the sum fits in 64-bit signed range
             * only when checked in unsigned space. */
            uint64_t ts = gp->prev_ts + (uint64_t)delta;
            bool overflow =
                delta < 0 ? (uint64_t)(-(delta + 1)) + 1 > gp->prev_ts : ts > MOQ_VARINT_MAX;
            if (overflow) return gp_fail(gp, MOQ_ERR_PROTO, MOQ_CODE_BOUNDS_EXCEEDED);
            gp->frame_ts = gp->prev_ts = ts;
        }
        gp->state = GP_FRAME_SIZE;
        /* fall through */
    case GP_FRAME_SIZE: {
        uint64_t size;
        rv = gp_frame_varint(gp, in, in_len, fin, !gp->timestamps, &size);
        if (rv != 1) break;
        if (size > gp->max_frame) return gp_fail(gp, MOQ_ERR_TOO_LARGE, MOQ_CODE_FRAME_TOO_LARGE);
        gp->remaining = size;
        gp->state = GP_PAYLOAD;
        memset(ev, 0, sizeof(*ev));
        ev->kind = MOQ_GROUP_EV_FRAME;
        ev->sub_id = gp->sub_id;
        ev->sequence = gp->sequence;
        ev->timestamp = gp->frame_ts;
        ev->size = size;
        return MOQ_GROUP_EV_FRAME;
    }
    case GP_PAYLOAD:
        memset(ev, 0, sizeof(*ev));
        if (gp->remaining == 0) {
            gp->state = GP_FRAME_TS;
            ev->kind = MOQ_GROUP_EV_FRAME_END;
            return MOQ_GROUP_EV_FRAME_END;
        }
        if (*in_len == 0) return fin ? gp_fail(gp, MOQ_ERR_PROTO, MOQ_CODE_WRONG_SIZE) : 0;
        ev->kind = MOQ_GROUP_EV_PAYLOAD;
        ev->data = *in;
        ev->len = *in_len < gp->remaining ? *in_len : (size_t)gp->remaining;
        gp->remaining -= ev->len;
        advance(in, in_len, ev->len);
        return MOQ_GROUP_EV_PAYLOAD;

    default: /* GP_DONE */
        memset(ev, 0, sizeof(*ev));
        ev->kind = MOQ_GROUP_EV_END;
        return MOQ_GROUP_EV_END;
    }
    if (rv == MOQ_GROUP_EV_END) {
        memset(ev, 0, sizeof(*ev));
        ev->kind = MOQ_GROUP_EV_END;
    }
    return rv;
}
