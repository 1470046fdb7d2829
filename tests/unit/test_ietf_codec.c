/* Unit tests for the moq-transport codec (src/ietf): the version table, both varint forms,
 * the draft-14 messages as @moq/net 0.3.4 writes them, round trips on every draft, and the
 * subgroup stream parser fed in every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ietf/codec.h"
#include "ietf/objects.h"
#include "ietf/version.h"
#include "ietf/wire.h"
#include "util/err.h"

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        sscanf(p, "%2x", &v);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    return n;
}

/* Assert that b holds exactly the bytes written in hex; returns their count. */
static size_t assert_buf_hex(const moq_buf *b, const char *hex)
{
    uint8_t want[256];
    assert_true(strlen(hex) < 2 * sizeof(want));
    size_t n = unhex(hex, want);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
    return n;
}

static const moq_ietf_caps *d14(void)
{
    return moq_ietf_caps_get(MOQT_14);
}

static void version_table(void **state)
{
    (void)state;
    for (int d = 14; d <= 20; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get((moq_ietf_draft)d);
        assert_non_null(c);
        assert_int_equal(c->code, 0xff000000ull + (uint64_t)d);
        assert_ptr_equal(moq_ietf_caps_from_alpn(c->alpn, strlen(c->alpn)), c);
        assert_ptr_equal(moq_ietf_caps_from_code(c->code), c);
        assert_ptr_equal(moq_ietf_caps_from_name(c->name), c);
        assert_int_equal(c->leading_ones, d >= 17);
        assert_int_equal(c->request_streams, d >= 17);
    }
    assert_string_equal(d14()->alpn, "moq-00");
    assert_null(moq_ietf_caps_get((moq_ietf_draft)13));
    assert_null(moq_ietf_caps_from_alpn("moql", 4));
}

static void leading_ones_varints(void **state)
{
    (void)state;
    const uint64_t values[] = {0,
                               127,
                               128,
                               16383,
                               16384,
                               (1u << 21) - 1,
                               1u << 21,
                               (1ull << 35),
                               (1ull << 42) - 1,
                               1ull << 42,
                               (1ull << 56) - 1,
                               1ull << 56,
                               UINT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        uint8_t buf[9];
        size_t n = moq_lo_len(values[i]);
        assert_int_not_equal(n, 7);
        assert_ptr_equal(moq_lo_put(buf, values[i]), buf + n);
        uint64_t out;
        assert_int_equal(moq_lo_get(buf, n, false, &out), (int)n);
        assert_true(out == values[i]);
        assert_int_equal(moq_lo_get(buf, n - 1, false, &out), MOQ_ERR_AGAIN);
    }
    uint8_t seven[7] = {0xfc, 1, 2, 3, 4, 5, 6};
    uint64_t out;
    assert_int_equal(moq_lo_get(seven, 7, true, &out), MOQ_ERR_PROTO);
    assert_int_equal(moq_lo_get(seven, 7, false, &out), 7);
}

/* The compat CLIENT_SETUP body @moq/net 0.3.4 sends on the "moql" ALPN: versions lite-02,
 * lite-01, draft-14; MAX_REQUEST_ID 42069, IMPLEMENTATION "moq-lite-js", SOLICIT 1. */
static void client_setup_from_moq_net(void **state)
{
    (void)state;
    uint8_t body[128];
    size_t n = unhex("03 c0000000ff0dad02 c0000000ff0dad01 c0000000ff00000e"
                     " 03 02 80 00 a4 55 07 0b 6d6f712d6c6974652d6a73 80 04 0b 5a 01",
                     body);
    struct moq_ietf_setup s;
    assert_int_equal(moq_ietf_decode_setup(d14(), true, body, n, &s), 0);
    assert_int_equal(s.n_versions, 3);
    assert_true(s.versions[2] == 0xff00000eull);
    uint64_t v;
    assert_true(moq_ietf_setup_number(&s, MOQ_IETF_OPT_MAX_REQUEST_ID, &v));
    assert_int_equal(v, 42069);
    assert_true(moq_ietf_setup_number(&s, MOQ_IETF_OPT_SOLICIT, &v));
    assert_int_equal(v, 1);
    moq_str impl = moq_ietf_setup_bytes(&s, MOQ_IETF_OPT_IMPLEMENTATION);
    assert_int_equal(impl.len, 11);
    /* a truncated body and a trailing byte are both refused */
    assert_int_equal(moq_ietf_decode_setup(d14(), true, body, n - 1, &s), MOQ_ERR_PROTO);
    body[n] = 0;
    assert_int_equal(moq_ietf_decode_setup(d14(), true, body, n + 1, &s), MOQ_ERR_PROTO);
}

