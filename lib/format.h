/* format.h - constants of the on-disk format, version 1.
 *
 * doc/FORMAT.md is the prose specification; this header is its mirror in
 * code.  All integers are little-endian.  Every structure starts with a magic
 * and carries a checksum, so that a torn or flipped byte is detected rather
 * than read as data.
 *
 *   config                    store parameters (INI text, read with inih)
 *   lock                      owner lock (flock) holding the owner's pid
 *   packs/XX/<32 hex>         sealed packs of blobs (immutable)
 *   index/<16 hex seq>        sorted index runs: chunk id -> pack, offset
 *   snapshots/<tenant>/<32 hex>  snapshot heads (immutable, self-checking)
 *   tmp/                      objects being written; removed on open
 */
#ifndef LB_FORMAT_H
#define LB_FORMAT_H

#define LB_FORMAT_VERSION 1

/* ---- pack --------------------------------------------------------------
 * header (32): magic[8] "LBPACK01" | u32 version | u32 kind | pack id[16]
 * blobs, each: blob header (56) | nbases * base id[32] | payload
 * footer: nblobs * footer entry (48)
 * trailer (32): u64 footer offset | u32 nblobs | u32 footer crc32c |
 *               u32 crc32c of bytes [0, size - 16) | u32 version |
 *               magic[8] "LBPKSEAL"
 */
#define LB_PACK_MAGIC "LBPACK01"
#define LB_PACK_SEAL_MAGIC "LBPKSEAL"
#define LB_PACK_HEADER_SIZE 32
#define LB_PACK_TRAILER_SIZE 32
#define LB_PACK_ID_LEN 16
enum { LB_PACK_DATA = 1, LB_PACK_META = 2 };

/* blob header (56): u32 magic | u8 codec | u8 type | u16 nbases |
 * u32 raw size | u32 stored size | id[32] | u32 crc32c | u32 reserved (0).
 * The crc covers header bytes 0..47, the base ids and the payload. */
#define LB_BLOB_MAGIC 0x424c424cu /* "LBLB" */
#define LB_BLOB_HEADER_SIZE 56
#define LB_BLOB_MAX_BASES 16
enum { LB_BLOB_DATA = 1, LB_BLOB_TREE = 2 };

/* footer entry (48): id[32] | u32 offset | u32 stored size | u32 raw size |
 * u8 codec | u8 type | u16 nbases */
#define LB_PACK_ENTRY_SIZE 48

/* ---- index run ---------------------------------------------------------
 * header (32): magic[8] "LBINDEX1" | u32 version | u32 npacks |
 *              u64 nentries | u64 covers (runs with seq <= covers are
 *              superseded by this one; 0 for none)
 * pack table: npacks * pack id[16]
 * entries sorted by id: nentries * (id[32] | u32 pack (bits 0-23) codec
 *              (24-27) type (28-31) | u32 offset | u32 stored | u32 raw)
 * trailer: u32 crc32c of everything before it
 */
#define LB_INDEX_MAGIC "LBINDEX1"
#define LB_INDEX_HEADER_SIZE 32
#define LB_INDEX_ENTRY_SIZE 48
#define LB_INDEX_MAX_PACKS (1u << 24)

/* ---- snapshot head -----------------------------------------------------
 * magic[8] "LBSNAP01" | u32 version | u32 body length | body (varint
 * records, see snapshot.c) | sha256[32] of everything before it.
 * The snapshot id is the first 16 bytes of that sha256 and the object name
 * is its hex form, so a head proves its own name. */
#define LB_SNAP_MAGIC "LBSNAP01"
#define LB_SNAP_ID_LEN 16

#endif
