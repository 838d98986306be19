/* proto.c - frames on a stream socket; see proto.h. */
#include "proto.h"
#include "snapshot.h"
#include "util.h"

#include <stdio.h>
#include <sys/socket.h>
#include <sys/uio.h>

void lb_frame_init(struct lb_frame *f) { memset(f, 0, sizeof(*f)); }

void lb_frame_free(struct lb_frame *f)
{
	free(f->payload);
	free(f->ra);
	lb_frame_init(f);
}

int lb_frame_readahead(struct lb_frame *f, size_t size)
{
	if (f->ra)
		return 0;
	f->ra = malloc(size);
	if (!f->ra)
		return -ENOMEM;
	f->ra_cap = size;
	f->ra_pos = f->ra_end = 0;
	return 0;
}

int lb_frame_ready(const struct lb_frame *f)
{
	size_t have = f->ra_end - f->ra_pos;
	return f->ra && have >= LB_FRAME_HEADER && have - LB_FRAME_HEADER >= lb_get32(f->ra + f->ra_pos + 4);
}

/* Reads exactly len bytes; returns 1, 0 at EOF before any byte, or -errno
 * (-ECONNRESET when EOF comes after some bytes). */
static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, p + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EWOULDBLOCK)
				return -EAGAIN;
			return -errno;
		}
		if (n == 0)
			return got == 0 ? 0 : -ECONNRESET;
		got += (size_t)n;
	}
	return 1;
}

/* Receives into the read-ahead buffer until it holds at least want bytes
 * (want <= ra_cap); returns 1, 0 at EOF with nothing held, or -errno
 * (-ECONNRESET at EOF inside the bytes wanted). */
