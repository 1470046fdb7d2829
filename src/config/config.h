/*
 * config.h - the relay's configuration: schema, defaults, file/env/flag overrides, validation.
 *
 * struct moq_config is plain data the rest of the relay reads directly: strings are char*
 * (NULL = unset), lists are moq_strlist, durations are milliseconds, sizes are bytes,
 * and a `*_set` flag accompanies a field wherever "unset" means something other than its
 * default. The struct owns every string and list in it; moq_config_free() releases them.
 *
 * Sources, lowest precedence first: built-in defaults (moq_config_init), the TOML file
 * (moq_config_load_file / moq_config_load_string), MOQ_* environment variables
 * (moq_config_apply_env), command-line flags (moq_config_apply_args). moq_config_finalize()
 * then folds legacy spellings into the current fields and checks what the schema alone can
 * check (cert/key pairing, mesh without node, ...). moq_config_validate() checks what the
 * relay as a whole needs (TLS configured, some way to authenticate, unsupported features)
 * and collects warnings. moq_config_load() runs the whole pipeline for main().
 *
 * Every function that can fail returns 0 or a negative MOQ_ERR_* and writes one line into
 * err (if not NULL): "file:line:col: message", "MOQ_X: message" or "--flag: message".
 * The schema table behind all this (key, flag, env, type, default, help) is the single
 * source for --help and docs/config.md.
 */
#ifndef MOQ_CONFIG_CONFIG_H
#define MOQ_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "util/log.h"
#include "util/strlist.h"

#define MOQ_CONFIG_DEFAULT_BIND "[::]:443"
/* Most worker threads (server.workers): the worker index travels in one CID byte. */
#define MOQ_CONFIG_MAX_WORKERS 256
#define MOQ_CONFIG_MAX_OPTIONS 160

enum moq_congestion {
    MOQ_CONGESTION_DEFAULT = 0, /* unset: the QUIC stack's own choice */
    MOQ_CONGESTION_LOSS,        /* "loss": CUBIC-like */
    MOQ_CONGESTION_DELAY,       /* "delay": BBR-like */
};

struct moq_config_quic {
    uint64_t max_streams;    /* concurrent streams per direction; default 10000 */
    uint64_t receive_window; /* connection flow-control window in bytes; 0 = stack default */
    bool receive_window_set;
    bool gso; /* default: on */
    bool gso_set;
    uint64_t idle_timeout_ms; /* default 30000 */
    uint64_t keep_alive_ms;   /* default 5000; 0 disables keep-alives */
    uint64_t ack_timeout_ms;  /* default 5000; 0 disables (the idle timeout alone) */
    bool mtu_discovery;       /* default false */
    enum moq_congestion congestion_control;
    char *qlog; /* directory for qlog traces */
};

struct moq_config_server {
    char *bind;          /* QUIC UDP address; default "[::]:443"; TOML alias `listen` */
    moq_strlist version; /* moq-lite versions to offer; empty = all supported */
    char *backend;       /* accepted for compatibility (quinn|quiche|noq), ignored */
    uint64_t workers;    /* event-loop threads; 0 = one per CPU we may run on (1) */
    struct moq_config_quic quic;
    char *preferred_v4, *preferred_v6; /* [server.quic] preferred_v4/v6 (ignored) */
    char *quic_lb_id;                  /* hex (ignored) */
    uint64_t quic_lb_nonce;
    bool quic_lb_nonce_set;
    struct {
        moq_strlist cert, key; /* paired by index */
        moq_strlist generate;  /* hostnames/IPs for a self-signed certificate */
        moq_strlist root;      /* CA files that authenticate mTLS clients */
    } tls;
    struct {
        char *bind;
    } tcp; /* plaintext qmux listener (ignored) */
    struct {
        char *bind;
        moq_strlist uid, gid, pid; /* decimal ids as strings (ignored) */
    } unix_socket;
};

struct moq_config_client {
    char *connect;                /* upstream's one-shot dial URL (ignored by the relay) */
    char *bind;                   /* default "[::]:0" */
    char *backend;                /* ignored */
    uint64_t failover_delay_ms;   /* default 250 */
    uint64_t resolution_delay_ms; /* default 50 */
    uint64_t timeout_ms;          /* one dial + handshake; default 30000; 0 = wait forever */
    moq_strlist version;
    struct moq_config_quic quic;
    struct {
        moq_strlist root;  /* trusted CA files; replace the system roots by default */
        bool system_roots; /* default: true when root is empty, else false */
        bool system_roots_set;
        moq_strlist fingerprint; /* pinned SHA-256 (hex) */
        char *cert, *key;        /* mTLS client identity */
        bool disable_verify;
        char *host_name; /* SNI / verification name override */
    } tls;
    struct {
        uint64_t initial_ms; /* default 1000 */
        uint64_t multiplier; /* default 2 */
        uint64_t max_ms;     /* default 5000 */
        uint64_t timeout_ms; /* default 10000; 0 = retry forever */
    } backoff;
    struct {
        bool enabled;      /* default true (ignored) */
        uint64_t delay_ms; /* default 200 (ignored) */
    } websocket;
};

