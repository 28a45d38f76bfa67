/* Tests of the PostgreSQL source (consumer/sync/source_pg.c), on a server started for the run
 * (tests/integration/pg_lib.sh): rows in byte order of their key's text (an integer key and a key of another
 * collation too), bounds, the value as jsonb prints the other columns or one column's text, the deleted column of
 * each type, bad rows and why, both forms of spec, clear errors for a missing table or column; a scan longer than
 * a snapshot's rows, and one whose connection is cut, lose and repeat nothing; and the server's summaries: range
 * bounds every N live rows, counts and digests that agree for equal rows in differently typed tables and differ
 * for one changed value, offered only where every live row is one key; and reconciliation of two tables reading
 * only the ranges whose summaries differ; the PostgreSQL target's rows (with the floors of purged keys), run
 * history and topic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "consumer/sync/apply.h"
#include "consumer/sync/reconcile.h"
#include "consumer/sync/target.h"
#include "consumer/sync/source.h"
#include "tests/unit/apply_test_util.h"
#include "tests/unit/source_test_util.h"

struct env {
	PGconn *conn;
	char spec[1200];
	char err[SL_ERROR_BYTES];
	struct sl_source src;
	struct sl_source other;
};

static void exec_sql(struct env *e, const char *sql)
{
	PGresult *res = PQexec(e->conn, sql);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(e->conn));
	PQclear(res);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -1;
	e->conn = PQconnectdb(at_pg_conninfo());
	if (PQstatus(e->conn) != CONNECTION_OK)
		return -1;
	PQclear(PQexec(
	        e->conn,
	        "SET client_min_messages = warning; DROP SCHEMA IF EXISTS s CASCADE; DROP SCHEMA IF EXISTS tg CASCADE;"
	        " DROP TABLE IF EXISTS t, u CASCADE; DROP VIEW IF EXISTS v"));
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	sl_source_close(&e->src);
	sl_source_close(&e->other);
	PQfinish(e->conn);
	free(e);
	return 0;
}

static int open_spec(struct env *e, struct sl_source *src, const char *table, const char *value_col)
{
	struct sl_source_columns c = {.value = value_col};

	snprintf(e->spec, sizeof(e->spec), "postgres:%s:%s", at_pg_conninfo(), table);
	return sl_source_open(src, e->spec, &c, e->err, sizeof(e->err));
}

static int open_table(struct env *e, const char *table, const char *value_col)
{
	return open_spec(e, &e->src, table, value_col);
}

static void keys_come_in_byte_order_of_their_text(void **state)
{
	struct env *e = *state;
	struct sl_source_row r;

	/* An integer key: 10 before 9. */
	exec_sql(e, "CREATE TABLE t (key integer PRIMARY KEY, version bigint, v text);"
	            "INSERT INTO t VALUES (9, 1, 'nine'), (10, 1, 'ten'), (100, 1, 'hundred'), (2, 1, 'two')");
	assert_int_equal(open_table(e, "t", "v"), 0);
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	st_key_equal(&r, "10");
	st_value_equal(&r, "ten");
	st_expect_keys(&e->src, (const char *const[]){"100", "2", "9"}, 3);
	assert_int_equal(e->src.ops->count(e->src.ctx), 4);
	/* A text key of a linguistic collation is still read in byte order: 'B' before 'a', 'b' before 'é'. */
	exec_sql(e, "CREATE TABLE u (key text COLLATE \"en-x-icu\" PRIMARY KEY, version bigint);"
	            "INSERT INTO u VALUES ('a', 1), ('B', 1), ('é', 1), ('b', 1)");
	assert_int_equal(open_spec(e, &e->other, "u", NULL), 0);
	{
		const char *want[] = {"B", "a", "b", "é"};

		st_scan(&e->other, NULL, NULL);
		for (int i = 0; i < 4; i++) {
			r = st_next_row(&e->other);
			st_key_equal(&r, want[i]);
			st_value_equal(&r, "{}");
		}
		assert_int_equal(e->other.ops->next(e->other.ctx, &r), 0);
	}
}

