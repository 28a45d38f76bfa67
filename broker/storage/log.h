/* A partition log: the directory of segment files that holds one partition's batches, appended through the
 * shard's io_uring, read back as whole batches, recovered after a crash and trimmed by retention.
 *
 * Which thread may call: only the thread that owns the sl_ring given at open. Callbacks run from sl_ring_reap
 * (or sl_ring_wait) on that thread, never from inside the call that queued the work.
 *
 * Durability levels (chosen per append):
 *   none     acknowledged once the offsets are assigned and the write is queued;
 *   written  acknowledged once this batch and every batch before it are in the page cache;
 *   fsync    acknowledged once an fdatasync that began after the write finished has completed. While one
 *            fdatasync is in flight, later appends wait for the next one (group commit).
 * Readers see only batches whose write completed, in offset order, never a part of a batch. */
#ifndef SL_BROKER_LOG_H
#define SL_BROKER_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "broker/storage/ring.h"
#include "proto/base/histogram.h"

enum sl_durability { SL_DURABILITY_NONE = 0, SL_DURABILITY_WRITTEN = 1, SL_DURABILITY_FSYNC = 2 };

struct sl_log_config {
	/* Roll the active segment when the next batch would take it past this size. Kafka's default. */
	uint64_t segment_bytes_max;
	/* Roll a non-empty active segment whose first batch is older than this (0: never by age). */
	int64_t segment_age_ms_max;
	/* One sparse index entry per this many bytes of batches: bounds the bytes a lookup or a recovery scans
	 * past the nearest entry. */
	uint32_t index_interval_bytes;
	/* Appends queued or in flight at once; past it sl_log_append says -EAGAIN and the caller pushes back. */
	uint32_t inflight_appends_max;
	/* Bytes queued or in flight at once, same rule. */
	uint64_t inflight_bytes_max;
	/* The shard's bounded cache of file descriptors (files.h), shared by its logs; NULL: a private unbounded one.
	 */
	struct sl_files *files;
	/* Open even when a batch before the tail is corrupt: drop only the damaged bytes, keep every valid batch
	 * after them at its offsets, and record the offsets lost (see recovery.c, rule 5). Only an operator asks for
	 * this (synclogd --repair). */
	int repair;
	/* When set, every group commit (from its fdatasyncs' preparation to their completion) is observed here;
	 * shared by the logs of one ring (the broker's fsync latency metric). */
	struct sl_histogram *fsync_hist;
	/* Leave the directory fsyncs of open (the removal of the clean-shutdown marker, a new log's first segment) to
	 * sl_log_open_sync_all, which does those of many logs at once. One after the other they cost a disk cache
	 * flush each: 2.4 ms here, 24 s before a broker of 10,000 partitions could serve. */
	int defer_open_sync;
};

/* Kafka's defaults where Kafka has one: 1 GiB segments, 7 days, 4 KiB index interval. */
void sl_log_config_default(struct sl_log_config *cfg);

struct sl_log;
struct sl_append;
/* status is 0 or a negative errno; on 0, a->base_offset and a->last_offset hold the assigned offsets. */
typedef void (*sl_append_cb)(struct sl_append *a, int status);

/* One append request, owned by the caller, alive (with its batch bytes) until its callback ran. */
struct sl_append {
	uint8_t *batch; /* one validated batch; its base offset field is overwritten with the assigned one */
	size_t len;
	enum sl_durability level;
	sl_append_cb cb;
	void *data; /* for the caller */
	/* Set when acknowledged. */
	int64_t base_offset;
	int64_t last_offset;
	/* Private to the log. */
	struct sl_append *next;
	struct sl_segment *seg;
	uint64_t pos; /* byte position of the batch in seg */
	int64_t max_timestamp;
	int state;
};

struct sl_log_stats {
	int64_t start_offset; /* first offset still stored */
	int64_t next_offset;  /* one past the last visible (written) record */
	uint64_t bytes;       /* all segments */
	uint32_t segment_count;
	uint64_t recovered_tail_bytes; /* bytes checked by the last open's recovery scan */
	uint64_t truncated_bytes;      /* bytes cut by the last open's recovery */
	int clean_open;                /* the last open found a clean-shutdown marker */
	uint64_t write_op_count;       /* io_uring writes submitted (one may carry several batches) */
	uint64_t fsync_count;          /* group commits completed */
	uint64_t linked_fsync_count;   /* fdatasyncs submitted linked to their write (one append, log idle) */
	uint64_t appended_batch_count; /* batches acknowledged since open */
	uint32_t lost_range_count;     /* ranges of offsets repair cut out (sl_log_lost_ranges) */
	uint32_t lost_range_new_count; /* of them, found by this open (repair mode): the last ones */
};

