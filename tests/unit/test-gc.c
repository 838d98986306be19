/* test-gc.c - unit tests of garbage collection (lib/gc.c, the GC half of
 * lib/index.c).
 *
 * Covers: packs holding only a forgotten snapshot's chunks are deleted and
 * the space is counted; packs mixing live and dead chunks are repacked and
 * their live chunks stay readable; a dry run changes nothing; the result
 * survives closing and reopening the store; a second collection finds
 * nothing; a collection refuses to delete anything when a snapshot
 * references chunks the index does not hold; a backup that began before the
 * collection and deduplicated against garbage is waited for and restores
 * bit-exact; and backups, forgets and collections running at once, after
 * which every retained snapshot restores bit-exact and check (including its
 * recount of charged usage) is clean. */
#include "config.h"

#include "cdc.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"
#include "store_internal.h"
#include "util.h"

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define FILE_SIZE (96u << 10)

static char topdir[256], storedir[300];

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A file's content is a function of its seed: random, so that every file
 * has chunks of its own. */
static uint8_t *file_data(uint64_t seed, size_t n)
{
	uint8_t *p = malloc(n);
	if (!p)
		exit(99);
	uint64_t v = 0, x = seed * 7919 + 1;
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			v = splitmix64(&x);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
	return p;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* Backs up files named f<seed> holding file_data(seed). */
static int backup(struct lb_store *s, const char *dataset, const uint64_t *seeds, size_t n,
		  struct lb_snapshot **out)
{
	struct lb_backup *b;
	int r = lb_backup_begin(s, "opd", dataset, "host", &b);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char path[64];
		snprintf(path, sizeof(path), "f%llu", (unsigned long long)seeds[i]);
		struct lb_entry e = { .path = path, .type = LB_FT_REG, .mode = 0640, .size = FILE_SIZE };
		uint8_t *d = file_data(seeds[i], FILE_SIZE);
		r = lb_backup_file_begin(b, &e);
		if (r == 0)
			r = lb_backup_file_write(b, d, FILE_SIZE);
		if (r == 0)
			r = lb_backup_file_end(b);
		free(d);
	}
	if (r == 0)
		r = lb_backup_commit(b, out);
	lb_backup_free(b);
	return r;
}

struct sinkbuf {
	uint8_t *p;
	size_t len, cap;
};

static int sink(void *arg, const void *data, size_t len)
{
	struct sinkbuf *sb = arg;
	if (lb_grow(&sb->p, &sb->cap, sb->len + len, 1) < 0)
		return -ENOMEM;
	memcpy(sb->p + sb->len, data, len);
	sb->len += len;
	return 0;
}

/* 1 when every file of the snapshot reads back as file_data(seed). */
static int restores(struct lb_store *s, const struct lb_snapshot *snap, const uint64_t *seeds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char path[64];
		snprintf(path, sizeof(path), "f%llu", (unsigned long long)seeds[i]);
		struct lb_entry e;
		int lr = lb_store_lookup(s, snap, path, &e);
		if (lr != 1) {
			tap_diag("%s: lookup returned %d (%s)", path, lr, lr < 0 ? lb_error_detail() : "absent");
			return 0;
		}
		struct sinkbuf sb = { 0 };
		int r = lb_store_read_file(s, &e, sink, &sb);
		lb_entry_clear(&e);
		uint8_t *want = file_data(seeds[i], FILE_SIZE);
		int ok = r == 0 && sb.len == FILE_SIZE && memcmp(sb.p, want, FILE_SIZE) == 0;
		if (!ok)
			tap_diag("%s: read returned %d (%s), %zu bytes", path, r, r ? lb_error_detail() : "", sb.len);
		free(want);
		free(sb.p);
		if (!ok)
			return 0;
	}
	return 1;
}

static void no_problem(void *arg, const char *kind, const char *what)
{
	(void)arg;
	tap_diag("check: %s: %s", kind, what);
}

