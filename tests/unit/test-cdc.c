/* test-cdc.c - unit tests of the content-defined chunker (lib/cdc.c).
 *
 * Covers: parameter validation of lb_cdc_init; the gear table being the
 * documented splitmix64 sequence (it is part of the store format);
 * determinism, including when the data is offered in arbitrary pieces as a
 * streaming caller does; every chunk within [min, max] (the last may be
 * shorter); the chunk stream covering the input exactly; the average chunk
 * size on random data; and stability: inserting or deleting one byte in
 * 100 MiB of random data changes at most two chunks.  Runs with the store's
 * default parameters and with a small setting that yields many chunks. */
#include "config.h"

#include "cdc.h"
#include "hash.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#define BIG_SIZE (100u << 20)

/* ---- helpers ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Incompressible pseudo-random bytes, reproducible from seed. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = splitmix64(&seed);
		memcpy(p + i, &v, 8);
	}
	uint64_t v = splitmix64(&seed);
	for (; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

struct chunk {
	uint32_t len;
	struct lb_id id;
};

struct chunklist {
	struct chunk *v;
	size_t n, cap;
};

static void list_push(struct chunklist *l, const uint8_t *data, size_t len)
{
	if (lb_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0) {
		fprintf(stderr, "out of memory\n");
		exit(99);
	}
	l->v[l->n].len = (uint32_t)len;
	lb_sha256(data, len, &l->v[l->n].id);
	l->n++;
}

static int chunk_eq(const struct chunk *a, const struct chunk *b)
{
	return a->len == b->len && lb_id_cmp(&a->id, &b->id) == 0;
}

static int lists_equal(const struct chunklist *a, const struct chunklist *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (!chunk_eq(&a->v[i], &b->v[i]))
			return 0;
	return 1;
}

/* Chunks a whole buffer the simple way: everything offered, eof set.
 * Returns 0, or -1 when lb_cdc_cut returned an impossible length. */
static int chunk_all(const struct lb_cdc *c, const uint8_t *data, size_t n, struct chunklist *out)
{
	memset(out, 0, sizeof(*out));
	size_t pos = 0;
	while (pos < n) {
		size_t cut = lb_cdc_cut(c, data + pos, n - pos, 1);
		if (cut == 0 || cut > n - pos)
			return -1;
		list_push(out, data + pos, cut);
		pos += cut;
	}
	return 0;
}

/* Chunks data as a streaming caller does: bytes arrive in pieces of random
 * size into a window and lb_cdc_cut is asked after every piece, with eof
 * only once the input is exhausted.  Every cut is hashed from the window
 * copy, so the list also proves that the copied stream is the input.
 * Returns 0, or -1 when the cutter broke its contract (0 although it was
 * offered max bytes or eof, or a length beyond what was offered). */
static int chunk_stream(const struct lb_cdc *c, const uint8_t *data, size_t n, uint64_t seed,
			struct chunklist *out)
{
	memset(out, 0, sizeof(*out));
	size_t maxpiece = c->max;
	size_t cap = 2 * (size_t)c->max + maxpiece;
	uint8_t *win = malloc(cap);
	size_t fed = 0, fill = 0, start = 0;
	int ret = 0;
	if (!win)
		exit(99);
	for (;;) {
		if (fed < n) {
			size_t piece = 1 + splitmix64(&seed) % maxpiece;
			piece = LB_MIN(piece, n - fed);
			piece = LB_MIN(piece, cap - fill);
			memcpy(win + fill, data + fed, piece);
			fill += piece;
			fed += piece;
		}
		int eof = fed == n;
		while (fill > start) {
			size_t avail = fill - start;
			size_t cut = lb_cdc_cut(c, win + start, avail, eof);
			if (cut > avail || (cut == 0 && (eof || avail >= c->max))) {
				ret = -1;
				goto out;
			}
			if (cut == 0)
				break;
			list_push(out, win + start, cut);
			start += cut;
		}
		memmove(win, win + start, fill - start);
		fill -= start;
		start = 0;
		if (eof && fill == 0)
			break;
	}
out:
	free(win);
	return ret;
}

/* Checks sizes: every chunk in [min, max] except the last, which is in
 * [1, max].  Returns the number of offending chunks. */
static size_t count_bad_sizes(const struct lb_cdc *c, const struct chunklist *l)
{
	size_t bad = 0;
	for (size_t i = 0; i < l->n; i++) {
		uint32_t len = l->v[i].len;
		int last = i + 1 == l->n;
		if (len == 0 || len > c->max || (!last && len < c->min))
			bad++;
	}
	return bad;
}

static uint64_t total_len(const struct chunklist *l)
{
	uint64_t t = 0;
	for (size_t i = 0; i < l->n; i++)
		t += l->v[i].len;
	return t;
}

