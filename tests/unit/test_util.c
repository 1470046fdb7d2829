/* Unit tests for src/util: varint, buffers, chunks, maps, lists, log specs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/chunk.h"
#include "util/err.h"
#include "util/fdlimit.h"
#include "util/list.h"
#include "util/log.h"
#include "util/memtrim.h"
#include "util/map.h"
#include "util/pool.h"
#include "util/varint.h"

static void varint_worked_examples(void **state)
{
    /* RFC 9000 appendix A.1 and the wire digest's worked bytes. */
    static const struct {
        uint64_t v;
        const char *hex;
        size_t len;
    } cases[] = {
        {37, "\x25", 1},
        {15293, "\x7b\xbd", 2},
        {494878333, "\x9d\x7f\x3e\x7d", 4},
        {151288809941952652ull, "\xc2\x19\x7c\x5e\xff\x14\xe8\x8c", 8},
        {0, "\x00", 1},
        {63, "\x3f", 1},
        {64, "\x40\x40", 2},
        {16383, "\x7f\xff", 2},
        {16384, "\x80\x00\x40\x00", 4},
        {MOQ_VARINT_MAX, "\xff\xff\xff\xff\xff\xff\xff\xff", 8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[8];
        assert_int_equal(moq_varint_len(cases[i].v), cases[i].len);
        uint8_t *end = moq_varint_put(out, cases[i].v);
        assert_int_equal(end - out, (long)cases[i].len);
        assert_memory_equal(out, cases[i].hex, cases[i].len);
        uint64_t back = 1;
        assert_int_equal(moq_varint_get(out, cases[i].len, &back), (int)cases[i].len);
        assert_true(back == cases[i].v);
    }
    assert_int_equal(moq_varint_len(MOQ_VARINT_MAX + 1), 0);
}

static void varint_accepts_long_forms_and_detects_truncation(void **state)
{
    uint64_t v;
    /* 37 encoded in two bytes (non-minimal) is accepted */
    assert_int_equal(moq_varint_get((const uint8_t *)"\x40\x25", 2, &v), 2);
    assert_true(v == 37);
    assert_int_equal(moq_varint_get((const uint8_t *)"\x80\x00", 2, &v), MOQ_ERR_AGAIN);
    assert_int_equal(moq_varint_get(NULL, 0, &v), MOQ_ERR_AGAIN);
}

