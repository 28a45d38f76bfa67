/* Tests of field ownership (apply.h rule 9d): with a contract that says billing owns status and plan, support owns
 * note and consumers derive stale_badge, an event of one system changes only that system's fields of the stored
 * object, leaves the others as the target holds them (derived ones included), and notes what it may not change. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/sync/contract.h"
#include "tests/unit/apply_test_util.h"

struct env {
	struct at_env e;
	struct sl_contract *contract;
};

static int setup_with(void **state, const char *text, enum sl_contract_conflicts policy)
{
	struct env *x = calloc(1, sizeof(*x));
	char err[256];

	if (x == NULL || at_env_init(&x->e, 1) != 0 ||
	    sl_contract_parse(text, strlen(text), &x->contract, err, sizeof(err)) != 0)
		return -1;
	x->e.options.contract = x->contract;
	x->e.options.conflicts = policy;
	*state = x;
	return 0;
}

static const char owners[] = "source_of_truth: {system: billing}\n"
                             "fields_owned: {billing: [status, plan], support: [note]}\n"
                             "fields_derived: [stale_badge]\n";

static int setup(void **state)
{
	return setup_with(state, owners, SL_CONFLICTS_VERSION);
}

static int setup_sot(void **state)
{
	return setup_with(state, owners, SL_CONFLICTS_SOURCE_OF_TRUTH);
}

static int teardown(void **state)
{
	struct env *x = *state;

	at_env_cleanup(&x->e);
	sl_contract_free(x->contract);
	free(x);
	return 0;
}

static int64_t event(struct at_env *e, int64_t version, const char *system, const char *value)
{
	int64_t o = at_upsert(e->src, 0, "cust-1", version, value);

	at_system_set(e->src, 0, o, system, 0);
	return o;
}

static void run(struct at_env *e)
{
	assert_int_equal(at_engine_start(e), 0);
	assert_int_equal(at_run(e, 10), 0);
}

static void an_event_changes_only_the_fields_its_system_owns(void **state)
{
	struct env *x = *state;
	struct at_row row;

	event(&x->e, 1, "billing", "{\"status\":\"trial\",\"plan\":\"free\",\"note\":\"\",\"stale_badge\":false}");
	event(&x->e, 2, "support", "{\"status\":\"cancelled\",\"note\":\"called twice\"}");
	event(&x->e, 3, "billing", "{\"status\":\"active\",\"plan\":\"pro\",\"note\":\"\",\"stale_badge\":true}");
	run(&x->e);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	/* Support's note stays through billing's snapshots, billing's status through support's, and no event sets
	 * the derived badge (nor billing the note, even on the first write of the row). */
	assert_string_equal(row.value, "{\"status\":\"active\",\"plan\":\"pro\",\"note\":\"called twice\"}");
	assert_int_equal(row.version, 3);
	assert_int_equal(at_counters(&x->e).applied, 3);
}

static void fields_an_event_may_not_change_are_noted(void **state)
{
	struct env *x = *state;

	event(&x->e, 1, "billing", "{\"status\":\"trial\"}");
	event(&x->e, 2, "support", "{\"status\":\"cancelled\",\"note\":\"y\"}");
	event(&x->e, 3, "billing", "{\"status\":\"active\",\"note\":\"y\"}");
	run(&x->e);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE policy = 'fields' AND status ="
	                                     " 'logged' AND origin_system = 'support' AND reason LIKE"
	                                     " '%status (billing)%'"),
	                 1);
	/* The same value of a field it does not own is no news: nothing noted for billing's event. */
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE origin_system = 'billing'"), 0);
}

static void a_field_the_system_leaves_out_is_removed_others_stay(void **state)
{
	struct env *x = *state;
	struct at_row row;

	event(&x->e, 1, "billing", "{\"status\":\"trial\",\"plan\":\"free\"}");
	event(&x->e, 2, "support", "{\"note\":\"vip\"}");
	event(&x->e, 3, "billing", "{\"status\":\"active\"}");
	run(&x->e);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"status\":\"active\",\"note\":\"vip\"}");
}

