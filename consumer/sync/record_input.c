/* Input lines to records: `KEY<TAB>VALUE` and one JSON object per line (parsed with jansson), as `synclog produce`
 * reads them. A JSON value is stored as the text it was written with, minified, rather than re-serialized, so
 * that numbers keep their exact spelling (0.1 stays 0.1, 1.0 stays 1.0). */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"
#include "consumer/sync/record_input.h"

struct sl_line_parser {
	enum sl_input_format format;
	json_t *root; /* the last JSON line: the record's key and idempotency key point into it */
	char *value;  /* the value's compact JSON text */
	size_t value_cap;
};

int sl_line_parser_new(struct sl_line_parser **out, enum sl_input_format format)
{
	struct sl_line_parser *lp = calloc(1, sizeof(*lp));

	*out = NULL;
	if (lp == NULL)
		return -ENOMEM;
	if (format != SL_INPUT_TSV && format != SL_INPUT_JSON) {
		free(lp);
		return -EINVAL;
	}
	lp->format = format;
	*out = lp;
	return 0;
}

void sl_line_parser_free(struct sl_line_parser *lp)
{
	if (lp == NULL)
		return;
	json_decref(lp->root);
	free(lp->value);
	free(lp);
}

static void record_defaults(struct sl_record *r, enum sl_origin origin, int64_t timestamp_ms)
{
	memset(r, 0, sizeof(*r));
	r->offset = -1;
	r->timestamp_ms = timestamp_ms;
	r->version = SL_VERSION_NONE;
	r->op = SL_OP_UPSERT;
	r->origin = origin;
	r->idempotency_key = NULL;
	r->schema_version = 0;
}

static int parse_tsv(const char *line, size_t len, struct sl_record *out, char *err, size_t err_bytes)
{
	const char *tab = memchr(line, '\t', len);

	if (tab == NULL) {
		sl_error_set(err, err_bytes, "expected KEY<TAB>VALUE but the line has no tab");
		return -EINVAL;
	}
	out->key = (const uint8_t *)line;
	out->key_len = (int32_t)(tab - line);
	out->value = (const uint8_t *)tab + 1;
	out->value_len = (int32_t)(len - (size_t)(tab - line) - 1);
	return 1;
}

static int value_reserve(struct sl_line_parser *lp, size_t len)
{
	char *p;

	if (len <= lp->value_cap)
		return 0;
	p = realloc(lp->value, len);
	if (p == NULL)
		return -ENOMEM;
	lp->value = p;
	lp->value_cap = len;
	return 0;
}

/* The value's text: as written in the line when it can be found there, else jansson's serialization. */
static int value_text(struct sl_line_parser *lp, const char *line, size_t len, json_t *value, size_t *len_out)
{
	const char *span;
	size_t span_len, n;

	if (sl_json_member_span(line, len, "value", &span, &span_len) == 1) {
		if (value_reserve(lp, span_len) != 0)
			return -ENOMEM;
		*len_out = sl_json_minify(span, span_len, lp->value);
		return 0;
	}
	n = json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (n == 0 || value_reserve(lp, n) != 0)
		return -ENOMEM;
	*len_out = json_dumpb(value, lp->value, n, JSON_COMPACT | JSON_ENCODE_ANY);
	return 0;
}

static bool is_null(const json_t *v)
{
	return v == NULL || json_is_null(v);
}

