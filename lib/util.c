/* util.c - see util.h. */
#include "config.h"

#include "util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

static _Thread_local char error_detail[512];

void lb_hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int lb_unhex(uint8_t *out, const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]);
		int lo = hi < 0 ? -1 : hexval(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void lb_set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_detail, sizeof(error_detail), fmt, ap);
	va_end(ap);
}

static void (*notice_hook)(int warn, const char *line);

void lb_set_notice_hook(void (*hook)(int warn, const char *line)) { notice_hook = hook; }

void lb_notice(int warn, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (notice_hook)
		notice_hook(warn, line);
	else
		fprintf(stderr, "%s%s\n", warn ? "warning: " : "", line);
}

void lb_clear_error(void) { error_detail[0] = '\0'; }

const char *lb_error_detail(void) { return error_detail; }

int64_t lb_now_ns(void)
{
	const char *fake = getenv("LUMBUNG_TEST_NOW");
	if (fake && *fake)
		return (int64_t)strtoll(fake, NULL, 10) * 1000000000LL;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t lb_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int lb_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int lb_send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
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

void *lb_mallocarray(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return malloc(n && size ? n * size : 1);
}

#if defined(__SANITIZE_ADDRESS__)
#define BULK_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BULK_MALLOC 1
#endif
#endif

#ifndef BULK_MALLOC
#define BULK_ALIGN ((size_t)2 << 20)

static size_t bulk_round(size_t size)
{
	return size ? (size + BULK_ALIGN - 1) & ~(BULK_ALIGN - 1) : BULK_ALIGN;
}
#endif

void *lb_bulk_alloc(size_t size)
{
#ifdef BULK_MALLOC
	/* Under AddressSanitizer a plain allocation keeps overruns caught. */
	return malloc(size ? size : 1);
#else
	size_t len = bulk_round(size);
	if (len < size || len + BULK_ALIGN < len)
		return NULL;
	/* Map one alignment unit more than needed, then give back the ends. */
	uint8_t *m = mmap(NULL, len + BULK_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t a = ((uintptr_t)m + BULK_ALIGN - 1) & ~(uintptr_t)(BULK_ALIGN - 1);
	uint8_t *p = (uint8_t *)a;
	if (p > m)
		munmap(m, (size_t)(p - m));
	if (p + len < m + len + BULK_ALIGN)
		munmap(p + len, (size_t)(m + len + BULK_ALIGN - (p + len)));
#ifdef MADV_HUGEPAGE
	/* Advice only: a kernel without transparent huge pages says EINVAL
	 * and the buffer works with small pages. */
	(void)madvise(p, len, MADV_HUGEPAGE);
#endif
	return p;
#endif
}

void lb_bulk_free(void *p, size_t size)
{
#ifdef BULK_MALLOC
	(void)size;
	free(p);
#else
	if (p)
		munmap(p, bulk_round(size));
#endif
}

void *lb_reallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return realloc(p, n && size ? n * size : 1);
}

int lb_grow(void *pp, size_t *cap, size_t need, size_t size)
{
	void **p = pp;
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	void *np = lb_reallocarray(*p, ncap, size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

int lb_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	while (isspace((unsigned char)*end))
		end++;
	double mult = 1;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mult = 1024.0; break;
	case 'M': mult = 1024.0 * 1024; break;
	case 'G': mult = 1024.0 * 1024 * 1024; break;
	case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
	case 'P': mult = 1024.0 * 1024 * 1024 * 1024 * 1024; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
		while (isspace((unsigned char)*end))
			end++;
		if (*end)
			return -EINVAL;
	}
	double bytes = v * mult;
	if (bytes >= 18446744073709551615.0)
		return -EINVAL;
	*out = (uint64_t)llround(bytes);
	return 0;
}

const char *lb_format_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	unsigned u = 0;
	while (v >= 1024 && u + 1 < LB_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int lb_parse_duration(const char *s, int64_t *seconds)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	long long mult = !strcmp(end, "s") ? 1 : (!strcmp(end, "m") || !strcmp(end, "min")) ? 60 : !strcmp(end, "h") ? 3600
		       : !strcmp(end, "d") ? 86400 : !strcmp(end, "w") ? 7 * 86400 : 0;
	if (errno || end == s || v <= 0 || !mult || v > INT64_MAX / 1000000000LL / mult)
		return -EINVAL;
	*seconds = (int64_t)(v * mult);
	return 0;
}
