/* audit.h - the audit trail: who did what to which tenant's data, when,
 * and with what result.
 *
 * Records go to the "audit" record log (reclog.h: one object per month,
 * each record checksummed, durable when appended, a torn tail cut on
 * repair); the payload is varints, see audit.c. */
#ifndef LB_AUDIT_H
#define LB_AUDIT_H

#include "backend.h"

#include <stdint.h>

struct lb_audit_rec {
	int64_t time_ns;
	uint32_t uid;
	const char *user;
	const char *tenant; /* "" for store-wide requests */
	const char *verb;   /* backup, snapshots, ls, read, diff, check, audit, ... */
	const char *object; /* dataset, snapshot, paths */
	int result;         /* 0 or an errno value */
	const char *detail; /* one line, may be "" */
	uint64_t bytes;     /* data moved by the request */
};

/* Appends one record durably.  Not thread-safe: callers serialise. */
int lb_audit_append(struct lb_backend *be, const struct lb_audit_rec *r);
/* Cuts torn tails off every audit object (call once at start, under the
 * store lock).  Returns the number of bytes cut, or -errno. */
int64_t lb_audit_repair(struct lb_backend *be);
/* Calls cb for every intact record with time >= since_ns, oldest first.
 * Strings in the record are valid during the call only. */
typedef int (*lb_audit_cb)(void *arg, const struct lb_audit_rec *r);
int lb_audit_read(struct lb_backend *be, int64_t since_ns, lb_audit_cb cb, void *arg);

#endif
