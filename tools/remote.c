/* remote.c - `lumbung backup --remote ssh://USER@HOST/PATH`: a pull over SSH.
 *
 * The appliance starts the backup with lumbungd as usual, then runs
 * `lumbung agent` on the OPD server over ssh and relays frames between
 * the two: the agent walks PATH there and sends what changed (deltas for
 * large files that changed a little), lumbungd answers its requests for
 * the parent's listing and for signatures.  Everything on the SSH channel
 * goes through a link pump (link.h): one zstd stream each way, capped by
 * --limit-rate on the agent's side, counted on ours.
 *
 * The relay is the only thing that talks to lumbungd, as this process's
 * user; the agent can only send the frames a backup is made of, so a
 * compromised OPD server can write to its own dataset and nothing else. */
#include "client.h"
#include "link.h"
#include "util.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct url {
	char user[256], host[256], port[16];
	char path[4096];
};

/* ssh://[USER@]HOST[:PORT]/PATH, HOST may be [v6]. */
static int parse_url(const char *s, struct url *u)
{
	memset(u, 0, sizeof(*u));
	if (strncmp(s, "ssh://", 6))
		return -EINVAL;
	s += 6;
	const char *slash = strchr(s, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	snprintf(u->path, sizeof(u->path), "%s", slash);
	char auth[600];
	if ((size_t)(slash - s) >= sizeof(auth))
		return -EINVAL;
	memcpy(auth, s, (size_t)(slash - s));
	auth[slash - s] = '\0';
	char *hp = strrchr(auth, '@');
	if (hp) {
		*hp++ = '\0';
		if (!*auth || strlen(auth) >= sizeof(u->user))
			return -EINVAL;
		strcpy(u->user, auth);
	} else {
		hp = auth;
	}
	char *port = NULL;
	if (*hp == '[') {
		char *end = strchr(hp, ']');
		if (!end)
			return -EINVAL;
		*end = '\0';
		hp++;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -EINVAL;
	} else if ((port = strchr(hp, ':'))) {
		*port++ = '\0';
	}
	if (!*hp || strlen(hp) >= sizeof(u->host) || *hp == '-')
		return -EINVAL;
	strcpy(u->host, hp);
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (!*port || *end || p < 1 || p > 65535)
			return -EINVAL;
		snprintf(u->port, sizeof(u->port), "%ld", p);
	}
	return 0;
}

/* Starts ssh running the agent; its stdin and stdout are the link. */
static pid_t spawn_ssh(const struct url *u, const struct backup_opts *o, int *rfd, int *wfd)
{
	static char buf[4096];
	char *argv[80];
	int n = split_words(o->ssh_command ? o->ssh_command : "ssh -o BatchMode=yes", buf, sizeof(buf), argv, 64);
	if (n <= 0) {
		fprintf(stderr, "lumbung: --ssh-command '%s' is not a command\n", o->ssh_command);
		return -1;
	}
	char target[600], cmd[4200];
	if (u->port[0]) {
		argv[n++] = (char *)"-p";
		argv[n++] = (char *)u->port;
	}
	snprintf(target, sizeof(target), "%s%s%s", u->user, u->user[0] ? "@" : "", u->host);
	/* The remote command is one word for the remote shell: no quoting
	 * games, the path travels inside the stream, not here. */
	snprintf(cmd, sizeof(cmd), "%s agent", o->remote_lumbung ? o->remote_lumbung : "lumbung");
	argv[n++] = (char *)"--";
	argv[n++] = target;
	argv[n++] = cmd;
	argv[n] = NULL;
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "lumbung: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		return -1;
	}
	*wfd = in[1];
	*rfd = out[0];
	return pid;
}

struct relay {
	int daemon_fd, agent_fd;
	struct lb_link *link;
	pthread_t down;
	/* What lumbungd said last (COMMITTED or ERROR), for the summary. */
	struct lb_frame last;
	int have_last;
};

