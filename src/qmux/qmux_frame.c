#include "qmux/qmux_frame.h"

#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/varint.h"

void moq_qmux_params_init(moq_qmux_params *p)
{
    memset(p, 0, sizeof(*p));
    p->max_record_size = MOQ_QMUX_DEFAULT_MAX_RECORD_SIZE;
}

/* ---- parameters ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    uint8_t *end;
    int err;
} writer;

static void w_varint(writer *w, uint64_t v)
{
    if (w->err) return;
    size_t n = moq_varint_len(v);
    if (n == 0) {
        w->err = MOQ_ERR_INVALID;
        return;
    }
    if ((size_t)(w->end - w->p) < n) {
        w->err = MOQ_ERR_TOO_LARGE;
        return;
    }
    w->p = moq_varint_put(w->p, v);
}

static void w_bytes(writer *w, const uint8_t *data, size_t len)
{
    if (w->err) return;
    if ((size_t)(w->end - w->p) < len) {
        w->err = MOQ_ERR_TOO_LARGE;
        return;
    }
    if (len) memcpy(w->p, data, len);
    w->p += len;
}

static void w_param(writer *w, uint64_t id, uint64_t value)
{
    if (value == 0) return;
    w_varint(w, id);
    w_varint(w, moq_varint_len(value));
    w_varint(w, value);
}

int moq_qmux_params_encode(const moq_qmux_params *p, uint8_t *out, size_t cap)
{
    writer w = {out, out + cap, 0};
    w_param(&w, MOQ_QMUX_TP_MAX_IDLE_TIMEOUT, p->max_idle_timeout_ms);
    w_param(&w, MOQ_QMUX_TP_INITIAL_MAX_DATA, p->initial_max_data);
    w_param(&w, MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL,
            p->initial_max_stream_data_bidi_local);
    w_param(&w, MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE,
            p->initial_max_stream_data_bidi_remote);
    w_param(&w, MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_UNI, p->initial_max_stream_data_uni);
    w_param(&w, MOQ_QMUX_TP_INITIAL_MAX_STREAMS_BIDI, p->initial_max_streams_bidi);
    w_param(&w, MOQ_QMUX_TP_INITIAL_MAX_STREAMS_UNI, p->initial_max_streams_uni);
    w_param(&w, MOQ_QMUX_TP_MAX_DATAGRAM_FRAME_SIZE, p->max_datagram_frame_size);
    w_param(&w, MOQ_QMUX_TP_MAX_RECORD_SIZE, p->max_record_size);
    if (p->reset_stream_at) {
        w_varint(&w, MOQ_QMUX_TP_RESET_STREAM_AT);
        w_varint(&w, 0);
    }
    if (w.err) return w.err;
    return (int)(w.p - out);
}

static bool param_forbidden(uint64_t id)
{
    return id == 0x00 || id == 0x02 || id == 0x03 || (id >= 0x0a && id <= 0x10);
}

/* Index of a recognised varint-valued parameter in the seen[] table, or -1. */
static int param_slot(uint64_t id)
{
    switch (id) {
    case MOQ_QMUX_TP_MAX_IDLE_TIMEOUT:
        return 0;
    case MOQ_QMUX_TP_INITIAL_MAX_DATA:
        return 1;
    case MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_BIDI_LOCAL:
        return 2;
    case MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_BIDI_REMOTE:
        return 3;
    case MOQ_QMUX_TP_INITIAL_MAX_STREAM_DATA_UNI:
        return 4;
    case MOQ_QMUX_TP_INITIAL_MAX_STREAMS_BIDI:
        return 5;
    case MOQ_QMUX_TP_INITIAL_MAX_STREAMS_UNI:
        return 6;
    case MOQ_QMUX_TP_MAX_DATAGRAM_FRAME_SIZE:
        return 7;
    case MOQ_QMUX_TP_MAX_RECORD_SIZE:
        return 8;
    case MOQ_QMUX_TP_RESET_STREAM_AT:
        return 9;
    default:
        return -1;
    }
}

