/* test-delta.c - delta chunks (lib/delta.c and the store around it).
 *
 * A changed file's new chunks are stored as zstd deltas against the
 * previous version's chunks.  Checked here: chains of every depth up to the
 * cap and one past it read back bit-exact (with a warm and a cold cache),
 * the cap turns a chunk plain, deltas store far less than plain chunks,
 * check traces a damaged base to every file that needs it, tenants are
 * charged for the bases their snapshots need (against figures taken from
 * the index, and against check's recount), and a collection keeps a base
 * that only a delta still needs. */
#include "config.h"

#include "buf.h"
#include "codec.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"
#include "store_internal.h"
#include "usage.h"
#include "util.h"

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

static char topdir[256], storedir[300];

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A mysqldump-like file: one INSERT per row.  Each night rewrites about
 * 2% of the rows in place, the way the benchmark dataset's dumps change;
 * a row's text depends on the last night it changed. */
static char *dump(uint64_t seed, unsigned rows, unsigned night, size_t *len)
{
	size_t cap = (size_t)rows * 96 + 64, n = 0;
	char *p = malloc(cap);
	if (!p)
		exit(99);
	for (unsigned r = 0; r < rows; r++) {
		unsigned ver = 0;
		for (unsigned k = 1; k <= night; k++)
			if (mix(seed ^ ((uint64_t)r << 20) ^ k) % 50 == 0)
				ver = k;
		uint64_t h = mix(seed * 31 + r * 1000003ULL + ver);
		n += (size_t)snprintf(p + n, cap - n, "INSERT INTO pegawai VALUES (%u,'nama-%06llx','unit-%u',%llu);\n",
				      r, (unsigned long long)(h & 0xffffff), (unsigned)(h >> 40) % 97,
				      (unsigned long long)(h >> 24) % 10000000ULL);
	}
	*len = n;
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

/* A new store at storedir with chunks of min..max bytes (avg between). */
static void new_store_sized(uint32_t min, uint32_t avg, uint32_t max, uint32_t pack_size)
{
	rm_rf(storedir);
	struct lb_store_params p;
	lb_store_params_default(&p);
	p.chunk_min = min;
	p.chunk_avg = avg;
	p.chunk_max = max;
	p.pack_size = pack_size;
	/* The planning tests expect a delta wherever one is planned: at the
	 * default level 1 a plain chunk of these small, hex-heavy dumps can
	 * come out smaller than the delta (made at level 3), and wins. */
	p.zstd_level = 3;
	if (lb_store_create(storedir, &p) < 0)
		exit(99);
}

static void new_store(void) { new_store_sized(4096, 16384, 65536, 1u << 20); }

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

struct file {
	const char *path;
	const char *data;
	size_t len;
};

static int backup(struct lb_store *s, const char *tenant, const char *dataset, const struct file *f, size_t n,
		  struct lb_snapshot **out, uint64_t *new_stored)
{
	struct lb_backup *b;
	int r = lb_backup_begin(s, tenant, dataset, "host", &b);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct lb_entry e = { .path = (char *)f[i].path, .type = LB_FT_REG, .mode = 0640, .size = f[i].len };
		r = lb_backup_file_begin(b, &e);
		if (r == 0)
			r = lb_backup_file_write(b, f[i].data, f[i].len);
		if (r == 0)
			r = lb_backup_file_end(b);
	}
	if (r == 0)
		r = lb_backup_commit(b, out);
	if (r == 0 && new_stored)
		*new_stored = (*out)->new_stored;
	if (r < 0)
		tap_diag("backup: %s (%s)", strerror(-r), lb_error_detail());
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

/* 1 when path reads back from snap as exactly data. */
static int reads_back(struct lb_store *s, const struct lb_snapshot *snap, const char *path, const char *data,
		      size_t len)
{
	struct lb_entry e;
	if (lb_store_lookup(s, snap, path, &e) != 1)
		return 0;
	struct sinkbuf sb = { 0 };
	int r = lb_store_read_file(s, &e, sink, &sb);
	lb_entry_clear(&e);
	int ok = r == 0 && sb.len == len && memcmp(sb.p, data, len) == 0;
	if (!ok)
		tap_diag("%s: read returned %d (%s), %zu bytes of %zu", path, r, r ? lb_error_detail() : "", sb.len,
			 len);
	free(sb.p);
	return ok;
}

/* The index entry of a file's first chunk in snap. */
static int first_chunk(struct lb_store *s, const struct lb_snapshot *snap, const char *path, struct lb_id *id,
		       struct lb_pack_id *pid, struct lb_pack_entry *pe)
{
	struct lb_entry e;
	if (lb_store_lookup(s, snap, path, &e) != 1 || e.nchunks == 0)
		return 0;
	*id = e.chunks[0].id;
	lb_entry_clear(&e);
	return lb_index_lookup(lb_store_index(s), id, pid, pe);
}

struct problems {
	char lines[64][400];
	int n;
};

static void collect(void *arg, const char *kind, const char *what)
{
	struct problems *p = arg;
	tap_diag("check: %s: %s", kind, what);
	if (p && p->n < 64)
		snprintf(p->lines[p->n++], sizeof(p->lines[0]), "%s: %s", kind, what);
}

static int check_clean(struct lb_store *s)
{
	struct lb_check_result res;
	int r = lb_store_check(s, 1, collect, NULL, &res);
	return r == 0 && res.errors == 0 && res.usage_mismatch == 0;
}

/* ---- chains up to the cap and one past it ------------------------------------- */

#define NIGHTS 24

/* Versions rebuilding version v decodes by the skip rule: one per non-zero
 * digit of v in base radix, plus the plain one. */
static int versions_decoded(unsigned v, unsigned radix)
{
	int n = 1;
	for (; v; v /= radix)
		n += v % radix != 0;
	return n;
}

static void test_chain_cap(unsigned radix, unsigned cap, int nights)
{
	new_store();
	struct lb_store *s = open_store();
	/* One chunk per version (the file is smaller than chunk_min), so each
	 * delta has exactly one base.  Version k is made against version k with
	 * its lowest non-zero base-`radix` digit cleared, and rebuilding it
	 * decodes one chunk per non-zero digit plus the plain one.  The first
	 * version that would decode more than the cap is stored plainly, and
	 * numbering starts again from it. */
	lb_store_set_delta(s, 1, cap);
	/* 0: the store's own rule, expected to be LB_DELTA_RADIX. */
	if (radix)
		s->delta_radix = radix;
	else
		radix = LB_DELTA_RADIX;
	char *data[NIGHTS];
	size_t len[NIGHTS];
	struct lb_snapshot *snap[NIGHTS];
	struct lb_id ids[NIGHTS];
	int codecs_ok = 1, bases_ok = 1, all_back = 1, version = 0, plain_again = 0, deepest = 0;
	for (int k = 0; k < nights; k++) {
		data[k] = dump(7, 30, (unsigned)k * 20, &len[k]); /* ~60% of rows changed each time */
		struct file f = { "db/kepegawaian.sql", data[k], len[k] };
		if (backup(s, "opd", "db", &f, 1, &snap[k], NULL) < 0)
			exit(99);
		struct lb_pack_id pid;
		struct lb_pack_entry pe;
		int found = first_chunk(s, snap[k], f.path, &ids[k], &pid, &pe);
		int cost = versions_decoded((unsigned)version + 1, radix);
		int want_delta = k > 0 && cost <= (int)cap;
		if (k > 0 && !want_delta)
			plain_again = 1;
		if (want_delta && cost > deepest)
			deepest = cost;
		version = want_delta ? version + 1 : 0;
		int is_delta = found && pe.codec == LB_CODEC_ZSTD_DELTA;
		if (!found || is_delta != want_delta) {
			tap_diag("night %d: codec %d, wanted %s", k, found ? pe.codec : -1,
				 want_delta ? "a delta" : "plain");
			codecs_ok = 0;
		}
		if (want_delta) {
			int base_night = k - (version - (int)lb_delta_skip_base((uint32_t)version, radix));
			struct lb_id b[LB_BLOB_MAX_BASES];
			unsigned nb = 0;
			if (lb_store_chunk_bases(s, &ids[k], b, &nb) < 0 || nb != 1 ||
			    lb_id_cmp(&b[0], &ids[base_night]) != 0) {
				tap_diag("night %d (version %d): %u bases, wanted night %d's chunk", k, version, nb,
					 base_night);
				bases_ok = 0;
			}
		}
		for (int j = 0; j <= k; j++)
			all_back &= reads_back(s, snap[j], f.path, data[j], len[j]);
	}
	tap_ok(codecs_ok && plain_again && deepest == (int)cap,
	       "radix %u, cap %u: deltas of every cost up to the cap, and the first version past it stored plainly",
	       radix, cap);
	tap_ok(bases_ok, "radix %u: each delta's base is the version its number with the lowest digit cleared names",
	       radix);
	tap_ok(all_back, "radix %u: every version reads back bit-exact after each night (warm cache)", radix);
	tap_ok(check_clean(s), "radix %u: check --read-data is clean over the chains", radix);
	lb_store_close(s);

	s = open_store();
	int cold = 1;
	/* Newest first, so the deepest chains are rebuilt from nothing. */
	for (int k = nights - 1; k >= 0; k--)
		cold &= reads_back(s, snap[k], "db/kepegawaian.sql", data[k], len[k]);
	tap_ok(cold, "radix %u: after reopening (cold cache) every depth reads back bit-exact", radix);

	/* An idle daemon's trim empties the cache of rebuilt bases; reads after
	 * it rebuild them. */
	uint64_t held = lb_bcache_held(s->bcache), h0, m0, h1, m1;
	lb_store_trim(s);
	uint64_t after = lb_bcache_held(s->bcache);
	lb_bcache_stats(s->bcache, &h0, &m0);
	int again = reads_back(s, snap[nights - 1], "db/kepegawaian.sql", data[nights - 1], len[nights - 1]);
	lb_bcache_stats(s->bcache, &h1, &m1);
	tap_ok(held > 0 && after == 0 && again && m1 > m0,
	       "radix %u: lb_store_trim empties the base cache (%llu -> %llu bytes), and reads rebuild", radix,
	       (unsigned long long)held, (unsigned long long)after);

	/* With deltas turned off a changed file is stored plainly. */
	lb_store_set_delta(s, 0, 0);
	size_t l9;
	char *d9 = dump(8, 30, 0, &l9);
	struct file f9 = { "db/kepegawaian.sql", d9, l9 };
	struct lb_snapshot *s9;
	struct lb_id id;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	int ok = backup(s, "opd", "db", &f9, 1, &s9, NULL) == 0 && first_chunk(s, s9, f9.path, &id, &pid, &pe) &&
		 pe.codec != LB_CODEC_ZSTD_DELTA && reads_back(s, s9, f9.path, d9, l9);
	tap_ok(ok, "with deltas off a changed file is stored plainly");
	free(d9);
	lb_snapshot_free(s9);
	lb_store_close(s);
	for (int k = 0; k < nights; k++) {
		free(data[k]);
		lb_snapshot_free(snap[k]);
	}
}

/* ---- what deltas save on a many-chunk dump ----------------------------------- */

static void test_savings(void)
{
	uint64_t night_bytes[2][4] = { { 0 } };
	int back = 1;
	for (int on = 0; on <= 1; on++) {
		new_store();
		struct lb_store *s = open_store();
		lb_store_set_delta(s, on, 0);
		char *d[4];
		size_t l[4];
		struct lb_snapshot *snap[4];
		for (int k = 0; k < 4; k++) {
			d[k] = dump(11, 12000, (unsigned)k, &l[k]); /* about 800 KB, 50 chunks */
			struct file f = { "db/dinkes.sql", d[k], l[k] };
			if (backup(s, "dinkes", "db", &f, 1, &snap[k], &night_bytes[on][k]) < 0)
				exit(99);
		}
		for (int k = 0; k < 4; k++)
			back &= reads_back(s, snap[k], "db/dinkes.sql", d[k], l[k]);
		if (on)
			tap_ok(check_clean(s), "check --read-data is clean and the charges add up (many-chunk dump)");
		for (int k = 0; k < 4; k++) {
			free(d[k]);
			lb_snapshot_free(snap[k]);
		}
		lb_store_close(s);
	}
	tap_ok(back, "every night of the dump reads back bit-exact, deltas on and off");
	int smaller = 1;
	for (int k = 1; k < 4; k++) {
		tap_diag("night %d: %llu bytes stored with deltas, %llu without", k,
			 (unsigned long long)night_bytes[1][k], (unsigned long long)night_bytes[0][k]);
		/* Night 3's delta spans three nights of change (the skip rule
		 * makes nights 1-7 against night 0). */
		smaller &= night_bytes[1][k] * 5 < night_bytes[0][k];
	}
	tap_ok(smaller, "each night stores under a fifth of what plain chunks cost");
}

/* ---- how far back a delta finds matches ---------------------------------------- */

/* A delta made at the writer's levels finds the night before's rows across
 * a whole reference of 1.5 MiB: 2% of the rows changed (to other lengths,
 * so that each change needs a fresh match) cost about their own bytes,
 * and the delta stays under 4% of the chunk.  A match finder whose table
 * forgets the start of the reference (zstd level 1's own, 2^14 entries)
 * stores several times that.  Levels 1 to 3 share the parameters, so the
 * store's level (whichever it is) makes the same bytes. */
static void test_delta_reach(void)
{
	size_t l0, l1;
	char *d0 = dump(23, 40000, 0, &l0), *d1 = dump(23, 40000, 1, &l1);
	size_t plen = 3u << 19, at = 1u << 18, len = 1u << 20;
	if (l0 < plen || l1 < at + len)
		exit(99);
	uint8_t *back = malloc(len), *first = NULL;
	size_t firstlen = 0;
	int ok = back != NULL, small = 1, alike = 1;
	for (int level = 1; level <= LB_DELTA_FAST_LEVEL && ok; level++) {
		void *out;
		size_t outlen;
		ok = lb_compress_delta(level, d0, plen, d1 + at, len, 0, &out, &outlen) == LB_CODEC_ZSTD_DELTA;
		ok = ok && lb_decompress_delta(d0, plen, out, outlen, back, len) == 0 && memcmp(back, d1 + at, len) == 0;
		tap_diag("level %d: delta of %zu bytes for a chunk of %zu", level, outlen, len);
		small &= outlen * 25 < len;
		if (ok && !first) {
			first = malloc(outlen);
			if (!first)
				exit(99);
			memcpy(first, out, outlen);
			firstlen = outlen;
		} else if (ok) {
			alike &= outlen == firstlen && memcmp(out, first, outlen) == 0;
		}
	}
	tap_ok(ok, "deltas at levels 1 to %d decode back to the chunk", LB_DELTA_FAST_LEVEL);
	tap_ok(small, "and find the unchanged rows across the whole 1.5 MiB reference (under 4%% of the chunk)");
	tap_ok(alike, "levels 1 to %d make the same delta", LB_DELTA_FAST_LEVEL);
	free(first);
	free(back);
	free(d0);
	free(d1);
}

/* ---- a damaged base ------------------------------------------------------------ */

/* The path of the pack that holds id, and its index entry; 0 or -1. */
static int blob_at(struct lb_store *s, const struct lb_id *id, char *path, size_t len, struct lb_pack_entry *pe)
{
	struct lb_pack_id pid;
	char name[96];
	if (!lb_index_lookup(lb_store_index(s), id, &pid, pe))
		return -1;
	lb_pack_name(&pid, name, sizeof(name));
	snprintf(path, len, "%s/%s", storedir, name);
	return 0;
}

/* Flips a byte in the payload of the blob that holds id. */
static int damage(struct lb_store *s, const struct lb_id *id)
{
	struct lb_pack_entry pe;
	char path[600];
	if (blob_at(s, id, path, sizeof(path), &pe) < 0)
		return -1;
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	off_t at = (off_t)pe.offset + LB_BLOB_HEADER_SIZE + pe.stored / 2;
	uint8_t b;
	int ok = pread(fd, &b, 1, at) == 1;
	b ^= 0x40;
	ok = ok && pwrite(fd, &b, 1, at) == 1;
	close(fd);
	return ok ? 0 : -1;
}

/* Changes one byte in the middle of the payload of the blob that holds id
 * and sets the blob's CRC to match: a fault the CRC does not see. */
static int forge(struct lb_store *s, const struct lb_id *id)
{
	struct lb_pack_entry pe;
	char path[600];
	if (blob_at(s, id, path, sizeof(path), &pe) < 0)
		return -1;
	size_t n = lb_blob_buf_size(&pe);
	uint8_t *b = malloc(n);
	int fd = open(path, O_RDWR);
	int ok = b && fd >= 0 && pread(fd, b, n, (off_t)pe.offset) == (ssize_t)n;
	if (ok) {
		b[n - pe.stored / 2] ^= 0x40;
		lb_put32(b + 48, lb_blob_crc(b, n));
		ok = pwrite(fd, b, n, (off_t)pe.offset) == (ssize_t)n;
	}
	if (fd >= 0)
		close(fd);
	free(b);
	return ok ? 0 : -1;
}

/* A delta's frame checks what it decodes to, whatever the bases: a base
 * changed under a matching CRC (stored raw, so it decodes as it is) makes
 * the delta on it fail its checksum, and the read fails, although nothing
 * hashes the chunk against its id any more. */
static void test_delta_checked(void)
{
	new_store();
	struct lb_store *s = open_store();
	size_t n = 60000;
	char *v0 = malloc(n), *v1 = malloc(n);
	uint64_t x = 99;
	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		v0[i] = (char)(x >> 56);
	}
	memcpy(v1, v0, n);
	for (size_t i = 0; i < n; i += 4000)
		v1[i] ^= 0x5a;
	struct lb_snapshot *snap[2];
	int was = lb_codec_checksums(0); /* version 0 raw: random bytes */
	struct file f0 = { "img/scan.bin", v0, n }, f1 = { "img/scan.bin", v1, n };
	int r = backup(s, "dinkes", "img", &f0, 1, &snap[0], NULL);
	lb_codec_checksums(1);
	if (r == 0)
		r = backup(s, "dinkes", "img", &f1, 1, &snap[1], NULL);
	lb_codec_checksums(was);
	if (r < 0)
		exit(99);
	struct lb_id base, top;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	int setup = first_chunk(s, snap[0], "img/scan.bin", &base, &pid, &pe) && pe.codec == LB_CODEC_RAW &&
		    first_chunk(s, snap[1], "img/scan.bin", &top, &pid, &pe) && pe.codec == LB_CODEC_ZSTD_DELTA;
	struct lb_id bases[LB_BLOB_MAX_BASES];
	unsigned nb = 0;
	setup = setup && lb_store_chunk_bases(s, &top, bases, &nb) == 0 && nb >= 1 && lb_id_cmp(&bases[0], &base) == 0;
	tap_ok(setup && reads_back(s, snap[1], "img/scan.bin", v1, n),
	       "version 0 stored raw, version 1 a checksummed delta on it, and it reads back");
	lb_store_close(s);
	s = open_store(); /* nothing cached */
	tap_ok(forge(s, &base) == 0, "a byte of the raw base changed, its CRC set to match");
	struct lb_entry e;
	struct sinkbuf sb = { 0 };
	lb_clear_error();
	r = lb_store_lookup(s, snap[1], "img/scan.bin", &e) == 1 ? lb_store_read_file(s, &e, sink, &sb) : -1;
	tap_ok(r == -EBADMSG && strstr(lb_error_detail(), "cannot decode"),
	       "reading the delta fails its frame's checksum: %s", lb_error_detail());
	if (r != -1)
		lb_entry_clear(&e);
	free(sb.p);
	lb_store_close(s);
	lb_snapshot_free(snap[0]);
	lb_snapshot_free(snap[1]);
	free(v0);
	free(v1);
}

