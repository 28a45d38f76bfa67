/* Entity values compared and digested one way, by the applier's conflict rule (apply.h rule 4c) and by
 * reconciliation (reconcile.h): a value is the JSON text of an entity snapshot (or any bytes, for a text target),
 * and two values that are the same JSON written differently (key order, whitespace) are the same value. */
#ifndef SL_CONSUMER_SYNC_VALUE_H
#define SL_CONSUMER_SYNC_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hex digits of a digest, and the NUL. */
#define SL_VALUE_DIGEST_HEX_BYTES 17

/* True when a and b are the same value: both NULL (a null value), the same bytes, or both JSON text (RFC 8259, as
 * jansson reads it) of equal JSON values, objects compared without regard to key order. Allocates only when the
 * bytes differ and both look like JSON. */
bool sl_value_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len);

/* XXH3-64 of the bytes, as a value's digest in the conflicts table (16 lowercase hex digits). */
uint64_t sl_value_digest(const void *bytes, size_t len);
void sl_value_digest_hex(uint64_t digest, char out[SL_VALUE_DIGEST_HEX_BYTES]);

#endif
