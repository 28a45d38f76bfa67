/* The JSON-lines source (source.h): "jsonl:PATH", one JSON object per line, members named like a table's columns.
 *
 * A file has no index, so opening one reads it whole once (mapped, not copied) and keeps a sorted index of its
 * lines: key, line number, where the line is. Rows are then read in key order by parsing their line again. The index
 * costs about 48 bytes and the key per line; ROWS_MAX bounds it, and a larger file is refused with advice.
 *   key      a string member (or an integer, taken as its decimal text)
 *   version  an integer member
 *   deleted  a member that is true makes the row a delete
 *   value    the member named by --value (its text when it is a string, else its JSON), or else an object of the
 *            other members in line order
 * Blank lines are skipped. A line that is not a JSON object, or lacks a key, is a bad row at its line number;
 * rows of the same key keep their line order. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consumer/client/client_impl.h"
#include "consumer/sync/source.h"

/* Lines indexed at most: 20 million lines are about 1.5 GB of index at 40-byte keys. */
#define ROWS_MAX       20000000u
#define NAME_BYTES_MAX 256
/* A decimal int64, its sign and the NUL. */
#define INT_BYTES_MAX  24

struct line {
	char *key; /* in the key arena; NULL for a line without a usable key */
	uint32_t key_len;
	uint32_t line_len;
	uint64_t offset; /* of the line in the file */
	uint64_t number; /* 1-based */
};

struct jsonl_source {
	char path[1024];
	char key_col[NAME_BYTES_MAX], version_col[NAME_BYTES_MAX], value_col[NAME_BYTES_MAX];
	bool value_named;
	const char *map; /* the file, mapped; NULL for an empty file */
	size_t map_bytes;
	struct line *lines;
	size_t count;
	char *keys; /* the key arena: every indexed key, back to back */
	/* The scan: rows [at, end). */
	size_t at;
	size_t end;
	json_t *row; /* the parsed line of the last row returned */
	char *value; /* its value's text (jansson's allocation) */
	char key_text[INT_BYTES_MAX];
	char bad[256];
	char error[SL_ERROR_BYTES];
};

static int line_compare(const void *a, const void *b)
{
	const struct line *x = a, *y = b;
	int c;

	if (x->key == NULL || y->key == NULL) {
		if (x->key != y->key)
			return x->key == NULL ? -1 : 1;
		return x->number < y->number ? -1 : x->number > y->number;
	}
	c = sl_source_key_compare((const uint8_t *)x->key, x->key_len, (const uint8_t *)y->key, y->key_len);
	if (c != 0)
		return c;
	return x->number < y->number ? -1 : x->number > y->number;
}

/* The key of a parsed line as text: a string, or an integer's decimal text (in buf). NULL when it has none. */
static const char *key_of(const json_t *obj, const char *name, char buf[INT_BYTES_MAX], size_t *len_out)
{
	const json_t *k = json_is_object(obj) ? json_object_get(obj, name) : NULL;

	if (json_is_string(k)) {
		*len_out = json_string_length(k);
		return json_string_value(k);
	}
	if (json_is_integer(k)) {
		*len_out = (size_t)snprintf(buf, INT_BYTES_MAX, "%lld", (long long)json_integer_value(k));
		return buf;
	}
	return NULL;
}

static bool blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* Append key to the key arena; its offset in *off_out. */
static int key_keep(struct jsonl_source *s, const char *key, size_t len, size_t *bytes, size_t *cap, size_t *off_out)
{
	if (*bytes + len > *cap) {
		size_t n = *cap ? *cap * 2 : 65536;
		char *k;

		while (n < *bytes + len)
			n *= 2;
		k = realloc(s->keys, n);
		if (k == NULL)
			return -ENOMEM;
		s->keys = k;
		*cap = n;
	}
	memcpy(s->keys + *bytes, key, len);
	*off_out = *bytes;
	*bytes += len;
	return 0;
}

