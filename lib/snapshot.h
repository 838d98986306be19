/* snapshot.h - snapshot heads: the small immutable object whose existence
 * is what makes a snapshot exist.
 *
 * A head names tenant, dataset, time, host and tags, carries the backup's
 * figures and lists the tree blobs of its manifest.  It ends with the
 * SHA-256 of everything before it; the snapshot id is the first 16 bytes of
 * that hash, and the object is named by the id, so a head proves both its
 * content and its name. */
#ifndef LB_SNAPSHOT_H
#define LB_SNAPSHOT_H

#include "format.h"
#include "manifest.h"

#include <stddef.h>
#include <stdint.h>

#define LB_SNAP_HEX (2 * LB_SNAP_ID_LEN + 1)
#define LB_NAME_MAX 64

struct lb_snapshot {
	uint8_t id[LB_SNAP_ID_LEN];
	char *tenant;
	char *dataset; /* the dataset's name within its tenant */
	char *host;
	int64_t time_ns;
	char **tags;
	size_t ntags;
	uint64_t nentries;     /* paths in the manifest */
	uint64_t nfiles;       /* regular files */
	uint64_t logical;      /* bytes of file data (holes excluded) */
	uint64_t new_chunks;   /* chunks this backup added to the store */
	uint64_t new_stored;   /* stored bytes this backup added */
	uint64_t tree_bytes;   /* raw bytes of the manifest */
	struct lb_tree_ref *tree;
	size_t ntree;
};

/* Tenant and dataset names: 1-64 of [a-z0-9_.-], starting with a letter
 * or digit.  They become parts of object names, so this is a security
 * boundary as well as a convention. */
int lb_name_valid(const char *name);

/* Serialises s, computes its id (written to s->id) and returns the object
 * bytes in out. */
int lb_snapshot_encode(struct lb_snapshot *s, struct lb_buf *out);
/* Parses and verifies a head; -EBADMSG when it is damaged,
 * -EPROTONOSUPPORT when it is newer.  s is zeroed first. */
int lb_snapshot_decode(const uint8_t *data, size_t len, struct lb_snapshot *s);
void lb_snapshot_clear(struct lb_snapshot *s);
void lb_snapshot_free(struct lb_snapshot *s);
/* Deep copy into a new snapshot (NULL on ENOMEM). */
struct lb_snapshot *lb_snapshot_dup(const struct lb_snapshot *s);

/* The object name "snapshots/<tenant>/<hex id>". */
void lb_snapshot_object_name(const struct lb_snapshot *s, char *buf, size_t len);
char *lb_snap_id_hex(const uint8_t id[LB_SNAP_ID_LEN], char out[LB_SNAP_HEX]);

#endif
