#include "transport/transport.h"
#include "util/err.h"

int moq_transport_write_bytes(moq_transport *t, int64_t sid, const void *data, size_t len, bool fin)
{
    if (len == 0) return t->ops->write(t, sid, NULL, 0, fin);
    moq_chunk *c = moq_chunk_copy(data, len);
    if (!c) return MOQ_ERR_NOMEM;
    c->len = len;
    moq_slice s = {c, 0, len};
    int rv = t->ops->write(t, sid, &s, 1, fin);
    moq_chunk_unref(c);
    return rv;
}
