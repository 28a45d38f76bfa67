/* Tests of what only the PostgreSQL store does (every rule of the applier also runs against it in the other
 * test_apply_*.c): a connection cut in the middle of a transaction is rolled back and the applier resumes from the
 * stored offsets, applying nothing twice; a value only the server refuses (jsonb has no \u0000) is dead-lettered
 * alone from a batch, as permanent; a constraint's refusal is found the same way and dead-lettered as transient
 * (SQLSTATE class 23: the target's state); a schema made for JSON values is refused for text ones; a table is fed by
 * one topic; a server that stays away fails the applier after the reconnect timeout, naming it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "consumer/client/synclog.h"
#include "tests/unit/apply_test_util.h"

static struct at_env *env;

static int setup(void **state)
{
	if (at_setup(state, 2) != 0)
		return -1;
	env = *state;
	return 0;
}

/* Cut the store's connection from the server's side, as a restart or a failover does. */
static void backend_terminate(void)
{
	/* The store's session is there (a division by zero otherwise), and then it is not. */
	assert_int_equal(at_pg_exec(env, "SELECT 1 / count(*) FROM pg_stat_activity"
	                                 " WHERE application_name = 'synclog-apply'"),
	                 0);
	assert_int_equal(at_pg_exec(env, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	                                 " WHERE application_name = 'synclog-apply'"),
	                 0);
}

static void keys_add(struct at_env *e, uint32_t partition, const char *prefix, int count, int64_t version)
{
	char key[32], value[64];

	for (int i = 0; i < count; i++) {
		snprintf(key, sizeof(key), "%s%d", prefix, i);
		snprintf(value, sizeof(value), "{\"v\":%lld}", (long long)version);
		at_upsert(e->src, partition, key, version, value);
	}
}

static void connection_cut_mid_transaction_is_rolled_back_and_resumed(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	e->src->batch_records_max = 50;
	for (int64_t v = 1; v <= 4; v++) {
		keys_add(e, 0, "a", 40, v);
		keys_add(e, 1, "b", 40, v);
	}
	/* The connection goes in the middle of the third transaction (its writes kept, not yet sent). */
	e->faults = (struct at_faults){.op = "upsert", .after = 170, .times = 1, .meanwhile = backend_terminate};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 50), 0);
	assert_int_equal(e->faults.calls > 170, true);
	/* Every record counted once: the rolled-back transaction was applied again, nothing of it twice. */
	assert_int_equal(at_stored_totals(e).applied, 320);
	assert_int_equal(at_stored_totals(e).duplicate + at_stored_totals(e).stale, 0);
	assert_int_equal(at_counters(e).applied, 320);
	assert_int_equal(at_query_int(e, "SELECT sum(next_offset) FROM synclog_offsets"), 320);
	assert_int_equal(at_row_get(e, "b39", &row), 1);
	assert_int_equal(row.version, 4);
	assert_string_equal(row.value, "{\"v\":4}");
}

static void connection_cut_between_transactions_reconnects(void **state)
{
	struct at_env *e = *state;

	keys_add(e, 0, "a", 10, 1);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	backend_terminate();
	keys_add(e, 0, "a", 10, 2);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_stored_totals(e).applied, 20);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM entities WHERE version = 2"), 10);
}

static void value_only_the_server_refuses_is_dead_lettered_alone(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	keys_add(e, 0, "a", 30, 1);
	/* Valid JSON (RFC 8259), which jsonb refuses: only the server can tell, at commit. */
	at_upsert(e->src, 1, "nul", 1, "{\"note\":\"\\u0000\"}");
	keys_add(e, 1, "b", 30, 1);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 50), 0);
	assert_int_equal(e->sink.count, 1);
	assert_string_equal(e->sink.dead[0].key, "nul");
	assert_non_null(strstr(e->sink.dead[0].error, "22P05"));
	assert_false(e->sink.dead[0].transient); /* the value itself: no later try can pass */
	assert_int_equal(at_stored_totals(e).applied, 60);
	assert_int_equal(at_stored_totals(e).dead_lettered, 1);
	assert_int_equal(at_row_get(e, "nul", &row), 0);
	assert_int_equal(at_row_get(e, "b29", &row), 1);
}

static void constraint_refusal_is_found_and_dead_lettered_as_transient(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	/* A constraint the operator added: the target's state refuses the record, not its bytes. */
	assert_int_equal(at_pg_exec(e, "ALTER TABLE entities ADD CONSTRAINT small_versions CHECK (version < 5)"), 0);
	keys_add(e, 0, "a", 20, 1);
	at_upsert(e->src, 0, "big", 9, "{}");
	keys_add(e, 1, "b", 20, 1);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 50), 0);
	assert_int_equal(e->sink.count, 1);
	assert_string_equal(e->sink.dead[0].key, "big");
	assert_non_null(strstr(e->sink.dead[0].error, "23514"));
	assert_true(e->sink.dead[0].transient);
	assert_int_equal(at_stored_totals(e).applied, 40);
	assert_int_equal(at_stored_totals(e).dead_lettered, 1);
	assert_int_equal(at_row_get(e, "big", &row), 0);
}

