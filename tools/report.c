/* report.c - `lumbung report`: quota and backup reports for Diskominfo and
 * for OPD staff, as a terminal table, CSV, or JSON (field names in
 * lumbung(1)); the daemon gathers the figures, this side lays them out. */
#include "client.h"
#include "util.h"

#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <time.h>

struct tenant_row {
	char *tenant, *name;
	uint64_t quota, soft, charged, exclusive, fair, logical, raw, snapshots;
	int64_t oldest, newest, g7, g30, full;
};

struct dataset_row {
	char *tenant, *dataset, *error, *schedule;
	int64_t last_ok;
	uint64_t jobs, failed, missed;
	int64_t missed_at[62];
	uint64_t read, sent, stored; /* over the period */
	uint64_t last[3];            /* the newest job's read, sent, stored */
};

struct store_row {
	int have;
	uint64_t physical, capacity, free_bytes, quota_sum, referenced, shared, unreferenced, overhead;
	int64_t growth, full;
	int64_t gc_time; /* the last garbage collection in the period, 0 none */
	uint64_t gc_freed, gc_status;
};

struct point {
	int64_t t;
	uint64_t v;
};

struct report {
	struct point *pts;
	size_t npts, cappts;
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
			fprintf(f, ",\"schedule\":");
			json_str(f, d->schedule);
			fprintf(f, ",\"missed\":%llu,\"missed_nights\":[", (unsigned long long)d->missed);
			for (uint64_t m = 0; m < d->missed && m < LB_ARRAY_SIZE(d->missed_at); m++)
				fprintf(f, "%s%lld", m ? "," : "", (long long)(d->missed_at[m] / 1000000000LL));
			fprintf(f, "],\"bytes_read\":%llu,\"bytes_sent\":%llu,\"bytes_stored\":%llu,"
				   "\"last_job\":{\"bytes_read\":%llu,\"bytes_sent\":%llu,\"bytes_stored\":%llu}}",
				(unsigned long long)d->read, (unsigned long long)d->sent, (unsigned long long)d->stored,
				(unsigned long long)d->last[0], (unsigned long long)d->last[1],
				(unsigned long long)d->last[2]);
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
		fprintf(f, ",\"last_gc\":");
		if (s->gc_time) {
			fprintf(f, "{\"time\":");
			json_time(f, s->gc_time);
			fprintf(f, ",\"freed\":%llu,\"status\":%llu}", (unsigned long long)s->gc_freed,
				(unsigned long long)s->gc_status);
		} else {
			fprintf(f, "null");
		}
		fprintf(f, "}");
	}
	fprintf(f, "}\n");
}

static void out_csv(FILE *f, const struct report *r)
{
	fprintf(f, "tenant,name,quota,soft_quota,charged,percent,exclusive,fair_share,logical,dedup_ratio,"
		   "compression_ratio,snapshots,oldest,newest,growth_per_day_7d,growth_per_day_30d,quota_full,"
		   "jobs,failed_jobs,last_success,bytes_read,bytes_sent,bytes_stored\r\n");
	for (size_t i = 0; i < r->nt; i++) {
		const struct tenant_row *t = &r->t[i];
		char a[32], b[32], c[32], e[32];
		uint64_t jobs = 0, failed = 0, rd = 0, sent = 0, stored = 0;
		int64_t last = 0;
		for (size_t k = 0; k < r->nd; k++) {
			if (strcmp(r->d[k].tenant, t->tenant))
				continue;
			rd += r->d[k].read;
			sent += r->d[k].sent;
			stored += r->d[k].stored;
			jobs += r->d[k].jobs;
			failed += r->d[k].failed;
			if (r->d[k].last_ok > last)
				last = r->d[k].last_ok;
		}
		csv_field(f, t->tenant);
		fputc(',', f);
		csv_field(f, t->name);
		fprintf(f, ",%llu,%llu,%llu,%.2f,%llu,%llu,%llu,%.3f,%.3f,%llu,%s,%s,%lld,%lld,%s,%llu,%llu,%s,%llu,%llu,%llu\r\n",
			(unsigned long long)t->quota, (unsigned long long)t->soft, (unsigned long long)t->charged,
			t->quota ? 100.0 * ratio(t->charged, t->quota) : 0.0, (unsigned long long)t->exclusive,
			(unsigned long long)t->fair, (unsigned long long)t->logical, ratio(t->logical, t->raw),
			ratio(t->raw, t->charged), (unsigned long long)t->snapshots, day(t->oldest, a, sizeof(a)),
			day(t->newest, b, sizeof(b)), (long long)t->g7, (long long)t->g30, day(t->full, c, sizeof(c)),
			(unsigned long long)jobs, (unsigned long long)failed, day(last, e, sizeof(e)),
			(unsigned long long)rd, (unsigned long long)sent, (unsigned long long)stored);
	}
}

