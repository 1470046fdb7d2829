/* Request parser: http-parser does the syntax; this file keeps the request's bytes, enforces
 * the limits and decodes the target. */
#include "http/parser.h"

#include <http_parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/url.h"

/* A header is stored as offsets into the arena until the head is complete, because the
 * arena may move while it grows. */
struct hdr_off {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

enum last_cb { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

struct moq_http_parser {
    http_parser hp;
    struct moq_http_parser_limits lim;
    size_t max_body;
    bool discard_body; /* count body bytes against max_body but do not keep them */
    size_t body_seen;
    moq_http_on_headers on_headers;
    void *ctx;

    moq_buf arena; /* target, header names and values, decoded path: each NUL-terminated */
    struct hdr_off *hoff;
    struct moq_http_header *headers;
    size_t n_headers, cap_headers;
    size_t url_off, url_len;
    enum last_cb last;
    size_t head_bytes; /* raw bytes fed while the head was incomplete */

    moq_buf body;
    moq_http_request req;

    bool started;
    bool headers_done;
    bool done;
    int error_status;
};

static const http_parser_settings settings;

static void set_error(moq_http_parser *p, int status)
{
    if (!p->error_status) p->error_status = status;
}

/* Bytes of the head we store, with a little overhead per header for ": " and CRLF. */
static size_t stored_head_bytes(const moq_http_parser *p)
{
    return p->arena.len + 4 * p->n_headers;
}

static int check_head_size(moq_http_parser *p)
{
    if (stored_head_bytes(p) > p->lim.max_header_bytes) {
        set_error(p, 431);
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *hp)
{
    moq_http_parser *p = hp->data;
    p->started = true;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    moq_http_parser *p = hp->data;
    if (p->last != CB_URL) {
        p->url_off = p->arena.len;
        p->last = CB_URL;
    }
    if (moq_buf_append(&p->arena, at, len) < 0) {
        set_error(p, 500);
        return -1;
    }
    p->url_len += len;
    return check_head_size(p);
}

/* Close the item being stored (URL, name or value) with a NUL. */
static int terminate_item(moq_http_parser *p)
{
    if (moq_buf_put_u8(&p->arena, 0) < 0) {
        set_error(p, 500);
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    moq_http_parser *p = hp->data;
    if (p->headers_done) return 0; /* trailers of a chunked body: ignored */
    if (p->last != CB_FIELD) {
        if (p->last != CB_NONE && terminate_item(p) < 0) return -1;
        if (p->n_headers == p->lim.max_headers) {
            set_error(p, 431);
            return -1;
        }
        if (p->n_headers == p->cap_headers) {
            size_t cap = p->cap_headers ? p->cap_headers * 2 : 16;
            struct hdr_off *n = realloc(p->hoff, cap * sizeof(*n));
            if (!n) {
                set_error(p, 500);
                return -1;
            }
            p->hoff = n;
            p->cap_headers = cap;
        }
        struct hdr_off *h = &p->hoff[p->n_headers++];
        memset(h, 0, sizeof(*h));
        h->name_off = p->arena.len;
        p->last = CB_FIELD;
    }
    if (moq_buf_append(&p->arena, at, len) < 0) {
        set_error(p, 500);
        return -1;
    }
    p->hoff[p->n_headers - 1].name_len += len;
    return check_head_size(p);
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    moq_http_parser *p = hp->data;
    if (p->headers_done) return 0;
    struct hdr_off *h = &p->hoff[p->n_headers - 1];
    if (p->last != CB_VALUE) {
        if (terminate_item(p) < 0) return -1;
        h->value_off = p->arena.len;
        p->last = CB_VALUE;
    }
    if (moq_buf_append(&p->arena, at, len) < 0) {
        set_error(p, 500);
        return -1;
    }
    h->value_len += len;
    return check_head_size(p);
}

static unsigned map_method(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return MOQ_HTTP_GET;
    case HTTP_HEAD:
        return MOQ_HTTP_HEAD;
    case HTTP_POST:
        return MOQ_HTTP_POST;
    case HTTP_PUT:
        return MOQ_HTTP_PUT;
    case HTTP_DELETE:
        return MOQ_HTTP_DELETE;
    case HTTP_OPTIONS:
        return MOQ_HTTP_OPTIONS;
    case HTTP_PATCH:
        return MOQ_HTTP_PATCH;
    case HTTP_CONNECT:
        return MOQ_HTTP_CONNECT;
    case HTTP_TRACE:
        return MOQ_HTTP_TRACE;
    default:
        return MOQ_HTTP_OTHER;
    }
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0 when invalid. Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static bool is_dot_segment(const char *seg, size_t len)
{
    return (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.');
}

int moq_http_decode_path(const char *raw, size_t len, char *out)
{
    int n = moq_percent_decode(raw, len, out, len + 1, 0);
    if (n < 0) return MOQ_ERR_INVALID;
    size_t o = (size_t)n;
    for (size_t i = 0; i < o; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f) return MOQ_ERR_INVALID;
    }
    for (size_t i = 0; i < o;) {
        size_t k = utf8_seq((const unsigned char *)out + i, o - i);
        if (!k) return MOQ_ERR_INVALID;
        i += k;
    }
    size_t seg = 0;
    for (size_t i = 0; i <= o; i++) {
        if (i == o || out[i] == '/') {
            if (is_dot_segment(out + seg, i - seg)) return MOQ_ERR_INVALID;
            seg = i + 1;
        }
    }
    return n;
}

/* Split the target into path and query; append the decoded path and a copy of the query
 * to the arena. Returns -1 (error status set) on a bad target. */
static int split_target(moq_http_parser *p, size_t *path_off, size_t *path_len, size_t *query_off,
                        size_t *query_len, bool *has_query)
{
    const char *url = (const char *)p->arena.data + p->url_off;
    size_t raw_off = 0, raw_len = 0, q_off = 0;
    *has_query = false;
    *query_len = 0;
    bool asterisk = p->url_len == 1 && url[0] == '*';
    if (asterisk) {
        raw_off = p->url_off;
        raw_len = 1;
    } else if (p->hp.method == HTTP_CONNECT) {
        /* authority-form: no path, no query */
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, p->url_len, 1, &u) != 0) {
            set_error(p, 400);
            return -1;
        }
    } else {
        moq_target t;
        if (moq_target_split(url, p->url_len, &t) < 0) {
            set_error(p, 400);
            return -1;
        }
        if (t.path_len) {
            raw_off = p->url_off + (size_t)(t.path - url);
            raw_len = t.path_len;
        }
        if (t.has_query) {
            *has_query = true;
            q_off = p->url_off + (size_t)(t.query - url);
            *query_len = t.query_len;
        }
    }
    if (!asterisk && raw_len && ((const char *)p->arena.data)[raw_off] != '/') {
        set_error(p, 400);
        return -1;
    }
    if (moq_buf_reserve(&p->arena, raw_len + 1 + *query_len + 1) < 0) {
        set_error(p, 500);
        return -1;
    }
    char *base = (char *)p->arena.data;
    *path_off = p->arena.len;
    int n = moq_http_decode_path(base + raw_off, raw_len, base + p->arena.len);
    if (n < 0) {
        set_error(p, 400);
        return -1;
    }
    *path_len = (size_t)n;
    p->arena.len += (size_t)n + 1;
    *query_off = p->arena.len;
    memcpy(base + p->arena.len, base + q_off, *query_len);
    base[p->arena.len + *query_len] = 0;
    p->arena.len += *query_len + 1;
    return 0;
}

/* http-parser is lenient about names; RFC 9110 field names are tokens. */
static bool is_token(const char *s, size_t len)
{
    if (!len) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (!c || !strchr("!#$%&'*+-.^_`|~", c))) return false;
    }
    return true;
}

