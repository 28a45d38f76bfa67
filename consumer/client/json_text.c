/* JSON text without a DOM: checking that bytes are one valid JSON value (RFC 8259), minifying it, finding a member
 * of a top-level object, and printing bytes as a JSON string. Used on every record `consume --json` prints and
 * every value `produce --input json` stores, so none of it allocates. */
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "consumer/client/json_text.h"

/* What counts as valid is what jansson (the sync layer's parser, consumer/sync/record_input.c) accepts with
 * JSON_DECODE_ANY | JSON_ALLOW_NUL, so that `produce --input json` and `apply --values json` never disagree about
 * a value; tests/fuzz/fuzz_json.c checks the two against each other on random input. Beyond RFC 8259 that means:
 *   1. Nesting deeper than 2048 arrays and objects is refused (jansson's JSON_PARSER_MAX_DEPTH). The scan keeps
 *      one bit per open container, so depth costs 256 bytes of stack, not recursion.
 *   2. A \u escape of a UTF-16 surrogate must be a high one (D800-DBFF) followed at once by a low one
 *      (\uDC00-DFFF); a lone half is refused.
 *   3. An integer (no fraction, no exponent) must fit int64_t: -9223372036854775808 to 9223372036854775807.
 *   4. A number with a fraction or exponent must not overflow a double: it is refused when its value is at least
 *      2^1024 - 2^970, the halfway point above DBL_MAX from which strtod rounds to infinity. Underflow to 0 is
 *      fine. Decided on the digits, without strtod, so no locale and no copy of the token is involved.
 *   5. \u0000 is allowed in string values but not in member names. */
#define JSON_DEPTH_MAX 2048

/* 2^1024 - 2^970: the smallest magnitude that overflows a double, all 309 integer digits. */
static const char double_overflow_digits[] =
        "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664901797758720709633"
        "02864166928879109465555478519404026306574886715058206819089020007083836762738548458177115317644757302700"
        "69855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792";
_Static_assert(sizeof(double_overflow_digits) == 309 + 1, "2^1024 - 2^970 has 309 digits");

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

