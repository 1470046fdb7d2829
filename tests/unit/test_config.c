/* Unit tests for src/config: the relay schema (dev and upstream-style configs, every error
 * path with its position), MOQ_* environment and flag overrides with their precedence,
 * validation, log settings, --help/--version, value parsers, and docs/help coverage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "config/cli.h"
#include "config/config.h"
#include "config/schema.h"
#include "util/err.h"
#include "util/log.h"

static char err[512];

/* Path of a file in the source tree: $MOQ_SOURCE_DIR/rel, or ../../rel from tests/unit. */
static const char *src_path(const char *rel)
{
    static char buf[4][1024];
    static int next;
    char *out = buf[next++ % 4];
    const char *root = getenv("MOQ_SOURCE_DIR");
    snprintf(out, sizeof(buf[0]), "%s/%s", root && *root ? root : "../..", rel);
    return out;
}

static void load_file_ok(struct moq_config *cfg, const char *rel)
{
    moq_config_init(cfg);
    if (moq_config_load_file(cfg, src_path(rel), err, sizeof(err)) != 0) fail_msg("%s", err);
    if (moq_config_finalize(cfg, err, sizeof(err)) != 0) fail_msg("%s", err);
}

static int load_doc(struct moq_config *cfg, const char *doc)
{
    moq_config_init(cfg);
    err[0] = '\0';
    int rc = moq_config_load_string(cfg, "relay.toml", doc, strlen(doc), err, sizeof(err));
    if (rc == 0) rc = moq_config_finalize(cfg, err, sizeof(err));
    return rc;
}

/* The document must fail (at load or finalize) with exactly this message. */
static void expect_error(const char *doc, const char *want)
{
    struct moq_config cfg;
    int rc = load_doc(&cfg, doc);
    if (rc != MOQ_ERR_CONFIG || strcmp(err, want) != 0)
        fail_msg("doc:\n%s\n  got rc=%d \"%s\"\n want \"%s\"", doc, rc, err, want);
    moq_config_free(&cfg);
}

/* The document loads but validation fails with a message containing want. */
static void expect_invalid(const char *doc, const char *want)
{
    struct moq_config cfg;
    if (load_doc(&cfg, doc) != 0) fail_msg("load failed: %s", err);
    int rc = moq_config_validate(&cfg, err, sizeof(err));
    if (rc != MOQ_ERR_CONFIG || !strstr(err, want))
        fail_msg("doc:\n%s\n  got rc=%d \"%s\"\n want ...%s...", doc, rc, err, want);
    moq_config_free(&cfg);
}

static bool has_warning(const struct moq_config *cfg, const char *needle)
{
    for (size_t i = 0; i < cfg->warnings.len; i++)
        if (strstr(cfg->warnings.v[i], needle)) return true;
    return false;
}

/* ---- defaults and shipped configs --------------------------------------------------------- */

static void defaults(void **state)
{
    struct moq_config cfg;
    moq_config_init(&cfg);
    assert_int_equal(cfg.log.level, MOQ_LOG_INFO);
    assert_string_equal(cfg.server.bind, "[::]:443");
    assert_int_equal(cfg.server.version.len, 0);
    assert_int_equal(cfg.server.quic.max_streams, 10000);
    assert_int_equal(cfg.server.quic.idle_timeout_ms, 30000);
    assert_int_equal(cfg.server.quic.keep_alive_ms, 5000);
    assert_int_equal(cfg.server.quic.ack_timeout_ms, 5000);
    assert_int_equal(cfg.client.quic.ack_timeout_ms, 5000);
    assert_true(cfg.server.quic.gso);
    assert_false(cfg.server.quic.gso_set);
    assert_int_equal(cfg.server.quic.congestion_control, MOQ_CONGESTION_DEFAULT);
    assert_string_equal(cfg.client.bind, "[::]:0");
    assert_int_equal(cfg.client.timeout_ms, 30000);
    assert_int_equal(cfg.client.failover_delay_ms, 250);
    assert_int_equal(cfg.client.resolution_delay_ms, 50);
    assert_int_equal(cfg.client.backoff.initial_ms, 1000);
    assert_int_equal(cfg.client.backoff.multiplier, 2);
    assert_false(cfg.client.tls.disable_verify);
    assert_int_equal(cfg.cluster.linger_ms, 5000);
    assert_false(cfg.cluster.id_set);
    assert_true(cfg.web.ws);
    assert_null(cfg.web.http.listen);
    assert_null(cfg.internal.listen);
    assert_string_equal(cfg.stats.prefix, ".stats");
    assert_int_equal(cfg.stats.interval_s, 1);
    assert_false(cfg.cache.capacity_set);
    assert_false(cfg.cache.duration_set);
    assert_false(cfg.auth.public_set);
    assert_false(cfg.iroh.enabled);
    assert_null(cfg.file);
    moq_config_free(&cfg);
}

static void dev_relay_toml(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "dev/relay.toml");
    assert_int_equal(cfg.log.level, MOQ_LOG_INFO);
    assert_string_equal(cfg.server.bind, "[::]:4443");
    assert_int_equal(cfg.server.tls.generate.len, 1);
    assert_string_equal(cfg.server.tls.generate.v[0], "localhost");
    assert_string_equal(cfg.web.http.listen, "[::]:4443");
    assert_true(cfg.auth.public_set);
    assert_int_equal(cfg.auth.public_subscribe.len, 1);
    assert_string_equal(cfg.auth.public_subscribe.v[0], "");
    assert_string_equal(cfg.auth.public_publish.v[0], "");
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings.len, 0);
    assert_non_null(strstr(cfg.file, "dev/relay.toml"));
    moq_config_free(&cfg);
}

static void dev_prod_toml(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "dev/prod.toml");
    assert_string_equal(cfg.server.bind, "[::]:443");
    assert_int_equal(cfg.server.tls.cert.len, 1);
    assert_string_equal(cfg.server.tls.cert.v[0], "cert.pem");
    assert_string_equal(cfg.server.tls.key.v[0], "key.pem");
    assert_null(cfg.web.http.listen);
    assert_string_equal(cfg.web.https.listen, "[::]:443");
    assert_string_equal(cfg.web.https.cert.v[0], "cert.pem");
    assert_string_equal(cfg.auth.key, "root.jwk");
    assert_string_equal(cfg.auth.public_subscribe.v[0], "demo");
    assert_string_equal(cfg.auth.public_publish.v[0], "demo");
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    moq_config_free(&cfg);
}

static void dev_cluster_root(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "dev/cluster/root.toml");
    assert_string_equal(cfg.server.bind, "[::]:4443");
    assert_string_equal(cfg.server.tls.generate.v[0], "localhost");
    assert_string_equal(cfg.web.http.listen, "[::]:4443");
    assert_string_equal(cfg.auth.key, "root.jwk");
    assert_string_equal(cfg.auth.public_subscribe.v[0], "");
    assert_string_equal(cfg.auth.public_publish.v[0], "");
    assert_int_equal(cfg.cluster.connect.len, 0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.warnings.len, 0);
    moq_config_free(&cfg);
}

