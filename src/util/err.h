/*
 * err.h - the one error convention of the project.
 *
 * Functions return 0 (or a positive count) on success and a negative MOQ_ERR_* code on
 * failure. Wire error codes of each protocol are mapped elsewhere (src/moq/errors.h),
 * never mixed with these.
 */
#ifndef MOQ_UTIL_ERR_H
#define MOQ_UTIL_ERR_H

enum moq_err {
    MOQ_OK = 0,
    MOQ_ERR_NOMEM = -1,        /* allocation failed */
    MOQ_ERR_INVALID = -2,      /* bad argument or malformed input */
    MOQ_ERR_AGAIN = -3,        /* need more input, or the output is full: retry later */
    MOQ_ERR_PROTO = -4,        /* peer violated a protocol */
    MOQ_ERR_TOO_LARGE = -5,    /* a size limit was exceeded */
    MOQ_ERR_IO = -6,           /* system call failed (see errno) */
    MOQ_ERR_TLS = -7,          /* TLS / crypto failure */
    MOQ_ERR_CLOSED = -8,       /* the object is closed or finished */
    MOQ_ERR_NOT_FOUND = -9,    /* no such entry */
    MOQ_ERR_AUTH = -10,        /* authentication / authorization refused */
    MOQ_ERR_CONFIG = -11,      /* invalid configuration */
    MOQ_ERR_UNSUPPORTED = -12, /* valid but not implemented by this build */
    MOQ_ERR_EXISTS = -13,      /* duplicate entry */
    MOQ_ERR_LIMIT = -14,       /* a resource limit (streams, entries) was reached */
    MOQ_ERR_TIMEOUT = -15,     /* deadline passed */
};

/* Static, human-readable description of an error code. Never NULL. */
const char *moq_strerror(int err);

#endif
