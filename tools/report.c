/* report.c - `lumbung report`: quota and backup reports for Diskominfo and
 * for OPD staff, as a terminal table, CSV, or JSON (field names in
 * lumbung(1)); the daemon gathers the figures, this side lays them out. */
#include "client.h"
#include "util.h"

#include <getopt.h>
#include <math.h>
#include <time.h>

struct tenant_row {
	char *tenant, *name;
	uint64_t quota, soft, charged, exclusive, fair, logical, raw, snapshots;
	int64_t oldest, newest, g7, g30, full;
};

struct dataset_row {
	char *tenant, *dataset, *error;
	int64_t last_ok;
	uint64_t jobs, failed;
};

struct store_row {
	int have;
	uint64_t physical, capacity, free_bytes, quota_sum, referenced, shared, unreferenced, overhead;
	int64_t growth, full;
};

struct report {
	struct tenant_row *t;
	size_t nt, capt;
	struct dataset_row *d;
	size_t nd, capd;
	struct store_row st;
	int64_t now, since;
};

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0; }

static const char *day(int64_t ns, char *buf, size_t len)
{
	if (!ns)
		return "";
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
	return buf;
}

static void csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n")) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
}

static void json_time(FILE *f, int64_t ns)
{
	if (ns)
		fprintf(f, "%lld", (long long)(ns / 1000000000LL));
	else
		fputs("null", f);
}

static void out_json(FILE *f, const struct report *r)
{
	fprintf(f, "{\"generated\":%lld,\"period_start\":%lld,\"tenants\":[", (long long)(r->now / 1000000000LL),
		(long long)(r->since / 1000000000LL));
	for (size_t i = 0; i < r->nt; i++) {
		const struct tenant_row *t = &r->t[i];
		fprintf(f, "%s{\"tenant\":", i ? "," : "");
		json_str(f, t->tenant);
		fprintf(f, ",\"name\":");
		json_str(f, t->name);
		fprintf(f, ",\"quota\":%llu,\"soft_quota\":%llu,\"charged\":%llu,\"percent\":%.2f,"
			   "\"exclusive\":%llu,\"fair_share\":%llu,\"logical\":%llu,\"dedup_ratio\":%.3f,"
			   "\"compression_ratio\":%.3f,\"snapshots\":%llu,\"oldest\":",
			(unsigned long long)t->quota, (unsigned long long)t->soft, (unsigned long long)t->charged,
			t->quota ? 100.0 * ratio(t->charged, t->quota) : 0.0, (unsigned long long)t->exclusive,
			(unsigned long long)t->fair, (unsigned long long)t->logical, ratio(t->logical, t->raw),
			ratio(t->raw, t->charged), (unsigned long long)t->snapshots);
		json_time(f, t->oldest);
		fprintf(f, ",\"newest\":");
		json_time(f, t->newest);
		fprintf(f, ",\"growth_per_day_7d\":%lld,\"growth_per_day_30d\":%lld,\"quota_full\":", (long long)t->g7,
			(long long)t->g30);
		json_time(f, t->full);
		fprintf(f, ",\"datasets\":[");
		int n = 0;
		for (size_t k = 0; k < r->nd; k++) {
			const struct dataset_row *d = &r->d[k];
			if (strcmp(d->tenant, t->tenant))
				continue;
			fprintf(f, "%s{\"dataset\":", n++ ? "," : "");
			json_str(f, d->dataset);
			fprintf(f, ",\"last_success\":");
			json_time(f, d->last_ok);
			fprintf(f, ",\"jobs\":%llu,\"failed\":%llu,\"last_error\":", (unsigned long long)d->jobs,
				(unsigned long long)d->failed);
			json_str(f, d->error);
			fprintf(f, "}");
		}
		fprintf(f, "]}");
	}
	fprintf(f, "]");
	if (r->st.have) {
		const struct store_row *s = &r->st;
		fprintf(f, ",\"store\":{\"physical\":%llu,\"capacity\":%llu,\"free\":%llu,\"quota_sum\":%llu,"
			   "\"overcommit\":%.3f,\"referenced\":%llu,\"shared\":%llu,\"unreferenced\":%llu,"
			   "\"overhead\":%llu,\"growth_per_day_30d\":%lld,\"capacity_full\":",
			(unsigned long long)s->physical, (unsigned long long)s->capacity,
			(unsigned long long)s->free_bytes, (unsigned long long)s->quota_sum,
			ratio(s->quota_sum, s->capacity), (unsigned long long)s->referenced,
			(unsigned long long)s->shared, (unsigned long long)s->unreferenced,
			(unsigned long long)s->overhead, (long long)s->growth);
		json_time(f, s->full);
		fprintf(f, "}");
	}
	fprintf(f, "}\n");
}

