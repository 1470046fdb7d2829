/*
 * server.c - the QUIC listener: routes datagrams by connection ID, creates connections for
 * new Initials, answers unknown versions with Version Negotiation and unknown short-header
 * packets with (rate-limited) stateless resets.
 */
#include "quic/cid_table.h"
#include "quic/internal.h"
#include "quic/limits.h"
#include "quic/steer.h"
#include "tls/tls.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVER_RX_SLOTS 64
#define READ_ROUNDS     8
#define SECRET_LEN      32
#define MAX_RESET_LEN   64
/* How long a Retry token stays valid. */
#define RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)

struct moq_quic_server {
    moq_quic_endpoint ep;
    char **alpn;
    size_t alpn_count;
    void *(*creds_acquire)(void *ctx, gnutls_certificate_credentials_t *out);
    void (*creds_release)(void *ctx, void *handle);
    void *creds_ctx;
    void (*tls_setup)(void *ctx, gnutls_session_t s);
    int (*accept)(void *ctx, moq_transport *t);
    void *accept_ctx;
    moq_quic_limits *limits; /* shared by the listeners of this port */
    bool owns_limits;
    struct moq_quic_server_stats stats;
    moq_quic_cid_table cids;
    moq_list conns;
    size_t nconns;
    uint8_t secret[SECRET_LEN];
    unsigned worker, workers; /* the index our connection IDs carry (quic/steer.h) */
};

static bool take_response_token(moq_quic_server *s)
{
    return moq_quic_limits_response_token(s->limits, moq_now_us());
}

/* Handshakes from one IPv4 address, or one IPv6 /64 (what one host can spread its sources
 * over), share a count. */
static uint64_t address_key(const moq_quic_addr *a)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
        return (1ull << 63) | ntohl(in->sin_addr.s_addr);
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        const uint8_t *b = in6->sin6_addr.s6_addr + 12;
        return (1ull << 63) | (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 | (uint64_t)b[2] << 8 |
               b[3];
    }
    uint64_t key = 0;
    for (int i = 0; i < 8; i++)
        key = key << 8 | in6->sin6_addr.s6_addr[i];
    return key & ~(1ull << 63);
}

/* A handshake from c's address starts: false when the address has too many already. */
static bool half_open_take(moq_quic_server *s, uint64_t key)
{
    if (!moq_quic_limits_half_open_take(s->limits, key)) return false;
    s->stats.half_open++;
    return true;
}

static void half_open_done(moq_quic_server *s, struct moq_quic_conn *c)
{
    if (!c->half_open) return;
    c->half_open = false;
    s->stats.half_open--;
    moq_quic_limits_half_open_done(s->limits, c->addr_key);
}

static void reset_token(moq_quic_server *s, const uint8_t *cid, size_t len, uint8_t *token)
{
    ngtcp2_cid c;
    ngtcp2_cid_init(&c, cid, len);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, s->secret, sizeof(s->secret), &c) != 0)
        moq_quic_random(token, NGTCP2_STATELESS_RESET_TOKENLEN); /* cannot reset this one */
}

/* A random CID nobody uses yet. */
static void fresh_cid(moq_quic_server *s, ngtcp2_cid *cid)
{
    uint8_t buf[MOQ_QUIC_SCIDLEN];
    do {
        moq_quic_random(buf, sizeof(buf));
        moq_quic_steer_mark(buf, s->worker, s->workers);
    } while (moq_quic_cid_table_get(&s->cids, buf, sizeof(buf)));
    ngtcp2_cid_init(cid, buf, sizeof(buf));
}

int moq_quic_server_new_cid(moq_quic_server *s, struct moq_quic_conn *c, ngtcp2_cid *cid,
                            uint8_t *token)
{
    fresh_cid(s, cid);
    int rv = moq_quic_cid_table_put(&s->cids, cid->data, cid->datalen, c);
    if (rv < 0) return rv;
    reset_token(s, cid->data, cid->datalen, token);
    return MOQ_OK;
}

void moq_quic_server_retire_cid(moq_quic_server *s, struct moq_quic_conn *c, const ngtcp2_cid *cid)
{
    moq_quic_cid_table_del(&s->cids, cid->data, cid->datalen, c);
}

int moq_quic_server_established(moq_quic_server *s, struct moq_quic_conn *c)
{
    half_open_done(s, c);
    if (!s->accept) return MOQ_ERR_UNSUPPORTED;
    if (s->tls_setup) c->t.peer_certified = moq_tls_peer_certified(c->tls, &c->t.peer_cert_expires);
    return s->accept(s->accept_ctx, (moq_transport *)c);
}

