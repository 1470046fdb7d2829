/* Dialing a moq-lite server by URL: optional fingerprint fetch (http://), QUIC handshake,
 * optional WebTransport CONNECT (https://), then a session of the engine on the result. */
#include "client/client.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "h3/h3.h"
#include "ietf/version.h"
#include "moq/version.h"
#include "util/defer.h"
#include "util/err.h"
#include "util/ev_deadline.h"
#include "util/log.h"
#include "util/strlist.h"
#include "util/url.h"

enum dial_phase {
    P_FINGERPRINT, /* GET /certificate.sha256 */
    P_QUIC,        /* QUIC handshake */
    P_H3,          /* WebTransport CONNECT */
    P_WS,          /* WebSocket upgrade */
    P_SESSION,     /* the moq session runs */
    P_ENDED,       /* `closed` reported or about to be */
};

struct moq_dial {
    struct ev_loop *loop;
    enum dial_phase phase;
    char *url_text;
    moq_url url;
    bool webtransport;
    bool websocket;
    char authority[300];
    char *target; /* "/path?query" */
    moq_strlist versions;
    int compat_version; /* moq-lite-01/02 offered in the compat SETUP ("moql"), or 0 */
    moq_strlist publish, subscribe;
    moq_strlist roots, fingerprints;
    bool disable_verify;
    enum moq_tls_system_roots system_roots;
    char *cert, *key; /* mTLS identity, or NULL */
    struct moq_quic_transport_config transport;
    moq_origin *origin;
    uint64_t max_frame_bytes;
    void (*connected)(void *ctx, moq_dial *d, moq_session *s);
    void (*upstream)(void *ctx, moq_dial *d, moq_session *s, const uint8_t *path, size_t len,
                     const uint64_t *hops, size_t nhops, bool active);
    void (*announce_refused)(void *ctx, moq_dial *d, const char *prefix);
    void (*event)(void *ctx, moq_dial *d, const struct moq_session_event *ev);
    void (*closed)(void *ctx, moq_dial *d, int err, uint64_t code, const char *reason);
    void *ctx;
    char *tls_hint;

    moq_tls_client *tls;
    const moq_tls_client *shared_tls; /* the config's tls_client, when given */
    gnutls_session_t tls_session;     /* of the QUIC handshake in progress */
    moq_http_get *get;
    moq_quic_client *qc;
    moq_ws_client *wsc;  /* the WebSocket handshake in progress */
    moq_transport *quic; /* the h3 connection while the CONNECT is pending */
    bool h3_pending;     /* moq_h3_client_attach's callback has not run yet */
    moq_session *s;
    moq_ev_deadline session_timer; /* the session's next deadline */
    ev_timer timeout;
    moq_defer reap; /* reports a failed attempt and frees the dial, from the loop */
    bool reported;
    int end_err;
    uint64_t end_code;
    char end_reason[640];
};

/* ---------------------------------------------------------------- teardown */

static void dial_free(moq_dial *d)
{
    moq_ev_deadline_stop(&d->session_timer);
    ev_timer_stop(d->loop, &d->timeout);
    moq_defer_fini(&d->reap);
    if (d->get) moq_http_get_cancel(d->get);
    if (d->qc) moq_quic_connect_cancel(d->qc);
    if (d->wsc) moq_ws_connect_cancel(d->wsc);
    moq_tls_client_free(d->tls);
    moq_url_free(&d->url);
    free(d->url_text);
    free(d->target);
    free(d->tls_hint);
    free(d->cert);
    free(d->key);
    moq_strlist_free(&d->versions);
    moq_strlist_free(&d->publish);
    moq_strlist_free(&d->subscribe);
    moq_strlist_free(&d->roots);
    moq_strlist_free(&d->fingerprints);
    free(d);
}

static void report(moq_dial *d)
{
    if (d->reported) return;
    d->reported = true;
    d->closed(d->ctx, d, d->end_err, d->end_code, d->end_reason);
}

