/*
 * http_ws_client: a small WebSocket client (wslay client mode, http-parser for the 101)
 * that drives the scenarios of tests/integration/test_http.sh against http_test_server.
 * Exits 0 when every expectation holds, 1 otherwise (with the reason on stderr).
 *
 *   --port P [--tls --ca FILE] [--path /x] [--protocols a,b,c]
 *   --expect-status N        handshake status (default 101; anything else ends the run)
 *   --expect-protocol P      chosen subprotocol, "-" for none
 *   --sizes 0,1,70000        binary messages echoed and compared (> 64 KiB sent fragmented)
 *   --text S                 a text message echoed and compared
 *   --server-close           ask the server to close; expect 1000 "bye"
 *   --oversize N             send N bytes; expect the server to close with 1009
 *   --flood N                ask for N x 64 KiB at once, stay away 500 ms, expect the server
 *                            to drop the connection (no close frame) before sending it all
 *   --flow N                 ask for N x 64 KiB paced by `writable`; expect all and "done N"
 *   --silent-ms N            print "silent" on stdout (the connection is open), then neither
 *                            read nor write for N ms, then expect close 1001
 *   --quiet-ms N             send nothing for N ms while answering pings; the connection
 *                            must stay open (checked by a final echo)
 *   otherwise the client closes with 1000 at the end and expects the echo of its close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <http_parser.h>
#include <nettle/base64.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "http/ws.h"

static int fd = -1;
static gnutls_session_t tls;
static gnutls_certificate_credentials_t cred;
static wslay_event_context_ptr ctx;
static uint8_t leftover[65536];
static size_t leftover_len, leftover_off;
static bool eof;

struct msg {
    bool have;
    uint8_t opcode;
    uint8_t *data;
    size_t len;
};
static struct msg last;
static size_t binary_bytes, binary_count;
static bool count_only;

/* Runs at every exit, so LeakSanitizer sees a clean process whatever the outcome. */
static void cleanup(void)
{
    if (ctx) wslay_event_context_free(ctx);
    free(last.data);
    if (tls) gnutls_deinit(tls);
    if (cred) gnutls_certificate_free_credentials(cred);
    if (fd >= 0) close(fd);
}

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "http_ws_client: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- transport ------------------------------------------------------------------------ */

static ssize_t raw_recv(void *buf, size_t len)
{
    if (tls) {
        ssize_t r = gnutls_record_recv(tls, buf, len);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
            errno = EAGAIN;
            return -1;
        }
        if (r == GNUTLS_E_PREMATURE_TERMINATION) return 0;
        if (r < 0) {
            errno = ECONNRESET;
            return -1;
        }
        return r;
    }
    return recv(fd, buf, len, 0);
}