static uint64_t *param_field(moq_qmux_params *p, int slot)
{
    switch (slot) {
    case 0:
        return &p->max_idle_timeout_ms;
    case 1:
        return &p->initial_max_data;
    case 2:
        return &p->initial_max_stream_data_bidi_local;
    case 3:
        return &p->initial_max_stream_data_bidi_remote;
    case 4:
        return &p->initial_max_stream_data_uni;
    case 5:
        return &p->initial_max_streams_bidi;
    case 6:
        return &p->initial_max_streams_uni;
    case 7:
        return &p->max_datagram_frame_size;
    default:
        return &p->max_record_size;
    }
}

#define FAIL(reason)                                                                               \
    do {                                                                                           \
        if (why) *why = (reason);                                                                  \
        return MOQ_ERR_PROTO;                                                                      \
    } while (0)

int moq_qmux_params_decode(const uint8_t *p, size_t len, moq_qmux_params *out, const char **why)
{
    moq_qmux_params_init(out);
    bool seen[10] = {false};
    moq_rd r;
    moq_rd_init(&r, p, len);
    while (moq_rd_left(&r) > 0) {
        uint64_t id, vlen;
        if (moq_rd_varint(&r, &id) < 0 || moq_rd_varint(&r, &vlen) < 0)
            FAIL("truncated transport parameter");
        const uint8_t *value;
        if (vlen > moq_rd_left(&r) || moq_rd_bytes(&r, (size_t)vlen, &value) < 0)
            FAIL("truncated transport parameter");
        if (id == MOQ_QMUX_TP_APPLICATION_PROTOCOLS)
            FAIL("unexpected application_protocols parameter");
        if (param_forbidden(id)) FAIL("forbidden transport parameter");
        int slot = param_slot(id);
        if (slot < 0) continue; /* unknown: ignored, may repeat */
        if (seen[slot]) FAIL("duplicate transport parameter");
        seen[slot] = true;
        if (id == MOQ_QMUX_TP_RESET_STREAM_AT) {
            if (vlen != 0) FAIL("reset_stream_at parameter must be empty");
            out->reset_stream_at = true;
            continue;
        }
        uint64_t v;
        int n = moq_varint_get(value, (size_t)vlen, &v);
        if (n < 0 || (uint64_t)n != vlen) FAIL("malformed transport parameter value");
        /* 0 is how "absent" is stored (and never sent); a record size of 0 is nonsense */
        if (id == MOQ_QMUX_TP_MAX_RECORD_SIZE && v == 0) FAIL("max_record_size of 0");
        *param_field(out, slot) = v;
    }
    if (out->initial_max_streams_bidi > MOQ_QMUX_MAX_STREAMS_LIMIT ||
        out->initial_max_streams_uni > MOQ_QMUX_MAX_STREAMS_LIMIT)
        FAIL("initial_max_streams above 2^60");
    return 0;
}

/* ---- frames -------------------------------------------------------------------------- */

/* A varint length then that many bytes: MOQ_ERR_AGAIN when the length itself is cut off,
 * MOQ_ERR_PROTO when it runs past the record. */
static int rd_blob(moq_rd *r, const uint8_t **data, size_t *len)
{
    uint64_t n;
    if (moq_rd_varint(r, &n) < 0) return MOQ_ERR_AGAIN;
    if (n > moq_rd_left(r)) return MOQ_ERR_PROTO;
    *len = (size_t)n;
    return moq_rd_bytes(r, (size_t)n, data) < 0 ? MOQ_ERR_PROTO : 0;
}

#define NEED(expr)                                                                                 \
    do {                                                                                           \
        if ((expr) < 0) FAIL("truncated frame");                                                   \
    } while (0)

#define BLOB(r, data, len, reason)                                                                 \
    do {                                                                                           \
        int blob_rv = rd_blob(r, data, len);                                                       \
        if (blob_rv == MOQ_ERR_AGAIN) FAIL("truncated frame");                                     \
        if (blob_rv < 0) FAIL(reason);                                                             \
    } while (0)

