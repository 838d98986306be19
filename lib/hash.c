/* hash.c - SHA-256 through OpenSSL's EVP interface. */
#include "config.h"

#include "hash.h"
#include "util.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

void lb_sha256(const void *data, size_t len, struct lb_id *id)
{
	/* The one-shot SHA256() uses the same accelerated code as EVP, without
	 * allocating a context per chunk. */
	SHA256(data, len, id->b);
}

struct lb_sha {
	EVP_MD_CTX *ctx;
};

struct lb_sha *lb_sha_new(void)
{
	struct lb_sha *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
		lb_sha_free(s);
		return NULL;
	}
	return s;
}

void lb_sha_update(struct lb_sha *s, const void *data, size_t len)
{
	EVP_DigestUpdate(s->ctx, data, len);
}

void lb_sha_final(struct lb_sha *s, struct lb_id *out)
{
	unsigned int n = 0;
	EVP_DigestFinal_ex(s->ctx, out->b, &n);
	EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL);
}

void lb_sha_free(struct lb_sha *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->ctx);
	free(s);
}

char *lb_id_hex(const struct lb_id *id, char out[LB_ID_HEX])
{
	lb_hex(out, id->b, LB_ID_LEN);
	return out;
}
