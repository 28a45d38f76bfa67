/* The users file: parse, format, load, save, and the sorted table; see users.h for the format. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/base/base64.h"
#include "proto/base/fs.h"
#include "proto/base/sorted.h"
#include "proto/table_file.h"
#include "proto/users.h"

#define HEADER                                                                                                   \
	"# synclog users: NAME SCRAM-SHA-256 ITERATIONS SALT STORED_KEY SERVER_KEY (proto/users.h). Verifiers, " \
	"never passwords.\n# Change it with `synclog user add|delete`; edit by hand only while synclogd is "     \
	"stopped.\n"
/* One line at most: a name, the mechanism, a count and three base64 fields of at most 64 bytes each. */
#define LINE_BYTES_MAX 512

int sl_user_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SL_USER_NAME_BYTES_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '@' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

static int compare_name(const void *item, const void *key)
{
	return strcmp(((const struct sl_user *)item)->name, key);
}

/* Index of name, or of where it would go (*found 0). */
static uint32_t search(const struct sl_users *u, const char *name, int *found)
{
	return sl_sorted_search(u->items, u->count, sizeof(u->items[0]), name, found, compare_name);
}

const struct sl_user *sl_users_find(const struct sl_users *u, const char *name)
{
	int found;
	uint32_t i = search(u, name, &found);
	return found ? &u->items[i] : NULL;
}

int sl_users_put(struct sl_users *u, const char *name, const struct sl_scram_verifier *v, int *created_out)
{
	int found;
	if (sl_user_name_check(name) < 0)
		return -EINVAL;
	uint32_t i = search(u, name, &found);
	if (created_out)
		*created_out = !found;
	if (found) {
		u->items[i].verifier = *v;
		return 0;
	}
	if (u->count >= SL_USERS_MAX)
		return -E2BIG;
	struct sl_user *items = sl_sorted_open_slot(u->items, &u->count, &u->cap, sizeof(u->items[0]), i);
	if (items == NULL)
		return -ENOMEM;
	u->items = items;
	snprintf(u->items[i].name, sizeof(u->items[i].name), "%s", name);
	u->items[i].verifier = *v;
	return 0;
}

int sl_users_remove(struct sl_users *u, const char *name)
{
	return sl_sorted_remove(u->items, &u->count, sizeof(u->items[0]), name, compare_name);
}

int sl_users_copy(const struct sl_users *from, struct sl_users *to)
{
	void *items;
	int rc = sl_sorted_copy(from->items, from->count, sizeof(from->items[0]), &items);

	memset(to, 0, sizeof(*to));
	if (rc < 0)
		return rc;
	to->items = items;
	to->count = to->cap = from->count;
	return 0;
}

void sl_users_free(struct sl_users *u)
{
	if (u->items)
		memset(u->items, 0,
		       (size_t)u->cap * sizeof(u->items[0])); /* verifiers: do not leave them in freed memory */
	free(u->items);
	memset(u, 0, sizeof(*u));
}

/* ---- text ---- */

/* The next field of a line: up to a space or the end. */
static int field(const char **p, const char *end, const char **start, size_t *len)
{
	if (*p >= end)
		return -1;
	*start = *p;
	const char *sp = memchr(*p, ' ', (size_t)(end - *p));
	*len = (size_t)((sp ? sp : end) - *p);
	*p = sp ? sp + 1 : end;
	return *len == 0 ? -1 : 0;
}

