#include "util/ev_deadline.h"

#include "util/time.h"

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    moq_ev_deadline *d = w->data;
    d->at = UINT64_MAX;
    d->fire(d->ctx, moq_now_us());
}

void moq_ev_deadline_init(moq_ev_deadline *d, struct ev_loop *loop,
                          void (*fire)(void *ctx, uint64_t now_us), void *ctx)
{
    d->loop = loop;
    d->at = UINT64_MAX;
    d->fire = fire;
    d->ctx = ctx;
    ev_timer_init(&d->w, deadline_cb, 0., 0.);
    d->w.data = d;
}

void moq_ev_deadline_set(moq_ev_deadline *d, uint64_t at_us)
{
    if (at_us == d->at) return;
    moq_ev_deadline_stop(d);
    if (at_us == UINT64_MAX) return;
    uint64_t now = moq_now_us();
    ev_timer_set(&d->w, at_us > now ? (double)(at_us - now) / 1e6 : 0., 0.);
    ev_timer_start(d->loop, &d->w);
    d->at = at_us;
}

void moq_ev_deadline_stop(moq_ev_deadline *d)
{
    ev_timer_stop(d->loop, &d->w);
    d->at = UINT64_MAX;
}
