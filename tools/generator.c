/* lumbung-generator - a systemd generator (systemd.generator(7)) that gives
 * every dataset with a `schedule` in lumbung.conf a timer.
 *
 * systemd runs it at boot and on every `systemctl daemon-reload`, before it
 * loads units, as `lumbung-generator NORMAL_DIR EARLY_DIR LATE_DIR`.  For
 * each scheduled dataset it writes into NORMAL_DIR
 *
 *   lumbung-backup@INSTANCE.timer                       OnCalendar=SCHEDULE
 *   timers.target.wants/lumbung-backup@INSTANCE.timer -> ../that timer
 *
 * where INSTANCE is TENANT/NAME escaped as systemd-escape(1) escapes it, so
 * that the timer starts lumbung-backup@INSTANCE.service, an instance of the
 * shipped template, whose %I gives TENANT/NAME back.
 *
 * All or nothing: the configuration is read and every unit composed before
 * the first file is written, so a configuration error writes nothing, and a
 * failed write removes what was written.  A missing configuration file is
 * not an error: the package may be installed and not configured yet. */
#include "conf.h"
#include "fsutil.h"
#include "util.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "lumbung-generator"
#define WANTS_DIR "timers.target.wants"
/* The longest unit name systemd accepts (UNIT_NAME_MAX less its NUL). */
#define UNIT_NAME_MAX 255

/* One timer to write: its file name in NORMAL_DIR and its text. */
struct timer {
	char *name;
	char *text;
	size_t len;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " NORMAL_DIR [EARLY_DIR LATE_DIR]\n"
		"\n"
		"A systemd generator: systemd runs it at boot and on daemon-reload.  For\n"
		"every dataset with a schedule in the configuration it writes a timer,\n"
		"lumbung-backup@INSTANCE.timer, into NORMAL_DIR and enables it through\n"
		"NORMAL_DIR/" WANTS_DIR "/; INSTANCE is TENANT/NAME as systemd-escape\n"
		"writes it.  The other directories are not used.\n"
		"\n"
		"  -h, --help       this help\n"
		"  -V, --version    print the version\n"
		"\n"
		"Reads %s, or $LUMBUNG_CONFIG when it is set.\n"
		"Exit status: 0 timers written (or no configuration), 1 configuration or\n"
		"write error (nothing written), 2 usage.  See lumbung-generator(8).\n",
		LB_DEFAULT_CONFIG);
}

/* Escapes s as `systemd-escape` escapes a string that is not a path: '/'
 * becomes '-', and a leading '.' and every byte outside [A-Za-z0-9:_.]
 * become \xNN, '-' included, so that the escape can be undone.  Returns a
 * new string (caller frees) or NULL when memory is exhausted. */
static char *unit_escape(const char *s)
{
	static const char hex[] = "0123456789abcdef";
	char *out = lb_mallocarray(strlen(s) * 4 + 1, 1);
	if (!out)
		return NULL;
	char *o = out;
	for (const char *c = s; *c; c++) {
		unsigned char ch = (unsigned char)*c;
		int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			    ch == ':' || ch == '_' || (ch == '.' && c != s);
		if (ch == '/') {
			*o++ = '-';
		} else if (plain) {
			*o++ = (char)ch;
		} else {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 15];
		}
	}
	*o = '\0';
	return out;
}

/* A time span as systemd writes it: "0", "2h", "10min" or "90s". */
static void format_span(char *buf, size_t len, int64_t s)
{
	if (s == 0)
		snprintf(buf, len, "0");
	else if (s % 3600 == 0)
		snprintf(buf, len, "%lldh", (long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(buf, len, "%lldmin", (long long)(s / 60));
	else
		snprintf(buf, len, "%llds", (long long)s);
}

/* True when a unit file may hold s as a value: no control characters and no
 * '%', which systemd would take for a specifier. */
static int unit_value_ok(const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f || *c == '%')
			return 0;
	return 1;
}

static void timers_free(struct timer *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].name);
		free(t[i].text);
	}
	free(t);
}

/* Composes the timer of dataset d into *t.  Returns 0, -ENAMETOOLONG (the
 * unit's name would be longer than systemd allows) or -ENOMEM. */
