/* rdelta.c - librsync over streams; see rdelta.h. */
#include "rdelta.h"
#include "util.h"

#include <librsync.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>

#define OUT_CAP (256u << 10)

struct lb_rjob {
	rs_job_t *job;
	lb_rout_fn out;
	void *arg;
	uint8_t *obuf;
	uint64_t produced, max_out;
	int err;
	/* A patch's basis. */
	lb_rbasis_fn basis;
	void *basis_arg;
	int basis_err;
};

struct lb_rsig {
	rs_signature_t *sums;
};

/* librsync reports problems through a global trace hook: keep its last
 * message as the thread's error detail instead of printing it. */
static void trace_to_detail(rs_loglevel level, char const *msg)
{
	(void)level;
	/* Messages look like "librsync: ERROR: (fn) text"; keep the text. */
	const char *p = strrchr(msg, ')');
	p = p && p[1] == ' ' ? p + 2 : msg;
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == ' '))
		n--;
	lb_set_error("librsync: %.*s", (int)n, p);
}

static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static void trace_setup(void)
{
	rs_trace_set_level(RS_LOG_ERR);
	rs_trace_to(trace_to_detail);
}

void lb_rsig_params(uint64_t size, uint32_t *block_len, uint32_t *strong_len)
{
	/* The block: a sixteenth of the square root of the size, a multiple
	 * of 64, at least 1 KiB.  The textbook square root is best
	 * when a file has a few edits; a database dump changes in proportion
	 * to its size (1-3 % of rows a night, many scattered), and there the
	 * wire cost of signature plus zstd-compressed delta bottoms out near
	 * sqrt/16: 2.2 % of an 868 MB dump at 1.5-2 KiB blocks, against 13 %
	 * at the square root (bench/RESULTS.md "Delta transfer"). */
	double b = sqrt((double)size) / 16.0;
	/* At most 3 Mi blocks, so that a signature stays under LB_RSIG_MAX
	 * (a 1 TiB image gets 350 KiB blocks). */
	b = ceil(LB_MAX(b, (double)size / (3.0 * 1048576.0)) / 64.0) * 64.0;
	*block_len = (uint32_t)LB_MIN(LB_MAX(b, 1024.0), 4194304.0);
	/* The strong sum: every position of a new file of about this size may
	 * be compared with every block; keep the chance of any false match
	 * below 2^-24.  Whatever it says, the SHA-256 check stands behind it. */
	uint64_t blocks = size / *block_len + 1;
	double bits = log2((double)size + 1) + log2((double)blocks) + 24.0;
	*strong_len = (uint32_t)LB_MIN(LB_MAX(ceil(bits / 8.0), 8.0), 32.0);
}

static struct lb_rjob *job_new(rs_job_t *job, lb_rout_fn out, void *arg)
{
	struct lb_rjob *j = calloc(1, sizeof(*j));
	if (!j || !job || !(j->obuf = malloc(OUT_CAP))) {
		if (job)
			rs_job_free(job);
		if (j)
			free(j->obuf);
		free(j);
		return NULL;
	}
	j->job = job;
	j->out = out;
	j->arg = arg;
	j->max_out = UINT64_MAX;
	return j;
}

struct lb_rjob *lb_rsig_begin_with(uint32_t block_len, uint32_t strong_len, lb_rout_fn out, void *arg)
{
	pthread_once(&trace_once, trace_setup);
	return job_new(rs_sig_begin(block_len, strong_len, RS_RK_BLAKE2_SIG_MAGIC), out, arg);
}

struct lb_rjob *lb_rsig_begin(uint64_t size, lb_rout_fn out, void *arg)
{
	uint32_t bl, sl;
	lb_rsig_params(size, &bl, &sl);
	return lb_rsig_begin_with(bl, sl, out, arg);
}

static rs_result copy_cb(void *opaque, rs_long_t pos, size_t *len, void **buf)
{
	struct lb_rjob *j = opaque;
	const void *p;
	if (pos < 0) {
		lb_set_error("the delta copies from before the start of the old version");
		j->basis_err = -EBADMSG;
		return RS_CORRUPT;
	}
	int r = j->basis(j->basis_arg, (uint64_t)pos, len, &p);
	if (r < 0) {
		j->basis_err = r == -EINVAL ? -EBADMSG : r;
		if (r == -EINVAL)
			lb_set_error("the delta copies from past the end of the old version");
		return r == -EINVAL ? RS_CORRUPT : RS_IO_ERROR;
	}
	*buf = (void *)p;
	return RS_DONE;
}