struct moq_config_cluster {
    uint64_t id; /* fixed hop id; unset = random per start */
    bool id_set;
    moq_strlist connect; /* peer URLs (https://, moql://, moqt://); a bare host[:port]
                                   is normalized to https://host[:port]/; the legacy `root`
                                   is folded in here */
    char *connect_api;   /* URL or file with a JSON peer list */
    char *node;          /* this relay's own URL; legacy TOML alias `advertise` */
    bool mesh;           /* gossip discovery */
    char *token;         /* the JWT for outbound dials, or a file holding it */
    char *tier;
    uint64_t linger_ms; /* default 5000 */
    char *prefix;       /* legacy `prefix`, accepted and ignored */
};

struct moq_config_auth {
    char *key;                    /* JWK file (or URL) */
    moq_strlist keys;             /* more JWK files (this relay's extension) */
    char *key_dir;                /* directory of <kid>.jwk files (or URL) */
    bool public_set;              /* any anonymous access configured */
    moq_strlist public_subscribe; /* anonymous subscribe prefixes ("" = everything) */
    moq_strlist public_publish;   /* anonymous publish prefixes */
    char *public_api;             /* [auth.public] api (unsupported) */
    moq_strlist domains;          /* SNI slug suffixes ([auth] domains) */
    char *api;                    /* unified auth API URL ([auth] auth_api; unsupported) */
    char *mtls_tier;
    struct {
        moq_strlist root;
        char *cert, *key;
        bool disable_verify;
        bool disable_verify_set;
    } tls; /* deprecated [auth.tls] */
};

struct moq_config {
    struct {
        enum moq_log_level level;    /* default info */
        uint64_t repeat_interval_ms; /* repetitive lines summarised per interval; 0 = off */
        uint64_t repeat_burst;       /* lines written per interval and call site (10) */
    } log;
    struct moq_config_server server;
    struct moq_config_client client;
    struct moq_config_cluster cluster;
    struct moq_config_auth auth;
    struct {
        bool ws;      /* WebSocket (qmux) on the web listeners; default true */
        bool metrics; /* also serve /metrics on the web listeners; default false */
        struct {
            char *listen;
        } http;
        struct {
            char *listen;
            moq_strlist cert, key, root;
        } https;
    } web;
    struct {
        char *listen; /* plain-HTTP ops listener (/metrics, /health) */
    } internal;
    struct {
        bool enabled;        /* default false; publishing is not implemented */
        char *prefix;        /* default ".stats" */
        uint64_t interval_s; /* default 1 */
        char *node;
        uint64_t depth; /* default 0 */
    } stats;
    struct {
        uint64_t capacity; /* bytes; unset = unbounded */
        bool capacity_set;
        uint64_t headroom; /* bytes of memory to keep free */
        bool headroom_set;
        uint64_t duration_ms; /* max age of a non-latest group; unset = track's own window */
        bool duration_set;
    } cache;
    struct {
        uint64_t max_sessions;           /* sessions at once over every transport (10000) */
        uint64_t handshake_rate;         /* QUIC handshakes/s before Retry (200; 0 = no Retry) */
        uint64_t half_open_per_address;  /* QUIC handshakes in progress per address (100) */
        uint64_t setup_timeout_ms;       /* lite-05 SETUP after the transport is up (10 s) */
        uint64_t http_header_timeout_ms; /* HTTP request head, TLS handshake included (10 s) */
        uint64_t http_max_header_size;   /* request line + headers (16 KiB) */
        uint64_t http_max_connections;   /* TCP connections to the web listeners (10000) */
        uint64_t ws_max_message;         /* largest WebSocket message received (16 MiB) */
        uint64_t memory_trim_quiet_ms;   /* trim the heap after the load fell (5 s; 0 = never) */
    } limits;
    struct {
        bool enabled; /* true is refused by validate: iroh is not supported */
        char *secret;
        char *bind_v4, *bind_v6;
        bool disable_relay;
    } iroh;

    char *file;           /* the config file loaded, or NULL */
    bool check;           /* --check: validate and print, do not start */
    moq_strlist warnings; /* filled by moq_config_validate() */

    /* Internal bookkeeping: where each option came from, and values waiting for
     * moq_config_finalize(). Not for readers. */
    struct {
        uint8_t src;
        uint32_t line, col;
    } origin[MOQ_CONFIG_MAX_OPTIONS];
    struct {
        char *cluster_root;
        char *mesh_legacy;
        moq_strlist public_subscribe, public_publish;
        char *public_api;
        bool finalized;
    } staging;
};

enum moq_config_action {
    MOQ_CONFIG_RUN = 0,
    MOQ_CONFIG_HELP,
    MOQ_CONFIG_VERSION,
    MOQ_CONFIG_HELP_MAN,      /* hidden --help-man: the manual page (roff) */
    MOQ_CONFIG_HELP_MARKDOWN, /* hidden --help-markdown: the reference table of docs/config.md */
};

