/* store.h - the store: packs, index, snapshots and the backup and read
 * paths over them.
 *
 * One process owns a store at a time (an exclusive lock; a second opener is
 * told "store in use by pid N").  Inside it, several backups may stream at
 * once: chunks are hashed and compressed on a shared thread pool, appended
 * to shared pack writers, and found by later chunks (of any backup) while
 * their pack is still open, so concurrent backups never store a chunk twice.
 *
 * Commit protocol of a backup: its data and tree blobs are appended to packs
 * -> every open pack is sealed (fsync, rename, fsync dir) -> an index run
 * naming them is written the same way -> the snapshot head is published
 * atomically.  Only the head makes a snapshot exist; a crash at any step
 * leaves the last committed state, plus unreferenced packs for a later GC. */
#ifndef LB_STORE_H
#define LB_STORE_H

#include "backend.h"
#include "manifest.h"
#include "snapshot.h"

#include <stddef.h>
#include <stdint.h>

struct lb_store;

struct lb_store_params {
	uint32_t chunk_min, chunk_avg, chunk_max;
	int zstd_level;     /* 1..19 */
	uint32_t pack_size; /* packs are sealed once they pass this size */
};

/* The defaults for new stores (chosen by measurement: doc/CHUNKING.md). */
void lb_store_params_default(struct lb_store_params *p);

/* Creates a new, empty store at path (the directory may exist but must not
 * hold a store).  -EEXIST when a store is already there. */
int lb_store_create(const char *path, const struct lb_store_params *p);

/* The same for a store anywhere a backend reaches (backend.h). */
struct lb_backend_conf;
int lb_store_create_at(const struct lb_backend_conf *where, const struct lb_store_params *p);

/* Opens a store, taking its lock and starting `threads` pool workers
 * (0 picks the number of CPUs).  Errors: -ENOENT (not a store),
 * -EPROTONOSUPPORT (newer format), -EBUSY (in use, detail names the pid),
 * -EBADMSG (damaged config or index). */
int lb_store_open(const char *path, unsigned threads, struct lb_store **out);
int lb_store_open_at(const struct lb_backend_conf *where, unsigned threads, struct lb_store **out);
/* Closes the store; uncommitted backups must be freed first. */
void lb_store_close(struct lb_store *s);
/* Frees the working memory that jobs leave for the next ones (the cache
 * of rebuilt delta bases; the codec contexts and decode buffers of ended
 * threads, pool.h): for a daemon with nothing to do.  Safe while jobs run;
 * they and the pool's workers keep theirs. */
void lb_store_trim(struct lb_store *s);

/* Whether opening rebuilt the index from the packs (a rados store whose
 * local index cache was missing or not the pool's), and what it found. */
int lb_store_index_rebuilt(const struct lb_store *s, uint64_t *packs, uint64_t *chunks, uint64_t *bad_packs);

const struct lb_store_params *lb_store_get_params(const struct lb_store *s);

/* Delta chunks (doc/FORMAT.md 6.1): a changed file's new chunks are also
 * tried as zstd deltas against its previous version's chunks around the
 * same place, and the smaller form is stored.  On by default; max_cost
 * caps the chunks decoded to rebuild one (0: LB_DELTA_MAX_COST), past
 * which a chunk is stored plainly.  Applies to backups begun later. */
#define LB_DELTA_MAX_COST 64
#define LB_DELTA_CACHE (16u << 20) /* bytes of rebuilt bases kept, 3/4 while backups run (bench: 16 MiB restores as fast as 128) */
void lb_store_set_delta(struct lb_store *s, int on, unsigned max_cost);
/* The zstd level (1..19) of chunks stored from now on, in place of the one
 * the store was created with (lumbung.conf's compression); deltas use it
 * too (lb_compress_delta: the same parameters for levels 1 to 3). */
void lb_store_set_level(struct lb_store *s, int level);
struct lb_backend *lb_store_backend(struct lb_store *s);
struct lb_index *lb_store_index(struct lb_store *s);

/* ---- snapshots ---------------------------------------------------------- */

/* Copies the list of snapshots (of one tenant, or all when tenant is NULL;
 * of one dataset when dataset is not NULL) sorted by time, oldest first.
 * Free with lb_snapshot_list_free. */
int lb_store_list_snapshots(struct lb_store *s, const char *tenant, const char *dataset,
			    struct lb_snapshot ***out, size_t *n);
void lb_snapshot_list_free(struct lb_snapshot **list, size_t n);

/* Resolves a snapshot name within tenant (NULL: any tenant): a unique prefix
 * of its hex id (at least 4 digits), "DATASET@latest" or "DATASET@YYYY-MM-DD"
 * (the newest of that UTC day), optionally prefixed with "TENANT/".
 * Returns 0 and a copy in *out, -ENOENT, or -EEXIST when a prefix is
 * ambiguous. */
