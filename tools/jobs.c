/* jobs.c - `lumbung jobs` (running, queued and recent backups),
 * `lumbung schedule` (what is scheduled, when it runs next and how it last
 * went) and `lumbung run` (one dataset's backup as its configuration says:
 * what the systemd timers start). */
#include "client.h"
#include "conf.h"
#include "link.h"
#include "util.h"

#include <getopt.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *size_or_dash(char *buf, size_t len, uint64_t v, int known)
{
	return known ? lb_format_size(buf, len, v) : "-";
}

static const char *state_name(int state, uint64_t status)
{
	switch (state) {
	case 0: return _("running");
	case 1: return _("queued");
	default: return status ? _("failed") : _("ok");
	}
}

static int parse_day(const char *arg, int64_t *ns)
{
	struct tm tm = { 0 };
	char *end = strptime(arg, "%Y-%m-%d", &tm);
	if (!end || *end)
		return -EINVAL;
	tm.tm_isdst = -1;
	*ns = (int64_t)mktime(&tm) * 1000000000LL;
	return 0;
}

int cmd_jobs(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung jobs [--since YYYY-MM-DD] [--json]\n"
		"\n"
		"Backups running now, those waiting for a slot (lumbungd runs at most\n"
		"max_jobs at once and starts the others in the order they came), and the\n"
		"last result of each dataset over the last 62 days: when it ran, what the\n"
		"client read, what crossed the wire (the compressed SSH link for --remote\n"
		"and scheduled ssh:// sources, else the bytes sent to lumbungd) and what was\n"
		"added to the store.  With --since, every backup since that day instead of\n"
		"the last of each.  Tenant members see their own tenants' jobs only.\n"
		"\n"
		"  --since YYYY-MM-DD   every ended backup since that day\n"
		"  --tenant T, --socket PATH, --config FILE, --json\n"
		"\n"
		"Exit status: 0, 1 failed, 2 usage, 5 lumbungd unreachable.\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "since", required_argument, NULL, 's' },
					      { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	int64_t since = 0;
	int history = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 's') {
			if (parse_day(optarg, &since) < 0) {
				fprintf(stderr, "lumbung jobs: --since takes YYYY-MM-DD, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			history = 1;
		} else if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "lumbung: try 'lumbung jobs --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lumbung jobs: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_u8(&b, (uint8_t)history);
	lb_buf_put_sv(&b, since);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_JOBS, &b);
	lb_buf_free(&b);
	int n = 0;
	if (co.json)
		printf("[");
	else
		printf("%-8s %-30s %-5s %-19s %10s %10s %10s  %s\n", _("STATE"), _("DATASET"), _("QUEUE"), _("STARTED"),
		       _("READ"), _("SENT"), _("STORED"), _("RESULT"));
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_JOB_ROW) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		int state = lb_rd_u8(&rd);
		char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX), *dataset = lb_rd_strdup(&rd, LB_NAME_MAX);
		char *user = lb_rd_strdup(&rd, 255);
		uint64_t pid = lb_rd_uv(&rd);
		int64_t start = lb_rd_sv(&rd), end = lb_rd_sv(&rd);
		uint64_t status = lb_rd_uv(&rd);
		char *error = lb_rd_strdup(&rd, 1024);
		uint64_t bread = lb_rd_uv(&rd), bsent = lb_rd_uv(&rd), stored = lb_rd_uv(&rd), files = lb_rd_uv(&rd);
		char *snap = lb_rd_strdup(&rd, 64);
		uint64_t place = lb_rd_uv(&rd);
		if (!lb_rd_done(&rd) || !tenant || !dataset || !user || !error || !snap) {
			fprintf(stderr, "lumbung: malformed answer from lumbungd\n");
			r = -EPROTO;
		} else if (co.json) {
			printf("%s{\"state\":\"%s\",\"tenant\":", n ? "," : "",
			       state == 0 ? "running" : state == 1 ? "queued" : status ? "failed" : "ok");
			json_str(stdout, tenant);
			printf(",\"dataset\":");
			json_str(stdout, dataset);
			printf(",\"user\":");
			json_str(stdout, user);
			printf(",\"pid\":%llu,\"start\":%lld,\"end\":%lld,\"start_ns\":%lld,\"end_ns\":%lld,"
			       "\"queue_place\":%llu,\"status\":%llu,\"error\":",
			       (unsigned long long)pid, (long long)(start / 1000000000LL), (long long)(end / 1000000000LL),
			       (long long)start, (long long)end, (unsigned long long)place, (unsigned long long)status);
			json_str(stdout, error);
			printf(",\"bytes_read\":%llu,\"bytes_sent\":%llu,\"bytes_stored\":%llu,\"files\":%llu,\"snapshot\":",
			       (unsigned long long)bread, (unsigned long long)bsent, (unsigned long long)stored,
			       (unsigned long long)files);
			json_str(stdout, snap);
			printf("}");
		} else {
			char name[2 * LB_NAME_MAX + 2], when[32], q[16], s1[32], s2[32], s3[32], res[1100];
			snprintf(name, sizeof(name), "%s/%s", tenant, dataset);
			snprintf(q, sizeof(q), "%s", state == 1 ? "" : "-");
			if (state == 1)
				snprintf(q, sizeof(q), "%llu", (unsigned long long)place);
			fmt_time(start, when, sizeof(when));
			if (state == 2 && status)
				snprintf(res, sizeof(res), "%s", error);
			else if (state == 2)
				snprintf(res, sizeof(res), "%.12s, %llu %s", snap, (unsigned long long)files, _("files"));
			else if (state == 0)
				snprintf(res, sizeof(res), "%s %s (pid %llu)", _("by"), user, (unsigned long long)pid);
			else
				snprintf(res, sizeof(res), "%s %s (pid %llu)", _("waiting, by"), user, (unsigned long long)pid);
			printf("%-8s %-30s %-5s %-19s %10s %10s %10s  %s\n", state_name(state, status), name, q, when,
			       size_or_dash(s1, sizeof(s1), bread, state == 2),
			       size_or_dash(s2, sizeof(s2), bsent, state != 1), size_or_dash(s3, sizeof(s3), stored, state == 2),
			       res);
		}
		n++;
		free(tenant);
		free(dataset);
		free(user);
		free(error);
		free(snap);
	}
	if (co.json && r == 0)
		printf("]\n");
	if (r == 0 && cl.f.type != LB_MSG_END)
		rc = client_unexpected(&cl, "jobs");
	else if (r < 0)
		rc = EXIT_FAILED;
	client_close(&cl);
	return rc;
}