static int parse_json(struct sl_line_parser *lp, const char *line, size_t len, struct sl_record *out, char *err,
                      size_t err_bytes)
{
	json_error_t jerr;
	json_t *root, *key, *value, *version, *op, *ik, *sv, *origin;
	size_t value_len;

	json_decref(lp->root);
	lp->root = NULL;
	/* The flags sl_json_valid agrees with (consumer/client/json_text.c), so a value produced here is one `apply
	 * --values json` accepts. Duplicate names are valid JSON inside a value (stored as written); only the line's
	 * own fields must be unambiguous, checked below. */
	if (memchr(line, '\0', len) != NULL) {
		/* jansson skips a raw NUL right after a number ("[1\0]" loads); JSON has no raw NUL anywhere. */
		sl_error_set(err, err_bytes, "a raw NUL byte is not JSON (inside a string, write \\u0000)");
		return -EINVAL;
	}
	root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	if (root == NULL) {
		sl_error_set(err, err_bytes, "invalid JSON at column %d: %s", jerr.column, jerr.text);
		return -EINVAL;
	}
	lp->root = root;
	if (!json_is_object(root)) {
		sl_error_set(err, err_bytes, "expected a JSON object {\"key\": ..., \"value\": ...}");
		return -EINVAL;
	}
	if (json_object_size(root) != sl_json_top_level_members(line, len)) {
		sl_error_set(err, err_bytes, "a field of the line is given twice: which one is meant?");
		return -EINVAL;
	}
	key = json_object_get(root, "key");
	value = json_object_get(root, "value");
	version = json_object_get(root, "version");
	op = json_object_get(root, "op");
	ik = json_object_get(root, "idempotency_key");
	sv = json_object_get(root, "schema_version");
	origin = json_object_get(root, "origin");
	if (!json_is_string(key)) {
		sl_error_set(err, err_bytes, "\"key\" is required and must be a string");
		return -EINVAL;
	}
	out->key = (const uint8_t *)json_string_value(key);
	out->key_len = (int32_t)json_string_length(key);
	if (!is_null(version)) {
		if (!json_is_integer(version) || json_integer_value(version) == SL_VERSION_NONE) {
			sl_error_set(err, err_bytes, "\"version\" must be an integer (above -2^63)");
			return -EINVAL;
		}
		out->version = json_integer_value(version);
	}
	if (!is_null(op) &&
	    (!json_is_string(op) || sl_op_parse(json_string_value(op), json_string_length(op), &out->op) != 0)) {
		sl_error_set(err, err_bytes, "\"op\" must be \"upsert\" or \"delete\"");
		return -EINVAL;
	}
	if (!is_null(origin) &&
	    (!json_is_string(origin) ||
	     sl_origin_parse(json_string_value(origin), json_string_length(origin), &out->origin) != 0)) {
		sl_error_set(err, err_bytes, "\"origin\" must be \"live\", \"backfill\" or \"repair\"");
		return -EINVAL;
	}
	if (!is_null(ik)) {
		if (!json_is_string(ik)) {
			sl_error_set(err, err_bytes, "\"idempotency_key\" must be a string");
			return -EINVAL;
		}
		out->idempotency_key = (const uint8_t *)json_string_value(ik);
		out->idempotency_key_len = (int32_t)json_string_length(ik);
	}
	if (!is_null(sv)) {
		if (!json_is_integer(sv) || json_integer_value(sv) < INT32_MIN || json_integer_value(sv) > INT32_MAX) {
			sl_error_set(err, err_bytes, "\"schema_version\" must be a 32-bit integer");
			return -EINVAL;
		}
		out->schema_version = (int32_t)json_integer_value(sv);
	}
	if (out->op == SL_OP_DELETE) {
		if (!is_null(value)) {
			sl_error_set(err, err_bytes, "a delete carries no value: leave \"value\" out or null");
			return -EINVAL;
		}
		out->value = NULL;
		out->value_len = -1; /* a tombstone */
		return 1;
	}
	if (value == NULL) {
		/* An upsert without a value stores JSON null, not a tombstone: only a delete may delete. */
		if (value_reserve(lp, 4) != 0)
			return -ENOMEM;
		memcpy(lp->value, "null", 4);
		value_len = 4;
	} else if (value_text(lp, line, len, value, &value_len) != 0) {
		sl_error_set(err, err_bytes, "out of memory for the value");
		return -ENOMEM;
	}
	out->value = (const uint8_t *)lp->value;
	out->value_len = (int32_t)value_len;
	return 1;
}

int sl_line_parse(struct sl_line_parser *lp, const char *line, size_t len, enum sl_origin origin, int64_t timestamp_ms,
                  struct sl_record *out, char *err, size_t err_bytes)
{
	size_t i;

	record_defaults(out, origin, timestamp_ms);
	if (len > INT32_MAX) {
		sl_error_set(err, err_bytes, "line of %zu bytes is longer than a record can be", len);
		return -EINVAL;
	}
	if (lp->format == SL_INPUT_TSV) {
		if (len == 0)
			return 0;
		return parse_tsv(line, len, out, err, err_bytes);
	}
	for (i = 0; i < len && strchr(" \t\r\n", line[i]) != NULL && line[i] != '\0'; i++)
		;
	if (i == len)
		return 0;
	return parse_json(lp, line, len, out, err, err_bytes);
}
