/* lbcut.c - the rebuilding half of the lost-write (power cut) tests.
 *
 *   lbcut init ROOT LOG     records ROOT as it is now (every directory's
 *                           entries, every file's content) as durable: the
 *                           state the test starts from
 *   lbcut image LOG OUT     builds in OUT (which must not exist) the tree a
 *                           power cut would leave: the initial state plus
 *                           what the fsync calls recorded by liblbcut.so
 *                           (lbcut-preload.c, which documents the log) made
 *                           durable, nothing more
 *
 * The rebuild starts at the root directory and takes, for every directory,
 * its entries at the last fsync of that directory, and for every file, its
 * content at the last fsync of that file.  A name that reached a durable
 * directory listing but whose file never had its content synced is an empty
 * file, what ext4 typically leaves; a directory never synced since it was
 * made is empty. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct id {
	unsigned long long ino;
	long long bs;
	unsigned bns;
};

struct entry {
	char type;
	struct id id;
	char *name;
};

struct listing {
	struct id dir;
	struct entry *e;
	size_t n;
};

struct content {
	struct id file;
	char *data; /* path under LOG */
};

static struct listing *lists;
static size_t nlists;
static struct content *files;
static size_t nfiles;
static struct id root_id;
static int have_root;
static unsigned long long ncopies;

static void die(const char *what, const char *on)
{
	fprintf(stderr, "lbcut: %s: %s: %s\n", what, on, errno ? strerror(errno) : "bad input");
	exit(1);
}

static int same(const struct id *a, const struct id *b)
{
	return a->ino == b->ino && a->bs == b->bs && a->bns == b->bns;
}

static void *grow(void *p, size_t n, size_t size)
{
	p = realloc(p, (n + 1) * size);
	if (!p)
		die("out of memory", "");
	return p;
}

/* ---- init --------------------------------------------------------------- */

static FILE *logfile;
static const char *logdir;

static void get_id(int dirfd, const char *name, struct id *id, mode_t *mode)
{
	struct statx st;
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH), STATX_INO | STATX_TYPE | STATX_BTIME,
		  &st) < 0)
		die("cannot stat", name);
	id->ino = st.stx_ino;
	id->bs = st.stx_btime.tv_sec;
	id->bns = st.stx_btime.tv_nsec;
	*mode = st.stx_mode;
}

static void copy_out(int dirfd, const char *name, const struct id *id)
{
	char rel[64], dst[4200];
	snprintf(rel, sizeof(rel), "d/init-%llu", ++ncopies);
	snprintf(dst, sizeof(dst), "%s/%s", logdir, rel);
	int in = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (in < 0 || out < 0)
		die("cannot copy", name);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die("cannot write", dst);
	if (n < 0)
		die("cannot read", name);
	close(in);
	close(out);
	fprintf(logfile, "F %llu %lld %u %s\n", id->ino, id->bs, id->bns, rel);
}

static void init_dir(int dirfd)
{
	struct id did;
	mode_t mode;
	get_id(dirfd, "", &did, &mode);
	int dup_fd = dup(dirfd);
	DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
	if (!d)
		die("cannot list", "directory");
	fprintf(logfile, "D %llu %lld %u\n", did.ino, did.bs, did.bns);
	struct dirent *e;
	char **subdirs = NULL;
	size_t nsub = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct id id;
		get_id(dirfd, e->d_name, &id, &mode);
		char type = S_ISDIR(mode) ? 'd' : S_ISREG(mode) ? 'f' : 'o';
		fprintf(logfile, "E %c %llu %lld %u %s\n", type, id.ino, id.bs, id.bns, e->d_name);
		if (type == 'd') {
			subdirs = grow(subdirs, nsub, sizeof(*subdirs));
			subdirs[nsub++] = strdup(e->d_name);
		}
	}
	fprintf(logfile, ".\n");
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		struct id id;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		get_id(dirfd, e->d_name, &id, &mode);
		if (S_ISREG(mode))
			copy_out(dirfd, e->d_name, &id);
	}
	closedir(d);
	for (size_t i = 0; i < nsub; i++) {
		int sub = openat(dirfd, subdirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0)
			die("cannot open", subdirs[i]);
		init_dir(sub);
		close(sub);
		free(subdirs[i]);
	}
	free(subdirs);
}

