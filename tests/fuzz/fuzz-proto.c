/* fuzz-proto.c - the wire protocol as a daemon or client reads it: frames
 * off a stream socket (lb_frame_read), then the payload decoders lib/
 * exposes (entry records, snapshot summaries, raw varint readers).
 *
 * The input is the byte stream a peer sends; it goes through a socketpair
 * so that lb_frame_read sees a real socket.  Inputs above 64 KiB are cut
 * (the socket buffer must hold the whole input). */
#include "fuzz.h"
#include "buf.h"
#include "manifest.h"
#include "proto.h"
#include "snapshot.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (size > 65536)
		size = 65536;
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
	while (lb_frame_read(sv[1], &f) > 0)
		decode_payload(&f);
	lb_frame_free(&f);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
