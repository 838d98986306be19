/* delta.c - delta chunks: rebuilding a chunk from its bases, and the cache
 * of rebuilt bases.
 *
 * A delta blob (codec 2) is a zstd frame made against the plaintexts of its
 * base chunks, named in order in the blob header (doc/FORMAT.md 6.1).  A
 * base may itself be a delta.  Reading a chunk rebuilds its bases first;
 * every base is checked against its id before it is used, and kept in a
 * small cache, because the chunks of one file share most of their bases
 * (chunk i and chunk i+1 of tonight's dump both start from last night's
 * chunks around the same place).
 *
 * Alongside its plaintext, a cached base keeps its closure: the distinct
 * chunks that rebuilding it decodes, itself excluded.  A backup uses it to
 * keep chains within the store's cap (lb_store_delta_cost). */
#include "config.h"

#include "cdc.h"
#include "codec.h"
#include "index.h"
#include "pool.h"
#include "store_internal.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Deeper than any chain a writer makes (the cap bounds it far below); a
 * store claiming more is damaged, or loops. */
#define MAX_DEPTH 256

struct bc_entry {
	struct lb_id id;
	uint8_t *data;
	uint32_t size, cap;
	struct lb_id *cl; /* closure, sorted, itself excluded */
	struct lb_pack_id pack; /* the blob it was rebuilt from: a chunk */
	uint32_t offset;        /* collected and stored again may differ */
	uint32_t ncl;
	uint64_t prov; /* provenance (prov_blob): what it was decoded from */
	int ready;    /* else being rebuilt by its owner */
	_Atomic int verified; /* checked against its id (else only rebuilt); read unlocked */
	int unlinked; /* found bad: out of the table, freed at its last release */
	int refs;
	uint64_t tick; /* last use */
	struct bc_entry *next;
};

#define BC_BUCKETS 1024
#define LINK_SLOTS 4096

/* What one chunk's blob says about its chain (a small cache: consecutive
 * chunks of a file look at overlapping neighbours). */
struct link {
	struct lb_id id;
	struct lb_pack_id pack; /* the blob it was read from */
	uint32_t offset;
	int valid;
	uint32_t raw;
	uint32_t version;
	uint32_t skip, len;
	unsigned nbases;
	struct lb_id bases[LB_BLOB_MAX_BASES];
	uint64_t vprov; /* a base of this provenance passed base_verify; 0: none */
};



/* The cache's size counts every buffer it owns: those of rebuilt bases,
 * pinned or not, and of bases being rebuilt.  A new base takes the buffer
 * of the least recently used one when the cache is full, resized in place
 * (realloc of a mapped block is an mremap: only the pages it grows by are
 * new), rather than a fresh one: lumbungd maps every block of 256 KiB and
 * more on its own, and faulting a fresh buffer's pages in costs more than
 * decoding into them.  Buffers are rounded up to BC_ROUND.  Only the bases
 * pinned at once (a backup's encoders and the chains under their bases)
 * can push it past its size, and the next release evicts back down. */
#define BC_ROUND (64u << 10)

struct lb_bcache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct bc_entry *tab[BC_BUCKETS];
	uint64_t bytes, cap, tick; /* bytes: the buffers of the entries in tab */
	uint64_t full;             /* cap when no backup runs */
	uint64_t hits, misses;
	uint64_t checked, trusted; /* bases hashed by base_verify, and taken on their provenance */
	pthread_mutex_t link_mu;
	struct link *links; /* LINK_SLOTS, direct-mapped */
};

/* Where a thread lays bases end to end for zstd (reused, and kept across
 * threads: allocating a few MiB per chunk cost more than the decoding, in
 * page faults). */
static struct lb_thread_buf prefix_tb = LB_THREAD_BUF_INIT;
static _Thread_local uint8_t *tl_prefix; /* while in use */

/* The thread's prefix buffer, or (when a nested rebuild already uses it) a
 * new one; release with prefix_put. */
static uint8_t *prefix_get(size_t n)
{
	if (tl_prefix)
		return malloc(n ? n : 1);
	tl_prefix = lb_thread_buf(&prefix_tb, n);
	return tl_prefix;
}

static void prefix_put(uint8_t *p)
{
	if (p == tl_prefix)
		tl_prefix = NULL;
	else
		free(p);
}

/* Bases this thread is rebuilding into the cache right now: while it holds
 * any, it never waits for another thread's, so no two threads can wait on
 * each other. */
static _Thread_local int tl_loading;

struct lb_bcache *lb_bcache_new(uint64_t cap)
{
	struct lb_bcache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_mutex_init(&c->link_mu, NULL);
	c->links = calloc(LINK_SLOTS, sizeof(*c->links));
	c->cap = c->full = cap;
	return c;
}

static void entry_free(struct bc_entry *e)
{
	free(e->data);
	free(e->cl);
	free(e);
}

static void evict_locked(struct lb_bcache *c, uint64_t need, uint8_t **keep);

