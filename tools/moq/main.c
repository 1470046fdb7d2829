/*
 * moq: a command-line Media over QUIC (moq-lite) client - publish frames from stdin,
 * subscribe to a track and write its frames to stdout, fetch one cached group, list
 * announcements, and the clock demo of upstream's moq-clock. See docs/client.md.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "bench.h"
#include "moq/errors.h"
#include "moq/path.h"
#include "ietf/version.h"
#include "moq/version.h"
#include "tool.h"
#include "util/err.h"
#include "util/log.h"
#include "util/time.h"

#define DRAIN_POLL_S      0.01
#define DRAIN_MAX_S       10.0
#define CLOSE_GUARD_S     5.0
#define DRAIN_SETTLE_S    0.05
#define MAX_FRAME_DEFAULT (32u * 1024 * 1024)
#define KEEP_ALIVE_MS     5000 /* like upstream's clients */
/* --reconnect pacing, as upstream's client backoff: a wait of 1 s (jittered down to half)
 * doubling up to 5 s; a run without a session for 10 s gives up. */
#define REDIAL_FIRST_S            1.0
#define REDIAL_MAX_S              5.0
#define RECONNECT_TIMEOUT_DEFAULT 10000
#define TLS_HINT                                                                                   \
    "to trust it, use an http:// URL (the relay's certificate fingerprint is fetched from "        \
    "/certificate.sha256 and pinned), or pass --tls-fingerprint HEX (its SHA-256) or --tls-root "  \
    "FILE (the CA that signed it)"

/* ---------------------------------------------------------------- usage */

static const char main_usage[] =
    "A Media over QUIC (moq-lite) client for moq-relay\n"
    "\n"
    "Usage: moq <COMMAND> URL [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  publish          Publish frames read from stdin as a track of a broadcast\n"
    "  subscribe        Subscribe to a track and write its frames to stdout\n"
    "  fetch            Fetch one group of a track (moq-lite-05) and write its frames\n"
    "  announced        Print announced broadcasts (+path / -path) as they change\n"
    "  clock publish    Publish the current time (track \"seconds\", like moq-clock)\n"
    "  clock subscribe  Print the time published by `moq clock publish`\n"
    "  bench            Load-test a relay with many sessions (upstream moq-bench's options)\n"
    "\n"
    "URL: moql:// or moqt://host:port/path (raw QUIC), https://host:port/path (WebTransport),\n"
    "http://host:port/path (fetch /certificate.sha256 first and pin it, then WebTransport),\n"
    "or ws://host:port/path, wss://... (WebSocket).\n"
    "\n"
    "Run `moq <COMMAND> --help` for the options of a command.\n"
    "  -h, --help     Print help\n"
    "  -V, --version  Print version\n";

static const char common_options[] =
    "Connection options:\n"
    "  --tls-fingerprint HEX  Accept only a server certificate with this SHA-256 (repeatable)\n"
    "  --tls-root FILE        Trust the CA certificates in this PEM file (repeatable)\n"
    "  --tls-disable-verify   Accept any server certificate (development only)\n"
    "  --moq-version V        Offer only this version: moq-lite 06-wip, 05 .. 01 (01/02\n"
    "                         over the moql ALPN and its compat SETUP), or IETF\n"
    "                         moq-transport 14 .. 20 (e.g. moq-transport-17; default:\n"
    "                         moq-lite 05, 04, 03); --client-version is the same option\n"
    "  --raw-quic             With an http:// URL, dial raw QUIC instead of WebTransport\n"
    "  --timeout DURATION     Limit for connecting (default 10s; e.g. 500ms, 30s)\n"
    "  --log-level LEVEL      error, warn, info (default), debug or trace; MOQ_LOG wins\n"
    "  --ready-file FILE      Append a line to FILE when the relay confirms a step: publish:\n"
    "                         \"announced PATH\", \"requested PATH/TRACK\"; subscribe:\n"
    "                         \"subscribed PATH/TRACK\"; announced: \"watching [PREFIX]\"\n"
    "                         (not with fetch)\n"
    "  -h, --help             Print help\n"
    "  -V, --version          Print version\n";

static const char publish_usage[] =
    "Publish frames read from stdin (or files) as tracks of a broadcast.\n"
    "\n"
    "Input is read while the relay subscribes to the track. At the end of the input the\n"
    "track is finished, and once every track is done the broadcast is unannounced and the\n"
    "connection closed after everything was delivered.\n"
    "\n"
    "Usage: moq publish URL --broadcast PATH --track NAME[=FILE] [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --broadcast PATH     Broadcast path to announce\n"
    "  --track NAME[=FILE]  Track to serve, read from FILE (default stdin); repeatable\n"
    "  --framing line|length  line: one frame per line, without the newline (default);\n"
    "                       length: a 4-byte big-endian length, then that many bytes\n"
    "  --group-frames N     Start a new group every N frames (default 1)\n"
    "  --max-latency DURATION  Track max latency announced to the relay (default 5s)\n"
    "  --group-start N|now  Sequence of the first group (default 0); now: the wall clock in\n"
    "                       milliseconds, above any group an earlier run numbered this way\n"
    "  --origin ID          This publisher's origin id, the identity the relay knows its\n"
    "                       content by (default: random per run). A publisher started again\n"
    "                       with the same id while the relay keeps its broadcast (the linger\n"
    "                       after a lost session) continues it for the subscribers\n"
    "  --reconnect          Redial when the session is lost and announce again; subscribers\n"
    "                       keep their subscription if the relay still keeps the broadcast\n"
    "  --reconnect-timeout DURATION  Give up after this long without a session (default\n"
    "                       10s; 0: never)\n";

