/* A small asynchronous HTTP/1.1 GET over plain TCP on libev: resolve, connect (trying each
 * address in turn), send one request with Connection: close, parse the response with
 * http-parser, call back once. */
#include "client/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <http_parser.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

struct moq_http_get {
    struct ev_loop *loop;
    moq_http_get_fn cb;
    void *ctx;
    struct addrinfo *addrs, *next_addr;
    int fd;
    ev_io io;
    ev_timer timer;
    moq_buf request;
    size_t sent;
    http_parser parser;
    http_parser_settings settings;
    moq_buf body;
    size_t max_body;
    bool complete;
    bool too_large;
    char host[256];
    char port[32];
    char last_error[160];
};

static void get_free(moq_http_get *g)
{
    /* An expired timer is no longer active but may still be pending in this iteration. */
    ev_clear_pending(g->loop, &g->io);
    ev_clear_pending(g->loop, &g->timer);
    if (ev_is_active(&g->io)) ev_io_stop(g->loop, &g->io);
    if (ev_is_active(&g->timer)) ev_timer_stop(g->loop, &g->timer);
    if (g->fd >= 0) close(g->fd);
    if (g->addrs) freeaddrinfo(g->addrs);
    moq_buf_free(&g->request);
    moq_buf_free(&g->body);
    free(g);
}

static void get_finish(moq_http_get *g, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void get_finish(moq_http_get *g, int err, const char *fmt, ...)
{
    char reason[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
    }
    if (err < 0)
        g->cb(g->ctx, err, 0, NULL, 0, reason);
    else
        g->cb(g->ctx, 0, (int)g->parser.status_code, g->body.data, g->body.len, "");
    get_free(g);
}

/* ---- response parsing ---- */

static int on_body(http_parser *p, const char *at, size_t len)
{
    moq_http_get *g = p->data;
    if (g->body.len + len > g->max_body) {
        g->too_large = true;
        return 1;
    }
    return moq_buf_append(&g->body, at, len) < 0 ? 1 : 0;
}

static int on_complete(http_parser *p)
{
    moq_http_get *g = p->data;
    g->complete = true;
    return 1; /* stop: one response is all we want */
}

/* ---- connecting ---- */

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);

static void try_next_address(moq_http_get *g)
{
    while (g->next_addr) {
        struct addrinfo *ai = g->next_addr;
        g->next_addr = ai->ai_next;
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            snprintf(g->last_error, sizeof(g->last_error), "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            snprintf(g->last_error, sizeof(g->last_error), "%s", strerror(errno));
            close(fd);
            continue;
        }
        g->fd = fd;
        ev_io_init(&g->io, io_cb, fd, EV_WRITE);
        g->io.data = g;
        ev_io_start(g->loop, &g->io);
        return;
    }
    get_finish(g, MOQ_ERR_IO, "cannot connect to %s:%s: %s", g->host, g->port,
               g->last_error[0] ? g->last_error : "no address");
}

static void connect_failed(moq_http_get *g, int err)
{
    snprintf(g->last_error, sizeof(g->last_error), "%s", strerror(err));
    ev_io_stop(g->loop, &g->io);
    close(g->fd);
    g->fd = -1;
    try_next_address(g);
}

static void on_writable(moq_http_get *g)
{
    if (g->sent == 0) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(g->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) soerr = errno;
        if (soerr) {
            connect_failed(g, soerr);
            return;
        }
    }
    while (g->sent < g->request.len) {
        ssize_t n = send(g->fd, g->request.data + g->sent, g->request.len - g->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            if (g->sent == 0) {
                connect_failed(g, errno);
                return;
            }
            get_finish(g, MOQ_ERR_IO, "sending to %s:%s: %s", g->host, g->port, strerror(errno));
            return;
        }
        g->sent += (size_t)n;
    }
    ev_io_stop(g->loop, &g->io);
    ev_io_set(&g->io, g->fd, EV_READ);
    ev_io_start(g->loop, &g->io);
}

