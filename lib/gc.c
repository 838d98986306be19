/* gc.c - garbage collection: finds the blobs no snapshot references and
 * gives their space back, while backups go on.  doc/FORMAT.md section 14.3
 * states the protocol and why it never loses a live blob; in short:
 *
 *   1. list the packs (for leftovers of crashes, step 7);
 *   2. merge the index into one base run and mark, from now on, every base
 *      entry a backup looks up (lb_index_lookup_ref);
 *   3. wait for the backups that began before step 2 (never the other way
 *      round: a backup does not wait for a collection);
 *   4. mark every blob the snapshots in the catalogue reference;
 *   5. freeze: unmarked base entries vanish from the index at one instant,
 *      so a backup after it stores such a chunk anew instead of reusing it;
 *   6. copy the live blobs of packs that are mostly garbage into new packs
 *      and index them; write the base without the dead entries and without
 *      the emptied packs, durably, and swap it in;
 *   7. only then delete the emptied packs, and packs no index run lists that
 *      were already there in step 1 and are not on their way into the index.
 *
 * A kill at any point leaves either the old index (every pack it names still
 * there) or the new one (written before any pack it no longer names is
 * deleted). */
#include "config.h"

#include "store.h"
#include "idset.h"
#include "index.h"
#include "manifest.h"
#include "pack.h"
#include "store_internal.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Fault injection for the crash tests: LUMBUNG_TEST_GC_KILL=<point> kills
 * the process with SIGKILL when the collection reaches that point. */
static void kill_point(const char *name)
{
	const char *want = getenv("LUMBUNG_TEST_GC_KILL");
	if (want && !strcmp(want, name))
		raise(SIGKILL);
}

struct listed {
	struct lb_pack_id id;
	uint64_t size;
	int indexed; /* some index run lists it */
	int dropped; /* deleted as this collection's garbage */
};

struct listing {
	struct listed *v;
	size_t n, cap;
};

static int list_cb(void *arg, const char *name, uint64_t size)
{
	struct listing *l = arg;
	struct lb_pack_id id;
	if (lb_pack_parse_name(name, &id) < 0)
		return 0; /* not a pack */
	int r = lb_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v));
	if (r == 0)
		l->v[l->n++] = (struct listed){ .id = id, .size = size };
	return r;
}

static int listed_cmp(const void *a, const void *b)
{
	return memcmp(((const struct listed *)a)->id.b, ((const struct listed *)b)->id.b, LB_PACK_ID_LEN);
}

static struct listed *listed_find(struct listing *l, const struct lb_pack_id *id)
{
	struct listed key = { .id = *id };
	return l->n ? bsearch(&key, l->v, l->n, sizeof(*l->v), listed_cmp) : NULL;
}

static int indexed_cb(void *arg, const struct lb_pack_id *id)
{
	struct listed *p = listed_find(arg, id);
	if (p)
		p->indexed = 1;
	return 0;
}

/* ---- marking ----------------------------------------------------------------- */

struct marker {
	struct lb_store *s;
	struct lb_idset *trees;        /* tree blobs already walked */
	struct lb_idset *newer_deltas; /* deltas of newer runs whose chains were marked */
	struct lb_gc_stats *st;
	const struct lb_snapshot *snap;
};

static int mark_base_cb(void *arg, const struct lb_id *id)
{
	int delta_new;
	return lb_index_gc_mark(arg, id, &delta_new) > 0 ? 0 : -ENOENT;
}