static const char subscribe_usage[] =
    "Subscribe to a track and write its frames to stdout.\n"
    "\n"
    "Waits for the broadcast to be announced, subscribes from the latest group, and writes\n"
    "every frame in group order. Exits 0 when the track ends, the broadcast is unannounced or\n"
    "--count frames were written.\n"
    "\n"
    "Usage: moq subscribe URL --broadcast PATH --track NAME [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --broadcast PATH     Broadcast path\n"
    "  --track NAME         Track name\n"
    "  --framing line|length  Output framing, as for publish (default line)\n"
    "  --count N            Exit after N frames\n"
    "  --max-latency DURATION  How far behind the newest group this subscriber lets the\n"
    "                       relay fall before it skips a group (default: the track's)\n";

static const char fetch_usage[] =
    "Fetch one group of a track (moq-lite-05 FETCH) and write its frames to stdout.\n"
    "\n"
    "Usage: moq fetch URL --broadcast PATH --track NAME --group N [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --broadcast PATH     Broadcast path\n"
    "  --track NAME         Track name\n"
    "  --group N            Group sequence number\n"
    "  --framing line|length  Output framing (default line)\n";

static const char announced_usage[] =
    "Print announced broadcasts as they change: \"+path\" when one appears, \"-path\" when it\n"
    "ends (the current set first).\n"
    "\n"
    "Usage: moq announced URL [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --prefix P           Only broadcasts under this path prefix (default: all)\n"
    "  --count N            Exit after N lines\n";

static const char clock_usage[] =
    "The clock demo of upstream moq-clock: one group per minute whose first frame is\n"
    "\"YYYY-MM-DD HH:MM:\" (UTC) followed by one \"SS\" frame per second.\n"
    "\n"
    "Usage: moq clock publish URL --broadcast PATH [OPTIONS]\n"
    "       moq clock subscribe URL --broadcast PATH [OPTIONS]\n"
    "\n"
    "Options:\n"
    "  --broadcast PATH     Broadcast path\n"
    "  --track NAME         Track name (default \"seconds\")\n"
    "  --count N            subscribe: exit after N printed times\n"
    "  --origin ID, --reconnect, --reconnect-timeout DURATION  publish: as for `moq publish`\n";

static void print_usage(FILE *f, const struct tool_opts *o)
{
    const char *text = main_usage;
    if (o) {
        switch (o->cmd) {
        case CMD_PUBLISH:
            text = publish_usage;
            break;
        case CMD_SUBSCRIBE:
            text = subscribe_usage;
            break;
        case CMD_FETCH:
            text = fetch_usage;
            break;
        case CMD_ANNOUNCED:
            text = announced_usage;
            break;
        case CMD_CLOCK_PUBLISH:
        case CMD_CLOCK_SUBSCRIBE:
            text = clock_usage;
            break;
        }
    }
    fputs(text, f);
    if (o) fprintf(f, "\n%s", common_options);
}

/* stderr, through the token redaction (arguments and URLs may carry a ?jwt=). */
static void vprint_redacted(const char *fmt, va_list ap)
{
    char msg[1024];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    len = moq_log_redact(msg, len, sizeof(msg) - 1);
    fwrite(msg, 1, len, stderr);
}

static void print_redacted(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void print_redacted(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_redacted(fmt, ap);
    va_end(ap);
}

static int usage_error(const struct tool_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const struct tool_opts *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "moq%s%s: ", o ? " " : "", o ? o->name : "");
    vprint_redacted(fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun `moq%s%s --help` for usage.\n", o ? " " : "", o ? o->name : "");
    return EXIT_USAGE;
}

/* ---------------------------------------------------------------- option parsing */

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-') return -1;
    *out = v;
    return 0;
}

/* "500ms", "5s", "2m", "1500" (milliseconds). */
static int parse_duration_ms(const char *s, uint64_t *out)
{
    if (!s || !*s || s[0] == '-') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s) return -1;
    double mult;
    if (strcmp(end, "ms") == 0 || *end == '\0')
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else
        return -1;
    if (v * mult > 1e12) return -1;
    *out = (uint64_t)(v * mult);
    return 0;
}