static void server_setup_bytes(void **state)
{
    (void)state;
    moq_buf b;
    moq_buf_init(&b);
    struct moq_ietf_setup_out o = {
        .version = 0xff00000eull, .has_max_request_id = true, .max_request_id = 100};
    assert_int_equal(moq_ietf_encode_setup(&b, d14(), false, &o), 0);
    uint8_t want[32];
    size_t n = unhex("21 000c c0000000ff00000e 01 02 40 64", want);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    moq_buf_free(&b);
}

/* SUBSCRIBE as @moq/net writes it on draft-14: priority, descending, forward, the Largest
 * Object filter and no parameters. */
static void subscribe_from_moq_net(void **state)
{
    (void)state;
    uint8_t body[64];
    size_t n = unhex("02 02 04 6c697665 02 6263 01 74 80 02 01 02 00", body);
    struct moq_ietf_subscribe m;
    assert_int_equal(moq_ietf_decode_subscribe(d14(), body, n, &m), 0);
    assert_int_equal(m.request_id, 2);
    assert_int_equal(m.ns.len, 7);
    assert_memory_equal(m.ns.data, "live/bc", 7);
    assert_int_equal(m.track.len, 1);
    assert_int_equal(m.priority, 0x80);
    assert_int_equal(m.group_order, 2);
    assert_true(m.forward);
    assert_int_equal(m.filter.kind, MOQ_IETF_FILTER_LARGEST);
    moq_buf_free(&m.ns);
    /* a bad forward byte */
    body[n - 3] = 7;
    assert_int_equal(moq_ietf_decode_subscribe(d14(), body, n, &m), MOQ_ERR_PROTO);
    moq_buf_free(&m.ns);
}

static void subscribe_roundtrip_every_draft(void **state)
{
    (void)state;
    for (int d = 14; d <= 20; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get((moq_ietf_draft)d);
        struct moq_ietf_subscribe in = {.request_id = 6,
                                        .priority = 3,
                                        .group_order = 2,
                                        .forward = true,
                                        .want_properties = true};
        in.track = moq_str_make("video", 5);
        in.filter.kind = MOQ_IETF_FILTER_ABSOLUTE;
        in.filter.start_group = 5;
        in.filter.has_end = true;
        in.filter.end_group = 9;
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_encode_subscribe(&b, c, &in, moq_str_make("a/b", 3)), 0);
        /* skip type and the u16 length */
        uint64_t type;
        int tn = moq_ietf_varint_get(c, b.data, b.len, &type);
        assert_true(tn > 0);
        assert_int_equal(type, MOQ_IETF_SUBSCRIBE);
        size_t len = ((size_t)b.data[tn] << 8) | b.data[tn + 1];
        assert_int_equal(len, b.len - (size_t)tn - 2);
        struct moq_ietf_subscribe out;
        assert_int_equal(moq_ietf_decode_subscribe(c, b.data + tn + 2, len, &out), 0);
        assert_int_equal(out.request_id, 6);
        assert_memory_equal(out.ns.data, "a/b", 3);
        assert_int_equal(out.priority, 3);
        assert_int_equal(out.filter.kind, MOQ_IETF_FILTER_ABSOLUTE);
        assert_int_equal(out.filter.start_group, 5);
        assert_int_equal(out.filter.end_group, 9);
        moq_buf_free(&out.ns);
        moq_buf_free(&b);
    }
}

static void namespace_messages_draft14(void **state)
{
    (void)state;
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(
        moq_ietf_encode_publish_namespace(&b, d14(), 1, moq_str_make("live/bc", 7), NULL), 0);
    uint8_t want[32];
    size_t n = unhex("06 000b 01 02 04 6c697665 02 6263 00", want);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    b.len = 0;
    assert_int_equal(moq_ietf_encode_publish_namespace_done(&b, d14(), 1, moq_str_make("x", 1)), 0);
    n = unhex("09 0003 01 01 78", want);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    moq_buf_free(&b);
    /* SUBSCRIBE_NAMESPACE 0x11 with an empty prefix */
    uint8_t body[8];
    n = unhex("04 00 00", body);
    struct moq_ietf_subscribe_namespace sn;
    assert_int_equal(
        moq_ietf_decode_subscribe_namespace(d14(), MOQ_IETF_SUBSCRIBE_NAMESPACE_V1, body, n, &sn),
        0);
    assert_int_equal(sn.request_id, 4);
    assert_int_equal(sn.prefix.len, 0);
    moq_buf_free(&sn.prefix);
}