/* A range of offsets [first, next) that repair cut out of the log because their bytes were damaged. Reads of them
 * fail with -ENODATA; the records go on at next. Kept in the partition's lost-offsets file (recovery.c). */
struct sl_log_lost {
	int64_t first;
	int64_t next;
	int64_t repaired_ms;
	int found_now; /* found by this open (repair mode), not read from the file */
};

/* Open (creating if missing) the partition log in dir; dir's parent must exist. Runs recovery synchronously:
 * meant for startup, before the loop serves. Returns 0, or a negative errno with a message in err (one line:
 * what failed, on which file and position, what to do) for -EUCLEAN (corruption before the tail; reopen with
 * repair), -EIO, -ENOSPC, -EACCES, ... */
int sl_log_open(struct sl_ring *ring, const char *dir, const struct sl_log_config *cfg, struct sl_log **out, char *err,
                size_t err_cap);

/* The directory fsyncs that opens with defer_open_sync left, for count logs, on up to threads threads at once (the
 * disk's cache flushes of concurrent fsyncs coalesce: 1,000 directories took 0.1 s on 4 threads and 2.3 s one by
 * one here). Until it ran, a log must take no append. Blocking: call it before the logs serve, with no other call
 * on them meanwhile. A log whose fsync failed keeps serving reads and refuses appends with that error (as after a
 * failed fdatasync: reopen it). Returns how many failed, with each log's 0 or negative errno in errors_out[i] when
 * errors_out is not NULL; logs without a deferred fsync are skipped (0). */
uint32_t sl_log_open_sync_all(struct sl_log *const *logs, uint32_t count, uint32_t threads, int *errors_out);

/* Queue an append of one batch. The batch must already be validated (sl_batch_validate); the log assigns
 * offsets, writes the base offset into the batch and queues the write. The write is prepared in the ring
 * (sl_ring_submit sends it). Returns 0 (cb will run exactly once), -EAGAIN when the in-flight window is full,
 * -EBADMSG for a batch whose header is invalid, -EFBIG for a batch larger than a segment, -ENOMEM when its write
 * op cannot be allocated (ops are allocated as appends need them: an idle log holds none), or the error that
 * made the log read-only (-EIO after a failed fdatasync: reopen the log). On a non-zero return cb never runs. */
int sl_log_append(struct sl_log *log, struct sl_append *a);

/* A run of whole, visible batches from one segment: file descriptor and byte range. The caller may pread or
 * send it.
 *
 * How long fd stays valid: segment files are opened on use and closed, least recently used first, when the
 * shard's descriptor budget needs room (files.h). So fd is valid until the next call into any log of the same
 * ring, unless the span is pinned: sl_log_span_pin keeps the segment's file open (its fd valid, the segment not
 * dropped by retention) until sl_log_span_unpin. A read that finishes before the caller's next call into a log
 * (pread right away) needs no pin; a read submitted to io_uring, completing later, must pin before it submits and
 * unpin when it completed. Every pin is undone before sl_log_close. */
struct sl_log_span {
	int fd;
	uint64_t pos;
	uint64_t len;
	int64_t first_offset;   /* base offset of the first batch in the span */
	int64_t next_offset;    /* one past the last record of the span */
	int compacted;          /* from a segment the cleaner wrote: its batches may hold fewer records than offsets */
	struct sl_segment *seg; /* private: what a pin holds open */
};

/* Locate the batches holding offset and after, up to bytes_max (at least one whole batch is returned even if it
 * is larger). A batch holding offset may start before it. A span never crosses a lost range. Returns 0
 * (span->len == 0 when offset is the log end), -ERANGE when offset is before the start or after the end,
 * -ENODATA when offset lies in a lost range (span->first_offset and span->next_offset then give the range). */
