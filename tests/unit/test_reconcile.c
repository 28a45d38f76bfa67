/* Tests of reconciliation (consumer/sync/reconcile.c) between a SQLite source and a SQLite target: agreeing data is
 * read once and walked nowhere; each kind of difference is found once; a single difference is found by splitting,
 * walking only a few rows; the target ahead (a newer row, a purged key's floor) is marked and not repaired; source
 * rows of one key count once; a sample compares a fraction of the ranges. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/fs.h"
#include "consumer/client/synclog.h"
#include "consumer/sync/apply.h"
#include "consumer/sync/reconcile.h"
#include "tests/unit/log_test_util.h"

#define DIFFS_MAX 64

struct seen_diff {
	char key[32];
	enum sl_diff_kind kind;
	bool target_ahead;
	bool target_deleted;
	int64_t source_version, target_version;
	int repair; /* sl_reconcile_repair_record's answer */
	struct sl_record rec;
	char value[32]; /* the repair record's value, copied: rec.value is valid during the callback only */
};

struct env {
	char dir[256];
	char src_path[300], tgt_path[300];
	char err[SL_ERROR_BYTES];
	struct sl_source src;
	struct sl_target tgt;
	struct sl_reconcile_options o;
	struct sl_reconcile_result res;
	struct seen_diff diffs[DIFFS_MAX];
	uint32_t diff_count;
};

static void diff_cb(const struct sl_diff *d, void *cb_arg)
{
	struct env *e = cb_arg;
	struct seen_diff *s;

	assert_true(e->diff_count < DIFFS_MAX);
	s = &e->diffs[e->diff_count++];
	snprintf(s->key, sizeof(s->key), "%.*s", (int)d->key_len, (const char *)d->key);
	s->kind = d->kind;
	s->target_ahead = d->target_ahead;
	s->target_deleted = d->target_deleted;
	s->source_version = d->source_version;
	s->target_version = d->target_version;
	s->repair = sl_reconcile_repair_record(d, 1, &s->rec);
	if (s->repair == 1 && s->rec.value != NULL)
		snprintf(s->value, sizeof(s->value), "%.*s", (int)s->rec.value_len, (const char *)s->rec.value);
	s->rec.key = NULL;
	s->rec.value = NULL;
}

static const struct seen_diff *diff_of(struct env *e, const char *key)
{
	for (uint32_t i = 0; i < e->diff_count; i++)
		if (strcmp(e->diffs[i].key, key) == 0)
			return &e->diffs[i];
	return NULL;
}

static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct sl_apply_sqlite *db;
	char err[SL_ERROR_BYTES];

	if (e == NULL || lt_tmpdir_make(e->dir, sizeof(e->dir)) != 0)
		return -1;
	snprintf(e->src_path, sizeof(e->src_path), "%s/src.db", e->dir);
	snprintf(e->tgt_path, sizeof(e->tgt_path), "%s/t.db", e->dir);
	/* The target as the applier makes it. */
	if (sl_apply_sqlite_open(&db, e->tgt_path, SL_APPLY_VALUES_JSON, err, sizeof(err)) != 0)
		return -1;
	sl_apply_sqlite_close(db);
	exec_sql(e->src_path, "CREATE TABLE s (key TEXT PRIMARY KEY, version INTEGER, value TEXT, deleted INTEGER)");
	sl_reconcile_options_init(&e->o);
	e->o.source = &e->src;
	e->o.target = &e->tgt.rows;
	e->o.diff_cb = diff_cb;
	e->o.cb_arg = e;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	sl_source_close(&e->src);
	sl_target_close(&e->tgt);
	sl_fs_rm_rf(e->dir);
	free(e);
	return 0;
}

