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

int lb_index_lookup(struct lb_index *idx, const struct lb_id *id, struct lb_pack_id *pack,
		    struct lb_pack_entry *e)
{
	int found = 0;
	pthread_rwlock_rdlock(&idx->lock);
	for (size_t i = idx->nruns; i-- > 0;) {
		const uint8_t *p = run_find(&idx->runs[i], id);
		if (p) {
			entry_decode(&idx->runs[i], p, pack, e);
			found = 1;
			break;
		}
	}
	pthread_rwlock_unlock(&idx->lock);
	return found;
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
	pthread_rwlock_unlock(&idx->lock);
	if (r < 0) {
		free(data);
		return r;
	}
	if (nruns > MAX_RUNS_BEFORE_MERGE)
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

int lb_index_compact(struct lb_index *idx)
{
	pthread_rwlock_wrlock(&idx->lock);
	if (idx->nruns <= 1) {
		pthread_rwlock_unlock(&idx->lock);
		return 0;
	}
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
	uint64_t covers = idx->runs[idx->nruns - 1].seq;
	uint8_t *data = NULL;
	size_t len = 0;
	if (r == 0)
		r = write_run(idx->be, seq, covers, pm.ids, pm.n, ents, k, &data, &len);
	free(ents);
	free(pm.ids);
	if (r < 0) {
		pthread_rwlock_unlock(&idx->lock);
		return r;
	}
	struct run merged;
	r = run_load(seq, data, len, &merged);
	if (r < 0) {
		free(data);
		pthread_rwlock_unlock(&idx->lock);
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
	pthread_rwlock_unlock(&idx->lock);
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
