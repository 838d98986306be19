/* calendar.h - the subset of systemd calendar expressions (systemd.time(7))
 * that nightly schedules use, to tell when a dataset's backup was due:
 *
 *   [WEEKDAYS] [DATE] TIME        e.g. "*-*-* 01:30", "Mon..Fri 02:00",
 *                                 "Sat,Sun *-*-* 03:15:00", "*-*-01 04:00"
 *   minutely | hourly | daily | weekly | monthly
 *
 * WEEKDAYS is a list of days or ranges (Mon..Fri); DATE is Y-M-D where each
 * part is "*", a number or a list; TIME is H:M[:S] where each part is "*", a
 * number, a list or a start/step ("0/15").  Times are local, as systemd
 * reads them.  Anything else is refused, so a schedule that systemd would
 * read differently is never half-understood. */
#ifndef LB_CALENDAR_H
#define LB_CALENDAR_H

#include <stdint.h>
#include <time.h>

struct lb_calendar {
	uint8_t wday;    /* bit d: weekday d (0 = Sunday) allowed */
	uint64_t year;   /* 0 = any, else the year */
	uint16_t month;  /* bit m (1..12) */
	uint32_t mday;   /* bit d (1..31) */
	uint32_t hour;   /* bit h (0..23) */
	uint64_t minute; /* bit m (0..59) */
	uint64_t second; /* bit s (0..59) */
};

/* Parses expr; returns 0 or -EINVAL. */
int lb_calendar_parse(const char *expr, struct lb_calendar *c);
/* The first time strictly after `after` (seconds since the epoch) that
 * matches, or -1 when none does within ten years. */
int64_t lb_calendar_next(const struct lb_calendar *c, int64_t after);

#endif