static int has_line(const struct problems *p, const char *a, const char *b)
{
	for (int i = 0; i < p->n; i++)
		if (strstr(p->lines[i], a) && (!b || strstr(p->lines[i], b)))
			return 1;
	return 0;
}

static void test_damaged_base(void)
{
	new_store();
	struct lb_store *s = open_store();
	char *d[3];
	size_t l[3];
	struct lb_snapshot *snap[3], *other;
	for (int k = 0; k < 3; k++) {
		d[k] = dump(21, 30, (unsigned)k * 20, &l[k]);
		struct file f = { "db/bappeda.sql", d[k], l[k] };
		if (backup(s, "bappeda", "db", &f, 1, &snap[k], NULL) < 0)
			exit(99);
	}
	size_t lo;
	char *od = dump(22, 30, 0, &lo);
	struct file of = { "db/other.sql", od, lo };
	if (backup(s, "bappeda", "other", &of, 1, &other, NULL) < 0)
		exit(99);
	struct lb_id base, top;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	int setup = first_chunk(s, snap[0], "db/bappeda.sql", &base, &pid, &pe) && pe.codec != LB_CODEC_ZSTD_DELTA &&
		    first_chunk(s, snap[2], "db/bappeda.sql", &top, &pid, &pe) && pe.codec == LB_CODEC_ZSTD_DELTA;
	tap_ok(setup, "version 0 is plain and version 2 a delta (on version 0, by the skip rule)");
	lb_store_close(s);

	s = open_store();
	tap_ok(damage(s, &base) == 0, "a byte of version 0's blob flipped");
	struct problems pr = { .n = 0 };
	struct lb_check_result res;
	int r = lb_store_check(s, 1, collect, &pr, &res);
	char hex0[LB_ID_HEX], hexs[3][LB_SNAP_HEX];
	lb_id_hex(&base, hex0);
	for (int k = 0; k < 3; k++)
		lb_snap_id_hex(snap[k]->id, hexs[k]);
	tap_ok(r == -EBADMSG && has_line(&pr, "chunk: chunk", hex0), "check names the damaged base chunk");
	int named = 1;
	for (int k = 0; k < 3; k++)
		named &= has_line(&pr, hexs[k], "file db/bappeda.sql is damaged");
	tap_ok(named, "check names the file in all three snapshots: the one holding the base and the two "
		      "whose deltas depend on it");
	tap_ok(!has_line(&pr, "other.sql", NULL), "a file that does not depend on it is not named");

	struct lb_entry e;
	struct sinkbuf sb = { 0 };
	int lr = lb_store_lookup(s, snap[2], "db/bappeda.sql", &e);
	r = lr == 1 ? lb_store_read_file(s, &e, sink, &sb) : -1;
	tap_ok(r == -EBADMSG && strstr(lb_error_detail(), "cannot rebuild"),
	       "restoring version 2 fails with a message naming the rebuild (%s)", lb_error_detail());
	if (lr == 1)
		lb_entry_clear(&e);
	free(sb.p);
	tap_ok(reads_back(s, other, "db/other.sql", od, lo), "the unrelated file still reads back");
	lb_store_close(s);
	for (int k = 0; k < 3; k++) {
		free(d[k]);
		lb_snapshot_free(snap[k]);
	}
	free(od);
	lb_snapshot_free(other);
}

