/* serve.c - `lumbung serve`: the forced command of an OPD server's SSH key.
 *
 * An OPD server with no Lumbung of its own reaches the appliance over SSH as
 * that OPD's Unix user.  sshd runs `lumbung serve`, whatever the client
 * asked for; serve reads the request from SSH_ORIGINAL_COMMAND, splits it
 * into words (quotes and backslashes, no expansion, no shell), and runs it
 * only if it is a lumbung command that moves data over the SSH channel:
 * backups from stdin (--archive - or --stdin-name) and reads to stdout
 * (snapshots, ls, cat, diff, restore --tar -, quota, audit, version).  The
 * tenant is fixed by the SSH account, since lumbungd identifies the local
 * Unix user of this process from the socket. */
#include "client.h"
#include "util.h"

#include <stdio.h>

#define MAX_WORDS 64

/* Splits s into words like a shell would for plain words and quotes.
 * Returns the count, or -1 on an unterminated quote or too many words. */
static int split_words(const char *s, char *buf, size_t buflen, char **argv, int max)
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

static int has(int argc, char **argv, const char *opt)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], opt) || !strncmp(argv[i], opt, strlen(opt)) )
			return 1;
	return 0;
}

static int refuse(const char *why)
{
	fprintf(stderr, "lumbung serve: %s\n", why);
	return EXIT_USAGE;
}

int cmd_serve(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: lumbung serve   (as the forced command of an SSH key)\n"
		       "\n"
		       "Runs the lumbung command the SSH client asked for (SSH_ORIGINAL_COMMAND)\n"
		       "if it moves data over the connection: backup --archive - or --stdin-name,\n"
		       "snapshots, ls, cat, diff, restore --tar -, quota, audit, version.  The tenant\n"
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
	/* The socket and configuration are this appliance's, not the client's. */
	if (has(n, av, "--socket") || has(n, av, "--config"))
		return refuse("--socket and --config are not allowed over SSH");
	static const struct {
		const char *verb;
		int (*fn)(int, char **);
	} allowed[] = {
		{ "backup", cmd_backup }, { "snapshots", cmd_snapshots }, { "ls", cmd_ls },
		{ "cat", cmd_cat }, { "diff", cmd_diff }, { "restore", cmd_restore },
		{ "quota", cmd_quota }, { "audit", cmd_audit }, { "version", cmd_version },
		{ "report", cmd_report },
	};
	for (size_t i = 0; i < LB_ARRAY_SIZE(allowed); i++) {
		if (strcmp(av[0], allowed[i].verb))
			continue;
		if (!strcmp(av[0], "backup")) {
			/* Only data that comes over the channel: never a walk of the
			 * appliance's own filesystem. */
			int ok = 0;
			for (int k = 1; k < n; k++) {
				if (!strcmp(av[k], "--stdin-name") || !strncmp(av[k], "--stdin-name=", 13) || !strcmp(av[k], "-s"))
					ok = 1;
				if ((!strcmp(av[k], "--archive") || !strcmp(av[k], "-a")) && k + 1 < n && !strcmp(av[k + 1], "-"))
					ok = 1;
				if (!strcmp(av[k], "--archive=-"))
					ok = 1;
			}
			if (!ok)
				return refuse("over SSH, backup reads only stdin: use --archive - or --stdin-name NAME");
		}
		if (!strcmp(av[0], "restore")) {
			int ok = 0;
			for (int k = 1; k < n; k++) {
				if ((!strcmp(av[k], "--tar") && k + 1 < n && !strcmp(av[k + 1], "-")) || !strcmp(av[k], "--tar=-"))
					ok = 1;
				if (!strcmp(av[k], "--target") || !strncmp(av[k], "--target=", 9) || !strcmp(av[k], "-T") ||
				    !strcmp(av[k], "--zip") || !strncmp(av[k], "--zip=", 6))
					return refuse("over SSH, restore writes only to stdout: use --tar -");
			}
			if (!ok && !has(n, av, "--help"))
				return refuse("over SSH, restore writes only to stdout: use --tar -");
		}
		return allowed[i].fn(n, av);
	}
	return refuse("this command is not available over SSH");
}
