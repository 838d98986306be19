/* pool.h - a fixed set of worker threads shared by every job in the
 * process.  A job is "run fn(arg, i) for i in 0..n-1"; the thread that
 * submitted it works on it too while it waits, so a pool of N workers plus
 * the submitter keeps N+1 threads busy and a job never waits on an idle
 * pool. */
#ifndef LB_POOL_H
#define LB_POOL_H

#include <stddef.h>

struct lb_pool;
struct lb_job;

typedef void (*lb_job_fn)(void *arg, size_t i);

/* Starts nthreads workers (0 is allowed: jobs then run on the submitter). */
int lb_pool_new(unsigned nthreads, struct lb_pool **out);
/* Stops the workers after the queued jobs finish. */
void lb_pool_free(struct lb_pool *p);

/* Queues a job of n items and returns at once; the job must be waited for
 * with lb_job_wait(), which also frees it. */
int lb_job_submit(struct lb_pool *p, size_t n, lb_job_fn fn, void *arg, struct lb_job **out);
/* Works on the job until every item is done, then frees it. */
void lb_job_wait(struct lb_pool *p, struct lb_job *job);
/* Submits and waits. */
int lb_pool_run(struct lb_pool *p, size_t n, lb_job_fn fn, void *arg);
/* Number of worker threads. */
unsigned lb_pool_size(const struct lb_pool *p);

#endif
