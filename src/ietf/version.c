#include "ietf/version.h"

#include <string.h>

/* Draft-15 and draft-16 share most of what changed after draft-14; later drafts build on
 * them. Each row spells out every capability so that a reader sees a draft whole. */
static const moq_ietf_caps caps_table[] = {
    {
        .draft = MOQT_14,
        .alpn = "moq-00",
        .name = "moq-transport-14",
        .code = 0xff00000eull,
        .setup_versions = true,
        .setup_count = true,
        .response_ids = true,
        .filter = MOQ_IETF_FILTER_INLINE,
        .max_request_id = true,
        .unsubscribe = true,
        .ns_done_msg = true,
        .track_status_ok = true,
        .fetch_inline = true,
        .fetch_objects = MOQ_IETF_FETCH_PLAIN,
    },
    {
        .draft = MOQT_15,
        .alpn = "moqt-15",
        .name = "moq-transport-15",
        .code = 0xff00000full,
        .setup_count = true,
        .response_ids = true,
        .request_error = true,
        .subscribe_params = true,
        .filter = MOQ_IETF_FILTER_TAG_ABS,
        .group_order_param = true,
        .max_request_id = true,
        .unsubscribe = true,
        .ns_done_msg = true,
        .header_priority_optional = true,
        .fetch_objects = MOQ_IETF_FETCH_FLAGS8,
    },
    {
        .draft = MOQT_16,
        .alpn = "moqt-16",
        .name = "moq-transport-16",
        .code = 0xff000010ull,
        .setup_count = true,
        .kvp_delta = true,
        .ns_stream = true,
        .subscribe_options = true,
        .response_ids = true,
        .request_error = true,
        .retry_interval = true,
        .subscribe_params = true,
        .filter = MOQ_IETF_FILTER_TAG_ABS,
        .read_properties = true,
        .max_request_id = true,
        .unsubscribe = true,
        .ns_done_msg = true,
        .ns_done_by_id = true,
        .header_priority_optional = true,
        .fetch_objects = MOQ_IETF_FETCH_FLAGS,
    },
    {
        .draft = MOQT_17,
        .alpn = "moqt-17",
        .name = "moq-transport-17",
        .code = 0xff000011ull,
        .leading_ones = true,
        .uni_setup = true,
        .kvp_delta = true,
        .typed_params = true,
        .request_streams = true,
        .ns_stream = true,
        .subscribe_options = true,
        .required_id_delta = true,
        .request_error = true,
        .retry_interval = true,
        .subscribe_params = true,
        .filter = MOQ_IETF_FILTER_TAG_DELTA,
        .track_properties = true,
        .read_properties = true,
        .goaway_timeout = true,
        .header_priority_optional = true,
        .fetch_objects = MOQ_IETF_FETCH_FLAGS,
        .cluster = true,
    },
    {
        .draft = MOQT_18,
        .alpn = "moqt-18",
        .name = "moq-transport-18",
        .code = 0xff000012ull,
        .leading_ones = true,
        .uni_setup = true,
        .kvp_delta = true,
        .typed_params = true,
        .request_streams = true,
        .ns_stream = true,
        .ns_v2 = true,
        .request_error = true,
        .retry_interval = true,
        .subscribe_params = true,
        .filter = MOQ_IETF_FILTER_TAG_DELTA,
        .track_properties = true,
        .read_properties = true,
        .goaway_timeout = true,
        .first_object_bit = true,
        .header_priority_optional = true,
        .fetch_objects = MOQ_IETF_FETCH_FLAGS_DELTA,
        .cluster = true,
    },
    {
        .draft = MOQT_19,
        .alpn = "moqt-19",
        .name = "moq-transport-19",
        .code = 0xff000013ull,
        .leading_ones = true,
        .uni_setup = true,
        .kvp_delta = true,
        .typed_params = true,
        .request_streams = true,
        .ns_stream = true,
        .ns_v2 = true,
        .request_error = true,
        .retry_interval = true,
        .subscribe_params = true,
        .filter = MOQ_IETF_FILTER_TAG_DELTA,
        .track_properties = true,
        .read_properties = true,
        .goaway_timeout = true,
        .first_object_bit = true,
        .header_priority_optional = true,
        .fetch_objects = MOQ_IETF_FETCH_FLAGS_DELTA,
        .cluster = true,
    },
    {
        .draft = MOQT_20,
        .alpn = "moqt-20",
        .name = "moq-transport-20",
        .code = 0xff000014ull,
        .leading_ones = true,
        .uni_setup = true,
        .kvp_delta = true,
        .typed_params = true,
        .request_streams = true,
        .ns_stream = true,
        .ns_v2 = true,
        .request_error = true,
        .retry_interval = true,
        .subscribe_params = true,
        .filter = MOQ_IETF_FILTER_FIELDS,
        .track_properties = true,
        .read_properties = true,
        .largest_param = true,
        .goaway_timeout = true,
        .first_object_bit = true,
        .header_priority_optional = true,
        .fetch_filter = true,
        .fetch_end_inclusive = true,
        .fetch_objects = MOQ_IETF_FETCH_FLAGS_DELTA,
        .cluster = true,
        .fill = true,
    },
};

#define NCAPS (sizeof(caps_table) / sizeof(caps_table[0]))

const moq_ietf_caps *const moq_ietf_drafts[] = {
    &caps_table[6], &caps_table[5], &caps_table[4], &caps_table[3],
    &caps_table[2], &caps_table[1], &caps_table[0], NULL,
};

const moq_ietf_caps *moq_ietf_caps_get(moq_ietf_draft d)
{
    for (size_t i = 0; i < NCAPS; i++)
        if (caps_table[i].draft == d) return &caps_table[i];
    return NULL;
}

const moq_ietf_caps *moq_ietf_caps_from_alpn(const char *alpn, size_t len)
{
    if (!alpn) return NULL;
    for (size_t i = 0; i < NCAPS; i++)
        if (strlen(caps_table[i].alpn) == len && memcmp(caps_table[i].alpn, alpn, len) == 0)
            return &caps_table[i];
    return NULL;
}

const moq_ietf_caps *moq_ietf_caps_from_name(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < NCAPS; i++)
        if (strcmp(caps_table[i].name, name) == 0) return &caps_table[i];
    return NULL;
}

const moq_ietf_caps *moq_ietf_caps_from_code(uint64_t code)
{
    for (size_t i = 0; i < NCAPS; i++)
        if (caps_table[i].code == code) return &caps_table[i];
    return NULL;
}