/* The version the tool may pin, as the dialer takes it: moq-lite 06-wip and 05 .. 01 ("05",
 * "lite-05", "moq-lite-05"; 01/02 travel in the compat SETUP of the "moql" ALPN) or an IETF
 * draft 14..20 ("14", "moq-transport-14", or its ALPN "moq-00", "moqt-15", ...). */
static const char *version_alpn(const char *v)
{
    static const char *const names[][2] = {{"06-wip", "moq-lite-06-wip"}, {"05", "moq-lite-05"},
                                           {"04", "moq-lite-04"},         {"03", "moq-lite-03"},
                                           {"02", "moq-lite-02"},         {"01", "moq-lite-01"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(v, names[i][0]) == 0 || strcmp(v, names[i][1]) == 0 ||
            (strncmp(v, "lite-", 5) == 0 && strcmp(v + 5, names[i][0]) == 0))
            return names[i][1];
    }
    const moq_ietf_caps *c = moq_ietf_caps_from_alpn(v, strlen(v));
    if (!c) c = moq_ietf_caps_from_name(v);
    if (!c && strlen(v) == 2 && isdigit((unsigned char)v[0]) && isdigit((unsigned char)v[1]))
        c = moq_ietf_caps_get((moq_ietf_draft)atoi(v));
    return c ? c->alpn : NULL;
}

static int push(const char **list, size_t *n, const char *v)
{
    if (*n >= TOOL_MAX_LIST) return -1;
    list[(*n)++] = v;
    return 0;
}

enum parse_result { PARSE_OK = 0, PARSE_EXIT_OK = 1, PARSE_USAGE = 2 };

/* Parse the arguments after the command words. */
static int parse_options(struct tool_opts *o, int argc, char **argv, const char **log_level)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_usage(stdout, o);
            return PARSE_EXIT_OK;
        }
        if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            printf("moq %s\n", MOQ_VERSION);
            return PARSE_EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (arg[0] == '-' && arg[1] != '\0') {
                usage_error(o, "unknown option '%s'", arg);
                return PARSE_USAGE;
            }
            if (o->url) {
                usage_error(o, "unexpected argument '%s'", arg);
                return PARSE_USAGE;
            }
            o->url = arg;
            continue;
        }
        /* --name value or --name=value */
        char name[64];
        const char *value = NULL;
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen >= sizeof(name)) {
            usage_error(o, "unknown option '%s'", arg);
            return PARSE_USAGE;
        }
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        if (strcmp(name, "--client-version") == 0) /* upstream's spelling */
            snprintf(name, sizeof(name), "--moq-version");
        bool is_flag = strcmp(name, "--tls-disable-verify") == 0 ||
                       strcmp(name, "--raw-quic") == 0 || strcmp(name, "--reconnect") == 0;
        if (is_flag) {
            bool on = true;
            if (eq) {
                if (strcmp(eq + 1, "true") == 0)
                    on = true;
                else if (strcmp(eq + 1, "false") == 0)
                    on = false;
                else {
                    usage_error(o, "%s takes true or false", name);
                    return PARSE_USAGE;
                }
            }
            if (strcmp(name, "--raw-quic") == 0)
                o->raw_quic = on;
            else if (strcmp(name, "--reconnect") == 0)
                o->reconnect = on;
            else
                o->disable_verify = on;
            continue;
        }
        static const char *const with_value[] = {"--broadcast",       "--track",
                                                 "--prefix",          "--framing",
                                                 "--group-frames",    "--count",
                                                 "--group",           "--max-latency",
                                                 "--tls-fingerprint", "--tls-root",
                                                 "--moq-version",     "--timeout",
                                                 "--log-level",       "--ready-file",
                                                 "--origin",          "--reconnect-timeout",
                                                 "--group-start",     NULL};
        bool known = false;
        for (size_t k = 0; with_value[k]; k++)
            known = known || strcmp(name, with_value[k]) == 0;
        if (!known) {
            usage_error(o, "unknown option '%s'", name);
            return PARSE_USAGE;
        }
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) {
                usage_error(o, "%s needs a value", name);
                return PARSE_USAGE;
            }
            value = argv[++i];
        }
        int bad = 0;
        if (strcmp(name, "--broadcast") == 0) {
            o->broadcast = value;
        } else if (strcmp(name, "--track") == 0) {
            bad = push(o->tracks, &o->n_tracks, value);
        } else if (strcmp(name, "--prefix") == 0) {
            o->prefix = value;
        } else if (strcmp(name, "--framing") == 0) {
            if (strcmp(value, "line") == 0)
                o->framing = FRAMING_LINE;
            else if (strcmp(value, "length") == 0)
                o->framing = FRAMING_LENGTH;
            else
                bad = 1;
        } else if (strcmp(name, "--group-frames") == 0) {
            bad = parse_u64(value, &o->group_frames) < 0 || o->group_frames == 0;
        } else if (strcmp(name, "--count") == 0) {
            bad = parse_u64(value, &o->count) < 0;
            o->has_count = true;
        } else if (strcmp(name, "--group") == 0) {
            bad = parse_u64(value, &o->group) < 0 || o->group >= (1ull << 62);
            o->has_group = true;
        } else if (strcmp(name, "--max-latency") == 0) {
            bad = parse_duration_ms(value, &o->max_latency_ms) < 0;
        } else if (strcmp(name, "--tls-fingerprint") == 0) {
            bad = push(o->fingerprints, &o->n_fingerprints, value);
        } else if (strcmp(name, "--tls-root") == 0) {
            bad = push(o->roots, &o->n_roots, value);
        } else if (strcmp(name, "--moq-version") == 0) {
            o->version = version_alpn(value);
            bad = o->version == NULL;
        } else if (strcmp(name, "--timeout") == 0) {
            bad = parse_duration_ms(value, &o->timeout_ms) < 0;
        } else if (strcmp(name, "--ready-file") == 0) {
            o->ready_file = value;
            bad = !value[0];
        } else if (strcmp(name, "--group-start") == 0) {
            o->has_group_start = true;
            o->group_start_now = strcmp(value, "now") == 0;
            if (!o->group_start_now)
                bad = parse_u64(value, &o->group_start) < 0 || o->group_start >= (1ull << 62);
        } else if (strcmp(name, "--origin") == 0) {
            bad = parse_u64(value, &o->origin_id) < 0 || o->origin_id == 0 ||
                  o->origin_id >= (1ull << 62);
        } else if (strcmp(name, "--reconnect-timeout") == 0) {
            bad = parse_duration_ms(value, &o->reconnect_timeout_ms) < 0;
            o->has_reconnect_timeout = true;
        } else if (strcmp(name, "--log-level") == 0) {
            *log_level = value;
            bad = moq_log_level_parse(value) < 0;
        } else {
            usage_error(o, "unknown option '%s'", name);
            return PARSE_USAGE;
        }
        if (bad) {
            usage_error(o, "invalid value '%s' for %s", value, name);
            return PARSE_USAGE;
        }
    }
    return PARSE_OK;
}

