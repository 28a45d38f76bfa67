/* Opening a partition log: find its segments, decide what can be trusted, check and cut the tail after a crash,
 * refuse (or, in repair mode, set aside) damage found before the tail.
 *
 * The rules, in order:
 *   1. A clean-shutdown marker (written by sl_log_close, holding the active segment's size, next offset and
 *      largest timestamp) means no scan: every segment is taken as it is. A marker that does not match the
 *      files is ignored and the crash path runs.
 *   2. After a crash, the recovery point is the newest durable checkpoint: the end of the newest sealed segment,
 *      or the last index entry persisted for a segment after it (index.h, invariant 3).
 *   3. Before the recovery point, every byte was fsynced. Recovery spot-checks it cheaply (each sealed segment
 *      from its last index entry to its end, and the batch at the checkpoint); damage there is corruption, not a
 *      torn write: the open fails with -EUCLEAN naming the file and position, and nothing is changed.
 *   4. After the recovery point (the tail), batches are checked one by one (length, CRC32C, offsets following
 *      on); at the first bad one the segment is cut there and every later segment removed: those bytes were
 *      never acknowledged at fsync level.
 *   5. Repair mode checks every batch of every segment. At a bad batch it looks for the next valid one in the
 *      same segment (a header, length and CRC32C that check out, a base offset not below the expected one). The
 *      damaged bytes between are copied to `<name>.log.corrupt-<byte>` and cut from the segment; the valid
 *      batch and everything after it move to a new segment named by its base offset, so the offsets lost lie
 *      exactly in the gap between two segments and are recorded as a lost range. With no valid batch after the
 *      damage, the rest of the segment goes aside and the gap reaches the next segment (or, in the last
 *      segment, the end of the damaged batch when its header still says where that is; a batch running past
 *      the end of the file is a torn write and is only cut). Every batch before and after keeps its offset,
 *      indexes are rebuilt, and the report names each lost range. Nothing is deleted: the operator decides.
 * The cleaner's leftovers (cleaner.c, "the swap") are dealt with first, before the segments are listed:
 *   6. Files `<base>.{log,index,timeindex}.cleaned` without a manifest are a clean that never committed: they
 *      are removed, and the old segments are the log.
 *   7. A manifest `cleaner.swap` means the clean committed: each `.cleaned` file still there is renamed over its
 *      final name, the old segments the manifest lists that no new one replaces are removed, the folder is
 *      fsynced and the manifest removed. The new segments are the log. A manifest that does not parse (it is
 *      written atomically, so only damage can do that) leaves the partition closed with -EUCLEAN.
 *   8. `cleaner.swap.tmp` is a manifest that never got its name: removed (rule 6 applies to the rest).
 * A segment the cleaner wrote carries a compacted seal (index.h): its offsets may skip, so the spot check of rule
 * 3 asks only that they increase and end at or before the next segment's base.
 * And for repaired logs:
 *   9. A gap between two segments (the next one's base above where the previous one ends) is damage, except
 *      where the lost-offsets file records exactly that range (rule 5). Reads of a lost offset fail with -ENODATA.
 *
 * The clean-shutdown marker (SL_CLEAN_MARKER in the partition's folder) is one line of ASCII, fields separated
 * by one space, written and fsynced (with the folder) by sl_log_close and removed (durably) by the next open:
 *
 *   <active segment base offset> <active segment size, bytes> <next offset> <largest timestamp, ms>\n
 *
 * A marker that does not parse as exactly these four numbers, or does not match the files, is ignored (rule 1):
 * a torn marker can only cost a scan, never trust in bytes that were not written.
 *
 * The lost-offsets file (SL_LOST_OFFSETS_FILE in the partition's folder, rule 9) is ASCII, replaced atomically
 * (proto/base/fs.h) by the repair that found new ranges, and read at every open:
 *
 *   synclog-lost-offsets 1\n                       header: format version 1
 *   <first> <next> <repaired ms>\n                  one line per range [first, next) of offsets cut out, in order
 *
 * Invariants checked on load (anything else refuses the open, naming the file): first < next, and each range
 * starts at or after the end of the one before. */
