/* Unit tests for src/quic/sched (stream order) and src/quic/sendq (zero-copy send queue). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "quic/sched.h"
#include "quic/sendq.h"
#include "util/chunk.h"
#include "util/err.h"

struct item {
    moq_quic_sched_node node;
    int id;
};

static int serve(moq_quic_sched *s)
{
    moq_quic_sched_node *n = moq_quic_sched_peek(s);
    if (!n) return -1;
    return ((struct item *)n)->id; /* node is the first member */
}

static void higher_priority_first(void **state)
{
    (void)state;
    moq_quic_sched s;
    moq_quic_sched_init(&s);
    struct item it[5];
    uint64_t prio[5] = {1, 5, 3, 5, 0};
    for (int i = 0; i < 5; i++) {
        it[i].id = i;
        moq_quic_sched_node_init(&it[i].node, prio[i]);
        assert_int_equal(moq_quic_sched_push(&s, &it[i].node), MOQ_OK);
    }
    /* Pushing twice is a no-op. */
    assert_int_equal(moq_quic_sched_push(&s, &it[0].node), MOQ_OK);
    assert_int_equal(moq_quic_sched_len(&s), 5);
    int order[5];
    for (int i = 0; i < 5; i++) {
        order[i] = serve(&s);
        moq_quic_sched_remove(&s, &it[order[i]].node);
        assert_false(moq_quic_sched_queued(&it[order[i]].node));
    }
    /* Priority 5 twice (in arrival order), then 3, 1, 0. */
    int expect[5] = {1, 3, 2, 0, 4};
    assert_memory_equal(order, expect, sizeof(order));
    assert_null(moq_quic_sched_peek(&s));
    moq_quic_sched_free(&s);
}

static void equal_priorities_round_robin(void **state)
{
    (void)state;
    moq_quic_sched s;
    moq_quic_sched_init(&s);
    struct item it[4];
    for (int i = 0; i < 4; i++) {
        it[i].id = i;
        moq_quic_sched_node_init(&it[i].node, 7);
        moq_quic_sched_push(&s, &it[i].node);
    }
    /* Serving and requeueing cycles through all of them, repeatedly. */
    int seen[12];
    for (int i = 0; i < 12; i++) {
        seen[i] = serve(&s);
        moq_quic_sched_requeue(&s, &it[seen[i]].node);
    }
    int expect[12] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    assert_memory_equal(seen, expect, sizeof(seen));

    /* A higher priority newcomer preempts; once gone, the rotation resumes where it was. */
    struct item hi = {.id = 9};
    moq_quic_sched_node_init(&hi.node, 8);
    moq_quic_sched_push(&s, &hi.node);
    assert_int_equal(serve(&s), 9);
    moq_quic_sched_remove(&s, &hi.node);
    assert_int_equal(serve(&s), 0);

    /* Lowering the head's priority moves it behind everyone. */
    moq_quic_sched_set_priority(&s, &it[0].node, 1);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(serve(&s), i);
        moq_quic_sched_requeue(&s, &it[i].node);
    }
    assert_int_equal(serve(&s), 1);
    moq_quic_sched_remove(&s, &it[1].node);
    moq_quic_sched_remove(&s, &it[2].node);
    moq_quic_sched_remove(&s, &it[3].node);
    assert_int_equal(serve(&s), 0);
    /* Raising it back: it joins the end of its new class (alone now). */
    moq_quic_sched_set_priority(&s, &it[0].node, 100);
    assert_int_equal(serve(&s), 0);
    moq_quic_sched_free(&s);
    assert_false(moq_quic_sched_queued(&it[0].node));
}

static void heap_stays_ordered_under_churn(void **state)
{
    (void)state;
    moq_quic_sched s;
    moq_quic_sched_init(&s);
    static struct item it[300];
    for (int i = 0; i < 300; i++) {
        it[i].id = i;
        moq_quic_sched_node_init(&it[i].node, (uint64_t)((i * 7919) % 13));
        moq_quic_sched_push(&s, &it[i].node);
    }
    for (int i = 0; i < 300; i += 3)
        moq_quic_sched_remove(&s, &it[i].node);
    for (int i = 1; i < 300; i += 5)
        moq_quic_sched_set_priority(&s, &it[i].node, (uint64_t)(i % 4));
    uint64_t last_prio = UINT64_MAX, last_seq = 0;
    size_t n = 0;
    moq_quic_sched_node *node;
    while ((node = moq_quic_sched_peek(&s)) != NULL) {
        assert_true(node->priority <= last_prio);
        if (node->priority == last_prio) assert_true(node->seq > last_seq);
        last_prio = node->priority;
        last_seq = node->seq;
        moq_quic_sched_remove(&s, node);
        n++;
    }
    assert_int_equal(n, 200);
    moq_quic_sched_free(&s);
}