static int hex_value(uint8_t c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The code unit of "\uXXXX" at p (p[0] == '\\'), or -1. */
static long u_escape(const uint8_t *p, const uint8_t *end)
{
	long v = 0;

	if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
		return -1;
	for (int i = 2; i < 6; i++) {
		int h = hex_value(p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* A string; a member name (is_name) may not hold \u0000, which jansson refuses in names even with
 * JSON_ALLOW_NUL (invariant 5). */
static bool scan_string(const uint8_t **pp, const uint8_t *end, bool is_name)
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
			long unit;

			if (p + 1 >= end)
				return false;
			if (p[1] != 'u') {
				if (p[1] == '\0' || strchr("\"\\/bfnrt", p[1]) == NULL)
					return false;
				p += 2;
				continue;
			}
			if ((unit = u_escape(p, end)) < 0 || (unit == 0 && is_name))
				return false;
			p += 6;
			if (unit >= 0xDC00 && unit <= 0xDFFF)
				return false; /* invariant 2: a low half without its high half */
			if (unit >= 0xD800 && unit <= 0xDBFF) {
				long low = u_escape(p, end);

				if (low < 0xDC00 || low > 0xDFFF)
					return false; /* invariant 2: a high half not followed by a low one */
				p += 6;
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

/* A member's name and its colon, with the white space around them: true when both are there (*p then at the
 * value's white space), false when the text is not a member. */
static bool scan_member_name(const uint8_t **p, const uint8_t *end)
{
	skip_ws(p, end);
	if (!scan_string(p, end, true))
		return false;
	skip_ws(p, end);
	if (*p >= end || **p != ':')
		return false;
	(*p)++;
	return true;
}

/* The opening of an object with at least one member: true with *p just past its '{', false when text is not an
 * object or is an empty one. */
static bool object_with_members(const uint8_t **p, const uint8_t *end)
{
	skip_ws(p, end);
	if (*p >= end || **p != '{')
		return false;
	(*p)++;
	skip_ws(p, end);
	return !(*p < end && **p == '}');
}

/* The minifier's view of one character of JSON text: true when it is white space outside strings (dropped), and
 * the string state (*in_string, *escaped) moved past it. */
static bool minify_drops(char c, bool *in_string, bool *escaped)
{
	if (*in_string) {
		if (*escaped)
			*escaped = false;
		else if (c == '\\')
			*escaped = true;
		else if (c == '"')
			*in_string = false;
		return false;
	}
	if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
		return true;
	if (c == '"')
		*in_string = true;
	return false;
}

/* Compare the decimal digits of [p, end) (skipping one '.') with the digits of limit, as numbers of the same
 * length: -1, 0 or 1. Digits past the limit's length compare as greater when any is not 0. */
static int digits_compare(const uint8_t *p, const uint8_t *end, const char *limit)
{
	for (; p < end && *limit != '\0'; p++) {
		if (*p == '.')
			continue;
		if (*p != (uint8_t)*limit)
			return *p < (uint8_t)*limit ? -1 : 1;
		limit++;
	}
	if (*limit != '\0')
		return -1; /* fewer digits: the rest are zeros, and the limit has non-zero digits left */
	for (; p < end; p++)
		if (is_digit(*p) && *p != '0')
			return 1;
	return 0;
}

/* Exponents beyond this are the same to the overflow check as infinity: no input is long enough to bring them
 * back into range. */
#define EXPONENT_SATURATE (1LL << 60)

static bool scan_number(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp, *int_start, *int_end, *frac_end;
	bool negative = false, real = false;
	int64_t exponent = 0;

	if (p < end && *p == '-') {
		negative = true;
		p++;
	}
	int_start = p;
	if (p < end && *p == '0')
		p++;
	else if (p < end && is_digit(*p))
		while (p < end && is_digit(*p))
			p++;
	else
		return false;
	int_end = frac_end = p;
	if (p < end && *p == '.') {
		real = true;
		p++;
		if (p >= end || !is_digit(*p))
			return false;
		while (p < end && is_digit(*p))
			p++;
		frac_end = p;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		bool exp_negative = false;

		real = true;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			exp_negative = *p++ == '-';
		if (p >= end || !is_digit(*p))
			return false;
		for (; p < end && is_digit(*p); p++)
			exponent = exponent >= EXPONENT_SATURATE / 10 ? EXPONENT_SATURATE : exponent * 10 + (*p - '0');
		if (exp_negative)
			exponent = -exponent;
	}
	*pp = p;
	if (!real) {
		/* Invariant 3. No leading zeros, so the digit count orders the magnitudes. */
		const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
		size_t n = (size_t)(int_end - int_start);

		return n < 19 || (n == 19 && digits_compare(int_start, int_end, limit) <= 0);
	}
	/* Invariant 4: the magnitude is 0.DDD x 10^mag with DDD the digits from the first non-zero one. */
	const uint8_t *first = int_start;
	int64_t leading_zeros = 0;

	for (; first < frac_end && (*first == '0' || *first == '.'); first++)
		leading_zeros += *first == '0';
	if (first == frac_end)
		return true; /* zero */
	int64_t mag = (int64_t)(int_end - int_start) - leading_zeros + exponent;
	if (mag < 309)
		return true;
	if (mag > 309)
		return false;
	return digits_compare(first, frac_end, double_overflow_digits) < 0;
}

static bool scan_literal(const uint8_t **p, const uint8_t *end, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(end - *p) < n || memcmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

/* One value that is not an array or object. */
static bool scan_scalar(const uint8_t **p, const uint8_t *end)
{
	switch (**p) {
	case '"':
		return scan_string(p, end, false);
	case 't':
		return scan_literal(p, end, "true");
	case 'f':
		return scan_literal(p, end, "false");
	case 'n':
		return scan_literal(p, end, "null");
	default:
		return scan_number(p, end);
	}
}

/* Iterative: the open containers are a stack of bits (1: object), JSON_DEPTH_MAX deep at most (invariant 1).
 * depth says how many containers around this value are open already (they count toward the limit). */
bool sl_json_scan_value(const uint8_t **p, const uint8_t *end, int depth)
{
	uint8_t objects[JSON_DEPTH_MAX / 8];
	int open = 0;

	SL_ASSERT(depth >= 0);
	for (;;) {
		/* Here a value is expected. */
		skip_ws(p, end);
		if (*p >= end)
			return false;
		if (**p == '[' || **p == '{') {
			bool object = **p == '{';

			if (depth + open >= JSON_DEPTH_MAX)
				return false;
			(*p)++;
			skip_ws(p, end);
			if (*p < end && **p == (object ? '}' : ']')) {
				(*p)++; /* empty: a complete value */
			} else {
				if (object)
					objects[open / 8] |= (uint8_t)(1u << (open % 8));
				else
					objects[open / 8] &= (uint8_t) ~(1u << (open % 8));
				open++;
				if (object && !scan_member_name(p, end))
					return false;
				continue;
			}
		} else if (!scan_scalar(p, end)) {
			return false;
		}
		/* A value ended: close containers, or go on to the next member or element. */
		for (;;) {
			bool object;

			if (open == 0)
				return true;
			object = (objects[(open - 1) / 8] >> ((open - 1) % 8)) & 1u;
			skip_ws(p, end);
			if (*p >= end)
				return false;
			if (**p == (object ? '}' : ']')) {
				(*p)++;
				open--;
				continue;
			}
			if (**p != ',')
				return false;
			(*p)++;
			if (object && !scan_member_name(p, end))
				return false;
			break;
		}
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

size_t sl_json_top_level_members(const char *text, size_t len)
{
	const uint8_t *p = (const uint8_t *)text, *end = p + len;
	size_t count = 0;

	if (!object_with_members(&p, end))
		return 0;
	for (;;) {
		if (!scan_member_name(&p, end))
			return count;
		if (!sl_json_scan_value(&p, end, 1))
			return count;
		count++;
		skip_ws(&p, end);
		if (p >= end || *p != ',')
			return count;
		p++;
	}
}

size_t sl_json_minify(const char *src, size_t len, char *dst)
{
	size_t n = 0;
	bool in_string = false, escaped = false;

	for (size_t i = 0; i < len; i++) {
		if (!minify_drops(src[i], &in_string, &escaped))
			dst[n++] = src[i];
	}
	return n;
}

int sl_json_member_span(const char *text, size_t len, const char *name, const char **start_out, size_t *len_out)
{
	const uint8_t *p = (const uint8_t *)text, *end = p + len;
	size_t name_len = strlen(name);

	if (!object_with_members(&p, end))
		return 0;
	for (;;) {
		const uint8_t *key, *key_end, *value;

		skip_ws(&p, end);
		key = p;
		if (!scan_string(&p, end, true))
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
		if (minify_drops(s[i], &in_string, &escaped)) {
			fwrite(s + run, 1, i - run, out);
			run = i + 1;
		}
	}
	fwrite(s + run, 1, len - run, out);
	return ferror(out) ? -EIO : 0;
}
