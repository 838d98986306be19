/* test-pack.c - unit tests of packs (lib/pack.c) on the local backend.
 *
 * Covers: writing a pack with blobs of every codec (raw and zstd chosen by
 * lb_compress, forced raw, and a delta blob carrying base ids), the offsets
 * and sizes the format implies, sealing, reading the footer back, reading
 * and decoding every blob, lb_pack_verify on a clean pack; an empty pack;
 * torn packs (truncated at many lengths, or extended) rejected with
 * -EBADMSG; an aborted writer leaving no object behind; single-byte damage
 * in a payload, a blob header, the footer, the trailer and the header found
 * by the right readers; and lb_pack_name / lb_pack_parse_name. */
#include "config.h"

#include "backend.h"
#include "codec.h"
#include "format.h"
#include "hash.h"
#include "pack.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "tap.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			v = splitmix64(&seed);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

/* Text-like bytes that zstd shrinks well. */
static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
	static const char *const words[] = { "lumbung ", "rice ", "barn ", "backup ", "chunk ",
					     "pack ", "store\n", "deduplicate ", "the ", "of " };
	size_t i = 0;
	while (i < n) {
		const char *w = words[splitmix64(&seed) % LB_ARRAY_SIZE(words)];
		for (; *w && i < n; w++)
			p[i++] = (uint8_t)*w;
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(99);
	}
	return p;
}

