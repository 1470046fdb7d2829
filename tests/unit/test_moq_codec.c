/* Unit tests for the moq-lite codec (src/moq/codec.h), the stream readers
 * (src/moq/stream_reader.h), the version table and the error-code mappings.
 *
 * Exact bytes come from the worked examples of moq-lite-wire.md section 2.12 and 3.4 and the
 * upstream TRACK_INFO default vector; everything else is a round trip per version plus the
 * failures a hostile peer can provoke. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "moq/codec.h"
#include "moq/errors.h"
#include "moq/stream_reader.h"
#include "moq/version.h"
#include "util/err.h"

static const moq_version all_versions[] = {MOQ_LITE_03, MOQ_LITE_04, MOQ_LITE_05};
#define N_VERSIONS 3

/* ---- helpers ----------------------------------------------------------------------- */

/* Parse "01 ab cd" (spaces optional) into out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    while (*hex) {
        if (*hex == ' ' || *hex == '|') {
            hex++;
            continue;
        }
        unsigned v;
        assert_int_equal(sscanf(hex, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

static void assert_buf_hex(const moq_buf *b, const char *hex)
{
    uint8_t want[512];
    size_t n = unhex(hex, want);
    if (b->len != n) {
        fprintf(stderr, "got %zu bytes:", b->len);
        for (size_t i = 0; i < b->len; i++)
            fprintf(stderr, " %02x", b->data[i]);
        fprintf(stderr, "\nwant %s\n", hex);
    }
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

static void assert_str(moq_str got, const char *want)
{
    assert_int_equal(got.len, strlen(want));
    if (got.len) assert_memory_equal(got.ptr, want, got.len);
}

/* Split exactly one framed message off buf (which must hold nothing else) and copy its body
 * into body (mutable, as the control reader provides it). */
static size_t one_body(const moq_buf *b, bool typed, uint64_t *type, uint8_t *body)
{
    const uint8_t *p;
    size_t n;
    int used = moq_msg_split(b->data, b->len, typed, 1 << 20, type, &p, &n);
    assert_int_equal(used, (int)b->len);
    if (n) memcpy(body, p, n);
    return n;
}

/* ---- version table and error codes ------------------------------------------------- */

static void version_table(void **state)
{
    assert_int_equal(moq_version_from_alpn("moq-lite-05", 11), MOQ_LITE_05);
    assert_int_equal(moq_version_from_alpn("moq-lite-04", 11), MOQ_LITE_04);
    assert_int_equal(moq_version_from_alpn("moq-lite-03", 11), MOQ_LITE_03);
    assert_int_equal(moq_version_from_alpn("moq-lite-05x", 11), MOQ_LITE_05); /* by length */
    assert_int_equal(moq_version_from_alpn("moq-lite-06-wip", 15), MOQ_LITE_06_WIP);
    assert_int_equal(moq_version_from_alpn("moq-lite-06", 11), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_version_from_alpn("moql", 4), MOQ_ERR_NOT_FOUND); /* shared */
    assert_int_equal(moq_version_from_alpn("moq-lite-0", 10), MOQ_ERR_NOT_FOUND);
    assert_string_equal(moq_version_alpns[0], "moq-lite-05");
    assert_null(moq_version_alpns[3]);
    assert_string_equal(moq_version_alpn(MOQ_LITE_04), "moq-lite-04");
    assert_null(moq_caps_get((moq_version)7));
    assert_null(moq_caps_get((moq_version)0));
    assert_true(moq_version_supported(MOQ_LITE_06_WIP));

    const moq_caps *c3 = moq_caps_get(MOQ_LITE_03), *c4 = moq_caps_get(MOQ_LITE_04),
                   *c5 = moq_caps_get(MOQ_LITE_05);
    assert_int_equal(c3->announce_hops, MOQ_HOPS_COUNT);
    assert_int_equal(c4->announce_hops, MOQ_HOPS_IDS_WITH_SENDER);
    assert_int_equal(c5->announce_hops, MOQ_HOPS_IDS_WITHOUT_SENDER);
    assert_false(c3->exclude_hop);
    assert_true(c4->exclude_hop && c5->exclude_hop);
    assert_false(c3->goaway || c3->probe_rtt || c4->setup_stream || c4->track_stream);
    assert_true(c4->goaway && c4->probe_rtt && c3->probe);
    assert_true(c5->setup_stream && c5->announce_ok && c5->restart && c5->track_stream &&
                c5->fetch && c5->frame_timestamps && c5->datagrams);
    assert_false(c4->restart || c4->announce_ok || c4->fetch || c4->datagrams);
    assert_int_equal(c4->subscribe_responses, MOQ_SUBRESP_OK_DROP);
    assert_int_equal(c5->subscribe_responses, MOQ_SUBRESP_START_END_DROP);
    assert_true(c5->compat_code == 0xff0dad05ull);

    assert_string_equal(moq_compat_version_name(0xff0dad02ull), "moq-lite-02");
    assert_string_equal(moq_compat_version_name(0xff00000eull), "moq-transport-14");
    assert_null(moq_compat_version_name(42));
}

static void stream_types(void **state)
{
    for (int i = 0; i < N_VERSIONS; i++) {
        moq_version v = all_versions[i];
        assert_true(moq_bidi_type_supported(v, MOQ_BIDI_ANNOUNCE));
        assert_true(moq_bidi_type_supported(v, MOQ_BIDI_SUBSCRIBE));
        assert_true(moq_bidi_type_supported(v, MOQ_BIDI_PROBE));
        assert_false(moq_bidi_type_supported(v, MOQ_BIDI_SESSION));
        assert_false(moq_bidi_type_supported(v, MOQ_BIDI_CLIENT_COMPAT));
        assert_false(moq_bidi_type_supported(v, 7));
        assert_true(moq_uni_type_supported(v, MOQ_UNI_GROUP));
        assert_false(moq_uni_type_supported(v, 2));
    }
    assert_false(moq_bidi_type_supported(MOQ_LITE_03, MOQ_BIDI_GOAWAY));
    assert_true(moq_bidi_type_supported(MOQ_LITE_04, MOQ_BIDI_GOAWAY));
    assert_false(moq_bidi_type_supported(MOQ_LITE_04, MOQ_BIDI_TRACK));
    assert_false(moq_bidi_type_supported(MOQ_LITE_04, MOQ_BIDI_FETCH));
    assert_true(moq_bidi_type_supported(MOQ_LITE_05, MOQ_BIDI_TRACK));
    assert_true(moq_bidi_type_supported(MOQ_LITE_05, MOQ_BIDI_FETCH));
    assert_false(moq_uni_type_supported(MOQ_LITE_04, MOQ_UNI_SETUP));
    assert_true(moq_uni_type_supported(MOQ_LITE_05, MOQ_UNI_SETUP));

    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_encode_stream_type(&b, MOQ_BIDI_CLIENT_COMPAT), 0);
    assert_buf_hex(&b, "20");
    moq_buf_free(&b);
}

static void error_codes(void **state)
{
    assert_string_equal(moq_code_name(MOQ_CODE_CANCEL), "Cancel");
    assert_string_equal(moq_code_name(5), "Decode");
    assert_string_equal(moq_code_name(27), "FrameTooLarge");
    assert_string_equal(moq_code_name(31), "Evicted");
    assert_string_equal(moq_code_name(28), "Unknown");
    assert_string_equal(moq_code_name(468), "App");
    assert_true(moq_code_app(404) == 468);
    uint16_t n = 0;
    assert_true(moq_code_is_app(468, &n));
    assert_int_equal(n, 404);
    assert_false(moq_code_is_app(63, &n));
    assert_false(moq_code_is_app(64 + 65536, &n));

    assert_int_equal(moq_code_from_err(MOQ_OK), MOQ_CODE_CANCEL);
    assert_int_equal(moq_code_from_err(MOQ_ERR_PROTO), MOQ_CODE_DECODE);
    assert_int_equal(moq_code_from_err(MOQ_ERR_TOO_LARGE), MOQ_CODE_DECODE);
    assert_int_equal(moq_code_from_err(MOQ_ERR_UNSUPPORTED), MOQ_CODE_DECODE);
    assert_int_equal(moq_code_from_err(MOQ_ERR_NOT_FOUND), MOQ_CODE_NOT_FOUND);
    assert_int_equal(moq_code_from_err(MOQ_ERR_AUTH), MOQ_CODE_UNAUTHORIZED);
    assert_int_equal(moq_code_from_err(MOQ_ERR_EXISTS), MOQ_CODE_DUPLICATE);
    assert_int_equal(moq_code_from_err(MOQ_ERR_TIMEOUT), MOQ_CODE_TIMEOUT);
    assert_int_equal(moq_code_from_err(MOQ_ERR_IO), MOQ_CODE_TRANSPORT);

    /* WebTransport HTTP/3 mapping (digest section 4.6). */
    assert_true(moq_code_to_h3(0) == 0x52e4a40fa8dbull);
    assert_true(moq_code_to_h3(6) == 0x52e4a40fa8e1ull);
    assert_true(moq_code_to_h3(13) == 0x52e4a40fa8e8ull);
    assert_true(moq_code_to_h3(0xffffffffu) == MOQ_H3_CODE_LAST);
    static const uint32_t codes[] = {0,  1,  5,   13,    29,          30,          31,         59,
                                     60, 64, 468, 65599, 0x7fffffffu, 0xfffffffeu, 0xffffffffu};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        uint32_t back = 12345;
        assert_int_equal(moq_code_from_h3(moq_code_to_h3(codes[i]), &back), 0);
        assert_int_equal(back, codes[i]);
    }
    uint32_t c;
    assert_int_equal(moq_code_from_h3(MOQ_H3_CODE_FIRST - 1, &c), MOQ_ERR_INVALID);
    assert_int_equal(moq_code_from_h3(MOQ_H3_CODE_LAST + 1, &c), MOQ_ERR_INVALID);
    assert_int_equal(moq_code_from_h3(0x100, &c), MOQ_ERR_INVALID);
    /* Every 0x1f-th point of the range is reserved: codes 29 and 30 straddle one. */
    assert_true(moq_code_to_h3(30) - moq_code_to_h3(29) == 2);
}

/* ---- worked examples (moq-lite-wire.md 2.12, 3.4, TRACK_INFO default) -------------- */

static void worked_setup(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_setup s = {.probe = MOQ_PROBE_REPORT, .origin = 0x1234};
    assert_int_equal(moq_encode_stream_type(&b, MOQ_UNI_SETUP), 0);
    assert_int_equal(moq_encode_setup(&b, MOQ_LITE_05, &s), 0);
    assert_buf_hex(&b, "01 08 02 01 01 01 05 02 52 34");

    moq_buf_reset(&b);
    struct moq_setup empty = {0};
    assert_int_equal(moq_encode_stream_type(&b, MOQ_UNI_SETUP), 0);
    assert_int_equal(moq_encode_setup(&b, MOQ_LITE_05, &empty), 0);
    assert_buf_hex(&b, "01 01 00");

    uint8_t body[64];
    size_t n = unhex("02 01 01 01 05 02 52 34", body);
    struct moq_setup d;
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &d), 0);
    assert_true(d.probe == MOQ_PROBE_REPORT && d.origin == 0x1234);
    assert_false(d.has_path || d.has_cost);
    assert_true(d.role == MOQ_ROLE_BOTH);
    moq_buf_free(&b);
}

