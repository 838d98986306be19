/* proto.h - the wire protocol between lumbung (client) and lumbungd.
 *
 * A Unix stream socket carries frames.  A frame is an 8-byte header
 *     u8 'L' | u8 'B' | u8 version | u8 type | u32 payload length (LE)
 * and the payload, at most LB_FRAME_MAX bytes.  Payloads are varint records
 * (buf.h); every reader checks bounds and that nothing is left over.  A frame
 * of another version is refused with "incompatible lumbung and lumbungd".
 * doc/PROTOCOL.md describes every message.
 *
 * The daemon learns who the client is from the socket (SO_PEERCRED), never
 * from a payload.  Every request names its tenant; every answer is filtered
 * by what the caller may see. */
#ifndef LB_PROTO_H
#define LB_PROTO_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

#define LB_PROTO_VERSION 1
#define LB_FRAME_HEADER 8
#define LB_FRAME_MAX ((16u << 20) + 4096)
/* Runs of small frames are read ahead and written in batches of this size. */
#define LB_FRAME_BATCH 65536u
/* File data travels in DATA frames of at most this many bytes. */
#define LB_DATA_CHUNK (1u << 20)

enum lb_msg {
	/* client -> daemon */
	LB_MSG_HELLO = 1,     /* str client version */
	LB_MSG_BACKUP = 2,    /* str tenant, str dataset, str host, uv ntags, str tag... */
	LB_MSG_ENTRY = 3,     /* entry record without data (also daemon -> client) */
	LB_MSG_FILE = 4,      /* entry record of a regular file; DATA frames follow */
	LB_MSG_DATA = 5,      /* raw bytes (both directions) */
	LB_MSG_FILE_END = 6,  /* uv nextents, (uv off, uv len)... (sparse map; 0 = dense),
			       * uv size (the file's final size) */
	LB_MSG_REUSE = 7,     /* entry record of a file unchanged since the parent */
	LB_MSG_COMMIT = 8,    /* (empty) */
	LB_MSG_SNAPSHOTS = 9, /* str tenant ("" = all mine), str dataset ("" = all) */
	LB_MSG_LS = 10,       /* str tenant, str snapshot, str path ("" = root) */
	LB_MSG_READ = 11,     /* str tenant, str snapshot, uv npaths, str path..., [u8 flags:
			       * 1 = salvage] */
	LB_MSG_DIFF = 12,     /* str tenant, str snapshot, str snapshot */
	LB_MSG_CHECK = 13,    /* u8 read_data, uv max seconds of reading (0: all; may be absent) */
	LB_MSG_PARENT = 14,   /* (empty, inside a backup) -> ENTRY... END */
	LB_MSG_ABORT = 15,    /* (empty, inside a backup) */
	LB_MSG_AUDIT = 16,    /* str tenant ("" = all I may see), sv since (ns) */
	LB_MSG_QUOTA = 17,    /* str tenant ("" = all I may see) */
	LB_MSG_FORGET = 18,   /* str tenant, str snapshot (administrators only) -> OK */
	LB_MSG_REPORT = 19,   /* str tenant ("" = all I may see), sv period start (ns) */
	LB_MSG_PRUNE = 20,    /* str tenant ("" = all mine), str dataset ("" = all), u8 dry run
			       * -> PRUNE_ROW... END */
	LB_MSG_PROTECT = 21,  /* str tenant, str snapshot, u8 on (administrators only) -> OK */
	LB_MSG_GC = 22,       /* u8 dry run (administrators only) -> GC_DONE */
	LB_MSG_SIGNATURE = 23, /* str path (inside a backup) -> OK(u8 available[, uv old size]),
				* DATA... (the librsync signature of the parent's version), END */
	LB_MSG_DELTA = 24,     /* entry record of a regular file (size = its final size); DATA
				* frames carry a librsync delta against the parent's version */
	LB_MSG_DELTA_END = 25, /* raw[32] SHA-256 of the new file, uv size
				* -> OK(u8 accepted[, str why not]) */
	LB_MSG_JOBS = 26,      /* u8 history (0: the newest result of each dataset; 1: every
				* result since), sv since (ns) -> JOB_ROW... END */
	LB_MSG_SCHEDULE = 27,  /* (empty) -> SCHEDULE_ROW... END */
	LB_MSG_RESUME_INFO = 28, /* (empty, inside a backup) -> OK(u8 have[, str path, uv size,
				  * sv mtime (ns), uv n, (raw[32] id, uv size) x n]) */
	LB_MSG_FILE_RESUME = 29, /* entry record of a regular file, uv k: its first k chunks are
				  * those of the resume point; DATA (the rest), FILE_END follow */
	LB_MSG_START = 30,     /* (only on a link, appliance -> agent) str path, u8 flags
				* (1 = delta transfer), uv delta threshold, uv rate (bytes/s, 0 none),
				* u8 has parent */

