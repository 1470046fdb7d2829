/* Unit tests for src/tls: generation, loading, fingerprints, reload/rotation, and real TLS 1.3
 * handshakes over a socketpair exercising the client verification the QUIC dialer uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <nettle/sha2.h>

#include "tls/tls.h"
#include "util/err.h"
#include "util/log.h"

/* ---- helpers ------------------------------------------------------------------------- */

static const char *fixture(const char *name)
{
    static char bufs[8][512];
    static unsigned next;
    char *buf = bufs[next++ % 8];
    const char *src = getenv("MOQ_SOURCE_DIR");
    if (src)
        snprintf(buf, sizeof(bufs[0]), "%s/tests/fixtures/tls/%s", src, name);
    else
        snprintf(buf, sizeof(bufs[0]), "../fixtures/tls/%s", name);
    return buf;
}

/* SHA-256 with nettle and printf, independent of the module's own hashing/hex code. */
static void independent_fingerprint(const uint8_t *data, size_t len, char out[65])
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof(digest), digest);
    for (size_t i = 0; i < sizeof(digest); i++)
        sprintf(out + 2 * i, "%02x", digest[i]);
}

static void pem_file_fingerprint(const char *path, char out[65])
{
    gnutls_datum_t pem, der;
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_load_file(path, &pem), 0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM), 0);
    assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
    independent_fingerprint(der.data, der.size, out);
    gnutls_free(der.data);
    gnutls_free(pem.data);
    gnutls_x509_crt_deinit(crt);
}

static void copy_file(const char *from, const char *to)
{
    gnutls_datum_t data;
    assert_int_equal(gnutls_load_file(from, &data), 0);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data.data, 1, data.size, f), data.size);
    fclose(f);
    gnutls_free(data.data);
    /* replace atomically, like `mv` or a secret volume swap */
    assert_int_equal(rename(tmp, to), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static moq_tls_server *server_with_pair(const char *cert, const char *key)
{
    const char *certs[] = {cert}, *keys[] = {key};
    moq_tls_server_config cfg = {.certs = certs, .n_certs = 1, .keys = keys, .n_keys = 1};
    moq_tls_server *srv = NULL;
    char err[256];
    int rc = moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err));
    if (rc != 0) fail_msg("server_new(%s, %s): %s", cert, key, err);
    return srv;
}

static moq_tls_server *server_generated(void)
{
    const char *names[] = {"localhost", "127.0.0.1", "::1", "relay.example"};
    moq_tls_server_config cfg = {.generate = names, .n_generate = 4};
    moq_tls_server *srv = NULL;
    char err[256];
    int rc = moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err));
    if (rc != 0) fail_msg("server_new(generate): %s", err);
    return srv;
}

static moq_tls_client *client_new(moq_tls_client_config cfg)
{
    moq_tls_client *c = NULL;
    char err[256];
    int rc = moq_tls_client_new(&cfg, &c, err, sizeof(err));
    if (rc != 0) fail_msg("client_new: %s", err);
    return c;
}

/* Parse the i-th certificate the creds serve (leaf of pair i), straight from GnuTLS. The DER
 * belongs to the credentials (valid while they live). */
static gnutls_x509_crt_t served_leaf(moq_tls_creds *creds, unsigned i, gnutls_datum_t *der_out)
{
    gnutls_datum_t der;
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_certificate_get_crt_raw(moq_tls_creds_gnutls(creds), i, 0, &der), 0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER), 0);
    if (der_out) *der_out = der;
    return crt;
}

/* ---- handshake over a socketpair ----------------------------------------------------- */

typedef struct hs_result {
    int client_rc;
    int server_rc;
    char peer_fp[65];     /* leaf fingerprint the client saw */
    char server_sni[256]; /* "" when the client sent no SNI */
    char verify_err[256]; /* moq_tls_client_verify_error after the handshake */
    bool server_saw_ext;  /* the client's private session extension reached the wire */
} hs_result;

#define PRIVATE_EXT_ID 0xff6d

static bool *ext_seen_flag;
static int spy_recv(gnutls_session_t s, const unsigned char *d, size_t n)
{
    if (ext_seen_flag) *ext_seen_flag = true;
    return 0;
}
static int spy_send(gnutls_session_t s, gnutls_buffer_t b)
{
    return 0;
}

static bool step(gnutls_session_t s, int *rc, bool *done)
{
    if (*done) return false;
    *rc = gnutls_handshake(s);
    if (*rc == 0 || gnutls_error_is_fatal(*rc)) *done = true;
    return true;
}

/* When set, the client's owner lets go of it as soon as the session is set up, as a dial that
 * is freed while its connection still lingers does. */
static moq_tls_client **release_after_setup;

