/* test-store.c - unit tests of the store (lib/store.c, lib/check.c).
 *
 * Covers: lb_store_create (and -EEXIST, -EINVAL) and lb_store_open errors
 * (-ENOENT for a missing or non-store directory, -EPROTONOSUPPORT for a
 * newer format, -EBADMSG for a damaged config, -EBUSY naming the owner's
 * pid); backups of files of 0 B to 20 MiB written in odd-sized pieces plus
 * directories and a symlink, read back bit-exact with lb_store_read_file and
 * lb_store_lookup, chunk ids checked against SHA-256 of the input;
 * lb_store_read_files (order of data and done callbacks, errors from the
 * callbacks); reusing stored chunks with lb_backup_add; a sparse file
 * (lb_backup_file_set_layout); lb_store_load_tree; snapshot listing and
 * lookup by id prefix, by DATASET@latest and by TENANT/DATASET@YYYY-MM-DD,
 * with ambiguous and absent names refused; a second backup of the same data
 * storing only tree blobs; persistence across close and reopen; two backups
 * of overlapping data running at once in two threads without any chunk
 * stored twice (with default and with small chunks); an abandoned backup
 * leaving no snapshot; the batch buffers ended backups leave, freed by
 * lb_store_trim; invalid tenant and dataset names; and lb_store_check
 * on a clean store and after one flipped byte in a pack, naming the damaged
 * file. */
#include "config.h"

#include "buf.h"
#include "codec.h"
#include "hash.h"
#include "index.h"
#include "manifest.h"
#include "pack.h"
#include "snapshot.h"
#include "store.h"
#include "store_internal.h"
#include "util.h"

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "tap.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
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

static uint8_t *make_random(size_t n, uint64_t seed)
{
	uint8_t *p = xmalloc(n);
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			v = splitmix64(&seed);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
	return p;
}

/* Text-like data that compresses several times over. */
static uint8_t *make_text(size_t n, uint64_t seed)
{
	static const char *const words[] = { "lumbung ", "padi ", "the ", "barn ", "keeps ", "rice ",
					     "for ", "lean ", "seasons", ".\n", "and ", "backups ", "of ",
					     "every ", "village ", "house " };
	uint8_t *p = xmalloc(n);
	size_t i = 0;
	while (i < n) {
		const char *w = words[splitmix64(&seed) % LB_ARRAY_SIZE(words)];
		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
	}
	return p;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static int write_text_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;
	if (fd < 0)
		return -1;
	int ok = pread(fd, &c, 1, (off_t)off) == 1;
	c ^= 0x10;
	ok = ok && pwrite(fd, &c, 1, (off_t)off) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static int64_t utc_ns(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };
	return (int64_t)timegm(&tm) * 1000000000LL;
}

static int same_snap(const struct lb_snapshot *a, const struct lb_snapshot *b)
{
	return a && b && memcmp(a->id, b->id, LB_SNAP_ID_LEN) == 0;
}

/* ---- test data ------------------------------------------------------------------ */

struct file {
	const char *path;
	uint8_t *data;
	size_t len;
};

#define NFILES 5
static struct file files[NFILES] = {
	{ "docs/empty", NULL, 0 },
	{ "docs/one", NULL, 1 },
	{ "docs/small.bin", NULL, 100000 },
	{ "data/random3m.bin", NULL, 3u << 20 },
	{ "data/text20m.txt", NULL, 20u << 20 },
};

static void make_files(void)
{
	files[1].data = make_random(1, 1);
	files[2].data = make_random(files[2].len, 2);
	files[3].data = make_random(files[3].len, 3);
	files[4].data = make_text(files[4].len, 4);
	files[0].data = xmalloc(0);
}

static int64_t file_mtime(size_t i) { return 1600000000123456789LL + (int64_t)i; }

/* Streams one file into the backup in odd-sized pieces; i picks its
 * metadata (see file_ok). */
static int backup_data(struct lb_backup *b, const char *path, size_t i, const uint8_t *data, size_t len)
{
	static const size_t pieces[] = { 1, 7, 4093, 65537, 1000003, 13, 262144, 3 };
	char pbuf[256];
	snprintf(pbuf, sizeof(pbuf), "%s", path);
	struct lb_entry e = { .path = pbuf, .type = LB_FT_REG, .mode = 0640, .uid = 100000 + (uint32_t)i,
			      .gid = 70000, .mtime_ns = file_mtime(i), .size = len };
	int r = lb_backup_file_begin(b, &e);
	size_t off = 0;
	for (size_t k = 0; r == 0 && off < len; k++) {
		size_t n = LB_MIN(pieces[k % LB_ARRAY_SIZE(pieces)], len - off);
		r = lb_backup_file_write(b, data + off, n);
		off += n;
	}
	if (r == 0)
		r = lb_backup_file_end(b);
	return r;
}

static int add_simple(struct lb_backup *b, const char *path, int type, const char *link)
{
	char pbuf[256], lbuf[256];
	struct lb_entry e = { .type = type, .mode = type == LB_FT_DIR ? 0755 : 0777, .uid = 0, .gid = 0 };
	snprintf(pbuf, sizeof(pbuf), "%s", path);
	e.path = pbuf;
	if (link) {
		snprintf(lbuf, sizeof(lbuf), "%s", link);
		e.link = lbuf;
	}
	e.mtime_ns = -5;
	return lb_backup_add(b, &e);
}

/* The main data set: every file, two directories and a symlink. */
static int backup_main(struct lb_store *s, const char *tenant, const char *dataset, int64_t when,
		       struct lb_snapshot **snap, struct lb_backup_stats *st)
{
	struct lb_backup *b;
	int r = lb_backup_begin(s, tenant, dataset, "host-1", &b);
	if (r < 0)
		return r;
	lb_backup_set_time(b, when);
	r = add_simple(b, "data", LB_FT_DIR, NULL);
	for (size_t i = 0; r == 0 && i < NFILES; i++)
		r = backup_data(b, files[i].path, i, files[i].data, files[i].len);
	if (r == 0)
		r = add_simple(b, "docs", LB_FT_DIR, NULL);
	if (r == 0)
		r = add_simple(b, "data/latest", LB_FT_SYMLINK, "random3m.bin");
	if (r == 0)
		r = lb_backup_tag(b, "nightly");
	if (r == 0)
		r = lb_backup_commit(b, snap);
	if (st)
		*st = *lb_backup_get_stats(b);
	lb_backup_free(b);
	return r;
}

/* A tiny backup of one small file. */
static int backup_note(struct lb_store *s, const char *tenant, const char *dataset, int64_t when,
		       struct lb_snapshot **snap)
{
	struct lb_backup *b;
	int r = lb_backup_begin(s, tenant, dataset, NULL, &b);
	if (r < 0)
		return r;
	char text[64];
	snprintf(text, sizeof(text), "note at %lld\n", (long long)when);
	lb_backup_set_time(b, when);
	r = backup_data(b, "note.txt", 0, (const uint8_t *)text, strlen(text));
	if (r == 0)
		r = lb_backup_commit(b, snap);
	lb_backup_free(b);
	return r;
}

struct sinkbuf {
	uint8_t *p;
	size_t len, cap;
	size_t calls;
};

static int sink(void *arg, const void *data, size_t len)
{
	struct sinkbuf *s = arg;
	if (lb_grow(&s->p, &s->cap, s->len + len, 1) < 0)
		return -ENOMEM;
	memcpy(s->p + s->len, data, len);
	s->len += len;
	s->calls++;
	return 0;
}

/* Looks path up in snap and checks its metadata, its chunk ids against the
 * input and its content through read_file.  Returns 1 when all hold. */
