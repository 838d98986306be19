/* fuzz-session.c - lumbungd's request handling as a whole: the bytes a
 * client sends over the socket, from HELLO on, through session_run.
 *
 * fuzz-proto covers the frame and entry decoders; this target covers what
 * daemon/session.c and daemon/transfer.c do with the frames: every request
 * parser, the tenant checks, backups (entries, data, deltas, commit),
 * restores, listings, prune, GC.  The first input byte picks who is on the
 * other end (the kernel's word in lumbungd, ours here): an administrator, a
 * member of tenant opda, of opdb, of both, or of none.  The rest is written
 * to one end of a socket pair, then that end is shut for writing and
 * drained while session_run serves the other end.
 *
 * Every input runs against the same starting store, copied fresh each time
 * (a one-file snapshot in opda/data and in opdb/data), so that a finding
 * replays on its own whatever ran before it.  The store lives under
 * $TMPDIR (default /dev/shm, where fsync costs nothing). */
#include "config.h"
#include "fuzz.h"

#include "../../daemon/daemon.h"
#include "../../daemon/log.h"
#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[4096], pristine[4200], work[4200], conf_path[4200];
static struct lb_config *cfg;
static struct cfg_ref ref;

static void die(const char *what, int r)
{
	fprintf(stderr, "fuzz-session: %s: %s (%s)\n", what, strerror(r < 0 ? -r : r), lb_error_detail());
	abort();
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(p); /* go on past what cannot be removed */
	return 0;
}