static void zigzag_round_trip(void **state)
{
    int64_t values[] = {0, 1, -1, 1000, -10, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        assert_true(moq_zigzag_decode(moq_zigzag_encode(values[i])) == values[i]);
    assert_true(moq_zigzag_encode(1000) == 2000);
    assert_true(moq_zigzag_encode(-10) == 19);
}

static void buf_writer_and_reader(void **state)
{
    moq_buf b;
    moq_buf_init(&b);
    assert_int_equal(moq_buf_put_varint(&b, 15293), 0);
    assert_int_equal(moq_buf_put_u8(&b, 0x80), 0);
    assert_int_equal(moq_buf_put_lenbytes(&b, "bbb", 3), 0);
    assert_int_equal(moq_buf_put_u16be(&b, 0x1234), 0);
    assert_int_equal(moq_buf_put_u32be(&b, 0xdeadbeef), 0);
    assert_int_equal(moq_buf_put_varint(&b, MOQ_VARINT_MAX + 1), MOQ_ERR_INVALID);

    moq_rd r;
    moq_rd_init(&r, b.data, b.len);
    uint64_t v;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    const uint8_t *p;
    size_t n;
    assert_int_equal(moq_rd_varint(&r, &v), 0);
    assert_true(v == 15293);
    assert_int_equal(moq_rd_u8(&r, &u8), 0);
    assert_int_equal(u8, 0x80);
    assert_int_equal(moq_rd_lenbytes(&r, 2, &p, &n), MOQ_ERR_TOO_LARGE);
    assert_int_equal(moq_rd_lenbytes(&r, 16, &p, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "bbb", 3);
    assert_int_equal(moq_rd_u16be(&r, &u16), 0);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(moq_rd_u32be(&r, &u32), 0);
    assert_true(u32 == 0xdeadbeef);
    assert_int_equal(moq_rd_left(&r), 0);
    assert_int_equal(moq_rd_u8(&r, &u8), MOQ_ERR_AGAIN);

    /* A truncated length-prefixed string leaves the reader where it was. */
    moq_rd_init(&r,
                "\x05"
                "ab",
                3);
    assert_int_equal(moq_rd_lenbytes(&r, 16, &p, &n), MOQ_ERR_AGAIN);
    assert_int_equal(moq_rd_left(&r), 3);

    moq_buf_consume(&b, 2);
    assert_int_equal(b.data[0], 0x80);
    moq_buf_consume(&b, 1000);
    assert_int_equal(b.len, 0);
    moq_buf_free(&b);
}

static void chunk_refcounts(void **state)
{
    size_t before = moq_chunk_live_count();
    moq_chunk *c = moq_chunk_copy("hello", 5);
    assert_non_null(c);
    assert_int_equal(c->len, 5);
    assert_int_equal(moq_chunk_live_count(), before + 1);
    moq_chunk_ref(c);
    moq_chunk_unref(c);
    assert_int_equal(moq_chunk_live_count(), before + 1);
    moq_chunk_unref(c);
    assert_int_equal(moq_chunk_live_count(), before);
    moq_chunk_unref(NULL);
}

static void map_put_get_del_many(void **state)
{
    moq_map m;
    moq_map_init(&m);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(moq_map_put(&m, key, (size_t)n, (void *)(intptr_t)(i + 1)), 0);
    }
    assert_int_equal(moq_map_len(&m), 1000);
    for (int i = 0; i < 1000; i += 2) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal((intptr_t)moq_map_del(&m, key, (size_t)n), i + 1);
    }
    assert_int_equal(moq_map_len(&m), 500);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof(key), "key-%d", i);
        void *v = moq_map_get(&m, key, (size_t)n);
        if (i % 2)
            assert_int_equal((intptr_t)v, i + 1);
        else
            assert_null(v);
    }
    assert_int_equal(moq_map_put(&m, "", 0, (void *)7), 0);
    assert_int_equal((intptr_t)moq_map_get(&m, "", 0), 7);
    size_t it = 0, count = 0;
    while (moq_map_next(&m, &it, NULL, NULL, NULL))
        count++;
    assert_int_equal(count, 501);
    moq_map_free(&m);

    moq_u64map u;
    moq_u64map_init(&u);
    for (uint64_t i = 0; i < 5000; i++)
        assert_int_equal(moq_u64map_put(&u, i * 4, (void *)(i + 1)), 0);
    for (uint64_t i = 0; i < 5000; i += 3)
        assert_non_null(moq_u64map_del(&u, i * 4));
    for (uint64_t i = 0; i < 5000; i++) {
        void *v = moq_u64map_get(&u, i * 4);
        if (i % 3 == 0)
            assert_null(v);
        else
            assert_ptr_equal(v, (void *)(i + 1));
    }
    /* Churn: insert/delete cycles must not exhaust the table with tombstones. */
    for (uint64_t i = 0; i < 100000; i++) {
        assert_int_equal(moq_u64map_put(&u, 1000000 + i, (void *)1), 0);
        assert_non_null(moq_u64map_del(&u, 1000000 + i));
    }
    moq_u64map_free(&u);
}

/* Keys that come and go a few at a time (a connection's streams, a bridge's groups) mostly
 * reuse the slots they leave: the table is rarely rehashed as they pass through (it was every
 * twelfth insertion, when each key left a tombstone), and then into a pool block. */