int lb_store_find_snapshot(struct lb_store *s, const char *tenant, const char *name,
			   struct lb_snapshot **out);

/* Deletes a snapshot: its head object goes (durably), then it leaves the
 * catalog and its tenant's charge drops by exactly what only it held.  Its
 * blobs become garbage for a later GC.  -ENOENT when it does not exist,
 * -EACCES when it is protected. */
int lb_store_forget(struct lb_store *s, const struct lb_snapshot *snap);
/* Puts a legal hold on a snapshot (on = 1) or lifts it: a protected
 * snapshot is never removed (forget answers -EACCES, prune keeps it).  The
 * hold is an object of its own, durable before this returns.  -ENOENT when
 * the snapshot does not exist. */
int lb_store_protect(struct lb_store *s, const struct lb_snapshot *snap, int on);
/* 1 when protected, 0 when not, -errno when it cannot be told. */
int lb_store_is_protected(struct lb_store *s, const struct lb_snapshot *snap);

/* Number of heads that failed to load at open (damaged), for check. */
size_t lb_store_damaged_heads(struct lb_store *s, char ***names);

/* ---- backup --------------------------------------------------------------- */

struct lb_backup;

struct lb_backup_stats {
	uint64_t files;        /* regular files */
	uint64_t entries;      /* every path */
	uint64_t logical;      /* file bytes read */
	uint64_t chunks;       /* data chunks referenced */
	uint64_t new_chunks;   /* chunks (data and tree) stored by this backup */
	uint64_t new_stored;   /* their stored bytes */
	uint64_t reused_files; /* files referenced from a previous snapshot */
};

/* Starts a backup of tenant/dataset.  Names must pass lb_name_valid. */
int lb_backup_begin(struct lb_store *s, const char *tenant, const char *dataset, const char *host,
		    struct lb_backup **out);
/* Adds an entry that carries no new data: a directory, symlink, device,
 * fifo, hardlink, or a regular file whose chunks are already stored (e->chunks
 * listed; each must exist in the store, else -ENOENT). */
int lb_backup_add(struct lb_backup *b, const struct lb_entry *e);
/* Starts a regular file; its data follows with file_write and ends with
 * file_end.  e->chunks must be empty. */
int lb_backup_file_begin(struct lb_backup *b, const struct lb_entry *e);
int lb_backup_file_write(struct lb_backup *b, const void *data, size_t len);
int lb_backup_file_end(struct lb_backup *b);
/* Ends the current file like lb_backup_file_end, but leaves it out of the
 * snapshot (a delta transfer whose result did not check out; the client
 * sends the file again).  Its chunks stay in the store as garbage unless
 * something else references them. */
int lb_backup_file_drop(struct lb_backup *b);
/* Resuming an interrupted transfer of a large file.  lb_backup_file_partial
 * stores every chunk of the current file cut so far and gives the file's
 * path and those chunks (1; 0 when there is no file in progress or no
 * chunk of it; the caller frees both); the backup itself is then only good
 * for freeing.  lb_backup_file_prefix, right after lb_backup_file_begin,
 * makes chunks the store holds the start of the new file, charged like new
 * data; the data written next follows them.  -ENOENT when a chunk is gone
 * (a collection took it): nothing was added. */
int lb_backup_file_partial(struct lb_backup *b, char **path, struct lb_chunkref **c, size_t *n);
int lb_backup_file_prefix(struct lb_backup *b, const struct lb_chunkref *c, size_t n);
/* Records the final size of the current file and, for a sparse file, its
 * data extents (the data written is their bytes back to back; n = 0 for a
 * dense file).  Call before lb_backup_file_end when the size was not known
 * at lb_backup_file_begin or the file has holes. */
int lb_backup_file_set_layout(struct lb_backup *b, uint64_t size, const struct lb_extent *ext, size_t n);
/* Limits for this backup: the tenant's hard quota and the store's capacity
 * (0 = none).  A backup that would take the tenant's charge past quota, or
 * the store past capacity, fails with -EDQUOT and a detail naming tenant,
 * usage, limit and the amount needed; nothing of it is committed. */
void lb_backup_set_limits(struct lb_backup *b, uint64_t quota, uint64_t capacity);
/* Free space the store's filesystem must keep (so that prune and GC can
 * always run); a backup that would eat into it fails with -ENOSPC. */
void lb_backup_set_reserve(struct lb_backup *b, uint64_t reserve);
/* Bytes this backup adds to its tenant's charge so far (blobs the tenant's
 * snapshots do not reference yet).  lb_backup_settle first makes it
 * complete for all data given so far (manifest blobs excepted). */
