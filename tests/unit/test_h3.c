/* Unit tests for src/h3: frame codecs with exact bytes, and HTTP/3 + WebTransport sessions
 * between our client and server over an in-memory transport pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "h3/frames.h"
#include "client/client.h"
#include "h3/h3.h"
#include "transport/pipe.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"
#include "util/varint.h"

static void response_headers_exact_bytes(void **state)
{
    const char *names[] = {":status", "sec-webtransport-http3-draft", "wt-protocol"};
    const char *values[] = {"200", "draft02", "\"moq-lite-05\""};
    moq_buf out;
    moq_buf_init(&out);
    assert_int_equal(moq_h3_encode_headers(&out, names, values, 3), 0);
    static const uint8_t expect[] = "\x01\x40\x44\x00\x00\xd9"
                                    "\x27\x15sec-webtransport-http3-draft\x07"
                                    "draft02"
                                    "\x27\x04wt-protocol\x0d\"moq-lite-05\"";
    assert_int_equal(out.len, sizeof(expect) - 1);
    assert_memory_equal(out.data, expect, out.len);

    /* and nghttp3's decoder reads it back */
    struct moq_h3_headers h;
    assert_int_equal(moq_h3_decode_headers(out.data + 3, out.len - 3, &h), 0);
    assert_int_equal(h.count, 3);
    assert_string_equal(moq_h3_headers_get(&h, ":status")->value, "200");
    assert_string_equal(moq_h3_headers_get(&h, "wt-protocol")->value, "\"moq-lite-05\"");
    moq_h3_headers_free(&h);
    moq_buf_free(&out);
}

static void settings_round_trip_and_errors(void **state)
{
    moq_buf out;
    moq_buf_init(&out);
    assert_int_equal(moq_h3_encode_our_settings(&out), 0);
    uint64_t type, len;
    int hl = moq_h3_frame_header(out.data, out.len, &type, &len);
    assert_true(hl > 0);
    assert_true(type == MOQ_H3_FRAME_SETTINGS);
    assert_int_equal(out.len, (size_t)hl + len);
    struct moq_h3_settings s;
    assert_int_equal(moq_h3_decode_settings(out.data + hl, (size_t)len, &s), 0);
    assert_true(s.enable_connect_protocol);
    assert_true(s.h3_datagram);
    assert_true(s.enable_webtransport);
    assert_true(s.wt_max_sessions == 1);
    assert_true(s.qpack_max_table_capacity == 0);
    moq_buf_free(&out);

    /* Chrome-like: QPACK settings, draft-04 datagram id, a GREASE setting */
    const uint8_t chrome[] = {0x01, 0x80, 0x01, 0x00, 0x00, 0x06, 0x80, 0x00, 0x40, 0x00, 0x07,
                              0x40, 0x64, 0x33, 0x01, 0x80, 0xff, 0xd2, 0x77, 0x01, 0x21, 0x05};
    assert_int_equal(moq_h3_decode_settings(chrome, sizeof(chrome), &s), 0);
    assert_true(s.qpack_max_table_capacity == 65536);
    assert_true(s.h3_datagram);
    /* duplicates and HTTP/2 settings are errors */
    assert_int_equal(moq_h3_decode_settings((const uint8_t *)"\x33\x01\x33\x01", 4, &s),
                     MOQ_ERR_PROTO);
    assert_int_equal(moq_h3_decode_settings((const uint8_t *)"\x02\x01", 2, &s), MOQ_ERR_PROTO);
    assert_int_equal(moq_h3_decode_settings((const uint8_t *)"\x33", 1, &s), MOQ_ERR_PROTO);
}

static void close_capsule(void **state)
{
    moq_buf out;
    moq_buf_init(&out);
    assert_int_equal(moq_h3_encode_close_capsule(&out, 6, "x"), 0);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, "\x00\x08\x68\x43\x05\x00\x00\x00\x06\x78", 10);
    uint64_t type;
    const uint8_t *payload;
    size_t plen;
    assert_int_equal(moq_h3_capsule(out.data + 2, out.len - 2, &type, &payload, &plen), 8);
    assert_true(type == MOQ_WT_CAPSULE_CLOSE_SESSION);
    assert_int_equal(plen, 5);
    assert_int_equal(moq_h3_capsule(out.data + 2, 4, &type, &payload, &plen), MOQ_ERR_AGAIN);
    moq_buf_free(&out);
}

static int collect(void *ctx, const char *item)
{
    moq_buf *b = ctx;
    moq_buf_append(b, item, strlen(item));
    moq_buf_put_u8(b, '|');
    return 0;
}

