/* show.c - the verbs that only look: snapshots, ls, diff, check, version. */
#include "client.h"
#include "retention.h"
#include "util.h"

#include <getopt.h>
#include <time.h>

/* Parses the common options only; returns -1 to go on, else an exit code. */
static int parse_common(int argc, char **argv, struct common *co, const char *help)
{
	static const struct option opts[] = { COMMON_OPTIONS, { NULL, 0, NULL, 0 } };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_option(co, c, optarg))
			continue;
		if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		}
		fprintf(stderr, "lumbung: try 'lumbung %s --help'\n", argv[0]);
		return EXIT_USAGE;
	}
	return -1;
}

int cmd_snapshots(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung snapshots [--tenant T] [--dataset [TENANT/]NAME] [--json]\n"
		"\n"
		"Lists the snapshots you may see (your tenants'; every tenant's for\n"
		"administrators), oldest first: id, dataset, time, host, files, size.\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "dataset", required_argument, NULL, 'd' },
					      { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	const char *dataset = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 'd') {
			dataset = optarg;
		} else if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "lumbung: try 'lumbung snapshots --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lumbung snapshots: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	char tenant[LB_NAME_MAX + 1] = "", name[LB_NAME_MAX + 1] = "";
	if (dataset && split_dataset(dataset, co.tenant, tenant, name) < 0) {
		fprintf(stderr, "lumbung snapshots: '%s' is not a dataset name\n", dataset);
		return EXIT_USAGE;
	}
	if (!dataset && co.tenant)
		snprintf(tenant, sizeof(tenant), "%s", co.tenant);
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, tenant);
	lb_buf_put_str(&b, name);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_SNAPSHOTS, &b);
	lb_buf_free(&b);
	if (co.json)
		printf("[");
	else
		printf("%-12s  %-28s  %-19s  %-12s  %8s  %10s\n", "ID", "DATASET", "TIME", "HOST", "FILES", "SIZE");
	int n = 0;
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_SNAPSHOT) {
		struct lb_snapshot s;
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		if (lb_proto_get_snapshot(&rd, &s) < 0) {
			r = -EPROTO;
			break;
		}
		char hex[LB_SNAP_HEX], when[32], sz[32], ds[160];
		lb_snap_id_hex(s.id, hex);
		fmt_time(s.time_ns, when, sizeof(when));
		snprintf(ds, sizeof(ds), "%s/%s", s.tenant, s.dataset);
		if (co.json) {
			printf("%s{\"id\":\"%s\",\"tenant\":", n ? "," : "", hex);
			json_str(stdout, s.tenant);
			printf(",\"dataset\":");
			json_str(stdout, s.dataset);
			printf(",\"time\":%lld,\"host\":", (long long)(s.time_ns / 1000000000LL));
			json_str(stdout, s.host);
			printf(",\"files\":%llu,\"bytes\":%llu,\"new_bytes_stored\":%llu,\"tags\":[",
			       (unsigned long long)s.nfiles, (unsigned long long)s.logical,
			       (unsigned long long)s.new_stored);
			for (size_t i = 0; i < s.ntags; i++) {
				if (i)
					putchar(',');
				json_str(stdout, s.tags[i]);
			}
			printf("]}");
		} else {
			printf("%-12.12s  %-28s  %-19s  %-12.12s  %8llu  %10s\n", hex, ds, when, s.host,
			       (unsigned long long)s.nfiles, lb_format_size(sz, sizeof(sz), s.logical));
		}
		n++;
		lb_snapshot_clear(&s);
	}
	if (co.json)
		printf("]\n");
	if (r == 0 && cl.f.type != LB_MSG_END)
		rc = client_unexpected(&cl, "listing");
	else if (r < 0)
		rc = EXIT_FAILED;
	client_close(&cl);
	return rc;
}

