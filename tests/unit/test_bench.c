/* `moq bench`: ranges, durations, presets and flag precedence, the keyframe header, lost
 * group counting, latency percentiles and the report line (tools/moq/bench_config.c and
 * bench_stats.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bench.h"

/* ---------------------------------------------------------------- ranges and durations */

static void test_range_parse(void **state)
{
    struct bench_range r;
    assert_int_equal(bench_range_parse("30", &r), 0);
    assert_true(r.min == 30 && r.max == 30);
    assert_int_equal(bench_range_parse("24:60", &r), 0);
    assert_true(r.min == 24 && r.max == 60);
    assert_int_equal(bench_range_parse("24-60", &r), 0);
    assert_true(r.min == 24 && r.max == 60);
    assert_int_equal(bench_range_parse("24..60", &r), 0);
    assert_true(r.min == 24 && r.max == 60);
    assert_int_equal(bench_range_parse(" 5 : 10 ", &r), 0);
    assert_true(r.min == 5 && r.max == 10);
    assert_int_equal(bench_range_parse("0", &r), 0);
    assert_true(r.min == 0 && r.max == 0);
    assert_int_equal(bench_range_parse("18446744073709551615", &r), 0);
    assert_true(r.max == UINT64_MAX);

    const char *bad[] = {"nope", "",   "1:", ":2", "1:2:3", "1.5", "-1", "18446744073709551616",
                         "3x",   "1 2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = (struct bench_range){7, 7};
        assert_int_equal(bench_range_parse(bad[i], &r), -1);
        assert_true(r.min == 7 && r.max == 7); /* untouched on error */
    }
}

static void test_range_roll(void **state)
{
    struct bench_rng rng = {.state = 42};
    struct bench_range r = {5, 10}, inverted = {10, 5}, one = {7, 7};
    bool seen[11] = {false};
    for (int i = 0; i < 1000; i++) {
        uint64_t v = bench_range_roll(&r, &rng);
        assert_true(v >= 5 && v <= 10);
        seen[v] = true;
        v = bench_range_roll(&inverted, &rng);
        assert_true(v >= 5 && v <= 10);
        assert_int_equal(bench_range_roll(&one, &rng), 7);
    }
    for (int v = 5; v <= 10; v++)
        assert_true(seen[v]); /* every value of the range comes up */
}

