/* fuzz-index.c - the index run reader (lib/index.c: lb_index_open and the
 * lookups and walks over what it loaded), including the superseding of
 * runs by a merge's "covers" field.
 *
 * Input: one flag byte, then up to three runs, each a u16 length (LE) and
 * that many bytes, stored as index/0000000000000001, ...2, ...3.  Flag bit 0
 * repairs each run's crc32c, bit 1 sets its entry count to what its length
 * implies, so that the fuzzer spends its time behind those checks. */
#include "fuzz.h"
#include "crc32c.h"
#include "format.h"
#include "index.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_cb(void *arg, const struct lb_pack_id *pack, const struct lb_pack_entry *e)
{
	(void)pack;
	(void)e;
	(*(uint64_t *)arg)++;
	return 0;
}

static int pack_cb(void *arg, const struct lb_pack_id *id)
{
	(void)id;
	(*(uint64_t *)arg)++;
	return 0;
}

struct ids {
	struct lb_id v[8];
	int n;
};

static int collect_cb(void *arg, const struct lb_pack_id *pack, const struct lb_pack_entry *e)
{
	struct ids *x = arg;
	(void)pack;
	if (x->n < 8)
		x->v[x->n++] = e->id;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	uint32_t flags = fz_u8(&f);
	struct lb_backend *be = memback_new();
	for (int k = 1; k <= 3 && f.left; k++) {
		const uint8_t *p;
		size_t len = fz_take(&f, fz_u16(&f), &p);
		uint8_t *run = malloc(len ? len : 1);
		if (!run)
			abort();
		if (len)
			memcpy(run, p, len);
		if ((flags & 2) && len >= LB_INDEX_HEADER_SIZE + 4) {
			uint64_t npacks = lb_get32(run + 12);
			uint64_t room = len - LB_INDEX_HEADER_SIZE - 4;
			if (npacks * LB_PACK_ID_LEN <= room)
				lb_put64(run + 16, (room - npacks * LB_PACK_ID_LEN) / LB_INDEX_ENTRY_SIZE);
		}
		if ((flags & 1) && len >= 4)
			lb_put32(run + len - 4, lb_crc32c(0, run, len - 4));
		char name[64];
		snprintf(name, sizeof(name), "index/%016llx", (unsigned long long)k);
		memback_add(be, name, run, len);
		free(run);
	}
	struct lb_index *idx;
	if (lb_index_open(be, &idx) == 0) {
		uint64_t n = 0, np = 0;
		lb_index_foreach(idx, count_cb, &n);
		lb_index_foreach_pack(idx, pack_cb, &np);
		(void)lb_index_entries(idx);
		(void)lb_index_blob_bytes(idx);
		(void)lb_index_memory(idx);
		struct ids x = { .n = 0 };
		lb_index_foreach(idx, collect_cb, &x);
		struct lb_id absent;
		memset(&absent, 0x5a, sizeof(absent));
		x.v[x.n < 8 ? x.n++ : 7] = absent;
		for (int i = 0; i < x.n; i++) {
			struct lb_pack_id pid;
			struct lb_pack_entry e;
			(void)lb_index_lookup(idx, &x.v[i], &pid, &e);
		}
		lb_index_free(idx);
	}
	lb_backend_free(be);
	return 0;
}
