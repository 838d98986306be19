/* audit.c - see audit.h. */
#include "audit.h"
#include "buf.h"
#include "reclog.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

#define AUDIT_REC_MAX LB_RECLOG_MAX

int lb_audit_append(struct lb_backend *be, const struct lb_audit_rec *r)
{
	struct lb_buf p;
	lb_buf_init(&p);
	lb_buf_put_sv(&p, r->time_ns);
	lb_buf_put_uv(&p, r->uid);
	lb_buf_put_str(&p, r->user);
	lb_buf_put_str(&p, r->tenant);
	lb_buf_put_str(&p, r->verb);
	lb_buf_put_str(&p, r->object);
	lb_buf_put_uv(&p, (uint64_t)(r->result < 0 ? -r->result : r->result));
	lb_buf_put_str(&p, r->detail);
	lb_buf_put_uv(&p, r->bytes);
	int ret = p.err ? p.err : lb_reclog_append(be, "audit", r->time_ns, p.p, p.len);
	lb_buf_free(&p);
	return ret;
}

struct read_ctx {
	int64_t since;
	lb_audit_cb cb;
	void *arg;
};

static int decode_cb(void *arg, const uint8_t *payload, size_t n)
{
	struct read_ctx *c = arg;
	struct lb_rd rd;
	lb_rd_init(&rd, payload, n);
	struct lb_audit_rec r;
	char *user, *tenant, *verb, *object, *detail;
	r.time_ns = lb_rd_sv(&rd);
	r.uid = (uint32_t)lb_rd_uv_max(&rd, UINT32_MAX);
	r.user = user = lb_rd_strdup(&rd, 255);
	r.tenant = tenant = lb_rd_strdup(&rd, 255);
	r.verb = verb = lb_rd_strdup(&rd, 64);
	r.object = object = lb_rd_strdup(&rd, AUDIT_REC_MAX);
	r.result = (int)lb_rd_uv_max(&rd, 4095);
	r.detail = detail = lb_rd_strdup(&rd, AUDIT_REC_MAX);
	r.bytes = lb_rd_uv(&rd);
	int ret = 0;
	if (!rd.err && user && tenant && verb && object && detail && r.time_ns >= c->since)
		ret = c->cb(c->arg, &r);
	free(user);
	free(tenant);
	free(verb);
	free(object);
	free(detail);
	return ret;
}

int64_t lb_audit_repair(struct lb_backend *be) { return lb_reclog_repair(be, "audit"); }

int lb_audit_read(struct lb_backend *be, int64_t since_ns, lb_audit_cb cb, void *arg)
{
	struct read_ctx c = { .since = since_ns, .cb = cb, .arg = arg };
	return lb_reclog_read(be, "audit", since_ns, decode_cb, &c);
}
