/* The audit log (broker/audit.c): one JSON object per line with the fields in order, appended and never rewritten
 * (an existing file keeps its lines), written off the loop; past its pending bound lines are dropped, counted, and
 * the next line written says how many; every event is counted by action and result. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker/audit.h"
#include "proto/base/fs.h"
#include "log_test_util.h"

static char *file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(8u << 20);
	*len = fread(buf, 1, (8u << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Run the loop until the audit log has nothing pending. */
static void drain(uv_loop_t *loop, struct sl_audit *a)
{
	while (sl_audit_busy(a))
		uv_run(loop, UV_RUN_ONCE);
}

static void lines_are_json_with_the_fields_in_order_and_appended(void **state)
{
	char dir[256], err[256];
	assert_int_equal(lt_tmpdir_make(dir, sizeof(dir)), 0);
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct sl_audit a;
	assert_int_equal(sl_audit_open(&a, &loop, dir, err, sizeof(err)), 0);
	sl_audit_record(&a, SL_AUDIT_TOPIC_DELETE, SL_AUDIT_DENIED, "bob", "10.0.0.7:5555", "topic:orders",
	                "no ACL \"allows\" it\n");
	drain(&loop, &a);
	sl_audit_close(&a);
	/* A restart appends. */
	assert_int_equal(sl_audit_open(&a, &loop, dir, err, sizeof(err)), 0);
	sl_audit_record(&a, SL_AUDIT_USER_ADD, SL_AUDIT_OK, "admin", "127.0.0.1:1", "user:bob", NULL);
	drain(&loop, &a);
	assert_int_equal(a.events[SL_AUDIT_USER_ADD][SL_AUDIT_OK], 1);
	sl_audit_close(&a);
	char path[512];
	snprintf(path, sizeof(path), "%s/security/audit.log", dir);
	size_t len;
	char *text = file_read(path, &len);
	char *second = strchr(text, '\n') + 1;
	assert_non_null(strstr(text, "{\"ts\":\""));
	assert_non_null(strstr(text,
	                       "Z\",\"principal\":\"bob\",\"address\":\"10.0.0.7:5555\",\"action\":\"topic_delete\","
	                       "\"target\":\"topic:orders\",\"result\":\"denied\",\"detail\":"));
	json_error_t jerr;
	json_t *j = json_loadb(text, (size_t)(second - text), 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "detail")), "no ACL \"allows\" it\n");
	json_decref(j);
	assert_non_null(strstr(second, "\"action\":\"user_add\",\"target\":\"user:bob\",\"result\":\"ok\"}\n"));
	assert_null(strstr(second, "detail"));
	free(text);
	uv_loop_close(&loop);
	assert_int_equal(sl_fs_rm_rf(dir), 0);
}

static void lines_past_the_bound_are_dropped_counted_and_reported(void **state)
{
	char dir[256], err[256];
	assert_int_equal(lt_tmpdir_make(dir, sizeof(dir)), 0);
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct sl_audit a;
	assert_int_equal(sl_audit_open(&a, &loop, dir, err, sizeof(err)), 0);
	/* Without the loop running, the first line's job is queued and everything after waits in the buffer: past
	 * SL_AUDIT_PENDING_BYTES_MAX lines are dropped. */
	char detail[400];
	memset(detail, 'x', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	uint64_t records = 2 * SL_AUDIT_PENDING_BYTES_MAX / 500;
	for (uint64_t i = 0; i < records; i++)
		sl_audit_record(&a, SL_AUDIT_AUTHENTICATE, SL_AUDIT_FAILED, "", "127.0.0.1:2", "user:x", detail);
	assert_true(a.dropped > 0);
	uint64_t dropped = a.dropped;
	assert_int_equal(a.events[SL_AUDIT_AUTHENTICATE][SL_AUDIT_FAILED], records);
	drain(&loop, &a);
	/* The next line is preceded by the note of how many were lost. */
	sl_audit_record(&a, SL_AUDIT_ACL_ADD, SL_AUDIT_OK, "admin", "127.0.0.1:3", "acl:x", NULL);
	drain(&loop, &a);
	sl_audit_close(&a);
	char path[512];
	snprintf(path, sizeof(path), "%s/security/audit.log", dir);
	size_t len;
	char *text = file_read(path, &len);
	/* Every line is JSON; the notes add up to what was dropped, and one comes before the last line. */
	uint64_t lines = 0, notes = 0, noted = 0;
	int note_before_last = 0;
	for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		json_error_t jerr;
		json_t *j = json_loadb(line, (size_t)(nl - line), 0, &jerr);
		assert_non_null(j);
		const char *action = json_string_value(json_object_get(j, "action"));
		if (strcmp(action, "audit_dropped") == 0) {
			notes++;
			noted += strtoull(json_string_value(json_object_get(j, "detail")), NULL, 10);
			note_before_last = 1;
		} else if (strcmp(action, "acl_add") == 0) {
			assert_true(note_before_last);
		} else {
			note_before_last = 0;
		}
		json_decref(j);
		lines++;
	}
	assert_int_equal(noted, dropped);
	assert_int_equal(lines, records - dropped + 1 + notes);
	free(text);
	uv_loop_close(&loop);
	assert_int_equal(sl_fs_rm_rf(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(lines_are_json_with_the_fields_in_order_and_appended),
	        cmocka_unit_test(lines_past_the_bound_are_dropped_counted_and_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
