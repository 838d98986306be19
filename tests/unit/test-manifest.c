/* test-manifest.c - unit tests of manifest entries and trees (lib/manifest.c).
 *
 * Covers: lb_entry_encode / lb_entry_decode round trips with every field
 * set, for every file type (binary xattr values, ACL text, sparse extents,
 * chunks, link targets, rdev, negative times, ids above 65535), several
 * records back to back and lb_entry_copy; refusal of invalid records; decode
 * of records truncated at every length (outside and inside the record) and
 * with single-byte damage, which must fail cleanly; lb_path_cmp (tree order
 * equals a depth-first walk in byte order) and lb_path_valid; lb_mwriter with
 * entries added in random order plus replaced duplicates, refusing entries a
 * reader would refuse, stored through an in-memory blob map and read back in
 * tree order by lb_mreader, cut into several tree blobs whose first paths are
 * right; lb_mreader_seek and lb_manifest_lookup reading at most two blobs;
 * lb_mindex; hardlink reordering; and dedup of tree blobs between manifests
 * differing in one changed, deleted or inserted entry. */
#include "config.h"

#include "buf.h"
#include "cdc.h"
#include "hash.h"
#include "manifest.h"
#include "util.h"

#include <stdio.h>

#include "tap.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng = 0x5eed;

static uint64_t rnd(uint64_t n) { return splitmix64(&rng) % n; }

static void random_bytes(void *out, size_t n)
{
	uint8_t *p = out;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)splitmix64(&rng);
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

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		exit(99);
	return p;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Field-by-field equality of two entries. */
static int entry_eq(const struct lb_entry *a, const struct lb_entry *b)
{
	if (!str_eq(a->path, b->path) || a->type != b->type || a->mode != b->mode || a->uid != b->uid ||
	    a->gid != b->gid || !str_eq(a->uname, b->uname) || !str_eq(a->gname, b->gname) ||
	    a->mtime_ns != b->mtime_ns || a->ctime_ns != b->ctime_ns || a->size != b->size ||
	    a->dev != b->dev || a->ino != b->ino || a->nlink != b->nlink || !str_eq(a->link, b->link) ||
	    a->rdev_major != b->rdev_major || a->rdev_minor != b->rdev_minor || a->nxattrs != b->nxattrs ||
	    !str_eq(a->acl_access, b->acl_access) || !str_eq(a->acl_default, b->acl_default) ||
	    a->nextents != b->nextents || a->nchunks != b->nchunks)
		return 0;
	for (size_t i = 0; i < a->nxattrs; i++) {
		const struct lb_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];
		if (!str_eq(x->name, y->name) || x->len != y->len || (x->len && memcmp(x->value, y->value, x->len)))
			return 0;
	}
	for (size_t i = 0; i < a->nextents; i++)
		if (a->extents[i].off != b->extents[i].off || a->extents[i].len != b->extents[i].len)
			return 0;
	for (size_t i = 0; i < a->nchunks; i++)
		if (lb_id_cmp(&a->chunks[i].id, &b->chunks[i].id) || a->chunks[i].size != b->chunks[i].size)
			return 0;
	return 1;
}

static void add_xattr(struct lb_entry *e, const char *name, const void *value, size_t len)
{
	e->xattrs = realloc(e->xattrs, (e->nxattrs + 1) * sizeof(*e->xattrs));
	if (!e->xattrs)
		exit(99);
	struct lb_xattr *x = &e->xattrs[e->nxattrs++];
	x->name = xstrdup(name);
	x->value = xmalloc(len);
	if (len)
		memcpy(x->value, value, len);
	x->len = len;
}

static void add_chunks(struct lb_entry *e, size_t n)
{
	e->chunks = xmalloc(n * sizeof(*e->chunks));
	e->nchunks = n;
	e->size = 0;
	for (size_t i = 0; i < n; i++) {
		random_bytes(e->chunks[i].id.b, LB_ID_LEN);
		e->chunks[i].size = 1 + (uint32_t)rnd(LB_CDC_MAX_MAX);
		e->size += e->chunks[i].size;
	}
}

/* An entry with every field set to something unusual. */
static void make_full_entry(struct lb_entry *e, const char *path, int type)
{
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->type = type;
	e->mode = 07777;
	e->uid = 4000000000u;
	e->gid = 70000;
	e->uname = xstrdup("d\xc3\xa9j\xc3\xa0 vu");
	e->gname = xstrdup("wheel");
	e->mtime_ns = -1234567890123456789LL;
	e->ctime_ns = INT64_MAX;
	e->dev = UINT64_MAX;
	e->ino = (1ULL << 63) + 12345;
	e->nlink = UINT32_MAX;
	e->rdev_major = 4095;
	e->rdev_minor = 1048575;
	static const uint8_t bin[] = { 0, 1, 2, 0xff, 0, 0x80, '\n', 0 };
	add_xattr(e, "user.binary", bin, sizeof(bin));
	add_xattr(e, "user.empty", NULL, 0);
	uint8_t big[3000];
	random_bytes(big, sizeof(big));
	add_xattr(e, "security.selinux", big, sizeof(big));
	e->acl_access = xstrdup("user::rwx\nuser:alice:r-x\ngroup::r--\nmask::r-x\nother::---\n");
	e->acl_default = xstrdup("user::rwx\ngroup::---\nother::---\n");
	if (type == LB_FT_SYMLINK)
		e->link = xstrdup("../some where/\xe2\x86\x92 target");
	else if (type == LB_FT_HARDLINK)
		e->link = xstrdup("other/file");
	else
		e->link = xstrdup("unused but kept");
	e->nextents = 3;
	e->extents = xmalloc(3 * sizeof(*e->extents));
	e->extents[0] = (struct lb_extent){ 0, 4096 };
	e->extents[1] = (struct lb_extent){ 1ULL << 40, 8192 };
	e->extents[2] = (struct lb_extent){ UINT64_MAX - 100, 100 };
	add_chunks(e, 5);
	e->size = UINT64_MAX - 1;
}

static uint8_t *encode(const struct lb_entry *e, size_t *len)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_entry_encode(&b, e);
	if (b.err)
		exit(99);
	*len = b.len;
	return b.p; /* the caller frees */
}

/* Decodes exactly the bytes given (copied to a buffer of that size, so a
 * read past the end is caught by valgrind or ASan). */
static int decode_exact(const uint8_t *p, size_t len, struct lb_entry *e, size_t *left)
{
	uint8_t *copy = xmalloc(len);
	memcpy(copy, p, len);
	struct lb_rd rd;
	lb_rd_init(&rd, copy, len);
	int r = lb_entry_decode(&rd, e);
	if (left)
		*left = lb_rd_left(&rd);
	free(copy);
	return r;
}

/* ---- entry records ------------------------------------------------------------ */