uint64_t lb_backup_charge(struct lb_backup *b);
/* Stores every chunk cut so far; returns 0 or the first error. */
int lb_backup_settle(struct lb_backup *b);
/* Adds a tag to the snapshot. */
int lb_backup_tag(struct lb_backup *b, const char *tag);
/* Overrides the snapshot time (default: lb_now_ns() at begin). */
void lb_backup_set_time(struct lb_backup *b, int64_t time_ns);
const struct lb_backup_stats *lb_backup_get_stats(const struct lb_backup *b);
/* Commits: stores the manifest, seals packs, writes the index run and the
 * head.  On success *out (if not NULL) receives a copy of the new snapshot.
 * After any failure nothing of this backup is visible. */
int lb_backup_commit(struct lb_backup *b, struct lb_snapshot **out);
/* Frees a backup; one not committed is abandoned (its blobs become garbage). */
void lb_backup_free(struct lb_backup *b);

/* ---- reading --------------------------------------------------------------- */

/* Reads one chunk (data or tree) into buf, which holds exactly size bytes,
 * verifying its SHA-256.  -EBADMSG with a detail naming pack and offset when
 * it is corrupt or missing. */
int lb_store_read_chunk(struct lb_store *s, const struct lb_id *id, uint8_t *buf, uint32_t size);

/* Streams a regular file's data in order: sink(arg, data, len) is called for
 * consecutive pieces of the chunk stream (extents back to back).  Chunks are
 * fetched and verified in parallel ahead of the sink. */
typedef int (*lb_sink_fn)(void *arg, const void *data, size_t len);
int lb_store_read_file(struct lb_store *s, const struct lb_entry *e, lb_sink_fn sink, void *arg);

/* Reads the data of many files in order, fetching and verifying chunks on
 * the pool ahead of the caller and across file boundaries, so that a
 * restore of many small files keeps every core busy.  The store pulls
 * entries with next(): it returns 1 and an entry (which the caller keeps
 * alive until done() is called for it), 0 at the end, or -errno.  data() is
 * called for consecutive pieces of each entry's chunk stream, then done()
 * once per entry, in the order next() gave them; entries without chunks
 * get done() only.  Any negative return stops the read and is returned. */
typedef int (*lb_next_file_fn)(void *arg, const struct lb_entry **e);
typedef int (*lb_file_data_fn)(void *arg, const struct lb_entry *e, const void *data, size_t len);
typedef int (*lb_file_done_fn)(void *arg, const struct lb_entry *e);
int lb_store_read_files(struct lb_store *s, lb_next_file_fn next, lb_file_data_fn data,
			lb_file_done_fn done, void *arg);
/* The same, for salvage: a chunk that is missing or damaged does not stop
 * the read.  lost() is told the entry, where the chunk lies in its data
 * stream, its length and its id (hex), and data() then gets that many zero
 * bytes in its place. */
typedef int (*lb_file_lost_fn)(void *arg, const struct lb_entry *e, uint64_t off, uint32_t len, const char *id);
int lb_store_read_files_salvage(struct lb_store *s, lb_next_file_fn next, lb_file_data_fn data,
				lb_file_done_fn done, lb_file_lost_fn lost, void *arg);

/* A reader over the snapshot's manifest (free with lb_mreader_free). */
struct lb_mreader *lb_store_tree_reader(struct lb_store *s, const struct lb_snapshot *snap);
/* The same over n of a snapshot's tree blobs (one, for a collection). */
struct lb_mreader *lb_store_refs_reader(struct lb_store *s, const struct lb_tree_ref *refs, size_t n);
/* Prepares many lookups in a snapshot's manifest (lb_mindex_find), with a
 * bounded cache of its tree blobs. */
int lb_store_load_tree(struct lb_store *s, const struct lb_snapshot *snap, struct lb_mindex **out);
/* Looks up one path in a snapshot: 1 found, 0 absent, or -errno. */
int lb_store_lookup(struct lb_store *s, const struct lb_snapshot *snap, const char *path, struct lb_entry *e);

/* ---- usage ---------------------------------------------------------------------- */

struct lb_tenant_usage;
/* The tenant's charge and counts (see usage.h), kept up to date. */
void lb_store_tenant_usage(struct lb_store *s, const char *tenant, struct lb_tenant_usage *out);
/* Bytes only this tenant's snapshots reference. */
uint64_t lb_store_tenant_exclusive(struct lb_store *s, const char *tenant);
/* Bytes the store's packs occupy. */
uint64_t lb_store_physical(struct lb_store *s);

