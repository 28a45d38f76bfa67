/* ACLs: names, checks, the table and its file; see acl.h for the rules and the format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"
#include "proto/base/fs.h"

#define HEADER                                                                                              \
	"# synclog ACLs: PRINCIPAL RESOURCE PATTERN NAME OP (broker/acl.h). Change them with `synclog acl " \
	"add|remove`;"                                                                                      \
	"\n# edit by hand only while synclogd is stopped.\n"
/* A principal, a resource, a pattern, a 200-character name and an operation, with room to spare. */
#define LINE_BYTES_MAX 512

static const struct {
	enum sl_acl_op op;
	const char *name;
	enum sl_acl_resource resource;
} ops[] = {
        {SL_ACL_PRODUCE, "produce", SL_ACL_TOPIC},   {SL_ACL_CONSUME, "consume", SL_ACL_TOPIC},
        {SL_ACL_DESCRIBE, "describe", SL_ACL_TOPIC}, {SL_ACL_ALTER, "alter", SL_ACL_TOPIC},
        {SL_ACL_DELETE, "delete", SL_ACL_TOPIC},     {SL_ACL_READ, "read", SL_ACL_GROUP},
        {SL_ACL_DESCRIBE, "describe", SL_ACL_GROUP}, {SL_ACL_DELETE, "delete", SL_ACL_GROUP},
        {SL_ACL_RESET, "reset", SL_ACL_GROUP},       {SL_ACL_ADMIN, "admin", SL_ACL_CLUSTER},
};

static const char *const resources[] = {"topic", "group", "cluster"};

const char *sl_acl_resource_name(enum sl_acl_resource r)
{
	return (unsigned)r < 3 ? resources[r] : "unknown";
}

int sl_acl_resource_parse(const char *s, enum sl_acl_resource *out)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, resources[i]) == 0) {
			*out = (enum sl_acl_resource)i;
			return 0;
		}
	return -EINVAL;
}

const char *sl_acl_op_name(enum sl_acl_op op)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].op == op)
			return ops[i].name;
	return "unknown";
}

static int op_of(enum sl_acl_resource r, enum sl_acl_op op)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].resource == r && ops[i].op == op)
			return 1;
	return 0;
}

static void ops_list(enum sl_acl_resource r, char *buf, size_t cap)
{
	size_t at = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && at < cap; i++)
		if (ops[i].resource == r)
			at += (size_t)snprintf(buf + at, cap - at, "%s%s", at ? ", " : "", ops[i].name);
}

int sl_acl_op_parse(enum sl_acl_resource r, const char *s, enum sl_acl_op *out, char *err, size_t err_cap)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].resource == r && strcmp(ops[i].name, s) == 0) {
			*out = ops[i].op;
			return 0;
		}
	char list[128];
	ops_list(r, list, sizeof(list));
	snprintf(err, err_cap, "a %s has no operation '%s' (it has: %s)", sl_acl_resource_name(r), s, list);
	return -EINVAL;
}

