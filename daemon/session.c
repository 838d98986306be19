/* session.c - one client connection: the request handlers.
 *
 * Every request names a tenant ("" = the caller's only tenant); a tenant the
 * caller does not act for is treated exactly like one that does not exist,
 * so that no answer tells one OPD anything about another. */
#include "audit.h"
#include "calendar.h"
#include "daemon.h"
#include "log.h"
#include "proto.h"
#include "records.h"
#include "transfer.h"
#include "usage.h"
#include "util.h"

#include <stdio.h>
#include <time.h>

struct session {
	struct daemon *d;
	int fd;
	const struct identity *id;
	struct cfg_ref *cfg;
	struct lb_frame f;
	char peer[96];
	/* What the current request touched, for the audit trail. */
	char au_tenant[LB_NAME_MAX + 1];
	char au_object[1024];
	char au_detail[1024];
	uint64_t au_bytes;
	int au_result;
	const char *au_verb; /* the request being served, NULL when none */
	int au_pending;      /* its record is not written yet */
};

/* Writes the current request's audit record (once).  Called just before the
 * answer that ends the request, so that whoever has seen the answer finds
 * the record. */
static void audit_now(struct session *s, int result)
{
	if (!s->au_pending)
		return;
	s->au_pending = 0;
	daemon_audit(s->d, s->id, s->au_tenant, s->au_verb, s->au_object, result < 0 ? -result : result,
		     s->au_detail, s->au_bytes);
}

static void au_object(struct session *s, const char *fmt, ...) LB_PRINTF(2, 3);
static void au_object(struct session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->au_object, sizeof(s->au_object), fmt, ap);
	va_end(ap);
}

/* Records the tenant a request touched, but only one the caller acts for:
 * another tenant's members must not see who probed their names. */
static void au_tenant(struct session *s, const char *t)
{
	if (t && *t && !identity_may(s->id, t))
		t = "";
	snprintf(s->au_tenant, sizeof(s->au_tenant), "%s", t ? t : "");
}

/* 1 when r says the client is gone or stalled: it hung up, or a send made
 * no progress for client_timeout (-EAGAIN from SO_SNDTIMEO).  Nothing more
 * can be said to it (an ERROR would wait out the timeout once more), and
 * the connection ends. */
static int client_gone(int r)
{
	return r == -EPIPE || r == -ECONNRESET || r == -EAGAIN;
}

/* The END that closes a request's answer (after its audit record). */
static int send_end(struct session *s)
{
	audit_now(s, s->au_result);
	return lb_frame_send(s->fd, LB_MSG_END, NULL, 0);
}

static int reply_error(struct session *s, int code, const char *fmt, ...) LB_PRINTF(3, 4);
static int reply_error(struct session *s, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("%s: refused: %s", s->peer, msg);
	s->au_result = code;
	snprintf(s->au_detail, sizeof(s->au_detail), "%s", msg);
	audit_now(s, code);
	int r = lb_frame_send_error(s->fd, code, "%s", msg);
	/* After a malformed request nothing more is read from this client. */
	return code == EPROTO ? -EPROTO : r;
}

/* Picks the tenant a request acts for: the named one if the caller may act
 * for it, else the caller's only tenant.  NULL with an error sent. */
static const char *pick_tenant(struct session *s, const char *want, const char *what)
{
	if (*want) {
		if (identity_may(s->id, want))
			return want;
		reply_error(s, ENOENT, "%s not found", what);
		return NULL;
	}
	if (s->id->ntenants == 1 && !s->id->admin)
		return s->id->tenants[0];
	reply_error(s, EINVAL, "name the tenant (--tenant or TENANT/NAME): you act for %zu tenants",
		    s->id->ntenants);
	return NULL;
}

/* Finds a snapshot the caller may see.  With no tenant named, searches
 * every tenant the caller acts for. */
static int find_snapshot(struct session *s, const char *tenant, const char *name, struct lb_snapshot **out)
{
	const char *slash = strchr(name, '/');
	char tbuf[LB_NAME_MAX + 1];
	if (slash && (size_t)(slash - name) <= LB_NAME_MAX) {
		snprintf(tbuf, sizeof(tbuf), "%.*s", (int)(slash - name), name);
		if (!identity_may(s->id, tbuf) || (*tenant && strcmp(tenant, tbuf)))
			return -ENOENT;
		return lb_store_find_snapshot(s->d->store, tbuf, name, out);
	}
	if (*tenant)
		return identity_may(s->id, tenant) ? lb_store_find_snapshot(s->d->store, tenant, name, out) : -ENOENT;
	int found = 0, r = -ENOENT;
	for (size_t i = 0; i < s->id->ntenants; i++) {
		struct lb_snapshot *snap;
		int rr = lb_store_find_snapshot(s->d->store, s->id->tenants[i], name, &snap);
		if (rr == -EEXIST)
			return rr;
		if (rr == 0) {
			if (found++) {
				lb_snapshot_free(snap);
				lb_snapshot_free(*out);
				*out = NULL;
				return -EEXIST;
			}
			*out = snap;
			r = 0;
		}
	}
	return r;
}

static int snapshot_error(struct session *s, int r, const char *name)
{
	if (r == -EEXIST)
		return reply_error(s, EEXIST, "snapshot name '%s' is ambiguous: give more of its id", name);
	return reply_error(s, ENOENT, "snapshot '%s' not found", name);
}

/* ---- backup ---------------------------------------------------------------- */

/* An entry as sent by a client: no chunk list is ever accepted from it. */
static int read_entry_more(struct session *s, struct lb_entry *e, struct lb_rd *rest)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	int r = lb_entry_decode(&rd, e);
	if (r < 0 || (!rest && !lb_rd_done(&rd))) {
		if (r == 0)
			lb_entry_clear(e);
		return -EPROTO;
	}
	if (e->nchunks) {
		lb_entry_clear(e);
		return -EPROTO;
	}
	if (rest)
		*rest = rd;
	return 0;
}

/* An entry record that is the whole payload. */
static int read_entry(struct session *s, struct lb_entry *e)
{
	return read_entry_more(s, e, NULL);
}

static int read_extents(struct session *s, struct lb_extent **out, size_t *n, uint64_t *size)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	size_t cnt = (size_t)lb_rd_uv_max(&rd, s->f.len / 2);
	struct lb_extent *x = cnt ? lb_mallocarray(cnt, sizeof(*x)) : NULL;
	if (cnt && !x)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		x[i].off = lb_rd_uv(&rd);
		x[i].len = lb_rd_uv(&rd);
	}
	*size = lb_rd_uv(&rd);
	if (!lb_rd_done(&rd)) {
		free(x);
		return -EPROTO;
	}
	*out = x;
	*n = cnt;
	return 0;
}

/* A sparse map must be ordered, inside the file, and add up to the data
 * received; with no map the data is the whole file. */
static int extents_fit(const struct lb_extent *x, size_t n, uint64_t size, uint64_t bytes)
{
	if (n == 0)
		return bytes == size;
	uint64_t end = 0, sum = 0;
	for (size_t i = 0; i < n; i++) {
		if (x[i].len == 0 || x[i].off < end || x[i].off > size || x[i].len > size - x[i].off)
			return 0;
		end = x[i].off + x[i].len;
		sum += x[i].len;
	}
	return sum == bytes;
}

struct backup_ctx {
	struct lb_backup *b;
	struct lb_snapshot *parent;
	struct lb_mindex *pmap;
	uint64_t bytes_received;
	uint64_t link_bytes;  /* what the client says crossed its link (0: none) */
	uint64_t client_read; /* file bytes the client says it read */
	int client_counts;    /* the COMMIT carried both */
	uint64_t delta_files, delta_refused;
	struct resume_rec resume; /* offered by RESUME_INFO */
	int64_t file_mtime;       /* of the FILE in progress */
	uint64_t resumed_bytes;
};

static int send_parent(struct session *s, struct backup_ctx *bc)
{
	if (bc->parent) {
		struct lb_mreader *mr = lb_store_tree_reader(s->d->store, bc->parent);
		struct lb_entry e;
		struct lb_buf b, out;
		lb_buf_init(&b);
		lb_buf_init(&out);
		int r;
		while ((r = lb_mreader_next(mr, &e)) == 1) {
			/* The client compares metadata only; chunk ids stay here. */
			free(e.chunks);
			e.chunks = NULL;
			e.nchunks = 0;
			lb_buf_reset(&b);
			lb_entry_encode(&b, &e);
			lb_entry_clear(&e);
			/* Entries go out LB_FRAME_BATCH bytes at a time, not one write each. */
			lb_frame_put(&out, LB_MSG_ENTRY, b.p, b.len);
			if ((r = b.err) < 0 || (out.len >= LB_FRAME_BATCH && (r = lb_frames_flush(s->fd, &out)) < 0))
				break;
		}
		if (r == 0) {
			lb_frame_put(&out, LB_MSG_END, NULL, 0); /* the backup goes on */
			r = lb_frames_flush(s->fd, &out);
		}
		lb_buf_free(&b);
		lb_buf_free(&out);
		lb_mreader_free(mr);
		return r;
	}
	return lb_frame_send(s->fd, LB_MSG_END, NULL, 0); /* the backup goes on */
}

/* A file the client says is unchanged: its data is the parent's. */
static int reuse(struct session *s, struct backup_ctx *bc, struct lb_entry *e)
{
	int r;
	if (!bc->parent)
		return -EPROTO;
	if (!bc->pmap && (r = lb_store_load_tree(s->d->store, bc->parent, &bc->pmap)) < 0)
		return r;
	struct lb_entry old;
	r = lb_mindex_find(bc->pmap, e->path, &old);
	if (r <= 0)
		return r < 0 ? r : -EPROTO;
	if (old.type == LB_FT_HARDLINK && old.link) {
		/* One of a set of hard links: the data sits with the first. */
		char *target = strdup(old.link);
		lb_entry_clear(&old);
		r = target ? lb_mindex_find(bc->pmap, target, &old) : -ENOMEM;
		free(target);
		if (r <= 0)
			return r < 0 ? r : -EPROTO;
	}
	if (old.type != LB_FT_REG || old.size != e->size || e->type != LB_FT_REG) {
		lb_entry_clear(&old);
		return -EPROTO;
	}
	free(e->extents);
	e->chunks = old.chunks;
	e->nchunks = old.nchunks;
	e->extents = old.extents;
	e->nextents = old.nextents;
	old.chunks = NULL;
	old.nchunks = 0;
	old.extents = NULL;
	old.nextents = 0;
	lb_entry_clear(&old);
	return lb_backup_add(bc->b, e);
}

/* How much of a backup was new to the store says whether its data was
 * there already, perhaps in another tenant's backups: only administrators
 * see it.  (A tenant's own charge comes with quotas.) */
static void hide_dedup(const struct session *s, struct lb_snapshot *snap)
{
	if (!s->id->admin) {
		snap->new_chunks = 0;
		snap->new_stored = 0;
	}
}

static void put_stats(struct lb_buf *b, const struct session *s, const struct lb_backup_stats *st)
{
	lb_buf_put_uv(b, st->files);
	lb_buf_put_uv(b, st->logical);
	lb_buf_put_uv(b, st->chunks);
	lb_buf_put_uv(b, s->id->admin ? st->new_chunks : 0);
	lb_buf_put_uv(b, s->id->admin ? st->new_stored : 0);
	lb_buf_put_uv(b, st->reused_files);
}

/* Every backup that started leaves a job record for the reports, written
 * before the client hears how it ended. */