/* ---- charging for bases, across snapshots and tenants ------------------------- */

/* Bytes the index says blob id costs (header, base list and payload). */
static uint64_t blob_cost(struct lb_store *s, const struct lb_id *id)
{
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	if (!lb_index_lookup(lb_store_index(s), id, &pid, &pe))
		return 0;
	return LB_BLOB_HEADER_SIZE + (uint64_t)pe.stored;
}

static uint64_t head_cost(const struct lb_snapshot *snap)
{
	struct lb_snapshot copy = *snap;
	struct lb_buf b;
	lb_buf_init(&b);
	uint64_t n = lb_snapshot_encode(&copy, &b) == 0 ? b.len : 0;
	lb_buf_free(&b);
	return n;
}

static uint64_t tree_cost(struct lb_store *s, const struct lb_snapshot *snap)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < snap->ntree; i++)
		sum += blob_cost(s, &snap->tree[i].id);
	return sum;
}

static void test_charges(void)
{
	new_store();
	struct lb_store *s = open_store();
	size_t l0, l1;
	char *d0 = dump(31, 30, 0, &l0), *d1 = dump(31, 30, 20, &l1);
	struct file f0 = { "db/dukcapil.sql", d0, l0 }, f1 = { "db/dukcapil.sql", d1, l1 };
	struct lb_snapshot *a0, *a1, *b1;
	if (backup(s, "dukcapil", "db", &f0, 1, &a0, NULL) < 0 || backup(s, "dukcapil", "db", &f1, 1, &a1, NULL) < 0)
		exit(99);
	struct lb_id c0, c1;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	int setup = first_chunk(s, a0, f0.path, &c0, &pid, &pe) && first_chunk(s, a1, f1.path, &c1, &pid, &pe) &&
		    pe.codec == LB_CODEC_ZSTD_DELTA;
	tap_ok(setup, "version 1 is a delta on version 0");

	/* Forgetting the snapshot that holds the base leaves the base charged:
	 * the other snapshot's delta needs it. */
	tap_ok(lb_store_forget(s, a0) == 0, "forget the snapshot of version 0");
	struct lb_tenant_usage u;
	lb_store_tenant_usage(s, "dukcapil", &u);
	uint64_t want = blob_cost(s, &c0) + blob_cost(s, &c1) + tree_cost(s, a1) + head_cost(a1);
	tap_ok(u.blobs == 2 + a1->ntree && u.charged == want,
	       "dukcapil is charged for the delta and its base: %llu blobs, %llu bytes (want %llu, %llu)",
	       (unsigned long long)u.blobs, (unsigned long long)u.charged, (unsigned long long)(2 + a1->ntree),
	       (unsigned long long)want);

	/* Another tenant backs up the same version 1: a dedup hit on the
	 * delta, and it is charged for the base it never backed up. */
	if (backup(s, "bapenda", "db", &f1, 1, &b1, NULL) < 0)
		exit(99);
	lb_store_tenant_usage(s, "bapenda", &u);
	want = blob_cost(s, &c0) + blob_cost(s, &c1) + tree_cost(s, b1) + head_cost(b1);
	tap_ok(u.blobs == 2 + b1->ntree && u.charged == want,
	       "bapenda, sharing the delta, is charged for its base too (%llu bytes, want %llu)",
	       (unsigned long long)u.charged, (unsigned long long)want);
	tap_ok(check_clean(s), "check's recount of every tenant equals the kept charges");

	/* A collection keeps the base: only the delta still needs it. */
	struct lb_gc_options go = { .repack_below = 100 };
	struct lb_gc_stats gs;
	int r = lb_store_gc(s, &go, &gs);
	tap_ok(r == 0 && lb_index_lookup(lb_store_index(s), &c0, &pid, &pe),
	       "a collection (repacking everything) keeps the base chunk");
	tap_ok(reads_back(s, a1, f1.path, d1, l1) && reads_back(s, b1, f1.path, d1, l1),
	       "both tenants' snapshots read back bit-exact after the collection");
	lb_store_close(s);
	s = open_store();
	tap_ok(reads_back(s, b1, f1.path, d1, l1) && check_clean(s), "and after reopening, with check clean");

	/* Once no delta needs it, the base goes. */
	tap_ok(lb_store_forget(s, a1) == 0 && lb_store_forget(s, b1) == 0, "forget both remaining snapshots");
	r = lb_store_gc(s, &go, &gs);
	tap_ok(r == 0 && !lb_index_lookup(lb_store_index(s), &c0, &pid, &pe) &&
		       !lb_index_lookup(lb_store_index(s), &c1, &pid, &pe),
	       "then a collection deletes the delta and its base");
	lb_store_close(s);
	lb_snapshot_free(a0);
	lb_snapshot_free(a1);
	lb_snapshot_free(b1);
	free(d0);
	free(d1);
}

