/*
 * clock.h - what `moq clock publish` writes at a given wall-clock time, without any clock of
 * its own: the caller passes the time it reads (moq_wall_ms) and stamps the frame with that
 * same reading, so the second a frame names is the second it was sent in. One group per
 * minute (sequence = the minute of the hour when the clock started, then +1 per minute, like
 * upstream's moq-clock), whose first frame is "YYYY-MM-DD HH:MM:" (UTC) and then one "SS"
 * frame per second. Plain values; nothing to free.
 */
#ifndef MOQ_TOOL_CLOCK_H
#define MOQ_TOOL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct clock_state {
    uint64_t start_minute; /* minute since the epoch of the first group */
    uint64_t base_seq;     /* that group's sequence */
    bool have_last;
    uint64_t last_second; /* second since the epoch written last */
};

struct clock_frame {
    uint64_t ts_ms;  /* the reading: the frame's timestamp (timescale 1000) */
    uint64_t second; /* since the epoch */
    uint64_t minute; /* since the epoch */
    uint64_t group;  /* sequence of the minute's group */
    char base[24];   /* "YYYY-MM-DD HH:MM:", the group's first frame */
    char text[4];    /* "SS" */
};

/* Start a clock at wall-clock time now_ms. */
void clock_state_init(struct clock_state *st, uint64_t now_ms);
/* The frame for the second that contains now_ms. Returns false when that second was written
 * already (or lies before the last one written: the wall clock stepped back). */
bool clock_frame_at(const struct clock_state *st, uint64_t now_ms, struct clock_frame *out);
/* The frame went out: its second is not written again. */
void clock_state_written(struct clock_state *st, const struct clock_frame *f);

#endif