void moq_quic_server_forget(moq_quic_server *s, struct moq_quic_conn *c)
{
    ngtcp2_conn *nc = c->nc;
    if (nc) {
        size_t n = ngtcp2_conn_get_num_scid(nc);
        ngtcp2_cid *scids = n ? calloc(n, sizeof(*scids)) : NULL;
        if (scids) {
            n = ngtcp2_conn_get_scid(nc, scids);
            for (size_t i = 0; i < n; i++)
                moq_quic_cid_table_del(&s->cids, scids[i].data, scids[i].datalen, c);
            free(scids);
        }
    }
    moq_quic_cid_table_del(&s->cids, c->odcid.data, c->odcid.datalen, c);
    half_open_done(s, c);
    if (moq_list_linked(&c->link)) {
        moq_list_remove(&c->link);
        s->nconns--;
        moq_quic_limits_connection_give(s->limits);
    }
    if (c->creds_handle && s->creds_release) s->creds_release(s->creds_ctx, c->creds_handle);
}

static void send_version_negotiation(moq_quic_server *s, const struct moq_quic_udp_msg *m,
                                     const ngtcp2_version_cid *vc)
{
    /* Only full-size Initial-like datagrams, so we never amplify. */
    if (m->len < NGTCP2_MAX_UDP_PAYLOAD_SIZE || !take_response_token(s)) return;
    uint8_t buf[1 + 4 + 2 * (1 + 255) + 16];
    uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
    uint8_t unused;
    moq_quic_random(&unused, 1);
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
        buf, sizeof(buf), unused, vc->scid, vc->scidlen, vc->dcid, vc->dcidlen, versions, 1);
    if (n > 0) moq_quic_udp_send(s->ep.fd, &s->ep.gso, &m->local, &m->remote, buf, (size_t)n, 0);
}

static void send_stateless_reset(moq_quic_server *s, const struct moq_quic_udp_msg *m,
                                 const uint8_t *dcid, size_t dcidlen)
{
    /* Smaller than the trigger, so two endpoints can never loop on resets. */
    size_t len = m->len - 1;
    if (len > MAX_RESET_LEN) len = MAX_RESET_LEN;
    if (len < 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN) return;
    if (!take_response_token(s)) return;
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
    reset_token(s, dcid, dcidlen, token);
    uint8_t rand[MAX_RESET_LEN];
    size_t randlen = len - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
    moq_quic_random(rand, randlen);
    uint8_t buf[MAX_RESET_LEN];
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rand, randlen);
    if (n > 0) moq_quic_udp_send(s->ep.fd, &s->ep.gso, &m->local, &m->remote, buf, (size_t)n, 0);
}

static void refuse_initial(moq_quic_server *s, const struct moq_quic_udp_msg *m,
                           const ngtcp2_pkt_hd *hd, const char *reason)
{
    if (!take_response_token(s)) return;
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(
        buf, sizeof(buf), hd->version, &hd->scid, &hd->dcid, NGTCP2_CONNECTION_REFUSED,
        (const uint8_t *)reason, reason ? strlen(reason) : 0);
    if (n > 0) moq_quic_udp_send(s->ep.fd, &s->ep.gso, &m->local, &m->remote, buf, (size_t)n, 0);
}

/* Answer an Initial with a Retry carrying a token bound to the client's address and first
 * DCID; the client repeats its Initial with the token, proving it receives at that address. */
static void send_retry(moq_quic_server *s, const struct moq_quic_udp_msg *m,
                       const ngtcp2_pkt_hd *hd)
{
    if (!take_response_token(s)) return;
    ngtcp2_cid retry_scid;
    fresh_cid(s, &retry_scid);
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
    ngtcp2_ssize tokenlen = ngtcp2_crypto_generate_retry_token(
        token, s->secret, sizeof(s->secret), hd->version, (const ngtcp2_sockaddr *)&m->remote.ss,
        m->remote.len, &retry_scid, &hd->dcid, moq_now_ns());
    if (tokenlen < 0) return;
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, sizeof(buf), hd->version, &hd->scid,
                                               &retry_scid, &hd->dcid, token, (size_t)tokenlen);
    if (n <= 0) return;
    moq_quic_udp_send(s->ep.fd, &s->ep.gso, &m->local, &m->remote, buf, (size_t)n, 0);
    s->stats.retries_sent++;
}