static void trim_value(char *base, size_t off, size_t *len)
{
    while (*len && (base[off + *len - 1] == ' ' || base[off + *len - 1] == '\t')) {
        base[off + *len - 1] = 0;
        (*len)--;
    }
}

static int finish_head(moq_http_parser *p)
{
    if (p->last == CB_NONE) {
        set_error(p, 400);
        return -1;
    }
    if (terminate_item(p) < 0) return -1;
    if (p->n_headers && !(p->headers = calloc(p->n_headers, sizeof(*p->headers)))) {
        set_error(p, 500);
        return -1;
    }
    size_t path_off, path_len, query_off, query_len;
    bool has_query;
    if (split_target(p, &path_off, &path_len, &query_off, &query_len, &has_query) < 0) return -1;
    /* The arena no longer grows: pointers are stable from here. */
    char *base = (char *)p->arena.data;
    for (size_t i = 0; i < p->n_headers; i++) {
        struct hdr_off *h = &p->hoff[i];
        if (!is_token(base + h->name_off, h->name_len)) {
            set_error(p, 400);
            return -1;
        }
        p->headers[i].name = base + h->name_off;
        p->headers[i].name_len = h->name_len;
        /* Offset 0 is the target, so it means no value callback came: an empty value. */
        if (h->value_off) {
            trim_value(base, h->value_off, &h->value_len);
            p->headers[i].value = base + h->value_off;
        } else {
            p->headers[i].value = "";
        }
        p->headers[i].value_len = h->value_len;
    }
    moq_http_request *r = &p->req;
    r->method = map_method(p->hp.method);
    r->method_name = http_method_str((enum http_method)p->hp.method);
    r->target = base + p->url_off;
    r->target_len = p->url_len;
    r->path = base + path_off;
    r->path_len = path_len;
    r->has_query = has_query;
    r->query = base + query_off;
    r->query_len = query_len;
    r->headers = p->headers;
    r->n_headers = p->n_headers;
    r->http_major = p->hp.http_major;
    r->http_minor = p->hp.http_minor;
    r->keep_alive = http_should_keep_alive(&p->hp) != 0;
    return 0;
}

