/* Tests of thin events (apply.h rule 9b): a record with op changed is applied as what the source's API returns for
 * its key; while the API does not answer, its partition waits (held, tried again with backoff, the state says
 * waiting and why) and the other partitions go on; after the retry budget it is dead-lettered; an entity the API
 * no longer has is deleted. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/apply_test_util.h"

#define SCRIPT_MAX 32

struct env {
	struct at_env e;
	int script[SCRIPT_MAX]; /* what each fetch returns: 0 (the entity), -EAGAIN, -ENOENT, -EBADMSG */
	uint32_t script_len;
	uint32_t fetches;
	char body[128];
	char states[512]; /* "stalled,ok," ... */
};

static int fetch_cb(const struct sl_apply_record *r, const uint8_t **out, size_t *out_len, char *why, size_t why_bytes,
                    void *cb_arg)
{
	struct env *x = cb_arg;
	int rc = x->fetches < x->script_len ? x->script[x->fetches] : 0;

	x->fetches++;
	if (rc == -EAGAIN)
		snprintf(why, why_bytes, "GET http://source/entities/%.*s: connection refused", (int)r->rec.key_len,
		         (const char *)r->rec.key);
	else if (rc == -EBADMSG)
		snprintf(why, why_bytes, "GET: 400 Bad Request");
	snprintf(x->body, sizeof(x->body), "{\"id\":\"%.*s\",\"fetch\":%u}", (int)r->rec.key_len,
	         (const char *)r->rec.key, x->fetches);
	*out = (const uint8_t *)x->body;
	*out_len = strlen(x->body);
	return rc;
}

static void state_cb(const char *topic, uint32_t partition, const char *state, const char *reason, int64_t offset,
                     void *cb_arg)
{
	struct env *x = cb_arg;
	size_t at = strlen(x->states);

	(void)topic;
	(void)partition;
	(void)reason;
	(void)offset;
	snprintf(x->states + at, sizeof(x->states) - at, "%s,", state);
}

static int setup(void **state)
{
	struct env *x = calloc(1, sizeof(*x));

	if (x == NULL || at_env_init(&x->e, 2) != 0)
		return -1;
	x->e.options.fetch_cb = fetch_cb;
	x->e.options.fetch_cb_arg = x;
	x->e.options.state_cb = state_cb;
	x->e.options.state_cb_arg = x;
	x->e.options.fetch_retries_max = 4;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct env *x = *state;

	at_env_cleanup(&x->e);
	free(x);
	return 0;
}

static int64_t thin(struct at_env *e, uint32_t partition, const char *key, int64_t version)
{
	return at_add(e->src, partition, key, version, SL_OP_CHANGED, NULL, NULL);
}

static void a_thin_event_applies_what_the_source_returns(void **state)
{
	struct env *x = *state;
	struct at_row row;

	thin(&x->e, 0, "cust-1", 4);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"id\":\"cust-1\",\"fetch\":1}");
	assert_int_equal(row.version, 4);
	assert_int_equal(at_counters(&x->e).applied, 1);
}