/* Put a path given on the command line into normal form, in place. */
static int normalize_arg(const char *arg)
{
    char *p = (char *)arg;
    size_t n;
    if (moq_path_normalize(p, strlen(p), &n) < 0) return -1;
    p[n] = '\0';
    return 0;
}

/* Which options each command accepts, checked after parsing. */
static int validate(struct tool_opts *o)
{
    if (!o->url) return usage_error(o, "missing URL");
    if (o->broadcast && (normalize_arg(o->broadcast) < 0 || !o->broadcast[0]))
        return usage_error(o, "invalid --broadcast path");
    if (o->prefix && normalize_arg(o->prefix) < 0) return usage_error(o, "invalid --prefix path");
    bool publish = o->cmd == CMD_PUBLISH,
         clock = o->cmd == CMD_CLOCK_PUBLISH || o->cmd == CMD_CLOCK_SUBSCRIBE;
    if (o->cmd != CMD_ANNOUNCED && !o->broadcast) return usage_error(o, "missing --broadcast");
    if (o->cmd == CMD_ANNOUNCED && o->broadcast)
        return usage_error(o, "--broadcast does not apply; use --prefix");
    if (o->cmd != CMD_ANNOUNCED && o->prefix) return usage_error(o, "--prefix does not apply");
    if (clock) {
        if (o->n_tracks > 1) return usage_error(o, "one --track at most");
        if (o->n_tracks == 0) o->tracks[o->n_tracks++] = "seconds";
    } else if (o->cmd != CMD_ANNOUNCED) {
        if (o->n_tracks == 0) return usage_error(o, "missing --track");
        if (!publish && o->n_tracks > 1) return usage_error(o, "one --track only");
    } else if (o->n_tracks) {
        return usage_error(o, "--track does not apply");
    }
    if (publish) {
        for (size_t i = 0; i < o->n_tracks; i++) {
            const char *eq = strchr(o->tracks[i], '=');
            if (eq == o->tracks[i] || (eq && eq[1] == '\0'))
                return usage_error(o, "--track '%s' needs NAME or NAME=FILE", o->tracks[i]);
            size_t nlen = eq ? (size_t)(eq - o->tracks[i]) : strlen(o->tracks[i]);
            for (size_t j = 0; j < i; j++) {
                const char *other = o->tracks[j];
                const char *oeq = strchr(other, '=');
                size_t olen = oeq ? (size_t)(oeq - other) : strlen(other);
                if (olen == nlen && memcmp(other, o->tracks[i], nlen) == 0)
                    return usage_error(o, "track '%.*s' given twice", (int)nlen, other);
            }
        }
    } else if (o->group_frames != 1 || o->has_group_start) {
        return usage_error(o, "--group-frames and --group-start apply to publish only");
    }
    if (o->max_latency_ms && !publish && o->cmd != CMD_SUBSCRIBE)
        return usage_error(o, "--max-latency applies to publish and subscribe only");
    bool publishes = publish || o->cmd == CMD_CLOCK_PUBLISH;
    if (!publishes && (o->origin_id || o->reconnect || o->has_reconnect_timeout))
        return usage_error(o,
                           "--origin, --reconnect and --reconnect-timeout apply to publish only");
    if (o->has_reconnect_timeout && !o->reconnect)
        return usage_error(o, "--reconnect-timeout needs --reconnect");
    if (o->cmd == CMD_FETCH && !o->has_group) return usage_error(o, "missing --group");
    if (o->cmd == CMD_FETCH && o->ready_file) return usage_error(o, "--ready-file does not apply");
    if (o->cmd != CMD_FETCH && o->has_group) return usage_error(o, "--group applies to fetch only");
    if (o->has_count && (publish || o->cmd == CMD_FETCH || o->cmd == CMD_CLOCK_PUBLISH))
        return usage_error(o, "--count does not apply");
    if (o->has_count && o->count == 0) return usage_error(o, "--count must be at least 1");
    if (o->disable_verify && (o->n_fingerprints || o->n_roots))
        return usage_error(o, "--tls-disable-verify cannot be combined with other TLS trust");
    if (o->n_fingerprints && o->n_roots)
        return usage_error(o, "--tls-fingerprint and --tls-root cannot be combined");
    return 0;
}

