/* Subgroup streams: SUBGROUP_HEADER and the objects in it. */
#include "ietf/objects.h"

#include <stdlib.h>
#include <string.h>

#include "ietf/wire.h"
#include "util/err.h"
#include "util/varint.h"

#define FIRST_OBJECT_BIT 0x40
#define MAX_EXTENSIONS   (64 * 1024)

enum { S_HEADER, S_ID, S_EXT, S_LEN, S_STATUS, S_PAYLOAD, S_OBJECT_END, S_DONE };

bool moq_ietf_is_subgroup_type(const moq_ietf_caps *c, uint64_t type)
{
    if (c->first_object_bit) type &= ~(uint64_t)FIRST_OBJECT_BIT;
    uint64_t base = type;
    if (c->header_priority_optional && type >= 0x30 && type <= 0x3d) base = type - 0x20;
    if (base < 0x10 || base > 0x1d) return false;
    return (base & 0x06) != 0x06; /* subgroup id mode 0b11 is reserved */
}

static int parse_header(const moq_ietf_caps *c, const uint8_t *p, size_t len,
                        struct moq_ietf_subgroup_header *h)
{
    size_t off = 0;
    uint64_t type;
    int n = moq_ietf_varint_get(c, p, len, &type);
    if (n < 0) return n;
    off += (size_t)n;
    if (!moq_ietf_is_subgroup_type(c, type)) return MOQ_ERR_PROTO;
    memset(h, 0, sizeof(*h));
    h->type = type;
    h->first_object = !c->first_object_bit || (type & FIRST_OBJECT_BIT);
    if (c->first_object_bit) type &= ~(uint64_t)FIRST_OBJECT_BIT;
    bool priority = type <= 0x1d;
    uint64_t base = priority ? type : type - 0x20;
    h->extensions = base & 0x01;
    h->subgroup_first = (base & 0x06) == 0x02;
    h->end_of_group = base & 0x08;
    if ((n = moq_ietf_varint_get(c, p + off, len - off, &h->track_alias)) < 0) return n;
    off += (size_t)n;
    if ((n = moq_ietf_varint_get(c, p + off, len - off, &h->group)) < 0) return n;
    off += (size_t)n;
    if ((base & 0x06) == 0x04) {
        if ((n = moq_ietf_varint_get(c, p + off, len - off, &h->subgroup)) < 0) return n;
        off += (size_t)n;
    }
    h->priority = 128;
    if (priority) {
        if (off >= len) return MOQ_ERR_AGAIN;
        h->priority = p[off++];
    }
    return (int)off;
}

size_t moq_ietf_subgroup_header_pack(const moq_ietf_caps *c, uint8_t *out, uint64_t alias,
                                     uint64_t group, uint8_t priority)
{
    return moq_ietf_subgroup_header_pack_ext(c, out, alias, group, priority, false);
}

size_t moq_ietf_subgroup_header_pack_ext(const moq_ietf_caps *c, uint8_t *out, uint64_t alias,
                                         uint64_t group, uint8_t priority, bool extensions)
{
    uint64_t type = 0x18 | (extensions ? 0x01 : 0) | (c->first_object_bit ? FIRST_OBJECT_BIT : 0);
    uint8_t *p = moq_ietf_varint_put(c, out, type);
    p = moq_ietf_varint_put(c, p, alias);
    p = moq_ietf_varint_put(c, p, group);
    *p++ = priority;
    return (size_t)(p - out);
}

size_t moq_ietf_object_header_pack(const moq_ietf_caps *c, uint8_t *out, uint64_t payload_len)
{
    uint8_t *p = moq_ietf_varint_put(c, out, 0);
    p = moq_ietf_varint_put(c, p, payload_len);
    if (payload_len == 0) p = moq_ietf_varint_put(c, p, MOQ_IETF_STATUS_NORMAL);
    return (size_t)(p - out);
}