static void worked_announce(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_announce_request req = {.prefix = MOQ_STR(""), .exclude_hop = 0x1234};
    assert_int_equal(moq_encode_stream_type(&b, MOQ_BIDI_ANNOUNCE), 0);
    assert_int_equal(moq_encode_announce_request(&b, MOQ_LITE_05, &req), 0);
    assert_buf_hex(&b, "01 03 00 52 34");

    moq_buf_reset(&b);
    struct moq_announce_ok ok = {.hop_id = 0x99, .active_count = 1};
    struct moq_announce a = {.status = MOQ_ANNOUNCE_STATUS_ACTIVE,
                             .suffix = MOQ_STR("bbb"),
                             .hop_count = 1,
                             .hops = {0x1234}};
    assert_int_equal(moq_encode_announce_ok(&b, MOQ_LITE_05, &ok), 0);
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_05, &a), 0);
    assert_buf_hex(&b, "03 40 99 01 | 08 01 03 62 62 62 01 52 34");

    struct moq_announce ended = {.status = MOQ_ANNOUNCE_STATUS_ENDED, .suffix = MOQ_STR("bbb")};
    for (moq_version v = MOQ_LITE_04; v <= MOQ_LITE_05; v++) {
        moq_buf_reset(&b);
        assert_int_equal(moq_encode_announce(&b, v, &ended), 0);
        assert_buf_hex(&b, "06 00 03 62 62 62 00");
    }
    /* lite-03 carries the same layout for `ended` (hop count only). */
    moq_buf_reset(&b);
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_03, &ended), 0);
    assert_buf_hex(&b, "06 00 03 62 62 62 00");
    moq_buf_free(&b);
}

static void worked_track_and_subscribe(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_msg_track t = {.broadcast = MOQ_STR("bbb"), .track = MOQ_STR("video")};
    assert_int_equal(moq_encode_stream_type(&b, MOQ_BIDI_TRACK), 0);
    assert_int_equal(moq_encode_track(&b, MOQ_LITE_05, &t), 0);
    assert_buf_hex(&b, "06 0a 03 62 62 62 05 76 69 64 65 6f");

    struct moq_subscribe s = {.id = 0,
                              .broadcast = MOQ_STR("bbb"),
                              .track = MOQ_STR("video"),
                              .opts = {.priority = 0x80}};
    for (int i = 0; i < N_VERSIONS; i++) {
        moq_buf_reset(&b);
        assert_int_equal(moq_encode_stream_type(&b, MOQ_BIDI_SUBSCRIBE), 0);
        assert_int_equal(moq_encode_subscribe(&b, all_versions[i], &s), 0);
        assert_buf_hex(&b, "02 10 00 03 62 62 62 05 76 69 64 65 6f 80 00 00 00 00");
    }

    moq_buf_reset(&b);
    struct moq_subscribe_response start = {.kind = MOQ_SUBSCRIBE_START, .group = 7};
    struct moq_subscribe_response end = {.kind = MOQ_SUBSCRIBE_END, .group = 9};
    assert_int_equal(moq_encode_subscribe_response(&b, MOQ_LITE_05, &start), 0);
    assert_int_equal(moq_encode_subscribe_response(&b, MOQ_LITE_05, &end), 0);
    assert_buf_hex(&b, "00 01 07 | 01 01 09");

    struct moq_subscribe_response ok = {.kind = MOQ_SUBSCRIBE_OK, .ok = {.priority = 0x80}};
    for (moq_version v = MOQ_LITE_03; v <= MOQ_LITE_04; v++) {
        moq_buf_reset(&b);
        assert_int_equal(moq_encode_subscribe_response(&b, v, &ok), 0);
        assert_buf_hex(&b, "00 05 80 00 00 00 00");
    }

    moq_buf_reset(&b);
    struct moq_msg_track_info info = MOQ_TRACK_INFO_DEFAULT;
    assert_int_equal(moq_encode_track_info(&b, MOQ_LITE_05, &info), 0);
    assert_buf_hex(&b, "06 00 00 53 88 43 e8");
    moq_buf_free(&b);
}

static void worked_group_frames_probe(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_group_header g = {.sub_id = 0, .sequence = 7};
    assert_int_equal(moq_encode_stream_type(&b, MOQ_UNI_GROUP), 0);
    assert_int_equal(moq_encode_group_header(&b, MOQ_LITE_05, &g), 0);
    assert_buf_hex(&b, "00 02 00 07");

    uint8_t hdr[MOQ_GROUP_HEADER_MAX];
    assert_int_equal(moq_group_header_pack(hdr, true, 0, 7), 4);
    assert_memory_equal(hdr, b.data, 4);
    assert_int_equal(moq_group_header_pack(hdr, false, 0, 7), 3);
    assert_memory_equal(hdr, b.data + 1, 3);

    uint8_t fh[MOQ_FRAME_HEADER_MAX];
    uint8_t want[8];
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_05, 0, 1000, 2), 3);
    assert_memory_equal(fh, want, unhex("47 d0 02", want));
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_05, 1000, 990, 1), 2);
    assert_memory_equal(fh, want, unhex("13 01", want));
    /* 03/04 frames carry the size only, whatever the timestamps */
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_04, 1000, 990, 300), 2);
    assert_memory_equal(fh, want, unhex("41 2c", want));

    moq_buf_reset(&b);
    struct moq_probe p = {.bitrate_bps = 1000000, .rtt_ms = 40};
    assert_int_equal(moq_encode_probe(&b, MOQ_LITE_04, &p), 0);
    assert_buf_hex(&b, "05 80 0f 42 40 28");
    moq_buf_reset(&b);
    assert_int_equal(moq_encode_probe(&b, MOQ_LITE_05, &p), 0);
    assert_buf_hex(&b, "05 80 0f 42 40 28");
    moq_buf_reset(&b);
    assert_int_equal(moq_encode_probe(&b, MOQ_LITE_03, &p), 0);
    assert_buf_hex(&b, "04 80 0f 42 40");
    moq_buf_free(&b);
}

static const char compat_client_hex[] =
    "20 00 31 03 c0000000ff0dad02 c0000000ff0dad01 c0000000ff00000e "
    "03 02 8000a455 80040b5a 01 07 0b 6d6f712d6c6974652d6a73";

static void worked_compat_setup(void **state)
{
    uint8_t wire[128];
    size_t n = unhex(compat_client_hex, wire);

    /* Read it the way a session would: stream type, then one u16-framed message. */
    const uint8_t *in = wire;
    size_t in_len = n;
    moq_varint_reader vr;
    moq_varint_reader_init(&vr);
    uint64_t type;
    assert_int_equal(moq_varint_reader_next(&vr, &in, &in_len, false, &type), 1);
    assert_int_equal(type, MOQ_BIDI_CLIENT_COMPAT);

    moq_ctrl_reader r;
    moq_ctrl_reader_init(&r, MOQ_CTRL_U16_SIZE, 65535);
    struct moq_ctrl_msg msg;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, false, &msg), 1);
    assert_int_equal(in_len, 0);
    struct moq_compat_client_setup cs;
    assert_int_equal(moq_decode_compat_client_setup(msg.body, msg.len, &cs), 0);
    assert_int_equal(cs.n_versions, 3);
    assert_true(cs.versions[0] == MOQ_COMPAT_CODE_LITE_02);
    assert_true(cs.versions[1] == MOQ_COMPAT_CODE_LITE_01);
    assert_true(cs.versions[2] == MOQ_COMPAT_CODE_MOQT_14);
    assert_int_equal(cs.params_len, 24);
    assert_int_equal(cs.params[0], 3);

    /* Re-encode: the same bytes. */
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_encode_stream_type(&b, MOQ_BIDI_CLIENT_COMPAT), 0);
    assert_int_equal(
        moq_encode_compat_client_setup(&b, cs.versions, cs.n_versions, cs.params, cs.params_len),
        0);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, wire, n);

    /* The Rust relay's lite-02 answer, for completeness. */
    moq_buf_reset(&b);
    uint8_t zero = 0;
    assert_int_equal(moq_encode_stream_type(&b, MOQ_BIDI_SERVER_COMPAT), 0);
    assert_int_equal(moq_encode_compat_server_setup(&b, MOQ_COMPAT_CODE_LITE_02, &zero, 1), 0);
    assert_buf_hex(&b, "21 00 09 c0000000ff0dad02 00");

    /* Too many versions is refused. */
    moq_buf_reset(&b);
    assert_int_equal(moq_buf_put_varint(&b, MOQ_COMPAT_MAX_VERSIONS + 1), 0);
    assert_int_equal(moq_decode_compat_client_setup(b.data, b.len, &cs), MOQ_ERR_TOO_LARGE);
    /* Truncated version list. */
    uint8_t trunc[] = {0x02, 0x01};
    assert_int_equal(moq_decode_compat_client_setup(trunc, sizeof(trunc), &cs), MOQ_ERR_PROTO);
    moq_buf_free(&b);
    moq_ctrl_reader_free(&r);
}

/* ---- lite-01/02 (compat SETUP) and lite-06-wip --------------------------------------- */

static void version_table_legacy_and_wip(void **state)
{
    const moq_caps *c1 = moq_caps_get(MOQ_LITE_01), *c2 = moq_caps_get(MOQ_LITE_02),
                   *c6 = moq_caps_get(MOQ_LITE_06_WIP);
    assert_string_equal(c1->name, "moq-lite-01");
    assert_string_equal(c2->alpn, "moql");
    assert_string_equal(c6->alpn, "moq-lite-06-wip"); /* the -wip suffix is on the wire */
    assert_true(c1->compat_setup && c2->compat_setup && !c6->compat_setup);
    assert_true(c1->by_default && c2->by_default && !c6->by_default);
    assert_true(c1->announce_init && c2->announce_init && !c6->announce_init);
    assert_int_equal(c1->announce_hops, MOQ_HOPS_NONE);
    assert_int_equal(c2->subscribe_responses, MOQ_SUBRESP_UNTYPED_OK);
    assert_true(c1->subscribe_ok_priority && !c2->subscribe_ok_priority);
    assert_false(c2->subscribe_options || c2->subscribe_update || c2->probe || c2->goaway ||
                 c2->track_stream || c2->fetch || c2->frame_timestamps || c2->datagrams ||
                 c2->setup_stream || c2->exclude_hop);
    assert_true(c6->announce_ids && c6->route_cost && c6->announce_ok && c6->setup_stream);
    assert_false(c6->exclude_hop || c6->restart);
    assert_int_equal(moq_version_from_name("moq-lite-02"), MOQ_LITE_02);
    assert_int_equal(moq_version_from_name("moq-lite-06-wip"), MOQ_LITE_06_WIP);
    assert_int_equal(moq_version_from_name("moql"), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_version_from_compat_code(0xff0dad01ull), MOQ_LITE_01);
    assert_int_equal(moq_version_from_compat_code(0xff0dad02ull), MOQ_LITE_02);
    /* lite-03+ and moq-transport-14 are not moq-lite versions of the compat SETUP */
    assert_int_equal(moq_version_from_compat_code(0xff0dad03ull), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_version_from_compat_code(0xff00000eull), MOQ_ERR_NOT_FOUND);
    assert_string_equal(moq_version_compat_names[0], "moq-lite-02");
    assert_string_equal(moq_version_compat_names[1], "moq-lite-01");
    assert_null(moq_version_compat_names[2]);
    for (moq_version v = MOQ_LITE_01; v <= MOQ_LITE_02; v++) {
        assert_true(moq_bidi_type_supported(v, MOQ_BIDI_ANNOUNCE));
        assert_true(moq_bidi_type_supported(v, MOQ_BIDI_SUBSCRIBE));
        assert_false(moq_bidi_type_supported(v, MOQ_BIDI_PROBE));
        assert_false(moq_bidi_type_supported(v, MOQ_BIDI_TRACK));
        assert_false(moq_uni_type_supported(v, MOQ_UNI_SETUP));
    }
}