static void record_job(struct session *s, struct lb_job_rec *job, const char *tenant, const char *dataset,
		       int64_t start_ns, uint64_t sent, int r)
{
	snprintf(job->tenant, sizeof(job->tenant), "%s", tenant);
	snprintf(job->dataset, sizeof(job->dataset), "%s", dataset);
	job->start_ns = start_ns;
	job->end_ns = lb_now_ns();
	job->bytes_sent = sent;
	if (r < 0 && !job->status) {
		job->status = -r;
		snprintf(job->error, sizeof(job->error), "%s", strerror(-r));
	}
	daemon_job_record(s->d, job);
}

/* Offers the dataset's resume point, if there is one (PROTOCOL.md §6.2.3). */
/* A file cut short is kept for resuming from this many bytes on. */
#define RESUME_MIN (1u << 20)

static int send_resume(struct session *s, struct backup_ctx *bc, const char *tenant, const char *dataset)
{
	if (s->f.len) {
		lb_set_error("malformed resume request");
		return -EPROTO;
	}
	resume_rec_clear(&bc->resume);
	int have = daemon_resume_get(s->d, tenant, dataset, &bc->resume);
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_u8(&b, (uint8_t)have);
	if (have) {
		lb_buf_put_str(&b, bc->resume.path);
		lb_buf_put_uv(&b, bc->resume.size);
		lb_buf_put_sv(&b, bc->resume.mtime_ns);
		lb_buf_put_uv(&b, bc->resume.n);
		for (size_t i = 0; i < bc->resume.n; i++) {
			lb_buf_put(&b, bc->resume.c[i].id.b, 32);
			lb_buf_put_uv(&b, bc->resume.c[i].size);
		}
	}
	int r = lb_frame_send_buf(s->fd, LB_MSG_OK, &b);
	lb_buf_free(&b);
	return r;
}

static int do_backup(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant_req = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *dataset = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *host = lb_rd_strdup(&rd, 255);
	size_t ntags = (size_t)lb_rd_uv_max(&rd, 64);
	char *tags[64];
	size_t got = 0;
	for (; got < ntags && !rd.err; got++)
		tags[got] = lb_rd_strdup(&rd, 255);
	int r = 0;
	struct backup_ctx bc = { 0 };
	struct xfer_patch *xp = NULL; /* a DELTA in progress */
	int have_job = 0;
	struct active_job aj = { 0 };
	int64_t t0 = lb_mono_ns(), start_ns = lb_now_ns();
	const char *tenant = NULL;
	struct lb_job_rec job = { .kind = "backup" };
	if (!lb_rd_done(&rd) || !tenant_req || !dataset || !host) {
		r = reply_error(s, EPROTO, "malformed backup request");
		r = r < 0 ? r : -EPROTO;
		goto out;
	}
	au_object(s, "dataset %s", dataset);
	tenant = pick_tenant(s, tenant_req, "tenant");
	if (!tenant) {
		r = -ENOENT;
		goto out;
	}
	au_tenant(s, tenant);
	if (!lb_name_valid(dataset)) {
		r = reply_error(s, EINVAL, "invalid dataset name '%s': use 1-64 of a-z 0-9 _ . -", dataset);
		r = r < 0 ? r : -EINVAL;
		goto out;
	}
	snprintf(aj.tenant, sizeof(aj.tenant), "%s", tenant);
	snprintf(aj.dataset, sizeof(aj.dataset), "%s", dataset);
	snprintf(aj.user, sizeof(aj.user), "%s", s->id->name);
	aj.pid = s->id->pid;
	r = daemon_job_begin(s->d, s->cfg->cfg->daemon.max_jobs, &aj);
	if (r < 0) {
		reply_error(s, ECANCELED, "lumbungd is stopping");
		goto out;
	}
	have_job = 1;
	/* The job's time is its own, not the time it waited for a slot. */
	t0 = lb_mono_ns();
	start_ns = lb_now_ns();
	r = lb_backup_begin(s->d->store, tenant, dataset, host, &bc.b);
	const struct lb_tenant_cfg *tcfg = lb_config_tenant(s->cfg->cfg, tenant);
	if (r == 0)
	{
		lb_backup_set_limits(bc.b, tcfg ? tcfg->quota : 0, s->cfg->cfg->store.capacity);
		lb_backup_set_reserve(bc.b, s->cfg->cfg->store.reserve);
	}
	for (size_t i = 0; r == 0 && i < got; i++)
		r = tags[i] ? lb_backup_tag(bc.b, tags[i]) : -EINVAL;
	if (r < 0) {
		if (bc.b) {
			job.status = -r;
			snprintf(job.error, sizeof(job.error), "cannot start backup: %s", strerror(-r));
			record_job(s, &job, tenant, dataset, start_ns, 0, r);
		}
		reply_error(s, -r, "cannot start backup: %s", strerror(-r));
		goto out;
	}
	char spec[2 * LB_NAME_MAX + 16];
	snprintf(spec, sizeof(spec), "%s@latest", dataset);
	if (lb_store_find_snapshot(s->d->store, tenant, spec, &bc.parent) < 0)
		bc.parent = NULL;
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_u8(&b, bc.parent != NULL);
	if (bc.parent) {
		hide_dedup(s, bc.parent);
		lb_proto_put_snapshot(&b, bc.parent);
	}
	r = lb_frame_send_buf(s->fd, LB_MSG_OK, &b);
	lb_buf_free(&b);
	log_info("%s: backup of %s/%s started", s->peer, tenant, dataset);

	int in_file = 0;
	uint64_t file_size = 0, file_bytes = 0;
	while (r >= 0) {
		if (s->d->stopping) {
			r = -ECANCELED;
			lb_set_error("lumbungd is stopping");
			break;
		}
		atomic_store_explicit(&aj.bytes, bc.bytes_received, memory_order_relaxed);
		r = lb_frame_read(s->fd, &s->f);
		if (r == 0) {
			r = -ECONNRESET;
			lb_set_error("client disconnected before commit");
		}
		if (r < 0)
			break;
		struct lb_entry e;
		int t = s->f.type;
		if (t == LB_MSG_DATA && xp) {
			bc.bytes_received += s->f.len;
			r = transfer_patch_feed(xp, s->f.payload, s->f.len);
		} else if (t == LB_MSG_DELTA_END && xp) {
			struct lb_rd drd;
			lb_frame_reader(&s->f, &drd);
			const uint8_t *sha = lb_rd_raw(&drd, 32);
			uint64_t size = lb_rd_uv(&drd);
			if (!sha || !lb_rd_done(&drd)) {
				r = -EPROTO;
				lb_set_error("malformed end of delta");
				break;
			}
			char why[256] = "";
			r = transfer_patch_end(xp, sha, size, why, sizeof(why));
			transfer_patch_free(xp);
			xp = NULL;
			if (r < 0)
				break;
			if (r == 0) {
				bc.delta_refused++;
				log_warning("%s: backup of %s/%s: a delta was refused, the client sends the file whole: %s",
					    s->peer, tenant, dataset, why);
			} else {
				bc.delta_files++;
			}
			struct lb_buf ob;
			lb_buf_init(&ob);
			lb_buf_put_u8(&ob, (uint8_t)r);
			if (r == 0)
				lb_buf_put_str(&ob, why);
			r = lb_frame_send_buf(s->fd, LB_MSG_OK, &ob);
			lb_buf_free(&ob);
		} else if (xp) {
			r = -EPROTO;
			lb_set_error("unexpected message %d inside a delta", t);
		} else if (t == LB_MSG_DATA && in_file) {
			bc.bytes_received += s->f.len;
			file_bytes += s->f.len;
			r = lb_backup_file_write(bc.b, s->f.payload, s->f.len);
		} else if (t == LB_MSG_FILE_END && in_file) {
			struct lb_extent *x = NULL;
			size_t nx = 0;
			r = read_extents(s, &x, &nx, &file_size);
			if (r < 0)
				lb_set_error("malformed end of file");
			if (r == 0 && !extents_fit(x, nx, file_size, file_bytes)) {
				/* The data must be exactly what the entry says. */
				lb_set_error("file data (%llu bytes) does not match its size (%llu) or sparse map",
					     (unsigned long long)file_bytes, (unsigned long long)file_size);
				r = -EPROTO;
			}
			if (r == 0)
				r = lb_backup_file_set_layout(bc.b, file_size, x, nx);
			if (r == 0)
				r = lb_backup_file_end(bc.b);
			free(x); /* set_layout keeps a copy */
			in_file = 0;
		} else if (in_file) {
			r = -EPROTO;
			lb_set_error("unexpected message %d inside a file", t);
		} else if (t == LB_MSG_ENTRY || t == LB_MSG_FILE || t == LB_MSG_REUSE || t == LB_MSG_FILE_RESUME) {
			struct lb_rd erd;
			r = read_entry_more(s, &e, t == LB_MSG_FILE_RESUME ? &erd : NULL);
			if (r < 0) {
				lb_set_error("malformed entry");
				break;
			}
			if (t == LB_MSG_FILE || t == LB_MSG_FILE_RESUME) {
				/* The sparse map comes with FILE_END, never with the entry. */
				free(e.extents);
				e.extents = NULL;
				e.nextents = 0;
				file_size = e.size;
				file_bytes = 0;
				bc.file_mtime = e.mtime_ns;
				uint64_t k = 0;
				if (t == LB_MSG_FILE_RESUME) {
					k = lb_rd_uv(&erd);
					if (!lb_rd_done(&erd) || !bc.resume.path || strcmp(bc.resume.path, e.path) ||
					    k > bc.resume.n) {
						r = -EPROTO;
						lb_set_error("%s: resumes a transfer lumbungd did not offer", e.path);
					}
				}
				if (r >= 0)
					r = e.type == LB_FT_REG ? lb_backup_file_begin(bc.b, &e) : -EPROTO;
				if (r == -EPROTO && !*lb_error_detail())
					lb_set_error("%s: only a regular file carries data", e.path);
				if (r >= 0 && k) {
					r = lb_backup_file_prefix(bc.b, bc.resume.c, (size_t)k);
					if (r == -ENOENT) /* collected meanwhile: start afresh next time */
						daemon_resume_drop(s->d, tenant, dataset);
					for (size_t i = 0; r == 0 && i < k; i++)
						file_bytes += bc.resume.c[i].size;
					bc.resumed_bytes += file_bytes;
					if (r == 0)
						log_info("%s: backup of %s/%s: %s resumes after %llu bytes", s->peer, tenant,
							 dataset, e.path, (unsigned long long)file_bytes);
				}
				in_file = r >= 0;
			} else if (t == LB_MSG_REUSE) {
				r = reuse(s, &bc, &e);
				if (r == -EPROTO)
					lb_set_error("%s: not an unchanged file of the parent snapshot", e.path);
			} else {
				r = e.type == LB_FT_REG && e.size ? -EPROTO : lb_backup_add(bc.b, &e);
				if (r == -EPROTO)
					lb_set_error("%s: a regular file with data must be sent as FILE", e.path);
			}
			lb_entry_clear(&e);
		} else if (t == LB_MSG_DELTA) {
			r = read_entry(s, &e);
			if (r < 0) {
				lb_set_error("malformed entry");
				break;
			}
			free(e.extents);
			e.extents = NULL;
			e.nextents = 0;
			if (e.type != LB_FT_REG) {
				r = -EPROTO;
				lb_set_error("%s: only a regular file carries data", e.path);
			}
			if (r == 0 && bc.parent && !bc.pmap)
				r = lb_store_load_tree(s->d->store, bc.parent, &bc.pmap);
			if (r == 0)
				r = transfer_patch_begin(s->d->store, bc.b, bc.pmap, &e, &xp);
			lb_entry_clear(&e);
		} else if (t == LB_MSG_SIGNATURE) {
			struct lb_rd srd;
			lb_frame_reader(&s->f, &srd);
			char *path = lb_rd_strdup(&srd, 4095);
			if (!path || !lb_rd_done(&srd)) {
				free(path);
				r = -EPROTO;
				lb_set_error("malformed signature request");
				break;
			}
			r = 0;
			if (bc.parent && !bc.pmap)
				r = lb_store_load_tree(s->d->store, bc.parent, &bc.pmap);
			if (r == 0)
				r = transfer_signature(s->d->store, bc.pmap, path, s->fd);
			free(path);
		} else if (t == LB_MSG_RESUME_INFO) {
			r = send_resume(s, &bc, tenant, dataset);
		} else if (t == LB_MSG_PARENT) {
			r = send_parent(s, &bc);
		} else if (t == LB_MSG_ABORT) {
			/* It may say why (a relay's agent went away, a path refused). */
			struct lb_rd ard;
			lb_frame_reader(&s->f, &ard);
			char *why = s->f.len ? lb_rd_strdup(&ard, 255) : NULL;
			r = -ECANCELED;
			lb_set_error("the client aborted the backup%s%s", why ? ": " : "", why ? why : "");
			free(why);
		} else if (t == LB_MSG_COMMIT) {
			struct lb_snapshot *snap;
			/* A client that crossed a link says how many bytes it took. */
			struct lb_rd crd;
			lb_frame_reader(&s->f, &crd);
			if (s->f.len) {
				bc.client_read = lb_rd_uv(&crd);
				bc.link_bytes = lb_rd_uv(&crd);
				/* Its own count of deltas sent and refused (for a
				 * relay's summary; this side counts them too). */
				(void)lb_rd_uv(&crd);
				(void)lb_rd_uv(&crd);
				bc.client_counts = 1;
				if (!lb_rd_done(&crd)) {
					r = -EPROTO;
					lb_set_error("malformed commit");
					break;
				}
			}
			/* Crossing the soft quota: the backup goes on, and says so
			 * in the snapshot, the log and the client's output. */
			char warn[256] = "";
			r = lb_backup_settle(bc.b);
			if (r < 0)
				break;
			if (tcfg && tcfg->soft_quota) {
				struct lb_tenant_usage u;
				lb_store_tenant_usage(s->d->store, tenant, &u);
				uint64_t after = u.charged + lb_backup_charge(bc.b);
				if (after > tcfg->soft_quota) {
					char a[32], q[32];
					snprintf(warn, sizeof(warn), "tenant %s is over its soft quota: %s of %s", tenant,
						 lb_format_size(a, sizeof(a), after), lb_format_size(q, sizeof(q), tcfg->soft_quota));
					lb_backup_tag(bc.b, "soft-quota-exceeded");
				}
			}
			r = lb_backup_commit(bc.b, &snap);
			if (r == 0 && *warn) {
				log_warning("%s: %s", s->peer, warn);
				lb_buf_init(&b);
				lb_buf_put_str(&b, warn);
				lb_frame_send_buf(s->fd, LB_MSG_WARNING, &b);
				lb_buf_free(&b);
			}
			if (r < 0)
				break;
			const struct lb_backup_stats *st = lb_backup_get_stats(bc.b);
			char hex[LB_SNAP_HEX];
			log_info("%s: backup of %s/%s committed as %s: %llu files, %llu bytes read, "
				 "%llu bytes received (%llu on the link), %llu files as deltas (%llu refused), "
				 "%llu new bytes stored, %.1f s",
				 s->peer, tenant, dataset, lb_snap_id_hex(snap->id, hex),
				 (unsigned long long)st->files,
				 (unsigned long long)(bc.client_counts ? bc.client_read : st->logical),
				 (unsigned long long)bc.bytes_received, (unsigned long long)bc.link_bytes,
				 (unsigned long long)bc.delta_files, (unsigned long long)bc.delta_refused,
				 (unsigned long long)st->new_stored, (double)(lb_mono_ns() - t0) / 1e9);
			au_object(s, "dataset %s snapshot %s files %llu", dataset, hex, (unsigned long long)st->files);
			s->au_bytes = bc.bytes_received;
			snprintf(job.snapshot, sizeof(job.snapshot), "%s", hex);
			job.bytes_read = bc.client_counts ? bc.client_read : st->logical;
			job.new_stored = st->new_stored;
			job.files = st->files;
			record_job(s, &job, tenant, dataset, start_ns, bc.link_bytes ? bc.link_bytes : bc.bytes_received, 0);
			/* Whatever was interrupted before is behind this snapshot now. */
			daemon_resume_drop(s->d, tenant, dataset);
			audit_now(s, 0);
			lb_buf_init(&b);
			hide_dedup(s, snap);
			lb_proto_put_snapshot(&b, snap);
			put_stats(&b, s, st);
			r = lb_frame_send_buf(s->fd, LB_MSG_COMMITTED, &b);
			lb_buf_free(&b);
			lb_snapshot_free(snap);
			goto out;
		} else {
			r = -EPROTO;
			lb_set_error("unexpected message %d in a backup", t);
		}
	}
	/* Failed or aborted: nothing of it is committed.  A large file cut
	 * short keeps what the store took of it, for the next try. */
	if (in_file && bc.b) {
		struct resume_rec rr = { 0 };
		int saved = lb_backup_file_partial(bc.b, &rr.path, &rr.c, &rr.n);
		uint64_t bytes = 0;
		for (size_t i = 0; saved == 1 && i < rr.n; i++)
			bytes += rr.c[i].size;
		if (saved == 1 && bytes >= RESUME_MIN) {
			snprintf(rr.tenant, sizeof(rr.tenant), "%s", tenant);
			snprintf(rr.dataset, sizeof(rr.dataset), "%s", dataset);
			rr.size = file_size;
			rr.mtime_ns = bc.file_mtime;
			log_info("%s: backup of %s/%s: %s stopped after %llu bytes; the next backup resumes there",
				 s->peer, tenant, dataset, rr.path, (unsigned long long)bytes);
			daemon_resume_put(s->d, &rr);
		}
		resume_rec_clear(&rr);
	}
	{
		char detail[512];
		snprintf(detail, sizeof(detail), "%s", lb_error_detail());
		log_warning("%s: backup of %s/%s failed, nothing committed: %s%s%s", s->peer, tenant,
			    dataset, strerror(-r), *detail ? ": " : "", detail);
		s->au_result = -r;
		s->au_bytes = bc.bytes_received;
		snprintf(s->au_detail, sizeof(s->au_detail), "%s", detail);
		job.status = -r;
		snprintf(job.error, sizeof(job.error), "%.60s: %.440s", strerror(-r), detail);
		record_job(s, &job, tenant, dataset, start_ns, bc.bytes_received, r);
		audit_now(s, -r);
		if (r != -ECONNRESET && r != -EPIPE)
			lb_frame_send_error(s->fd, -r, "backup failed, nothing committed: %s%s%s",
					    strerror(-r), *detail ? ": " : "", detail);
	}
out:
	transfer_patch_free(xp);
	resume_rec_clear(&bc.resume);
	if (bc.b && tenant && !job.end_ns)
		record_job(s, &job, tenant, dataset, start_ns, bc.bytes_received, r);
	lb_mindex_free(bc.pmap);
	lb_snapshot_free(bc.parent);
	lb_backup_free(bc.b);
	if (have_job)
		daemon_job_end(s->d, &aj);
	for (size_t i = 0; i < got; i++)
		free(tags[i]);
	free(tenant_req);
	free(dataset);
	free(host);
	return r;
}

