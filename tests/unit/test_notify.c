/* Unit tests for src/util/notify: datagrams to a path and to an abstract-namespace socket,
 * names that are refused, $NOTIFY_SOCKET unset, and the watchdog interval rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/notify.h"

/* A datagram socket bound to `name` ("/path" or "@abstract"). */
static int listen_at(const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    assert_true(len < sizeof(sa.sun_path));
    memcpy(sa.sun_path, name, len);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
        salen--;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, salen), 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void sends_to_a_path(void **state)
{
    char dir[] = "/tmp/moq-notify-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    int fd = listen_at(path);
    assert_int_equal(moq_notify_send(path, "READY=1\nSTATUS=up"), 0);
    expect_datagram(fd, "READY=1\nSTATUS=up");

    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(moq_notify("STOPPING=1"), 1);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
    unlink(path);
    rmdir(dir);
    /* nobody listens there any more */
    assert_int_equal(moq_notify("WATCHDOG=1"), MOQ_ERR_IO);
    unsetenv("NOTIFY_SOCKET");
}

static void sends_to_an_abstract_socket(void **state)
{
    char name[64];
    snprintf(name, sizeof(name), "@moq-notify-test-%ld", (long)getpid());
    int fd = listen_at(name);
    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(moq_notify("WATCHDOG=1"), 1);
    expect_datagram(fd, "WATCHDOG=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void no_manager_no_message(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(moq_notify("READY=1"), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(moq_notify("READY=1"), 0);
    unsetenv("NOTIFY_SOCKET");
}

static void refuses_names_that_are_no_socket(void **state)
{
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = '\0';
    const char *bad[] = {"relative/notify", "@", "/", "vsock:2:1234", longname};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(moq_notify_send(bad[i], "READY=1"), MOQ_ERR_INVALID);
}

static void watchdog_interval(void **state)
{
    assert_int_equal(moq_notify_watchdog_us("30000000", NULL, 42), 30000000);
    assert_int_equal(moq_notify_watchdog_us("200000", "", 42), 200000);
    assert_int_equal(moq_notify_watchdog_us("200000", "42", 42), 200000);
    assert_int_equal(moq_notify_watchdog_us("200000", "43", 42), 0); /* another process's */
    assert_int_equal(moq_notify_watchdog_us("200000", "x", 42), 0);
    assert_int_equal(moq_notify_watchdog_us(NULL, NULL, 42), 0);
    assert_int_equal(moq_notify_watchdog_us("0", NULL, 42), 0);
    assert_int_equal(moq_notify_watchdog_us("", NULL, 42), 0);
    assert_int_equal(moq_notify_watchdog_us("-5", NULL, 42), 0);
    assert_int_equal(moq_notify_watchdog_us("5s", NULL, 42), 0);
    assert_int_equal(moq_notify_watchdog_us("99999999999999999999999", NULL, 42), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sends_to_a_path),       cmocka_unit_test(sends_to_an_abstract_socket),
        cmocka_unit_test(no_manager_no_message), cmocka_unit_test(refuses_names_that_are_no_socket),
        cmocka_unit_test(watchdog_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
