/*
 * ws_msgq.h - WebSocket messages made of chunk slices, queued to wslay without copying them
 * first: the server side (http/ws.c) and the client side (client/ws.c) both send this way.
 *
 * Ownership: a queued message holds a reference on each of its chunks until wslay has read
 * the slice; the queue frees what wslay has not read in moq_ws_msgq_free(). The queue must
 * outlive the wslay context's use of it (free the queue, then the context, or the other way
 * round when nothing is sent in between).
 */
#ifndef MOQ_HTTP_WS_MSGQ_H
#define MOQ_HTTP_WS_MSGQ_H

#include <stddef.h>
#include <stdint.h>

#include <wslay/wslay.h>

#include "util/chunk.h"
#include "util/list.h"

typedef struct moq_ws_msgq {
    moq_list msgs;
    size_t bytes; /* payload queued and not yet read by wslay */
} moq_ws_msgq;

void moq_ws_msgq_init(moq_ws_msgq *q);
void moq_ws_msgq_free(moq_ws_msgq *q);

/* Queue one binary message of the slices (empty ones skipped; each must lie inside its
 * chunk). 0, MOQ_ERR_CLOSED (wslay takes no more messages) or MOQ_ERR_NOMEM. */
int moq_ws_msgq_send(moq_ws_msgq *q, wslay_event_context_ptr ctx, const moq_slice *v, size_t n);

/* The status code (1005 when none) and reason of a received close frame. */
uint16_t moq_ws_close_reason(const struct wslay_event_on_msg_recv_arg *arg, char *reason,
                             size_t cap);

#endif