/* ---- listings ---------------------------------------------------------------- */

static int do_snapshots(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *dataset = lb_rd_strdup(&rd, LB_NAME_MAX);
	int r = 0;
	if (!lb_rd_done(&rd) || !tenant || !dataset) {
		r = reply_error(s, EPROTO, "malformed request");
		goto out;
	}
	au_tenant(s, tenant);
	au_object(s, "%s", dataset);
	for (size_t i = 0; i < s->id->ntenants && r >= 0; i++) {
		const char *t = s->id->tenants[i];
		if (*tenant && strcmp(tenant, t))
			continue;
		struct lb_snapshot **list;
		size_t n;
		r = lb_store_list_snapshots(s->d->store, t, *dataset ? dataset : NULL, &list, &n);
		if (r < 0) {
			r = reply_error(s, -r, "cannot list snapshots: %s", strerror(-r));
			goto out;
		}
		for (size_t k = 0; r >= 0 && k < n; k++) {
			struct lb_buf b;
			lb_buf_init(&b);
			hide_dedup(s, list[k]);
			lb_proto_put_snapshot(&b, list[k]);
			r = lb_frame_send_buf(s->fd, LB_MSG_SNAPSHOT, &b);
			lb_buf_free(&b);
		}
		lb_snapshot_list_free(list, n);
	}
	if (r >= 0)
		r = send_end(s);
out:
	free(tenant);
	free(dataset);
	return r;
}

/* 1 when path equals prefix or lies below it ("" matches everything). */
static int under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n == 0)
		return 1;
	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int send_entry(struct session *s, int type, const struct lb_entry *e)
{
	struct lb_entry copy = *e;
	copy.chunks = NULL; /* chunk ids never leave the daemon */
	copy.nchunks = 0;
	struct lb_buf b;
	lb_buf_init(&b);
	lb_entry_encode(&b, &copy);
	int r = lb_frame_send_buf(s->fd, type, &b);
	lb_buf_free(&b);
	return r;
}

static int do_ls(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *name = lb_rd_strdup(&rd, 255);
	char *path = lb_rd_strdup(&rd, 4095);
	struct lb_snapshot *snap = NULL;
	int r;
	if (!lb_rd_done(&rd) || !tenant || !name || !path) {
		r = reply_error(s, EPROTO, "malformed request");
		goto out;
	}
	au_tenant(s, tenant);
	au_object(s, "snapshot %s path %s", name, *path ? path : "/");
	for (size_t l = strlen(path); l > 0 && path[l - 1] == '/';)
		path[--l] = '\0'; /* "docs/" is "docs" */
	r = find_snapshot(s, tenant, name, &snap);
	if (r < 0) {
		r = snapshot_error(s, r, name);
		goto out;
	}
	au_tenant(s, snap->tenant);
	struct lb_mreader *mr = lb_store_tree_reader(s->d->store, snap);
	if (*path)
		r = lb_mreader_seek(mr, path);
	struct lb_entry e;
	int found = 0;
	while (r >= 0 && (r = lb_mreader_next(mr, &e)) == 1) {
		if (!under(e.path, path)) {
			lb_entry_clear(&e);
			break;
		}
		found = 1;
		r = send_entry(s, LB_MSG_ENTRY, &e);
		lb_entry_clear(&e);
	}
	lb_mreader_free(mr);
	if (r < 0)
		r = reply_error(s, EIO, "cannot read snapshot: %s", lb_error_detail());
	else if (*path && !found)
		r = reply_error(s, ENOENT, "path '%s' not found in snapshot %s", path, name);
	else
		r = send_end(s);
out:
	lb_snapshot_free(snap);
	free(tenant);
	free(name);
	free(path);
	return r;
}

/* ---- read (restore, cat) ------------------------------------------------------ */

struct read_ctx {
	struct session *s;
	struct lb_mreader *mr;
	char **paths;
	size_t npaths;
	size_t *hits;
	const struct lb_entry *sent; /* entry whose header went out last */
	uint64_t files, bytes;
	int salvage;                 /* go on past lost data, telling the client */
	uint64_t lost_chunks, lost_trees;
};

/* Salvage: tells the client what could not be read.  path "" stands for
 * the entries of a lost tree blob. */
static int send_lost(struct session *s, const char *path, uint64_t off, uint64_t len, const char *what)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, path);
	lb_buf_put_uv(&b, off);
	lb_buf_put_uv(&b, len);
	lb_buf_put_str(&b, what);
	int r = lb_frame_send_buf(s->fd, LB_MSG_LOST, &b);
	lb_buf_free(&b);
	return r;
}