static int file_ok(struct lb_store *s, const struct lb_snapshot *snap, const char *path, size_t i,
		   const uint8_t *data, size_t len, int check_meta)
{
	struct lb_entry e;
	int r = lb_store_lookup(s, snap, path, &e);
	if (r != 1) {
		tap_diag("%s: lookup returned %d", path, r);
		return 0;
	}
	int ok = e.type == LB_FT_REG && e.size == len && strcmp(e.path, path) == 0;
	if (check_meta)
		ok = ok && e.mode == 0640 && e.uid == 100000 + i && e.gid == 70000 && e.mtime_ns == file_mtime(i);
	const struct lb_store_params *p = lb_store_get_params(s);
	uint64_t off = 0;
	for (size_t k = 0; ok && k < e.nchunks; k++) {
		uint32_t sz = e.chunks[k].size;
		struct lb_id id;
		if (sz == 0 || sz > p->chunk_max || (k + 1 < e.nchunks && sz < p->chunk_min) || off + sz > len) {
			ok = 0;
			break;
		}
		lb_sha256(data + off, sz, &id);
		if (lb_id_cmp(&id, &e.chunks[k].id) != 0)
			ok = 0;
		off += sz;
	}
	if (ok && off != len) {
		tap_diag("%s: chunks cover %llu of %zu bytes", path, (unsigned long long)off, len);
		ok = 0;
	}
	struct sinkbuf sb = { 0 };
	r = ok ? lb_store_read_file(s, &e, sink, &sb) : -1;
	if (r != 0 || sb.len != len || (len && memcmp(sb.p, data, len) != 0)) {
		tap_diag("%s: read_file returned %d, %zu of %zu bytes", path, r, sb.len, len);
		ok = 0;
	}
	free(sb.p);
	lb_entry_clear(&e);
	return ok;
}

static int main_set_ok(struct lb_store *s, const struct lb_snapshot *snap)
{
	int ok = 1;
	for (size_t i = 0; i < NFILES; i++)
		if (!file_ok(s, snap, files[i].path, i, files[i].data, files[i].len, 1))
			ok = 0;
	return ok;
}

/* ---- store-wide inspection ---------------------------------------------------- */

struct idlist {
	struct lb_id *v;
	size_t n, cap;
};

