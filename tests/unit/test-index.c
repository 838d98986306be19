/* test-index.c - unit tests of the chunk index (lib/index.c).
 *
 * Covers: opening an empty index; adding runs of fake entries and finding
 * each with its pack, offset, sizes, codec and type while random absent ids
 * miss; lb_index_foreach; persistence across close and reopen; compaction
 * once there are more than 8 runs (and explicitly, dropping duplicate ids);
 * superseded runs left by an interrupted merge being dropped on open;
 * lookups from other threads while runs are added and merged; damaged runs
 * refused with -EBADMSG; lb_index_rebuild from real sealed packs (skipping a
 * torn one) after the index was deleted; and the memory held per entry. */
#include "config.h"

#include "backend.h"
#include "codec.h"
#include "format.h"
#include "hash.h"
#include "index.h"
#include "pack.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tap.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng = 0xfeedfaceULL;

static void random_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix64(&rng);
		memcpy(p + i, &v, LB_MIN(8, n - i));
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(99);
	}
	return p;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	uint8_t *p = xmalloc((size_t)st.st_size);
	ssize_t n = pread(fd, p, (size_t)st.st_size, 0);
	close(fd);
	if (n != st.st_size) {
		free(p);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return p;
}

/* Writes a file in place (same inode when it exists) or creates it. */
static int write_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0640);
	if (fd < 0)
		return -1;
	int ok = pwrite(fd, data, len, 0) == (ssize_t)len && ftruncate(fd, (off_t)len) == 0;
	close(fd);
	return ok ? 0 : -1;
}

static int flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;
	if (fd < 0)
		return -1;
	int ok = pread(fd, &c, 1, (off_t)off) == 1;
	c ^= 0x04;
	ok = ok && pwrite(fd, &c, 1, (off_t)off) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static int name_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* The files in dir (names only, sorted), at most max. */
static size_t list_dir(const char *dir, char names[][64], size_t max)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && n < max && strlen(de->d_name) < 64)
			memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
	closedir(d);
	qsort(names, n, 64, name_cmp);
	return n;
}

/* ---- fake packs ---------------------------------------------------------------- */

struct fake_pack {
	struct lb_pack_id id;
	struct lb_pack_entry *e;
	size_t n;
};

static void make_fake(struct fake_pack *p, size_t n)
{
	random_bytes(p->id.b, sizeof(p->id.b));
	p->e = xmalloc(n * sizeof(*p->e));
	p->n = n;
	for (size_t i = 0; i < n; i++) {
		struct lb_pack_entry *e = &p->e[i];
		memset(e, 0, sizeof(*e));
		random_bytes(e->id.b, LB_ID_LEN);
		e->offset = (uint32_t)splitmix64(&rng) & 0x7fffffff;
		e->stored = (uint32_t)splitmix64(&rng) & 0xffffff;
		e->raw = (uint32_t)splitmix64(&rng) & 0xffffff;
		e->codec = (uint8_t)(splitmix64(&rng) % 3);
		e->type = (uint8_t)(1 + splitmix64(&rng) % 2);
	}
}

static int add_fakes(struct lb_index *idx, struct fake_pack *ps, size_t n)
{
	struct lb_index_pack ip[8];
	for (size_t i = 0; i < n; i++)
		ip[i] = (struct lb_index_pack){ .id = ps[i].id, .entries = ps[i].e, .n = ps[i].n };
	return lb_index_add(idx, ip, n);
}

static int same_entry(const struct lb_pack_entry *a, const struct lb_pack_entry *b)
{
	return lb_id_cmp(&a->id, &b->id) == 0 && a->offset == b->offset && a->stored == b->stored &&
	       a->raw == b->raw && a->codec == b->codec && a->type == b->type;
}

/* Counts the entries of the packs that lookup does not return exactly. */
static size_t count_wrong(struct lb_index *idx, const struct fake_pack *ps, size_t np)
{
	size_t wrong = 0;
	for (size_t p = 0; p < np; p++) {
		for (size_t i = 0; i < ps[p].n; i++) {
			struct lb_pack_id pid;
			struct lb_pack_entry e;
			memset(&e, 0xaa, sizeof(e));
			if (lb_index_lookup(idx, &ps[p].e[i].id, &pid, &e) != 1 || !same_entry(&e, &ps[p].e[i]) ||
			    memcmp(pid.b, ps[p].id.b, LB_PACK_ID_LEN) != 0)
				wrong++;
		}
	}
	return wrong;
}