static void sf_lists(void **state)
{
    const char *offer = "\"moq-lite-05\", \"moq-lite-04\",\"moql\" , \"moqt-20\";q=1";
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_sf_string_list(offer, strlen(offer), collect, &b), 0);
    moq_buf_put_u8(&b, 0);
    assert_string_equal((char *)b.data, "moq-lite-05|moq-lite-04|moql|moqt-20|");
    moq_buf_free(&b);
    assert_int_equal(moq_sf_string_list("\"a\",", 4, collect, &b), MOQ_ERR_INVALID);
    assert_int_equal(moq_sf_string_list("\"a", 2, collect, &b), MOQ_ERR_INVALID);
    moq_buf_free(&b);
    char out[32];
    assert_int_equal(moq_sf_string_parse(" \"moq-lite-05\"", 14, out, sizeof(out)), 0);
    assert_string_equal(out, "moq-lite-05");
    moq_buf enc;
    moq_buf_init(&enc);
    moq_sf_string_encode(&enc, "a\"b");
    assert_int_equal(enc.len, 6);
    assert_memory_equal(enc.data, "\"a\\\"b\"", 6);
    moq_buf_free(&enc);
}

/* ---- sessions over a pipe ---- */

/* A connection's timers on the loop, as the relay and the dialer run them. */
static const struct moq_h3_driver *loop_driver(struct ev_loop *loop)
{
    static struct moq_h3_driver drv;
    assert_int_equal(moq_h3_loop_driver(loop, &drv), 0);
    return &drv;
}

struct app {
    moq_transport *t;
    char received[256];
    size_t received_len;
    bool fin;
    bool closed;
    uint64_t close_code;
    char close_reason[64];
    uint64_t reset_code;
    bool got_reset;
    char datagram[64];
    int streams_opened;
    bool echo;
};

struct world {
    struct ev_loop *loop;
    struct app server, client;
    int accepts;
    int connect_err;
    int connect_status;
    bool connect_done;
    const char *server_protocols[3];
};

static void a_opened(void *app, moq_transport *t, int64_t sid, bool bidi)
{
    struct app *a = app;
    a->streams_opened++;
}

static void a_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                   size_t len, bool fin)
{
    struct app *a = app;
    if (len && a->received_len + len < sizeof(a->received)) {
        memcpy(a->received + a->received_len, data, len);
        a->received_len += len;
    }
    if (fin) a->fin = true;
    if (a->echo && moq_stream_is_bidi(sid)) moq_transport_write_bytes(t, sid, data, len, fin);
}

static void a_reset(void *app, moq_transport *t, int64_t sid, void *sctx, uint64_t code)
{
    struct app *a = app;
    a->got_reset = true;
    a->reset_code = code;
}

static void a_closed_stream(void *app, moq_transport *t, int64_t sid, void *sctx) {}

static void a_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    struct app *a = app;
    snprintf(a->datagram, sizeof(a->datagram), "%.*s", (int)len, (const char *)data);
}

static void a_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct app *a = app;
    a->closed = true;
    a->close_code = code;
    snprintf(a->close_reason, sizeof(a->close_reason), "%s", reason);
    a->t = NULL;
}

static const struct moq_transport_events app_events = {
    .stream_opened = a_opened,
    .stream_data = a_data,
    .stream_reset = a_reset,
    .stream_closed = a_closed_stream,
    .datagram = a_datagram,
    .closed = a_closed,
};

static int server_accept(void *ctx, moq_transport *t)
{
    struct world *w = ctx;
    w->accepts++;
    w->server.t = t;
    w->server.echo = true;
    moq_transport_attach(t, &app_events, &w->server);
    return 0;
}

static void client_done(void *ctx, moq_transport *t, int err, int status)
{
    struct world *w = ctx;
    w->connect_done = true;
    w->connect_err = err;
    w->connect_status = status;
    w->client.t = t;
    if (t) moq_transport_attach(t, &app_events, &w->client);
}

static void run_until(struct world *w, bool *flag)
{
    for (int i = 0; i < 1000 && !*flag; i++)
        ev_run(w->loop, EVRUN_NOWAIT);
}

static void spin(struct world *w, int n)
{
    for (int i = 0; i < n; i++)
        ev_run(w->loop, EVRUN_NOWAIT);
}

/* The server's fallback protocol in the next setup_world() (see moq_h3_server_config). */
static const char *world_fallback;

