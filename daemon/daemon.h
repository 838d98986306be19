/* daemon.h - state shared by lumbungd's threads. */
#ifndef LB_DAEMON_H
#define LB_DAEMON_H

#include "conf.h"
#include "store.h"

#include <pthread.h>
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

struct daemon {
	struct lb_store *store;
	const char *config_path;
	pthread_mutex_t mu; /* cfg, connections, jobs */
	pthread_cond_t cv;
	struct cfg_ref *cfg;
	int conn_fds[MAX_CONNECTIONS];
	uid_t conn_uids[MAX_CONNECTIONS];
	int nconn;
	int jobs_running;
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

struct cfg_ref *daemon_config_get(struct daemon *d);
void daemon_config_put(struct daemon *d, struct cfg_ref *ref);

/* Resolves uid/gid into a name, group memberships, admin status and
 * tenants, using cfg.  Returns 0 or -errno. */
int identity_resolve(struct identity *id, const struct lb_config *cfg);
void identity_clear(struct identity *id);
/* 1 when the caller may act for tenant. */
int identity_may(const struct identity *id, const char *tenant);

/* Takes and releases one of max_jobs backup slots (waits while all are
 * busy; returns -ECANCELED when the daemon is stopping). */
int daemon_job_begin(struct daemon *d, int max_jobs);
void daemon_job_end(struct daemon *d);

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
