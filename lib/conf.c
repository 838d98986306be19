/* conf.c - lumbung.conf parsing with inih; see conf.h.
 *
 * inih reports the line of the first handler failure only, so the file is
 * fed through ini_parse_stream with a reader that counts lines: the handler
 * then knows the exact line of every key it sees. */
#include "calendar.h"
#include "backend.h"
#include "conf.h"
#include "store.h"
#include "snapshot.h"
#include "util.h"

#include <ctype.h>
#include <stddef.h>
#include <glob.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* A configuration file (or an included one) is a regular file of at most
 * this size: an include pattern that matches a device, a FIFO or an
 * endless file must fail, not hang or fill memory. */
#define CONF_FILE_MAX (1u << 20)

struct parse {
	struct lb_config *c;
	const char *file;
	int line;
	FILE *fp;
	size_t bytes; /* read from fp so far */
	int depth;
	char err[512];
	int failed;
	/* current section; the reader flags each "[...]" line it hands over */
	int new_section;
	int section_line;
	char section[256];
	struct lb_tenant_cfg *tenant;
	struct lb_dataset_cfg *dataset;
	/* keys seen in the current section, to refuse duplicates */
	char seen[32][32];
	int nseen;
};

static int perr(struct parse *p, const char *fmt, ...) LB_PRINTF(2, 3);
static int perr(struct parse *p, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!p->failed)
		snprintf(p->err, sizeof(p->err), "%s:%d: %s", p->file, p->line, msg);
	p->failed = 1;
	return 0;
}

static char *reader(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	char *r = fgets(buf, size, p->fp);
	if (r && (p->bytes += strlen(r)) > CONF_FILE_MAX) {
		/* It grew while being read (a /proc file, say). */
		perr(p, "more than %u bytes; not a configuration file", CONF_FILE_MAX);
		return NULL;
	}
	if (r) {
		p->line++;
		const char *c = r;
		while (*c == ' ' || *c == '\t')
			c++;
		if (*c == '[') {
			p->new_section = 1;
			p->section_line = p->line;
		}
	}
	return r;
}

static int set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = strdup(value);
	return *dst ? 1 : 0;
}

/* Splits a list "a, b c" into *out (appending). */
static int add_list(char ***out, size_t *n, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	for (char *save = NULL, *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		char **nl = lb_reallocarray(*out, *n + 1, sizeof(char *));
		if (!nl) {
			free(copy);
			return -ENOMEM;
		}
		*out = nl;
		nl[*n] = strdup(tok);
		if (!nl[*n]) {
			free(copy);
			return -ENOMEM;
		}
		(*n)++;
	}
	free(copy);
	return 0;
}

static int parse_int(struct parse *p, const char *name, const char *value, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < lo || v > hi)
		return perr(p, "%s must be a whole number from %d to %d, not '%s'", name, lo, hi, value);
	*out = (int)v;
	return 1;
}

/* A duration as lb_parse_duration reads it (90s, 10min, 2h), or 0, of at
 * most max seconds (a whole number of hours). */
static int parse_duration(struct parse *p, const char *name, const char *value, int64_t max, int64_t *out)
{
	int64_t s = 0;
	if (strcmp(value, "0") != 0 && (lb_parse_duration(value, &s) < 0 || s > max))
		return perr(p, "%s must be a duration from 0 to %lldh such as 90s, 10min or 2h, not '%s'", name,
			    (long long)(max / 3600), value);
	*out = s;
	return 1;
}

static int parse_bytes(struct parse *p, const char *name, const char *value, uint64_t *out)
{
	if (lb_parse_size(value, out) < 0)
		return perr(p, "%s must be a size such as 600G or 12.5T, not '%s'", name, value);
	return 1;
}

/* keep_* and min_keep_* keys into a policy; 1 handled, 0 error, -1 not a
 * retention key. */