static int name_chars_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SL_ACL_NAME_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int sl_acl_check(const struct sl_acl *a, char *err, size_t err_cap)
{
	if (strcmp(a->principal, SL_ACL_ANY) != 0 && sl_user_name_check(a->principal) < 0) {
		snprintf(err, err_cap, "principal '%s' must be a user name (1 to 64 of [A-Za-z0-9._@-]) or '*'",
		         a->principal);
		return -EINVAL;
	}
	if ((unsigned)a->resource > SL_ACL_CLUSTER) {
		snprintf(err, err_cap, "unknown resource type");
		return -EINVAL;
	}
	if (!op_of(a->resource, a->op)) {
		char list[128];
		ops_list(a->resource, list, sizeof(list));
		snprintf(err, err_cap, "a %s has no operation '%s' (it has: %s)", sl_acl_resource_name(a->resource),
		         sl_acl_op_name(a->op), list);
		return -EINVAL;
	}
	if (a->resource == SL_ACL_CLUSTER) {
		if (a->name[0] != '\0' || a->prefix) {
			snprintf(err, err_cap, "the cluster has no name and no prefix");
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(a->name, SL_ACL_ANY) == 0) {
		if (a->prefix) {
			snprintf(err, err_cap, "'*' already means every %s: it takes no --prefix",
			         sl_acl_resource_name(a->resource));
			return -EINVAL;
		}
		return 0;
	}
	if (!name_chars_ok(a->name)) {
		snprintf(err, err_cap, "%s name '%s' must be 1 to 200 characters of [A-Za-z0-9._-], or '*'",
		         sl_acl_resource_name(a->resource), a->name);
		return -EINVAL;
	}
	return 0;
}

/* ---- the check ---- */

static int name_matches(const struct sl_acl *a, const char *name)
{
	if (a->resource == SL_ACL_CLUSTER || strcmp(a->name, SL_ACL_ANY) == 0)
		return 1;
	if (a->prefix)
		return strncmp(name, a->name, strlen(a->name)) == 0;
	return strcmp(name, a->name) == 0;
}

int sl_acls_allows(const struct sl_acls *acls, const char *principal, enum sl_acl_resource r, const char *name,
                   enum sl_acl_op op)
{
	for (uint32_t i = 0; i < acls->count; i++) {
		const struct sl_acl *a = &acls->items[i];
		if (a->resource != r || (a->op != op && op != SL_ACL_DESCRIBE))
			continue;
		if (strcmp(a->principal, principal) != 0 && strcmp(a->principal, SL_ACL_ANY) != 0)
			continue;
		if (name_matches(a, name))
			return 1;
	}
	return 0;
}

/* ---- the table ---- */

static int compare(const struct sl_acl *a, const struct sl_acl *b)
{
	int c = strcmp(a->principal, b->principal);
	if (c == 0)
		c = (int)a->resource - (int)b->resource;
	if (c == 0)
		c = strcmp(a->name, b->name);
	if (c == 0)
		c = a->prefix - b->prefix;
	if (c == 0)
		c = (int)a->op - (int)b->op;
	return c;
}

static uint32_t search(const struct sl_acls *acls, const struct sl_acl *a, int *found)
{
	uint32_t lo = 0, hi = acls->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = compare(&acls->items[mid], a);
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

int sl_acls_add(struct sl_acls *acls, const struct sl_acl *a, int *created_out)
{
	char err[256];
	int found;
	if (sl_acl_check(a, err, sizeof(err)) < 0)
		return -EINVAL;
	uint32_t i = search(acls, a, &found);
	if (created_out)
		*created_out = !found;
	if (found)
		return 0;
	if (acls->count >= SL_ACLS_MAX)
		return -E2BIG;
	if (acls->count == acls->cap) {
		uint32_t cap = acls->cap ? acls->cap * 2 : 16;
		struct sl_acl *p = realloc(acls->items, (size_t)cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		acls->items = p;
		acls->cap = cap;
	}
	memmove(&acls->items[i + 1], &acls->items[i], (size_t)(acls->count - i) * sizeof(acls->items[0]));
	acls->items[i] = *a;
	acls->count++;
	return 0;
}

int sl_acls_remove(struct sl_acls *acls, const struct sl_acl *a)
{
	int found;
	uint32_t i = search(acls, a, &found);
	if (!found)
		return -ENOENT;
	memmove(&acls->items[i], &acls->items[i + 1], (size_t)(acls->count - i - 1) * sizeof(acls->items[0]));
	acls->count--;
	return 0;
}

int sl_acls_copy(const struct sl_acls *from, struct sl_acls *to)
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

void sl_acls_free(struct sl_acls *acls)
{
	free(acls->items);
	memset(acls, 0, sizeof(*acls));
}

/* ---- the file ---- */

static int line_error(char *err, size_t cap, unsigned no, const char *what)
{
	snprintf(err, cap, "line %u: %s", no, what);
	return -EINVAL;
}

static int parse_line(char *line, struct sl_acls *out, unsigned no, char *err, size_t cap)
{
	char *f[5], *save = NULL;
	int n = 0;
	for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (n == 5)
			return line_error(err, cap, no, "more than five fields");
		f[n++] = t;
	}
	if (n != 5)
		return line_error(err, cap, no, "expected PRINCIPAL RESOURCE PATTERN NAME OP");
	struct sl_acl a;
	memset(&a, 0, sizeof(a));
	if (strlen(f[0]) > SL_USER_NAME_BYTES_MAX)
		return line_error(err, cap, no, "principal longer than 64 characters");
	snprintf(a.principal, sizeof(a.principal), "%s", f[0]);
	if (sl_acl_resource_parse(f[1], &a.resource) < 0)
		return line_error(err, cap, no, "resource must be topic, group or cluster");
	if (strcmp(f[2], "literal") == 0)
		a.prefix = 0;
	else if (strcmp(f[2], "prefix") == 0)
		a.prefix = 1;
	else
		return line_error(err, cap, no, "pattern must be literal or prefix");
	if (a.resource == SL_ACL_CLUSTER) {
		if (strcmp(f[3], "-") != 0)
			return line_error(err, cap, no, "a cluster ACL's name is '-'");
	} else {
		if (strlen(f[3]) > SL_ACL_NAME_BYTES_MAX)
			return line_error(err, cap, no, "name longer than 200 characters");
		snprintf(a.name, sizeof(a.name), "%s", f[3]);
	}
	char why[256];
	if (sl_acl_op_parse(a.resource, f[4], &a.op, why, sizeof(why)) < 0 || sl_acl_check(&a, why, sizeof(why)) < 0)
		return line_error(err, cap, no, why);
	int created;
	int rc = sl_acls_add(out, &a, &created);
	if (rc == -E2BIG)
		return line_error(err, cap, no, "more than 10000 ACLs");
	if (rc < 0)
		return rc;
	if (!created)
		return line_error(err, cap, no, "ACL listed twice");
	return 0;
}

int sl_acls_parse(const char *text, size_t len, struct sl_acls *out, char *err, size_t err_cap)
{
	memset(out, 0, sizeof(*out));
	const char *p = text, *end = text + len;
	unsigned no = 0;
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, err_cap, "the file holds a NUL byte: not an ACL file");
		return -EINVAL;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		char line[LINE_BYTES_MAX + 1];
		int rc = 0;
		no++;
		if (nl == NULL)
			rc = line_error(err, err_cap, no, "the last line has no newline: the file was cut short");
		else if (n > LINE_BYTES_MAX)
			rc = line_error(err, err_cap, no, "line longer than 512 bytes");
		else if (n > 0 && p[0] != '#') {
			memcpy(line, p, n);
			line[n] = '\0';
			rc = parse_line(line, out, no, err, err_cap);
		}
		if (rc < 0) {
			sl_acls_free(out);
			return rc;
		}
		p = nl + 1;
	}
	return 0;
}

