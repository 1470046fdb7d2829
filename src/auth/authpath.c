/*
 * Broadcast path helpers for authorization. Paths are '/'-separated segments; slashes at
 * the ends and doubled slashes carry no meaning, and prefixes match whole segments only.
 * Kept local to src/auth on purpose (the wire layer has its own path type).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"

char *moq_authpath_normalize(const char *path, size_t len)
{
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && path[i] == '/')
            i++;
        if (i == len) break;
        if (n) out[n++] = '/';
        while (i < len && path[i] != '/')
            out[n++] = path[i++];
    }
    out[n] = '\0';
    return out;
}

const char *moq_authpath_strip_prefix(const char *path, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (plen == 0) return path;
    if (strncmp(path, prefix, plen) != 0) return NULL;
    if (path[plen] == '\0') return path + plen;
    if (path[plen] == '/') return path + plen + 1;
    return NULL;
}

bool moq_authpath_has_prefix(const char *path, const char *prefix)
{
    return moq_authpath_strip_prefix(path, prefix) != NULL;
}

char *moq_authpath_join(const char *base, const char *other)
{
    size_t bl = strlen(base), ol = strlen(other);
    char *out = malloc(bl + ol + 2);
    if (!out) return NULL;
    memcpy(out, base, bl);
    size_t n = bl;
    if (bl && ol) out[n++] = '/';
    memcpy(out + n, other, ol);
    out[n + ol] = '\0';
    return out;
}

/* Next non-empty segment between *p and end (sets seg and seg_len); false at the end. */
static bool next_segment(const char **p, const char *end, const char **seg, size_t *seg_len)
{
    const char *s = *p;
    while (s < end && *s == '/')
        s++;
    if (s == end) {
        *p = s;
        return false;
    }
    const char *e = s;
    while (e < end && *e != '/')
        e++;
    *seg = s;
    *seg_len = (size_t)(e - s);
    *p = e;
    return true;
}

bool moq_authpath_raw_has_prefix(const char *path, size_t path_len, const char *prefix,
                                 size_t prefix_len)
{
    const char *p = path, *pe = path + path_len;
    const char *q = prefix, *qe = prefix + prefix_len;
    const char *ps, *qs;
    size_t pn, qn;
    while (next_segment(&q, qe, &qs, &qn)) {
        if (!next_segment(&p, pe, &ps, &pn)) return false;
        if (pn != qn || memcmp(ps, qs, pn) != 0) return false;
    }
    return true;
}

static int cmp_len_then_bytes(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t xl = strlen(x), yl = strlen(y);
    if (xl != yl) return xl < yl ? -1 : 1;
    return strcmp(x, y);
}

void moq_authpath_canonicalize(moq_strlist *l)
{
    if (l->len <= 1) return;
    qsort(l->v, l->len, sizeof(char *), cmp_len_then_bytes);
    size_t kept = 0;
    for (size_t i = 0; i < l->len; i++) {
        bool covered = false;
        for (size_t j = 0; j < kept && !covered; j++)
            covered = moq_authpath_has_prefix(l->v[i], l->v[j]);
        if (covered) {
            free(l->v[i]);
            continue;
        }
        l->v[kept++] = l->v[i];
    }
    l->len = kept;
}

char *moq_authpath_remove_dots(const char *path, size_t len)
{
    /* Output never grows; each kept segment is copied with its leading '/'. */
    char *out = malloc(len + 2);
    if (!out) return NULL;
    size_t n = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        if (path[i] == '/') i++;
        size_t seg = i;
        while (i < len && path[i] != '/')
            i++;
        size_t seg_len = i - seg;
        bool slash = seg > start;
        bool last = i == len;
        if (seg_len == 1 && path[seg] == '.') {
            /* "/." keeps a trailing slash when it ends the path. */
            if (last && slash) out[n++] = '/';
            continue;
        }
        if (seg_len == 2 && path[seg] == '.' && path[seg + 1] == '.') {
            /* Drop the last output segment and the '/' before it. */
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0) n--;
            if (last && slash) out[n++] = '/';
            continue;
        }
        if (slash) out[n++] = '/';
        memcpy(out + n, path + seg, seg_len);
        n += seg_len;
    }
    out[n] = '\0';
    return out;
}
