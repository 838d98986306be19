/* serve.c - `lumbung serve`: the forced command of an OPD server's SSH key.
 *
 * An OPD server with no Lumbung of its own reaches the appliance over SSH as
 * that OPD's Unix user.  sshd runs `lumbung serve`, whatever the client
 * asked for; serve reads the request from SSH_ORIGINAL_COMMAND, splits it
 * into words (quotes and backslashes, no expansion, no shell), and runs it
 * only if it is a lumbung command that moves data over the SSH channel:
 * backups from stdin (--archive - or --stdin-name) and reads to stdout
 * (snapshots, ls, cat, diff, restore --tar -, quota, audit, report,
 * version), with every option checked against a list per verb.  The tenant
 * is fixed by the SSH account, since lumbungd identifies the local Unix
 * user of this process from the socket. */
#include "client.h"
#include "util.h"

#include <stdio.h>

#define MAX_WORDS 64

/* See client.h. */
int split_words(const char *s, char *buf, size_t buflen, char **argv, int max)
{
	int n = 0;
	char *w = buf, *end = buf + buflen - 1;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		if (n >= max)
			return -1;
		argv[n++] = w;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n') {
			if (w >= end)
				return -1;
			if (*s == '\'') {
				for (s++; *s && *s != '\''; s++) {
					if (w >= end)
						return -1;
					*w++ = *s;
				}
				if (*s != '\'')
					return -1;
				s++;
			} else if (*s == '"') {
				for (s++; *s && *s != '"'; s++) {
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					if (w >= end)
						return -1;
					*w++ = *s;
				}
				if (*s != '"')
					return -1;
				s++;
			} else {
				if (*s == '\\' && s[1])
					s++;
				*w++ = *s++;
			}
		}
		*w++ = '\0';
	}
	argv[n] = NULL;
	return n;
}

/* What one verb may take over SSH: exact option names (no abbreviations,
 * no bundling), whether each takes a value, and a value it must have. */
struct opt_rule {
	const char *name;
	int takes_value;
	const char *only_value; /* NULL: any value */
};

struct verb_rule {
	const char *verb;
	int (*fn)(int, char **);
	int positional_max; /* -1: any number */
	const struct opt_rule *opts;
	const char *required; /* an option that must appear, or NULL */
};

static const struct opt_rule common_opts[] = {
	{ "--tenant", 1, NULL }, { "--json", 0, NULL }, { "--help", 0, NULL }, { "-h", 0, NULL }, { NULL, 0, NULL },
};
static const struct opt_rule backup_opts[] = {
	{ "--dataset", 1, NULL }, { "-d", 1, NULL }, { "--archive", 1, "-" }, { "-a", 1, "-" },
	{ "--stdin-name", 1, NULL }, { "-s", 1, NULL }, { "--tag", 1, NULL }, { "-t", 1, NULL },
	{ "--host", 1, NULL }, { NULL, 0, NULL },
};
static const struct opt_rule restore_opts[] = { { "--tar", 1, "-" }, { NULL, 0, NULL } };
static const struct opt_rule snapshots_opts[] = { { "--dataset", 1, NULL }, { "-d", 1, NULL }, { NULL, 0, NULL } };
static const struct opt_rule audit_opts[] = { { "--since", 1, NULL }, { "-s", 1, NULL }, { NULL, 0, NULL } };
static const struct opt_rule report_opts[] = {
	{ "--format", 1, NULL }, { "--period", 1, NULL }, { "--lang", 1, NULL }, { NULL, 0, NULL },
};
static const struct opt_rule no_opts[] = { { NULL, 0, NULL } };

static const struct verb_rule verbs[] = {
	{ "backup", cmd_backup, 0, backup_opts, NULL },
	{ "restore", cmd_restore, -1, restore_opts, "--tar" },
	{ "snapshots", cmd_snapshots, 0, snapshots_opts, NULL },
	{ "ls", cmd_ls, 2, no_opts, NULL },
	{ "cat", cmd_cat, 2, no_opts, NULL },
	{ "diff", cmd_diff, 2, no_opts, NULL },
	{ "quota", cmd_quota, 0, no_opts, NULL },
	{ "audit", cmd_audit, 0, audit_opts, NULL },
	{ "report", cmd_report, 0, report_opts, NULL },
	{ "version", cmd_version, 0, no_opts, NULL },
};

static const struct opt_rule *find_opt(const struct opt_rule *list, const char *name, size_t n)
{
	for (; list->name; list++)
		if (strlen(list->name) == n && !strncmp(list->name, name, n))
			return list;
	return NULL;
}

static int refuse(const char *why)
{
	fprintf(stderr, "lumbung serve: %s\n", why);
	return EXIT_USAGE;
}

