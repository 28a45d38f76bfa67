/* The sparse offset and time index of a segment: in-memory chunks in on-disk layout, lookups by offset, time
 * and position, and loading with validation. The format is written down in index.h. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/base/assert.h"
#include "broker/storage/index.h"

_Static_assert(SL_INDEX_ENTRY_BYTES == 8, ".index entry is u32 + u32");
_Static_assert(SL_TIMEINDEX_ENTRY_BYTES == 12, ".timeindex entry is i64 + u32");

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

void sl_index_init(struct sl_index *ix)
{
	memset(ix, 0, sizeof(*ix));
}

void sl_index_free(struct sl_index *ix)
{
	for (uint32_t i = 0; i < ix->chunk_count; i++) {
		free(ix->off_chunks[i]);
		free(ix->time_chunks[i]);
	}
	free(ix->off_chunks);
	free(ix->time_chunks);
	sl_index_init(ix);
}

static int grow(struct sl_index *ix)
{
	if (ix->chunk_count == ix->chunk_cap) {
		uint32_t cap = ix->chunk_cap ? ix->chunk_cap * 2 : 4;
		uint8_t **o = realloc(ix->off_chunks, cap * sizeof(*o));
		if (o == NULL)
			return -ENOMEM;
		ix->off_chunks = o;
		uint8_t **t = realloc(ix->time_chunks, cap * sizeof(*t));
		if (t == NULL)
			return -ENOMEM;
		ix->time_chunks = t;
		ix->chunk_cap = cap;
	}
	uint8_t *oc = malloc(SL_INDEX_CHUNK_ENTRIES * SL_INDEX_ENTRY_BYTES);
	uint8_t *tc = malloc(SL_INDEX_CHUNK_ENTRIES * SL_TIMEINDEX_ENTRY_BYTES);
	if (oc == NULL || tc == NULL) {
		free(oc);
		free(tc);
		return -ENOMEM;
	}
	ix->off_chunks[ix->chunk_count] = oc;
	ix->time_chunks[ix->chunk_count] = tc;
	ix->chunk_count++;
	return 0;
}

static uint8_t *off_at(const struct sl_index *ix, uint32_t i)
{
	return ix->off_chunks[i / SL_INDEX_CHUNK_ENTRIES] + (i % SL_INDEX_CHUNK_ENTRIES) * SL_INDEX_ENTRY_BYTES;
}

static uint8_t *time_at(const struct sl_index *ix, uint32_t i)
{
	return ix->time_chunks[i / SL_INDEX_CHUNK_ENTRIES] + (i % SL_INDEX_CHUNK_ENTRIES) * SL_TIMEINDEX_ENTRY_BYTES;
}

int sl_index_add(struct sl_index *ix, const struct sl_index_entry *e)
{
	SL_ASSERT(e->rel_offset != SL_INDEX_SEAL_REL);
	if (ix->entry_count > 0) {
		struct sl_index_entry last;
		sl_index_get(ix, ix->entry_count - 1, &last);
		SL_ASSERT(e->rel_offset > last.rel_offset && e->position > last.position);
		SL_ASSERT(e->max_timestamp_before >= last.max_timestamp_before);
	}
	if (ix->entry_count == ix->chunk_count * SL_INDEX_CHUNK_ENTRIES) {
		int rc = grow(ix);
		if (rc < 0)
			return rc;
	}
	uint32_t i = ix->entry_count;
	put32(off_at(ix, i), e->rel_offset);
	put32(off_at(ix, i) + 4, e->position);
	put64(time_at(ix, i), (uint64_t)e->max_timestamp_before);
	put32(time_at(ix, i) + 8, e->rel_offset);
	ix->entry_count++;
	return 0;
}

void sl_index_get(const struct sl_index *ix, uint32_t i, struct sl_index_entry *out)
{
	SL_ASSERT(i < ix->entry_count);
	out->rel_offset = get32(off_at(ix, i));
	out->position = get32(off_at(ix, i) + 4);
	out->max_timestamp_before = (int64_t)get64(time_at(ix, i));
}

void sl_index_truncate(struct sl_index *ix, uint32_t count)
{
	if (count < ix->entry_count)
		ix->entry_count = count;
}

/* Binary search for the last entry whose key is <= (or <, for strict) the target. */
#define LAST_AT_OR_BELOW(ix, key_of, target, strict)                                                  \
	do {                                                                                          \
		int64_t lo = 0, hi = (int64_t)(ix)->entry_count - 1, found = -1;                      \
		while (lo <= hi) {                                                                    \
			int64_t mid = lo + (hi - lo) / 2;                                             \
			int ok = (strict) ? key_of(ix, mid) < (target) : key_of(ix, mid) <= (target); \
			if (ok) {                                                                     \
				found = mid;                                                          \
				lo = mid + 1;                                                         \
			} else {                                                                      \
				hi = mid - 1;                                                         \
			}                                                                             \
		}                                                                                     \
		return found;                                                                         \
	} while (0)

