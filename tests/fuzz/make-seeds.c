/* make-seeds.c - writes the seed corpus of the fuzz targets from the
 * engine's own encoders, so that every seed is a well-formed object of the
 * current format (tests/fuzz/make-seeds.sh runs it; the seeds are
 * committed, this program is not built by default).
 *
 *   tests/fuzz/make-seeds CORPUSDIR
 *
 * Writes CORPUSDIR/NAME/seed-* for every target but conf and archive
 * (make-seeds.sh writes those). */
#include "audit.h"
#include "buf.h"
#include "codec.h"
#include "index.h"
#include "manifest.h"
#include "pack.h"
#include "proto.h"
#include "rdelta.h"
#include "records.h"
#include "snapshot.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static const char *top;
static char store[256];

static void die(const char *what, int r)
{
	fprintf(stderr, "make-seeds: %s: %s %s\n", what, strerror(r < 0 ? -r : r), lb_error_detail());
	exit(1);
}

/* Writes CORPUS/target/name from the given pieces (flag byte first when
 * flag >= 0). */
static void seed(const char *target, const char *name, int flag, const void *data, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", top, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		die(path, errno);
	if (flag >= 0)
		fputc(flag, f);
	if (len && fwrite(data, 1, len, f) != len)
		die(path, errno);
	if (fclose(f) != 0)
		die(path, errno);
}

static uint8_t *slurp(const char *rel, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", store, rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path, errno);
	static uint8_t buf[1 << 20];
	*len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	uint8_t *p = malloc(*len ? *len : 1);
	memcpy(p, buf, *len);
	return p;
}

static void put_u16(struct lb_buf *b, size_t n)
{
	uint8_t t[2] = { (uint8_t)n, (uint8_t)(n >> 8) };
	lb_buf_put(b, t, 2);
}

static void sample_entries(struct lb_entry *e)
{
	static struct lb_xattr xa = { (char *)"user.origin", (uint8_t *)"dumai", 5 };
	static struct lb_chunkref ch[2];
	static struct lb_extent ext[1] = { { 4096, 8192 } };
	memset(e, 0, 4 * sizeof(*e));
	memset(ch[0].id.b, 0x11, LB_ID_LEN);
	ch[0].size = 4096;
	memset(ch[1].id.b, 0x22, LB_ID_LEN);
	ch[1].size = 4096;
	e[0] = (struct lb_entry){ .path = (char *)"etc", .type = LB_FT_DIR, .mode = 0755, .uname = (char *)"root",
				  .gname = (char *)"root", .mtime_ns = 1764000000000000000LL, .nlink = 2 };
	e[1] = (struct lb_entry){ .path = (char *)"etc/hosts", .type = LB_FT_REG, .mode = 0644, .uid = 0,
				  .mtime_ns = 1764000000123456789LL, .ctime_ns = 1764000000123456789LL, .size = 12288,
				  .ino = 42, .nlink = 1, .xattrs = &xa, .nxattrs = 1, .extents = ext, .nextents = 1,
				  .chunks = ch, .nchunks = 2, .acl_access = (char *)"user::rw-\ngroup::r--\nother::r--\n" };
	e[2] = (struct lb_entry){ .path = (char *)"etc/localtime", .type = LB_FT_SYMLINK, .mode = 0777,
				  .link = (char *)"/usr/share/zoneinfo/Asia/Jakarta", .nlink = 1 };
	e[3] = (struct lb_entry){ .path = (char *)"etc/tty0", .type = LB_FT_CHR, .mode = 0620, .rdev_major = 4,
				  .rdev_minor = 0, .nlink = 1 };
}

