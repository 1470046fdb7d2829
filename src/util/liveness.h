/*
 * liveness.h - is the peer still there? The time since which we have been owed an answer
 * (an acknowledgement, a ping response) that has not come, on any clock the caller passes.
 *
 * The rule shared by raw QUIC, WebTransport and qmux: once we send something the peer must
 * answer, we wait; anything heard from the peer ends the wait (or restarts it, when answers
 * are still owed after what we heard). A peer that owes us an answer and has said nothing for
 * the timeout is gone. Sending more while we wait does not restart the wait: a vanished peer
 * whose connection we keep writing to (keep-alives, retransmissions, new data) is noticed all
 * the same. A peer that owes nothing is never timed out here (that is the idle timeout's job).
 *
 * Plain data, no allocation: embed it. Sans-I/O: every call takes `now`.
 */
#ifndef MOQ_UTIL_LIVENESS_H
#define MOQ_UTIL_LIVENESS_H

#include <stdbool.h>
#include <stdint.h>

#define MOQ_LIVENESS_NONE UINT64_MAX

typedef struct moq_liveness {
    uint64_t waiting_since; /* MOQ_LIVENESS_NONE while the peer owes us nothing */
} moq_liveness;

void moq_liveness_init(moq_liveness *l);
/* We sent at `now`; `owed`: the peer now owes us an answer (something is unacknowledged). */
void moq_liveness_sent(moq_liveness *l, uint64_t now, bool owed);
/* We heard from the peer at `now`; `owed`: answers are still outstanding after that. */
void moq_liveness_heard(moq_liveness *l, uint64_t now, bool owed);
/* When the peer counts as gone with this timeout (0 = never), or MOQ_LIVENESS_NONE. */
uint64_t moq_liveness_deadline(const moq_liveness *l, uint64_t timeout);
bool moq_liveness_expired(const moq_liveness *l, uint64_t now, uint64_t timeout);

#endif
