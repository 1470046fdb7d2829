/* Fuzz target: JWT parsing and verification against a fixed key set, plus the claims
 * parser and path scoping. Inputs starting with '{' are claims JSON; anything else is a
 * token (also split on '?' to exercise query parsing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "util/err.h"

#define NOW 1700000000

static const char hs_key[] = "{\"alg\":\"HS256\",\"kty\":\"oct\",\"kid\":\"fuzz-hs\","
                             "\"k\":\"ZnV6ei1zZWNyZXQtZnV6ei1zZWNyZXQtZnV6ei1zZWNyZXQtMDEyMw\"}";
static const char ed_key[] =
    "{\"alg\":\"EdDSA\",\"key_ops\":[\"verify\"],\"kty\":\"OKP\","
    "\"crv\":\"Ed25519\",\"x\":\"76ohKLLWCNYAeqy8uW1gAVM5wjlxU4kExCaOVxJ84Co\","
    "\"kid\":\"fuzz-ed\"}";

/* Parsed once; reachable for the life of the process. */
static moq_jwk *keys[2];

static void load_keys(void)
{
    if (keys[0]) return;
    if (moq_jwk_parse(hs_key, sizeof(hs_key) - 1, &keys[0], NULL) != 0 ||
        moq_jwk_parse(ed_key, sizeof(ed_key) - 1, &keys[1], NULL) != 0)
        abort();
}

static void scope_claims(const moq_claims *c)
{
    static const char *const paths[] = {"", "/", "demo", "room/123", "room/123/alice"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        moq_perms p;
        if (moq_claims_authorize(c, paths[i], &p, NULL) == 0) {
            for (size_t j = 0; j < p.publish.len; j++)
                if (!moq_perms_can_publish(&p, p.publish.v[j], strlen(p.publish.v[j]))) abort();
            for (size_t j = 0; j < p.subscribe.len; j++)
                if (!moq_perms_subscribe_overlaps(&p, p.subscribe.v[j], strlen(p.subscribe.v[j])))
                    abort();
            moq_perms_free(&p);
        }
    }
    char *json = moq_claims_to_json(c, false);
    if (json) {
        /* What we write we must read back identically. */
        moq_claims back;
        if (moq_claims_from_json(json, strlen(json), &back, NULL) != 0) abort();
        char *again = moq_claims_to_json(&back, false);
        if (!again || strcmp(json, again) != 0) abort();
        free(again);
        moq_claims_free(&back);
    }
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_keys();
    const char *text = (const char *)data;
    if (size && text[0] == '{') {
        moq_claims c;
        if (moq_claims_from_json(text, size, &c, NULL) == 0) {
            scope_claims(&c);
            moq_claims_free(&c);
        }
        return 0;
    }
    char *token = malloc(size + 1);
    if (!token) return 0;
    memcpy(token, data, size);
    token[size] = '\0';

    moq_jwt_header h;
    if (moq_jwt_header_parse(token, size, &h, NULL) == 0) moq_jwt_header_free(&h);
    for (size_t i = 0; i < 2; i++) {
        moq_claims c;
        moq_auth_error err;
        err.msg[0] = '\0';
        if (moq_jwt_verify(keys[i], token, size, NOW, &c, &err) == 0) {
            scope_claims(&c);
            moq_claims_free(&c);
        } else if (err.msg[0] == '\0') {
            abort(); /* every refusal explains itself */
        }
    }
    char *jwt = NULL;
    int rc = moq_auth_query_jwt(token, size, &jwt);
    if (rc != 0 && rc != MOQ_ERR_INVALID && rc != MOQ_ERR_NOMEM) abort();
    if (jwt && (rc != 0 || !jwt[0])) abort(); /* a token only on success, never empty */
    free(jwt);
    free(token);
    return 0;
}
