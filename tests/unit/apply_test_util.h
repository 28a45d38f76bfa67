/* Helpers shared by the applier tests (tests/unit/test_apply_*.c): a fake record source holding records in
 * memory, a real SQLite target in a temp dir behind a store wrapper that can fail on demand, a recording dead-
 * letter sink, a fake clock, and queries of the target's tables.
 *
 * Like log_test_util.h, nothing here uses cmocka's asserts (the crash test runs an engine in a forked child):
 * helpers return values, the tests assert on them. */
#ifndef SL_TESTS_APPLY_TEST_UTIL_H
#define SL_TESTS_APPLY_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumer/sync/apply.h"

#define AT_TOPIC          "orders"
#define AT_GROUP          "target-a"
#define AT_PARTITIONS_MAX 4
#define AT_RECORDS_MAX    4096
#define AT_DEAD_MAX       64
/* The fake clock starts here: 2024-01-01T00:00:00Z. */
#define AT_CLOCK_START_MS 1704067200000LL

struct at_record {
	char key[32];
	char value[96];
	char ik[32];
	bool has_key;
	bool has_value;
	bool has_ik;
	int64_t version;
	enum sl_op op;
	enum sl_origin origin; /* live unless set with at_origin_set */
};

/* Records per partition; offset = index. Reads up to batch_records_max records per partition per fetch. */
struct at_source {
	struct at_record recs[AT_PARTITIONS_MAX][AT_RECORDS_MAX];
	int64_t count[AT_PARTITIONS_MAX];
	int64_t position[AT_PARTITIONS_MAX];
	int64_t batch_end[AT_PARTITIONS_MAX];
	uint32_t part_count;
	uint32_t cur;
	uint32_t batch_records_max;
	/* A source that forgets seeks: it re-reads from redeliver_from after every seek (a broker gone back). */
	bool ignore_seek;
	int64_t redeliver_from;
	uint32_t seeks;
	uint32_t seek_failures; /* the next seeks fail (-EIO) and change nothing */
	uint32_t commits;
	int64_t committed[AT_PARTITIONS_MAX]; /* last position committed to the "broker"; -1 none */
};

struct at_dead {
	uint32_t partition;
	int64_t offset;
	char key[32];
	char error[256];
	bool transient;
};

struct at_sink {
	struct at_dead dead[AT_DEAD_MAX];
	uint32_t count;
	uint32_t calls;
	int fail_rc; /* returned (without keeping the record) while not 0 */
};

/* A store wrapper over SQLite that fails one operation on demand. */
struct at_faults {
	const char *op;    /* "upsert", "commit", "offset_write", ... or NULL */
	uint32_t after;    /* let this many calls of op through first */
	uint32_t times;    /* then fail this many calls */
	int rc;            /* with this error */
	bool exit_instead; /* _exit(0) the process instead: a crash in the middle of a transaction */
	uint32_t calls;
};

struct at_clock {
	int64_t now_ms;
	uint64_t slept_ms;
	uint32_t sleeps;
};

struct at_env {
	char dir[256];
	char path[300];
	struct sl_apply_sqlite *db;
	struct sl_apply_store sqlite_store; /* the real one */
	struct sl_apply_store store;        /* the wrapper the engine uses */
	struct at_faults faults;
	struct at_source *src;
	struct sl_apply_source source;
	struct at_sink sink;
	struct at_clock clock;
	struct sl_apply_options options;
	struct sl_apply *engine;
};

/* Whether the store hides its write_if_newer from the engine (which then uses key_get and a write): the tests run
 * once each way. */
extern bool at_slow_path;
/* Run a cmocka test array once with each of the engine's two paths; returns the failures. */
struct CMUnitTest;
int at_run_both_paths(const struct CMUnitTest *tests, size_t count);
#define AT_RUN_BOTH_PATHS(tests) at_run_both_paths(tests, sizeof(tests) / sizeof((tests)[0]))

/* Temp dir, database, empty source with part_count partitions, options (fake clock). 0 or -1. */
int at_env_init(struct at_env *e, uint32_t part_count);
/* Close the database and remove the temp dir. */
void at_env_cleanup(struct at_env *e);
/* cmocka fixtures: a fresh environment of part_count partitions in *state, and its cleanup. */
int at_setup(void **state, uint32_t part_count);
int at_teardown(void **state);
/* The engine's counters. */
struct sl_apply_counters at_counters(struct at_env *e);
/* Open the database of e->path (again) behind the wrapper; close it (and stop the engine). */
int at_db_open(struct at_env *e);
void at_db_close(struct at_env *e);
/* The fake source's table for another engine. */
void at_source_get(struct at_source *s, struct sl_apply_source *out);
/* The running counts the target stored (sums over synclog_offsets). */
struct sl_apply_counters at_stored_totals(struct at_env *e);
/* Create the engine with e->options and start it. 0 or its error. */
int at_engine_start(struct at_env *e);
void at_engine_stop(struct at_env *e);
/* Close and open the database again (a restart), and a new engine. */
int at_restart(struct at_env *e);
/* Poll until the source is done; returns the last poll's result when negative, else 0. At most polls_max. */
int at_run(struct at_env *e, uint32_t polls_max);

/* Append records to a partition of the source; version SL_VERSION_NONE for none; value/ik NULL for none. Returns
 * the record's offset. */
int64_t at_add(struct at_source *s, uint32_t partition, const char *key, int64_t version, enum sl_op op,
               const char *value, const char *ik);
int64_t at_upsert(struct at_source *s, uint32_t partition, const char *key, int64_t version, const char *value);
int64_t at_delete(struct at_source *s, uint32_t partition, const char *key, int64_t version);
/* Give the record at offset of partition another origin (backfill, repair). */
void at_origin_set(struct at_source *s, uint32_t partition, int64_t offset, enum sl_origin origin);

/* What the target holds for key: 1 found (fields filled), 0 not found, -1 error. value_out gets "" for NULL. */
struct at_row {
	int64_t version;
	char value[128];
	bool value_null;
	int deleted;
	int64_t deleted_at_ms;
	int64_t offset;
};
int at_row_get(struct at_env *e, const char *key, struct at_row *out);
/* A single integer from a query (-1 on error). */
int64_t at_query_int(struct at_env *e, const char *sql);

#endif
