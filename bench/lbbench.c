/* lbbench - engine micro-benchmarks (bench/README.md).
 *
 *   lbbench stages [--json] [--reps N] [--max-mb N] FILE|DIR...
 *	Reads the files (directories are walked) into memory, at most --max-mb
 *	MiB (default 1024), and times on one thread each stage of the backup
 *	pipeline over that buffer with the store defaults: the chunker, SHA-256
 *	of every chunk, zstd compression of every chunk at the store level and
 *	decompression.  Each stage runs --reps times (default 3); the median is
 *	printed, in MiB of source (uncompressed) bytes per second.
 *
 *   lbbench chunking [--json] [--threads N] [--avg LIST] [--no-compress] DIR0 DIR1 ...
 *	The chunk-size experiment: DIRi is night i's copy of a dataset.  For
 *	every average size in LIST (default 64K,128K,256K,512K,1M,2M,4M; min =
 *	avg/4, max = avg*4) chunks every regular file of every night, in sorted
 *	order, and counts distinct chunks (by SHA-256), distinct bytes, their
 *	zstd size, what each night adds after the first, and the index size
 *	(48 bytes per distinct chunk) with its projection to 12.5 TB of distinct
 *	data.  Each file is read once and chunked for every size, the sizes
 *	spread over --threads threads (default: the number of CPUs).
 *
 *   lbbench delta OLD NEW
 *	The delta experiment (issue 6): chunks both versions of a file and, for
 *	every chunk of NEW that OLD does not hold, compares zstd -3 alone with
 *	zstd -3 given old data as a reference prefix (the chunk at the same
 *	relative place; the chunks overlapping the same relative range, widened
 *	by one chunk each side), checks that each delta decodes back, and gives
 *	the whole-file --patch-from figure for reference.
 *
 * Times come from clock_gettime(CLOCK_MONOTONIC). */
#include "config.h"

#include "cdc.h"
#include "codec.h"
#include "hash.h"
#include "idset.h"
#include "store.h"
#include "util.h"

#include <zstd.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#define MiB (1024.0 * 1024.0)
#define INDEX_ENTRY_BYTES 48
#define PROJECT_BYTES 12.5e12 /* 12.5 TB of distinct data */
#define MAX_REPS 15

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "lbbench: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "lbbench: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		fprintf(stderr, "lbbench: out of memory\n");
		exit(1);
	}
	return p;
}

/* ---- file lists ------------------------------------------------------------ */

struct file {
	char *path;
	uint64_t size;
};

struct flist {
	struct file *v;
	size_t n, cap;
	uint64_t bytes;
};

static void flist_add(struct flist *l, const char *path, uint64_t size)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].path = xstrdup(path);
	l->v[l->n].size = size;
	l->n++;
	l->bytes += size;
}

