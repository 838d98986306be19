/* reclog.c - see reclog.h. */
#include "reclog.h"
#include "crc32c.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

static void object_name(const char *prefix, int64_t time_ns, char *buf, size_t len)
{
	time_t t = (time_t)(time_ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%s/%04d-%02d", prefix, tm.tm_year + 1900, tm.tm_mon + 1);
}

int lb_reclog_append(struct lb_backend *be, const char *prefix, int64_t time_ns, const void *payload, size_t len)
{
	if (len > LB_RECLOG_MAX)
		return -EFBIG;
	uint8_t *rec = malloc(len + 8);
	if (!rec)
		return -ENOMEM;
	lb_put32(rec, (uint32_t)len);
	lb_put32(rec + 4, lb_crc32c(0, payload, len));
	memcpy(rec + 8, payload, len);
	char name[96];
	object_name(prefix, time_ns, name, sizeof(name));
	int r = be->ops->append(be, name, rec, len + 8);
	free(rec);
	return r;
}

/* Length of the intact prefix of an object; calls cb on each record. */
static int64_t walk(const uint8_t *d, size_t len, lb_reclog_cb cb, void *arg, int *cbret)
{
	size_t off = 0;
	while (len - off >= 8) {
		uint32_t n = lb_get32(d + off), crc = lb_get32(d + off + 4);
		if (n > LB_RECLOG_MAX || n > len - off - 8 || lb_crc32c(0, d + off + 8, n) != crc)
			break;
		if (cb && (*cbret = cb(arg, d + off + 8, n)) < 0)
			break;
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

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

int64_t lb_reclog_repair(struct lb_backend *be, const char *prefix)
{
	struct names l = { 0 };
	int r = be->ops->list(be, prefix, list_cb, &l);
	int64_t cut = 0;
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		uint8_t *d;
		size_t len;
		r = lb_backend_read_all(be, l.v[i], SIZE_MAX / 2, &d, &len);
		if (r < 0)
			break;
		int dummy = 0;
		int64_t good = walk(d, len, NULL, NULL, &dummy);
		free(d);
		if ((size_t)good < len) {
			r = be->ops->truncate(be, l.v[i], (uint64_t)good);
			cut += (int64_t)len - good;
		}
	}
	names_free(&l);
	return r < 0 ? r : cut;
}

int lb_reclog_read(struct lb_backend *be, const char *prefix, int64_t since_ns, lb_reclog_cb cb, void *arg)
{
	struct names l = { 0 };
	int r = be->ops->list(be, prefix, list_cb, &l);
	if (r == 0 && l.n)
		qsort(l.v, l.n, sizeof(char *), cmp_str);
	char first[96];
	object_name(prefix, since_ns > 0 ? since_ns : 0, first, sizeof(first));
	int cbret = 0;
	for (size_t i = 0; r == 0 && cbret >= 0 && i < l.n; i++) {
		if (since_ns > 0 && strcmp(l.v[i], first) < 0)
			continue; /* a month wholly before since */
		uint8_t *d;
		size_t len;
		r = lb_backend_read_all(be, l.v[i], SIZE_MAX / 2, &d, &len);
		if (r < 0)
			break;
		walk(d, len, cb, arg, &cbret);
		free(d);
	}
	names_free(&l);
	return r < 0 ? r : (cbret < 0 ? cbret : 0);
}