/* ---------------------------------------------------------------- output */

bool tool_write_stdout(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool tool_write_frame(enum framing framing, const uint8_t *payload, size_t len)
{
    if (framing == FRAMING_LENGTH) {
        uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                          (uint8_t)len};
        return tool_write_stdout(hdr, 4) && tool_write_stdout(payload, len);
    }
    return tool_write_stdout(payload, len) && tool_write_stdout("\n", 1);
}

/* ---------------------------------------------------------------- runtime */

static void vnote(struct tool *t, const char *fmt, va_list ap)
{
    char msg[1024];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
    len = moq_log_redact(msg, len, sizeof(msg) - 1);
    msg[len] = '\0';
    fprintf(stderr, "moq %s: %s\n", t->o->name, msg);
}

void tool_note(struct tool *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(t, fmt, ap);
    va_end(ap);
}

void tool_fail(struct tool *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!t->exit_set) vnote(t, fmt, ap);
    va_end(ap);
    tool_finish(t, EXIT_RUNTIME, false);
}

static void tool_over(struct tool *t);

static void close_now(struct tool *t)
{
    ev_timer_stop(t->loop, &t->drain);
    ev_timer_stop(t->loop, &t->settle);
    if (t->redialing)
        tool_over(t); /* no connection to close */
    else if (t->dial && !t->over)
        moq_dial_close(t->dial, 0, "done");
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tool *t = w->data;
    if (!t->session) {
        close_now(t);
        return;
    }
    double now = ev_now(loop);
    if (t->drain_started == 0) t->drain_started = now;
    if (moq_session_unacked_streams(t->session) > 0 && now - t->drain_started < DRAIN_MAX_S) return;
    /* Everything was handed over; give the last packets a moment before the close. */
    ev_timer_stop(loop, &t->drain);
    ev_timer_start(loop, &t->settle);
}

static void settle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    close_now(w->data);
}

void tool_finish(struct tool *t, int code, bool drain)
{
    if (!t->exit_set) {
        t->exit_set = true;
        t->exit_code = code;
    }
    if (t->stopping) {
        if (!drain && (ev_is_active(&t->drain) || ev_is_active(&t->settle))) close_now(t);
        return;
    }
    t->stopping = true;
    if (t->over) return;
    if (t->redialing) {
        close_now(t);
        return;
    }
    if (drain && t->session) {
        t->drain_started = 0;
        ev_timer_set(&t->drain, 0., DRAIN_POLL_S);
        ev_timer_start(t->loop, &t->drain);
    } else {
        close_now(t);
    }
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tool *t = w->data;
    moq_origin_tick(t->origin, moq_now_us());
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct tool *t = w->data;
    if (t->stopping) {
        tool_finish(t, t->exit_code, false); /* a second signal: close at once */
        return;
    }
    if (t->app_interrupted)
        t->app_interrupted(t);
    else
        tool_finish(t, 0, false);
}

static void on_connected(void *ctx, moq_dial *d, moq_session *s)
{
    struct tool *t = ctx;
    t->session = s;
    t->connected_at = ev_now(t->loop);
    if (t->stopping) {
        close_now(t);
        return;
    }
    if (t->app_connected) t->app_connected(t);
}

static bool publishing(const struct tool_opts *o)
{
    return o->cmd == CMD_PUBLISH || o->cmd == CMD_CLOCK_PUBLISH;
}

/* --ready-file: one line per milestone the relay confirmed, for scripts that must wait on
 * it. Each line is one write(2) to a file opened for appending, so a reader never sees half
 * of one. */