int sl_log_locate(struct sl_log *log, int64_t offset, uint64_t bytes_max, struct sl_log_span *span);
/* sl_log_locate for the broker's loop, which must not wait on the disk: the same answers, or -EWOULDBLOCK when
 * the span cannot be found from memory and the page cache alone (a sealed segment whose index is not loaded
 * since the start, or batch headers not in the page cache). Then span->seg and span->first_offset say which
 * segment and offset to warm up with the job below; nothing else of span is set. */
int sl_log_locate_cached(struct sl_log *log, int64_t offset, uint64_t bytes_max, struct sl_log_span *span);

/* Private to log.c: what a job that reads one segment off the loop (a fetch warm-up, a time lookup, below)
 * carries from its prepare to its run and finish. */
struct sl_log_seg_job {
	int64_t key;    /* what the walk looks for: an offset, or a timestamp in ms when by_time */
	int by_time;    /* key is a timestamp: the time index gives the walk's start */
	int log_fd;     /* a dup of the segment's .log descriptor, or -1 */
	int load_index; /* the segment's index is not in memory: the run loads it from dir */
	int compacted;
	int64_t base_offset;
	uint64_t size;        /* the segment's .log size (a sealed index's seal must match it) */
	uint64_t written_end; /* the walk stops here: only written batches are read */
	uint64_t from_pos;    /* the walk starts here (the index entry nearest before the key) */
	int64_t from_offset;
	uint32_t scan_read_bytes;
	char *dir;
	void *index; /* struct sl_index loaded by the run, or NULL */
};

/* The disk work an sl_log_locate_cached that said -EWOULDBLOCK needs, in three steps, so that the loop never
 * reads a file for a fetch (the time lookup's model, below):
 *   1. sl_log_warm_prepare, on the log's thread, with the span that said -EWOULDBLOCK (at once, before anything
 *      else runs on the log): a dup of the segment's .log descriptor (retention or the cleaner may remove the
 *      segment meanwhile; the dup keeps the bytes readable), its size, and where the walk starts: an entry of
 *      its in-memory index, or the folder to load a sealed segment's index from.
 *   2. sl_log_warm_run, on any thread, touching nothing of the log: loads the index if needed (its files must
 *      carry the seal of a segment of the same size and kind, or the run says -ESTALE: the cleaner replaced
 *      them), then walks the batch headers the locate will walk, which leaves them in the page cache.
 *   3. sl_log_warm_finish, on the log's thread: the index the run loaded goes to its segment when that segment
 *      is still the same one and has none, and the job is released. Then sl_log_locate_cached again: it finds
 *      what it needs in memory, unless the pages were evicted or the segment changed meanwhile (warm up again;
 *      a caller bounds how often). A job whose log went away is released with sl_log_warm_release. */
struct sl_log_warm_job {
	int rc; /* 0 or a negative errno (-ESTALE: the segment's files were replaced) */
	/* Private. */
	uint64_t bytes_max;
	struct sl_log_seg_job seg; /* key: the offset the locate looked for */
};
/* Step 1: bytes_max as given to sl_log_locate_cached. Returns 0 or a negative errno (nothing to release). */
int sl_log_warm_prepare(struct sl_log *log, const struct sl_log_span *cold, uint64_t bytes_max,
                        struct sl_log_warm_job *job);
/* Step 2: blocking, on any thread; sets job->rc. */
void sl_log_warm_run(struct sl_log_warm_job *job);
/* Step 3: returns job->rc. */
int sl_log_warm_finish(struct sl_log *log, struct sl_log_warm_job *job);
void sl_log_warm_release(struct sl_log_warm_job *job);

/* sl_log_locate, then pread into buf (cap bytes; at most cap bytes of whole batches are returned). *len_out is
 * the byte count, *next_out one past the last record returned (for -ENODATA: where the records go on). Returns
 * 0, -ERANGE, -ENODATA, -EIO, -ENOBUFS when the first batch does not fit in cap. */
int sl_log_read(struct sl_log *log, int64_t offset, uint8_t *buf, size_t cap, size_t *len_out, int64_t *next_out);
/* Keep span->fd valid across other calls (see struct sl_log_span); each pin needs its unpin. Pin opens the
 * segment's file again if the cache closed it since sl_log_locate, and sets span->fd to what is open now: a
 * caller may locate many spans first and pin each just before it reads, as long as nothing could drop the
 * segment in between (the same loop pass: retention runs from a timer). Returns 0 or a negative errno (then not
 * pinned). Unpin of a span without a segment (an error, a lost range) is a no-op. */
