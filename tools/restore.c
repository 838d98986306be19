/* restore.c - `lumbung restore` and `lumbung cat`: the daemon streams a
 * snapshot's entries and data; this side writes them through libarchive,
 * to disk with secure extraction (nothing outside the target, never through
 * a symlink, no ".." and no absolute names) or as a tar or zip stream. */
#include "client.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct sink {
	struct archive *a; /* write_disk or a writer; NULL for cat */
	int disk, zip;
	int to_stdout;
	struct lb_entry cur;
	int in_file;
	uint64_t off;  /* offset within the data stream of cur */
	size_t ext;    /* current extent (sparse files) */
	uint64_t in_ext;
	uint64_t files, bytes, errors;
	int salvage;
	int devices, setuid; /* create device nodes, keep setuid/setgid bits (root only) */
	uint64_t lost_bytes, lost_trees, damaged_files;
	char last_damaged[4096]; /* to count each damaged file once */
	int progress;
	int64_t last;
};

static struct archive_entry *make_entry(const struct lb_entry *e, int sparse)
{
	struct archive_entry *ae = archive_entry_new();
	archive_entry_set_pathname(ae, e->path);
	unsigned type = AE_IFREG;
	switch (e->type) {
	case LB_FT_DIR: type = AE_IFDIR; break;
	case LB_FT_SYMLINK: type = AE_IFLNK; break;
	case LB_FT_CHR: type = AE_IFCHR; break;
	case LB_FT_BLK: type = AE_IFBLK; break;
	case LB_FT_FIFO: type = AE_IFIFO; break;
	case LB_FT_SOCK: type = AE_IFSOCK; break;
	default: break;
	}
	archive_entry_set_filetype(ae, type);
	archive_entry_set_perm(ae, e->mode);
	archive_entry_set_uid(ae, e->uid);
	archive_entry_set_gid(ae, e->gid);
	if (e->uname)
		archive_entry_set_uname(ae, e->uname);
	if (e->gname)
		archive_entry_set_gname(ae, e->gname);
	archive_entry_set_mtime(ae, e->mtime_ns / 1000000000LL, e->mtime_ns % 1000000000LL);
	if (e->type == LB_FT_SYMLINK && e->link)
		archive_entry_set_symlink(ae, e->link);
	if (e->type == LB_FT_HARDLINK && e->link) {
		archive_entry_set_hardlink(ae, e->link);
		archive_entry_set_size(ae, 0);
	}
	if (e->type == LB_FT_REG)
		archive_entry_set_size(ae, (la_int64_t)e->size);
	/* A tar keeps the holes (a pax sparse map): a file of 1 TiB that is
	 * all hole exports as a few blocks, not as a terabyte of zeros. */
	for (size_t i = 0; sparse && e->type == LB_FT_REG && i < e->nextents; i++)
		archive_entry_sparse_add_entry(ae, (la_int64_t)e->extents[i].off, (la_int64_t)e->extents[i].len);
	if (e->type == LB_FT_CHR || e->type == LB_FT_BLK) {
		archive_entry_set_rdevmajor(ae, e->rdev_major);
		archive_entry_set_rdevminor(ae, e->rdev_minor);
	}
	for (size_t i = 0; i < e->nxattrs; i++)
		archive_entry_xattr_add_entry(ae, e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].len);
	if (e->acl_access)
		archive_entry_acl_from_text(ae, e->acl_access, ARCHIVE_ENTRY_ACL_TYPE_ACCESS);
	if (e->acl_default)
		archive_entry_acl_from_text(ae, e->acl_default, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT);
	return ae;
}

static void progress(struct sink *s, int final)
{
	if (!s->progress)
		return;
	int64_t now = lb_mono_ns();
	if (!final && now - s->last < 250000000LL)
		return;
	s->last = now;
	char sz[32];
	fprintf(stderr, "\r%llu files, %s restored%s", (unsigned long long)s->files,
		lb_format_size(sz, sizeof(sz), s->bytes), final ? "\n" : "   ");
}

/* Bytes of e that are holes. */
static uint64_t hole_bytes(const struct lb_entry *e)
{
	uint64_t data = 0;
	for (size_t i = 0; i < e->nextents; i++)
		data += e->extents[i].len;
	return e->nextents && data < e->size ? e->size - data : 0;
}