static void ready_line(struct tool *t, const char *what, const char *path, const char *track)
{
    char line[4200];
    int n = snprintf(line, sizeof(line), "%s%s%s%s%s\n", what, path[0] ? " " : "", path,
                     track[0] ? "/" : "", track);
    if (n < 0 || (size_t)n >= sizeof(line)) return;
    moq_debug("moq", "ready: %.*s", n - 1, line);
    int fd = open(t->o->ready_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        tool_fail(t, "cannot write --ready-file %s: %s", t->o->ready_file, strerror(errno));
    if (fd >= 0) close(fd);
}

static void on_session_event(void *ctx, moq_dial *d, const struct moq_session_event *ev)
{
    struct tool *t = ctx;
    if (!t->o->ready_file || t->stopping) return;
    bool consumes_track = t->o->cmd == CMD_SUBSCRIBE || t->o->cmd == CMD_CLOCK_SUBSCRIBE;
    switch (ev->kind) {
    case MOQ_SESSION_SUBSCRIBE_ACCEPTED:
        if (consumes_track) ready_line(t, "subscribed", ev->path, ev->track);
        break;
    case MOQ_SESSION_ANNOUNCES_OPEN:
        if (t->o->cmd == CMD_ANNOUNCED) ready_line(t, "watching", ev->path, "");
        break;
    case MOQ_SESSION_ANNOUNCED:
        if (publishing(t->o)) ready_line(t, "announced", ev->path, "");
        break;
    case MOQ_SESSION_PEER_SUBSCRIBED:
        if (publishing(t->o)) ready_line(t, "requested", ev->path, ev->track);
        break;
    }
}

/* The relay refused our announce request: the token does not let us read there. */
static void on_announce_refused(void *ctx, moq_dial *d, const char *prefix)
{
    struct tool *t = ctx;
    if (t->o->cmd == CMD_ANNOUNCED)
        tool_fail(t, "not allowed to subscribe under /%s", prefix);
    else
        tool_fail(t, "not allowed to subscribe to %s", prefix);
}

/* The run is over: release what the command holds and let the loop end. */
static void tool_over(struct tool *t)
{
    t->over = true;
    t->redialing = false;
    t->stopping = true;
    if (t->app_stop) t->app_stop(t);
    ev_timer_stop(t->loop, &t->tick);
    ev_timer_stop(t->loop, &t->drain);
    ev_timer_stop(t->loop, &t->settle);
    ev_timer_stop(t->loop, &t->redial);
    ev_signal_stop(t->loop, &t->sigint);
    ev_signal_stop(t->loop, &t->sigterm);
    /* What remains (the dial's own cleanup, the QUIC connection) ends by itself; the guard
     * only bounds it and does not keep the loop alive. */
    ev_timer_start(t->loop, &t->guard);
    ev_unref(t->loop);
}

static bool publish_refused(uint64_t code, const char *reason)
{
    return code == MOQ_CODE_UNAUTHORIZED && reason &&
           strncmp(reason, MOQ_SESSION_PUBLISH_REFUSED, sizeof(MOQ_SESSION_PUBLISH_REFUSED) - 1) ==
               0;
}

/* --reconnect: whether this end of a dial is followed by another attempt. Not when the run
 * is ending anyway, nor when the relay refused us (a redial cannot change its answer), nor
 * once the attempts since the last session that stayed up have used up the timeout. */
static bool want_redial(struct tool *t, int err, uint64_t code, const char *reason)
{
    if (!t->o->reconnect || t->stopping) return false;
    if (err == 0 && (code == MOQ_CODE_UNAUTHORIZED || publish_refused(code, reason))) return false;
    double now = ev_now(t->loop);
    bool stayed_up = t->connected_at > 0 && now - t->connected_at >= REDIAL_FIRST_S;
    t->connected_at = 0;
    if (stayed_up || t->give_up_at == 0) {
        /* a healthy session ended (or the first attempt failed): a new budget */
        t->backoff_s = REDIAL_FIRST_S;
        t->give_up_at = t->o->reconnect_timeout_ms ? now + t->o->reconnect_timeout_ms / 1000.0 : -1;
    }
    t->gave_up = t->give_up_at > 0 && now >= t->give_up_at;
    return !t->gave_up;
}

static void schedule_redial(struct tool *t, const char *why)
{
    uint32_t r = 0;
    if (gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r)) < 0) r = (uint32_t)moq_now_ns();
    /* jittered (half to all of the delay), so publishers cut off together do not return in
     * lockstep, and never past the give-up time */
    double wait = t->backoff_s * (0.5 + (r % 1000) / 2000.0);
    double now = ev_now(t->loop);
    if (t->give_up_at > 0 && now + wait > t->give_up_at) wait = t->give_up_at - now;
    t->backoff_s = t->backoff_s * 2 < REDIAL_MAX_S ? t->backoff_s * 2 : REDIAL_MAX_S;
    moq_warn("moq", "%s; reconnecting to %s in %.1f s", why, t->o->url, wait);
    t->redialing = true;
    ev_timer_set(&t->redial, wait, 0.);
    ev_timer_start(t->loop, &t->redial);
}