static void bounds_take_rows_after_one_key_up_to_another(void **state)
{
	struct env *e = *state;
	struct sl_source_row r;

	exec_sql(e, "CREATE TABLE t (key text COLLATE \"C\" PRIMARY KEY, version bigint, v text);"
	            "INSERT INTO t VALUES ('a', 1, 'x'), ('b', 1, 'x'), ('c', 1, 'x'), ('d', 1, 'x'), ('e', 1, 'x')");
	assert_int_equal(open_table(e, "t", "v"), 0);
	st_scan(&e->src, "b", "d");
	r = st_next_row(&e->src);
	st_key_equal(&r, "c");
	r = st_next_row(&e->src);
	st_key_equal(&r, "d");
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
	st_scan(&e->src, NULL, "a");
	r = st_next_row(&e->src);
	st_key_equal(&r, "a");
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
	st_scan(&e->src, "d", NULL);
	r = st_next_row(&e->src);
	st_key_equal(&r, "e");
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
	/* An empty key bounds too: every key is after it. */
	st_scan(&e->src, "", "b");
	r = st_next_row(&e->src);
	st_key_equal(&r, "a");
	r = st_next_row(&e->src);
	st_key_equal(&r, "b");
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
}

static void value_is_the_other_columns_as_jsonb_prints_them(void **state)
{
	struct env *e = *state;
	struct sl_source_row r;
	const char *want = "{\"n\": 7, \"name\": \"Ann \\\"A\\\"\\n\", \"none\": null, \"score\": 0.10}";

	exec_sql(e, "CREATE TABLE t (name text, key text PRIMARY KEY, score numeric, version bigint, n int, none text,"
	            " deleted boolean);"
	            "INSERT INTO t VALUES ('Ann \"A\"' || chr(10), 'k1', 0.10, 3, 7, NULL, false);"
	            "INSERT INTO t VALUES ('Bob', 'k2', 1.5, 4, 1, 'x', true);"
	            "INSERT INTO t VALUES ('Cy', 'k3', 1.5, 5, 1, 'x', NULL)");
	assert_int_equal(open_table(e, "t", NULL), 0);
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	assert_int_equal(r.version, 3);
	assert_false(r.deleted);
	st_value_equal(&r, want);
	r = st_next_row(&e->src);
	assert_true(r.deleted);
	assert_null(r.value);
	assert_int_equal(r.version, 4);
	r = st_next_row(&e->src); /* a NULL deleted is not a delete */
	assert_false(r.deleted);
	assert_non_null(r.value);
}

static void deleted_column_of_any_type(void **state)
{
	struct env *e = *state;
	struct sl_source_row r;

	exec_sql(e, "CREATE TABLE t (key text PRIMARY KEY, version bigint, deleted int);"
	            "INSERT INTO t VALUES ('a', 1, 0), ('b', 1, 2), ('c', 1, NULL);"
	            "CREATE TABLE u (key text PRIMARY KEY, version bigint, deleted text);"
	            "INSERT INTO u VALUES ('a', 1, 'no'), ('b', 1, 'Yes'), ('c', 1, 'true'), ('d', 1, '1')");
	assert_int_equal(open_table(e, "t", NULL), 0);
	st_scan(&e->src, NULL, NULL);
	assert_false(st_next_row(&e->src).deleted);
	assert_true(st_next_row(&e->src).deleted);
	assert_false(st_next_row(&e->src).deleted);
	sl_source_close(&e->src);
	assert_int_equal(open_table(e, "u", NULL), 0);
	st_scan(&e->src, NULL, NULL);
	assert_false(st_next_row(&e->src).deleted);
	assert_true(st_next_row(&e->src).deleted);
	assert_true(st_next_row(&e->src).deleted);
	r = st_next_row(&e->src);
	assert_true(r.deleted);
}

