/* snapshot.c - snapshot head encoding; layout in format.h. */
#include "config.h"

#include "snapshot.h"
#include "buf.h"
#include "util.h"

#include <stdio.h>

#define HEAD_MAX_TAGS 64
#define HEAD_MAX_TREE (1u << 24)

int lb_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > LB_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			 (i > 0 && (c == '_' || c == '-' || c == '.'));
		if (!ok)
			return 0;
	}
	return 1;
}

char *lb_snap_id_hex(const uint8_t id[LB_SNAP_ID_LEN], char out[LB_SNAP_HEX])
{
	lb_hex(out, id, LB_SNAP_ID_LEN);
	return out;
}

void lb_snapshot_object_name(const struct lb_snapshot *s, char *buf, size_t len)
{
	char hex[LB_SNAP_HEX];
	snprintf(buf, len, "snapshots/%s/%s", s->tenant, lb_snap_id_hex(s->id, hex));
}

int lb_snapshot_encode(struct lb_snapshot *s, struct lb_buf *out)
{
	struct lb_buf body;
	lb_buf_init(&body);
	lb_buf_put_str(&body, s->tenant);
	lb_buf_put_str(&body, s->dataset);
	lb_buf_put_str(&body, s->host);
	lb_buf_put_sv(&body, s->time_ns);
	lb_buf_put_uv(&body, s->ntags);
	for (size_t i = 0; i < s->ntags; i++)
		lb_buf_put_str(&body, s->tags[i]);
	lb_buf_put_uv(&body, s->nentries);
	lb_buf_put_uv(&body, s->nfiles);
	lb_buf_put_uv(&body, s->logical);
	lb_buf_put_uv(&body, s->new_chunks);
	lb_buf_put_uv(&body, s->new_stored);
	lb_buf_put_uv(&body, s->tree_bytes);
	lb_buf_put_uv(&body, s->ntree);
	for (size_t i = 0; i < s->ntree; i++) {
		lb_buf_put(&body, s->tree[i].id.b, LB_ID_LEN);
		lb_buf_put_uv(&body, s->tree[i].size);
		lb_buf_put_str(&body, s->tree[i].first_path);
	}
	if (body.err || body.len > UINT32_MAX) {
		lb_buf_free(&body);
		return -ENOMEM;
	}
	lb_buf_reset(out);
	lb_buf_put(out, LB_SNAP_MAGIC, 8);
	lb_buf_put_u32le(out, LB_FORMAT_VERSION);
	lb_buf_put_u32le(out, (uint32_t)body.len);
	lb_buf_put(out, body.p, body.len);
	lb_buf_free(&body);
	if (out->err)
		return out->err;
	struct lb_id h;
	lb_sha256(out->p, out->len, &h);
	lb_buf_put(out, h.b, LB_ID_LEN);
	memcpy(s->id, h.b, LB_SNAP_ID_LEN);
	return out->err;
}

int lb_snapshot_decode(const uint8_t *data, size_t len, struct lb_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	if (len < 16 + LB_ID_LEN || memcmp(data, LB_SNAP_MAGIC, 8) != 0)
		return -EBADMSG;
	if (lb_get32(data + 8) > LB_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	uint32_t blen = lb_get32(data + 12);
	if ((uint64_t)blen + 16 + LB_ID_LEN != len)
		return -EBADMSG;
	struct lb_id h;
	lb_sha256(data, len - LB_ID_LEN, &h);
	if (memcmp(h.b, data + len - LB_ID_LEN, LB_ID_LEN) != 0)
		return -EBADMSG;
	memcpy(s->id, h.b, LB_SNAP_ID_LEN);
	struct lb_rd rd;
	lb_rd_init(&rd, data + 16, blen);
	s->tenant = lb_rd_strdup(&rd, LB_NAME_MAX);
	s->dataset = lb_rd_strdup(&rd, LB_NAME_MAX);
	s->host = lb_rd_strdup(&rd, 255);
	s->time_ns = lb_rd_sv(&rd);
	size_t nt = (size_t)lb_rd_uv_max(&rd, HEAD_MAX_TAGS);
	if (nt && !rd.err) {
		s->tags = calloc(nt, sizeof(char *));
		if (!s->tags)
			goto fail;
		s->ntags = nt;
		for (size_t i = 0; i < nt; i++)
			s->tags[i] = lb_rd_strdup(&rd, 255);
	}
	s->nentries = lb_rd_uv(&rd);
	s->nfiles = lb_rd_uv(&rd);
	s->logical = lb_rd_uv(&rd);
	s->new_chunks = lb_rd_uv(&rd);
	s->new_stored = lb_rd_uv(&rd);
	s->tree_bytes = lb_rd_uv(&rd);
	size_t n = (size_t)lb_rd_uv_max(&rd, LB_MIN(HEAD_MAX_TREE, lb_rd_left(&rd) / (LB_ID_LEN + 2)));
	if (n && !rd.err) {
		s->tree = calloc(n, sizeof(*s->tree));
		if (!s->tree)
			goto fail;
		s->ntree = n;
		for (size_t i = 0; i < n && !rd.err; i++) {
			const uint8_t *id = lb_rd_raw(&rd, LB_ID_LEN);
			if (id)
				memcpy(s->tree[i].id.b, id, LB_ID_LEN);
			s->tree[i].size = (uint32_t)lb_rd_uv_max(&rd, UINT32_MAX);
			s->tree[i].first_path = lb_rd_strdup(&rd, 4095);
		}
	}
	if (rd.err || rd.p != rd.end || !s->tenant || !s->dataset || !s->host || !lb_name_valid(s->tenant) ||
	    !lb_name_valid(s->dataset))
		goto fail;
	for (size_t i = 0; i < s->ntags; i++)
		if (!s->tags[i])
			goto fail;
	return 0;
fail:
	lb_snapshot_clear(s);
	return -EBADMSG;
}

void lb_snapshot_clear(struct lb_snapshot *s)
{
	free(s->tenant);
	free(s->dataset);
	free(s->host);
	for (size_t i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	lb_tree_refs_free(s->tree, s->ntree);
	memset(s, 0, sizeof(*s));
}

void lb_snapshot_free(struct lb_snapshot *s)
{
	if (!s)
		return;
	lb_snapshot_clear(s);
	free(s);
}

struct lb_snapshot *lb_snapshot_dup(const struct lb_snapshot *s)
{
	struct lb_snapshot copy = *s;
	struct lb_buf b;
	lb_buf_init(&b);
	struct lb_snapshot *out = calloc(1, sizeof(*out));
	if (!out || lb_snapshot_encode(&copy, &b) < 0 || lb_snapshot_decode(b.p, b.len, out) < 0) {
		free(out);
		out = NULL;
	}
	lb_buf_free(&b);
	return out;
}
