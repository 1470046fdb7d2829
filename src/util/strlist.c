#include "util/strlist.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

int moq_strlist_push(moq_strlist *l, const char *s)
{
    char *copy = strdup(s);
    if (!copy) return MOQ_ERR_NOMEM;
    char **v = realloc(l->v, (l->len + 2) * sizeof(char *));
    if (!v) {
        free(copy);
        return MOQ_ERR_NOMEM;
    }
    v[l->len++] = copy;
    v[l->len] = NULL;
    l->v = v;
    return 0;
}

void moq_strlist_free(moq_strlist *l)
{
    for (size_t i = 0; i < l->len; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->len = 0;
}

bool moq_strlist_contains(const moq_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->v[i], s) == 0) return true;
    return false;
}

int moq_strlist_copy(moq_strlist *dst, const moq_strlist *src)
{
    moq_strlist out = {0};
    for (size_t i = 0; i < src->len; i++) {
        if (moq_strlist_push(&out, src->v[i]) < 0) {
            moq_strlist_free(&out);
            return MOQ_ERR_NOMEM;
        }
    }
    moq_strlist_free(dst);
    *dst = out;
    return 0;
}
