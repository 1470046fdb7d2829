#include "util/liveness.h"

void moq_liveness_init(moq_liveness *l)
{
    l->waiting_since = MOQ_LIVENESS_NONE;
}

void moq_liveness_sent(moq_liveness *l, uint64_t now, bool owed)
{
    if (owed && l->waiting_since == MOQ_LIVENESS_NONE) l->waiting_since = now;
}

void moq_liveness_heard(moq_liveness *l, uint64_t now, bool owed)
{
    l->waiting_since = owed ? now : MOQ_LIVENESS_NONE;
}

uint64_t moq_liveness_deadline(const moq_liveness *l, uint64_t timeout)
{
    if (!timeout || l->waiting_since == MOQ_LIVENESS_NONE) return MOQ_LIVENESS_NONE;
    if (l->waiting_since > MOQ_LIVENESS_NONE - timeout) return MOQ_LIVENESS_NONE - 1;
    return l->waiting_since + timeout;
}

bool moq_liveness_expired(const moq_liveness *l, uint64_t now, uint64_t timeout)
{
    uint64_t d = moq_liveness_deadline(l, timeout);
    return d != MOQ_LIVENESS_NONE && now >= d;
}