int sl_log_span_pin(struct sl_log *log, struct sl_log_span *span);
void sl_log_span_unpin(struct sl_log *log, const struct sl_log_span *span);
/* The lost ranges, in offset order (*out valid until the next call that changes the log). */
uint32_t sl_log_lost_ranges(const struct sl_log *log, const struct sl_log_lost **out);
/* The first offset whose record timestamp is >= timestamp_ms; the log end (next offset) when none is. Blocking
 * (it may load an index and reads batch headers): for open and tools; the broker's loop uses the job below. */
int sl_log_offset_for_time(struct sl_log *log, int64_t timestamp_ms, int64_t *offset_out);

/* A timestamp lookup in three steps, so that the loop never reads a file for it:
 *   1. sl_log_time_prepare, on the log's thread: picks the first segment whose newest record is at or after the
 *      time (memory only), and either answers at once (no such segment: the log end) or fills the job with what
 *      the read needs: a dup of the segment's .log descriptor (retention or the cleaner may close and remove
 *      the segment meanwhile; the dup keeps the bytes readable), its size, and where to start: an entry of its
 *      in-memory index, or the folder to load a sealed segment's index from.
 *   2. sl_log_time_run, on any thread, touching nothing of the log: loads the index if needed (the .index and
 *      .timeindex files are opened by path and must carry the seal of a segment of the same size and kind, or
 *      the run says -ESTALE: the cleaner replaced the files meanwhile), scans batch headers from the nearest
 *      entry and decodes the one batch that holds the time.
 *   3. sl_log_time_finish, on the log's thread: the index the run loaded goes to its segment when that segment
 *      is still the same one and has none (the next lookup or fetch there reads nothing), and the job's
 *      descriptor and memory are released. A job whose log went away is released with sl_log_time_release.
 * Results: offset, and the timestamp of the record found (-1 when the answer is the log end). */
struct sl_log_time_job {
	int64_t timestamp_ms; /* asked */
	int64_t offset;       /* answer: the first offset whose record timestamp is >= timestamp_ms */
	int64_t found_timestamp_ms;
	int rc; /* 0 or a negative errno (-ESTALE: prepare again) */
	/* Private. */
	struct sl_log_seg_job seg; /* key: timestamp_ms */
};
/* Step 1. Returns 1 when answered (offset set, nothing to run or finish), 0 when the job must run then finish,
 * or a negative errno (nothing to release). */
int sl_log_time_prepare(struct sl_log *log, int64_t timestamp_ms, struct sl_log_time_job *job);
/* Step 2: blocking, on any thread; sets job->rc, offset and found_timestamp_ms. */
void sl_log_time_run(struct sl_log_time_job *job);
/* Step 3: returns job->rc. */
int sl_log_time_finish(struct sl_log *log, struct sl_log_time_job *job);
void sl_log_time_release(struct sl_log_time_job *job);

void sl_log_get_stats(const struct sl_log *log, struct sl_log_stats *out);
int64_t sl_log_start_offset(const struct sl_log *log);
int64_t sl_log_next_offset(const struct sl_log *log);
/* Bytes of batches made visible since the log was opened: only grows (retention does not lower it), so the
 * difference of two readings is what was appended between them. O(1), for long polls. */
uint64_t sl_log_visible_bytes(const struct sl_log *log);

/* Segments that retention took out of a log and whose files are still to be removed. Removing a file of a
 * gigabyte (the unlink and the last close free its blocks) and fsyncing the directory take milliseconds, so the
 * broker does it off its loop: sl_log_retain_detach only takes the segments out of the log (no system call but
 * one dup of the directory), and sl_log_garbage_remove, called on any thread, removes their files. A crash in
 * between leaves the files, and the next open serves them again until the next retention pass: nothing that was
 * still wanted is ever lost. Bounded: at most SL_LOG_GARBAGE_SEGMENTS_MAX segments per call; the rest go at the
 * next pass. */