static void dev_cluster_leaf(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "dev/cluster/leaf.toml");
    assert_string_equal(cfg.server.bind, "[::]:4444");
    assert_string_equal(cfg.web.http.listen, "[::]:4444");
    assert_string_equal(cfg.auth.key, "root.jwk");
    assert_string_equal(cfg.auth.public_subscribe.v[0], "");
    assert_int_equal(cfg.cluster.connect.len, 1);
    assert_string_equal(cfg.cluster.connect.v[0], "https://localhost:4443/");
    assert_string_equal(cfg.cluster.node, "https://localhost:4444/");
    assert_string_equal(cfg.cluster.token, "cluster.jwt");
    assert_true(cfg.client.tls.disable_verify);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    /* the original guide's `root` is a first-class key: no warning */
    assert_false(has_warning(&cfg, "cluster.root is deprecated"));
    assert_int_equal(cfg.warnings.len, 0);
    moq_config_free(&cfg);
}

/* Every configuration shipped under dir (recursively) loads and validates, so a new or
 * edited example cannot rot unnoticed. Returns how many there were. */
static int load_every_toml(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) fail_msg("cannot stat %s", path);
        if (S_ISDIR(st.st_mode)) {
            n += load_every_toml(path);
            continue;
        }
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".toml") != 0) continue;
        struct moq_config cfg;
        moq_config_init(&cfg);
        if (moq_config_load_file(&cfg, path, err, sizeof(err)) != 0 ||
            moq_config_finalize(&cfg, err, sizeof(err)) != 0 ||
            moq_config_validate(&cfg, err, sizeof(err)) != 0)
            fail_msg("%s: %s", path, err);
        moq_config_free(&cfg);
        n++;
    }
    closedir(d);
    return n;
}

static void every_dev_config(void **state)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", src_path("dev"));
    /* relay.toml, prod.toml, cluster/root.toml, cluster/leaf.toml at least */
    assert_true(load_every_toml(dir) >= 4);
}

static void upstream_localhost(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "tests/fixtures/config/localhost.toml");
    assert_int_equal(cfg.log.level, MOQ_LOG_DEBUG);
    assert_true(cfg.stats.enabled);
    assert_string_equal(cfg.stats.node, "local/host");
    assert_false(cfg.iroh.enabled);
    assert_string_equal(cfg.iroh.secret, "./iroh-secret.key");
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_true(has_warning(&cfg, "stats publishing is not implemented"));
    assert_true(has_warning(&cfg, "iroh.secret is accepted for compatibility"));
    moq_config_free(&cfg);
}

static void upstream_root(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "tests/fixtures/config/root.toml");
    assert_int_equal(cfg.server.tls.cert.len, 1);
    assert_string_equal(cfg.server.tls.cert.v[0], "root.crt");
    assert_string_equal(cfg.server.tls.key.v[0], "root.key");
    assert_string_equal(cfg.server.tls.root.v[0], "ca.pem");
    assert_null(cfg.auth.key);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    /* the roots take effect (mTLS on QUIC/WebTransport): no warning */
    assert_int_equal(cfg.warnings.len, 0);
    moq_config_free(&cfg);
}

static void upstream_leaf(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "tests/fixtures/config/leaf.toml");
    assert_int_equal(cfg.cluster.connect.len, 1);
    assert_string_equal(cfg.cluster.connect.v[0], "https://localhost:4443/");
    assert_string_equal(cfg.client.tls.cert, "leaf0.crt");
    assert_string_equal(cfg.client.tls.key, "leaf0.key");
    assert_string_equal(cfg.client.tls.root.v[0], "ca.pem");
    assert_false(cfg.client.tls.system_roots_set);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    moq_config_free(&cfg);
}

static void upstream_prod(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "tests/fixtures/config/prod.toml");
    assert_int_equal(cfg.auth.public_subscribe.len, 2);
    assert_string_equal(cfg.auth.public_subscribe.v[1], "demo");
    assert_int_equal(cfg.auth.public_publish.len, 2);
    assert_string_equal(cfg.auth.public_publish.v[1], "demo/viewer");
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    moq_config_free(&cfg);
}

static void legacy_spellings(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "tests/fixtures/config/legacy.toml");
    assert_string_equal(cfg.server.bind, "0.0.0.0:4443");
    assert_int_equal(cfg.cluster.connect.len, 1);
    assert_string_equal(cfg.cluster.connect.v[0], "https://root.example.com:4443/");
    assert_string_equal(cfg.cluster.node, "leaf.example.com:4443");
    assert_string_equal(cfg.cluster.token, "cluster.jwt");
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_false(has_warning(&cfg, "cluster.root is deprecated"));
    assert_true(has_warning(&cfg, "cluster.prefix"));
    moq_config_free(&cfg);
}

static void every_key(void **state)
{
    struct moq_config cfg;
    load_file_ok(&cfg, "tests/fixtures/config/full.toml");
    assert_int_equal(cfg.log.level, MOQ_LOG_TRACE);
    assert_int_equal(cfg.server.version.len, 3);
    assert_int_equal(cfg.server.quic.max_streams, 2048);
    assert_int_equal(cfg.server.quic.receive_window, 16u << 20);
    assert_true(cfg.server.quic.receive_window_set);
    assert_false(cfg.server.quic.gso);
    assert_true(cfg.server.quic.gso_set);
    assert_int_equal(cfg.server.quic.idle_timeout_ms, 60000);
    assert_int_equal(cfg.server.quic.keep_alive_ms, 0);
    assert_int_equal(cfg.server.quic.congestion_control, MOQ_CONGESTION_DELAY);
    assert_string_equal(cfg.server.tls.root.v[0], "ca.pem"); /* single string accepted */
    assert_int_equal(cfg.server.unix_socket.gid.len, 2);
    assert_string_equal(cfg.server.unix_socket.pid.v[0], "42");
    assert_int_equal(cfg.client.timeout_ms, 120000);
    assert_int_equal(cfg.client.quic.receive_window, 1048576);
    assert_int_equal(cfg.client.quic.congestion_control, MOQ_CONGESTION_LOSS);
    assert_true(cfg.client.tls.system_roots && cfg.client.tls.system_roots_set);
    assert_int_equal(cfg.client.backoff.multiplier, 3);
    assert_int_equal(cfg.client.backoff.timeout_ms, 0);
    assert_false(cfg.client.websocket.enabled);
    assert_int_equal(cfg.cluster.id, 12345);
    assert_true(cfg.cluster.id_set);
    assert_int_equal(cfg.cluster.connect.len, 3);
    assert_string_equal(cfg.cluster.connect.v[1], "moql://peer-b.example:4443");
    assert_true(cfg.cluster.mesh);
    assert_int_equal(cfg.cluster.linger_ms, 250);
    assert_int_equal(cfg.auth.keys.len, 2);
    assert_string_equal(cfg.auth.public_subscribe.v[0], "anon");
    assert_int_equal(cfg.auth.public_publish.len, 1);
    assert_true(cfg.auth.tls.disable_verify_set);
    assert_false(cfg.web.ws);
    assert_string_equal(cfg.web.https.root.v[0], "wca.pem");
    assert_string_equal(cfg.internal.listen, "127.0.0.1:9101");
    assert_int_equal(cfg.stats.interval_s, 5);
    assert_int_equal(cfg.stats.depth, 1);
    assert_int_equal(cfg.cache.capacity, 1073741824);
    assert_true(cfg.cache.headroom_set && cfg.cache.headroom > 0);
    assert_int_equal(cfg.cache.duration_ms, 30000);
    assert_true(cfg.iroh.disable_relay);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_true(has_warning(&cfg, "server.tcp.bind is accepted for compatibility"));
    assert_true(has_warning(&cfg, "auth.tls.cert is deprecated"));
    moq_config_free(&cfg);
}

/* ---- schema errors -------------------------------------------------------------------------- */

