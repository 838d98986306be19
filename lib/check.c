/* check.c - verification of a store: packs against the index, snapshots
 * against the chunks they need, and (with read_data) every stored byte. */
#include "config.h"

#include "buf.h"
#include "codec.h"
#include "idset.h"
#include "index.h"
#include "pack.h"
#include "pool.h"
#include "store_internal.h"
#include "usage.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

struct footer_ent {
	struct lb_pack_id pack;
	struct lb_pack_entry e;
};

struct ck {
	struct lb_store *s;
	lb_problem_fn problem;
	void *arg;
	struct lb_check_result *res;
	pthread_mutex_t mu;
	struct lb_pack_id *packs;
	size_t npacks, cappacks;
	struct footer_ent *fe;
	size_t nfe, capfe;
	struct lb_idset *bad;     /* damaged or missing chunks */
	/* Delta chunks whose chains were followed: all there, or leading to
	 * a bad chunk (trace). */
	struct lb_idset *chains_ok, *chains_bad;
};

static void report(struct ck *c, const char *kind, const char *fmt, ...) LB_PRINTF(3, 4);
static void report(struct ck *c, const char *kind, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->mu);
	c->res->errors++;
	if (c->problem)
		c->problem(c->arg, kind, line);
	pthread_mutex_unlock(&c->mu);
}

static int mark_bad(struct ck *c, const struct lb_id *id)
{
	pthread_mutex_lock(&c->mu);
	int r = lb_idset_add(c->bad, id);
	pthread_mutex_unlock(&c->mu);
	return r < 0 ? r : 0;
}

static int list_pack_cb(void *arg, const char *name, uint64_t size)
{
	struct ck *c = arg;
	struct lb_pack_id id;
	(void)size;
	if (lb_pack_parse_name(name, &id) < 0) {
		report(c, "pack", "%s: unexpected object in packs/", name);
		return 0;
	}
	int r = lb_grow(&c->packs, &c->cappacks, c->npacks + 1, sizeof(*c->packs));
	if (r < 0)
		return r;
	c->packs[c->npacks++] = id;
	return 0;
}

static int fe_cmp(const void *a, const void *b)
{
	const struct footer_ent *x = a, *y = b;
	int r = lb_id_cmp(&x->e.id, &y->e.id);
	if (r)
		return r;
	r = memcmp(x->pack.b, y->pack.b, LB_PACK_ID_LEN);
	if (r)
		return r;
	return x->e.offset < y->e.offset ? -1 : x->e.offset > y->e.offset;
}

static int pack_id_cmp(const void *a, const void *b) { return memcmp(a, b, LB_PACK_ID_LEN); }

struct idx_walk {
	struct ck *c;
	uint64_t indexed_in_pack; /* index entries whose pack exists */
	struct lb_idset *used_packs;
};

static int index_entry_cb(void *arg, const struct lb_pack_id *pack, const struct lb_pack_entry *e)
{
	struct idx_walk *w = arg;
	struct ck *c = w->c;
	char hex[LB_ID_HEX], pname[96];
	lb_pack_name(pack, pname, sizeof(pname));
	if (!c->npacks || !bsearch(pack, c->packs, c->npacks, sizeof(*c->packs), pack_id_cmp)) {
		/* A backup stored the chunk again after its pack went missing:
		 * lookups find that newer copy, and this entry is a stale one. */
		struct lb_pack_id live;
		struct lb_pack_entry le;
		if (lb_index_lookup(c->s->idx, &e->id, &live, &le) && memcmp(live.b, pack->b, LB_PACK_ID_LEN) &&
		    bsearch(&live, c->packs, c->npacks, sizeof(*c->packs), pack_id_cmp))
			return 0;
		report(c, "index", "chunk %s: index names pack %s, which is missing",
		       lb_id_hex(&e->id, hex), pname);
		return mark_bad(c, &e->id);
	}
	struct footer_ent key = { .pack = *pack, .e = *e };
	struct footer_ent *f = c->nfe ? bsearch(&key, c->fe, c->nfe, sizeof(*c->fe), fe_cmp) : NULL;
	if (!f || lb_pack_entry_tail(&f->e) != lb_pack_entry_tail(e) || f->e.raw != e->raw || f->e.codec != e->codec ||
	    f->e.type != e->type) {
		report(c, "index", "chunk %s: index entry (pack %s offset %u) does not match the pack footer",
		       lb_id_hex(&e->id, hex), pname, e->offset);
		return mark_bad(c, &e->id);
	}
	/* Mark the pack as referenced by the index (keyed by a padded id). */
	struct lb_id pk = { { 0 } };
	memcpy(pk.b, pack->b, LB_PACK_ID_LEN);
	return lb_idset_add(w->used_packs, &pk) < 0 ? -ENOMEM : 0;
}

