/* The --format template of `synclog consume`, compiled once into a list of pieces (literal text or a field) and
 * printed per record through stdio; see cli_record_format.h for the directives. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli_record_format.h"

enum piece_kind {
	PIECE_TEXT,
	PIECE_KEY,
	PIECE_KEY_LEN,
	PIECE_VALUE,
	PIECE_VALUE_LEN,
	PIECE_TOPIC,
	PIECE_PARTITION,
	PIECE_OFFSET,
	PIECE_TIMESTAMP,
	PIECE_VERSION,
	PIECE_OP,
	PIECE_ORIGIN,
	PIECE_IDEMPOTENCY_KEY,
	PIECE_HEADERS,
};

struct piece {
	enum piece_kind kind;
	size_t text_at, text_len; /* PIECE_TEXT: a run of text[] */
};

struct cli_record_format {
	size_t count;
	struct piece pieces[CLI_FORMAT_BYTES_MAX]; /* at most one per byte of the template */
	char text[CLI_FORMAT_BYTES_MAX];           /* literal text, escapes resolved */
	size_t text_len;
};

static const struct {
	char directive;
	enum piece_kind kind;
} directives[] = {
        {'k', PIECE_KEY},     {'K', PIECE_KEY_LEN},   {'s', PIECE_VALUE},  {'S', PIECE_VALUE_LEN},
        {'t', PIECE_TOPIC},   {'p', PIECE_PARTITION}, {'o', PIECE_OFFSET}, {'T', PIECE_TIMESTAMP},
        {'v', PIECE_VERSION}, {'O', PIECE_OP},        {'r', PIECE_ORIGIN}, {'i', PIECE_IDEMPOTENCY_KEY},
        {'h', PIECE_HEADERS},
};

/* Append one literal byte: to the text piece being built, or a new one. */
static void text_add(struct cli_record_format *f, char c)
{
	struct piece *last = f->count > 0 ? &f->pieces[f->count - 1] : NULL;

	if (last == NULL || last->kind != PIECE_TEXT) {
		last = &f->pieces[f->count++];
		last->kind = PIECE_TEXT;
		last->text_at = f->text_len;
		last->text_len = 0;
	}
	f->text[f->text_len++] = c;
	last->text_len++;
}

int cli_record_format_new(struct cli_record_format **out, const char *t, char *err, size_t err_bytes)
{
	struct cli_record_format *f;
	size_t n = strlen(t);

	*out = NULL;
	if (n == 0 || n >= CLI_FORMAT_BYTES_MAX) {
		snprintf(err, err_bytes, "the template must be 1 to %d characters", CLI_FORMAT_BYTES_MAX - 1);
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		snprintf(err, err_bytes, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '\\') {
			char c = t[i + 1];
			char lit = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == '\\' ? '\\' : '\0';

			if (lit == '\0') {
				snprintf(err, err_bytes, "unknown escape '\\%c' (known: \\n \\t \\r \\\\)",
				         c ? c : ' ');
				free(f);
				return -EINVAL;
			}
			text_add(f, lit);
			i++;
		} else if (t[i] == '%') {
			char c = t[i + 1];
			size_t k = 0;

			if (c == '%') {
				text_add(f, '%');
				i++;
				continue;
			}
			while (k < sizeof(directives) / sizeof(directives[0]) && directives[k].directive != c)
				k++;
			if (c == '\0' || k == sizeof(directives) / sizeof(directives[0])) {
				snprintf(err, err_bytes,
				         "unknown directive '%%%c' (known: %%k %%K %%s %%S %%t %%p %%o %%T %%v %%O %%r "
				         "%%i %%h %%%%)",
				         c ? c : ' ');
				free(f);
				return -EINVAL;
			}
			f->pieces[f->count++].kind = directives[k].kind;
			i++;
		} else {
			text_add(f, t[i]);
		}
	}
	*out = f;
	return 0;
}

static void bytes_put(FILE *out, const uint8_t *p, int32_t len)
{
	if (len > 0)
		fwrite(p, 1, (size_t)len, out);
}

static void headers_put(FILE *out, const struct sl_record *r)
{
	bool first = true;

	if (r->version != SL_VERSION_NONE) {
		fprintf(out, "version=%" PRId64, r->version);
		first = false;
	}
	fprintf(out, "%sop=%s,origin=%s", first ? "" : ",", sl_op_name(r->op), sl_origin_name(r->origin));
	if (r->idempotency_key != NULL) {
		fputs(",idempotency_key=", out);
		bytes_put(out, r->idempotency_key, r->idempotency_key_len);
	}
}

int cli_record_format_print(const struct cli_record_format *f, FILE *out, const char *topic, uint32_t partition,
                            const struct sl_record *r)
{
	for (size_t i = 0; i < f->count; i++) {
		const struct piece *p = &f->pieces[i];

		switch (p->kind) {
		case PIECE_TEXT:
			fwrite(f->text + p->text_at, 1, p->text_len, out);
			break;
		case PIECE_KEY:
			bytes_put(out, r->key, r->key_len);
			break;
		case PIECE_KEY_LEN:
			fprintf(out, "%" PRId32, r->key_len < 0 ? -1 : r->key_len);
			break;
		case PIECE_VALUE:
			bytes_put(out, r->value, r->value_len);
			break;
		case PIECE_VALUE_LEN:
			fprintf(out, "%" PRId32, r->value_len < 0 ? -1 : r->value_len);
			break;
		case PIECE_TOPIC:
			fputs(topic, out);
			break;
		case PIECE_PARTITION:
			fprintf(out, "%" PRIu32, partition);
			break;
		case PIECE_OFFSET:
			fprintf(out, "%" PRId64, r->offset);
			break;
		case PIECE_TIMESTAMP:
			fprintf(out, "%" PRId64, r->timestamp_ms);
			break;
		case PIECE_VERSION:
			if (r->version != SL_VERSION_NONE)
				fprintf(out, "%" PRId64, r->version);
			break;
		case PIECE_OP:
			fputs(sl_op_name(r->op), out);
			break;
		case PIECE_ORIGIN:
			fputs(sl_origin_name(r->origin), out);
			break;
		case PIECE_IDEMPOTENCY_KEY:
			if (r->idempotency_key != NULL)
				bytes_put(out, r->idempotency_key, r->idempotency_key_len);
			break;
		case PIECE_HEADERS:
			headers_put(out, r);
			break;
		}
	}
	return ferror(out) ? -EIO : 0;
}

void cli_record_format_free(struct cli_record_format *f)
{
	free(f);
}