int moq_ietf_object_header_ext(moq_buf *out, const moq_ietf_caps *c, const uint8_t *ext,
                               size_t ext_len, uint64_t payload_len)
{
    moq_buf block;
    moq_buf_init(&block);
    const moq_ietf_caps *canon = moq_ietf_caps_get(MOQ_IETF_EXT_CANONICAL);
    int rv = moq_ietf_ext_convert(canon, ext, ext_len, c, &block);
    uint8_t head[2 * MOQ_IETF_VARINT_MAX], tail[2 * MOQ_IETF_VARINT_MAX];
    uint8_t *p = moq_ietf_varint_put(c, head, 0);
    p = moq_ietf_varint_put(c, p, block.len);
    uint8_t *q = moq_ietf_varint_put(c, tail, payload_len);
    if (payload_len == 0) q = moq_ietf_varint_put(c, q, MOQ_IETF_STATUS_NORMAL);
    if (rv == 0 && (moq_buf_append(out, head, (size_t)(p - head)) < 0 ||
                    moq_buf_append(out, block.data, block.len) < 0 ||
                    moq_buf_append(out, tail, (size_t)(q - tail)) < 0))
        rv = MOQ_ERR_NOMEM;
    moq_buf_free(&block);
    return rv;
}

/* ---------------------------------------------------------------- fetch objects */

#define FETCH_OBJECT_ID  0x04u
#define FETCH_GROUP_ID   0x08u
#define FETCH_PRIORITY   0x10u
#define FETCH_EXTENSIONS 0x20u

static int fetch_object_plain(moq_buf *out, const moq_ietf_caps *c,
                              const struct moq_ietf_fetch_cursor *cur, uint64_t group,
                              uint64_t object, const moq_buf *block, uint64_t payload_len)
{
    uint8_t head[4 * MOQ_IETF_VARINT_MAX + 1], *p = head;
    p = moq_ietf_varint_put(c, p, group);
    p = moq_ietf_varint_put(c, p, 0);
    p = moq_ietf_varint_put(c, p, object);
    *p++ = cur->priority;
    p = moq_ietf_varint_put(c, p, block->len);
    uint8_t tail[2 * MOQ_IETF_VARINT_MAX], *q = moq_ietf_varint_put(c, tail, payload_len);
    if (payload_len == 0) q = moq_ietf_varint_put(c, q, MOQ_IETF_STATUS_NORMAL);
    if (moq_buf_append(out, head, (size_t)(p - head)) < 0 ||
        moq_buf_append(out, block->data, block->len) < 0 ||
        moq_buf_append(out, tail, (size_t)(q - tail)) < 0)
        return MOQ_ERR_NOMEM;
    return 0;
}

/* The Group ID field of an object that names its group: absolute through draft-17, from
 * draft-18 the distance from the prior object's group minus one, in the fetch's group order
 * (the first object's is absolute). */
static uint64_t fetch_group_field(const moq_ietf_caps *c, const struct moq_ietf_fetch_cursor *cur,
                                  uint64_t group)
{
    if (c->fetch_objects != MOQ_IETF_FETCH_FLAGS_DELTA || !cur->any) return group;
    return cur->descending ? cur->group - group - 1 : group - cur->group - 1;
}

/* The Object ID field: absolute, except from draft-18 in the prior object's group, where it
 * is the distance from the prior object's id. */
static uint64_t fetch_object_field(const moq_ietf_caps *c, const struct moq_ietf_fetch_cursor *cur,
                                   bool same_group, uint64_t object)
{
    if (c->fetch_objects != MOQ_IETF_FETCH_FLAGS_DELTA || !same_group) return object;
    return object - cur->object;
}

static int fetch_object_flags(moq_buf *out, const moq_ietf_caps *c,
                              const struct moq_ietf_fetch_cursor *cur, uint64_t group,
                              uint64_t object, const moq_buf *block, uint64_t payload_len)
{
    bool same_group = cur->any && group == cur->group;
    uint64_t flags = 0;
    if (!same_group) flags |= FETCH_GROUP_ID | FETCH_OBJECT_ID;
    if (same_group && object != cur->object + 1) flags |= FETCH_OBJECT_ID;
    if (!cur->any) flags |= FETCH_PRIORITY;
    if (block->len) flags |= FETCH_EXTENSIONS;
    uint8_t head[5 * MOQ_IETF_VARINT_MAX + 1], *p = head;
    if (c->fetch_objects == MOQ_IETF_FETCH_FLAGS8)
        *p++ = (uint8_t)flags;
    else
        p = moq_ietf_varint_put(c, p, flags);
    if (flags & FETCH_GROUP_ID) p = moq_ietf_varint_put(c, p, fetch_group_field(c, cur, group));
    if (flags & FETCH_OBJECT_ID)
        p = moq_ietf_varint_put(c, p, fetch_object_field(c, cur, same_group, object));
    if (flags & FETCH_PRIORITY) *p++ = cur->priority;
    if (flags & FETCH_EXTENSIONS) p = moq_ietf_varint_put(c, p, block->len);
    uint8_t tail[2 * MOQ_IETF_VARINT_MAX], *q = moq_ietf_varint_put(c, tail, payload_len);
    if (payload_len == 0 && c->fetch_objects == MOQ_IETF_FETCH_FLAGS8)
        q = moq_ietf_varint_put(c, q, MOQ_IETF_STATUS_NORMAL);
    if (moq_buf_append(out, head, (size_t)(p - head)) < 0 ||
        moq_buf_append(out, block->data, block->len) < 0 ||
        moq_buf_append(out, tail, (size_t)(q - tail)) < 0)
        return MOQ_ERR_NOMEM;
    return 0;
}

