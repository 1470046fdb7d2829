/* An HTTP/3 connection's timer on a libev loop (see moq_h3_loop_driver in client.h). */
#include <stdlib.h>

#include "client/client.h"
#include "util/err.h"
#include "util/ev_deadline.h"

struct h3_timer {
    moq_ev_deadline deadline;
    moq_h3_conn *conn;
};

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
    moq_ev_deadline_stop(&ht->deadline);
    free(ht);
}

int moq_h3_loop_driver(struct ev_loop *loop, struct moq_h3_driver *drv)
{
    struct h3_timer *ht = calloc(1, sizeof(*ht));
    if (!ht) return MOQ_ERR_NOMEM;
    moq_ev_deadline_init(&ht->deadline, loop, h3_timer_fired, ht);
    *drv = (struct moq_h3_driver){&moq_system_clock, h3_timer_set, h3_timer_freed, ht};
    return 0;
}