static int handshake(moq_tls_creds *creds, const moq_tls_client *client, const char *hostname,
                     hs_result *res)
{
    memset(res, 0, sizeof(*res));
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    gnutls_session_t srv, cli;
    const char *prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
    assert_int_equal(gnutls_init(&srv, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
    assert_int_equal(gnutls_init(&cli, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
    assert_int_equal(gnutls_priority_set_direct(srv, prio, NULL), 0);
    assert_int_equal(gnutls_priority_set_direct(cli, prio, NULL), 0);
    assert_int_equal(moq_tls_creds_attach(creds, srv), 0);
    ext_seen_flag = &res->server_saw_ext;
    assert_int_equal(gnutls_session_ext_register(srv, "spy", PRIVATE_EXT_ID, GNUTLS_EXT_TLS,
                                                 spy_recv, spy_send, NULL, NULL, NULL,
                                                 GNUTLS_EXT_FLAG_CLIENT_HELLO),
                     0);
    int rc = moq_tls_client_setup_session(client, cli, hostname);
    if (release_after_setup) {
        moq_tls_client_free(*release_after_setup);
        *release_after_setup = NULL;
        release_after_setup = NULL;
    }
    if (rc != 0) {
        gnutls_deinit(srv);
        gnutls_deinit(cli);
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    gnutls_transport_set_int(srv, fds[0]);
    gnutls_transport_set_int(cli, fds[1]);

    bool cdone = false, sdone = false;
    int after_failure = 0;
    for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
        step(cli, &res->client_rc, &cdone);
        step(srv, &res->server_rc, &sdone);
        /* once one side failed, give the other a few turns to read the alert */
        if ((cdone && res->client_rc < 0) || (sdone && res->server_rc < 0))
            if (++after_failure > 5) break;
    }
    if (!cdone) res->client_rc = GNUTLS_E_AGAIN;
    if (!sdone) res->server_rc = GNUTLS_E_AGAIN;

    char sni[256];
    size_t sni_len = sizeof(sni);
    unsigned type;
    if (gnutls_server_name_get(srv, sni, &sni_len, &type, 0) == 0)
        snprintf(res->server_sni, sizeof(res->server_sni), "%s", sni);
    moq_tls_client_verify_error(cli, res->verify_err, sizeof(res->verify_err));

    if (res->client_rc == 0 && res->server_rc == 0) {
        unsigned n = 0;
        const gnutls_datum_t *peers = gnutls_certificate_get_peers(cli, &n);
        assert_true(peers && n >= 1);
        independent_fingerprint(peers[0].data, peers[0].size, res->peer_fp);
        /* application data flows both ways */
        assert_int_equal(gnutls_record_send(cli, "ping", 4), 4);
        char buf[16];
        ssize_t got;
        do
            got = gnutls_record_recv(srv, buf, sizeof(buf));
        while (got == GNUTLS_E_AGAIN);
        assert_int_equal(got, 4);
        assert_memory_equal(buf, "ping", 4);
    }
    gnutls_deinit(srv);
    gnutls_deinit(cli);
    close(fds[0]);
    close(fds[1]);
    ext_seen_flag = NULL;
    return 0;
}

static bool hs_ok(const hs_result *r)
{
    return r->client_rc == 0 && r->server_rc == 0;
}

/* ---- fingerprints -------------------------------------------------------------------- */

static void fingerprint_hex_matches_sha256(void **state)
{
    gnutls_datum_t abc = {(unsigned char *)"abc", 3};
    char out[65];
    assert_int_equal(moq_tls_fingerprint_hex(&abc, out), 0);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    uint8_t raw[32];
    assert_int_equal(moq_tls_fingerprint_parse(out, raw), 0);
    assert_int_equal(raw[0], 0xba);
    assert_int_equal(raw[31], 0xad);
    assert_int_equal(
        moq_tls_fingerprint_parse("BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:"
                                  "A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD",
                                  raw),
        0);
    assert_int_equal(raw[1], 0x78);
    assert_int_equal(moq_tls_fingerprint_parse("ba78", raw), MOQ_ERR_INVALID);
    assert_int_equal(moq_tls_fingerprint_parse("", raw), MOQ_ERR_INVALID);
    char longer[80];
    snprintf(longer, sizeof(longer), "%s00", out);
    assert_int_equal(moq_tls_fingerprint_parse(longer, raw), MOQ_ERR_INVALID);
    char bad[65];
    memcpy(bad, out, sizeof(bad));
    bad[10] = 'g';
    assert_int_equal(moq_tls_fingerprint_parse(bad, raw), MOQ_ERR_INVALID);
    bad[10] = 'a';
    bad[63] = '\0'; /* odd number of digits */
    assert_int_equal(moq_tls_fingerprint_parse(bad, raw), MOQ_ERR_INVALID);
}

static void fingerprint_file_matches_der_hash(void **state)
{
    char expect[65], got[65], err[256];
    pem_file_fingerprint(fixture("p256.pem"), expect);
    assert_int_equal(moq_tls_fingerprint_file(fixture("p256.pem"), got, err, sizeof(err)), 0);
    assert_string_equal(got, expect);
    /* a chain file: the first certificate counts */
    assert_int_equal(moq_tls_fingerprint_file(fixture("p256-chain.pem"), got, err, sizeof(err)), 0);
    assert_string_equal(got, expect);
    assert_int_equal(moq_tls_fingerprint_file("/nonexistent/x.pem", got, err, sizeof(err)),
                     MOQ_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/x.pem"));
}

/* ---- generation ---------------------------------------------------------------------- */

static void generated_certificate_fits_webtransport_pinning(void **state)
{
    time_t now = time(NULL);
    moq_tls_server *srv = server_generated();
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    assert_int_equal(moq_tls_creds_count(creds), 1);
    gnutls_datum_t der;
    gnutls_x509_crt_t crt = served_leaf(creds, 0, &der);

    /* ECDSA P-256, X.509 v3, SHA-256 signature */
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, NULL), GNUTLS_PK_ECDSA);
    gnutls_ecc_curve_t curve;
    gnutls_datum_t x, y;
    assert_int_equal(gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y), 0);
    assert_int_equal(curve, GNUTLS_ECC_CURVE_SECP256R1);
    gnutls_free(x.data);
    gnutls_free(y.data);
    assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
    assert_int_equal(gnutls_x509_crt_get_signature_algorithm(crt), GNUTLS_SIGN_ECDSA_SHA256);

    /* validity: at most 14 days in total, and valid right now */
    time_t nb = gnutls_x509_crt_get_activation_time(crt);
    time_t na = gnutls_x509_crt_get_expiration_time(crt);
    assert_true(na > nb);
    assert_true(na - nb <= 14 * 24 * 3600);
    assert_true(nb <= now && now < na);
    assert_true(na - now >= 12 * 24 * 3600); /* and not needlessly short */

    /* SANs: DNS names, IPv4 and IPv6 as IP entries */
    int dns = 0, ips = 0;
    for (unsigned i = 0;; i++) {
        char buf[256];
        size_t len = sizeof(buf);
        unsigned critical;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len, &critical);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) break;
        assert_true(type >= 0);
        if (type == GNUTLS_SAN_DNSNAME) {
            buf[len < sizeof(buf) ? len : sizeof(buf) - 1] = '\0';
            assert_true(strcmp(buf, "localhost") == 0 || strcmp(buf, "relay.example") == 0);
            dns++;
        } else if (type == GNUTLS_SAN_IPADDRESS) {
            if (len == 4)
                assert_memory_equal(buf, "\x7f\x00\x00\x01", 4);
            else {
                assert_int_equal(len, 16);
                assert_memory_equal(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
            }
            ips++;
        } else {
            fail_msg("unexpected SAN type %d", type);
        }
    }
    assert_int_equal(dns, 2);
    assert_int_equal(ips, 2);
    assert_int_equal(gnutls_x509_crt_check_hostname(crt, "localhost"), 1);
    assert_int_equal(gnutls_x509_crt_check_hostname(crt, "127.0.0.1"), 1);
    assert_int_equal(gnutls_x509_crt_check_hostname(crt, "other.example"), 0);

    /* end-entity server profile */
    unsigned critical, ca = 1;
    int pathlen;
    assert_true(gnutls_x509_crt_get_basic_constraints(crt, &critical, &ca, &pathlen) >= 0);
    assert_int_equal(ca, 0);
    unsigned usage = 0;
    assert_int_equal(gnutls_x509_crt_get_key_usage(crt, &usage, &critical), 0);
    assert_true(usage & GNUTLS_KEY_DIGITAL_SIGNATURE);
    assert_false(usage & GNUTLS_KEY_KEY_CERT_SIGN);
    char oid[128];
    size_t oid_len = sizeof(oid);
    assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 0, oid, &oid_len, &critical), 0);
    assert_string_equal(oid, GNUTLS_KP_TLS_WWW_SERVER);

    /* fingerprint = SHA-256 of the DER, computed here independently */
    char expect[65], fp[65];
    independent_fingerprint(der.data, der.size, expect);
    assert_string_equal(moq_tls_creds_fingerprint(creds), expect);
    assert_string_equal(moq_tls_creds_fingerprint_at(creds, 0), expect);
    assert_null(moq_tls_creds_fingerprint_at(creds, 1));
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, expect);
    assert_int_equal(strlen(fp), 64);

    /* rotation is scheduled one day before expiry */
    assert_int_equal(moq_tls_server_rotate_at(srv), (int64_t)na - 24 * 3600);

    gnutls_x509_crt_deinit(crt);
    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

