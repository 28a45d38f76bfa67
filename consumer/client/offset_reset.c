/* The pure logic of `synclog offsets reset`: where each SPEC moves a partition (with the clamping rules listed in
 * synclog.h) and the CSV plan files of --export and --from-file. No I/O
 * besides the FILE given, so every rule has a unit test (tests/unit/test_offset_reset.c). */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "consumer/client/client_impl.h"

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int64_t sl_reset_plan(const struct sl_reset_spec *spec, const struct sl_reset_input *in, bool *clamped_out)
{
	int64_t want = in->earliest, base, got;

	SL_ASSERT(in->earliest >= 0 && in->earliest <= in->next);
	switch (spec->kind) {
	case SL_RESET_EARLIEST:
		want = in->earliest;
		break;
	case SL_RESET_LATEST:
		want = in->next;
		break;
	case SL_RESET_OFFSET:
		want = spec->value;
		break;
	case SL_RESET_DATETIME:
		/* The broker answers the log end when no record is that recent; never leave a partition at -1. */
		want = in->at_time < 0 ? in->next : in->at_time;
		break;
	case SL_RESET_SHIFT:
		base = in->committed < 0 ? in->earliest : clamp(in->committed, in->earliest, in->next);
		if (spec->value > 0 && base > INT64_MAX - spec->value)
			want = INT64_MAX;
		else if (spec->value < 0 && base < INT64_MIN - spec->value)
			want = INT64_MIN;
		else
			want = base + spec->value;
		break;
	default:
		SL_ASSERT(!"unknown reset kind");
	}
	got = clamp(want, in->earliest, in->next);
	if (clamped_out != NULL)
		*clamped_out = got != want;
	return got;
}

/* ---- CSV plan files ---- */

int sl_offset_rows_write_csv(FILE *out, const struct sl_offset_row *rows, size_t count)
{
	if (fputs("topic,partition,old_offset,new_offset\n", out) == EOF)
		return -EIO;
	for (size_t i = 0; i < count; i++)
		if (fprintf(out, "%s,%u,%lld,%lld\n", rows[i].topic, rows[i].partition, (long long)rows[i].old_offset,
		            (long long)rows[i].new_offset) < 0)
			return -EIO;
	return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}

/* Fields of a CSV line are at most this many; a plan file has four. */
#define CSV_FIELDS_MAX 16

/* Split line (modified in place) at commas, trimming blanks around each field. Returns the field count or -1
 * when there are more than CSV_FIELDS_MAX. */
static int csv_split(char *line, char **fields)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *comma = strchr(p, ',');
		char *end = comma != NULL ? comma : p + strlen(p);

		if (n == CSV_FIELDS_MAX)
			return -1;
		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		fields[n++] = p;
		if (comma == NULL) {
			*end = '\0';
			return n;
		}
		*end = '\0';
		p = comma + 1;
	}
}

