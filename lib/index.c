/* index.c - sorted index runs; see index.h and format.h. */
#include "config.h"

#include "index.h"
#include "codec.h"
#include "crc32c.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>

#define MAX_RUNS_BEFORE_MERGE 8

struct run {
	uint64_t seq;
	uint64_t covers;
	uint8_t *data;
	size_t len;
	uint32_t npacks;
	const uint8_t *packs;   /* npacks * 16 */
	const uint8_t *entries; /* n * 48, sorted */
	uint64_t n;
};

struct lb_index {
	struct lb_backend *be;
	pthread_rwlock_t lock;
	struct run *runs;
	size_t nruns, cap;
	uint64_t next_seq;
	/* A garbage collection in progress (see index.h): its base is
	 * runs[0 .. gc_nbase), the runs there when it began (they keep their
	 * places: runs are only appended, and no merge runs meanwhile).
	 * gc_mark holds a bit per base entry, run k's from gc_off[k], set when
	 * the entry is found live; once gc_frozen, unmarked base entries are
	 * invisible.  gc_poff[k] numbers run k's packs among all base packs. */
	int gc_active;
	size_t gc_nbase;
	uint64_t *gc_off;
	uint32_t *gc_poff;
	uint64_t gc_bits;
	uint32_t gc_packs;
	uint8_t *gc_mark;
	int gc_frozen;
	/* The highest seq written that memory does not hold as a run (a
	 * collection's merged base): a merge must cover it too. */
	uint64_t covers_floor;
};

static void run_name(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "index/%016llx", (unsigned long long)seq);
}

/* Points a run's fields into its image (header already checked). */
static void run_point(struct run *r, uint8_t *data, size_t len, uint32_t npacks, uint64_t n)
{
	r->data = data;
	r->len = len;
	r->npacks = npacks;
	r->packs = data + LB_INDEX_HEADER_SIZE;
	r->entries = r->packs + (size_t)npacks * LB_PACK_ID_LEN;
	r->n = n;
}

static void entry_decode(const struct run *r, const uint8_t *p, struct lb_pack_id *pack, struct lb_pack_entry *e)
{
	memcpy(e->id.b, p, LB_ID_LEN);
	uint32_t pf = lb_get32(p + 32);
	memcpy(pack->b, r->packs + (size_t)(pf & 0xffffff) * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
	e->codec = (pf >> 24) & 15;
	e->type = (uint8_t)(pf >> 28);
	e->offset = lb_get32(p + 36);
	e->stored = lb_get32(p + 40);
	e->raw = lb_get32(p + 44);
	/* The index keeps no base count: for a delta blob, stored covers the
	 * base list and the payload (lb_blob_get resolves them). */
	e->nbases = e->codec == LB_CODEC_ZSTD_DELTA ? LB_NBASES_INDEX : 0;
}

/* Parses and verifies a run image; takes ownership of data. */
static int run_load(uint64_t seq, uint8_t *data, size_t len, struct run *r)
{
	char name[64];
	run_name(seq, name, sizeof(name));
	if (len < LB_INDEX_HEADER_SIZE + 4 || memcmp(data, LB_INDEX_MAGIC, 8) != 0) {
		lb_set_error("index run %s is damaged (bad header); run 'lumbung repair index'", name);
		return -EBADMSG;
	}
	if (lb_get32(data + 8) > LB_FORMAT_VERSION) {
		lb_set_error("index run %s has a newer format version (%u)", name, lb_get32(data + 8));
		return -EPROTONOSUPPORT;
	}
	uint32_t npacks = lb_get32(data + 12);
	uint64_t n = lb_get64(data + 16);
	if (npacks > LB_INDEX_MAX_PACKS || n > (len / LB_INDEX_ENTRY_SIZE) ||
	    LB_INDEX_HEADER_SIZE + (uint64_t)npacks * LB_PACK_ID_LEN + n * LB_INDEX_ENTRY_SIZE + 4 != len) {
		lb_set_error("index run %s is damaged (sizes do not match); run 'lumbung repair index'", name);
		return -EBADMSG;
	}
	if (lb_crc32c(0, data, len - 4) != lb_get32(data + len - 4)) {
		lb_set_error("index run %s is damaged (checksum); run 'lumbung repair index'", name);
		return -EBADMSG;
	}
	r->seq = seq;
	r->covers = lb_get64(data + 24);
	run_point(r, data, len, npacks, n);
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *p = r->entries + i * LB_INDEX_ENTRY_SIZE;
		if ((lb_get32(p + 32) & 0xffffff) >= npacks ||
		    (i > 0 && memcmp(p - LB_INDEX_ENTRY_SIZE, p, LB_ID_LEN) > 0)) {
			lb_set_error("index run %s is damaged (entry %llu); run 'lumbung repair index'",
				     name, (unsigned long long)i);
			return -EBADMSG;
		}
	}
	return 0;
}

struct seqlist {
	uint64_t *v;
	size_t n, cap;
};

