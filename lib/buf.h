/* buf.h - growable byte buffer and a bounds-checked reader for the varint
 * records used by manifests, snapshot heads and the wire protocol.
 *
 * Unsigned integers are LEB128 varints (at most 10 bytes), signed ones are
 * zigzag-encoded first, byte strings are a varint length and the bytes.
 * The reader never reads past its end: the first failure sets rd->err
 * (-EBADMSG) and every later read returns zero values, so a decoder can read
 * a whole record and check the error once. */
#ifndef LB_BUF_H
#define LB_BUF_H

#include <stddef.h>
#include <stdint.h>

struct lb_buf {
	uint8_t *p;
	size_t len, cap;
	int err; /* -ENOMEM after a failed allocation; later puts do nothing */
};

void lb_buf_init(struct lb_buf *b);
void lb_buf_free(struct lb_buf *b);
void lb_buf_reset(struct lb_buf *b);
/* Makes room for n more bytes; returns 0 or -ENOMEM. */
int lb_buf_reserve(struct lb_buf *b, size_t n);
void lb_buf_put(struct lb_buf *b, const void *data, size_t len);
void lb_buf_put_u8(struct lb_buf *b, uint8_t v);
void lb_buf_put_u32le(struct lb_buf *b, uint32_t v);
void lb_buf_put_uv(struct lb_buf *b, uint64_t v);
void lb_buf_put_sv(struct lb_buf *b, int64_t v);
void lb_buf_put_bytes(struct lb_buf *b, const void *data, size_t len);
/* A NUL-terminated string (NULL is written as the empty string). */
void lb_buf_put_str(struct lb_buf *b, const char *s);

struct lb_rd {
	const uint8_t *p, *end;
	int err;
};

static inline void lb_rd_init(struct lb_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->end = len ? r->p + len : r->p; /* NULL + 0 is undefined behaviour */
	r->err = 0;
}
static inline size_t lb_rd_left(const struct lb_rd *r) { return (size_t)(r->end - r->p); }

uint8_t lb_rd_u8(struct lb_rd *r);
uint32_t lb_rd_u32le(struct lb_rd *r);
uint64_t lb_rd_uv(struct lb_rd *r);
int64_t lb_rd_sv(struct lb_rd *r);
/* Unsigned varint that must be <= max; larger sets the error. */
uint64_t lb_rd_uv_max(struct lb_rd *r, uint64_t max);
/* Points *out at len raw bytes inside the input (no copy). */
const uint8_t *lb_rd_raw(struct lb_rd *r, size_t len);
/* A length-prefixed byte string of at most max bytes; *len receives its
 * length and the return value points inside the input. */
const uint8_t *lb_rd_bytes(struct lb_rd *r, size_t max, size_t *len);
/* A string as written by lb_buf_put_str: returns a new NUL-terminated copy
 * (caller frees) or NULL on error; refuses embedded NULs. */
char *lb_rd_strdup(struct lb_rd *r, size_t max);

#endif
