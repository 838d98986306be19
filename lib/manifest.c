/* manifest.c - entry records, tree order, and the blob-cutting writer and
 * reader of a snapshot's tree; see manifest.h. */
#include "config.h"

#include "manifest.h"
#include "buf.h"
#include "cdc.h"
#include "util.h"

#include <stdio.h>

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

/* ---- writer ------------------------------------------------------------ */

struct mrec {
	size_t off, len; /* record within the arena */
	size_t path_off; /* the path string (NUL-terminated copy) in paths */
	uint64_t seq;
};

struct lb_mwriter {
	struct lb_buf arena;
	struct lb_buf paths;
	struct mrec *recs;
	size_t n, cap;
};

struct lb_mwriter *lb_mwriter_new(void)
{
	struct lb_mwriter *w = calloc(1, sizeof(*w));
	if (w) {
		lb_buf_init(&w->arena);
		lb_buf_init(&w->paths);
	}
	return w;
}

void lb_mwriter_free(struct lb_mwriter *w)
{
	if (!w)
		return;
	lb_buf_free(&w->arena);
	lb_buf_free(&w->paths);
	free(w->recs);
	free(w);
}

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
	w->recs[w->n] = (struct mrec){ .off = off, .len = w->arena.len - off, .path_off = poff, .seq = w->n };
	w->n++;
	return 0;
}

uint64_t lb_mwriter_count(const struct lb_mwriter *w) { return w->n; }