static void reap_cb(moq_defer *w)
{
    moq_dial *d = w->data;
    report(d);
    if (!d->h3_pending) dial_free(d);
}

/* The attempt failed (or was cancelled) before a session ran: report it from the loop. */
static void attempt_failed(moq_dial *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void attempt_failed(moq_dial *d, int err, const char *fmt, ...)
{
    if (d->phase == P_ENDED) return;
    enum dial_phase was = d->phase;
    d->phase = P_ENDED;
    d->end_err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->end_reason, sizeof(d->end_reason), fmt, ap);
    va_end(ap);
    ev_timer_stop(d->loop, &d->timeout);
    if (d->get) {
        moq_http_get_cancel(d->get);
        d->get = NULL;
    }
    if (d->qc) {
        moq_quic_connect_cancel(d->qc);
        d->qc = NULL;
    }
    if (d->wsc) {
        moq_ws_connect_cancel(d->wsc);
        d->wsc = NULL;
    }
    if (was == P_H3 && d->h3_pending && d->quic) {
        /* the CONNECT callback still comes (with an error); the dial waits for it */
        moq_transport_close(d->quic, 0, "cancelled");
        d->quic = NULL;
    }
    moq_debug("client", "%s: %s", d->url_text, d->end_reason);
    moq_defer_schedule(&d->reap);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    moq_dial *d = w->data;
    static const char *const what[] = {"fetching the certificate fingerprint", "the QUIC handshake",
                                       "the WebTransport CONNECT", "the WebSocket upgrade"};
    attempt_failed(d, MOQ_ERR_TIMEOUT, "timed out during %s with %s",
                   d->phase <= P_WS ? what[d->phase] : "setup", d->authority);
}

/* ---------------------------------------------------------------- the session */

static int copy_list(moq_strlist *dst, const moq_strlist *src)
{
    for (size_t i = 0; i < src->len; i++)
        if (moq_strlist_push(dst, src->v[i]) < 0) return MOQ_ERR_NOMEM;
    return 0;
}

static uint64_t session_authorize(void *ctx, moq_session *s, const char *path, int role,
                                  moq_perms *perms)
{
    moq_dial *d = ctx;
    perms->root = strdup("");
    if (!perms->root || copy_list(&perms->publish, &d->publish) < 0 ||
        copy_list(&perms->subscribe, &d->subscribe) < 0)
        return 4; /* moq-lite Transport: we cannot proceed */
    return 0;
}

static void session_timer(void *ctx, moq_session *s, uint64_t at)
{
    moq_dial *d = ctx;
    moq_ev_deadline_set(&d->session_timer, at);
}

static void session_timer_fired(void *ctx, uint64_t now)
{
    moq_dial *d = ctx;
    if (d->s) moq_session_on_timer(d->s, now);
}

static void session_closed(void *ctx, moq_session *s, uint64_t code, const char *reason)
{
    moq_dial *d = ctx;
    moq_ev_deadline_stop(&d->session_timer);
    d->phase = P_ENDED;
    d->s = NULL;
    d->end_err = 0;
    d->end_code = code;
    snprintf(d->end_reason, sizeof(d->end_reason), "%s", reason ? reason : "");
    report(d);
    /* The transport is freed after this event; our TLS state must outlive it. */
    moq_defer_schedule(&d->reap);
}

static void session_upstream(void *ctx, moq_session *s, const uint8_t *path, size_t len,
                             const uint64_t *hops, size_t nhops, bool active)
{
    moq_dial *d = ctx;
    if (d->upstream) d->upstream(d->ctx, d, s, path, len, hops, nhops, active);
}

static void session_announce_refused(void *ctx, moq_session *s, const char *prefix)
{
    moq_dial *d = ctx;
    if (d->announce_refused) d->announce_refused(d->ctx, d, prefix);
}

