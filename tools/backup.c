/* backup.c - `lumbung backup`: walks paths (or reads an archive, or stdin)
 * with libarchive and streams entries and data to lumbungd.
 *
 * Files whose size, mtime, ctime and inode match the previous snapshot's
 * entry are not read: they are sent as REUSE and the daemon takes their data
 * from the previous snapshot. */
#include "client.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* The parent snapshot's entries, by path, for the unchanged-file test. */
struct prev {
	char *path;
	uint64_t size, ino;
	int64_t mtime, ctime;
	int type;
};

struct prev_map {
	struct prev *slots;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int prev_add(struct prev_map *m, struct lb_entry *e)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 1024;
		struct prev *ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].path)
				continue;
			size_t j = hash_str(m->slots[i].path) & (ncap - 1);
			while (ns[j].path)
				j = (j + 1) & (ncap - 1);
			ns[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = ns;
		m->cap = ncap;
	}
	size_t j = hash_str(e->path) & (m->cap - 1);
	while (m->slots[j].path)
		j = (j + 1) & (m->cap - 1);
	m->slots[j] = (struct prev){ .path = e->path, .size = e->size, .ino = e->ino,
				     .mtime = e->mtime_ns, .ctime = e->ctime_ns, .type = e->type };
	e->path = NULL;
	m->n++;
	return 0;
}

static const struct prev *prev_find(const struct prev_map *m, const char *path)
{
	if (!m->cap)
		return NULL;
	for (size_t j = hash_str(path) & (m->cap - 1); m->slots[j].path; j = (j + 1) & (m->cap - 1))
		if (!strcmp(m->slots[j].path, path))
			return &m->slots[j];
	return NULL;
}

static void prev_free(struct prev_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].path);
	free(m->slots);
}

struct job {
	struct client *c;
	struct prev_map prev;
	int have_parent;
	const char *what; /* for messages */
	uint64_t files, bytes, reused, sent;
	int64_t last_progress;
	int progress;
	struct lb_buf b;
	struct lb_extent *ext;
	size_t next, capext;
};

static void show_progress(struct job *j, int final)
{
	if (!j->progress)
		return;
	int64_t now = lb_mono_ns();
	if (!final && now - j->last_progress < 250000000LL)
		return;
	j->last_progress = now;
	char sz[32];
	fprintf(stderr, "\r%llu files, %s read, %llu unchanged%s", (unsigned long long)j->files,
		lb_format_size(sz, sizeof(sz), j->bytes), (unsigned long long)j->reused, final ? "\n" : "   ");
}

static int send_entry(struct job *j, int type, const struct lb_entry *e)
{
	lb_buf_reset(&j->b);
	lb_entry_encode(&j->b, e);
	return lb_frame_send_buf(j->c->fd, type, &j->b);
}

/* Cleans an archive member name into a manifest path: leading "/" and "./"
 * go, a trailing "/" goes; ".." is refused.  Returns 0, 1 for "skip" (the
 * root itself), or -EINVAL. */
static int clean_path(const char *in, char *out, size_t len)
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

static int to_entry(struct archive_entry *ae, const char *path, struct lb_entry *e)
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
	e->mtime_ns = (int64_t)archive_entry_mtime(ae) * 1000000000LL + archive_entry_mtime_nsec(ae);
	e->ctime_ns = archive_entry_ctime_is_set(ae) ?
		(int64_t)archive_entry_ctime(ae) * 1000000000LL + archive_entry_ctime_nsec(ae) : 0;
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

/* Fills e's xattrs and ACL texts (owned by the caller's arrays). */
static int add_meta(struct archive_entry *ae, struct lb_entry *e, struct lb_xattr *xa, size_t maxx,
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
	return 0;
}

