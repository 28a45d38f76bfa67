/* JSON text helpers internal to the client library (json_text.c); the public ones are in synclog.h. */
#ifndef SL_CONSUMER_JSON_TEXT_H
#define SL_CONSUMER_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the valid UTF-8 sequence at p (1 to 4), or 0 when p does not start one. p < end. */
size_t sl_utf8_sequence_bytes(const uint8_t *p, const uint8_t *end);
/* True when p[0..len) is UTF-8 without NUL bytes: what a text column (SQLite TEXT, PostgreSQL text) holds and a
 * person can read. */
bool sl_utf8_text_valid(const uint8_t *p, size_t len);
/* Advance *p past one JSON value (and the whitespace before it); false when there is none. depth: containers open
 * around it already, which count toward the nesting limit (see json_text.c for what is valid). */
bool sl_json_scan_value(const uint8_t **p, const uint8_t *end, int depth);
/* Members of the object text holds at its top level, as written (two members of one name count twice); 0 when it
 * is not an object. With a parser that keeps one member per name, a smaller count there means a duplicate. */
size_t sl_json_top_level_members(const char *text, size_t len);
/* Copy src without whitespace outside strings into dst (room for len bytes); returns the bytes written. src must
 * be valid JSON. */
size_t sl_json_minify(const char *src, size_t len, char *dst);
/* In a text holding one JSON object, find the member called name (spelled without escapes) and return the span of
 * its value as written. Returns 1 when found, 0 otherwise. */
int sl_json_member_span(const char *text, size_t len, const char *name, const char **start_out, size_t *len_out);

#endif