static int check_clean(struct lb_store *s)
{
	struct lb_check_result res;
	int r = lb_store_check(s, 1, no_problem, NULL, &res);
	return r == 0 && res.errors == 0;
}

/* Number and total size of the pack files in the store directory. */
static size_t pack_files(uint64_t *bytes)
{
	size_t n = 0;
	uint64_t sum = 0;
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/packs", storedir);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char sub[700];
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		DIR *d2 = opendir(sub);
		struct dirent *f;
		while (d2 && (f = readdir(d2))) {
			if (f->d_name[0] == '.')
				continue;
			char path[1000];
			struct stat st;
			snprintf(path, sizeof(path), "%s/%s", sub, f->d_name);
			if (stat(path, &st) == 0) {
				n++;
				sum += (uint64_t)st.st_size;
			}
		}
		if (d2)
			closedir(d2);
	}
	if (d)
		closedir(d);
	if (bytes)
		*bytes = sum;
	return n;
}

/* Whether the index still finds the first chunk of file_data(seed). */
static int chunk_known(struct lb_store *s, uint64_t seed)
{
	uint8_t *d = file_data(seed, FILE_SIZE);
	const struct lb_store_params *p = lb_store_get_params(s);
	struct lb_cdc cdc;
	lb_cdc_init(&cdc, p->chunk_min, p->chunk_avg, p->chunk_max);
	size_t len = lb_cdc_cut(&cdc, d, FILE_SIZE, 1);
	struct lb_id id;
	lb_sha256(d, len, &id);
	free(d);
	struct lb_pack_id pid;
	struct lb_pack_entry e;
	return lb_index_lookup(lb_store_index(s), &id, &pid, &e);
}

static struct lb_store *open_store(void)
{
	struct lb_store *s;
	int r = lb_store_open(storedir, 2, &s);
	if (r < 0) {
		fprintf(stderr, "open: %s %s\n", strerror(-r), lb_error_detail());
		exit(99);
	}
	return s;
}

static void new_store(void)
{
	rm_rf(storedir);
	struct lb_store_params p;
	lb_store_params_default(&p);
	p.chunk_min = 4096;
	p.chunk_avg = 16384;
	p.chunk_max = 65536;
	p.pack_size = 1u << 20;
	if (lb_store_create(storedir, &p) < 0)
		exit(99);
}

/* ---- deleting and repacking ------------------------------------------------ */

