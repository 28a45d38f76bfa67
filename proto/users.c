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

/* Index of name, or of where it would go (*found 0). */
static uint32_t search(const struct sl_users *u, const char *name, int *found)
{
	uint32_t lo = 0, hi = u->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(u->items[mid].name, name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
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
	if (u->count == u->cap) {
		uint32_t cap = u->cap ? u->cap * 2 : 16;
		struct sl_user *p = realloc(u->items, (size_t)cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		u->items = p;
		u->cap = cap;
	}
	memmove(&u->items[i + 1], &u->items[i], (size_t)(u->count - i) * sizeof(u->items[0]));
	memset(&u->items[i], 0, sizeof(u->items[i]));
	snprintf(u->items[i].name, sizeof(u->items[i].name), "%s", name);
	u->items[i].verifier = *v;
	u->count++;
	return 0;
}

int sl_users_remove(struct sl_users *u, const char *name)
{
	int found;
	uint32_t i = search(u, name, &found);
	if (!found)
		return -ENOENT;
	memmove(&u->items[i], &u->items[i + 1], (size_t)(u->count - i - 1) * sizeof(u->items[0]));
	u->count--;
	return 0;
}

int sl_users_copy(const struct sl_users *from, struct sl_users *to)
{
	memset(to, 0, sizeof(*to));
	if (from->count == 0)
		return 0;
	to->items = malloc((size_t)from->count * sizeof(to->items[0]));
	if (to->items == NULL)
		return -ENOMEM;
	memcpy(to->items, from->items, (size_t)from->count * sizeof(to->items[0]));
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

static int line_error(char *err, size_t cap, unsigned line, const char *what)
{
	snprintf(err, cap, "line %u: %s", line, what);
	return -EINVAL;
}

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

static int parse_line(const char *line, size_t len, struct sl_users *out, unsigned no, char *err, size_t cap)
{
	const char *p = line, *end = line + len, *f[6];
	size_t fl[6];
	for (int i = 0; i < 6; i++)
		if (field(&p, end, &f[i], &fl[i]) < 0)
			return line_error(err, cap, no,
			                  "expected NAME SCRAM-SHA-256 ITERATIONS SALT STORED_KEY SERVER_KEY");
	if (p != end)
		return line_error(err, cap, no, "more than six fields");
	char name[SL_USER_NAME_BYTES_MAX + 1];
	if (fl[0] > SL_USER_NAME_BYTES_MAX)
		return line_error(err, cap, no, "user name longer than 64 characters");
	memcpy(name, f[0], fl[0]);
	name[fl[0]] = '\0';
	if (sl_user_name_check(name) < 0)
		return line_error(err, cap, no, "user name must be 1 to 64 characters of [A-Za-z0-9._@-]");
	if (fl[1] != strlen(SL_SCRAM_MECHANISM) || memcmp(f[1], SL_SCRAM_MECHANISM, fl[1]) != 0)
		return line_error(err, cap, no, "mechanism must be SCRAM-SHA-256");
	struct sl_scram_verifier v;
	memset(&v, 0, sizeof(v));
	uint64_t it = 0;
	for (size_t i = 0; i < fl[2]; i++) {
		if (f[2][i] < '0' || f[2][i] > '9' || it > SL_SCRAM_ITERATIONS_MAX)
			return line_error(err, cap, no, "iterations must be a number from 4096 to 1000000");
		it = it * 10 + (uint64_t)(f[2][i] - '0');
	}
	if (it < SL_SCRAM_ITERATIONS_MIN || it > SL_SCRAM_ITERATIONS_MAX)
		return line_error(err, cap, no, "iterations must be a number from 4096 to 1000000");
	v.iterations = (uint32_t)it;
	int n = sl_base64_decode(f[3], fl[3], v.salt, sizeof(v.salt));
	if (n <= 0)
		return line_error(err, cap, no, "salt must be base64 of 1 to 64 bytes");
	v.salt_bytes = (uint32_t)n;
	if (sl_base64_decode(f[4], fl[4], v.stored_key, sizeof(v.stored_key)) != SL_SCRAM_KEY_BYTES ||
	    sl_base64_decode(f[5], fl[5], v.server_key, sizeof(v.server_key)) != SL_SCRAM_KEY_BYTES)
		return line_error(err, cap, no, "stored and server keys must be base64 of 32 bytes");
	if (sl_users_find(out, name) != NULL)
		return line_error(err, cap, no, "user listed twice");
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
	const char *p = text, *end = text + len;
	unsigned no = 0;
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, err_cap, "the file holds a NUL byte: not a users file");
		return -EINVAL;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		no++;
		if (nl == NULL) {
			sl_users_free(out);
			return line_error(err, err_cap, no, "the last line has no newline: the file was cut short");
		}
		if (n > LINE_BYTES_MAX) {
			sl_users_free(out);
			return line_error(err, err_cap, no, "line longer than 512 bytes");
		}
		if (n > 0 && p[0] != '#') {
			int rc = parse_line(p, n, out, no, err, err_cap);
			if (rc < 0) {
				sl_users_free(out);
				return rc;
			}
		}
		p = nl + 1;
	}
	return 0;
}

int sl_users_format(const struct sl_users *u, char **text_out, size_t *len_out)
{
	size_t cap = sizeof(HEADER) + (size_t)u->count * LINE_BYTES_MAX;
	char *text = malloc(cap);
	if (text == NULL)
		return -ENOMEM;
	size_t len = (size_t)snprintf(text, cap, "%s", HEADER);
	for (uint32_t i = 0; i < u->count; i++) {
		const struct sl_user *x = &u->items[i];
		char salt[SL_BASE64_ENCODED_BYTES(SL_SCRAM_SALT_BYTES_MAX) + 1];
		char stored[SL_BASE64_ENCODED_BYTES(SL_SCRAM_KEY_BYTES) + 1];
		char server[SL_BASE64_ENCODED_BYTES(SL_SCRAM_KEY_BYTES) + 1];
		sl_base64_encode(x->verifier.salt, x->verifier.salt_bytes, salt, sizeof(salt));
		sl_base64_encode(x->verifier.stored_key, SL_SCRAM_KEY_BYTES, stored, sizeof(stored));
		sl_base64_encode(x->verifier.server_key, SL_SCRAM_KEY_BYTES, server, sizeof(server));
		len += (size_t)snprintf(text + len, cap - len, "%s %s %" PRIu32 " %s %s %s\n", x->name,
		                        SL_SCRAM_MECHANISM, x->verifier.iterations, salt, stored, server);
	}
	*text_out = text;
	*len_out = len;
	return 0;
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

int sl_users_load(const char *data_dir, struct sl_users *out, char *err, size_t err_cap)
{
	char path[SL_PATH_BYTES_MAX];
	memset(out, 0, sizeof(*out));
	if (snprintf(path, sizeof(path), "%s/%s/%s", data_dir, SL_SECURITY_DIR, SL_USERS_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	char *text = malloc(SL_USERS_FILE_BYTES_MAX + 1);
	if (text == NULL)
		return -ENOMEM;
	size_t len = 0;
	int rc = sl_fs_read_small(path, text, SL_USERS_FILE_BYTES_MAX + 1, &len);
	if (rc == -ENOENT) {
		free(text);
		return 0;
	}
	if (rc < 0) {
		snprintf(err, err_cap, "cannot read %s: %s", path, rc == -EFBIG ? "larger than 4 MiB" : strerror(-rc));
		free(text);
		return rc;
	}
	char why[256];
	rc = sl_users_parse(text, len, out, why, sizeof(why));
	free(text);
	if (rc < 0)
		snprintf(err, err_cap, "%s: %s", path, why);
	return rc;
}

int sl_users_save(const char *data_dir, const struct sl_users *u)
{
	char path[SL_PATH_BYTES_MAX];
	if (snprintf(path, sizeof(path), "%s/%s/%s", data_dir, SL_SECURITY_DIR, SL_USERS_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	int rc = sl_security_dir_make(data_dir);
	if (rc < 0)
		return rc;
	char *text;
	size_t len;
	rc = sl_users_format(u, &text, &len);
	if (rc < 0)
		return rc;
	rc = sl_fs_replace_atomic(path, text, len);
	free(text);
	return rc;
}