int cmd_ls(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung ls SNAPSHOT [PATH] [--json]\n"
		"\n"
		"Lists the entries of a snapshot (under PATH if given): mode, owner, size,\n"
		"modification time and path.  Exit status 4 when snapshot or path is missing.\n";
	struct common co = { 0 };
	int rc = parse_common(argc, argv, &co, help);
	if (rc >= 0)
		return rc;
	if (argc - optind < 1 || argc - optind > 2) {
		fprintf(stderr, "lumbung ls: give SNAPSHOT [PATH]; try 'lumbung ls --help'\n");
		return EXIT_USAGE;
	}
	const char *snap = argv[optind], *path = argc - optind == 2 ? argv[optind + 1] : "";
	struct client cl;
	rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, co.tenant ? co.tenant : "");
	lb_buf_put_str(&b, snap);
	lb_buf_put_str(&b, path);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_LS, &b);
	lb_buf_free(&b);
	int n = 0;
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_ENTRY) {
		struct lb_entry e;
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		if (lb_entry_decode(&rd, &e) < 0) {
			r = -EPROTO;
			break;
		}
		char mode[12], when[32], owner[80];
		fmt_mode(e.type, e.mode, mode);
		fmt_time(e.mtime_ns, when, sizeof(when));
		if (co.json) {
			if (!n)
				printf("[");
			printf("%s{\"path\":", n ? "," : "");
			json_str(stdout, e.path);
			printf(",\"type\":%d,\"mode\":%u,\"uid\":%u,\"gid\":%u,\"size\":%llu,\"mtime\":%lld", e.type,
			       e.mode, e.uid, e.gid, (unsigned long long)e.size, (long long)(e.mtime_ns / 1000000000LL));
			if (e.link) {
				printf(",\"link\":");
				json_str(stdout, e.link);
			}
			printf("}");
		} else {
			snprintf(owner, sizeof(owner), "%s/%s", e.uname ? e.uname : "?", e.gname ? e.gname : "?");
			printf("%s %-17s %12llu %s ", mode, owner, (unsigned long long)e.size, when);
			put_name(stdout, e.path);
			if (e.link) {
				fputs(e.type == LB_FT_SYMLINK ? " -> " : " => ", stdout);
				put_name(stdout, e.link);
			}
			putchar('\n');
		}
		n++;
		lb_entry_clear(&e);
	}
	if (co.json && r == 0 && cl.f.type == LB_MSG_END)
		printf("%s]\n", n ? "" : "[");
	if (r == 0 && cl.f.type != LB_MSG_END)
		rc = client_unexpected(&cl, "listing");
	else if (r < 0)
		rc = EXIT_FAILED;
	client_close(&cl);
	return rc;
}

int cmd_diff(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung diff SNAPSHOT1 SNAPSHOT2 [--json]\n"
		"\n"
		"Lists what changed from SNAPSHOT1 to SNAPSHOT2: '+' added, '-' removed,\n"
		"'M' changed (content, size, mode, owner or time), with sizes.\n";
	struct common co = { 0 };
	int rc = parse_common(argc, argv, &co, help);
	if (rc >= 0)
		return rc;
	if (argc - optind != 2) {
		fprintf(stderr, "lumbung diff: give two snapshots; try 'lumbung diff --help'\n");
		return EXIT_USAGE;
	}
	struct client cl;
	rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, co.tenant ? co.tenant : "");
	lb_buf_put_str(&b, argv[optind]);
	lb_buf_put_str(&b, argv[optind + 1]);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_DIFF, &b);
	lb_buf_free(&b);
	uint64_t added = 0, removed = 0, changed = 0;
	int n = 0;
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_DIFF_ITEM) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		char kind = (char)lb_rd_u8(&rd);
		char *path = lb_rd_strdup(&rd, 4095);
		int type = lb_rd_u8(&rd);
		uint64_t a = lb_rd_uv(&rd), bsz = lb_rd_uv(&rd);
		if (!lb_rd_done(&rd) || !path) {
			free(path);
			r = -EPROTO;
			break;
		}
		added += kind == '+';
		removed += kind == '-';
		changed += kind == 'M';
		if (co.json) {
			printf("%s{\"change\":\"%c\",\"path\":", n ? "," : "[", kind);
			json_str(stdout, path);
			printf(",\"type\":%d,\"old_size\":%llu,\"new_size\":%llu}", type, (unsigned long long)a,
			       (unsigned long long)bsz);
		} else if (kind == 'M') {
			printf("M ");
			put_name(stdout, path);
			printf(" (%llu -> %llu bytes)\n", (unsigned long long)a, (unsigned long long)bsz);
		} else {
			printf("%c ", kind);
			put_name(stdout, path);
			printf(" (%llu bytes)\n", (unsigned long long)(kind == '+' ? bsz : a));
		}
		n++;
		free(path);
	}
	if (r == 0 && cl.f.type == LB_MSG_END) {
		if (co.json)
			printf("%s]\n", n ? "" : "[");
		else
			fprintf(stderr, "%llu added, %llu removed, %llu changed\n", (unsigned long long)added,
				(unsigned long long)removed, (unsigned long long)changed);
	} else if (r == 0) {
		rc = client_unexpected(&cl, "diff");
	} else {
		rc = EXIT_FAILED;
	}
	client_close(&cl);
	return rc;
}

