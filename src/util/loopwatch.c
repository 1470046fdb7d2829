#include "util/loopwatch.h"

#include "util/log.h"
#include "util/time.h"

bool moq_loopwatch_iteration(moq_loopwatch *w, uint64_t woke_us, uint64_t now_us)
{
    uint64_t took = now_us > woke_us ? now_us - woke_us : 0;
    w->iterations++;
    if (took > w->longest_us) w->longest_us = took;
    if (!w->threshold_us || took < w->threshold_us) return false;
    w->slow++;
    return true;
}

static void on_woke(struct ev_loop *loop, ev_check *c, int revents)
{
    (void)loop;
    (void)revents;
    moq_loopwatch *w = c->data;
    w->woke_us = moq_now_us();
}

static void on_sleeps(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop;
    (void)revents;
    moq_loopwatch *w = p->data;
    if (!w->woke_us) return;
    uint64_t now = moq_now_us();
    if (moq_loopwatch_iteration(w, w->woke_us, now))
        moq_warn("relay", "%s: one event loop iteration took %llu ms (%llu such of %llu)", w->name,
                 (unsigned long long)((now - w->woke_us) / 1000), (unsigned long long)w->slow,
                 (unsigned long long)w->iterations);
    w->woke_us = 0;
}

void moq_loopwatch_start(moq_loopwatch *w, struct ev_loop *loop, const char *name,
                         uint64_t threshold_us)
{
    *w = (moq_loopwatch){.name = name, .threshold_us = threshold_us};
    ev_check_init(&w->woke, on_woke);
    ev_set_priority(&w->woke, EV_MAXPRI); /* first of the iteration's callbacks */
    ev_prepare_init(&w->sleeps, on_sleeps);
    ev_set_priority(&w->sleeps, EV_MINPRI); /* last before the loop waits */
    w->woke.data = w->sleeps.data = w;
    ev_check_start(loop, &w->woke);
    ev_prepare_start(loop, &w->sleeps);
    ev_unref(loop); /* watching keeps no loop running */
    ev_unref(loop);
}

void moq_loopwatch_stop(moq_loopwatch *w, struct ev_loop *loop)
{
    if (!ev_is_active(&w->woke)) return;
    ev_ref(loop);
    ev_ref(loop);
    ev_check_stop(loop, &w->woke);
    ev_prepare_stop(loop, &w->sleeps);
}
