#include "h3/frames.h"
#include "util/err.h"
#include "util/varint.h"

#include <nghttp3/nghttp3.h>
#include <stdlib.h>
#include <string.h>

int moq_h3_encode_our_settings(moq_buf *out)
{
    static const uint64_t settings[][2] = {
        {MOQ_H3_SETTING_ENABLE_CONNECT_PROTOCOL, 1}, {MOQ_H3_SETTING_H3_DATAGRAM, 1},
        {MOQ_H3_SETTING_H3_DATAGRAM_DRAFT04, 1},     {MOQ_H3_SETTING_WT_MAX_SESSIONS, 1},
        {MOQ_H3_SETTING_WT_MAX_SESSIONS_DRAFT, 1},   {MOQ_H3_SETTING_ENABLE_WEBTRANSPORT, 1},
    };
    size_t n = sizeof(settings) / sizeof(settings[0]);
    size_t body = 0;
    for (size_t i = 0; i < n; i++)
        body += moq_varint_len(settings[i][0]) + moq_varint_len(settings[i][1]);
    int rv = moq_buf_put_varint(out, MOQ_H3_FRAME_SETTINGS);
    if (rv == 0) rv = moq_buf_put_varint(out, body);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        rv = moq_buf_put_varint(out, settings[i][0]);
        if (rv == 0) rv = moq_buf_put_varint(out, settings[i][1]);
    }
    return rv;
}

int moq_h3_decode_settings(const uint8_t *body, size_t len, struct moq_h3_settings *out)
{
    memset(out, 0, sizeof(*out));
    moq_rd r;
    moq_rd_init(&r, body, len);
    uint64_t seen[MOQ_H3_MAX_SETTINGS];
    size_t nseen = 0;
    while (moq_rd_left(&r)) {
        uint64_t id, value;
        if (moq_rd_varint(&r, &id) < 0 || moq_rd_varint(&r, &value) < 0) return MOQ_ERR_PROTO;
        /* HTTP/2 settings that HTTP/3 reserves */
        if (id == 0x02 || id == 0x03 || id == 0x04 || id == 0x05) return MOQ_ERR_PROTO;
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == id) return MOQ_ERR_PROTO;
        if (nseen == MOQ_H3_MAX_SETTINGS) return MOQ_ERR_TOO_LARGE;
        seen[nseen++] = id;
        switch (id) {
        case MOQ_H3_SETTING_QPACK_MAX_TABLE_CAPACITY:
            out->qpack_max_table_capacity = value;
            break;
        case MOQ_H3_SETTING_QPACK_BLOCKED_STREAMS:
            out->qpack_blocked_streams = value;
            break;
        case MOQ_H3_SETTING_MAX_FIELD_SECTION_SIZE:
            out->max_field_section_size = value;
            break;
        case MOQ_H3_SETTING_ENABLE_CONNECT_PROTOCOL:
            if (value > 1) return MOQ_ERR_PROTO;
            out->enable_connect_protocol = value == 1;
            break;
        case MOQ_H3_SETTING_H3_DATAGRAM:
        case MOQ_H3_SETTING_H3_DATAGRAM_DRAFT04:
            if (value > 1) return MOQ_ERR_PROTO;
            out->h3_datagram |= value == 1;
            break;
        case MOQ_H3_SETTING_ENABLE_WEBTRANSPORT:
            out->enable_webtransport = value == 1;
            break;
        case MOQ_H3_SETTING_WT_MAX_SESSIONS:
        case MOQ_H3_SETTING_WT_MAX_SESSIONS_DRAFT:
            if (value > out->wt_max_sessions) out->wt_max_sessions = value;
            break;
        default:
            break;
        }
    }
    return 0;
}

int moq_h3_frame_header(const uint8_t *data, size_t len, uint64_t *type, uint64_t *flen)
{
    int a = moq_varint_get(data, len, type);
    if (a < 0) return a;
    int b = moq_varint_get(data + a, len - (size_t)a, flen);
    if (b < 0) return b;
    return a + b;
}

bool moq_h3_is_grease(uint64_t type)
{
    return type >= 0x21 && (type - 0x21) % 0x1f == 0;
}

/* ---- field sections ---- */

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void moq_h3_headers_free(struct moq_h3_headers *h)
{
    for (size_t i = 0; i < h->count; i++) {
        free(h->fields[i].name);
        free(h->fields[i].value);
    }
    h->count = 0;
}

