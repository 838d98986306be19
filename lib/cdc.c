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

/* The hash a byte-at-a-time loop holds on reaching position i: it depends
 * on the 64 bytes before i only, each step shifting one out at the top. */
static inline uint64_t warm(const uint64_t *g, const uint8_t *p, size_t i)
{
	uint64_t h = 0;
	for (size_t k = i - 64; k < i; k++)
		h = (h << 1) + g[p[k]];
	return h;
}

/* The first position i in [a, z) whose hash has no bit of m set, as i + 1,
 * or 0; h is the hash on reaching a. */
static size_t scan1(const uint64_t *g, const uint8_t *p, size_t a, size_t z, uint64_t m, uint64_t h)
{
	for (size_t i = a; i < z; i++) {
		h = (h << 1) + g[p[i]];
		if (!(h & m))
			return i + 1;
	}
	return 0;
}

/* The same, a ≥ 64.  One hash is a chain of dependent steps, each waiting
 * for the one before (1.26 GB/s here whatever the loop's shape); four
 * lanes, each hashing its own quarter of a block after a warm-up of 64
 * bytes, keep the core busy (4.4 GB/s on random bytes).  When a lane hits,
 * the first lane goes on alone from there: a cut in it, further on, still
 * comes first, and otherwise it reaches the hit of the lane after it. */
#define LANE_MIN 256u
#define LANE_MAX (16u << 10)
static size_t scan(const uint64_t *g, const uint8_t *p, size_t a, size_t z, uint64_t m)
{
	while (z - a >= 4 * LANE_MIN) {
		size_t b = LB_MIN((z - a) / 4, (size_t)LANE_MAX);
		const uint8_t *q0 = p + a, *q1 = q0 + b, *q2 = q1 + b, *q3 = q2 + b;
		uint64_t h0 = warm(g, p, a), h1 = warm(g, p, a + b), h2 = warm(g, p, a + 2 * b),
			 h3 = warm(g, p, a + 3 * b);
		size_t i;
		for (i = 0; i < b; i++) {
			h0 = (h0 << 1) + g[q0[i]];
			h1 = (h1 << 1) + g[q1[i]];
			h2 = (h2 << 1) + g[q2[i]];
			h3 = (h3 << 1) + g[q3[i]];
			if (!((h0 & m) && (h1 & m) && (h2 & m) && (h3 & m)))
				break;
		}
		if (i < b)
			return !(h0 & m) ? a + i + 1 : scan1(g, p, a + i + 1, z, m, h0);
		a += 4 * b;
	}
	return a < z ? scan1(g, p, a, z, m, warm(g, p, a)) : 0;
}

size_t lb_cdc_cut(const struct lb_cdc *c, const uint8_t *p, size_t n, int eof)
{
	if (n <= c->min)
		return eof ? n : 0;
	size_t end = n < c->max ? n : c->max;
	size_t normal = end < c->avg ? end : c->avg;
	/* doc/FORMAT.md 8.3: the stricter mask up to avg, the looser after;
	 * min ≥ LB_CDC_MIN_MIN leaves room for the warm-up before it. */
	size_t r = scan(gear, p, c->min, normal, c->mask_s);
	if (!r)
		r = scan(gear, p, normal, end, c->mask_l);
	if (r)
		return r;
	if (end == c->max || eof)
		return end;
	return 0;
}
