/*
 * log.h - operator logs on stderr, one line per event.
 *
 * Each line: "<UTC time> <LEVEL> <target>: <message>". Targets are short module names
 * ("relay", "quic", "h3", "http", "moq", "auth", "cluster", "tls", "config", "web", "qmux").
 * Levels can be set globally and per target with a RUST_LOG-style spec ("info",
 * "warn,quic=debug", "moq_relay=trace"); unknown targets in a spec are ignored.
 * The log state is process-wide and set once at startup.
 *
 * Repetitive lines (one per refused packet, connection or request, which a peer can cause at
 * will) go through a moq_log_repeat, one static per call site: in each interval the first
 * `burst` lines are written and the rest only counted; when the interval has passed, the next
 * line of that site or moq_log_repeat_flush() writes one summary with the count. Time comes
 * from the clock given to moq_log_set_clock (the system clock unless a test injects one).
 */
#ifndef MOQ_UTIL_LOG_H
#define MOQ_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/time.h"

enum moq_log_level {
    MOQ_LOG_OFF = 0,
    MOQ_LOG_ERROR = 1,
    MOQ_LOG_WARN = 2,
    MOQ_LOG_INFO = 3,
    MOQ_LOG_DEBUG = 4,
    MOQ_LOG_TRACE = 5,
};

/* Parse "error".."trace"/"off" (case-insensitive). Returns the level or -1. */
int moq_log_level_parse(const char *name);
const char *moq_log_level_name(enum moq_log_level level);

/* Set the default level for every target and clear per-target overrides. */
void moq_log_set_level(enum moq_log_level level);

/* Apply a RUST_LOG-style spec on top of the current levels. Returns 0, or
 * MOQ_ERR_INVALID when a level name is unknown (nothing is applied then). */
int moq_log_configure(const char *spec);

bool moq_log_enabled(enum moq_log_level level, const char *target);

/* Replace the value of every "jwt=" in text[0..len), and every bare JWT (a run of base64url
 * and dots starting with "eyJ", as any base64url JSON does), with "<redacted>" (in place, at
 * most cap bytes); returns the new length. Log lines get this automatically; every other
 * message for operators (config errors, the tools' errors) goes through it too. */
size_t moq_log_redact(char *text, size_t len, size_t cap);

void moq_log_write(enum moq_log_level level, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MOQ_LOG(level, target, ...)                                                                \
    do {                                                                                           \
        if (moq_log_enabled(level, target)) moq_log_write(level, target, __VA_ARGS__);             \
    } while (0)

/* One call site's repetition state. `what` names the lines in the summary ("refused QUIC
 * connections"); the other fields belong to log.c. */
typedef struct moq_log_repeat {
    const char *what;
    enum moq_log_level level;
    const char *target;
    uint64_t window_start_us;
    uint64_t written;
    uint64_t suppressed;
    bool registered;
    struct moq_log_repeat *next;
} moq_log_repeat;

#define MOQ_LOG_DEFAULT_REPEAT_INTERVAL_US (10 * MOQ_US_PER_S)
#define MOQ_LOG_DEFAULT_REPEAT_BURST       10

/* The clock repetition windows are measured on (NULL = the system clock; the pointer is
 * kept). */
void moq_log_set_clock(const moq_clock *clock);
/* Lines written per interval and call site before the rest are counted; interval 0 writes
 * every line. */
void moq_log_set_repeat(uint64_t interval_us, uint64_t burst);
/* Whether this line of r's call site is written (false: it was counted). Writes the summary
 * of r's previous interval first when that interval has passed. */
bool moq_log_repeat_admit(moq_log_repeat *r, enum moq_log_level level, const char *target);
/* Write the summary of every call site whose interval has passed with lines counted; the
 * event loop calls it about once a second so a flood that stopped is still reported. */
void moq_log_repeat_flush(void);

#define MOQ_LOG_LIMITED(rep, level, target, ...)                                                   \
    do {                                                                                           \
        if (moq_log_enabled(level, target) && moq_log_repeat_admit(rep, level, target))            \
            moq_log_write(level, target, __VA_ARGS__);                                             \
    } while (0)

/* A call site's repetitive INFO/DEBUG/WARN line, summarised under `what` when it floods. */
#define moq_info_repeat(what, target, ...)                                                         \
    do {                                                                                           \
        static moq_log_repeat rep_ = {what, MOQ_LOG_INFO, NULL, 0, 0, 0, false, NULL};             \
        MOQ_LOG_LIMITED(&rep_, MOQ_LOG_INFO, target, __VA_ARGS__);                                 \
    } while (0)
#define moq_warn_repeat(what, target, ...)                                                         \
    do {                                                                                           \
        static moq_log_repeat rep_ = {what, MOQ_LOG_WARN, NULL, 0, 0, 0, false, NULL};             \
        MOQ_LOG_LIMITED(&rep_, MOQ_LOG_WARN, target, __VA_ARGS__);                                 \
    } while (0)

#define moq_error(target, ...) MOQ_LOG(MOQ_LOG_ERROR, target, __VA_ARGS__)
#define moq_warn(target, ...)  MOQ_LOG(MOQ_LOG_WARN, target, __VA_ARGS__)
#define moq_info(target, ...)  MOQ_LOG(MOQ_LOG_INFO, target, __VA_ARGS__)
#define moq_debug(target, ...) MOQ_LOG(MOQ_LOG_DEBUG, target, __VA_ARGS__)
#define moq_trace(target, ...) MOQ_LOG(MOQ_LOG_TRACE, target, __VA_ARGS__)

#endif
