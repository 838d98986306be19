/* retention.c - see retention.h. */
#include "retention.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

int lb_policy_any(const struct lb_policy *p)
{
	return p->keep_last || p->keep_hourly || p->keep_daily || p->keep_weekly || p->keep_monthly ||
	       p->keep_yearly || p->keep_within;
}

void lb_policy_floor(struct lb_policy *a, const struct lb_policy *b)
{
	a->keep_last = LB_MAX(a->keep_last, b->keep_last);
	a->keep_hourly = LB_MAX(a->keep_hourly, b->keep_hourly);
	a->keep_daily = LB_MAX(a->keep_daily, b->keep_daily);
	a->keep_weekly = LB_MAX(a->keep_weekly, b->keep_weekly);
	a->keep_monthly = LB_MAX(a->keep_monthly, b->keep_monthly);
	a->keep_yearly = LB_MAX(a->keep_yearly, b->keep_yearly);
	a->keep_within = LB_MAX(a->keep_within, b->keep_within);
}

/* The period a time falls in, as a comparable number. */
static int64_t bucket(int64_t t, int kind)
{
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	int64_t y = tm.tm_year + 1900;
	switch (kind) {
	case LB_KEEP_HOURLY: return ((y * 400 + tm.tm_yday) * 24) + tm.tm_hour;
	case LB_KEEP_DAILY: return y * 400 + tm.tm_yday;
	case LB_KEEP_WEEKLY: {
		char buf[16];
		strftime(buf, sizeof(buf), "%G%V", &tm); /* ISO year and week */
		return strtoll(buf, NULL, 10);
	}
	case LB_KEEP_MONTHLY: return y * 12 + tm.tm_mon;
	default: return y;
	}
}

void lb_retention_apply(const struct lb_policy *p, size_t n, const int64_t *times, const int *protect, int *keep)
{
	size_t *order = lb_mallocarray(n ? n : 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		keep[i] = protect && protect[i] ? LB_KEEP_PROTECTED : 0;
	if (!lb_policy_any(p)) {
		for (size_t i = 0; i < n; i++)
			keep[i] |= LB_KEEP_NO_POLICY;
		free(order);
		return;
	}
	if (!order) {
		/* Out of memory: keep everything rather than guess. */
		for (size_t i = 0; i < n; i++)
			keep[i] |= LB_KEEP_NO_POLICY;
		return;
	}
	/* Newest first (ties: a stable order by index). */
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = 1; i < n; i++) {
		size_t x = order[i], j = i;
		while (j > 0 && times[order[j - 1]] < times[x]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = x;
	}
	for (size_t k = 0; k < n && (int)k < p->keep_last; k++)
		keep[order[k]] |= LB_KEEP_LAST;
	const struct {
		int kind, count;
	} rules[] = {
		{ LB_KEEP_HOURLY, p->keep_hourly }, { LB_KEEP_DAILY, p->keep_daily },
		{ LB_KEEP_WEEKLY, p->keep_weekly }, { LB_KEEP_MONTHLY, p->keep_monthly },
		{ LB_KEEP_YEARLY, p->keep_yearly },
	};
	for (size_t r = 0; r < LB_ARRAY_SIZE(rules); r++) {
		int left = rules[r].count;
		int64_t last = INT64_MIN;
		for (size_t k = 0; k < n && left > 0; k++) {
			int64_t b = bucket(times[order[k]], rules[r].kind);
			if (b == last)
				continue;
			/* The newest snapshot of a period not yet counted. */
			keep[order[k]] |= rules[r].kind;
			last = b;
			left--;
		}
	}
	if (p->keep_within && n > 0) {
		int64_t newest = times[order[0]];
		for (size_t k = 0; k < n; k++)
			if (newest - times[order[k]] <= p->keep_within)
				keep[order[k]] |= LB_KEEP_WITHIN;
	}
	free(order);
}

const char *lb_retention_reason(int keep, char *buf, size_t len)
{
	static const struct {
		int bit;
		const char *name;
	} names[] = {
		{ LB_KEEP_PROTECTED, "protected" }, { LB_KEEP_NO_POLICY, "no-policy" }, { LB_KEEP_LAST, "last" },
		{ LB_KEEP_HOURLY, "hourly" }, { LB_KEEP_DAILY, "daily" }, { LB_KEEP_WEEKLY, "weekly" },
		{ LB_KEEP_MONTHLY, "monthly" }, { LB_KEEP_YEARLY, "yearly" }, { LB_KEEP_WITHIN, "within" },
	};
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < LB_ARRAY_SIZE(names); i++) {
		if (!(keep & names[i].bit))
			continue;
		int w = snprintf(buf + o, len - o, "%s%s", o ? "," : "", names[i].name);
		if (w < 0 || (size_t)w >= len - o)
			break;
		o += (size_t)w;
	}
	return buf;
}
