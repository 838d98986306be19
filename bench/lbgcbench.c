/* lbgcbench - what garbage collection costs at millions of chunks
 * (bench/README.md, "GC at scale").
 *
 *   lbgcbench populate STORE [--chunks N] [--snapshots S] [--per-file K] [--scatter]
 *	Creates STORE and fills it with N (default 5,000,000) distinct chunks of
 *	64 random bytes each, written straight through the store's blob path
 *	(so packs, index runs and sizes are real, only the chunks are small),
 *	then S (default 8) snapshots of files of K (default 256) chunks each.
 *	Snapshot i references a window of N/2 chunks starting at i*N/(2(S-1)):
 *	together they cover every chunk, and neighbours share most of theirs.
 *	Finally the two oldest snapshots are forgotten, which leaves the chunks
 *	only they held, N/(S-1) of them, as garbage.  Chunks are stored in id
 *	order (the garbage fills whole packs) or, with --scatter, interleaved
 *	(every pack holds some garbage).
 *
 *   lbgcbench gc STORE [--repack-below P] [--dry-run]
 *	Opens STORE and runs one collection, printing the time of each phase,
 *	the resident memory after opening (VmRSS), the peak while opening
 *	(VmHWM), and the peak during the collection (VmHWM again, after
 *	resetting it through /proc/self/clear_refs), in one JSON object.
 *
 * Run the two steps as separate processes so that the peak is the
 * collection's own (bench/run-gc.sh does). */
#include "config.h"

#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "store.h"
#include "store_internal.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PAYLOAD 64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Chunk j's content: a function of j alone, so ids never need storing. */
static void payload(uint64_t j, uint8_t *p)
{
	for (int k = 0; k < PAYLOAD / 8; k++) {
		uint64_t v = mix(j * 8 + (uint64_t)k + 0x9e3779b97f4a7c15ULL);
		memcpy(p + 8 * k, &v, 8);
	}
}