static void an_equal_version_that_changes_nothing_owned_is_a_duplicate(void **state)
{
	struct env *x = *state;

	event(&x->e, 4, "billing", "{\"status\":\"active\",\"note\":\"a\"}");
	event(&x->e, 4, "billing", "{\"status\":\"active\",\"note\":\"b\"}");
	run(&x->e);
	assert_int_equal(at_counters(&x->e).duplicate, 1);
	assert_int_equal(at_counters(&x->e).conflicts, 0);
}

/* A rejection sets the event aside for a later retry round (apply.h rule 8): retried, it is still its system's
 * event, merged into the fields that system owns, and the row keeps who wrote it. */
static void an_event_retried_after_a_rejection_is_merged_as_its_systems(void **state)
{
	struct env *x = *state;
	struct at_row row;

	event(&x->e, 1, "billing", "{\"status\":\"trial\",\"plan\":\"free\"}");
	event(&x->e, 2, "support", "{\"status\":\"cancelled\",\"note\":\"vip\"}");
	x->e.faults = (struct at_faults){.op = "upsert", .after = 1, .times = 1, .rc = SL_APPLY_REJECTED};
	run(&x->e);
	assert_int_equal(x->e.faults.calls, 3); /* billing's, support's rejected, support's retried */
	assert_int_equal(x->e.sink.calls, 0);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"status\":\"trial\",\"plan\":\"free\",\"note\":\"vip\"}");
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE origin_system = 'support'"), 1);
	assert_int_equal(at_counters(&x->e).applied, 2);
}

static void numbers_keep_their_spelling_through_a_merge(void **state)
{
	struct env *x = *state;
	struct at_row row;

	event(&x->e, 1, "billing", "{\"status\":\"a\",\"plan\":0.1}");
	event(&x->e, 2, "support", "{\"note\":1.0}");
	run(&x->e);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"status\":\"a\",\"plan\":0.1,\"note\":1.0}");
}

static void under_source_of_truth_another_system_writes_its_own_fields_at_the_owners_version(void **state)
{
	struct env *x = *state;
	struct at_row row;

	event(&x->e, 5, "billing", "{\"status\":\"active\"}");
	event(&x->e, 9, "support", "{\"status\":\"gone\",\"note\":\"escalated\"}");
	event(&x->e, 6, "billing", "{\"status\":\"paused\"}");
	run(&x->e);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"status\":\"paused\",\"note\":\"escalated\"}");
	assert_int_equal(row.version, 6);
}

static void under_source_of_truth_a_record_with_none_of_its_own_fields_is_rejected(void **state)
{
	struct env *x = *state;
	struct at_row row;

	event(&x->e, 5, "billing", "{\"status\":\"active\"}");
	event(&x->e, 6, "crm", "{\"status\":\"vip\"}");
	run(&x->e);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"status\":\"active\"}");
	assert_int_equal(at_counters(&x->e).conflicts, 1);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM conflicts WHERE status = 'rejected' AND"
	                                     " origin_system = 'crm'"),
	                 1);
}

static void a_value_that_is_not_an_object_is_written_whole(void **state)
{
	struct env *x = *state;
	struct at_row row;

	event(&x->e, 1, "billing", "\"just text\"");
	run(&x->e);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "\"just text\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(an_event_changes_only_the_fields_its_system_owns, setup, teardown),
	        cmocka_unit_test_setup_teardown(fields_an_event_may_not_change_are_noted, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_field_the_system_leaves_out_is_removed_others_stay, setup, teardown),
	        cmocka_unit_test_setup_teardown(an_equal_version_that_changes_nothing_owned_is_a_duplicate, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(an_event_retried_after_a_rejection_is_merged_as_its_systems, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(numbers_keep_their_spelling_through_a_merge, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                under_source_of_truth_another_system_writes_its_own_fields_at_the_owners_version, setup_sot,
	                teardown),
	        cmocka_unit_test_setup_teardown(under_source_of_truth_a_record_with_none_of_its_own_fields_is_rejected,
	                                        setup_sot, teardown),
	        cmocka_unit_test_setup_teardown(a_value_that_is_not_an_object_is_written_whole, setup, teardown),
	};

	return AT_RUN_SQLITE_PATHS(tests);
}