static void out_csv(FILE *f, const struct report *r)
{
	fprintf(f, "tenant,name,quota,soft_quota,charged,percent,exclusive,fair_share,logical,dedup_ratio,"
		   "compression_ratio,snapshots,oldest,newest,growth_per_day_7d,growth_per_day_30d,quota_full,"
		   "jobs,failed_jobs,last_success\r\n");
	for (size_t i = 0; i < r->nt; i++) {
		const struct tenant_row *t = &r->t[i];
		char a[32], b[32], c[32], e[32];
		uint64_t jobs = 0, failed = 0;
		int64_t last = 0;
		for (size_t k = 0; k < r->nd; k++) {
			if (strcmp(r->d[k].tenant, t->tenant))
				continue;
			jobs += r->d[k].jobs;
			failed += r->d[k].failed;
			if (r->d[k].last_ok > last)
				last = r->d[k].last_ok;
		}
		csv_field(f, t->tenant);
		fputc(',', f);
		csv_field(f, t->name);
		fprintf(f, ",%llu,%llu,%llu,%.2f,%llu,%llu,%llu,%.3f,%.3f,%llu,%s,%s,%lld,%lld,%s,%llu,%llu,%s\r\n",
			(unsigned long long)t->quota, (unsigned long long)t->soft, (unsigned long long)t->charged,
			t->quota ? 100.0 * ratio(t->charged, t->quota) : 0.0, (unsigned long long)t->exclusive,
			(unsigned long long)t->fair, (unsigned long long)t->logical, ratio(t->logical, t->raw),
			ratio(t->raw, t->charged), (unsigned long long)t->snapshots, day(t->oldest, a, sizeof(a)),
			day(t->newest, b, sizeof(b)), (long long)t->g7, (long long)t->g30, day(t->full, c, sizeof(c)),
			(unsigned long long)jobs, (unsigned long long)failed, day(last, e, sizeof(e)));
	}
}

