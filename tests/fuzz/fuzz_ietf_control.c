/* Fuzz target: every moq-transport control-message decoder, the subgroup stream parser and
 * the object extension block converter, on every draft.
 *
 * Input: byte 0 picks the draft (mod 7); byte 1 picks the piece size for the subgroup
 * parser. The rest is offered whole to every decoder as a message body, fed to the
 * subgroup parser in pieces, and converted as an extension block to every other draft's
 * form. Whatever decodes as SUBSCRIBE must re-encode and decode again to the same request;
 * a block that converts must convert back to the same pairs. Decoders must release what
 * they own on every path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ietf/codec.h"
#include "ietf/objects.h"
#include "util/err.h"
#include "util/varint.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

static void subscribe_roundtrip(const moq_ietf_caps *c, const uint8_t *body, size_t len)
{
    struct moq_ietf_subscribe m;
    if (moq_ietf_decode_subscribe(c, body, len, &m) == 0) {
        moq_buf b;
        moq_buf_init(&b);
        moq_str ns = moq_str_make(m.ns.data, m.ns.len);
        if (moq_ietf_encode_subscribe(&b, c, &m, ns) == 0) {
            uint64_t type;
            int tn = moq_ietf_varint_get(c, b.data, b.len, &type);
            CHECK(tn > 0 && b.len >= (size_t)tn + 2);
            struct moq_ietf_subscribe again;
            CHECK(moq_ietf_decode_subscribe(c, b.data + tn + 2, b.len - (size_t)tn - 2, &again) ==
                  0);
            CHECK(again.request_id == m.request_id && again.track.len == m.track.len);
            CHECK(again.ns.len == m.ns.len);
            moq_buf_free(&again.ns);
        }
        moq_buf_free(&b);
    }
    moq_buf_free(&m.ns);
}

static void decode_all(const moq_ietf_caps *c, const uint8_t *body, size_t len)
{
    struct moq_ietf_setup setup;
    moq_ietf_decode_setup(c, true, body, len, &setup);
    moq_ietf_decode_setup(c, false, body, len, &setup);
    bool has;
    uint64_t hop;
    moq_ietf_setup_hop_id(c, &setup, &has, &hop);
    subscribe_roundtrip(c, body, len);
    struct moq_ietf_subscribe_ok ok;
    moq_ietf_decode_subscribe_ok(c, body, len, &ok);
    struct moq_ietf_request_update up;
    moq_ietf_decode_request_update(c, body, len, &up);
    struct moq_ietf_publish_done done;
    moq_ietf_decode_publish_done(c, body, len, &done);
    struct moq_ietf_request_error err;
    moq_ietf_decode_request_error(c, body, len, &err);
    struct moq_ietf_request_ok rok;
    moq_ietf_decode_request_ok(c, body, len, &rok);
    uint64_t id;
    moq_ietf_decode_id_msg(c, body, len, &id);
    struct moq_ietf_goaway ga;
    moq_ietf_decode_goaway(c, body, len, &ga);
    struct moq_ietf_publish_namespace pn;
    moq_ietf_decode_publish_namespace(c, body, len, &pn);
    moq_buf_free(&pn.ns);
    for (int cancel = 0; cancel < 2; cancel++) {
        struct moq_ietf_namespace_done nd;
        moq_ietf_decode_publish_namespace_done(c, cancel, body, len, &nd);
        moq_buf_free(&nd.ns);
    }
    for (int v2 = 0; v2 < 2; v2++) {
        struct moq_ietf_subscribe_namespace sn;
        moq_ietf_decode_subscribe_namespace(
            c, v2 ? MOQ_IETF_SUBSCRIBE_NAMESPACE_V2 : MOQ_IETF_SUBSCRIBE_NAMESPACE_V1, body, len,
            &sn);
        moq_buf_free(&sn.prefix);
    }
    for (int d = 0; d < 4; d++) {
        struct moq_ietf_namespace ns;
        moq_ietf_decode_namespace(c, d & 1, d & 2, body, len, &ns);
        moq_buf_free(&ns.suffix);
    }
    struct moq_ietf_fetch f;
    moq_ietf_decode_fetch(c, body, len, &f);
    moq_buf_free(&f.ns);
    struct moq_ietf_fetch_ok fok;
    moq_ietf_decode_fetch_ok(c, body, len, &fok);
    struct moq_ietf_track_status ts;
    moq_ietf_decode_track_status(c, body, len, &ts);
    moq_buf_free(&ts.ns);
    moq_ietf_decode_publish_request_id(c, body, len, &id);
    struct moq_ietf_filter filter;
    moq_ietf_filter_decode(c, body, len, &filter);
}

static void parse_subgroup(const moq_ietf_caps *c, const uint8_t *data, size_t len, size_t piece)
{
    moq_ietf_sg_parser p;
    moq_ietf_sg_init(&p, c);
    uint64_t payload = 0, announced = 0, ext = 0;
    for (size_t off = 0; off < len; off += piece) {
        const uint8_t *d = data + off;
        size_t n = len - off < piece ? len - off : piece;
        struct moq_ietf_sg_ev ev;
        int rv;
        while ((rv = moq_ietf_sg_next(&p, &d, &n, &ev)) > 0) {
            /* sizes may be up to 2^64-1 (leading-ones varints): saturate the sum */
            if (ev.kind == MOQ_IETF_SG_OBJECT)
                announced = ev.size > UINT64_MAX - announced ? UINT64_MAX : announced + ev.size;
            if (ev.kind == MOQ_IETF_SG_EXT) {
                CHECK(ev.data >= data && ev.data + ev.len <= data + len);
                ext += ev.len;
                CHECK(ext <= 64 * 1024); /* per object, reset below */
            }
            if (ev.kind == MOQ_IETF_SG_OBJECT) ext = 0;
            if (ev.kind == MOQ_IETF_SG_PAYLOAD) {
                CHECK(ev.data >= data && ev.data + ev.len <= data + len);
                payload += ev.len;
            }
        }
        if (rv < 0) return;
        CHECK(n == 0);
    }
    CHECK(payload <= announced);
}