	/* daemon -> client */
	LB_MSG_WELCOME = 64,   /* str daemon version, u8 admin, uv n, str tenant... */
	LB_MSG_OK = 65,        /* (message-specific fields) */
	LB_MSG_ERROR = 66,     /* uv code (errno), str message */
	LB_MSG_END = 67,       /* end of a stream */
	LB_MSG_SNAPSHOT = 68,  /* snapshot summary, see lb_proto_put_snapshot */
	LB_MSG_DIFF_ITEM = 69, /* u8 kind '+' '-' 'M', str path, u8 type, uv old size, uv new size */
	LB_MSG_PROBLEM = 70,   /* str kind, str what */
	LB_MSG_CHECKED = 71,   /* uv packs, chunks, snapshots, files, errors, bytes_read, unindexed,
				* packs read, pass position, pass total; u8 pass finished;
				* sv last finished pass (ns, 0 never) */
	LB_MSG_COMMITTED = 72, /* snapshot summary, then uv files, logical, chunks, new_chunks,
				* new_stored, reused_files */
	LB_MSG_WARNING = 73,   /* str message (the operation goes on) */
	LB_MSG_AUDIT_REC = 74, /* sv time, uv uid, str user, str tenant, str verb, str object,
				* uv result (errno), str detail, uv bytes */
	LB_MSG_QUOTA_ROW = 75, /* str tenant, str name, uv quota, uv soft quota, uv charged,
				* uv snapshots, uv logical, uv exclusive (admins; else 0) */
	LB_MSG_QUOTA_STORE = 76, /* uv physical, uv capacity, uv sum of quotas (admins only) */
	LB_MSG_REPORT_TENANT = 77,  /* str tenant, str name, uv quota, uv soft, uv charged,
				     * uv exclusive, uv fair share (both 0 for members), uv logical,
				     * uv raw, uv snapshots, sv oldest, sv newest (ns),
				     * sv growth/day over 7 d, over 30 d (bytes), sv quota full (ns, 0 none) */
	LB_MSG_REPORT_DATASET = 78, /* str tenant, str dataset, sv last success (ns, 0 none),
				     * uv jobs in period, uv failed in period, str last error,
				     * str schedule, uv missed, sv missed time... (ns, up to 62),
				     * uv bytes read, sent, stored in the period, uv the newest
				     * job's bytes read, sent, stored */
	LB_MSG_REPORT_STORE = 79,   /* uv physical, capacity, free, quota sum, referenced, shared,
				     * unreferenced, overhead; sv growth/day over 30 d; sv full (ns);
				     * sv last gc in the period (ns, 0 none), uv its bytes freed,
				     * uv its status (errno, 0 = success) */
	LB_MSG_REPORT_POINT = 80,   /* sv time (ns), uv physical: the store's daily samples in the
				     * period (administrators) */
	LB_MSG_PRUNE_ROW = 81,      /* str tenant, str dataset, str snapshot id (hex), sv time (ns),
				     * uv keep reasons (lib/retention.h; 0 = remove), u8 removed */
	LB_MSG_LOST = 83,           /* str path ("" = a tree blob's entries), uv offset, uv length,
				     * str what: salvage could not read it (zeros were sent) */
	LB_MSG_JOB_ROW = 84,        /* u8 state (0 running, 1 queued, 2 ended), str tenant, str dataset,
				     * str user, uv pid, sv start (ns; queued: since when), sv end,
				     * uv status (errno), str error, uv bytes read, uv bytes sent,
				     * uv bytes stored, uv files, str snapshot, uv place in the queue */
	LB_MSG_SCHEDULE_ROW = 85,   /* str tenant, str dataset, str schedule, str source, sv next run
				     * (ns, 0 none), sv last start, sv last end, uv last status,
				     * str last error, str last snapshot, sv last success (ns) */
	LB_MSG_GC_DONE = 82,        /* uv snapshots, trees, chunks live, chunks dead, packs, packs
				     * deleted, repacked, written, damaged, missing, orphans, bytes
				     * freed, bytes written, bytes dead left, backups waited for;
				     * uv ms waited, marking, sweeping; str problem ("" none) */
};