static void test_roundtrip(void)
{
	static const char *const names[] = { "", "REG", "DIR", "SYMLINK", "HARDLINK", "CHR", "BLK", "FIFO", "SOCK" };
	struct lb_buf all;
	lb_buf_init(&all);
	struct lb_entry in[9];
	for (int t = LB_FT_REG; t <= LB_FT_SOCK; t++) {
		char path[64];
		snprintf(path, sizeof(path), "dir %d/\xc3\xa9l\xc3\xa9ment.%s", t, names[t]);
		make_full_entry(&in[t], path, t);
		size_t len, left = 99;
		uint8_t *rec = encode(&in[t], &len);
		struct lb_entry out;
		int r = decode_exact(rec, len, &out, &left);
		tap_ok(r == 0 && left == 0 && entry_eq(&in[t], &out), "%s entry with every field set round-trips",
		       names[t]);
		if (r == 0)
			lb_entry_clear(&out);
		lb_buf_put(&all, rec, len);
		free(rec);
	}

	/* Records back to back decode in sequence. */
	struct lb_rd rd;
	lb_rd_init(&rd, all.p, all.len);
	int seq_ok = 1;
	for (int t = LB_FT_REG; t <= LB_FT_SOCK; t++) {
		struct lb_entry out;
		if (lb_entry_decode(&rd, &out) != 0) {
			seq_ok = 0;
			break;
		}
		if (!entry_eq(&in[t], &out))
			seq_ok = 0;
		lb_entry_clear(&out);
	}
	tap_ok(seq_ok && lb_rd_left(&rd) == 0, "8 records back to back decode in order");
	lb_buf_free(&all);

	/* A minimal entry: absent strings stay absent. */
	struct lb_entry min = { .path = xstrdup("x"), .type = LB_FT_DIR }, out;
	size_t len;
	uint8_t *rec = encode(&min, &len);
	int r = decode_exact(rec, len, &out, NULL);
	tap_ok(r == 0 && entry_eq(&min, &out) && !out.uname && !out.link && !out.acl_access && !out.xattrs &&
	       !out.chunks, "minimal entry round-trips with absent fields NULL");
	if (r == 0)
		lb_entry_clear(&out);
	free(rec);
	lb_entry_clear(&min);

	struct lb_entry copy;
	r = lb_entry_copy(&copy, &in[LB_FT_REG]);
	tap_ok(r == 0 && entry_eq(&copy, &in[LB_FT_REG]) && copy.xattrs != in[LB_FT_REG].xattrs &&
	       copy.chunks != in[LB_FT_REG].chunks, "lb_entry_copy makes an equal deep copy");
	if (r == 0)
		lb_entry_clear(&copy);

	/* Truncation at every length: as a cut stream (outer length intact
	 * but data missing) and as a record whose own length says it is short. */
	rec = encode(&in[LB_FT_REG], &len);
	int outer_ok = 1, inner_ok = 1;
	for (size_t k = 0; k < len; k++) {
		if (decode_exact(rec, k, &out, NULL) != -EBADMSG) {
			tap_diag("record cut to %zu of %zu bytes decoded", k, len);
			outer_ok = 0;
			lb_entry_clear(&out);
		}
	}
	struct lb_rd hdr;
	lb_rd_init(&hdr, rec, len);
	uint64_t body_len = lb_rd_uv(&hdr);
	const uint8_t *body = hdr.p;
	for (size_t k = 0; k < body_len; k++) {
		struct lb_buf b;
		lb_buf_init(&b);
		lb_buf_put_uv(&b, k);
		lb_buf_put(&b, body, k);
		if (decode_exact(b.p, b.len, &out, NULL) != -EBADMSG) {
			tap_diag("record body cut to %zu of %llu bytes decoded", k, (unsigned long long)body_len);
			inner_ok = 0;
			lb_entry_clear(&out);
		}
		lb_buf_free(&b);
	}
	tap_ok(outer_ok, "record cut at each of %zu lengths is -EBADMSG", len);
	tap_ok(inner_ok && body_len + 2 <= len, "record body cut at each of %llu lengths is -EBADMSG",
	       (unsigned long long)body_len);

	/* Single-byte damage: decode fails cleanly or yields a sound entry. */
	int sound = 1;
	size_t accepted = 0;
	static const uint8_t xors[] = { 0x01, 0x80, 0xff, 0x7f };
	for (size_t k = 0; k < len; k++) {
		for (size_t x = 0; x < LB_ARRAY_SIZE(xors); x++) {
			rec[k] ^= xors[x];
			r = decode_exact(rec, len, &out, NULL);
			if (r == 0) {
				accepted++;
				if (!out.path || !lb_path_valid(out.path) || out.type < LB_FT_REG ||
				    out.type > LB_FT_SOCK || out.mode > 07777)
					sound = 0;
				lb_entry_clear(&out);
			} else if (r != -EBADMSG) {
				sound = 0;
			}
			rec[k] ^= xors[x];
		}
	}
	tap_ok(sound, "damaged records fail with -EBADMSG or decode to sound entries (%zu of %zu accepted)",
	       accepted, len * LB_ARRAY_SIZE(xors));
	free(rec);

	for (int t = LB_FT_REG; t <= LB_FT_SOCK; t++)
		lb_entry_clear(&in[t]);
}

/* Appends a record built field by field as the format lays it out: a
 * regular file with the given path bytes and xattr count, everything else
 * zero or absent (and no xattrs, extents or chunks actually following). */
static void put_raw_record(struct lb_buf *out, const void *path, size_t plen, uint64_t nxattrs)
{
	struct lb_buf body;
	lb_buf_init(&body);
	lb_buf_put_bytes(&body, path, plen);
	lb_buf_put_u8(&body, LB_FT_REG);
	for (int i = 0; i < 3; i++) /* mode, uid, gid */
		lb_buf_put_uv(&body, 0);
	lb_buf_put_str(&body, NULL); /* uname */
	lb_buf_put_str(&body, NULL); /* gname */
	lb_buf_put_sv(&body, 0);     /* mtime */
	lb_buf_put_sv(&body, 0);     /* ctime */
	for (int i = 0; i < 4; i++)  /* size, dev, ino, nlink */
		lb_buf_put_uv(&body, 0);
	lb_buf_put_str(&body, NULL); /* link */
	lb_buf_put_uv(&body, 0);     /* rdev major */
	lb_buf_put_uv(&body, 0);     /* rdev minor */
	lb_buf_put_uv(&body, nxattrs);
	if (nxattrs == 0) {
		lb_buf_put_str(&body, NULL); /* acl_access */
		lb_buf_put_str(&body, NULL); /* acl_default */
		lb_buf_put_uv(&body, 0);     /* extents */
		lb_buf_put_uv(&body, 0);     /* chunks */
	}
	lb_buf_put_uv(out, body.len);
	lb_buf_put(out, body.p, body.len);
	lb_buf_free(&body);
}

