/* The partition log's state, shared by log.c (appends, reads, retention, close) and recovery.c (open). Private
 * to broker/.
 *
 * Append lifecycle (each struct sl_append, in offset order):
 *   QUEUED   offsets assigned, bytes in a write op that is prepared or in flight   (log->queue)
 *   WRITTEN  its write completed, but an earlier append's has not                   (log->queue)
 *   visible  the contiguous prefix advanced past it: readers see it; acknowledged now unless level is fsync
 *   SYNCWAIT waiting for a group commit whose fdatasync began after it was written   (log->sync_list)
 *   FAILED   its write failed: once no write is in flight, the log is cut back to the first failed append
 *            and it and every later append are failed (log stays exactly as before them). */
#ifndef SL_BROKER_LOG_IMPL_H
#define SL_BROKER_LOG_IMPL_H

#include "broker/storage/log.h"
#include "broker/storage/segment.h"

enum { SL_APPEND_QUEUED = 1, SL_APPEND_WRITTEN, SL_APPEND_SYNCWAIT, SL_APPEND_FAILED };

/* One write op gathers the appends of one pass that are contiguous in one segment: one SQE, one writev. 64
 * iovecs keep an op's footprint near 1 KiB while letting a pass of small batches go out in few syscalls. */
#define SL_WRITE_IOV_MAX      64
/* An op stops growing at 1 MiB: io_uring runs each buffered write in one worker, so a few large writes in
 * parallel copy faster than one huge one, while small batches still share a syscall. */
#define SL_WRITE_OP_BYTES_MAX (1u << 20)
/* Write ops are allocated this many at a time, when the appends not yet written need them, and kept until close:
 * an idle partition holds none. Allocating the whole pool (inflight_appends_max ops of about 1.1 KiB) at open
 * cost 1.1 MiB of RSS per partition, 11 GiB for 10,000 idle ones (bench/curve_partitions.sh). 16 ops are about
 * 18 KiB: a partition that takes a burst of small batches grows its pool in a few steps. */
#define SL_WRITE_OPS_CHUNK    16

#define SL_WRITE_OPS_CHUNK 16

#define SL_CLEAN_MARKER ".clean-shutdown"

struct sl_write_op {
	struct sl_io io;
	struct sl_log *log;
	struct sl_segment *seg;
	struct sl_append *first;
	uint32_t append_count;
	uint64_t pos;
	uint64_t total;
	uint64_t done;
	struct io_uring_sqe *sqe; /* editable while submit_seq matches the ring's */
	uint64_t submit_seq;
	int iov_count;
	int iov_start;   /* first iovec not yet fully written (short writes) */
	int sync_linked; /* an fdatasync of op->seg follows this write (IOSQE_IO_LINK) */
	struct iovec iov[SL_WRITE_IOV_MAX];
	struct sl_write_op *next_free;
};

/* A block of SL_WRITE_OPS_CHUNK write ops; the log keeps its blocks in a list and frees them at close. */
struct sl_write_op_chunk {
	struct sl_write_op_chunk *next;
	struct sl_write_op ops[SL_WRITE_OPS_CHUNK];
};

struct sl_dir_io {
	struct sl_io io;
	struct sl_log *log;
};

struct sl_log {
	struct sl_ring *ring;
	struct sl_log_config cfg;
	char *dir;
	/* Descriptors (files.h). The head entry holds the folder (dir_fd) and the three files of every segment not
	 * sealed yet, opened and closed together: dir_fd >= 0 exactly while they are open. Each sealed segment's
	 * .log is an entry of its own. files is cfg.files, or own_files (unbounded) when the config gives none. */
	int dir_fd;
	struct sl_files *files;
	struct sl_files own_files;
	struct sl_file_entry head;
	struct sl_segment **segs; /* oldest first; the last one is active */
	uint32_t seg_count;
	uint32_t seg_cap;
	int64_t next_offset;    /* next offset to assign */
	uint64_t visible_bytes; /* sl_log_visible_bytes */

	struct sl_append *queue_head, *queue_tail; /* QUEUED/WRITTEN/FAILED, offset order */
	struct sl_append *sync_head, *sync_tail;   /* SYNCWAIT, offset order */
	uint32_t unacked_count;                    /* appends taken and not yet acknowledged */
	uint64_t unacked_bytes;
	/* Appends whose write has not completed: the I/O window (inflight_appends_max). Appends waiting only for
	 * a group commit do not count, so writes go on while an fdatasync runs; their memory is still bounded
	 * by inflight_bytes_max through unacked_bytes. */
	uint32_t unwritten_count;

	/* Ops come in chunks of SL_WRITE_OPS_CHUNK, allocated as appends need them (one op per unwritten append at
	 * most) up to inflight_appends_max: a partition that is written slowly holds one chunk, not the 1.2 MB a
	 * full pool takes, which at 10,000 partitions was 12 GB. */
	struct sl_write_op **op_chunks;
	uint32_t op_chunk_count;
	struct sl_write_op *free_ops;
	struct sl_write_op *open_op; /* last prepared op, extendable until submitted */
	uint32_t write_ops_inflight;
	/* The first append taken while a write of this log was submitted and not complete; it and every append
	 * after it in the queue wait for that write and then go out together (log.c, writes_submitted). */
	struct sl_append *held_first;

	int sync_pending;        /* fdatasync SQEs of the current group commit */
	int64_t sync_started_ns; /* when the current group commit's first fdatasync was prepared */
	int sync_error;
	int dir_dirty; /* a segment file was created or removed since the directory was last fsynced */
	struct sl_dir_io dir_io;

	/* Offsets repair cut out (recovery.c, rule 5), sorted, from the partition's lost-offsets file. */
	struct sl_log_lost *lost;
	uint32_t lost_count;
	uint32_t lost_cap;

	int rollback_errno; /* a write failed: no new appends until the log is cut back */
	int fatal_errno;    /* an fdatasync failed: what is durable is unknown; reopen the log */
	int completing;     /* inside a completion callback */
	int cache_hold;     /* the head must stay open: a close or open fsync pass works on it (log.c) */
	/* Opened with defer_open_sync and its directory not fsynced yet: no append until sl_log_open_sync_all. */
	int open_sync_pending;

	/* Retention drops no segment holding offsets at or past this (sl_log_set_retention_floor). */
	int64_t retention_floor_offset;

	struct sl_log_stats stats;
};

/* recovery.c: the lost range holding offset, or NULL. */
const struct sl_log_lost *sl_log_lost_find(const struct sl_log *log, int64_t offset);
/* recovery.c: fill log->segs from log->dir_fd and leave the log ready for appends. */
int sl_log_recover(struct sl_log *log, char *err, size_t err_cap);
/* log.c: append a segment to log->segs (and set it up with the log's file cache). */
int sl_log_push_segment(struct sl_log *log, struct sl_segment *seg);
/* log.c: open the head entry (folder and unsealed segments) if closed, and mark it used. 0 or a negative errno. */
int sl_log_head_open(struct sl_log *log);
/* log.c: the head's descriptors changed (a segment was added, sealed or removed): count them again. */
void sl_log_head_recount(struct sl_log *log);
/* log.c: a sealed segment made elsewhere (the cleaner) joins the log: set up with its file cache, its index files
 * closed, its .log an entry of its own. The caller puts it in log->segs. */
void sl_log_adopt_sealed(struct sl_log *log, struct sl_segment *seg);
/* log.c: write a segment's unpersisted index entries (and its seal entries when seal != 0) with pwrite and
 * fdatasync the index files. For open and close, when the loop is not serving. */
int sl_segment_persist_index_sync(struct sl_segment *seg, int seal);

#endif
