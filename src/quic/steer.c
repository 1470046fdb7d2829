/* steer.c - connection-ID steering of datagrams across SO_REUSEPORT worker sockets. */
#include "quic/steer.h"

#include <linux/filter.h>
#include <sys/socket.h>

#include "util/err.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

unsigned moq_quic_steer_worker(const uint8_t *pkt, size_t len, unsigned workers)
{
    if (workers <= 1 || len < 1) return 0;
    size_t off = (pkt[0] & 0x80) ? MOQ_QUIC_STEER_LONG_OFF : MOQ_QUIC_STEER_SHORT_OFF;
    if (len <= off) return 0;
    return pkt[off] % workers;
}

void moq_quic_steer_mark(uint8_t *cid, unsigned worker, unsigned workers)
{
    if (workers <= 1) return;
    /* The largest multiple of `workers` that still leaves room for the index below 256. */
    unsigned slots = (256 - worker + workers - 1) / workers;
    cid[0] = (uint8_t)((cid[0] % slots) * workers + worker);
}

int moq_quic_steer_attach(int fd, unsigned workers)
{
    struct sock_filter code[] = {
        /* A = first byte; long header (0x80) jumps to its DCID offset */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 2, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, MOQ_QUIC_STEER_SHORT_OFF),
        BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, MOQ_QUIC_STEER_LONG_OFF),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, workers),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog = {sizeof(code) / sizeof(code[0]), code};
    if (workers <= 1) return MOQ_OK;
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
        return MOQ_ERR_IO;
    return MOQ_OK;
}