/* Records a valid encoder may write but a decoder must refuse. */
static void test_invalid_records(void)
{
	struct lb_entry e, out;
	size_t len;
	uint8_t *rec;
	struct {
		const char *what;
		const char *path;
		int type;
		uint32_t mode;
		const char *xname;
	} cases[] = {
		{ "type 0", "a", 0, 0644, NULL },
		{ "type 9", "a", 9, 0644, NULL },
		{ "path with ..", "a/../b", LB_FT_REG, 0644, NULL },
		{ "absolute path", "/etc/passwd", LB_FT_REG, 0644, NULL },
		{ "empty path", "", LB_FT_REG, 0644, NULL },
		{ "mode above 07777", "a", LB_FT_REG, 010000, NULL },
		{ "empty xattr name", "a", LB_FT_REG, 0644, "" },
	};
	for (size_t i = 0; i < LB_ARRAY_SIZE(cases); i++) {
		memset(&e, 0, sizeof(e));
		e.path = xstrdup(cases[i].path);
		e.type = cases[i].type;
		e.mode = cases[i].mode;
		if (cases[i].xname)
			add_xattr(&e, cases[i].xname, "v", 1);
		rec = encode(&e, &len);
		int r = decode_exact(rec, len, &out, NULL);
		tap_ok(r == -EBADMSG, "record with %s is refused", cases[i].what);
		if (r == 0)
			lb_entry_clear(&out);
		free(rec);
		lb_entry_clear(&e);
	}

	/* Hand-made records: a path with an embedded NUL, and a huge xattr
	 * count that must not be allocated. */
	struct lb_buf b;
	static const char nul_path[] = { 'a', '\0', 'b' };
	lb_buf_init(&b);
	put_raw_record(&b, nul_path, sizeof(nul_path), 0);
	int r = decode_exact(b.p, b.len, &out, NULL);
	tap_ok(r == -EBADMSG, "record whose path holds a NUL byte is refused");
	if (r == 0)
		lb_entry_clear(&out);
	lb_buf_reset(&b);
	put_raw_record(&b, "a", 1, 0);
	r = decode_exact(b.p, b.len, &out, NULL);
	tap_ok(r == 0 && strcmp(out.path, "a") == 0 && out.type == LB_FT_REG, "the hand-made record itself is valid");
	if (r == 0)
		lb_entry_clear(&out);
	lb_buf_reset(&b);
	put_raw_record(&b, "a", 1, UINT64_MAX / 4);
	r = decode_exact(b.p, b.len, &out, NULL);
	tap_ok(r == -EBADMSG, "record claiming 2^62 xattrs is -EBADMSG");
	if (r == 0)
		lb_entry_clear(&out);
	lb_buf_free(&b);
}

/* ---- paths ------------------------------------------------------------------ */

/* Paths of a tree in depth-first order, each directory's names visited in
 * byte order: by the definition in manifest.h this is tree order. */
struct pathlist {
	char **v;
	int *is_dir;
	size_t n, cap;
};

static void pl_push(struct pathlist *l, const char *p, int dir)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		l->is_dir = realloc(l->is_dir, l->cap * sizeof(*l->is_dir));
		if (!l->v || !l->is_dir)
			exit(99);
	}
	l->v[l->n] = xstrdup(p);
	l->is_dir[l->n++] = dir;
}

static void pl_free(struct pathlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->is_dir);
}

static int byte_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b); /* unsigned bytes */
}

/* Names chosen to straddle '/': '-', '.', '!' and ' ' sort below it in
 * ASCII but above it in tree order; also multibyte UTF-8. */
static const char *const alphabet[] = { "a", "b", "z", "A", "0", "9", "-", ".", "!", " ", "_", "~",
					"\xc3\xa9", "\xe2\x82\xac" };

static void gen_tree(struct pathlist *l, const char *prefix, int depth, size_t fanout)
{
	char *names[64];
	size_t n = 0;
	while (n < fanout) {
		char name[64] = "";
		size_t parts = 1 + rnd(4);
		for (size_t k = 0; k < parts; k++)
			strcat(name, alphabet[rnd(LB_ARRAY_SIZE(alphabet))]);
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		int dup = 0;
		for (size_t k = 0; k < n; k++)
			dup |= strcmp(names[k], name) == 0;
		if (!dup)
			names[n++] = xstrdup(name);
	}
	qsort(names, n, sizeof(*names), byte_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", names[i]);
		int dir = depth < 2 && (depth == 0 || i % 2 == 0);
		pl_push(l, path, dir);
		if (dir)
			gen_tree(l, path, depth + 1, fanout);
		free(names[i]);
	}
}

static int tree_cmp(const void *a, const void *b)
{
	return lb_path_cmp(*(char *const *)a, *(char *const *)b);
}

static void shuffle(void *base, size_t n, size_t size)
{
	uint8_t tmp[256], *p = base;
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd(i);
		memcpy(tmp, p + (i - 1) * size, size);
		memcpy(p + (i - 1) * size, p + j * size, size);
		memcpy(p + j * size, tmp, size);
	}
}

static int sign(int x) { return (x > 0) - (x < 0); }

static void test_paths(void)
{
	tap_ok(lb_path_cmp("a", "a/z") < 0 && lb_path_cmp("a/z", "a-b") < 0 && lb_path_cmp("a", "a-b") < 0,
	       "\"a\" < \"a/z\" < \"a-b\"");
	tap_ok(lb_path_cmp("a-b", "a/z") > 0 && lb_path_cmp("a/z", "a") > 0, "... and the reverse comparisons");
	tap_ok(lb_path_cmp("a/b", "a/b") == 0 && lb_path_cmp("", "") == 0, "equal paths compare 0");
	tap_ok(lb_path_cmp("a/z", "a!") < 0 && lb_path_cmp("a/z", "a b") < 0 && lb_path_cmp("a/z/z", "a.") < 0,
	       "'/' sorts before every other byte");
	tap_ok(lb_path_cmp("az", "a\xc3\xa9") < 0 && lb_path_cmp("a\x7f", "a\x80") < 0,
	       "bytes compare unsigned");
	tap_ok(lb_path_cmp("ab", "abc") < 0 && lb_path_cmp("a/b/c", "a/bc") < 0, "a prefix sorts first");

	struct pathlist l = { 0 };
	gen_tree(&l, "", 0, 12);
	char **sorted = xmalloc(l.n * sizeof(char *));
	memcpy(sorted, l.v, l.n * sizeof(char *));
	shuffle(sorted, l.n, sizeof(char *));
	qsort(sorted, l.n, sizeof(char *), tree_cmp);
	int same = 1;
	for (size_t i = 0; i < l.n; i++)
		if (sorted[i] != l.v[i])
			same = 0;
	tap_ok(same, "sorting %zu shuffled paths by lb_path_cmp gives depth-first order", l.n);
	int anti = 1;
	for (size_t i = 0; i < 3000; i++) {
		const char *a = l.v[rnd(l.n)], *b = l.v[rnd(l.n)];
		if (sign(lb_path_cmp(a, b)) != -sign(lb_path_cmp(b, a)) || (lb_path_cmp(a, b) == 0) != (a == b))
			anti = 0;
	}
	tap_ok(anti, "lb_path_cmp is antisymmetric and 0 only for equal paths");
	free(sorted);
	pl_free(&l);

	static const char *const bad[] = { "", "/abs", "a/../b", "./a", "a//b", "..", ".", "a/", "/", "a/.",
					   "a/..", "../a", "a/./b", "//" };
	int rejects = 1;
	for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
		if (lb_path_valid(bad[i])) {
			tap_diag("accepted '%s'", bad[i]);
			rejects = 0;
		}
	}
	tap_ok(rejects, "lb_path_valid rejects %zu bad paths", LB_ARRAY_SIZE(bad));
	static const char *const good[] = { "a", "a/b", "...", ".hidden", "a..b", "a/.b", "a/b..",
					    "d\xc3\xa9j\xc3\xa0", "with space/and-dash", "~", "a/b/c/d/e/f/g" };
	int accepts = 1;
	for (size_t i = 0; i < LB_ARRAY_SIZE(good); i++) {
		if (!lb_path_valid(good[i])) {
			tap_diag("rejected '%s'", good[i]);
			accepts = 0;
		}
	}
	tap_ok(accepts, "lb_path_valid accepts %zu normal paths", LB_ARRAY_SIZE(good));
	char longp[4100];
	memset(longp, 'x', sizeof(longp));
	for (size_t i = 100; i < 4095; i += 100)
		longp[i] = '/';
	longp[4095] = '\0';
	int ok4095 = lb_path_valid(longp);
	longp[4095] = 'x';
	longp[4096] = '\0';
	tap_ok(ok4095 && !lb_path_valid(longp), "4095-byte paths are valid, 4096-byte ones are not");
}