static size_t count_absent_found(struct lb_index *idx, size_t tries)
{
	size_t found = 0;
	for (size_t i = 0; i < tries; i++) {
		struct lb_id id;
		struct lb_pack_id pid;
		struct lb_pack_entry e;
		random_bytes(id.b, LB_ID_LEN);
		found += lb_index_lookup(idx, &id, &pid, &e) != 0;
	}
	return found;
}

struct foreach_ctx {
	const struct fake_pack *ps;
	size_t np;
	size_t calls, matched;
};

static int foreach_cb(void *arg, const struct lb_pack_id *pack, const struct lb_pack_entry *e)
{
	struct foreach_ctx *c = arg;
	c->calls++;
	for (size_t p = 0; p < c->np; p++) {
		if (memcmp(pack->b, c->ps[p].id.b, LB_PACK_ID_LEN) != 0)
			continue;
		for (size_t i = 0; i < c->ps[p].n; i++)
			if (same_entry(e, &c->ps[p].e[i]))
				c->matched++;
	}
	return 0;
}

static size_t total_entries(const struct fake_pack *ps, size_t n)
{
	size_t t = 0;
	for (size_t i = 0; i < n; i++)
		t += ps[i].n;
	return t;
}

/* ---- lookups racing with adds ------------------------------------------------ */

struct racer {
	struct lb_index *idx;
	const struct fake_pack *ps;
	size_t np;
	atomic_int *stop;
	pthread_barrier_t *start;
	size_t misses, lookups;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->start);
	do {
		for (size_t p = 0; p < r->np; p++) {
			for (size_t i = 0; i < r->ps[p].n; i += 7) {
				struct lb_pack_id pid;
				struct lb_pack_entry e;
				if (lb_index_lookup(r->idx, &r->ps[p].e[i].id, &pid, &e) != 1 ||
				    !same_entry(&e, &r->ps[p].e[i]))
					r->misses++;
				r->lookups++;
			}
		}
	} while (!atomic_load(r->stop));
	return NULL;
}

/* ---- tests ------------------------------------------------------------------ */

#define NMAIN 2
#define NMORE 8

static struct fake_pack mainp[NMAIN], more[NMORE];

static void test_basic(struct lb_backend *be, const char *dir)
{
	struct lb_index *idx;
	int r = lb_index_open(be, &idx);
	tap_ok(r == 0, "open on an empty backend");
	if (r < 0)
		exit(1);
	tap_ok(lb_index_entries(idx) == 0 && lb_index_nruns(idx) == 0, "empty index has no runs and entries");
	tap_ok(count_absent_found(idx, 100) == 0, "empty index finds nothing");

	make_fake(&mainp[0], 500);
	make_fake(&mainp[1], 700);
	r = add_fakes(idx, mainp, NMAIN);
	tap_ok(r == 0, "add one run of two packs");
	tap_ok(lb_index_nruns(idx) == 1 && lb_index_entries(idx) == 1200, "1 run with 1200 entries (%llu)",
	       (unsigned long long)lb_index_entries(idx));
	size_t wrong = count_wrong(idx, mainp, NMAIN);
	tap_ok(wrong == 0, "every entry found with its pack, offset, sizes, codec and type (%zu wrong)", wrong);
	tap_ok(count_absent_found(idx, 2000) == 0, "2000 random absent ids miss");

	struct foreach_ctx fc = { .ps = mainp, .np = NMAIN };
	r = lb_index_foreach(idx, foreach_cb, &fc);
	tap_ok(r == 0 && fc.calls == 1200 && fc.matched == 1200, "foreach visits every entry once (%zu/%zu)",
	       fc.matched, fc.calls);

	char names[16][64], path[512];
	snprintf(path, sizeof(path), "%s/index", dir);
	tap_ok(list_dir(path, names, 16) == 1, "the run is one object under index/");
	lb_index_free(idx);

	r = lb_index_open(be, &idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1 && lb_index_entries(idx) == 1200, "reopen sees the run");
	tap_ok(r == 0 && count_wrong(idx, mainp, NMAIN) == 0, "after reopen every entry is found");
	tap_ok(r == 0 && count_absent_found(idx, 1000) == 0, "after reopen absent ids miss");
	if (r == 0)
		lb_index_free(idx);
}