static void test_duration_parse(void **state)
{
    uint64_t ms = 1;
    assert_int_equal(bench_duration_parse("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(bench_duration_parse("500ms", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(bench_duration_parse("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(bench_duration_parse("1m 30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(bench_duration_parse("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(bench_duration_parse("2h", &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(bench_duration_parse("0", &ms), 0);
    assert_int_equal(ms, 0);
    const char *bad[] = {"", "10", "5x", "s", "-1s", "1s junk", "1e400s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(bench_duration_parse(bad[i], &ms), -1);
}

/* ---------------------------------------------------------------- presets and flags */

static int load(struct bench_config *c, const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 32; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    memset(c, 0, sizeof(*c));
    return bench_config_load(c, argc, argv);
}

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/test_bench_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void **state)
{
    struct bench_config c;
    assert_int_equal(load(&c, "moql://127.0.0.1:1/", NULL), 0);
    assert_string_equal(c.url, "moql://127.0.0.1:1/");
    assert_string_equal(c.name, "bench");
    assert_true(c.connections.min == 1 && c.connections.max == 1);
    assert_true(c.broadcasts.min == 1 && c.subscribe.max == 0);
    assert_true(c.fps.min == 30 && c.frame_size.min == 1200 && c.group_size.min == 60);
    assert_int_equal(c.startup_ms, 10000);
    assert_int_equal(c.report_ms, 1000);
    assert_int_equal(c.duration_ms, 0);
    assert_false(c.has_max_loss || c.has_max_p99);
    bench_config_free(&c);
}

static void test_flags_win_over_file(void **state)
{
    char *path = write_temp("connections = 100\n"
                            "fps = \"24:60\"\n"
                            "frame_size = { min = 300, max = 400 }\n"
                            "startup = \"30s\"\n"
                            "output = \"stats.jsonl\"\n"
                            "[client]\n"
                            "connect = \"https://example.com/\"\n"
                            "tls.disable_verify = true\n");
    struct bench_config c;
    /* the file alone */
    assert_int_equal(load(&c, "--file", path, NULL), 0);
    assert_true(c.connections.min == 100 && c.connections.max == 100);
    assert_true(c.fps.min == 24 && c.fps.max == 60);
    assert_true(c.frame_size.min == 300 && c.frame_size.max == 400);
    assert_int_equal(c.startup_ms, 30000);
    assert_string_equal(c.output, "stats.jsonl");
    assert_string_equal(c.url, "https://example.com/");
    assert_true(c.disable_verify);
    assert_true(c.group_size.min == 60); /* not in the file: the default */
    bench_config_free(&c);

    /* flags win, before or after --file; what they do not name stays from the file */
    assert_int_equal(load(&c, "--connections", "5:10", "--file", path, "moql://h:1/", "--startup",
                          "1s", "--tls-disable-verify=false", NULL),
                     0);
    assert_true(c.connections.min == 5 && c.connections.max == 10);
    assert_true(c.fps.min == 24 && c.fps.max == 60);
    assert_int_equal(c.startup_ms, 1000);
    assert_string_equal(c.url, "moql://h:1/");
    assert_false(c.disable_verify);
    assert_string_equal(c.output, "stats.jsonl");
    bench_config_free(&c);

    /* upstream's spelling of the URL and TLS flags */
    assert_int_equal(
        load(&c, "--file", path, "--client-connect", "ws://h:2/", "--output", "o.jsonl", NULL), 0);
    assert_string_equal(c.url, "ws://h:2/");
    assert_string_equal(c.output, "o.jsonl");
    bench_config_free(&c);
    unlink(path);
}

static void test_config_errors(void **state)
{
    struct bench_config c;
    assert_int_equal(load(&c, NULL), 2); /* no URL */
    bench_config_free(&c);
    assert_int_equal(load(&c, "moql://h:1/", "--report", "0s", NULL), 2);
    bench_config_free(&c);
    assert_int_equal(load(&c, "moql://h:1/", "--fps", "fast", NULL), 2);
    bench_config_free(&c);
    assert_int_equal(load(&c, "moql://h:1/", "--bogus", "1", NULL), 2);
    bench_config_free(&c);
    assert_int_equal(load(&c, "moql://h:1/", "--file", "/nonexistent/preset.toml", NULL), 2);
    bench_config_free(&c);
    assert_int_equal(load(&c, "moql://h:1/", "--max-p99", "fast", NULL), 2);
    bench_config_free(&c);
    assert_int_equal(load(&c, "moql://h:1/", "--help", NULL), 1);
    bench_config_free(&c);

    const char *bad[] = {
        "unknown = 1\n",           "fps = \"x\"\n",       "fps = -1\n",
        "fps = { min = 1 }\n",     "startup = 10\n",      "[client]\nbind = \"[::]:0\"\n",
        "[client.tls]\nkey = 1\n", "connections = 1.5\n", "report = \"soon\"\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&c, 0, sizeof(c));
        char err[256] = "";
        assert_int_equal(bench_config_apply_toml(&c, bad[i], strlen(bad[i]), err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        bench_config_free(&c);
    }
}

static void test_thresholds(void **state)
{
    struct bench_config c;
    assert_int_equal(load(&c, "moql://h:1/", "--max-loss", "0.5%", "--max-p99", "50ms", NULL), 0);
    assert_true(c.has_max_loss && c.max_loss_pct == 0.5);
    assert_true(c.has_max_p99 && c.max_p99_ms == 50);
    bench_config_free(&c);
    assert_int_equal(load(&c, "moql://h:1/", "--max-p99", "0", NULL), 0);
    assert_true(c.has_max_p99 && c.max_p99_ms == 0);
    bench_config_free(&c);
}

/* Every preset we ship loads, and the fan-out pair is one publisher and subscribers only. */
static void test_shipped_presets(void **state)
{
    const char *src = getenv("MOQ_SOURCE_DIR");
    assert_non_null(src);
    const char *names[] = {"hd",       "sd",       "audio",      "announce",  "chat",
                           "chat-pub", "chat-sub", "fanout-pub", "fanout-sub"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/bench/presets/%s.toml", src, names[i]);
        struct bench_config c;
        assert_int_equal(load(&c, "moql://h:1/", "--file", path, NULL), 0);
        assert_true(c.report_ms > 0);
        if (strcmp(names[i], "fanout-pub") == 0) {
            assert_true(c.connections.max == 1 && c.broadcasts.min == 1 && c.subscribe.max == 0);
        } else if (strcmp(names[i], "fanout-sub") == 0 || strcmp(names[i], "chat-sub") == 0) {
            assert_true(c.broadcasts.max == 0 && c.subscribe.min >= 1);
        } else if (strcmp(names[i], "hd") == 0) {
            assert_true(c.fps.min == 24 && c.fps.max == 60);
            assert_true(c.group_size.min == 23 && c.group_size.max == 59);
        }
        bench_config_free(&c);
    }
}

/* ---------------------------------------------------------------- keyframe header */

static void test_header_round_trip(void **state)
{
    struct bench_header h = {.connection = 7,
                             .broadcast = "bench/0000abcd/7/0",
                             .group = 42,
                             .fps = 30,
                             .frame_size = 1200,
                             .group_size = 59,
                             .broadcasts = 1,
                             .subscribe = 3,
                             .timestamp_us = 1700000000123456ull};
    size_t len = bench_header_len(&h, 1200);
    assert_int_equal(len, 1200); /* padded to the frame size exactly */
    uint8_t buf[1200];
    bench_header_write(&h, 1200, buf);
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf, len, 0, &jerr);
    assert_non_null(j); /* valid JSON with upstream's field names and units */
    assert_int_equal(json_integer_value(json_object_get(j, "connection")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "broadcast")), "bench/0000abcd/7/0");
    assert_int_equal(json_integer_value(json_object_get(j, "group")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "fps")), 30);
    assert_int_equal(json_integer_value(json_object_get(j, "frame_size")), 1200);
    assert_int_equal(json_integer_value(json_object_get(j, "group_size")), 59);
    assert_int_equal(json_integer_value(json_object_get(j, "broadcasts")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "subscribe")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "timestamp_ms")), 1700000000123ll);
    assert_true(json_is_string(json_object_get(j, "pad")));
    /* nothing but upstream's fields */
    assert_int_equal(json_object_size(j), 10);
    json_decref(j);

    struct bench_header_in in;
    assert_int_equal(bench_header_scan(buf, len, &in), 0);
    assert_true(in.has_ms && in.has_group);
    assert_int_equal(in.timestamp_ms, 1700000000123ull);
    assert_int_equal(in.group, 42);
    assert_int_equal(in.fps, 30);
    assert_int_equal(in.frame_size, 1200);
    assert_int_equal(in.group_size, 59);

    /* below the header's own size: the header at its natural length, still valid */
    size_t natural = bench_header_len(&h, 0);
    assert_true(natural > 100 && natural < 1200);
    assert_int_equal(bench_header_len(&h, 50), natural);
    bench_header_write(&h, 50, buf);
    j = json_loadb((const char *)buf, natural, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "pad")), "");
    json_decref(j);
}

/* What another implementation may publish: its own field order, maybe extra
 * fields and whitespace. */
static void test_header_scan_foreign(void **state)
{
    const char *upstream = "{\"connection\":3,\"broadcast\":\"bench/x/3/0\",\"group\":9,\"fps\":"
                           "10,\"frame_size\":300,\"group_size\":0,\"broadcasts\":1,\"subscribe\""
                           ":0,\"timestamp_ms\":1700000000999,\"pad\":\"000000\"}";
    struct bench_header_in in;
    assert_int_equal(bench_header_scan((const uint8_t *)upstream, strlen(upstream), &in), 0);
    assert_true(in.has_ms);
    assert_int_equal(in.timestamp_ms, 1700000000999ull);
    assert_int_equal(in.group, 9);

    const char *reordered = " { \"extra\" : {\"a\":[1,\"}\"]}, \"timestamp_ms\" : 5 , "
                            "\"s\":\"q\\\"uote\", \"fps\": 2.5 } ";
    assert_int_equal(bench_header_scan((const uint8_t *)reordered, strlen(reordered), &in), 0);
    assert_int_equal(in.timestamp_ms, 5);
    assert_int_equal(in.fps, 0); /* not an integer: ignored */

    const char *bad[] = {"",
                         "[]",
                         "{}",
                         "{\"fps\":1}",
                         "{\"timestamp_ms\":",
                         "zeros",
                         "{\"timestamp_ms\":1",
                         "{\"timestamp_ms\" 1}",
                         "{\"a\":\"open}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(bench_header_scan((const uint8_t *)bad[i], strlen(bad[i]), &in), -1);
    uint8_t zeros[64] = {0}; /* a zeroed frame is not a header */
    assert_int_equal(bench_header_scan(zeros, sizeof(zeros), &in), -1);
}

/* ---------------------------------------------------------------- lost groups */

static uint64_t observe_all(const uint64_t *seqs, size_t n, struct bench_totals *t)
{
    struct bench_gap g = {0};
    for (size_t i = 0; i < n; i++)
        bench_gap_observe(&g, seqs[i], t);
    return bench_lost_groups(t);
}

static void test_gap_counts_skips(void **state)
{
    struct bench_totals t = {0};
    uint64_t seqs[] = {0, 1, 3, 4}; /* 2 never came; 4 confirms it */
    assert_int_equal(observe_all(seqs, 4, &t), 1);
    assert_int_equal(t.groups_recv, 4);
}

static void test_gap_out_of_order(void **state)
{
    struct bench_totals t = {0};
    uint64_t seqs[] = {2, 0, 1, 3};
    assert_int_equal(observe_all(seqs, 4, &t), 0);
    assert_int_equal(t.groups_recv, 4);
}

static void test_gap_newest_excluded(void **state)
{
    struct bench_totals t = {0};
    struct bench_gap g = {0};
    uint64_t seqs[] = {0, 1, 2, 4}; /* 3 is missing, but 4 is the live frontier */
    for (size_t i = 0; i < 4; i++)
        bench_gap_observe(&g, seqs[i], &t);
    assert_int_equal(bench_lost_groups(&t), 0);
    bench_gap_observe(&g, 5, &t); /* 5 settles 4 and confirms that 3 was skipped */
    assert_int_equal(bench_lost_groups(&t), 1);
    /* 3 arriving late fills the hole */
    bench_gap_observe(&g, 3, &t);
    assert_int_equal(bench_lost_groups(&t), 0);
}

static void test_gap_sums_subscriptions(void **state)
{
    struct bench_totals t = {0};
    struct bench_gap a = {0}, b = {0};
    /* a subscription that starts late (first group 100) is not blamed for 0..99 */
    uint64_t sa[] = {100, 101, 102, 104, 105};
    uint64_t sb[] = {7, 9, 10, 12, 13};
    for (size_t i = 0; i < 5; i++) {
        bench_gap_observe(&a, sa[i], &t);
        bench_gap_observe(&b, sb[i], &t);
    }
    assert_int_equal(bench_lost_groups(&t), 1 + 2);
    assert_int_equal(t.groups_recv, 10);
    assert_true(bench_loss_pct(&t) > 0);
    /* one group only: nothing is settled, nothing lost */
    struct bench_totals one = {0};
    struct bench_gap g = {0};
    bench_gap_observe(&g, 50, &one);
    assert_int_equal(bench_lost_groups(&one), 0);
    assert_true(bench_loss_pct(&one) == 0);
}

static void test_gap_settle_in_flight(void **state)
{
    /* the run stops with 2 in flight behind the newest (3): lost only until it arrives,
     * and settling at the track's last group counts the frontier too */
    struct bench_totals t = {0};
    struct bench_gap g = {0};
    uint64_t seqs[] = {0, 1, 3};
    for (size_t i = 0; i < 3; i++)
        bench_gap_observe(&g, seqs[i], &t);
    assert_false(bench_gap_complete(&g, 3));
    bench_gap_observe(&g, 2, &t);
    assert_true(bench_gap_complete(&g, 3));
    bench_gap_settle(&g, 3, &t);
    assert_int_equal(bench_lost_groups(&t), 0);
    assert_int_equal(t.groups_expected, 4);
    assert_int_equal(t.groups_present, 4);
    bench_gap_settle(&g, 3, &t); /* once */
    assert_int_equal(t.groups_expected, 4);
    assert_int_equal(t.groups_present, 4);
}

static void test_gap_settle_counts_missing(void **state)
{
    /* the track's last group, 4, never came: lost */
    struct bench_totals t = {0};
    struct bench_gap g = {0};
    uint64_t seqs[] = {0, 1, 3};
    for (size_t i = 0; i < 3; i++)
        bench_gap_observe(&g, seqs[i], &t);
    assert_false(bench_gap_complete(&g, 4));
    bench_gap_observe(&g, 2, &t);
    assert_false(bench_gap_complete(&g, 4)); /* the last one is still to come */
    bench_gap_settle(&g, 4, &t);
    assert_int_equal(bench_lost_groups(&t), 1);
    assert_int_equal(t.groups_expected, 5);
    /* a subscription that received nothing has no span: complete, and nothing lost */
    struct bench_totals none = {0};
    struct bench_gap empty = {0};
    assert_true(bench_gap_complete(&empty, 7));
    bench_gap_settle(&empty, 7, &none);
    assert_int_equal(none.groups_expected, 0);
    assert_int_equal(bench_lost_groups(&none), 0);
}

/* ---------------------------------------------------------------- latency */

static void test_hist_percentiles(void **state)
{
    struct bench_hist *h = calloc(1, sizeof(*h));
    assert_int_equal(bench_hist_percentile(h, 50), 0); /* empty */
    for (uint64_t v = 1; v <= 20; v++)
        bench_hist_add(h, v); /* exact below 32 us */
    assert_int_equal(bench_hist_percentile(h, 50), 10);
    assert_int_equal(bench_hist_percentile(h, 99), 20);
    assert_int_equal(bench_hist_percentile(h, 100), 20);
    assert_int_equal(h->max_us, 20);

    memset(h, 0, sizeof(*h));
    /* 990 samples at 1 ms and 10 at 250 ms: p50 is 1 ms, p99 still 1 ms, max 250 ms */
    for (int i = 0; i < 990; i++)
        bench_hist_add(h, 1000);
    for (int i = 0; i < 10; i++)
        bench_hist_add(h, 250000);
    uint64_t p50 = bench_hist_percentile(h, 50), p99 = bench_hist_percentile(h, 99);
    assert_true(p50 >= 970 && p50 <= 1030);
    assert_true(p99 >= 970 && p99 <= 1030);
    uint64_t p999 = bench_hist_percentile(h, 99.9);
    assert_true(p999 >= 242000 && p999 <= 250000);
    assert_int_equal(h->max_us, 250000);

    /* one more slow sample moves p99 into the slow bucket */
    memset(h, 0, sizeof(*h));
    for (int i = 0; i < 98; i++)
        bench_hist_add(h, 1000);
    for (int i = 0; i < 2; i++)
        bench_hist_add(h, 80000);
    p99 = bench_hist_percentile(h, 99);
    assert_true(p99 >= 77000 && p99 <= 80000);

    /* huge values land in the last bucket and never beyond the maximum */
    memset(h, 0, sizeof(*h));
    bench_hist_add(h, UINT64_MAX);
    assert_true(bench_hist_percentile(h, 50) <= UINT64_MAX);
    free(h);
}

static void test_report_line(void **state)
{
    struct bench_totals prev = {0}, now = {.connections = 3,
                                           .target_connections = 4,
                                           .connect_failures = 1,
                                           .frames_sent = 100,
                                           .bytes_sent = 125000,
                                           .frames_recv = 200,
                                           .bytes_recv = 250000,
                                           .groups_recv = 10,
                                           .groups_expected = 8,
                                           .groups_present = 7};
    struct bench_hist *h = calloc(1, sizeof(*h)), *w = calloc(1, sizeof(*w));
    char line[2048];
    size_t n = bench_report_format(line, sizeof(line), 123, &now, &prev, 1.0, h, w, false);
    json_error_t jerr;
    json_t *j = json_loadb(line, n, 0, &jerr);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "latency_p99_ms"))); /* nothing measured */
    assert_true(json_is_null(json_object_get(j, "window_latency_p99_ms")));
    assert_int_equal(json_integer_value(json_object_get(j, "lost_groups")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "recv_groups")), 10);
    assert_int_equal(json_integer_value(json_object_get(j, "recv_frames")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "frames_recv")), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "recv_bytes")), 250000);
    assert_int_equal(json_integer_value(json_object_get(j, "connections")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "connect_failures")), 1);
    assert_true(json_real_value(json_object_get(j, "send_mbps")) == 1.0);
    assert_true(json_real_value(json_object_get(j, "recv_mbps")) == 2.0);
    assert_true(json_is_false(json_object_get(j, "final")));
    json_decref(j);

    bench_hist_add(h, 1500);
    bench_hist_add(h, 9000);
    bench_hist_add(w, 1500); /* the window saw only the fast one */
    n = bench_report_format(line, sizeof(line), 123, &now, &prev, 2.0, h, w, true);
    j = json_loadb(line, n, 0, &jerr);
    assert_non_null(j);
    assert_true(json_real_value(json_object_get(j, "latency_p50_ms")) > 1.4);
    assert_true(json_real_value(json_object_get(j, "latency_max_ms")) == 9.0);
    assert_true(json_real_value(json_object_get(j, "window_latency_max_ms")) == 1.5);
    assert_true(json_real_value(json_object_get(j, "window_latency_p99_ms")) <= 1.5);
    assert_true(json_is_true(json_object_get(j, "final")));
    json_decref(j);
    free(h);
    free(w);
}

