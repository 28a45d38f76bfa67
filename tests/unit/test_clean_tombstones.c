/* The tombstone lifecycle in the cleaner: a tombstone gets its delete horizon the first time a clean sees it and
 * keeps it; it stays past its horizon while a group's committed offset has not passed it, and goes once every group
 * has; it stays while a later (stale) record of its key exists, which a replay without it would apply. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clean_test_util.h"

static void add(struct ct_stream *s, uint32_t key, int64_t version, int op)
{
	assert_true(s->count < s->cap);
	struct ct_rec *r = &s->recs[s->count++];
	memset(r, 0, sizeof(*r));
	r->key = key;
	r->version = version;
	r->op = op;
	snprintf(r->value, sizeof(r->value), "v%u.%" PRId64, key, version);
}

static struct ct_stream *stream_new(void)
{
	struct ct_stream *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->cap = 1024;
	s->recs = calloc(s->cap, sizeof(*s->recs));
	assert_non_null(s->recs);
	return s;
}

static void stream_free(struct ct_stream *s)
{
	ct_stream_free(s);
	free(s);
}

static void state_of_log(struct lt_fixture *fx, const struct ct_stream *s, struct ct_state *st)
{
	assert_int_equal(ct_state_of_log(fx->log, s, st), 0);
}

/* The batch holding offset, read raw. */
static void batch_at(struct lt_fixture *fx, int64_t offset, struct sl_batch_header *h)
{
	uint8_t *buf = malloc(1 << 20);
	size_t len;
	int64_t next;
	assert_non_null(buf);
	assert_int_equal(sl_log_read(fx->log, offset, buf, 1 << 20, &len, &next), 0);
	assert_int_equal(sl_batch_header_parse(buf, len, h), 0);
	free(buf);
}

static void test_horizon_stamped_once(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = stream_new();
	uint64_t rng = 1;
	assert_int_equal(lt_fixture_open(fx), 0);
	add(s, 1, 1, SL_OP_UPSERT);
	add(s, 1, 2, SL_OP_DELETE);
	add(s, 2, 1, SL_OP_UPSERT);
	for (size_t i = 0; i < s->count; i++)
		assert_int_equal(ct_append(fx, &rng, s, i, i + 1), 0); /* one record per batch */
	assert_int_equal(ct_roll_and_seal(fx), 0);
	struct sl_clean_params p;
	ct_params(&p);
	p.delete_retention_ms = 60000;
	assert_int_equal(ct_clean(fx, &p, NULL), 0);
	struct sl_batch_header h;
	batch_at(fx, s->recs[1].offset, &h);
	assert_true(h.attributes & SL_BATCH_ATTR_DELETE_HORIZON);
	assert_int_equal(h.base_timestamp, p.now_ms + 60000);
	/* Record timestamps are kept although baseTimestamp changed. */
	assert_int_equal(h.max_timestamp, ct_timestamp_ms(1));
	/* A later clean keeps the first horizon. */
	p.now_ms += 1000;
	assert_int_equal(ct_clean(fx, &p, NULL), 0);
	batch_at(fx, s->recs[1].offset, &h);
	assert_int_equal(h.base_timestamp, p.now_ms - 1000 + 60000);
	assert_int_equal(lt_fixture_close(fx), 0);
	stream_free(s);
}

