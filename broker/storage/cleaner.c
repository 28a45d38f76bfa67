/* The log cleaner (see cleaner.h for who calls what on which thread): for a compacted partition, rewrite its sealed
 * segments keeping what a replay needs, then swap the new segments in with renames.
 *
 * WHAT IS KEPT
 *
 * A replay applies a key's records in offset order with the applier's rules (consumer/sync/apply.h, rules 4-6):
 * a versioned record applies when its version is above the state's (a new key: always), an unversioned one always
 * applies and leaves the state's version as it was (0 for a new key), a delete is a record like any other whose
 * state reads "deleted". Pass 1 runs that state machine for every key, remembering per key
 *   W  the winner: the last record that applied;
 *   M  the record whose version the state carries (W itself, or an earlier one when W has no version).
 * Among records of the same highest version the last one (highest offset) wins, as the issue asks: the applier
 * counts the later one a duplicate, which is the same state whenever a source gives one version one content.
 * Pass 2 keeps exactly W and M of each key. Replaying M then W reaches the state the whole history reached, with
 * the same version, so a late record appended afterwards is judged the same way.
 *
 * TOMBSTONES (op delete, or a null value: Kafka's tombstone)
 *   A batch that keeps a tombstone gets a delete horizon the first time the cleaner sees it: now +
 *   delete.retention.ms, in baseTimestamp with attribute bit 6 (Kafka's KIP-534 format, proto/batch.c). A
 *   tombstone W goes, with its M, once (1) its horizon passed, (2) every group with a commit on the partition has
 *   committed past it, and (3) no record of its key lies after the cleaned range: such a record, stale now, would
 *   apply on a replay without the tombstone. A record that arrives after a tombstone went is judged without it,
 *   as the applier's purge does (apply.h, rule 6): delete.retention.ms bounds how late a delete can be overtaken.
 *
 * OFFSETS
 *   Records keep their offsets; a rewritten batch keeps its baseOffset and lastOffsetDelta (batch.c, invariant
 *   10), and a batch whose records all went is dropped, except the last batch of the range, which stays (empty if
 *   need be) so that the range still ends where it did and a reader past the last kept record moves on. A new
 *   segment is named after the first old segment it replaces; old segments are merged while their sizes add up to
 *   at most segment.bytes. Each new segment covers [its base, the next one's base): the gaps are read through.
 *
 * THE SWAP, in the partition folder (every step a crash can stop; recovery.c, rules 6-8, says what the next open
 * does with what it finds):
 *   1. write <base>.log.cleaned, .index.cleaned, .timeindex.cleaned for every new segment; fdatasync each
 *   2. write the manifest cleaner.swap (temp, fsync, rename, fsync the folder)     <- the commit point
 *   3. rename each new file over its final name (.index and .timeindex first, .log last)
 *   4. remove the files of old segments that no new segment replaces; fsync the folder
 *   5. remove the manifest; fsync the folder
 * The manifest, ASCII, fields separated by one space:
 *   line 1   "synclog-swap 1 <old count> <new count>"
 *   line 2   the base offsets of the old segments replaced, ascending
 *   line 3   the base offsets of the new segments, ascending (each one of line 2's)
 *
 * INVARIANTS
 *   1. Before the commit point the old files are untouched; after it, the next open completes the swap. The
 *      folder holds the old set or the new set, never a mix, as far as a reader after a restart can tell.
 *   2. Every byte of a new segment is fsynced before the manifest is written.
 *   3. Every batch read for a rewrite has its CRC checked: a damaged batch stops the clean, it is never rewritten
 *      with a fresh CRC.
 *   4. A new segment holds at least one batch and covers exactly the offsets of the old segments it replaces.
 *   5. The loop keeps serving the old segments until sl_clean_finish; their descriptors stay open until the loop's
 *      ring has submitted what it prepared (cleaner.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "broker/storage/cleaner.h"
#include "broker/storage/log_impl.h"
#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "proto/batch.h"
#include "proto/crc32c.h"

void (*sl_clean_step_hook)(enum sl_clean_step step);

struct clean_seg_in {
	int64_t base_offset;
	int64_t next_offset; /* one past its last offset (the next segment's base for a sealed one) */
	uint64_t bytes;      /* visible bytes at prepare */
	int compacted;
};

/* Reads go this much at a time; writes leave in chunks of this. */
#define IO_CHUNK_BYTES        (1u << 20)
/* The key map starts this small and doubles: a partition of a few keys costs a few KiB. */
#define MAP_SLOTS_INITIAL     4096u
/* Open addressing stays fast below this load (percent). */
#define MAP_LOAD_MAX_PCT      75u
/* A throttled clean sleeps at most this long at once, so a cancel is seen soon. */
#define THROTTLE_SLEEP_NS_MAX (50 * 1000000LL)

static void step(enum sl_clean_step s)
{
	if (sl_clean_step_hook != NULL)
		sl_clean_step_hook(s);
}

/* ---- the key map ---- */

enum {
	KEY_W_TOMBSTONE = 1, /* the winner is a tombstone */
	KEY_W_EXPIRED = 2,   /* ... past its horizon and behind every group: it may go, unless KEY_BEYOND */
	KEY_BEYOND = 4,      /* a record of the key lies after the cleaned range */
};

struct key_entry {
	uint64_t h1, h2; /* XXH3-128 of the key; both 0: an empty slot (a key hashing there is stored with h2 = 1) */
	int64_t w_offset;
	int64_t m_offset; /* -1: the state carries no record's version (0, from an unversioned first record) */
	int64_t version;
	uint32_t flags;
};

struct key_map {
	struct key_entry *slots;
	uint64_t slot_count; /* a power of two */
	uint64_t used;
	uint64_t slots_max; /* from map_bytes_max */
};

static int map_init(struct key_map *m, uint64_t bytes_max)
{
	memset(m, 0, sizeof(*m));
	m->slots_max = MAP_SLOTS_INITIAL;
	while (m->slots_max * 2 * sizeof(struct key_entry) <= bytes_max)
		m->slots_max *= 2;
	m->slot_count = MAP_SLOTS_INITIAL;
	m->slots = calloc(m->slot_count, sizeof(*m->slots));
	return m->slots ? 0 : -ENOMEM;
}