static int check_structure(struct ck *c)
{
	struct lb_backend *be = c->s->be;
	int r = be->ops->list(be, "packs", list_pack_cb, c);
	if (r < 0)
		return r;
	if (c->npacks)
		qsort(c->packs, c->npacks, sizeof(*c->packs), pack_id_cmp);
	c->res->packs = c->npacks;
	for (size_t i = 0; i < c->npacks; i++) {
		struct lb_pack_entry *es;
		size_t n;
		r = lb_pack_read_footer(be, &c->packs[i], &es, &n);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			/* Torn, damaged, or unreadable (EIO from the disk): the
			 * pack is named and its chunks count as damaged. */
			c->res->torn_packs++;
			report(c, "pack", "%s", lb_error_detail());
			continue;
		}
		r = lb_grow(&c->fe, &c->capfe, c->nfe + n, sizeof(*c->fe));
		if (r < 0) {
			free(es);
			return r;
		}
		for (size_t k = 0; k < n; k++)
			c->fe[c->nfe++] = (struct footer_ent){ .pack = c->packs[i], .e = es[k] };
		free(es);
	}
	if (c->nfe)
		qsort(c->fe, c->nfe, sizeof(*c->fe), fe_cmp);
	struct idx_walk w = { .c = c, .used_packs = lb_idset_new() };
	if (!w.used_packs)
		return -ENOMEM;
	r = lb_index_foreach(c->s->idx, index_entry_cb, &w);
	c->res->chunks = lb_index_entries(c->s->idx);
	for (size_t i = 0; r == 0 && i < c->npacks; i++) {
		struct lb_id pk = { { 0 } };
		memcpy(pk.b, c->packs[i].b, LB_PACK_ID_LEN);
		if (!lb_idset_has(w.used_packs, &pk))
			c->res->unindexed_packs++; /* left by an interrupted backup */
	}
	lb_idset_free(w.used_packs);
	return r;
}

/* ---- read-data ------------------------------------------------------------ */

struct verify_ctx {
	struct ck *c;
	const struct lb_pack_id *pack;
	uint8_t *raw;
	size_t cap;
	uint64_t blobs; /* blobs the footer listed and the callback saw */
	uint64_t bad;   /* of which damaged */
};

static int base_indexed_cb(void *arg, const struct lb_id *id);

/* Whether a delta blob's chain leaves the store: one of its bases, or of
 * theirs, is no longer indexed.  GC keeps the chains of live chunks whole,
 * so such a blob is garbage left in a pack that still holds live chunks;
 * were its chunk live after all, the walk of the snapshots finds the gap
 * through the index and names it there. */
static int chain_gone(struct ck *c, const struct lb_pack_entry *e, const uint8_t *payload)
{
	if (e->nbases == 0 || e->nbases > LB_BLOB_MAX_BASES)
		return 0;
	const uint8_t *bases = payload - (size_t)e->nbases * LB_ID_LEN;
	for (unsigned i = 0; i < e->nbases; i++) {
		struct lb_id b;
		memcpy(b.b, bases + (size_t)i * LB_ID_LEN, LB_ID_LEN);
		if (lb_store_closure(c->s, &b, base_indexed_cb, c) == -EBADMSG)
			return 1;
	}
	return 0;
}