static int add_extent(struct job *j, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (j->next > 0 && j->ext[j->next - 1].off + j->ext[j->next - 1].len == off) {
		j->ext[j->next - 1].len += len;
		return 0;
	}
	int r = lb_grow(&j->ext, &j->capext, j->next + 1, sizeof(*j->ext));
	if (r < 0)
		return r;
	j->ext[j->next++] = (struct lb_extent){ off, len };
	return 0;
}

/* Streams the data of the current archive member as DATA frames and ends
 * it with its sparse map. */
static int send_data(struct job *j, struct archive *a, uint64_t size, const char *path)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	j->next = 0;
	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (add_extent(j, (uint64_t)off, len) < 0)
			return -ENOMEM;
		const uint8_t *p = buf;
		while (len > 0) {
			size_t n = LB_MIN(len, (size_t)LB_DATA_CHUNK);
			int s = lb_frame_send(j->c->fd, LB_MSG_DATA, p, n);
			if (s < 0)
				return s;
			p += n;
			len -= n;
			j->bytes += n;
			j->sent += n;
		}
		show_progress(j, 0);
	}
	if (r != ARCHIVE_EOF) {
		fprintf(stderr, "lumbung: %s: %s: %s\n", j->what, path, archive_error_string(a));
		return -EIO;
	}
	if (j->next == 0 && size > 0) {
		/* All hole: send its last byte (a zero), so that the map says
		 * "sparse" and the restore makes a sparse file of the size. */
		static const uint8_t zero;
		int s = lb_frame_send(j->c->fd, LB_MSG_DATA, &zero, 1);
		if (s < 0)
			return s;
		if (add_extent(j, size - 1, 1) < 0)
			return -ENOMEM;
		j->sent += 1;
	}
	lb_buf_reset(&j->b);
	/* A dense file is one extent covering it; only a sparse map is sent. */
	int dense = j->next == 0 || (j->next == 1 && j->ext[0].off == 0 && j->ext[0].len == size);
	lb_buf_put_uv(&j->b, dense ? 0 : j->next);
	for (size_t i = 0; !dense && i < j->next; i++) {
		lb_buf_put_uv(&j->b, j->ext[i].off);
		lb_buf_put_uv(&j->b, j->ext[i].len);
	}
	lb_buf_put_uv(&j->b, size);
	return lb_frame_send_buf(j->c->fd, LB_MSG_FILE_END, &j->b);
}

/* Sends one archive member (from disk or from an archive). */
static int send_member(struct job *j, struct archive *a, struct archive_entry *ae, const char *path, int from_disk)
{
	struct lb_entry e;
	struct lb_xattr xa[256];
	char *acl_a, *acl_d;
	char link[4096];
	const char *hl = archive_entry_hardlink(ae);
	/* Archive readers give a hard link no file type of its own. */
	if (hl && archive_entry_filetype(ae) == 0)
		archive_entry_set_filetype(ae, AE_IFREG);
	if (to_entry(ae, path, &e) < 0) {
		fprintf(stderr, "lumbung: %s: %s: unsupported file type, skipped\n", j->what, path);
		return 0;
	}
	add_meta(ae, &e, xa, LB_ARRAY_SIZE(xa), &acl_a, &acl_d);
	int r = 0;
	if (hl) {
		int c = clean_path(hl, link, sizeof(link));
		if (c != 0) {
			fprintf(stderr, "lumbung: %s: %s: hard link to '%s' points outside the tree; refusing\n",
				j->what, path, hl);
			r = -EINVAL;
			goto out;
		}
		e.type = LB_FT_HARDLINK;
		e.link = link;
		e.size = 0;
	}
	if (e.type == LB_FT_REG) {
		j->files++;
		const struct prev *p = from_disk && j->have_parent ? prev_find(&j->prev, path) : NULL;
		if (p && p->type == LB_FT_REG && p->size == e.size && p->mtime == e.mtime_ns &&
		    p->ctime == e.ctime_ns && p->ino == e.ino) {
			j->reused++;
			r = send_entry(j, LB_MSG_REUSE, &e);
			goto out;
		}
		r = send_entry(j, LB_MSG_FILE, &e);
		if (r == 0)
			r = send_data(j, a, e.size, path);
	} else {
		r = send_entry(j, LB_MSG_ENTRY, &e);
	}
out:
	free(acl_a);
	free(acl_d);
	show_progress(j, 0);
	return r;
}