static int cmd_init(const char *rootpath, const char *log)
{
	char p[4200];
	logdir = log;
	snprintf(p, sizeof(p), "%s/d", log);
	if (mkdir(log, 0755) < 0 || mkdir(p, 0755) < 0)
		die("cannot make the log directory", log);
	snprintf(p, sizeof(p), "%s/log", log);
	logfile = fopen(p, "w");
	if (!logfile)
		die("cannot create", p);
	int fd = open(rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("cannot open", rootpath);
	struct id id;
	mode_t mode;
	get_id(fd, "", &id, &mode);
	fprintf(logfile, "R %llu %lld %u\n", id.ino, id.bs, id.bns);
	init_dir(fd);
	close(fd);
	if (fclose(logfile) != 0)
		die("cannot write", p);
	return 0;
}

/* ---- image -------------------------------------------------------------- */

static const struct listing *find_listing(const struct id *id)
{
	for (size_t i = nlists; i-- > 0;)
		if (same(&lists[i].dir, id))
			return &lists[i];
	return NULL;
}

static const char *find_content(const struct id *id)
{
	for (size_t i = nfiles; i-- > 0;)
		if (same(&files[i].file, id))
			return files[i].data;
	return NULL;
}

static void read_log(const char *log)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/log", log);
	FILE *f = fopen(p, "r");
	if (!f)
		die("cannot open", p);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct listing cur;
	int in_dir = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			break; /* the process died in the middle of this record */
		line[len - 1] = 0;
		struct id id;
		char type;
		int off = 0;
		if (in_dir) {
			if (strcmp(line, ".") == 0) {
				lists = grow(lists, nlists, sizeof(*lists));
				lists[nlists++] = cur;
				in_dir = 0;
			} else if (sscanf(line, "E %c %llu %lld %u %n", &type, &id.ino, &id.bs, &id.bns, &off) == 4 && off > 0) {
				cur.e = grow(cur.e, cur.n, sizeof(*cur.e));
				cur.e[cur.n].type = type;
				cur.e[cur.n].id = id;
				cur.e[cur.n].name = strdup(line + off);
				cur.n++;
			} else {
				die("malformed log line", line);
			}
		} else if (sscanf(line, "D %llu %lld %u", &id.ino, &id.bs, &id.bns) == 3) {
			cur.dir = id;
			cur.e = NULL;
			cur.n = 0;
			in_dir = 1;
		} else if (sscanf(line, "F %llu %lld %u %n", &id.ino, &id.bs, &id.bns, &off) == 3 && off > 0) {
			files = grow(files, nfiles, sizeof(*files));
			files[nfiles].file = id;
			files[nfiles].data = strdup(line + off);
			nfiles++;
		} else if (sscanf(line, "R %llu %lld %u", &id.ino, &id.bs, &id.bns) == 3) {
			root_id = id;
			have_root = 1;
		} else {
			die("malformed log line", line);
		}
	}
	free(line);
	fclose(f);
	if (!have_root)
		die("no root recorded (run lbcut init first)", p);
}

static void build(const char *log, const struct id *dir, const char *out, int depth)
{
	if (mkdir(out, 0755) < 0)
		die("cannot make", out);
	const struct listing *l = find_listing(dir);
	if (!l || depth > 64)
		return;
	for (size_t i = 0; i < l->n; i++) {
		char path[8192];
		snprintf(path, sizeof(path), "%s/%s", out, l->e[i].name);
		if (l->e[i].type == 'd') {
			build(log, &l->e[i].id, path, depth + 1);
		} else if (l->e[i].type == 'f') {
			int o = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (o < 0)
				die("cannot create", path);
			const char *data = find_content(&l->e[i].id);
			if (data) {
				char src[4200];
				snprintf(src, sizeof(src), "%s/%s", log, data);
				int in = open(src, O_RDONLY);
				if (in < 0)
					die("cannot open", src);
				char buf[65536];
				ssize_t n;
				while ((n = read(in, buf, sizeof(buf))) > 0)
					if (write(o, buf, (size_t)n) != n)
						die("cannot write", path);
				close(in);
			}
			close(o);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "init") == 0)
		return cmd_init(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "image") == 0) {
		read_log(argv[2]);
		build(argv[2], &root_id, argv[3], 0);
		return 0;
	}
	fprintf(stderr, "usage: lbcut init ROOT LOG | lbcut image LOG OUT\n");
	return 2;
}
