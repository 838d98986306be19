/* backup.c - `lumbung backup`: walks paths (or reads an archive, or stdin)
 * with libarchive and streams entries and data to lumbungd.
 *
 * Files whose size, mtime, ctime and inode match the previous snapshot's
 * entry are not read: they are sent as REUSE and the daemon takes their data
 * from the previous snapshot. */
#include "client.h"
#include "hash.h"
#include "ingest.h"
#include "link.h"
#include "rdelta.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The parent snapshot's entries, by path, for the unchanged-file test. */
struct prev {
	char *path;
	uint64_t size, ino, dev;
	int64_t mtime, ctime;
	int type;
	int sparse;
	/* The entry as lumbungd sent it, for a file with one link: sent back
	 * as its REUSE when the walk finds the file unchanged, if the owner's
	 * names (which can change without moving ctime) are the same. */
	uint8_t *raw;
	uint32_t rawlen;
	char *uname, *gname;
};

struct prev_map {
	struct prev *slots;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int prev_add(struct prev_map *m, struct lb_entry *e, const uint8_t *raw, size_t rawlen)
{
	uint8_t *copy = NULL;
	if (raw && !(copy = malloc(rawlen)))
		return -ENOMEM;
	if (raw)
		memcpy(copy, raw, rawlen);
	char *un = NULL, *gn = NULL;
	if (raw) {
		/* Taken over from e, like its path. */
		un = e->uname;
		gn = e->gname;
		e->uname = e->gname = NULL;
	}
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 1024;
		struct prev *ns = calloc(ncap, sizeof(*ns));
		if (!ns) {
			free(copy);
			free(un);
			free(gn);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].path)
				continue;
			size_t j = hash_str(m->slots[i].path) & (ncap - 1);
			while (ns[j].path)
				j = (j + 1) & (ncap - 1);
			ns[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = ns;
		m->cap = ncap;
	}
	size_t j = hash_str(e->path) & (m->cap - 1);
	while (m->slots[j].path)
		j = (j + 1) & (m->cap - 1);
	m->slots[j] = (struct prev){ .path = e->path, .size = e->size, .ino = e->ino, .dev = e->dev,
				     .mtime = e->mtime_ns, .ctime = e->ctime_ns, .type = e->type,
				     .sparse = e->nextents > 0, .raw = copy, .rawlen = (uint32_t)rawlen,
				     .uname = un, .gname = gn };
	e->path = NULL;
	m->n++;
	return 0;
}

static const struct prev *prev_find(const struct prev_map *m, const char *path)
{
	if (!m->cap)
		return NULL;
	for (size_t j = hash_str(path) & (m->cap - 1); m->slots[j].path; j = (j + 1) & (m->cap - 1))
		if (!strcmp(m->slots[j].path, path))
			return &m->slots[j];
	return NULL;
}

static void prev_free(struct prev_map *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slots[i].path);
		free(m->slots[i].raw);
		free(m->slots[i].uname);
		free(m->slots[i].gname);
	}
	free(m->slots);
}

struct job {
	struct client *c;
	struct prev_map prev;
	int have_parent;
	const char *what; /* for messages */
	uint64_t files, bytes, reused, sent;
	int64_t last_progress;
	int progress;
	struct lb_buf b;
	struct lb_buf out; /* ENTRY and REUSE frames not yet written */
	int64_t out_since; /* when the first of them was queued */
	struct lb_extent *ext;
	size_t next, capext;
	/* Delta transfer (PROTOCOL.md §6.2.2). */
	int delta;              /* on for files walked from disk */
	uint64_t delta_min;     /* changed files from this size on */
	uint64_t delta_files, delta_whole;
	uint8_t *dbuf;          /* delta bytes not yet sent */
	size_t dlen;
	const char *fault;      /* LUMBUNG_TEST_FAULT, for the tests */
	struct lb_link *link;   /* the link this job's frames cross, if any */
	int64_t last_send;      /* when delta bytes last went out */
	int told;               /* lumbungd's ERROR was read and printed */
	char why[300];          /* why the job failed, for lumbungd's record */
	/* Where an interrupted transfer stopped (PROTOCOL.md §6.2.3). */
	char *rs_path;
	uint64_t rs_size;
	int64_t rs_mtime;
	struct lb_chunkref *rs_c;
	size_t rs_n;
	uint64_t resumed; /* bytes not sent again */
};

static void show_progress(struct job *j, int final)
{
	if (!j->progress)
		return;
	int64_t now = lb_mono_ns();
	if (!final && now - j->last_progress < 250000000LL)
		return;
	j->last_progress = now;
	char sz[32];
	fprintf(stderr, "\r%llu files, %s read, %llu unchanged%s", (unsigned long long)j->files,
		lb_format_size(sz, sizeof(sz), j->bytes), (unsigned long long)j->reused, final ? "\n" : "   ");
}

/* Writes the queued frames; every other frame and every request waits for
 * them, so the order on the wire is the order of the calls. */
static int flush_out(struct job *j)
{
	return j->out.len || j->out.err ? lb_frames_flush(j->c->fd, &j->out) : 0;
}

static int jsend(struct job *j, int type, const void *p, size_t len)
{
	int r = flush_out(j);
	return r < 0 ? r : lb_frame_send(j->c->fd, type, p, len);
}

static int jsend_buf(struct job *j, int type, const struct lb_buf *b)
{
	return b->err ? b->err : jsend(j, type, b->p, b->len);
}

static int queue_frame(struct job *j, int type, const void *p, size_t len)
{
	int64_t now = lb_mono_ns();
	if (!j->out.len)
		j->out_since = now;
	lb_frame_put(&j->out, type, p, len);
	/* A slow walk sends what it has every tenth of a second, as it did
	 * frame by frame, within lumbungd's client_timeout. */
	return j->out.len >= LB_FRAME_BATCH || j->out.err || now - j->out_since >= 100000000LL ? flush_out(j) : 0;
}

/* Entries of unchanged files and of everything but regular files, the
 * bulk of a nightly run, are queued and written 64 KiB at a time. */
static int send_entry(struct job *j, int type, const struct lb_entry *e)
{
	lb_buf_reset(&j->b);
	lb_entry_encode(&j->b, e);
	if (j->b.err)
		return j->b.err;
	if (type != LB_MSG_REUSE && type != LB_MSG_ENTRY)
		return jsend(j, type, j->b.p, j->b.len);
	return queue_frame(j, type, j->b.p, j->b.len);
}

static int add_extent(struct job *j, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (j->next > 0 && j->ext[j->next - 1].off + j->ext[j->next - 1].len == off) {
		j->ext[j->next - 1].len += len;
		return 0;
	}
	int r = lb_grow(&j->ext, &j->capext, j->next + 1, sizeof(*j->ext));
	if (r < 0)
		return r;
	j->ext[j->next++] = (struct lb_extent){ off, len };
	return 0;
}

/* Streams the data of the current archive member as DATA frames and ends
 * it with its sparse map. */
