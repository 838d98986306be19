/* fuzz-pack.c - the pack reader (lib/pack.c): trailer, footer, blob
 * headers, the whole-pack verify walk and the payload codecs behind it.
 *
 * Input: one flag byte, then a pack image.  With bit 0 of the flag set the
 * target first repairs every checksum (blob crcs, footer crc, file crc) so
 * that the fuzzer explores the parsing behind them instead of spending its
 * time on crc32c; with it clear the image is read as given. */
#include "fuzz.h"
#include "codec.h"
#include "crc32c.h"
#include "format.h"
#include "pack.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Chunks are at most LB_CDC_MAX_MAX bytes; a smaller cap keeps runs fast. */
#define RAW_CAP (1u << 20)

static void fix_checksums(uint8_t *a, size_t size)
{
	if (size < LB_PACK_HEADER_SIZE + LB_PACK_TRAILER_SIZE)
		return;
	uint8_t *t = a + size - LB_PACK_TRAILER_SIZE;
	uint64_t foff = lb_get64(t);
	uint32_t nb = lb_get32(t + 8);
	if (foff >= LB_PACK_HEADER_SIZE && foff <= size - LB_PACK_TRAILER_SIZE &&
	    (uint64_t)nb * LB_PACK_ENTRY_SIZE <= size - LB_PACK_TRAILER_SIZE - foff) {
		for (uint32_t i = 0; i < nb; i++) {
			const uint8_t *f = a + foff + (size_t)i * LB_PACK_ENTRY_SIZE;
			uint64_t off = lb_get32(f + 32);
			uint64_t tail = (uint64_t)lb_get32(f + 36) + (uint64_t)lb_get16(f + 46) * LB_ID_LEN;
			if (off + LB_BLOB_HEADER_SIZE + tail > foff)
				continue;
			uint8_t *b = a + off;
			lb_put32(b + 48, lb_blob_crc(b, LB_BLOB_HEADER_SIZE + (size_t)tail));
		}
		lb_put32(t + 12, lb_crc32c(0, a + foff, (size_t)nb * LB_PACK_ENTRY_SIZE));
	}
	lb_put32(t + 16, lb_crc32c(0, a, size - 16));
}

static int verify_cb(void *arg, const struct lb_pack_entry *e, const uint8_t *payload)
{
	(void)arg;
	if (!payload || e->raw > RAW_CAP || e->codec == LB_CODEC_ZSTD_DELTA)
		return 0;
	uint8_t *dst = malloc(e->raw ? e->raw : 1);
	if (!dst)
		abort();
	(void)lb_decompress(e->codec, payload, e->stored, dst, e->raw);
	free(dst);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int fix = data[0] & 1;
	data++;
	size--;
	uint8_t *img = malloc(size ? size : 1);
	if (!img)
		abort();
	if (size)
		memcpy(img, data, size);
	if (fix)
		fix_checksums(img, size);
	struct lb_pack_id id;
	memset(&id, 0, sizeof(id));
	if (size >= 16 + LB_PACK_ID_LEN)
		memcpy(id.b, img + 16, LB_PACK_ID_LEN);
	char name[96];
	lb_pack_name(&id, name, sizeof(name));
	struct lb_backend *be = memback_new();
	memback_add(be, name, img, size);
	free(img);

	struct lb_pack_entry *es;
	size_t n;
	if (lb_pack_read_footer(be, &id, &es, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			uint8_t *buf = malloc(lb_blob_buf_size(&es[i]));
			if (!buf)
				abort();
			struct lb_blob b;
			if (lb_blob_get(be, &id, &es[i], buf, &b) == 0 && b.nbases == 0 && es[i].raw <= RAW_CAP) {
				uint8_t *dst = malloc(es[i].raw ? es[i].raw : 1);
				if (!dst)
					abort();
				(void)lb_decompress(es[i].codec, b.payload, b.stored, dst, es[i].raw);
				free(dst);
			}
			free(buf);
		}
		free(es);
	}
	(void)lb_pack_verify(be, &id, verify_cb, NULL);
	lb_backend_free(be);
	return 0;
}