static int mark_one(struct marker *m, const struct lb_id *id, const char *what)
{
	int delta_new = 0;
	int r = lb_index_gc_mark(m->s->idx, id, &delta_new);
	if (r > 0 && delta_new == 2) {
		/* A newer run's delta: walked once per collection. */
		int added = lb_idset_add(m->newer_deltas, id);
		if (added < 0)
			return added;
		if (added == 0)
			delta_new = 0;
	}
	if (r > 0 && delta_new) {
		/* A delta marked for the first time: its bases (and theirs)
		 * live as long as it does. */
		r = lb_store_closure(m->s, id, mark_base_cb, m->s->idx);
		if (r == 0)
			return 0;
		char hex[2 * LB_ID_LEN + 1], sid[LB_SNAP_HEX];
		lb_hex(hex, id->b, LB_ID_LEN);
		lb_set_error("snapshot %s of %s/%s uses delta chunk %s, whose bases cannot all be found; "
			     "run 'lumbung check' (nothing was deleted)",
			     lb_snap_id_hex(m->snap->id, sid), m->snap->tenant, m->snap->dataset, hex);
		return -EBADMSG;
	}
	if (r > 0)
		return 0;
	char hex[2 * LB_ID_LEN + 1], sid[LB_SNAP_HEX];
	lb_hex(hex, id->b, LB_ID_LEN);
	lb_set_error("snapshot %s of %s/%s references %s %s, which the index does not hold; "
		     "run 'lumbung check' (nothing was deleted)",
		     lb_snap_id_hex(m->snap->id, sid), m->snap->tenant, m->snap->dataset, what, hex);
	return -EBADMSG;
}

/* Marks one snapshot: its tree blobs, and the chunks of every tree blob not
 * walked before (snapshots of the same data share most tree blobs, so each
 * is decoded once per collection). */
static int mark_snapshot(struct marker *m, const struct lb_snapshot *snap)
{
	m->snap = snap;
	for (size_t i = 0; i < snap->ntree; i++) {
		int r = mark_one(m, &snap->tree[i].id, "tree blob");
		if (r < 0)
			return r;
		r = lb_idset_add(m->trees, &snap->tree[i].id);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		m->st->trees++;
		struct lb_mreader *mr = lb_store_refs_reader(m->s, &snap->tree[i], 1);
		if (!mr)
			return -ENOMEM;
		struct lb_entry e;
		int rr;
		while ((rr = lb_mreader_next(mr, &e)) == 1) {
			for (size_t k = 0; k < e.nchunks && rr == 1; k++)
				if ((r = mark_one(m, &e.chunks[k].id, "chunk")) < 0)
					rr = r;
			lb_entry_clear(&e);
		}
		lb_mreader_free(mr);
		if (rr < 0) {
			if (rr != -EBADMSG || !strstr(lb_error_detail(), "nothing was deleted")) {
				char sid[LB_SNAP_HEX];
				lb_set_error("cannot read the tree of snapshot %s of %s/%s: %s; run 'lumbung check' "
					     "(nothing was deleted)",
					     lb_snap_id_hex(snap->id, sid), snap->tenant, snap->dataset, strerror(-rr));
			}
			return rr;
		}
	}
	m->st->snapshots++;
	return 0;
}

/* ---- repacking ------------------------------------------------------------------ */

static int by_place(const void *a, const void *b)
{
	const struct lb_gc_entry *x = a, *y = b;
	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	return x->e.offset < y->e.offset ? -1 : x->e.offset > y->e.offset;
}

struct repacker {
	struct lb_store *s;
	struct lb_pack_writer *w[3]; /* open writer per pack kind */
	struct lb_pack_writer **done;
	size_t ndone, capdone;
	uint8_t *buf;
	size_t cap;
};

static int rp_seal(struct repacker *rp, int kind)
{
	struct lb_pack_writer *w = rp->w[kind];
	rp->w[kind] = NULL;
	int r = lb_pack_seal(w);
	if (r == 0)
		r = lb_grow(&rp->done, &rp->capdone, rp->ndone + 1, sizeof(*rp->done));
	if (r < 0) {
		lb_pack_writer_free(w);
		return r;
	}
	rp->done[rp->ndone++] = w;
	return 0;
}

/* Copies one blob as stored (no decompression: the crc of its header and
 * payload is checked on the way). */
