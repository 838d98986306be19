/* store.c - opening a store, the shared write path (pending chunks, pack
 * writers, flush), backups, reads and the snapshot catalog.  check lives in
 * check.c. */
#include "config.h"

#include "store.h"
#include "buf.h"
#include "cdc.h"
#include "codec.h"
#include "fsutil.h"
#include "index.h"
#include "pack.h"
#include "pool.h"
#include "store_internal.h"
#include "idset.h"
#include "usage.h"
#include "util.h"

#include <ini.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define PT_BUCKETS 65536u
/* Backups and reads hand chunks to the workers in batches of about this
 * many bytes, two at a time: one filled (or delivered) while the other is
 * worked on.  8 MiB made the peak of the bench's 1 GiB set 5-6 MiB higher
 * in a nightly backup and in a restore of everything, at the same speed
 * (bench/RESULTS.md). */
#define BATCH_TARGET (4u << 20)
#define MAX_PENDING_FILES 4096

/* The memory a backup's manifest may hold before it spills sorted runs to
 * a temporary file in the store's local directory: about 50,000 entries
 * (some 300 bytes each).  LUMBUNG_MANIFEST_BUDGET (bytes) overrides it for
 * tests. */
#define MANIFEST_BUDGET (16u << 20)

static size_t manifest_budget(void)
{
	const char *e = getenv("LUMBUNG_MANIFEST_BUDGET");
	if (e && *e)
		return (size_t)strtoull(e, NULL, 10);
	return MANIFEST_BUDGET;
}

/* Bytes of one backup batch buffer: a batch, plus room for the uncut tail
 * carried over and one write's worth. */
static size_t batch_cap(const struct lb_store *s)
{
	return BATCH_TARGET + 2 * (size_t)s->p.chunk_max;
}

void lb_store_params_default(struct lb_store_params *p)
{
	p->chunk_min = 256u << 10;
	p->chunk_avg = 1u << 20;
	p->chunk_max = 4u << 20;
	/* Level 1, as Proxmox Backup Server writes its chunks: on the bench's
	 * dumps 1.5x faster than level 3 for 1% more bytes (bench/RESULTS.md,
	 * "Level 1 for new chunks"). */
	p->zstd_level = 1;
	p->pack_size = 16u << 20;
}

/* ---- config object ------------------------------------------------------ */

struct cfg_parse {
	struct lb_store_params p;
	unsigned format;
	int seen_format;
	int err;
	char bad[128];
};

static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parse *c = user;
	unsigned long long v;
	char *end;
	if (strcmp(section, "store") != 0) {
		snprintf(c->bad, sizeof(c->bad), "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(name, "id") == 0 || strcmp(name, "created") == 0)
		return 1;
	if (strcmp(name, "compression") == 0) {
		int lvl;
		char tail;
		if (sscanf(value, "zstd:%d%c", &lvl, &tail) != 1 || lvl < 1 || lvl > 19) {
			snprintf(c->bad, sizeof(c->bad), "bad compression '%s'", value);
			return 0;
		}
		c->p.zstd_level = lvl;
		return 1;
	}
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno || *end || v > UINT32_MAX) {
		snprintf(c->bad, sizeof(c->bad), "bad value for %s", name);
		return 0;
	}
	if (strcmp(name, "format") == 0) {
		c->format = (unsigned)v;
		c->seen_format = 1;
	} else if (strcmp(name, "chunk_min") == 0) {
		c->p.chunk_min = (uint32_t)v;
	} else if (strcmp(name, "chunk_avg") == 0) {
		c->p.chunk_avg = (uint32_t)v;
	} else if (strcmp(name, "chunk_max") == 0) {
		c->p.chunk_max = (uint32_t)v;
	} else if (strcmp(name, "pack_size") == 0) {
		c->p.pack_size = (uint32_t)v;
	} else {
		snprintf(c->bad, sizeof(c->bad), "unknown key '%s'", name);
		return 0;
	}
	return 1;
}