/* lumbungd -> agent. */
static void *down_main(void *arg)
{
	struct relay *rl = arg;
	struct lb_frame f;
	struct lb_buf fwd;
	lb_frame_init(&f);
	lb_buf_init(&fwd);
	/* Frames that arrive together (the parent's listing) are passed on
	 * together; this thread alone reads lumbungd's socket. */
	(void)lb_frame_readahead(&f, LB_FRAME_BATCH);
	while (lb_frame_read(rl->daemon_fd, &f) > 0) {
		if (f.type == LB_MSG_COMMITTED || f.type == LB_MSG_ERROR) {
			lb_frame_free(&rl->last);
			lb_frame_init(&rl->last);
			rl->last.type = f.type;
			rl->last.payload = malloc(f.len ? f.len : 1);
			if (rl->last.payload) {
				memcpy(rl->last.payload, f.payload, f.len);
				rl->last.len = f.len;
				rl->have_last = 1;
			}
		}
		if (lb_frame_forward(rl->agent_fd, &fwd, &f) < 0)
			break;
	}
	lb_frame_free(&f);
	lb_buf_free(&fwd);
	/* Ends the stream towards the agent. */
	shutdown(rl->agent_fd, SHUT_WR);
	return NULL;
}

/* The frames an agent may send: those a backup is made of. */
static int agent_may_send(int t)
{
	switch (t) {
	case LB_MSG_ENTRY:
	case LB_MSG_FILE:
	case LB_MSG_DATA:
	case LB_MSG_FILE_END:
	case LB_MSG_REUSE:
	case LB_MSG_PARENT:
	case LB_MSG_SIGNATURE:
	case LB_MSG_DELTA:
	case LB_MSG_DELTA_END:
	case LB_MSG_COMMIT:
	case LB_MSG_ABORT:
	case LB_MSG_RESUME_INFO:
	case LB_MSG_FILE_RESUME:
		return 1;
	default:
		return 0;
	}
}

static void link_progress(struct relay *rl, int64_t *last, int final)
{
	int64_t now = lb_mono_ns();
	if (!final && now - *last < 250000000LL)
		return;
	*last = now;
	struct lb_link_stats st;
	lb_link_get_stats(rl->link, &st);
	char a[32], b[32];
	fprintf(stderr, "\rlink: %s received (%s of frames)   %s", lb_format_size(a, sizeof(a), st.wire_in),
		lb_format_size(b, sizeof(b), st.plain_in), final ? "\n" : "");
}

static void send_abort(int fd, const char *why)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, why);
	lb_frame_send_buf(fd, LB_MSG_ABORT, &b);
	lb_buf_free(&b);
}