static void flist_free(struct flist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path to l: a regular file as itself, a directory as every regular
 * file below it in byte order of names (symlinks are not followed). */
static int walk(struct flist *l, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		fprintf(stderr, "lbbench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (S_ISREG(st.st_mode)) {
		flist_add(l, path, (uint64_t)st.st_size);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "lbbench: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (r == 0) {
			size_t len = strlen(path) + strlen(names[i]) + 2;
			char *sub = xmalloc(len);
			snprintf(sub, len, "%s/%s", path, names[i]);
			r = walk(l, sub);
			free(sub);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

/* Reads up to cap bytes of path into p; returns the count or -errno. */
static int64_t read_file(const char *path, uint8_t *p, uint64_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t got = 0;
	while (got < cap) {
		size_t want = (size_t)LB_MIN(cap - got, (uint64_t)(64u << 20));
		ssize_t n = read(fd, p + got, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		got += (uint64_t)n;
	}
	close(fd);
	return (int64_t)got;
}

static int parse_size(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static const char *size_name(uint32_t v, char buf[16])
{
	if (v >= (1u << 20) && v % (1u << 20) == 0)
		snprintf(buf, 16, "%uM", v >> 20);
	else if (v >= 1024 && v % 1024 == 0)
		snprintf(buf, 16, "%uK", v >> 10);
	else
		snprintf(buf, 16, "%u", v);
	return buf;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double s[MAX_REPS];
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), dbl_cmp);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- stages ------------------------------------------------------------------ */

enum { ST_CHUNK, ST_SHA, ST_COMPRESS, ST_DECOMPRESS, ST_N };
static const char *const stage_name[ST_N] = { "chunk", "sha256", "compress", "decompress" };

struct chunk {
	uint64_t off; /* in the source buffer */
	uint32_t len;
	uint32_t clen; /* stored payload size */
	uint64_t coff; /* in the compressed buffer */
	int codec;
};

static void print_runs(FILE *f, const double *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%.1f", i ? ", " : "", v[i]);
	fputc(']', f);
}

static int cmd_stages(int argc, char **argv)
{
	int json = 0, reps = 3;
	uint64_t max_bytes = 1024ull << 20;
	struct flist fl = { 0 };
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = atoi(argv[++i]);
			if (reps < 1 || reps > MAX_REPS) {
				fprintf(stderr, "lbbench: --reps must be 1..%d\n", MAX_REPS);
				return 2;
			}
		} else if (!strcmp(argv[i], "--max-mb") && i + 1 < argc) {
			max_bytes = strtoull(argv[++i], NULL, 10) << 20;
		} else if (walk(&fl, argv[i]) < 0) {
			return 1;
		}
	}
	if (fl.n == 0) {
		fprintf(stderr, "usage: lbbench stages [--json] [--reps N] [--max-mb N] FILE|DIR...\n");
		return 2;
	}

	/* Load the files back to back, up to the cap. */
	uint64_t want = LB_MIN(fl.bytes, max_bytes);
	uint8_t *src = xmalloc((size_t)want);
	uint64_t total = 0;
	size_t nfiles = 0;
	for (size_t i = 0; i < fl.n && total < want; i++) {
		int64_t n = read_file(fl.v[i].path, src + total, want - total);
		if (n < 0) {
			fprintf(stderr, "lbbench: %s: %s\n", fl.v[i].path, strerror((int)-n));
			return 1;
		}
		total += (uint64_t)n;
		nfiles++;
	}
	if (total == 0) {
		fprintf(stderr, "lbbench: no data\n");
		return 1;
	}

	struct lb_store_params p;
	lb_store_params_default(&p);
	struct lb_cdc cdc;
	if (lb_cdc_init(&cdc, p.chunk_min, p.chunk_avg, p.chunk_max) < 0) {
		fprintf(stderr, "lbbench: bad default chunk parameters\n");
		return 1;
	}

	double t[ST_N][MAX_REPS];
	struct chunk *ch = NULL;
	size_t nch = 0, capch = 0;

	/* (a) the chunker over the whole buffer, as one stream. */
	for (int r = 0; r < reps; r++) {
		size_t n = 0;
		uint64_t pos = 0;
		double t0 = now_s();
		while (pos < total) {
			size_t len = lb_cdc_cut(&cdc, src + pos, (size_t)(total - pos), 1);
			if (r == 0) {
				if (nch == capch) {
					capch = capch ? 2 * capch : 4096;
					ch = xrealloc(ch, capch * sizeof(*ch));
				}
				ch[nch++] = (struct chunk){ .off = pos, .len = (uint32_t)len };
			}
			pos += len;
			n++;
		}
		t[ST_CHUNK][r] = now_s() - t0;
		if (n != nch) {
			fprintf(stderr, "lbbench: chunker is not deterministic\n");
			return 1;
		}
	}

	/* Bytes the chunker had to look at: it skips the first min bytes of a
	 * chunk (less the 64 bytes that warm the rolling hash). */
	uint64_t scanned = 0;
	for (size_t i = 0; i < nch; i++)
		if (ch[i].len > cdc.min)
			scanned += ch[i].len - cdc.min + 64;

	/* (b) SHA-256 of every chunk. */
	struct lb_id *ids = xmalloc(nch * sizeof(*ids));
	for (int r = 0; r < reps; r++) {
		double t0 = now_s();
		for (size_t i = 0; i < nch; i++)
			lb_sha256(src + ch[i].off, ch[i].len, &ids[i]);
		t[ST_SHA][r] = now_s() - t0;
	}

	/* (c) zstd of every chunk at the store's level; the payloads are kept
	 * back to back (the copy is part of the stage, as into a pack). */
	uint8_t *cbuf = xmalloc((size_t)total);
	memset(cbuf, 0, (size_t)total);
	uint64_t ctotal = 0;
	for (int r = 0; r < reps; r++) {
		uint64_t coff = 0;
		double t0 = now_s();
		for (size_t i = 0; i < nch; i++) {
			const void *out;
			size_t outlen;
			int codec = lb_compress(p.zstd_level, src + ch[i].off, ch[i].len, &out, &outlen);
			if (codec < 0) {
				fprintf(stderr, "lbbench: compress: %s\n", strerror(-codec));
				return 1;
			}
			memcpy(cbuf + coff, out, outlen);
			ch[i].codec = codec;
			ch[i].coff = coff;
			ch[i].clen = (uint32_t)outlen;
			coff += outlen;
		}
		t[ST_COMPRESS][r] = now_s() - t0;
		ctotal = coff;
	}

	/* (d) decompression into a buffer as large as the source. */
	uint8_t *dst = xmalloc((size_t)total);
	memset(dst, 0, (size_t)total);
	for (int r = 0; r < reps; r++) {
		double t0 = now_s();
		for (size_t i = 0; i < nch; i++) {
			int e = lb_decompress(ch[i].codec, cbuf + ch[i].coff, ch[i].clen, dst + ch[i].off, ch[i].len);
			if (e < 0) {
				fprintf(stderr, "lbbench: decompress chunk %zu: %s\n", i, strerror(-e));
				return 1;
			}
		}
		t[ST_DECOMPRESS][r] = now_s() - t0;
	}
	if (memcmp(src, dst, (size_t)total) != 0) {
		fprintf(stderr, "lbbench: decompressed data differs from the source\n");
		return 1;
	}

	double mibs[ST_N][MAX_REPS], med[ST_N];
	for (int s = 0; s < ST_N; s++) {
		for (int r = 0; r < reps; r++)
			mibs[s][r] = (double)total / MiB / t[s][r];
		med[s] = median(mibs[s], reps);
	}
	double ratio = (double)ctotal / (double)total;
	double inv = 0;
	int slowest = ST_CHUNK;
	for (int s = ST_CHUNK; s <= ST_COMPRESS; s++) {
		inv += 1.0 / med[s];
		if (med[s] < med[slowest])
			slowest = s;
	}
	double serial = 1.0 / inv; /* chunk + hash + compress, one after another */

	if (json) {
		printf("{\"bytes\": %llu, \"files\": %zu, \"chunks\": %zu, \"chunk_min\": %u, \"chunk_avg\": %u, "
		       "\"chunk_max\": %u, \"zstd_level\": %d, \"reps\": %d, \"compressed_bytes\": %llu, "
		       "\"compress_ratio\": %.4f, \"chunk_scanned_fraction\": %.4f",
		       (unsigned long long)total, nfiles, nch, p.chunk_min, p.chunk_avg, p.chunk_max, p.zstd_level,
		       reps, (unsigned long long)ctotal, ratio, (double)scanned / (double)total);
		for (int s = 0; s < ST_N; s++) {
			printf(", \"%s_mibs\": %.1f, \"%s_runs\": ", stage_name[s], med[s], stage_name[s]);
			print_runs(stdout, mibs[s], reps);
		}
		printf(", \"slowest_stage\": \"%s\", \"serial_mibs\": %.1f}\n", stage_name[slowest], serial);
	} else {
		char a[16], b[16], c[16];
		printf("data        %.1f MiB in %zu files, %zu chunks (mean %.0f KiB), min/avg/max %s/%s/%s, zstd -%d, "
		       "median of %d\n",
		       (double)total / MiB, nfiles, nch, (double)total / (double)nch / 1024.0, size_name(p.chunk_min, a),
		       size_name(p.chunk_avg, b), size_name(p.chunk_max, c), p.zstd_level, reps);
		for (int s = 0; s < ST_N; s++) {
			printf("%-11s %8.1f MiB/s  runs ", stage_name[s], med[s]);
			print_runs(stdout, mibs[s], reps);
			if (s == ST_CHUNK)
				printf("  (rolls the hash over %.0f%% of the bytes: %.1f MiB/s of bytes hashed)",
				       100.0 * (double)scanned / (double)total, med[s] * (double)scanned / (double)total);
			if (s == ST_COMPRESS)
				printf("  ratio %.3f", ratio);
			putchar('\n');
		}
		printf("serial      %8.1f MiB/s  chunk+sha256+compress on one core; slowest stage: %s\n", serial,
		       stage_name[slowest]);
	}
	free(ids);
	free(ch);
	free(cbuf);
	free(dst);
	free(src);
	flist_free(&fl);
	return 0;
}

/* ---- chunking experiment --------------------------------------------------- */

struct night_stat {
	uint64_t src;        /* source bytes */
	uint64_t refs;       /* chunks referenced */
	uint64_t new_chunks; /* distinct chunks first seen this night */
	uint64_t new_bytes;  /* their bytes */
	uint64_t new_zbytes; /* their zstd size */
};

struct trial {
	uint32_t min, avg, max;
	struct lb_cdc cdc;
	struct lb_idset *set;
	struct night_stat *nights;
	uint64_t distinct, distinct_bytes, distinct_zbytes, src, refs;
	double secs; /* thread time spent on this size */
	int err;
};

/* Every file is read once, by a reader thread, into one of two buffers, and
 * chunked for every size by the workers while the next file is read: the
 * nights together rarely fit in the page cache, so reading them once per size
 * would make the experiment I/O-bound.  Reader and workers step from file to
 * file together on a barrier; within a file the workers take sizes from a
 * counter. */
struct experiment {
	struct flist *nights;
	size_t nnights;
	struct trial *trials;
	size_t ntrials;
	int compress;
	/* flattened file list: night and entry */
	struct {
		size_t night;
		const struct file *f;
	} *files;
	size_t nfiles;
	uint8_t *buf[2];
	size_t cap[2];
	int64_t len[2]; /* bytes in buf, or -errno */
	atomic_size_t next[2];
	pthread_barrier_t step;
	int err;
};

static int chunk_file(const struct experiment *x, struct trial *t, struct night_stat *ns, const uint8_t *buf,
		      size_t n)
{
	double t0 = now_s();
	ns->src += n;
	size_t pos = 0;
	while (pos < n) {
		size_t len = lb_cdc_cut(&t->cdc, buf + pos, n - pos, 1);
		struct lb_id id;
		lb_sha256(buf + pos, len, &id);
		ns->refs++;
		int added = lb_idset_add(t->set, &id);
		if (added < 0)
			return added;
		if (added) {
			ns->new_chunks++;
			ns->new_bytes += len;
			if (x->compress) {
				const void *out;
				size_t outlen;
				if (lb_compress(3, buf + pos, len, &out, &outlen) < 0)
					return -ENOMEM;
				ns->new_zbytes += outlen;
			}
		}
		pos += len;
	}
	t->secs += now_s() - t0;
	return 0;
}

static void *trial_worker(void *arg)
{
	struct experiment *x = arg;
	for (size_t j = 0; j < x->nfiles; j++) {
		pthread_barrier_wait(&x->step);
		int b = (int)(j % 2);
		if (x->len[b] < 0)
			continue;
		for (;;) {
			size_t i = atomic_fetch_add(&x->next[b], 1);
			if (i >= x->ntrials)
				break;
			struct trial *t = &x->trials[i];
			if (t->err == 0)
				t->err = chunk_file(x, t, &t->nights[x->files[j].night], x->buf[b], (size_t)x->len[b]);
		}
	}
	pthread_barrier_wait(&x->step);
	return NULL;
}

/* Reads file j into buffer j % 2. */
static void read_next(struct experiment *x, size_t j)
{
	int b = (int)(j % 2);
	const struct file *f = x->files[j].f;
	/* One byte more than listed, to take in a file that grew. */
	if (f->size + 1 > x->cap[b]) {
		x->cap[b] = (size_t)f->size + 1;
		x->buf[b] = xrealloc(x->buf[b], x->cap[b]);
	}
	x->len[b] = read_file(f->path, x->buf[b], x->cap[b]);
	if (x->len[b] < 0) {
		fprintf(stderr, "lbbench: %s: %s\n", f->path, strerror((int)-x->len[b]));
		x->err = (int)x->len[b];
	}
	atomic_store(&x->next[b], 0);
}

static int run_experiment(struct experiment *x, long threads)
{
	for (size_t k = 0; k < x->nnights; k++)
		x->nfiles += x->nights[k].n;
	x->files = xmalloc((x->nfiles ? x->nfiles : 1) * sizeof(*x->files));
	size_t j = 0;
	for (size_t k = 0; k < x->nnights; k++)
		for (size_t i = 0; i < x->nights[k].n; i++) {
			x->files[j].night = k;
			x->files[j++].f = &x->nights[k].v[i];
		}
	for (size_t i = 0; i < x->ntrials; i++) {
		struct trial *t = &x->trials[i];
		if (lb_cdc_init(&t->cdc, t->min, t->avg, t->max) < 0) {
			fprintf(stderr, "lbbench: bad chunk sizes %u/%u/%u\n", t->min, t->avg, t->max);
			return -EINVAL;
		}
		t->set = lb_idset_new();
		if (!t->set)
			return -ENOMEM;
	}
	int e = pthread_barrier_init(&x->step, NULL, (unsigned)threads + 1);
	if (e)
		return -e;
	pthread_t *tid = xmalloc((size_t)threads * sizeof(*tid));
	long started = 0;
	for (; started < threads; started++) {
		e = pthread_create(&tid[started], NULL, trial_worker, x);
		if (e) {
			fprintf(stderr, "lbbench: pthread_create: %s\n", strerror(e));
			exit(1);
		}
	}
	if (x->nfiles)
		read_next(x, 0);
	for (j = 0; j < x->nfiles; j++) {
		pthread_barrier_wait(&x->step);
		if (j + 1 < x->nfiles)
			read_next(x, j + 1);
	}
	pthread_barrier_wait(&x->step);
	for (long i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
	pthread_barrier_destroy(&x->step);
	int r = x->err;
	for (size_t i = 0; i < x->ntrials; i++) {
		struct trial *t = &x->trials[i];
		for (size_t k = 0; k < x->nnights; k++) {
			const struct night_stat *ns = &t->nights[k];
			t->src += ns->src;
			t->refs += ns->refs;
			t->distinct += ns->new_chunks;
			t->distinct_bytes += ns->new_bytes;
			t->distinct_zbytes += ns->new_zbytes;
		}
		lb_idset_free(t->set);
		t->set = NULL;
		if (t->err < 0 && r == 0)
			r = t->err;
	}
	free(x->buf[0]);
	free(x->buf[1]);
	free(x->files);
	return r;
}

static double index_bytes(const struct trial *t) { return (double)t->distinct * INDEX_ENTRY_BYTES; }

static double projected_index(const struct trial *t)
{
	if (!t->distinct_bytes)
		return 0;
	return PROJECT_BYTES / ((double)t->distinct_bytes / (double)t->distinct) * INDEX_ENTRY_BYTES;
}

static void print_chunking_json(const struct experiment *x)
{
	printf("{\"nights\": %zu, \"index_entry_bytes\": %d, \"project_bytes\": %.0f, \"compress\": %s, \"sizes\": [",
	       x->nnights, INDEX_ENTRY_BYTES, PROJECT_BYTES, x->compress ? "true" : "false");
	for (size_t i = 0; i < x->ntrials; i++) {
		const struct trial *t = &x->trials[i];
		printf("%s\n {\"min\": %u, \"avg\": %u, \"max\": %u, \"source_bytes\": %llu, \"chunk_refs\": %llu, "
		       "\"distinct_chunks\": %llu, \"distinct_bytes\": %llu, \"distinct_zstd_bytes\": %llu, "
		       "\"index_bytes\": %.0f, \"index_bytes_at_12_5TB\": %.0f, \"seconds\": %.2f, \"per_night\": [",
		       i ? "," : "", t->min, t->avg, t->max, (unsigned long long)t->src, (unsigned long long)t->refs,
		       (unsigned long long)t->distinct, (unsigned long long)t->distinct_bytes,
		       (unsigned long long)t->distinct_zbytes, index_bytes(t), projected_index(t), t->secs);
		for (size_t k = 0; k < x->nnights; k++) {
			const struct night_stat *ns = &t->nights[k];
			printf("%s{\"source_bytes\": %llu, \"chunk_refs\": %llu, \"new_chunks\": %llu, \"new_bytes\": %llu, "
			       "\"new_zstd_bytes\": %llu}",
			       k ? ", " : "", (unsigned long long)ns->src, (unsigned long long)ns->refs,
			       (unsigned long long)ns->new_chunks, (unsigned long long)ns->new_bytes,
			       (unsigned long long)ns->new_zbytes);
		}
		printf("]}");
	}
	printf("\n]}\n");
}

static void print_chunking_table(const struct experiment *x)
{
	char a[16], b[16], c[16];
	const struct trial *t0 = &x->trials[0];
	uint64_t later = t0->src - t0->nights[0].src;
	printf("Chunk-size experiment: %zu nights, %.1f MiB source in all (night 0: %.1f MiB, nights 1-%zu: "
	       "%.1f MiB)\n\n",
	       x->nnights, (double)t0->src / MiB, (double)t0->nights[0].src / MiB, x->nnights - 1,
	       (double)later / MiB);
	printf("| avg | min/max | distinct chunks | mean chunk KiB | distinct MiB | dedup x | distinct zstd MiB | "
	       "stored/source | night 0 distinct MiB | added/night MiB | added/night %% | index KiB | index @12.5 TB GiB | cpu s |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < x->ntrials; i++) {
		const struct trial *t = &x->trials[i];
		uint64_t add = t->distinct_bytes - t->nights[0].new_bytes;
		double per = x->nnights > 1 ? (double)add / (double)(x->nnights - 1) : 0;
		double later_src = x->nnights > 1 ? (double)later / (double)(x->nnights - 1) : 0;
		double stored = x->compress ? (double)t->distinct_zbytes : (double)t->distinct_bytes;
		printf("| %s | %s/%s | %llu | %.0f | %.1f | %.2f | ", size_name(t->avg, a), size_name(t->min, b),
		       size_name(t->max, c), (unsigned long long)t->distinct,
		       t->distinct ? (double)t->distinct_bytes / (double)t->distinct / 1024.0 : 0.0,
		       (double)t->distinct_bytes / MiB, (double)t->src / (double)t->distinct_bytes);
		if (x->compress)
			printf("%.1f | ", (double)t->distinct_zbytes / MiB);
		else
			printf("- | ");
		printf("%.3f | %.1f | %.2f | %.1f | %.1f | %.2f | %.1f |\n", stored / (double)t->src,
		       (double)t->nights[0].new_bytes / MiB, per / MiB, later_src ? 100.0 * per / later_src : 0.0,
		       index_bytes(t) / 1024.0, projected_index(t) / (1024.0 * MiB), t->secs);
	}
	if (x->nnights < 2)
		return;
	printf("\nDistinct MiB added by each night after the first (zstd MiB in brackets):\n\n| avg |");
	for (size_t k = 1; k < x->nnights; k++)
		printf(" n%zu |", k);
	printf(" total |\n|---|");
	for (size_t k = 1; k < x->nnights; k++)
		printf("---|");
	printf("---|\n");
	for (size_t i = 0; i < x->ntrials; i++) {
		const struct trial *t = &x->trials[i];
		uint64_t sum = 0, zsum = 0;
		printf("| %s |", size_name(t->avg, a));
		for (size_t k = 1; k < x->nnights; k++) {
			sum += t->nights[k].new_bytes;
			zsum += t->nights[k].new_zbytes;
			if (x->compress)
				printf(" %.1f (%.1f) |", (double)t->nights[k].new_bytes / MiB,
				       (double)t->nights[k].new_zbytes / MiB);
			else
				printf(" %.1f |", (double)t->nights[k].new_bytes / MiB);
		}
		if (x->compress)
			printf(" %.1f (%.1f) |\n", (double)sum / MiB, (double)zsum / MiB);
		else
			printf(" %.1f |\n", (double)sum / MiB);
	}
}

static int cmd_chunking(int argc, char **argv)
{
	int json = 0, compress = 1;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	const char *avgs = "64K,128K,256K,512K,1M,2M,4M";
	char **dirs = xmalloc((size_t)(argc + 1) * sizeof(*dirs));
	size_t ndirs = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--no-compress"))
			compress = 0;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atol(argv[++i]);
		else if (!strcmp(argv[i], "--avg") && i + 1 < argc)
			avgs = argv[++i];
		else
			dirs[ndirs++] = argv[i];
	}
	if (ndirs == 0) {
		fprintf(stderr, "usage: lbbench chunking [--json] [--threads N] [--avg LIST] [--no-compress] "
				"DIR0 DIR1 ...\n");
		free(dirs);
		return 2;
	}
	if (threads < 1)
		threads = 1;

	struct experiment x = { .nnights = ndirs, .compress = compress };
	x.nights = calloc(ndirs, sizeof(*x.nights));
	if (!x.nights)
		return 1;
	for (size_t k = 0; k < ndirs; k++) {
		if (walk(&x.nights[k], dirs[k]) < 0)
			return 1;
	}
	char *list = xstrdup(avgs), *save = NULL;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t avg;
		if (parse_size(tok, &avg) < 0) {
			fprintf(stderr, "lbbench: bad size '%s'\n", tok);
			return 2;
		}
		x.trials = xrealloc(x.trials, (x.ntrials + 1) * sizeof(*x.trials));
		struct trial *t = &x.trials[x.ntrials++];
		memset(t, 0, sizeof(*t));
		t->min = avg / 4;
		t->avg = avg;
		t->max = avg * 4;
		t->nights = calloc(ndirs, sizeof(*t->nights));
		if (!t->nights)
			return 1;
	}
	free(list);
	if (x.ntrials == 0)
		return 2;
	if ((size_t)threads > x.ntrials)
		threads = (long)x.ntrials;

	double t0 = now_s();
	int r = run_experiment(&x, threads);
	int rc = r < 0 ? 1 : 0;
	if (r < 0 && r != x.err)
		fprintf(stderr, "lbbench: chunking: %s\n", strerror(-r));
	else if (r == 0)
		fprintf(stderr, "lbbench: chunking took %.1f s on %ld threads\n", now_s() - t0, threads);
	if (rc == 0) {
		if (json)
			print_chunking_json(&x);
		else
			print_chunking_table(&x);
	}
	for (size_t i = 0; i < x.ntrials; i++)
		free(x.trials[i].nights);
	free(x.trials);
	for (size_t k = 0; k < ndirs; k++)
		flist_free(&x.nights[k]);
	free(x.nights);
	free(dirs);
	return rc;
}


/* ---- delta: what a zstd reference prefix saves on a changed file ----------- */

struct dchunk {
	uint64_t off;
	uint32_t len;
	struct lb_id id;
};

/* Cuts a whole file into chunks with the store's defaults. */
static struct dchunk *cut_all(const struct lb_cdc *cdc, const uint8_t *p, uint64_t n, size_t *count)
{
	struct dchunk *v = NULL;
	size_t cnt = 0, cap = 0;
	for (uint64_t off = 0; off < n;) {
		size_t len = lb_cdc_cut(cdc, p + off, (size_t)LB_MIN(n - off, (uint64_t)SIZE_MAX), 1);
		if (lb_grow(&v, &cap, cnt + 1, sizeof(*v)) < 0)
			exit(99);
		v[cnt].off = off;
		v[cnt].len = (uint32_t)len;
		lb_sha256(p + off, len, &v[cnt].id);
		cnt++;
		off += len;
	}
	*count = cnt;
	return v;
}

static int id_sort(const void *a, const void *b) { return lb_id_cmp(a, b); }

/* zstd -3 of src with prefix (NULL: none); returns the compressed size. */
static size_t zdelta(ZSTD_CCtx *c, const uint8_t *prefix, size_t plen, const uint8_t *src, size_t n, uint8_t *out,
		     size_t cap, int wlog, int ldm)
{
	ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog);
	ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, ldm);
	if (prefix)
		ZSTD_CCtx_refPrefix(c, prefix, plen);
	size_t r = ZSTD_compress2(c, out, cap, src, n);
	if (ZSTD_isError(r)) {
		fprintf(stderr, "lbbench: zstd: %s\n", ZSTD_getErrorName(r));
		exit(1);
	}
	return r;
}

