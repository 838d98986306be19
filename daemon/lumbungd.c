/* lumbungd - the Lumbung storage daemon.
 *
 * Owns the store, serves clients on a Unix socket, and takes each
 * client's identity from the kernel.  Startup: read and validate the
 * configuration, open (or create) the store and take its lock, bind the
 * socket, drop privileges, tell systemd READY=1, then accept connections,
 * one thread each.  SIGTERM stops accepting and aborts in-flight backups
 * (nothing half-committed); SIGHUP re-reads the configuration and swaps it
 * in only when it is valid. */
#include "audit.h"
#include "backend.h"
#include "daemon.h"
#include "reclog.h"
#include "records.h"
#include "fsutil.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static volatile sig_atomic_t got_term, got_hup;
static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
	if (write(sig_pipe[1], "x", 1) < 0) {
		/* the flag is set; the loop also wakes on its poll timeout */
	}
	errno = saved;
}

/* What the engine reports on its own (a store lock that lapsed, say). */
static void lib_notice(int warn, const char *line)
{
	if (warn)
		log_warning("%s", line);
	else
		log_info("%s", line);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: lumbungd [--config FILE] [--foreground] [--check-config]\n"
		"\n"
		"The Lumbung storage daemon: owns the backup store and serves the lumbung\n"
		"tools on a Unix socket.  Normally started by systemd (lumbungd.service).\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"  -f, --foreground    run in the foreground, logging to stderr (as systemd does)\n"
		"      --check-config  validate the configuration and exit: 0 when valid,\n"
		"                      2 with the first error (file:line) otherwise\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n"
		"\n"
		"Signals: SIGTERM stops (in-flight backups are abandoned, nothing half-committed);\n"
		"SIGHUP reloads the configuration when it is valid.  See lumbungd(8).\n",
		LB_DEFAULT_CONFIG);
}

struct cfg_ref *daemon_config_get(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	struct cfg_ref *r = d->cfg;
	r->refs++;
	pthread_mutex_unlock(&d->mu);
	return r;
}

void daemon_init(struct daemon *d, const char *config_path, struct cfg_ref *cfg)
{
	memset(d, 0, sizeof(*d));
	d->config_path = config_path;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	pthread_mutex_init(&d->audit_mu, NULL);
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		d->conn_fds[i] = -1;
	d->cfg = cfg;
}

void daemon_config_put(struct daemon *d, struct cfg_ref *ref)
{
	pthread_mutex_lock(&d->mu);
	int last = --ref->refs == 0;
	pthread_mutex_unlock(&d->mu);
	if (last) {
		lb_config_free(ref->cfg);
		free(ref);
	}
}