static uint32_t rel_of(const struct sl_index *ix, int64_t i)
{
	return get32(off_at(ix, (uint32_t)i));
}

static uint32_t pos_of(const struct sl_index *ix, int64_t i)
{
	return get32(off_at(ix, (uint32_t)i) + 4);
}

static int64_t ts_of(const struct sl_index *ix, int64_t i)
{
	return (int64_t)get64(time_at(ix, (uint32_t)i));
}

int64_t sl_index_find_offset(const struct sl_index *ix, uint32_t rel)
{
	LAST_AT_OR_BELOW(ix, rel_of, rel, 0);
}

int64_t sl_index_find_time(const struct sl_index *ix, int64_t ts)
{
	LAST_AT_OR_BELOW(ix, ts_of, ts, 1);
}

int64_t sl_index_find_position(const struct sl_index *ix, uint64_t pos)
{
	LAST_AT_OR_BELOW(ix, pos_of, pos, 0);
}

int sl_index_iov(const struct sl_index *ix, int time, uint32_t from, uint32_t to, struct iovec *iov, int iov_max,
                 uint32_t *to_out)
{
	SL_ASSERT(from <= to && to <= ix->entry_count);
	size_t entry_bytes = time ? SL_TIMEINDEX_ENTRY_BYTES : SL_INDEX_ENTRY_BYTES;
	int n = 0;
	uint32_t i = from;
	while (i < to && n < iov_max) {
		uint32_t chunk_end = (i / SL_INDEX_CHUNK_ENTRIES + 1) * SL_INDEX_CHUNK_ENTRIES;
		uint32_t end = to < chunk_end ? to : chunk_end;
		iov[n].iov_base = time ? time_at(ix, i) : off_at(ix, i);
		iov[n].iov_len = (end - i) * entry_bytes;
		n++;
		i = end;
	}
	*to_out = i;
	return n;
}

void sl_index_seal_encode(uint8_t off[SL_INDEX_ENTRY_BYTES], uint8_t time[SL_TIMEINDEX_ENTRY_BYTES], uint32_t log_bytes,
                          int64_t max_timestamp, int compacted)
{
	put32(off, SL_INDEX_SEAL_REL);
	put32(off + 4, log_bytes);
	put64(time, (uint64_t)max_timestamp);
	put32(time + 8, compacted ? SL_INDEX_SEAL_COMPACTED : SL_INDEX_SEAL_REL);
}

/* The kind of seal a .timeindex seal entry's second field names, or SL_INDEX_UNSEALED. */
static int seal_kind(uint32_t v)
{
	return v == SL_INDEX_SEAL_REL ? SL_INDEX_SEALED : v == SL_INDEX_SEAL_COMPACTED ? SL_INDEX_SEALED_COMPACTED : 0;
}

static int read_all(int fd, uint8_t **buf_out, size_t *len_out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	size_t len = (size_t)st.st_size;
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	*buf_out = buf;
	*len_out = len;
	return 0;
}