/* A frame as read.  A frame given a read-ahead buffer (lb_frame_readahead)
 * takes as many bytes as the socket holds in one receive and hands them out
 * frame by frame: a stream of small frames (a listing, REUSE entries) costs
 * one system call per buffer instead of two per frame.  Every read of that
 * socket must then go through this one frame. */
struct lb_frame {
	int type;
	uint8_t *payload; /* owned by the frame; reused between reads */
	size_t len, cap;
	uint8_t *ra;      /* read-ahead: bytes received, not yet handed out */
	size_t ra_pos, ra_end, ra_cap;
};

void lb_frame_init(struct lb_frame *f);
void lb_frame_free(struct lb_frame *f);
/* Gives f a read-ahead buffer of size bytes; 0 or -ENOMEM (f then reads
 * without one, as before). */
int lb_frame_readahead(struct lb_frame *f, size_t size);
/* Whether a whole frame is already in f's read-ahead buffer, so that the
 * next lb_frame_read will not wait. */
int lb_frame_ready(const struct lb_frame *f);

/* Reads one frame.  Returns 1 and fills f, 0 on a clean end of stream before
 * a header, -EPROTO for a bad magic or an oversize length (detail says
 * which), -EPROTONOSUPPORT for another protocol version, -ECONNRESET when the
 * stream ends inside a frame, or -errno (-EAGAIN on a receive timeout). */
int lb_frame_read(int fd, struct lb_frame *f);

/* Writes one frame; returns 0 or -errno (never raises SIGPIPE). */
int lb_frame_send(int fd, int type, const void *payload, size_t len);
static inline int lb_frame_send_buf(int fd, int type, const struct lb_buf *b)
{
	return b->err ? b->err : lb_frame_send(fd, type, b->p, b->len);
}
/* Appends one frame to out, for several frames sent in one write. */
void lb_frame_put(struct lb_buf *out, int type, const void *payload, size_t len);
/* Writes all of out and empties it, also on failure (the stream is then
 * broken); 0 or -errno (never raises SIGPIPE). */
int lb_frames_flush(int fd, struct lb_buf *out);
/* Passes the frame f, just read, on to fd: small frames wait in fwd while
 * f's read-ahead already holds the next one (up to LB_FRAME_BATCH), large ones go
 * at once, without a copy.  0 or -errno. */
int lb_frame_forward(int fd, struct lb_buf *fwd, const struct lb_frame *f);
/* Sends an ERROR frame with an errno value and a message. */
int lb_frame_send_error(int fd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A reader over a frame's payload. */
static inline void lb_frame_reader(const struct lb_frame *f, struct lb_rd *rd)
{
	lb_rd_init(rd, f->payload, f->len);
}
/* Succeeds when the reader consumed the payload exactly, without error. */
static inline int lb_rd_done(const struct lb_rd *rd) { return !rd->err && rd->p == rd->end; }

/* Snapshot summaries on the wire. */
struct lb_snapshot;
void lb_proto_put_snapshot(struct lb_buf *b, const struct lb_snapshot *s);
/* Decodes a summary into s (zeroed first; tree refs are not sent). */
int lb_proto_get_snapshot(struct lb_rd *rd, struct lb_snapshot *s);

/* The message text for a version mismatch. */
#define LB_INCOMPATIBLE "incompatible lumbung and lumbungd"

#endif