static void session_event(void *ctx, moq_session *s, const struct moq_session_event *ev)
{
    moq_dial *d = ctx;
    if (d->event) d->event(d->ctx, d, ev);
}

static void start_session(moq_dial *d, moq_transport *t)
{
    if (!t->protocol[0]) {
        moq_transport_close(t, 21, "no moq-lite version agreed");
        attempt_failed(d, MOQ_ERR_UNSUPPORTED,
                       "%s accepted the connection but agreed on no moq-lite version",
                       d->authority);
        return;
    }
    struct moq_session_config sc = {
        .origin = d->origin,
        .clock = &moq_system_clock,
        .timer = session_timer,
        .setup_path = d->webtransport || d->websocket ? NULL : d->target,
        .compat_version = d->compat_version,
        .max_frame_bytes = d->max_frame_bytes,
        .authorize = session_authorize,
        .upstream = session_upstream,
        .announce_refused = session_announce_refused,
        .event = session_event,
        .closed = session_closed,
        .ctx = d,
    };
    char protocol[sizeof(t->protocol)];
    memcpy(protocol, t->protocol, sizeof(protocol));
    d->phase = P_SESSION;
    ev_timer_stop(d->loop, &d->timeout);
    moq_session *s = moq_session_new(t, &sc);
    if (!s) {
        d->phase = P_QUIC; /* let attempt_failed report it */
        attempt_failed(d, MOQ_ERR_UNSUPPORTED, "%s selected an unsupported protocol '%s'",
                       d->authority, protocol);
        return;
    }
    d->s = s;
    moq_info("client", "connected to %s over %s (%s)", d->url_text, moq_dial_transport_name(d),
             protocol);
    if (d->connected && d->phase == P_SESSION) d->connected(d->ctx, d, s);
}

/* ---------------------------------------------------------------- WebTransport */

static void h3_done(void *ctx, moq_transport *t, int err, int status)
{
    moq_dial *d = ctx;
    d->h3_pending = false;
    d->quic = NULL;
    if (d->phase == P_ENDED) {
        /* timed out or cancelled meanwhile; an unattached session closes itself */
        if (d->reported) dial_free(d);
        return;
    }
    if (err < 0 || !t) {
        if (status)
            attempt_failed(d, err < 0 ? err : MOQ_ERR_PROTO,
                           "WebTransport CONNECT to %s%s refused with HTTP status %d", d->authority,
                           d->target, status);
        else
            attempt_failed(d, err < 0 ? err : MOQ_ERR_CLOSED,
                           "WebTransport CONNECT to %s%s failed: %s", d->authority, d->target,
                           moq_strerror(err < 0 ? err : MOQ_ERR_CLOSED));
        return;
    }
    start_session(d, t);
}

/* ---------------------------------------------------------------- WebSocket */

static void ws_done(void *ctx, moq_transport *t, int err, const char *reason)
{
    moq_dial *d = ctx;
    d->wsc = NULL;
    if (!t) {
        attempt_failed(d, err, "%s", reason ? reason : moq_strerror(err));
        return;
    }
    start_session(d, t);
}

static int begin_ws(moq_dial *d, char *err, size_t errlen)
{
    bool tls = strcmp(d->url.scheme, "wss") == 0;
    struct moq_ws_client_config wc = {
        .host = d->url.host,
        .port = d->url.port,
        .authority = d->authority,
        .target = d->target,
        .versions = (const char *const *)d->versions.v,
        .n_versions = d->versions.len,
        .tls = !tls     ? NULL
               : d->tls ? d->tls
                        : d->shared_tls,
    };
    d->phase = P_WS;
    int rv = moq_ws_connect(d->loop, &wc, ws_done, d, &d->wsc);
    if (rv < 0) {
        d->wsc = NULL;
        if (rv == MOQ_ERR_NOT_FOUND)
            snprintf(err, errlen, "cannot resolve %s", d->url.host);
        else
            snprintf(err, errlen, "cannot connect to %s: %s", d->authority, moq_strerror(rv));
    }
    return rv;
}

