/* lbcut-preload.c - the recording half of the lost-write (power cut) tests.
 *
 * Loaded with LD_PRELOAD into lumbungd or tests/lbstore.  It wraps fsync()
 * and fdatasync() and, for every file or directory under $LBCUT_ROOT,
 * records what that call made durable, in the log directory $LBCUT_LOG:
 *
 *   a regular file   its whole content at that instant, copied to
 *                    $LBCUT_LOG/d/PID-N, and a line
 *                    "F <ino> <btime s> <btime ns> d/PID-N"
 *   a directory      its entries at that instant, one line each
 *                    "E <type> <ino> <btime s> <btime ns> <name>" between
 *                    "D <ino> <btime s> <btime ns>" and "."
 *
 * Nothing else is durable: a write never followed by an fsync of its file,
 * a new name never followed by an fsync of its directory.  After the process
 * dies (SIGKILL at any instant, or $LBCUT_AT: _exit right before the Nth
 * fsync, counted across threads), `lbcut image` rebuilds from the log the
 * tree a machine would find after a power cut at that instant, under the
 * strictest reading of POSIX.  Files are known by inode number and birth
 * time, so that an inode number the filesystem reuses is not confused with
 * the file that had it before.
 *
 * With $LBCUT_REPORT set, a normal exit prints "lbcut-calls N" on stderr.
 *
 * Every record is one write() to a log opened with O_APPEND, and a file's
 * copy is complete before its record is written: a kill between the two
 * leaves an unused copy, never a record without its data. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static char root[4096];
static size_t rootlen;
static char logdir[4096];
static int logfd = -1;
static unsigned long long calls, cut_at, copies;
static int ready;

static void setup(void)
{
	real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	const char *r = getenv("LBCUT_ROOT");
	const char *l = getenv("LBCUT_LOG");
	const char *at = getenv("LBCUT_AT");
	if (!r || !l || strlen(l) >= sizeof(logdir) - 32)
		return;
	/* A root that does not exist records nothing but still counts. */
	if (realpath(r, root))
		rootlen = strlen(root);
	strcpy(logdir, l);
	char p[4200];
	snprintf(p, sizeof(p), "%s/log", logdir);
	logfd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (logfd < 0)
		return;
	cut_at = at ? strtoull(at, NULL, 10) : 0;
	ready = 1;
}

__attribute__((constructor)) static void lbcut_init(void) { setup(); }

/* With $LBCUT_REPORT set, a process that ends normally says how many fsync
 * calls it made: the range the tests cut in. */
__attribute__((destructor)) static void lbcut_fini(void)
{
	if (ready && getenv("LBCUT_REPORT"))
		fprintf(stderr, "lbcut-calls %llu\n", calls);
}

/* The identity of an open file or of dirfd/name: inode and birth time. */
static int ident(int dirfd, const char *name, int flags, struct statx *st)
{
	return statx(dirfd, name, flags | AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_TYPE | STATX_BTIME, st);
}

static void put_record(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(logfd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort(); /* a silent gap would make the image wrong */
		buf += n;
		len -= (size_t)n;
	}
}

static void record_file(int fd, const struct statx *st)
{
	char src[64], name[64], dst[4200];
	snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	snprintf(name, sizeof(name), "d/%ld-%llu", (long)getpid(), ++copies);
	snprintf(dst, sizeof(dst), "%s/%s", logdir, name);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0)
		abort();
	char buf[65536];
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(in, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			abort();
		if (n == 0)
			break;
		for (ssize_t w = 0; w < n;) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));
			if (k <= 0)
				abort();
			w += k;
		}
		off += n;
	}
	close(in);
	close(out);
	char line[4400];
	int len = snprintf(line, sizeof(line), "F %llu %lld %u %s\n", (unsigned long long)st->stx_ino,
			   (long long)st->stx_btime.tv_sec, st->stx_btime.tv_nsec, name);
	put_record(line, (size_t)len);
}

static void record_dir(int fd, const struct statx *st)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d)
		abort();
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		abort();
	len = (size_t)snprintf(buf, cap, "D %llu %lld %u\n", (unsigned long long)st->stx_ino,
			       (long long)st->stx_btime.tv_sec, st->stx_btime.tv_nsec);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strchr(e->d_name, '\n'))
			continue;
		struct statx es;
		if (ident(dirfd(d), e->d_name, 0, &es) < 0)
			continue; /* removed while we listed */
		char type = S_ISDIR(es.stx_mode) ? 'd' : S_ISREG(es.stx_mode) ? 'f' : 'o';
		char line[512];
		int n = snprintf(line, sizeof(line), "E %c %llu %lld %u %s\n", type, (unsigned long long)es.stx_ino,
				 (long long)es.stx_btime.tv_sec, es.stx_btime.tv_nsec, e->d_name);
		if (n <= 0 || (size_t)n >= sizeof(line))
			continue;
		if (len + (size_t)n + 3 > cap) {
			cap = 2 * (len + (size_t)n + 3);
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		memcpy(buf + len, line, (size_t)n);
		len += (size_t)n;
	}
	closedir(d);
	memcpy(buf + len, ".\n", 2);
	len += 2;
	put_record(buf, len);
	free(buf);
}

/* Records what fsync(fd) makes durable, if fd is under the root; dies
 * instead when this is the call the test cuts at. */
static void before_sync(int fd)
{
	if (!ready)
		return;
	pthread_mutex_lock(&mu);
	calls++;
	if (cut_at && calls == cut_at)
		_exit(86);
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n > 0) {
		path[n] = 0;
		if (rootlen > 0 && strncmp(path, root, rootlen) == 0 && (path[rootlen] == 0 || path[rootlen] == '/')) {
			struct statx st;
			if (ident(fd, "", AT_EMPTY_PATH, &st) == 0) {
				if (S_ISREG(st.stx_mode))
					record_file(fd, &st);
				else if (S_ISDIR(st.stx_mode))
					record_dir(fd, &st);
			}
		}
	}
	pthread_mutex_unlock(&mu);
}

int fsync(int fd)
{
	if (!real_fsync)
		setup();
	before_sync(fd);
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	if (!real_fdatasync)
		setup();
	before_sync(fd);
	return real_fdatasync(fd);
}
