/* schema.c - every relay option: TOML key, flags, env variable, type, default and help.
 * Names follow upstream moq-relay (rs/moq-relay, rs/moq-native) wherever it has one. */
#include "config/schema.h"

#include "config/config.h"

#define F(field) offsetof(struct moq_config, field)
#define S(field) ((ssize_t)offsetof(struct moq_config, field))
#define NOSET    ((ssize_t)-1)

/* noeffect: OPT_IGNORED where the side does not use the tuning (outbound dials take only the
 * keep-alive and idle timeout), else 0. */
#define QUIC_OPTS(side, SIDE, extra_alias, noeffect)                                               \
    {#side ".quic.max_streams",                                                                    \
     #side "-quic-max-streams",                                                                    \
     extra_alias,                                                                                  \
     "MOQ_" #SIDE "_QUIC_MAX_STREAMS",                                                             \
     T_U64,                                                                                        \
     F(side.quic.max_streams),                                                                     \
     NOSET,                                                                                        \
     noeffect,                                                                                     \
     "10000",                                                                                      \
     "Maximum concurrent QUIC streams per direction and connection"},                              \
        {#side ".quic.max_concurrent_streams",                                                     \
         NULL,                                                                                     \
         NULL,                                                                                     \
         NULL,                                                                                     \
         T_U64,                                                                                    \
         F(side.quic.max_streams),                                                                 \
         NOSET,                                                                                    \
         OPT_ALIAS,                                                                                \
         NULL,                                                                                     \
         NULL},                                                                                    \
        {#side ".quic.receive_window",                                                             \
         #side "-quic-receive-window",                                                             \
         NULL,                                                                                     \
         "MOQ_" #SIDE "_QUIC_RECEIVE_WINDOW",                                                      \
         T_SIZE,                                                                                   \
         F(side.quic.receive_window),                                                              \
         S(side.quic.receive_window_set),                                                          \
         noeffect,                                                                                 \
         NULL,                                                                                     \
         "QUIC connection flow-control window in bytes (unset: stack default)"},                   \
        {#side ".quic.gso",                                                                        \
         #side "-quic-gso",                                                                        \
         NULL,                                                                                     \
         "MOQ_" #SIDE "_QUIC_GSO",                                                                 \
         T_BOOL,                                                                                   \
         F(side.quic.gso),                                                                         \
         S(side.quic.gso_set),                                                                     \
         noeffect,                                                                                 \
         "true",                                                                                   \
         "Use UDP generic segmentation offload when the kernel supports it"},                      \
        {#side ".quic.idle_timeout",                                                               \
         #side "-quic-idle-timeout",                                                               \
         NULL,                                                                                     \
         "MOQ_" #SIDE "_QUIC_IDLE_TIMEOUT",                                                        \
         T_DURATION,                                                                               \
         F(side.quic.idle_timeout_ms),                                                             \
         NOSET,                                                                                    \
         0,                                                                                        \
         "30s",                                                                                    \
         "Close a QUIC connection after this long without activity"},                              \
        {#side ".quic.keep_alive",                                                                 \
         #side "-quic-keep-alive",                                                                 \
         NULL,                                                                                     \
         "MOQ_" #SIDE "_QUIC_KEEP_ALIVE",                                                          \
         T_DURATION,                                                                               \
         F(side.quic.keep_alive_ms),                                                               \
         NOSET,                                                                                    \
         0,                                                                                        \
         "5s",                                                                                     \
         "QUIC keep-alive (PING) interval; 0 disables keep-alives"},                               \
        {#side ".quic.ack_timeout",                                                                \
         #side "-quic-ack-timeout",                                                                \
         NULL,                                                                                     \
         "MOQ_" #SIDE "_QUIC_ACK_TIMEOUT",                                                         \
         T_DURATION,                                                                               \
         F(side.quic.ack_timeout_ms),                                                              \
         NOSET,                                                                                    \
         0,                                                                                        \
         "5s",                                                                                     \
         "Close a session whose keep-alives or data stay unacknowledged this long, nothing "       \
         "heard from the peer meanwhile (a vanished peer); 0 leaves it to the idle timeout"},      \
        {#side ".quic.mtu_discovery",                                                              \
         #side "-quic-mtu-discovery",                                                              \
         NULL,                                                                                     \
         "MOQ_" #SIDE "_QUIC_MTU_DISCOVERY",                                                       \
         T_BOOL,                                                                                   \
         F(side.quic.mtu_discovery),                                                               \
         NOSET,                                                                                    \
         OPT_IGNORED,                                                                              \
         "false",                                                                                  \
         "Probe for a larger path MTU"},                                                           \
        {#side ".quic.congestion_control",                                                         \
         #side "-quic-congestion-control",                                                         \
         NULL,                                                                                     \
         "MOQ_" #SIDE "_QUIC_CONGESTION_CONTROL",                                                  \
         T_CONGESTION,                                                                             \
         F(side.quic.congestion_control),                                                          \
         NOSET,                                                                                    \
         noeffect,                                                                                 \
         NULL,                                                                                     \
         "Congestion control family: loss (CUBIC) or delay (BBR)"},                                \
    {                                                                                              \
#side ".quic.qlog", #side "-quic-qlog", NULL, "MOQ_" #SIDE "_QUIC_QLOG", T_STR,            \
            F(side.quic.qlog), NOSET, OPT_IGNORED, NULL, "Directory for qlog traces"               \
    }

const struct opt moq_config_opts[] = {
    /* [log] */
    {"log.level", "log-level", NULL, "MOQ_LOG_LEVEL", T_LEVEL, F(log.level), NOSET, 0, "info",
     "Log level: error, warn, info, debug or trace (MOQ_LOG / RUST_LOG take precedence)"},
    {"log.repeat_interval", "log-repeat-interval", NULL, "MOQ_LOG_REPEAT_INTERVAL", T_DURATION,
     F(log.repeat_interval_ms), NOSET, 0, "10s",
     "Lines a peer can repeat at will (refusals) are counted and summarised once per interval; "
     "0 logs each one"},
    {"log.repeat_burst", "log-repeat-burst", NULL, "MOQ_LOG_REPEAT_BURST", T_U64,
     F(log.repeat_burst), NOSET, 0, "10",
     "Repetitive lines written per interval and kind before the rest are only counted"},

    /* [server] */
    {"server.bind", "server-bind", "server-listen", "MOQ_SERVER_BIND", T_HOSTPORT, F(server.bind),
     NOSET, 0, MOQ_CONFIG_DEFAULT_BIND, "UDP address for QUIC (raw moq-lite and WebTransport)"},
    {"server.listen", "listen", NULL, "MOQ_SERVER_LISTEN", T_HOSTPORT, F(server.bind), NOSET,
     OPT_ALIAS | OPT_HIDDEN, NULL, NULL},
    {"server.version", "server-version", NULL, "MOQ_SERVER_VERSION", T_VERSIONS, F(server.version),
     NOSET, 0, NULL,
     "MoQ versions to offer (moq-lite-05 .. moq-lite-01, moq-transport-14 .. moq-transport-20, "
     "and moq-lite-06-wip only when listed; unset: all but moq-lite-06-wip)"},
    {"server.workers", "server-workers", NULL, "MOQ_SERVER_WORKERS", T_U64, F(server.workers),
     NOSET, 0, "0",
     "Worker threads, each with its own event loop, QUIC socket and HTTP socket; 0: one per CPU "
     "the process may run on (sched_getaffinity, so taskset is honoured); 1: one event loop on "
     "the main thread, no other thread"},
    {"server.backend", "server-backend", NULL, "MOQ_SERVER_BACKEND", T_BACKEND, F(server.backend),
     NOSET, OPT_IGNORED, NULL, "Upstream QUIC backend choice (ignored)"},
    QUIC_OPTS(server, SERVER, "server-max-streams", 0),
    {"server.quic.preferred_v4", "server-preferred-v4", NULL, "MOQ_SERVER_PREFERRED_V4", T_ADDR,
     F(server.preferred_v4), NOSET, OPT_IGNORED, NULL, "IPv4 QUIC preferred_address"},
    {"server.quic.preferred_v6", "server-preferred-v6", NULL, "MOQ_SERVER_PREFERRED_V6", T_ADDR,
     F(server.preferred_v6), NOSET, OPT_IGNORED, NULL, "IPv6 QUIC preferred_address"},
    {"server.quic.quic_lb_id", "server-quic-lb-id", NULL, "MOQ_SERVER_QUIC_LB_ID", T_HEX,
     F(server.quic_lb_id), NOSET, OPT_IGNORED, NULL, "QUIC-LB server id (hex)"},
    {"server.quic.quic_lb_nonce", "server-quic-lb-nonce", NULL, "MOQ_SERVER_QUIC_LB_NONCE", T_U64,
     F(server.quic_lb_nonce), S(server.quic_lb_nonce_set), OPT_IGNORED, NULL,
     "QUIC-LB nonce length in bytes"},
    {"server.tls.cert", "tls-cert", "server-tls-cert", "MOQ_SERVER_TLS_CERT", T_LIST,
     F(server.tls.cert), NOSET, 0, NULL,
     "Certificate chain file(s) for QUIC, paired with --tls-key by index"},
    {"server.tls.key", "tls-key", "server-tls-key", "MOQ_SERVER_TLS_KEY", T_LIST, F(server.tls.key),
     NOSET, 0, NULL, "Private key file(s), paired with --tls-cert by index"},
    {"server.tls.generate", "tls-generate", "server-tls-generate", "MOQ_SERVER_TLS_GENERATE",
     T_LIST, F(server.tls.generate), NOSET, OPT_COMMA, NULL,
     "Generate a self-signed certificate for these hostnames/IPs"},
    {"server.tls.root", "server-tls-root", NULL, "MOQ_SERVER_TLS_ROOT", T_LIST, F(server.tls.root),
     NOSET, OPT_COMMA, NULL,
     "CA file(s) for optional client certificates on QUIC/WebTransport; a verified one grants full "
     "access (mTLS)"},
    {"server.tcp.bind", "server-tcp-bind", NULL, "MOQ_SERVER_TCP_BIND", T_ADDR, F(server.tcp.bind),
     NOSET, OPT_IGNORED, NULL, "Plaintext qmux TCP listener"},
    {"server.unix.bind", "server-unix-bind", NULL, "MOQ_SERVER_UNIX_BIND", T_STR,
     F(server.unix_socket.bind), NOSET, OPT_IGNORED, NULL, "Plaintext qmux Unix-socket listener"},
    {"server.unix.allow.uid", "server-unix-allow-uid", NULL, "MOQ_SERVER_UNIX_ALLOW_UID", T_INTLIST,
     F(server.unix_socket.uid), NOSET, OPT_IGNORED | OPT_COMMA, NULL,
     "Unix-socket peer uids allowed"},
    {"server.unix.allow.gid", "server-unix-allow-gid", NULL, "MOQ_SERVER_UNIX_ALLOW_GID", T_INTLIST,
     F(server.unix_socket.gid), NOSET, OPT_IGNORED | OPT_COMMA, NULL,
     "Unix-socket peer gids allowed"},
    {"server.unix.allow.pid", "server-unix-allow-pid", NULL, "MOQ_SERVER_UNIX_ALLOW_PID", T_INTLIST,
     F(server.unix_socket.pid), NOSET, OPT_IGNORED | OPT_COMMA, NULL,
     "Unix-socket peer pids allowed"},

    /* [client] (outbound cluster dials) */
    {"client.connect", "client-connect", NULL, "MOQ_CLIENT_CONNECT", T_STR, F(client.connect),
     NOSET, OPT_IGNORED, NULL, "Upstream's one-shot client URL (ignored by the relay)"},
    {"client.bind", "client-bind", NULL, "MOQ_CLIENT_BIND", T_ADDR, F(client.bind), NOSET,
     OPT_IGNORED, "[::]:0", "Local UDP address for outbound QUIC"},
    {"client.backend", "client-backend", NULL, "MOQ_CLIENT_BACKEND", T_BACKEND, F(client.backend),
     NOSET, OPT_IGNORED, NULL, "Upstream QUIC backend choice (ignored)"},
    {"client.failover_delay", "client-failover-delay", NULL, "MOQ_CLIENT_FAILOVER_DELAY",
     T_DURATION, F(client.failover_delay_ms), NOSET, OPT_IGNORED, "250ms",
     "Happy Eyeballs delay before dialing the next address"},
    {"client.resolution_delay", "client-resolution-delay", NULL, "MOQ_CLIENT_RESOLUTION_DELAY",
     T_DURATION, F(client.resolution_delay_ms), NOSET, OPT_IGNORED, "50ms",
     "How long an IPv4-only answer waits for the full DNS answer"},
    {"client.timeout", "client-connect-timeout", "client-timeout", "MOQ_CLIENT_CONNECT_TIMEOUT",
     T_DURATION, F(client.timeout_ms), NOSET, 0, "30s",
     "Limit for one outbound dial plus handshake; 0 waits forever"},
    {"client.version", "client-version", NULL, "MOQ_CLIENT_VERSION", T_VERSIONS, F(client.version),
     NOSET, 0, NULL, "MoQ versions to offer on outbound dials (unset: all)"},
    QUIC_OPTS(client, CLIENT, "client-max-streams", OPT_IGNORED),
    {"client.tls.root", "client-tls-root", "tls-root", "MOQ_CLIENT_TLS_ROOT", T_LIST,
     F(client.tls.root), NOSET, 0, NULL, "CA file(s) trusted for outbound TLS"},
    {"client.tls.system_roots", "client-tls-system-roots", "tls-system-roots",
     "MOQ_CLIENT_TLS_SYSTEM_ROOTS", T_BOOL, F(client.tls.system_roots),
     S(client.tls.system_roots_set), 0, NULL,
     "Also trust the system CAs (default: only when no --client-tls-root)"},
    {"client.tls.fingerprint", "client-tls-fingerprint", "tls-fingerprint",
     "MOQ_CLIENT_TLS_FINGERPRINT", T_LIST, F(client.tls.fingerprint), NOSET, 0, NULL,
     "Pin peer certificates by SHA-256 fingerprint (hex)"},
    {"client.tls.cert", "client-tls-cert", NULL, "MOQ_CLIENT_TLS_CERT", T_STR, F(client.tls.cert),
     NOSET, 0, NULL, "Client certificate presented to peers that ask for one (mTLS)"},
    {"client.tls.key", "client-tls-key", NULL, "MOQ_CLIENT_TLS_KEY", T_STR, F(client.tls.key),
     NOSET, 0, NULL, "Key of --client-tls-cert (mTLS)"},
    {"client.tls.disable_verify", "client-tls-disable-verify", "tls-disable-verify",
     "MOQ_CLIENT_TLS_DISABLE_VERIFY", T_BOOL, F(client.tls.disable_verify), NOSET, 0, "false",
     "Danger: accept any peer certificate"},
    {"client.tls.host_name", "client-tls-host-name", NULL, "MOQ_CLIENT_TLS_HOST_NAME", T_STR,
     F(client.tls.host_name), NOSET, OPT_IGNORED, NULL,
     "Override the TLS server name for outbound dials"},
    {"client.backoff.initial", "backoff-initial", NULL, "MOQ_BACKOFF_INITIAL", T_DURATION,
     F(client.backoff.initial_ms), NOSET, 0, "1s", "First reconnect delay"},
    {"client.backoff.multiplier", "backoff-multiplier", NULL, "MOQ_BACKOFF_MULTIPLIER", T_U64,
     F(client.backoff.multiplier), NOSET, 0, "2", "Reconnect delay multiplier per failure"},
    {"client.backoff.max", "backoff-max", NULL, "MOQ_BACKOFF_MAX", T_DURATION,
     F(client.backoff.max_ms), NOSET, 0, "5s", "Longest reconnect delay"},
    {"client.backoff.timeout", "backoff-timeout", NULL, "MOQ_BACKOFF_TIMEOUT", T_DURATION,
     F(client.backoff.timeout_ms), NOSET, 0, "10s", "Give up reconnecting after this; 0 never"},
    {"client.websocket.enabled", "websocket-enabled", NULL, "MOQ_CLIENT_WEBSOCKET_ENABLED", T_BOOL,
     F(client.websocket.enabled), NOSET, OPT_IGNORED, "true",
     "Race a WebSocket fallback on outbound dials"},
    {"client.websocket.delay", "websocket-delay", NULL, "MOQ_CLIENT_WEBSOCKET_DELAY", T_DURATION,
     F(client.websocket.delay_ms), NOSET, OPT_IGNORED, "200ms",
     "Head start given to QUIC before the WebSocket fallback"},

    /* [cluster] */
    {"cluster.id", "cluster-id", NULL, "MOQ_CLUSTER_ID", T_U64, F(cluster.id), S(cluster.id_set), 0,
     NULL, "Fixed origin (hop) id, 1..2^62-1 (unset: random per start)"},
    {"cluster.connect", "cluster-connect", NULL, "MOQ_CLUSTER_CONNECT", T_URLS, F(cluster.connect),
     NOSET, OPT_COMMA, NULL,
     "Peer relays to dial (https://, moql:// or moqt:// URLs; ?jwt= allowed)"},
    {"cluster.root", "cluster-root", NULL, "MOQ_CLUSTER_ROOT", T_ROOT, 0, NOSET, 0, NULL,
     "The root relay to dial (the original guide's key; same as a --cluster-connect entry)"},
    {"cluster.connect_api", "cluster-connect-api", NULL, "MOQ_CLUSTER_CONNECT_API", T_STR,
     F(cluster.connect_api), NOSET, OPT_IGNORED, NULL,
     "URL or file returning the JSON list of peers to dial"},
    {"cluster.node", "cluster-node", "cluster-advertise", "MOQ_CLUSTER_NODE", T_STR,
     F(cluster.node), NOSET, 0, NULL, "This relay's own reachable URL (identity)"},
    {"cluster.advertise", NULL, NULL, NULL, T_STR, F(cluster.node), NOSET, OPT_ALIAS, NULL, NULL},
    {"cluster.mesh", "cluster-mesh", NULL, "MOQ_CLUSTER_MESH", T_MESH, F(cluster.mesh), NOSET,
     OPT_IGNORED, "false", "Gossip discovery: advertise --cluster-node to peers"},
    {"cluster.token", "cluster-token", NULL, "MOQ_CLUSTER_TOKEN", T_STR, F(cluster.token), NOSET, 0,
     NULL, "JWT presented on cluster dials: the token itself or a file holding it"},
    {"cluster.tier", "cluster-tier", NULL, "MOQ_CLUSTER_TIER", T_STR, F(cluster.tier), NOSET,
     OPT_IGNORED, NULL, "Stats tier label for relay-to-relay traffic"},
    {"cluster.linger", "cluster-linger", NULL, "MOQ_CLUSTER_LINGER", T_DURATION,
     F(cluster.linger_ms), NOSET, 0, "5s",
     "Keep a broadcast announced this long after its publisher vanishes"},
    {"cluster.prefix", "cluster-prefix", NULL, "MOQ_CLUSTER_PREFIX", T_STR, F(cluster.prefix),
     NOSET, OPT_IGNORED | OPT_DEPRECATED, NULL, "Legacy announcement prefix (ignored)"},

    /* [auth] */
    {"auth.key", "auth-key", NULL, "MOQ_AUTH_KEY", T_STR, F(auth.key), NOSET, 0, NULL,
     "JWK file that verifies tokens (no kid needed)"},
    {"auth.keys", "auth-keys", NULL, "MOQ_AUTH_KEYS", T_LIST, F(auth.keys), NOSET, OPT_COMMA, NULL,
     "More JWK files, for key rotation"},
    {"auth.key_dir", "auth-key-dir", NULL, "MOQ_AUTH_KEY_DIR", T_STR, F(auth.key_dir), NOSET, 0,
     NULL, "Directory of <kid>.jwk files, chosen by the token's kid"},
    {"auth.public", "auth-public", NULL, "MOQ_AUTH_PUBLIC", T_PUBLIC, F(auth), NOSET, 0, NULL,
     "Prefix anyone may publish and subscribe under without a token (\"\" = all)"},
    {NULL, "auth-public-subscribe", NULL, "MOQ_AUTH_PUBLIC_SUBSCRIBE", T_PUBLIC_SUB, F(auth), NOSET,
     0, NULL, "Prefix anyone may subscribe under without a token"},
    {NULL, "auth-public-publish", NULL, "MOQ_AUTH_PUBLIC_PUBLISH", T_PUBLIC_PUB, F(auth), NOSET, 0,
     NULL, "Prefix anyone may publish under without a token"},
    {NULL, "auth-public-api", NULL, "MOQ_AUTH_PUBLIC_API", T_PUBLIC_API, F(auth), NOSET,
     OPT_DEPRECATED, NULL, "URL answering public access per path (not supported)"},
    {"auth.domains", "auth-domain", NULL, "MOQ_AUTH_DOMAIN", T_LIST, F(auth.domains), NOSET,
     OPT_IGNORED, NULL, "Domain suffixes whose subdomain is prepended to the path"},
    {"auth.auth_api", "auth-api", NULL, "MOQ_AUTH_API", T_STR, F(auth.api), NOSET, 0, NULL,
     "Unified auth API URL (not supported)"},
    {"auth.mtls_tier", "auth-mtls-tier", NULL, "MOQ_AUTH_MTLS_TIER", T_STR, F(auth.mtls_tier),
     NOSET, OPT_IGNORED, NULL, "Stats tier label for mTLS peers"},
    {"auth.tls.root", "auth-tls-root", NULL, "MOQ_AUTH_TLS_ROOT", T_LIST, F(auth.tls.root), NOSET,
     OPT_DEPRECATED | OPT_HIDDEN, NULL, "Deprecated: use --client-tls-root"},
    {"auth.tls.cert", "auth-tls-cert", NULL, "MOQ_AUTH_TLS_CERT", T_STR, F(auth.tls.cert), NOSET,
     OPT_DEPRECATED | OPT_HIDDEN, NULL, "Deprecated: use --client-tls-cert"},
    {"auth.tls.key", "auth-tls-key", NULL, "MOQ_AUTH_TLS_KEY", T_STR, F(auth.tls.key), NOSET,
     OPT_DEPRECATED | OPT_HIDDEN, NULL, "Deprecated: use --client-tls-key"},
    {"auth.tls.disable_verify", "auth-tls-disable-verify", NULL, "MOQ_AUTH_TLS_DISABLE_VERIFY",
     T_BOOL, F(auth.tls.disable_verify), S(auth.tls.disable_verify_set),
     OPT_DEPRECATED | OPT_HIDDEN, NULL, "Deprecated: use --client-tls-disable-verify"},

    /* [web] */
    {"web.ws", "web-ws", NULL, "MOQ_WEB_WS", T_BOOL, F(web.ws), NOSET, 0, "true",
     "Accept WebSocket (qmux) sessions on the web listeners"},
    {"web.metrics", "web-metrics", NULL, "MOQ_WEB_METRICS", T_BOOL, F(web.metrics), NOSET, 0,
     "false", "Also serve /metrics, unauthenticated, on the public web listeners"},
    {"web.http.listen", "web-http-listen", NULL, "MOQ_WEB_HTTP_LISTEN", T_ADDR, F(web.http.listen),
     NOSET, 0, NULL, "TCP address for HTTP and WebSocket (unset: off)"},
    {"web.https.listen", "web-https-listen", NULL, "MOQ_WEB_HTTPS_LISTEN", T_ADDR,
     F(web.https.listen), NOSET, 0, NULL, "TCP address for HTTPS and secure WebSocket"},
    {"web.https.cert", "web-https-cert", NULL, "MOQ_WEB_HTTPS_CERT", T_LIST, F(web.https.cert),
     NOSET, OPT_COMMA, NULL, "Certificate chain file(s) for HTTPS"},
    {"web.https.key", "web-https-key", NULL, "MOQ_WEB_HTTPS_KEY", T_LIST, F(web.https.key), NOSET,
     OPT_COMMA, NULL, "Private key file(s) for HTTPS, paired by index"},
    {"web.https.root", "web-https-root", NULL, "MOQ_WEB_HTTPS_ROOT", T_LIST, F(web.https.root),
     NOSET, OPT_COMMA, NULL,
     "CA file(s) for optional HTTPS client certificates; a verified one grants full access (mTLS)"},

    /* [internal] */
    {"internal.listen", "internal-listen", NULL, "MOQ_INTERNAL_LISTEN", T_ADDR, F(internal.listen),
     NOSET, 0, NULL,
     "Plain-HTTP ops listener: /metrics, /health, /debug/*, /nodes, /status (trusted networks "
     "only)"},

    /* [stats] */
    /* stats publishing is not implemented: every stats option is accepted without effect */
    {"stats.enabled", "stats-enabled", NULL, "MOQ_STATS_ENABLED", T_BOOL, F(stats.enabled), NOSET,
     OPT_IGNORED, "false", "Publish per-node stats broadcasts (not implemented: warns)"},
    {"stats.prefix", "stats-prefix", NULL, "MOQ_STATS_PREFIX", T_STR, F(stats.prefix), NOSET,
     OPT_IGNORED, ".stats", "Path prefix of the stats broadcasts"},
    {"stats.interval", "stats-interval", NULL, "MOQ_STATS_INTERVAL", T_U64, F(stats.interval_s),
     NOSET, OPT_IGNORED, "1", "Seconds between stats snapshots"},
    {"stats.node", "stats-node", NULL, "MOQ_STATS_NODE", T_STR, F(stats.node), NOSET, OPT_IGNORED,
     NULL, "Node name in the stats broadcast path"},
    {"stats.depth", "stats-depth", NULL, "MOQ_STATS_DEPTH", T_U64, F(stats.depth), NOSET,
     OPT_IGNORED, "0", "Broadcast path segments to bucket stats by"},

    /* [cache] */
    {"cache.capacity", "cache-capacity", NULL, "MOQ_CACHE_CAPACITY", T_SIZE, F(cache.capacity),
     S(cache.capacity_set), 0, NULL,
     "Target bytes of cached groups: 8GiB, 512MB, bytes or 75% of memory (unset: unbounded)"},
    {"cache.headroom", "cache-headroom", NULL, "MOQ_CACHE_HEADROOM", T_SIZE, F(cache.headroom),
     S(cache.headroom_set), OPT_IGNORED, NULL, "Keep this much memory free (2GiB or 10%)"},
    {"cache.duration", "cache-duration", NULL, "MOQ_CACHE_DURATION", T_DURATION,
     F(cache.duration_ms), S(cache.duration_set), 0, NULL,
     "Longest a non-latest group stays cached (unset: the track's own window)"},

    /* [limits] (this relay's own; see docs/limits.md) */
    {"limits.max_sessions", "limits-max-sessions", NULL, "MOQ_LIMITS_MAX_SESSIONS", T_U64,
     F(limits.max_sessions), NOSET, 0, "10000",
     "Sessions at once over QUIC, WebTransport and WebSocket; more are refused"},
    {"limits.handshake_rate", "limits-handshake-rate", NULL, "MOQ_LIMITS_HANDSHAKE_RATE", T_U64,
     F(limits.handshake_rate), NOSET, 0, "200",
     "New QUIC handshakes per second above which clients must validate their address (Retry); "
     "0 never asks"},
    {"limits.half_open_per_address", "limits-half-open-per-address", NULL,
     "MOQ_LIMITS_HALF_OPEN_PER_ADDRESS", T_U64, F(limits.half_open_per_address), NOSET, 0, "100",
     "QUIC handshakes in progress at once from one IPv4 address or IPv6 /64"},
    {"limits.setup_timeout", "limits-setup-timeout", NULL, "MOQ_LIMITS_SETUP_TIMEOUT", T_DURATION,
     F(limits.setup_timeout_ms), NOSET, 0, "10s",
     "Time a moq-lite-05 peer has to send its SETUP once connected"},
    {"limits.http_header_timeout", "limits-http-header-timeout", NULL,
     "MOQ_LIMITS_HTTP_HEADER_TIMEOUT", T_DURATION, F(limits.http_header_timeout_ms), NOSET, 0,
     "10s", "Time for an HTTP request head (TLS handshake included); then 408"},
    {"limits.http_max_header_size", "limits-http-max-header-size", NULL,
     "MOQ_LIMITS_HTTP_MAX_HEADER_SIZE", T_SIZE, F(limits.http_max_header_size), NOSET, 0, "16KiB",
     "Largest HTTP request line plus headers; larger gets 431"},
    {"limits.http_max_connections", "limits-http-max-connections", NULL,
     "MOQ_LIMITS_HTTP_MAX_CONNECTIONS", T_U64, F(limits.http_max_connections), NOSET, 0, "10000",
     "TCP connections open at once on the web listeners"},
    {"limits.ws_max_message", "limits-ws-max-message", NULL, "MOQ_LIMITS_WS_MAX_MESSAGE", T_SIZE,
     F(limits.ws_max_message), NOSET, 0, "16MiB",
     "Largest WebSocket message received; larger closes the WebSocket with 1009"},
    {"limits.memory_trim_quiet", "limits-memory-trim-quiet", NULL, "MOQ_LIMITS_MEMORY_TRIM_QUIET",
     T_DURATION, F(limits.memory_trim_quiet_ms), NOSET, 0, "5s",
     "Once sessions fell and none started for this long, return freed memory to the system; "
     "0 never"},

    /* [iroh] */
    {"iroh.enabled", "iroh-enabled", NULL, "MOQ_IROH_ENABLED", T_BOOL, F(iroh.enabled), NOSET, 0,
     "false", "iroh P2P (not supported: true is refused)"},
    {"iroh.secret", "iroh-secret", NULL, "MOQ_IROH_SECRET", T_STR, F(iroh.secret), NOSET,
     OPT_IGNORED, NULL, "iroh secret key or its file"},
    {"iroh.bind_v4", "iroh-bind-v4", NULL, "MOQ_IROH_BIND_V4", T_ADDR, F(iroh.bind_v4), NOSET,
     OPT_IGNORED, NULL, "iroh IPv4 UDP address"},
    {"iroh.bind_v6", "iroh-bind-v6", NULL, "MOQ_IROH_BIND_V6", T_ADDR, F(iroh.bind_v6), NOSET,
     OPT_IGNORED, NULL, "iroh IPv6 UDP address"},
    {"iroh.disable_relay", "iroh-disable-relay", NULL, "MOQ_IROH_DISABLE_RELAY", T_BOOL,
     F(iroh.disable_relay), NOSET, OPT_IGNORED, "false", "iroh: direct connections only"},
};