/* A subgroup stream as @moq/net writes one (type 0x19: extensions, end of group). */
static const char *subgroup_hex = "19 02 05 00"           /* header: alias 2, group 5, priority 0 */
                                  " 00 02 1004 03 616263" /* object 0: timestamp 4, "abc" */
                                  " 00 00 00 00"          /* object 1: empty */
                                  " 00 00 02 01 02";      /* object 2: two bytes */

static void run_parser(const uint8_t *in, size_t n, size_t piece, char *trace, size_t cap)
{
    moq_ietf_sg_parser p;
    moq_ietf_sg_init(&p, d14());
    size_t o = 0;
    trace[0] = 0;
    for (size_t off = 0; off < n; off += piece) {
        const uint8_t *data = in + off;
        size_t len = n - off < piece ? n - off : piece;
        struct moq_ietf_sg_ev ev;
        int rv;
        while ((rv = moq_ietf_sg_next(&p, &data, &len, &ev)) > 0) {
            if (ev.kind == MOQ_IETF_SG_HEADER)
                o += (size_t)snprintf(trace + o, cap - o, "H%llu/%llu ",
                                      (unsigned long long)ev.header.track_alias,
                                      (unsigned long long)ev.header.group);
            else if (ev.kind == MOQ_IETF_SG_OBJECT)
                o +=
                    (size_t)snprintf(trace + o, cap - o, "O%llu:%llu ",
                                     (unsigned long long)ev.object_id, (unsigned long long)ev.size);
            else if (ev.kind == MOQ_IETF_SG_EXT)
                for (size_t i = 0; i < ev.len; i++)
                    o += (size_t)snprintf(trace + o, cap - o, "x%02x", ev.data[i]);
            else if (ev.kind == MOQ_IETF_SG_PAYLOAD)
                o += (size_t)snprintf(trace + o, cap - o, "%.*s", (int)ev.len, ev.data);
            else if (ev.kind == MOQ_IETF_SG_OBJECT_END)
                o += (size_t)snprintf(trace + o, cap - o, " E ");
        }
        assert_int_equal(rv, 0);
    }
    assert_true(moq_ietf_sg_idle(&p));
}

static void subgroup_parser_every_split(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = unhex(subgroup_hex, in);
    char whole[256], split[256];
    run_parser(in, n, n, whole, sizeof(whole));
    assert_string_equal(whole, "H2/5 x10x04O0:3 abc E O1:0  E O2:2 \x01\x02 E ");
    for (size_t piece = 1; piece < n; piece++) {
        run_parser(in, n, piece, split, sizeof(split));
        /* payload events may split, the rest must match */
        char a[256], b[256];
        size_t ia = 0, ib = 0;
        for (const char *q = whole; *q; q++)
            if (*q != ' ') a[ia++] = *q;
        for (const char *q = split; *q; q++)
            if (*q != ' ') b[ib++] = *q;
        a[ia] = b[ib] = 0;
        assert_string_equal(a, b);
    }
}

static void subgroup_parser_rejects(void **state)
{
    (void)state;
    const char *bad[] = {"20 01 01 00",           /* not a subgroup type */
                         "16 01 01 00",           /* reserved subgroup id mode */
                         "18 01 01 00 00 00 07"}; /* unknown object status */
    for (size_t i = 0; i < 3; i++) {
        uint8_t in[16];
        size_t n = unhex(bad[i], in);
        moq_ietf_sg_parser p;
        moq_ietf_sg_init(&p, d14());
        const uint8_t *data = in;
        struct moq_ietf_sg_ev ev;
        int rv;
        while ((rv = moq_ietf_sg_next(&p, &data, &n, &ev)) > 0) {
        }
        assert_int_equal(rv, MOQ_ERR_PROTO);
    }
    /* the header and object header we write parse back */
    uint8_t buf[64];
    size_t n = moq_ietf_subgroup_header_pack(d14(), buf, 7, 300, 9);
    n += moq_ietf_object_header_pack(d14(), buf + n, 0);
    n += moq_ietf_object_header_pack(d14(), buf + n, 1);
    buf[n++] = 'z';
    char trace[128];
    run_parser(buf, n, 1, trace, sizeof(trace));
    assert_string_equal(trace, "H7/300 O0:0  E O1:1 z E ");
}

/* An empty namespace (the root, e.g. SUBSCRIBE_NAMESPACE of everything) decodes to an empty
 * string, not a NULL pointer the session would hand to path and permission checks. */