static void rotation_replaces_cert_and_keeps_old_creds_alive(void **state)
{
    moq_tls_server *srv = server_generated();
    moq_tls_creds *old = moq_tls_server_acquire(srv);
    char old_fp[65], new_fp[65];
    snprintf(old_fp, sizeof(old_fp), "%s", moq_tls_creds_fingerprint(old));

    /* nothing due yet */
    assert_int_equal(moq_tls_server_maintain(srv, time(NULL)), 0);
    moq_tls_server_fingerprint(srv, new_fp);
    assert_string_equal(new_fp, old_fp);

    int64_t due = moq_tls_server_rotate_at(srv);
    assert_int_equal(moq_tls_server_maintain(srv, due - 1), 0);
    assert_int_equal(moq_tls_server_maintain(srv, due), 1);
    moq_tls_server_fingerprint(srv, new_fp);
    assert_string_not_equal(new_fp, old_fp);
    assert_true(moq_tls_server_rotate_at(srv) > due);

    moq_tls_creds *cur = moq_tls_server_acquire(srv);
    assert_ptr_not_equal(cur, old);
    assert_string_equal(moq_tls_creds_fingerprint(cur), new_fp);
    gnutls_datum_t der;
    gnutls_x509_crt_t crt = served_leaf(cur, 0, &der);
    char expect[65];
    independent_fingerprint(der.data, der.size, expect);
    assert_string_equal(new_fp, expect);
    gnutls_x509_crt_deinit(crt);
    moq_tls_creds_unref(cur);

    /* the old creds still work for a connection that holds them, even after the server is
     * gone: a client pinned to the old fingerprint completes a handshake */
    moq_tls_server_free(srv);
    const char *pins[] = {old_fp};
    moq_tls_client *client =
        client_new((moq_tls_client_config){.fingerprints = pins, .n_fingerprints = 1});
    hs_result r;
    assert_int_equal(handshake(old, client, "localhost", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.peer_fp, old_fp);
    moq_tls_client_free(client);
    moq_tls_creds_unref(old);
}

static void generate_rejects_bad_names_and_config(void **state)
{
    char err[256];
    moq_tls_server *srv = NULL;
    const char *bad[] = {"localhost", "has space"};
    moq_tls_server_config cfg = {.generate = bad, .n_generate = 2};
    assert_int_equal(moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_null(srv);
    assert_non_null(strstr(err, "has space"));

    const char *empty[] = {""};
    cfg = (moq_tls_server_config){.generate = empty, .n_generate = 1};
    assert_int_equal(moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err)), MOQ_ERR_CONFIG);

    cfg = (moq_tls_server_config){0};
    assert_int_equal(moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "no certificate"));

    const char *certs[] = {fixture("p256.pem")};
    cfg = (moq_tls_server_config){.certs = certs, .n_certs = 1};
    assert_int_equal(moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "pair"));

    const char *names[] = {"localhost"};
    cfg = (moq_tls_server_config){
        .generate = names, .n_generate = 1, .rotate_margin_s = 13 * 24 * 3600};
    assert_int_equal(moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_null(srv);
}