#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/base/clock.h"
#include "proto/base/assert.h"
#include "broker/storage/cleaner.h"
#include "broker/storage/log_impl.h"
#include "proto/base/fs.h"
#include "proto/batch.h"

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* "<20 digits>.log" -> base offset. */
static int parse_segment_name(const char *name, const char *ext, int64_t *base)
{
	size_t n = strlen(name), e = strlen(ext);
	if (n != 20 + e || strcmp(name + 20, ext) != 0)
		return 0;
	int64_t v = 0;
	for (int i = 0; i < 20; i++) {
		if (!isdigit((unsigned char)name[i]))
			return 0;
		if (v > (INT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (name[i] - '0');
	}
	*base = v;
	return 1;
}

#define SL_LOST_OFFSETS_FILE "lost-offsets"

const struct sl_log_lost *sl_log_lost_find(const struct sl_log *log, int64_t offset)
{
	uint32_t lo = 0, hi = log->lost_count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (log->lost[mid].next <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < log->lost_count && log->lost[lo].first <= offset ? &log->lost[lo] : NULL;
}

/* Rule 9: the range [first, next) is recorded exactly. */
static int gap_recorded(const struct sl_log *log, int64_t first, int64_t next)
{
	const struct sl_log_lost *l = sl_log_lost_find(log, first);
	return l != NULL && l->first == first && l->next == next;
}

/* Record a range found now (repair), keeping the list sorted. */
static int lost_add(struct sl_log *log, int64_t first, int64_t next)
{
	SL_ASSERT(first < next);
	if (log->lost_count == log->lost_cap) {
		uint32_t cap = log->lost_cap ? log->lost_cap * 2 : 4;
		struct sl_log_lost *l = realloc(log->lost, cap * sizeof(*l));
		if (l == NULL)
			return -ENOMEM;
		log->lost = l;
		log->lost_cap = cap;
	}
	uint32_t at = log->lost_count;
	while (at > 0 && log->lost[at - 1].first > first)
		at--;
	memmove(&log->lost[at + 1], &log->lost[at], (log->lost_count - at) * sizeof(*log->lost));
	log->lost[at] = (struct sl_log_lost){first, next, sl_clock_wall_ms(), 1};
	log->lost_count++;
	log->stats.lost_range_new_count++;
	return 0;
}

static int lost_load(struct sl_log *log, char *err, size_t cap)
{
	int fd = openat(log->dir_fd, SL_LOST_OFFSETS_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	FILE *f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return -errno;
	}
	int version = 0, rc = 0;
	if (fscanf(f, "synclog-lost-offsets %d", &version) != 1 || version != 1)
		rc = -EBADMSG;
	while (rc == 0) {
		int64_t first, next, when;
		int n = fscanf(f, "%" SCNd64 " %" SCNd64 " %" SCNd64, &first, &next, &when);
		if (n == EOF)
			break;
		if (n != 3 || first >= next || (log->lost_count > 0 && first < log->lost[log->lost_count - 1].next)) {
			rc = -EBADMSG;
			break;
		}
		rc = lost_add(log, first, next);
		if (rc == 0) {
			log->lost[log->lost_count - 1].repaired_ms = when;
			log->lost[log->lost_count - 1].found_now = 0;
		}
	}
	fclose(f);
	log->stats.lost_range_new_count = 0;
	if (rc == -EBADMSG)
		snprintf(err, cap,
		         "partition %s: %s is not a valid lost-offsets file: restore it or remove it and run "
		         "synclogd --repair",
		         log->dir, SL_LOST_OFFSETS_FILE);
	return rc;
}

static int lost_save(struct sl_log *log)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return -errno;
	fprintf(f, "synclog-lost-offsets 1\n");
	for (uint32_t i = 0; i < log->lost_count; i++)
		fprintf(f, "%" PRId64 " %" PRId64 " %" PRId64 "\n", log->lost[i].first, log->lost[i].next,
		        log->lost[i].repaired_ms);
	if (fclose(f) != 0) {
		free(text);
		return -ENOMEM;
	}
	char path[SL_PATH_BYTES_MAX];
	snprintf(path, sizeof(path), "%s/%s", log->dir, SL_LOST_OFFSETS_FILE);
	int rc = sl_fs_replace_atomic(path, text, len);
	free(text);
	return rc;
}

/* Where a segment followed by one based at next_base ends: there, unless a lost range lies before it. */
static int64_t segment_end_before(const struct sl_log *log, int64_t next_base)
{
	const struct sl_log_lost *l = next_base > 0 ? sl_log_lost_find(log, next_base - 1) : NULL;
	return l != NULL && l->next == next_base ? l->first : next_base;
}

/* List segment base offsets, remove index files whose .log is gone (a crash during roll or retention), and
 * note the clean marker. */
static int list_segments(struct sl_log *log, int64_t **bases_out, uint32_t *count_out, int *clean_out)
{
	int fd = dup(log->dir_fd);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	int64_t *bases = NULL;
	uint32_t count = 0, cap = 0;
	int64_t *orphans = NULL;
	uint32_t orphan_count = 0, orphan_cap = 0;
	int rc = 0;
	struct dirent *de;
	*clean_out = 0;
	while ((de = readdir(d)) != NULL) {
		int64_t base;
		if (strcmp(de->d_name, SL_CLEAN_MARKER) == 0) {
			*clean_out = 1;
		} else if (parse_segment_name(de->d_name, ".log", &base)) {
			if (count == cap) {
				cap = cap ? cap * 2 : 16;
				int64_t *nb = realloc(bases, cap * sizeof(*nb));
				if (nb == NULL) {
					rc = -ENOMEM;
					break;
				}
				bases = nb;
			}
			bases[count++] = base;
		} else if (parse_segment_name(de->d_name, ".index", &base) ||
		           parse_segment_name(de->d_name, ".timeindex", &base)) {
			if (orphan_count == orphan_cap) {
				orphan_cap = orphan_cap ? orphan_cap * 2 : 16;
				int64_t *no = realloc(orphans, orphan_cap * sizeof(*no));
				if (no == NULL) {
					rc = -ENOMEM;
					break;
				}
				orphans = no;
			}
			orphans[orphan_count++] = base;
		}
	}
	closedir(d);
	if (rc == 0) {
		if (count > 0)
			qsort(bases, count, sizeof(*bases), cmp_i64);
		for (uint32_t i = 0; i < orphan_count; i++) {
			if (count == 0 || bsearch(&orphans[i], bases, count, sizeof(*bases), cmp_i64) == NULL)
				sl_segment_unlink(log->dir_fd, orphans[i]);
		}
	}
	free(orphans);
	if (rc < 0) {
		free(bases);
		return rc;
	}
	*bases_out = bases;
	*count_out = count;
	return 0;
}

static int file_size(int fd, uint64_t *out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*out = (uint64_t)st.st_size;
	return 0;
}

/* Rebuild the in-memory index while scanning, after the entries already loaded. */
static int rebuild_cb(struct sl_segment *seg, uint64_t pos, const struct sl_batch_header *h, void *ctx)
{
	const struct sl_log *log = ctx;
	if (pos > 0 && pos > seg->last_indexed_pos && pos - seg->last_indexed_pos >= log->cfg.index_interval_bytes) {
		struct sl_index_entry e = {(uint32_t)(h->base_offset - seg->base_offset), (uint32_t)pos,
		                           seg->max_timestamp};
		int rc = sl_index_add(&seg->index, &e);
		if (rc < 0)
			return rc;
		seg->last_indexed_pos = pos;
	}
	if (h->max_timestamp > seg->max_timestamp)
		seg->max_timestamp = h->max_timestamp;
	return 0;
}

static void say_corrupt(struct sl_log *log, const struct sl_segment *seg, uint64_t pos, const char *why, char *err,
                        size_t cap)
{
	char name[SL_SEGMENT_NAME_BYTES];
	sl_segment_name(name, seg->base_offset, ".log");
	snprintf(err, cap,
	         "partition %s: corrupt batch in segment %s at byte %" PRIu64 " (%s), before the recovery point; "
	         "the partition stays closed: run synclogd --repair to drop the damaged batch (the batches after it "
	         "are kept, the offsets lost are reported)",
	         log->dir, name, pos, why ? why : "unreadable");
}

/* Load a segment's whole index and make its in-memory state start from the last persisted entry. */
static int load_checkpoint(struct sl_log *log, struct sl_segment *seg)
{
	int sealed = 0;
	int64_t seal_ts;
	int rc = sl_index_load(&seg->index, seg->off_fd, seg->time_fd, seg->size, &sealed, &seal_ts);
	if (rc < 0)
		return rc;
	seg->index_persisted = seg->index.entry_count;
	seg->last_indexed_pos = 0;
	seg->max_timestamp = INT64_MIN;
	if (seg->index.entry_count > 0) {
		struct sl_index_entry e;
		sl_index_get(&seg->index, seg->index.entry_count - 1, &e);
		seg->last_indexed_pos = e.position;
		seg->max_timestamp = e.max_timestamp_before;
	}
	/* Drop whatever follows the valid prefix (a torn entry, a stale seal) so new entries land after it. */
	if (ftruncate(seg->off_fd, (off_t)seg->index_persisted * SL_INDEX_ENTRY_BYTES) < 0 ||
	    ftruncate(seg->time_fd, (off_t)seg->index_persisted * SL_TIMEINDEX_ENTRY_BYTES) < 0)
		return -errno;
	seg->index_complete = 1;
	return 0;
}

/* Set the first broken segment's rest aside and rename the later ones (repair mode, rule 5). */
static int set_aside(struct sl_log *log, uint32_t j, uint64_t pos)
{
	struct sl_segment *seg = log->segs[j];
	char name[SL_SEGMENT_NAME_BYTES], aside[SL_SEGMENT_NAME_BYTES + 16];
	sl_segment_name(name, seg->base_offset, ".log");
	snprintf(aside, sizeof(aside), "%s.corrupt", name);
	int out = openat(log->dir_fd, aside, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return -errno;
	uint8_t *buf = malloc(1 << 20);
	int rc = buf ? 0 : -ENOMEM;
	for (uint64_t at = pos; rc == 0 && at < seg->size;) {
		ssize_t n = pread(seg->log_fd, buf, 1 << 20, (off_t)at);
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		ssize_t w = write(out, buf, (size_t)n);
		if (w != n)
			rc = w < 0 ? -errno : -ENOSPC; /* a short write to a file: the disk filled */
		at += (uint64_t)n;
	}
	free(buf);
	if (rc == 0 && fsync(out) < 0)
		rc = -errno;
	close(out);
	for (uint32_t k = j + 1; rc == 0 && k < log->seg_count; k++) {
		char from[SL_SEGMENT_NAME_BYTES], to[SL_SEGMENT_NAME_BYTES + 16];
		sl_segment_name(from, log->segs[k]->base_offset, ".log");
		snprintf(to, sizeof(to), "%s.orphaned", from);
		if (renameat(log->dir_fd, from, log->dir_fd, to) < 0)
			rc = -errno;
	}
	return rc;
}

/* Cut segment j at pos and drop every later segment (rule 4); in repair mode keep them aside first. */
static int cut_at(struct sl_log *log, uint32_t j, uint64_t pos)
{
	struct sl_segment *seg = log->segs[j];
	int orc = sl_segment_reopen(seg, log->dir, 0); /* a sealed segment's files are closed after listing */
	if (orc < 0)
		return orc;
	if (log->cfg.repair) {
		int rc = set_aside(log, j, pos);
		if (rc < 0)
			return rc;
	}
	log->stats.truncated_bytes += seg->size - pos;
	if (ftruncate(seg->log_fd, (off_t)pos) < 0)
		return -errno;
	seg->size = pos;
	while (log->seg_count > j + 1) {
		struct sl_segment *last = log->segs[--log->seg_count];
		int64_t base = last->base_offset;
		log->stats.truncated_bytes += last->size;
		sl_segment_free(last);
		int rc = sl_segment_unlink(log->dir_fd, base);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Check a sealed segment's end: from its last index entry to its end, batches valid and reaching the next
 * segment's base offset (rule 3). */
static int spot_check_sealed(struct sl_log *log, struct sl_segment *seg, uint64_t last_pos, int64_t next_base,
                             char *err, size_t cap)
{
	int64_t expect = INT64_MIN;
	uint64_t stop;
	const char *why;
	/* Sealed segments are closed after listing (files.h): open this one just for the check. */
	int rc = sl_segment_reopen(seg, log->dir, 0);
	if (rc < 0)
		return rc;
	rc = sl_segment_scan(seg, last_pos, seg->size, 1, &expect, &stop, &why, NULL, NULL);
	sl_segment_close_files(seg, 0);
	if (rc < 0)
		return rc;
	if (why == NULL && expect != INT64_MIN && next_base != INT64_MIN &&
	    (seg->compacted ? expect > next_base : expect != next_base && !gap_recorded(log, expect, next_base)))
		why = "segment does not end where the next one begins";
	if (why != NULL) {
		say_corrupt(log, seg, stop, why, err, cap);
		return -EUCLEAN;
	}
	return 0;
}

struct marker {
	int64_t base;
	uint64_t size;
	int64_t next_offset;
	int64_t max_timestamp;
};

static int read_marker(struct sl_log *log, struct marker *m)
{
	int fd = openat(log->dir_fd, SL_CLEAN_MARKER, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[128];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	if (sscanf(buf, "%" SCNd64 " %" SCNu64 " %" SCNd64 " %" SCNd64, &m->base, &m->size, &m->next_offset,
	           &m->max_timestamp) != 4)
		return -EINVAL;
	return 0;
}

/* Rule 1: trust everything when the marker matches the files. Returns 1 when it did, 0 when the crash path
 * must run. */
static int open_clean(struct sl_log *log)
{
	struct marker m;
	if (read_marker(log, &m) < 0)
		return 0;
	struct sl_segment *last = log->segs[log->seg_count - 1];
	if (m.base != last->base_offset || m.size != last->size || m.next_offset < last->base_offset)
		return 0;
	for (uint32_t i = 0; i + 1 < log->seg_count; i++)
		if (log->segs[i]->state != SL_SEG_SEALED)
			return 0;
	int rc = load_checkpoint(log, last);
	if (rc < 0)
		return rc;
	last->next_offset = last->visible_next_offset = m.next_offset;
	last->max_timestamp = m.max_timestamp;
	last->synced_end = last->written_end = last->size;
	if (last->index.entry_count > 0) {
		struct sl_index_entry e;
		sl_index_get(&last->index, last->index.entry_count - 1, &e);
		last->last_indexed_pos = e.position;
	}
	log->stats.clean_open = 1;
	return 1;
}

/* The batch at a checkpoint must be whole and valid (rule 3). */
static int check_checkpoint_batch(struct sl_log *log, struct sl_segment *seg, uint64_t pos, int64_t expect, char *err,
                                  size_t cap)
{
	uint8_t hdr[SL_BATCH_HEADER_BYTES];
	struct sl_batch_header h;
	const char *why = NULL;
	uint64_t stop = pos;
	if (pread(seg->log_fd, hdr, sizeof(hdr), (off_t)pos) != (ssize_t)sizeof(hdr) ||
	    sl_batch_header_parse(hdr, sizeof(hdr), &h) != 0) {
		why = "invalid batch header at the last index checkpoint";
	} else {
		int rc = sl_segment_scan(seg, pos, pos + sl_batch_total_bytes(&h), 1, &expect, &stop, &why, NULL, NULL);
		if (rc < 0)
			return rc;
	}
	if (why != NULL) {
		say_corrupt(log, seg, stop, why, err, cap);
		return -EUCLEAN;
	}
	return 0;
}

/* Scan a whole segment that lies before the recovery point but was never sealed, rebuilding its index. */
static int check_unsealed_before_point(struct sl_log *log, struct sl_segment *seg, int64_t next_base, char *err,
                                       size_t cap)
{
	int64_t expect = seg->base_offset;
	uint64_t stop;
	const char *why;
	seg->max_timestamp = INT64_MIN;
	sl_index_truncate(&seg->index, 0);
	seg->index_persisted = 0;
	seg->last_indexed_pos = 0;
	if (ftruncate(seg->off_fd, 0) < 0 || ftruncate(seg->time_fd, 0) < 0)
		return -errno;
	int rc = sl_segment_scan(seg, 0, seg->size, 1, &expect, &stop, &why, rebuild_cb, log);
	if (rc < 0)
		return rc;
	if (why == NULL && expect != next_base && !gap_recorded(log, expect, next_base))
		why = "segment does not end where the next one begins";
	if (why != NULL) {
		say_corrupt(log, seg, stop, why, err, cap);
		return -EUCLEAN;
	}
	seg->next_offset = seg->visible_next_offset = expect;
	seg->index_complete = 1;
	return 0;
}

/* ---- repair (rule 5) ---- */

/* Appends to the repair report in err (one line per partition, ranges separated by "; "). */
static void report(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(char *err, size_t cap, const char *fmt, ...)
{
	size_t len = strnlen(err, cap);
	if (len + 1 >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + len, cap - len, fmt, ap);
	va_end(ap);
}

/* The first position in [from, to) where a whole valid batch starts (header, length, CRC32C, record count) with a
 * base offset at or above expect. Returns 1 with *pos_out and *h_out, 0 when there is none, or a negative errno.
 * The segment is read in windows; only a position whose magic byte is 2 and whose header parses is checked in
 * full, so megabytes of damage cost little more than reading them. */
static int find_next_valid(struct sl_segment *seg, uint64_t from, uint64_t to, int64_t expect, uint64_t *pos_out,
                           struct sl_batch_header *h_out)
{
	const size_t window = 1u << 20;
	uint8_t *buf = malloc(window);
	if (buf == NULL)
		return -ENOMEM;
	int rc = 0;
	for (uint64_t w = from; rc == 0 && w + SL_BATCH_HEADER_BYTES <= to;) {
		size_t want = to - w < window ? (size_t)(to - w) : window;
		ssize_t n = pread(seg->log_fd, buf, want, (off_t)w);
		if (n < 0) {
			rc = -errno;
			break;
		}
		if ((size_t)n < SL_BATCH_HEADER_BYTES)
			break;
		for (size_t i = 0; i + SL_BATCH_HEADER_BYTES <= (size_t)n; i++) {
			struct sl_batch_header h;
			if (buf[i + 16] != SL_BATCH_MAGIC || sl_batch_header_parse(buf + i, (size_t)n - i, &h) != 0)
				continue;
			uint64_t total = sl_batch_total_bytes(&h);
			if (h.base_offset < expect || w + i + total > to)
				continue;
			int64_t any = INT64_MIN;
			uint64_t end;
			const char *why;
			int src = sl_segment_scan_sized(seg, w + i, w + i + total, total, 1, &any, &end, &why, NULL,
			                                NULL);
			if (src < 0) {
				rc = src;
				break;
			}
			if (why == NULL && end == w + i + total) {
				*pos_out = w + i;
				*h_out = h;
				rc = 1;
				break;
			}
		}
		/* The next window starts where a header could still begin that this one could not hold whole. */
		w += (size_t)n - SL_BATCH_HEADER_BYTES + 1;
	}
	free(buf);
	return rc;
}

/* Copy bytes [from, to) of a segment's .log into the file name, fsynced. */
static int copy_out(struct sl_log *log, struct sl_segment *seg, uint64_t from, uint64_t to, const char *name,
                    int out_fd_given)
{
	int out = out_fd_given >= 0 ? out_fd_given
	                            : openat(log->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return -errno;
	uint8_t *buf = malloc(1 << 20);
	int rc = buf ? 0 : -ENOMEM;
	uint64_t put = 0;
	for (uint64_t at = from; rc == 0 && at < to;) {
		size_t want = to - at < (1u << 20) ? (size_t)(to - at) : (1u << 20);
		ssize_t n = pread(seg->log_fd, buf, want, (off_t)at);
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		ssize_t w = pwrite(out, buf, (size_t)n, (off_t)put);
		if (w != n)
			rc = w < 0 ? -errno : -ENOSPC;
		at += (uint64_t)n;
		put += (uint64_t)n;
	}
	free(buf);
	if (rc == 0 && fdatasync(out) < 0)
		rc = -errno;
	if (out_fd_given < 0)
		close(out);
	return rc;
}

/* Put a new segment (base offset base, holding bytes [from, size) of segment j) right after segment j. */
static int split_after(struct sl_log *log, uint32_t j, uint64_t from, int64_t base)
{
	struct sl_segment *seg = log->segs[j];
	struct sl_segment *ns;
	int rc = sl_segment_open(log->dir_fd, base, 1, &ns);
	if (rc < 0)
		return rc;
	if (ftruncate(ns->log_fd, 0) < 0 || ftruncate(ns->off_fd, 0) < 0 || ftruncate(ns->time_fd, 0) < 0)
		rc = -errno;
	if (rc == 0)
		rc = copy_out(log, seg, from, seg->size, NULL, ns->log_fd);
	if (rc == 0 && fsync(log->dir_fd) < 0)
		rc = -errno;
	if (rc == 0)
		rc = sl_log_push_segment(log, ns);
	if (rc < 0) {
		sl_segment_free(ns);
		return rc;
	}
	ns->size = ns->written_end = seg->size - from;
	memmove(&log->segs[j + 2], &log->segs[j + 1], (log->seg_count - j - 2) * sizeof(*log->segs));
	log->segs[j + 1] = ns;
	return 0;
}

/* Repair mode: segment j holds a bad batch at pos; expect is the offset the batches before it reach. Sets aside
 * the damaged bytes, cuts the segment there and makes the lost offsets a gap between two segments (rule 5).
 * Returns 0 (the scan goes on with segment j + 1) or a negative errno. */
static int repair_damage(struct sl_log *log, uint32_t j, uint64_t pos, int64_t expect, const char *why, char *err,
                         size_t cap)
{
	struct sl_segment *seg = log->segs[j];
	int last = j + 1 == log->seg_count;
	struct sl_batch_header bad;
	uint8_t hdr[SL_BATCH_HEADER_BYTES];
	int bad_parsed = pread(seg->log_fd, hdr, sizeof(hdr), (off_t)pos) == (ssize_t)sizeof(hdr) &&
	                 sl_batch_header_parse(hdr, sizeof(hdr), &bad) == 0;
	/* A last batch running past the end of the file is a write the crash tore, not damage: only cut. */
	if (last && bad_parsed && pos + sl_batch_total_bytes(&bad) > seg->size)
		return cut_at(log, j, pos);
	uint64_t q = seg->size;
	struct sl_batch_header h;
	memset(&h, 0, sizeof(h));
	int found = find_next_valid(seg, pos + 1, seg->size, expect, &q, &h);
	if (found < 0)
		return found;
	/* The valid batch must stay below the next segment, or it is not where the log goes on. */
	if (found && !last && h.base_offset >= log->segs[j + 1]->base_offset) {
		found = 0;
		q = seg->size;
	}
	char name[SL_SEGMENT_NAME_BYTES], aside[SL_SEGMENT_NAME_BYTES + 32];
	sl_segment_name(name, seg->base_offset, ".log");
	snprintf(aside, sizeof(aside), "%s.corrupt-%" PRIu64, name, pos);
	int rc = copy_out(log, seg, pos, q, aside, -1);
	int64_t lost_next = -1;
	if (rc == 0 && found) {
		rc = split_after(log, j, q, h.base_offset);
		lost_next = h.base_offset;
	} else if (rc == 0 && last && bad_parsed && bad.base_offset == expect) {
		/* Nothing valid follows in the last segment: the damaged batch's header still says which offsets it
		 * held, so the log goes on after them, in a new segment, rather than hand them out again. */
		lost_next = bad.base_offset + bad.last_offset_delta + 1;
		struct sl_segment *ns;
		rc = sl_segment_open(log->dir_fd, lost_next, 1, &ns);
		if (rc == 0 && (rc = sl_log_push_segment(log, ns)) < 0)
			sl_segment_free(ns);
		if (rc == 0 && fsync(log->dir_fd) < 0)
			rc = -errno;
	} else if (rc == 0 && !last) {
		lost_next = log->segs[j + 1]->base_offset; /* recorded as the gap to the next segment */
	}
	if (rc < 0)
		return rc;
	log->stats.truncated_bytes += q - pos;
	if (ftruncate(seg->log_fd, (off_t)pos) < 0)
		return -errno;
	seg->size = seg->written_end = pos;
	if (lost_next > expect) {
		rc = lost_add(log, expect, lost_next);
		if (rc < 0)
			return rc;
		report(err, cap,
		       "%soffsets %" PRId64 "..%" PRId64 " lost (%s: %" PRIu64 " damaged bytes at byte %" PRIu64
		       " kept in %s)",
		       err[0] ? "; " : "", expect, lost_next - 1, why, q - pos, pos, aside);
	} else {
		report(err, cap, "%s%" PRIu64 " bytes cut at byte %" PRIu64 " of %s (%s), kept in %s; no offset lost",
		       err[0] ? "; " : "", q - pos, pos, name, why, aside);
	}
	return 0;
}

/* Rules 2-5. */
static int open_after_crash(struct sl_log *log, char *err, size_t cap)
{
	int rc;
	uint32_t n = log->seg_count;
	/* Rule 2, the recovery point: newest sealed segment, or a later one with persisted entries. In repair mode
	 * there is none: everything is checked as tail. */
	int64_t k = -1;
	for (uint32_t i = 0; i < n && !log->cfg.repair; i++) {
		struct sl_segment *seg = log->segs[i];
		if (seg->state == SL_SEG_SEALED) {
			k = i;
			continue;
		}
		rc = load_checkpoint(log, seg);
		if (rc < 0)
			return rc;
		if (seg->index.entry_count > 0)
			k = i;
	}
	/* Rule 3: what lies before the recovery point. */
	for (int64_t i = 0; i <= k; i++) {
		struct sl_segment *seg = log->segs[i];
		int64_t next_base = (uint32_t)i + 1 < n ? log->segs[i + 1]->base_offset : INT64_MIN;
		if (seg->state == SL_SEG_SEALED)
			rc = spot_check_sealed(log, seg, seg->last_indexed_pos, next_base, err, cap);
		else if (i < k)
			rc = check_unsealed_before_point(log, seg, next_base, err, cap);
		else {
			struct sl_index_entry e;
			sl_index_get(&seg->index, seg->index.entry_count - 1, &e);
			rc = check_checkpoint_batch(log, seg, e.position, seg->base_offset + e.rel_offset, err, cap);
		}
		if (rc < 0)
			return rc;
	}
	/* Rules 4 and 5: the tail, from the checkpoint on. */
	uint32_t first = k < 0 ? 0 : (uint32_t)k;
	if (k >= 0 && log->segs[k]->state == SL_SEG_SEALED)
		first = (uint32_t)k + 1;
	for (uint32_t j = first; j < log->seg_count; j++) {
		struct sl_segment *seg = log->segs[j];
		uint64_t from = 0;
		int64_t expect = j > 0 ? log->segs[j - 1]->next_offset : seg->base_offset;
		if (j == (uint32_t)k) {
			struct sl_index_entry e;
			sl_index_get(&seg->index, seg->index.entry_count - 1, &e);
			from = e.position;
			expect = seg->base_offset + e.rel_offset;
		} else {
			if (expect != seg->base_offset && gap_recorded(log, expect, seg->base_offset)) {
				expect = seg->base_offset; /* offsets a repair cut out (rule 9) */
			} else if (expect < seg->base_offset && log->cfg.repair) {
				rc = lost_add(log, expect, seg->base_offset);
				if (rc < 0)
					return rc;
				report(err, cap, "%soffsets %" PRId64 "..%" PRId64 " lost (no segment holds them)",
				       err[0] ? "; " : "", expect, seg->base_offset - 1);
				expect = seg->base_offset;
			} else if (expect != seg->base_offset) {
				/* The previous segment ended short of this one's base (its last writes never happened):
				 * nothing from here on can follow it. */
				rc = cut_at(log, j - 1, log->segs[j - 1]->size);
				if (rc < 0)
					return rc;
				break;
			}
			/* Scanned from its start: its index is rebuilt whole. */
			sl_index_truncate(&seg->index, 0);
			seg->index_persisted = 0;
			seg->last_indexed_pos = 0;
			seg->max_timestamp = INT64_MIN;
			if (ftruncate(seg->off_fd, 0) < 0 || ftruncate(seg->time_fd, 0) < 0)
				return -errno;
		}
		uint64_t stop;
		const char *why;
		rc = sl_segment_scan(seg, from, seg->size, 1, &expect, &stop, &why, rebuild_cb, log);
		if (rc < 0)
			return rc;
		log->stats.recovered_tail_bytes += stop - from;
		seg->next_offset = seg->visible_next_offset = expect;
		seg->written_end = stop;
		seg->synced_end = 0;
		seg->index_complete = 1;
		if (why != NULL && log->cfg.repair) {
			rc = repair_damage(log, j, stop, expect, why, err, cap);
			if (rc < 0)
				return rc;
			continue;
		}
		if (why != NULL) {
			rc = cut_at(log, j, stop);
			if (rc < 0)
				return rc;
			break;
		}
	}
	return 0;
}

/* The directory fsync that makes open's changes durable (a new first segment, the marker's removal), or, with
 * defer_open_sync, a note that sl_log_open_sync_all must do it before the first append. */
static int open_dir_sync(struct sl_log *log)
{
	if (log->cfg.defer_open_sync) {
		log->open_sync_pending = 1;
		return 0;
	}
	return fsync(log->dir_fd) < 0 ? -errno : 0;
}

int sl_log_recover(struct sl_log *log, char *err, size_t cap)
{
	int64_t *bases = NULL;
	uint32_t count = 0;
	int clean = 0;
	int rc = sl_clean_recover(log->dir_fd, log->dir, err, cap); /* rules 6 to 8 */
	if (rc < 0)
		return rc;
	rc = lost_load(log, err, cap);
	if (rc < 0) {
		if (err[0] == '\0')
			snprintf(err, cap, "partition %s: cannot read %s: %s", log->dir, SL_LOST_OFFSETS_FILE,
			         strerror(-rc));
		return rc;
	}
	rc = list_segments(log, &bases, &count, &clean);
	if (rc < 0) {
		snprintf(err, cap, "partition %s: cannot list segments: %s", log->dir, strerror(-rc));
		return rc;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct sl_segment *seg;
		rc = sl_segment_open(log->dir_fd, bases[i], 0, &seg);
		if (rc == 0) {
			rc = sl_log_push_segment(log, seg);
			if (rc < 0)
				sl_segment_free(seg);
		}
		if (rc == 0)
			rc = file_size(seg->log_fd, &seg->size);
		if (rc < 0)
			break;
		seg->written_end = seg->size;
		int64_t max_ts;
		uint64_t last_pos;
		/* A seal counts only on segments before the last, outside repair mode (rule 5 rebuilds them). */
		int seal;
		if (i + 1 < count && !log->cfg.repair &&
		    (seal = sl_index_read_seal(seg->off_fd, seg->time_fd, seg->size, &max_ts, &last_pos)) > 0) {
			seg->state = SL_SEG_SEALED;
			seg->compacted = seal == SL_INDEX_SEALED_COMPACTED;
			seg->max_timestamp = max_ts;
			seg->last_indexed_pos = last_pos;
			seg->synced_end = seg->size;
			seg->next_offset = seg->visible_next_offset = segment_end_before(log, bases[i + 1]);
			/* Read again only on use: a partition of many segments opens them one at a time. */
			sl_segment_close_files(seg, 0);
		}
	}
	free(bases);
	if (rc < 0) {
		snprintf(err, cap, "partition %s: cannot open segment files: %s", log->dir, strerror(-rc));
		return rc;
	}
	if (log->seg_count == 0) {
		struct sl_segment *seg;
		rc = sl_segment_open(log->dir_fd, 0, 1, &seg);
		if (rc == 0) {
			rc = sl_log_push_segment(log, seg);
			if (rc < 0)
				sl_segment_free(seg);
			else
				seg->index_complete = 1;
		}
		if (rc == 0)
			rc = open_dir_sync(log);
	} else {
		rc = clean && !log->cfg.repair ? open_clean(log) : 0;
		if (rc == 0)
			rc = open_after_crash(log, err, cap);
		else if (rc == 1)
			rc = 0;
	}
	if (rc < 0) {
		if (err[0] == '\0')
			snprintf(err, cap, "partition %s: recovery failed: %s", log->dir, strerror(-rc));
		return rc;
	}
	/* Segments before the last that are not sealed (a crash came between roll and seal, or repair rebuilt
	 * them) are sealed now, before anything new is appended (invariant 5 of log.c). */
	for (uint32_t i = 0; i + 1 < log->seg_count; i++) {
		struct sl_segment *seg = log->segs[i];
		if (seg->state == SL_SEG_SEALED)
			continue;
		if (fdatasync(seg->log_fd) < 0) {
			rc = -errno;
		} else {
			seg->synced_end = seg->size;
			rc = sl_segment_persist_index_sync(seg, 1);
		}
		if (rc < 0) {
			snprintf(err, cap, "partition %s: cannot seal a recovered segment: %s", log->dir,
			         strerror(-rc));
			return rc;
		}
		seg->state = SL_SEG_SEALED;
		seg->index_complete = 1;
	}
	if (log->stats.lost_range_new_count > 0) {
		rc = lost_save(log);
		if (rc < 0) {
			snprintf(err, cap, "partition %s: cannot write %s: %s", log->dir, SL_LOST_OFFSETS_FILE,
			         strerror(-rc));
			return rc;
		}
	}
	struct sl_segment *last = log->segs[log->seg_count - 1];
	last->state = SL_SEG_ACTIVE;
	last->created_ms = sl_clock_wall_ms();
	log->next_offset = last->next_offset;
	/* The marker must be gone, durably, before anything new is written: a crash from here on has to scan. */
	if (clean) {
		rc = unlinkat(log->dir_fd, SL_CLEAN_MARKER, 0) < 0 ? -errno : open_dir_sync(log);
		if (rc < 0) {
			snprintf(err, cap, "partition %s: cannot remove the clean-shutdown marker: %s", log->dir,
			         strerror(-rc));
			return rc;
		}
	}
	if (!log->cfg.repair)
		err[0] = '\0';
	return 0;
}