static int wanted(struct read_ctx *c, const char *path)
{
	if (c->npaths == 0)
		return 1;
	for (size_t i = 0; i < c->npaths; i++) {
		if (under(path, c->paths[i])) {
			c->hits[i]++;
			return 1;
		}
	}
	return 0;
}

/* Every wanted entry goes through the store's read-ahead in order; its
 * header is sent when its turn comes (first data, or done), so that the
 * stream stays "header, data..., end" per file. */
static int read_next(void *arg, const struct lb_entry **out)
{
	struct read_ctx *c = arg;
	for (;;) {
		struct lb_entry *e = calloc(1, sizeof(*e));
		if (!e)
			return -ENOMEM;
		int r = lb_mreader_next(c->mr, e);
		if (r < 0 && c->salvage && r != -ENOMEM) {
			/* The entries that tree blob listed are lost; the reader
			 * goes on with the next one. */
			char what[512];
			snprintf(what, sizeof(what), "tree blob %zu: %s; the entries it listed are lost",
				 lb_mreader_blob(c->mr), lb_error_detail());
			c->lost_trees++;
			free(e);
			r = send_lost(c->s, "", 0, 0, what);
			if (r < 0)
				return r;
			continue;
		}
		if (r <= 0) {
			free(e);
			return r;
		}
		if (wanted(c, e->path)) {
			if (e->type != LB_FT_REG) {
				free(e->chunks); /* only files carry data */
				e->chunks = NULL;
				e->nchunks = 0;
			}
			*out = e;
			return 1;
		}
		lb_entry_clear(e);
		free(e);
	}
}

static int send_header(struct read_ctx *c, const struct lb_entry *e)
{
	if (c->sent == e)
		return 0;
	c->sent = e;
	if (e->type == LB_FT_REG)
		c->files++;
	return send_entry(c->s, e->type == LB_FT_REG ? LB_MSG_FILE : LB_MSG_ENTRY, e);
}

static int read_data(void *arg, const struct lb_entry *e, const void *data, size_t len)
{
	struct read_ctx *c = arg;
	const uint8_t *p = data;
	int r = send_header(c, e);
	c->bytes += len;
	while (r == 0 && len > 0) {
		size_t n = LB_MIN(len, (size_t)LB_DATA_CHUNK);
		r = lb_frame_send(c->s->fd, LB_MSG_DATA, p, n);
		p += n;
		len -= n;
	}
	return r;
}

static int read_lost(void *arg, const struct lb_entry *e, uint64_t off, uint32_t len, const char *id)
{
	struct read_ctx *c = arg;
	int r = send_header(c, e);
	char what[128];
	snprintf(what, sizeof(what), "chunk %s is missing or damaged", id);
	c->lost_chunks++;
	return r < 0 ? r : send_lost(c->s, e->path, off, len, what);
}

static int read_done(void *arg, const struct lb_entry *e)
{
	struct read_ctx *c = arg;
	int r = send_header(c, e);
	if (r == 0 && e->type == LB_FT_REG)
		r = lb_frame_send(c->s->fd, LB_MSG_FILE_END, NULL, 0);
	c->sent = NULL;
	lb_entry_clear((struct lb_entry *)e);
	free((struct lb_entry *)e);
	return r;
}

static int do_read(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *name = lb_rd_strdup(&rd, 255);
	size_t np = (size_t)lb_rd_uv_max(&rd, 4096);
	struct read_ctx c = { .s = s };
	c.paths = calloc(np ? np : 1, sizeof(char *));
	c.hits = calloc(np ? np : 1, sizeof(size_t));
	struct lb_snapshot *snap = NULL;
	int r = 0;
	for (size_t i = 0; i < np && c.paths; i++) {
		c.paths[i] = lb_rd_strdup(&rd, 4095);
		c.npaths++;
		/* A trailing slash means the same directory. */
		size_t l = c.paths[i] ? strlen(c.paths[i]) : 0;
		while (l > 0 && c.paths[i][l - 1] == '/')
			c.paths[i][--l] = '\0';
	}
	/* Flags came later: bit 0 asks for salvage. */
	unsigned flags = rd.p < rd.end ? lb_rd_u8(&rd) : 0;
	c.salvage = flags & 1;
	if (!lb_rd_done(&rd) || !tenant || !name || !c.paths || !c.hits || flags > 1) {
		r = reply_error(s, EPROTO, "malformed request");
		goto out;
	}
	{
		size_t o = 0;
		o += (size_t)snprintf(s->au_object, sizeof(s->au_object), "snapshot %s paths", name);
		for (size_t i = 0; i < c.npaths && o < sizeof(s->au_object); i++)
			o += (size_t)snprintf(s->au_object + o, sizeof(s->au_object) - o, " %s", c.paths[i]);
		if (c.npaths == 0 && o < sizeof(s->au_object))
			o += (size_t)snprintf(s->au_object + o, sizeof(s->au_object) - o, " (all)");
		if (c.salvage && o < sizeof(s->au_object))
			snprintf(s->au_object + o, sizeof(s->au_object) - o, " (salvage)");
	}
	au_tenant(s, tenant);
	r = find_snapshot(s, tenant, name, &snap);
	if (r < 0) {
		r = snapshot_error(s, r, name);
		goto out;
	}
	au_tenant(s, snap->tenant);
	/* Every path asked for must exist before anything is sent. */
	for (size_t i = 0; i < c.npaths; i++) {
		struct lb_entry e;
		int rr = *c.paths[i] ? lb_store_lookup(s->d->store, snap, c.paths[i], &e) : 1;
		if (rr == 1 && *c.paths[i])
			lb_entry_clear(&e);
		if (rr <= 0) {
			r = reply_error(s, ENOENT, "path '%s' not found in snapshot %s", c.paths[i], name);
			goto out;
		}
	}
	r = lb_frame_send(s->fd, LB_MSG_OK, NULL, 0);
	c.mr = lb_store_tree_reader(s->d->store, snap);
	if (r == 0)
		r = lb_store_read_files_salvage(s->d->store, read_next, read_data, read_done,
						c.salvage ? read_lost : NULL, &c);
	lb_mreader_free(c.mr);
	if (c.lost_chunks || c.lost_trees) {
		char hex0[LB_SNAP_HEX];
		log_warning("%s: salvage of %s: %llu chunks and %llu tree blobs could not be read", s->peer,
			    lb_snap_id_hex(snap->id, hex0), (unsigned long long)c.lost_chunks,
			    (unsigned long long)c.lost_trees);
	}
	s->au_bytes = c.bytes;
	char hex[LB_SNAP_HEX];
	if (r < 0)
		s->au_result = -r;
	if (r < 0 && !client_gone(r)) {
		snprintf(s->au_detail, sizeof(s->au_detail), "%s", lb_error_detail());
		log_error("%s: read of %s failed: %s", s->peer, lb_snap_id_hex(snap->id, hex), lb_error_detail());
		audit_now(s, -r);
		r = lb_frame_send_error(s->fd, EIO, "%s", lb_error_detail());
	} else if (r == 0) {
		log_info("%s: read %llu files, %llu bytes of %s/%s %s", s->peer, (unsigned long long)c.files,
			 (unsigned long long)c.bytes, snap->tenant, snap->dataset, lb_snap_id_hex(snap->id, hex));
		r = send_end(s);
	}
out:
	lb_snapshot_free(snap);
	for (size_t i = 0; i < c.npaths; i++)
		free(c.paths[i]);
	free(c.paths);
	free(c.hits);
	free(tenant);
	free(name);
	return r;
}

/* ---- diff --------------------------------------------------------------------- */

static int entries_differ(const struct lb_entry *a, const struct lb_entry *b)
{
	if (a->type != b->type || a->size != b->size || a->mode != b->mode || a->uid != b->uid ||
	    a->gid != b->gid || a->mtime_ns != b->mtime_ns || a->nchunks != b->nchunks)
		return 1;
	for (size_t i = 0; i < a->nchunks; i++)
		if (lb_id_cmp(&a->chunks[i].id, &b->chunks[i].id))
			return 1;
	if ((a->link || b->link) && (!a->link || !b->link || strcmp(a->link, b->link)))
		return 1;
	return 0;
}

static int diff_item(struct session *s, char kind, const struct lb_entry *a, const struct lb_entry *b)
{
	const struct lb_entry *e = b ? b : a;
	struct lb_buf buf;
	lb_buf_init(&buf);
	lb_buf_put_u8(&buf, (uint8_t)kind);
	lb_buf_put_str(&buf, e->path);
	lb_buf_put_u8(&buf, (uint8_t)e->type);
	lb_buf_put_uv(&buf, a ? a->size : 0);
	lb_buf_put_uv(&buf, b ? b->size : 0);
	int r = lb_frame_send_buf(s->fd, LB_MSG_DIFF_ITEM, &buf);
	lb_buf_free(&buf);
	return r;
}

static int do_diff(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *n1 = lb_rd_strdup(&rd, 255);
	char *n2 = lb_rd_strdup(&rd, 255);
	struct lb_snapshot *s1 = NULL, *s2 = NULL;
	int r;
	if (!lb_rd_done(&rd) || !tenant || !n1 || !n2) {
		r = reply_error(s, EPROTO, "malformed request");
		goto out;
	}
	au_tenant(s, tenant);
	au_object(s, "snapshots %s %s", n1, n2);
	if ((r = find_snapshot(s, tenant, n1, &s1)) < 0) {
		r = snapshot_error(s, r, n1);
		goto out;
	}
	if ((r = find_snapshot(s, tenant, n2, &s2)) < 0) {
		r = snapshot_error(s, r, n2);
		goto out;
	}
	struct lb_mreader *m1 = lb_store_tree_reader(s->d->store, s1);
	struct lb_mreader *m2 = lb_store_tree_reader(s->d->store, s2);
	struct lb_entry a, b;
	int ha = lb_mreader_next(m1, &a), hb = lb_mreader_next(m2, &b);
	r = 0;
	while (r >= 0 && ha >= 0 && hb >= 0 && (ha == 1 || hb == 1)) {
		int c = ha != 1 ? 1 : hb != 1 ? -1 : lb_path_cmp(a.path, b.path);
		if (c < 0) {
			r = diff_item(s, '-', &a, NULL);
			lb_entry_clear(&a);
			ha = lb_mreader_next(m1, &a);
		} else if (c > 0) {
			r = diff_item(s, '+', NULL, &b);
			lb_entry_clear(&b);
			hb = lb_mreader_next(m2, &b);
		} else {
			if (entries_differ(&a, &b))
				r = diff_item(s, 'M', &a, &b);
			lb_entry_clear(&a);
			lb_entry_clear(&b);
			ha = lb_mreader_next(m1, &a);
			hb = lb_mreader_next(m2, &b);
		}
	}
	if (ha == 1)
		lb_entry_clear(&a);
	if (hb == 1)
		lb_entry_clear(&b);
	lb_mreader_free(m1);
	lb_mreader_free(m2);
	if (r >= 0 && (ha < 0 || hb < 0))
		r = reply_error(s, EIO, "cannot read snapshot: %s", lb_error_detail());
	else if (r >= 0)
		r = send_end(s);
out:
	lb_snapshot_free(s1);
	lb_snapshot_free(s2);
	free(tenant);
	free(n1);
	free(n2);
	return r;
}

/* ---- check ---------------------------------------------------------------------- */

static void check_problem(void *arg, const char *kind, const char *what)
{
	struct session *s = arg;
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, kind);
	lb_buf_put_str(&b, what);
	lb_frame_send_buf(s->fd, LB_MSG_PROBLEM, &b);
	lb_buf_free(&b);
	log_warning("check: %s: %s", kind, what);
}