/* ---- garbage deltas whose bases were collected ---------------------------------- */

/* A delta that died while a live chunk shares its pack stays in that pack
 * after a collection that does not repack, while its dead base goes with
 * its own, wholly dead pack.  check --read-data must take it for the
 * garbage it is: the 1,000-kill soak ended with 107 such reports on a
 * store whose every snapshot restored bit-exact. */
static void test_garbage_delta(void)
{
	new_store();
	struct lb_store *s = open_store();
	size_t l0, l1, lk;
	char *d0 = dump(41, 30, 0, &l0), *d1 = dump(41, 30, 20, &l1), *dk = dump(977, 30, 0, &lk);
	struct file f0 = { "db/disdukcapil.sql", d0, l0 };
	struct file both[2] = { { "db/disdukcapil.sql", d1, l1 }, { "db/arsip.sql", dk, lk } };
	struct file keep = { "db/arsip.sql", dk, lk };
	struct lb_snapshot *a0, *a1, *k2;
	if (backup(s, "dukcapil", "db", &f0, 1, &a0, NULL) < 0 || backup(s, "dukcapil", "db", both, 2, &a1, NULL) < 0 ||
	    backup(s, "dukcapil", "arsip", &keep, 1, &k2, NULL) < 0)
		exit(99);
	struct lb_id c0, c1, ck;
	struct lb_pack_id p0, p1, pk;
	struct lb_pack_entry pe;
	int setup = first_chunk(s, a0, f0.path, &c0, &p0, &pe) && first_chunk(s, a1, both[1].path, &ck, &pk, &pe) &&
		    first_chunk(s, a1, both[0].path, &c1, &p1, &pe) && pe.codec == LB_CODEC_ZSTD_DELTA &&
		    memcmp(p1.b, pk.b, LB_PACK_ID_LEN) == 0 && memcmp(p0.b, p1.b, LB_PACK_ID_LEN) != 0;
	tap_ok(setup, "version 1 is a delta on version 0, in one pack with a chunk another snapshot keeps");
	tap_ok(lb_store_forget(s, a0) == 0 && lb_store_forget(s, a1) == 0, "forget both versions");
	struct lb_gc_options go = { .repack_below = 0 };
	struct lb_gc_stats gs;
	int r = lb_store_gc(s, &go, &gs);
	tap_ok(r == 0 && !lb_index_lookup(lb_store_index(s), &c0, &p0, &pe) &&
		       !lb_index_lookup(lb_store_index(s), &c1, &p1, &pe),
	       "a collection that does not repack drops both from the index");
	tap_ok(lb_index_lookup(lb_store_index(s), &ck, &pk, &pe) && reads_back(s, k2, keep.path, dk, lk),
	       "the live chunk in the delta's pack still reads back");
	tap_ok(check_clean(s), "check --read-data takes the dead delta left in that pack for garbage");
	lb_store_close(s);
	lb_snapshot_free(a0);
	lb_snapshot_free(a1);
	lb_snapshot_free(k2);
	free(d0);
	free(d1);
	free(dk);
}