/* An Initial's Retry token: 1 and *odcid when it verifies, 0 when there is none (or it is a
 * NEW_TOKEN token, which we never issue), -1 when it is forged, stale or from elsewhere. */
static int check_retry_token(moq_quic_server *s, const struct moq_quic_udp_msg *m,
                             const ngtcp2_pkt_hd *hd, ngtcp2_cid *odcid)
{
    if (hd->token.len == 0 || hd->token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) return 0;
    int rv = ngtcp2_crypto_verify_retry_token(odcid, hd->token.base, hd->token.len, s->secret,
                                              sizeof(s->secret), hd->version,
                                              (const ngtcp2_sockaddr *)&m->remote.ss, m->remote.len,
                                              &hd->dcid, RETRY_TOKEN_TIMEOUT, moq_now_ns());
    return rv == 0 ? 1 : -1;
}

static void refuse_full(moq_quic_server *s, const struct moq_quic_udp_msg *m,
                        const ngtcp2_pkt_hd *hd)
{
    char peer[64];
    moq_quic_addr_format(&m->remote, peer, sizeof(peer));
    s->stats.refused_full++;
    moq_info_repeat("refused QUIC connections", "quic",
                    "refused %s: connection limit (%zu) reached", peer,
                    moq_quic_limits_max_connections(s->limits));
    refuse_initial(s, m, hd, "server busy: connection limit reached");
}

static void refuse_half_open(moq_quic_server *s, const struct moq_quic_udp_msg *m,
                             const ngtcp2_pkt_hd *hd)
{
    char peer[64];
    moq_quic_addr_format(&m->remote, peer, sizeof(peer));
    s->stats.refused_half_open++;
    moq_info_repeat("refused QUIC connections", "quic",
                    "refused %s: %zu handshakes in progress from this address", peer,
                    moq_quic_limits_max_half_open(s->limits));
    refuse_initial(s, m, hd, "too many handshakes from this address");
}

/* Give back the connection slot and the handshake count an Initial took. */
static void admission_undo(moq_quic_server *s, uint64_t key)
{
    s->stats.half_open--;
    moq_quic_limits_half_open_done(s->limits, key);
    moq_quic_limits_connection_give(s->limits);
}

static void accept_initial(moq_quic_server *s, const struct moq_quic_udp_msg *m)
{
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, m->data, m->len) != 0) return;
    if (hd.dcid.datalen < NGTCP2_MIN_INITIAL_DCIDLEN) return;
    char peer[64];
    if (moq_quic_limits_connections(s->limits) >= moq_quic_limits_max_connections(s->limits)) {
        refuse_full(s, m, &hd);
        return;
    }
    ngtcp2_cid odcid;
    int validated = check_retry_token(s, m, &hd, &odcid);
    if (validated < 0) {
        s->stats.retry_invalid++;
        return; /* RFC 9000 8.1.3: a bad Retry token may be dropped */
    }
    if (!validated && !moq_quic_limits_handshake_token(s->limits, moq_now_us())) {
        send_retry(s, m, &hd);
        return;
    }
    uint64_t key = address_key(&m->remote);
    if (moq_quic_limits_half_open(s->limits, key) >= moq_quic_limits_max_half_open(s->limits)) {
        refuse_half_open(s, m, &hd);
        return;
    }
    if (!moq_quic_limits_connection_take(s->limits)) { /* another worker took the last slot */
        refuse_full(s, m, &hd);
        return;
    }
    if (!half_open_take(s, key)) {
        moq_quic_limits_connection_give(s->limits);
        refuse_half_open(s, m, &hd);
        return;
    }
    gnutls_certificate_credentials_t creds = NULL;
    void *handle = s->creds_acquire ? s->creds_acquire(s->creds_ctx, &creds) : NULL;
    if (!handle || !creds) {
        moq_quic_addr_format(&m->remote, peer, sizeof(peer));
        moq_warn_repeat("refused QUIC connections", "quic",
                        "refused %s: no TLS credentials available", peer);
        if (handle && s->creds_release) s->creds_release(s->creds_ctx, handle);
        admission_undo(s, key);
        refuse_initial(s, m, &hd, NULL);
        return;
    }
    ngtcp2_cid scid;
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
    fresh_cid(s, &scid);
    reset_token(s, scid.data, scid.datalen, token);
    struct moq_quic_conn *c = moq_quic_conn_new_server_validated(
        &s->ep, &hd, validated ? &odcid : NULL, &m->local, &m->remote, &scid, token, creds, handle,
        (const char *const *)s->alpn, s->alpn_count);
    if (!c) {
        if (s->creds_release) s->creds_release(s->creds_ctx, handle);
        admission_undo(s, key);
        return;
    }
    if (s->tls_setup) s->tls_setup(s->creds_ctx, c->tls);
    moq_list_push_back(&s->conns, &c->link); /* holds the connection slot taken above */
    s->nconns++;
    c->addr_key = key;
    c->half_open = true;
    if (moq_quic_cid_table_put(&s->cids, scid.data, scid.datalen, c) < 0) {
        moq_quic_conn_free(c);
        return;
    }
    /* The client keeps using its first DCID until it hears from us; EXISTS is harmless. */
    moq_quic_cid_table_put(&s->cids, hd.dcid.data, hd.dcid.datalen, c);
    if (s->ep.tc.keep_alive_ms)
        ngtcp2_conn_set_keep_alive_timeout(c->nc, s->ep.tc.keep_alive_ms * NGTCP2_MILLISECONDS);
    moq_quic_conn_read(c, &m->local, &m->remote, m->data, m->len);
}