static void on_readable(moq_http_get *g)
{
    char buf[16384];
    for (;;) {
        ssize_t n = recv(g->fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            get_finish(g, MOQ_ERR_IO, "reading from %s:%s: %s", g->host, g->port, strerror(errno));
            return;
        }
        /* n == 0 tells the parser the connection closed (ends a body without length) */
        size_t used = http_parser_execute(&g->parser, &g->settings, buf, (size_t)n);
        if (g->complete) {
            get_finish(g, 0, NULL);
            return;
        }
        if (g->too_large) {
            get_finish(g, MOQ_ERR_TOO_LARGE, "response from %s:%s is larger than %zu bytes",
                       g->host, g->port, g->max_body);
            return;
        }
        if (HTTP_PARSER_ERRNO(&g->parser) != HPE_OK || used != (size_t)n) {
            get_finish(g, MOQ_ERR_PROTO, "malformed HTTP response from %s:%s (%s)", g->host,
                       g->port, http_errno_name(HTTP_PARSER_ERRNO(&g->parser)));
            return;
        }
        if (n == 0) {
            get_finish(g, MOQ_ERR_IO, "%s:%s closed the connection before a full response", g->host,
                       g->port);
            return;
        }
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    moq_http_get *g = w->data;
    if (revents & EV_CUSTOM)
        try_next_address(g);
    else if (revents & EV_WRITE)
        on_writable(g);
    else if (revents & EV_READ)
        on_readable(g);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    moq_http_get *g = w->data;
    get_finish(g, MOQ_ERR_TIMEOUT, "no answer from %s:%s in time", g->host, g->port);
}

/* ---- public ---- */

static int build_request(moq_http_get *g, const struct moq_http_get_config *cfg)
{
    bool v6 = strchr(cfg->host, ':') != NULL;
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: moq/" MOQ_VERSION
                     "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                     cfg->target, v6 ? "[" : "", cfg->host, v6 ? "]" : "", cfg->port);
    if (n < 0 || (size_t)n >= sizeof(head)) return MOQ_ERR_INVALID;
    return moq_buf_append(&g->request, head, (size_t)n);
}

int moq_http_get_start(struct ev_loop *loop, const struct moq_http_get_config *cfg,
                       moq_http_get_fn cb, void *ctx, moq_http_get **out)
{
    if (!loop || !cfg || !cb || !cfg->host || !cfg->port || !cfg->target || cfg->target[0] != '/' ||
        strpbrk(cfg->target, " \r\n") || strlen(cfg->host) >= sizeof(((moq_http_get *)0)->host) ||
        strlen(cfg->port) >= sizeof(((moq_http_get *)0)->port))
        return MOQ_ERR_INVALID;
    moq_http_get *g = calloc(1, sizeof(*g));
    if (!g) return MOQ_ERR_NOMEM;
    g->loop = loop;
    g->cb = cb;
    g->ctx = ctx;
    g->fd = -1;
    g->max_body = cfg->max_body ? cfg->max_body : MOQ_HTTP_GET_DEFAULT_MAX_BODY;
    snprintf(g->host, sizeof(g->host), "%s", cfg->host);
    snprintf(g->port, sizeof(g->port), "%s", cfg->port);
    moq_buf_init(&g->request);
    moq_buf_init(&g->body);
    ev_init(&g->io, io_cb);
    g->io.data = g;
    int rv = build_request(g, cfg);
    if (rv < 0) {
        get_free(g);
        return rv;
    }
    struct addrinfo hints = {0};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    int gai = getaddrinfo(cfg->host, cfg->port, &hints, &g->addrs);
    if (gai != 0 || !g->addrs) {
        moq_warn("client", "cannot resolve %s:%s: %s", cfg->host, cfg->port, gai_strerror(gai));
        g->addrs = NULL;
        get_free(g);
        return MOQ_ERR_NOT_FOUND;
    }
    g->next_addr = g->addrs;
    http_parser_init(&g->parser, HTTP_RESPONSE);
    g->parser.data = g;
    http_parser_settings_init(&g->settings);
    g->settings.on_body = on_body;
    g->settings.on_message_complete = on_complete;
    uint64_t ms = cfg->timeout_ms ? cfg->timeout_ms : MOQ_HTTP_GET_DEFAULT_TIMEOUT_MS;
    ev_timer_init(&g->timer, timeout_cb, (double)ms / 1000.0, 0.);
    g->timer.data = g;
    ev_timer_start(loop, &g->timer);
    /* Connect from the loop so that even an immediate failure calls back, never inside. */
    ev_feed_event(loop, &g->io, EV_CUSTOM);
    if (out) *out = g;
    return 0;
}

void moq_http_get_cancel(moq_http_get *g)
{
    if (g) get_free(g);
}
