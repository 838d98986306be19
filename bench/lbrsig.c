/* lbrsig.c - what a librsync delta costs, with Lumbung's parameters
 * (lib/rdelta.c): the signature of OLD (its size and how fast it is made),
 * the delta of NEW against it (its size and speed), and the patch (speed,
 * and that it rebuilds NEW exactly).  The figures behind the choice of
 * computing signatures on demand (doc/PROTOCOL.md §6.2.2, bench/RESULTS.md).
 *
 *   bench/lbrsig [--block BYTES] OLD NEW
 *
 * Prints one JSON object. */
#include "hash.h"
#include "rdelta.h"
#include "util.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

struct sink {
	uint8_t *p;
	size_t len, cap;
};

static int to_sink(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;
	if (s->len + len > s->cap) {
		size_t ncap = LB_MAX(s->cap * 2, s->len + len);
		uint8_t *np = realloc(s->p, ncap);
		if (!np)
			return -ENOMEM;
		s->p = np;
		s->cap = ncap;
	}
	memcpy(s->p + s->len, data, len);
	s->len += len;
	return 0;
}

static int to_sha(void *arg, const void *data, size_t len)
{
	lb_sha_update(arg, data, len);
	return 0;
}

struct basis {
	const uint8_t *p;
	uint64_t len;
};

static int read_basis(void *arg, uint64_t pos, size_t *len, const void **buf)
{
	struct basis *b = arg;
	if (pos >= b->len)
		return -EINVAL;
	*len = (size_t)LB_MIN((uint64_t)*len, b->len - pos);
	*buf = b->p + pos;
	return 0;
}

static const uint8_t *map(const char *path, uint64_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "lbrsig: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	*len = (uint64_t)st.st_size;
	void *p = mmap(NULL, *len ? *len : 1, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		fprintf(stderr, "lbrsig: %s: mmap: %s\n", path, strerror(errno));
		exit(1);
	}
	return p;
}

/* Feeds buf to a job in 1 MiB pieces, as the daemon and the client do. */
static int feed_all(struct lb_rjob *j, const uint8_t *p, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += 1 << 20) {
		int r = lb_rjob_feed(j, p + off, (size_t)LB_MIN(len - off, (uint64_t)1 << 20));
		if (r < 0)
			return r;
	}
	return lb_rjob_end(j);
}

/* Bytes after zstd -3, which is what the link sends (lib/link.c). */
static size_t zsize(const struct sink *s)
{
	size_t cap = ZSTD_compressBound(s->len);
	void *out = malloc(cap);
	size_t n = out ? ZSTD_compress(out, cap, s->p, s->len, 3) : 0;
	free(out);
	return ZSTD_isError(n) ? 0 : n;
}

static double secs(int64_t a, int64_t b) { return (double)(b - a) / 1e9; }

int main(int argc, char **argv)
{
	int ai = 1;
	uint32_t force_block = 0;
	if (argc == 5 && !strcmp(argv[1], "--block")) {
		force_block = (uint32_t)strtoul(argv[2], NULL, 10);
		ai = 3;
	} else if (argc != 3) {
		fprintf(stderr, "usage: lbrsig [--block BYTES] OLD NEW\n");
		return 2;
	}
	uint64_t olen, nlen;
	const uint8_t *old = map(argv[ai], &olen), *new = map(argv[ai + 1], &nlen);
	uint32_t block, strong;
	lb_rsig_params(olen, &block, &strong);
	if (force_block) {
		/* The strong sum for that many blocks, as lb_rsig_params reasons. */
		block = force_block;
		double bits = log2((double)olen + 1) + log2((double)(olen / block + 1)) + 24.0;
		strong = (uint32_t)LB_MIN(LB_MAX(ceil(bits / 8.0), 8.0), 32.0);
	}
	/* Touch both files so that the timings are of librsync, not the disk. */
	volatile uint8_t sum = 0;
	for (uint64_t i = 0; i < olen; i += 4096)
		sum += old[i];
	for (uint64_t i = 0; i < nlen; i += 4096)
		sum += new[i];

	struct sink sig = { 0 }, delta = { 0 };
	int64_t t0 = lb_mono_ns();
	struct lb_rjob *j = lb_rsig_begin_with(block, strong, to_sink, &sig);
	if (!j || feed_all(j, old, olen) < 0) {
		fprintf(stderr, "lbrsig: signature failed: %s\n", lb_error_detail());
		return 1;
	}
	lb_rjob_free(j);
	int64_t t1 = lb_mono_ns();
	struct lb_rsig *rs;
	if (lb_rsig_load(sig.p, sig.len, &rs) < 0) {
		fprintf(stderr, "lbrsig: loading the signature failed: %s\n", lb_error_detail());
		return 1;
	}
	int64_t t2 = lb_mono_ns();
	j = lb_rdelta_begin(rs, to_sink, &delta);
	if (!j || feed_all(j, new, nlen) < 0) {
		fprintf(stderr, "lbrsig: delta failed: %s\n", lb_error_detail());
		return 1;
	}
	lb_rjob_free(j);
	int64_t t3 = lb_mono_ns();
	struct basis b = { old, olen };
	struct lb_sha *sha = lb_sha_new();
	j = lb_rpatch_begin(read_basis, &b, nlen, to_sha, sha);
	if (!j || feed_all(j, delta.p, delta.len) < 0) {
		fprintf(stderr, "lbrsig: patch failed: %s\n", lb_error_detail());
		return 1;
	}
	uint64_t made = lb_rjob_out(j);
	lb_rjob_free(j);
	int64_t t4 = lb_mono_ns();
	struct lb_id got, want;
	lb_sha_final(sha, &got);
	lb_sha_free(sha);
	lb_sha256(new, nlen, &want);
	int exact = made == nlen && !memcmp(got.b, want.b, 32);
	double mib = 1048576.0;
	printf("{\"old_bytes\":%llu,\"new_bytes\":%llu,\"block\":%u,\"strong\":%u,\"signature_bytes\":%zu,"
	       "\"signature_ratio\":%.5f,\"signature_mib_s\":%.1f,\"load_s\":%.3f,\"delta_bytes\":%zu,"
	       "\"delta_ratio\":%.5f,\"delta_mib_s\":%.1f,\"patch_mib_s\":%.1f,\"exact\":%s,"
	       "\"wire_bytes\":%zu,\"wire_ratio\":%.5f}\n",
	       (unsigned long long)olen, (unsigned long long)nlen, block, strong, sig.len,
	       (double)sig.len / (double)(olen ? olen : 1), (double)olen / mib / secs(t0, t1), secs(t1, t2),
	       delta.len, (double)delta.len / (double)(nlen ? nlen : 1), (double)nlen / mib / secs(t2, t3),
	       (double)nlen / mib / secs(t3, t4), exact ? "true" : "false", zsize(&sig) + zsize(&delta),
	       (double)(zsize(&sig) + zsize(&delta)) / (double)(nlen ? nlen : 1));
	lb_rsig_free(rs);
	free(sig.p);
	free(delta.p);
	return exact ? 0 : 1;
}