/* ---- an in-memory blob store --------------------------------------------------- */

struct blob {
	struct lb_id id;
	uint8_t *data;
	size_t len;
};

struct blobmap {
	struct blob *v;
	size_t n, cap;
	size_t puts, new_puts, gets;
	int fail_get; /* fail every get but the first */
};

static struct blob *bm_find(struct blobmap *m, const struct lb_id *id)
{
	for (size_t i = 0; i < m->n; i++)
		if (lb_id_cmp(&m->v[i].id, id) == 0)
			return &m->v[i];
	return NULL;
}

static int bm_put(void *arg, const void *data, size_t len, struct lb_id *id)
{
	struct blobmap *m = arg;
	lb_sha256(data, len, id);
	m->puts++;
	if (bm_find(m, id))
		return 0;
	if (lb_grow(&m->v, &m->cap, m->n + 1, sizeof(*m->v)) < 0)
		return -ENOMEM;
	m->v[m->n].id = *id;
	m->v[m->n].data = xmalloc(len);
	memcpy(m->v[m->n].data, data, len);
	m->v[m->n].len = len;
	m->n++;
	m->new_puts++;
	return 0;
}

static int bm_get(void *arg, const struct lb_id *id, uint32_t size, uint8_t **data)
{
	struct blobmap *m = arg;
	m->gets++;
	struct blob *b = bm_find(m, id);
	if (!b || b->len != size)
		return -EBADMSG;
	if (m->fail_get && m->gets > 1)
		return -EIO;
	*data = xmalloc(size);
	memcpy(*data, b->data, size);
	return 0;
}

static void bm_free(struct blobmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].data);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* ---- manifests ------------------------------------------------------------------ */

static void make_tree_entry(struct lb_entry *e, const char *path, int dir, size_t i)
{
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->mode = dir ? 0755 : 0644;
	e->uid = 1000 + (uint32_t)(i % 3);
	e->gid = 100;
	e->uname = xstrdup("user");
	e->gname = xstrdup("users");
	e->mtime_ns = 1700000000000000000LL + (int64_t)i * 1000;
	e->ctime_ns = e->mtime_ns + 7;
	e->ino = 1000 + i;
	e->nlink = dir ? 2 : 1;
	if (dir) {
		e->type = LB_FT_DIR;
	} else if (i % 17 == 0) {
		e->type = LB_FT_SYMLINK;
		e->link = xstrdup("../elsewhere");
	} else {
		e->type = LB_FT_REG;
		add_chunks(e, i % 5);
	}
	if (i % 11 == 0) {
		uint8_t v[16];
		random_bytes(v, sizeof(v));
		add_xattr(e, "user.tag", v, sizeof(v));
	}
}

struct manifest {
	struct lb_tree_ref *refs;
	size_t nrefs;
	uint64_t nentries;
};

/* Reads a whole manifest and compares it with want[0..n) in order. */
static int read_all_equal(struct manifest *m, struct blobmap *bm, struct lb_entry *want, size_t n, size_t *got)
{
	struct lb_mreader *r = lb_mreader_new(m->refs, m->nrefs, bm_get, bm);
	struct lb_entry e;
	int ret, same = 1;
	*got = 0;
	while ((ret = lb_mreader_next(r, &e)) == 1) {
		if (*got >= n || !entry_eq(&e, &want[*got]))
			same = 0;
		(*got)++;
		lb_entry_clear(&e);
	}
	lb_mreader_free(r);
	return ret == 0 && same && *got == n;
}