static void empty_namespace_every_draft(void **state)
{
    for (int d = MOQT_14; d <= MOQT_20; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get((moq_ietf_draft)d);
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_encode_subscribe_namespace(&b, c, 4, moq_str_make("", 0)), 0);
        uint64_t type;
        int tn = moq_ietf_varint_get(c, b.data, b.len, &type);
        assert_true(tn > 0);
        struct moq_ietf_subscribe_namespace m;
        assert_int_equal(moq_ietf_decode_subscribe_namespace(c, type, b.data + tn + 2,
                                                             b.len - (size_t)tn - 2, &m),
                         0);
        assert_int_equal(m.request_id, 4);
        assert_int_equal(m.prefix.len, 0);
        assert_non_null(m.prefix.data);
        moq_buf_free(&m.prefix);
        moq_buf_free(&b);
    }
}

/* draft-20's standalone FETCH names its range in a LOCATION_FILTER parameter (0x21, section
 * "Location Filters"): up to four fields, StartGroup, StartObject, EndGroupDelta and the
 * inclusive EndObject - written from and read into the exclusive end object of drafts 14-19
 * (0: the whole end group; no end group: UINT64_MAX, the Largest Object). StartGroup alone
 * is relative (0: the next group), {0, 0} alone the next object, an empty value no filter. */
static void fetch_filter_draft20(void **state)
{
    (void)state;
    const moq_ietf_caps *c = moq_ietf_caps_get(MOQT_20);
    struct moq_ietf_fetch m = {.request_id = 2,
                               .type = MOQ_IETF_FETCH_STANDALONE,
                               .track = moq_str_make("t", 1),
                               .priority = 1,
                               .group_order = 1,
                               .start_group = 4,
                               .end_group = 4,
                               .end_object = 2, /* 4/0 .. 4/1 */
                               .has_range = true};
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_fetch(&b, c, &m, moq_str_make("bbb", 3)), 0);
    uint8_t want[64];
    size_t n = unhex("16 0014 02 01 01 03626262 01 74 03 20 01 01 04 04000001 01 01", want);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    moq_buf_free(&b);

    const struct {
        const char *filter_hex; /* the parameter's length and value */
        bool has_range;
        int kind;
        uint64_t start_group, start_object, end_group, end_object, groups;
    } forms[] = {
        {"04 04 00 00 01", true, MOQ_IETF_FILTER_ABSOLUTE, 4, 0, 4, 2, 0},
        {"04 04 01 01 00", true, MOQ_IETF_FILTER_ABSOLUTE, 4, 1, 5, 1, 0},
        {"03 04 01 01", true, MOQ_IETF_FILTER_ABSOLUTE, 4, 1, 5, 0, 0},
        {"02 04 01", true, MOQ_IETF_FILTER_ABSOLUTE, 4, 1, UINT64_MAX, 0, 0},
        {"01 02", true, MOQ_IETF_FILTER_RELATIVE, 0, 0, UINT64_MAX, 0, 2},
        {"01 00", true, MOQ_IETF_FILTER_NEXT_GROUP, 0, 0, UINT64_MAX, 0, 0},
        {"02 00 00", true, MOQ_IETF_FILTER_LARGEST, 0, 0, UINT64_MAX, 0, 0},
        {"00", false, MOQ_IETF_FILTER_NONE, 0, 0, UINT64_MAX, 0, 0},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        uint8_t body[64];
        size_t len = unhex("02 01 01 03626262 01 74 01 21", body);
        len += unhex(forms[i].filter_hex, body + len);
        struct moq_ietf_fetch f;
        assert_int_equal(moq_ietf_decode_fetch(c, body, len, &f), 0);
        assert_int_equal(f.has_range, forms[i].has_range);
        assert_int_equal(f.start_kind, forms[i].kind);
        assert_int_equal(f.start_group, forms[i].start_group);
        assert_int_equal(f.start_object, forms[i].start_object);
        assert_int_equal(f.end_group, forms[i].end_group);
        assert_int_equal(f.end_object, forms[i].end_object);
        assert_int_equal(f.start_groups, forms[i].groups);
        moq_buf_free(&f.ns);
        if (!f.has_range) continue;
        /* what was read is written back the same, after "16 len 02 01 01 03626262 01 74 03 20
         * 01 01" (the parameters: priority, then the filter's type delta) */
        uint8_t value[16];
        size_t value_len = unhex(forms[i].filter_hex, value);
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_encode_fetch(&b, c, &f, moq_str_make("bbb", 3)), 0);
        assert_true(b.len >= 16 + value_len);
        assert_memory_equal(b.data + 16, value, value_len);
        moq_buf_free(&b);
    }
}

/* The answer to a FETCH on every draft is FETCH_OK (type 0x18; section "FETCH_OK" of drafts
 * 14-20 - REQUEST_OK answers other requests only): the request id through draft-16, the
 * group order on 14 only, end of track, the end location (5, 3 here), no parameters, and
 * from 17 a track properties block (empty). */
