/* backend_local.c - objects as files under the store directory.
 *
 * Immutable objects are written to tmp/, fsynced, renamed into place with
 * RENAME_NOREPLACE and their directory fsynced; small mutable objects are
 * replaced by rename.  Reads use pread on a small cache of open descriptors,
 * since restores read many ranges from few packs. */
#include "config.h"

#include "backend.h"
#include "fsutil.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define WBUF_SIZE (1u << 20)
#define FD_CACHE 64

struct fd_slot {
	char name[128];
	int fd;
	int refs;
	uint64_t used;
};

struct local_backend {
	struct lb_backend be;
	int rootfd;
	int lockfd;
	pthread_mutex_t fd_lock;
	struct fd_slot fds[FD_CACHE];
	uint64_t tick;
};

struct lb_obj_writer {
	struct local_backend *lb;
	char name[256];
	char tmp[300];
	int fd;
	uint8_t *buf;
	size_t used;
	uint64_t written; /* bytes handed to the kernel so far */
	int err;
};

/* Starts writeback of what was just written without waiting for it, so
 * that the fsync at commit finds little left to do and a pack's data goes
 * to disk while the next one is being filled. */
static void start_writeback(struct lb_obj_writer *w, uint64_t off, size_t len)
{
	sync_file_range(w->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

static struct local_backend *L(struct lb_backend *be) { return (struct local_backend *)be; }

/* A write that failed says what it was writing, into which store, and why
 * (ENOSPC: the store's filesystem is full). */
static int write_failed(struct local_backend *lb, const char *name, int r)
{
	lb_set_error("cannot write %s in store %s: %s", name, lb->be.location, strerror(-r));
	return r;
}

static int name_ok(const char *name)
{
	if (!*name || name[0] == '/' || strlen(name) >= 256)
		return 0;
	for (const char *p = name; *p; p++) {
		if (p[0] == '.' && (p == name || p[-1] == '/'))
			return 0; /* no "..", ".", or hidden components */
	}
	return 1;
}

static int local_put_begin(struct lb_backend *be, const char *name, struct lb_obj_writer **out)
{
	if (!name_ok(name))
		return -EINVAL;
	struct lb_obj_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->buf = malloc(WBUF_SIZE);
	if (!w->buf) {
		free(w);
		return -ENOMEM;
	}
	w->lb = L(be);
	snprintf(w->name, sizeof(w->name), "%s", name);
	uint64_t rnd;
	lb_random(&rnd, sizeof(rnd));
	snprintf(w->tmp, sizeof(w->tmp), "tmp/%016llx", (unsigned long long)rnd);
	w->fd = openat(w->lb->rootfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (w->fd < 0) {
		int r = write_failed(w->lb, name, -errno);
		free(w->buf);
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

static int wflush(struct lb_obj_writer *w)
{
	if (w->err)
		return w->err;
	if (w->used) {
		int r = lb_write_all(w->fd, w->buf, w->used);
		if (r < 0)
			return w->err = r;
		start_writeback(w, w->written, w->used);
		w->written += w->used;
		w->used = 0;
	}
	return 0;
}

static int put_write(struct lb_obj_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (w->err)
		return w->err;
	if (len >= WBUF_SIZE) {
		int r = wflush(w);
		if (r < 0)
			return r;
		r = lb_write_all(w->fd, p, len);
		if (r < 0)
			return w->err = r;
		start_writeback(w, w->written, len);
		w->written += len;
		return 0;
	}
	if (w->used + len > WBUF_SIZE) {
		int r = wflush(w);
		if (r < 0)
			return r;
	}
	memcpy(w->buf + w->used, p, len);
	w->used += len;
	return 0;
}

static int local_put_write(struct lb_obj_writer *w, const void *data, size_t len)
{
	int r = put_write(w, data, len);
	return r < 0 ? write_failed(w->lb, w->name, r) : r;
}

static void writer_free(struct lb_obj_writer *w, int unlink_tmp)
{
	if (w->fd >= 0)
		close(w->fd);
	if (unlink_tmp)
		unlinkat(w->lb->rootfd, w->tmp, 0);
	free(w->buf);
	free(w);
}

static void local_put_abort(struct lb_obj_writer *w) { writer_free(w, 1); }

static int parent_dir(const char *name, char *out, size_t len)
{
	const char *slash = strrchr(name, '/');
	if (!slash)
		return 0;
	snprintf(out, len, "%.*s", (int)(slash - name), name);
	return 1;
}

static int local_put_commit(struct lb_obj_writer *w)
{
	char dir[256];
	int r = wflush(w);
	if (r == 0)
		r = lb_fsync(w->fd);
	if (r == 0 && parent_dir(w->name, dir, sizeof(dir)))
		r = lb_mkdir_p_at(w->lb->rootfd, dir, 0750);
	if (r == 0)
		r = lb_fault_point("rename");
	if (r == 0 && renameat2(w->lb->rootfd, w->tmp, w->lb->rootfd, w->name, RENAME_NOREPLACE) < 0)
		r = -errno;
	if (r < 0) {
		if (r != -EEXIST)
			write_failed(w->lb, w->name, r);
		writer_free(w, 1);
		return r;
	}
	struct local_backend *lb = w->lb;
	int has_dir = parent_dir(w->name, dir, sizeof(dir));
	char name[256];
	snprintf(name, sizeof(name), "%s", w->name);
	writer_free(w, 0);
	r = lb_fsync_dir_at(lb->rootfd, has_dir ? dir : ".");
	if (r < 0) {
		/* The caller hears that the object was not written: it must
		 * not be there either (a snapshot head would appear at the
		 * next start of a backup its client was told had failed). */
		unlinkat(lb->rootfd, name, 0);
		return write_failed(lb, name, r);
	}
	return 0;
}

/* Returns a read descriptor for name and sets *slot to its cache slot (or -1
 * for a private descriptor the caller must close).  A slot in use is never
 * evicted; release it with fd_put(). */
static int fd_get(struct local_backend *lb, const char *name, int *slot)
{
	*slot = -1;
	pthread_mutex_lock(&lb->fd_lock);
	struct fd_slot *victim = NULL;
	for (int i = 0; i < FD_CACHE; i++) {
		struct fd_slot *s = &lb->fds[i];
		if (s->fd >= 0 && strcmp(s->name, name) == 0) {
			s->used = ++lb->tick;
			s->refs++;
			*slot = i;
			pthread_mutex_unlock(&lb->fd_lock);
			return s->fd;
		}
		if (s->refs == 0 && (!victim || s->used < victim->used))
			victim = s;
	}
	int fd = openat(lb->rootfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		pthread_mutex_unlock(&lb->fd_lock);
		return r;
	}
	if (victim && strlen(name) < sizeof(victim->name)) {
		if (victim->fd >= 0)
			close(victim->fd);
		snprintf(victim->name, sizeof(victim->name), "%s", name);
		victim->fd = fd;
		victim->used = ++lb->tick;
		victim->refs = 1;
		*slot = (int)(victim - lb->fds);
	}
	pthread_mutex_unlock(&lb->fd_lock);
	return fd;
}

static void fd_put(struct local_backend *lb, int slot, int fd)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&lb->fd_lock);
	lb->fds[slot].refs--;
	pthread_mutex_unlock(&lb->fd_lock);
}

/* Drops name from the descriptor cache (before remove); a reader still
 * holding it keeps reading the unlinked file until it is done. */
static void fd_forget(struct local_backend *lb, const char *name)
{
	pthread_mutex_lock(&lb->fd_lock);
	for (int i = 0; i < FD_CACHE; i++) {
		struct fd_slot *s = &lb->fds[i];
		if (s->fd >= 0 && s->refs == 0 && strcmp(s->name, name) == 0) {
			close(s->fd);
			s->fd = -1;
			s->name[0] = '\0';
			s->used = 0;
		} else if (s->fd >= 0 && strcmp(s->name, name) == 0) {
			s->name[0] = '\0'; /* unreachable by name; closed on eviction */
		}
	}
	pthread_mutex_unlock(&lb->fd_lock);
}

static int local_get(struct lb_backend *be, const char *name, uint64_t off, void *buf, size_t len)
{
	struct local_backend *lb = L(be);
	if (!name_ok(name))
		return -EINVAL;
	/* Mutable objects are replaced by rename: never cache their fds. */
	int cacheable = strncmp(name, "packs/", 6) == 0 || strncmp(name, "index/", 6) == 0;
	if (!cacheable) {
		_cleanup_close_ int fd = openat(lb->rootfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		return lb_pread_all(fd, buf, len, off);
	}
	int slot;
	int fd = fd_get(lb, name, &slot);
	if (fd < 0)
		return fd;
	int r = lb_pread_all(fd, buf, len, off);
	fd_put(lb, slot, fd);
	return r;
}

static int local_stat(struct lb_backend *be, const char *name, uint64_t *size)
{
	struct stat st;
	if (!name_ok(name))
		return -EINVAL;
	if (fstatat(L(be)->rootfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int list_dir(int rootfd, const char *rel, lb_list_cb cb, void *arg)
{
	_cleanup_close_ int fd = openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	DIR *d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1;
	int r = 0;
	struct dirent *de;
	while (r >= 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[512];
		int n = snprintf(path, sizeof(path), "%s/%s", rel, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		struct stat st;
		if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			r = list_dir(rootfd, path, cb, arg);
		else if (S_ISREG(st.st_mode) && !strstr(de->d_name, ".tmp-"))
			r = cb(arg, path, (uint64_t)st.st_size);
	}
	closedir(d);
	return r;
}

static int local_list(struct lb_backend *be, const char *prefix, lb_list_cb cb, void *arg)
{
	if (!name_ok(prefix))
		return -EINVAL;
	return list_dir(L(be)->rootfd, prefix, cb, arg);
}

static int local_remove(struct lb_backend *be, const char *name)
{
	char dir[256];
	if (!name_ok(name))
		return -EINVAL;
	fd_forget(L(be), name);
	int r = lb_fault_point("unlink");
	if (r < 0)
		return r;
	if (unlinkat(L(be)->rootfd, name, 0) < 0)
		return -errno;
	return lb_fsync_dir_at(L(be)->rootfd, parent_dir(name, dir, sizeof(dir)) ? dir : ".");
}

static int append(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	char dir[256];
	if (!name_ok(name))
		return -EINVAL;
	int created = 0;
	if (parent_dir(name, dir, sizeof(dir))) {
		int r = lb_mkdir_p_at(L(be)->rootfd, dir, 0750);
		if (r < 0)
			return r;
	}
	_cleanup_close_ int fd = openat(L(be)->rootfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = openat(L(be)->rootfd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		created = 1;
	}
	if (fd < 0)
		return -errno;
	int r = lb_write_all(fd, data, len);
	if (r == 0)
		r = lb_fsync(fd);
	if (r == 0 && created)
		r = lb_fsync_dir_at(L(be)->rootfd, parent_dir(name, dir, sizeof(dir)) ? dir : ".");
	return r;
}

static int local_append(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	int r = append(be, name, data, len);
	return r < 0 && r != -EINVAL ? write_failed(L(be), name, r) : r;
}

static int local_truncate(struct lb_backend *be, const char *name, uint64_t size)
{
	if (!name_ok(name))
		return -EINVAL;
	_cleanup_close_ int fd = openat(L(be)->rootfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	return lb_fsync(fd);
}

static int local_replace(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	char dir[256];
	if (!name_ok(name))
		return -EINVAL;
	if (parent_dir(name, dir, sizeof(dir))) {
		int r = lb_mkdir_p_at(L(be)->rootfd, dir, 0750);
		if (r < 0)
			return r;
	}
	int r = lb_write_file_atomic_at(L(be)->rootfd, name, data, len, 0640);
	return r < 0 ? write_failed(L(be), name, r) : 0;
}

static int local_space(struct lb_backend *be, uint64_t *free_bytes)
{
	struct statvfs sv;
	if (fstatvfs(L(be)->rootfd, &sv) < 0)
		return -errno;
	*free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	return 0;
}

static int local_lock(struct lb_backend *be)
{
	struct local_backend *lb = L(be);
	int fd = openat(lb->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		if (n > 0)
			pid[n] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (r == -EWOULDBLOCK || r == -EAGAIN) {
			lb_set_error("store %s in use by pid %s", be->location, *pid ? pid : "?");
			return -EBUSY;
		}
		return r;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		int r = -errno;
		close(fd);
		return r;
	}
	lb->lockfd = fd;
	return 0;
}

static int cleanup_cb(void *arg, const char *name, uint64_t size)
{
	struct local_backend *lb = arg;
	(void)size;
	unlinkat(lb->rootfd, name, 0);
	return 0;
}

static int local_cleanup(struct lb_backend *be)
{
	struct local_backend *lb = L(be);
	int r = list_dir(lb->rootfd, "tmp", cleanup_cb, lb);
	if (r < 0)
		return r;
	return 0;
}

static void local_free(struct lb_backend *be)
{
	struct local_backend *lb = L(be);
	for (int i = 0; i < FD_CACHE; i++)
		if (lb->fds[i].fd >= 0)
			close(lb->fds[i].fd);
	if (lb->lockfd >= 0)
		close(lb->lockfd);
	if (lb->rootfd >= 0)
		close(lb->rootfd);
	pthread_mutex_destroy(&lb->fd_lock);
	free(be->location);
	free(lb);
}

static const struct lb_backend_ops local_ops = {
	.kind = "local",
	.put_begin = local_put_begin,
	.put_write = local_put_write,
	.put_commit = local_put_commit,
	.put_abort = local_put_abort,
	.get = local_get,
	.stat = local_stat,
	.list = local_list,
	.remove = local_remove,
	.append = local_append,
	.truncate = local_truncate,
	.replace = local_replace,
	.space = local_space,
	.lock = local_lock,
	.cleanup = local_cleanup,
	.free = local_free,
};

int lb_backend_local_open(const char *path, int create, struct lb_backend **out)
{
	if (create && mkdir(path, 0750) < 0 && errno != EEXIST) {
		int r = -errno;
		lb_set_error("cannot create store directory %s: %s", path, strerror(errno));
		return r;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		lb_set_error("cannot open store directory %s: %s", path, strerror(errno));
		return r;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || (st.st_mode & S_IWOTH)) {
		close(fd);
		lb_set_error("store directory %s is writable by others; refusing it", path);
		return -EPERM;
	}
	struct local_backend *lb = calloc(1, sizeof(*lb));
	if (!lb) {
		close(fd);
		return -ENOMEM;
	}
	lb->be.ops = &local_ops;
	lb->be.location = strdup(path);
	lb->rootfd = fd;
	lb->lockfd = -1;
	for (int i = 0; i < FD_CACHE; i++)
		lb->fds[i].fd = -1;
	pthread_mutex_init(&lb->fd_lock, NULL);
	if (!lb->be.location) {
		local_free(&lb->be);
		return -ENOMEM;
	}
	if (create) {
		int r = lb_mkdir_p_at(fd, "tmp", 0750);
		if (r < 0) {
			local_free(&lb->be);
			return r;
		}
	}
	*out = &lb->be;
	return 0;
}

static lb_backend_opener rados_opener;

void lb_backend_set_rados(lb_backend_opener open) { rados_opener = open; }

int lb_backend_open(const struct lb_backend_conf *c, int create, struct lb_backend **out)
{
	if (!c->kind || !strcmp(c->kind, "local"))
		return lb_backend_local_open(c->path, create, out);
	if (strcmp(c->kind, "rados") != 0) {
		lb_set_error("unknown store backend '%s'", c->kind);
		return -EINVAL;
	}
	if (!rados_opener) {
		lb_set_error("this program has no RADOS support (lumbungd has it when built with librados)");
		return -ENOTSUP;
	}
	return rados_opener(c, create, out);
}

int lb_backend_read_all(struct lb_backend *be, const char *name, size_t max, uint8_t **out, size_t *outlen)
{
	uint64_t size;
	int r = be->ops->stat(be, name, &size);
	if (r < 0)
		return r;
	if (size > max)
		return -EFBIG;
	uint8_t *buf = malloc((size_t)size + 1);
	if (!buf)
		return -ENOMEM;
	r = be->ops->get(be, name, 0, buf, (size_t)size);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[size] = '\0';
	*out = buf;
	*outlen = (size_t)size;
	return 0;
}

int lb_backend_put(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	struct lb_obj_writer *w;
	int r = be->ops->put_begin(be, name, &w);
	if (r < 0)
		return r;
	r = be->ops->put_write(w, data, len);
	if (r < 0) {
		be->ops->put_abort(w);
		return r;
	}
	return be->ops->put_commit(w);
}

void lb_backend_free(struct lb_backend *be)
{
	if (be)
		be->ops->free(be);
}
