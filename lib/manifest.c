/* manifest.c - entry records, tree order, and the blob-cutting writer and
 * reader of a snapshot's tree; see manifest.h. */
#include "config.h"

#include "manifest.h"
#include "buf.h"
#include "cdc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_MAX_LEN 4095
#define NAME_MAX_LEN 4096
#define XATTR_VALUE_MAX (64u << 10)
#define ACL_MAX (64u << 10)
#define RECORD_MAX (15u << 20)

/* Tree blobs: cut after an entry once at least MIN bytes are gathered and the
 * entry's hash hits the mask, and always past MAX.  The test is made once
 * per entry, so with 8 mask bits a cut comes about every 256 entries past
 * MIN (some 40-60 KiB of typical entries): unchanged runs of entries give
 * unchanged blobs. */
#define TREE_MIN (16u << 10)
#define TREE_MAX (256u << 10)
#define TREE_MASK (~0ULL << (64 - 8))

void lb_entry_clear(struct lb_entry *e)
{
	free(e->path);
	free(e->uname);
	free(e->gname);
	free(e->link);
	for (size_t i = 0; i < e->nxattrs; i++) {
		free(e->xattrs[i].name);
		free(e->xattrs[i].value);
	}
	free(e->xattrs);
	free(e->acl_access);
	free(e->acl_default);
	free(e->extents);
	free(e->chunks);
	memset(e, 0, sizeof(*e));
}

int lb_entry_copy(struct lb_entry *dst, const struct lb_entry *src)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_entry_encode(&b, src);
	if (b.err) {
		lb_buf_free(&b);
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	struct lb_rd rd;
	lb_rd_init(&rd, b.p, b.len);
	int r = lb_entry_decode(&rd, dst);
	lb_buf_free(&b);
	return r;
}

static int map_byte(const char *p)
{
	if (*p == '\0')
		return -1;
	if (*p == '/')
		return 0;
	return (unsigned char)*p + 1;
}

int lb_path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = map_byte(a), cb = map_byte(b);
		if (ca != cb)
			return ca < cb ? -1 : 1;
		if (ca < 0)
			return 0;
	}
}

int lb_path_valid(const char *path)
{
	size_t len = strlen(path);
	if (len == 0 || len > PATH_MAX_LEN || path[0] == '/')
		return 0;
	const char *c = path;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		if (!slash)
			return 1;
		c = slash + 1;
	}
}

void lb_entry_encode(struct lb_buf *out, const struct lb_entry *e)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, e->path);
	lb_buf_put_u8(&b, (uint8_t)e->type);
	lb_buf_put_uv(&b, e->mode);
	lb_buf_put_uv(&b, e->uid);
	lb_buf_put_uv(&b, e->gid);
	lb_buf_put_str(&b, e->uname);
	lb_buf_put_str(&b, e->gname);
	lb_buf_put_sv(&b, e->mtime_ns);
	lb_buf_put_sv(&b, e->ctime_ns);
	lb_buf_put_uv(&b, e->size);
	lb_buf_put_uv(&b, e->dev);
	lb_buf_put_uv(&b, e->ino);
	lb_buf_put_uv(&b, e->nlink);
	lb_buf_put_str(&b, e->link);
	lb_buf_put_uv(&b, e->rdev_major);
	lb_buf_put_uv(&b, e->rdev_minor);
	lb_buf_put_uv(&b, e->nxattrs);
	for (size_t i = 0; i < e->nxattrs; i++) {
		lb_buf_put_str(&b, e->xattrs[i].name);
		lb_buf_put_bytes(&b, e->xattrs[i].value, e->xattrs[i].len);
	}
	lb_buf_put_str(&b, e->acl_access);
	lb_buf_put_str(&b, e->acl_default);
	lb_buf_put_uv(&b, e->nextents);
	for (size_t i = 0; i < e->nextents; i++) {
		lb_buf_put_uv(&b, e->extents[i].off);
		lb_buf_put_uv(&b, e->extents[i].len);
	}
	lb_buf_put_uv(&b, e->nchunks);
	for (size_t i = 0; i < e->nchunks; i++) {
		lb_buf_put(&b, e->chunks[i].id.b, LB_ID_LEN);
		lb_buf_put_uv(&b, e->chunks[i].size);
	}
	if (b.err) {
		out->err = b.err;
	} else {
		lb_buf_put_uv(out, b.len);
		lb_buf_put(out, b.p, b.len);
	}
	lb_buf_free(&b);
}

static char *opt_str(struct lb_rd *rd, size_t max)
{
	char *s = lb_rd_strdup(rd, max);
	if (s && !*s) {
		free(s);
		return NULL;
	}
	return s;
}

