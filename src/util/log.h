/*
 * log.h - operator logs on stderr, one line per event.
 *
 * Each line: "<UTC time> <LEVEL> <target>: <message>". Targets are short module names
 * ("relay", "quic", "h3", "http", "moq", "auth", "cluster", "tls", "config", "web", "qmux").
 * Levels can be set globally and per target with a RUST_LOG-style spec ("info",
 * "warn,quic=debug", "moq_relay=trace"); unknown targets in a spec are ignored.
 * The log state is process-wide and set once at startup.
 */
#ifndef MOQ_UTIL_LOG_H
#define MOQ_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

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

#define moq_error(target, ...) MOQ_LOG(MOQ_LOG_ERROR, target, __VA_ARGS__)
#define moq_warn(target, ...)  MOQ_LOG(MOQ_LOG_WARN, target, __VA_ARGS__)
#define moq_info(target, ...)  MOQ_LOG(MOQ_LOG_INFO, target, __VA_ARGS__)
#define moq_debug(target, ...) MOQ_LOG(MOQ_LOG_DEBUG, target, __VA_ARGS__)
#define moq_trace(target, ...) MOQ_LOG(MOQ_LOG_TRACE, target, __VA_ARGS__)

#endif