/* Bytes as upstream's lite-01/02 encoders (lite/announce.rs, subscribe.rs, info.rs) write. */
static void worked_lite01_02(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    for (moq_version v = MOQ_LITE_01; v <= MOQ_LITE_02; v++) {
        moq_buf_reset(&b);
        struct moq_announce_request req = {.prefix = MOQ_STR("room"), .exclude_hop = 0x1234};
        assert_int_equal(moq_encode_announce_request(&b, v, &req), 0);
        assert_buf_hex(&b, "05 04 72 6f 6f 6d"); /* no exclude_hop */

        moq_buf_reset(&b);
        moq_str init[] = {MOQ_STR("a"), MOQ_STR("b/c")};
        assert_int_equal(moq_encode_announce_init(&b, v, init, 2), 0);
        assert_buf_hex(&b, "07 02 01 61 03 62 2f 63");

        moq_buf_reset(&b);
        struct moq_announce a = {.status = MOQ_ANNOUNCE_STATUS_ACTIVE,
                                 .suffix = MOQ_STR("bbb"),
                                 .hop_count = 1,
                                 .hops = {0x1234}};
        assert_int_equal(moq_encode_announce(&b, v, &a), 0);
        assert_buf_hex(&b, "05 01 03 62 62 62"); /* no hops */
        a.status = MOQ_ANNOUNCE_STATUS_RESTART;
        assert_int_equal(moq_encode_announce(&b, v, &a), MOQ_ERR_UNSUPPORTED);

        moq_buf_reset(&b);
        struct moq_subscribe sub = {.id = 0,
                                    .broadcast = MOQ_STR("bbb"),
                                    .track = MOQ_STR("video"),
                                    .opts = {.priority = 0x80, .ordered = true, .has_start = true}};
        assert_int_equal(moq_encode_subscribe(&b, v, &sub), 0);
        assert_buf_hex(&b, "0c 00 03 62 62 62 05 76 69 64 65 6f 80"); /* ends after priority */

        moq_buf_reset(&b);
        struct moq_subscribe_response ok = {.kind = MOQ_SUBSCRIBE_OK, .ok = {.priority = 0x80}};
        assert_int_equal(moq_encode_subscribe_response(&b, v, &ok), 0);
        assert_buf_hex(&b, v == MOQ_LITE_01 ? "01 80" : "00"); /* untyped */
        struct moq_subscribe_response drop = {.kind = MOQ_SUBSCRIBE_DROP};
        assert_int_equal(moq_encode_subscribe_response(&b, v, &drop), MOQ_ERR_UNSUPPORTED);
        struct moq_subscribe_opts opts = {0};
        assert_int_equal(moq_encode_subscribe_update(&b, v, &opts), MOQ_ERR_UNSUPPORTED);
        assert_false(moq_subscribe_responses_typed(v));

        moq_buf_reset(&b);
        assert_int_equal(moq_encode_session_info(&b, v, 1000000), 0);
        assert_buf_hex(&b, "04 80 0f 42 40");

        uint8_t h[MOQ_FRAME_HEADER_MAX];
        assert_int_equal(moq_frame_header_pack(h, v, 0, 1000, 2), 1); /* size only */
        assert_int_equal(h[0], 2);
    }
    assert_true(moq_subscribe_responses_typed(MOQ_LITE_03));
    assert_int_equal(moq_encode_session_info(&b, MOQ_LITE_03, 1), MOQ_ERR_UNSUPPORTED);
    moq_str none[] = {MOQ_STR("a")};
    assert_int_equal(moq_encode_announce_init(&b, MOQ_LITE_03, none, 1), MOQ_ERR_UNSUPPORTED);
    moq_buf_free(&b);
}

static void roundtrip_lite01_02(void **state)
{
    uint8_t body[64];
    size_t n;
    uint64_t type;
    moq_buf b;
    moq_buf_init(&b);
    for (moq_version v = MOQ_LITE_01; v <= MOQ_LITE_02; v++) {
        moq_buf_reset(&b);
        struct moq_subscribe sub = {.id = 7,
                                    .broadcast = MOQ_STR("room/cam"),
                                    .track = MOQ_STR("v"),
                                    .opts = {.priority = 3}};
        assert_int_equal(moq_encode_subscribe(&b, v, &sub), 0);
        n = one_body(&b, false, &type, body);
        struct moq_subscribe got;
        memset(&got, 0xee, sizeof(got));
        assert_int_equal(moq_decode_subscribe(v, body, n, &got), 0);
        assert_int_equal(got.id, 7);
        assert_str(got.broadcast, "room/cam");
        assert_int_equal(got.opts.priority, 3);
        /* what 01/02 cannot say: unordered, latest group, unbounded, no latency */
        assert_false(got.opts.ordered || got.opts.has_start || got.opts.has_end);
        assert_int_equal(got.opts.max_latency_ms, 0);
        /* one byte more than the layout is an error (the 03 options are not accepted) */
        body[n] = 0;
        assert_int_equal(moq_decode_subscribe(v, body, n + 1, &got), MOQ_ERR_PROTO);

        moq_buf_reset(&b);
        struct moq_subscribe_response ok = {.kind = MOQ_SUBSCRIBE_OK, .ok = {.priority = 9}};
        assert_int_equal(moq_encode_subscribe_response(&b, v, &ok), 0);
        n = one_body(&b, false, &type, body);
        struct moq_subscribe_response r;
        assert_int_equal(moq_decode_subscribe_response(v, 0, body, n, &r), 0);
        assert_int_equal(r.kind, MOQ_SUBSCRIBE_OK);
        assert_int_equal(r.ok.priority, v == MOQ_LITE_01 ? 9 : 0);

        moq_buf_reset(&b);
        moq_str init[] = {MOQ_STR("x"), MOQ_STR(""), MOQ_STR("y/z")};
        assert_int_equal(moq_encode_announce_init(&b, v, init, 3), 0);
        n = one_body(&b, false, &type, body);
        struct moq_announce_init ai;
        assert_int_equal(moq_decode_announce_init(v, body, n, &ai), 0);
        assert_int_equal(ai.count, 3);
        assert_str(ai.suffixes[0], "x");
        assert_str(ai.suffixes[1], "");
        assert_str(ai.suffixes[2], "y/z");
        moq_announce_init_free(&ai);
        assert_null(ai.suffixes);
        /* paths are normalised on decode */
        n = unhex("01 05 2f 61 2f 2f 62", body);
        assert_int_equal(moq_decode_announce_init(v, body, n, &ai), 0);
        assert_str(ai.suffixes[0], "a/b");
        moq_announce_init_free(&ai);
        /* a count the body cannot hold, truncated and leftover bodies */
        n = unhex("05 01 61", body);
        assert_int_equal(moq_decode_announce_init(v, body, n, &ai), MOQ_ERR_PROTO);
        n = unhex("02 01 61", body);
        assert_int_equal(moq_decode_announce_init(v, body, n, &ai), MOQ_ERR_PROTO);
        n = unhex("01 01 61 00", body);
        assert_int_equal(moq_decode_announce_init(v, body, n, &ai), MOQ_ERR_PROTO);
        assert_null(ai.suffixes);
        n = unhex("00", body);
        assert_int_equal(moq_decode_announce_init(v, body, n, &ai), 0);
        assert_int_equal(ai.count, 0);

        n = unhex("01 03 62 62 62", body);
        struct moq_announce a;
        assert_int_equal(moq_decode_announce(v, body, n, &a), 0);
        assert_int_equal(a.hop_count, 0);
        n = unhex("02 03 62 62 62", body); /* restart is not a status before 05 */
        assert_int_equal(moq_decode_announce(v, body, n, &a), MOQ_ERR_PROTO);

        uint64_t bitrate;
        n = unhex("40 64", body);
        assert_int_equal(moq_decode_session_info(v, body, n, &bitrate), 0);
        assert_int_equal(bitrate, 100);
        n = unhex("40 64 00", body);
        assert_int_equal(moq_decode_session_info(v, body, n, &bitrate), MOQ_ERR_PROTO);
    }
    /* The server's compat SETUP as a client reads it. */
    uint8_t setup[] = {0xc0, 0, 0, 0, 0xff, 0x0d, 0xad, 0x02, 0x00};
    uint64_t version;
    const uint8_t *params;
    size_t params_len;
    assert_int_equal(
        moq_decode_compat_server_setup(setup, sizeof(setup), &version, &params, &params_len), 0);
    assert_true(version == MOQ_COMPAT_CODE_LITE_02);
    assert_int_equal(params_len, 1);
    assert_int_equal(moq_decode_compat_server_setup(setup, 3, &version, &params, &params_len),
                     MOQ_ERR_PROTO);
    moq_buf_free(&b);
}

/* lite-06-wip announcements as upstream's AnnounceBroadcast encodes them: type, size, body. */
static void worked_lite06_announce(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    struct moq_announce_request req = {.prefix = MOQ_STR(""), .exclude_hop = 0x1234};
    assert_int_equal(moq_encode_announce_request(&b, MOQ_LITE_06_WIP, &req), 0);
    assert_buf_hex(&b, "01 00"); /* no exclude_hop: SETUP Origin instead */

    moq_buf_reset(&b);
    struct moq_announce start = {.status = MOQ_ANNOUNCE_STATUS_ACTIVE,
                                 .suffix = MOQ_STR("bbb"),
                                 .hop_count = 1,
                                 .hops = {0x1234},
                                 .cost = 5};
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_06_WIP, &start), 0);
    assert_buf_hex(&b, "00 08 03 62 62 62 01 52 34 05");
    moq_buf_reset(&b);
    struct moq_announce end = {.status = MOQ_ANNOUNCE_STATUS_ENDED, .id = 42};
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_06_WIP, &end), 0);
    assert_buf_hex(&b, "01 01 2a"); /* three bytes, as upstream's test says */
    moq_buf_reset(&b);
    struct moq_announce restart = {.status = MOQ_ANNOUNCE_STATUS_RESTART, .id = 2, .cost = 300};
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_06_WIP, &restart), 0);
    assert_buf_hex(&b, "02 04 02 00 41 2c");
    /* the cost is not on the wire before 06 */
    moq_buf_reset(&b);
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_05, &start), 0);
    assert_buf_hex(&b, "08 01 03 62 62 62 01 52 34");

    /* round trips through the typed reader */
    uint8_t body[64];
    uint64_t type;
    struct moq_announce got;
    moq_buf_reset(&b);
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_06_WIP, &start), 0);
    size_t n = one_body(&b, true, &type, body);
    assert_int_equal(type, 0);
    assert_int_equal(moq_decode_announce_typed(MOQ_LITE_06_WIP, type, body, n, &got), 0);
    assert_int_equal(got.status, MOQ_ANNOUNCE_STATUS_ACTIVE);
    assert_str(got.suffix, "bbb");
    assert_int_equal(got.hop_count, 1);
    assert_true(got.hops[0] == 0x1234 && got.cost == 5);
    moq_buf_reset(&b);
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_06_WIP, &restart), 0);
    n = one_body(&b, true, &type, body);
    assert_int_equal(moq_decode_announce_typed(MOQ_LITE_06_WIP, type, body, n, &got), 0);
    assert_int_equal(got.status, MOQ_ANNOUNCE_STATUS_RESTART);
    assert_true(got.id == 2 && got.cost == 300 && got.hop_count == 0);
    n = unhex("2a", body);
    assert_int_equal(moq_decode_announce_typed(MOQ_LITE_06_WIP, 1, body, n, &got), 0);
    assert_true(got.status == MOQ_ANNOUNCE_STATUS_ENDED && got.id == 42);
    /* unknown type, leftover bytes, the untyped decoder and typed before 06 */
    assert_int_equal(moq_decode_announce_typed(MOQ_LITE_06_WIP, 3, body, n, &got), MOQ_ERR_PROTO);
    n = unhex("2a 00", body);
    assert_int_equal(moq_decode_announce_typed(MOQ_LITE_06_WIP, 1, body, n, &got), MOQ_ERR_PROTO);
    assert_int_equal(moq_decode_announce(MOQ_LITE_06_WIP, body, n, &got), MOQ_ERR_UNSUPPORTED);
    assert_int_equal(moq_decode_announce_typed(MOQ_LITE_05, 1, body, n, &got), MOQ_ERR_UNSUPPORTED);
    assert_int_equal(moq_announce_type(MOQ_LITE_05, &end), MOQ_ERR_UNSUPPORTED);
    moq_buf_free(&b);
}

