/* client.c - the shared client side of the protocol; see client.h. */
#include "client.h"
#include "conf.h"
#include "util.h"

#include <getopt.h>
#include <locale.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

int common_option(struct common *co, int c, const char *arg)
{
	switch (c) {
	case 0x1001: co->socket = arg; return 1;
	case 0x1002: co->config = arg; return 1;
	case 0x1003: co->tenant = arg; return 1;
	case 0x1004: co->json = 1; return 1;
	default: return 0;
	}
}

/* The socket: --socket, then $LUMBUNG_SOCKET, then the configuration's,
 * then the default. */
static char *socket_path(const struct common *co)
{
	if (co->socket)
		return strdup(co->socket);
	const char *env = getenv("LUMBUNG_SOCKET");
	if (env && *env)
		return strdup(env);
	struct lb_config *cfg;
	char err[512];
	const char *file = co->config ? co->config : LB_DEFAULT_CONFIG;
	if (lb_config_load(file, &cfg, err, sizeof(err)) == 0) {
		char *p = strdup(cfg->daemon.socket);
		lb_config_free(cfg);
		return p;
	}
	if (co->config)
		fprintf(stderr, "lumbung: %s\n", err);
	return strdup(LB_DEFAULT_SOCKET);
}

int client_connect(struct client *c, const struct common *co)
{
	memset(c, 0, sizeof(*c));
	lb_frame_init(&c->f);
	char *path = socket_path(co);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (!path || strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "lumbung: socket path is too long\n");
		free(path);
		return EXIT_UNREACHABLE;
	}
	memcpy(sa.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "lumbung: cannot reach lumbungd at %s: %s (is lumbungd running? "
			"see --socket and LUMBUNG_SOCKET)\n", path, strerror(errno));
		free(path);
		return EXIT_UNREACHABLE;
	}
	free(path);
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_str(&b, PACKAGE_VERSION);
	int r = lb_frame_send_buf(c->fd, LB_MSG_HELLO, &b);
	lb_buf_free(&b);
	/* A refusal on accept (too many connections) is sent before the
	 * daemon hangs up, so the hello may fail with EPIPE with the reason
	 * already waiting to be read: read it either way. */
	if (client_read(c) < 0) {
		if (r < 0)
			fprintf(stderr, "lumbung: cannot greet lumbungd: %s\n", strerror(-r));
		return EXIT_UNREACHABLE;
	}
	if (c->f.type == LB_MSG_ERROR) {
		int code = client_error(c);
		return code == EXIT_FAILED ? EXIT_UNREACHABLE : code;
	}
	if (c->f.type != LB_MSG_WELCOME)
		return client_unexpected(c, "greeting");
	struct lb_rd rd;
	lb_frame_reader(&c->f, &rd);
	char *ver = lb_rd_strdup(&rd, 63);
	c->admin = lb_rd_u8(&rd);
	size_t n = (size_t)lb_rd_uv_max(&rd, 100000);
	c->tenants = calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n && c->tenants && !rd.err; i++)
		c->tenants[c->ntenants++] = lb_rd_strdup(&rd, LB_NAME_MAX);
	if (!lb_rd_done(&rd) || !ver) {
		free(ver);
		fprintf(stderr, "lumbung: malformed greeting from lumbungd\n");
		return EXIT_UNREACHABLE;
	}
	snprintf(c->daemon_version, sizeof(c->daemon_version), "%s", ver);
	free(ver);
	return 0;
}

void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (size_t i = 0; i < c->ntenants; i++)
		free(c->tenants[i]);
	free(c->tenants);
	c->tenants = NULL;
	lb_frame_free(&c->f);
}

int client_read(struct client *c)
{
	int r = lb_frame_read(c->fd, &c->f);
	if (r == 1)
		return 0;
	if (r == 0)
		fprintf(stderr, "lumbung: lumbungd closed the connection\n");
	else if (r == -EPROTONOSUPPORT || r == -EPROTO)
		fprintf(stderr, "lumbung: %s\n", lb_error_detail());
	else
		fprintf(stderr, "lumbung: connection to lumbungd failed: %s\n", strerror(-r));
	return r == 0 ? -ECONNRESET : r;
}

int client_error(struct client *c) { return frame_error(&c->f); }

int frame_error(const struct lb_frame *f)
{
	struct lb_rd rd;
	lb_frame_reader(f, &rd);
	uint64_t code = lb_rd_uv(&rd);
	char *msg = lb_rd_strdup(&rd, 4096);
	fprintf(stderr, "lumbung: %s\n", msg ? shown(msg) : "lumbungd reported an error");
	free(msg);
	switch (code) {
	case ENOENT: return EXIT_NOTFOUND;
	case EEXIST: return EXIT_USAGE; /* an ambiguous name */
	case EPERM:
	case EACCES: return EXIT_DENIED;
	case EPROTONOSUPPORT: return EXIT_UNREACHABLE;
	default: return EXIT_FAILED;
	}
}

int client_unexpected(struct client *c, const char *context) { return frame_unexpected(&c->f, context); }

