/* conf.h - lumbung.conf: the store, the daemon, tenants and datasets.
 *
 * INI text read with inih.  Every error names the file and line; an
 * unknown section or key is an error, never silently ignored.
 *
 *   [store]      path, capacity, compression, reserve, gc_repack_below, delta,
 *                delta_max_decode
 *   [daemon]     socket, user, admin_group, max_jobs, log_level,
 *                schedule_delay, client_timeout, include
 *   [tenant ID]  name, quota, soft_quota, users, groups
 *   [dataset TENANT/NAME]  source, command, schedule
 *
 * `include = DIR/NAME*.conf` (a glob) (in [daemon]) reads every matching file, in
 * name order, as if its sections were written here. */
#ifndef LB_CONF_H
#define LB_CONF_H

#include "retention.h"

#include <stddef.h>
#include <stdint.h>

enum lb_log_level { LB_LOG_ERROR = 0, LB_LOG_WARNING, LB_LOG_INFO, LB_LOG_DEBUG };

struct lb_tenant_cfg {
	char *id;   /* the section name: lb_name_valid */
	char *name; /* human name ("Dinas Kesehatan") */
	uint64_t quota;      /* bytes; 0 = none */
	uint64_t soft_quota; /* bytes; 0 = none (a percentage is resolved) */
	char **users;
	size_t nusers;
	char **groups;
	size_t ngroups;
	struct lb_policy keep; /* the tenant's default retention */
	char *file; /* where it was defined */
	int line;
};

struct lb_dataset_cfg {
	char *tenant;
	char *name;
	char *source;   /* an absolute path or ssh://[USER@]HOST[:PORT]/PATH */
	char *command;  /* or a shell command whose stdout is the dataset */
	char *schedule;
	struct lb_policy keep; /* its retention (empty: the tenant's, then the store's) */
	char *file;
	int line;
};

struct lb_config {
	char *file; /* the main file */
	struct {
		char *path;        /* the store (local) or its local cache (rados) */
		char *backend;     /* "local" or "rados" */
		char *rados_conf, *rados_pool, *rados_user, *rados_namespace;
		int64_t rados_timeout; /* seconds */
		uint64_t capacity; /* bytes; 0 = none */
		uint64_t reserve;  /* free bytes kept on the filesystem */
		int zstd_level;
		int gc_repack_below; /* percent of live blob bytes; 0 never repacks */
		int delta;           /* delta chunks on (1) or off */
		int delta_max_decode; /* chunks decoded to rebuild one, at most */
		struct lb_policy keep;     /* default retention */
		struct lb_policy min_keep; /* floor for prunes run by tenant members */
	} store;
	struct {
		char *socket;
		char *user;
		char *admin_group;
		int max_jobs;
		enum lb_log_level log_level;
		/* seconds, 0 to LB_SCHEDULE_DELAY_MAX: how far systemd may put off
		 * each scheduled backup at random (RandomizedDelaySec= of the
		 * timers lumbung-generator writes) */
		int64_t schedule_delay;
		/* seconds, 1 to LB_CLIENT_TIMEOUT_MAX: how long the daemon waits
		 * on a client that sends nothing or reads nothing before it drops
		 * the connection (SO_RCVTIMEO and SO_SNDTIMEO) */
		int64_t client_timeout;
	} daemon;
	struct lb_tenant_cfg *tenants;
	size_t ntenants;
	struct lb_dataset_cfg *datasets;
	size_t ndatasets;
};

/* Default locations.  The build passes its sysconfdir (/etc for a Debian
 * build configured with --sysconfdir=/etc). */
#ifdef LB_SYSCONFDIR
#define LB_DEFAULT_CONFIG LB_SYSCONFDIR "/lumbung/lumbung.conf"
#else
#define LB_DEFAULT_CONFIG "/etc/lumbung/lumbung.conf"
#endif
#define LB_DEFAULT_SOCKET "/run/lumbung/lumbungd.sock"
#define LB_DEFAULT_STORE "/var/lib/lumbung/store"
#define LB_DEFAULT_SCHEDULE_DELAY (10 * 60)
#define LB_SCHEDULE_DELAY_MAX (12 * 3600)
#define LB_DEFAULT_CLIENT_TIMEOUT (10 * 60)
#define LB_CLIENT_TIMEOUT_MAX (12 * 3600)

/* Reads and validates a configuration.  On failure returns a negative errno
 * and writes one line "FILE:LINE: what is wrong" into err. */
int lb_config_load(const char *path, struct lb_config **out, char *err, size_t errlen);

/* The store's location as the backend wants it (pointers into c). */
struct lb_backend_conf;
void lb_config_backend(const struct lb_config *c, struct lb_backend_conf *out);
void lb_config_free(struct lb_config *c);

const struct lb_tenant_cfg *lb_config_tenant(const struct lb_config *c, const char *id);
const struct lb_dataset_cfg *lb_config_dataset(const struct lb_config *c, const char *tenant, const char *name);
/* The retention policy of a dataset: its own rules if it has any, else its
 * tenant's, else the store's. */
struct lb_policy lb_config_policy(const struct lb_config *c, const char *tenant, const char *dataset);

/* Sum of all tenants' hard quotas. */
uint64_t lb_config_quota_sum(const struct lb_config *c);

#endif
