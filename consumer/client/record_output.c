/* Records to output lines, as `synclog consume` prints them: tab-separated text, or one JSON object per line whose
 * value is the stored JSON itself when it is JSON. Printing goes through stdio buffers: no syscall and no
 * allocation per record. */
#include <errno.h>
#include <inttypes.h>

#include "consumer/client/client_impl.h"

int sl_record_print_tsv_field(FILE *out, const void *bytes, size_t len)
{
	const uint8_t *p = bytes, *end = p + len, *run = p;

	for (; p < end; p++) {
		const char *esc = *p == '\t' ? "\\t" : *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : NULL;

		if (esc == NULL)
			continue;
		fwrite(run, 1, (size_t)(p - run), out);
		fputs(esc, out);
		run = p + 1;
	}
	fwrite(run, 1, (size_t)(end - run), out);
	return ferror(out) ? -EIO : 0;
}

int sl_record_print_text(FILE *out, uint32_t partition, const struct sl_record *r)
{
	fprintf(out, "%" PRIu32 "\t%" PRId64 "\t", partition, r->offset);
	if (r->key_len > 0)
		sl_record_print_tsv_field(out, r->key, (size_t)r->key_len);
	putc_unlocked('\t', out);
	if (r->value_len > 0)
		sl_record_print_tsv_field(out, r->value, (size_t)r->value_len);
	putc_unlocked('\n', out);
	return ferror(out) ? -EIO : 0;
}

int sl_record_print_json(FILE *out, uint32_t partition, const struct sl_record *r)
{
	fprintf(out, "{\"partition\":%" PRIu32 ",\"offset\":%" PRId64 ",\"key\":", partition, r->offset);
	if (r->key_len < 0)
		fputs("null", out);
	else
		sl_json_print_string(out, r->key, (size_t)r->key_len);
	fputs(",\"value\":", out);
	if (r->value_len < 0)
		fputs("null", out);
	else
		sl_json_print_value(out, r->value, (size_t)r->value_len);
	if (r->version == SL_VERSION_NONE)
		fputs(",\"version\":null", out);
	else
		fprintf(out, ",\"version\":%" PRId64, r->version);
	fprintf(out,
	        ",\"op\":\"%s\",\"origin\":\"%s\",\"timestamp_ms\":%" PRId64 ",\"idempotency_key\":", sl_op_name(r->op),
	        sl_origin_name(r->origin), r->timestamp_ms);
	if (r->idempotency_key == NULL)
		fputs("null", out);
	else
		sl_json_print_string(out, r->idempotency_key, (size_t)r->idempotency_key_len);
	if (r->schema_version != 0)
		fprintf(out, ",\"schema_version\":%" PRId32, r->schema_version);
	fputs("}\n", out);
	return ferror(out) ? -EIO : 0;
}
