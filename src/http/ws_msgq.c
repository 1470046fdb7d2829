#include "http/ws_msgq.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct ws_msg {
    moq_list link;
    moq_ws_msgq *q;
    moq_slice *v; /* each slice not yet fully read holds a reference */
    size_t n, idx;
};

static void msg_free(struct ws_msg *m)
{
    for (size_t i = m->idx; i < m->n; i++)
        moq_chunk_unref(m->v[i].chunk);
    moq_list_remove(&m->link);
    free(m->v);
    free(m);
}

void moq_ws_msgq_init(moq_ws_msgq *q)
{
    moq_list_init(&q->msgs);
    q->bytes = 0;
}

void moq_ws_msgq_free(moq_ws_msgq *q)
{
    while (!moq_list_empty(&q->msgs))
        msg_free(moq_list_first(&q->msgs, struct ws_msg, link));
    q->bytes = 0;
}

static ssize_t msg_read_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                           const union wslay_event_msg_source *source, int *eof, void *user)
{
    (void)ctx;
    (void)user;
    struct ws_msg *m = source->data;
    size_t o = 0;
    while (o < len && m->idx < m->n) {
        moq_slice *s = &m->v[m->idx];
        size_t k = s->len < len - o ? s->len : len - o;
        memcpy(buf + o, s->chunk->data + s->off, k);
        o += k;
        s->off += k;
        s->len -= k;
        if (!s->len) {
            moq_chunk_unref(s->chunk);
            m->idx++;
        }
    }
    m->q->bytes -= o;
    if (m->idx == m->n) {
        *eof = 1;
        msg_free(m);
    }
    return (ssize_t)o;
}

int moq_ws_msgq_send(moq_ws_msgq *q, wslay_event_context_ptr ctx, const moq_slice *v, size_t n)
{
    struct ws_msg *m = calloc(1, sizeof(*m));
    if (!m || (n && !(m->v = malloc(n * sizeof(*m->v))))) {
        free(m);
        return MOQ_ERR_NOMEM;
    }
    m->q = q;
    moq_list_init(&m->link);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].len) continue;
        m->v[m->n++] = v[i];
        moq_chunk_ref(v[i].chunk);
        len += v[i].len;
    }
    struct wslay_event_fragmented_msg fm = {
        .opcode = WSLAY_BINARY_FRAME, .source.data = m, .read_callback = msg_read_cb};
    int rc = wslay_event_queue_fragmented_msg(ctx, &fm);
    if (rc != 0) {
        msg_free(m);
        return rc == WSLAY_ERR_NO_MORE_MSG ? MOQ_ERR_CLOSED : MOQ_ERR_NOMEM;
    }
    moq_list_push_back(&q->msgs, &m->link);
    q->bytes += len;
    return 0;
}

uint16_t moq_ws_close_reason(const struct wslay_event_on_msg_recv_arg *arg, char *reason,
                             size_t cap)
{
    size_t rl = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
    if (cap) {
        if (rl >= cap) rl = cap - 1;
        if (rl) memcpy(reason, arg->msg + 2, rl);
        reason[rl] = '\0';
    }
    return arg->status_code ? arg->status_code : 1005;
}