static void setup_world(struct world *w, const char *const *offer, size_t n_offer)
{
    memset(w, 0, sizeof(*w));
    w->loop = ev_loop_new(EVFLAG_AUTO);
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {.kind = MOQ_TRANSPORT_H3, .protocol = "h3", .max_datagram = 1200};
    assert_non_null(moq_pipe_new(w->loop, &pc, &ct, &st));
    w->server_protocols[0] = "moq-lite-05";
    w->server_protocols[1] = "moq-lite-04";
    w->server_protocols[2] = "moq-lite-03";
    struct moq_h3_server_config sc = {w->server_protocols, 3, server_accept, w, NULL,
                                      world_fallback};
    assert_int_equal(moq_h3_server_attach(st, loop_driver(w->loop), &sc), 0);
    struct moq_h3_client_config cc = {"localhost:4443", "/room?jwt=abc", offer,
                                      n_offer,          client_done,     w};
    assert_int_equal(moq_h3_client_attach(ct, loop_driver(w->loop), &cc), 0);
}

static void session_echo_datagram_and_close(void **state)
{
    struct world w;
    static const char *const offer[] = {"moq-lite-05", "moq-lite-04"};
    setup_world(&w, offer, 2);
    run_until(&w, &w.connect_done);
    assert_true(w.connect_done);
    assert_int_equal(w.connect_err, 0);
    assert_int_equal(w.connect_status, 200);
    assert_int_equal(w.accepts, 1);
    assert_string_equal(w.client.t->protocol, "moq-lite-05");
    assert_string_equal(w.server.t->protocol, "moq-lite-05");
    assert_string_equal(w.server.t->path, "/room?jwt=abc");
    assert_string_equal(w.server.t->authority, "localhost:4443");
    assert_int_equal(w.server.t->kind, MOQ_TRANSPORT_WEBTRANSPORT);

    int64_t sid;
    assert_int_equal(moq_transport_open(w.client.t, true, &sid), 0);
    assert_int_equal(moq_transport_write_bytes(w.client.t, sid, "hello", 5, true), 0);
    run_until(&w, &w.client.fin);
    assert_true(w.client.fin);
    assert_int_equal(w.client.received_len, 5);
    assert_memory_equal(w.client.received, "hello", 5);
    assert_int_equal(w.server.streams_opened, 1);

    /* server-initiated uni stream */
    int64_t usid;
    assert_int_equal(moq_transport_open(w.server.t, false, &usid), 0);
    w.client.received_len = 0;
    w.client.fin = false;
    assert_int_equal(moq_transport_write_bytes(w.server.t, usid, "uni", 3, true), 0);
    run_until(&w, &w.client.fin);
    assert_int_equal(w.client.received_len, 3);
    assert_memory_equal(w.client.received, "uni", 3);

    /* reset codes are moq codes at both ends */
    int64_t rsid;
    assert_int_equal(moq_transport_open(w.client.t, false, &rsid), 0);
    assert_int_equal(moq_transport_write_bytes(w.client.t, rsid, "x", 1, false), 0);
    spin(&w, 10);
    assert_int_equal(w.client.t->ops->reset(w.client.t, rsid, 13), 0);
    run_until(&w, &w.server.got_reset);
    assert_true(w.server.reset_code == 13);

    assert_true(w.client.t->ops->max_datagram(w.client.t) > 1000);
    assert_int_equal(w.client.t->ops->send_datagram(w.client.t, (const uint8_t *)"dgram", 5), 0);
    spin(&w, 10);
    assert_string_equal(w.server.datagram, "dgram");

    moq_transport_close(w.client.t, 6, "bye");
    run_until(&w, &w.server.closed);
    assert_true(w.server.closed);
    assert_true(w.server.close_code == 6);
    assert_string_equal(w.server.close_reason, "bye");
    run_until(&w, &w.client.closed);
    assert_true(w.client.closed);
    ev_run(w.loop, 0); /* returns once every watcher (timers, pipe) is gone */
    ev_loop_destroy(w.loop);
}

static void client_order_picks_the_protocol(void **state)
{
    struct world w;
    static const char *const offer[] = {"moqt-20", "moq-lite-04", "moq-lite-05"};
    setup_world(&w, offer, 3);
    run_until(&w, &w.connect_done);
    /* the first offered protocol we support wins (client order) */
    assert_int_equal(w.connect_err, 0);
    assert_string_equal(w.server.t->protocol, "moq-lite-04");
    moq_transport_close(w.server.t, 0, "");
    run_until(&w, &w.client.closed);
    assert_true(w.client.closed);
    ev_run(w.loop, 0); /* returns once every watcher (timers, pipe) is gone */
    ev_loop_destroy(w.loop);
}

static void unsupported_protocol_is_refused(void **state)
{
    struct world w;
    static const char *const offer[] = {"moqt-20", "moql"};
    setup_world(&w, offer, 2);
    run_until(&w, &w.connect_done);
    assert_true(w.connect_err < 0);
    assert_int_equal(w.connect_status, 400);
    assert_null(w.client.t);
    assert_int_equal(w.accepts, 0);
    ev_run(w.loop, 0); /* returns once every watcher (timers, pipe) is gone */
    ev_loop_destroy(w.loop);
}

