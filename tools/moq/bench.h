/*
 * bench.h - internals of `moq bench`, the load generator (see docs/client.md):
 *   - configuration: `min:max` ranges, durations, the TOML preset (--file) and the command
 *     line, where flags win over the file (bench_config.c);
 *   - measurement: the keyframe's JSON header, lost groups per subscription, the latency
 *     histogram and the JSON report line (bench_stats.c);
 *   - the run itself: many sessions on one event loop (bench.c).
 * The first two parts do no I/O besides reading the preset file, so unit tests link them
 * alone.
 *
 * Ownership: bench_config owns every string it holds (copies); bench_config_free releases
 * them. The other structures here are plain values.
 */
#ifndef MOQ_TOOL_BENCH_H
#define MOQ_TOOL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- configuration ------------------------------------------------------------------ */

#define BENCH_MAX_LIST 16
#define BENCH_TRACK    "data" /* the one track of every bench broadcast, as upstream */

/* An inclusive range rolled per connection: "30", "24:60", "24-60", "24..60". */
struct bench_range {
    uint64_t min, max;
};

/* 0, or -1 when s is not a range of unsigned integers. */
int bench_range_parse(const char *s, struct bench_range *out);

/* A small deterministic generator (splitmix64), seeded by the caller. */
struct bench_rng {
    uint64_t state;
};
uint64_t bench_rng_next(struct bench_rng *r);
/* A value in [min, max] (bounds swapped when min > max). */
uint64_t bench_range_roll(const struct bench_range *r, struct bench_rng *rng);

/* "30s", "500ms", "1m30s", "2h", "1.5s", "0"; humantime's units (ns, us, ms, s, m/min, h).
 * 0 with the value in milliseconds, or -1. */
int bench_duration_parse(const char *s, uint64_t *ms);

/* Which settings were given (so a flag can override the file and defaults apply last). */
enum bench_field {
    BF_NAME = 1u << 0,
    BF_STARTUP = 1u << 1,
    BF_DURATION = 1u << 2,
    BF_REPORT = 1u << 3,
    BF_CONNECTIONS = 1u << 4,
    BF_BROADCASTS = 1u << 5,
    BF_SUBSCRIBE = 1u << 6,
    BF_FPS = 1u << 7,
    BF_FRAME_SIZE = 1u << 8,
    BF_GROUP_SIZE = 1u << 9,
    BF_OUTPUT = 1u << 10,
    BF_URL = 1u << 11,
    BF_DISABLE_VERIFY = 1u << 12,
    BF_ROOTS = 1u << 13,
    BF_FINGERPRINTS = 1u << 14,
    BF_LOG_LEVEL = 1u << 15,
};

struct bench_config {
    uint32_t set; /* enum bench_field bits */
    char *url;
    char *name; /* broadcast namespace, default "bench" */
    uint64_t startup_ms, duration_ms, report_ms;
    struct bench_range connections, broadcasts, subscribe, fps, frame_size, group_size;
    char *output;
    char *file;
    /* connection */
    bool disable_verify;
    char *roots[BENCH_MAX_LIST];
    size_t n_roots;
    char *fingerprints[BENCH_MAX_LIST];
    size_t n_fingerprints;
    const char *version; /* static "moq-lite-0N" or NULL for all */
    bool raw_quic;
    uint64_t timeout_ms;
    char *log_level;
    /* pass/fail thresholds (command line only) */
    bool has_max_loss;
    double max_loss_pct;
    bool has_max_p99;
    double max_p99_ms;
    bool quiet; /* no progress line even on a terminal */
};

/* Upstream moq-bench's defaults: 1 connection, 1 broadcast, 0 subscriptions, 30 fps,
 * 1200-byte frames, groups of 60, startup 10 s, report 1 s, no duration. */
void bench_config_defaults(struct bench_config *c);
void bench_config_free(struct bench_config *c);

/* Parse the arguments after `bench` into a configuration with upstream's precedence:
 * flags, then the --file preset under them, then the defaults. Returns 0, 1 when --help or
 * --version was printed (exit 0), or 2 after printing a usage error on stderr. */
int bench_config_load(struct bench_config *c, int argc, char **argv);

/* Apply a TOML preset (upstream's keys) to c, marking what it sets. Unknown keys are
 * errors. Returns 0 or -1 with a message in err. */
int bench_config_apply_toml(struct bench_config *c, const char *text, size_t len, char *err,
                            size_t errlen);

extern const char bench_usage[];

/* ---- the keyframe header ------------------------------------------------------------ */

/* The JSON object that opens every group, with upstream's field names, units and order:
 * connection, broadcast, group, fps, frame_size, group_size, broadcasts, subscribe,
 * timestamp_ms (wall clock), pad (zeros that bring the frame to frame_size). */