/* RFC 9112 section 3.2: an HTTP/1.1 request carries exactly one Host header; no request
 * may carry two. */
static bool host_header_ok(const moq_http_parser *p)
{
    size_t hosts = 0;
    for (size_t i = 0; i < p->n_headers; i++)
        if (p->headers[i].name_len == 4 && !strncasecmp(p->headers[i].name, "host", 4)) hosts++;
    return hosts == 1 || (hosts == 0 && p->hp.http_minor == 0);
}

static int on_headers_complete(http_parser *hp)
{
    moq_http_parser *p = hp->data;
    if (finish_head(p) < 0) return -1;
    p->headers_done = true;
    if (hp->http_major != 1) {
        set_error(p, 505);
        return -1;
    }
    if (!host_header_ok(p)) {
        set_error(p, 400);
        return -1;
    }
    if (p->on_headers) {
        int status = p->on_headers(p->ctx, p, &p->req);
        if (status) {
            set_error(p, status);
            return -1;
        }
    }
    if (moq_http_parser_has_body(p) && !(hp->flags & F_CHUNKED) &&
        hp->content_length > p->max_body) {
        set_error(p, 413);
        return -1;
    }
    return 0;
}

/* A chunk size is known before its bytes arrive: refuse an oversized body early. */
static int on_chunk_header(http_parser *hp)
{
    moq_http_parser *p = hp->data;
    if (hp->content_length > p->max_body - p->body_seen) {
        set_error(p, 413);
        return -1;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    moq_http_parser *p = hp->data;
    if (len > p->max_body - p->body_seen) {
        set_error(p, 413);
        return -1;
    }
    p->body_seen += len;
    if (p->discard_body) return 0;
    if (moq_buf_append(&p->body, at, len) < 0) {
        set_error(p, 500);
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    moq_http_parser *p = hp->data;
    p->done = true;
    p->req.body = p->body.data;
    p->req.body_len = p->body.len;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

moq_http_parser *moq_http_parser_new(const struct moq_http_parser_limits *lim,
                                     moq_http_on_headers on_headers, void *ctx)
{
    moq_http_parser *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->lim = *lim;
    if (!p->lim.max_headers) p->lim.max_headers = 100;
    p->on_headers = on_headers;
    p->ctx = ctx;
    moq_buf_init(&p->arena);
    moq_buf_init(&p->body);
    moq_http_parser_reset(p);
    return p;
}

void moq_http_parser_reset(moq_http_parser *p)
{
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    p->max_body = p->lim.max_body_bytes;
    p->discard_body = false;
    p->body_seen = 0;
    moq_buf_reset(&p->arena);
    moq_buf_reset(&p->body);
    free(p->headers);
    p->headers = NULL;
    p->n_headers = 0;
    p->url_off = p->url_len = 0;
    p->last = CB_NONE;
    p->head_bytes = 0;
    memset(&p->req, 0, sizeof(p->req));
    p->req.peer = "";
    p->req.route_rest = "";
    p->started = p->headers_done = p->done = false;
    p->error_status = 0;
}

void moq_http_parser_free(moq_http_parser *p)
{
    if (!p) return;
    moq_buf_free(&p->arena);
    moq_buf_free(&p->body);
    free(p->headers);
    free(p->hoff);
    free(p);
}

static int map_errno(enum http_errno e)
{
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        return 431;
    case HPE_INVALID_VERSION:
        return 505;
    default:
        return 400;
    }
}

int moq_http_parser_feed(moq_http_parser *p, const uint8_t *data, size_t len, size_t *consumed)
{
    *consumed = 0;
    if (p->error_status) return MOQ_HTTP_PARSE_ERROR;
    if (p->done) return MOQ_HTTP_PARSE_REQUEST;
    if (!len) return MOQ_HTTP_PARSE_MORE;
    bool head_was_done = p->headers_done;
    size_t n = http_parser_execute(&p->hp, &settings, (const char *)data, len);
    *consumed = n;
    if (p->error_status) return MOQ_HTTP_PARSE_ERROR;
    enum http_errno err = HTTP_PARSER_ERRNO(&p->hp);
    if (p->done) return MOQ_HTTP_PARSE_REQUEST;
    if (err != HPE_OK) {
        set_error(p, map_errno(err));
        return MOQ_HTTP_PARSE_ERROR;
    }
    if (!head_was_done && !p->headers_done) {
        /* Whitespace and line breaks we do not store count too. */
        p->head_bytes += n;
        if (p->head_bytes > p->lim.max_header_bytes) {
            set_error(p, 431);
            return MOQ_HTTP_PARSE_ERROR;
        }
    }
    return MOQ_HTTP_PARSE_MORE;
}

moq_http_request *moq_http_parser_request(moq_http_parser *p)
{
    return &p->req;
}

int moq_http_parser_error_status(const moq_http_parser *p)
{
    return p->error_status;
}

bool moq_http_parser_started(const moq_http_parser *p)
{
    return p->started;
}

bool moq_http_parser_headers_done(const moq_http_parser *p)
{
    return p->headers_done;
}

bool moq_http_parser_has_body(const moq_http_parser *p)
{
    if (p->hp.flags & F_CHUNKED) return true;
    return p->hp.content_length != 0 && p->hp.content_length != ULLONG_MAX;
}

uint64_t moq_http_parser_content_length(const moq_http_parser *p)
{
    if (p->hp.flags & F_CHUNKED) return UINT64_MAX;
    return p->hp.content_length == ULLONG_MAX ? 0 : p->hp.content_length;
}

void moq_http_parser_set_max_body(moq_http_parser *p, size_t max)
{
    p->max_body = max;
}

void moq_http_parser_discard_body(moq_http_parser *p, size_t max)
{
    p->max_body = max;
    p->discard_body = true;
}

bool moq_http_parser_upgrade(const moq_http_parser *p)
{
    return p->hp.upgrade != 0;
}
