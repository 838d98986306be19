/* fuzz-snapshot.c - snapshot heads (lib/snapshot.c: lb_snapshot_decode),
 * which a store reads from disk and trusts only after their SHA-256.
 *
 * Input: one flag byte, then a head.  With bit 0 of the flag set the target
 * rewrites the body length and appends the right SHA-256, so the fuzzer
 * explores the body's parsing; clear, the bytes are decoded as given. */
#include "fuzz.h"
#include "buf.h"
#include "hash.h"
#include "snapshot.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int fix = data[0] & 1;
	data++;
	size--;
	size_t len = fix ? size + LB_ID_LEN : size;
	uint8_t *img = malloc(len ? len : 1);
	if (!img)
		abort();
	if (size)
		memcpy(img, data, size);
	if (fix) {
		if (size >= 16)
			lb_put32(img + 12, (uint32_t)(size - 16));
		struct lb_id h;
		lb_sha256(img, size, &h);
		memcpy(img + size, h.b, LB_ID_LEN);
	}
	struct lb_snapshot s;
	if (lb_snapshot_decode(img, len, &s) == 0) {
		/* An accepted head encodes to a head that decodes the same. */
		struct lb_buf out;
		lb_buf_init(&out);
		struct lb_snapshot *d = lb_snapshot_dup(&s);
		if (d && lb_snapshot_encode(d, &out) == 0 && !out.err) {
			struct lb_snapshot s2;
			if (lb_snapshot_decode(out.p, out.len, &s2) < 0)
				abort();
			if (strcmp(s2.tenant, s.tenant) || strcmp(s2.dataset, s.dataset) || s2.ntree != s.ntree ||
			    s2.ntags != s.ntags || s2.time_ns != s.time_ns)
				abort();
			lb_snapshot_clear(&s2);
		}
		char name[256];
		lb_snapshot_object_name(&s, name, sizeof(name));
		lb_snapshot_free(d);
		lb_buf_free(&out);
		lb_snapshot_clear(&s);
	}
	free(img);
	return 0;
}