int lb_entry_decode(struct lb_rd *in, struct lb_entry *e)
{
	memset(e, 0, sizeof(*e));
	uint64_t reclen = lb_rd_uv_max(in, RECORD_MAX);
	const uint8_t *rec = lb_rd_raw(in, (size_t)reclen);
	if (in->err)
		return -EBADMSG;
	struct lb_rd rd;
	lb_rd_init(&rd, rec, (size_t)reclen);
	int r = -EBADMSG;
	e->path = lb_rd_strdup(&rd, PATH_MAX_LEN);
	e->type = lb_rd_u8(&rd);
	e->mode = (uint32_t)lb_rd_uv_max(&rd, 07777);
	e->uid = (uint32_t)lb_rd_uv_max(&rd, UINT32_MAX);
	e->gid = (uint32_t)lb_rd_uv_max(&rd, UINT32_MAX);
	e->uname = opt_str(&rd, NAME_MAX_LEN);
	e->gname = opt_str(&rd, NAME_MAX_LEN);
	e->mtime_ns = lb_rd_sv(&rd);
	e->ctime_ns = lb_rd_sv(&rd);
	e->size = lb_rd_uv(&rd);
	e->dev = lb_rd_uv(&rd);
	e->ino = lb_rd_uv(&rd);
	e->nlink = (uint32_t)lb_rd_uv_max(&rd, UINT32_MAX);
	e->link = opt_str(&rd, PATH_MAX_LEN);
	e->rdev_major = (uint32_t)lb_rd_uv_max(&rd, UINT32_MAX);
	e->rdev_minor = (uint32_t)lb_rd_uv_max(&rd, UINT32_MAX);
	if (rd.err)
		goto fail;
	size_t nx = (size_t)lb_rd_uv_max(&rd, lb_rd_left(&rd) / 2);
	if (nx) {
		e->xattrs = calloc(nx, sizeof(*e->xattrs));
		if (!e->xattrs) {
			r = -ENOMEM;
			goto fail;
		}
		e->nxattrs = nx;
		for (size_t i = 0; i < nx && !rd.err; i++) {
			size_t len;
			e->xattrs[i].name = lb_rd_strdup(&rd, 255);
			const uint8_t *v = lb_rd_bytes(&rd, XATTR_VALUE_MAX, &len);
			if (!v)
				break;
			e->xattrs[i].value = malloc(len ? len : 1);
			if (!e->xattrs[i].value) {
				r = -ENOMEM;
				goto fail;
			}
			memcpy(e->xattrs[i].value, v, len);
			e->xattrs[i].len = len;
		}
	}
	e->acl_access = opt_str(&rd, ACL_MAX);
	e->acl_default = opt_str(&rd, ACL_MAX);
	size_t ne = (size_t)lb_rd_uv_max(&rd, lb_rd_left(&rd) / 2);
	if (ne && !rd.err) {
		e->extents = lb_mallocarray(ne, sizeof(*e->extents));
		if (!e->extents) {
			r = -ENOMEM;
			goto fail;
		}
		e->nextents = ne;
		for (size_t i = 0; i < ne; i++) {
			e->extents[i].off = lb_rd_uv(&rd);
			e->extents[i].len = lb_rd_uv(&rd);
		}
	}
	size_t nc = (size_t)lb_rd_uv_max(&rd, lb_rd_left(&rd) / (LB_ID_LEN + 1));
	if (nc && !rd.err) {
		e->chunks = lb_mallocarray(nc, sizeof(*e->chunks));
		if (!e->chunks) {
			r = -ENOMEM;
			goto fail;
		}
		e->nchunks = nc;
		for (size_t i = 0; i < nc; i++) {
			const uint8_t *id = lb_rd_raw(&rd, LB_ID_LEN);
			if (!id)
				break;
			memcpy(e->chunks[i].id.b, id, LB_ID_LEN);
			e->chunks[i].size = (uint32_t)lb_rd_uv_max(&rd, LB_CDC_MAX_MAX);
		}
	}
	/* Fields added by later versions follow here and are skipped. */
	if (rd.err || !e->path || !lb_path_valid(e->path) || e->type < LB_FT_REG || e->type > LB_FT_SOCK)
		goto fail;
	for (size_t i = 0; i < e->nxattrs; i++)
		if (!e->xattrs[i].name || !*e->xattrs[i].name)
			goto fail;
	return 0;
fail:
	lb_entry_clear(e);
	return r;
}

void lb_tree_refs_free(struct lb_tree_ref *refs, size_t n)
{
	if (!refs)
		return;
	for (size_t i = 0; i < n; i++)
		free(refs[i].first_path);
	free(refs);
}

/* ---- writer ------------------------------------------------------------
 *
 * Entries gather in an arena until finish sorts them and cuts the tree
 * blobs.  A snapshot of ten million files would hold gigabytes there, so
 * past a budget (lb_mwriter_spill) the arena is sorted and written as one
 * run to an unlinked temporary file, and finish merges the runs.  Either way
 * the blobs are the same, byte for byte. */

struct mrec {
	size_t off, len; /* record within the arena */
	size_t path_off; /* the path string (NUL-terminated copy) in paths */
	uint64_t seq;
};

/* A sorted run in the spill file: records of
 * [u32 path length][path][u64 seq][u32 record length][record]. */
struct run {
	uint64_t off, len;
};

struct hl {
	size_t rec;      /* in memory: the record; spilled: unused */
	uint64_t seq;    /* spilled: the entry's seq, to know whether it won */
	int live;        /* spilled: it is the last entry of its path */
	struct lb_entry e;
};

struct lb_mwriter {
	struct lb_buf arena;
	struct lb_buf paths;
	struct mrec *recs;
	size_t n, cap;
	uint64_t seq; /* entries added in all */
	/* spilling */
	size_t budget;
	char *spill_dir;
	int fd;
	uint64_t spilled;
	struct run *runs;
	size_t nruns, runs_cap;
	struct hl *hls; /* the hardlinks of the runs */
	size_t nhls, hls_cap;
};

struct lb_mwriter *lb_mwriter_new(void)
{
	struct lb_mwriter *w = calloc(1, sizeof(*w));
	if (w) {
		lb_buf_init(&w->arena);
		lb_buf_init(&w->paths);
		w->fd = -1;
	}
	return w;
}

static void hls_free(struct hl *hls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lb_entry_clear(&hls[i].e);
	free(hls);
}

void lb_mwriter_free(struct lb_mwriter *w)
{
	if (!w)
		return;
	lb_buf_free(&w->arena);
	lb_buf_free(&w->paths);
	free(w->recs);
	free(w->spill_dir);
	if (w->fd >= 0)
		close(w->fd);
	free(w->runs);
	hls_free(w->hls, w->nhls);
	free(w);
}

int lb_mwriter_spill(struct lb_mwriter *w, const char *dir, size_t budget)
{
	char *d = dir ? strdup(dir) : NULL;
	if (dir && !d)
		return -ENOMEM;
	free(w->spill_dir);
	w->spill_dir = d;
	w->budget = budget;
	return 0;
}

static int spill_batch(struct lb_mwriter *w);