static void test_delete_and_repack(void)
{
	new_store();
	struct lb_store *s = open_store();
	uint64_t a[24], b[24], c[8];
	for (int i = 0; i < 24; i++) {
		a[i] = 100 + i;
		b[i] = 200 + i;
	}
	/* c shares half of its files with a: a's packs end up half live. */
	for (int i = 0; i < 8; i++)
		c[i] = 100 + 3 * i;
	struct lb_snapshot *sa, *sb, *sc;
	int r = backup(s, "a", a, 24, &sa);
	r = r ? r : backup(s, "b", b, 24, &sb);
	r = r ? r : backup(s, "c", c, 8, &sc);
	tap_ok(r == 0, "three backups");
	if (r)
		exit(1);
	uint64_t before_bytes, after_bytes;
	size_t before = pack_files(&before_bytes);

	/* Nothing is garbage yet. */
	struct lb_gc_options o = { .repack_below = 50 };
	struct lb_gc_stats st;
	r = lb_store_gc(s, &o, &st);
	tap_ok(r == 0 && st.chunks_dead == 0 && st.packs_deleted == 0 && st.packs_repacked == 0 &&
		       st.bytes_freed == 0 && st.snapshots == 3 && st.chunks_live > 0,
	       "a collection of a store without garbage changes nothing (r %d, dead %llu)", r,
	       (unsigned long long)st.chunks_dead);
	tap_ok(pack_files(NULL) == before, "no pack deleted");

	r = lb_store_forget(s, sa);
	tap_ok(r == 0, "forget a");

	/* A dry run counts and changes nothing. */
	struct lb_gc_options dry = { .dry_run = 1, .repack_below = 50 };
	r = lb_store_gc(s, &dry, &st);
	tap_ok(r == 0 && st.chunks_dead > 0 && st.bytes_freed > 0, "dry run finds garbage (%llu chunks, %llu bytes)",
	       (unsigned long long)st.chunks_dead, (unsigned long long)st.bytes_freed);
	uint64_t dry_freed = st.bytes_freed;
	tap_ok(pack_files(NULL) == before && chunk_known(s, 101), "dry run deleted nothing");

	r = lb_store_gc(s, &o, &st);
	tap_ok(r == 0, "collection after forget (r %d: %s)", r, r ? lb_error_detail() : "");
	tap_ok(st.packs_deleted + st.packs_repacked > 0 && st.chunks_dead > 0,
	       "packs deleted (%llu) or repacked (%llu)", (unsigned long long)st.packs_deleted,
	       (unsigned long long)st.packs_repacked);
	tap_ok(st.bytes_freed == dry_freed, "freed what the dry run said (%llu, %llu)",
	       (unsigned long long)st.bytes_freed, (unsigned long long)dry_freed);
	size_t after = pack_files(&after_bytes);
	tap_ok(after_bytes + st.bytes_freed == before_bytes + st.bytes_written,
	       "pack bytes on disk fell by freed - written (%llu -> %llu)", (unsigned long long)before_bytes,
	       (unsigned long long)after_bytes);
	tap_ok(after < before, "fewer packs (%zu -> %zu)", before, after);
	tap_ok(!chunk_known(s, 101) && chunk_known(s, 100) && chunk_known(s, 200),
	       "a's own chunks are gone, shared and b's chunks stay");
	tap_ok(restores(s, sb, b, 24) && restores(s, sc, c, 8), "b and c restore bit-exact");
	tap_ok(check_clean(s), "check --read-data is clean after the collection");

	/* Everything left is live now (repack took the half-empty packs). */
	r = lb_store_gc(s, &o, &st);
	tap_ok(r == 0 && st.chunks_dead == 0 && st.packs_deleted == 0 && st.packs_repacked == 0,
	       "a second collection finds nothing");
	lb_store_close(s);

	s = open_store();
	tap_ok(restores(s, sb, b, 24) && restores(s, sc, c, 8) && !chunk_known(s, 101),
	       "after reopening: b and c restore, a's chunks stay gone");
	tap_ok(check_clean(s), "check is clean after reopening");

	/* Repacking: forget b, keep c; with repack_below 100 every pack with
	 * any garbage is rewritten. */
	r = lb_store_forget(s, sb);
	struct lb_gc_options all = { .repack_below = 100 };
	r = r ? r : lb_store_gc(s, &all, &st);
	tap_ok(r == 0 && st.chunks_dead > 0, "collection after forgetting b");
	tap_ok(restores(s, sc, c, 8) && check_clean(s), "c restores and check is clean");
	r = lb_store_gc(s, &all, &st);
	tap_ok(r == 0 && st.chunks_dead == 0 && st.packs_repacked == 0, "nothing left to repack");
	lb_store_close(s);
	lb_snapshot_free(sa);
	lb_snapshot_free(sb);
	lb_snapshot_free(sc);
}

/* A pack with live and dead chunks is rewritten under the threshold and
 * left alone above it. */
