/* lbstore - drives the engine directly, without the daemon.  Used by the
 * crash and corruption tests and by the engine benchmark; not installed.
 *
 *   lbstore init STORE [--avg BYTES] [--level N]
 *   lbstore backup STORE TENANT DATASET DIR...   prints the snapshot id
 *   lbstore restore STORE SNAP TARGET
 *   lbstore snapshots STORE
 *   lbstore ls STORE SNAP
 *   lbstore cat STORE SNAP PATH
 *   lbstore check STORE [--read-data]
 *   lbstore rebuild-index STORE
 *   lbstore stats STORE
 *
 * LUMBUNG_FAULT="N:eio|exit" makes the Nth durable step fail or crash. */
#include "config.h"

#include "calendar.h"
#include "fsutil.h"
#include "index.h"
#include "manifest.h"
#include "store.h"
#include "store_internal.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>

static int die(int r, const char *what)
{
	const char *d = lb_error_detail();
	fprintf(stderr, "lbstore: %s: %s%s%s\n", what, strerror(-r), *d ? ": " : "", d);
	return 1;
}

static int64_t ts_ns(struct timespec ts) { return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec; }

struct walk {
	struct lb_backup *b;
	struct {
		dev_t dev;
		ino_t ino;
		char *path;
	} *links;
	size_t nlinks, caplinks;
	uint8_t *buf;
};

static int read_xattrs(const char *full, struct lb_entry *e)
{
	char names[8192];
	ssize_t n = llistxattr(full, names, sizeof(names));
	if (n <= 0)
		return 0;
	for (char *p = names; p < names + n; p += strlen(p) + 1) {
		uint8_t val[65536];
		ssize_t vl = lgetxattr(full, p, val, sizeof(val));
		if (vl < 0)
			continue;
		struct lb_xattr *nx = realloc(e->xattrs, (e->nxattrs + 1) * sizeof(*nx));
		if (!nx)
			return -ENOMEM;
		e->xattrs = nx;
		nx[e->nxattrs].name = strdup(p);
		nx[e->nxattrs].value = malloc(vl ? (size_t)vl : 1);
		memcpy(nx[e->nxattrs].value, val, (size_t)vl);
		nx[e->nxattrs].len = (size_t)vl;
		e->nxattrs++;
	}
	return 0;
}

static int backup_file(struct walk *w, const char *full, struct lb_entry *e, const struct stat *st)
{
	int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Data extents (SEEK_DATA/SEEK_HOLE); a dense file has one. */
	off_t pos = 0;
	int sparse = 0;
	while (pos < st->st_size) {
		off_t d = lseek(fd, pos, SEEK_DATA);
		if (d < 0)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			h = st->st_size;
		if (d != 0 || h != st->st_size)
			sparse = 1;
		struct lb_extent *ne = realloc(e->extents, (e->nextents + 1) * sizeof(*ne));
		if (!ne) {
			close(fd);
			return -ENOMEM;
		}
		e->extents = ne;
		ne[e->nextents++] = (struct lb_extent){ (uint64_t)d, (uint64_t)(h - d) };
		pos = h;
	}
	if (!sparse && st->st_size > 0) {
		free(e->extents);
		e->extents = NULL;
		e->nextents = 0;
	}
	lseek(fd, 0, SEEK_SET);
	int r = lb_backup_file_begin(w->b, e);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (e->nextents == 0 && !sparse) {
		for (;;) {
			ssize_t n = read(fd, w->buf, 1 << 20);
			if (n < 0) {
				r = -errno;
				break;
			}
			if (n == 0)
				break;
			r = lb_backup_file_write(w->b, w->buf, (size_t)n);
			if (r < 0)
				break;
		}
	} else {
		for (size_t i = 0; r == 0 && i < e->nextents; i++) {
			uint64_t off = e->extents[i].off, left = e->extents[i].len;
			while (r == 0 && left > 0) {
				ssize_t n = pread(fd, w->buf, LB_MIN(left, 1u << 20), (off_t)off);
				if (n <= 0) {
					r = n < 0 ? -errno : -EIO;
					break;
				}
				r = lb_backup_file_write(w->b, w->buf, (size_t)n);
				off += (uint64_t)n;
				left -= (uint64_t)n;
			}
		}
	}
	close(fd);
	if (r < 0)
		return r;
	return lb_backup_file_end(w->b);
}

