/* reclog.h - append-only record logs kept in the store: the audit trail,
 * job records and daily usage samples.
 *
 * A log is one object per month under a prefix ("audit/2026-11").  Each
 * record is  u32 length | u32 crc32c(payload) | payload  and is durable
 * when lb_reclog_append returns.  A record torn by a crash fails its crc;
 * lb_reclog_repair cuts it off before anything is appended after it. */
#ifndef LB_RECLOG_H
#define LB_RECLOG_H

#include "backend.h"

#include <stddef.h>
#include <stdint.h>

#define LB_RECLOG_MAX (64u << 10)

/* Appends payload to the month of time_ns under prefix. */
int lb_reclog_append(struct lb_backend *be, const char *prefix, int64_t time_ns, const void *payload, size_t len);
/* Cuts torn tails off every object under prefix; returns bytes cut. */
int64_t lb_reclog_repair(struct lb_backend *be, const char *prefix);
/* Calls cb for every intact record of the months from since_ns on, oldest
 * month first (the caller filters records by their own time).  A negative
 * return from cb stops the walk and is returned. */
typedef int (*lb_reclog_cb)(void *arg, const uint8_t *payload, size_t len);
int lb_reclog_read(struct lb_backend *be, const char *prefix, int64_t since_ns, lb_reclog_cb cb, void *arg);

#endif