static void redial_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tool *t = w->data;
    char err[512] = "";
    t->redialing = false;
    if (moq_dial_start(loop, t->dial_cfg, &t->dial, err, sizeof(err)) < 0) {
        t->dial = NULL;
        t->redialing = true; /* (so that tool_fail ends the run here) */
        tool_fail(t, "cannot connect to %s: %s", t->o->url, err);
    }
}

static void on_closed(void *ctx, moq_dial *d, int err, uint64_t code, const char *reason)
{
    struct tool *t = ctx;
    t->session = NULL;
    t->dial = NULL;
    if (want_redial(t, err, code, reason)) {
        char why[320];
        snprintf(why, sizeof(why), "%s: %s", err < 0 ? "cannot connect" : "the connection ended",
                 reason && reason[0] ? reason : "closed");
        if (t->app_disconnected) t->app_disconnected(t);
        schedule_redial(t, why);
        return;
    }
    t->over = true;
    if (t->gave_up) {
        tool_fail(t, "gave up reconnecting to %s after %.1f s without a session: %s", t->o->url,
                  t->o->reconnect_timeout_ms / 1000.0, reason && reason[0] ? reason : "closed");
    } else if (err < 0) {
        if (!t->exit_set || !t->stopping)
            tool_fail(t, "cannot connect to %s: %s", t->o->url, reason);
    } else if (publishing(t->o) && publish_refused(code, reason)) {
        /* the relay refused our broadcast: the token does not allow it (this outcome wins
         * over an end of input that was already winding down) */
        tool_note(t, "not allowed to publish %s", t->o->broadcast);
        t->exit_set = true;
        t->exit_code = EXIT_RUNTIME;
    } else if (!t->stopping) {
        tool_fail(t, "the connection to %s ended: %s%scode %llu", t->o->url,
                  reason && reason[0] ? reason : "", reason && reason[0] ? ", " : "",
                  (unsigned long long)code);
    }
    tool_over(t);
}

static uint64_t random_origin_id(void)
{
    uint64_t id = 0;
    while (id == 0) {
        if (gnutls_rnd(GNUTLS_RND_NONCE, &id, sizeof(id)) < 0) id = (uint64_t)moq_now_ns();
        id &= (1ull << 53) - 1;
    }
    return id;
}

const char *tool_consume_prefix(const struct tool_opts *o)
{
    if (o->cmd == CMD_ANNOUNCED) return o->prefix ? o->prefix : "";
    return o->broadcast;
}

