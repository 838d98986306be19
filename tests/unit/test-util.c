/* test-util.c - lb_bulk_alloc: the backup's batch buffers. */
#include "config.h"
#include "tap.h"
#include "ingest.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif

#ifndef ASAN
/* 1 when some mapping of this process holds address p. */
static int is_mapped(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	int found = 0;
	uintptr_t a = (uintptr_t)p;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi)
			found = 1;
	}
	fclose(f);
	return found;
}
#endif

/* lb_time_ns: seconds and nanoseconds to int64 nanoseconds, held at the
 * ends of the range instead of overflowing (archive headers carry any
 * time; fuzz-archive found the overflow). */
static void test_time_ns(void)
{
	tap_ok(lb_time_ns(1700000000, 123) == 1700000000000000123LL, "time_ns: an ordinary time");
	tap_ok(lb_time_ns(-1, 0) == -1000000000LL, "time_ns: before 1970");
	tap_ok(lb_time_ns(1, -1) == 999999999LL, "time_ns: a negative nsec borrows a second");
	tap_ok(lb_time_ns(1, 2500000000L) == 3500000000LL, "time_ns: an nsec over a second carries");
	tap_ok(lb_time_ns(9223372036LL, 854775807L) == INT64_MAX, "time_ns: the last representable instant");
	tap_ok(lb_time_ns(9223372036LL, 854775808L) == INT64_MAX, "time_ns: one nanosecond later is held at the end");
	tap_ok(lb_time_ns(179647522000000LL, 0) == INT64_MAX, "time_ns: the year 5.7 million (fuzz-archive) is held at the end");
	tap_ok(lb_time_ns(INT64_MAX, 999999999L) == INT64_MAX, "time_ns: the largest seconds");
	tap_ok(lb_time_ns(INT64_MIN, -999999999L) == INT64_MIN, "time_ns: the smallest seconds");
	tap_ok(lb_time_ns(-9223372037LL, 0) == INT64_MIN, "time_ns: before 1677 is held at the start");
}

int main(void)
{
	test_time_ns();
	/* Sizes below, at and across the 2 MiB unit, and the batch size. */
	static const size_t sizes[] = { 0, 1, 4096, (size_t)2 << 20, ((size_t)2 << 20) + 1, ((size_t)16 << 20) };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *p = lb_bulk_alloc(n);
		int ok = p != NULL;
#ifndef ASAN
		/* The huge-page advice only takes on whole aligned units. */
		ok = ok && ((uintptr_t)p & (((uintptr_t)2 << 20) - 1)) == 0;
#endif
		if (ok && n) {
			/* Every byte is ours: write a pattern, read it back. */
			for (size_t k = 0; k < n; k += 4093)
				p[k] = (uint8_t)(k * 7 + 1);
			p[n - 1] = 0xa5;
			for (size_t k = 0; k + 1 < n; k += 4093)
				ok = ok && p[k] == (uint8_t)(k * 7 + 1);
			ok = ok && p[n - 1] == 0xa5;
		}
		tap_ok(ok, "lb_bulk_alloc(%zu): aligned to 2 MiB and writable throughout", n);
		lb_bulk_free(p, n);
	}
#ifndef ASAN
	/* Freeing gives the mapping back at once: the range leaves
	 * /proc/self/maps. */
	size_t big = (size_t)16 << 20;
	uint8_t *q = lb_bulk_alloc(big);
	int mapped = q && is_mapped(q);
	lb_bulk_free(q, big);
	int gone = q && !is_mapped(q);
	tap_ok(mapped && gone, "a freed buffer is unmapped at once (mapped before: %d, gone after: %d)", mapped, gone);
#endif
	lb_bulk_free(NULL, 123);
	tap_ok(1, "lb_bulk_free(NULL) is a no-op");
	return tap_done();
}
