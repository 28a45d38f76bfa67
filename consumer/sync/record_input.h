/* Input lines to records: what `synclog produce` reads (TSV or one JSON object per line, parsed with jansson).
 * Part of the sync library because it needs a full JSON parser; the client library does not. */
#ifndef SL_CONSUMER_SYNC_RECORD_INPUT_H
#define SL_CONSUMER_SYNC_RECORD_INPUT_H

#include "consumer/client/synclog.h"

/* A parser of input lines. A record it fills points into the line given and into the parser's own buffers:
 * valid until the next parse or free. */
struct sl_line_parser;

enum sl_input_format { SL_INPUT_TSV = 0, SL_INPUT_JSON = 1 };

int sl_line_parser_new(struct sl_line_parser **out, enum sl_input_format format);
void sl_line_parser_free(struct sl_line_parser *lp);
/* Parse one line (without its newline) into *out, with origin and timestamp_ms set as given.
 *   TSV: KEY<TAB>VALUE; the key is everything before the first tab, the value everything after it (it may hold
 *        more tabs), both taken as bytes.
 *   JSON: one object {"key": string (required), "value": any JSON, stored as its compact JSON text; absent
 *        means JSON null, "version": integer, "op": "upsert"|"delete"|"changed", "idempotency_key": string,
 *        "schema_version": integer, "origin": "live"|"backfill"|"repair" (overrides the origin given),
 *        "origin_system": string (the service that made the change), "changed_at_ms": integer (when, by its
 *        clock)}. A delete has no value (absent or null) and is stored as a tombstone (null value); so has a thin
 *        event (op changed), with its op header saying what it is. Other members are ignored.
 * Returns 1 with *out filled, 0 for a blank line (nothing to send), -EINVAL with a message in err for a line that
 * cannot be parsed, -ENOMEM. */
int sl_line_parse(struct sl_line_parser *lp, const char *line, size_t len, enum sl_origin origin, int64_t timestamp_ms,
                  struct sl_record *out, char *err, size_t err_bytes);

#endif
