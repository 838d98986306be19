/* fuzz-rdelta.c - librsync streams as lib/rdelta.c takes them from a peer:
 * a delta the daemon applies to its version of a file (lb_rpatch_*), and a
 * signature a client loads to make a delta (lb_rsig_load, lb_rdelta_*).
 *
 * Input: one byte choosing the decoder (even: patch, odd: signature) and
 * the split of the feed, then the stream.  The basis is a fixed 8 KiB
 * pattern; a patch may write at most 1 MiB, as the daemon caps a patch at
 * the size the client announced. */
#include "fuzz.h"
#include "rdelta.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BASIS 8192
#define MAX_OUT (1u << 20)

static uint8_t basis[BASIS];

static int basis_fn(void *arg, uint64_t pos, size_t *len, const void **buf)
{
	(void)arg;
	if (pos >= BASIS)
		return -EINVAL;
	if (*len > BASIS - pos)
		*len = (size_t)(BASIS - pos);
	*buf = basis + pos;
	return 0;
}

static int out_fn(void *arg, const void *data, size_t len)
{
	(void)data;
	*(uint64_t *)arg += len;
	return 0;
}

/* Feeds the stream in pieces of `step` bytes (1..256), then ends it. */
static void feed(struct lb_rjob *j, const uint8_t *p, size_t n, size_t step)
{
	int r = 0;
	for (size_t off = 0; off < n && r == 0; off += step)
		r = lb_rjob_feed(j, p + off, n - off < step ? n - off : step);
	if (r == 0)
		(void)lb_rjob_end(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!basis[1])
		for (size_t i = 0; i < BASIS; i++)
			basis[i] = (uint8_t)(i * 7 + (i >> 8));
	unsigned mode = data[0];
	size_t step = (mode >> 1) + 1;
	data++;
	size--;
	uint64_t produced = 0;
	if (!(mode & 1)) {
		struct lb_rjob *j = lb_rpatch_begin(basis_fn, NULL, MAX_OUT, out_fn, &produced);
		if (!j)
			abort();
		feed(j, data, size, step);
		if (lb_rjob_out(j) > MAX_OUT)
			abort();
		lb_rjob_free(j);
	} else {
		struct lb_rsig *sig;
		if (lb_rsig_load(data, size, &sig) == 0) {
			struct lb_rjob *j = lb_rdelta_begin(sig, out_fn, &produced);
			if (!j)
				abort();
			feed(j, basis, BASIS, 4096);
			lb_rjob_free(j);
			lb_rsig_free(sig);
		}
	}
	return 0;
}
