/* fuzz-proto.c - the wire protocol as a daemon or client reads it: frames
 * off a stream socket (lb_frame_read), then the payload decoders lib/
 * exposes (entry records, snapshot summaries, raw varint readers).
 *
 * The input is the byte stream a peer sends; it goes through a socketpair
 * so that lb_frame_read sees a real socket.  Inputs above 64 KiB are cut
 * (the socket buffer must hold the whole input).  The stream is read twice,
 * without and with a read-ahead buffer, and both readings must agree. */
#include "fuzz.h"
#include "buf.h"
#include "manifest.h"
#include "proto.h"
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void decode_entry(const uint8_t *p, size_t n, int resume)
{
	struct lb_rd rd;
	struct lb_entry e;
	lb_rd_init(&rd, p, n);
	if (lb_entry_decode(&rd, &e) < 0)
		return;
	if (resume)
		(void)lb_rd_uv(&rd);
	(void)lb_rd_done(&rd);
	/* What was accepted must encode and decode again to the same record. */
	struct lb_buf b;
	lb_buf_init(&b);
	lb_entry_encode(&b, &e);
	struct lb_entry e2;
	lb_rd_init(&rd, b.p, b.len);
	if (!b.err) {
		if (lb_entry_decode(&rd, &e2) < 0 || !lb_rd_done(&rd))
			abort();
		if (strcmp(e.path, e2.path) || e.size != e2.size || e.nchunks != e2.nchunks)
			abort();
		lb_entry_clear(&e2);
	}
	lb_buf_free(&b);
	lb_entry_clear(&e);
}

static void decode_payload(const struct lb_frame *f)
{
	struct lb_rd rd;
	struct lb_snapshot s;
	switch (f->type) {
	case LB_MSG_ENTRY:
	case LB_MSG_FILE:
	case LB_MSG_REUSE:
	case LB_MSG_DELTA:
		decode_entry(f->payload, f->len, 0);
		break;
	case LB_MSG_FILE_RESUME:
		decode_entry(f->payload, f->len, 1);
		break;
	case LB_MSG_SNAPSHOT:
	case LB_MSG_COMMITTED:
		lb_frame_reader(f, &rd);
		if (lb_proto_get_snapshot(&rd, &s) == 0)
			lb_snapshot_clear(&s);
		break;
	default:
		/* The primitives every handler uses: strings, varints, raw. */
		lb_frame_reader(f, &rd);
		while (!rd.err && lb_rd_left(&rd)) {
			switch (lb_rd_u8(&rd) & 7) {
			case 0: free(lb_rd_strdup(&rd, 4095)); break;
			case 1: (void)lb_rd_uv(&rd); break;
			case 2: (void)lb_rd_sv(&rd); break;
			case 3: (void)lb_rd_uv_max(&rd, 1000); break;
			case 4: (void)lb_rd_raw(&rd, 32); break;
			case 5: { size_t len; (void)lb_rd_bytes(&rd, 1024, &len); break; }
			case 6: (void)lb_rd_u32le(&rd); break;
			default: (void)lb_rd_u8(&rd); break;
			}
		}
		break;
	}
}

/* What one reading of the stream saw: each frame's type, length and a hash
 * of its payload, and how the reading ended. */
struct seen {
	int type;
	size_t len;
	uint64_t sum;
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Reads the input as frames, with a read-ahead buffer of ra bytes (0: none);
 * decodes the payloads when asked.  Returns the number of frames. */
static size_t read_stream(const uint8_t *data, size_t size, size_t ra, int decode, struct seen *out, int *end)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	int bufsz = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	size_t off = 0;
	while (off < size) {
		ssize_t w = write(sv[0], data + off, size - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	shutdown(sv[0], SHUT_WR);
	struct lb_frame f;
	lb_frame_init(&f);
	if (ra && lb_frame_readahead(&f, ra) < 0)
		abort();
	size_t n = 0;
	int r;
	for (;;) {
		/* A frame lb_frame_ready promised is all there (it may still
		 * be refused for its magic or version). */
		int promised = ra && lb_frame_ready(&f);
		r = lb_frame_read(sv[1], &f);
		if (promised && (r == 0 || r == -ECONNRESET))
			abort();
		if (r <= 0)
			break;
		out[n++] = (struct seen){ f.type, f.len, fnv(f.payload, f.len) };
		if (decode)
			decode_payload(&f);
	}
	*end = r;
	lb_frame_free(&f);
	close(sv[0]);
	close(sv[1]);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		size = 65536;
	/* At most one frame per header's worth of input, plus the last. */
	size_t max = size / LB_FRAME_HEADER + 1;
	struct seen *a = malloc(max * sizeof(*a)), *b = malloc(max * sizeof(*b));
	if (!a || !b)
		abort();
	int enda, endb;
	size_t na = read_stream(data, size, 0, 1, a, &enda);
	/* The same stream through a read-ahead buffer, small enough that
	 * frames straddle it and some outgrow it, must read the same. */
	size_t ra = 16 + size % 241;
	size_t nb = read_stream(data, size, ra, 0, b, &endb);
	if (na != nb || enda != endb)
		abort();
	for (size_t i = 0; i < na; i++)
		if (a[i].type != b[i].type || a[i].len != b[i].len || a[i].sum != b[i].sum)
			abort();
	free(a);
	free(b);
	return 0;
}
