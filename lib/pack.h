/* pack.h - packs: append-only objects holding many compressed blobs.
 *
 * A writer appends blobs and seals the pack with a footer (one entry per
 * blob) and a trailer carrying checksums; only then does the object appear
 * under its name.  A pack whose trailer is missing or does not verify was
 * never sealed (or was damaged) and is never read as valid.  Writers are not
 * thread-safe; the store serialises appends. */
#ifndef LB_PACK_H
#define LB_PACK_H

#include "backend.h"
#include "format.h"
#include "hash.h"

#include <stddef.h>
#include <stdint.h>

struct lb_pack_id {
	uint8_t b[LB_PACK_ID_LEN];
};

/* One blob as listed in a pack footer and in the index.  A footer knows
 * each blob's nbases and payload size; the index does not keep nbases, and
 * for a delta blob its `stored` counts the base list and the payload
 * together (the bytes after the header), with nbases set to
 * LB_NBASES_INDEX.  lb_blob_get resolves either form. */
struct lb_pack_entry {
	struct lb_id id;
	uint32_t offset; /* of the blob header within the pack */
	uint32_t stored; /* payload bytes (index form: bytes after the header) */
	uint32_t raw;    /* plaintext bytes */
	uint8_t codec;
	uint8_t type;
	uint16_t nbases;
};
#define LB_NBASES_INDEX 0xffffu

/* Bytes after the blob header: the base list and the payload. */
static inline uint64_t lb_pack_entry_tail(const struct lb_pack_entry *e)
{
	return e->nbases == LB_NBASES_INDEX ? e->stored : (uint64_t)e->stored + (uint64_t)e->nbases * 32u;
}

/* Writes the object name of a pack ("packs/ab/<32 hex>") into buf. */
void lb_pack_name(const struct lb_pack_id *id, char *buf, size_t len);
/* Parses a pack object name back into an id; 0 or -EINVAL. */
int lb_pack_parse_name(const char *name, struct lb_pack_id *id);

struct lb_pack_writer;

/* Starts a new pack of the given kind (LB_PACK_DATA or LB_PACK_META) with a
 * fresh random id.  Returns 0 and *out, or -errno. */
int lb_pack_writer_new(struct lb_backend *be, int kind, struct lb_pack_writer **out);

/* Appends one blob.  payload holds stored bytes encoded with codec; bases
 * lists nbases base chunk ids (delta codec only).  Sets *offset to the blob's
 * position.  After a failure the writer can only be aborted. */
int lb_pack_append(struct lb_pack_writer *w, const struct lb_id *id, int type, int codec,
		   const struct lb_id *bases, uint16_t nbases, uint32_t raw,
		   const void *payload, uint32_t stored, uint32_t *offset);

/* Bytes written so far and blobs appended. */
uint64_t lb_pack_writer_size(const struct lb_pack_writer *w);
size_t lb_pack_writer_count(const struct lb_pack_writer *w);
const struct lb_pack_id *lb_pack_writer_id(const struct lb_pack_writer *w);
/* The entries appended so far (valid until the writer is freed). */
const struct lb_pack_entry *lb_pack_writer_entries(const struct lb_pack_writer *w, size_t *n);

/* Writes footer and trailer and makes the pack durable and visible.  The
 * writer stays allocated (for its entries) until lb_pack_writer_free(). */
int lb_pack_seal(struct lb_pack_writer *w);
/* Frees the writer; an unsealed pack is discarded. */
void lb_pack_writer_free(struct lb_pack_writer *w);

/* Reads and verifies a sealed pack's trailer and footer.  Returns 0 and a
 * new array *entries (caller frees) of *n entries, -EBADMSG when the pack is
 * torn or damaged (with a detail), or -errno. */
int lb_pack_read_footer(struct lb_backend *be, const struct lb_pack_id *id,
			struct lb_pack_entry **entries, size_t *n);

/* Reads the blob at offset and checks its header and crc against what the
 * index says (e).  On success the payload is copied into buf, which must hold
 * e->stored bytes plus LB_BLOB_HEADER_SIZE + 32 * e->nbases scratch (use
 * lb_blob_buf_size), and *payload points into buf; bases (if not NULL)
 * receives up to LB_BLOB_MAX_BASES base ids.  -EBADMSG on any mismatch. */
int lb_blob_read(struct lb_backend *be, const struct lb_pack_id *pack, const struct lb_pack_entry *e,
		 uint8_t *buf, const uint8_t **payload, struct lb_id *bases);
static inline size_t lb_blob_buf_size(const struct lb_pack_entry *e)
{
	return LB_BLOB_HEADER_SIZE + (size_t)lb_pack_entry_tail(e);
}
/* The CRC-32C a blob laid out whole in len bytes (header, base ids,
 * payload) must carry at offset 48: over the header's first 48 bytes and
 * everything after the header. */
uint32_t lb_blob_crc(const uint8_t *blob, size_t len);

/* A blob as read, resolved from either form of entry: payload and base
 * ids point into the caller's buffer. */
struct lb_blob {
	const uint8_t *payload;
	uint32_t stored;      /* payload bytes */
	uint16_t nbases;
	const uint8_t *bases; /* nbases ids of LB_ID_LEN bytes */
};
int lb_blob_get(struct lb_backend *be, const struct lb_pack_id *pack, const struct lb_pack_entry *e,
		uint8_t *buf, struct lb_blob *out);

/* Reads a whole pack and checks every byte: header, every blob's crc, the
 * footer and the file checksum.  For each blob listed in the footer calls cb
 * (if not NULL) with its entry and payload, or with payload NULL when that
 * blob is damaged; cb may decode and re-hash it, and a negative return stops
 * the walk.  Returns 0, or -EBADMSG with a detail naming damage found (when
 * the footer itself is unreadable no blob is reported). */
typedef int (*lb_pack_blob_cb)(void *arg, const struct lb_pack_entry *e, const uint8_t *payload);
int lb_pack_verify(struct lb_backend *be, const struct lb_pack_id *id, lb_pack_blob_cb cb, void *arg);

#endif
