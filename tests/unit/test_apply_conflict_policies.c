/* Tests of the applier's conflict policies (apply.h rule 9c) on the seed's test: Alice changes a customer's email in
 * service A (identity, the source of truth) at 10:00:00, Bob in service B (crm) at 10:00:01, both from version 1,
 * and the events cross in flight, so Bob's reaches the log first. Each policy's outcome is asserted, and the
 * reject policy's operator queue is resolved each way. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/sync/contract.h"
#include "tests/unit/apply_test_util.h"

#define T_ALICE_MS 1714557600000LL /* 10:00:00 */
#define T_BOB_MS   1714557601000LL /* 10:00:01 */
#define ALICE      "{\"email\":\"alice@new.example\",\"name\":\"Ann\"}"
#define BOB        "{\"email\":\"bob@new.example\",\"name\":\"Ann\"}"

struct env {
	struct at_env e;
	struct sl_contract *contract;
};

static int setup(void **state)
{
	static const char text[] = "source_of_truth: {system: identity}\n";
	struct env *x = calloc(1, sizeof(*x));
	char err[256];

	if (x == NULL || at_env_init(&x->e, 1) != 0 ||
	    sl_contract_parse(text, strlen(text), &x->contract, err, sizeof(err)) != 0)
		return -1;
	x->e.options.contract = x->contract;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct env *x = *state;

	at_env_cleanup(&x->e);
	sl_contract_free(x->contract);
	free(x);
	return 0;
}

/* v1 by identity at 09:00, then Bob's v2 (crm, 10:00:01) and Alice's v2 (identity, 10:00:00) in that order. */
static void crossing_events(struct at_env *e)
{
	int64_t o;

	o = at_upsert(e->src, 0, "cust-1", 1, "{\"email\":\"ann@old.example\",\"name\":\"Ann\"}");
	at_system_set(e->src, 0, o, "identity", T_ALICE_MS - 3600000);
	o = at_upsert(e->src, 0, "cust-1", 2, BOB);
	at_system_set(e->src, 0, o, "crm", T_BOB_MS);
	o = at_upsert(e->src, 0, "cust-1", 2, ALICE);
	at_system_set(e->src, 0, o, "identity", T_ALICE_MS);
}

static void run_policy(struct env *x, enum sl_contract_conflicts policy, int64_t skew_ms)
{
	x->e.options.conflicts = policy;
	x->e.options.max_clock_skew_ms = skew_ms;
	crossing_events(&x->e);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
}

static void assert_email(struct at_env *e, const char *want_value)
{
	struct at_row row;

	assert_int_equal(at_row_get(e, "cust-1", &row), 1);
	assert_string_equal(row.value, want_value);
	assert_int_equal(row.version, 2);
}

static void version_keeps_the_first_in_the_log_and_logs_the_other(void **state)
{
	struct env *x = *state;

	run_policy(x, SL_CONFLICTS_VERSION, 0);
	assert_email(&x->e, BOB);
	assert_int_equal(at_counters(&x->e).conflicts, 1);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE policy = 'version' AND status ="
	                                     " 'logged' AND origin_system = 'identity'"),
	                 1);
}

static void source_of_truth_rejects_the_other_system_and_applies_the_owner(void **state)
{
	struct env *x = *state;

	run_policy(x, SL_CONFLICTS_SOURCE_OF_TRUTH, 0);
	assert_email(&x->e, ALICE);
	assert_int_equal(at_counters(&x->e).applied, 2);
	assert_int_equal(at_counters(&x->e).conflicts, 1);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE policy = 'source-of-truth' AND"
	                                     " status = 'rejected' AND origin_system = 'crm' AND \"offset\" = 1"),
	                 1);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE origin_system = 'identity'"), 1);
}

