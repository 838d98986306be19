/* store_internal.h - the store's state, shared by store.c and check.c only. */
#ifndef LB_STORE_INTERNAL_H
#define LB_STORE_INTERNAL_H

#include "cdc.h"
#include "pack.h"
#include "store.h"

#include <pthread.h>

struct openpack;
struct pnode;
struct lb_pool;
struct lb_usage;
struct lb_bcache;
struct lb_delta_ref;

struct lb_store {
	struct lb_backend *be;
	char *local_dir;      /* on local disk: a large manifest's runs go there */
	int index_rebuilt;    /* at open, from the packs (backend.h index_cached) */
	uint64_t rebuilt[3];  /* its packs, chunks and damaged packs */
	struct lb_store_params p;
	struct lb_cdc cdc;
	struct lb_index *idx;
	struct lb_pool *pool;

	/* mu guards the pending table, the sealed list, sealing and the
	 * failure epoch; cv signals changes to them.  Lock order: flush_mu,
	 * then pack_mu, then mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pnode **buckets;
	struct openpack *sealed; /* sealed, not yet in an index run */
	int sealing;             /* packs being sealed right now */
	int last_seal_error;
	uint64_t fail_epoch;

	pthread_mutex_t pack_mu;
	struct openpack *cur[3]; /* open writer per pack kind */

	pthread_mutex_t flush_mu;

	/* usage_mu guards the per-tenant charge table. */
	pthread_mutex_t usage_mu;
	struct lb_usage *usage;
	/* Bytes of sealed packs, plus blobs appended since (for capacity). */
	_Atomic uint64_t physical;

	pthread_mutex_t cat_mu; /* the snapshot catalog */
	struct lb_snapshot **snaps;
	size_t nsnaps, capsnaps;
	char **damaged;
	size_t ndamaged, capdamaged;

	/* Garbage collection (gc.c).  gc_mu: one collection (or check) at a
	 * time.  Under mu: backups begun in the current generation (bk_cur)
	 * and before it (bk_old); a collection moves bk_cur into bk_old, bumps
	 * the generation and waits for bk_old to reach 0.  unindexed: ids of
	 * packs this process sealed (or is sealing) that no index run lists yet. */
	pthread_mutex_t gc_mu;
	uint64_t bk_gen, bk_cur, bk_old;
	struct lb_pack_id *unindexed;
	size_t nunindexed, capunindexed;

	/* Delta chunks (delta.c): whether backups try them, the cap on the
	 * chunks decoded to rebuild one, and the cache of rebuilt bases. */
	_Atomic int delta;
	_Atomic unsigned delta_max_cost;
	uint64_t delta_margin; /* old bytes each side of a chunk's place */
	_Atomic int delta_level; /* zstd level of deltas */
	unsigned delta_radix;  /* of the skip-delta rule (LB_DELTA_RADIX) */
	struct lb_bcache *bcache;

	/* Batch buffers of ended backups, kept for the ones still running or
	 * queued (store.c, batch_buf_get): a queue of backups behind max_jobs
	 * reuses memory already faulted in instead of faulting and zeroing
	 * 32 MiB each.  The last backup to end frees them. */
	pthread_mutex_t bulk_mu;
	void *bulk_idle[8];
	int nbulk_idle;
	int bulk_users; /* buffers handed out */
};

/* ---- delta.c ---- */
struct lb_bcache *lb_bcache_new(uint64_t cap);
void lb_bcache_free(struct lb_bcache *c);
void lb_bcache_stats(struct lb_bcache *c, uint64_t *hits, uint64_t *misses);
/* Bases a backup hashed before making a delta against them, and bases it
 * took as checked because one of the same provenance was (lib/delta.c). */
void lb_bcache_verify_stats(struct lb_bcache *c, uint64_t *checked, uint64_t *trusted);
/* Bytes of buffers the cache holds (rebuilt bases and bases being rebuilt). */
uint64_t lb_bcache_held(struct lb_bcache *c);
/* Drops every base no reader holds (an idle daemon: lb_store_trim). */
void lb_bcache_trim(struct lb_bcache *c);
/* While backups run (running: from the first batch buffer taken to the
 * last given back) the cache keeps three quarters of its size: the
 * backups' batch buffers take the rest.  Measured on the bench's 1 GiB
 * set (bench/RESULTS.md): backups encode as fast with 12 MiB as with 16,
 * their peak 4-5 MiB lower; restores of deep chains need the 16 (12: +15%
 * CPU for everything, one file 20% slower). */
#define LB_BCACHE_BACKUP_PART(full) ((full) / 4 * 3)
void lb_bcache_backups(struct lb_bcache *c, int running);
/* The cache's size now. */
uint64_t lb_bcache_cap(struct lb_bcache *c);
/* 1 when the bytes the cache counts are the buffers of its entries (for
 * tests; always 1 while a base is being rebuilt). */
int lb_bcache_consistent(struct lb_bcache *c);
/* Decodes chunk id into dst (size bytes), rebuilding delta chains.  Sets
 * *checked to 1 when the frame it came from checked the result (codec.h,
 * lb_zstd_checked); else the caller checks the result against the id. */
