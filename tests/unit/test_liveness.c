/* util/liveness: when a silent peer counts as gone, on a virtual clock (plain numbers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/liveness.h"

#define S 1000000ull /* microseconds */

static void owed_nothing_is_never_gone(void **state)
{
    (void)state;
    moq_liveness l;
    moq_liveness_init(&l);
    assert_true(moq_liveness_deadline(&l, 3 * S) == MOQ_LIVENESS_NONE);
    /* Sending what needs no answer (acknowledgements only) starts no wait. */
    moq_liveness_sent(&l, 10 * S, false);
    assert_false(moq_liveness_expired(&l, 1000 * S, 3 * S));
}

static void unanswered_send_expires_after_the_timeout(void **state)
{
    (void)state;
    moq_liveness l;
    moq_liveness_init(&l);
    moq_liveness_sent(&l, 5 * S, true);
    assert_true(moq_liveness_deadline(&l, 3 * S) == 8 * S);
    assert_false(moq_liveness_expired(&l, 8 * S - 1, 3 * S));
    assert_true(moq_liveness_expired(&l, 8 * S, 3 * S));
    /* A timeout of 0 turns the rule off. */
    assert_true(moq_liveness_deadline(&l, 0) == MOQ_LIVENESS_NONE);
    assert_false(moq_liveness_expired(&l, 100 * S, 0));
}

static void sending_more_does_not_restart_the_wait(void **state)
{
    (void)state;
    moq_liveness l;
    moq_liveness_init(&l);
    moq_liveness_sent(&l, 1 * S, true);
    /* keep-alives, retransmissions and new data to a vanished peer */
    for (uint64_t t = 2; t < 4; t++)
        moq_liveness_sent(&l, t * S, true);
    assert_true(moq_liveness_deadline(&l, 3 * S) == 4 * S);
}

static void hearing_from_the_peer_ends_or_restarts_the_wait(void **state)
{
    (void)state;
    moq_liveness l;
    moq_liveness_init(&l);
    moq_liveness_sent(&l, 1 * S, true);
    /* Everything answered: no more wait, whatever the time. */
    moq_liveness_heard(&l, 3 * S, false);
    assert_false(moq_liveness_expired(&l, 100 * S, 3 * S));
    /* An answer that leaves more outstanding restarts the wait from when it came. */
    moq_liveness_sent(&l, 10 * S, true);
    moq_liveness_heard(&l, 12 * S, true);
    assert_true(moq_liveness_deadline(&l, 3 * S) == 15 * S);
    assert_false(moq_liveness_expired(&l, 14 * S, 3 * S));
    assert_true(moq_liveness_expired(&l, 15 * S, 3 * S));
}

static void deadline_saturates(void **state)
{
    (void)state;
    moq_liveness l;
    moq_liveness_init(&l);
    moq_liveness_sent(&l, UINT64_MAX - 5, true);
    assert_true(moq_liveness_deadline(&l, 10) == MOQ_LIVENESS_NONE - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(owed_nothing_is_never_gone),
        cmocka_unit_test(unanswered_send_expires_after_the_timeout),
        cmocka_unit_test(sending_more_does_not_restart_the_wait),
        cmocka_unit_test(hearing_from_the_peer_ends_or_restarts_the_wait),
        cmocka_unit_test(deadline_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
