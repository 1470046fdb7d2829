#include "defer.h"

#include <stdlib.h>

#include "err.h"

struct moq_defer_queue {
    struct ev_loop *loop;
    ev_prepare drain; /* runs the tasks before every poll */
    ev_idle awake;    /* active while tasks wait: the next poll does not block */
    moq_list tasks;
    unsigned refs; /* tasks tied to the queue, plus one while draining */
    struct moq_defer_queue *next;
};

/* A loop runs on one thread: each thread finds its loops' queues without a lock. */
static _Thread_local struct moq_defer_queue *queues;

static void queue_unref(struct moq_defer_queue *q)
{
    if (--q->refs) return;
    ev_ref(q->loop); /* undo queue_of's ev_unref before the watcher stops */
    ev_prepare_stop(q->loop, &q->drain);
    ev_idle_stop(q->loop, &q->awake);
    for (struct moq_defer_queue **p = &queues; *p; p = &(*p)->next) {
        if (*p == q) {
            *p = q->next;
            break;
        }
    }
    free(q);
}

static void drain_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct moq_defer_queue *q = w->data;
    (void)revents;
    if (!moq_list_empty(&q->tasks)) {
        q->refs++;
        /* Take what is queued now: tasks queued while these run wait for the next round. */
        moq_list batch;
        moq_list_init(&batch);
        moq_list_insert_after(&q->tasks, &batch);
        moq_list_remove(&q->tasks);
        while (!moq_list_empty(&batch)) {
            moq_defer *d = moq_list_first(&batch, moq_defer, link);
            moq_list_remove(&d->link);
            d->run(d);
        }
        moq_list_remove(&batch);
        if (q->refs == 1) {
            queue_unref(q);
            return;
        }
        q->refs--;
    }
    if (moq_list_empty(&q->tasks))
        ev_idle_stop(loop, &q->awake);
    else if (!ev_is_active(&q->awake))
        ev_idle_start(loop, &q->awake);
}

static void awake_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static struct moq_defer_queue *queue_of(struct ev_loop *loop)
{
    for (struct moq_defer_queue *q = queues; q; q = q->next)
        if (q->loop == loop) return q;
    struct moq_defer_queue *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->loop = loop;
    moq_list_init(&q->tasks);
    ev_prepare_init(&q->drain, drain_cb);
    ev_idle_init(&q->awake, awake_cb);
    q->drain.data = q->awake.data = q;
    ev_prepare_start(loop, &q->drain);
    /* The queue alone must not keep ev_run from returning once everything else stopped. */
    ev_unref(loop);
    q->next = queues;
    queues = q;
    return q;
}

int moq_defer_init(moq_defer *d, struct ev_loop *loop, void (*run)(moq_defer *d), void *data)
{
    moq_list_init(&d->link);
    d->run = run;
    d->data = data;
    d->q = queue_of(loop);
    if (!d->q) return MOQ_ERR_NOMEM;
    d->q->refs++;
    return MOQ_OK;
}

void moq_defer_schedule(moq_defer *d)
{
    struct moq_defer_queue *q = d->q;
    if (!q || moq_list_linked(&d->link)) return; /* no queue: init failed */
    moq_list_push_back(&q->tasks, &d->link);
    if (!ev_is_active(&q->awake)) ev_idle_start(q->loop, &q->awake);
}

void moq_defer_cancel(moq_defer *d)
{
    if (d->q) moq_list_remove(&d->link);
}

bool moq_defer_scheduled(const moq_defer *d)
{
    return d->q && moq_list_linked(&d->link);
}

void moq_defer_fini(moq_defer *d)
{
    if (!d->q) return;
    moq_list_remove(&d->link);
    queue_unref(d->q);
    d->q = NULL;
}
