/* util.h - small helpers shared by the whole engine: cleanup attributes,
 * little-endian encoding, hex, the thread-local error detail, and time.
 *
 * Conventions used throughout lib/: functions return 0 or a positive count on
 * success and a negative errno value on failure.  Fixed meanings:
 *   -EBADMSG   stored data is corrupt (checksum, magic or structure)
 *   -EPROTO    a peer sent a malformed message
 *   -EDQUOT    a tenant quota or the store capacity would be exceeded
 *   -ENOSPC    the filesystem is full
 *   -EPROTONOSUPPORT  the store or message uses a newer format version
 *   -ENOENT    the named object does not exist
 * lib/ never prints and never exits.  Where more than the errno is useful the
 * failing function also records one line with lb_set_error(), which the caller
 * may show with lb_error_detail(). */
#ifndef LB_UTIL_H
#define LB_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LB_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LB_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LB_UNUSED __attribute__((unused))
#define LB_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Cleanup helpers for locals: `_cleanup_free_ char *p = NULL;` */
#define _cleanup_(f) __attribute__((cleanup(f)))
static inline void lb_freep(void *p) { free(*(void **)p); }
static inline void lb_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_free_ _cleanup_(lb_freep)
#define _cleanup_close_ _cleanup_(lb_closep)

/* Little-endian fixed-width encoding; the on-disk and wire formats use it. */
static inline void lb_put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void lb_put32(uint8_t *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}
static inline void lb_put64(uint8_t *p, uint64_t v)
{
	lb_put32(p, (uint32_t)v);
	lb_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t lb_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t lb_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t lb_get64(const uint8_t *p)
{
	return (uint64_t)lb_get32(p) | (uint64_t)lb_get32(p + 4) << 32;
}

/* Writes 2*n lowercase hex digits and a NUL to out. */
void lb_hex(char *out, const uint8_t *in, size_t n);
/* Parses exactly 2*n hex digits from in; returns 0 or -EINVAL. */
int lb_unhex(uint8_t *out, const char *in, size_t n);

/* Records a one-line explanation of the current failure for this thread. */
void lb_set_error(const char *fmt, ...) LB_PRINTF(1, 2);
/* Clears the detail. */
void lb_clear_error(void);
/* The last detail recorded on this thread, or "" (never NULL; owned by lib). */
const char *lb_error_detail(void);
/* Something a long-lived process should tell its operator about although no
 * caller is waiting for it (a lock that lapsed and was taken back, say):
 * passed to the hook set with lb_set_notice_hook(), or written to stderr.
 * warn is 1 for a warning, 0 for information. */
void lb_notice(int warn, const char *fmt, ...) LB_PRINTF(2, 3);
void lb_set_notice_hook(void (*hook)(int warn, const char *line));

/* Wall clock in nanoseconds since the epoch.  LUMBUNG_TEST_NOW (seconds), if
 * set, overrides it so that tests can simulate days without sleeping. */
int64_t lb_now_ns(void);
/* Monotonic clock in nanoseconds. */
int64_t lb_mono_ns(void);

/* Fills buf with n bytes from the kernel's CSPRNG; returns 0 or -errno. */
int lb_random(void *buf, size_t n);
/* Sends all len bytes on a socket; returns 0 or -errno (never raises
 * SIGPIPE).  After an error an unknown part may have gone. */
int lb_send_all(int fd, const void *buf, size_t len);

/* malloc/realloc that never return NULL for n == 0 and check overflow of
 * n * size; they return NULL only when memory is exhausted. */
void *lb_mallocarray(size_t n, size_t size);
void *lb_reallocarray(void *p, size_t n, size_t size);

/* Large working buffers (a backup's batches): mapped on their own, aligned
 * to 2 MiB and marked for transparent huge pages, so filling one costs a
 * fault per 2 MiB instead of per 4 KiB, and freeing returns the memory at
 * once.  Under 37 concurrent backups the 4 KiB faults of fresh batch
 * buffers were half the daemon's CPU (doc/RELIABILITY.md, "Load").
 * lb_bulk_alloc returns NULL when memory is exhausted; lb_bulk_free takes
 * the size given to lb_bulk_alloc, and ignores NULL. */
void *lb_bulk_alloc(size_t size);
void lb_bulk_free(void *p, size_t size);

/* Grows *p (holding *cap elements of size bytes) to hold at least need
 * elements; returns 0 or -ENOMEM. */
int lb_grow(void *p, size_t *cap, size_t need, size_t size);

/* Parses a size such as "600G", "12.5T", "4096" (binary units: K=1024) into
 * *out; returns 0 or -EINVAL. */
int lb_parse_size(const char *s, uint64_t *out);
/* Parses a duration such as 90s, 30m (or 30min, as systemd writes it), 2h,
 * 7d or 4w into seconds (> 0); 0 or -EINVAL. */
int lb_parse_duration(const char *s, int64_t *seconds);
/* Formats bytes as "12.5 TiB" style into buf (at least 16 bytes). */
const char *lb_format_size(char *buf, size_t len, uint64_t bytes);

#endif