static void job_unlink(struct daemon *d, struct active_job *j)
{
	for (struct active_job **p = &d->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
}

int daemon_job_begin(struct daemon *d, int max_jobs, struct active_job *j)
{
	pthread_mutex_lock(&d->mu);
	j->ticket = d->next_ticket++;
	j->running = 0;
	j->queued_ns = lb_now_ns();
	j->next = NULL;
	struct active_job **tail = &d->jobs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = j;
	/* First come, first served: a job starts when it is the oldest
	 * waiting one and a slot is free, so none waits forever behind
	 * later arrivals. */
	while ((j->ticket != d->next_run || d->jobs_running >= max_jobs) && !d->stopping)
		pthread_cond_wait(&d->cv, &d->mu);
	int r = d->stopping ? -ECANCELED : 0;
	if (r == 0) {
		d->jobs_running++;
		d->next_run++;
		j->running = 1;
		j->started_ns = lb_now_ns();
		pthread_cond_broadcast(&d->cv);
	} else {
		job_unlink(d, j);
	}
	pthread_mutex_unlock(&d->mu);
	return r;
}

void daemon_job_end(struct daemon *d, struct active_job *j)
{
	pthread_mutex_lock(&d->mu);
	d->jobs_running--;
	job_unlink(d, j);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void resume_rec_clear(struct resume_rec *r)
{
	free(r->path);
	free(r->c);
	memset(r, 0, sizeof(*r));
}

static ssize_t resume_find(struct daemon *d, const char *tenant, const char *dataset)
{
	for (size_t i = 0; i < d->nresume; i++)
		if (!strcmp(d->resume[i].tenant, tenant) && !strcmp(d->resume[i].dataset, dataset))
			return (ssize_t)i;
	return -1;
}

static void resume_remove(struct daemon *d, size_t i)
{
	resume_rec_clear(&d->resume[i]);
	memmove(d->resume + i, d->resume + i + 1, (d->nresume - i - 1) * sizeof(*d->resume));
	d->nresume--;
}

void daemon_resume_put(struct daemon *d, struct resume_rec *r)
{
	pthread_mutex_lock(&d->mu);
	ssize_t i = resume_find(d, r->tenant, r->dataset);
	if (i >= 0)
		resume_remove(d, (size_t)i);
	else if (d->nresume == MAX_RESUME)
		resume_remove(d, 0);
	d->resume[d->nresume++] = *r;
	memset(r, 0, sizeof(*r));
	pthread_mutex_unlock(&d->mu);
}

int daemon_resume_get(struct daemon *d, const char *tenant, const char *dataset, struct resume_rec *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&d->mu);
	ssize_t i = resume_find(d, tenant, dataset);
	int r = 0;
	if (i >= 0) {
		const struct resume_rec *src = &d->resume[i];
		*out = *src;
		out->path = strdup(src->path);
		out->c = lb_mallocarray(src->n, sizeof(*src->c));
		if (out->path && out->c) {
			memcpy(out->c, src->c, src->n * sizeof(*src->c));
			r = 1;
		} else {
			free(out->path);
			free(out->c);
			memset(out, 0, sizeof(*out));
		}
	}
	pthread_mutex_unlock(&d->mu);
	return r;
}

void daemon_resume_drop(struct daemon *d, const char *tenant, const char *dataset)
{
	pthread_mutex_lock(&d->mu);
	ssize_t i = resume_find(d, tenant, dataset);
	if (i >= 0)
		resume_remove(d, (size_t)i);
	pthread_mutex_unlock(&d->mu);
}

void daemon_audit(struct daemon *d, const struct identity *id, const char *tenant, const char *verb,
		  const char *object, int result, const char *detail, uint64_t bytes)
{
	struct lb_audit_rec r = {
		.time_ns = lb_now_ns(), .uid = id ? id->uid : 0, .user = id ? id->name : "",
		.tenant = tenant ? tenant : "", .verb = verb, .object = object ? object : "",
		.result = result < 0 ? -result : result, .detail = detail ? detail : "", .bytes = bytes,
	};
	log_info("audit: user=%s uid=%u tenant=%s verb=%s object=%s result=%s bytes=%llu%s%s", r.user,
		 (unsigned)r.uid, *r.tenant ? r.tenant : "-", verb, *r.object ? r.object : "-",
		 r.result ? strerror(r.result) : "ok", (unsigned long long)bytes, *r.detail ? " detail=" : "",
		 r.detail);
	pthread_mutex_lock(&d->audit_mu);
	int e = lb_audit_append(lb_store_backend(d->store), &r);
	pthread_mutex_unlock(&d->audit_mu);
	if (e < 0)
		log_error("cannot write the audit trail: %s", strerror(-e));
}

void daemon_job_record(struct daemon *d, const struct lb_job_rec *j)
{
	pthread_mutex_lock(&d->audit_mu);
	int e = lb_job_append(lb_store_backend(d->store), j);
	pthread_mutex_unlock(&d->audit_mu);
	if (e < 0)
		log_error("cannot write a job record: %s", strerror(-e));
}

#define DAY_NS (86400LL * 1000000000LL)

static int last_sample_cb(void *arg, const struct lb_sample *s)
{
	int64_t *day = arg;
	if (s->time_ns / DAY_NS > *day)
		*day = s->time_ns / DAY_NS;
	return 0;
}

void daemon_sample(struct daemon *d)
{
	int64_t now = lb_now_ns(), day = now / DAY_NS;
	if (d->last_sample_day == 0) {
		d->last_sample_day = -1;
		lb_sample_read(lb_store_backend(d->store), now - 3 * DAY_NS, last_sample_cb, &d->last_sample_day);
	}
	if (day <= d->last_sample_day)
		return;
	struct lb_store_space sp;
	if (lb_store_space(d->store, &sp) < 0)
		return;
	struct lb_sample s = { .time_ns = now, .physical = sp.physical, .unreferenced = sp.unreferenced,
			       .overhead = sp.overhead, .nt = sp.ntenants };
	s.t = calloc(sp.ntenants ? sp.ntenants : 1, sizeof(*s.t));
	for (size_t i = 0; s.t && i < sp.ntenants; i++) {
		snprintf(s.t[i].tenant, sizeof(s.t[i].tenant), "%s", sp.tenants[i]);
		s.t[i].charged = sp.charged[i];
		s.t[i].exclusive = sp.exclusive[i];
		s.t[i].logical = sp.logical[i];
		s.t[i].snapshots = sp.snapshots[i];
	}
	int e = s.t ? 0 : -ENOMEM;
	if (e == 0) {
		pthread_mutex_lock(&d->audit_mu);
		e = lb_sample_append(lb_store_backend(d->store), &s);
		pthread_mutex_unlock(&d->audit_mu);
	}
	if (e < 0) {
		log_error("cannot record today's usage sample: %s", strerror(-e));
	} else {
		d->last_sample_day = day;
		log_info("usage sample taken: %zu tenants, %llu bytes physical", sp.ntenants,
			 (unsigned long long)sp.physical);
	}
	free(s.t);
	lb_store_space_clear(&sp);
}

static struct cfg_ref *new_ref(struct lb_config *c)
{
	struct cfg_ref *r = calloc(1, sizeof(*r));
	if (r) {
		r->cfg = c;
		r->refs = 1;
	}
	return r;
}

static void reload(struct daemon *d)
{
	struct lb_config *c;
	char err[512];
	notify("RELOADING=1");
	if (lb_config_load(d->config_path, &c, err, sizeof(err)) < 0) {
		log_error("reload refused, keeping the running configuration: %s", err);
		notify("READY=1");
		return;
	}
	/* The store, the socket and the user were set up at start: a reload
	 * cannot move them, so it keeps them and says so. */
	struct cfg_ref *cur = daemon_config_get(d);
	const struct lb_config *o = cur->cfg;
	const char *what[] = { "store path", "socket", "user", "store backend", "rados_conf", "rados_pool",
			       "rados_user", "rados_namespace" };
	char **newv[] = { &c->store.path, &c->daemon.socket, &c->daemon.user, &c->store.backend,
			  &c->store.rados_conf, &c->store.rados_pool, &c->store.rados_user, &c->store.rados_namespace };
	char *const oldv[] = { o->store.path, o->daemon.socket, o->daemon.user, o->store.backend,
			       o->store.rados_conf, o->store.rados_pool, o->store.rados_user, o->store.rados_namespace };
	for (size_t i = 0; i < LB_ARRAY_SIZE(what); i++) {
		const char *a = oldv[i] ? oldv[i] : "", *b = *newv[i] ? *newv[i] : "";
		if (strcmp(a, b) != 0) {
			log_warning("reload: %s changed from '%s' to '%s'; it takes effect only on a restart",
				    what[i], a, b);
			free(*newv[i]);
			*newv[i] = oldv[i] ? strdup(oldv[i]) : NULL;
		}
	}
	if (c->store.rados_timeout != o->store.rados_timeout) {
		log_warning("reload: rados_timeout changed from %llds to %llds; it takes effect only on a restart",
			    (long long)o->store.rados_timeout, (long long)c->store.rados_timeout);
		c->store.rados_timeout = o->store.rados_timeout;
	}
	daemon_config_put(d, cur);
	struct cfg_ref *nr = new_ref(c);
	if (!nr) {
		lb_config_free(c);
		notify("READY=1");
		return;
	}
	pthread_mutex_lock(&d->mu);
	struct cfg_ref *old = d->cfg;
	d->cfg = nr;
	pthread_mutex_unlock(&d->mu);
	daemon_config_put(d, old);
	log_set_level(c->daemon.log_level);
	lb_store_set_delta(d->store, c->store.delta, (unsigned)c->store.delta_max_decode);
	lb_store_set_level(d->store, c->store.zstd_level);
	log_info("configuration reloaded: %zu tenants, %zu datasets", c->ntenants, c->ndatasets);
	uint64_t qsum = lb_config_quota_sum(c);
	if (c->store.capacity && qsum > c->store.capacity) {
		char a[32], b[32];
		log_warning("tenant quotas add up to %s, more than the store capacity %s",
			    lb_format_size(a, sizeof(a), qsum), lb_format_size(b, sizeof(b), c->store.capacity));
	}
	notify("READY=1");
}

/* Once no client has been connected for IDLE_TRIM_NS, what the last jobs
 * left goes back to the system: the cache of rebuilt delta bases and the
 * kept thread state (lb_store_trim), and the heap glibc keeps freed for reuse;
 * after a nightly backup of the 1 GiB bench dataset the idle daemon held
 * 85 MiB.  Not at once, so that back-to-back jobs (a night's timers, a
 * restore after a listing) do not fault their buffers in again each
 * time.  The log says how much went back. */
#define IDLE_TRIM_NS (10 * (int64_t)1000000000)

/* Resident memory in KiB, or -1024 when unknown. */
static long rss_kib(void)
{
	long pages = -1, size = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = -1;
		fclose(f);
	}
	return pages < 0 ? -1024 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static void trim_when_idle(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	int due = d->nconn == 0 && d->idle_since && lb_mono_ns() - d->idle_since >= IDLE_TRIM_NS;
	if (due)
		d->idle_since = 0;
	pthread_mutex_unlock(&d->mu);
	if (!due)
		return;
	long before = rss_kib();
	lb_store_trim(d->store);
	malloc_trim(0);
	log_info("idle: working memory given back (resident %ld -> %ld MiB)", before / 1024, rss_kib() / 1024);
}

struct conn {
	struct daemon *d;
	int fd;
	int slot;
	struct identity id;
};

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	session_run(c->d, c->fd, &c->id);
	pthread_mutex_lock(&c->d->mu);
	c->d->conn_fds[c->slot] = -1;
	if (--c->d->nconn == 0)
		c->d->idle_since = lb_mono_ns();
	pthread_cond_broadcast(&c->d->cv);
	pthread_mutex_unlock(&c->d->mu);
	close(c->fd);
	identity_clear(&c->id);
	free(c);
	return NULL;
}