static int rec_cmp(const void *a, const void *b, void *arg)
{
	const struct mrec *x = a, *y = b;
	const char *paths = arg;
	int c = lb_path_cmp(paths + x->path_off, paths + y->path_off);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static uint64_t record_hash(const uint8_t *p, size_t len)
{
	const uint64_t *g = lb_cdc_gear();
	uint64_t h = 0;
	for (size_t i = 0; i < len; i++)
		h = (h << 1) + g[p[i]];
	return h;
}

static int flush_tree(struct lb_buf *blob, const char *first, lb_tree_put_fn put, void *arg,
		      struct lb_tree_ref **refs, size_t *n, size_t *cap)
{
	int r = lb_grow(refs, cap, *n + 1, sizeof(**refs));
	if (r < 0)
		return r;
	struct lb_tree_ref *ref = &(*refs)[*n];
	ref->first_path = strdup(first);
	if (!ref->first_path)
		return -ENOMEM;
	r = put(arg, blob->p, blob->len, &ref->id);
	if (r < 0) {
		free(ref->first_path);
		return r;
	}
	ref->size = (uint32_t)blob->len;
	(*n)++;
	lb_buf_reset(blob);
	return 0;
}

/* Replaces record i with the encoding of e (appended to the arena). */
static int rewrite_rec(struct lb_mwriter *w, size_t i, const struct lb_entry *e)
{
	size_t off = w->arena.len;
	lb_entry_encode(&w->arena, e);
	if (w->arena.err)
		return -ENOMEM;
	w->recs[i].off = off;
	w->recs[i].len = w->arena.len - off;
	return 0;
}

static int decode_rec(const struct lb_mwriter *w, size_t i, struct lb_entry *e)
{
	struct lb_rd rd;
	lb_rd_init(&rd, w->arena.p + w->recs[i].off, w->recs[i].len);
	return lb_entry_decode(&rd, e);
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

struct hl {
	size_t rec;
	struct lb_entry e;
};

static int hl_cmp(const void *a, const void *b)
{
	const struct hl *x = a, *y = b;
	int c = lb_path_cmp(x->e.link, y->e.link);
	return c ? c : lb_path_cmp(x->e.path, y->e.path);
}

/* Restores create a hardlink by linking to its target, so the target must
 * come first in tree order.  Where a link sorts before the path holding the
 * data, the data moves to the first path of the set and every other path
 * becomes a link to it.  recs must be sorted and free of duplicates. */
static int order_hardlinks(struct lb_mwriter *w, const char *paths)
{
	struct hl *hls = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	for (size_t i = 0; i < w->n && r == 0; i++) {
		const uint8_t *p = w->arena.p + w->recs[i].off;
		struct lb_rd rd;
		lb_rd_init(&rd, p, w->recs[i].len);
		lb_rd_uv(&rd);
		size_t plen;
		lb_rd_bytes(&rd, PATH_MAX_LEN, &plen);
		if (lb_rd_u8(&rd) != LB_FT_HARDLINK || rd.err)
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
	if (r == 0 && n)
		qsort(hls, n, sizeof(*hls), hl_cmp);
	for (size_t g = 0; r == 0 && g < n;) {
		size_t end = g + 1;
		while (end < n && strcmp(hls[end].e.link, hls[g].e.link) == 0)
			end++;
		/* hls[g] has the smallest path of the links to this target. */
		const char *target = hls[g].e.link;
		size_t trec = find_rec(w, paths, target);
		if (lb_path_cmp(hls[g].e.path, target) < 0 && trec != SIZE_MAX) {
			struct lb_entry data;
			r = decode_rec(w, trec, &data);
			if (r == 0 && data.type == LB_FT_REG) {
				char *first = hls[g].e.path;
				char *tpath = data.path;
				data.path = first;
				r = rewrite_rec(w, hls[g].rec, &data);
				data.path = tpath;
				/* The old data path becomes a link, keeping its own
				 * metadata record (hardlinks share it anyway). */
				struct lb_entry link = { 0 };
				if (r == 0) {
					link = hls[g].e;
					link.path = tpath;
					link.link = first;
					r = rewrite_rec(w, trec, &link);
				}
				for (size_t k = g + 1; r == 0 && k < end; k++) {
					char *old = hls[k].e.link;
					hls[k].e.link = first;
					r = rewrite_rec(w, hls[k].rec, &hls[k].e);
					hls[k].e.link = old;
				}
			}
			lb_entry_clear(&data);
		}
		g = end;
	}
	for (size_t i = 0; i < n; i++)
		lb_entry_clear(&hls[i].e);
	free(hls);
	return r;
}

int lb_mwriter_finish(struct lb_mwriter *w, lb_tree_put_fn put, void *arg,
		      struct lb_tree_ref **refs_out, size_t *nrefs_out, uint64_t *nentries)
{
	const char *paths = (const char *)w->paths.p;
	if (w->n)
		qsort_r(w->recs, w->n, sizeof(*w->recs), rec_cmp, (void *)paths);
	/* Of several entries with one path only the last added counts. */
	size_t m = 0;
	for (size_t i = 0; i < w->n; i++) {
		if (i + 1 < w->n && lb_path_cmp(paths + w->recs[i].path_off, paths + w->recs[i + 1].path_off) == 0)
			continue;
		w->recs[m++] = w->recs[i];
	}
	w->n = m;
	int hr = order_hardlinks(w, paths);
	if (hr < 0)
		return hr;
	struct lb_tree_ref *refs = NULL;
	size_t nrefs = 0, cap = 0;
	struct lb_buf blob;
	lb_buf_init(&blob);
	const char *first = NULL;
	uint64_t count = 0;
	int r = 0;
	for (size_t i = 0; i < w->n && r == 0; i++) {
		struct mrec *mr = &w->recs[i];
		if (blob.len == 0)
			first = paths + mr->path_off;
		const uint8_t *rec = w->arena.p + mr->off;
		lb_buf_put(&blob, rec, mr->len);
		if (blob.err) {
			r = blob.err;
			break;
		}
		count++;
		if (blob.len >= TREE_MAX ||
		    (blob.len >= TREE_MIN && !(record_hash(rec, mr->len) & TREE_MASK)))
			r = flush_tree(&blob, first, put, arg, &refs, &nrefs, &cap);
	}
	if (r == 0 && blob.len > 0)
		r = flush_tree(&blob, first, put, arg, &refs, &nrefs, &cap);
	lb_buf_free(&blob);
	if (r < 0) {
		lb_tree_refs_free(refs, nrefs);
		return r;
	}
	*refs_out = refs;
	*nrefs_out = nrefs;
	if (nentries)
		*nentries = count;
	return 0;
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

/* ---- in-memory index of a manifest ----------------------------------------- */

struct mslot {
	uint64_t hash;
	size_t off; /* record offset in data, +1 (0 = empty slot) */
};

struct lb_mindex {
	struct lb_buf data; /* the records, back to back */
	struct mslot *slots;
	size_t cap; /* power of two */
};

static uint64_t path_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a: fine for a local table */
	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Reads the path of the record at off without decoding the rest. */
static int record_path(const struct lb_buf *d, size_t off, const char **p, size_t *n, size_t *next)
{
	struct lb_rd rd;
	lb_rd_init(&rd, d->p + off, d->len - off);
	uint64_t len = lb_rd_uv(&rd);
	size_t hdr = (size_t)(rd.p - (d->p + off));
	const uint8_t *path = lb_rd_bytes(&rd, PATH_MAX_LEN, n);
	if (rd.err || !path || len > d->len - off - hdr)
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
	lb_buf_init(&m->data);
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		uint8_t *blob;
		r = get(arg, &refs[i].id, refs[i].size, &blob);
		if (r < 0)
			break;
		lb_buf_put(&m->data, blob, refs[i].size);
		free(blob);
		r = m->data.err;
	}
	size_t count = 0;
	for (size_t off = 0; r == 0 && off < m->data.len; count++) {
		const char *p;
		size_t plen;
		r = record_path(&m->data, off, &p, &plen, &off);
	}
	if (r == 0) {
		m->cap = 16;
		while (m->cap < count * 2)
			m->cap *= 2;
		m->slots = calloc(m->cap, sizeof(*m->slots));
		if (!m->slots)
			r = -ENOMEM;
	}
	for (size_t off = 0; r == 0 && off < m->data.len;) {
		const char *p;
		size_t plen, next;
		r = record_path(&m->data, off, &p, &plen, &next);
		if (r < 0)
			break;
		uint64_t h = path_hash(p, plen);
		size_t j = (size_t)h & (m->cap - 1);
		while (m->slots[j].off)
			j = (j + 1) & (m->cap - 1);
		m->slots[j].hash = h;
		m->slots[j].off = off + 1;
		off = next;
	}
	if (r < 0) {
		lb_mindex_free(m);
		return r;
	}
	*out = m;
	return 0;
}

int lb_mindex_find(const struct lb_mindex *m, const char *path, struct lb_entry *e)
{
	size_t plen = strlen(path);
	uint64_t h = path_hash(path, plen);
	for (size_t j = (size_t)h & (m->cap - 1); m->slots[j].off; j = (j + 1) & (m->cap - 1)) {
		if (m->slots[j].hash != h)
			continue;
		size_t off = m->slots[j].off - 1, next;
		const char *p;
		size_t n;
		if (record_path(&m->data, off, &p, &n, &next) < 0)
			return -EBADMSG;
		if (n != plen || memcmp(p, path, n) != 0)
			continue;
		struct lb_rd rd;
		lb_rd_init(&rd, m->data.p + off, next - off);
		return lb_entry_decode(&rd, e) < 0 ? -EBADMSG : 1;
	}
	return 0;
}

void lb_mindex_free(struct lb_mindex *m)
{
	if (!m)
		return;
	lb_buf_free(&m->data);
	free(m->slots);
	free(m);
}
