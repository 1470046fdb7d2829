/*
 * strlist.h - a growable list of owned NUL-terminated strings. The list owns every string
 * and the array; moq_strlist_free releases both and leaves an empty list. A non-empty
 * list's array is NULL-terminated (v[len] == NULL).
 */
#ifndef MOQ_UTIL_STRLIST_H
#define MOQ_UTIL_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct moq_strlist {
    char **v;
    size_t len;
} moq_strlist;

/* Append a copy of s. */
int moq_strlist_push(moq_strlist *l, const char *s);
void moq_strlist_free(moq_strlist *l);
bool moq_strlist_contains(const moq_strlist *l, const char *s);
/* Replace dst with a deep copy of src. */
int moq_strlist_copy(moq_strlist *dst, const moq_strlist *src);

#endif
