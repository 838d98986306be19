/* usage.c - per-tenant charging; see usage.h. */
#include "usage.h"
#include "codec.h"
#include "store_internal.h"
#include "buf.h"
#include "format.h"
#include "idset.h"
#include "index.h"
#include "manifest.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

struct ref {
	struct lb_id id;
	uint32_t count; /* snapshots of this tenant using the blob; 0 = free slot */
	uint32_t stored;
	uint32_t raw;
};

struct tenant {
	char *name;
	struct ref *slots;
	size_t cap, n; /* cap is a power of two */
	struct lb_tenant_usage u;
};

struct lb_usage {
	struct tenant *t;
	size_t n, cap;
	const char **names;
};

uint64_t lb_usage_blob_bytes(uint32_t stored) { return LB_BLOB_HEADER_SIZE + (uint64_t)stored; }

struct lb_usage *lb_usage_new(void) { return calloc(1, sizeof(struct lb_usage)); }

void lb_usage_free(struct lb_usage *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++) {
		free(u->t[i].name);
		free(u->t[i].slots);
	}
	free(u->t);
	free(u->names);
	free(u);
}

static struct tenant *find(const struct lb_usage *u, const char *name)
{
	for (size_t i = 0; i < u->n; i++)
		if (!strcmp(u->t[i].name, name))
			return &u->t[i];
	return NULL;
}

static struct tenant *get(struct lb_usage *u, const char *name)
{
	struct tenant *t = find(u, name);
	if (t)
		return t;
	if (lb_grow(&u->t, &u->cap, u->n + 1, sizeof(*u->t)) < 0)
		return NULL;
	t = &u->t[u->n];
	memset(t, 0, sizeof(*t));
	t->name = strdup(name);
	if (!t->name)
		return NULL;
	u->n++;
	return t;
}

static size_t slot_of(const struct lb_id *id, size_t cap)
{
	uint64_t h;
	memcpy(&h, id->b + 8, sizeof(h));
	return (size_t)h & (cap - 1);
}

static struct ref *lookup(const struct tenant *t, const struct lb_id *id)
{
	if (!t || !t->cap)
		return NULL;
	for (size_t j = slot_of(id, t->cap); t->slots[j].count; j = (j + 1) & (t->cap - 1))
		if (!lb_id_cmp(&t->slots[j].id, id))
			return &t->slots[j];
	return NULL;
}

