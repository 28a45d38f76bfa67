/* Tests of the line reader of `synclog produce` (tools/line_reader.c): lines are numbered from 1 as they are read,
 * a last line without a newline still counts, and a line over the bound is skipped and reported by its number
 * while its neighbours come through. The reader lives in tools/, which no library holds, so it is compiled in. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/line_reader.c"

struct line {
	int rc;
	uint64_t number;
	char text[64];
};

/* Feed input through a file (a pipe would hold only 64 KiB before the reader runs) and collect what the reader hands
 * out (at most max entries). */
static size_t read_all(const char *input, size_t input_len, size_t line_bytes_max, struct line *out, size_t max)
{
	struct line_reader lr;
	FILE *f = tmpfile();
	size_t n = 0;

	assert_non_null(f);
	assert_int_equal(fwrite(input, 1, input_len, f), input_len);
	fflush(f);
	rewind(f);
	assert_int_equal(line_reader_init(&lr, fileno(f), line_bytes_max), 0);
	for (;;) {
		const char *line;
		size_t len;
		int rc = line_reader_next(&lr, &line, &len);

		if (rc == 0)
			break;
		if (rc == -EAGAIN) {
			assert_int_equal(line_reader_fill(&lr), 0);
			continue;
		}
		assert_true(n < max);
		out[n].rc = rc;
		out[n].number = lr.line_number;
		snprintf(out[n].text, sizeof(out[n].text), "%.*s", rc == 1 ? (int)len : 0, rc == 1 ? line : "");
		n++;
	}
	line_reader_free(&lr);
	fclose(f);
	return n;
}

static void lines_are_numbered_from_one(void **state)
{
	struct line l[8];
	size_t n = read_all("a\tb\n\nc\td\n", 9, 1024, l, 8);

	assert_int_equal(n, 3);
	assert_int_equal(l[0].number, 1);
	assert_string_equal(l[0].text, "a\tb");
	assert_int_equal(l[1].number, 2);
	assert_string_equal(l[1].text, "");
	assert_int_equal(l[2].number, 3);
	assert_string_equal(l[2].text, "c\td");
}

static void last_line_without_newline_counts(void **state)
{
	struct line l[4];
	size_t n = read_all("x\ny", 3, 1024, l, 4);

	assert_int_equal(n, 2);
	assert_string_equal(l[1].text, "y");
	assert_int_equal(l[1].number, 2);
}

static void carriage_returns_are_kept(void **state)
{
	struct line l[4];
	size_t n = read_all("k\tv\r\n", 5, 1024, l, 4);

	assert_int_equal(n, 1);
	assert_string_equal(l[0].text, "k\tv\r");
}

static void long_lines_grow_the_buffer(void **state)
{
	/* Longer than the initial 64 KiB buffer but within the bound: handed out whole. */
	size_t len = 200 * 1024;
	char *input = malloc(len + 3);
	struct line l[4];
	size_t n;

	memset(input, 'v', len);
	memcpy(input + len, "\nz\n", 3);
	n = read_all(input, len + 3, 1 << 20, l, 4);
	assert_int_equal(n, 2);
	assert_int_equal(l[0].rc, 1);
	assert_int_equal(l[1].number, 2);
	assert_string_equal(l[1].text, "z");
	free(input);
}

static void line_over_bound_is_skipped_with_its_number(void **state)
{
	/* Line 2 is 300 KiB against a bound of 100 KiB: reported as -E2BIG, lines 1 and 3 come through. */
	size_t big = 300 * 1024, len = 2 + big + 1 + 2;
	char *input = malloc(len);
	struct line l[4];
	size_t n;

	memcpy(input, "a\n", 2);
	memset(input + 2, 'x', big);
	memcpy(input + 2 + big, "\nb\n", 3);
	n = read_all(input, len, 100 * 1024, l, 4);
	assert_int_equal(n, 3);
	assert_int_equal(l[0].rc, 1);
	assert_string_equal(l[0].text, "a");
	assert_int_equal(l[1].rc, -E2BIG);
	assert_int_equal(l[1].number, 2);
	assert_int_equal(l[2].rc, 1);
	assert_int_equal(l[2].number, 3);
	assert_string_equal(l[2].text, "b");
	free(input);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(lines_are_numbered_from_one),
	        cmocka_unit_test(last_line_without_newline_counts),
	        cmocka_unit_test(carriage_returns_are_kept),
	        cmocka_unit_test(long_lines_grow_the_buffer),
	        cmocka_unit_test(line_over_bound_is_skipped_with_its_number),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