static void handle_datagram(moq_quic_server *s, const struct moq_quic_udp_msg *m)
{
    ngtcp2_version_cid vc;
    int rv = ngtcp2_pkt_decode_version_cid(&vc, m->data, m->len, MOQ_QUIC_SCIDLEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        send_version_negotiation(s, m, &vc);
        return;
    }
    if (rv != 0) return;
    struct moq_quic_conn *c = moq_quic_cid_table_get(&s->cids, vc.dcid, vc.dcidlen);
    if (c) {
        moq_quic_conn_read(c, &m->local, &m->remote, m->data, m->len);
        return;
    }
    if (m->data[0] & 0x80)
        accept_initial(s, m);
    else
        send_stateless_reset(s, m, vc.dcid, vc.dcidlen);
}

static void server_readable(moq_quic_endpoint *ep)
{
    moq_quic_server *s = ep->server;
    for (int round = 0; round < READ_ROUNDS; round++) {
        int n = moq_quic_udp_recv(&ep->rx, ep->fd, &ep->bound);
        if (n <= 0) return;
        for (int i = 0; i < n; i++)
            handle_datagram(s, &ep->rx.msgs[i]);
        if ((size_t)n < ep->rx.slots) return;
    }
}

static void free_alpn(moq_quic_server *s)
{
    for (size_t i = 0; i < s->alpn_count; i++)
        free(s->alpn[i]);
    free(s->alpn);
    s->alpn = NULL;
    s->alpn_count = 0;
}

static int copy_alpn(moq_quic_server *s, const struct moq_quic_server_config *cfg)
{
    if (cfg->alpn_count == 0 || cfg->alpn_count > MOQ_QUIC_MAX_ALPN) return MOQ_ERR_CONFIG;
    s->alpn = calloc(cfg->alpn_count, sizeof(*s->alpn));
    if (!s->alpn) return MOQ_ERR_NOMEM;
    for (size_t i = 0; i < cfg->alpn_count; i++) {
        size_t len = cfg->alpn[i] ? strlen(cfg->alpn[i]) : 0;
        if (len == 0 || len > 255) return MOQ_ERR_CONFIG;
        s->alpn[i] = strdup(cfg->alpn[i]);
        if (!s->alpn[i]) return MOQ_ERR_NOMEM;
        s->alpn_count = i + 1;
    }
    return MOQ_OK;
}

/* The budgets shared with the other listeners of the port, or our own. */
static int use_limits(moq_quic_server *s, const struct moq_quic_server_config *cfg)
{
    if (cfg->limits) {
        s->limits = cfg->limits;
        return MOQ_OK;
    }
    struct moq_quic_limits_config lc = {
        .max_connections = cfg->max_connections,
        .max_half_open = cfg->max_half_open_per_address,
        .handshake_rate = cfg->retry_above_rate,
        .response_rate = MOQ_QUIC_DEFAULT_RESPONSE_RATE,
    };
    s->limits = moq_quic_limits_new(&lc);
    s->owns_limits = true;
    return s->limits ? MOQ_OK : MOQ_ERR_NOMEM;
}