static int list_runs_cb(void *arg, const char *name, uint64_t size)
{
	struct seqlist *l = arg;
	uint8_t b[8];
	(void)size;
	if (strlen(name) != 6 + 16 || lb_unhex(b, name + 6, 8) < 0)
		return 0; /* not ours */
	int r = lb_grow(&l->v, &l->cap, l->n + 1, sizeof(uint64_t));
	if (r < 0)
		return r;
	uint64_t seq = 0;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | b[i];
	l->v[l->n++] = seq;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void run_free(struct run *r) { free(r->data); }

int lb_index_open(struct lb_backend *be, struct lb_index **out)
{
	struct lb_index *idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	idx->be = be;
	idx->next_seq = 1;
	pthread_rwlock_init(&idx->lock, NULL);
	struct seqlist l = { 0 };
	int r = be->ops->list(be, "index", list_runs_cb, &l);
	if (r < 0)
		goto fail;
	if (l.n)
		qsort(l.v, l.n, sizeof(uint64_t), cmp_u64);
	for (size_t i = 0; i < l.n; i++) {
		char name[64];
		uint8_t *data;
		size_t len;
		run_name(l.v[i], name, sizeof(name));
		r = lb_backend_read_all(be, name, SIZE_MAX / 2, &data, &len);
		if (r < 0) {
			lb_set_error("cannot read index run %s: %s", name, strerror(-r));
			goto fail;
		}
		r = lb_grow(&idx->runs, &idx->cap, idx->nruns + 1, sizeof(struct run));
		if (r < 0) {
			free(data);
			goto fail;
		}
		r = run_load(l.v[i], data, len, &idx->runs[idx->nruns]);
		if (r < 0) {
			free(data);
			goto fail;
		}
		idx->nruns++;
		idx->next_seq = l.v[i] + 1;
	}
	/* Drop runs superseded by a merge that finished writing its result. */
	uint64_t covers = 0;
	for (size_t i = 0; i < idx->nruns; i++)
		covers = LB_MAX(covers, idx->runs[i].covers);
	size_t keep = 0;
	for (size_t i = 0; i < idx->nruns; i++) {
		if (idx->runs[i].seq <= covers) {
			char name[64];
			run_name(idx->runs[i].seq, name, sizeof(name));
			be->ops->remove(be, name);
			run_free(&idx->runs[i]);
		} else {
			idx->runs[keep++] = idx->runs[i];
		}
	}
	idx->nruns = keep;
	free(l.v);
	*out = idx;
	return 0;
fail:
	free(l.v);
	lb_index_free(idx);
	return r;
}

void lb_index_free(struct lb_index *idx)
{
	if (!idx)
		return;
	for (size_t i = 0; i < idx->nruns; i++)
		run_free(&idx->runs[i]);
	free(idx->runs);
	pthread_rwlock_destroy(&idx->lock);
	free(idx);
}

static const uint8_t *run_find(const struct run *r, const struct lb_id *id)
{
	uint64_t lo = 0, hi = r->n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		const uint8_t *p = r->entries + mid * LB_INDEX_ENTRY_SIZE;
		int c = memcmp(p, id->b, LB_ID_LEN);
		if (c == 0)
			return p;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static inline int gc_bit(const uint8_t *bits, uint64_t i) { return bits[i >> 3] >> (i & 7) & 1; }

/* Whether entry p of run ru is hidden by a frozen collection, and (with
 * mark) records it as referenced.  Called with the lock held for reading. */
static int gc_visit(struct lb_index *idx, const struct run *ru, const uint8_t *p, int mark)
{
	size_t k = (size_t)(ru - idx->runs);
	if (!idx->gc_active || k >= idx->gc_nbase)
		return 0;
	uint64_t i = idx->gc_off[k] + (uint64_t)(p - ru->entries) / LB_INDEX_ENTRY_SIZE;
	if (idx->gc_frozen)
		return !gc_bit(idx->gc_mark, i);
	if (mark)
		__atomic_fetch_or(&idx->gc_mark[i >> 3], (uint8_t)(1u << (i & 7)), __ATOMIC_RELAXED);
	return 0;
}

static int lookup(struct lb_index *idx, const struct lb_id *id, struct lb_pack_id *pack, struct lb_pack_entry *e,
		  int mark)
{
	int found = 0;
	pthread_rwlock_rdlock(&idx->lock);
	for (size_t i = idx->nruns; i-- > 0;) {
		const uint8_t *p = run_find(&idx->runs[i], id);
		if (p && !gc_visit(idx, &idx->runs[i], p, mark)) {
			entry_decode(&idx->runs[i], p, pack, e);
			found = 1;
			break;
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	return found;
}

int lb_index_lookup(struct lb_index *idx, const struct lb_id *id, struct lb_pack_id *pack,
		    struct lb_pack_entry *e)
{
	return lookup(idx, id, pack, e, 0);
}

int lb_index_lookup_ref(struct lb_index *idx, const struct lb_id *id, struct lb_pack_id *pack,
			struct lb_pack_entry *e)
{
	return lookup(idx, id, pack, e, 1);
}

/* An entry being assembled into a new run. */
struct build_entry {
	uint8_t raw[LB_INDEX_ENTRY_SIZE];
};

static int cmp_build(const void *a, const void *b)
{
	return memcmp(a, b, LB_ID_LEN);
}

/* Sorts, de-duplicates and writes entries (whose pack numbers refer to
 * packs[]) as run seq; returns the image in *data for loading. */
static int write_run(struct lb_backend *be, uint64_t seq, uint64_t covers, const uint8_t *packs,
		     uint32_t npacks, struct build_entry *ents, uint64_t n, uint8_t **data, size_t *len)
{
	if (n)
		qsort(ents, n, sizeof(*ents), cmp_build);
	uint64_t m = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (m > 0 && memcmp(ents[m - 1].raw, ents[i].raw, LB_ID_LEN) == 0)
			continue;
		ents[m++] = ents[i];
	}
	size_t total = LB_INDEX_HEADER_SIZE + (size_t)npacks * LB_PACK_ID_LEN + m * LB_INDEX_ENTRY_SIZE + 4;
	uint8_t *img = malloc(total);
	if (!img)
		return -ENOMEM;
	memset(img, 0, LB_INDEX_HEADER_SIZE);
	memcpy(img, LB_INDEX_MAGIC, 8);
	lb_put32(img + 8, LB_FORMAT_VERSION);
	lb_put32(img + 12, npacks);
	lb_put64(img + 16, m);
	lb_put64(img + 24, covers);
	if (npacks)
		memcpy(img + LB_INDEX_HEADER_SIZE, packs, (size_t)npacks * LB_PACK_ID_LEN);
	uint8_t *p = img + LB_INDEX_HEADER_SIZE + (size_t)npacks * LB_PACK_ID_LEN;
	for (uint64_t i = 0; i < m; i++)
		memcpy(p + i * LB_INDEX_ENTRY_SIZE, ents[i].raw, LB_INDEX_ENTRY_SIZE);
	lb_put32(img + total - 4, lb_crc32c(0, img, total - 4));
	char name[64];
	run_name(seq, name, sizeof(name));
	int r = lb_backend_put(be, name, img, total);
	if (r < 0) {
		free(img);
		return r;
	}
	*data = img;
	*len = total;
	return 0;
}

static void build_encode(struct build_entry *b, const struct lb_pack_entry *e, uint32_t packno)
{
	memcpy(b->raw, e->id.b, LB_ID_LEN);
	lb_put32(b->raw + 32, packno | (uint32_t)(e->codec & 15) << 24 | (uint32_t)(e->type & 15) << 28);
	lb_put32(b->raw + 36, e->offset);
	/* Footer entries were checked to lie inside their pack (< 2^31). */
	lb_put32(b->raw + 40, (uint32_t)lb_pack_entry_tail(e));
	lb_put32(b->raw + 44, e->raw);
}

static int add_run_locked(struct lb_index *idx, uint64_t seq, uint8_t *data, size_t len)
{
	int r = lb_grow(&idx->runs, &idx->cap, idx->nruns + 1, sizeof(struct run));
	if (r < 0)
		return r;
	r = run_load(seq, data, len, &idx->runs[idx->nruns]);
	if (r < 0)
		return r;
	idx->nruns++;
	return 0;
}

int lb_index_add(struct lb_index *idx, const struct lb_index_pack *packs, size_t npacks)
{
	if (npacks == 0)
		return 0;
	if (npacks >= LB_INDEX_MAX_PACKS)
		return -EFBIG;
	uint64_t n = 0;
	for (size_t i = 0; i < npacks; i++)
		n += packs[i].n;
	struct build_entry *ents = lb_mallocarray(n, sizeof(*ents));
	uint8_t *ptab = lb_mallocarray(npacks, LB_PACK_ID_LEN);
	if (!ents || !ptab) {
		free(ents);
		free(ptab);
		return -ENOMEM;
	}
	uint64_t k = 0;
	for (size_t i = 0; i < npacks; i++) {
		memcpy(ptab + i * LB_PACK_ID_LEN, packs[i].id.b, LB_PACK_ID_LEN);
		for (size_t j = 0; j < packs[i].n; j++)
			build_encode(&ents[k++], &packs[i].entries[j], (uint32_t)i);
	}
	pthread_rwlock_wrlock(&idx->lock);
	uint64_t seq = idx->next_seq++;
	pthread_rwlock_unlock(&idx->lock);
	uint8_t *data;
	size_t len;
	int r = write_run(idx->be, seq, 0, ptab, (uint32_t)npacks, ents, n, &data, &len);
	free(ents);
	free(ptab);
	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&idx->lock);
	r = add_run_locked(idx, seq, data, len);
	size_t nruns = idx->nruns;
	int gc = idx->gc_active;
	pthread_rwlock_unlock(&idx->lock);
	if (r < 0) {
		free(data);
		return r;
	}
	if (nruns > MAX_RUNS_BEFORE_MERGE && !gc)
		return lb_index_compact(idx);
	return 0;
}

/* Pack ids seen while merging, with their new numbers. */
struct packmap {
	uint8_t *ids;
	uint32_t n;
	size_t cap;
};

/* Appends a pack id and returns its number.  Every sealed pack is listed in
 * exactly one run (and once among the pack objects), so no search is needed;
 * a repeated id would only cost 16 bytes. */
static int packmap_add(struct packmap *m, const uint8_t *id, uint32_t *no)
{
	if (m->n + 1 >= LB_INDEX_MAX_PACKS)
		return -EFBIG;
	int r = lb_grow(&m->ids, &m->cap, (size_t)m->n + 1, LB_PACK_ID_LEN);
	if (r < 0)
		return r;
	memcpy(m->ids + (size_t)m->n * LB_PACK_ID_LEN, id, LB_PACK_ID_LEN);
	*no = m->n++;
	return 0;
}

static int compact_locked(struct lb_index *idx);

int lb_index_compact(struct lb_index *idx)
{
	pthread_rwlock_wrlock(&idx->lock);
	/* A collection holds its base run still until it ends. */
	int r = idx->gc_active ? 0 : compact_locked(idx);
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

static int compact_locked(struct lb_index *idx)
{
	if (idx->nruns <= 1)
		return 0;
	/* Merge under the write lock: runs must not change underneath, and a
	 * merge of a few million entries takes well under a second. */
	uint64_t n = 0;
	for (size_t i = 0; i < idx->nruns; i++)
		n += idx->runs[i].n;
	struct build_entry *ents = lb_mallocarray(n, sizeof(*ents));
	struct packmap pm = { 0 };
	int r = ents ? 0 : -ENOMEM;
	uint64_t k = 0;
	for (size_t i = 0; r == 0 && i < idx->nruns; i++) {
		struct run *ru = &idx->runs[i];
		uint32_t *remap = lb_mallocarray(ru->npacks, sizeof(uint32_t));
		if (!remap) {
			r = -ENOMEM;
			break;
		}
		for (uint32_t p = 0; r == 0 && p < ru->npacks; p++)
			r = packmap_add(&pm, ru->packs + (size_t)p * LB_PACK_ID_LEN, &remap[p]);
		for (uint64_t j = 0; r == 0 && j < ru->n; j++) {
			const uint8_t *src = ru->entries + j * LB_INDEX_ENTRY_SIZE;
			memcpy(ents[k].raw, src, LB_INDEX_ENTRY_SIZE);
			uint32_t pf = lb_get32(src + 32);
			lb_put32(ents[k].raw + 32, (pf & 0xff000000u) | remap[pf & 0xffffff]);
			k++;
		}
		free(remap);
	}
	uint64_t seq = idx->next_seq++;
	/* Everything memory holds, including what a collection's merged
	 * base (written, but held as the filtered runs) covers. */
	uint64_t covers = idx->covers_floor;
	for (size_t i = 0; i < idx->nruns; i++)
		covers = LB_MAX(covers, idx->runs[i].seq);
	uint8_t *data = NULL;
	size_t len = 0;
	if (r == 0)
		r = write_run(idx->be, seq, covers, pm.ids, pm.n, ents, k, &data, &len);
	free(ents);
	free(pm.ids);
	if (r < 0)
		return r;
	struct run merged;
	r = run_load(seq, data, len, &merged);
	if (r < 0) {
		free(data);
		return r;
	}
	for (size_t i = 0; i < idx->nruns; i++) {
		char name[64];
		run_name(idx->runs[i].seq, name, sizeof(name));
		idx->be->ops->remove(idx->be, name); /* leftovers are dropped on open */
		run_free(&idx->runs[i]);
	}
	if (idx->covers_floor) {
		/* A collection's merged run, which memory held as its parts:
		 * the merged run just written holds it all now. */
		char name[64];
		run_name(idx->covers_floor, name, sizeof(name));
		idx->be->ops->remove(idx->be, name);
		idx->covers_floor = 0;
	}
	idx->runs[0] = merged;
	idx->nruns = 1;
	return 0;
}

uint64_t lb_index_entries(struct lb_index *idx)
{
	uint64_t n = 0;
	pthread_rwlock_rdlock(&idx->lock);
	for (size_t i = 0; i < idx->nruns; i++)
		n += idx->runs[i].n;
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

size_t lb_index_nruns(struct lb_index *idx) { return idx->nruns; }

uint64_t lb_index_memory(struct lb_index *idx)
{
	uint64_t n = sizeof(*idx);
	pthread_rwlock_rdlock(&idx->lock);
	for (size_t i = 0; i < idx->nruns; i++)
		n += idx->runs[i].len + sizeof(struct run);
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

int lb_index_foreach(struct lb_index *idx, lb_index_cb cb, void *arg)
{
	int r = 0;
	pthread_rwlock_rdlock(&idx->lock);
	for (size_t i = 0; r >= 0 && i < idx->nruns; i++) {
		struct run *ru = &idx->runs[i];
		for (uint64_t j = 0; r >= 0 && j < ru->n; j++) {
			struct lb_pack_id pack;
			struct lb_pack_entry e;
			if (gc_visit(idx, ru, ru->entries + j * LB_INDEX_ENTRY_SIZE, 0))
				continue;
			entry_decode(ru, ru->entries + j * LB_INDEX_ENTRY_SIZE, &pack, &e);
			r = cb(arg, &pack, &e);
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

struct rebuild {
	struct lb_backend *be;
	struct packmap pm;
	struct build_entry *ents;
	size_t n, cap;
	uint64_t bad;
};

static int rebuild_cb(void *arg, const char *name, uint64_t size)
{
	struct rebuild *rb = arg;
	struct lb_pack_id id;
	(void)size;
	if (lb_pack_parse_name(name, &id) < 0)
		return 0;
	struct lb_pack_entry *es;
	size_t n;
	int r = lb_pack_read_footer(rb->be, &id, &es, &n);
	if (r == -EBADMSG) {
		rb->bad++;
		return 0;
	}
	if (r < 0)
		return r;
	uint32_t no;
	r = packmap_add(&rb->pm, id.b, &no);
	if (r == 0)
		r = lb_grow(&rb->ents, &rb->cap, rb->n + n, sizeof(*rb->ents));
	for (size_t i = 0; r == 0 && i < n; i++)
		build_encode(&rb->ents[rb->n++], &es[i], no);
	free(es);
	return r;
}

int lb_index_rebuild(struct lb_backend *be, uint64_t *packs, uint64_t *chunks, uint64_t *bad_packs)
{
	struct rebuild rb = { .be = be };
	struct seqlist l = { 0 };
	int r = be->ops->list(be, "index", list_runs_cb, &l);
	if (r == 0)
		r = be->ops->list(be, "packs", rebuild_cb, &rb);
	uint64_t maxseq = 0;
	for (size_t i = 0; i < l.n; i++)
		maxseq = LB_MAX(maxseq, l.v[i]);
	uint8_t *data = NULL;
	size_t len;
	if (r == 0)
		r = write_run(be, maxseq + 1, maxseq, rb.pm.ids, rb.pm.n, rb.ents, rb.n, &data, &len);
	if (r == 0) {
		for (size_t i = 0; i < l.n; i++) {
			char name[64];
			run_name(l.v[i], name, sizeof(name));
			be->ops->remove(be, name);
		}
		if (packs)
			*packs = rb.pm.n;
		if (chunks)
			*chunks = lb_get64(data + 16);
		if (bad_packs)
			*bad_packs = rb.bad;
	}
	free(data);
	free(l.v);
	free(rb.pm.ids);
	free(rb.ents);
	return r;
}

uint64_t lb_index_blob_bytes(struct lb_index *idx)
{
	uint64_t sum = 0;
	pthread_rwlock_rdlock(&idx->lock);
	for (size_t i = 0; i < idx->nruns; i++) {
		const struct run *ru = &idx->runs[i];
		for (uint64_t j = 0; j < ru->n; j++)
			sum += LB_BLOB_HEADER_SIZE + lb_get32(ru->entries + j * LB_INDEX_ENTRY_SIZE + 40);
	}
	pthread_rwlock_unlock(&idx->lock);
	return sum;
}

/* ---- garbage collection ---------------------------------------------------- */

static void gc_clear_locked(struct lb_index *idx)
{
	free(idx->gc_mark);
	free(idx->gc_off);
	free(idx->gc_poff);
	idx->gc_mark = NULL;
	idx->gc_off = NULL;
	idx->gc_poff = NULL;
	idx->gc_active = 0;
	idx->gc_frozen = 0;
	idx->gc_nbase = 0;
}

int lb_index_gc_begin(struct lb_index *idx, uint64_t *entries, uint32_t *packs)
{
	pthread_rwlock_wrlock(&idx->lock);
	if (idx->gc_active) {
		pthread_rwlock_unlock(&idx->lock);
		return -EBUSY;
	}
	/* The runs are taken as they are: merging them first would need the
	 * index twice over in memory. */
	size_t nb = idx->nruns;
	uint64_t *off = calloc(nb + 1, sizeof(*off));
	uint32_t *poff = calloc(nb + 1, sizeof(*poff));
	uint64_t bits = 0;
	uint64_t np = 0;
	for (size_t k = 0; off && poff && k < nb; k++) {
		off[k] = bits;
		poff[k] = (uint32_t)np;
		bits += idx->runs[k].n;
		np += idx->runs[k].npacks;
	}
	uint8_t *mark = off && poff && np < UINT32_MAX ? calloc(bits / 8 + 1, 1) : NULL;
	if (!mark) {
		free(off);
		free(poff);
		pthread_rwlock_unlock(&idx->lock);
		return -ENOMEM;
	}
	idx->gc_active = 1;
	idx->gc_nbase = nb;
	idx->gc_off = off;
	idx->gc_poff = poff;
	idx->gc_bits = bits;
	idx->gc_packs = (uint32_t)np;
	idx->gc_mark = mark;
	idx->gc_frozen = 0;
	*entries = bits;
	*packs = (uint32_t)np;
	pthread_rwlock_unlock(&idx->lock);
	return 0;
}

/* Sets mark i; returns whether it was set already. */
static int gc_set(struct lb_index *idx, uint64_t i)
{
	uint8_t old = __atomic_fetch_or(&idx->gc_mark[i >> 3], (uint8_t)(1u << (i & 7)), __ATOMIC_RELAXED);
	return (old >> (i & 7)) & 1;
}

int lb_index_gc_mark(struct lb_index *idx, const struct lb_id *id, int *delta_new)
{
	int r = 0;
	*delta_new = 0;
	pthread_rwlock_rdlock(&idx->lock);
	/* Every copy in the base is marked (a chunk is normally in one run
	 * only; after an index rebuild or a crash during a collection it can
	 * be in two). */
	for (size_t k = 0; idx->gc_active && k < idx->gc_nbase; k++) {
		const struct run *ru = &idx->runs[k];
		const uint8_t *p = run_find(ru, id);
		if (p) {
			if (!gc_set(idx, idx->gc_off[k] + (uint64_t)(p - ru->entries) / LB_INDEX_ENTRY_SIZE) &&
			    ((lb_get32(p + 32) >> 24) & 15) == LB_CODEC_ZSTD_DELTA)
				*delta_new = 1;
			r = 1;
		}
	}
	for (size_t k = idx->gc_nbase; !r && k < idx->nruns; k++) {
		const uint8_t *p = run_find(&idx->runs[k], id);
		if (p) {
			r = 2;
			/* Stored since the collection began, but possibly by a
			 * backup that chose its bases before: its chains are the
			 * caller's to mark. */
			if (((lb_get32(p + 32) >> 24) & 15) == LB_CODEC_ZSTD_DELTA)
				*delta_new = 2;
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

static int gc_pack_cmp(const void *a, const void *b)
{
	const struct lb_gc_pack *x = *(struct lb_gc_pack *const *)a, *y = *(struct lb_gc_pack *const *)b;
	return memcmp(x->id.b, y->id.b, LB_PACK_ID_LEN);
}

int lb_index_gc_freeze(struct lb_index *idx, int dry, struct lb_gc_pack **out)
{
	pthread_rwlock_wrlock(&idx->lock);
	if (!idx->gc_active) {
		pthread_rwlock_unlock(&idx->lock);
		return -EINVAL;
	}
	if (!dry)
		idx->gc_frozen = 1;
	/* From here on the marks only change for entries already marked, so
	 * the figures can be gathered under the read lock. */
	pthread_rwlock_unlock(&idx->lock);
	pthread_rwlock_rdlock(&idx->lock);
	uint32_t np = idx->gc_packs;
	struct lb_gc_pack *st = calloc(np ? np : 1, sizeof(*st));
	struct lb_gc_pack **byid = calloc(np ? np : 1, sizeof(*byid));
	if (!st || !byid) {
		pthread_rwlock_unlock(&idx->lock);
		free(st);
		free(byid);
		return -ENOMEM;
	}
	for (size_t k = 0; k < idx->gc_nbase; k++) {
		const struct run *ru = &idx->runs[k];
		struct lb_gc_pack *g0 = st + idx->gc_poff[k];
		for (uint32_t j = 0; j < ru->npacks; j++)
			memcpy(g0[j].id.b, ru->packs + (size_t)j * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
		for (uint64_t i = 0; i < ru->n; i++) {
			const uint8_t *p = ru->entries + i * LB_INDEX_ENTRY_SIZE;
			struct lb_gc_pack *g = &g0[lb_get32(p + 32) & 0xffffff];
			uint64_t bytes = LB_BLOB_HEADER_SIZE + (uint64_t)lb_get32(p + 40);
			if (gc_bit(idx->gc_mark, idx->gc_off[k] + i)) {
				g->live++;
				g->live_bytes += bytes;
			} else {
				g->dead++;
				g->dead_bytes += bytes;
			}
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	/* A pack listed by two runs (only after a crash or a rebuild) gets
	 * the figures of both in every row, and same_as names its first row,
	 * so that it is judged once, as a whole. */
	for (uint32_t g = 0; g < np; g++) {
		byid[g] = &st[g];
		st[g].same_as = g;
	}
	if (np)
		qsort(byid, np, sizeof(*byid), gc_pack_cmp);
	for (uint32_t a = 0, b; a < np; a = b) {
		for (b = a + 1; b < np && !gc_pack_cmp(&byid[a], &byid[b]); b++)
			;
		if (b - a == 1)
			continue;
		struct lb_gc_pack sum = *byid[a];
		uint32_t first = (uint32_t)(byid[a] - st);
		for (uint32_t c = a + 1; c < b; c++) {
			sum.live += byid[c]->live;
			sum.dead += byid[c]->dead;
			sum.live_bytes += byid[c]->live_bytes;
			sum.dead_bytes += byid[c]->dead_bytes;
			first = LB_MIN(first, (uint32_t)(byid[c] - st));
		}
		for (uint32_t c = a; c < b; c++) {
			*byid[c] = sum;
			byid[c]->same_as = first;
		}
	}
	free(byid);
	*out = st;
	return 0;
}

int lb_index_gc_live(struct lb_index *idx, const uint8_t *want, struct lb_gc_entry **out, size_t *n)
{
	pthread_rwlock_rdlock(&idx->lock);
	struct lb_gc_entry *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = idx->gc_active ? 0 : -EINVAL;
	for (size_t k = 0; r == 0 && k < idx->gc_nbase; k++) {
		const struct run *ru = &idx->runs[k];
		for (uint64_t i = 0; r == 0 && i < ru->n; i++) {
			const uint8_t *p = ru->entries + i * LB_INDEX_ENTRY_SIZE;
			uint32_t no = idx->gc_poff[k] + (lb_get32(p + 32) & 0xffffff);
			if (!want[no] || !gc_bit(idx->gc_mark, idx->gc_off[k] + i))
				continue;
			r = lb_grow(&v, &cap, cnt + 1, sizeof(*v));
			if (r == 0) {
				v[cnt].pack = no;
				entry_decode(ru, p, &v[cnt].pack_id, &v[cnt].e);
				cnt++;
			}
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	if (r < 0) {
		free(v);
		return r;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* A run image written to the backend piece by piece, with its crc. */
struct run_out {
	struct lb_backend *be;
	struct lb_obj_writer *w;
	uint8_t buf[1 << 16];
	size_t fill;
	uint32_t crc;
	int err;
};

static void ro_put(struct run_out *o, const void *data, size_t len)
{
	const uint8_t *p = data;
	o->crc = lb_crc32c(o->crc, p, len);
	while (len && !o->err) {
		size_t k = LB_MIN(len, sizeof(o->buf) - o->fill);
		memcpy(o->buf + o->fill, p, k);
		o->fill += k;
		p += k;
		len -= k;
		if (o->fill == sizeof(o->buf)) {
			o->err = o->be->ops->put_write(o->w, o->buf, o->fill);
			o->fill = 0;
		}
	}
}

/* What survives of the base: live entries of packs that stay. */
struct survive {
	struct lb_index *idx;
	const struct run *runs; /* copies of the base runs' descriptions */
	size_t nb;
	const uint8_t *drop;
	const uint32_t *remap; /* global pack -> number in the new run */
	uint64_t *pos;         /* per run: the next entry to look at */
};

static int sv_keeps(const struct survive *v, size_t k, uint64_t i)
{
	const uint8_t *p = v->runs[k].entries + i * LB_INDEX_ENTRY_SIZE;
	uint32_t g = v->idx->gc_poff[k] + (lb_get32(p + 32) & 0xffffff);
	return gc_bit(v->idx->gc_mark, v->idx->gc_off[k] + i) && !v->drop[g];
}

/* The next entry of the merged base in id order, one per id: of equal ids
 * the surviving copy of the newest run (the one lookups found).  Returns
 * the run and sets *at, or SIZE_MAX at the end. */
static size_t sv_next(struct survive *v, uint64_t *at)
{
	for (;;) {
		size_t best = SIZE_MAX;
		for (size_t k = 0; k < v->nb; k++) {
			if (v->pos[k] >= v->runs[k].n)
				continue;
			if (best == SIZE_MAX ||
			    memcmp(v->runs[k].entries + v->pos[k] * LB_INDEX_ENTRY_SIZE,
				   v->runs[best].entries + v->pos[best] * LB_INDEX_ENTRY_SIZE, LB_ID_LEN) < 0)
				best = k;
		}
		if (best == SIZE_MAX)
			return SIZE_MAX;
		const uint8_t *id = v->runs[best].entries + v->pos[best] * LB_INDEX_ENTRY_SIZE;
		size_t pick = SIZE_MAX;
		uint64_t pick_at = 0;
		for (size_t k = 0; k < v->nb; k++) {
			if (v->pos[k] >= v->runs[k].n)
				continue;
			const uint8_t *p = v->runs[k].entries + v->pos[k] * LB_INDEX_ENTRY_SIZE;
			if (k != best && memcmp(p, id, LB_ID_LEN) != 0)
				continue;
			if (sv_keeps(v, k, v->pos[k])) {
				pick = k;
				pick_at = v->pos[k];
			}
		}
		/* Step every run past this id (the id pointer stays valid: the
		 * runs are not changed). */
		uint8_t idc[LB_ID_LEN];
		memcpy(idc, id, LB_ID_LEN);
		for (size_t k = 0; k < v->nb; k++)
			if (v->pos[k] < v->runs[k].n &&
			    !memcmp(v->runs[k].entries + v->pos[k] * LB_INDEX_ENTRY_SIZE, idc, LB_ID_LEN))
				v->pos[k]++;
		if (pick != SIZE_MAX) {
			*at = pick_at;
			return pick;
		}
	}
}

int lb_index_gc_commit(struct lb_index *idx, const uint8_t *drop, uint64_t *entries_left)
{
	/* The base runs do not change until the filter below, and only this
	 * thread changes them, so they are read without the lock meanwhile. */
	pthread_rwlock_wrlock(&idx->lock);
	if (!idx->gc_active || !idx->gc_frozen) {
		pthread_rwlock_unlock(&idx->lock);
		return -EINVAL;
	}
	size_t nb = idx->gc_nbase;
	struct run *runs = calloc(nb + 1, sizeof(*runs));
	uint64_t *pos = calloc(nb + 1, sizeof(*pos));
	uint32_t *remap = calloc(idx->gc_packs + 1, sizeof(*remap));
	uint32_t *lnum = calloc(idx->gc_packs + 1, sizeof(*lnum)); /* within its run */
	if (!runs || !pos || !remap || !lnum) {
		pthread_rwlock_unlock(&idx->lock);
		free(runs);
		free(pos);
		free(remap);
		free(lnum);
		return -ENOMEM;
	}
	/* The base holds everything memory held when the collection began,
	 * which includes an earlier collection's merged run (held as its
	 * parts): the new run covers that too. */
	uint64_t covers = idx->covers_floor, old_floor = idx->covers_floor;
	for (size_t k = 0; k < nb; k++) {
		runs[k] = idx->runs[k];
		covers = LB_MAX(covers, runs[k].seq);
	}
	uint64_t seq = idx->next_seq++;
	pthread_rwlock_unlock(&idx->lock);

	uint32_t np = 0;
	for (uint32_t g = 0; g < idx->gc_packs; g++)
		remap[g] = drop[g] ? UINT32_MAX : np++;
	for (size_t k = 0; k < nb; k++)
		for (uint32_t j = 0, l = 0; j < runs[k].npacks; j++)
			lnum[idx->gc_poff[k] + j] = drop[idx->gc_poff[k] + j] ? UINT32_MAX : l++;
	struct survive v = { .idx = idx, .runs = runs, .nb = nb, .drop = drop, .remap = remap, .pos = pos };
	uint64_t n = 0, at;
	while (sv_next(&v, &at) != SIZE_MAX)
		n++;

	/* The merged base covers the old base runs only: runs added since
	 * stay in force beside it. */
	uint8_t hdr[LB_INDEX_HEADER_SIZE] = { 0 };
	memcpy(hdr, LB_INDEX_MAGIC, 8);
	lb_put32(hdr + 8, LB_FORMAT_VERSION);
	lb_put32(hdr + 12, np);
	lb_put64(hdr + 16, n);
	lb_put64(hdr + 24, covers);
	char name[64];
	run_name(seq, name, sizeof(name));
	struct run_out *o = calloc(1, sizeof(*o));
	int r = o ? idx->be->ops->put_begin(idx->be, name, &o->w) : -ENOMEM;
	if (r == 0) {
		o->be = idx->be;
		ro_put(o, hdr, sizeof(hdr));
		for (size_t k = 0; k < nb; k++)
			for (uint32_t j = 0; j < runs[k].npacks; j++)
				if (!drop[idx->gc_poff[k] + j])
					ro_put(o, runs[k].packs + (size_t)j * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
		memset(pos, 0, (nb + 1) * sizeof(*pos));
		size_t k;
		while ((k = sv_next(&v, &at)) != SIZE_MAX) {
			const uint8_t *p = runs[k].entries + at * LB_INDEX_ENTRY_SIZE;
			uint32_t pf = lb_get32(p + 32);
			uint8_t ent[LB_INDEX_ENTRY_SIZE];
			memcpy(ent, p, sizeof(ent));
			lb_put32(ent + 32, (pf & 0xff000000u) | remap[idx->gc_poff[k] + (pf & 0xffffff)]);
			ro_put(o, ent, sizeof(ent));
		}
		uint8_t tail[4];
		lb_put32(tail, o->crc);
		ro_put(o, tail, sizeof(tail));
		if (!o->err && o->fill)
			o->err = idx->be->ops->put_write(o->w, o->buf, o->fill);
		if (o->err) {
			idx->be->ops->put_abort(o->w);
			r = o->err;
		} else {
			r = idx->be->ops->put_commit(o->w);
		}
	}
	free(o);
	free(pos);
	free(remap);
	if (r < 0) {
		free(runs);
		free(lnum);
		return r;
	}

	/* Durable: now memory drops the same entries.  Each base run is
	 * filtered where it lies (entries only move towards the front), so no
	 * second copy of the index is ever needed; memory keeps the runs apart
	 * while the disk has them merged, with the same entries. */
	pthread_rwlock_wrlock(&idx->lock);
	uint64_t left = 0;
	for (size_t k = 0; k < nb; k++) {
		struct run *ru = &idx->runs[k];
		const uint32_t *lmap = lnum + idx->gc_poff[k];
		uint8_t *img = ru->data;
		uint32_t lnp = 0;
		for (uint32_t j = 0; j < ru->npacks; j++)
			if (lmap[j] != UINT32_MAX) {
				memmove(img + LB_INDEX_HEADER_SIZE + (size_t)lnp * LB_PACK_ID_LEN,
					ru->packs + (size_t)j * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
				lnp++;
			}
		size_t dst = LB_INDEX_HEADER_SIZE + (size_t)lnp * LB_PACK_ID_LEN;
		uint64_t kept = 0;
		for (uint64_t i = 0; i < ru->n; i++) {
			const uint8_t *p = ru->entries + i * LB_INDEX_ENTRY_SIZE;
			uint32_t pf = lb_get32(p + 32);
			if (!gc_bit(idx->gc_mark, idx->gc_off[k] + i) || lmap[pf & 0xffffff] == UINT32_MAX)
				continue;
			memmove(img + dst, p, LB_INDEX_ENTRY_SIZE);
			lb_put32(img + dst + 32, (pf & 0xff000000u) | lmap[pf & 0xffffff]);
			dst += LB_INDEX_ENTRY_SIZE;
			kept++;
		}
		lb_put32(img + 12, lnp);
		lb_put64(img + 16, kept);
		lb_put32(img + dst, lb_crc32c(0, img, dst));
		dst += 4;
		uint8_t *shrunk = realloc(img, dst);
		run_point(ru, shrunk ? shrunk : img, dst, lnp, kept);
		left += kept;
	}
	free(lnum);
	idx->covers_floor = LB_MAX(idx->covers_floor, seq);
	/* The marks describe the entries as they were: end the collection
	 * before any lookup sees the filtered runs. */
	gc_clear_locked(idx);
	pthread_rwlock_unlock(&idx->lock);
	/* The old base files are covered by the merged one: dropped at open
	 * if removing them fails here. */
	for (size_t k = 0; k < nb; k++) {
		run_name(runs[k].seq, name, sizeof(name));
		idx->be->ops->remove(idx->be, name);
	}
	if (old_floor) {
		run_name(old_floor, name, sizeof(name));
		idx->be->ops->remove(idx->be, name);
	}
	free(runs);
	if (entries_left)
		*entries_left = left;
	return 0;
}

void lb_index_gc_end(struct lb_index *idx)
{
	pthread_rwlock_wrlock(&idx->lock);
	gc_clear_locked(idx);
	pthread_rwlock_unlock(&idx->lock);
}

int lb_index_foreach_pack(struct lb_index *idx, int (*cb)(void *arg, const struct lb_pack_id *id), void *arg)
{
	int r = 0;
	pthread_rwlock_rdlock(&idx->lock);
	for (size_t i = 0; r >= 0 && i < idx->nruns; i++)
		for (uint32_t k = 0; r >= 0 && k < idx->runs[i].npacks; k++) {
			struct lb_pack_id id;
			memcpy(id.b, idx->runs[i].packs + (size_t)k * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
			r = cb(arg, &id);
		}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}