static void accept_one(struct daemon *d, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->d = d;
	c->fd = fd;
	c->id.uid = cred.uid;
	c->id.gid = cred.gid;
	c->id.pid = cred.pid;
	socklen_t glen = sizeof(c->id.groups) - sizeof(gid_t);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->id.groups + 1, &glen) == 0) {
		c->id.groups[0] = cred.gid;
		c->id.ngroups = 1 + (int)(glen / sizeof(gid_t));
	}
	struct cfg_ref *cfg = daemon_config_get(d);
	int r = identity_resolve(&c->id, cfg->cfg);
	/* A silent client must not hold a thread (or a backup slot) forever. */
	struct timeval tv = { .tv_sec = (time_t)cfg->cfg->daemon.client_timeout };
	daemon_config_put(d, cfg);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* Nor one that stops reading. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&d->mu);
	int per_uid = 0, slot = -1;
	for (int i = 0; i < MAX_CONNECTIONS; i++) {
		if (d->conn_fds[i] < 0 && slot < 0)
			slot = i;
		else if (d->conn_fds[i] >= 0 && d->conn_uids[i] == cred.uid)
			per_uid++;
	}
	/* The per-uid cap keeps one tenant's user from holding the daemon.
	 * Administrators are exempt: the timers run every scheduled backup as
	 * root, and 37 datasets due at once must queue for max_jobs, not be
	 * refused (the total cap still holds). */
	if (r < 0 || slot < 0 || (per_uid >= MAX_CONNECTIONS_PER_UID && !c->id.admin)) {
		pthread_mutex_unlock(&d->mu);
		if (r < 0)
			lb_frame_send_error(fd, -r, "lumbungd cannot resolve your identity: %s", strerror(-r));
		else
			lb_frame_send_error(fd, EAGAIN, "too many connections; try again later");
		log_warning("refused a connection from uid %u: %s", (unsigned)cred.uid,
			    r < 0 ? strerror(-r) : "too many connections");
		close(fd);
		identity_clear(&c->id);
		free(c);
		return;
	}
	d->conn_fds[slot] = fd;
	d->conn_uids[slot] = cred.uid;
	d->nconn++;
	c->slot = slot;
	pthread_mutex_unlock(&d->mu);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		pthread_mutex_lock(&d->mu);
		d->conn_fds[slot] = -1;
		if (--d->nconn == 0)
			d->idle_since = lb_mono_ns();
		pthread_mutex_unlock(&d->mu);
		close(fd);
		identity_clear(&c->id);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