/* ---- collections beside backups that make deltas ------------------------------ */

#define ROUNDS 16

struct stress {
	struct lb_store *s;
	char *data[2][ROUNDS];
	size_t len[2][ROUNDS];
	struct lb_snapshot *snap[2][ROUNDS];
	int gone[2][ROUNDS];
	int done, failed;
	uint64_t gcs, dead;
	pthread_mutex_t mu;
};

static void *nights_main(void *arg)
{
	struct stress *x = arg;
	uint64_t rnd = 7;
	for (int k = 0; k < ROUNDS && !x->failed; k++) {
		for (int d = 0; d < 2 && !x->failed; d++) {
			struct file f = { "db/dump.sql", x->data[d][k], x->len[d][k] };
			if (backup(x->s, "opd", d ? "b" : "a", &f, 1, &x->snap[d][k], NULL) < 0)
				x->failed = 1;
		}
		/* Forget an older night now and then: its chunks stay only as
		 * long as a newer delta needs them. */
		rnd = mix(rnd);
		if (k >= 2 && rnd % 3 != 0) {
			int d = (int)((rnd >> 8) % 2), v = (int)((rnd >> 16) % (uint64_t)k);
			if (!x->gone[d][v] && lb_store_forget(x->s, x->snap[d][v]) == 0)
				x->gone[d][v] = 1;
		}
	}
	pthread_mutex_lock(&x->mu);
	x->done = 1;
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

static void *collect_main(void *arg)
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

static void test_concurrent_gc(void)
{
	new_store();
	static struct stress x;
	x.s = open_store();
	pthread_mutex_init(&x.mu, NULL);
	for (int d = 0; d < 2; d++)
		for (int k = 0; k < ROUNDS; k++)
			x.data[d][k] = dump(40 + (uint64_t)d, 8000, (unsigned)k, &x.len[d][k]);
	pthread_t tb, tg;
	pthread_create(&tg, NULL, collect_main, &x);
	pthread_create(&tb, NULL, nights_main, &x);
	pthread_join(tb, NULL);
	pthread_join(tg, NULL);
	tap_ok(!x.failed, "%d nights of two dumps with forgets beside %llu collections, none failed", ROUNDS,
	       (unsigned long long)x.gcs);
	tap_ok(x.gcs >= 1, "collections ran while the nights were backed up (%llu dead chunks found)",
	       (unsigned long long)x.dead);
	struct lb_gc_options o = { .repack_below = 80 };
	struct lb_gc_stats st;
	tap_ok(lb_store_gc(x.s, &o, &st) == 0, "a last collection");
	for (int pass = 0; pass < 2; pass++) {
		int ok = 1, n = 0;
		for (int d = 0; d < 2; d++)
			for (int k = 0; k < ROUNDS; k++) {
				if (!x.snap[d][k] || x.gone[d][k])
					continue;
				n++;
				if (!reads_back(x.s, x.snap[d][k], "db/dump.sql", x.data[d][k], x.len[d][k])) {
					tap_diag("dataset %d night %d does not read back", d, k);
					ok = 0;
				}
			}
		tap_ok(ok && n > 0, "%s: all %d retained nights read back bit-exact", pass ? "after reopening" : "at once",
		       n);
		tap_ok(check_clean(x.s), "check --read-data (chains, usage recount) is clean");
		if (pass == 0) {
			lb_store_close(x.s);
			x.s = open_store();
		}
	}
	lb_store_close(x.s);
	for (int d = 0; d < 2; d++)
		for (int k = 0; k < ROUNDS; k++) {
			free(x.data[d][k]);
			lb_snapshot_free(x.snap[d][k]);
		}
	pthread_mutex_destroy(&x.mu);
}

/* ---- collections racing the backups that choose bases -------------------------- */

struct gcarg {
	struct lb_store *s;
	int r;
	struct lb_gc_stats st;
};

static void *gc_thread(void *arg)
{
	struct gcarg *g = arg;
	struct lb_gc_options o = { .repack_below = 100 };
	g->r = lb_store_gc(g->s, &o, &g->st);
	return NULL;
}

/* Starts a collection on a thread and returns once it has begun (it then
 * waits for the backups begun before it). */
static pthread_t start_gc(struct lb_store *s, struct gcarg *g)
{
	pthread_mutex_lock(&s->mu);
	uint64_t gen = s->bk_gen;
	pthread_mutex_unlock(&s->mu);
	pthread_t t;
	g->s = s;
	pthread_create(&t, NULL, gc_thread, g);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		int begun = s->bk_gen != gen;
		pthread_mutex_unlock(&s->mu);
		if (begun)
			break;
		sched_yield();
	}
	return t;
}