int lb_mwriter_add(struct lb_mwriter *w, const struct lb_entry *e)
{
	if (!e->path || !lb_path_valid(e->path))
		return -EINVAL;
	int r = lb_grow(&w->recs, &w->cap, w->n + 1, sizeof(*w->recs));
	if (r < 0)
		return r;
	size_t off = w->arena.len, poff = w->paths.len;
	lb_entry_encode(&w->arena, e);
	lb_buf_put(&w->paths, e->path, strlen(e->path) + 1);
	if (w->arena.err || w->paths.err)
		return -ENOMEM;
	if (w->arena.len - off > RECORD_MAX) {
		w->arena.len = off;
		w->paths.len = poff;
		return -EFBIG;
	}
	/* Refuse now what a reader would refuse later (mode bits, name
	 * lengths, types): a committed manifest must always be readable. */
	struct lb_rd rd;
	struct lb_entry check;
	lb_rd_init(&rd, w->arena.p + off, w->arena.len - off);
	if (lb_entry_decode(&rd, &check) < 0) {
		w->arena.len = off;
		w->paths.len = poff;
		lb_set_error("entry %s has a field out of range", e->path);
		return -EINVAL;
	}
	lb_entry_clear(&check);
	w->recs[w->n] = (struct mrec){ .off = off, .len = w->arena.len - off, .path_off = poff, .seq = w->seq };
	w->n++;
	w->seq++;
	if (w->budget && w->arena.len + w->paths.len + w->n * sizeof(struct mrec) > w->budget)
		return spill_batch(w);
	return 0;
}

uint64_t lb_mwriter_count(const struct lb_mwriter *w) { return w->seq; }

uint64_t lb_mwriter_spilled(const struct lb_mwriter *w) { return w->spilled; }

static int rec_cmp(const void *a, const void *b, void *arg)
{
	const struct mrec *x = a, *y = b;
	const char *paths = arg;
	int c = lb_path_cmp(paths + x->path_off, paths + y->path_off);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts the records in memory and keeps the last added of each path. */
static void sort_batch(struct lb_mwriter *w)
{
	const char *paths = (const char *)w->paths.p;
	if (w->n)
		qsort_r(w->recs, w->n, sizeof(*w->recs), rec_cmp, (void *)paths);
	size_t m = 0;
	for (size_t i = 0; i < w->n; i++) {
		if (i + 1 < w->n && lb_path_cmp(paths + w->recs[i].path_off, paths + w->recs[i + 1].path_off) == 0)
			continue;
		w->recs[m++] = w->recs[i];
	}
	w->n = m;
}

static uint64_t record_hash(const uint8_t *p, size_t len)
{
	const uint64_t *g = lb_cdc_gear();
	uint64_t h = 0;
	for (size_t i = 0; i < len; i++)
		h = (h << 1) + g[p[i]];
	return h;
}

/* Cuts the records, in tree order, into tree blobs: at TREE_MAX, or past
 * TREE_MIN where a record's hash says so, so that an insertion moves only
 * the cuts near it. */
struct cutter {
	struct lb_buf blob;
	char *first;
	struct lb_tree_ref *refs;
	size_t nrefs, cap;
	uint64_t count;
	lb_tree_put_fn put;
	void *arg;
};

static int cut_flush(struct cutter *c)
{
	int r = lb_grow(&c->refs, &c->cap, c->nrefs + 1, sizeof(*c->refs));
	if (r < 0)
		return r;
	struct lb_tree_ref *ref = &c->refs[c->nrefs];
	ref->first_path = c->first;
	c->first = NULL;
	r = c->put(c->arg, c->blob.p, c->blob.len, &ref->id);
	if (r < 0) {
		free(ref->first_path);
		return r;
	}
	ref->size = (uint32_t)c->blob.len;
	c->nrefs++;
	lb_buf_reset(&c->blob);
	return 0;
}

static int cut_add(struct cutter *c, const char *path, const uint8_t *rec, size_t len)
{
	if (c->blob.len == 0 && !(c->first = strdup(path)))
		return -ENOMEM;
	lb_buf_put(&c->blob, rec, len);
	if (c->blob.err)
		return c->blob.err;
	c->count++;
	if (c->blob.len >= TREE_MAX || (c->blob.len >= TREE_MIN && !(record_hash(rec, len) & TREE_MASK)))
		return cut_flush(c);
	return 0;
}

static int cut_end(struct cutter *c, int r, struct lb_tree_ref **refs_out, size_t *nrefs_out, uint64_t *nentries)
{
	if (r == 0 && c->blob.len > 0)
		r = cut_flush(c);
	lb_buf_free(&c->blob);
	free(c->first);
	if (r < 0) {
		lb_tree_refs_free(c->refs, c->nrefs);
		return r;
	}
	*refs_out = c->refs;
	*nrefs_out = c->nrefs;
	if (nentries)
		*nentries = c->count;
	return 0;
}

static int decode_bytes(const uint8_t *p, size_t len, struct lb_entry *e)
{
	struct lb_rd rd;
	lb_rd_init(&rd, p, len);
	return lb_entry_decode(&rd, e);
}

static int decode_rec(const struct lb_mwriter *w, size_t i, struct lb_entry *e)
{
	return decode_bytes(w->arena.p + w->recs[i].off, w->recs[i].len, e);
}

/* Whether an encoded record is a hardlink, without decoding it whole. */
static int is_hardlink(const uint8_t *p, size_t len)
{
	struct lb_rd rd;
	lb_rd_init(&rd, p, len);
	lb_rd_uv(&rd);
	size_t plen;
	lb_rd_bytes(&rd, PATH_MAX_LEN, &plen);
	return lb_rd_u8(&rd) == LB_FT_HARDLINK && !rd.err;
}

static size_t find_rec(const struct lb_mwriter *w, const char *paths, const char *path)
{
	size_t lo = 0, hi = w->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = lb_path_cmp(paths + w->recs[mid].path_off, path);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

static int hl_cmp(const void *a, const void *b)
{
	const struct hl *x = a, *y = b;
	int c = lb_path_cmp(x->e.link, y->e.link);
	return c ? c : lb_path_cmp(x->e.path, y->e.path);
}

/* The entries that replace others where hardlinks are reordered, by path;
 * each owns its path and encoded record. */
struct swap {
	char *path;
	uint8_t *rec;
	size_t len;
};

static int swap_cmp(const void *a, const void *b)
{
	return lb_path_cmp(((const struct swap *)a)->path, ((const struct swap *)b)->path);
}

static int swap_add(struct swap **v, size_t *n, size_t *cap, const struct lb_entry *e)
{
	int r = lb_grow(v, cap, *n + 1, sizeof(**v));
	if (r < 0)
		return r;
	struct lb_buf b;
	lb_buf_init(&b);
	lb_entry_encode(&b, e);
	char *path = strdup(e->path);
	if (b.err || !path) {
		lb_buf_free(&b);
		free(path);
		return -ENOMEM;
	}
	(*v)[*n] = (struct swap){ .path = path, .rec = b.p, .len = b.len };
	(*n)++;
	return 0;
}

static void swaps_free(struct swap *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].rec);
	}
	free(v);
}