/* Checks every word of the request against the verb's rules: each option
 * spelled out in full and allowed, each at most once, values as required;
 * backups read only stdin and restores write only stdout. */
static int allowed_args(const struct verb_rule *v, int n, char **av)
{
	char seen[16][32];
	int nseen = 0, positional = 0, have_required = v->required == NULL;
	for (int k = 1; k < n; k++) {
		const char *a = av[k];
		if (a[0] != '-' || !a[1]) {
			positional++;
			continue;
		}
		const char *eq = strchr(a, '=');
		size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const struct opt_rule *o = find_opt(v->opts, a, len);
		if (!o)
			o = find_opt(common_opts, a, len);
		if (!o) {
			fprintf(stderr, "lumbung serve: option '%.*s' is not available over SSH\n", (int)len, a);
			return 0;
		}
		for (int i = 0; i < nseen; i++) {
			if (!strcmp(seen[i], o->name)) {
				fprintf(stderr, "lumbung serve: option '%s' given twice\n", o->name);
				return 0;
			}
		}
		if (nseen < 16)
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", o->name);
		if (v->required && (!strcmp(o->name, v->required)))
			have_required = 1;
		const char *val = NULL;
		if (o->takes_value) {
			if (eq)
				val = eq + 1;
			else if (k + 1 < n)
				val = av[++k];
			else
				return 0;
		} else if (eq) {
			return 0;
		}
		if (o->only_value && strcmp(val, o->only_value)) {
			fprintf(stderr, "lumbung serve: over SSH, %s takes only '%s'\n", o->name, o->only_value);
			return 0;
		}
	}
	if (!have_required) {
		fprintf(stderr, "lumbung serve: over SSH, %s writes only to stdout: use %s -\n", v->verb, v->required);
		return 0;
	}
	if (v->positional_max >= 0 && positional > v->positional_max) {
		if (!strcmp(v->verb, "backup"))
			fprintf(stderr, "lumbung serve: over SSH, backup reads only stdin: use --archive - or --stdin-name NAME\n");
		else
			fprintf(stderr, "lumbung serve: too many arguments for %s\n", v->verb);
		return 0;
	}
	if (!strcmp(v->verb, "backup")) {
		int in = 0;
		for (int i = 0; i < nseen; i++)
			in |= !strcmp(seen[i], "--archive") || !strcmp(seen[i], "-a") || !strcmp(seen[i], "--stdin-name") ||
			      !strcmp(seen[i], "-s");
		if (!in) {
			fprintf(stderr, "lumbung serve: over SSH, backup reads only stdin: use --archive - or --stdin-name NAME\n");
			return 0;
		}
	}
	return 1;
}

int cmd_serve(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: lumbung serve   (as the forced command of an SSH key)\n"
		       "\n"
		       "Runs the lumbung command the SSH client asked for (SSH_ORIGINAL_COMMAND)\n"
		       "if it moves data over the connection: backup --archive - or --stdin-name,\n"
		       "snapshots, ls, cat, diff, restore --tar -, quota, audit, report (to stdout),\n"
		       "version; every option spelled out in full and given once.  The tenant\n"
		       "is the SSH account's: in ~OPD/.ssh/authorized_keys put\n"
		       "  command=\"lumbung serve\",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding KEY\n"
		       "and on the OPD server run for example\n"
		       "  tar -cf - /srv/app | ssh opd-dinkes@appliance lumbung backup --dataset dinkes/simpus --archive -\n"
		       "  ssh opd-dinkes@appliance lumbung restore dinkes/simpus@latest --tar - | tar -xf -\n");
		return EXIT_OK;
	}
	const char *req = getenv("SSH_ORIGINAL_COMMAND");
	if (!req || !*req)
		return refuse("no command: give one after the host, e.g. 'ssh HOST lumbung snapshots'");
	static char buf[8192];
	char *words[MAX_WORDS + 1];
	int n = split_words(req, buf, sizeof(buf), words, MAX_WORDS);
	if (n <= 0)
		return refuse("cannot parse the command (unbalanced quotes or too long)");
	char **av = words;
	if (!strcmp(av[0], "lumbung") || !strcmp(av[0], "/usr/bin/lumbung")) {
		av++;
		n--;
	}
	if (n < 1)
		return refuse("no verb given");
	for (size_t i = 0; i < LB_ARRAY_SIZE(verbs); i++) {
		if (strcmp(av[0], verbs[i].verb))
			continue;
		/* The socket and configuration are this appliance's, and options
		 * are checked word by word, so no abbreviation, repetition or
		 * unexpected option can point a command at the appliance's files. */
		if (!allowed_args(&verbs[i], n, av))
			return EXIT_USAGE;
		return verbs[i].fn(n, av);
	}
	return refuse("this command is not available over SSH");
}
