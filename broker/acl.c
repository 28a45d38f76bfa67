/* ACLs: names, checks, the table and its file; see acl.h for the rules and the format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"
#include "proto/base/fs.h"
#include "proto/base/sorted.h"
#include "proto/table_file.h"

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

static int compare(const void *item, const void *key)
{
	const struct sl_acl *a = item, *b = key;
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
	return sl_sorted_search(acls->items, acls->count, sizeof(acls->items[0]), a, found, compare);
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
	struct sl_acl *items = sl_sorted_open_slot(acls->items, &acls->count, &acls->cap, sizeof(acls->items[0]), i);
	if (items == NULL)
		return -ENOMEM;
	acls->items = items;
	acls->items[i] = *a;
	return 0;
}

int sl_acls_remove(struct sl_acls *acls, const struct sl_acl *a)
{
	return sl_sorted_remove(acls->items, &acls->count, sizeof(acls->items[0]), a, compare);
}

int sl_acls_copy(const struct sl_acls *from, struct sl_acls *to)
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

void sl_acls_free(struct sl_acls *acls)
{
	free(acls->items);
	memset(acls, 0, sizeof(*acls));
}

/* ---- the file ---- */

static int parse_line(char *line, size_t len, unsigned no, void *arg, char *err, size_t cap)
{
	struct sl_acls *out = arg;
	(void)len;
	char *f[5], *save = NULL;
	int n = 0;
	for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		if (n == 5)
			return sl_table_file_line_error(err, cap, no, "more than five fields");
		f[n++] = t;
	}
	if (n != 5)
		return sl_table_file_line_error(err, cap, no, "expected PRINCIPAL RESOURCE PATTERN NAME OP");
	struct sl_acl a;
	memset(&a, 0, sizeof(a));
	if (strlen(f[0]) > SL_USER_NAME_BYTES_MAX)
		return sl_table_file_line_error(err, cap, no, "principal longer than 64 characters");
	snprintf(a.principal, sizeof(a.principal), "%s", f[0]);
	if (sl_acl_resource_parse(f[1], &a.resource) < 0)
		return sl_table_file_line_error(err, cap, no, "resource must be topic, group or cluster");
	if (strcmp(f[2], "literal") == 0)
		a.prefix = 0;
	else if (strcmp(f[2], "prefix") == 0)
		a.prefix = 1;
	else
		return sl_table_file_line_error(err, cap, no, "pattern must be literal or prefix");
	if (a.resource == SL_ACL_CLUSTER) {
		if (strcmp(f[3], "-") != 0)
			return sl_table_file_line_error(err, cap, no, "a cluster ACL's name is '-'");
	} else {
		if (strlen(f[3]) > SL_ACL_NAME_BYTES_MAX)
			return sl_table_file_line_error(err, cap, no, "name longer than 200 characters");
		snprintf(a.name, sizeof(a.name), "%s", f[3]);
	}
	char why[256];
	if (sl_acl_op_parse(a.resource, f[4], &a.op, why, sizeof(why)) < 0 || sl_acl_check(&a, why, sizeof(why)) < 0)
		return sl_table_file_line_error(err, cap, no, why);
	int created;
	int rc = sl_acls_add(out, &a, &created);
	if (rc == -E2BIG)
		return sl_table_file_line_error(err, cap, no, "more than 10000 ACLs");
	if (rc < 0)
		return rc;
	if (!created)
		return sl_table_file_line_error(err, cap, no, "ACL listed twice");
	return 0;
}

int sl_acls_parse(const char *text, size_t len, struct sl_acls *out, char *err, size_t err_cap)
{
	memset(out, 0, sizeof(*out));
	int rc = sl_table_file_lines(text, len, "an ACL file", LINE_BYTES_MAX, parse_line, out, err, err_cap);
	if (rc < 0)
		sl_acls_free(out);
	return rc;
}

static size_t format_line(const void *table, uint32_t index, char *line, size_t line_bytes)
{
	const struct sl_acl *a = &((const struct sl_acls *)table)->items[index];
	return (size_t)snprintf(line, line_bytes, "%s %s %s %s %s\n", a->principal, sl_acl_resource_name(a->resource),
	                        a->prefix ? "prefix" : "literal", a->resource == SL_ACL_CLUSTER ? "-" : a->name,
	                        sl_acl_op_name(a->op));
}

int sl_acls_format(const struct sl_acls *acls, char **text_out, size_t *len_out)
{
	return sl_table_file_format(HEADER, acls, acls->count, LINE_BYTES_MAX, format_line, text_out, len_out);
}

static int parse_table(const char *text, size_t len, void *table, char *err, size_t err_cap)
{
	return sl_acls_parse(text, len, table, err, err_cap);
}

int sl_acls_load(const char *data_dir, struct sl_acls *out, char *err, size_t err_cap)
{
	char path[SL_PATH_BYTES_MAX];
	memset(out, 0, sizeof(*out));
	if (sl_table_file_path(data_dir, SL_ACLS_FILE, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	/* SL_ACLS_MAX lines of at most LINE_BYTES_MAX, and the header. */
	return sl_table_file_load(path, (size_t)SL_ACLS_MAX * LINE_BYTES_MAX + 4095, parse_table, out, err, err_cap);
}

int sl_acls_save(const char *data_dir, const struct sl_acls *acls)
{
	char *text;
	size_t len;
	int rc = sl_acls_format(acls, &text, &len);
	if (rc < 0)
		return rc;
	rc = sl_table_file_save(data_dir, SL_ACLS_FILE, text, len);
	free(text);
	return rc;
}
