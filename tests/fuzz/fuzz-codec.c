/* fuzz-codec.c - chunk payload decoding (lib/codec.c) as the store does it
 * for every blob it reads: plain zstd frames and zstd deltas against the
 * base chunks' plaintexts (lib/delta.c's decode_delta ends here).
 *
 * Input: one byte choosing the codec, a u16 (LE) raw length (the size the
 * index announces; the decoder must produce exactly that), a u16 prefix
 * length for deltas, then the payload.  The prefix is a fixed pattern. */
#include "fuzz.h"
#include "codec.h"

#include <stdlib.h>
#include <string.h>

#define PREFIX 65535

static uint8_t prefix[PREFIX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!prefix[1])
		for (size_t i = 0; i < PREFIX; i++)
			prefix[i] = (uint8_t)(i * 13 + (i >> 9));
	struct fz f = { data, size };
	unsigned mode = fz_u8(&f);
	/* Raw sizes up to 4 MiB: the low byte scales the u16. */
	size_t raw = (size_t)fz_u16(&f) << (mode >> 4 & 6);
	size_t plen = fz_u16(&f);
	uint8_t *dst = malloc(raw ? raw : 1);
	if (!dst)
		abort();
	switch (mode & 3) {
	case 0:
		(void)lb_decompress(LB_CODEC_RAW, f.p, f.left, dst, raw);
		break;
	case 1:
		(void)lb_decompress(LB_CODEC_ZSTD, f.p, f.left, dst, raw);
		break;
	case 2:
		(void)lb_decompress_delta(prefix, plen, f.p, f.left, dst, raw);
		break;
	default:
		(void)lb_decompress((int)(mode >> 2), f.p, f.left, dst, raw);
		break;
	}
	free(dst);
	return 0;
}
