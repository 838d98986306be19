/* cdc.h - content-defined chunking: a gear rolling hash with normalized
 * chunking (FastCDC, Xia et al., USENIX ATC 2016).
 *
 * A cut point depends only on the 64 bytes before it (the decision looks at the
 * top bits of a gear hash that shifts one bit per byte), so an insertion or a
 * deletion changes only the chunks around it and the rest resynchronise.  The
 * gear table is generated from a fixed seed (see doc/FORMAT.md) and is part of
 * the store format: changing it would break dedup against existing data. */
#ifndef LB_CDC_H
#define LB_CDC_H

#include <stddef.h>
#include <stdint.h>

struct lb_cdc {
	uint32_t min, avg, max;
	uint64_t mask_s; /* stricter mask, used before avg */
	uint64_t mask_l; /* looser mask, used after avg */
};

/* Smallest and largest sizes a store may choose. */
#define LB_CDC_MIN_MIN 1024u
#define LB_CDC_MAX_MAX (16u << 20)

/* Sets up c for the given sizes.  avg must be a power of two and
 * min < avg < max <= LB_CDC_MAX_MAX; returns 0 or -EINVAL. */
int lb_cdc_init(struct lb_cdc *c, uint32_t min, uint32_t avg, uint32_t max);

/* Finds the first cut in p[0..n).  Returns the chunk length (1..max), or 0
 * when more data is needed to decide: the caller must offer at least c->max
 * bytes unless eof is set, in which case a cut is always returned for n > 0. */
size_t lb_cdc_cut(const struct lb_cdc *c, const uint8_t *p, size_t n, int eof);

/* The gear table (256 entries), for other content-defined decisions. */
const uint64_t *lb_cdc_gear(void);

#endif