int moq_quic_server_new(struct ev_loop *loop, const struct moq_quic_server_config *cfg,
                        moq_quic_server **out)
{
    moq_quic_addr addr, bound;
    if (!cfg || !loop || !out) return MOQ_ERR_INVALID;
    int rv = moq_quic_udp_parse_listen(cfg->listen, &addr);
    if (rv < 0) {
        moq_error("quic", "invalid listen address \"%s\"", cfg->listen ? cfg->listen : "");
        return rv;
    }
    moq_quic_server *s = calloc(1, sizeof(*s));
    if (!s) return MOQ_ERR_NOMEM;
    s->ep.fd = -1;
    rv = copy_alpn(s, cfg);
    if (rv < 0) {
        moq_error("quic", "invalid ALPN list");
        free_alpn(s);
        free(s);
        return rv;
    }
    if (cfg->port) moq_quic_addr_set_port(&addr, cfg->port);
    bool shared = cfg->workers > 1;
    int fd;
    rv = shared && cfg->worker == 0 ? moq_quic_udp_claim(&addr) : MOQ_OK;
    if (rv == 0) rv = moq_quic_udp_listen_shared(&addr, shared, &fd, &bound);
    if (rv == 0 && shared && cfg->worker == 0 && moq_quic_steer_attach(fd, cfg->workers) < 0) {
        int e = errno;
        moq_error("quic", "cannot attach the worker steering program: %s", strerror(e));
        close(fd);
        errno = e;
        rv = MOQ_ERR_IO;
    }
    if (rv < 0) {
        free_alpn(s);
        free(s);
        return rv;
    }
    if (shared) {
        s->worker = cfg->worker;
        s->workers = cfg->workers;
    }
    rv = moq_quic_endpoint_init(&s->ep, loop, fd, SERVER_RX_SLOTS, &cfg->transport);
    if (rv < 0) {
        moq_quic_endpoint_close(&s->ep);
        free_alpn(s);
        free(s);
        return rv;
    }
    s->ep.bound = bound;
    s->ep.is_server = true;
    s->ep.server = s;
    s->ep.on_readable = server_readable;
    s->creds_acquire = cfg->creds_acquire;
    s->creds_release = cfg->creds_release;
    s->creds_ctx = cfg->creds_ctx;
    s->tls_setup = cfg->tls_setup;
    s->accept = cfg->accept;
    s->accept_ctx = cfg->accept_ctx;
    if (use_limits(s, cfg) < 0) {
        moq_quic_endpoint_close(&s->ep);
        free_alpn(s);
        free(s);
        return MOQ_ERR_NOMEM;
    }
    if (cfg->reset_secret)
        memcpy(s->secret, cfg->reset_secret, SECRET_LEN);
    else
        moq_quic_random(s->secret, SECRET_LEN);
    uint8_t hash_key[16];
    moq_quic_random(hash_key, sizeof(hash_key));
    moq_quic_cid_table_init(&s->cids, hash_key);
    moq_list_init(&s->conns);
    moq_quic_endpoint_start(&s->ep);

    char text[80];
    moq_quic_addr_format(&bound, text, sizeof(text));
    if (s->worker == 0)
        moq_info("quic", "listening on %s (udp)", text);
    else
        moq_debug("quic", "worker %u listening on %s (udp) too", s->worker, text);
    *out = s;
    return MOQ_OK;
}

uint16_t moq_quic_server_port(const moq_quic_server *s)
{
    if (s->ep.bound.ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&s->ep.bound.ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&s->ep.bound.ss)->sin6_port);
}

size_t moq_quic_server_connection_count(const moq_quic_server *s)
{
    return s->nconns;
}

void moq_quic_server_stats_get(const moq_quic_server *s, struct moq_quic_server_stats *out)
{
    *out = s->stats;
    out->connections = s->nconns;
    out->memory_bytes = 0;
    for (const moq_list *pos = s->conns.next; pos != &s->conns; pos = pos->next)
        out->memory_bytes += moq_container_of(pos, struct moq_quic_conn, link)->arena.bytes;
}

void moq_quic_server_free(moq_quic_server *s)
{
    if (!s) return;
    while (!moq_list_empty(&s->conns))
        moq_quic_conn_shutdown(moq_list_first(&s->conns, struct moq_quic_conn, link));
    moq_quic_endpoint_close(&s->ep);
    moq_quic_cid_table_free(&s->cids);
    if (s->owns_limits) moq_quic_limits_free(s->limits);
    free_alpn(s);
    free(s);
}
