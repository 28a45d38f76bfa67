/* Tests of contract files (consumer/sync/contract.h): the seed's block written in YAML or JSON means the same
 * contract, its stored form reads back to itself, and every mistake an operator can make is refused with the line
 * and the key to fix. */
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

static const char full_yaml[] = "# the customer-status sync\n"
                                "source_of_truth:\n"
                                "  system: billing\n"
                                "fields_owned:\n"
                                "  billing: [status, plan]\n"
                                "  support: [note]\n"
                                "fields_derived: [stale_badge]\n"
                                "delivery:\n"
                                "  model: shared-log\n"
                                "  ordering: per-key\n"
                                "  duplicates: idempotency-key\n"
                                "  without_idempotency_key: refuse\n"
                                "  stale: log-and-drop\n"
                                "  payload: thin\n"
                                "  fetch_url: http://billing.internal/customers/{key}\n"
                                "conflicts:\n"
                                "  policy: lww\n"
                                "  max_clock_skew: 2s\n"
                                "recovery:\n"
                                "  backfill_source: sqlite:/srv/billing.db:customers\n"
                                "  replay_owner: crm-team\n"
                                "  retry_limit: 12\n"
                                "  reconcile_every: 1h\n"
                                "  mismatch_threshold: 0.0001\n"
                                "  alert:\n"
                                "    stall_after: 5m\n"
                                "    notify: \"#sync-oncall\"\n"
                                "schema:\n"
                                "  versions: [1, 2]\n"
                                "  on_unknown: dead-letter\n"
                                "deletes:\n"
                                "  mode: archive\n"
                                "  retention: 7d\n"
                                "consumer_impact:\n"
                                "  during_delay: CRM shows the previous status\n"
                                "  during_drift: support sees a stale badge until reconciliation\n"
                                "  on_duplicate: nothing, the event id was seen\n"
                                "  on_delete: the customer is hidden, kept 7 days\n"
                                "  on_schema_change: v2 waits until the CRM knows it\n"
                                "  rollout_pause: a reconcile above 0.01%\n";

static struct sl_contract *parse_ok(const char *text)
{
	struct sl_contract *c = NULL;
	char err[512] = "";
	int rc = sl_contract_parse(text, strlen(text), &c, err, sizeof(err));

	if (rc != 0)
		fail_msg("parse failed (%d): %s", rc, err);
	return c;
}