/* Restores create a hardlink by linking to its target, so the target must
 * come first in tree order.  Where a link sorts before the path holding the
 * data, the data moves to the first path of the set and every other path
 * becomes a link to it.  hls: the live hardlinks (sorted here); target_data
 * gives a target's entry (NULL when absent), valid until its next call.
 * Returns the replacements, sorted by path. */
static int hardlink_swaps(struct hl *hls, size_t n, int (*target_data)(void *arg, const char *target,
									struct lb_entry **e),
			  void *arg, struct swap **swaps, size_t *nswaps)
{
	size_t cap = 0;
	int r = 0;
	if (n)
		qsort(hls, n, sizeof(*hls), hl_cmp);
	for (size_t g = 0; r == 0 && g < n;) {
		size_t end = g + 1;
		while (end < n && strcmp(hls[end].e.link, hls[g].e.link) == 0)
			end++;
		/* hls[g] has the smallest path of the links to this target. */
		const char *target = hls[g].e.link;
		struct lb_entry *d = NULL;
		if (lb_path_cmp(hls[g].e.path, target) < 0)
			r = target_data(arg, target, &d);
		if (r == 0 && d && d->path && d->type == LB_FT_REG) {
			char *first = hls[g].e.path;
			char *tpath = d->path;
			d->path = first;
			r = swap_add(swaps, nswaps, &cap, d);
			d->path = tpath;
			/* The old data path becomes a link, keeping its own
			 * metadata record (hardlinks share it anyway). */
			struct lb_entry link = hls[g].e;
			link.path = tpath;
			link.link = first;
			if (r == 0)
				r = swap_add(swaps, nswaps, &cap, &link);
			for (size_t k = g + 1; r == 0 && k < end; k++) {
				char *old = hls[k].e.link;
				hls[k].e.link = first;
				r = swap_add(swaps, nswaps, &cap, &hls[k].e);
				hls[k].e.link = old;
			}
		}
		g = end;
	}
	if (r == 0 && *nswaps)
		qsort(*swaps, *nswaps, sizeof(**swaps), swap_cmp);
	return r;
}

struct mem_targets {
	const struct lb_mwriter *w;
	const char *paths;
	struct lb_entry cur;
};

static int mem_target_data(void *arg, const char *target, struct lb_entry **e)
{
	struct mem_targets *mt = arg;
	lb_entry_clear(&mt->cur);
	size_t i = find_rec(mt->w, mt->paths, target);
	if (i == SIZE_MAX)
		return 0;
	int r = decode_rec(mt->w, i, &mt->cur);
	if (r == 0)
		*e = &mt->cur;
	return r;
}

/* hardlink_swaps for the records in memory (sorted, free of duplicates):
 * each replacement is appended to the arena and its record pointed at it. */
static int order_hardlinks(struct lb_mwriter *w, const char *paths)
{
	struct hl *hls = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	for (size_t i = 0; i < w->n && r == 0; i++) {
		if (!is_hardlink(w->arena.p + w->recs[i].off, w->recs[i].len))
			continue;
		r = lb_grow(&hls, &cap, n + 1, sizeof(*hls));
		if (r == 0)
			r = decode_rec(w, i, &hls[n].e);
		if (r == 0 && !hls[n].e.link) {
			lb_entry_clear(&hls[n].e);
			continue;
		}
		if (r == 0)
			hls[n++].rec = i;
	}
	struct mem_targets mt = { .w = w, .paths = paths };
	struct swap *swaps = NULL;
	size_t nswaps = 0;
	if (r == 0)
		r = hardlink_swaps(hls, n, mem_target_data, &mt, &swaps, &nswaps);
	for (size_t i = 0; r == 0 && i < nswaps; i++) {
		size_t k = find_rec(w, paths, swaps[i].path), off = w->arena.len;
		lb_buf_put(&w->arena, swaps[i].rec, swaps[i].len);
		if (w->arena.err)
			r = -ENOMEM;
		else if (k != SIZE_MAX)
			w->recs[k] = (struct mrec){ .off = off, .len = swaps[i].len, .path_off = w->recs[k].path_off,
						    .seq = w->recs[k].seq };
	}
	lb_entry_clear(&mt.cur);
	swaps_free(swaps, nswaps);
	hls_free(hls, n);
	return r;
}

/* ---- spilling ---- */

static int spill_open(struct lb_mwriter *w)
{
	const char *dir = w->spill_dir;
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/var/tmp";
#ifdef O_TMPFILE
	w->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (w->fd >= 0)
		return 0;
#endif
	char path[4200];
	snprintf(path, sizeof(path), "%s/lumbung-manifest-XXXXXX", dir);
	w->fd = mkostemp(path, O_CLOEXEC);
	if (w->fd < 0) {
		int e = errno;
		lb_set_error("cannot make a temporary file in %s for a large manifest: %s", dir, strerror(e));
		return -e;
	}
	unlink(path);
	return 0;
}

