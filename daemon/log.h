/* log.h - lumbungd's log: one line per event on stderr, with the syslog
 * priority prefix ("<6>") that journald reads when stderr is the journal. */
#ifndef LB_LOG_H
#define LB_LOG_H

#include "conf.h"

void log_set_level(enum lb_log_level level);
void log_msg(enum lb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LB_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LB_LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LB_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LB_LOG_DEBUG, __VA_ARGS__)

/* Sends a state line ("READY=1", "STOPPING=1", ...) to systemd when
 * NOTIFY_SOCKET is set; does nothing otherwise. */
void notify(const char *state);

#endif
