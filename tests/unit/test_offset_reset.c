/* Tests of the pure logic behind `synclog offsets reset` (consumer/offset_reset.c): where each SPEC puts a
 * partition and the clamping rules, ISO 8601 durations, and the CSV plan files of --export and --from-file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"

/* A partition whose log holds offsets [100, 200): retention deleted 0..99. */
static const struct sl_reset_input log_100_200 = {.earliest = 100, .next = 200, .committed = 150, .at_time = 170};

static int64_t plan(enum sl_reset_kind kind, int64_t value, struct sl_reset_input in, bool *clamped)
{
	struct sl_reset_spec spec = {kind, value};

	return sl_reset_plan(&spec, &in, clamped);
}

static void earliest_and_latest_are_the_log_ends(void **state)
{
	bool clamped = true;

	assert_true(plan(SL_RESET_EARLIEST, 0, log_100_200, &clamped) == 100);
	assert_false(clamped);
	assert_true(plan(SL_RESET_LATEST, 0, log_100_200, &clamped) == 200);
	assert_false(clamped);
}

static void an_offset_inside_the_log_is_kept(void **state)
{
	bool clamped = true;

	assert_true(plan(SL_RESET_OFFSET, 100, log_100_200, &clamped) == 100);
	assert_false(clamped);
	assert_true(plan(SL_RESET_OFFSET, 200, log_100_200, &clamped) == 200);
	assert_false(clamped);
}

static void an_offset_outside_the_log_is_clamped_and_flagged(void **state)
{
	bool clamped = false;

	assert_true(plan(SL_RESET_OFFSET, 5, log_100_200, &clamped) == 100);
	assert_true(clamped);
	clamped = false;
	assert_true(plan(SL_RESET_OFFSET, 201, log_100_200, &clamped) == 200);
	assert_true(clamped);
	clamped = false;
	assert_true(plan(SL_RESET_OFFSET, INT64_MAX, log_100_200, &clamped) == 200);
	assert_true(clamped);
}

static void a_datetime_goes_to_the_first_record_at_or_after_it(void **state)
{
	bool clamped = true;

	assert_true(plan(SL_RESET_DATETIME, 0, log_100_200, &clamped) == 170);
	assert_false(clamped);
}

static void a_datetime_after_the_last_record_goes_to_the_log_end_never_minus_one(void **state)
{
	struct sl_reset_input in = log_100_200;
	bool clamped = true;

	in.at_time = 200; /* what the broker answers */
	assert_true(plan(SL_RESET_DATETIME, 0, in, &clamped) == 200);
	in.at_time = -1; /* what a broker that knew no better could answer */
	assert_true(plan(SL_RESET_DATETIME, 0, in, &clamped) == 200);
	assert_false(clamped);
}

static void shift_moves_from_the_commit(void **state)
{
	bool clamped = true;

	assert_true(plan(SL_RESET_SHIFT, -20, log_100_200, &clamped) == 130);
	assert_false(clamped);
	assert_true(plan(SL_RESET_SHIFT, 50, log_100_200, &clamped) == 200);
	assert_false(clamped);
}

static void shift_past_either_end_clamps(void **state)
{
	bool clamped = false;

	assert_true(plan(SL_RESET_SHIFT, -51, log_100_200, &clamped) == 100);
	assert_true(clamped);
	clamped = false;
	assert_true(plan(SL_RESET_SHIFT, 51, log_100_200, &clamped) == 200);
	assert_true(clamped);
	clamped = false;
	assert_true(plan(SL_RESET_SHIFT, INT64_MAX, log_100_200, &clamped) == 200);
	assert_true(clamped);
	clamped = false;
	assert_true(plan(SL_RESET_SHIFT, INT64_MIN + 1, log_100_200, &clamped) == 100);
	assert_true(clamped);
}

static void shift_without_a_commit_starts_at_the_log_start(void **state)
{
	struct sl_reset_input in = log_100_200;
	bool clamped = true;

	in.committed = -1;
	assert_true(plan(SL_RESET_SHIFT, 7, in, &clamped) == 107);
	assert_false(clamped);
	assert_true(plan(SL_RESET_SHIFT, 0, in, &clamped) == 100);
}

