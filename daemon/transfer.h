/* transfer.h - delta transfer inside a backup: the signature of the parent's
 * version of a file, and patching a client's delta into the new version. */
#ifndef LB_TRANSFER_H
#define LB_TRANSFER_H

#include "manifest.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Answers SIGNATURE for path: OK(u8 available[, uv old size]), the
 * signature in DATA frames, END.  Not available when the parent (pmap, may
 * be NULL) has no dense regular file with data at path, or its data cannot
 * be read.  Returns 0 or the error of a send. */
int transfer_signature(struct lb_store *s, struct lb_mindex *pmap, const char *path, int fd);

struct xfer_patch;
/* Starts the new version e (a regular file of e->size bytes) in backup b
 * as a patch of the parent's version of e->path. */
int transfer_patch_begin(struct lb_store *s, struct lb_backup *b, struct lb_mindex *pmap, const struct lb_entry *e,
			 struct xfer_patch **out);
/* Feeds delta bytes.  A delta that does not apply is remembered, not
 * returned; only a failure of the backup itself is (negative errno). */
int transfer_patch_feed(struct xfer_patch *x, const void *data, size_t len);
/* Ends the delta: 1 when the patched file has the client's SHA-256 and
 * size and is now part of the backup, 0 when it was dropped (why says
 * why), or a negative errno when the backup failed. */
int transfer_patch_end(struct xfer_patch *x, const uint8_t sha[32], uint64_t size, char *why, size_t whylen);
void transfer_patch_free(struct xfer_patch *x);

#endif