static void test_compaction(struct lb_backend *be, const char *dir)
{
	struct lb_index *idx;
	char idxdir[512];
	snprintf(idxdir, sizeof(idxdir), "%s/index", dir);
	if (lb_index_open(be, &idx) < 0) {
		tap_ok(0, "open");
		return;
	}
	/* One run is there already; runs 2..8 just accumulate. */
	int r = 0, counts_ok = 1;
	for (int i = 0; i < NMORE - 1 && r == 0; i++) {
		make_fake(&more[i], 100 + 10 * (size_t)i);
		r = add_fakes(idx, &more[i], 1);
		if (lb_index_nruns(idx) != (size_t)i + 2)
			counts_ok = 0;
	}
	tap_ok(r == 0 && counts_ok && lb_index_nruns(idx) == 8, "8 runs before the merge threshold");

	/* Keep the 8 run files to play an interrupted merge later. */
	char names[16][64];
	size_t nold = list_dir(idxdir, names, 16);
	uint8_t *old[16];
	size_t oldlen[16];
	for (size_t i = 0; i < nold; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", idxdir, names[i]);
		old[i] = read_file(p, &oldlen[i]);
	}
	tap_ok(nold == 8, "8 run files under index/");

	make_fake(&more[NMORE - 1], 123);
	r = add_fakes(idx, &more[NMORE - 1], 1);
	size_t all = total_entries(mainp, NMAIN) + total_entries(more, NMORE);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1, "the 9th run triggers a merge into 1 run (%zu)",
	       lb_index_nruns(idx));
	tap_ok(lb_index_entries(idx) == all, "merged run holds all %zu entries", all);
	tap_ok(count_wrong(idx, mainp, NMAIN) == 0 && count_wrong(idx, more, NMORE) == 0,
	       "after the merge every entry is found with its pack");
	char after[16][64];
	tap_ok(list_dir(idxdir, after, 16) == 1, "only the merged run file is left");
	lb_index_free(idx);

	r = lb_index_open(be, &idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1 && lb_index_entries(idx) == all, "reopen after the merge: 1 run");
	tap_ok(r == 0 && count_wrong(idx, mainp, NMAIN) == 0 && count_wrong(idx, more, NMORE) == 0,
	       "reopen after the merge: every entry found");
	tap_ok(r == 0 && count_absent_found(idx, 1000) == 0, "reopen after the merge: absent ids miss");
	if (r == 0)
		lb_index_free(idx);

	/* An interrupted merge: the merged run was written but the runs it
	 * covers were not deleted yet. */
	for (size_t i = 0; i < nold; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", idxdir, names[i]);
		if (old[i])
			write_file(p, old[i], oldlen[i]);
		free(old[i]);
	}
	tap_ok(list_dir(idxdir, after, 16) == nold + 1, "superseded runs put back (%zu files)", nold + 1);
	r = lb_index_open(be, &idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1 && lb_index_entries(idx) == all,
	       "open ignores superseded runs: 1 run, %zu entries", all);
	tap_ok(r == 0 && count_wrong(idx, mainp, NMAIN) == 0 && count_wrong(idx, more, NMORE) == 0,
	       "open with superseded runs: every entry found");
	tap_ok(list_dir(idxdir, after, 16) == 1, "open deleted the superseded run files");
	if (r == 0)
		lb_index_free(idx);
}

static void test_duplicates(struct lb_backend *be)
{
	struct lb_index *idx;
	if (lb_index_open(be, &idx) < 0) {
		tap_ok(0, "open");
		return;
	}
	uint64_t before = lb_index_entries(idx);
	/* The same entries of one pack listed again in a second run. */
	int r = add_fakes(idx, &mainp[1], 1);
	tap_ok(r == 0 && lb_index_nruns(idx) == 2 && lb_index_entries(idx) == before + mainp[1].n,
	       "a run repeating known entries is added");
	tap_ok(count_wrong(idx, &mainp[1], 1) == 0, "repeated entries are found");
	r = lb_index_compact(idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1 && lb_index_entries(idx) == before,
	       "compact merges into 1 run dropping the duplicates (%llu entries)",
	       (unsigned long long)lb_index_entries(idx));
	tap_ok(count_wrong(idx, mainp, NMAIN) == 0 && count_wrong(idx, more, NMORE) == 0,
	       "after compact every entry is found");
	r = lb_index_compact(idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1 && lb_index_entries(idx) == before, "compact of one run is a no-op");
	lb_index_free(idx);
}

