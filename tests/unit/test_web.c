/* Unit tests of src/web: the relay endpoints on a route table, driven sans-I/O (parsed
 * request -> router -> response). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"
#include "http/internal.h"
#include "http/parser.h"
#include "util/err.h"
#include "web/web.h"

struct result {
    int status;
    char body[1024];
    size_t body_len;
    char content_type[64];
    char head[2048];
};

static void run(moq_http_router *r, const char *raw, struct result *out)
{
    static const struct moq_http_parser_limits lim = {4096, 50, 0};
    moq_http_parser *p = moq_http_parser_new(&lim, NULL, NULL);
    size_t used;
    assert_int_equal(moq_http_parser_feed(p, (const uint8_t *)raw, strlen(raw), &used),
                     MOQ_HTTP_PARSE_REQUEST);
    moq_http_response *resp = moq_http_response_new();
    assert_int_equal(moq_http_router_dispatch(r, moq_http_parser_request(p), resp), 0);
    memset(out, 0, sizeof(*out));
    out->status = moq_http_response_status(resp);
    out->body_len = moq_http_response_body_copy(resp, out->body, sizeof(out->body) - 1);
    if (!moq_http_response_get_header(resp, "Content-Type", out->content_type,
                                      sizeof(out->content_type)))
        out->content_type[0] = 0;
    moq_buf head;
    moq_buf_init(&head);
    moq_http_response_head(resp, 0, true, false, MOQ_HTTP_FRAME_LENGTH, &head);
    memcpy(out->head, head.data, head.len < sizeof(out->head) - 1 ? head.len : 0);
    moq_buf_free(&head);
    moq_http_response_free(resp);
    moq_http_parser_free(p);
}

static const char fp[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static bool have_cert = true;

static int hook_fingerprint(void *ctx, char *out, size_t cap)
{
    if (!have_cert) return MOQ_ERR_NOT_FOUND;
    snprintf(out, cap, "%s", fp);
    return 0;
}

static char last_prefix[256];
static struct moq_web_fetch last_fetch;
static char fetch_broadcast[256], fetch_track[256];

static int hook_announced(void *ctx, const char *prefix, const moq_http_request *req,
                          moq_http_response *resp)
{
    snprintf(last_prefix, sizeof(last_prefix), "%s", prefix);
    return moq_http_response_body(resp, "a\nb", 3);
}

static int hook_fetch(void *ctx, const struct moq_web_fetch *f, const moq_http_request *req,
                      moq_http_response *resp)
{
    last_fetch = *f;
    snprintf(fetch_broadcast, sizeof(fetch_broadcast), "%s", f->broadcast);
    snprintf(fetch_track, sizeof(fetch_track), "%s", f->track);
    return 0;
}

static int hook_metrics(void *ctx, const moq_http_request *req, moq_http_response *resp)
{
    return MOQ_ERR_IO;
}

static void test_health_and_fingerprint(void **state)
{
    moq_http_router *r = moq_http_router_new();
    struct moq_web_hooks hooks = {.fingerprint = hook_fingerprint};
    moq_web *web = moq_web_new(r, &hooks);
    assert_non_null(web);
    struct result res;

    run(r, "GET /health HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 3);
    assert_string_equal(res.body, "ok\n");
    assert_string_equal(res.content_type, "text/plain; charset=utf-8");
    assert_non_null(strstr(res.head, "\r\nAccess-Control-Allow-Origin: *\r\n"));

    run(r, "GET /certificate.sha256 HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, fp); /* no trailing newline, like upstream */
    assert_int_equal(res.body_len, 64);
    assert_string_equal(res.content_type, "text/plain; charset=utf-8");

    have_cert = false;
    run(r, "GET /certificate.sha256 HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 404);
    assert_string_equal(res.body, "no certificate\n");
    have_cert = true;

    run(r, "HEAD /health HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 200);

    run(r, "POST /health HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 405);
    assert_non_null(strstr(res.head, "\r\nAllow: GET, HEAD\r\n"));
    assert_non_null(strstr(res.head, "\r\nAccess-Control-Allow-Origin: *\r\n"));

    run(r,
        "OPTIONS /certificate.sha256 HTTP/1.1\r\nHost: h\r\nOrigin: https://x\r\n"
        "Access-Control-Request-Method: GET\r\n\r\n",
        &res);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 0);
    assert_non_null(strstr(res.head, "\r\nAccess-Control-Allow-Methods: GET\r\n"));

    /* Unimplemented hooks leave their routes out: the HTML landing page answers. */
    run(r, "GET /announced HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 404);
    assert_string_equal(res.content_type, "text/html; charset=utf-8");
    assert_non_null(strstr(res.body, "<html"));
    run(r, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 404);
    run(r, "GET /fetch/a/b HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 404);

    /* Freeing the web removes its routes, fallback and CORS. */
    moq_web_free(web);
    run(r, "GET /health HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 404);
    assert_int_equal(res.body_len, 0);
    assert_null(strstr(res.head, "Access-Control"));
    moq_http_router_free(r);
}

static void test_hooks(void **state)
{
    moq_http_router *r = moq_http_router_new();
    struct moq_web_hooks hooks = {.fingerprint = hook_fingerprint,
                                  .announced = hook_announced,
                                  .fetch = hook_fetch,
                                  .metrics = hook_metrics};
    moq_web *web = moq_web_new(r, &hooks);
    struct result res;

    run(r, "GET /announced HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(last_prefix, "");
    assert_string_equal(res.body, "a\nb");
    run(r, "GET /announced/ HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_string_equal(last_prefix, "");
    run(r, "GET /announced/demo/live%20x HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_string_equal(last_prefix, "demo/live x");

    run(r, "GET /fetch/demo/live/video?group=42&jwt=t HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(fetch_broadcast, "demo/live");
    assert_string_equal(fetch_track, "video");
    assert_false(last_fetch.latest);
    assert_int_equal(last_fetch.group, 42);
    run(r, "GET /fetch/demo/catalog.json HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_true(last_fetch.latest);
    assert_string_equal(fetch_broadcast, "demo");
    run(r, "GET /fetch/demo/catalog.json?group=latest HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_true(last_fetch.latest);
    run(r, "GET /fetch/track-only HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 400);
    run(r, "GET /fetch/a/b?group=-1 HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 400);
    run(r, "GET /fetch/a/b?group=18446744073709551616 HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 400);

    /* A failing hook is a 500. */
    run(r, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 500);

    /* Routes are taken: a second web on the same router is refused. */
    assert_null(moq_web_new(r, &hooks));
    run(r, "GET /health HTTP/1.1\r\nHost: h\r\n\r\n", &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.head, "\r\nAccess-Control-Allow-Origin: *\r\n"));
    moq_web_free(web);
    moq_http_router_free(r);
}

static void test_parse_fetch(void **state)
{
    char buf[64];
    struct moq_web_fetch f;
    assert_int_equal(moq_web_parse_fetch("a/b/c", "group=7", 7, buf, sizeof(buf), &f), 0);
    assert_string_equal(f.broadcast, "a/b");
    assert_string_equal(f.track, "c");
    assert_false(f.latest);
    assert_int_equal(f.group, 7);
    assert_int_equal(moq_web_parse_fetch("a/", "", 0, buf, sizeof(buf), &f), 0);
    assert_string_equal(f.broadcast, "a");
    assert_string_equal(f.track, "");
    assert_true(f.latest);
    assert_int_equal(moq_web_parse_fetch("a", "", 0, buf, sizeof(buf), &f), 400);
    assert_int_equal(moq_web_parse_fetch("a/b", "group=", 6, buf, sizeof(buf), &f), 400);
    assert_int_equal(moq_web_parse_fetch("a/b", "group=1x", 8, buf, sizeof(buf), &f), 400);
    assert_int_equal(moq_web_parse_fetch("a/b", "group=%zz", 9, buf, sizeof(buf), &f), 400);
    assert_int_equal(moq_web_parse_fetch("a/b", "", 0, buf, 3, &f), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_fingerprint),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_parse_fetch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
