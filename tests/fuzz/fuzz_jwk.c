/* Fuzz target: JWK parsing (JSON and base64url forms). A key that parses must serialise,
 * re-parse to the same JSON, and (if asymmetric) yield a public half that parses too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

static void round_trip(const moq_jwk *key)
{
    char *json = moq_jwk_to_json(key, false);
    char *b64 = moq_jwk_to_base64(key);
    if (!json || !b64) abort();
    moq_jwk *back;
    if (moq_jwk_parse(b64, strlen(b64), &back, NULL) != 0) abort();
    char *again = moq_jwk_to_json(back, false);
    if (!again || strcmp(json, again) != 0) abort();
    free(again);
    moq_jwk_unref(back);
    free(json);
    free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    moq_jwk *key;
    moq_auth_error err;
    err.msg[0] = '\0';
    int rc = moq_jwk_parse((const char *)data, size, &key, &err);
    if (rc != 0) {
        if (rc != -1 /* MOQ_ERR_NOMEM */ && err.msg[0] == '\0') abort();
        return 0;
    }
    round_trip(key);
    moq_jwk *pub;
    if (moq_jwk_public(key, &pub, NULL) == 0) {
        if (moq_jwk_is_private(pub)) abort();
        round_trip(pub);
        moq_jwk_unref(pub);
    }
    moq_jwk_unref(key);
    return 0;
}
