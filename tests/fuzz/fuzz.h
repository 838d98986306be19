/* fuzz.h - shared pieces of the libFuzzer targets (tests/fuzz/README.md).
 *
 * Every target defines LLVMFuzzerTestOneInput(); it is linked either with
 * libFuzzer (configure --enable-fuzz, clang) or with replay.c, which runs
 * the committed corpus in `make check`. */
#ifndef LB_FUZZ_H
#define LB_FUZZ_H

#include "backend.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A backend that keeps its objects in memory, for decoders that read
 * through struct lb_backend.  Objects are added with memback_add (copied);
 * writes other than remove/append/truncate/replace are refused. */
struct lb_backend *memback_new(void);
int memback_add(struct lb_backend *be, const char *name, const void *data, size_t len);

/* Input splitting: takes the next n bytes (or fewer at the end). */
struct fz {
	const uint8_t *p;
	size_t left;
};
static inline size_t fz_take(struct fz *f, size_t n, const uint8_t **out)
{
	if (n > f->left)
		n = f->left;
	*out = f->p;
	f->p += n;
	f->left -= n;
	return n;
}
static inline uint32_t fz_u8(struct fz *f)
{
	if (!f->left)
		return 0;
	f->left--;
	return *f->p++;
}
static inline uint32_t fz_u16(struct fz *f) { return fz_u8(f) | fz_u8(f) << 8; }

#endif
