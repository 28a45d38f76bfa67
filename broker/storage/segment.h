/* One segment of a partition log: the `<base>.log` file of batches with its two index files, and the state that
 * tracks which of its bytes are assigned, written, fsynced and sealed. Shared by log.c and recovery.c; nothing
 * outside broker/ sees it.
 *
 * Byte positions of a segment only grow, in this order (invariant):
 *   synced_end <= written_end <= size
 *   size         bytes assigned to appends (the next append's position)
 *   written_end  every byte below it was written (contiguous prefix of completed writes); readers see up to here
 *   synced_end   every byte below it was covered by a completed fdatasync
 *
 * States:  ACTIVE --roll--> ROLLED --all writes done, sl_log seal starts--> SEALING --index fsynced--> SEALED
 *
 * Descriptors (files.h): a segment that is not sealed has its three files open exactly while its log's folder is
 * (log.c, the log's head entry). A sealed segment needs only its .log file, which is its own entry of the file
 * cache, opened by path on use; its index lives in memory once loaded, and the index files are opened only to
 * load it. A descriptor of -1 means closed.
 *
 * A SEALED segment may be replaced whole by one the cleaner wrote (cleaner.c): compacted, also SEALED, covering
 * the same offsets with some records gone. */
#ifndef SL_BROKER_SEGMENT_H
#define SL_BROKER_SEGMENT_H

#include <stdint.h>
#include <sys/uio.h>

#include "broker/storage/files.h"
#include "broker/storage/index.h"
#include "broker/storage/ring.h"

enum sl_segment_state { SL_SEG_ACTIVE = 0, SL_SEG_ROLLED, SL_SEG_SEALING, SL_SEG_SEALED };

/* Segment file names: base offset zero-padded to 20 digits, as Kafka names them. */
#define SL_SEGMENT_NAME_BYTES 40
#define SL_INDEX_IOV_MAX      32

struct sl_log;
struct sl_segment;

/* One I/O of a segment's index work (checkpoint or seal step). */
struct sl_seg_io {
	struct sl_io io;
	struct sl_segment *seg;
	size_t expect_bytes; /* 0 for an fsync */
	struct iovec iov[SL_INDEX_IOV_MAX + 1];
};

struct sl_segment {
	struct sl_log *log;
	int64_t base_offset;
	int64_t next_offset;         /* one past the last record assigned */
	int64_t visible_next_offset; /* one past the last record below written_end */
	uint64_t size;
	uint64_t written_end;
	uint64_t synced_end;
	uint64_t sync_target;  /* written_end when the in-flight fdatasync began */
	int64_t max_timestamp; /* largest record timestamp below written_end; INT64_MIN when none */
	int64_t created_ms;
	uint64_t last_indexed_pos; /* position of the newest index entry, 0 for none */
	int log_fd;
	int off_fd;
	int time_fd;
	enum sl_segment_state state;
	int index_complete; /* the in-memory index covers every batch (false for sealed segments not yet
	                     * loaded since open) */
	struct sl_index index;
	uint32_t index_persisted;  /* entries known to be in the files */
	uint32_t index_writing_to; /* entries the in-flight index write will have persisted */
	int io_pending;            /* index/seal SQEs in flight */
	int io_error;              /* first error of the current index/seal step */
	int seal_step;             /* log.c: STEP_*, the seal's state machine */
	uint64_t seal_flushed_end; /* the seal's paced write-back reached this position (log.c, seal_flush_next) */
	struct sl_seg_io ios[3];
	struct sl_seg_io sync_io; /* the group commit's fdatasync of this segment */
	int sync_inflight;
	int sync_linked;   /* the in-flight fdatasync is linked to a write (log.c, sync_link) */
	int sync_canceled; /* ...and that write came up short or failed, so it did not run */
	int seal_blocked;  /* the last seal step failed: retry on the next append, not from its completion */
	int compacted;     /* written by the cleaner: offsets may skip (index.h); persisted in its seal */
	int cleaning;      /* a cleaner job reads it and will replace it: retention leaves it alone */
	uint8_t seal_off[SL_INDEX_ENTRY_BYTES];
	uint8_t seal_time[SL_TIMEINDEX_ENTRY_BYTES];
	struct sl_file_entry entry; /* a sealed segment's .log in the file cache */
	uint32_t pins;              /* readers holding log_fd open (sl_log_span_pin) */
};

