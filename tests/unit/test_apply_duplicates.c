/* Tests of duplicate handling in the applier: the same version delivered twice, the same idempotency key seen
 * twice (also without versions), records the source delivers again below the stored offset, and the expiry of
 * idempotency keys. Every duplicate is skipped and counted, never applied. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/apply_test_util.h"

static int setup(void **state)
{
	return at_setup(state, 2);
}

/* The stream of a producer that sent everything twice: 10 keys, versions 1 to 5, event ids when with_ik. */
static void stream_twice(struct at_env *e, bool with_ik)
{
	char key[16], value[32], ik[32];

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 50; i++) {
			snprintf(key, sizeof(key), "k%d", i % 10);
			snprintf(value, sizeof(value), "{\"n\":%d}", i);
			snprintf(ik, sizeof(ik), "evt-%d", i);
			at_add(e->src, (uint32_t)(i % 2), key, i / 10 + 1, SL_OP_UPSERT, value, with_ik ? ik : NULL);
		}
	}
}

static void target_state_expect(struct at_env *e)
{
	struct at_row row;
	char key[16], value[32];

	for (int k = 0; k < 10; k++) {
		snprintf(key, sizeof(key), "k%d", k);
		snprintf(value, sizeof(value), "{\"n\":%d}", 40 + k);
		assert_int_equal(at_row_get(e, key, &row), 1);
		assert_int_equal(row.version, 5);
		assert_string_equal(row.value, value);
	}
}

static void stream_sent_twice_with_event_ids_is_all_duplicates(void **state)
{
	struct at_env *e = *state;

	stream_twice(e, true);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 100), 0);
	assert_int_equal(at_counters(e).applied, 50);
	assert_int_equal(at_counters(e).duplicate, 50);
	assert_int_equal(at_counters(e).stale, 0);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 0);
	target_state_expect(e);
}

static void stream_sent_twice_without_event_ids_is_never_applied_twice(void **state)
{
	struct at_env *e = *state;

	/* Without an event id an old version delivered again looks like a late one: stale, logged, not applied.
	 * Only the copy of each key's last version is recognisably the same event. */
	stream_twice(e, false);
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 100), 0);
	assert_int_equal(at_counters(e).applied, 50);
	assert_int_equal(at_counters(e).stale, 40);
	assert_int_equal(at_counters(e).duplicate, 10);
	target_state_expect(e);
}

static void seen_idempotency_key_is_duplicate(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	/* No versions: only the idempotency key tells the retry from a new event. */
	at_add(e->src, 0, "acct-7", SL_VERSION_NONE, SL_OP_UPSERT, "{\"email\":\"a@x\"}", "evt-1");
	at_add(e->src, 0, "acct-7", SL_VERSION_NONE, SL_OP_UPSERT, "{\"email\":\"b@x\"}", "evt-2");
	at_add(e->src, 0, "acct-7", SL_VERSION_NONE, SL_OP_UPSERT, "{\"email\":\"a@x\"}", "evt-1");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_row_get(e, "acct-7", &row), 1);
	assert_string_equal(row.value, "{\"email\":\"b@x\"}");
	assert_int_equal(at_counters(e).applied, 2);
	assert_int_equal(at_counters(e).duplicate, 1);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM synclog_idempotency_keys"), 2);
}

static void idempotency_key_of_a_stale_event_makes_its_retry_a_duplicate(void **state)
{
	struct at_env *e = *state;

	at_add(e->src, 0, "k", 9, SL_OP_UPSERT, "9", "evt-9");
	at_add(e->src, 0, "k", 3, SL_OP_UPSERT, "3", "evt-3");
	at_add(e->src, 0, "k", 3, SL_OP_UPSERT, "3", "evt-3");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_counters(e).applied, 1);
	assert_int_equal(at_counters(e).stale, 1);
	assert_int_equal(at_counters(e).duplicate, 1);
	assert_int_equal(at_query_int(e, "SELECT count(*) FROM stale_events"), 1);
}

static void redelivered_offsets_are_duplicates(void **state)
{
	struct at_env *e = *state;
	struct at_row row;

	for (int v = 1; v <= 20; v++)
		at_upsert(e->src, 0, "k", v, "{}");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	/* A source that went back to offset 0 (a broker whose commit was older than the target's). */
	e->src->ignore_seek = true;
	e->src->redeliver_from = 0;
	for (int v = 21; v <= 25; v++)
		at_upsert(e->src, 0, "k", v, "{}");
	assert_int_equal(at_restart(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_counters(e).duplicate, 20);
	assert_int_equal(at_counters(e).applied, 5);
	assert_int_equal(at_row_get(e, "k", &row), 1);
	assert_int_equal(row.version, 25);
	assert_int_equal(at_query_int(e, "SELECT next_offset FROM synclog_offsets"), 25);
}

static void idempotency_keys_expire_after_the_retention(void **state)
{
	struct at_env *e = *state;
	struct sl_apply_purge_counts purged;

	e->options.tombstone_retention_ms = 60000;
	at_add(e->src, 0, "k", SL_VERSION_NONE, SL_OP_UPSERT, "1", "evt-1");
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
	e->clock.now_ms += 59999;
	assert_int_equal(sl_apply_purge(e->engine, &purged), 0);
	assert_int_equal(purged.idempotency_keys, 0);
	e->clock.now_ms += 1;
	assert_int_equal(sl_apply_purge(e->engine, &purged), 0);
	assert_int_equal(purged.idempotency_keys, 1);
	/* Forgotten: the same event is now applied again (the retention is the window of duplicate detection). */
	at_add(e->src, 0, "k", SL_VERSION_NONE, SL_OP_UPSERT, "1", "evt-1");
	assert_int_equal(at_run(e, 10), 0);
	assert_int_equal(at_counters(e).applied, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(stream_sent_twice_with_event_ids_is_all_duplicates, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(stream_sent_twice_without_event_ids_is_never_applied_twice, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(seen_idempotency_key_is_duplicate, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(idempotency_key_of_a_stale_event_makes_its_retry_a_duplicate, setup,
	                                        at_teardown),
	        cmocka_unit_test_setup_teardown(redelivered_offsets_are_duplicates, setup, at_teardown),
	        cmocka_unit_test_setup_teardown(idempotency_keys_expire_after_the_retention, setup, at_teardown),
	};

	return AT_RUN_ALL_PATHS(tests);
}