int moq_ietf_fetch_object_header(moq_buf *out, const moq_ietf_caps *c,
                                 struct moq_ietf_fetch_cursor *cur, uint64_t group, uint64_t object,
                                 const uint8_t *ext, size_t ext_len, uint64_t payload_len)
{
    bool back = cur->descending ? group > cur->group : group < cur->group;
    if (cur->any && (back || (group == cur->group && object <= cur->object)))
        return MOQ_ERR_INVALID;
    moq_buf block;
    moq_buf_init(&block);
    const moq_ietf_caps *canon = moq_ietf_caps_get(MOQ_IETF_EXT_CANONICAL);
    int rv = moq_ietf_ext_convert(canon, ext, ext_len, c, &block);
    size_t before = out->len;
    if (rv == 0)
        rv = c->fetch_objects == MOQ_IETF_FETCH_PLAIN
                 ? fetch_object_plain(out, c, cur, group, object, &block, payload_len)
                 : fetch_object_flags(out, c, cur, group, object, &block, payload_len);
    moq_buf_free(&block);
    if (rv < 0) {
        out->len = before;
        return rv;
    }
    cur->any = true;
    cur->group = group;
    cur->object = object;
    return 0;
}

/* ---------------------------------------------------------------- extension blocks */

struct kvp {
    uint64_t type;
    uint64_t value;      /* even types */
    const uint8_t *data; /* odd types: data[0..value) */
    size_t index;        /* position in the input, for a stable sort */
};

static int kvp_cmp(const void *a, const void *b)
{
    const struct kvp *x = a, *y = b;
    if (x->type != y->type) return x->type < y->type ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Split a block into its pairs; *out is malloc'd (NULL when the block is empty). */
static int ext_parse(const moq_ietf_caps *c, const uint8_t *in, size_t len, struct kvp **out,
                     size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t cap = 0, n = 0, off = 0;
    struct kvp *v = NULL;
    uint64_t prev = 0;
    while (off < len) {
        struct kvp k = {0};
        int r = moq_ietf_varint_get(c, in + off, len - off, &k.type);
        if (r < 0) goto bad;
        off += (size_t)r;
        if (c->kvp_delta && n > 0) {
            if (k.type > UINT64_MAX - prev) goto bad;
            k.type += prev;
        }
        prev = k.type;
        if ((r = moq_ietf_varint_get(c, in + off, len - off, &k.value)) < 0) goto bad;
        off += (size_t)r;
        if (k.type & 1) {
            if (k.value > len - off) goto bad;
            k.data = in + off;
            off += (size_t)k.value;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            struct kvp *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                return MOQ_ERR_NOMEM;
            }
            v = nv;
        }
        k.index = n;
        v[n++] = k;
    }
    *out = v;
    *n_out = n;
    return 0;
bad:
    free(v);
    return MOQ_ERR_PROTO;
}

int moq_ietf_ext_convert(const moq_ietf_caps *from, const uint8_t *in, size_t len,
                         const moq_ietf_caps *to, moq_buf *out)
{
    struct kvp *v;
    size_t n;
    int rv = ext_parse(from, in, len, &v, &n);
    if (rv < 0) return rv;
    if (to->kvp_delta && n > 1) qsort(v, n, sizeof(*v), kvp_cmp);
    uint64_t prev = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        uint8_t tmp[2 * MOQ_IETF_VARINT_MAX], *p = tmp;
        uint64_t type = to->kvp_delta && i > 0 ? v[i].type - prev : v[i].type;
        prev = v[i].type;
        if (!moq_ietf_varint_len(to, type) || !moq_ietf_varint_len(to, v[i].value)) {
            rv = MOQ_ERR_INVALID;
            break;
        }
        p = moq_ietf_varint_put(to, p, type);
        p = moq_ietf_varint_put(to, p, v[i].value);
        if (moq_buf_append(out, tmp, (size_t)(p - tmp)) < 0 ||
            (v[i].data && moq_buf_append(out, v[i].data, (size_t)v[i].value) < 0))
            rv = MOQ_ERR_NOMEM;
    }
    free(v);
    return rv;
}