static int rp_copy(struct repacker *rp, const struct lb_gc_entry *g)
{
	size_t need = lb_blob_buf_size(&g->e);
	if (need > rp->cap) {
		uint8_t *nb = realloc(rp->buf, need);
		if (!nb)
			return -ENOMEM;
		rp->buf = nb;
		rp->cap = need;
	}
	struct lb_blob blob;
	struct lb_id bases[LB_BLOB_MAX_BASES];
	int r = lb_blob_get(rp->s->be, &g->pack_id, &g->e, rp->buf, &blob);
	if (r < 0)
		return r;
	/* A delta keeps its base list: the bases are live with it. */
	memcpy(bases, blob.bases, (size_t)blob.nbases * LB_ID_LEN);
	int kind = g->e.type == LB_BLOB_TREE ? LB_PACK_META : LB_PACK_DATA;
	if (!rp->w[kind] && (r = lb_pack_writer_new(rp->s->be, kind, &rp->w[kind])) < 0)
		return r;
	r = lb_pack_append(rp->w[kind], &g->e.id, g->e.type, g->e.codec, blob.nbases ? bases : NULL, blob.nbases,
			   g->e.raw, blob.payload, blob.stored, NULL);
	if (r == 0 && lb_pack_writer_size(rp->w[kind]) >= rp->s->p.pack_size)
		r = rp_seal(rp, kind);
	return r;
}

/* Seals the open writers and indexes every pack written so far, so that
 * the copies are found before the base lets go of the originals. */
static int rp_flush(struct repacker *rp, struct lb_gc_stats *st)
{
	int r = 0;
	for (int k = LB_PACK_DATA; k <= LB_PACK_META && r == 0; k++)
		if (rp->w[k])
			r = rp_seal(rp, k);
	struct lb_index_pack *ip = rp->ndone ? lb_mallocarray(rp->ndone, sizeof(*ip)) : NULL;
	if (r == 0 && rp->ndone && !ip)
		r = -ENOMEM;
	if (r == 0 && rp->ndone) {
		for (size_t i = 0; i < rp->ndone; i++) {
			ip[i].id = *lb_pack_writer_id(rp->done[i]);
			ip[i].entries = lb_pack_writer_entries(rp->done[i], &ip[i].n);
			st->bytes_written += lb_pack_writer_size(rp->done[i]);
		}
		r = lb_index_add(rp->s->idx, ip, rp->ndone);
		if (r == 0)
			st->packs_written += rp->ndone;
	}
	free(ip);
	for (size_t i = 0; i < rp->ndone; i++)
		lb_pack_writer_free(rp->done[i]);
	rp->ndone = 0;
	return r;
}

/* Live blobs copied per batch: bounds what repacking holds in memory
 * (about 120 bytes each) whatever the store's size. */
#define REPACK_BATCH (256u << 10)

/* Rewrites the live blobs of the packs with want[] set, a batch of packs at
 * a time, each batch in pack and offset order.  A pack with a blob that
 * cannot be read is left alone (its want[] cleared) and counted. */
static int repack(struct lb_store *s, uint8_t *want, const struct lb_gc_pack *ps, uint32_t npacks,
		  struct lb_gc_stats *st)
{
	uint8_t *batch = calloc(npacks ? npacks : 1, 1);
	if (!batch)
		return -ENOMEM;
	struct repacker rp = { .s = s };
	int r = 0;
	for (uint32_t from = 0; r == 0 && from < npacks;) {
		uint64_t live = 0;
		memset(batch, 0, npacks);
		uint32_t k = from;
		for (; k < npacks && (live == 0 || live + ps[k].live <= REPACK_BATCH); k++)
			if (want[k]) {
				batch[k] = 1;
				live += ps[k].live;
			}
		from = k;
		if (live == 0)
			continue;
		struct lb_gc_entry *v;
		size_t n;
		r = lb_index_gc_live(s->idx, batch, &v, &n);
		if (r < 0)
			break;
		if (n)
			qsort(v, n, sizeof(*v), by_place);
		for (size_t i = 0; i < n && r == 0; i++) {
			if (!want[v[i].pack])
				continue;
			int c = rp_copy(&rp, &v[i]);
			if (c == -EBADMSG || c == -ENOENT) {
				char name[64];
				lb_pack_name(&v[i].pack_id, name, sizeof(name));
				if (!st->problem[0])
					snprintf(st->problem, sizeof(st->problem), "%s left as it is: %s", name,
						 c == -ENOENT ? "missing" : lb_error_detail());
				want[v[i].pack] = 0;
				st->packs_damaged++;
			} else {
				r = c;
			}
		}
		free(v);
		if (r == 0)
			r = rp_flush(&rp, st);
	}
	for (int k = LB_PACK_DATA; k <= LB_PACK_META; k++)
		lb_pack_writer_free(rp.w[k]);
	for (size_t i = 0; i < rp.ndone; i++)
		lb_pack_writer_free(rp.done[i]);
	free(rp.done);
	free(rp.buf);
	free(batch);
	return r;
}