static void test_verdict(void **state)
{
    struct bench_config c = {0};
    struct bench_totals t = {.groups_expected = 200, .groups_present = 199};
    struct bench_hist *h = calloc(1, sizeof(*h));
    char msg[256];
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), 0); /* no thresholds */

    c.has_max_loss = true;
    c.max_loss_pct = 1.0; /* 0.5 % lost: within */
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), 0);
    c.max_loss_pct = 0.25; /* exceeded */
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), BENCH_EXIT_THRESHOLD);
    assert_non_null(strstr(msg, "lost"));
    c.max_loss_pct = 0; /* --max-loss 0 fails on any loss, passes without */
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), BENCH_EXIT_THRESHOLD);
    t.groups_present = 200;
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), 0);

    c.has_max_p99 = true;
    c.max_p99_ms = 5;
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), BENCH_EXIT_THRESHOLD);
    assert_non_null(strstr(msg, "no latency")); /* nothing measured proves nothing */
    for (int i = 0; i < 100; i++)
        bench_hist_add(h, 2000);
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), 0);
    c.max_p99_ms = 0; /* impossible */
    assert_int_equal(bench_verdict(&c, &t, h, msg, sizeof(msg)), BENCH_EXIT_THRESHOLD);
    assert_non_null(strstr(msg, "p99"));
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_parse),
        cmocka_unit_test(test_range_roll),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags_win_over_file),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_shipped_presets),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_header_scan_foreign),
        cmocka_unit_test(test_gap_counts_skips),
        cmocka_unit_test(test_gap_out_of_order),
        cmocka_unit_test(test_gap_newest_excluded),
        cmocka_unit_test(test_gap_sums_subscriptions),
        cmocka_unit_test(test_gap_settle_in_flight),
        cmocka_unit_test(test_gap_settle_counts_missing),
        cmocka_unit_test(test_hist_percentiles),
        cmocka_unit_test(test_report_line),
        cmocka_unit_test(test_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
