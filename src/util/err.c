#include "util/err.h"

const char *moq_strerror(int err)
{
    switch (err) {
    case MOQ_OK: return "success";
    case MOQ_ERR_NOMEM: return "out of memory";
    case MOQ_ERR_INVALID: return "invalid input";
    case MOQ_ERR_AGAIN: return "try again";
    case MOQ_ERR_PROTO: return "protocol violation";
    case MOQ_ERR_TOO_LARGE: return "too large";
    case MOQ_ERR_IO: return "I/O error";
    case MOQ_ERR_TLS: return "TLS error";
    case MOQ_ERR_CLOSED: return "closed";
    case MOQ_ERR_NOT_FOUND: return "not found";
    case MOQ_ERR_AUTH: return "not authorized";
    case MOQ_ERR_CONFIG: return "invalid configuration";
    case MOQ_ERR_UNSUPPORTED: return "not supported";
    case MOQ_ERR_EXISTS: return "already exists";
    case MOQ_ERR_LIMIT: return "limit reached";
    case MOQ_ERR_TIMEOUT: return "timed out";
    default: return "unknown error";
    }
}