static int walk_dir(struct walk *w, const char *full, const char *rel)
{
	struct stat st;
	if (lstat(full, &st) < 0)
		return -errno;
	struct lb_entry e = { 0 };
	e.path = (char *)rel;
	e.mode = st.st_mode & 07777;
	e.uid = st.st_uid;
	e.gid = st.st_gid;
	e.mtime_ns = ts_ns(st.st_mtim);
	e.ctime_ns = ts_ns(st.st_ctim);
	e.size = (uint64_t)st.st_size;
	e.dev = st.st_dev;
	e.ino = st.st_ino;
	e.nlink = (uint32_t)st.st_nlink;
	int r = 0;
	char target[4096];
	if (*rel)
		r = read_xattrs(full, &e);
	if (S_ISDIR(st.st_mode)) {
		e.type = LB_FT_DIR;
		e.size = 0;
		if (*rel)
			r = lb_backup_add(w->b, &e);
		DIR *d = opendir(full);
		if (!d)
			return -errno;
		struct dirent *de;
		while (r == 0 && (de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char cf[4096], cr[4096];
			snprintf(cf, sizeof(cf), "%s/%s", full, de->d_name);
			snprintf(cr, sizeof(cr), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
			r = walk_dir(w, cf, cr);
		}
		closedir(d);
	} else if (S_ISREG(st.st_mode)) {
		e.type = LB_FT_REG;
		if (st.st_nlink > 1) {
			for (size_t i = 0; i < w->nlinks; i++) {
				if (w->links[i].dev == st.st_dev && w->links[i].ino == st.st_ino) {
					e.type = LB_FT_HARDLINK;
					e.link = w->links[i].path;
					e.size = 0;
					r = lb_backup_add(w->b, &e);
					e.link = NULL;
					goto out;
				}
			}
			w->links = realloc(w->links, (w->nlinks + 1) * sizeof(*w->links));
			w->links[w->nlinks].dev = st.st_dev;
			w->links[w->nlinks].ino = st.st_ino;
			w->links[w->nlinks].path = strdup(rel);
			w->nlinks++;
		}
		r = backup_file(w, full, &e, &st);
	} else if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(full, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		e.type = LB_FT_SYMLINK;
		e.link = target;
		r = lb_backup_add(w->b, &e);
		e.link = NULL;
	} else {
		e.type = S_ISCHR(st.st_mode) ? LB_FT_CHR : S_ISBLK(st.st_mode) ? LB_FT_BLK :
			 S_ISFIFO(st.st_mode) ? LB_FT_FIFO : LB_FT_SOCK;
		e.rdev_major = major(st.st_rdev);
		e.rdev_minor = minor(st.st_rdev);
		r = lb_backup_add(w->b, &e);
	}
out:
	e.path = NULL;
	lb_entry_clear(&e);
	return r;
}

/* A regular file being restored: the entry, its descriptor, and where in
 * its data extents the next byte goes. */
struct rfile {
	struct lb_entry e; /* first: the store hands &e back */
	int fd;
	size_t ext;
	uint64_t in_ext;
	char full[8192];
};

struct restore_ctx {
	struct lb_store *st;
	struct lb_mreader *mr;
	const char *target;
	int err;
};

static void set_meta(const char *full, const struct lb_entry *e)
{
	struct timespec times[2] = { { e->mtime_ns / 1000000000LL, e->mtime_ns % 1000000000LL },
				     { e->mtime_ns / 1000000000LL, e->mtime_ns % 1000000000LL } };
	if (e->type != LB_FT_SYMLINK) {
		for (size_t i = 0; i < e->nxattrs; i++)
			lsetxattr(full, e->xattrs[i].name, e->xattrs[i].value, e->xattrs[i].len, 0);
		chmod(full, e->mode);
	}
	utimensat(AT_FDCWD, full, times, AT_SYMLINK_NOFOLLOW);
}

/* Creates every entry up to the next regular file, which it opens and hands
 * to the store for its data. */
static int restore_next(void *arg, const struct lb_entry **out)
{
	struct restore_ctx *c = arg;
	for (;;) {
		struct rfile *f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		int r = lb_mreader_next(c->mr, &f->e);
		if (r <= 0) {
			free(f);
			return r;
		}
		struct lb_entry *e = &f->e;
		snprintf(f->full, sizeof(f->full), "%s/%s", c->target, e->path);
		r = 0;
		switch (e->type) {
		case LB_FT_REG:
			f->fd = open(f->full, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (f->fd < 0) {
				r = -errno;
				break;
			}
			*out = e;
			return 1;
		case LB_FT_DIR:
			if (mkdir(f->full, 0700) < 0 && errno != EEXIST)
				r = -errno;
			break;
		case LB_FT_SYMLINK:
			if (symlink(e->link, f->full) < 0)
				r = -errno;
			break;
		case LB_FT_HARDLINK: {
			char tgt[8192];
			snprintf(tgt, sizeof(tgt), "%s/%s", c->target, e->link);
			if (link(tgt, f->full) < 0)
				r = -errno;
			break;
		}
		case LB_FT_FIFO:
			if (mkfifo(f->full, e->mode) < 0)
				r = -errno;
			break;
		default:
			break; /* devices and sockets: not by this helper */
		}
		if (r == 0 && e->type != LB_FT_HARDLINK)
			set_meta(f->full, e);
		if (r < 0)
			fprintf(stderr, "lbstore: restore %s: %s\n", e->path, strerror(-r));
		lb_entry_clear(e);
		free(f);
		if (r < 0)
			return r;
	}
}

static int restore_data(void *arg, const struct lb_entry *e, const void *data, size_t len)
{
	struct rfile *f = (struct rfile *)e;
	const uint8_t *p = data;
	(void)arg;
	if (e->nextents == 0)
		return lb_write_all(f->fd, data, len);
	while (len > 0) {
		if (f->ext >= e->nextents)
			return -EBADMSG;
		const struct lb_extent *x = &e->extents[f->ext];
		size_t n = (size_t)LB_MIN((uint64_t)len, x->len - f->in_ext);
		if (pwrite(f->fd, p, n, (off_t)(x->off + f->in_ext)) != (ssize_t)n)
			return -errno;
		p += n;
		len -= n;
		f->in_ext += n;
		if (f->in_ext == x->len) {
			f->ext++;
			f->in_ext = 0;
		}
	}
	return 0;
}

static int restore_done(void *arg, const struct lb_entry *e)
{
	struct rfile *f = (struct rfile *)e;
	(void)arg;
	int r = 0;
	if (ftruncate(f->fd, (off_t)e->size) < 0)
		r = -errno;
	close(f->fd);
	if (r == 0)
		set_meta(f->full, e);
	lb_entry_clear(&f->e);
	free(f);
	return r;
}

static int restore(struct lb_store *st, struct lb_snapshot *snap, const char *target)
{
	struct restore_ctx c = { .st = st, .target = target };
	mkdir(target, 0755);
	c.mr = lb_store_tree_reader(st, snap);
	int r = lb_store_read_files(st, restore_next, restore_data, restore_done, &c);
	lb_mreader_free(c.mr);
	if (r < 0) {
		fprintf(stderr, "lbstore: restore: %s %s\n", strerror(-r), lb_error_detail());
		return r;
	}
	/* Directory times after their contents. */
	struct lb_entry e;
	c.mr = lb_store_tree_reader(st, snap);
	while (lb_mreader_next(c.mr, &e) == 1) {
		if (e.type == LB_FT_DIR) {
			char full[8192];
			snprintf(full, sizeof(full), "%s/%s", target, e.path);
			set_meta(full, &e);
		}
		lb_entry_clear(&e);
	}
	lb_mreader_free(c.mr);
	return 0;
}

static void problem(void *arg, const char *kind, const char *what)
{
	(void)arg;
	printf("%s: %s\n", kind, what);
}

static int write_out(void *arg, const void *data, size_t len)
{
	(void)arg;
	return fwrite(data, 1, len, stdout) == len ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: lbstore init|backup|restore|snapshots|ls|cat|check|forget|gc|rebuild-index|stats STORE ...\n");
		return 2;
	}
	lb_fault_from_env();
	const char *cmd = argv[1], *path = argv[2];
	if (!strcmp(cmd, "calendar")) {
		/* lbstore calendar EXPR N: the next N elapses from now. */
		struct lb_calendar cal;
		if (lb_calendar_parse(path, &cal) < 0) {
			fprintf(stderr, "lbstore: bad calendar expression\n");
			return 1;
		}
		int64_t t = (int64_t)time(NULL);
		for (int i = 0; i < (argc > 3 ? atoi(argv[3]) : 1); i++) {
			t = lb_calendar_next(&cal, t);
			printf("%lld\n", (long long)t);
		}
		return 0;
	}
	int r;
	if (!strcmp(cmd, "init")) {
		struct lb_store_params p;
		lb_store_params_default(&p);
		for (int i = 3; i + 1 < argc; i += 2) {
			if (!strcmp(argv[i], "--avg")) {
				p.chunk_avg = (uint32_t)strtoul(argv[i + 1], NULL, 0);
				p.chunk_min = p.chunk_avg / 4;
				p.chunk_max = p.chunk_avg * 4;
			} else if (!strcmp(argv[i], "--level")) {
				p.zstd_level = atoi(argv[i + 1]);
			} else if (!strcmp(argv[i], "--pack-size")) {
				p.pack_size = (uint32_t)strtoul(argv[i + 1], NULL, 0);
			}
		}
		r = lb_store_create(path, &p);
		return r < 0 ? die(r, "init") : 0;
	}
	if (!strcmp(cmd, "rebuild-index")) {
		/* Opening first refuses a store in use; a damaged index is
		 * exactly what is being repaired. */
		struct lb_store *st = NULL;
		r = lb_store_open(path, 0, &st);
		if (r < 0 && r != -EBADMSG)
			return die(r, "open");
		if (r == 0)
			lb_store_close(st);
		struct lb_backend *be;
		r = lb_backend_local_open(path, 0, &be);
		if (r < 0)
			return die(r, "open");
		uint64_t packs, chunks, bad;
		r = lb_index_rebuild(be, &packs, &chunks, &bad);
		lb_backend_free(be);
		if (r < 0)
			return die(r, "rebuild-index");
		printf("%llu packs, %llu chunks, %llu damaged packs skipped\n", (unsigned long long)packs,
		       (unsigned long long)chunks, (unsigned long long)bad);
		return 0;
	}
	struct lb_store *st;
	r = lb_store_open(path, 0, &st);
	if (r < 0)
		return die(r, "open");
	/* LBSTORE_DELTA=0 turns delta chunks off, LBSTORE_DELTA_MAX_COST=N
	 * sets the chain cap (tests and benchmarks). */
	const char *dv = getenv("LBSTORE_DELTA"), *dc = getenv("LBSTORE_DELTA_MAX_COST");
	lb_store_set_delta(st, !(dv && !strcmp(dv, "0")), dc ? (unsigned)strtoul(dc, NULL, 10) : 0);
	if (getenv("LBSTORE_DELTA_MARGIN"))
		st->delta_margin = strtoull(getenv("LBSTORE_DELTA_MARGIN"), NULL, 10);
	if (getenv("LBSTORE_DELTA_CACHE_MB")) {
		lb_bcache_free(st->bcache);
		st->bcache = lb_bcache_new(strtoull(getenv("LBSTORE_DELTA_CACHE_MB"), NULL, 10) << 20);
	}
	if (getenv("LBSTORE_DELTA_RADIX"))
		st->delta_radix = (unsigned)atoi(getenv("LBSTORE_DELTA_RADIX"));
	if (getenv("LBSTORE_DELTA_LEVEL"))
		st->delta_level = atoi(getenv("LBSTORE_DELTA_LEVEL"));
	int rc = 0;
	if (!strcmp(cmd, "backup") && argc >= 6) {
		struct lb_backup *b;
		r = lb_backup_begin(st, argv[3], argv[4], "localhost", &b);
		struct walk w = { .b = b, .buf = malloc(1 << 20) };
		for (int i = 5; r == 0 && i < argc; i++) {
			const char *base = strrchr(argv[i], '/');
			base = base && base[1] ? base + 1 : argv[i];
			r = argc == 6 ? walk_dir(&w, argv[i], "") : walk_dir(&w, argv[i], base);
		}
		struct lb_snapshot *snap = NULL;
		if (r == 0)
			r = lb_backup_commit(b, &snap);
		if (r < 0) {
			rc = die(r, "backup");
		} else {
			char hex[LB_SNAP_HEX];
			const struct lb_backup_stats *s = lb_backup_get_stats(b);
			printf("%s\n", lb_snap_id_hex(snap->id, hex));
			fprintf(stderr, "files %llu logical %llu new_chunks %llu new_stored %llu\n",
				(unsigned long long)s->files, (unsigned long long)s->logical,
				(unsigned long long)s->new_chunks, (unsigned long long)s->new_stored);
		}
		lb_snapshot_free(snap);
		lb_backup_free(b);
		for (size_t i = 0; i < w.nlinks; i++)
			free(w.links[i].path);
		free(w.links);
		free(w.buf);
	} else if (!strcmp(cmd, "snapshots")) {
		struct lb_snapshot **list;
		size_t n;
		r = lb_store_list_snapshots(st, NULL, NULL, &list, &n);
		for (size_t i = 0; r == 0 && i < n; i++) {
			char hex[LB_SNAP_HEX];
			printf("%s %s/%s %lld files=%llu\n", lb_snap_id_hex(list[i]->id, hex), list[i]->tenant,
			       list[i]->dataset, (long long)(list[i]->time_ns / 1000000000LL),
			       (unsigned long long)list[i]->nfiles);
		}
		if (r == 0)
			lb_snapshot_list_free(list, n);
		else
			rc = die(r, "snapshots");
	} else if ((!strcmp(cmd, "restore") && argc == 5) || (!strcmp(cmd, "ls") && argc == 4) ||
		   (!strcmp(cmd, "cat") && argc == 5)) {
		struct lb_snapshot *snap;
		r = lb_store_find_snapshot(st, NULL, argv[3], &snap);
		if (r < 0) {
			rc = die(r, argv[3]);
		} else if (!strcmp(cmd, "restore")) {
			r = restore(st, snap, argv[4]);
			if (getenv("LBSTORE_CACHE_STATS")) {
				uint64_t h, m;
				lb_bcache_stats(st->bcache, &h, &m);
				fprintf(stderr, "base cache: %llu hits, %llu misses\n", (unsigned long long)h,
					(unsigned long long)m);
			}
			if (r < 0)
				rc = die(r, "restore");
		} else if (!strcmp(cmd, "ls")) {
			struct lb_mreader *mr = lb_store_tree_reader(st, snap);
			struct lb_entry e;
			while ((r = lb_mreader_next(mr, &e)) == 1) {
				printf("%d %04o %llu %s\n", e.type, e.mode, (unsigned long long)e.size, e.path);
				lb_entry_clear(&e);
			}
			lb_mreader_free(mr);
			if (r < 0)
				rc = die(r, "ls");
		} else {
			struct lb_entry e;
			r = lb_store_lookup(st, snap, argv[4], &e);
			if (r == 0) {
				fprintf(stderr, "lbstore: %s: no such path\n", argv[4]);
				rc = 1;
			} else if (r < 0) {
				rc = die(r, "cat");
			} else {
				r = lb_store_read_file(st, &e, write_out, NULL);
				if (r < 0)
					rc = die(r, "cat");
				lb_entry_clear(&e);
			}
		}
		lb_snapshot_free(snap);
	} else if (!strcmp(cmd, "check")) {
		struct lb_check_result res;
		struct lb_check_options o = { 0 };
		for (int i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "--read-data"))
				o.read_data = 1;
			else if (!strcmp(argv[i], "--max-ns") && i + 1 < argc)
				o.max_ns = strtoll(argv[++i], NULL, 10);
		}
		r = lb_store_check_opts(st, &o, problem, NULL, &res);
		printf("packs %llu chunks %llu snapshots %llu files %llu errors %llu unindexed_packs %llu\n",
		       (unsigned long long)res.packs, (unsigned long long)res.chunks,
		       (unsigned long long)res.snapshots, (unsigned long long)res.files,
		       (unsigned long long)res.errors, (unsigned long long)res.unindexed_packs);
		if (o.read_data)
			printf("packs_read %llu position %llu total %llu done %d last %lld\n",
			       (unsigned long long)res.packs_read, (unsigned long long)res.pass_position,
			       (unsigned long long)res.pass_total, res.pass_done, (long long)res.last_full_pass);
		if (r == -EBADMSG)
			rc = 3;
		else if (r < 0)
			rc = die(r, "check");
	} else if (!strcmp(cmd, "forget") && argc == 4) {
		struct lb_snapshot *snap;
		r = lb_store_find_snapshot(st, NULL, argv[3], &snap);
		if (r == 0) {
			r = lb_store_forget(st, snap);
			lb_snapshot_free(snap);
		}
		if (r < 0)
			rc = die(r, "forget");
	} else if (!strcmp(cmd, "gc")) {
		struct lb_gc_options o = { .repack_below = 50 };
		for (int i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "--dry-run"))
				o.dry_run = 1;
			else if (!strcmp(argv[i], "--repack-below") && i + 1 < argc)
				o.repack_below = (unsigned)atoi(argv[++i]);
		}
		struct lb_gc_stats g;
		r = lb_store_gc(st, &o, &g);
		if (r < 0) {
			rc = die(r, "gc");
		} else {
			printf("snapshots %llu trees %llu live %llu dead %llu packs %llu deleted %llu repacked %llu "
			       "written %llu orphans %llu freed %llu written_bytes %llu damaged %llu\n",
			       (unsigned long long)g.snapshots, (unsigned long long)g.trees,
			       (unsigned long long)g.chunks_live, (unsigned long long)g.chunks_dead,
			       (unsigned long long)g.packs, (unsigned long long)g.packs_deleted,
			       (unsigned long long)g.packs_repacked, (unsigned long long)g.packs_written,
			       (unsigned long long)g.orphans, (unsigned long long)g.bytes_freed,
			       (unsigned long long)g.bytes_written, (unsigned long long)g.packs_damaged);
			fprintf(stderr, "gc times: mark %.3f s, sweep %.3f s, waited %.3f s\n", g.mark_ns / 1e9,
				g.sweep_ns / 1e9, g.wait_ns / 1e9);
		}
	} else if (!strcmp(cmd, "stats")) {
		struct lb_index *idx = lb_store_index(st);
		printf("chunks %llu runs %zu index_bytes %llu\n", (unsigned long long)lb_index_entries(idx),
		       lb_index_nruns(idx), (unsigned long long)lb_index_memory(idx));
	} else {
		fprintf(stderr, "lbstore: bad usage\n");
		rc = 2;
	}
	lb_store_close(st);
	if (getenv("LUMBUNG_FAULT_REPORT"))
		fprintf(stderr, "fault-steps %llu\n", (unsigned long long)lb_fault_steps());
	return rc;
}
