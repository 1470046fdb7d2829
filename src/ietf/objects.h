/*
 * objects.h - the data streams of moq-transport: the SUBGROUP_HEADER that opens a
 * subgroup stream and the object headers inside it, per draft. Sans-I/O, no allocation.
 *
 * The subgroup parser is incremental: it is fed a stream's bytes in any pieces and yields
 * events (the header, each object's start with its payload length, payload bytes, the end
 * of the group). It keeps no payload: payload events point into the caller's input.
 */
#ifndef MOQ_IETF_OBJECTS_H
#define MOQ_IETF_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ietf/version.h"
#include "util/buf.h"

/* Object status values (an object with an empty payload carries one). */
#define MOQ_IETF_STATUS_NORMAL       0x0
#define MOQ_IETF_STATUS_END_OF_GROUP 0x3
#define MOQ_IETF_STATUS_END_OF_TRACK 0x4

/* The publisher priority of every object the relay sends an IETF peer, in its subgroup
 * headers and on its fetch streams alike: it keeps none of the publisher's, so all are equal
 * (0, as the upstream relay). */
#define MOQ_IETF_RELAY_PRIORITY 0

/* Longest subgroup header we write: type, alias, group, subgroup, priority. */
#define MOQ_IETF_SUBGROUP_HEADER_MAX (4 * 9 + 1)
/* Longest object header we write: id delta, payload length, status. */
#define MOQ_IETF_OBJECT_HEADER_MAX (3 * 9)

struct moq_ietf_subgroup_header {
    uint64_t type;
    uint64_t track_alias;
    uint64_t group;
    uint64_t subgroup;
    uint8_t priority;    /* 128 when the type omits it */
    bool extensions;     /* objects carry an extension block */
    bool subgroup_first; /* subgroup id = the first object's id */
    bool end_of_group;   /* the subgroup holds the group's last object */
    bool first_object;   /* draft-18+: the stream starts at the group's first object */
};

/* Whether a uni stream type (its first varint) opens a subgroup stream on this draft. */
bool moq_ietf_is_subgroup_type(const moq_ietf_caps *c, uint64_t type);

/* The header we send: subgroup 0, end of group contained, priority present, first object
 * (18+), and objects with an extension block when `extensions`. Returns the bytes written
 * into out (MOQ_IETF_SUBGROUP_HEADER_MAX). */
size_t moq_ietf_subgroup_header_pack_ext(const moq_ietf_caps *c, uint8_t *out, uint64_t alias,
                                         uint64_t group, uint8_t priority, bool extensions);
/* The same without extensions. */
size_t moq_ietf_subgroup_header_pack(const moq_ietf_caps *c, uint8_t *out, uint64_t alias,
                                     uint64_t group, uint8_t priority);

/* An object header in a subgroup stream without extensions: id delta 0 (objects numbered
 * one after the other from 0), the payload length, and status Normal when it is empty. */
size_t moq_ietf_object_header_pack(const moq_ietf_caps *c, uint8_t *out, uint64_t payload_len);

/* The same in a stream whose objects carry an extension block: id delta 0, the block (given
 * in its canonical form, see below, and written in the draft's), the payload length and
 * status Normal when it is empty; appended to out. 0, or an error of moq_ietf_ext_convert. */
int moq_ietf_object_header_ext(moq_buf *out, const moq_ietf_caps *c, const uint8_t *ext,
                               size_t ext_len, uint64_t payload_len);

/* An object's extension block (its key-value pairs: an even type and a varint value, or an
 * odd type and length-prefixed bytes) from draft `from`'s form into draft `to`'s, appended
 * to out: varints change form (leading ones from 17), types are absolute on 14/15 and
 * deltas from 16, where they are written in ascending order (stable for equal types). The
 * relay keeps blocks in the canonical form, draft-14's (MOQ_IETF_EXT_CANONICAL), so that
 * subscribers of any draft get the same pairs. 0, MOQ_ERR_PROTO (malformed),
 * MOQ_ERR_INVALID (a value over 2^62-1 that the target's varints cannot hold),
 * MOQ_ERR_NOMEM. */
#define MOQ_IETF_EXT_CANONICAL MOQT_14
int moq_ietf_ext_convert(const moq_ietf_caps *from, const uint8_t *in, size_t len,
                         const moq_ietf_caps *to, moq_buf *out);

/* Object time. An object's Timestamp property (0x10; draft-ietf-moq-loc-03's 0x06 is read
 * too) is in the units the track declared with its TIMESCALE property, unless the object's
 * block carries a Timescale (0x08) of its own, which then applies to that object alone. */
#define MOQ_IETF_TIMESCALE_DEFAULT 1000000 /* microseconds: what the relay declares */

struct moq_ietf_time {
    uint64_t value;
    uint64_t scale; /* units per second, never 0 */
};

