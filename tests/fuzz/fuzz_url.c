/* Fuzz target: the relay's one percent-decoder, request-target splitting and query
 * parameters (src/util/url), and the authorizer's token reader built on them.
 *
 * Checks: the decoder accepts exactly what a reference rule accepts (every '%' followed by
 * two hex digits, no NUL), never grows its input and round-trips through
 * re-encoding; a target that splits has a query every parameter of which decodes; a query
 * lookup fails for a bad escape exactly when the query does not validate; and the token the
 * authorizer reads is the `jwt` parameter the web endpoints would read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "util/err.h"
#include "util/url.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) abort();                                                                         \
    } while (0)

static int is_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The rule, written out independently of the decoder. */
static int reference_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0') return 0;
        if (s[i] != '%') continue;
        if (n - i < 3 || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return 0;
        if (s[i + 1] == '0' && s[i + 2] == '0') return 0;
        i += 2;
    }
    return 1;
}

static void decoder(const uint8_t *data, size_t size, int plus)
{
    char *out = malloc(size + 1);
    CHECK(out);
    int n = moq_percent_decode((const char *)data, size, out, size + 1, plus);
    CHECK((n >= 0) == reference_valid(data, size));
    if (n >= 0) {
        CHECK((size_t)n <= size && out[n] == '\0' && strlen(out) == (size_t)n);
        if (plus) CHECK(!memchr(out, '+', (size_t)n) || memchr(data, '%', size));
        /* Encode every byte and decode again: the same bytes come back. */
        char *enc = malloc((size_t)n * 3 + 1);
        char *back = malloc((size_t)n + 1);
        CHECK(enc && back);
        for (int i = 0; i < n; i++)
            snprintf(enc + i * 3, 4, "%%%02X", (unsigned char)out[i]);
        CHECK(moq_percent_decode(enc, (size_t)n * 3, back, (size_t)n + 1, plus) == n);
        CHECK(memcmp(back, out, (size_t)n) == 0);
        free(enc);
        free(back);
    }
    free(out);
}

static void query(const char *q, size_t len)
{
    int valid = moq_query_validate(q, len) == 0;
    char *value = malloc(len + 1);
    CHECK(value);
    int n = moq_query_param(q, len, "jwt", value, len + 1);
    CHECK((n == MOQ_ERR_INVALID) == !valid);
    CHECK(n >= 0 || n == MOQ_ERR_NOT_FOUND || n == MOQ_ERR_INVALID);
    char *jwt = NULL;
    int rc = moq_auth_query_jwt(q, len, &jwt);
    if (rc == MOQ_ERR_NOMEM) {
        free(value);
        return;
    }
    CHECK((rc == MOQ_ERR_INVALID) == !valid);
    if (n > 0)
        CHECK(jwt && strcmp(jwt, value) == 0);
    else
        CHECK(!jwt);
    free(jwt);
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decoder(data, size, 0);
    decoder(data, size, 1);
    query((const char *)data, size);

    moq_target t;
    if (moq_target_split((const char *)data, size, &t) == 0) {
        const char *end = (const char *)data + size;
        CHECK(t.path_len == 0 || (t.path >= (const char *)data && t.path + t.path_len <= end));
        CHECK(!t.has_query || (t.query >= (const char *)data && t.query + t.query_len <= end));
        CHECK(moq_query_validate(t.query, t.query_len) == 0);
        CHECK(reference_valid((const uint8_t *)t.path, t.path_len));
    }

    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    moq_url u;
    if (moq_url_parse(text, &u) == 0) moq_url_free(&u);
    free(text);
    return 0;
}
