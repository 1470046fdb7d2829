/* Unit tests for src/quic/mem.c: the allocator given to ngtcp2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "quic/mem.h"

static size_t resident_pages(const void *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
    size_t n = ((uintptr_t)p + len - start + page - 1) / page;
    unsigned char v[64];
    assert_true(n <= sizeof(v));
    assert_int_equal(mincore((void *)start, n * page, v), 0);
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        r += v[i] & 1;
    return r;
}

/* A block ngtcp2 only begins to use costs the pages it wrote, not its size. */
static void large_blocks_are_resident_only_where_written(void **state)
{
    (void)state;
    if (!MOQ_QUIC_MEM_PAGED) skip(); /* sanitizer build: blocks come from malloc */
    size_t len = 12 * 4096;
    uint8_t *p = moq_quic_mem_calloc(1, len);
    assert_non_null(p);
    assert_true(moq_quic_mem_is_paged(p));
    memset(p, 0xab, 100);
    assert_true(resident_pages(p, len) <= 1);
    assert_int_equal(p[99], 0xab);
    for (size_t i = 100; i < len; i += 512)
        assert_int_equal(p[i], 0);
    moq_quic_mem_free(p);
}

static void small_blocks_come_from_the_heap(void **state)
{
    (void)state;
    uint8_t *p = moq_quic_mem_malloc(100);
    assert_non_null(p);
    assert_false(moq_quic_mem_is_paged(p));
    assert_int_equal((uintptr_t)p % 16, 0);
    uint8_t *z = moq_quic_mem_calloc(10, 10);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    moq_quic_mem_free(p);
    moq_quic_mem_free(z);
    moq_quic_mem_free(NULL);
}

static void realloc_keeps_content_across_kinds(void **state)
{
    (void)state;
    uint8_t *p = moq_quic_mem_malloc(64);
    for (int i = 0; i < 64; i++)
        p[i] = (uint8_t)i;
    p = moq_quic_mem_realloc(p, 3 * MOQ_QUIC_MEM_PAGED_MIN);
    assert_non_null(p);
    assert_int_equal(moq_quic_mem_is_paged(p), MOQ_QUIC_MEM_PAGED);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], i);
    p[10000] = 7;
    p = moq_quic_mem_realloc(p, 32);
    assert_non_null(p);
    assert_false(moq_quic_mem_is_paged(p));
    for (int i = 0; i < 32; i++)
        assert_int_equal(p[i], i);
    p = moq_quic_mem_realloc(p, 200);
    assert_int_equal(p[31], 31);
    moq_quic_mem_free(p);
    assert_null(moq_quic_mem_calloc(SIZE_MAX / 2, 4));
}

static void ngtcp2_gets_the_same_functions(void **state)
{
    (void)state;
    const ngtcp2_mem *m = moq_quic_mem();
    void *p = m->calloc(1, 2 * MOQ_QUIC_MEM_PAGED_MIN, m->user_data);
    assert_int_equal(moq_quic_mem_is_paged(p), MOQ_QUIC_MEM_PAGED);
    p = m->realloc(p, 16, m->user_data);
    assert_false(moq_quic_mem_is_paged(p));
    m->free(p, m->user_data);
    p = m->malloc(MOQ_QUIC_MEM_PAGED_MIN, m->user_data);
    assert_int_equal(moq_quic_mem_is_paged(p), MOQ_QUIC_MEM_PAGED);
    m->free(p, m->user_data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(large_blocks_are_resident_only_where_written),
        cmocka_unit_test(small_blocks_come_from_the_heap),
        cmocka_unit_test(realloc_keeps_content_across_kinds),
        cmocka_unit_test(ngtcp2_gets_the_same_functions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