static int send_data(struct job *j, struct archive *a, uint64_t size, const char *path)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	j->next = 0;
	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (add_extent(j, (uint64_t)off, len) < 0)
			return -ENOMEM;
		const uint8_t *p = buf;
		while (len > 0) {
			size_t n = LB_MIN(len, (size_t)LB_DATA_CHUNK);
			int s = jsend(j, LB_MSG_DATA, p, n);
			if (s < 0)
				return s;
			p += n;
			len -= n;
			j->bytes += n;
			j->sent += n;
		}
		show_progress(j, 0);
	}
	if (r != ARCHIVE_EOF) {
		fprintf(stderr, "lumbung: %s: %s: %s\n", j->what, shown(path), shown(archive_error_string(a)));
		return -EIO;
	}
	if (j->next == 0 && size > 0) {
		/* All hole: send its last byte (a zero), so that the map says
		 * "sparse" and the restore makes a sparse file of the size. */
		static const uint8_t zero;
		int s = jsend(j, LB_MSG_DATA, &zero, 1);
		if (s < 0)
			return s;
		if (add_extent(j, size - 1, 1) < 0)
			return -ENOMEM;
		j->sent += 1;
	}
	lb_buf_reset(&j->b);
	/* A dense file is one extent covering it; only a sparse map is sent. */
	int dense = j->next == 0 || (j->next == 1 && j->ext[0].off == 0 && j->ext[0].len == size);
	lb_buf_put_uv(&j->b, dense ? 0 : j->next);
	for (size_t i = 0; !dense && i < j->next; i++) {
		lb_buf_put_uv(&j->b, j->ext[i].off);
		lb_buf_put_uv(&j->b, j->ext[i].len);
	}
	lb_buf_put_uv(&j->b, size);
	return jsend_buf(j, LB_MSG_FILE_END, &j->b);
}

/* ---- delta transfer (PROTOCOL.md §6.2.2) ------------------------------------ */

#define DELTA_FLUSH (256u << 10)

static int delta_flush(struct job *j)
{
	size_t off = 0;
	if (j->dlen && j->fault && !strcmp(j->fault, "delta-corrupt")) {
		/* The tests' corrupted delta: one byte flipped in transit. */
		j->dbuf[j->dlen / 2] ^= 0x5a;
		j->fault = NULL;
	}
	while (off < j->dlen) {
		size_t n = LB_MIN(j->dlen - off, (size_t)LB_DATA_CHUNK);
		int r = jsend(j, LB_MSG_DATA, j->dbuf + off, n);
		if (r < 0)
			return r;
		j->sent += n;
		off += n;
	}
	j->dlen = 0;
	j->last_send = lb_mono_ns();
	return 0;
}

/* A huge file that barely changed makes almost no delta for minutes:
 * something goes to lumbungd every 30 s (an empty DATA frame at worst),
 * so that its timeout for silent clients (10 min) never fires. */
static int delta_keepalive(struct job *j)
{
	if (lb_mono_ns() - j->last_send < 30000000000LL)
		return 0;
	if (j->dlen)
		return delta_flush(j);
	j->last_send = lb_mono_ns();
	return jsend(j, LB_MSG_DATA, NULL, 0);
}

static int delta_out(void *arg, const void *data, size_t len)
{
	struct job *j = arg;
	if (j->dlen + len > DELTA_FLUSH + LB_DATA_CHUNK) {
		int r = delta_flush(j);
		if (r < 0)
			return r;
	}
	memcpy(j->dbuf + j->dlen, data, len);
	j->dlen += len;
	return j->dlen >= DELTA_FLUSH ? delta_flush(j) : 0;
}

/* Asks for the signature of the parent's version of path.  Returns 1 with
 * it loaded, 0 when the daemon has none (send the file whole), or a
 * negative errno. */
static int fetch_signature(struct job *j, const char *path, struct lb_rsig **sig)
{
	lb_buf_reset(&j->b);
	lb_buf_put_str(&j->b, path);
	int r = jsend_buf(j, LB_MSG_SIGNATURE, &j->b);
	if (r < 0 || (r = client_read(j->c)) < 0)
		return r < 0 ? r : -EPROTO;
	if (j->c->f.type != LB_MSG_OK) {
		if (j->c->f.type == LB_MSG_ERROR) {
			client_error(j->c);
			j->told = 1;
		}
		return -EPROTO;
	}
	struct lb_rd rd;
	lb_frame_reader(&j->c->f, &rd);
	int avail = lb_rd_u8(&rd);
	struct lb_buf sb;
	lb_buf_init(&sb);
	while ((r = client_read(j->c)) == 0 && j->c->f.type == LB_MSG_DATA) {
		if (sb.len + j->c->f.len > LB_RSIG_MAX) {
			r = -EFBIG;
			break;
		}
		lb_buf_put(&sb, j->c->f.payload, j->c->f.len);
	}
	if (r == 0 && j->c->f.type != LB_MSG_END)
		r = -EPROTO;
	if (r == 0 && sb.err)
		r = sb.err;
	if (r == 0 && avail) {
		r = lb_rsig_load(sb.p, sb.len, sig);
		if (r == -EBADMSG) {
			fprintf(stderr, "lumbung: %s: %s: lumbungd's signature is unusable (%s); sending it whole\n",
				j->what, shown(path), lb_error_detail());
			r = 0;
			avail = 0;
		}
	}
	lb_buf_free(&sb);
	return r < 0 ? r : avail;
}

/* Feeds n zero bytes (a hole of a sparse file) to the delta and the hash. */
static int feed_zeros(struct lb_rjob *dj, struct lb_sha *sha, uint64_t n)
{
	static const uint8_t zeros[65536];
	while (n > 0) {
		size_t k = (size_t)LB_MIN(n, (uint64_t)sizeof(zeros));
		lb_sha_update(sha, zeros, k);
		int r = lb_rjob_feed(dj, zeros, k);
		if (r < 0)
			return r;
		n -= k;
	}
	return 0;
}

/* Sends the current member as a delta against the signature.  Returns 1
 * when lumbungd took it, 0 when it refused it (the file must be sent
 * whole, from its source path: the archive's data is used up), or a
 * negative errno. */
