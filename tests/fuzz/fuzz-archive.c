/* fuzz-archive.c - `lumbung backup --archive`: a tar, zip, cpio, ... file
 * (any filter and format libarchive reads, as tools/backup.c configures it)
 * turned member by member into manifest entries (lib/ingest.c), encoded as
 * the client sends them and decoded as the daemon reads them.
 *
 * Input: the archive.  Member data is read to the end (at most 1 MiB per
 * member, 8 MiB in all, to keep a compression bomb from timing out) as the
 * client does when it streams a file. */
#include "fuzz.h"
#include "buf.h"
#include "ingest.h"
#include "manifest.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER_MAX (1u << 20)
#define TOTAL_MAX (8u << 20)

/* What the daemon gets: the entry must encode and decode. */
static void send_and_receive(const struct lb_entry *e)
{
	struct lb_buf b;
	lb_buf_init(&b);
	lb_entry_encode(&b, e);
	if (!b.err) {
		struct lb_rd rd;
		struct lb_entry d;
		lb_rd_init(&rd, b.p, b.len);
		if (lb_entry_decode(&rd, &d) < 0 || rd.p != rd.end || strcmp(d.path, e->path) != 0)
			abort();
		lb_entry_clear(&d);
	}
	lb_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct archive *a = archive_read_new();
	if (!a)
		abort();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_memory(a, data, size) != ARCHIVE_OK) {
		archive_read_free(a);
		return 0;
	}
	struct archive_entry *ae;
	int ar;
	uint64_t total = 0;
	while ((ar = archive_read_next_header(a, &ae)) != ARCHIVE_EOF && ar >= ARCHIVE_WARN) {
		char clean[8192], link[4096];
		const char *name = archive_entry_pathname(ae);
		if (!name || lb_ingest_clean_path(name, clean, sizeof(clean)) != 0)
			continue;
		/* As send_member does. */
		const char *hl = archive_entry_hardlink(ae);
		if (hl && archive_entry_filetype(ae) == 0)
			archive_entry_set_filetype(ae, AE_IFREG);
		struct lb_entry e;
		struct lb_xattr xa[256];
		char *acl_a, *acl_d;
		if (lb_ingest_entry(ae, clean, &e) < 0)
			continue;
		lb_ingest_meta(ae, &e, xa, sizeof(xa) / sizeof(xa[0]), &acl_a, &acl_d);
		int ok = 1;
		if (hl) {
			ok = lb_ingest_clean_path(hl, link, sizeof(link)) == 0;
			e.type = LB_FT_HARDLINK;
			e.link = link;
			e.size = 0;
		}
		if (ok)
			send_and_receive(&e);
		free(acl_a);
		free(acl_d);
		if (e.type == LB_FT_REG) {
			const void *buf;
			size_t len;
			int64_t off;
			uint64_t member = 0;
			while (member < MEMBER_MAX && total < TOTAL_MAX &&
			       archive_read_data_block(a, &buf, &len, &off) == ARCHIVE_OK) {
				member += len;
				total += len;
			}
		}
	}
	archive_read_free(a);
	return 0;
}