static void test_tree(void)
{
	struct pathlist l = { 0 };
	gen_tree(&l, "", 0, 40);
	size_t n = l.n;
	struct lb_entry *want = xmalloc(n * sizeof(*want));
	for (size_t i = 0; i < n; i++)
		make_tree_entry(&want[i], l.v[i], l.is_dir[i], i);
	tap_ok(n >= 20000, "generated a tree of %zu paths", n);

	struct lb_mwriter *w = lb_mwriter_new();
	/* Stale versions of some paths come first and are replaced later. */
	size_t added = 0;
	int r = 0;
	for (size_t k = 0; k < 5 && r == 0; k++) {
		struct lb_entry stale;
		make_tree_entry(&stale, l.v[k * 997 % n], 0, 99999 + k);
		stale.mtime_ns = -1;
		r = lb_mwriter_add(w, &stale);
		added++;
		lb_entry_clear(&stale);
	}
	size_t *order = xmalloc(n * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	shuffle(order, n, sizeof(size_t));
	for (size_t i = 0; i < n && r == 0; i++, added++)
		r = lb_mwriter_add(w, &want[order[i]]);
	/* And newer versions of others come last and win. */
	for (size_t k = 0; k < 5 && r == 0; k++, added++) {
		size_t i = (k * 4999 + 3) % n;
		want[i].mtime_ns += 42;
		want[i].gid = 200000;
		r = lb_mwriter_add(w, &want[i]);
	}
	free(order);
	tap_ok(r == 0 && lb_mwriter_count(w) == added, "added %zu entries in random order, with duplicates", added);

	struct lb_entry bad = { .path = xstrdup("a/../b"), .type = LB_FT_REG };
	tap_ok(lb_mwriter_add(w, &bad) == -EINVAL, "mwriter_add refuses an invalid path");
	lb_entry_clear(&bad);
	struct lb_entry nopath = { .type = LB_FT_REG };
	tap_ok(lb_mwriter_add(w, &nopath) == -EINVAL, "mwriter_add refuses an entry without path");
	/* Whatever a reader would refuse is refused here already, and leaves
	 * nothing behind (the manifest below reads back exactly). */
	int refused = 1;
	for (int k = 0; k < 7; k++) {
		struct lb_entry x;
		make_tree_entry(&x, "refused/entry", 0, 1);
		char longname[300];
		memset(longname, 'n', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		memcpy(longname, "user.", 5);
		switch (k) {
		case 0: x.mode = 0100644; break; /* st_mode, not permission bits */
		case 1: x.type = 0; break;
		case 2: x.type = LB_FT_SOCK + 1; break;
		case 3: add_xattr(&x, longname, "v", 1); break;
		case 4: add_xattr(&x, "", "v", 1); break;
		case 5: free(x.chunks); add_chunks(&x, 1); x.chunks[0].size = LB_CDC_MAX_MAX + 1; break;
		default: free(x.link); x.link = xmalloc(5000); memset(x.link, 'l', 4999); x.link[4999] = '\0'; break;
		}
		if (lb_mwriter_add(w, &x) != -EINVAL) {
			tap_diag("unreadable entry %d accepted", k);
			refused = 0;
		}
		lb_entry_clear(&x);
	}
	tap_ok(refused && lb_mwriter_count(w) == added,
	       "mwriter_add refuses entries a reader would refuse (mode, type, xattr names, chunk size, link)");

	struct blobmap bm = { 0 };
	struct manifest m = { 0 };
	r = lb_mwriter_finish(w, bm_put, &bm, &m.refs, &m.nrefs, &m.nentries);
	lb_mwriter_free(w);
	tap_ok(r == 0 && m.nentries == n, "finish stores %llu entries (one per path)", (unsigned long long)m.nentries);
	tap_ok(m.nrefs >= 3 && bm.n == m.nrefs, "cut into %zu tree blobs", m.nrefs);

	/* Each blob holds whole records, starts with its first_path, and
	 * together they hold every entry in order. */
	size_t total = 0;
	int blobs_ok = r == 0;
	for (size_t b = 0; blobs_ok && b < m.nrefs; b++) {
		struct blob *bl = bm_find(&bm, &m.refs[b].id);
		if (!bl || bl->len != m.refs[b].size) {
			blobs_ok = 0;
			break;
		}
		struct lb_rd rd;
		lb_rd_init(&rd, bl->data, bl->len);
		int first = 1;
		while (lb_rd_left(&rd) > 0) {
			struct lb_entry e;
			if (lb_entry_decode(&rd, &e) != 0) {
				blobs_ok = 0;
				break;
			}
			if (total >= n || strcmp(e.path, want[total].path) != 0)
				blobs_ok = 0;
			if (first && strcmp(e.path, m.refs[b].first_path) != 0)
				blobs_ok = 0;
			first = 0;
			total++;
			lb_entry_clear(&e);
		}
	}
	tap_ok(blobs_ok && total == n, "every blob holds whole records in order and starts at its first_path");

	size_t got;
	int equal = read_all_equal(&m, &bm, want, n, &got);
	tap_ok(equal, "mreader returns every entry in tree order, equal to the input, last duplicate winning (%zu)",
	       got);

	/* Lookups of existing paths read at most two blobs. */
	int found_ok = 1, cheap = 1;
	for (size_t k = 0; k < 60; k++) {
		size_t i = k == 0 ? 0 : k == 1 ? n - 1 : k == 2 ? n / 2 : rnd(n);
		struct lb_entry e;
		size_t before = bm.gets;
		int lr = lb_manifest_lookup(m.refs, m.nrefs, bm_get, &bm, want[i].path, &e);
		if (lr != 1 || !entry_eq(&e, &want[i]))
			found_ok = 0;
		if (bm.gets - before > 2)
			cheap = 0;
		if (lr == 1)
			lb_entry_clear(&e);
	}
	tap_ok(found_ok, "lookup finds first, last, middle and random paths with their entries");
	tap_ok(cheap, "each lookup reads at most two tree blobs");

	/* Absent paths: lookup says 0, seek stops at the next path in order. */
	int absent_ok = 1, seek_ok = 1;
	for (size_t k = 0; k < 60; k++) {
		size_t i = rnd(n);
		char path[4200];
		snprintf(path, sizeof(path), "%s%s", want[i].path, k % 2 ? "/\x01missing" : "\x01");
		struct lb_entry e;
		int lr = lb_manifest_lookup(m.refs, m.nrefs, bm_get, &bm, path, &e);
		if (lr != 0) {
			absent_ok = 0;
			if (lr == 1)
				lb_entry_clear(&e);
		}
		size_t next = i + 1;
		while (next < n && lb_path_cmp(want[next].path, path) < 0)
			next++;
		struct lb_mreader *rd = lb_mreader_new(m.refs, m.nrefs, bm_get, &bm);
		int sr = lb_mreader_seek(rd, path);
		int nr = sr == 0 ? lb_mreader_next(rd, &e) : sr;
		if (next < n ? (nr != 1 || !entry_eq(&e, &want[next])) : nr != 0)
			seek_ok = 0;
		if (nr == 1)
			lb_entry_clear(&e);
		lb_mreader_free(rd);
	}
	tap_ok(absent_ok, "lookup of 60 absent paths returns 0");
	tap_ok(seek_ok, "seek to an absent path stops at the next path in tree order");

	/* Seek to an existing path in the middle, then read on to the end. */
	struct lb_mreader *rd = lb_mreader_new(m.refs, m.nrefs, bm_get, &bm);
	size_t mid = n / 2 + 7, i = mid;
	int cont = lb_mreader_seek(rd, want[mid].path) == 0;
	struct lb_entry e;
	while (cont && lb_mreader_next(rd, &e) == 1) {
		if (i >= n || !entry_eq(&e, &want[i]))
			cont = 0;
		i++;
		lb_entry_clear(&e);
	}
	tap_ok(cont && i == n, "seek to a middle path, then next reads the rest in order");
	cont = lb_mreader_seek(rd, want[0].path) == 0 && lb_mreader_next(rd, &e) == 1;
	tap_ok(cont && entry_eq(&e, &want[0]), "seek back to the first path");
	if (cont)
		lb_entry_clear(&e);
	tap_ok(lb_mreader_seek(rd, "\xff\xff") == 0 && lb_mreader_next(rd, &e) == 0, "seek past the last path: end");
	lb_mreader_free(rd);

	/* A blob that cannot be loaded stops the reader with that error. */
	bm.fail_get = 1;
	bm.gets = 0;
	size_t cnt = 0;
	rd = lb_mreader_new(m.refs, m.nrefs, bm_get, &bm);
	int nr;
	while ((nr = lb_mreader_next(rd, &e)) == 1) {
		cnt++;
		lb_entry_clear(&e);
	}
	lb_mreader_free(rd);
	bm.fail_get = 0;
	tap_ok(nr == -EIO && cnt > 0 && cnt < n,
	       "a failing blob get ends the reader with its error (after %zu entries)", cnt);

	/* Dedup: the same tree with one entry changed in place shares all but
	 * one or two blobs. */
	size_t k = n / 3;
	want[k].uid ^= 1; /* same encoded size */
	w = lb_mwriter_new();
	for (size_t j = 0; j < n; j++)
		lb_mwriter_add(w, &want[j]);
	struct manifest m2 = { 0 };
	bm.new_puts = 0;
	r = lb_mwriter_finish(w, bm_put, &bm, &m2.refs, &m2.nrefs, &m2.nentries);
	lb_mwriter_free(w);
	size_t shared = 0;
	for (size_t b = 0; b < m2.nrefs; b++)
		for (size_t c = 0; c < m.nrefs; c++)
			if (lb_id_cmp(&m2.refs[b].id, &m.refs[c].id) == 0) {
				shared++;
				break;
			}
	tap_ok(r == 0 && bm.new_puts >= 1 && bm.new_puts <= 2 && shared + 2 >= m.nrefs,
	       "one changed entry: %zu new tree blobs, %zu of %zu shared", bm.new_puts, shared, m2.nrefs);
	equal = read_all_equal(&m2, &bm, want, n, &got);
	tap_ok(equal, "the second manifest reads back equal to its input");
	lb_tree_refs_free(m2.refs, m2.nrefs);
	want[k].uid ^= 1; /* back to what m holds */

	/* Cuts follow content: deleting or inserting an entry early in the
	 * tree must not shift every later blob. */
	for (int ins = 0; ins < 2; ins++) {
		size_t at = n / 10;
		struct lb_entry extra;
		make_tree_entry(&extra, "", 0, 424242);
		free(extra.path);
		extra.path = xmalloc(strlen(want[at].path) + 16);
		sprintf(extra.path, "%s\x01new", want[at].path);
		w = lb_mwriter_new();
		for (size_t j = 0; j < n; j++)
			if (ins || j != at)
				lb_mwriter_add(w, &want[j]);
		if (ins)
			lb_mwriter_add(w, &extra);
		lb_entry_clear(&extra);
		struct manifest m3 = { 0 };
		bm.new_puts = 0;
		r = lb_mwriter_finish(w, bm_put, &bm, &m3.refs, &m3.nrefs, &m3.nentries);
		lb_mwriter_free(w);
		shared = 0;
		for (size_t b = 0; b < m3.nrefs; b++)
			for (size_t c = 0; c < m.nrefs; c++)
				if (lb_id_cmp(&m3.refs[b].id, &m.refs[c].id) == 0) {
					shared++;
					break;
				}
		tap_ok(r == 0 && m3.nentries == (ins ? n + 1 : n - 1) && bm.new_puts >= 1 && bm.new_puts <= 3 &&
		       shared + 3 >= m.nrefs, "one entry %s near the start: %zu new tree blobs, %zu of %zu shared",
		       ins ? "inserted" : "deleted", bm.new_puts, shared, m3.nrefs);
		lb_tree_refs_free(m3.refs, m3.nrefs);
	}

	/* The in-memory path index over the whole manifest. */
	struct lb_mindex *mi = NULL;
	r = lb_mindex_load(m.refs, m.nrefs, bm_get, &bm, &mi);
	tap_ok(r == 0, "mindex loads the %zu-blob manifest", m.nrefs);
	int all_found = r == 0, none_found = r == 0;
	for (size_t j = 0; r == 0 && j < n; j++) {
		struct lb_entry x;
		int fr = lb_mindex_find(mi, want[j].path, &x);
		if (fr != 1 || !entry_eq(&x, &want[j]))
			all_found = 0;
		if (fr == 1)
			lb_entry_clear(&x);
		char absent[4200];
		snprintf(absent, sizeof(absent), "%s\x01", want[j].path);
		fr = lb_mindex_find(mi, absent, &x);
		if (fr != 0) {
			none_found = 0;
			if (fr == 1)
				lb_entry_clear(&x);
		}
	}
	tap_ok(all_found, "mindex finds every one of %zu paths with its entry", n);
	tap_ok(none_found, "mindex finds no absent path");
	lb_mindex_free(mi);

	/* With a cache of 64 KiB (two or three blobs) and the paths asked in
	 * random order, blobs are dropped and fetched again, and every answer
	 * is still right; at load nothing is fetched. */
	size_t gets0 = bm.gets;
	r = lb_mindex_load(m.refs, m.nrefs, bm_get, &bm, &mi);
	int lazy = r == 0 && bm.gets == gets0;
	if (r == 0)
		lb_mindex_set_cache(mi, 64u << 10);
	size_t *ask = xmalloc(n * sizeof(size_t));
	for (size_t j = 0; j < n; j++)
		ask[j] = j;
	shuffle(ask, n, sizeof(size_t));
	all_found = r == 0;
	for (size_t q = 0; r == 0 && q < n; q++) {
		struct lb_entry x;
		size_t j = ask[q];
		int fr = lb_mindex_find(mi, want[j].path, &x);
		if (fr != 1 || !entry_eq(&x, &want[j]))
			all_found = 0;
		if (fr == 1)
			lb_entry_clear(&x);
	}
	tap_ok(lazy, "mindex fetches no blob at load");
	tap_ok(all_found && bm.gets - gets0 > m.nrefs,
	       "with a 64 KiB cache and random order it finds every path (%zu blob fetches for %zu blobs)",
	       bm.gets - gets0, m.nrefs);
	lb_mindex_free(mi);
	free(ask);

	lb_tree_refs_free(m.refs, m.nrefs);
	bm_free(&bm);
	for (size_t j = 0; j < n; j++)
		lb_entry_clear(&want[j]);
	free(want);
	pl_free(&l);
}

static void test_empty_manifest(void)
{
	struct lb_mwriter *w = lb_mwriter_new();
	struct blobmap bm = { 0 };
	struct manifest m = { 0 };
	m.nentries = 99;
	int r = lb_mwriter_finish(w, bm_put, &bm, &m.refs, &m.nrefs, &m.nentries);
	lb_mwriter_free(w);
	tap_ok(r == 0 && m.nrefs == 0 && m.nentries == 0 && bm.puts == 0, "an empty manifest has no tree blobs");
	struct lb_mreader *rd = lb_mreader_new(m.refs, m.nrefs, bm_get, &bm);
	struct lb_entry e;
	tap_ok(lb_mreader_next(rd, &e) == 0 && lb_mreader_seek(rd, "a") == 0 && lb_mreader_next(rd, &e) == 0,
	       "reading an empty manifest ends at once");
	lb_mreader_free(rd);
	tap_ok(lb_manifest_lookup(m.refs, m.nrefs, bm_get, &bm, "a", &e) == 0, "lookup in an empty manifest: absent");
	struct lb_mindex *mi = NULL;
	int r2 = lb_mindex_load(m.refs, m.nrefs, bm_get, &bm, &mi);
	tap_ok(r2 == 0 && lb_mindex_find(mi, "a", &e) == 0, "mindex of an empty manifest finds nothing");
	lb_mindex_free(mi);
	lb_tree_refs_free(m.refs, m.nrefs);
}

static struct lb_entry *find_entry(struct lb_entry *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].path, path) == 0)
			return &v[i];
	return NULL;
}

