/* The source interface's one switch: a spec's prefix chooses its kind (source.h), and the helpers the kinds share
 * (key order, JSON text of columns). A new kind of source is one line in kinds[] and one file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"
#include "consumer/sync/source.h"

static const struct {
	const char *prefix;
	int (*open)(struct sl_source *out, const char *arg, const struct sl_source_columns *columns, char *err,
	            size_t err_bytes);
} kinds[] = {
        {"sqlite:", sl_source_sqlite_open}, {"jsonl:", sl_source_jsonl_open}, {"postgresql://", sl_source_pg_open},
        {"postgres://", sl_source_pg_open}, {"postgres:", sl_source_pg_open},
};

int sl_source_open(struct sl_source *out, const char *spec, const struct sl_source_columns *columns, char *err,
                   size_t err_bytes)
{
	struct sl_source_columns c = *columns;

	memset(out, 0, sizeof(*out));
	if (c.key == NULL)
		c.key = SL_SOURCE_KEY_COLUMN_DEFAULT;
	if (c.version == NULL)
		c.version = SL_SOURCE_VERSION_COLUMN_DEFAULT;
	if (strlen(spec) >= sizeof(out->spec)) {
		sl_error_set(err, err_bytes, "source '%.40s...': longer than %zu characters", spec,
		             sizeof(out->spec) - 1);
		return -EINVAL;
	}
	if (strcmp(c.key, c.version) == 0 ||
	    (c.value != NULL && (strcmp(c.value, c.key) == 0 || strcmp(c.value, c.version) == 0))) {
		sl_error_set(err, err_bytes, "source %s: the key, version and value columns must differ", spec);
		return -EINVAL;
	}
	snprintf(out->spec, sizeof(out->spec), "%s", spec);
	out->position_name = "";
	for (size_t i = 0; i < SL_ARRAY_COUNT(kinds); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(spec, kinds[i].prefix, n) == 0)
			return kinds[i].open(out, spec + n, &c, err, err_bytes);
	}
	sl_error_set(err, err_bytes,
	             "source '%s': expected sqlite:PATH:TABLE, jsonl:PATH, postgresql://...?table=NAME or "
	             "postgres:CONNINFO:TABLE",
	             spec);
	return -EINVAL;
}

void sl_source_close(struct sl_source *s)
{
	if (s->ops != NULL)
		s->ops->close(s->ctx);
	s->ops = NULL;
	s->ctx = NULL;
}

int sl_source_key_compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	size_t n = a_len < b_len ? a_len : b_len;
	int c = n > 0 ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return a_len < b_len ? -1 : a_len > b_len;
}

int sl_key_copy_set(struct sl_key_copy *k, const void *data, size_t len)
{
	if (len > k->cap || k->data == NULL) {
		size_t cap = len > 64 ? len : 64;
		uint8_t *p = realloc(k->data, cap);

		if (p == NULL)
			return -ENOMEM;
		k->data = p;
		k->cap = cap;
	}
	if (len > 0)
		memcpy(k->data, data, len);
	k->len = len;
	k->set = true;
	return 0;
}

void sl_key_copy_free(struct sl_key_copy *k)
{
	free(k->data);
	memset(k, 0, sizeof(*k));
}

static int json_buf_room(struct sl_json_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int sl_json_buf_add(struct sl_json_buf *b, const char *bytes, size_t len)
{
	if (len == 0)
		return 0;
	if (json_buf_room(b, len) != 0)
		return -ENOMEM;
	memcpy(b->data + b->len, bytes, len);
	b->len += len;
	return 0;
}

int sl_json_buf_add_string(struct sl_json_buf *b, const uint8_t *text, size_t len)
{
	const uint8_t *p = text, *end = text + len;

	/* At most 6 bytes out per byte in (\u00XX), and the quotes. */
	if (json_buf_room(b, len * 6 + 2) != 0)
		return -ENOMEM;
	b->data[b->len++] = '"';
	while (p < end) {
		size_t n;

		if (*p == '"' || *p == '\\') {
			b->data[b->len++] = '\\';
			b->data[b->len++] = (char)*p++;
		} else if (*p == 0) {
			return -EILSEQ;
		} else if (*p == '\n' || *p == '\t' || *p == '\r') {
			b->data[b->len++] = '\\';
			b->data[b->len++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
			p++;
		} else if (*p < 0x20) {
			b->len += (size_t)snprintf(b->data + b->len, 7, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			b->data[b->len++] = (char)*p++;
		} else if ((n = sl_utf8_sequence_bytes(p, end)) == 0) {
			return -EILSEQ;
		} else {
			memcpy(b->data + b->len, p, n);
			b->len += n;
			p += n;
		}
	}
	b->data[b->len++] = '"';
	return 0;
}

void sl_json_buf_free(struct sl_json_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}