static struct lb_backup *write_file(struct lb_store *s, const char *tenant, const char *dataset, const char *path,
				    const char *data, size_t len)
{
	struct lb_backup *b;
	struct lb_entry e = { .path = (char *)path, .type = LB_FT_REG, .mode = 0640, .size = len };
	int r = lb_backup_begin(s, tenant, dataset, "host", &b);
	if (r == 0)
		r = lb_backup_file_begin(b, &e);
	if (r == 0)
		r = lb_backup_file_write(b, data, len);
	if (r == 0)
		r = lb_backup_file_end(b);
	if (r == 0)
		r = lb_backup_settle(b);
	if (r < 0) {
		tap_diag("backup: %s (%s)", strerror(-r), lb_error_detail());
		exit(99);
	}
	return b;
}

static void test_gc_races(void)
{
	/* A backup that made its deltas before a collection began commits
	 * while it marks: the collection must follow those deltas' chains
	 * although they sit in a run newer than it collects. */
	new_store();
	struct lb_store *s = open_store();
	size_t l0, l1;
	char *d0 = dump(77, 60000, 0, &l0), *d1 = dump(77, 60000, 1, &l1);
	struct file f0 = { "db/x.sql", d0, l0 };
	struct lb_snapshot *a0, *a1 = NULL, *b1 = NULL;
	if (backup(s, "t", "db", &f0, 1, &a0, NULL) < 0)
		exit(99);
	struct lb_backup *a = write_file(s, "t", "db", "db/x.sql", d1, l1);
	tap_ok(lb_store_forget(s, a0) == 0, "forget version 0: its chunks live on only as bases");
	struct gcarg g = { 0 };
	pthread_t t = start_gc(s, &g);
	int r = lb_backup_commit(a, &a1);
	lb_backup_free(a);
	pthread_join(t, NULL);
	tap_ok(r == 0 && g.r == 0 && g.st.backups_waited == 1,
	       "a collection begun after the deltas were made waits for their backup, which commits");
	tap_ok(a1 && reads_back(s, a1, "db/x.sql", d1, l1) && check_clean(s),
	       "its snapshot reads back after the collection, and check is clean");
	lb_snapshot_free(a0);
	lb_snapshot_free(a1);

	/* A backup begun after the collection reuses deltas another backup
	 * made before it (still in an open pack), and that other backup is
	 * then abandoned: the reuse alone must keep the chains. */
	lb_store_close(s);
	new_store();
	s = open_store();
	if (backup(s, "t", "db", &f0, 1, &a0, NULL) < 0)
		exit(99);
	a = write_file(s, "t", "db", "db/x.sql", d1, l1);
	tap_ok(lb_store_forget(s, a0) == 0, "forget version 0 again (fresh store)");
	t = start_gc(s, &g);
	struct lb_backup *b = write_file(s, "u", "other", "db/x.sql", d1, l1);
	lb_backup_free(a); /* abandoned: the collection stops waiting */
	pthread_join(t, NULL);
	r = lb_backup_commit(b, &b1);
	lb_backup_free(b);
	tap_ok(r == 0 && g.r == 0, "a backup begun after the collection, reusing the abandoned backup's deltas, commits");
	tap_ok(b1 && reads_back(s, b1, "db/x.sql", d1, l1) && check_clean(s),
	       "and reads back after the collection, with check clean");
	lb_snapshot_free(a0);
	lb_snapshot_free(b1);
	lb_store_close(s);
	free(d0);
	free(d1);
}

