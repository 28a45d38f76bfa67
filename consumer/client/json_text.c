/* JSON text without a DOM: checking that bytes are one valid JSON value (RFC 8259), minifying it, finding a member
 * of a top-level object, and printing bytes as a JSON string. Used on every record `consume --json` prints and
 * every value `produce --input json` stores, so none of it allocates. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"

/* Nesting deeper than this is refused (printed as a string instead): it bounds the recursion on bytes nobody
 * checked, and no entity snapshot needs more. */
#define JSON_DEPTH_MAX 256

size_t sl_utf8_sequence_bytes(const uint8_t *p, const uint8_t *end)
{
	size_t left = (size_t)(end - p);
	uint8_t c = p[0];

#define CONT(i) (left > (i) && (p[i] & 0xC0) == 0x80)
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return CONT(1) ? 2 : 0;
	if (c == 0xE0)
		return left > 2 && p[1] >= 0xA0 && p[1] <= 0xBF && CONT(2) ? 3 : 0;
	if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
		return CONT(1) && CONT(2) ? 3 : 0;
	if (c == 0xED) /* excludes the UTF-16 surrogates D800..DFFF */
		return left > 2 && p[1] >= 0x80 && p[1] <= 0x9F && CONT(2) ? 3 : 0;
	if (c == 0xF0)
		return left > 3 && p[1] >= 0x90 && p[1] <= 0xBF && CONT(2) && CONT(3) ? 4 : 0;
	if (c >= 0xF1 && c <= 0xF3)
		return CONT(1) && CONT(2) && CONT(3) ? 4 : 0;
	if (c == 0xF4)
		return left > 3 && p[1] >= 0x80 && p[1] <= 0x8F && CONT(2) && CONT(3) ? 4 : 0;
	return 0;
#undef CONT
}

bool sl_utf8_text_valid(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;

	while (p < end) {
		size_t n;

		if (*p >= 0x01 && *p < 0x80) {
			p++;
			continue;
		}
		n = *p == 0 ? 0 : sl_utf8_sequence_bytes(p, end);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

static void skip_ws(const uint8_t **p, const uint8_t *end)
{
	while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r'))
		(*p)++;
}

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool scan_string(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;

	if (p >= end || *p != '"')
		return false;
	p++;
	while (p < end) {
		uint8_t c = *p;
		size_t n;

		if (c == '"') {
			*pp = p + 1;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (++p >= end)
				return false;
			if (*p == 'u') {
				if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]))
					return false;
				p += 5;
			} else if (strchr("\"\\/bfnrt", *p) != NULL && *p != '\0') {
				p++;
			} else {
				return false;
			}
			continue;
		}
		n = sl_utf8_sequence_bytes(p, end);
		if (n == 0)
			return false;
		p += n;
	}
	return false;
}

static bool scan_digits(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *start = *p;

	while (*p < end && is_digit(**p))
		(*p)++;
	return *p > start;
}

static bool scan_number(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (!scan_digits(&p, end))
		return false;
	if (p < end && *p == '.') {
		p++;
		if (!scan_digits(&p, end))
			return false;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!scan_digits(&p, end))
			return false;
	}
	*pp = p;
	return true;
}

