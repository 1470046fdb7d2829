/* Unit tests for src/quic/limits.c: admission budgets shared by the listeners of a port. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "quic/limits.h"

static void connections_capped(void **state)
{
    struct moq_quic_limits_config cfg = {.max_connections = 3};
    moq_quic_limits *l = moq_quic_limits_new(&cfg);
    assert_non_null(l);
    for (int i = 0; i < 3; i++)
        assert_true(moq_quic_limits_connection_take(l));
    assert_false(moq_quic_limits_connection_take(l));
    assert_int_equal(moq_quic_limits_connections(l), 3);
    moq_quic_limits_connection_give(l);
    assert_true(moq_quic_limits_connection_take(l));
    moq_quic_limits_free(l);
}

enum { THREADS = 4, ATTEMPTS = 20000, MAX = 1000 };

static void *take_many(void *arg)
{
    moq_quic_limits *l = arg;
    size_t taken = 0;
    for (int i = 0; i < ATTEMPTS; i++) {
        if (moq_quic_limits_connection_take(l)) taken++;
        if (moq_quic_limits_half_open_take(l, 7)) taken++;
    }
    return (void *)taken;
}

/* Listeners on several threads together never get more than one budget. */
static void budgets_shared_across_threads(void **state)
{
    struct moq_quic_limits_config cfg = {.max_connections = MAX, .max_half_open = MAX};
    moq_quic_limits *l = moq_quic_limits_new(&cfg);
    assert_non_null(l);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, take_many, l), 0);
    size_t total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *taken;
        pthread_join(th[i], &taken);
        total += (size_t)taken;
    }
    assert_int_equal(total, 2 * MAX);
    assert_int_equal(moq_quic_limits_connections(l), MAX);
    assert_int_equal(moq_quic_limits_half_open(l, 7), MAX);
    moq_quic_limits_free(l);
}

static void half_open_per_address(void **state)
{
    struct moq_quic_limits_config cfg = {.max_half_open = 2};
    moq_quic_limits *l = moq_quic_limits_new(&cfg);
    assert_non_null(l);
    assert_true(moq_quic_limits_half_open_take(l, 1));
    assert_true(moq_quic_limits_half_open_take(l, 1));
    assert_false(moq_quic_limits_half_open_take(l, 1));
    assert_true(moq_quic_limits_half_open_take(l, 2)); /* another address */
    moq_quic_limits_half_open_done(l, 1);
    assert_int_equal(moq_quic_limits_half_open(l, 1), 1);
    assert_true(moq_quic_limits_half_open_take(l, 1));
    moq_quic_limits_half_open_done(l, 1);
    moq_quic_limits_half_open_done(l, 1);
    moq_quic_limits_half_open_done(l, 2);
    assert_int_equal(moq_quic_limits_half_open(l, 1), 0);
    assert_int_equal(moq_quic_limits_half_open(l, 2), 0);
    moq_quic_limits_free(l);
}

/* The buckets hold one second's worth and refill at their rate. */
static void token_buckets(void **state)
{
    struct moq_quic_limits_config cfg = {.handshake_rate = 10, .response_rate = 5};
    moq_quic_limits *l = moq_quic_limits_new(&cfg);
    assert_non_null(l);
    uint64_t now = 1000000;
    for (int i = 0; i < 10; i++)
        assert_true(moq_quic_limits_handshake_token(l, now));
    assert_false(moq_quic_limits_handshake_token(l, now));
    assert_true(moq_quic_limits_handshake_token(l, now + 100000)); /* 0.1 s: one more */
    assert_false(moq_quic_limits_handshake_token(l, now + 100000));
    for (int i = 0; i < 5; i++)
        assert_true(moq_quic_limits_response_token(l, now));
    assert_false(moq_quic_limits_response_token(l, now));
    moq_quic_limits_free(l);

    struct moq_quic_limits_config none = {0};
    l = moq_quic_limits_new(&none);
    for (int i = 0; i < 1000; i++)
        assert_true(moq_quic_limits_handshake_token(l, now)); /* no rate: never Retry */
    moq_quic_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connections_capped),
        cmocka_unit_test(budgets_shared_across_threads),
        cmocka_unit_test(half_open_per_address),
        cmocka_unit_test(token_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