/* ---- the collection --------------------------------------------------------------- */

static int gc_locked(struct lb_store *s, const struct lb_gc_options *o, struct lb_gc_stats *st)
{
	char **damaged;
	if (lb_store_damaged_heads(s, &damaged) > 0) {
		lb_set_error("snapshot head %s is damaged, so what it references is unknown; "
			     "run 'lumbung check' (nothing was deleted)", damaged[0]);
		return -EBADMSG;
	}
	/* 1: what is there before anything else starts. */
	struct listing l = { 0 };
	int r = s->be->ops->list(s->be, "packs", list_cb, &l);
	if (r < 0) {
		lb_set_error("cannot list the packs: %s", strerror(-r));
		free(l.v);
		return r;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), listed_cmp);

	/* 2: hold the base and mark what backups reference from now on.  Make
	 * finished backups' packs part of it first. */
	r = lb_store_flush(s);
	uint64_t nentries = 0;
	uint32_t npacks = 0;
	if (r == 0)
		r = lb_index_gc_begin(s->idx, &nentries, &npacks);
	if (r < 0) {
		free(l.v);
		if (r == -EBUSY)
			lb_set_error("another garbage collection is running");
		return r;
	}
	kill_point("begun");

	/* 3: backups that began before step 2 may hold references made
	 * without marking; wait until they have committed or gone. */
	int64_t t0 = lb_now_ns();
	pthread_mutex_lock(&s->mu);
	s->bk_old += s->bk_cur;
	s->bk_cur = 0;
	s->bk_gen++;
	st->backups_waited = s->bk_old;
	while (s->bk_old > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	st->wait_ns = lb_now_ns() - t0;

	/* 4: mark from every snapshot in the catalogue now. */
	t0 = lb_now_ns();
	struct lb_snapshot **snaps = NULL;
	size_t nsnaps = 0;
	struct marker m = { .s = s, .st = st, .trees = lb_idset_new(), .newer_deltas = lb_idset_new() };
	r = m.trees && m.newer_deltas ? lb_store_list_snapshots(s, NULL, NULL, &snaps, &nsnaps) : -ENOMEM;
	for (size_t i = 0; r == 0 && i < nsnaps; i++)
		r = mark_snapshot(&m, snaps[i]);
	lb_snapshot_list_free(snaps, nsnaps);
	lb_idset_free(m.trees);
	lb_idset_free(m.newer_deltas);
	st->mark_ns = lb_now_ns() - t0;
	if (r < 0)
		goto out;
	kill_point("marked");

	/* 5: freeze (or, for a dry run, only count). */
	t0 = lb_now_ns();
	struct lb_gc_pack *ps = NULL;
	r = lb_index_gc_freeze(s->idx, o->dry_run, &ps);
	if (r < 0)
		goto out;
	kill_point("frozen");
	uint8_t *drop = calloc(npacks ? npacks : 1, 1);
	uint8_t *rewrite = calloc(npacks ? npacks : 1, 1);
	if (!drop || !rewrite) {
		r = -ENOMEM;
		goto out_packs;
	}
	for (uint32_t k = 0; k < npacks; k++) {
		if (ps[k].same_as != k) {
			/* The same pack in another run: judged with its first row. */
			drop[k] = drop[ps[k].same_as];
			rewrite[k] = rewrite[ps[k].same_as];
			continue;
		}
		st->packs++;
		st->chunks_live += ps[k].live;
		st->chunks_dead += ps[k].dead;
		struct listed *p = listed_find(&l, &ps[k].id);
		if (!p) {
			/* Indexed but not on disk (or sealed after the listing,
			 * which cannot be in the base): check's business. */
			st->packs_missing++;
			continue;
		}
		if (ps[k].live == 0) {
			drop[k] = 1;
			st->packs_deleted++;
			st->bytes_freed += p->size;
		} else if (o->repack_below &&
			   ps[k].live_bytes * 100 < (uint64_t)o->repack_below * (ps[k].live_bytes + ps[k].dead_bytes)) {
			rewrite[k] = 1;
		} else {
			st->bytes_dead_left += ps[k].dead_bytes;
		}
	}
	if (o->dry_run) {
		for (uint32_t k = 0; k < npacks; k++)
			if (rewrite[k] && ps[k].same_as == k) {
				st->packs_repacked++;
				st->bytes_freed += listed_find(&l, &ps[k].id)->size;
				st->bytes_written += ps[k].live_bytes;
			}
		goto out_packs;
	}

	/* 6: repack, then write the base without what goes. */
	r = repack(s, rewrite, ps, npacks, st);
	if (r < 0)
		goto out_packs;
	/* A damaged blob may have stopped one row of a pack two runs list:
	 * then neither row lets go of it. */
	for (uint32_t k = 0; k < npacks; k++)
		if (ps[k].same_as != k && !rewrite[k])
			rewrite[ps[k].same_as] = 0;
	for (uint32_t k = 0; k < npacks; k++)
		if (ps[k].same_as != k)
			rewrite[k] = rewrite[ps[k].same_as];
	for (uint32_t k = 0; k < npacks; k++)
		if (rewrite[k]) {
			drop[k] = 1;
			if (ps[k].same_as == k) {
				st->packs_repacked++;
				st->bytes_freed += listed_find(&l, &ps[k].id)->size;
			}
		}
	kill_point("repacked");
	r = lb_index_gc_commit(s->idx, drop, NULL);
	if (r < 0)
		goto out_packs;
	kill_point("committed");

	/* 7: delete.  First the packs the new base let go of ... */
	for (uint32_t k = 0; k < npacks; k++) {
		if (!drop[k])
			continue;
		char name[64];
		lb_pack_name(&ps[k].id, name, sizeof(name));
		listed_find(&l, &ps[k].id)->dropped = 1;
		int rm = s->be->ops->remove(s->be, name);
		if (rm < 0 && rm != -ENOENT && !st->problem[0])
			snprintf(st->problem, sizeof(st->problem), "cannot delete %s: %s (the next collection retries)",
				 name, strerror(-rm));
		kill_point("deleting");
	}
	/* ... then leftovers: listed in step 1, in no index run, and not on
	 * their way into one.  The way in is looked at first and the index
	 * again after, because a pack leaves the way in only once it is in the
	 * index. */
	r = lb_index_foreach_pack(s->idx, indexed_cb, &l);
	size_t ncand = 0;
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		if (l.v[i].indexed || l.v[i].dropped)
			continue;
		if (lb_store_pack_unindexed(s, &l.v[i].id))
			l.v[i].indexed = 1; /* not ours to touch */
		else
			ncand++;
	}
	if (r == 0 && ncand)
		r = lb_index_foreach_pack(s->idx, indexed_cb, &l);
	for (size_t i = 0; r == 0 && ncand && i < l.n; i++) {
		if (l.v[i].indexed || l.v[i].dropped)
			continue;
		char name[64];
		lb_pack_name(&l.v[i].id, name, sizeof(name));
		if (s->be->ops->remove(s->be, name) == 0) {
			st->orphans++;
			st->bytes_freed += l.v[i].size;
		}
	}
	if (r == 0) {
		/* Backups add to it meanwhile: change it by the difference,
		 * atomically, never below zero. */
		uint64_t phys = s->physical;
		atomic_fetch_add(&s->physical, st->bytes_written);
		atomic_fetch_sub(&s->physical, LB_MIN(phys, st->bytes_freed));
	}
out_packs:
	st->sweep_ns = lb_now_ns() - t0;
	free(drop);
	free(rewrite);
	free(ps);
out:
	lb_index_gc_end(s->idx); /* no-op after the commit */
	free(l.v);
	return r;
}

int lb_store_gc(struct lb_store *s, const struct lb_gc_options *o, struct lb_gc_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (pthread_mutex_trylock(&s->gc_mu) != 0) {
		lb_set_error("another garbage collection or check is running");
		return -EBUSY;
	}
	int r = gc_locked(s, o, st);
	pthread_mutex_unlock(&s->gc_mu);
	return r;
}
