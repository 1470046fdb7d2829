/* The impairment proxy's decisions (tests/tools/impair_core.c): reproducible from the seed,
 * at the rates asked for, and only ever towards loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>

#include "impair.h"

static struct impair_opts parse_ok(const char *mode, const char *extra1, const char *extra2)
{
    char *argv[8] = {(char *)mode, "--listen", "127.0.0.1:0", "--to", "127.0.0.1:4443"};
    int argc = 5;
    if (extra1) argv[argc++] = (char *)extra1;
    if (extra2) argv[argc++] = (char *)extra2;
    struct impair_opts o;
    char err[256] = "";
    if (impair_parse(&o, argc, argv, err, sizeof(err)) != 0) fail_msg("%s", err);
    return o;
}

static void same_seed_same_fates(void **state)
{
    (void)state;
    struct impair_opts o = parse_ok("udp", "--loss", "10%");
    o.jitter_us = 5000;
    o.duplicate = 0.1;
    o.reorder = 0.1;
    impair_rng a = {7}, b = {7}, c = {8};
    struct impair_link la = {0}, lb = {0}, lc = {0};
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        struct impair_fate fa = impair_decide(&o, &a, &la, IMPAIR_UP, 1200, (uint64_t)i * 1000);
        struct impair_fate fb = impair_decide(&o, &b, &lb, IMPAIR_UP, 1200, (uint64_t)i * 1000);
        struct impair_fate fc = impair_decide(&o, &c, &lc, IMPAIR_UP, 1200, (uint64_t)i * 1000);
        assert_true(fa.drop == fb.drop && fa.copies == fb.copies && fa.reordered == fb.reordered);
        assert_true(fa.due_us[0] == fb.due_us[0]);
        if (fa.copies == 2) assert_true(fa.due_us[1] == fb.due_us[1]);
        differ += fa.drop != fc.drop;
    }
    assert_true(differ > 0);
}

static void loss_rate_and_bursts(void **state)
{
    (void)state;
    struct impair_opts o = parse_ok("udp", "--loss", "0.05");
    impair_rng r = {1};
    struct impair_link l = {0};
    int lost = 0;
    for (int i = 0; i < 100000; i++)
        lost += impair_decide(&o, &r, &l, IMPAIR_DOWN, 1000, 0).drop;
    assert_true(lost > 4500 && lost < 5500);

    o = parse_ok("udp", "--burst", "4");
    o.loss = 0.01;
    r.s = 1;
    l = (struct impair_link){0};
    int run = 0, events = 0;
    for (int i = 0; i < 100000; i++) {
        if (impair_decide(&o, &r, &l, IMPAIR_DOWN, 1000, 0).drop) {
            run++;
        } else if (run) {
            assert_true(run % 4 == 0); /* whole bursts (back to back ones add up) */
            events++;
            run = 0;
        }
    }
    assert_true(events > 500);
}

static void direction_limits_the_impairments(void **state)
{
    (void)state;
    struct impair_opts o = parse_ok("udp", "--direction", "down");
    o.loss = 1;
    impair_rng r = {1};
    struct impair_link l[2] = {{0}, {0}};
    assert_false(impair_decide(&o, &r, &l[0], IMPAIR_UP, 100, 0).drop);
    assert_true(impair_decide(&o, &r, &l[1], IMPAIR_DOWN, 100, 0).drop);
}

static void delay_jitter_and_cap(void **state)
{
    (void)state;
    struct impair_opts o = parse_ok("udp", "--delay", "50ms");
    o.jitter_us = 10000;
    impair_rng r = {3};
    struct impair_link l = {0};
    for (int i = 0; i < 1000; i++) {
        struct impair_fate f = impair_decide(&o, &r, &l, IMPAIR_UP, 100, 1000000);
        assert_true(f.due_us[0] >= 1040000 && f.due_us[0] <= 1060000);
    }
    /* 80 kbit/s: 1000 bytes take 100 ms; a 2000-byte queue holds two packets unsent */
    o = parse_ok("udp", "--rate", "80kbit");
    o.queue_bytes = 2000;
    l = (struct impair_link){0};
    struct impair_fate f1 = impair_decide(&o, &r, &l, IMPAIR_UP, 1000, 0);
    struct impair_fate f2 = impair_decide(&o, &r, &l, IMPAIR_UP, 1000, 0);
    struct impair_fate f3 = impair_decide(&o, &r, &l, IMPAIR_UP, 1000, 0);
    struct impair_fate f4 = impair_decide(&o, &r, &l, IMPAIR_UP, 1000, 100000);
    assert_true(f1.due_us[0] == 100000 && f2.due_us[0] == 200000);
    assert_true(f3.drop && f3.tail_drop);
    /* once the first has left, there is room again */
    assert_false(f4.drop);
    assert_true(f4.due_us[0] == 300000);
}

static void tcp_keeps_order_and_loses_nothing(void **state)
{
    (void)state;
    struct impair_opts o = parse_ok("tcp", "--jitter", "30ms");
    o.loss = 0.5;
    o.reorder = 0.5;
    impair_rng r = {5};
    struct impair_link l = {0};
    uint64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        struct impair_fate f = impair_decide(&o, &r, &l, IMPAIR_UP, 100, (uint64_t)i * 100);
        assert_false(f.drop);
        assert_int_equal(f.copies, 1);
        assert_true(f.due_us[0] >= last);
        last = f.due_us[0];
    }
}

static void only_loopback(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    unsigned len;
    assert_true(impair_loopback_addr("127.0.0.1:1", &ss, &len));
    assert_true(impair_loopback_addr("127.8.9.10:65535", &ss, &len));
    assert_true(impair_loopback_addr("[::1]:443", &ss, &len));
    assert_true(impair_loopback_addr("localhost:443", &ss, &len));
    assert_false(impair_loopback_addr("10.0.0.1:443", &ss, &len));
    assert_false(impair_loopback_addr("[::2]:443", &ss, &len));
    assert_false(impair_loopback_addr("example.com:443", &ss, &len));
    assert_false(impair_loopback_addr("127.0.0.1:70000", &ss, &len));
    assert_false(impair_loopback_addr("127.0.0.1", &ss, &len));
    char *argv[] = {"udp", "--listen", "127.0.0.1:0", "--to", "192.168.1.1:443"};
    struct impair_opts o;
    char err[256];
    assert_int_equal(impair_parse(&o, 5, argv, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "loopback"));
    char *bad[] = {"udp", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:1", "--loss", "150%"};
    assert_int_equal(impair_parse(&o, 7, bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--loss"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_seed_same_fates),
        cmocka_unit_test(loss_rate_and_bursts),
        cmocka_unit_test(direction_limits_the_impairments),
        cmocka_unit_test(delay_jitter_and_cap),
        cmocka_unit_test(tcp_keeps_order_and_loses_nothing),
        cmocka_unit_test(only_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