static int parse_line(char *line, size_t len, unsigned no, void *arg, char *err, size_t cap)
{
	struct sl_users *out = arg;
	const char *p = line, *end = line + len, *f[6];
	size_t fl[6];
	for (int i = 0; i < 6; i++)
		if (field(&p, end, &f[i], &fl[i]) < 0)
			return sl_table_file_line_error(
			        err, cap, no, "expected NAME SCRAM-SHA-256 ITERATIONS SALT STORED_KEY SERVER_KEY");
	if (p != end)
		return sl_table_file_line_error(err, cap, no, "more than six fields");
	char name[SL_USER_NAME_BYTES_MAX + 1];
	if (fl[0] > SL_USER_NAME_BYTES_MAX)
		return sl_table_file_line_error(err, cap, no, "user name longer than 64 characters");
	memcpy(name, f[0], fl[0]);
	name[fl[0]] = '\0';
	if (sl_user_name_check(name) < 0)
		return sl_table_file_line_error(err, cap, no,
		                                "user name must be 1 to 64 characters of [A-Za-z0-9._@-]");
	if (fl[1] != strlen(SL_SCRAM_MECHANISM) || memcmp(f[1], SL_SCRAM_MECHANISM, fl[1]) != 0)
		return sl_table_file_line_error(err, cap, no, "mechanism must be SCRAM-SHA-256");
	struct sl_scram_verifier v;
	memset(&v, 0, sizeof(v));
	uint64_t it = 0;
	for (size_t i = 0; i < fl[2]; i++) {
		if (f[2][i] < '0' || f[2][i] > '9' || it > SL_SCRAM_ITERATIONS_MAX)
			return sl_table_file_line_error(err, cap, no,
			                                "iterations must be a number from 4096 to 1000000");
		it = it * 10 + (uint64_t)(f[2][i] - '0');
	}
	if (it < SL_SCRAM_ITERATIONS_MIN || it > SL_SCRAM_ITERATIONS_MAX)
		return sl_table_file_line_error(err, cap, no, "iterations must be a number from 4096 to 1000000");
	v.iterations = (uint32_t)it;
	int n = sl_base64_decode(f[3], fl[3], v.salt, sizeof(v.salt));
	if (n <= 0)
		return sl_table_file_line_error(err, cap, no, "salt must be base64 of 1 to 64 bytes");
	v.salt_bytes = (uint32_t)n;
	if (sl_base64_decode(f[4], fl[4], v.stored_key, sizeof(v.stored_key)) != SL_SCRAM_KEY_BYTES ||
	    sl_base64_decode(f[5], fl[5], v.server_key, sizeof(v.server_key)) != SL_SCRAM_KEY_BYTES)
		return sl_table_file_line_error(err, cap, no, "stored and server keys must be base64 of 32 bytes");
	if (sl_users_find(out, name) != NULL)
		return sl_table_file_line_error(err, cap, no, "user listed twice");
	int rc = sl_users_put(out, name, &v, NULL);
	if (rc == -E2BIG) {
		snprintf(err, cap, "line %u: more than %d users", no, SL_USERS_MAX);
		return rc;
	}
	return rc;
}

int sl_users_parse(const char *text, size_t len, struct sl_users *out, char *err, size_t err_cap)
{
	memset(out, 0, sizeof(*out));
	int rc = sl_table_file_lines(text, len, "a users file", LINE_BYTES_MAX, parse_line, out, err, err_cap);
	if (rc < 0)
		sl_users_free(out);
	return rc;
}

static size_t format_line(const void *table, uint32_t index, char *line, size_t line_bytes)
{
	const struct sl_user *x = &((const struct sl_users *)table)->items[index];
	char salt[SL_BASE64_ENCODED_BYTES(SL_SCRAM_SALT_BYTES_MAX) + 1];
	char stored[SL_BASE64_ENCODED_BYTES(SL_SCRAM_KEY_BYTES) + 1];
	char server[SL_BASE64_ENCODED_BYTES(SL_SCRAM_KEY_BYTES) + 1];
	sl_base64_encode(x->verifier.salt, x->verifier.salt_bytes, salt, sizeof(salt));
	sl_base64_encode(x->verifier.stored_key, SL_SCRAM_KEY_BYTES, stored, sizeof(stored));
	sl_base64_encode(x->verifier.server_key, SL_SCRAM_KEY_BYTES, server, sizeof(server));
	return (size_t)snprintf(line, line_bytes, "%s %s %" PRIu32 " %s %s %s\n", x->name, SL_SCRAM_MECHANISM,
	                        x->verifier.iterations, salt, stored, server);
}

int sl_users_format(const struct sl_users *u, char **text_out, size_t *len_out)
{
	return sl_table_file_format(HEADER, u, u->count, LINE_BYTES_MAX, format_line, text_out, len_out);
}

/* ---- files ---- */

int sl_security_dir_make(const char *data_dir)
{
	char dir[SL_PATH_BYTES_MAX];
	if (snprintf(dir, sizeof(dir), "%s/%s", data_dir, SL_SECURITY_DIR) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	int rc = sl_fs_mkdir_p(dir);
	if (rc < 0)
		return rc;
	return chmod(dir, 0700) < 0 ? -errno : 0;
}

static int parse_table(const char *text, size_t len, void *table, char *err, size_t err_cap)
{
	return sl_users_parse(text, len, table, err, err_cap);
}

int sl_users_load(const char *data_dir, struct sl_users *out, char *err, size_t err_cap)
{
	char path[SL_PATH_BYTES_MAX];
	memset(out, 0, sizeof(*out));
	if (sl_table_file_path(data_dir, SL_USERS_FILE, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return sl_table_file_load(path, SL_USERS_FILE_BYTES_MAX, parse_table, out, err, err_cap);
}

int sl_users_save(const char *data_dir, const struct sl_users *u)
{
	char *text;
	size_t len;
	int rc = sl_users_format(u, &text, &len);
	if (rc < 0)
		return rc;
	rc = sl_table_file_save(data_dir, SL_USERS_FILE, text, len);
	free(text);
	return rc;
}
