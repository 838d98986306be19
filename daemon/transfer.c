/* transfer.c - delta transfer inside a backup (PROTOCOL.md §6.2.2).
 *
 * For a large file that changed since the parent snapshot, the client asks
 * for the librsync signature of the parent's version (SIGNATURE), sends a
 * delta against it (DELTA, DATA..., DELTA_END), and the daemon patches the
 * parent's version, read from the store, into the new file, which goes
 * through the normal chunker like any other.  The new file's SHA-256 and
 * size, sent by the client, are compared with what the patch made; a
 * mismatch (a strong-sum collision, a corrupt delta) drops the patched file
 * and tells the client to send the file whole. */
#include "daemon.h"
#include "hash.h"
#include "log.h"
#include "proto.h"
#include "rdelta.h"
#include "transfer.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

/* The parent's version of path, when a delta can be made against it: a
 * dense regular file with data.  Returns 1 and fills e, 0 when there is
 * none, or -errno. */
static int basis_entry(struct lb_mindex *pmap, const char *path, struct lb_entry *e)
{
	int r = lb_mindex_find(pmap, path, e);
	if (r <= 0)
		return r;
	if (e->type == LB_FT_HARDLINK && e->link) {
		char *target = strdup(e->link);
		lb_entry_clear(e);
		r = target ? lb_mindex_find(pmap, target, e) : -ENOMEM;
		free(target);
		if (r <= 0)
			return r;
	}
	if (e->type != LB_FT_REG || e->nextents || !e->size || !e->nchunks) {
		lb_entry_clear(e);
		return 0;
	}
	return 1;
}

struct sigbuf {
	struct lb_buf b;
};

static int sig_out(void *arg, const void *data, size_t len)
{
	struct sigbuf *sb = arg;
	if (sb->b.len + len > LB_RSIG_MAX)
		return -EFBIG;
	lb_buf_put(&sb->b, data, len);
	return sb->b.err;
}

static int sig_in(void *arg, const void *data, size_t len) { return lb_rjob_feed(arg, data, len); }

int transfer_signature(struct lb_store *s, struct lb_mindex *pmap, const char *path, int fd)
{
	struct lb_entry old;
	struct sigbuf sb;
	lb_buf_init(&sb.b);
	int have = pmap ? basis_entry(pmap, path, &old) : 0;
	if (have < 0)
		return have;
	if (have) {
		struct lb_rjob *j = lb_rsig_begin(old.size, sig_out, &sb);
		int r = j ? lb_store_read_file(s, &old, sig_in, j) : -ENOMEM;
		if (r == 0)
			r = lb_rjob_end(j);
		lb_rjob_free(j);
		if (r < 0) {
			/* The client sends the file whole; the damage is for check. */
			log_warning("signature of %s: %s%s%s", path, strerror(-r), *lb_error_detail() ? ": " : "",
				    lb_error_detail());
			have = 0;
		}
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_u8(&b, (uint8_t)have);
	if (have)
		lb_buf_put_uv(&b, old.size);
	int r = lb_frame_send_buf(fd, LB_MSG_OK, &b);
	lb_buf_free(&b);
	for (size_t off = 0; r == 0 && have && off < sb.b.len; off += LB_DATA_CHUNK)
		r = lb_frame_send(fd, LB_MSG_DATA, sb.b.p + off, LB_MIN((size_t)LB_DATA_CHUNK, sb.b.len - off));
	if (r == 0)
		r = lb_frame_send(fd, LB_MSG_END, NULL, 0);
	if (have)
		lb_entry_clear(&old);
	lb_buf_free(&sb.b);
	return r;
}

/* ---- patching ---------------------------------------------------------------- */

#define BASIS_SLOTS 2

struct xfer_patch {
	struct lb_store *s;
	struct lb_backup *b;
	struct lb_entry old;
	uint64_t *start; /* where each chunk of the old version starts */
	struct {
		size_t chunk; /* SIZE_MAX: empty */
		uint8_t *buf;
		uint64_t used;
	} slot[BASIS_SLOTS];
	uint64_t tick;
	struct lb_rjob *job;
	struct lb_sha *sha;
	uint64_t size;  /* announced */
	int bad;        /* the delta failed: the rest is read and dropped */
	int fatal;      /* the backup itself failed (store, quota) */
	int collide;    /* LUMBUNG_TEST_FAULT=sig-collide */
	char why[256];
};

static int basis_read(void *arg, uint64_t pos, size_t *len, const void **buf)
{
	struct xfer_patch *x = arg;
	if (pos >= x->old.size)
		return -EINVAL;
	/* The chunk holding pos: a binary search over the starts. */
	size_t lo = 0, hi = x->old.nchunks;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (x->start[mid] <= pos)
			lo = mid;
		else
			hi = mid;
	}
	int k = -1, victim = 0;
	for (int i = 0; i < BASIS_SLOTS; i++) {
		if (x->slot[i].chunk == lo)
			k = i;
		if (x->slot[i].used < x->slot[victim].used)
			victim = i;
	}
	if (k < 0) {
		k = victim;
		const struct lb_chunkref *c = &x->old.chunks[lo];
		uint8_t *nb = realloc(x->slot[k].buf, c->size ? c->size : 1);
		if (!nb)
			return -ENOMEM;
		x->slot[k].buf = nb;
		x->slot[k].chunk = SIZE_MAX;
		int r = lb_store_read_chunk(x->s, &c->id, nb, c->size);
		if (r < 0)
			return r;
		x->slot[k].chunk = lo;
		if (x->collide && c->size)
			nb[c->size / 2] ^= 0x01;
	}
	x->slot[k].used = ++x->tick;
	uint64_t in = pos - x->start[lo];
	*buf = x->slot[k].buf + in;
	*len = (size_t)LB_MIN((uint64_t)*len, x->old.chunks[lo].size - in);
	return 0;
}