static void unknown_keys(void **state)
{
    expect_error("[server]\nlisten = \"[::]:443\"\nlistn = 1\n",
                 "relay.toml:3:1: unknown key 'server.listn' (did you mean 'server.listen'?)");
    expect_error("[serverr]\nlisten = 1\n",
                 "relay.toml:1:2: unknown key 'serverr' (did you mean 'server'?)");
    expect_error("\n\n  [log]\n  levl = \"info\"\n",
                 "relay.toml:4:3: unknown key 'log.levl' (did you mean 'log.level'?)");
    expect_error("[log]\nzzzzzz = 1\n", "relay.toml:2:1: unknown key 'log.zzzzzz'");
    expect_error("[server.tls]\ncert = \"c\"\nkey = \"k\"\nfoo.bar = 1\n",
                 "relay.toml:4:1: unknown key 'server.tls.foo'");
    expect_error("[auth.public]\nsubscribe = \"a\"\nread = \"b\"\n",
                 "relay.toml:3:1: unknown key 'auth.public.read' (expected subscribe, publish or "
                 "api)");
    expect_error("file = \"x.toml\"\n", "relay.toml:1:1: unknown key 'file'");
    expect_error("\"server.bind\" = \"[::]:1\"\n", "relay.toml:1:1: unknown key '\"server.bind\"'");
    expect_error("[cluster]\nconnect = []\npeers = []\n",
                 "relay.toml:3:1: unknown key 'cluster.peers'");
}

static void wrong_types(void **state)
{
    expect_error("[server]\nlisten = 443\n",
                 "relay.toml:2:10: server.listen must be an address string like \"[::]:443\", "
                 "not integer");
    expect_error("server = \"[::]:443\"\n", "relay.toml:1:1: 'server' must be a table, not string");
    expect_error("[log]\nlevel = 3\n", "relay.toml:2:9: log.level must be a string, not integer");
    expect_error("[client]\ntls.disable_verify = \"yes\"\n",
                 "relay.toml:2:22: client.tls.disable_verify must be a boolean (true or false), "
                 "not string");
    expect_error("[server.tls]\ncert = [\"a\", 1]\n",
                 "relay.toml:2:14: server.tls.cert: array items must be strings, not integer");
    expect_error("[server.tls]\ncert = {a = 1}\n",
                 "relay.toml:2:8: server.tls.cert must be a string or an array of strings, not "
                 "table");
    expect_error("[server.quic]\nmax_streams = \"10\"\n",
                 "relay.toml:2:15: server.quic.max_streams must be a non-negative integer, not "
                 "string");
    expect_error("[server.quic]\nmax_streams = -1\n",
                 "relay.toml:2:15: server.quic.max_streams must not be negative");
    expect_error("[cache]\nduration = 30\n",
                 "relay.toml:2:12: cache.duration must be a duration string like \"5s\" or "
                 "\"500ms\", not integer");
    expect_error("[auth]\npublic = 1\n",
                 "relay.toml:2:10: auth.public must be a string, an array of strings, or a table "
                 "with subscribe/publish, not integer");
    expect_error("[auth]\nkey = \"a\\u0000b\"\n",
                 "relay.toml:2:7: strings may not contain NUL characters");
    expect_error("[stats]\nenabled = 1\n",
                 "relay.toml:2:11: stats.enabled must be a boolean (true or false), not integer");
}

static void bad_values(void **state)
{
    expect_error("[server]\nbind = \"localhost\"\n",
                 "relay.toml:2:8: server.bind: invalid address \"localhost\" (expected IP:port or "
                 "host:port, e.g. \"[::]:443\")");
    expect_error("[web.http]\nlisten = \"[::1]:99999\"\n",
                 "relay.toml:2:10: web.http.listen: invalid socket address \"[::1]:99999\" "
                 "(expected IP:port, e.g. \"0.0.0.0:443\" or \"[::]:443\")");
    expect_error("[web.http]\nlisten = \"example.com:80\"\n",
                 "relay.toml:2:10: web.http.listen: invalid socket address \"example.com:80\" "
                 "(expected IP:port, e.g. \"0.0.0.0:443\" or \"[::]:443\")");
    expect_error("[log]\nlevel = \"loud\"\n",
                 "relay.toml:2:9: log.level: invalid log level \"loud\" (expected error, warn, "
                 "info, debug or trace)");
    expect_error("[cluster]\nlinger = \"5 parsecs\"\n",
                 "relay.toml:2:10: cluster.linger: invalid duration \"5 parsecs\" (expected e.g. "
                 "\"5s\", \"500ms\", \"1h 30m\" or \"0\")");
    expect_error("[cache]\ncapacity = \"lots\"\n",
                 "relay.toml:2:12: cache.capacity: invalid size \"lots\" (expected bytes, e.g. "
                 "\"8GiB\", \"512MB\", \"1073741824\", or a percentage of memory in (0, 100], "
                 "e.g. \"75%\")");
    expect_error("[cache]\ncapacity = \"150%\"\n",
                 "relay.toml:2:12: cache.capacity: invalid size \"150%\" (expected bytes, e.g. "
                 "\"8GiB\", \"512MB\", \"1073741824\", or a percentage of memory in (0, 100], "
                 "e.g. \"75%\")");
    expect_error("[server]\nversion = [\"moq-lite-05\", \"moq-lite-99\"]\n",
                 "relay.toml:2:27: server.version: unknown version \"moq-lite-99\" (this relay "
                 "supports moq-lite-01 to moq-lite-05, moq-lite-06-wip and moq-transport-14 to "
                 "moq-transport-20)");
    expect_error("[cluster]\nconnect = [\"http://peer:4443/\"]\n",
                 "relay.toml:2:12: cluster.connect: unsupported scheme \"http\" in cluster peer "
                 "\"http://peer:4443/\" (use https://, moql:// or moqt://)");
    expect_error("[cluster]\nconnect = \"https:///x\"\n",
                 "relay.toml:2:11: cluster.connect: cluster peer \"https:///x\" has no host");
    expect_error("[cluster]\nroot = \"ws://root\"\n",
                 "relay.toml:2:1: unsupported scheme \"ws\" in cluster peer \"ws://root\" (use "
                 "https://, moql:// or moqt://)");
    expect_error("[server.quic]\ncongestion_control = \"bbr\"\n",
                 "relay.toml:2:22: server.quic.congestion_control: invalid congestion control "
                 "\"bbr\" (expected loss or delay)");
    expect_error("[server.unix.allow]\nuid = [-1]\n",
                 "relay.toml:2:8: server.unix.allow.uid: invalid id \"-1\" (expected a "
                 "non-negative integer)");
}

/* server.workers: 0, the default, means one per CPU the process may run on; more than the
 * CID byte can name is refused. */
static void workers_setting(void **state)
{
    struct moq_config cfg;
    moq_config_init(&cfg);
    assert_int_equal(moq_config_workers(&cfg), moq_config_cpus());
    moq_config_free(&cfg);
    assert_int_equal(load_doc(&cfg, "[server]\nworkers = 1\n"), 0);
    assert_int_equal(moq_config_workers(&cfg), 1);
    moq_config_free(&cfg);
    assert_int_equal(load_doc(&cfg, "[server]\nworkers = 3\n"), 0);
    assert_int_equal(moq_config_workers(&cfg), 3);
    moq_config_free(&cfg);
    assert_int_equal(load_doc(&cfg, "[server]\nworkers = 0\n"), 0);
    assert_int_equal(moq_config_workers(&cfg), moq_config_cpus());
    assert_true(moq_config_cpus() >= 1);
    moq_config_free(&cfg);
    expect_error("[server]\nworkers = 257\n",
                 "relay.toml:2:1: server.workers must be at most 256 (0: one per CPU), got 257");
}

