/* Fuzz target: lite-05 SETUP parameters and the legacy compat SETUP.
 *
 * The input is tried as a SETUP body (decode, re-encode, decode again to the same bytes) and
 * as a compat SETUP stream: the 0x20 stream type varint, then a u16-framed CLIENT_SETUP read
 * one byte at a time, whose version list must decode without reading past the message; and
 * as a SERVER_SETUP body, whose version must re-encode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moq/codec.h"
#include "moq/stream_reader.h"
#include "util/err.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

static void setup_body(const uint8_t *data, size_t size)
{
    uint8_t *body = malloc(size ? size : 1);
    CHECK(body);
    if (size) memcpy(body, data, size);
    struct moq_setup m;
    if (moq_decode_setup(MOQ_LITE_05, body, size, &m) == 0) {
        moq_buf a, b;
        moq_buf_init(&a);
        moq_buf_init(&b);
        CHECK(moq_encode_setup(&a, MOQ_LITE_05, &m) == 0);
        const uint8_t *p;
        size_t n;
        CHECK(moq_msg_split(a.data, a.len, false, SIZE_MAX, NULL, &p, &n) == (int)a.len);
        uint8_t *again = malloc(n);
        CHECK(again);
        memcpy(again, p, n);
        struct moq_setup m2;
        CHECK(moq_decode_setup(MOQ_LITE_05, again, n, &m2) == 0);
        CHECK(m2.probe == m.probe && m2.role == m.role && m2.origin == m.origin &&
              m2.has_path == m.has_path && m2.has_cost == m.has_cost && m2.cost == m.cost);
        CHECK(moq_encode_setup(&b, MOQ_LITE_05, &m2) == 0);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        free(again);
        moq_buf_free(&a);
        moq_buf_free(&b);
    }
    free(body);
    /* SETUP exists on lite-05 only */
    CHECK(moq_decode_setup(MOQ_LITE_04, (uint8_t *)data, size, &m) == MOQ_ERR_UNSUPPORTED);
}

static void compat_stream(const uint8_t *data, size_t size)
{
    moq_varint_reader vr;
    moq_varint_reader_init(&vr);
    moq_ctrl_reader r;
    moq_ctrl_reader_init(&r, MOQ_CTRL_U16_SIZE, 65535);
    bool typed_ok = false;
    for (size_t i = 0; i < size; i++) {
        const uint8_t *in = data + i;
        size_t in_len = 1;
        bool fin = i + 1 == size;
        if (!typed_ok) {
            uint64_t type;
            int rv = moq_varint_reader_next(&vr, &in, &in_len, fin, &type);
            if (rv < 0) break;
            if (rv == 1) {
                if (type != MOQ_BIDI_CLIENT_COMPAT) break;
                typed_ok = true;
            }
            if (in_len == 0) continue;
        }
        struct moq_ctrl_msg m;
        int rv = moq_ctrl_reader_next(&r, &in, &in_len, fin, &m);
        if (rv == 1) {
            struct moq_compat_client_setup cs;
            if (moq_decode_compat_client_setup(m.body, m.len, &cs) == 0) {
                CHECK(cs.n_versions <= MOQ_COMPAT_MAX_VERSIONS);
                CHECK(cs.params_len <= m.len);
                CHECK(m.len == 0 ||
                      (cs.params >= m.body && cs.params + cs.params_len <= m.body + m.len));
                moq_buf out;
                moq_buf_init(&out);
                if (cs.n_versions <= MOQ_COMPAT_KEEP_VERSIONS)
                    CHECK(moq_encode_compat_client_setup(&out, cs.versions, cs.n_versions,
                                                         cs.params, cs.params_len) == 0);
                moq_buf_free(&out);
            }
            break;
        }
        if (rv < 0) break;
    }
    moq_ctrl_reader_free(&r);
}

static void compat_server(const uint8_t *data, size_t size)
{
    uint64_t version;
    const uint8_t *params;
    size_t params_len;
    if (size > UINT16_MAX ||
        moq_decode_compat_server_setup(data, size, &version, &params, &params_len) < 0)
        return;
    CHECK(params >= data && params + params_len == data + size);
    moq_buf out;
    moq_buf_init(&out);
    CHECK(moq_encode_compat_server_setup(&out, version, params, params_len) == 0);
    /* u16 size + a shortest-form varint: no longer than the input plus the size */
    CHECK(out.len >= 2 && out.len <= size + 2);
    moq_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_body(data, size);
    compat_stream(data, size);
    compat_server(data, size);
    return 0;
}