static void out_table(FILE *f, const struct report *r)
{
	char a[32], b[32], c[32], d[32];
	fprintf(f, "%-14s%9s %9s %6s %9s %10s %5s %10s\n", "TENANT", "QUOTA", "CHARGED", "USED", "GROWTH/D",
		"FULL ON", "SNAPS", "LAST OK");
	for (size_t i = 0; i < r->nt; i++) {
		const struct tenant_row *t = &r->t[i];
		int64_t last = 0;
		uint64_t failed = 0;
		for (size_t k = 0; k < r->nd; k++) {
			if (strcmp(r->d[k].tenant, t->tenant))
				continue;
			failed += r->d[k].failed;
			if (r->d[k].last_ok > last)
				last = r->d[k].last_ok;
		}
		char used[16];
		snprintf(used, sizeof(used), "%.1f%%", t->quota ? 100.0 * ratio(t->charged, t->quota) : 0.0);
		char grow[32];
		snprintf(grow, sizeof(grow), "%s", t->g30 || t->g7 ? lb_format_size(c, sizeof(c), (uint64_t)llabs(t->g30 ? t->g30 : t->g7)) : "-");
		fprintf(f, "%-13.13s%s%9s %9s %6s %9s %10s %5llu %10s\n", t->tenant, failed ? "!" : " ",
			t->quota ? lb_format_size(a, sizeof(a), t->quota) : "none", lb_format_size(b, sizeof(b), t->charged),
			used, grow, t->full ? day(t->full, d, sizeof(d)) : "-", (unsigned long long)t->snapshots,
			last ? day(last, c, sizeof(c)) : "never");
	}
	int any = 0;
	for (size_t k = 0; k < r->nd; k++) {
		const struct dataset_row *ds = &r->d[k];
		if (!ds->failed && ds->last_ok)
			continue;
		if (!any++)
			fprintf(f, "\nDatasets needing attention:\n");
		fprintf(f, "  %s/%s: %s%s\n", ds->tenant, ds->dataset,
			ds->last_ok ? "last success " : "no successful backup", ds->last_ok ? day(ds->last_ok, a, sizeof(a)) : "");
		if (ds->failed)
			fprintf(f, "    %llu of %llu jobs failed; last: %.48s\n", (unsigned long long)ds->failed,
				(unsigned long long)ds->jobs, ds->error);
	}
	if (r->st.have) {
		const struct store_row *s = &r->st;
		fprintf(f, "\nStore:     %s used of %s, %s free on disk\n", lb_format_size(a, sizeof(a), s->physical),
			s->capacity ? lb_format_size(b, sizeof(b), s->capacity) : "unlimited",
			lb_format_size(c, sizeof(c), s->free_bytes));
		fprintf(f, "Quotas:    add up to %s%s\n", lb_format_size(d, sizeof(d), s->quota_sum),
			s->capacity && s->quota_sum > s->capacity ? " (overcommitted)" : "");
		fprintf(f, "Breakdown: shared %s, unreferenced %s, overhead %s\n", lb_format_size(a, sizeof(a), s->shared),
			lb_format_size(b, sizeof(b), s->unreferenced), lb_format_size(c, sizeof(c), s->overhead));
		if (s->full)
			fprintf(f, "Forecast:  the allocation fills on %s\n", day(s->full, d, sizeof(d)));
	}
}

static int parse_period(const char *s, int64_t *ns)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (v <= 0 || (strcmp(end, "d") && strcmp(end, "")))
		return -EINVAL;
	*ns = (int64_t)v * 86400LL * 1000000000LL;
	return 0;
}