static int send_delta(struct job *j, struct archive *a, struct lb_entry *e, struct lb_rsig *sig)
{
	struct lb_sha *sha = lb_sha_new();
	struct lb_rjob *dj = lb_rdelta_begin(sig, delta_out, j);
	int r = sha && dj ? 0 : -ENOMEM;
	if (r == 0 && !j->dbuf && !(j->dbuf = malloc(DELTA_FLUSH + LB_DATA_CHUNK)))
		r = -ENOMEM;
	e->nextents = 0;
	if (r == 0)
		r = send_entry(j, LB_MSG_DELTA, e);
	j->last_send = lb_mono_ns();
	const void *buf;
	size_t len;
	la_int64_t off;
	uint64_t at = 0;
	int ar;
	while (r == 0 && (ar = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if ((uint64_t)off > at)
			r = feed_zeros(dj, sha, (uint64_t)off - at);
		if (r == 0) {
			lb_sha_update(sha, buf, len);
			r = lb_rjob_feed(dj, buf, len);
		}
		if (r == 0)
			r = delta_keepalive(j);
		at = (uint64_t)off + len;
		j->bytes += len;
		show_progress(j, 0);
	}
	if (r == 0 && ar != ARCHIVE_EOF) {
		fprintf(stderr, "lumbung: %s: %s: %s\n", j->what, shown(e->path), shown(archive_error_string(a)));
		r = -EIO;
	}
	if (r == 0 && at < e->size)
		r = feed_zeros(dj, sha, e->size - at); /* a trailing hole */
	if (r == 0)
		r = lb_rjob_end(dj);
	if (r == 0)
		r = delta_flush(j);
	struct lb_id id;
	if (sha)
		lb_sha_final(sha, &id);
	if (r == 0) {
		lb_buf_reset(&j->b);
		lb_buf_put(&j->b, id.b, 32);
		lb_buf_put_uv(&j->b, LB_MAX(at, e->size));
		r = jsend_buf(j, LB_MSG_DELTA_END, &j->b);
	}
	if (r == 0)
		r = client_read(j->c);
	if (r == 0 && j->c->f.type != LB_MSG_OK) {
		if (j->c->f.type == LB_MSG_ERROR) {
			client_error(j->c);
			j->told = 1;
		}
		r = -EPROTO;
	}
	if (r == 0) {
		struct lb_rd rd;
		lb_frame_reader(&j->c->f, &rd);
		r = lb_rd_u8(&rd);
		if (r == 0) {
			char *why = lb_rd_strdup(&rd, 1024);
			fprintf(stderr, "lumbung: %s: %s: lumbungd refused the delta (%s); sending it whole\n", j->what,
				shown(e->path), why ? why : "?");
			free(why);
		}
	}
	lb_rjob_free(dj);
	lb_sha_free(sha);
	return r;
}

/* Sends a regular file whole, read again from its path on disk (after a
 * refused delta). */
static int send_from_disk(struct job *j, struct lb_entry *e, const char *source)
{
	int fd = source ? open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd < 0) {
		fprintf(stderr, "lumbung: %s: %s: cannot read it again: %s\n", j->what, shown(e->path),
			source ? strerror(errno) : "no source path");
		return -EIO;
	}
	e->nextents = 0;
	int r = send_entry(j, LB_MSG_FILE, e);
	uint8_t *buf = r == 0 ? malloc(LB_DATA_CHUNK) : NULL;
	uint64_t total = 0;
	if (r == 0 && !buf)
		r = -ENOMEM;
	while (r == 0) {
		ssize_t n = read(fd, buf, LB_DATA_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "lumbung: %s: %s: %s\n", j->what, shown(e->path), strerror(errno));
			r = -EIO;
			break;
		}
		if (n == 0)
			break;
		r = jsend(j, LB_MSG_DATA, buf, (size_t)n);
		total += (uint64_t)n;
		j->sent += (uint64_t)n;
	}
	free(buf);
	close(fd);
	if (r == 0) {
		lb_buf_reset(&j->b);
		lb_buf_put_uv(&j->b, 0);
		lb_buf_put_uv(&j->b, total);
		r = jsend_buf(j, LB_MSG_FILE_END, &j->b);
	}
	return r;
}

/* ---- resuming an interrupted transfer (PROTOCOL.md §6.2.3) ------------------ */

static int fetch_resume(struct job *j)
{
	int r = jsend(j, LB_MSG_RESUME_INFO, NULL, 0);
	if (r < 0 || (r = client_read(j->c)) < 0)
		return r < 0 ? r : -EPROTO;
	if (j->c->f.type != LB_MSG_OK) {
		if (j->c->f.type == LB_MSG_ERROR) {
			client_error(j->c);
			j->told = 1;
		}
		return -EPROTO;
	}
	struct lb_rd rd;
	lb_frame_reader(&j->c->f, &rd);
	if (!lb_rd_u8(&rd))
		return 0;
	j->rs_path = lb_rd_strdup(&rd, 4095);
	j->rs_size = lb_rd_uv(&rd);
	j->rs_mtime = lb_rd_sv(&rd);
	uint64_t n = lb_rd_uv(&rd);
	if (!j->rs_path || n > j->c->f.len / 33) {
		free(j->rs_path);
		j->rs_path = NULL;
		return -EPROTO;
	}
	j->rs_c = lb_mallocarray(n ? n : 1, sizeof(*j->rs_c));
	if (!j->rs_c)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *id = lb_rd_raw(&rd, 32);
		uint64_t size = lb_rd_uv(&rd);
		if (!id || !size || size > UINT32_MAX) {
			free(j->rs_path);
			j->rs_path = NULL;
			return -EPROTO;
		}
		memcpy(j->rs_c[i].id.b, id, 32);
		j->rs_c[i].size = (uint32_t)size;
	}
	j->rs_n = (size_t)n;
	return lb_rd_done(&rd) ? 0 : -EPROTO;
}

static int send_bytes(struct job *j, const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t n = LB_MIN(len, (size_t)LB_DATA_CHUNK);
		int r = jsend(j, LB_MSG_DATA, p, n);
		if (r < 0)
			return r;
		p += n;
		len -= n;
		j->sent += n;
	}
	return 0;
}

struct rs_state {
	size_t k, cl;  /* chunks matched; bytes of the next one read */
	int verifying, announced;
	uint8_t *cb;   /* the next chunk's bytes, while verifying */
};

/* Tells lumbungd how many chunks of the resume point the file starts
 * with, and sends the bytes read past them. */
static int rs_announce(struct job *j, struct rs_state *st, const struct lb_entry *e)
{
	lb_buf_reset(&j->b);
	lb_entry_encode(&j->b, e);
	lb_buf_put_uv(&j->b, st->k);
	int r = jsend_buf(j, LB_MSG_FILE_RESUME, &j->b);
	if (r == 0)
		r = send_bytes(j, st->cb, st->cl);
	uint64_t have = 0;
	for (size_t i = 0; i < st->k; i++)
		have += j->rs_c[i].size;
	j->resumed += have;
	st->announced = 1;
	if (have) {
		char sz[32];
		fprintf(stderr, "lumbung: %s: %s: resuming an interrupted transfer: %s were already stored\n", j->what,
			shown(e->path), lb_format_size(sz, sizeof(sz), have));
	}
	return r;
}

/* Hashes bytes of the file against the resume point's chunks while they
 * match; sends everything from the first one that does not. */
static int rs_feed(struct job *j, struct rs_state *st, const struct lb_entry *e, const uint8_t *p, size_t l)
{
	while (st->verifying && l > 0) {
		size_t n = LB_MIN(l, j->rs_c[st->k].size - st->cl);
		memcpy(st->cb + st->cl, p, n);
		st->cl += n;
		p += n;
		l -= n;
		if (st->cl < j->rs_c[st->k].size)
			continue;
		struct lb_id id;
		lb_sha256(st->cb, st->cl, &id);
		if (memcmp(id.b, j->rs_c[st->k].id.b, 32)) {
			st->verifying = 0; /* changed since: this chunk is sent */
			break;
		}
		st->k++;
		st->cl = 0;
		st->verifying = st->k < j->rs_n;
	}
	if (st->verifying)
		return 0;
	int r = st->announced ? 0 : rs_announce(j, st, e);
	return r < 0 ? r : send_bytes(j, p, l);
}

/* Sends the current member, the file whose transfer was interrupted: its
 * start is read and hashed here, chunk by chunk as lumbungd cut it, and
 * only what follows the last chunk that matches crosses the wire. */
