/*
 * impair.h - the parts of the impairment proxy (tests/tools/impair.c) that decide, without
 * any I/O: its options, a seeded random source, and the fate of each packet or chunk (lost,
 * duplicated, when it leaves). Everything is plain data the caller owns; nothing allocates.
 */
#ifndef MOQ_TESTS_IMPAIR_H
#define MOQ_TESTS_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum impair_mode { IMPAIR_UDP, IMPAIR_TCP };

enum impair_dir { IMPAIR_UP = 0, IMPAIR_DOWN = 1 }; /* up: client to server */

struct impair_opts {
    enum impair_mode mode;
    const char *listen, *to; /* loopback host:port each */
    double loss;             /* probability a loss event starts (0..1) */
    unsigned burst;          /* packets each loss event drops (>= 1) */
    double duplicate;        /* probability a packet is sent twice */
    double reorder;          /* probability a packet is held back by reorder_gap */
    uint64_t delay_us;       /* one-way delay */
    uint64_t jitter_us;      /* +- uniformly around the delay */
    uint64_t reorder_gap_us; /* extra hold of a reordered packet */
    uint64_t rate_bps;       /* bandwidth cap in bits/s per direction; 0 = none */
    uint64_t queue_bytes;    /* backlog behind the cap before tail drop */
    uint64_t blackout_us;    /* how long SIGUSR1 (or --blackout-at) blacks out; 0 = until SIGUSR2 */
    uint64_t blackout_at_us; /* start a blackout this long after start; 0 = only on SIGUSR1 */
    uint64_t lifetime_us;    /* exit after this long, whatever happens */
    bool dir_on[2];          /* which directions the impairments apply to */
    uint64_t seed;
    const char *port_file; /* write the bound port here once listening */
};

/* Parse argv (after the program name). Returns 0, or -1 with a message in err. */
int impair_parse(struct impair_opts *o, int argc, char **argv, char *err, size_t errlen);

/* splitmix64: the same seed gives the same decisions. */
typedef struct impair_rng {
    uint64_t s;
} impair_rng;
uint64_t impair_rng_next(impair_rng *r);
double impair_rng_unit(impair_rng *r); /* [0, 1) */

/* One direction's shaping state: loss bursts and the bandwidth cap's queue. */
struct impair_link {
    unsigned burst_left;  /* packets still to drop in the current loss event */
    uint64_t free_at_us;  /* when the capped link has sent everything queued so far */
    uint64_t last_due_us; /* TCP: chunks never overtake each other */
};

struct impair_fate {
    bool drop;          /* lost (or tail-dropped behind the cap) */
    bool tail_drop;     /* ... because the cap's queue was full */
    unsigned copies;    /* 1, or 2 when duplicated */
    uint64_t due_us[2]; /* when each copy leaves */
    bool reordered;
};

/* The fate of a packet (UDP) or chunk (TCP: never lost, duplicated or reordered) of len bytes
 * arriving at now_us in direction d. */
struct impair_fate impair_decide(const struct impair_opts *o, impair_rng *rng,
                                 struct impair_link *link, enum impair_dir d, size_t len,
                                 uint64_t now_us);

/* Is host:port a loopback address? Fills the sockaddr (IPv4 or IPv6) when it is. */
struct sockaddr_storage;
bool impair_loopback_addr(const char *hostport, struct sockaddr_storage *ss, unsigned *sslen);

#endif
