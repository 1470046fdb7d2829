#include "moq/version.h"
#include "util/err.h"

#include <string.h>

static const moq_caps caps_table[] = {
    {
        .version = MOQ_LITE_03,
        .alpn = "moq-lite-03",
        .compat_code = MOQ_COMPAT_CODE_LITE_03,
        .announce_hops = MOQ_HOPS_COUNT,
        .subscribe_update = true,
        .subscribe_responses = MOQ_SUBRESP_OK_DROP,
        .probe = true,
    },
    {
        .version = MOQ_LITE_04,
        .alpn = "moq-lite-04",
        .compat_code = MOQ_COMPAT_CODE_LITE_04,
        .announce_hops = MOQ_HOPS_IDS_WITH_SENDER,
        .exclude_hop = true,
        .subscribe_update = true,
        .subscribe_responses = MOQ_SUBRESP_OK_DROP,
        .probe = true,
        .probe_rtt = true,
        .goaway = true,
    },
    {
        .version = MOQ_LITE_05,
        .alpn = "moq-lite-05",
        .compat_code = MOQ_COMPAT_CODE_LITE_05,
        .setup_stream = true,
        .announce_ok = true,
        .announce_hops = MOQ_HOPS_IDS_WITHOUT_SENDER,
        .exclude_hop = true,
        .restart = true,
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

const char *const moq_version_alpns[] = {"moq-lite-05", "moq-lite-04", "moq-lite-03", NULL};

const moq_caps *moq_caps_get(moq_version v)
{
    for (size_t i = 0; i < sizeof(caps_table) / sizeof(caps_table[0]); i++)
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

int moq_version_from_alpn(const char *alpn, size_t len)
{
    if (!alpn) return MOQ_ERR_NOT_FOUND;
    for (size_t i = 0; i < sizeof(caps_table) / sizeof(caps_table[0]); i++) {
        const char *name = caps_table[i].alpn;
        if (strlen(name) == len && memcmp(name, alpn, len) == 0) return (int)caps_table[i].version;
    }
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
        return "moq-lite-06";
    case MOQ_COMPAT_CODE_MOQT_14:
        return "moq-transport-14";
    default:
        return NULL;
    }
}