static int decode_stream(moq_rd *r, uint64_t type, moq_qmux_frame *f, const char **why)
{
    f->kind = MOQ_QMUX_STREAM;
    f->has_offset = (type & MOQ_QMUX_STREAM_OFF) != 0;
    f->has_length = (type & MOQ_QMUX_STREAM_LEN) != 0;
    f->fin = (type & MOQ_QMUX_STREAM_FIN) != 0;
    NEED(moq_rd_varint(r, &f->stream_id));
    if (f->has_offset) NEED(moq_rd_varint(r, &f->offset));
    if (f->has_length) {
        BLOB(r, &f->data, &f->len, "stream frame longer than its record");
    } else {
        f->len = moq_rd_left(r);
        f->data = r->p;
        r->p = r->end;
    }
    if (f->offset + f->len > MOQ_VARINT_MAX) FAIL("stream offset beyond 2^62");
    return 0;
}

static int decode_close(moq_rd *r, bool connection, moq_qmux_frame *f, const char **why)
{
    f->kind = connection ? MOQ_QMUX_CONNECTION_CLOSE : MOQ_QMUX_APPLICATION_CLOSE;
    NEED(moq_rd_varint(r, &f->code));
    if (connection) NEED(moq_rd_varint(r, &f->error_frame_type));
    BLOB(r, &f->data, &f->len, "close reason longer than its record");
    return 0;
}

static int decode_rest(moq_rd *r, uint64_t type, moq_qmux_frame *f, const char **why)
{
    switch (type) {
    case MOQ_QMUX_FT_RESET_STREAM:
    case MOQ_QMUX_FT_RESET_STREAM_AT:
        f->kind = MOQ_QMUX_RESET_STREAM;
        NEED(moq_rd_varint(r, &f->stream_id));
        NEED(moq_rd_varint(r, &f->code));
        NEED(moq_rd_varint(r, &f->final_size));
        if (type == MOQ_QMUX_FT_RESET_STREAM_AT) {
            f->has_reliable_size = true;
            NEED(moq_rd_varint(r, &f->reliable_size));
            if (f->reliable_size > f->final_size)
                FAIL("RESET_STREAM_AT reliable_size exceeds final_size");
        }
        return 0;
    case MOQ_QMUX_FT_STOP_SENDING:
        f->kind = MOQ_QMUX_STOP_SENDING;
        NEED(moq_rd_varint(r, &f->stream_id));
        NEED(moq_rd_varint(r, &f->code));
        return 0;
    case MOQ_QMUX_FT_MAX_DATA:
    case MOQ_QMUX_FT_MAX_STREAMS_BIDI:
    case MOQ_QMUX_FT_MAX_STREAMS_UNI:
    case MOQ_QMUX_FT_DATA_BLOCKED:
    case MOQ_QMUX_FT_STREAMS_BLOCKED_BIDI:
    case MOQ_QMUX_FT_STREAMS_BLOCKED_UNI:
        f->kind = type == MOQ_QMUX_FT_MAX_DATA               ? MOQ_QMUX_MAX_DATA
                  : type == MOQ_QMUX_FT_MAX_STREAMS_BIDI     ? MOQ_QMUX_MAX_STREAMS_BIDI
                  : type == MOQ_QMUX_FT_MAX_STREAMS_UNI      ? MOQ_QMUX_MAX_STREAMS_UNI
                  : type == MOQ_QMUX_FT_DATA_BLOCKED         ? MOQ_QMUX_DATA_BLOCKED
                  : type == MOQ_QMUX_FT_STREAMS_BLOCKED_BIDI ? MOQ_QMUX_STREAMS_BLOCKED_BIDI
                                                             : MOQ_QMUX_STREAMS_BLOCKED_UNI;
        NEED(moq_rd_varint(r, &f->value));
        if (type != MOQ_QMUX_FT_MAX_DATA && type != MOQ_QMUX_FT_DATA_BLOCKED &&
            f->value > MOQ_QMUX_MAX_STREAMS_LIMIT)
            FAIL("stream count above 2^60");
        return 0;
    case MOQ_QMUX_FT_MAX_STREAM_DATA:
    case MOQ_QMUX_FT_STREAM_DATA_BLOCKED:
        f->kind = type == MOQ_QMUX_FT_MAX_STREAM_DATA ? MOQ_QMUX_MAX_STREAM_DATA
                                                      : MOQ_QMUX_STREAM_DATA_BLOCKED;
        NEED(moq_rd_varint(r, &f->stream_id));
        NEED(moq_rd_varint(r, &f->value));
        return 0;
    case MOQ_QMUX_FT_CONNECTION_CLOSE:
    case MOQ_QMUX_FT_APPLICATION_CLOSE:
        return decode_close(r, type == MOQ_QMUX_FT_CONNECTION_CLOSE, f, why);
    case MOQ_QMUX_FT_DATAGRAM:
        f->kind = MOQ_QMUX_DATAGRAM;
        f->len = moq_rd_left(r);
        f->data = r->p;
        r->p = r->end;
        return 0;
    case MOQ_QMUX_FT_DATAGRAM_LEN:
        f->kind = MOQ_QMUX_DATAGRAM;
        f->has_length = true;
        BLOB(r, &f->data, &f->len, "datagram longer than its record");
        return 0;
    case MOQ_QMUX_FT_TRANSPORT_PARAMETERS: {
        f->kind = MOQ_QMUX_TRANSPORT_PARAMETERS;
        const uint8_t *block;
        size_t blen;
        BLOB(r, &block, &blen, "transport parameters longer than their record");
        return moq_qmux_params_decode(block, blen, &f->params, why);
    }
    case MOQ_QMUX_FT_PING_REQUEST:
    case MOQ_QMUX_FT_PING_RESPONSE:
        f->kind = type == MOQ_QMUX_FT_PING_REQUEST ? MOQ_QMUX_PING_REQUEST : MOQ_QMUX_PING_RESPONSE;
        NEED(moq_rd_varint(r, &f->value));
        return 0;
    default:
        FAIL("unknown frame type");
    }
}