static void chunk_id(uint64_t j, struct lb_id *id)
{
	uint8_t p[PAYLOAD];
	payload(j, p);
	lb_sha256(p, PAYLOAD, id);
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

static int die(const char *what, int r)
{
	fprintf(stderr, "lbgcbench: %s: %s %s\n", what, strerror(-r), lb_error_detail());
	return 1;
}

static int populate(const char *path, uint64_t n, unsigned nsnap, unsigned per, int scatter)
{
	struct lb_store_params p;
	lb_store_params_default(&p);
	int r = lb_store_create(path, &p);
	struct lb_store *s;
	if (r < 0 || (r = lb_store_open(path, 0, &s)) < 0)
		return die("create", r);
	double t0 = now_s();
	/* Scattered: pack order steps through the chunks with a stride, so
	 * each pack gets chunks from the whole range. */
	uint64_t stride = scatter ? 7919 : 1;
	for (uint64_t k = 0; k < n; k++) {
		uint64_t j = scatter ? (k * stride) % n : k;
		uint8_t buf[PAYLOAD];
		struct lb_id id;
		payload(j, buf);
		lb_sha256(buf, PAYLOAD, &id);
		int is_new;
		uint32_t stored;
		r = lb_store_put_blob(s, LB_BLOB_DATA, &id, buf, PAYLOAD, &is_new, &stored);
		if (r < 0)
			return die("put", r);
		if ((k + 1) % (1u << 20) == 0 && (r = lb_store_flush(s)) < 0)
			return die("flush", r);
	}
	if ((r = lb_store_flush(s)) < 0)
		return die("flush", r);
	double t1 = now_s();
	uint64_t window = n / 2, step = nsnap > 1 ? n / (2 * (nsnap - 1)) : 0;
	struct lb_chunkref *refs = calloc(per, sizeof(*refs));
	struct lb_snapshot **snaps = calloc(nsnap, sizeof(*snaps));
	for (unsigned i = 0; i < nsnap; i++) {
		struct lb_backup *b;
		char ds[32];
		snprintf(ds, sizeof(ds), "s%u", i);
		if ((r = lb_backup_begin(s, "opd", ds, "bench", &b)) < 0)
			return die("begin", r);
		uint64_t start = i * step, end = LB_MIN(n, start + window);
		for (uint64_t j = start, f = 0; j < end; f++) {
			size_t m = 0;
			for (; m < per && j < end; m++, j++) {
				chunk_id(j, &refs[m].id);
				refs[m].size = PAYLOAD;
			}
			char name[48];
			snprintf(name, sizeof(name), "d%03llu/f%06llu", (unsigned long long)(f / 1000),
				 (unsigned long long)f);
			struct lb_entry e = { .path = name, .type = LB_FT_REG, .mode = 0640,
					      .size = m * PAYLOAD, .chunks = refs, .nchunks = m };
			if ((r = lb_backup_add(b, &e)) < 0)
				return die("add", r);
		}
		if ((r = lb_backup_commit(b, &snaps[i])) < 0)
			return die("commit", r);
		lb_backup_free(b);
	}
	double t2 = now_s();
	for (unsigned i = 0; i < 2 && i < nsnap; i++)
		if ((r = lb_store_forget(s, snaps[i])) < 0)
			return die("forget", r);
	printf("{\"chunks\":%llu,\"snapshots\":%u,\"references\":%llu,\"garbage_chunks\":%llu,"
	       "\"put_s\":%.2f,\"snapshots_s\":%.2f,\"scatter\":%s}\n",
	       (unsigned long long)n, nsnap, (unsigned long long)(nsnap * window),
	       (unsigned long long)(2 * step), t1 - t0, t2 - t1, scatter ? "true" : "false");
	for (unsigned i = 0; i < nsnap; i++)
		lb_snapshot_free(snaps[i]);
	free(snaps);
	free(refs);
	lb_store_close(s);
	return 0;
}

static int collect(const char *path, unsigned repack_below, int dry)
{
	double t0 = now_s();
	struct lb_store *s;
	int r = lb_store_open(path, 0, &s);
	if (r < 0)
		return die("open", r);
	double t1 = now_s();
	long rss_open = status_kib("VmRSS"), hwm_open = status_kib("VmHWM");
	/* Reset the peak, so that VmHWM at the end is the collection's own
	 * (opening has its own, higher transient: proc(5), clear_refs). */
	FILE *cr = fopen("/proc/self/clear_refs", "w");
	int reset = cr && fputs("5", cr) >= 0;
	if (cr && fclose(cr) != 0)
		reset = 0;
	uint64_t index_bytes = lb_index_memory(lb_store_index(s));
	struct lb_gc_options o = { .dry_run = dry, .repack_below = repack_below };
	struct lb_gc_stats st;
	r = lb_store_gc(s, &o, &st);
	double t2 = now_s();
	if (r < 0)
		return die("gc", r);
	long hwm = status_kib("VmHWM");
	printf("{\"open_s\":%.2f,\"gc_s\":%.2f,\"mark_s\":%.2f,\"sweep_s\":%.2f,\"rss_after_open_kib\":%ld,"
	       "\"open_peak_rss_kib\":%ld,\"peak_reset\":%s,\"peak_rss_kib\":%ld,\"index_bytes\":%llu,\"chunks_live\":%llu,\"chunks_dead\":%llu,\"packs\":%llu,"
	       "\"packs_deleted\":%llu,\"packs_repacked\":%llu,\"bytes_freed\":%llu,\"bytes_written\":%llu,"
	       "\"trees\":%llu}\n",
	       t1 - t0, t2 - t1, st.mark_ns / 1e9, st.sweep_ns / 1e9, rss_open, hwm_open, reset ? "true" : "false", hwm,
	       (unsigned long long)index_bytes, (unsigned long long)st.chunks_live,
	       (unsigned long long)st.chunks_dead, (unsigned long long)st.packs,
	       (unsigned long long)st.packs_deleted, (unsigned long long)st.packs_repacked,
	       (unsigned long long)st.bytes_freed, (unsigned long long)st.bytes_written,
	       (unsigned long long)st.trees);
	lb_store_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: lbgcbench populate STORE [--chunks N] [--snapshots S] [--per-file K] [--scatter]\n"
				"       lbgcbench gc STORE [--repack-below P] [--dry-run]\n");
		return 2;
	}
	uint64_t n = 5000000;
	unsigned nsnap = 8, per = 256, repack = 50;
	int scatter = 0, dry = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--chunks") && i + 1 < argc)
			n = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--snapshots") && i + 1 < argc)
			nsnap = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--per-file") && i + 1 < argc)
			per = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--repack-below") && i + 1 < argc)
			repack = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--scatter"))
			scatter = 1;
		else if (!strcmp(argv[i], "--dry-run"))
			dry = 1;
		else {
			fprintf(stderr, "lbgcbench: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (nsnap < 3 || per < 1 || n < 1000) {
		fprintf(stderr, "lbgcbench: need --snapshots >= 3, --per-file >= 1, --chunks >= 1000\n");
		return 2;
	}
	if (!strcmp(argv[1], "populate"))
		return populate(argv[2], n, nsnap, per, scatter);
	if (!strcmp(argv[1], "gc"))
		return collect(argv[2], repack, dry);
	fprintf(stderr, "lbgcbench: unknown command %s\n", argv[1]);
	return 2;
}
