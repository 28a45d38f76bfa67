/* libFuzzer target: the DOM-free JSON scanner of the client library (consumer/client/json_text.c, what `apply
 * --values json` checks values with and `consume --json` prints through) must say "valid" for exactly the inputs
 * jansson (what `produce --input json` parses with, consumer/sync/record_input.c) loads with JSON_DECODE_ANY |
 * JSON_ALLOW_NUL, after the sync layer's own refusal of raw NUL bytes. A disagreement aborts with both verdicts and the
 * input. Also: the scanner never reads out of bounds, and whatever it accepts prints back minified as JSON jansson
 * accepts too.
 *
 * Built by `make test-build` (release build only) into BUILD/fuzz/fuzz_json; tests/run.sh runs it with the seeds
 * of tests/fuzz/seeds/fuzz_json/. By hand:
 *   build/release/fuzz/fuzz_json -max_total_time=60 CORPUS_DIR tests/fuzz/seeds/fuzz_json */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/synclog.h"

/* jansson as the sync layer calls it: a raw NUL byte, which no JSON text holds but jansson skips after a number
 * ("[1\0]" loads), is refused before jansson sees it (record_input.c). */
static bool jansson_valid(const uint8_t *data, size_t size)
{
	json_error_t err;

	if (memchr(data, '\0', size) != NULL)
		return false;
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

	json_decref(j);
	return j != NULL;
}

static void disagree(const uint8_t *data, size_t size, bool scanner, bool jansson, const char *what)
{
	fprintf(stderr, "fuzz_json: %s: scanner says %s, jansson %s, for %zu bytes: '", what,
	        scanner ? "valid" : "invalid", jansson ? "valid" : "invalid", size);
	fwrite(data, 1, size < 400 ? size : 400, stderr);
	fputs("'\n", stderr);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so AddressSanitizer catches a read past the end. */
	uint8_t *copy = malloc(size ? size : 1);
	bool scanner, jansson;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	scanner = sl_json_valid(copy, size);
	jansson = jansson_valid(copy, size);
	if (scanner != jansson)
		disagree(copy, size, scanner, jansson, "verdicts differ");
	if (scanner) {
		/* What consume --json prints for a valid value must still be that JSON. */
		char *printed = NULL;
		size_t printed_len = 0;
		FILE *f = open_memstream(&printed, &printed_len);

		if (f != NULL) {
			sl_json_print_value(f, copy, size);
			fclose(f);
			if (!jansson_valid((const uint8_t *)printed, printed_len))
				disagree(copy, size, true, false, "the minified print is not JSON");
			free(printed);
		}
	}
	free(copy);
	return 0;
}