int moq_qmux_frame_decode(const uint8_t *p, size_t len, moq_qmux_frame *f, const char **why)
{
    memset(f, 0, sizeof(*f));
    if (len == 0) FAIL("empty frame");
    if (len > INT32_MAX) FAIL("record too large");
    if (p[0] == 0x00) {
        size_t n = 1;
        while (n < len && p[n] == 0x00)
            n++;
        f->kind = MOQ_QMUX_PADDING;
        f->value = n;
        return (int)n;
    }
    moq_rd r;
    moq_rd_init(&r, p, len);
    uint64_t type;
    NEED(moq_rd_varint(&r, &type));
    int rv = (type >= MOQ_QMUX_FT_STREAM && type <= (MOQ_QMUX_FT_STREAM | 0x07))
                 ? decode_stream(&r, type, f, why)
                 : decode_rest(&r, type, f, why);
    if (rv < 0) return rv;
    return (int)(len - moq_rd_left(&r));
}

/* ---- encoding ------------------------------------------------------------------------ */

static uint64_t wire_type(const moq_qmux_frame *f)
{
    switch (f->kind) {
    case MOQ_QMUX_PADDING:
        return MOQ_QMUX_FT_PADDING;
    case MOQ_QMUX_STREAM:
        return MOQ_QMUX_FT_STREAM | (f->has_offset ? MOQ_QMUX_STREAM_OFF : 0) |
               (f->has_length ? MOQ_QMUX_STREAM_LEN : 0) | (f->fin ? MOQ_QMUX_STREAM_FIN : 0);
    case MOQ_QMUX_RESET_STREAM:
        return f->has_reliable_size ? MOQ_QMUX_FT_RESET_STREAM_AT : MOQ_QMUX_FT_RESET_STREAM;
    case MOQ_QMUX_STOP_SENDING:
        return MOQ_QMUX_FT_STOP_SENDING;
    case MOQ_QMUX_MAX_DATA:
        return MOQ_QMUX_FT_MAX_DATA;
    case MOQ_QMUX_MAX_STREAM_DATA:
        return MOQ_QMUX_FT_MAX_STREAM_DATA;
    case MOQ_QMUX_MAX_STREAMS_BIDI:
        return MOQ_QMUX_FT_MAX_STREAMS_BIDI;
    case MOQ_QMUX_MAX_STREAMS_UNI:
        return MOQ_QMUX_FT_MAX_STREAMS_UNI;
    case MOQ_QMUX_DATA_BLOCKED:
        return MOQ_QMUX_FT_DATA_BLOCKED;
    case MOQ_QMUX_STREAM_DATA_BLOCKED:
        return MOQ_QMUX_FT_STREAM_DATA_BLOCKED;
    case MOQ_QMUX_STREAMS_BLOCKED_BIDI:
        return MOQ_QMUX_FT_STREAMS_BLOCKED_BIDI;
    case MOQ_QMUX_STREAMS_BLOCKED_UNI:
        return MOQ_QMUX_FT_STREAMS_BLOCKED_UNI;
    case MOQ_QMUX_CONNECTION_CLOSE:
        return MOQ_QMUX_FT_CONNECTION_CLOSE;
    case MOQ_QMUX_APPLICATION_CLOSE:
        return MOQ_QMUX_FT_APPLICATION_CLOSE;
    case MOQ_QMUX_DATAGRAM:
        return f->has_length ? MOQ_QMUX_FT_DATAGRAM_LEN : MOQ_QMUX_FT_DATAGRAM;
    case MOQ_QMUX_TRANSPORT_PARAMETERS:
        return MOQ_QMUX_FT_TRANSPORT_PARAMETERS;
    case MOQ_QMUX_PING_REQUEST:
        return MOQ_QMUX_FT_PING_REQUEST;
    case MOQ_QMUX_PING_RESPONSE:
        return MOQ_QMUX_FT_PING_RESPONSE;
    }
    return MOQ_QMUX_FT_PADDING;
}

