/*
 * quic_test_server - a QUIC server on src/quic for integration tests with foreign clients.
 *
 * Prints one line per accepted connection on stdout ("accepted alpn=<alpn> kind=<kind>
 * peer=<addr>") and per closed one ("closed code=<n> reason=<text>"). Echoes bidi stream
 * data and datagrams; discards uni stream data. With --close-on-accept it closes every
 * connection right after the handshake (for clients whose protocol we do not speak).
 *
 *   quic_test_server --cert C --key K [--listen ADDR] [--alpn a,b,c] [--port-file F]
 *                    [--exit-after N] [--close-on-accept CODE]
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "quic/quic.h"
#include "util/err.h"
#include "util/log.h"

struct server_state {
    struct ev_loop *loop;
    gnutls_certificate_credentials_t creds;
    long accepted, closed, exit_after;
    bool close_on_accept;
    uint64_t close_code;
};

static void on_stream_data(void *app, moq_transport *t, int64_t sid, void *sctx,
                           const uint8_t *data, size_t len, bool fin)
{
    (void)app;
    (void)sctx;
    if (moq_stream_is_bidi(sid) && (len || fin)) moq_transport_write_bytes(t, sid, data, len, fin);
}

static void on_datagram(void *app, moq_transport *t, const uint8_t *data, size_t len)
{
    (void)app;
    t->ops->send_datagram(t, data, len);
}

static void on_closed(void *app, moq_transport *t, uint64_t code, const char *reason)
{
    struct server_state *st = app;
    (void)t;
    printf("closed code=%llu reason=%s\n", (unsigned long long)code, reason ? reason : "");
    fflush(stdout);
    st->closed++;
    if (st->exit_after > 0 && st->closed >= st->exit_after) ev_break(st->loop, EVBREAK_ALL);
}

static const struct moq_transport_events events = {
    .stream_data = on_stream_data,
    .datagram = on_datagram,
    .closed = on_closed,
};

static int on_accept(void *ctx, moq_transport *t)
{
    struct server_state *st = ctx;
    st->accepted++;
    printf("accepted alpn=%s kind=%d peer=%s\n", t->protocol, (int)t->kind, t->peer);
    fflush(stdout);
    moq_transport_attach(t, &events, st);
    if (st->close_on_accept) moq_transport_close(t, st->close_code, "test server closes");
    return 0;
}

static void *creds_acquire(void *ctx, gnutls_certificate_credentials_t *out)
{
    struct server_state *st = ctx;
    *out = st->creds;
    return st;
}

static void creds_release(void *ctx, void *handle)
{
    (void)ctx;
    (void)handle;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void usage(void)
{
    fprintf(stderr, "usage: quic_test_server --cert C --key K [--listen ADDR] [--alpn a,b] "
                    "[--port-file F] [--exit-after N] [--close-on-accept CODE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *listen = "127.0.0.1:0", *port_file = NULL;
    char alpn_buf[512] = "moq-lite-05,moq-lite-04,moq-lite-03,h3";
    struct server_state st = {0};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (strcmp(a, "--cert") == 0)
            cert = v;
        else if (strcmp(a, "--key") == 0)
            key = v;
        else if (strcmp(a, "--listen") == 0)
            listen = v;
        else if (strcmp(a, "--alpn") == 0)
            snprintf(alpn_buf, sizeof(alpn_buf), "%s", v);
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--exit-after") == 0)
            st.exit_after = strtol(v, NULL, 10);
        else if (strcmp(a, "--close-on-accept") == 0) {
            st.close_on_accept = true;
            st.close_code = strtoull(v, NULL, 0);
        } else
            usage();
    }
    if (!cert || !key) usage();
    const char *spec = getenv("MOQ_LOG");
    moq_log_configure(spec ? spec : "info");

    const char *alpn[MOQ_QUIC_MAX_ALPN];
    size_t nalpn = 0;
    for (char *tok = strtok(alpn_buf, ","); tok && nalpn < MOQ_QUIC_MAX_ALPN;
         tok = strtok(NULL, ","))
        alpn[nalpn++] = tok;

    if (gnutls_certificate_allocate_credentials(&st.creds) != 0 ||
        gnutls_certificate_set_x509_key_file(st.creds, cert, key, GNUTLS_X509_FMT_PEM) != 0) {
        fprintf(stderr, "cannot load %s / %s\n", cert, key);
        return 1;
    }
    st.loop = ev_default_loop(0);
    struct moq_quic_server_config cfg = {
        .listen = listen,
        .alpn = alpn,
        .alpn_count = nalpn,
        .creds_acquire = creds_acquire,
        .creds_release = creds_release,
        .creds_ctx = &st,
        .accept = on_accept,
        .accept_ctx = &st,
    };
    moq_quic_server *server;
    int rv = moq_quic_server_new(st.loop, &cfg, &server);
    if (rv < 0) {
        fprintf(stderr, "server: %s\n", moq_strerror(rv));
        return 1;
    }
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f) {
            fprintf(stderr, "%s: %s\n", port_file, strerror(errno));
            return 1;
        }
        fprintf(f, "%u\n", moq_quic_server_port(server));
        fclose(f);
    }
    ev_signal sigint, sigterm;
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_start(st.loop, &sigint);
    ev_signal_start(st.loop, &sigterm);
    ev_run(st.loop, 0);
    moq_quic_server_free(server);
    gnutls_certificate_free_credentials(st.creds);
    printf("exit accepted=%ld closed=%ld\n", st.accepted, st.closed);
    return 0;
}