/* from -> every draft -> canonical must equal from -> canonical directly */
static void convert_extensions(const moq_ietf_caps *from, const uint8_t *data, size_t len)
{
    const moq_ietf_caps *canon = moq_ietf_caps_get(MOQ_IETF_EXT_CANONICAL);
    moq_buf direct;
    moq_buf_init(&direct);
    int rv = moq_ietf_ext_convert(from, data, len, canon, &direct);
    for (size_t i = 0; rv == 0 && moq_ietf_drafts[i]; i++) {
        const moq_ietf_caps *to = moq_ietf_drafts[i];
        moq_buf mid, back;
        moq_buf_init(&mid);
        moq_buf_init(&back);
        CHECK(moq_ietf_ext_convert(canon, direct.data, direct.len, to, &mid) == 0);
        CHECK(moq_ietf_ext_convert(to, mid.data, mid.len, canon, &back) == 0);
        /* equal types may be reordered only by a sort, which is stable: same bytes when the
         * draft keeps absolute types, the same length always */
        CHECK(back.len == direct.len);
        if (!to->kvp_delta || from->kvp_delta)
            CHECK(direct.len == 0 || memcmp(back.data, direct.data, direct.len) == 0);
        moq_buf_free(&mid);
        moq_buf_free(&back);
    }
    moq_buf_free(&direct);
}

/* An object's Timestamp: decoding fails exactly when the block is malformed or its time is
 * out of range; writing the canonical block with a Timestamp in any draft's form reads
 * back as that Timestamp in the track's units (the carried time pairs gave way). */
static void object_time(const moq_ietf_caps *from, const uint8_t *data, size_t len)
{
    const moq_ietf_caps *canon = moq_ietf_caps_get(MOQ_IETF_EXT_CANONICAL);
    struct moq_ietf_time t;
    int rv = moq_ietf_object_time_decode(from, data, len, 1000, &t);
    moq_buf direct;
    moq_buf_init(&direct);
    int conv = moq_ietf_ext_convert(from, data, len, canon, &direct);
    CHECK((rv == MOQ_ERR_PROTO) == (conv == MOQ_ERR_PROTO));
    if (rv == 1) CHECK(t.scale != 0 && t.value <= MOQ_VARINT_MAX);
    uint64_t ts = 0;
    if (rv == 1 && !moq_ietf_time_convert(t.value, t.scale, 1000000, &ts)) rv = 0;
    for (size_t i = 0; conv == 0 && moq_ietf_drafts[i]; i++) {
        const moq_ietf_caps *to = moq_ietf_drafts[i];
        moq_buf out;
        moq_buf_init(&out);
        CHECK(moq_ietf_object_header_time(&out, to, direct.data, direct.len, true, ts, 1) == 0);
        uint64_t id, blen;
        int a = moq_ietf_varint_get(to, out.data, out.len, &id);
        CHECK(a > 0 && id == 0);
        int b = moq_ietf_varint_get(to, out.data + a, out.len - (size_t)a, &blen);
        CHECK(b > 0 && blen <= out.len - (size_t)(a + b));
        struct moq_ietf_time back;
        CHECK(moq_ietf_object_time_decode(to, out.data + a + b, (size_t)blen, 1000000, &back) == 1);
        CHECK(back.value == ts && back.scale == 1000000);
        moq_buf_free(&out);
    }
    moq_buf_free(&direct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const moq_ietf_caps *c = moq_ietf_drafts[data[0] % 7];
    size_t piece = (size_t)data[1] % 16 + 1;
    data += 2;
    size -= 2;
    decode_all(c, data, size);
    parse_subgroup(c, data, size, piece);
    parse_subgroup(c, data, size, size ? size : 1);
    convert_extensions(c, data, size);
    object_time(c, data, size);
    return 0;
}
