/* test-util.c - lb_bulk_alloc: the backup's batch buffers; keeps and
 * thread buffers: thread state that outlives its thread (pool.h). */
#include "config.h"
#include "tap.h"
#include "crc32c.h"
#include "ingest.h"
#include "pool.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

static int destroyed;
static void count_destroy(void *p)
{
	free(p);
	destroyed++;
}

/* A keep holds LB_KEEP_SLOTS, hands back the last given first, destroys
 * what does not fit, and drains. */
static void test_keep(void)
{
	static struct lb_keep k = LB_KEEP_INIT(count_destroy);
	int *v[LB_KEEP_SLOTS + 2];
	for (int i = 0; i < LB_KEEP_SLOTS + 2; i++) {
		v[i] = malloc(sizeof(int));
		*v[i] = i;
		lb_keep_give(&k, v[i]);
	}
	tap_ok(destroyed == 2, "a full keep destroys what is given beyond its %d slots (destroyed %d)",
	       LB_KEEP_SLOTS, destroyed);
	int *top = lb_keep_take(&k);
	tap_ok(top == v[LB_KEEP_SLOTS - 1], "take hands back the state given last");
	free(top);
	lb_keep_drain_all();
	tap_ok(destroyed == 2 + LB_KEEP_SLOTS - 1, "drain destroys every state kept (destroyed %d)", destroyed);
	tap_ok(lb_keep_take(&k) == NULL, "and leaves the keep empty");
	lb_keep_give(&k, NULL);
	tap_ok(lb_keep_take(&k) == NULL, "giving NULL keeps nothing");
}

static struct lb_thread_buf tb = LB_THREAD_BUF_INIT;

struct tb_arg {
	size_t n;
	uint8_t fill;    /* written over the buffer, when not 0 */
	uint8_t *got;    /* the buffer */
	uint8_t first;   /* its first byte as found */
	pthread_barrier_t *both; /* when set: hold the buffer until the other thread has its own */
};

static void *tb_thread(void *arg)
{
	struct tb_arg *a = arg;
	a->got = lb_thread_buf(&tb, a->n);
	if (a->got) {
		a->first = a->got[0];
		/* The same thread asking again gets the same buffer. */
		if (lb_thread_buf(&tb, a->n) != a->got)
			a->got = NULL;
		else if (a->fill)
			memset(a->got, a->fill, a->n);
	}
	if (a->both)
		pthread_barrier_wait(a->both);
	return NULL;
}

static void run_thread(struct tb_arg *a)
{
	pthread_t t;
	if (pthread_create(&t, NULL, tb_thread, a) == 0)
		pthread_join(t, NULL);
}

/* A thread's buffer goes, contents and all, to the next thread; two live
 * threads never share one. */
static void test_thread_buf(void)
{
	struct tb_arg a = { .n = 100000, .fill = 0x5a };
	run_thread(&a);
	uint8_t *first = a.got;
	struct tb_arg b = { .n = 1000 };
	run_thread(&b);
	tap_ok(first && b.got == first && b.first == 0x5a,
	       "a thread that ends leaves its buffer, warm, to the next thread");
	pthread_barrier_t both;
	pthread_barrier_init(&both, NULL, 2);
	struct tb_arg c = { .n = 4096, .fill = 1, .both = &both }, d = { .n = 4096, .fill = 2, .both = &both };
	pthread_t tc, td;
	pthread_create(&tc, NULL, tb_thread, &c);
	pthread_create(&td, NULL, tb_thread, &d);
	pthread_join(tc, NULL);
	pthread_join(td, NULL);
	pthread_barrier_destroy(&both);
	tap_ok(c.got && d.got && c.got != d.got, "two threads alive at once have buffers of their own");
	struct tb_arg e = { .n = (size_t)3 << 20, .fill = 7 };
	run_thread(&e);
	tap_ok(e.got != NULL, "a kept buffer grows to what the next thread asks (and is written throughout)");
	tap_ok(tb.keep.n > 0, "ended threads' buffers wait in the keep (%u)", tb.keep.n);
	lb_keep_drain_all();
	tap_ok(lb_keep_take(&tb.keep) == NULL, "drain frees the thread buffers kept");
}

/* ---- lb_job_wait_also ---- */