int cmd_check(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung check [--read-data [--max-duration D]] [--json]\n"
		"\n"
		"Verifies the store (administrators only): every pack against the index,\n"
		"every snapshot's manifest and the chunks it needs; with --read-data every\n"
		"stored byte is read and every chunk re-hashed.  Each damaged chunk is named\n"
		"with its pack and offset, and every snapshot and file that uses it.\n"
		"\n"
		"  --read-data        read and re-hash every stored byte (a full pass)\n"
		"  --max-duration D   read for at most D (90m, 2h, 1d) and stop; the next\n"
		"                     run resumes where this one stopped, so a weekly run\n"
		"                     covers the whole store over time (lumbung-verify.timer)\n"
		"\n"
		"Exit status: 0 clean, 3 damage found, 1 check could not run.\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "read-data", no_argument, NULL, 'r' },
					      { "max-duration", required_argument, NULL, 'm' },
					      { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	int read_data = 0, c;
	int64_t max_s = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 'r') {
			read_data = 1;
		} else if (c == 'm') {
			if (lb_parse_duration(optarg, &max_s) < 0) {
				fprintf(stderr, "lumbung check: --max-duration takes a duration such as 90m, 2h or 1d, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
		} else if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "lumbung: try 'lumbung check --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lumbung check: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (max_s && !read_data) {
		fprintf(stderr, "lumbung check: --max-duration limits --read-data; give both\n");
		return EXIT_USAGE;
	}
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf req;
	lb_buf_init(&req);
	lb_buf_put_u8(&req, (uint8_t)read_data);
	lb_buf_put_uv(&req, (uint64_t)max_s);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_CHECK, &req);
	lb_buf_free(&req);
	int n = 0;
	if (co.json)
		printf("{\"problems\":[");
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_PROBLEM) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		char *kind = lb_rd_strdup(&rd, 64), *what = lb_rd_strdup(&rd, 4096);
		if (co.json) {
			printf("%s{\"kind\":", n ? "," : "");
			json_str(stdout, kind);
			printf(",\"what\":");
			json_str(stdout, what);
			printf("}");
		} else {
			printf("%s: %s\n", kind ? kind : "?", what ? what : "?");
		}
		n++;
		free(kind);
		free(what);
	}
	if (r == 0 && cl.f.type == LB_MSG_CHECKED) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		uint64_t v[10] = { 0 };
		int done = 0;
		int64_t last = 0;
		for (int i = 0; i < 7; i++)
			v[i] = lb_rd_uv(&rd);
		if (rd.p < rd.end) {
			for (int i = 7; i < 10; i++)
				v[i] = lb_rd_uv(&rd);
			done = lb_rd_u8(&rd);
			last = lb_rd_sv(&rd);
		}
		if (co.json) {
			printf("],\"packs\":%llu,\"chunks\":%llu,\"snapshots\":%llu,\"files\":%llu,\"errors\":%llu,"
			       "\"bytes_read\":%llu,\"unreferenced_packs\":%llu",
			       (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2],
			       (unsigned long long)v[3], (unsigned long long)v[4], (unsigned long long)v[5],
			       (unsigned long long)v[6]);
			if (read_data)
				printf(",\"packs_read\":%llu,\"pass_position\":%llu,\"pass_total\":%llu,"
				       "\"pass_finished\":%s,\"last_full_pass\":%lld",
				       (unsigned long long)v[7], (unsigned long long)v[8], (unsigned long long)v[9],
				       done ? "true" : "false", (long long)(last / 1000000000LL));
			printf("}\n");
		} else {
			printf("%s: %llu packs, %llu chunks, %llu snapshots, %llu files checked; %llu problems\n",
			       v[4] ? "damaged" : "clean", (unsigned long long)v[0], (unsigned long long)v[1],
			       (unsigned long long)v[2], (unsigned long long)v[3], (unsigned long long)v[4]);
			if (read_data && max_s) {
				char when[32];
				fmt_time(last, when, sizeof(when));
				printf("read %llu packs; the pass %s at %llu of %llu packs; last full pass: %s\n",
				       (unsigned long long)v[7], done ? "finished" : "stands", (unsigned long long)v[8],
				       (unsigned long long)v[9], last ? when : "never");
			}
		}
		rc = v[4] ? EXIT_DAMAGED : EXIT_OK;
	} else if (r == 0) {
		if (co.json)
			printf("]}\n");
		rc = client_unexpected(&cl, "check");
	} else {
		rc = EXIT_FAILED;
	}
	client_close(&cl);
	return rc;
}