/* The reader turns typed between messages (lite-06: ANNOUNCE_OK, then typed announces). */
static void ctrl_reader_turns_typed(void **state)
{
    uint8_t wire[32];
    size_t n = unhex("02 40 99 | 01 01 2a | 00 01 00", wire);
    const uint8_t *in = wire;
    moq_ctrl_reader r;
    moq_ctrl_reader_init(&r, 0, 1024);
    struct moq_ctrl_msg msg;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &n, false, &msg), 1);
    assert_int_equal(msg.len, 2);
    moq_ctrl_reader_set_typed(&r, true);
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &n, false, &msg), 1);
    assert_int_equal(msg.type, 1);
    assert_int_equal(msg.len, 1);
    assert_int_equal(msg.body[0], 0x2a);
    /* one byte at a time too */
    size_t one = 1;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &one, false, &msg), 0);
    one = 1;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &one, false, &msg), 0);
    one = 1;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &one, false, &msg), 1);
    assert_int_equal(msg.type, 0);
    assert_int_equal(msg.body[0], 0);
    /* set before anything arrived */
    moq_ctrl_reader_free(&r);
    moq_ctrl_reader_init(&r, 0, 1024);
    moq_ctrl_reader_set_typed(&r, true);
    n = unhex("05 01 07", wire);
    in = wire;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &n, false, &msg), 1);
    assert_int_equal(msg.type, 5);
    assert_int_equal(msg.body[0], 7);
    moq_ctrl_reader_free(&r);
}

/* ---- round trips -------------------------------------------------------------------- */

static void roundtrip_setup(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    uint8_t body[256];
    struct moq_setup in = {.probe = MOQ_PROBE_INCREASE,
                           .has_path = true,
                           .path = MOQ_STR("/room/123?jwt=abc.def"),
                           .role = MOQ_ROLE_SUBSCRIBER,
                           .has_cost = true,
                           .cost = 0,
                           .origin = (1ull << 53) - 1};
    assert_int_equal(moq_encode_setup(&b, MOQ_LITE_05, &in), 0);
    size_t n = one_body(&b, false, NULL, body);
    struct moq_setup out;
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), 0);
    assert_true(out.probe == MOQ_PROBE_INCREASE && out.role == MOQ_ROLE_SUBSCRIBER);
    assert_true(out.has_path && out.has_cost && out.cost == 0);
    assert_str(out.path, "/room/123?jwt=abc.def");
    assert_true(out.origin == (1ull << 53) - 1);

    /* an empty path is still a path */
    moq_buf_reset(&b);
    struct moq_setup ep = {.has_path = true, .path = MOQ_STR("")};
    assert_int_equal(moq_encode_setup(&b, MOQ_LITE_05, &ep), 0);
    n = one_body(&b, false, NULL, body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), 0);
    assert_true(out.has_path && out.path.len == 0);

    /* SETUP does not exist before lite-05 */
    moq_buf_reset(&b);
    assert_int_equal(moq_encode_setup(&b, MOQ_LITE_04, &in), MOQ_ERR_UNSUPPORTED);
    assert_int_equal(b.len, 0);
    uint8_t empty[] = {0};
    assert_int_equal(moq_decode_setup(MOQ_LITE_04, empty, 1, &out), MOQ_ERR_UNSUPPORTED);
    moq_buf_free(&b);
}