static int policy_key(struct parse *p, struct lb_policy *pol, const char *name, const char *value)
{
	static const struct {
		const char *key;
		size_t off;
	} ints[] = {
		{ "keep_last", offsetof(struct lb_policy, keep_last) },
		{ "keep_hourly", offsetof(struct lb_policy, keep_hourly) },
		{ "keep_daily", offsetof(struct lb_policy, keep_daily) },
		{ "keep_weekly", offsetof(struct lb_policy, keep_weekly) },
		{ "keep_monthly", offsetof(struct lb_policy, keep_monthly) },
		{ "keep_yearly", offsetof(struct lb_policy, keep_yearly) },
	};
	for (size_t i = 0; i < LB_ARRAY_SIZE(ints); i++)
		if (!strcmp(name, ints[i].key))
			return parse_int(p, name, value, 0, 100000, (int *)((char *)pol + ints[i].off));
	if (!strcmp(name, "keep_within")) {
		char *end;
		long v = strtol(value, &end, 10);
		long mult = !strcmp(end, "d") ? 86400 : !strcmp(end, "h") ? 3600 : !strcmp(end, "w") ? 7 * 86400 : 0;
		if (v <= 0 || end == value || !mult)
			return perr(p, "keep_within must be a duration such as 30d, 12h or 4w, not '%s'", value);
		/* A century is past any retention rule, and keeps the seconds
		 * (and their nanoseconds) far from overflowing. */
		if (v > 100L * 366 * 86400 / mult)
			return perr(p, "keep_within must be at most 100 years, not '%s'", value);
		pol->keep_within = (int64_t)v * mult;
		return 1;
	}
	return -1;
}

static int parse_file(struct parse *p, const char *path);
static int begin_section_at(struct parse *p, const char *section, struct lb_config *c);

static int do_include(struct parse *p, const char *pattern)
{
	if (p->depth > 0)
		return perr(p, "include is allowed only in the main configuration file");
	glob_t g;
	int r = glob(pattern, GLOB_ERR, NULL, &g);
	if (r == GLOB_NOMATCH)
		return 1; /* an empty tenants.d is fine */
	if (r != 0)
		return perr(p, "cannot read include pattern '%s'", pattern);
	int ok = 1;
	for (size_t i = 0; ok && i < g.gl_pathc; i++) {
		struct parse sub = *p;
		sub.depth = p->depth + 1;
		sub.section[0] = '\0';
		sub.tenant = NULL;
		sub.dataset = NULL;
		sub.nseen = 0;
		if (parse_file(&sub, g.gl_pathv[i]) < 0) {
			snprintf(p->err, sizeof(p->err), "%s", sub.err);
			p->failed = 1;
			ok = 0;
		}
	}
	globfree(&g);
	return ok;
}

static int begin_section(struct parse *p, const char *section)
{
	struct lb_config *c = p->c;
	int key_line = p->line;
	p->line = p->section_line ? p->section_line : p->line;
	int ok = begin_section_at(p, section, c);
	p->line = key_line;
	return ok;
}