int frame_unexpected(const struct lb_frame *f, const char *context)
{
	if (f->type == LB_MSG_ERROR)
		return frame_error(f);
	fprintf(stderr, "lumbung: unexpected message %d from lumbungd during %s\n", f->type, context);
	return EXIT_FAILED;
}

int split_dataset(const char *arg, const char *tenant_opt, char *tenant, char *name)
{
	const char *slash = strchr(arg, '/');
	if (slash) {
		if ((size_t)(slash - arg) > LB_NAME_MAX || strlen(slash + 1) > LB_NAME_MAX)
			return -EINVAL;
		snprintf(tenant, LB_NAME_MAX + 1, "%.*s", (int)(slash - arg), arg);
		snprintf(name, LB_NAME_MAX + 1, "%s", slash + 1);
		if (tenant_opt && strcmp(tenant_opt, tenant) != 0)
			return -EINVAL;
	} else {
		if (strlen(arg) > LB_NAME_MAX)
			return -EINVAL;
		snprintf(tenant, LB_NAME_MAX + 1, "%s", tenant_opt ? tenant_opt : "");
		snprintf(name, LB_NAME_MAX + 1, "%s", arg);
	}
	return lb_name_valid(name) && (!*tenant || lb_name_valid(tenant)) ? 0 : -EINVAL;
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 when p starts an
 * invalid one (overlong forms, surrogates and stray bytes included). */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000;
	else
		return 0;
	unsigned cp = c & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Writes s, escaped so that no byte of it can move the cursor or drive the
 * terminal: "\\" for a backslash, \n \r \t, and \xHH for any other
 * control character (C0, DEL, and C1 written as UTF-8) and for every byte
 * that is not valid UTF-8.  At most max bytes of output ("..." after a cut;
 * 0: no limit).  Returns the output length. */
static size_t escape_name(char *out, size_t max, const char *s)
{
	size_t o = 0;
	char tmp[8];
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
		size_t n = utf8_len(p), t;
		if (*p == '\\')
			t = (size_t)snprintf(tmp, sizeof(tmp), "\\\\");
		else if (*p == '\n' || *p == '\r' || *p == '\t')
			t = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't');
		else if (n == 0 || *p < 0x20 || *p == 0x7f || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0))
			t = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *p), n = 1;
		else
			t = n, memcpy(tmp, p, n);
		if (max && o + t + 3 > max) {
			if (out)
				memcpy(out + o, "...", 3);
			return o + 3;
		}
		if (out)
			memcpy(out + o, tmp, t);
		o += t;
		p += n;
	}
	return o;
}

void put_name(FILE *f, const char *s)
{
	size_t n = escape_name(NULL, 0, s);
	char *buf = malloc(n + 1);
	if (!buf) {
		fputs("?", f);
		return;
	}
	escape_name(buf, 0, s);
	fwrite(buf, 1, n, f);
	free(buf);
}

const char *shown(const char *s)
{
	/* A few at once, for one message naming several paths. */
	static _Thread_local char bufs[4][1024];
	static _Thread_local unsigned next;
	char *b = bufs[next++ % 4];
	size_t n = escape_name(b, sizeof(bufs[0]) - 1, s);
	b[n] = '\0';
	return b;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
		size_t n = utf8_len(p);
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if (n == 0)
			/* A byte that is not UTF-8: a lone surrogate, as Python's
			 * "surrogateescape" decodes it, so that no byte is lost. */
			fprintf(f, "\\udc%02x", *p);
		else
			fwrite(p, 1, n, f);
		p += n ? n : 1;
	}
	fputc('"', f);
}

const char *fmt_time(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

const char *fmt_mode(int type, uint32_t mode, char *buf)
{
	static const char types[] = "?-dlhcbps";
	buf[0] = types[type >= 0 && type <= 8 ? type : 0];
	const char *rwx = "rwxrwxrwx";
	for (int i = 0; i < 9; i++)
		buf[1 + i] = (mode & (0400 >> i)) ? rwx[i] : '-';
	if (mode & 04000)
		buf[3] = (mode & 0100) ? 's' : 'S';
	if (mode & 02000)
		buf[6] = (mode & 010) ? 's' : 'S';
	if (mode & 01000)
		buf[9] = (mode & 01) ? 't' : 'T';
	buf[10] = '\0';
	return buf;
}

int progress_wanted(void) { return isatty(2); }

void setup_language(void)
{
	setlocale(LC_ALL, "");
	setlocale(LC_NUMERIC, "C");
	const char *dir = getenv("LUMBUNG_LOCALEDIR");
	bindtextdomain("lumbung", dir && *dir ? dir : LB_LOCALEDIR);
	bind_textdomain_codeset("lumbung", "UTF-8");
	textdomain("lumbung");
}

void set_language(const char *lang)
{
	/* gettext ignores LANGUAGE in the C locale: then a UTF-8 locale of
	 * that language is tried, and C.UTF-8 as the last resort. */
	setenv("LANGUAGE", lang, 1);
	if (!strcmp(lang, "id") && setlocale(LC_MESSAGES, "id_ID.UTF-8"))
		return;
	if (!strcmp(lang, "en") && setlocale(LC_MESSAGES, "en_US.UTF-8"))
		return;
	setlocale(LC_MESSAGES, "C.UTF-8");
}
