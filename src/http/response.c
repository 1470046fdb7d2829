/* Responses: what handlers fill in, and the serialisation of the status line and headers.
 * The server-side completion functions (send, stream_*) live in server.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/internal.h"
#include "util/err.h"

void moq_http_response_init(moq_http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->status = 200;
    moq_buf_init(&resp->headers);
}

void moq_http_response_clear(moq_http_response *resp)
{
    for (size_t i = 0; i < resp->n_body; i++)
        moq_chunk_unref(resp->body[i].chunk);
    resp->n_body = 0;
    resp->body_len = 0;
    moq_buf_reset(&resp->headers);
    resp->status = 200;
    resp->cors = false;
    resp->abort_cb = NULL;
    resp->abort_arg = NULL;
    resp->chunked = false;
}

static void response_release(moq_http_response *resp)
{
    moq_http_response_clear(resp);
    free(resp->body);
    resp->body = NULL;
    resp->cap_body = 0;
    moq_buf_free(&resp->headers);
}

moq_http_response *moq_http_response_new(void)
{
    moq_http_response *r = malloc(sizeof(*r));
    if (r) moq_http_response_init(r);
    return r;
}

void moq_http_response_free(moq_http_response *resp)
{
    if (!resp) return;
    response_release(resp);
    free(resp);
}

void moq_http_response_set_status(moq_http_response *resp, int status)
{
    if (status >= 100 && status <= 999) resp->status = status;
}

int moq_http_response_status(const moq_http_response *resp)
{
    return resp->status;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool reserved_header(const char *name)
{
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                           "date"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (!strcasecmp(name, reserved[i])) return true;
    return false;
}

int moq_http_response_header(moq_http_response *resp, const char *name, const char *value)
{
    if (!name || !*name || !value || reserved_header(name)) return MOQ_ERR_INVALID;
    for (const char *p = name; *p; p++)
        if (!is_tchar((unsigned char)*p)) return MOQ_ERR_INVALID;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n') return MOQ_ERR_INVALID;
    size_t nl = strlen(name), vl = strlen(value);
    if (moq_buf_reserve(&resp->headers, nl + vl + 4) < 0) return MOQ_ERR_NOMEM;
    moq_buf_append(&resp->headers, name, nl);
    moq_buf_append(&resp->headers, ": ", 2);
    moq_buf_append(&resp->headers, value, vl);
    moq_buf_append(&resp->headers, "\r\n", 2);
    return 0;
}

const char *moq_http_response_get_header(const moq_http_response *resp, const char *name, char *buf,
                                         size_t cap)
{
    if (resp->headers.len == 0) return NULL; /* (no buffer yet) */
    const char *p = (const char *)resp->headers.data, *end = p + resp->headers.len;
    size_t nl = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > nl + 1 && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 2;
            size_t vl = (size_t)(eol - v);
            if (vl >= cap) return NULL;
            memcpy(buf, v, vl);
            buf[vl] = 0;
            return buf;
        }
        p = eol + 2;
    }
    return NULL;
}

static int push_body(moq_http_response *resp, moq_chunk *c, size_t off, size_t len)
{
    if (resp->n_body == resp->cap_body) {
        size_t cap = resp->cap_body ? resp->cap_body * 2 : 4;
        moq_slice *v = realloc(resp->body, cap * sizeof(*v));
        if (!v) {
            moq_chunk_unref(c);
            return MOQ_ERR_NOMEM;
        }
        resp->body = v;
        resp->cap_body = cap;
    }
    resp->body[resp->n_body++] = (moq_slice){c, off, len};
    resp->body_len += len;
    return 0;
}

int moq_http_response_body(moq_http_response *resp, const void *data, size_t len)
{
    if (!len) return 0;
    moq_chunk *c = moq_chunk_copy(data, len);
    if (!c) return MOQ_ERR_NOMEM;
    return push_body(resp, c, 0, len);
}

int moq_http_response_body_slices(moq_http_response *resp, const moq_slice *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!v[i].len) continue;
        if (!v[i].chunk || v[i].off + v[i].len > v[i].chunk->len) return MOQ_ERR_INVALID;
        int rc = push_body(resp, moq_chunk_ref(v[i].chunk), v[i].off, v[i].len);
        if (rc < 0) return rc;
    }
    return 0;
}

size_t moq_http_response_body_len(const moq_http_response *resp)
{
    return resp->body_len;
}

size_t moq_http_response_body_copy(const moq_http_response *resp, void *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < resp->n_body && n < cap; i++) {
        size_t k = resp->body[i].len < cap - n ? resp->body[i].len : cap - n;
        memcpy((uint8_t *)out + n, resp->body[i].chunk->data + resp->body[i].off, k);
        n += k;
    }
    return n;
}

const char *moq_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void moq_http_date(int64_t unix_s, char out[30])
{
    /* Fixed English names: strftime's %a/%b would follow the locale. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) memset(&tm, 0, sizeof(tm));
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%.3s, %02u %.3s %04u %02u:%02u:%02u GMT",
             days[(unsigned)tm.tm_wday % 7u], (unsigned)tm.tm_mday % 100u,
             months[(unsigned)tm.tm_mon % 12u], (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
    memcpy(out, tmp, 29);
    out[29] = 0;
}

bool moq_http_status_bodyless(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

#define CORS_HEADERS                                                                               \
    "Access-Control-Allow-Origin: *\r\n"                                                           \
    "Vary: origin, access-control-request-method, access-control-request-headers\r\n"

int moq_http_response_head(const moq_http_response *resp, int64_t now_s, bool keep_alive,
                           bool http10, enum moq_http_framing framing, moq_buf *out)
{
    char line[128], date[30];
    moq_http_date(now_s, date);
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: %s\r\n", resp->status,
                     moq_http_reason(resp->status), date);
    if (moq_buf_append(out, line, (size_t)n) < 0) return MOQ_ERR_NOMEM;
    if (!moq_http_status_bodyless(resp->status)) {
        if (framing == MOQ_HTTP_FRAME_LENGTH) {
            n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", resp->body_len);
            if (moq_buf_append(out, line, (size_t)n) < 0) return MOQ_ERR_NOMEM;
        } else if (framing == MOQ_HTTP_FRAME_CHUNKED) {
            static const char te[] = "Transfer-Encoding: chunked\r\n";
            if (moq_buf_append(out, te, sizeof(te) - 1) < 0) return MOQ_ERR_NOMEM;
        }
    }
    if (resp->status != 101) {
        const char *conn = !keep_alive ? "Connection: close\r\n"
                           : http10    ? "Connection: keep-alive\r\n"
                                       : "";
        if (moq_buf_append(out, conn, strlen(conn)) < 0) return MOQ_ERR_NOMEM;
    }
    if (resp->cors && moq_buf_append(out, CORS_HEADERS, sizeof(CORS_HEADERS) - 1) < 0)
        return MOQ_ERR_NOMEM;
    if (moq_buf_append(out, resp->headers.data, resp->headers.len) < 0) return MOQ_ERR_NOMEM;
    if (moq_buf_append(out, "\r\n", 2) < 0) return MOQ_ERR_NOMEM;
    return 0;
}