static void source_of_truth_rejects_a_live_record_that_does_not_say_who_wrote_it(void **state)
{
	struct env *x = *state;
	int64_t o;

	x->e.options.conflicts = SL_CONFLICTS_SOURCE_OF_TRUTH;
	at_upsert(x->e.src, 0, "k", 1, "\"nobody said\"");
	o = at_upsert(x->e.src, 0, "k2", 1, "\"from the backfill\"");
	at_origin_set(x->e.src, 0, o, SL_ORIGIN_BACKFILL);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key = 'k'"), 0);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE key = 'k' AND status = 'rejected'"
	                                     " AND reason LIKE '%without origin_system%'"),
	                 1);
	/* The backfill comes from the source of truth's data. */
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key = 'k2'"), 1);
}

static void lww_beyond_the_skew_keeps_the_later_change(void **state)
{
	struct env *x = *state;

	run_policy(x, SL_CONFLICTS_LWW, 500);
	assert_email(&x->e, BOB);
	assert_int_equal(at_counters(&x->e).stale, 1);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM stale_events WHERE \"offset\" = 2"), 1);
	assert_int_equal(at_query_int(&x->e, "SELECT changed_at_ms FROM entities"), T_BOB_MS);
}

static void lww_within_the_skew_falls_back_to_the_source_of_truth_and_logs_it(void **state)
{
	struct env *x = *state;

	run_policy(x, SL_CONFLICTS_LWW, 2000);
	assert_email(&x->e, ALICE);
	assert_int_equal(at_query_int(&x->e,
	                              "SELECT count(*) FROM conflicts WHERE policy = 'lww' AND status ="
	                              " 'logged' AND reason LIKE '%within max_clock_skew%source of truth wins%'"),
	                 1);
}

static void lww_within_the_skew_keeps_the_source_of_truths_row_against_another(void **state)
{
	struct env *x = *state;
	int64_t o;

	x->e.options.conflicts = SL_CONFLICTS_LWW;
	x->e.options.max_clock_skew_ms = 2000;
	o = at_upsert(x->e.src, 0, "cust-1", 2, ALICE);
	at_system_set(x->e.src, 0, o, "identity", T_ALICE_MS);
	o = at_upsert(x->e.src, 0, "cust-1", 2, BOB);
	at_system_set(x->e.src, 0, o, "crm", T_BOB_MS);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_email(&x->e, ALICE);
	assert_int_equal(at_counters(&x->e).conflicts, 1);
}

static void reject_queues_the_conflict_for_an_operator(void **state)
{
	struct env *x = *state;

	run_policy(x, SL_CONFLICTS_REJECT, 0);
	assert_email(&x->e, BOB);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE policy = 'reject' AND status ="
	                                     " 'open' AND incoming_value LIKE '%alice@new%'"),
	                 1);
}

static int64_t open_conflict_id(struct at_env *e)
{
	return at_query_int(e, "SELECT rowid FROM conflicts WHERE status = 'open'");
}

static void resolving_with_the_source_writes_the_queued_value_once(void **state)
{
	struct env *x = *state;
	struct sl_apply_store store;
	char why[256];
	int64_t id;

	run_policy(x, SL_CONFLICTS_REJECT, 0);
	id = open_conflict_id(&x->e);
	sl_apply_target_store(x->e.db, &store);
	assert_int_equal(sl_apply_conflict_resolve(&store, id, SL_APPLY_KEEP_SOURCE, NULL, 0, AT_CLOCK_START_MS, why,
	                                           sizeof(why)),
	                 0);
	assert_email(&x->e, ALICE);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE status = 'resolved' AND resolution"
	                                     " LIKE 'kept the source%'"),
	                 1);
	assert_int_equal(sl_apply_conflict_resolve(&store, id, SL_APPLY_KEEP_TARGET, NULL, 0, AT_CLOCK_START_MS, why,
	                                           sizeof(why)),
	                 -EALREADY);
	assert_int_equal(sl_apply_conflict_resolve(&store, 999, SL_APPLY_KEEP_TARGET, NULL, 0, AT_CLOCK_START_MS, why,
	                                           sizeof(why)),
	                 -ENOENT);
}

