/* backend_rados.c - a store whose objects live in a Ceph RADOS pool.
 *
 * Packs, snapshot heads, the config and the record logs are RADOS objects
 * named as the store names them, in the configured pool and namespace.
 * The index runs stay on local disk, in the cache directory ([store] path),
 * behind a local backend: they are read at every start and rebuilt from the
 * packs in the pool when the cache is missing or is not the pool's latest.
 *
 * An immutable object is gathered in memory and written by one compound
 * operation that creates it exclusively and writes it whole, so it is
 * either absent or complete: RADOS has no rename, and a single operation on
 * one object is atomic.  Small mutable objects are replaced by write_full,
 * which is atomic too.  Appends are durable when the OSDs acknowledge them.
 *
 * Ownership is a RADOS exclusive lock on the object "lock", leased for
 * three times rados_timeout (at least MIN_LEASE_S) and renewed by a thread
 * on the monotonic clock.  Its cookie names the holder's host, boot, PID
 * namespace, pid and process start time, so a holder that died in this
 * very system is broken at once and any other one expires.  A process
 * stops writing once its lease could end before an operation finishes;
 * when it gets the lock back it resumes only if nobody wrote the pool
 * meanwhile (see still_ours()).  Every monitor and OSD operation has a
 * timeout, so a sick cluster fails a job instead of hanging it, and a
 * write that timed out is settled before any other write (see settle()). */
#include "config.h"