/* n rows "key%05d" at version 1 on both sides, every tenth deleted on both. */
static void both_sides(struct env *e, int n)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
	         "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < %d - 1)"
	         " INSERT INTO s SELECT printf('key%%05d', i), 1, printf('{\"n\":%%d}', i), i %% 10 = 0 FROM c",
	         n);
	exec_sql(e->src_path, sql);
	snprintf(sql, sizeof(sql),
	         "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < %d - 1)"
	         " INSERT INTO entities SELECT printf('key%%05d', i), 1, printf('{\"n\":%%d}', i), i %% 10 = 0, NULL,"
	         " 'backfill', 't', 0, i, 0 FROM c",
	         n);
	exec_sql(e->tgt_path, sql);
}

static void run(struct env *e)
{
	char spec[400];
	struct sl_source_columns c = {.value = "value"};

	snprintf(spec, sizeof(spec), "sqlite:%s:s", e->src_path);
	assert_int_equal(sl_source_open(&e->src, spec, &c, e->err, sizeof(e->err)), 0);
	snprintf(spec, sizeof(spec), "sqlite:%s", e->tgt_path);
	assert_int_equal(sl_target_open(&e->tgt, spec, NULL, NULL, e->err, sizeof(e->err)), 0);
	assert_int_equal(sl_reconcile_run(&e->o, &e->res, e->err, sizeof(e->err)), 0);
}

static void agreeing_data_is_walked_nowhere(void **state)
{
	struct env *e = *state;

	both_sides(e, 5000);
	e->o.range_rows = 100;
	run(e);
	assert_int_equal(e->res.compared, 4500);
	assert_int_equal(e->res.missing + e->res.extra + e->res.version + e->res.value, 0);
	assert_int_equal(e->res.rows_walked, 0);
	assert_int_equal(e->res.ranges_differing, 0);
	assert_int_equal(e->res.ranges, 46); /* 45 full ranges and the open one at the end */
	assert_true(e->res.diff_ratio == 0);
}

static void each_kind_is_found_once(void **state)
{
	struct env *e = *state;
	const struct seen_diff *d;

	both_sides(e, 3000);
	exec_sql(e->tgt_path, "DELETE FROM entities WHERE key = 'key00001';"            /* missing */
	                      "UPDATE entities SET deleted = 1 WHERE key = 'key00002';" /* missing */
	                      "INSERT INTO entities VALUES ('key00001x', 2, '{}', 0, NULL, 'live', 't', 0, 0, 0);"
	                      "UPDATE entities SET deleted = 0 WHERE key = 'key00010';"          /* extra */
	                      "UPDATE entities SET version = 2 WHERE key = 'key00003';"          /* version */
	                      "UPDATE entities SET value = '{\"n\":-4}' WHERE key = 'key00004';" /* value */
	                      "UPDATE entities SET value = ' { \"n\" : 5 } ' WHERE key = 'key00005';");
	e->o.range_rows = 500;
	e->o.leaf_rows = 8;
	run(e);
	assert_int_equal(e->res.missing, 2);
	assert_int_equal(e->res.extra, 2);
	assert_int_equal(e->res.version, 1);
	assert_int_equal(e->res.value, 1);
	assert_int_equal(e->diff_count, 6);
	assert_int_equal(e->res.compared, 2700 + 2);
	d = diff_of(e, "key00001");
	assert_int_equal(d->kind, SL_DIFF_MISSING);
	assert_true(d->target_version == SL_VERSION_NONE);
	assert_int_equal(d->repair, 1);
	assert_int_equal(d->rec.version, 1);
	assert_int_equal(d->rec.origin, SL_ORIGIN_REPAIR);
	assert_string_equal(d->value, "{\"n\":1}");
	d = diff_of(e, "key00002");
	assert_int_equal(d->kind, SL_DIFF_MISSING);
	assert_true(d->target_deleted);
	assert_false(d->target_ahead);
	d = diff_of(e, "key00001x");
	assert_int_equal(d->kind, SL_DIFF_EXTRA);
	assert_int_equal(d->repair, 1);
	assert_int_equal(d->rec.op, SL_OP_DELETE);
	assert_int_equal(d->rec.version, 2);
	assert_int_equal(diff_of(e, "key00010")->kind, SL_DIFF_EXTRA);
	d = diff_of(e, "key00003");
	assert_int_equal(d->kind, SL_DIFF_VERSION);
	assert_true(d->target_ahead);
	assert_int_equal(d->repair, 0); /* the source must be bumped */
	assert_int_equal(diff_of(e, "key00004")->kind, SL_DIFF_VALUE);
	assert_null(diff_of(e, "key00005")); /* the same JSON, written another way */
	assert_int_equal(e->res.target_ahead, 1);
}

