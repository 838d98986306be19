/* index.h - the chunk index: chunk id -> (pack, offset, sizes, codec).
 *
 * The index is a short list of immutable sorted runs.  Every commit that
 * sealed packs writes one more run; when there are too many they are merged
 * into one.  Opening reads the runs (48 bytes per chunk, no hashing of the
 * packs); a damaged or lost index is rebuilt from the pack footers alone.
 * Lookups may run on many threads while one thread adds a run. */
#ifndef LB_INDEX_H
#define LB_INDEX_H

#include "backend.h"
#include "pack.h"

#include <stddef.h>
#include <stdint.h>

struct lb_index;

/* One sealed pack's entries, as handed to lb_index_add(). */
struct lb_index_pack {
	struct lb_pack_id id;
	const struct lb_pack_entry *entries;
	size_t n;
};

/* Loads every run under "index/".  Superseded runs left by an interrupted
 * merge are deleted.  -EBADMSG with a detail when a run is damaged. */
int lb_index_open(struct lb_backend *be, struct lb_index **out);
void lb_index_free(struct lb_index *idx);

/* Finds id; returns 1 and fills *pack and *e, or 0 when absent. */
int lb_index_lookup(struct lb_index *idx, const struct lb_id *id, struct lb_pack_id *pack,
		    struct lb_pack_entry *e);

/* Durably writes a run holding the entries of the given sealed packs and
 * makes it visible to lookups. */
int lb_index_add(struct lb_index *idx, const struct lb_index_pack *packs, size_t npacks);

/* Merges all runs into one (dropping duplicate ids); no-op for one run. */
int lb_index_compact(struct lb_index *idx);

/* Bytes of the blobs the index describes (header plus payload each). */
uint64_t lb_index_blob_bytes(struct lb_index *idx);

/* Number of distinct-run entries, runs, and bytes of memory held. */
uint64_t lb_index_entries(struct lb_index *idx);
size_t lb_index_nruns(struct lb_index *idx);
uint64_t lb_index_memory(struct lb_index *idx);

/* Calls cb for every entry (duplicates across runs included). */
typedef int (*lb_index_cb)(void *arg, const struct lb_pack_id *pack, const struct lb_pack_entry *e);
int lb_index_foreach(struct lb_index *idx, lb_index_cb cb, void *arg);

/* Rebuilds the index from the footers of every sealed pack in the store:
 * writes one new run superseding all existing ones, then deletes them.
 * Packs that are torn or damaged are skipped and counted in *bad_packs. */
int lb_index_rebuild(struct lb_backend *be, uint64_t *packs, uint64_t *chunks, uint64_t *bad_packs);

/* Like lb_index_lookup, for a backup that is about to reference the chunk:
 * while a collection marks, the entry found is kept alive. */
int lb_index_lookup_ref(struct lb_index *idx, const struct lb_id *id, struct lb_pack_id *pack,
			struct lb_pack_entry *e);

/* ---- garbage collection (lib/gc.c; doc/FORMAT.md section 14.6) ----
 *
 * lb_index_gc_begin takes the runs there are as the base and holds them:
 * no merge happens until the collection ends, and runs added meanwhile are
 * never collected.  Every base entry found through lb_index_lookup_ref or
 * lb_index_gc_mark from then on is marked live.  lb_index_gc_freeze makes
 * every unmarked base entry invisible to all lookups at one instant (dry:
 * only counts).  lb_index_gc_commit durably writes one run that merges the
 * base without its dead entries and without the packs in drop[], covering
 * the base runs, then filters the base runs in memory the same way (in
 * place: no second copy of the index) and ends the collection.
 * lb_index_gc_end ends a collection that did not commit (dead entries
 * become visible again).  Packs are numbered across the base runs, run by
 * run, in the order of their tables. */
struct lb_gc_pack {
	struct lb_pack_id id;
	uint64_t live, dead;             /* entries */
	uint64_t live_bytes, dead_bytes; /* blob bytes (header and payload) */
	uint32_t same_as;                /* the first row of the same pack (itself, but
					  * for a pack two runs list: then the figures
					  * are the sums over its rows) */
};
struct lb_gc_entry {
	uint32_t pack; /* number in the base */
	struct lb_pack_id pack_id;
	struct lb_pack_entry e;
};
int lb_index_gc_begin(struct lb_index *idx, uint64_t *entries, uint32_t *packs);
/* 1: marked in the base; 2: only in a newer run; 0: not in the index.
 * *delta_new is 1 when a delta entry of the base was marked just now, 2
 * when the entry is a delta in a newer run (its chains are then the
 * caller's to mark: a backup begun before the collection may have chosen
 * its bases before marking was on). */
int lb_index_gc_mark(struct lb_index *idx, const struct lb_id *id, int *delta_new);
/* *out: one row per base pack number (caller frees). */
int lb_index_gc_freeze(struct lb_index *idx, int dry, struct lb_gc_pack **out);
/* The live entries of the base packs with want[pack] set (caller frees). */
int lb_index_gc_live(struct lb_index *idx, const uint8_t *want, struct lb_gc_entry **out, size_t *n);
int lb_index_gc_commit(struct lb_index *idx, const uint8_t *drop, uint64_t *entries_left);
void lb_index_gc_end(struct lb_index *idx);
/* Calls cb for every pack id the index lists. */
int lb_index_foreach_pack(struct lb_index *idx, int (*cb)(void *arg, const struct lb_pack_id *id), void *arg);

#endif
