/* Fuzz target: the TOML parser and the relay schema on top of it. Any input must either parse
 * into a tree whose every node can be walked, or fail with a positioned error; the schema
 * loader must accept or reject it with a message. Everything is freed (LeakSanitizer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/toml.h"

static size_t walk(const struct moq_toml_value *v, int depth)
{
    if (depth > MOQ_TOML_MAX_DEPTH + 1 || v->line == 0 || v->col == 0) abort();
    size_t n = 1;
    switch (v->type) {
    case MOQ_TOML_STRING:
        if (v->u.str.ptr[v->u.str.len] != '\0') abort();
        break;
    case MOQ_TOML_ARRAY:
        for (size_t i = 0; i < moq_toml_array_len(v); i++)
            n += walk(moq_toml_array_at(v, i), depth + 1);
        break;
    case MOQ_TOML_TABLE:
        for (size_t i = 0; i < moq_toml_table_len(v); i++) {
            const struct moq_toml_kv *kv = moq_toml_table_at(v, i);
            if (kv->key[kv->key_len] != '\0' || kv->line == 0) abort();
            /* every key must be found again by lookup (when it has no NUL inside) */
            if (strlen(kv->key) == kv->key_len && moq_toml_get(v, kv->key) != kv->value) abort();
            n += walk(kv->value, depth + 1);
        }
        break;
    default:
        break;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct moq_toml_value *root = NULL;
    struct moq_toml_error err;
    int rc = moq_toml_parse((const char *)data, size, &root, &err);
    if (rc == 0) {
        if (!root || root->type != MOQ_TOML_TABLE) abort();
        walk(root, 0);
        moq_toml_free(root);
    } else if (root || err.msg[0] == '\0' || (rc != -1 && (err.line == 0 || err.col == 0))) {
        abort();
    }

    struct moq_config cfg;
    char msg[512];
    moq_config_init(&cfg);
    if (moq_config_load_string(&cfg, "fuzz.toml", (const char *)data, size, msg, sizeof(msg)) ==
        0) {
        moq_config_validate(&cfg, msg, sizeof(msg));
    } else if (strncmp(msg, "fuzz.toml", 9) != 0) {
        abort();
    }
    moq_config_free(&cfg);
    return 0;
}