static void out_table(FILE *f, const struct report *r)
{
	char a[32], b[32], c[32], d[32];
	fprintf(f, "%-14s%9s %9s %6s %9s %10s %5s %10s\n", _("TENANT"), _("QUOTA"), _("CHARGED"), _("USED"),
		_("GROWTH/D"), _("FULL ON"), _("SNAPS"), _("LAST OK"));
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
			t->quota ? lb_format_size(a, sizeof(a), t->quota) : _("none"), lb_format_size(b, sizeof(b), t->charged),
			used, grow, t->full ? day(t->full, d, sizeof(d)) : "-", (unsigned long long)t->snapshots,
			last ? day(last, c, sizeof(c)) : _("never"));
	}
	/* What the nights cost: the newest backup of each dataset, and the
	 * period's total. */
	if (r->nd)
		fprintf(f, "\n%-24s %9s %9s %9s   %9s %9s\n", _("DATASET"), _("LAST READ"), _("SENT"),
			_("STORED"), _("ALL SENT"), _("STORED"));
	for (size_t k = 0; k < r->nd; k++) {
		const struct dataset_row *ds = &r->d[k];
		char name[2 * LB_NAME_MAX + 2], s1[32], s2[32], s3[32], s4[32], s5[32];
		snprintf(name, sizeof(name), "%s/%s", ds->tenant, ds->dataset);
		fprintf(f, "%-24.24s %9s %9s %9s   %9s %9s\n", name, lb_format_size(s1, sizeof(s1), ds->last[0]),
			lb_format_size(s2, sizeof(s2), ds->last[1]), lb_format_size(s3, sizeof(s3), ds->last[2]),
			lb_format_size(s4, sizeof(s4), ds->sent), lb_format_size(s5, sizeof(s5), ds->stored));
	}
	int any = 0;
	for (size_t k = 0; k < r->nd; k++) {
		const struct dataset_row *ds = &r->d[k];
		if (!ds->failed && ds->last_ok && !ds->missed)
			continue;
		if (!any++)
			fprintf(f, _("\nDatasets needing attention:\n"));
		fprintf(f, "  %s/%s: %s%s\n", ds->tenant, ds->dataset,
			ds->last_ok ? _("last success ") : _("no successful backup"), ds->last_ok ? day(ds->last_ok, a, sizeof(a)) : "");
		if (ds->failed)
			fprintf(f, _("    %llu of %llu jobs failed; last: %.48s\n"), (unsigned long long)ds->failed,
				(unsigned long long)ds->jobs, ds->error);
		if (ds->missed) {
			fprintf(f, _("    %llu night%s missed (%.18s):"), (unsigned long long)ds->missed,
				ds->missed == 1 ? "" : "s", ds->schedule);
			for (uint64_t m = 0; m < ds->missed && m < 3; m++)
				fprintf(f, " %s", day(ds->missed_at[m], a, sizeof(a)));
			fprintf(f, "%s\n", ds->missed > 3 ? " ..." : "");
		}
	}
	if (r->st.have) {
		const struct store_row *s = &r->st;
		fprintf(f, _("\nStore:     %s used of %s, %s free on disk\n"), lb_format_size(a, sizeof(a), s->physical),
			s->capacity ? lb_format_size(b, sizeof(b), s->capacity) : "unlimited",
			lb_format_size(c, sizeof(c), s->free_bytes));
		fprintf(f, _("Quotas:    add up to %s%s\n"), lb_format_size(d, sizeof(d), s->quota_sum),
			s->capacity && s->quota_sum > s->capacity ? _(" (overcommitted)") : "");
		fprintf(f, _("Breakdown: shared %s, unreferenced %s, overhead %s\n"), lb_format_size(a, sizeof(a), s->shared),
			lb_format_size(b, sizeof(b), s->unreferenced), lb_format_size(c, sizeof(c), s->overhead));
		if (s->full)
			fprintf(f, _("Forecast:  the allocation fills on %s\n"), day(s->full, d, sizeof(d)));
		if (s->gc_time && !s->gc_status)
			fprintf(f, _("Last GC:   %s, %s freed\n"), day(s->gc_time, d, sizeof(d)),
				lb_format_size(a, sizeof(a), s->gc_freed));
		else if (s->gc_time)
			fprintf(f, _("Last GC:   %s, failed (%s)\n"), day(s->gc_time, d, sizeof(d)),
				strerror((int)s->gc_status));
		else
			fprintf(f, _("Last GC:   none in this period\n"));
	}
}