static moq_chunk *chunk_of(size_t len, uint8_t fill)
{
    moq_chunk *c = moq_chunk_new(len);
    memset(c->data, fill, len);
    c->len = len;
    return c;
}

static void sendq_hands_out_chunk_bytes_without_copying(void **state)
{
    (void)state;
    size_t live = moq_chunk_live_count();
    moq_quic_sendq q;
    moq_quic_sendq_init(&q);
    moq_chunk *a = chunk_of(100, 'a'), *b = chunk_of(50, 'b');
    moq_slice v[3] = {{a, 10, 80}, {b, 0, 0}, {b, 0, 50}};
    assert_int_equal(moq_quic_sendq_push(&q, v, 3), MOQ_OK);
    /* The queue holds its own references: the writer may drop its references now. */
    moq_chunk_unref(a);
    moq_chunk_unref(b);
    assert_int_equal(moq_chunk_live_count(), live + 2);
    assert_int_equal(moq_quic_sendq_unsent(&q), 130);

    ngtcp2_vec vec[4];
    size_t n = moq_quic_sendq_peek(&q, vec, 4);
    assert_int_equal(n, 2); /* the empty slice was skipped */
    assert_ptr_equal(vec[0].base, a->data + 10);
    assert_int_equal(vec[0].len, 80);
    assert_ptr_equal(vec[1].base, b->data);

    /* ngtcp2 takes 100 bytes: 80 of a and 20 of b. */
    moq_quic_sendq_advance(&q, 100);
    assert_int_equal(moq_quic_sendq_unsent(&q), 30);
    n = moq_quic_sendq_peek(&q, vec, 4);
    assert_int_equal(n, 1);
    assert_ptr_equal(vec[0].base, b->data + 20);
    assert_int_equal(vec[0].len, 30);

    /* Acks free whole slices only. */
    moq_quic_sendq_ack(&q, 0, 79);
    assert_int_equal(moq_chunk_live_count(), live + 2);
    moq_quic_sendq_ack(&q, 79, 1);
    assert_int_equal(moq_chunk_live_count(), live + 1);
    moq_quic_sendq_ack(&q, 80, 20);
    assert_int_equal(moq_chunk_live_count(), live + 1);
    moq_quic_sendq_advance(&q, 30);
    moq_quic_sendq_ack(&q, 100, 30);
    assert_int_equal(moq_chunk_live_count(), live);
    assert_int_equal(q.count, 0);
    assert_int_equal(moq_quic_sendq_inflight(&q), 0);
    moq_quic_sendq_clear(&q);
}

static void sendq_drop_unsent_keeps_inflight(void **state)
{
    (void)state;
    size_t live = moq_chunk_live_count();
    moq_quic_sendq q;
    moq_quic_sendq_init(&q);
    /* Many slices: the ring has to grow. */
    for (int i = 0; i < 40; i++) {
        moq_chunk *c = chunk_of(10, (uint8_t)i);
        moq_slice s = {c, 0, 10};
        assert_int_equal(moq_quic_sendq_push(&q, &s, 1), MOQ_OK);
        moq_chunk_unref(c);
    }
    moq_quic_sendq_advance(&q, 35); /* slices 0..2 sent, slice 3 half */
    moq_quic_sendq_drop_unsent(&q);
    assert_int_equal(moq_quic_sendq_unsent(&q), 0);
    assert_int_equal(moq_chunk_live_count(), live + 4);
    ngtcp2_vec vec[2];
    assert_int_equal(moq_quic_sendq_peek(&q, vec, 2), 0);
    moq_quic_sendq_ack(&q, 0, 35);
    assert_int_equal(moq_chunk_live_count(), live);
    /* clear() on a stream that died with bytes in flight releases everything. */
    moq_chunk *c = chunk_of(10, 1);
    moq_slice s = {c, 0, 10};
    moq_quic_sendq_push(&q, &s, 1);
    moq_chunk_unref(c);
    moq_quic_sendq_advance(&q, 4);
    moq_quic_sendq_clear(&q);
    assert_int_equal(moq_chunk_live_count(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(higher_priority_first),
        cmocka_unit_test(equal_priorities_round_robin),
        cmocka_unit_test(heap_stays_ordered_under_churn),
        cmocka_unit_test(sendq_hands_out_chunk_bytes_without_copying),
        cmocka_unit_test(sendq_drop_unsent_keeps_inflight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