/* A zip has no holes: they would be written (and deflated) as zeros. */
#define ZIP_MAX_HOLES (1ULL << 30)

static int header(struct sink *s, const struct lb_entry *e)
{
	if (!s->a)
		return 0;
	struct lb_entry safe = *e;
	if (s->disk && (e->type == LB_FT_CHR || e->type == LB_FT_BLK) && !s->devices) {
		/* A snapshot's devices come from a tenant: a node for a raw
		 * disk, world-writable, would hand it to anyone. */
		fprintf(stderr, "lumbung: warning: %s: device node not created (%s)\n", shown(e->path),
			geteuid() == 0 ? "--devices creates them" : "only root can create them");
		return 2;
	}
	if (s->disk && (e->mode & 06000) && e->type != LB_FT_DIR && !s->setuid) {
		safe.mode &= ~06000u;
		fprintf(stderr, "lumbung: warning: %s: setuid/setgid bits dropped (%s)\n", shown(e->path),
			geteuid() == 0 ? "--setuid keeps them" : "only root can keep them");
	}
	if (!s->disk && s->zip && e->type == LB_FT_REG && hole_bytes(e) > ZIP_MAX_HOLES) {
		char h[32];
		fprintf(stderr, "lumbung: %s left out: %s of holes, which a zip cannot store; use --tar\n",
			shown(e->path), lb_format_size(h, sizeof(h), hole_bytes(e)));
		s->errors++;
		return 1;
	}
	struct archive_entry *ae = make_entry(&safe, !s->disk && !s->zip);
	int r = archive_write_header(s->a, ae);
	archive_entry_free(ae);
	if (r == ARCHIVE_WARN) {
		/* Written, but some metadata (an ACL, an xattr) could not be. */
		fprintf(stderr, "lumbung: warning: %s: %s\n", shown(e->path), shown(archive_error_string(s->a)));
		return 0;
	}
	if (r < ARCHIVE_WARN && !s->disk && r != ARCHIVE_FATAL && e->type != LB_FT_REG &&
	    e->type != LB_FT_DIR && e->type != LB_FT_SYMLINK && e->type != LB_FT_HARDLINK) {
		/* zip has no fifos, devices or sockets: leave them out. */
		fprintf(stderr, "lumbung: warning: %s left out: %s\n", shown(e->path), shown(archive_error_string(s->a)));
		return 1;
	}
	if (r < ARCHIVE_WARN) {
		/* Refused (a path through a symlink, "..", ...): skip it. */
		fprintf(stderr, "lumbung: %s: %s\n", shown(e->path), shown(archive_error_string(s->a)));
		s->errors++;
		return r == ARCHIVE_FATAL ? -EIO : 1; /* 1: skip its data */
	}
	return 0;
}

/* Writes n zero bytes to stdout (the holes of a sparse file for cat). */
static int zeros_out(uint64_t n)
{
	static const uint8_t zeros[65536];
	while (n > 0) {
		size_t z = (size_t)LB_MIN(n, sizeof(zeros));
		if (fwrite(zeros, 1, z, stdout) != z)
			return -EIO;
		n -= z;
	}
	return 0;
}

/* Writes zeros to an archive stream up to offset off of the current file. */
static int zeros_to(struct sink *s, uint64_t off)
{
	static const uint8_t zeros[1 << 20];
	while (s->off < off) {
		size_t z = (size_t)LB_MIN(off - s->off, sizeof(zeros));
		la_ssize_t w = archive_write_data(s->a, zeros, z);
		if (w <= 0)
			return -EIO;
		s->off += (uint64_t)w;
	}
	return 0;
}