static int send_resumed(struct job *j, struct archive *a, struct lb_entry *e)
{
	static const uint8_t zeros[65536];
	uint32_t maxc = 1;
	for (size_t i = 0; i < j->rs_n; i++)
		maxc = LB_MAX(maxc, j->rs_c[i].size);
	struct rs_state st = { .verifying = j->rs_n > 0, .cb = malloc(maxc) };
	if (!st.cb)
		return -ENOMEM;
	int r = 0, ar;
	uint64_t at = 0;
	const void *buf;
	size_t len;
	la_int64_t off;
	while (r == 0 && (ar = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		/* A hole, should there be one, is zeros of a dense file. */
		while (r == 0 && (uint64_t)off > at) {
			size_t z = (size_t)LB_MIN((uint64_t)off - at, (uint64_t)sizeof(zeros));
			r = rs_feed(j, &st, e, zeros, z);
			at += z;
		}
		if (r == 0)
			r = rs_feed(j, &st, e, buf, len);
		at = (uint64_t)off + len;
		j->bytes += len;
		show_progress(j, 0);
	}
	if (r == 0 && ar != ARCHIVE_EOF) {
		fprintf(stderr, "lumbung: %s: %s: %s\n", j->what, shown(e->path), shown(archive_error_string(a)));
		r = -EIO;
	}
	while (r == 0 && at < e->size) {
		size_t z = (size_t)LB_MIN(e->size - at, (uint64_t)sizeof(zeros));
		r = rs_feed(j, &st, e, zeros, z);
		at += z;
	}
	if (r == 0 && !st.announced)
		r = rs_announce(j, &st, e); /* it ended inside the resume point */
	if (r == 0) {
		lb_buf_reset(&j->b);
		lb_buf_put_uv(&j->b, 0);
		lb_buf_put_uv(&j->b, at);
		r = jsend_buf(j, LB_MSG_FILE_END, &j->b);
	}
	free(st.cb);
	/* One resume per record. */
	free(j->rs_path);
	j->rs_path = NULL;
	return r;
}

/* Sends one archive member (from disk or from an archive). */
static int send_member(struct job *j, struct archive *a, struct archive_entry *ae, const char *path, int from_disk)
{
	struct lb_entry e;
	struct lb_xattr xa[256];
	char *acl_a, *acl_d;
	char link[4096];
	const char *hl = archive_entry_hardlink(ae);
	/* Archive readers give a hard link no file type of its own. */
	if (hl && archive_entry_filetype(ae) == 0)
		archive_entry_set_filetype(ae, AE_IFREG);
	if (lb_ingest_entry(ae, path, &e) < 0) {
		fprintf(stderr, "lumbung: %s: %s: unsupported file type, skipped\n", j->what, shown(path));
		return 0;
	}
	lb_ingest_meta(ae, &e, xa, LB_ARRAY_SIZE(xa), &acl_a, &acl_d);
	int r = 0;
	if (hl) {
		int c = lb_ingest_clean_path(hl, link, sizeof(link));
		if (c != 0) {
			fprintf(stderr, "lumbung: %s: %s: hard link to '%s' points outside the tree; refusing\n",
				j->what, shown(path), shown(hl));
			r = -EINVAL;
			goto out;
		}
		e.type = LB_FT_HARDLINK;
		e.link = link;
		e.size = 0;
	}
	if (e.type == LB_FT_REG) {
		j->files++;
		const struct prev *p = from_disk && j->have_parent ? prev_find(&j->prev, path) : NULL;
		if (p && p->type == LB_FT_REG && p->size == e.size && p->mtime == e.mtime_ns &&
		    p->ctime == e.ctime_ns && p->ino == e.ino) {
			j->reused++;
			r = send_entry(j, LB_MSG_REUSE, &e);
			goto out;
		}
		/* The file an earlier try was sending when it was cut off. */
		if (from_disk && j->rs_path && !strcmp(path, j->rs_path) && e.size == j->rs_size &&
		    e.mtime_ns == j->rs_mtime && archive_entry_sparse_count(ae) == 0) {
			e.nextents = 0;
			r = send_resumed(j, a, &e);
			goto out;
		}
		/* A large file that changed: a delta against the parent's
		 * version, if the daemon can make its signature. */
		/* Sparse files, old or new, go whole: a patched file is dense. */
		if (p && j->delta && p->type == LB_FT_REG && !p->sparse && p->size > 0 && e.size >= j->delta_min &&
		    archive_entry_sparse_count(ae) == 0) {
			struct lb_rsig *sig = NULL;
			r = fetch_signature(j, path, &sig);
			if (r == 1) {
				r = send_delta(j, a, &e, sig);
				lb_rsig_free(sig);
				if (r == 1)
					j->delta_files++;
				if (r == 0) {
					j->delta_whole++;
					r = send_from_disk(j, &e, archive_entry_sourcepath(ae));
				}
				if (r > 0)
					r = 0;
				goto out;
			}
			if (r < 0)
				goto out;
		}
		r = send_entry(j, LB_MSG_FILE, &e);
		if (r == 0)
			r = send_data(j, a, e.size, path);
	} else {
		r = send_entry(j, LB_MSG_ENTRY, &e);
	}
out:
	free(acl_a);
	free(acl_d);
	show_progress(j, 0);
	return r;
}

/* One walk of a path given to `lumbung backup`. */
struct walk {
	struct job *j;
	const char *root;
	size_t rootlen;
	int single;
	char base[4096];
	int err; /* a send that failed inside quick_reuse */
};

/* The path an entry of the walk is stored under: relative to root (one
 * path given) or to its parent (several). */
static void walk_rel(const struct walk *w, const char *name, int is_dir, char *rel, size_t size)
{
	const char *sub = name + (strncmp(name, w->root, w->rootlen) == 0 ? w->rootlen : 0);
	while (*sub == '/')
		sub++;
	if (w->single && !*sub && !is_dir)
		snprintf(rel, size, "%s", w->base); /* one file: keep its name */
	else if (w->single)
		snprintf(rel, size, "%s", sub);
	else
		snprintf(rel, size, "%s%s%s", w->base, *sub ? "/" : "", sub);
}

/* Owner names as entries hold them: none and "" are the same. */
static int same_name(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/* libarchive's metadata filter: it sees each entry with only its lstat
 * filled in, before libarchive opens the file for its flags, ACLs, xattrs
 * and holes (the owner's names it has looked up).  A file with one link
 * whose size, times, inode, device and owner names are the parent's is
 * unchanged, and so is everything else about it (a change of owner, mode,
 * ACL, xattr or flags moves ctime): its REUSE is the parent's entry, and
 * libarchive is told to skip it.  A nightly run of an
 * unchanged tree costs one lstat per file instead of about fourteen system
 * calls. */
static int quick_reuse(struct archive *a, void *arg, struct archive_entry *ae)
{
	(void)a;
	struct walk *w = arg;
	struct job *j = w->j;
	const struct stat *st = archive_entry_stat(ae);
	if (w->err || !st || !S_ISREG(st->st_mode) || st->st_nlink != 1)
		return 1;
	char rel[8192], clean[8192];
	walk_rel(w, archive_entry_pathname(ae), 0, rel, sizeof(rel));
	if (lb_ingest_clean_path(rel, clean, sizeof(clean)) != 0)
		return 1;
	const struct prev *p = prev_find(&j->prev, clean);
	if (!p || !p->raw || p->size != (uint64_t)st->st_size || p->ino != (uint64_t)st->st_ino ||
	    p->dev != (uint64_t)st->st_dev || p->mtime != lb_time_ns(st->st_mtim.tv_sec, st->st_mtim.tv_nsec) ||
	    p->ctime != lb_time_ns(st->st_ctim.tv_sec, st->st_ctim.tv_nsec) ||
	    !same_name(p->uname, archive_entry_uname(ae)) || !same_name(p->gname, archive_entry_gname(ae)))
		return 1;
	j->files++;
	j->reused++;
	w->err = queue_frame(j, LB_MSG_REUSE, p->raw, p->rawlen);
	show_progress(j, 0);
	return 0;
}

static int walk(struct job *j, const char *root, int single)
{
	struct archive *a = archive_read_disk_new();
	struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
	archive_entry_linkresolver_set_strategy(lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_read_disk_set_standard_lookup(a);
	archive_read_disk_set_behavior(a, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
	struct walk w = { .j = j, .root = root, .rootlen = strlen(root), .single = single };
	const char *slash = strrchr(root, '/');
	snprintf(w.base, sizeof(w.base), "%s", slash && slash[1] ? slash + 1 : root);
	if (j->have_parent)
		archive_read_disk_set_metadata_filter_callback(a, quick_reuse, &w);
	int r = 0;
	if (archive_read_disk_open(a, root) != ARCHIVE_OK) {
		fprintf(stderr, "lumbung: cannot read %s: %s\n", root, shown(archive_error_string(a)));
		r = -ENOENT;
	}
	while (r == 0) {
		struct archive_entry *ae = archive_entry_new();
		int ar = archive_read_next_header2(a, ae);
		if (ar == ARCHIVE_EOF) {
			archive_entry_free(ae);
			break;
		}
		/* libarchive skips what quick_reuse sent (it does not return
		 * ARCHIVE_RETRY for it), so a failed send shows only here. */
		if (w.err || ar == ARCHIVE_RETRY) {
			archive_entry_free(ae);
			r = w.err;
			if (ar == ARCHIVE_EOF)
				break;
			continue;
		}
		if (ar < ARCHIVE_WARN) {
			fprintf(stderr, "lumbung: %s: %s\n", root, shown(archive_error_string(a)));
			archive_entry_free(ae);
			r = -EIO;
			break;
		}
		if (ar == ARCHIVE_WARN)
			fprintf(stderr, "lumbung: warning: %s\n", shown(archive_error_string(a)));
		char rel[8192], clean[8192];
		walk_rel(&w, archive_entry_pathname(ae), archive_entry_filetype(ae) == AE_IFDIR, rel, sizeof(rel));
		if (archive_entry_filetype(ae) == AE_IFDIR)
			archive_read_disk_descend(a);
		int c = lb_ingest_clean_path(rel, clean, sizeof(clean));
		if (c == 1) {
			archive_entry_free(ae);
			continue;
		}
		if (c < 0) {
			fprintf(stderr, "lumbung: %s: cannot store path '%s'\n", root, shown(rel));
			archive_entry_free(ae);
			r = -EINVAL;
			break;
		}
		archive_entry_copy_pathname(ae, clean);
		struct archive_entry *spare = NULL;
		archive_entry_linkify(lr, &ae, &spare);
		if (ae)
			r = send_member(j, a, ae, clean, 1);
		archive_entry_free(ae);
		archive_entry_free(spare);
	}
	archive_entry_linkresolver_free(lr);
	archive_read_free(a);
	return r;
}

static int from_archive(struct job *j, const char *file)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	int r = 0;
	int ar = !strcmp(file, "-") ? archive_read_open_fd(a, 0, 1 << 20) : archive_read_open_filename(a, file, 1 << 20);
	if (ar != ARCHIVE_OK) {
		fprintf(stderr, "lumbung: cannot read archive %s: %s\n", file, shown(archive_error_string(a)));
		archive_read_free(a);
		return -EINVAL;
	}
	struct archive_entry *ae;
	while (r == 0 && (ar = archive_read_next_header(a, &ae)) != ARCHIVE_EOF) {
		if (ar < ARCHIVE_WARN) {
			fprintf(stderr, "lumbung: archive %s is malformed or truncated: %s\n", file, shown(archive_error_string(a)));
			r = -EINVAL;
			break;
		}
		char clean[8192];
		const char *name = archive_entry_pathname(ae);
		int c = name ? lb_ingest_clean_path(name, clean, sizeof(clean)) : -EINVAL;
		if (c == 1)
			continue;
		if (c < 0) {
			fprintf(stderr, "lumbung: archive %s: member '%s' %s; refusing\n", file, shown(name),
				!name ? "has no name" : strlen(clean) > 4095 ? "has a name longer than 4095 bytes" :
				"has a '..' component");
			r = -EINVAL;
			break;
		}
		r = send_member(j, a, ae, clean, 0);
	}
	archive_read_free(a);
	return r;
}

static int from_stdin(struct job *j, const char *name)
{
	char clean[4096];
	if (lb_ingest_clean_path(name, clean, sizeof(clean)) != 0) {
		fprintf(stderr, "lumbung: --stdin-name '%s' is not a valid relative path\n", name);
		return -EINVAL;
	}
	struct lb_entry e = { 0 };
	e.path = clean;
	e.type = LB_FT_REG;
	e.mode = 0640;
	e.uid = getuid();
	e.gid = getgid();
	e.mtime_ns = e.ctime_ns = lb_now_ns();
	int r = send_entry(j, LB_MSG_FILE, &e);
	uint8_t *buf = malloc(LB_DATA_CHUNK);
	if (!buf)
		return -ENOMEM;
	while (r == 0) {
		ssize_t n = read(0, buf, LB_DATA_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "lumbung: reading stdin: %s\n", strerror(errno));
			r = -EIO;
			break;
		}
		if (n == 0)
			break;
		r = jsend(j, LB_MSG_DATA, buf, (size_t)n);
		j->bytes += (uint64_t)n;
		show_progress(j, 0);
	}
	free(buf);
	j->files = 1;
	if (r == 0) {
		lb_buf_reset(&j->b);
		lb_buf_put_uv(&j->b, 0);
		lb_buf_put_uv(&j->b, j->bytes); /* stdin's size is known only now */
		r = jsend_buf(j, LB_MSG_FILE_END, &j->b);
	}
	return r;
}

/* Fetches the parent's metadata, to skip unchanged files. */
static int fetch_parent(struct job *j)
{
	struct client *cl = j->c;
	struct lb_rd rd;
	int r = lb_frame_send(cl->fd, LB_MSG_PARENT, NULL, 0);
	while (r == 0 && (r = client_read(cl)) == 0 && cl->f.type == LB_MSG_ENTRY) {
		struct lb_entry e;
		lb_frame_reader(&cl->f, &rd);
		if (lb_entry_decode(&rd, &e) < 0) {
			r = -EPROTO;
			break;
		}
		if (e.type == LB_FT_REG) {
			int one = e.nlink == 1 && cl->f.len <= UINT32_MAX;
			r = prev_add(&j->prev, &e, one ? cl->f.payload : NULL, cl->f.len);
		} else if (e.type == LB_FT_HARDLINK && e.link) {
			/* Its target comes first in tree order: the link shares
			 * the target's inode and metadata. */
			const struct prev *t = prev_find(&j->prev, e.link);
			if (t) {
				e.type = LB_FT_REG;
				e.size = t->size;
				e.mtime_ns = t->mtime;
				e.ctime_ns = t->ctime;
				e.ino = t->ino;
				e.nextents = t->sparse;
				r = prev_add(&j->prev, &e, NULL, 0);
			}
		}
		lb_entry_clear(&e);
	}
	if (r == 0 && cl->f.type != LB_MSG_END) {
		if (cl->f.type == LB_MSG_ERROR) {
			client_error(cl);
			j->told = 1;
		}
		r = -EPROTO;
	}
	return r;
}

int backup_begin(struct client *cl, const char *tenant, const char *name, const char *host, const char *const *tags,
		 size_t ntags, int *have_parent)
{
	char hostbuf[256];
	if (!host) {
		if (gethostname(hostbuf, sizeof(hostbuf)) < 0)
			snprintf(hostbuf, sizeof(hostbuf), "unknown");
		hostbuf[sizeof(hostbuf) - 1] = '\0';
		host = hostbuf;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, tenant);
	lb_buf_put_str(&b, name);
	lb_buf_put_str(&b, host);
	lb_buf_put_uv(&b, ntags);
	for (size_t i = 0; i < ntags; i++)
		lb_buf_put_str(&b, tags[i]);
	int r = lb_frame_send_buf(cl->fd, LB_MSG_BACKUP, &b);
	lb_buf_free(&b);
	if (r < 0 || client_read(cl) < 0)
		return EXIT_FAILED;
	if (cl->f.type != LB_MSG_OK)
		return client_unexpected(cl, "backup start");
	struct lb_rd rd;
	lb_frame_reader(&cl->f, &rd);
	*have_parent = lb_rd_u8(&rd);
	return EXIT_OK;
}

/* Runs a job whose BACKUP was answered: the parent's listing, the data,
 * then COMMIT (or ABORT).  Returns an exit code; on EXIT_OK the COMMITTED
 * answer is in j->c->f. */
static int run_job(struct job *j, const struct backup_src *src, const char *label)
{
	struct client *cl = j->c;
	int r = 0;
	j->fault = getenv("LUMBUNG_TEST_FAULT");
	/* Every read of this connection from here on is through cl->f. */
	(void)lb_frame_readahead(&cl->f, LB_FRAME_BATCH);
	/* Walking the filesystem: the parent's metadata tells unchanged files
	 * and which changed ones have a version to make a delta against. */
	int from_disk = !src->archive && !src->stdin_name;
	if (j->have_parent && from_disk)
		r = fetch_parent(j);
	if (r == 0 && from_disk)
		r = fetch_resume(j);
	if (r == 0) {
		if (src->archive) {
			j->what = src->archive;
			r = from_archive(j, src->archive);
		} else if (src->stdin_name) {
			j->what = "stdin";
			r = from_stdin(j, src->stdin_name);
		} else {
			for (int i = 0; r == 0 && i < src->npaths; i++) {
				j->what = src->paths[i];
				r = walk(j, src->paths[i], src->npaths == 1);
			}
		}
	}
	show_progress(j, 1);
	if (src->command_pid > 0) {
		/* The dump must have ended well, or it is not a backup. */
		close(0);
		int st = 0;
		while (waitpid(src->command_pid, &st, 0) < 0 && errno == EINTR)
			;
		if (r == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			if (WIFEXITED(st))
				snprintf(j->why, sizeof(j->why), "the command '%.200s' exited with status %d", src->command,
					 WEXITSTATUS(st));
			else
				snprintf(j->why, sizeof(j->why), "the command '%.200s' was killed by signal %d",
					 src->command, WTERMSIG(st));
			fprintf(stderr, "lumbung: %s\n", j->why);
			r = -EIO;
		}
	}
	if (j->told)
		return EXIT_FAILED;
	if (r == -EPIPE || r == -ECONNRESET) {
		/* lumbungd stopped the backup: its reason is waiting. */
		if (client_read(cl) == 0 && cl->f.type == LB_MSG_ERROR)
			client_error(cl);
		return EXIT_FAILED;
	}
	if (r < 0) {
		/* Tell the daemon to drop everything; nothing is committed.  Its
		 * answer comes once the failure is on record. */
		lb_buf_reset(&j->b);
		lb_buf_put_str(&j->b, *j->why ? j->why : strerror(-r));
		if (jsend_buf(j, LB_MSG_ABORT, &j->b) == 0)
			lb_frame_read(cl->fd, &cl->f);
		fprintf(stderr, "lumbung: backup of %s failed; nothing was committed\n", label);
		return EXIT_FAILED;
	}
	/* What the job read; a relay adds what crossed its link. */
	lb_buf_reset(&j->b);
	lb_buf_put_uv(&j->b, j->bytes);
	lb_buf_put_uv(&j->b, 0);
	lb_buf_put_uv(&j->b, j->delta_files);
	lb_buf_put_uv(&j->b, j->delta_whole);
	r = jsend_buf(j, LB_MSG_COMMIT, &j->b);
	if (r < 0 || client_read(cl) < 0)
		return EXIT_FAILED;
	while (cl->f.type == LB_MSG_WARNING) {
		struct lb_rd rd;
		lb_frame_reader(&cl->f, &rd);
		char *w = lb_rd_strdup(&rd, 1024);
		fprintf(stderr, "lumbung: warning: %s\n", w ? w : "?");
		free(w);
		if (client_read(cl) < 0)
			return EXIT_FAILED;
	}
	if (cl->f.type != LB_MSG_COMMITTED) {
		int rc = client_unexpected(cl, "commit");
		return rc == EXIT_NOTFOUND ? rc : EXIT_FAILED;
	}
	return EXIT_OK;
}

int print_committed(const struct lb_frame *f, const struct backup_report *rep, int json)
{
	struct lb_snapshot snap;
	struct lb_rd rd;
	lb_frame_reader(f, &rd);
	if (lb_proto_get_snapshot(&rd, &snap) < 0) {
		fprintf(stderr, "lumbung: malformed answer from lumbungd\n");
		return EXIT_FAILED;
	}
	uint64_t st[6];
	for (int i = 0; i < 6; i++)
		st[i] = lb_rd_uv(&rd);
	char hex[LB_SNAP_HEX], s1[32], s2[32], s3[32], s4[32];
	lb_snap_id_hex(snap.id, hex);
	if (json) {
		printf("{\"id\":\"%s\",\"tenant\":", hex);
		json_str(stdout, snap.tenant);
		printf(",\"dataset\":");
		json_str(stdout, snap.dataset);
		printf(",\"time\":%lld,\"files\":%llu,\"bytes\":%llu,\"bytes_read\":%llu,\"bytes_sent\":%llu,"
		       "\"link_bytes\":%llu,\"chunks\":%llu,\"new_chunks\":%llu,\"new_bytes_stored\":%llu,"
		       "\"unchanged_files\":%llu,\"delta_files\":%llu,\"delta_refused\":%llu}\n",
		       (long long)(snap.time_ns / 1000000000LL), (unsigned long long)st[0], (unsigned long long)st[1],
		       (unsigned long long)rep->read, (unsigned long long)rep->sent,
		       (unsigned long long)rep->link_bytes, (unsigned long long)st[2], (unsigned long long)st[3],
		       (unsigned long long)st[4], (unsigned long long)st[5], (unsigned long long)rep->delta_files,
		       (unsigned long long)rep->delta_refused);
	} else {
		printf("%s\n", hex);
		fprintf(stderr, "snapshot %.12s of %s/%s: %llu files, %s, %llu unchanged; read %s, sent %s",
			hex, snap.tenant, snap.dataset, (unsigned long long)st[0],
			lb_format_size(s1, sizeof(s1), st[1]), (unsigned long long)st[5],
			lb_format_size(s4, sizeof(s4), rep->read), lb_format_size(s2, sizeof(s2), rep->sent));
		if (rep->link_bytes)
			fprintf(stderr, " (%s on the link)", lb_format_size(s4, sizeof(s4), rep->link_bytes));
		if (rep->delta_files || rep->delta_refused)
			fprintf(stderr, ", %llu as deltas", (unsigned long long)rep->delta_files);
		fprintf(stderr, ", stored %s new\n", lb_format_size(s3, sizeof(s3), st[4]));
	}
	lb_snapshot_clear(&snap);
	return EXIT_OK;
}

/* ---- lumbung agent: the far end of a pull over SSH ---------------------- */

static void agent_usage(FILE *f)
{
	fprintf(f,
		"Usage: lumbung agent [--allow DIR]...\n"
		"\n"
		"The far end of 'lumbung backup --remote ssh://USER@HOST/PATH': the appliance\n"
		"runs it on the OPD server over SSH, and it reads the files there and sends\n"
		"them, as deltas where they changed a little, over the SSH channel\n"
		"(compressed as one zstd stream).  Not meant to be run by hand: its stdin and\n"
		"stdout are the link.  To limit what the appliance may read, force it in\n"
		"~/.ssh/authorized_keys:\n"
		"  command=\"lumbung agent --allow /srv/simpus\",restrict ssh-ed25519 AAAA...\n"
		"\n"
		"  --allow DIR   only paths inside DIR may be backed up (repeatable; default:\n"
		"                anything this account can read)\n"
		"\n"
		"Exit status: 0 the snapshot was committed, 1 failed, 2 usage.\n");
}

static int path_allowed(const char *path, char *const *allow, int nallow)
{
	if (nallow == 0)
		return 1;
	char real[PATH_MAX];
	if (!realpath(path, real))
		return 0;
	for (int i = 0; i < nallow; i++) {
		char dir[PATH_MAX];
		if (!realpath(allow[i], dir))
			continue;
		size_t n = strlen(dir);
		if (!strncmp(real, dir, n) && (real[n] == '\0' || real[n] == '/' || (n == 1 && dir[0] == '/')))
			return 1;
	}
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "allow", required_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *allow[64];
	int nallow = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'A':
			if (nallow < (int)LB_ARRAY_SIZE(allow))
				allow[nallow++] = optarg;
			break;
		case 'h': agent_usage(stdout); return EXIT_OK;
		default:
			fprintf(stderr, "lumbung: try 'lumbung agent --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc || isatty(0) || isatty(1)) {
		fprintf(stderr, "lumbung agent: not for a terminal; the appliance runs it over SSH "
			"(see 'lumbung agent --help')\n");
		return EXIT_USAGE;
	}
	/* Our frames go through a socketpair to the link pump, which carries
	 * them compressed over stdin and stdout. */
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		fprintf(stderr, "lumbung agent: socketpair: %s\n", strerror(errno));
		return EXIT_FAILED;
	}
	struct lb_link *link;
	int r = lb_link_start(&link, sp[1], 0, 1, 0);
	if (r < 0) {
		fprintf(stderr, "lumbung agent: cannot start the link: %s\n", strerror(-r));
		return EXIT_FAILED;
	}
	struct client cl = { .fd = sp[0] };
	lb_frame_init(&cl.f);
	struct job j = { .c = &cl };
	lb_buf_init(&j.b);
	lb_buf_init(&j.out);
	int rc = EXIT_FAILED;
	char *path = NULL;
	if (lb_frame_read(cl.fd, &cl.f) <= 0 || cl.f.type != LB_MSG_START) {
		fprintf(stderr, "lumbung agent: the appliance did not start a job\n");
		goto out;
	}
	struct lb_rd rd;
	lb_frame_reader(&cl.f, &rd);
	path = lb_rd_strdup(&rd, 4095);
	int flags = lb_rd_u8(&rd);
	j.delta_min = lb_rd_uv(&rd);
	uint64_t rate = lb_rd_uv(&rd);
	j.have_parent = lb_rd_u8(&rd);
	if (!path || !lb_rd_done(&rd)) {
		fprintf(stderr, "lumbung agent: malformed start of a job\n");
		goto out;
	}
	j.delta = flags & 1;
	lb_link_set_rate(link, rate);
	if (!path_allowed(path, allow, nallow)) {
		fprintf(stderr, "lumbung agent: %s is not inside a directory this key may back up (--allow)\n", path);
		lb_buf_reset(&j.b);
		lb_buf_put_str(&j.b, "the path is not allowed on the OPD server");
		lb_frame_send_buf(cl.fd, LB_MSG_ABORT, &j.b);
		lb_frame_read(cl.fd, &cl.f);
		goto out;
	}
	char *paths[1] = { path };
	struct backup_src src = { .paths = paths, .npaths = 1 };
	rc = run_job(&j, &src, path);
out:
	/* End the link's stream, and wait for the appliance to end its own. */
	shutdown(cl.fd, SHUT_WR);
	while (lb_frame_read(cl.fd, &cl.f) > 0)
		;
	const char *why = NULL;
	r = lb_link_finish(link, &why);
	if (r < 0 && rc == EXIT_OK) {
		fprintf(stderr, "lumbung agent: %s\n", why ? why : strerror(-r));
	}
	free(path);
	lb_frame_free(&cl.f);
	lb_buf_free(&j.b);
	lb_buf_free(&j.out);
	free(j.ext);
	free(j.dbuf);
	free(j.rs_path);
	free(j.rs_c);
	prev_free(&j.prev);
	return rc;
}

/* ---- lumbung backup ---------------------------------------------------------- */

static void backup_usage(FILE *f)
{
	fprintf(f,
		"Usage: lumbung backup --dataset TENANT/NAME [options] PATH...\n"
		"       lumbung backup --dataset TENANT/NAME --remote ssh://[USER@]HOST[:PORT]/PATH\n"
		"       lumbung backup --dataset TENANT/NAME --archive FILE|-\n"
		"       lumbung backup --dataset TENANT/NAME --stdin-name NAME < data\n"
		"\n"
		"Takes a snapshot of PATHs (with every file's metadata: owner, mode, times,\n"
		"xattrs, ACLs, hard links, sparse files, devices), of a directory on an OPD\n"
		"server over SSH, of an archive in any format libarchive reads (tar, pax,\n"
		"cpio, zip; compressed or not), or of stdin as one file (e.g. pg_dump simpus |\n"
		"lumbung backup --dataset dinkes/simpus --stdin-name simpus.sql).\n"
		"\n"
		"Files unchanged since the dataset's last snapshot (same size, mtime, ctime and\n"
		"inode) are not read again.  Over --remote, a changed file of at least\n"
		"--delta-threshold whose path is in the last snapshot crosses as a librsync\n"
		"delta against that version; lumbungd checks the patched file's SHA-256 and\n"
		"asks for the whole file when it differs.  Everything on the SSH channel is\n"
		"one zstd stream each way; the far end runs 'lumbung agent' (see its --help).\n"
		"Local files go whole: on the appliance's own socket that is cheaper than a\n"
		"delta (--delta makes one anyway, e.g. through a forwarded socket).\n"
		"\n"
		"  -d, --dataset TENANT/NAME  the dataset (TENANT may come from --tenant)\n"
		"  -a, --archive FILE|-       read an archive instead of the filesystem\n"
		"  -s, --stdin-name NAME      store stdin as the file NAME\n"
		"  -r, --remote URL           pull from ssh://[USER@]HOST[:PORT]/PATH\n"
		"      --ssh-command CMD      the ssh to run (default: ssh -o BatchMode=yes)\n"
		"      --remote-lumbung PATH  lumbung on the OPD server (default: lumbung)\n"
		"      --limit-rate RATE      cap the link, e.g. 10mbit, 512k, 2M (bytes/s)\n"
		"      --no-delta             send changed files whole (--remote)\n"
		"      --delta                send changed local files as deltas too\n"
		"      --delta-threshold SIZE deltas for changed files from SIZE (default 64k)\n"
		"  -t, --tag TAG              tag the snapshot (repeatable)\n"
		"      --host NAME            host name recorded (default: this host, or the\n"
		"                             remote's host)\n"
		"      --tenant T, --socket PATH, --config FILE, --json\n"
		"\n"
		"Prints the new snapshot's id, and on stderr what was read, sent (and what\n"
		"crossed the link) and stored.  Exit status: 0 committed, 1 failed (nothing\n"
		"is committed), 2 usage, 4 unknown tenant, 5 lumbungd unreachable.\n");
}

int backup_local(const struct common *co, const char *tenant, const char *name, const char *host,
		 const char *const *tags, size_t ntags, const struct backup_src *src, const struct backup_opts *o)
{
	struct client cl;
	int rc = client_connect(&cl, co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct job j = { .c = &cl, .progress = progress_wanted() && !co->json, .delta = o->delta > 0,
			 .delta_min = o->delta_min };
	lb_buf_init(&j.b);
	lb_buf_init(&j.out);
	rc = backup_begin(&cl, tenant, name, host, tags, ntags, &j.have_parent);
	char label[2 * LB_NAME_MAX + 2];
	snprintf(label, sizeof(label), "%s/%s", tenant, name);
	if (rc == EXIT_OK)
		rc = run_job(&j, src, label);
	if (rc == EXIT_OK) {
		struct backup_report rep = { .read = j.bytes, .sent = j.sent, .delta_files = j.delta_files,
					     .delta_refused = j.delta_whole };
		rc = print_committed(&cl.f, &rep, co->json);
	}
	lb_buf_free(&j.b);
	lb_buf_free(&j.out);
	free(j.ext);
	free(j.dbuf);
	free(j.rs_path);
	free(j.rs_c);
	prev_free(&j.prev);
	client_close(&cl);
	return rc;
}

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "dataset", required_argument, NULL, 'd' },
		{ "archive", required_argument, NULL, 'a' },
		{ "stdin-name", required_argument, NULL, 's' },
		{ "remote", required_argument, NULL, 'r' },
		{ "tag", required_argument, NULL, 't' },
		{ "host", required_argument, NULL, 0x2001 },
		{ "ssh-command", required_argument, NULL, 0x2002 },
		{ "remote-lumbung", required_argument, NULL, 0x2003 },
		{ "limit-rate", required_argument, NULL, 0x2004 },
		{ "no-delta", no_argument, NULL, 0x2005 },
		{ "delta-threshold", required_argument, NULL, 0x2006 },
		{ "delta", no_argument, NULL, 0x2007 },
		{ NULL, 0, NULL, 0 },
	};
	struct common co = { 0 };
	const char *dataset = NULL, *host = NULL, *remote = NULL;
	struct backup_src src = { 0 };
	struct backup_opts o = { .delta = -1, .delta_min = LB_DELTA_MIN_DEFAULT };
	int threshold_given = 0;
	const char *tags[64];
	size_t ntags = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:a:s:r:t:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		switch (c) {
		case 'd': dataset = optarg; break;
		case 'a': src.archive = optarg; break;
		case 's': src.stdin_name = optarg; break;
		case 'r': remote = optarg; break;
		case 't':
			if (ntags < LB_ARRAY_SIZE(tags))
				tags[ntags++] = optarg;
			break;
		case 0x2001: host = optarg; break;
		case 0x2002: o.ssh_command = optarg; break;
		case 0x2003: o.remote_lumbung = optarg; break;
		case 0x2004:
			if (lb_parse_rate(optarg, &o.rate) < 0) {
				fprintf(stderr, "lumbung backup: --limit-rate '%s' is not a rate (e.g. 10mbit, 512k, 2M)\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 0x2005: o.delta = 0; break;
		case 0x2007: o.delta = 1; break;
		case 0x2006:
			if (lb_parse_size(optarg, &o.delta_min) < 0) {
				fprintf(stderr, "lumbung backup: --delta-threshold '%s' is not a size (e.g. 1M)\n", optarg);
				return EXIT_USAGE;
			}
			threshold_given = 1;
			break;
		case 'h': backup_usage(stdout); return EXIT_OK;
		default:
			fprintf(stderr, "lumbung: try 'lumbung backup --help'\n");
			return EXIT_USAGE;
		}
	}
	int sources = (src.archive != NULL) + (src.stdin_name != NULL) + (optind < argc) + (remote != NULL);
	if (!dataset || sources != 1) {
		fprintf(stderr, "lumbung backup: give --dataset and exactly one of PATH..., --remote, --archive or "
			"--stdin-name; try 'lumbung backup --help'\n");
		return EXIT_USAGE;
	}
	char tenant[LB_NAME_MAX + 1], name[LB_NAME_MAX + 1];
	if (split_dataset(dataset, co.tenant, tenant, name) < 0) {
		fprintf(stderr, "lumbung backup: '%s' is not a dataset name (TENANT/NAME, each 1-64 of a-z 0-9 _ . -)\n",
			dataset);
		return EXIT_USAGE;
	}
	if (o.rate && !remote)
		fprintf(stderr, "lumbung backup: note: --limit-rate caps the SSH link of --remote only\n");
	if (!remote && o.delta < 0 && threshold_given)
		fprintf(stderr, "lumbung backup: note: local files go whole; --delta-threshold applies with --delta "
			"or --remote\n");
	if (remote)
		return backup_remote(&co, tenant, name, host, tags, ntags, remote, &o);
	src.paths = argv + optind;
	src.npaths = argc - optind;
	return backup_local(&co, tenant, name, host, tags, ntags, &src, &o);
}