/* A raw peer: drive the server with hand-made bytes. */
struct raw {
    moq_buf in[16];
    bool fin[16];
    bool closed;
    uint64_t close_code;
};

static void r_data(void *app, moq_transport *t, int64_t sid, void *sctx, const uint8_t *data,
                   size_t len, bool fin)
{
    struct raw *r = app;
    if (len) moq_buf_append(&r->in[sid % 16], data, len);
    if (fin) r->fin[sid % 16] = true;
}

static void r_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct raw *r = app;
    r->closed = true;
    r->close_code = code;
}

static const struct moq_transport_events raw_events = {
    .stream_data = r_data,
    .closed = r_closed,
};

static void raw_requests(void **state)
{
    struct world w;
    memset(&w, 0, sizeof(w));
    w.loop = ev_loop_new(EVFLAG_AUTO);
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {.kind = MOQ_TRANSPORT_H3, .protocol = "h3"};
    moq_pipe *pipe = moq_pipe_new(w.loop, &pc, &ct, &st);
    assert_non_null(pipe);
    w.server_protocols[0] = "moq-lite-05";
    struct moq_h3_server_config sc = {w.server_protocols, 1, server_accept, &w, NULL, NULL};
    assert_int_equal(moq_h3_server_attach(st, loop_driver(w.loop), &sc), 0);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moq_transport_attach(ct, &raw_events, &r);

    /* control stream with SETTINGS */
    int64_t ctrl;
    moq_buf b;
    moq_buf_init(&b);
    moq_buf_put_varint(&b, 0);
    moq_h3_encode_our_settings(&b);
    assert_int_equal(moq_transport_open(ct, false, &ctrl), 0);
    moq_transport_write_bytes(ct, ctrl, b.data, b.len, false);
    moq_buf_reset(&b);

    /* A WebTransport stream for session 4 arrives before its CONNECT. */
    int64_t get_sid, connect_sid, early;
    assert_int_equal(moq_transport_open(ct, true, &get_sid), 0);     /* 0 */
    assert_int_equal(moq_transport_open(ct, true, &connect_sid), 0); /* 4 */
    assert_int_equal(moq_transport_open(ct, true, &early), 0);       /* 8 */
    moq_buf_put_varint(&b, MOQ_WT_STREAM_BIDI);
    moq_buf_put_varint(&b, (uint64_t)connect_sid);
    moq_buf_append(&b, "early", 5);
    moq_transport_write_bytes(ct, early, b.data, b.len, false);
    moq_buf_reset(&b);

    /* a plain GET gets a 404 */
    const char *gn[] = {":method", ":scheme", ":authority", ":path"};
    const char *gv[] = {"GET", "https", "localhost", "/"};
    moq_h3_encode_headers(&b, gn, gv, 4);
    moq_transport_write_bytes(ct, get_sid, b.data, b.len, true);
    moq_buf_reset(&b);
    spin(&w, 20);
    assert_true(r.fin[get_sid % 16]);
    uint64_t type, len;
    int hl = moq_h3_frame_header(r.in[get_sid % 16].data, r.in[get_sid % 16].len, &type, &len);
    assert_true(hl > 0 && type == MOQ_H3_FRAME_HEADERS);
    struct moq_h3_headers h;
    assert_int_equal(moq_h3_decode_headers(r.in[get_sid % 16].data + hl, (size_t)len, &h), 0);
    assert_string_equal(moq_h3_headers_get(&h, ":status")->value, "404");
    moq_h3_headers_free(&h);
    assert_int_equal(w.accepts, 0);

    /* GREASE frame, then the CONNECT */
    moq_buf_put_varint(&b, 0x21);
    moq_buf_put_varint(&b, 3);
    moq_buf_append(&b, "abc", 3);
    const char *cn[] = {":method",    ":protocol", ":scheme",
                        ":authority", ":path",     "wt-available-protocols"};
    const char *cv[] = {"CONNECT",           "webtransport", "https",
                        "relay.example:443", "/anon",        "\"moql\", \"moq-lite-05\""};
    moq_h3_encode_headers(&b, cn, cv, 6);
    moq_transport_write_bytes(ct, connect_sid, b.data, b.len, false);
    moq_buf_reset(&b);
    spin(&w, 20);
    assert_int_equal(w.accepts, 1);
    assert_string_equal(w.server.t->path, "/anon");
    assert_string_equal(w.server.t->protocol, "moq-lite-05");
    /* the early stream was adopted and its bytes delivered (and echoed back) */
    assert_int_equal(w.server.streams_opened, 1);
    assert_int_equal(w.server.received_len, 5);
    assert_memory_equal(w.server.received, "early", 5);
    assert_int_equal(r.in[early % 16].len, 5);

    /* the client closes the session with a capsule */
    moq_h3_encode_close_capsule(&b, 42, "done");
    moq_transport_write_bytes(ct, connect_sid, b.data, b.len, true);
    moq_buf_reset(&b);
    run_until(&w, &w.server.closed);
    assert_true(w.server.close_code == 42);
    assert_string_equal(w.server.close_reason, "done");
    /* and the server closes the QUIC connection once the last session is gone */
    for (int i = 0; i < 200 && !r.closed; i++)
        ev_run(w.loop, EVRUN_ONCE);
    assert_true(r.closed);
    assert_true(r.close_code == MOQ_H3_NO_ERROR);
    moq_buf_free(&b);
    for (int i = 0; i < 16; i++)
        moq_buf_free(&r.in[i]);
    ev_loop_destroy(w.loop);
}

