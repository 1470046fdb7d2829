/* Fuzz target: path normalisation and the prefix / suffix / join rules.
 *
 * Byte 0 splits the rest into two raw paths a and b. Checks: normalising gives a normal path
 * with the same segment count, normalising again changes nothing, the copying and in-place
 * forms agree, and join(a, b) lies under a with suffix b. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moq/path.h"
#include "util/err.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

/* Normalise raw into a fresh allocation; returns NULL (and *len 0) when over the limit. */
static char *normalized(const uint8_t *raw, size_t n, size_t *len)
{
    char *p = malloc(n ? n : 1);
    CHECK(p);
    if (n) memcpy(p, raw, n);
    moq_str in = moq_str_make(raw, n);
    size_t parts = moq_path_count_parts(in);
    int rv = moq_path_normalize(p, n, len);
    if (parts > MOQ_PATH_MAX_PARTS) {
        CHECK(rv == MOQ_ERR_TOO_LARGE);
        free(p);
        *len = 0;
        return NULL;
    }
    CHECK(rv == 0 && *len <= n);
    moq_str out = moq_str_make(p, *len);
    CHECK(moq_path_is_normalized(out));
    CHECK(moq_path_count_parts(out) == parts);
    size_t again;
    CHECK(moq_path_normalize(p, *len, &again) == 0 && again == *len);

    moq_buf b;
    moq_buf_init(&b);
    CHECK(moq_path_normalize_append(&b, in) == 0);
    CHECK(b.len == *len && (b.len == 0 || memcmp(b.data, p, b.len) == 0));
    moq_buf_free(&b);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cut = size > 1 ? data[0] % size : 0;
    const uint8_t *rest = data + 1;
    size_t rest_len = size - 1;
    if (cut > rest_len) cut = rest_len;
    size_t alen, blen;
    char *a = normalized(rest, cut, &alen);
    char *b = normalized(rest + cut, rest_len - cut, &blen);
    if (a && b) {
        moq_str sa = moq_str_make(a, alen), sb = moq_str_make(b, blen);
        moq_buf j;
        moq_buf_init(&j);
        int rv = moq_path_join(&j, sa, sb);
        if (moq_path_count_parts(sa) + moq_path_count_parts(sb) > MOQ_PATH_MAX_PARTS) {
            CHECK(rv == MOQ_ERR_TOO_LARGE && j.len == 0);
        } else {
            CHECK(rv == 0);
            moq_str sj = moq_str_make(j.data, j.len);
            CHECK(moq_path_is_normalized(sj));
            CHECK(moq_path_has_prefix(sj, sa));
            moq_str suffix;
            CHECK(moq_path_strip_prefix(sj, sa, &suffix) == 0 && moq_str_eq(suffix, sb));
            /* b is under the join only if it is the join itself */
            if (moq_path_has_prefix(sb, sj)) CHECK(moq_str_eq(sb, sj) || sa.len == 0);
        }
        /* the prefix test agrees with strip_prefix either way round */
        moq_str s;
        CHECK(moq_path_has_prefix(sa, sb) == (moq_path_strip_prefix(sa, sb, &s) == 0));
        moq_buf_free(&j);
    }
    free(a);
    free(b);
    return 0;
}
