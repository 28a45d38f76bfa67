/* `consume --format TEMPLATE`: one line (or any text) per record from a kcat-like template, so a script gets
 * exactly the fields it wants and a delete can be seen as a delete:
 *
 *   %k key        %K key length (-1: null)       %s value      %S value length (-1: null, a delete)
 *   %t topic      %p partition    %o offset      %T timestamp (ms since the epoch)
 *   %v version (empty when the record has none)  %O op: upsert or delete     %r origin: live, backfill, repair
 *   %i idempotency key (empty when none)         %h the sync headers as kcat prints headers:
 *                                                   version=3,op=delete,origin=live[,idempotency_key=K]
 *   %% a percent sign;  \n \t \r \\ a newline, tab, carriage return, backslash
 *
 * Keys and values are written as their bytes (the template decides the separators). Nothing is added: a template
 * that should end lines ends with \n, as kcat's -f does. */
#ifndef SL_TOOLS_CLI_RECORD_FORMAT_H
#define SL_TOOLS_CLI_RECORD_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "consumer/client/synclog.h"

/* A template is at most this long: a bound on what one record's printing costs. */
#define CLI_FORMAT_BYTES_MAX 1024

struct cli_record_format;

/* Compile template; returns 0, or -EINVAL with the offending directive named in err. */
int cli_record_format_new(struct cli_record_format **out, const char *template_text, char *err, size_t err_bytes);
/* Print one record; no allocation. Returns 0 or -EIO. */
int cli_record_format_print(const struct cli_record_format *f, FILE *out, const char *topic, uint32_t partition,
                            const struct sl_record *r);
void cli_record_format_free(struct cli_record_format *f);

#endif
