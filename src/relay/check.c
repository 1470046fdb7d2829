/* `moq-relay --check`: load what the relay would load at startup (certificates, keys, the
 * cluster token, client trust), without binding a listener, and print the effective
 * settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cluster/cluster.h"
#include "relay/relay.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/time.h"

struct checker {
    const struct moq_config *cfg;
    size_t failures;
};

/* One problem, prefixed with where `key` was set. Never prints a secret: messages name files,
 * and the line is redacted like a log line. */
static void problem(struct checker *c, const char *key, const char *msg)
{
    char where[320], line[1024];
    int n = snprintf(line, sizeof(line), "%s: %s: %s",
                     moq_config_where(c->cfg, key, where, sizeof(where)), key, msg);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    len = moq_log_redact(line, len, sizeof(line) - 1);
    line[len] = '\0';
    fprintf(stderr, "moq-relay: %s\n", line);
    c->failures++;
}

static void check_server_tls(struct checker *c, const char *key, const moq_strlist *certs,
                             const moq_strlist *keys, const moq_strlist *generate,
                             const moq_strlist *roots)
{
    moq_tls_server_config tc = {
        .certs = (const char *const *)certs->v,
        .n_certs = certs->len,
        .keys = (const char *const *)keys->v,
        .n_keys = keys->len,
        .generate = generate ? (const char *const *)generate->v : NULL,
        .n_generate = generate ? generate->len : 0,
        .client_roots = roots ? (const char *const *)roots->v : NULL,
        .n_client_roots = roots ? roots->len : 0,
    };
    moq_tls_server *srv = NULL;
    char err[512] = "";
    if (moq_tls_server_new(&tc, moq_wall_s(), &srv, err, sizeof(err)) < 0)
        problem(c, key, err[0] ? err : "cannot load the certificates");
    moq_tls_server_free(srv);
}

static void check_auth(struct checker *c)
{
    const struct moq_config_auth *a = &c->cfg->auth;
    moq_auth_config ac = {
        .key = a->key,
        .keys = (const char *const *)a->keys.v,
        .keys_len = a->keys.len,
        .key_dir = a->key_dir,
        .public_publish = (const char *const *)a->public_publish.v,
        .public_publish_len = a->public_publish.len,
        .public_subscribe = (const char *const *)a->public_subscribe.v,
        .public_subscribe_len = a->public_subscribe.len,
    };
    moq_auth *auth = NULL;
    moq_auth_error e = {0};
    const char *key = a->key_dir               ? "auth.key_dir"
                      : a->keys.len && !a->key ? "auth.keys"
                                               : "auth.key";
    if (moq_auth_new(&ac, &auth, &e) < 0) problem(c, key, e.msg);
    moq_auth_free(auth);
}

static void check_cluster(struct checker *c)
{
    const struct moq_config *cfg = c->cfg;
    char err[512] = "";
    if (cfg->cluster.token) {
        char *token = NULL;
        if (moq_cluster_token_load(cfg->cluster.token, &token, err, sizeof(err)) < 0)
            problem(c, "cluster.token", err);
        if (token) explicit_bzero(token, strlen(token));
        free(token);
    }
    const struct moq_config_client *cc = &cfg->client;
    if (!cfg->cluster.connect.len && !cc->tls.root.len && !cc->tls.fingerprint.len &&
        !cc->tls.cert && !cc->tls.key)
        return;
    moq_tls_client_config tc = {
        .disable_verify = cc->tls.disable_verify,
        .roots = (const char *const *)cc->tls.root.v,
        .n_roots = cc->tls.root.len,
        .fingerprints = (const char *const *)cc->tls.fingerprint.v,
        .n_fingerprints = cc->tls.fingerprint.len,
        .cert = cc->tls.cert,
        .key = cc->tls.key,
    };
    if (cc->tls.system_roots_set)
        tc.system_roots = cc->tls.system_roots ? MOQ_TLS_SYSTEM_ROOTS_ON : MOQ_TLS_SYSTEM_ROOTS_OFF;
    moq_tls_client *client = NULL;
    if (moq_tls_client_new(&tc, &client, err, sizeof(err)) < 0)
        problem(c,
                strstr(err, "client certificate") ? "client.tls.cert"
                : cc->tls.root.len                ? "client.tls.root"
                                                  : "client.tls.fingerprint",
                err);
    moq_tls_client_free(client);
}

int moq_relay_check(const struct moq_config *cfg, FILE *out)
{
    struct checker c = {cfg, 0};
    check_server_tls(&c, "server.tls.cert", &cfg->server.tls.cert, &cfg->server.tls.key,
                     &cfg->server.tls.generate, &cfg->server.tls.root);
    if (cfg->web.https.listen)
        check_server_tls(&c, "web.https.cert", &cfg->web.https.cert, &cfg->web.https.key, NULL,
                         &cfg->web.https.root);
    check_auth(&c);
    check_cluster(&c);
    if (c.failures) {
        fprintf(stderr, "moq-relay: %s: %zu problem(s); the relay would not start\n",
                cfg->file ? cfg->file : "configuration", c.failures);
        return 1;
    }
    fprintf(out, "# moq-relay %s: %s is valid; the effective settings:\n", MOQ_VERSION,
            cfg->file ? cfg->file : "the configuration");
    moq_config_print_effective(cfg, out);
    return 0;
}