static int read_config(struct lb_backend *be, struct lb_store_params *p)
{
	uint8_t *data;
	size_t len;
	int r = lb_backend_read_all(be, "config", 65536, &data, &len);
	if (r == -ENOENT) {
		lb_set_error("%s is not a lumbung store (no config)", be->location);
		return -ENOENT;
	}
	if (r < 0) {
		lb_set_error("cannot read %s/config: %s", be->location, strerror(-r));
		return r;
	}
	struct cfg_parse c = { 0 };
	memset(&c.p, 0, sizeof(c.p));
	int line = ini_parse_string((const char *)data, cfg_handler, &c);
	free(data);
	if (c.seen_format && c.format > LB_FORMAT_VERSION) {
		lb_set_error("store %s has format %u, newer than this lumbung supports (%d)",
			     be->location, c.format, LB_FORMAT_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (line != 0 || !c.seen_format || c.format < 1) {
		lb_set_error("store %s: config is damaged (line %d%s%s)", be->location, line,
			     c.bad[0] ? ": " : "", c.bad);
		return -EBADMSG;
	}
	struct lb_cdc cdc;
	if (lb_cdc_init(&cdc, c.p.chunk_min, c.p.chunk_avg, c.p.chunk_max) < 0 ||
	    c.p.zstd_level == 0 || c.p.pack_size < (1u << 20) || c.p.pack_size > (1u << 30)) {
		lb_set_error("store %s: config has invalid chunking or pack parameters", be->location);
		return -EBADMSG;
	}
	*p = c.p;
	return 0;
}

int lb_store_create(const char *path, const struct lb_store_params *p)
{
	struct lb_backend_conf where = { .path = path };
	return lb_store_create_at(&where, p);
}

int lb_store_create_at(const struct lb_backend_conf *where, const struct lb_store_params *p)
{
	struct lb_cdc cdc;
	if (lb_cdc_init(&cdc, p->chunk_min, p->chunk_avg, p->chunk_max) < 0 || p->zstd_level < 1 ||
	    p->zstd_level > 19 || p->pack_size < (1u << 20) || p->pack_size > (1u << 30)) {
		lb_set_error("invalid store parameters");
		return -EINVAL;
	}
	struct lb_backend *be;
	int r = lb_backend_open(where, 1, &be);
	if (r < 0)
		return r;
	if (strcmp(be->ops->kind, "local") != 0 && p->pack_size > (64u << 20)) {
		/* A pack is one object, written by one operation. */
		lb_set_error("store %s: pack_size above 64 MiB needs a local store", be->location);
		lb_backend_free(be);
		return -EINVAL;
	}
	r = be->ops->lock(be);
	uint64_t size;
	if (r == 0 && be->ops->stat(be, "config", &size) == 0) {
		lb_set_error("%s already holds a lumbung store", be->location);
		r = -EEXIST;
	}
	if (r == 0) {
		uint8_t id[16];
		char hex[33], text[512];
		lb_random(id, sizeof(id));
		lb_hex(hex, id, sizeof(id));
		snprintf(text, sizeof(text),
			 "# Lumbung store.  Written once at creation; do not edit.\n"
			 "[store]\nformat = %d\nid = %s\ncreated = %lld\n"
			 "chunk_min = %u\nchunk_avg = %u\nchunk_max = %u\n"
			 "compression = zstd:%d\npack_size = %u\n",
			 LB_FORMAT_VERSION, hex, (long long)(lb_now_ns() / 1000000000LL),
			 p->chunk_min, p->chunk_avg, p->chunk_max, p->zstd_level, p->pack_size);
		r = be->ops->replace(be, "config", text, strlen(text));
	}
	lb_backend_free(be);
	return r;
}

/* ---- pending chunks and pack writers ------------------------------------ */

enum { PN_RESERVED = 1, PN_APPENDED = 2 };

struct openpack {
	struct lb_pack_writer *w;
	int kind;
	int indexed;
	struct openpack *next;
};

struct pnode {
	struct lb_id id;
	int state;
	uint32_t stored; /* bytes after the blob header */
	struct openpack *op;
	struct pnode *next;
	unsigned nbases; /* a delta's bases, which a backup using it is charged */
	struct lb_id bases[LB_BLOB_MAX_BASES];
};

static struct pnode **bucket(struct lb_store *s, const struct lb_id *id)
{
	uint32_t h;
	memcpy(&h, id->b, sizeof(h));
	return &s->buckets[h & (PT_BUCKETS - 1)];
}

static struct pnode *pfind(struct lb_store *s, const struct lb_id *id)
{
	for (struct pnode *n = *bucket(s, id); n; n = n->next)
		if (lb_id_cmp(&n->id, id) == 0)
			return n;
	return NULL;
}

static void premove(struct lb_store *s, struct pnode *node)
{
	for (struct pnode **pp = bucket(s, &node->id); *pp; pp = &(*pp)->next) {
		if (*pp == node) {
			*pp = node->next;
			free(node);
			return;
		}
	}
}

/* Drops every pending node that lives in op (called with mu held). */
static void premove_pack(struct lb_store *s, struct openpack *op)
{
	for (size_t b = 0; b < PT_BUCKETS; b++) {
		struct pnode **pp = &s->buckets[b];
		while (*pp) {
			if ((*pp)->op == op) {
				struct pnode *dead = *pp;
				*pp = dead->next;
				free(dead);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
}

/* A pack writer failed: its chunks are lost.  Backups that deduplicated
 * against them notice the changed epoch and fail at commit.  mu held. */
static void pack_lost_locked(struct lb_store *s, struct openpack *op)
{
	s->fail_epoch++;
	premove_pack(s, op);
	lb_pack_writer_free(op->w);
	free(op);
	pthread_cond_broadcast(&s->cv);
}

/* Packs on their way into the index, which a collection must not take for
 * leftovers of a crash (mu held). */
static int unindexed_add_locked(struct lb_store *s, const struct lb_pack_id *id)
{
	int r = lb_grow(&s->unindexed, &s->capunindexed, s->nunindexed + 1, sizeof(*s->unindexed));
	if (r == 0)
		s->unindexed[s->nunindexed++] = *id;
	return r;
}

static void unindexed_drop_locked(struct lb_store *s, const struct lb_pack_id *id)
{
	for (size_t i = 0; i < s->nunindexed; i++)
		if (!memcmp(s->unindexed[i].b, id->b, LB_PACK_ID_LEN)) {
			s->unindexed[i] = s->unindexed[--s->nunindexed];
			return;
		}
}

int lb_store_pack_unindexed(struct lb_store *s, const struct lb_pack_id *id)
{
	int found = 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nunindexed && !found; i++)
		found = !memcmp(s->unindexed[i].b, id->b, LB_PACK_ID_LEN);
	pthread_mutex_unlock(&s->mu);
	return found;
}

static void seal_pack(struct lb_store *s, struct openpack *op)
{
	pthread_mutex_lock(&s->mu);
	int r = unindexed_add_locked(s, lb_pack_writer_id(op->w));
	pthread_mutex_unlock(&s->mu);
	if (r == 0)
		r = lb_pack_seal(op->w);
	pthread_mutex_lock(&s->mu);
	if (r < 0) {
		s->last_seal_error = r;
		unindexed_drop_locked(s, lb_pack_writer_id(op->w));
		pack_lost_locked(s, op);
	} else {
		op->next = s->sealed;
		s->sealed = op;
	}
	s->sealing--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Whether the pack the index names is in the store.  The index is only
 * read at open: a pack deleted behind the store's back stays indexed, and
 * a backup deduplicating against it would commit a snapshot that cannot be
 * restored.  A collection may just have moved the chunk to another pack,
 * so the caller looks it up again before giving up on it. */
static int pack_present(struct lb_store *s, const struct lb_pack_id *pid)
{
	char name[64];
	uint64_t size;
	lb_pack_name(pid, name, sizeof(name));
	return s->be->ops->stat(s->be, name, &size) != -ENOENT;
}

/* Whether the index holds id in a pack that is there, and a backup may use
 * it: for a delta, every chunk of its chains is referenced first (so that a
 * collection marking at the same time keeps them), and only then the delta
 * itself.  A chunk whose pack is missing is not held: lb_store_put_chunk
 * stores it again (the newest copy is the one lookups find), and a file
 * reused from the parent snapshot fails the backup. */
static int index_ref(struct lb_store *s, const struct lb_id *id, struct lb_pack_entry *e)
{
	struct lb_pack_id pid;
	for (int tries = 0; tries < 2; tries++) {
		if (!lb_index_lookup(s->idx, id, &pid, e))
			return 0;
		if (e->codec == LB_CODEC_ZSTD_DELTA && lb_store_ref_closure(s, id) < 0)
			return 0;
		if (!lb_index_lookup_ref(s->idx, id, &pid, e))
			return 0;
		if (pack_present(s, &pid))
			return 1;
	}
	return 0;
}

static int ref_pending_chains(struct lb_store *s, const struct lb_id *id, const struct lb_id *bases, unsigned nb)
{
	for (unsigned i = 0; i < nb; i++) {
		struct lb_pack_entry e;
		if (!index_ref(s, &bases[i], &e)) {
			char hex[LB_ID_HEX];
			lb_set_error("chunk %s: a garbage collection removed the bases of a delta another backup is "
				     "storing; run this backup again", lb_id_hex(id, hex));
			return -ESTALE;
		}
	}
	return 0;
}

int lb_store_put_blob(struct lb_store *s, int type, const struct lb_id *id, const void *data,
		      size_t len, int *is_new, uint32_t *stored_out)
{
	int is_delta;
	return lb_store_put_chunk(s, type, id, data, len, NULL, is_new, stored_out, &is_delta);
}

/* Encodes a new chunk: as a delta when that is allowed and smaller, else
 * plainly.  Sets *nb to the number of bases the blob names (0: plain). */
static int encode_chunk(struct lb_store *s, const void *data, size_t len, const struct lb_delta_ref *ref,
			unsigned *nb, const void **payload, size_t *stored)
{
	*nb = 0;
	/* lb_store_set_level may change it on a reload meanwhile. */
	int level = __atomic_load_n(&s->p.zstd_level, __ATOMIC_RELAXED);
	if (ref && ref->nbases && s->delta) {
		void *d;
		size_t dlen;
		unsigned cost;
		int r = lb_store_delta_encode(s, ref, data, len, s->delta_max_cost, &d, &dlen, &cost);
		if (r == -ENOMEM)
			return r;
		size_t dsize = dlen + (size_t)ref->nbases * LB_ID_LEN;
		/* A delta this small cannot lose to plain zstd: skip trying. */
		if (r == 0 && dsize <= len / 8) {
			*nb = ref->nbases;
			*payload = d;
			*stored = dlen;
			return LB_CODEC_ZSTD_DELTA;
		}
		if (r == 0) {
			const void *p;
			size_t plen;
			int codec = lb_compress(level, data, len, &p, &plen);
			if (codec < 0)
				return codec;
			if (dsize < plen) {
				*nb = ref->nbases;
				*payload = d;
				*stored = dlen;
				return LB_CODEC_ZSTD_DELTA;
			}
			*payload = p;
			*stored = plen;
			return codec;
		}
		/* Chain too long, or a base unreadable or gone: store plainly. */
	}
	return lb_compress(level, data, len, payload, stored);
}

int lb_store_put_chunk(struct lb_store *s, int type, const struct lb_id *id, const void *data, size_t len,
		       const struct lb_delta_ref *ref, int *is_new, uint32_t *stored_out, int *is_delta)
{
	struct lb_pack_entry e;
	*is_new = 0;
	*stored_out = 0;
	*is_delta = 0;
	if (len > LB_CDC_MAX_MAX || (ref && ref->nbases > LB_BLOB_MAX_BASES))
		return -EFBIG;
	if (index_ref(s, id, &e)) {
		*stored_out = e.stored;
		*is_delta = e.codec == LB_CODEC_ZSTD_DELTA;
		return 0;
	}
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct pnode *n = pfind(s, id);
		if (!n)
			break;
		if (n->state == PN_APPENDED) {
			*stored_out = n->stored;
			*is_delta = n->nbases > 0;
			struct lb_id bases[LB_BLOB_MAX_BASES];
			unsigned nb = n->nbases;
			memcpy(bases, n->bases, nb * sizeof(*bases));
			pthread_mutex_unlock(&s->mu);
			/* A delta another backup is storing: this one depends on
			 * its chains too, so it references them (a collection
			 * may have begun since they were chosen). */
			return ref_pending_chains(s, id, bases, nb);
		}
		pthread_cond_wait(&s->cv, &s->mu);
	}
	/* A flush may have moved it from pending into the index meanwhile. */
	if (index_ref(s, id, &e)) {
		*stored_out = e.stored;
		*is_delta = e.codec == LB_CODEC_ZSTD_DELTA;
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	struct pnode *node = calloc(1, sizeof(*node));
	if (!node) {
		pthread_mutex_unlock(&s->mu);
		return -ENOMEM;
	}
	node->id = *id;
	node->state = PN_RESERVED;
	struct pnode **b = bucket(s, id);
	node->next = *b;
	*b = node;
	pthread_mutex_unlock(&s->mu);

	const void *payload;
	size_t stored;
	unsigned nb;
	int codec = encode_chunk(s, data, len, ref, &nb, &payload, &stored);
	int kind = type == LB_BLOB_TREE ? LB_PACK_META : LB_PACK_DATA;
	struct openpack *to_seal = NULL;
	int r = codec < 0 ? codec : 0;

	pthread_mutex_lock(&s->pack_mu);
	struct openpack *op = s->cur[kind];
	if (r == 0 && !op) {
		op = calloc(1, sizeof(*op));
		if (!op)
			r = -ENOMEM;
		else if ((r = lb_pack_writer_new(s->be, kind, &op->w)) < 0) {
			free(op);
			op = NULL;
		} else {
			op->kind = kind;
			s->cur[kind] = op;
		}
	}
	if (r == 0)
		r = lb_pack_append(op->w, id, type, codec, nb ? ref->bases : NULL, (uint16_t)nb, (uint32_t)len,
				   payload, (uint32_t)stored, NULL);
	uint32_t tail = (uint32_t)stored + nb * LB_ID_LEN;
	pthread_mutex_lock(&s->mu);
	if (r < 0) {
		premove(s, node);
		if (op && s->cur[kind] == op) {
			/* The writer is poisoned: drop it, and whatever it held is
			 * lost; the next blob starts a new pack. */
			s->cur[kind] = NULL;
			if (lb_pack_writer_count(op->w) > 0) {
				pack_lost_locked(s, op);
			} else {
				lb_pack_writer_free(op->w);
				free(op);
			}
		}
		pthread_cond_broadcast(&s->cv);
	} else {
		node->state = PN_APPENDED;
		node->op = op;
		node->stored = tail;
		node->nbases = nb;
		if (nb)
			memcpy(node->bases, ref->bases, nb * sizeof(*ref->bases));
		s->physical += lb_usage_blob_bytes(tail);
		if (lb_pack_writer_size(op->w) >= s->p.pack_size) {
			s->cur[kind] = NULL;
			s->sealing++;
			to_seal = op;
		}
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->pack_mu);
	if (to_seal)
		seal_pack(s, to_seal);
	if (r < 0)
		return r;
	*is_new = 1;
	*stored_out = tail;
	*is_delta = nb > 0;
	return 0;
}

int lb_store_pending_bases(struct lb_store *s, const struct lb_id *id, struct lb_id *bases, unsigned *n)
{
	pthread_mutex_lock(&s->mu);
	struct pnode *p = pfind(s, id);
	int found = p && p->state == PN_APPENDED;
	*n = 0;
	if (found) {
		*n = p->nbases;
		memcpy(bases, p->bases, p->nbases * sizeof(*bases));
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

int lb_store_flush(struct lb_store *s)
{
	pthread_mutex_lock(&s->flush_mu);
	struct openpack *detached[3] = { NULL, NULL, NULL };
	pthread_mutex_lock(&s->pack_mu);
	pthread_mutex_lock(&s->mu);
	for (int k = LB_PACK_DATA; k <= LB_PACK_META; k++) {
		if (s->cur[k] && lb_pack_writer_count(s->cur[k]->w) > 0) {
			detached[k] = s->cur[k];
			s->cur[k] = NULL;
			s->sealing++;
		}
	}
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->pack_mu);
	for (int k = LB_PACK_DATA; k <= LB_PACK_META; k++)
		if (detached[k])
			seal_pack(s, detached[k]);

	pthread_mutex_lock(&s->mu);
	while (s->sealing > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	struct openpack *list = s->sealed;
	s->sealed = NULL;
	int r = s->last_seal_error;
	s->last_seal_error = 0;
	pthread_mutex_unlock(&s->mu);

	size_t n = 0;
	for (struct openpack *op = list; op; op = op->next)
		n++;
	struct lb_index_pack *ip = n ? lb_mallocarray(n, sizeof(*ip)) : NULL;
	if (n && !ip)
		r = r ? r : -ENOMEM;
	if (n && ip) {
		size_t i = 0;
		for (struct openpack *op = list; op; op = op->next, i++) {
			ip[i].id = *lb_pack_writer_id(op->w);
			ip[i].entries = lb_pack_writer_entries(op->w, &ip[i].n);
		}
		int ri = lb_index_add(s->idx, ip, n);
		if (ri < 0 && !r)
			r = ri;
		if (ri < 0) {
			/* Durable but not indexed: keep them for the next flush. */
			pthread_mutex_lock(&s->mu);
			struct openpack *last = list;
			while (last->next)
				last = last->next;
			last->next = s->sealed;
			s->sealed = list;
			pthread_mutex_unlock(&s->mu);
			list = NULL;
		}
	}
	free(ip);
	if (list) {
		pthread_mutex_lock(&s->mu);
		for (struct openpack *op = list; op; op = op->next) {
			op->indexed = 1;
			unindexed_drop_locked(s, lb_pack_writer_id(op->w));
		}
		for (size_t b = 0; b < PT_BUCKETS; b++) {
			struct pnode **pp = &s->buckets[b];
			while (*pp) {
				if ((*pp)->op && (*pp)->op->indexed) {
					struct pnode *dead = *pp;
					*pp = dead->next;
					free(dead);
				} else {
					pp = &(*pp)->next;
				}
			}
		}
		pthread_mutex_unlock(&s->mu);
		while (list) {
			struct openpack *next = list->next;
			lb_pack_writer_free(list->w);
			free(list);
			list = next;
		}
	}
	pthread_mutex_unlock(&s->flush_mu);
	return r;
}

/* ---- snapshot catalog ----------------------------------------------------- */

static int snap_time_cmp(const void *a, const void *b)
{
	const struct lb_snapshot *x = *(struct lb_snapshot *const *)a;
	const struct lb_snapshot *y = *(struct lb_snapshot *const *)b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return memcmp(x->id, y->id, LB_SNAP_ID_LEN);
}

static int catalog_add_locked(struct lb_store *s, struct lb_snapshot *snap)
{
	int r = lb_grow(&s->snaps, &s->capsnaps, s->nsnaps + 1, sizeof(*s->snaps));
	if (r < 0)
		return r;
	s->snaps[s->nsnaps++] = snap;
	if (s->nsnaps > 1)
		qsort(s->snaps, s->nsnaps, sizeof(*s->snaps), snap_time_cmp);
	return 0;
}

static int note_damaged(struct lb_store *s, const char *name)
{
	int r = lb_grow(&s->damaged, &s->capdamaged, s->ndamaged + 1, sizeof(char *));
	if (r < 0)
		return r;
	s->damaged[s->ndamaged] = strdup(name);
	if (!s->damaged[s->ndamaged])
		return -ENOMEM;
	s->ndamaged++;
	return 0;
}

static int load_head_cb(void *arg, const char *name, uint64_t size)
{
	struct lb_store *s = arg;
	uint8_t *data;
	size_t len;
	(void)size;
	int r = lb_backend_read_all(s->be, name, 1u << 30, &data, &len);
	if (r < 0)
		return note_damaged(s, name);
	struct lb_snapshot *snap = calloc(1, sizeof(*snap));
	if (!snap) {
		free(data);
		return -ENOMEM;
	}
	r = lb_snapshot_decode(data, len, snap);
	free(data);
	char expect[256];
	if (r == 0)
		lb_snapshot_object_name(snap, expect, sizeof(expect));
	if (r < 0 || strcmp(expect, name) != 0) {
		lb_snapshot_free(snap);
		return note_damaged(s, name);
	}
	return catalog_add_locked(s, snap);
}

/* Legal holds: an object protect/TENANT/ID marks a snapshot protected.
 * Checked and changed under cat_mu, so a forget and a protect of the same
 * snapshot never cross. */
static void protect_name(const struct lb_snapshot *snap, char *buf, size_t len)
{
	char hex[LB_SNAP_HEX];
	snprintf(buf, len, "protect/%s/%s", snap->tenant, lb_snap_id_hex(snap->id, hex));
}

static int protected_locked(struct lb_store *s, const struct lb_snapshot *snap)
{
	char name[256];
	uint64_t size;
	protect_name(snap, name, sizeof(name));
	int r = s->be->ops->stat(s->be, name, &size);
	return r == 0 ? 1 : r == -ENOENT ? 0 : r;
}

int lb_store_is_protected(struct lb_store *s, const struct lb_snapshot *snap)
{
	pthread_mutex_lock(&s->cat_mu);
	int r = protected_locked(s, snap);
	pthread_mutex_unlock(&s->cat_mu);
	return r;
}

int lb_store_protect(struct lb_store *s, const struct lb_snapshot *snap, int on)
{
	char name[256];
	static const char text[] = "protected\n";
	protect_name(snap, name, sizeof(name));
	pthread_mutex_lock(&s->cat_mu);
	int found = 0;
	for (size_t i = 0; i < s->nsnaps && !found; i++)
		found = !memcmp(s->snaps[i]->id, snap->id, LB_SNAP_ID_LEN) && !strcmp(s->snaps[i]->tenant, snap->tenant);
	int r;
	if (!found)
		r = -ENOENT;
	else if (on)
		r = s->be->ops->replace(s->be, name, text, sizeof(text) - 1);
	else if ((r = s->be->ops->remove(s->be, name)) == -ENOENT)
		r = 0;
	pthread_mutex_unlock(&s->cat_mu);
	return r;
}

int lb_store_forget(struct lb_store *s, const struct lb_snapshot *snap)
{
	char name[256];
	lb_snapshot_object_name(snap, name, sizeof(name));
	/* The charges come off while the snapshot is still in the catalogue:
	 * that reads its tree, which a collection keeps alive only while the
	 * snapshot is listed there. */
	pthread_mutex_lock(&s->cat_mu);
	struct lb_snapshot *victim = NULL;
	size_t at = 0;
	for (size_t i = 0; i < s->nsnaps; i++) {
		if (!memcmp(s->snaps[i]->id, snap->id, LB_SNAP_ID_LEN) && !strcmp(s->snaps[i]->tenant, snap->tenant)) {
			victim = s->snaps[i];
			at = i;
		}
	}
	int r = victim ? protected_locked(s, snap) : -ENOENT;
	if (r > 0)
		r = -EACCES;
	if (r == 0) {
		pthread_mutex_lock(&s->usage_mu);
		r = lb_usage_remove(s->usage, s, victim);
		pthread_mutex_unlock(&s->usage_mu);
	}
	if (r == 0) {
		r = s->be->ops->remove(s->be, name);
		if (r < 0) {
			/* Still there: charge it again. */
			pthread_mutex_lock(&s->usage_mu);
			lb_usage_add(s->usage, s, victim);
			pthread_mutex_unlock(&s->usage_mu);
		}
	}
	if (r == 0) {
		memmove(s->snaps + at, s->snaps + at + 1, (s->nsnaps - at - 1) * sizeof(*s->snaps));
		s->nsnaps--;
	}
	pthread_mutex_unlock(&s->cat_mu);
	if (r == 0)
		lb_snapshot_free(victim);
	return r;
}

size_t lb_store_damaged_heads(struct lb_store *s, char ***names)
{
	if (names)
		*names = s->damaged;
	return s->ndamaged;
}

/* ---- usage ------------------------------------------------------------------ */

static int physical_cb(void *arg, const char *name, uint64_t size)
{
	struct lb_store *s = arg;
	(void)name;
	s->physical += size;
	return 0;
}

/* Charges every tenant for its snapshots, from scratch. */
static int build_usage(struct lb_store *s, struct lb_usage **out)
{
	struct lb_usage *u = lb_usage_new();
	if (!u)
		return -ENOMEM;
	struct lb_snapshot **list;
	size_t n;
	int r = lb_store_list_snapshots(s, NULL, NULL, &list, &n);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = lb_usage_add(u, s, list[i]);
	if (r == 0 || r == -EBADMSG)
		lb_snapshot_list_free(list, n);
	if (r == -EBADMSG) {
		/* A damaged manifest: the store still opens (check names it);
		 * the tenant's charge misses what cannot be read. */
		r = 0;
	}
	if (r < 0) {
		lb_usage_free(u);
		return r;
	}
	*out = u;
	return 0;
}

int lb_store_recount_usage(struct lb_store *s, struct lb_usage **out) { return build_usage(s, out); }

void lb_store_tenant_usage(struct lb_store *s, const char *tenant, struct lb_tenant_usage *out)
{
	pthread_mutex_lock(&s->usage_mu);
	lb_usage_get(s->usage, tenant, out);
	pthread_mutex_unlock(&s->usage_mu);
}

uint64_t lb_store_tenant_exclusive(struct lb_store *s, const char *tenant)
{
	pthread_mutex_lock(&s->usage_mu);
	uint64_t x = lb_usage_exclusive(s->usage, tenant);
	pthread_mutex_unlock(&s->usage_mu);
	return x;
}

uint64_t lb_store_physical(struct lb_store *s) { return s->physical; }

struct space_walk {
	uint64_t total;
	uint64_t packs;
	uint64_t npacks;
};

static int space_cb(void *arg, const char *name, uint64_t size)
{
	struct space_walk *w = arg;
	w->total += size;
	if (!strncmp(name, "packs/", 6)) {
		w->packs += size;
		w->npacks++;
	}
	return 0;
}

int lb_store_space(struct lb_store *s, struct lb_store_space *out)
{
	memset(out, 0, sizeof(*out));
	static const char *prefixes[] = { "packs", "index", "snapshots", "audit", "jobs", "usage" };
	struct space_walk w = { 0 };
	int r = 0;
	for (size_t i = 0; r == 0 && i < LB_ARRAY_SIZE(prefixes); i++)
		r = s->be->ops->list(s->be, prefixes[i], space_cb, &w);
	uint64_t cfg = 0;
	if (r == 0 && s->be->ops->stat(s->be, "config", &cfg) == 0)
		w.total += cfg;
	if (r < 0)
		return r;
	/* Blob bytes in packs: every indexed blob's header and payload. */
	out->physical = w.total;
	pthread_mutex_lock(&s->usage_mu);
	const char **names;
	size_t n = lb_usage_tenants(s->usage, &names);
	out->tenants = calloc(n ? n : 1, sizeof(char *));
	out->exclusive = calloc(n ? n : 1, sizeof(uint64_t));
	out->fair = calloc(n ? n : 1, sizeof(uint64_t));
	out->charged = calloc(n ? n : 1, sizeof(uint64_t));
	out->logical = calloc(n ? n : 1, sizeof(uint64_t));
	out->snapshots = calloc(n ? n : 1, sizeof(uint64_t));
	if (!out->tenants || !out->exclusive || !out->fair || !out->charged || !out->logical || !out->snapshots)
		r = -ENOMEM;
	if (r == 0)
		r = lb_usage_breakdown(s->usage, &out->referenced, out->exclusive, out->fair);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct lb_tenant_usage tu;
		lb_usage_get(s->usage, names[i], &tu);
		out->tenants[i] = strdup(names[i]);
		if (!out->tenants[i])
			r = -ENOMEM;
		out->charged[i] = tu.charged;
		out->logical[i] = tu.logical;
		out->snapshots[i] = tu.snapshots;
		out->ntenants = i + 1;
	}
	pthread_mutex_unlock(&s->usage_mu);
	if (r < 0) {
		lb_store_space_clear(out);
		return r;
	}
	uint64_t ex = 0;
	for (size_t i = 0; i < out->ntenants; i++)
		ex += out->exclusive[i];
	out->shared = out->referenced - ex;
	/* Overhead: what is not blob data: pack headers, footers and trailers
	 * (packs minus the blobs their index entries describe) and every
	 * other object.  Unreferenced: blobs in packs no snapshot uses. */
	uint64_t blob_bytes = lb_index_blob_bytes(s->idx);
	uint64_t pack_overhead = w.packs > blob_bytes ? w.packs - blob_bytes : 0;
	out->overhead = (w.total - w.packs) + pack_overhead;
	uint64_t accounted = out->referenced + out->overhead;
	out->unreferenced = out->physical > accounted ? out->physical - accounted : 0;
	/* Whatever rounding is left (a blob indexed twice) goes to overhead so
	 * that the rows always add up. */
	out->overhead = out->physical - out->referenced - out->unreferenced;
	uint64_t free_bytes;
	if (s->be->ops->space && s->be->ops->space(s->be, &free_bytes) == 0)
		out->free_bytes = free_bytes;
	return 0;
}

void lb_store_space_clear(struct lb_store_space *sp)
{
	for (size_t i = 0; i < sp->ntenants; i++)
		free(sp->tenants[i]);
	free(sp->tenants);
	free(sp->exclusive);
	free(sp->fair);
	free(sp->charged);
	free(sp->logical);
	free(sp->snapshots);
	memset(sp, 0, sizeof(*sp));
}

/* ---- open / close ---------------------------------------------------------- */

static unsigned ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

int lb_store_open(const char *path, unsigned threads, struct lb_store **out)
{
	struct lb_backend_conf where = { .path = path };
	return lb_store_open_at(&where, threads, out);
}

/* A backend that keeps the index apart from the packs rebuilds it when its
 * copy is not the store's latest (a new appliance, or one that took the
 * store over from another). */
static int index_current(struct lb_store *s)
{
	struct lb_backend *be = s->be;
	if (!be->ops->index_cached)
		return 0;
	int r = be->ops->index_cached(be);
	if (r != 0)
		return r < 0 ? r : 0;
	r = lb_index_rebuild(be, &s->rebuilt[0], &s->rebuilt[1], &s->rebuilt[2]);
	if (r == 0)
		r = be->ops->index_rebuilt(be);
	s->index_rebuilt = r == 0;
	return r;
}

int lb_store_index_rebuilt(const struct lb_store *s, uint64_t *packs, uint64_t *chunks, uint64_t *bad_packs)
{
	*packs = s->rebuilt[0];
	*chunks = s->rebuilt[1];
	*bad_packs = s->rebuilt[2];
	return s->index_rebuilt;
}

int lb_store_open_at(const struct lb_backend_conf *where, unsigned threads, struct lb_store **out)
{
	struct lb_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->bulk_mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_mutex_init(&s->pack_mu, NULL);
	pthread_mutex_init(&s->flush_mu, NULL);
	pthread_mutex_init(&s->cat_mu, NULL);
	pthread_mutex_init(&s->usage_mu, NULL);
	pthread_mutex_init(&s->gc_mu, NULL);
	s->buckets = calloc(PT_BUCKETS, sizeof(*s->buckets));
	s->delta = 1;
	s->delta_max_cost = LB_DELTA_MAX_COST;
	s->bcache = lb_bcache_new(LB_DELTA_CACHE);
	int r = s->buckets && s->bcache ? 0 : -ENOMEM;
	if (r == 0 && where->path && !(s->local_dir = strdup(where->path)))
		r = -ENOMEM;
	if (r == 0)
		r = lb_backend_open(where, 0, &s->be);
	if (r == 0)
		r = read_config(s->be, &s->p);
	if (r == 0)
		r = s->be->ops->lock(s->be);
	if (r == 0)
		r = s->be->ops->cleanup(s->be);
	if (r == 0)
		r = index_current(s);
	if (r == 0)
		r = lb_cdc_init(&s->cdc, s->p.chunk_min, s->p.chunk_avg, s->p.chunk_max);
	s->delta_margin = s->p.chunk_avg / 8;
	lb_store_set_level(s, s->p.zstd_level);
	s->delta_radix = LB_DELTA_RADIX;
	if (r == 0)
		r = lb_index_open(s->be, &s->idx);
	if (r == 0)
		r = s->be->ops->list(s->be, "snapshots", load_head_cb, s);
	if (r == 0)
		r = s->be->ops->list(s->be, "packs", physical_cb, s);
	if (r == 0)
		r = build_usage(s, &s->usage);
	/* The caller's thread works too, so one worker fewer than CPUs. */
	if (r == 0)
		r = lb_pool_new(threads ? threads - 1 : ncpus() - 1, &s->pool);
	if (r < 0) {
		lb_store_close(s);
		return r;
	}
	*out = s;
	return 0;
}

void lb_store_close(struct lb_store *s)
{
	if (!s)
		return;
	lb_pool_free(s->pool);
	for (int k = 0; k < 3; k++) {
		if (s->cur[k]) {
			lb_pack_writer_free(s->cur[k]->w);
			free(s->cur[k]);
		}
	}
	while (s->sealed) {
		struct openpack *next = s->sealed->next;
		lb_pack_writer_free(s->sealed->w);
		free(s->sealed);
		s->sealed = next;
	}
	if (s->buckets) {
		for (size_t b = 0; b < PT_BUCKETS; b++) {
			while (s->buckets[b]) {
				struct pnode *n = s->buckets[b];
				s->buckets[b] = n->next;
				free(n);
			}
		}
		free(s->buckets);
	}
	for (size_t i = 0; i < s->nsnaps; i++)
		lb_snapshot_free(s->snaps[i]);
	free(s->snaps);
	for (size_t i = 0; i < s->ndamaged; i++)
		free(s->damaged[i]);
	free(s->damaged);
	lb_usage_free(s->usage);
	lb_bcache_free(s->bcache);
	lb_index_free(s->idx);
	lb_backend_free(s->be);
	free(s->local_dir);
	for (int i = 0; i < s->nbulk_idle; i++)
		lb_bulk_free(s->bulk_idle[i], batch_cap(s));
	pthread_mutex_destroy(&s->bulk_mu);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->pack_mu);
	pthread_mutex_destroy(&s->flush_mu);
	pthread_mutex_destroy(&s->cat_mu);
	pthread_mutex_destroy(&s->usage_mu);
	pthread_mutex_destroy(&s->gc_mu);
	free(s->unindexed);
	free(s);
}

const struct lb_store_params *lb_store_get_params(const struct lb_store *s) { return &s->p; }

void lb_store_set_level(struct lb_store *s, int level)
{
	/* Set on a reload while backups may be reading them. */
	__atomic_store_n(&s->p.zstd_level, level, __ATOMIC_RELAXED);
	/* Levels up to LB_DELTA_FAST_LEVEL make deltas with parameters of
	 * their own (codec.h), all alike; higher ones with their own. */
	s->delta_level = level;
}

void lb_store_set_delta(struct lb_store *s, int on, unsigned max_cost)
{
	s->delta = on;
	s->delta_max_cost = max_cost ? max_cost : LB_DELTA_MAX_COST;
}
struct lb_backend *lb_store_backend(struct lb_store *s) { return s->be; }
struct lb_index *lb_store_index(struct lb_store *s) { return s->idx; }
struct lb_pool *lb_store_pool(struct lb_store *s) { return s->pool; }

/* ---- snapshot queries ----------------------------------------------------- */

int lb_store_list_snapshots(struct lb_store *s, const char *tenant, const char *dataset,
			    struct lb_snapshot ***out, size_t *n)
{
	struct lb_snapshot **list = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	pthread_mutex_lock(&s->cat_mu);
	for (size_t i = 0; i < s->nsnaps && r == 0; i++) {
		struct lb_snapshot *snap = s->snaps[i];
		if (tenant && strcmp(snap->tenant, tenant) != 0)
			continue;
		if (dataset && strcmp(snap->dataset, dataset) != 0)
			continue;
		r = lb_grow(&list, &cap, cnt + 1, sizeof(*list));
		if (r == 0) {
			list[cnt] = lb_snapshot_dup(snap);
			if (!list[cnt])
				r = -ENOMEM;
			else
				cnt++;
		}
	}
	pthread_mutex_unlock(&s->cat_mu);
	if (r < 0) {
		lb_snapshot_list_free(list, cnt);
		return r;
	}
	*out = list;
	*n = cnt;
	return 0;
}

void lb_snapshot_list_free(struct lb_snapshot **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lb_snapshot_free(list[i]);
	free(list);
}

static int parse_day(const char *s, int64_t *start)
{
	struct tm tm = { 0 };
	char *end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || *end)
		return -EINVAL;
	*start = (int64_t)timegm(&tm) * 1000000000LL;
	return 0;
}

int lb_store_find_snapshot(struct lb_store *s, const char *tenant, const char *name,
			   struct lb_snapshot **out)
{
	char buf[256];
	if (strlen(name) >= sizeof(buf))
		return -ENOENT;
	snprintf(buf, sizeof(buf), "%s", name);
	char *t = NULL, *spec = buf;
	char *slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		t = buf;
		spec = slash + 1;
		if (tenant && strcmp(t, tenant) != 0)
			return -ENOENT;
	} else {
		t = (char *)tenant;
	}
	char *at = strchr(spec, '@');
	struct lb_snapshot *found = NULL;
	int r = -ENOENT;
	pthread_mutex_lock(&s->cat_mu);
	if (at) {
		*at = '\0';
		const char *when = at + 1;
		int64_t lo = INT64_MIN, hi = INT64_MAX;
		if (strcmp(when, "latest") != 0) {
			if (parse_day(when, &lo) < 0) {
				pthread_mutex_unlock(&s->cat_mu);
				return -ENOENT;
			}
			hi = lo + 86400LL * 1000000000LL;
		}
		for (size_t i = s->nsnaps; i-- > 0;) {
			struct lb_snapshot *c = s->snaps[i];
			if ((t && strcmp(c->tenant, t) != 0) || strcmp(c->dataset, spec) != 0)
				continue;
			if (c->time_ns >= lo && c->time_ns < hi) {
				found = c;
				break;
			}
		}
	} else {
		size_t len = strlen(spec);
		if (len >= 4 && len <= 2 * LB_SNAP_ID_LEN) {
			for (size_t i = 0; i < s->nsnaps; i++) {
				struct lb_snapshot *c = s->snaps[i];
				char hex[LB_SNAP_HEX];
				if (t && strcmp(c->tenant, t) != 0)
					continue;
				if (strncmp(lb_snap_id_hex(c->id, hex), spec, len) != 0)
					continue;
				if (found) {
					r = -EEXIST;
					found = NULL;
					break;
				}
				found = c;
			}
		}
	}
	if (found) {
		*out = lb_snapshot_dup(found);
		r = *out ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&s->cat_mu);
	return r;
}

/* ---- backup ---------------------------------------------------------------- */

/* A backup cuts file data into chunks in one thread and hashes, dedups and
 * compresses them on the pool, in batches.  Two batch buffers alternate:
 * while the pool works on one, the backup thread reads and cuts into the
 * other, so both cores stay busy.  Files wait in a queue until all their
 * chunks are done, then go to the manifest. */


struct pend_file {
	struct lb_entry e;
	size_t chunk_cap;
	size_t pending; /* chunks cut but not yet stored */
	int ended;
	int dropped; /* ended, but left out of the snapshot (lb_backup_file_drop) */
	/* The same path in the dataset's previous snapshot (for deltas). */
	struct lb_chunkref *prev;
	uint64_t *prev_off; /* where each of its chunks starts */
	size_t nprev;
	uint64_t prev_total, new_total, cut_off;
};

struct item {
	size_t off, len;
	uint64_t fseq; /* sequence number of the file it belongs to */
	struct lb_id id;
	uint32_t stored;
	int is_new;
	struct lb_delta_ref ref;
	int err;
	char errdetail[160];
};

static void pend_file_clear(struct pend_file *f);

struct batch {
	struct lb_store *s;
	struct lb_backup *b;
	uint8_t *buf;
	size_t cap, fill, cut;
	struct item *items;
	size_t nitems, capitems;
	struct lb_job *job; /* in flight on the pool */
};

/* A backup's two batch buffers come from the store's idle ones when it has
 * some (store_internal.h, bulk_mu), else are mapped fresh, so that backups
 * queued behind max_jobs reuse memory already faulted in.  The last backup
 * to end frees them all: kept past it, they were the daemon's peak memory in
 * a restore (176 MiB against 145 in the bench's comparison).  Reads
 * (read_files) malloc theirs: on these huge-page buffers a restore of
 * everything ran 7% slower (1.77-1.97 s against 1.59-1.67 s for the 1 GiB
 * bench store, alternated), for no gain in a one-file restore. */
static void *batch_buf_get(struct lb_store *s)
{
	void *p = NULL;
	pthread_mutex_lock(&s->bulk_mu);
	if (s->bulk_users++ == 0)
		lb_bcache_backups(s->bcache, 1);
	if (s->nbulk_idle)
		p = s->bulk_idle[--s->nbulk_idle];
	pthread_mutex_unlock(&s->bulk_mu);
	return p ? p : lb_bulk_alloc(batch_cap(s));
}

/* Gives back the buffers of one backup's n calls to batch_buf_get (NULL
 * for one that failed). */
static void batch_bufs_put(struct lb_store *s, void **bufs, int n)
{
	void *drop[LB_ARRAY_SIZE(s->bulk_idle) + 2];
	int ndrop = 0;
	pthread_mutex_lock(&s->bulk_mu);
	s->bulk_users -= n;
	for (int i = 0; i < n; i++) {
		if (!bufs[i])
			continue;
		if (s->bulk_users > 0 && s->nbulk_idle < (int)LB_ARRAY_SIZE(s->bulk_idle))
			s->bulk_idle[s->nbulk_idle++] = bufs[i];
		else
			drop[ndrop++] = bufs[i];
	}
	if (s->bulk_users == 0) {
		while (s->nbulk_idle > 0)
			drop[ndrop++] = s->bulk_idle[--s->nbulk_idle];
		lb_bcache_backups(s->bcache, 0);
	}
	pthread_mutex_unlock(&s->bulk_mu);
	for (int i = 0; i < ndrop; i++)
		lb_bulk_free(drop[i], batch_cap(s));
}

void lb_store_trim(struct lb_store *s)
{
	lb_bcache_trim(s->bcache);
	lb_keep_drain_all();
}

struct lb_backup {
	struct lb_store *s;
	char *tenant, *dataset, *host;
	int64_t time_ns;
	char **tags;
	size_t ntags;
	struct lb_mwriter *mw;
	uint64_t epoch;
	uint64_t gen;    /* collection generation at begin (gc.c) */
	int counted_gen; /* counted in bk_cur or bk_old */
	int failed;
	int in_file;
	struct batch bt[2];
	int cur; /* the batch being filled */
	struct pend_file *files; /* queue: files[0] has sequence head_seq */
	size_t nfiles, capfiles;
	uint64_t head_seq;
	struct lb_backup_stats st;
	/* Charging: blobs new to the tenant, counted once. */
	pthread_mutex_t mu;
	struct lb_idset *counted;
	uint64_t charge;
	uint64_t quota, capacity, reserve;
	int64_t last_space_check;
	/* The dataset's newest snapshot before this one, loaded at the first
	 * file, whose files' chunks serve as bases for deltas. */
	struct lb_mindex *prev;
	int prev_loaded;
};

int lb_backup_begin(struct lb_store *s, const char *tenant, const char *dataset, const char *host,
		    struct lb_backup **out)
{
	if (!lb_name_valid(tenant) || !lb_name_valid(dataset)) {
		lb_set_error("invalid tenant or dataset name");
		return -EINVAL;
	}
	if (host && strlen(host) > 255) {
		lb_set_error("host name longer than 255 bytes");
		return -EINVAL;
	}
	struct lb_backup *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->s = s;
	b->tenant = strdup(tenant);
	b->dataset = strdup(dataset);
	b->host = strdup(host ? host : "");
	b->mw = lb_mwriter_new();
	if (b->mw)
		lb_mwriter_spill(b->mw, s->local_dir, manifest_budget());
	b->time_ns = lb_now_ns();
	b->counted = lb_idset_new();
	pthread_mutex_init(&b->mu, NULL);
	int ok = b->tenant && b->dataset && b->host && b->mw && b->counted;
	for (int i = 0; i < 2; i++) {
		b->bt[i].cap = batch_cap(s);
		b->bt[i].buf = batch_buf_get(s);
		ok = ok && b->bt[i].buf;
	}
	if (!ok) {
		lb_backup_free(b);
		return -ENOMEM;
	}
	pthread_mutex_lock(&s->mu);
	b->epoch = s->fail_epoch;
	b->gen = s->bk_gen;
	b->counted_gen = 1;
	s->bk_cur++;
	pthread_mutex_unlock(&s->mu);
	*out = b;
	return 0;
}

void lb_backup_set_time(struct lb_backup *b, int64_t time_ns) { b->time_ns = time_ns; }

void lb_backup_set_limits(struct lb_backup *b, uint64_t quota, uint64_t capacity)
{
	b->quota = quota;
	b->capacity = capacity;
}

void lb_backup_set_reserve(struct lb_backup *b, uint64_t reserve) { b->reserve = reserve; }

uint64_t lb_backup_charge(struct lb_backup *b)
{
	pthread_mutex_lock(&b->mu);
	uint64_t c = b->charge;
	pthread_mutex_unlock(&b->mu);
	return c;
}

static int check_limits(struct lb_backup *b, uint64_t charge)
{
	char a[32], q[32], n[32];
	if (b->quota) {
		struct lb_tenant_usage u;
		lb_store_tenant_usage(b->s, b->tenant, &u);
		if (u.charged + charge > b->quota) {
			lb_set_error("tenant %s would go over its quota: it uses %s of %s, and this backup needs %s more",
				     b->tenant, lb_format_size(a, sizeof(a), u.charged),
				     lb_format_size(q, sizeof(q), b->quota),
				     lb_format_size(n, sizeof(n), u.charged + charge - b->quota));
			return -EDQUOT;
		}
	}
	/* The store's own figures stay out of these messages: they go to
	 * tenant members, and the store's size would tell them whether their
	 * data was new to it.  Administrators see them in `lumbung quota`. */
	if (b->capacity && b->s->physical > b->capacity) {
		lb_set_error("the store is at its capacity (ask the administrators)");
		return -EDQUOT;
	}
	uint64_t free_bytes;
	if (b->reserve && b->s->be->ops->space && b->s->be->ops->space(b->s->be, &free_bytes) == 0 &&
	    free_bytes < b->reserve) {
		lb_set_error("the store's filesystem is down to the reserve kept for prune and GC (ask the administrators)");
		return -ENOSPC;
	}
	return 0;
}

/* Charges a blob the backup references to its tenant, unless the tenant's
 * snapshots (or this backup) already hold it, and enforces the limits.  A
 * delta charged for the first time brings the chunks of its chains (its
 * bases, their bases...), which the snapshot will need as well. */
static int account(struct lb_backup *b, const struct lb_id *id, uint32_t stored, int is_delta);

static int charge_base_cb(void *arg, const struct lb_id *id)
{
	struct lb_backup *b = arg;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	if (!lb_index_lookup(b->s->idx, id, &pid, &pe))
		return -ENOENT;
	return account(b, id, pe.stored, 0);
}

static int account(struct lb_backup *b, const struct lb_id *id, uint32_t stored, int is_delta)
{
	pthread_mutex_lock(&b->s->usage_mu);
	int held = lb_usage_holds(b->s->usage, b->tenant, id);
	pthread_mutex_unlock(&b->s->usage_mu);
	pthread_mutex_lock(&b->mu);
	int added = held ? 0 : lb_idset_add(b->counted, id);
	if (added == 1)
		b->charge += lb_usage_blob_bytes(stored);
	uint64_t charge = b->charge;
	pthread_mutex_unlock(&b->mu);
	if (added < 0)
		return added;
	if (added == 1 && is_delta) {
		struct lb_id bases[LB_BLOB_MAX_BASES];
		unsigned nb;
		int r = 0;
		if (lb_store_pending_bases(b->s, id, bases, &nb)) {
			/* Still in an open pack; its bases are indexed. */
			for (unsigned i = 0; i < nb && r == 0; i++) {
				r = charge_base_cb(b, &bases[i]);
				if (r == 0)
					r = lb_store_closure(b->s, &bases[i], charge_base_cb, b);
			}
		} else {
			r = lb_store_closure(b->s, id, charge_base_cb, b);
		}
		if (r < 0) {
			char hex[LB_ID_HEX];
			lb_set_error("chunk %s: its delta bases cannot be read", lb_id_hex(id, hex));
			return -EBADMSG;
		}
		pthread_mutex_lock(&b->mu);
		charge = b->charge;
		pthread_mutex_unlock(&b->mu);
	}
	return check_limits(b, charge);
}
const struct lb_backup_stats *lb_backup_get_stats(const struct lb_backup *b) { return &b->st; }

int lb_backup_tag(struct lb_backup *b, const char *tag)
{
	if (!*tag || strlen(tag) > 255 || b->ntags >= 64)
		return -EINVAL;
	char **nt = lb_reallocarray(b->tags, b->ntags + 1, sizeof(char *));
	if (!nt)
		return -ENOMEM;
	b->tags = nt;
	b->tags[b->ntags] = strdup(tag);
	if (!b->tags[b->ntags])
		return -ENOMEM;
	b->ntags++;
	return 0;
}

int lb_backup_add(struct lb_backup *b, const struct lb_entry *e)
{
	if (b->failed)
		return b->failed;
	if (b->in_file)
		return -EINVAL;
	if (!e->path || !lb_path_valid(e->path)) {
		lb_set_error("invalid path in entry");
		return -EINVAL;
	}
	uint64_t bytes = 0;
	if (e->nchunks) {
		if (e->type != LB_FT_REG)
			return -EINVAL;
		for (size_t i = 0; i < e->nchunks; i++) {
			struct lb_pack_entry pe;
			if (!index_ref(b->s, &e->chunks[i].id, &pe) || pe.raw != e->chunks[i].size) {
				struct lb_pack_id pid;
				char hex[LB_ID_HEX], name[64];
				if (lb_index_lookup(b->s->idx, &e->chunks[i].id, &pid, &pe)) {
					lb_pack_name(&pid, name, sizeof(name));
					lb_set_error("%s: chunk %s is in pack %s, which is missing from the store "
						     "(lumbung check names the damage)",
						     e->path, lb_id_hex(&e->chunks[i].id, hex), name);
				} else {
					lb_set_error("entry %s references a chunk the store does not hold", e->path);
				}
				return -ENOENT;
			}
			bytes += e->chunks[i].size;
		}
	}
	int r = lb_mwriter_add(b->mw, e);
	if (r < 0)
		return r;
	/* Counted only once the manifest took it. */
	b->st.logical += bytes;
	b->st.chunks += e->nchunks;
	b->st.reused_files += e->nchunks > 0;
	b->st.files += e->type == LB_FT_REG;
	b->st.entries++;
	return 0;
}

static void chunk_job(void *arg, size_t i)
{
	struct batch *bt = arg;
	/* As in rf_job: each thread works along a run of neighbouring chunks,
	 * whose delta bases overlap, instead of every other chunk. */
	size_t half = (bt->nitems + 1) / 2;
	i = i % 2 ? half + i / 2 : i / 2;
	struct item *it = &bt->items[i];
	const uint8_t *data = bt->buf + it->off;
	lb_sha256(data, it->len, &it->id);
	int is_delta;
	if (it->ref.nbases && bt->s->delta)
		lb_store_delta_plan(bt->s, &it->ref, bt->s->delta_margin);
	it->err = lb_store_put_chunk(bt->s, LB_BLOB_DATA, &it->id, data, it->len, &it->ref, &it->is_new,
				     &it->stored, &is_delta);
	if (it->err == 0)
		it->err = account(bt->b, &it->id, it->stored, is_delta);
	if (it->err < 0)
		snprintf(it->errdetail, sizeof(it->errdetail), "%s", lb_error_detail());
}

/* Waits for a batch in flight (working on `also`, the batch sent after it,
 * once none of its own chunks is left to take), hands its chunk ids to
 * their files, and sends every finished file at the head of the queue to
 * the manifest. */
static int finish_batch(struct lb_backup *b, struct batch *bt, struct lb_job *also)
{
	if (bt->job) {
		lb_job_wait_also(b->s->pool, bt->job, also);
		bt->job = NULL;
	}
	int r = 0;
	for (size_t i = 0; i < bt->nitems && r == 0; i++) {
		struct item *it = &bt->items[i];
		if (it->err < 0) {
			lb_set_error("%s", it->errdetail);
			r = it->err;
			break;
		}
		struct pend_file *f = &b->files[it->fseq - b->head_seq];
		r = lb_grow(&f->e.chunks, &f->chunk_cap, f->e.nchunks + 1, sizeof(*f->e.chunks));
		if (r < 0)
			break;
		f->e.chunks[f->e.nchunks].id = it->id;
		f->e.chunks[f->e.nchunks].size = (uint32_t)it->len;
		f->e.nchunks++;
		f->pending--;
		b->st.chunks++;
		if (it->is_new) {
			b->st.new_chunks++;
			b->st.new_stored += it->stored;
		}
	}
	bt->nitems = 0;
	bt->fill = bt->cut = 0;
	if (r < 0)
		return r;
	size_t done = 0;
	while (done < b->nfiles && b->files[done].ended && b->files[done].pending == 0) {
		if (!b->files[done].dropped)
			r = lb_mwriter_add(b->mw, &b->files[done].e);
		pend_file_clear(&b->files[done]);
		done++;
		if (r < 0)
			break;
	}
	if (done) {
		memmove(b->files, b->files + done, (b->nfiles - done) * sizeof(*b->files));
		b->nfiles -= done;
		b->head_seq += done;
	}
	return r;
}

/* Sends the batch being filled to the pool and switches to the other one
 * (after finishing it), carrying over the bytes not yet cut.  The batch
 * goes to the pool first: while this thread waits for the other batch's
 * last chunks, it and the workers start on this one, where waiting first
 * left a core idle (bench/RESULTS.md, "Both cores through a backup"). */
static int switch_batch(struct lb_backup *b)
{
	struct batch *cur = &b->bt[b->cur], *next = &b->bt[!b->cur];
	size_t fill = cur->fill;
	cur->fill = cur->cut;
	cur->s = b->s;
	cur->b = b;
	if (cur->nitems) {
		int r = lb_job_submit(b->s->pool, cur->nitems, chunk_job, cur, &cur->job);
		if (r < 0)
			return r;
	}
	int r = finish_batch(b, next, cur->job);
	if (r < 0)
		return r;
	/* The pool reads only the cut part of cur's buffer. */
	size_t tail = fill - cur->cut;
	memcpy(next->buf, cur->buf + cur->cut, tail);
	next->fill = tail;
	next->cut = 0;
	b->cur = !b->cur;
	return 0;
}

/* Finishes every chunk cut so far (both batches). */
static int drain(struct lb_backup *b)
{
	int r = switch_batch(b);
	if (r == 0)
		r = finish_batch(b, &b->bt[!b->cur], NULL);
	return r;
}

/* Picks what the chunk at [off, off + len) of a changed file is tried
 * against: the previous version's bytes around the same relative place,
 * widened by `margin` each side, and the old chunks holding them.  Position
 * alone pairs them, so no similarity index is needed; scaling by the two
 * sizes keeps the pairing right when rows were inserted or removed evenly,
 * and the margin absorbs the rest (bench/RESULTS.md "Delta chunks"). */
static void pick_ref(const struct pend_file *f, uint64_t off, size_t len, uint64_t margin,
		     struct lb_delta_ref *ref)
{
	ref->nbases = 0;
	if (!f->nprev || !f->prev_total)
		return;
	uint64_t total = f->new_total ? f->new_total : f->prev_total;
	double scale = (double)f->prev_total / (double)total;
	uint64_t mid_a = (uint64_t)((double)off * scale), mid_z = (uint64_t)((double)(off + len) * scale);
	uint64_t a = mid_a > margin ? mid_a - margin : 0;
	uint64_t z = LB_MIN(mid_z + margin, f->prev_total);
	if (a >= z)
		return;
	/* The first chunk ending after a, then on to the one holding z - 1. */
	size_t lo = 0, hi = f->nprev;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->prev_off[mid] + f->prev[mid].size <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t first = lo, last = lo;
	while (last + 1 < f->nprev && f->prev_off[last + 1] < z)
		last++;
	while (last - first + 1 > LB_DELTA_MAX_BASES) {
		/* Keep the middle of the range. */
		first++;
		if (last - first + 1 > LB_DELTA_MAX_BASES)
			last--;
	}
	a = LB_MAX(a, f->prev_off[first]);
	z = LB_MIN(z, f->prev_off[last] + f->prev[last].size);
	for (size_t i = first; i <= last; i++)
		ref->bases[i - first] = f->prev[i].id;
	ref->nbases = (unsigned)(last - first + 1);
	ref->skip = (uint32_t)(a - f->prev_off[first]);
	ref->len = (uint32_t)(z - a);
}

static int add_item(struct lb_backup *b, size_t len)
{
	struct batch *bt = &b->bt[b->cur];
	int r = lb_grow(&bt->items, &bt->capitems, bt->nitems + 1, sizeof(*bt->items));
	if (r < 0)
		return r;
	struct pend_file *f = &b->files[b->nfiles - 1];
	struct item *it = &bt->items[bt->nitems++];
	*it = (struct item){ .off = bt->cut, .len = len, .fseq = b->head_seq + b->nfiles - 1 };
	pick_ref(f, f->cut_off, len, b->s->delta_margin, &it->ref);
	f->cut_off += len;
	f->pending++;
	bt->cut += len;
	return 0;
}

static int fail(struct lb_backup *b, int r)
{
	if (r < 0 && !b->failed)
		b->failed = r;
	return r;
}

static void pend_file_clear(struct pend_file *f)
{
	lb_entry_clear(&f->e);
	free(f->prev);
	free(f->prev_off);
	f->prev = NULL;
	f->prev_off = NULL;
	f->nprev = 0;
}

/* Finds the file's previous version (same path, the dataset's newest
 * snapshot) when deltas are on; a previous snapshot that cannot be read
 * only means no deltas for this backup. */
static int find_previous(struct lb_backup *b, struct pend_file *f)
{
	struct lb_store *s = b->s;
	if (!s->delta)
		return 0;
	if (!b->prev_loaded) {
		b->prev_loaded = 1;
		struct lb_snapshot **list;
		size_t n;
		int r = lb_store_list_snapshots(s, b->tenant, b->dataset, &list, &n);
		if (r < 0)
			return r;
		if (n > 0 && lb_store_load_tree(s, list[n - 1], &b->prev) < 0)
			b->prev = NULL;
		lb_snapshot_list_free(list, n);
	}
	if (!b->prev)
		return 0;
	struct lb_entry pe;
	memset(&pe, 0, sizeof(pe));
	if (lb_mindex_find(b->prev, f->e.path, &pe) != 1)
		return 0;
	int r = 0;
	if (pe.type == LB_FT_REG && pe.nchunks > 0) {
		f->prev_off = lb_mallocarray(pe.nchunks, sizeof(*f->prev_off));
		if (!f->prev_off) {
			r = -ENOMEM;
		} else {
			f->prev = pe.chunks;
			f->nprev = pe.nchunks;
			pe.chunks = NULL;
			pe.nchunks = 0;
			for (size_t i = 0; i < f->nprev; i++) {
				f->prev_off[i] = f->prev_total;
				f->prev_total += f->prev[i].size;
			}
			f->new_total = f->e.size;
		}
	}
	lb_entry_clear(&pe);
	return r;
}

int lb_backup_file_begin(struct lb_backup *b, const struct lb_entry *e)
{
	if (b->failed)
		return b->failed;
	if (b->in_file || e->type != LB_FT_REG || e->nchunks)
		return -EINVAL;
	if (!e->path || !lb_path_valid(e->path)) {
		lb_set_error("invalid path in entry");
		return -EINVAL;
	}
	int r = lb_grow(&b->files, &b->capfiles, b->nfiles + 1, sizeof(*b->files));
	if (r < 0)
		return fail(b, r);
	struct pend_file *f = &b->files[b->nfiles];
	memset(f, 0, sizeof(*f));
	r = lb_entry_copy(&f->e, e);
	if (r == -EBADMSG) {
		/* A field out of range: refuse this file, keep the backup. */
		lb_set_error("entry %s has a field out of range", e->path);
		return -EINVAL;
	}
	if (r < 0)
		return fail(b, r);
	r = find_previous(b, f);
	if (r < 0) {
		pend_file_clear(f);
		return fail(b, r);
	}
	b->nfiles++;
	b->in_file = 1;
	return 0;
}

int lb_backup_file_write(struct lb_backup *b, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (b->failed)
		return b->failed;
	if (!b->in_file)
		return -EINVAL;
	b->st.logical += len;
	while (len > 0) {
		struct batch *bt = &b->bt[b->cur];
		size_t n = LB_MIN(len, bt->cap - bt->fill);
		memcpy(bt->buf + bt->fill, p, n);
		bt->fill += n;
		p += n;
		len -= n;
		while (bt->fill - bt->cut >= b->s->p.chunk_max) {
			size_t c = lb_cdc_cut(&b->s->cdc, bt->buf + bt->cut, bt->fill - bt->cut, 0);
			int r = add_item(b, c);
			if (r < 0)
				return fail(b, r);
		}
		if (bt->cut >= BATCH_TARGET) {
			int r = switch_batch(b);
			if (r < 0)
				return fail(b, r);
		}
	}
	return 0;
}

int lb_backup_file_set_layout(struct lb_backup *b, uint64_t size, const struct lb_extent *ext, size_t n)
{
	if (b->failed)
		return b->failed;
	if (!b->in_file)
		return -EINVAL;
	struct lb_entry *e = &b->files[b->nfiles - 1].e;
	struct lb_extent *copy = n ? lb_mallocarray(n, sizeof(*copy)) : NULL;
	if (n && !copy)
		return fail(b, -ENOMEM);
	if (n)
		memcpy(copy, ext, n * sizeof(*copy));
	free(e->extents);
	e->extents = copy;
	e->nextents = n;
	e->size = size;
	return 0;
}

int lb_backup_file_end(struct lb_backup *b)
{
	if (b->failed)
		return b->failed;
	if (!b->in_file)
		return -EINVAL;
	struct batch *bt = &b->bt[b->cur];
	while (bt->cut < bt->fill) {
		size_t c = lb_cdc_cut(&b->s->cdc, bt->buf + bt->cut, bt->fill - bt->cut, 1);
		int r = add_item(b, c);
		if (r < 0)
			return fail(b, r);
	}
	b->files[b->nfiles - 1].ended = 1;
	b->in_file = 0;
	b->st.files++;
	b->st.entries++;
	if (bt->cut >= BATCH_TARGET || b->nfiles >= MAX_PENDING_FILES) {
		int r = switch_batch(b);
		if (r < 0)
			return fail(b, r);
	}
	return 0;
}

int lb_backup_file_drop(struct lb_backup *b)
{
	if (b->failed)
		return b->failed;
	if (!b->in_file)
		return -EINVAL;
	/* Marked while still open: no batch can hand it to the manifest
	 * before it has ended. */
	struct pend_file *f = &b->files[b->nfiles - 1];
	uint64_t written = f->cut_off + (b->bt[b->cur].fill - b->bt[b->cur].cut);
	f->dropped = 1;
	int r = lb_backup_file_end(b);
	if (r < 0)
		return r;
	b->st.files--;
	b->st.entries--;
	b->st.logical -= LB_MIN(b->st.logical, written);
	return 0;
}

/* References a chunk the store holds (indexed, or appended to a pack not
 * yet sealed), as lb_store_put_chunk does for data it already has.  Returns
 * 1 with its stored size and kind, or 0 when the store does not hold it. */
static int ref_held_chunk(struct lb_store *s, const struct lb_id *id, uint32_t size, uint32_t *stored,
			  int *is_delta)
{
	struct lb_pack_entry e;
	if (index_ref(s, id, &e)) {
		*stored = e.stored;
		*is_delta = e.codec == LB_CODEC_ZSTD_DELTA;
		return e.raw == size;
	}
	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct pnode *n = pfind(s, id);
		if (!n)
			break;
		if (n->state == PN_APPENDED) {
			*stored = n->stored;
			*is_delta = n->nbases > 0;
			struct lb_id bases[LB_BLOB_MAX_BASES];
			unsigned nb = n->nbases;
			memcpy(bases, n->bases, nb * sizeof(*bases));
			pthread_mutex_unlock(&s->mu);
			return ref_pending_chains(s, id, bases, nb) == 0;
		}
		pthread_cond_wait(&s->cv, &s->mu);
	}
	int held = index_ref(s, id, &e) && e.raw == size;
	pthread_mutex_unlock(&s->mu);
	if (held) {
		*stored = e.stored;
		*is_delta = e.codec == LB_CODEC_ZSTD_DELTA;
	}
	return held;
}

int lb_backup_file_prefix(struct lb_backup *b, const struct lb_chunkref *c, size_t n)
{
	if (b->failed)
		return b->failed;
	struct pend_file *f = b->in_file ? &b->files[b->nfiles - 1] : NULL;
	if (!f || f->e.nchunks || f->pending || f->cut_off || b->bt[b->cur].fill != b->bt[b->cur].cut)
		return -EINVAL;
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t stored;
		int is_delta;
		if (!ref_held_chunk(b->s, &c[i].id, c[i].size, &stored, &is_delta)) {
			lb_set_error("%s: a chunk of the interrupted transfer is no longer in the store", f->e.path);
			return -ENOENT;
		}
		/* Charged like data sent now: no snapshot of the tenant holds it. */
		int r = account(b, &c[i].id, stored, is_delta);
		if (r < 0)
			return fail(b, r);
		bytes += c[i].size;
	}
	int r = lb_grow(&f->e.chunks, &f->chunk_cap, n, sizeof(*f->e.chunks));
	if (r < 0)
		return fail(b, r);
	memcpy(f->e.chunks, c, n * sizeof(*c));
	f->e.nchunks = n;
	f->cut_off = bytes;
	b->st.logical += bytes;
	b->st.chunks += n;
	return 0;
}

int lb_backup_file_partial(struct lb_backup *b, char **path, struct lb_chunkref **c, size_t *n)
{
	*path = NULL;
	*c = NULL;
	*n = 0;
	if (b->failed || !b->in_file)
		return 0;
	/* Store every chunk cut so far; the uncut tail is lost. */
	int r = drain(b);
	if (r < 0)
		return fail(b, r);
	const struct pend_file *f = &b->files[b->nfiles - 1];
	if (f->e.nchunks == 0)
		return 0;
	*path = strdup(f->e.path);
	*c = lb_mallocarray(f->e.nchunks, sizeof(**c));
	if (!*path || !*c) {
		free(*path);
		free(*c);
		*path = NULL;
		*c = NULL;
		return -ENOMEM;
	}
	memcpy(*c, f->e.chunks, f->e.nchunks * sizeof(**c));
	*n = f->e.nchunks;
	return 1;
}

static int tree_put(void *arg, const void *data, size_t len, struct lb_id *id)
{
	struct lb_backup *b = arg;
	int is_new;
	uint32_t stored;
	lb_sha256(data, len, id);
	int r = lb_store_put_blob(b->s, LB_BLOB_TREE, id, data, len, &is_new, &stored);
	if (r == 0 && is_new) {
		b->st.new_chunks++;
		b->st.new_stored += stored;
	}
	if (r == 0)
		r = account(b, id, stored, 0);
	return r;
}

int lb_backup_settle(struct lb_backup *b)
{
	if (b->failed)
		return b->failed;
	if (b->in_file)
		return -EINVAL;
	int r = drain(b);
	return r < 0 ? fail(b, r) : 0;
}

int lb_backup_commit(struct lb_backup *b, struct lb_snapshot **out)
{
	struct lb_store *s = b->s;
	if (b->failed)
		return b->failed;
	if (b->in_file)
		return fail(b, -EINVAL);
	int r = drain(b);
	if (r < 0)
		return fail(b, r);
	struct lb_snapshot snap = { 0 };
	r = lb_mwriter_finish(b->mw, tree_put, b, &snap.tree, &snap.ntree, &snap.nentries);
	if (r == 0 && lb_mwriter_spilled(b->mw))
		lb_notice(0, "backup of %s/%s: its manifest of %llu entries went through %.1f MiB of sorted runs on disk",
			  b->tenant, b->dataset, (unsigned long long)snap.nentries,
			  (double)lb_mwriter_spilled(b->mw) / (1 << 20));
	if (r < 0)
		return fail(b, r);
	for (size_t i = 0; i < snap.ntree; i++)
		snap.tree_bytes += snap.tree[i].size;
	/* Data and tree blobs durable and indexed before the head exists. */
	r = lb_store_flush(s);
	pthread_mutex_lock(&s->mu);
	if (r == 0 && s->fail_epoch != b->epoch) {
		lb_set_error("a concurrent write failure lost chunks this backup depends on");
		r = -EIO;
	}
	pthread_mutex_unlock(&s->mu);
	struct lb_buf head;
	lb_buf_init(&head);
	if (r == 0) {
		snap.tenant = b->tenant;
		snap.dataset = b->dataset;
		snap.host = b->host;
		snap.time_ns = b->time_ns;
		snap.tags = b->tags;
		snap.ntags = b->ntags;
		snap.nfiles = b->st.files;
		snap.logical = b->st.logical;
		snap.new_chunks = b->st.new_chunks;
		snap.new_stored = b->st.new_stored;
		r = lb_snapshot_encode(&snap, &head);
	}
	char name[256];
	if (r == 0) {
		lb_snapshot_object_name(&snap, name, sizeof(name));
		r = lb_backend_put(s->be, name, head.p, head.len);
	}
	lb_buf_free(&head);
	struct lb_snapshot *copy = NULL;
	if (r == 0) {
		copy = lb_snapshot_dup(&snap);
		if (!copy)
			r = -ENOMEM;
	}
	lb_tree_refs_free(snap.tree, snap.ntree);
	if (r < 0)
		return fail(b, r);
	pthread_mutex_lock(&s->cat_mu);
	r = catalog_add_locked(s, copy);
	pthread_mutex_unlock(&s->cat_mu);
	if (r < 0) {
		lb_snapshot_free(copy);
		return fail(b, r);
	}
	/* Charge the tenant exactly: the snapshot exists now. */
	pthread_mutex_lock(&s->usage_mu);
	int ru = lb_usage_add(s->usage, s, copy);
	pthread_mutex_unlock(&s->usage_mu);
	if (ru < 0)
		return fail(b, ru);
	b->failed = -EALREADY; /* committed: no further use */
	if (out) {
		*out = lb_snapshot_dup(copy);
		if (!*out)
			return -ENOMEM;
	}
	return 0;
}

void lb_backup_free(struct lb_backup *b)
{
	if (!b)
		return;
	for (int i = 0; i < 2; i++) {
		if (b->bt[i].job)
			lb_job_wait(b->s->pool, b->bt[i].job);
		free(b->bt[i].items);
	}
	void *bufs[2] = { b->bt[0].buf, b->bt[1].buf };
	batch_bufs_put(b->s, bufs, 2);
	for (size_t i = 0; i < b->nfiles; i++)
		pend_file_clear(&b->files[i]);
	free(b->files);
	if (b->counted_gen) {
		struct lb_store *s = b->s;
		pthread_mutex_lock(&s->mu);
		if (b->gen == s->bk_gen)
			s->bk_cur--;
		else
			s->bk_old--;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	lb_mwriter_free(b->mw);
	lb_mindex_free(b->prev);
	lb_idset_free(b->counted);
	pthread_mutex_destroy(&b->mu);
	for (size_t i = 0; i < b->ntags; i++)
		free(b->tags[i]);
	free(b->tags);
	free(b->tenant);
	free(b->dataset);
	free(b->host);
	free(b);
}

/* ---- reading ------------------------------------------------------------------ */

/* A thread's buffer for the stored form of a chunk. */
static struct lb_thread_buf scratch_tb = LB_THREAD_BUF_INIT;

int lb_store_decode_plain(struct lb_store *s, const struct lb_pack_id *pid, const struct lb_pack_entry *pe,
			  uint8_t *dst, int *checked)
{
	*checked = 0;
	char hex[LB_ID_HEX], pname[96];
	uint8_t *sc = lb_thread_buf(&scratch_tb, lb_blob_buf_size(pe));
	if (!sc)
		return -ENOMEM;
	struct lb_blob blob;
	int r = lb_blob_get(s->be, pid, pe, sc, &blob);
	if (r < 0)
		return r;
	r = lb_decompress(pe->codec, blob.payload, blob.stored, dst, pe->raw);
	if (r < 0) {
		lb_pack_name(pid, pname, sizeof(pname));
		lb_set_error("chunk %s in pack %s at offset %u: cannot decode (%s)", lb_id_hex(&pe->id, hex),
			     pname, pe->offset, r == -ENOTSUP ? "unknown codec" : "corrupt payload");
		return r == -ENOMEM ? r : -EBADMSG;
	}
	*checked = pe->codec == LB_CODEC_ZSTD && lb_zstd_checked(blob.payload, blob.stored);
	return 0;
}

/* A chunk whose frame checked it is not hashed again (codec.h): its blob's
 * header names the id, its CRC covers the stored bytes, the frame's
 * checksum the decoded ones.  Chunks stored raw or before frames carried
 * checksums are hashed against their id. */
int lb_store_read_chunk(struct lb_store *s, const struct lb_id *id, uint8_t *buf, uint32_t size)
{
	int checked;
	int r = lb_store_rebuild_chunk(s, id, buf, size, &checked);
	if (r < 0 || checked)
		return r;
	struct lb_id got;
	lb_sha256(buf, size, &got);
	if (lb_id_cmp(&got, id) != 0) {
		char hex[LB_ID_HEX], pname[96] = "?";
		struct lb_pack_id pid;
		struct lb_pack_entry e = { .offset = 0 };
		if (lb_index_lookup(s->idx, id, &pid, &e))
			lb_pack_name(&pid, pname, sizeof(pname));
		lb_set_error("chunk %s in pack %s at offset %u: content does not match its id",
			     lb_id_hex(id, hex), pname, e.offset);
		return -EBADMSG;
	}
	return 0;
}

struct rf_item {
	const struct lb_entry *e;
	size_t chunk; /* index in e->chunks, or SIZE_MAX for "no data" */
	size_t off;   /* in the batch buffer */
	uint64_t foff; /* of the chunk in its file's data stream */
	int last;     /* last piece of e */
	int err;
};

struct rf_batch {
	struct lb_store *s;
	struct rf_item *items;
	size_t n, cap;
	uint8_t *buf;
	size_t bufcap, fill;
	struct lb_job *job;
	char detail[256];
	pthread_mutex_t mu;
};

static void rf_job(void *arg, size_t i)
{
	struct rf_batch *b = arg;
	/* Threads take items alternately; mapping the k-th taken to the two
	 * halves in turn gives each thread a run of neighbouring chunks, so
	 * that two threads seldom wait on the same delta base. */
	size_t half = (b->n + 1) / 2;
	i = i % 2 ? half + i / 2 : i / 2;
	struct rf_item *it = &b->items[i];
	if (it->chunk == SIZE_MAX)
		return;
	const struct lb_chunkref *c = &it->e->chunks[it->chunk];
	it->err = lb_store_read_chunk(b->s, &c->id, b->buf + it->off, c->size);
	if (it->err < 0) {
		pthread_mutex_lock(&b->mu);
		if (!b->detail[0])
			snprintf(b->detail, sizeof(b->detail), "%s", lb_error_detail());
		pthread_mutex_unlock(&b->mu);
	}
}

struct rf_state {
	lb_next_file_fn next;
	void *arg;
	const struct lb_entry *cur; /* entry being split into items */
	size_t chunk;               /* next chunk of cur */
	uint64_t foff;              /* where it starts in cur's stream */
	size_t target;              /* bytes of chunks a batch gathers */
	int eof;
};

/* Fills a batch with up to st->target bytes of chunks, pulling entries. */
static int rf_gather(struct rf_state *st, struct rf_batch *b)
{
	b->n = 0;
	b->fill = 0;
	b->detail[0] = '\0';
	while (b->fill < st->target) {
		if (!st->cur) {
			if (st->eof)
				break;
			int r = st->next(st->arg, &st->cur);
			if (r < 0)
				return r;
			if (r == 0) {
				st->eof = 1;
				break;
			}
			st->chunk = 0;
			st->foff = 0;
		}
		int r = lb_grow(&b->items, &b->cap, b->n + 1, sizeof(*b->items));
		if (r < 0)
			return r;
		struct rf_item *it = &b->items[b->n];
		*it = (struct rf_item){ .e = st->cur, .chunk = SIZE_MAX, .off = b->fill };
		if (st->cur->nchunks > 0) {
			size_t size = st->cur->chunks[st->chunk].size;
			if (b->fill + size > b->bufcap) {
				/* Grown as batches fill (a one-chunk read never
				 * holds a whole batch's room), only while the batch
				 * is not in flight. */
				size_t ncap = LB_MAX(b->bufcap * 2, b->fill + size);
				uint8_t *nb = realloc(b->buf, ncap);
				if (!nb) {
					lb_set_error("out of memory for a read batch of %zu bytes", ncap);
					return -ENOMEM;
				}
				b->buf = nb;
				b->bufcap = ncap;
			}
			it->chunk = st->chunk++;
			it->foff = st->foff;
			st->foff += size;
			b->fill += size;
		}
		b->n++;
		if (st->chunk >= st->cur->nchunks) {
			it->last = 1;
			st->cur = NULL;
		}
	}
	return 0;
}

static int rf_deliver(struct rf_batch *b, lb_file_data_fn data, lb_file_done_fn done, lb_file_lost_fn lost,
		      void *arg)
{
	for (size_t i = 0; i < b->n; i++) {
		struct rf_item *it = &b->items[i];
		if (it->err < 0 && lost && it->chunk != SIZE_MAX) {
			/* Salvage: say what is lost and hand on zeros in its place,
			 * so that the rest of the file keeps its offsets. */
			const struct lb_chunkref *c = &it->e->chunks[it->chunk];
			char hex[2 * LB_ID_LEN + 1];
			lb_hex(hex, c->id.b, LB_ID_LEN);
			int r = lost(arg, it->e, it->foff, c->size, hex);
			if (r < 0)
				return r;
			memset(b->buf + it->off, 0, c->size);
			it->err = 0;
		}
		if (it->err < 0) {
			lb_set_error("%s", b->detail);
			return it->err;
		}
		int r = 0;
		if (it->chunk != SIZE_MAX)
			r = data(arg, it->e, b->buf + it->off, it->e->chunks[it->chunk].size);
		if (r == 0 && it->last)
			r = done(arg, it->e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_files(struct lb_store *s, size_t target, lb_next_file_fn next, lb_file_data_fn data,
		      lb_file_done_fn done, lb_file_lost_fn lost, void *arg);

int lb_store_read_files(struct lb_store *s, lb_next_file_fn next, lb_file_data_fn data,
			lb_file_done_fn done, void *arg)
{
	return read_files(s, BATCH_TARGET, next, data, done, NULL, arg);
}

int lb_store_read_files_salvage(struct lb_store *s, lb_next_file_fn next, lb_file_data_fn data,
				lb_file_done_fn done, lb_file_lost_fn lost, void *arg)
{
	return read_files(s, BATCH_TARGET, next, data, done, lost, arg);
}

#define RF_FIRST_BATCH (1u << 20)
/* Batches of a read in flight at once.  Three where there were two: a
 * restore of everything 1522-1622 -> 1422-1509 ms and one file 86-96 ->
 * 81-84 ms (bench/RESULTS.md, "Three read batches"), for 4 MiB more while
 * a restore runs. */
#define RF_DEPTH 3

static int read_files(struct lb_store *s, size_t target, lb_next_file_fn next, lb_file_data_fn data,
		      lb_file_done_fn done, lb_file_lost_fn lost, void *arg)
{
	struct rf_batch bt[RF_DEPTH];
	memset(bt, 0, sizeof(bt));
	/* The first batches are small, so that the first bytes go out soon: a
	 * file is written while the rest of it is decoded. */
	size_t full = LB_MIN(target, (size_t)BATCH_TARGET);
	struct rf_state st = { .next = next, .arg = arg, .target = LB_MIN(full, (size_t)RF_FIRST_BATCH) };
	int r = 0, gathered_all = 0;
	size_t head = 0, inflight = 0; /* head: the oldest batch in flight */
	for (int i = 0; i < RF_DEPTH; i++) {
		bt[i].s = s;
		pthread_mutex_init(&bt[i].mu, NULL);
	}
	/* Up to RF_DEPTH batches are in flight: while this thread hands the
	 * oldest on (and waits on a slow reader), the pool decodes the ones
	 * after it; waiting for the oldest, this thread works on the next. */
	for (;;) {
		while (r == 0 && !gathered_all && inflight < RF_DEPTH) {
			struct rf_batch *b = &bt[(head + inflight) % RF_DEPTH];
			r = rf_gather(&st, b);
			if (r == 0 && b->n == 0)
				gathered_all = 1;
			if (r < 0 || gathered_all)
				break;
			r = lb_job_submit(s->pool, b->n, rf_job, b, &b->job);
			if (r < 0)
				break;
			inflight++;
			st.target = LB_MIN(full, 2 * st.target);
		}
		if (inflight == 0)
			break;
		struct rf_batch *old = &bt[head];
		struct lb_job *also = inflight > 1 ? bt[(head + 1) % RF_DEPTH].job : NULL;
		lb_job_wait_also(s->pool, old->job, also);
		old->job = NULL;
		if (r == 0)
			r = rf_deliver(old, data, done, lost, arg);
		old->n = 0;
		head = (head + 1) % RF_DEPTH;
		inflight--;
	}
	for (int i = 0; i < RF_DEPTH; i++) {
		if (bt[i].job)
			lb_job_wait(s->pool, bt[i].job);
		free(bt[i].items);
		free(bt[i].buf);
		pthread_mutex_destroy(&bt[i].mu);
	}
	return r;
}

struct one_file {
	const struct lb_entry *e;
	int given;
	lb_sink_fn sink;
	void *arg;
};

static int one_next(void *arg, const struct lb_entry **e)
{
	struct one_file *o = arg;
	if (o->given)
		return 0;
	o->given = 1;
	*e = o->e;
	return 1;
}

static int one_data(void *arg, const struct lb_entry *e, const void *data, size_t len)
{
	struct one_file *o = arg;
	(void)e;
	return o->sink(o->arg, data, len);
}

static int one_done(void *arg, const struct lb_entry *e)
{
	(void)arg;
	(void)e;
	return 0;
}

/* A file read for a sink that does work of its own (a signature) reads
 * less ahead: two chunks a batch keep the pool's threads busy, where a
 * restore's batches (8 MiB then) made the daemon's peak memory (two
 * batches of up to 12 MiB, held beside a backup's own buffers). */
#define READ_FILE_TARGET (2u << 20)

int lb_store_read_file(struct lb_store *s, const struct lb_entry *e, lb_sink_fn sink, void *arg)
{
	struct one_file o = { .e = e, .sink = sink, .arg = arg };
	return read_files(s, READ_FILE_TARGET, one_next, one_data, one_done, NULL, &o);
}

static int tree_get(void *arg, const struct lb_id *id, uint32_t size, uint8_t **data)
{
	struct lb_store *s = arg;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	int r = lb_store_read_chunk(s, id, buf, size);
	if (r < 0) {
		free(buf);
		return r;
	}
	*data = buf;
	return 0;
}

struct lb_mreader *lb_store_refs_reader(struct lb_store *s, const struct lb_tree_ref *refs, size_t n)
{
	return lb_mreader_new(refs, n, tree_get, s);
}

struct lb_mreader *lb_store_tree_reader(struct lb_store *s, const struct lb_snapshot *snap)
{
	return lb_store_refs_reader(s, snap->tree, snap->ntree);
}

int lb_store_load_tree(struct lb_store *s, const struct lb_snapshot *snap, struct lb_mindex **out)
{
	return lb_mindex_load(snap->tree, snap->ntree, tree_get, s, out);
}

int lb_store_lookup(struct lb_store *s, const struct lb_snapshot *snap, const char *path, struct lb_entry *e)
{
	return lb_manifest_lookup(snap->tree, snap->ntree, tree_get, s, path, e);
}
