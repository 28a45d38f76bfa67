/* The security tables' text files: lines, load, save (table_file.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/assert.h"
#include "proto/base/fs.h"
#include "proto/table_file.h"
#include "proto/users.h"

/* Lines are copied into a buffer on the stack to be NUL-terminated; no table has lines longer than this. */
#define LINE_BYTES_LIMIT 1024

int sl_table_file_line_error(char *err, size_t err_cap, unsigned no, const char *what)
{
	snprintf(err, err_cap, "line %u: %s", no, what);
	return -EINVAL;
}

int sl_table_file_lines(const char *text, size_t len, const char *kind, size_t line_bytes_max, sl_table_line_cb line_cb,
                        void *arg, char *err, size_t err_cap)
{
	const char *p = text, *end = text + len;
	char line[LINE_BYTES_LIMIT + 1];
	unsigned no = 0;

	SL_ASSERT(line_bytes_max <= LINE_BYTES_LIMIT);
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, err_cap, "the file holds a NUL byte: not %s", kind);
		return -EINVAL;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		int rc = 0;

		no++;
		if (nl == NULL)
			return sl_table_file_line_error(err, err_cap, no,
			                                "the last line has no newline: the file was cut short");
		if (n > line_bytes_max) {
			char what[64];

			snprintf(what, sizeof(what), "line longer than %zu bytes", line_bytes_max);
			return sl_table_file_line_error(err, err_cap, no, what);
		}
		if (n > 0 && p[0] != '#') {
			memcpy(line, p, n);
			line[n] = '\0';
			rc = line_cb(line, n, no, arg, err, err_cap);
			if (rc < 0)
				return rc;
		}
		p = nl + 1;
	}
	return 0;
}

int sl_table_file_format(const char *header, const void *table, uint32_t count, size_t line_bytes_max,
                         sl_table_format_cb format_cb, char **text_out, size_t *len_out)
{
	size_t header_len = strlen(header), cap = header_len + 1 + (size_t)count * line_bytes_max;
	char *text = malloc(cap);

	if (text == NULL)
		return -ENOMEM;
	memcpy(text, header, header_len + 1);
	size_t len = header_len;
	for (uint32_t i = 0; i < count; i++)
		len += format_cb(table, i, text + len, cap - len);
	*text_out = text;
	*len_out = len;
	return 0;
}

int sl_table_file_load(const char *path, size_t bytes_max, sl_table_parse_cb parse_cb, void *table, char *err,
                       size_t err_cap)
{
	char *text = malloc(bytes_max + 1);
	char why[320];
	size_t len = 0;
	int rc;

	if (text == NULL)
		return -ENOMEM;
	rc = sl_fs_read_small(path, text, bytes_max + 1, &len);
	if (rc == -ENOENT) {
		free(text);
		return 0;
	}
	if (rc < 0) {
		if (rc == -EFBIG && bytes_max % (1u << 20) == 0)
			snprintf(err, err_cap, "cannot read %s: larger than %zu MiB", path, bytes_max >> 20);
		else if (rc == -EFBIG)
			snprintf(err, err_cap, "cannot read %s: larger than %zu bytes", path, bytes_max);
		else
			snprintf(err, err_cap, "cannot read %s: %s", path, strerror(-rc));
		free(text);
		return rc;
	}
	rc = parse_cb(text, len, table, why, sizeof(why));
	free(text);
	if (rc < 0)
		snprintf(err, err_cap, "%s: %s", path, why);
	return rc;
}

int sl_table_file_path(const char *data_dir, const char *file, char *path, size_t path_bytes)
{
	int n = snprintf(path, path_bytes, "%s/%s/%s", data_dir, SL_SECURITY_DIR, file);

	return n < 0 || (size_t)n >= path_bytes ? -ENAMETOOLONG : 0;
}

int sl_table_file_save(const char *data_dir, const char *file, const char *text, size_t len)
{
	char path[SL_PATH_BYTES_MAX];
	int rc = sl_table_file_path(data_dir, file, path, sizeof(path));

	if (rc == 0)
		rc = sl_security_dir_make(data_dir);
	return rc < 0 ? rc : sl_fs_replace_atomic(path, text, len);
}