/* The Timestamp in an extension block in draft c's form, the last one when several. 1 =
 * found (*out set, its scale `track_scale` or the object's own), 0 = none, MOQ_ERR_PROTO
 * (malformed block), MOQ_ERR_INVALID (an object Timescale of 0, a Timestamp over 2^62-1). */
int moq_ietf_object_time_decode(const moq_ietf_caps *c, const uint8_t *ext, size_t len,
                                uint64_t track_scale, struct moq_ietf_time *out);

/* `value` at `from` units per second re-expressed at `to`, rounded down; false when the
 * result exceeds 2^62-1 (or a scale is 0). */
bool moq_ietf_time_convert(uint64_t value, uint64_t from, uint64_t to, uint64_t *out);

/* moq_ietf_object_header_ext for an object with a Timestamp: the carried block (canonical
 * form) loses its own Timestamp and Timescale pairs, whose units the subscriber would read
 * as the track's, and gains the Timestamp `timestamp` (in the units declared to the
 * subscriber) when `has_timestamp`. Errors as moq_ietf_object_header_ext. */
int moq_ietf_object_header_time(moq_buf *out, const moq_ietf_caps *c, const uint8_t *ext,
                                size_t ext_len, bool has_timestamp, uint64_t timestamp,
                                uint64_t payload_len);

enum moq_ietf_sg_event {
    MOQ_IETF_SG_NONE = 0,
    MOQ_IETF_SG_HEADER,      /* ev->header is set */
    MOQ_IETF_SG_EXT,         /* ev->data[0..len) of the next object's extension block */
    MOQ_IETF_SG_OBJECT,      /* an object starts: ev->object_id, ev->size (may be 0) */
    MOQ_IETF_SG_PAYLOAD,     /* ev->data[0..len) of the current object's payload */
    MOQ_IETF_SG_OBJECT_END,  /* the current object is complete */
    MOQ_IETF_SG_END_OF_GROUP /* an END_OF_GROUP / END_OF_TRACK status object */
};

struct moq_ietf_sg_ev {
    int kind;
    struct moq_ietf_subgroup_header header;
    uint64_t object_id;
    uint64_t size;
    uint64_t status;
    const uint8_t *data;
    size_t len;
};

typedef struct moq_ietf_sg_parser {
    const moq_ietf_caps *c;
    int state;
    uint8_t buf[64]; /* a header being assembled */
    size_t have;
    struct moq_ietf_subgroup_header header;
    bool any_object;
    uint64_t last_id;
    uint64_t left; /* payload bytes still to come */
    uint64_t max_extensions;
} moq_ietf_sg_parser;

void moq_ietf_sg_init(moq_ietf_sg_parser *p, const moq_ietf_caps *c);

/* Take bytes from data and len and return the next event through ev: 1 = an event, 0 = the
 * input is used up, < 0 = malformed (MOQ_ERR_PROTO). At the stream's end a parser that is
 * not idle (moq_ietf_sg_idle) saw a truncated stream. */
int moq_ietf_sg_next(moq_ietf_sg_parser *p, const uint8_t **data, size_t *len,
                     struct moq_ietf_sg_ev *ev);
bool moq_ietf_sg_idle(const moq_ietf_sg_parser *p);

/* Objects on a fetch stream (after its FETCH_HEADER), groups in ascending or descending
 * order, the objects of a group ascending. draft-14 writes every field (group, subgroup,
 * object id, priority, extension block, payload length, the status when empty); 15+ lead
 * with Serialization Flags (8 bits on 15, a varint after) and omit what follows from the
 * object before: the first object and the first of each group name their group and object
 * id; an object of the prior object's group names its id only when it does not follow that
 * object's (gaps in the ids are objects that do not exist). Through draft-17 the ids are
 * absolute; from 18 a group is its distance from the prior object's minus one (in the
 * fetch's group order) and an id in the prior object's group its distance from that
 * object's id (the first object's fields are absolute). The subgroup is always 0, the
 * publisher priority (the cursor's, the same for every object) is on every object of
 * draft-14 and on the first only from 15 (the others inherit it: flag 0x10 clear), the
 * extension block only when not empty (its length and the pairs, 15+), the status only on
 * draft-14 and 15 (empty objects). */
struct moq_ietf_fetch_cursor {
    bool descending;  /* set by the caller: groups come newest first */
    uint8_t priority; /* set by the caller: the objects' publisher priority */
    bool any;         /* an object was written */
    uint64_t group, object;
};

/* Append the header of object (group, object) - everything before its payload - with the
 * extension block `ext` (canonical form, may be empty). 0, MOQ_ERR_INVALID (objects out of
 * order), an error of moq_ietf_ext_convert. */
int moq_ietf_fetch_object_header(moq_buf *out, const moq_ietf_caps *c,
                                 struct moq_ietf_fetch_cursor *cur, uint64_t group, uint64_t object,
                                 const uint8_t *ext, size_t ext_len, uint64_t payload_len);

#endif