/* An empty --ready-file at the start: whatever it holds later happened in this run. */
static bool start_ready_file(const struct tool_opts *o)
{
    int fd = open(o->ready_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "moq %s: cannot write --ready-file %s: %s\n", o->name, o->ready_file,
                strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

static int run(struct tool_opts *o)
{
    struct tool t = {0};
    t.o = o;
    t.loop = ev_default_loop(EVFLAG_AUTO);
    if (!t.loop) {
        fprintf(stderr, "moq: cannot create the event loop\n");
        return EXIT_RUNTIME;
    }
    signal(SIGPIPE, SIG_IGN);
    moq_origin_config oc;
    moq_origin_config_default(&oc);
    oc.id = o->origin_id ? o->origin_id : random_origin_id();
    oc.linger_us = 0; /* a relay that goes away takes its broadcasts along */
    /* A publisher answers a new subscription with its latest group, however long after the
     * previous subscriber left. */
    oc.track_keep_us = UINT64_MAX;
    t.origin = moq_origin_new(&oc);
    if (!t.origin) {
        fprintf(stderr, "moq: out of memory\n");
        return EXIT_RUNTIME;
    }
    ev_timer_init(&t.tick, tick_cb, 1., 1.);
    ev_timer_init(&t.drain, drain_cb, 0., DRAIN_POLL_S);
    ev_timer_init(&t.settle, settle_cb, DRAIN_SETTLE_S, 0.);
    ev_timer_init(&t.guard, guard_cb, CLOSE_GUARD_S, 0.);
    ev_signal_init(&t.sigint, signal_cb, SIGINT);
    ev_signal_init(&t.sigterm, signal_cb, SIGTERM);
    ev_timer_init(&t.redial, redial_cb, 0., 0.);
    t.tick.data = t.drain.data = t.settle.data = t.guard.data = t.sigint.data = t.sigterm.data = &t;
    t.redial.data = &t;

    int rv;
    switch (o->cmd) {
    case CMD_PUBLISH:
        rv = publish_init(&t);
        break;
    case CMD_CLOCK_PUBLISH:
        rv = clock_publish_init(&t);
        break;
    case CMD_FETCH:
        rv = fetch_init(&t);
        break;
    case CMD_ANNOUNCED:
        rv = announced_init(&t);
        break;
    default:
        rv = subscribe_init(&t);
        break;
    }
    if (rv < 0) {
        if (t.app_stop) t.app_stop(&t);
        moq_origin_free(t.origin);
        return EXIT_RUNTIME;
    }

    if (o->ready_file && !start_ready_file(o)) {
        if (t.app_stop) t.app_stop(&t);
        moq_origin_free(t.origin);
        return EXIT_RUNTIME;
    }
    bool publishes = publishing(o);
    const char *everything = "";
    const char *consume = tool_consume_prefix(o);
    struct moq_dial_config dc = {
        .url = o->url,
        .tls =
            {
                .disable_verify = o->disable_verify,
                .roots = o->roots,
                .n_roots = o->n_roots,
                .fingerprints = o->fingerprints,
                .n_fingerprints = o->n_fingerprints,
            },
        .versions = o->version ? &o->version : NULL,
        .n_versions = o->version ? 1 : 0,
        .raw_quic = o->raw_quic,
        .timeout_ms = o->timeout_ms,
        .transport = {.keep_alive_ms = KEEP_ALIVE_MS},
        .origin = t.origin,
        .publish = publishes ? NULL : &consume,
        .n_publish = publishes ? 0 : 1,
        .subscribe = publishes ? &everything : NULL,
        .n_subscribe = publishes ? 1 : 0,
        .max_frame_bytes = MAX_FRAME_DEFAULT,
        .connected = on_connected,
        .announce_refused = on_announce_refused,
        .event = on_session_event,
        .tls_hint = strncmp(o->url, "http://", 7) == 0 ? NULL : TLS_HINT,
        .closed = on_closed,
        .ctx = &t,
    };
    t.dial_cfg = &dc;
    char err[512] = "";
    rv = moq_dial_start(t.loop, &dc, &t.dial, err, sizeof(err));
    if (rv < 0) {
        print_redacted("moq %s: cannot connect to %s: %s\n", o->name, o->url, err);
        if (t.app_stop) t.app_stop(&t);
        moq_origin_free(t.origin);
        return rv == MOQ_ERR_INVALID || rv == MOQ_ERR_UNSUPPORTED || rv == MOQ_ERR_CONFIG
                   ? EXIT_USAGE
                   : EXIT_RUNTIME;
    }
    ev_timer_start(t.loop, &t.tick);
    ev_signal_start(t.loop, &t.sigint);
    ev_signal_start(t.loop, &t.sigterm);
    ev_run(t.loop, 0);
    if (!t.over) {
        /* the guard fired or the loop ended early: nothing more can run */
        if (t.app_stop) t.app_stop(&t);
    }
    moq_origin_free(t.origin);
    return t.exit_set ? t.exit_code : 0;
}

int main(int argc, char **argv)
{
    struct tool_opts o = {0};
    o.group_frames = 1;
    o.reconnect_timeout_ms = RECONNECT_TIMEOUT_DEFAULT;
    if (argc < 2) {
        print_usage(stderr, NULL);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int skip = 2;
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        print_usage(stdout, NULL);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("moq %s\n", MOQ_VERSION);
        return 0;
    }
    if (strcmp(cmd, "bench") == 0) return bench_main(argc - 2, argv + 2);
    if (strcmp(cmd, "publish") == 0) {
        o.cmd = CMD_PUBLISH;
        o.name = "publish";
    } else if (strcmp(cmd, "subscribe") == 0) {
        o.cmd = CMD_SUBSCRIBE;
        o.name = "subscribe";
    } else if (strcmp(cmd, "fetch") == 0) {
        o.cmd = CMD_FETCH;
        o.name = "fetch";
    } else if (strcmp(cmd, "announced") == 0) {
        o.cmd = CMD_ANNOUNCED;
        o.name = "announced";
    } else if (strcmp(cmd, "clock") == 0) {
        const char *sub = argc > 2 ? argv[2] : "";
        if (strcmp(sub, "publish") == 0) {
            o.cmd = CMD_CLOCK_PUBLISH;
            o.name = "clock publish";
        } else if (strcmp(sub, "subscribe") == 0) {
            o.cmd = CMD_CLOCK_SUBSCRIBE;
            o.name = "clock subscribe";
        } else if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
            fputs(clock_usage, stdout);
            printf("\n%s", common_options);
            return 0;
        } else {
            fprintf(stderr, "moq clock: expected `publish` or `subscribe`\n");
            return EXIT_USAGE;
        }
        skip = 3;
    } else {
        print_redacted("moq: unknown command '%s'\nRun `moq --help` for usage.\n", cmd);
        return EXIT_USAGE;
    }
    const char *log_level = NULL;
    int pr = parse_options(&o, argc - skip, argv + skip, &log_level);
    if (pr == PARSE_EXIT_OK) return 0;
    if (pr != PARSE_OK) return EXIT_USAGE;
    int rv = validate(&o);
    if (rv) return rv;
    moq_log_set_level(log_level ? (enum moq_log_level)moq_log_level_parse(log_level)
                                : MOQ_LOG_INFO);
    const char *env = getenv("MOQ_LOG");
    if (!env || !*env) env = getenv("RUST_LOG");
    if (env && *env) moq_log_configure(env);
    return run(&o);
}