static void test_race(struct lb_backend *be)
{
	struct lb_index *idx;
	if (lb_index_open(be, &idx) < 0) {
		tap_ok(0, "open");
		return;
	}
	atomic_int stop = 0;
	pthread_barrier_t start;
	struct racer rc[2];
	pthread_t th[2];
	pthread_barrier_init(&start, NULL, 3);
	for (int i = 0; i < 2; i++) {
		rc[i] = (struct racer){ .idx = idx, .ps = mainp, .np = NMAIN, .stop = &stop, .start = &start };
		pthread_create(&th[i], NULL, racer_main, &rc[i]);
	}
	pthread_barrier_wait(&start);
	struct fake_pack extra[10];
	int r = 0;
	for (int i = 0; i < 10 && r == 0; i++) {
		make_fake(&extra[i], 200);
		r = add_fakes(idx, &extra[i], 1);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&start);
	tap_ok(r == 0, "10 runs added (with a merge) while two threads look up");
	tap_ok(rc[0].misses == 0 && rc[1].misses == 0 && rc[0].lookups > 0 && rc[1].lookups > 0,
	       "concurrent lookups never missed a known entry (%zu + %zu lookups)", rc[0].lookups, rc[1].lookups);
	tap_ok(count_wrong(idx, extra, 10) == 0, "the added entries are found");
	for (int i = 0; i < 10; i++)
		free(extra[i].e);
	lb_index_free(idx);
}