static void shift_from_a_commit_outside_the_log_starts_at_the_nearest_end(void **state)
{
	struct sl_reset_input in = log_100_200;
	bool clamped = true;

	in.committed = 10; /* retention passed it: a consumer would resume at 100 */
	assert_true(plan(SL_RESET_SHIFT, 5, in, &clamped) == 105);
	assert_false(clamped);
	in.committed = 500; /* the log was truncated below it */
	assert_true(plan(SL_RESET_SHIFT, -5, in, &clamped) == 195);
	assert_false(clamped);
}

static void specs_other_than_shift_ignore_the_commit(void **state)
{
	struct sl_reset_input none = log_100_200, some = log_100_200;

	none.committed = -1;
	assert_true(plan(SL_RESET_EARLIEST, 0, none, NULL) == plan(SL_RESET_EARLIEST, 0, some, NULL));
	assert_true(plan(SL_RESET_LATEST, 0, none, NULL) == plan(SL_RESET_LATEST, 0, some, NULL));
	assert_true(plan(SL_RESET_OFFSET, 123, none, NULL) == 123);
	assert_true(plan(SL_RESET_DATETIME, 0, none, NULL) == 170);
}

static void an_empty_log_has_one_place(void **state)
{
	struct sl_reset_input in = {.earliest = 42, .next = 42, .committed = -1, .at_time = 42};

	assert_true(plan(SL_RESET_EARLIEST, 0, in, NULL) == 42);
	assert_true(plan(SL_RESET_LATEST, 0, in, NULL) == 42);
	assert_true(plan(SL_RESET_OFFSET, 0, in, NULL) == 42);
	assert_true(plan(SL_RESET_SHIFT, -3, in, NULL) == 42);
}

/* ---- durations ---- */

static int64_t dur(const char *s)
{
	int64_t v = -1;

	assert_int_equal(sl_duration_parse_iso8601(s, &v), 0);
	return v;
}

static void durations_of_days_and_times(void **state)
{
	assert_true(dur("PT30M") == 30 * 60000);
	assert_true(dur("P1DT2H") == 86400000 + 2 * 3600000);
	assert_true(dur("P2W") == 14LL * 86400000);
	assert_true(dur("PT1.5S") == 1500);
	assert_true(dur("PT0,25S") == 250);
	assert_true(dur("PT1.2349S") == 1234);
	assert_true(dur("P1W2DT3H4M5S") == 9LL * 86400000 + 3 * 3600000 + 4 * 60000 + 5000);
	assert_true(dur("PT0S") == 0);
	assert_true(dur("pt90m") == 90 * 60000);
	assert_true(dur("PT36H") == 36LL * 3600000);
}

static void malformed_or_calendar_durations_are_refused(void **state)
{
	static const char *bad[] = {
	        "",
	        "P",
	        "PT",
	        "P1DT",
	        "30M",
	        "PT30",
	        "P1Y",
	        "P1M",
	        "P1.5D",
	        "PT1.5M",
	        "PT1H1H",
	        "PT1M1H",
	        "P1DT1D",
	        "-PT1H",
	        "PT1H junk",
	        "P1D2W",
	        "PT.5S",
	        "PT9999999999999999999S",
	        "P9999999999999999D",
	};
	int64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sl_duration_parse_iso8601(bad[i], &v) != -EINVAL)
			fail_msg("duration '%s' was accepted as %lld ms", bad[i], (long long)v);
	}
}

/* ---- CSV plan files ---- */

static FILE *memfile(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(f);
	return f;
}

static void csv_round_trip_keeps_topics_partitions_and_offsets(void **state)
{
	struct sl_offset_row rows[3] = {
	        {"orders", 0, -1, 5}, {"orders", 7, 12, 0}, {"users.v2_x-y", 4294967295u, 3, 9223372036854775807LL}};
	struct sl_offset_row *back;
	char *buf = NULL;
	size_t len = 0, count;
	char err[256];
	FILE *f = open_memstream(&buf, &len);

	assert_int_equal(sl_offset_rows_write_csv(f, rows, 3), 0);
	fclose(f);
	assert_string_equal(buf, "topic,partition,old_offset,new_offset\n"
	                         "orders,0,-1,5\n"
	                         "orders,7,12,0\n"
	                         "users.v2_x-y,4294967295,3,9223372036854775807\n");
	f = memfile(buf);
	assert_int_equal(sl_offset_rows_read_csv(f, &back, &count, err, sizeof(err)), 0);
	fclose(f);
	assert_int_equal(count, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(back[i].topic, rows[i].topic);
		assert_int_equal(back[i].partition, rows[i].partition);
		assert_true(back[i].new_offset == rows[i].new_offset);
	}
	free(back);
	free(buf);
}