static void fetch_answer_every_draft(void **state)
{
    (void)state;
    const char *want_hex[] = {
        "18 0006 06 01 01 05 03 00", /* 14 */
        "18 0005 06 01 05 03 00",    /* 15 */
        "18 0005 06 01 05 03 00",    /* 16 */
        "18 0004 01 05 03 00",       /* 17: no request id */
        "18 0004 01 05 03 00",       /* 18 */
        "18 0004 01 05 03 00",       /* 19 */
        "18 0004 01 05 03 00",       /* 20 */
    };
    for (int d = MOQT_14; d <= MOQT_20; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get((moq_ietf_draft)d);
        struct moq_ietf_fetch_ok m = {.request_id = 6,
                                      .group_order = 1,
                                      .end_of_track = true,
                                      .end_group = 5,
                                      .end_object = 3};
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_encode_fetch_ok(&b, c, &m), 0);
        assert_buf_hex(&b, want_hex[d - MOQT_14]);
        struct moq_ietf_fetch_ok back;
        assert_int_equal(moq_ietf_decode_fetch_ok(c, b.data + 3, b.len - 3, &back), 0);
        if (c->response_ids) assert_int_equal(back.request_id, 6);
        assert_true(back.end_of_track);
        assert_int_equal(back.end_group, 5);
        assert_int_equal(back.end_object, 3);
        moq_buf_free(&b);
    }
}

/* FETCH_OK ending with a track properties block (17+, a TIMESCALE of 16 here) is read
 * whole; a draft-14 group order of 3 or an End Of Track of 2 is a
 * protocol violation. */
static void fetch_answer_read(void **state)
{
    (void)state;
    const moq_ietf_caps *c17 = moq_ietf_caps_get(MOQT_17);
    uint8_t body[16];
    size_t n = unhex("00 04 02  00  08 10", body); /* eot 0, 4/2, no params, 0x08 = 16 */
    struct moq_ietf_fetch_ok m;
    assert_int_equal(moq_ietf_decode_fetch_ok(c17, body, n, &m), 0);
    assert_int_equal(m.end_group, 4);
    assert_int_equal(m.end_object, 2);
    const moq_ietf_caps *c14 = moq_ietf_caps_get(MOQT_14);
    n = unhex("06 03 00 04 02 00", body);
    assert_int_equal(moq_ietf_decode_fetch_ok(c14, body, n, &m), MOQ_ERR_PROTO);
    n = unhex("06 01 02 04 02 00", body);
    assert_int_equal(moq_ietf_decode_fetch_ok(c14, body, n, &m), MOQ_ERR_PROTO);
}

/* Fetch objects per draft (section "Fetch Header" of each): objects 3/0 ("ab"), 3/1 ("c",
 * an extension block) and 5/0 (empty). draft-14 writes every field and the status of the
 * empty object; 15 leads with an 8-bit flags byte, 16+ with a varint and no status; the
 * second object follows the first (no ids), the third names its group (absolute through 17,
 * from 18 a Group ID Delta: the gap minus one). */
static void fetch_objects_every_draft(void **state)
{
    (void)state;
    const char *want_hex[] = {
        "03 00 00 00 00 02  03 00 01 00 03 0d017a 01  05 00 00 00 00 00 00", /* 14 */
        "1c 03 00 00 02  20 03 0d017a 01  0c 05 00 00 00",                   /* 15 */
        "1c 03 00 00 02  20 03 0d017a 01  0c 05 00 00",                      /* 16 */
        "1c 03 00 00 02  20 03 0d017a 01  0c 05 00 00",                      /* 17 */
        "1c 03 00 00 02  20 03 0d017a 01  0c 01 00 00",                      /* 18 */
        "1c 03 00 00 02  20 03 0d017a 01  0c 01 00 00",                      /* 19 */
        "1c 03 00 00 02  20 03 0d017a 01  0c 01 00 00",                      /* 20 */
    };
    const uint8_t ext[] = {0x0d, 0x01, 0x7a};
    for (int d = MOQT_14; d <= MOQT_20; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get((moq_ietf_draft)d);
        struct moq_ietf_fetch_cursor cur = {0};
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 0, NULL, 0, 2), 0);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 1, ext, sizeof(ext), 1), 0);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 5, 0, NULL, 0, 0), 0);
        size_t n = assert_buf_hex(&b, want_hex[d - MOQT_14]);
        /* out of order: refused, nothing written */
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 5, 0, NULL, 0, 1),
                         MOQ_ERR_INVALID);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 4, 9, NULL, 0, 1),
                         MOQ_ERR_INVALID);
        assert_int_equal(b.len, n);
        moq_buf_free(&b);
    }
}

