/* Helpers shared by the storage-engine tests (tests/unit/test_log_*.c): temp dirs, deterministic batches, appends
 * that wait for their callback, and a scan that reads a whole log back and validates every batch.
 *
 * Nothing here uses cmocka's asserts: the crash and disk-full tests call these helpers in forked children, where a
 * failed cmocka assert would unwind into the parent's test runner. Helpers return 0 or a negative errno and print
 * what was wrong to stderr; the tests assert on the return values. */
#ifndef SL_TESTS_LOG_TEST_UTIL_H
#define SL_TESTS_LOG_TEST_UTIL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/storage/log.h"
#include "broker/storage/ring.h"
#include "proto/base/clock.h"
#include "proto/base/fs.h"
#include "proto/batch.h"

/* The file a clean sl_log_close leaves in the partition directory (the lead's name for it). */
#define LT_CLEAN_MARKER ".clean-shutdown"

/* Capacity of the fixture's batch builder: well above the largest batch any test builds. */
#define LT_BUILDER_BYTES_MAX (1024u * 1024)

/* Waits on the ring before a helper gives up on a callback: far above what any test needs, and a bound so a
 * lost completion fails the test instead of hanging it. */
#define LT_RING_WAITS_MAX 100000

/* Log configuration most tests use: small segments so a few hundred KiB of batches roll many times, a small
 * index interval so lookups and recovery go through many index entries. */
#define LT_SEGMENT_BYTES_MAX    (64u * 1024)
#define LT_INDEX_INTERVAL_BYTES 512u

/* splitmix64: seedable and deterministic, so a failing run replays with the seed it printed. */
uint64_t lt_rand_next(uint64_t *state);
/* Uniform in [lo, hi], both included. */
int64_t lt_rand_range(uint64_t *state, int64_t lo, int64_t hi);
/* The seed of a test: $SL_TEST_SEED when set, else fallback. Printed, so a failure names the seed to replay. */
uint64_t lt_seed(const char *test_name, uint64_t fallback);
/* Clocks: proto/base/clock.h (sl_clock_wall_ms for record timestamps, sl_clock_mono_ms for deadlines). */

/* A fresh directory $TMPDIR/synclog-test-XXXXXX (or under /tmp). Returns 0 or a negative errno. */
int lt_tmpdir_make(char *path, size_t cap);
/* rm -rf: sl_fs_rm_rf (proto/base/fs.h). */
/* cp -r src dst for regular files and directories; dst must not exist. */
int lt_copy_tree(const char *src, const char *dst);
/* out = dir/name. Returns 0 or -ENAMETOOLONG. */
int lt_path_join(char *out, size_t cap, const char *dir, const char *name);
int lt_file_exists(const char *path);
/* Size of a file, or a negative errno. */
int64_t lt_file_bytes(const char *path);
/* XOR the byte at pos of path with mask. */
int lt_file_xor_byte(const char *path, uint64_t pos, uint8_t mask);
/* The final path component of the file an open fd refers to (through /proc/self/fd). */
int lt_fd_basename(int fd, char *out, size_t cap);

/* A batch described by a few numbers, so a test (or a crashed child's report) can rebuild the same bytes. Record i
 * has key "k<i>", a value of value_bytes bytes derived from seed and i (compressible when codec is zstd, random
 * otherwise), and a timestamp near timestamp_ms (lt_record_timestamp_ms: not monotonic inside the batch). */
struct lt_batch_spec {
	uint64_t seed;
	int32_t record_count;
	uint32_t value_bytes;
	int64_t timestamp_ms;
	int32_t codec; /* SL_BATCH_CODEC_NONE or SL_BATCH_CODEC_ZSTD */
};

int64_t lt_record_timestamp_ms(const struct lt_batch_spec *s, int32_t index);
/* A spec with a fresh seed, 1..records_max records of 0..value_bytes_max bytes, timestamp_ms as given, and zstd for
 * about one batch in eight (values then compress). */
void lt_spec_random(uint64_t *rng, struct lt_batch_spec *s, int32_t records_max, uint32_t value_bytes_max,
                    int64_t timestamp_ms);
/* Build the batch of s with b (base offset 0). *out stays valid until b's next reset. Returns 0 or the builder's
 * error. */
int lt_batch_build(struct sl_batch_builder *b, const struct lt_batch_spec *s, const uint8_t **out, size_t *len_out);
/* The base offset field (bytes 0..7, big-endian) of a stored batch. */
int64_t lt_batch_base_offset(const uint8_t *p);
/* 0 when stored equals orig apart from the base offset field, and that field holds base_offset; else prints the
 * first difference and returns -EBADMSG. */
int lt_batch_check_stored(const uint8_t *stored, size_t stored_len, const uint8_t *orig, size_t orig_len,
                          int64_t base_offset);

/* One append request of a test. The sl_append comes first so the callback can cast back. */
struct lt_acks {
	uint32_t count; /* callbacks run so far: each append records its place in that order */
};

struct lt_append {
	struct sl_append a;
	struct lt_acks *acks;
	int queued; /* sl_log_append accepted it: it must stay alive until done */
	int done;
	int status;
	uint32_t ack_index;
};

void lt_append_init(struct lt_append *la, struct lt_acks *acks, uint8_t *batch, size_t len, enum sl_durability level);
/* sl_log_append, then sl_ring_wait until the callback ran. Returns the callback's status, the non-zero return of
 * sl_log_append (the callback must then never run), or -ETIMEDOUT when the ring ran dry before the callback. */