/* ---- loading files ------------------------------------------------------------------- */

static void loads_every_key_type_and_serves_it(void **state)
{
    static const struct {
        const char *name;
        gnutls_pk_algorithm_t pk;
    } types[] = {
        {"p256", GNUTLS_PK_ECDSA},
        {"p384", GNUTLS_PK_ECDSA},
        {"rsa", GNUTLS_PK_RSA},
        {"ed25519", GNUTLS_PK_EDDSA_ED25519},
    };
    const char *roots[] = {fixture("ca.pem")};
    moq_tls_client *client = client_new((moq_tls_client_config){.roots = roots, .n_roots = 1});
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char pem[64], key[64], host[64], expect[65];
        snprintf(pem, sizeof(pem), "%s.pem", types[i].name);
        snprintf(key, sizeof(key), "%s.key", types[i].name);
        snprintf(host, sizeof(host), "%s.test", types[i].name);
        moq_tls_server *srv = server_with_pair(fixture(pem), fixture(key));
        moq_tls_creds *creds = moq_tls_server_acquire(srv);
        pem_file_fingerprint(fixture(pem), expect);
        assert_string_equal(moq_tls_creds_fingerprint(creds), expect);
        gnutls_x509_crt_t crt = served_leaf(creds, 0, NULL);
        assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, NULL), types[i].pk);
        gnutls_x509_crt_deinit(crt);

        hs_result r;
        assert_int_equal(handshake(creds, client, host, &r), 0);
        if (!hs_ok(&r))
            fail_msg("%s: handshake failed: client %s, server %s", types[i].name,
                     gnutls_strerror(r.client_rc), gnutls_strerror(r.server_rc));
        assert_string_equal(r.peer_fp, expect);
        assert_string_equal(r.server_sni, host);
        moq_tls_creds_unref(creds);
        moq_tls_server_free(srv);
    }
    moq_tls_client_free(client);
}

static void loads_chain_file(void **state)
{
    moq_tls_server *srv = server_with_pair(fixture("p256-chain.pem"), fixture("p256.key"));
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    char expect[65];
    pem_file_fingerprint(fixture("p256.pem"), expect);
    assert_string_equal(moq_tls_creds_fingerprint(creds), expect);
    /* the CA travels with the leaf */
    gnutls_datum_t der;
    assert_int_equal(gnutls_certificate_get_crt_raw(moq_tls_creds_gnutls(creds), 0, 1, &der), 0);
    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

static void expect_load_failure(const char *cert, const char *key, int code, const char *named)
{
    const char *certs[] = {cert}, *keys[] = {key};
    moq_tls_server_config cfg = {.certs = certs, .n_certs = 1, .keys = keys, .n_keys = 1};
    moq_tls_server *srv = NULL;
    char err[512] = "";
    int rc = moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err));
    if (rc != code) fail_msg("%s + %s: got %d (%s), want %d", cert, key, rc, err, code);
    assert_null(srv);
    if (!strstr(err, named)) fail_msg("message \"%s\" does not name %s", err, named);
}

