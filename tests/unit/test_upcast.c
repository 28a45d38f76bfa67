/* Tests of upcast mappings (consumer/sync/upcast.h): steps move, set and delete members on jq-like paths, in order,
 * creating objects on the way; numbers keep their value's shortest spelling; a mapping that cannot be read is refused
 * with the step; a value the mapping cannot take is refused with why; versions without a mapping are left alone. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/sync/upcast.h"

static struct sl_upcast *with(const char *const *specs, size_t count)
{
	struct sl_upcast *u;
	char err[256];

	assert_int_equal(sl_upcast_new(&u), 0);
	for (size_t i = 0; i < count; i++)
		if (sl_upcast_add_mapping(u, specs[i], err, sizeof(err)) != 0)
			fail_msg("mapping '%s' refused: %s", specs[i], err);
	return u;
}

/* Upcast value of version *v once; returns the callback's result, the text in out. */
static int once(struct sl_upcast *u, const char *value, int32_t *v, char *out, size_t cap)
{
	struct sl_apply_record r = {0};
	const uint8_t *text = NULL;
	size_t len = 0;
	char why[256] = "";
	int rc = sl_upcast_cb(&r, (const uint8_t *)value, strlen(value), v, &text, &len, why, sizeof(why), u);

	if (rc == 0)
		snprintf(out, cap, "%.*s", (int)len, (const char *)text);
	else
		snprintf(out, cap, "%s", why);
	return rc;
}

static void steps_move_set_and_delete_in_order(void **state)
{
	const char *specs[] = {"1=.contact.email=.email,.name.\"first name\"=.first,del(.legacy),.tier=\"standard\","
	                       ".tags=[1,2]"};
	struct sl_upcast *u = with(specs, 1);
	int32_t v = 1;
	char out[512];

	(void)state;
	assert_int_equal(
	        once(u, "{\"email\":\"a@x\",\"first\":\"Ann\",\"legacy\":9,\"score\":0.1}", &v, out, sizeof(out)), 0);
	assert_int_equal(v, 2);
	assert_string_equal(out, "{\"score\":0.1,\"contact\":{\"email\":\"a@x\"},\"name\":{\"first name\":\"Ann\"},"
	                         "\"tier\":\"standard\",\"tags\":[1,2]}");
	sl_upcast_free(u);
}

static void a_missing_source_moves_nothing(void **state)
{
	const char *specs[] = {"3=.b=.a"};
	struct sl_upcast *u = with(specs, 1);
	int32_t v = 3;
	char out[256];

	(void)state;
	assert_int_equal(once(u, "{\"c\":1.50}", &v, out, sizeof(out)), 0);
	assert_string_equal(out, "{\"c\":1.5}");
	assert_int_equal(v, 4);
	sl_upcast_free(u);
}

static void versions_without_a_mapping_are_left_to_the_caller(void **state)
{
	const char *specs[] = {"1=del(.x)"};
	struct sl_upcast *u = with(specs, 1);
	int32_t v = 2;
	char out[256];

	(void)state;
	assert_int_equal(once(u, "{}", &v, out, sizeof(out)), -ENOENT);
	assert_int_equal(v, 2);
	sl_upcast_free(u);
}

static void a_value_the_mapping_cannot_take_is_refused_with_why(void **state)
{
	const char *specs[] = {"1=.a.b=.c"};
	struct sl_upcast *u = with(specs, 1);
	int32_t v = 1;
	char out[256];

	(void)state;
	assert_int_equal(once(u, "[1, 2]", &v, out, sizeof(out)), -EBADMSG);
	assert_non_null(strstr(out, "not a JSON object"));
	assert_int_equal(once(u, "{\"a\":5,\"c\":1}", &v, out, sizeof(out)), -EBADMSG);
	assert_non_null(strstr(out, "member a is not an object"));
	assert_int_equal(v, 1);
	sl_upcast_free(u);
}

static void bad_mappings_are_refused_with_the_step(void **state)
{
	static const char *const bad[] = {"1",        "x=.a=.b",  "0=.a=.b",        "1=",    "1=.a", "1=.a=", "1=a=.b",
	                                  "1=del(.a", "1=.a=[1,", "1=.a=.b,,.c=.d", "1=.=.b"};
	struct sl_upcast *u;
	char err[256];

	(void)state;
	assert_int_equal(sl_upcast_new(&u), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (sl_upcast_add_mapping(u, bad[i], err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(sl_upcast_add_mapping(u, "1=del(.a)", err, sizeof(err)), 0);
	assert_int_equal(sl_upcast_add_mapping(u, "1=del(.b)", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "two mappings"));
	sl_upcast_free(u);
}

static void a_hook_that_cannot_be_loaded_is_refused(void **state)
{
	struct sl_upcast *u;
	char err[256];

	(void)state;
	assert_int_equal(sl_upcast_new(&u), 0);
	assert_int_equal(sl_upcast_add_hook(u, "/nonexistent/hook.so", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/hook.so"));
	sl_upcast_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(steps_move_set_and_delete_in_order),
	        cmocka_unit_test(a_missing_source_moves_nothing),
	        cmocka_unit_test(versions_without_a_mapping_are_left_to_the_caller),
	        cmocka_unit_test(a_value_the_mapping_cannot_take_is_refused_with_why),
	        cmocka_unit_test(bad_mappings_are_refused_with_the_step),
	        cmocka_unit_test(a_hook_that_cannot_be_loaded_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