/* The status and the text body of the response to a CONNECT for path, sent with one extra
 * header field (or none: extra_name NULL). */
static void refused_connect(const char *path, const char *extra_name, const char *extra_value,
                            char *status, char *body, size_t cap)
{
    struct world w;
    memset(&w, 0, sizeof(w));
    w.loop = ev_loop_new(EVFLAG_AUTO);
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {.kind = MOQ_TRANSPORT_H3, .protocol = "h3"};
    assert_non_null(moq_pipe_new(w.loop, &pc, &ct, &st));
    w.server_protocols[0] = "moq-lite-05";
    w.server_protocols[1] = "moq-lite-04";
    struct moq_h3_server_config sc = {w.server_protocols, 2, server_accept, &w, NULL, NULL};
    assert_int_equal(moq_h3_server_attach(st, loop_driver(w.loop), &sc), 0);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moq_transport_attach(ct, &raw_events, &r);
    int64_t ctrl, sid;
    moq_buf b;
    moq_buf_init(&b);
    moq_buf_put_varint(&b, 0);
    moq_h3_encode_our_settings(&b);
    assert_int_equal(moq_transport_open(ct, false, &ctrl), 0);
    moq_transport_write_bytes(ct, ctrl, b.data, b.len, false);
    moq_buf_reset(&b);
    const char *cn[] = {":method", ":protocol", ":scheme", ":authority", ":path", extra_name};
    const char *cv[] = {"CONNECT", "webtransport", "https", "relay:443", path, extra_value};
    moq_h3_encode_headers(&b, cn, cv, extra_name ? 6 : 5);
    assert_int_equal(moq_transport_open(ct, true, &sid), 0);
    moq_transport_write_bytes(ct, sid, b.data, b.len, false);
    for (int i = 0; i < 100 && !r.fin[sid % 16]; i++)
        ev_run(w.loop, EVRUN_NOWAIT);
    assert_true(r.fin[sid % 16]);
    assert_int_equal(w.accepts, 0);

    const uint8_t *p = r.in[sid % 16].data;
    size_t left = r.in[sid % 16].len;
    uint64_t type, len;
    int hl = moq_h3_frame_header(p, left, &type, &len);
    assert_true(hl > 0 && type == MOQ_H3_FRAME_HEADERS && hl + len <= left);
    struct moq_h3_headers h;
    assert_int_equal(moq_h3_decode_headers(p + hl, (size_t)len, &h), 0);
    snprintf(status, 8, "%s", moq_h3_headers_get(&h, ":status")->value);
    moq_h3_headers_free(&h);
    p += hl + len;
    left -= hl + len;
    hl = moq_h3_frame_header(p, left, &type, &len);
    assert_true(hl > 0 && type == MOQ_H3_FRAME_DATA && hl + len == left && len < cap);
    memcpy(body, p + hl, len);
    body[len] = '\0';

    moq_buf_free(&b);
    for (int i = 0; i < 16; i++)
        moq_buf_free(&r.in[i]);
    moq_transport_close(ct, 0, "");
    ev_run(w.loop, 0); /* returns once every watcher (timers, pipe) is gone */
    ev_loop_destroy(w.loop);
}

/* Without a fallback protocol (a relay that offers no "moql"), such a CONNECT is a 400 whose
 * body says what to send. */