/* Writes len bytes of the current file's data stream. */
static int data(struct sink *s, const uint8_t *p, size_t len)
{
	s->bytes += len;
	const struct lb_entry *e = &s->cur;
	if (s->to_stdout && e->nextents == 0)
		return fwrite(p, 1, len, stdout) == len ? 0 : -EIO;
	while (len > 0) {
		uint64_t off = s->off;
		size_t n = len;
		if (e->nextents) {
			if (s->ext >= e->nextents)
				return -EBADMSG;
			off = e->extents[s->ext].off + s->in_ext;
			n = (size_t)LB_MIN((uint64_t)len, e->extents[s->ext].len - s->in_ext);
		}
		la_ssize_t w;
		if (s->to_stdout) {
			/* cat: holes come out as the zeros they read as. */
			if (zeros_out(off - s->off) < 0 || fwrite(p, 1, n, stdout) != n)
				return -EIO;
			w = (la_ssize_t)n;
		} else if (s->disk) {
			w = archive_write_data_block(s->a, p, n, (la_int64_t)off);
			w = w < 0 ? w : (la_ssize_t)n;
		} else {
			/* A stream is written in order: the holes go as zeros,
			 * which a tar's sparse map skips again. */
			if (zeros_to(s, off) < 0)
				w = -1;
			else
				w = archive_write_data(s->a, p, n);
		}
		if (w < 0) {
			fprintf(stderr, "lumbung: %s: %s\n", shown(e->path), shown(archive_error_string(s->a)));
			return -EIO;
		}
		p += n;
		len -= n;
		s->off = off + n;
		if (e->nextents) {
			s->in_ext += n;
			if (s->in_ext == e->extents[s->ext].len) {
				s->ext++;
				s->in_ext = 0;
			}
		}
	}
	return 0;
}

static int finish_file(struct sink *s, int skipped)
{
	if (s->to_stdout && s->cur.nextents && s->off < s->cur.size && zeros_out(s->cur.size - s->off) < 0)
		return -EIO;
	if (s->a && !s->disk && !skipped && s->off < s->cur.size && zeros_to(s, s->cur.size) < 0) {
		fprintf(stderr, "lumbung: %s: %s\n", shown(s->cur.path), shown(archive_error_string(s->a)));
		s->errors++;
	}
	if (s->a && !(skipped && !s->disk) && archive_write_finish_entry(s->a) < ARCHIVE_WARN) {
		fprintf(stderr, "lumbung: %s: %s\n", shown(s->cur.path), shown(archive_error_string(s->a)));
		s->errors++;
	}
	lb_entry_clear(&s->cur);
	s->in_file = 0;
	s->files++;
	progress(s, 0);
	return 0;
}

/* Frames read ahead by a receiving thread, so that lumbungd keeps sending
 * (and decompressing) while this side writes files: a restore then costs the
 * larger of the two, not their sum.  A frame given back is the next one
 * filled (a stack), and the reader stops while FQ_AHEAD bytes wait: so
 * three buffers of a MiB carry a large file's stream, where sixteen faulted
 * in one by one were a third of a one-file restore's time. */
#define FQ_SLOTS 16
#define FQ_AHEAD (1u << 20)

struct fq {
	int fd;
	struct lb_frame fr[FQ_SLOTS];
	int rc[FQ_SLOTS];
	char detail[FQ_SLOTS][256];
	unsigned ring[FQ_SLOTS]; /* frames filled, in order */
	unsigned head, tail;     /* consume at head, fill at tail */
	unsigned spare[FQ_SLOTS], nspare; /* frames free, the last given back on top */
	size_t ahead; /* payload bytes filled and not yet consumed */
	int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *fq_reader(void *arg)
{
	struct fq *q = arg;
	for (;;) {
		pthread_mutex_lock(&q->mu);
		while ((q->nspare == 0 || q->ahead >= FQ_AHEAD) && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->stop) {
			pthread_mutex_unlock(&q->mu);
			return NULL;
		}
		unsigned k = q->spare[--q->nspare];
		pthread_mutex_unlock(&q->mu);
		int r = lb_frame_read(q->fd, &q->fr[k]);
		snprintf(q->detail[k], sizeof(q->detail[k]), "%s", r < 0 ? lb_error_detail() : "");
		pthread_mutex_lock(&q->mu);
		q->rc[k] = r;
		if (r == 1)
			q->ahead += q->fr[k].len;
		q->ring[q->tail % FQ_SLOTS] = k;
		q->tail++;
		pthread_cond_broadcast(&q->cv);
		pthread_mutex_unlock(&q->mu);
		if (r <= 0 || q->fr[k].type == LB_MSG_END || q->fr[k].type == LB_MSG_ERROR)
			return NULL;
	}
}

/* The next frame (valid until fq_done), or NULL after printing why the
 * stream broke. */
static struct lb_frame *fq_next(struct fq *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->head == q->tail)
		pthread_cond_wait(&q->cv, &q->mu);
	unsigned k = q->ring[q->head % FQ_SLOTS];
	int r = q->rc[k];
	pthread_mutex_unlock(&q->mu);
	if (r == 1)
		return &q->fr[k];
	if (r == 0)
		fprintf(stderr, "lumbung: lumbungd closed the connection\n");
	else
		fprintf(stderr, "lumbung: connection to lumbungd failed: %s%s%s\n", strerror(-r),
			*q->detail[k] ? ": " : "", q->detail[k]);
	return NULL;
}