static ssize_t raw_send(const void *buf, size_t len)
{
    if (tls) {
        ssize_t r = gnutls_record_send(tls, buf, len);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
            errno = EAGAIN;
            return -1;
        }
        if (r < 0) {
            errno = EPIPE;
            return -1;
        }
        return r;
    }
    return send(fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t recv_cb(wslay_event_context_ptr c, uint8_t *buf, size_t len, int flags, void *u)
{
    if (leftover_off < leftover_len) {
        size_t n = leftover_len - leftover_off < len ? leftover_len - leftover_off : len;
        memcpy(buf, leftover + leftover_off, n);
        leftover_off += n;
        return (ssize_t)n;
    }
    ssize_t r = raw_recv(buf, len);
    if (r > 0) return r;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    eof = true;
    wslay_event_set_error(c, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static ssize_t send_cb(wslay_event_context_ptr c, const uint8_t *data, size_t len, int flags,
                       void *u)
{
    ssize_t r = raw_send(data, len);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    wslay_event_set_error(c, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

static int genmask_cb(wslay_event_context_ptr c, uint8_t *buf, size_t len, void *u)
{
    return gnutls_rnd(GNUTLS_RND_NONCE, buf, len) == 0 ? 0 : -1;
}

static void on_msg_cb(wslay_event_context_ptr c, const struct wslay_event_on_msg_recv_arg *arg,
                      void *u)
{
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME) return;
    if (arg->opcode == WSLAY_BINARY_FRAME) {
        binary_bytes += arg->msg_length;
        binary_count++;
        if (count_only) return;
    }
    free(last.data);
    last.data = malloc(arg->msg_length + 1);
    if (arg->msg_length) memcpy(last.data, arg->msg, arg->msg_length);
    last.data[arg->msg_length] = 0;
    last.len = arg->msg_length;
    last.opcode = arg->opcode;
    last.have = true;
}

/* Run the connection until done() is true. Returns false on timeout or connection end. */
static bool pump(bool (*done)(void), int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!done()) {
        if (eof) return false;
        int64_t left = deadline - now_ms();
        if (left <= 0) return false;
        bool pending = (tls && gnutls_record_check_pending(tls)) || leftover_off < leftover_len;
        struct pollfd p = {fd, 0, 0};
        if (wslay_event_want_read(ctx)) p.events |= POLLIN;
        if (wslay_event_want_write(ctx)) p.events |= POLLOUT;
        if (!p.events) return false;
        if (!pending && poll(&p, 1, (int)(left < 50 ? left : 50)) < 0 && errno != EINTR)
            return false;
        if ((pending || (p.revents & (POLLIN | POLLHUP | POLLERR))) && wslay_event_want_read(ctx))
            if (wslay_event_recv(ctx) != 0) eof = true;
        /* A failed send (the server already closed) ends the run like an EOF would; what
         * was received before still counts. */
        if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) eof = true;
    }
    return true;
}

static bool got_msg(void)
{
    return last.have;
}

static bool got_close(void)
{
    return wslay_event_get_close_received(ctx);
}

static bool never(void)
{
    return false;
}

/* --- handshake ------------------------------------------------------------------------ */

struct resp {
    int status;
    bool headers_done;
    char field[128];
    char accept[64];
    char protocol[256];
    bool has_protocol;
    enum { F_OTHER, F_ACCEPT, F_PROTOCOL } current;
};

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    snprintf(r->field, sizeof(r->field), "%.*s", (int)len, at);
    r->current = !strcasecmp(r->field, "sec-websocket-accept")     ? F_ACCEPT
                 : !strcasecmp(r->field, "sec-websocket-protocol") ? F_PROTOCOL
                                                                   : F_OTHER;
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    if (r->current == F_ACCEPT) snprintf(r->accept, sizeof(r->accept), "%.*s", (int)len, at);
    if (r->current == F_PROTOCOL) {
        snprintf(r->protocol, sizeof(r->protocol), "%.*s", (int)len, at);
        r->has_protocol = true;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct resp *r = p->data;
    r->status = p->status_code;
    r->headers_done = true;
    return 0;
}

static void write_all(const char *buf, size_t len)
{
    while (len) {
        ssize_t n = raw_send(buf, len);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0) fail("write failed during handshake");
        buf += n;
        len -= (size_t)n;
    }
}

static void connect_to(const char *host, int port, bool use_tls, const char *ca)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) fail("connect failed");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (use_tls) {
        gnutls_certificate_allocate_credentials(&cred);
        if (gnutls_certificate_set_x509_trust_file(cred, ca, GNUTLS_X509_FMT_PEM) <= 0)
            fail("cannot load CA %s", ca);
        gnutls_init(&tls, GNUTLS_CLIENT);
        gnutls_set_default_priority(tls);
        gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE, cred);
        gnutls_server_name_set(tls, GNUTLS_NAME_DNS, "localhost", 9);
        gnutls_session_set_verify_cert(tls, "localhost", 0);
        gnutls_datum_t alpn = {(unsigned char *)"http/1.1", 8};
        gnutls_alpn_set_protocols(tls, &alpn, 1, 0);
        gnutls_transport_set_int(tls, fd);
        int r;
        do {
            r = gnutls_handshake(tls);
        } while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0) fail("TLS handshake failed: %s", gnutls_strerror(r));
        gnutls_datum_t sel;
        if (gnutls_alpn_get_selected_protocol(tls, &sel) != 0 || sel.size != 8 ||
            memcmp(sel.data, "http/1.1", 8))
            fail("ALPN http/1.1 not selected");
    }
}