static void connect_without_protocols_names_what_is_missing(void **state)
{
    char status[8], body[512];
    refused_connect("/anon", NULL, NULL, status, body, sizeof(body));
    assert_string_equal(status, "400");
    assert_non_null(strstr(body, "no WebTransport protocol offered"));
    assert_non_null(strstr(body, "wt-available-protocols"));
    assert_non_null(strstr(body, "\"moq-lite-05\", \"moq-lite-04\""));

    refused_connect("/anon", "wt-available-protocols", "\"moql\", \"moqt-20\"", status, body,
                    sizeof(body));
    assert_string_equal(status, "400");
    assert_non_null(strstr(body, "no offered WebTransport protocol is supported"));
    assert_non_null(strstr(body, "\"moq-lite-05\""));
}

/* With a fallback protocol, a CONNECT offering nothing we implement (or no list at all) is
 * answered 200 without wt-protocol, as upstream does; the session runs the fallback. */
static void connect_without_protocols_takes_the_fallback(void **state)
{
    static const char *const unknown[] = {"moq-lite-99"};
    for (size_t n = 0; n < 2; n++) {
        struct world w;
        world_fallback = "moql";
        setup_world(&w, unknown, n);
        world_fallback = NULL;
        run_until(&w, &w.connect_done);
        assert_int_equal(w.connect_err, 0);
        assert_int_equal(w.connect_status, 200);
        assert_int_equal(w.accepts, 1);
        assert_string_equal(w.server.t->protocol, "moql");
        assert_string_equal(w.client.t->protocol, ""); /* no wt-protocol in the answer */
        moq_transport_close(w.server.t, 0, "");
        run_until(&w, &w.client.closed);
        ev_run(w.loop, 0);
        ev_loop_destroy(w.loop);
    }
}

/* A :path the relay's one percent-decoder refuses never reaches the authorizer. */
static void connect_with_bad_escape_is_400(void **state)
{
    char status[8], body[512];
    static const char *const paths[] = {"/an%zzon", "/anon?jwt=%zz", "/anon?x=%4&jwt=a"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        refused_connect(paths[i], "wt-available-protocols", "\"moq-lite-05\"", status, body,
                        sizeof(body));
        assert_string_equal(status, "400");
        assert_non_null(strstr(body, "bad :path"));
    }
}

static void missing_settings_closes_connection(void **state)
{
    struct world w;
    memset(&w, 0, sizeof(w));
    w.loop = ev_loop_new(EVFLAG_AUTO);
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {.kind = MOQ_TRANSPORT_H3, .protocol = "h3"};
    assert_non_null(moq_pipe_new(w.loop, &pc, &ct, &st));
    w.server_protocols[0] = "moq-lite-05";
    struct moq_h3_server_config sc = {w.server_protocols, 1, server_accept, &w, NULL, NULL};
    assert_int_equal(moq_h3_server_attach(st, loop_driver(w.loop), &sc), 0);
    struct raw r;
    memset(&r, 0, sizeof(r));
    moq_transport_attach(ct, &raw_events, &r);
    int64_t ctrl;
    assert_int_equal(moq_transport_open(ct, false, &ctrl), 0);
    /* control stream whose first frame is GOAWAY */
    moq_transport_write_bytes(ct, ctrl, "\x00\x07\x01\x00", 4, false);
    for (int i = 0; i < 100 && !r.closed; i++)
        ev_run(w.loop, EVRUN_NOWAIT);
    assert_true(r.closed);
    assert_true(r.close_code == MOQ_H3_MISSING_SETTINGS);
    for (int i = 0; i < 16; i++)
        moq_buf_free(&r.in[i]);
    ev_loop_destroy(w.loop);
}

/* ---- timers on a virtual clock, no event loop ---- */

static uint64_t vnow;

static uint64_t virtual_now(void *ctx)
{
    return vnow;
}

static const moq_clock vclock = {virtual_now, virtual_now, NULL};

/* What a driver keeps for one connection. */
struct vdriver {
    moq_h3_conn *c;
    uint64_t at;
    bool freed;
};

static void vd_timer(void *ctx, moq_h3_conn *c, uint64_t at)
{
    struct vdriver *d = ctx;
    d->c = c;
    d->at = at;
}

static void vd_freed(void *ctx, moq_h3_conn *c)
{
    struct vdriver *d = ctx;
    d->freed = true;
    d->c = NULL;
    d->at = UINT64_MAX;
}

static void fire_due(struct vdriver *d)
{
    if (d->c && d->at <= vnow) moq_h3_on_timer(d->c, vnow);
}

/* One WebTransport session between our client and server over a pipe driven by hand, their
 * timers on the virtual clock. */
