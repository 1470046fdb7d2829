/* Unit tests of the sans-I/O parts of src/http: request parser, path and query decoding,
 * response serialisation, route table, WebSocket handshake helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cmocka.h>

#include "http/http.h"
#include "http/internal.h"
#include "http/parser.h"
#include "http/ws.h"
#include "util/err.h"
#include "util/url.h"

static const struct moq_http_parser_limits limits = {4096, 20, 1024};

static moq_http_parser *parse_one(const char *raw, int expect, size_t *consumed)
{
    moq_http_parser *p = moq_http_parser_new(&limits, NULL, NULL);
    assert_non_null(p);
    size_t used = 0;
    int rc = moq_http_parser_feed(p, (const uint8_t *)raw, strlen(raw), &used);
    assert_int_equal(rc, expect);
    if (consumed) *consumed = used;
    return p;
}

static int parse_status(const char *raw)
{
    moq_http_parser *p = parse_one(raw, MOQ_HTTP_PARSE_ERROR, NULL);
    int status = moq_http_parser_error_status(p);
    moq_http_parser_free(p);
    return status;
}

/* --- parser ------------------------------------------------------------------------------- */

static void test_parse_simple_get(void **state)
{
    const char *raw = "GET /fetch/a%20b/c?group=5&jwt=x HTTP/1.1\r\nHost: relay\r\n"
                      "X-Thing:   padded value  \r\nConnection: keep-alive, Upgrade\r\n\r\n";
    size_t used;
    moq_http_parser *p = parse_one(raw, MOQ_HTTP_PARSE_REQUEST, &used);
    assert_int_equal(used, strlen(raw));
    moq_http_request *r = moq_http_parser_request(p);
    assert_int_equal(r->method, MOQ_HTTP_GET);
    assert_string_equal(r->method_name, "GET");
    assert_string_equal(r->target, "/fetch/a%20b/c?group=5&jwt=x");
    assert_string_equal(r->path, "/fetch/a b/c");
    assert_int_equal(r->path_len, 12);
    assert_true(r->has_query);
    assert_string_equal(r->query, "group=5&jwt=x");
    assert_int_equal(r->n_headers, 3);
    assert_string_equal(moq_http_header(r, "host"), "relay");
    assert_string_equal(moq_http_header(r, "HOST"), "relay");
    assert_string_equal(moq_http_header(r, "x-thing"), "padded value");
    assert_null(moq_http_header(r, "missing"));
    assert_true(moq_http_header_has_token(r, "connection", "upgrade"));
    assert_true(moq_http_header_has_token(r, "Connection", "KEEP-ALIVE"));
    assert_false(moq_http_header_has_token(r, "connection", "close"));
    assert_true(r->keep_alive);
    assert_int_equal(r->http_major, 1);
    assert_int_equal(r->http_minor, 1);
    assert_int_equal(r->body_len, 0);
    moq_http_parser_free(p);
}

static void test_parse_byte_by_byte(void **state)
{
    const char *raw = "POST /echo?x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    moq_http_parser *p = moq_http_parser_new(&limits, NULL, NULL);
    size_t n = strlen(raw);
    for (size_t i = 0; i < n; i++) {
        size_t used;
        int rc = moq_http_parser_feed(p, (const uint8_t *)raw + i, 1, &used);
        assert_int_equal(used, 1);
        assert_int_equal(rc, i + 1 == n ? MOQ_HTTP_PARSE_REQUEST : MOQ_HTTP_PARSE_MORE);
    }
    moq_http_request *r = moq_http_parser_request(p);
    assert_string_equal(r->path, "/echo");
    assert_string_equal(r->query, "x");
    assert_string_equal(moq_http_header(r, "content-length"), "5");
    assert_int_equal(r->body_len, 5);
    assert_memory_equal(r->body, "hello", 5);
    moq_http_parser_free(p);
}

