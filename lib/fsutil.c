/* fsutil.c - see fsutil.h. */
#include "config.h"

#include "fsutil.h"
#include "util.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

static _Atomic uint64_t fault_steps;
static _Atomic uint64_t fault_at;
static _Atomic int fault_mode;

/* With a kind set, only steps of that kind count towards fault_at. */
static char fault_kind[16];
static _Atomic uint64_t fault_kind_steps;

void lb_fault_arm(uint64_t nth, enum lb_fault_mode mode)
{
	fault_steps = 0;
	fault_kind_steps = 0;
	fault_kind[0] = '\0';
	fault_at = nth;
	fault_mode = mode;
}

void lb_fault_from_env(void)
{
	const char *s = getenv("LUMBUNG_FAULT");
	if (!s || !*s)
		return;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	enum lb_fault_mode m = LB_FAULT_EIO;
	if (*end == ':' && strncmp(end + 1, "exit", 4) == 0)
		m = LB_FAULT_EXIT;
	const char *kind = *end == ':' ? strchr(end + 1, ':') : NULL;
	lb_fault_arm(n, m);
	if (kind)
		snprintf(fault_kind, sizeof(fault_kind), "%s", kind + 1);
}

uint64_t lb_fault_steps(void) { return fault_steps; }

int lb_fault_point(const char *what)
{
	uint64_t n = ++fault_steps;
	if (fault_kind[0]) {
		if (strcmp(what, fault_kind) != 0)
			return 0;
		n = ++fault_kind_steps;
	}
	if (fault_mode == LB_FAULT_OFF || n != fault_at)
		return 0;
	if (fault_mode == LB_FAULT_EXIT)
		_exit(86);
	lb_set_error("injected I/O error at step %llu (%s)", (unsigned long long)n, what);
	return -EIO;
}

int lb_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int r = lb_fault_point("write");
	if (r < 0)
		return r;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int lb_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EBADMSG;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int lb_fsync(int fd)
{
	int r = lb_fault_point("fsync");
	if (r < 0)
		return r;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

int lb_fsync_dir_at(int dirfd, const char *path)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return lb_fsync(fd);
}

int lb_mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdirat(dirfd, buf, mode) == 0) {
			/* Make the new entry durable in its parent. */
			char *slash = strrchr(buf, '/');
			int r;
			if (slash) {
				*slash = '\0';
				r = lb_fsync_dir_at(dirfd, buf);
				*slash = '/';
			} else {
				r = lb_fsync_dir_at(dirfd, ".");
			}
			if (r < 0)
				return r;
		} else if (errno != EEXIST) {
			return -errno;
		}
		buf[i] = saved;
	}
	return 0;
}

static void dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(out, len, ".");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

int lb_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4200], dir[4096];
	uint32_t rnd;
	lb_random(&rnd, sizeof(rnd));
	snprintf(tmp, sizeof(tmp), "%s.tmp-%08x", path, rnd);
	_cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	int r = lb_write_all(fd, data, len);
	if (r == 0)
		r = lb_fsync(fd);
	if (r == 0)
		r = lb_fault_point("rename");
	if (r == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	dir_of(path, dir, sizeof(dir));
	return lb_fsync_dir_at(dirfd, dir);
}

int lb_read_file_at(int dirfd, const char *path, size_t max, uint8_t **out, size_t *outlen)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	int r = lb_pread_all(fd, buf, (size_t)st.st_size, 0);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[st.st_size] = '\0';
	*out = buf;
	*outlen = (size_t)st.st_size;
	return 0;
}