static void bad_rows_say_why(void **state)
{
	struct env *e = *state;
	struct sl_source_row r;

	exec_sql(e, "CREATE TABLE t (key text, version text, v text);"
	            "INSERT INTO t VALUES (NULL, '1', 'a'), ('b', 'x1', 'b'), ('c', NULL, 'c'), ('d', '1.5', 'd'),"
	            " ('', '2', 'e'), ('f', '3', 'fine'), ('g', '99999999999999999999', 'g')");
	assert_int_equal(open_table(e, "t", "v"), 0);
	assert_string_equal(e->src.position_name, "");
	assert_null(e->src.ops->digest_kind(e->src.ctx));
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	assert_null(r.key);
	assert_string_equal(r.bad, "no key");
	r = st_next_row(&e->src); /* '' comes first of the keys */
	assert_string_equal(r.bad, "an empty key");
	r = st_next_row(&e->src);
	assert_non_null(strstr(r.bad, "'x1' is not an integer"));
	r = st_next_row(&e->src);
	assert_string_equal(r.bad, "no version");
	r = st_next_row(&e->src);
	assert_non_null(strstr(r.bad, "'1.5' is not an integer"));
	r = st_next_row(&e->src);
	assert_null(r.bad);
	assert_int_equal(r.version, 3);
	r = st_next_row(&e->src);
	assert_non_null(strstr(r.bad, "not an integer"));
	assert_int_equal(e->src.ops->next(e->src.ctx, &r), 0);
}

static void specs_and_errors(void **state)
{
	struct env *e = *state;
	struct sl_source_columns c = {0}, v = {.version = "rev"}, val = {.value = "nope"};
	struct sl_source_row r;
	char uri[1200];
	const char *host = strstr(at_pg_conninfo(), "host=");

	exec_sql(e, "CREATE SCHEMA s; CREATE TABLE s.t (key text PRIMARY KEY, version bigint, v text);"
	            "INSERT INTO s.t VALUES ('k', 7, 'x')");
	/* The URI form: the table a parameter among libpq's. */
	assert_non_null(host);
	snprintf(uri, sizeof(uri), "postgresql://postgres@/postgres?host=%.*s&table=s.t&connect_timeout=5",
	         (int)strcspn(host + 5, " "), host + 5);
	assert_int_equal(sl_source_open(&e->src, uri, &c, e->err, sizeof(e->err)), 0);
	assert_string_equal(e->src.stem, "./postgresql.s.t");
	st_scan(&e->src, NULL, NULL);
	r = st_next_row(&e->src);
	st_key_equal(&r, "k");
	assert_int_equal(r.version, 7);
	sl_source_close(&e->src);
	snprintf(uri, sizeof(uri), "postgresql://postgres@/postgres?host=%.*s&table=s.%%74",
	         (int)strcspn(host + 5, " "), host + 5);
	assert_int_equal(sl_source_open(&e->src, uri, &c, e->err, sizeof(e->err)), 0);
	sl_source_close(&e->src);
	/* No table, a missing table, a missing column. */
	snprintf(uri, sizeof(uri), "postgresql://postgres@/postgres?host=%.*s", (int)strcspn(host + 5, " "), host + 5);
	assert_int_equal(sl_source_open(&e->src, uri, &c, e->err, sizeof(e->err)), -EINVAL);
	assert_non_null(strstr(e->err, "table=NAME"));
	assert_int_equal(open_table(e, "s.missing", NULL), -ENOENT);
	assert_non_null(strstr(e->err, "no table or view 's.missing'"));
	snprintf(e->spec, sizeof(e->spec), "postgres:%s:s.t", at_pg_conninfo());
	assert_int_equal(sl_source_open(&e->src, e->spec, &v, e->err, sizeof(e->err)), -EINVAL);
	assert_non_null(strstr(e->err, "no column 'rev'"));
	assert_non_null(strstr(e->err, "--version"));
	assert_int_equal(sl_source_open(&e->src, e->spec, &val, e->err, sizeof(e->err)), -EINVAL);
	assert_non_null(strstr(e->err, "--value"));
	/* A server that is not there. */
	assert_int_equal(sl_source_open(&e->src, "postgres:host=/nonexistent dbname=x:t", &c, e->err, sizeof(e->err)),
	                 -ECONNREFUSED);
	assert_non_null(strstr(e->err, "cannot connect"));
}

