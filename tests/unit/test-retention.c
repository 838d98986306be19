/* test-retention.c - retention rules against tables of snapshot times
 * worked out by hand: days, months and years with their boundaries, ISO
 * weeks, gaps, several snapshots in one period, keep_within, protected
 * snapshots, an empty policy, and the store's minimum as a floor. */
#include "retention.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t at(int y, int mon, int d, int h)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h };
	return (int64_t)timegm(&tm);
}

/* Applies p and checks that exactly the snapshots marked 'k' in want are
 * kept. */
static void expect(const char *what, const struct lb_policy *p, size_t n, const int64_t *t, const int *prot,
		   const char *want)
{
	int keep[64];
	lb_retention_apply(p, n, t, prot, keep);
	char got[65];
	for (size_t i = 0; i < n; i++)
		got[i] = keep[i] ? 'k' : '-';
	got[n] = '\0';
	tap_ok(!strcmp(got, want), "%s: kept %s, expected %s", what, got, want);
}

int main(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	int64_t days[10];
	for (int i = 0; i < 10; i++)
		days[i] = at(2026, 1, i + 1, 2);
	struct lb_policy p;

	memset(&p, 0, sizeof(p));
	p.keep_daily = 3;
	expect("keep_daily 3 of ten days", &p, 10, days, NULL, "-------kkk");
	memset(&p, 0, sizeof(p));
	p.keep_last = 2;
	expect("keep_last 2", &p, 10, days, NULL, "--------kk");

	int64_t two[] = { at(2026, 1, 10, 2), at(2026, 1, 10, 14), at(2026, 1, 9, 23) };
	memset(&p, 0, sizeof(p));
	p.keep_daily = 1;
	expect("keep_daily 1 keeps the newest of the day", &p, 3, two, NULL, "-k-");
	p.keep_daily = 2;
	expect("keep_daily 2 reaches the day before", &p, 3, two, NULL, "-kk");

	int64_t months[] = { at(2026, 1, 30, 2), at(2026, 1, 31, 2), at(2026, 2, 1, 2), at(2026, 2, 2, 2) };
	memset(&p, 0, sizeof(p));
	p.keep_monthly = 2;
	expect("keep_monthly 2 across a month boundary", &p, 4, months, NULL, "-k-k");

	int64_t years[] = { at(2025, 12, 30, 2), at(2025, 12, 31, 23), at(2026, 1, 1, 1) };
	memset(&p, 0, sizeof(p));
	p.keep_yearly = 2;
	expect("keep_yearly 2 across a year boundary", &p, 3, years, NULL, "-kk");
	p.keep_yearly = 1;
	expect("keep_yearly 1", &p, 3, years, NULL, "--k");

	int64_t gaps[] = { at(2026, 3, 1, 2), at(2026, 3, 2, 2), at(2026, 3, 10, 2) };
	memset(&p, 0, sizeof(p));
	p.keep_daily = 2;
	expect("keep_daily counts days that have snapshots (a gap)", &p, 3, gaps, NULL, "-kk");

	/* 2026-01-01 is a Thursday: ISO week 1 runs Mon 2025-12-29 to Sun
	 * 2026-01-04; Mon 2026-01-05 starts week 2. */
	int64_t weeks[] = { at(2026, 1, 3, 2), at(2026, 1, 4, 2), at(2026, 1, 5, 2) };
	memset(&p, 0, sizeof(p));
	p.keep_weekly = 2;
	expect("keep_weekly 2 on ISO weeks", &p, 3, weeks, NULL, "-kk");
	int64_t wyear[] = { at(2025, 12, 28, 2), at(2025, 12, 29, 2), at(2026, 1, 4, 2) };
	p.keep_weekly = 1;
	expect("an ISO week spans the new year", &p, 3, wyear, NULL, "--k");

	memset(&p, 0, sizeof(p));
	p.keep_within = 2 * 86400;
	expect("keep_within 2 days of the newest", &p, 10, days, NULL, "-------kkk");
	p.keep_within = 2 * 86400 - 1;
	expect("keep_within a second less", &p, 10, days, NULL, "--------kk");

	int prot[10] = { 0 };
	prot[0] = 1;
	memset(&p, 0, sizeof(p));
	p.keep_last = 1;
	expect("a protected snapshot is kept whatever the rules", &p, 10, days, prot, "k--------k");
	int keep[10];
	lb_retention_apply(&p, 10, days, prot, keep);
	char why[64];
	tap_ok(!strcmp(lb_retention_reason(keep[0], why, sizeof(why)), "protected") &&
		       !strcmp(lb_retention_reason(keep[9], why, sizeof(why)), "last"),
	       "reasons name the rule (%s)", lb_retention_reason(keep[9], why, sizeof(why)));

	memset(&p, 0, sizeof(p));
	tap_ok(!lb_policy_any(&p), "an empty policy has no rule");
	expect("an empty policy keeps everything", &p, 10, days, NULL, "kkkkkkkkkk");

	struct lb_policy min = { .keep_daily = 3 };
	memset(&p, 0, sizeof(p));
	p.keep_daily = 1;
	lb_policy_floor(&p, &min);
	expect("the store's minimum raises a member's prune (daily 1 -> 3)", &p, 10, days, NULL, "-------kkk");
	p.keep_daily = 5;
	lb_policy_floor(&p, &min);
	tap_ok(p.keep_daily == 5, "a policy above the minimum is left alone");
	return tap_done();
}