/* A buffer of at least n bytes for a base; *cap gets its size.  When
 * charged, it counts in the cache's size (an entry in the table): the
 * least recently used bases make room, and the first one's buffer is
 * reused. */
static uint8_t *buf_alloc(struct lb_bcache *c, uint32_t n, uint32_t *cap, int charged)
{
	/* n is at most LB_CDC_MAX_MAX: checked by the callers. */
	uint64_t c64 = ((uint64_t)n + BC_ROUND - 1) & ~(uint64_t)(BC_ROUND - 1);
	if (c64 == 0 || c64 > UINT32_MAX)
		return NULL;
	uint8_t *reuse = NULL;
	if (charged) {
		pthread_mutex_lock(&c->mu);
		evict_locked(c, c64, &reuse);
		c->bytes += c64;
		pthread_mutex_unlock(&c->mu);
	}
	uint8_t *p = reuse ? realloc(reuse, c64) : malloc(c64);
	if (!p) {
		free(reuse);
		if (charged) {
			pthread_mutex_lock(&c->mu);
			c->bytes -= c64;
			pthread_mutex_unlock(&c->mu);
		}
		return NULL;
	}
	*cap = (uint32_t)c64;
	return p;
}

void lb_bcache_free(struct lb_bcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < BC_BUCKETS; i++) {
		struct bc_entry *e = c->tab[i], *n;
		for (; e; e = n) {
			n = e->next;
			entry_free(e);
		}
	}
	free(c->links);
	pthread_mutex_destroy(&c->link_mu);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

uint64_t lb_bcache_held(struct lb_bcache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->bytes;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void lb_bcache_trim(struct lb_bcache *c)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < BC_BUCKETS; i++) {
		struct bc_entry **p = &c->tab[i];
		while (*p) {
			struct bc_entry *e = *p;
			if (e->ready && e->refs == 0) {
				*p = e->next;
				c->bytes -= e->cap;
				entry_free(e);
			} else {
				p = &e->next;
			}
		}
	}
	pthread_mutex_unlock(&c->mu);
}

void lb_bcache_backups(struct lb_bcache *c, int running)
{
	pthread_mutex_lock(&c->mu);
	c->cap = running ? LB_BCACHE_BACKUP_PART(c->full) : c->full;
	evict_locked(c, 0, NULL);
	pthread_mutex_unlock(&c->mu);
}

int lb_bcache_consistent(struct lb_bcache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t sum = 0;
	int building = 0;
	for (size_t i = 0; i < BC_BUCKETS; i++)
		for (struct bc_entry *e = c->tab[i]; e; e = e->next) {
			sum += e->cap;
			building |= !e->ready;
		}
	int ok = building || sum == c->bytes;
	pthread_mutex_unlock(&c->mu);
	return ok;
}

uint64_t lb_bcache_cap(struct lb_bcache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->cap;
	pthread_mutex_unlock(&c->mu);
	return n;
}

void lb_bcache_verify_stats(struct lb_bcache *c, uint64_t *checked, uint64_t *trusted)
{
	pthread_mutex_lock(&c->mu);
	*checked = c->checked;
	*trusted = c->trusted;
	pthread_mutex_unlock(&c->mu);
}

void lb_bcache_stats(struct lb_bcache *c, uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock(&c->mu);
	*hits = c->hits;
	*misses = c->misses;
	pthread_mutex_unlock(&c->mu);
}