static int idl_push(struct idlist *l, const struct lb_id *id)
{
	if (lb_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
		return -ENOMEM;
	l->v[l->n++] = *id;
	return 0;
}

static int id_cmp(const void *a, const void *b) { return lb_id_cmp(a, b); }

static size_t idl_distinct(struct idlist *l)
{
	qsort(l->v, l->n, sizeof(*l->v), id_cmp);
	size_t d = 0;
	for (size_t i = 0; i < l->n; i++)
		if (i == 0 || lb_id_cmp(&l->v[i - 1], &l->v[i]) != 0)
			d++;
	return d;
}

static int index_cb(void *arg, const struct lb_pack_id *pack, const struct lb_pack_entry *e)
{
	return idl_push(arg, &e->id);
}

struct pack_walk {
	struct lb_backend *be;
	struct idlist ids;
	size_t packs, bad;
	uint64_t bytes;
};

static int pack_cb(void *arg, const char *name, uint64_t size)
{
	struct pack_walk *w = arg;
	struct lb_pack_id id;
	struct lb_pack_entry *es;
	size_t n;
	if (lb_pack_parse_name(name, &id) < 0 || lb_pack_read_footer(w->be, &id, &es, &n) < 0) {
		w->bad++;
		return 0;
	}
	w->packs++;
	w->bytes += size;
	for (size_t i = 0; i < n; i++)
		idl_push(&w->ids, &es[i].id);
	free(es);
	return 0;
}

/* Counts index entries and pack footer entries against distinct ids. */
static void count_chunks(struct lb_store *s, size_t *idx_n, size_t *idx_d, size_t *pack_n, size_t *pack_d,
			 struct pack_walk *out)
{
	struct idlist il = { 0 };
	lb_index_foreach(lb_store_index(s), index_cb, &il);
	*idx_n = il.n;
	*idx_d = idl_distinct(&il);
	free(il.v);
	struct pack_walk w = { .be = lb_store_backend(s) };
	w.be->ops->list(w.be, "packs", pack_cb, &w);
	*pack_n = w.ids.n;
	*pack_d = idl_distinct(&w.ids);
	free(w.ids.v);
	w.ids.v = NULL;
	if (out)
		*out = w;
}

/* ---- tests ------------------------------------------------------------------ */

static char topdir[256], storedir[300];

static void test_open_errors(void)
{
	struct lb_store *s = NULL;
	struct lb_store_params p;
	char path[400];
	lb_store_params_default(&p);

	tap_ok(lb_store_open(storedir, 2, &s) == -ENOENT, "open of a missing directory is -ENOENT");
	tap_ok(lb_store_create(storedir, &p) == 0, "create a store with the default parameters");
	tap_ok(lb_store_create(storedir, &p) == -EEXIST, "create over an existing store is -EEXIST");
	struct lb_store_params bad = p;
	bad.chunk_avg = 3u << 19;
	snprintf(path, sizeof(path), "%s/badparams", topdir);
	tap_ok(lb_store_create(path, &bad) == -EINVAL, "create with a non-power-of-two avg is -EINVAL");
	bad = p;
	bad.zstd_level = 0;
	tap_ok(lb_store_create(path, &bad) == -EINVAL, "create with zstd level 0 is -EINVAL");

	snprintf(path, sizeof(path), "%s/plain", topdir);
	mkdir(path, 0750);
	tap_ok(lb_store_open(path, 2, &s) == -ENOENT, "open of a directory without a store is -ENOENT");

	snprintf(path, sizeof(path), "%s/future", topdir);
	mkdir(path, 0750);
	char cfg[500];
	snprintf(cfg, sizeof(cfg), "%s/config", path);
	write_text_file(cfg, "[store]\nformat = 99\nchunk_min = 262144\nchunk_avg = 1048576\n"
			     "chunk_max = 4194304\ncompression = zstd:3\npack_size = 16777216\n");
	tap_ok(lb_store_open(path, 2, &s) == -EPROTONOSUPPORT, "open of a format 99 store is -EPROTONOSUPPORT");
	write_text_file(cfg, "[store]\nformat = 1\nchunk_min = lots\n");
	tap_ok(lb_store_open(path, 2, &s) == -EBADMSG, "open with a damaged config is -EBADMSG");
}

static struct lb_snapshot *s1, *s2, *s2b, *s2c, *s4;

/* A sparse file: its data is the extents' bytes back to back. */
static void test_sparse(struct lb_store *s)
{
	static const struct lb_extent ext[3] = { { 0, 4096 }, { 1u << 20, 100000 }, { 8u << 20, 2u << 20 } };
	const uint64_t logical = 10u << 20;
	size_t len = 0;
	for (int i = 0; i < 3; i++)
		len += ext[i].len;
	uint8_t *data = make_random(len, 55);
	struct lb_backup *b = NULL;
	struct lb_snapshot *snap = NULL;
	int r = lb_backup_begin(s, "acme", "sparse", NULL, &b);
	tap_ok(r == 0 && lb_backup_file_set_layout(b, logical, ext, 3) == -EINVAL, "set_layout outside a file is -EINVAL");
	char path[] = "disk.img";
	struct lb_entry e = { .path = path, .type = LB_FT_REG, .mode = 0600, .size = logical };
	if (r == 0)
		r = lb_backup_file_begin(b, &e);
	if (r == 0)
		r = lb_backup_file_write(b, data, len);
	if (r == 0)
		r = lb_backup_file_set_layout(b, logical, ext, 3);
	if (r == 0)
		r = lb_backup_file_end(b);
	if (r == 0)
		r = lb_backup_commit(b, &snap);
	tap_ok(r == 0, "backup of a sparse file with 3 extents commits");
	lb_backup_free(b);
	if (r < 0) {
		free(data);
		return;
	}
	struct lb_entry got;
	r = lb_store_lookup(s, snap, "disk.img", &got);
	int ext_ok = r == 1 && got.size == logical && got.nextents == 3;
	for (size_t i = 0; ext_ok && i < 3; i++)
		ext_ok = got.extents[i].off == ext[i].off && got.extents[i].len == ext[i].len;
	uint64_t covered = 0;
	for (size_t i = 0; r == 1 && i < got.nchunks; i++)
		covered += got.chunks[i].size;
	tap_ok(ext_ok && covered == len, "its entry keeps size %llu, the extents, and chunks of %zu data bytes",
	       (unsigned long long)logical, len);
	struct sinkbuf sb = { 0 };
	int rr = r == 1 ? lb_store_read_file(s, &got, sink, &sb) : -1;
	tap_ok(rr == 0 && sb.len == len && memcmp(sb.p, data, len) == 0, "read_file returns the extents back to back");
	free(sb.p);

	/* The whole tree in memory for many lookups. */
	struct lb_mindex *mi = NULL;
	struct lb_entry viaidx;
	int rl = lb_store_load_tree(s, snap, &mi);
	int fr = rl == 0 ? lb_mindex_find(mi, "disk.img", &viaidx) : -1;
	tap_ok(fr == 1 && r == 1 && viaidx.nchunks == got.nchunks && viaidx.nextents == 3 &&
	       memcmp(viaidx.chunks, got.chunks, got.nchunks * sizeof(*got.chunks)) == 0,
	       "load_tree + mindex_find return the same entry");
	if (fr == 1)
		lb_entry_clear(&viaidx);
	tap_ok(rl == 0 && lb_mindex_find(mi, "disk.im", &viaidx) == 0, "mindex_find of an absent path is 0");
	lb_mindex_free(mi);
	if (r == 1)
		lb_entry_clear(&got);
	lb_snapshot_free(snap);
	free(data);
}

static void test_backup(struct lb_store *s)
{
	struct lb_backup_stats st;
	int64_t t1 = utc_ns(2024, 3, 10, 12, 0, 0);
	int r = backup_main(s, "acme", "web", t1, &s1, &st);
	tap_ok(r == 0 && s1, "backup of 0 B .. 20 MiB files, dirs and a symlink commits");
	if (r < 0) {
		tap_diag("%s", lb_error_detail());
		exit(1);
	}
	size_t total = 0;
	for (size_t i = 0; i < NFILES; i++)
		total += files[i].len;
	tap_ok(st.files == NFILES && st.logical == total && st.reused_files == 0,
	       "stats: %llu files, %llu bytes", (unsigned long long)st.files, (unsigned long long)st.logical);
	tap_ok(st.new_chunks > st.chunks && st.new_chunks - st.chunks == s1->ntree,
	       "stats: new chunks are the %llu data chunks plus the tree blobs", (unsigned long long)st.chunks);
	tap_ok(st.new_stored < total / 2, "stats: the text compresses (%llu stored of %zu)",
	       (unsigned long long)st.new_stored, total);
	tap_ok(s1->nentries == NFILES + 3 && s1->nfiles == NFILES && s1->logical == total && s1->time_ns == t1 &&
	       strcmp(s1->tenant, "acme") == 0 && strcmp(s1->dataset, "web") == 0 &&
	       strcmp(s1->host, "host-1") == 0 && s1->ntags == 1 && strcmp(s1->tags[0], "nightly") == 0,
	       "snapshot carries tenant, dataset, host, time, tag and figures");

	tap_ok(main_set_ok(s, s1), "every file reads back bit-exact, with its metadata and chunk ids");

	struct lb_entry e;
	r = lb_store_lookup(s, s1, "data/latest", &e);
	tap_ok(r == 1 && e.type == LB_FT_SYMLINK && e.link && strcmp(e.link, "random3m.bin") == 0 &&
	       e.nchunks == 0, "the symlink reads back with its target");
	if (r == 1)
		lb_entry_clear(&e);
	r = lb_store_lookup(s, s1, "docs", &e);
	tap_ok(r == 1 && e.type == LB_FT_DIR && e.mode == 0755 && e.mtime_ns == -5, "the directory reads back");
	if (r == 1)
		lb_entry_clear(&e);
	tap_ok(lb_store_lookup(s, s1, "docs/missing", &e) == 0, "lookup of an absent path is 0");

	/* The tree reader lists every path once, in tree order. */
	struct lb_mreader *mr = lb_store_tree_reader(s, s1);
	size_t n = 0;
	int ordered = 1;
	char last[256] = "";
	while (lb_mreader_next(mr, &e) == 1) {
		if (n > 0 && lb_path_cmp(last, e.path) >= 0)
			ordered = 0;
		snprintf(last, sizeof(last), "%s", e.path);
		n++;
		lb_entry_clear(&e);
	}
	lb_mreader_free(mr);
	tap_ok(ordered && n == NFILES + 3, "tree reader lists %zu paths in tree order", n);

	/* Same data again, a day later: only tree blobs can be new. */
	uint64_t before = lb_index_entries(lb_store_index(s));
	r = backup_main(s, "acme", "web", utc_ns(2024, 3, 11, 8, 0, 0), &s2, &st);
	uint64_t after = lb_index_entries(lb_store_index(s));
	tap_ok(r == 0 && s2 && main_set_ok(s, s2), "second backup of the same data commits and reads back");
	tap_ok(r == 0 && st.new_chunks <= s2->ntree && st.new_stored <= s2->tree_bytes &&
	       after - before == st.new_chunks,
	       "second backup stores no data chunk (%llu new, %llu bytes; %zu tree blobs)",
	       (unsigned long long)st.new_chunks, (unsigned long long)st.new_stored, s2 ? s2->ntree : 0);
	tap_ok(r == 0 && s2->new_chunks == st.new_chunks && memcmp(s1->id, s2->id, LB_SNAP_ID_LEN) != 0,
	       "second snapshot is a new snapshot with the same figures as its stats");

	/* A file made of chunks already stored: added without its data. */
	struct lb_backup *b = NULL;
	struct lb_snapshot *sr = NULL;
	struct lb_entry src;
	int lr = lb_store_lookup(s, s1, files[3].path, &src);
	r = lr == 1 ? lb_backup_begin(s, "acme", "reuse", NULL, &b) : -ENOENT;
	if (lr == 1) {
		free(src.path);
		src.path = strdup("copy.bin");
		if (r == 0)
			r = lb_backup_add(b, &src);
		lb_entry_clear(&src);
	}
	if (r == 0)
		r = lb_backup_commit(b, &sr);
	if (r == 0)
		st = *lb_backup_get_stats(b);
	tap_ok(r == 0 && st.reused_files == 1 && st.files == 1 && st.logical == files[3].len &&
	       st.new_chunks <= sr->ntree, "a file of stored chunks is added without data");
	tap_ok(r == 0 && file_ok(s, sr, "copy.bin", 3, files[3].data, files[3].len, 1), "... and reads back");
	lb_backup_free(b);
	lb_snapshot_free(sr);

	test_sparse(s);
}

/* ---- lb_store_read_files ------------------------------------------------------ */

struct rf_ctx {
	struct lb_entry *ents;
	size_t n, given, done;
	struct sinkbuf *got; /* per entry */
	int order_ok;        /* data and done only for the entry in progress */
	size_t fail_after;   /* data() fails on this call (0: never) */
	size_t data_calls, next_fail_at;
};

static int rf_next(void *arg, const struct lb_entry **e)
{
	struct rf_ctx *c = arg;
	if (c->next_fail_at && c->given + 1 == c->next_fail_at)
		return -EIO;
	if (c->given == c->n)
		return 0;
	*e = &c->ents[c->given++];
	return 1;
}

static int rf_data(void *arg, const struct lb_entry *e, const void *data, size_t len)
{
	struct rf_ctx *c = arg;
	if (c->done >= c->n || e != &c->ents[c->done] || e->nchunks == 0)
		c->order_ok = 0;
	if (++c->data_calls == c->fail_after)
		return -ECANCELED;
	return c->done < c->n ? sink(&c->got[c->done], data, len) : 0;
}

static int rf_done(void *arg, const struct lb_entry *e)
{
	struct rf_ctx *c = arg;
	if (c->done >= c->n || e != &c->ents[c->done] || c->done >= c->given)
		c->order_ok = 0;
	c->done++;
	return 0;
}

/* Every entry of snap, in tree order; returns the count. */
static size_t all_entries(struct lb_store *s, const struct lb_snapshot *snap, struct lb_entry **out)
{
	struct lb_mreader *mr = lb_store_tree_reader(s, snap);
	struct lb_entry *v = NULL;
	size_t n = 0, cap = 0;
	struct lb_entry e;
	while (lb_mreader_next(mr, &e) == 1) {
		if (lb_grow(&v, &cap, n + 1, sizeof(*v)) < 0)
			exit(99);
		v[n++] = e;
	}
	lb_mreader_free(mr);
	*out = v;
	return n;
}

static void free_entries(struct lb_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lb_entry_clear(&v[i]);
	free(v);
}

static int run_read_files(struct lb_store *s, struct rf_ctx *c)
{
	c->given = c->done = c->data_calls = 0;
	c->order_ok = 1;
	c->got = calloc(c->n, sizeof(*c->got));
	if (!c->got)
		exit(99);
	return lb_store_read_files(s, rf_next, rf_data, rf_done, c);
}

static void free_got(struct rf_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->got[i].p);
	free(c->got);
	c->got = NULL;
}