static void html_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* One self-contained page: inline CSS and SVG, nothing fetched, no script;
 * laid out for A4 paper. */
static void out_html(FILE *f, const struct report *r)
{
	char a[32], b[32], c[32], ov[32];
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">\n", _("en"));
	fprintf(f, ""
		   "<title>Lumbung: quota and backup report</title>\n<style>\n"
		   "@page { size: A4; margin: 14mm; }\n"
		   "body { font: 10pt/1.4 sans-serif; color: #222; max-width: 182mm; margin: 0 auto; }\n"
		   "h1 { font-size: 15pt; margin: 0 0 2pt; } h2 { font-size: 12pt; margin: 14pt 0 4pt; }\n"
		   "table { border-collapse: collapse; width: 100%%; } th, td { padding: 2pt 4pt; text-align: right; }\n"
		   "th:first-child, td:first-child { text-align: left; } thead th { border-bottom: 1px solid #444; }\n"
		   "tbody tr:nth-child(even) { background: #f3f3f3; } .warn { color: #a00; }\n"
		   "svg { display: block; } section { break-inside: avoid; }\n"
		   "</style></head><body>\n");
	fprintf(f, "<h1>%s</h1>\n", _("Lumbung &mdash; quota and backup report"));
	char g[32], p[32];
	fprintf(f, _("<p>Generated %s; period from %s.</p>\n"), day(r->now, g, sizeof(g)), day(r->since, p, sizeof(p)));

	/* Charged usage against quota, one bar per tenant. */
	int rows = (int)r->nt, bh = 14, gap = 4, left = 110, width = 560;
	uint64_t scale = 1;
	for (size_t i = 0; i < r->nt; i++)
		scale = LB_MAX(scale, LB_MAX(r->t[i].quota, r->t[i].charged));
	fprintf(f, "<section><h2>%s</h2>\n"
		   "<svg id=\"quota-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "role=\"img\" aria-label=\"charged usage against quota per OPD\">\n",
		_("Charged usage against quota"), left + width + 60, rows * (bh + gap) + 10);
	for (size_t i = 0; i < r->nt; i++) {
		const struct tenant_row *t = &r->t[i];
		int y = (int)i * (bh + gap) + 5;
		double q = (double)t->quota / (double)scale * width, ch = (double)t->charged / (double)scale * width;
		int over = t->quota && t->charged > t->quota;
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"9\" text-anchor=\"end\">", left - 6, y + bh - 3);
		html_text(f, t->tenant);
		fprintf(f, "</text>\n");
		if (t->quota)
			fprintf(f, "<rect class=\"quota\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#dde6f0\"/>\n",
				left, y, q, bh);
		fprintf(f, "<rect class=\"bar\" data-tenant=\"");
		html_text(f, t->tenant);
		fprintf(f, "\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y + 3,
			ch < 0.5 && t->charged ? 0.5 : ch, bh - 6, over ? "#c0392b" : "#2c6fa8");
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"8\">%.0f%%</text>\n", left + LB_MAX(q, ch) + 4,
			y + bh - 3, t->quota ? 100.0 * ratio(t->charged, t->quota) : 0.0);
	}
	fprintf(f, "</svg></section>\n");

	/* The store over time, with the forecast to capacity. */
	if (r->st.have) {
		const struct store_row *s = &r->st;
		int W = 640, H = 200, L = 60, B = 20;
		int64_t t0 = r->since, t1 = s->full && s->full > r->now ? LB_MIN(s->full, r->now + (r->now - r->since) * 3) : r->now;
		uint64_t vmax = LB_MAX(s->capacity, s->physical);
		for (size_t i = 0; i < r->npts; i++)
			vmax = LB_MAX(vmax, r->pts[i].v);
		if (!vmax)
			vmax = 1;
		double xs = (double)(W - L - 10) / (double)(t1 > t0 ? t1 - t0 : 1), ys = (double)(H - B - 10) / (double)vmax;
		fprintf(f, "<section><h2>%s</h2>\n"
			   "<svg id=\"store-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
			   "role=\"img\" aria-label=\"store usage over time with forecast\">\n", _("Store usage over time"), W, H);
		fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", L, H - B, W - 10, H - B);
		fprintf(f, "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", L, L, H - B);
		if (s->capacity)
			fprintf(f, "<line class=\"capacity\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#c0392b\" "
				   "stroke-dasharray=\"2,2\"/><text x=\"%d\" y=\"%.1f\" font-size=\"8\">capacity %s</text>\n",
				L, H - B - (double)s->capacity * ys, W - 10, H - B - (double)s->capacity * ys, L + 4,
				H - B - (double)s->capacity * ys - 3, lb_format_size(a, sizeof(a), s->capacity));
		fprintf(f, "<polyline class=\"usage\" fill=\"none\" stroke=\"#2c6fa8\" stroke-width=\"2\" points=\"");
		for (size_t i = 0; i < r->npts; i++)
			fprintf(f, "%.1f,%.1f ", L + (double)(r->pts[i].t - t0) * xs, H - B - (double)r->pts[i].v * ys);
		fprintf(f, "%.1f,%.1f\"/>\n", L + (double)(r->now - t0) * xs, H - B - (double)s->physical * ys);
		if (s->growth > 0) {
			double fx = L + (double)(t1 - t0) * xs;
			double fv = (double)s->physical + (double)s->growth * (double)(t1 - r->now) / 86400e9;
			fprintf(f, "<line class=\"forecast\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2c6fa8\" "
				   "stroke-dasharray=\"5,3\"/>\n", L + (double)(r->now - t0) * xs,
				H - B - (double)s->physical * ys, fx, H - B - fv * ys);
		}
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"8\">%s</text><text x=\"%d\" y=\"%d\" font-size=\"8\" "
			   "text-anchor=\"end\">%s</text>\n", L, H - 6, day(t0, b, sizeof(b)), W - 10, H - 6,
			day(t1, c, sizeof(c)));
		fprintf(f, "</svg>\n<p>%s used of %s; quotas add up to %s%s; shared %s, unreferenced %s, overhead %s.",
			lb_format_size(a, sizeof(a), s->physical), s->capacity ? lb_format_size(b, sizeof(b), s->capacity) : "no set capacity",
			lb_format_size(c, sizeof(c), s->quota_sum), s->capacity && s->quota_sum > s->capacity ? " (overcommitted)" : "",
			lb_format_size(g, sizeof(g), s->shared), lb_format_size(p, sizeof(p), s->unreferenced),
			lb_format_size(ov, sizeof(ov), s->overhead));
		if (s->full)
			fprintf(f, " At the current growth the allocation fills on %s.", day(s->full, b, sizeof(b)));
		fprintf(f, "</p></section>\n");
	}

	/* Backups that need attention. */
	fprintf(f, "<section><h2>%s</h2>\n<table id=\"missed\"><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr></thead><tbody>\n",
		_("Missed or failed backups"), _("Dataset"), _("Last success"), _("Missed nights"), _("Failed jobs"), _("Last error"));
	int any = 0;
	for (size_t k = 0; k < r->nd; k++) {
		const struct dataset_row *d = &r->d[k];
		if (!d->failed && d->last_ok && !d->missed)
			continue;
		any++;
		fprintf(f, "<tr><td>");
		html_text(f, d->tenant);
		fputc('/', f);
		html_text(f, d->dataset);
		fprintf(f, "</td><td>%s</td><td class=\"warn\">", d->last_ok ? day(d->last_ok, a, sizeof(a)) : "never");
		for (uint64_t m = 0; m < d->missed && m < LB_ARRAY_SIZE(d->missed_at); m++)
			fprintf(f, "%s%s", m ? ", " : "", day(d->missed_at[m], b, sizeof(b)));
		fprintf(f, "</td><td class=\"warn\">%llu of %llu</td><td>", (unsigned long long)d->failed, (unsigned long long)d->jobs);
		html_text(f, d->error);
		fprintf(f, "</td></tr>\n");
	}
	if (!any)
		fprintf(f, "<tr><td colspan=\"5\">%s</td></tr>\n", _("None: every dataset has a successful backup and no failure."));
	fprintf(f, "</tbody></table></section>\n");

	/* The figures. */
	fprintf(f, "<section><h2>%s</h2>\n<table id=\"tenants\"><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
		   "<th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr></thead><tbody>\n", _("Tenants"), _("OPD"), _("Quota"),
		_("Charged"), _("Used"), _("Growth/day"), _("Quota full"), _("Snapshots"), _("Dedup"), _("Compr."));
	for (size_t i = 0; i < r->nt; i++) {
		const struct tenant_row *t = &r->t[i];
		fprintf(f, "<tr><td title=\"");
		html_text(f, t->name);
		fprintf(f, "\">");
		html_text(f, t->tenant);
		fprintf(f, "</td><td>%s</td><td>%s</td><td>%.1f%%</td><td>%s</td><td>%s</td><td>%llu</td><td>%.2f&times;</td>"
			   "<td>%.2f&times;</td></tr>\n",
			t->quota ? lb_format_size(a, sizeof(a), t->quota) : "none", lb_format_size(b, sizeof(b), t->charged),
			t->quota ? 100.0 * ratio(t->charged, t->quota) : 0.0,
			t->g30 || t->g7 ? lb_format_size(c, sizeof(c), (uint64_t)llabs(t->g30 ? t->g30 : t->g7)) : "&ndash;",
			t->full ? day(t->full, g, sizeof(g)) : "&ndash;", (unsigned long long)t->snapshots,
			ratio(t->logical, t->raw), ratio(t->raw, t->charged));
	}
	fprintf(f, "</tbody></table></section>\n</body></html>\n");
}

