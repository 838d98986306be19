/* audit.c - see audit.h. */
#include "audit.h"
#include "buf.h"
#include "crc32c.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

#define AUDIT_REC_MAX (64u << 10)

static void object_name(int64_t time_ns, char *buf, size_t len)
{
	time_t t = (time_t)(time_ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "audit/%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
}

int lb_audit_append(struct lb_backend *be, const struct lb_audit_rec *r)
{
	struct lb_buf p, out;
	lb_buf_init(&p);
	lb_buf_init(&out);
	lb_buf_put_sv(&p, r->time_ns);
	lb_buf_put_uv(&p, r->uid);
	lb_buf_put_str(&p, r->user);
	lb_buf_put_str(&p, r->tenant);
	lb_buf_put_str(&p, r->verb);
	lb_buf_put_str(&p, r->object);
	lb_buf_put_uv(&p, (uint64_t)(r->result < 0 ? -r->result : r->result));
	lb_buf_put_str(&p, r->detail);
	lb_buf_put_uv(&p, r->bytes);
	int ret = p.err;
	if (ret == 0 && p.len > AUDIT_REC_MAX)
		ret = -EFBIG;
	if (ret == 0) {
		lb_buf_put_u32le(&out, (uint32_t)p.len);
		lb_buf_put_u32le(&out, lb_crc32c(0, p.p, p.len));
		lb_buf_put(&out, p.p, p.len);
		ret = out.err;
	}
	if (ret == 0) {
		char name[64];
		object_name(r->time_ns, name, sizeof(name));
		ret = be->ops->append(be, name, out.p, out.len);
	}
	lb_buf_free(&p);
	lb_buf_free(&out);
	return ret;
}

/* Walks the records of one object; returns the length of its intact
 * prefix (or -errno) and calls cb (if given) for each record. */
static int64_t walk(const uint8_t *d, size_t len, int64_t since, lb_audit_cb cb, void *arg, int *cbret)
{
	size_t off = 0;
	while (len - off >= 8) {
		uint32_t n = lb_get32(d + off), crc = lb_get32(d + off + 4);
		if (n > AUDIT_REC_MAX || n > len - off - 8 || lb_crc32c(0, d + off + 8, n) != crc)
			break;
		if (cb) {
			struct lb_rd rd;
			lb_rd_init(&rd, d + off + 8, n);
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
			int ok = !rd.err && user && tenant && verb && object && detail;
			if (ok && r.time_ns >= since)
				*cbret = cb(arg, &r);
			free(user);
			free(tenant);
			free(verb);
			free(object);
			free(detail);
			if (*cbret < 0)
				return (int64_t)off;
		}
		off += 8 + n;
	}
	return (int64_t)off;
}

struct names {
	char **v;
	size_t n, cap;
};

static int list_cb(void *arg, const char *name, uint64_t size)
{
	struct names *l = arg;
	(void)size;
	int r = lb_grow(&l->v, &l->cap, l->n + 1, sizeof(char *));
	if (r < 0)
		return r;
	l->v[l->n] = strdup(name);
	return l->v[l->n++] ? 0 : -ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

int64_t lb_audit_repair(struct lb_backend *be)
{
	struct names l = { 0 };
	int r = be->ops->list(be, "audit", list_cb, &l);
	int64_t cut = 0;
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		uint8_t *d;
		size_t len;
		r = lb_backend_read_all(be, l.v[i], SIZE_MAX / 2, &d, &len);
		if (r < 0)
			break;
		int dummy = 0;
		int64_t good = walk(d, len, 0, NULL, NULL, &dummy);
		free(d);
		if ((size_t)good < len) {
			r = be->ops->truncate(be, l.v[i], (uint64_t)good);
			cut += (int64_t)len - good;
		}
	}
	names_free(&l);
	return r < 0 ? r : cut;
}

int lb_audit_read(struct lb_backend *be, int64_t since_ns, lb_audit_cb cb, void *arg)
{
	struct names l = { 0 };
	int r = be->ops->list(be, "audit", list_cb, &l);
	if (r == 0 && l.n)
		qsort(l.v, l.n, sizeof(char *), cmp_str);
	char first[64];
	object_name(since_ns > 0 ? since_ns : 0, first, sizeof(first));
	int cbret = 0;
	for (size_t i = 0; r == 0 && cbret >= 0 && i < l.n; i++) {
		if (since_ns > 0 && strcmp(l.v[i], first) < 0)
			continue; /* a month wholly before since */
		uint8_t *d;
		size_t len;
		r = lb_backend_read_all(be, l.v[i], SIZE_MAX / 2, &d, &len);
		if (r < 0)
			break;
		walk(d, len, since_ns, cb, arg, &cbret);
		free(d);
	}
	names_free(&l);
	return r < 0 ? r : (cbret < 0 ? cbret : 0);
}