static void test_parse_pipelined(void **state)
{
    const char *raw = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c";
    moq_http_parser *p = moq_http_parser_new(&limits, NULL, NULL);
    size_t off = 0, used, n = strlen(raw);
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw, n, &used),
                     MOQ_HTTP_PARSE_REQUEST);
    assert_string_equal(moq_http_parser_request(p)->path, "/a");
    off += used;
    /* Stopped exactly at the end of the first request. */
    assert_int_equal(off, strlen("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
    moq_http_parser_reset(p);
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw + off, n - off, &used),
                     MOQ_HTTP_PARSE_REQUEST);
    assert_string_equal(moq_http_parser_request(p)->path, "/b");
    off += used;
    moq_http_parser_reset(p);
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw + off, n - off, &used),
                     MOQ_HTTP_PARSE_MORE);
    assert_true(moq_http_parser_started(p));
    assert_false(moq_http_parser_headers_done(p));
    moq_http_parser_free(p);
}

static void test_parse_chunked_body_and_trailers(void **state)
{
    const char *raw = "POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n";
    moq_http_parser *p = parse_one(raw, MOQ_HTTP_PARSE_REQUEST, NULL);
    moq_http_request *r = moq_http_parser_request(p);
    assert_int_equal(r->body_len, 7);
    assert_memory_equal(r->body, "abcdefg", 7);
    assert_null(moq_http_header(r, "x-trailer")); /* trailers are not headers */
    moq_http_parser_free(p);
}

static void test_parse_limits(void **state)
{
    char big[6000];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX: %0*d\r\n\r\n", 5000, 0);
    assert_int_equal(parse_status(big), 431);

    /* The same head trickled in pieces is caught too. */
    moq_http_parser *p = moq_http_parser_new(&limits, NULL, NULL);
    size_t used, n = strlen(big);
    int rc = MOQ_HTTP_PARSE_MORE;
    for (size_t off = 0; off < n && rc == MOQ_HTTP_PARSE_MORE; off += 100)
        rc = moq_http_parser_feed(p, (const uint8_t *)big + off, n - off < 100 ? n - off : 100,
                                  &used);
    assert_int_equal(rc, MOQ_HTTP_PARSE_ERROR);
    assert_int_equal(moq_http_parser_error_status(p), 431);
    moq_http_parser_free(p);

    char many[2000] = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 25; i++) {
        char line[32];
        snprintf(line, sizeof(line), "H%d: v\r\n", i);
        strcat(many, line);
    }
    strcat(many, "\r\n");
    assert_int_equal(parse_status(many), 431);

    assert_int_equal(parse_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n"),
                     413);
    assert_int_equal(parse_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "800\r\n"),
                     413);
    char chunks[4000] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        strcat(chunks, "200\r\n");
        size_t l = strlen(chunks);
        memset(chunks + l, 'x', 512);
        chunks[l + 512] = 0;
        strcat(chunks, "\r\n");
    }
    assert_int_equal(parse_status(chunks), 413);
}