static void test_read_files(struct lb_store *s, const struct lb_snapshot *snap)
{
	struct rf_ctx c = { 0 };
	c.n = all_entries(s, snap, &c.ents);
	int r = run_read_files(s, &c);
	tap_ok(r == 0 && c.given == c.n && c.done == c.n, "read_files: every entry pulled and done (%zu)", c.n);
	tap_ok(c.order_ok, "read_files: data and done arrive entry by entry in the order next() gave");
	int same = 1;
	for (size_t i = 0; i < c.n; i++) {
		const struct file *f = NULL;
		for (size_t k = 0; k < NFILES; k++)
			if (strcmp(files[k].path, c.ents[i].path) == 0)
				f = &files[k];
		size_t len = f ? f->len : 0;
		if (c.got[i].len != len || (len && memcmp(c.got[i].p, f->data, len) != 0))
			same = 0;
	}
	tap_ok(same, "read_files: every file's bytes equal its input, other entries get no data");
	free_got(&c);

	/* A negative return from data() stops the read and is returned. */
	c.fail_after = 3;
	r = run_read_files(s, &c);
	size_t calls = c.data_calls;
	tap_ok(r == -ECANCELED && calls == 3 && c.done < c.n, "read_files: an error from data() stops it (%d)", r);
	free_got(&c);
	c.fail_after = 0;

	/* So does one from next(). */
	c.next_fail_at = 4;
	r = run_read_files(s, &c);
	tap_ok(r == -EIO && c.given == 3 && c.done <= 3, "read_files: an error from next() is returned (%d)", r);
	free_got(&c);
	free_entries(c.ents, c.n);
}

static void test_refused(struct lb_store *s)
{
	static const char *const bad[] = {
		"../x", "A", "", "-x", ".x", "a/b", "a b", "caf\xc3\xa9", "x\n",
		"0123456789012345678901234567890123456789012345678901234567890123x", /* 65 */
	};
	struct lb_backup *b;
	int tenants = 1, datasets = 1;
	for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
		b = NULL;
		if (lb_backup_begin(s, bad[i], "web", NULL, &b) != -EINVAL) {
			tap_diag("tenant '%s' accepted", bad[i]);
			tenants = 0;
			lb_backup_free(b);
		}
		b = NULL;
		if (lb_backup_begin(s, "acme", bad[i], NULL, &b) != -EINVAL) {
			tap_diag("dataset '%s' accepted", bad[i]);
			datasets = 0;
			lb_backup_free(b);
		}
	}
	tap_ok(tenants, "lb_backup_begin refuses %zu invalid tenant names", LB_ARRAY_SIZE(bad));
	tap_ok(datasets, "lb_backup_begin refuses %zu invalid dataset names", LB_ARRAY_SIZE(bad));
	const char *longest = "0123456789012345678901234567890123456789012345678901234567890123";
	int r = lb_backup_begin(s, longest, "a.b-c_d", NULL, &b);
	tap_ok(r == 0, "a 64-character tenant and a dataset with . - _ are accepted");
	if (r == 0)
		lb_backup_free(b);

	/* Abandoned: data written, never committed. */
	struct lb_snapshot **list;
	size_t n0 = 0, n1 = 99;
	lb_store_list_snapshots(s, NULL, NULL, &list, &n0);
	lb_snapshot_list_free(list, n0);
	r = lb_backup_begin(s, "acme", "abandoned", NULL, &b);
	uint8_t *junk = make_random(1u << 20, 77);
	if (r == 0)
		r = backup_data(b, "junk.bin", 0, junk, 1u << 20);
	if (r == 0)
		r = add_simple(b, "dir", LB_FT_DIR, NULL);
	free(junk);
	/* A chunk the store does not hold is refused. */
	struct lb_entry e = { .type = LB_FT_REG, .size = 10 };
	struct lb_chunkref c = { .size = 10 };
	char path[] = "ghost";
	memset(c.id.b, 0xab, LB_ID_LEN);
	e.path = path;
	e.chunks = &c;
	e.nchunks = 1;
	tap_ok(r == 0 && lb_backup_add(b, &e) == -ENOENT, "adding a file whose chunk is not stored is -ENOENT");
	struct lb_entry inv = { .type = LB_FT_DIR };
	char invp[] = "a/../b";
	inv.path = invp;
	tap_ok(r == 0 && lb_backup_add(b, &inv) == -EINVAL, "adding an invalid path is -EINVAL");
	/* Fields a reader would refuse are refused at once: st_mode instead of
	 * the permission bits is an easy mistake. */
	struct lb_entry dir = { .type = LB_FT_DIR, .mode = 040755 };
	char dirp[] = "stmode";
	dir.path = dirp;
	tap_ok(r == 0 && lb_backup_add(b, &dir) == -EINVAL, "adding a directory with mode 040755 is -EINVAL");
	struct lb_entry reg = { .type = LB_FT_REG, .mode = 0100644 };
	char regp[] = "stmode.bin";
	reg.path = regp;
	tap_ok(r == 0 && lb_backup_file_begin(b, &reg) < 0, "starting a file with mode 0100644 is refused");
	if (r == 0)
		lb_backup_free(b);
	lb_store_list_snapshots(s, NULL, NULL, &list, &n1);
	tap_ok(r == 0 && n1 == n0, "a backup freed without commit leaves no snapshot (%zu)", n1);
	struct lb_snapshot *f = NULL;
	tap_ok(lb_store_find_snapshot(s, NULL, "abandoned@latest", &f) == -ENOENT, "... and no dataset");
	lb_snapshot_free(f);
	lb_snapshot_list_free(list, n1);
}

/* Two empty snapshots whose ids share their first 4 hex digits: head
 * bytes are predictable, so search times for a collision offline. */
static struct lb_snapshot *amb[2];