int cmd_version(int argc, char **argv)
{
	static const char help[] = "Usage: lumbung version\n\nPrints the versions of lumbung and of the lumbungd it reaches.\n";
	struct common co = { 0 };
	int rc = parse_common(argc, argv, &co, help);
	if (rc >= 0)
		return rc;
	printf("lumbung %s (protocol %d)\n", PACKAGE_VERSION, LB_PROTO_VERSION);
	struct client cl;
	rc = client_connect(&cl, &co);
	if (rc == 0) {
		printf("lumbungd %s; you are %s, acting for %zu tenant%s\n", cl.daemon_version,
		       cl.admin ? "an administrator" : "a tenant member", cl.ntenants, cl.ntenants == 1 ? "" : "s");
	}
	client_close(&cl);
	return rc;
}

int cmd_audit(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung audit [--tenant T] [--since YYYY-MM-DD] [--json]\n"
		"\n"
		"Shows the audit trail: every request made to lumbungd, with its time, the\n"
		"user (as the kernel identified them), tenant, verb, object (dataset,\n"
		"snapshot, paths restored), result and bytes moved.  Administrators see every\n"
		"tenant's records; tenant members see their own tenants'.  --since takes a\n"
		"day (from 00:00 local time).\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "since", required_argument, NULL, 's' },
					      { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	int64_t since = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 's') {
			struct tm tm = { 0 };
			char *end = strptime(optarg, "%Y-%m-%d", &tm);
			if (!end || *end) {
				fprintf(stderr, "lumbung audit: --since takes YYYY-MM-DD, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			tm.tm_isdst = -1;
			since = (int64_t)mktime(&tm) * 1000000000LL;
		} else if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "lumbung: try 'lumbung audit --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lumbung audit: unexpected argument '%s'\n", argv[optind]);
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
	lb_buf_put_str(&b, co.tenant ? co.tenant : "");
	lb_buf_put_sv(&b, since);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_AUDIT, &b);
	lb_buf_free(&b);
	int n = 0;
	if (co.json)
		printf("[");
	else
		printf("%-19s  %-12s  %-12s  %-9s  %-7s  %10s  %s\n", "TIME", "USER", "TENANT", "VERB", "RESULT",
		       "BYTES", "OBJECT");
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_AUDIT_REC) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		int64_t t = lb_rd_sv(&rd);
		uint64_t uid = lb_rd_uv(&rd);
		char *user = lb_rd_strdup(&rd, 255), *tenant = lb_rd_strdup(&rd, 255), *verb = lb_rd_strdup(&rd, 64);
		char *object = lb_rd_strdup(&rd, 65536);
		uint64_t result = lb_rd_uv(&rd);
		char *detail = lb_rd_strdup(&rd, 65536);
		uint64_t bytes = lb_rd_uv(&rd);
		if (lb_rd_done(&rd) && user && tenant && verb && object && detail) {
			char when[32];
			fmt_time(t, when, sizeof(when));
			if (co.json) {
				printf("%s{\"time\":%lld,\"uid\":%llu,\"user\":", n ? "," : "", (long long)(t / 1000000000LL),
				       (unsigned long long)uid);
				json_str(stdout, user);
				printf(",\"tenant\":");
				json_str(stdout, tenant);
				printf(",\"verb\":");
				json_str(stdout, verb);
				printf(",\"object\":");
				json_str(stdout, object);
				printf(",\"result\":");
				json_str(stdout, result ? strerror((int)result) : "ok");
				printf(",\"detail\":");
				json_str(stdout, detail);
				printf(",\"bytes\":%llu}", (unsigned long long)bytes);
			} else {
				printf("%-19s  %-12.12s  %-12.12s  %-9s  %-7.7s  %10llu  ", when, user,
				       *tenant ? tenant : "-", verb, result ? strerror((int)result) : "ok",
				       (unsigned long long)bytes);
				put_name(stdout, object);
				if (*detail) {
					fputs(" -- ", stdout);
					put_name(stdout, detail);
				}
				putchar('\n');
			}
			n++;
		} else {
			r = -EPROTO;
		}
		free(user);
		free(tenant);
		free(verb);
		free(object);
		free(detail);
	}
	if (co.json)
		printf("]\n");
	if (r == 0 && cl.f.type != LB_MSG_END)
		rc = client_unexpected(&cl, "audit");
	else if (r < 0)
		rc = EXIT_FAILED;
	client_close(&cl);
	return rc;
}

int cmd_quota(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung quota [--tenant T] [--json]\n"
		"\n"
		"Shows each of your tenants' quota, soft quota, charged usage and the share\n"
		"used.  A tenant is charged the stored bytes of every distinct chunk its\n"
		"snapshots reference (and their manifests): what it would use alone, whatever\n"
		"other tenants store.  Administrators also see each tenant's exclusive bytes\n"
		"(freed if it were deleted) and the store's physical use against its capacity.\n";
	struct common co = { 0 };
	int rc = parse_common(argc, argv, &co, help);
	if (rc >= 0)
		return rc;
	if (optind != argc) {
		fprintf(stderr, "lumbung quota: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	struct client cl;
	rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, co.tenant ? co.tenant : "");
	int r = lb_frame_send_buf(cl.fd, LB_MSG_QUOTA, &b);
	lb_buf_free(&b);
	int n = 0;
	if (co.json)
		printf("{\"tenants\":[");
	else
		printf("%-16s  %10s  %10s  %10s  %6s%s\n", "TENANT", "QUOTA", "SOFT", "CHARGED", "USED",
		       cl.admin ? "   EXCLUSIVE" : "");
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_QUOTA_ROW) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		char *t = lb_rd_strdup(&rd, LB_NAME_MAX), *name = lb_rd_strdup(&rd, 1024);
		uint64_t v[6];
		for (int i = 0; i < 6; i++)
			v[i] = lb_rd_uv(&rd);
		if (!lb_rd_done(&rd) || !t || !name) {
			free(t);
			free(name);
			r = -EPROTO;
			break;
		}
		double pct = v[0] ? 100.0 * (double)v[2] / (double)v[0] : 0;
		if (co.json) {
			printf("%s{\"tenant\":", n ? "," : "");
			json_str(stdout, t);
			printf(",\"name\":");
			json_str(stdout, name);
			printf(",\"quota\":%llu,\"soft_quota\":%llu,\"charged\":%llu,\"percent\":%.2f,"
			       "\"snapshots\":%llu,\"logical\":%llu",
			       (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2], pct,
			       (unsigned long long)v[3], (unsigned long long)v[4]);
			if (cl.admin)
				printf(",\"exclusive\":%llu", (unsigned long long)v[5]);
			printf("}");
		} else {
			char q[32], sq[32], ch[32], ex[32];
			printf("%-16s  %10s  %10s  %10s  %5.1f%%", t, v[0] ? lb_format_size(q, sizeof(q), v[0]) : "none",
			       v[1] ? lb_format_size(sq, sizeof(sq), v[1]) : "-", lb_format_size(ch, sizeof(ch), v[2]), pct);
			if (cl.admin)
				printf("  %10s", lb_format_size(ex, sizeof(ex), v[5]));
			printf("\n");
		}
		n++;
		free(t);
		free(name);
	}
	if (co.json)
		printf("]");
	if (r == 0 && cl.f.type == LB_MSG_QUOTA_STORE) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		uint64_t phys = lb_rd_uv(&rd), cap = lb_rd_uv(&rd), sum = lb_rd_uv(&rd);
		if (co.json) {
			printf(",\"store\":{\"physical\":%llu,\"capacity\":%llu,\"quota_sum\":%llu}",
			       (unsigned long long)phys, (unsigned long long)cap, (unsigned long long)sum);
		} else {
			char a[32], c2[32], s2[32];
			printf("\nstore: %s used of %s capacity; quotas add up to %s%s\n", lb_format_size(a, sizeof(a), phys),
			       cap ? lb_format_size(c2, sizeof(c2), cap) : "unlimited", lb_format_size(s2, sizeof(s2), sum),
			       cap && sum > cap ? " (overcommitted)" : "");
		}
		r = client_read(&cl);
	}
	if (co.json)
		printf("}\n");
	if (r == 0 && cl.f.type != LB_MSG_END)
		rc = client_unexpected(&cl, "quota");
	else if (r < 0)
		rc = EXIT_FAILED;
	client_close(&cl);
	return rc;
}

/* A request about one named snapshot that is answered by OK: forget,
 * protect, unprotect.  flag, when >= 0, is sent as a u8 after the name. */
static int one_snapshot_verb(int argc, char **argv, const char *verb, const char *help, int type, int flag,
			     const char *done)
{
	struct common co = { 0 };
	int rc = parse_common(argc, argv, &co, help);
	if (rc >= 0)
		return rc;
	if (argc - optind != 1) {
		fprintf(stderr, "lumbung %s: give one SNAPSHOT; try 'lumbung %s --help'\n", verb, verb);
		return EXIT_USAGE;
	}
	struct client cl;
	rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, co.tenant ? co.tenant : "");
	lb_buf_put_str(&b, argv[optind]);
	if (flag >= 0)
		lb_buf_put_u8(&b, (uint8_t)flag);
	int r = lb_frame_send_buf(cl.fd, type, &b);
	lb_buf_free(&b);
	if (r == 0 && (r = client_read(&cl)) == 0) {
		if (cl.f.type == LB_MSG_OK)
			fprintf(stderr, "%s %s\n", done, argv[optind]);
		else
			rc = client_unexpected(&cl, verb);
	} else {
		rc = EXIT_FAILED;
	}
	client_close(&cl);
	return rc;
}

int cmd_forget(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung forget SNAPSHOT\n"
		"\n"
		"Deletes one snapshot (administrators only: for tenants the store is\n"
		"append-only).  The tenant's charged usage drops at once by exactly what only\n"
		"that snapshot referenced; the space returns when garbage is collected.  A\n"
		"protected snapshot (lumbung protect) is refused.\n";
	return one_snapshot_verb(argc, argv, "forget", help, LB_MSG_FORGET, -1, "forgot");
}

int cmd_prune(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung prune [--tenant T] [--dataset [TENANT/]NAME] [--dry-run] [--json]\n"
		"\n"
		"Applies the retention policy in lumbung.conf (keep_last, keep_hourly,\n"
		"keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within: the\n"
		"dataset's own, else its tenant's, else the store's) to your datasets, and\n"
		"lists every snapshot with 'keep' and the rules that keep it, or 'remove'.\n"
		"A dataset with no policy keeps everything.  Tenant members may prune their\n"
		"own datasets but never below the store's minimum (min_keep_* in [store]),\n"
		"and cannot change the policy.  Removal updates the tenant's charged usage\n"
		"at once; the space returns when garbage is collected.\n"
		"\n"
		"  --dry-run   only show what would be removed\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "dataset", required_argument, NULL, 'd' },
					      { "dry-run", no_argument, NULL, 'n' }, { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	const char *dataset = NULL;
	int dry = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:nh", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 'd') {
			dataset = optarg;
		} else if (c == 'n') {
			dry = 1;
		} else if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "lumbung: try 'lumbung prune --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lumbung prune: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	char tenant[LB_NAME_MAX + 1] = "", name[LB_NAME_MAX + 1] = "";
	if (dataset && split_dataset(dataset, co.tenant, tenant, name) < 0) {
		fprintf(stderr, "lumbung prune: '%s' is not a dataset name\n", dataset);
		return EXIT_USAGE;
	}
	if (!dataset && co.tenant)
		snprintf(tenant, sizeof(tenant), "%s", co.tenant);
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, tenant);
	lb_buf_put_str(&b, name);
	lb_buf_put_u8(&b, (uint8_t)dry);
	int r = lb_frame_send_buf(cl.fd, LB_MSG_PRUNE, &b);
	lb_buf_free(&b);
	if (co.json)
		printf("[");
	else
		printf("%-28s  %-12s  %-19s  %-6s  %s\n", "DATASET", "ID", "TIME", "ACTION", "KEPT BY");
	unsigned long long n = 0, nremove = 0;
	while (r == 0 && (r = client_read(&cl)) == 0 && cl.f.type == LB_MSG_PRUNE_ROW) {
		struct lb_rd rd;
		lb_frame_reader(&cl.f, &rd);
		char *t = lb_rd_strdup(&rd, LB_NAME_MAX), *ds = lb_rd_strdup(&rd, LB_NAME_MAX);
		char *id = lb_rd_strdup(&rd, LB_SNAP_HEX);
		int64_t when = lb_rd_sv(&rd);
		uint64_t keep = lb_rd_uv(&rd);
		int gone = lb_rd_u8(&rd);
		if (!lb_rd_done(&rd) || !t || !ds || !id) {
			free(t);
			free(ds);
			free(id);
			r = -EPROTO;
			break;
		}
		char why[128], tm[32], full[160];
		lb_retention_reason((int)keep, why, sizeof(why));
		fmt_time(when, tm, sizeof(tm));
		if (co.json) {
			printf("%s{\"tenant\":", n ? "," : "");
			json_str(stdout, t);
			printf(",\"dataset\":");
			json_str(stdout, ds);
			printf(",\"id\":\"%s\",\"time\":%lld,\"keep\":%s,\"removed\":%s,\"reasons\":[", id,
			       (long long)(when / 1000000000LL), keep ? "true" : "false", gone ? "true" : "false");
			for (char *p = why, *q; *p; p = q) {
				q = p + strcspn(p, ",");
				printf("%s\"%.*s\"", p == why ? "" : ",", (int)(q - p), p);
				if (*q)
					q++;
			}
			printf("]}");
		} else {
			snprintf(full, sizeof(full), "%s/%s", t, ds);
			printf("%-28s  %-12.12s  %-19s  %-6s  %s\n", full, id, tm, keep ? "keep" : "remove", why);
		}
		n++;
		nremove += !keep;
		free(t);
		free(ds);
		free(id);
	}
	if (co.json)
		printf("]\n");
	if (r == 0 && cl.f.type != LB_MSG_END) {
		rc = client_unexpected(&cl, "prune");
	} else if (r < 0) {
		rc = EXIT_FAILED;
	} else if (!co.json) {
		fprintf(stderr, "%llu snapshot%s, %llu %s\n", n, n == 1 ? "" : "s", nremove,
			dry ? "would be removed (dry run)" : "removed");
	}
	client_close(&cl);
	return rc;
}

int cmd_protect(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung protect SNAPSHOT\n"
		"\n"
		"Puts a legal hold on one snapshot (administrators only): neither prune nor\n"
		"forget removes it until 'lumbung unprotect' lifts the hold.  Use it for a\n"
		"snapshot an audit or an investigation needs kept.\n";
	return one_snapshot_verb(argc, argv, "protect", help, LB_MSG_PROTECT, 1, "protected");
}

int cmd_unprotect(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung unprotect SNAPSHOT\n"
		"\n"
		"Lifts the legal hold 'lumbung protect' put on a snapshot (administrators\n"
		"only); the retention policy applies to it again at the next prune.\n";
	return one_snapshot_verb(argc, argv, "unprotect", help, LB_MSG_PROTECT, 0, "unprotected");
}