/* The publisher priority of fetch objects is the cursor's (0x55 here; section "Fetch
 * Header"): on every object on draft-14, on the first one only from 15 (flag 0x10; the
 * second object inherits it). */
static void fetch_objects_priority(void **state)
{
    (void)state;
    const struct {
        moq_ietf_draft d;
        const char *hex;
    } want[] = {
        {MOQT_14, "03 00 00 55 00 01  03 00 01 55 00 01"},
        {MOQT_16, "1c 03 00 55 01  00 01"},
        {MOQT_20, "1c 03 00 55 01  00 01"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const moq_ietf_caps *c = moq_ietf_caps_get(want[i].d);
        struct moq_ietf_fetch_cursor cur = {.priority = 0x55};
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 0, NULL, 0, 1), 0);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 1, NULL, 0, 1), 0);
        uint8_t bytes[32];
        size_t n = unhex(want[i].hex, bytes);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, bytes, n);
        moq_buf_free(&b);
    }
}

/* A descending fetch: 5/0 then 3/0 (one byte each); from draft-18 the second group is the
 * distance down from the first minus one ("Fetch Header": "If the Group Order is
 * Descending"). Going back up is refused. */
static void fetch_objects_descending(void **state)
{
    (void)state;
    const char *want_hex[] = {
        "05 00 00 00 00 01  03 00 00 00 00 01", /* 14 */
        "1c 05 00 00 01  0c 03 00 01",          /* 15 */
        "1c 05 00 00 01  0c 03 00 01",          /* 16 */
        "1c 05 00 00 01  0c 03 00 01",          /* 17 */
        "1c 05 00 00 01  0c 01 00 01",          /* 18 */
        "1c 05 00 00 01  0c 01 00 01",          /* 19 */
        "1c 05 00 00 01  0c 01 00 01",          /* 20 */
    };
    for (int d = MOQT_14; d <= MOQT_20; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get((moq_ietf_draft)d);
        struct moq_ietf_fetch_cursor cur = {.descending = true};
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 5, 0, NULL, 0, 1), 0);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 0, NULL, 0, 1), 0);
        size_t n = assert_buf_hex(&b, want_hex[d - MOQT_14]);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 4, 0, NULL, 0, 1),
                         MOQ_ERR_INVALID);
        assert_int_equal(b.len, n);
        moq_buf_free(&b);
    }
}

/* Gaps in a fetch (objects that do not exist): 3/0, 3/2, 3/3, then 4/1. An object of the
 * prior object's group that does not follow it names its Object ID alone, the group being
 * the prior object's ("Fetch Header", flag 0x04 without 0x08): absolute through draft-17,
 * from 18 the distance from the prior object's id; the first object of a new group names
 * both (from 18 the Group ID Delta, then the Object ID as is). */
static void fetch_objects_with_gaps(void **state)
{
    (void)state;
    const char *want_hex[] = {
        "03 00 00 00 00 01  03 00 02 00 00 01  03 00 03 00 00 01  04 00 01 00 00 01", /* 14 */
        "1c 03 00 00 01  04 02 01  00 01  0c 04 01 01",                               /* 15 */
        "1c 03 00 00 01  04 02 01  00 01  0c 04 01 01",                               /* 16 */
        "1c 03 00 00 01  04 02 01  00 01  0c 04 01 01",                               /* 17 */
        "1c 03 00 00 01  04 02 01  00 01  0c 00 01 01",                               /* 18 */
        "1c 03 00 00 01  04 02 01  00 01  0c 00 01 01",                               /* 19 */
        "1c 03 00 00 01  04 02 01  00 01  0c 00 01 01",                               /* 20 */
    };
    for (int d = MOQT_14; d <= MOQT_20; d++) {
        const moq_ietf_caps *c = moq_ietf_caps_get((moq_ietf_draft)d);
        struct moq_ietf_fetch_cursor cur = {0};
        moq_buf b;
        moq_buf_init(&b);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 0, NULL, 0, 1), 0);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 2, NULL, 0, 1), 0);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 3, 3, NULL, 0, 1), 0);
        assert_int_equal(moq_ietf_fetch_object_header(&b, c, &cur, 4, 1, NULL, 0, 1), 0);
        assert_buf_hex(&b, want_hex[d - MOQT_14]);
        moq_buf_free(&b);
    }
}

/* Draft-14 SUBSCRIBE_UPDATE as upstream lays it out: request id, the subscription's id, start
 * location, end group (+1, 0 = open), priority and forward bytes, parameters. */
