/* link.h - protocol frames over a slow link: one zstd stream each way.
 *
 * Between an OPD server and the appliance the frames travel over an SSH
 * channel (two pipes), not the daemon's Unix socket.  A link pump sits
 * between a socket that carries the frames in the clear (one end of a
 * socketpair; the other end is what the protocol code reads and writes)
 * and the channel, and carries the same bytes as a zstd stream in each
 * direction: what crosses the link is compressed as a stream, so repeated
 * metadata and literal data shrink across frame boundaries.  Each burst of
 * frames is flushed as soon as the clear side has nothing more to send, so
 * a request never waits for compression of bytes that do not exist yet.
 *
 * Writes to the link may be capped at a rate (a token bucket of about
 * 50 ms), and the pump counts the bytes that crossed in each direction:
 * that is what a night cost the link. */
#ifndef LB_LINK_H
#define LB_LINK_H

#include <stdint.h>

struct lb_link;

struct lb_link_stats {
	uint64_t wire_out, wire_in;   /* compressed bytes written to / read from the link */
	uint64_t plain_out, plain_in; /* the clear bytes they carried */
};

/* Starts pumping: bytes read from plain_fd go, compressed, to link_wfd;
 * bytes read from link_rfd go, decompressed, to plain_fd.  rate caps the
 * writes to the link in bytes per second (0: no cap).  The pump owns the
 * three descriptors and closes them when it ends: when plain_fd reaches
 * end of stream it ends the stream on the link, and when the link ends it
 * shuts down the writing side of plain_fd.  A corrupt stream from the link
 * ends both directions.  Returns 0 or -errno. */
int lb_link_start(struct lb_link **out, int plain_fd, int link_rfd, int link_wfd, uint64_t rate);

/* Changes the cap on writes to the link (0: none); the agent learns its
 * rate from the appliance's first message, after the pump has started. */
void lb_link_set_rate(struct lb_link *l, uint64_t rate);

/* Counts so far (safe to call while the pump runs). */
void lb_link_get_stats(struct lb_link *l, struct lb_link_stats *st);

/* Waits for both directions to end and frees the pump.  Returns 0, or the
 * first error either direction met (negative errno; lb_error_detail() is
 * not set, the text is in *why when why is not NULL, static storage). */
int lb_link_finish(struct lb_link *l, const char **why);

/* Parses a rate such as "10M", "512k", "2.5m" (bytes per second, binary
 * units; a trailing "/s" or "B/s" is allowed) or "10mbit" (bits per second,
 * decimal units).  Returns 0 or -EINVAL. */
int lb_parse_rate(const char *s, uint64_t *bytes_per_s);

#endif