#include "backend.h"
#include "util.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <rados/librados.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* librados is not linked in: it is loaded when a store in a pool is
 * opened (dl_load), so that a daemon of a local store does not map it and
 * the Ceph libraries it pulls in (12 MiB resident at start, 23 against 11,
 * and 13 MiB at the peak of the bench's nightly backup), and the package
 * needs librados2 only for that. */
#define RADOS_FUNCS(X) \
	X(rados_aio_create_completion2) \
	X(rados_aio_get_return_value) \
	X(rados_aio_release) \
	X(rados_aio_stat) \
	X(rados_aio_wait_for_complete) \
	X(rados_append) \
	X(rados_break_lock) \
	X(rados_buffer_free) \
	X(rados_cluster_stat) \
	X(rados_conf_read_file) \
	X(rados_conf_set) \
	X(rados_connect) \
	X(rados_create2) \
	X(rados_create_write_op) \
	X(rados_ioctx_create) \
	X(rados_ioctx_destroy) \
	X(rados_ioctx_pool_stat) \
	X(rados_ioctx_set_namespace) \
	X(rados_list_lockers) \
	X(rados_lock_exclusive) \
	X(rados_mon_command) \
	X(rados_nobjects_list_close) \
	X(rados_nobjects_list_next) \
	X(rados_nobjects_list_open) \
	X(rados_read) \
	X(rados_release_write_op) \
	X(rados_remove) \
	X(rados_shutdown) \
	X(rados_stat) \
	X(rados_trunc) \
	X(rados_unlock) \
	X(rados_write_full) \
	X(rados_write_op_create) \
	X(rados_write_op_operate) \
	X(rados_write_op_write_full)
#define RADOS_PTR(f) static __typeof__(f) *dl_##f;
RADOS_FUNCS(RADOS_PTR)
#undef RADOS_PTR

static pthread_once_t dl_once = PTHREAD_ONCE_INIT;
static char dl_error[400]; /* empty once loaded */

static void dl_load(void)
{
	void *h = dlopen("librados.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(dl_error, sizeof(dl_error), "cannot load librados (apt-get install librados2): %s", dlerror());
		return;
	}
	const char *missing = NULL;
#define RADOS_SYM(f)                                           \
	if (!missing) {                                        \
		void *sym = dlsym(h, #f);                      \
		if (sym)                                       \
			memcpy(&dl_##f, &sym, sizeof(sym));    \
		else                                           \
			missing = #f;                          \
	}
	RADOS_FUNCS(RADOS_SYM)
#undef RADOS_SYM
	if (missing)
		snprintf(dl_error, sizeof(dl_error), "librados.so.2 has no %s (a Ceph older than 17?)", missing);
}

/* osd_max_write_size is 90 MiB by default; one object is written by one
 * operation, so it stays under that. */
#define MAX_OBJECT (80u << 20)
#define LOCK_NAME "lumbung"
#define LOCK_OBJECT "lock"
#define MIN_LEASE_S 15
#define STAT_BATCH 64
/* The cache's index is the pool's when both hold the same marker, a
 * generation: this process writes a new one at each change of its index
 * (the cache's copy first), and each appliance rebuilds on taking over a
 * pool it did not write last.  An old copy of the cache, restored from a
 * disk backup, holds an old generation and is rebuilt too. */
#define MARKER "cache/owner"
#define POOL_MARKER "index-owner"
#define READ_PIECE (16u << 20)

struct rados_backend {
	struct lb_backend be;
	rados_t cluster;
	rados_ioctx_t io;
	int connected, have_io;
	struct lb_backend *cache; /* index runs and the cache marker */
	char pool[128];
	char where[300]; /* pool or pool/namespace, for messages */
	char cookie[256];
	int64_t timeout_ns, lease_ns;
	unsigned replicas;
	uint64_t quota; /* the pool's max_bytes; 0: none */
	int64_t space_at; /* space(): when last asked, and the answer */
	int space_r;
	uint64_t space;
	/* the lock and its renewal */
	pthread_t renewer;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* wakes the renewer early */
	pthread_cond_t rounds;  /* the renewer finished a round */
	uint64_t round;
	int locked, stopping, lost, taken_over, lapse_told;
	int64_t lock_until_ns; /* lb_mono_ns() */
	/* the index generation this process last wrote to the pool, and one
	 * whose write is in doubt */
	char token[40], token_pending[40];
	/* objects whose write timed out with no answer yet on whether it
	 * landed; writes wait while there are any */
	char **unsettled;
	size_t nunsettled, unsettled_cap;
};

/* A writer for either side: inner is set for an object of the cache. */
struct rados_writer {
	struct rados_backend *rb;
	struct lb_obj_writer *inner;
	char name[256];
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static struct rados_backend *R(struct lb_backend *be) { return (struct rados_backend *)be; }
static struct rados_writer *W(struct lb_obj_writer *w) { return (struct rados_writer *)w; }

static int rados_replace(struct lb_backend *be, const char *name, const void *data, size_t len);

/* Names kept on local disk. */
static int local_name(const char *name)
{
	return !strncmp(name, "index/", 6) || !strcmp(name, "index") || !strncmp(name, "cache/", 6) ||
	       !strcmp(name, "cache");
}

/* A new index generation, in the cache first: a crash between the two
 * writes leaves them different, and the next start rebuilds. */
static int new_generation(struct rados_backend *rb)
{
	uint8_t id[16];
	char hex[40];
	lb_random(id, sizeof(id));
	lb_hex(hex, id, sizeof(id));
	strcat(hex, "\n");
	int r = rb->cache->ops->replace(rb->cache, MARKER, hex, strlen(hex));
	if (r < 0)
		return r;
	pthread_mutex_lock(&rb->mu);
	memcpy(rb->token_pending, hex, sizeof(hex));
	pthread_mutex_unlock(&rb->mu);
	r = rados_replace(&rb->be, POOL_MARKER, hex, strlen(hex));
	if (r == 0) {
		pthread_mutex_lock(&rb->mu);
		memcpy(rb->token, hex, sizeof(hex));
		rb->token_pending[0] = '\0';
		pthread_mutex_unlock(&rb->mu);
	}
	return r;
}

/* After a change of the local index: best effort, as a marker that did not
 * reach the pool only costs a rebuild at the next start. */
static void index_changed(struct rados_backend *rb, const char *name)
{
	if (!strncmp(name, "index/", 6))
		new_generation(rb);
}

static int name_ok(const char *name)
{
	if (!*name || name[0] == '/' || strlen(name) >= 256)
		return 0;
	for (const char *p = name; *p; p++)
		if (p[0] == '.' && (p == name || p[-1] == '/'))
			return 0;
	return 1;
}

/* ---- writes that timed out ---------------------------------------------------
 *
 * An operation that timed out on this client may still be applied by an OSD
 * that was only slow (or stopped, and resumed).  RADOS applies one client's
 * operations on one object in the order they were sent, so once a later
 * operation on the same object has an answer, the earlier one has landed or
 * never will.  settle() sends that later operation, a stat; when it times
 * out too, the name is kept in rb->unsettled and every write waits until the
 * renewal thread gets an answer, so nothing (GC above all) acts on a state
 * that a late write could still change. */

static int settle(struct rados_backend *rb, const char *name, uint64_t *size)
{
	time_t mtime;
	int r = dl_rados_stat(rb->io, name, size, &mtime);
	if (r == 0 || r == -ENOENT)
		return r;
	pthread_mutex_lock(&rb->mu);
	size_t i = 0;
	while (i < rb->nunsettled && strcmp(rb->unsettled[i], name) != 0)
		i++;
	char *copy;
	if (i == rb->nunsettled && lb_grow(&rb->unsettled, &rb->unsettled_cap, i + 1, sizeof(char *)) == 0 &&
	    (copy = strdup(name)) != NULL)
		rb->unsettled[rb->nunsettled++] = copy;
	pthread_mutex_unlock(&rb->mu);
	return r;
}

/* Asks again about each write in doubt; stops at the first without an
 * answer.  Any thread may call it. */
static void settle_pending(struct rados_backend *rb)
{
	for (;;) {
		char name[256];
		pthread_mutex_lock(&rb->mu);
		int any = rb->nunsettled > 0;
		if (any)
			snprintf(name, sizeof(name), "%s", rb->unsettled[rb->nunsettled - 1]);
		pthread_mutex_unlock(&rb->mu);
		if (!any)
			return;
		uint64_t size;
		time_t mtime;
		int r = dl_rados_stat(rb->io, name, &size, &mtime);
		if (r != 0 && r != -ENOENT)
			return;
		pthread_mutex_lock(&rb->mu);
		for (size_t i = 0; i < rb->nunsettled; i++)
			if (!strcmp(rb->unsettled[i], name)) {
				free(rb->unsettled[i]);
				rb->unsettled[i] = rb->unsettled[--rb->nunsettled];
				break;
			}
		pthread_mutex_unlock(&rb->mu);
		lb_notice(0, "pool %s: the write of %s that had timed out is settled: %s", rb->where, name,
			  r == 0 ? "it landed" : "it did not land");
	}
}

/* Waits on cv (made with a CLOCK_MONOTONIC condattr) for at most ns. */
static void wait_mono(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec += (long)(ns % 1000000000LL);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* Why a write may not start now, or NULL. */
static const char *cannot_write(struct rados_backend *rb, char *doubt, size_t dlen)
{
	*doubt = '\0';
	if (rb->taken_over)
		return "taken";
	if (rb->locked && (rb->lost || lb_mono_ns() + rb->timeout_ns >= rb->lock_until_ns))
		return "lapsed";
	if (rb->nunsettled) {
		snprintf(doubt, dlen, "%s", rb->unsettled[0]);
		return "doubt";
	}
	return NULL;
}

/* Writes stop once the lease could end before the write finishes (it may
 * take rados_timeout), when another appliance took the pool over, and while
 * an earlier write is in doubt.  The renewal thread is asked for a round at
 * once, and the write waits until one has run from start to end, or for
 * rados_timeout and a second at most: right after the cluster comes back
 * the lock is taken again and doubts are settled within one round, and
 * while it is sick a job fails in about one timeout per write. */
static int owner_ok(struct rados_backend *rb, const char *name)
{
	char doubt[256];
	pthread_mutex_lock(&rb->mu);
	const char *why = cannot_write(rb, doubt, sizeof(doubt));
	if (why && rb->locked && !rb->stopping && !rb->taken_over) {
		uint64_t want = rb->round + 2;
		int64_t deadline = lb_mono_ns() + rb->timeout_ns + 1000000000LL;
		pthread_cond_signal(&rb->cv);
		while ((why = cannot_write(rb, doubt, sizeof(doubt))) && rb->round < want && !rb->stopping &&
		       !rb->taken_over) {
			int64_t left = deadline - lb_mono_ns();
			if (left <= 0)
				break;
			wait_mono(&rb->rounds, &rb->mu, left);
		}
	}
	pthread_mutex_unlock(&rb->mu);
	if (!why)
		return 0;
	if (!strcmp(why, "taken")) {
		lb_set_error("cannot write %s in pool %s: another appliance took the store over while this one's "
			     "lock had lapsed; restart lumbungd to rebuild its index",
			     name, rb->where);
		return -ENOLCK;
	}
	if (!strcmp(why, "lapsed")) {
		lb_set_error("cannot write %s in pool %s: the store's lock could not be renewed in time", name,
			     rb->where);
		return -ENOLCK;
	}
	lb_set_error("cannot write %s in pool %s: an earlier write of %s timed out and Ceph has not told yet "
		     "whether it landed",
		     name, rb->where, doubt);
	return -ETIMEDOUT;
}

static int failed(struct rados_backend *rb, const char *what, const char *name, int r)
{
	if (r == -ETIMEDOUT && rb->nunsettled)
		lb_set_error("cannot %s %s in pool %s: %s; whether it landed is not known yet, and writes wait "
			     "until Ceph tells",
			     what, name, rb->where, strerror(-r));
	else
		lb_set_error("cannot %s %s in pool %s: %s", what, name, rb->where, strerror(-r));
	return r;
}

/* Whether the object holds exactly data (after a write_full in doubt). */
static int holds(struct rados_backend *rb, const char *name, const void *data, size_t len)
{
	char *buf = malloc(len + 1);
	if (!buf)
		return 0;
	int n = dl_rados_read(rb->io, name, buf, len + 1, 0);
	int same = n >= 0 && (size_t)n == len && memcmp(buf, data, len) == 0;
	free(buf);
	return same;
}

static int rados_put_begin(struct lb_backend *be, const char *name, struct lb_obj_writer **out)
{
	struct rados_backend *rb = R(be);
	if (!name_ok(name)) {
		lb_set_error("cannot write %s in pool %s: not a valid object name", name, rb->where);
		return -EINVAL;
	}
	struct rados_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->rb = rb;
	snprintf(w->name, sizeof(w->name), "%s", name);
	if (local_name(name)) {
		int r = rb->cache->ops->put_begin(rb->cache, name, &w->inner);
		if (r < 0) {
			free(w);
			return r;
		}
	}
	*out = (struct lb_obj_writer *)w;
	return 0;
}

static int rados_put_write(struct lb_obj_writer *ow, const void *data, size_t len)
{
	struct rados_writer *w = W(ow);
	if (w->inner)
		return w->rb->cache->ops->put_write(w->inner, data, len);
	if (w->err)
		return w->err;
	if (len > MAX_OBJECT - w->len) {
		lb_set_error("cannot write %s in pool %s: objects are limited to %u MiB", w->name, w->rb->where,
			     MAX_OBJECT >> 20);
		return w->err = -EFBIG;
	}
	if (w->len + len > w->cap) {
		size_t cap = w->cap ? w->cap : 1u << 20;
		while (cap < w->len + len)
			cap *= 2;
		cap = LB_MIN(cap, (size_t)MAX_OBJECT);
		uint8_t *nb = realloc(w->buf, cap);
		if (!nb)
			return w->err = -ENOMEM;
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return 0;
}

static void writer_free(struct rados_writer *w)
{
	free(w->buf);
	free(w);
}

static int rados_put_commit(struct lb_obj_writer *ow)
{
	struct rados_writer *w = W(ow);
	struct rados_backend *rb = w->rb;
	int r;
	if (w->inner) {
		r = rb->cache->ops->put_commit(w->inner);
		if (r == 0)
			index_changed(rb, w->name);
		free(w);
		return r;
	}
	r = w->err;
	if (r == 0)
		r = owner_ok(rb, w->name);
	if (r == 0) {
		rados_write_op_t op = dl_rados_create_write_op();
		if (!op) {
			r = -ENOMEM;
		} else {
			dl_rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
			dl_rados_write_op_write_full(op, w->len ? (const char *)w->buf : "", w->len);
			r = dl_rados_write_op_operate(op, rb->io, w->name, NULL, 0);
			dl_rados_release_write_op(op);
			uint64_t size;
			if (r == -ETIMEDOUT && settle(rb, w->name, &size) == 0 && size == w->len &&
			    holds(rb, w->name, w->buf, w->len))
				r = 0; /* it landed after all */
		}
		if (r < 0 && r != -EEXIST)
			failed(rb, "write", w->name, r);
	}
	writer_free(w);
	return r;
}

static void rados_put_abort(struct lb_obj_writer *ow)
{
	struct rados_writer *w = W(ow);
	if (w->inner) {
		w->rb->cache->ops->put_abort(w->inner);
		free(w);
		return;
	}
	writer_free(w);
}

static int rados_get(struct lb_backend *be, const char *name, uint64_t off, void *buf, size_t len)
{
	struct rados_backend *rb = R(be);
	if (local_name(name))
		return rb->cache->ops->get(rb->cache, name, off, buf, len);
	uint8_t *p = buf;
	while (len) {
		size_t piece = LB_MIN(len, (size_t)READ_PIECE);
		int n = dl_rados_read(rb->io, name, (char *)p, piece, off);
		if (n == -ENOENT)
			return -ENOENT;
		if (n < 0)
			return failed(rb, "read", name, n);
		if ((size_t)n < piece) {
			lb_set_error("cannot read %s in pool %s: it ends before byte %llu", name, rb->where,
				     (unsigned long long)(off + piece));
			return -EBADMSG;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int rados_stat_obj(struct lb_backend *be, const char *name, uint64_t *size)
{
	struct rados_backend *rb = R(be);
	if (local_name(name))
		return rb->cache->ops->stat(rb->cache, name, size);
	time_t mtime;
	int r = dl_rados_stat(rb->io, name, size, &mtime);
	if (r < 0 && r != -ENOENT)
		failed(rb, "look up", name, r);
	return r;
}

struct statbatch {
	char *names[STAT_BATCH];
	rados_completion_t c[STAT_BATCH];
	uint64_t size[STAT_BATCH];
	time_t mtime[STAT_BATCH];
	size_t n;
};

/* Sizes a batch of names with the stats in flight together, then hands
 * them to cb; an object removed meanwhile is left out. */
static int stat_flush(struct rados_backend *rb, struct statbatch *b, lb_list_cb cb, void *arg)
{
	int r = 0;
	size_t started = 0;
	for (; started < b->n; started++) {
		r = dl_rados_aio_create_completion2(NULL, NULL, &b->c[started]);
		if (r < 0)
			break;
		r = dl_rados_aio_stat(rb->io, b->names[started], b->c[started], &b->size[started], &b->mtime[started]);
		if (r < 0) {
			dl_rados_aio_release(b->c[started]);
			break;
		}
	}
	for (size_t i = 0; i < started; i++) {
		dl_rados_aio_wait_for_complete(b->c[i]);
		int ri = dl_rados_aio_get_return_value(b->c[i]);
		dl_rados_aio_release(b->c[i]);
		if (r == 0 && ri < 0 && ri != -ENOENT)
			r = failed(rb, "look up", b->names[i], ri);
		if (r == 0 && ri == 0)
			r = cb(arg, b->names[i], b->size[i]);
	}
	for (size_t i = 0; i < b->n; i++)
		free(b->names[i]);
	b->n = 0;
	return r;
}

static int rados_list(struct lb_backend *be, const char *prefix, lb_list_cb cb, void *arg)
{
	struct rados_backend *rb = R(be);
	if (local_name(prefix))
		return rb->cache->ops->list(rb->cache, prefix, cb, arg);
	rados_list_ctx_t ctx;
	int r = dl_rados_nobjects_list_open(rb->io, &ctx);
	if (r < 0)
		return failed(rb, "list", prefix, r);
	size_t plen = strlen(prefix);
	struct statbatch *b = calloc(1, sizeof(*b));
	if (!b) {
		dl_rados_nobjects_list_close(ctx);
		return -ENOMEM;
	}
	for (;;) {
		const char *entry;
		r = dl_rados_nobjects_list_next(ctx, &entry, NULL, NULL);
		if (r == -ENOENT) {
			r = 0;
			break;
		}
		if (r < 0) {
			failed(rb, "list", prefix, r);
			break;
		}
		if (strncmp(entry, prefix, plen) != 0 || entry[plen] != '/')
			continue;
		if (!(b->names[b->n] = strdup(entry))) {
			r = -ENOMEM;
			break;
		}
		if (++b->n == STAT_BATCH && (r = stat_flush(rb, b, cb, arg)) < 0)
			break;
	}
	dl_rados_nobjects_list_close(ctx);
	if (r == 0)
		r = stat_flush(rb, b, cb, arg);
	for (size_t i = 0; i < b->n; i++)
		free(b->names[i]);
	free(b);
	return r;
}

static int rados_remove_obj(struct lb_backend *be, const char *name)
{
	struct rados_backend *rb = R(be);
	if (local_name(name)) {
		int r = rb->cache->ops->remove(rb->cache, name);
		if (r == 0)
			index_changed(rb, name);
		return r;
	}
	int r = owner_ok(rb, name);
	if (r < 0)
		return r;
	r = dl_rados_remove(rb->io, name);
	uint64_t size;
	if (r == -ETIMEDOUT && settle(rb, name, &size) == -ENOENT)
		r = 0;
	if (r < 0 && r != -ENOENT)
		failed(rb, "remove", name, r);
	return r;
}

static int rados_append_obj(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	struct rados_backend *rb = R(be);
	if (local_name(name))
		return rb->cache->ops->append(rb->cache, name, data, len);
	int r = owner_ok(rb, name);
	if (r == 0 && (r = dl_rados_append(rb->io, name, data, len)) < 0) {
		uint64_t size;
		if (r == -ETIMEDOUT)
			settle(rb, name, &size); /* a record log's reader takes whole records only */
		failed(rb, "append to", name, r);
	}
	return r;
}

static int rados_truncate(struct lb_backend *be, const char *name, uint64_t size)
{
	struct rados_backend *rb = R(be);
	if (local_name(name))
		return rb->cache->ops->truncate(rb->cache, name, size);
	int r = owner_ok(rb, name);
	if (r == 0 && (r = dl_rados_trunc(rb->io, name, size)) < 0) {
		uint64_t now;
		if (r == -ETIMEDOUT && settle(rb, name, &now) == 0 && now == size)
			r = 0;
		else
			failed(rb, "truncate", name, r);
	}
	return r;
}

static int rados_replace(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	struct rados_backend *rb = R(be);
	if (local_name(name))
		return rb->cache->ops->replace(rb->cache, name, data, len);
	if (len > MAX_OBJECT) {
		lb_set_error("cannot write %s in pool %s: objects are limited to %u MiB", name, rb->where,
			     MAX_OBJECT >> 20);
		return -EFBIG;
	}
	int r = owner_ok(rb, name);
	if (r == 0 && (r = dl_rados_write_full(rb->io, name, len ? data : "", len)) < 0) {
		uint64_t size;
		if (r == -ETIMEDOUT && settle(rb, name, &size) == 0 && size == len && holds(rb, name, data, len))
			r = 0;
		else
			failed(rb, "write", name, r);
	}
	return r;
}

/* A monitor command's JSON answer, or NULL. */
static char *mon_json(struct rados_backend *rb, const char *cmd)
{
	const char *cmds[1] = { cmd };
	char *out = NULL, *st = NULL;
	size_t outlen = 0, stlen = 0;
	int r = dl_rados_mon_command(rb->cluster, cmds, 1, "", 0, &out, &outlen, &st, &stlen);
	dl_rados_buffer_free(st);
	if (r < 0 || !out) {
		dl_rados_buffer_free(out);
		return NULL;
	}
	char *copy = strndup(out, outlen);
	dl_rados_buffer_free(out);
	return copy;
}

/* The unsigned number after "key": in a flat JSON object; 0 when absent. */
static uint64_t json_u64(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = json ? strstr(json, pat) : NULL;
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* The pool's replication and quota, for space(); best effort (a user with
 * "mon 'allow r'" may ask). */
static void pool_facts(struct rados_backend *rb)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "{\"prefix\":\"osd pool get\",\"pool\":\"%s\",\"var\":\"size\",\"format\":\"json\"}",
		 rb->pool);
	char *j = mon_json(rb, cmd);
	uint64_t n = json_u64(j, "size");
	rb->replicas = n >= 1 && n <= 16 ? (unsigned)n : 1;
	free(j);
	snprintf(cmd, sizeof(cmd), "{\"prefix\":\"osd pool get-quota\",\"pool\":\"%s\",\"format\":\"json\"}", rb->pool);
	j = mon_json(rb, cmd);
	rb->quota = json_u64(j, "quota_max_bytes");
	free(j);
}

/* The cluster's free bytes, divided among the pool's replicas and capped
 * by its quota.  A backup asks before each blob when a reserve is set, so
 * the answer is kept for SPACE_NS.  The statistics come from ceph-mgr; a
 * cluster without one reports a size of 0, which means "unknown". */
#define SPACE_NS (5 * 1000000000LL)

static int rados_space(struct lb_backend *be, uint64_t *free_bytes)
{
	struct rados_backend *rb = R(be);
	int64_t now = lb_now_ns();
	pthread_mutex_lock(&rb->mu);
	if (rb->space_at && now - rb->space_at < SPACE_NS) {
		int r = rb->space_r;
		*free_bytes = rb->space;
		pthread_mutex_unlock(&rb->mu);
		return r;
	}
	pthread_mutex_unlock(&rb->mu);
	struct rados_cluster_stat_t cs;
	int r = dl_rados_cluster_stat(rb->cluster, &cs);
	uint64_t avail = 0;
	if (r == 0 && cs.kb == 0)
		r = -ENOTSUP;
	if (r == 0) {
		avail = cs.kb_avail * 1024 / rb->replicas;
		struct rados_pool_stat_t ps;
		if (rb->quota && dl_rados_ioctx_pool_stat(rb->io, &ps) == 0)
			avail = LB_MIN(avail, ps.num_bytes < rb->quota ? rb->quota - ps.num_bytes : 0);
	}
	pthread_mutex_lock(&rb->mu);
	rb->space_at = now;
	rb->space_r = r;
	rb->space = avail;
	pthread_mutex_unlock(&rb->mu);
	*free_bytes = avail;
	return r;
}

/* ---- the owner lock ------------------------------------------------------- */

/* A process' start time in clock ticks since boot (field 22 of
 * /proc/PID/stat), which tells a live pid from a reused one; 0 when there
 * is no such process or it is a zombie. */
static unsigned long long proc_start(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* after ")": state is field 3 (a zombie is dead already), start
	 * time field 22 */
	if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
		return 0;
	int field = 2;
	for (; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

/* The first line of a small file, spaces and slashes made '_'; "?" when
 * it cannot be read. */
static void first_line(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f || !fgets(out, (int)len, f))
		snprintf(out, len, "?");
	if (f)
		fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

static void token_clean(char *p)
{
	for (; *p; p++)
		if (*p == ' ' || *p == '/')
			*p = '_';
}

/* Where this process runs: host name, kernel boot and PID namespace.  A
 * holder whose cookie names the same three ran in this very system, so its
 * pid can be looked up in our /proc; a container sharing the host name, or
 * a cloned VM, differs in one of the other two. */
static void whereami(char *out, size_t len)
{
	char host[64], boot[64], ns[64];
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "?");
	host[sizeof(host) - 1] = '\0';
	first_line("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
	ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	ns[n > 0 ? n : 0] = '\0';
	if (n <= 0)
		snprintf(ns, sizeof(ns), "?");
	token_clean(host);
	token_clean(boot);
	token_clean(ns);
	snprintf(out, len, "%s boot %s pidns %s", host, boot, ns);
}

/* A holder in this system whose process is gone (or is another process
 * under a reused pid) can be broken without waiting for the lock to expire. */
static int holder_dead(const char *cookie)
{
	char host[64], boot[64], ns[64], mine[256], theirs[256];
	long pid;
	unsigned long long start;
	if (sscanf(cookie, "%63s boot %63s pidns %63s pid %ld start %llu", host, boot, ns, &pid, &start) != 5 ||
	    pid <= 0 || !strcmp(boot, "?") || !strcmp(ns, "?"))
		return 0;
	whereami(mine, sizeof(mine));
	snprintf(theirs, sizeof(theirs), "%s boot %s pidns %s", host, boot, ns);
	if (strcmp(theirs, mine) != 0)
		return 0;
	unsigned long long now = proc_start(pid);
	return now == 0 || now != start;
}

static int lock_once(struct rados_backend *rb, uint8_t flags)
{
	struct timeval tv = { .tv_sec = (time_t)(rb->lease_ns / 1000000000LL) };
	return dl_rados_lock_exclusive(rb->io, LOCK_OBJECT, LOCK_NAME, rb->cookie, "lumbungd", &tv, flags);
}

/* After a lapse the lock is ours again, but another appliance may have held
 * it meanwhile.  One that takes the pool over rebuilds its index and writes
 * a new index-owner, and this process writes one at each change of its
 * index; so the pool's marker is one this process wrote exactly when nobody
 * else wrote the pool meanwhile.  1: ours, 0: not, < 0: no answer. */
static int still_ours(struct rados_backend *rb)
{
	char buf[64];
	int n = dl_rados_read(rb->io, POOL_MARKER, buf, sizeof(buf) - 1, 0);
	if (n < 0 && n != -ENOENT)
		return n;
	buf[n > 0 ? n : 0] = '\0';
	pthread_mutex_lock(&rb->mu);
	int ours = n == -ENOENT ? !*rb->token && !*rb->token_pending
				: (*rb->token && !strcmp(buf, rb->token)) ||
					  (*rb->token_pending && !strcmp(buf, rb->token_pending));
	pthread_mutex_unlock(&rb->mu);
	return ours;
}

/* One round of the renewal thread: settle doubts, renew the lease, or take
 * the lock back after a lapse. */
static void renew_once(struct rados_backend *rb, int lost)
{
	settle_pending(rb);
	int64_t asked = lb_mono_ns();
	int r = lost ? -ENOENT : lock_once(rb, LIBRADOS_LOCK_FLAG_MUST_RENEW);
	int ours = 1;
	if (r == -ENOENT) { /* lapsed: expired on the OSD, or broken */
		pthread_mutex_lock(&rb->mu);
		if (!rb->lapse_told) {
			rb->lapse_told = 1;
			lb_notice(1, "pool %s: the store's lock lapsed; writes stop until it is held again", rb->where);
		}
		pthread_mutex_unlock(&rb->mu);
		asked = lb_mono_ns();
		r = lock_once(rb, 0);
		if (r == -EEXIST) /* taken back in a round whose check had no answer */
			r = lock_once(rb, LIBRADOS_LOCK_FLAG_MUST_RENEW);
		ours = r == 0 ? still_ours(rb) : 0;
	}
	pthread_mutex_lock(&rb->mu);
	if (r == 0 && ours == 1) {
		rb->lock_until_ns = asked + rb->lease_ns;
		if (rb->lost || rb->lapse_told)
			lb_notice(0, "pool %s: the store's lock is held again and nobody wrote meanwhile; writes "
				     "resume",
				  rb->where);
		rb->lost = 0;
		rb->lapse_told = 0;
	} else if (r == 0 && ours == 0) {
		rb->taken_over = 1;
	} else if (r == 0 || r == -ENOENT || r == -EBUSY) {
		rb->lost = 1;
	}
	if ((rb->lost || lb_mono_ns() >= rb->lock_until_ns) && !rb->lapse_told && !rb->taken_over) {
		rb->lapse_told = 1;
		lb_notice(1, "pool %s: the store's lock lapsed (%s); writes stop until it is held again",
			  rb->where, r == -EBUSY ? "another client holds it" : r < 0 ? strerror(-r) : "expired");
	}
	int taken = rb->taken_over;
	pthread_mutex_unlock(&rb->mu);
	if (taken) {
		lb_notice(1, "pool %s: another appliance wrote the store while this one's lock had lapsed; this "
			     "one writes nothing more until lumbungd restarts and rebuilds its index",
			  rb->where);
		dl_rados_unlock(rb->io, LOCK_OBJECT, LOCK_NAME, rb->cookie);
	}
}

static void *renew_main(void *arg)
{
	struct rados_backend *rb = arg;
	pthread_mutex_lock(&rb->mu);
	while (!rb->stopping && !rb->taken_over) {
		int64_t wait = rb->lost || rb->nunsettled || lb_mono_ns() + rb->timeout_ns >= rb->lock_until_ns
				       ? 1000000000LL
				       : rb->lease_ns / 6;
		wait_mono(&rb->cv, &rb->mu, wait);
		if (rb->stopping)
			break;
		int lost = rb->lost;
		pthread_mutex_unlock(&rb->mu);
		renew_once(rb, lost);
		pthread_mutex_lock(&rb->mu);
		rb->round++;
		pthread_cond_broadcast(&rb->rounds);
	}
	rb->round++;
	pthread_cond_broadcast(&rb->rounds);
	pthread_mutex_unlock(&rb->mu);
	return NULL;
}

static int holders(struct rados_backend *rb, char *clients, size_t clen, char *cookies, size_t cklen)
{
	int excl;
	char tag[64], addrs[512];
	size_t tlen = sizeof(tag), alen = sizeof(addrs);
	return (int)dl_rados_list_lockers(rb->io, LOCK_OBJECT, LOCK_NAME, &excl, tag, &tlen, clients, &clen, cookies,
				       &cklen, addrs, &alen);
}

static int rados_lock(struct lb_backend *be)
{
	struct rados_backend *rb = R(be);
	int r = rb->cache->ops->lock(rb->cache);
	if (r < 0)
		return r;
	char me[200];
	whereami(me, sizeof(me));
	snprintf(rb->cookie, sizeof(rb->cookie), "%s pid %ld start %llu", me, (long)getpid(),
		 proc_start((long)getpid()));
	int64_t asked = lb_mono_ns();
	r = lock_once(rb, 0);
	if (r == -EBUSY || r == -EEXIST) {
		char clients[512] = "", cookies[512] = "";
		if (holders(rb, clients, sizeof(clients), cookies, sizeof(cookies)) == 1 && holder_dead(cookies) &&
		    dl_rados_break_lock(rb->io, LOCK_OBJECT, LOCK_NAME, clients, cookies) == 0) {
			asked = lb_mono_ns();
			r = lock_once(rb, 0);
		}
		if (r == -EBUSY || r == -EEXIST) {
			lb_set_error("store pool %s in use by %s (%s); a holder that died frees it within %lld s",
				     rb->where, *cookies ? cookies : "another client", *clients ? clients : "?",
				     (long long)(rb->lease_ns / 1000000000LL));
			return -EBUSY;
		}
	}
	if (r < 0)
		return failed(rb, "lock", LOCK_OBJECT, r);
	rb->lock_until_ns = asked + rb->lease_ns;
	rb->locked = 1;
	r = pthread_create(&rb->renewer, NULL, renew_main, rb);
	if (r != 0) {
		dl_rados_unlock(rb->io, LOCK_OBJECT, LOCK_NAME, rb->cookie);
		rb->locked = 0;
		return -r;
	}
	return 0;
}

static int rados_cleanup(struct lb_backend *be)
{
	/* Objects in the pool are written whole or not at all. */
	return R(be)->cache->ops->cleanup(R(be)->cache);
}


static int rados_index_cached(struct lb_backend *be)
{
	struct rados_backend *rb = R(be);
	uint8_t *a = NULL, *b = NULL;
	size_t al, bl;
	int r = lb_backend_read_all(rb->cache, MARKER, 256, &a, &al);
	if (r == 0)
		r = lb_backend_read_all(be, POOL_MARKER, 256, &b, &bl);
	int same = r == 0 && al == bl && al > 0 && al < sizeof(rb->token) && memcmp(a, b, al) == 0;
	if (same) {
		pthread_mutex_lock(&rb->mu);
		memcpy(rb->token, b, bl);
		rb->token[bl] = '\0';
		pthread_mutex_unlock(&rb->mu);
	}
	free(a);
	free(b);
	if (r < 0 && r != -ENOENT)
		return r;
	return same;
}

static int rados_index_rebuilt(struct lb_backend *be) { return new_generation(R(be)); }

static void rados_free(struct lb_backend *be)
{
	struct rados_backend *rb = R(be);
	if (rb->locked) {
		pthread_mutex_lock(&rb->mu);
		rb->stopping = 1;
		pthread_cond_signal(&rb->cv);
		pthread_mutex_unlock(&rb->mu);
		pthread_join(rb->renewer, NULL);
		dl_rados_unlock(rb->io, LOCK_OBJECT, LOCK_NAME, rb->cookie);
	}
	if (rb->have_io)
		dl_rados_ioctx_destroy(rb->io);
	if (rb->connected)
		dl_rados_shutdown(rb->cluster);
	lb_backend_free(rb->cache);
	for (size_t i = 0; i < rb->nunsettled; i++)
		free(rb->unsettled[i]);
	free(rb->unsettled);
	pthread_mutex_destroy(&rb->mu);
	pthread_cond_destroy(&rb->cv);
	pthread_cond_destroy(&rb->rounds);
	free(be->location);
	free(rb);
}

static const struct lb_backend_ops rados_ops = {
	.kind = "rados",
	.put_begin = rados_put_begin,
	.put_write = rados_put_write,
	.put_commit = rados_put_commit,
	.put_abort = rados_put_abort,
	.get = rados_get,
	.stat = rados_stat_obj,
	.list = rados_list,
	.remove = rados_remove_obj,
	.append = rados_append_obj,
	.truncate = rados_truncate,
	.replace = rados_replace,
	.space = rados_space,
	.lock = rados_lock,
	.cleanup = rados_cleanup,
	.index_cached = rados_index_cached,
	.index_rebuilt = rados_index_rebuilt,
	.free = rados_free,
};

static int rados_open(const struct lb_backend_conf *c, int create, struct lb_backend **out)
{
	if (!c->rados_pool || !*c->rados_pool || strlen(c->rados_pool) >= 128) {
		lb_set_error("the rados backend needs rados_pool");
		return -EINVAL;
	}
	pthread_once(&dl_once, dl_load);
	if (dl_error[0]) {
		lb_set_error("pool %s: %s", c->rados_pool, dl_error);
		return -ELIBACC;
	}
	struct rados_backend *rb = calloc(1, sizeof(*rb));
	if (!rb)
		return -ENOMEM;
	rb->be.ops = &rados_ops;
	rb->replicas = 1;
	pthread_mutex_init(&rb->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rb->cv, &ca);
	pthread_cond_init(&rb->rounds, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(rb->pool, sizeof(rb->pool), "%s", c->rados_pool);
	snprintf(rb->where, sizeof(rb->where), "%s%s%s", c->rados_pool,
		 c->rados_namespace && *c->rados_namespace ? "/" : "", c->rados_namespace ? c->rados_namespace : "");
	unsigned timeout = c->rados_timeout ? c->rados_timeout : 30;
	rb->timeout_ns = (int64_t)timeout * 1000000000LL;
	rb->lease_ns = LB_MAX(3 * rb->timeout_ns, (int64_t)MIN_LEASE_S * 1000000000LL);
	const char *user = c->rados_user && *c->rados_user ? c->rados_user : "admin";
	const char *conf = c->rados_conf && *c->rados_conf ? c->rados_conf : "/etc/ceph/ceph.conf";
	char loc[512];
	snprintf(loc, sizeof(loc), "rados:%s%s%s", c->rados_pool, c->rados_namespace && *c->rados_namespace ? "/" : "",
		 c->rados_namespace ? c->rados_namespace : "");
	rb->be.location = strdup(loc);
	int r = rb->be.location ? 0 : -ENOMEM;
	if (r == 0)
		r = lb_backend_local_open(c->path, 1, &rb->cache); /* the cache is always ours to make */
	if (r < 0) {
		rados_free(&rb->be);
		return r;
	}
	char name[160], secs[32];
	snprintf(name, sizeof(name), "client.%s", user);
	snprintf(secs, sizeof(secs), "%u", timeout);
	r = dl_rados_create2(&rb->cluster, "ceph", name, 0);
	if (r < 0) {
		lb_set_error("cannot set up a Ceph client %s: %s", name, strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	rb->connected = 1; /* dl_rados_shutdown() also frees an unconnected handle */
	r = dl_rados_conf_read_file(rb->cluster, conf);
	if (r < 0) {
		lb_set_error("cannot read the Ceph configuration %s: %s", conf, strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	/* Ceph waits forever by default; a sick cluster must fail the job. */
	static const char *timeouts[] = { "rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout" };
	for (size_t i = 0; i < LB_ARRAY_SIZE(timeouts) && r == 0; i++)
		if ((r = dl_rados_conf_set(rb->cluster, timeouts[i], secs)) < 0)
			lb_set_error("cannot set the Ceph option %s to %s: %s", timeouts[i], secs, strerror(-r));
	if (r < 0) {
		rados_free(&rb->be);
		return r;
	}
	r = dl_rados_connect(rb->cluster);
	if (r < 0) {
		lb_set_error("cannot connect to Ceph as %s with %s: %s", name, conf, strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	r = dl_rados_ioctx_create(rb->cluster, c->rados_pool, &rb->io);
	if (r < 0) {
		lb_set_error("cannot open Ceph pool %s as %s: %s", c->rados_pool, name,
			     r == -ENOENT ? "no such pool" : strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	rb->have_io = 1;
	if (c->rados_namespace && *c->rados_namespace)
		dl_rados_ioctx_set_namespace(rb->io, c->rados_namespace);
	pool_facts(rb);
	*out = &rb->be;
	return 0;
}

void lb_backend_rados_enable(void) { lb_backend_set_rados(rados_open); }