/* Read every row of the source from the first, checking they come in order once each: the count. */
static long read_all_in_order(struct env *e, int cut_at)
{
	struct sl_source_row r;
	char last[64] = "";
	long n = 0;
	int rc;

	st_scan(&e->src, NULL, NULL);
	while ((rc = e->src.ops->next(e->src.ctx, &r)) == 1) {
		char key[64];

		assert_null(r.bad);
		assert_true(r.key_len < sizeof(key));
		memcpy(key, r.key, r.key_len);
		key[r.key_len] = '\0';
		assert_true(strcmp(last, key) < 0);
		memcpy(last, key, r.key_len + 1);
		if (++n == cut_at)
			exec_sql(e, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name ="
			            " 'synclog-source'");
	}
	assert_int_equal(rc, 0);
	return n;
}

/* Sessions of the source in a transaction: a scan that ended leaves none. */
static int scans_open(struct env *e)
{
	PGresult *res = PQexec(e->conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name ="
	                                " 'synclog-source' AND state <> 'idle'");
	int n = PQresultStatus(res) == PGRES_TUPLES_OK ? atoi(PQgetvalue(res, 0, 0)) : -1;

	PQclear(res);
	return n;
}

static void long_scans_lose_and_repeat_nothing(void **state)
{
	struct env *e = *state;

	/* Longer than a snapshot's rows (declared again after its last key), and a sorted one (an integer key). */
	exec_sql(e, "CREATE TABLE t (key text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, v text);"
	            "INSERT INTO t SELECT 'k' || g, g, 'v' FROM generate_series(1, 230000) g; ANALYZE t;"
	            "CREATE TABLE u (key bigint PRIMARY KEY, version bigint, v text);"
	            "INSERT INTO u SELECT g, g, 'v' FROM generate_series(1, 20000) g");
	assert_int_equal(open_table(e, "t", "v"), 0);
	assert_int_equal(read_all_in_order(e, 0), 230000);
	assert_int_equal(scans_open(e), 0);
	/* Its connection cut in the middle: reconnected, declared again after the last key given. */
	assert_int_equal(read_all_in_order(e, 150000), 230000);
	sl_source_close(&e->src);
	assert_int_equal(open_table(e, "u", "v"), 0);
	assert_int_equal(read_all_in_order(e, 9000), 20000);
	assert_int_equal(scans_open(e), 0);
}

static int summaries(struct sl_source *src, const struct sl_key *lo, const struct sl_key *hi, uint32_t count,
                     uint64_t *counts, uint64_t *digests)
{
	int rc = src->ops->summaries_send(src->ctx, lo, hi, count);

	return rc != 0 ? rc : src->ops->summaries_read(src->ctx, counts, digests);
}

