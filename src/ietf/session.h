/*
 * session.h - the moq-transport session engine behind moq_session (moq/session.h).
 *
 * moq_session_new hands a transport whose protocol is an IETF one to this engine; the
 * session is then a moq_session like any other for its driver (close, timers, perms,
 * version, the config callbacks), so the relay, the cluster and the tools need no second
 * code path. The engine maps the draft's model onto the origin:
 *  - a namespace is a broadcast path (tuple fields joined with '/', relative to the
 *    session's root), a track name is a track name, a group is a group and each object of
 *    subgroup 0 is a frame (object ids 0, 1, ... in order);
 *  - PUBLISH_NAMESPACE announces a route (the peer publishes), PUBLISH_NAMESPACE_DONE (or
 *    the end of its stream) unannounces it; the origin's track requests become SUBSCRIBEs
 *    to the peer, its subgroup streams groups of the track, PUBLISH_DONE the track's end;
 *  - SUBSCRIBE_NAMESPACE watches the origin: every broadcast under the prefix is sent as a
 *    PUBLISH_NAMESPACE (drafts 14/15) or NAMESPACE (16+), its end as
 *    PUBLISH_NAMESPACE_DONE or NAMESPACE_DONE; SUBSCRIBE subscribes to the origin and sends
 *    each group on its own subgroup stream;
 *  - object extension headers ride with their frame (its side range, in canonical form)
 *    to IETF subscribers, written in each one's draft form; every object we send carries
 *    an extension block, empty when it had none;
 *  - dropped when bridging from moq-lite to IETF: nothing but frame timestamps (the relay
 *    declares no timescale toward IETF subscribers); from IETF to moq-lite: object
 *    extension headers, publisher priorities; on any path: subgroups other than 0 and
 *    groups with gaps in their object ids (their streams are dropped, as upstream does);
 *  - REQUEST_UPDATE of a peer's subscription updates its moq_subscription (priority, end
 *    group), and the model's track_update becomes our REQUEST_UPDATE upstream (draft-14:
 *    SUBSCRIBE_UPDATE, once SUBSCRIBE_OK gave the start it repeats);
 *  - a FETCH is served from the cache (moq_origin_track_cache, moq_origin_fetch without
 *    forwarding): the cached objects of its range on one fetch stream, after FETCH_OK
 *    (every draft) naming the last one. A joining FETCH's range is the groups before the
 *    first one its subscription delivers (moq_subscription_first_group), from that group
 *    minus the offset (relative) or from the group it names (absolute); with nothing cached
 *    there (always so for offset 0) it is answered empty as upstream answers offset 0
 *    (FETCH_OK on 14, REQUEST_OK from 15, a fetch stream with its header alone).
 *    TRACK_STATUS is answered from the cache too (largest cached group and object);
 *    PUBLISH is refused as not supported.
 *
 * Drafts: draft-14, reached with the "moql" ALPN (or WebSocket subprotocol) and the compat
 * CLIENT_SETUP that offers it, or with "moq-00"; drafts 15 to 20 with "moqt-15" ..
 * "moqt-20". Through draft-16 requests ride the control stream (CLIENT_SETUP /
 * SERVER_SETUP on it); draft-16 SUBSCRIBE_NAMESPACE comes on a bidi stream of its own,
 * answered there with NAMESPACE / NAMESPACE_DONE per broadcast under the prefix (the earlier
 * drafts get a PUBLISH_NAMESPACE request per broadcast on the control stream). From draft-17
 * each side sends SETUP on a uni stream of its own and every request (SUBSCRIBE,
 * PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE, ours too) has a bidi stream whose end ends it;
 * there is no request-id flow control. Draft-20 upstream subscriptions carry no filter
 * (the start of the latest group, moq-lite's join point).
 *
 * Both roles: the relay accepting clients, and a client (the `moq` tool over raw QUIC with
 * an IETF ALPN, not "moql"). A client sends its SETUP first, then, once the server's SETUP
 * came, a SUBSCRIBE_NAMESPACE for every prefix of perms.publish (what the peer may publish
 * to us) and a PUBLISH_NAMESPACE for every broadcast of the origin under perms.subscribe.
 * An announcement the peer ends while a subscription of ours still receives from it is
 * withdrawn first and removed once PUBLISH_DONE and the streams it counts came (at most
 * ENDING_MAX_US later).
 */
#ifndef MOQ_IETF_SESSION_H
#define MOQ_IETF_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ietf/version.h"
#include "moq/session.h"

/* The negotiated protocol names a session this engine runs. */
bool moq_ietf_protocol(const char *protocol);

/* Whether this engine runs a draft (the relay offers the ALPNs of those it runs). */
bool moq_ietf_engine_runs(moq_ietf_draft d);

/* As moq_session_new for such a transport. */
moq_session *moq_ietf_session_new(moq_transport *t, const struct moq_session_config *cfg);

/* The moq_session entry points that differ, called by moq/session.c. */
uint64_t moq_ietf_session_next_deadline(const moq_session *s);
void moq_ietf_session_on_timer(moq_session *s, uint64_t now);
const char *moq_ietf_session_version(const moq_session *s);
size_t moq_ietf_session_unacked_streams(const moq_session *s);
/* GOAWAY without a new URI on the control stream (14-16) or our SETUP stream (17+), once
 * the session is set up; false when nothing was sent. */
bool moq_ietf_session_goaway(moq_session *s);

#endif