/* ---------------------------------------------------------------- QUIC */

static int tls_setup(void *ctx, gnutls_session_t s, const char *hostname)
{
    moq_dial *d = ctx;
    const moq_tls_client *tls = d->tls ? d->tls : d->shared_tls;
    d->tls_session = s;
    return moq_tls_client_setup_session(tls, s, hostname) < 0 ? -1 : 0;
}

static void quic_done(void *ctx, moq_transport *t, int err, const char *reason)
{
    moq_dial *d = ctx;
    d->qc = NULL;
    /* The handshake's TLS session lives until this callback returns. */
    char refused[256] = "";
    if (d->tls_session && err == MOQ_ERR_TLS)
        moq_tls_client_verify_error(d->tls_session, refused, sizeof(refused));
    d->tls_session = NULL;
    size_t n = strlen(refused);
    while (n && (refused[n - 1] == ' ' || refused[n - 1] == '.'))
        refused[--n] = '\0';
    if (!t && n) {
        attempt_failed(d, err,
                       "cannot connect to %s over QUIC: the server's certificate is not "
                       "trusted (%s)%s%s",
                       d->authority, refused, d->tls_hint ? "; " : "",
                       d->tls_hint ? d->tls_hint : "");
        return;
    }
    if (!t) {
        attempt_failed(d, err, "cannot connect to %s over QUIC: %s", d->authority,
                       reason ? reason : moq_strerror(err));
        return;
    }
    if (!d->webtransport) {
        start_session(d, t);
        return;
    }
    const char *offer[MOQ_QUIC_MAX_ALPN];
    for (size_t i = 0; i < d->versions.len; i++)
        offer[i] = d->versions.v[i];
    struct moq_h3_client_config hc = {
        .authority = d->authority,
        .path = d->target,
        .protocols = offer,
        .n_protocols = d->versions.len,
        .done = h3_done,
        .ctx = d,
    };
    struct moq_h3_driver drv;
    int rv = moq_h3_loop_driver(d->loop, &drv);
    if (rv < 0) {
        moq_transport_close(t, 0, "out of memory");
        attempt_failed(d, rv, "cannot start HTTP/3 with %s: %s", d->authority, moq_strerror(rv));
        return;
    }
    d->phase = P_H3;
    d->quic = t;
    d->h3_pending = true;
    rv = moq_h3_client_attach(t, &drv, &hc);
    if (rv < 0) {
        d->h3_pending = false;
        d->quic = NULL;
        attempt_failed(d, rv, "cannot start HTTP/3 with %s: %s", d->authority, moq_strerror(rv));
    }
}

static int make_tls(moq_dial *d, char *err, size_t errlen)
{
    moq_tls_client_config tc = {
        .disable_verify = d->disable_verify,
        .roots = (const char *const *)d->roots.v,
        .n_roots = d->roots.len,
        .system_roots = d->system_roots,
        .fingerprints = (const char *const *)d->fingerprints.v,
        .n_fingerprints = d->fingerprints.len,
        .cert = d->cert,
        .key = d->key,
    };
    moq_tls_client_free(d->tls);
    d->tls = NULL;
    return moq_tls_client_new(&tc, &d->tls, err, errlen);
}

