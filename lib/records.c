/* records.c - job records and usage samples; see records.h. */
#include "records.h"
#include "buf.h"
#include "reclog.h"
#include "util.h"

#include <stdio.h>

static void put_fixed(struct lb_buf *b, const char *s) { lb_buf_put_str(b, s); }

static int get_fixed(struct lb_rd *rd, char *out, size_t len)
{
	size_t n;
	const uint8_t *p = lb_rd_bytes(rd, len - 1, &n);
	if (!p)
		return -EBADMSG;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int lb_job_append(struct lb_backend *be, const struct lb_job_rec *j)
{
	struct lb_buf b;
	lb_buf_init(&b);
	put_fixed(&b, j->kind);
	put_fixed(&b, j->tenant);
	put_fixed(&b, j->dataset);
	lb_buf_put_sv(&b, j->start_ns);
	lb_buf_put_sv(&b, j->end_ns);
	lb_buf_put_uv(&b, (uint64_t)(j->status < 0 ? -j->status : j->status));
	put_fixed(&b, j->error);
	lb_buf_put_uv(&b, j->bytes_read);
	lb_buf_put_uv(&b, j->bytes_sent);
	lb_buf_put_uv(&b, j->new_stored);
	lb_buf_put_uv(&b, j->files);
	put_fixed(&b, j->snapshot);
	/* Added after the first records were written: readers take a record
	 * that ends before it as 0. */
	lb_buf_put_uv(&b, j->freed);
	int r = b.err ? b.err : lb_reclog_append(be, "jobs", j->end_ns, b.p, b.len);
	lb_buf_free(&b);
	return r;
}

struct job_ctx {
	int64_t since;
	lb_job_cb cb;
	void *arg;
};

static int job_decode(void *arg, const uint8_t *p, size_t n)
{
	struct job_ctx *c = arg;
	struct lb_rd rd;
	struct lb_job_rec j;
	lb_rd_init(&rd, p, n);
	memset(&j, 0, sizeof(j));
	int bad = get_fixed(&rd, j.kind, sizeof(j.kind)) | get_fixed(&rd, j.tenant, sizeof(j.tenant)) |
		  get_fixed(&rd, j.dataset, sizeof(j.dataset));
	j.start_ns = lb_rd_sv(&rd);
	j.end_ns = lb_rd_sv(&rd);
	j.status = (int)lb_rd_uv_max(&rd, 4095);
	bad |= get_fixed(&rd, j.error, sizeof(j.error));
	j.bytes_read = lb_rd_uv(&rd);
	j.bytes_sent = lb_rd_uv(&rd);
	j.new_stored = lb_rd_uv(&rd);
	j.files = lb_rd_uv(&rd);
	bad |= get_fixed(&rd, j.snapshot, sizeof(j.snapshot));
	if (rd.p < rd.end)
		j.freed = lb_rd_uv(&rd);
	if (bad || rd.err || j.end_ns < c->since)
		return 0;
	return c->cb(c->arg, &j);
}

int lb_job_read(struct lb_backend *be, int64_t since_ns, lb_job_cb cb, void *arg)
{
	struct job_ctx c = { since_ns, cb, arg };
	return lb_reclog_read(be, "jobs", since_ns, job_decode, &c);
}

int lb_sample_append(struct lb_backend *be, const struct lb_sample *s)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_sv(&b, s->time_ns);
	lb_buf_put_uv(&b, s->physical);
	lb_buf_put_uv(&b, s->unreferenced);
	lb_buf_put_uv(&b, s->overhead);
	lb_buf_put_uv(&b, s->nt);
	for (size_t i = 0; i < s->nt; i++) {
		put_fixed(&b, s->t[i].tenant);
		lb_buf_put_uv(&b, s->t[i].charged);
		lb_buf_put_uv(&b, s->t[i].exclusive);
		lb_buf_put_uv(&b, s->t[i].logical);
		lb_buf_put_uv(&b, s->t[i].snapshots);
	}
	int r = b.err ? b.err : lb_reclog_append(be, "usage", s->time_ns, b.p, b.len);
	lb_buf_free(&b);
	return r;
}

struct sample_ctx {
	int64_t since;
	lb_sample_cb cb;
	void *arg;
};

static int sample_decode(void *arg, const uint8_t *p, size_t n)
{
	struct sample_ctx *c = arg;
	struct lb_rd rd;
	struct lb_sample s;
	lb_rd_init(&rd, p, n);
	memset(&s, 0, sizeof(s));
	s.time_ns = lb_rd_sv(&rd);
	s.physical = lb_rd_uv(&rd);
	s.unreferenced = lb_rd_uv(&rd);
	s.overhead = lb_rd_uv(&rd);
	s.nt = (size_t)lb_rd_uv_max(&rd, n / 5);
	if (rd.err)
		return 0;
	s.t = calloc(s.nt ? s.nt : 1, sizeof(*s.t));
	if (!s.t)
		return -ENOMEM;
	int bad = 0;
	for (size_t i = 0; i < s.nt && !bad; i++) {
		bad |= get_fixed(&rd, s.t[i].tenant, sizeof(s.t[i].tenant));
		s.t[i].charged = lb_rd_uv(&rd);
		s.t[i].exclusive = lb_rd_uv(&rd);
		s.t[i].logical = lb_rd_uv(&rd);
		s.t[i].snapshots = lb_rd_uv(&rd);
	}
	int r = 0;
	if (!bad && !rd.err && s.time_ns >= c->since)
		r = c->cb(c->arg, &s);
	free(s.t);
	return r;
}

int lb_sample_read(struct lb_backend *be, int64_t since_ns, lb_sample_cb cb, void *arg)
{
	struct sample_ctx c = { since_ns, cb, arg };
	return lb_reclog_read(be, "usage", since_ns, sample_decode, &c);
}