static int verify_blob_cb(void *arg, const struct lb_pack_entry *e, const uint8_t *payload)
{
	struct verify_ctx *v = arg;
	struct ck *c = v->c;
	char hex[LB_ID_HEX], pname[96];
	lb_pack_name(v->pack, pname, sizeof(pname));
	v->blobs++;
	if (!payload) {
		v->bad++;
		report(c, "chunk", "chunk %s in pack %s at offset %u: checksum mismatch",
		       lb_id_hex(&e->id, hex), pname, e->offset);
		return mark_bad(c, &e->id);
	}
	if (e->raw > v->cap) {
		uint8_t *nb = realloc(v->raw, e->raw);
		if (!nb)
			return -ENOMEM;
		v->raw = nb;
		v->cap = e->raw;
	}
	if (e->codec == LB_CODEC_ZSTD_DELTA) {
		/* A delta is rebuilt through its own bases (from whatever packs
		 * hold them) and checked against its id like any chunk; this
		 * very blob, not whichever copy the index names (a pack no index
		 * lists yet is checked the same way). */
		char where[200];
		snprintf(where, sizeof(where), "chunk %s in pack %s at offset %u", lb_id_hex(&e->id, hex), pname,
			 e->offset);
		int rr = lb_store_decode_delta_blob(c->s, e, payload, v->raw, where);
		if (rr == -ENOMEM)
			return rr;
		struct lb_id got;
		if (rr == 0) {
			lb_sha256(v->raw, e->raw, &got);
			if (lb_id_cmp(&got, &e->id) != 0) {
				lb_set_error("%s: content does not match its id", where);
				rr = -EBADMSG;
			}
		}
		if (rr < 0 && rr != -ENOMEM && chain_gone(c, e, payload))
			return 0;
		if (rr < 0) {
			v->bad++;
			report(c, "chunk", "%s", lb_error_detail());
			return mark_bad(c, &e->id);
		}
		return 0;
	}
	int r = lb_decompress(e->codec, payload, e->stored, v->raw, e->raw);
	struct lb_id got;
	if (r == 0) {
		lb_sha256(v->raw, e->raw, &got);
		if (lb_id_cmp(&got, &e->id) != 0)
			r = -EBADMSG;
	}
	if (r < 0) {
		v->bad++;
		report(c, "chunk", "chunk %s in pack %s at offset %u: content does not match its id",
		       lb_id_hex(&e->id, hex), pname, e->offset);
		return mark_bad(c, &e->id);
	}
	return 0;
}

struct verify_job {
	struct ck *c;
	size_t base; /* the first pack of this batch */
	int err;
};

