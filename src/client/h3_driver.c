/* An HTTP/3 connection's timer on a libev loop (see moq_h3_loop_driver in client.h). */
#include <pthread.h>
#include <stdlib.h>

#include "client/client.h"
#include "util/err.h"
#include "util/ev_deadline.h"
#include "util/list.h"

struct h3_timer {
    moq_ev_deadline deadline;
    moq_h3_conn *conn; /* NULL until the connection introduced itself */
    moq_list link;     /* in `drivers` */
};

/* Every driver of every loop, for moq_h3_loop_shutdown. Worker threads run loops of their
 * own, and a worker's loop is shut down from the main thread once the worker has stopped:
 * one list under a lock, not one per thread. */
static pthread_mutex_t drivers_lock = PTHREAD_MUTEX_INITIALIZER;
static moq_list drivers = {&drivers, &drivers};

static void h3_timer_fired(void *ctx, uint64_t now)
{
    struct h3_timer *ht = ctx;
    moq_h3_on_timer(ht->conn, now);
}

static void h3_timer_set(void *ctx, moq_h3_conn *c, uint64_t at)
{
    struct h3_timer *ht = ctx;
    ht->conn = c;
    moq_ev_deadline_set(&ht->deadline, at);
}

static void h3_timer_freed(void *ctx, moq_h3_conn *c)
{
    struct h3_timer *ht = ctx;
    pthread_mutex_lock(&drivers_lock);
    moq_list_remove(&ht->link);
    pthread_mutex_unlock(&drivers_lock);
    moq_ev_deadline_stop(&ht->deadline);
    free(ht);
}

int moq_h3_loop_driver(struct ev_loop *loop, struct moq_h3_driver *drv)
{
    struct h3_timer *ht = calloc(1, sizeof(*ht));
    if (!ht) return MOQ_ERR_NOMEM;
    moq_ev_deadline_init(&ht->deadline, loop, h3_timer_fired, ht);
    pthread_mutex_lock(&drivers_lock);
    moq_list_push_back(&drivers, &ht->link);
    pthread_mutex_unlock(&drivers_lock);
    *drv = (struct moq_h3_driver){&moq_system_clock, h3_timer_set, h3_timer_freed, ht};
    return 0;
}

void moq_h3_loop_shutdown(struct ev_loop *loop)
{
    pthread_mutex_lock(&drivers_lock);
    for (moq_list *pos = drivers.next; pos != &drivers; pos = pos->next) {
        struct h3_timer *ht = moq_container_of(pos, struct h3_timer, link);
        /* Never frees the connection (nor its driver) from inside the call. */
        if (ht->deadline.loop == loop && ht->conn) moq_h3_shutdown(ht->conn);
    }
    pthread_mutex_unlock(&drivers_lock);
}