static int bind_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0755);
		struct stat st;
		if (stat(dir, &st) == 0 && (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
			log_error("cannot use socket directory %s: writable by others", dir);
			return -EPERM;
		}
	}
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a previous run: remove it only if nobody
	 * answers on it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_error("another lumbungd is already serving %s", path);
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		int r = -errno;
		log_error("cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	/* Anyone may connect; identity and access are checked per connection. */
	chmod(path, 0666);
	return fd;
}

static int drop_privileges(const char *user, const char *store_path)
{
	if (getuid() != 0 || !user || !*user)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_error("user %s (daemon.user) does not exist", user);
		return -ENOENT;
	}
	struct stat st;
	if (stat(store_path, &st) == 0 && st.st_uid != pw->pw_uid) {
		log_error("store %s is owned by uid %u, not by %s; chown -R %s %s", store_path,
			  (unsigned)st.st_uid, user, user, store_path);
		return -EPERM;
	}
	if (initgroups(user, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		log_error("cannot drop privileges to %s: %s", user, strerror(errno));
		return -errno;
	}
	log_info("running as %s", user);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = LB_DEFAULT_CONFIG;
	int check_only = 0, foreground = 0, c;
	/* Buffers of 256 KiB and more (chunks, delta bases, read batches) are
	 * mapped on their own and unmapped when freed.  By default glibc
	 * raises that threshold to the largest buffer freed so far (4 MiB
	 * and more here), and then carves them from its per-thread arenas,
	 * which keep what is freed between live blocks: the night-7 backup
	 * of the bench's 1 GiB set peaked at 118 MiB resident, 100 MiB with
	 * this (and the delta cache then keeping more spare buffers), at the
	 * same CPU time; 78 MiB since the cache counts every buffer it holds
	 * in its size and reuses evicted ones in place (lib/delta.c). */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	while ((c = getopt_long(argc, argv, "c:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'f': foreground = 1; break;
		case 'k': check_only = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("lumbungd %s\n", PACKAGE_VERSION); return 0;
		default:
			fprintf(stderr, "lumbungd: try 'lumbungd --help'\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lumbungd: unexpected argument '%s'; try 'lumbungd --help'\n", argv[optind]);
		return 2;
	}
	struct lb_config *cfg;
	char err[512];
	if (lb_config_load(config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "lumbungd: %s\n", err);
		return 2;
	}
	uint64_t qsum = lb_config_quota_sum(cfg);
	if (check_only) {
		printf("%s: valid: %zu tenants, %zu datasets\n", config, cfg->ntenants, cfg->ndatasets);
		if (cfg->store.capacity && qsum > cfg->store.capacity)
			printf("%s: warning: quotas add up to more than the store capacity\n", config);
		lb_config_free(cfg);
		return 0;
	}
	log_set_level(cfg->daemon.log_level);
	lb_set_notice_hook(lib_notice);
	lb_fault_from_env();

	/* Without --foreground, detach before any thread exists, and let the
	 * parent return only once the child listens (or failed). */
	int ready_fd = -1;
	if (!foreground) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return 1;
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "lumbungd: cannot fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid > 0) {
			char ok;
			close(p[1]);
			_exit(read(p[0], &ok, 1) == 1 ? 0 : 1);
		}
		close(p[0]);
		ready_fd = p[1];
		setsid();
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			close(nul);
		}
	}

	static struct daemon d;
	daemon_init(&d, config, new_ref(cfg));

	if (cfg->store.capacity && qsum > cfg->store.capacity) {
		char a[32], b[32];
		log_warning("tenant quotas add up to %s, more than the store capacity %s",
			    lb_format_size(a, sizeof(a), qsum), lb_format_size(b, sizeof(b), cfg->store.capacity));
	}
