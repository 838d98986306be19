/* tap.h - a minimal TAP producer for the unit tests (automake's TAP driver
 * reads it).  Each check prints "ok N - what" or "not ok N - what"; the
 * exit status is non-zero when any check failed. */
#ifndef LB_TAP_H
#define LB_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

static inline void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Prints the plan and returns the exit status for main(). */
static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

/* A temporary directory for the test; removed by the caller's script
 * or left for inspection on failure. */
static inline char *tap_tmpdir(const char *tag)
{
	static char path[256];
	const char *base = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/lb-%s-XXXXXX", base ? base : "/tmp", tag);
	extern char *mkdtemp(char *);
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		exit(99);
	}
	return path;
}

#endif