static void setup_parameter_rules(void **state)
{
    struct moq_setup out;
    uint8_t body[512];
    size_t n;

    /* unknown ids are ignored, even with odd values; unknown probe/role values saturate */
    n = unhex("04 4123 03 ffffff 01 02 4063 03 01 09 3f 00", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), 0);
    assert_true(out.probe == MOQ_PROBE_INCREASE);
    assert_true(out.role == MOQ_ROLE_BOTH);
    /* duplicate id, known or not */
    n = unhex("02 05 01 07 05 01 08", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    n = unhex("02 30 00 30 00", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    /* a varint value must fill its bytes exactly */
    n = unhex("01 05 02 07 00", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    n = unhex("01 05 00", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    n = unhex("01 01 01 40", body); /* 2-byte varint cut short */
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    /* non-minimal varint that fills its bytes is fine */
    n = unhex("01 05 02 40 07", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), 0);
    assert_true(out.origin == 7);
    /* a value longer than the body */
    n = unhex("01 02 05 61", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    /* invalid UTF-8 in Path */
    n = unhex("01 02 02 c3 28", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    /* count over 64 */
    n = unhex("41 00", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_TOO_LARGE);
    /* exactly 64 unknown parameters (two-byte ids 0x100..0x13f, empty values) */
    n = 0;
    body[n++] = 0x40;
    body[n++] = 64;
    for (int i = 0; i < 64; i++) {
        body[n++] = 0x41;
        body[n++] = (uint8_t)i;
        body[n++] = 0;
    }
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), 0);
    /* leftover after the parameters */
    n = unhex("00 00", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
    /* count larger than what follows */
    n = unhex("02 05 01 07", body);
    assert_int_equal(moq_decode_setup(MOQ_LITE_05, body, n, &out), MOQ_ERR_PROTO);
}

static void roundtrip_announce(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    uint8_t body[512];
    for (int i = 0; i < N_VERSIONS; i++) {
        moq_version v = all_versions[i];
        const moq_caps *c = moq_caps_get(v);

        moq_buf_reset(&b);
        struct moq_announce_request rq = {.prefix = MOQ_STR("anon/room"), .exclude_hop = 33};
        assert_int_equal(moq_encode_announce_request(&b, v, &rq), 0);
        size_t n = one_body(&b, false, NULL, body);
        assert_int_equal(n, c->exclude_hop ? 11 : 10);
        struct moq_announce_request rq2;
        assert_int_equal(moq_decode_announce_request(v, body, n, &rq2), 0);
        assert_str(rq2.prefix, "anon/room");
        assert_true(rq2.exclude_hop == (c->exclude_hop ? 33 : 0));

        moq_buf_reset(&b);
        struct moq_announce a = {.status = MOQ_ANNOUNCE_STATUS_ACTIVE, .suffix = MOQ_STR("cam/1")};
        a.hop_count = MOQ_MAX_HOPS;
        for (uint32_t k = 0; k < a.hop_count; k++)
            a.hops[k] = (1ull << 62) - 1 - k;
        assert_int_equal(moq_encode_announce(&b, v, &a), 0);
        n = one_body(&b, false, NULL, body);
        struct moq_announce a2;
        assert_int_equal(moq_decode_announce(v, body, n, &a2), 0);
        assert_int_equal(a2.status, MOQ_ANNOUNCE_STATUS_ACTIVE);
        assert_str(a2.suffix, "cam/1");
        assert_int_equal(a2.hop_count, MOQ_MAX_HOPS);
        for (uint32_t k = 0; k < a2.hop_count; k++)
            assert_true(a2.hops[k] == (c->announce_hops == MOQ_HOPS_COUNT ? 0 : a.hops[k]));

        /* restart is a lite-05 status */
        moq_buf_reset(&b);
        a.status = MOQ_ANNOUNCE_STATUS_RESTART;
        a.hop_count = 0;
        assert_int_equal(moq_encode_announce(&b, v, &a), c->restart ? 0 : MOQ_ERR_UNSUPPORTED);
        if (c->restart) {
            n = one_body(&b, false, NULL, body);
            assert_int_equal(moq_decode_announce(v, body, n, &a2), 0);
            assert_int_equal(a2.status, MOQ_ANNOUNCE_STATUS_RESTART);
        } else {
            assert_int_equal(b.len, 0);
        }

        moq_buf_reset(&b);
        struct moq_announce_ok ok = {.hop_id = 5, .active_count = 3};
        assert_int_equal(moq_encode_announce_ok(&b, v, &ok),
                         c->announce_ok ? 0 : MOQ_ERR_UNSUPPORTED);
        if (c->announce_ok) {
            n = one_body(&b, false, NULL, body);
            struct moq_announce_ok ok2;
            assert_int_equal(moq_decode_announce_ok(v, body, n, &ok2), 0);
            assert_true(ok2.hop_id == 5 && ok2.active_count == 3);
        }
    }
    moq_buf_free(&b);
}

static void assert_opts_eq(const struct moq_subscribe_opts *a, const struct moq_subscribe_opts *b)
{
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->ordered, b->ordered);
    assert_true(a->max_latency_ms == b->max_latency_ms);
    assert_int_equal(a->has_start, b->has_start);
    assert_true(a->start_group == b->start_group);
    assert_int_equal(a->has_end, b->has_end);
    assert_true(a->end_group == b->end_group);
}

static void roundtrip_subscribe(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    uint8_t body[256];
    const struct moq_subscribe_opts opts[] = {
        {0, false, 0, false, 0, false, 0},
        {0xff, true, 5000, true, 0, true, 9},
        {7, false, (1ull << 62) - 1, true, (1ull << 62) - 2, false, 0},
    };
    for (int i = 0; i < N_VERSIONS; i++) {
        moq_version v = all_versions[i];
        for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
            moq_buf_reset(&b);
            struct moq_subscribe s = {.id = 42 + k,
                                      .broadcast = MOQ_STR("anon/bbb"),
                                      .track = MOQ_STR("video/hd"),
                                      .opts = opts[k]};
            assert_int_equal(moq_encode_subscribe(&b, v, &s), 0);
            size_t n = one_body(&b, false, NULL, body);
            struct moq_subscribe s2;
            assert_int_equal(moq_decode_subscribe(v, body, n, &s2), 0);
            assert_true(s2.id == 42 + k);
            assert_str(s2.broadcast, "anon/bbb");
            assert_str(s2.track, "video/hd");
            assert_opts_eq(&s2.opts, &opts[k]);

            moq_buf_reset(&b);
            assert_int_equal(moq_encode_subscribe_update(&b, v, &opts[k]), 0);
            n = one_body(&b, false, NULL, body);
            struct moq_subscribe_opts u;
            assert_int_equal(moq_decode_subscribe_update(v, body, n, &u), 0);
            assert_opts_eq(&u, &opts[k]);
        }
    }
    /* opt fields cannot hold 2^62-1 (value + 1 would not fit) */
    moq_buf_reset(&b);
    struct moq_subscribe_opts bad = {.has_end = true, .end_group = (1ull << 62) - 1};
    assert_int_equal(moq_encode_subscribe_update(&b, MOQ_LITE_05, &bad), MOQ_ERR_INVALID);
    assert_int_equal(b.len, 0);
    moq_buf_free(&b);
}

static void roundtrip_subscribe_responses(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    uint8_t body[64];
    const struct moq_subscribe_response rs[] = {
        {.kind = MOQ_SUBSCRIBE_OK, .ok = {9, true, 250, true, 3, true, 10}},
        {.kind = MOQ_SUBSCRIBE_START, .group = 1234567},
        {.kind = MOQ_SUBSCRIBE_END, .group = 0},
        {.kind = MOQ_SUBSCRIBE_DROP, .drop_start = 5, .drop_end = 7, .drop_error = 2},
    };
    for (int i = 0; i < N_VERSIONS; i++) {
        moq_version v = all_versions[i];
        bool v5 = v == MOQ_LITE_05;
        for (size_t k = 0; k < sizeof(rs) / sizeof(rs[0]); k++) {
            bool exists =
                rs[k].kind == MOQ_SUBSCRIBE_DROP || (rs[k].kind == MOQ_SUBSCRIBE_OK) != v5;
            moq_buf_reset(&b);
            int rv = moq_encode_subscribe_response(&b, v, &rs[k]);
            if (!exists) {
                assert_int_equal(rv, MOQ_ERR_UNSUPPORTED);
                assert_int_equal(b.len, 0);
                assert_int_equal(moq_subscribe_response_type(v, rs[k].kind), MOQ_ERR_UNSUPPORTED);
                continue;
            }
            assert_int_equal(rv, 0);
            uint64_t type;
            size_t n = one_body(&b, true, &type, body);
            assert_int_equal((int)type, moq_subscribe_response_type(v, rs[k].kind));
            struct moq_subscribe_response out;
            assert_int_equal(moq_decode_subscribe_response(v, type, body, n, &out), 0);
            assert_int_equal(out.kind, rs[k].kind);
            assert_opts_eq(&out.ok, &rs[k].ok);
            assert_true(out.group == rs[k].group);
            assert_true(out.drop_start == rs[k].drop_start && out.drop_end == rs[k].drop_end &&
                        out.drop_error == rs[k].drop_error);
        }
    }
    /* wire types: DROP is 1 on 03/04 and 2 on 05 */
    assert_int_equal(moq_subscribe_response_type(MOQ_LITE_04, MOQ_SUBSCRIBE_DROP), 1);
    assert_int_equal(moq_subscribe_response_type(MOQ_LITE_05, MOQ_SUBSCRIBE_DROP), 2);
    assert_int_equal(moq_subscribe_response_type(MOQ_LITE_05, MOQ_SUBSCRIBE_START), 0);
    /* unknown types are errors */
    struct moq_subscribe_response out;
    uint8_t g[] = {0x07};
    assert_int_equal(moq_decode_subscribe_response(MOQ_LITE_04, 2, g, 1, &out), MOQ_ERR_PROTO);
    assert_int_equal(moq_decode_subscribe_response(MOQ_LITE_05, 3, g, 1, &out), MOQ_ERR_PROTO);
    /* a lite-05 START read as lite-04 is an OK with a truncated body */
    assert_int_equal(moq_decode_subscribe_response(MOQ_LITE_04, 0, g, 1, &out), MOQ_ERR_PROTO);
    moq_buf_free(&b);
}

static void roundtrip_track_fetch_goaway_probe(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    uint8_t body[256];
    size_t n;
    for (int i = 0; i < N_VERSIONS; i++) {
        moq_version v = all_versions[i];
        const moq_caps *c = moq_caps_get(v);

        moq_buf_reset(&b);
        struct moq_msg_track t = {.broadcast = MOQ_STR("a/b"), .track = MOQ_STR("catalog.json")};
        assert_int_equal(moq_encode_track(&b, v, &t), c->track_stream ? 0 : MOQ_ERR_UNSUPPORTED);
        if (c->track_stream) {
            n = one_body(&b, false, NULL, body);
            struct moq_msg_track t2;
            assert_int_equal(moq_decode_track(v, body, n, &t2), 0);
            assert_str(t2.broadcast, "a/b");
            assert_str(t2.track, "catalog.json");
        }

        moq_buf_reset(&b);
        struct moq_msg_track_info ti = {
            .priority = 3, .ordered = true, .max_latency_ms = 10000, .timescale = 90000};
        assert_int_equal(moq_encode_track_info(&b, v, &ti),
                         c->track_stream ? 0 : MOQ_ERR_UNSUPPORTED);
        if (c->track_stream) {
            n = one_body(&b, false, NULL, body);
            struct moq_msg_track_info ti2;
            assert_int_equal(moq_decode_track_info(v, body, n, &ti2), 0);
            assert_true(ti2.priority == 3 && ti2.ordered && ti2.max_latency_ms == 10000 &&
                        ti2.timescale == 90000);
        }

        moq_buf_reset(&b);
        struct moq_fetch f = {
            .broadcast = MOQ_STR("x"), .track = MOQ_STR("y"), .priority = 1, .group = 99};
        assert_int_equal(moq_encode_fetch(&b, v, &f), c->fetch ? 0 : MOQ_ERR_UNSUPPORTED);
        if (c->fetch) {
            n = one_body(&b, false, NULL, body);
            struct moq_fetch f2;
            assert_int_equal(moq_decode_fetch(v, body, n, &f2), 0);
            assert_str(f2.broadcast, "x");
            assert_str(f2.track, "y");
            assert_true(f2.priority == 1 && f2.group == 99);
        }

        moq_buf_reset(&b);
        struct moq_goaway ga = {.uri = MOQ_STR("https://relay2.example/room")};
        assert_int_equal(moq_encode_goaway(&b, v, &ga), c->goaway ? 0 : MOQ_ERR_UNSUPPORTED);
        if (c->goaway) {
            n = one_body(&b, false, NULL, body);
            struct moq_goaway ga2;
            assert_int_equal(moq_decode_goaway(v, body, n, &ga2), 0);
            assert_str(ga2.uri, "https://relay2.example/room");
        }

        moq_buf_reset(&b);
        struct moq_probe p = {.bitrate_bps = 0, .rtt_ms = 17};
        assert_int_equal(moq_encode_probe(&b, v, &p), 0);
        n = one_body(&b, false, NULL, body);
        struct moq_probe p2;
        assert_int_equal(moq_decode_probe(v, body, n, &p2), 0);
        assert_true(p2.bitrate_bps == 0 && p2.rtt_ms == (c->probe_rtt ? 17 : 0));

        moq_buf_reset(&b);
        struct moq_group_header gh = {.sub_id = (1ull << 62) - 1, .sequence = 1ull << 40};
        assert_int_equal(moq_encode_group_header(&b, v, &gh), 0);
        n = one_body(&b, false, NULL, body);
        struct moq_group_header gh2;
        assert_int_equal(moq_decode_group_header(v, body, n, &gh2), 0);
        assert_true(gh2.sub_id == gh.sub_id && gh2.sequence == gh.sequence);

        moq_buf_reset(&b);
        struct moq_datagram dg = {.sub_id = 7,
                                  .group = 42,
                                  .timestamp = 1000,
                                  .payload = (const uint8_t *)"hello",
                                  .payload_len = 5};
        assert_int_equal(moq_encode_datagram(&b, v, &dg), c->datagrams ? 0 : MOQ_ERR_UNSUPPORTED);
        struct moq_datagram dg2;
        if (c->datagrams) {
            assert_buf_hex(&b, "07 2a 43 e8 68656c6c6f");
            assert_int_equal(moq_decode_datagram(v, b.data, b.len, &dg2), 0);
            assert_true(dg2.sub_id == 7 && dg2.group == 42 && dg2.timestamp == 1000);
            assert_int_equal(dg2.payload_len, 5);
            assert_ptr_equal(dg2.payload, b.data + 4);
            assert_int_equal(moq_decode_datagram(v, b.data, 3, &dg2), MOQ_ERR_PROTO);
            assert_int_equal(moq_decode_datagram(v, b.data, 4, &dg2), 0);
            assert_int_equal(dg2.payload_len, 0);
        } else {
            uint8_t raw[] = {1, 2, 3, 'x'};
            assert_int_equal(moq_decode_datagram(v, raw, 4, &dg2), MOQ_ERR_UNSUPPORTED);
        }
    }
    moq_buf_free(&b);
}

/* ---- decode failures ------------------------------------------------------------- */

typedef int (*decode_fn)(moq_version v, uint8_t *body, size_t len);

#define WRAP(name, type)                                                                           \
    static int dec_##name(moq_version v, uint8_t *body, size_t len)                                \
    {                                                                                              \
        type out;                                                                                  \
        return moq_decode_##name(v, body, len, &out);                                              \
    }
WRAP(setup, struct moq_setup)
WRAP(announce_request, struct moq_announce_request)
WRAP(announce_ok, struct moq_announce_ok)
WRAP(announce, struct moq_announce)
WRAP(subscribe, struct moq_subscribe)
WRAP(subscribe_update, struct moq_subscribe_opts)
WRAP(track, struct moq_msg_track)
WRAP(track_info, struct moq_msg_track_info)
WRAP(fetch, struct moq_fetch)
WRAP(probe, struct moq_probe)
WRAP(goaway, struct moq_goaway)
WRAP(group_header, struct moq_group_header)

/* Every strict prefix of a valid body fails, and so does the body plus one byte. */
static void check_exact_consumption(decode_fn fn, moq_version v, const uint8_t *body, size_t n)
{
    uint8_t tmp[512];
    for (size_t k = 0; k < n; k++) {
        memcpy(tmp, body, n);
        int rv = fn(v, tmp, k);
        if (rv != MOQ_ERR_PROTO) fprintf(stderr, "prefix %zu of %zu: %d\n", k, n, rv);
        assert_int_equal(rv, MOQ_ERR_PROTO);
    }
    memcpy(tmp, body, n);
    tmp[n] = 0;
    assert_int_equal(fn(v, tmp, n + 1), MOQ_ERR_PROTO);
    memcpy(tmp, body, n);
    assert_int_equal(fn(v, tmp, n), 0);
}

static void truncated_and_leftover_bodies(void **state)
{
    uint8_t body[128];
    size_t n;
    n = unhex("02 01 01 01 05 02 52 34", body);
    check_exact_consumption(dec_setup, MOQ_LITE_05, body, n);
    n = unhex("00 52 34", body);
    check_exact_consumption(dec_announce_request, MOQ_LITE_05, body, n);
    n = unhex("03 61 2f 62", body);
    check_exact_consumption(dec_announce_request, MOQ_LITE_03, body, n);
    n = unhex("40 99 01", body);
    check_exact_consumption(dec_announce_ok, MOQ_LITE_05, body, n);
    n = unhex("01 03 62 62 62 01 52 34", body);
    check_exact_consumption(dec_announce, MOQ_LITE_05, body, n);
    check_exact_consumption(dec_announce, MOQ_LITE_04, body, n);
    n = unhex("01 03 62 62 62 02", body);
    check_exact_consumption(dec_announce, MOQ_LITE_03, body, n);
    n = unhex("00 03 62 62 62 05 76 69 64 65 6f 80 01 44 00 05 0a", body);
    for (int i = 0; i < N_VERSIONS; i++)
        check_exact_consumption(dec_subscribe, all_versions[i], body, n);
    n = unhex("80 01 44 00 05 0a", body);
    check_exact_consumption(dec_subscribe_update, MOQ_LITE_04, body, n);
    n = unhex("03 62 62 62 05 76 69 64 65 6f", body);
    check_exact_consumption(dec_track, MOQ_LITE_05, body, n);
    n = unhex("00 00 53 88 43 e8", body);
    check_exact_consumption(dec_track_info, MOQ_LITE_05, body, n);
    n = unhex("01 78 01 79 07 40 63", body);
    check_exact_consumption(dec_fetch, MOQ_LITE_05, body, n);
    n = unhex("80 0f 42 40 28", body);
    check_exact_consumption(dec_probe, MOQ_LITE_04, body, n);
    n = unhex("80 0f 42 40", body);
    check_exact_consumption(dec_probe, MOQ_LITE_03, body, n);
    n = unhex("03 61 62 63", body);
    check_exact_consumption(dec_goaway, MOQ_LITE_04, body, n);
    n = unhex("00 07", body);
    check_exact_consumption(dec_group_header, MOQ_LITE_05, body, n);

    /* a lite-05 body read as lite-03 has an extra field: leftover */
    n = unhex("00 52 34", body);
    assert_int_equal(dec_announce_request(MOQ_LITE_03, body, n), MOQ_ERR_PROTO);
    n = unhex("80 0f 42 40 28", body);
    assert_int_equal(dec_probe(MOQ_LITE_03, body, n), MOQ_ERR_PROTO);
}

static void announce_status_and_hops(void **state)
{
    uint8_t body[512];
    size_t n;
    struct moq_announce a;
    /* status 2 (restart) only on 05 */
    n = unhex("02 03 62 62 62 00", body);
    assert_int_equal(moq_decode_announce(MOQ_LITE_05, body, n, &a), 0);
    assert_int_equal(a.status, MOQ_ANNOUNCE_STATUS_RESTART);
    n = unhex("02 03 62 62 62 00", body);
    assert_int_equal(moq_decode_announce(MOQ_LITE_04, body, n, &a), MOQ_ERR_PROTO);
    n = unhex("02 03 62 62 62 00", body);
    assert_int_equal(moq_decode_announce(MOQ_LITE_03, body, n, &a), MOQ_ERR_PROTO);
    n = unhex("03 03 62 62 62 00", body);
    assert_int_equal(moq_decode_announce(MOQ_LITE_05, body, n, &a), MOQ_ERR_PROTO);

    /* more than 32 hops, ids or count only */
    n = unhex("01 00 21", body);
    assert_int_equal(moq_decode_announce(MOQ_LITE_03, body, n, &a), MOQ_ERR_TOO_LARGE);
    n = unhex("01 00 20", body);
    assert_int_equal(moq_decode_announce(MOQ_LITE_03, body, n, &a), 0);
    assert_int_equal(a.hop_count, 32);
    n = unhex("01 00 21", body);
    for (int i = 0; i < 33; i++)
        body[n++] = (uint8_t)(i + 1);
    assert_int_equal(moq_decode_announce(MOQ_LITE_05, body, n, &a), MOQ_ERR_TOO_LARGE);
    n = unhex("01 00 c0000000000000ff", body); /* a huge count is refused before reading */
    assert_int_equal(moq_decode_announce(MOQ_LITE_04, body, n, &a), MOQ_ERR_TOO_LARGE);

    moq_buf b;
    moq_buf_init(&b);
    struct moq_announce big = {
        .status = MOQ_ANNOUNCE_STATUS_ACTIVE, .suffix = MOQ_STR("x"), .hop_count = 33};
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_05, &big), MOQ_ERR_INVALID);
    big.hop_count = 0;
    big.status = 3;
    assert_int_equal(moq_encode_announce(&b, MOQ_LITE_05, &big), MOQ_ERR_INVALID);
    assert_int_equal(b.len, 0);
    moq_buf_free(&b);
}