static int spill_write(struct lb_mwriter *w, struct lb_buf *out)
{
	size_t done = 0;
	while (done < out->len) {
		ssize_t k = pwrite(w->fd, out->p + done, out->len - done, (off_t)(w->spilled + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;
			lb_set_error("cannot write a large manifest's temporary file: %s", strerror(e));
			return -e;
		}
		done += (size_t)k;
	}
	w->spilled += out->len;
	lb_buf_reset(out);
	return 0;
}

/* Writes the arena as one sorted run and empties it. */
static int spill_batch(struct lb_mwriter *w)
{
	int r = w->fd < 0 ? spill_open(w) : 0;
	if (r == 0)
		r = lb_grow(&w->runs, &w->runs_cap, w->nruns + 1, sizeof(*w->runs));
	if (r < 0)
		return r;
	sort_batch(w);
	const char *paths = (const char *)w->paths.p;
	struct lb_buf out;
	lb_buf_init(&out);
	uint64_t start = w->spilled;
	for (size_t i = 0; i < w->n && r == 0; i++) {
		const struct mrec *m = &w->recs[i];
		const char *path = paths + m->path_off;
		const uint8_t *rec = w->arena.p + m->off;
		uint8_t h[8];
		lb_put32(h, (uint32_t)strlen(path));
		lb_buf_put(&out, h, 4);
		lb_buf_put(&out, path, strlen(path));
		lb_put64(h, m->seq);
		lb_buf_put(&out, h, 8);
		lb_put32(h, (uint32_t)m->len);
		lb_buf_put(&out, h, 4);
		lb_buf_put(&out, rec, m->len);
		if (out.err)
			r = out.err;
		else if (out.len >= (1u << 20))
			r = spill_write(w, &out);
		if (r == 0 && is_hardlink(rec, m->len)) {
			r = lb_grow(&w->hls, &w->hls_cap, w->nhls + 1, sizeof(*w->hls));
			struct hl *hl = &w->hls[w->nhls];
			if (r == 0 && (r = decode_bytes(rec, m->len, &hl->e)) == 0) {
				if (hl->e.link) {
					hl->seq = m->seq;
					hl->live = 0;
					w->nhls++;
				} else {
					lb_entry_clear(&hl->e);
				}
			}
		}
	}
	if (r == 0 && out.len)
		r = spill_write(w, &out);
	lb_buf_free(&out);
	if (r < 0)
		return r;
	w->runs[w->nruns++] = (struct run){ .off = start, .len = w->spilled - start };
	lb_buf_reset(&w->arena);
	lb_buf_reset(&w->paths);
	w->n = 0;
	return 0;
}

/* A run read back in order. */
struct reader {
	int fd;
	uint64_t pos, end;
	uint8_t *buf;
	size_t cap, at, fill;
	/* the current record */
	char *path;
	size_t path_cap;
	uint64_t seq;
	const uint8_t *rec;
	size_t len;
};

/* Makes at least need bytes available at buf + at; 0, or -errno. */
static int rd_need(struct reader *rd, size_t need)
{
	if (rd->fill - rd->at >= need)
		return 0;
	memmove(rd->buf, rd->buf + rd->at, rd->fill - rd->at);
	rd->fill -= rd->at;
	rd->at = 0;
	if (need > rd->cap) {
		size_t cap = rd->cap;
		while (cap < need)
			cap *= 2;
		uint8_t *nb = realloc(rd->buf, cap);
		if (!nb)
			return -ENOMEM;
		rd->buf = nb;
		rd->cap = cap;
	}
	while (rd->fill < need) {
		size_t want = (size_t)LB_MIN((uint64_t)(rd->cap - rd->fill), rd->end - rd->pos);
		if (want == 0)
			return -EIO; /* the run ends inside a record */
		ssize_t k = pread(rd->fd, rd->buf + rd->fill, want, (off_t)rd->pos);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		rd->fill += (size_t)k;
		rd->pos += (uint64_t)k;
	}
	return 0;
}

/* Steps to the next record: 1, 0 at the end, or -errno. */
static int rd_next(struct reader *rd)
{
	if (rd->at == rd->fill && rd->pos == rd->end)
		return 0;
	int r = rd_need(rd, 4);
	if (r < 0)
		return r;
	size_t plen = lb_get32(rd->buf + rd->at);
	if (plen > PATH_MAX_LEN)
		return -EIO;
	if ((r = rd_need(rd, 4 + plen + 12)) < 0)
		return r;
	size_t len = lb_get32(rd->buf + rd->at + 4 + plen + 8);
	if (len > RECORD_MAX)
		return -EIO;
	if ((r = rd_need(rd, 4 + plen + 12 + len)) < 0)
		return r;
	const uint8_t *p = rd->buf + rd->at;
	if (plen + 1 > rd->path_cap) {
		char *np = realloc(rd->path, plen + 1);
		if (!np)
			return -ENOMEM;
		rd->path = np;
		rd->path_cap = plen + 1;
	}
	memcpy(rd->path, p + 4, plen);
	rd->path[plen] = '\0';
	rd->seq = lb_get64(p + 4 + plen);
	rd->rec = p + 4 + plen + 12;
	rd->len = len;
	rd->at += 4 + plen + 12 + len;
	return 1;
}

/* The runs merged in tree order, the last added entry of each path only. */
struct merge {
	struct reader *rd;
	size_t k;
	size_t *heap; /* readers with a current record, smallest first */
	size_t nheap;
	size_t cur;   /* the reader whose record was returned last, or SIZE_MAX */
};

static int rd_less(const struct merge *m, size_t a, size_t b)
{
	int c = lb_path_cmp(m->rd[a].path, m->rd[b].path);
	return c < 0 || (c == 0 && m->rd[a].seq < m->rd[b].seq);
}

static void heap_down(struct merge *m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, s = i;
		if (l < m->nheap && rd_less(m, m->heap[l], m->heap[s]))
			s = l;
		if (l + 1 < m->nheap && rd_less(m, m->heap[l + 1], m->heap[s]))
			s = l + 1;
		if (s == i)
			return;
		size_t t = m->heap[i];
		m->heap[i] = m->heap[s];
		m->heap[s] = t;
		i = s;
	}
}