static void csv_columns_are_found_by_the_header(void **state)
{
	struct sl_offset_row *rows;
	size_t count;
	char err[256];
	FILE *f = memfile("\n partition , offset,topic,comment\r\n3,40,t,first\r\n\n1,0,u,x\n");

	assert_int_equal(sl_offset_rows_read_csv(f, &rows, &count, err, sizeof(err)), 0);
	fclose(f);
	assert_int_equal(count, 2);
	assert_string_equal(rows[0].topic, "t");
	assert_int_equal(rows[0].partition, 3);
	assert_true(rows[0].new_offset == 40);
	assert_string_equal(rows[1].topic, "u");
	assert_true(rows[1].new_offset == 0);
	free(rows);
}

/* Kafka's kafka-consumer-groups --from-file: topic,partition,offset lines and no header. */
static void csv_without_header_is_read_as_kafkas(void **state)
{
	struct sl_offset_row *rows;
	size_t count;
	char err[256];
	FILE *f = memfile("orders,0,120\norders, 1 ,7\r\n\ntopic,2,9\n");

	assert_int_equal(sl_offset_rows_read_csv(f, &rows, &count, err, sizeof(err)), 0);
	fclose(f);
	assert_int_equal(count, 3);
	assert_string_equal(rows[0].topic, "orders");
	assert_int_equal(rows[0].partition, 0);
	assert_true(rows[0].new_offset == 120 && rows[0].old_offset == -1);
	assert_int_equal(rows[1].partition, 1);
	assert_true(rows[1].new_offset == 7);
	assert_string_equal(rows[2].topic, "topic"); /* a topic named like the header word is still a row */
	free(rows);
	f = memfile("orders,0,120\norders,1\n");
	assert_int_equal(sl_offset_rows_read_csv(f, &rows, &count, err, sizeof(err)), -EINVAL);
	fclose(f);
	assert_non_null(strstr(err, "line 2"));
}

static void csv_errors_name_the_line(void **state)
{
	static const struct {
		const char *text;
		const char *line;
	} bad[] = {
	        {"", "empty"},
	        {"topic,partition\n", "line 1"},
	        {"t,0,x\n", "line 1"},
	        {"topic,partition,new_offset\nt,0\n", "line 2"},
	        {"topic,partition,new_offset\nt,0,1\nt,x,1\n", "line 3"},
	        {"topic,partition,new_offset\nt,0,-1\n", "line 2"},
	        {"topic,partition,new_offset\nt t,0,1\n", "line 2"},
	        {"topic,partition,new_offset\nt,4294967296,1\n", "line 2"},
	};
	struct sl_offset_row *rows;
	size_t count;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = bad[i].text[0] != '\0' ? memfile(bad[i].text) : fopen("/dev/null", "r");

		err[0] = '\0';
		assert_int_equal(sl_offset_rows_read_csv(f, &rows, &count, err, sizeof(err)), -EINVAL);
		fclose(f);
		if (strstr(err, bad[i].line) == NULL)
			fail_msg("case %zu: error '%s' does not mention '%s'", i, err, bad[i].line);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(earliest_and_latest_are_the_log_ends),
	        cmocka_unit_test(an_offset_inside_the_log_is_kept),
	        cmocka_unit_test(an_offset_outside_the_log_is_clamped_and_flagged),
	        cmocka_unit_test(a_datetime_goes_to_the_first_record_at_or_after_it),
	        cmocka_unit_test(a_datetime_after_the_last_record_goes_to_the_log_end_never_minus_one),
	        cmocka_unit_test(shift_moves_from_the_commit),
	        cmocka_unit_test(shift_past_either_end_clamps),
	        cmocka_unit_test(shift_without_a_commit_starts_at_the_log_start),
	        cmocka_unit_test(shift_from_a_commit_outside_the_log_starts_at_the_nearest_end),
	        cmocka_unit_test(specs_other_than_shift_ignore_the_commit),
	        cmocka_unit_test(an_empty_log_has_one_place),
	        cmocka_unit_test(durations_of_days_and_times),
	        cmocka_unit_test(malformed_or_calendar_durations_are_refused),
	        cmocka_unit_test(csv_round_trip_keeps_topics_partitions_and_offsets),
	        cmocka_unit_test(csv_columns_are_found_by_the_header),
	        cmocka_unit_test(csv_without_header_is_read_as_kafkas),
	        cmocka_unit_test(csv_errors_name_the_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
