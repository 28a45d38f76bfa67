/* Tests of schema versions (apply.h rule 9a): a record whose schema version the contract does not accept holds its
 * partition (nothing after it there is applied, other partitions go on, the state says why) or is dead-lettered,
 * per the contract; an upcast brings an old version up; a consumer started again with a contract that accepts the
 * version picks up where the hold was. */
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

struct env {
	struct at_env e;
	struct sl_contract *contract;
	char state[64];
	char reason[512];
	int64_t state_offset;
	uint32_t state_reports;
	char upcast[128];
};

static void state_cb(const char *topic, uint32_t partition, const char *state, const char *reason, int64_t offset,
                     void *cb_arg)
{
	struct env *x = cb_arg;

	(void)topic;
	(void)partition;
	snprintf(x->state, sizeof(x->state), "%s", state);
	snprintf(x->reason, sizeof(x->reason), "%s", reason);
	x->state_offset = offset;
	x->state_reports++;
}

static int contract_use(struct env *x, const char *text)
{
	char err[256];

	sl_contract_free(x->contract);
	x->contract = NULL;
	if (sl_contract_parse(text, strlen(text), &x->contract, err, sizeof(err)) != 0)
		return -1;
	x->e.options.contract = x->contract;
	x->e.options.on_unknown_schema = x->contract->on_unknown;
	return 0;
}

static int setup(void **state)
{
	struct env *x = calloc(1, sizeof(*x));

	if (x == NULL || at_env_init(&x->e, 2) != 0 ||
	    contract_use(x, "source_of_truth: {system: billing}\nschema: {versions: [1], on_unknown: hold}\n") != 0)
		return -1;
	x->e.options.state_cb = state_cb;
	x->e.options.state_cb_arg = x;
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

/* Partition 0: v1, v2, v1; partition 1: v1. A rolling upgrade: the producers of version 2 came first. */
static void interleaved(struct at_env *e)
{
	at_upsert(e->src, 0, "a", 1, "{\"full_name\":\"Ann\"}");
	at_schema_set(e->src, 0, at_upsert(e->src, 0, "b", 1, "{\"name\":{\"first\":\"Bo\"}}"), 2);
	at_upsert(e->src, 0, "c", 1, "{\"full_name\":\"Cy\"}");
	at_upsert(e->src, 1, "d", 1, "{\"full_name\":\"Di\"}");
}

static void an_unknown_version_holds_its_partition_and_only_it(void **state)
{
	struct env *x = *state;

	interleaved(&x->e);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_counters(&x->e).applied, 2);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key IN ('a', 'd')"), 2);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key IN ('b', 'c')"), 0);
	assert_int_equal(sl_apply_held_count(x->e.engine), 1);
	assert_int_equal(sl_apply_position_get(x->e.engine, AT_TOPIC, 0), 1);
	assert_string_equal(x->state, "held");
	assert_int_equal(x->state_offset, 1);
	assert_non_null(strstr(x->reason, "schema version 2 is not one the contract accepts (1)"));
	/* Where an operator looks in a SQLite target (the PostgreSQL store keeps no partition states). */
	if (at_path != AT_PATH_POSTGRESQL)
		assert_int_equal(at_query_int(&x->e,
		                              "SELECT count(*) FROM synclog_partition_state WHERE state = 'held' AND"
		                              " \"partition\" = 0 AND reason LIKE 'schema version 2%'"),
		                 1);
	assert_int_equal(x->e.sink.count, 0);
}