static void map_churn_keeps_its_slots(void **state)
{
    (void)state;
    moq_u64map u;
    moq_u64map_init(&u);
    enum { LIVE = 4 };
    for (uint64_t k = 0; k < LIVE; k++)
        assert_int_equal(moq_u64map_put(&u, k * 4 + 3, (void *)(uintptr_t)(k + 1)), 0);
    const void *slots = u.slots;
    size_t cap = u.cap, rehashes = 0;
    for (uint64_t k = LIVE; k < 20000; k++) {
        assert_ptr_equal(moq_u64map_del(&u, (k - LIVE) * 4 + 3), (void *)(uintptr_t)(k - LIVE + 1));
        assert_int_equal(moq_u64map_put(&u, k * 4 + 3, (void *)(uintptr_t)(k + 1)), 0);
        rehashes += u.slots != slots;
        slots = u.slots;
        assert_int_equal(u.cap, cap);
        for (uint64_t j = k + 1 - LIVE; j <= k; j++)
            assert_ptr_equal(moq_u64map_get(&u, j * 4 + 3), (void *)(uintptr_t)(j + 1));
        assert_null(moq_u64map_get(&u, (k - LIVE) * 4 + 3));
    }
    assert_int_equal(moq_u64map_len(&u), LIVE);
    assert_true(rehashes < 200);

    /* The slot arrays are pool blocks: a rehash takes one from the thread's cache. */
    moq_pool_release_thread();
    size_t bytes = u.cap * 24; /* key, value, state */
    moq_u64map_free(&u);
    assert_int_equal(moq_pool_thread_cached(), moq_pool_class_size(bytes));
    moq_pool_release_thread();

    moq_map m;
    moq_map_init(&m);
    char key[32];
    for (int k = 0; k < 20000; k++) {
        int n = snprintf(key, sizeof(key), "group-%d", k);
        assert_int_equal(moq_map_put(&m, key, (size_t)n, (void *)(intptr_t)(k + 1)), 0);
        if (k < LIVE) continue;
        n = snprintf(key, sizeof(key), "group-%d", k - LIVE);
        assert_int_equal((intptr_t)moq_map_del(&m, key, (size_t)n), k - LIVE + 1);
        assert_true(m.used <= m.cap * 3 / 4);
        assert_true(m.cap <= 32);
    }
    for (int k = 0; k < 20000; k++) {
        int n = snprintf(key, sizeof(key), "group-%d", k);
        void *v = moq_map_get(&m, key, (size_t)n);
        if (k < 20000 - LIVE)
            assert_null(v);
        else
            assert_int_equal((intptr_t)v, k + 1);
    }
    moq_map_free(&m);
}

struct item {
    int v;
    moq_list link;
};

static void list_operations(void **state)
{
    moq_list head;
    moq_list_init(&head);
    struct item items[4];
    for (int i = 0; i < 4; i++) {
        items[i].v = i;
        moq_list_init(&items[i].link);
        moq_list_push_back(&head, &items[i].link);
    }
    moq_list_remove(&items[1].link);
    assert_false(moq_list_linked(&items[1].link));
    int seen[4], n = 0;
    moq_list *pos, *tmp;
    moq_list_each(pos, tmp, &head)
    {
        struct item *it = moq_container_of(pos, struct item, link);
        seen[n++] = it->v;
        moq_list_remove(pos);
    }
    assert_int_equal(n, 3);
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[1], 2);
    assert_int_equal(seen[2], 3);
    assert_true(moq_list_empty(&head));
}

