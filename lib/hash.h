/* hash.h - chunk identity: SHA-256 of the plaintext, through libcrypto (which
 * uses the CPU's SHA instructions).  Dedup crosses tenants, so identity must be
 * collision resistant; nothing weaker ever decides that two chunks are equal. */
#ifndef LB_HASH_H
#define LB_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LB_ID_LEN 32
#define LB_ID_HEX (2 * LB_ID_LEN + 1)

struct lb_id {
	uint8_t b[LB_ID_LEN];
};

/* SHA-256 of data into *id.  Thread-safe; allocates nothing. */
void lb_sha256(const void *data, size_t len, struct lb_id *id);

/* Incremental SHA-256 for streams (pack checksums, whole files). */
struct lb_sha;
/* Returns a new context or NULL on ENOMEM; free with lb_sha_free(). */
struct lb_sha *lb_sha_new(void);
void lb_sha_update(struct lb_sha *s, const void *data, size_t len);
/* Writes the digest and resets the context for reuse. */
void lb_sha_final(struct lb_sha *s, struct lb_id *out);
void lb_sha_free(struct lb_sha *s);

static inline int lb_id_cmp(const struct lb_id *a, const struct lb_id *b)
{
	return memcmp(a->b, b->b, LB_ID_LEN);
}
static inline int lb_id_is_zero(const struct lb_id *a)
{
	static const struct lb_id zero;
	return memcmp(a->b, zero.b, LB_ID_LEN) == 0;
}
/* Formats the id as 64 hex digits into out (LB_ID_HEX bytes); returns out. */
char *lb_id_hex(const struct lb_id *id, char out[LB_ID_HEX]);

#endif
