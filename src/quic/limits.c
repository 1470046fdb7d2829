/* limits.c - admission budgets shared by the QUIC listeners of one port (quic/limits.h). */
#include "quic/limits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "quic/quic.h"
#include "util/map.h"

struct bucket {
    double rate, tokens;
    uint64_t at_us;
};

struct moq_quic_limits {
    size_t max_connections;
    size_t max_half_open;
    _Atomic size_t connections;
    pthread_mutex_t lock; /* the buckets and half_open */
    struct bucket handshakes, responses;
    moq_u64map half_open; /* address key -> handshakes in progress (as a pointer-sized int) */
};

static void bucket_init(struct bucket *b, double rate)
{
    b->rate = rate;
    b->tokens = rate;
    b->at_us = 0;
}

/* A token bucket refilled at `rate` per second up to one second's worth. */
static bool bucket_take(struct bucket *b, uint64_t now_us)
{
    if (now_us > b->at_us) {
        b->tokens += (double)(now_us - b->at_us) * b->rate / 1e6;
        if (b->tokens > b->rate) b->tokens = b->rate;
        b->at_us = now_us;
    }
    if (b->tokens < 1.0) return false;
    b->tokens -= 1.0;
    return true;
}

moq_quic_limits *moq_quic_limits_new(const struct moq_quic_limits_config *cfg)
{
    moq_quic_limits *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    l->max_connections =
        cfg->max_connections ? cfg->max_connections : MOQ_QUIC_DEFAULT_MAX_CONNECTIONS;
    l->max_half_open =
        cfg->max_half_open ? cfg->max_half_open : MOQ_QUIC_DEFAULT_HALF_OPEN_PER_ADDR;
    atomic_init(&l->connections, 0);
    pthread_mutex_init(&l->lock, NULL);
    bucket_init(&l->handshakes, cfg->handshake_rate);
    bucket_init(&l->responses,
                cfg->response_rate > 0 ? cfg->response_rate : MOQ_QUIC_DEFAULT_RESPONSE_RATE);
    moq_u64map_init(&l->half_open);
    return l;
}

void moq_quic_limits_free(moq_quic_limits *l)
{
    if (!l) return;
    moq_u64map_free(&l->half_open);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

size_t moq_quic_limits_max_connections(const moq_quic_limits *l)
{
    return l->max_connections;
}

size_t moq_quic_limits_max_half_open(const moq_quic_limits *l)
{
    return l->max_half_open;
}

bool moq_quic_limits_connection_take(moq_quic_limits *l)
{
    size_t n = atomic_load(&l->connections);
    do {
        if (n >= l->max_connections) return false;
    } while (!atomic_compare_exchange_weak(&l->connections, &n, n + 1));
    return true;
}

void moq_quic_limits_connection_give(moq_quic_limits *l)
{
    atomic_fetch_sub(&l->connections, 1);
}

size_t moq_quic_limits_connections(const moq_quic_limits *l)
{
    return atomic_load(&((moq_quic_limits *)l)->connections);
}

bool moq_quic_limits_handshake_token(moq_quic_limits *l, uint64_t now_us)
{
    if (l->handshakes.rate <= 0) return true;
    pthread_mutex_lock(&l->lock);
    bool ok = bucket_take(&l->handshakes, now_us);
    pthread_mutex_unlock(&l->lock);
    return ok;
}

bool moq_quic_limits_response_token(moq_quic_limits *l, uint64_t now_us)
{
    pthread_mutex_lock(&l->lock);
    bool ok = bucket_take(&l->responses, now_us);
    pthread_mutex_unlock(&l->lock);
    return ok;
}

static size_t half_open_locked(moq_quic_limits *l, uint64_t key)
{
    return (size_t)(uintptr_t)moq_u64map_get(&l->half_open, key);
}

bool moq_quic_limits_half_open_take(moq_quic_limits *l, uint64_t key)
{
    pthread_mutex_lock(&l->lock);
    size_t n = half_open_locked(l, key);
    bool ok =
        n < l->max_half_open && moq_u64map_put(&l->half_open, key, (void *)(uintptr_t)(n + 1)) >= 0;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void moq_quic_limits_half_open_done(moq_quic_limits *l, uint64_t key)
{
    pthread_mutex_lock(&l->lock);
    size_t n = half_open_locked(l, key);
    if (n <= 1)
        moq_u64map_del(&l->half_open, key);
    else
        moq_u64map_put(&l->half_open, key, (void *)(uintptr_t)(n - 1));
    pthread_mutex_unlock(&l->lock);
}

size_t moq_quic_limits_half_open(moq_quic_limits *l, uint64_t key)
{
    pthread_mutex_lock(&l->lock);
    size_t n = half_open_locked(l, key);
    pthread_mutex_unlock(&l->lock);
    return n;
}