/* Where the store's bytes go.  The per-tenant exclusive bytes plus shared,
 * unreferenced and overhead add up to physical. */
struct lb_store_space {
	uint64_t physical;     /* every object of the store */
	uint64_t referenced;   /* distinct blobs some snapshot uses */
	uint64_t shared;       /* of those, used by more than one tenant */
	uint64_t unreferenced; /* blobs no snapshot uses (garbage for GC) */
	uint64_t overhead;     /* pack headers and footers, index, heads, logs */
	uint64_t free_bytes;   /* left on the filesystem */
	size_t ntenants;
	char **tenants;        /* owned by the struct */
	uint64_t *exclusive, *fair, *charged, *logical, *snapshots;
};
int lb_store_space(struct lb_store *s, struct lb_store_space *out);
void lb_store_space_clear(struct lb_store_space *sp);

/* ---- garbage collection (gc.c) -------------------------------------------------- */

struct lb_gc_options {
	int dry_run;           /* count only: nothing is changed */
	unsigned repack_below; /* rewrite packs whose live blobs are under this
				* percentage of their blob bytes; 0 never */
};

struct lb_gc_stats {
	uint64_t snapshots, trees;         /* snapshots marked, tree blobs walked */
	uint64_t chunks_live, chunks_dead; /* blobs in the index at the start */
	uint64_t packs;                    /* packs in the index at the start */
	uint64_t packs_deleted;            /* held nothing live */
	uint64_t packs_repacked;           /* live blobs copied, then deleted */
	uint64_t packs_written;            /* new packs the copies went to */
	uint64_t packs_damaged;            /* not repacked: a blob unreadable */
	uint64_t packs_missing;            /* indexed, but not in the store */
	uint64_t orphans;                  /* packs no index listed (crash leftovers) */
	uint64_t bytes_freed;              /* pack bytes deleted */
	uint64_t bytes_written;            /* pack bytes written by repacking */
	uint64_t bytes_dead_left;          /* garbage left in packs kept as they are */
	uint64_t backups_waited;           /* older backups it waited for */
	int64_t wait_ns, mark_ns, sweep_ns;
	char problem[320];                 /* the first thing left undone, "" none */
};

/* Collects garbage (see gc.c and doc/FORMAT.md 14.6): backups may run all
 * the while.  -EBUSY when another collection or a check runs; -EBADMSG (with
 * a detail, nothing deleted) when a snapshot's references cannot be read. */
int lb_store_gc(struct lb_store *s, const struct lb_gc_options *o, struct lb_gc_stats *st);

/* ---- verification ------------------------------------------------------------ */

struct lb_check_options {
	int read_data;  /* read every stored byte (of the slice) */
	int64_t max_ns; /* with read_data: stop reading packs after this long and
			 * resume there next time (0: a whole pass) */
};

struct lb_check_result {
	uint64_t packs, chunks, snapshots, files;
	/* The read-data pass: packs read by this run, where the pass stands
	 * after it (of how many packs), whether this run finished it, and when
	 * a pass last finished (ns, 0 never). */
	uint64_t packs_read, pass_position, pass_total;
	int pass_done;
	int64_t last_full_pass;
	uint64_t bytes_read;      /* pack bytes read with read_data */
	uint64_t errors;          /* problems reported */
	uint64_t unindexed_packs; /* sealed packs no index run names (garbage) */
	uint64_t torn_packs;      /* packs never sealed or with damaged trailers */
	uint64_t usage_mismatch;  /* tenants whose kept charge differs from a recount */
};

/* A problem found by check: kind is one of "pack", "index", "chunk",
 * "snapshot", "file"; what is one line naming it. */
typedef void (*lb_problem_fn)(void *arg, const char *kind, const char *what);

/* Checks structure (every pack footer against the index, every snapshot's
 * manifest and every chunk it references) and, with read_data, every byte
 * of every pack (re-hashing each chunk).  Each damaged chunk is traced to the
 * snapshots and files that use it.  Returns 0 when clean, -EBADMSG when any
 * problem was found, or another -errno when check itself could not run.
 * With o->max_ns, the packs are read in id order from where the previous
 * such run stopped (the store's "verify" object, FORMAT.md 3.8) until the
 * time is up, so that runs at intervals read the whole store; a pass wraps
 * around at the end.  A run without max_ns reads every pack and counts as a
 * finished pass. */
int lb_store_check_opts(struct lb_store *s, const struct lb_check_options *o, lb_problem_fn problem, void *arg,
			struct lb_check_result *res);
int lb_store_check(struct lb_store *s, int read_data, lb_problem_fn problem, void *arg,
		   struct lb_check_result *res);

#endif
