/* Fuzz target: the qmux record decoder. Every frame decoded from a record must re-encode to
 * bytes that decode to the same fields; transport parameters and subprotocol selection get
 * the same input too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qmux/qmux.h"
#include "qmux/qmux_frame.h"

static void check_same(const moq_qmux_frame *a, const moq_qmux_frame *b)
{
    if (a->kind != b->kind || a->stream_id != b->stream_id || a->offset != b->offset ||
        a->fin != b->fin || a->code != b->code || a->final_size != b->final_size ||
        a->reliable_size != b->reliable_size || a->has_reliable_size != b->has_reliable_size ||
        a->value != b->value || a->error_frame_type != b->error_frame_type || a->len != b->len)
        abort();
    if (a->len && memcmp(a->data, b->data, a->len) != 0) abort();
    if (a->kind == MOQ_QMUX_TRANSPORT_PARAMETERS &&
        (a->params.initial_max_data != b->params.initial_max_data ||
         a->params.max_record_size != b->params.max_record_size ||
         a->params.initial_max_streams_uni != b->params.initial_max_streams_uni ||
         a->params.reset_stream_at != b->params.reset_stream_at))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[1 << 17];
    size_t pos = 0;
    while (pos < size) {
        moq_qmux_frame f;
        const char *why = NULL;
        int n = moq_qmux_frame_decode(data + pos, size - pos, &f, &why);
        if (n < 0) {
            if (!why) abort();
            break;
        }
        if (n == 0 || (size_t)n > size - pos) abort();
        pos += (size_t)n;
        size_t want = moq_qmux_frame_size(&f);
        int m = moq_qmux_frame_encode(&f, out, sizeof(out));
        if (m < 0 || (size_t)m != want) abort();
        moq_qmux_frame g;
        if (moq_qmux_frame_decode(out, (size_t)m, &g, &why) != m) abort();
        check_same(&f, &g);
    }
    moq_qmux_params p;
    const char *why = NULL;
    if (moq_qmux_params_decode(data, size, &p, &why) == 0) {
        uint8_t block[128];
        if (moq_qmux_params_encode(&p, block, sizeof(block)) < 0) abort();
    }
    static const char *const versions[] = {"moq-lite-05", "moq-lite-04", "moq-lite-03"};
    struct moq_qmux_selection sel;
    if (moq_qmux_select_subprotocol((const char *)data, size, versions, 3, NULL, 0, &sel) == 0 &&
        !strstr(sel.subprotocol, sel.protocol))
        abort();
    return 0;
}