static void bool_and_timescale_rules(void **state)
{
    uint8_t body[64];
    size_t n;
    /* "ordered" is read leniently like upstream Rust: any non-zero byte is true ... */
    struct moq_subscribe_opts o;
    n = unhex("80 02 00 00 00", body);
    assert_int_equal(moq_decode_subscribe_update(MOQ_LITE_05, body, n, &o), 0);
    assert_true(o.ordered);
    struct moq_msg_track_info ti;
    n = unhex("00 ff 00 43 e8", body);
    assert_int_equal(moq_decode_track_info(MOQ_LITE_05, body, n, &ti), 0);
    assert_true(ti.ordered);
    /* ... and always written as 0/1, as the JS client requires. */
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_encode_track_info(&b, MOQ_LITE_05, &ti), 0);
    assert_buf_hex(&b, "05 00 01 00 43 e8");

    /* timescale 0 is refused both ways */
    n = unhex("00 00 00 00", body);
    assert_int_equal(moq_decode_track_info(MOQ_LITE_05, body, n, &ti), MOQ_ERR_PROTO);
    moq_buf_reset(&b);
    ti.timescale = 0;
    assert_int_equal(moq_encode_track_info(&b, MOQ_LITE_05, &ti), MOQ_ERR_INVALID);
    assert_int_equal(b.len, 0);
    moq_buf_free(&b);
}

static void string_limits_and_paths(void **state)
{
    static uint8_t body[MOQ_MAX_URI_LEN + 64];
    static char big[MOQ_MAX_URI_LEN + 2];
    memset(big, 'a', sizeof(big));
    moq_buf b;
    moq_buf_init(&b);

    /* track names up to MOQ_MAX_NAME_LEN */
    struct moq_msg_track t = {.broadcast = MOQ_STR("b"),
                              .track = moq_str_make(big, MOQ_MAX_NAME_LEN)};
    assert_int_equal(moq_encode_track(&b, MOQ_LITE_05, &t), 0);
    size_t n = one_body(&b, false, NULL, body);
    struct moq_msg_track t2;
    assert_int_equal(moq_decode_track(MOQ_LITE_05, body, n, &t2), 0);
    moq_buf_reset(&b);
    t.track.len++;
    assert_int_equal(moq_encode_track(&b, MOQ_LITE_05, &t), MOQ_ERR_TOO_LARGE);
    assert_int_equal(b.len, 0);
    /* a peer's oversize name */
    n = 0;
    body[n++] = 0x01;
    body[n++] = 'b';
    body[n++] = 0x50; /* 0x1001 = 4097 */
    body[n++] = 0x01;
    memset(body + n, 'a', 4097);
    n += 4097;
    assert_int_equal(moq_decode_track(MOQ_LITE_05, body, n, &t2), MOQ_ERR_TOO_LARGE);
    /* a length running past the body */
    n = unhex("01 62 05 61", body);
    assert_int_equal(moq_decode_track(MOQ_LITE_05, body, n, &t2), MOQ_ERR_PROTO);

    /* GOAWAY uri limit */
    struct moq_goaway ga = {.uri = moq_str_make(big, MOQ_MAX_URI_LEN + 1)};
    assert_int_equal(moq_encode_goaway(&b, MOQ_LITE_05, &ga), MOQ_ERR_TOO_LARGE);
    ga.uri.len--;
    assert_int_equal(moq_encode_goaway(&b, MOQ_LITE_05, &ga), 0);
    moq_buf_reset(&b);

    /* invalid UTF-8: overlong, surrogate, truncated sequence, > U+10FFFF */
    const char *bad[] = {"c0 80", "ed a0 80", "e2 82", "f4 90 80 80", "80", "ff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t s[8];
        size_t sl = unhex(bad[i], s);
        assert_false(moq_utf8_valid(s, sl));
        n = 0;
        body[n++] = 0x01;
        body[n++] = 'b';
        body[n++] = (uint8_t)sl;
        memcpy(body + n, s, sl);
        n += sl;
        assert_int_equal(moq_decode_track(MOQ_LITE_05, body, n, &t2), MOQ_ERR_PROTO);
    }
    uint8_t good[16];
    size_t gl = unhex("e2 82 ac f0 9f 98 80 c3 a9 7f", good);
    assert_true(moq_utf8_valid(good, gl));
    struct moq_msg_track bad_track = {.broadcast = MOQ_STR("b"), .track = MOQ_STR("\xc0\x80")};
    assert_int_equal(moq_encode_track(&b, MOQ_LITE_05, &bad_track), MOQ_ERR_INVALID);

    /* paths are normalised on decode, in place */
    struct moq_subscribe s;
    n = unhex("00 07 2f 61 2f 2f 62 2f 2f 01 76 00 00 00 00 00", body); /* "/a//b//" */
    assert_int_equal(moq_decode_subscribe(MOQ_LITE_04, body, n, &s), 0);
    assert_str(s.broadcast, "a/b");
    assert_str(s.track, "v");
    /* ... and refused over 32 segments */
    n = 0;
    body[n++] = 0x00;
    body[n++] = 0x40; /* 65 as a two-byte varint */
    body[n++] = 65;
    for (int i = 0; i < 33; i++) {
        body[n++] = 'p';
        if (i < 32) body[n++] = '/';
    }
    memcpy(body + n, "\x01v\x00\x00\x00\x00\x00", 7);
    n += 7;
    assert_int_equal(moq_decode_subscribe(MOQ_LITE_04, body, n, &s), MOQ_ERR_TOO_LARGE);
    /* encoders take normalised paths only */
    struct moq_announce_request rq = {.prefix = MOQ_STR("/a")};
    assert_int_equal(moq_encode_announce_request(&b, MOQ_LITE_05, &rq), MOQ_ERR_INVALID);
    assert_int_equal(b.len, 0);
    moq_buf_free(&b);
}

static void messages_missing_from_a_version(void **state)
{
    uint8_t body[32];
    size_t n;
    n = unhex("00", body);
    assert_int_equal(dec_setup(MOQ_LITE_03, body, n), MOQ_ERR_UNSUPPORTED);
    n = unhex("40 99 01", body);
    assert_int_equal(dec_announce_ok(MOQ_LITE_04, body, n), MOQ_ERR_UNSUPPORTED);
    n = unhex("03 62 62 62 05 76 69 64 65 6f", body);
    assert_int_equal(dec_track(MOQ_LITE_04, body, n), MOQ_ERR_UNSUPPORTED);
    n = unhex("00 00 53 88 43 e8", body);
    assert_int_equal(dec_track_info(MOQ_LITE_03, body, n), MOQ_ERR_UNSUPPORTED);
    n = unhex("01 78 01 79 07 40 63", body);
    assert_int_equal(dec_fetch(MOQ_LITE_04, body, n), MOQ_ERR_UNSUPPORTED);
    n = unhex("00", body);
    assert_int_equal(dec_goaway(MOQ_LITE_03, body, n), MOQ_ERR_UNSUPPORTED);
    assert_int_equal(dec_subscribe((moq_version)7, body, n), MOQ_ERR_UNSUPPORTED);
    assert_int_equal(dec_probe((moq_version)0, body, n), MOQ_ERR_UNSUPPORTED);
}

/* ---- framing and the control reader ------------------------------------------------ */

static void msg_split_rules(void **state)
{
    uint8_t buf[32];
    size_t n = unhex("02 01 09 ff", buf);
    uint64_t type;
    const uint8_t *body;
    size_t blen;
    assert_int_equal(moq_msg_split(buf, n, true, 64, &type, &body, &blen), 3);
    assert_int_equal(type, 2);
    assert_int_equal(blen, 1);
    assert_int_equal(body[0], 9);
    assert_int_equal(moq_msg_split(buf, 2, true, 64, &type, &body, &blen), MOQ_ERR_AGAIN);
    assert_int_equal(moq_msg_split(buf, 0, false, 64, &type, &body, &blen), MOQ_ERR_AGAIN);
    n = unhex("00", buf);
    assert_int_equal(moq_msg_split(buf, n, false, 64, NULL, &body, &blen), 1);
    assert_int_equal(blen, 0);
    n = unhex("40 41", buf);
    assert_int_equal(moq_msg_split(buf, n, false, 64, NULL, &body, &blen), MOQ_ERR_TOO_LARGE);
}

/* A lite-05 announce reply: OK, several ANNOUNCEs (one empty-suffix, one with 32 hops). */
static void build_announce_stream(moq_buf *b)
{
    struct moq_announce_ok ok = {.hop_id = 1ull << 50, .active_count = 3};
    assert_int_equal(moq_encode_announce_ok(b, MOQ_LITE_05, &ok), 0);
    static char names[300];
    for (int i = 0; i < 20; i++) {
        struct moq_announce a = {.status = (uint8_t)(i % 3 == 2 ? 0 : 1)};
        int len = snprintf(names, sizeof(names), "room/%d/%.*s", i, i * 10,
                           "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
                           "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
                           "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
        a.suffix = i == 0 ? MOQ_STR("") : moq_str_make(names, (size_t)len);
        a.hop_count = (uint32_t)(i % 33);
        for (uint32_t k = 0; k < a.hop_count; k++)
            a.hops[k] = k * 1000003ull;
        assert_int_equal(moq_encode_announce(b, MOQ_LITE_05, &a), 0);
    }
}

struct collected {
    size_t count;
    uint64_t types[64];
    size_t offsets[64];
    moq_buf bodies;
};

static void collected_init(struct collected *c)
{
    memset(c, 0, sizeof(*c));
    moq_buf_init(&c->bodies);
}

static void collect(struct collected *c, uint64_t type, const uint8_t *body, size_t len)
{
    assert_true(c->count < 64);
    c->types[c->count] = type;
    c->offsets[c->count] = c->bodies.len;
    c->count++;
    assert_int_equal(moq_buf_put_varint(&c->bodies, len), 0);
    assert_int_equal(moq_buf_append(&c->bodies, body, len), 0);
}

static void assert_collected_eq(const struct collected *a, const struct collected *b)
{
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++)
        assert_true(a->types[i] == b->types[i]);
    assert_int_equal(a->bodies.len, b->bodies.len);
    assert_memory_equal(a->bodies.data, b->bodies.data, a->bodies.len);
}

