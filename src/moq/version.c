#include "moq/version.h"
#include "util/err.h"

#include <string.h>

static const moq_caps caps_table[] = {
    {
        .version = MOQ_LITE_01,
        .name = "moq-lite-01",
        .alpn = MOQ_COMPAT_ALPN,
        .compat_code = MOQ_COMPAT_CODE_LITE_01,
        .by_default = true,
        .compat_setup = true,
        .announce_init = true,
        .announce_hops = MOQ_HOPS_NONE,
        .subscribe_responses = MOQ_SUBRESP_UNTYPED_OK,
        .subscribe_ok_priority = true,
    },
    {
        .version = MOQ_LITE_02,
        .name = "moq-lite-02",
        .alpn = MOQ_COMPAT_ALPN,
        .compat_code = MOQ_COMPAT_CODE_LITE_02,
        .by_default = true,
        .compat_setup = true,
        .announce_init = true,
        .announce_hops = MOQ_HOPS_NONE,
        .subscribe_responses = MOQ_SUBRESP_UNTYPED_OK,
    },
    {
        .version = MOQ_LITE_03,
        .name = "moq-lite-03",
        .alpn = "moq-lite-03",
        .compat_code = MOQ_COMPAT_CODE_LITE_03,
        .by_default = true,
        .announce_hops = MOQ_HOPS_COUNT,
        .subscribe_options = true,
        .subscribe_update = true,
        .subscribe_responses = MOQ_SUBRESP_OK_DROP,
        .probe = true,
    },
    {
        .version = MOQ_LITE_04,
        .name = "moq-lite-04",
        .alpn = "moq-lite-04",
        .compat_code = MOQ_COMPAT_CODE_LITE_04,
        .by_default = true,
        .announce_hops = MOQ_HOPS_IDS_WITH_SENDER,
        .exclude_hop = true,
        .subscribe_options = true,
        .subscribe_update = true,
        .subscribe_responses = MOQ_SUBRESP_OK_DROP,
        .probe = true,
        .probe_rtt = true,
        .goaway = true,
    },
    {
        .version = MOQ_LITE_05,
        .name = "moq-lite-05",
        .alpn = "moq-lite-05",
        .compat_code = MOQ_COMPAT_CODE_LITE_05,
        .by_default = true,
        .setup_stream = true,
        .announce_ok = true,
        .announce_hops = MOQ_HOPS_IDS_WITHOUT_SENDER,
        .exclude_hop = true,
        .restart = true,
        .subscribe_options = true,
        .subscribe_update = true,
        .subscribe_responses = MOQ_SUBRESP_START_END_DROP,
        .track_stream = true,
        .fetch = true,
        .frame_timestamps = true,
        .datagrams = true,
        .probe = true,
        .probe_rtt = true,
        .goaway = true,
    },
    {
        /* Work in progress upstream: offered only when configured. The peer's SETUP Origin
         * replaces exclude_hop; a replaced route travels as END + START. */
        .version = MOQ_LITE_06_WIP,
        .name = "moq-lite-06-wip",
        .alpn = "moq-lite-06-wip",
        .compat_code = MOQ_COMPAT_CODE_LITE_06,
        .setup_stream = true,
        .announce_ok = true,
        .announce_ids = true,
        .route_cost = true,
        .announce_hops = MOQ_HOPS_IDS_WITHOUT_SENDER,
        .subscribe_options = true,
        .subscribe_update = true,
        .subscribe_responses = MOQ_SUBRESP_START_END_DROP,
        .track_stream = true,
        .fetch = true,
        .frame_timestamps = true,
        .datagrams = true,
        .probe = true,
        .probe_rtt = true,
        .goaway = true,
    },
};

#define N_CAPS (sizeof(caps_table) / sizeof(caps_table[0]))

const char *const moq_version_alpns[] = {"moq-lite-05", "moq-lite-04", "moq-lite-03", NULL};
const char *const moq_version_compat_names[] = {"moq-lite-02", "moq-lite-01", NULL};

const moq_caps *moq_caps_get(moq_version v)
{
    for (size_t i = 0; i < N_CAPS; i++)
        if (caps_table[i].version == v) return &caps_table[i];
    return NULL;
}

bool moq_version_supported(moq_version v)
{
    return moq_caps_get(v) != NULL;
}

const char *moq_version_alpn(moq_version v)
{
    const moq_caps *c = moq_caps_get(v);
    return c ? c->alpn : "unknown";
}

const char *moq_version_name(moq_version v)
{
    const moq_caps *c = moq_caps_get(v);
    return c ? c->name : "unknown";
}

int moq_version_from_alpn(const char *alpn, size_t len)
{
    if (!alpn) return MOQ_ERR_NOT_FOUND;
    for (size_t i = 0; i < N_CAPS; i++) {
        const char *name = caps_table[i].alpn;
        if (caps_table[i].compat_setup) continue; /* "moql" is shared */
        if (strlen(name) == len && memcmp(name, alpn, len) == 0) return (int)caps_table[i].version;
    }
    return MOQ_ERR_NOT_FOUND;
}

int moq_version_from_name(const char *name)
{
    if (!name) return MOQ_ERR_NOT_FOUND;
    for (size_t i = 0; i < N_CAPS; i++)
        if (strcmp(caps_table[i].name, name) == 0) return (int)caps_table[i].version;
    return MOQ_ERR_NOT_FOUND;
}

int moq_version_from_compat_code(uint64_t code)
{
    for (size_t i = 0; i < N_CAPS; i++)
        if (caps_table[i].compat_setup && caps_table[i].compat_code == code)
            return (int)caps_table[i].version;
    return MOQ_ERR_NOT_FOUND;
}

const char *moq_compat_version_name(uint64_t code)
{
    switch (code) {
    case MOQ_COMPAT_CODE_LITE_01:
        return "moq-lite-01";
    case MOQ_COMPAT_CODE_LITE_02:
        return "moq-lite-02";
    case MOQ_COMPAT_CODE_LITE_03:
        return "moq-lite-03";
    case MOQ_COMPAT_CODE_LITE_04:
        return "moq-lite-04";
    case MOQ_COMPAT_CODE_LITE_05:
        return "moq-lite-05";
    case MOQ_COMPAT_CODE_LITE_06:
        return "moq-lite-06-wip";
    case MOQ_COMPAT_CODE_MOQT_14:
        return "moq-transport-14";
    default:
        return NULL;
    }
}