static int walk(struct job *j, const char *root, int single)
{
	struct archive *a = archive_read_disk_new();
	struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
	archive_entry_linkresolver_set_strategy(lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_read_disk_set_standard_lookup(a);
	archive_read_disk_set_behavior(a, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
	int r = 0;
	if (archive_read_disk_open(a, root) != ARCHIVE_OK) {
		fprintf(stderr, "lumbung: cannot read %s: %s\n", root, archive_error_string(a));
		r = -ENOENT;
	}
	/* Paths are relative to root (one path) or to its parent (several). */
	char base[4096];
	const char *slash = strrchr(root, '/');
	snprintf(base, sizeof(base), "%s", slash && slash[1] ? slash + 1 : root);
	size_t rootlen = strlen(root);
	while (r == 0) {
		struct archive_entry *ae = archive_entry_new();
		int ar = archive_read_next_header2(a, ae);
		if (ar == ARCHIVE_EOF) {
			archive_entry_free(ae);
			break;
		}
		if (ar < ARCHIVE_WARN) {
			fprintf(stderr, "lumbung: %s: %s\n", root, archive_error_string(a));
			archive_entry_free(ae);
			r = -EIO;
			break;
		}
		if (ar == ARCHIVE_WARN)
			fprintf(stderr, "lumbung: warning: %s\n", archive_error_string(a));
		const char *name = archive_entry_pathname(ae);
		char rel[8192], clean[8192];
		const char *sub = name + (strncmp(name, root, rootlen) == 0 ? rootlen : 0);
		while (*sub == '/')
			sub++;
		if (single && !*sub && archive_entry_filetype(ae) != AE_IFDIR)
			snprintf(rel, sizeof(rel), "%s", base); /* one file: keep its name */
		else if (single)
			snprintf(rel, sizeof(rel), "%s", sub);
		else
			snprintf(rel, sizeof(rel), "%s%s%s", base, *sub ? "/" : "", sub);
		if (archive_entry_filetype(ae) == AE_IFDIR)
			archive_read_disk_descend(a);
		int c = clean_path(rel, clean, sizeof(clean));
		if (c == 1) {
			archive_entry_free(ae);
			continue;
		}
		if (c < 0) {
			fprintf(stderr, "lumbung: %s: cannot store path '%s'\n", root, rel);
			archive_entry_free(ae);
			r = -EINVAL;
			break;
		}
		archive_entry_copy_pathname(ae, clean);
		struct archive_entry *spare = NULL;
		archive_entry_linkify(lr, &ae, &spare);
		if (ae)
			r = send_member(j, a, ae, clean, 1);
		archive_entry_free(ae);
		archive_entry_free(spare);
	}
	archive_entry_linkresolver_free(lr);
	archive_read_free(a);
	return r;
}

static int from_archive(struct job *j, const char *file)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	int r = 0;
	int ar = !strcmp(file, "-") ? archive_read_open_fd(a, 0, 1 << 20) : archive_read_open_filename(a, file, 1 << 20);
	if (ar != ARCHIVE_OK) {
		fprintf(stderr, "lumbung: cannot read archive %s: %s\n", file, archive_error_string(a));
		archive_read_free(a);
		return -EINVAL;
	}
	struct archive_entry *ae;
	while (r == 0 && (ar = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
		if (ar < ARCHIVE_WARN) {
			fprintf(stderr, "lumbung: archive %s is malformed or truncated: %s\n", file, archive_error_string(a));
			r = -EINVAL;
			break;
		}
		char clean[8192];
		const char *name = archive_entry_pathname(ae);
		int c = name ? clean_path(name, clean, sizeof(clean)) : -EINVAL;
		if (c == 1)
			continue;
		if (c < 0) {
			fprintf(stderr, "lumbung: archive %s: member '%s' has a '..' component or an empty name; refusing\n",
				file, name ? name : "");
			r = -EINVAL;
			break;
		}
		r = send_member(j, a, ae, clean, 0);
	}
	archive_read_free(a);
	return r;
}

static int from_stdin(struct job *j, const char *name)
{
	char clean[4096];
	if (clean_path(name, clean, sizeof(clean)) != 0) {
		fprintf(stderr, "lumbung: --stdin-name '%s' is not a valid relative path\n", name);
		return -EINVAL;
	}
	struct lb_entry e = { 0 };
	e.path = clean;
	e.type = LB_FT_REG;
	e.mode = 0640;
	e.uid = getuid();
	e.gid = getgid();
	e.mtime_ns = e.ctime_ns = lb_now_ns();
	int r = send_entry(j, LB_MSG_FILE, &e);
	uint8_t *buf = malloc(LB_DATA_CHUNK);
	if (!buf)
		return -ENOMEM;
	while (r == 0) {
		ssize_t n = read(0, buf, LB_DATA_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "lumbung: reading stdin: %s\n", strerror(errno));
			r = -EIO;
			break;
		}
		if (n == 0)
			break;
		r = lb_frame_send(j->c->fd, LB_MSG_DATA, buf, (size_t)n);
		j->bytes += (uint64_t)n;
		show_progress(j, 0);
	}
	free(buf);
	j->files = 1;
	if (r == 0) {
		lb_buf_reset(&j->b);
		lb_buf_put_uv(&j->b, 0);
		lb_buf_put_uv(&j->b, j->bytes); /* stdin's size is known only now */
		r = lb_frame_send_buf(j->c->fd, LB_MSG_FILE_END, &j->b);
	}
	return r;
}

static void backup_usage(FILE *f)
{
	fprintf(f,
		"Usage: lumbung backup --dataset TENANT/NAME [options] PATH...\n"
		"       lumbung backup --dataset TENANT/NAME --archive FILE|-\n"
		"       lumbung backup --dataset TENANT/NAME --stdin-name NAME < data\n"
		"\n"
		"Takes a snapshot of PATHs (with every file's metadata: owner, mode, times,\n"
		"xattrs, ACLs, hard links, sparse files, devices), of an archive in any format\n"
		"libarchive reads (tar, pax, cpio, zip; compressed or not), or of stdin as one\n"
		"file (e.g. pg_dump simpus | lumbung backup --dataset dinkes/simpus\n"
		"--stdin-name simpus.sql).  Files unchanged since the dataset's last snapshot\n"
		"(same size, mtime, ctime and inode) are not read again.\n"
		"\n"
		"  -d, --dataset TENANT/NAME  the dataset (TENANT may come from --tenant)\n"
		"  -a, --archive FILE|-       read an archive instead of the filesystem\n"
		"  -s, --stdin-name NAME      store stdin as the file NAME\n"
		"  -t, --tag TAG              tag the snapshot (repeatable)\n"
		"      --host NAME            host name recorded (default: this host)\n"
		"      --tenant T, --socket PATH, --config FILE, --json\n"
		"\n"
		"Prints the new snapshot's id.  Exit status: 0 committed, 1 failed (nothing is\n"
		"committed), 2 usage, 4 unknown tenant, 5 lumbungd unreachable.\n");
}

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "dataset", required_argument, NULL, 'd' },
		{ "archive", required_argument, NULL, 'a' },
		{ "stdin-name", required_argument, NULL, 's' },
		{ "tag", required_argument, NULL, 't' },
		{ "host", required_argument, NULL, 0x2001 },
		{ NULL, 0, NULL, 0 },
	};
	struct common co = { 0 };
	const char *dataset = NULL, *archive = NULL, *stdin_name = NULL, *host = NULL;
	const char *tags[64];
	size_t ntags = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:a:s:t:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		switch (c) {
		case 'd': dataset = optarg; break;
		case 'a': archive = optarg; break;
		case 's': stdin_name = optarg; break;
		case 't':
			if (ntags < LB_ARRAY_SIZE(tags))
				tags[ntags++] = optarg;
			break;
		case 0x2001: host = optarg; break;
		case 'h': backup_usage(stdout); return EXIT_OK;
		default:
			fprintf(stderr, "lumbung: try 'lumbung backup --help'\n");
			return EXIT_USAGE;
		}
	}
	int sources = (archive != NULL) + (stdin_name != NULL) + (optind < argc);
	if (!dataset || sources != 1) {
		fprintf(stderr, "lumbung backup: give --dataset and exactly one of PATH..., --archive or "
			"--stdin-name; try 'lumbung backup --help'\n");
		return EXIT_USAGE;
	}
	char tenant[LB_NAME_MAX + 1], name[LB_NAME_MAX + 1];
	if (split_dataset(dataset, co.tenant, tenant, name) < 0) {
		fprintf(stderr, "lumbung backup: '%s' is not a dataset name (TENANT/NAME, each 1-64 of a-z 0-9 _ . -)\n",
			dataset);
		return EXIT_USAGE;
	}
	char hostbuf[256];
	if (!host) {
		if (gethostname(hostbuf, sizeof(hostbuf)) < 0)
			snprintf(hostbuf, sizeof(hostbuf), "unknown");
		hostbuf[sizeof(hostbuf) - 1] = '\0';
		host = hostbuf;
	}
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct job j = { .c = &cl, .progress = progress_wanted() && !co.json };
	lb_buf_init(&j.b);
	lb_buf_put_str(&j.b, tenant);
	lb_buf_put_str(&j.b, name);
	lb_buf_put_str(&j.b, host);
	lb_buf_put_uv(&j.b, ntags);
	for (size_t i = 0; i < ntags; i++)
		lb_buf_put_str(&j.b, tags[i]);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_BACKUP, &j.b);
	if (r < 0 || client_read(&cl) < 0) {
		rc = EXIT_FAILED;
		goto out;
	}
	if (cl.f.type != LB_MSG_OK) {
		rc = client_unexpected(&cl, "backup start");
		goto out;
	}
	struct lb_rd rd;
	lb_frame_reader(&cl.f, &rd);
	j.have_parent = lb_rd_u8(&rd);
	/* Walking the filesystem: fetch the parent's metadata to skip
	 * unchanged files. */
	if (j.have_parent && !archive && !stdin_name) {
		r = lb_frame_send(cl.fd, LB_MSG_PARENT, NULL, 0);
		while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_ENTRY) {
			struct lb_entry e;
			lb_frame_reader(&cl.f, &rd);
			if (lb_entry_decode(&rd, &e) < 0) {
				r = -EPROTO;
				break;
			}
			if (e.type == LB_FT_REG) {
				r = prev_add(&j.prev, &e);
			} else if (e.type == LB_FT_HARDLINK && e.link) {
				/* Its target comes first in tree order: the link
				 * shares the target's inode and metadata. */
				const struct prev *t = prev_find(&j.prev, e.link);
				if (t) {
					e.type = LB_FT_REG;
					e.size = t->size;
					e.mtime_ns = t->mtime;
					e.ctime_ns = t->ctime;
					e.ino = t->ino;
					r = prev_add(&j.prev, &e);
				}
			}
			lb_entry_clear(&e);
		}
		if (r == 0 && cl.f.type != LB_MSG_END) {
			rc = client_unexpected(&cl, "parent listing");
			goto out;
		}
	}
	if (r == 0) {
		if (archive) {
			j.what = archive;
			r = from_archive(&j, archive);
		} else if (stdin_name) {
			j.what = "stdin";
			r = from_stdin(&j, stdin_name);
		} else {
			for (int i = optind; r == 0 && i < argc; i++) {
				j.what = argv[i];
				r = walk(&j, argv[i], argc - optind == 1);
			}
		}
	}
	if (r == -EPIPE || r == -ECONNRESET) {
		/* lumbungd stopped the backup: its reason is waiting. */
		show_progress(&j, 1);
		if (client_read(&cl) == 0 && cl.f.type == LB_MSG_ERROR)
			client_error(&cl);
		rc = EXIT_FAILED;
		goto out;
	}
	if (r < 0) {
		/* Tell the daemon to drop everything; nothing is committed.  Its
		 * answer comes once the failure is on record. */
		if (lb_frame_send(cl.fd, LB_MSG_ABORT, NULL, 0) == 0)
			lb_frame_read(cl.fd, &cl.f);
		show_progress(&j, 1);
		fprintf(stderr, "lumbung: backup of %s/%s failed; nothing was committed\n", tenant, name);
		rc = EXIT_FAILED;
		goto out;
	}
	show_progress(&j, 1);
	r = lb_frame_send(cl.fd, LB_MSG_COMMIT, NULL, 0);
	if (r < 0 || client_read(&cl) < 0) {
		rc = EXIT_FAILED;
		goto out;
	}
	while (cl.f.type == LB_MSG_WARNING) {
		char *w;
		lb_frame_reader(&cl.f, &rd);
		w = lb_rd_strdup(&rd, 1024);
		fprintf(stderr, "lumbung: warning: %s\n", w ? w : "?");
		free(w);
		if (client_read(&cl) < 0) {
			rc = EXIT_FAILED;
			goto out;
		}
	}
	if (cl.f.type != LB_MSG_COMMITTED) {
		rc = client_unexpected(&cl, "commit");
		if (rc != EXIT_NOTFOUND)
			rc = EXIT_FAILED;
		goto out;
	}
	struct lb_snapshot snap;
	lb_frame_reader(&cl.f, &rd);
	if (lb_proto_get_snapshot(&rd, &snap) < 0) {
		fprintf(stderr, "lumbung: malformed answer from lumbungd\n");
		rc = EXIT_FAILED;
		goto out;
	}
	uint64_t st[6];
	for (int i = 0; i < 6; i++)
		st[i] = lb_rd_uv(&rd);
	char hex[LB_SNAP_HEX], s1[32], s2[32], s3[32];
	lb_snap_id_hex(snap.id, hex);
	if (co.json) {
		printf("{\"id\":\"%s\",\"tenant\":", hex);
		json_str(stdout, snap.tenant);
		printf(",\"dataset\":");
		json_str(stdout, snap.dataset);
		printf(",\"time\":%lld,\"files\":%llu,\"bytes\":%llu,\"bytes_sent\":%llu,"
		       "\"chunks\":%llu,\"new_chunks\":%llu,\"new_bytes_stored\":%llu,\"unchanged_files\":%llu}\n",
		       (long long)(snap.time_ns / 1000000000LL), (unsigned long long)st[0],
		       (unsigned long long)st[1], (unsigned long long)j.sent, (unsigned long long)st[2],
		       (unsigned long long)st[3], (unsigned long long)st[4], (unsigned long long)st[5]);
	} else {
		printf("%s\n", hex);
		fprintf(stderr, "snapshot %.12s of %s/%s: %llu files, %s, %llu unchanged; sent %s, stored %s new\n",
			hex, snap.tenant, snap.dataset, (unsigned long long)st[0],
			lb_format_size(s1, sizeof(s1), st[1]), (unsigned long long)st[5],
			lb_format_size(s2, sizeof(s2), j.sent), lb_format_size(s3, sizeof(s3), st[4]));
	}
	lb_snapshot_clear(&snap);
	rc = EXIT_OK;
out:
	lb_buf_free(&j.b);
	free(j.ext);
	prev_free(&j.prev);
	client_close(&cl);
	return rc;
}
