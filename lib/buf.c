/* buf.c - see buf.h. */
#include "config.h"

#include "buf.h"
#include "util.h"

void lb_buf_init(struct lb_buf *b) { memset(b, 0, sizeof(*b)); }

void lb_buf_free(struct lb_buf *b)
{
	free(b->p);
	lb_buf_init(b);
}

void lb_buf_reset(struct lb_buf *b)
{
	b->len = 0;
	b->err = 0;
}

int lb_buf_reserve(struct lb_buf *b, size_t n)
{
	if (b->err)
		return b->err;
	if (n > SIZE_MAX - b->len) {
		b->err = -ENOMEM;
		return b->err;
	}
	if (b->len + n <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
	uint8_t *np = realloc(b->p, cap);
	if (!np) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

void lb_buf_put(struct lb_buf *b, const void *data, size_t len)
{
	if (len == 0 || lb_buf_reserve(b, len) < 0)
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void lb_buf_put_u8(struct lb_buf *b, uint8_t v) { lb_buf_put(b, &v, 1); }

void lb_buf_put_u32le(struct lb_buf *b, uint32_t v)
{
	uint8_t t[4];
	lb_put32(t, v);
	lb_buf_put(b, t, 4);
}

void lb_buf_put_uv(struct lb_buf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		t[n++] = c | (v ? 0x80 : 0);
	} while (v);
	lb_buf_put(b, t, n);
}

void lb_buf_put_sv(struct lb_buf *b, int64_t v)
{
	lb_buf_put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void lb_buf_put_bytes(struct lb_buf *b, const void *data, size_t len)
{
	lb_buf_put_uv(b, len);
	lb_buf_put(b, data, len);
}

void lb_buf_put_str(struct lb_buf *b, const char *s)
{
	lb_buf_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

static void fail(struct lb_rd *r)
{
	r->err = -EBADMSG;
	r->p = r->end;
}

uint8_t lb_rd_u8(struct lb_rd *r)
{
	if (r->err || r->p >= r->end) {
		fail(r);
		return 0;
	}
	return *r->p++;
}

uint32_t lb_rd_u32le(struct lb_rd *r)
{
	const uint8_t *p = lb_rd_raw(r, 4);
	return p ? lb_get32(p) : 0;
}

uint64_t lb_rd_uv(struct lb_rd *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->err || r->p >= r->end) {
			fail(r);
			return 0;
		}
		uint8_t c = *r->p++;
		if (shift == 63 && c > 1) {
			fail(r);
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			/* Only the shortest encoding is valid: every value has one
			 * byte string, so hashes of records are canonical. */
			if (c == 0 && shift > 0) {
				fail(r);
				return 0;
			}
			return v;
		}
	}
	fail(r);
	return 0;
}

int64_t lb_rd_sv(struct lb_rd *r)
{
	uint64_t u = lb_rd_uv(r);
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

uint64_t lb_rd_uv_max(struct lb_rd *r, uint64_t max)
{
	uint64_t v = lb_rd_uv(r);
	if (v > max) {
		fail(r);
		return 0;
	}
	return v;
}

const uint8_t *lb_rd_raw(struct lb_rd *r, size_t len)
{
	if (r->err || lb_rd_left(r) < len) {
		fail(r);
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += len;
	return p;
}

const uint8_t *lb_rd_bytes(struct lb_rd *r, size_t max, size_t *len)
{
	uint64_t n = lb_rd_uv_max(r, max);
	*len = (size_t)n;
	if (r->err)
		return NULL;
	return lb_rd_raw(r, (size_t)n);
}

char *lb_rd_strdup(struct lb_rd *r, size_t max)
{
	size_t n;
	const uint8_t *p = lb_rd_bytes(r, max, &n);
	if (!p || memchr(p, '\0', n)) {
		fail(r);
		return NULL;
	}
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}
