/*
 * errors.h - the moq application error codes carried on the wire (RESET_STREAM,
 * STOP_SENDING, session close) and their mappings.
 *
 * - moq_code: the code table shared with upstream (Rust moq-net Error::to_code); 64+n is an
 *   application code App(n).
 * - moq_code_from_err(): which wire code to send for an internal MOQ_ERR_* failure.
 * - moq_code_to_h3() / moq_code_from_h3(): WebTransport carries these codes inside the
 *   HTTP/3 application error space; raw QUIC and qmux carry them verbatim.
 * Pure functions over static tables; nothing to free.
 */
#ifndef MOQ_MOQ_ERRORS_H
#define MOQ_MOQ_ERRORS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum moq_code {
    MOQ_CODE_CANCEL = 0, /* not an error: unsubscribe, drop, clean close */
    MOQ_CODE_REQUIRED_EXTENSION = 1,
    MOQ_CODE_OLD = 2, /* group expired */
    MOQ_CODE_TIMEOUT = 3,
    MOQ_CODE_TRANSPORT = 4,
    MOQ_CODE_DECODE = 5,
    MOQ_CODE_UNAUTHORIZED = 6,
    MOQ_CODE_VERSION = 9,
    MOQ_CODE_UNEXPECTED_STREAM = 10,
    MOQ_CODE_BOUNDS_EXCEEDED = 11,
    MOQ_CODE_DUPLICATE = 12,
    MOQ_CODE_NOT_FOUND = 13,
    MOQ_CODE_WRONG_SIZE = 14,
    MOQ_CODE_PROTOCOL_VIOLATION = 15,
    MOQ_CODE_UNEXPECTED_MESSAGE = 16,
    MOQ_CODE_UNSUPPORTED = 17,
    MOQ_CODE_ENCODE = 18,
    MOQ_CODE_TOO_MANY_PARAMETERS = 19,
    MOQ_CODE_INVALID_ROLE = 20,
    MOQ_CODE_UNKNOWN_ALPN = 21,
    MOQ_CODE_DROPPED = 24,
    MOQ_CODE_CLOSED = 25,
    MOQ_CODE_LAGGED = 26,
    MOQ_CODE_FRAME_TOO_LARGE = 27,
    /* 28 is reserved */
    MOQ_CODE_TIMESTAMP_MISMATCH = 29,
    MOQ_CODE_UNROUTABLE = 30,
    MOQ_CODE_EVICTED = 31,
    MOQ_CODE_APP_BASE = 64, /* App(n) = 64 + n, n < 65536 */
} moq_code;

/* "Cancel", "Decode", ..., "App" for codes >= 64, "Unknown" for unassigned codes. */
const char *moq_code_name(uint64_t code);

/* App(n) on the wire (64 + n). */
static inline uint64_t moq_code_app(uint16_t n)
{
    return (uint64_t)MOQ_CODE_APP_BASE + n;
}

/* If code is App(n) with n < 65536, store n and return true. */
bool moq_code_is_app(uint64_t code, uint16_t *n);

/* The wire code for an internal failure. Every malformed-input failure of the codec
 * (MOQ_ERR_PROTO, _INVALID, _AGAIN at FIN, _TOO_LARGE, _UNSUPPORTED) is Decode (5), as
 * upstream reports every decode error; parsers that know better (the group parser's
 * WrongSize / FrameTooLarge) say so themselves. Others: NOT_FOUND 13, AUTH 6, EXISTS 12,
 * LIMIT 11, TIMEOUT 3, CLOSED 25, IO/TLS/NOMEM/CONFIG 4, MOQ_OK 0. */
uint64_t moq_code_from_err(int err);

/* WebTransport over HTTP/3: first and last application error codes of the moq range. */
#define MOQ_H3_CODE_FIRST 0x52e4a40fa8dbull
#define MOQ_H3_CODE_LAST  0x52e5ac983162ull

/* moq code -> HTTP/3 code (first + code + code/0x1e). WebTransport codes are 32-bit. */
uint64_t moq_code_to_h3(uint32_t code);

/* HTTP/3 code -> moq code. Returns 0 and stores the code when h3 lies in the WebTransport
 * range, MOQ_ERR_INVALID otherwise. Like upstream, reserved (GREASE) points in the range
 * are not rejected; they fold onto the neighbouring code. */
int moq_code_from_h3(uint64_t h3, uint32_t *code);

#endif