static void heap_up(struct merge *m, size_t i)
{
	while (i > 0 && rd_less(m, m->heap[i], m->heap[(i - 1) / 2])) {
		size_t t = m->heap[i];
		m->heap[i] = m->heap[(i - 1) / 2];
		m->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void merge_free(struct merge *m)
{
	for (size_t i = 0; m->rd && i < m->k; i++) {
		free(m->rd[i].buf);
		free(m->rd[i].path);
	}
	free(m->rd);
	free(m->heap);
	memset(m, 0, sizeof(*m));
}

static int merge_start(struct merge *m, const struct lb_mwriter *w)
{
	memset(m, 0, sizeof(*m));
	m->k = w->nruns;
	m->cur = SIZE_MAX;
	m->rd = calloc(m->k ? m->k : 1, sizeof(*m->rd));
	m->heap = calloc(m->k ? m->k : 1, sizeof(*m->heap));
	if (!m->rd || !m->heap) {
		merge_free(m);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->k; i++) {
		struct reader *rd = &m->rd[i];
		rd->fd = w->fd;
		rd->pos = w->runs[i].off;
		rd->end = w->runs[i].off + w->runs[i].len;
		rd->cap = 64u << 10;
		if (!(rd->buf = malloc(rd->cap))) {
			merge_free(m);
			return -ENOMEM;
		}
		int r = rd_next(rd);
		if (r < 0) {
			merge_free(m);
			return r;
		}
		if (r == 1) {
			m->heap[m->nheap++] = i;
			heap_up(m, m->nheap - 1);
		}
	}
	return 0;
}

/* The next entry: 1 with *out the reader holding it, 0 at the end, or
 * -errno.  Of several entries with one path, the last added wins. */
static int merge_next(struct merge *m, struct reader **out)
{
	if (m->cur != SIZE_MAX) { /* advance the reader returned last */
		int r = rd_next(&m->rd[m->cur]);
		if (r < 0)
			return r;
		if (r == 1) {
			m->heap[m->nheap++] = m->cur;
			heap_up(m, m->nheap - 1);
		}
		m->cur = SIZE_MAX;
	}
	for (;;) {
		if (m->nheap == 0)
			return 0;
		size_t top = m->heap[0];
		m->heap[0] = m->heap[--m->nheap];
		heap_down(m, 0);
		/* Equal paths come out in the order they were added: return
		 * the last one only. */
		if (m->nheap > 0 && lb_path_cmp(m->rd[m->heap[0]].path, m->rd[top].path) == 0) {
			int r = rd_next(&m->rd[top]);
			if (r < 0)
				return r;
			if (r == 1) {
				m->heap[m->nheap++] = top;
				heap_up(m, m->nheap - 1);
			}
			continue;
		}
		m->cur = top;
		*out = &m->rd[top];
		return 1;
	}
}

static int path_ptr_cmp(const void *a, const void *b)
{
	return lb_path_cmp(*(const char *const *)a, *(const char *const *)b);
}

static int hl_path_cmp(const void *a, const void *b)
{
	const struct hl *x = a, *y = b;
	int c = lb_path_cmp(x->e.path, y->e.path);
	return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

struct spill_targets {
	const char **targets; /* sorted */
	struct lb_entry *data; /* their entries, as the merge found them */
	size_t n;
};

static int spill_target_data(void *arg, const char *target, struct lb_entry **e)
{
	struct spill_targets *st = arg;
	const char **t = bsearch(&target, st->targets, st->n, sizeof(*st->targets), path_ptr_cmp);
	*e = t ? &st->data[t - st->targets] : NULL;
	return 0;
}

/* hardlink_swaps for spilled runs: one pass over the merge finds which
 * hardlink entries won their path and the data entries of their targets;
 * the replacements are then looked up while the blobs are cut. */
static int plan_hardlinks(struct lb_mwriter *w, struct lb_entry **datas, struct swap **swaps, size_t *nswaps)
{
	size_t nh = w->nhls;
	if (nh == 0)
		return 0;
	qsort(w->hls, nh, sizeof(*w->hls), hl_path_cmp);
	/* targets: every link target, sorted, unique (pointers into hls) */
	const char **targets = calloc(nh, sizeof(*targets));
	struct lb_entry *data = calloc(nh, sizeof(*data));
	if (!targets || !data) {
		free(targets);
		free(data);
		return -ENOMEM;
	}
	size_t nt = 0;
	for (size_t i = 0; i < nh; i++)
		targets[nt++] = w->hls[i].e.link;
	qsort(targets, nt, sizeof(*targets), path_ptr_cmp);
	size_t u = 0;
	for (size_t i = 0; i < nt; i++)
		if (u == 0 || lb_path_cmp(targets[u - 1], targets[i]) != 0)
			targets[u++] = targets[i];
	nt = u;
	struct merge m;
	int r = merge_start(&m, w);
	struct reader *rd;
	while (r == 0 && (r = merge_next(&m, &rd)) == 1) {
		r = 0;
		struct hl key = { .e.path = rd->path, .seq = rd->seq };
		struct hl *h = bsearch(&key, w->hls, nh, sizeof(*w->hls), hl_path_cmp);
		if (h)
			h->live = 1;
		const char **t = bsearch(&rd->path, targets, nt, sizeof(*targets),
					 path_ptr_cmp);
		if (t)
			r = decode_bytes(rd->rec, rd->len, &data[t - targets]);
	}
	merge_free(&m);
	/* The live hardlinks (shallow copies: w->hls owns the strings). */
	struct hl *hls = calloc(nh, sizeof(*hls));
	size_t n = 0;
	if (!hls && r == 0)
		r = -ENOMEM;
	for (size_t i = 0; hls && i < nh; i++)
		if (w->hls[i].live)
			hls[n++] = w->hls[i];
	struct spill_targets st = { .targets = targets, .data = data, .n = nt };
	if (r == 0)
		r = hardlink_swaps(hls, n, spill_target_data, &st, swaps, nswaps);
	free(hls);
	free(targets);
	*datas = data;
	return r;
}

static int finish_spilled(struct lb_mwriter *w, struct cutter *c)
{
	struct lb_entry *data = NULL;
	struct swap *swaps = NULL;
	size_t nswaps = 0, ndata = w->nhls;
	int r = plan_hardlinks(w, &data, &swaps, &nswaps);
	struct merge m;
	if (r == 0)
		r = merge_start(&m, w);
	if (r == 0) {
		struct reader *rd;
		while ((r = merge_next(&m, &rd)) == 1) {
			struct swap key = { .path = rd->path };
			struct swap *s = nswaps ? bsearch(&key, swaps, nswaps, sizeof(*swaps), swap_cmp) : NULL;
			r = s ? cut_add(c, rd->path, s->rec, s->len) : cut_add(c, rd->path, rd->rec, rd->len);
			if (r < 0)
				break;
		}
		merge_free(&m);
	}
	swaps_free(swaps, nswaps);
	for (size_t i = 0; data && i < ndata; i++)
		lb_entry_clear(&data[i]);
	free(data);
	if (r == -EIO)
		lb_set_error("a large manifest's temporary file reads back short or damaged");
	return r;
}

int lb_mwriter_finish(struct lb_mwriter *w, lb_tree_put_fn put, void *arg,
		      struct lb_tree_ref **refs_out, size_t *nrefs_out, uint64_t *nentries)
{
	struct cutter c = { .put = put, .arg = arg };
	lb_buf_init(&c.blob);
	int r = 0;
	if (w->nruns) {
		if (w->n)
			r = spill_batch(w);
		if (r == 0)
			r = finish_spilled(w, &c);
		return cut_end(&c, r, refs_out, nrefs_out, nentries);
	}
	sort_batch(w);
	const char *paths = (const char *)w->paths.p;
	r = order_hardlinks(w, paths);
	for (size_t i = 0; i < w->n && r == 0; i++)
		r = cut_add(&c, paths + w->recs[i].path_off, w->arena.p + w->recs[i].off, w->recs[i].len);
	return cut_end(&c, r, refs_out, nrefs_out, nentries);
}

/* ---- reader ------------------------------------------------------------ */

struct lb_mreader {
	const struct lb_tree_ref *refs;
	size_t n;
	size_t next;     /* next blob to load */
	uint8_t *blob;   /* current blob */
	struct lb_rd rd; /* position in it */
	lb_tree_get_fn get;
	void *arg;
	char *last_path; /* to check the order while reading */
};

struct lb_mreader *lb_mreader_new(const struct lb_tree_ref *refs, size_t n, lb_tree_get_fn get, void *arg)
{
	struct lb_mreader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->refs = refs;
	r->n = n;
	r->get = get;
	r->arg = arg;
	lb_rd_init(&r->rd, NULL, 0);
	return r;
}

size_t lb_mreader_blob(const struct lb_mreader *r) { return r->next ? r->next - 1 : 0; }

void lb_mreader_free(struct lb_mreader *r)
{
	if (!r)
		return;
	free(r->blob);
	free(r->last_path);
	free(r);
}

static int load_blob(struct lb_mreader *r, size_t i)
{
	free(r->blob);
	r->blob = NULL;
	lb_rd_init(&r->rd, NULL, 0);
	/* Past this blob even when it fails, so that a caller who salvages
	 * what it can goes on with the next one. */
	r->next = i + 1;
	int ret = r->get(r->arg, &r->refs[i].id, r->refs[i].size, &r->blob);
	if (ret < 0)
		return ret;
	lb_rd_init(&r->rd, r->blob, r->refs[i].size);
	return 0;
}

int lb_mreader_next(struct lb_mreader *r, struct lb_entry *e)
{
	while (lb_rd_left(&r->rd) == 0) {
		if (r->next >= r->n)
			return 0;
		int ret = load_blob(r, r->next);
		if (ret < 0)
			return ret;
	}
	int ret = lb_entry_decode(&r->rd, e);
	if (ret < 0) {
		lb_set_error("manifest tree blob %zu is malformed", r->next - 1);
		lb_rd_init(&r->rd, NULL, 0); /* the rest of it cannot be trusted */
		return ret;
	}
	if (r->last_path && lb_path_cmp(r->last_path, e->path) >= 0) {
		lb_set_error("manifest entries out of order at %s", e->path);
		lb_entry_clear(e);
		return -EBADMSG;
	}
	free(r->last_path);
	r->last_path = strdup(e->path);
	if (!r->last_path) {
		lb_entry_clear(e);
		return -ENOMEM;
	}
	return 1;
}

int lb_mreader_seek(struct lb_mreader *r, const char *path)
{
	/* The last blob whose first path is <= path holds it, if anything does. */
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lb_path_cmp(r->refs[mid].first_path, path) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t blob = lo ? lo - 1 : 0;
	free(r->last_path);
	r->last_path = NULL;
	free(r->blob);
	r->blob = NULL;
	lb_rd_init(&r->rd, NULL, 0);
	r->next = blob;
	if (r->n == 0)
		return 0;
	int ret = load_blob(r, blob);
	if (ret < 0)
		return ret;
	/* Skip entries before path within the blob. */
	for (;;) {
		struct lb_rd save = r->rd;
		struct lb_entry e;
		if (lb_rd_left(&r->rd) == 0)
			return 0;
		ret = lb_entry_decode(&r->rd, &e);
		if (ret < 0)
			return ret;
		int c = lb_path_cmp(e.path, path);
		lb_entry_clear(&e);
		if (c >= 0) {
			r->rd = save;
			return 0;
		}
	}
}

int lb_manifest_lookup(const struct lb_tree_ref *refs, size_t n, lb_tree_get_fn get, void *arg,
		       const char *path, struct lb_entry *e)
{
	struct lb_mreader *r = lb_mreader_new(refs, n, get, arg);
	if (!r)
		return -ENOMEM;
	int ret = lb_mreader_seek(r, path);
	if (ret == 0)
		ret = lb_mreader_next(r, e);
	if (ret == 1 && strcmp(e->path, path) != 0) {
		lb_entry_clear(e);
		ret = 0;
	}
	lb_mreader_free(r);
	return ret;
}

/* ---- lookups in one manifest ---------------------------------------------------
 *
 * A backup looks up each file of its parent snapshot once.  The blob that
 * can hold a path is found from the refs' first paths; blobs are decoded
 * on demand into a cache of at most MINDEX_CACHE bytes, least recently
 * used out first, with their records' offsets for a binary search.  The
 * client walks one directory at a time, and a directory's entries are
 * adjacent in tree order, so the lookups stay within a few blobs: memory is
 * bounded whatever the number of files. */

#define MINDEX_CACHE (16u << 20)

struct mblob {
	size_t blob; /* index in refs */
	uint8_t *data;
	size_t len;
	size_t *offs; /* record offsets, in tree order */
	size_t n;
	uint64_t used;
};

struct lb_mindex {
	struct lb_tree_ref *refs; /* copies: the snapshot may go first */
	size_t n;
	lb_tree_get_fn get;
	void *arg;
	pthread_mutex_t mu;
	struct mblob *cache;
	size_t ncache, capcache, bytes, limit;
	uint64_t tick;
};

void lb_mindex_set_cache(struct lb_mindex *m, size_t bytes) { m->limit = bytes; }

/* Reads the path of the record at off without decoding the rest. */
static int record_path(const uint8_t *d, size_t dlen, size_t off, const char **p, size_t *n, size_t *next)
{
	struct lb_rd rd;
	lb_rd_init(&rd, d + off, dlen - off);
	uint64_t len = lb_rd_uv(&rd);
	size_t hdr = (size_t)(rd.p - (d + off));
	const uint8_t *path = lb_rd_bytes(&rd, PATH_MAX_LEN, n);
	if (rd.err || !path || len > dlen - off - hdr)
		return -EBADMSG;
	*p = (const char *)path;
	*next = off + hdr + (size_t)len;
	return 0;
}

int lb_mindex_load(const struct lb_tree_ref *refs, size_t n, lb_tree_get_fn get, void *arg,
		   struct lb_mindex **out)
{
	struct lb_mindex *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->get = get;
	m->arg = arg;
	m->limit = MINDEX_CACHE;
	pthread_mutex_init(&m->mu, NULL);
	m->refs = calloc(n ? n : 1, sizeof(*m->refs));
	int r = m->refs ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		m->refs[i] = refs[i];
		if (!(m->refs[i].first_path = strdup(refs[i].first_path)))
			r = -ENOMEM;
		else
			m->n++;
	}
	if (r < 0) {
		lb_mindex_free(m);
		return r;
	}
	*out = m;
	return 0;
}

static void mblob_free(struct mblob *b)
{
	free(b->data);
	free(b->offs);
}

/* The cached blob i of the manifest, loaded (and older ones dropped) if
 * need be; NULL with *err set on failure. */
static struct mblob *mindex_blob(struct lb_mindex *m, size_t i, int *err)
{
	for (size_t k = 0; k < m->ncache; k++)
		if (m->cache[k].blob == i) {
			m->cache[k].used = ++m->tick;
			return &m->cache[k];
		}
	struct mblob nb = { .blob = i, .used = ++m->tick };
	int r = m->get(m->arg, &m->refs[i].id, m->refs[i].size, &nb.data);
	if (r == 0) {
		nb.len = m->refs[i].size;
		size_t cap = 0;
		for (size_t off = 0; r == 0 && off < nb.len;) {
			const char *p;
			size_t plen, next;
			r = record_path(nb.data, nb.len, off, &p, &plen, &next);
			if (r == 0 && (r = lb_grow(&nb.offs, &cap, nb.n + 1, sizeof(*nb.offs))) == 0)
				nb.offs[nb.n++] = off;
			off = next;
		}
	}
	if (r == 0)
		r = lb_grow(&m->cache, &m->capcache, m->ncache + 1, sizeof(*m->cache));
	if (r < 0) {
		mblob_free(&nb);
		*err = r;
		return NULL;
	}
	while (m->ncache > 0 && m->bytes + nb.len > m->limit) {
		size_t old = 0;
		for (size_t k = 1; k < m->ncache; k++)
			if (m->cache[k].used < m->cache[old].used)
				old = k;
		m->bytes -= m->cache[old].len;
		mblob_free(&m->cache[old]);
		m->cache[old] = m->cache[--m->ncache];
	}
	m->bytes += nb.len;
	m->cache[m->ncache] = nb;
	return &m->cache[m->ncache++];
}

int lb_mindex_find(struct lb_mindex *m, const char *path, struct lb_entry *e)
{
	/* The last blob whose first path is <= path holds it, if any does. */
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lb_path_cmp(m->refs[mid].first_path, path) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	pthread_mutex_lock(&m->mu);
	int r = 0;
	struct mblob *b = mindex_blob(m, lo - 1, &r);
	size_t at = SIZE_MAX;
	char name[PATH_MAX_LEN + 1];
	lo = 0;
	hi = b ? b->n : 0;
	while (lo < hi && r == 0) {
		size_t mid = lo + (hi - lo) / 2, plen, next;
		const char *p;
		r = record_path(b->data, b->len, b->offs[mid], &p, &plen, &next);
		if (r < 0)
			break;
		memcpy(name, p, plen);
		name[plen] = '\0';
		int c = lb_path_cmp(name, path);
		if (c == 0) {
			at = mid;
			break;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (r == 0 && at != SIZE_MAX) {
		size_t end = at + 1 < b->n ? b->offs[at + 1] : b->len;
		struct lb_rd rd;
		lb_rd_init(&rd, b->data + b->offs[at], end - b->offs[at]);
		r = lb_entry_decode(&rd, e) < 0 ? -EBADMSG : 1;
	}
	pthread_mutex_unlock(&m->mu);
	return r;
}

void lb_mindex_free(struct lb_mindex *m)
{
	if (!m)
		return;
	lb_tree_refs_free(m->refs, m->n);
	for (size_t k = 0; k < m->ncache; k++)
		mblob_free(&m->cache[k]);
	free(m->cache);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