static void load_failures_name_the_file(void **state)
{
    char dir[] = "/tmp/moq-tls-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char garbage[600], truncated[600], keyjunk[600], empty[600];
    snprintf(garbage, sizeof(garbage), "%s/garbage.pem", dir);
    snprintf(truncated, sizeof(truncated), "%s/truncated.pem", dir);
    snprintf(keyjunk, sizeof(keyjunk), "%s/junk.key", dir);
    snprintf(empty, sizeof(empty), "%s/empty.pem", dir);
    write_text(garbage, "this is not a certificate\n");
    write_text(truncated, "-----BEGIN CERTIFICATE-----\nMIIB!!!notbase64\n"
                          "-----END CERTIFICATE-----\n");
    write_text(keyjunk, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    write_text(empty, "");

    /* key belongs to another certificate: same curve, and a different key type */
    expect_load_failure(fixture("p256.pem"), fixture("other-p256.key"), MOQ_ERR_INVALID,
                        "other-p256.key");
    expect_load_failure(fixture("p256.pem"), fixture("other-p256.key"), MOQ_ERR_INVALID,
                        "p256.pem");
    expect_load_failure(fixture("p256.pem"), fixture("p384.key"), MOQ_ERR_INVALID, "p384.key");
    expect_load_failure(fixture("rsa.pem"), fixture("ed25519.key"), MOQ_ERR_INVALID, "ed25519.key");
    /* missing files */
    expect_load_failure("/nonexistent/cert.pem", fixture("p256.key"), MOQ_ERR_IO,
                        "/nonexistent/cert.pem");
    expect_load_failure(fixture("p256.pem"), "/nonexistent/key.pem", MOQ_ERR_IO,
                        "/nonexistent/key.pem");
    /* garbled contents */
    expect_load_failure(garbage, fixture("p256.key"), MOQ_ERR_INVALID, garbage);
    expect_load_failure(truncated, fixture("p256.key"), MOQ_ERR_INVALID, truncated);
    expect_load_failure(empty, fixture("p256.key"), MOQ_ERR_INVALID, empty);
    expect_load_failure(fixture("p256.pem"), keyjunk, MOQ_ERR_INVALID, keyjunk);
    expect_load_failure(fixture("p256.pem"), garbage, MOQ_ERR_INVALID, garbage);
    /* a key file where a certificate belongs, and the other way round */
    expect_load_failure(fixture("p256.key"), fixture("p256.key"), MOQ_ERR_INVALID,
                        fixture("p256.key"));
    expect_load_failure(fixture("p256.pem"), fixture("p256.pem"), MOQ_ERR_INVALID,
                        fixture("p256.pem"));
    /* encrypted keys are refused with a reason */
    expect_load_failure(fixture("p256.pem"), fixture("p256-encrypted.key"), MOQ_ERR_UNSUPPORTED,
                        "p256-encrypted.key");
    /* a directory is not a certificate file */
    expect_load_failure(dir, fixture("p256.key"), MOQ_ERR_IO, dir);

    unlink(garbage);
    unlink(truncated);
    unlink(keyjunk);
    unlink(empty);
    rmdir(dir);
}

static void several_pairs_pick_by_sni(void **state)
{
    const char *certs[] = {fixture("p256.pem"), fixture("rsa.pem")};
    const char *keys[] = {fixture("p256.key"), fixture("rsa.key")};
    const char *names[] = {"generated.test"};
    moq_tls_server_config cfg = {.certs = certs,
                                 .n_certs = 2,
                                 .keys = keys,
                                 .n_keys = 2,
                                 .generate = names,
                                 .n_generate = 1};
    moq_tls_server *srv = NULL;
    char err[256];
    assert_int_equal(moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err)), 0);
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    char p256[65], rsa[65], fp[65];
    pem_file_fingerprint(fixture("p256.pem"), p256);
    pem_file_fingerprint(fixture("rsa.pem"), rsa);
    assert_int_equal(moq_tls_creds_count(creds), 3);
    assert_string_equal(moq_tls_creds_fingerprint_at(creds, 0), p256);
    assert_string_equal(moq_tls_creds_fingerprint_at(creds, 1), rsa);
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, p256); /* the first configured certificate */

    const char *roots[] = {fixture("ca.pem")};
    moq_tls_client *client = client_new((moq_tls_client_config){.roots = roots, .n_roots = 1});
    hs_result r;
    assert_int_equal(handshake(creds, client, "rsa.test", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.peer_fp, rsa);
    assert_int_equal(handshake(creds, client, "p256.test", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.peer_fp, p256);
    moq_tls_client_free(client);

    const char *gen_pin[] = {moq_tls_creds_fingerprint_at(creds, 2)};
    client = client_new((moq_tls_client_config){.fingerprints = gen_pin, .n_fingerprints = 1});
    assert_int_equal(handshake(creds, client, "generated.test", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.peer_fp, gen_pin[0]);
    moq_tls_client_free(client);

    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

/* ---- client verification ------------------------------------------------------------- */

static void client_pinned_fingerprint(void **state)
{
    moq_tls_server *srv = server_generated();
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    char fp[65];
    moq_tls_server_fingerprint(srv, fp);
    hs_result r;

    /* (a) the right pin: accepted, whatever the hostname, with or without SNI */
    const char *pins[] = {"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", fp};
    moq_tls_client *client =
        client_new((moq_tls_client_config){.fingerprints = pins, .n_fingerprints = 2});
    assert_int_equal(handshake(creds, client, "localhost", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.peer_fp, fp);
    assert_string_equal(r.server_sni, "localhost");
    assert_false(r.server_saw_ext); /* our private per-session state never goes on the wire */
    assert_int_equal(handshake(creds, client, "not-in-the-cert.example", &r), 0);
    assert_true(hs_ok(&r));
    assert_int_equal(handshake(creds, client, "127.0.0.1", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.server_sni, ""); /* no SNI for IP literals */
    assert_int_equal(handshake(creds, client, "[::1]", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.server_sni, "");
    assert_int_equal(handshake(creds, client, NULL, &r), 0);
    assert_true(hs_ok(&r));
    moq_tls_client_free(client);

    /* (b) a wrong pin: rejected by the client, with a reason */
    const char *wrong[] = {"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
    client = client_new((moq_tls_client_config){.fingerprints = wrong, .n_fingerprints = 1});
    assert_int_equal(handshake(creds, client, "localhost", &r), 0);
    assert_false(hs_ok(&r));
    assert_int_equal(r.client_rc, GNUTLS_E_CERTIFICATE_ERROR);
    assert_non_null(strstr(r.verify_err, "matches no pinned fingerprint"));
    assert_non_null(strstr(r.verify_err, fp));
    moq_tls_client_free(client);

    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

/* A session keeps the credentials and the trust policy it was set up with after their owner
 * freed the client: verification, the handshake and the records still work. */
static void client_outlives_its_owner_in_sessions(void **state)
{
    moq_tls_server *srv = server_with_pair(fixture("p256.pem"), fixture("p256.key"));
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    char fp[65];
    moq_tls_server_fingerprint(srv, fp);
    hs_result r;

    const char *pins[] = {fp};
    moq_tls_client *client =
        client_new((moq_tls_client_config){.fingerprints = pins, .n_fingerprints = 1});
    release_after_setup = &client;
    assert_int_equal(handshake(creds, client, "localhost", &r), 0);
    assert_null(client);
    assert_true(hs_ok(&r));
    assert_string_equal(r.peer_fp, fp);

    const char *roots[] = {fixture("ca.pem")};
    client = client_new((moq_tls_client_config){.roots = roots, .n_roots = 1});
    release_after_setup = &client;
    assert_int_equal(handshake(creds, client, "p256.test", &r), 0);
    assert_null(client);
    assert_true(hs_ok(&r));

    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

static void client_disable_verify_accepts_anything(void **state)
{
    moq_tls_server *srv = server_generated();
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    /* (c) */
    moq_tls_client *client = client_new((moq_tls_client_config){.disable_verify = true});
    hs_result r;
    assert_int_equal(handshake(creds, client, "wrong.example", &r), 0);
    assert_true(hs_ok(&r));
    assert_string_equal(r.verify_err, "");
    moq_tls_client_free(client);
    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

static void client_default_verification_rejects_self_signed(void **state)
{
    moq_tls_server *srv = server_generated();
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    /* (d) system roots (whatever this machine has) never include our fresh certificate */
    moq_tls_client *client = client_new((moq_tls_client_config){0});
    hs_result r;
    assert_int_equal(handshake(creds, client, "localhost", &r), 0);
    assert_false(hs_ok(&r));
    assert_int_equal(r.client_rc, GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR);
    assert_true(strlen(r.verify_err) > 0);
    /* CA verification needs a name to check */
    assert_int_equal(handshake(creds, client, NULL, &r), MOQ_ERR_INVALID);
    assert_int_equal(handshake(creds, client, "", &r), MOQ_ERR_INVALID);
    moq_tls_client_free(client);

    /* a root that did not sign it does not help either */
    const char *roots[] = {fixture("ca.pem")};
    client = client_new((moq_tls_client_config){.roots = roots, .n_roots = 1});
    assert_int_equal(handshake(creds, client, "localhost", &r), 0);
    assert_false(hs_ok(&r));
    assert_int_equal(r.client_rc, GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR);
    moq_tls_client_free(client);
    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

static void client_root_ca_checks_chain_and_hostname(void **state)
{
    moq_tls_server *srv = server_with_pair(fixture("p256.pem"), fixture("p256.key"));
    moq_tls_creds *creds = moq_tls_server_acquire(srv);
    const char *roots[] = {fixture("ca.pem")};
    moq_tls_client *client = client_new((moq_tls_client_config){.roots = roots, .n_roots = 1});
    hs_result r;
    /* (e) the CA that signed the server certificate + a name it carries */
    assert_int_equal(handshake(creds, client, "p256.test", &r), 0);
    assert_true(hs_ok(&r));
    assert_int_equal(handshake(creds, client, "localhost", &r), 0);
    assert_true(hs_ok(&r));
    assert_int_equal(handshake(creds, client, "127.0.0.1", &r), 0); /* IP SAN */
    assert_true(hs_ok(&r));
    assert_int_equal(handshake(creds, client, "[::1]", &r), 0);
    assert_true(hs_ok(&r));
    /* wrong hostname */
    assert_int_equal(handshake(creds, client, "wrong.test", &r), 0);
    assert_false(hs_ok(&r));
    assert_int_equal(r.client_rc, GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR);
    assert_int_equal(handshake(creds, client, "10.0.0.1", &r), 0);
    assert_false(hs_ok(&r));
    moq_tls_client_free(client);

    /* roots + system roots together still accept the private CA */
    client = client_new((moq_tls_client_config){
        .roots = roots, .n_roots = 1, .system_roots = MOQ_TLS_SYSTEM_ROOTS_ON});
    assert_int_equal(handshake(creds, client, "p256.test", &r), 0);
    assert_true(hs_ok(&r));
    moq_tls_client_free(client);

    /* the served chain file also verifies */
    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
    srv = server_with_pair(fixture("p256-chain.pem"), fixture("p256.key"));
    creds = moq_tls_server_acquire(srv);
    client = client_new((moq_tls_client_config){.roots = roots, .n_roots = 1});
    assert_int_equal(handshake(creds, client, "p256.test", &r), 0);
    assert_true(hs_ok(&r));
    moq_tls_client_free(client);
    moq_tls_creds_unref(creds);
    moq_tls_server_free(srv);
}

static void client_config_errors(void **state)
{
    moq_tls_client *c = NULL;
    char err[256];
    const char *fp[] = {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"};
    const char *roots[] = {fixture("ca.pem")};
    moq_tls_client_config cfg = {.disable_verify = true, .fingerprints = fp, .n_fingerprints = 1};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_null(c);
    cfg = (moq_tls_client_config){.disable_verify = true, .roots = roots, .n_roots = 1};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_CONFIG);
    cfg = (moq_tls_client_config){
        .fingerprints = fp, .n_fingerprints = 1, .roots = roots, .n_roots = 1};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_CONFIG);
    cfg = (moq_tls_client_config){
        .fingerprints = fp, .n_fingerprints = 1, .system_roots = MOQ_TLS_SYSTEM_ROOTS_ON};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_CONFIG);
    cfg = (moq_tls_client_config){.system_roots = MOQ_TLS_SYSTEM_ROOTS_OFF};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "no trusted roots"));

    const char *bad_fp[] = {"abcd"};
    cfg = (moq_tls_client_config){.fingerprints = bad_fp, .n_fingerprints = 1};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "abcd"));

    const char *missing[] = {"/nonexistent/ca.pem"};
    cfg = (moq_tls_client_config){.roots = missing, .n_roots = 1};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));

    const char *keyfile[] = {fixture("ca.key")};
    cfg = (moq_tls_client_config){.roots = keyfile, .n_roots = 1};
    assert_int_equal(moq_tls_client_new(&cfg, &c, err, sizeof(err)), MOQ_ERR_INVALID);
    assert_non_null(strstr(err, "ca.key"));
    assert_null(c);
}

/* ---- reload -------------------------------------------------------------------------- */

static void reload_follows_files_and_keeps_last_good(void **state)
{
    char dir[] = "/tmp/moq-tls-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[600], key[600], fp[65], expect[65], err[512];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    copy_file(fixture("p256.pem"), cert);
    copy_file(fixture("p256.key"), key);

    moq_tls_server *srv = server_with_pair(cert, key);
    moq_tls_creds *first = moq_tls_server_acquire(srv);
    pem_file_fingerprint(fixture("p256.pem"), expect);
    assert_string_equal(moq_tls_creds_fingerprint(first), expect);
    assert_int_equal(moq_tls_server_rotate_at(srv), INT64_MAX); /* nothing generated */
    assert_int_equal(moq_tls_server_maintain(srv, time(NULL)), 0);

    /* a new pair replaced on disk is picked up by maintain() */
    copy_file(fixture("p384.pem"), cert);
    copy_file(fixture("p384.key"), key);
    assert_int_equal(moq_tls_server_maintain(srv, time(NULL)), 1);
    pem_file_fingerprint(fixture("p384.pem"), expect);
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, expect);
    assert_int_equal(moq_tls_server_maintain(srv, time(NULL)), 0);
    /* the creds taken before the reload are untouched */
    char p256[65];
    pem_file_fingerprint(fixture("p256.pem"), p256);
    assert_string_equal(moq_tls_creds_fingerprint(first), p256);
    assert_int_equal(
        gnutls_certificate_get_crt_raw(moq_tls_creds_gnutls(first), 0, 0, &(gnutls_datum_t){0}), 0);

    /* a broken file: reload fails, the last good creds stay, and the same breakage is not
     * retried until the file changes again */
    write_text(cert, "garbage\n");
    assert_true(moq_tls_server_maintain(srv, time(NULL)) < 0);
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, expect);
    assert_int_equal(moq_tls_server_maintain(srv, time(NULL)), 0);
    assert_int_equal(moq_tls_server_reload(srv, err, sizeof(err)), MOQ_ERR_INVALID);
    assert_non_null(strstr(err, cert));
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, expect);
    moq_tls_creds *held = moq_tls_server_acquire(srv);
    assert_string_equal(moq_tls_creds_fingerprint(held), expect);
    moq_tls_creds_unref(held);

    /* certificate replaced before its key: mismatch, kept; then the key lands: picked up */
    copy_file(fixture("rsa.pem"), cert);
    assert_true(moq_tls_server_maintain(srv, time(NULL)) < 0);
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, expect);
    copy_file(fixture("rsa.key"), key);
    assert_int_equal(moq_tls_server_maintain(srv, time(NULL)), 1);
    pem_file_fingerprint(fixture("rsa.pem"), expect);
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, expect);

    /* a deleted file also keeps the last good creds */
    unlink(key);
    assert_true(moq_tls_server_maintain(srv, time(NULL)) < 0);
    moq_tls_server_fingerprint(srv, fp);
    assert_string_equal(fp, expect);

    moq_tls_creds_unref(first);
    moq_tls_server_free(srv);
    unlink(cert);
    rmdir(dir);
}