static void one_difference_is_found_by_splitting(void **state)
{
	struct env *e = *state;

	both_sides(e, 20000);
	exec_sql(e->tgt_path, "UPDATE entities SET value = '{}' WHERE key = 'key12345'");
	e->o.range_rows = 2000;
	e->o.fanout = 4;
	e->o.leaf_rows = 16;
	run(e);
	assert_int_equal(e->res.value, 1);
	assert_int_equal(e->res.ranges_differing, 1);
	assert_int_equal(e->res.compared, 18000);
	/* 2000 -> 500 -> 125 -> 32 -> 8 rows: one walk of a leaf, on each side, plus deleted rows. */
	assert_true(e->res.rows_walked <= 2 * 16);
	assert_string_equal(e->diffs[0].key, "key12345");
}

static void purged_floor_above_the_source_is_the_target_ahead(void **state)
{
	struct env *e = *state;
	const struct seen_diff *d;

	both_sides(e, 100);
	exec_sql(e->tgt_path, "DELETE FROM entities WHERE key IN ('key00007', 'key00008');"
	                      "INSERT INTO synclog_purged VALUES ('entities', 'key00007', 9, 0);"
	                      "INSERT INTO synclog_purged VALUES ('entities', 'key00008', 1, 0);");
	run(e);
	assert_int_equal(e->res.missing, 2);
	d = diff_of(e, "key00007");
	assert_true(d->target_deleted && d->target_ahead);
	assert_int_equal(d->target_version, 9);
	assert_int_equal(d->repair, 0);
	/* A floor at the source's version: a repair at that version applies (apply.h rule 5). */
	d = diff_of(e, "key00008");
	assert_false(d->target_ahead);
	assert_int_equal(d->repair, 1);
}

static void source_rows_of_one_key_count_once(void **state)
{
	struct env *e = *state;

	exec_sql(e->src_path, "DROP TABLE s; CREATE TABLE s (key TEXT, version INTEGER, value TEXT);"
	                      "INSERT INTO s VALUES ('a', 1, '1'), ('a', 3, '3'), ('a', 2, '2'), ('b', 1, '1');");
	exec_sql(e->tgt_path, "INSERT INTO entities VALUES ('a', 3, '3', 0, NULL, 'live', 't', 0, 0, 0);"
	                      "INSERT INTO entities VALUES ('b', 1, '1', 0, NULL, 'live', 't', 0, 1, 0);");
	run(e);
	assert_int_equal(e->res.compared, 2);
	assert_int_equal(e->diff_count, 0);
}

static void sample_compares_a_fraction_of_the_ranges(void **state)
{
	struct env *e = *state;

	both_sides(e, 10000);
	e->o.range_rows = 100;
	e->o.sample = 0.3;
	e->o.seed = 42;
	run(e);
	assert_int_equal(e->res.ranges, 91);
	assert_true(e->res.ranges_compared > 10 && e->res.ranges_compared < 50);
	/* Every full range holds 100 live rows; the open one at the end holds none. */
	assert_true(e->res.compared > 0 && e->res.compared <= e->res.ranges_compared * 100 &&
	            e->res.compared >= (e->res.ranges_compared - 1) * 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(agreeing_data_is_walked_nowhere, setup, teardown),
	        cmocka_unit_test_setup_teardown(each_kind_is_found_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(one_difference_is_found_by_splitting, setup, teardown),
	        cmocka_unit_test_setup_teardown(purged_floor_above_the_source_is_the_target_ahead, setup, teardown),
	        cmocka_unit_test_setup_teardown(source_rows_of_one_key_count_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(sample_compares_a_fraction_of_the_ranges, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
