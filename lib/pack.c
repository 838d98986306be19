/* pack.c - pack writer and readers; the layout is in format.h. */
#include "config.h"

#include "pack.h"
#include "codec.h"
#include "crc32c.h"
#include "util.h"

#include <stdio.h>

struct lb_pack_writer {
	struct lb_backend *be;
	struct lb_obj_writer *ow;
	struct lb_pack_id id;
	int kind;
	uint64_t size;
	uint32_t crc;
	int failed;
	int sealed;
	struct lb_pack_entry *entries;
	size_t n, cap;
};

void lb_pack_name(const struct lb_pack_id *id, char *buf, size_t len)
{
	char hex[2 * LB_PACK_ID_LEN + 1];
	lb_hex(hex, id->b, LB_PACK_ID_LEN);
	snprintf(buf, len, "packs/%.2s/%s", hex, hex);
}

int lb_pack_parse_name(const char *name, struct lb_pack_id *id)
{
	if (strncmp(name, "packs/", 6) != 0 || strlen(name) != 6 + 3 + 2 * LB_PACK_ID_LEN)
		return -EINVAL;
	const char *hex = name + 9;
	if (name[8] != '/' || memcmp(name + 6, hex, 2) != 0)
		return -EINVAL;
	/* Only the lowercase form lb_pack_name writes names a pack. */
	for (int i = 0; i < 2 * LB_PACK_ID_LEN; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return -EINVAL;
	return lb_unhex(id->b, hex, LB_PACK_ID_LEN);
}

static int wr(struct lb_pack_writer *w, const void *data, size_t len)
{
	int r = w->be->ops->put_write(w->ow, data, len);
	if (r < 0) {
		w->failed = r;
		return r;
	}
	w->crc = lb_crc32c(w->crc, data, len);
	w->size += len;
	return 0;
}

int lb_pack_writer_new(struct lb_backend *be, int kind, struct lb_pack_writer **out)
{
	struct lb_pack_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->be = be;
	w->kind = kind;
	int r = lb_random(w->id.b, sizeof(w->id.b));
	char name[96];
	lb_pack_name(&w->id, name, sizeof(name));
	if (r == 0)
		r = be->ops->put_begin(be, name, &w->ow);
	if (r < 0) {
		free(w);
		return r;
	}
	uint8_t h[LB_PACK_HEADER_SIZE] = { 0 };
	memcpy(h, LB_PACK_MAGIC, 8);
	lb_put32(h + 8, LB_FORMAT_VERSION);
	lb_put32(h + 12, (uint32_t)kind);
	memcpy(h + 16, w->id.b, LB_PACK_ID_LEN);
	r = wr(w, h, sizeof(h));
	if (r < 0) {
		lb_pack_writer_free(w);
		return r;
	}
	*out = w;
	return 0;
}

static void encode_blob_header(uint8_t *h, const struct lb_pack_entry *e)
{
	lb_put32(h, LB_BLOB_MAGIC);
	h[4] = e->codec;
	h[5] = e->type;
	lb_put16(h + 6, e->nbases);
	lb_put32(h + 8, e->raw);
	lb_put32(h + 12, e->stored);
	memcpy(h + 16, e->id.b, LB_ID_LEN);
	lb_put32(h + 48, 0);
	lb_put32(h + 52, 0);
}

int lb_pack_append(struct lb_pack_writer *w, const struct lb_id *id, int type, int codec,
		   const struct lb_id *bases, uint16_t nbases, uint32_t raw,
		   const void *payload, uint32_t stored, uint32_t *offset)
{
	if (w->failed)
		return w->failed;
	if (nbases > LB_BLOB_MAX_BASES || w->size + LB_BLOB_HEADER_SIZE + stored > UINT32_MAX / 2)
		return -EFBIG;
	int r = lb_grow(&w->entries, &w->cap, w->n + 1, sizeof(*w->entries));
	if (r < 0)
		return r;
	struct lb_pack_entry e = {
		.id = *id, .offset = (uint32_t)w->size, .stored = stored, .raw = raw,
		.codec = (uint8_t)codec, .type = (uint8_t)type, .nbases = nbases,
	};
	uint8_t h[LB_BLOB_HEADER_SIZE];
	encode_blob_header(h, &e);
	uint32_t crc = lb_crc32c(0, h, 48);
	if (nbases)
		crc = lb_crc32c(crc, bases, (size_t)nbases * LB_ID_LEN);
	crc = lb_crc32c(crc, payload, stored);
	lb_put32(h + 48, crc);
	r = wr(w, h, sizeof(h));
	if (r == 0 && nbases)
		r = wr(w, bases, (size_t)nbases * LB_ID_LEN);
	if (r == 0)
		r = wr(w, payload, stored);
	if (r < 0)
		return r;
	w->entries[w->n++] = e;
	if (offset)
		*offset = e.offset;
	return 0;
}

uint64_t lb_pack_writer_size(const struct lb_pack_writer *w) { return w->size; }
size_t lb_pack_writer_count(const struct lb_pack_writer *w) { return w->n; }
const struct lb_pack_id *lb_pack_writer_id(const struct lb_pack_writer *w) { return &w->id; }

const struct lb_pack_entry *lb_pack_writer_entries(const struct lb_pack_writer *w, size_t *n)
{
	*n = w->n;
	return w->entries;
}

static void encode_entry(uint8_t *p, const struct lb_pack_entry *e)
{
	memcpy(p, e->id.b, LB_ID_LEN);
	lb_put32(p + 32, e->offset);
	lb_put32(p + 36, e->stored);
	lb_put32(p + 40, e->raw);
	p[44] = e->codec;
	p[45] = e->type;
	lb_put16(p + 46, e->nbases);
}

static void decode_entry(const uint8_t *p, struct lb_pack_entry *e)
{
	memcpy(e->id.b, p, LB_ID_LEN);
	e->offset = lb_get32(p + 32);
	e->stored = lb_get32(p + 36);
	e->raw = lb_get32(p + 40);
	e->codec = p[44];
	e->type = p[45];
	e->nbases = lb_get16(p + 46);
}

int lb_pack_seal(struct lb_pack_writer *w)
{
	if (w->failed)
		return w->failed;
	if (w->sealed)
		return -EINVAL;
	uint64_t footer_off = w->size;
	uint32_t fcrc = 0;
	uint8_t buf[LB_PACK_ENTRY_SIZE * 64];
	size_t fill = 0;
	for (size_t i = 0; i < w->n; i++) {
		encode_entry(buf + fill, &w->entries[i]);
		fcrc = lb_crc32c(fcrc, buf + fill, LB_PACK_ENTRY_SIZE);
		fill += LB_PACK_ENTRY_SIZE;
		if (fill == sizeof(buf) || i + 1 == w->n) {
			int r = wr(w, buf, fill);
			if (r < 0)
				return r;
			fill = 0;
		}
	}
	uint8_t t[LB_PACK_TRAILER_SIZE];
	lb_put64(t, footer_off);
	lb_put32(t + 8, (uint32_t)w->n);
	lb_put32(t + 12, fcrc);
	uint32_t file_crc = lb_crc32c(w->crc, t, 16);
	lb_put32(t + 16, file_crc);
	lb_put32(t + 20, LB_FORMAT_VERSION);
	memcpy(t + 24, LB_PACK_SEAL_MAGIC, 8);
	int r = wr(w, t, sizeof(t));
	if (r < 0)
		return r;
	struct lb_obj_writer *ow = w->ow;
	w->ow = NULL;
	r = w->be->ops->put_commit(ow);
	if (r < 0) {
		w->failed = r;
		return r;
	}
	w->sealed = 1;
	return 0;
}

void lb_pack_writer_free(struct lb_pack_writer *w)
{
	if (!w)
		return;
	if (w->ow)
		w->be->ops->put_abort(w->ow);
	free(w->entries);
	free(w);
}

static int parse_trailer(const char *name, const uint8_t *t, uint64_t size, uint64_t *footer_off, uint32_t *nblobs, uint32_t *fcrc)
{
	if (memcmp(t + 24, LB_PACK_SEAL_MAGIC, 8) != 0) {
		lb_set_error("pack %s is not sealed (torn write or damage)", name);
		return -EBADMSG;
	}
	if (lb_get32(t + 20) > LB_FORMAT_VERSION) {
		lb_set_error("pack %s has format version %u, newer than this lumbung", name, lb_get32(t + 20));
		return -EPROTONOSUPPORT;
	}
	*footer_off = lb_get64(t);
	*nblobs = lb_get32(t + 8);
	*fcrc = lb_get32(t + 12);
	/* Compare without overflow: every term is checked against size first. */
	if (*footer_off < LB_PACK_HEADER_SIZE || *footer_off > size ||
	    (uint64_t)*nblobs > (size - *footer_off) / LB_PACK_ENTRY_SIZE ||
	    *footer_off + (uint64_t)*nblobs * LB_PACK_ENTRY_SIZE + LB_PACK_TRAILER_SIZE != size) {
		lb_set_error("pack %s: trailer does not match its size", name);
		return -EBADMSG;
	}
	return 0;
}

int lb_pack_read_footer(struct lb_backend *be, const struct lb_pack_id *id,
			struct lb_pack_entry **entries, size_t *n)
{
	char name[96];
	lb_pack_name(id, name, sizeof(name));
	uint64_t size;
	int r = be->ops->stat(be, name, &size);
	if (r < 0) {
		lb_set_error("pack %s: %s", name, strerror(-r));
		return r;
	}
	if (size < LB_PACK_HEADER_SIZE + LB_PACK_TRAILER_SIZE) {
		lb_set_error("pack %s is truncated (%llu bytes)", name, (unsigned long long)size);
		return -EBADMSG;
	}
	uint8_t t[LB_PACK_TRAILER_SIZE];
	r = be->ops->get(be, name, size - LB_PACK_TRAILER_SIZE, t, sizeof(t));
	if (r < 0) {
		lb_set_error("pack %s: cannot read its trailer: %s", name, strerror(-r));
		return r;
	}
	uint64_t foff;
	uint32_t nb, fcrc;
	r = parse_trailer(name, t, size, &foff, &nb, &fcrc);
	if (r < 0)
		return r;
	size_t flen = (size_t)nb * LB_PACK_ENTRY_SIZE;
	uint8_t *f = malloc(flen ? flen : 1);
	struct lb_pack_entry *es = lb_mallocarray(nb, sizeof(*es));
	if (!f || !es) {
		free(f);
		free(es);
		return -ENOMEM;
	}
	r = be->ops->get(be, name, foff, f, flen);
	if (r < 0)
		lb_set_error("pack %s: cannot read its footer: %s", name, strerror(-r));
	if (r == 0 && lb_crc32c(0, f, flen) != fcrc) {
		lb_set_error("pack %s: footer checksum mismatch", name);
		r = -EBADMSG;
	}
	for (uint32_t i = 0; r == 0 && i < nb; i++) {
		decode_entry(f + (size_t)i * LB_PACK_ENTRY_SIZE, &es[i]);
		if (es[i].nbases > LB_BLOB_MAX_BASES || es[i].offset < LB_PACK_HEADER_SIZE ||
		    (uint64_t)es[i].offset + lb_blob_buf_size(&es[i]) > foff) {
			lb_set_error("pack %s: footer entry %u points outside the pack", name, i);
			r = -EBADMSG;
		}
	}
	free(f);
	if (r < 0) {
		free(es);
		return r;
	}
	*entries = es;
	*n = nb;
	return 0;
}

uint32_t lb_blob_crc(const uint8_t *blob, size_t len)
{
	uint32_t crc = lb_crc32c(0, blob, 48);
	return lb_crc32c(crc, blob + LB_BLOB_HEADER_SIZE, len - LB_BLOB_HEADER_SIZE);
}

/* Checks a blob header against its entry (either form) and the crc over
 * header, base list and payload; fills *out. */
static int check_blob(const char *name, const struct lb_pack_entry *e, const uint8_t *buf, struct lb_blob *out)
{
	char hex[LB_ID_HEX];
	uint16_t nb = lb_get16(buf + 6);
	uint32_t stored = lb_get32(buf + 12);
	int sizes_ok = e->nbases == LB_NBASES_INDEX
			       ? nb <= LB_BLOB_MAX_BASES && (uint64_t)stored + (uint64_t)nb * LB_ID_LEN == e->stored
			       : nb == e->nbases && stored == e->stored;
	/* Codec 2 always names its bases; no other codec has any. */
	int bases_ok = (buf[4] == LB_CODEC_ZSTD_DELTA) == (nb > 0);
	if (lb_get32(buf) != LB_BLOB_MAGIC || buf[4] != e->codec || buf[5] != e->type || !sizes_ok || !bases_ok ||
	    lb_get32(buf + 8) != e->raw || memcmp(buf + 16, e->id.b, LB_ID_LEN) != 0 || lb_get32(buf + 52) != 0) {
		lb_set_error("chunk %s in pack %s at offset %u: blob header does not match the index",
			     lb_id_hex(&e->id, hex), name, e->offset);
		return -EBADMSG;
	}
	if (lb_blob_crc(buf, lb_blob_buf_size(e)) != lb_get32(buf + 48)) {
		lb_set_error("chunk %s in pack %s at offset %u: checksum mismatch",
			     lb_id_hex(&e->id, hex), name, e->offset);
		return -EBADMSG;
	}
	out->nbases = nb;
	out->bases = buf + LB_BLOB_HEADER_SIZE;
	out->stored = stored;
	out->payload = buf + LB_BLOB_HEADER_SIZE + (size_t)nb * LB_ID_LEN;
	return 0;
}

int lb_blob_get(struct lb_backend *be, const struct lb_pack_id *pack, const struct lb_pack_entry *e,
		uint8_t *buf, struct lb_blob *out)
{
	char name[96];
	lb_pack_name(pack, name, sizeof(name));
	int r = be->ops->get(be, name, e->offset, buf, lb_blob_buf_size(e));
	if (r < 0) {
		char hex[LB_ID_HEX];
		lb_set_error("chunk %s in pack %s at offset %u: %s", lb_id_hex(&e->id, hex), name,
			     e->offset, r == -EBADMSG ? "pack is truncated" : strerror(-r));
		return r == -ENOENT ? -EBADMSG : r;
	}
	return check_blob(name, e, buf, out);
}

int lb_blob_read(struct lb_backend *be, const struct lb_pack_id *pack, const struct lb_pack_entry *e,
		 uint8_t *buf, const uint8_t **payload, struct lb_id *bases)
{
	struct lb_blob b;
	int r = lb_blob_get(be, pack, e, buf, &b);
	if (r < 0)
		return r;
	if (bases && b.nbases)
		memcpy(bases, b.bases, (size_t)b.nbases * LB_ID_LEN);
	*payload = b.payload;
	return 0;
}

int lb_pack_verify(struct lb_backend *be, const struct lb_pack_id *id, lb_pack_blob_cb cb, void *arg)
{
	char name[96];
	lb_pack_name(id, name, sizeof(name));
	uint8_t *all;
	size_t size;
	int r = lb_backend_read_all(be, name, (size_t)1 << 32, &all, &size);
	if (r < 0) {
		lb_set_error("pack %s: %s", name, r == -ENOENT ? "missing" : strerror(-r));
		return r == -ENOENT ? -EBADMSG : r;
	}
	uint64_t foff;
	uint32_t nb, fcrc;
	int bad = 0;
	if (size < LB_PACK_HEADER_SIZE + LB_PACK_TRAILER_SIZE) {
		lb_set_error("pack %s is truncated (%zu bytes)", name, size);
		r = -EBADMSG;
		goto out;
	}
	const uint8_t *t = all + size - LB_PACK_TRAILER_SIZE;
	r = parse_trailer(name, t, size, &foff, &nb, &fcrc);
	if (r < 0)
		goto out;
	/* Keep going on a file checksum mismatch: the blob checks below say
	 * which chunks are hit. */
	int file_bad = lb_crc32c(0, all, size - 16) != lb_get32(t + 16);
	if (memcmp(all, LB_PACK_MAGIC, 8) != 0 || lb_get32(all + 8) > LB_FORMAT_VERSION ||
	    (lb_get32(all + 12) != LB_PACK_DATA && lb_get32(all + 12) != LB_PACK_META) ||
	    memcmp(all + 16, id->b, LB_PACK_ID_LEN) != 0) {
		lb_set_error("pack %s: bad header", name);
		r = -EBADMSG;
		goto out;
	}
	if (lb_crc32c(0, all + foff, (size_t)nb * LB_PACK_ENTRY_SIZE) != fcrc) {
		lb_set_error("pack %s: footer checksum mismatch", name);
		r = -EBADMSG;
		goto out;
	}
	for (uint32_t i = 0; i < nb; i++) {
		struct lb_pack_entry e;
		decode_entry(all + foff + (size_t)i * LB_PACK_ENTRY_SIZE, &e);
		if (e.nbases > LB_BLOB_MAX_BASES || e.offset < LB_PACK_HEADER_SIZE ||
		    (uint64_t)e.offset + lb_blob_buf_size(&e) > foff) {
			lb_set_error("pack %s: footer entry %u points outside the pack", name, i);
			r = -EBADMSG;
			goto out;
		}
		struct lb_blob blob;
		int br = check_blob(name, &e, all + e.offset, &blob);
		if (br < 0)
			bad = br;
		if (cb) {
			r = cb(arg, &e, br < 0 ? NULL : blob.payload);
			if (r < 0)
				goto out;
		}
	}
	if (file_bad) {
		lb_set_error("pack %s: file checksum mismatch", name);
		bad = -EBADMSG;
	}
	r = bad;
out:
	free(all);
	return r;
}