static void cross_field_errors(void **state)
{
    expect_error("[server.tls]\ncert = [\"a.pem\", \"b.pem\"]\nkey = [\"a.key\"]\n",
                 "relay.toml:2:1: server.tls.cert has 2 entries but server.tls.key has 1; "
                 "certificates and keys are paired by index");
    expect_error("[server.tls]\ncert = \"a.pem\"\n",
                 "relay.toml:2:1: server.tls.cert is set but server.tls.key is not (each "
                 "certificate needs its key)");
    expect_error("[server.tls]\nkey = \"a.key\"\n",
                 "relay.toml:2:1: server.tls.key is set but server.tls.cert is not (each key "
                 "needs its certificate)");
    expect_error("[web.https]\nlisten = \"[::]:443\"\n",
                 "relay.toml:2:1: web.https.listen needs web.https.cert and web.https.key");
    expect_error("[client.tls]\ncert = \"c.pem\"\n",
                 "relay.toml:2:1: client.tls.cert and client.tls.key must be set together");
    expect_error("[auth]\nkey = \"a.jwk\"\nkey_dir = \"keys/\"\n",
                 "relay.toml:3:1: auth.key and auth.key_dir cannot both be set");
    expect_error("[cluster]\nmesh = true\n",
                 "relay.toml:2:1: cluster.mesh needs cluster.node (this relay's own URL)");
    expect_error("[cluster]\nnode = \"https://a/?x=1&jwt=eyJhbGciOiJIUzI1NiJ9.e30.c2ln\"\n",
                 "relay.toml:2:1: cluster.node must not carry a token (?jwt=): it is advertised "
                 "to every relay of the cluster; set cluster.token instead");
    expect_error("[cluster]\nid = 0\n",
                 "relay.toml:2:1: cluster.id must be between 1 and 2^62-1, got 0");
    expect_error("[server]\nlisten = \"[::]:1\"\nbind = \"[::]:2\"\n",
                 "relay.toml:3:1: 'server.bind' sets the same option as the key on line 2; set "
                 "it once");
    expect_error("[cluster]\nnode = \"https://a/\"\nmesh = \"https://b/\"\n",
                 "relay.toml:3:1: the legacy form mesh = \"https://b/\" conflicts with "
                 "cluster.node = \"https://a/\"; set mesh = true");
}

static void toml_errors_are_positioned(void **state)
{
    expect_error("[server]\nlisten = \"[::]:443\n",
                 "relay.toml:2:19: newline in a single-line string (use \\n or a multi-line "
                 "string)");
    expect_error("[server]\nlisten = \"[::]:443", "relay.toml:2:10: unterminated string");
    expect_error("[auth]\npublic = \"\"\npublic = \"x\"\n",
                 "relay.toml:3:1: duplicate key 'public' (first defined at line 2)");
    expect_error("[server]\n[server]\n",
                 "relay.toml:2:1: table 'server' is defined twice (line 1)");
    expect_error("[stats]\ninterval = 1979-05-27\n",
                 "relay.toml:2:12: datetimes are not supported");
}

