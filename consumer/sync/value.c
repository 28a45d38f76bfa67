/* Entity values compared and digested one way (value.h). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "consumer/sync/value.h"

/* Whether the first byte that is not JSON whitespace can start a JSON value: a cheap test that spares the parse
 * of text values that are not JSON. */
static bool looks_like_json(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')
			continue;
		return strchr("{[\"-0123456789tfn", p[i]) != NULL;
	}
	return false;
}

bool sl_value_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	json_t *ja, *jb;
	bool equal;

	if (a == NULL || b == NULL)
		return a == b;
	if (a_len == b_len && memcmp(a, b, a_len) == 0)
		return true;
	if (!looks_like_json(a, a_len) || !looks_like_json(b, b_len))
		return false;
	ja = json_loadb((const char *)a, a_len, JSON_DECODE_ANY, NULL);
	jb = ja != NULL ? json_loadb((const char *)b, b_len, JSON_DECODE_ANY, NULL) : NULL;
	equal = ja != NULL && jb != NULL && json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return equal;
}

uint64_t sl_value_digest(const void *bytes, size_t len)
{
	return XXH3_64bits(bytes, len);
}

void sl_value_digest_hex(uint64_t digest, char out[SL_VALUE_DIGEST_HEX_BYTES])
{
	snprintf(out, SL_VALUE_DIGEST_HEX_BYTES, "%016llx", (unsigned long long)digest);
}