int sl_acls_format(const struct sl_acls *acls, char **text_out, size_t *len_out)
{
	size_t cap = sizeof(HEADER) + (size_t)acls->count * LINE_BYTES_MAX;
	char *text = malloc(cap);
	if (text == NULL)
		return -ENOMEM;
	size_t len = (size_t)snprintf(text, cap, "%s", HEADER);
	for (uint32_t i = 0; i < acls->count; i++) {
		const struct sl_acl *a = &acls->items[i];
		len += (size_t)snprintf(text + len, cap - len, "%s %s %s %s %s\n", a->principal,
		                        sl_acl_resource_name(a->resource), a->prefix ? "prefix" : "literal",
		                        a->resource == SL_ACL_CLUSTER ? "-" : a->name, sl_acl_op_name(a->op));
	}
	*text_out = text;
	*len_out = len;
	return 0;
}

static int path_of(const char *data_dir, char *path, size_t cap)
{
	return snprintf(path, cap, "%s/%s/%s", data_dir, SL_SECURITY_DIR, SL_ACLS_FILE) >= (int)cap ? -ENAMETOOLONG : 0;
}

int sl_acls_load(const char *data_dir, struct sl_acls *out, char *err, size_t err_cap)
{
	char path[SL_PATH_BYTES_MAX];
	memset(out, 0, sizeof(*out));
	if (path_of(data_dir, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	/* SL_ACLS_MAX lines of at most LINE_BYTES_MAX, and the header. */
	size_t cap = (size_t)SL_ACLS_MAX * LINE_BYTES_MAX + 4096;
	char *text = malloc(cap);
	if (text == NULL)
		return -ENOMEM;
	size_t len = 0;
	int rc = sl_fs_read_small(path, text, cap, &len);
	if (rc == -ENOENT) {
		free(text);
		return 0;
	}
	if (rc < 0) {
		snprintf(err, err_cap, "cannot read %s: %s", path, strerror(-rc));
		free(text);
		return rc;
	}
	char why[320];
	rc = sl_acls_parse(text, len, out, why, sizeof(why));
	free(text);
	if (rc < 0)
		snprintf(err, err_cap, "%s: %s", path, why);
	return rc;
}

int sl_acls_save(const char *data_dir, const struct sl_acls *acls)
{
	char path[SL_PATH_BYTES_MAX];
	if (path_of(data_dir, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	int rc = sl_security_dir_make(data_dir);
	if (rc < 0)
		return rc;
	char *text;
	size_t len;
	rc = sl_acls_format(acls, &text, &len);
	if (rc < 0)
		return rc;
	rc = sl_fs_replace_atomic(path, text, len);
	free(text);
	return rc;
}