static void summaries_agree_for_equal_rows_and_bound_ranges(void **state)
{
	struct env *e = *state;
	struct sl_key none = {0}, bounds[8], lo[4], hi[4];
	uint64_t c1[4], d1[4], c2[4], d2[4];
	uint32_t n;

	/* The same rows in two tables of other types and layouts; deleted rows and other keys between them. */
	exec_sql(e, "CREATE TABLE t (key text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, name text, n int);"
	            "INSERT INTO t SELECT 'k' || lpad(g::text, 2, '0'), g, 'x' || g, g FROM generate_series(1, 10) g;"
	            "CREATE TABLE u (n int, version int NOT NULL, key varchar NOT NULL, name text, deleted boolean);"
	            "CREATE UNIQUE INDEX ON u (key);"
	            "INSERT INTO u SELECT g, g, 'k' || lpad(g::text, 2, '0'), 'x' || g, false FROM "
	            "generate_series(1, 10) g;"
	            "INSERT INTO u VALUES (0, 1, 'k05a', 'gone', true), (0, 1, 'k00', 'gone', true)");
	assert_int_equal(open_table(e, "t", NULL), 0);
	assert_int_equal(open_spec(e, &e->other, "u", NULL), 0);
	assert_string_equal(e->src.ops->digest_kind(e->src.ctx), e->other.ops->digest_kind(e->other.ctx));
	/* Ranges of 3 live rows: bounds at the 3rd, 6th and 9th; after the 3rd, at the 6th and 9th. */
	assert_int_equal(e->other.ops->range_bounds(e->other.ctx, none, 3, 8, bounds, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(bounds[0].data, "k03", 3);
	assert_memory_equal(bounds[2].data, "k09", 3);
	assert_int_equal(
	        e->src.ops->range_bounds(e->src.ctx, (struct sl_key){(const uint8_t *)"k03", 3}, 3, 1, bounds, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(bounds[0].len, 3);
	assert_memory_equal(bounds[0].data, "k06", 3);
	/* Summaries of (-, k03], (k03, k06], (k06, -) and everything: equal on both sides. */
	lo[0] = none;
	hi[0] = (struct sl_key){(const uint8_t *)"k03", 3};
	lo[1] = hi[0];
	hi[1] = (struct sl_key){(const uint8_t *)"k06", 3};
	lo[2] = hi[1];
	hi[2] = none;
	lo[3] = none;
	hi[3] = none;
	assert_int_equal(summaries(&e->src, lo, hi, 4, c1, d1), 0);
	assert_int_equal(summaries(&e->other, lo, hi, 4, c2, d2), 0);
	assert_int_equal(c1[0], 3);
	assert_int_equal(c1[1], 3);
	assert_int_equal(c1[2], 4);
	assert_int_equal(c1[3], 10);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(c1[i], c2[i]);
		assert_int_equal(d1[i], d2[i]);
	}
	assert_int_equal(d1[3], d1[0] + d1[1] + d1[2]); /* a sum modulo 2^64 */
	/* One changed value: only its range differs. */
	exec_sql(e, "UPDATE u SET name = 'changed' WHERE key = 'k05'");
	assert_int_equal(summaries(&e->other, lo, hi, 4, c2, d2), 0);
	assert_true(d1[0] == d2[0] && d1[1] != d2[1] && d1[2] == d2[2] && d1[3] != d2[3]);
	assert_int_equal(c2[1], 3);
	/* Summaries mix with a scan in progress. */
	st_scan(&e->src, NULL, NULL);
	{
		struct sl_source_row r = st_next_row(&e->src);

		st_key_equal(&r, "k01");
		assert_int_equal(summaries(&e->src, lo, hi, 1, c1, d1), 0);
		r = st_next_row(&e->src);
		st_key_equal(&r, "k02");
	}
}

static void summaries_need_one_row_per_key(void **state)
{
	struct env *e = *state;

	exec_sql(e, "CREATE TABLE t (key text NOT NULL, version bigint NOT NULL);"
	            "CREATE TABLE u (key text PRIMARY KEY, version bigint);"
	            "CREATE TABLE s_ (key text PRIMARY KEY, version numeric NOT NULL)");
	assert_int_equal(open_table(e, "t", NULL), 0);
	assert_null(e->src.ops->digest_kind(e->src.ctx)); /* no unique index */
	sl_source_close(&e->src);
	assert_int_equal(open_table(e, "u", NULL), 0);
	assert_null(e->src.ops->digest_kind(e->src.ctx)); /* a version that may be NULL */
	sl_source_close(&e->src);
	assert_int_equal(open_table(e, "s_", NULL), 0);
	assert_null(e->src.ops->digest_kind(e->src.ctx)); /* a version that is not an integer type */
	exec_sql(e, "DROP TABLE s_");
}

/* Reconcile two tables: with the servers' summaries (both tables keyed uniquely) and without (a view). */
static void reconcile_reads_only_the_ranges_that_differ(void **state)
{
	struct env *e = *state;
	struct sl_reconcile_options o;
	struct sl_reconcile_result r;

	exec_sql(e, "CREATE TABLE t (key text COLLATE \"C\" PRIMARY KEY, version bigint NOT NULL, name text);"
	            "INSERT INTO t SELECT 'k' || lpad(g::text, 5, '0'), 1, 'n' || g FROM generate_series(1, 5000) g;"
	            "CREATE TABLE u (LIKE t INCLUDING ALL); INSERT INTO u SELECT * FROM t;"
	            "UPDATE u SET name = 'changed' WHERE key = 'k00100';"
	            "DELETE FROM u WHERE key = 'k02500';"
	            "UPDATE u SET version = 2 WHERE key = 'k04000';"
	            "INSERT INTO u VALUES ('x', 1, 'only here');"
	            "CREATE VIEW v AS SELECT * FROM u");
	assert_int_equal(open_table(e, "t", NULL), 0);
	assert_int_equal(open_spec(e, &e->other, "u", NULL), 0);
	sl_reconcile_options_init(&o);
	o.source = &e->src;
	o.target = &e->other;
	o.range_rows = 100;
	assert_int_equal(sl_reconcile_run(&o, &r, e->err, sizeof(e->err)), 0);
	assert_int_equal(r.compared, 5001);
	assert_int_equal(r.value, 1);
	assert_int_equal(r.missing, 1);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.extra, 1);
	assert_int_equal(r.ranges, 51);
	assert_int_equal(r.ranges_compared, 51);
	assert_int_equal(r.ranges_differing, 4); /* the last range, (k05000, -), holds the extra key */
	/* Each differing range split into parts of 13 and one part walked: a few dozen rows, not 10,000. */
	assert_true(r.rows_walked < 100);
	/* A sample: a part of the ranges, chosen by the seed. */
	o.sample = 0.5;
	o.seed = 7;
	assert_int_equal(sl_reconcile_run(&o, &r, e->err, sizeof(e->err)), 0);
	assert_int_equal(r.ranges, 51);
	assert_true(r.ranges_compared > 10 && r.ranges_compared < 41);
	/* Without summaries on one side: the same differences. */
	sl_source_close(&e->other);
	assert_int_equal(open_spec(e, &e->other, "v", NULL), 0);
	assert_null(e->other.ops->digest_kind(e->other.ctx));
	o.target = &e->other;
	o.sample = 1;
	assert_int_equal(sl_reconcile_run(&o, &r, e->err, sizeof(e->err)), 0);
	assert_true(r.compared == 5001 && r.value == 1 && r.missing == 1 && r.version == 1 && r.extra == 1);
	exec_sql(e, "DROP VIEW v");
}

/* The PostgreSQL target as reconciliation reads it: the entity table with the floors of purged keys, its
 * summaries, its run history and the topic that claimed it. */
static void target_gives_rows_and_floors_and_keeps_runs(void **state)
{
	struct env *e = *state;
	struct sl_apply_target_options ao = {.schema = "tg"};
	struct sl_apply_target *at;
	struct sl_target tgt;
	struct sl_source_row r;
	struct sl_key none = {0};
	struct sl_reconcile_run run = {.started_at_ms = 1,
	                               .finished_at_ms = 2,
	                               .source = "it's a source",
	                               .compared = 3,
	                               .diff_ratio = 0.5,
	                               .sample = 1,
	                               .alert = true};
	uint64_t count, digest;
	char spec[600], topic[64];

	snprintf(spec, sizeof(spec), "postgres:%s", at_pg_conninfo());
	assert_int_equal(sl_target_open(&tgt, spec, "tg", NULL, e->err, sizeof(e->err)), -ENOENT);
	assert_non_null(strstr(e->err, "no table tg.entities: is it a target of `synclog apply` with that --schema?"));
	assert_int_equal(sl_apply_target_open(&at, spec, &ao, e->err, sizeof(e->err)), 0);
	sl_apply_target_close(at);
	exec_sql(e, "INSERT INTO tg.entities (key, version, value, deleted) VALUES ('a', 2, '{\"x\": 1}', false),"
	            " ('b', 3, NULL, true), ('d', 1, '\"s\"', false);"
	            "INSERT INTO tg.synclog_purged VALUES ('entities', 'c', 5, 0), ('entities', 'a', 1, 0),"
	            " ('other', 'e', 9, 0)");
	assert_int_equal(sl_target_open(&tgt, spec, "tg", NULL, e->err, sizeof(e->err)), 0);
	assert_non_null(tgt.rows.ops->digest_kind(tgt.rows.ctx));
	st_scan(&tgt.rows, NULL, NULL);
	r = st_next_row(&tgt.rows);
	st_key_equal(&r, "a"); /* stored again over its floor: the row, not the floor */
	assert_int_equal(r.version, 2);
	st_value_equal(&r, "{\"x\": 1}");
	r = st_next_row(&tgt.rows);
	st_key_equal(&r, "b");
	assert_true(r.deleted);
	r = st_next_row(&tgt.rows);
	st_key_equal(&r, "c"); /* a floor: a deleted row at its version */
	assert_true(r.deleted);
	assert_int_equal(r.version, 5);
	r = st_next_row(&tgt.rows);
	st_key_equal(&r, "d");
	assert_int_equal(tgt.rows.ops->next(tgt.rows.ctx, &r), 0);
	assert_int_equal(summaries(&tgt.rows, &none, &none, 1, &count, &digest), 0);
	assert_int_equal(count, 2);
	/* The runs, and the topic once a table is claimed. */
	assert_int_equal(tgt.ops->run_record(tgt.ctx, &run), 0);
	assert_int_equal(tgt.ops->topic_get(tgt.ctx, topic, sizeof(topic)), 0);
	exec_sql(e, "INSERT INTO tg.synclog_tables VALUES ('entities', 'customers', 0)");
	assert_int_equal(tgt.ops->topic_get(tgt.ctx, topic, sizeof(topic)), 1);
	assert_string_equal(topic, "customers");
	sl_target_close(&tgt);
	{
		PGresult *res =
		        PQexec(e->conn, "SELECT source, \"table\", compared, diff_ratio, alert FROM tg.reconcile_runs");

		assert_int_equal(PQntuples(res), 1);
		assert_string_equal(PQgetvalue(res, 0, 0), "it's a source");
		assert_string_equal(PQgetvalue(res, 0, 1), "entities");
		assert_string_equal(PQgetvalue(res, 0, 2), "3");
		assert_string_equal(PQgetvalue(res, 0, 3), "0.5");
		assert_string_equal(PQgetvalue(res, 0, 4), "t");
		PQclear(res);
	}
	/* A schema given to SQLite is a mistake. */
	assert_int_equal(sl_target_open(&tgt, "sqlite:/tmp/x.db", "tg", NULL, e->err, sizeof(e->err)), -EINVAL);
	assert_non_null(sl_target_check("sqlite:/tmp/x.db", "tg"));
	assert_null(sl_target_check(spec, "tg"));
	exec_sql(e, "DROP SCHEMA tg CASCADE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(keys_come_in_byte_order_of_their_text, setup, teardown),
	        cmocka_unit_test_setup_teardown(bounds_take_rows_after_one_key_up_to_another, setup, teardown),
	        cmocka_unit_test_setup_teardown(value_is_the_other_columns_as_jsonb_prints_them, setup, teardown),
	        cmocka_unit_test_setup_teardown(deleted_column_of_any_type, setup, teardown),
	        cmocka_unit_test_setup_teardown(bad_rows_say_why, setup, teardown),
	        cmocka_unit_test_setup_teardown(specs_and_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(long_scans_lose_and_repeat_nothing, setup, teardown),
	        cmocka_unit_test_setup_teardown(summaries_agree_for_equal_rows_and_bound_ranges, setup, teardown),
	        cmocka_unit_test_setup_teardown(summaries_need_one_row_per_key, setup, teardown),
	        cmocka_unit_test_setup_teardown(reconcile_reads_only_the_ranges_that_differ, setup, teardown),
	        cmocka_unit_test_setup_teardown(target_gives_rows_and_floors_and_keeps_runs, setup, teardown),
	};

	return AT_RUN_POSTGRESQL(tests);
}
