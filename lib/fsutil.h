/* fsutil.h - durable file primitives and the fault-injection hook used by
 * the crash and failure tests.
 *
 * Every write, fsync and rename that the engine issues passes through
 * lb_fault_point() first.  Tests arm it (lb_fault_arm) so that the Nth such
 * step fails with EIO, or the process dies right there, and then prove that
 * the store is still at its last committed state. */
#ifndef LB_FSUTIL_H
#define LB_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum lb_fault_mode {
	LB_FAULT_OFF = 0,
	LB_FAULT_EIO,  /* the step fails with -EIO */
	LB_FAULT_EXIT, /* the process _exit()s before the step (a crash) */
};

/* Arms the hook: the nth step from now (1-based) fails as mode says. */
void lb_fault_arm(uint64_t nth, enum lb_fault_mode mode);
/* Reads LUMBUNG_FAULT="N:eio" or "N:exit" from the environment, if set;
 * "N:eio:KIND" counts only the steps of one kind (write, fsync, rename or
 * unlink), so that a test can fail the Nth fsync of a long-running daemon. */
void lb_fault_from_env(void);
/* Steps passed since start (or since the last arm). */
uint64_t lb_fault_steps(void);
/* Called before every durable step; returns 0 or -EIO when armed to fail. */
int lb_fault_point(const char *what);

/* write() all of buf to fd, retrying on EINTR; returns 0 or -errno. */
int lb_write_all(int fd, const void *buf, size_t len);
/* pread() exactly len bytes at off; returns 0, -EBADMSG when the file is
 * shorter, or -errno. */
int lb_pread_all(int fd, void *buf, size_t len, uint64_t off);
/* fsync(fd) through the fault hook. */
int lb_fsync(int fd);
/* fsync of the directory dirfd/path. */
int lb_fsync_dir_at(int dirfd, const char *path);
/* mkdir -p relative to dirfd, fsyncing every directory it creates and its
 * parent so that the new entries are durable.  Returns 0 or -errno. */
int lb_mkdir_p_at(int dirfd, const char *path, mode_t mode);
/* Publishes data as dirfd/path atomically and durably: temp file with
 * O_EXCL, write, fsync, rename over path, fsync the directory. */
int lb_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode);
/* Reads the whole file dirfd/path into a new buffer (caller frees).
 * Refuses files larger than max with -EFBIG. */
int lb_read_file_at(int dirfd, const char *path, size_t max, uint8_t **out, size_t *outlen);

#endif