static void make_proto(void)
{
	struct lb_buf s, p;
	lb_buf_init(&s);
	lb_buf_init(&p);
	struct lb_entry e[4];
	sample_entries(e);
#define FRAME(type)                                                                   \
	do {                                                                          \
		uint8_t h[8] = { 'L', 'B', LB_PROTO_VERSION, (type), 0, 0, 0, 0 };     \
		lb_put32(h + 4, (uint32_t)p.len);                                     \
		lb_buf_put(&s, h, 8);                                                 \
		lb_buf_put(&s, p.p, p.len);                                           \
		lb_buf_reset(&p);                                                     \
	} while (0)
	lb_buf_put_str(&p, "0.1.0");
	FRAME(LB_MSG_HELLO);
	lb_buf_put_str(&p, "dinkes");
	lb_buf_put_str(&p, "simpus");
	lb_buf_put_str(&p, "srv-dinkes");
	lb_buf_put_uv(&p, 1);
	lb_buf_put_str(&p, "nightly");
	FRAME(LB_MSG_BACKUP);
	lb_entry_encode(&p, &e[0]);
	FRAME(LB_MSG_ENTRY);
	e[1].chunks = NULL;
	e[1].nchunks = 0;
	lb_entry_encode(&p, &e[1]);
	FRAME(LB_MSG_FILE);
	lb_buf_put(&p, "hello, dumai", 12);
	FRAME(LB_MSG_DATA);
	lb_buf_put_uv(&p, 1);
	lb_buf_put_uv(&p, 4096);
	lb_buf_put_uv(&p, 12);
	lb_buf_put_uv(&p, 12288);
	FRAME(LB_MSG_FILE_END);
	lb_entry_encode(&p, &e[2]);
	FRAME(LB_MSG_REUSE);
	lb_entry_encode(&p, &e[3]);
	lb_buf_put_uv(&p, 0);
	FRAME(LB_MSG_FILE_RESUME);
	FRAME(LB_MSG_COMMIT);
	seed("proto", "seed-backup", -1, s.p, s.len);
	seed("link", "seed-plain-not-zstd", -1, s.p, s.len);

	/* The link carries the same bytes as a zstd stream. */
	size_t cap = ZSTD_compressBound(s.len);
	uint8_t *z = malloc(cap);
	size_t zn = ZSTD_compress(z, cap, s.p, s.len, 3);
	if (ZSTD_isError(zn))
		die("zstd", EIO);
	seed("link", "seed-backup", -1, z, zn);
	free(z);

	/* Answers: a snapshot summary, an error, the end of a stream. */
	lb_buf_reset(&s);
	struct lb_snapshot sn;
	memset(&sn, 0, sizeof(sn));
	memset(sn.id, 0xab, sizeof(sn.id));
	sn.tenant = (char *)"dinkes";
	sn.dataset = (char *)"simpus";
	sn.host = (char *)"srv-dinkes";
	sn.time_ns = 1764000000000000000LL;
	char *tags[] = { (char *)"nightly", (char *)"monthly" };
	sn.tags = tags;
	sn.ntags = 2;
	sn.nfiles = 3;
	sn.logical = 12300;
	lb_proto_put_snapshot(&p, &sn);
	FRAME(LB_MSG_SNAPSHOT);
	lb_buf_put_uv(&p, EACCES);
	lb_buf_put_str(&p, "not a member of tenant dinkes");
	FRAME(LB_MSG_ERROR);
	FRAME(LB_MSG_END);
	seed("proto", "seed-answers", -1, s.p, s.len);
	lb_buf_free(&s);
	lb_buf_free(&p);
}

static void make_manifest(void)
{
	struct lb_entry e[4];
	sample_entries(e);
	struct lb_buf blob, s;
	lb_buf_init(&blob);
	lb_buf_init(&s);
	for (int i = 0; i < 4; i++)
		lb_entry_encode(&blob, &e[i]);
	/* One blob holding all four. */
	lb_buf_put_u8(&s, 1);
	lb_buf_put_u8(&s, 0);
	put_u16(&s, blob.len);
	lb_buf_put(&s, blob.p, blob.len);
	seed("manifest", "seed-one-blob", -1, s.p, s.len);
	/* Two blobs, cut between entries, with their first paths. */
	lb_buf_reset(&s);
	struct lb_buf b1, b2;
	lb_buf_init(&b1);
	lb_buf_init(&b2);
	lb_entry_encode(&b1, &e[0]);
	lb_entry_encode(&b1, &e[1]);
	lb_entry_encode(&b2, &e[2]);
	lb_entry_encode(&b2, &e[3]);
	lb_buf_put_u8(&s, 0);
	lb_buf_put_u8(&s, 3);
	lb_buf_put(&s, "etc", 3);
	put_u16(&s, b1.len);
	lb_buf_put(&s, b1.p, b1.len);
	lb_buf_put_u8(&s, 13);
	lb_buf_put(&s, "etc/localtime", 13);
	put_u16(&s, b2.len);
	lb_buf_put(&s, b2.p, b2.len);
	seed("manifest", "seed-two-blobs", -1, s.p, s.len);
	lb_buf_free(&b1);
	lb_buf_free(&b2);
	lb_buf_free(&blob);
	lb_buf_free(&s);
}

