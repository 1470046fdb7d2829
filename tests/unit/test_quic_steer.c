/* Unit tests for src/quic/steer: connection IDs name their worker, and the kernel's
 * reuseport group delivers each datagram to the socket its destination CID names. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "quic/steer.h"
#include "quic/udp.h"

static void marked_ids_name_their_worker(void **state)
{
    (void)state;
    for (unsigned workers = 1; workers <= 256; workers++) {
        for (unsigned w = 0; w < workers; w++) {
            for (unsigned b = 0; b < 256; b += 7) {
                uint8_t cid[16] = {(uint8_t)b, 1, 2, 3};
                moq_quic_steer_mark(cid, w, workers);
                assert_int_equal(cid[0] % workers, w);
                assert_int_equal(cid[1], 1);
            }
        }
    }
}

static void marked_ids_stay_spread(void **state)
{
    (void)state;
    /* With 3 workers, worker 1's first bytes still take many values (not one fixed byte). */
    uint8_t seen[256] = {0};
    size_t distinct = 0;
    for (unsigned b = 0; b < 256; b++) {
        uint8_t cid[1] = {(uint8_t)b};
        moq_quic_steer_mark(cid, 1, 3);
        if (!seen[cid[0]]++) distinct++;
    }
    assert_true(distinct >= 80);
}

static void worker_of_packets(void **state)
{
    (void)state;
    /* Short header: DCID at offset 1. */
    uint8_t shrt[20] = {0x40, 7};
    assert_int_equal(moq_quic_steer_worker(shrt, sizeof(shrt), 4), 3);
    assert_int_equal(moq_quic_steer_worker(shrt, sizeof(shrt), 1), 0);
    /* Long header: flags, version (4), DCID length, DCID. */
    uint8_t lng[20] = {0xc0, 0, 0, 0, 1, 8, 10};
    assert_int_equal(moq_quic_steer_worker(lng, sizeof(lng), 4), 2);
    /* Too short to read: worker 0. */
    assert_int_equal(moq_quic_steer_worker(lng, 6, 4), 0);
}

#define GROUP 3

static int recv_on(const int *fds, int n)
{
    struct pollfd p[GROUP];
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    if (poll(p, (nfds_t)n, 5000) <= 0) return -1;
    for (int i = 0; i < n; i++) {
        if (!(p[i].revents & POLLIN)) continue;
        uint8_t buf[64];
        while (recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT) > 0) {
        }
        return i;
    }
    return -1;
}

static void kernel_steers_by_cid(void **state)
{
    (void)state;
    moq_quic_addr addr, bound;
    assert_int_equal(moq_quic_udp_parse_listen("127.0.0.1:0", &addr), 0);
    int fds[GROUP];
    assert_int_equal(moq_quic_udp_listen_shared(&addr, true, &fds[0], &bound), 0);
    assert_int_equal(moq_quic_steer_attach(fds[0], GROUP), 0);
    moq_quic_addr_set_port(&addr, ntohs(((struct sockaddr_in *)&bound.ss)->sin_port));
    for (int i = 1; i < GROUP; i++) {
        moq_quic_addr b;
        assert_int_equal(moq_quic_udp_listen_shared(&addr, true, &fds[i], &b), 0);
    }
    int client = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(client >= 0);
    assert_int_equal(connect(client, (struct sockaddr *)&bound.ss, bound.len), 0);
    for (unsigned w = 0; w < GROUP; w++) {
        for (unsigned round = 0; round < 4; round++) {
            uint8_t pkt[32];
            memset(pkt, 0x5a, sizeof(pkt));
            pkt[0] = 0x41; /* short header */
            pkt[1] = (uint8_t)(round * 17);
            moq_quic_steer_mark(pkt + 1, w, GROUP);
            assert_int_equal(send(client, pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
            assert_int_equal(recv_on(fds, GROUP), (int)w);
            /* The same worker for a Handshake packet carrying the ID in its long header. */
            uint8_t lng[32] = {0xe0, 0, 0, 0, 1, 16};
            lng[6] = pkt[1];
            assert_int_equal(send(client, lng, sizeof(lng), 0), (ssize_t)sizeof(lng));
            assert_int_equal(recv_on(fds, GROUP), (int)w);
        }
    }
    close(client);
    for (int i = 0; i < GROUP; i++)
        close(fds[i]);
}

static void port_in_use_without_reuseport(void **state)
{
    (void)state;
    moq_quic_addr addr, bound, b2;
    assert_int_equal(moq_quic_udp_parse_listen("127.0.0.1:0", &addr), 0);
    int fd, fd2;
    assert_int_equal(moq_quic_udp_listen(&addr, &fd, &bound), 0);
    moq_quic_addr_set_port(&addr, ntohs(((struct sockaddr_in *)&bound.ss)->sin_port));
    /* A relay already on the port keeps it: a worker group cannot join a plain socket. */
    assert_int_not_equal(moq_quic_udp_listen_shared(&addr, true, &fd2, &b2), 0);
    assert_int_equal(errno, EADDRINUSE);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(marked_ids_name_their_worker),
        cmocka_unit_test(marked_ids_stay_spread),
        cmocka_unit_test(worker_of_packets),
        cmocka_unit_test(kernel_steers_by_cid),
        cmocka_unit_test(port_in_use_without_reuseport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