static int begin_section_at(struct parse *p, const char *section, struct lb_config *c)
{
	snprintf(p->section, sizeof(p->section), "%s", section);
	p->tenant = NULL;
	p->dataset = NULL;
	p->nseen = 0;
	if (!strcmp(section, "store") || !strcmp(section, "daemon"))
		return p->depth == 0 ? 1 : perr(p, "[%s] belongs in the main configuration file", section);
	if (!strncmp(section, "tenant ", 7)) {
		const char *id = section + 7;
		if (!lb_name_valid(id))
			return perr(p, "tenant id '%s' must be 1-64 of a-z 0-9 _ . - (starting with a letter or digit)", id);
		if (lb_config_tenant(c, id))
			return perr(p, "tenant '%s' is defined twice", id);
		struct lb_tenant_cfg *nt = lb_reallocarray(c->tenants, c->ntenants + 1, sizeof(*nt));
		if (!nt)
			return perr(p, "out of memory");
		c->tenants = nt;
		p->tenant = &nt[c->ntenants++];
		memset(p->tenant, 0, sizeof(*p->tenant));
		p->tenant->id = strdup(id);
		p->tenant->file = strdup(p->file);
		p->tenant->line = p->section_line;
		return 1;
	}
	if (!strncmp(section, "dataset ", 8)) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%s", section + 8);
		char *slash = strchr(buf, '/');
		if (!slash)
			return perr(p, "dataset '%s' must be named TENANT/NAME", buf);
		*slash = '\0';
		if (!lb_name_valid(buf) || !lb_name_valid(slash + 1))
			return perr(p, "dataset '%s/%s': names must be 1-64 of a-z 0-9 _ . -", buf, slash + 1);
		if (lb_config_dataset(c, buf, slash + 1))
			return perr(p, "dataset '%s/%s' is defined twice", buf, slash + 1);
		struct lb_dataset_cfg *nd = lb_reallocarray(c->datasets, c->ndatasets + 1, sizeof(*nd));
		if (!nd)
			return perr(p, "out of memory");
		c->datasets = nd;
		p->dataset = &nd[c->ndatasets++];
		memset(p->dataset, 0, sizeof(*p->dataset));
		p->dataset->tenant = strdup(buf);
		p->dataset->name = strdup(slash + 1);
		p->dataset->file = strdup(p->file);
		p->dataset->line = p->section_line;
		return 1;
	}
	return perr(p, "unknown section [%s]", section);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	struct lb_config *c = p->c;
	if (p->failed)
		return 0;
	if (!name) /* inih calls with name NULL when a section starts (INI_CALL_HANDLER_ON_NEW_SECTION) */
		return 1;
	if (p->new_section || strcmp(section, p->section) != 0) {
		p->new_section = 0;
		if (!begin_section(p, section))
			return 0;
	}
	int is_list = !strcmp(name, "users") || !strcmp(name, "groups");
	for (int i = 0; i < p->nseen; i++)
		if (!strcmp(p->seen[i], name) && !is_list)
			return perr(p, "'%s' is set twice in [%s]", name, section);
	if (p->nseen < 32)
		snprintf(p->seen[p->nseen++], sizeof(p->seen[0]), "%s", name);

	if (!strcmp(section, "store")) {
		if (!strcmp(name, "path")) {
			if (value[0] != '/')
				return perr(p, "store path must be absolute, not '%s'", value);
			return set_str(&c->store.path, value);
		}
		if (!strcmp(name, "backend")) {
			if (strcmp(value, "local") != 0 && strcmp(value, "rados") != 0)
				return perr(p, "backend must be local or rados, not '%s'", value);
			return set_str(&c->store.backend, value);
		}
		if (!strcmp(name, "rados_conf")) {
			if (value[0] != '/')
				return perr(p, "rados_conf must be an absolute path, not '%s'", value);
			return set_str(&c->store.rados_conf, value);
		}
		if (!strcmp(name, "rados_pool") || !strcmp(name, "rados_user") || !strcmp(name, "rados_namespace")) {
			/* Ceph's own rules are looser; these keep names printable
			 * and out of JSON and shell trouble. */
			size_t n = strlen(value);
			if (n == 0 || n > 100 || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							       "0123456789_.-") != n)
				return perr(p, "%s must be 1-100 of A-Z a-z 0-9 _ . -, not '%s'", name, value);
			char **dst = !strcmp(name, "rados_pool")   ? &c->store.rados_pool
				     : !strcmp(name, "rados_user") ? &c->store.rados_user
								   : &c->store.rados_namespace;
			return set_str(dst, value);
		}
		if (!strcmp(name, "rados_timeout"))
			return parse_duration(p, name, value, 3600, &c->store.rados_timeout);
		if (!strcmp(name, "capacity"))
			return parse_bytes(p, name, value, &c->store.capacity);
		if (!strcmp(name, "reserve"))
			return parse_bytes(p, name, value, &c->store.reserve);
		if (!strcmp(name, "gc_repack_below"))
			return parse_int(p, name, value, 0, 100, &c->store.gc_repack_below);
		if (!strcmp(name, "delta")) {
			if (!strcmp(value, "yes"))
				c->store.delta = 1;
			else if (!strcmp(value, "no"))
				c->store.delta = 0;
			else
				return perr(p, "delta must be yes or no, not '%s'", value);
			return 1;
		}
		if (!strcmp(name, "delta_max_decode"))
			return parse_int(p, name, value, 2, 1024, &c->store.delta_max_decode);
		if (!strncmp(name, "min_keep_", 9)) {
			char key[64];
			snprintf(key, sizeof(key), "%s", name + 4);
			int k = policy_key(p, &c->store.min_keep, key, value);
			if (k >= 0)
				return k;
		}
		int k = policy_key(p, &c->store.keep, name, value);
		if (k >= 0)
			return k;
		if (!strcmp(name, "compression")) {
			int lvl;
			char *end;
			if (strncmp(value, "zstd:", 5) != 0 || (lvl = (int)strtol(value + 5, &end, 10), *end) ||
			    lvl < 1 || lvl > 19)
				return perr(p, "compression must be zstd:N with N from 1 to 19, not '%s'", value);
			c->store.zstd_level = lvl;
			return 1;
		}
		return perr(p, "unknown key '%s' in [store]", name);
	}
	if (!strcmp(section, "daemon")) {
		if (!strcmp(name, "socket")) {
			if (value[0] != '/')
				return perr(p, "socket must be an absolute path, not '%s'", value);
			return set_str(&c->daemon.socket, value);
		}
		if (!strcmp(name, "user"))
			return set_str(&c->daemon.user, value);
		if (!strcmp(name, "admin_group"))
			return set_str(&c->daemon.admin_group, value);
		if (!strcmp(name, "max_jobs"))
			return parse_int(p, name, value, 1, 256, &c->daemon.max_jobs);
		if (!strcmp(name, "log_level")) {
			static const char *levels[] = { "error", "warning", "info", "debug" };
			for (int i = 0; i < 4; i++) {
				if (!strcmp(value, levels[i])) {
					c->daemon.log_level = (enum lb_log_level)i;
					return 1;
				}
			}
			return perr(p, "log_level must be error, warning, info or debug, not '%s'", value);
		}
		if (!strcmp(name, "schedule_delay"))
			return parse_duration(p, name, value, LB_SCHEDULE_DELAY_MAX, &c->daemon.schedule_delay);
		if (!strcmp(name, "client_timeout")) {
			if (!strcmp(value, "0"))
				return perr(p, "client_timeout must be at least 1s, not '%s'", value);
			return parse_duration(p, name, value, LB_CLIENT_TIMEOUT_MAX, &c->daemon.client_timeout);
		}
		if (!strcmp(name, "include"))
			return do_include(p, value);
		return perr(p, "unknown key '%s' in [daemon]", name);
	}
	if (p->tenant) {
		struct lb_tenant_cfg *t = p->tenant;
		if (!strcmp(name, "name"))
			return set_str(&t->name, value);
		if (!strcmp(name, "quota"))
			return parse_bytes(p, name, value, &t->quota);
		if (!strcmp(name, "soft_quota")) {
			size_t len = strlen(value);
			if (len > 1 && value[len - 1] == '%') {
				char *end;
				double pct = strtod(value, &end);
				if (end != value + len - 1 || pct <= 0 || pct > 100)
					return perr(p, "soft_quota percentage must be from 0 to 100, not '%s'", value);
				if (!t->quota)
					return perr(p, "soft_quota as a percentage needs quota set before it");
				t->soft_quota = (uint64_t)((double)t->quota * pct / 100.0);
				return 1;
			}
			return parse_bytes(p, name, value, &t->soft_quota);
		}
		int k = policy_key(p, &t->keep, name, value);
		if (k >= 0)
			return k;
		if (!strcmp(name, "users"))
			return add_list(&t->users, &t->nusers, value) < 0 ? perr(p, "out of memory") : 1;
		if (!strcmp(name, "groups"))
			return add_list(&t->groups, &t->ngroups, value) < 0 ? perr(p, "out of memory") : 1;
		return perr(p, "unknown key '%s' in [%s]", name, section);
	}
	if (p->dataset) {
		struct lb_dataset_cfg *d = p->dataset;
		int k = policy_key(p, &d->keep, name, value);
		if (k >= 0)
			return k;
		if (!strcmp(name, "source")) {
			if (value[0] != '/' && strncmp(value, "ssh://", 6) != 0)
				return perr(p, "source '%s' is neither an absolute path nor ssh://[USER@]HOST[:PORT]/PATH",
					    value);
			if (d->command)
				return perr(p, "[%s] has a command already: give source or command, not both", section);
			return set_str(&d->source, value);
		}
		if (!strcmp(name, "command")) {
			if (!*value)
				return perr(p, "command is empty");
			if (d->source)
				return perr(p, "[%s] has a source already: give source or command, not both", section);
			return set_str(&d->command, value);
		}
		if (!strcmp(name, "schedule")) {
			struct lb_calendar cal;
			if (lb_calendar_parse(value, &cal) < 0)
				return perr(p, "schedule '%s' is not understood: use e.g. '*-*-* 01:30' or 'Mon..Fri 02:00'", value);
			return set_str(&d->schedule, value);
		}
		return perr(p, "unknown key '%s' in [%s]", name, section);
	}
	return perr(p, "key '%s' outside any known section", name);
}

