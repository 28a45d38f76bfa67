/* Users and ACLs over the wire: the admin calls of synclog.h's "users and ACLs" section. A user's verifier is
 * computed here (proto/scram.h), so the broker only ever receives salted keys. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/client/client_impl.h"
#include "proto/scram.h"

int sl_user_set_password(struct sl_conn *c, const char *name, const char *password, uint32_t iterations,
                         bool *created_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__UserUpsertRequest body = SYNCLOG__USER_UPSERT_REQUEST__INIT;
	Synclog__ScramCredential cred = SYNCLOG__SCRAM_CREDENTIAL__INIT;
	Synclog__Response *resp;
	struct sl_scram_verifier v;
	char what[SL_PRINCIPAL_BYTES_MAX + 32];
	int rc;

	if (iterations == 0)
		iterations = SL_SCRAM_ITERATIONS_DEFAULT;
	rc = sl_scram_verifier_new(password, strlen(password), iterations, &v);
	if (rc != 0) {
		sl_conn_set_error(c, "cannot compute the verifier of user '%s': %s", name,
		                  rc == -EINVAL ? "iterations must be 4096 to 1000000" : "the crypto library failed");
		return rc;
	}
	cred.iterations = v.iterations;
	cred.salt.data = v.salt;
	cred.salt.len = v.salt_bytes;
	cred.stored_key.data = v.stored_key;
	cred.stored_key.len = sizeof(v.stored_key);
	cred.server_key.data = v.server_key;
	cred.server_key.len = sizeof(v.server_key);
	body.name = (char *)name;
	body.mechanism = SL_SCRAM_MECHANISM;
	body.credential = &cred;
	req.body_case = SYNCLOG__REQUEST__BODY_USER_UPSERT;
	req.user_upsert = &body;
	snprintf(what, sizeof(what), "add user '%s'", name);
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_USER_UPSERT, what, &resp);
	OPENSSL_cleanse(&v, sizeof(v));
	if (rc == 0 && created_out != NULL)
		*created_out = resp->user_upsert->created;
	return rc;
}

int sl_user_delete(struct sl_conn *c, const char *name)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__UserDeleteRequest body = SYNCLOG__USER_DELETE_REQUEST__INIT;
	Synclog__Response *resp;
	char what[SL_PRINCIPAL_BYTES_MAX + 32];

	body.name = (char *)name;
	req.body_case = SYNCLOG__REQUEST__BODY_USER_DELETE;
	req.user_delete = &body;
	snprintf(what, sizeof(what), "delete user '%s'", name);
	return sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_USER_DELETE, what, &resp);
}

int sl_user_list(struct sl_conn *c, struct sl_user_info **users_out, uint32_t *count_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ListUsersRequest body = SYNCLOG__LIST_USERS_REQUEST__INIT;
	Synclog__Response *resp;
	struct sl_user_info *users;
	size_t n;
	int rc;

	req.body_case = SYNCLOG__REQUEST__BODY_LIST_USERS;
	req.list_users = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_LIST_USERS, "list users", &resp);
	if (rc != 0)
		return rc;
	n = resp->list_users->n_users;
	users = calloc(n ? n : 1, sizeof(*users));
	if (users == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const Synclog__UserInfo *u = resp->list_users->users[i];

		snprintf(users[i].name, sizeof(users[i].name), "%s", u->name ? u->name : "");
		users[i].iterations = u->iterations;
		users[i].super_user = u->super_user;
	}
	*users_out = users;
	*count_out = (uint32_t)n;
	return 0;
}

static void acl_to_wire(const struct sl_acl_entry *a, Synclog__Acl *w)
{
	synclog__acl__init(w);
	w->principal = (char *)a->principal;
	w->resource = (char *)a->resource;
	w->name = (char *)a->name;
	w->prefix = a->prefix;
	w->op = (char *)a->op;
}

int sl_acl_add(struct sl_conn *c, const struct sl_acl_entry *acl, bool *created_out, bool *enforced_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__AclAddRequest body = SYNCLOG__ACL_ADD_REQUEST__INIT;
	Synclog__Acl wire;
	Synclog__Response *resp;
	int rc;

	acl_to_wire(acl, &wire);
	body.acl = &wire;
	req.body_case = SYNCLOG__REQUEST__BODY_ACL_ADD;
	req.acl_add = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_ACL_ADD, "add ACL", &resp);
	if (rc != 0)
		return rc;
	if (created_out != NULL)
		*created_out = resp->acl_add->created;
	if (enforced_out != NULL)
		*enforced_out = resp->acl_add->authorization_enabled;
	return 0;
}

int sl_acl_remove(struct sl_conn *c, const struct sl_acl_entry *acl, uint32_t *removed_out, bool *enforced_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__AclRemoveRequest body = SYNCLOG__ACL_REMOVE_REQUEST__INIT;
	Synclog__Acl wire;
	Synclog__Response *resp;
	int rc;

	acl_to_wire(acl, &wire);
	body.acl = &wire;
	req.body_case = SYNCLOG__REQUEST__BODY_ACL_REMOVE;
	req.acl_remove = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_ACL_REMOVE, "remove ACL", &resp);
	if (rc != 0)
		return rc;
	if (removed_out != NULL)
		*removed_out = resp->acl_remove->removed;
	if (enforced_out != NULL)
		*enforced_out = resp->acl_remove->authorization_enabled;
	return 0;
}

int sl_acl_list(struct sl_conn *c, const char *principal, struct sl_acl_entry **acls_out, uint32_t *count_out,
                bool *enforced_out)
{
	Synclog__Request req = SYNCLOG__REQUEST__INIT;
	Synclog__ListAclsRequest body = SYNCLOG__LIST_ACLS_REQUEST__INIT;
	Synclog__Response *resp;
	struct sl_acl_entry *acls;
	size_t n;
	int rc;

	body.principal = (char *)(principal ? principal : "");
	req.body_case = SYNCLOG__REQUEST__BODY_LIST_ACLS;
	req.list_acls = &body;
	rc = sl_conn_request(c, &req, SYNCLOG__RESPONSE__BODY_LIST_ACLS, "list ACLs", &resp);
	if (rc != 0)
		return rc;
	n = resp->list_acls->n_acls;
	acls = calloc(n ? n : 1, sizeof(*acls));
	if (acls == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const Synclog__Acl *a = resp->list_acls->acls[i];

		snprintf(acls[i].principal, sizeof(acls[i].principal), "%s", a->principal ? a->principal : "");
		snprintf(acls[i].resource, sizeof(acls[i].resource), "%s", a->resource ? a->resource : "");
		snprintf(acls[i].name, sizeof(acls[i].name), "%s", a->name ? a->name : "");
		snprintf(acls[i].op, sizeof(acls[i].op), "%s", a->op ? a->op : "");
		acls[i].prefix = a->prefix;
	}
	*acls_out = acls;
	*count_out = (uint32_t)n;
	if (enforced_out != NULL)
		*enforced_out = resp->list_acls->authorization_enabled;
	return 0;
}
