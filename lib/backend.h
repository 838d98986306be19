/* backend.h - the seam between the engine and where its objects live.
 *
 * Everything the store keeps is a named object: immutable packs
 * ("packs/ab/<id>"), immutable index runs ("index/<seq>"), snapshot heads
 * ("snapshots/<tenant>/<id>") and a few small mutable objects ("config").
 * Names are '/'-separated, never absolute, never contain "..".  Nothing above
 * this interface assumes POSIX files: the local filesystem is one backend and
 * a Ceph RADOS backend plugs in behind the same operations.
 *
 * All functions return 0 (or a count) or a negative errno value. */
#ifndef LB_BACKEND_H
#define LB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct lb_backend;
struct lb_obj_writer;

/* Called by list() for every object under a prefix; a negative return stops
 * the walk and is returned by list(). */
typedef int (*lb_list_cb)(void *arg, const char *name, uint64_t size);

struct lb_backend_ops {
	const char *kind;
	/* Starts writing a new immutable object; nothing is visible under
	 * name until put_commit returns 0. */
	int (*put_begin)(struct lb_backend *be, const char *name, struct lb_obj_writer **w);
	int (*put_write)(struct lb_obj_writer *w, const void *data, size_t len);
	/* Makes the object durable and visible, then frees w (also on error).
	 * -EEXIST when an object of that name already exists. */
	int (*put_commit)(struct lb_obj_writer *w);
	/* Drops an uncommitted object and frees w. */
	void (*put_abort)(struct lb_obj_writer *w);
	/* Reads exactly len bytes at off; -EBADMSG when the object is shorter,
	 * -ENOENT when it does not exist. */
	int (*get)(struct lb_backend *be, const char *name, uint64_t off, void *buf, size_t len);
	int (*stat)(struct lb_backend *be, const char *name, uint64_t *size);
	/* Every object whose name starts with prefix + "/", in no set order. */
	int (*list)(struct lb_backend *be, const char *prefix, lb_list_cb cb, void *arg);
	int (*remove)(struct lb_backend *be, const char *name);
	/* Appends to an append-only object (created if missing) and makes
	 * the bytes durable before returning. */
	int (*append)(struct lb_backend *be, const char *name, const void *data, size_t len);
	/* Cuts an append-only object to size (a torn tail after a crash). */
	int (*truncate)(struct lb_backend *be, const char *name, uint64_t size);
	/* Atomically and durably replaces (or creates) a small object. */
	int (*replace)(struct lb_backend *be, const char *name, const void *data, size_t len);
	/* Bytes still free for the store (the filesystem's, for the local
	 * backend); -ENOTSUP where unknown. */
	int (*space)(struct lb_backend *be, uint64_t *free_bytes);
	/* Takes the store's exclusive owner lock for this process' lifetime.
	 * -EBUSY (with the holder in lb_error_detail()) when another has it. */
	int (*lock)(struct lb_backend *be);
	/* Removes leftovers of interrupted writers (only under the lock). */
	int (*cleanup)(struct lb_backend *be);
	/* For a backend that keeps the index on local disk apart from the
	 * packs (NULL otherwise): index_cached says whether that copy is the
	 * store's latest (1) or must be rebuilt from the packs (0), and
	 * index_rebuilt records that it was. */
	int (*index_cached)(struct lb_backend *be);
	int (*index_rebuilt)(struct lb_backend *be);
	void (*free)(struct lb_backend *be);
};

struct lb_backend {
	const struct lb_backend_ops *ops;
	char *location; /* for messages */
};

/* Where a store lives: lumbung.conf's [store] backend, path and rados_*. */
struct lb_backend_conf {
	const char *kind;            /* "local" (or NULL) or "rados" */
	const char *path;            /* local: the store; rados: its local cache */
	const char *rados_conf;      /* ceph.conf (NULL: /etc/ceph/ceph.conf) */
	const char *rados_pool;
	const char *rados_user;      /* the cephx name without "client." */
	const char *rados_namespace; /* NULL or "": the pool's default */
	unsigned rados_timeout;      /* seconds for any one Ceph operation */
};

/* Opens (create != 0: creates) the store's backend as c describes. */
int lb_backend_open(const struct lb_backend_conf *c, int create, struct lb_backend **out);

/* The RADOS backend lives apart (backend_rados.c, linked into lumbungd
 * only, so that the client tools do not load librados): a program that
 * wants it calls lb_backend_rados_enable() first.  Until then, opening a
 * rados store fails with -ENOTSUP. */
typedef int (*lb_backend_opener)(const struct lb_backend_conf *c, int create, struct lb_backend **out);
void lb_backend_set_rados(lb_backend_opener open);
void lb_backend_rados_enable(void);

/* Opens (create != 0: creates) a store directory on the local filesystem.
 * Refuses a directory that others can write.  Returns 0 and *out, or
 * -errno with a detail. */
int lb_backend_local_open(const char *path, int create, struct lb_backend **out);

/* Reads a whole small object (at most max bytes) into a new buffer with a
 * terminating NUL the caller may ignore; the caller frees *out. */
int lb_backend_read_all(struct lb_backend *be, const char *name, size_t max, uint8_t **out, size_t *outlen);

/* Writes a whole immutable object in one go. */
int lb_backend_put(struct lb_backend *be, const char *name, const void *data, size_t len);

void lb_backend_free(struct lb_backend *be);

#endif