/* lbbench delta OLD NEW: for every chunk of NEW that OLD does not hold,
 * the zstd -3 size alone, as a delta against the one old chunk at the same
 * relative place, and against the old chunks overlapping the same relative
 * range widened by one chunk each side; plus the whole file against the
 * whole old file (zstd --patch-from).  Sizes as % of NEW. */
static int cmd_delta(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: lbbench delta OLD NEW\n");
		return 2;
	}
	struct stat sa, sb;
	if (stat(argv[0], &sa) < 0 || stat(argv[1], &sb) < 0) {
		fprintf(stderr, "lbbench: cannot stat the files\n");
		return 1;
	}
	uint8_t *a = malloc((size_t)sa.st_size + 1), *b = malloc((size_t)sb.st_size + 1);
	if (!a || !b || read_file(argv[0], a, (uint64_t)sa.st_size) != sa.st_size ||
	    read_file(argv[1], b, (uint64_t)sb.st_size) != sb.st_size) {
		fprintf(stderr, "lbbench: cannot read the files\n");
		return 1;
	}
	uint64_t na = (uint64_t)sa.st_size, nb = (uint64_t)sb.st_size;
	struct lb_store_params p;
	lb_store_params_default(&p);
	struct lb_cdc cdc;
	lb_cdc_init(&cdc, p.chunk_min, p.chunk_avg, p.chunk_max);
	size_t ca, cb;
	struct dchunk *va = cut_all(&cdc, a, na, &ca), *vb = cut_all(&cdc, b, nb, &cb);
	struct lb_id *ids = malloc((ca ? ca : 1) * sizeof(*ids));
	for (size_t i = 0; i < ca; i++)
		ids[i] = va[i].id;
	qsort(ids, ca, sizeof(*ids), id_sort);
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_DCtx *d = ZSTD_createDCtx();
	size_t cap = ZSTD_compressBound(nb) + 1024;
	uint8_t *out = malloc(cap), *back = malloc(4 * (size_t)p.chunk_max + 1), *prefix = malloc(16 * (size_t)p.chunk_max);
	uint64_t changed = 0, changed_bytes = 0, plain = 0, one = 0, range = 0, bases = 0, max_bases = 0;
	double t_delta = 0, t_undelta = 0;
	for (size_t i = 0; i < cb; i++) {
		if (bsearch(&vb[i].id, ids, ca, sizeof(*ids), id_sort))
			continue;
		changed++;
		changed_bytes += vb[i].len;
		const uint8_t *src = b + vb[i].off;
		plain += zdelta(c, NULL, 0, src, vb[i].len, out, cap, 24, 0);
		/* The old range at the same relative place. */
		uint64_t lo = (uint64_t)((double)vb[i].off * na / nb);
		uint64_t hi = (uint64_t)((double)(vb[i].off + vb[i].len) * na / nb);
		size_t first = 0, last = 0, same = 0;
		while (first < ca && va[first].off + va[first].len <= lo)
			first++;
		same = first < ca ? first : ca - 1;
		last = first;
		while (last + 1 < ca && va[last + 1].off < hi)
			last++;
		first = first > 0 ? first - 1 : 0;
		last = LB_MIN(last + 1, ca - 1);
		while (last > first && va[last].off + va[last].len - va[first].off > 16 * (uint64_t)p.chunk_max)
			last--;
		one += zdelta(c, a + va[same].off, va[same].len, src, vb[i].len, out, cap, 24, 0);
		size_t plen = (size_t)(va[last].off + va[last].len - va[first].off);
		memcpy(prefix, a + va[first].off, plen);
		double t0 = now_s();
		size_t z = zdelta(c, prefix, plen, src, vb[i].len, out, cap, 25, 0);
		double t1 = now_s();
		ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
		ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 25);
		ZSTD_DCtx_refPrefix(d, prefix, plen);
		size_t got = ZSTD_decompressDCtx(d, back, 4 * (size_t)p.chunk_max, out, z);
		double t2 = now_s();
		if (ZSTD_isError(got) || got != vb[i].len || memcmp(back, src, got)) {
			fprintf(stderr, "lbbench: a delta did not decode back to its chunk\n");
			return 1;
		}
		t_delta += t1 - t0;
		t_undelta += t2 - t1;
		range += z;
		uint64_t nbase = last - first + 1;
		bases += nbase;
		max_bases = LB_MAX(max_bases, nbase);
	}
	double t0 = now_s();
	size_t whole = zdelta(c, a, na, b, nb, out, cap, 27, 1);
	double t1 = now_s();
	printf("old %.1f MiB in %zu chunks, new %.1f MiB in %zu chunks, %llu new chunks (%.1f MiB)\n", na / 1048576.0,
	       ca, nb / 1048576.0, cb, (unsigned long long)changed, changed_bytes / 1048576.0);
	printf("zstd -3 of the new chunks:                    %10llu bytes  %6.2f%% of the new file\n",
	       (unsigned long long)plain, 100.0 * plain / nb);
	printf("delta against the old chunk at the same place: %10llu bytes  %6.2f%%\n", (unsigned long long)one,
	       100.0 * one / nb);
	printf("delta against the overlapping old chunks +-1:  %10llu bytes  %6.2f%%  (%.1f bases on average, at most %llu)\n",
	       (unsigned long long)range, 100.0 * range / nb, changed ? (double)bases / changed : 0.0,
	       (unsigned long long)max_bases);
	printf("whole file against the whole old file:         %10zu bytes  %6.2f%%  (%.2f s)\n", whole,
	       100.0 * whole / nb, t1 - t0);
	printf("delta speed: compress %.0f MiB/s, decompress %.0f MiB/s (MiB of new chunk data)\n",
	       t_delta > 0 ? changed_bytes / 1048576.0 / t_delta : 0.0,
	       t_undelta > 0 ? changed_bytes / 1048576.0 / t_undelta : 0.0);
	ZSTD_freeCCtx(c);
	ZSTD_freeDCtx(d);
	free(a);
	free(b);
	free(va);
	free(vb);
	free(ids);
	free(out);
	free(back);
	free(prefix);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "stages"))
		return cmd_stages(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "chunking"))
		return cmd_chunking(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "delta"))
		return cmd_delta(argc - 2, argv + 2);
	fprintf(stderr, "usage: lbbench stages [--json] [--reps N] [--max-mb N] FILE|DIR...\n"
			"       lbbench chunking [--json] [--threads N] [--avg LIST] [--no-compress] DIR0 DIR1 ...\n"
			"       lbbench delta OLD NEW\n");
	return 2;
}
