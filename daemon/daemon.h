/* daemon.h - state shared by lumbungd's threads. */
#ifndef LB_DAEMON_H
#define LB_DAEMON_H

#include "conf.h"
#include "store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/types.h>

#define MAX_CONNECTIONS 256
#define MAX_CONNECTIONS_PER_UID 32

/* A configuration shared by the sessions that started under it; SIGHUP
 * installs a new one and the old one is freed with its last user. */
struct cfg_ref {
	struct lb_config *cfg;
	int refs;
};

/* A backup that holds or waits for one of the max_jobs slots, for
 * `lumbung jobs`.  Lives on its session's stack. */
struct active_job {
	struct active_job *next;
	uint64_t ticket;  /* order of arrival: slots go first come, first served */
	int running;      /* 0 while queued */
	char tenant[65], dataset[65], user[64];
	pid_t pid;
	int64_t queued_ns, started_ns;
	_Atomic uint64_t bytes; /* received so far */
};

/* Where an interrupted transfer of a large file stopped: the chunks of it
 * the store took before the connection (or the link) broke.  Kept in
 * memory, one per dataset, until the dataset's next commit. */
struct resume_rec {
	char tenant[65], dataset[65];
	char *path;
	uint64_t size;
	int64_t mtime_ns;
	struct lb_chunkref *c;
	size_t n;
};
#define MAX_RESUME 64

struct daemon {
	struct lb_store *store;
	const char *config_path;
	pthread_mutex_t mu; /* cfg, connections, jobs */
	pthread_cond_t cv;
	struct cfg_ref *cfg;
	int conn_fds[MAX_CONNECTIONS];
	uid_t conn_uids[MAX_CONNECTIONS];
	int nconn;
	int64_t idle_since; /* lb_mono_ns() when the last connection ended; 0: trimmed */
	int jobs_running;
	struct active_job *jobs; /* running and queued, oldest first */
	uint64_t next_ticket, next_run;
	struct resume_rec resume[MAX_RESUME];
	size_t nresume;
	pthread_mutex_t audit_mu; /* every record-log append */
	int64_t last_sample_day;
	volatile sig_atomic_t stopping;
};

/* Who is on the other end of a connection, from the kernel. */
struct identity {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	gid_t groups[256]; /* from SO_PEERGROUPS (primary group included) */
	int ngroups;
	char name[64];
	int admin;
	char **tenants; /* ids of the tenants the caller acts for */
	size_t ntenants;
};

/* Sets up d with no store, no connection and no job, serving cfg (whose
 * reference it takes). */
void daemon_init(struct daemon *d, const char *config_path, struct cfg_ref *cfg);

struct cfg_ref *daemon_config_get(struct daemon *d);
void daemon_config_put(struct daemon *d, struct cfg_ref *ref);

/* Resolves uid/gid into a name, group memberships, admin status and
 * tenants, using cfg.  Returns 0 or -errno. */
int identity_resolve(struct identity *id, const struct lb_config *cfg);
void identity_clear(struct identity *id);
/* 1 when the caller may act for tenant. */
int identity_may(const struct identity *id, const char *tenant);

/* Takes and releases one of max_jobs backup slots.  Waits, in order of
 * arrival, while all are busy; j (filled with who and what) is listed as
 * queued, then running, until daemon_job_end.  Returns -ECANCELED when the
 * daemon is stopping (j is then no longer listed). */
int daemon_job_begin(struct daemon *d, int max_jobs, struct active_job *j);
void daemon_job_end(struct daemon *d, struct active_job *j);

/* Keeps r (taking its path and chunks) as its dataset's resume point,
 * replacing any other; the oldest goes when the table is full. */
void daemon_resume_put(struct daemon *d, struct resume_rec *r);
/* Copies the dataset's resume point into out (1), or 0 when none. */
int daemon_resume_get(struct daemon *d, const char *tenant, const char *dataset, struct resume_rec *out);
void daemon_resume_drop(struct daemon *d, const char *tenant, const char *dataset);
void resume_rec_clear(struct resume_rec *r);

/* Records one request in the log and, durably, in the store's audit
 * trail (lb_audit_append). */
void daemon_audit(struct daemon *d, const struct identity *id, const char *tenant, const char *verb,
		  const char *object, int result, const char *detail, uint64_t bytes);

/* Appends a job record (lib/records.h), serialised with the audit trail. */
struct lb_job_rec;
void daemon_job_record(struct daemon *d, const struct lb_job_rec *j);
/* Takes today's usage sample if none was taken yet (called every second). */
void daemon_sample(struct daemon *d);

/* Serves one connection until it ends; the caller closes fd. */
void session_run(struct daemon *d, int fd, const struct identity *peer);

#endif