static void test_hardlinks(void)
{
	struct lb_entry data, l1, l2, l3, other, olink, dirs[4];
	const char *dnames[4] = { "a", "m", "z", "zz" };
	for (int i = 0; i < 4; i++) {
		memset(&dirs[i], 0, sizeof(dirs[i]));
		dirs[i].path = xstrdup(dnames[i]);
		dirs[i].type = LB_FT_DIR;
		dirs[i].mode = 0755;
	}
	memset(&data, 0, sizeof(data));
	data.path = xstrdup("z/data");
	data.type = LB_FT_REG;
	data.mode = 0640;
	data.uid = 123456;
	data.nlink = 4;
	data.ino = 777;
	add_chunks(&data, 3);
	struct lb_entry *links[3] = { &l1, &l2, &l3 };
	const char *lpaths[3] = { "a/link", "m/link2", "zz/late" };
	for (int i = 0; i < 3; i++) {
		memset(links[i], 0, sizeof(*links[i]));
		links[i]->path = xstrdup(lpaths[i]);
		links[i]->type = LB_FT_HARDLINK;
		links[i]->link = xstrdup("z/data");
		links[i]->mode = 0640;
		links[i]->uid = 123456;
		links[i]->nlink = 4;
		links[i]->ino = 777;
	}
	/* A pair already in order stays as it is. */
	memset(&other, 0, sizeof(other));
	other.path = xstrdup("b-data");
	other.type = LB_FT_REG;
	add_chunks(&other, 1);
	memset(&olink, 0, sizeof(olink));
	olink.path = xstrdup("c-link");
	olink.type = LB_FT_HARDLINK;
	olink.link = xstrdup("b-data");

	struct lb_mwriter *w = lb_mwriter_new();
	lb_mwriter_add(w, &l3);
	lb_mwriter_add(w, &data);
	lb_mwriter_add(w, &olink);
	lb_mwriter_add(w, &l1);
	for (int i = 3; i >= 0; i--)
		lb_mwriter_add(w, &dirs[i]);
	lb_mwriter_add(w, &other);
	lb_mwriter_add(w, &l2);
	struct blobmap bm = { 0 };
	struct manifest m = { 0 };
	int r = lb_mwriter_finish(w, bm_put, &bm, &m.refs, &m.nrefs, &m.nentries);
	lb_mwriter_free(w);
	tap_ok(r == 0 && m.nentries == 10, "manifest with hardlinks finished");

	struct lb_entry got[16];
	size_t n = 0;
	struct lb_mreader *rd = lb_mreader_new(m.refs, m.nrefs, bm_get, &bm);
	while (n < 16 && lb_mreader_next(rd, &got[n]) == 1)
		n++;
	lb_mreader_free(rd);

	struct lb_entry *a = find_entry(got, n, "a/link"), *z = find_entry(got, n, "z/data");
	struct lb_entry *m2 = find_entry(got, n, "m/link2"), *zz = find_entry(got, n, "zz/late");
	struct lb_entry *bd = find_entry(got, n, "b-data"), *cl = find_entry(got, n, "c-link");
	int a_ok = a && a->type == LB_FT_REG && a->nchunks == data.nchunks && a->size == data.size &&
		   memcmp(a->chunks, data.chunks, data.nchunks * sizeof(*data.chunks)) == 0 && !a->link;
	tap_ok(a_ok, "\"a/link\" (first in tree order) now holds the data as REG");
	tap_ok(z && z->type == LB_FT_HARDLINK && str_eq(z->link, "a/link") && z->nchunks == 0,
	       "\"z/data\" became a HARDLINK to \"a/link\"");
	tap_ok(m2 && m2->type == LB_FT_HARDLINK && str_eq(m2->link, "a/link") && zz &&
	       zz->type == LB_FT_HARDLINK && str_eq(zz->link, "a/link"), "the other links point at \"a/link\"");
	tap_ok(bd && bd->type == LB_FT_REG && bd->nchunks == 1 && cl && cl->type == LB_FT_HARDLINK &&
	       str_eq(cl->link, "b-data"), "a link after its target is left alone");
	/* The invariant restores rely on: every link's target comes earlier
	 * and holds the data. */
	int inv = n == 10;
	for (size_t i = 0; i < n; i++) {
		if (got[i].type != LB_FT_HARDLINK)
			continue;
		int seen = 0;
		for (size_t j = 0; j < i; j++)
			if (strcmp(got[j].path, got[i].link) == 0 && got[j].type == LB_FT_REG)
				seen = 1;
		if (!seen)
			inv = 0;
	}
	tap_ok(inv, "every hardlink's target precedes it in tree order and is a REG");

	for (size_t i = 0; i < n; i++)
		lb_entry_clear(&got[i]);
	lb_tree_refs_free(m.refs, m.nrefs);
	bm_free(&bm);
	lb_entry_clear(&data);
	for (int i = 0; i < 3; i++)
		lb_entry_clear(links[i]);
	for (int i = 0; i < 4; i++)
		lb_entry_clear(&dirs[i]);
	lb_entry_clear(&other);
	lb_entry_clear(&olink);
}

