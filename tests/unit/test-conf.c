/* test-conf.c - lumbung.conf parsing: a full configuration with included
 * tenant files loads with every value; every kind of mistake is refused
 * with the right file and line. */
#include "conf.h"
#include "tap.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void put(const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* Loads NAME and checks that it fails with an error starting "FILE:LINE:"
 * and containing what. */
static void expect_error(const char *name, const char *text, const char *errfile, int line, const char *what)
{
	char path[512], err[512], prefix[600];
	struct lb_config *c = NULL;
	put(name, text);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int r = lb_config_load(path, &c, err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "%s/%s:%d: ", dir, errfile, line);
	tap_ok(r < 0 && c == NULL, "%s: refused", what);
	tap_ok(strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, what) != NULL,
	       "%s: error names %s:%d (got: %s)", what, errfile, line, err);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "%s", tap_tmpdir("conf"));
	char tdir[512], path[512], err[512];
	snprintf(tdir, sizeof(tdir), "%s/tenants.d", dir);
	mkdir(tdir, 0755);
	put("tenants.d/10-dinkes.conf",
	    "[tenant dinkes]\nname = Dinas Kesehatan\nquota = 600G\nsoft_quota = 80%\n"
	    "users = opd-dinkes, opd-dinkes2\ngroups = dinkes-it\nkeep_daily = 14\n"
	    "[dataset dinkes/simpus]\nsource = /srv/opd/dinkes/simpus\nschedule = *-*-* 01:30\n"
	    "keep_last = 3\nkeep_within = 2w\n");
	put("tenants.d/20-disdik.conf", "[tenant disdik]\nname = Dinas Pendidikan\nquota = 1.5T\nusers = opd-disdik\n");
	put("tenants.d/README", "this is not a .conf file and must be ignored\n");
	char main_text[1024];
	snprintf(main_text, sizeof(main_text),
		 "; Lumbung test configuration\n[store]\npath = /var/lib/lumbung/store\ncapacity = 12.5T\n"
		 "compression = zstd:5\nreserve = 20G\ndelta = no\ndelta_max_decode = 12\nkeep_daily = 7\nkeep_monthly = 12\nmin_keep_daily = 3\n[daemon]\nsocket = /run/lumbung/l.sock\n"
		 "user = lumbung          ; dropped to when started as root\nadmin_group = lumbung-admin\n"
		 "max_jobs = 3\nlog_level = debug\nschedule_delay = 90min\nclient_timeout = 45s\ninclude = %s/*.conf\n",
		 tdir);
	put("lumbung.conf", main_text);
	snprintf(path, sizeof(path), "%s/lumbung.conf", dir);
	struct lb_config *c = NULL;
	int r = lb_config_load(path, &c, err, sizeof(err));
	if (!tap_ok(r == 0 && c, "full configuration loads (%s)", r ? err : "ok"))
		return tap_done();
	tap_ok(!strcmp(c->store.path, "/var/lib/lumbung/store"), "store path");
	tap_ok(c->store.capacity == (uint64_t)(12.5 * 1024 * 1024 * 1024 * 1024), "capacity 12.5T in bytes");
	tap_ok(c->store.reserve == 20ULL << 30, "reserve 20G");
	tap_ok(c->store.zstd_level == 5, "compression level");
	tap_ok(c->store.delta == 0 && c->store.delta_max_decode == 12, "delta = no and delta_max_decode");
	tap_ok(!strcmp(c->daemon.socket, "/run/lumbung/l.sock"), "socket");
	tap_ok(!strcmp(c->daemon.user, "lumbung"), "user with an inline comment after it");
	tap_ok(c->daemon.max_jobs == 3 && c->daemon.log_level == LB_LOG_DEBUG, "max_jobs and log_level");
	tap_ok(c->daemon.schedule_delay == 90 * 60, "schedule_delay 90min in seconds");
	tap_ok(c->daemon.client_timeout == 45, "client_timeout 45s in seconds");
	tap_ok(c->ntenants == 2 && c->ndatasets == 1, "tenants and datasets from the included files only");
	const struct lb_tenant_cfg *t = lb_config_tenant(c, "dinkes");
	tap_ok(t && !strcmp(t->name, "Dinas Kesehatan") && t->quota == 600ULL << 30, "tenant name and quota");
	tap_ok(t && t->soft_quota == (600ULL << 30) * 8 / 10, "soft quota as a percentage of quota");
	tap_ok(t && t->nusers == 2 && !strcmp(t->users[1], "opd-dinkes2") && t->ngroups == 1, "users and groups lists");
	const struct lb_dataset_cfg *d = lb_config_dataset(c, "dinkes", "simpus");
	tap_ok(d && !strcmp(d->source, "/srv/opd/dinkes/simpus") && !strcmp(d->schedule, "*-*-* 01:30"),
	       "dataset source and schedule");
	struct lb_policy pd = lb_config_policy(c, "dinkes", "simpus");
	tap_ok(pd.keep_last == 3 && pd.keep_within == 14 * 86400 && pd.keep_daily == 0,
	       "a dataset with rules of its own uses only those");
	struct lb_policy pt = lb_config_policy(c, "dinkes", "other");
	tap_ok(pt.keep_daily == 14 && pt.keep_monthly == 0, "a dataset without rules takes its tenant's");
	struct lb_policy ps = lb_config_policy(c, "disdik", "x");
	tap_ok(ps.keep_daily == 7 && ps.keep_monthly == 12, "a tenant without rules takes the store's");
	tap_ok(c->store.min_keep.keep_daily == 3 && c->store.keep.keep_daily == 7, "min_keep_daily is the floor, not the default");
	tap_ok(lb_config_quota_sum(c) == (600ULL << 30) + (uint64_t)(1.5 * (1ULL << 40)), "sum of quotas");
	lb_config_free(c);

	expect_error("a.conf", "[store]\npath = /x\ncapcity = 1T\n", "a.conf", 3, "unknown key 'capcity' in [store]");
	expect_error("b.conf", "[store]\n\n[storage]\npath = /x\n", "b.conf", 3, "unknown section [storage]");
	expect_error("c.conf", "[tenant dinkes]\nquota = lots\n", "c.conf", 2, "quota must be a size");
	expect_error("d.conf", "[tenant dinkes]\nquota = 1G\n[dataset dinas/x]\nsource = /a\n", "d.conf", 3,
		     "names tenant 'dinas', which is not defined");
	expect_error("e.conf", "[tenant a]\nquota = 1G\n[tenant a]\nquota = 2G\n", "e.conf", 3, "defined twice");
	expect_error("f.conf", "[tenant Bad]\nquota = 1G\n", "f.conf", 1, "tenant id 'Bad'");
	expect_error("g.conf", "[daemon]\nmax_jobs = 0\n", "g.conf", 2, "max_jobs must be a whole number");
	expect_error("h.conf", "[store]\npath = relative/dir\n", "h.conf", 2, "must be absolute");
	expect_error("i.conf", "[store]\ncompression = gzip\n", "i.conf", 2, "compression must be zstd:N");
	expect_error("j.conf", "[store]\npath = /a\npath = /b\n", "j.conf", 3, "set twice");
	expect_error("k.conf", "[tenant a]\nsoft_quota = 50%\n", "k.conf", 2, "needs quota");
	expect_error("l.conf", "[store]\nthis line has no equals sign\n", "l.conf", 2, "not valid INI syntax");
	expect_error("m.conf", "[tenant a]\nquota = 1G\nsoft_quota = 2G\n", "m.conf", 1, "soft_quota is larger than quota");
	expect_error("n.conf", "[daemon]\nlog_level = loud\n", "n.conf", 2, "log_level must be");
	expect_error("q.conf", "[store]\nkeep_within = forever\n", "q.conf", 2, "keep_within must be a duration");
	/* fuzz-conf: LONG_MAX days overflowed the seconds. */
	expect_error("q2.conf", "[store]\nkeep_within = 9223372036854775807d\n", "q2.conf", 2,
		     "keep_within must be at most 100 years");
	expect_error("q3.conf", "[store]\nkeep_within = 36601d\n", "q3.conf", 2, "keep_within must be at most 100 years");
	expect_error("r.conf", "[tenant a]\nquota = 1G\nkeep_daily = -1\n", "r.conf", 3, "keep_daily");
	expect_error("s.conf", "[store]\nmin_keep_often = 2\n", "s.conf", 2, "unknown key 'min_keep_often'");
	expect_error("t.conf", "[store]\n\ndelta = sometimes\n", "t.conf", 3, "delta must be yes or no");
	expect_error("u.conf", "[store]\ndelta_max_decode = 1\n", "u.conf", 2, "delta_max_decode");
	expect_error("v.conf", "[daemon]\nschedule_delay = 13h\n", "v.conf", 2, "schedule_delay must be a duration from 0 to 12h");
	expect_error("w.conf", "[daemon]\n\nschedule_delay = soon\n", "w.conf", 3, "schedule_delay must be a duration");
	expect_error("x.conf", "[daemon]\nschedule_delay = -5min\n", "x.conf", 2, "schedule_delay must be a duration");
	expect_error("ct0.conf", "[daemon]\nclient_timeout = 0\n", "ct0.conf", 2, "client_timeout must be at least 1s");
	expect_error("ct1.conf", "[daemon]\nclient_timeout = 13h\n", "ct1.conf", 2, "client_timeout must be a duration from 0 to 12h");
	/* The delay's bounds, and its default when unset. */
	static const struct {
		const char *value;
		int64_t seconds;
	} delays[] = { { "12h", 12 * 3600 }, { "0", 0 }, { "45s", 45 }, { "10m", 600 }, { "2h", 7200 } };
	for (size_t i = 0; i < LB_ARRAY_SIZE(delays); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[daemon]\nschedule_delay = %s\n", delays[i].value);
		put("delay.conf", text);
		snprintf(path, sizeof(path), "%s/delay.conf", dir);
		r = lb_config_load(path, &c, err, sizeof(err));
		tap_ok(r == 0 && c->daemon.schedule_delay == delays[i].seconds, "schedule_delay = %s is %lld s (%s)",
		       delays[i].value, (long long)delays[i].seconds, r ? err : "ok");
		if (r == 0)
			lb_config_free(c);
	}
	put("delay.conf", "[daemon]\nmax_jobs = 2\n");
	r = lb_config_load(path, &c, err, sizeof(err));
	tap_ok(r == 0 && c->daemon.schedule_delay == 10 * 60, "schedule_delay defaults to 10min (%s)", r ? err : "ok");
	tap_ok(r == 0 && c->daemon.client_timeout == 10 * 60, "client_timeout defaults to 10min (%s)", r ? err : "ok");
	if (r == 0)
		lb_config_free(c);
	/* A mistake inside an included file names that file and its line. */
	mkdir(strcat(strcpy(path, dir), "/inc"), 0755);
	put("inc/x.conf", "[tenant x]\nquota = 1G\nusrs = someone\n");
	snprintf(main_text, sizeof(main_text), "[daemon]\ninclude = %s/inc/*.conf\n", dir);
	expect_error("o.conf", main_text, "inc/x.conf", 3, "unknown key 'usrs'");
	put("inc/x.conf", "[store]\npath = /elsewhere\n");
	expect_error("p.conf", main_text, "inc/x.conf", 1, "[store] belongs in the main configuration file");
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", dir);
	r = lb_config_load(path, &c, err, sizeof(err));
	tap_ok(r == -ENOENT && strstr(err, "cannot open"), "a missing file is refused with its name (%s)", err);

	/* An include that matches a FIFO, a device or a directory, or a file
	 * too large to be a configuration, fails at once (fuzz-conf found an
	 * include glob over the root's directories hanging on /dev/zero).  A hang is a failure:
	 * the alarm kills the test. */
	alarm(60);
	char fifo[600];
	snprintf(fifo, sizeof(fifo), "%s/inc2", dir);
	mkdir(fifo, 0755);
	snprintf(fifo, sizeof(fifo), "%s/inc2/pipe.conf", dir);
	tap_ok(mkfifo(fifo, 0600) == 0, "a FIFO named like an included file");
	snprintf(main_text, sizeof(main_text), "[daemon]\ninclude = %s/inc2/*.conf\n", dir);
	put("q.conf", main_text);
	snprintf(path, sizeof(path), "%s/q.conf", dir);
	c = NULL;
	r = lb_config_load(path, &c, err, sizeof(err));
	tap_ok(r < 0 && !c && strstr(err, "pipe.conf: not a regular file"), "an included FIFO is refused without waiting (%s)", err);
	unlink(fifo);
	put("r.conf", "[daemon]\ninclude = /dev/zero\n");
	snprintf(path, sizeof(path), "%s/r.conf", dir);
	r = lb_config_load(path, &c, err, sizeof(err));
	tap_ok(r < 0 && strstr(err, "/dev/zero: not a regular file"), "an included device is refused (%s)", err);
	r = lb_config_load(dir, &c, err, sizeof(err));
	tap_ok(r < 0 && strstr(err, "not a regular file"), "a directory as the configuration is refused (%s)", err);
	snprintf(path, sizeof(path), "%s/big.conf", dir);
	FILE *big = fopen(path, "w");
	fputs("[daemon]\n", big);
	for (int i = 0; i < 200000; i++)
		fputs("# padding\n", big);
	fclose(big);
	r = lb_config_load(path, &c, err, sizeof(err));
	tap_ok(r == -EFBIG && strstr(err, "a configuration file is at most 1048576"), "a 2 MB file is refused (%s)", err);
	alarm(0);
	return tap_done();
}