static void a_consumer_that_knows_the_version_resumes_at_the_hold(void **state)
{
	struct env *x = *state;

	interleaved(&x->e);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(contract_use(x, "source_of_truth: {system: billing}\nschema: {versions: [1, 2]}\n"), 0);
	assert_int_equal(at_restart(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities"), 4);
	assert_int_equal(sl_apply_held_count(x->e.engine), 0);
}

static void dead_letter_mode_sends_it_away_and_goes_on(void **state)
{
	struct env *x = *state;

	assert_int_equal(contract_use(x, "source_of_truth: {system: b}\nschema: {versions: [1], on_unknown: "
	                                 "dead-letter}\n"),
	                 0);
	interleaved(&x->e);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_counters(&x->e).applied, 3);
	assert_int_equal(at_counters(&x->e).dead_lettered, 1);
	assert_int_equal(x->e.sink.count, 1);
	assert_int_equal(x->e.sink.dead[0].offset, 1);
	assert_non_null(strstr(x->e.sink.dead[0].error, "schema version 2"));
}

/* Dead letters leave in offset order: an unknown version after a record the target rejects (set aside for retry
 * rounds, apply.h rule 8) waits for it, and both go, the rejected one first. */
static void dead_letters_of_schema_and_rejection_leave_in_offset_order(void **state)
{
	struct env *x = *state;

	assert_int_equal(contract_use(x, "source_of_truth: {system: b}\nschema: {versions: [1], on_unknown: "
	                                 "dead-letter}\n"),
	                 0);
	at_upsert(x->e.src, 0, "a", 1, "this is not JSON");
	at_schema_set(x->e.src, 0, at_upsert(x->e.src, 0, "b", 1, "{}"), 2);
	at_upsert(x->e.src, 0, "c", 1, "{}");
	x->e.options.reject_retries_max = 2;
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(x->e.sink.count, 2);
	assert_int_equal(x->e.sink.dead[0].offset, 0);
	assert_non_null(strstr(x->e.sink.dead[0].error, "rejected by the target 3 times"));
	assert_int_equal(x->e.sink.dead[1].offset, 1);
	assert_non_null(strstr(x->e.sink.dead[1].error, "schema version 2"));
	assert_int_equal(at_counters(&x->e).applied, 1);
	assert_int_equal(at_counters(&x->e).dead_lettered, 2);
}

/* An upcast from version 1 to 2: {"full_name": X} becomes {"name": {"first": X}}. */
static int upcast_cb(const struct sl_apply_record *r, const uint8_t *value, size_t len, int32_t *version,
                     const uint8_t **out, size_t *out_len, char *why, size_t why_bytes, void *cb_arg)
{
	struct env *x = cb_arg;
	const char *name;
	size_t name_len;

	(void)r;
	if (*version != 1)
		return -ENOENT;
	name = memmem(value, len, "\"full_name\":\"", 13);
	if (name == NULL) {
		snprintf(why, why_bytes, "no full_name");
		return -EBADMSG;
	}
	name += 13;
	name_len = strcspn(name, "\"");
	snprintf(x->upcast, sizeof(x->upcast), "{\"name\":{\"first\":\"%.*s\"}}", (int)name_len, name);
	*out = (const uint8_t *)x->upcast;
	*out_len = strlen(x->upcast);
	*version = 2;
	return 0;
}

static void an_upcast_brings_old_versions_to_the_accepted_one(void **state)
{
	struct env *x = *state;
	struct at_row row;

	assert_int_equal(contract_use(x, "source_of_truth: {system: b}\nschema: {versions: [2]}\n"), 0);
	x->e.options.upcast_cb = upcast_cb;
	x->e.options.upcast_cb_arg = x;
	interleaved(&x->e);
	at_upsert(x->e.src, 1, "e", 1, "{\"other\":1}");
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_row_get(&x->e, "a", &row), 1);
	assert_string_equal(row.value, "{\"name\":{\"first\":\"Ann\"}}");
	assert_int_equal(at_row_get(&x->e, "b", &row), 1);
	assert_string_equal(row.value, "{\"name\":{\"first\":\"Bo\"}}");
	/* Upcast in the same transaction as a's (a store that keeps its writes to commit still has each its own). */
	assert_int_equal(at_row_get(&x->e, "c", &row), 1);
	assert_string_equal(row.value, "{\"name\":{\"first\":\"Cy\"}}");
	assert_int_equal(at_row_get(&x->e, "d", &row), 1);
	assert_string_equal(row.value, "{\"name\":{\"first\":\"Di\"}}");
	/* A value the mapping cannot take is dead-lettered with why. */
	assert_int_equal(x->e.sink.count, 1);
	assert_non_null(strstr(x->e.sink.dead[0].error, "upcasting schema version 1: no full_name"));
}

static void deletes_and_records_without_a_version_of_an_accepted_schema_apply(void **state)
{
	struct env *x = *state;

	at_upsert(x->e.src, 0, "a", 1, "{}");
	at_schema_set(x->e.src, 0, at_delete(x->e.src, 0, "a", 2), 7);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_counters(&x->e).applied, 1);
	assert_int_equal(at_counters(&x->e).deleted, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(an_unknown_version_holds_its_partition_and_only_it, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_consumer_that_knows_the_version_resumes_at_the_hold, setup, teardown),
	        cmocka_unit_test_setup_teardown(dead_letter_mode_sends_it_away_and_goes_on, setup, teardown),
	        cmocka_unit_test_setup_teardown(dead_letters_of_schema_and_rejection_leave_in_offset_order, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(an_upcast_brings_old_versions_to_the_accepted_one, setup, teardown),
	        cmocka_unit_test_setup_teardown(deletes_and_records_without_a_version_of_an_accepted_schema_apply,
	                                        setup, teardown),
	};

	return AT_RUN_ALL_PATHS(tests); /* rule 9a and 9b need nothing of the store: every path */
}