/* Adds the same entries to a writer that keeps them in memory and to one
 * that spills past budget bytes; 1 when both make the same blobs. */
static int same_with_spill(struct lb_entry **add, size_t n, size_t budget, uint64_t *spilled, size_t *nrefs)
{
	struct manifest m[2] = { { 0 }, { 0 } };
	struct blobmap bm[2] = { { 0 }, { 0 } };
	int r[2];
	for (int k = 0; k < 2; k++) {
		struct lb_mwriter *w = lb_mwriter_new();
		if (k == 1)
			lb_mwriter_spill(w, NULL, budget);
		int ar = 0;
		for (size_t i = 0; i < n && ar == 0; i++)
			ar = lb_mwriter_add(w, add[i]);
		if (k == 1)
			*spilled = lb_mwriter_spilled(w);
		r[k] = ar ? ar : lb_mwriter_finish(w, bm_put, &bm[k], &m[k].refs, &m[k].nrefs, &m[k].nentries);
		lb_mwriter_free(w);
	}
	int same = r[0] == 0 && r[1] == 0 && m[0].nrefs == m[1].nrefs && m[0].nentries == m[1].nentries;
	for (size_t i = 0; same && i < m[0].nrefs; i++)
		same = lb_id_cmp(&m[0].refs[i].id, &m[1].refs[i].id) == 0 && m[0].refs[i].size == m[1].refs[i].size &&
		       strcmp(m[0].refs[i].first_path, m[1].refs[i].first_path) == 0;
	*nrefs = m[0].nrefs;
	for (int k = 0; k < 2; k++) {
		lb_tree_refs_free(m[k].refs, m[k].nrefs);
		bm_free(&bm[k]);
	}
	return same;
}

