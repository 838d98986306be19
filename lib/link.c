/* link.c - protocol frames over a slow link; see link.h. */
#include "link.h"
#include "util.h"

#include <ctype.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* Compression of the link: level 3 keeps up with a 2-core appliance at
 * hundreds of MiB/s; the window stays small so that a hostile peer cannot
 * make the reader allocate much (the reader refuses windows above 16 MiB). */
#define LINK_LEVEL 3
#define LINK_WINDOW_LOG_MAX 24
#define LINK_IN 262144

struct lb_link {
	int plain_fd, link_rfd, link_wfd;
	atomic_uint_fast64_t rate;
	pthread_t up, down;
	atomic_uint_fast64_t wire_out, wire_in, plain_out, plain_in;
	int up_err, down_err;
	const char *up_why, *down_why;
	/* The token bucket of the writing side. */
	double tokens;
	int64_t last_ns;
};

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Writes all of buf to the link, no faster than the rate. */
static int link_write(struct lb_link *l, const uint8_t *buf, size_t len)
{
	uint64_t rate = atomic_load(&l->rate);
	/* A burst of 50 ms of the rate (at least 4 KiB) may go at once. */
	double burst = rate ? LB_MAX((double)rate / 20.0, 4096.0) : 0;
	while (len > 0) {
		size_t n = len;
		if (rate) {
			int64_t now = lb_mono_ns();
			l->tokens = LB_MIN(burst, l->tokens + (double)(now - l->last_ns) * (double)rate / 1e9);
			l->last_ns = now;
			n = LB_MIN(n, (size_t)burst);
			if (l->tokens < (double)n) {
				sleep_ns((int64_t)(((double)n - l->tokens) * 1e9 / (double)rate));
				continue;
			}
			l->tokens -= (double)n;
		}
		ssize_t w = write(l->link_wfd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		atomic_fetch_add(&l->wire_out, (uint64_t)w);
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static void *up_main(void *arg)
{
	struct lb_link *l = arg;
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t ocap = ZSTD_CStreamOutSize();
	uint8_t *in = malloc(LINK_IN), *out = malloc(ocap);
	int r = 0;
	if (!cc || !in || !out) {
		r = -ENOMEM;
		goto done;
	}
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, LINK_LEVEL);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 22);
	l->last_ns = lb_mono_ns();
	for (;;) {
		ssize_t n = read(l->plain_fd, in, LINK_IN);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		atomic_fetch_add(&l->plain_out, (uint64_t)n);
		/* Flush when the clear side has nothing more right now: the
		 * peer may be waiting for exactly these bytes. */
		ZSTD_EndDirective mode = ZSTD_e_end;
		if (n > 0) {
			struct pollfd p = { .fd = l->plain_fd, .events = POLLIN };
			mode = poll(&p, 1, 0) > 0 ? ZSTD_e_continue : ZSTD_e_flush;
		}
		ZSTD_inBuffer ib = { in, (size_t)n, 0 };
		size_t left;
		do {
			ZSTD_outBuffer ob = { out, ocap, 0 };
			left = ZSTD_compressStream2(cc, &ob, &ib, mode);
			if (ZSTD_isError(left)) {
				r = -EIO;
				l->up_why = "compression failed";
				goto done;
			}
			if (ob.pos && (r = link_write(l, out, ob.pos)) < 0) {
				l->up_why = "cannot write to the link";
				goto done;
			}
		} while (mode == ZSTD_e_continue ? ib.pos < ib.size : left != 0);
		if (n == 0)
			break;
	}
done:
	if (r < 0) {
		/* Nothing more can be sent: the protocol side must notice. */
		l->up_err = r;
		shutdown(l->plain_fd, SHUT_RDWR);
	}
	close(l->link_wfd);
	ZSTD_freeCCtx(cc);
	free(in);
	free(out);
	return NULL;
}

static void *down_main(void *arg)
{
	struct lb_link *l = arg;
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	size_t icap = ZSTD_DStreamInSize(), ocap = ZSTD_DStreamOutSize();
	uint8_t *in = malloc(icap), *out = malloc(ocap);
	int r = 0;
	size_t last = 0; /* 0 when the stream stands at the end of a frame */
	if (!dc || !in || !out) {
		r = -ENOMEM;
		goto done;
	}
	ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax, LINK_WINDOW_LOG_MAX);
	for (;;) {
		ssize_t n = read(l->link_rfd, in, icap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			l->down_why = "cannot read from the link";
			break;
		}
		if (n == 0)
			break;
		atomic_fetch_add(&l->wire_in, (uint64_t)n);
		ZSTD_inBuffer ib = { in, (size_t)n, 0 };
		ZSTD_outBuffer ob;
		do {
			ob = (ZSTD_outBuffer){ out, ocap, 0 };
			last = ZSTD_decompressStream(dc, &ob, &ib);
			if (ZSTD_isError(last)) {
				r = -EBADMSG;
				l->down_why = "the link carried a corrupt stream";
				goto done;
			}
			if (ob.pos && (r = lb_send_all(l->plain_fd, out, ob.pos)) < 0) {
				l->down_why = "the protocol side went away";
				goto done;
			}
			atomic_fetch_add(&l->plain_in, (uint64_t)ob.pos);
		} while (ib.pos < ib.size || ob.pos == ob.size);
	}
	if (r == 0 && last != 0) {
		r = -ECONNRESET;
		l->down_why = "the link ended inside a compressed frame";
	}
done:
	if (r < 0) {
		l->down_err = r;
		shutdown(l->plain_fd, SHUT_RDWR);
	} else {
		shutdown(l->plain_fd, SHUT_WR);
	}
	close(l->link_rfd);
	ZSTD_freeDCtx(dc);
	free(in);
	free(out);
	return NULL;
}

