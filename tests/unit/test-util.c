/* test-util.c - lb_bulk_alloc: the backup's batch buffers. */
#include "config.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif

int main(void)
{
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
	/* Freeing gives the mapping back at once: msync says ENOMEM for
	 * addresses no longer mapped. */
	size_t big = (size_t)16 << 20;
	uint8_t *q = lb_bulk_alloc(big);
	int mapped = q && msync(q, big, MS_ASYNC) == 0;
	lb_bulk_free(q, big);
	int gone = q && msync(q, 4096, MS_ASYNC) < 0 && errno == ENOMEM;
	tap_ok(mapped && gone, "a freed buffer is unmapped at once (mapped before: %d, gone after: %d)", mapped, gone);
#endif
	lb_bulk_free(NULL, 123);
	tap_ok(1, "lb_bulk_free(NULL) is a no-op");
	return tap_done();
}