static void fq_done(struct fq *q)
{
	pthread_mutex_lock(&q->mu);
	unsigned k = q->ring[q->head % FQ_SLOTS];
	if (q->rc[k] == 1)
		q->ahead -= q->fr[k].len;
	q->spare[q->nspare++] = k;
	q->head++;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* Consumes the stream after OK; returns the exit code. */
static int consume(struct fq *q, struct sink *s)
{
	int skip = 0;
	for (;;) {
		struct lb_frame *f = fq_next(q);
		if (!f)
			return EXIT_FAILED;
		struct lb_rd rd;
		int rc = -1;
		switch (f->type) {
		case LB_MSG_ENTRY:
		case LB_MSG_FILE: {
			struct lb_entry e;
			lb_frame_reader(f, &rd);
			if (lb_entry_decode(&rd, &e) < 0 || !lb_rd_done(&rd)) {
				fprintf(stderr, "lumbung: malformed entry from lumbungd\n");
				return EXIT_FAILED;
			}
			if (s->to_stdout && (f->type != LB_MSG_FILE || s->files > 0)) {
				fprintf(stderr, "lumbung: %s is not a regular file\n", s->files ? "the path" : shown(e.path));
				lb_entry_clear(&e);
				return EXIT_NOTFOUND;
			}
			int r = header(s, &e);
			if (r < 0) {
				lb_entry_clear(&e);
				return EXIT_FAILED;
			}
			if (f->type == LB_MSG_FILE) {
				s->cur = e;
				s->in_file = 1;
				s->off = 0;
				s->ext = 0;
				s->in_ext = 0;
				skip = r >= 1;
			} else {
				if (s->a && r == 0)
					archive_write_finish_entry(s->a);
				lb_entry_clear(&e);
			}
			break;
		}
		case LB_MSG_DATA:
			if (!s->in_file)
				return frame_unexpected(f, "restore");
			if (!skip && data(s, f->payload, f->len) < 0)
				return EXIT_FAILED;
			progress(s, 0);
			break;
		case LB_MSG_FILE_END:
			if (!s->in_file)
				return frame_unexpected(f, "restore");
			finish_file(s, skip);
			skip = 0;
			break;
		case LB_MSG_LOST: {
			/* Salvage: this part could not be read; zeros stand in its
			 * place in the file (or, for "", entries are missing). */
			lb_frame_reader(f, &rd);
			char *path = lb_rd_strdup(&rd, 4095);
			uint64_t off = lb_rd_uv(&rd), len = lb_rd_uv(&rd);
			char *what = lb_rd_strdup(&rd, 4096);
			if (!path || !what || !lb_rd_done(&rd) || !s->salvage) {
				free(path);
				free(what);
				return frame_unexpected(f, "restore");
			}
			if (s->progress)
				fputc('\n', stderr);
			if (!*path) {
				s->lost_trees++;
				fprintf(stderr, "lumbung: lost: %s\n", what);
			} else {
				if (strcmp(path, s->last_damaged) != 0) {
					s->damaged_files++;
					snprintf(s->last_damaged, sizeof(s->last_damaged), "%s", path);
				}
				s->lost_bytes += len;
				fprintf(stderr, "lumbung: damaged: %s: bytes %llu-%llu are zeros (%s)\n", shown(path),
					(unsigned long long)off, (unsigned long long)(off + len - 1), what);
			}
			free(path);
			free(what);
			break;
		}
		case LB_MSG_END:
			progress(s, 1);
			rc = s->errors ? EXIT_FAILED : EXIT_OK;
			if (s->salvage) {
				char a[32];
				fprintf(stderr, "lumbung: salvage: %llu files restored, %llu of them damaged (%s lost)%s%s\n",
					(unsigned long long)s->files, (unsigned long long)s->damaged_files,
					lb_format_size(a, sizeof(a), s->lost_bytes), s->lost_trees ? "; entries lost with " : "",
					s->lost_trees ? "unreadable tree blobs (listed above)" : "");
				if (rc == EXIT_OK && (s->damaged_files || s->lost_trees))
					rc = EXIT_DAMAGED;
			}
			break;
		default:
			rc = frame_unexpected(f, "restore");
		}
		fq_done(q);
		if (rc >= 0)
			return rc;
	}
}

/* Sends READ and consumes the stream into the sink. */
static int run_read(struct client *c, const char *tenant, const char *snap, char **paths, int npaths, struct sink *s)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, tenant);
	lb_buf_put_str(&b, snap);
	lb_buf_put_uv(&b, (uint64_t)npaths);
	for (int i = 0; i < npaths; i++)
		lb_buf_put_str(&b, paths[i]);
	if (s->salvage)
		lb_buf_put_u8(&b, 1);
	int r = lb_frame_send_buf(c->fd, LB_MSG_READ, &b);
	lb_buf_free(&b);
	if (r < 0 || client_read(c) < 0)
		return EXIT_FAILED;
	if (c->f.type != LB_MSG_OK)
		return client_unexpected(c, "restore");
	struct fq *q = calloc(1, sizeof(*q));
	if (!q)
		return EXIT_FAILED;
	q->fd = c->fd;
	for (unsigned i = 0; i < FQ_SLOTS; i++)
		q->spare[i] = FQ_SLOTS - 1 - i;
	q->nspare = FQ_SLOTS;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, fq_reader, q) != 0) {
		free(q);
		return EXIT_FAILED;
	}
	int rc = consume(q, s);
	/* Stop the reader: it may be waiting for a slot or for data. */
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	shutdown(c->fd, SHUT_RD);
	pthread_join(t, NULL);
	for (int i = 0; i < FQ_SLOTS; i++)
		lb_frame_free(&q->fr[i]);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
	return rc;
}