static void test_parse_errors(void **state)
{
    assert_int_equal(parse_status("GARBAGE\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET / HTTP/2.0\r\n\r\n"), 505);
    assert_int_equal(parse_status("GET /a/../b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET /a/%2e%2e HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET /a%0a HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET /a%c0%80 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(
        parse_status(
            "GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        400);
    assert_int_equal(parse_status("GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: "
                                  "1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     400);
    assert_int_equal(parse_status("GET /a HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n"), 400);
    /* Every percent-escape of the target must decode, in the query too. */
    assert_int_equal(parse_status("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET /a?jwt=%zz HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET /a?x=1&y=%4 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET /a?%g0=1 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET /a?x=%00 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

static void test_parse_host_header(void **state)
{
    /* HTTP/1.1 needs exactly one Host; HTTP/1.0 may go without, but not with two. */
    assert_int_equal(parse_status("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nX: y\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
    assert_int_equal(parse_status("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
    moq_http_parser *p =
        parse_one("GET / HTTP/1.1\r\nHOST: relay:443\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    assert_string_equal(moq_http_header(moq_http_parser_request(p), "host"), "relay:443");
    moq_http_parser_free(p);
    p = parse_one("GET / HTTP/1.0\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    moq_http_parser_free(p);
}

static void test_parse_targets(void **state)
{
    moq_http_parser *p = parse_one("GET http://relay:443/x/y?z=1 HTTP/1.1\r\nHost: h\r\n\r\n",
                                   MOQ_HTTP_PARSE_REQUEST, NULL);
    moq_http_request *r = moq_http_parser_request(p);
    assert_string_equal(r->path, "/x/y");
    assert_string_equal(r->query, "z=1");
    moq_http_parser_free(p);

    p = parse_one("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    assert_string_equal(moq_http_parser_request(p)->path, "*");
    assert_int_equal(moq_http_parser_request(p)->method, MOQ_HTTP_OPTIONS);
    moq_http_parser_free(p);

    p = parse_one("GET /p HTTP/1.1\r\nHost: h\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    assert_false(moq_http_parser_request(p)->has_query);
    assert_string_equal(moq_http_parser_request(p)->query, "");
    moq_http_parser_free(p);
}

static void test_parse_keep_alive_semantics(void **state)
{
    moq_http_parser *p = parse_one("GET / HTTP/1.0\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    assert_false(moq_http_parser_request(p)->keep_alive);
    moq_http_parser_free(p);
    p = parse_one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    assert_true(moq_http_parser_request(p)->keep_alive);
    moq_http_parser_free(p);
    p = parse_one("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", MOQ_HTTP_PARSE_REQUEST,
                  NULL);
    assert_false(moq_http_parser_request(p)->keep_alive);
    moq_http_parser_free(p);
}

static int hook_calls;

static int on_headers_hook(void *ctx, moq_http_parser *p, moq_http_request *req)
{
    hook_calls++;
    assert_int_equal(req->body_len, 0);
    if (!strcmp(req->path, "/refuse")) return 417;
    moq_http_parser_set_max_body(p, 4);
    return 0;
}

static void test_parse_headers_hook(void **state)
{
    moq_http_parser *p = moq_http_parser_new(&limits, on_headers_hook, NULL);
    const char *raw = "POST /refuse HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx";
    size_t used;
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw, strlen(raw), &used),
                     MOQ_HTTP_PARSE_ERROR);
    assert_int_equal(moq_http_parser_error_status(p), 417);
    assert_int_equal(hook_calls, 1);
    moq_http_parser_reset(p);
    raw = "POST /ok HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw, strlen(raw), &used),
                     MOQ_HTTP_PARSE_ERROR);
    assert_int_equal(moq_http_parser_error_status(p), 413);
    moq_http_parser_reset(p);
    raw = "POST /ok HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nfour";
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw, strlen(raw), &used),
                     MOQ_HTTP_PARSE_REQUEST);
    moq_http_parser_reset(p);
    /* A discarded body is read but not kept. */
    raw = "POST /ok HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nfour";
    moq_http_parser_free(p);
    p = moq_http_parser_new(&limits, NULL, NULL);
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw, 36, &used), MOQ_HTTP_PARSE_MORE);
    moq_http_parser_discard_body(p, 10);
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw + 36, strlen(raw) - 36, &used),
                     MOQ_HTTP_PARSE_REQUEST);
    assert_int_equal(moq_http_parser_request(p)->body_len, 0);
    moq_http_parser_free(p);
}

static void test_decode_path(void **state)
{
    char out[64];
    assert_int_equal(moq_http_decode_path("/a%2Fb/%41", 10, out), 6);
    assert_string_equal(out, "/a/b/A");
    assert_int_equal(moq_http_decode_path("//x/", 4, out), 4); /* kept as sent */
    assert_string_equal(out, "//x/");
    assert_int_equal(moq_http_decode_path("/a+b", 4, out), 4); /* '+' is not a space */
    assert_string_equal(out, "/a+b");
    assert_int_equal(moq_http_decode_path("/%C3%A9", 7, out), 3);
    assert_int_equal(moq_http_decode_path("/..x/.y", 7, out), 7);
    assert_int_equal(moq_http_decode_path("/%", 2, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/%4", 3, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/%g1", 4, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/%00", 4, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/%7f", 4, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/%ff", 4, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/%ed%a0%80", 10, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/.", 2, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/a/..", 5, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/a/%2E/b", 8, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_decode_path("/a%2f..%2fb", 11, out), MOQ_ERR_INVALID);
}

static void test_query_param(void **state)
{
    /* The web endpoints read parameters with util/url's reader, the one the authorizer
     * reads ?jwt= with: a parsed request's query always decodes. */
    moq_http_parser *p = parse_one("GET /f?a=1&jwt=ab%2Bc+d&empty=&flag&a=2 HTTP/1.1\r\n"
                                   "Host: h\r\n\r\n",
                                   MOQ_HTTP_PARSE_REQUEST, NULL);
    const moq_http_request *r = moq_http_parser_request(p);
    char out[32];
    assert_int_equal(moq_query_param(r->query, r->query_len, "a", out, sizeof(out)), 1);
    assert_string_equal(out, "2");
    assert_int_equal(moq_query_param(r->query, r->query_len, "jwt", out, sizeof(out)), 6);
    assert_string_equal(out, "ab+c d");
    assert_int_equal(moq_query_param(r->query, r->query_len, "empty", out, sizeof(out)), 0);
    assert_int_equal(moq_query_param(r->query, r->query_len, "flag", out, sizeof(out)), 0);
    assert_int_equal(moq_query_param(r->query, r->query_len, "nope", out, sizeof(out)),
                     MOQ_ERR_NOT_FOUND);
    moq_http_parser_free(p);
}

/* --- responses ----------------------------------------------------------------------------- */

static void test_date(void **state)
{
    char d[30];
    moq_http_date(784111777, d);
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    moq_http_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static char *head_string(const moq_http_response *r, bool keep, bool http10,
                         enum moq_http_framing f)
{
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_http_response_head(r, 784111777, keep, http10, f, &b), 0);
    moq_buf_put_u8(&b, 0);
    return (char *)b.data;
}

static void test_response_head(void **state)
{
    moq_http_response *r = moq_http_response_new();
    assert_int_equal(moq_http_response_status(r), 200);
    assert_int_equal(moq_http_response_header(r, "Content-Type", "text/plain"), 0);
    assert_int_equal(moq_http_response_body(r, "hello", 5), 0);
    char *h = head_string(r, true, false, MOQ_HTTP_FRAME_LENGTH);
    assert_string_equal(h, "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                           "Content-Length: 5\r\nContent-Type: text/plain\r\n\r\n");
    free(h);
    h = head_string(r, false, false, MOQ_HTTP_FRAME_LENGTH);
    assert_non_null(strstr(h, "\r\nConnection: close\r\n"));
    free(h);
    h = head_string(r, true, true, MOQ_HTTP_FRAME_LENGTH);
    assert_non_null(strstr(h, "\r\nConnection: keep-alive\r\n"));
    free(h);
    h = head_string(r, true, false, MOQ_HTTP_FRAME_CHUNKED);
    assert_non_null(strstr(h, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_null(strstr(h, "Content-Length"));
    free(h);
    r->cors = true;
    h = head_string(r, true, false, MOQ_HTTP_FRAME_LENGTH);
    assert_non_null(strstr(h, "\r\nAccess-Control-Allow-Origin: *\r\n"));
    assert_non_null(strstr(h, "\r\nVary: origin, access-control-request-method, "
                              "access-control-request-headers\r\n"));
    free(h);
    moq_http_response_set_status(r, 204);
    h = head_string(r, true, false, MOQ_HTTP_FRAME_LENGTH);
    assert_true(!strncmp(h, "HTTP/1.1 204 No Content\r\n", 25));
    assert_null(strstr(h, "Content-Length"));
    free(h);
    moq_http_response_free(r);
}

static void test_response_headers_and_body(void **state)
{
    moq_http_response *r = moq_http_response_new();
    assert_int_equal(moq_http_response_header(r, "Content-Length", "3"), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_response_header(r, "connection", "close"), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_response_header(r, "Date", "x"), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_response_header(r, "Transfer-Encoding", "x"), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_response_header(r, "X-A", "a\r\nInjected: 1"), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_response_header(r, "Bad Name", "a"), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_response_header(r, "", "a"), MOQ_ERR_INVALID);
    assert_int_equal(moq_http_response_header(r, "X-A", "1"), 0);
    char buf[16];
    assert_string_equal(moq_http_response_get_header(r, "x-a", buf, sizeof(buf)), "1");
    assert_null(moq_http_response_get_header(r, "x-b", buf, sizeof(buf)));

    size_t before = moq_chunk_live_count();
    moq_chunk *c = moq_chunk_copy("abcdef", 6);
    moq_slice v[2] = {{c, 0, 2}, {c, 4, 2}};
    assert_int_equal(moq_http_response_body(r, "12", 2), 0);
    assert_int_equal(moq_http_response_body_slices(r, v, 2), 0);
    moq_slice bad = {c, 5, 2};
    assert_int_equal(moq_http_response_body_slices(r, &bad, 1), MOQ_ERR_INVALID);
    moq_chunk_unref(c);
    assert_int_equal(moq_http_response_body_len(r), 6);
    char body[16];
    assert_int_equal(moq_http_response_body_copy(r, body, sizeof(body)), 6);
    assert_memory_equal(body, "12abef", 6);
    /* The response holds the slice chunk (plus the copied one) until it is freed. */
    assert_int_equal(moq_chunk_live_count(), before + 2);
    moq_http_response_free(r);
    assert_int_equal(moq_chunk_live_count(), before);
}

static void test_outq(void **state)
{
    struct moq_outq q;
    moq_outq_init(&q);
    size_t before = moq_chunk_live_count();
    moq_outq_append(&q, "ab", 2);
    moq_outq_append(&q, "cd", 2); /* coalesced into the staging chunk */
    moq_chunk *c = moq_chunk_copy("XYZ", 3);
    moq_slice s = {c, 1, 2};
    moq_outq_push(&q, &s);
    moq_chunk_unref(c);
    moq_outq_append(&q, "e", 1);
    assert_int_equal(q.bytes, 7);
    struct iovec iov[8];
    size_t n = moq_outq_peek(&q, iov, 8, SIZE_MAX);
    assert_int_equal(n, 3);
    assert_int_equal(iov[0].iov_len, 4);
    assert_memory_equal(iov[0].iov_base, "abcd", 4);
    assert_memory_equal(iov[1].iov_base, "YZ", 2);
    assert_memory_equal(iov[2].iov_base, "e", 1);
    assert_int_equal(moq_outq_peek(&q, iov, 8, 5), 2);
    assert_int_equal(iov[1].iov_len, 1);
    moq_outq_consume(&q, 5);
    assert_int_equal(q.bytes, 2);
    n = moq_outq_peek(&q, iov, 8, SIZE_MAX);
    assert_memory_equal(iov[0].iov_base, "Z", 1);
    moq_outq_free(&q);
    assert_int_equal(moq_chunk_live_count(), before);
}

/* --- router ------------------------------------------------------------------------------ */

static int handler_a(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    char body[128];
    snprintf(body, sizeof(body), "%s rest=%s", (const char *)ctx, req->route_rest);
    return moq_http_response_body(resp, body, strlen(body));
}

static int handler_fail(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    moq_http_response_body(resp, "partial", 7);
    return MOQ_ERR_INVALID;
}

static int handler_async(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    return MOQ_HTTP_ASYNC;
}

/* Dispatch a request line; returns the status and copies the body into out. */
static int route(moq_http_router *r, const char *raw, char *out, size_t cap, char *allow)
{
    moq_http_parser *p = parse_one(raw, MOQ_HTTP_PARSE_REQUEST, NULL);
    moq_http_response *resp = moq_http_response_new();
    int rc = moq_http_router_dispatch(r, moq_http_parser_request(p), resp);
    assert_true(rc == 0 || rc == MOQ_HTTP_ASYNC);
    size_t n = moq_http_response_body_copy(resp, out, cap - 1);
    out[n] = 0;
    if (allow && !moq_http_response_get_header(resp, "Allow", allow, 64)) allow[0] = 0;
    int status = moq_http_response_status(resp);
    moq_http_response_free(resp);
    moq_http_parser_free(p);
    return status;
}

static void test_router(void **state)
{
    moq_http_router *r = moq_http_router_new();
    assert_int_equal(
        moq_http_route(r, MOQ_HTTP_GET, "/announced", MOQ_HTTP_EXACT, 0, handler_a, "exact"), 0);
    assert_int_equal(
        moq_http_route(r, MOQ_HTTP_GET, "/announced/", MOQ_HTTP_PREFIX, 0, handler_a, "prefix"), 0);
    assert_int_equal(
        moq_http_route(r, MOQ_HTTP_GET, "/announced/deep/", MOQ_HTTP_PREFIX, 0, handler_a, "deep"),
        0);
    assert_int_equal(
        moq_http_route(r, MOQ_HTTP_POST, "/echo", MOQ_HTTP_EXACT, 10, handler_a, "echo"), 0);
    assert_int_equal(
        moq_http_route(r, MOQ_HTTP_GET, "/fail", MOQ_HTTP_EXACT, 0, handler_fail, NULL), 0);
    assert_int_equal(
        moq_http_route(r, MOQ_HTTP_GET, "/async", MOQ_HTTP_EXACT, 0, handler_async, NULL), 0);
    assert_int_equal(moq_http_route(r, MOQ_HTTP_GET | MOQ_HTTP_POST, "/echo", MOQ_HTTP_EXACT, 0,
                                    handler_a, NULL),
                     MOQ_ERR_EXISTS);

    char body[256], allow[64];
    assert_int_equal(
        route(r, "GET /announced HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL), 200);
    assert_string_equal(body, "exact rest=");
    assert_int_equal(
        route(r, "GET /announced/a/b HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL), 200);
    assert_string_equal(body, "prefix rest=a/b");
    assert_int_equal(
        route(r, "GET /announced/deep/x HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL),
        200);
    assert_string_equal(body, "deep rest=x");
    assert_int_equal(
        route(r, "GET /announcedx HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL), 404);
    assert_int_equal(
        route(r, "HEAD /announced HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL), 200);
    assert_int_equal(
        route(r, "DELETE /announced HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), allow), 405);
    assert_string_equal(allow, "GET, HEAD");
    assert_int_equal(route(r, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), allow),
                     405);
    assert_string_equal(allow, "POST");
    assert_int_equal(route(r, "GET /fail HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL),
                     500);
    assert_string_equal(body, ""); /* what the failed handler wrote is dropped */
    assert_int_equal(route(r, "GET /async HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL),
                     200);

    size_t max = 99;
    assert_true(moq_http_router_lookup(r, MOQ_HTTP_POST, "/echo", &max));
    assert_int_equal(max, 10);
    assert_false(moq_http_router_lookup(r, MOQ_HTTP_PUT, "/echo", &max));
    assert_int_equal(max, 0);
    assert_false(moq_http_router_lookup(r, MOQ_HTTP_GET, "/none", &max));

    /* CORS preflight for any path. */
    assert_int_equal(moq_http_router_set_cors(r, "GET"), 0);
    moq_http_parser *p =
        parse_one("OPTIONS /anything HTTP/1.1\r\nHost: h\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    moq_http_response *resp = moq_http_response_new();
    assert_int_equal(moq_http_router_dispatch(r, moq_http_parser_request(p), resp), 0);
    assert_int_equal(moq_http_response_status(resp), 200);
    char v[32];
    assert_string_equal(
        moq_http_response_get_header(resp, "access-control-allow-methods", v, sizeof(v)), "GET");
    assert_true(resp->cors);
    assert_int_equal(moq_http_response_body_len(resp), 0);
    moq_http_response_free(resp);
    moq_http_parser_free(p);

    /* Fallback and removal by context. */
    moq_http_router_set_fallback(r, handler_a, "fallback");
    assert_int_equal(route(r, "GET /zzz HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL),
                     200);
    assert_string_equal(body, "fallback rest=/zzz");
    moq_http_router_remove(r, "fallback");
    moq_http_router_remove(r, "exact");
    assert_int_equal(route(r, "GET /zzz HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL),
                     404);
    assert_int_equal(
        route(r, "GET /announced HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL), 404);
    assert_int_equal(
        route(r, "GET /announced/q HTTP/1.1\r\nHost: h\r\n\r\n", body, sizeof(body), NULL), 200);
    moq_http_router_free(r);
}

/* --- WebSocket helpers --------------------------------------------------------------------- */

static void test_ws_accept_key(void **state)
{
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(moq_ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(moq_ws_accept_key("short", 5, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=!", 24, out), MOQ_ERR_INVALID);
    assert_int_equal(moq_ws_accept_key("dGhlIHNhbXBsZSBub25jZQAA", 24, out), MOQ_ERR_INVALID);
}

static int handshake_status(const char *extra, const char *method, const char *version)
{
    char raw[1024];
    snprintf(raw, sizeof(raw), "%s /x HTTP/%s\r\nHost: h\r\n%s\r\n", method, version, extra);
    moq_http_parser *p = parse_one(raw, MOQ_HTTP_PARSE_REQUEST, NULL);
    int status = moq_ws_check_handshake(moq_http_parser_request(p));
    moq_http_parser_free(p);
    return status;
}

static void test_ws_handshake_check(void **state)
{
    const char *good =
        "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    assert_int_equal(handshake_status(good, "GET", "1.1"), 0);
    assert_int_equal(handshake_status(good, "POST", "1.1"), 400);
    assert_int_equal(handshake_status(good, "GET", "1.0"), 400);
    assert_int_equal(handshake_status("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                      "Sec-WebSocket-Version: 8\r\n",
                                      "GET", "1.1"),
                     426);
    assert_int_equal(handshake_status("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                      "Sec-WebSocket-Version: 13\r\n",
                                      "GET", "1.1"),
                     400);
    assert_int_equal(handshake_status("Upgrade: websocket\r\n"
                                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                      "Sec-WebSocket-Version: 13\r\n",
                                      "GET", "1.1"),
                     400);
    char raw[512];
    snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: h\r\n%s\r\n", good);
    moq_http_parser *p = parse_one(raw, MOQ_HTTP_PARSE_REQUEST, NULL);
    assert_true(moq_ws_is_upgrade(moq_http_parser_request(p)));
    moq_http_parser_free(p);
    p = parse_one("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\n\r\n", MOQ_HTTP_PARSE_REQUEST,
                  NULL);
    assert_false(moq_ws_is_upgrade(moq_http_parser_request(p)));
    moq_http_parser_free(p);
}

static void test_ws_offers(void **state)
{
    moq_http_parser *p =
        parse_one("GET / HTTP/1.1\r\nHost: h\r\n"
                  "Sec-WebSocket-Protocol: qmux-02.moq-lite-05,  qmux-01.moq-lite-05 ,,\r\n"
                  "sec-websocket-protocol: webtransport\r\n\r\n",
                  MOQ_HTTP_PARSE_REQUEST, NULL);
    const moq_http_request *req = moq_http_parser_request(p);
    const char *offers[8];
    char storage[256];
    int n = moq_ws_parse_offers(req, offers, 8, storage, sizeof(storage));
    assert_int_equal(n, 3);
    assert_string_equal(offers[0], "qmux-02.moq-lite-05");
    assert_string_equal(offers[1], "qmux-01.moq-lite-05");
    assert_string_equal(offers[2], "webtransport");
    assert_int_equal(moq_ws_parse_offers(req, offers, 2, storage, sizeof(storage)),
                     MOQ_ERR_TOO_LARGE);
    assert_int_equal(moq_ws_parse_offers(req, offers, 8, storage, 20), MOQ_ERR_TOO_LARGE);

    /* Server preference decides, not the client's order. */
    const char *supported[] = {"qmux-01.moq-lite-05", "qmux-02.moq-lite-05", "webtransport"};
    assert_int_equal(moq_ws_select_protocol(offers, 3, supported, 3), 1);
    const char *only[] = {"webtransport"};
    assert_int_equal(moq_ws_select_protocol(offers, 3, only, 1), 2);
    const char *none[] = {"moql"};
    assert_int_equal(moq_ws_select_protocol(offers, 3, none, 1), -1);
    assert_int_equal(moq_ws_select_protocol(offers, 0, supported, 3), -1);
    moq_http_parser_free(p);

    p = parse_one("GET / HTTP/1.1\r\nHost: h\r\n\r\n", MOQ_HTTP_PARSE_REQUEST, NULL);
    assert_int_equal(
        moq_ws_parse_offers(moq_http_parser_request(p), offers, 8, storage, sizeof(storage)), 0);
    moq_http_parser_free(p);
}

static void test_parse_addr(void **state)
{
    struct sockaddr_storage ss;
    unsigned len;
    assert_int_equal(moq_http_parse_addr("[::]:4443", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(moq_http_parse_addr("0.0.0.0:80", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(moq_http_parse_addr("127.0.0.1:0", &ss, &len), 0);
    assert_int_equal(moq_http_parse_addr("localhost:80", &ss, &len), MOQ_ERR_CONFIG);
    assert_int_equal(moq_http_parse_addr("127.0.0.1", &ss, &len), MOQ_ERR_CONFIG);
    assert_int_equal(moq_http_parse_addr("127.0.0.1:70000", &ss, &len), MOQ_ERR_CONFIG);
    assert_int_equal(moq_http_parse_addr("::1:80", &ss, &len), MOQ_ERR_CONFIG);
    assert_int_equal(moq_http_parse_addr("[::1]80", &ss, &len), MOQ_ERR_CONFIG);
    assert_int_equal(moq_http_parse_addr("127.0.0.1:", &ss, &len), MOQ_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_simple_get),
        cmocka_unit_test(test_parse_byte_by_byte),
        cmocka_unit_test(test_parse_pipelined),
        cmocka_unit_test(test_parse_chunked_body_and_trailers),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_host_header),
        cmocka_unit_test(test_parse_targets),
        cmocka_unit_test(test_parse_keep_alive_semantics),
        cmocka_unit_test(test_parse_headers_hook),
        cmocka_unit_test(test_decode_path),
        cmocka_unit_test(test_query_param),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_response_headers_and_body),
        cmocka_unit_test(test_outq),
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_ws_accept_key),
        cmocka_unit_test(test_ws_handshake_check),
        cmocka_unit_test(test_ws_offers),
        cmocka_unit_test(test_parse_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
