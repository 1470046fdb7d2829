/*
 * tool.h - internals of the `moq` command: parsed options, the shared runtime (event loop,
 * local model origin, the dial to the relay, orderly shutdown) and the entry points of the
 * commands. Each command keeps its own state in tool.app and releases every model handle
 * it holds in its stop hook, which runs once when the connection is over.
 */
#ifndef MOQ_TOOL_TOOL_H
#define MOQ_TOOL_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "client/client.h"
#include "model/model.h"

#define TOOL_MAX_LIST 16
#define EXIT_RUNTIME  1
#define EXIT_USAGE    2

enum framing {
    FRAMING_LINE = 0,   /* one frame per line, without the newline */
    FRAMING_LENGTH = 1, /* 4-byte big-endian payload length, then the payload */
};

enum command {
    CMD_PUBLISH,
    CMD_SUBSCRIBE,
    CMD_FETCH,
    CMD_ANNOUNCED,
    CMD_CLOCK_PUBLISH,
    CMD_CLOCK_SUBSCRIBE,
};

struct tool_opts {
    enum command cmd;
    const char *name; /* "publish", "clock subscribe", ... for messages */
    const char *url;
    const char *broadcast;
    const char *tracks[TOOL_MAX_LIST]; /* publish: NAME or NAME=FILE */
    size_t n_tracks;
    const char *prefix;
    enum framing framing;
    uint64_t group_frames;
    bool has_count;
    uint64_t count;
    bool has_group;
    uint64_t group;
    uint64_t max_latency_ms;
    const char *fingerprints[TOOL_MAX_LIST];
    size_t n_fingerprints;
    const char *roots[TOOL_MAX_LIST];
    size_t n_roots;
    bool disable_verify;
    const char *version; /* "moq-lite-05" or NULL for all */
    bool raw_quic;
    uint64_t timeout_ms;
    const char *ready_file; /* --ready-file: one line per milestone (docs/client.md) */
    bool has_group_start;
    uint64_t group_start; /* --group-start N: sequence of the first group */
    bool group_start_now; /* --group-start now: the wall clock in milliseconds */
    uint64_t origin_id;   /* --origin: this publisher's identity (0 = random per run) */
    bool reconnect;       /* --reconnect: redial and announce again after a lost session */
    bool has_reconnect_timeout;
    uint64_t reconnect_timeout_ms; /* give up after this long without a session (0 = never) */
};

struct tool {
    const struct tool_opts *o;
    struct ev_loop *loop;
    moq_origin *origin;
    moq_dial *dial;
    moq_session *session; /* while connected */
    int exit_code;
    bool exit_set;
    bool stopping; /* tool_finish ran: the connection is being closed */
    bool over;     /* the dial reported its end */
    ev_timer tick;
    ev_timer drain;
    ev_timer settle;
    ev_timer guard;
    ev_signal sigint, sigterm;
    double drain_started;

    /* --reconnect: the dial is started again after a lost session */
    const struct moq_dial_config *dial_cfg;
    ev_timer redial;
    double backoff_s;    /* the next wait before a redial (before jitter) */
    double give_up_at;   /* ev_now() after which a failed attempt ends the run (-1: never) */
    double connected_at; /* when the current session came up */
    bool redialing;      /* between a lost session and the next attempt: no dial */
    bool gave_up;        /* the attempts used up --reconnect-timeout */

    /* the command's state and hooks */
    void *app;
    void (*app_connected)(struct tool *t);
    void (*app_interrupted)(struct tool *t);  /* SIGINT/SIGTERM; default: tool_finish(0) */
    void (*app_disconnected)(struct tool *t); /* the session was lost; a redial follows */
    void (*app_stop)(struct tool *t);         /* release model handles; no more callbacks */
};

/* End the run with `code` (the first code set wins). With drain, data already written is
 * delivered before the session closes; otherwise the session closes at once. */
void tool_finish(struct tool *t, int code, bool drain);
/* Print "moq <command>: <message>" on stderr and finish with EXIT_RUNTIME. */
void tool_fail(struct tool *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a message on stderr (no exit). */
void tool_note(struct tool *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write all of buf to stdout (blocking). Returns false when stdout is closed. */
bool tool_write_stdout(const void *buf, size_t len);
/* Write one frame to stdout in the given framing. */
bool tool_write_frame(enum framing framing, const uint8_t *payload, size_t len);

/* The commands: set up t->app and hooks before the dial starts. Return 0 or a negative
 * error after printing why. */
int publish_init(struct tool *t);
int clock_publish_init(struct tool *t);
int subscribe_init(struct tool *t);
int fetch_init(struct tool *t);
int announced_init(struct tool *t);

/* What the relay may do with our origin: publish commands let it read, consuming commands
 * let it announce into it under this prefix. */
const char *tool_consume_prefix(const struct tool_opts *o);

#endif