static void make_snapshot(void)
{
	struct lb_snapshot sn;
	memset(&sn, 0, sizeof(sn));
	sn.tenant = (char *)"dinkes";
	sn.dataset = (char *)"simpus";
	sn.host = (char *)"srv-dinkes";
	sn.time_ns = 1764000000000000000LL;
	char *tags[] = { (char *)"nightly" };
	sn.tags = tags;
	sn.ntags = 1;
	sn.nentries = 4;
	sn.nfiles = 1;
	sn.logical = 12288;
	struct lb_tree_ref t[2];
	memset(t, 0, sizeof(t));
	memset(t[0].id.b, 0x33, LB_ID_LEN);
	t[0].size = 300;
	t[0].first_path = (char *)"etc";
	memset(t[1].id.b, 0x44, LB_ID_LEN);
	t[1].size = 200;
	t[1].first_path = (char *)"etc/localtime";
	sn.tree = t;
	sn.ntree = 2;
	struct lb_buf out;
	lb_buf_init(&out);
	if (lb_snapshot_encode(&sn, &out) < 0)
		die("snapshot", ENOMEM);
	seed("snapshot", "seed-head", 0, out.p, out.len);
	seed("snapshot", "seed-head-fixup", 1, out.p, out.len - LB_ID_LEN);
	lb_buf_free(&out);
}

static struct lb_pack_entry pack_entries[4];
static size_t npack_entries;
static struct lb_pack_id pack_id;

