/* retention.h - which snapshots a retention policy keeps.
 *
 * The usual rules: keep_last N newest; keep_hourly/daily/weekly/monthly/
 * yearly N: the newest snapshot of each of the N most recent periods that
 * have one; keep_within D: every snapshot within D of the newest.  Periods
 * are counted back from the newest snapshot, in local time; weeks are ISO
 * weeks.  Protected snapshots are always kept.  A policy with no rule keeps
 * everything: nothing is ever removed by an empty policy. */
#ifndef LB_RETENTION_H
#define LB_RETENTION_H

#include <stddef.h>
#include <stdint.h>

struct lb_policy {
	int keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
	int64_t keep_within; /* seconds, 0 = none */
};

/* The rule that keeps a snapshot (a bit set: several may). */
enum {
	LB_KEEP_LAST = 1, LB_KEEP_HOURLY = 2, LB_KEEP_DAILY = 4, LB_KEEP_WEEKLY = 8,
	LB_KEEP_MONTHLY = 16, LB_KEEP_YEARLY = 32, LB_KEEP_WITHIN = 64, LB_KEEP_PROTECTED = 128,
	LB_KEEP_NO_POLICY = 256,
};

/* 1 when the policy has at least one rule. */
int lb_policy_any(const struct lb_policy *p);
/* Every field of a raised to at least b's (the store's minimum). */
void lb_policy_floor(struct lb_policy *a, const struct lb_policy *b);

/* Decides for n snapshots of one dataset: times in seconds (any order),
 * protected flags; writes the keep reasons (0 = remove) to keep[]. */
void lb_retention_apply(const struct lb_policy *p, size_t n, const int64_t *times, const int *protect,
			int *keep);
/* "last,daily,protected" for a reason set, into buf. */
const char *lb_retention_reason(int keep, char *buf, size_t len);

#endif
