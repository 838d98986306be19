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
 * Ownership is a RADOS exclusive lock on the object "lock", taken for
 * LOCK_SECS and renewed by a thread; its cookie names the holder's host,
 * pid and process start time, so a holder that died on this host is broken
 * at once and one on a host that died expires.  A process that cannot
 * renew in time stops writing.  Every monitor and OSD operation has a
 * timeout, so a sick cluster fails a job instead of hanging it. */
#include "config.h"

#include "backend.h"
#include "util.h"

#include <pthread.h>
#include <rados/librados.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* osd_max_write_size is 90 MiB by default; one object is written by one
 * operation, so it stays under that. */
#define MAX_OBJECT (80u << 20)
#define LOCK_NAME "lumbung"
#define LOCK_OBJECT "lock"
#define LOCK_SECS 30
#define STAT_BATCH 64
#define READ_PIECE (16u << 20)

struct rados_backend {
	struct lb_backend be;
	rados_t cluster;
	rados_ioctx_t io;
	int connected, have_io;
	struct lb_backend *cache; /* index runs and the cache marker */
	char pool[128];
	char cookie[128];
	unsigned replicas;
	uint64_t quota; /* the pool's max_bytes; 0: none */
	int64_t space_at; /* space(): when last asked, and the answer */
	int space_r;
	uint64_t space;
	/* the lock and its renewal */
	pthread_t renewer;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int locked, stopping, lost;
	int64_t lock_until_ns;
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

/* Names kept on local disk. */
static int local_name(const char *name)
{
	return !strncmp(name, "index/", 6) || !strcmp(name, "index") || !strncmp(name, "cache/", 6) ||
	       !strcmp(name, "cache");
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

/* Writes stop once the lock may have passed to another appliance. */
static int owner_ok(struct rados_backend *rb, const char *name)
{
	pthread_mutex_lock(&rb->mu);
	int lost = rb->locked && (rb->lost || lb_now_ns() >= rb->lock_until_ns);
	pthread_mutex_unlock(&rb->mu);
	if (lost) {
		lb_set_error("cannot write %s in pool %s: the store's lock could not be renewed in time", name,
			     rb->pool);
		return -ENOLCK;
	}
	return 0;
}

static int failed(struct rados_backend *rb, const char *what, const char *name, int r)
{
	lb_set_error("cannot %s %s in pool %s: %s", what, name, rb->pool, strerror(-r));
	return r;
}

static int rados_put_begin(struct lb_backend *be, const char *name, struct lb_obj_writer **out)
{
	struct rados_backend *rb = R(be);
	if (!name_ok(name))
		return -EINVAL;
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
		lb_set_error("cannot write %s in pool %s: objects are limited to %u MiB", w->name, w->rb->pool,
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
		free(w);
		return r;
	}
	r = w->err;
	if (r == 0)
		r = owner_ok(rb, w->name);
	if (r == 0) {
		rados_write_op_t op = rados_create_write_op();
		if (!op) {
			r = -ENOMEM;
		} else {
			rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
			rados_write_op_write_full(op, w->len ? (const char *)w->buf : "", w->len);
			r = rados_write_op_operate(op, rb->io, w->name, NULL, 0);
			rados_release_write_op(op);
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
		int n = rados_read(rb->io, name, (char *)p, piece, off);
		if (n == -ENOENT)
			return -ENOENT;
		if (n < 0)
			return failed(rb, "read", name, n);
		if ((size_t)n < piece)
			return -EBADMSG;
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
	int r = rados_stat(rb->io, name, size, &mtime);
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
		r = rados_aio_create_completion2(NULL, NULL, &b->c[started]);
		if (r < 0)
			break;
		r = rados_aio_stat(rb->io, b->names[started], b->c[started], &b->size[started], &b->mtime[started]);
		if (r < 0) {
			rados_aio_release(b->c[started]);
			break;
		}
	}
	for (size_t i = 0; i < started; i++) {
		rados_aio_wait_for_complete(b->c[i]);
		int ri = rados_aio_get_return_value(b->c[i]);
		rados_aio_release(b->c[i]);
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
	int r = rados_nobjects_list_open(rb->io, &ctx);
	if (r < 0)
		return failed(rb, "list", prefix, r);
	size_t plen = strlen(prefix);
	struct statbatch *b = calloc(1, sizeof(*b));
	if (!b) {
		rados_nobjects_list_close(ctx);
		return -ENOMEM;
	}
	for (;;) {
		const char *entry;
		r = rados_nobjects_list_next(ctx, &entry, NULL, NULL);
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
	rados_nobjects_list_close(ctx);
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
	if (local_name(name))
		return rb->cache->ops->remove(rb->cache, name);
	int r = owner_ok(rb, name);
	if (r < 0)
		return r;
	r = rados_remove(rb->io, name);
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
	if (r == 0 && (r = rados_append(rb->io, name, data, len)) < 0)
		failed(rb, "append to", name, r);
	return r;
}

static int rados_truncate(struct lb_backend *be, const char *name, uint64_t size)
{
	struct rados_backend *rb = R(be);
	if (local_name(name))
		return rb->cache->ops->truncate(rb->cache, name, size);
	int r = owner_ok(rb, name);
	if (r == 0 && (r = rados_trunc(rb->io, name, size)) < 0)
		failed(rb, "truncate", name, r);
	return r;
}

static int rados_replace(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	struct rados_backend *rb = R(be);
	if (local_name(name))
		return rb->cache->ops->replace(rb->cache, name, data, len);
	if (len > MAX_OBJECT)
		return -EFBIG;
	int r = owner_ok(rb, name);
	if (r == 0 && (r = rados_write_full(rb->io, name, len ? data : "", len)) < 0)
		failed(rb, "write", name, r);
	return r;
}

/* A monitor command's JSON answer, or NULL. */
static char *mon_json(struct rados_backend *rb, const char *cmd)
{
	const char *cmds[1] = { cmd };
	char *out = NULL, *st = NULL;
	size_t outlen = 0, stlen = 0;
	int r = rados_mon_command(rb->cluster, cmds, 1, "", 0, &out, &outlen, &st, &stlen);
	rados_buffer_free(st);
	if (r < 0 || !out) {
		rados_buffer_free(out);
		return NULL;
	}
	char *copy = strndup(out, outlen);
	rados_buffer_free(out);
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
	int r = rados_cluster_stat(rb->cluster, &cs);
	uint64_t avail = 0;
	if (r == 0 && cs.kb == 0)
		r = -ENOTSUP;
	if (r == 0) {
		avail = cs.kb_avail * 1024 / rb->replicas;
		struct rados_pool_stat_t ps;
		if (rb->quota && rados_ioctx_pool_stat(rb->io, &ps) == 0)
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

static void host_name(char *out, size_t len)
{
	if (gethostname(out, len) < 0)
		snprintf(out, len, "?");
	out[len - 1] = '\0';
	for (char *p = out; *p; p++)
		if (*p == ' ' || *p == '/')
			*p = '_';
}

/* A holder on this host whose process is gone (or is another process under
 * a reused pid) can be broken without waiting for the lock to expire. */
static int holder_dead(const char *cookie)
{
	char host[128], mine[128];
	long pid;
	unsigned long long start;
	if (sscanf(cookie, "%127[^ ] pid %ld start %llu", host, &pid, &start) != 3)
		return 0;
	host_name(mine, sizeof(mine));
	if (strcmp(host, mine) != 0 || pid <= 0)
		return 0;
	unsigned long long now = proc_start(pid);
	return now == 0 || now != start;
}

static int lock_once(struct rados_backend *rb, uint8_t flags)
{
	struct timeval tv = { .tv_sec = LOCK_SECS };
	return rados_lock_exclusive(rb->io, LOCK_OBJECT, LOCK_NAME, rb->cookie, "lumbungd", &tv, flags);
}

static void *renew_main(void *arg)
{
	struct rados_backend *rb = arg;
	pthread_mutex_lock(&rb->mu);
	while (!rb->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += LOCK_SECS / 3;
		pthread_cond_timedwait(&rb->cv, &rb->mu, &ts);
		if (rb->stopping)
			break;
		pthread_mutex_unlock(&rb->mu);
		int64_t asked = lb_now_ns();
		int r = lock_once(rb, LIBRADOS_LOCK_FLAG_MUST_RENEW);
		pthread_mutex_lock(&rb->mu);
		if (r == 0)
			rb->lock_until_ns = asked + (int64_t)LOCK_SECS * 1000000000LL;
		else if (r == -ENOENT || r == -EBUSY)
			rb->lost = 1; /* expired and taken, or broken */
	}
	pthread_mutex_unlock(&rb->mu);
	return NULL;
}

static int holders(struct rados_backend *rb, char *clients, size_t clen, char *cookies, size_t cklen)
{
	int excl;
	char tag[64], addrs[512];
	size_t tlen = sizeof(tag), alen = sizeof(addrs);
	return (int)rados_list_lockers(rb->io, LOCK_OBJECT, LOCK_NAME, &excl, tag, &tlen, clients, &clen, cookies,
				       &cklen, addrs, &alen);
}

static int rados_lock(struct lb_backend *be)
{
	struct rados_backend *rb = R(be);
	int r = rb->cache->ops->lock(rb->cache);
	if (r < 0)
		return r;
	char host[64];
	host_name(host, sizeof(host));
	snprintf(rb->cookie, sizeof(rb->cookie), "%s pid %ld start %llu", host, (long)getpid(),
		 proc_start((long)getpid()));
	int64_t asked = lb_now_ns();
	r = lock_once(rb, 0);
	if (r == -EBUSY || r == -EEXIST) {
		char clients[512] = "", cookies[512] = "";
		if (holders(rb, clients, sizeof(clients), cookies, sizeof(cookies)) == 1 && holder_dead(cookies) &&
		    rados_break_lock(rb->io, LOCK_OBJECT, LOCK_NAME, clients, cookies) == 0) {
			asked = lb_now_ns();
			r = lock_once(rb, 0);
		}
		if (r == -EBUSY || r == -EEXIST) {
			lb_set_error("store pool %s in use by %s (%s); a holder that died frees it within %d s",
				     rb->pool, *cookies ? cookies : "another client", *clients ? clients : "?",
				     LOCK_SECS);
			return -EBUSY;
		}
	}
	if (r < 0)
		return failed(rb, "lock", LOCK_OBJECT, r);
	rb->lock_until_ns = asked + (int64_t)LOCK_SECS * 1000000000LL;
	rb->locked = 1;
	r = pthread_create(&rb->renewer, NULL, renew_main, rb);
	if (r != 0) {
		rados_unlock(rb->io, LOCK_OBJECT, LOCK_NAME, rb->cookie);
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

/* The cache's index is the pool's when both hold the same marker: the
 * marker changes whenever an index is rebuilt, and each appliance rebuilds
 * on taking over a pool it did not write last. */
#define MARKER "cache/owner"
#define POOL_MARKER "index-owner"

static int rados_index_cached(struct lb_backend *be)
{
	struct rados_backend *rb = R(be);
	uint8_t *a = NULL, *b = NULL;
	size_t al, bl;
	int r = lb_backend_read_all(rb->cache, MARKER, 256, &a, &al);
	if (r == 0)
		r = lb_backend_read_all(be, POOL_MARKER, 256, &b, &bl);
	int same = r == 0 && al == bl && al > 0 && memcmp(a, b, al) == 0;
	free(a);
	free(b);
	if (r < 0 && r != -ENOENT)
		return r;
	return same;
}

static int rados_index_rebuilt(struct lb_backend *be)
{
	struct rados_backend *rb = R(be);
	uint8_t id[16];
	char hex[40];
	lb_random(id, sizeof(id));
	lb_hex(hex, id, sizeof(id));
	strcat(hex, "\n");
	/* The cache first: a crash between the two leaves them different,
	 * and the next start rebuilds again. */
	int r = rb->cache->ops->replace(rb->cache, MARKER, hex, strlen(hex));
	if (r == 0)
		r = rados_replace(be, POOL_MARKER, hex, strlen(hex));
	return r;
}

static void rados_free(struct lb_backend *be)
{
	struct rados_backend *rb = R(be);
	if (rb->locked) {
		pthread_mutex_lock(&rb->mu);
		rb->stopping = 1;
		pthread_cond_signal(&rb->cv);
		pthread_mutex_unlock(&rb->mu);
		pthread_join(rb->renewer, NULL);
		rados_unlock(rb->io, LOCK_OBJECT, LOCK_NAME, rb->cookie);
	}
	if (rb->have_io)
		rados_ioctx_destroy(rb->io);
	if (rb->connected)
		rados_shutdown(rb->cluster);
	lb_backend_free(rb->cache);
	pthread_mutex_destroy(&rb->mu);
	pthread_cond_destroy(&rb->cv);
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
	struct rados_backend *rb = calloc(1, sizeof(*rb));
	if (!rb)
		return -ENOMEM;
	rb->be.ops = &rados_ops;
	rb->replicas = 1;
	pthread_mutex_init(&rb->mu, NULL);
	pthread_cond_init(&rb->cv, NULL);
	snprintf(rb->pool, sizeof(rb->pool), "%s", c->rados_pool);
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
	snprintf(secs, sizeof(secs), "%u", c->rados_timeout ? c->rados_timeout : 30);
	r = rados_create2(&rb->cluster, "ceph", name, 0);
	if (r < 0) {
		lb_set_error("cannot set up a Ceph client %s: %s", name, strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	rb->connected = 1; /* rados_shutdown() also frees an unconnected handle */
	r = rados_conf_read_file(rb->cluster, conf);
	if (r < 0) {
		lb_set_error("cannot read the Ceph configuration %s: %s", conf, strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	/* Ceph waits forever by default; a sick cluster must fail the job. */
	static const char *timeouts[] = { "rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout" };
	for (size_t i = 0; i < LB_ARRAY_SIZE(timeouts); i++)
		rados_conf_set(rb->cluster, timeouts[i], secs);
	r = rados_connect(rb->cluster);
	if (r < 0) {
		lb_set_error("cannot connect to Ceph as %s with %s: %s", name, conf, strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	r = rados_ioctx_create(rb->cluster, c->rados_pool, &rb->io);
	if (r < 0) {
		lb_set_error("cannot open Ceph pool %s as %s: %s", c->rados_pool, name,
			     r == -ENOENT ? "no such pool" : strerror(-r));
		rados_free(&rb->be);
		return r;
	}
	rb->have_io = 1;
	if (c->rados_namespace && *c->rados_namespace)
		rados_ioctx_set_namespace(rb->io, c->rados_namespace);
	pool_facts(rb);
	*out = &rb->be;
	return 0;
}

void lb_backend_rados_enable(void) { lb_backend_set_rados(rados_open); }
