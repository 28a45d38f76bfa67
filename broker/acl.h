/* Who may do what: the ACL model, the check every request goes through when authentication is on, and the store
 * DATA/security/acls. Plain data and files, no libuv: dispatch.c asks sl_acls_allows, the security handlers
 * change the table, and tests/unit/test_acl.c holds it to the rules below.
 *
 * An ACL grants one principal (a user, a certificate's CN, or "*": every authenticated principal) one operation on
 * topics, groups or the cluster:
 *
 *   resource  operations                                  names
 *   topic     produce consume describe alter delete       a topic name, a prefix of names (--prefix), or "*"
 *   group     read describe delete reset                  a group name, a prefix, or "*"
 *   cluster   admin (create topics, users and ACLs)       none
 *
 * Rules, in the order sl_acls_allows applies them:
 *   1. Nothing is allowed that no ACL grants (default deny). Super users are let through before the check
 *      (broker/security.c), never by an ACL.
 *   2. An ACL matches a request when its principal is the request's or "*", its resource type is the request's,
 *      and its name equals the request's name, is "*", or (with prefix) starts the request's name.
 *   3. It allows the request when its operation is the one asked, or the one asked is describe and the ACL's is
 *      any other operation on the same resource type: who may produce to or consume a topic may see it exists,
 *      as in Kafka.
 *
 * File format, text, one ACL per line, fields separated by one space, each line ending in '\n':
 *
 *   # a comment; blank lines are ignored
 *   PRINCIPAL RESOURCE PATTERN NAME OP
 *   alice topic literal orders produce
 *   billing topic prefix billing. consume
 *   * group literal * describe
 *   ops cluster literal - admin
 *
 *   PRINCIPAL  a user name (proto/users.h sl_user_name_check) or "*"
 *   RESOURCE   topic, group or cluster;  PATTERN literal or prefix;  OP one of the resource's operations
 *   NAME       1 to 200 characters of [A-Za-z0-9._-], or "*"; for cluster always "-"
 *
 * Invariants:
 *   1. No two ACLs are equal; in memory they are sorted (principal, resource, name, pattern, op), so the file is
 *      written in a stable order.
 *   2. A file breaking any rule is refused as a whole, with its line number (the broker does not start with half
 *      its permissions).
 *   3. At most SL_ACLS_MAX ACLs. */
#ifndef SL_BROKER_ACL_H
#define SL_BROKER_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/users.h"

#define SL_ACLS_FILE          "acls"
#define SL_ACL_NAME_BYTES_MAX 200
/* Far more than a broker's real permissions, and a bound on the per-request scan when the session cache misses. */
#define SL_ACLS_MAX           10000
#define SL_ACL_ANY            "*"

enum sl_acl_resource { SL_ACL_TOPIC = 0, SL_ACL_GROUP = 1, SL_ACL_CLUSTER = 2 };

/* One bit each; which bits a resource type has is in the table of acl.c. */
enum sl_acl_op {
	SL_ACL_PRODUCE = 1 << 0,
	SL_ACL_CONSUME = 1 << 1,
	SL_ACL_DESCRIBE = 1 << 2,
	SL_ACL_ALTER = 1 << 3,
	SL_ACL_DELETE = 1 << 4,
	SL_ACL_READ = 1 << 5,
	SL_ACL_RESET = 1 << 6,
	SL_ACL_ADMIN = 1 << 7,
};

struct sl_acl {
	char principal[SL_USER_NAME_BYTES_MAX + 1];
	enum sl_acl_resource resource;
	int prefix;
	enum sl_acl_op op;
	char name[SL_ACL_NAME_BYTES_MAX + 1]; /* "" for cluster */
};

struct sl_acls {
	struct sl_acl *items; /* sorted (invariant 1) */
	uint32_t count;
	uint32_t cap;
};

/* "topic", "group", "cluster" and back; parse returns 0 or -EINVAL. */
const char *sl_acl_resource_name(enum sl_acl_resource r);
int sl_acl_resource_parse(const char *s, enum sl_acl_resource *out);
/* An operation's name, and the operation of a name for resource type r: -EINVAL when r has no such operation
 * (err then lists those it has). */
const char *sl_acl_op_name(enum sl_acl_op op);
int sl_acl_op_parse(enum sl_acl_resource r, const char *s, enum sl_acl_op *out, char *err, size_t err_cap);
/* Check one ACL against the rules of the format (principal, name for its resource, operation for its resource).
 * Returns 0, or -EINVAL with the reason in err. */
int sl_acl_check(const struct sl_acl *a, char *err, size_t err_cap);

/* Rules 1 to 3: 1 when some ACL allows principal op on the resource named name (ignored for cluster). */
int sl_acls_allows(const struct sl_acls *acls, const char *principal, enum sl_acl_resource r, const char *name,
                   enum sl_acl_op op);

/* Add a (checked with sl_acl_check first). *created_out 0 when it was already there. Returns 0, -EINVAL, -E2BIG
 * (invariant 3), -ENOMEM. */
int sl_acls_add(struct sl_acls *acls, const struct sl_acl *a, int *created_out);
/* Remove the ACL equal to a. Returns 0 or -ENOENT. */
int sl_acls_remove(struct sl_acls *acls, const struct sl_acl *a);
int sl_acls_copy(const struct sl_acls *from, struct sl_acls *to);
void sl_acls_free(struct sl_acls *acls);

/* The file's text and back (invariant 2: -EINVAL with "line N: what" in err). */
int sl_acls_parse(const char *text, size_t len, struct sl_acls *out, char *err, size_t err_cap);
int sl_acls_format(const struct sl_acls *acls, char **text_out, size_t *len_out);
/* DATA/security/acls: a missing file is no ACLs. Blocking: call at start or off the loop. */
int sl_acls_load(const char *data_dir, struct sl_acls *out, char *err, size_t err_cap);
int sl_acls_save(const char *data_dir, const struct sl_acls *acls);

#endif
