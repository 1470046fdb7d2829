/* Unit tests for src/qmux: subprotocol selection, frame and transport-parameter codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "qmux/qmux.h"
#include "qmux/qmux_frame.h"
#include "util/err.h"

/* ---- helpers --------------------------------------------------------------------------- */

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

static void assert_encodes(const moq_qmux_frame *f, const char *hex)
{
    uint8_t want[512], got[512];
    size_t wn = unhex(hex, want);
    int n = moq_qmux_frame_encode(f, got, sizeof(got));
    assert_int_equal(n, (int)wn);
    assert_memory_equal(got, want, wn);
    assert_int_equal(moq_qmux_frame_size(f), wn);
    /* and it decodes back to the same frame */
    moq_qmux_frame back;
    const char *why = NULL;
    assert_int_equal(moq_qmux_frame_decode(got, (size_t)n, &back, &why), n);
    assert_int_equal(back.kind, f->kind);
    uint8_t again[512];
    assert_int_equal(moq_qmux_frame_encode(&back, again, sizeof(again)), n);
    assert_memory_equal(again, got, wn);
}

static void assert_decode_fails(const char *hex, const char *reason_part)
{
    uint8_t in[512];
    size_t n = unhex(hex, in);
    moq_qmux_frame f;
    const char *why = NULL;
    assert_int_equal(moq_qmux_frame_decode(in, n, &f, &why), MOQ_ERR_PROTO);
    assert_non_null(why);
    if (!strstr(why, reason_part))
        fail_msg("reason \"%s\" lacks \"%s\" (%s)", why, reason_part, hex);
}

/* ---- subprotocol selection ---------------------------------------------------------------- */

/* @moq/net 0.3.4 through @moq/qmux 0.3.3: the exact offer, in order. */
static const char NET_034_OFFER[] =
    "qmux-02.moq-lite-05, qmux-01.moq-lite-05, qmux-00.moq-lite-05, qmux-02.moq-lite-04, "
    "qmux-01.moq-lite-04, qmux-00.moq-lite-04, qmux-02.moq-lite-03, qmux-01.moq-lite-03, "
    "qmux-00.moq-lite-03, qmux-02.moql, qmux-01.moql, qmux-00.moql, qmux-01.moqt-20, "
    "qmux-01.moqt-18, qmux-02.moqt-17, qmux-01.moqt-17, qmux-00.moqt-17, qmux-02.moqt-16, "
    "qmux-01.moqt-16, qmux-00.moqt-16, qmux-02.moqt-15, qmux-01.moqt-15, qmux-00.moqt-15, "
    "qmux-02, qmux-01, qmux-00, webtransport";

static const char *const RELAY_VERSIONS[] = {"moq-lite-05", "moq-lite-04", "moq-lite-03"};

static int select_in(const char *offer, const enum moq_qmux_wire *wires, size_t nw,
                     struct moq_qmux_selection *sel)
{
    return moq_qmux_select_subprotocol(offer, offer ? strlen(offer) : 0, RELAY_VERSIONS, 3, wires,
                                       nw, sel);
}

