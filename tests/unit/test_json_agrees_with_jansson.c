/* The DOM-free JSON scanner (consumer/client/json_text.c: what `apply --values json` and `consume --json` use)
 * against jansson (what `produce --input json` parses lines with): the inputs where they used to disagree, and the
 * edges of each rule the scanner copies from jansson. Random inputs: tests/fuzz/fuzz_json.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"

static bool jansson_valid(const char *s, size_t len)
{
	json_error_t err;
	json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

	json_decref(j);
	return j != NULL;
}

/* Both parsers give want for s. */
static void agree(const char *s, bool want)
{
	size_t len = strlen(s);

	if (jansson_valid(s, len) != want)
		fail_msg("jansson says %s for '%.80s': the test's expectation is wrong", want ? "invalid" : "valid", s);
	if (sl_json_valid(s, len) != want)
		fail_msg("the scanner says %s for '%.80s', jansson %s", want ? "invalid" : "valid", s,
		         want ? "valid" : "invalid");
}

static void lone_surrogate_escapes_are_refused_by_both(void **state)
{
	agree("\"\\ud800\"", false);
	agree("\"\\udc00\"", false);
	agree("\"\\ud800x\"", false);
	agree("\"\\ud800\\u0041\"", false);
	agree("\"\\ud800\\udc00\"", true);
	agree("\"\\uDBFF\\uDFFF\"", true);
	agree("\"\\u0000\"", true);
	agree("{\"a\\u0000\":1}", false); /* a NUL in a member name */
	agree("{\"a\":\"\\u0000\"}", true);
	agree("\"\\uffff\"", true);
}

static void numbers_that_overflow_a_double_are_refused_by_both(void **state)
{
	agree("1e999", false);
	agree("-1e999", false);
	agree("1e-999", true);
	agree("0e99999999999999999999", true);
	agree("1.7976931348623157e308", true);
	agree("1.7976931348623158e308", true);
	agree("1.7976931348623159e308", false);
	agree("0.00017976931348623159e312", false);
	agree("1797.6931348623158e305", true);
	agree("0.5e-9223372036858874507", true); /* an exponent beyond int64 */
	agree("0.5e9223372036858874507", false);
}

static void overflow_threshold_is_exact(void **state)
{
	/* 2^1024 - 2^970 overflows; one unit in the 309th digit less, with any fraction, does not. */
	static const char t[] =
	        "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664901"
	        "797758720709633028641669288791094655554785194040263065748867150582068190890200070838"
	        "367627385484581771153176447573027006985557136695962284291481986083493647529271907416"
	        "8444365510704342711559699508093042880177904174497792";
	char buf[400];

	snprintf(buf, sizeof(buf), "%s.0", t);
	agree(buf, false);
	snprintf(buf, sizeof(buf), "%.308s1.999", t);
	agree(buf, true);
	snprintf(buf, sizeof(buf), "%s", t);
	agree(buf, false); /* and as an integer it is far beyond int64 */
}

static void integers_must_fit_int64_for_both(void **state)
{
	agree("9223372036854775807", true);
	agree("9223372036854775808", false);
	agree("-9223372036854775808", true);
	agree("-9223372036854775809", false);
	agree("100000000000000000000", false);
	agree("100000000000000000000.0", true);
	agree("-0", true);
}

static void nesting_bound_is_the_same(void **state)
{
	static char deep[2 * 2049 + 1];

	memset(deep, '[', 2048);
	memset(deep + 2048, ']', 2048);
	deep[2 * 2048] = '\0';
	agree(deep, true);
	memset(deep, '[', 2049);
	memset(deep + 2049, ']', 2049);
	deep[2 * 2049] = '\0';
	agree(deep, false);
}

static void ordinary_json_is_accepted_by_both(void **state)
{
	agree("{\"a\":1,\"a\":2}", true); /* duplicates are JSON; produce checks its own fields itself */
	agree(" [1, {\"b\": [null, true, false, \"x\"]}] ", true);
	agree("\"caf\xc3\xa9\"", true);
	agree("\"\xed\xa0\x80\"", false); /* a surrogate encoded in UTF-8 */
	agree("\"\x7f\"", true);
	agree("[1,]", false);
	agree("", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(lone_surrogate_escapes_are_refused_by_both),
	        cmocka_unit_test(numbers_that_overflow_a_double_are_refused_by_both),
	        cmocka_unit_test(overflow_threshold_is_exact),
	        cmocka_unit_test(integers_must_fit_int64_for_both),
	        cmocka_unit_test(nesting_bound_is_the_same),
	        cmocka_unit_test(ordinary_json_is_accepted_by_both),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