/* Defaults. Always pair with moq_config_free(). */
void moq_config_init(struct moq_config *cfg);
void moq_config_free(struct moq_config *cfg);

/* Merge a TOML document into cfg. `name` prefixes error positions. */
int moq_config_load_string(struct moq_config *cfg, const char *name, const char *buf, size_t len,
                           char *err, size_t errlen);
int moq_config_load_file(struct moq_config *cfg, const char *path, char *err, size_t errlen);

/* Apply MOQ_* variables from envp ("KEY=VALUE" strings, NULL-terminated; NULL = environ).
 * Unknown MOQ_* variables are ignored. Lists are comma-separated; booleans take
 * true/false/1/0; an empty value counts as unset except for MOQ_AUTH_PUBLIC. */
int moq_config_apply_env(struct moq_config *cfg, char *const *envp, char *err, size_t errlen);

/* Parse argv without applying anything: finds the config file (the one positional argument
 * or --file PATH, stored in cfg->file) and --help/--version, and rejects unknown flags or bad
 * syntax. */
int moq_config_scan_args(struct moq_config *cfg, int argc, char *const *argv,
                         enum moq_config_action *action, char *err, size_t errlen);

/* Apply the flags of argv on top of cfg (call after the file and the environment). The
 * first use of a list flag replaces the earlier value; repeats append. */
int moq_config_apply_args(struct moq_config *cfg, int argc, char *const *argv, char *err,
                          size_t errlen);

/* Fold legacy options into current fields and run the cross-field checks. Idempotent. */
int moq_config_finalize(struct moq_config *cfg, char *err, size_t errlen);

/* The whole pipeline: init, scan args, file, env, flags, finalize. On MOQ_CONFIG_HELP or
 * MOQ_CONFIG_VERSION nothing is loaded. cfg must be freed by the caller in every case. */
int moq_config_load(struct moq_config *cfg, int argc, char *const *argv, char *const *envp,
                    enum moq_config_action *action, char *err, size_t errlen);

/* Startup checks that need the whole picture (see docs/config.md). Fills cfg->warnings
 * with non-fatal findings (unimplemented options that are set, deprecated spellings). */
int moq_config_validate(struct moq_config *cfg, char *err, size_t errlen);

/* Set the process log levels: [log] level (after env/flags), then MOQ_LOG, or else RUST_LOG,
 * as a RUST_LOG-style spec on top. Returns 0, or MOQ_ERR_INVALID with a warning in warn when
 * the spec was malformed (it is then ignored and the configured level stays). */
int moq_config_apply_log(const struct moq_config *cfg, char *const *envp, char *warn,
                         size_t warnlen);

/* Where option `key` got its value, for messages about it: "FILE:LINE:COL", the MOQ_*
 * variable, "--flag", or "KEY (default)". Returns buf. */
const char *moq_config_where(const struct moq_config *cfg, const char *key, char *buf, size_t len);

/* --check: every option that is set or has a default, as `key = value  # source` lines
 * (source: FILE:LINE:COL, MOQ_* variable, --flag or "default"). Secrets are redacted: the
 * cluster token unless it names a file, iroh.secret, and any token inside a value. */
void moq_config_print_effective(const struct moq_config *cfg, FILE *out);

/* --help text: usage and every flag with its env variable and a one-line description. */
void moq_config_print_help(FILE *out);

/* Markdown table of every option (key, type, default, flag, env); used to write the docs. */
void moq_config_print_reference(FILE *out);

/* The moq-relay(1) manual page (roff): the options of --help with their TOML keys. */
void moq_config_print_man(FILE *out);

/* Helpers shared with the listeners. */
/* "IP:port" or "[IPv6]:port" (port 0-65535) into a sockaddr. 0 or MOQ_ERR_INVALID. */
int moq_config_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* humantime-style: "5s", "500ms", "1h 30m", "2m", "0". */
int moq_config_parse_duration(const char *s, uint64_t *ms);
/* "8GiB", "512MB", "1.5GB", "1073741824", or "75%" of memory (cgroup limit if lower). */
int moq_config_parse_size(const char *s, uint64_t *bytes);
/* Is this moq version name offered by this relay? (moq-lite-03, -04, -05) */
bool moq_config_version_supported(const char *name);
/* Memory the process may use: the cgroup v2 limit when set, else physical memory. */
uint64_t moq_config_total_memory(void);
/* CPUs the process may run on (sched_getaffinity, so taskset is honoured); at least 1. */
unsigned moq_config_cpus(void);
/* server.workers resolved: 0 becomes moq_config_cpus(), capped at MOQ_CONFIG_MAX_WORKERS. */
unsigned moq_config_workers(const struct moq_config *cfg);

/* Small list helpers (the list owns its strings). */

#endif