static int do_check(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	int read_data = lb_rd_u8(&rd);
	/* The slice length came later: a request without it reads everything. */
	uint64_t max_s = rd.p < rd.end ? lb_rd_uv(&rd) : 0;
	if (!lb_rd_done(&rd) || read_data > 1 || max_s > 366ULL * 86400)
		return reply_error(s, EPROTO, "malformed request");
	if (max_s)
		au_object(s, "read-data, at most %llu s", (unsigned long long)max_s);
	else
		au_object(s, "%s", read_data ? "read-data" : "structure");
	if (!s->id->admin)
		return reply_error(s, EPERM, "check is for administrators (members of %s)",
				   s->cfg->cfg->daemon.admin_group);
	log_info("%s: check%s started", s->peer, read_data ? " --read-data" : "");
	struct lb_check_options o = { .read_data = read_data, .max_ns = (int64_t)max_s * 1000000000LL };
	struct lb_check_result res;
	int r = lb_store_check_opts(s->d->store, &o, check_problem, s, &res);
	if (r < 0 && r != -EBADMSG)
		return reply_error(s, -r, "check could not run: %s %s", strerror(-r), lb_error_detail());
	log_info("%s: check done: %llu errors; read %llu packs, the pass stands at %llu of %llu%s", s->peer,
		 (unsigned long long)res.errors, (unsigned long long)res.packs_read,
		 (unsigned long long)res.pass_position, (unsigned long long)res.pass_total,
		 res.pass_done ? " (finished)" : "");
	snprintf(s->au_detail, sizeof(s->au_detail), "%llu problems", (unsigned long long)res.errors);
	s->au_bytes = res.bytes_read;
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_uv(&b, res.packs);
	lb_buf_put_uv(&b, res.chunks);
	lb_buf_put_uv(&b, res.snapshots);
	lb_buf_put_uv(&b, res.files);
	lb_buf_put_uv(&b, res.errors);
	lb_buf_put_uv(&b, res.bytes_read);
	lb_buf_put_uv(&b, res.unindexed_packs);
	lb_buf_put_uv(&b, res.packs_read);
	lb_buf_put_uv(&b, res.pass_position);
	lb_buf_put_uv(&b, res.pass_total);
	lb_buf_put_u8(&b, (uint8_t)res.pass_done);
	lb_buf_put_sv(&b, res.last_full_pass);
	audit_now(s, 0);
	r = lb_frame_send_buf(s->fd, LB_MSG_CHECKED, &b);
	lb_buf_free(&b);
	return r;
}

/* ---- audit ---------------------------------------------------------------------------- */

struct audit_q {
	struct session *s;
	const char *tenant;
	int r;
	uint64_t n;
};

static int audit_rec_cb(void *arg, const struct lb_audit_rec *rec)
{
	struct audit_q *q = arg;
	/* Members see their own tenants' records; admins everyone's. */
	if (*q->tenant && strcmp(rec->tenant, q->tenant))
		return 0;
	if (!q->s->id->admin && (!*rec->tenant || !identity_may(q->s->id, rec->tenant)))
		return 0;
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_sv(&b, rec->time_ns);
	lb_buf_put_uv(&b, rec->uid);
	lb_buf_put_str(&b, rec->user);
	lb_buf_put_str(&b, rec->tenant);
	lb_buf_put_str(&b, rec->verb);
	lb_buf_put_str(&b, rec->object);
	lb_buf_put_uv(&b, (uint64_t)rec->result);
	lb_buf_put_str(&b, rec->detail);
	lb_buf_put_uv(&b, rec->bytes);
	q->r = lb_frame_send_buf(q->s->fd, LB_MSG_AUDIT_REC, &b);
	lb_buf_free(&b);
	q->n++;
	return q->r;
}

static int do_audit(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	int64_t since = lb_rd_sv(&rd);
	int r;
	if (!lb_rd_done(&rd) || !tenant) {
		r = reply_error(s, EPROTO, "malformed request");
		free(tenant);
		return r;
	}
	au_tenant(s, tenant);
	au_object(s, "since %lld", (long long)(since / 1000000000LL));
	if (*tenant && !identity_may(s->id, tenant)) {
		/* Like any other tenant's object: as if it did not exist. */
		free(tenant);
		return reply_error(s, ENOENT, "tenant not found");
	}
	struct audit_q q = { .s = s, .tenant = tenant };
	r = lb_audit_read(lb_store_backend(s->d->store), since, audit_rec_cb, &q);
	free(tenant);
	if (r < 0 && q.r == 0)
		return reply_error(s, EIO, "cannot read the audit trail: %s", strerror(-r));
	if (r < 0)
		return r;
	snprintf(s->au_detail, sizeof(s->au_detail), "%llu records", (unsigned long long)q.n);
	return send_end(s);
}

/* ---- jobs and schedules ---------------------------------------------------------------- */

static void put_job_row(struct lb_buf *b, int state, const struct lb_job_rec *j, const char *user, pid_t pid,
			uint64_t place)
{
	lb_buf_put_u8(b, (uint8_t)state);
	lb_buf_put_str(b, j->tenant);
	lb_buf_put_str(b, j->dataset);
	lb_buf_put_str(b, user);
	lb_buf_put_uv(b, (uint64_t)pid);
	lb_buf_put_sv(b, j->start_ns);
	lb_buf_put_sv(b, j->end_ns);
	lb_buf_put_uv(b, (uint64_t)j->status);
	lb_buf_put_str(b, j->error);
	lb_buf_put_uv(b, j->bytes_read);
	lb_buf_put_uv(b, j->bytes_sent);
	lb_buf_put_uv(b, j->new_stored);
	lb_buf_put_uv(b, j->files);
	lb_buf_put_str(b, j->snapshot);
	lb_buf_put_uv(b, place);
}

struct recent {
	struct session *s;
	int history;
	struct lb_job_rec *v; /* history: every record; else the newest per dataset */
	size_t n, cap;
};

static int recent_cb(void *arg, const struct lb_job_rec *j)
{
	struct recent *q = arg;
	if (strcmp(j->kind, "backup") != 0 || !identity_may(q->s->id, j->tenant))
		return 0;
	if (!q->history)
		for (size_t i = 0; i < q->n; i++)
			if (!strcmp(q->v[i].tenant, j->tenant) && !strcmp(q->v[i].dataset, j->dataset)) {
				q->v[i] = *j; /* records come oldest first */
				return 0;
			}
	int r = lb_grow(&q->v, &q->cap, q->n + 1, sizeof(*q->v));
	if (r < 0)
		return r;
	q->v[q->n++] = *j;
	return 0;
}

/* Backups of the last 62 days: what `jobs` and `schedule` call recent. */
#define RECENT_NS (62LL * 86400 * 1000000000LL)

static int do_jobs(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	int history = lb_rd_u8(&rd);
	int64_t since = lb_rd_sv(&rd);
	if (!lb_rd_done(&rd))
		return reply_error(s, EPROTO, "malformed request");
	/* Running and queued first, as they stand now. */
	struct lb_buf b;
	lb_buf_init(&b);
	struct lb_job_rec *live = NULL;
	char (*users)[64] = NULL;
	pid_t *pids = NULL;
	uint64_t *places = NULL;
	int *states = NULL;
	size_t nlive = 0, place = 0;
	pthread_mutex_lock(&s->d->mu);
	size_t total = 0;
	for (struct active_job *a = s->d->jobs; a; a = a->next)
		total++;
	live = calloc(total ? total : 1, sizeof(*live));
	users = calloc(total ? total : 1, sizeof(*users));
	pids = calloc(total ? total : 1, sizeof(*pids));
	places = calloc(total ? total : 1, sizeof(*places));
	states = calloc(total ? total : 1, sizeof(*states));
	for (struct active_job *a = s->d->jobs; a && live && users && pids && places && states; a = a->next) {
		if (!identity_may(s->id, a->tenant))
			continue; /* another tenant's job is not even counted */
		if (!a->running)
			place++;
		struct lb_job_rec *j = &live[nlive];
		snprintf(j->tenant, sizeof(j->tenant), "%s", a->tenant);
		snprintf(j->dataset, sizeof(j->dataset), "%s", a->dataset);
		j->start_ns = a->running ? a->started_ns : a->queued_ns;
		j->bytes_sent = atomic_load_explicit(&a->bytes, memory_order_relaxed);
		snprintf(users[nlive], sizeof(users[nlive]), "%s", a->user);
		pids[nlive] = a->pid;
		states[nlive] = a->running ? 0 : 1;
		places[nlive] = a->running ? 0 : place;
		nlive++;
	}
	pthread_mutex_unlock(&s->d->mu);
	int r = live && users && pids && places && states ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < nlive; i++) {
		lb_buf_reset(&b);
		put_job_row(&b, states[i], &live[i], users[i], pids[i], places[i]);
		r = lb_frame_send_buf(s->fd, LB_MSG_JOB_ROW, &b);
	}
	free(live);
	free(users);
	free(pids);
	free(places);
	free(states);
	if (r == -ENOMEM) {
		lb_buf_free(&b);
		return reply_error(s, ENOMEM, "out of memory");
	}
	/* Then what ended. */
	struct recent q = { .s = s, .history = history };
	if (r == 0) {
		int64_t from = history ? since : lb_now_ns() - RECENT_NS;
		r = lb_job_read(lb_store_backend(s->d->store), from, recent_cb, &q);
		if (r < 0) {
			r = reply_error(s, EIO, "cannot read the job records: %s", strerror(-r));
			free(q.v);
			lb_buf_free(&b);
			return r;
		}
	}
	for (size_t i = 0; r == 0 && i < q.n; i++) {
		lb_buf_reset(&b);
		put_job_row(&b, 2, &q.v[i], "", 0, 0);
		r = lb_frame_send_buf(s->fd, LB_MSG_JOB_ROW, &b);
	}
	snprintf(s->au_detail, sizeof(s->au_detail), "%zu running or queued, %zu ended", nlive, q.n);
	free(q.v);
	lb_buf_free(&b);
	return r < 0 ? r : send_end(s);
}

static int do_schedule(struct session *s)
{
	if (s->f.len)
		return reply_error(s, EPROTO, "malformed request");
	const struct lb_config *cfg = s->cfg->cfg;
	struct recent q = { .s = s };
	int r = lb_job_read(lb_store_backend(s->d->store), lb_now_ns() - RECENT_NS, recent_cb, &q);
	if (r < 0) {
		free(q.v);
		return reply_error(s, EIO, "cannot read the job records: %s", strerror(-r));
	}
	/* The last success may be older than the last run. */
	struct lb_buf b;
	lb_buf_init(&b);
	int64_t now = lb_now_ns();
	size_t shown = 0;
	for (size_t i = 0; r == 0 && i < cfg->ndatasets; i++) {
		const struct lb_dataset_cfg *dc = &cfg->datasets[i];
		if (!identity_may(s->id, dc->tenant))
			continue;
		int64_t next = 0;
		struct lb_calendar cal;
		if (dc->schedule && lb_calendar_parse(dc->schedule, &cal) == 0) {
			int64_t t = lb_calendar_next(&cal, now / 1000000000LL);
			next = t > 0 ? t * 1000000000LL : 0;
		}
		const struct lb_job_rec *last = NULL;
		for (size_t k = 0; k < q.n; k++)
			if (!strcmp(q.v[k].tenant, dc->tenant) && !strcmp(q.v[k].dataset, dc->name))
				last = &q.v[k];
		/* The last success: the dataset's newest snapshot. */
		int64_t ok_ns = 0;
		struct lb_snapshot *snap = NULL;
		char spec[2 * LB_NAME_MAX + 16];
		snprintf(spec, sizeof(spec), "%s@latest", dc->name);
		if (lb_store_find_snapshot(s->d->store, dc->tenant, spec, &snap) == 0) {
			ok_ns = snap->time_ns;
			lb_snapshot_free(snap);
		}
		lb_buf_reset(&b);
		lb_buf_put_str(&b, dc->tenant);
		lb_buf_put_str(&b, dc->name);
		lb_buf_put_str(&b, dc->schedule ? dc->schedule : "");
		char src[4200];
		snprintf(src, sizeof(src), "%s%s", dc->command ? "command: " : "",
			 dc->command ? dc->command : dc->source ? dc->source : "");
		lb_buf_put_str(&b, src);
		lb_buf_put_sv(&b, next);
		lb_buf_put_sv(&b, last ? last->start_ns : 0);
		lb_buf_put_sv(&b, last ? last->end_ns : 0);
		lb_buf_put_uv(&b, last ? (uint64_t)last->status : 0);
		lb_buf_put_str(&b, last ? last->error : "");
		lb_buf_put_str(&b, last ? last->snapshot : "");
		lb_buf_put_sv(&b, ok_ns);
		r = lb_frame_send_buf(s->fd, LB_MSG_SCHEDULE_ROW, &b);
		shown++;
	}
	snprintf(s->au_detail, sizeof(s->au_detail), "%zu datasets", shown);
	free(q.v);
	lb_buf_free(&b);
	return r < 0 ? r : send_end(s);
}