static bool topic_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SL_TOPIC_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* Digits only, at most max. */
static bool decimal(const char *s, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s) || v > (max - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

struct csv_columns {
	int topic, partition, new_offset, count;
};

/* Kafka's `kafka-consumer-groups --reset-offsets --from-file` reads lines topic,partition,offset without a
 * header: a first line of three fields whose last two are numbers is taken as that format's first row. */
static bool kafka_row(char **fields, int n)
{
	int64_t v;

	return n == 3 && topic_name_ok(fields[0]) && decimal(fields[1], UINT32_MAX, &v) &&
	       decimal(fields[2], INT64_MAX, &v);
}

static int header_parse(char **fields, int n, struct csv_columns *cols, char *err, size_t err_bytes,
                        unsigned long line_no)
{
	cols->topic = cols->partition = cols->new_offset = -1;
	cols->count = n;
	for (int i = 0; i < n; i++) {
		if (strcmp(fields[i], "topic") == 0)
			cols->topic = i;
		else if (strcmp(fields[i], "partition") == 0)
			cols->partition = i;
		else if (strcmp(fields[i], "new_offset") == 0 ||
		         (strcmp(fields[i], "offset") == 0 && cols->new_offset < 0))
			cols->new_offset = i;
	}
	if (cols->topic < 0 || cols->partition < 0 || cols->new_offset < 0) {
		sl_error_set(err, err_bytes,
		             "line %lu: the header must name the columns topic, partition and new_offset (as "
		             "--export writes: topic,partition,old_offset,new_offset), or the file must be Kafka's "
		             "headerless topic,partition,offset",
		             line_no);
		return -EINVAL;
	}
	return 0;
}

static int row_parse(char **fields, int n, const struct csv_columns *cols, struct sl_offset_row *row, char *err,
                     size_t err_bytes, unsigned long line_no)
{
	int64_t partition, offset;

	if (n != cols->count) {
		sl_error_set(err, err_bytes, "line %lu: %d fields where the header has %d", line_no, n, cols->count);
		return -EINVAL;
	}
	if (!topic_name_ok(fields[cols->topic])) {
		sl_error_set(err, err_bytes, "line %lu: '%.200s' is not a topic name", line_no, fields[cols->topic]);
		return -EINVAL;
	}
	if (!decimal(fields[cols->partition], UINT32_MAX, &partition)) {
		sl_error_set(err, err_bytes, "line %lu: partition '%.40s' is not a partition number", line_no,
		             fields[cols->partition]);
		return -EINVAL;
	}
	if (!decimal(fields[cols->new_offset], INT64_MAX, &offset)) {
		sl_error_set(err, err_bytes, "line %lu: offset '%.40s' is not an offset (0 or more)", line_no,
		             fields[cols->new_offset]);
		return -EINVAL;
	}
	memset(row, 0, sizeof(*row));
	snprintf(row->topic, sizeof(row->topic), "%s", fields[cols->topic]);
	row->partition = (uint32_t)partition;
	row->old_offset = -1;
	row->new_offset = offset;
	return 0;
}

int sl_offset_rows_read_csv(FILE *in, struct sl_offset_row **rows_out, size_t *count_out, char *err, size_t err_bytes)
{
	struct sl_offset_row *rows = NULL;
	struct csv_columns cols = {-1, -1, -1, 0};
	size_t count = 0, cap = 0, line_cap = 0;
	unsigned long line_no = 0;
	char *line = NULL, *fields[CSV_FIELDS_MAX];
	bool have_header = false;
	ssize_t len;
	int rc = 0;

	*rows_out = NULL;
	*count_out = 0;
	while (rc == 0 && (len = getline(&line, &line_cap, in)) >= 0) {
		int n;

		line_no++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strspn(line, " \t") == (size_t)len)
			continue;
		n = csv_split(line, fields);
		if (n < 0) {
			sl_error_set(err, err_bytes, "line %lu: more than %d fields", line_no, CSV_FIELDS_MAX);
			rc = -EINVAL;
		} else if (!have_header && !kafka_row(fields, n)) {
			rc = header_parse(fields, n, &cols, err, err_bytes, line_no);
			have_header = true;
		} else {
			if (!have_header) {
				cols = (struct csv_columns){.topic = 0, .partition = 1, .new_offset = 2, .count = 3};
				have_header = true;
			}
			if (count == cap) {
				size_t new_cap = cap ? cap * 2 : 64;
				struct sl_offset_row *p;

				if (count >= SL_OFFSET_ROWS_MAX) {
					sl_error_set(err, err_bytes, "line %lu: more than %u rows", line_no,
					             SL_OFFSET_ROWS_MAX);
					rc = -E2BIG;
					break;
				}
				p = realloc(rows, new_cap * sizeof(*rows));
				if (p == NULL) {
					rc = -ENOMEM;
					break;
				}
				rows = p;
				cap = new_cap;
			}
			rc = row_parse(fields, n, &cols, &rows[count], err, err_bytes, line_no);
			if (rc == 0)
				count++;
		}
	}
	if (rc == 0 && ferror(in)) {
		sl_error_set(err, err_bytes, "reading line %lu failed", line_no + 1);
		rc = -EIO;
	}
	if (rc == 0 && !have_header) {
		sl_error_set(err, err_bytes,
		             "the file is empty: expected a header topic,partition,old_offset,new_offset");
		rc = -EINVAL;
	}
	free(line);
	if (rc != 0) {
		if (rc == -ENOMEM)
			sl_error_set(err, err_bytes, "out of memory reading %zu rows", count);
		free(rows);
		return rc;
	}
	*rows_out = rows;
	*count_out = count;
	return 0;
}