static void restore_usage(FILE *f)
{
	fprintf(f,
		"Usage: lumbung restore SNAPSHOT [PATH...] --target DIR\n"
		"       lumbung restore SNAPSHOT [PATH...] --tar FILE|-\n"
		"       lumbung restore SNAPSHOT [PATH...] --zip FILE\n"
		"\n"
		"Restores a whole snapshot, or the files and directories named by PATH, into\n"
		"DIR (created if missing) with their owner (when run as root), mode, times,\n"
		"xattrs, ACLs, hard links and holes; or writes them as a tar (pax) or zip\n"
		"archive.  Nothing is ever written outside DIR, whatever names the snapshot\n"
		"holds: '..' components, absolute names and paths through symlinks are refused,\n"
		"and existing files are not replaced.  Into DIR, device nodes are not created\n"
		"and setuid/setgid bits are dropped (a warning each) unless root asks:\n"
		"\n"
		"SNAPSHOT is a unique prefix of its id, TENANT/NAME@latest, or\n"
		"TENANT/NAME@YYYY-MM-DD (the newest of that UTC day).\n"
		"\n"
		"  -T, --target DIR   restore into DIR\n"
		"      --tar FILE|-   write a pax tar archive (- for stdout)\n"
		"      --zip FILE     write a zip archive\n"
		"      --devices      (root) create the snapshot's device nodes\n"
		"      --setuid       (root) keep setuid/setgid bits\n"
		"      --salvage      go on past missing or damaged data: every intact file\n"
		"                     is restored; a damaged file is restored with zeros\n"
		"                     where its data was lost, and listed on stderr with the\n"
		"                     byte ranges lost\n"
		"      --tenant T, --socket PATH, --config FILE\n"
		"\n"
		"Exit status: 0 restored, 1 failed (some entries could not be written),\n"
		"2 usage, 3 salvaged with damage (listed), 4 snapshot or path not found,\n"
		"5 lumbungd unreachable.\n");
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "target", required_argument, NULL, 'T' },
		{ "tar", required_argument, NULL, 0x2001 },
		{ "zip", required_argument, NULL, 0x2002 },
		{ "salvage", no_argument, NULL, 0x2003 },
		{ "devices", no_argument, NULL, 0x2004 },
		{ "setuid", no_argument, NULL, 0x2005 },
		{ NULL, 0, NULL, 0 },
	};
	int salvage = 0, devices = 0, setuid = 0;
	struct common co = { 0 };
	const char *target = NULL, *tar = NULL, *zip = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "T:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		switch (c) {
		case 'T': target = optarg; break;
		case 0x2001: tar = optarg; break;
		case 0x2002: zip = optarg; break;
		case 0x2003: salvage = 1; break;
		case 0x2004: devices = 1; break;
		case 0x2005: setuid = 1; break;
		case 'h': restore_usage(stdout); return EXIT_OK;
		default:
			fprintf(stderr, "lumbung: try 'lumbung restore --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc || (target != NULL) + (tar != NULL) + (zip != NULL) != 1) {
		fprintf(stderr, "lumbung restore: give a SNAPSHOT and exactly one of --target, --tar, --zip; "
			"try 'lumbung restore --help'\n");
		return EXIT_USAGE;
	}
	if ((devices || setuid) && (!target || geteuid() != 0)) {
		fprintf(stderr, "lumbung restore: --devices and --setuid need --target and root\n");
		return EXIT_USAGE;
	}
	const char *snap = argv[optind];
	struct sink s = { .progress = progress_wanted() && !(tar && !strcmp(tar, "-")), .salvage = salvage,
			  .devices = devices, .setuid = setuid, .zip = zip != NULL };
	int rc = EXIT_OK;
	if (target) {
		if (mkdir(target, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "lumbung: cannot create %s: %s\n", target, strerror(errno));
			return EXIT_FAILED;
		}
		if (chdir(target) < 0) {
			fprintf(stderr, "lumbung: cannot enter %s: %s\n", target, strerror(errno));
			return EXIT_FAILED;
		}
		s.a = archive_write_disk_new();
		s.disk = 1;
		int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_ACL |
			    ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
			    ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
			    ARCHIVE_EXTRACT_NO_OVERWRITE;
		if (geteuid() == 0)
			flags |= ARCHIVE_EXTRACT_OWNER;
		archive_write_disk_set_options(s.a, flags);
		archive_write_disk_set_standard_lookup(s.a);
	} else {
		s.a = archive_write_new();
		if (tar)
			archive_write_set_format_pax_restricted(s.a);
		else
			archive_write_set_format_zip(s.a);
		const char *out = tar ? tar : zip;
		int r = !strcmp(out, "-") ? archive_write_open_fd(s.a, 1) : archive_write_open_filename(s.a, out);
		if (r != ARCHIVE_OK) {
			fprintf(stderr, "lumbung: cannot write %s: %s\n", out, archive_error_string(s.a));
			archive_write_free(s.a);
			return EXIT_FAILED;
		}
	}
	struct client cl;
	rc = client_connect(&cl, &co);
	if (rc == 0)
		rc = run_read(&cl, co.tenant ? co.tenant : "", snap, argv + optind + 1, argc - optind - 1, &s);
	client_close(&cl);
	if (s.in_file)
		lb_entry_clear(&s.cur);
	if (archive_write_close(s.a) != ARCHIVE_OK && rc == EXIT_OK) {
		fprintf(stderr, "lumbung: %s\n", archive_error_string(s.a));
		rc = EXIT_FAILED;
	}
	archive_write_free(s.a);
	return rc;
}

int cmd_cat(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_OPTIONS, { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 'h') {
			printf("Usage: lumbung cat SNAPSHOT PATH\n\nWrites one file of a snapshot to stdout.\n"
			       "Exit status: 0, 1 failed, 2 usage, 4 not found (or not a file), 5 unreachable.\n");
			return EXIT_OK;
		}
		fprintf(stderr, "lumbung: try 'lumbung cat --help'\n");
		return EXIT_USAGE;
	}
	if (argc - optind != 2) {
		fprintf(stderr, "lumbung cat: give SNAPSHOT and PATH; try 'lumbung cat --help'\n");
		return EXIT_USAGE;
	}
	struct sink s = { .to_stdout = 1 };
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc == 0)
		rc = run_read(&cl, co.tenant ? co.tenant : "", argv[optind], argv + optind + 1, 1, &s);
	if (rc == EXIT_OK && s.files != 1) {
		fprintf(stderr, "lumbung: %s is not a regular file in %s\n", argv[optind + 1], argv[optind]);
		rc = EXIT_NOTFOUND;
	}
	client_close(&cl);
	if (s.in_file)
		lb_entry_clear(&s.cur);
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_FAILED;
	return rc;
}