/* Index every line (parsing each once), then sort the index. */
static int index_build(struct jsonl_source *s)
{
	size_t keys_bytes = 0, keys_cap = 0, cap = 0;
	uint64_t number = 0;

	for (const char *p = s->map, *end = s->map + s->map_bytes; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl != NULL ? nl : end) - p), key_len = 0, off = 0;
		char buf[INT_BYTES_MAX];
		const char *key;
		json_t *obj;

		number++;
		if (blank(p, len)) {
			p += len + 1;
			continue;
		}
		if (s->count == cap) {
			size_t n = cap ? cap * 2 : 4096;
			struct line *l = n > ROWS_MAX ? NULL : realloc(s->lines, n * sizeof(*l));

			if (l == NULL) {
				snprintf(s->error, sizeof(s->error),
				         "source jsonl:%s: more than %u lines, or out of memory: split the file, or "
				         "load it "
				         "into SQLite and use sqlite:PATH:TABLE",
				         s->path, ROWS_MAX);
				return -E2BIG;
			}
			s->lines = l;
			cap = n;
		}
		obj = json_loadb(p, len, 0, NULL);
		key = key_of(obj, s->key_col, buf, &key_len);
		if (key != NULL && key_len > 0 && key_keep(s, key, key_len, &keys_bytes, &keys_cap, &off) != 0) {
			json_decref(obj);
			return -ENOMEM;
		}
		/* The key's offset in the arena, plus one (0: no key), until the arena stops moving. */
		s->lines[s->count++] =
		        (struct line){.key = key != NULL && key_len > 0 ? (char *)(uintptr_t)(off + 1) : NULL,
		                      .key_len = (uint32_t)key_len,
		                      .line_len = (uint32_t)len,
		                      .offset = (uint64_t)(p - s->map),
		                      .number = number};
		json_decref(obj);
		p += len + 1;
	}
	for (size_t i = 0; i < s->count; i++)
		if (s->lines[i].key != NULL)
			s->lines[i].key = s->keys + ((uintptr_t)s->lines[i].key - 1);
	if (s->count > 0)
		qsort(s->lines, s->count, sizeof(*s->lines), line_compare);
	return 0;
}

