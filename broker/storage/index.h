/* The sparse offset index and the time index of one segment, kept in memory in their on-disk byte layout and
 * written to `<base>.index` and `<base>.timeindex`.
 *
 * On-disk layout (all big-endian), one entry per `index_interval_bytes` of batches, both files in step:
 *   .index      entry i at byte 8*i:   0 u32 relative offset (batch base offset - segment base)
 *                                      4 u32 byte position of that batch in the .log file
 *   .timeindex  entry i at byte 12*i:  0 i64 largest record timestamp of every batch before that batch
 *                                      8 u32 relative offset (the same as .index entry i)
 * A sealed segment's files end with one seal entry each: .index (0xFFFFFFFF, size of the .log file) and
 * .timeindex (largest timestamp of the segment, 0xFFFFFFFF). A segment the cleaner wrote (cleaner.c) has
 * 0xFFFFFFFE in place of the second 0xFFFFFFFF: its batches' offsets may skip (invariant 10 of proto/batch.c),
 * so recovery and lookups check only that they increase.
 *
 * Invariants:
 *   1. Relative offsets and positions strictly increase; timestamps never decrease.
 *   2. Every position is the start of a batch and lies before the end of the .log file.
 *   3. An entry is on disk only once the bytes it points to are durable (fsynced), so after a crash the last
 *      entry on disk is a checkpoint: recovery scans only what lies after it.
 *   4. A seal entry is written only after the .log file was fsynced and every other entry was written.
 *
 * Entries live in fixed-size chunks that never move, so an in-flight write can point at them. */
#ifndef SL_BROKER_INDEX_H
#define SL_BROKER_INDEX_H

#include <stdint.h>
#include <sys/uio.h>

#define SL_INDEX_ENTRY_BYTES     8
#define SL_TIMEINDEX_ENTRY_BYTES 12
#define SL_INDEX_SEAL_REL        0xFFFFFFFFu
#define SL_INDEX_SEAL_COMPACTED  0xFFFFFFFEu
/* What a seal says (sl_index_load, sl_index_read_seal). */
enum { SL_INDEX_UNSEALED = 0, SL_INDEX_SEALED = 1, SL_INDEX_SEALED_COMPACTED = 2 };
/* 4096 entries: 32 KiB / 48 KiB chunks, one chunk per 16 MiB of log at the default 4 KiB interval. */
#define SL_INDEX_CHUNK_ENTRIES 4096u

struct sl_index {
	uint8_t **off_chunks;
	uint8_t **time_chunks;
	uint32_t chunk_count;
	uint32_t chunk_cap;
	uint32_t entry_count;
};

struct sl_index_entry {
	uint32_t rel_offset;
	uint32_t position;
	int64_t max_timestamp_before;
};

void sl_index_init(struct sl_index *ix);
void sl_index_free(struct sl_index *ix);
/* Add an entry after the last one; the caller keeps invariant 1. Returns 0 or -ENOMEM. */
int sl_index_add(struct sl_index *ix, const struct sl_index_entry *e);
void sl_index_get(const struct sl_index *ix, uint32_t i, struct sl_index_entry *out);
/* Forget entries from count on. */
void sl_index_truncate(struct sl_index *ix, uint32_t count);
/* Index of the last entry with rel_offset <= rel, or -1 when none is. */
int64_t sl_index_find_offset(const struct sl_index *ix, uint32_t rel);
/* Index of the last entry with max_timestamp_before < ts, or -1 when none is. */
int64_t sl_index_find_time(const struct sl_index *ix, int64_t ts);
/* Index of the last entry with position <= pos, or -1. */
int64_t sl_index_find_position(const struct sl_index *ix, uint64_t pos);
/* Fill iov with the bytes of entries [from, to) of one file (time != 0: .timeindex). Returns the iovec count
 * used (at most iov_max; fewer entries are covered if iov_max is too small: *to_out says up to where). */
int sl_index_iov(const struct sl_index *ix, int time, uint32_t from, uint32_t to, struct iovec *iov, int iov_max,
                 uint32_t *to_out);
/* Encode seal entries into the given buffers (compacted != 0: the cleaner's seal). */
void sl_index_seal_encode(uint8_t off[SL_INDEX_ENTRY_BYTES], uint8_t time[SL_TIMEINDEX_ENTRY_BYTES], uint32_t log_bytes,
                          int64_t max_timestamp, int compacted);

/* Read both files and keep the longest prefix of entries that obeys invariants 1 and 2 against log_bytes.
 * *sealed_out is SL_INDEX_SEALED(_COMPACTED) when that prefix is followed by a valid seal entry whose size equals
 * log_bytes, and
 * *seal_max_ts_out then holds the segment's largest timestamp. Returns 0 or a negative errno. */
int sl_index_load(struct sl_index *ix, int off_fd, int time_fd, uint64_t log_bytes, int *sealed_out,
                  int64_t *seal_max_ts_out);
/* Read only the seal entries at the end of both files and the entry before them: a cheap check of a sealed
 * segment at open. Returns SL_INDEX_SEALED or SL_INDEX_SEALED_COMPACTED if sealed (and fills *max_ts_out, and
 * *last_pos_out with the position of the last regular entry, 0 when there is none), 0 if not, negative errno on a
 * read error. */
int sl_index_read_seal(int off_fd, int time_fd, uint64_t log_bytes, int64_t *max_ts_out, uint64_t *last_pos_out);

#endif
