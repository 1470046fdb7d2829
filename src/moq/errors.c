#include "moq/errors.h"
#include "util/err.h"

const char *moq_code_name(uint64_t code)
{
    switch (code) {
    case MOQ_CODE_CANCEL:
        return "Cancel";
    case MOQ_CODE_REQUIRED_EXTENSION:
        return "RequiredExtension";
    case MOQ_CODE_OLD:
        return "Old";
    case MOQ_CODE_TIMEOUT:
        return "Timeout";
    case MOQ_CODE_TRANSPORT:
        return "Transport";
    case MOQ_CODE_DECODE:
        return "Decode";
    case MOQ_CODE_UNAUTHORIZED:
        return "Unauthorized";
    case MOQ_CODE_VERSION:
        return "Version";
    case MOQ_CODE_UNEXPECTED_STREAM:
        return "UnexpectedStream";
    case MOQ_CODE_BOUNDS_EXCEEDED:
        return "BoundsExceeded";
    case MOQ_CODE_DUPLICATE:
        return "Duplicate";
    case MOQ_CODE_NOT_FOUND:
        return "NotFound";
    case MOQ_CODE_WRONG_SIZE:
        return "WrongSize";
    case MOQ_CODE_PROTOCOL_VIOLATION:
        return "ProtocolViolation";
    case MOQ_CODE_UNEXPECTED_MESSAGE:
        return "UnexpectedMessage";
    case MOQ_CODE_UNSUPPORTED:
        return "Unsupported";
    case MOQ_CODE_ENCODE:
        return "Encode";
    case MOQ_CODE_TOO_MANY_PARAMETERS:
        return "TooManyParameters";
    case MOQ_CODE_INVALID_ROLE:
        return "InvalidRole";
    case MOQ_CODE_UNKNOWN_ALPN:
        return "UnknownAlpn";
    case MOQ_CODE_DROPPED:
        return "Dropped";
    case MOQ_CODE_CLOSED:
        return "Closed";
    case MOQ_CODE_LAGGED:
        return "Lagged";
    case MOQ_CODE_FRAME_TOO_LARGE:
        return "FrameTooLarge";
    case MOQ_CODE_TIMESTAMP_MISMATCH:
        return "TimestampMismatch";
    case MOQ_CODE_UNROUTABLE:
        return "Unroutable";
    case MOQ_CODE_EVICTED:
        return "Evicted";
    default:
        return code >= MOQ_CODE_APP_BASE ? "App" : "Unknown";
    }
}

bool moq_code_is_app(uint64_t code, uint16_t *n)
{
    if (code < MOQ_CODE_APP_BASE || code - MOQ_CODE_APP_BASE > UINT16_MAX) return false;
    if (n) *n = (uint16_t)(code - MOQ_CODE_APP_BASE);
    return true;
}

uint64_t moq_code_from_err(int err)
{
    switch (err) {
    case MOQ_OK:
        return MOQ_CODE_CANCEL;
    case MOQ_ERR_PROTO:
    case MOQ_ERR_INVALID:
    case MOQ_ERR_AGAIN:
    case MOQ_ERR_TOO_LARGE:
    case MOQ_ERR_UNSUPPORTED:
        return MOQ_CODE_DECODE;
    case MOQ_ERR_NOT_FOUND:
        return MOQ_CODE_NOT_FOUND;
    case MOQ_ERR_AUTH:
        return MOQ_CODE_UNAUTHORIZED;
    case MOQ_ERR_EXISTS:
        return MOQ_CODE_DUPLICATE;
    case MOQ_ERR_LIMIT:
        return MOQ_CODE_BOUNDS_EXCEEDED;
    case MOQ_ERR_TIMEOUT:
        return MOQ_CODE_TIMEOUT;
    case MOQ_ERR_CLOSED:
        return MOQ_CODE_CLOSED;
    default:
        return MOQ_CODE_TRANSPORT; /* IO, TLS, NOMEM, CONFIG: our side failed */
    }
}

uint64_t moq_code_to_h3(uint32_t code)
{
    return MOQ_H3_CODE_FIRST + code + code / 0x1e;
}

int moq_code_from_h3(uint64_t h3, uint32_t *code)
{
    if (h3 < MOQ_H3_CODE_FIRST || h3 > MOQ_H3_CODE_LAST) return MOQ_ERR_INVALID;
    uint64_t c = h3 - MOQ_H3_CODE_FIRST;
    *code = (uint32_t)(c - c / 0x1f);
    return 0;
}