/* Parse text expecting a refusal whose message holds every one of the strings given (NULL-terminated). */
static void parse_refused(const char *text, ...)
{
	struct sl_contract *c = NULL;
	char err[512] = "";
	const char *want;
	va_list ap;

	assert_int_equal(sl_contract_parse(text, strlen(text), &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	va_start(ap, text);
	while ((want = va_arg(ap, const char *)) != NULL)
		if (strstr(err, want) == NULL)
			fail_msg("error '%s' lacks '%s'", err, want);
	va_end(ap);
}

static void full_yaml_contract_reads_every_clause(void **state)
{
	struct sl_contract *c = parse_ok(full_yaml);

	(void)state;
	assert_string_equal(c->source_of_truth, "billing");
	assert_int_equal(c->owner_count, 2);
	assert_int_equal(c->duplicates, SL_DUPLICATES_IDEMPOTENCY_KEY);
	assert_int_equal(c->without_idempotency_key, SL_MISSING_IK_REFUSE);
	assert_true(c->thin);
	assert_string_equal(c->fetch_url, "http://billing.internal/customers/{key}");
	assert_int_equal(c->conflicts, SL_CONFLICTS_LWW);
	assert_int_equal(c->max_clock_skew_ms, 2000);
	assert_string_equal(c->backfill_source, "sqlite:/srv/billing.db:customers");
	assert_int_equal(c->reconcile_every_ms, 3600000);
	assert_true(c->mismatch_threshold > 0.00009 && c->mismatch_threshold < 0.00011);
	assert_int_equal(c->stall_after_ms, 300000);
	assert_int_equal(c->schema_version_count, 2);
	assert_int_equal(c->on_unknown, SL_ON_UNKNOWN_DEAD_LETTER);
	assert_true(c->deletes_given);
	assert_int_equal(c->deletes, SL_DELETES_ARCHIVE);
	assert_int_equal(c->delete_retention_ms, 7LL * 24 * 3600 * 1000);
	assert_string_equal(c->replay_owner, "crm-team");
	assert_string_equal(c->notify, "#sync-oncall");
	assert_int_equal(c->retry_limit, 12);
	sl_contract_free(c);
}

/* The review drill: a contract that answers every line of the block and the drill's questions has no blank line;
 * a bare one names each line it leaves blank, in the block's order. */
static void blank_lines_of_the_block_are_named(void **state)
{
	struct sl_contract *full = parse_ok(full_yaml);
	struct sl_contract *bare = parse_ok("source_of_truth: {system: billing}\n"
	                                    "fields_derived: []\n"
	                                    "delivery: {payload: thin}\n"
	                                    "consumer_impact: {during_delay: the previous status}\n");
	const char *names[64];
	size_t count;

	(void)state;
	assert_int_equal(sl_contract_blank_lines(full, names, 64), 0);
	count = sl_contract_blank_lines(bare, names, 64);
	/* 21 lines, less fields_derived (an empty list answers "none") and during_delay, plus the thin event's
	 * fetch_url and retry_limit. */
	assert_int_equal(count, 21);
	assert_string_equal(names[0], "fields_owned");
	assert_string_equal(names[1], "delivery.model");
	assert_string_equal(names[14], "consumer_impact.during_drift");
	assert_string_equal(names[18], "consumer_impact.rollout_pause");
	assert_string_equal(names[19], "delivery.fetch_url");
	assert_string_equal(names[20], "recovery.retry_limit");
	/* Fewer slots than blank lines: the count is still whole. */
	assert_int_equal(sl_contract_blank_lines(bare, names, 2), 21);
	sl_contract_free(full);
	sl_contract_free(bare);
}

static void fields_belong_to_their_system_unlisted_to_the_source_of_truth_derived_to_none(void **state)
{
	struct sl_contract *c = parse_ok(full_yaml);

	(void)state;
	assert_true(sl_contract_has_ownership(c));
	assert_string_equal(sl_contract_field_owner(c, "status", 6), "billing");
	assert_string_equal(sl_contract_field_owner(c, "note", 4), "support");
	assert_string_equal(sl_contract_field_owner(c, "email", 5), "billing");
	assert_null(sl_contract_field_owner(c, "stale_badge", 11));
	/* A prefix of a name is another name. */
	assert_string_equal(sl_contract_field_owner(c, "not", 3), "billing");
	sl_contract_free(c);
}

static void yaml_and_json_of_one_contract_store_the_same_form(void **state)
{
	struct sl_contract *a = parse_ok("source_of_truth: {system: crm}\n"
	                                 "fields_owned: [email, name]\n"
	                                 "conflicts: source-of-truth\n"
	                                 "schema: {versions: [2, 3], on_unknown: hold}\n");
	struct sl_contract *b = parse_ok("{\"schema\": {\"on_unknown\": \"hold\", \"versions\": [2, 3]},"
	                                 " \"conflicts\": {\"policy\": \"source-of-truth\"},"
	                                 " \"fields_owned\": {\"crm\": [\"email\", \"name\"]},"
	                                 " \"source_of_truth\": {\"system\": \"crm\"}}");

	(void)state;
	assert_string_equal(a->json, b->json);
	assert_int_equal(a->conflicts, SL_CONFLICTS_SOURCE_OF_TRUTH);
	assert_string_equal(sl_contract_field_owner(b, "email", 5), "crm");
	sl_contract_free(a);
	sl_contract_free(b);
}

static void stored_form_reads_back_to_itself(void **state)
{
	struct sl_contract *a = parse_ok(full_yaml), *b = parse_ok(a->json);

	(void)state;
	assert_string_equal(a->json, b->json);
	assert_int_equal(b->conflicts, a->conflicts);
	assert_int_equal(b->owner_count, a->owner_count);
	assert_int_equal(b->derived_count, a->derived_count);
	sl_contract_free(a);
	sl_contract_free(b);
}

static void minimal_contract_has_the_defaults(void **state)
{
	struct sl_contract *c = parse_ok("source_of_truth:\n  system: billing\n");

	(void)state;
	assert_int_equal(c->conflicts, SL_CONFLICTS_VERSION);
	assert_int_equal(c->duplicates, SL_DUPLICATES_VERSION);
	assert_false(sl_contract_has_ownership(c));
	assert_true(sl_contract_schema_accepted(c, 77));
	assert_true(c->mismatch_threshold < 0);
	assert_false(c->deletes_given);
	sl_contract_free(c);
}

static void schema_versions_accept_listed_ones_and_a_missing_one_as_1(void **state)
{
	struct sl_contract *c = parse_ok("source_of_truth: {system: a}\nschema: {versions: [1, 2]}\n");

	(void)state;
	assert_true(sl_contract_schema_accepted(c, 0));
	assert_true(sl_contract_schema_accepted(c, 2));
	assert_false(sl_contract_schema_accepted(c, 3));
	sl_contract_free(c);
}

static void unknown_key_is_refused_with_its_line(void **state)
{
	(void)state;
	parse_refused("source_of_truth:\n  system: billing\ndelivery:\n  duplicate: version\n", "line 4",
	              "delivery.duplicate", "unknown key", "duplicates", NULL);
	parse_refused("source_of_truth: {system: billing}\nreconcile: 1h\n", "line 2", "reconcile", NULL);
}

static void bad_values_are_refused_with_the_choices(void **state)
{
	(void)state;
	parse_refused("source_of_truth: {system: b}\ndelivery:\n  duplicates: idem\n", "line 3", "delivery.duplicates",
	              "'idem' is not one of version, idempotency-key", NULL);
	parse_refused("source_of_truth: {system: b}\nconflicts: newest\n", "conflicts.policy",
	              "version, source-of-truth, lww, reject", NULL);
	parse_refused("source_of_truth: {system: b}\nrecovery:\n  reconcile_every: hourly\n",
	              "recovery.reconcile_every", "duration", NULL);
	parse_refused("source_of_truth: {system: b}\nrecovery: {mismatch_threshold: 5}\n", "mismatch_threshold",
	              "ratio", NULL);
	parse_refused("source_of_truth: {system: b}\nschema: {versions: [1, zero]}\n", "schema.versions[1]", NULL);
	parse_refused("source_of_truth: {system: b}\ndelivery: {fetch_url: \"http://x/y\"}\n", "{key}", NULL);
	parse_refused("source_of_truth: {system: b}\nconflicts: {policy: version, max_clock_skew: 1s}\n", "lww", NULL);
	parse_refused("source_of_truth: {system: b}\nrecovery: {backfill_source: \"ftp://x\"}\n", "sqlite:", NULL);
	parse_refused("source_of_truth: {system: b}\nrecovery: {retry_limit: 0}\n", "recovery.retry_limit", "1 to 1000",
	              NULL);
	parse_refused("source_of_truth: {system: b}\nrecovery: {retry_limit: many}\n", "recovery.retry_limit", NULL);
}

static void source_of_truth_is_required(void **state)
{
	(void)state;
	parse_refused("delivery: {ordering: per-key}\n", "source_of_truth.system", "required", NULL);
	parse_refused("source_of_truth: {system: \"two words\"}\n", "source_of_truth.system", NULL);
	parse_refused("", "empty", NULL);
	parse_refused("- a\n- b\n", "mapping", NULL);
}

static void a_field_owned_twice_or_owned_and_derived_is_refused(void **state)
{
	(void)state;
	parse_refused("source_of_truth: {system: a}\nfields_owned: {a: [x], b: [x]}\n", "fields_owned.b",
	              "'x' is listed twice", NULL);
	parse_refused("source_of_truth: {system: a}\nfields_owned: [x]\nfields_derived: [x]\n", "fields_derived",
	              "twice", NULL);
}

static void a_key_given_twice_is_refused(void **state)
{
	(void)state;
	parse_refused("source_of_truth: {system: a}\nschema: {on_unknown: hold}\nschema: {on_unknown: dead-letter}\n",
	              "line 3", "schema", "twice", NULL);
	parse_refused("{\"source_of_truth\": {\"system\": \"a\"}, \"source_of_truth\": {\"system\": \"b\"}}",
	              "duplicate", NULL);
}

static void not_yaml_and_not_json_name_the_line(void **state)
{
	(void)state;
	parse_refused("source_of_truth:\n  system: [a\n", "line 3", "not YAML", NULL);
	parse_refused("{\"source_of_truth\": }", "line 1", "not JSON", NULL);
	parse_refused("source_of_truth: {system: a}\n---\nsource_of_truth: {system: b}\n", "more than one", NULL);
}

/* Aliases that expand to millions of nodes are refused after a bounded amount of work. */
static void alias_expansion_is_bounded(void **state)
{
	char text[2048];
	size_t at = 0;

	(void)state;
	at += (size_t)snprintf(text + at, sizeof(text) - at, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at,
		                       "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
		                       i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	parse_refused(text, "nodes", NULL);
}

static void oversized_text_is_refused(void **state)
{
	size_t len = SL_CONTRACT_TEXT_BYTES_MAX + 1;
	char *text = malloc(len);
	struct sl_contract *c = NULL;
	char err[256];

	(void)state;
	memset(text, '#', len);
	assert_int_equal(sl_contract_parse(text, len, &c, err, sizeof(err)), -E2BIG);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(full_yaml_contract_reads_every_clause),
	        cmocka_unit_test(blank_lines_of_the_block_are_named),
	        cmocka_unit_test(fields_belong_to_their_system_unlisted_to_the_source_of_truth_derived_to_none),
	        cmocka_unit_test(yaml_and_json_of_one_contract_store_the_same_form),
	        cmocka_unit_test(stored_form_reads_back_to_itself),
	        cmocka_unit_test(minimal_contract_has_the_defaults),
	        cmocka_unit_test(schema_versions_accept_listed_ones_and_a_missing_one_as_1),
	        cmocka_unit_test(unknown_key_is_refused_with_its_line),
	        cmocka_unit_test(bad_values_are_refused_with_the_choices),
	        cmocka_unit_test(source_of_truth_is_required),
	        cmocka_unit_test(a_field_owned_twice_or_owned_and_derived_is_refused),
	        cmocka_unit_test(a_key_given_twice_is_refused),
	        cmocka_unit_test(not_yaml_and_not_json_name_the_line),
	        cmocka_unit_test(alias_expansion_is_bounded),
	        cmocka_unit_test(oversized_text_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