int moq_qmux_frame_encode(const moq_qmux_frame *f, uint8_t *out, size_t cap)
{
    writer w = {out, out + cap, 0};
    if (f->kind == MOQ_QMUX_PADDING) {
        size_t n = f->value ? (size_t)f->value : 1;
        if (cap < n) return MOQ_ERR_TOO_LARGE;
        memset(out, 0, n);
        return (int)n;
    }
    w_varint(&w, wire_type(f));
    switch (f->kind) {
    case MOQ_QMUX_STREAM:
        w_varint(&w, f->stream_id);
        if (f->has_offset) w_varint(&w, f->offset);
        if (f->has_length) w_varint(&w, f->len);
        w_bytes(&w, f->data, f->len);
        break;
    case MOQ_QMUX_RESET_STREAM:
        w_varint(&w, f->stream_id);
        w_varint(&w, f->code);
        w_varint(&w, f->final_size);
        if (f->has_reliable_size) w_varint(&w, f->reliable_size);
        break;
    case MOQ_QMUX_STOP_SENDING:
        w_varint(&w, f->stream_id);
        w_varint(&w, f->code);
        break;
    case MOQ_QMUX_MAX_STREAM_DATA:
    case MOQ_QMUX_STREAM_DATA_BLOCKED:
        w_varint(&w, f->stream_id);
        w_varint(&w, f->value);
        break;
    case MOQ_QMUX_CONNECTION_CLOSE:
    case MOQ_QMUX_APPLICATION_CLOSE:
        w_varint(&w, f->code);
        if (f->kind == MOQ_QMUX_CONNECTION_CLOSE) w_varint(&w, f->error_frame_type);
        w_varint(&w, f->len);
        w_bytes(&w, f->data, f->len);
        break;
    case MOQ_QMUX_DATAGRAM:
        if (f->has_length) w_varint(&w, f->len);
        w_bytes(&w, f->data, f->len);
        break;
    case MOQ_QMUX_TRANSPORT_PARAMETERS: {
        uint8_t block[128];
        int n = moq_qmux_params_encode(&f->params, block, sizeof(block));
        if (n < 0) return n;
        w_varint(&w, (uint64_t)n);
        w_bytes(&w, block, (size_t)n);
        break;
    }
    default: /* MAX_DATA, MAX_STREAMS, *_BLOCKED, PING */
        w_varint(&w, f->value);
        break;
    }
    if (w.err) return w.err;
    return (int)(w.p - out);
}