static void validation(void **state)
{
    const char *tls = "[server.tls]\ngenerate = [\"localhost\"]\n";
    char doc[512];
    expect_invalid("[auth]\npublic = \"\"\n", "no TLS certificate for the QUIC listener [::]:443");
    snprintf(doc, sizeof(doc), "%s", tls);
    expect_invalid(doc, "no authentication configured, so nobody could connect");
    snprintf(doc, sizeof(doc), "%s[auth]\npublic = []\n", tls); /* empty list = no access */
    expect_invalid(doc, "no authentication configured");
    snprintf(doc, sizeof(doc), "%s[auth]\npublic = \"\"\n[iroh]\nenabled = true\n", tls);
    expect_invalid(doc, "relay.toml:6:1: iroh is not supported by this relay");
    snprintf(doc, sizeof(doc), "%s[auth]\nauth_api = \"https://api/\"\n", tls);
    expect_invalid(doc, "auth.auth_api) is not supported");
    snprintf(doc, sizeof(doc), "%s[auth.public]\napi = \"https://api/\"\n", tls);
    expect_invalid(doc, "auth.public.api (--auth-public-api) is not supported");

    /* Accepted with warnings. */
    struct moq_config cfg;
    snprintf(doc, sizeof(doc),
             "%s[auth]\nkey = \"k\"\n[server]\nversion = [\"moq-lite-05\", \"moq-lite-02\"]\n"
             "[iroh]\nenabled = false\n[stats]\nenabled = true\n",
             tls);
    assert_int_equal(load_doc(&cfg, doc), 0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_false(has_warning(&cfg, "not supported"));
    assert_true(has_warning(&cfg, "stats publishing is not implemented"));
    moq_config_free(&cfg);

    /* moq-lite-06-wip is offered only when listed, and may be listed alone. */
    snprintf(doc, sizeof(doc), "%s[auth]\nkey = \"k\"\n[server]\nversion = [\"moq-lite-06-wip\"]\n",
             tls);
    assert_int_equal(load_doc(&cfg, doc), 0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    moq_config_free(&cfg);

    /* mTLS roots are no way in (mTLS is not implemented): still no authentication. */
    assert_int_equal(load_doc(&cfg, "[server.tls]\ncert = \"c\"\nkey = \"k\"\nroot = \"ca\"\n"), 0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "no authentication configured"));
    moq_config_free(&cfg);

    /* Upstream serves loaded certificates and a generated one side by side. */
    assert_int_equal(
        load_doc(&cfg, "[server.tls]\ncert = \"c\"\nkey = \"k\"\ngenerate = [\"localhost\"]\n"
                       "[auth]\npublic = \"anon\"\n"),
        0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    moq_config_free(&cfg);
}

/* Timers that defeat each other are accepted with a warning naming both keys. */
static void quic_timer_warnings(void **state)
{
    static const char tls[] = "[server.tls]\ngenerate = [\"localhost\"]\n[auth]\nkey = \"k\"\n";
    char doc[512];
    struct moq_config cfg;
    snprintf(doc, sizeof(doc), "%s[server.quic]\nidle_timeout = \"3s\"\nkeep_alive = \"5s\"\n",
             tls);
    assert_int_equal(load_doc(&cfg, doc), 0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_true(has_warning(&cfg, "server.quic.idle_timeout (3000 ms) is not longer than "
                                  "server.quic.keep_alive (5000 ms)"));
    /* 3 s idle also beats the 5 s default ack timeout */
    assert_true(has_warning(&cfg, "server.quic.ack_timeout (5000 ms) is not shorter than "
                                  "server.quic.idle_timeout (3000 ms)"));
    moq_config_free(&cfg);

    snprintf(doc, sizeof(doc), "%s[client.quic]\nidle_timeout = \"20s\"\nack_timeout = \"20s\"\n",
             tls);
    assert_int_equal(load_doc(&cfg, doc), 0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_true(has_warning(&cfg, "client.quic.ack_timeout (20000 ms) is not shorter"));
    assert_false(has_warning(&cfg, "keep_alive"));
    moq_config_free(&cfg);

    /* Keep-alives or the ack timeout off: nothing to compare. */
    snprintf(doc, sizeof(doc),
             "%s[server.quic]\nidle_timeout = \"3s\"\nkeep_alive = \"0s\"\nack_timeout = \"0s\"\n",
             tls);
    assert_int_equal(load_doc(&cfg, doc), 0);
    assert_int_equal(moq_config_validate(&cfg, err, sizeof(err)), 0);
    assert_true(cfg.server.quic.ack_timeout_ms == 0);
    assert_int_equal(cfg.warnings.len, 0);
    moq_config_free(&cfg);
}

static void public_forms(void **state)
{
    struct moq_config cfg;
    assert_int_equal(load_doc(&cfg, "[auth]\npublic = [\"anon\", \"demo\"]\n"), 0);
    assert_int_equal(cfg.auth.public_subscribe.len, 2);
    assert_int_equal(cfg.auth.public_publish.len, 2);
    moq_config_free(&cfg);

    assert_int_equal(load_doc(&cfg, "[auth.public]\nsubscribe = \"\"\n"), 0);
    assert_true(cfg.auth.public_set);
    assert_int_equal(cfg.auth.public_subscribe.len, 1);
    assert_int_equal(cfg.auth.public_publish.len, 0);
    moq_config_free(&cfg);

    assert_int_equal(load_doc(&cfg, "[auth.public]\n"), 0);
    assert_false(cfg.auth.public_set);
    moq_config_free(&cfg);

    /* --auth-public-subscribe / -publish add to whatever the file said. */
    assert_int_equal(load_doc(&cfg, "[auth.public]\nsubscribe = [\"a\"]\npublish = \"b\"\n"), 0);
    char *argv[] = {"moq-relay", "--auth-public-subscribe", "x", "--auth-public-publish=y", NULL};
    assert_int_equal(moq_config_apply_args(&cfg, 4, argv, err, sizeof(err)), 0);
    assert_int_equal(moq_config_finalize(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.auth.public_subscribe.len, 2);
    assert_string_equal(cfg.auth.public_subscribe.v[1], "x");
    assert_int_equal(cfg.auth.public_publish.len, 2);
    assert_string_equal(cfg.auth.public_publish.v[1], "y");
    moq_config_free(&cfg);
}

/* ---- environment and flags ------------------------------------------------------------------ */

static void env_overrides(void **state)
{
    struct moq_config cfg;
    moq_config_init(&cfg);
    char *env[] = {"PATH=/usr/bin",
                   "MOQ_SERVER_BIND=127.0.0.1:4443",
                   "MOQ_SERVER_TLS_CERT=a.pem,b.pem",
                   "MOQ_SERVER_TLS_KEY=a.key, b.key",
                   "MOQ_CLUSTER_CONNECT=https://a/,moql://b:1",
                   "MOQ_CLIENT_TLS_DISABLE_VERIFY=1",
                   "MOQ_WEB_WS=false",
                   "MOQ_CACHE_CAPACITY=512MB",
                   "MOQ_CACHE_DURATION=1m",
                   "MOQ_CLUSTER_LINGER=0",
                   "MOQ_LOG_LEVEL=warn",
                   "MOQ_AUTH_PUBLIC=",
                   "MOQ_AUTH_KEY=",           /* empty: ignored */
                   "MOQ_SOMETHING_UNKNOWN=1", /* unknown MOQ_*: ignored */
                   "MOQ_SERVER_TLS_GENERATEX=1",
                   NULL};
    assert_int_equal(moq_config_apply_env(&cfg, env, err, sizeof(err)), 0);
    assert_int_equal(moq_config_finalize(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.server.bind, "127.0.0.1:4443");
    assert_int_equal(cfg.server.tls.cert.len, 2);
    assert_string_equal(cfg.server.tls.key.v[1], "b.key");
    assert_int_equal(cfg.cluster.connect.len, 2);
    assert_true(cfg.client.tls.disable_verify);
    assert_false(cfg.web.ws);
    assert_int_equal(cfg.cache.capacity, 512000000);
    assert_true(cfg.cache.capacity_set);
    assert_int_equal(cfg.cache.duration_ms, 60000);
    assert_int_equal(cfg.cluster.linger_ms, 0);
    assert_int_equal(cfg.log.level, MOQ_LOG_WARN);
    assert_true(cfg.auth.public_set);
    assert_string_equal(cfg.auth.public_subscribe.v[0], "");
    assert_null(cfg.auth.key);
    assert_int_equal(cfg.server.tls.generate.len, 0);
    moq_config_free(&cfg);

    static const struct {
        const char *var, *msg;
    } bad[] = {
        {"MOQ_WEB_WS=maybe",
         "MOQ_WEB_WS: invalid boolean \"maybe\" (expected true, false, 1 or 0)"},
        {"MOQ_SERVER_BIND=nope", "MOQ_SERVER_BIND: invalid address \"nope\" (expected IP:port or "
                                 "host:port, e.g. \"[::]:443\")"},
        {"MOQ_CLUSTER_ID=x",
         "MOQ_CLUSTER_ID: invalid number \"x\" (expected a non-negative integer)"},
        {"MOQ_CLUSTER_CONNECT=https://a/,ftp://b",
         "MOQ_CLUSTER_CONNECT: unsupported scheme \"ftp\" "
         "in cluster peer \"ftp://b\" (use https://, "
         "moql:// or moqt://)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *e[] = {(char *)bad[i].var, NULL};
        moq_config_init(&cfg);
        assert_int_equal(moq_config_apply_env(&cfg, e, err, sizeof(err)), MOQ_ERR_CONFIG);
        assert_string_equal(err, bad[i].msg);
        moq_config_free(&cfg);
    }
}

static void flag_overrides(void **state)
{
    struct moq_config cfg;
    moq_config_init(&cfg);
    char *argv[] = {"moq-relay",
                    "--server-bind=[::1]:1",
                    "--tls-cert",
                    "a.pem",
                    "--tls-cert",
                    "b.pem", /* repeat appends */
                    "--server-tls-key=a.key",
                    "--tls-key=b.key",
                    "--tls-generate=localhost,127.0.0.1",
                    "--client-tls-disable-verify",
                    "--web-ws=false",
                    "--cluster-connect",
                    "https://a/,https://b/",
                    "--cluster-root=root.example:443",
                    "--cache-capacity",
                    "1GiB",
                    "--log-level",
                    "trace",
                    "--auth-public",
                    "",
                    "--stats-enabled=true",
                    "--client-connect-timeout=0",
                    "--server-max-streams=7",
                    "--listen=[::]:7", /* upstream alias of --server-bind, later wins */
                    "relay.toml",
                    NULL};
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
    enum moq_config_action action;
    assert_int_equal(moq_config_scan_args(&cfg, argc, argv, &action, err, sizeof(err)), 0);
    assert_int_equal(action, MOQ_CONFIG_RUN);
    assert_string_equal(cfg.file, "relay.toml");
    assert_int_equal(moq_config_apply_args(&cfg, argc, argv, err, sizeof(err)), 0);
    assert_int_equal(moq_config_finalize(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.server.bind, "[::]:7");
    assert_int_equal(cfg.server.tls.cert.len, 2);
    assert_string_equal(cfg.server.tls.cert.v[1], "b.pem");
    assert_int_equal(cfg.server.tls.key.len, 2);
    assert_int_equal(cfg.server.tls.generate.len, 2);
    assert_true(cfg.client.tls.disable_verify);
    assert_false(cfg.web.ws);
    assert_int_equal(cfg.cluster.connect.len, 3);
    assert_string_equal(cfg.cluster.connect.v[2], "https://root.example:443/");
    assert_int_equal(cfg.cache.capacity, 1073741824);
    assert_int_equal(cfg.log.level, MOQ_LOG_TRACE);
    assert_true(cfg.auth.public_set);
    assert_true(cfg.stats.enabled);
    assert_int_equal(cfg.client.timeout_ms, 0);
    assert_int_equal(cfg.server.quic.max_streams, 7);
    moq_config_free(&cfg);
}

static void flag_errors(void **state)
{
    static const struct {
        const char *args[4];
        const char *msg;
    } cases[] = {
        {{"--bogus"}, "--bogus: unknown option (see --help)"},
        {{"--bogus=1"}, "--bogus: unknown option (see --help)"},
        {{"-x"}, "-x: unknown option (see --help)"},
        {{"--tls-cert"}, "--tls-cert: missing value"},
        {{"a.toml", "b.toml"}, "unexpected argument \"b.toml\": only one config file may be given"},
        {{"--web-ws=perhaps"},
         "--web-ws: invalid boolean \"perhaps\" (expected true, false, 1 or 0)"},
        {{"--cache-duration", "soon"},
         "--cache-duration: invalid duration \"soon\" (expected e.g. "
         "\"5s\", \"500ms\", \"1h 30m\" or \"0\")"},
        {{"--server-version=moq-lite-7"},
         "--server-version: unknown version \"moq-lite-7\" (this "
         "relay supports moq-lite-01 to moq-lite-05, moq-lite-06-wip and moq-transport-14 to "
         "moq-transport-20)"},
        {{"--web-http-listen", "localhost:80"},
         "--web-http-listen: invalid socket address "
         "\"localhost:80\" (expected IP:port, e.g. "
         "\"0.0.0.0:443\" or \"[::]:443\")"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[6] = {"moq-relay"};
        int argc = 1;
        for (int k = 0; k < 4 && cases[i].args[k]; k++)
            argv[argc++] = (char *)cases[i].args[k];
        struct moq_config cfg;
        enum moq_config_action action;
        char *env[] = {NULL};
        int rc = moq_config_load(&cfg, argc, argv, env, &action, err, sizeof(err));
        if (rc != MOQ_ERR_CONFIG || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu: rc=%d \"%s\"", i, rc, err);
        moq_config_free(&cfg);
    }
}

static void help_and_version_actions(void **state)
{
    struct moq_config cfg;
    enum moq_config_action action;
    char *env[] = {NULL};
    char *h[] = {"moq-relay", "relay.toml", "--help", NULL};
    assert_int_equal(moq_config_load(&cfg, 3, h, env, &action, err, sizeof(err)), 0);
    assert_int_equal(action, MOQ_CONFIG_HELP);
    assert_null(cfg.server.tls.generate.v); /* nothing loaded */
    moq_config_free(&cfg);
    char *v[] = {"moq-relay", "--version", NULL};
    assert_int_equal(moq_config_load(&cfg, 2, v, env, &action, err, sizeof(err)), 0);
    assert_int_equal(action, MOQ_CONFIG_VERSION);
    moq_config_free(&cfg);
    char *v2[] = {"moq-relay", "-V", "-h", NULL}; /* help wins */
    assert_int_equal(moq_config_load(&cfg, 3, v2, env, &action, err, sizeof(err)), 0);
    assert_int_equal(action, MOQ_CONFIG_HELP);
    moq_config_free(&cfg);
    /* "--" ends the options: a file may start with a dash. */
    char *dd[] = {"moq-relay", "--", "-odd.toml", NULL};
    assert_int_equal(moq_config_scan_args(&cfg, 3, dd, &action, err, sizeof(err)), 0);
    assert_string_equal(cfg.file, "-odd.toml");
    moq_config_free(&cfg);

    /* cli: --version/--help exit 0, bad flags exit 2, bad config exits 1. */
    int status = -1;
    char *cv[] = {"moq-relay", "--version", NULL};
    assert_false(moq_cli_configure(&cfg, 2, cv, env, &status));
    assert_int_equal(status, 0);
    char *cb[] = {"moq-relay", "--nope", NULL};
    assert_false(moq_cli_configure(&cfg, 2, cb, env, &status));
    assert_int_equal(status, 2);
    char *cm[] = {"moq-relay", "/nonexistent/relay.toml", NULL};
    assert_false(moq_cli_configure(&cfg, 2, cm, env, &status));
    assert_int_equal(status, 1);
    char *cn[] = {"moq-relay", NULL}; /* defaults only: no TLS, no auth */
    assert_false(moq_cli_configure(&cfg, 1, cn, env, &status));
    assert_int_equal(status, 1);
    char *cr[] = {"moq-relay", "--tls-generate=localhost", "--auth-public=anon", NULL};
    assert_true(moq_cli_configure(&cfg, 3, cr, env, &status));
    assert_int_equal(status, 0);
    assert_string_equal(cfg.auth.public_subscribe.v[0], "anon");
    moq_config_free(&cfg);
}

static char *write_temp(const char *content)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/moq-config-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void precedence(void **state)
{
    /* defaults < file < env < flags, per option. */
    char *path = write_temp("[server]\nlisten = \"127.0.0.1:1\"\n"
                            "tls.generate = [\"file\"]\n"
                            "[cluster]\nlinger = \"1s\"\n"
                            "[web.http]\nlisten = \"127.0.0.1:2\"\n"
                            "[stats]\nenabled = true\n"
                            "[auth]\npublic = \"fromfile\"\n");
    char *env[] = {"MOQ_CLUSTER_LINGER=2s", "MOQ_WEB_HTTP_LISTEN=127.0.0.1:3",
                   "MOQ_SERVER_TLS_GENERATE=env1,env2", "MOQ_AUTH_PUBLIC=fromenv", NULL};
    char *argv[] = {"moq-relay", path, "--web-http-listen=127.0.0.1:4", "--tls-generate=flag",
                    NULL};
    struct moq_config cfg;
    enum moq_config_action action;
    assert_int_equal(moq_config_load(&cfg, 4, argv, env, &action, err, sizeof(err)), 0);
    assert_string_equal(cfg.server.bind, "127.0.0.1:1");     /* file */
    assert_int_equal(cfg.cluster.linger_ms, 2000);           /* env over file */
    assert_string_equal(cfg.web.http.listen, "127.0.0.1:4"); /* flag over env */
    assert_int_equal(cfg.server.tls.generate.len, 1);        /* flag replaces the list */
    assert_string_equal(cfg.server.tls.generate.v[0], "flag");
    assert_true(cfg.stats.enabled);                     /* file, not clobbered */
    assert_int_equal(cfg.auth.public_subscribe.len, 1); /* env replaces file */
    assert_string_equal(cfg.auth.public_subscribe.v[0], "fromenv");
    assert_int_equal(cfg.client.timeout_ms, 30000); /* default */
    assert_string_equal(cfg.file, path);
    moq_config_free(&cfg);

    /* An explicit false flag beats a true in the file. */
    char *argv2[] = {"moq-relay", path, "--stats-enabled=false", NULL};
    char *noenv[] = {NULL};
    assert_int_equal(moq_config_load(&cfg, 3, argv2, noenv, &action, err, sizeof(err)), 0);
    assert_false(cfg.stats.enabled);
    moq_config_free(&cfg);

    /* Errors in the file name the file. */
    char *bad = write_temp("[server]\nbind = 1\n");
    char *argv3[] = {"moq-relay", bad, NULL};
    assert_int_equal(moq_config_load(&cfg, 2, argv3, noenv, &action, err, sizeof(err)),
                     MOQ_ERR_CONFIG);
    char want[256];
    snprintf(want, sizeof(want),
             "%s:2:8: server.bind must be an address string like \"[::]:443\", not integer", bad);
    assert_string_equal(err, want);
    moq_config_free(&cfg);
    unlink(bad);
    unlink(path);

    char *missing[] = {"moq-relay", "/nonexistent/moq.toml", NULL};
    assert_int_equal(moq_config_load(&cfg, 2, missing, noenv, &action, err, sizeof(err)),
                     MOQ_ERR_CONFIG);
    assert_non_null(strstr(err, "/nonexistent/moq.toml: cannot open"));
    moq_config_free(&cfg);
}

static void cross_field_errors_name_the_source(void **state)
{
    struct moq_config cfg;
    moq_config_init(&cfg);
    char *env[] = {"MOQ_SERVER_TLS_CERT=a,b", "MOQ_SERVER_TLS_KEY=a", NULL};
    assert_int_equal(moq_config_apply_env(&cfg, env, err, sizeof(err)), 0);
    assert_int_equal(moq_config_finalize(&cfg, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_string_equal(err, "MOQ_SERVER_TLS_CERT: server.tls.cert has 2 entries but "
                             "server.tls.key has 1; certificates and keys are paired by index");
    moq_config_free(&cfg);
    moq_config_init(&cfg);
    char *argv[] = {"moq-relay", "--cluster-mesh", NULL};
    assert_int_equal(moq_config_apply_args(&cfg, 2, argv, err, sizeof(err)), 0);
    assert_int_equal(moq_config_finalize(&cfg, err, sizeof(err)), MOQ_ERR_CONFIG);
    assert_string_equal(err,
                        "--cluster-mesh: cluster.mesh needs cluster.node (this relay's own URL)");
    moq_config_free(&cfg);
}

/* ---- value parsers ------------------------------------------------------------------------ */

static void durations(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        {"0", 0},          {"5s", 5000},        {"500ms", 500},     {"2m", 120000},
        {"1h", 3600000},   {"1h 30m", 5400000}, {"1h30m", 5400000}, {"1d", 86400000},
        {"1500us", 2},     {"1ns", 1},          {"10 sec", 10000},  {"3 seconds", 3000},
        {"1w", 604800000}, {"2min 5s", 125000}, {"250msec", 250},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t ms = 12345;
        if (moq_config_parse_duration(ok[i].s, &ms) != 0 || ms != ok[i].ms)
            fail_msg("%s -> %llu", ok[i].s, (unsigned long long)ms);
    }
    static const char *bad[] = {
        "", "5", "s", "-5s", "5x", "1.5s", "5s5", "99999999999999999999s", "600000000y", "5 s x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms;
        if (moq_config_parse_duration(bad[i], &ms) == 0) fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void sizes(void **state)
{
    static const struct {
        const char *s;
        uint64_t b;
    } ok[] = {
        {"0", 0},
        {"1073741824", 1073741824},
        {"18446744073709551615", UINT64_MAX},
        {"8GiB", 8ull << 30},
        {"8 GiB", 8ull << 30},
        {"8gib", 8ull << 30},
        {"512MB", 512000000},
        {"1.5GB", 1500000000},
        {"1.5 GiB", 1610612736},
        {"10k", 10000},
        {"10KiB", 10240},
        {"3b", 3},
        {"2TB", 2000000000000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t b = 1;
        if (moq_config_parse_size(ok[i].s, &b) != 0 || b != ok[i].b)
            fail_msg("%s -> %llu", ok[i].s, (unsigned long long)b);
    }
    static const char *bad[] = {"",
                                "GiB",
                                "-1",
                                "1.2.3GB",
                                "5XB",
                                "0%",
                                "101%",
                                "1e3",
                                "18446744073709551616",
                                "99999999999PiB",
                                ".5GB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t b;
        if (moq_config_parse_size(bad[i], &b) == 0) fail_msg("accepted \"%s\"", bad[i]);
    }
    /* Percentages resolve against the memory this process may use. */
    uint64_t total = moq_config_total_memory(), b = 0;
    assert_true(total > 0);
    assert_int_equal(moq_config_parse_size("75%", &b), 0);
    assert_true(b <= total && b >= total / 100 * 74);
    assert_int_equal(moq_config_parse_size("100%", &b), 0);
    assert_true(b == total);
}

static void addresses(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(moq_config_parse_addr("[::]:4443", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 4443);
    assert_int_equal(moq_config_parse_addr("0.0.0.0:443", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 443);
    assert_int_equal(moq_config_parse_addr("127.0.0.1:0", &ss, &len), 0);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(0x7f000001));
    assert_int_equal(moq_config_parse_addr("[2001:db8::1]:65535", &ss, NULL), 0);
    static const char *bad[] = {"",
                                ":443",
                                "127.0.0.1",
                                "127.0.0.1:",
                                "127.0.0.1:65536",
                                "127.0.0.1:-1",
                                "::1:443",
                                "[::1]443",
                                "[::1]",
                                "[::1]:",
                                "1.2.3:4",
                                "localhost:443",
                                "[fe80::1%eth0]:443",
                                "127.0.0.1:4x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (moq_config_parse_addr(bad[i], &ss, &len) == 0) fail_msg("accepted \"%s\"", bad[i]);
    assert_true(moq_config_version_supported("moq-lite-05"));
    assert_true(moq_config_version_supported("moq-lite-03"));
    assert_true(moq_config_version_supported("moq-lite-02"));
    assert_true(moq_config_version_supported("moq-lite-06-wip"));
    assert_false(moq_config_version_supported("moq-lite-06"));
    assert_true(moq_config_version_supported("moq-transport-14"));
    assert_true(moq_config_version_supported("moq-transport-16"));
    assert_true(moq_config_version_supported("moq-transport-20"));
    assert_false(moq_config_version_supported("moq-transport-21"));
    assert_false(moq_config_version_supported("moq-transport-07"));

    /* server.bind also takes host:port (resolved at bind time). */
    struct moq_config cfg;
    assert_int_equal(load_doc(&cfg, "[server]\nbind = \"fly-global-services:443\"\n"), 0);
    assert_string_equal(cfg.server.bind, "fly-global-services:443");
    moq_config_free(&cfg);
}

/* ---- logging -------------------------------------------------------------------------------- */

static void log_settings(void **state)
{
    struct moq_config cfg;
    moq_config_init(&cfg);
    cfg.log.level = MOQ_LOG_WARN;
    char warn[256] = "";
    char *none[] = {NULL};
    assert_int_equal(moq_config_apply_log(&cfg, none, warn, sizeof(warn)), 0);
    assert_true(moq_log_enabled(MOQ_LOG_WARN, "quic"));
    assert_false(moq_log_enabled(MOQ_LOG_INFO, "quic"));

    char *rust[] = {"RUST_LOG=info,moq_native=trace", NULL};
    assert_int_equal(moq_config_apply_log(&cfg, rust, warn, sizeof(warn)), 0);
    assert_true(moq_log_enabled(MOQ_LOG_INFO, "relay"));
    assert_false(moq_log_enabled(MOQ_LOG_DEBUG, "relay"));
    assert_true(moq_log_enabled(MOQ_LOG_TRACE, "quic"));

    /* MOQ_LOG wins over RUST_LOG; unknown targets are ignored. */
    char *both[] = {"RUST_LOG=trace", "MOQ_LOG=error,auth=debug,nosuchcrate=trace", NULL};
    assert_int_equal(moq_config_apply_log(&cfg, both, warn, sizeof(warn)), 0);
    assert_false(moq_log_enabled(MOQ_LOG_WARN, "relay"));
    assert_true(moq_log_enabled(MOQ_LOG_DEBUG, "auth"));

    /* A bad spec is reported and ignored: the configured level stays. */
    char *bad[] = {"RUST_LOG=verbose=loud", NULL};
    assert_int_equal(moq_config_apply_log(&cfg, bad, warn, sizeof(warn)), MOQ_ERR_INVALID);
    assert_non_null(strstr(warn, "RUST_LOG=\"verbose=loud\" has an unknown level; ignored"));
    assert_true(moq_log_enabled(MOQ_LOG_WARN, "relay"));
    assert_false(moq_log_enabled(MOQ_LOG_INFO, "relay"));

    char *empty[] = {"MOQ_LOG=", "RUST_LOG=debug", NULL}; /* empty MOQ_LOG falls through */
    assert_int_equal(moq_config_apply_log(&cfg, empty, warn, sizeof(warn)), 0);
    assert_true(moq_log_enabled(MOQ_LOG_DEBUG, "moq"));
    moq_config_free(&cfg);
    moq_log_set_level(MOQ_LOG_WARN); /* keep the remaining tests quiet */
}

/* ---- help and docs cover every option ---------------------------------------------------------
 */

static char *read_all(FILE *f)
{
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    return buf;
}

static void help_and_docs_list_everything(void **state)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    moq_config_print_help(f);
    char *help = read_all(f);
    fclose(f);
    FILE *d = fopen(src_path("docs/config.md"), "r");
    if (!d) fail_msg("cannot open %s", src_path("docs/config.md"));
    char *docs = read_all(d);
    fclose(d);
    assert_non_null(strstr(help, "Usage: moq-relay [OPTIONS] [CONFIG.toml]"));
    assert_non_null(strstr(help, "--version"));
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (o->flags & OPT_ALIAS) continue;
        char flag[80];
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        if (!(o->flags & OPT_HIDDEN)) {
            if (!strstr(help, flag)) fail_msg("--help lacks %s", flag);
            if (o->env && !strstr(help, o->env)) fail_msg("--help lacks %s", o->env);
        }
        if (o->flag && !strstr(docs, flag)) fail_msg("docs/config.md lacks %s", flag);
        if (o->env && !strstr(docs, o->env)) fail_msg("docs/config.md lacks %s", o->env);
        if (o->key) {
            char key[80];
            snprintf(key, sizeof(key), "`%s`", o->key);
            if (!strstr(docs, key)) fail_msg("docs/config.md lacks %s", key);
        }
    }
    free(help);
    free(docs);
}

/* The help line of a flag ("  --flag <VALUE>   ..."), NUL-terminated in line. */
static bool help_line(const char *help, const char *flag, char *line, size_t len)
{
    char head[96];
    snprintf(head, sizeof(head), "\n  --%s", flag);
    for (const char *p = strstr(help, head); p; p = strstr(p + 1, head)) {
        char next = p[strlen(head)];
        if (next != ' ' && next != '[') continue; /* a longer flag with this prefix */
        const char *end = strchr(p + 1, '\n');
        size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);
        snprintf(line, len, "%.*s", (int)n, p + 1);
        return true;
    }
    return false;
}

/* Options that are accepted but do nothing say so in --help (and only those): stats
 * publishing, the QUIC tuning that outbound dials do not use, ... */
static void help_marks_options_without_effect(void **state)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    moq_config_print_help(f);
    char *help = read_all(f);
    fclose(f);
    static const char mark[] = "[accepted, no effect]";
    char line[512];
    for (size_t i = 0; i < moq_config_nopts; i++) {
        const struct opt *o = &moq_config_opts[i];
        if (!o->flag || (o->flags & (OPT_ALIAS | OPT_HIDDEN))) continue;
        if (!help_line(help, o->flag, line, sizeof(line))) fail_msg("--help lacks --%s", o->flag);
        bool marked = strstr(line, mark) != NULL;
        if (marked != !!(o->flags & OPT_IGNORED))
            fail_msg("--%s is %smarked: %s", o->flag, marked ? "" : "not ", line);
    }
    static const char *const none[] = {
        "stats-enabled",
        "stats-prefix",
        "stats-node",
        "client-bind",
    };
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_true(help_line(help, none[i], line, sizeof(line)));
        if (!strstr(line, mark)) fail_msg("--%s has no effect but is not marked", none[i]);
    }
    assert_true(help_line(help, "server-bind", line, sizeof(line)));
    assert_null(strstr(line, mark));
    free(help);
}

/* The reference table in docs/config.md is moq_config_print_reference's output. When this
 * fails, the fresh table is in $MOQ_BUILD_DIR/config-reference.md: put it in the docs. */
static void docs_reference_is_generated(void **state)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    moq_config_print_reference(f);
    char *want = read_all(f);
    fclose(f);
    FILE *d = fopen(src_path("docs/config.md"), "r");
    if (!d) fail_msg("cannot open %s", src_path("docs/config.md"));
    char *docs = read_all(d);
    fclose(d);
    char *table = strstr(docs, "| key | type | default | flag | env | description |\n");
    assert_non_null(table);
    char *end = strstr(table, "\n\n");
    size_t len = end ? (size_t)(end - table) + 1 : strlen(table);
    if (len != strlen(want) || memcmp(table, want, len) != 0) {
        const char *build = getenv("MOQ_BUILD_DIR");
        char path[1024];
        snprintf(path, sizeof(path), "%s/config-reference.md", build && *build ? build : ".");
        FILE *out = fopen(path, "w");
        if (out) {
            fputs(want, out);
            fclose(out);
        }
        fail_msg("docs/config.md's reference table is out of date; the generated one is in %s",
                 path);
    }
    free(want);
    free(docs);
}

int main(void)
{
    moq_log_set_level(MOQ_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(dev_relay_toml),
        cmocka_unit_test(dev_prod_toml),
        cmocka_unit_test(dev_cluster_root),
        cmocka_unit_test(dev_cluster_leaf),
        cmocka_unit_test(every_dev_config),
        cmocka_unit_test(upstream_localhost),
        cmocka_unit_test(upstream_root),
        cmocka_unit_test(upstream_leaf),
        cmocka_unit_test(upstream_prod),
        cmocka_unit_test(legacy_spellings),
        cmocka_unit_test(help_marks_options_without_effect),
        cmocka_unit_test(docs_reference_is_generated),
        cmocka_unit_test(every_key),
        cmocka_unit_test(unknown_keys),
        cmocka_unit_test(wrong_types),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(cross_field_errors),
        cmocka_unit_test(workers_setting),
        cmocka_unit_test(toml_errors_are_positioned),
        cmocka_unit_test(validation),
        cmocka_unit_test(quic_timer_warnings),
        cmocka_unit_test(public_forms),
        cmocka_unit_test(env_overrides),
        cmocka_unit_test(flag_overrides),
        cmocka_unit_test(flag_errors),
        cmocka_unit_test(help_and_version_actions),
        cmocka_unit_test(precedence),
        cmocka_unit_test(cross_field_errors_name_the_source),
        cmocka_unit_test(durations),
        cmocka_unit_test(sizes),
        cmocka_unit_test(addresses),
        cmocka_unit_test(log_settings),
        cmocka_unit_test(help_and_docs_list_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
