/* cdc.c - FastCDC-style chunker; see cdc.h. */
#include "config.h"

#include "cdc.h"
#include "util.h"

#include <pthread.h>

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

/* splitmix64 from a fixed seed: the table is reproducible from doc/FORMAT.md
 * alone and never changes for format version 1. */
static void gear_init(void)
{
	uint64_t x = 0x6c756d62756e6721ULL; /* "lumbung!" */
	for (int i = 0; i < 256; i++) {
		x += 0x9e3779b97f4a7c15ULL;
		uint64_t z = x;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		gear[i] = z ^ (z >> 31);
	}
}

const uint64_t *lb_cdc_gear(void)
{
	pthread_once(&gear_once, gear_init);
	return gear;
}

static uint64_t top_bits(unsigned n)
{
	return n == 0 ? 0 : ~0ULL << (64 - n);
}

int lb_cdc_init(struct lb_cdc *c, uint32_t min, uint32_t avg, uint32_t max)
{
	if (avg == 0 || (avg & (avg - 1)) || min < LB_CDC_MIN_MIN || min >= avg ||
	    avg >= max || max > LB_CDC_MAX_MAX)
		return -EINVAL;
	unsigned bits = 0;
	while ((1u << bits) < avg)
		bits++;
	c->min = min;
	c->avg = avg;
	c->max = max;
	/* Normalization level 2: two bits harder before avg, two easier after. */
	c->mask_s = top_bits(bits + 2);
	c->mask_l = top_bits(bits > 2 ? bits - 2 : 1);
	lb_cdc_gear();
	return 0;
}

size_t lb_cdc_cut(const struct lb_cdc *c, const uint8_t *p, size_t n, int eof)
{
	if (n <= c->min)
		return eof ? n : 0;
	size_t end = n < c->max ? n : c->max;
	size_t normal = end < c->avg ? end : c->avg;
	const uint64_t *g = gear;
	uint64_t h = 0;
	size_t i = c->min;
	/* Warm the hash over the 64 bytes before min so that the decision at
	 * every position sees a full window, whatever the position. */
	for (size_t k = c->min - 64; k < c->min; k++)
		h = (h << 1) + g[p[k]];
	for (; i < normal; i++) {
		h = (h << 1) + g[p[i]];
		if (!(h & c->mask_s))
			return i + 1;
	}
	for (; i < end; i++) {
		h = (h << 1) + g[p[i]];
		if (!(h & c->mask_l))
			return i + 1;
	}
	if (end == c->max || eof)
		return end;
	return 0;
}
