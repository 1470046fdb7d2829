/*
 * tls.c - GnuTLS sessions for QUIC connections: TLS 1.3 priorities, ALPN (server preference,
 * refusal of clients offering none of ours, the offered list kept for the log, and more
 * protocols than the 8 GnuTLS takes per session: each server handshake gives it those the
 * client offered), SNI and the client's tls_setup hook.
 */
#include "quic/internal.h"
#include "util/err.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdio.h>
#include <string.h>

const char moq_quic_tls_priority[] =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"
    "+AES-256-GCM:+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1";

/* Parsed once and shared by every session: a private copy costs each connection 8 kB. */
static gnutls_priority_t shared_priority;
static pthread_once_t shared_priority_once = PTHREAD_ONCE_INIT;

static void shared_priority_init(void)
{
    if (gnutls_priority_init(&shared_priority, moq_quic_tls_priority, NULL) != 0)
        shared_priority = NULL;
}

static int set_priority(gnutls_session_t s)
{
    pthread_once(&shared_priority_once, shared_priority_init);
    if (!shared_priority) return -1;
    return gnutls_priority_set(s, shared_priority);
}

void moq_quic_copy_printable(char *dst, size_t cap, const uint8_t *src, size_t len)
{
    if (len >= cap) len = cap - 1;
    for (size_t i = 0; i < len; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
    dst[len] = '\0';
}

void moq_quic_tls_set_protocol(struct moq_quic_conn *c)
{
    gnutls_datum_t alpn;
    c->t.protocol[0] = '\0';
    if (gnutls_alpn_get_selected_protocol(c->tls, &alpn) == 0) {
        size_t n = alpn.size < sizeof(c->t.protocol) - 1 ? alpn.size : sizeof(c->t.protocol) - 1;
        moq_quic_copy_printable(c->t.protocol, n + 1, alpn.data, n);
    }
    c->t.kind = strcmp(c->t.protocol, "h3") == 0 ? MOQ_TRANSPORT_H3 : MOQ_TRANSPORT_QUIC;
}

struct alpn_scan {
    char *out;
    size_t cap;
};

static int scan_client_ext(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
    struct alpn_scan *scan = ctx;
    if (tls_id != 16 || size < 2) return 0;
    size_t listlen = ((size_t)data[0] << 8) | data[1];
    if (listlen + 2 > size) return 0;
    size_t used = 0;
    for (size_t i = 2; i < listlen + 2;) {
        size_t n = data[i++];
        if (i + n > listlen + 2) break;
        if (used + n + 3 >= scan->cap) break;
        if (used) {
            memcpy(scan->out + used, ", ", 2);
            used += 2;
        }
        moq_quic_copy_printable(scan->out + used, n + 1, data + i, n);
        used += n;
        i += n;
    }
    scan->out[used] = '\0';
    return 0;
}

/* GnuTLS takes at most this many ALPN protocols per session. */
#define GNUTLS_ALPN_MAX 8

struct alpn_match {
    const struct moq_quic_conn *c;
    const char *picked[GNUTLS_ALPN_MAX];
    size_t n;
};

/* Ours that the client offered, in our order (at most GNUTLS_ALPN_MAX). */
static int match_client_alpn(void *ctx, unsigned tls_id, const unsigned char *data, unsigned size)
{
    struct alpn_match *m = ctx;
    if (tls_id != 16 || size < 2) return 0;
    size_t listlen = ((size_t)data[0] << 8) | data[1];
    if (listlen + 2 > size) return 0;
    for (size_t k = 0; k < m->c->server_alpn_count && m->n < GNUTLS_ALPN_MAX; k++) {
        const char *ours = m->c->server_alpn[k];
        size_t len = strlen(ours);
        for (size_t i = 2; i < listlen + 2;) {
            size_t n = data[i++];
            if (i + n > listlen + 2) break;
            if (n == len && memcmp(data + i, ours, len) == 0) {
                m->picked[m->n++] = ours;
                break;
            }
            i += n;
        }
    }
    return 0;
}

static int set_alpn(gnutls_session_t s, const char *const *alpn, size_t n, unsigned flags);

static int client_hello_hook(gnutls_session_t session, unsigned htype, unsigned when,
                             unsigned incoming, const gnutls_datum_t *msg)
{
    ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
    struct moq_quic_conn *c = ref->user_data;
    (void)htype;
    (void)incoming;
    if (when == GNUTLS_HOOK_PRE) {
        struct alpn_scan scan = {c->offered_alpn, sizeof(c->offered_alpn)};
        snprintf(c->offered_alpn, sizeof(c->offered_alpn), "none");
        gnutls_ext_raw_parse(&scan, scan_client_ext, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
        /* we may speak more protocols than GnuTLS takes: offer it those the client named */
        struct alpn_match m = {.c = c};
        gnutls_ext_raw_parse(&m, match_client_alpn, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
        if (m.n)
            set_alpn(session, m.picked, m.n, GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE);
        return 0;
    }
    /* GnuTLS refuses a mismatching ALPN list itself; this catches a client offering none. */
    gnutls_datum_t alpn;
    if (gnutls_alpn_get_selected_protocol(session, &alpn) != 0)
        return GNUTLS_E_NO_APPLICATION_PROTOCOL;
    return 0;
}

static int set_alpn(gnutls_session_t s, const char *const *alpn, size_t n, unsigned flags)
{
    gnutls_datum_t d[GNUTLS_ALPN_MAX];
    if (n > GNUTLS_ALPN_MAX) n = GNUTLS_ALPN_MAX;
    for (size_t i = 0; i < n; i++) {
        d[i].data = (unsigned char *)alpn[i];
        d[i].size = (unsigned)strlen(alpn[i]);
    }
    return gnutls_alpn_set_protocols(s, d, (unsigned)n, flags);
}

int moq_quic_tls_server_init(struct moq_quic_conn *c, gnutls_certificate_credentials_t creds,
                             const char *const *alpn, size_t alpn_count)
{
    if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NO_END_OF_EARLY_DATA) != 0) {
        c->tls = NULL;
        return MOQ_ERR_TLS;
    }
    if (set_priority(c->tls) != 0) return MOQ_ERR_TLS;
    gnutls_handshake_set_hook_function(c->tls, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_BOTH,
                                       client_hello_hook);
    if (ngtcp2_crypto_gnutls_configure_server_session(c->tls) != 0) return MOQ_ERR_TLS;
    gnutls_session_set_ptr(c->tls, &c->ref);
    if (gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, creds) != 0) return MOQ_ERR_TLS;
    c->server_alpn = alpn;
    c->server_alpn_count = alpn_count;
    if (set_alpn(c->tls, alpn, alpn_count, GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE) !=
        0)
        return MOQ_ERR_TLS;
    ngtcp2_conn_set_tls_native_handle(c->nc, c->tls);
    return MOQ_OK;
}

static bool is_ip_literal(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

int moq_quic_tls_client_init(struct moq_quic_conn *c, const struct moq_quic_client_config *cfg)
{
    if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) != 0) {
        c->tls = NULL;
        return MOQ_ERR_TLS;
    }
    if (set_priority(c->tls) != 0) return MOQ_ERR_TLS;
    if (ngtcp2_crypto_gnutls_configure_client_session(c->tls) != 0) return MOQ_ERR_TLS;
    gnutls_session_set_ptr(c->tls, &c->ref);
    if (!is_ip_literal(cfg->host) &&
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, cfg->host, strlen(cfg->host)) != 0)
        return MOQ_ERR_TLS;
    if (set_alpn(c->tls, cfg->alpn, cfg->alpn_count, 0) != 0) return MOQ_ERR_TLS;
    if (cfg->tls_setup && cfg->tls_setup(cfg->tls_ctx, c->tls, cfg->host) < 0) return MOQ_ERR_TLS;
    ngtcp2_conn_set_tls_native_handle(c->nc, c->tls);
    return MOQ_OK;
}