static void reload_keeps_generated_certificate(void **state)
{
    char dir[] = "/tmp/moq-tls-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[600], key[600];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    copy_file(fixture("p256.pem"), cert);
    copy_file(fixture("p256.key"), key);
    const char *certs[] = {cert}, *keys[] = {key}, *names[] = {"localhost"};
    moq_tls_server_config cfg = {.certs = certs,
                                 .n_certs = 1,
                                 .keys = keys,
                                 .n_keys = 1,
                                 .generate = names,
                                 .n_generate = 1};
    moq_tls_server *srv = NULL;
    char err[256];
    assert_int_equal(moq_tls_server_new(&cfg, time(NULL), &srv, err, sizeof(err)), 0);
    moq_tls_creds *before = moq_tls_server_acquire(srv);
    char generated[65];
    snprintf(generated, sizeof(generated), "%s", moq_tls_creds_fingerprint_at(before, 1));

    copy_file(fixture("ed25519.pem"), cert);
    copy_file(fixture("ed25519.key"), key);
    assert_int_equal(moq_tls_server_reload(srv, err, sizeof(err)), 0);
    moq_tls_creds *after = moq_tls_server_acquire(srv);
    char ed[65];
    pem_file_fingerprint(fixture("ed25519.pem"), ed);
    assert_string_equal(moq_tls_creds_fingerprint_at(after, 0), ed);
    assert_string_equal(moq_tls_creds_fingerprint_at(after, 1), generated);

    /* rotating the generated certificate keeps the files' certificate */
    assert_int_equal(moq_tls_server_maintain(srv, moq_tls_server_rotate_at(srv)), 1);
    moq_tls_creds *rotated = moq_tls_server_acquire(srv);
    assert_string_equal(moq_tls_creds_fingerprint_at(rotated, 0), ed);
    assert_string_not_equal(moq_tls_creds_fingerprint_at(rotated, 1), generated);

    moq_tls_creds_unref(before);
    moq_tls_creds_unref(after);
    moq_tls_creds_unref(rotated);
    moq_tls_server_free(srv);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

int main(void)
{
    const char *spec = getenv("MOQ_LOG");
    moq_log_set_level(MOQ_LOG_OFF);
    if (spec) moq_log_configure(spec);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fingerprint_hex_matches_sha256),
        cmocka_unit_test(fingerprint_file_matches_der_hash),
        cmocka_unit_test(generated_certificate_fits_webtransport_pinning),
        cmocka_unit_test(rotation_replaces_cert_and_keeps_old_creds_alive),
        cmocka_unit_test(generate_rejects_bad_names_and_config),
        cmocka_unit_test(loads_every_key_type_and_serves_it),
        cmocka_unit_test(loads_chain_file),
        cmocka_unit_test(load_failures_name_the_file),
        cmocka_unit_test(several_pairs_pick_by_sni),
        cmocka_unit_test(client_pinned_fingerprint),
        cmocka_unit_test(client_outlives_its_owner_in_sessions),
        cmocka_unit_test(client_disable_verify_accepts_anything),
        cmocka_unit_test(client_default_verification_rejects_self_signed),
        cmocka_unit_test(client_root_ca_checks_chain_and_hostname),
        cmocka_unit_test(client_config_errors),
        cmocka_unit_test(reload_follows_files_and_keeps_last_good),
        cmocka_unit_test(reload_keeps_generated_certificate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