#ifdef HAVE_RADOS
	lb_backend_rados_enable();
#endif
	struct lb_backend_conf where;
	lb_config_backend(cfg, &where);
	int rados = where.kind && !strcmp(where.kind, "rados");
	char place[300];
	if (rados)
		snprintf(place, sizeof(place), "rados:%s (cache %s)", cfg->store.rados_pool, cfg->store.path);
	else
		snprintf(place, sizeof(place), "%s", cfg->store.path);
	int r = lb_store_open_at(&where, 0, &d.store);
	if (r == -ENOENT) {
		/* First start: create the store where the configuration says. */
		struct lb_store_params p;
		lb_store_params_default(&p);
		p.zstd_level = cfg->store.zstd_level;
		r = lb_store_create_at(&where, &p);
		if (r == 0) {
			log_info("created a new store at %s", place);
			struct passwd *pw = getuid() == 0 && cfg->daemon.user ? getpwnam(cfg->daemon.user) : NULL;
			if (pw && chown(cfg->store.path, pw->pw_uid, pw->pw_gid) == 0) {
				char tmp[4096];
				snprintf(tmp, sizeof(tmp), "%s/tmp", cfg->store.path);
				if (chown(tmp, pw->pw_uid, pw->pw_gid) < 0) {
					/* reported by the ownership check below */
				}
				snprintf(tmp, sizeof(tmp), "%s/config", cfg->store.path);
				if (chown(tmp, pw->pw_uid, pw->pw_gid) < 0) {
				}
				snprintf(tmp, sizeof(tmp), "%s/lock", cfg->store.path);
				if (chown(tmp, pw->pw_uid, pw->pw_gid) < 0) {
				}
			}
			r = lb_store_open_at(&where, 0, &d.store);
		}
	}
	if (r < 0) {
		log_error("cannot open store %s: %s%s%s", place, strerror(-r),
			  *lb_error_detail() ? ": " : "", lb_error_detail());
		return 1;
	}
	uint64_t rp, rc, rbad;
	if (lb_store_index_rebuilt(d.store, &rp, &rc, &rbad)) {
		if (rbad)
			log_warning("rebuilt the index cache from the pool: %llu chunks in %llu packs; %llu damaged packs "
				    "skipped (run lumbung check --read-data)",
				    (unsigned long long)rc, (unsigned long long)rp, (unsigned long long)rbad);
		else
			log_info("rebuilt the index cache from the pool: %llu chunks in %llu packs",
				 (unsigned long long)rc, (unsigned long long)rp);
	}
	lb_store_set_delta(d.store, cfg->store.delta, (unsigned)cfg->store.delta_max_decode);
	lb_store_set_level(d.store, cfg->store.zstd_level);
	/* Records torn by a crash are cut before anything is appended after
	 * them, in every record log. */
	static const char *logs[] = { "audit", "jobs", "usage" };
	for (size_t i = 0; i < LB_ARRAY_SIZE(logs); i++) {
		int64_t cut = lb_reclog_repair(lb_store_backend(d.store), logs[i]);
		if (cut > 0)
			log_warning("%s: cut %lld bytes of a record torn by a crash",
				    i == 0 ? "audit trail" : logs[i], (long long)cut);
		else if (cut < 0)
			log_error("cannot check the %s record log: %s", logs[i], strerror((int)-cut));
	}
	int lfd = bind_socket(cfg->daemon.socket);
	if (lfd < 0) {
		lb_store_close(d.store);
		return 1;
	}
	if (drop_privileges(cfg->daemon.user, cfg->store.path) < 0) {
		lb_store_close(d.store);
		return 1;
	}
	if (ready_fd >= 0) {
		/* Tell the parent we are listening; it exits 0 and we go on. */
		if (write(ready_fd, "1", 1) < 0) {
		}
		close(ready_fd);
	}
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return 1;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info("lumbungd %s serving store %s on %s (%zu tenants)", PACKAGE_VERSION, place,
		 cfg->daemon.socket, cfg->ntenants);
	daemon_sample(&d);
	notify("READY=1");
	d.idle_since = lb_mono_ns(); /* what opening the store freed, too */
	while (!got_term) {
		struct pollfd p[2] = { { lfd, POLLIN, 0 }, { sig_pipe[0], POLLIN, 0 } };
		int n = poll(p, 2, 1000);
		if (got_hup) {
			got_hup = 0;
			reload(&d);
		}
		if (n > 0 && (p[1].revents & POLLIN)) {
			char buf[64];
			while (read(sig_pipe[0], buf, sizeof(buf)) > 0) {
			}
		}
		if (n > 0 && (p[0].revents & POLLIN) && !got_term)
			accept_one(&d, lfd);
		daemon_sample(&d);
		trim_when_idle(&d);
	}

	notify("STOPPING=1");
	log_info("stopping: no new connections; abandoning backups in flight");
	close(lfd);
	pthread_mutex_lock(&d.mu);
	d.stopping = 1;
	pthread_cond_broadcast(&d.cv);
	for (int i = 0; i < MAX_CONNECTIONS; i++)
		if (d.conn_fds[i] >= 0)
			shutdown(d.conn_fds[i], SHUT_RDWR);
	while (d.nconn > 0)
		pthread_cond_wait(&d.cv, &d.mu);
	pthread_mutex_unlock(&d.mu);
	unlink(cfg->daemon.socket);
	for (size_t i = 0; i < d.nresume; i++)
		resume_rec_clear(&d.resume[i]);
	lb_store_close(d.store);
	daemon_config_put(&d, d.cfg);
	log_info("stopped");
	return 0;
}