static void log_specs(void **state)
{
    moq_log_set_level(MOQ_LOG_INFO);
    assert_true(moq_log_enabled(MOQ_LOG_INFO, "quic"));
    assert_false(moq_log_enabled(MOQ_LOG_DEBUG, "quic"));
    assert_int_equal(moq_log_configure("warn,quic=debug,unknown_crate=trace"), 0);
    assert_true(moq_log_enabled(MOQ_LOG_DEBUG, "quic"));
    assert_false(moq_log_enabled(MOQ_LOG_INFO, "relay"));
    assert_int_equal(moq_log_configure("moq_relay=trace"), 0);
    assert_true(moq_log_enabled(MOQ_LOG_TRACE, "relay"));
    assert_true(moq_log_enabled(MOQ_LOG_TRACE, "cluster"));
    assert_false(moq_log_enabled(MOQ_LOG_INFO, "moq"));
    assert_int_equal(moq_log_configure("quic=loud"), MOQ_ERR_INVALID);
    assert_true(moq_log_enabled(MOQ_LOG_DEBUG, "quic"));
    assert_int_equal(moq_log_level_parse("DEBUG"), MOQ_LOG_DEBUG);
    assert_int_equal(moq_log_level_parse("nope"), -1);
    moq_log_set_level(MOQ_LOG_INFO);
}

/* Log lines never carry tokens. */
static void log_redacts_tokens(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    moq_log_set_level(MOQ_LOG_INFO);
    moq_info("h3", "session on /room?jwt=abc.def.ghi&x=1 (moq-lite-05)");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    char buf[512] = {0};
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "/room?jwt=<redacted>&x=1 (moq-lite-05)"));
    assert_null(strstr(buf, "abc.def"));
}

/* A token standing alone (an error quoting a value) is redacted too; words are not. */
static void redact_bare_tokens(void **state)
{
    char text[256];
    snprintf(text, sizeof(text), "cluster token %s: cannot read it; heyJude eyJ eyJshort.x",
             "eyJhbGciOiJIUzI1NiJ9.eyJyb290IjoiIn0.c2lnbmF0dXJlLXNpZw");
    size_t len = moq_log_redact(text, strlen(text), sizeof(text) - 1);
    text[len] = '\0';
    assert_string_equal(text, "cluster token <redacted>: cannot read it; heyJude eyJ eyJshort.x");
    snprintf(text, sizeof(text), "key '%s'", "eyJhbGciOiJIUzI1NiIsImsiOiJzZWNyZXQifQ");
    len = moq_log_redact(text, strlen(text), sizeof(text) - 1);
    text[len] = '\0';
    assert_string_equal(text, "key '<redacted>'");
}

struct fake_clock {
    uint64_t now;
};

static uint64_t fake_now(void *ctx)
{
    return ((struct fake_clock *)ctx)->now;
}

