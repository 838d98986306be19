/* pool.c - see pool.h. */
#include "config.h"

#include "pool.h"
#include "util.h"

#include <pthread.h>

struct lb_job {
	lb_job_fn fn;
	void *arg;
	size_t n;
	size_t next; /* next item to hand out */
	size_t done;
	struct lb_job *qnext;
	int queued;
};

struct lb_pool {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was queued, or stop */
	pthread_cond_t done; /* an item finished */
	struct lb_job *head, *tail;
	pthread_t *threads;
	unsigned nthreads;
	int stop;
};

static void unqueue_locked(struct lb_pool *p, struct lb_job *j)
{
	if (!j->queued)
		return;
	struct lb_job **pp = &p->head;
	struct lb_job *prev = NULL;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (*pp) {
		*pp = j->qnext;
		if (p->tail == j)
			p->tail = prev;
	}
	j->queued = 0;
}

/* Takes one item of job j (or of the first queued job when j is NULL).
 * Called with the lock held; returns the job or NULL. */
static struct lb_job *take_locked(struct lb_pool *p, struct lb_job *j, size_t *item)
{
	if (!j)
		j = p->head;
	if (!j || j->next >= j->n)
		return NULL;
	*item = j->next++;
	if (j->next >= j->n)
		unqueue_locked(p, j);
	return j;
}

static void finish_locked(struct lb_pool *p, struct lb_job *j)
{
	if (++j->done == j->n)
		pthread_cond_broadcast(&p->done);
}

static void *worker(void *arg)
{
	struct lb_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		size_t item;
		struct lb_job *j = take_locked(p, NULL, &item);
		if (!j) {
			if (p->stop)
				break;
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg, item);
		pthread_mutex_lock(&p->mu);
		finish_locked(p, j);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int lb_pool_new(unsigned nthreads, struct lb_pool **out)
{
	struct lb_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = calloc(nthreads ? nthreads : 1, sizeof(pthread_t));
	if (!p->threads) {
		lb_pool_free(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		int r = pthread_create(&p->threads[i], NULL, worker, p);
		if (r) {
			lb_pool_free(p);
			return -r;
		}
		p->nthreads++;
	}
	*out = p;
	return 0;
}

void lb_pool_free(struct lb_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p);
}

int lb_job_submit(struct lb_pool *p, size_t n, lb_job_fn fn, void *arg, struct lb_job **out)
{
	struct lb_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->n = n;
	pthread_mutex_lock(&p->mu);
	if (n > 0) {
		j->queued = 1;
		if (p->tail)
			p->tail->qnext = j;
		else
			p->head = j;
		p->tail = j;
		pthread_cond_broadcast(&p->work);
	}
	pthread_mutex_unlock(&p->mu);
	*out = j;
	return 0;
}

void lb_job_wait_also(struct lb_pool *p, struct lb_job *j, struct lb_job *also)
{
	pthread_mutex_lock(&p->mu);
	for (;;) {
		size_t item;
		struct lb_job *t = take_locked(p, j, &item);
		if (!t && j->done < j->n && also)
			t = take_locked(p, also, &item);
		if (t) {
			pthread_mutex_unlock(&p->mu);
			t->fn(t->arg, item);
			pthread_mutex_lock(&p->mu);
			finish_locked(p, t);
			continue;
		}
		if (j->done == j->n)
			break;
		pthread_cond_wait(&p->done, &p->mu);
	}
	unqueue_locked(p, j);
	pthread_mutex_unlock(&p->mu);
	free(j);
}

void lb_job_wait(struct lb_pool *p, struct lb_job *j) { lb_job_wait_also(p, j, NULL); }

int lb_pool_run(struct lb_pool *p, size_t n, lb_job_fn fn, void *arg)
{
	struct lb_job *j;
	int r = lb_job_submit(p, n, fn, arg, &j);
	if (r < 0)
		return r;
	lb_job_wait(p, j);
	return 0;
}

unsigned lb_pool_size(const struct lb_pool *p) { return p->nthreads; }

/* ---- keeps ------------------------------------------------------------------ */

static pthread_mutex_t keeps_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lb_keep *keeps;

void *lb_keep_take(struct lb_keep *k)
{
	void *p = NULL;
	pthread_mutex_lock(&k->mu);
	if (k->n)
		p = k->v[--k->n];
	pthread_mutex_unlock(&k->mu);
	return p;
}

void lb_keep_give(struct lb_keep *k, void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&keeps_mu);
	if (!k->listed) {
		k->next = keeps;
		keeps = k;
		k->listed = 1;
	}
	pthread_mutex_unlock(&keeps_mu);
	pthread_mutex_lock(&k->mu);
	int kept = k->n < LB_KEEP_SLOTS;
	if (kept)
		k->v[k->n++] = p;
	pthread_mutex_unlock(&k->mu);
	if (!kept)
		k->destroy(p);
}

void lb_keep_drain_all(void)
{
	pthread_mutex_lock(&keeps_mu);
	for (struct lb_keep *k = keeps; k; k = k->next) {
		void *v[LB_KEEP_SLOTS];
		pthread_mutex_lock(&k->mu);
		unsigned n = k->n;
		memcpy(v, k->v, n * sizeof(*v));
		k->n = 0;
		pthread_mutex_unlock(&k->mu);
		for (unsigned i = 0; i < n; i++)
			k->destroy(v[i]);
	}
	pthread_mutex_unlock(&keeps_mu);
}

/* ---- thread buffers --------------------------------------------------------- */

struct tbuf {
	uint8_t *p;
	size_t cap;
	struct lb_thread_buf *owner;
};

static void tbuf_destroy(void *arg)
{
	struct tbuf *b = arg;
	free(b->p);
	free(b);
}

/* At the thread's end. */
static void tbuf_exit(void *arg)
{
	struct tbuf *b = arg;
	lb_keep_give(&b->owner->keep, b);
}

uint8_t *lb_thread_buf(struct lb_thread_buf *tb, size_t n)
{
	if (n == 0)
		n = 1;
	if (!tb->ready) {
		pthread_mutex_lock(&keeps_mu);
		if (!tb->ready) {
			tb->keep.destroy = tbuf_destroy;
			if (pthread_key_create(&tb->key, tbuf_exit) != 0) {
				pthread_mutex_unlock(&keeps_mu);
				return NULL;
			}
			tb->ready = 1;
		}
		pthread_mutex_unlock(&keeps_mu);
	}
	struct tbuf *b = pthread_getspecific(tb->key);
	if (!b) {
		b = lb_keep_take(&tb->keep);
		if (!b && !(b = calloc(1, sizeof(*b))))
			return NULL;
		b->owner = tb;
		if (pthread_setspecific(tb->key, b) != 0) {
			lb_keep_give(&tb->keep, b);
			return NULL;
		}
	}
	if (n > b->cap) {
		uint8_t *np = realloc(b->p, n);
		if (!np)
			return NULL;
		b->p = np;
		b->cap = n;
	}
	return b->p;
}
