/* Read-only views of the origin's broadcasts and tracks, for operators (model.h). */
#include "model/model_int.h"

size_t moq_origin_each_broadcast(const moq_origin *origin,
                                 void (*fn)(void *ctx, const moq_broadcast_view *b), void *ctx)
{
    size_t n = 0;
    for (moq_list *pos = origin->broadcasts.next; pos != &origin->broadcasts; pos = pos->next) {
        const moq_broadcast *bc = moq_container_of(pos, moq_broadcast, all);
        if (bc->state == BC_ENDED) continue;
        moq_broadcast_view v = {
            .path = bc->path,
            .path_len = bc->path_len,
            .routes = bc->nroutes,
            .lingering = bc->state == BC_LINGERING,
        };
        for (const moq_list *t = bc->tracks.next; t != &bc->tracks; t = t->next)
            if (!moq_container_of(t, moq_inode, link)->cursor) v.tracks++;
        for (const moq_list *r = bc->routes.next; r != &bc->routes; r = r->next)
            if (moq_container_of(r, moq_route, link)->ops->bridge) v.bridge_routes++;
        const moq_route *best = moq_bc_best_route(bc, 0);
        if (best) {
            v.hops = best->hops;
            v.nhops = best->nhops;
        } else if (v.lingering) {
            v.hops = bc->adv_hops;
            v.nhops = bc->adv_nhops;
        }
        fn(ctx, &v);
        n++;
    }
    return n;
}

size_t moq_origin_each_track(const moq_origin *origin,
                             void (*fn)(void *ctx, const moq_track_view *t), void *ctx)
{
    size_t n = 0;
    for (const moq_list *pos = origin->tracks.next; pos != &origin->tracks; pos = pos->next) {
        const moq_inode *in = moq_container_of(pos, moq_inode, link);
        if (in->cursor) continue;
        const moq_track *t = moq_container_of(in, moq_track, all);
        moq_track_view v = {
            .broadcast = t->path,
            .broadcast_len = t->path_len,
            .name = t->name,
            .name_len = t->name_len,
            .subscribers = t->nsubs,
            .groups_cached = t->ngroups,
            .has_latest = t->has_max_seq,
            .latest = t->max_seq,
            .groups_in = t->groups_in,
            .frames_in = t->frames_in,
            .bytes_in = t->bytes_in,
            .routed = t->route != NULL,
            .bridged = t->route && t->route->ops->bridge,
        };
        for (size_t i = 0; i < t->ngroups; i++)
            v.cached_bytes += t->groups[i]->bytes;
        if (t->route) {
            v.hops = t->route->hops;
            v.nhops = t->route->nhops;
        }
        fn(ctx, &v);
        n++;
    }
    return n;
}
