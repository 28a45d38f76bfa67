/* Crash tests of the applier: the process dies (_exit in a forked child) in the middle of a transaction, at the
 * offset write, at the commit; or after the store committed and before the broker heard of it; or a second
 * applier writes the same target. In every case the restarted applier resumes from the target's own offsets and
 * the target ends equal to the source's final state with every record counted exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/apply_test_util.h"

#define KEYS     40
#define VERSIONS 15
#define RECORDS  (KEYS * VERSIONS)

static int setup(void **state)
{
	if (at_setup(state, 3) != 0)
		return -1;
	struct at_env *e = *state;
	/* Small batches: many transactions, so a crash lands between and inside them. */
	e->src->batch_records_max = 23;
	return 0;
}

/* Versions 1..VERSIONS of KEYS keys, each key in one partition, every fifth key deleted at its last version. */
static void source_fill(struct at_source *s)
{
	char key[16], value[32];

	for (int v = 1; v <= VERSIONS; v++) {
		for (int k = 0; k < KEYS; k++) {
			snprintf(key, sizeof(key), "key-%d", k);
			snprintf(value, sizeof(value), "{\"k\":%d,\"v\":%d}", k, v);
			if (v == VERSIONS && k % 5 == 0)
				at_delete(s, (uint32_t)(k % 3), key, v);
			else
				at_upsert(s, (uint32_t)(k % 3), key, v, value);
		}
	}
}

static void final_state_expect(struct at_env *e)
{
	struct sl_apply_counters t = at_stored_totals(e);
	struct at_row row;
	char key[16], value[32];

	for (int k = 0; k < KEYS; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(value, sizeof(value), "{\"k\":%d,\"v\":%d}", k, VERSIONS - (k % 5 == 0));
		assert_int_equal(at_row_get(e, key, &row), 1);
		assert_int_equal(row.version, VERSIONS);
		assert_int_equal(row.deleted, k % 5 == 0);
		assert_string_equal(row.value, value);
	}
	/* Every record counted once over all runs: an event applied twice would show as a duplicate. */
	assert_int_equal(t.applied, RECORDS - KEYS / 5);
	assert_int_equal(t.deleted, KEYS / 5);
	assert_int_equal(t.duplicate + t.stale + t.dead_lettered, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 0);
	assert_int_equal(at_query_int(e, "SELECT sum(next_offset) FROM synclog_offsets"), RECORDS);
}

/* Run an applier in a child that dies at the calls-th call of op; the parent's connection is closed meanwhile.
 * Returns whether the child died there (1) or finished first (0). */
static int run_child_until_crash(struct at_env *e, const char *op, uint32_t calls)
{
	int status = 0;
	pid_t pid;

	at_db_close(e);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (at_db_open(e) != 0)
			_exit(3);
		e->faults = (struct at_faults){.op = op, .after = calls, .times = 1, .exit_instead = true};
		if (at_engine_start(e) != 0 || at_run(e, 1000) != 0)
			_exit(2);
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_true(WEXITSTATUS(status) <= 1);
	assert_int_equal(at_db_open(e), 0);
	return WEXITSTATUS(status) == 0;
}

static void crash_inside_transactions_applies_nothing_twice(void **state)
{
	static const struct {
		const char *op;
		uint32_t calls;
	} crashes[] = {
	        {"upsert", 5},       {"offset_write", 3}, {"commit", 2}, {"upsert", 40},
	        {"offset_write", 1}, {"upsert", 60},      {"begin", 2},  {"commit", 0},
	        {"upsert", 30},      {"stale_record", 0}, /* never reached: this child finishes */
	};
	struct at_env *e = *state;
	int crashed = 0;

	source_fill(e->src);
	/* Each child resumes where the last one died; the purge at start also begins and commits. */
	for (size_t i = 0; i < sizeof(crashes) / sizeof(crashes[0]); i++)
		crashed += run_child_until_crash(e, crashes[i].op, crashes[i].calls);
	assert_int_equal(crashed, 9);
	assert_int_equal(at_query_int(e, "SELECT sum(next_offset) FROM synclog_offsets"), RECORDS);
	e->faults = (struct at_faults){0};
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 1000), 0);
	final_state_expect(e);
}

static void crash_after_the_store_commit_resumes_from_the_store(void **state)
{
	struct at_env *e = *state;
	struct sl_apply_counters c;

	source_fill(e->src);
	e->options.commit_interval_ms = UINT32_MAX; /* the broker never hears of the offsets */
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 1000), 0);
	assert_int_equal(e->src->commits, 0);
	/* Killed before the broker commit; the restart reads the store's offsets and has nothing left to do. */
	assert_int_equal(at_restart(e), 0);
	assert_int_equal(at_run(e, 1000), 0);
	sl_apply_counters_get(e->engine, &c);
	assert_int_equal(c.applied + c.deleted + c.duplicate, 0);
	/* Even a source that starts over from the broker's (missing) commit applies nothing again. */
	e->src->ignore_seek = true;
	e->src->redeliver_from = 0;
	assert_int_equal(at_restart(e), 0);
	assert_int_equal(at_run(e, 1000), 0);
	sl_apply_counters_get(e->engine, &c);
	assert_int_equal(c.applied + c.deleted, 0);
	assert_int_equal(c.duplicate, RECORDS);
	e->src->ignore_seek = false;
	/* Only redeliveries are counted duplicates; the store's totals of applied events do not move. */
	assert_int_equal(at_stored_totals(e).applied, RECORDS - KEYS / 5);
}

static void broker_hears_the_offsets_after_the_store(void **state)
{
	struct at_env *e = *state;

	source_fill(e->src);
	e->options.commit_interval_ms = UINT32_MAX;
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 1000), 0);
	assert_int_equal(sl_apply_flush(e->engine), 0);
	assert_int_equal(e->src->commits, 1);
	for (uint32_t p = 0; p < 3; p++)
		assert_int_equal(e->src->committed[p], e->src->count[p]);
	final_state_expect(e);
}

static void second_applier_on_the_same_target_is_fenced(void **state)
{
	struct at_env *e = *state;
	struct at_source *other = calloc(1, sizeof(*other));
	struct sl_apply_target *db2;
	struct sl_apply_store store2;
	struct sl_apply_source source2;
	struct sl_apply *engine2;
	char err[256];
	int rc;

	assert_non_null(other);
	source_fill(e->src);
	*other = *e->src;
	assert_int_equal(at_store_open_another(e, &db2, &store2), 0);
	at_source_get(other, &source2);
	/* Both start with no offsets stored, then take turns: the second finds every batch's offsets moved under it,
	 * commits nothing, and after its retries stops, naming the reason. */
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(sl_apply_new(&engine2, &e->options, &store2, &source2, err, sizeof(err)), 0);
	assert_int_equal(sl_apply_start(engine2), 0);
	rc = 0;
	for (int i = 0; i < 1000 && !sl_apply_done(e->engine); i++) {
		assert_true(sl_apply_poll(e->engine) >= 0);
		if (rc >= 0)
			rc = sl_apply_poll(engine2);
	}
	assert_true(sl_apply_done(e->engine));
	assert_int_equal(rc, -ESTALE);
	assert_non_null(strstr(sl_apply_error(engine2), "another applier"));
	sl_apply_free(engine2);
	sl_apply_target_close(db2);
	free(other);
	final_state_expect(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(crash_inside_transactions_applies_nothing_twice, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(crash_after_the_store_commit_resumes_from_the_store, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(broker_hears_the_offsets_after_the_store, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(second_applier_on_the_same_target_is_fenced, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