static bool scan_literal(const uint8_t **p, const uint8_t *end, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(end - *p) < n || memcmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

bool sl_json_scan_value(const uint8_t **p, const uint8_t *end, int depth)
{
	if (depth > JSON_DEPTH_MAX)
		return false;
	skip_ws(p, end);
	if (*p >= end)
		return false;
	switch (**p) {
	case '"':
		return scan_string(p, end);
	case 't':
		return scan_literal(p, end, "true");
	case 'f':
		return scan_literal(p, end, "false");
	case 'n':
		return scan_literal(p, end, "null");
	case '{':
	case '[': {
		uint8_t close = **p == '{' ? '}' : ']';
		bool object = close == '}';

		(*p)++;
		skip_ws(p, end);
		if (*p < end && **p == close) {
			(*p)++;
			return true;
		}
		for (;;) {
			if (object) {
				skip_ws(p, end);
				if (!scan_string(p, end))
					return false;
				skip_ws(p, end);
				if (*p >= end || **p != ':')
					return false;
				(*p)++;
			}
			if (!sl_json_scan_value(p, end, depth + 1))
				return false;
			skip_ws(p, end);
			if (*p >= end)
				return false;
			if (**p == close) {
				(*p)++;
				return true;
			}
			if (**p != ',')
				return false;
			(*p)++;
		}
	}
	default:
		return scan_number(p, end);
	}
}

bool sl_json_valid(const void *bytes, size_t len)
{
	const uint8_t *p = bytes, *end = p + len;

	if (len == 0 || !sl_json_scan_value(&p, end, 0))
		return false;
	skip_ws(&p, end);
	return p == end;
}

size_t sl_json_minify(const char *src, size_t len, char *dst)
{
	size_t n = 0;
	bool in_string = false, escaped = false;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			continue;
		} else if (c == '"') {
			in_string = true;
		}
		dst[n++] = c;
	}
	return n;
}

int sl_json_member_span(const char *text, size_t len, const char *name, const char **start_out, size_t *len_out)
{
	const uint8_t *p = (const uint8_t *)text, *end = p + len;
	size_t name_len = strlen(name);

	skip_ws(&p, end);
	if (p >= end || *p != '{')
		return 0;
	p++;
	skip_ws(&p, end);
	if (p < end && *p == '}')
		return 0;
	for (;;) {
		const uint8_t *key, *key_end, *value;

		skip_ws(&p, end);
		key = p;
		if (!scan_string(&p, end))
			return 0;
		key_end = p;
		skip_ws(&p, end);
		if (p >= end || *p != ':')
			return 0;
		p++;
		skip_ws(&p, end);
		value = p;
		if (!sl_json_scan_value(&p, end, 1))
			return 0;
		/* Compared as written: a name spelled with escapes is not found, and the caller falls back. */
		if ((size_t)(key_end - key) == name_len + 2 && memcmp(key + 1, name, name_len) == 0) {
			*start_out = (const char *)value;
			*len_out = (size_t)(p - value);
			return 1;
		}
		skip_ws(&p, end);
		if (p >= end || *p != ',')
			return 0;
		p++;
	}
}

int sl_json_print_string(FILE *out, const void *bytes, size_t len)
{
	const uint8_t *p = bytes, *end = p + len, *run = p;

	putc_unlocked('"', out);
	while (p < end) {
		uint8_t c = *p;
		size_t n = c >= 0x20 && c != '"' && c != '\\' ? sl_utf8_sequence_bytes(p, end) : 0;

		if (n > 0) {
			p += n;
			continue;
		}
		/* Flush the run of bytes that need no escape, then escape this one. */
		fwrite(run, 1, (size_t)(p - run), out);
		switch (c) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			/* A control character, or a byte that is not UTF-8: its value as a code point. */
			fprintf(out, "\\u%04x", c);
			break;
		}
		p++;
		run = p;
	}
	fwrite(run, 1, (size_t)(p - run), out);
	putc_unlocked('"', out);
	return ferror(out) ? -EIO : 0;
}

int sl_json_print_value(FILE *out, const void *bytes, size_t len)
{
	const char *s = bytes;
	bool in_string = false, escaped = false;
	size_t run = 0;

	if (!sl_json_valid(bytes, len))
		return sl_json_print_string(out, bytes, len);
	/* Minify while printing: drop whitespace outside strings, so the value stays on one line. */
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool drop = false;

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			drop = true;
		} else if (c == '"') {
			in_string = true;
		}
		if (drop) {
			fwrite(s + run, 1, i - run, out);
			run = i + 1;
		}
	}
	fwrite(s + run, 1, len - run, out);
	return ferror(out) ? -EIO : 0;
}
