/* calendar.c - see calendar.h. */
#include "calendar.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>

static const char *wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };

static int wday_of(const char *s, size_t n)
{
	for (int i = 0; i < 7; i++)
		if (n >= 3 && !strncasecmp(s, wdays[i], 3))
			return i;
	return -1;
}

/* Parses a list "a,b,c" of numbers, ranges a..b, start/step, or "*" into a
 * bit mask over [lo, hi]. */
static int field(const char *s, size_t n, int lo, int hi, uint64_t *mask)
{
	char buf[128];
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*mask = 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int a, b, step = 1;
		char *slash = strchr(tok, '/');
		if (slash) {
			*slash = '\0';
			char *end;
			step = (int)strtol(slash + 1, &end, 10);
			if (*end || step <= 0)
				return -EINVAL;
		}
		if (!strcmp(tok, "*")) {
			a = lo;
			b = hi;
		} else {
			char *dots = strstr(tok, "..");
			char *end;
			a = (int)strtol(tok, &end, 10);
			if (end == tok || (dots ? end != dots : *end != '\0'))
				return -EINVAL;
			b = slash ? hi : a;
			if (dots) {
				b = (int)strtol(dots + 2, &end, 10);
				if (*end)
					return -EINVAL;
			}
		}
		if (a < lo || b > hi || a > b)
			return -EINVAL;
		for (int v = a; v <= b; v += step)
			*mask |= 1ULL << v;
	}
	return *mask ? 0 : -EINVAL;
}

int lb_calendar_parse(const char *expr, struct lb_calendar *c)
{
	memset(c, 0, sizeof(*c));
	c->wday = 0x7f;
	c->month = 0x1ffe;
	c->mday = 0xfffffffe;
	c->hour = 0xffffff;
	c->minute = (1ULL << 60) - 1;
	c->second = 1;
	while (isspace((unsigned char)*expr))
		expr++;
	if (!strcmp(expr, "minutely")) {
		return 0;
	}
	c->minute = 1;
	if (!strcmp(expr, "hourly"))
		return 0;
	c->hour = 1;
	if (!strcmp(expr, "daily"))
		return 0;
	if (!strcmp(expr, "weekly")) {
		c->wday = 1 << 1;
		return 0;
	}
	if (!strcmp(expr, "monthly")) {
		c->mday = 1 << 1;
		return 0;
	}
	/* Up to three words: weekdays, date, time. */
	char words[3][128];
	int nw = 0;
	const char *p = expr;
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (nw == 3)
			return -EINVAL;
		size_t n = strcspn(p, " \t");
		if (n >= sizeof(words[0]))
			return -EINVAL;
		memcpy(words[nw], p, n);
		words[nw++][n] = '\0';
		p += n;
	}
	if (nw == 0)
		return -EINVAL;
	int w = 0;
	if (isalpha((unsigned char)words[0][0])) {
		c->wday = 0;
		char *save = NULL;
		for (char *tok = strtok_r(words[0], ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *dots = strstr(tok, "..");
			int a = wday_of(tok, dots ? (size_t)(dots - tok) : strlen(tok));
			int b = dots ? wday_of(dots + 2, strlen(dots + 2)) : a;
			if (a < 0 || b < 0)
				return -EINVAL;
			for (int d = a;; d = (d + 1) % 7) {
				c->wday |= (uint8_t)(1 << d);
				if (d == b)
					break;
			}
		}
		w = 1;
	}
	/* The date, when given, has two dashes; the time has a colon. */
	c->month = 0x1ffe;
	c->mday = 0xfffffffe;
	if (w < nw && strchr(words[w], '-')) {
		char *d1 = words[w], *d2 = strchr(d1, '-'), *d3 = d2 ? strchr(d2 + 1, '-') : NULL;
		if (!d2 || !d3)
			return -EINVAL;
		uint64_t m;
		if (strncmp(d1, "*", (size_t)(d2 - d1))) {
			char *end;
			long y = strtol(d1, &end, 10);
			if (end != d2 || y < 1970 || y > 2200)
				return -EINVAL;
			c->year = (uint64_t)y;
		}
		if (field(d2 + 1, (size_t)(d3 - d2 - 1), 1, 12, &m) < 0)
			return -EINVAL;
		c->month = (uint16_t)m;
		if (field(d3 + 1, strlen(d3 + 1), 1, 31, &m) < 0)
			return -EINVAL;
		c->mday = (uint32_t)m;
		w++;
	}
	c->hour = 1;
	c->minute = 1;
	c->second = 1;
	if (w < nw) {
		char *t1 = words[w], *t2 = strchr(t1, ':'), *t3 = t2 ? strchr(t2 + 1, ':') : NULL;
		uint64_t m;
		if (!t2)
			return -EINVAL;
		if (field(t1, (size_t)(t2 - t1), 0, 23, &m) < 0)
			return -EINVAL;
		c->hour = (uint32_t)m;
		if (field(t2 + 1, t3 ? (size_t)(t3 - t2 - 1) : strlen(t2 + 1), 0, 59, &c->minute) < 0)
			return -EINVAL;
		if (t3 && field(t3 + 1, strlen(t3 + 1), 0, 59, &c->second) < 0)
			return -EINVAL;
		w++;
	}
	return w == nw ? 0 : -EINVAL;
}

int64_t lb_calendar_next(const struct lb_calendar *c, int64_t after)
{
	/* Walk day by day (local time), then through the day's times. */
	time_t t = (time_t)after;
	struct tm tm;
	localtime_r(&t, &tm);
	for (int days = 0; days < 3700; days++) {
		struct tm d = tm;
		d.tm_mday += days;
		d.tm_hour = 0;
		d.tm_min = 0;
		d.tm_sec = 0;
		d.tm_isdst = -1;
		time_t day0 = mktime(&d);
		if (day0 == (time_t)-1)
			return -1;
		struct tm dd;
		localtime_r(&day0, &dd);
		if (!(c->wday & (1 << dd.tm_wday)) || !(c->month & (1 << (dd.tm_mon + 1))) ||
		    !(c->mday & (1u << dd.tm_mday)) || (c->year && (uint64_t)(dd.tm_year + 1900) != c->year))
			continue;
		for (int h = 0; h < 24; h++) {
			if (!(c->hour & (1u << h)))
				continue;
			for (int m = 0; m < 60; m++) {
				if (!(c->minute & (1ULL << m)))
					continue;
				for (int s = 0; s < 60; s++) {
					if (!(c->second & (1ULL << s)))
						continue;
					struct tm x = dd;
					x.tm_hour = h;
					x.tm_min = m;
					x.tm_sec = s;
					x.tm_isdst = -1;
					time_t when = mktime(&x);
					if (when > t)
						return (int64_t)when;
				}
			}
		}
	}
	return -1;
}
