/* records.h - what the reports are made of: a record per job and a usage
 * sample per tenant per day, kept in the store's record logs (reclog.h)
 * under "jobs" and "usage", crash-safe like the rest of the store. */
#ifndef LB_RECORDS_H
#define LB_RECORDS_H

#include "backend.h"

#include <stddef.h>
#include <stdint.h>

struct lb_job_rec {
	char kind[16];      /* "backup" or "gc" */
	char tenant[65];
	char dataset[65];
	int64_t start_ns, end_ns;
	int status;         /* 0 or an errno value */
	char error[512];    /* one line, "" on success */
	uint64_t bytes_read;   /* backups: file bytes the client read (unchanged files are
				* not read); from a client that does not say, the bytes the
				* snapshot covers */
	uint64_t bytes_sent;   /* backups: bytes that crossed the client's link, both ways,
				* compressed; without a link, the data bytes received */
	uint64_t new_stored;   /* bytes added to the store */
	uint64_t files;
	char snapshot[33];  /* hex id, "" when nothing was committed */
	uint64_t freed;     /* bytes a collection gave back (0 for backups) */
};

int lb_job_append(struct lb_backend *be, const struct lb_job_rec *j);
typedef int (*lb_job_cb)(void *arg, const struct lb_job_rec *j);
/* Records that ended at or after since_ns, oldest first. */
int lb_job_read(struct lb_backend *be, int64_t since_ns, lb_job_cb cb, void *arg);

/* One day's usage: the store's figures and one row per tenant. */
struct lb_sample_tenant {
	char tenant[65];
	uint64_t charged, exclusive, logical, snapshots;
};

struct lb_sample {
	int64_t time_ns; /* when it was taken */
	uint64_t physical, unreferenced, overhead;
	struct lb_sample_tenant *t;
	size_t nt;
};

int lb_sample_append(struct lb_backend *be, const struct lb_sample *s);
typedef int (*lb_sample_cb)(void *arg, const struct lb_sample *s);
int lb_sample_read(struct lb_backend *be, int64_t since_ns, lb_sample_cb cb, void *arg);

#endif