int lb_store_rebuild_chunk(struct lb_store *s, const struct lb_id *id, uint8_t *dst, uint32_t size,
			   int *checked);
/* Decodes a delta blob as found in a pack read whole (check): the footer
 * entry e, its payload (the base ids just before it), through its own
 * bases.  The caller checks the result against the id. */
int lb_store_decode_delta_blob(struct lb_store *s, const struct lb_pack_entry *e, const uint8_t *payload,
			       uint8_t *dst, const char *where);
/* Decodes a plain (codec 0 or 1) blob into dst (store.c); *checked as for
 * lb_store_rebuild_chunk. */
int lb_store_decode_plain(struct lb_store *s, const struct lb_pack_id *pid, const struct lb_pack_entry *pe,
			  uint8_t *dst, int *checked);
/* The base ids a chunk names (none unless it is a delta); -ENOENT when the
 * index does not hold it, -EBADMSG when its blob is unreadable. */
int lb_store_chunk_bases(struct lb_store *s, const struct lb_id *id, struct lb_id *bases, unsigned *n);
/* Calls fn once for every chunk in id's chains (its bases, their bases...),
 * id itself excluded.  -EBADMSG when a link cannot be read. */
typedef int (*lb_closure_fn)(void *arg, const struct lb_id *id);
int lb_store_closure(struct lb_store *s, const struct lb_id *id, lb_closure_fn fn, void *arg);
/* What a new chunk is tried against: a slice of its bases' plaintexts
 * laid end to end. */
#define LB_DELTA_MAX_BASES 8 /* bases a backup names at most */
#define LB_DELTA_HDR 12 /* payload: u32 skip, u32 len, u32 version, zstd frame */
struct lb_delta_ref {
	unsigned nbases;
	uint32_t skip, len;
	uint32_t version; /* of the chunk made against it (set by lb_store_delta_plan) */
	struct lb_id bases[LB_BLOB_MAX_BASES];
};
/* The radix of the skip-delta rule a store uses unless told otherwise
 * (delta.c's planning comment says why 8). */
#define LB_DELTA_RADIX 8
/* Turns a reference to the previous version's chunks into the one a new
 * chunk is made against, by the skip-delta rule (delta.c): version n is
 * made against n with its lowest non-zero digit in base delta_radix
 * cleared, found by following the previous version's chains down.  Sets
 * ref->version to n. */
void lb_store_delta_plan(struct lb_store *s, struct lb_delta_ref *ref, uint64_t margin);
/* The version version n is made against: n with its lowest non-zero digit
 * in base radix cleared (radix 2: Subversion's skip-deltas). */
uint32_t lb_delta_skip_base(uint32_t n, unsigned radix);
/* Compresses data as a delta against the reference; *out is the whole
 * payload (thread-local).  -E2BIG when rebuilding the result would decode
 * more than max_cost chunks (itself included; *cost says how many),
 * -ESTALE when a chunk of its chains is gone, -EBADMSG when a base cannot
 * be rebuilt. */
int lb_store_delta_encode(struct lb_store *s, const struct lb_delta_ref *ref, const void *data, size_t len,
			  unsigned max_cost, void **out, size_t *outlen, unsigned *cost);

/* Stores one blob unless the store already holds it (in the index or in a
 * pack still being written).  Sets *is_new and the stored size. */
int lb_store_put_blob(struct lb_store *s, int type, const struct lb_id *id, const void *data,
		      size_t len, int *is_new, uint32_t *stored_out);
/* Hashing is done by the caller; *stored_out is the blob's bytes after its
 * header (payload and any base list) whether it was new or already held. */
/* The same for a data chunk that may be stored as a delta against bases
 * (the chunks of the file's previous version around the same place).
 * *is_delta tells whether the blob held or stored is a delta. */
int lb_store_put_chunk(struct lb_store *s, int type, const struct lb_id *id, const void *data, size_t len,
		       const struct lb_delta_ref *ref, int *is_new, uint32_t *stored_out, int *is_delta);
/* A blob appended to an open pack: 1 and its bases (n = 0 for a plain
 * one), or 0 when id is not pending. */
int lb_store_pending_bases(struct lb_store *s, const struct lb_id *id, struct lb_id *bases, unsigned *n);
/* References (lb_index_lookup_ref) every chunk of id's chains; -ENOENT
 * when one is gone (or hidden by a collection). */
int lb_store_ref_closure(struct lb_store *s, const struct lb_id *id);
/* Seals every open pack and writes an index run for all sealed packs. */
int lb_store_flush(struct lb_store *s);
struct lb_pool *lb_store_pool(struct lb_store *s);
/* Whether a pack this process sealed is still waiting for its index run. */
int lb_store_pack_unindexed(struct lb_store *s, const struct lb_pack_id *id);
/* Charges every tenant from scratch into a new table (for check). */
int lb_store_recount_usage(struct lb_store *s, struct lb_usage **out);

#endif
