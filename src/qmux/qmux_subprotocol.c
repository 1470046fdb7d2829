/*
 * Sec-WebSocket-Protocol negotiation for qmux.
 *
 * Why qmux-02 leads our preference (upstream moq-relay offers only qmux-01 and qmux-00, while
 * moq-native's server and the Rust qmux crate default to qmux-02): qmux-02 is wire-compatible
 * with qmux-01 and only adds rules this module implements in full - QX_TRANSPORT_PARAMETERS
 * must be the first frame and appear once, QX_PING request sequences strictly increase and
 * responses echo a sent sequence, RESET_STREAM_AT is accepted once we advertise
 * reset_stream_at (we never send it), max_record_size below 16382 is refused. @moq/qmux 0.3.3
 * (what @moq/net 0.3.4 runs) offers qmux-02 first for every version. Embedders wanting the
 * exact upstream choice pass {MOQ_QMUX_01, MOQ_QMUX_00} as the wire list.
 *
 * Some application protocols are pinned to one framing whatever the wire list: IETF
 * moq-transport drafts 18 and 19 ride qmux-01 only (upstream moq-native, both roles) and
 * @moq/net 0.3.4 pins drafts 18 and 20 to qmux-01, so "moqt-18", "moqt-19" and "moqt-20" are
 * offered and accepted as "qmux-01.<alpn>" alone.
 */
#include <stdio.h>
#include <string.h>

#include "qmux/qmux.h"
#include "util/err.h"

const enum moq_qmux_wire moq_qmux_default_wires[3] = {MOQ_QMUX_02, MOQ_QMUX_01, MOQ_QMUX_00};

static const char wire_prefixes[3][9] = {"qmux-00.", "qmux-01.", "qmux-02."};

static const char *wire_prefix(enum moq_qmux_wire w)
{
    return wire_prefixes[(unsigned)w <= MOQ_QMUX_02 ? (unsigned)w : 0];
}

#define PREFIX_LEN 8 /* "qmux-0N." */

static const char *const qmux01_only[] = {"moqt-18", "moqt-19", "moqt-20"};

bool moq_qmux_wire_allowed(const char *protocol, enum moq_qmux_wire w)
{
    for (size_t i = 0; i < sizeof(qmux01_only) / sizeof(qmux01_only[0]); i++)
        if (strcmp(protocol, qmux01_only[i]) == 0) return w == MOQ_QMUX_01;
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Does the comma-separated list contain exactly this token? */
static bool offered_contains(const char *list, size_t len, const char *token, size_t tlen)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (start < end && is_space(list[start]))
            start++;
        while (end > start && is_space(list[end - 1]))
            end--;
        if (end - start == tlen && memcmp(list + start, token, tlen) == 0) return true;
        i++; /* skip the comma */
    }
    return false;
}

int moq_qmux_parse_subprotocol(const char *value, size_t len, struct moq_qmux_selection *out)
{
    if (len <= PREFIX_LEN) return MOQ_ERR_NOT_FOUND;
    for (int w = MOQ_QMUX_00; w <= MOQ_QMUX_02; w++) {
        if (memcmp(value, wire_prefix((enum moq_qmux_wire)w), PREFIX_LEN) != 0) continue;
        size_t app = len - PREFIX_LEN;
        if (app >= sizeof(out->protocol) || len >= sizeof(out->subprotocol))
            return MOQ_ERR_NOT_FOUND;
        if (memchr(value + PREFIX_LEN, ',', app) || memchr(value + PREFIX_LEN, ' ', app))
            return MOQ_ERR_NOT_FOUND;
        out->wire = (enum moq_qmux_wire)w;
        memcpy(out->protocol, value + PREFIX_LEN, app);
        out->protocol[app] = '\0';
        memcpy(out->subprotocol, value, len);
        out->subprotocol[len] = '\0';
        return 0;
    }
    return MOQ_ERR_NOT_FOUND;
}

int moq_qmux_select_subprotocol(const char *offered, size_t offered_len,
                                const char *const *versions, size_t n_versions,
                                const enum moq_qmux_wire *wires, size_t n_wires,
                                struct moq_qmux_selection *out)
{
    if (!offered || offered_len == 0) return MOQ_ERR_NOT_FOUND;
    if (!wires) {
        wires = moq_qmux_default_wires;
        n_wires = 3;
    }
    for (size_t v = 0; v < n_versions; v++) {
        size_t vlen = strlen(versions[v]);
        if (vlen == 0 || vlen >= sizeof(out->protocol)) continue;
        for (size_t w = 0; w < n_wires; w++) {
            if (!moq_qmux_wire_allowed(versions[v], wires[w])) continue;
            char token[sizeof(out->subprotocol)];
            memcpy(token, wire_prefix(wires[w]), PREFIX_LEN);
            memcpy(token + PREFIX_LEN, versions[v], vlen);
            size_t tlen = PREFIX_LEN + vlen;
            token[tlen] = '\0';
            if (!offered_contains(offered, offered_len, token, tlen)) continue;
            return moq_qmux_parse_subprotocol(token, tlen, out);
        }
    }
    return MOQ_ERR_NOT_FOUND;
}

int moq_qmux_offer_subprotocols(char *out, size_t cap, const char *const *versions,
                                size_t n_versions, const enum moq_qmux_wire *wires, size_t n_wires)
{
    if (!wires) {
        wires = moq_qmux_default_wires;
        n_wires = 3;
    }
    size_t pos = 0;
    for (size_t v = 0; v < n_versions; v++) {
        for (size_t w = 0; w < n_wires; w++) {
            if (!moq_qmux_wire_allowed(versions[v], wires[w])) continue;
            const char *sep = pos ? ", " : "";
            size_t need = strlen(sep) + PREFIX_LEN + strlen(versions[v]);
            if (pos + need + 1 > cap) return MOQ_ERR_TOO_LARGE;
            pos += (size_t)snprintf(out + pos, cap - pos, "%s%s%s", sep, wire_prefix(wires[w]),
                                    versions[v]);
        }
    }
    if (cap == 0) return MOQ_ERR_TOO_LARGE;
    out[pos] = '\0';
    return (int)pos;
}