/* ---- forget ------------------------------------------------------------------------------ */

static int do_forget(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *name = lb_rd_strdup(&rd, 255);
	struct lb_snapshot *snap = NULL;
	int r;
	if (!lb_rd_done(&rd) || !tenant || !name) {
		r = reply_error(s, EPROTO, "malformed request");
		goto out;
	}
	au_tenant(s, tenant);
	au_object(s, "snapshot %s", name);
	/* Snapshots are append-only for tenants: only an administrator removes
	 * one (retention comes later, applied by the daemon itself).  Refused
	 * before any lookup, so the answer says nothing about the name. */
	if (!s->id->admin) {
		r = reply_error(s, EPERM, "forget is for administrators: snapshots are append-only for tenants");
		goto out;
	}
	r = find_snapshot(s, tenant, name, &snap);
	if (r < 0) {
		r = snapshot_error(s, r, name);
		goto out;
	}
	au_tenant(s, snap->tenant);
	char hex[LB_SNAP_HEX];
	au_object(s, "snapshot %s/%s %s", snap->tenant, snap->dataset, lb_snap_id_hex(snap->id, hex));
	r = lb_store_forget(s->d->store, snap);
	if (r == -EACCES) {
		r = reply_error(s, EACCES, "cannot forget %s: it is protected (lumbung unprotect lifts the hold)", name);
		goto out;
	}
	if (r < 0) {
		r = reply_error(s, -r, "cannot forget %s: %s", name, strerror(-r));
		goto out;
	}
	log_info("%s: forgot snapshot %s of %s/%s", s->peer, hex, snap->tenant, snap->dataset);
	audit_now(s, 0);
	r = lb_frame_send(s->fd, LB_MSG_OK, NULL, 0);
out:
	lb_snapshot_free(snap);
	free(tenant);
	free(name);
	return r;
}

/* ---- protect ---------------------------------------------------------------------------- */

static int do_protect(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *name = lb_rd_strdup(&rd, 255);
	int on = lb_rd_u8(&rd);
	struct lb_snapshot *snap = NULL;
	int r;
	if (!lb_rd_done(&rd) || !tenant || !name || on > 1) {
		r = reply_error(s, EPROTO, "malformed request");
		goto out;
	}
	s->au_verb = on ? "protect" : "unprotect";
	au_tenant(s, tenant);
	au_object(s, "snapshot %s", name);
	/* A legal hold is the administrators' to put and lift; refused
	 * before any lookup, like forget. */
	if (!s->id->admin) {
		r = reply_error(s, EPERM, "%s is for administrators", on ? "protect" : "unprotect");
		goto out;
	}
	r = find_snapshot(s, tenant, name, &snap);
	if (r < 0) {
		r = snapshot_error(s, r, name);
		goto out;
	}
	au_tenant(s, snap->tenant);
	char hex[LB_SNAP_HEX];
	au_object(s, "snapshot %s/%s %s", snap->tenant, snap->dataset, lb_snap_id_hex(snap->id, hex));
	r = lb_store_protect(s->d->store, snap, on);
	if (r < 0) {
		r = reply_error(s, -r, "cannot %s %s: %s", on ? "protect" : "unprotect", name, strerror(-r));
		goto out;
	}
	log_info("%s: %s snapshot %s of %s/%s", s->peer, on ? "protected" : "unprotected", hex, snap->tenant,
		 snap->dataset);
	audit_now(s, 0);
	r = lb_frame_send(s->fd, LB_MSG_OK, NULL, 0);
out:
	lb_snapshot_free(snap);
	free(tenant);
	free(name);
	return r;
}

/* ---- prune ------------------------------------------------------------------------------ */

/* Applies one dataset's policy to its snapshots (list[idx[0..n)], oldest
 * first), removing what it does not keep unless dry.  Members get the
 * store's minimum under the configured policy, so a prune they start never
 * removes more than the administrator allows. */
static int prune_dataset(struct session *s, const char *tenant, const char *dataset, struct lb_snapshot **list,
			 const size_t *idx, size_t n, int dry, uint64_t *kept, uint64_t *removed)
{
	const struct lb_config *cfg = s->cfg->cfg;
	struct lb_policy pol = lb_config_policy(cfg, tenant, dataset);
	if (!s->id->admin && lb_policy_any(&pol))
		lb_policy_floor(&pol, &cfg->store.min_keep);
	int64_t *times = calloc(n ? n : 1, sizeof(*times));
	int *protect = calloc(n ? n : 1, sizeof(*protect));
	int *keep = calloc(n ? n : 1, sizeof(*keep));
	int r = 0;
	if (!times || !protect || !keep) {
		r = reply_error(s, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		times[k] = list[idx[k]]->time_ns / 1000000000LL;
		int p = lb_store_is_protected(s->d->store, list[idx[k]]);
		if (p < 0) {
			r = reply_error(s, -p, "cannot tell whether a snapshot of %s/%s is protected: %s", tenant, dataset,
					strerror(-p));
			goto out;
		}
		protect[k] = p;
	}
	lb_retention_apply(&pol, n, times, protect, keep);
	for (size_t k = 0; k < n && r >= 0; k++) {
		struct lb_snapshot *snap = list[idx[k]];
		char hex[LB_SNAP_HEX];
		lb_snap_id_hex(snap->id, hex);
		int gone = 0;
		if (!keep[k] && !dry) {
			int f = lb_store_forget(s->d->store, snap);
			if (f == -EACCES) { /* protected after the decision: kept */
				keep[k] = LB_KEEP_PROTECTED;
				f = 0;
			}
			if (f < 0 && f != -ENOENT) {
				r = reply_error(s, -f, "cannot remove snapshot %s of %s/%s: %s", hex, tenant, dataset,
						strerror(-f));
				break;
			}
			gone = !keep[k];
			if (gone)
				log_info("%s: prune removed snapshot %s of %s/%s", s->peer, hex, tenant, dataset);
		}
		if (keep[k])
			(*kept)++;
		else
			(*removed)++;
		struct lb_buf b;
		lb_buf_init(&b);
		lb_buf_put_str(&b, tenant);
		lb_buf_put_str(&b, dataset);
		lb_buf_put_str(&b, hex);
		lb_buf_put_sv(&b, snap->time_ns);
		lb_buf_put_uv(&b, (uint64_t)keep[k]);
		lb_buf_put_u8(&b, (uint8_t)gone);
		r = lb_frame_send_buf(s->fd, LB_MSG_PRUNE_ROW, &b);
		lb_buf_free(&b);
	}
out:
	free(times);
	free(protect);
	free(keep);
	return r;
}

static int do_prune(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	char *dataset = lb_rd_strdup(&rd, LB_NAME_MAX);
	int dry = lb_rd_u8(&rd);
	int r = 0;
	uint64_t kept = 0, removed = 0;
	if (!lb_rd_done(&rd) || !tenant || !dataset || dry > 1) {
		r = reply_error(s, EPROTO, "malformed request");
		goto out;
	}
	au_tenant(s, tenant);
	au_object(s, "%s%s", dataset, dry ? " (dry run)" : "");
	for (size_t i = 0; i < s->id->ntenants && r >= 0; i++) {
		const char *t = s->id->tenants[i];
		if (*tenant && strcmp(tenant, t))
			continue;
		struct lb_snapshot **list;
		size_t n;
		r = lb_store_list_snapshots(s->d->store, t, *dataset ? dataset : NULL, &list, &n);
		if (r < 0) {
			r = reply_error(s, -r, "cannot list snapshots: %s", strerror(-r));
			goto out;
		}
		size_t *idx = calloc(n ? n : 1, sizeof(*idx));
		char *done = calloc(n ? n : 1, 1);
		if (!idx || !done)
			r = reply_error(s, ENOMEM, "out of memory");
		/* One dataset at a time, each in time order (the list's). */
		for (size_t k = 0; r >= 0 && k < n; k++) {
			if (done[k])
				continue;
			size_t m = 0;
			for (size_t j = k; j < n; j++)
				if (!done[j] && !strcmp(list[j]->dataset, list[k]->dataset)) {
					idx[m++] = j;
					done[j] = 1;
				}
			r = prune_dataset(s, t, list[k]->dataset, list, idx, m, dry, &kept, &removed);
		}
		free(idx);
		free(done);
		lb_snapshot_list_free(list, n);
	}
	if (r >= 0) {
		snprintf(s->au_detail, sizeof(s->au_detail), "%llu kept, %llu %s", (unsigned long long)kept,
			 (unsigned long long)removed, dry ? "would be removed" : "removed");
		r = send_end(s);
	}
out:
	free(tenant);
	free(dataset);
	return r;
}

/* ---- garbage collection ------------------------------------------------------------------ */

static int do_gc(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	int dry = lb_rd_u8(&rd);
	if (!lb_rd_done(&rd) || dry > 1)
		return reply_error(s, EPROTO, "malformed request");
	au_object(s, "store%s", dry ? " (dry run)" : "");
	if (!s->id->admin)
		return reply_error(s, EPERM, "gc is for administrators (members of %s)",
				   s->cfg->cfg->daemon.admin_group);
	struct lb_gc_options o = { .dry_run = dry, .repack_below = (unsigned)s->cfg->cfg->store.gc_repack_below };
	struct lb_gc_stats st;
	struct lb_job_rec job = { .kind = "gc" };
	int64_t start = lb_now_ns();
	log_info("%s: gc%s started", s->peer, dry ? " --dry-run" : "");
	int r = lb_store_gc(s->d->store, &o, &st);
	if (!dry) {
		/* Every real collection leaves a job record for the reports:
		 * bytes_read is what it copied, new_stored what it wrote and
		 * freed what it gave back. */
		job.start_ns = start;
		job.end_ns = lb_now_ns();
		job.bytes_read = st.bytes_written;
		job.new_stored = st.bytes_written;
		job.freed = st.bytes_freed;
		job.files = st.packs_deleted + st.packs_repacked + st.orphans;
		if (r < 0) {
			job.status = -r;
			snprintf(job.error, sizeof(job.error), "%s", lb_error_detail());
		}
		daemon_job_record(s->d, &job);
	}
	if (r < 0) {
		log_warning("%s: gc failed: %s", s->peer, lb_error_detail());
		return reply_error(s, -r, "gc failed: %s", lb_error_detail());
	}
	char a[32], b2[32];
	log_info("%s: gc%s done: %llu packs deleted, %llu repacked, %llu leftovers, %s freed, %s written", s->peer,
		 dry ? " --dry-run" : "", (unsigned long long)st.packs_deleted, (unsigned long long)st.packs_repacked,
		 (unsigned long long)st.orphans, lb_format_size(a, sizeof(a), st.bytes_freed),
		 lb_format_size(b2, sizeof(b2), st.bytes_written));
	if (st.problem[0])
		log_warning("%s: gc: %s", s->peer, st.problem);
	snprintf(s->au_detail, sizeof(s->au_detail), "%s %s", lb_format_size(a, sizeof(a), st.bytes_freed),
		 dry ? "would be freed" : "freed");
	s->au_bytes = st.bytes_freed;
	audit_now(s, 0);
	struct lb_buf b;
	lb_buf_init(&b);
	const uint64_t v[] = { st.snapshots, st.trees, st.chunks_live, st.chunks_dead, st.packs, st.packs_deleted,
			       st.packs_repacked, st.packs_written, st.packs_damaged, st.packs_missing, st.orphans,
			       st.bytes_freed, st.bytes_written, st.bytes_dead_left, st.backups_waited,
			       (uint64_t)(st.wait_ns / 1000000), (uint64_t)(st.mark_ns / 1000000),
			       (uint64_t)(st.sweep_ns / 1000000) };
	for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++)
		lb_buf_put_uv(&b, v[i]);
	lb_buf_put_str(&b, st.problem);
	r = lb_frame_send_buf(s->fd, LB_MSG_GC_DONE, &b);
	lb_buf_free(&b);
	return r;
}