int lt_append_wait(struct sl_ring *ring, struct sl_log *log, struct lt_append *la);
/* Queue every append of v in order, waiting on the ring whenever the log pushes back with -EAGAIN, then wait until
 * every callback ran. Returns 0, the first non-EAGAIN refusal, or -ETIMEDOUT. Statuses are left in v. */
int lt_append_all(struct sl_ring *ring, struct sl_log *log, struct lt_append *v, size_t count);
/* Wait on the ring until sl_log_idle. */
int lt_wait_idle(struct sl_ring *ring, struct sl_log *log);

/* What a full scan of a log found: every batch from the start offset to the next offset, concatenated. */
struct lt_scanned_batch {
	int64_t base_offset;
	int64_t last_offset;
	int64_t max_timestamp;
	int32_t record_count;
	size_t at; /* byte position in lt_scan.bytes */
	size_t len;
};

#define LT_SCAN_LOST_MAX 16

struct lt_scan {
	struct lt_scanned_batch *batches;
	size_t count;
	uint8_t *bytes;
	size_t bytes_len;
	int64_t start_offset;
	int64_t next_offset;
	size_t batches_cap; /* allocated entries of batches */
	size_t bytes_cap;   /* allocated bytes of bytes */
	/* Ranges [first, next) the log answered -ENODATA for (cut out by repair), skipped by the scan. */
	int64_t lost_first[LT_SCAN_LOST_MAX];
	int64_t lost_next[LT_SCAN_LOST_MAX];
	size_t lost_count;
};

/* Read the whole log with sl_log_read from its start offset to its next offset. Checks that every read returns
 * whole batches that pass sl_batch_validate, that offsets are consecutive from the start offset (a range the log
 * says was lost, -ENODATA, is recorded and skipped), that *next_out is one past the last record read, and that
 * the log ends exactly at sl_log_next_offset. Returns 0 (free with
 * lt_scan_free) or a negative errno after printing what was wrong. */
int lt_log_scan(struct sl_log *log, struct lt_scan *out);
void lt_scan_free(struct lt_scan *s);
/* Index of the scanned batch holding offset, or -1. */
long lt_scan_find(const struct lt_scan *s, int64_t offset);

/* What a test appended, in offset order: each batch's spec, its bytes as built (base offset 0) and its offsets. */
struct lt_model_batch {
	struct lt_batch_spec spec;
	uint8_t *bytes;
	size_t len;
	int64_t base_offset;
	int64_t last_offset;
};

struct lt_model {
	struct lt_model_batch *batches;
	size_t count;
	size_t cap;
};

int lt_model_push(struct lt_model *m, const struct lt_batch_spec *spec, const uint8_t *bytes, size_t len,
                  int64_t base_offset, int64_t last_offset);
/* Forget the batches from index count on. */
void lt_model_truncate(struct lt_model *m, size_t count);
void lt_model_free(struct lt_model *m);
/* Index of the model batch holding offset, or -1. */
long lt_model_find(const struct lt_model *m, int64_t offset);
/* 0 when the scan holds exactly the model's batches from the one at the scan's start offset to the model's end,
 * byte for byte apart from base offsets; else prints the first difference and returns -EBADMSG. */
int lt_model_check_scan(const struct lt_model *m, const struct lt_scan *scan);
/* The same for count batches: model batches from model_index against scanned batches from scan_index. */
int lt_model_check_range(const struct lt_model *m, size_t model_index, const struct lt_scan *scan, size_t scan_index,
                         size_t count);

/* The segment files (*.log) of a partition directory, sorted by the base offset their name carries. */
struct lt_segment {
	int64_t base_offset;
	char name[64];
	int64_t file_bytes;
};

int lt_segments_list(const char *dir, struct lt_segment **out, size_t *count_out);

/* A temp dir with a ring, a builder and a log configuration, for cmocka_unit_test_setup_teardown. The partition
 * log lives in root/p0; teardown closes what is open, unmounts what a test mounted and removes root. */
struct lt_fixture {
	char root[PATH_MAX];
	char dir[PATH_MAX];
	struct sl_ring ring;
	struct sl_log *log;
	struct sl_log_config cfg;
	struct sl_batch_builder builder;
	char err[512];
	char mount_dir[PATH_MAX]; /* non-empty while a test has a filesystem mounted there */
};

int lt_fixture_setup(void **state);
int lt_fixture_teardown(void **state);
/* Open fx->dir with fx->cfg into fx->log; prints fx->err on failure. */
int lt_fixture_open(struct lt_fixture *fx);
/* Close fx->log (if open). Returns sl_log_close's result. */
int lt_fixture_close(struct lt_fixture *fx);
/* Build the batch of s, append it with level and wait for the callback; on success push it to m (if m). The
 * offsets go to *base_out / *last_out when not NULL. Returns the append's status. */
int lt_append_spec(struct lt_fixture *fx, struct lt_model *m, const struct lt_batch_spec *s, enum sl_durability level,
                   int64_t *base_out, int64_t *last_out);
/* Append the batches of specs, several in flight at once (lt_append_all). levels[i] is the level of batch i, or
 * level for all when levels is NULL. Checks every append was acknowledged with status 0 and offsets consecutive
 * from the log's next offset, and (when in_order) that the callbacks ran in append order. Pushes the batches to
 * m. Returns 0 or a negative errno. */
int lt_append_specs(struct lt_fixture *fx, struct lt_model *m, const struct lt_batch_spec *specs, size_t count,
                    enum sl_durability level, const enum sl_durability *levels, int in_order);

#endif
