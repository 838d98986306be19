/* memback.c - an in-memory struct lb_backend for the fuzz targets. */
#include "fuzz.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mobj {
	char *name;
	uint8_t *data;
	size_t len;
};

struct memback {
	struct lb_backend be; /* first: the ops receive &be */
	struct mobj *o;
	size_t n;
};

static struct mobj *find(struct lb_backend *be, const char *name)
{
	struct memback *m = (struct memback *)be;
	for (size_t i = 0; i < m->n; i++)
		if (m->o[i].name && !strcmp(m->o[i].name, name))
			return &m->o[i];
	return NULL;
}

static int mb_put_begin(struct lb_backend *be, const char *name, struct lb_obj_writer **w)
{
	(void)be;
	(void)name;
	*w = NULL;
	return -EROFS;
}
static int mb_put_write(struct lb_obj_writer *w, const void *data, size_t len) { return -EROFS; }
static int mb_put_commit(struct lb_obj_writer *w) { return -EROFS; }
static void mb_put_abort(struct lb_obj_writer *w) { }

static int mb_get(struct lb_backend *be, const char *name, uint64_t off, void *buf, size_t len)
{
	struct mobj *o = find(be, name);
	if (!o)
		return -ENOENT;
	if (off > o->len || len > o->len - off)
		return -EBADMSG;
	if (len)
		memcpy(buf, o->data + off, len);
	return 0;
}

static int mb_stat(struct lb_backend *be, const char *name, uint64_t *size)
{
	struct mobj *o = find(be, name);
	if (!o)
		return -ENOENT;
	*size = o->len;
	return 0;
}

static int mb_list(struct lb_backend *be, const char *prefix, lb_list_cb cb, void *arg)
{
	struct memback *m = (struct memback *)be;
	size_t pl = strlen(prefix);
	for (size_t i = 0; i < m->n; i++) {
		const char *nm = m->o[i].name;
		if (nm && !strncmp(nm, prefix, pl) && nm[pl] == '/') {
			int r = cb(arg, nm, m->o[i].len);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int mb_remove(struct lb_backend *be, const char *name)
{
	struct mobj *o = find(be, name);
	if (!o)
		return -ENOENT;
	free(o->name);
	free(o->data);
	o->name = NULL;
	o->data = NULL;
	o->len = 0;
	return 0;
}

static int mb_append(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	struct mobj *o = find(be, name);
	if (!o)
		return memback_add(be, name, data, len);
	uint8_t *nd = realloc(o->data, o->len + len + 1);
	if (!nd)
		return -ENOMEM;
	memcpy(nd + o->len, data, len);
	o->data = nd;
	o->len += len;
	return 0;
}

static int mb_truncate(struct lb_backend *be, const char *name, uint64_t size)
{
	struct mobj *o = find(be, name);
	if (!o)
		return -ENOENT;
	if (size < o->len)
		o->len = (size_t)size;
	return 0;
}

static int mb_replace(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	if (find(be, name))
		mb_remove(be, name);
	return memback_add(be, name, data, len);
}

static int mb_space(struct lb_backend *be, uint64_t *free_bytes) { return -ENOTSUP; }
static int mb_lock(struct lb_backend *be) { return 0; }
static int mb_cleanup(struct lb_backend *be) { return 0; }

static void mb_free(struct lb_backend *be)
{
	struct memback *m = (struct memback *)be;
	for (size_t i = 0; i < m->n; i++) {
		free(m->o[i].name);
		free(m->o[i].data);
	}
	free(m->o);
	free(m->be.location);
	free(m);
}

static const struct lb_backend_ops memback_ops = {
	.kind = "memory",
	.put_begin = mb_put_begin,
	.put_write = mb_put_write,
	.put_commit = mb_put_commit,
	.put_abort = mb_put_abort,
	.get = mb_get,
	.stat = mb_stat,
	.list = mb_list,
	.remove = mb_remove,
	.append = mb_append,
	.truncate = mb_truncate,
	.replace = mb_replace,
	.space = mb_space,
	.lock = mb_lock,
	.cleanup = mb_cleanup,
	.free = mb_free,
};

struct lb_backend *memback_new(void)
{
	struct memback *m = calloc(1, sizeof(*m));
	if (!m)
		abort();
	m->be.ops = &memback_ops;
	m->be.location = strdup("memory");
	return &m->be;
}

int memback_add(struct lb_backend *be, const char *name, const void *data, size_t len)
{
	struct memback *m = (struct memback *)be;
	struct mobj *no = realloc(m->o, (m->n + 1) * sizeof(*no));
	if (!no)
		abort();
	m->o = no;
	struct mobj *o = &m->o[m->n++];
	o->name = strdup(name);
	o->data = malloc(len ? len : 1);
	if (!o->name || !o->data)
		abort();
	if (len)
		memcpy(o->data, data, len);
	o->len = len;
	return 0;
}
