/* index.c - sorted index runs; see index.h and format.h. */
#include "config.h"

#include "index.h"
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
	/* A garbage collection in progress (see index.h): its base run is
	 * runs[0], whose seq is gc_seq (0: none).  gc_mark holds a bit per base
	 * entry, set when the entry is found live; once gc_frozen, unmarked
	 * base entries are invisible.  No merge runs meanwhile. */
	uint64_t gc_seq;
	uint8_t *gc_mark;
	int gc_frozen;
};

static void run_name(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "index/%016llx", (unsigned long long)seq);
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
	e->nbases = 0;
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
	r->data = data;
	r->len = len;
	r->npacks = npacks;
	r->packs = data + LB_INDEX_HEADER_SIZE;
	r->entries = r->packs + (size_t)npacks * LB_PACK_ID_LEN;
	r->n = n;
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
	if (!idx->gc_seq || ru->seq != idx->gc_seq)
		return 0;
	uint64_t i = (uint64_t)(p - ru->entries) / LB_INDEX_ENTRY_SIZE;
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
	lb_put32(b->raw + 40, e->stored);
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
	int gc = idx->gc_seq != 0;
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
	int r = idx->gc_seq ? 0 : compact_locked(idx);
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
	/* The newest run is not always the last one (a collection's result
	 * keeps the first place), so covers is the highest seq merged. */
	uint64_t covers = 0;
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

