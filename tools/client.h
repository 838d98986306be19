/* client.h - what every lumbung verb shares: the connection to lumbungd,
 * options common to all verbs, error reporting and exit codes. */
#ifndef LB_CLIENT_H
#define LB_CLIENT_H

#include "manifest.h"
#include "proto.h"
#include "snapshot.h"

#include <libintl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Translated labels (gettext, domain "lumbung"; po/ has the catalogues). */
#define _(s) gettext(s)
/* Sets up gettext from the locale (numbers stay in the C locale, so CSV
 * and JSON never get decimal commas). */
void setup_language(void);
/* Overrides the locale's language for labels ("en", "id"). */
void set_language(const char *lang);

/* Exit codes (documented in lumbung(1)). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_DAMAGED = 3,
	EXIT_NOTFOUND = 4,
	EXIT_UNREACHABLE = 5,
	EXIT_DENIED = 6,
};

struct client {
	int fd;
	struct lb_frame f;
	int admin;
	char **tenants;
	size_t ntenants;
	char daemon_version[64];
};

/* Options every verb accepts. */
struct common {
	const char *socket;
	const char *config;
	const char *tenant;
	int json;
};

/* getopt_long entries for the common options; verbs append their own.
 * Their values are >= 0x1000 so they never clash with short options. */
#define COMMON_OPTIONS                                              \
	{ "socket", required_argument, NULL, 0x1001 },              \
	{ "config", required_argument, NULL, 0x1002 },              \
	{ "tenant", required_argument, NULL, 0x1003 },              \
	{ "json", no_argument, NULL, 0x1004 },                      \
	{ "help", no_argument, NULL, 'h' }
/* Handles a common option; returns 1 if c was one. */
int common_option(struct common *co, int c, const char *arg);

/* Connects and greets lumbungd; on failure prints why and returns the exit
 * code to use (EXIT_UNREACHABLE), else 0. */
int client_connect(struct client *c, const struct common *co);
void client_close(struct client *c);

/* Reads the next frame; prints a message and returns a negative value on a
 * broken connection. */
int client_read(struct client *c);
/* For an ERROR frame in c->f: prints "lumbung: MESSAGE" and returns the
 * exit code it maps to. */
int client_error(struct client *c);
/* Prints an unexpected-frame message and returns EXIT_FAILED. */
int client_unexpected(struct client *c, const char *context);
/* The same for any frame. */
int frame_error(const struct lb_frame *f);
int frame_unexpected(const struct lb_frame *f, const char *context);

/* Splits "TENANT/NAME" into tenant and name (buffers of LB_NAME_MAX + 1);
 * a name without '/' leaves the tenant as given by --tenant (or empty). */
int split_dataset(const char *arg, const char *tenant_opt, char *tenant, char *name);

/* Output helpers.  Names from snapshots may hold any byte but NUL: put_name
 * writes one escaped (control characters and bytes that are not UTF-8 as
 * \xHH, \n \r \t, a backslash doubled), shown returns the same for a
 * message (one of four rotating buffers, cut with "..." at 1 KiB), and
 * json_str writes a JSON string (bytes that are not UTF-8 as \udcHH). */
void put_name(FILE *f, const char *s);
const char *shown(const char *s);
void json_str(FILE *f, const char *s);
const char *fmt_time(int64_t ns, char *buf, size_t len);
const char *fmt_mode(int type, uint32_t mode, char *buf);
int progress_wanted(void);

/* Backups (backup.c, remote.c). */
#define LB_DELTA_MIN_DEFAULT (64u << 10)
struct backup_src {
	const char *archive, *stdin_name;
	char **paths;
	int npaths;
	/* stdin is the output of this command (lumbung run): a command that
	 * fails commits nothing. */
	const char *command;
	pid_t command_pid;
};
struct backup_opts {
	int delta;          /* librsync deltas for changed large files: 1 --delta,
			     * 0 --no-delta, -1 the default (over --remote's link
			     * only: on the local socket a whole file costs a copy,
			     * a delta a signature, a rolling hash and a patch) */
	uint64_t delta_min; /* from this size on */
	uint64_t rate;      /* --remote: cap on the link in bytes/s (0 none) */
	const char *ssh_command, *remote_lumbung;
};
/* What a job cost, for its summary. */
struct backup_report {
	uint64_t read, sent, link_bytes, delta_files, delta_refused;
};
/* Sends BACKUP and reads its answer; returns an exit code. */
int backup_begin(struct client *cl, const char *tenant, const char *name, const char *host, const char *const *tags,
		 size_t ntags, int *have_parent);
/* Prints the summary of a COMMITTED answer; returns an exit code. */
int print_committed(const struct lb_frame *f, const struct backup_report *rep, int json);
/* A backup of local paths, an archive or stdin. */
int backup_local(const struct common *co, const char *tenant, const char *name, const char *host,
		 const char *const *tags, size_t ntags, const struct backup_src *src, const struct backup_opts *o);
/* A backup pulled over SSH from ssh://[USER@]HOST[:PORT]/PATH. */
int backup_remote(const struct common *co, const char *tenant, const char *name, const char *host,
		  const char *const *tags, size_t ntags, const char *url, const struct backup_opts *o);
/* Splits s into words like a shell would for plain words and quotes (no
 * expansion).  Returns the count, or -1. */
int split_words(const char *s, char *buf, size_t buflen, char **argv, int max);

/* The verbs. */
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_snapshots(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_quota(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_protect(int argc, char **argv);
int cmd_unprotect(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_schedule(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif
