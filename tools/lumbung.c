/* lumbung - the Lumbung tools: back up, list, browse, compare, restore and
 * verify, through lumbungd.  One verb per file; this file dispatches. */
#include "client.h"

#include <stdio.h>
#include <string.h>

static const struct verb {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} verbs[] = {
	{ "backup", cmd_backup, "take a snapshot of paths, an archive or stdin" },
	{ "snapshots", cmd_snapshots, "list snapshots" },
	{ "ls", cmd_ls, "list the entries of a snapshot" },
	{ "cat", cmd_cat, "write one file of a snapshot to stdout" },
	{ "diff", cmd_diff, "show what changed between two snapshots" },
	{ "restore", cmd_restore, "restore a snapshot (or part) to a directory, tar or zip" },
	{ "check", cmd_check, "verify the store (administrators)" },
	{ "quota", cmd_quota, "quota and charged usage per tenant" },
	{ "report", cmd_report, "quota and backup report (table, csv, json)" },
	{ "forget", cmd_forget, "delete one snapshot (administrators)" },
	{ "prune", cmd_prune, "remove snapshots the retention policy does not keep" },
	{ "gc", cmd_gc, "give back the space of chunks no snapshot references" },
	{ "protect", cmd_protect, "put a legal hold on a snapshot (administrators)" },
	{ "unprotect", cmd_unprotect, "lift a legal hold (administrators)" },
	{ "repair", cmd_repair, "rebuild a damaged index (offline, root)" },
	{ "audit", cmd_audit, "who did what, when: the audit trail" },
	{ "version", cmd_version, "print the versions of lumbung and lumbungd" },
	{ "serve", cmd_serve, "the forced command of an OPD server's SSH key" },
	{ "run", cmd_run, "back up a dataset as lumbung.conf says (what the timers run)" },
	{ "jobs", cmd_jobs, "backups running, queued, and how each dataset's last one went" },
	{ "schedule", cmd_schedule, "what is scheduled, when it runs next, when it last ran" },
	{ "agent", cmd_agent, "the OPD server's end of backup --remote (over SSH)" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: lumbung VERB [options] [args]\n\nVerbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].what);
	fprintf(f,
		"\nEvery verb takes --help, --socket PATH (or $LUMBUNG_SOCKET), --config FILE,\n"
		"--tenant T and, where it prints a table, --json.  Datasets are named\n"
		"TENANT/NAME; snapshots by a unique id prefix, TENANT/NAME@latest or\n"
		"TENANT/NAME@YYYY-MM-DD.\n"
		"\nExamples:\n"
		"  lumbung backup --dataset dinkes/simpus /srv/opd/dinkes/simpus\n"
		"  pg_dump simpus | lumbung backup --dataset dinkes/simpus-db --stdin-name simpus.sql\n"
		"  lumbung snapshots --dataset dinkes/simpus\n"
		"  lumbung restore dinkes/simpus@latest data/pasien.csv --target /tmp/pulih\n"
		"\nExit status: 0 ok, 1 failed, 2 usage, 3 check found damage, 4 not found,\n"
		"5 lumbungd unreachable or incompatible.  See lumbung(1).\n");
}

int main(int argc, char **argv)
{
	setup_language();
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("lumbung %s\n", PACKAGE_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "lumbung: unknown verb '%s'; try 'lumbung --help'\n", argv[1]);
	return EXIT_USAGE;
}