static void test_repack_threshold(void)
{
	new_store();
	struct lb_store *s = open_store();
	uint64_t a[10], keep[2] = { 500, 504 };
	for (int i = 0; i < 10; i++)
		a[i] = 500 + i;
	struct lb_snapshot *sa, *sk;
	int r = backup(s, "a", a, 10, &sa);
	r = r ? r : backup(s, "k", keep, 2, &sk);
	r = r ? r : lb_store_forget(s, sa);
	tap_ok(r == 0, "a pack, then all but two of its files forgotten");
	struct lb_gc_options none = { .repack_below = 0 };
	struct lb_gc_stats st;
	r = lb_store_gc(s, &none, &st);
	tap_ok(r == 0 && st.packs_repacked == 0 && st.bytes_dead_left > 0,
	       "repack_below 0: the garbage stays in its pack (%llu bytes)", (unsigned long long)st.bytes_dead_left);
	tap_ok(!chunk_known(s, 501) && chunk_known(s, 504), "but the dead chunks left the index");
	tap_ok(restores(s, sk, keep, 2) && check_clean(s), "k restores and check is clean");
	lb_store_close(s);
	lb_snapshot_free(sa);
	lb_snapshot_free(sk);
}

/* After a collection memory holds the base runs filtered, the disk one
 * merged run: later merges must cover that run too, or it would come back
 * at the next open beside the merged one. */