int moq_h3_decode_headers(const uint8_t *block, size_t len, struct moq_h3_headers *h)
{
    h->count = 0;
    if (len > MOQ_H3_MAX_FIELD_SECTION) return MOQ_ERR_TOO_LARGE;
    const nghttp3_mem *mem = nghttp3_mem_default();
    nghttp3_qpack_decoder *dec = NULL;
    nghttp3_qpack_stream_context *sctx = NULL;
    int rv = MOQ_ERR_NOMEM;
    if (nghttp3_qpack_decoder_new(&dec, 0, 0, mem) != 0) goto out;
    if (nghttp3_qpack_stream_context_new(&sctx, 0, mem) != 0) goto out;
    size_t total = 0;
    rv = MOQ_ERR_PROTO;
    for (;;) {
        nghttp3_qpack_nv nv;
        uint8_t flags = 0;
        nghttp3_ssize n = nghttp3_qpack_decoder_read_request(dec, sctx, &nv, &flags, block, len, 1);
        if (n < 0) goto out;
        block += n;
        len -= (size_t)n;
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_BLOCKED) goto out; /* needs a dynamic table */
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT) {
            nghttp3_vec name = nghttp3_rcbuf_get_buf(nv.name);
            nghttp3_vec value = nghttp3_rcbuf_get_buf(nv.value);
            int keep = 0;
            total += name.len + value.len + 32;
            if (h->count == MOQ_H3_MAX_HEADERS || total > MOQ_H3_MAX_FIELD_SECTION) {
                keep = MOQ_ERR_TOO_LARGE;
            } else {
                struct moq_h3_field *f = &h->fields[h->count];
                f->name = dup_bytes(name.base, name.len);
                f->value = dup_bytes(value.base, value.len);
                f->name_len = name.len;
                f->value_len = value.len;
                if (f->name && f->value) {
                    h->count++;
                } else {
                    free(f->name);
                    free(f->value);
                    keep = MOQ_ERR_NOMEM;
                }
            }
            nghttp3_rcbuf_decref(nv.name);
            nghttp3_rcbuf_decref(nv.value);
            if (keep < 0) {
                rv = keep;
                goto out;
            }
        }
        if (flags & NGHTTP3_QPACK_DECODE_FLAG_FINAL) {
            rv = 0;
            break;
        }
        if (n == 0 && !(flags & NGHTTP3_QPACK_DECODE_FLAG_EMIT)) goto out;
    }
out:
    if (sctx) nghttp3_qpack_stream_context_del(sctx);
    if (dec) nghttp3_qpack_decoder_del(dec);
    if (rv < 0) moq_h3_headers_free(h);
    return rv;
}

const struct moq_h3_field *moq_h3_headers_get(const struct moq_h3_headers *h, const char *name)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcmp(h->fields[i].name, name) == 0) return &h->fields[i];
    return NULL;
}

/* QPACK prefixed integer (RFC 7541 section 5.1) with `bits` prefix bits; `first` holds
 * the pattern bits above the prefix. */
static int put_prefixed_int(moq_buf *out, uint8_t first, int bits, uint64_t v)
{
    uint64_t max = (1u << bits) - 1;
    if (v < max) return moq_buf_put_u8(out, (uint8_t)(first | v));
    int rv = moq_buf_put_u8(out, (uint8_t)(first | max));
    v -= max;
    while (rv == 0 && v >= 128) {
        rv = moq_buf_put_u8(out, (uint8_t)(0x80 | (v & 0x7f)));
        v >>= 7;
    }
    return rv == 0 ? moq_buf_put_u8(out, (uint8_t)v) : rv;
}

static const struct {
    const char *name;
    const char *value; /* NULL: name-only reference */
    uint8_t index;
} static_table[] = {
    {":authority", NULL, 0},    {":path", "/", 1},       {":path", NULL, 1},
    {":method", "CONNECT", 15}, {":method", "GET", 17},  {":method", NULL, 15},
    {":scheme", "https", 23},   {":scheme", "http", 22}, {":scheme", NULL, 22},
    {":status", "200", 25},     {":status", "404", 27},  {":status", "400", 67},
    {":status", "403", 68},     {":status", "500", 71},  {":status", NULL, 24},
    {"origin", NULL, 90},
};

static int encode_field(moq_buf *out, const char *name, const char *value)
{
    size_t vlen = strlen(value);
    int name_index = -1;
    for (size_t i = 0; i < sizeof(static_table) / sizeof(static_table[0]); i++) {
        if (strcmp(static_table[i].name, name) != 0) continue;
        if (static_table[i].value && strcmp(static_table[i].value, value) == 0)
            return put_prefixed_int(out, 0xc0, 6, static_table[i].index); /* indexed, static */
        if (!static_table[i].value && name_index < 0) name_index = static_table[i].index;
    }
    int rv;
    if (name_index >= 0) {
        rv = put_prefixed_int(out, 0x50, 4, (uint64_t)name_index); /* name ref, static, N=0 */
    } else {
        size_t nlen = strlen(name);
        rv = put_prefixed_int(out, 0x20, 3, nlen); /* literal name, N=0, H=0 */
        if (rv == 0) rv = moq_buf_append(out, name, nlen);
    }
    if (rv == 0) rv = put_prefixed_int(out, 0x00, 7, vlen); /* H=0 */
    if (rv == 0) rv = moq_buf_append(out, value, vlen);
    return rv;
}

int moq_h3_encode_headers(moq_buf *out, const char *const *names, const char *const *values,
                          size_t count)
{
    moq_buf block;
    moq_buf_init(&block);
    /* Required Insert Count 0, Delta Base 0 */
    int rv = moq_buf_append(&block, "\x00\x00", 2);
    for (size_t i = 0; rv == 0 && i < count; i++)
        rv = encode_field(&block, names[i], values[i]);
    if (rv == 0) rv = moq_buf_put_varint(out, MOQ_H3_FRAME_HEADERS);
    if (rv == 0) rv = moq_buf_put_varint(out, block.len);
    if (rv == 0) rv = moq_buf_append(out, block.data, block.len);
    moq_buf_free(&block);
    return rv;
}