static int ra_fill(int fd, struct lb_frame *f, size_t want)
{
	if (f->ra_end - f->ra_pos >= want)
		return 1;
	if (f->ra_pos + want > f->ra_cap) {
		memmove(f->ra, f->ra + f->ra_pos, f->ra_end - f->ra_pos);
		f->ra_end -= f->ra_pos;
		f->ra_pos = 0;
	}
	while (f->ra_end - f->ra_pos < want) {
		ssize_t n = recv(fd, f->ra + f->ra_end, f->ra_cap - f->ra_end, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		if (n == 0)
			return f->ra_end == f->ra_pos ? 0 : -ECONNRESET;
		f->ra_end += (size_t)n;
	}
	return 1;
}

/* Hands out up to len bytes of the read-ahead buffer; returns how many. */
static size_t ra_take(struct lb_frame *f, void *buf, size_t len)
{
	size_t n = LB_MIN(len, f->ra_end - f->ra_pos);
	memcpy(buf, f->ra + f->ra_pos, n);
	f->ra_pos += n;
	return n;
}

int lb_frame_read(int fd, struct lb_frame *f)
{
	uint8_t h[LB_FRAME_HEADER];
	int r = f->ra ? ra_fill(fd, f, sizeof(h)) : read_full(fd, h, sizeof(h));
	if (r <= 0)
		return r;
	if (f->ra)
		ra_take(f, h, sizeof(h));
	if (h[0] != 'L' || h[1] != 'B') {
		lb_set_error("not a lumbung protocol frame (bad magic)");
		return -EPROTO;
	}
	if (h[2] != LB_PROTO_VERSION) {
		lb_set_error(LB_INCOMPATIBLE " (peer speaks protocol %u, this side %u)", h[2], LB_PROTO_VERSION);
		return -EPROTONOSUPPORT;
	}
	uint32_t len = lb_get32(h + 4);
	if (len > LB_FRAME_MAX) {
		lb_set_error("frame of %u bytes exceeds the limit of %u", len, LB_FRAME_MAX);
		return -EPROTO;
	}
	if (len > f->cap) {
		uint8_t *np = realloc(f->payload, len);
		if (!np)
			return -ENOMEM;
		f->payload = np;
		f->cap = len;
	}
	f->type = h[3];
	f->len = len;
	if (len == 0)
		return 1;
	size_t got = 0;
	if (f->ra) {
		/* A small frame comes through the buffer with what follows it;
		 * a large one takes what is there and the rest directly. */
		if (len <= f->ra_cap / 2 && (r = ra_fill(fd, f, len)) <= 0) {
			if (r == 0)
				r = -ECONNRESET;
			if (r != -EAGAIN)
				lb_set_error("connection ended inside a frame");
			return r;
		}
		got = ra_take(f, f->payload, len);
		if (got == len)
			return 1;
	}
	r = read_full(fd, f->payload + got, len - got);
	if (r == 0)
		r = -ECONNRESET;
	if (r < 0 && r != -EAGAIN)
		lb_set_error("connection ended inside a frame");
	return r < 0 ? r : 1;
}

static void frame_header(uint8_t h[LB_FRAME_HEADER], int type, size_t len)
{
	h[0] = 'L';
	h[1] = 'B';
	h[2] = LB_PROTO_VERSION;
	h[3] = (uint8_t)type;
	lb_put32(h + 4, (uint32_t)len);
}

int lb_frame_send(int fd, int type, const void *payload, size_t len)
{
	if (len > LB_FRAME_MAX)
		return -EMSGSIZE;
	uint8_t h[LB_FRAME_HEADER];
	frame_header(h, type, len);
	struct iovec iov[2] = { { h, sizeof(h) }, { (void *)payload, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	size_t total = sizeof(h) + len;
	while (total > 0) {
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		total -= (size_t)n;
		/* Advance over what was sent. */
		while (n > 0 && m.msg_iovlen > 0) {
			if ((size_t)n >= m.msg_iov[0].iov_len) {
				n -= (ssize_t)m.msg_iov[0].iov_len;
				m.msg_iov++;
				m.msg_iovlen--;
			} else {
				m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + n;
				m.msg_iov[0].iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

void lb_frame_put(struct lb_buf *out, int type, const void *payload, size_t len)
{
	uint8_t h[LB_FRAME_HEADER];
	frame_header(h, type, len);
	lb_buf_put(out, h, sizeof(h));
	lb_buf_put(out, payload, len);
}

int lb_frames_flush(int fd, struct lb_buf *out)
{
	if (out->err)
		return out->err;
	/* Emptied on failure too: part may have gone, and what is left
	 * cannot be sent again on this stream. */
	int r = lb_send_all(fd, out->p, out->len);
	lb_buf_reset(out);
	return r;
}

int lb_frame_forward(int fd, struct lb_buf *fwd, const struct lb_frame *f)
{
	int r;
	if (f->len >= LB_FRAME_BATCH / 2) {
		if ((r = lb_frames_flush(fd, fwd)) < 0)
			return r;
		return lb_frame_send(fd, f->type, f->payload, f->len);
	}
	lb_frame_put(fwd, f->type, f->payload, f->len);
	return lb_frame_ready(f) && fwd->len < LB_FRAME_BATCH && !fwd->err ? 0 : lb_frames_flush(fd, fwd);
}

int lb_frame_send_error(int fd, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct lb_buf b;
	lb_buf_init(&b);
	lb_buf_put_uv(&b, (uint64_t)(code < 0 ? -code : code));
	lb_buf_put_str(&b, msg);
	int r = lb_frame_send_buf(fd, LB_MSG_ERROR, &b);
	lb_buf_free(&b);
	return r;
}

void lb_proto_put_snapshot(struct lb_buf *b, const struct lb_snapshot *s)
{
	lb_buf_put(b, s->id, LB_SNAP_ID_LEN);
	lb_buf_put_str(b, s->tenant);
	lb_buf_put_str(b, s->dataset);
	lb_buf_put_str(b, s->host);
	lb_buf_put_sv(b, s->time_ns);
	lb_buf_put_uv(b, s->nentries);
	lb_buf_put_uv(b, s->nfiles);
	lb_buf_put_uv(b, s->logical);
	lb_buf_put_uv(b, s->new_chunks);
	lb_buf_put_uv(b, s->new_stored);
	lb_buf_put_uv(b, s->ntags);
	for (size_t i = 0; i < s->ntags; i++)
		lb_buf_put_str(b, s->tags[i]);
}

int lb_proto_get_snapshot(struct lb_rd *rd, struct lb_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	const uint8_t *id = lb_rd_raw(rd, LB_SNAP_ID_LEN);
	if (id)
		memcpy(s->id, id, LB_SNAP_ID_LEN);
	s->tenant = lb_rd_strdup(rd, LB_NAME_MAX);
	s->dataset = lb_rd_strdup(rd, LB_NAME_MAX);
	s->host = lb_rd_strdup(rd, 255);
	s->time_ns = lb_rd_sv(rd);
	s->nentries = lb_rd_uv(rd);
	s->nfiles = lb_rd_uv(rd);
	s->logical = lb_rd_uv(rd);
	s->new_chunks = lb_rd_uv(rd);
	s->new_stored = lb_rd_uv(rd);
	size_t nt = (size_t)lb_rd_uv_max(rd, 64);
	if (nt && !rd->err) {
		s->tags = calloc(nt, sizeof(char *));
		if (!s->tags) {
			lb_snapshot_clear(s);
			return -ENOMEM;
		}
		s->ntags = nt;
		for (size_t i = 0; i < nt; i++)
			s->tags[i] = lb_rd_strdup(rd, 255);
	}
	if (rd->err || !s->tenant || !s->dataset || !s->host) {
		lb_snapshot_clear(s);
		return -EPROTO;
	}
	for (size_t i = 0; i < s->ntags; i++) {
		if (!s->tags[i]) {
			lb_snapshot_clear(s);
			return -EPROTO;
		}
	}
	return 0;
}
