/* pool.h - a fixed set of worker threads shared by every job in the
 * process.  A job is "run fn(arg, i) for i in 0..n-1"; the thread that
 * submitted it works on it too while it waits, so a pool of N workers plus
 * the submitter keeps N+1 threads busy and a job never waits on an idle
 * pool. */
#ifndef LB_POOL_H
#define LB_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

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
/* The same, but once no item of job is left to take, works on items of
 * `also` (a later job of the same caller, waited for after this one)
 * instead of waiting idle for the last ones in other threads' hands. */
void lb_job_wait_also(struct lb_pool *p, struct lb_job *job, struct lb_job *also);
/* Submits and waits. */
int lb_pool_run(struct lb_pool *p, size_t n, lb_job_fn fn, void *arg);
/* Number of worker threads. */
unsigned lb_pool_size(const struct lb_pool *p);

/* ---- thread state that outlives its thread ----
 *
 * Thread-local working state (zstd contexts, decode buffers) would die
 * with its thread, and lumbungd runs every connection on a thread of its
 * own, which does a share of its job's decoding: each connection then
 * faulted in fresh megabytes, the larger part of a one-file restore's
 * cost.  A thread that ends gives its state to a keep; the next thread
 * that needs one takes it, warm.  lb_keep_drain_all() frees what every
 * keep holds (an idle daemon gives its memory back). */
#define LB_KEEP_SLOTS 8

struct lb_keep {
	pthread_mutex_t mu;
	void *v[LB_KEEP_SLOTS];
	unsigned n;
	void (*destroy)(void *);
	struct lb_keep *next; /* in the list of keeps drained together */
	int listed;
};
/* Keeps and thread buffers must be static: a keep, once given to, stays
 * in the list that lb_keep_drain_all walks. */
#define LB_KEEP_INIT(destroy) { PTHREAD_MUTEX_INITIALIZER, { NULL }, 0, (destroy), NULL, 0 }

/* The state given last, or NULL when the keep is empty. */
void *lb_keep_take(struct lb_keep *k);
/* Keeps p for another thread (destroys it when the keep is full). */
void lb_keep_give(struct lb_keep *k, void *p);
/* Destroys what every keep holds. */
void lb_keep_drain_all(void);

/* A growable buffer of each thread, kept across threads as above. */
struct lb_thread_buf {
	pthread_key_t key;
	_Atomic int ready;
	struct lb_keep keep;
};
#define LB_THREAD_BUF_INIT { 0, 0, LB_KEEP_INIT(NULL) }

/* The calling thread's buffer of tb, at least n bytes (its contents are
 * not kept when it grows); NULL when memory is exhausted. */
uint8_t *lb_thread_buf(struct lb_thread_buf *tb, size_t n);

#endif