/* Run fn with stderr captured into buf. */
static size_t capture_stderr(void (*fn)(void *), void *arg, char *buf, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    fn(arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(fds[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    close(fds[0]);
    buf[len] = '\0';
    return len;
}

static size_t count_lines(const char *buf, const char *needle)
{
    size_t n = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void refuse_25(void *arg)
{
    (void)arg;
    for (int i = 0; i < 25; i++)
        moq_info_repeat("refused test packets", "quic", "refused peer %d", i);
}

static void flush_repeats(void *arg)
{
    struct fake_clock *clk = arg;
    clk->now += 9 * MOQ_US_PER_S;
    moq_log_repeat_flush(); /* the interval has not passed: nothing yet */
    clk->now += MOQ_US_PER_S;
    moq_log_repeat_flush();
    moq_log_repeat_flush(); /* once */
}

/* A flood of one line is written `burst` times per interval, then summarised once with its
 * count when the interval has passed on the injected clock. */
static void log_repeats_are_summarised(void **state)
{
    static char buf[16384];
    struct fake_clock clk = {1000};
    moq_clock clock = {fake_now, fake_now, &clk};
    moq_log_set_level(MOQ_LOG_INFO);
    moq_log_set_clock(&clock);
    moq_log_set_repeat(10 * MOQ_US_PER_S, 10);

    capture_stderr(refuse_25, NULL, buf, sizeof(buf));
    assert_int_equal(count_lines(buf, "refused peer"), 10);
    assert_null(strstr(buf, "not logged"));

    capture_stderr(flush_repeats, &clk, buf, sizeof(buf));
    assert_int_equal(count_lines(buf, "refused test packets: 15 more in the last 10s"), 1);
    assert_int_equal(count_lines(buf, "\n"), 1);

    /* A new interval writes the first lines again. */
    capture_stderr(refuse_25, NULL, buf, sizeof(buf));
    assert_int_equal(count_lines(buf, "refused peer"), 10);

    /* Interval 0 turns the limit off. */
    moq_log_set_repeat(0, 10);
    capture_stderr(refuse_25, NULL, buf, sizeof(buf));
    assert_int_equal(count_lines(buf, "refused peer"), 25);
    moq_log_set_repeat(MOQ_LOG_DEFAULT_REPEAT_INTERVAL_US, MOQ_LOG_DEFAULT_REPEAT_BURST);
    moq_log_set_clock(NULL);
}

/* Memory is trimmed once the load fell and then stayed quiet, once per fall, and again when
 * much more memory was freed later. */
static void memtrim_after_load_falls(void **state)
{
    moq_memtrim m;
    const uint64_t s = MOQ_US_PER_S;
    const size_t mb = 1u << 20;
    moq_memtrim_init(&m, 5 * s, 0);
    for (size_t n = 1; n <= 1500; n++)
        moq_memtrim_started(&m, n, 1 * s);
    assert_false(moq_memtrim_due(&m, 1500, 0, 10 * s)); /* no fall */
    assert_false(moq_memtrim_due(&m, 10, 0, 12 * s));   /* fell, but checked 2 s ago */
    assert_true(moq_memtrim_due(&m, 10, 0, 15 * s));
    moq_memtrim_done(&m, 2 * mb);
    assert_false(moq_memtrim_due(&m, 10, 3 * mb, 20 * s)); /* no new fall, little freed */
    assert_true(moq_memtrim_due(&m, 10, 11 * mb, 25 * s)); /* freed later */
    moq_memtrim_done(&m, 1 * mb);
    assert_false(moq_memtrim_due(&m, 10, 1 * mb, 60 * s));
    moq_memtrim_started(&m, 11, 61 * s);
    assert_false(moq_memtrim_due(&m, 5, 0, 62 * s)); /* quiet again first */
    assert_true(moq_memtrim_due(&m, 5, 0, 66 * s));
    assert_int_equal(m.trims, 3);
    moq_memtrim_init(&m, 0, 0); /* 0: never */
    moq_memtrim_started(&m, 100, 0);
    assert_false(moq_memtrim_due(&m, 0, 100 * mb, 3600 * s));
}

static void fdlimit_raised_to_hard(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 64) skip();
    rlim_t low = 32;
    struct rlimit lowered = {low, rl.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    struct moq_fdlimit fl;
    moq_fdlimit_raise(&fl);
    assert_int_equal(fl.err, 0);
    assert_int_equal(fl.before, low);
    assert_true(fl.raised);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_int_equal(fl.after, rl.rlim_cur);
    if (rl.rlim_max != RLIM_INFINITY) assert_int_equal(rl.rlim_cur, rl.rlim_max);
    /* Already at the hard limit: nothing to do. */
    moq_fdlimit_raise(&fl);
    assert_false(fl.raised);
    assert_int_equal(fl.before, fl.after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_worked_examples),
        cmocka_unit_test(varint_accepts_long_forms_and_detects_truncation),
        cmocka_unit_test(zigzag_round_trip),
        cmocka_unit_test(buf_writer_and_reader),
        cmocka_unit_test(chunk_refcounts),
        cmocka_unit_test(map_put_get_del_many),
        cmocka_unit_test(map_churn_keeps_its_slots),
        cmocka_unit_test(list_operations),
        cmocka_unit_test(log_specs),
        cmocka_unit_test(log_redacts_tokens),
        cmocka_unit_test(redact_bare_tokens),
        cmocka_unit_test(log_repeats_are_summarised),
        cmocka_unit_test(memtrim_after_load_falls),
        cmocka_unit_test(fdlimit_raised_to_hard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