int cmd_gc(int argc, char **argv)
{
	static const char help[] =
		"Usage: lumbung gc [--dry-run] [--json]\n"
		"\n"
		"Collects garbage (administrators only): finds the chunks no snapshot\n"
		"references any more (after prune or forget) and gives their space back.\n"
		"Packs with nothing live are deleted; packs whose live part is under\n"
		"gc_repack_below percent ([store] in lumbung.conf, 50 by default) are\n"
		"rewritten with only their live chunks.  Backups keep running meanwhile:\n"
		"a backup never waits for gc, and gc waits for backups that were already\n"
		"running when it started.  A kill at any moment loses nothing; the next\n"
		"run finishes the job.  Every run leaves a job record that 'lumbung report'\n"
		"shows as the last GC.\n"
		"\n"
		"  --dry-run   only count what would be freed\n"
		"\n"
		"Exit status: 0 done, 1 failed (nothing was deleted when a snapshot's\n"
		"references could not be read: run 'lumbung check'), 6 not an administrator.\n";
	static const struct option opts[] = { COMMON_OPTIONS, { "dry-run", no_argument, NULL, 'n' },
					      { NULL, 0, NULL, 0 } };
	struct common co = { 0 };
	int dry = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
		if (common_option(&co, c, optarg))
			continue;
		if (c == 'n') {
			dry = 1;
		} else if (c == 'h') {
			fputs(help, stdout);
			return EXIT_OK;
		} else {
			fprintf(stderr, "lumbung: try 'lumbung gc --help'\n");
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lumbung gc: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	struct client cl;
	int rc = client_connect(&cl, &co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	uint8_t d = (uint8_t)dry;
	int r = lb_frame_send(cl.fd, LB_MSG_GC, &d, 1);
	if (r == 0)
		r = client_read(&cl);
	if (r < 0) {
		client_close(&cl);
		return EXIT_FAILED;
	}
	if (cl.f.type != LB_MSG_GC_DONE) {
		rc = client_unexpected(&cl, "gc");
		client_close(&cl);
		return rc;
	}
	struct lb_rd rd;
	lb_frame_reader(&cl.f, &rd);
	uint64_t v[18];
	for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++)
		v[i] = lb_rd_uv(&rd);
	char *problem = lb_rd_strdup(&rd, 4096);
	if (!lb_rd_done(&rd) || !problem) {
		free(problem);
		client_close(&cl);
		fprintf(stderr, "lumbung: malformed answer from lumbungd\n");
		return EXIT_FAILED;
	}
	static const char *const keys[] = { "snapshots", "tree_blobs", "chunks_live", "chunks_dead", "packs",
					    "packs_deleted", "packs_repacked", "packs_written", "packs_damaged",
					    "packs_missing", "leftover_packs", "bytes_freed", "bytes_written",
					    "bytes_dead_left", "backups_waited_for", "wait_ms", "mark_ms", "sweep_ms" };
	if (co.json) {
		printf("{\"dry_run\":%s", dry ? "true" : "false");
		for (size_t i = 0; i < LB_ARRAY_SIZE(v); i++)
			printf(",\"%s\":%llu", keys[i], (unsigned long long)v[i]);
		printf(",\"problem\":");
		if (*problem)
			json_str(stdout, problem);
		else
			printf("null");
		printf("}\n");
	} else {
		char a[32], b[32], e[32];
		printf("%s%s freed: %llu packs deleted, %llu repacked into %llu (%s written), %llu leftover packs\n",
		       dry ? "would be " : "", lb_format_size(a, sizeof(a), v[11]), (unsigned long long)v[5],
		       (unsigned long long)v[6], (unsigned long long)v[7], lb_format_size(b, sizeof(b), v[12]),
		       (unsigned long long)v[10]);
		printf("%llu snapshots marked, %llu of %llu chunks garbage; %s of garbage left in packs kept as they are\n",
		       (unsigned long long)v[0], (unsigned long long)v[3], (unsigned long long)(v[2] + v[3]),
		       lb_format_size(e, sizeof(e), v[13]));
		printf("took %.1f s marking, %.1f s sweeping", v[16] / 1000.0, v[17] / 1000.0);
		if (v[14])
			printf(", after %.1f s waiting for %llu backups that were running", v[15] / 1000.0,
			       (unsigned long long)v[14]);
		printf("\n");
		if (*problem)
			fprintf(stderr, "lumbung gc: %s\n", problem);
		if (v[9])
			fprintf(stderr, "lumbung gc: %llu indexed packs are missing from the store: run 'lumbung check'\n",
				(unsigned long long)v[9]);
	}
	free(problem);
	client_close(&cl);
	return EXIT_OK;
}
