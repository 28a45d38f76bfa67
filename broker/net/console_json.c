/* JSON for the console's API (console.c): any protobuf-c message written as a JSON object by walking its
 * descriptor, so the API shows exactly the fields the native answers carry (StatusResponse, DescribeGroupResponse,
 * ...) under their .proto names, and a new field appears in the API without code here; and JSON strings escaped
 * from arbitrary bytes (record keys and values need not be UTF-8).
 *
 * The mapping: scalars as JSON numbers (64-bit integers too: the console reads offsets and byte counts, all far
 * below 2^53), bools, enums by their .proto name, strings as strings, bytes left out (records are decoded by
 * console.c), messages as objects, repeated fields as arrays; a oneof member only when it is the one set.
 *
 * Which thread may call: any (it reads only the message it is given). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "broker/net/console.h"
#include "proto/base/assert.h"
#include "proto/base/base64.h"

/* The length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t min, c;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2, min = 0x80, c = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, min = 0x800, c = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, min = 0x10000, c = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return len;
}

int sl_json_utf8_valid(const void *s, size_t n)
{
	const unsigned char *p = s;
	for (size_t i = 0, k; i < n; i += k)
		if ((k = utf8_len(p + i, n - i)) == 0)
			return 0;
	return 1;
}

void sl_json_base64(struct sl_text *o, const void *s, size_t n)
{
	/* In pieces of 3 * 64 bytes, so that the text needs no allocation of its own. */
	char piece[SL_BASE64_ENCODED_BYTES(192) + 1];
	const uint8_t *p = s;
	sl_text_put(o, "\"");
	for (size_t i = 0; i < n; i += 192) {
		size_t len = n - i < 192 ? n - i : 192;
		int w = sl_base64_encode(p + i, len, piece, sizeof(piece));
		SL_ASSERT(w >= 0);
		sl_text_putn(o, piece, (size_t)w);
	}
	sl_text_put(o, "\"");
}

void sl_json_str(struct sl_text *o, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;
	char esc[8];
	sl_text_put(o, "\"");
	while (i < n) {
		size_t k = utf8_len(p + i, n - i);
		/* Plain characters are copied in runs; quotes, backslashes, controls and the characters HTML gives a
		 * meaning to are escaped, and a byte that is not UTF-8 becomes U+FFFD. */
		if (k > 1 || (k == 1 && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && p[i] != '<' && p[i] != '>' &&
		              p[i] != '&')) {
			run += k;
			i += k;
			continue;
		}
		sl_text_putn(o, (const char *)p + i - run, run);
		run = 0;
		if (k == 0)
			sl_text_put(o, "\\ufffd");
		else if (p[i] == '"')
			sl_text_put(o, "\\\"");
		else if (p[i] == '\\')
			sl_text_put(o, "\\\\");
		else if (p[i] == '\n')
			sl_text_put(o, "\\n");
		else if (p[i] == '\t')
			sl_text_put(o, "\\t");
		else {
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			sl_text_put(o, esc);
		}
		i++;
	}
	sl_text_putn(o, (const char *)p + i - run, run);
	sl_text_put(o, "\"");
}

void sl_json_cstr(struct sl_text *o, const char *s)
{
	sl_json_str(o, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

void sl_json_i64(struct sl_text *o, int64_t v)
{
	char tmp[24];
	snprintf(tmp, sizeof(tmp), "%" PRId64, v);
	sl_text_put(o, tmp);
}

void sl_json_double(struct sl_text *o, double v)
{
	char tmp[40];
	/* JSON has no NaN or infinity. */
	if (v != v || v > 1e300 || v < -1e300)
		v = 0;
	snprintf(tmp, sizeof(tmp), "%.6g", v);
	sl_text_put(o, tmp);
}

/* One value of field f at p (a pointer to the value itself, inside the message or its repeated array). */
static void value(struct sl_text *o, const ProtobufCFieldDescriptor *f, const void *p)
{
	char tmp[32];
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		snprintf(tmp, sizeof(tmp), "%" PRId32, *(const int32_t *)p);
		sl_text_put(o, tmp);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		snprintf(tmp, sizeof(tmp), "%" PRIu32, *(const uint32_t *)p);
		sl_text_put(o, tmp);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		sl_json_i64(o, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(tmp, sizeof(tmp), "%" PRIu64, *(const uint64_t *)p);
		sl_text_put(o, tmp);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		sl_json_double(o, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		sl_json_double(o, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		sl_text_put(o, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		if (ev != NULL) {
			sl_json_cstr(o, ev->name);
		} else {
			snprintf(tmp, sizeof(tmp), "%d", *(const int *)p);
			sl_text_put(o, tmp);
		}
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		sl_json_cstr(o, *(char *const *)p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(const ProtobufCMessage *const *)p;
		if (m == NULL)
			sl_text_put(o, "null");
		else
			sl_json_message(o, m);
		break;
	}
	default:
		sl_text_put(o, "null");
		break;
	}
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

void sl_json_message(struct sl_text *o, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	int first = 1;
	sl_text_put(o, "{");
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type == PROTOBUF_C_TYPE_BYTES)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
		           f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
		           !*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
			continue;
		}
		sl_text_put(o, first ? "" : ",");
		first = 0;
		sl_json_cstr(o, f->name);
		sl_text_put(o, ":");
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			value(o, f, base + f->offset);
			continue;
		}
		size_t n = *(const size_t *)(base + f->quantifier_offset);
		const char *arr = *(const char *const *)(base + f->offset);
		size_t step = value_size(f);
		sl_text_put(o, "[");
		for (size_t k = 0; k < n; k++) {
			sl_text_put(o, k ? "," : "");
			value(o, f, arr + k * step);
		}
		sl_text_put(o, "]");
	}
	sl_text_put(o, "}");
}