static void prom_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

static void prom_head(FILE *f, const char *name, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* Prometheus text exposition, for node_exporter's textfile collector. */
static void out_prom(FILE *f, const struct report *r)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} tm[] = {
		{ "lumbung_tenant_quota_bytes", "Hard quota of the tenant (0 for none).", offsetof(struct tenant_row, quota) },
		{ "lumbung_tenant_soft_quota_bytes", "Soft quota of the tenant (0 for none).", offsetof(struct tenant_row, soft) },
		{ "lumbung_tenant_charged_bytes", "Bytes charged to the tenant: what its snapshots reference.", offsetof(struct tenant_row, charged) },
		{ "lumbung_tenant_exclusive_bytes", "Bytes only this tenant references.", offsetof(struct tenant_row, exclusive) },
		{ "lumbung_tenant_logical_bytes", "File bytes of all the tenant's snapshots.", offsetof(struct tenant_row, logical) },
		{ "lumbung_tenant_snapshots", "Snapshots the tenant keeps.", offsetof(struct tenant_row, snapshots) },
	};
	for (size_t m = 0; m < LB_ARRAY_SIZE(tm); m++) {
		prom_head(f, tm[m].name, tm[m].help);
		for (size_t i = 0; i < r->nt; i++) {
			fprintf(f, "%s{tenant=\"", tm[m].name);
			prom_label(f, r->t[i].tenant);
			fprintf(f, "\"} %llu\n", (unsigned long long)*(const uint64_t *)((const char *)&r->t[i] + tm[m].off));
		}
	}
	prom_head(f, "lumbung_tenant_growth_bytes_per_day", "Growth of the charge per day over the window.");
	for (size_t i = 0; i < r->nt; i++) {
		for (int w = 0; w < 2; w++) {
			fprintf(f, "lumbung_tenant_growth_bytes_per_day{tenant=\"");
			prom_label(f, r->t[i].tenant);
			fprintf(f, "\",window=\"%s\"} %lld\n", w ? "30d" : "7d", (long long)(w ? r->t[i].g30 : r->t[i].g7));
		}
	}
	prom_head(f, "lumbung_last_success_timestamp_seconds", "When the dataset's last successful backup ended.");
	for (size_t k = 0; k < r->nd; k++) {
		fprintf(f, "lumbung_last_success_timestamp_seconds{tenant=\"");
		prom_label(f, r->d[k].tenant);
		fprintf(f, "\",dataset=\"");
		prom_label(f, r->d[k].dataset);
		fprintf(f, "\"} %lld\n", (long long)(r->d[k].last_ok / 1000000000LL));
	}
	prom_head(f, "lumbung_dataset_missed_nights", "Scheduled runs in the report's period with no snapshot.");
	for (size_t k = 0; k < r->nd; k++) {
		fprintf(f, "lumbung_dataset_missed_nights{tenant=\"");
		prom_label(f, r->d[k].tenant);
		fprintf(f, "\",dataset=\"");
		prom_label(f, r->d[k].dataset);
		fprintf(f, "\"} %llu\n", (unsigned long long)r->d[k].missed);
	}
	prom_head(f, "lumbung_dataset_failed_jobs", "Failed backup jobs of the dataset in the report's period.");
	for (size_t k = 0; k < r->nd; k++) {
		fprintf(f, "lumbung_dataset_failed_jobs{tenant=\"");
		prom_label(f, r->d[k].tenant);
		fprintf(f, "\",dataset=\"");
		prom_label(f, r->d[k].dataset);
		fprintf(f, "\"} %llu\n", (unsigned long long)r->d[k].failed);
	}
	if (r->st.have) {
		const struct store_row *s = &r->st;
		const struct {
			const char *name, *help;
			uint64_t v;
		} sm[] = {
			{ "lumbung_store_physical_bytes", "Bytes the store occupies.", s->physical },
			{ "lumbung_store_capacity_bytes", "The store's allocation (0 for none).", s->capacity },
			{ "lumbung_store_free_bytes", "Free bytes on the store's filesystem.", s->free_bytes },
			{ "lumbung_store_quota_sum_bytes", "Sum of the tenants' hard quotas.", s->quota_sum },
			{ "lumbung_store_shared_bytes", "Bytes referenced by more than one tenant.", s->shared },
			{ "lumbung_store_unreferenced_bytes", "Bytes no snapshot references (awaiting GC).", s->unreferenced },
			{ "lumbung_store_overhead_bytes", "Pack headers and footers, index, heads and logs.", s->overhead },
		};
		for (size_t m = 0; m < LB_ARRAY_SIZE(sm); m++) {
			prom_head(f, sm[m].name, sm[m].help);
			fprintf(f, "%s %llu\n", sm[m].name, (unsigned long long)sm[m].v);
		}
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
		"Usage: lumbung report [--tenant T] [--period 30d] [--format table|csv|json|html|prom]\n"
		"                      [--output FILE]\n"
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
		"in lumbung(1); html is one self-contained page with charts, for A4; prom is\n"
		"the Prometheus text format for node_exporter's textfile collector.  --output\n"
		"replaces FILE atomically.  Labels follow the locale (LANG=id_ID.UTF-8 for\n"
		"Indonesian); --lang en|id overrides it.\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "period", required_argument, NULL, 'p' },
					      { "format", required_argument, NULL, 'f' },
					      { "output", required_argument, NULL, 'o' },
					      { "lang", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	const char *format = "table", *output = NULL;
	int64_t period = 30LL * 86400LL * 1000000000LL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:f:o:l:h", opts, NULL)) != -1) {
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
		case 'l': set_language(optarg); break;
		case 'h': fputs(help, stdout); return EXIT_OK;
		default:
			fprintf(stderr, "lumbung: try 'lumbung report --help'\n");
			return EXIT_USAGE;
		}
	}
	if (co.json)
		format = "json";
	if (strcmp(format, "table") && strcmp(format, "csv") && strcmp(format, "json") && strcmp(format, "html") &&
	    strcmp(format, "prom")) {
		fprintf(stderr, "lumbung report: --format is table, csv, json, html or prom, not '%s'\n", format);
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
			d->schedule = lb_rd_strdup(&rd, 256);
			d->missed = lb_rd_uv(&rd);
			for (uint64_t k = 0; k < d->missed && k < LB_ARRAY_SIZE(d->missed_at); k++)
				d->missed_at[k] = lb_rd_sv(&rd);
			d->read = lb_rd_uv(&rd);
			d->sent = lb_rd_uv(&rd);
			d->stored = lb_rd_uv(&rd);
			for (int k = 0; k < 3; k++)
				d->last[k] = lb_rd_uv(&rd);
			if (!lb_rd_done(&rd) || !d->tenant || !d->dataset || !d->error || !d->schedule)
				r = -EPROTO;
		} else if (cl.f.type == LB_MSG_REPORT_POINT) {
			if (lb_grow(&rep.pts, &rep.cappts, rep.npts + 1, sizeof(*rep.pts)) < 0) {
				r = -ENOMEM;
				break;
			}
			rep.pts[rep.npts].t = lb_rd_sv(&rd);
			rep.pts[rep.npts++].v = lb_rd_uv(&rd);
			if (!lb_rd_done(&rd))
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
			s->gc_time = lb_rd_sv(&rd);
			s->gc_freed = lb_rd_uv(&rd);
			s->gc_status = lb_rd_uv(&rd);
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
		/* --output is replaced atomically (a collector never reads half a
		 * file): written beside it, synced, renamed over it. */
		char tmp[4200];
		if (output)
			snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", output, (long)getpid());
		FILE *f = output ? fopen(tmp, "w") : stdout;
		if (!f) {
			fprintf(stderr, "lumbung: cannot write %s: %s\n", output, strerror(errno));
			rc = EXIT_FAILED;
		} else {
			if (!strcmp(format, "json"))
				out_json(f, &rep);
			else if (!strcmp(format, "csv"))
				out_csv(f, &rep);
			else if (!strcmp(format, "html"))
				out_html(f, &rep);
			else if (!strcmp(format, "prom"))
				out_prom(f, &rep);
			else
				out_table(f, &rep);
			int bad = fflush(f) != 0 || (output && fsync(fileno(f)) != 0);
			if (output && fclose(f) != 0)
				bad = 1;
			if (!bad && output && rename(tmp, output) != 0)
				bad = 1;
			if (bad) {
				fprintf(stderr, "lumbung: cannot write %s: %s\n", output ? output : "stdout", strerror(errno));
				if (output)
					unlink(tmp);
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
		free(rep.d[i].schedule);
	}
	free(rep.t);
	free(rep.d);
	free(rep.pts);
	client_close(&cl);
	return rc;
}