static void test_tombstone_kept_while_a_group_is_behind(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = stream_new();
	uint64_t rng = 2;
	assert_int_equal(lt_fixture_open(fx), 0);
	for (uint32_t k = 0; k < 20; k++)
		add(s, k, 1, SL_OP_UPSERT);
	for (uint32_t k = 0; k < 20; k += 2)
		add(s, k, 2, SL_OP_DELETE);
	assert_int_equal(ct_append(fx, &rng, s, 0, s->count), 0);
	assert_int_equal(ct_roll_and_seal(fx), 0);
	struct ct_state *want = malloc(sizeof(*want)), *got = malloc(sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	ct_state_of_stream(s, s->count, want);

	/* Horizon passed (retention 0) but a group committed only up to the first tombstone. */
	struct sl_clean_params p;
	struct sl_clean_stats st;
	ct_params(&p);
	p.delete_retention_ms = 0;
	p.groups_min_committed = s->recs[20].offset;
	assert_int_equal(ct_clean(fx, &p, &st), 0);
	assert_int_equal(st.tombstones_removed, 0);
	assert_int_equal(st.tombstones_kept, 10);
	assert_int_equal(st.lowest_held_tombstone, s->recs[20].offset);
	state_of_log(fx, s, got);
	assert_int_equal(ct_state_compare(want, got, 0), 0);

	/* The group moves past half of them: those go, the rest stay. */
	p.groups_min_committed = s->recs[25].offset;
	assert_int_equal(ct_clean(fx, &p, &st), 0);
	assert_int_equal(st.tombstones_removed, 5);
	assert_int_equal(st.tombstones_kept, 5);
	state_of_log(fx, s, got);
	for (uint32_t k = 0; k < 20; k += 2)
		assert_int_equal(got->keys[k].exists, s->recs[20 + k / 2].offset >= p.groups_min_committed);

	/* Every group past all of them (or none registered): all go, deleted keys are absent. */
	p.groups_min_committed = INT64_MAX;
	assert_int_equal(ct_clean(fx, &p, &st), 0);
	assert_int_equal(st.tombstones_kept, 0);
	state_of_log(fx, s, got);
	assert_int_equal(ct_state_compare(want, got, 1), 0);
	assert_int_equal(lt_fixture_close(fx), 0);
	free(want);
	free(got);
	stream_free(s);
}

static void test_tombstone_kept_while_a_stale_record_follows(void **state)
{
	struct lt_fixture *fx = *state;
	struct ct_stream *s = stream_new();
	uint64_t rng = 3;
	assert_int_equal(lt_fixture_open(fx), 0);
	add(s, 7, 5, SL_OP_UPSERT);
	add(s, 7, 6, SL_OP_DELETE);
	add(s, 8, 1, SL_OP_UPSERT);
	assert_int_equal(ct_append(fx, &rng, s, 0, s->count), 0);
	assert_int_equal(ct_roll_and_seal(fx), 0);
	add(s, 7, 4, SL_OP_UPSERT); /* stale, and still in the active segment */
	assert_int_equal(ct_append(fx, &rng, s, 3, 4), 0);
	struct ct_state *want = malloc(sizeof(*want)), *got = malloc(sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	ct_state_of_stream(s, s->count, want);
	assert_true(want->keys[7].deleted);

	struct sl_clean_params p;
	struct sl_clean_stats st;
	ct_params(&p);
	p.delete_retention_ms = 0;
	assert_int_equal(ct_clean(fx, &p, &st), 0);
	assert_int_equal(st.tombstones_removed, 0);
	state_of_log(fx, s, got);
	assert_int_equal(ct_state_compare(want, got, 0), 0);

	/* Once the stale record is in the cleaned range it goes (it never applied), and the tombstone with it. */
	assert_int_equal(ct_roll_and_seal(fx), 0);
	assert_int_equal(ct_clean(fx, &p, &st), 0);
	assert_int_equal(st.tombstones_removed, 1);
	state_of_log(fx, s, got);
	assert_false(got->keys[7].exists);
	assert_int_equal(ct_state_compare(want, got, 1), 0);
	assert_int_equal(lt_fixture_close(fx), 0);
	free(want);
	free(got);
	stream_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_horizon_stamped_once, lt_fixture_setup, lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_tombstone_kept_while_a_group_is_behind, lt_fixture_setup,
	                                        lt_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_tombstone_kept_while_a_stale_record_follows, lt_fixture_setup,
	                                        lt_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