int sl_index_load(struct sl_index *ix, int off_fd, int time_fd, uint64_t log_bytes, int *sealed_out,
                  int64_t *seal_max_ts_out)
{
	uint8_t *ob = NULL, *tb = NULL;
	size_t olen = 0, tlen = 0;
	*sealed_out = 0;
	int rc = read_all(off_fd, &ob, &olen);
	if (rc == 0)
		rc = read_all(time_fd, &tb, &tlen);
	if (rc < 0) {
		free(ob);
		return rc;
	}
	size_t n = olen / SL_INDEX_ENTRY_BYTES;
	if (tlen / SL_TIMEINDEX_ENTRY_BYTES < n)
		n = tlen / SL_TIMEINDEX_ENTRY_BYTES;
	sl_index_truncate(ix, 0);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const uint8_t *o = ob + i * SL_INDEX_ENTRY_BYTES;
		const uint8_t *t = tb + i * SL_TIMEINDEX_ENTRY_BYTES;
		struct sl_index_entry e = {get32(o), get32(o + 4), (int64_t)get64(t)};
		if (e.rel_offset == SL_INDEX_SEAL_REL) {
			if (seal_kind(get32(t + 8)) != 0 && e.position == log_bytes && i + 1 == n) {
				*sealed_out = seal_kind(get32(t + 8));
				*seal_max_ts_out = e.max_timestamp_before;
			}
			break;
		}
		if (get32(t + 8) != e.rel_offset || e.position >= log_bytes)
			break;
		if (ix->entry_count > 0) {
			struct sl_index_entry last;
			sl_index_get(ix, ix->entry_count - 1, &last);
			if (e.rel_offset <= last.rel_offset || e.position <= last.position ||
			    e.max_timestamp_before < last.max_timestamp_before)
				break;
		}
		rc = sl_index_add(ix, &e);
	}
	free(ob);
	free(tb);
	return rc;
}

int sl_index_read_seal(int off_fd, int time_fd, uint64_t log_bytes, int64_t *max_ts_out, uint64_t *last_pos_out)
{
	struct stat os, ts;
	if (fstat(off_fd, &os) < 0 || fstat(time_fd, &ts) < 0)
		return -errno;
	if (os.st_size < SL_INDEX_ENTRY_BYTES || ts.st_size < SL_TIMEINDEX_ENTRY_BYTES ||
	    os.st_size % SL_INDEX_ENTRY_BYTES != 0 || ts.st_size % SL_TIMEINDEX_ENTRY_BYTES != 0 ||
	    os.st_size / SL_INDEX_ENTRY_BYTES != ts.st_size / SL_TIMEINDEX_ENTRY_BYTES)
		return 0;
	uint8_t o[SL_INDEX_ENTRY_BYTES], t[SL_TIMEINDEX_ENTRY_BYTES];
	if (pread(off_fd, o, sizeof(o), os.st_size - SL_INDEX_ENTRY_BYTES) != (ssize_t)sizeof(o) ||
	    pread(time_fd, t, sizeof(t), ts.st_size - SL_TIMEINDEX_ENTRY_BYTES) != (ssize_t)sizeof(t))
		return -EIO;
	int kind = seal_kind(get32(t + 8));
	if (get32(o) != SL_INDEX_SEAL_REL || get32(o + 4) != log_bytes || kind == 0)
		return 0;
	*max_ts_out = (int64_t)get64(t);
	*last_pos_out = 0;
	if (os.st_size >= 2 * SL_INDEX_ENTRY_BYTES) {
		if (pread(off_fd, o, sizeof(o), os.st_size - 2 * SL_INDEX_ENTRY_BYTES) != (ssize_t)sizeof(o))
			return -EIO;
		if (get32(o + 4) >= log_bytes)
			return 0;
		*last_pos_out = get32(o + 4);
	}
	return kind;
}
