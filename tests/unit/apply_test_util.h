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
	enum sl_origin origin;  /* live unless set with at_origin_set */
	char origin_system[32]; /* "" for none (at_system_set) */
	int64_t changed_at_ms;  /* 0 for none */
	int32_t schema_version;
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
	/* Call this instead and let the call through (rc unused): something happening to the store meanwhile. */
	void (*meanwhile)(void);
	uint32_t calls;
};

struct at_clock {
	int64_t now_ms;
	uint64_t slept_ms;
	uint32_t sleeps;
};

/* What a prefetching store saw (the wrapper in the prefetch path). */
struct at_prefetch_stats {
	uint32_t calls;
	uint64_t records;
	/* A record the engine applied that was not among the records prefetched for its transaction, in order. */
	uint32_t violations;
	uint32_t refused_commits; /* commits that found the refused key among the kept writes */
	uint32_t direct_records;  /* records looked up in transactions begun without prefetch */
	int64_t direct_last;      /* offset + 1 of the last of them */
};

struct at_env {
	char dir[256];
	char path[300];
	char schema[64];   /* PostgreSQL: this test's schema in the path's server */
	char target[1024]; /* sqlite:PATH or postgres:CONNINFO */
	struct sl_apply_target *db;
	struct sl_apply_store real_store; /* the real one */
	struct sl_apply_store store;      /* the wrapper the engine uses */
	void *query_conn;                 /* PostgreSQL: the connection of the queries below */
	struct at_faults faults;
	struct at_source *src;
	struct sl_apply_source source;
	struct at_sink sink;
	struct at_clock clock;
	struct sl_apply_options options;
	struct sl_apply *engine;
	/* The wrapper refuses upserts and deletes of this key (NULL: none) as a database constraint would: at once
	 * in a transaction without prefetch, at commit in one with prefetch (a write it kept). */
	const char *refuse_key;
	struct at_prefetch_stats prefetch;
	/* The wrapper's state of the open transaction (prefetch path). */
	bool txn_prefetched;
	bool txn_refused;
	uint32_t prefetched_count;
	uint32_t prefetched_next;
	uint32_t (*prefetched)[2]; /* partition, offset of each prefetched record */
	char error[256];
};

/* The engine's three ways to apply a record, chosen by what the store offers: one conditional write
 * (write_if_newer), key_get then a write, or a prefetch of the transaction's records first (the way of a store
 * that sends writes at commit: the wrapper then prefetches and defers refusals to commit), each over SQLite; and
 * the PostgreSQL store itself (which prefetches), on a server started for the run (tests/integration/pg_lib.sh)
 * with a schema per test. The tests run once each way. */
enum at_path { AT_PATH_CONDITIONAL_WRITE, AT_PATH_KEY_GET, AT_PATH_PREFETCH, AT_PATH_POSTGRESQL };
extern enum at_path at_path;
/* Run a cmocka test array once with each of the engine's paths; returns the failures. */
struct CMUnitTest;
int at_run_all_paths(const struct CMUnitTest *tests, size_t count);
#define AT_RUN_ALL_PATHS(tests) at_run_all_paths(tests, sizeof(tests) / sizeof((tests)[0]))
/* The same over SQLite's three paths only: for what the PostgreSQL store does not offer (a sync contract's conflict
 * policies and field ownership, apply.h rule 9c and 9d). */
int at_run_sqlite_paths(const struct CMUnitTest *tests, size_t count);
#define AT_RUN_SQLITE_PATHS(tests) at_run_sqlite_paths(tests, sizeof(tests) / sizeof((tests)[0]))
/* Run a cmocka test array over the PostgreSQL store only; returns the failures. */
int at_run_postgresql(const struct CMUnitTest *tests, size_t count);
#define AT_RUN_POSTGRESQL(tests) at_run_postgresql(tests, sizeof(tests) / sizeof((tests)[0]))
/* PostgreSQL: run SQL on the test's query connection (in the test's schema); 0 or -1. */
int at_pg_exec(struct at_env *e, const char *sql);
/* PostgreSQL: the connection string of the run's server. */
const char *at_pg_conninfo(void);

/* Temp dir, database, empty source with part_count partitions, options (fake clock). 0 or -1. */
int at_env_init(struct at_env *e, uint32_t part_count);
/* Close the database and remove the temp dir. */
void at_env_cleanup(struct at_env *e);
/* cmocka fixtures: a fresh environment of part_count partitions in *state, and its cleanup. */
int at_setup(void **state, uint32_t part_count);
/* at_setup with deleted rows kept tombstone_retention_ms before the purge may take them. */
int at_setup_retention(void **state, uint32_t part_count, int64_t tombstone_retention_ms);
int at_teardown(void **state);
/* The engine's counters. */
struct sl_apply_counters at_counters(struct at_env *e);
/* Open the target of e->target (again) behind the wrapper; close it (and stop the engine). */
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
/* Give the record at offset of partition an origin_system and a change time (0: none), or a schema version. */
void at_system_set(struct at_source *s, uint32_t partition, int64_t offset, const char *system, int64_t changed_at_ms);
void at_schema_set(struct at_source *s, uint32_t partition, int64_t offset, int32_t schema_version);

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
/* A single integer from a query (NULL is 0, -1 on error). The SQL must mean the same in SQLite and PostgreSQL. */
int64_t at_query_int(struct at_env *e, const char *sql);
/* Reopen the target with these delete settings and hand the engine the real store, without the fault wrapper
 * (the stores' delete modes are what is tested). 0 or -1. */
int at_use_deletes(struct at_env *e, enum sl_apply_on_delete on_delete, bool follow_log);
/* Run a cmocka test array over SQLite (one conditional write per record) and over PostgreSQL; the failures. */
int at_run_both_stores(const struct CMUnitTest *tests, size_t count);
#define AT_RUN_BOTH_STORES(tests) at_run_both_stores(tests, sizeof(tests) / sizeof((tests)[0]))
/* A second store on the same target (another applier): 0 or -1. */
int at_store_open_another(struct at_env *e, struct sl_apply_target **out, struct sl_apply_store *store);

#endif