/* Send the upgrade request and read the response head. Returns the status. */
static int handshake(const char *path, const char *protocols, char expected_accept[29],
                     struct resp *resp)
{
    uint8_t raw[16];
    gnutls_rnd(GNUTLS_RND_NONCE, raw, sizeof(raw));
    char key[25];
    base64_encode_raw(key, sizeof(raw), raw);
    key[24] = 0;
    if (moq_ws_accept_key(key, 24, expected_accept) != 0) fail("accept key computation failed");
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     path, key, protocols ? "Sec-WebSocket-Protocol: " : "",
                     protocols ? protocols : "", protocols ? "\r\n" : "");
    write_all(req, (size_t)n);

    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = resp;
    http_parser_settings s = {.on_header_field = on_field,
                              .on_header_value = on_value,
                              .on_headers_complete = on_headers_complete};
    uint8_t buf[16384];
    while (!resp->headers_done) {
        ssize_t r = raw_recv(buf, sizeof(buf));
        if (r < 0 && errno == EAGAIN) continue;
        if (r <= 0) fail("connection closed during handshake");
        size_t used = http_parser_execute(&p, &s, (const char *)buf, (size_t)r);
        if (resp->headers_done) {
            if (resp->status == 101 && (size_t)r > used) {
                /* Frames right behind the 101 belong to wslay. */
                memcpy(leftover, buf + used, (size_t)r - used);
                leftover_len = (size_t)r - used;
            }
        } else if (HTTP_PARSER_ERRNO(&p) != HPE_OK) {
            fail("bad handshake response");
        }
    }
    return resp->status;
}

/* --- scenarios ------------------------------------------------------------------------ */

struct frag_src {
    const uint8_t *data;
    size_t len, off;
};

static ssize_t frag_read(wslay_event_context_ptr c, uint8_t *buf, size_t len,
                         const union wslay_event_msg_source *source, int *eof_out, void *u)
{
    struct frag_src *s = source->data;
    size_t n = s->len - s->off < len ? s->len - s->off : len;
    memcpy(buf, s->data + s->off, n);
    s->off += n;
    if (s->off == s->len) *eof_out = 1;
    return (ssize_t)n;
}

static void send_binary(const uint8_t *data, size_t len, struct frag_src *src)
{
    if (len > 65536) {
        *src = (struct frag_src){data, len, 0};
        struct wslay_event_fragmented_msg m = {
            .opcode = WSLAY_BINARY_FRAME, .source.data = src, .read_callback = frag_read};
        if (wslay_event_queue_fragmented_msg(ctx, &m) != 0) fail("queue fragmented failed");
    } else {
        struct wslay_event_msg m = {WSLAY_BINARY_FRAME, data, len};
        if (wslay_event_queue_msg(ctx, &m) != 0) fail("queue failed");
    }
}

static void send_text(const char *s)
{
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)s, strlen(s)};
    if (wslay_event_queue_msg(ctx, &m) != 0) fail("queue text failed");
}

static void echo_sizes(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t len = strtoul(t, NULL, 10);
        uint8_t *data = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            data[i] = (uint8_t)(i * 31 + len);
        struct frag_src src;
        last.have = false;
        send_binary(data, len, &src);
        if (!pump(got_msg, 10000)) fail("no echo for %zu bytes", len);
        if (last.opcode != WSLAY_BINARY_FRAME || last.len != len ||
            (len && memcmp(last.data, data, len)))
            fail("echo of %zu bytes differs (got %zu bytes, opcode %u)", len, last.len,
                 last.opcode);
        free(data);
    }
    free(copy);
}

static void expect_close(uint16_t code, const char *reason)
{
    if (!pump(got_close, 10000)) fail("no close frame (expected %u)", code);
    uint16_t got = wslay_event_get_status_code_received(ctx);
    if (got != code) fail("close code %u, expected %u", got, code);
    (void)reason;
}