int cmd_schedule(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung schedule [--json]\n"
		"\n"
		"Every dataset of lumbung.conf(5) you may see: its schedule (systemd calendar\n"
		"syntax; lumbung-generator(8) turns each into a lumbung-backup@ timer, which\n"
		"'systemctl list-timers' lists), its source, when it is due next (before the\n"
		"timer's random delay, [daemon] schedule_delay), and how its last backup\n"
		"went, with the time of its newest snapshot.\n"
		"\n"
		"  --tenant T, --socket PATH, --config FILE, --json\n"
		"\n"
		"Exit status: 0, 1 failed, 2 usage, 5 lumbungd unreachable.\n";
	static const struct option opts[] = { COMMON_OPTIONS, { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		}
		fprintf(stderr, "lumbung: try 'lumbung schedule --help'\n");
		return EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "lumbung schedule: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	int r = lb_frame_send(cl.fd, LB_MSG_SCHEDULE, NULL, 0);
	int n = 0;
	if (co.json)
		printf("[");
	else
		printf("%-30s %-16s %-19s %-19s %-7s %s\n", _("DATASET"), _("SCHEDULE"), _("NEXT"), _("LAST RUN"),
		       _("RESULT"), _("SOURCE"));
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_SCHEDULE_ROW) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		char *tenant = lb_rd_strdup(&rd, LB_NAME_MAX), *dataset = lb_rd_strdup(&rd, LB_NAME_MAX);
		char *sched = lb_rd_strdup(&rd, 1024), *source = lb_rd_strdup(&rd, 8192);
		int64_t next = lb_rd_sv(&rd), lstart = lb_rd_sv(&rd), lend = lb_rd_sv(&rd);
		uint64_t status = lb_rd_uv(&rd);
		char *error = lb_rd_strdup(&rd, 1024), *snap = lb_rd_strdup(&rd, 64);
		int64_t ok = lb_rd_sv(&rd);
		if (!lb_rd_done(&rd) || !tenant || !dataset || !sched || !source || !error || !snap) {
			fprintf(stderr, "lumbung: malformed answer from lumbungd\n");
			r = -EPROTO;
		} else if (co.json) {
			printf("%s{\"tenant\":", n ? "," : "");
			json_str(stdout, tenant);
			printf(",\"dataset\":");
			json_str(stdout, dataset);
			printf(",\"schedule\":");
			json_str(stdout, sched);
			printf(",\"source\":");
			json_str(stdout, source);
			printf(",\"next\":%lld,\"last_start\":%lld,\"last_end\":%lld,\"last_status\":%llu,\"last_error\":",
			       (long long)(next / 1000000000LL), (long long)(lstart / 1000000000LL),
			       (long long)(lend / 1000000000LL), (unsigned long long)status);
			json_str(stdout, error);
			printf(",\"last_snapshot\":");
			json_str(stdout, snap);
			printf(",\"last_success\":%lld}", (long long)(ok / 1000000000LL));
		} else {
			char name[2 * LB_NAME_MAX + 2], t1[32], t2[32];
			snprintf(name, sizeof(name), "%s/%s", tenant, dataset);
			printf("%-30s %-16s %-19s %-19s %-7s %s\n", name, *sched ? sched : "-",
			       next ? fmt_time(next, t1, sizeof(t1)) : "-", lstart ? fmt_time(lstart, t2, sizeof(t2)) : "-",
			       !lstart ? "-" : status ? _("failed") : _("ok"), *source ? source : "-");
			if (lstart && status)
				printf("    %s\n", error);
		}
		n++;
		free(tenant);
		free(dataset);
		free(sched);
		free(source);
		free(error);
		free(snap);
	}
	if (co.json && r == 0)
		printf("]\n");
	if (r == 0 && cl.f.type != LB_MSG_END)
		rc = client_unexpected(&cl, "schedule");
	else if (r < 0)
		rc = EXIT_FAILED;
	client_close(&cl);
	return rc;
}

