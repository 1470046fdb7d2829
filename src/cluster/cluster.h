/*
 * cluster.h - joining relays into one network.
 *
 * A relay dials the peers it is configured with (`[cluster] connect`, and the legacy
 * `root`) as an ordinary moq-lite client, redialing forever with exponential backoff and
 * jitter. Every session is bidirectional: each side announces what it has and pulls what
 * its subscribers want; hop chains (model routes) stop loops and pick the shortest path.
 *
 * When `node` is set, the relay advertises itself by announcing the broadcast
 * `.internal/origins/<node>` (as upstream moq-relay does). Other relays learn from that
 * announcement's hop chain which origin id belongs to which URL. When a local subscriber
 * pulls a broadcast through a peer (e.g. the root) and the relay the broadcast comes from is
 * known but not directly connected, the cluster dials it on demand; its shorter route then
 * carries the content (publisher's relay -> subscriber's relay) and the longer one is
 * released. On-demand links close once nothing has used them for a while.
 *
 * Ownership: moq_cluster_new copies the configuration strings. moq_cluster_free closes every
 * session it dialed and withdraws the node advertisement; sessions finish closing from the
 * event loop afterwards (run it briefly before destroying the loop). The origin and loop
 * must outlive those sessions. Single-threaded.
 */
#ifndef MOQ_CLUSTER_CLUSTER_H
#define MOQ_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "moq/session.h"

struct ev_loop;
typedef struct moq_cluster moq_cluster;

/* Prefix under which relays advertise their node URL. */
#define MOQ_CLUSTER_NODES_PREFIX ".internal/origins"

/* How the cluster dials a URL: connect, and run a moq session on `origin` in which the peer
 * may publish and read everything. Events, all from the event loop: `connected` once the
 * session runs; `upstream` as the origin pulls tracks through it (see
 * moq_session_config.upstream); `closed` exactly once - the attempt failed (err < 0), was
 * cancelled, or the session ended (err 0, with its close code). The handle stays valid until
 * `closed` has returned; `close` cancels the attempt or closes the session. */
struct moq_cluster_dial_events {
    void (*connected)(void *arg, moq_session *s);
    void (*upstream)(void *arg, moq_session *s, const uint8_t *path, size_t len,
                     const uint64_t *hops, size_t nhops, bool active);
    void (*closed)(void *arg, int err, uint64_t code, const char *reason);
};

struct moq_cluster_dialer {
    int (*dial)(void *ctx, const char *url, moq_origin *origin,
                const struct moq_cluster_dial_events *ev, void *arg, void **handle);
    void (*close)(void *ctx, void *handle);
    void *ctx;
};

struct moq_cluster_config {
    struct ev_loop *loop;
    moq_origin *origin;
    const char *node;         /* this relay's own URL, or NULL (no advertisement) */
    const char *const *peers; /* URLs to keep connected (https://, moql://) */
    size_t n_peers;
    const char *token; /* JWT added as ?jwt= to dials whose URL carries none; NULL */
    struct moq_cluster_dialer dialer;
    /* Backoff between dial attempts: starts at backoff_initial_ms, doubles, capped at
     * backoff_max_ms, with +-20 % jitter. 0 = 500 ms / 10 s. */
    uint64_t backoff_initial_ms;
    uint64_t backoff_max_ms;
    /* An on-demand link nothing pulls from is closed after this long (0 = 10 s). */
    uint64_t idle_close_ms;
};

int moq_cluster_new(const struct moq_cluster_config *cfg, moq_cluster **out);
void moq_cluster_free(moq_cluster *c);

/* The relay's session hook: an inbound session's `upstream` events go here too, so a relay
 * learns about pulls through peers that dialed it. */
void moq_cluster_upstream(moq_cluster *c, moq_session *s, const uint8_t *path, size_t len,
                          const uint64_t *hops, size_t nhops, bool active);
/* The part of an active upstream event that needs no session: a track began to be pulled
 * through the peer with origin id peer_id (0: unknown) along hops; dial the relay closest
 * to the source when it is known and not linked. (Another worker's sessions report here.) */
void moq_cluster_pulled(moq_cluster *c, uint64_t peer_id, const uint8_t *path, size_t len,
                        const uint64_t *hops, size_t nhops);

/* The cluster token from `[cluster] token` (--cluster-token): the value itself when it is a
 * JWT (as the setup guide writes it), otherwise the name of a file holding one (whitespace
 * around the token is ignored). Returns 0 with a malloc'd copy in *out, or MOQ_ERR_CONFIG
 * with a message in err (never the token, nor a value that may be one) / MOQ_ERR_NOMEM. */
int moq_cluster_token_load(const char *value, char **out, char *err, size_t errlen);

/* One relay of the cluster as this relay sees it (the /nodes endpoint). Pointers are valid
 * during the callback only. */
struct moq_cluster_node {
    const char *url; /* as advertised or configured: may carry a ?jwt= (redact it) */
    bool self;       /* this relay's own advertisement */
    bool has_origin; /* origin_id is known (from its advertisement) */
    uint64_t origin_id;
    bool advertised;      /* its advertisement is visible in the origin */
    const uint64_t *hops; /* the advertisement's route, oldest first */
    size_t nhops;
    bool dialed; /* a peer this relay dials (configured, or on demand) */
    bool on_demand;
    const char *state;          /* dialed: "connected", "dialing" or "waiting" (to redial) */
    uint64_t connected_ms;      /* connected: for how long */
    const moq_session *session; /* connected: the session this relay dialed */
};

/* Every node known through advertisements or dials: this relay first (when `node` is set),
 * then the advertised ones (each merged with its dial), then the peers dialed that advertise
 * nothing. Returns the number visited. */
size_t moq_cluster_each_node(const moq_cluster *c,
                             void (*fn)(void *ctx, const struct moq_cluster_node *n), void *ctx);

/* Number of sessions the cluster dialed that are up now (static and on-demand). */
size_t moq_cluster_connected(const moq_cluster *c);

#endif
