/* Helpers shared by the cleaner tests (tests/unit/test_clean_*.c): a generator of change streams over a few hundred
 * keys (versions in order and out of order, duplicates, deletes, unversioned keys), appending them to a log, the
 * replay model (the applier's rules of consumer/sync/apply.h, rules 4-6) and a reader that replays a log with
 * gaps. Like log_test_util, helpers return 0 or a negative errno and print what was wrong: crash tests call them in
 * forked children. */
#ifndef SL_TESTS_CLEAN_TEST_UTIL_H
#define SL_TESTS_CLEAN_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "broker/storage/cleaner.h"
#include "log_test_util.h"

/* Keys are "k<number>" with number below this. */
#define CT_KEYS_MAX 1000

struct ct_rec {
	uint32_t key;
	int64_t version; /* SL_VERSION_NONE: none */
	int op;          /* SL_OP_UPSERT or SL_OP_DELETE */
	char value[40];
	int64_t offset; /* assigned by ct_append */
};

struct ct_stream {
	struct ct_rec *recs;
	size_t count, cap;
	/* Generator state per key. */
	int64_t last_version[CT_KEYS_MAX];
	uint8_t mode[CT_KEYS_MAX]; /* 0 versioned, 1 unversioned, 2 mixed */
	uint64_t seq;
};

/* Add count generated records over keys keys (<= CT_KEYS_MAX): about 12% deletes, 10% out-of-order (older)
 * versions, 5% exact duplicates of an earlier record of the key; a tenth of the keys carry no versions and a
 * tenth mix both. */
int ct_stream_gen(uint64_t *rng, struct ct_stream *s, size_t count, uint32_t keys);
void ct_stream_free(struct ct_stream *s);
/* Record i of a stream has timestamp CT_TIMESTAMP_MS_BASE + 10 * i (a time lookup then has one answer). */
#define CT_TIMESTAMP_MS_BASE 1700000000000LL
int64_t ct_timestamp_ms(size_t index);
/* Append records [from, to) in batches of 1..20 records (zstd for about one in four), at `written`; sets each
 * record's offset. */
int ct_append(struct lt_fixture *fx, uint64_t *rng, struct ct_stream *s, size_t from, size_t to);
/* Roll the active segment (if it holds anything) and wait until every rolled segment is sealed. */
int ct_roll_and_seal(struct lt_fixture *fx);

/* The state a replay reaches per key. */
struct ct_key_state {
	uint8_t exists, deleted;
	int64_t version;
	char value[40];
};
struct ct_state {
	struct ct_key_state keys[CT_KEYS_MAX];
	uint64_t records;
	int64_t last_offset; /* offsets must increase: checked by ct_state_apply */
};

void ct_state_init(struct ct_state *st);
/* One record through the applier's rules. */
void ct_state_apply_rec(struct ct_state *st, uint32_t key, int64_t version, int op, const char *value);
/* The state the stream [0, count) reaches (the uncompacted history). */
void ct_state_of_stream(const struct ct_stream *s, size_t count, struct ct_state *st);
/* Replay the log from its start offset to its end: checks whole batches, offsets strictly increasing, and (when s
 * is given) that each record equals the stream's record at its offset. */
int ct_state_of_log(struct sl_log *log, const struct ct_stream *s, struct ct_state *st);
/* 0 when a and b agree on every key; with deleted_absent, keys deleted in `want` must be absent in `got`. */
int ct_state_compare(const struct ct_state *want, const struct ct_state *got, int deleted_absent);

/* sl_clean_prepare, sl_clean_run, sl_clean_finish, sl_clean_job_free in this thread. Returns the run's status. */
int ct_clean(struct lt_fixture *fx, const struct sl_clean_params *p, struct sl_clean_stats *stats_out);
/* Parameters of a clean now: tombstones kept a day, no group, a 16 MiB map, unthrottled. */
void ct_params(struct sl_clean_params *p);

#endif
