/* fuzz-records.c - the store's record logs (lib/reclog.c) and the records
 * kept in them: job records and usage samples (lib/records.c) and audit
 * records (lib/audit.c), as the reports and `lumbung audit` read them, and
 * the repair that cuts torn tails.
 *
 * Input: one flag byte, then records, each a u16 length (LE) and that many
 * bytes.  With bit 0 of the flag set each record is framed as the log
 * frames it (u32 length, u32 crc32c, payload) so the fuzzer reaches the
 * record decoders; clear, the bytes after the flag are the log as is.  The
 * same log is stored under jobs/, usage/ and audit/. */
#include "fuzz.h"
#include "audit.h"
#include "crc32c.h"
#include "reclog.h"
#include "records.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int job_cb(void *arg, const struct lb_job_rec *j)
{
	(*(size_t *)arg) += strnlen(j->error, sizeof(j->error));
	return 0;
}

static int sample_cb(void *arg, const struct lb_sample *s)
{
	for (size_t i = 0; i < s->nt; i++)
		(*(size_t *)arg) += strnlen(s->t[i].tenant, sizeof(s->t[i].tenant));
	return 0;
}

static int audit_cb(void *arg, const struct lb_audit_rec *r)
{
	(void)arg;
	(void)r;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	uint32_t flags = fz_u8(&f);
	uint8_t *log = NULL;
	size_t len = 0;
	if (flags & 1) {
		log = malloc(size * 4 + 8); /* 8 bytes of framing per 2 of input at most */
		if (!log)
			abort();
		while (f.left) {
			const uint8_t *p;
			size_t n = fz_take(&f, fz_u16(&f), &p);
			lb_put32(log + len, (uint32_t)n);
			lb_put32(log + len + 4, lb_crc32c(0, p, n));
			memcpy(log + len + 8, p, n);
			len += 8 + n;
		}
	} else {
		log = malloc(f.left ? f.left : 1);
		if (!log)
			abort();
		len = f.left;
		memcpy(log, f.p, f.left);
	}
	struct lb_backend *be = memback_new();
	memback_add(be, "jobs/2026-11", log, len);
	memback_add(be, "usage/2026-11", log, len);
	memback_add(be, "audit/2026-11", log, len);
	free(log);
	size_t seen = 0;
	(void)lb_job_read(be, 0, job_cb, &seen);
	(void)lb_sample_read(be, 0, sample_cb, &seen);
	(void)lb_audit_read(be, 0, audit_cb, NULL);
	(void)lb_job_read(be, (int64_t)1795000000 * 1000000000LL, job_cb, &seen);
	(void)lb_reclog_repair(be, "jobs");
	(void)lb_job_read(be, 0, job_cb, &seen);
	lb_backend_free(be);
	return 0;
}