static void schema_made_for_json_is_refused_for_text(void **state)
{
	struct at_env *e = *state;
	struct sl_apply_target_options o = {.schema = e->schema, .values = SL_APPLY_VALUES_TEXT};
	struct sl_apply_target *t = NULL;
	char err[SL_ERROR_BYTES];

	assert_int_equal(sl_apply_target_open(&t, e->target, &o, err, sizeof(err)), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(err, "entities.value is jsonb"));
	assert_non_null(strstr(err, "--values json"));
}

static void table_is_claimed_by_one_topic(void **state)
{
	struct at_env *e = *state;
	struct sl_apply_target_options o = {.schema = e->schema, .table = "orders"};
	struct sl_apply_target *a = NULL, *b = NULL;
	struct sl_apply_store store;
	char err[SL_ERROR_BYTES];

	assert_int_equal(sl_apply_target_open(&a, e->target, &o, err, sizeof(err)), 0);
	assert_int_equal(sl_apply_target_claim(a, "orders-v1"), 0);
	assert_int_equal(sl_apply_target_claim(a, "orders-v1"), 0); /* the same topic again: fine */
	assert_int_equal(sl_apply_target_open(&b, e->target, &o, err, sizeof(err)), 0);
	assert_int_equal(sl_apply_target_claim(b, "payments"), -EEXIST);
	sl_apply_target_store(b, &store);
	assert_non_null(strstr(store.ops->error(store.ctx), "table 'orders' is fed by topic 'orders-v1'"));
	sl_apply_target_close(b);
	/* Another table of the same schema takes the other topic. */
	o.table = "payments";
	assert_int_equal(sl_apply_target_open(&b, e->target, &o, err, sizeof(err)), 0);
	assert_int_equal(sl_apply_target_claim(b, "payments"), 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM synclog_tables"), 2);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM payments_archive"), 0);
	sl_apply_target_close(b);
	sl_apply_target_close(a);
}

static int purge_once(struct sl_apply_store *store)
{
	struct sl_apply_purge_counts counts;
	int rc = store->ops->begin(store->ctx, 0);

	if (rc == 0)
		rc = store->ops->purge(store->ctx, 0, 0, &counts);
	if (rc == 0)
		rc = store->ops->commit(store->ctx);
	if (rc != 0)
		store->ops->rollback(store->ctx);
	return rc;
}

static void server_away_past_the_reconnect_timeout_fails_naming_it(void **state)
{
	struct at_env *e = *state;
	struct sl_apply_pg_options o = {.schema = e->schema, .reconnect_timeout_ms = 300};
	struct sl_apply_store store;
	struct sl_apply_pg *db;
	char conninfo[600], err[SL_ERROR_BYTES];

	/* A database of its own, which can refuse connections while the test's queries go on in another. */
	assert_int_equal(at_pg_exec(e, "CREATE DATABASE away"), 0);
	snprintf(conninfo, sizeof(conninfo), "%s dbname=away", at_pg_conninfo());
	o.conninfo = conninfo;
	assert_int_equal(sl_apply_pg_open(&db, &o, err, sizeof(err)), 0);
	sl_apply_pg_store(db, &store);
	assert_int_equal(purge_once(&store), 0);
	/* The database takes no new connections and the store's own is cut: it is gone for the store. */
	assert_int_equal(at_pg_exec(e, "ALTER DATABASE away ALLOW_CONNECTIONS false"), 0);
	backend_terminate();
	assert_int_equal(purge_once(&store), -ECONNRESET); /* the cut is noticed by the next transaction */
	assert_int_equal(purge_once(&store), -ECONNREFUSED);
	assert_non_null(strstr(store.ops->error(store.ctx), "cannot connect"));
	assert_non_null(strstr(store.ops->error(store.ctx), "is the server up?"));
	/* Back: the next transaction reconnects. */
	assert_int_equal(at_pg_exec(e, "ALTER DATABASE away ALLOW_CONNECTIONS true"), 0);
	assert_int_equal(purge_once(&store), 0);
	sl_apply_pg_close(db);
	assert_int_equal(at_pg_exec(e, "DROP DATABASE away"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(connection_cut_mid_transaction_is_rolled_back_and_resumed, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(connection_cut_between_transactions_reconnects, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(value_only_the_server_refuses_is_dead_lettered_alone, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(constraint_refusal_is_found_and_dead_lettered_as_transient, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(schema_made_for_json_is_refused_for_text, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(table_is_claimed_by_one_topic, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(server_away_past_the_reconnect_timeout_fails_naming_it, setup,
	                                        at_teardown),
	};

	return AT_RUN_POSTGRESQL(tests);
}