static void make_link(struct lb_entry *e, const char *path, const char *target)
{
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->type = LB_FT_HARDLINK;
	e->link = xstrdup(target);
	e->mode = 0600;
	e->nlink = 3;
	e->ino = 4242;
}

/* A manifest larger than the memory budget goes through sorted runs in a
 * temporary file and comes out exactly as it would from memory: duplicates
 * resolved across runs (the last added wins), hardlinks reordered across
 * runs, the same cuts. */
static void test_spill(void)
{
	struct pathlist l = { 0 };
	gen_tree(&l, "", 0, 40);
	size_t n = l.n;
	struct lb_entry *ents = xmalloc((n + 64) * sizeof(*ents));
	size_t ne = 0;
	for (size_t i = 0; i < n; i++)
		make_tree_entry(&ents[ne++], l.v[i], l.is_dir[i], i);
	/* stale versions, added first, and newer versions, added last */
	size_t stale0 = ne;
	for (size_t k = 0; k < 8; k++) {
		make_tree_entry(&ents[ne], l.v[k * 997 % n], 0, 99999 + k);
		ents[ne++].mtime_ns = -1;
	}
	size_t newer0 = ne;
	for (size_t k = 0; k < 8; k++) {
		make_tree_entry(&ents[ne], l.v[(k * 4999 + 3) % n], 0, 7 + k);
		ents[ne++].gid = 300000;
	}
	/* hardlinks: links before their target (reordered), after it (left
	 * alone), one replaced later by a plain file, one that replaces a file */
	size_t f[3] = { n / 2, n / 3, n / 4 }; /* files, not directories */
	for (int k = 0; k < 3; k++)
		while (l.is_dir[f[k]])
			f[k]++;
	const char *target = l.v[f[0]], *target2 = l.v[f[1]];
	size_t links0 = ne;
	make_link(&ents[ne++], "!early-link", target);
	make_link(&ents[ne++], "~late-link", target);
	make_link(&ents[ne++], "!!first", target2);
	make_link(&ents[ne++], "!gone-link", target2);
	size_t gone = ne;
	make_tree_entry(&ents[ne++], "!gone-link", 0, 5);
	make_link(&ents[ne++], l.v[f[2]], target);

	/* in the order a backup sends them: stale first, the tree shuffled
	 * with the links among it, newer versions and overrides last */
	size_t na = 0;
	struct lb_entry **add = xmalloc(ne * sizeof(*add));
	for (size_t i = stale0; i < newer0; i++)
		add[na++] = &ents[i];
	size_t mid = na;
	for (size_t i = 0; i < n; i++)
		add[na++] = &ents[i];
	for (size_t i = links0; i < gone; i++)
		add[na++] = &ents[i];
	shuffle(add + mid, na - mid, sizeof(*add));
	for (size_t i = newer0; i < links0; i++)
		add[na++] = &ents[i];
	for (size_t i = gone; i < ne; i++)
		add[na++] = &ents[i];

	static const size_t budgets[] = { 1, 16u << 10, 300u << 10, 4u << 20 };
	for (size_t b = 0; b < LB_ARRAY_SIZE(budgets); b++) {
		uint64_t spilled = 0;
		size_t nrefs = 0;
		int same = same_with_spill(add, na, budgets[b], &spilled, &nrefs);
		tap_ok(same && spilled > 0 && nrefs >= 3,
		       "with a budget of %zu bytes (%llu spilled), the %zu blobs are the ones memory makes", budgets[b],
		       (unsigned long long)spilled, nrefs);
	}
	/* and nothing spills under the budget */
	uint64_t spilled = 1;
	size_t nrefs = 0;
	tap_ok(same_with_spill(add, na, (size_t)1 << 30, &spilled, &nrefs) && spilled == 0,
	       "under the budget nothing is written to disk");

	/* what the spilled manifest holds: each path once, the newest version,
	 * and every hardlink's target before it as a REG */
	struct lb_mwriter *w = lb_mwriter_new();
	lb_mwriter_spill(w, NULL, 16u << 10);
	for (size_t i = 0; i < na; i++)
		lb_mwriter_add(w, add[i]);
	struct blobmap bm = { 0 };
	struct manifest m = { 0 };
	int r = lb_mwriter_finish(w, bm_put, &bm, &m.refs, &m.nrefs, &m.nentries);
	lb_mwriter_free(w);
	struct lb_mreader *rd = lb_mreader_new(m.refs, m.nrefs, bm_get, &bm);
	struct lb_entry e;
	size_t got = 0, newest = 0, links_ok = 1, gone_reg = 0;
	char **seen = xmalloc((n + 16) * sizeof(char *));
	while (r == 0 && lb_mreader_next(rd, &e) == 1) {
		if (e.gid == 300000)
			newest++;
		if (e.mtime_ns == -1)
			newest = 0; /* a stale version won: wrong */
		if (!strcmp(e.path, "!gone-link") && e.type == LB_FT_REG)
			gone_reg = 1;
		if (e.type == LB_FT_HARDLINK) {
			int found = 0;
			for (size_t j = 0; j < got; j++)
				if (!strcmp(seen[j], e.link))
					found = 1;
			links_ok &= found;
		}
		seen[got++] = xstrdup(e.path);
		lb_entry_clear(&e);
	}
	lb_mreader_free(rd);
	tap_ok(r == 0 && got == m.nentries && got == n + 4, "the spilled manifest reads back %zu entries, one per path",
	       got);
	tap_ok(newest == 8, "the last added version of each path won across runs");
	tap_ok(gone_reg, "a hardlink replaced by a later plain file stays a plain file");
	tap_ok(links_ok, "every hardlink's target precedes it");
	for (size_t i = 0; i < got; i++)
		free(seen[i]);
	free(seen);
	lb_tree_refs_free(m.refs, m.nrefs);
	bm_free(&bm);
	for (size_t i = 0; i < ne; i++)
		lb_entry_clear(&ents[i]);
	free(ents);
	free(add);
	pl_free(&l);
}

int main(void)
{
	test_roundtrip();
	test_invalid_records();
	test_paths();
	test_tree();
	test_empty_manifest();
	test_hardlinks();
	test_spill();
	return tap_done();
}
