/* fuzz-manifest.c - manifest tree blobs (lib/manifest.c): entry records
 * read one by one, and whole manifests through the reader (next, seek,
 * salvage after a bad blob), the in-memory index and the path lookup.
 *
 * Input: one byte naming a path to look up (taken from the input's first
 * decodable entry when odd), then up to four tree blobs, each a u8
 * first-path length, that many bytes of first path, a u16 length (LE) and
 * that many bytes of blob. */
#include "fuzz.h"
#include "buf.h"
#include "manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 4

struct blobs {
	const uint8_t *p[MAXB];
	size_t len[MAXB];
};

static int get_blob(void *arg, const struct lb_id *id, uint32_t size, uint8_t **data)
{
	struct blobs *b = arg;
	unsigned k = id->b[0];
	if (k >= MAXB || b->len[k] != size)
		return -EBADMSG;
	*data = malloc(size ? size : 1);
	if (!*data)
		return -ENOMEM;
	if (size)
		memcpy(*data, b->p[k], size);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	uint32_t mode = fz_u8(&f);
	struct blobs b;
	struct lb_tree_ref refs[MAXB];
	size_t n = 0;
	memset(refs, 0, sizeof(refs));
	while (n < MAXB && f.left) {
		const uint8_t *fp;
		size_t fl = fz_take(&f, fz_u8(&f), &fp);
		refs[n].first_path = strndup((const char *)fp, fl);
		if (!refs[n].first_path)
			abort();
		b.len[n] = fz_take(&f, fz_u16(&f), &b.p[n]);
		refs[n].id.b[0] = (uint8_t)n;
		refs[n].size = (uint32_t)b.len[n];
		n++;
	}

	/* Records one by one, as lb_entry_decode meets them. */
	char *look = strdup("a/b");
	for (size_t i = 0; i < n; i++) {
		struct lb_rd rd;
		lb_rd_init(&rd, b.p[i], b.len[i]);
		struct lb_entry e;
		while (lb_rd_left(&rd) && lb_entry_decode(&rd, &e) == 0) {
			if ((mode & 1) && e.path) {
				free(look);
				look = strdup(e.path);
			}
			(void)lb_path_valid(e.path);
			lb_entry_clear(&e);
		}
	}

	/* The reader, going on past damaged blobs as salvage does. */
	struct lb_mreader *r = lb_mreader_new(refs, n, get_blob, &b);
	if (r) {
		struct lb_entry e;
		int ret, errors = 0;
		while (errors < 8 && (ret = lb_mreader_next(r, &e)) != 0) {
			if (ret < 0) {
				errors++;
				(void)lb_mreader_blob(r);
				continue;
			}
			lb_entry_clear(&e);
		}
		if (look && lb_mreader_seek(r, look) == 0 && lb_mreader_next(r, &e) == 1)
			lb_entry_clear(&e);
		lb_mreader_free(r);
	}
	struct lb_mindex *m;
	if (lb_mindex_load(refs, n, get_blob, &b, &m) == 0) {
		struct lb_entry e;
		if (look && lb_mindex_find(m, look, &e) == 1)
			lb_entry_clear(&e);
		lb_mindex_free(m);
	}
	struct lb_entry e;
	if (look && lb_manifest_lookup(refs, n, get_blob, &b, look, &e) == 1)
		lb_entry_clear(&e);
	free(look);
	for (size_t i = 0; i < n; i++)
		free(refs[i].first_path);
	return 0;
}