static void verify_pack_job(void *arg, size_t i)
{
	struct verify_job *j = arg;
	struct ck *c = j->c;
	i += j->base;
	struct verify_ctx v = { .c = c, .pack = &c->packs[i] };
	int r = lb_pack_verify(c->s->be, &c->packs[i], verify_blob_cb, &v);
	free(v.raw);
	if (r == -EBADMSG && v.blobs > 0) {
		/* The footer was read and every blob was checked (and reported)
		 * one by one; damage found only by the whole-file checksum lies
		 * outside any chunk's data. */
		if (v.bad == 0 && strstr(lb_error_detail(), "file checksum"))
			report(c, "pack", "%s (outside any chunk's data)", lb_error_detail());
		return;
	}
	if (r < 0 && r != -ENOMEM) {
		/* Header, trailer or footer damaged, or the pack unreadable
		 * (EIO): every chunk the index places in this pack is lost. */
		report(c, "pack", "%s", lb_error_detail());
		pthread_mutex_lock(&c->mu);
		for (size_t k = 0; k < c->nfe; k++)
			if (memcmp(c->fe[k].pack.b, c->packs[i].b, LB_PACK_ID_LEN) == 0)
				lb_idset_add(c->bad, &c->fe[k].e.id);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (r < 0) {
		pthread_mutex_lock(&c->mu);
		if (!j->err)
			j->err = r;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	uint64_t size;
	char name[96];
	lb_pack_name(&c->packs[i], name, sizeof(name));
	if (c->s->be->ops->stat(c->s->be, name, &size) == 0) {
		pthread_mutex_lock(&c->mu);
		c->res->bytes_read += size;
		pthread_mutex_unlock(&c->mu);
	}
}

/* ---- snapshots -------------------------------------------------------------- */

static void snap_label(const struct lb_snapshot *snap, char *buf, size_t len)
{
	char hex[LB_SNAP_HEX], when[32];
	time_t t = (time_t)(snap->time_ns / 1000000000LL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(buf, len, "%s (%s/%s %s)", lb_snap_id_hex(snap->id, hex), snap->tenant, snap->dataset, when);
}

static int base_indexed_cb(void *arg, const struct lb_id *id)
{
	struct ck *c = arg;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	if (lb_index_lookup(c->s->idx, id, &pid, &pe))
		return 0;
	char hex[LB_ID_HEX];
	lb_set_error("its base chunk %s is missing from the store", lb_id_hex(id, hex));
	return -EBADMSG;
}

/* Checks once that every chunk of a delta's chains is indexed. */
static int check_chains(struct ck *c, const struct lb_id *id)
{
	int added = lb_idset_add(c->chains_ok, id);
	if (added <= 0)
		return added;
	int r = lb_store_closure(c->s, id, base_indexed_cb, c);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		char hex[LB_ID_HEX];
		if (!lb_idset_has(c->bad, id))
			report(c, "chunk", "delta chunk %s cannot be rebuilt: %s", lb_id_hex(id, hex),
			       lb_error_detail());
		return mark_bad(c, id);
	}
	return 0;
}

static int bad_base_cb(void *arg, const struct lb_id *id)
{
	struct ck *c = arg;
	return lb_idset_has(c->bad, id) ? -ECANCELED : 0;
}

/* Whether a chunk is bad or, being a delta, needs a bad chunk. */
static int chunk_tainted(struct ck *c, const struct lb_id *id)
{
	if (lb_idset_has(c->bad, id) || lb_idset_has(c->chains_bad, id))
		return 1;
	struct lb_pack_id pid;
	struct lb_pack_entry pe;
	if (!lb_index_lookup(c->s->idx, id, &pid, &pe) || pe.codec != LB_CODEC_ZSTD_DELTA)
		return 0;
	if (lb_idset_has(c->chains_ok, id) == 0)
		return 0;
	if (lb_store_closure(c->s, id, bad_base_cb, c) == -ECANCELED) {
		lb_idset_add(c->chains_bad, id);
		return 1;
	}
	return 0;
}

/* Walks every snapshot; with trace set, reports files using bad chunks
 * (or deltas built on them), otherwise checks that every referenced chunk
 * is indexed and that every delta's chains are complete. */
static int walk_snapshots(struct ck *c, int trace)
{
	struct lb_snapshot **list;
	size_t n;
	int r = lb_store_list_snapshots(c->s, NULL, NULL, &list, &n);
	if (r < 0)
		return r;
	if (!trace)
		c->res->snapshots = n;
	for (size_t i = 0; i < n; i++) {
		struct lb_snapshot *snap = list[i];
		char label[256];
		snap_label(snap, label, sizeof(label));
		int snap_bad = 0;
		for (size_t t = 0; t < snap->ntree; t++) {
			if (trace ? lb_idset_has(c->bad, &snap->tree[t].id) : 0)
				snap_bad = 1;
		}
		struct lb_mreader *mr = lb_store_tree_reader(c->s, snap);
		if (!mr) {
			r = -ENOMEM;
			break;
		}
		struct lb_entry e;
		int rr;
		while ((rr = lb_mreader_next(mr, &e)) == 1) {
			if (!trace && e.type == LB_FT_REG)
				c->res->files++;
			int file_bad = 0;
			for (size_t k = 0; k < e.nchunks && r == 0; k++) {
				const struct lb_id *id = &e.chunks[k].id;
				if (trace) {
					if (!file_bad && chunk_tainted(c, id))
						file_bad = 1;
					continue;
				}
				struct lb_pack_id pid;
				struct lb_pack_entry pe;
				if (!lb_index_lookup(c->s->idx, id, &pid, &pe) || pe.raw != e.chunks[k].size) {
					char hex[LB_ID_HEX];
					if (!lb_idset_has(c->bad, id))
						report(c, "chunk", "chunk %s is missing from the store",
						       lb_id_hex(id, hex));
					mark_bad(c, id);
				} else if (pe.codec == LB_CODEC_ZSTD_DELTA) {
					r = check_chains(c, id);
				}
			}
			if (file_bad)
				report(c, "file", "snapshot %s: file %s is damaged", label, e.path);
			lb_entry_clear(&e);
			if (r < 0)
				break;
		}
		lb_mreader_free(mr);
		if (r < 0)
			break;
		if (rr < 0) {
			if (!trace || !snap_bad)
				report(c, "snapshot", "snapshot %s: manifest unreadable: %s", label, lb_error_detail());
			else
				report(c, "snapshot", "snapshot %s: manifest is damaged; its files cannot all be listed", label);
		}
	}
	lb_snapshot_list_free(list, n);
	return r;
}

static int check_locked(struct lb_store *s, const struct lb_check_options *o, lb_problem_fn problem, void *arg,
			struct lb_check_result *res);

int lb_store_check(struct lb_store *s, int read_data, lb_problem_fn problem, void *arg,
		   struct lb_check_result *res)
{
	struct lb_check_options o = { .read_data = read_data };
	return lb_store_check_opts(s, &o, problem, arg, res);
}

int lb_store_check_opts(struct lb_store *s, const struct lb_check_options *o, lb_problem_fn problem, void *arg,
			struct lb_check_result *res)
{
	memset(res, 0, sizeof(*res));
	/* A collection deletes packs: check waits for it rather than report
	 * them missing. */
	pthread_mutex_lock(&s->gc_mu);
	int rc = check_locked(s, o, problem, arg, res);
	pthread_mutex_unlock(&s->gc_mu);
	return rc;
}

/* ---- the resumable read-data pass ------------------------------------------ */

#define VERIFY_OBJECT "verify"

struct verify_state {
	int have_next;
	struct lb_pack_id next; /* the first pack id not yet read in this pass */
	int64_t pass_started, last_pass_done; /* seconds, 0 none */
};

/* Reads the position; a missing or unreadable object starts a new pass
 * (it is only a bookmark: losing it costs rereading, never a check). */
static void verify_load(struct lb_backend *be, struct verify_state *v)
{
	memset(v, 0, sizeof(*v));
	uint8_t *text;
	size_t len;
	if (lb_backend_read_all(be, VERIFY_OBJECT, 4096, &text, &len) < 0)
		return;
	for (char *line = (char *)text, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		char hex[64];
		long long t;
		if (sscanf(line, "next = %40s", hex) == 1 && strlen(hex) == 2 * LB_PACK_ID_LEN &&
		    lb_unhex(v->next.b, hex, LB_PACK_ID_LEN) == 0)
			v->have_next = 1;
		else if (sscanf(line, "pass_started = %lld", &t) == 1 && t >= 0)
			v->pass_started = t;
		else if (sscanf(line, "last_pass_done = %lld", &t) == 1 && t >= 0)
			v->last_pass_done = t;
	}
	free(text);
}

static int verify_save(struct lb_backend *be, const struct verify_state *v)
{
	char hex[2 * LB_PACK_ID_LEN + 1] = "";
	if (v->have_next)
		lb_hex(hex, v->next.b, LB_PACK_ID_LEN);
	char text[512];
	int n = snprintf(text, sizeof(text),
			 "# Where lumbung check --read-data --max-duration resumes.  Rewritten by each run.\n"
			 "next = %s\npass_started = %lld\nlast_pass_done = %lld\n",
			 hex, (long long)v->pass_started, (long long)v->last_pass_done);
	return be->ops->replace(be, VERIFY_OBJECT, text, (size_t)n);
}

/* Reads packs [from, to) in batches of a few per worker; stops early once
 * deadline (monotonic ns, 0 none) has passed.  Returns the pack after the
 * last one read in *end. */
static int verify_range(struct ck *c, size_t from, size_t to, int64_t deadline, size_t *end)
{
	size_t batch = 4 * (size_t)lb_pool_size(lb_store_pool(c->s));
	size_t at = from;
	int r = 0;
	while (r == 0 && at < to) {
		size_t n = deadline ? LB_MIN(batch, to - at) : to - at;
		struct verify_job j = { .c = c, .base = at };
		r = lb_pool_run(lb_store_pool(c->s), n, verify_pack_job, &j);
		if (r == 0)
			r = j.err;
		at += n;
		c->res->packs_read += n;
		if (deadline && lb_mono_ns() >= deadline)
			break;
	}
	*end = at;
	return r;
}

static int read_data_pass(struct ck *c, const struct lb_check_options *o)
{
	struct lb_backend *be = c->s->be;
	struct verify_state v;
	verify_load(be, &v);
	int64_t now = lb_now_ns() / 1000000000LL;
	size_t from = 0, end; /* c->packs is sorted by id (check_structure) */
	if (o->max_ns && v.have_next) {
		while (from < c->npacks && memcmp(c->packs[from].b, v.next.b, LB_PACK_ID_LEN) < 0)
			from++;
	} else {
		v.pass_started = now;
	}
	int64_t deadline = o->max_ns ? lb_mono_ns() + o->max_ns : 0;
	int r = verify_range(c, from, c->npacks, deadline, &end);
	if (r < 0)
		return r;
	if (end >= c->npacks) {
		c->res->pass_done = 1;
		v.have_next = 0;
		v.last_pass_done = lb_now_ns() / 1000000000LL;
		c->res->pass_position = c->npacks;
	} else {
		v.have_next = 1;
		v.next = c->packs[end];
		c->res->pass_position = end;
	}
	c->res->pass_total = c->npacks;
	c->res->last_full_pass = v.last_pass_done * 1000000000LL;
	int rs = verify_save(be, &v);
	if (rs < 0) {
		lb_set_error("cannot record where the read-data pass stands (%s): the next run starts over",
			     strerror(-rs));
		report(c, "store", "%s", lb_error_detail());
	}
	return 0;
}

static int check_locked(struct lb_store *s, const struct lb_check_options *o, lb_problem_fn problem, void *arg,
			struct lb_check_result *res)
{
	struct ck c = { .s = s, .problem = problem, .arg = arg, .res = res };
	pthread_mutex_init(&c.mu, NULL);
	c.bad = lb_idset_new();
	c.chains_ok = lb_idset_new();
	c.chains_bad = lb_idset_new();
	int r = c.bad && c.chains_ok && c.chains_bad ? 0 : -ENOMEM;
	/* Make every chunk of finished backups visible before looking. */
	if (r == 0)
		r = lb_store_flush(s);
	char **damaged;
	size_t nd = lb_store_damaged_heads(s, &damaged);
	for (size_t i = 0; r == 0 && i < nd; i++)
		report(&c, "snapshot", "snapshot head %s is damaged", damaged[i]);
	if (r == 0)
		r = check_structure(&c);
	if (r == 0 && o->read_data)
		r = read_data_pass(&c, o);
	if (r == 0)
		r = walk_snapshots(&c, 0);
	if (r == 0 && lb_idset_count(c.bad) > 0)
		r = walk_snapshots(&c, 1);
	if (r == 0) {
		/* The charges kept up to date by every backup must equal a
		 * recount from the snapshots alone. */
		struct lb_usage *fresh;
		r = lb_store_recount_usage(s, &fresh);
		if (r == 0) {
			const char *t = NULL;
			pthread_mutex_lock(&s->usage_mu);
			int eq = lb_usage_equal(s->usage, fresh, &t);
			if (!eq) {
				struct lb_tenant_usage a, b2;
				lb_usage_get(s->usage, t, &a);
				lb_usage_get(fresh, t, &b2);
				report(&c, "usage", "tenant %s: charged %llu bytes, but its snapshots add up to %llu", t,
				       (unsigned long long)a.charged, (unsigned long long)b2.charged);
				res->usage_mismatch++;
			}
			pthread_mutex_unlock(&s->usage_mu);
			lb_usage_free(fresh);
		}
	}
	lb_idset_free(c.bad);
	lb_idset_free(c.chains_ok);
	lb_idset_free(c.chains_bad);
	free(c.packs);
	free(c.fe);
	pthread_mutex_destroy(&c.mu);
	if (r < 0)
		return r;
	return res->errors ? -EBADMSG : 0;
}
