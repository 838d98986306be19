/* ingest.c - archive members as manifest entries; see ingest.h. */
#include "ingest.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int lb_ingest_clean_path(const char *in, char *out, size_t len)
{
	while (*in == '/' || (in[0] == '.' && in[1] == '/'))
		in += in[0] == '/' ? 1 : 2;
	snprintf(out, len, "%s", in);
	size_t n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
	/* Collapse "a//b" and "a/./b". */
	char *w = out;
	for (const char *r = out; *r;) {
		if (r[0] == '/' && (r[1] == '/' || (r[1] == '.' && (r[2] == '/' || r[2] == '\0')))) {
			r += r[1] == '/' ? 1 : 2;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	if (!*out || !strcmp(out, "."))
		return 1;
	return lb_path_valid(out) ? 0 : -EINVAL;
}

int64_t lb_time_ns(int64_t sec, long nsec)
{
	const int64_t ns = 1000000000LL;
	if (sec > INT64_MAX / ns)
		return INT64_MAX;
	if (sec < INT64_MIN / ns)
		return INT64_MIN;
	if (nsec < 0 || nsec >= ns) {
		sec += nsec / ns;
		nsec %= ns;
		if (nsec < 0) {
			nsec += ns;
			sec--;
		}
	}
	if (sec > (INT64_MAX - nsec) / ns)
		return INT64_MAX;
	if (sec < INT64_MIN / ns + 1)
		return INT64_MIN;
	return sec * ns + nsec;
}

int lb_ingest_entry(struct archive_entry *ae, const char *path, struct lb_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->path = (char *)path;
	switch (archive_entry_filetype(ae)) {
	case AE_IFREG: e->type = LB_FT_REG; break;
	case AE_IFDIR: e->type = LB_FT_DIR; break;
	case AE_IFLNK: e->type = LB_FT_SYMLINK; break;
	case AE_IFCHR: e->type = LB_FT_CHR; break;
	case AE_IFBLK: e->type = LB_FT_BLK; break;
	case AE_IFIFO: e->type = LB_FT_FIFO; break;
	case AE_IFSOCK: e->type = LB_FT_SOCK; break;
	default: return -EINVAL;
	}
	e->mode = archive_entry_perm(ae) & 07777;
	e->uid = (uint32_t)archive_entry_uid(ae);
	e->gid = (uint32_t)archive_entry_gid(ae);
	e->uname = (char *)archive_entry_uname(ae);
	e->gname = (char *)archive_entry_gname(ae);
	e->mtime_ns = lb_time_ns(archive_entry_mtime(ae), archive_entry_mtime_nsec(ae));
	e->ctime_ns = archive_entry_ctime_is_set(ae) ? lb_time_ns(archive_entry_ctime(ae), archive_entry_ctime_nsec(ae)) : 0;
	e->size = e->type == LB_FT_REG ? (uint64_t)archive_entry_size(ae) : 0;
	e->dev = archive_entry_dev_is_set(ae) ? archive_entry_dev(ae) : 0;
	e->ino = archive_entry_ino_is_set(ae) ? archive_entry_ino64(ae) : 0;
	e->nlink = archive_entry_nlink(ae);
	if (e->type == LB_FT_SYMLINK)
		e->link = (char *)archive_entry_symlink(ae);
	if (e->type == LB_FT_CHR || e->type == LB_FT_BLK) {
		e->rdev_major = archive_entry_rdevmajor(ae);
		e->rdev_minor = archive_entry_rdevminor(ae);
	}
	return 0;
}

void lb_ingest_meta(struct archive_entry *ae, struct lb_entry *e, struct lb_xattr *xa, size_t maxx,
		    char **acl_a, char **acl_d)
{
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(ae);
	while (e->nxattrs < maxx && archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
		xa[e->nxattrs].name = (char *)name;
		xa[e->nxattrs].value = (uint8_t *)value;
		xa[e->nxattrs].len = size;
		e->nxattrs++;
	}
	e->xattrs = e->nxattrs ? xa : NULL;
	*acl_a = *acl_d = NULL;
	if (archive_entry_acl_types(ae) & ARCHIVE_ENTRY_ACL_TYPE_POSIX1E) {
		*acl_a = archive_entry_acl_to_text(ae, NULL, ARCHIVE_ENTRY_ACL_TYPE_ACCESS);
		*acl_d = archive_entry_acl_to_text(ae, NULL, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT);
		e->acl_access = *acl_a;
		e->acl_default = *acl_d;
	}
}