int cmd_report(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung report [--tenant T] [--period 30d] [--format table|csv|json] [--output FILE]\n"
		"\n"
		"Quota and backup report.  Per tenant: quota, charged usage and its share,\n"
		"exclusive bytes and fair share of shared data (administrators), logical size,\n"
		"dedup and compression ratios, snapshots (count, oldest, newest), growth per\n"
		"day over 7 and 30 days with the date the quota fills, and each dataset's last\n"
		"successful backup and failed jobs in the period.  Administrators also get the\n"
		"store: physical use against capacity, free space, sum of quotas and\n"
		"overcommit, shared, unreferenced and overhead bytes (which, with the\n"
		"tenants' exclusive bytes, add up to the physical total) and the date the\n"
		"allocation fills.  csv is RFC 4180 with a header row; json field names are\n"
		"in lumbung(1).\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "period", required_argument, NULL, 'p' },
					      { "format", required_argument, NULL, 'f' },
					      { "output", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	const char *format = "table", *output = NULL;
	int64_t period = 30LL * 86400LL * 1000000000LL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:f:o:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		switch (c) {
		case 'p':
			if (parse_period(optarg, &period) < 0) {
				fprintf(stderr, "lumbung report: --period takes days, like 30d, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f': format = optarg; break;
		case 'o': output = optarg; break;
		case 'h': fputs(help, stdout); return EXIT_OK;
		default:
			fprintf(stderr, "lumbung: try 'lumbung report --help'\n");
			return EXIT_USAGE;
		}
	}
	if (co.json)
		format = "json";
	if (strcmp(format, "table") && strcmp(format, "csv") && strcmp(format, "json")) {
		fprintf(stderr, "lumbung report: --format is table, csv or json, not '%s'\n", format);
		return EXIT_USAGE;
	}
	if (optind != argc) {
		fprintf(stderr, "lumbung report: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct report rep = { .now = lb_now_ns() };
	rep.since = rep.now - period;
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, co.tenant ? co.tenant : "");
	lb_buf_put_sv(&b, rep.since);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_REPORT, &b);
	lb_buf_free(&b);
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type != LB_MSG_END) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		if (cl.f.type == LB_MSG_REPORT_TENANT) {
			if (lb_grow(&rep.t, &rep.capt, rep.nt + 1, sizeof(*rep.t)) < 0) {
				r = -ENOMEM;
				break;
			}
			struct tenant_row *t = &rep.t[rep.nt++];
			memset(t, 0, sizeof(*t));
			t->tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
			t->name = lb_rd_strdup(&rd, 1024);
			uint64_t *u[] = { &t->quota, &t->soft, &t->charged, &t->exclusive, &t->fair, &t->logical, &t->raw, &t->snapshots };
			for (size_t k = 0; k < LB_ARRAY_SIZE(u); k++)
				*u[k] = lb_rd_uv(&rd);
			int64_t *v[] = { &t->oldest, &t->newest, &t->g7, &t->g30, &t->full };
			for (size_t k = 0; k < LB_ARRAY_SIZE(v); k++)
				*v[k] = lb_rd_sv(&rd);
			if (!lb_rd_done(&rd) || !t->tenant || !t->name)
				r = -EPROTO;
		} else if (cl.f.type == LB_MSG_REPORT_DATASET) {
			if (lb_grow(&rep.d, &rep.capd, rep.nd + 1, sizeof(*rep.d)) < 0) {
				r = -ENOMEM;
				break;
			}
			struct dataset_row *d = &rep.d[rep.nd++];
			memset(d, 0, sizeof(*d));
			d->tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
			d->dataset = lb_rd_strdup(&rd, LB_NAME_MAX);
			d->last_ok = lb_rd_sv(&rd);
			d->jobs = lb_rd_uv(&rd);
			d->failed = lb_rd_uv(&rd);
			d->error = lb_rd_strdup(&rd, 1024);
			if (!lb_rd_done(&rd) || !d->tenant || !d->dataset || !d->error)
				r = -EPROTO;
		} else if (cl.f.type == LB_MSG_REPORT_STORE) {
			struct store_row *s = &rep.st;
			s->have = 1;
			uint64_t *u[] = { &s->physical, &s->capacity, &s->free_bytes, &s->quota_sum, &s->referenced,
					  &s->shared, &s->unreferenced, &s->overhead };
			for (size_t k = 0; k < LB_ARRAY_SIZE(u); k++)
				*u[k] = lb_rd_uv(&rd);
			s->growth = lb_rd_sv(&rd);
			s->full = lb_rd_sv(&rd);
			if (!lb_rd_done(&rd))
				r = -EPROTO;
		} else {
			rc = client_unexpected(&cl, "report");
			r = 1;
			break;
		}
	}
	if (r < 0) {
		rc = rc ? rc : EXIT_FAILED;
		if (r == -EPROTO)
			fprintf(stderr, "lumbung: malformed report from lumbungd\n");
	} else if (r == 0) {
		FILE *f = output ? fopen(output, "w") : stdout;
		if (!f) {
			fprintf(stderr, "lumbung: cannot write %s: %s\n", output, strerror(errno));
			rc = EXIT_FAILED;
		} else {
			if (!strcmp(format, "json"))
				out_json(f, &rep);
			else if (!strcmp(format, "csv"))
				out_csv(f, &rep);
			else
				out_table(f, &rep);
			if ((output ? fclose(f) : fflush(f)) != 0) {
				fprintf(stderr, "lumbung: cannot write %s\n", output ? output : "stdout");
				rc = EXIT_FAILED;
			}
		}
	}
	for (size_t i = 0; i < rep.nt; i++) {
		free(rep.t[i].tenant);
		free(rep.t[i].name);
	}
	for (size_t i = 0; i < rep.nd; i++) {
		free(rep.d[i].tenant);
		free(rep.d[i].dataset);
		free(rep.d[i].error);
	}
	free(rep.t);
	free(rep.d);
	client_close(&cl);
	return rc;
}