static void while_the_source_is_down_the_partition_waits_and_the_others_go_on(void **state)
{
	struct env *x = *state;
	struct at_row row;

	x->script[0] = x->script[1] = -EAGAIN;
	x->script_len = 2;
	thin(&x->e, 0, "cust-1", 1);
	at_upsert(x->e.src, 0, "after", 1, "\"behind the thin event\"");
	at_upsert(x->e.src, 1, "other", 1, "\"another partition\"");
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(sl_apply_poll(x->e.engine) >= 0, 1);
	/* The first try failed: partition 0 waits at offset 0, partition 1 went on. */
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key = 'other'"), 1);
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key IN ('cust-1', 'after')"), 0);
	/* Where an operator looks in a SQLite target (the PostgreSQL store keeps no partition states). */
	if (at_path != AT_PATH_POSTGRESQL)
		assert_int_equal(at_query_int(&x->e,
		                              "SELECT count(*) FROM synclog_partition_state WHERE \"partition\" = 0 AND"
		                              " state = 'stalled' AND reason LIKE '%connection refused (try 1 of 4)'"),
		                 1);
	assert_false(sl_apply_done(x->e.engine));
	assert_int_equal(at_run(&x->e, 50), 0);
	assert_int_equal(x->fetches, 3);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_string_equal(row.value, "{\"id\":\"cust-1\",\"fetch\":3}");
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key = 'after'"), 1);
	assert_string_equal(x->states, "stalled,stalled,ok,");
	/* Where an operator looks in a SQLite target (the PostgreSQL store keeps no partition states). */
	if (at_path != AT_PATH_POSTGRESQL)
		assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM synclog_partition_state WHERE state = 'ok'"),
		                 1);
	/* The waits were the backoff's: 100 ms, then 200 ms, on the fake clock. */
	assert_true(x->e.clock.slept_ms >= 300);
}

static void after_the_retry_budget_it_is_dead_lettered(void **state)
{
	struct env *x = *state;

	for (int i = 0; i < 6; i++)
		x->script[i] = -EAGAIN;
	x->script_len = 6;
	thin(&x->e, 0, "cust-1", 1);
	at_upsert(x->e.src, 0, "after", 1, "\"x\"");
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 100), 0);
	assert_int_equal(x->fetches, 4);
	assert_int_equal(x->e.sink.count, 1);
	assert_non_null(strstr(x->e.sink.dead[0].error, "failed 4 times: GET http://source/entities/cust-1"));
	assert_int_equal(at_query_int(&x->e, "SELECT count(*) FROM entities WHERE key = 'after'"), 1);
}

static void an_entity_the_source_no_longer_has_is_deleted(void **state)
{
	struct env *x = *state;
	struct at_row row;

	at_upsert(x->e.src, 0, "cust-1", 1, "{}");
	thin(&x->e, 0, "cust-1", 2);
	x->script[1] = -ENOENT;
	x->script_len = 2;
	x->fetches = 1; /* the upsert fetched nothing */
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(at_row_get(&x->e, "cust-1", &row), 1);
	assert_int_equal(row.deleted, 1);
	assert_int_equal(row.version, 2);
}

static void a_permanent_refusal_is_dead_lettered_at_once(void **state)
{
	struct env *x = *state;

	x->script[0] = -EBADMSG;
	x->script_len = 1;
	thin(&x->e, 0, "cust-1", 1);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(x->fetches, 1);
	assert_int_equal(x->e.sink.count, 1);
	assert_non_null(strstr(x->e.sink.dead[0].error, "400 Bad Request"));
}

static void without_a_fetcher_thin_events_are_dead_lettered(void **state)
{
	struct env *x = *state;

	x->e.options.fetch_cb = NULL;
	thin(&x->e, 0, "cust-1", 1);
	assert_int_equal(at_engine_start(&x->e), 0);
	assert_int_equal(at_run(&x->e, 10), 0);
	assert_int_equal(x->e.sink.count, 1);
	assert_non_null(strstr(x->e.sink.dead[0].error, "--fetch-url"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(a_thin_event_applies_what_the_source_returns, setup, teardown),
	        cmocka_unit_test_setup_teardown(while_the_source_is_down_the_partition_waits_and_the_others_go_on,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(after_the_retry_budget_it_is_dead_lettered, setup, teardown),
	        cmocka_unit_test_setup_teardown(an_entity_the_source_no_longer_has_is_deleted, setup, teardown),
	        cmocka_unit_test_setup_teardown(a_permanent_refusal_is_dead_lettered_at_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(without_a_fetcher_thin_events_are_dead_lettered, setup, teardown),
	};

	return AT_RUN_ALL_PATHS(tests); /* rule 9a and 9b need nothing of the store: every path */
}