static void make_ambiguous(struct lb_store *s)
{
	enum { TRIES = 20000 };
	int *seen = xmalloc(65536 * sizeof(int));
	int64_t base = utc_ns(2020, 1, 1, 0, 0, 0), t[2] = { 0, 0 };
	for (int i = 0; i < 65536; i++)
		seen[i] = -1;
	for (int i = 0; i < TRIES && !t[0]; i++) {
		char tenant[] = "amb", dataset[] = "x", host[] = "";
		struct lb_snapshot sn = { .tenant = tenant, .dataset = dataset, .host = host,
					  .time_ns = base + (int64_t)i * 1000000000LL };
		struct lb_buf b;
		lb_buf_init(&b);
		lb_snapshot_encode(&sn, &b);
		lb_buf_free(&b);
		int key = sn.id[0] << 8 | sn.id[1];
		if (seen[key] >= 0) {
			t[0] = base + (int64_t)seen[key] * 1000000000LL;
			t[1] = sn.time_ns;
		}
		seen[key] = i;
	}
	free(seen);
	int r = t[0] ? 0 : -1;
	for (int k = 0; r == 0 && k < 2; k++) {
		struct lb_backup *b;
		r = lb_backup_begin(s, "amb", "x", NULL, &b);
		if (r == 0) {
			lb_backup_set_time(b, t[k]);
			r = lb_backup_commit(b, &amb[k]);
			lb_backup_free(b);
		}
	}
	tap_ok(r == 0, "two empty snapshots committed");
}

static void test_find(struct lb_store *s)
{
	int r = backup_note(s, "acme", "web", utc_ns(2024, 3, 11, 23, 59, 59), &s2b);
	if (r == 0)
		r = backup_note(s, "acme", "web", utc_ns(2024, 3, 12, 0, 0, 0), &s2c);
	if (r == 0)
		r = backup_note(s, "other", "web", utc_ns(2024, 3, 11, 10, 0, 0), &s4);
	tap_ok(r == 0, "three more snapshots committed");
	if (r < 0)
		return;
	make_ambiguous(s);

	struct lb_snapshot **list;
	size_t n;
	r = lb_store_list_snapshots(s, NULL, NULL, &list, &n);
	int sorted = r == 0;
	for (size_t i = 1; sorted && i < n; i++)
		if (list[i - 1]->time_ns > list[i]->time_ns)
			sorted = 0;
	tap_ok(r == 0 && n == 9 && sorted, "list of all snapshots: %zu, oldest first", n);
	if (r == 0)
		lb_snapshot_list_free(list, n);
	r = lb_store_list_snapshots(s, "acme", "web", &list, &n);
	tap_ok(r == 0 && n == 4 && same_snap(list[0], s1) && same_snap(list[1], s2) && same_snap(list[2], s2b) &&
	       same_snap(list[3], s2c), "list of acme/web: the 4 snapshots in time order");
	if (r == 0)
		lb_snapshot_list_free(list, n);
	r = lb_store_list_snapshots(s, "acme", NULL, &list, &n);
	tap_ok(r == 0 && n == 6, "list of tenant acme: 6 (web, reuse and sparse)");
	if (r == 0)
		lb_snapshot_list_free(list, n);
	r = lb_store_list_snapshots(s, "nobody", NULL, &list, &n);
	tap_ok(r == 0 && n == 0, "list of an unknown tenant is empty");
	if (r == 0)
		lb_snapshot_list_free(list, n);

	char hex[LB_SNAP_HEX], name[128];
	lb_snap_id_hex(s1->id, hex);
	struct lb_snapshot *f = NULL;
	struct {
		const char *tenant;
		const char *name;
		const struct lb_snapshot *want; /* NULL: -ENOENT */
	} cases[] = {
		{ NULL, "web@latest", s2c },
		{ "acme", "web@latest", s2c },
		{ "other", "web@latest", s4 },
		{ NULL, "acme/web@latest", s2c },
		{ NULL, "other/web@latest", s4 },
		{ NULL, "acme/web@2024-03-10", s1 },
		{ NULL, "acme/web@2024-03-11", s2b },
		{ NULL, "acme/web@2024-03-12", s2c },
		{ "acme", "web@2024-03-11", s2b },
		{ NULL, "other/web@2024-03-11", s4 },
		{ NULL, "acme/web@2024-03-13", NULL },
		{ NULL, "acme/web@2024-03-09", NULL },
		{ NULL, "acme/web@2024-13-01", NULL },
		{ NULL, "acme/web@yesterday", NULL },
		{ NULL, "acme/nope@latest", NULL },
		{ NULL, "nobody/web@latest", NULL },
		{ "acme", "other/web@latest", NULL },
		{ "other", "acme/web@2024-03-10", NULL },
	};
	for (size_t i = 0; i < LB_ARRAY_SIZE(cases); i++) {
		f = NULL;
		const char *tn = cases[i].tenant ? cases[i].tenant : "";
		r = lb_store_find_snapshot(s, cases[i].tenant, cases[i].name, &f);
		if (cases[i].want)
			tap_ok(r == 0 && same_snap(f, cases[i].want), "find %s%s%s", tn, tn[0] ? ": " : "",
			       cases[i].name);
		else
			tap_ok(r == -ENOENT, "find %s%s%s is -ENOENT", tn, tn[0] ? ": " : "", cases[i].name);
		lb_snapshot_free(f);
	}

	snprintf(name, sizeof(name), "%.8s", hex);
	f = NULL;
	r = lb_store_find_snapshot(s, NULL, name, &f);
	tap_ok(r == 0 && same_snap(f, s1), "find by 8-digit id prefix %s", name);
	lb_snapshot_free(f);
	f = NULL;
	r = lb_store_find_snapshot(s, "acme", hex, &f);
	tap_ok(r == 0 && same_snap(f, s1) && f->nentries == s1->nentries && f->ntree == s1->ntree,
	       "find by full id within the tenant returns a full copy");
	lb_snapshot_free(f);
	snprintf(name, sizeof(name), "acme/%.6s", hex);
	f = NULL;
	r = lb_store_find_snapshot(s, NULL, name, &f);
	tap_ok(r == 0 && same_snap(f, s1), "find by TENANT/prefix");
	lb_snapshot_free(f);
	snprintf(name, sizeof(name), "%.3s", hex);
	tap_ok(lb_store_find_snapshot(s, NULL, name, &f) == -ENOENT, "a 3-digit prefix is too short: -ENOENT");
	f = NULL;
	tap_ok(lb_store_find_snapshot(s, "other", hex, &f) == -ENOENT, "an id of another tenant is -ENOENT");
	lb_snapshot_free(f);
	f = NULL;

	/* The first 8-digit prefix that no snapshot has. */
	r = lb_store_list_snapshots(s, NULL, NULL, &list, &n);
	int clash = 1;
	for (unsigned v = 0; r == 0 && clash; v++) {
		snprintf(name, sizeof(name), "%08x", v);
		clash = 0;
		for (size_t i = 0; i < n; i++) {
			char h[LB_SNAP_HEX];
			clash |= strncmp(lb_snap_id_hex(list[i]->id, h), name, 8) == 0;
		}
	}
	if (r == 0)
		lb_snapshot_list_free(list, n);
	tap_ok(!clash && lb_store_find_snapshot(s, NULL, name, &f) == -ENOENT, "an absent id prefix is -ENOENT");
	lb_snapshot_free(f);
	f = NULL;

	if (amb[0] && amb[1]) {
		char h0[LB_SNAP_HEX], h1[LB_SNAP_HEX];
		lb_snap_id_hex(amb[0]->id, h0);
		lb_snap_id_hex(amb[1]->id, h1);
		tap_ok(strncmp(h0, h1, 4) == 0 && strcmp(h0, h1) != 0,
		       "the two empty snapshots' ids share 4 digits (%.4s)", h0);
		snprintf(name, sizeof(name), "%.4s", h0);
		r = lb_store_find_snapshot(s, NULL, name, &f);
		tap_ok(r == -EEXIST, "an ambiguous prefix is -EEXIST (%d)", r);
		if (r == 0)
			lb_snapshot_free(f);
		f = NULL;
		r = lb_store_find_snapshot(s, "amb", h1, &f);
		tap_ok(r == 0 && same_snap(f, amb[1]), "the full id of either is unique");
		lb_snapshot_free(f);
	}
}

/* ---- concurrency ------------------------------------------------------------------ */