/* ---- report ---------------------------------------------------------------------------- */

#define DAY_NS (86400LL * 1000000000LL)

/* A value's history from the daily samples: the earliest sample in the
 * window of N days before now. */
struct hist {
	char tenant[65];
	int64_t t7, t30;
	uint64_t v7, v30;
};

struct report_ctx {
	struct session *s;
	int64_t now, since;
	struct lb_job_rec last_gc; /* the newest collection in the period (admins) */
	struct { int64_t t; uint64_t v; } *pts;
	size_t npts, cappts;
	struct hist *h;   /* per tenant, plus one named "" for the store */
	size_t nh;
	/* per dataset, from job records */
	struct dsrow {
		char tenant[65], dataset[65];
		int64_t last_ok;
		uint64_t jobs, failed;
		char error[512];
		uint64_t read, sent, stored;  /* over the period */
		uint64_t last[3];             /* the newest job's read, sent, stored */
		/* commit times of its snapshots in the period, for missed nights */
		int64_t *snaps;
		size_t nsnaps, capsnaps;
	} *ds;
	size_t nds, capds;
};

static struct hist *hist_of(struct report_ctx *c, const char *tenant)
{
	for (size_t i = 0; i < c->nh; i++)
		if (!strcmp(c->h[i].tenant, tenant))
			return &c->h[i];
	return NULL;
}

static void hist_note(struct hist *h, int64_t now, int64_t t, uint64_t v)
{
	if (t >= now - 7 * DAY_NS && (!h->t7 || t < h->t7)) {
		h->t7 = t;
		h->v7 = v;
	}
	if (t >= now - 30 * DAY_NS && (!h->t30 || t < h->t30)) {
		h->t30 = t;
		h->v30 = v;
	}
}

static int sample_cb(void *arg, const struct lb_sample *smp)
{
	struct report_ctx *c = arg;
	hist_note(hist_of(c, ""), c->now, smp->time_ns, smp->physical);
	if (smp->time_ns >= c->since && lb_grow(&c->pts, &c->cappts, c->npts + 1, sizeof(*c->pts)) == 0) {
		c->pts[c->npts].t = smp->time_ns;
		c->pts[c->npts++].v = smp->physical;
	}
	for (size_t i = 0; i < smp->nt; i++) {
		struct hist *h = hist_of(c, smp->t[i].tenant);
		if (h)
			hist_note(h, c->now, smp->time_ns, smp->t[i].charged);
	}
	return 0;
}

/* Bytes per day from the window's first sample to now (0 without a day
 * of history). */
static int64_t growth(int64_t now, int64_t t, uint64_t then, uint64_t v)
{
	if (!t || now - t < DAY_NS)
		return 0;
	return (int64_t)(((double)v - (double)then) * (double)DAY_NS / (double)(now - t));
}

static int64_t forecast(int64_t now, uint64_t value, uint64_t limit, int64_t g7, int64_t g30)
{
	int64_t g = g30 > 0 ? g30 : g7;
	if (g <= 0 || !limit || value >= limit)
		return value >= limit && limit ? now : 0;
	return now + (int64_t)((double)(limit - value) / (double)g * (double)DAY_NS);
}

static struct dsrow *ds_of(struct report_ctx *c, const char *tenant, const char *dataset)
{
	for (size_t i = 0; i < c->nds; i++)
		if (!strcmp(c->ds[i].tenant, tenant) && !strcmp(c->ds[i].dataset, dataset))
			return &c->ds[i];
	if (lb_grow(&c->ds, &c->capds, c->nds + 1, sizeof(*c->ds)) < 0)
		return NULL;
	struct dsrow *d = &c->ds[c->nds++];
	memset(d, 0, sizeof(*d));
	snprintf(d->tenant, sizeof(d->tenant), "%s", tenant);
	snprintf(d->dataset, sizeof(d->dataset), "%s", dataset);
	return d;
}

static int job_cb(void *arg, const struct lb_job_rec *j)
{
	struct report_ctx *c = arg;
	if (strcmp(j->kind, "backup") != 0) {
		if (!strcmp(j->kind, "gc") && c->s->id->admin && j->end_ns > c->last_gc.end_ns)
			c->last_gc = *j;
		return 0;
	}
	if (!identity_may(c->s->id, j->tenant))
		return 0;
	struct dsrow *d = ds_of(c, j->tenant, j->dataset);
	if (!d)
		return -ENOMEM;
	d->jobs++;
	d->read += j->bytes_read;
	d->sent += j->bytes_sent;
	d->stored += j->new_stored;
	d->last[0] = j->bytes_read;
	d->last[1] = j->bytes_sent;
	d->last[2] = j->new_stored;
	if (j->status) {
		d->failed++;
		snprintf(d->error, sizeof(d->error), "%s", j->error);
	}
	/* The last success is the newest snapshot's time (set below), so that
	 * every figure of a dataset speaks of the same instants. */
	return 0;
}

static int do_report(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *want = lb_rd_strdup(&rd, LB_NAME_MAX);
	int64_t since = lb_rd_sv(&rd);
	if (!lb_rd_done(&rd) || !want) {
		free(want);
		return reply_error(s, EPROTO, "malformed request");
	}
	au_tenant(s, want);
	if (*want && !identity_may(s->id, want)) {
		free(want);
		return reply_error(s, ENOENT, "tenant not found");
	}
	struct report_ctx c = { .s = s, .now = lb_now_ns(), .since = since };
	const struct lb_config *cfg = s->cfg->cfg;
	c.h = calloc(s->id->ntenants + 1, sizeof(*c.h));
	int r = c.h ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < s->id->ntenants; i++)
		snprintf(c.h[c.nh++].tenant, sizeof(c.h[0].tenant), "%s", s->id->tenants[i]);
	if (r == 0)
		c.nh++; /* the store's, named "" */
	struct lb_backend *be = lb_store_backend(s->d->store);
	if (r == 0)
		r = lb_sample_read(be, LB_MIN(since, c.now - 31 * DAY_NS), sample_cb, &c);
	if (r == 0)
		r = lb_job_read(be, since, job_cb, &c);
	struct lb_store_space sp = { 0 };
	if (r == 0)
		r = lb_store_space(s->d->store, &sp);
	for (size_t i = 0; r == 0 && i < s->id->ntenants; i++) {
		const char *t = s->id->tenants[i];
		if (*want && strcmp(t, want))
			continue;
		const struct lb_tenant_cfg *tc = lb_config_tenant(cfg, t);
		struct lb_tenant_usage u;
		lb_store_tenant_usage(s->d->store, t, &u);
		uint64_t ex = 0, fair = 0;
		for (size_t k = 0; k < sp.ntenants; k++)
			if (!strcmp(sp.tenants[k], t)) {
				ex = sp.exclusive[k];
				fair = sp.fair[k];
			}
		struct lb_snapshot **list;
		size_t n;
		int64_t oldest = 0, newest = 0;
		r = lb_store_list_snapshots(s->d->store, t, NULL, &list, &n);
		if (r < 0)
			break;
		if (n) {
			oldest = list[0]->time_ns;
			newest = list[n - 1]->time_ns;
		}
		/* Datasets: declared ones, and every one with a snapshot. */
		for (size_t k = 0; k < cfg->ndatasets; k++)
			if (!strcmp(cfg->datasets[k].tenant, t))
				ds_of(&c, t, cfg->datasets[k].name);
		for (size_t k = 0; k < n; k++) {
			struct dsrow *d = ds_of(&c, t, list[k]->dataset);
			if (d && list[k]->time_ns > d->last_ok)
				d->last_ok = list[k]->time_ns;
			if (d && list[k]->time_ns >= since &&
			    lb_grow(&d->snaps, &d->capsnaps, d->nsnaps + 1, sizeof(int64_t)) == 0)
				d->snaps[d->nsnaps++] = list[k]->time_ns;
		}
		lb_snapshot_list_free(list, n);
		struct hist *h = hist_of(&c, t);
		int64_t g7 = growth(c.now, h->t7, h->v7, u.charged), g30 = growth(c.now, h->t30, h->v30, u.charged);
		struct lb_buf b;
		lb_buf_init(&b);
		lb_buf_put_str(&b, t);
		lb_buf_put_str(&b, tc && tc->name ? tc->name : "");
		lb_buf_put_uv(&b, tc ? tc->quota : 0);
		lb_buf_put_uv(&b, tc ? tc->soft_quota : 0);
		lb_buf_put_uv(&b, u.charged);
		lb_buf_put_uv(&b, s->id->admin ? ex : 0);
		lb_buf_put_uv(&b, s->id->admin ? fair : 0);
		lb_buf_put_uv(&b, u.logical);
		lb_buf_put_uv(&b, u.raw);
		lb_buf_put_uv(&b, u.snapshots);
		lb_buf_put_sv(&b, oldest);
		lb_buf_put_sv(&b, newest);
		lb_buf_put_sv(&b, g7);
		lb_buf_put_sv(&b, g30);
		lb_buf_put_sv(&b, forecast(c.now, u.charged, tc ? tc->quota : 0, g7, g30));
		r = lb_frame_send_buf(s->fd, LB_MSG_REPORT_TENANT, &b);
		lb_buf_free(&b);
	}
	for (size_t i = 0; r == 0 && i < c.nds; i++) {
		if (*want && strcmp(c.ds[i].tenant, want))
			continue;
		struct lb_buf b;
		lb_buf_init(&b);
		lb_buf_put_str(&b, c.ds[i].tenant);
		lb_buf_put_str(&b, c.ds[i].dataset);
		lb_buf_put_sv(&b, c.ds[i].last_ok);
		lb_buf_put_uv(&b, c.ds[i].jobs);
		lb_buf_put_uv(&b, c.ds[i].failed);
		lb_buf_put_str(&b, c.ds[i].error);
		/* Missed nights: every time the schedule passed in the period with
		 * no snapshot before the next one.  The last is given an hour
		 * beyond the timers' random delay before it counts as missed. */
		const struct lb_dataset_cfg *dc = lb_config_dataset(cfg, c.ds[i].tenant, c.ds[i].dataset);
		struct lb_calendar cal;
		int64_t missed[62];
		uint64_t nmissed = 0;
		if (dc && dc->schedule && lb_calendar_parse(dc->schedule, &cal) == 0) {
			int64_t e = lb_calendar_next(&cal, since / 1000000000LL);
			int64_t grace = (3600LL + cfg->daemon.schedule_delay) * 1000000000LL;
			while (e > 0 && e * 1000000000LL <= c.now - grace) {
				int64_t next = lb_calendar_next(&cal, e);
				int64_t lo = e * 1000000000LL, hi = next > 0 ? next * 1000000000LL : c.now;
				int ok = 0;
				for (size_t k = 0; k < c.ds[i].nsnaps && !ok; k++)
					ok = c.ds[i].snaps[k] >= lo && c.ds[i].snaps[k] < hi;
				if (!ok) {
					if (nmissed < LB_ARRAY_SIZE(missed))
						missed[nmissed] = lo;
					nmissed++;
				}
				e = next;
			}
		}
		lb_buf_put_str(&b, dc && dc->schedule ? dc->schedule : "");
		lb_buf_put_uv(&b, nmissed);
		for (uint64_t k = 0; k < nmissed && k < LB_ARRAY_SIZE(missed); k++)
			lb_buf_put_sv(&b, missed[k]);
		/* What the nights cost: read at the source, sent, stored. */
		lb_buf_put_uv(&b, c.ds[i].read);
		lb_buf_put_uv(&b, c.ds[i].sent);
		lb_buf_put_uv(&b, c.ds[i].stored);
		for (int k = 0; k < 3; k++)
			lb_buf_put_uv(&b, c.ds[i].last[k]);
		r = lb_frame_send_buf(s->fd, LB_MSG_REPORT_DATASET, &b);
		lb_buf_free(&b);
	}
	/* Store totals are the administrators' alone. */
	if (r == 0 && s->id->admin && !*want) {
		struct hist *h = hist_of(&c, "");
		int64_t g30 = growth(c.now, h->t30, h->v30, sp.physical);
		int64_t g7 = growth(c.now, h->t7, h->v7, sp.physical);
		struct lb_buf b;
		lb_buf_init(&b);
		lb_buf_put_uv(&b, sp.physical);
		lb_buf_put_uv(&b, cfg->store.capacity);
		lb_buf_put_uv(&b, sp.free_bytes);
		lb_buf_put_uv(&b, lb_config_quota_sum(cfg));
		lb_buf_put_uv(&b, sp.referenced);
		lb_buf_put_uv(&b, sp.shared);
		lb_buf_put_uv(&b, sp.unreferenced);
		lb_buf_put_uv(&b, sp.overhead);
		lb_buf_put_sv(&b, g30 ? g30 : g7);
		lb_buf_put_sv(&b, forecast(c.now, sp.physical, cfg->store.capacity, g7, g30));
		lb_buf_put_sv(&b, c.last_gc.end_ns);
		lb_buf_put_uv(&b, c.last_gc.freed);
		lb_buf_put_uv(&b, (uint64_t)c.last_gc.status);
		r = lb_frame_send_buf(s->fd, LB_MSG_REPORT_STORE, &b);
		lb_buf_free(&b);
		for (size_t i = 0; r == 0 && i < c.npts; i++) {
			lb_buf_init(&b);
			lb_buf_put_sv(&b, c.pts[i].t);
			lb_buf_put_uv(&b, c.pts[i].v);
			r = lb_frame_send_buf(s->fd, LB_MSG_REPORT_POINT, &b);
			lb_buf_free(&b);
		}
	}
	lb_store_space_clear(&sp);
	free(c.h);
	for (size_t i = 0; i < c.nds; i++)
		free(c.ds[i].snaps);
	free(c.ds);
	free(c.pts);
	free(want);
	if (r < 0 && !client_gone(r))
		return reply_error(s, -r, "cannot build the report: %s", strerror(-r));
	return r < 0 ? r : send_end(s);
}