int lb_index_gc_begin(struct lb_index *idx, uint64_t *entries, uint32_t *packs)
{
	pthread_rwlock_wrlock(&idx->lock);
	int r = idx->gc_seq ? -EBUSY : compact_locked(idx);
	if (r == 0 && idx->nruns == 0) {
		/* Nothing indexed yet: an empty base run gives the collection
		 * something to hold. */
		uint64_t seq = idx->next_seq++;
		uint8_t *data;
		size_t len;
		r = write_run(idx->be, seq, 0, NULL, 0, NULL, 0, &data, &len);
		if (r == 0 && (r = add_run_locked(idx, seq, data, len)) < 0)
			free(data);
	}
	if (r == 0) {
		struct run *base = &idx->runs[0];
		idx->gc_mark = calloc(base->n / 8 + 1, 1);
		if (!idx->gc_mark)
			r = -ENOMEM;
		else {
			idx->gc_seq = base->seq;
			idx->gc_frozen = 0;
			*entries = base->n;
			*packs = base->npacks;
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

/* The base run (called with the lock held). */
static struct run *gc_base(struct lb_index *idx)
{
	return idx->gc_seq && idx->nruns && idx->runs[0].seq == idx->gc_seq ? &idx->runs[0] : NULL;
}

int lb_index_gc_mark(struct lb_index *idx, const struct lb_id *id)
{
	int r = 0;
	pthread_rwlock_rdlock(&idx->lock);
	struct run *base = gc_base(idx);
	const uint8_t *p = base ? run_find(base, id) : NULL;
	if (p) {
		uint64_t i = (uint64_t)(p - base->entries) / LB_INDEX_ENTRY_SIZE;
		__atomic_fetch_or(&idx->gc_mark[i >> 3], (uint8_t)(1u << (i & 7)), __ATOMIC_RELAXED);
		r = 1;
	} else {
		for (size_t k = 0; k < idx->nruns && !r; k++)
			if (&idx->runs[k] != base && run_find(&idx->runs[k], id))
				r = 2;
	}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

int lb_index_gc_freeze(struct lb_index *idx, int dry, struct lb_gc_pack **out)
{
	pthread_rwlock_wrlock(&idx->lock);
	struct run *base = gc_base(idx);
	if (!base) {
		pthread_rwlock_unlock(&idx->lock);
		return -EINVAL;
	}
	if (!dry)
		idx->gc_frozen = 1;
	/* From here on the marks only change for entries already marked, so
	 * the figures can be gathered under the read lock. */
	pthread_rwlock_unlock(&idx->lock);
	pthread_rwlock_rdlock(&idx->lock);
	base = gc_base(idx);
	struct lb_gc_pack *st = calloc(base->npacks ? base->npacks : 1, sizeof(*st));
	if (!st) {
		pthread_rwlock_unlock(&idx->lock);
		return -ENOMEM;
	}
	for (uint32_t k = 0; k < base->npacks; k++)
		memcpy(st[k].id.b, base->packs + (size_t)k * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
	for (uint64_t i = 0; i < base->n; i++) {
		const uint8_t *p = base->entries + i * LB_INDEX_ENTRY_SIZE;
		uint32_t pf = lb_get32(p + 32);
		struct lb_gc_pack *g = &st[pf & 0xffffff];
		uint64_t bytes = LB_BLOB_HEADER_SIZE + (uint64_t)lb_get32(p + 40);
		if (gc_bit(idx->gc_mark, i)) {
			g->live++;
			g->live_bytes += bytes;
		} else {
			g->dead++;
			g->dead_bytes += bytes;
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	*out = st;
	return 0;
}

int lb_index_gc_live(struct lb_index *idx, const uint8_t *want, struct lb_gc_entry **out, size_t *n)
{
	pthread_rwlock_rdlock(&idx->lock);
	struct run *base = gc_base(idx);
	struct lb_gc_entry *v = NULL;
	size_t cnt = 0, cap = 0;
	int r = base ? 0 : -EINVAL;
	for (uint64_t i = 0; r == 0 && i < base->n; i++) {
		const uint8_t *p = base->entries + i * LB_INDEX_ENTRY_SIZE;
		uint32_t no = lb_get32(p + 32) & 0xffffff;
		if (!want[no] || !gc_bit(idx->gc_mark, i))
			continue;
		r = lb_grow(&v, &cap, cnt + 1, sizeof(*v));
		if (r == 0) {
			v[cnt].pack = no;
			entry_decode(base, p, &v[cnt].pack_id, &v[cnt].e);
			cnt++;
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
	struct lb_obj_writer *w;
	uint8_t buf[1 << 16];
	size_t fill;
	uint32_t crc;
	int err;
};

static void ro_put(struct lb_backend *be, struct run_out *o, const void *data, size_t len)
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
			o->err = be->ops->put_write(o->w, o->buf, o->fill);
			o->fill = 0;
		}
	}
}

int lb_index_gc_commit(struct lb_index *idx, const uint8_t *drop, uint64_t *entries_left)
{
	/* The base's image does not change until the swap below, and only
	 * this thread swaps it, so it is read without the lock. */
	pthread_rwlock_wrlock(&idx->lock);
	struct run *bp = gc_base(idx);
	if (!bp || !idx->gc_frozen) {
		pthread_rwlock_unlock(&idx->lock);
		return -EINVAL;
	}
	struct run base = *bp;
	uint64_t seq = idx->next_seq++;
	pthread_rwlock_unlock(&idx->lock);

	uint32_t *remap = lb_mallocarray(base.npacks ? base.npacks : 1, sizeof(uint32_t));
	if (!remap)
		return -ENOMEM;
	uint32_t np = 0;
	for (uint32_t k = 0; k < base.npacks; k++)
		remap[k] = drop[k] ? UINT32_MAX : np++;
	uint64_t n = 0;
	for (uint64_t i = 0; i < base.n; i++)
		n += gc_bit(idx->gc_mark, i) && !drop[lb_get32(base.entries + i * LB_INDEX_ENTRY_SIZE + 32) & 0xffffff];

	/* The new base covers the old one only: runs added since stay. */
	uint8_t hdr[LB_INDEX_HEADER_SIZE] = { 0 };
	memcpy(hdr, LB_INDEX_MAGIC, 8);
	lb_put32(hdr + 8, LB_FORMAT_VERSION);
	lb_put32(hdr + 12, np);
	lb_put64(hdr + 16, n);
	lb_put64(hdr + 24, base.seq);
	char name[64];
	run_name(seq, name, sizeof(name));
	struct run_out *o = calloc(1, sizeof(*o));
	int r = o ? idx->be->ops->put_begin(idx->be, name, &o->w) : -ENOMEM;
	if (r == 0) {
		ro_put(idx->be, o, hdr, sizeof(hdr));
		for (uint32_t k = 0; k < base.npacks; k++)
			if (!drop[k])
				ro_put(idx->be, o, base.packs + (size_t)k * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
		for (uint64_t i = 0; i < base.n; i++) {
			const uint8_t *p = base.entries + i * LB_INDEX_ENTRY_SIZE;
			uint32_t pf = lb_get32(p + 32);
			if (!gc_bit(idx->gc_mark, i) || drop[pf & 0xffffff])
				continue;
			uint8_t ent[LB_INDEX_ENTRY_SIZE];
			memcpy(ent, p, sizeof(ent));
			lb_put32(ent + 32, (pf & 0xff000000u) | remap[pf & 0xffffff]);
			ro_put(idx->be, o, ent, sizeof(ent));
		}
		uint8_t tail[4];
		lb_put32(tail, o->crc);
		ro_put(idx->be, o, tail, sizeof(tail));
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
	if (r < 0) {
		free(remap);
		return r;
	}

	/* Durable: now make memory match it.  The kept entries move towards
	 * the front of the same buffer (never past their old place), so no
	 * second copy of the index is needed. */
	pthread_rwlock_wrlock(&idx->lock);
	bp = gc_base(idx);
	uint8_t *img = bp->data;
	size_t at = LB_INDEX_HEADER_SIZE;
	memcpy(img, hdr, sizeof(hdr));
	for (uint32_t k = 0; k < bp->npacks; k++)
		if (!drop[k]) {
			memmove(img + at, bp->packs + (size_t)k * LB_PACK_ID_LEN, LB_PACK_ID_LEN);
			at += LB_PACK_ID_LEN;
		}
	for (uint64_t i = 0; i < bp->n; i++) {
		const uint8_t *p = bp->entries + i * LB_INDEX_ENTRY_SIZE;
		uint32_t pf = lb_get32(p + 32);
		if (!gc_bit(idx->gc_mark, i) || drop[pf & 0xffffff])
			continue;
		memmove(img + at, p, LB_INDEX_ENTRY_SIZE);
		lb_put32(img + at + 32, (pf & 0xff000000u) | remap[pf & 0xffffff]);
		at += LB_INDEX_ENTRY_SIZE;
	}
	lb_put32(img + at, lb_crc32c(0, img, at));
	at += 4;
	uint8_t *shrunk = realloc(img, at);
	img = shrunk ? shrunk : img;
	bp->seq = seq;
	bp->covers = base.seq;
	bp->data = img;
	bp->len = at;
	bp->npacks = np;
	bp->packs = img + LB_INDEX_HEADER_SIZE;
	bp->entries = bp->packs + (size_t)np * LB_PACK_ID_LEN;
	bp->n = n;
	free(idx->gc_mark);
	idx->gc_mark = NULL;
	idx->gc_seq = 0;
	idx->gc_frozen = 0;
	pthread_rwlock_unlock(&idx->lock);
	free(remap);
	run_name(base.seq, name, sizeof(name));
	idx->be->ops->remove(idx->be, name); /* superseded: dropped on open if this fails */
	if (entries_left)
		*entries_left = n;
	return 0;
}

void lb_index_gc_end(struct lb_index *idx)
{
	pthread_rwlock_wrlock(&idx->lock);
	free(idx->gc_mark);
	idx->gc_mark = NULL;
	idx->gc_seq = 0;
	idx->gc_frozen = 0;
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