/* Number of chunks of a and of b outside their common prefix and suffix. */
static void changed_chunks(const struct chunklist *a, const struct chunklist *b, size_t *ca, size_t *cb)
{
	size_t lim = LB_MIN(a->n, b->n);
	size_t p = 0;
	while (p < lim && chunk_eq(&a->v[p], &b->v[p]))
		p++;
	size_t s = 0;
	while (p + s < lim && chunk_eq(&a->v[a->n - 1 - s], &b->v[b->n - 1 - s]))
		s++;
	*ca = a->n - p - s;
	*cb = b->n - p - s;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_init(void)
{
	struct lb_cdc c;
	struct lb_store_params p;
	lb_store_params_default(&p);
	tap_ok(lb_cdc_init(&c, p.chunk_min, p.chunk_avg, p.chunk_max) == 0, "init accepts the store defaults");
	tap_ok(c.min == p.chunk_min && c.avg == p.chunk_avg && c.max == p.chunk_max,
	       "init records min/avg/max");
	tap_ok(lb_cdc_init(&c, 2048, 8192, 32768) == 0, "init accepts 2048/8192/32768");
	tap_ok(lb_cdc_init(&c, LB_CDC_MIN_MIN, 4096, LB_CDC_MAX_MAX) == 0, "init accepts the extreme bounds");

	tap_ok(lb_cdc_init(&c, 2048, 8000, 32768) == -EINVAL, "init rejects avg 8000 (not a power of two)");
	tap_ok(lb_cdc_init(&c, 2048, 12288, 32768) == -EINVAL, "init rejects avg 12288 (not a power of two)");
	tap_ok(lb_cdc_init(&c, 2048, 0, 32768) == -EINVAL, "init rejects avg 0");
	tap_ok(lb_cdc_init(&c, 8192, 8192, 32768) == -EINVAL, "init rejects min == avg");
	tap_ok(lb_cdc_init(&c, 16384, 8192, 32768) == -EINVAL, "init rejects min > avg");
	tap_ok(lb_cdc_init(&c, 2048, 8192, 8192) == -EINVAL, "init rejects max == avg");
	tap_ok(lb_cdc_init(&c, 2048, 8192, 4096) == -EINVAL, "init rejects max < avg");
	tap_ok(lb_cdc_init(&c, 256u << 10, 1u << 20, LB_CDC_MAX_MAX + 1) == -EINVAL,
	       "init rejects max of 16 MiB + 1");
	tap_ok(lb_cdc_init(&c, 256u << 10, 1u << 20, 32u << 20) == -EINVAL, "init rejects max of 32 MiB");
	tap_ok(lb_cdc_init(&c, LB_CDC_MIN_MIN - 1, 8192, 32768) == -EINVAL, "init rejects min below 1 KiB");
}

/* The chunker as doc/FORMAT.md 8 states it, a byte at a time: the cut
 * points are part of the format, so lb_cdc_cut, however it is written,
 * must find exactly these. */
static size_t cut_by_the_book(const struct lb_cdc *c, const uint8_t *p, size_t n, int eof)
{
	if (n <= c->min)
		return eof ? n : 0;
	size_t end = n < c->max ? n : c->max;
	const uint64_t *g = lb_cdc_gear();
	uint64_t h = 0;
	for (size_t k = c->min - 64; k < c->min; k++)
		h = (h << 1) + g[p[k]];
	for (size_t i = c->min; i < end; i++) {
		h = (h << 1) + g[p[i]];
		if (!(h & (i < c->avg ? c->mask_s : c->mask_l)))
			return i + 1;
	}
	return end == c->max || eof ? end : 0;
}

/* Text with long runs of one byte and random data, cut at every offset
 * parity and with the stream ending at odd and even lengths. */
static void test_by_the_book(uint32_t min, uint32_t avg, uint32_t max)
{
	struct lb_cdc c;
	lb_cdc_init(&c, min, avg, max);
	/* At least 16 MiB: enough cuts with small settings to catch a
	 * warm-up or a mask switch one byte off. */
	size_t n = LB_MAX((size_t)max * 24, (size_t)16 << 20);
	uint8_t *d = malloc(n);
	if (!d)
		exit(99);
	fill_random(d, n, 0xc0ffee + avg);
	for (size_t k = n / 3; k < n / 2; k++)
		d[k] = (uint8_t)" abcdefghijklmnopqrstuvwxyz\n"[d[k] % 28];
	memset(d + n / 2, 'x', (size_t)max * 2);
	size_t cuts = 0, diff = 0;
	for (size_t pos = 0; pos < n;) {
		for (size_t avail = 1; avail <= 3 && pos + (size_t)max + avail <= n; avail++)
			diff += lb_cdc_cut(&c, d + pos, (size_t)min + (size_t)avg / 2 + avail, avail & 1) !=
				cut_by_the_book(&c, d + pos, (size_t)min + (size_t)avg / 2 + avail, avail & 1);
		/* And a length anywhere from min + 1 to past max, either way. */
		size_t any = (size_t)min + 1 + (size_t)d[(pos * 7919) % n] * 65599 % ((size_t)max + 2000 - min);
		if (pos + any <= n)
			for (int eof = 0; eof <= 1; eof++)
				diff += lb_cdc_cut(&c, d + pos, any, eof) != cut_by_the_book(&c, d + pos, any, eof);
		size_t a = lb_cdc_cut(&c, d + pos, n - pos, 1), b = cut_by_the_book(&c, d + pos, n - pos, 1);
		diff += a != b;
		cuts++;
		pos += (a ? a : 1) + (cuts % 2); /* and from odd offsets */
	}
	tap_ok(diff == 0 && cuts > 20, "%u/%u/%u: lb_cdc_cut cuts where the byte-at-a-time chunker does (%zu cuts, %zu differ)",
	       min, avg, max, cuts, diff);
	free(d);
}

/* The gear table is part of the store format: splitmix64 from the seed
 * "lumbung!" (its ASCII bytes read as a big-endian integer). */
static void test_gear(void)
{
	const uint64_t *g = lb_cdc_gear();
	uint64_t seed = 0;
	const char *s = "lumbung!";
	for (int i = 0; i < 8; i++)
		seed = seed << 8 | (uint8_t)s[i];
	int same = 1;
	for (int i = 0; i < 256; i++)
		if (g[i] != splitmix64(&seed))
			same = 0;
	tap_ok(same, "gear table is splitmix64 seeded with \"lumbung!\"");
	int distinct = 1;
	for (int i = 0; i < 256; i++)
		for (int j = i + 1; j < 256; j++)
			if (g[i] == g[j])
				distinct = 0;
	tap_ok(distinct, "gear table entries are distinct");
}

static void test_edges(const struct lb_cdc *c, const char *tag)
{
	size_t n = 2 * (size_t)c->max;
	uint8_t *p = malloc(n);
	if (!p)
		exit(99);
	fill_random(p, n, 42);
	tap_ok(lb_cdc_cut(c, p, 0, 1) == 0, "%s: empty input at eof gives no chunk", tag);
	tap_ok(lb_cdc_cut(c, p, 1, 1) == 1, "%s: one byte at eof is one chunk", tag);
	tap_ok(lb_cdc_cut(c, p, c->min, 1) == c->min, "%s: min bytes at eof are one chunk", tag);
	tap_ok(lb_cdc_cut(c, p, c->min, 0) == 0, "%s: min bytes without eof need more data", tag);
	size_t cut = lb_cdc_cut(c, p, c->max, 0);
	tap_ok(cut > c->min && cut <= c->max, "%s: max bytes without eof always give a cut (%zu)", tag, cut);
	tap_ok(lb_cdc_cut(c, p, n, 0) == cut && lb_cdc_cut(c, p, n, 1) == cut,
	       "%s: more data or eof beyond max does not move the cut", tag);

	/* Constant input: the decision sees the same window everywhere, so
	 * every chunk but the last has the same length. */
	memset(p, 0, n);
	struct chunklist l;
	int r = chunk_all(c, p, n, &l);
	int same = r == 0 && l.n >= 2;
	for (size_t i = 1; same && i + 1 < l.n; i++)
		if (l.v[i].len != l.v[0].len)
			same = 0;
	tap_ok(same && total_len(&l) == n, "%s: zero-filled input cuts at one fixed length", tag);
	free(l.v);
	free(p);
}

static void test_params(const char *tag, uint32_t min, uint32_t avg, uint32_t max, const uint8_t *big,
			uint8_t *scratch)
{
	struct lb_cdc c, c2;
	if (lb_cdc_init(&c, min, avg, max) < 0 || lb_cdc_init(&c2, min, avg, max) < 0) {
		tap_ok(0, "%s: init", tag);
		return;
	}
	test_edges(&c, tag);

	struct chunklist a, again, other;
	int r = chunk_all(&c, big, BIG_SIZE, &a);
	tap_ok(r == 0, "%s: chunking 100 MiB returns valid cuts (%zu chunks)", tag, a.n);
	tap_ok(total_len(&a) == BIG_SIZE, "%s: chunk lengths add up to the input size", tag);
	size_t bad = count_bad_sizes(&c, &a);
	tap_ok(bad == 0, "%s: every chunk within [min, max], last may be shorter (%zu bad)", tag, bad);
	tap_ok(a.n >= BIG_SIZE / c.max, "%s: enough chunks for the tests below to mean something", tag);

	/* The average over random data, excluding the short last chunk. */
	double mean = a.n > 1 ? (double)(total_len(&a) - a.v[a.n - 1].len) / (double)(a.n - 1) : 0;
	tap_ok(mean >= c.avg / 2.0 && mean <= c.avg * 2.0, "%s: mean chunk %.0f within a factor 2 of avg %u",
	       tag, mean, c.avg);
	size_t at_max = 0;
	for (size_t i = 0; i < a.n; i++)
		at_max += a.v[i].len == c.max;
	tap_ok(at_max * 100 <= a.n, "%s: forced cuts at max are rare on random data (%zu of %zu)", tag,
	       at_max, a.n);

	r = chunk_all(&c2, big, BIG_SIZE, &again);
	tap_ok(r == 0 && lists_equal(&a, &again), "%s: chunking is deterministic", tag);
	free(again.v);

	/* Streaming in random pieces gives the same chunks (on a prefix, to
	 * keep the repeated rescans cheap). */
	size_t sn = LB_MIN((size_t)BIG_SIZE, 40 * (size_t)c.max);
	struct chunklist whole, streamed;
	r = chunk_all(&c, big, sn, &whole);
	int rs = chunk_stream(&c, big, sn, 7, &streamed);
	tap_ok(rs == 0, "%s: streaming caller: cutter keeps its contract", tag);
	tap_ok(r == 0 && rs == 0 && lists_equal(&whole, &streamed),
	       "%s: streaming in random pieces gives the same chunks (%zu)", tag, whole.n);
	free(streamed.v);
	rs = chunk_stream(&c, big, sn, 8, &streamed);
	tap_ok(rs == 0 && lists_equal(&whole, &streamed), "%s: ... and again with other piece sizes", tag);
	free(streamed.v);
	free(whole.v);

	/* Insert one byte at offset 1000. */
	const size_t ins = 1000;
	memcpy(scratch, big, ins);
	scratch[ins] = (uint8_t)(big[ins] ^ 0x5a);
	memcpy(scratch + ins + 1, big + ins, BIG_SIZE - ins);
	r = chunk_all(&c, scratch, BIG_SIZE + 1, &other);
	size_t ca, cb;
	changed_chunks(&a, &other, &ca, &cb);
	tap_ok(r == 0 && total_len(&other) == BIG_SIZE + 1, "%s: insertion: chunks cover the edited input", tag);
	tap_ok(ca >= 1 && ca <= 2 && cb >= 1 && cb <= 2,
	       "%s: insertion at 1000 changes at most 2 chunks (%zu old, %zu new of %zu)", tag, ca, cb, a.n);
	free(other.v);

	/* Delete one byte in the middle. */
	const size_t del = BIG_SIZE / 2 + 12345;
	memcpy(scratch, big, del);
	memcpy(scratch + del, big + del + 1, BIG_SIZE - del - 1);
	r = chunk_all(&c, scratch, BIG_SIZE - 1, &other);
	changed_chunks(&a, &other, &ca, &cb);
	tap_ok(r == 0 && total_len(&other) == BIG_SIZE - 1, "%s: deletion: chunks cover the edited input", tag);
	tap_ok(ca >= 1 && ca <= 2 && cb >= 1 && cb <= 2,
	       "%s: deletion in the middle changes at most 2 chunks (%zu old, %zu new of %zu)", tag, ca, cb,
	       a.n);
	free(other.v);

	/* Overwrite one byte: same length, so the chunks before it stay too. */
	memcpy(scratch, big, BIG_SIZE);
	scratch[BIG_SIZE / 3] ^= 1;
	r = chunk_all(&c, scratch, BIG_SIZE, &other);
	changed_chunks(&a, &other, &ca, &cb);
	tap_ok(r == 0 && ca >= 1 && ca <= 2 && cb >= 1 && cb <= 2,
	       "%s: flipping one byte changes at most 2 chunks (%zu old, %zu new)", tag, ca, cb);
	free(other.v);
	free(a.v);
}

int main(void)
{
	test_init();
	test_gear();
	test_by_the_book(1024, 2048, 4096);
	test_by_the_book(4096, 16384, 65536);
	test_by_the_book(2048, 8192, 32768);
	test_by_the_book(256u << 10, 1u << 20, 4u << 20);
	/* Bounds that are no powers of two: regions whose length leaves a
	 * tail after the lanes. */
	test_by_the_book(1500, 4096, 10007);
	test_by_the_book(1357, 65536, 200003);

	uint8_t *big = malloc(BIG_SIZE);
	uint8_t *scratch = malloc(BIG_SIZE + 1);
	if (!big || !scratch) {
		fprintf(stderr, "out of memory\n");
		return 99;
	}
	fill_random(big, BIG_SIZE, 0x1234567);

	struct lb_store_params p;
	lb_store_params_default(&p);
	test_params("default", p.chunk_min, p.chunk_avg, p.chunk_max, big, scratch);
	test_params("small", 2048, 8192, 32768, big, scratch);

	free(big);
	free(scratch);
	return tap_done();
}