static int compose(const struct lb_config *c, const struct lb_dataset_cfg *d, struct timer *t)
{
	char full[160], delay[32];
	snprintf(full, sizeof(full), "%s/%s", d->tenant, d->name);
	_cleanup_free_ char *instance = unit_escape(full);
	if (!instance)
		return -ENOMEM;
	/* The service's name is the longer of the two.  (inih cuts section
	 * names at 49 characters today, which keeps TENANT/NAME short enough;
	 * the check keeps a longer one from becoming a unit systemd refuses.) */
	if (strlen("lumbung-backup@.service") + strlen(instance) > UNIT_NAME_MAX)
		return -ENAMETOOLONG;
	format_span(delay, sizeof(delay), c->daemon.schedule_delay);

	size_t len = 0;
	char *text = NULL;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	int file_ok = unit_value_ok(d->file) && d->file[0] == '/';
	if (file_ok)
		fprintf(f, "# Written by " PROG "(8) from [dataset %s] at %s:%d.\n", full, d->file, d->line);
	else
		fprintf(f, "# Written by " PROG "(8) from [dataset %s] in lumbung.conf.\n", full);
	fprintf(f, "# Change the schedule there, then run: systemctl daemon-reload\n");
	fprintf(f, "[Unit]\n");
	fprintf(f, "Description=Lumbung backup of %s on its schedule\n", full);
	fprintf(f, "Documentation=man:" PROG "(8)\n");
	/* Where the dataset is defined: systemctl then says when that file is
	 * newer than the timer (a daemon-reload is due). */
	if (file_ok)
		fprintf(f, "SourcePath=%s\n", d->file);
	fprintf(f, "\n[Timer]\n");
	fprintf(f, "OnCalendar=%s\n", d->schedule);
	fprintf(f, "Persistent=true\n");
	fprintf(f, "RandomizedDelaySec=%s\n", delay);
	fprintf(f, "AccuracySec=1min\n");
	fprintf(f, "Unit=lumbung-backup@%s.service\n", instance);
	if (fclose(f) != 0 || !text) {
		free(text);
		return -ENOMEM;
	}
	t->text = text;
	t->len = len;
	if (asprintf(&t->name, "lumbung-backup@%s.timer", instance) < 0) {
		t->name = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Publishes dirfd/path as a symbolic link to target, replacing whatever is
 * there, atomically (the caller fsyncs the directory).  Returns 0 or
 * -errno. */
static int symlink_atomic_at(int dirfd, const char *target, const char *path)
{
	char tmp[PATH_MAX];
	uint32_t rnd = 0;
	lb_random(&rnd, sizeof(rnd));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%08x", path, rnd) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if (symlinkat(target, dirfd, tmp) < 0)
		return -errno;
	if (renameat(dirfd, tmp, dirfd, path) < 0) {
		int r = -errno;
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	return 0;
}

/* Removes the first n timers and their links again. */
static void unwrite(int dirfd, const struct timer *t, size_t n)
{
	char link[PATH_MAX];
	for (size_t i = 0; i < n; i++) {
		snprintf(link, sizeof(link), WANTS_DIR "/%s", t[i].name);
		unlinkat(dirfd, link, 0);
		unlinkat(dirfd, t[i].name, 0);
	}
	unlinkat(dirfd, WANTS_DIR, AT_REMOVEDIR); /* only if now empty */
}

/* Writes the n timers and their links into dirfd (named dir in messages).
 * Returns 0, or prints why and returns -errno with nothing left behind. */
static int write_timers(int dirfd, const char *dir, const struct timer *t, size_t n)
{
	char link[PATH_MAX], target[PATH_MAX];
	const char *what = WANTS_DIR;
	size_t done = 0;
	int r = 0;
	if (mkdirat(dirfd, WANTS_DIR, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	for (; done < n; done++) {
		what = t[done].name;
		r = lb_write_file_atomic_at(dirfd, t[done].name, t[done].text, t[done].len, 0644);
		if (r < 0)
			goto fail;
		snprintf(link, sizeof(link), WANTS_DIR "/%s", t[done].name);
		snprintf(target, sizeof(target), "../%s", t[done].name);
		what = link;
		r = symlink_atomic_at(dirfd, target, link);
		if (r < 0)
			goto fail;
	}
	what = WANTS_DIR;
	r = lb_fsync_dir_at(dirfd, WANTS_DIR);
	if (r < 0)
		goto fail;
	what = ".";
	r = lb_fsync_dir_at(dirfd, ".");
	if (r < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, PROG ": cannot write %s/%s: %s\n", dir, what, strerror(-r));
	unwrite(dirfd, t, done < n ? done + 1 : n);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " %s\n", PACKAGE_VERSION); return 0;
		default:
			fprintf(stderr, PROG ": try '" PROG " --help'\n");
			return 2;
		}
	}
	int nargs = argc - optind;
	if (nargs != 1 && nargs != 3) {
		fprintf(stderr, PROG ": expects NORMAL_DIR [EARLY_DIR LATE_DIR]; try '" PROG " --help'\n");
		return 2;
	}
	const char *dir = argv[optind];
	const char *path = getenv("LUMBUNG_CONFIG");
	if (!path || !*path)
		path = LB_DEFAULT_CONFIG;

	struct lb_config *c = NULL;
	char err[512];
	int r = lb_config_load(path, &c, err, sizeof(err));
	/* -ENOENT is the main file only: an included file that cannot be read
	 * is a configuration error (-EINVAL). */
	if (r == -ENOENT)
		return 0; /* installed, not configured: no schedules */
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}

	struct timer *t = lb_mallocarray(c->ndatasets, sizeof(*t));
	size_t n = 0;
	int status = 1;
	_cleanup_close_ int dirfd = -1;
	if (!t) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < c->ndatasets; i++) {
		const struct lb_dataset_cfg *d = &c->datasets[i];
		if (!d->schedule)
			continue;
		memset(&t[n], 0, sizeof(t[n]));
		r = compose(c, d, &t[n++]);
		if (r == -ENAMETOOLONG) {
			fprintf(stderr,
				PROG ": %s:%d: dataset %s/%s: its timer's name would be longer than the %d characters "
				"systemd allows; shorten the tenant id or the dataset name\n",
				d->file, d->line, d->tenant, d->name, UNIT_NAME_MAX);
			goto out;
		}
		if (r < 0) {
			fprintf(stderr, PROG ": out of memory\n");
			goto out;
		}
	}
	if (n == 0) {
		status = 0;
		goto out;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", dir, strerror(errno));
		goto out;
	}
	status = write_timers(dirfd, dir, t, n) < 0 ? 1 : 0;
out:
	timers_free(t, n);
	lb_config_free(c);
	return status;
}