/* check --read-data on the sealed packs of a killed backup: its deltas are
 * checked through their own bases, not reported missing. */
static void test_unindexed_deltas(void)
{
	new_store();
	struct lb_store *s = open_store();
	size_t l0, l1;
	char *d0 = dump(79, 60000, 0, &l0), *d1 = dump(79, 60000, 40, &l1);
	struct file f0 = { "db/x.sql", d0, l0 };
	struct lb_snapshot *a0;
	if (backup(s, "t", "db", &f0, 1, &a0, NULL) < 0)
		exit(99);
	lb_store_close(s);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		s = open_store();
		write_file(s, "t", "db", "db/x.sql", d1, l1);
		lb_store_flush(s); /* sealed, and indexed: then the index run goes */
		/* Dies without closing anything, as a killed backup does (_exit
		 * too, for tools such as valgrind that hold SIGKILL back). */
		raise(SIGKILL);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	/* Drop the index runs the child wrote, as if it died between sealing
	 * its packs and writing the run. */
	s = open_store();
	uint64_t indexed_before = lb_index_entries(lb_store_index(s));
	lb_store_close(s);
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "ls -1 %s/index | sort | tail -n +2 | sed 's|^|%s/index/|' | xargs -r rm -f", storedir,
		 storedir);
	if (system(cmd) != 0)
		exit(99);
	s = open_store();
	struct lb_check_result res;
	int rc = lb_store_check(s, 1, collect, NULL, &res);
	tap_ok(indexed_before > lb_index_entries(lb_store_index(s)) && res.unindexed_packs > 0,
	       "the killed backup left sealed packs no index lists (%llu)", (unsigned long long)res.unindexed_packs);
	tap_ok(rc == 0 && res.errors == 0, "check --read-data checks their deltas through their bases: clean");
	lb_store_close(s);
	lb_snapshot_free(a0);
	free(d0);
	free(d1);
}

/* ---- bases checked once per provenance ----------------------------------------- */

/* Versions 1-4 are made against version 0's chunks, 5-7 against version
 * 4's (the skip rule in base 4, set here).  Before night 7, night 0's snapshot goes and a
 * collection moves version 0's chunks, which the deltas still build on,
 * to a new pack; version 4's chunks stay where they are. */
/* sums 0 writes the store as versions before frame checksums did, where
 * bases are hashed and provenance saves hashing them again; with sums 1
 * every base was checked by its frame as it was decoded. */