struct also_state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started;       /* the blocker runs, in a worker */
	size_t also_done;  /* items of the second job finished */
	int saw_all;       /* the blocker saw them all finished before its deadline */
	pthread_t waiter;
	size_t by_waiter;  /* second job's items run by the waiting thread */
};

#define ALSO_ITEMS 3

/* The first job's one item: held by a worker until the second job is done,
 * or for 10 seconds if no one else works on it. */
static void also_blocker(void *arg, size_t i)
{
	(void)i;
	struct also_state *st = arg;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&st->mu);
	st->started = 1;
	pthread_cond_broadcast(&st->cv);
	while (st->also_done < ALSO_ITEMS && pthread_cond_timedwait(&st->cv, &st->mu, &until) == 0)
		;
	st->saw_all = st->also_done == ALSO_ITEMS;
	pthread_mutex_unlock(&st->mu);
}

static void also_item(void *arg, size_t i)
{
	(void)i;
	struct also_state *st = arg;
	pthread_mutex_lock(&st->mu);
	st->also_done++;
	st->by_waiter += pthread_equal(pthread_self(), st->waiter) != 0;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

/* A thread waiting for a job whose last item another thread holds works on
 * the job sent after it instead of sleeping: that is what keeps both cores
 * of a backup busy between batches (store.c, switch_batch).  With plain
 * waiting the blocker would hold its item until its deadline. */
static void test_wait_also(void)
{
	struct lb_pool *p;
	if (!tap_ok(lb_pool_new(1, &p) == 0, "a pool of one worker"))
		return;
	struct also_state st = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
				 .waiter = pthread_self() };
	struct lb_job *first, *second;
	int ok = lb_job_submit(p, 1, also_blocker, &st, &first) == 0;
	/* Wait until the worker holds the first job's only item. */
	pthread_mutex_lock(&st.mu);
	while (ok && !st.started)
		pthread_cond_wait(&st.cv, &st.mu);
	pthread_mutex_unlock(&st.mu);
	ok = ok && lb_job_submit(p, ALSO_ITEMS, also_item, &st, &second) == 0;
	if (!tap_ok(ok, "two jobs submitted, the first's item running in the worker"))
		return;
	lb_job_wait_also(p, first, second);
	tap_ok(st.saw_all && st.by_waiter == ALSO_ITEMS,
	       "the waiting thread ran the second job's %d items while the first finished (ran %zu, first saw them: %d)",
	       ALSO_ITEMS, st.by_waiter, st.saw_all);
	lb_job_wait(p, second);
	tap_ok(st.also_done == ALSO_ITEMS, "each of the second job's items ran once (%zu)", st.also_done);
	lb_pool_free(p);
}

/* CRC-32C a bit at a time, as doc/FORMAT.md 2.3 defines it. */
static uint32_t crc_by_the_book(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* lb_crc32c runs three streams over blocks of 4 KiB and joins them: every
 * length around one, two and more times three blocks, from odd addresses,
 * and continued across splits, gives what the bitwise CRC does. */
static void test_crc32c(void)
{
	tap_ok(lb_crc32c(0, "123456789", 9) == 0xE3069283u, "CRC-32C of \"123456789\" is e3069283");
	size_t n = 200000;
	uint8_t *d = malloc(n + 1);
	if (!d)
		exit(99);
	uint64_t x = 88172645463325252ULL;
	for (size_t i = 0; i <= n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		d[i] = (uint8_t)x;
	}
	static const size_t lens[] = { 0, 1, 7, 8, 4095, 12287, 12288, 12289, 12295, 24575, 24576, 24583, 36864,
				       65536, 123457, 199999 };
	int same = 1, split = 1;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (int off = 0; off <= 1; off++) {
			uint32_t want = crc_by_the_book(0, d + off, lens[i]);
			same &= lb_crc32c(0, d + off, lens[i]) == want;
			for (size_t cut = 1; cut < lens[i]; cut += lens[i] / 5 + 1)
				split &= lb_crc32c(lb_crc32c(0, d + off, cut), d + off + cut, lens[i] - cut) == want;
		}
	tap_ok(same, "lb_crc32c matches the bitwise CRC at every length and alignment tried");
	tap_ok(split, "and continued across any split");
	free(d);
}

int main(void)
{
	test_crc32c();
	test_time_ns();
	test_wait_also();
	test_keep();
	test_thread_buf();
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