struct job {
	struct lb_store *s;
	const char *dataset;
	pthread_barrier_t *bar;
	const uint8_t *shared, *own;
	size_t shared_len, own_len;
	struct lb_snapshot *snap;
	int r;
	char detail[256];
};

static void *backup_thread(void *arg)
{
	struct job *j = arg;
	struct lb_backup *b;
	pthread_barrier_wait(j->bar);
	j->r = lb_backup_begin(j->s, "acme", j->dataset, NULL, &b);
	if (j->r < 0)
		return NULL;
	j->r = backup_data(b, "shared.bin", 0, j->shared, j->shared_len);
	if (j->r == 0)
		j->r = backup_data(b, "own.bin", 1, j->own, j->own_len);
	if (j->r == 0)
		j->r = backup_data(b, "shared-again.bin", 2, j->shared, j->shared_len);
	if (j->r == 0)
		j->r = lb_backup_commit(b, &j->snap);
	if (j->r < 0)
		snprintf(j->detail, sizeof(j->detail), "%s", lb_error_detail());
	lb_backup_free(b);
	return NULL;
}

static void test_concurrent(struct lb_store *s, const char *tag, size_t shared_len, size_t own_len, uint64_t seed)
{
	uint8_t *shared = make_random(shared_len, seed);
	uint8_t *own[2] = { make_random(own_len, seed + 1), make_random(own_len, seed + 2) };
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	struct job jobs[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		jobs[i] = (struct job){ .s = s, .dataset = i ? "conc-b" : "conc-a", .bar = &bar, .shared = shared,
					.own = own[i], .shared_len = shared_len, .own_len = own_len };
		pthread_create(&th[i], NULL, backup_thread, &jobs[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < 2; i++)
		if (jobs[i].r < 0)
			tap_diag("%s: %d: %s", jobs[i].dataset, jobs[i].r, jobs[i].detail);
	tap_ok(jobs[0].r == 0 && jobs[1].r == 0, "%s: two concurrent backups of overlapping data both commit", tag);
	int ok = jobs[0].r == 0 && jobs[1].r == 0;
	for (int i = 0; ok && i < 2; i++) {
		ok = file_ok(s, jobs[i].snap, "shared.bin", 0, shared, shared_len, 1) &&
		     file_ok(s, jobs[i].snap, "own.bin", 1, own[i], own_len, 1) &&
		     file_ok(s, jobs[i].snap, "shared-again.bin", 2, shared, shared_len, 1);
	}
	tap_ok(ok, "%s: both read back bit-exact", tag);
	size_t in, id, pn, pd;
	count_chunks(s, &in, &id, &pn, &pd, NULL);
	tap_ok(in == id, "%s: no chunk is indexed twice (%zu entries, %zu distinct)", tag, in, id);
	tap_ok(pn == pd, "%s: no chunk is stored twice in the packs (%zu blobs, %zu distinct)", tag, pn, pd);
	for (int i = 0; i < 2; i++)
		lb_snapshot_free(jobs[i].snap);
	free(shared);
	free(own[0]);
	free(own[1]);
}

/* ---- check ------------------------------------------------------------------ */

struct problems {
	size_t n, files, chunks, others;
	char file_lines[16][512];
	size_t nlines;
};

static void problem_cb(void *arg, const char *kind, const char *what)
{
	struct problems *p = arg;
	p->n++;
	if (strcmp(kind, "file") == 0) {
		p->files++;
		if (p->nlines < 16)
			snprintf(p->file_lines[p->nlines++], sizeof(p->file_lines[0]), "%s", what);
	} else if (strcmp(kind, "chunk") == 0) {
		p->chunks++;
	} else {
		p->others++;
		tap_diag("problem %s: %s", kind, what);
	}
}

/* Whether a report line ("snapshot ...: file PATH is damaged") names path. */
static int names_file(const char *line, const char *path)
{
	const char *p = strstr(line, ": file ");
	size_t n = strlen(path);
	return p && strncmp(p + 7, path, n) == 0 && strcmp(p + 7 + n, " is damaged") == 0;
}

static int mentions_file(const struct problems *p, const char *path)
{
	for (size_t i = 0; i < p->nlines; i++)
		if (names_file(p->file_lines[i], path))
			return 1;
	return 0;
}

/* The same race with small chunks: hundreds of shared chunks per round. */
static void test_small_store(void)
{
	char path[400];
	struct lb_store_params p;
	struct lb_store *s;
	lb_store_params_default(&p);
	p.chunk_min = 4096;
	p.chunk_avg = 16384;
	p.chunk_max = 65536;
	p.pack_size = 1u << 20;
	snprintf(path, sizeof(path), "%s/small", topdir);
	int r = lb_store_create(path, &p);
	if (r == 0)
		r = lb_store_open(path, 2, &s);
	tap_ok(r == 0, "create and open a store with 4/16/64 KiB chunks and 1 MiB packs");
	if (r < 0)
		return;
	for (int round = 0; round < 3; round++) {
		char tag[32];
		snprintf(tag, sizeof(tag), "small chunks, round %d", round + 1);
		test_concurrent(s, tag, 6u << 20, 1u << 20, 2000 + 10 * (uint64_t)round);
	}
	struct lb_check_result res;
	struct problems pr = { 0 };
	r = lb_store_check(s, 1, problem_cb, &pr, &res);
	tap_ok(r == 0 && res.errors == 0 && res.snapshots == 6, "check with read_data of that store is clean");
	lb_store_close(s);
}

/* Changes one byte in the middle of a blob's payload and sets the blob's
 * CRC to match, as a fault the CRC cannot see would. */
/* Reads the payload of the blob pe names from the pack at path. */
static uint8_t *read_payload(const char *path, const struct lb_pack_entry *pe)
{
	uint8_t *b = xmalloc(pe->stored + 1);
	int fd = open(path, O_RDONLY);
	off_t at = (off_t)pe->offset + LB_BLOB_HEADER_SIZE + (off_t)pe->nbases * LB_ID_LEN;
	int ok = fd >= 0 && pread(fd, b, pe->stored, at) == (ssize_t)pe->stored;
	if (fd >= 0)
		close(fd);
	if (!ok) {
		free(b);
		return NULL;
	}
	return b;
}

/* Flips bit 0 of byte pos of the blob's payload and sets the blob's CRC
 * to match, as a fault the CRC cannot see would. */
static int forge_byte(const char *path, const struct lb_pack_entry *pe, size_t pos)
{
	size_t n = lb_blob_buf_size(pe);
	uint8_t *b = xmalloc(n);
	int fd = open(path, O_RDWR);
	int ok = fd >= 0 && pread(fd, b, n, (off_t)pe->offset) == (ssize_t)n;
	if (ok) {
		b[n - pe->stored + pos] ^= 0x01;
		lb_put32(b + 48, lb_blob_crc(b, n));
		ok = pwrite(fd, b, n, (off_t)pe->offset) == (ssize_t)n;
	}
	if (fd >= 0)
		close(fd);
	free(b);
	return ok ? 0 : -1;
}

/* A byte of a zstd payload whose flip still decodes, to other bytes (a
 * literal): only a check of the decoded bytes can tell.  SIZE_MAX if none
 * is found. */
static size_t silent_flip(uint8_t *payload, const struct lb_pack_entry *pe, const uint8_t *plain)
{
	uint8_t *out = xmalloc(pe->raw);
	size_t found = SIZE_MAX;
	for (size_t k = 0; k < pe->stored && found == SIZE_MAX; k++) {
		size_t pos = (pe->stored / 2 + k) % pe->stored;
		payload[pos] ^= 0x01;
		if (lb_decompress(LB_CODEC_ZSTD, payload, pe->stored, out, pe->raw) == 0 &&
		    memcmp(out, plain, pe->raw) != 0)
			found = pos;
		payload[pos] ^= 0x01;
	}
	free(out);
	return found;
}

/* A restore skips hashing a chunk whose frame checked it (codec.h): a
 * change the blob's CRC does not see must still fail the read, by the
 * frame's checksum in a store written with them and by the id's hash in
 * one written without (sums 0, as before December 2026).  Random data
 * (stored blocks, or raw without checksums) and text (a compressed frame,
 * with or without a checksum). */
static void test_frame_sums(int sums)
{
	char path[400], pname[96], ppath[600];
	struct lb_store *s;
	int was = lb_codec_checksums(sums);
	struct lb_store_params p;
	lb_store_params_default(&p);
	snprintf(path, sizeof(path), "%s/sums%d", topdir, sums);
	int r = lb_store_create(path, &p);
	if (r == 0)
		r = lb_store_open(path, 2, &s);
	if (!tap_ok(r == 0, "create and open a store (frame checksums %s)", sums ? "on" : "off"))
		return;
	size_t len = 200000;
	uint8_t *data[2] = { make_random(len, 4040 + (uint64_t)sums), make_text(len, 5050 + (uint64_t)sums) };
	const char *names[2] = { "random.bin", "notes.txt" };
	struct lb_backup *b;
	struct lb_snapshot *snap = NULL;
	r = lb_backup_begin(s, "acme", "sums", "host-1", &b);
	if (r == 0) {
		for (size_t i = 0; r == 0 && i < 2; i++)
			r = backup_data(b, names[i], i, data[i], len);
		if (r == 0)
			r = lb_backup_commit(b, &snap);
		lb_backup_free(b);
	}
	for (int i = 0; i < 2; i++) {
		struct lb_entry e = { 0 };
		int ok = r == 0 && lb_store_lookup(s, snap, names[i], &e) == 1 && e.nchunks == 1;
		struct lb_pack_id pid;
		struct lb_pack_entry pe;
		ok = ok && lb_index_lookup(lb_store_index(s), &e.chunks[0].id, &pid, &pe);
		int want = i == 0 && !sums ? LB_CODEC_RAW : LB_CODEC_ZSTD;
		tap_ok(ok && pe.codec == want, "%s is one chunk stored %s", names[i],
		       want == LB_CODEC_RAW ? "raw" : sums ? "in a checksummed frame" : "in a frame without checksum");
		struct sinkbuf sb = { 0 };
		int rr = ok ? lb_store_read_file(s, &e, sink, &sb) : -1;
		tap_ok(rr == 0 && sb.len == len && memcmp(sb.p, data[i], len) == 0, "%s reads back", names[i]);
		free(sb.p);
		memset(&sb, 0, sizeof(sb));
		lb_pack_name(&pid, pname, sizeof(pname));
		snprintf(ppath, sizeof(ppath), "%s/%s", path, pname);
		/* In a compressed frame without a checksum, a flip that still
		 * decodes: what only the id's hash catches. */
		size_t pos = ok ? pe.stored / 2 : 0;
		if (ok && pe.codec == LB_CODEC_ZSTD && !sums) {
			uint8_t *pl = read_payload(ppath, &pe);
			pos = pl ? silent_flip(pl, &pe, data[i]) : SIZE_MAX;
			free(pl);
			ok = pos != SIZE_MAX;
		}
		rr = ok ? forge_byte(ppath, &pe, pos) : -1;
		lb_clear_error();
		if (rr == 0)
			rr = lb_store_read_file(s, &e, sink, &sb);
		const char *why = sums ? "cannot decode" : "content does not match its id";
		tap_ok(rr == -EBADMSG && strstr(lb_error_detail(), why),
		       "%s: one byte changed under a matching CRC fails the read: \"%s\"", names[i], lb_error_detail());
		free(sb.p);
		lb_entry_clear(&e);
	}
	lb_snapshot_free(snap);
	free(data[0]);
	free(data[1]);
	lb_store_close(s);
	lb_codec_checksums(was);
}

static void test_check(struct lb_store *s)
{
	struct lb_check_result res;
	struct problems pr = { 0 };
	struct lb_snapshot **list;
	size_t nsnap = 0;
	lb_store_list_snapshots(s, NULL, NULL, &list, &nsnap);
	uint64_t nfiles = 0;
	for (size_t i = 0; i < nsnap; i++)
		nfiles += list[i]->nfiles;
	lb_snapshot_list_free(list, nsnap);

	int r = lb_store_check(s, 0, problem_cb, &pr, &res);
	tap_ok(r == 0 && res.errors == 0 && pr.n == 0, "check of a clean store: 0 problems");
	tap_ok(res.snapshots == nsnap && res.files == nfiles && res.packs > 0 &&
	       res.chunks == lb_index_entries(lb_store_index(s)) && res.torn_packs == 0,
	       "check counts %llu snapshots, %llu files, %llu packs, %llu chunks", (unsigned long long)res.snapshots,
	       (unsigned long long)res.files, (unsigned long long)res.packs, (unsigned long long)res.chunks);
	struct pack_walk pw;
	size_t in, id, pn, pd;
	count_chunks(s, &in, &id, &pn, &pd, &pw);
	memset(&pr, 0, sizeof(pr));
	r = lb_store_check(s, 1, problem_cb, &pr, &res);
	tap_ok(r == 0 && res.errors == 0 && pr.n == 0, "check with read_data of a clean store: 0 problems");
	tap_ok(res.bytes_read == pw.bytes && res.packs == pw.packs, "read_data read every pack (%llu bytes)",
	       (unsigned long long)res.bytes_read);

	/* Damage one byte in the payload of a middle chunk of random3m.bin. */
	struct lb_entry e;
	r = lb_store_lookup(s, s1, files[3].path, &e);
	if (r != 1 || e.nchunks < 2) {
		tap_ok(0, "look up the file to damage");
		return;
	}
	struct lb_id victim = e.chunks[e.nchunks / 2].id;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	r = lb_index_lookup(lb_store_index(s), &victim, &pid, &pe);
	char pname[96], ppath[600], vhex[LB_ID_HEX];
	lb_pack_name(&pid, pname, sizeof(pname));
	snprintf(ppath, sizeof(ppath), "%s/%s", storedir, pname);
	lb_id_hex(&victim, vhex);

	/* Which files of which snapshots use that chunk. */
	char expect[8][256];
	size_t nexpect = 0;
	lb_store_list_snapshots(s, NULL, NULL, &list, &nsnap);
	for (size_t i = 0; i < nsnap; i++) {
		struct lb_mreader *mr = lb_store_tree_reader(s, list[i]);
		struct lb_entry x;
		while (lb_mreader_next(mr, &x) == 1) {
			for (size_t k = 0; k < x.nchunks; k++) {
				if (lb_id_cmp(&x.chunks[k].id, &victim) != 0)
					continue;
				int dup = 0;
				for (size_t j = 0; j < nexpect; j++)
					dup |= strcmp(expect[j], x.path) == 0;
				if (!dup && nexpect < 8)
					snprintf(expect[nexpect++], sizeof(expect[0]), "%s", x.path);
				break;
			}
			lb_entry_clear(&x);
		}
		lb_mreader_free(mr);
	}
	lb_snapshot_list_free(list, nsnap);

	r = r == 1 ? flip_byte(ppath, pe.offset + 56 + pe.stored / 2) : -1;
	tap_ok(r == 0, "flipped one byte in chunk %.12s of pack %s", vhex, pname);
	struct sinkbuf sb = { 0 };
	r = lb_store_read_file(s, &e, sink, &sb);
	tap_ok(r == -EBADMSG, "reading the damaged file is -EBADMSG");
	free(sb.p);
	struct rf_ctx c = { 0 };
	c.n = all_entries(s, s1, &c.ents);
	r = run_read_files(s, &c);
	tap_ok(r == -EBADMSG && c.done < c.n, "read_files over the snapshot stops with -EBADMSG");
	free_got(&c);
	free_entries(c.ents, c.n);
	lb_entry_clear(&e);
	tap_ok(file_ok(s, s1, files[4].path, 4, files[4].data, files[4].len, 1), "other files still read");

	memset(&pr, 0, sizeof(pr));
	r = lb_store_check(s, 1, problem_cb, &pr, &res);
	tap_ok(r == -EBADMSG && res.errors > 0, "check with read_data finds the damage: -EBADMSG");
	int all_named = nexpect == 2;
	for (size_t i = 0; i < nexpect; i++)
		if (!mentions_file(&pr, expect[i]))
			all_named = 0;
	tap_ok(pr.files > 0 && all_named, "problem 'file' names %s (and copy.bin)", files[3].path);
	int only = 1;
	for (size_t i = 0; i < pr.nlines; i++) {
		int known = 0;
		for (size_t j = 0; j < nexpect; j++)
			known |= names_file(pr.file_lines[i], expect[j]);
		if (!known) {
			tap_diag("unexpected: %s", pr.file_lines[i]);
			only = 0;
		}
	}
	tap_ok(only, "no undamaged file is reported");
	tap_ok(pr.chunks == 1, "exactly one damaged chunk reported (%zu)", pr.chunks);
	tap_ok(pr.others == 0, "no pack-level problem is added for damage inside one chunk (%zu)", pr.others);

	flip_byte(ppath, pe.offset + 56 + pe.stored / 2);

	/* The same chunk damaged in its blob header (the id) instead: still
	 * only the files using it are reported. */
	flip_byte(ppath, pe.offset + 20);
	memset(&pr, 0, sizeof(pr));
	r = lb_store_check(s, 1, problem_cb, &pr, &res);
	all_named = nexpect == 2;
	for (size_t i = 0; i < nexpect; i++)
		if (!mentions_file(&pr, expect[i]))
			all_named = 0;
	only = 1;
	for (size_t i = 0; i < pr.nlines; i++) {
		int known = 0;
		for (size_t j = 0; j < nexpect; j++)
			known |= names_file(pr.file_lines[i], expect[j]);
		if (!known) {
			tap_diag("unexpected: %s", pr.file_lines[i]);
			only = 0;
		}
	}
	tap_ok(r == -EBADMSG && pr.chunks == 1 && all_named && only,
	       "blob header flip: check names exactly the files using that chunk");
	flip_byte(ppath, pe.offset + 20);
	memset(&pr, 0, sizeof(pr));
	r = lb_store_check(s, 1, problem_cb, &pr, &res);
	tap_ok(r == 0 && res.errors == 0, "after repairing the byte check is clean again");
}

/* Backups queued behind others take the batch buffers ended ones left
 * (no fresh mapping to fault in); the last to end frees them all. */
static void test_batch_reuse(struct lb_store *s)
{
	struct lb_backup *a = NULL, *b = NULL, *c = NULL;
	uint64_t idle_cap = lb_bcache_cap(s->bcache);
	if (lb_backup_begin(s, "opd-a", "reuse", NULL, &a) < 0 || lb_backup_begin(s, "opd-b", "reuse", NULL, &b) < 0) {
		tap_ok(0, "two backups begin: %s", lb_error_detail());
		return;
	}
	uint64_t busy_cap = lb_bcache_cap(s->bcache);
	lb_backup_free(a);
	uint64_t one_left_cap = lb_bcache_cap(s->bcache);
	int left = s->nbulk_idle;
	if (lb_backup_begin(s, "opd-c", "reuse", NULL, &c) < 0) {
		tap_ok(0, "a third backup begins: %s", lb_error_detail());
		return;
	}
	int taken = s->nbulk_idle == 0;
	tap_ok(left == 2 && taken, "an ended backup's two batch buffers wait for the next, which takes them (%d)",
	       left);
	lb_backup_free(b);
	left = s->nbulk_idle;
	lb_backup_free(c);
	tap_ok(left == 2 && s->nbulk_idle == 0 && s->bulk_users == 0,
	       "the last backup to end frees them all (%d kept while one ran, %d after)", left, s->nbulk_idle);
	tap_ok(idle_cap == LB_DELTA_CACHE && busy_cap == LB_DELTA_CACHE / 4 * 3 && one_left_cap == busy_cap &&
		       lb_bcache_cap(s->bcache) == LB_DELTA_CACHE,
	       "the base cache keeps 3/4 of its size while backups run, all of it after (%llu, %llu, %llu, %llu)",
	       (unsigned long long)idle_cap, (unsigned long long)busy_cap, (unsigned long long)one_left_cap,
	       (unsigned long long)lb_bcache_cap(s->bcache));
}

int main(void)
{
	snprintf(topdir, sizeof(topdir), "%s", tap_tmpdir("store"));
	snprintf(storedir, sizeof(storedir), "%s/store", topdir);
	make_files();

	test_open_errors();
	struct lb_store *s = NULL, *s_again = NULL;
	int r = lb_store_open(storedir, 2, &s);
	tap_ok(r == 0, "open the new store with 2 threads");
	if (r < 0) {
		tap_diag("%s", lb_error_detail());
		return tap_done();
	}
	lb_clear_error();
	r = lb_store_open(storedir, 2, &s_again);
	char pidtext[64];
	snprintf(pidtext, sizeof(pidtext), "in use by pid %ld", (long)getpid());
	tap_ok(r == -EBUSY && strstr(lb_error_detail(), pidtext), "a second open is -EBUSY, detail \"%s\"",
	       lb_error_detail());
	if (r == 0)
		lb_store_close(s_again);

	test_backup(s);
	test_read_files(s, s1);
	test_refused(s);
	test_find(s);
	test_concurrent(s, "default chunks", 8u << 20, 2u << 20, 1000);
	test_batch_reuse(s);
	test_small_store();
	test_frame_sums(1);
	test_frame_sums(0);

	/* Everything survives close and reopen. */
	struct lb_snapshot **list;
	size_t n0 = 0, n1 = 0;
	lb_store_list_snapshots(s, NULL, NULL, &list, &n0);
	lb_snapshot_list_free(list, n0);
	uint64_t entries = lb_index_entries(lb_store_index(s));
	lb_store_close(s);
	s = NULL;
	r = lb_store_open(storedir, 2, &s);
	tap_ok(r == 0, "reopen");
	if (r < 0)
		return tap_done();
	lb_store_list_snapshots(s, NULL, NULL, &list, &n1);
	int found = n1 == n0;
	for (size_t i = 0; found && i < n1; i++) {
		struct lb_snapshot *f = NULL;
		char hex[LB_SNAP_HEX];
		if (lb_store_find_snapshot(s, list[i]->tenant, lb_snap_id_hex(list[i]->id, hex), &f) != 0)
			found = 0;
		lb_snapshot_free(f);
	}
	lb_snapshot_list_free(list, n1);
	tap_ok(found, "after reopen the same %zu snapshots are there", n1);
	tap_ok(lb_index_entries(lb_store_index(s)) == entries, "after reopen the index holds the same %llu chunks",
	       (unsigned long long)entries);
	struct lb_snapshot *latest = NULL;
	r = lb_store_find_snapshot(s, "acme", "web@2024-03-10", &latest);
	tap_ok(r == 0 && same_snap(latest, s1) && main_set_ok(s, latest),
	       "after reopen the first backup reads back bit-exact");
	lb_snapshot_free(latest);

	test_check(s);

	size_t in, id, pn, pd;
	count_chunks(s, &in, &id, &pn, &pd, NULL);
	tap_ok(in == id && pn == pd, "at the end no chunk is stored twice (%zu in packs)", pn);

	lb_store_close(s);
	lb_snapshot_free(s1);
	lb_snapshot_free(s2);
	lb_snapshot_free(s2b);
	lb_snapshot_free(s2c);
	lb_snapshot_free(s4);
	lb_snapshot_free(amb[0]);
	lb_snapshot_free(amb[1]);
	for (size_t i = 0; i < NFILES; i++)
		free(files[i].data);
	int status = tap_done();
	if (status == 0)
		rm_rf(topdir);
	return status;
}