static void subscribe_update_draft14(void **state)
{
    (void)state;
    struct moq_ietf_request_update m = {.request_id = 10,
                                        .subscription_id = 5,
                                        .has_priority = true,
                                        .priority = 200,
                                        .has_forward = true,
                                        .forward = true,
                                        .has_filter = true};
    m.filter.kind = MOQ_IETF_FILTER_ABSOLUTE;
    m.filter.start_group = 1;
    m.filter.start_object = 2;
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_encode_request_update(&b, d14(), &m), 0);
    uint8_t want[32];
    size_t n = unhex("02 0008 0a 05 01 02 00 c8 01 00", want);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    struct moq_ietf_request_update back;
    assert_int_equal(moq_ietf_decode_request_update(d14(), b.data + 3, b.len - 3, &back), 0);
    assert_int_equal(back.request_id, 10);
    assert_int_equal(back.subscription_id, 5);
    assert_int_equal(back.filter.start_group, 1);
    assert_int_equal(back.filter.start_object, 2);
    assert_int_equal(back.priority, 200);
    assert_false(back.has_end);
    assert_true(back.forward);
    moq_buf_free(&b);
}

/* Extension blocks between the drafts' forms: types absolute on 14/15, deltas in ascending
 * order from 16 (a stable sort), varints leading-ones from 17; a malformed block and a
 * value draft-14 cannot hold are told apart. */
static void extension_blocks_convert(void **state)
{
    (void)state;
    const moq_ietf_caps *c14 = d14(), *c16 = moq_ietf_caps_get(MOQT_16),
                        *c17 = moq_ietf_caps_get(MOQT_17);
    uint8_t in[32], want[32];
    size_t n = unhex("10 04 0b 02 6869 10 05", in);
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_ietf_ext_convert(c14, in, n, c14, &b), 0); /* order kept */
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, in, n);
    b.len = 0;
    assert_int_equal(moq_ietf_ext_convert(c14, in, n, c16, &b), 0);
    size_t wn = unhex("0b 02 6869 05 04 00 05", want);
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);
    moq_buf back;
    moq_buf_init(&back);
    assert_int_equal(moq_ietf_ext_convert(c16, b.data, b.len, c17, &back), 0);
    assert_int_equal(back.len, wn); /* small values: one byte in either varint form */
    assert_memory_equal(back.data, want, wn);
    back.len = 0;
    assert_int_equal(moq_ietf_ext_convert(c17, b.data, b.len, c14, &back), 0);
    wn = unhex("0b 02 6869 10 04 10 05", want);
    assert_int_equal(back.len, wn);
    assert_memory_equal(back.data, want, wn);
    /* malformed: bytes beyond the block, a truncated varint */
    const char *bad[] = {"0b 05 68", "10", "10 40"};
    for (size_t i = 0; i < 3; i++) {
        n = unhex(bad[i], in);
        b.len = 0;
        assert_int_equal(moq_ietf_ext_convert(c14, in, n, c16, &b), MOQ_ERR_PROTO);
    }
    /* 2^63 on draft-17 has no QUIC varint */
    uint8_t *q = moq_lo_put(in, 0x10);
    q = moq_lo_put(q, 1ull << 63);
    b.len = 0;
    assert_int_equal(moq_ietf_ext_convert(c17, in, (size_t)(q - in), c14, &b), MOQ_ERR_INVALID);
    moq_buf_free(&b);
    moq_buf_free(&back);
}

/* Object time against upstream's encoders: a Timestamp of 96000 ms on a millisecond track
 * as @moq/net writes the object (draft-15 absolute types, QUIC varints; draft-18 the same
 * pair in leading-ones varints), 2000 ms into a microsecond track (moq-net's test), and the
 * decoding of an object Timescale, loc-03's id and a block without a Timestamp. */
