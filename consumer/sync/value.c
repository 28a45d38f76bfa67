/* Entity values compared and digested one way (value.h). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The shortest of %.15g, %.16g and %.17g that reads back to d. */
static int real_write(double d, struct sl_json_buf *out)
{
	char text[40];

	for (int digits = 15; digits <= 17; digits++) {
		snprintf(text, sizeof(text), "%.*g", digits, d);
		if (strtod(text, NULL) == d)
			break;
	}
	/* A real stays a real when read again: 1.0, not 1. */
	if (strpbrk(text, ".eEn") == NULL)
		strcat(text, ".0");
	return sl_json_buf_add(out, text, strlen(text));
}

static int json_write(const json_t *v, struct sl_json_buf *out, int depth)
{
	char text[32];
	const char *key;
	json_t *m;
	size_t i;
	bool first = true;

	if (depth > 2048)
		return -EINVAL; /* jansson refuses deeper nesting when it reads: never reached */
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (sl_json_buf_add(out, "{", 1) != 0)
			return -ENOMEM;
		json_object_foreach((json_t *)v, key, m)
		{
			if ((!first && sl_json_buf_add(out, ",", 1) != 0) ||
			    sl_json_buf_add_string(out, (const uint8_t *)key, strlen(key)) != 0 ||
			    sl_json_buf_add(out, ":", 1) != 0 || json_write(m, out, depth + 1) != 0)
				return -ENOMEM;
			first = false;
		}
		return sl_json_buf_add(out, "}", 1);
	case JSON_ARRAY:
		if (sl_json_buf_add(out, "[", 1) != 0)
			return -ENOMEM;
		json_array_foreach((json_t *)v, i, m)
		{
			if ((i > 0 && sl_json_buf_add(out, ",", 1) != 0) || json_write(m, out, depth + 1) != 0)
				return -ENOMEM;
		}
		return sl_json_buf_add(out, "]", 1);
	case JSON_STRING:
		return sl_json_buf_add_string(out, (const uint8_t *)json_string_value(v), json_string_length(v)) == 0
		               ? 0
		               : -ENOMEM;
	case JSON_INTEGER:
		snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return sl_json_buf_add(out, text, strlen(text));
	case JSON_REAL:
		return real_write(json_real_value(v), out);
	case JSON_TRUE:
		return sl_json_buf_add(out, "true", 4);
	case JSON_FALSE:
		return sl_json_buf_add(out, "false", 5);
	case JSON_NULL:
		return sl_json_buf_add(out, "null", 4);
	}
	return -EINVAL;
}

int sl_value_json_write(const json_t *v, struct sl_json_buf *out)
{
	int rc = json_write(v, out, 0);

	if (rc == 0 && (rc = sl_json_buf_add(out, "", 1)) == 0)
		out->len--;
	return rc != 0 ? -ENOMEM : 0;
}