struct bench_header {
    uint64_t connection;
    const char *broadcast;
    uint64_t group, fps, frame_size, group_size, broadcasts, subscribe;
    uint64_t timestamp_us; /* wall clock; written as timestamp_ms */
};

/* Length of the header padded (with the "pad" string) to `size` bytes; the header at its
 * natural length when that is larger. */
size_t bench_header_len(const struct bench_header *h, size_t size);
/* Write exactly bench_header_len(h, size) bytes into out (cap must hold them). */
void bench_header_write(const struct bench_header *h, size_t size, uint8_t *out);

/* What a subscriber reads back. */
struct bench_header_in {
    bool has_ms, has_group;
    uint64_t timestamp_ms, group, fps, frame_size, group_size;
};
/* Scan a JSON object for the fields above (others, nested ones included, are skipped).
 * 0 when it is an object with a timestamp_ms, -1 otherwise. */
int bench_header_scan(const uint8_t *p, size_t len, struct bench_header_in *out);

/* ---- counters ----------------------------------------------------------------------- */

/* Latency histogram in microseconds: exact below 32 us, then 32 buckets per power of two
 * (about 3 % resolution). Percentiles are the bucket's midpoint clamped to the maximum. */
#define BENCH_HIST_BUCKETS (32 + 59 * 32)
struct bench_hist {
    uint64_t count;
    uint64_t max_us;
    uint64_t buckets[BENCH_HIST_BUCKETS];
};
void bench_hist_add(struct bench_hist *h, uint64_t us);
/* p in (0, 100]: the nearest-rank percentile in microseconds; 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

struct bench_totals {
    uint64_t connections;   /* sessions up (gauge) */
    uint64_t broadcasts;    /* broadcasts announced (gauge) */
    uint64_t subscriptions; /* live subscriptions (gauge) */
    uint64_t frames_sent, bytes_sent, frames_recv, bytes_recv;
    uint64_t groups_recv;     /* groups received, all subscriptions */
    uint64_t groups_expected; /* settled span of every subscription (newest excluded) */
    uint64_t groups_present;  /* groups of those spans that arrived */
    uint64_t connect_failures;
    uint64_t target_connections;
};

/* Gap tracking for one subscription, as upstream counts it: the span from the lowest
 * sequence seen to the second highest (the newest group is the live frontier and is left
 * out until a later group settles it) against the groups that arrived. Every observation
 * updates the totals incrementally, so lost = expected - present at any time. */
struct bench_gap {
    bool started, has_cap, settled;
    uint64_t min, max, cap, expected;
    uint64_t seen; /* groups observed */
};
void bench_gap_observe(struct bench_gap *g, uint64_t sequence, struct bench_totals *t);
/* Whether every group from the lowest observed up to `last` has been observed (true when
 * nothing was observed: there is no span to wait for). Assumes no group above `last` was
 * observed. */
bool bench_gap_complete(const struct bench_gap *g, uint64_t last);
/* The subscription is over and `last` is the final group it could receive (at least the
 * newest observed): the whole span up to it, frontier included, is settled, and the groups
 * of it that never arrived count as lost. Nothing changes when nothing was observed. Once
 * settled, later calls do nothing. */
void bench_gap_settle(struct bench_gap *g, uint64_t last, struct bench_totals *t);
uint64_t bench_lost_groups(const struct bench_totals *t);
/* lost_groups as a percentage of the settled span (0 when nothing is settled). */
double bench_loss_pct(const struct bench_totals *t);

/* One report line (JSON, no newline) into buf: cumulative counters, rates over `secs`
 * since `prev`, latency over the whole run so far (`latency`) and since the previous line
 * (`window`). Returns the length (truncated at cap). */
size_t bench_report_format(char *buf, size_t cap, uint64_t timestamp_ms,
                           const struct bench_totals *now, const struct bench_totals *prev,
                           double secs, const struct bench_hist *latency,
                           const struct bench_hist *window, bool final);

#define BENCH_EXIT_THRESHOLD 3 /* --max-loss or --max-p99 exceeded */

/* The thresholds of the command line against the final counters: 0, or
 * BENCH_EXIT_THRESHOLD with the reasons in msg. --max-p99 with no latency measured at all
 * fails too (nothing proves the limit held). */
int bench_verdict(const struct bench_config *c, const struct bench_totals *t,
                  const struct bench_hist *latency, char *msg, size_t len);

/* ---- the run ------------------------------------------------------------------------ */

/* `moq bench ...` (argv after "bench"): the process exit status. */
int bench_main(int argc, char **argv);

#endif