int lb_link_start(struct lb_link **out, int plain_fd, int link_rfd, int link_wfd, uint64_t rate)
{
	struct lb_link *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	/* A peer that goes away must give EPIPE, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	if (link_rfd == link_wfd && (link_wfd = dup(link_rfd)) < 0) {
		free(l);
		return -errno;
	}
	l->plain_fd = plain_fd;
	l->link_rfd = link_rfd;
	l->link_wfd = link_wfd;
	atomic_store(&l->rate, rate);
	int e = pthread_create(&l->up, NULL, up_main, l);
	if (e) {
		free(l);
		return -e;
	}
	e = pthread_create(&l->down, NULL, down_main, l);
	if (e) {
		shutdown(plain_fd, SHUT_RDWR);
		pthread_join(l->up, NULL);
		free(l);
		return -e;
	}
	*out = l;
	return 0;
}

void lb_link_set_rate(struct lb_link *l, uint64_t rate)
{
	atomic_store(&l->rate, rate);
}

void lb_link_get_stats(struct lb_link *l, struct lb_link_stats *st)
{
	st->wire_out = atomic_load(&l->wire_out);
	st->wire_in = atomic_load(&l->wire_in);
	st->plain_out = atomic_load(&l->plain_out);
	st->plain_in = atomic_load(&l->plain_in);
}

int lb_link_finish(struct lb_link *l, const char **why)
{
	pthread_join(l->up, NULL);
	pthread_join(l->down, NULL);
	int r = l->down_err ? l->down_err : l->up_err;
	if (why)
		*why = l->down_err ? l->down_why : l->up_why;
	close(l->plain_fd);
	free(l);
	return r;
}

int lb_parse_rate(const char *s, uint64_t *bytes_per_s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v <= 0)
		return -EINVAL;
	char unit[16];
	size_t n = 0;
	for (; *end && n + 1 < sizeof(unit); end++)
		unit[n++] = (char)tolower((unsigned char)*end);
	unit[n] = '\0';
	if (*end)
		return -EINVAL;
	/* Bits per second, decimal as network people write them. */
	static const struct { const char *u; double f; } bits[] = {
		{ "bit", 1.0 / 8 }, { "kbit", 1e3 / 8 }, { "mbit", 1e6 / 8 }, { "gbit", 1e9 / 8 },
		{ "bps", 1.0 / 8 }, { "kbps", 1e3 / 8 }, { "mbps", 1e6 / 8 }, { "gbps", 1e9 / 8 },
	};
	for (size_t i = 0; i < LB_ARRAY_SIZE(bits); i++)
		if (!strcmp(unit, bits[i].u)) {
			v *= bits[i].f;
			goto done;
		}
	/* Bytes per second, binary like every other size of Lumbung. */
	size_t k = strlen(unit);
	if (k >= 2 && !strcmp(unit + k - 2, "/s"))
		unit[k -= 2] = '\0';
	if (k >= 1 && unit[k - 1] == 'b')
		unit[--k] = '\0';
	if (k >= 1 && unit[k - 1] == 'i')
		unit[--k] = '\0';
	if (k > 1)
		return -EINVAL;
	switch (k ? unit[0] : '\0') {
	case '\0': break;
	case 'k': v *= 1024.0; break;
	case 'm': v *= 1048576.0; break;
	case 'g': v *= 1073741824.0; break;
	default: return -EINVAL;
	}
done:
	if (v < 1 || v > 1e15)
		return -EINVAL;
	*bytes_per_s = (uint64_t)v;
	return 0;
}
