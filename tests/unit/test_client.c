/* Unit tests for src/client: the HTTP GET used to fetch a relay's certificate fingerprint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <ev.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"

struct cancel_race {
    moq_http_get *get;
    int answers;
};

static void got_answer(void *ctx, int err, int status, const uint8_t *body, size_t len,
                       const char *reason)
{
    ((struct cancel_race *)ctx)->answers++;
}

static void cancel_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct cancel_race *r = w->data;
    if (r->answers == 0) moq_http_get_cancel(r->get);
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* A caller whose own deadline falls on the request's (the dial's connect timeout) cancels
 * the request in the same loop iteration in which the request's timer has expired: the
 * request is gone and never calls back (it used to run its expired timer on freed memory). */
static void cancel_when_the_timeout_is_due(void **state)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(listener >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(listener, 4), 0); /* accepts nothing, answers nothing */
    socklen_t alen = sizeof(addr);
    assert_int_equal(getsockname(listener, (struct sockaddr *)&addr, &alen), 0);
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)ntohs(addr.sin_port));

    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    for (int round = 0; round < 5; round++) {
        struct cancel_race r = {0};
        struct moq_http_get_config cfg = {"127.0.0.1", port, "/certificate.sha256", 30, 0};
        assert_int_equal(moq_http_get_start(loop, &cfg, got_answer, &r, &r.get), 0);
        ev_timer cancel, stop;
        ev_timer_init(&cancel, cancel_cb, 0.030, 0.);
        ev_set_priority(&cancel, EV_MAXPRI); /* runs before the request's own timer */
        cancel.data = &r;
        ev_timer_start(loop, &cancel);
        ev_timer_init(&stop, stop_cb, 0.2, 0.);
        ev_timer_start(loop, &stop);
        ev_run(loop, 0);
        ev_timer_stop(loop, &cancel);
        ev_timer_stop(loop, &stop);
        assert_int_equal(r.answers, 0);
    }
    ev_loop_destroy(loop);
    close(listener);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cancel_when_the_timeout_is_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