/* Starts sh -c command with its stdout on our stdin. */
static pid_t start_command(const char *command)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		if (dup2(p[1], 1) < 0)
			_exit(127);
		close(p[1]);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0 || dup2(p[0], 0) < 0) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

int cmd_run(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung run [options] TENANT/NAME\n"
		"\n"
		"Backs up one dataset as lumbung.conf(5) describes it: its 'source' (a local\n"
		"directory, or ssh://[USER@]HOST[:PORT]/PATH pulled through 'lumbung agent'\n"
		"with deltas and a compressed link) or its 'command' (run by /bin/sh on the\n"
		"appliance; its stdout is stored as the file NAME, and a command that fails\n"
		"commits nothing).  This is what the lumbung-backup@ timers run\n"
		"(lumbung-generator(8)); run it by hand to back up a dataset now.\n"
		"\n"
		"  --limit-rate RATE   cap an ssh:// source's link (e.g. 10mbit, 512k)\n"
		"  --no-delta          send an ssh:// source's changed files whole\n"
		"  --delta             send a local source's changed files as deltas too\n"
		"  --ssh-command CMD   the ssh for an ssh:// source (default: ssh -o\n"
		"                      BatchMode=yes; keys and options in /root/.ssh/config)\n"
		"  --tenant T, --socket PATH, --config FILE, --json\n"
		"\n"
		"Exit status: as 'lumbung backup': 0 committed, 1 failed (nothing is\n"
		"committed), 2 usage or no such dataset in the configuration, 4 unknown\n"
		"tenant, 5 lumbungd unreachable.\n";
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "limit-rate", required_argument, NULL, 0x2004 },
		{ "no-delta", no_argument, NULL, 0x2005 },
		{ "delta", no_argument, NULL, 0x2007 },
		{ "ssh-command", required_argument, NULL, 0x2002 },
		{ NULL, 0, NULL, 0 },
	};
	struct common co = { 0 };
	struct backup_opts o = { .delta = -1, .delta_min = LB_DELTA_MIN_DEFAULT };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		switch (c) {
		case 0x2004:
			if (lb_parse_rate(optarg, &o.rate) < 0) {
				fprintf(stderr, "lumbung run: --limit-rate '%s' is not a rate (e.g. 10mbit, 512k, 2M)\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 0x2005: o.delta = 0; break;
		case 0x2007: o.delta = 1; break;
		case 0x2002: o.ssh_command = optarg; break;
		case 'h': fputs(help, stdout); return EXIT_OK;
		default:
			fprintf(stderr, "lumbung: try 'lumbung run --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "lumbung run: give one TENANT/NAME; try 'lumbung run --help'\n");
		return EXIT_USAGE;
	}
	char tenant[LB_NAME_MAX + 1], name[LB_NAME_MAX + 1];
	if (split_dataset(argv[optind], co.tenant, tenant, name) < 0 || !*tenant) {
		fprintf(stderr, "lumbung run: '%s' is not a dataset name (TENANT/NAME)\n", argv[optind]);
		return EXIT_USAGE;
	}
	const char *file = co.config ? co.config : getenv("LUMBUNG_CONFIG") ? getenv("LUMBUNG_CONFIG") : LB_DEFAULT_CONFIG;
	struct lb_config *cfg;
	char err[512];
	if (lb_config_load(file, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "lumbung run: %s\n", err);
		return EXIT_USAGE;
	}
	const struct lb_dataset_cfg *dc = lb_config_dataset(cfg, tenant, name);
	int rc;
	if (!dc || (!dc->source && !dc->command)) {
		fprintf(stderr, "lumbung run: %s has no [dataset %s/%s] with a source or a command\n", file, tenant, name);
		rc = EXIT_USAGE;
	} else if (dc->source && !strncmp(dc->source, "ssh://", 6)) {
		rc = backup_remote(&co, tenant, name, NULL, NULL, 0, dc->source, &o);
	} else if (dc->source) {
		char *paths[1] = { dc->source };
		struct backup_src src = { .paths = paths, .npaths = 1 };
		rc = backup_local(&co, tenant, name, NULL, NULL, 0, &src, &o);
	} else {
		pid_t pid = start_command(dc->command);
		if (pid < 0) {
			fprintf(stderr, "lumbung run: cannot start the command of %s/%s: %s\n", tenant, name, strerror(errno));
			rc = EXIT_FAILED;
		} else {
			struct backup_src src = { .stdin_name = name, .command_pid = pid, .command = dc->command };
			rc = backup_local(&co, tenant, name, NULL, NULL, 0, &src, &o);
		}
	}
	lb_config_free(cfg);
	return rc;
}
