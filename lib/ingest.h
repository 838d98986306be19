/* ingest.h - archive members (libarchive entries) as manifest entries.
 *
 * `lumbung backup` reads a tree from disk or a tar/zip/cpio archive with
 * libarchive; these turn each member's name and metadata into an lb_entry.
 * An archive is untrusted input: names are cleaned and checked here, and
 * tests/fuzz/fuzz-archive.c drives these with hostile archives. */
#ifndef LB_INGEST_H
#define LB_INGEST_H

#include "manifest.h"

#include <stddef.h>

struct archive_entry;

/* Cleans an archive member name into a manifest path: leading "/" and "./"
 * go, a trailing "/" goes, "a//b" and "a/./b" collapse; ".." is refused.
 * Writes at most len bytes into out.  Returns 0, 1 for "skip" (the root
 * itself), or -EINVAL. */
int lb_ingest_clean_path(const char *in, char *out, size_t len);

/* Fills e (zeroed first) from ae's type and metadata, with e->path = path.
 * String fields point into ae (valid while ae is unchanged); e must not be
 * passed to lb_entry_clear().  Returns 0, or -EINVAL for a file type a
 * manifest cannot hold. */
int lb_ingest_entry(struct archive_entry *ae, const char *path, struct lb_entry *e);
/* Seconds and nanoseconds as nanoseconds since the epoch, held to what an
 * int64 can say (years 1677 to 2262): an archive header may carry any time,
 * a file system times past 2262. */
int64_t lb_time_ns(int64_t sec, long nsec);

/* Adds ae's extended attributes (at most maxx, into the caller's xa array,
 * pointing into ae) and its POSIX.1e ACL texts (*acl_a and *acl_d, new
 * strings the caller frees, or NULL) to e. */
void lb_ingest_meta(struct archive_entry *ae, struct lb_entry *e, struct lb_xattr *xa, size_t maxx,
		    char **acl_a, char **acl_d);

#endif