void sl_segment_name(char *buf, int64_t base_offset, const char *ext);
/* Open, by path in the folder dir, the segment file of base_offset with extension ext (".log", ".index",
 * ".timeindex"), with the open(2) flags given (O_CLOEXEC is added). Returns the descriptor or a negative errno. */
int sl_segment_file_open(const char *dir, int64_t base_offset, const char *ext, int flags);
/* Open (create with create != 0) the three files of a segment in dir_fd. Returns 0 or a negative errno. */
int sl_segment_open(int dir_fd, int64_t base_offset, int create, struct sl_segment **out);
/* The same for files named with suffix after their extension ("00..05.log.cleaned": the cleaner's output). */
int sl_segment_open_suffixed(int dir_fd, int64_t base_offset, const char *suffix, int create, struct sl_segment **out);
/* Close its files and free it. */
void sl_segment_free(struct sl_segment *seg);
/* Open again, by path in the folder dir, the files of a segment whose descriptors were closed: the .log, and the
 * index files too when with_index. Returns 0 or a negative errno (nothing is left half open). */
int sl_segment_reopen(struct sl_segment *seg, const char *dir, int with_index);
/* Close the index files, and the .log too unless index_only. */
void sl_segment_close_files(struct sl_segment *seg, int index_only);
/* Free the segment's memory but hand its three descriptors (.log, .index, .timeindex) to the caller, who closes
 * them (retention closes them off the loop: the last close of a removed file frees its blocks). */
void sl_segment_free_keep_fds(struct sl_segment *seg, int fds_out[3]);
/* Remove the files of a segment (after free). Returns 0 or a negative errno. */
int sl_segment_unlink(int dir_fd, int64_t base_offset);
/* Load the whole index from the files if it is not in memory (sealed segments are loaded lazily, their index files
 * opened for it and closed again). */
int sl_segment_load_index(struct sl_segment *seg);

/* Called for each valid batch a scan meets. Returning non-zero stops the scan with that value. */
struct sl_batch_header;
typedef int (*sl_segment_scan_cb)(struct sl_segment *seg, uint64_t pos, const struct sl_batch_header *h, void *ctx);

/* What a scan does, as flags (a plain 1 is SL_SCAN_VERIFY_CRC, 0 none of them). */
#define SL_SCAN_VERIFY_CRC  1 /* read whole batches and check their CRC32C; without it only headers (lookups) */
#define SL_SCAN_CACHED_ONLY 2 /* read only what the page cache holds (preadv2 RWF_NOWAIT): the broker's loop */

/* Walk the batches of seg from pos `from` to `to`, checking each one's header, length, CRC32C and that its base
 * offset is *expect_offset (then advanced past it; INT64_MIN: take the first as it is; in a compacted segment at
 * least *expect_offset, and its record count at most lastOffsetDelta + 1). Sets *end_out to the
 * position where the walk stopped: `to` when every batch was valid, else the start of the first bad one, with
 * *why saying what was wrong. flags: SL_SCAN_*. Returns 0 (walk ended, see *end_out), the callback's non-zero
 * value, -EWOULDBLOCK with SL_SCAN_CACHED_ONLY when a byte it needs is not in the page cache (nothing was
 * waited for: read it elsewhere and scan again), or a negative errno on a read error. */
int sl_segment_scan(struct sl_segment *seg, uint64_t from, uint64_t to, int flags, int64_t *expect_offset,
                    uint64_t *end_out, const char **why, sl_segment_scan_cb cb, void *ctx);
/* The same with the size of the first read given (lookups read little; recovery reads 1 MiB at a time). */
int sl_segment_scan_sized(struct sl_segment *seg, uint64_t from, uint64_t to, size_t read_bytes, int flags,
                          int64_t *expect_offset, uint64_t *end_out, const char **why, sl_segment_scan_cb cb,
                          void *ctx);

#endif