static void rm_tree(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void copy_tree(const char *from, const char *to)
{
	struct stat st;
	if (stat(from, &st) < 0 || mkdir(to, st.st_mode & 07777) < 0)
		die("copy of the store", -errno);
	DIR *d = opendir(from);
	if (!d)
		die("copy of the store", -errno);
	struct dirent *de;
	static uint8_t buf[1 << 16];
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char a[4096], b[4096];
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		if (lstat(a, &st) < 0)
			die("copy of the store", -errno);
		if (S_ISDIR(st.st_mode)) {
			copy_tree(a, b);
			continue;
		}
		int in = open(a, O_RDONLY | O_CLOEXEC), out = open(b, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
		if (in < 0 || out < 0)
			die("copy of the store", -errno);
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				die("copy of the store", -EIO);
		close(in);
		close(out);
	}
	closedir(d);
}

static void cleanup(void)
{
	if (top[0])
		rm_tree(top);
}

/* One small file in tenant/data, so that probes of another tenant's
 * snapshots have something to find. */
static void seed_snapshot(struct lb_store *s, const char *tenant)
{
	struct lb_backup *b = NULL;
	int r = lb_backup_begin(s, tenant, "data", "fuzzhost", &b);
	char path[] = "etc/app.conf";
	char text[128];
	int len = snprintf(text, sizeof(text), "secret of %s\n", tenant);
	struct lb_entry e = { .path = path, .type = LB_FT_REG, .mode = 0640, .mtime_ns = 1700000000000000000,
			      .size = (uint64_t)len };
	if (r == 0)
		r = lb_backup_file_begin(b, &e);
	if (r == 0)
		r = lb_backup_file_write(b, text, (size_t)len);
	if (r == 0)
		r = lb_backup_file_end(b);
	struct lb_snapshot *snap = NULL;
	if (r == 0)
		r = lb_backup_commit(b, &snap);
	if (r < 0)
		die("seed snapshot", r);
	lb_snapshot_free(snap);
	lb_backup_free(b);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(top, sizeof(top), "%s/lb-fuzz-session-XXXXXX", tmp);
	if (!mkdtemp(top))
		die(top, -errno);
	atexit(cleanup);
	snprintf(pristine, sizeof(pristine), "%s/pristine", top);
	snprintf(work, sizeof(work), "%s/store", top);
	snprintf(conf_path, sizeof(conf_path), "%s/lumbung.conf", top);
	FILE *f = fopen(conf_path, "w");
	if (!f)
		die(conf_path, -errno);
	fprintf(f, "[store]\npath = %s\ncapacity = 1G\n[daemon]\nsocket = %s/sock\nlog_level = error\n"
		   "client_timeout = 5s\n[tenant opda]\nquota = 64M\nusers = nobody\n"
		   "[tenant opdb]\nquota = 64M\nusers = nobody\n",
		work, top);
	fclose(f);
	char err[512];
	if (lb_config_load(conf_path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-session: %s\n", err);
		abort();
	}
	/* FUZZ_SESSION_LOG=1 shows what lumbungd makes of each input. */
	log_set_level(getenv("FUZZ_SESSION_LOG") ? LB_LOG_DEBUG : LB_LOG_ERROR);
	struct lb_store_params p;
	lb_store_params_default(&p);
	int r = lb_store_create(pristine, &p);
	struct lb_store *s = NULL;
	if (r == 0)
		r = lb_store_open(pristine, 1, &s);
	if (r < 0)
		die("store", r);
	seed_snapshot(s, "opda");
	seed_snapshot(s, "opdb");
	lb_store_close(s);
	signal(SIGPIPE, SIG_IGN);
}

/* The client's end: writes the input, shuts it for writing, reads every
 * answer until lumbungd closes. */
struct client {
	int fd;
	const uint8_t *p;
	size_t n;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	size_t off = 0;
	while (off < c->n) {
		ssize_t w = send(c->fd, c->p + off, c->n - off, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* lumbungd hung up early: fine */
		off += (size_t)w;
	}
	shutdown(c->fd, SHUT_WR);
	static __thread uint8_t sink[1 << 16];
	while (read(c->fd, sink, sizeof(sink)) > 0)
		;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!top[0])
		setup();
	struct fz in = { data, size };
	unsigned who = fz_u8(&in) % 5;

	rm_tree(work);
	copy_tree(pristine, work);
	struct daemon d;
	ref.cfg = cfg;
	ref.refs = 1; /* ours: the sessions never free it */
	daemon_init(&d, conf_path, &ref);
	int r = lb_store_open(work, 1, &d.store);
	if (r < 0)
		die("store", r);
	lb_store_set_delta(d.store, cfg->store.delta, (unsigned)cfg->store.delta_max_decode);

	static char a[] = "opda", b[] = "opdb";
	static char *t_a[] = { a }, *t_b[] = { b }, *t_ab[] = { a, b };
	struct identity id;
	memset(&id, 0, sizeof(id));
	id.pid = getpid();
	switch (who) {
	case 0: /* as identity_resolve: an administrator acts for every tenant */
		id.uid = 0;
		id.admin = 1;
		id.tenants = t_ab;
		id.ntenants = 2;
		snprintf(id.name, sizeof(id.name), "root");
		break;
	case 1: id.uid = 60001; id.tenants = t_a; id.ntenants = 1; break;
	case 2: id.uid = 60002; id.tenants = t_b; id.ntenants = 1; break;
	case 3: id.uid = 60003; id.tenants = t_ab; id.ntenants = 2; break;
	default: id.uid = 65534; break;
	}
	if (!id.name[0])
		snprintf(id.name, sizeof(id.name), "user%u", (unsigned)id.uid);
	id.gid = id.uid;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", -errno);
	struct client c = { sv[1], in.p, in.left };
	pthread_t t;
	if (pthread_create(&t, NULL, client_main, &c) != 0)
		die("thread", -EAGAIN);
	session_run(&d, sv[0], &id);
	close(sv[0]); /* the client's read ends */
	pthread_join(t, NULL);
	close(sv[1]);

	for (size_t i = 0; i < d.nresume; i++)
		resume_rec_clear(&d.resume[i]);
	lb_store_close(d.store);
	pthread_mutex_destroy(&d.mu);
	pthread_cond_destroy(&d.cv);
	pthread_mutex_destroy(&d.audit_mu);
	return 0;
}
