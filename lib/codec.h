/* codec.h - per-chunk compression with zstd.
 *
 * Each thread gets its own contexts and output buffer (created on first use,
 * freed when the thread exits), so compressing a chunk allocates nothing. */
#ifndef LB_CODEC_H
#define LB_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Codec numbers as stored in blob headers (doc/FORMAT.md). */
enum {
	LB_CODEC_RAW = 0,        /* payload is the plaintext */
	LB_CODEC_ZSTD = 1,       /* one zstd frame */
	LB_CODEC_ZSTD_DELTA = 2, /* zstd frame against the base chunks' plaintexts */
};

/* Compresses src at the given zstd level.  On success sets *out to the stored
 * payload (a thread-local buffer valid until this thread's next call, or src
 * itself when even zstd's stored blocks would not fit in LB_FRAME_SLACK
 * over the chunk) and returns the codec (LB_CODEC_RAW or LB_CODEC_ZSTD);
 * returns -ENOMEM on failure.
 *
 * Every frame (here and in lb_compress_delta) carries zstd's checksum of
 * the plaintext (32 bits of XXH64), which decoding checks: a chunk decoded
 * from such a frame is the one that was compressed, and readers need not
 * hash it against its id again (doc/FORMAT.md, "Checking what is read").  An
 * incompressible chunk goes into a frame of stored blocks for the same
 * reason, at a few bytes' cost. */
int lb_compress(int level, const void *src, size_t len, const void **out, size_t *outlen);

/* What a frame of stored blocks may exceed its chunk by: 3 bytes per 128
 * KiB block, the frame header and the checksum. */
#define LB_FRAME_SLACK(len) ((len) / 4096 + 64)

/* 1 when payload (of codec LB_CODEC_ZSTD, or a delta's frame) is exactly
 * one zstd frame that carries a checksum of its content: decoding it
 * without error then checked what it gave. */
int lb_zstd_checked(const void *src, size_t srclen);

/* For tests: 0 makes this process write frames without checksums and
 * incompressible chunks raw, as stores written before December 2026 hold
 * them; returns the previous setting. */
int lb_codec_checksums(int on);

/* Decodes a payload into dst, which must hold exactly raw_len bytes.
 * Returns 0, -EBADMSG when the payload is corrupt or decodes to another
 * length, or -ENOTSUP for an unknown codec. */
int lb_decompress(int codec, const void *src, size_t srclen, void *dst, size_t raw_len);

/* Levels up to this one make deltas with the same parameters, tuned for a
 * reference of a few MiB: level 1's match finder (ZSTD_fast) with a table
 * large enough to remember the reference. */
#define LB_DELTA_FAST_LEVEL 3

/* Compresses src as a delta against prefix (the base chunks' plaintexts
 * back to back), the library side of `zstd --patch-from`, at level (up to
 * LB_DELTA_FAST_LEVEL: the tuned parameters above).  Returns
 * LB_CODEC_ZSTD_DELTA with *out in a thread-local buffer (its own, apart
 * from lb_compress's), or -ENOMEM / -EIO.  The frame starts after `reserve`
 * bytes left for the caller's use; *outlen counts them. */
int lb_compress_delta(int level, const void *prefix, size_t plen, const void *src, size_t len, size_t reserve,
		      void **out, size_t *outlen);

/* Decodes a delta payload against the same prefix.  Returns 0 or -EBADMSG. */
int lb_decompress_delta(const void *prefix, size_t plen, const void *src, size_t srclen, void *dst,
			size_t raw_len);

#endif
