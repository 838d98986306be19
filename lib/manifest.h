/* manifest.h - the tree of a snapshot: one entry per path with its full
 * metadata and, for regular files, the list of chunks holding the data.
 *
 * Entries are kept in "tree order" (lb_path_cmp: a directory is followed by
 * everything below it), serialised as varint records and cut into tree
 * blobs at entry boundaries by a content-defined rule, so that a nightly
 * snapshot of a mostly unchanged tree stores only the blobs that changed.
 * Each tree blob's first path is kept in the snapshot head, so a single path
 * is found by reading one or two blobs. */
#ifndef LB_MANIFEST_H
#define LB_MANIFEST_H

#include "hash.h"

#include <stddef.h>
#include <stdint.h>

enum lb_ftype {
	LB_FT_REG = 1,
	LB_FT_DIR = 2,
	LB_FT_SYMLINK = 3,
	LB_FT_HARDLINK = 4, /* link = path of the entry it links to */
	LB_FT_CHR = 5,
	LB_FT_BLK = 6,
	LB_FT_FIFO = 7,
	LB_FT_SOCK = 8,
};

struct lb_xattr {
	char *name;
	uint8_t *value;
	size_t len;
};

struct lb_extent {
	uint64_t off, len;
};

struct lb_chunkref {
	struct lb_id id;
	uint32_t size;
};

/* One path in a snapshot.  All pointers are owned by the entry and freed by
 * lb_entry_clear(); NULL strings mean "not present". */
struct lb_entry {
	char *path; /* relative, '/'-separated, no "." or ".." components */
	int type;
	uint32_t mode; /* permission and set-id bits (07777) */
	uint32_t uid, gid;
	char *uname, *gname;
	int64_t mtime_ns, ctime_ns;
	uint64_t size; /* logical file size (holes included) */
	uint64_t dev, ino;
	uint32_t nlink;
	char *link; /* symlink target, or hardlink target path */
	uint32_t rdev_major, rdev_minor;
	struct lb_xattr *xattrs;
	size_t nxattrs;
	char *acl_access, *acl_default; /* POSIX.1e ACL text */
	/* Data extents of a sparse file, in order; empty for a dense file.  The
	 * chunks hold the extents' bytes back to back. */
	struct lb_extent *extents;
	size_t nextents;
	struct lb_chunkref *chunks;
	size_t nchunks;
};

/* Frees everything the entry owns and zeroes it. */
void lb_entry_clear(struct lb_entry *e);
/* Deep copy; returns 0 or -ENOMEM (dst is zeroed on failure). */
int lb_entry_copy(struct lb_entry *dst, const struct lb_entry *src);

/* Tree order: compares paths component by component ('/' sorts before any
 * other byte), so "a" < "a/z" < "a-b".  A depth-first walk that visits each
 * directory's names in byte order produces exactly this order. */
int lb_path_cmp(const char *a, const char *b);
/* Returns 1 when path is acceptable in a manifest: relative, not empty,
 * no empty, "." or ".." components, at most 4095 bytes. */
int lb_path_valid(const char *path);

/* Serialises one entry as a record appended to b. */
struct lb_buf;
void lb_entry_encode(struct lb_buf *b, const struct lb_entry *e);
/* Decodes one record from rd into e (zeroed first).  Returns 0 or
 * -EBADMSG on malformed input (never reads past the input). */
struct lb_rd;
int lb_entry_decode(struct lb_rd *rd, struct lb_entry *e);

/* A tree blob of a snapshot, as listed in its head. */
struct lb_tree_ref {
	struct lb_id id;
	uint32_t size;
	char *first_path;
};
void lb_tree_refs_free(struct lb_tree_ref *refs, size_t n);

/* Stores one tree blob and returns its id (the store's put). */
typedef int (*lb_tree_put_fn)(void *arg, const void *data, size_t len, struct lb_id *id);
/* Loads one tree blob into a new buffer of exactly size bytes (caller frees). */
typedef int (*lb_tree_get_fn)(void *arg, const struct lb_id *id, uint32_t size, uint8_t **data);

struct lb_mwriter;
/* A manifest being built; entries may come in any order. */
struct lb_mwriter *lb_mwriter_new(void);
void lb_mwriter_free(struct lb_mwriter *w);
/* Adds an entry (copied).  A later entry with the same path replaces the
 * earlier one (as in a tar file that appends an update).  -EINVAL for an
 * invalid path. */
int lb_mwriter_add(struct lb_mwriter *w, const struct lb_entry *e);
uint64_t lb_mwriter_count(const struct lb_mwriter *w);
/* Past budget bytes of entries held in memory, sorted runs go to an
 * unlinked temporary file in dir (NULL: $TMPDIR, else /var/tmp), so memory
 * stays bounded however many entries a snapshot has; finish merges them
 * into the very blobs it would have made in memory.  budget 0 (the
 * default): never. */
int lb_mwriter_spill(struct lb_mwriter *w, const char *dir, size_t budget);
/* Bytes written to the temporary file so far. */
uint64_t lb_mwriter_spilled(const struct lb_mwriter *w);
/* Sorts, cuts and stores the tree blobs through put.  On success returns 0
 * and a new array of refs (free with lb_tree_refs_free). */
int lb_mwriter_finish(struct lb_mwriter *w, lb_tree_put_fn put, void *arg,
		      struct lb_tree_ref **refs, size_t *nrefs, uint64_t *nentries);

struct lb_mreader;
/* Reads the entries of a manifest in tree order, fetching blobs with get.
 * The refs array must outlive the reader. */
struct lb_mreader *lb_mreader_new(const struct lb_tree_ref *refs, size_t n, lb_tree_get_fn get, void *arg);
void lb_mreader_free(struct lb_mreader *r);
/* Positions the reader before the first entry whose path is >= path in
 * tree order, reading only the blob that can hold it. */
int lb_mreader_seek(struct lb_mreader *r, const char *path);
/* After an error (a tree blob unreadable or malformed) the reader stands at
 * the next blob: calling it again salvages the entries that follow, with
 * lb_mreader_blob() naming the blob that was lost. */
size_t lb_mreader_blob(const struct lb_mreader *r);
/* Next entry: returns 1 and fills e (clear it with lb_entry_clear), 0 at the
 * end, or a negative errno (-EBADMSG for a damaged manifest). */
int lb_mreader_next(struct lb_mreader *r, struct lb_entry *e);

/* Lookups of many paths of one snapshot (a backup's parent): tree blobs are
 * fetched through get as lookups need them and kept in a cache of bounded
 * size (16 MiB), so memory does not grow with the snapshot's files.  The
 * refs are copied; get and arg must outlive the index.  Thread-safe. */
struct lb_mindex;
int lb_mindex_load(const struct lb_tree_ref *refs, size_t n, lb_tree_get_fn get, void *arg,
		   struct lb_mindex **out);
/* Returns 1 and fills e (clear it), 0 when absent, or a negative errno
 * (-EBADMSG for a damaged tree blob, or get's error). */
int lb_mindex_find(struct lb_mindex *m, const char *path, struct lb_entry *e);
/* The cache's size in bytes (at least one blob is always kept). */
void lb_mindex_set_cache(struct lb_mindex *m, size_t bytes);
void lb_mindex_free(struct lb_mindex *m);

/* Finds one path; returns 1 and fills e, 0 when absent, or -errno. */
int lb_manifest_lookup(const struct lb_tree_ref *refs, size_t n, lb_tree_get_fn get, void *arg,
		       const char *path, struct lb_entry *e);

#endif