const size_t moq_config_nopts = sizeof(moq_config_opts) / sizeof(moq_config_opts[0]);

const char moq_config_help_intro[] =
    "Settings come from built-in defaults, then the TOML file, then MOQ_* environment\n"
    "variables, then these flags (later wins). Repeat a list flag to give several values.\n"
    "Booleans: --flag or --flag=false. Logs: MOQ_LOG or RUST_LOG override the level.\n"
    "Options marked [accepted, no effect] exist so upstream configurations load; setting\n"
    "one logs a warning.\n";

const struct cli_opt moq_config_cli_opts[] = {
    {"file", NULL, " <PATH>", "Load this TOML file (the same as the CONFIG.toml argument)"},
    {"check", NULL, NULL,
     "Check the configuration and the files it names (certificates, keys), print the effective "
     "settings and exit: 0 when the relay would start, 1 with FILE:LINE:COL errors otherwise"},
    {"help", "h", NULL, "Print this help"},
    {"version", "V", NULL, "Print the version"},
};

const size_t moq_config_ncli_opts = sizeof(moq_config_cli_opts) / sizeof(moq_config_cli_opts[0]);

_Static_assert(sizeof(moq_config_opts) / sizeof(moq_config_opts[0]) <= MOQ_CONFIG_MAX_OPTIONS,
               "raise MOQ_CONFIG_MAX_OPTIONS");