/* Start the QUIC handshake. Returns 0 or an error with a message in err. */
static int begin_quic(moq_dial *d, char *err, size_t errlen)
{
    const char *alpn[MOQ_QUIC_MAX_ALPN];
    size_t n = 0;
    if (d->webtransport) {
        alpn[n++] = "h3";
    } else {
        for (size_t i = 0; i < d->versions.len; i++)
            alpn[n++] = d->versions.v[i];
    }
    struct moq_quic_client_config qc = {
        .host = d->url.host,
        .port = d->url.port,
        .alpn = alpn,
        .alpn_count = n,
        .tls_setup = tls_setup,
        .tls_ctx = d,
        .transport = d->transport,
    };
    d->phase = P_QUIC;
    int rv = moq_quic_connect(d->loop, &qc, quic_done, d, &d->qc);
    if (rv == MOQ_ERR_NOT_FOUND) {
        d->qc = NULL;
        snprintf(err, errlen, "cannot resolve %s", d->url.host);
    } else if (rv < 0) {
        d->qc = NULL;
        snprintf(err, errlen, "cannot dial %s over QUIC: %s", d->authority, moq_strerror(rv));
    }
    return rv;
}

/* ---------------------------------------------------------------- fingerprint */

static void fingerprint_done(void *ctx, int err, int status, const uint8_t *body, size_t len,
                             const char *reason)
{
    moq_dial *d = ctx;
    d->get = NULL;
    if (err < 0) {
        attempt_failed(d, err, "fetching http://%s/certificate.sha256: %s", d->authority, reason);
        return;
    }
    if (status != 200) {
        attempt_failed(d, MOQ_ERR_NOT_FOUND,
                       "fetching http://%s/certificate.sha256: HTTP status %d", d->authority,
                       status);
        return;
    }
    char hex[160];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (isspace(body[i])) continue;
        if (n + 1 >= sizeof(hex)) break;
        hex[n++] = (char)body[i];
    }
    hex[n] = '\0';
    uint8_t raw[MOQ_TLS_FINGERPRINT_LEN];
    if (n >= sizeof(hex) - 1 || moq_tls_fingerprint_parse(hex, raw) < 0) {
        attempt_failed(d, MOQ_ERR_PROTO,
                       "http://%s/certificate.sha256 is not a SHA-256 fingerprint", d->authority);
        return;
    }
    moq_debug("client", "%s: pinning certificate %s", d->authority, hex);
    moq_strlist_free(&d->fingerprints);
    moq_strlist_free(&d->roots);
    d->disable_verify = false;
    d->system_roots = MOQ_TLS_SYSTEM_ROOTS_AUTO;
    char msg[256] = "";
    if (moq_strlist_push(&d->fingerprints, hex) < 0) {
        attempt_failed(d, MOQ_ERR_NOMEM, "out of memory");
        return;
    }
    int rv = make_tls(d, msg, sizeof(msg));
    if (rv == 0) rv = begin_quic(d, msg, sizeof(msg));
    if (rv < 0) attempt_failed(d, rv, "%s", msg[0] ? msg : moq_strerror(rv));
}

/* ---------------------------------------------------------------- public */

static int copy_array(moq_strlist *dst, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!v[i] || moq_strlist_push(dst, v[i]) < 0) return v[i] ? MOQ_ERR_NOMEM : MOQ_ERR_INVALID;
    return 0;
}

/* The ALPN of a version to offer: a moq-lite ALPN, "moql" for moq-lite-01/02 (offered in
 * the compat SETUP), an IETF draft's ALPN ("moqt-17") or name ("moq-transport-17"); NULL
 * when we do not speak it. */
static const char *version_alpn(const char *v)
{
    if (!v) return NULL;
    if (moq_version_from_alpn(v, strlen(v)) > 0) return v;
    int lite = moq_version_from_name(v);
    if (lite > 0 && moq_caps_get((moq_version)lite)->compat_setup) return MOQ_COMPAT_ALPN;
    const moq_ietf_caps *c = moq_ietf_caps_from_alpn(v, strlen(v));
    if (!c) c = moq_ietf_caps_from_name(v);
    return c ? c->alpn : NULL;
}