static int patch_out(void *arg, const void *data, size_t len)
{
	struct xfer_patch *x = arg;
	lb_sha_update(x->sha, data, len);
	int r = lb_backup_file_write(x->b, data, len);
	if (r < 0)
		x->fatal = r;
	return r;
}

int transfer_patch_begin(struct lb_store *s, struct lb_backup *b, struct lb_mindex *pmap, const struct lb_entry *e,
			 struct xfer_patch **out)
{
	struct xfer_patch *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->s = s;
	x->b = b;
	x->size = e->size;
	/* The tests' forced collision: every block the signature matched is
	 * patched from a basis that differs from what it summed, which is what
	 * a strong-sum collision does to the result. */
	const char *fault = getenv("LUMBUNG_TEST_FAULT");
	x->collide = fault && !strcmp(fault, "sig-collide");
	for (int i = 0; i < BASIS_SLOTS; i++)
		x->slot[i].chunk = SIZE_MAX;
	int have = pmap ? basis_entry(pmap, e->path, &x->old) : 0;
	if (have < 0) {
		free(x);
		return have;
	}
	x->sha = lb_sha_new();
	if (!x->sha) {
		transfer_patch_free(x);
		return -ENOMEM;
	}
	if (!have) {
		/* Not a protocol error: the client may not know. */
		x->bad = 1;
		snprintf(x->why, sizeof(x->why), "the parent snapshot has no version of it to patch");
	} else {
		x->start = lb_mallocarray(x->old.nchunks, sizeof(*x->start));
		if (!x->start) {
			transfer_patch_free(x);
			return -ENOMEM;
		}
		uint64_t off = 0;
		for (size_t i = 0; i < x->old.nchunks; i++) {
			x->start[i] = off;
			off += x->old.chunks[i].size;
		}
		x->job = lb_rpatch_begin(basis_read, x, e->size, patch_out, x);
		if (!x->job) {
			transfer_patch_free(x);
			return -ENOMEM;
		}
	}
	int r = lb_backup_file_begin(b, e);
	if (r < 0) {
		transfer_patch_free(x);
		return r;
	}
	*out = x;
	return 0;
}

/* A delta that does not apply is not the backup's failure; anything the
 * store says is. */
static int patch_result(struct xfer_patch *x, int r)
{
	if (r >= 0)
		return 0;
	if (x->fatal)
		return x->fatal;
	if (r == -ENOMEM)
		return r;
	x->bad = 1;
	snprintf(x->why, sizeof(x->why), "%s", *lb_error_detail() ? lb_error_detail() : strerror(-r));
	return 0;
}

int transfer_patch_feed(struct xfer_patch *x, const void *data, size_t len)
{
	if (x->bad)
		return 0;
	return patch_result(x, lb_rjob_feed(x->job, data, len));
}

int transfer_patch_end(struct xfer_patch *x, const uint8_t sha[32], uint64_t size, char *why, size_t whylen)
{
	if (!x->bad) {
		int r = patch_result(x, lb_rjob_end(x->job));
		if (r < 0)
			return r;
	}
	if (!x->bad) {
		struct lb_id got;
		lb_sha_final(x->sha, &got);
		uint64_t made = lb_rjob_out(x->job);
		if (made != size || size != x->size) {
			x->bad = 1;
			snprintf(x->why, sizeof(x->why), "the patch made %llu bytes, the file has %llu",
				 (unsigned long long)made, (unsigned long long)size);
		} else if (memcmp(got.b, sha, 32)) {
			x->bad = 1;
			snprintf(x->why, sizeof(x->why), "the patched file's SHA-256 differs from the client's");
		}
	}
	/* The file ends either way; a bad one is dropped from the snapshot. */
	int r = x->bad ? lb_backup_file_drop(x->b) : lb_backup_file_end(x->b);
	if (r < 0)
		return r;
	snprintf(why, whylen, "%s", x->why);
	return x->bad ? 0 : 1;
}

void transfer_patch_free(struct xfer_patch *x)
{
	if (!x)
		return;
	lb_rjob_free(x->job);
	lb_sha_free(x->sha);
	lb_entry_clear(&x->old);
	free(x->start);
	for (int i = 0; i < BASIS_SLOTS; i++)
		free(x->slot[i].buf);
	free(x);
}