static moq_pipe *vworld_connect(struct world *w, struct vdriver *sd, struct vdriver *cd)
{
    memset(w, 0, sizeof(*w));
    vnow = 5 * MOQ_US_PER_S;
    moq_transport *ct, *st;
    struct moq_pipe_config pc = {.kind = MOQ_TRANSPORT_H3, .protocol = "h3"};
    moq_pipe *pipe = moq_pipe_new(NULL, &pc, &ct, &st);
    assert_non_null(pipe);
    *sd = (struct vdriver){.at = UINT64_MAX};
    *cd = (struct vdriver){.at = UINT64_MAX};
    static struct moq_h3_driver sdrv, cdrv;
    sdrv = (struct moq_h3_driver){&vclock, vd_timer, vd_freed, sd};
    cdrv = (struct moq_h3_driver){&vclock, vd_timer, vd_freed, cd};
    w->server_protocols[0] = "moq-lite-05";
    struct moq_h3_server_config sc = {w->server_protocols, 1, server_accept, w, NULL, NULL};
    assert_int_equal(moq_h3_server_attach(st, &sdrv, &sc), 0);
    static const char *const offer[] = {"moq-lite-05"};
    struct moq_h3_client_config cc = {"localhost:4443", "/", offer, 1, client_done, w};
    assert_int_equal(moq_h3_client_attach(ct, &cdrv, &cc), 0);
    for (int i = 0; i < 10; i++)
        moq_pipe_flush(pipe);
    assert_true(w->connect_done);
    assert_int_equal(w->connect_err, 0);
    assert_true(sd->at == UINT64_MAX && cd->at == UINT64_MAX); /* nothing due while it runs */
    return pipe;
}

/* A session's `closed` comes from the connection's timer, not from inside close(); the
 * QUIC connection follows its last session after exactly 500 ms; timers called early do
 * nothing; both connections tell their drivers when they are gone. */
static void close_and_linger_on_a_virtual_clock(void **state)
{
    struct world w;
    struct vdriver sd, cd;
    moq_pipe *pipe = vworld_connect(&w, &sd, &cd);

    moq_transport_close(w.client.t, 6, "bye");
    assert_false(w.client.closed);
    assert_true(cd.at == vnow);
    moq_pipe_flush(pipe); /* the close capsule reaches the server */
    assert_false(w.server.closed);
    assert_true(sd.at == vnow);
    fire_due(&cd);
    fire_due(&sd);
    assert_true(w.client.closed && w.server.closed);
    assert_true(w.server.close_code == 6);
    assert_string_equal(w.server.close_reason, "bye");
    uint64_t linger_end = vnow + 500 * MOQ_US_PER_MS;
    assert_true(cd.at == linger_end && sd.at == linger_end);

    vnow = linger_end - 1;
    moq_h3_on_timer(cd.c, vnow); /* early: nothing happens, the deadline stands */
    moq_pipe_flush(pipe);
    assert_false(cd.freed);
    assert_true(cd.at == linger_end);
    vnow = linger_end;
    fire_due(&cd);
    moq_pipe_flush(pipe);
    assert_true(cd.freed);
    assert_true(sd.freed);
}

/* The server closes its session while the close capsule has not reached the client (the
 * pipe delivers nothing until flushed; an undelivered byte is an unacknowledged one). The
 * QUIC connection stays open past the linger time until the capsule is delivered, so the
 * client reads the server's code and reason, not a lost connection. */
static void connection_outlives_an_unacknowledged_close_capsule(void **state)
{
    struct world w;
    struct vdriver sd, cd;
    moq_pipe *pipe = vworld_connect(&w, &sd, &cd);

    moq_transport_close(w.server.t, 5, "malformed SETUP");
    fire_due(&sd);
    assert_true(w.server.closed);
    uint64_t linger_end = vnow + 500 * MOQ_US_PER_MS;
    assert_true(sd.at == linger_end);
    vnow = linger_end;
    fire_due(&sd);
    assert_false(sd.freed);
    assert_true(sd.at > vnow && sd.at <= vnow + 50 * MOQ_US_PER_MS); /* looks again soon */
    vnow += 2 * MOQ_US_PER_S; /* a slow peer: still nothing acknowledged */
    fire_due(&sd);
    assert_false(sd.freed);

    moq_pipe_flush(pipe); /* the capsule and FIN arrive (and count as acknowledged) */
    fire_due(&cd);
    assert_true(w.client.closed);
    assert_true(w.client.close_code == 5);
    assert_string_equal(w.client.close_reason, "malformed SETUP");
    vnow = sd.at;
    fire_due(&sd);        /* nothing is unacknowledged now: the connection closes */
    moq_pipe_flush(pipe); /* the pipe frees itself with its ends */
    assert_true(sd.freed);
    assert_true(cd.freed);
}