static int take_config(moq_dial *d, const struct moq_dial_config *cfg, char *err, size_t errlen)
{
    if (moq_url_parse(cfg->url, &d->url) < 0) {
        snprintf(err, errlen, "invalid URL '%s'", cfg->url);
        return MOQ_ERR_INVALID;
    }
    const char *scheme = d->url.scheme;
    bool http = strcmp(scheme, "http") == 0;
    if (strcmp(scheme, "moql") == 0 || strcmp(scheme, "moqt") == 0) {
        d->webtransport = false;
    } else if (strcmp(scheme, "ws") == 0 || strcmp(scheme, "wss") == 0) {
        d->websocket = true;
    } else if (strcmp(scheme, "https") == 0 || http) {
        d->webtransport = !(http && cfg->raw_quic);
    } else {
        snprintf(err, errlen,
                 "unsupported URL scheme '%s' (use moql://, https://, http://, ws:// or wss://)",
                 scheme);
        return MOQ_ERR_UNSUPPORTED;
    }
    if (moq_url_authority(&d->url, d->authority, sizeof(d->authority)) < 0) {
        snprintf(err, errlen, "URL host too long");
        return MOQ_ERR_INVALID;
    }
    size_t plen = strlen(d->url.path), qlen = strlen(d->url.query);
    d->target = malloc(plen + qlen + 2);
    if (!d->target) return MOQ_ERR_NOMEM;
    snprintf(d->target, plen + qlen + 2, "%s%s%s", d->url.path, qlen ? "?" : "", d->url.query);

    int rv = 0;
    if (cfg->n_versions) {
        if (cfg->n_versions > MOQ_QUIC_MAX_ALPN) return MOQ_ERR_INVALID;
        for (size_t i = 0; i < cfg->n_versions && rv == 0; i++) {
            const char *alpn = version_alpn(cfg->versions[i]);
            if (!alpn) {
                snprintf(err, errlen, "unsupported moq version '%s'",
                         cfg->versions[i] ? cfg->versions[i] : "");
                return MOQ_ERR_UNSUPPORTED;
            }
            int lite = moq_version_from_name(cfg->versions[i]);
            if (strcmp(alpn, MOQ_COMPAT_ALPN) == 0) {
                if (d->compat_version) continue; /* the compat SETUP offers one version */
                d->compat_version = lite;
            }
            rv = moq_strlist_push(&d->versions, alpn);
        }
    } else {
        for (size_t i = 0; moq_version_alpns[i] && rv == 0; i++)
            rv = moq_strlist_push(&d->versions, moq_version_alpns[i]);
    }
    if (rv == 0) rv = copy_array(&d->publish, cfg->publish, cfg->n_publish);
    if (rv == 0) rv = copy_array(&d->subscribe, cfg->subscribe, cfg->n_subscribe);
    if (rv == 0) rv = copy_array(&d->roots, cfg->tls.roots, cfg->tls.n_roots);
    if (rv == 0) rv = copy_array(&d->fingerprints, cfg->tls.fingerprints, cfg->tls.n_fingerprints);
    if (rv < 0) {
        snprintf(err, errlen, "%s", moq_strerror(rv));
        return rv;
    }
    if (d->publish.len == 0 && d->subscribe.len == 0) {
        snprintf(err, errlen, "the peer must be allowed to publish or to subscribe");
        return MOQ_ERR_INVALID;
    }
    d->disable_verify = cfg->tls.disable_verify;
    d->system_roots = cfg->tls.system_roots;
    d->transport = cfg->transport;
    /* The connect limit covers the QUIC handshake: it must not give up at its own default
     * first (a handshake whose packets are lost backs off for longer). */
    if (!d->transport.handshake_timeout_ms && cfg->timeout_ms)
        d->transport.handshake_timeout_ms = cfg->timeout_ms;
    d->origin = cfg->origin;
    d->max_frame_bytes = cfg->max_frame_bytes;
    d->connected = cfg->connected;
    d->upstream = cfg->upstream;
    d->announce_refused = cfg->announce_refused;
    d->event = cfg->event;
    if (cfg->tls_hint && !(d->tls_hint = strdup(cfg->tls_hint))) return MOQ_ERR_NOMEM;
    if (cfg->tls.cert && !(d->cert = strdup(cfg->tls.cert))) return MOQ_ERR_NOMEM;
    if (cfg->tls.key && !(d->key = strdup(cfg->tls.key))) return MOQ_ERR_NOMEM;
    d->closed = cfg->closed;
    d->ctx = cfg->ctx;
    return 0;
}

