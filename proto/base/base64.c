/* Strict base64; see base64.h. */
#include <errno.h>

#include "proto/base/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sl_base64_encode(const uint8_t *data, size_t len, char *out, size_t out_cap)
{
	size_t need = SL_BASE64_ENCODED_BYTES(len);
	if (out_cap < need + 1)
		return -ENOSPC;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int sl_base64_decode(const char *text, size_t len, uint8_t *out, size_t out_cap)
{
	if (len % 4 != 0)
		return -EINVAL;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		int last = i + 4 == len;
		int pad = 0;
		if (last && text[i + 3] == '=')
			pad = text[i + 2] == '=' ? 2 : 1;
		uint32_t v = 0;
		for (int k = 0; k < 4; k++) {
			int d = k >= 4 - pad ? 0 : value_of(text[i + (size_t)k]);
			if (d < 0)
				return -EINVAL;
			v = v << 6 | (uint32_t)d;
		}
		/* The bits a padded group does not carry must be zero: "QQ==" is 'A', "QR==" is not base64. */
		if ((pad == 2 && (v & 0xffff) != 0) || (pad == 1 && (v & 0xff) != 0))
			return -EINVAL;
		size_t n = 3 - (size_t)pad;
		if (o + n > out_cap)
			return -ENOSPC;
		out[o++] = (uint8_t)(v >> 16);
		if (n > 1)
			out[o++] = (uint8_t)(v >> 8);
		if (n > 2)
			out[o++] = (uint8_t)v;
	}
	return (int)o;
}