/* Finish sending what wslay holds (our close reply), then read until the server closes. */
static bool wait_eof(int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) return true;
        uint8_t buf[65536];
        ssize_t r = raw_recv(buf, sizeof(buf));
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
        if (r < 0) {
            struct pollfd p = {fd, POLLIN, 0};
            poll(&p, 1, 50);
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = "/", *protocols = NULL, *ca = NULL;
    const char *expect_protocol = NULL, *sizes = NULL, *text = NULL;
    int port = 0, expect_status = 101, flood = 0, flow = 0, silent_ms = 0, quiet_ms = 0;
    size_t oversize = 0;
    bool use_tls = false, server_close = false;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(k, "--tls"))
            use_tls = true;
        else if (!strcmp(k, "--server-close"))
            server_close = true;
        else if (!strcmp(k, "--port"))
            port = atoi(v), i++;
        else if (!strcmp(k, "--ca"))
            ca = v, i++;
        else if (!strcmp(k, "--path"))
            path = v, i++;
        else if (!strcmp(k, "--protocols"))
            protocols = v, i++;
        else if (!strcmp(k, "--expect-status"))
            expect_status = atoi(v), i++;
        else if (!strcmp(k, "--expect-protocol"))
            expect_protocol = v, i++;
        else if (!strcmp(k, "--sizes"))
            sizes = v, i++;
        else if (!strcmp(k, "--text"))
            text = v, i++;
        else if (!strcmp(k, "--oversize"))
            oversize = strtoul(v, NULL, 10), i++;
        else if (!strcmp(k, "--flood"))
            flood = atoi(v), i++;
        else if (!strcmp(k, "--flow"))
            flow = atoi(v), i++;
        else if (!strcmp(k, "--silent-ms"))
            silent_ms = atoi(v), i++;
        else if (!strcmp(k, "--quiet-ms"))
            quiet_ms = atoi(v), i++;
        else
            fail("unknown option %s", k);
    }
    atexit(cleanup);
    connect_to(host, port, use_tls, ca);
    char expected_accept[29];
    struct resp resp = {0};
    int status = handshake(path, protocols, expected_accept, &resp);
    if (status != expect_status) fail("status %d, expected %d", status, expect_status);
    if (status != 101) return 0;
    if (strcmp(resp.accept, expected_accept)) fail("bad Sec-WebSocket-Accept '%s'", resp.accept);
    if (expect_protocol) {
        const char *got = resp.has_protocol ? resp.protocol : "-";
        if (strcmp(got, expect_protocol))
            fail("protocol '%s', expected '%s'", got, expect_protocol);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct wslay_event_callbacks cb = {.recv_callback = recv_cb,
                                       .send_callback = send_cb,
                                       .genmask_callback = genmask_cb,
                                       .on_msg_recv_callback = on_msg_cb};
    wslay_event_context_client_init(&ctx, &cb, NULL);
    wslay_event_config_set_max_recv_msg_length(ctx, 64u << 20);

    if (sizes) echo_sizes(sizes);
    if (text) {
        last.have = false;
        send_text(text);
        if (!pump(got_msg, 10000)) fail("no text echo");
        if (last.opcode != WSLAY_TEXT_FRAME || strcmp((char *)last.data, text))
            fail("text echo differs");
    }
    if (quiet_ms) {
        pump(never, quiet_ms);
        if (eof || wslay_event_get_close_received(ctx)) fail("closed while answering pings");
        echo_sizes("3");
    }
    if (silent_ms) {
        printf("silent\n");
        fflush(stdout);
        usleep((useconds_t)silent_ms * 1000);
        expect_close(MOQ_WS_GOING_AWAY, "idle timeout");
        if (!wait_eof(5000)) fail("server did not close the connection");
        return 0;
    }
    if (oversize) {
        uint8_t *data = calloc(1, oversize);
        struct frag_src src;
        send_binary(data, oversize, &src);
        expect_close(MOQ_WS_TOO_BIG, "");
        free(data);
        if (!wait_eof(5000)) fail("server did not close the connection");
        return 0;
    }
    if (flood) {
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "flood %d", flood);
        count_only = true;
        send_text(cmd);
        while (wslay_event_want_write(ctx) && wslay_event_send(ctx) == 0) {
        }
        usleep(500 * 1000);
        pump(never, 10000);
        if (!eof) fail("connection not dropped");
        if (wslay_event_get_close_received(ctx)) fail("unexpected close frame on drop");
        if (binary_bytes >= (size_t)flood * 65536) fail("everything was delivered");
        printf("flood: dropped after %zu of %zu bytes\n", binary_bytes, (size_t)flood * 65536);
        return 0;
    }
    if (flow) {
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "flow %d", flow);
        count_only = true;
        last.have = false;
        send_text(cmd);
        if (!pump(got_msg, 20000)) fail("flow did not finish");
        char want[32];
        snprintf(want, sizeof(want), "done %d", flow);
        if (strcmp((char *)last.data, want)) fail("flow ended with '%s'", last.data);
        if (binary_count != (size_t)flow || binary_bytes != (size_t)flow * 65536)
            fail("flow delivered %zu messages, %zu bytes", binary_count, binary_bytes);
    }
    if (server_close) {
        send_text("close");
        expect_close(MOQ_WS_NORMAL, "bye");
    } else {
        wslay_event_queue_close(ctx, MOQ_WS_NORMAL, (const uint8_t *)"done", 4);
        expect_close(MOQ_WS_NORMAL, "done");
    }
    /* The server closes the TCP connection after the closing handshake. */
    if (!wait_eof(5000)) fail("server did not close the connection");
    return 0;
}