static void *xmemdup(const void *src, size_t n)
{
	void *p = xmalloc(n);
	memcpy(p, src, n);
	return p;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	uint8_t *p = xmalloc((size_t)st.st_size);
	ssize_t n = pread(fd, p, (size_t)st.st_size, 0);
	close(fd);
	if (n != st.st_size) {
		free(p);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return p;
}

/* Rewrites a file in place (same inode, as damage on disk would be) with
 * the given content and length. */
static int rewrite_file(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	int ok = pwrite(fd, data, len, 0) == (ssize_t)len && ftruncate(fd, (off_t)len) == 0;
	close(fd);
	return ok ? 0 : -1;
}

static int flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;
	if (fd < 0)
		return -1;
	int ok = pread(fd, &c, 1, (off_t)off) == 1;
	c ^= 0x20;
	ok = ok && pwrite(fd, &c, 1, (off_t)off) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int count_cb(void *arg, const char *name, uint64_t size)
{
	(*(size_t *)arg)++;
	return 0;
}

static size_t count_objects(struct lb_backend *be, const char *prefix)
{
	size_t n = 0;
	if (be->ops->list(be, prefix, count_cb, &n) < 0)
		return (size_t)-1;
	return n;
}

/* ---- the pack under test --------------------------------------------------- */

#define NBLOBS 12

struct blob {
	uint8_t *plain; /* plaintext */
	size_t plen;
	uint8_t *payload; /* stored bytes */
	size_t slen;
	struct lb_id id;
	int codec, type;
	uint16_t nbases;
	struct lb_id bases[3];
	uint32_t offset; /* expected, from the format */
};

static struct blob blobs[NBLOBS];
static struct lb_pack_id pack_id;
static char pack_path[512];
static uint64_t pack_size, footer_off;

/* Frames carry zstd's checksum of their content, which decoding checks:
 * what lets readers skip hashing a chunk against its id (codec.h). */
static void test_frame_checksums(void)
{
	enum { N = 300000 };
	uint8_t *rnd = xmalloc(N), *txt = xmalloc(N), *plain = xmalloc(N);
	fill_random(rnd, N, 77);
	fill_text(txt, N, 78);
	const void *out;
	size_t outlen;
	int codec = lb_compress(3, txt, N, &out, &outlen);
	tap_ok(codec == LB_CODEC_ZSTD && outlen < N / 2 && lb_zstd_checked(out, outlen),
	       "a compressible chunk's frame carries a checksum (%zu -> %zu bytes)", (size_t)N, outlen);
	codec = lb_compress(3, rnd, N, &out, &outlen);
	int ok = codec == LB_CODEC_ZSTD && outlen > N && outlen <= N + LB_FRAME_SLACK(N) &&
		 lb_zstd_checked(out, outlen);
	tap_ok(ok, "an incompressible chunk goes into a checked frame of stored blocks (%zu -> %zu bytes)", (size_t)N,
	       outlen);
	if (ok) {
		uint8_t *frame = xmemdup(out, outlen);
		tap_ok(lb_decompress(LB_CODEC_ZSTD, frame, outlen, plain, N) == 0 && memcmp(plain, rnd, N) == 0,
		       "it decodes to the chunk");
		/* A byte in a stored block decodes as it is: only the checksum
		 * can tell. */
		frame[outlen / 2] ^= 0x01;
		tap_ok(lb_decompress(LB_CODEC_ZSTD, frame, outlen, plain, N) == -EBADMSG,
		       "one byte changed inside a stored block fails the frame's checksum: -EBADMSG");
		frame[outlen / 2] ^= 0x01;
		/* Another frame after it would decode unchecked. */
		uint8_t *two = xmalloc(2 * outlen);
		memcpy(two, frame, outlen);
		memcpy(two + outlen, frame, outlen);
		tap_ok(!lb_zstd_checked(two, 2 * outlen) && !lb_zstd_checked(frame, outlen - 1) &&
		       !lb_zstd_checked(frame, 4),
		       "two frames back to back, a cut frame or a bare magic number are not a checked frame");
		free(two);
		free(frame);
	}
	int was = lb_codec_checksums(0);
	codec = lb_compress(3, txt, N, &out, &outlen);
	int plain_unchecked = codec == LB_CODEC_ZSTD && !lb_zstd_checked(out, outlen);
	codec = lb_compress(3, rnd, N, &out, &outlen);
	tap_ok(plain_unchecked && codec == LB_CODEC_RAW && outlen == N,
	       "with checksums off (the older format) frames carry none and incompressible chunks go raw");
	void *dout;
	size_t dlen;
	lb_codec_checksums(1);
	int dr = lb_compress_delta(3, txt, N / 2, txt + N / 4, N / 2, 12, &dout, &dlen);
	tap_ok(dr == LB_CODEC_ZSTD_DELTA && lb_zstd_checked((uint8_t *)dout + 12, dlen - 12),
	       "a delta's frame carries a checksum");
	lb_codec_checksums(was);
	free(rnd);
	free(txt);
	free(plain);
}

static void make_blobs(void)
{
	uint64_t seed = 99;
	for (int i = 0; i < NBLOBS; i++) {
		struct blob *b = &blobs[i];
		b->type = i % 4 == 3 ? LB_BLOB_TREE : LB_BLOB_DATA;
		if (i == 0)
			b->plen = 0;
		else
			b->plen = 1 + splitmix64(&seed) % 200000;
		b->plain = xmalloc(b->plen);
		if (i % 2)
			fill_text(b->plain, b->plen, splitmix64(&seed));
		else
			fill_random(b->plain, b->plen, splitmix64(&seed));
		lb_sha256(b->plain, b->plen, &b->id);
		if (i == 5) {
			/* Forced raw although compressible. */
			b->codec = LB_CODEC_RAW;
			b->payload = xmemdup(b->plain, b->plen);
			b->slen = b->plen;
		} else if (i == 7) {
			/* A delta blob: the payload is opaque here, with bases. */
			b->codec = LB_CODEC_ZSTD_DELTA;
			b->nbases = 3;
			for (int k = 0; k < 3; k++)
				lb_sha256(&k, sizeof(k), &b->bases[k]);
			b->slen = 333;
			b->payload = xmalloc(b->slen);
			fill_random(b->payload, b->slen, 4242);
		} else {
			const void *out;
			size_t outlen;
			/* Random data without frame checksums goes raw, as in
			 * stores written before frames carried them. */
			int was = lb_codec_checksums(i % 2);
			b->codec = lb_compress(3, b->plain, b->plen, &out, &outlen);
			lb_codec_checksums(was);
			b->payload = xmemdup(out, outlen);
			b->slen = outlen;
		}
	}
	/* Offsets as the format lays them out: header, then per blob a 56-byte
	 * header, the base ids and the payload. */
	uint32_t off = LB_PACK_HEADER_SIZE;
	for (int i = 0; i < NBLOBS; i++) {
		blobs[i].offset = off;
		off += LB_BLOB_HEADER_SIZE + 32u * blobs[i].nbases + (uint32_t)blobs[i].slen;
	}
	footer_off = off;
	pack_size = off + (uint64_t)NBLOBS * LB_PACK_ENTRY_SIZE + LB_PACK_TRAILER_SIZE;
}

static void free_blobs(void)
{
	for (int i = 0; i < NBLOBS; i++) {
		free(blobs[i].plain);
		free(blobs[i].payload);
	}
}

static int entry_matches(const struct lb_pack_entry *e, const struct blob *b)
{
	return lb_id_cmp(&e->id, &b->id) == 0 && e->offset == b->offset && e->stored == b->slen &&
	       e->raw == b->plen && e->codec == b->codec && e->type == b->type && e->nbases == b->nbases;
}

static int find_blob_by_offset(uint32_t off)
{
	for (int i = 0; i < NBLOBS; i++)
		if (blobs[i].offset == off)
			return i;
	return -1;
}

static struct lb_pack_entry entry_of(const struct blob *b)
{
	return (struct lb_pack_entry){ .id = b->id, .offset = b->offset, .stored = (uint32_t)b->slen,
				       .raw = (uint32_t)b->plen, .codec = (uint8_t)b->codec,
				       .type = (uint8_t)b->type, .nbases = b->nbases };
}

/* Reads blob i through lb_blob_read; returns its result and, on success,
 * whether payload and bases are the ones written. */
static int read_blob(struct lb_backend *be, int i, int *same)
{
	struct blob *b = &blobs[i];
	struct lb_pack_entry e = entry_of(b);
	uint8_t *buf = xmalloc(lb_blob_buf_size(&e));
	const uint8_t *payload = NULL;
	struct lb_id bases[LB_BLOB_MAX_BASES];
	int r = lb_blob_read(be, &pack_id, &e, buf, &payload, bases);
	*same = 0;
	if (r == 0)
		*same = payload && memcmp(payload, b->payload, b->slen) == 0 &&
			(b->nbases == 0 || memcmp(bases, b->bases, sizeof(struct lb_id) * b->nbases) == 0);
	free(buf);
	return r;
}

struct verify_log {
	int calls[NBLOBS];
	int null_payload[NBLOBS];
	int wrong_payload;
	int unknown;
};

static int verify_cb(void *arg, const struct lb_pack_entry *e, const uint8_t *payload)
{
	struct verify_log *v = arg;
	int i = find_blob_by_offset(e->offset);
	if (i < 0 || !entry_matches(e, &blobs[i])) {
		v->unknown++;
		return 0;
	}
	v->calls[i]++;
	if (!payload)
		v->null_payload[i]++;
	else if (memcmp(payload, blobs[i].payload, blobs[i].slen) != 0)
		v->wrong_payload++;
	return 0;
}

static int verify(struct lb_backend *be, struct verify_log *v)
{
	memset(v, 0, sizeof(*v));
	return lb_pack_verify(be, &pack_id, verify_cb, v);
}

static int total_calls(const struct verify_log *v)
{
	int n = v->unknown;
	for (int i = 0; i < NBLOBS; i++)
		n += v->calls[i];
	return n;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_write(struct lb_backend *be, const char *dir)
{
	struct lb_pack_writer *w;
	int r = lb_pack_writer_new(be, LB_PACK_DATA, &w);
	tap_ok(r == 0, "writer_new on a local backend");
	if (r < 0)
		exit(1);
	pack_id = *lb_pack_writer_id(w);
	int codecs[3] = { 0, 0, 0 };
	int offsets_ok = 1;
	for (int i = 0; i < NBLOBS; i++) {
		struct blob *b = &blobs[i];
		uint32_t off = 0;
		r = lb_pack_append(w, &b->id, b->type, b->codec, b->nbases ? b->bases : NULL, b->nbases,
				   (uint32_t)b->plen, b->payload, (uint32_t)b->slen, &off);
		if (r < 0)
			break;
		if (off != b->offset)
			offsets_ok = 0;
		codecs[b->codec]++;
	}
	tap_ok(r == 0, "append %d blobs", NBLOBS);
	tap_ok(codecs[LB_CODEC_RAW] >= 3 && codecs[LB_CODEC_ZSTD] >= 3 && codecs[LB_CODEC_ZSTD_DELTA] == 1,
	       "blobs use every codec (raw %d, zstd %d, delta %d)", codecs[0], codecs[1], codecs[2]);
	tap_ok(offsets_ok, "append reports the offsets the format implies");
	tap_ok(lb_pack_writer_count(w) == NBLOBS, "writer counts the blobs");
	tap_ok(lb_pack_writer_size(w) == footer_off, "writer size is header plus blobs (%llu)",
	       (unsigned long long)footer_off);
	size_t n;
	const struct lb_pack_entry *es = lb_pack_writer_entries(w, &n);
	int same = n == NBLOBS;
	for (size_t i = 0; same && i < n; i++)
		same = entry_matches(&es[i], &blobs[i]);
	tap_ok(same, "writer entries list what was appended");

	char name[96];
	lb_pack_name(&pack_id, name, sizeof(name));
	uint64_t size;
	tap_ok(be->ops->stat(be, name, &size) == -ENOENT, "no pack object is visible before seal");
	r = lb_pack_seal(w);
	tap_ok(r == 0, "seal");
	tap_ok(lb_pack_seal(w) == -EINVAL, "sealing twice is refused");
	size = 0;
	r = be->ops->stat(be, name, &size);
	tap_ok(r == 0 && size == pack_size, "sealed pack is visible with the size the format implies (%llu)",
	       (unsigned long long)size);
	es = lb_pack_writer_entries(w, &n);
	tap_ok(n == NBLOBS && entry_matches(&es[NBLOBS - 1], &blobs[NBLOBS - 1]),
	       "entries stay available after seal");
	lb_pack_writer_free(w);

	snprintf(pack_path, sizeof(pack_path), "%s/%s", dir, name);
	size_t flen;
	uint8_t *file = read_file(pack_path, &flen);
	tap_ok(file && flen == pack_size && memcmp(file, LB_PACK_MAGIC, 8) == 0 &&
	       lb_get32(file + 12) == LB_PACK_DATA && memcmp(file + 16, pack_id.b, LB_PACK_ID_LEN) == 0 &&
	       memcmp(file + flen - 8, LB_PACK_SEAL_MAGIC, 8) == 0 && lb_get64(file + flen - 32) == footer_off &&
	       lb_get32(file + flen - 24) == NBLOBS,
	       "file %s has header, trailer and footer offset as specified", name);
	free(file);
	tap_ok(count_files(dir) >= 1 && count_objects(be, "packs") == 1, "exactly one object under packs/");
}

static void test_read(struct lb_backend *be)
{
	struct lb_pack_entry *es = NULL;
	size_t n = 0;
	int r = lb_pack_read_footer(be, &pack_id, &es, &n);
	tap_ok(r == 0 && n == NBLOBS, "read_footer returns %d entries", NBLOBS);
	int same = r == 0 && n == NBLOBS;
	for (size_t i = 0; same && i < n; i++)
		same = entry_matches(&es[i], &blobs[i]);
	tap_ok(same, "footer entries equal what was appended (id, offset, sizes, codec, type, nbases)");
	free(es);

	int read_ok = 1, decoded_ok = 1, hash_ok = 1;
	for (int i = 0; i < NBLOBS; i++) {
		int payload_same;
		if (read_blob(be, i, &payload_same) != 0 || !payload_same) {
			read_ok = 0;
			continue;
		}
		struct blob *b = &blobs[i];
		if (b->codec == LB_CODEC_ZSTD_DELTA)
			continue;
		uint8_t *plain = xmalloc(b->plen);
		if (lb_decompress(b->codec, b->payload, b->slen, plain, b->plen) != 0 ||
		    memcmp(plain, b->plain, b->plen) != 0)
			decoded_ok = 0;
		struct lb_id id;
		lb_sha256(plain, b->plen, &id);
		if (lb_id_cmp(&id, &b->id) != 0)
			hash_ok = 0;
		free(plain);
	}
	tap_ok(read_ok, "blob_read returns every payload (and base ids) as written");
	tap_ok(decoded_ok, "every payload decodes to its input");
	tap_ok(hash_ok, "every decoded blob hashes to its id");

	/* The delta codec is reserved: decoding it is refused, not guessed. */
	uint8_t tmp[16];
	tap_ok(lb_decompress(LB_CODEC_ZSTD_DELTA, blobs[7].payload, blobs[7].slen, tmp, sizeof(tmp)) == -ENOTSUP,
	       "decompress of the reserved delta codec is -ENOTSUP");
	const struct blob *z = NULL;
	for (int i = 0; i < NBLOBS && !z; i++)
		if (blobs[i].codec == LB_CODEC_ZSTD && blobs[i].plen > 16)
			z = &blobs[i];
	if (z) {
		uint8_t *plain = xmalloc(z->plen + 1);
		tap_ok(lb_decompress(LB_CODEC_ZSTD, z->payload, z->slen, plain, z->plen - 1) == -EBADMSG &&
		       lb_decompress(LB_CODEC_ZSTD, z->payload, z->slen, plain, z->plen + 1) == -EBADMSG,
		       "zstd payload decoded to a wrong length is -EBADMSG");
		tap_ok(lb_decompress(LB_CODEC_RAW, z->plain, z->plen, plain, z->plen - 1) == -EBADMSG,
		       "raw payload of a wrong length is -EBADMSG");
		free(plain);
	}
	test_frame_checksums();

	/* An entry that does not match the blob header is refused. */
	struct lb_pack_entry e = entry_of(&blobs[2]);
	uint8_t *buf = xmalloc(lb_blob_buf_size(&e) + 64);
	const uint8_t *payload;
	e.raw++;
	tap_ok(lb_blob_read(be, &pack_id, &e, buf, &payload, NULL) == -EBADMSG,
	       "blob_read with a wrong raw size is -EBADMSG");
	e = entry_of(&blobs[2]);
	e.id.b[0] ^= 1;
	tap_ok(lb_blob_read(be, &pack_id, &e, buf, &payload, NULL) == -EBADMSG,
	       "blob_read with a wrong id is -EBADMSG");
	e = entry_of(&blobs[2]);
	e.offset = blobs[3].offset;
	tap_ok(lb_blob_read(be, &pack_id, &e, buf, &payload, NULL) == -EBADMSG,
	       "blob_read at another blob's offset is -EBADMSG");
	free(buf);

	struct verify_log v;
	r = verify(be, &v);
	int each_once = 1;
	for (int i = 0; i < NBLOBS; i++)
		if (v.calls[i] != 1 || v.null_payload[i])
			each_once = 0;
	tap_ok(r == 0, "verify of a clean pack returns 0");
	tap_ok(each_once && v.unknown == 0 && v.wrong_payload == 0,
	       "verify calls back once for every blob with its payload");
}

static void test_empty_pack(struct lb_backend *be)
{
	struct lb_pack_writer *w = NULL;
	int r = lb_pack_writer_new(be, LB_PACK_META, &w);
	if (r == 0)
		r = lb_pack_seal(w);
	struct lb_pack_id id = r == 0 ? *lb_pack_writer_id(w) : (struct lb_pack_id){ { 0 } };
	lb_pack_writer_free(w);
	tap_ok(r == 0, "a pack without blobs can be sealed");
	struct lb_pack_entry *es = NULL;
	size_t n = 99;
	r = lb_pack_read_footer(be, &id, &es, &n);
	tap_ok(r == 0 && n == 0, "its footer reads back with 0 entries");
	free(es);
	struct verify_log v;
	memset(&v, 0, sizeof(v));
	r = lb_pack_verify(be, &id, verify_cb, &v);
	tap_ok(r == 0 && total_calls(&v) == 0, "verify of an empty pack returns 0 without callbacks");
	char name[96];
	lb_pack_name(&id, name, sizeof(name));
	be->ops->remove(be, name);
}

static void test_torn(struct lb_backend *be)
{
	size_t len;
	uint8_t *orig = read_file(pack_path, &len);
	if (!orig) {
		tap_ok(0, "read the pack file back");
		return;
	}
	size_t cuts[16], ncuts = 0;
	for (int k = 0; k < 10; k++)
		cuts[ncuts++] = len / 10 * k;
	cuts[ncuts++] = 1;
	cuts[ncuts++] = LB_PACK_HEADER_SIZE + LB_PACK_TRAILER_SIZE;
	cuts[ncuts++] = len - LB_PACK_TRAILER_SIZE;
	cuts[ncuts++] = len - 8;
	cuts[ncuts++] = len - 1;
	int footer_ok = 1, verify_ok = 1, silent = 1;
	for (size_t i = 0; i < ncuts; i++) {
		if (rewrite_file(pack_path, orig, cuts[i]) < 0) {
			footer_ok = 0;
			break;
		}
		struct lb_pack_entry *es = NULL;
		size_t n;
		int r = lb_pack_read_footer(be, &pack_id, &es, &n);
		if (r != -EBADMSG) {
			tap_diag("truncated to %zu bytes: read_footer returned %d", cuts[i], r);
			footer_ok = 0;
			if (r == 0)
				free(es);
		}
		struct verify_log v;
		r = verify(be, &v);
		if (r != -EBADMSG)
			verify_ok = 0;
		if (total_calls(&v) != 0)
			silent = 0;
	}
	tap_ok(footer_ok, "read_footer of the pack truncated at %zu lengths is -EBADMSG", ncuts);
	tap_ok(verify_ok, "verify of every truncated pack is -EBADMSG");
	tap_ok(silent, "verify reports no blob when the footer is unreadable");

	/* Bytes appended after the trailer: not a sealed pack either. */
	uint8_t *longer = xmalloc(len + 1);
	memcpy(longer, orig, len);
	longer[len] = 0;
	struct lb_pack_entry *es = NULL;
	size_t n;
	int r = rewrite_file(pack_path, longer, len + 1);
	r = r < 0 ? r : lb_pack_read_footer(be, &pack_id, &es, &n);
	tap_ok(r == -EBADMSG, "read_footer of the pack with one byte appended is -EBADMSG");
	if (r == 0)
		free(es);
	free(longer);

	r = rewrite_file(pack_path, orig, len);
	es = NULL;
	r = r < 0 ? r : lb_pack_read_footer(be, &pack_id, &es, &n);
	tap_ok(r == 0 && n == NBLOBS, "the restored pack reads again");
	free(es);
	free(orig);
}

static void test_abort(const char *dir)
{
	char sub[512], tmpdir[600];
	snprintf(sub, sizeof(sub), "%s/abort", dir);
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", sub);
	struct lb_backend *be;
	if (lb_backend_local_open(sub, 1, &be) < 0) {
		tap_ok(0, "open a second backend");
		return;
	}
	struct lb_pack_writer *w;
	int r = lb_pack_writer_new(be, LB_PACK_DATA, &w);
	for (int i = 0; r == 0 && i < 4; i++)
		r = lb_pack_append(w, &blobs[i].id, blobs[i].type, blobs[i].codec, NULL, 0, (uint32_t)blobs[i].plen,
				   blobs[i].payload, (uint32_t)blobs[i].slen, NULL);
	tap_ok(r == 0, "unsealed writer accepted 4 blobs");
	struct lb_pack_id id = *lb_pack_writer_id(w);
	lb_pack_writer_free(w);
	char name[96];
	lb_pack_name(&id, name, sizeof(name));
	uint64_t size;
	tap_ok(count_objects(be, "packs") == 0 && be->ops->stat(be, name, &size) == -ENOENT,
	       "an aborted writer leaves no object under packs/");
	tap_ok(count_files(tmpdir) == 0, "... and no temporary file in tmp/");
	struct lb_pack_entry *es = NULL;
	size_t n;
	r = lb_pack_read_footer(be, &id, &es, &n);
	tap_ok(r == -ENOENT, "read_footer of the aborted pack is -ENOENT (%d)", r);
	if (r == 0)
		free(es);
	lb_backend_free(be);
}

static void test_damage(struct lb_backend *be)
{
	size_t len;
	uint8_t *orig = read_file(pack_path, &len);
	if (!orig) {
		tap_ok(0, "read the pack file back");
		return;
	}
	struct verify_log v;
	struct lb_pack_entry *es = NULL;
	size_t n;
	int same, r;

	/* One byte inside the payload of blob 4. */
	const int k = 4;
	flip_byte(pack_path, blobs[k].offset + LB_BLOB_HEADER_SIZE + blobs[k].slen / 2);
	tap_ok(read_blob(be, k, &same) == -EBADMSG, "payload flip: blob_read of that blob is -EBADMSG");
	int others = 1;
	for (int i = 0; i < NBLOBS; i++)
		if (i != k && (read_blob(be, i, &same) != 0 || !same))
			others = 0;
	tap_ok(others, "payload flip: every other blob still reads");
	r = verify(be, &v);
	tap_ok(r == -EBADMSG, "payload flip: verify is -EBADMSG");
	int exact = v.unknown == 0 && v.wrong_payload == 0;
	for (int i = 0; i < NBLOBS; i++)
		if (v.calls[i] != 1 || v.null_payload[i] != (i == k))
			exact = 0;
	tap_ok(exact, "payload flip: verify passes payload NULL for exactly that blob");
	r = lb_pack_read_footer(be, &pack_id, &es, &n);
	tap_ok(r == 0, "payload flip: the footer still reads");
	free(es);
	rewrite_file(pack_path, orig, len);

	/* The raw size field of blob 9's header. */
	flip_byte(pack_path, blobs[9].offset + 8);
	tap_ok(read_blob(be, 9, &same) == -EBADMSG, "blob header flip: blob_read is -EBADMSG");
	r = verify(be, &v);
	tap_ok(r == -EBADMSG && v.null_payload[9] == 1 && v.calls[9] == 1,
	       "blob header flip: verify is -EBADMSG and reports that blob");
	rewrite_file(pack_path, orig, len);

	/* The reserved word of a blob header (outside the crc) must be 0. */
	flip_byte(pack_path, blobs[2].offset + 53);
	tap_ok(read_blob(be, 2, &same) == -EBADMSG, "reserved word flip: blob_read is -EBADMSG");
	rewrite_file(pack_path, orig, len);

	/* A base id of the delta blob: covered by the blob crc. */
	flip_byte(pack_path, blobs[7].offset + LB_BLOB_HEADER_SIZE + 40);
	tap_ok(read_blob(be, 7, &same) == -EBADMSG, "base id flip: blob_read is -EBADMSG");
	rewrite_file(pack_path, orig, len);

	/* Bytes of the footer: an id, an offset, a codec. */
	const uint64_t foot[3] = { footer_off + 3, footer_off + 2 * LB_PACK_ENTRY_SIZE + 33,
				   footer_off + 5 * LB_PACK_ENTRY_SIZE + 44 };
	for (int i = 0; i < 3; i++) {
		flip_byte(pack_path, foot[i]);
		es = NULL;
		r = lb_pack_read_footer(be, &pack_id, &es, &n);
		tap_ok(r == -EBADMSG, "footer flip at +%llu: read_footer is -EBADMSG",
		       (unsigned long long)(foot[i] - footer_off));
		if (r == 0)
			free(es);
		r = verify(be, &v);
		tap_ok(r == -EBADMSG && total_calls(&v) == 0, "footer flip: verify is -EBADMSG and reports no blob");
		rewrite_file(pack_path, orig, len);
	}

	/* Trailer: footer offset, blob count, footer crc, seal magic. */
	const unsigned tr[4] = { 1, 8, 13, 30 };
	for (int i = 0; i < 4; i++) {
		flip_byte(pack_path, len - LB_PACK_TRAILER_SIZE + tr[i]);
		es = NULL;
		r = lb_pack_read_footer(be, &pack_id, &es, &n);
		tap_ok(r == -EBADMSG, "trailer flip at +%u: read_footer is -EBADMSG", tr[i]);
		if (r == 0)
			free(es);
		rewrite_file(pack_path, orig, len);
	}
	/* A trailer whose footer offset and blob count only add up to the
	 * file size modulo 2^64. */
	uint8_t *forged = xmalloc(len);
	memcpy(forged, orig, len);
	uint32_t nb = UINT32_MAX;
	lb_put64(forged + len - LB_PACK_TRAILER_SIZE,
		 (uint64_t)len - LB_PACK_TRAILER_SIZE - (uint64_t)nb * LB_PACK_ENTRY_SIZE);
	lb_put32(forged + len - LB_PACK_TRAILER_SIZE + 8, nb);
	rewrite_file(pack_path, forged, len);
	free(forged);
	es = NULL;
	r = lb_pack_read_footer(be, &pack_id, &es, &n);
	tap_ok(r == -EBADMSG, "trailer with a wrapping footer offset: read_footer is -EBADMSG (%d)", r);
	if (r == 0)
		free(es);
	tap_ok(verify(be, &v) == -EBADMSG && total_calls(&v) == 0, "... and verify is -EBADMSG");
	rewrite_file(pack_path, orig, len);

	/* The trailer's file checksum only matters to verify. */
	flip_byte(pack_path, len - LB_PACK_TRAILER_SIZE + 17);
	tap_ok(verify(be, &v) == -EBADMSG, "file checksum flip: verify is -EBADMSG");
	rewrite_file(pack_path, orig, len);

	/* The pack header: the magic, and the version (only the file crc). */
	flip_byte(pack_path, 2);
	tap_ok(verify(be, &v) == -EBADMSG, "header magic flip: verify is -EBADMSG");
	rewrite_file(pack_path, orig, len);
	flip_byte(pack_path, 9);
	tap_ok(verify(be, &v) == -EBADMSG, "header version flip: verify is -EBADMSG");
	rewrite_file(pack_path, orig, len);

	r = verify(be, &v);
	tap_ok(r == 0, "the restored pack verifies again");
	free(orig);
}

static void test_names(void)
{
	uint64_t seed = 5;
	int roundtrip = 1, shape = 1;
	for (int i = 0; i < 200; i++) {
		struct lb_pack_id id, back;
		fill_random(id.b, sizeof(id.b), splitmix64(&seed));
		char name[96], hex[2 * LB_PACK_ID_LEN + 1];
		lb_pack_name(&id, name, sizeof(name));
		lb_hex(hex, id.b, LB_PACK_ID_LEN);
		char expect[96];
		snprintf(expect, sizeof(expect), "packs/%c%c/%s", hex[0], hex[1], hex);
		if (strcmp(name, expect) != 0)
			shape = 0;
		memset(&back, 0, sizeof(back));
		if (lb_pack_parse_name(name, &back) != 0 || memcmp(back.b, id.b, LB_PACK_ID_LEN) != 0)
			roundtrip = 0;
	}
	tap_ok(shape, "pack names are packs/<first 2 hex>/<32 hex>");
	tap_ok(roundtrip, "lb_pack_parse_name inverts lb_pack_name (200 random ids)");

	const char *good = "packs/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f0";
	struct lb_pack_id id;
	tap_ok(lb_pack_parse_name(good, &id) == 0 && id.b[0] == 0x0f && id.b[15] == 0xf0,
	       "parse of a hand-written name");
	static const char *const bad[] = {
		"",
		"packs/",
		"packs/0f/",
		"packs/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f",   /* 31 digits */
		"packs/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f00", /* 33 digits */
		"packs/0e/0f1e2d3c4b5a69788796a5b4c3d2e1f0",  /* wrong directory */
		"packs/0f/0f1e2d3c4b5a69788796a5b4c3d2e1fg",  /* not hex */
		"packs/0f/0f1e2d3c4b5a6978 796a5b4c3d2e1f0",  /* space */
		"packs/0f-0f1e2d3c4b5a69788796a5b4c3d2e1f0",  /* no slash */
		"packs/0f1e2d3c4b5a69788796a5b4c3d2e1f0",     /* no directory */
		"pack/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f0a",  /* other prefix */
		"index/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		"packs/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f0/",
		"packs/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f0.tmp",
		"/packs/0f/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
	};
	int rejected = 1;
	for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
		if (lb_pack_parse_name(bad[i], &id) != -EINVAL) {
			tap_diag("accepted malformed name '%s'", bad[i]);
			rejected = 0;
		}
	}
	tap_ok(rejected, "parse rejects %zu malformed names with -EINVAL", LB_ARRAY_SIZE(bad));
	/* lb_pack_name writes lowercase only; an uppercase name is no pack. */
	struct lb_pack_id up;
	tap_ok(lb_pack_parse_name("packs/0F/0F1E2D3C4B5A69788796A5B4C3D2E1F0", &up) == -EINVAL,
	       "parse rejects upper-case hex");
}

int main(void)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", tap_tmpdir("pack"));
	struct lb_backend *be;
	int r = lb_backend_local_open(dir, 1, &be);
	tap_ok(r == 0, "local backend opens %s", dir);
	if (r < 0)
		return tap_done();

	make_blobs();
	test_write(be, dir);
	test_read(be);
	test_empty_pack(be);
	test_torn(be);
	test_abort(dir);
	test_damage(be);
	test_names();

	lb_backend_free(be);
	free_blobs();
	int status = tap_done();
	if (status == 0)
		rm_rf(dir);
	return status;
}