/* ---- capsules ---- */

int moq_h3_capsule(const uint8_t *data, size_t len, uint64_t *type, const uint8_t **payload,
                   size_t *plen)
{
    moq_rd r;
    moq_rd_init(&r, data, len);
    uint64_t n;
    if (moq_rd_varint(&r, type) < 0 || moq_rd_varint(&r, &n) < 0) return MOQ_ERR_AGAIN;
    if (n > MOQ_H3_MAX_CAPSULE) return MOQ_ERR_TOO_LARGE;
    if (moq_rd_bytes(&r, (size_t)n, payload) < 0) return MOQ_ERR_AGAIN;
    *plen = (size_t)n;
    return (int)(r.p - data);
}

int moq_h3_encode_close_capsule(moq_buf *out, uint32_t code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 1024) rlen = 1024;
    size_t cap_payload = 4 + rlen;
    size_t capsule =
        moq_varint_len(MOQ_WT_CAPSULE_CLOSE_SESSION) + moq_varint_len(cap_payload) + cap_payload;
    int rv = moq_buf_put_varint(out, MOQ_H3_FRAME_DATA);
    if (rv == 0) rv = moq_buf_put_varint(out, capsule);
    if (rv == 0) rv = moq_buf_put_varint(out, MOQ_WT_CAPSULE_CLOSE_SESSION);
    if (rv == 0) rv = moq_buf_put_varint(out, cap_payload);
    if (rv == 0) rv = moq_buf_put_u32be(out, code);
    if (rv == 0 && rlen) rv = moq_buf_append(out, reason, rlen);
    return rv;
}

/* ---- structured fields ---- */

static size_t skip_ows(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/* Parse one sf-string starting at s[i] == '"'. Returns the index after the closing quote
 * or (size_t)-1. */
static size_t parse_sf_string_at(const char *s, size_t i, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    if (i >= len || s[i] != '"') return (size_t)-1;
    for (i++; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            if (o >= outlen) return (size_t)-1;
            out[o] = '\0';
            return i + 1;
        }
        if (c == '\\') {
            if (++i >= len || (s[i] != '"' && s[i] != '\\')) return (size_t)-1;
            c = s[i];
        } else if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f) {
            return (size_t)-1;
        }
        if (o + 1 >= outlen) return (size_t)-1;
        out[o++] = c;
    }
    return (size_t)-1;
}

int moq_sf_string_parse(const char *s, size_t len, char *out, size_t outlen)
{
    size_t i = skip_ows(s, 0, len);
    i = parse_sf_string_at(s, i, len, out, outlen);
    if (i == (size_t)-1) return MOQ_ERR_INVALID;
    i = skip_ows(s, i, len);
    return i == len ? 0 : MOQ_ERR_INVALID;
}

int moq_sf_string_list(const char *s, size_t len, int (*fn)(void *ctx, const char *item), void *ctx)
{
    char item[256];
    size_t i = skip_ows(s, 0, len);
    while (i < len) {
        if (s[i] == '"') {
            i = parse_sf_string_at(s, i, len, item, sizeof(item));
            if (i == (size_t)-1) return MOQ_ERR_INVALID;
        } else {
            /* a token item: keep it so lenient peers still negotiate */
            size_t o = 0;
            while (i < len && s[i] != ',' && s[i] != ';' && s[i] != ' ' && s[i] != '\t') {
                if (o + 1 >= sizeof(item)) return MOQ_ERR_INVALID;
                item[o++] = s[i++];
            }
            if (o == 0) return MOQ_ERR_INVALID;
            item[o] = '\0';
        }
        /* parameters are skipped */
        while (i < len && s[i] == ';') {
            while (i < len && s[i] != ',') {
                if (s[i] == '"') {
                    char skip[256];
                    i = parse_sf_string_at(s, i, len, skip, sizeof(skip));
                    if (i == (size_t)-1) return MOQ_ERR_INVALID;
                } else {
                    i++;
                }
            }
        }
        int rv = fn(ctx, item);
        if (rv) return rv;
        i = skip_ows(s, i, len);
        if (i == len) break;
        if (s[i] != ',') return MOQ_ERR_INVALID;
        i = skip_ows(s, i + 1, len);
        if (i == len) return MOQ_ERR_INVALID; /* trailing comma */
    }
    return 0;
}

int moq_sf_string_encode(moq_buf *out, const char *s)
{
    int rv = moq_buf_put_u8(out, '"');
    for (; rv == 0 && *s; s++) {
        if (*s == '"' || *s == '\\') rv = moq_buf_put_u8(out, '\\');
        if (rv == 0) rv = moq_buf_put_u8(out, (uint8_t)*s);
    }
    return rv == 0 ? moq_buf_put_u8(out, '"') : rv;
}