/* A peer that never acknowledges the close capsule holds the connection open 5 s at most. */
static void unacknowledged_close_capsule_waits_at_most_five_seconds(void **state)
{
    struct world w;
    struct vdriver sd, cd;
    moq_pipe *pipe = vworld_connect(&w, &sd, &cd);
    moq_transport_close(w.server.t, 5, "malformed SETUP");
    fire_due(&sd);
    uint64_t give_up = vnow + 5 * MOQ_US_PER_S;
    while (!sd.freed && sd.at < give_up) {
        vnow = sd.at;
        fire_due(&sd);
        assert_false(sd.freed);
    }
    assert_true(sd.at == give_up);
    vnow = give_up;
    fire_due(&sd);
    moq_pipe_flush(pipe); /* the pipe frees itself with its ends */
    assert_true(sd.freed);
    assert_true(cd.freed);
}

/* Shutdown (moq_h3_shutdown) ends a linger that waits for the peer to acknowledge the close
 * capsule: the QUIC connection closes at once and nothing is due any more. */
static void shutdown_ends_a_linger_waiting_for_an_ack(void **state)
{
    struct world w;
    struct vdriver sd, cd;
    moq_pipe *pipe = vworld_connect(&w, &sd, &cd);
    moq_transport_close(w.server.t, 5, "malformed SETUP");
    fire_due(&sd);
    vnow = sd.at; /* the linger time is over; the capsule is still unacknowledged */
    fire_due(&sd);
    assert_false(sd.freed);
    assert_true(sd.at != UINT64_MAX); /* waiting */

    moq_h3_shutdown(sd.c);
    assert_false(sd.freed); /* never from inside the call */
    assert_true(sd.at == UINT64_MAX);
    moq_pipe_flush(pipe); /* the close reaches the client; the pipe frees itself */
    assert_true(sd.freed);
    assert_true(cd.freed);
    assert_true(w.client.closed);
}

/* Shutdown while the last session's close is still being delivered: once it is, the QUIC
 * connection closes with no linger at all. */
static void shutdown_closes_after_the_last_session_without_lingering(void **state)
{
    struct world w;
    struct vdriver sd, cd;
    moq_pipe *pipe = vworld_connect(&w, &sd, &cd);
    moq_transport_close(w.server.t, 5, "malformed SETUP");
    moq_h3_shutdown(sd.c);
    assert_false(w.server.closed); /* the session's `closed` still comes from the timer */
    fire_due(&sd);
    assert_true(w.server.closed);
    assert_true(sd.at == UINT64_MAX); /* no linger */
    moq_pipe_flush(pipe);
    assert_true(sd.freed);
    assert_true(cd.freed);
}

/* moq_h3_loop_shutdown: every connection lingering on the loop closes at once, so the loop
 * has nothing left to run (the relay's shutdown then destroys it). */
static void loop_shutdown_ends_every_linger_on_the_loop(void **state)
{
    struct world w;
    static const char *const offer[] = {"moq-lite-05"};
    setup_world(&w, offer, 1);
    run_until(&w, &w.connect_done);
    assert_int_equal(w.connect_err, 0);
    moq_transport_close(w.server.t, 5, "bye");
    run_until(&w, &w.client.closed);
    assert_true(w.client.close_code == 5);
    assert_true(ev_run(w.loop, EVRUN_NOWAIT)); /* the connections linger */

    moq_h3_loop_shutdown(w.loop);
    bool busy = true;
    for (int i = 0; i < 1000 && busy; i++)
        busy = ev_run(w.loop, EVRUN_NOWAIT);
    assert_false(busy);
    ev_loop_destroy(w.loop);
}

int main(void)
{
    moq_log_set_level(MOQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(response_headers_exact_bytes),
        cmocka_unit_test(settings_round_trip_and_errors),
        cmocka_unit_test(close_capsule),
        cmocka_unit_test(sf_lists),
        cmocka_unit_test(session_echo_datagram_and_close),
        cmocka_unit_test(client_order_picks_the_protocol),
        cmocka_unit_test(unsupported_protocol_is_refused),
        cmocka_unit_test(raw_requests),
        cmocka_unit_test(connect_without_protocols_names_what_is_missing),
        cmocka_unit_test(connect_without_protocols_takes_the_fallback),
        cmocka_unit_test(connect_with_bad_escape_is_400),
        cmocka_unit_test(missing_settings_closes_connection),
        cmocka_unit_test(close_and_linger_on_a_virtual_clock),
        cmocka_unit_test(connection_outlives_an_unacknowledged_close_capsule),
        cmocka_unit_test(unacknowledged_close_capsule_waits_at_most_five_seconds),
        cmocka_unit_test(shutdown_ends_a_linger_waiting_for_an_ack),
        cmocka_unit_test(shutdown_closes_after_the_last_session_without_lingering),
        cmocka_unit_test(loop_shutdown_ends_every_linger_on_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
