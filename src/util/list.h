/*
 * list.h - intrusive circular doubly-linked lists. The list never owns its entries.
 */
#ifndef MOQ_UTIL_LIST_H
#define MOQ_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct moq_list {
    struct moq_list *prev, *next;
} moq_list;

#define moq_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void moq_list_init(moq_list *l)
{
    l->prev = l->next = l;
}

static inline bool moq_list_empty(const moq_list *l)
{
    return l->next == l;
}

/* True when the node is linked into some list (nodes must be moq_list_init'ed). */
static inline bool moq_list_linked(const moq_list *n)
{
    return n->next != n;
}

static inline void moq_list_insert_after(moq_list *pos, moq_list *n)
{
    n->prev = pos;
    n->next = pos->next;
    pos->next->prev = n;
    pos->next = n;
}

static inline void moq_list_push_back(moq_list *l, moq_list *n)
{
    moq_list_insert_after(l->prev, n);
}

static inline void moq_list_push_front(moq_list *l, moq_list *n)
{
    moq_list_insert_after(l, n);
}

/* Unlink n and leave it self-linked (so moq_list_linked() is false afterwards). */
static inline void moq_list_remove(moq_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define moq_list_first(l, type, member) moq_container_of((l)->next, type, member)
#define moq_list_last(l, type, member) moq_container_of((l)->prev, type, member)

/* Iterate safely against removal of the current entry. */
#define moq_list_each(pos, tmp, head)                                                          \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
