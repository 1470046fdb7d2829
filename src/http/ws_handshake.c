/* Sans-I/O WebSocket handshake helpers: key validation, accept key, subprotocol offers. */
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <string.h>
#include <strings.h>

#include "http/ws.h"
#include "util/err.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* A Sec-WebSocket-Key must be the base64 form of exactly 16 bytes: 24 characters. */
static bool key_valid(const char *key, size_t len)
{
    if (len != 24 || key[22] != '=' || key[23] != '=') return false;
    for (size_t i = 0; i < 22; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    struct base64_decode_ctx ctx;
    uint8_t raw[BASE64_DECODE_LENGTH(24)];
    size_t out_len = sizeof(raw);
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &out_len, raw, len, key) || !base64_decode_final(&ctx))
        return false;
    return out_len == 16;
}

int moq_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    if (!key_valid(key, key_len)) return MOQ_ERR_INVALID;
    struct sha1_ctx sha;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&sha);
    sha1_update(&sha, key_len, (const uint8_t *)key);
    sha1_update(&sha, sizeof(ws_guid) - 1, (const uint8_t *)ws_guid);
    sha1_digest(&sha, sizeof(digest), digest);
    base64_encode_raw(out, sizeof(digest), digest);
    out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = 0;
    return 0;
}

bool moq_ws_is_upgrade(const moq_http_request *req)
{
    return moq_http_header_has_token(req, "upgrade", "websocket");
}

int moq_ws_check_handshake(const moq_http_request *req)
{
    if (req->method != MOQ_HTTP_GET) return 400;
    if (req->http_major != 1 || req->http_minor < 1) return 400;
    if (!moq_ws_is_upgrade(req) || !moq_http_header_has_token(req, "connection", "upgrade"))
        return 400;
    if (req->body_len) return 400;
    const char *version = moq_http_header(req, "sec-websocket-version");
    if (!version) return 400;
    if (strcmp(version, "13") != 0) return 426;
    const char *key = moq_http_header(req, "sec-websocket-key");
    if (!key || !key_valid(key, strlen(key))) return 400;
    return 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int moq_ws_parse_offers(const moq_http_request *req, const char **out, size_t max, char *storage,
                        size_t storage_len)
{
    size_t n = 0, used = 0;
    for (size_t h = 0; h < req->n_headers; h++) {
        const struct moq_http_header *hd = &req->headers[h];
        if (hd->name_len != 22 || strncasecmp(hd->name, "sec-websocket-protocol", 22)) continue;
        const char *v = hd->value;
        size_t len = hd->value_len, i = 0;
        while (i < len) {
            while (i < len && (is_ows(v[i]) || v[i] == ','))
                i++;
            size_t start = i;
            while (i < len && v[i] != ',')
                i++;
            size_t end = i;
            while (end > start && is_ows(v[end - 1]))
                end--;
            if (end == start) continue;
            size_t tl = end - start;
            if (n == max || used + tl + 1 > storage_len) return MOQ_ERR_TOO_LARGE;
            memcpy(storage + used, v + start, tl);
            storage[used + tl] = 0;
            out[n++] = storage + used;
            used += tl + 1;
        }
    }
    return (int)n;
}

int moq_ws_select_protocol(const char *const *offers, size_t n_offers, const char *const *supported,
                           size_t n_supported)
{
    for (size_t s = 0; s < n_supported; s++)
        for (size_t o = 0; o < n_offers; o++)
            if (!strcmp(offers[o], supported[s])) return (int)o;
    return -1;
}
