/* Base64 (RFC 4648, the standard alphabet with '=' padding): the one codec for the bytes that SCRAM messages and
 * the users file carry as text. Strict on input: no whitespace, no missing or misplaced padding, no bits left over
 * in the last character, so one value has exactly one spelling and a file or message that was tampered with is
 * refused rather than read as something else. */
#ifndef SL_BASE_BASE64_H
#define SL_BASE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters sl_base64_encode writes for n bytes, without the NUL. */
#define SL_BASE64_ENCODED_BYTES(n) ((((n) + 2) / 3) * 4)

/* Write data[0..len) as base64 into out, NUL-terminated; out_cap must be at least SL_BASE64_ENCODED_BYTES(len) + 1.
 * Returns the number of characters written (without the NUL), or -ENOSPC. */
int sl_base64_encode(const uint8_t *data, size_t len, char *out, size_t out_cap);

/* Decode text[0..len) into out (at most out_cap bytes). Returns the number of bytes, -EINVAL for text that is not
 * canonical base64, -ENOSPC when out is too small. */
int sl_base64_decode(const char *text, size_t len, uint8_t *out, size_t out_cap);

#endif