int moq_dial_start(struct ev_loop *loop, const struct moq_dial_config *cfg, moq_dial **out,
                   char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!loop || !cfg || !cfg->url || !cfg->origin || !cfg->closed || !out) {
        snprintf(err, errlen, "invalid dial configuration");
        return MOQ_ERR_INVALID;
    }
    *out = NULL;
    moq_dial *d = calloc(1, sizeof(*d));
    if (!d) return MOQ_ERR_NOMEM;
    d->loop = loop;
    d->url_text = strdup(cfg->url);
    ev_timer_init(&d->timeout, timeout_cb,
                  (double)(cfg->timeout_ms ? cfg->timeout_ms : MOQ_DIAL_DEFAULT_TIMEOUT_MS) / 1000.,
                  0.);
    d->timeout.data = d;
    if (moq_defer_init(&d->reap, loop, reap_cb, d) < 0) {
        free(d->url_text);
        free(d);
        return MOQ_ERR_NOMEM;
    }
    moq_ev_deadline_init(&d->session_timer, loop, session_timer_fired, d);
    int rv = d->url_text ? take_config(d, cfg, err, errlen) : MOQ_ERR_NOMEM;
    if (rv == 0 && strcmp(d->url.scheme, "http") == 0) {
        /* The TLS options are replaced by the pin; still refuse contradictory ones early. */
        rv = make_tls(d, err, errlen);
        if (rv == 0) {
            char target[] = "/certificate.sha256";
            struct moq_http_get_config gc = {
                .host = d->url.host,
                .port = d->url.port,
                .target = target,
                .timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : MOQ_DIAL_DEFAULT_TIMEOUT_MS,
                .max_body = 1024,
            };
            d->phase = P_FINGERPRINT;
            rv = moq_http_get_start(loop, &gc, fingerprint_done, d, &d->get);
            if (rv < 0) {
                d->get = NULL;
                snprintf(err, errlen, "cannot fetch http://%s/certificate.sha256: %s", d->authority,
                         moq_strerror(rv));
            }
        }
    } else if (rv == 0) {
        d->shared_tls = cfg->tls_client;
        bool plain = strcmp(d->url.scheme, "ws") == 0; /* no TLS at all */
        if (!d->shared_tls && !plain) rv = make_tls(d, err, errlen);
        if (rv == 0) rv = d->websocket ? begin_ws(d, err, errlen) : begin_quic(d, err, errlen);
    }
    if (rv < 0) {
        if (!err[0]) snprintf(err, errlen, "%s", moq_strerror(rv));
        dial_free(d);
        return rv;
    }
    ev_timer_start(loop, &d->timeout);
    moq_debug("client", "dialing %s", d->url_text);
    *out = d;
    return 0;
}

void moq_dial_close(moq_dial *d, uint64_t code, const char *reason)
{
    if (!d) return;
    if (d->phase == P_SESSION && d->s) {
        moq_session_close(d->s, code, reason ? reason : "");
        return;
    }
    attempt_failed(d, MOQ_ERR_CLOSED, "cancelled");
}

moq_session *moq_dial_session(const moq_dial *d)
{
    return d->phase == P_SESSION ? d->s : NULL;
}

const char *moq_dial_transport_name(const moq_dial *d)
{
    return d->websocket ? "WebSocket" : d->webtransport ? "WebTransport" : "QUIC";
}

const char *moq_dial_url(const moq_dial *d)
{
    return d->url_text;
}