/* ---------------------------------------------------------------- object time */

#define PROP_TIMESCALE     0x08
#define PROP_TIMESTAMP     0x10
#define PROP_TIMESTAMP_OLD 0x06

static bool is_time_prop(uint64_t type)
{
    return type == PROP_TIMESTAMP || type == PROP_TIMESTAMP_OLD || type == PROP_TIMESCALE;
}

int moq_ietf_object_time_decode(const moq_ietf_caps *c, const uint8_t *ext, size_t len,
                                uint64_t track_scale, struct moq_ietf_time *out)
{
    struct kvp *v;
    size_t n;
    int rv = ext_parse(c, ext, len, &v, &n);
    if (rv < 0) return rv;
    bool found = false, own_scale = false;
    uint64_t value = 0, scale = track_scale;
    for (size_t i = 0; i < n; i++) {
        if (v[i].type == PROP_TIMESTAMP || v[i].type == PROP_TIMESTAMP_OLD) {
            found = true;
            value = v[i].value;
        } else if (v[i].type == PROP_TIMESCALE) {
            own_scale = true;
            scale = v[i].value;
        }
    }
    free(v);
    if (!found) return 0;
    if ((own_scale && scale == 0) || value > MOQ_VARINT_MAX) return MOQ_ERR_INVALID;
    out->value = value;
    out->scale = scale;
    return 1;
}

bool moq_ietf_time_convert(uint64_t value, uint64_t from, uint64_t to, uint64_t *out)
{
    if (!from || !to) return false;
    unsigned __int128 scaled = (unsigned __int128)value * to / from;
    if (scaled > MOQ_VARINT_MAX) return false;
    *out = (uint64_t)scaled;
    return true;
}

int moq_ietf_object_header_time(moq_buf *out, const moq_ietf_caps *c, const uint8_t *ext,
                                size_t ext_len, bool has_timestamp, uint64_t timestamp,
                                uint64_t payload_len)
{
    const moq_ietf_caps *canon = moq_ietf_caps_get(MOQ_IETF_EXT_CANONICAL);
    struct kvp *v;
    size_t n;
    int rv = ext_parse(canon, ext, ext_len, &v, &n);
    if (rv < 0) return rv;
    moq_buf block;
    moq_buf_init(&block);
    for (size_t i = 0; i < n && rv == 0; i++) {
        if (is_time_prop(v[i].type)) continue;
        uint8_t tmp[2 * MOQ_IETF_VARINT_MAX];
        uint8_t *p = moq_ietf_varint_put(canon, tmp, v[i].type);
        p = moq_ietf_varint_put(canon, p, v[i].value);
        if (moq_buf_append(&block, tmp, (size_t)(p - tmp)) < 0 ||
            (v[i].data && moq_buf_append(&block, v[i].data, (size_t)v[i].value) < 0))
            rv = MOQ_ERR_NOMEM;
    }
    free(v);
    if (rv == 0 && has_timestamp && timestamp <= MOQ_VARINT_MAX) {
        uint8_t tmp[2 * MOQ_IETF_VARINT_MAX];
        uint8_t *p = moq_ietf_varint_put(canon, tmp, PROP_TIMESTAMP);
        p = moq_ietf_varint_put(canon, p, timestamp);
        if (moq_buf_append(&block, tmp, (size_t)(p - tmp)) < 0) rv = MOQ_ERR_NOMEM;
    }
    if (rv == 0) rv = moq_ietf_object_header_ext(out, c, block.data, block.len, payload_len);
    moq_buf_free(&block);
    return rv;
}

void moq_ietf_sg_init(moq_ietf_sg_parser *p, const moq_ietf_caps *c)
{
    memset(p, 0, sizeof(*p));
    p->c = c;
    p->state = S_HEADER;
}

bool moq_ietf_sg_idle(const moq_ietf_sg_parser *p)
{
    return (p->state == S_ID && p->have == 0) || p->state == S_DONE;
}

/* Move one byte into the assembly buffer. */
static int take_byte(moq_ietf_sg_parser *p, const uint8_t **data, size_t *len)
{
    if (p->have == sizeof(p->buf)) return MOQ_ERR_PROTO;
    p->buf[p->have++] = **data;
    (*data)++;
    (*len)--;
    return 0;
}