static void map_free(struct key_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static void map_clear(struct key_map *m)
{
	memset(m->slots, 0, m->slot_count * sizeof(*m->slots));
	m->used = 0;
}

static void key_hash(const uint8_t *key, int32_t len, uint64_t *h1, uint64_t *h2)
{
	XXH128_hash_t h = XXH3_128bits(key, (size_t)len);
	*h1 = h.high64;
	*h2 = h.low64;
	if (*h1 == 0 && *h2 == 0)
		*h2 = 1;
}

static struct key_entry *map_slot(const struct key_map *m, uint64_t h1, uint64_t h2)
{
	uint64_t mask = m->slot_count - 1;
	for (uint64_t i = h2 & mask;; i = (i + 1) & mask) {
		struct key_entry *e = &m->slots[i];
		if ((e->h1 == h1 && e->h2 == h2) || (e->h1 == 0 && e->h2 == 0))
			return e;
	}
}

static struct key_entry *map_find(const struct key_map *m, uint64_t h1, uint64_t h2)
{
	struct key_entry *e = map_slot(m, h1, h2);
	return e->h1 == 0 && e->h2 == 0 ? NULL : e;
}

static int map_grow(struct key_map *m)
{
	uint64_t count = m->slot_count * 2;
	struct key_entry *slots = calloc(count, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	struct key_map n = {slots, count, m->used, m->slots_max};
	for (uint64_t i = 0; i < m->slot_count; i++) {
		const struct key_entry *e = &m->slots[i];
		if (e->h1 != 0 || e->h2 != 0)
			*map_slot(&n, e->h1, e->h2) = *e;
	}
	free(m->slots);
	*m = n;
	return 0;
}

/* The entry of a key, inserted (zeroed but for the hash) when new and insert != 0. NULL when absent and not
 * inserted; *full_out is set when the map may not grow further. */
static struct key_entry *map_get(struct key_map *m, uint64_t h1, uint64_t h2, int insert, int *new_out, int *full_out)
{
	*new_out = 0;
	struct key_entry *e = map_slot(m, h1, h2);
	if (e->h1 != 0 || e->h2 != 0 || !insert)
		return e->h1 == 0 && e->h2 == 0 ? NULL : e;
	if ((m->used + 1) * 100 > m->slot_count * MAP_LOAD_MAX_PCT) {
		if (m->slot_count >= m->slots_max || map_grow(m) < 0) {
			*full_out = 1;
			return NULL;
		}
		e = map_slot(m, h1, h2);
	}
	memset(e, 0, sizeof(*e));
	e->h1 = h1;
	e->h2 = h2;
	m->used++;
	*new_out = 1;
	return e;
}

/* ---- reading a segment batch by batch ---- */

struct reader {
	int fd;
	uint64_t pos; /* file position of the next batch */
	uint64_t end;
	uint8_t *buf;
	size_t cap;
	uint64_t buf_pos; /* file position of buf[0] */
	size_t buf_len;
};

/* The batch at r->pos: 1 with *batch, *len (valid until the next call), 0 at the end, or a negative errno
 * (-EUCLEAN for bytes that are no batch; *why says what). */
static int reader_next(struct reader *r, const uint8_t **batch, size_t *len, uint64_t *read_bytes, const char **why)
{
	if (r->pos >= r->end)
		return 0;
	for (int round = 0;; round++) {
		size_t at = (size_t)(r->pos - r->buf_pos);
		struct sl_batch_header h;
		int parsed = r->pos >= r->buf_pos && r->buf_len >= at + SL_BATCH_HEADER_BYTES
		                     ? sl_batch_header_parse(r->buf + at, r->buf_len - at, &h)
		                     : -EAGAIN;
		if (parsed == 0 && r->buf_len - at >= sl_batch_total_bytes(&h)) {
			if (r->pos + sl_batch_total_bytes(&h) > r->end) {
				*why = "batch extends past the segment's end";
				return -EUCLEAN;
			}
			*batch = r->buf + at;
			*len = sl_batch_total_bytes(&h);
			r->pos += *len;
			return 1;
		}
		if (parsed != 0 && parsed != -EAGAIN) {
			*why = "invalid batch header";
			return -EUCLEAN;
		}
		if (round > 0 && r->buf_pos == r->pos && r->buf_len == (size_t)(r->end - r->pos)) {
			*why = "segment ends inside a batch";
			return -EUCLEAN;
		}
		size_t want = parsed == 0 ? sl_batch_total_bytes(&h) : SL_BATCH_HEADER_BYTES;
		if (want > r->cap) {
			uint8_t *nb = realloc(r->buf, want);
			if (nb == NULL)
				return -ENOMEM;
			r->buf = nb;
			r->cap = want;
		}
		uint64_t left = r->end - r->pos;
		size_t n = left < r->cap ? (size_t)left : r->cap;
		size_t done = 0;
		while (done < n) {
			ssize_t got = pread(r->fd, r->buf + done, n - done, (off_t)(r->pos + done));
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -errno;
			if (got == 0) {
				*why = "segment file shorter than its size";
				return -EUCLEAN;
			}
			done += (size_t)got;
		}
		*read_bytes += n;
		r->buf_pos = r->pos;
		r->buf_len = n;
	}
}

/* ---- the run's state ---- */

struct run {
	struct sl_clean_job *job;
	struct key_map map;
	struct reader rd;
	uint8_t *scratch; /* decompressed records */
	size_t scratch_cap;
	uint8_t *keep; /* one flag per record of the batch at hand */
	size_t keep_cap;
	struct sl_batch_builder builder;
	int64_t start_ns;
	uint64_t io_bytes; /* read + written, for the throttle */
	/* The segment being written. */
	struct sl_segment *out;
	uint8_t *wbuf;
	size_t wbuf_len;
	uint64_t out_pos;
	uint32_t range; /* segments of in[] being replaced in this attempt */
};

static int fail(struct run *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct run *r, int rc, const char *fmt, ...)
{
	struct sl_clean_job *job = r->job;
	if (job->error[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		int n = snprintf(job->error, sizeof(job->error), "partition %s: ", job->dir);
		if (n > 0 && (size_t)n < sizeof(job->error))
			vsnprintf(job->error + n, sizeof(job->error) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int canceled(const struct run *r)
{
	return atomic_load(&r->job->cancel) != 0;
}

/* Account n bytes of I/O and sleep as long as the rate asks. Returns -ECANCELED when asked to stop meanwhile. */
static int throttle(struct run *r, uint64_t n)
{
	r->io_bytes += n;
	uint64_t rate = r->job->params.bytes_per_s_max;
	if (rate == 0)
		return canceled(r) ? -ECANCELED : 0;
	for (;;) {
		if (canceled(r))
			return -ECANCELED;
		int64_t due_ns = (int64_t)((double)r->io_bytes * 1e9 / (double)rate);
		int64_t wait_ns = due_ns - (sl_clock_mono_ns() - r->start_ns);
		if (wait_ns <= 0)
			return 0;
		if (wait_ns > THROTTLE_SLEEP_NS_MAX)
			wait_ns = THROTTLE_SLEEP_NS_MAX;
		struct timespec ts = {wait_ns / 1000000000, wait_ns % 1000000000};
		nanosleep(&ts, NULL);
	}
}

static int open_segment_file(struct run *r, const struct clean_seg_in *s)
{
	char name[SL_SEGMENT_NAME_BYTES];
	sl_segment_name(name, s->base_offset, ".log");
	int fd = openat(r->job->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(r, -errno, "cannot open segment %s for cleaning: %s", name, strerror(errno));
	free(r->rd.buf);
	r->rd = (struct reader){.fd = fd, .end = s->bytes};
	return 0;
}

static void close_segment_file(struct run *r)
{
	if (r->rd.fd > 0)
		close(r->rd.fd);
	r->rd.fd = -1;
}

/* The next batch of segment s (opened by open_segment_file), its bytes counted as read and throttled: 1 with the
 * batch, 0 at the segment's end, or a negative errno (a damaged segment, -EUCLEAN, fails the run saying where). */
static int segment_next_batch(struct run *r, const struct clean_seg_in *s, const uint8_t **batch, size_t *len)
{
	uint64_t read_bytes = 0;
	const char *why = NULL;
	int rc = reader_next(&r->rd, batch, len, &read_bytes, &why);

	if (read_bytes > 0 && rc >= 0) {
		r->job->stats.bytes_read += read_bytes;
		int t = throttle(r, read_bytes);
		if (t < 0)
			rc = t;
	}
	if (rc == -EUCLEAN)
		fail(r, rc, "segment %020" PRId64 ".log at byte %" PRIu64 ": %s; the clean stops", s->base_offset,
		     r->rd.pos, why);
	return rc;
}

/* Start iterating the records of batch; grows the scratch buffer for a zstd batch as needed. */
static int records_open(struct run *r, struct sl_record_iter *it, const uint8_t *batch, size_t len)
{
	for (;;) {
		int rc = sl_record_iter_init(it, batch, len, r->scratch, r->scratch_cap);
		if (rc != -ENOBUFS)
			return rc;
		size_t cap = r->scratch_cap ? r->scratch_cap * 2 : IO_CHUNK_BYTES;
		if (r->scratch_cap >= SL_BATCH_BYTES_MAX)
			return -EBADMSG;
		uint8_t *p = realloc(r->scratch, cap);
		if (p == NULL)
			return -ENOMEM;
		r->scratch = p;
		r->scratch_cap = cap;
	}
}

/* A delete, or an upsert of a null value (what a Kafka client's tombstone is). A thin event (op changed) has a
 * null value too but deletes nothing: it is the key's newest record, kept like an upsert. */
static int is_tombstone(const struct sl_record *rec)
{
	return rec->op == SL_OP_DELETE || (rec->op == SL_OP_UPSERT && rec->value_len < 0);
}

/* The delete horizon a batch has, or would get from this clean. */
static int64_t batch_horizon(const struct run *r, const struct sl_batch_header *h)
{
	if (h->attributes & SL_BATCH_ATTR_DELETE_HORIZON)
		return h->base_timestamp;
	const struct sl_clean_params *p = &r->job->params;
	return p->delete_retention_ms > INT64_MAX - p->now_ms ? INT64_MAX : p->now_ms + p->delete_retention_ms;
}

static int batch_is_data(const struct sl_batch_header *h)
{
	return !(h->attributes & SL_BATCH_ATTR_CONTROL);
}

/* ---- pass 1: the state of every key ---- */

/* One record through the replay state machine of the top of the file. */
static void key_step(struct run *r, struct key_entry *e, int fresh, const struct sl_record *rec, int64_t horizon_ms)
{
	int win;
	if (fresh) {
		win = 1;
		e->version = rec->version != SL_VERSION_NONE ? rec->version : 0;
		e->m_offset = rec->version != SL_VERSION_NONE ? rec->offset : -1;
	} else if (rec->version != SL_VERSION_NONE) {
		win = rec->version > e->version ||
		      (rec->version == e->version && e->m_offset >= 0 && e->m_offset == e->w_offset);
		if (win) {
			e->version = rec->version;
			e->m_offset = rec->offset;
		}
	} else {
		win = 1;
	}
	if (!win)
		return;
	e->w_offset = rec->offset;
	e->flags &= ~(uint32_t)(KEY_W_TOMBSTONE | KEY_W_EXPIRED);
	if (is_tombstone(rec)) {
		e->flags |= KEY_W_TOMBSTONE;
		if (horizon_ms <= r->job->params.now_ms && r->job->params.groups_min_committed > rec->offset)
			e->flags |= KEY_W_EXPIRED;
	}
}

/* Map every key of in[0..in_count). Keys are inserted only from the first r->range segments; later records only
 * move the state of keys already there. Returns 0, 1 when the map filled up inside segment *full_at (the caller
 * retries with fewer segments), or a negative errno. */
static int map_pass(struct run *r, uint32_t *full_at)
{
	struct sl_clean_job *job = r->job;
	map_clear(&r->map);
	for (uint32_t i = 0; i < job->in_count; i++) {
		const struct clean_seg_in *s = &job->in[i];
		int in_range = i < r->range;
		if (s->bytes == 0)
			continue;
		int rc = open_segment_file(r, s);
		if (rc < 0)
			return rc;
		for (;;) {
			const uint8_t *batch;
			size_t len;
			rc = segment_next_batch(r, s, &batch, &len);
			if (rc < 0) {
				close_segment_file(r);
				return rc;
			}
			if (rc == 0)
				break;
			struct sl_record_iter it;
			rc = records_open(r, &it, batch, len);
			if (rc < 0) {
				close_segment_file(r);
				return fail(r, -EUCLEAN,
				            "segment %020" PRId64 ".log: batch at offset %" PRId64
				            " does not decode; the clean stops",
				            s->base_offset, it.header.base_offset);
			}
			if (!batch_is_data(&it.header))
				continue;
			int64_t horizon = batch_horizon(r, &it.header);
			struct sl_record rec;
			while ((rc = sl_record_iter_next(&it, &rec)) == 1) {
				if (rec.key_len < 0)
					continue;
				uint64_t h1, h2;
				key_hash(rec.key, rec.key_len, &h1, &h2);
				int fresh = 0, full = 0;
				struct key_entry *e = map_get(&r->map, h1, h2, in_range, &fresh, &full);
				if (full) {
					close_segment_file(r);
					*full_at = i;
					return 1;
				}
				if (e == NULL)
					continue;
				key_step(r, e, fresh, &rec, horizon);
				if (!in_range)
					e->flags |= KEY_BEYOND;
			}
			if (rc < 0) {
				close_segment_file(r);
				return fail(r, -EUCLEAN,
				            "segment %020" PRId64 ".log: malformed record in the batch at offset "
				            "%" PRId64 "; the clean stops",
				            s->base_offset, it.header.base_offset);
			}
		}
		close_segment_file(r);
	}
	job->stats.keys = r->map.used;
	return 0;
}

/* ---- pass 2: writing the new segments ---- */

static int out_flush(struct run *r)
{
	size_t done = 0;
	while (done < r->wbuf_len) {
		ssize_t n = pwrite(r->out->log_fd, r->wbuf + done, r->wbuf_len - done, (off_t)(r->out_pos + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(r, -errno, "writing a cleaned segment failed: %s; the old segments stay",
			            strerror(errno));
		done += (size_t)n;
	}
	r->out_pos += done;
	r->job->stats.bytes_written += done;
	r->wbuf_len = 0;
	return throttle(r, done);
}

static int out_open(struct run *r, int64_t base)
{
	int rc = sl_segment_open_suffixed(r->job->dir_fd, base, SL_CLEAN_SUFFIX, 1, &r->out);
	if (rc < 0)
		return fail(r, rc, "cannot create a cleaned segment file: %s", strerror(-rc));
	r->out->compacted = 1;
	r->out->index_complete = 1;
	r->out_pos = 0;
	r->wbuf_len = 0;
	return 0;
}

/* Append one batch to the segment being written, indexing it like an append would (log.c, advance). */
static int out_append(struct run *r, const uint8_t *batch, size_t len)
{
	struct sl_segment *seg = r->out;
	struct sl_batch_header h;
	int rc = sl_batch_header_parse(batch, len, &h);
	SL_ASSERT(rc == 0 && sl_batch_total_bytes(&h) == len);
	if (h.base_offset - seg->base_offset >= (int64_t)SL_INDEX_SEAL_COMPACTED || seg->size + len > 0x7fffffffu)
		return fail(r, -EOVERFLOW, "a cleaned segment would pass 2 GiB or 2^32 offsets; lower segment.bytes");
	if (seg->size > 0 && seg->size - seg->last_indexed_pos >= r->job->index_interval_bytes) {
		struct sl_index_entry e = {(uint32_t)(h.base_offset - seg->base_offset), (uint32_t)seg->size,
		                           seg->max_timestamp};
		rc = sl_index_add(&seg->index, &e);
		if (rc < 0)
			return fail(r, rc, "out of memory for a cleaned segment's index");
		seg->last_indexed_pos = seg->size;
	}
	if (h.max_timestamp > seg->max_timestamp)
		seg->max_timestamp = h.max_timestamp;
	seg->size += len;
	while (len > 0) {
		size_t n = IO_CHUNK_BYTES - r->wbuf_len;
		if (n > len)
			n = len;
		memcpy(r->wbuf + r->wbuf_len, batch, n);
		r->wbuf_len += n;
		batch += n;
		len -= n;
		if (r->wbuf_len == IO_CHUNK_BYTES && (rc = out_flush(r)) < 0)
			return rc;
	}
	return 0;
}

/* Finish the segment being written: data, index and seal durable (invariant 2); it covers up to next_offset. */
static int out_close(struct run *r, int64_t next_offset)
{
	struct sl_segment *seg = r->out;
	int rc = out_flush(r);
	if (rc < 0)
		return rc;
	if (fdatasync(seg->log_fd) < 0)
		return fail(r, -errno, "fsync of a cleaned segment failed: %s", strerror(errno));
	seg->written_end = seg->synced_end = seg->size;
	rc = sl_segment_persist_index_sync(seg, 1);
	if (rc < 0)
		return fail(r, rc, "writing a cleaned segment's index failed: %s", strerror(-rc));
	seg->state = SL_SEG_SEALED;
	seg->next_offset = seg->visible_next_offset = next_offset;
	struct sl_clean_job *job = r->job;
	job->out[job->out_count++] = seg;
	job->stats.bytes_after += seg->size;
	r->out = NULL;
	return 0;
}

/* Remove what was written of this attempt (nothing was committed). */
static void out_discard(struct run *r)
{
	struct sl_clean_job *job = r->job;
	if (r->out != NULL) {
		job->out[job->out_count++] = r->out;
		r->out = NULL;
	}
	static const char *const exts[] = {".index", ".timeindex", ".log"};
	for (uint32_t i = 0; i < job->out_count; i++) {
		int64_t base = job->out[i]->base_offset;
		sl_segment_free(job->out[i]);
		for (int k = 0; k < 3; k++) {
			char name[SL_SEGMENT_NAME_BYTES + 16];
			sl_segment_name(name, base, exts[k]);
			strcat(name, SL_CLEAN_SUFFIX);
			unlinkat(job->dir_fd, name, 0);
		}
	}
	job->out_count = 0;
}

static int keep_reserve(struct run *r, int32_t count)
{
	if ((size_t)count <= r->keep_cap)
		return 0;
	uint8_t *k = realloc(r->keep, (size_t)count);
	if (k == NULL)
		return -ENOMEM;
	r->keep = k;
	r->keep_cap = (size_t)count;
	return 0;
}

/* Decide each record of one batch of the range and append what stays. last != 0: the range's last batch, which
 * stays even when empty. */
static int clean_batch(struct run *r, const struct clean_seg_in *s, const uint8_t *batch, size_t len, int last,
                       int64_t range_end)
{
	struct sl_clean_job *job = r->job;
	struct sl_batch_header h;
	int rc = sl_batch_header_parse(batch, len, &h);
	SL_ASSERT(rc == 0); /* reader_next parsed it */
	/* Invariant 3. The records' structure is checked as they are read below. */
	if (sl_crc32c(0, batch + SL_BATCH_CRC_START, len - SL_BATCH_CRC_START) != h.crc ||
	    h.record_count > h.last_offset_delta + 1)
		return fail(r, -EUCLEAN,
		            "segment %020" PRId64 ".log: batch at offset %" PRId64 " is damaged (CRC32C "
		            "mismatch or record count); the clean stops and the segment stays as it is",
		            s->base_offset, h.base_offset);
	if (!batch_is_data(&h) || h.record_count == 0)
		return out_append(r, batch, len);
	struct sl_record_iter it;
	rc = records_open(r, &it, batch, len);
	if (rc == 0)
		rc = keep_reserve(r, h.record_count);
	if (rc < 0)
		return fail(r, rc == -ENOMEM ? rc : -EUCLEAN,
		            "segment %020" PRId64 ".log: the batch at offset %" PRId64 " does not decode: %s",
		            s->base_offset, h.base_offset, strerror(-rc));
	int32_t kept = 0, n = 0;
	int tombstone_kept = 0;
	int64_t horizon = batch_horizon(r, &h);
	struct sl_record rec;
	while ((rc = sl_record_iter_next(&it, &rec)) == 1) {
		int keep = 1;
		if (rec.key_len >= 0) {
			uint64_t h1, h2;
			key_hash(rec.key, rec.key_len, &h1, &h2);
			const struct key_entry *e = map_find(&r->map, h1, h2);
			SL_ASSERT(e != NULL); /* pass 1 inserted every key of the range */
			keep = rec.offset == e->w_offset || rec.offset == e->m_offset;
			if (keep && (e->flags & KEY_W_EXPIRED) && !(e->flags & KEY_BEYOND) && e->w_offset < range_end) {
				keep = 0;
				if (rec.offset == e->w_offset)
					job->stats.tombstones_removed++;
			} else if (keep && rec.offset == e->w_offset && (e->flags & KEY_W_TOMBSTONE)) {
				job->stats.tombstones_kept++;
				if (horizon > job->params.now_ms) {
					if (horizon < job->stats.next_horizon_ms)
						job->stats.next_horizon_ms = horizon;
				} else if (!(e->flags & KEY_BEYOND) && rec.offset < job->stats.lowest_held_tombstone) {
					job->stats.lowest_held_tombstone = rec.offset;
				}
			}
		}
		if (keep && is_tombstone(&rec))
			tombstone_kept = 1;
		r->keep[n++] = (uint8_t)keep;
		kept += keep;
	}
	if (rc < 0 || n != h.record_count)
		return fail(r, -EUCLEAN, "segment %020" PRId64 ".log: malformed record in the batch at offset %" PRId64,
		            s->base_offset, h.base_offset);
	job->stats.records_read += (uint64_t)n;
	job->stats.records_removed += (uint64_t)(n - kept);
	int stamp = tombstone_kept && !(h.attributes & SL_BATCH_ATTR_DELETE_HORIZON);
	if (kept == n && !stamp)
		return out_append(r, batch, len);
	if (kept == 0 && !last)
		return 0;
	const uint8_t *nb;
	size_t nlen;
	rc = sl_batch_filter(&r->builder, batch, len, r->scratch, r->scratch_cap, r->keep, stamp ? horizon : INT64_MIN,
	                     &nb, &nlen);
	if (rc < 0)
		return fail(r, rc, "rewriting the batch at offset %" PRId64 " failed: %s", h.base_offset,
		            strerror(-rc));
	return out_append(r, nb, nlen);
}

/* Rewrite in[0..r->range) into new segments (job->out). */
static int write_pass(struct run *r)
{
	struct sl_clean_job *job = r->job;
	int64_t range_end = job->in[r->range - 1].next_offset;
	for (uint32_t i = 0; i < r->range; i++) {
		const struct clean_seg_in *s = &job->in[i];
		/* A new segment starts at an old one's base when the old sizes would pass segment.bytes; one that is
		 * still empty takes the next old segment in too (invariant 4). */
		if (r->out != NULL && r->out->size > 0 && r->out->size + s->bytes > job->segment_bytes_max) {
			int rc = out_close(r, s->base_offset);
			if (rc < 0)
				return rc;
		}
		if (r->out == NULL) {
			int rc = out_open(r, s->base_offset);
			if (rc < 0)
				return rc;
		}
		job->stats.bytes_before += s->bytes;
		job->stats.segments_before++;
		int rc = open_segment_file(r, s);
		if (rc < 0)
			return rc;
		for (;;) {
			const uint8_t *batch;
			size_t len;
			rc = segment_next_batch(r, s, &batch, &len);
			if (rc <= 0)
				break;
			int last = i + 1 == r->range && r->rd.pos == r->rd.end;
			rc = clean_batch(r, s, batch, len, last, range_end);
			if (rc < 0)
				break;
		}
		close_segment_file(r);
		if (rc < 0)
			return rc;
	}
	SL_ASSERT(r->out != NULL);
	int rc = out_close(r, range_end);
	job->stats.segments_after = job->out_count;
	return rc;
}

/* ---- the swap ---- */

static int manifest_write(struct run *r)
{
	struct sl_clean_job *job = r->job;
	size_t cap = 64 + (size_t)(r->range + job->out_count) * 22;
	char *text = malloc(cap);
	if (text == NULL)
		return -ENOMEM;
	size_t n = (size_t)snprintf(text, cap, "synclog-swap 1 %u %u\n", r->range, job->out_count);
	for (uint32_t i = 0; i < r->range; i++)
		n += (size_t)snprintf(text + n, cap - n, "%s%" PRId64, i ? " " : "", job->in[i].base_offset);
	n += (size_t)snprintf(text + n, cap - n, "\n");
	for (uint32_t i = 0; i < job->out_count; i++)
		n += (size_t)snprintf(text + n, cap - n, "%s%" PRId64, i ? " " : "", job->out[i]->base_offset);
	n += (size_t)snprintf(text + n, cap - n, "\n");
	SL_ASSERT(n < cap);
	char path[SL_PATH_BYTES_MAX];
	snprintf(path, sizeof(path), "%s/%s", job->dir, SL_CLEAN_MANIFEST);
	int rc = sl_fs_replace_atomic(path, text, n);
	free(text);
	return rc;
}

struct manifest {
	uint32_t old_count, new_count;
	int64_t *old_bases, *new_bases;
};

static int has_base(const int64_t *bases, uint32_t count, int64_t base)
{
	for (uint32_t i = 0; i < count; i++)
		if (bases[i] == base)
			return 1;
	return 0;
}

/* Steps 3 to 5: make the folder hold the new set. Idempotent: recovery runs it again after a crash in it. */
static int swap_files(int dir_fd, const struct manifest *m, char *err, size_t err_cap)
{
	static const char *const exts[] = {".index", ".timeindex", ".log"};
	for (uint32_t i = 0; i < m->new_count; i++) {
		for (int k = 0; k < 3; k++) {
			char name[SL_SEGMENT_NAME_BYTES], from[SL_SEGMENT_NAME_BYTES + 16];
			sl_segment_name(name, m->new_bases[i], exts[k]);
			snprintf(from, sizeof(from), "%s%s", name, SL_CLEAN_SUFFIX);
			if (renameat(dir_fd, from, dir_fd, name) == 0) {
				step(SL_CLEAN_STEP_RENAMED);
				continue;
			}
			int e = errno;
			struct stat st;
			if (e == ENOENT && fstatat(dir_fd, name, &st, 0) == 0)
				continue; /* renamed before a crash */
			snprintf(err, err_cap, "cannot rename %s to %s: %s", from, name, strerror(e));
			return -e;
		}
	}
	for (uint32_t i = 0; i < m->old_count; i++) {
		if (has_base(m->new_bases, m->new_count, m->old_bases[i]))
			continue;
		int rc = sl_segment_unlink(dir_fd, m->old_bases[i]);
		if (rc < 0) {
			snprintf(err, err_cap, "cannot remove old segment %020" PRId64 ": %s", m->old_bases[i],
			         strerror(-rc));
			return rc;
		}
	}
	if (fsync(dir_fd) < 0) {
		snprintf(err, err_cap, "cannot fsync the folder: %s", strerror(errno));
		return -errno;
	}
	step(SL_CLEAN_STEP_REMOVED);
	if (unlinkat(dir_fd, SL_CLEAN_MANIFEST, 0) < 0 && errno != ENOENT) {
		snprintf(err, err_cap, "cannot remove %s: %s", SL_CLEAN_MANIFEST, strerror(errno));
		return -errno;
	}
	if (fsync(dir_fd) < 0) {
		snprintf(err, err_cap, "cannot fsync the folder: %s", strerror(errno));
		return -errno;
	}
	step(SL_CLEAN_STEP_DONE);
	return 0;
}

static int commit(struct run *r)
{
	struct sl_clean_job *job = r->job;
	step(SL_CLEAN_STEP_WRITTEN);
	if (canceled(r))
		return -ECANCELED;
	int rc = manifest_write(r);
	if (rc < 0)
		return fail(r, rc, "cannot write %s: %s; the old segments stay", SL_CLEAN_MANIFEST, strerror(-rc));
	step(SL_CLEAN_STEP_COMMITTED);
	int64_t *old_bases = malloc(r->range * sizeof(*old_bases));
	int64_t *new_bases = malloc(job->out_count * sizeof(*new_bases));
	if (old_bases != NULL && new_bases != NULL) {
		for (uint32_t i = 0; i < r->range; i++)
			old_bases[i] = job->in[i].base_offset;
		for (uint32_t i = 0; i < job->out_count; i++)
			new_bases[i] = job->out[i]->base_offset;
		struct manifest m = {r->range, job->out_count, old_bases, new_bases};
		char err[256] = "";
		rc = swap_files(job->dir_fd, &m, err, sizeof(err));
		if (rc < 0)
			fail(r, rc, "%s; the next start finishes the swap", err);
	} else {
		rc = fail(r, -ENOMEM, "out of memory during the swap; the next start finishes it");
	}
	free(old_bases);
	free(new_bases);
	if (rc < 0) {
		job->reopen = 1;
		return rc;
	}
	job->committed = 1;
	job->cleaned_count = r->range;
	return 0;
}

/* ---- one run ---- */

int sl_clean_run(struct sl_clean_job *job)
{
	struct run r = {.job = job, .rd = {.fd = -1}, .start_ns = sl_clock_mono_ns()};
	job->stats.next_horizon_ms = INT64_MAX;
	job->stats.lowest_held_tombstone = INT64_MAX;
	r.range = job->range_count;
	int rc = map_init(&r.map, job->params.map_bytes_max);
	if (rc == 0)
		rc = sl_batch_builder_init(&r.builder, SL_BATCH_BYTES_MAX);
	r.wbuf = malloc(IO_CHUNK_BYTES);
	job->out = calloc(job->range_count, sizeof(*job->out));
	if (rc == 0 && (r.wbuf == NULL || job->out == NULL))
		rc = -ENOMEM;
	if (rc < 0)
		fail(&r, rc, "out of memory for the cleaner");
	while (rc == 0) {
		uint32_t full_at = 0;
		rc = map_pass(&r, &full_at);
		if (rc != 1)
			break;
		/* The map filled up inside segment full_at: clean the segments before it, if any (Kafka's way). */
		if (full_at == 0 || full_at > r.range) {
			rc = fail(&r, -ENOMEM,
			          "the keys of the first segment do not fit the cleaner's key map (%" PRIu64
			          " keys); raise --cleaner-map-bytes",
			          r.map.used);
			break;
		}
		r.range = full_at;
	}
	if (rc == 0)
		rc = write_pass(&r);
	if (rc == 0)
		rc = commit(&r);
	if (rc < 0 && !job->committed && !job->reopen)
		out_discard(&r);
	if (rc == -ECANCELED)
		snprintf(job->error, sizeof(job->error), "partition %s: clean canceled", job->dir);
	close_segment_file(&r);
	free(r.rd.buf);
	free(r.scratch);
	free(r.keep);
	free(r.wbuf);
	map_free(&r.map);
	sl_batch_builder_free(&r.builder);
	job->stats.duration_ms = (sl_clock_mono_ns() - r.start_ns) / 1000000;
	job->status = rc;
	return rc;
}

/* ---- recovery (recovery.c, rules 6 to 8) ---- */

static int manifest_parse(char *text, struct manifest *m)
{
	char *p = text, *end;
	memset(m, 0, sizeof(*m));
	if (strncmp(p, "synclog-swap 1 ", 15) != 0)
		return -EBADMSG;
	p += 15;
	unsigned long a = strtoul(p, &end, 10), b;
	if (end == p || *end != ' ')
		return -EBADMSG;
	p = end + 1;
	b = strtoul(p, &end, 10);
	if (end == p || *end != '\n' || a == 0 || b == 0 || b > a || a > 100000000ul)
		return -EBADMSG;
	p = end + 1;
	m->old_count = (uint32_t)a;
	m->new_count = (uint32_t)b;
	m->old_bases = calloc(a, sizeof(int64_t));
	m->new_bases = calloc(b, sizeof(int64_t));
	if (m->old_bases == NULL || m->new_bases == NULL)
		return -ENOMEM;
	for (uint32_t list = 0; list < 2; list++) {
		int64_t *bases = list ? m->new_bases : m->old_bases;
		uint32_t count = list ? m->new_count : m->old_count;
		for (uint32_t i = 0; i < count; i++) {
			long long v = strtoll(p, &end, 10);
			if (end == p || v < 0 || *end != (i + 1 == count ? '\n' : ' '))
				return -EBADMSG;
			bases[i] = v;
			p = end + 1;
		}
	}
	for (uint32_t i = 0; i < m->new_count; i++)
		if (!has_base(m->old_bases, m->old_count, m->new_bases[i]))
			return -EBADMSG;
	return 0;
}

static int read_file_at(int dir_fd, const char *name, char **out)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	char *buf = rc == 0 && st.st_size < (64 << 20) ? malloc((size_t)st.st_size + 1) : NULL;
	if (rc == 0 && buf == NULL)
		rc = -ENOMEM;
	if (rc == 0 && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
		rc = -EIO;
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[st.st_size] = '\0';
	*out = buf;
	return 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

int sl_clean_recover(int dir_fd, const char *dir, char *err, size_t err_cap)
{
	char *text = NULL;
	int rc = read_file_at(dir_fd, SL_CLEAN_MANIFEST, &text);
	if (rc == 0) {
		/* Rule 7: the swap was committed; finish it. */
		struct manifest m;
		char why[256] = "";
		rc = manifest_parse(text, &m);
		if (rc == 0)
			rc = swap_files(dir_fd, &m, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "unreadable %s", SL_CLEAN_MANIFEST);
		free(m.old_bases);
		free(m.new_bases);
		free(text);
		if (rc < 0) {
			snprintf(err, err_cap, "partition %s: cannot finish the cleaner's swap: %s", dir, why);
			return rc == -EBADMSG ? -EUCLEAN : rc;
		}
	} else if (rc != -ENOENT) {
		snprintf(err, err_cap, "partition %s: cannot read %s: %s", dir, SL_CLEAN_MANIFEST, strerror(-rc));
		return rc;
	}
	/* Rules 6 and 8: what an uncommitted clean wrote, and a manifest that never got its name. */
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, err_cap, "partition %s: cannot list: %s", dir, strerror(-rc));
		return rc;
	}
	rewinddir(d);
	int removed = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (ends_with(de->d_name, SL_CLEAN_SUFFIX) || strcmp(de->d_name, SL_CLEAN_MANIFEST ".tmp") == 0) {
			if (unlinkat(dir_fd, de->d_name, 0) == 0)
				removed++;
		}
	}
	closedir(d);
	if (removed > 0 && fsync(dir_fd) < 0) {
		rc = -errno;
		snprintf(err, err_cap, "partition %s: cannot fsync: %s", dir, strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- the loop's side ---- */

double sl_clean_dirty_ratio(const struct sl_log *log, uint64_t *dirty_bytes_out, uint64_t *clean_bytes_out)
{
	uint64_t dirty = 0, clean = 0;
	for (uint32_t i = 0; i + 1 < log->seg_count; i++) {
		const struct sl_segment *seg = log->segs[i];
		if (seg->state != SL_SEG_SEALED)
			continue;
		if (seg->compacted)
			clean += seg->size;
		else
			dirty += seg->size;
	}
	if (dirty_bytes_out)
		*dirty_bytes_out = dirty;
	if (clean_bytes_out)
		*clean_bytes_out = clean;
	return dirty + clean == 0 ? 0.0 : (double)dirty / (double)(dirty + clean);
}

int sl_clean_pending_seal(const struct sl_log *log)
{
	for (uint32_t i = 0; i + 1 < log->seg_count; i++)
		if (log->segs[i]->state != SL_SEG_SEALED)
			return 1;
	return 0;
}

int sl_clean_prepare(struct sl_log *log, const struct sl_clean_params *params, struct sl_clean_job **out)
{
	uint32_t range = 0;
	while (range + 1 < log->seg_count && log->segs[range]->state == SL_SEG_SEALED && !log->segs[range]->cleaning)
		range++;
	if (range == 0 || log->fatal_errno)
		return -EAGAIN;
	struct sl_clean_job *job = calloc(1, sizeof(*job));
	if (job == NULL)
		return -ENOMEM;
	job->in = calloc(log->seg_count, sizeof(*job->in));
	/* The folder may have been closed by the file cache (files.h): open it to dup it. */
	int hrc = sl_log_head_open(log);
	job->dir_fd = hrc < 0 ? -1 : fcntl(log->dir_fd, F_DUPFD_CLOEXEC, 0);
	if (job->in == NULL || job->dir_fd < 0) {
		int rc = job->in == NULL ? -ENOMEM : -errno;
		if (job->dir_fd >= 0)
			close(job->dir_fd);
		free(job->in);
		free(job);
		return rc;
	}
	job->log = log;
	job->params = *params;
	snprintf(job->dir, sizeof(job->dir), "%s", log->dir);
	job->segment_bytes_max = log->cfg.segment_bytes_max;
	job->index_interval_bytes = log->cfg.index_interval_bytes;
	for (uint32_t i = 0; i < log->seg_count; i++) {
		const struct sl_segment *seg = log->segs[i];
		job->in[i] = (struct clean_seg_in){seg->base_offset, seg->visible_next_offset, seg->written_end,
		                                   seg->compacted};
		if (i < range)
			log->segs[i]->cleaning = 1;
	}
	job->in_count = log->seg_count;
	job->range_count = range;
	*out = job;
	return 0;
}

void sl_clean_finish(struct sl_clean_job *job)
{
	struct sl_log *log = job->log;
	for (uint32_t i = 0; i < job->range_count; i++)
		log->segs[i]->cleaning = 0;
	if (!job->committed)
		return;
	uint32_t n = job->cleaned_count;
	/* Only the loop removes segments, and never these while they were marked: they are still the log's first. */
	SL_ASSERT(n <= log->seg_count && job->out_count <= n);
	for (uint32_t i = 0; i < n; i++)
		SL_ASSERT(log->segs[i]->base_offset == job->in[i].base_offset && log->segs[i]->io_pending == 0);
	job->retired_fds = malloc(3 * n * sizeof(int));
	for (uint32_t i = 0; i < n; i++) {
		int fds[3];
		sl_segment_free_keep_fds(log->segs[i], fds);
		/* Without memory to defer the close, close now: fetch submits its reads as it plans them. */
		for (int k = 0; k < 3; k++) {
			if (job->retired_fds != NULL)
				job->retired_fds[job->retired_count++] = fds[k];
			else if (fds[k] >= 0)
				close(fds[k]);
		}
	}
	memmove(log->segs + job->out_count, log->segs + n, (log->seg_count - n) * sizeof(*log->segs));
	for (uint32_t i = 0; i < job->out_count; i++) {
		log->segs[i] = job->out[i];
		sl_log_adopt_sealed(log, log->segs[i]); /* into the log's file cache (files.h) */
	}
	log->seg_count = log->seg_count - n + job->out_count;
	job->out_count = 0;
}

void sl_clean_job_free(struct sl_clean_job *job)
{
	if (job == NULL)
		return;
	for (uint32_t i = 0; i < job->retired_count; i++)
		if (job->retired_fds[i] >= 0)
			close(job->retired_fds[i]);
	free(job->retired_fds);
	/* New segments the log did not take (the clean failed after its commit point): their files are the log's
	 * now, so only the memory goes. */
	for (uint32_t i = 0; i < job->out_count; i++)
		sl_segment_free(job->out[i]);
	free(job->out);
	if (job->dir_fd >= 0)
		close(job->dir_fd);
	free(job->in);
	free(job);
}

/* ---- the cleaner thread ---- */

struct sl_cleaner {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* the thread waits for work */
	pthread_cond_t done_cv; /* sl_cleaner_cancel_wait waits for the job */
	int stopping;
	struct sl_clean_job *job; /* submitted and not taken back */
	int running;              /* job is being run */
	int finished;             /* job ran: sl_cleaner_take returns it */
	struct sl_clean_job **dispose;
	uint32_t dispose_count, dispose_cap;
	void (*wake_cb)(void *arg);
	void *wake_arg;
};

static void *cleaner_main(void *arg)
{
	struct sl_cleaner *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->dispose_count > 0) {
			struct sl_clean_job *j = c->dispose[--c->dispose_count];
			pthread_mutex_unlock(&c->mu);
			sl_clean_job_free(j);
			pthread_mutex_lock(&c->mu);
		}
		if (c->job != NULL && !c->running && !c->finished) {
			struct sl_clean_job *j = c->job;
			c->running = 1;
			pthread_mutex_unlock(&c->mu);
			sl_clean_run(j);
			pthread_mutex_lock(&c->mu);
			c->running = 0;
			c->finished = 1;
			pthread_cond_broadcast(&c->done_cv);
			if (c->wake_cb)
				c->wake_cb(c->wake_arg);
			continue;
		}
		if (c->stopping)
			break;
		pthread_cond_wait(&c->cv, &c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int sl_cleaner_start(struct sl_cleaner **out, void (*wake_cb)(void *arg), void *arg)
{
	struct sl_cleaner *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->wake_cb = wake_cb;
	c->wake_arg = arg;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->done_cv, NULL);
	int rc = pthread_create(&c->thread, NULL, cleaner_main, c);
	if (rc != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		pthread_cond_destroy(&c->done_cv);
		free(c);
		return -rc;
	}
	*out = c;
	return 0;
}

int sl_cleaner_submit(struct sl_cleaner *c, struct sl_clean_job *job)
{
	pthread_mutex_lock(&c->mu);
	int rc = c->job != NULL ? -EBUSY : 0;
	if (rc == 0) {
		c->job = job;
		c->finished = 0;
		pthread_cond_signal(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

struct sl_clean_job *sl_cleaner_take(struct sl_cleaner *c)
{
	pthread_mutex_lock(&c->mu);
	struct sl_clean_job *j = c->finished ? c->job : NULL;
	if (j != NULL) {
		c->job = NULL;
		c->finished = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return j;
}

struct sl_clean_job *sl_cleaner_current(struct sl_cleaner *c)
{
	pthread_mutex_lock(&c->mu);
	struct sl_clean_job *j = c->job;
	pthread_mutex_unlock(&c->mu);
	return j;
}

void sl_cleaner_dispose(struct sl_cleaner *c, struct sl_clean_job *job)
{
	pthread_mutex_lock(&c->mu);
	if (c->dispose_count == c->dispose_cap) {
		uint32_t cap = c->dispose_cap ? c->dispose_cap * 2 : 4;
		struct sl_clean_job **d = realloc(c->dispose, cap * sizeof(*d));
		if (d == NULL) {
			pthread_mutex_unlock(&c->mu);
			sl_clean_job_free(job); /* no memory to defer it: free it here */
			return;
		}
		c->dispose = d;
		c->dispose_cap = cap;
	}
	c->dispose[c->dispose_count++] = job;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void sl_cleaner_cancel_wait(struct sl_cleaner *c)
{
	pthread_mutex_lock(&c->mu);
	if (c->job != NULL) {
		atomic_store(&c->job->cancel, 1);
		pthread_cond_signal(&c->cv);
		while (!c->finished)
			pthread_cond_wait(&c->done_cv, &c->mu);
	}
	pthread_mutex_unlock(&c->mu);
}

void sl_cleaner_stop(struct sl_cleaner *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	SL_ASSERT(c->job == NULL);
	c->stopping = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	free(c->dispose);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->done_cv);
	free(c);
}