static void test_damage(struct lb_backend *be, const char *dir)
{
	char idxdir[512], names[16][64], path[600];
	snprintf(idxdir, sizeof(idxdir), "%s/index", dir);
	/* Leave a single run to damage. */
	struct lb_index *idx;
	if (lb_index_open(be, &idx) == 0) {
		lb_index_compact(idx);
		lb_index_free(idx);
	}
	if (list_dir(idxdir, names, 16) != 1) {
		tap_ok(0, "exactly one run file to damage");
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", idxdir, names[0]);
	size_t len;
	uint8_t *orig = read_file(path, &len);
	if (!orig) {
		tap_ok(0, "read the run file");
		return;
	}
	uint32_t npacks = lb_get32(orig + 12);
	uint64_t entries_at = LB_INDEX_HEADER_SIZE + (uint64_t)npacks * LB_PACK_ID_LEN;
	struct {
		uint64_t off;
		const char *what;
	} spots[] = {
		{ 1, "magic" },
		{ 12, "pack count" },
		{ 17, "entry count" },
		{ 25, "covers" },
		{ LB_INDEX_HEADER_SIZE + 5, "pack table" },
		{ entries_at + 10 * LB_INDEX_ENTRY_SIZE + 31, "an entry's id" },
		{ entries_at + 20 * LB_INDEX_ENTRY_SIZE + 33, "an entry's pack number" },
		{ entries_at + 30 * LB_INDEX_ENTRY_SIZE + 40, "an entry's offset" },
		{ len - 2, "the checksum" },
	};
	for (size_t i = 0; i < LB_ARRAY_SIZE(spots); i++) {
		flip_byte(path, spots[i].off);
		lb_clear_error();
		idx = NULL;
		int r = lb_index_open(be, &idx);
		tap_ok(r == -EBADMSG && strstr(lb_error_detail(), names[0]),
		       "flipped byte in %s: open is -EBADMSG naming the run", spots[i].what);
		if (r == 0)
			lb_index_free(idx);
		write_file(path, orig, len);
	}
	write_file(path, orig, len - 1);
	int r = lb_index_open(be, &idx);
	tap_ok(r == -EBADMSG, "truncated run: open is -EBADMSG");
	if (r == 0)
		lb_index_free(idx);
	write_file(path, orig, len);

	r = lb_index_open(be, &idx);
	tap_ok(r == 0 && count_wrong(idx, mainp, NMAIN) == 0, "the restored run opens again");
	if (r == 0)
		lb_index_free(idx);
	free(orig);

	/* Something that is not a run name is not ours and is ignored. */
	char other[600];
	snprintf(other, sizeof(other), "%s/README", idxdir);
	write_file(other, (const uint8_t *)"hello", 5);
	r = lb_index_open(be, &idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1, "a foreign file under index/ is ignored");
	if (r == 0)
		lb_index_free(idx);
	unlink(other);
}

/* Real packs for rebuild. */
#define RB_PACKS 3
#define RB_BLOBS 150

struct real_blob {
	struct lb_id id;
	uint8_t *payload;
	size_t slen, plen;
	int codec;
};

static void test_rebuild(const char *dir)
{
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/rebuild", dir);
	struct lb_backend *be;
	if (lb_backend_local_open(sub, 1, &be) < 0) {
		tap_ok(0, "open a backend for rebuild");
		return;
	}
	struct lb_index *idx;
	int r = lb_index_open(be, &idx);
	static struct real_blob rb[RB_PACKS][RB_BLOBS];
	struct lb_pack_id pid[RB_PACKS + 1];
	struct lb_pack_entry *ents[RB_PACKS] = { NULL };
	uint8_t plain[6000];
	for (int p = 0; p < RB_PACKS && r == 0; p++) {
		struct lb_pack_writer *w;
		r = lb_pack_writer_new(be, p == 1 ? LB_PACK_META : LB_PACK_DATA, &w);
		if (r < 0)
			break;
		for (int i = 0; i < RB_BLOBS && r == 0; i++) {
			struct real_blob *b = &rb[p][i];
			b->plen = 1 + splitmix64(&rng) % sizeof(plain);
			random_bytes(plain, b->plen);
			if (i % 2) /* compressible half */
				memset(plain, 'x', b->plen / 2);
			lb_sha256(plain, b->plen, &b->id);
			const void *out;
			b->codec = lb_compress(3, plain, b->plen, &out, &b->slen);
			b->payload = xmalloc(b->slen);
			memcpy(b->payload, out, b->slen);
			r = lb_pack_append(w, &b->id, p == 1 ? LB_BLOB_TREE : LB_BLOB_DATA, b->codec, NULL, 0,
					   (uint32_t)b->plen, b->payload, (uint32_t)b->slen, NULL);
		}
		if (r == 0)
			r = lb_pack_seal(w);
		pid[p] = *lb_pack_writer_id(w);
		size_t n;
		const struct lb_pack_entry *es = lb_pack_writer_entries(w, &n);
		ents[p] = xmalloc(n * sizeof(*es));
		memcpy(ents[p], es, n * sizeof(*es));
		struct lb_index_pack ip = { .id = pid[p], .entries = ents[p], .n = n };
		if (r == 0)
			r = lb_index_add(idx, &ip, 1);
		lb_pack_writer_free(w);
	}
	tap_ok(r == 0, "wrote %d real packs of %d blobs and indexed them", RB_PACKS, RB_BLOBS);
	if (r == 0)
		lb_index_free(idx);

	/* A torn pack: sealed, then cut short. */
	struct lb_pack_writer *w;
	r = lb_pack_writer_new(be, LB_PACK_DATA, &w);
	if (r == 0)
		r = lb_pack_append(w, &rb[0][0].id, LB_BLOB_DATA, rb[0][0].codec, NULL, 0, (uint32_t)rb[0][0].plen,
				   rb[0][0].payload, (uint32_t)rb[0][0].slen, NULL);
	if (r == 0)
		r = lb_pack_seal(w);
	if (r == 0) {
		char name[96], path[700];
		pid[RB_PACKS] = *lb_pack_writer_id(w);
		lb_pack_name(&pid[RB_PACKS], name, sizeof(name));
		snprintf(path, sizeof(path), "%s/%s", sub, name);
		r = truncate(path, 100);
	}
	lb_pack_writer_free(w);
	tap_ok(r == 0, "wrote a torn pack");

	/* Lose the index. */
	char idxdir[600], names[16][64];
	snprintf(idxdir, sizeof(idxdir), "%s/index", sub);
	size_t nrun = list_dir(idxdir, names, 16);
	for (size_t i = 0; i < nrun; i++) {
		char p[700];
		snprintf(p, sizeof(p), "%s/%s", idxdir, names[i]);
		unlink(p);
	}
	r = lb_index_open(be, &idx);
	tap_ok(nrun == RB_PACKS && r == 0 && lb_index_entries(idx) == 0, "index deleted (%zu runs)", nrun);
	if (r == 0)
		lb_index_free(idx);

	uint64_t packs = 0, chunks = 0, bad = 0;
	r = lb_index_rebuild(be, &packs, &chunks, &bad);
	tap_ok(r == 0 && packs == RB_PACKS && chunks == RB_PACKS * RB_BLOBS && bad == 1,
	       "rebuild: %llu packs, %llu chunks, %llu torn", (unsigned long long)packs,
	       (unsigned long long)chunks, (unsigned long long)bad);
	r = lb_index_open(be, &idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1 && lb_index_entries(idx) == RB_PACKS * RB_BLOBS,
	       "rebuilt index: 1 run of every chunk");
	size_t wrong = 0, unreadable = 0;
	for (int p = 0; r == 0 && p < RB_PACKS; p++) {
		for (int i = 0; i < RB_BLOBS; i++) {
			struct real_blob *b = &rb[p][i];
			struct lb_pack_id got;
			struct lb_pack_entry e;
			if (lb_index_lookup(idx, &b->id, &got, &e) != 1 || !same_entry(&e, &ents[p][i]) ||
			    memcmp(got.b, pid[p].b, LB_PACK_ID_LEN) != 0) {
				wrong++;
				continue;
			}
			uint8_t *buf = xmalloc(lb_blob_buf_size(&e));
			const uint8_t *payload;
			if (lb_blob_read(be, &got, &e, buf, &payload, NULL) != 0 ||
			    memcmp(payload, b->payload, b->slen) != 0)
				unreadable++;
			free(buf);
		}
	}
	tap_ok(r == 0 && wrong == 0, "rebuilt index finds every chunk in its pack at its offset (%zu wrong)", wrong);
	tap_ok(r == 0 && unreadable == 0, "every rebuilt entry reads its blob back (%zu bad)", unreadable);
	if (r == 0)
		lb_index_free(idx);

	/* Rebuilding over an existing index supersedes its runs. */
	r = lb_index_rebuild(be, &packs, &chunks, &bad);
	nrun = list_dir(idxdir, names, 16);
	tap_ok(r == 0 && nrun == 1 && chunks == RB_PACKS * RB_BLOBS, "rebuild over an index leaves one run (%zu)",
	       nrun);
	r = lb_index_open(be, &idx);
	tap_ok(r == 0 && lb_index_nruns(idx) == 1 && lb_index_entries(idx) == RB_PACKS * RB_BLOBS,
	       "which opens with every chunk");
	if (r == 0)
		lb_index_free(idx);

	for (int p = 0; p < RB_PACKS; p++) {
		free(ents[p]);
		for (int i = 0; i < RB_BLOBS; i++)
			free(rb[p][i].payload);
	}
	lb_backend_free(be);
}

static void test_memory(const char *dir)
{
	char sub[512];
	snprintf(sub, sizeof(sub), "%s/memory", dir);
	struct lb_backend *be;
	struct lb_index *idx;
	if (lb_backend_local_open(sub, 1, &be) < 0 || lb_index_open(be, &idx) < 0) {
		tap_ok(0, "open a backend for the memory test");
		return;
	}
	struct fake_pack ps[4];
	int r = 0;
	for (int i = 0; i < 4; i++)
		make_fake(&ps[i], 25000);
	r = add_fakes(idx, ps, 4);
	uint64_t n = lb_index_entries(idx), mem = lb_index_memory(idx);
	tap_ok(r == 0 && n == 100000, "100k entries added");
	tap_ok(n && mem / n <= 64, "index holds %.1f bytes per entry (<= 64)", n ? (double)mem / (double)n : 0.0);
	tap_ok(mem >= n * LB_INDEX_ENTRY_SIZE, "memory figure accounts for the entries themselves");
	lb_index_free(idx);
	r = lb_index_open(be, &idx);
	mem = r == 0 ? lb_index_memory(idx) : 0;
	tap_ok(r == 0 && mem / 100000 <= 64, "after reopen still <= 64 bytes per entry");
	if (r == 0)
		lb_index_free(idx);
	for (int i = 0; i < 4; i++)
		free(ps[i].e);
	lb_backend_free(be);
}

int main(void)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", tap_tmpdir("index"));
	struct lb_backend *be;
	int r = lb_backend_local_open(dir, 1, &be);
	tap_ok(r == 0, "local backend opens %s", dir);
	if (r < 0)
		return tap_done();

	test_basic(be, dir);
	test_compaction(be, dir);
	test_duplicates(be);
	test_race(be);
	test_damage(be, dir);
	test_rebuild(dir);
	test_memory(dir);

	for (int i = 0; i < NMAIN; i++)
		free(mainp[i].e);
	for (int i = 0; i < NMORE; i++)
		free(more[i].e);
	lb_backend_free(be);
	int status = tap_done();
	if (status == 0)
		rm_rf(dir);
	return status;
}