int backup_remote(const struct common *co, const char *tenant, const char *name, const char *host,
		  const char *const *tags, size_t ntags, const char *url, const struct backup_opts *o)
{
	struct url u;
	if (parse_url(url, &u) < 0) {
		fprintf(stderr, "lumbung backup: --remote '%s' is not ssh://[USER@]HOST[:PORT]/ABSOLUTE-PATH\n", url);
		return EXIT_USAGE;
	}
	struct client cl;
	int rc = client_connect(&cl, co);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	int have_parent = 0;
	rc = backup_begin(&cl, tenant, name, host ? host : u.host, tags, ntags, &have_parent);
	if (rc) {
		client_close(&cl);
		return rc;
	}
	struct relay rl = { .daemon_fd = cl.fd, .agent_fd = -1 };
	lb_frame_init(&rl.last);
	int sp[2] = { -1, -1 }, rfd = -1, wfd = -1;
	pid_t pid = -1;
	char why[512] = "";
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || (pid = spawn_ssh(&u, o, &rfd, &wfd)) < 0) {
		snprintf(why, sizeof(why), "cannot start ssh: %s", strerror(errno));
		send_abort(cl.fd, why);
		lb_frame_read(cl.fd, &cl.f);
		fprintf(stderr, "lumbung: backup of %s/%s from %s: %s\n", tenant, name, url, why);
		client_close(&cl);
		return EXIT_FAILED;
	}
	int r = lb_link_start(&rl.link, sp[1], rfd, wfd, 0);
	if (r < 0) {
		fprintf(stderr, "lumbung: cannot start the link: %s\n", strerror(-r));
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		client_close(&cl);
		return EXIT_FAILED;
	}
	rl.agent_fd = sp[0];
	/* The agent's orders: what to read, and how. */
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, u.path);
	lb_buf_put_u8(&b, o->delta != 0 ? 1 : 0);
	lb_buf_put_uv(&b, o->delta_min);
	lb_buf_put_uv(&b, o->rate);
	lb_buf_put_u8(&b, (uint8_t)have_parent);
	r = lb_frame_send_buf(rl.agent_fd, LB_MSG_START, &b);
	if (r == 0 && pthread_create(&rl.down, NULL, down_main, &rl) != 0)
		r = -EAGAIN;
	int down_started = r == 0;
	int progress = progress_wanted() && !co->json;
	int64_t last = 0;
	int ended = 0; /* the agent sent COMMIT or ABORT */
	uint64_t agent_read = 0, deltas = 0, refused = 0, link_at_commit = 0;
	struct lb_frame f;
	struct lb_buf fwd;
	lb_frame_init(&f);
	lb_buf_init(&fwd);
	/* As in down_main: what the agent sent together goes on together. */
	(void)lb_frame_readahead(&f, LB_FRAME_BATCH);
	while (r == 0 && !ended) {
		r = lb_frame_read(rl.agent_fd, &f);
		if (r <= 0) {
			r = r < 0 ? r : -ECONNRESET;
			break;
		}
		if (!agent_may_send(f.type)) {
			snprintf(why, sizeof(why), "the agent on %s sent message %d, which is not part of a backup",
				 u.host, f.type);
			r = -EPROTO;
			break;
		}
		if (f.type == LB_MSG_COMMIT) {
			/* Add what crossed the link to what the agent read. */
			struct lb_rd rd;
			lb_frame_reader(&f, &rd);
			agent_read = lb_rd_uv(&rd);
			(void)lb_rd_uv(&rd);
			deltas = lb_rd_uv(&rd);
			refused = lb_rd_uv(&rd);
			struct lb_link_stats st;
			lb_link_get_stats(rl.link, &st);
			lb_buf_reset(&b);
			lb_buf_put_uv(&b, agent_read);
			link_at_commit = LB_MAX(st.wire_in + st.wire_out, 1);
			lb_buf_put_uv(&b, link_at_commit);
			lb_buf_put_uv(&b, deltas);
			lb_buf_put_uv(&b, refused);
			r = lb_frames_flush(cl.fd, &fwd);
			if (r == 0)
				r = lb_frame_send_buf(cl.fd, LB_MSG_COMMIT, &b);
			ended = 1;
		} else {
			r = lb_frame_forward(cl.fd, &fwd, &f);
			ended = f.type == LB_MSG_ABORT;
			if (r == 0 && ended)
				r = lb_frames_flush(cl.fd, &fwd);
		}
		if (progress)
			link_progress(&rl, &last, 0);
	}
	lb_frame_free(&f);
	lb_buf_free(&fwd);
	if (!ended && down_started) {
		if (!*why) {
			/* The link ended early: ssh failed or the agent died. */
			struct lb_link_stats st;
			lb_link_get_stats(rl.link, &st);
			snprintf(why, sizeof(why), "the agent on %s ended the link before the backup was complete%s",
				 u.host, st.wire_in ? "" : " (could ssh log in, and is lumbung installed there?)");
		}
		send_abort(cl.fd, why);
	}
	/* Wait for lumbungd's last word, which the down thread passes on:
	 * it closes the session once it has answered. */
	if (down_started) {
		shutdown(cl.fd, SHUT_WR);
		pthread_join(rl.down, NULL);
	}
	if (progress)
		link_progress(&rl, &last, 1);
	/* Let the agent see the end of the link, and wait for it. */
	shutdown(rl.agent_fd, SHUT_RDWR);
	close(rl.agent_fd);
	const char *lwhy = NULL;
	struct lb_link_stats st;
	lb_link_get_stats(rl.link, &st);
	int lr = lb_link_finish(rl.link, &lwhy);
	int status = 0;
	waitpid(pid, &status, 0);
	if (rl.have_last && rl.last.type == LB_MSG_COMMITTED) {
		struct backup_report rep = { .read = agent_read, .sent = st.plain_in, .link_bytes = link_at_commit,
					     .delta_files = deltas, .delta_refused = refused };
		rc = print_committed(&rl.last, &rep, co->json);
	} else {
		if (rl.have_last && rl.last.type == LB_MSG_ERROR)
			rc = frame_error(&rl.last);
		else
			rc = EXIT_FAILED;
		if (*why)
			fprintf(stderr, "lumbung: backup of %s/%s from %s: %s\n", tenant, name, url, why);
		else if (lr < 0 && lwhy)
			fprintf(stderr, "lumbung: backup of %s/%s from %s: %s\n", tenant, name, url, lwhy);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 255)
			fprintf(stderr, "lumbung: ssh to %s failed (exit 255)\n", u.host);
		fprintf(stderr, "lumbung: backup of %s/%s failed; nothing was committed\n", tenant, name);
		if (rc == EXIT_OK)
			rc = EXIT_FAILED;
	}
	lb_buf_free(&b);
	lb_frame_free(&rl.last);
	client_close(&cl);
	return rc;
}