static void test_provenance(int sums)
{
	int was = lb_codec_checksums(sums);
	new_store();
	struct lb_store *s = open_store();
	lb_store_set_delta(s, 1, 8);
	s->delta_radix = 4; /* nights 5-7 on version 4's deltas, 1-4 on version 0 */
	enum { N = 8 };
	char *a[N], *b;
	size_t la[N], lb;
	struct lb_snapshot *snap[N];
	uint64_t checked[N], trusted[N];
	int back = 1, moved = 0, stayed = 0;
	b = dump(32, 3000, 0, &lb); /* night 0 only: its garbage makes the pack worth repacking */
	for (int k = 0; k < N; k++) {
		a[k] = dump(31, 3000, (unsigned)k * 20, &la[k]);
		struct file f[2] = { { "db/simpeg.sql", a[k], la[k] }, { "db/lama.sql", b, lb } };
		if (k == 7) {
			struct lb_pack_id p0, p0after, p4, p4after;
			struct lb_pack_entry e;
			struct lb_id id0, id4;
			int found = first_chunk(s, snap[0], "db/simpeg.sql", &id0, &p0, &e) &&
				    first_chunk(s, snap[4], "db/simpeg.sql", &id4, &p4, &e);
			struct lb_gc_options go = { .repack_below = 100 };
			struct lb_gc_stats gs;
			int r = lb_store_forget(s, snap[0]) == 0 ? lb_store_gc(s, &go, &gs) : -1;
			struct lb_index *idx = lb_store_index(s);
			moved = found && r == 0 && lb_index_lookup(idx, &id0, &p0after, &e) &&
				memcmp(p0.b, p0after.b, LB_PACK_ID_LEN) != 0;
			stayed = found && r == 0 && lb_index_lookup(idx, &id4, &p4after, &e) &&
				 memcmp(p4.b, p4after.b, LB_PACK_ID_LEN) == 0;
		}
		lb_store_trim(s); /* every base rebuilt from the store */
		if (backup(s, "opd", "db", f, k == 0 ? 2 : 1, &snap[k], NULL) < 0)
			exit(99);
		lb_bcache_verify_stats(s->bcache, &checked[k], &trusted[k]);
		tap_diag("night %d: bases hashed %llu, taken on their provenance %llu (in all)", k,
			 (unsigned long long)checked[k], (unsigned long long)trusted[k]);
		for (int j = k == 7; j <= k; j++)
			back &= reads_back(s, snap[j], "db/simpeg.sql", a[j], la[j]);
	}
	if (!sums) {
		tap_ok(checked[0] == 0 && checked[1] > 0 && trusted[1] == 0,
		       "night 1 hashes every base its deltas are made against (%llu)", (unsigned long long)checked[1]);
		tap_ok(trusted[2] > 0, "night 2, on plain bases from the same blobs, takes %llu as checked",
		       (unsigned long long)trusted[2]);
		tap_ok(checked[5] > checked[4] && trusted[6] > trusted[5],
		       "night 6, on delta bases of the same provenance as night 5's, takes %llu as checked",
		       (unsigned long long)(trusted[6] - trusted[5]));
		/* Not "trusts none": a base evicted and rebuilt within the night
		 * is trusted the second time, on the check of the first. */
		tap_ok(checked[7] > checked[6],
		       "night 7, on the same blobs of version 4 whose bases moved, hashes them again (%llu)",
		       (unsigned long long)(checked[7] - checked[6]));
	} else {
		tap_ok(checked[N - 1] == 0 && trusted[N - 1] == 0,
		       "with frame checksums no night hashes a base or needs its provenance (%llu, %llu)",
		       (unsigned long long)checked[N - 1], (unsigned long long)trusted[N - 1]);
	}
	tap_ok(moved && stayed, "a collection moved version 0's chunks to a new pack, and not version 4's");
	tap_ok(back && check_clean(s), "every night reads back bit-exact, and check --read-data is clean");
	lb_codec_checksums(was);
	lb_store_close(s);
	for (int k = 0; k < N; k++) {
		free(a[k]);
		lb_snapshot_free(snap[k]);
	}
	free(b);
}

/* ---- the base cache stays within its size -------------------------------------- */

/* Chunks of 16-256 KiB, so that the cache's buffers differ in size and a
 * new base often takes a smaller or larger buffer than the one it evicts. */
static void test_cache_bound(void)
{
	new_store_sized(16384, 65536, 262144, 4u << 20);
	struct lb_store *s = open_store();
	lb_store_set_delta(s, 1, 8);
	enum { N = 6 };
	char *data[N];
	size_t len[N];
	struct lb_snapshot *snap[N];
	for (int k = 0; k < N; k++) {
		data[k] = dump(11, 40000, (unsigned)k * 3, &len[k]);
		struct file f = { "db/simpeg.sql", data[k], len[k] };
		if (backup(s, "opd", "db", &f, 1, &snap[k], NULL) < 0)
			exit(99);
	}
	lb_store_close(s);

	/* Cold, with a cache of 512 KiB: a few bases of a chain at a time. */
	const uint64_t cap = 512u << 10;
	s = open_store();
	lb_bcache_free(s->bcache);
	s->bcache = lb_bcache_new(cap);
	int all_back = 1, consistent = 1;
	uint64_t over = 0;
	for (int k = N - 1; k >= 0; k--) {
		all_back &= reads_back(s, snap[k], "db/simpeg.sql", data[k], len[k]);
		uint64_t held = lb_bcache_held(s->bcache);
		if (held > cap && held > over)
			over = held;
		consistent &= lb_bcache_consistent(s->bcache);
	}
	uint64_t hits, misses, held = lb_bcache_held(s->bcache);
	lb_bcache_stats(s->bcache, &hits, &misses);
	tap_ok(all_back && misses > 0, "a 512 KiB base cache rebuilds every night bit-exact (%llu misses, %llu hits)",
	       (unsigned long long)misses, (unsigned long long)hits);
	tap_ok(over == 0 && held > 0 && consistent,
	       "between reads the base cache holds no more than its size, counting every buffer of its entries "
	       "(%llu bytes, most %llu over)",
	       (unsigned long long)held, (unsigned long long)over);
	/* While backups run it keeps three quarters, evicting at once.  Which
	 * bases the reads left depends on the threads' timing: read on until
	 * the cache holds more than that, so that the check means something. */
	for (int k = 0; k < 4 * N && lb_bcache_held(s->bcache) <= cap / 4 * 3; k++)
		(void)reads_back(s, snap[k % N], "db/simpeg.sql", data[k % N], len[k % N]);
	held = lb_bcache_held(s->bcache);
	lb_bcache_backups(s->bcache, 1);
	uint64_t busy = lb_bcache_held(s->bcache);
	lb_bcache_backups(s->bcache, 0);
	tap_ok(held > cap / 4 * 3 && busy <= cap / 4 * 3 && lb_bcache_cap(s->bcache) == cap &&
		       lb_bcache_consistent(s->bcache),
	       "when backups start, a full cache gives up a quarter of its size (%llu -> %llu bytes)",
	       (unsigned long long)held, (unsigned long long)busy);
	lb_store_close(s);
	for (int k = 0; k < N; k++) {
		free(data[k]);
		lb_snapshot_free(snap[k]);
	}
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(topdir, sizeof(topdir), "%s/lb-test-delta-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(topdir))
		return 99;
	snprintf(storedir, sizeof(storedir), "%s/store", topdir);
	test_chain_cap(0, 2, 12); /* the default, base 8: version 9 (11) decodes 3 */
	test_chain_cap(4, 3, 24); /* version 21 (111 in base 4) decodes 4 */
	test_chain_cap(2, 4, 18); /* Subversion's: version 15 decodes 5 */
	test_savings();
	test_delta_reach();
	test_damaged_base();
	test_delta_checked();
	test_charges();
	test_garbage_delta();
	test_concurrent_gc();
	test_gc_races();
	test_unindexed_deltas();
	test_cache_bound();
	test_provenance(0);
	test_provenance(1);
	rm_rf(topdir);
	return tap_done();
}