#define SL_LOG_GARBAGE_SEGMENTS_MAX 64
struct sl_log_garbage {
	int dir_fd; /* a dup of the log's directory, or -1 when nothing was detached */
	uint32_t count;
	struct {
		int64_t base_offset;
		int fds[3]; /* .log, .index, .timeindex: closed by sl_log_garbage_remove */
	} segs[SL_LOG_GARBAGE_SEGMENTS_MAX];
};

/* Retention: take out sealed segments whose newest record is older than now_ms - retention_ms (if retention_ms
 * >= 0), then the oldest sealed segments while the log is larger than retention_bytes (if >= 0). Whole segments
 * only; the active segment is never taken. Readers no longer see them when this returns; their files go with
 * sl_log_garbage_remove. Returns 0 or a negative errno (-EMFILE when the directory cannot be dup'ed: nothing is
 * taken then). */
int sl_log_retain_detach(struct sl_log *log, int64_t now_ms, int64_t retention_ms, int64_t retention_bytes,
                         struct sl_log_garbage *garbage);
/* Unlink the detached segments' files, close their descriptors, fsync the directory, close it. Blocking: call
 * off the loop. Safe on an empty garbage. Returns the first error. */
int sl_log_garbage_remove(struct sl_log_garbage *garbage);
/* Both at once, for tools and tests: *dropped_out counts removed segments. */
int sl_log_retain(struct sl_log *log, int64_t now_ms, int64_t retention_ms, int64_t retention_bytes,
                  uint32_t *dropped_out);

/* Retention keeps every segment holding an offset >= offset (INT64_MAX, the default: no floor): the broker sets
 * it to the lowest committed offset of a topic's groups with --retain-for-groups. */
void sl_log_set_retention_floor(struct sl_log *log, int64_t offset);
/* 1 when retention would drop the oldest segment now but the floor keeps it: a group's unread records are past
 * the topic's retention (its lag is at risk); *held_end_out is then one past that segment's last offset, so groups
 * committed below it are the ones holding it. */
int sl_log_retention_held(const struct sl_log *log, int64_t now_ms, int64_t retention_ms, int64_t retention_bytes,
                          int64_t *held_end_out);

/* The log's directory, for files kept beside the segments (the producer-state snapshot), opened if the file cache
 * had closed it. Valid until the next call into a log of the same ring (files.h): dup it right away to use it
 * elsewhere. Returns the descriptor or a negative errno. */
int sl_log_dir_fd(struct sl_log *log);

/* New segment limits for the log (a topic's settings changed): the active segment rolls by them from the next
 * append or age check on; a batch larger than segment_bytes_max is refused from then on. */
void sl_log_set_segment_limits(struct sl_log *log, uint64_t segment_bytes_max, int64_t segment_age_ms_max);

/* Roll the active segment if it is older than segment_age_ms_max (call from a timer). */
int sl_log_maybe_roll(struct sl_log *log, int64_t now_ms);

/* Roll the active segment now if it holds anything, so that what it holds can be sealed and cleaned (a manual
 * compaction). Returns 0 or the error that made the log read-only. */
int sl_log_roll_now(struct sl_log *log);

/* The log was opened with another descriptor cache than files (its own with cfg.files NULL, or a creation's
 * bounded one, off the ring's thread): move its descriptors into files, the ring thread's cache, which bounds them
 * from now on. */
void sl_log_move_files(struct sl_log *log, struct sl_files *files);
/* Free an idle log (sl_log_idle, nothing pinned) without making anything durable: no fsync, no clean marker. For a
 * log whose files are being deleted. */
void sl_log_discard(struct sl_log *log);

/* True when nothing is queued, in flight or waiting for an fsync. */
int sl_log_idle(const struct sl_log *log);

/* Finish all queued work (waiting on the ring), fsync, persist the indexes, leave the clean-shutdown marker,
 * free. Returns 0 or the first error met (the marker is then not written, so the next open scans). */
int sl_log_close(struct sl_log *log);
/* sl_log_close of count logs that share one ring: their queued work finishes on this thread, then the fsyncs, index
 * writes and markers of all of them run on up to threads threads at once (about six fsyncs per log: 7-19 s for
 * 1,000 partitions one by one here). Returns how many failed, with each log's result in errors_out[i] when it is
 * not NULL. */
uint32_t sl_log_close_all(struct sl_log *const *logs, uint32_t count, uint32_t threads, int *errors_out);

#endif
