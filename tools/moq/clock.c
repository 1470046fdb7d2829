/* The clock's frames as a function of the time read when they are written (clock.h). */
#include "clock.h"

#include <stdio.h>
#include <time.h>

void clock_state_init(struct clock_state *st, uint64_t now_ms)
{
    time_t now = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    st->start_minute = (uint64_t)now / 60;
    st->base_seq = (uint64_t)tm.tm_min;
    st->have_last = false;
    st->last_second = 0;
}

bool clock_frame_at(const struct clock_state *st, uint64_t now_ms, struct clock_frame *out)
{
    uint64_t second = now_ms / 1000;
    if (st->have_last && second <= st->last_second) return false;
    uint64_t minute = second / 60;
    if (minute < st->start_minute) return false;
    time_t t = (time_t)second;
    struct tm tm;
    gmtime_r(&t, &tm);
    out->ts_ms = now_ms;
    out->second = second;
    out->minute = minute;
    out->group = st->base_seq + (minute - st->start_minute);
    strftime(out->base, sizeof(out->base), "%Y-%m-%d %H:%M:", &tm);
    snprintf(out->text, sizeof(out->text), "%02d", tm.tm_sec % 100);
    return true;
}

void clock_state_written(struct clock_state *st, const struct clock_frame *f)
{
    st->have_last = true;
    st->last_second = f->second;
}