static void object_time_vectors(void **state)
{
    (void)state;
    const moq_ietf_caps *c14 = d14(), *c15 = moq_ietf_caps_get(MOQT_15),
                        *c16 = moq_ietf_caps_get(MOQT_16), *c18 = moq_ietf_caps_get(MOQT_18);
    uint8_t want[32], in[32];
    moq_buf b;
    moq_buf_init(&b);
    uint64_t ts = 0;
    assert_true(moq_ietf_time_convert(96000, 1000, 1000, &ts));
    assert_int_equal(moq_ietf_object_header_time(&b, c15, NULL, 0, true, ts, 1), 0);
    size_t wn = unhex("00 05 10 80017700 01", want);
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);
    b.len = 0;
    assert_int_equal(moq_ietf_object_header_time(&b, c16, NULL, 0, true, ts, 1), 0);
    assert_int_equal(b.len, wn); /* a lone pair: its delta is its type */
    assert_memory_equal(b.data, want, wn);
    b.len = 0;
    assert_int_equal(moq_ietf_object_header_time(&b, c18, NULL, 0, true, ts, 1), 0);
    wn = unhex("00 04 10 c17700 01", want);
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);

    assert_true(moq_ietf_time_convert(2000, 1000, 1000000, &ts));
    assert_int_equal(ts, 2000000);
    b.len = 0;
    assert_int_equal(moq_ietf_object_header_time(&b, c18, NULL, 0, true, ts, 0), 0);
    wn = unhex("00 04 10 de8480 00 00", want); /* empty payload: status Normal */
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);

    /* a carried block: its Timestamp and Timescale give way, the rest stays, sorted (16+) */
    size_t n = unhex("10 04 08 01 0b 02 6869 06 09", in);
    b.len = 0;
    assert_int_equal(moq_ietf_object_header_time(&b, c16, in, n, true, 5, 0), 0);
    wn = unhex("00 06 0b 02 6869 05 05 00 00", want);
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);
    b.len = 0; /* without a timestamp to write */
    assert_int_equal(moq_ietf_object_header_time(&b, c14, in, n, false, 0, 0), 0);
    wn = unhex("00 04 0b 02 6869 00 00", want);
    assert_int_equal(b.len, wn);
    assert_memory_equal(b.data, want, wn);
    moq_buf_free(&b);

    struct moq_ietf_time t;
    n = unhex("10 de8480", in); /* decodes what it wrote, in the track's units */
    assert_int_equal(moq_ietf_object_time_decode(c18, in, n, 1000000, &t), 1);
    assert_int_equal(t.value, 2000000);
    assert_int_equal(t.scale, 1000000);
    n = unhex("08 83e8 08 2a", in); /* draft-18: Timescale 1000, then Timestamp 42 */
    assert_int_equal(moq_ietf_object_time_decode(c18, in, n, 1000000, &t), 1);
    assert_int_equal(t.value, 42);
    assert_int_equal(t.scale, 1000);
    n = unhex("10 2a 08 43e8", in); /* draft-14: absolute types, any order */
    assert_int_equal(moq_ietf_object_time_decode(c14, in, n, 1000000, &t), 1);
    assert_int_equal(t.value, 42);
    assert_int_equal(t.scale, 1000);
    n = unhex("06 4309", in); /* loc-03's Timestamp id */
    assert_int_equal(moq_ietf_object_time_decode(c15, in, n, 90000, &t), 1);
    assert_int_equal(t.value, 777);
    assert_int_equal(t.scale, 90000);
    n = unhex("0b 02 6869", in);
    assert_int_equal(moq_ietf_object_time_decode(c14, in, n, 1000, &t), 0);
    assert_int_equal(moq_ietf_object_time_decode(c14, in, 0, 1000, &t), 0);
    n = unhex("08 00 10 01", in);
    assert_int_equal(moq_ietf_object_time_decode(c14, in, n, 1000, &t), MOQ_ERR_INVALID);
    n = unhex("10 40", in);
    assert_int_equal(moq_ietf_object_time_decode(c14, in, n, 1000, &t), MOQ_ERR_PROTO);

    /* conversions round down and refuse what no varint holds */
    assert_true(moq_ietf_time_convert(1, 90000, 1000000, &ts));
    assert_int_equal(ts, 11);
    assert_false(moq_ietf_time_convert((1ull << 62) - 1, 1000, 1000000, &ts));
    assert_false(moq_ietf_time_convert(1, 0, 1000, &ts));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_table),
        cmocka_unit_test(leading_ones_varints),
        cmocka_unit_test(client_setup_from_moq_net),
        cmocka_unit_test(server_setup_bytes),
        cmocka_unit_test(subscribe_from_moq_net),
        cmocka_unit_test(subscribe_roundtrip_every_draft),
        cmocka_unit_test(namespace_messages_draft14),
        cmocka_unit_test(empty_namespace_every_draft),
        cmocka_unit_test(fetch_filter_draft20),
        cmocka_unit_test(fetch_answer_every_draft),
        cmocka_unit_test(fetch_answer_read),
        cmocka_unit_test(fetch_objects_every_draft),
        cmocka_unit_test(fetch_objects_priority),
        cmocka_unit_test(fetch_objects_descending),
        cmocka_unit_test(fetch_objects_with_gaps),
        cmocka_unit_test(subscribe_update_draft14),
        cmocka_unit_test(extension_blocks_convert),
        cmocka_unit_test(object_time_vectors),
        cmocka_unit_test(subgroup_parser_every_split),
        cmocka_unit_test(subgroup_parser_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