/* ---- quota --------------------------------------------------------------------------- */

static int do_quota(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	if (!lb_rd_done(&rd) || !tenant) {
		free(tenant);
		return reply_error(s, EPROTO, "malformed request");
	}
	au_tenant(s, tenant);
	if (*tenant && !identity_may(s->id, tenant)) {
		free(tenant);
		return reply_error(s, ENOENT, "tenant not found");
	}
	const struct lb_config *cfg = s->cfg->cfg;
	int r = 0;
	for (size_t i = 0; r == 0 && i < s->id->ntenants; i++) {
		const char *t = s->id->tenants[i];
		if (*tenant && strcmp(t, tenant))
			continue;
		const struct lb_tenant_cfg *tc = lb_config_tenant(cfg, t);
		struct lb_tenant_usage u;
		lb_store_tenant_usage(s->d->store, t, &u);
		struct lb_buf b;
		lb_buf_init(&b);
		lb_buf_put_str(&b, t);
		lb_buf_put_str(&b, tc && tc->name ? tc->name : "");
		lb_buf_put_uv(&b, tc ? tc->quota : 0);
		lb_buf_put_uv(&b, tc ? tc->soft_quota : 0);
		lb_buf_put_uv(&b, u.charged);
		lb_buf_put_uv(&b, u.snapshots);
		lb_buf_put_uv(&b, u.logical);
		/* What is shared with whom is the administrators' business. */
		lb_buf_put_uv(&b, s->id->admin ? lb_store_tenant_exclusive(s->d->store, t) : 0);
		r = lb_frame_send_buf(s->fd, LB_MSG_QUOTA_ROW, &b);
		lb_buf_free(&b);
	}
	if (r == 0 && s->id->admin) {
		struct lb_buf b;
		lb_buf_init(&b);
		lb_buf_put_uv(&b, lb_store_physical(s->d->store));
		lb_buf_put_uv(&b, cfg->store.capacity);
		lb_buf_put_uv(&b, lb_config_quota_sum(cfg));
		r = lb_frame_send_buf(s->fd, LB_MSG_QUOTA_STORE, &b);
		lb_buf_free(&b);
	}
	free(tenant);
	return r == 0 ? send_end(s) : r;
}

/* ---- the connection ---------------------------------------------------------------- */

static int welcome(struct session *s)
{
	struct lb_rd rd;
	lb_frame_reader(&s->f, &rd);
	char *client = lb_rd_strdup(&rd, 64);
	int ok = lb_rd_done(&rd) && client;
	free(client);
	if (!ok)
		return reply_error(s, EPROTO, "malformed hello");
	if (!s->id->admin && s->id->ntenants == 0) {

		daemon_audit(s->d, s->id, "", "connect", "", EACCES, "not a member of any tenant", 0);
		return reply_error(s, EACCES, "user %s is not a member of any tenant of this lumbungd", s->id->name);
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, PACKAGE_VERSION);
	lb_buf_put_u8(&b, (uint8_t)s->id->admin);
	lb_buf_put_uv(&b, s->id->ntenants);
	for (size_t i = 0; i < s->id->ntenants; i++)
		lb_buf_put_str(&b, s->id->tenants[i]);
	int r = lb_frame_send_buf(s->fd, LB_MSG_WELCOME, &b);
	lb_buf_free(&b);
	return r == 0 ? 1 : r;
}

void session_run(struct daemon *d, int fd, const struct identity *peer)
{
	struct session s = { .d = d, .fd = fd, .id = peer };
	lb_frame_init(&s.f);
	/* Without it (no memory) frames are read as they come. */
	(void)lb_frame_readahead(&s.f, LB_FRAME_BATCH);
	snprintf(s.peer, sizeof(s.peer), "%s (uid %u, pid %ld)", peer->name, (unsigned)peer->uid, (long)peer->pid);
	s.cfg = daemon_config_get(d);
	int greeted = 0;
	for (;;) {
		if (d->stopping)
			break;
		lb_clear_error();
		int r = lb_frame_read(fd, &s.f);
		if (r == 0)
			break;
		if (r < 0) {
			if (r == -EPROTONOSUPPORT)
				lb_frame_send_error(fd, EPROTONOSUPPORT, "%s", lb_error_detail());
			else if (r == -EPROTO)
				lb_frame_send_error(fd, EPROTO, "%s", lb_error_detail());
			if (r == -EAGAIN)
				log_info("%s: connection dropped: nothing received for %llds (client_timeout)",
					 s.peer, (long long)s.cfg->cfg->daemon.client_timeout);
			else
				log_info("%s: connection dropped: %s", s.peer,
					 *lb_error_detail() ? lb_error_detail() : strerror(-r));
			break;
		}
		if (!greeted) {
			if (s.f.type != LB_MSG_HELLO) {
				lb_frame_send_error(fd, EPROTO, "expected hello");
				break;
			}
			r = welcome(&s);
			if (r != 1)
				break;
			greeted = 1;
			continue;
		}
		static const char *verbs[] = {
			[LB_MSG_BACKUP] = "backup", [LB_MSG_SNAPSHOTS] = "snapshots", [LB_MSG_LS] = "ls",
			[LB_MSG_READ] = "read", [LB_MSG_DIFF] = "diff", [LB_MSG_CHECK] = "check",
			[LB_MSG_AUDIT] = "audit", [LB_MSG_QUOTA] = "quota", [LB_MSG_FORGET] = "forget",
			[LB_MSG_REPORT] = "report", [LB_MSG_PRUNE] = "prune", [LB_MSG_GC] = "gc", [LB_MSG_JOBS] = "jobs",
			[LB_MSG_SCHEDULE] = "schedule",
			[LB_MSG_PROTECT] = "protect",
		};
		int type = s.f.type;
		s.au_tenant[0] = s.au_object[0] = s.au_detail[0] = '\0';
		s.au_bytes = 0;
		s.au_result = 0;
		s.au_verb = type < (int)LB_ARRAY_SIZE(verbs) ? verbs[type] : NULL;
		s.au_pending = s.au_verb != NULL;
		switch (s.f.type) {
		case LB_MSG_AUDIT: r = do_audit(&s); break;
		case LB_MSG_QUOTA: r = do_quota(&s); break;
		case LB_MSG_FORGET: r = do_forget(&s); break;
		case LB_MSG_REPORT: r = do_report(&s); break;
		case LB_MSG_PRUNE: r = do_prune(&s); break;
		case LB_MSG_PROTECT: r = do_protect(&s); break;
		case LB_MSG_GC: r = do_gc(&s); break;
		case LB_MSG_JOBS: r = do_jobs(&s); break;
		case LB_MSG_SCHEDULE: r = do_schedule(&s); break;
		case LB_MSG_BACKUP: r = do_backup(&s); break;
		case LB_MSG_SNAPSHOTS: r = do_snapshots(&s); break;
		case LB_MSG_LS: r = do_ls(&s); break;
		case LB_MSG_READ: r = do_read(&s); break;
		case LB_MSG_DIFF: r = do_diff(&s); break;
		case LB_MSG_CHECK: r = do_check(&s); break;
		default:
			lb_frame_send_error(fd, EPROTO, "unknown request type %d", s.f.type);
			r = -EPROTO;
		}
		/* A request whose answer broke off still gets its record. */
		audit_now(&s, s.au_result ? s.au_result : (r < 0 ? -r : 0));
		/* A failed backup leaves the client mid-stream, and a protocol
		 * error, a broken stream or an answer abandoned half-sent after a
		 * send timeout leaves nothing to talk about: all end the
		 * connection. */
		if (r == -EAGAIN && type != LB_MSG_BACKUP)
			log_info("%s: connection dropped: it read nothing of the answer for %llds (client_timeout)",
				 s.peer, (long long)s.cfg->cfg->daemon.client_timeout);
		if (r < 0 && (type == LB_MSG_BACKUP || r == -EPROTO || r == -ECANCELED || client_gone(r)))
			break;
	}
	lb_frame_free(&s.f);
	daemon_config_put(d, s.cfg);
}