static void resolving_with_fields_sets_them_on_the_stored_object(void **state)
{
	struct env *x = *state;
	struct sl_apply_store store;
	const char *fields[] = {"email=carol@merged.example", "vip=true"};
	struct at_row row;
	char why[256];

	run_policy(x, SL_CONFLICTS_REJECT, 0);
	sl_apply_target_store(x->e.db, &store);
	assert_int_equal(sl_apply_conflict_resolve(&store, open_conflict_id(&x->e), SL_APPLY_KEEP_FIELDS, fields, 2,
	                                           AT_CLOCK_START_MS, why, sizeof(why)),
	                 0);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"name\":\"Ann\",\"email\":\"carol@merged.example\",\"vip\":true}");
	assert_int_equal(row.version, 2);
}

static void resolving_after_a_newer_write_is_refused_and_marked_superseded(void **state)
{
	struct env *x = *state;
	struct sl_apply_store store;
	char why[256];
	int64_t o, id;

	run_policy(x, SL_CONFLICTS_REJECT, 0);
	id = open_conflict_id(&x->e);
	o = at_upsert(x->e.src, 0, "cust-1", 3, "{\"email\":\"ann@v3.example\"}");
	at_system_set(x->e.src, 0, o, "identity", T_BOB_MS + 60000);
	assert_int_equal(at_run(&x->e, 10), 0);
	sl_apply_target_store(x->e.db, &store);
	assert_int_equal(sl_apply_conflict_resolve(&store, id, SL_APPLY_KEEP_SOURCE, NULL, 0, AT_CLOCK_START_MS, why,
	                                           sizeof(why)),
	                 -ESTALE);
	assert_non_null(strstr(why, "version 3"));
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE status = 'superseded'"), 1);
	assert_int_equal(at_query_int(&x->e, "SELECT version FROM entities"), 3);
}

static void open_conflicts_outlive_the_purge_decided_ones_do_not(void **state)
{
	struct env *x = *state;
	struct sl_apply_purge_counts counts;

	run_policy(x, SL_CONFLICTS_REJECT, 0);
	at_upsert(x->e.src, 0, "other", 1, "\"a\"");
	at_upsert(x->e.src, 0, "other", 1, "\"b\"");
	x->e.options.conflicts = SL_CONFLICTS_VERSION;
	assert_int_equal(at_restart(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts"), 2);
	x->e.clock.now_ms += 8LL * 24 * 3600 * 1000;
	assert_int_equal(sl_apply_purge(x->e.engine, &counts), 0);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE status = 'open'"), 1);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts"), 1);
}

static void source_of_truth_without_a_name_is_refused_at_start(void **state)
{
	struct env *x = *state;
	struct sl_apply *engine;
	char err[256];

	x->e.options.contract = NULL;
	x->e.options.conflicts = SL_CONFLICTS_SOURCE_OF_TRUTH;
	assert_int_equal(sl_apply_new(&engine, &x->e.options, &x->e.store, &x->e.source, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "source of truth"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(version_keeps_the_first_in_the_log_and_logs_the_other, setup, teardown),
	        cmocka_unit_test_setup_teardown(source_of_truth_rejects_the_other_system_and_applies_the_owner, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(source_of_truth_rejects_a_live_record_that_does_not_say_who_wrote_it,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(lww_beyond_the_skew_keeps_the_later_change, setup, teardown),
	        cmocka_unit_test_setup_teardown(lww_within_the_skew_falls_back_to_the_source_of_truth_and_logs_it,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(lww_within_the_skew_keeps_the_source_of_truths_row_against_another,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(reject_queues_the_conflict_for_an_operator, setup, teardown),
	        cmocka_unit_test_setup_teardown(resolving_with_the_source_writes_the_queued_value_once, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(resolving_with_fields_sets_them_on_the_stored_object, setup, teardown),
	        cmocka_unit_test_setup_teardown(resolving_after_a_newer_write_is_refused_and_marked_superseded, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(open_conflicts_outlive_the_purge_decided_ones_do_not, setup, teardown),
	        cmocka_unit_test_setup_teardown(source_of_truth_without_a_name_is_refused_at_start, setup, teardown),
	};

	return AT_RUN_SQLITE_PATHS(tests);
}