static int parse_file(struct parse *p, const char *path)
{
	p->file = path;
	p->line = 0;
	p->bytes = 0;
	/* Not blocking in open on a FIFO, not taking a terminal. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		int r = -errno;
		snprintf(p->err, sizeof(p->err), "%s: cannot open: %s", path, strerror(errno));
		return r;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		snprintf(p->err, sizeof(p->err), "%s: cannot open: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CONF_FILE_MAX) {
		int r = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		if (!S_ISREG(st.st_mode))
			snprintf(p->err, sizeof(p->err), "%s: not a regular file", path);
		else
			snprintf(p->err, sizeof(p->err), "%s: %lld bytes; a configuration file is at most %u", path,
				 (long long)st.st_size, CONF_FILE_MAX);
		close(fd);
		return r;
	}
	p->fp = fdopen(fd, "r");
	if (!p->fp) {
		int r = -errno;
		snprintf(p->err, sizeof(p->err), "%s: cannot open: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	int r = ini_parse_stream(reader, p, handler, p);
	fclose(p->fp);
	p->fp = NULL;
	if (p->failed)
		return -EINVAL;
	if (r != 0) {
		snprintf(p->err, sizeof(p->err), "%s:%d: not valid INI syntax (expected [section] or key = value)",
			 path, r > 0 ? r : p->line);
		return -EINVAL;
	}
	return 0;
}

static int validate(struct lb_config *c, char *err, size_t errlen)
{
	int rados = c->store.backend && !strcmp(c->store.backend, "rados");
	if (rados && !c->store.rados_pool) {
		snprintf(err, errlen, "%s: [store] backend = rados needs rados_pool", c->file);
		return -EINVAL;
	}
	if (!rados && (c->store.rados_pool || c->store.rados_conf || c->store.rados_user || c->store.rados_namespace)) {
		snprintf(err, errlen, "%s: [store] has rados_* settings but backend is not rados", c->file);
		return -EINVAL;
	}
	if (c->store.rados_timeout < 1) {
		snprintf(err, errlen, "%s: [store] rados_timeout must be at least 1s", c->file);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->ndatasets; i++) {
		struct lb_dataset_cfg *d = &c->datasets[i];
		if (!lb_config_tenant(c, d->tenant)) {
			snprintf(err, errlen, "%s:%d: dataset %s/%s names tenant '%s', which is not defined",
				 d->file, d->line, d->tenant, d->name, d->tenant);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < c->ntenants; i++) {
		struct lb_tenant_cfg *t = &c->tenants[i];
		if (t->soft_quota && t->quota && t->soft_quota > t->quota) {
			snprintf(err, errlen, "%s:%d: tenant %s: soft_quota is larger than quota", t->file, t->line, t->id);
			return -EINVAL;
		}
	}
	return 0;
}

int lb_config_load(const char *path, struct lb_config **out, char *err, size_t errlen)
{
	struct lb_config *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	c->file = strdup(path);
	c->store.zstd_level = 1;
	c->store.gc_repack_below = 50;
	c->store.delta = 1;
	c->store.delta_max_decode = LB_DELTA_MAX_COST;
	c->store.rados_timeout = 30;
	c->daemon.max_jobs = 4;
	c->daemon.log_level = LB_LOG_INFO;
	c->daemon.schedule_delay = LB_DEFAULT_SCHEDULE_DELAY;
	c->daemon.client_timeout = LB_DEFAULT_CLIENT_TIMEOUT;
	struct parse p = { .c = c };
	int r = parse_file(&p, path);
	if (r < 0) {
		snprintf(err, errlen, "%s", p.err);
		lb_config_free(c);
		return r;
	}
	if (!c->store.path)
		c->store.path = strdup(LB_DEFAULT_STORE);
	if (!c->daemon.socket)
		c->daemon.socket = strdup(LB_DEFAULT_SOCKET);
	if (!c->daemon.admin_group)
		c->daemon.admin_group = strdup("lumbung-admin");
	r = validate(c, err, errlen);
	if (r < 0) {
		lb_config_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void lb_config_backend(const struct lb_config *c, struct lb_backend_conf *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = c->store.backend;
	out->path = c->store.path;
	out->rados_conf = c->store.rados_conf;
	out->rados_pool = c->store.rados_pool;
	out->rados_user = c->store.rados_user;
	out->rados_namespace = c->store.rados_namespace;
	out->rados_timeout = (unsigned)c->store.rados_timeout;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void lb_config_free(struct lb_config *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->store.path);
	free(c->store.backend);
	free(c->store.rados_conf);
	free(c->store.rados_pool);
	free(c->store.rados_user);
	free(c->store.rados_namespace);
	free(c->daemon.socket);
	free(c->daemon.user);
	free(c->daemon.admin_group);
	for (size_t i = 0; i < c->ntenants; i++) {
		struct lb_tenant_cfg *t = &c->tenants[i];
		free(t->id);
		free(t->name);
		free(t->file);
		free_list(t->users, t->nusers);
		free_list(t->groups, t->ngroups);
	}
	free(c->tenants);
	for (size_t i = 0; i < c->ndatasets; i++) {
		struct lb_dataset_cfg *d = &c->datasets[i];
		free(d->tenant);
		free(d->name);
		free(d->source);
		free(d->command);
		free(d->schedule);
		free(d->file);
	}
	free(c->datasets);
	free(c);
}

const struct lb_tenant_cfg *lb_config_tenant(const struct lb_config *c, const char *id)
{
	for (size_t i = 0; i < c->ntenants; i++)
		if (c->tenants[i].id && !strcmp(c->tenants[i].id, id))
			return &c->tenants[i];
	return NULL;
}

const struct lb_dataset_cfg *lb_config_dataset(const struct lb_config *c, const char *tenant, const char *name)
{
	for (size_t i = 0; i < c->ndatasets; i++)
		if (c->datasets[i].tenant && !strcmp(c->datasets[i].tenant, tenant) &&
		    !strcmp(c->datasets[i].name, name))
			return &c->datasets[i];
	return NULL;
}

struct lb_policy lb_config_policy(const struct lb_config *c, const char *tenant, const char *dataset)
{
	const struct lb_dataset_cfg *d = lb_config_dataset(c, tenant, dataset);
	if (d && lb_policy_any(&d->keep))
		return d->keep;
	const struct lb_tenant_cfg *t = lb_config_tenant(c, tenant);
	if (t && lb_policy_any(&t->keep))
		return t->keep;
	return c->store.keep;
}

uint64_t lb_config_quota_sum(const struct lb_config *c)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < c->ntenants; i++)
		sum += c->tenants[i].quota;
	return sum;
}