/* Feed wire to a control reader in pieces of the given sizes (cycled), FIN with the last. */
static int feed_ctrl(unsigned flags, size_t max_msg, const uint8_t *wire, size_t len,
                     const size_t *pieces, size_t npieces, struct collected *out)
{
    moq_ctrl_reader r;
    moq_ctrl_reader_init(&r, flags, max_msg);
    size_t off = 0, pi = 0;
    int rv = 0;
    do {
        size_t take = pieces[pi++ % npieces];
        if (take > len - off) take = len - off;
        const uint8_t *in = wire + off;
        size_t in_len = take;
        off += take;
        bool fin = off == len;
        struct moq_ctrl_msg m;
        while ((rv = moq_ctrl_reader_next(&r, &in, &in_len, fin, &m)) == 1)
            collect(out, m.type, m.body, m.len);
        assert_int_equal(in_len, 0);
        if (rv < 0) break;
    } while (off < len);
    moq_ctrl_reader_free(&r);
    return rv;
}

static void ctrl_reader_matches_whole_buffer(void **state)
{
    moq_buf wire;
    moq_buf_init(&wire);
    build_announce_stream(&wire);

    /* reference: whole-buffer splitting */
    struct collected ref;
    collected_init(&ref);
    for (size_t off = 0; off < wire.len;) {
        const uint8_t *body;
        size_t blen;
        int used =
            moq_msg_split(wire.data + off, wire.len - off, false, 1 << 16, NULL, &body, &blen);
        assert_true(used > 0);
        collect(&ref, 0, body, blen);
        off += (size_t)used;
    }
    assert_int_equal(ref.count, 21);

    const size_t one[] = {1};
    const size_t odd[] = {3, 1, 7, 2, 50, 1, 13};
    const size_t whole[] = {wire.len};
    const size_t *plans[] = {one, odd, whole};
    const size_t plan_n[] = {1, 7, 1};
    for (int p = 0; p < 3; p++) {
        struct collected got;
        collected_init(&got);
        assert_int_equal(feed_ctrl(0, 1024, wire.data, wire.len, plans[p], plan_n[p], &got),
                         MOQ_ERR_CLOSED);
        assert_collected_eq(&ref, &got);
        /* every body decodes to the same message as the reference */
        moq_buf_free(&got.bodies);
    }

    /* decode what the reader yields, byte at a time, and check the first messages */
    moq_ctrl_reader r;
    moq_ctrl_reader_init(&r, 0, 1024);
    const uint8_t *in = wire.data;
    size_t in_len = 1, left = wire.len;
    int seen = 0;
    while (left) {
        struct moq_ctrl_msg m;
        int rv;
        in_len = 1;
        left--;
        while ((rv = moq_ctrl_reader_next(&r, &in, &in_len, left == 0, &m)) == 1) {
            if (seen == 0) {
                struct moq_announce_ok ok;
                assert_int_equal(moq_decode_announce_ok(MOQ_LITE_05, m.body, m.len, &ok), 0);
                assert_true(ok.hop_id == 1ull << 50 && ok.active_count == 3);
            } else {
                struct moq_announce a;
                assert_int_equal(moq_decode_announce(MOQ_LITE_05, m.body, m.len, &a), 0);
                assert_int_equal(a.hop_count, (uint32_t)((seen - 1) % 33));
                if (seen == 1) assert_int_equal(a.suffix.len, 0);
            }
            seen++;
        }
        if (left == 0)
            assert_int_equal(rv, MOQ_ERR_CLOSED);
        else
            assert_int_equal(rv, 0);
    }
    assert_int_equal(seen, 21);
    moq_ctrl_reader_free(&r);
    moq_buf_free(&ref.bodies);
    moq_buf_free(&wire);
}

static void ctrl_reader_typed_and_limits(void **state)
{
    moq_buf wire;
    moq_buf_init(&wire);
    struct moq_subscribe_response rs[] = {
        {.kind = MOQ_SUBSCRIBE_START, .group = 5},
        {.kind = MOQ_SUBSCRIBE_DROP, .drop_start = 5, .drop_end = 6, .drop_error = 0},
        {.kind = MOQ_SUBSCRIBE_END, .group = 9},
    };
    for (int i = 0; i < 3; i++)
        assert_int_equal(moq_encode_subscribe_response(&wire, MOQ_LITE_05, &rs[i]), 0);

    const size_t one[] = {1};
    struct collected got;
    collected_init(&got);
    assert_int_equal(feed_ctrl(MOQ_CTRL_TYPED, 64, wire.data, wire.len, one, 1, &got),
                     MOQ_ERR_CLOSED);
    assert_int_equal(got.count, 3);
    assert_true(got.types[0] == 0 && got.types[1] == 2 && got.types[2] == 1);
    moq_buf_free(&got.bodies);

    /* FIN inside a message, inside the size, and right after the type */
    for (size_t cut = 1; cut < wire.len; cut++) {
        bool boundary = cut == 3 || cut == 8;
        collected_init(&got);
        int rv = feed_ctrl(MOQ_CTRL_TYPED, 64, wire.data, cut, one, 1, &got);
        assert_int_equal(rv, boundary ? MOQ_ERR_CLOSED : MOQ_ERR_PROTO);
        moq_buf_free(&got.bodies);
    }

    /* max message size: exactly the limit passes, one more is refused before the body */
    moq_buf_reset(&wire);
    uint8_t pad[100] = {0};
    assert_int_equal(moq_buf_put_varint(&wire, 64), 0);
    assert_int_equal(moq_buf_append(&wire, pad, 64), 0);
    collected_init(&got);
    const size_t whole[] = {wire.len};
    assert_int_equal(feed_ctrl(0, 64, wire.data, wire.len, whole, 1, &got), MOQ_ERR_CLOSED);
    assert_int_equal(got.count, 1);
    moq_buf_free(&got.bodies);

    moq_ctrl_reader r;
    moq_ctrl_reader_init(&r, 0, 64);
    uint8_t hdr[] = {0x40, 65};
    const uint8_t *in = hdr;
    size_t in_len = sizeof(hdr);
    struct moq_ctrl_msg m;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, false, &m), MOQ_ERR_TOO_LARGE);
    /* sticky */
    in = pad;
    in_len = 1;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, false, &m), MOQ_ERR_TOO_LARGE);
    moq_ctrl_reader_free(&r);

    /* a huge declared size is refused without buffering anything */
    moq_ctrl_reader_init(&r, 0, MOQ_CTRL_DEFAULT_MAX_MSG);
    uint8_t huge[] = {0xc0, 0, 0, 0, 0x10, 0, 0, 0};
    in = huge;
    in_len = sizeof(huge);
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, false, &m), MOQ_ERR_TOO_LARGE);
    assert_int_equal(r.body.cap, 0);
    moq_ctrl_reader_free(&r);

    /* a rare large message does not pin its buffer for the life of the stream */
    moq_buf_reset(&wire);
    static uint8_t large[5000];
    assert_int_equal(moq_buf_put_lenbytes(&wire, large, sizeof(large)), 0);
    assert_int_equal(moq_buf_put_lenbytes(&wire, large, 10), 0);
    moq_ctrl_reader_init(&r, 0, MOQ_CTRL_DEFAULT_MAX_MSG);
    in = wire.data;
    in_len = wire.len;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, false, &m), 1);
    assert_int_equal(m.len, sizeof(large));
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, false, &m), 1);
    assert_int_equal(m.len, 10);
    assert_true(r.body.cap <= 4096);
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, true, &m), MOQ_ERR_CLOSED);
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, true, &m), MOQ_ERR_CLOSED);
    moq_ctrl_reader_free(&r);

    /* an empty stream that just ends: clean */
    moq_ctrl_reader_init(&r, 0, 64);
    in = NULL;
    in_len = 0;
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, false, &m), 0);
    assert_int_equal(moq_ctrl_reader_next(&r, &in, &in_len, true, &m), MOQ_ERR_CLOSED);
    moq_ctrl_reader_free(&r);
    moq_buf_free(&wire);
}

static void varint_reader_pieces(void **state)
{
    uint8_t wire[] = {0xc0, 0, 0, 0, 0xff, 0x0d, 0xad, 0x05, 0x25};
    moq_varint_reader vr;
    moq_varint_reader_init(&vr);
    const uint8_t *in = wire;
    size_t in_len;
    uint64_t v = 0;
    for (int i = 0; i < 7; i++) {
        in_len = 1;
        assert_int_equal(moq_varint_reader_next(&vr, &in, &in_len, false, &v), 0);
    }
    in_len = 2;
    assert_int_equal(moq_varint_reader_next(&vr, &in, &in_len, false, &v), 1);
    assert_true(v == 0xff0dad05ull);
    assert_int_equal(in_len, 1);
    assert_int_equal(moq_varint_reader_next(&vr, &in, &in_len, true, &v), 1);
    assert_int_equal(v, 37);
    assert_int_equal(moq_varint_reader_next(&vr, &in, &in_len, true, &v), MOQ_ERR_CLOSED);
    in = wire;
    in_len = 3;
    assert_int_equal(moq_varint_reader_next(&vr, &in, &in_len, true, &v), MOQ_ERR_PROTO);
}

/* ---- the group parser -------------------------------------------------------------- */

struct frame_spec {
    uint64_t ts;
    size_t size;
};

static const struct frame_spec frames[] = {
    {1000, 2}, {990, 1}, {990, 0}, {5000, 1000}, {0, 70000}, {(1ull << 61) - 1, 3},
};
#define N_FRAMES (sizeof(frames) / sizeof(frames[0]))

static uint8_t payload_byte(size_t frame, size_t i)
{
    return (uint8_t)(frame * 31 + i * 7);
}

/* A group stream (after the stream type) for version v, optionally without the header. */
static void build_group(moq_buf *b, moq_version v, bool header, size_t nframes)
{
    if (header) {
        struct moq_group_header h = {.sub_id = 3, .sequence = 7};
        assert_int_equal(moq_encode_group_header(b, v, &h), 0);
    }
    uint64_t prev = 0;
    for (size_t f = 0; f < nframes; f++) {
        uint8_t fh[MOQ_FRAME_HEADER_MAX];
        int n = moq_frame_header_pack(fh, v, prev, frames[f].ts, frames[f].size);
        assert_true(n > 0);
        prev = frames[f].ts;
        assert_int_equal(moq_buf_append(b, fh, (size_t)n), 0);
        for (size_t i = 0; i < frames[f].size; i++)
            assert_int_equal(moq_buf_put_u8(b, payload_byte(f, i)), 0);
    }
}

struct group_result {
    int rv; /* last return: MOQ_GROUP_EV_END or an error */
    int headers;
    uint64_t sub_id, sequence;
    size_t nframes;
    uint64_t ts[16];
    uint64_t size[16];
    size_t got[16];
    bool payload_ok;
    bool zero_copy;
    uint64_t error_code;
};