/* First index whose key is after k (or at or after it, when inclusive); keyless lines come first. */
static size_t bound(const struct jsonl_source *s, struct sl_key k, bool inclusive)
{
	size_t lo = 0, hi = s->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct line *l = &s->lines[mid];
		int c = l->key == NULL ? -1 : sl_source_key_compare((const uint8_t *)l->key, l->key_len, k.data, k.len);

		if (c < 0 || (c == 0 && !inclusive))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int op_scan(void *ctx, struct sl_key after, struct sl_key upto)
{
	struct jsonl_source *s = ctx;

	s->at = after.data != NULL ? bound(s, after, false) : 0;
	s->end = upto.data != NULL ? bound(s, upto, false) : s->count;
	if (s->end < s->at)
		s->end = s->at;
	return 0;
}

static void row_release(struct jsonl_source *s)
{
	json_decref(s->row);
	s->row = NULL;
	free(s->value);
	s->value = NULL;
}

/* The value of a row: the named member, or an object of the members other than key, version and deleted. */
static int value_build(struct jsonl_source *s, struct sl_source_row *out)
{
	const char *name;
	json_t *v, *obj;

	if (s->value_named) {
		v = json_object_get(s->row, s->value_col);
		if (v == NULL || json_is_null(v))
			return 0;
		if (json_is_string(v)) {
			out->value = (const uint8_t *)json_string_value(v);
			out->value_len = json_string_length(v);
			return 0;
		}
		s->value = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	} else {
		obj = json_object();
		if (obj == NULL)
			return -ENOMEM;
		json_object_foreach(s->row, name, v)
		{
			if (strcmp(name, s->key_col) == 0 || strcmp(name, s->version_col) == 0 ||
			    strcmp(name, SL_SOURCE_DELETED_COLUMN) == 0)
				continue;
			if (json_object_set(obj, name, v) != 0) {
				json_decref(obj);
				return -ENOMEM;
			}
		}
		s->value = json_dumps(obj, JSON_COMPACT);
		json_decref(obj);
	}
	if (s->value == NULL)
		return -ENOMEM;
	out->value = (const uint8_t *)s->value;
	out->value_len = strlen(s->value);
	return 0;
}

static int op_next(void *ctx, struct sl_source_row *out)
{
	struct jsonl_source *s = ctx;
	const struct line *l;
	json_error_t jerr;
	json_t *version, *deleted;

	row_release(s);
	if (s->at >= s->end)
		return 0;
	l = &s->lines[s->at++];
	memset(out, 0, sizeof(*out));
	out->position = l->number;
	out->version = SL_VERSION_NONE;
	s->row = json_loadb(s->map + l->offset, l->line_len, 0, &jerr);
	if (s->row == NULL || !json_is_object(s->row)) {
		snprintf(s->bad, sizeof(s->bad), "not a JSON object%s%s", s->row == NULL ? ": " : "",
		         s->row == NULL ? jerr.text : "");
		out->bad = s->bad;
		return 1;
	}
	if (l->key == NULL) {
		snprintf(s->bad, sizeof(s->bad), "no key (a non-empty string or integer member '%s')", s->key_col);
		out->bad = s->bad;
		return 1;
	}
	out->key = (const uint8_t *)l->key;
	out->key_len = l->key_len;
	version = json_object_get(s->row, s->version_col);
	deleted = json_object_get(s->row, SL_SOURCE_DELETED_COLUMN);
	out->deleted = json_is_true(deleted);
	if (!json_is_integer(version) || json_integer_value(version) == SL_VERSION_NONE) {
		snprintf(s->bad, sizeof(s->bad),
		         version == NULL ? "no version (an integer member '%s')"
		                         : "version is not an integer (member '%s')",
		         s->version_col);
		out->bad = s->bad;
		return 1;
	}
	out->version = json_integer_value(version);
	if (out->deleted)
		return 1;
	if (value_build(s, out) != 0) {
		snprintf(s->error, sizeof(s->error), "source jsonl:%s: out of memory", s->path);
		return -ENOMEM;
	}
	return 1;
}

static int64_t op_count(void *ctx)
{
	return (int64_t)((struct jsonl_source *)ctx)->count;
}

static const char *op_error(void *ctx)
{
	return ((struct jsonl_source *)ctx)->error;
}

static void op_close(void *ctx)
{
	struct jsonl_source *s = ctx;

	if (s == NULL)
		return;
	row_release(s);
	if (s->map != NULL)
		munmap((void *)s->map, s->map_bytes);
	free(s->lines);
	free(s->keys);
	free(s);
}

static const struct sl_source_ops jsonl_source_ops = {
        .scan = op_scan,
        .next = op_next,
        .count = op_count,
        .error = op_error,
        .close = op_close,
};

static int file_map(struct jsonl_source *s)
{
	struct stat st;
	int fd = open(s->path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		rc = -errno;
		snprintf(s->error, sizeof(s->error), "source jsonl:%s: cannot open: %s", s->path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(s->error, sizeof(s->error), "source jsonl:%s: not a regular file", s->path);
		close(fd);
		return -EINVAL;
	}
	s->map_bytes = (size_t)st.st_size;
	if (s->map_bytes > 0) {
		void *m = mmap(NULL, s->map_bytes, PROT_READ, MAP_PRIVATE, fd, 0);

		if (m == MAP_FAILED) {
			rc = -errno;
			snprintf(s->error, sizeof(s->error), "source jsonl:%s: cannot map: %s", s->path,
			         strerror(errno));
		} else {
			s->map = m;
			madvise(m, s->map_bytes, MADV_SEQUENTIAL);
		}
	}
	close(fd);
	return rc;
}

int sl_source_jsonl_open(struct sl_source *out, const char *arg, const struct sl_source_columns *columns, char *err,
                         size_t err_bytes)
{
	struct jsonl_source *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL) {
		sl_error_set(err, err_bytes, "source: out of memory");
		return -ENOMEM;
	}
	if (arg[0] == '\0' || strlen(arg) >= sizeof(s->path) || strlen(columns->key) >= NAME_BYTES_MAX ||
	    strlen(columns->version) >= NAME_BYTES_MAX ||
	    (columns->value != NULL && strlen(columns->value) >= NAME_BYTES_MAX)) {
		sl_error_set(err, err_bytes, "source jsonl:%s: expected jsonl:PATH with column names under %d bytes",
		             arg, NAME_BYTES_MAX);
		free(s);
		return -EINVAL;
	}
	snprintf(s->path, sizeof(s->path), "%s", arg);
	snprintf(s->key_col, sizeof(s->key_col), "%s", columns->key);
	snprintf(s->version_col, sizeof(s->version_col), "%s", columns->version);
	s->value_named = columns->value != NULL;
	if (s->value_named)
		snprintf(s->value_col, sizeof(s->value_col), "%s", columns->value);
	rc = file_map(s);
	if (rc == 0)
		rc = index_build(s);
	if (rc != 0) {
		sl_error_set(err, err_bytes, "%s", rc == -ENOMEM ? "source: out of memory" : s->error);
		op_close(s);
		return rc;
	}
	out->ops = &jsonl_source_ops;
	out->ctx = s;
	snprintf(out->stem, sizeof(out->stem), "%s", s->path);
	out->position_name = "line";
	return 0;
}