static struct bc_entry **slot(struct lb_bcache *c, const struct lb_id *id)
{
	uint32_t h;
	memcpy(&h, id->b, sizeof(h));
	struct bc_entry **p = &c->tab[h % BC_BUCKETS];
	while (*p && lb_id_cmp(&(*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

static void unlink_entry(struct lb_bcache *c, struct bc_entry *e)
{
	struct bc_entry **p = slot(c, &e->id);
	if (*p == e)
		*p = e->next;
}

/* The least recently used base no reader holds, or NULL (mu held). */
static struct bc_entry *lru_victim(struct lb_bcache *c)
{
	struct bc_entry *victim = NULL;
	for (size_t i = 0; i < BC_BUCKETS; i++)
		for (struct bc_entry *e = c->tab[i]; e; e = e->next)
			if (e->ready && e->refs == 0 && (!victim || e->tick < victim->tick))
				victim = e;
	return victim;
}

/* Drops the least recently used unpinned entries until need more bytes
 * fit in the cache (mu held).  With keep, the first one's buffer goes
 * there instead of being freed. */
static void evict_locked(struct lb_bcache *c, uint64_t need, uint8_t **keep)
{
	struct bc_entry *victim;
	while (c->bytes + need > c->cap && (victim = lru_victim(c))) {
		unlink_entry(c, victim);
		c->bytes -= victim->cap;
		if (keep && !*keep) {
			*keep = victim->data;
			victim->data = NULL;
		}
		entry_free(victim);
	}
}

/* ---- closures ---------------------------------------------------------------- */

struct idvec {
	struct lb_id *v;
	size_t n, cap;
};

static int idvec_push(struct idvec *x, const struct lb_id *id)
{
	if (lb_grow(&x->v, &x->cap, x->n + 1, sizeof(*x->v)) < 0)
		return -ENOMEM;
	x->v[x->n++] = *id;
	return 0;
}

static int id_cmp(const void *a, const void *b) { return lb_id_cmp(a, b); }

static void idvec_unique(struct idvec *x)
{
	if (x->n < 2)
		return;
	qsort(x->v, x->n, sizeof(*x->v), id_cmp);
	size_t k = 1;
	for (size_t i = 1; i < x->n; i++)
		if (lb_id_cmp(&x->v[i], &x->v[k - 1]) != 0)
			x->v[k++] = x->v[i];
	x->n = k;
}

/* ---- rebuilding ------------------------------------------------------------------ */

static int rebuild(struct lb_store *s, const struct lb_id *id, uint8_t *dst, uint32_t size, int depth,
		   struct idvec *closure, uint64_t *prov, int *checked);

/* ---- provenance --------------------------------------------------------------------
 *
 * Before a backup makes a delta against a base it checks the base against
 * its id (base_verify): a base decoded wrong would make a delta that only
 * that wrong base decodes.  A base rebuilt through a frame that carries a
 * checksum was checked by it (codec.h) and needs nothing more; the rest
 * of this is for stores written before frames carried checksums.
 * Hashing every base each time it is rebuilt
 * was an eighth of a nightly backup's CPU, and most are the same chunks,
 * from the same blobs, as the night before (bench/RESULTS.md).  A rebuilt
 * chunk's provenance is a digest of the blob it was decoded from (pack and
 * offset) and, for a delta, of its bases' provenances in order.  Every
 * blob is CRC-checked as it is read and decoding is deterministic, so two
 * rebuilds of the same provenance are the same bytes: once a base of some
 * provenance passed the check, a base rebuilt with that provenance is
 * taken as checked.  A chunk stored again elsewhere (a collection moved
 * it, or a base of it) has another provenance and is hashed again.  The
 * provenances that passed are kept in the link cache's slots, so they
 * last as long as the daemon, within its size. */

static uint64_t prov_mix(uint64_t h, uint64_t v)
{
	uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t prov_blob(const struct lb_pack_id *pid, uint32_t offset)
{
	uint64_t a, b;
	memcpy(&a, pid->b, sizeof(a));
	memcpy(&b, pid->b + sizeof(a), sizeof(b));
	uint64_t h = prov_mix(prov_mix(prov_mix(0, a), b), offset);
	return h ? h : 1; /* 0 means none */
}

static struct link *link_slot(struct lb_bcache *c, const struct lb_id *id)
{
	uint32_t h;
	memcpy(&h, id->b + 4, sizeof(h));
	return c->links ? &c->links[h % LINK_SLOTS] : NULL;
}

/* 1 when a base of this id and provenance passed base_verify before (a
 * provenance of 0, which a mix can give, never counts: it marks a slot
 * nothing passed in). */
static int prov_checked(struct lb_bcache *c, const struct lb_id *id, uint64_t prov)
{
	pthread_mutex_lock(&c->link_mu);
	struct link *l = link_slot(c, id);
	int ok = l && l->valid && prov && l->vprov == prov && lb_id_cmp(&l->id, id) == 0;
	pthread_mutex_unlock(&c->link_mu);
	return ok;
}

static void prov_passed(struct lb_bcache *c, const struct lb_id *id, uint64_t prov)
{
	pthread_mutex_lock(&c->link_mu);
	struct link *l = link_slot(c, id);
	if (l && l->valid && lb_id_cmp(&l->id, id) == 0)
		l->vprov = prov;
	pthread_mutex_unlock(&c->link_mu);
}

/* A base's plaintext, pinned in the cache (or private when another thread
 * is rebuilding it and this one may not wait). */
struct base_ref {
	struct bc_entry *e;
	int private_copy;
};

static void base_release(struct lb_store *s, struct base_ref *r)
{
	if (!r->e)
		return;
	if (r->private_copy) {
		entry_free(r->e);
	} else {
		struct lb_bcache *c = s->bcache;
		pthread_mutex_lock(&c->mu);
		if (--r->e->refs == 0 && r->e->unlinked)
			entry_free(r->e);
		evict_locked(c, 0, NULL);
		pthread_mutex_unlock(&c->mu);
	}
	r->e = NULL;
}

/* Rebuilds a base into e (data, size, closure).  It is not checked
 * against its id here: a reader checks the chunk it rebuilds on top of it,
 * which a wrong base cannot pass, and a writer checks each base it makes a
 * delta against (base_verify) once. */
static int base_build(struct lb_store *s, struct bc_entry *e, int depth, int charged)
{
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	char hex[LB_ID_HEX];
	if (!lb_index_lookup(s->idx, &e->id, &pid, &pe)) {
		lb_set_error("base chunk %s is missing from the store", lb_id_hex(&e->id, hex));
		return -EBADMSG;
	}
	if (pe.raw > LB_CDC_MAX_MAX) {
		lb_set_error("base chunk %s: size %u is beyond any chunk's", lb_id_hex(&e->id, hex), pe.raw);
		return -EBADMSG;
	}
	e->size = pe.raw;
	e->pack = pid;
	e->offset = pe.offset;
	e->data = buf_alloc(s->bcache, pe.raw, &e->cap, charged);
	if (!e->data)
		return -ENOMEM;
	struct idvec cl = { 0 };
	int checked;
	int r = rebuild(s, &e->id, e->data, pe.raw, depth, &cl, &e->prov, &checked);
	if (r < 0) {
		free(cl.v);
		return r;
	}
	/* Not yet visible to other threads. */
	e->verified = checked;
	e->cl = cl.v;
	e->ncl = (uint32_t)cl.n;
	return 0;
}

static void drop_bad_locked(struct lb_bcache *c, struct bc_entry *e)
{
	if (e->unlinked)
		return;
	unlink_entry(c, e);
	e->unlinked = 1;
	c->bytes -= e->cap;
}

/* Checks a pinned base against its id once; a base that fails leaves the
 * cache, so that nothing else is built on it. */
static int base_verify(struct lb_store *s, struct base_ref *r)
{
	struct bc_entry *e = r->e;
	struct lb_bcache *c = s->bcache;
	if (e->verified)
		return 0;
	int trusted = prov_checked(c, &e->id, e->prov), ok = 1;
	if (!trusted) {
		struct lb_id got;
		lb_sha256(e->data, e->size, &got);
		ok = lb_id_cmp(&got, &e->id) == 0;
		if (ok)
			prov_passed(c, &e->id, e->prov);
	}
	pthread_mutex_lock(&c->mu);
	if (trusted)
		c->trusted++;
	else
		c->checked++;
	if (!r->private_copy) {
		if (ok)
			e->verified = 1;
		else
			drop_bad_locked(c, e);
	} else {
		e->verified = ok;
	}
	pthread_mutex_unlock(&c->mu);
	if (!ok) {
		char hex[LB_ID_HEX];
		lb_set_error("base chunk %s: content does not match its id", lb_id_hex(&e->id, hex));
		return -EBADMSG;
	}
	return 0;
}

static int base_get(struct lb_store *s, const struct lb_id *id, int depth, struct base_ref *out)
{
	struct lb_bcache *c = s->bcache;
	out->e = NULL;
	out->private_copy = 0;
	/* The plaintext of an id never changes, but its closure does if the
	 * chunk was collected and stored again in another form: an entry
	 * counts only while the index still names the blob it came from. */
	struct lb_pack_id ipid;
	struct lb_pack_entry ipe;
	int indexed = lb_index_lookup(s->idx, id, &ipid, &ipe);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct bc_entry **p = slot(c, id);
		struct bc_entry *e = *p;
		if (e && e->ready && (!indexed || e->offset != ipe.offset ||
				      memcmp(e->pack.b, ipid.b, LB_PACK_ID_LEN) != 0)) {
			drop_bad_locked(c, e);
			if (e->refs == 0)
				entry_free(e);
			continue;
		}
		if (e && e->ready) {
			e->refs++;
			e->tick = ++c->tick;
			c->hits++;
			pthread_mutex_unlock(&c->mu);
			out->e = e;
			return 0;
		}
		if (e && tl_loading == 0) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		c->misses++;
		struct bc_entry *n = calloc(1, sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&c->mu);
			return -ENOMEM;
		}
		n->id = *id;
		if (e) {
			/* Another thread rebuilds it and this one holds bases of
			 * its own: rebuild a private copy rather than wait. */
			pthread_mutex_unlock(&c->mu);
			int r = base_build(s, n, depth, 0);
			if (r < 0) {
				entry_free(n);
				return r;
			}
			out->e = n;
			out->private_copy = 1;
			return 0;
		}
		n->refs = 1;
		n->next = NULL;
		*p = n;
		pthread_mutex_unlock(&c->mu);
		tl_loading++;
		int r = base_build(s, n, depth, 1);
		tl_loading--;
		pthread_mutex_lock(&c->mu);
		if (r < 0) {
			unlink_entry(c, n);
			c->bytes -= n->cap;
			entry_free(n);
		} else {
			n->ready = 1;
			n->tick = ++c->tick;
			out->e = n;
		}
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		return r;
	}
}

/* The reference a delta is made against: bytes [skip, skip + len) of its
 * bases' plaintexts laid end to end (doc/FORMAT.md 6.1).  Points into a
 * base when the slice lies within one, else assembles it in the thread's
 * prefix buffer; *copied tells which, for slice_put. */
static int slice_get(struct base_ref *refs, unsigned n, uint32_t skip, uint32_t len, const uint8_t **out,
		     int *copied)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += refs[i].e->size;
	*copied = 0;
	if ((uint64_t)skip + len > total)
		return -EBADMSG;
	uint64_t at = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t sz = refs[i].e->size;
		if (skip >= at && (uint64_t)skip + len <= at + sz) {
			*out = refs[i].e->data + (skip - at);
			return 0;
		}
		at += sz;
	}
	uint8_t *p = prefix_get(len);
	if (!p)
		return -ENOMEM;
	at = 0;
	size_t put = 0;
	for (unsigned i = 0; i < n && put < len; i++) {
		uint64_t lo = at, hi = at + refs[i].e->size;
		at = hi;
		uint64_t a = LB_MAX(lo, (uint64_t)skip), z = LB_MIN(hi, (uint64_t)skip + len);
		if (a >= z)
			continue;
		memcpy(p + put, refs[i].e->data + (a - lo), (size_t)(z - a));
		put += (size_t)(z - a);
	}
	*out = p;
	*copied = 1;
	return 0;
}

/* Reads a delta blob's bases and payload; the caller frees *blobbuf. */
static int read_delta_blob(struct lb_store *s, const struct lb_pack_id *pid, const struct lb_pack_entry *pe,
			   uint8_t **blobbuf, struct lb_blob *blob)
{
	*blobbuf = malloc(lb_blob_buf_size(pe));
	if (!*blobbuf)
		return -ENOMEM;
	int r = lb_blob_get(s->be, pid, pe, *blobbuf, blob);
	if (r < 0) {
		free(*blobbuf);
		*blobbuf = NULL;
	}
	return r;
}

/* Decodes a delta payload (its bases given) into dst.  where names the
 * blob in messages.  With closure set, adds every chunk decoded on the way. */
static int decode_delta(struct lb_store *s, const char *where, const uint8_t *bases, unsigned nbases,
			const uint8_t *payload, uint32_t stored, uint8_t *dst, uint32_t size, int depth,
			struct idvec *closure, uint64_t *prov, int *checked)
{
	*checked = 0;
	struct base_ref refs[LB_BLOB_MAX_BASES];
	unsigned got = 0;
	int r = nbases <= LB_BLOB_MAX_BASES ? 0 : -EBADMSG;
	if (prov)
		*prov = 0;
	for (unsigned i = 0; i < nbases && r == 0; i++) {
		struct lb_id bid;
		memcpy(bid.b, bases + (size_t)i * LB_ID_LEN, LB_ID_LEN);
		r = base_get(s, &bid, depth + 1, &refs[i]);
		if (r < 0) {
			char detail[200];
			snprintf(detail, sizeof(detail), "%s", lb_error_detail());
			lb_set_error("%s: cannot rebuild it: %s", where, detail);
			break;
		}
		got++;
		if (prov)
			*prov = prov_mix(*prov, refs[i].e->prov);
		if (closure) {
			r = idvec_push(closure, &bid);
			for (uint32_t k = 0; r == 0 && k < refs[i].e->ncl; k++)
				r = idvec_push(closure, &refs[i].e->cl[k]);
		}
	}
	/* The payload: u32 skip, u32 length of the slice, u32 version, then
	 * the frame. */
	const uint8_t *prefix = NULL;
	int copied = 0, decoding = 0;
	if (r == 0 && stored < LB_DELTA_HDR) {
		r = -EBADMSG;
		decoding = 1;
	} else if (r == 0) {
		r = slice_get(refs, got, lb_get32(payload), lb_get32(payload + 4), &prefix, &copied);
		decoding = 1;
	}
	if (r == 0)
		r = lb_decompress_delta(prefix, lb_get32(payload + 4), payload + LB_DELTA_HDR, stored - LB_DELTA_HDR,
					dst, size);
	if (r == -EBADMSG && decoding)
		lb_set_error("%s: cannot decode (corrupt delta payload)", where);
	/* The frame's checksum covers what it decoded to, whatever the bases. */
	if (r == 0)
		*checked = lb_zstd_checked(payload + LB_DELTA_HDR, stored - LB_DELTA_HDR);
	if (copied)
		prefix_put((uint8_t *)prefix);
	for (unsigned i = 0; i < got; i++)
		base_release(s, &refs[i]);
	if (r == 0 && closure)
		idvec_unique(closure);
	return r;
}

/* Decodes chunk id (size bytes) into dst; its id is not checked here.
 * With closure set, adds every chunk decoded on the way (id excluded). */
static int rebuild(struct lb_store *s, const struct lb_id *id, uint8_t *dst, uint32_t size, int depth,
		   struct idvec *closure, uint64_t *prov, int *checked)
{
	*checked = 0;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	char hex[LB_ID_HEX], pname[96];
	if (depth > MAX_DEPTH) {
		lb_set_error("chunk %s: delta chain deeper than %d (the store is damaged)", lb_id_hex(id, hex),
			     MAX_DEPTH);
		return -EBADMSG;
	}
	if (!lb_index_lookup(s->idx, id, &pid, &pe)) {
		lb_set_error("chunk %s is missing from the store", lb_id_hex(id, hex));
		return -EBADMSG;
	}
	lb_pack_name(&pid, pname, sizeof(pname));
	if (pe.raw != size || size > LB_CDC_MAX_MAX) {
		lb_set_error("chunk %s in pack %s at offset %u: size %u, expected %u", lb_id_hex(id, hex), pname,
			     pe.offset, pe.raw, size);
		return -EBADMSG;
	}
	if (prov)
		*prov = prov_blob(&pid, pe.offset);
	if (pe.codec != LB_CODEC_ZSTD_DELTA)
		return lb_store_decode_plain(s, &pid, &pe, dst, checked);
	uint8_t *bb;
	struct lb_blob blob;
	int r = read_delta_blob(s, &pid, &pe, &bb, &blob);
	if (r < 0)
		return r;
	char where[200];
	snprintf(where, sizeof(where), "chunk %s in pack %s at offset %u", lb_id_hex(id, hex), pname, pe.offset);
	uint64_t bprov = 0;
	r = decode_delta(s, where, blob.bases, blob.nbases, blob.payload, blob.stored, dst, size, depth, closure,
			 prov ? &bprov : NULL, checked);
	if (prov)
		*prov = prov_mix(*prov, bprov);
	free(bb);
	return r;
}

int lb_store_decode_delta_blob(struct lb_store *s, const struct lb_pack_entry *e, const uint8_t *payload,
			       uint8_t *dst, const char *where)
{
	if (e->nbases == 0 || e->nbases > LB_BLOB_MAX_BASES || e->raw > LB_CDC_MAX_MAX) {
		lb_set_error("%s: bad delta blob", where);
		return -EBADMSG;
	}
	/* In a pack read whole, the base ids lie just before the payload. */
	const uint8_t *bases = payload - (size_t)e->nbases * LB_ID_LEN;
	int checked;
	return decode_delta(s, where, bases, e->nbases, payload, e->stored, dst, e->raw, 0, NULL, NULL, &checked);
}

int lb_store_rebuild_chunk(struct lb_store *s, const struct lb_id *id, uint8_t *dst, uint32_t size,
			   int *checked)
{
	return rebuild(s, id, dst, size, 0, NULL, NULL, checked);
}

/* ---- links ------------------------------------------------------------------------ */

static int link_get(struct lb_store *s, const struct lb_id *id, struct link *out);

int lb_store_chunk_bases(struct lb_store *s, const struct lb_id *id, struct lb_id *bases, unsigned *n)
{
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	char hex[LB_ID_HEX];
	*n = 0;
	if (!lb_index_lookup(s->idx, id, &pid, &pe)) {
		lb_set_error("chunk %s is missing from the store", lb_id_hex(id, hex));
		return -ENOENT;
	}
	if (pe.codec != LB_CODEC_ZSTD_DELTA)
		return 0;
	struct link lk;
	if (link_get(s, id, &lk) < 0) {
		lb_set_error("delta chunk %s: its blob cannot be read", lb_id_hex(id, hex));
		return -EBADMSG;
	}
	memcpy(bases, lk.bases, (size_t)lk.nbases * sizeof(*bases));
	*n = lk.nbases;
	return 0;
}

int lb_store_closure(struct lb_store *s, const struct lb_id *id, lb_closure_fn fn, void *arg)
{
	/* Iterative, depth-first, each chunk visited once per call. */
	struct idvec todo = { 0 }, seen = { 0 };
	int r = idvec_push(&todo, id);
	while (r == 0 && todo.n > 0) {
		struct lb_id cur = todo.v[--todo.n];
		struct lb_id bases[LB_BLOB_MAX_BASES];
		unsigned nb;
		r = lb_store_chunk_bases(s, &cur, bases, &nb);
		if (r == -ENOENT) {
			r = -EBADMSG;
			break;
		}
		for (unsigned i = 0; r == 0 && i < nb; i++) {
			int dup = 0;
			for (size_t k = 0; k < seen.n && !dup; k++)
				dup = lb_id_cmp(&seen.v[k], &bases[i]) == 0;
			if (dup)
				continue;
			if (seen.n >= (size_t)MAX_DEPTH * LB_BLOB_MAX_BASES) {
				char hex[LB_ID_HEX];
				lb_set_error("chunk %s: more than %d bases in its chain (the store is damaged)",
					     lb_id_hex(id, hex), MAX_DEPTH * LB_BLOB_MAX_BASES);
				r = -EBADMSG;
				break;
			}
			r = idvec_push(&seen, &bases[i]);
			if (r == 0)
				r = fn(arg, &bases[i]);
			if (r == 0)
				r = idvec_push(&todo, &bases[i]);
		}
	}
	free(todo.v);
	free(seen.v);
	return r;
}

/* ---- choosing how to store a new chunk ------------------------------------------- */

int lb_store_delta_encode(struct lb_store *s, const struct lb_delta_ref *ref, const void *data, size_t len,
			  unsigned max_cost, void **out, size_t *outlen, unsigned *cost)
{
	struct base_ref refs[LB_BLOB_MAX_BASES];
	struct idvec cl = { 0 };
	unsigned got = 0;
	int r = 0;
	for (unsigned i = 0; i < ref->nbases && r == 0; i++) {
		r = base_get(s, &ref->bases[i], 1, &refs[i]);
		if (r < 0)
			break;
		got++;
		r = base_verify(s, &refs[i]);
		if (r < 0)
			break;
		r = idvec_push(&cl, &ref->bases[i]);
		for (uint32_t k = 0; r == 0 && k < refs[i].e->ncl; k++)
			r = idvec_push(&cl, &refs[i].e->cl[k]);
	}
	if (r == 0) {
		idvec_unique(&cl);
		*cost = (unsigned)cl.n + 1;
		if (cl.n + 1 > max_cost)
			r = -E2BIG;
	}
	/* The delta will need every chunk of its chains: reference them now,
	 * before it is stored, so that a collection marking meanwhile keeps
	 * them (a cached base may even be gone from the store already). */
	for (size_t i = 0; r == 0 && i < cl.n; i++) {
		struct lb_pack_id pid;
		struct lb_pack_entry pe;
		if (!lb_index_lookup_ref(s->idx, &cl.v[i], &pid, &pe))
			r = -ESTALE;
	}
	const uint8_t *prefix = NULL;
	int copied = 0;
	if (r == 0)
		r = slice_get(refs, got, ref->skip, ref->len, &prefix, &copied);
	if (r == 0) {
		r = lb_compress_delta(s->delta_level, prefix, ref->len, data, len, LB_DELTA_HDR, out, outlen);
		if (r > 0) {
			lb_put32((uint8_t *)*out, ref->skip);
			lb_put32((uint8_t *)*out + 4, ref->len);
			lb_put32((uint8_t *)*out + 8, ref->version);
			r = 0;
		}
	}
	if (copied)
		prefix_put((uint8_t *)prefix);
	free(cl.v);
	for (unsigned i = 0; i < got; i++)
		base_release(s, &refs[i]);
	return r;
}

static int ref_cb(void *arg, const struct lb_id *id)
{
	struct lb_store *s = arg;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	return lb_index_lookup_ref(s->idx, id, &pid, &pe) ? 0 : -ENOENT;
}

int lb_store_ref_closure(struct lb_store *s, const struct lb_id *id)
{
	int r = lb_store_closure(s, id, ref_cb, s);
	return r < 0 ? -ENOENT : 0;
}

/* ---- planning: skip deltas -------------------------------------------------------
 *
 * Made each night against the night before, a dump's chunks would form
 * chains as long as the history: rebuilding tonight's version would decode
 * every version back to the last plain one, at backup (for the bases) and
 * at restore.  Instead, as in Subversion's skip-deltas but in base 8
 * (LB_DELTA_RADIX), version n (counted from the last plain version, 0) is
 * made against n with its lowest non-zero base-8 digit cleared: 1-8
 * against 0, 9-15 against 8, 16 against 0, 17-23 against 16.  Rebuilding
 * version n decodes one version per non-zero digit, plus the plain one
 * (two for the first seven nights, at most three for 63); a delta spans
 * up to seven nights of change.  Base 4 stored 26% less over a week and
 * restored night 7 with 15% more CPU; base 2 less again and slower again
 * (bench/RESULTS.md).
 *
 * The version it is made against lies on the chain of version n - 1, so
 * the backup finds it by following the previous version's base links
 * down, mapping the chunk's place through each delta's slice; no older
 * manifest is read.
 * The version number travels in each delta's payload header. */

/* The chunk's links: 0, or -1 when it cannot be read (planning then stops
 * where it is; the encoder reports real damage). */
static int link_get(struct lb_store *s, const struct lb_id *id, struct link *out)
{
	struct lb_bcache *c = s->bcache;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	if (!lb_index_lookup(s->idx, id, &pid, &pe))
		return -1;
	/* A cached entry counts only for the very blob the index names now:
	 * a chunk collected and stored again may be encoded differently. */
	pthread_mutex_lock(&c->link_mu);
	struct link *slot = link_slot(c, id);
	if (slot && slot->valid && lb_id_cmp(&slot->id, id) == 0 && slot->offset == pe.offset &&
	    memcmp(slot->pack.b, pid.b, LB_PACK_ID_LEN) == 0) {
		*out = *slot;
		pthread_mutex_unlock(&c->link_mu);
		return 0;
	}
	pthread_mutex_unlock(&c->link_mu);
	memset(out, 0, sizeof(*out));
	out->id = *id;
	out->pack = pid;
	out->offset = pe.offset;
	out->raw = pe.raw;
	if (pe.codec == LB_CODEC_ZSTD_DELTA) {
		uint8_t *bb;
		struct lb_blob blob;
		if (read_delta_blob(s, &pid, &pe, &bb, &blob) < 0)
			return -1;
		if (blob.stored < LB_DELTA_HDR) {
			free(bb);
			return -1;
		}
		out->nbases = blob.nbases;
		memcpy(out->bases, blob.bases, (size_t)blob.nbases * LB_ID_LEN);
		out->skip = lb_get32(blob.payload);
		out->len = lb_get32(blob.payload + 4);
		out->version = lb_get32(blob.payload + 8);
		free(bb);
	}
	out->valid = 1;
	pthread_mutex_lock(&c->link_mu);
	if (slot)
		*slot = *out;
	pthread_mutex_unlock(&c->link_mu);
	return 0;
}

/* Raw size of a chunk, for laying out bases (0 when unknown). */
static uint32_t raw_size(struct lb_store *s, const struct lb_id *id)
{
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	return lb_index_lookup(s->idx, id, &pid, &pe) ? pe.raw : 0;
}

/* One step down: from a reference to chunks of version v to the bases
 * they were made against.  Returns 0 and the new reference, or -1. */
static int descend(struct lb_store *s, const struct lb_delta_ref *cur, const struct link *lk, uint64_t margin,
		   struct lb_delta_ref *next)
{
	/* The bases of all of cur's chunks in file order: neighbours share
	 * bases at their edges, which are laid down once.  off[] is where
	 * each starts in the concatenation. */
	struct lb_id ids[4 * LB_BLOB_MAX_BASES];
	uint64_t off[4 * LB_BLOB_MAX_BASES + 1];
	unsigned n = 0;
	uint64_t lo = UINT64_MAX, hi = 0, at = 0, cstart = 0;
	for (unsigned i = 0; i < cur->nbases; i++) {
		const struct link *l = &lk[i];
		/* Where l's list begins in ids: after the overlap with the end
		 * of what is there already. */
		unsigned start = n;
		for (unsigned k = n > l->nbases ? n - l->nbases : 0; k < n; k++) {
			unsigned m = 0;
			while (k + m < n && m < l->nbases && lb_id_cmp(&ids[k + m], &l->bases[m]) == 0)
				m++;
			if (k + m == n) {
				start = k;
				break;
			}
		}
		for (unsigned m = n - start; m < l->nbases; m++) {
			if (n >= 4 * LB_BLOB_MAX_BASES)
				return -1;
			uint32_t sz = raw_size(s, &l->bases[m]);
			if (!sz)
				return -1;
			ids[n] = l->bases[m];
			off[n] = at;
			at += sz;
			n++;
		}
		off[n] = at;
		/* The part of cur's slice inside chunk i, mapped into l's own
		 * slice in proportion. */
		uint64_t a = LB_MAX((uint64_t)cur->skip, cstart), z = LB_MIN((uint64_t)cur->skip + cur->len,
									   cstart + l->raw);
		if (a < z && l->raw) {
			double f = (double)l->len / (double)l->raw;
			uint64_t base = off[start] + l->skip;
			lo = LB_MIN(lo, base + (uint64_t)((double)(a - cstart) * f));
			hi = LB_MAX(hi, base + (uint64_t)((double)(z - cstart) * f));
		}
		cstart += l->raw;
	}
	if (n == 0 || lo >= hi)
		return -1;
	lo = lo > margin ? lo - margin : 0;
	hi = LB_MIN(hi + margin, at);
	unsigned first = 0, last = n - 1;
	while (first < n && off[first + 1] <= lo)
		first++;
	while (last > first && off[last] >= hi)
		last--;
	while (last - first + 1 > LB_DELTA_MAX_BASES) {
		first++;
		if (last - first + 1 > LB_DELTA_MAX_BASES)
			last--;
	}
	lo = LB_MAX(lo, off[first]);
	hi = LB_MIN(hi, off[last + 1]);
	if (lo >= hi)
		return -1;
	next->nbases = last - first + 1;
	for (unsigned i = first; i <= last; i++)
		next->bases[i - first] = ids[i];
	next->skip = (uint32_t)(lo - off[first]);
	next->len = (uint32_t)(hi - lo);
	return 0;
}

uint32_t lb_delta_skip_base(uint32_t n, unsigned radix)
{
	uint32_t unit = 1;
	while (radix >= 2 && n / unit % radix == 0 && unit <= UINT32_MAX / radix)
		unit *= radix;
	return n - n / unit % radix * unit;
}

void lb_store_delta_plan(struct lb_store *s, struct lb_delta_ref *ref, uint64_t margin)
{
	struct link lk[LB_BLOB_MAX_BASES];
	uint32_t target = 0;
	ref->version = 1;
	for (int step = 0; step < MAX_DEPTH && ref->nbases; step++) {
		uint32_t v = 0;
		int all_delta = 1;
		for (unsigned i = 0; i < ref->nbases; i++) {
			if (link_get(s, &ref->bases[i], &lk[i]) < 0)
				return;
			v = LB_MAX(v, lk[i].version);
			all_delta &= lk[i].nbases > 0;
		}
		if (step == 0) {
			/* This chunk is one version past the newest around it;
			 * its base is that number with its lowest non-zero digit
			 * (in base s->delta_radix) cleared. */
			ref->version = v + 1;
			target = lb_delta_skip_base(ref->version, s->delta_radix);
		}
		if (v <= target || !all_delta)
			return;
		struct lb_delta_ref next;
		if (descend(s, ref, lk, margin, &next) < 0)
			return;
		next.version = ref->version;
		*ref = next;
	}
}