static int grow(struct tenant *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	struct ref *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->slots[i].count)
			continue;
		size_t j = slot_of(&t->slots[i].id, ncap);
		while (ns[j].count)
			j = (j + 1) & (ncap - 1);
		ns[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

/* Removes slot j by backward-shift deletion (keeps probe chains intact). */
static void delete_slot(struct tenant *t, size_t j)
{
	size_t mask = t->cap - 1;
	t->slots[j].count = 0;
	for (size_t k = (j + 1) & mask; t->slots[k].count; k = (k + 1) & mask) {
		size_t home = slot_of(&t->slots[k].id, t->cap);
		/* Move k into the hole j if its home does not lie in (j, k]. */
		if (((k - home) & mask) >= ((k - j) & mask)) {
			t->slots[j] = t->slots[k];
			t->slots[k].count = 0;
			j = k;
		}
	}
}

static int ref_add(struct tenant *t, const struct lb_id *id, uint32_t stored, uint32_t raw)
{
	struct ref *r = lookup(t, id);
	if (r) {
		r->count++;
		return 0;
	}
	if ((t->n + 1) * 4 > t->cap * 3) {
		int e = grow(t);
		if (e < 0)
			return e;
	}
	size_t j = slot_of(id, t->cap);
	while (t->slots[j].count)
		j = (j + 1) & (t->cap - 1);
	t->slots[j] = (struct ref){ .id = *id, .count = 1, .stored = stored, .raw = raw };
	t->n++;
	t->u.blobs++;
	t->u.raw += raw;
	t->u.charged += lb_usage_blob_bytes(stored);
	return 0;
}

static void ref_drop(struct tenant *t, const struct lb_id *id)
{
	struct ref *r = lookup(t, id);
	if (!r)
		return;
	if (--r->count == 0) {
		t->u.blobs--;
		t->u.raw -= r->raw;
		t->u.charged -= lb_usage_blob_bytes(r->stored);
		t->n--;
		r->count = 1; /* delete_slot clears it */
		delete_slot(t, (size_t)(r - t->slots));
	}
}

static uint64_t head_bytes(const struct lb_snapshot *snap)
{
	struct lb_snapshot copy = *snap;
	struct lb_buf b;
	lb_buf_init(&b);
	uint64_t n = lb_snapshot_encode(&copy, &b) == 0 ? b.len : 0;
	lb_buf_free(&b);
	return n;
}

/* Collects the distinct blobs (tree and data) of a snapshot with their
 * stored sizes, and calls fn for each. */
struct closure_walk {
	struct lb_store *s;
	struct lb_idset *seen;
	int (*fn)(void *arg, const struct lb_id *id, uint32_t stored, uint32_t raw);
	void *arg;
};

static int closure_cb(void *arg, const struct lb_id *id)
{
	struct closure_walk *w = arg;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	int added = lb_idset_add(w->seen, id);
	if (added <= 0)
		return added;
	if (!lb_index_lookup(lb_store_index(w->s), id, &pid, &pe))
		return 0;
	return w->fn(w->arg, id, pe.stored, pe.raw);
}

static int each_blob(struct lb_store *s, const struct lb_snapshot *snap,
		     int (*fn)(void *arg, const struct lb_id *id, uint32_t stored, uint32_t raw), void *arg)
{
	struct lb_idset *seen = lb_idset_new();
	if (!seen)
		return -ENOMEM;
	struct lb_index *idx = lb_store_index(s);
	int r = 0;
	for (size_t i = 0; r == 0 && i < snap->ntree; i++) {
		struct lb_pack_id pid;
		struct lb_pack_entry pe;
		if (lb_idset_add(seen, &snap->tree[i].id) == 1 && lb_index_lookup(idx, &snap->tree[i].id, &pid, &pe))
			r = fn(arg, &snap->tree[i].id, pe.stored, pe.raw);
	}
	struct lb_mreader *mr = lb_store_tree_reader(s, snap);
	if (!mr)
		r = -ENOMEM;
	struct lb_entry e;
	int rr = 0;
	while (r == 0 && (rr = lb_mreader_next(mr, &e)) == 1) {
		for (size_t k = 0; r == 0 && k < e.nchunks; k++) {
			int added = lb_idset_add(seen, &e.chunks[k].id);
			struct lb_pack_id pid;
			struct lb_pack_entry pe;
			if (added < 0)
				r = added;
			else if (added && lb_index_lookup(idx, &e.chunks[k].id, &pid, &pe)) {
				r = fn(arg, &e.chunks[k].id, pe.stored, pe.raw);
				/* A delta needs its bases: the tenant is charged for
				 * them too (once per snapshot, like every blob).  A
				 * link that cannot be read is damage for check to
				 * report; the charge then leaves that base out. */
				if (r == 0 && pe.codec == LB_CODEC_ZSTD_DELTA) {
					struct closure_walk w = { s, seen, fn, arg };
					r = lb_store_closure(s, &e.chunks[k].id, closure_cb, &w);
					if (r == -EBADMSG)
						r = 0;
				}
			}
		}
		lb_entry_clear(&e);
	}
	lb_mreader_free(mr);
	lb_idset_free(seen);
	return r < 0 ? r : (rr < 0 ? rr : 0);
}

static int add_cb(void *arg, const struct lb_id *id, uint32_t stored, uint32_t raw)
{
	return ref_add(arg, id, stored, raw);
}

static int drop_cb(void *arg, const struct lb_id *id, uint32_t stored, uint32_t raw)
{
	(void)stored;
	(void)raw;
	ref_drop(arg, id);
	return 0;
}

int lb_usage_add(struct lb_usage *u, struct lb_store *s, const struct lb_snapshot *snap)
{
	struct tenant *t = get(u, snap->tenant);
	if (!t)
		return -ENOMEM;
	int r = each_blob(s, snap, add_cb, t);
	if (r < 0)
		return r;
	t->u.snapshots++;
	t->u.logical += snap->logical;
	t->u.charged += head_bytes(snap);
	return 0;
}

int lb_usage_remove(struct lb_usage *u, struct lb_store *s, const struct lb_snapshot *snap)
{
	struct tenant *t = find(u, snap->tenant);
	if (!t)
		return 0;
	int r = each_blob(s, snap, drop_cb, t);
	if (r < 0)
		return r;
	t->u.snapshots--;
	t->u.logical -= snap->logical;
	t->u.charged -= head_bytes(snap);
	return 0;
}

void lb_usage_get(const struct lb_usage *u, const char *tenant, struct lb_tenant_usage *out)
{
	const struct tenant *t = find(u, tenant);
	if (t)
		*out = t->u;
	else
		memset(out, 0, sizeof(*out));
}

int lb_usage_holds(const struct lb_usage *u, const char *tenant, const struct lb_id *id)
{
	return lookup(find(u, tenant), id) != NULL;
}

uint64_t lb_usage_exclusive(const struct lb_usage *u, const char *tenant)
{
	const struct tenant *t = find(u, tenant);
	uint64_t sum = 0;
	for (size_t i = 0; t && i < t->cap; i++) {
		if (!t->slots[i].count)
			continue;
		int shared = 0;
		for (size_t k = 0; !shared && k < u->n; k++)
			if (&u->t[k] != t && lookup(&u->t[k], &t->slots[i].id))
				shared = 1;
		if (!shared)
			sum += lb_usage_blob_bytes(t->slots[i].stored);
	}
	return sum;
}

size_t lb_usage_tenants(const struct lb_usage *u, const char ***names)
{
	struct lb_usage *m = (struct lb_usage *)u;
	const char **nn = lb_reallocarray(m->names, u->n ? u->n : 1, sizeof(char *));
	if (!nn)
		return 0;
	m->names = nn;
	for (size_t i = 0; i < u->n; i++)
		nn[i] = u->t[i].name;
	*names = nn;
	return u->n;
}

int lb_usage_equal(const struct lb_usage *a, const struct lb_usage *b, const char **tenant)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct lb_usage *x = pass ? b : a, *y = pass ? a : b;
		for (size_t i = 0; i < x->n; i++) {
			struct lb_tenant_usage ux = x->t[i].u, uy;
			lb_usage_get(y, x->t[i].name, &uy);
			if (ux.charged != uy.charged || ux.blobs != uy.blobs || ux.snapshots != uy.snapshots) {
				*tenant = x->t[i].name;
				return 0;
			}
		}
	}
	return 1;
}