static void make_pack(struct lb_backend *be)
{
	struct lb_pack_writer *w;
	int r = lb_pack_writer_new(be, LB_PACK_DATA, &w);
	if (r < 0)
		die("pack", r);
	static uint8_t text[3000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "lumbung padi "[i % 13];
	struct lb_id id;
	lb_sha256(text, sizeof(text), &id);
	const void *z;
	size_t zn;
	int codec = lb_compress(3, text, sizeof(text), &z, &zn);
	uint32_t off;
	if ((r = lb_pack_append(w, &id, 0, codec, NULL, 0, sizeof(text), z, (uint32_t)zn, &off)) < 0)
		die("append", r);
	uint8_t raw[64];
	memset(raw, 0xe5, sizeof(raw));
	lb_sha256(raw, sizeof(raw), &id);
	if ((r = lb_pack_append(w, &id, 0, LB_CODEC_RAW, NULL, 0, sizeof(raw), raw, sizeof(raw), &off)) < 0)
		die("append", r);
	/* A delta blob against the first chunk. */
	struct lb_id base;
	lb_sha256(text, sizeof(text), &base);
	text[100] = 'X';
	lb_sha256(text, sizeof(text), &id);
	void *dz;
	size_t dn;
	if (lb_compress_delta(3, text, sizeof(text), text, sizeof(text), 0, &dz, &dn) < 0)
		die("delta", EIO);
	if ((r = lb_pack_append(w, &id, 0, LB_CODEC_ZSTD_DELTA, &base, 1, sizeof(text), dz, (uint32_t)dn, &off)) < 0)
		die("append", r);
	if ((r = lb_pack_seal(w)) < 0)
		die("seal", r);
	pack_id = *lb_pack_writer_id(w);
	size_t n;
	const struct lb_pack_entry *es = lb_pack_writer_entries(w, &n);
	memcpy(pack_entries, es, n * sizeof(*es));
	npack_entries = n;
	lb_pack_writer_free(w);
	char name[96];
	lb_pack_name(&pack_id, name, sizeof(name));
	size_t len;
	uint8_t *img = slurp(name, &len);
	seed("pack", "seed-pack", 0, img, len);
	seed("pack", "seed-pack-fixup", 1, img, len);
	free(img);
}

static void make_index(struct lb_backend *be)
{
	struct lb_index *idx;
	int r = lb_index_open(be, &idx);
	if (r < 0)
		die("index", r);
	struct lb_index_pack ip = { pack_id, pack_entries, npack_entries };
	if ((r = lb_index_add(idx, &ip, 1)) < 0)
		die("index add", r);
	lb_index_free(idx);
	size_t len;
	uint8_t *run = slurp("index/0000000000000001", &len);
	struct lb_buf s;
	lb_buf_init(&s);
	put_u16(&s, len);
	lb_buf_put(&s, run, len);
	seed("index", "seed-run", 0, s.p, s.len);
	seed("index", "seed-run-fixup", 3, s.p, s.len);
	/* Two runs, the second covering the first (an interrupted merge). */
	uint8_t *run2 = malloc(len);
	memcpy(run2, run, len);
	lb_put64(run2 + 24, 1);
	put_u16(&s, len);
	lb_buf_put(&s, run2, len);
	seed("index", "seed-two-runs-fixup", 1, s.p, s.len);
	free(run);
	free(run2);
	lb_buf_free(&s);
}

static void make_records(struct lb_backend *be)
{
	int64_t t = 1764000000000000000LL; /* 2025-11-24 */
	struct lb_job_rec j;
	memset(&j, 0, sizeof(j));
	snprintf(j.kind, sizeof(j.kind), "backup");
	snprintf(j.tenant, sizeof(j.tenant), "dinkes");
	snprintf(j.dataset, sizeof(j.dataset), "simpus");
	j.start_ns = t;
	j.end_ns = t + 60000000000LL;
	j.bytes_read = 12288;
	j.files = 4;
	snprintf(j.snapshot, sizeof(j.snapshot), "00112233445566778899aabbccddeeff");
	int r = lb_job_append(be, &j);
	j.status = EIO;
	snprintf(j.error, sizeof(j.error), "cannot read /srv/simpus: Input/output error");
	if (r == 0)
		r = lb_job_append(be, &j);
	struct lb_sample_tenant st[2] = { { "dinkes", 100, 50, 200, 3 }, { "disdik", 10, 5, 20, 1 } };
	struct lb_sample sm = { t, 1000, 10, 5, st, 2 };
	if (r == 0)
		r = lb_sample_append(be, &sm);
	struct lb_audit_rec a = { t, 1000, "budi", "dinkes", "backup", "simpus", 0, "", 12288 };
	if (r == 0)
		r = lb_audit_append(be, &a);
	if (r < 0)
		die("records", r);
	const char *logs[] = { "jobs/2025-11", "usage/2025-11", "audit/2025-11" };
	const char *names[] = { "seed-jobs", "seed-usage", "seed-audit" };
	for (int i = 0; i < 3; i++) {
		size_t len;
		uint8_t *d = slurp(logs[i], &len);
		char nm[64];
		seed("records", names[i], 0, d, len);
		/* The framed form: u16 length + payload per record. */
		struct lb_buf s;
		lb_buf_init(&s);
		for (size_t off = 0; off + 8 <= len;) {
			uint32_t n = lb_get32(d + off);
			put_u16(&s, n);
			lb_buf_put(&s, d + off + 8, n);
			off += 8 + n;
		}
		snprintf(nm, sizeof(nm), "%s-framed", names[i]);
		seed("records", nm, 1, s.p, s.len);
		lb_buf_free(&s);
		free(d);
	}
}

/* The same basis and prefix patterns as fuzz-rdelta.c and fuzz-codec.c. */
static uint8_t basis[8192], prefix[65535];

struct sink {
	struct lb_buf b;
};
static int to_sink(void *arg, const void *data, size_t len)
{
	lb_buf_put(&((struct sink *)arg)->b, data, len);
	return 0;
}

static void make_rdelta(void)
{
	for (size_t i = 0; i < sizeof(basis); i++)
		basis[i] = (uint8_t)(i * 7 + (i >> 8));
	struct sink sig, del;
	lb_buf_init(&sig.b);
	lb_buf_init(&del.b);
	struct lb_rjob *j = lb_rsig_begin(sizeof(basis), to_sink, &sig);
	if (!j || lb_rjob_feed(j, basis, sizeof(basis)) < 0 || lb_rjob_end(j) < 0)
		die("rsig", EIO);
	lb_rjob_free(j);
	seed("rdelta", "seed-signature", 1 | (63 << 1), sig.b.p, sig.b.len);
	struct lb_rsig *rs;
	if (lb_rsig_load(sig.b.p, sig.b.len, &rs) < 0)
		die("rsig load", EBADMSG);
	static uint8_t newer[9000];
	memcpy(newer, basis, sizeof(basis));
	memcpy(newer + 4000, "a few rows updated", 18);
	memset(newer + sizeof(basis), 'n', sizeof(newer) - sizeof(basis));
	j = lb_rdelta_begin(rs, to_sink, &del);
	if (!j || lb_rjob_feed(j, newer, sizeof(newer)) < 0 || lb_rjob_end(j) < 0)
		die("rdelta", EIO);
	lb_rjob_free(j);
	lb_rsig_free(rs);
	seed("rdelta", "seed-delta", 0 | (127 << 1), del.b.p, del.b.len);
	seed("rdelta", "seed-delta-bytewise", 0, del.b.p, del.b.len);
	lb_buf_free(&sig.b);
	lb_buf_free(&del.b);
}

static void make_codec(void)
{
	for (size_t i = 0; i < sizeof(prefix); i++)
		prefix[i] = (uint8_t)(i * 13 + (i >> 9));
	static uint8_t text[5000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "kelurahan "[i % 10] ^ (uint8_t)(i / 1000);
	struct lb_buf s;
	lb_buf_init(&s);
	const void *z;
	size_t zn;
	lb_compress(3, text, sizeof(text), &z, &zn);
	lb_buf_put_u8(&s, 1);
	put_u16(&s, sizeof(text));
	put_u16(&s, 0);
	lb_buf_put(&s, z, zn);
	seed("codec", "seed-zstd", -1, s.p, s.len);
	lb_buf_reset(&s);
	lb_buf_put_u8(&s, 0);
	put_u16(&s, 64);
	put_u16(&s, 0);
	lb_buf_put(&s, text, 64);
	seed("codec", "seed-raw", -1, s.p, s.len);
	/* A delta: the new chunk is the prefix's first 4000 bytes, changed. */
	static uint8_t newer[4000];
	memcpy(newer, prefix, sizeof(newer));
	memcpy(newer + 1000, "perubahan", 9);
	void *dz;
	size_t dn;
	if (lb_compress_delta(3, prefix, 4000, newer, sizeof(newer), 0, &dz, &dn) < 0)
		die("delta", EIO);
	lb_buf_reset(&s);
	lb_buf_put_u8(&s, 2);
	put_u16(&s, sizeof(newer));
	put_u16(&s, 4000);
	lb_buf_put(&s, dz, dn);
	seed("codec", "seed-delta", -1, s.p, s.len);
	lb_buf_free(&s);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make-seeds CORPUSDIR\n");
		return 2;
	}
	top = argv[1];
	mkdir(top, 0755);
	snprintf(store, sizeof(store), "/tmp/lumbung-seeds.%ld", (long)getpid());
	struct lb_backend *be;
	int r = lb_backend_local_open(store, 1, &be);
	if (r < 0)
		die(store, r);
	make_proto();
	make_manifest();
	make_snapshot();
	make_pack(be);
	make_index(be);
	make_records(be);
	make_rdelta();
	make_codec();
	lb_backend_free(be);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store);
	return system(cmd) == 0 ? 0 : 1;
}