size_t moq_qmux_frame_size(const moq_qmux_frame *f)
{
    /* Encode the fixed part into scratch space; payload bytes are counted, not copied. */
    moq_qmux_frame head = *f;
    size_t payload = 0;
    if (f->kind == MOQ_QMUX_STREAM || f->kind == MOQ_QMUX_DATAGRAM ||
        f->kind == MOQ_QMUX_CONNECTION_CLOSE || f->kind == MOQ_QMUX_APPLICATION_CLOSE) {
        payload = f->len;
        head.data = NULL;
        head.len = 0;
        if (f->has_length || f->kind == MOQ_QMUX_CONNECTION_CLOSE ||
            f->kind == MOQ_QMUX_APPLICATION_CLOSE) {
            /* the length field's width depends on the real length */
            size_t lw = moq_varint_len(f->len);
            if (lw == 0) return 0;
            payload += lw - 1;
        }
    }
    if (f->kind == MOQ_QMUX_PADDING) return f->value ? (size_t)f->value : 1;
    uint8_t scratch[192];
    int n = moq_qmux_frame_encode(&head, scratch, sizeof(scratch));
    return n < 0 ? 0 : (size_t)n + payload;
}

size_t moq_qmux_stream_header(uint8_t *out, uint64_t id, uint64_t offset, uint64_t len, bool fin)
{
    uint8_t *p = out;
    *p++ = MOQ_QMUX_FT_STREAM | MOQ_QMUX_STREAM_OFF | MOQ_QMUX_STREAM_LEN |
           (fin ? MOQ_QMUX_STREAM_FIN : 0);
    p = moq_varint_put(p, id);
    p = moq_varint_put(p, offset);
    p = moq_varint_put(p, len);
    return (size_t)(p - out);
}

size_t moq_qmux_stream_payload_fit(size_t budget, uint64_t id, uint64_t offset)
{
    size_t fixed = 1 + moq_varint_len(id) + moq_varint_len(offset);
    if (budget <= fixed) return 0;
    size_t avail = budget - fixed; /* for the length field and the payload */
    /* The length field's width depends on the payload: take the best width that fits. */
    static const uint64_t width_max[] = {63, 16383, 1073741823ull, MOQ_VARINT_MAX};
    static const size_t widths[] = {1, 2, 4, 8};
    size_t best = 0;
    for (int i = 0; i < 4; i++) {
        if (avail < widths[i]) break;
        uint64_t cand = avail - widths[i];
        if (cand > width_max[i]) cand = width_max[i];
        if (cand > best) best = (size_t)cand;
    }
    return best;
}

const char *moq_qmux_frame_name(enum moq_qmux_frame_kind kind)
{
    switch (kind) {
    case MOQ_QMUX_PADDING:
        return "PADDING";
    case MOQ_QMUX_STREAM:
        return "STREAM";
    case MOQ_QMUX_RESET_STREAM:
        return "RESET_STREAM";
    case MOQ_QMUX_STOP_SENDING:
        return "STOP_SENDING";
    case MOQ_QMUX_MAX_DATA:
        return "MAX_DATA";
    case MOQ_QMUX_MAX_STREAM_DATA:
        return "MAX_STREAM_DATA";
    case MOQ_QMUX_MAX_STREAMS_BIDI:
        return "MAX_STREAMS_BIDI";
    case MOQ_QMUX_MAX_STREAMS_UNI:
        return "MAX_STREAMS_UNI";
    case MOQ_QMUX_DATA_BLOCKED:
        return "DATA_BLOCKED";
    case MOQ_QMUX_STREAM_DATA_BLOCKED:
        return "STREAM_DATA_BLOCKED";
    case MOQ_QMUX_STREAMS_BLOCKED_BIDI:
        return "STREAMS_BLOCKED_BIDI";
    case MOQ_QMUX_STREAMS_BLOCKED_UNI:
        return "STREAMS_BLOCKED_UNI";
    case MOQ_QMUX_CONNECTION_CLOSE:
        return "CONNECTION_CLOSE";
    case MOQ_QMUX_APPLICATION_CLOSE:
        return "APPLICATION_CLOSE";
    case MOQ_QMUX_DATAGRAM:
        return "DATAGRAM";
    case MOQ_QMUX_TRANSPORT_PARAMETERS:
        return "QX_TRANSPORT_PARAMETERS";
    case MOQ_QMUX_PING_REQUEST:
        return "QX_PING_REQUEST";
    case MOQ_QMUX_PING_RESPONSE:
        return "QX_PING_RESPONSE";
    }
    return "?";
}