struct lb_rjob *lb_rpatch_begin(lb_rbasis_fn basis, void *basis_arg, uint64_t max_out, lb_rout_fn out, void *arg)
{
	pthread_once(&trace_once, trace_setup);
	struct lb_rjob *j = calloc(1, sizeof(*j));
	if (!j || !(j->obuf = malloc(OUT_CAP))) {
		free(j);
		return NULL;
	}
	j->out = out;
	j->arg = arg;
	j->basis = basis;
	j->basis_arg = basis_arg;
	j->max_out = max_out;
	j->job = rs_patch_begin(copy_cb, j);
	if (!j->job) {
		free(j->obuf);
		free(j);
		return NULL;
	}
	return j;
}

int lb_rsig_load(const void *sig, size_t len, struct lb_rsig **out)
{
	pthread_once(&trace_once, trace_setup);
	struct lb_rsig *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rs_job_t *job = rs_loadsig_begin(&s->sums);
	if (!job) {
		free(s);
		return -ENOMEM;
	}
	rs_buffers_t b = { .next_in = (char *)sig, .avail_in = len, .eof_in = 1 };
	rs_result r = rs_job_iter(job, &b);
	rs_job_free(job);
	if (r == RS_DONE)
		r = rs_build_hash_table(s->sums);
	if (r != RS_DONE) {
		if (s->sums)
			rs_free_sumset(s->sums);
		free(s);
		lb_set_error("not a librsync signature: %s", rs_strerror(r));
		return r == RS_MEM_ERROR ? -ENOMEM : -EBADMSG;
	}
	*out = s;
	return 0;
}

void lb_rsig_free(struct lb_rsig *s)
{
	if (!s)
		return;
	rs_free_sumset(s->sums);
	free(s);
}

struct lb_rjob *lb_rdelta_begin(struct lb_rsig *sig, lb_rout_fn out, void *arg)
{
	pthread_once(&trace_once, trace_setup);
	return job_new(rs_delta_begin(sig->sums), out, arg);
}

/* Runs the job over the input until it is consumed (or, at the end, until
 * the job is done), handing every full output buffer to the callback. */
static int run(struct lb_rjob *j, const void *data, size_t len, int eof)
{
	if (j->err)
		return j->err;
	rs_buffers_t b = { .next_in = (char *)data, .avail_in = len, .eof_in = eof };
	for (;;) {
		b.next_out = (char *)j->obuf;
		b.avail_out = OUT_CAP;
		rs_result r = rs_job_iter(j->job, &b);
		size_t n = OUT_CAP - b.avail_out;
		if (r != RS_DONE && r != RS_BLOCKED) {
			if (j->basis_err)
				j->err = j->basis_err;
			else if (r == RS_MEM_ERROR)
				j->err = -ENOMEM;
			else
				j->err = -EBADMSG;
			if (!j->basis_err && r != RS_MEM_ERROR && !*lb_error_detail())
				lb_set_error("librsync: %s", rs_strerror(r));
			return j->err;
		}
		if (n) {
			if (j->produced + n > j->max_out) {
				lb_set_error("the delta makes more than the %llu bytes announced",
					     (unsigned long long)j->max_out);
				return j->err = -EBADMSG;
			}
			j->produced += n;
			int e = j->out(j->arg, j->obuf, n);
			if (e < 0)
				return j->err = e;
		}
		if (r == RS_DONE)
			return 0;
		/* Blocked: on more input, unless the output was full. */
		if (b.avail_in == 0 && b.avail_out > 0 && !eof)
			return 0;
		if (eof && b.avail_in == 0 && n == 0 && b.avail_out > 0) {
			lb_set_error("the delta ends early");
			return j->err = -EBADMSG;
		}
	}
}

int lb_rjob_feed(struct lb_rjob *j, const void *data, size_t len)
{
	lb_clear_error();
	return run(j, data, len, 0);
}

int lb_rjob_end(struct lb_rjob *j)
{
	lb_clear_error();
	return run(j, NULL, 0, 1);
}

uint64_t lb_rjob_out(const struct lb_rjob *j) { return j->produced; }

void lb_rjob_free(struct lb_rjob *j)
{
	if (!j)
		return;
	if (j->job)
		rs_job_free(j->job);
	free(j->obuf);
	free(j);
}
