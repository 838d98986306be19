/* test-link.c - the pieces of a sync over a slow link: rates as users write
 * them, the link pump (frames cross compressed, both ways, counted; a
 * corrupt stream is refused), and librsync through lib/rdelta (signature
 * parameters, a delta that patches back bit-exact, a corrupted or foreign
 * delta refused, a patch that would grow past its size refused). */
#include "hash.h"
#include "link.h"
#include "proto.h"
#include "rdelta.h"
#include "tap.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_rates(void)
{
	static const struct {
		const char *s;
		uint64_t want;
	} ok[] = {
		{ "10mbit", 1250000 }, { "800kbit", 100000 }, { "1gbit", 125000000 }, { "512k", 524288 },
		{ "2M", 2097152 },     { "1.5MiB/s", 1572864 }, { "100", 100 },      { "4KB/s", 4096 },
	};
	for (size_t i = 0; i < LB_ARRAY_SIZE(ok); i++) {
		uint64_t v = 0;
		int r = lb_parse_rate(ok[i].s, &v);
		tap_ok(r == 0 && v == ok[i].want, "rate '%s' is %llu bytes/s (got %d, %llu)", ok[i].s,
		       (unsigned long long)ok[i].want, r, (unsigned long long)v);
	}
	static const char *bad[] = { "", "fast", "10x", "-1M", "0", "1e30", "10 mbit", "nanM" };
	for (size_t i = 0; i < LB_ARRAY_SIZE(bad); i++) {
		uint64_t v = 7;
		tap_ok(lb_parse_rate(bad[i], &v) == -EINVAL && v == 7, "rate '%s' is refused", bad[i]);
	}
}

/* xorshift: deterministic bytes, half random (incompressible) and half
 * text-like. */
static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = i % 8192 < 4096 ? (uint8_t)next_rand() : (uint8_t)("INSERT INTO t VALUES (1,'abc');\n"[i % 32]);
}

