/* codec.c - zstd per chunk with thread-local contexts, kept across threads. */
#include "config.h"

#include "codec.h"
#include "pool.h"
#include "util.h"

#include <pthread.h>
#include <zstd.h>

struct tls_codec {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	void *buf;
	size_t cap;
	int level, sums;
	ZSTD_CCtx *dcctx; /* deltas: parameters change with every prefix */
	void *dbuf;
	size_t dcap;
};

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void tls_destroy(void *p)
{
	struct tls_codec *t = p;
	if (!t)
		return;
	ZSTD_freeCCtx(t->cctx);
	ZSTD_freeCCtx(t->dcctx);
	ZSTD_freeDCtx(t->dctx);
	free(t->buf);
	free(t->dbuf);
	free(t);
}

/* A thread's contexts, warm, go to the next thread (pool.h, keeps). */
static struct lb_keep kept = LB_KEEP_INIT(tls_destroy);

static void tls_exit(void *p) { lb_keep_give(&kept, p); }

static void key_init(void) { pthread_key_create(&key, tls_exit); }

static struct tls_codec *tls_get(void)
{
	pthread_once(&key_once, key_init);
	struct tls_codec *t = pthread_getspecific(key);
	if (t)
		return t;
	t = lb_keep_take(&kept);
	if (t) {
		if (pthread_setspecific(key, t) != 0) {
			lb_keep_give(&kept, t);
			return NULL;
		}
		return t;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cctx = ZSTD_createCCtx();
	t->dctx = ZSTD_createDCtx();
	t->dcctx = ZSTD_createCCtx();
	t->level = -1000;
	if (!t->cctx || !t->dctx || !t->dcctx || pthread_setspecific(key, t) != 0) {
		tls_destroy(t);
		return NULL;
	}
	return t;
}

static _Atomic int checksums = 1;

int lb_codec_checksums(int on)
{
	int was = checksums;
	checksums = on;
	return was;
}

int lb_zstd_checked(const void *src, size_t srclen)
{
	/* RFC 8878 3.1.1: the magic number, then the frame header
	 * descriptor, whose bit 2 is the content checksum flag. */
	const uint8_t *p = src;
	if (srclen < 5 || lb_get32(p) != ZSTD_MAGICNUMBER || !(p[4] & 0x04))
		return 0;
	/* One frame, nothing after it that decoding would append unchecked. */
	return ZSTD_findFrameCompressedSize(src, srclen) == srclen;
}

int lb_compress(int level, const void *src, size_t len, const void **out, size_t *outlen)
{
	struct tls_codec *t = tls_get();
	if (!t)
		return -ENOMEM;
	size_t bound = ZSTD_compressBound(len);
	if (bound > t->cap) {
		void *nb = realloc(t->buf, bound);
		if (!nb)
			return -ENOMEM;
		t->buf = nb;
		t->cap = bound;
	}
	int sums = checksums;
	if (t->level != level || t->sums != sums) {
		ZSTD_CCtx_reset(t->cctx, ZSTD_reset_session_and_parameters);
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_compressionLevel, level);
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_checksumFlag, sums);
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_contentSizeFlag, 1);
		t->level = level;
		t->sums = sums;
	}
	size_t n = ZSTD_compress2(t->cctx, t->buf, t->cap, src, len);
	int fits = !ZSTD_isError(n) && (sums ? n <= len + LB_FRAME_SLACK(len) : n < len);
	if (!fits) {
		*out = src;
		*outlen = len;
		return LB_CODEC_RAW;
	}
	*out = t->buf;
	*outlen = n;
	return LB_CODEC_ZSTD;
}

int lb_decompress(int codec, const void *src, size_t srclen, void *dst, size_t raw_len)
{
	switch (codec) {
	case LB_CODEC_RAW:
		if (srclen != raw_len)
			return -EBADMSG;
		memcpy(dst, src, raw_len);
		return 0;
	case LB_CODEC_ZSTD: {
		struct tls_codec *t = tls_get();
		if (!t)
			return -ENOMEM;
		size_t n = ZSTD_decompressDCtx(t->dctx, dst, raw_len, src, srclen);
		if (ZSTD_isError(n) || n != raw_len)
			return -EBADMSG;
		return 0;
	}
	default:
		return -ENOTSUP;
	}
}

/* The window must reach back over the whole prefix from the end of the
 * chunk, or matches against the first bases are lost. */
static int window_log(size_t total)
{
	int w = 10; /* ZSTD_WINDOWLOG_ABSOLUTEMIN */
	while (w < 30 && ((size_t)1 << w) < total)
		w++;
	return w;
}

int lb_compress_delta(int level, const void *prefix, size_t plen, const void *src, size_t len, size_t reserve,
		      void **out, size_t *outlen)
{
	struct tls_codec *t = tls_get();
	if (!t)
		return -ENOMEM;
	size_t bound = ZSTD_compressBound(len) + reserve;
	if (bound > t->dcap) {
		void *nb = realloc(t->dbuf, bound);
		if (!nb)
			return -ENOMEM;
		t->dbuf = nb;
		t->dcap = bound;
	}
	ZSTD_CCtx *c = t->dcctx;
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksums);
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1);
	ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log(plen + len));
	if (level <= LB_DELTA_FAST_LEVEL) {
		/* One hash table of 2^18 entries holds a position for most
		 * 7-byte runs of a reference and chunk of a few MiB, so that
		 * level 1's single-probe finder still finds the night before's
		 * rows; level 3's two smaller tables lose some and probe twice.
		 * Night 7 of the bench: 8% less wall time, stored bytes the
		 * same (bench/RESULTS.md, "Deltas with one large table"). */
		ZSTD_CCtx_setParameter(c, ZSTD_c_strategy, ZSTD_fast);
		ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, 18);
	}
	/* Against the night before, matches are rows; those under 7 bytes cost
	 * more to code than they save: nights 1-7 of the bench's deltas 2.8%
	 * smaller than at level 3's 5, the same CPU (bench/RESULTS.md). */
	ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, 7);
	size_t n = ZSTD_CCtx_refPrefix(c, prefix, plen);
	if (!ZSTD_isError(n))
		n = ZSTD_compress2(c, (uint8_t *)t->dbuf + reserve, t->dcap - reserve, src, len);
	if (ZSTD_isError(n))
		return -EIO;
	*out = t->dbuf;
	*outlen = n + reserve;
	return LB_CODEC_ZSTD_DELTA;
}

int lb_decompress_delta(const void *prefix, size_t plen, const void *src, size_t srclen, void *dst,
			size_t raw_len)
{
	struct tls_codec *t = tls_get();
	if (!t)
		return -ENOMEM;
	ZSTD_DCtx *d = t->dctx;
	ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	/* A frame may ask for a window up to 2^30 (bases of the largest
	 * chunks); a damaged one asking for more fails cleanly. */
	ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 30);
	size_t n = ZSTD_DCtx_refPrefix(d, prefix, plen);
	if (!ZSTD_isError(n))
		n = ZSTD_decompressDCtx(d, dst, raw_len, src, srclen);
	ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(n) || n != raw_len)
		return -EBADMSG;
	return 0;
}