static void run_group(moq_version v, bool header, const uint8_t *wire, size_t len,
                      const size_t *pieces, size_t npieces, uint64_t max_frame,
                      struct group_result *res)
{
    moq_group_parser gp;
    assert_int_equal(moq_group_parser_init(&gp, v, header, max_frame), 0);
    memset(res, 0, sizeof(*res));
    res->payload_ok = res->zero_copy = true;
    bool in_frame = false;
    size_t off = 0, pi = 0;
    for (;;) {
        size_t take = pieces[pi++ % npieces];
        if (take > len - off) take = len - off;
        const uint8_t *in = wire + off, *piece = wire + off;
        size_t in_len = take;
        off += take;
        bool fin = off == len;
        struct moq_group_event ev;
        int rv;
        while ((rv = moq_group_parser_next(&gp, &in, &in_len, fin, &ev)) > 0) {
            switch (ev.kind) {
            case MOQ_GROUP_EV_HEADER:
                res->headers++;
                res->sub_id = ev.sub_id;
                res->sequence = ev.sequence;
                break;
            case MOQ_GROUP_EV_FRAME:
                assert_false(in_frame);
                in_frame = true;
                res->ts[res->nframes] = ev.timestamp;
                res->size[res->nframes] = ev.size;
                res->got[res->nframes] = 0;
                break;
            case MOQ_GROUP_EV_PAYLOAD: {
                assert_true(in_frame && ev.len > 0);
                if (ev.data < piece || ev.data + ev.len > piece + take) res->zero_copy = false;
                size_t f = res->nframes;
                for (size_t i = 0; i < ev.len; i++)
                    if (ev.data[i] != payload_byte(f, res->got[f] + i)) res->payload_ok = false;
                res->got[f] += ev.len;
                break;
            }
            case MOQ_GROUP_EV_FRAME_END:
                assert_true(in_frame);
                in_frame = false;
                res->nframes++;
                break;
            case MOQ_GROUP_EV_END:
                assert_false(in_frame);
                res->rv = rv;
                /* END is idempotent */
                assert_int_equal(moq_group_parser_next(&gp, &in, &in_len, fin, &ev),
                                 MOQ_GROUP_EV_END);
                return;
            }
        }
        assert_int_equal(in_len, 0);
        if (rv < 0) {
            res->rv = rv;
            res->error_code = gp.error_code;
            /* errors are sticky */
            assert_int_equal(moq_group_parser_next(&gp, &in, &in_len, fin, &ev), rv);
            return;
        }
        assert_false(fin); /* a finished stream always ends in END or an error */
    }
}

static void group_parser_all_splits(void **state)
{
    moq_buf wire;
    moq_buf_init(&wire);
    const size_t one[] = {1};
    const size_t odd[] = {5, 1, 2, 9, 100, 3, 4096, 1};
    const size_t *plans[] = {one, odd, NULL};
    const size_t plan_n[] = {1, 8, 1};
    for (int i = 0; i < N_VERSIONS; i++) {
        moq_version v = all_versions[i];
        bool ts = moq_caps_get(v)->frame_timestamps;
        moq_buf_reset(&wire);
        build_group(&wire, v, true, N_FRAMES);
        const size_t whole[] = {wire.len};
        plans[2] = whole;
        for (int p = 0; p < 3; p++) {
            struct group_result res;
            run_group(v, true, wire.data, wire.len, plans[p], plan_n[p], MOQ_DEFAULT_MAX_FRAME,
                      &res);
            assert_int_equal(res.rv, MOQ_GROUP_EV_END);
            assert_int_equal(res.headers, 1);
            assert_true(res.sub_id == 3 && res.sequence == 7);
            assert_int_equal(res.nframes, N_FRAMES);
            for (size_t f = 0; f < N_FRAMES; f++) {
                assert_true(res.ts[f] == (ts ? frames[f].ts : 0));
                assert_true(res.size[f] == frames[f].size);
                assert_int_equal(res.got[f], frames[f].size);
            }
            assert_true(res.payload_ok);
            assert_true(res.zero_copy);
        }
    }
    moq_buf_free(&wire);
}

static void group_parser_edges(void **state)
{
    moq_buf wire;
    moq_buf_init(&wire);
    const size_t one[] = {1};
    struct group_result res;

    /* an empty group: header, FIN */
    build_group(&wire, MOQ_LITE_05, true, 0);
    run_group(MOQ_LITE_05, true, wire.data, wire.len, one, 1, 100, &res);
    assert_int_equal(res.rv, MOQ_GROUP_EV_END);
    assert_int_equal(res.headers, 1);
    assert_int_equal(res.nframes, 0);

    /* a fetch response: frames without a header, and an empty one */
    moq_buf_reset(&wire);
    build_group(&wire, MOQ_LITE_05, false, 4);
    run_group(MOQ_LITE_05, false, wire.data, wire.len, one, 1, 1 << 20, &res);
    assert_int_equal(res.rv, MOQ_GROUP_EV_END);
    assert_int_equal(res.headers, 0);
    assert_int_equal(res.nframes, 4);
    assert_true(res.ts[3] == 5000);
    run_group(MOQ_LITE_05, false, wire.data, 0, one, 1, 1 << 20, &res);
    assert_int_equal(res.rv, MOQ_GROUP_EV_END);

    /* FIN inside a frame: every cut that is not a frame boundary */
    moq_buf_reset(&wire);
    build_group(&wire, MOQ_LITE_05, true, 4); /* 3 + (3+2) + (2+1) + (2+0) + (4+1000) */
    size_t boundaries[] = {3, 8, 11, 13, wire.len};
    for (size_t cut = 0; cut <= wire.len; cut++) {
        bool boundary = false;
        for (size_t k = 0; k < 5; k++)
            boundary |= boundaries[k] == cut;
        run_group(MOQ_LITE_05, true, wire.data, cut, one, 1, 1 << 20, &res);
        if (boundary) {
            assert_int_equal(res.rv, MOQ_GROUP_EV_END);
        } else if (cut < 3) {
            assert_int_equal(res.rv, MOQ_ERR_PROTO);
            assert_int_equal(res.error_code, MOQ_CODE_DECODE);
        } else {
            assert_int_equal(res.rv, MOQ_ERR_PROTO);
            assert_int_equal(res.error_code, MOQ_CODE_WRONG_SIZE);
        }
    }

    /* max frame size */
    run_group(MOQ_LITE_05, true, wire.data, wire.len, one, 1, 1000, &res);
    assert_int_equal(res.rv, MOQ_GROUP_EV_END);
    run_group(MOQ_LITE_05, true, wire.data, wire.len, one, 1, 999, &res);
    assert_int_equal(res.rv, MOQ_ERR_TOO_LARGE);
    assert_int_equal(res.error_code, MOQ_CODE_FRAME_TOO_LARGE);
    assert_int_equal(res.nframes, 3);

    /* a declared 2^62-1 byte payload is refused at its header */
    uint8_t huge[] = {0x02, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    run_group(MOQ_LITE_05, true, huge, sizeof(huge), one, 1, MOQ_DEFAULT_MAX_FRAME, &res);
    assert_int_equal(res.rv, MOQ_ERR_TOO_LARGE);

    /* timestamps must stay in [0, 2^62) */
    uint8_t neg[] = {0x02, 0x00, 0x00, 0x01, 0x00}; /* first delta -1 */
    run_group(MOQ_LITE_05, true, neg, sizeof(neg), one, 1, 100, &res);
    assert_int_equal(res.rv, MOQ_ERR_PROTO);
    assert_int_equal(res.error_code, MOQ_CODE_BOUNDS_EXCEEDED);
    /* climb to 2^62-2 in two maximal steps, then +2 overflows */
    uint8_t over[] = {0x02, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00,
                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00, 0x04, 0x00};
    run_group(MOQ_LITE_05, true, over, sizeof(over), one, 1, 100, &res);
    assert_int_equal(res.rv, MOQ_ERR_PROTO);
    assert_int_equal(res.error_code, MOQ_CODE_BOUNDS_EXCEEDED);
    assert_int_equal(res.nframes, 2);
    assert_true(res.ts[1] == (1ull << 62) - 2);
    uint8_t minneg[] = {0x02, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    run_group(MOQ_LITE_05, true, minneg, sizeof(minneg), one, 1, 100, &res);
    assert_int_equal(res.rv, MOQ_ERR_PROTO);

    /* malformed headers: wrong size, leftover, too long */
    uint8_t h1[] = {0x01, 0x00};
    uint8_t h2[] = {0x03, 0x00, 0x07, 0x00};
    uint8_t h3[] = {0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    run_group(MOQ_LITE_04, true, h1, sizeof(h1), one, 1, 100, &res);
    assert_int_equal(res.rv, MOQ_ERR_PROTO);
    run_group(MOQ_LITE_04, true, h2, sizeof(h2), one, 1, 100, &res);
    assert_int_equal(res.rv, MOQ_ERR_PROTO);
    assert_int_equal(res.error_code, MOQ_CODE_DECODE);
    run_group(MOQ_LITE_04, true, h3, sizeof(h3), one, 1, 100, &res);
    assert_int_equal(res.rv, MOQ_ERR_PROTO);

    moq_group_parser gp;
    assert_int_equal(moq_group_parser_init(&gp, (moq_version)7, true, 100), MOQ_ERR_UNSUPPORTED);
    moq_buf_free(&wire);
}

static void frame_header_limits(void **state)
{
    uint8_t fh[MOQ_FRAME_HEADER_MAX];
    uint64_t lim = 1ull << 61;
    assert_true(moq_frame_header_pack(fh, MOQ_LITE_05, 0, lim - 1, 0) > 0);
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_05, 0, lim, 0), MOQ_ERR_INVALID);
    assert_true(moq_frame_header_pack(fh, MOQ_LITE_05, lim, 0, 0) > 0);
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_05, lim + 1, 0, 0), MOQ_ERR_INVALID);
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_05, 0, 1ull << 62, 0), MOQ_ERR_INVALID);
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_05, 0, 0, 1ull << 62), MOQ_ERR_INVALID);
    /* the largest header is two 8-byte varints */
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_05, 0, lim - 1, (1ull << 62) - 1), 16);
    /* 03/04 ignore timestamps entirely */
    assert_int_equal(moq_frame_header_pack(fh, MOQ_LITE_03, 0, 1ull << 63, 5), 1);
    uint8_t gh[MOQ_GROUP_HEADER_MAX];
    assert_int_equal(moq_group_header_pack(gh, true, (1ull << 62) - 1, (1ull << 62) - 1), 18);
    assert_int_equal(gh[1], 16);
    assert_int_equal(moq_group_header_pack(gh, true, 1ull << 62, 0), MOQ_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(version_table),
        cmocka_unit_test(stream_types),
        cmocka_unit_test(error_codes),
        cmocka_unit_test(worked_setup),
        cmocka_unit_test(worked_announce),
        cmocka_unit_test(worked_track_and_subscribe),
        cmocka_unit_test(worked_group_frames_probe),
        cmocka_unit_test(worked_compat_setup),
        cmocka_unit_test(version_table_legacy_and_wip),
        cmocka_unit_test(worked_lite01_02),
        cmocka_unit_test(roundtrip_lite01_02),
        cmocka_unit_test(worked_lite06_announce),
        cmocka_unit_test(ctrl_reader_turns_typed),
        cmocka_unit_test(roundtrip_setup),
        cmocka_unit_test(setup_parameter_rules),
        cmocka_unit_test(roundtrip_announce),
        cmocka_unit_test(roundtrip_subscribe),
        cmocka_unit_test(roundtrip_subscribe_responses),
        cmocka_unit_test(roundtrip_track_fetch_goaway_probe),
        cmocka_unit_test(truncated_and_leftover_bodies),
        cmocka_unit_test(announce_status_and_hops),
        cmocka_unit_test(bool_and_timescale_rules),
        cmocka_unit_test(string_limits_and_paths),
        cmocka_unit_test(messages_missing_from_a_version),
        cmocka_unit_test(msg_split_rules),
        cmocka_unit_test(ctrl_reader_matches_whole_buffer),
        cmocka_unit_test(ctrl_reader_typed_and_limits),
        cmocka_unit_test(varint_reader_pieces),
        cmocka_unit_test(group_parser_all_splits),
        cmocka_unit_test(group_parser_edges),
        cmocka_unit_test(frame_header_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
