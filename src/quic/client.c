/*
 * client.c - dialing one QUIC server from a socket of our own.
 */
#include "quic/internal.h"
#include "util/err.h"
#include "util/log.h"

#include <netdb.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_RX_SLOTS 16
#define READ_ROUNDS     8

struct moq_quic_client {
    moq_quic_endpoint ep;
    struct moq_quic_conn *c;
    moq_quic_connect_cb cb;
    void *ctx;
    bool done; /* the callback ran */
};

struct moq_quic_conn *moq_quic_client_conn(moq_quic_client *cl)
{
    return cl->c;
}

void moq_quic_client_destroy(moq_quic_client *cl)
{
    moq_quic_endpoint_close(&cl->ep);
    free(cl);
}

void moq_quic_client_established(moq_quic_client *cl, struct moq_quic_conn *c)
{
    if (cl->done) return;
    cl->done = true;
    cl->cb(cl->ctx, (moq_transport *)c, 0, NULL);
}

void moq_quic_client_failed(moq_quic_client *cl, int err, const char *reason)
{
    if (cl->done) return;
    cl->done = true;
    cl->cb(cl->ctx, NULL, err, reason && *reason ? reason : moq_strerror(err));
}

static void client_readable(moq_quic_endpoint *ep)
{
    moq_quic_client *cl = ep->client;
    for (int round = 0; round < READ_ROUNDS; round++) {
        int n = moq_quic_udp_recv(&ep->rx, ep->fd, &ep->bound);
        if (n <= 0) return;
        for (int i = 0; i < n; i++) {
            struct moq_quic_udp_msg *m = &ep->rx.msgs[i];
            moq_quic_conn_read(cl->c, &ep->bound, &m->remote, m->data, m->len);
        }
        if ((size_t)n < ep->rx.slots) return;
    }
}

static int resolve(const char *host, const char *port, moq_quic_addr *out)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_family = AF_UNSPEC;
    int rv = getaddrinfo(host, port, &hints, &res);
    if (rv != 0 || !res) {
        moq_warn("quic", "cannot resolve %s:%s: %s", host, port, gai_strerror(rv));
        return MOQ_ERR_NOT_FOUND;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return MOQ_OK;
}

int moq_quic_connect(struct ev_loop *loop, const struct moq_quic_client_config *cfg,
                     moq_quic_connect_cb cb, void *ctx, moq_quic_client **out)
{
    if (!loop || !cfg || !cb || !cfg->host || !cfg->port || cfg->alpn_count == 0 ||
        cfg->alpn_count > MOQ_QUIC_MAX_ALPN)
        return MOQ_ERR_INVALID;
    for (size_t i = 0; i < cfg->alpn_count; i++) {
        size_t len = cfg->alpn[i] ? strlen(cfg->alpn[i]) : 0;
        if (len == 0 || len > 255) return MOQ_ERR_INVALID;
    }
    moq_quic_addr remote, local;
    int rv = resolve(cfg->host, cfg->port, &remote);
    if (rv < 0) return rv;
    int fd;
    rv = moq_quic_udp_connect(&remote, &fd, &local);
    if (rv < 0) return rv;
    moq_quic_client *cl = calloc(1, sizeof(*cl));
    if (!cl) {
        close(fd);
        return MOQ_ERR_NOMEM;
    }
    rv = moq_quic_endpoint_init(&cl->ep, loop, fd, CLIENT_RX_SLOTS, &cfg->transport);
    if (rv < 0) {
        moq_quic_client_destroy(cl);
        return rv;
    }
    cl->ep.bound = local;
    cl->ep.client = cl;
    cl->ep.on_readable = client_readable;
    cl->cb = cb;
    cl->ctx = ctx;
    struct moq_quic_conn *c = moq_quic_conn_new_client(&cl->ep, &local, &remote, cfg);
    if (!c) {
        moq_quic_client_destroy(cl);
        return MOQ_ERR_TLS;
    }
    cl->c = c;
    moq_quic_endpoint_start(&cl->ep);
    if (out) *out = cl;
    return MOQ_OK;
}

void moq_quic_connect_cancel(moq_quic_client *cl)
{
    if (!cl || cl->done) return;
    cl->done = true;
    moq_quic_conn_free(cl->c); /* frees cl too */
}