struct reader {
	int fd;
	uint8_t *buf;
	size_t want, got;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	while (r->got < r->want) {
		ssize_t n = read(r->fd, r->buf + r->got, r->want - r->got);
		if (n <= 0)
			break;
		r->got += (size_t)n;
	}
	return NULL;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Two pumps back to back: A's clear side -> link -> B's clear side, and
 * back the other way. */
static void test_link(void)
{
	int a[2], b[2], wire1[2], wire2[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, a);
	socketpair(AF_UNIX, SOCK_STREAM, 0, b);
	if (pipe(wire1) < 0 || pipe(wire2) < 0)
		return;
	struct lb_link *la, *lbk;
	tap_ok(lb_link_start(&la, a[1], wire2[0], wire1[1], 0) == 0, "pump A starts");
	tap_ok(lb_link_start(&lbk, b[1], wire1[0], wire2[1], 0) == 0, "pump B starts");
	size_t n = 3u << 20;
	uint8_t *out = malloc(n), *back = malloc(n), *in = calloc(1, n), *in2 = calloc(1, n);
	fill(out, n);
	fill(back, n);
	struct reader ra = { b[0], in, n, 0 }, rb = { a[0], in2, n, 0 };
	pthread_t t1, t2;
	pthread_create(&t1, NULL, read_all, &ra);
	pthread_create(&t2, NULL, read_all, &rb);
	write_all(a[0], out, n);
	write_all(b[0], back, n);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	tap_ok(ra.got == n && !memcmp(in, out, n), "3 MiB cross A -> B intact");
	tap_ok(rb.got == n && !memcmp(in2, back, n), "3 MiB cross B -> A intact, at the same time");
	/* Ends: A's clear side closes its writing half; B sees the end. */
	shutdown(a[0], SHUT_WR);
	char c;
	tap_ok(read(b[0], &c, 1) == 0, "the end of A's stream reaches B as end of file");
	shutdown(b[0], SHUT_WR);
	tap_ok(read(a[0], &c, 1) == 0, "and B's reaches A");
	/* A pump counts what it delivered after the write that delivers it,
	 * so the counts are final only once the ends came through (checked
	 * right after the data, they missed the last write now and then). */
	struct lb_link_stats st;
	lb_link_get_stats(la, &st);
	tap_ok(st.plain_out == n && st.plain_in == n, "A counts the clear bytes both ways");
	tap_ok(st.wire_out > n / 3 && st.wire_out < n * 3 / 4, "the half that compresses shrinks on the wire (%llu of %zu)",
	       (unsigned long long)st.wire_out, n);
	const char *why = NULL;
	tap_ok(lb_link_finish(la, &why) == 0, "pump A ends cleanly");
	tap_ok(lb_link_finish(lbk, &why) == 0, "pump B ends cleanly");
	close(a[0]);
	close(b[0]);

	/* Garbage on the link: refused, and the clear side sees the end. */
	int c2[2], g[2], dummy[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, c2);
	if (pipe(g) < 0 || pipe(dummy) < 0)
		return;
	struct lb_link *lg;
	lb_link_start(&lg, c2[1], g[0], dummy[1], 0);
	write_all(g[1], out, 65536); /* random bytes: not a zstd stream */
	close(g[1]);
	tap_ok(read(c2[0], &c, 1) <= 0, "a corrupt stream ends the clear side");
	shutdown(c2[0], SHUT_RDWR);
	close(dummy[0]);
	int r = lb_link_finish(lg, &why);
	tap_ok(r == -EBADMSG && why && strstr(why, "corrupt"), "and the pump says why (%d, %s)", r, why ? why : "");
	close(c2[0]);
	free(out);
	free(back);
	free(in);
	free(in2);
}

struct sink {
	uint8_t *p;
	size_t len, cap;
};

static int to_sink(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;
	if (s->len + len > s->cap) {
		s->cap = LB_MAX(s->cap * 2, s->len + len);
		s->p = realloc(s->p, s->cap);
	}
	memcpy(s->p + s->len, data, len);
	s->len += len;
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
	/* Short pieces, as the daemon gives them chunk by chunk. */
	*len = (size_t)LB_MIN(LB_MIN((uint64_t)*len, b->len - pos), (uint64_t)5000);
	*buf = b->p + pos;
	return 0;
}

static int run_job(struct lb_rjob *j, const uint8_t *p, size_t n, size_t piece)
{
	for (size_t off = 0; off < n; off += piece) {
		int r = lb_rjob_feed(j, p + off, LB_MIN(piece, n - off));
		if (r < 0)
			return r;
	}
	return lb_rjob_end(j);
}

static int patch(const uint8_t *old, size_t olen, const struct sink *delta, uint64_t max, struct sink *out)
{
	struct basis b = { old, olen };
	struct lb_rjob *j = lb_rpatch_begin(read_basis, &b, max, to_sink, out);
	int r = run_job(j, delta->p, delta->len, 777);
	lb_rjob_free(j);
	return r;
}

static void test_rdelta(void)
{
	uint32_t bl, sl, prev = 0;
	int mono = 1, sane = 1;
	for (uint64_t size = 1; size < (1ULL << 44); size *= 3) {
		lb_rsig_params(size, &bl, &sl);
		mono &= bl >= prev;
		sane &= bl >= 1024 && bl % 64 == 0 && sl >= 8 && sl <= 32 && size / bl < 3200000;
		prev = bl;
	}
	tap_ok(mono && sane, "block length grows with size, is a multiple of 64, keeps signatures small");
	lb_rsig_params(1ULL << 30, &bl, &sl);
	tap_ok(bl == 2048 && sl >= 9, "a 1 GiB file: 2 KiB blocks (got %u), strong sums of %u bytes", bl, sl);

	size_t olen = 4u << 20;
	uint8_t *old = malloc(olen), *new = malloc(olen + 10000);
	fill(old, olen);
	/* The new version: a run rewritten in place, 10000 bytes inserted in
	 * the middle, the tail cut by 1000 bytes. */
	memcpy(new, old, olen / 2);
	memset(new + 100000, 'X', 3000);
	memset(new + olen / 2, 'I', 10000);
	memcpy(new + olen / 2 + 10000, old + olen / 2, olen / 2 - 1000);
	size_t nlen = olen + 9000;
	struct sink sig = { 0 }, delta = { 0 }, out = { 0 };
	struct lb_rjob *j = lb_rsig_begin(olen, to_sink, &sig);
	tap_ok(run_job(j, old, olen, 65536) == 0, "signature of 4 MiB");
	lb_rjob_free(j);
	struct lb_rsig *rs = NULL;
	tap_ok(lb_rsig_load(sig.p, sig.len, &rs) == 0, "it loads");
	j = lb_rdelta_begin(rs, to_sink, &delta);
	tap_ok(run_job(j, new, nlen, 100000) == 0, "delta of the new version");
	lb_rjob_free(j);
	tap_ok(delta.len < 40000, "the delta is about the change: %zu bytes for 13 KB changed", delta.len);
	tap_ok(patch(old, olen, &delta, nlen, &out) == 0 && out.len == nlen && !memcmp(out.p, new, nlen),
	       "the patch rebuilds the new version bit-exact");
	out.len = 0;
	tap_ok(patch(old, olen, &delta, nlen - 1, &out) == -EBADMSG, "a patch that grows past the size announced is refused");
	/* A delta of another basis (a signature of different bytes) still
	 * applies, but makes a different file: what the SHA-256 check is for. */
	uint8_t *other = malloc(olen);
	memcpy(other, old, olen);
	other[olen / 4] ^= 1;
	out.len = 0;
	int r = patch(other, olen, &delta, nlen, &out);
	struct lb_id a, b;
	lb_sha256(out.p, out.len, &a);
	lb_sha256(new, nlen, &b);
	tap_ok(r == 0 && memcmp(a.b, b.b, 32) != 0, "patching a different basis gives a different SHA-256");
	/* Corrupted deltas: every single-byte flip is refused or changes the
	 * result; none crashes. */
	int caught = 1;
	for (size_t k = 0; k < 64 && caught; k++) {
		struct sink bad = { malloc(delta.len), delta.len, delta.len };
		memcpy(bad.p, delta.p, delta.len);
		bad.p[(k * 7919) % delta.len] ^= 0x5a;
		out.len = 0;
		r = patch(old, olen, &bad, nlen, &out);
		if (r == 0) {
			lb_sha256(out.p, out.len, &a);
			caught = memcmp(a.b, b.b, 32) != 0 || out.len != nlen;
		} else {
			caught = r == -EBADMSG;
		}
		free(bad.p);
	}
	tap_ok(caught, "64 corrupted deltas: each refused or caught by the hash");
	struct lb_rsig *junk = NULL;
	tap_ok(lb_rsig_load(old, 4096, &junk) == -EBADMSG && junk == NULL, "random bytes are not a signature");
	lb_rsig_free(rs);
	free(sig.p);
	free(delta.p);
	free(out.p);
	free(old);
	free(new);
	free(other);
}

int main(void)
{
	test_rates();
	test_link();
	test_rdelta();
	return tap_done();
}