static void select_moq_net_offer(void **state)
{
    struct moq_qmux_selection sel;
    /* Our default order puts qmux-02 first: the client's first entry wins. */
    assert_int_equal(select_in(NET_034_OFFER, NULL, 0, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-02.moq-lite-05");
    assert_string_equal(sel.protocol, "moq-lite-05");
    assert_int_equal(sel.wire, MOQ_QMUX_02);
    /* Upstream moq-relay's order (qmux-01, qmux-00) lands on qmux-01.moq-lite-05. */
    static const enum moq_qmux_wire upstream[] = {MOQ_QMUX_01, MOQ_QMUX_00};
    assert_int_equal(select_in(NET_034_OFFER, upstream, 2, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-01.moq-lite-05");
    assert_int_equal(sel.wire, MOQ_QMUX_01);
}

static void select_server_preference_wins(void **state)
{
    struct moq_qmux_selection sel;
    /* the client prefers lite-03, we prefer lite-05: ours wins */
    assert_int_equal(select_in("qmux-01.moq-lite-03,qmux-00.moq-lite-05", NULL, 0, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-00.moq-lite-05");
    assert_int_equal(sel.wire, MOQ_QMUX_00);
    /* older clients: only lite-04 / lite-03 offers */
    assert_int_equal(
        select_in("qmux-01.moq-lite-04, qmux-00.moq-lite-04, qmux-01.moq-lite-03", NULL, 0, &sel),
        0);
    assert_string_equal(sel.subprotocol, "qmux-01.moq-lite-04");
    assert_string_equal(sel.protocol, "moq-lite-04");
    assert_int_equal(select_in("qmux-00.moq-lite-03", NULL, 0, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-00.moq-lite-03");
    /* tabs and blank entries are tolerated */
    assert_int_equal(select_in(" ,\tqmux-01.moq-lite-05\t, ", NULL, 0, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-01.moq-lite-05");
}

static void select_no_match(void **state)
{
    struct moq_qmux_selection sel;
    assert_int_equal(select_in("qmux-02, qmux-01, qmux-00, webtransport", NULL, 0, &sel),
                     MOQ_ERR_NOT_FOUND);
    assert_int_equal(select_in("qmux-01.moql, qmux-01.moqt-17", NULL, 0, &sel), MOQ_ERR_NOT_FOUND);
    assert_int_equal(select_in("", NULL, 0, &sel), MOQ_ERR_NOT_FOUND);
    assert_int_equal(select_in(NULL, NULL, 0, &sel), MOQ_ERR_NOT_FOUND);
    /* exact tokens only: no prefix or case games */
    assert_int_equal(
        select_in("qmux-01.moq-lite-055, QMUX-01.moq-lite-05, qmux-01.moq-lite-0", NULL, 0, &sel),
        MOQ_ERR_NOT_FOUND);
    /* a wire we do not list is not chosen */
    static const enum moq_qmux_wire only01[] = {MOQ_QMUX_01};
    assert_int_equal(select_in("qmux-02.moq-lite-05", only01, 1, &sel), MOQ_ERR_NOT_FOUND);
}

/* Drafts 18-20 ride qmux-01 alone: the relay answers that framing whatever else the
 * client offers, refuses the others, and our client offers nothing else. */
static void ietf_drafts_pinned_to_qmux01(void **state)
{
    static const char *const ietf[] = {"moqt-20", "moqt-19", "moqt-18", "moqt-17"};
    struct moq_qmux_selection sel;
    const char *all18 = "qmux-02.moqt-18, qmux-01.moqt-18, qmux-00.moqt-18";
    assert_int_equal(moq_qmux_select_subprotocol(all18, strlen(all18), ietf, 4, NULL, 0, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-01.moqt-18");
    assert_int_equal(sel.wire, MOQ_QMUX_01);
    const char *not01 = "qmux-02.moqt-20, qmux-00.moqt-19, qmux-00.moqt-18";
    assert_int_equal(moq_qmux_select_subprotocol(not01, strlen(not01), ietf, 4, NULL, 0, &sel),
                     MOQ_ERR_NOT_FOUND);
    /* draft-17 is not pinned: our preference (qmux-02) wins */
    const char *all17 = "qmux-00.moqt-17, qmux-02.moqt-17";
    assert_int_equal(moq_qmux_select_subprotocol(all17, strlen(all17), ietf, 4, NULL, 0, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-02.moqt-17");
    /* an explicit wire list without qmux-01 leaves the pinned drafts out */
    static const enum moq_qmux_wire only02[] = {MOQ_QMUX_02};
    const char *both = "qmux-02.moqt-20, qmux-02.moqt-17";
    assert_int_equal(moq_qmux_select_subprotocol(both, strlen(both), ietf, 4, only02, 1, &sel), 0);
    assert_string_equal(sel.subprotocol, "qmux-02.moqt-17");
    char offer[256];
    assert_true(moq_qmux_offer_subprotocols(offer, sizeof(offer), ietf, 4, NULL, 0) > 0);
    assert_string_equal(offer, "qmux-01.moqt-20, qmux-01.moqt-19, qmux-01.moqt-18, "
                               "qmux-02.moqt-17, qmux-01.moqt-17, qmux-00.moqt-17");
    assert_false(moq_qmux_wire_allowed("moqt-18", MOQ_QMUX_00));
    assert_true(moq_qmux_wire_allowed("moq-lite-05", MOQ_QMUX_00));
}

static void parse_and_offer_subprotocols(void **state)
{
    struct moq_qmux_selection sel;
    assert_int_equal(moq_qmux_parse_subprotocol("qmux-01.moq-lite-04", 19, &sel), 0);
    assert_int_equal(sel.wire, MOQ_QMUX_01);
    assert_string_equal(sel.protocol, "moq-lite-04");
    assert_int_equal(moq_qmux_parse_subprotocol("qmux-01.", 8, &sel), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_qmux_parse_subprotocol("qmux-01", 7, &sel), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_qmux_parse_subprotocol("webtransport", 12, &sel), MOQ_ERR_NOT_FOUND);
    assert_int_equal(moq_qmux_parse_subprotocol("qmux-03.moq-lite-05", 19, &sel),
                     MOQ_ERR_NOT_FOUND);
    char offer[256];
    int n = moq_qmux_offer_subprotocols(offer, sizeof(offer), RELAY_VERSIONS, 2, NULL, 0);
    assert_string_equal(offer, "qmux-02.moq-lite-05, qmux-01.moq-lite-05, qmux-00.moq-lite-05, "
                               "qmux-02.moq-lite-04, qmux-01.moq-lite-04, qmux-00.moq-lite-04");
    assert_int_equal(n, (int)strlen(offer));
    assert_int_equal(moq_qmux_offer_subprotocols(offer, 20, RELAY_VERSIONS, 2, NULL, 0),
                     MOQ_ERR_TOO_LARGE);
}

/* ---- frames: the digest's worked examples ----------------------------------------------- */

static void frame_examples_exact_bytes(void **state)
{
    moq_qmux_frame f = {.kind = MOQ_QMUX_STREAM,
                        .stream_id = 3,
                        .has_offset = true,
                        .has_length = true,
                        .data = (const uint8_t *)"ab",
                        .len = 2};
    assert_encodes(&f, "0e 03 00 02 61 62");
    f = (moq_qmux_frame){.kind = MOQ_QMUX_STREAM,
                         .stream_id = 3,
                         .offset = 2,
                         .has_offset = true,
                         .has_length = true,
                         .fin = true};
    assert_encodes(&f, "0f 03 02 00");
    f = (moq_qmux_frame){
        .kind = MOQ_QMUX_RESET_STREAM, .stream_id = 3, .code = 13, .final_size = 2};
    assert_encodes(&f, "04 03 0d 02");
    f = (moq_qmux_frame){.kind = MOQ_QMUX_STOP_SENDING, .stream_id = 2, .code = 0};
    assert_encodes(&f, "05 02 00");
    f = (moq_qmux_frame){.kind = MOQ_QMUX_PING_REQUEST, .value = 1};
    assert_encodes(&f, "f48c67529ef8c7bd 01");
    f = (moq_qmux_frame){.kind = MOQ_QMUX_PING_RESPONSE, .value = 1};
    assert_encodes(&f, "f48c67529ef8c7be 01");
    f = (moq_qmux_frame){.kind = MOQ_QMUX_APPLICATION_CLOSE, .code = 0};
    assert_encodes(&f, "1d 00 00");
    /* the stream header helper matches the full encoder */
    uint8_t hdr[32];
    size_t hn = moq_qmux_stream_header(hdr, 3, 0, 2, false);
    assert_int_equal(hn, 4);
    assert_memory_equal(hdr, "\x0e\x03\x00\x02", 4);
    hn = moq_qmux_stream_header(hdr, 3, 2, 0, true);
    assert_memory_equal(hdr, "\x0f\x03\x02\x00", 4);
}

static void params_example_server_frame(void **state)
{
    /* The JS client / Rust crate defaults, as a server's first frame (digest 5.3). */
    static const char *hex =
        "ff5153300d0a0d0a 35 01 04 80007530 04 04 80100000 05 04 80040000 06 04 80040000 "
        "07 04 80040000 08 02 4064 09 02 4064 20 02 7ffe c571c59429cd0845 02 7ffe";
    moq_qmux_frame f = {.kind = MOQ_QMUX_TRANSPORT_PARAMETERS};
    moq_qmux_params_init(&f.params);
    f.params.max_idle_timeout_ms = 30000;
    f.params.initial_max_data = 1048576;
    f.params.initial_max_stream_data_bidi_local = 262144;
    f.params.initial_max_stream_data_bidi_remote = 262144;
    f.params.initial_max_stream_data_uni = 262144;
    f.params.initial_max_streams_bidi = 100;
    f.params.initial_max_streams_uni = 100;
    f.params.max_datagram_frame_size = 16382;
    f.params.max_record_size = 16382;
    assert_encodes(&f, hex);

    uint8_t in[128];
    size_t n = unhex(hex, in);
    moq_qmux_frame d;
    assert_int_equal(moq_qmux_frame_decode(in, n, &d, NULL), (int)n);
    assert_int_equal(d.kind, MOQ_QMUX_TRANSPORT_PARAMETERS);
    assert_true(d.params.max_idle_timeout_ms == 30000);
    assert_true(d.params.initial_max_data == 1048576);
    assert_true(d.params.initial_max_stream_data_bidi_local == 262144);
    assert_true(d.params.initial_max_stream_data_bidi_remote == 262144);
    assert_true(d.params.initial_max_stream_data_uni == 262144);
    assert_true(d.params.initial_max_streams_bidi == 100);
    assert_true(d.params.initial_max_streams_uni == 100);
    assert_true(d.params.max_datagram_frame_size == 16382);
    assert_true(d.params.max_record_size == 16382);
    assert_false(d.params.reset_stream_at);
}

static void params_rules(void **state)
{
    moq_qmux_params p;
    const char *why = NULL;
    uint8_t in[64];
    size_t n;
    /* empty block: everything zero, max_record_size defaults to 16382 */
    assert_int_equal(moq_qmux_params_decode(NULL, 0, &p, &why), 0);
    assert_true(p.max_record_size == 16382 && p.initial_max_data == 0);
    /* unknown ids are skipped, even repeated; reset_stream_at is an empty flag */
    n = unhex("21 01 00 21 02 0000 1d 00 04 01 07", in);
    assert_int_equal(moq_qmux_params_decode(in, n, &p, &why), 0);
    assert_true(p.reset_stream_at);
    assert_true(p.initial_max_data == 7);
    /* a value in a longer varint form than needed is fine */
    n = unhex("04 02 4007", in);
    assert_int_equal(moq_qmux_params_decode(in, n, &p, &why), 0);
    assert_true(p.initial_max_data == 7);
    /* errors */
    static const struct {
        const char *hex;
        const char *why;
    } bad[] = {
        {"04 01 07 04 01 08", "duplicate"},
        {"1d 00 1d 00", "duplicate"},
        {"00 00", "forbidden"},
        {"02 01 00", "forbidden"},
        {"03 01 00", "forbidden"},
        {"0a 01 00", "forbidden"},
        {"10 01 00", "forbidden"},
        {"fd4f9c2a8b1e6075 02 01 61", "application_protocols"},
        {"1d 01 00", "reset_stream_at"},
        {"04 02 07 00", "malformed"},
        {"04 00", "malformed"},
        {"04 05 07", "truncated"},
        {"04", "truncated"},
        {"08 08 d000000000000001", "2^60"},
        {"c571c59429cd0845 01 00", "max_record_size of 0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = unhex(bad[i].hex, in);
        int rv = moq_qmux_params_decode(in, n, &p, &why);
        if (rv != MOQ_ERR_PROTO) fail_msg("params \"%s\" accepted", bad[i].hex);
        if (!strstr(why, bad[i].why)) fail_msg("\"%s\": reason %s", bad[i].hex, why);
    }
    /* round trip with every field, zero values omitted */
    moq_qmux_params all = {1, 2, 3, 4, 5, 6, 7, 8, 16384, true}, back;
    uint8_t out[128];
    int len = moq_qmux_params_encode(&all, out, sizeof(out));
    assert_true(len > 0);
    assert_int_equal(moq_qmux_params_decode(out, (size_t)len, &back, &why), 0);
    assert_true(back.max_idle_timeout_ms == 1 && back.initial_max_data == 2);
    assert_true(back.initial_max_stream_data_bidi_local == 3);
    assert_true(back.initial_max_stream_data_bidi_remote == 4);
    assert_true(back.initial_max_stream_data_uni == 5);
    assert_true(back.initial_max_streams_bidi == 6 && back.initial_max_streams_uni == 7);
    assert_true(back.max_datagram_frame_size == 8 && back.max_record_size == 16384);
    assert_true(back.reset_stream_at);
    moq_qmux_params zero;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(moq_qmux_params_encode(&zero, out, sizeof(out)), 0);
    assert_int_equal(moq_qmux_params_encode(&all, out, 5), MOQ_ERR_TOO_LARGE);
}

static void frame_round_trips(void **state)
{
    static const uint8_t payload[] = "payload bytes";
    const moq_qmux_frame frames[] = {
        {.kind = MOQ_QMUX_STREAM, .stream_id = 0, .data = payload, .len = 5},
        {.kind = MOQ_QMUX_STREAM, .stream_id = 4, .has_length = true, .data = payload, .len = 7},
        {.kind = MOQ_QMUX_STREAM,
         .stream_id = 7,
         .has_offset = true,
         .offset = 1u << 20,
         .data = payload,
         .len = 3,
         .fin = true},
        {.kind = MOQ_QMUX_STREAM,
         .stream_id = 1ull << 40,
         .has_offset = true,
         .has_length = true,
         .offset = 99,
         .fin = true},
        {.kind = MOQ_QMUX_RESET_STREAM, .stream_id = 5, .code = 1ull << 61, .final_size = 70000},
        {.kind = MOQ_QMUX_RESET_STREAM,
         .stream_id = 5,
         .code = 2,
         .final_size = 9,
         .has_reliable_size = true,
         .reliable_size = 9},
        {.kind = MOQ_QMUX_STOP_SENDING, .stream_id = 9, .code = 300},
        {.kind = MOQ_QMUX_MAX_DATA, .value = 1ull << 50},
        {.kind = MOQ_QMUX_MAX_STREAM_DATA, .stream_id = 2, .value = 262144},
        {.kind = MOQ_QMUX_MAX_STREAMS_BIDI, .value = 1ull << 60},
        {.kind = MOQ_QMUX_MAX_STREAMS_UNI, .value = 200},
        {.kind = MOQ_QMUX_DATA_BLOCKED, .value = 5},
        {.kind = MOQ_QMUX_STREAM_DATA_BLOCKED, .stream_id = 3, .value = 6},
        {.kind = MOQ_QMUX_STREAMS_BLOCKED_BIDI, .value = 7},
        {.kind = MOQ_QMUX_STREAMS_BLOCKED_UNI, .value = 8},
        {.kind = MOQ_QMUX_CONNECTION_CLOSE,
         .code = 1002,
         .error_frame_type = 0x08,
         .data = payload,
         .len = 4},
        {.kind = MOQ_QMUX_APPLICATION_CLOSE, .code = 42, .data = payload, .len = 13},
        {.kind = MOQ_QMUX_DATAGRAM, .data = payload, .len = 13},
        {.kind = MOQ_QMUX_DATAGRAM, .has_length = true, .data = payload, .len = 13},
        {.kind = MOQ_QMUX_PING_REQUEST, .value = 77},
        {.kind = MOQ_QMUX_PING_RESPONSE, .value = 0},
        {.kind = MOQ_QMUX_PADDING, .value = 3},
    };
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        const moq_qmux_frame *f = &frames[i];
        uint8_t buf[128];
        int n = moq_qmux_frame_encode(f, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(moq_qmux_frame_size(f), (size_t)n);
        moq_qmux_frame d;
        assert_int_equal(moq_qmux_frame_decode(buf, (size_t)n, &d, NULL), n);
        assert_int_equal(d.kind, f->kind);
        assert_true(d.stream_id == f->stream_id && d.code == f->code && d.value == f->value);
        assert_true(d.offset == f->offset && d.fin == f->fin && d.final_size == f->final_size);
        assert_true(d.has_reliable_size == f->has_reliable_size);
        assert_true(d.error_frame_type == f->error_frame_type);
        assert_int_equal(d.len, f->len);
        if (f->len) assert_memory_equal(d.data, f->data, f->len);
        /* every truncation of a self-delimiting frame fails to decode */
        bool delimited = !(f->kind == MOQ_QMUX_STREAM && !f->has_length) &&
                         !(f->kind == MOQ_QMUX_DATAGRAM && !f->has_length) &&
                         f->kind != MOQ_QMUX_PADDING;
        for (int cut = 1; delimited && cut < n; cut++)
            assert_int_equal(moq_qmux_frame_decode(buf, (size_t)cut, &d, NULL), MOQ_ERR_PROTO);
        /* too small an output buffer */
        assert_int_equal(moq_qmux_frame_encode(f, buf, (size_t)n - 1), MOQ_ERR_TOO_LARGE);
    }
}

static void record_with_several_frames(void **state)
{
    uint8_t rec[256];
    size_t n = unhex("00 00 00 10 4400 0e 03 00 02 61 62 12 0a 0f 03 02 00", rec);
    const enum moq_qmux_frame_kind kinds[] = {MOQ_QMUX_PADDING, MOQ_QMUX_MAX_DATA, MOQ_QMUX_STREAM,
                                              MOQ_QMUX_MAX_STREAMS_BIDI, MOQ_QMUX_STREAM};
    size_t pos = 0, k = 0;
    while (pos < n) {
        moq_qmux_frame f;
        int used = moq_qmux_frame_decode(rec + pos, n - pos, &f, NULL);
        assert_true(used > 0);
        assert_int_equal(f.kind, kinds[k]);
        if (k == 0) assert_true(f.value == 3);
        if (k == 1) assert_true(f.value == 0x400);
        pos += (size_t)used;
        k++;
    }
    assert_int_equal(k, 5);
}

static void decode_errors(void **state)
{
    assert_decode_fails("40", "truncated");          /* type varint cut */
    assert_decode_fails("21", "unknown frame type"); /* 0x21 is nothing */
    assert_decode_fails("4024", "truncated");        /* RESET_STREAM_AT, long form */
    assert_decode_fails("3f", "unknown frame type");
    assert_decode_fails("0a 03 05 61", "longer than its record"); /* LEN beyond the record */
    assert_decode_fails("0e", "truncated");                       /* no stream id */
    assert_decode_fails("0e 03", "truncated");                    /* no offset */
    assert_decode_fails("0e 03 00", "truncated");                 /* no length */
    assert_decode_fails("0c 03 ffffffffffffffff 61", "2^62");     /* offset + len too big */
    assert_decode_fails("04 03 0d", "truncated");
    assert_decode_fails("24 03 0d 02 03", "reliable_size");
    assert_decode_fails("05 02", "truncated");
    assert_decode_fails("10", "truncated");
    assert_decode_fails("11 02", "truncated");
    assert_decode_fails("12 d000000000000001", "2^60");
    assert_decode_fails("13 d000000000000001", "2^60");
    assert_decode_fails("16 d000000000000001", "2^60");
    assert_decode_fails("1c 00 00 05 61", "longer than its record");
    assert_decode_fails("1c 00", "truncated");
    assert_decode_fails("1d 00 02 61", "longer than its record");
    assert_decode_fails("31 04 61", "longer than its record");
    assert_decode_fails("ff5153300d0a0d0a 05 01", "longer than their record");
    assert_decode_fails("ff5153300d0a0d0a 02 04 01", "truncated transport parameter");
    assert_decode_fails("ff5153300d0a0d0a 03 01 02 01", "truncated transport parameter");
    assert_decode_fails("ff5153300d0a0d0a 06 04 01 07 04 01 07", "duplicate");
    assert_decode_fails("f48c67529ef8c7bd", "truncated");
    assert_decode_fails("f48c67529ef8c7be", "truncated");
    moq_qmux_frame f;
    const char *why = NULL;
    assert_int_equal(moq_qmux_frame_decode((const uint8_t *)"", 0, &f, &why), MOQ_ERR_PROTO);
}

static void stream_payload_fit(void **state)
{
    /* 16382-byte budget for stream 3 at offset 0: 1 + 1 + 1 header bytes, then 2 for len */
    assert_int_equal(moq_qmux_stream_payload_fit(16382, 3, 0), 16382 - 5);
    /* the length width follows the payload: 64 bytes of room holds 62 payload (len in 1 byte
     * would allow only 63 - but 63 + 1 = 64 fits too) */
    size_t budget = 3 + 64; /* type, id, offset + 64 */
    size_t fit = moq_qmux_stream_payload_fit(budget, 3, 0);
    uint8_t hdr[32];
    size_t h = moq_qmux_stream_header(hdr, 3, 0, fit, false);
    assert_true(h + fit <= budget);
    assert_true(moq_qmux_stream_header(hdr, 3, 0, fit + 1, false) + fit + 1 > budget);
    for (size_t b = 0; b < 20000; b += 37) {
        size_t p = moq_qmux_stream_payload_fit(b, 1ull << 20, 1ull << 31);
        if (p == 0) continue;
        assert_true(moq_qmux_stream_header(hdr, 1ull << 20, 1ull << 31, p, true) + p <= b);
        assert_true(moq_qmux_stream_header(hdr, 1ull << 20, 1ull << 31, p + 1, true) + p + 1 > b);
    }
    assert_int_equal(moq_qmux_stream_payload_fit(3, 3, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(select_moq_net_offer),
        cmocka_unit_test(select_server_preference_wins),
        cmocka_unit_test(select_no_match),
        cmocka_unit_test(ietf_drafts_pinned_to_qmux01),
        cmocka_unit_test(parse_and_offer_subprotocols),
        cmocka_unit_test(frame_examples_exact_bytes),
        cmocka_unit_test(params_example_server_frame),
        cmocka_unit_test(params_rules),
        cmocka_unit_test(frame_round_trips),
        cmocka_unit_test(record_with_several_frames),
        cmocka_unit_test(decode_errors),
        cmocka_unit_test(stream_payload_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