static size_t index_files(void)
{
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/index", storedir);
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void test_runs_after_collection(void)
{
	new_store();
	struct lb_store *s = open_store();
	struct lb_snapshot *snaps[14];
	uint64_t seeds[14][2];
	int r = 0;
	for (int i = 0; i < 4 && r == 0; i++) {
		seeds[i][0] = 900 + (uint64_t)i;
		seeds[i][1] = 950 + (uint64_t)i;
		r = backup(s, "x", seeds[i], 2, &snaps[i]);
	}
	r = r ? r : lb_store_forget(s, snaps[0]);
	struct lb_gc_options o = { .repack_below = 50 };
	struct lb_gc_stats st;
	size_t runs_before = index_files();
	r = r ? r : lb_store_gc(s, &o, &st);
	tap_ok(r == 0 && runs_before > 1 && index_files() == 1,
	       "a collection over %zu runs leaves one merged run on disk (%zu)", runs_before, index_files());
	/* A second collection before any merge: its run must cover the first
	 * one's, whose parts memory held, or that stale run (naming the packs
	 * deleted now) would come back at the next open. */
	r = r ? r : lb_store_forget(s, snaps[1]);
	r = r ? r : lb_store_gc(s, &o, &st);
	tap_ok(r == 0 && st.chunks_dead > 0 && index_files() == 1, "a second collection, again one run on disk (%zu)",
	       index_files());
	lb_store_close(s);
	s = open_store();
	tap_ok(restores(s, snaps[2], seeds[2], 2) && !chunk_known(s, 901) && check_clean(s),
	       "reopened after two collections: what stays restores, what went is gone, check is clean");
	/* Enough commits to make the index merge its runs again. */
	for (int i = 4; i < 14 && r == 0; i++) {
		seeds[i][0] = 900 + (uint64_t)i;
		seeds[i][1] = 950 + (uint64_t)i;
		r = backup(s, "x", seeds[i], 2, &snaps[i]);
	}
	tap_ok(r == 0 && index_files() < 10, "ten more backups; the runs were merged (%zu files)", index_files());
	lb_store_close(s);
	s = open_store();
	int ok = 1;
	for (int i = 2; i < 14; i++)
		ok = ok && restores(s, snaps[i], seeds[i], 2);
	tap_ok(ok && !chunk_known(s, 900), "after reopening every snapshot restores, the collected chunk stays gone");
	tap_ok(check_clean(s), "check is clean");
	lb_store_close(s);
	for (int i = 0; i < 14; i++)
		lb_snapshot_free(snaps[i]);
}

/* ---- refusing -------------------------------------------------------------- */

static void test_refuses_unknown_references(void)
{
	new_store();
	struct lb_store *s = open_store();
	uint64_t a[4] = { 700, 701, 702, 703 };
	struct lb_snapshot *sa;
	int r = backup(s, "a", a, 4, &sa);
	lb_snapshot_free(sa);
	lb_store_close(s);
	/* Lose the index: the snapshot now references chunks it does not hold. */
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/index", storedir);
	rm_rf(dir);
	s = open_store();
	size_t before = pack_files(NULL);
	struct lb_gc_options o = { .repack_below = 50 };
	struct lb_gc_stats st;
	r = lb_store_gc(s, &o, &st);
	tap_ok(r == -EBADMSG && strstr(lb_error_detail(), "nothing was deleted"),
	       "collection refuses when the index lacks referenced chunks (%d: %s)", r, lb_error_detail());
	tap_ok(pack_files(NULL) == before && before > 0, "and deletes no pack (%zu)", before);
	lb_store_close(s);
}

/* ---- a backup older than the collection ------------------------------------ */

struct gc_thread {
	struct lb_store *s;
	struct lb_gc_options o;
	struct lb_gc_stats st;
	int r;
};

static void *gc_main(void *arg)
{
	struct gc_thread *g = arg;
	g->r = lb_store_gc(g->s, &g->o, &g->st);
	return NULL;
}

static void test_waits_for_older_backup(void)
{
	new_store();
	struct lb_store *s = open_store();
	uint64_t a[4] = { 800, 801, 802, 803 };
	struct lb_snapshot *sa;
	int r = backup(s, "a", a, 4, &sa);
	r = r ? r : lb_store_forget(s, sa);
	lb_snapshot_free(sa);
	/* A backup begins and deduplicates against a's chunks, now garbage. */
	struct lb_backup *b;
	r = r ? r : lb_backup_begin(s, "opd", "late", "host", &b);
	uint8_t *d = file_data(801, FILE_SIZE);
	char name[] = "f801";
	struct lb_entry e = { .path = name, .type = LB_FT_REG, .mode = 0640, .size = FILE_SIZE };
	r = r ? r : lb_backup_file_begin(b, &e);
	r = r ? r : lb_backup_file_write(b, d, FILE_SIZE);
	r = r ? r : lb_backup_file_end(b);
	r = r ? r : lb_backup_settle(b);
	free(d);
	tap_ok(r == 0, "a backup deduplicated against garbage before the collection");
	struct gc_thread g = { .s = s, .o = { .repack_below = 50 } };
	pthread_t t;
	pthread_create(&t, NULL, gc_main, &g);
	/* Wait (for a state, not a time) until the collection counts the
	 * backup as older than itself. */
	for (;;) {
		pthread_mutex_lock(&s->mu);
		int waiting = s->bk_old > 0;
		pthread_mutex_unlock(&s->mu);
		if (waiting)
			break;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	struct lb_snapshot *late;
	r = lb_backup_commit(b, &late);
	lb_backup_free(b);
	pthread_join(t, NULL);
	tap_ok(r == 0 && g.r == 0 && g.st.backups_waited == 1, "the collection waited for it (r %d, gc %d, waited %llu)",
	       r, g.r, (unsigned long long)g.st.backups_waited);
	uint64_t seeds[1] = { 801 };
	tap_ok(g.st.chunks_dead > 0 && restores(s, late, seeds, 1),
	       "it restores bit-exact though the rest of a was collected");
	tap_ok(check_clean(s), "check is clean");
	lb_snapshot_free(late);
	lb_store_close(s);
}

/* ---- everything at once ----------------------------------------------------- */

#define ROUNDS 24
#define POOL 10
#define PER 4

struct kept {
	struct lb_snapshot *snap;
	uint64_t seeds[PER];
	int gone;
};

struct stress {
	struct lb_store *s;
	struct kept k[ROUNDS];
	int done, failed;
	pthread_mutex_t mu;
	uint64_t gcs, dead;
};

static void *backups_main(void *arg)
{
	struct stress *x = arg;
	uint64_t rnd = 42;
	for (int i = 0; i < ROUNDS && !x->failed; i++) {
		struct kept *k = &x->k[i];
		/* Files drawn from a small pool, so that backups keep
		 * deduplicating against chunks that forgets made garbage. */
		for (int j = 0; j < PER; j++)
			k->seeds[j] = 1000 + (splitmix64(&rnd) % POOL) * 10 + (uint64_t)j;
		char ds[16];
		snprintf(ds, sizeof(ds), "d%d", i);
		int r = backup(x->s, ds, k->seeds, PER, &k->snap);
		if (r < 0) {
			tap_diag("backup %d: %s %s", i, strerror(-r), lb_error_detail());
			x->failed = 1;
			break;
		}
		/* Forget an older one now and then. */
		if (i >= 2 && splitmix64(&rnd) % 2) {
			int v = (int)(splitmix64(&rnd) % (uint64_t)i);
			if (!x->k[v].gone) {
				int f = lb_store_forget(x->s, x->k[v].snap);
				if (f < 0)
					tap_diag("forget %d: %s %s", v, strerror(-f), lb_error_detail());
				x->k[v].gone = 1;
			}
		}
	}
	pthread_mutex_lock(&x->mu);
	x->done = 1;
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

static void *gcs_main(void *arg)
{
	struct stress *x = arg;
	for (;;) {
		pthread_mutex_lock(&x->mu);
		int done = x->done;
		pthread_mutex_unlock(&x->mu);
		if (done)
			break;
		struct lb_gc_options o = { .repack_below = 80 };
		struct lb_gc_stats st;
		int r = lb_store_gc(x->s, &o, &st);
		if (r < 0) {
			tap_diag("gc: %s %s", strerror(-r), lb_error_detail());
			x->failed = 1;
			break;
		}
		x->gcs++;
		x->dead += st.chunks_dead;
	}
	return NULL;
}

static void test_concurrent(void)
{
	new_store();
	struct stress x = { .s = open_store() };
	pthread_mutex_init(&x.mu, NULL);
	pthread_t tb, tg;
	pthread_create(&tg, NULL, gcs_main, &x);
	pthread_create(&tb, NULL, backups_main, &x);
	pthread_join(tb, NULL);
	pthread_join(tg, NULL);
	tap_ok(!x.failed, "%d backups with forgets beside %llu collections, none failed", ROUNDS,
	       (unsigned long long)x.gcs);
	tap_ok(x.gcs >= 1 && x.dead > 0, "the collections found garbage while backups ran (%llu chunks)",
	       (unsigned long long)x.dead);
	struct lb_gc_options o = { .repack_below = 80 };
	struct lb_gc_stats st;
	int r = lb_store_gc(x.s, &o, &st);
	tap_ok(r == 0, "a last collection");
	for (int pass = 0; pass < 2; pass++) {
		int ok = 1, n = 0;
		for (int i = 0; i < ROUNDS; i++) {
			if (!x.k[i].snap || x.k[i].gone)
				continue;
			n++;
			if (!restores(x.s, x.k[i].snap, x.k[i].seeds, PER)) {
				tap_diag("snapshot %d does not restore", i);
				ok = 0;
			}
		}
		tap_ok(ok && n > 0, "%s: all %d retained snapshots restore bit-exact", pass ? "after reopening" : "at once",
		       n);
		tap_ok(check_clean(x.s), "check (with its usage recount) is clean");
		if (pass == 0) {
			lb_store_close(x.s);
			x.s = open_store();
		}
	}
	for (int i = 0; i < ROUNDS; i++)
		lb_snapshot_free(x.k[i].snap);
	lb_store_close(x.s);
	pthread_mutex_destroy(&x.mu);
}

int main(void)
{
	snprintf(topdir, sizeof(topdir), "%s/lb-gc-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(topdir))
		return 99;
	snprintf(storedir, sizeof(storedir), "%s/store", topdir);
	test_delete_and_repack();
	test_repack_threshold();
	test_runs_after_collection();
	test_refuses_unknown_references();
	test_waits_for_older_backup();
	test_concurrent();
	rm_rf(topdir);
	return tap_done();
}