int lb_usage_breakdown(const struct lb_usage *u, uint64_t *referenced, uint64_t *exclusive, uint64_t *fair)
{
	/* How many tenants use each blob: a table of the union, where count
	 * holds the number of tenants instead of snapshots. */
	struct tenant all = { 0 };
	int r = 0;
	for (size_t i = 0; r == 0 && i < u->n; i++) {
		const struct tenant *t = &u->t[i];
		for (size_t k = 0; r == 0 && k < t->cap; k++)
			if (t->slots[k].count)
				r = ref_add(&all, &t->slots[k].id, t->slots[k].stored, t->slots[k].raw);
	}
	if (r == 0) {
		*referenced = all.u.charged;
		for (size_t i = 0; i < u->n; i++) {
			const struct tenant *t = &u->t[i];
			uint64_t ex = 0;
			double fs = 0;
			for (size_t k = 0; k < t->cap; k++) {
				if (!t->slots[k].count)
					continue;
				const struct ref *g = lookup(&all, &t->slots[k].id);
				uint64_t bytes = lb_usage_blob_bytes(t->slots[k].stored);
				if (g && g->count == 1)
					ex += bytes;
				fs += (double)bytes / (double)(g ? g->count : 1);
			}
			exclusive[i] = ex;
			fair[i] = (uint64_t)(fs + 0.5);
		}
	}
	free(all.slots);
	return r;
}
