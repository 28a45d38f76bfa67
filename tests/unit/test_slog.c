/* Structured event logs (proto/base/slog.h): one line per event in text and in JSON, values that would break a
 * line or a field quoted, events below the level dropped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "proto/base/slog.h"

static char out[8192];

/* Log through a pipe and return what was written. */
static const char *capture(enum sl_slog_level level, enum sl_slog_format format, void (*emit)(void))
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	sl_slog_configure(fds[1], level, format);
	emit();
	close(fds[1]);
	ssize_t n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	out[n < 0 ? 0 : n] = '\0';
	sl_slog_configure(2, SL_SLOG_INFO, SL_SLOG_TEXT);
	return out;
}

static void emit_state(void)
{
	struct sl_slog *e = sl_slog_begin(SL_SLOG_WARN, "group_state");
	sl_slog_str(e, "group", "billing");
	sl_slog_str(e, "reason", "commits stopped\nfor \"60s\"");
	sl_slog_int(e, "lag", -3);
	sl_slog_uint(e, "partition", 7);
	sl_slog_end(e);
}

static void emit_debug(void)
{
	sl_slog_msg(SL_SLOG_DEBUG, "noise", "%d", 1);
}

static void text_line_has_time_level_event_and_quoted_fields(void **state)
{
	const char *s = capture(SL_SLOG_INFO, SL_SLOG_TEXT, emit_state);
	assert_non_null(strstr(s, "Z WARN group_state group=billing reason=\"commits stopped\\nfor \\\"60s\\\"\" "
	                          "lag=-3 partition=7\n"));
	assert_int_equal(s[4], '-');
	/* One line: the only newline is the last byte. */
	assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
}

static void json_line_is_one_object(void **state)
{
	const char *s = capture(SL_SLOG_INFO, SL_SLOG_JSON, emit_state);
	assert_true(strncmp(s, "{\"ts\":\"", 7) == 0);
	assert_non_null(strstr(s,
	                       "\"level\":\"warn\",\"event\":\"group_state\",\"group\":\"billing\","
	                       "\"reason\":\"commits stopped\\u000afor \\\"60s\\\"\",\"lag\":-3,\"partition\":7}\n"));
}

static void events_below_the_level_are_dropped(void **state)
{
	assert_string_equal(capture(SL_SLOG_INFO, SL_SLOG_TEXT, emit_debug), "");
	assert_non_null(strstr(capture(SL_SLOG_DEBUG, SL_SLOG_TEXT, emit_debug), " DEBUG noise msg=1\n"));
}

static void emit_long(void)
{
	static char big[SL_SLOG_LINE_BYTES * 2];
	memset(big, 'x', sizeof(big) - 1);
	struct sl_slog *e = sl_slog_begin(SL_SLOG_ERROR, "long");
	sl_slog_str(e, "a", "before");
	sl_slog_str(e, "b", big);
	sl_slog_end(e);
}

static void an_overlong_line_is_cut_and_marked(void **state)
{
	const char *s = capture(SL_SLOG_INFO, SL_SLOG_JSON, emit_long);
	size_t n = strlen(s);
	assert_true(n <= SL_SLOG_LINE_BYTES);
	assert_non_null(strstr(s, "\"a\":\"before\""));
	assert_non_null(strstr(s, "\"truncated\":true}\n"));
}

static void levels_and_formats_parse(void **state)
{
	enum sl_slog_level l;
	enum sl_slog_format f;
	assert_int_equal(sl_slog_level_parse("debug", &l), 0);
	assert_int_equal(l, SL_SLOG_DEBUG);
	assert_int_not_equal(sl_slog_level_parse("verbose", &l), 0);
	assert_int_equal(sl_slog_format_parse("json", &f), 0);
	assert_int_not_equal(sl_slog_format_parse("xml", &f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(text_line_has_time_level_event_and_quoted_fields),
	        cmocka_unit_test(json_line_is_one_object),
	        cmocka_unit_test(events_below_the_level_are_dropped),
	        cmocka_unit_test(an_overlong_line_is_cut_and_marked),
	        cmocka_unit_test(levels_and_formats_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
