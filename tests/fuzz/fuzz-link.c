/* fuzz-link.c - what an agent or appliance reads from a slow link: a zstd
 * stream (lib/link.c's down direction) that decompresses into protocol
 * frames (lb_frame_read).
 *
 * The input is the compressed byte stream; it is written into a pipe that
 * the pump reads as its link, and the clear side is read frame by frame.
 * Inputs above 60 KiB are cut (the pipe must hold the whole input). */
#include "fuzz.h"
#include "link.h"
#include "proto.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2], in[2];
	if (size > 60000)
		size = 60000;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(in, O_CLOEXEC) < 0)
		abort();
	int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (out < 0)
		abort();
	size_t off = 0;
	while (off < size) {
		ssize_t w = write(in[1], data + off, size - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	close(in[1]);
	struct lb_link *l;
	if (lb_link_start(&l, sv[0], in[0], out, 0) < 0)
		abort();
	/* Nothing to send the other way: the up direction ends at once. */
	shutdown(sv[1], SHUT_WR);
	struct lb_frame f;
	lb_frame_init(&f);
	while (lb_frame_read(sv[1], &f) > 0)
		;
	/* Drain what a frame error left unread, so the pump can finish. */
	char sink[4096];
	while (read(sv[1], sink, sizeof(sink)) > 0)
		;
	lb_frame_free(&f);
	const char *why;
	lb_link_finish(l, &why);
	close(sv[1]);
	return 0;
}