/* Assemble one varint of the draft's form from the input; 1 = done, 0 = need more. */
static int take_varint(moq_ietf_sg_parser *p, const uint8_t **data, size_t *len, uint64_t *out)
{
    while (*len > 0) {
        if (take_byte(p, data, len) < 0) return MOQ_ERR_PROTO;
        int n = moq_ietf_varint_get(p->c, p->buf, p->have, out);
        if (n == MOQ_ERR_AGAIN) continue;
        p->have = 0;
        return n < 0 ? MOQ_ERR_PROTO : 1;
    }
    return 0;
}

static int next_object_id(moq_ietf_sg_parser *p, uint64_t delta, uint64_t *id)
{
    uint64_t base = p->any_object ? p->last_id + 1 : 0;
    if (delta > UINT64_MAX - base) return MOQ_ERR_PROTO;
    *id = base + delta;
    p->any_object = true;
    p->last_id = *id;
    return 0;
}

int moq_ietf_sg_next(moq_ietf_sg_parser *p, const uint8_t **data, size_t *len,
                     struct moq_ietf_sg_ev *ev)
{
    memset(ev, 0, sizeof(*ev));
    uint64_t v;
    int rv;
    for (;;) {
        switch (p->state) {
        case S_HEADER:
            while (*len > 0) {
                if (take_byte(p, data, len) < 0) return MOQ_ERR_PROTO;
                rv = parse_header(p->c, p->buf, p->have, &p->header);
                if (rv == MOQ_ERR_AGAIN) continue;
                if (rv < 0) return MOQ_ERR_PROTO;
                p->have = 0;
                p->state = S_ID;
                ev->kind = MOQ_IETF_SG_HEADER;
                ev->header = p->header;
                return 1;
            }
            return 0;
        case S_ID:
            if ((rv = take_varint(p, data, len, &v)) <= 0) return rv;
            if (next_object_id(p, v, &ev->object_id) < 0) return MOQ_ERR_PROTO;
            p->state = p->header.extensions ? S_EXT : S_LEN;
            p->left = UINT64_MAX; /* extension length not read yet */
            break;
        case S_EXT:
            if (p->left == UINT64_MAX) {
                if ((rv = take_varint(p, data, len, &v)) <= 0) return rv;
                if (v > MAX_EXTENSIONS) return MOQ_ERR_PROTO;
                p->left = v;
            }
            if (p->left == 0) {
                p->state = S_LEN;
                break;
            }
            if (*len == 0) return 0;
            {
                size_t n = *len < p->left ? *len : (size_t)p->left;
                ev->kind = MOQ_IETF_SG_EXT;
                ev->data = *data;
                ev->len = n;
                *data += n;
                *len -= n;
                p->left -= n;
            }
            if (p->left == 0) p->state = S_LEN;
            return 1;
        case S_LEN:
            if ((rv = take_varint(p, data, len, &v)) <= 0) return rv;
            if (v == 0) {
                p->state = S_STATUS;
                break;
            }
            p->left = v;
            p->state = S_PAYLOAD;
            ev->kind = MOQ_IETF_SG_OBJECT;
            ev->object_id = p->last_id;
            ev->size = v;
            return 1;
        case S_STATUS:
            if ((rv = take_varint(p, data, len, &v)) <= 0) return rv;
            ev->object_id = p->last_id;
            ev->status = v;
            if (v == MOQ_IETF_STATUS_END_OF_GROUP || v == MOQ_IETF_STATUS_END_OF_TRACK) {
                p->state = S_DONE;
                ev->kind = MOQ_IETF_SG_END_OF_GROUP;
                return 1;
            }
            if (v != MOQ_IETF_STATUS_NORMAL) return MOQ_ERR_PROTO;
            p->state = S_OBJECT_END;
            ev->kind = MOQ_IETF_SG_OBJECT;
            ev->size = 0;
            return 1;
        case S_PAYLOAD: {
            if (*len == 0) return 0;
            size_t n = *len < p->left ? *len : (size_t)p->left;
            ev->kind = MOQ_IETF_SG_PAYLOAD;
            ev->data = *data;
            ev->len = n;
            *data += n;
            *len -= n;
            p->left -= n;
            if (p->left == 0) p->state = S_OBJECT_END;
            return 1;
        }
        case S_OBJECT_END:
            p->state = S_ID;
            ev->kind = MOQ_IETF_SG_OBJECT_END;
            return 1;
        default: /* S_DONE: nothing may follow the end of the group */
            return *len > 0 ? MOQ_ERR_PROTO : 0;
        }
    }
}
