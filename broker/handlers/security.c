/* Requests about who may do what: Authenticate (the SCRAM-SHA-256 exchange of proto/scram.h, after Hello), users
 * (add or replace, delete, list) and ACLs (add, remove, list). Who may send them is decided before they get here
 * (broker/security.c, sl_security_check).
 *
 * Changes of the users and ACL files go through one queue, in arrival order, one at a time:
 *
 *   handler: validate -> enqueue --(none in flight)--> write_next: copy the table, apply the change
 *     -> no change (ACL already there, ...): answer, write_next
 *     -> save the copy on the thread pool (sl_users_save / sl_acls_save: atomic replace) -> write_done_cb:
 *        on success the copy replaces the table the broker uses, then answer; on failure the old one stays
 *        and the request fails with STORAGE_ERROR; then write_next.
 *
 * So a change is in effect (new logins see the user, requests meet the ACL) only once it is durable, and two
 * administrators changing at once never lose each other's change. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/handlers/handlers.h"
#include "proto/base/assert.h"
#include "proto/base/slog.h"

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* ---- Authenticate ---- */

static void auth_refuse(struct sl_req *req, const char *user, const char *why, const uint8_t *msg, size_t len)
{
	Synclog__AuthenticateResponse *r = req->resp.authenticate;
	sl_security_auth_failed(req->srv, req->session, user, why);
	sl_req_fail(req, SYNCLOG__ERROR_CODE__AUTHENTICATION_FAILED, "authentication of user '%.64s' failed: %s", user,
	            why);
	if (msg != NULL && len > 0) {
		uint8_t *copy = sl_req_alloc(req, len);
		if (copy) {
			memcpy(copy, msg, len);
			r->message.data = copy;
			r->message.len = len;
		}
	}
	/* A client that failed once starts again on a new connection (and meets the connection rate limit). */
	req->session->close_after_write = 1;
	sl_security_session_end(req->srv, req->session);
	sl_req_respond(req);
}

void sl_handle_authenticate(struct sl_req *req)
{
	struct sl_security *sec = req->srv->security;
	struct sl_session_security *ss = &req->session->sec;
	const Synclog__AuthenticateRequest *a = req->msg->authenticate;
	Synclog__AuthenticateResponse *r = sl_req_alloc(req, sizeof(*r));
	char *out = sl_req_alloc(req, SL_SCRAM_MESSAGE_BYTES_MAX);
	if (r == NULL || out == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__authenticate_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_AUTHENTICATE;
	req->resp.authenticate = r;
	const char *why = NULL;
	if (strcmp(or_empty(a->mechanism), SL_SCRAM_MECHANISM) != 0) {
		auth_refuse(req, "", "this broker speaks SCRAM-SHA-256 only", NULL, 0);
		return;
	}
	if (ss->authenticated && ss->scram == NULL && strcmp(or_empty(ss->mechanism), SL_SCRAM_MECHANISM) == 0) {
		auth_refuse(req, ss->principal, "the connection is authenticated already", NULL, 0);
		return;
	}
	size_t n = 0;
	if (ss->scram == NULL) {
		ss->scram = calloc(1, sizeof(*ss->scram));
		if (ss->scram == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
			sl_req_respond(req);
			return;
		}
		if (sl_scram_server_start(ss->scram, (const char *)a->message.data, a->message.len, &why) < 0) {
			auth_refuse(req, ss->scram->user, why, NULL, 0);
			return;
		}
		const struct sl_user *u = sl_users_find(&sec->users, ss->scram->user);
		if (sl_scram_server_first(ss->scram, u ? &u->verifier : NULL, sec->fake_key, NULL, out,
		                          SL_SCRAM_MESSAGE_BYTES_MAX, &n) < 0) {
			auth_refuse(req, ss->scram->user, "the broker could not compute its answer", NULL, 0);
			return;
		}
		r->message.data = (uint8_t *)out;
		r->message.len = n;
		sl_req_respond(req);
		return;
	}
	char user[SL_SCRAM_USER_BYTES_MAX + 1];
	snprintf(user, sizeof(user), "%s", ss->scram->user);
	int rc = sl_scram_server_final(ss->scram, (const char *)a->message.data, a->message.len, out,
	                               SL_SCRAM_MESSAGE_BYTES_MAX, &n, &why);
	if (rc < 0) {
		auth_refuse(req, user, rc == -EACCES ? "wrong password or unknown user" : why, (const uint8_t *)out, n);
		return;
	}
	memset(ss->scram, 0, sizeof(*ss->scram));
	free(ss->scram);
	ss->scram = NULL;
	char err[256];
	if (sl_security_session_authenticated(req->srv, req->session, user, SL_SCRAM_MECHANISM, err, sizeof(err)) < 0) {
		auth_refuse(req, user, err, NULL, 0);
		return;
	}
	r->message.data = (uint8_t *)out;
	r->message.len = n;
	r->done = 1;
	r->principal = ss->principal;
	sl_req_respond(req);
}

/* ---- the queue of file changes ---- */

enum write_kind { WRITE_USER_UPSERT, WRITE_USER_DELETE, WRITE_ACL_ADD, WRITE_ACL_REMOVE };

struct sl_security_write {
	struct sl_security_write *next;
	struct sl_req *req;
	enum write_kind kind;
	uv_work_t work;
	struct sl_scram_verifier verifier; /* user upsert */
	char name[SL_USER_NAME_BYTES_MAX + 1];
	struct sl_acl acl;     /* ACL add and remove */
	struct sl_users users; /* the new tables, saved on the thread pool */
	struct sl_acls acls;
	char data_dir[1024];
	int created;
	int status;
};

static void write_next(struct sl_security *sec);

static void write_free(struct sl_security_write *w)
{
	sl_users_free(&w->users);
	sl_acls_free(&w->acls);
	memset(&w->verifier, 0, sizeof(w->verifier));
	free(w);
}

static void write_work_cb(uv_work_t *work)
{
	struct sl_security_write *w = work->data;
	if (w->kind == WRITE_USER_UPSERT || w->kind == WRITE_USER_DELETE)
		w->status = sl_users_save(w->data_dir, &w->users);
	else
		w->status = sl_acls_save(w->data_dir, &w->acls);
}

/* The answer of a change, once in effect (or refused). */
static void write_answer(struct sl_security *sec, struct sl_security_write *w)
{
	struct sl_req *req = w->req;
	int enabled = sec->auth_enabled;
	if (w->status < 0 && req->resp.error == SYNCLOG__ERROR_CODE__NONE)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__STORAGE_ERROR,
		            "saving the %s file in %s/%s failed: %s; nothing changed",
		            w->kind <= WRITE_USER_DELETE ? "users" : "ACL", w->data_dir, SL_SECURITY_DIR,
		            strerror(-w->status));
	switch (w->kind) {
	case WRITE_USER_UPSERT: {
		Synclog__UserUpsertResponse *r = sl_req_alloc(req, sizeof(*r));
		if (r) {
			synclog__user_upsert_response__init(r);
			r->created = w->created;
			req->resp.body_case = SYNCLOG__RESPONSE__BODY_USER_UPSERT;
			req->resp.user_upsert = r;
		}
		break;
	}
	case WRITE_USER_DELETE: {
		static Synclog__UserDeleteResponse empty = SYNCLOG__USER_DELETE_RESPONSE__INIT;
		req->resp.body_case = SYNCLOG__RESPONSE__BODY_USER_DELETE;
		req->resp.user_delete = &empty;
		break;
	}
	case WRITE_ACL_ADD: {
		Synclog__AclAddResponse *r = sl_req_alloc(req, sizeof(*r));
		if (r) {
			synclog__acl_add_response__init(r);
			r->created = w->created;
			r->authorization_enabled = enabled;
			req->resp.body_case = SYNCLOG__RESPONSE__BODY_ACL_ADD;
			req->resp.acl_add = r;
		}
		break;
	}
	case WRITE_ACL_REMOVE: {
		Synclog__AclRemoveResponse *r = sl_req_alloc(req, sizeof(*r));
		if (r) {
			synclog__acl_remove_response__init(r);
			r->removed = w->created;
			r->authorization_enabled = enabled;
			req->resp.body_case = SYNCLOG__RESPONSE__BODY_ACL_REMOVE;
			req->resp.acl_remove = r;
		}
		break;
	}
	}
	sl_req_respond(req);
}

static void write_done_cb(uv_work_t *work, int status)
{
	struct sl_security_write *w = work->data;
	struct sl_security *sec = w->req->srv->security;
	if (status < 0) /* canceled before it ran */
		write_work_cb(work);
	sec->write_busy = 0;
	if (w->status == 0) {
		/* Durable: now in effect. */
		if (w->kind == WRITE_USER_UPSERT || w->kind == WRITE_USER_DELETE) {
			sl_users_free(&sec->users);
			sec->users = w->users;
			memset(&w->users, 0, sizeof(w->users));
		} else {
			sl_acls_free(&sec->acls);
			sec->acls = w->acls;
			memset(&w->acls, 0, sizeof(w->acls));
			sec->acl_generation++;
		}
	}
	write_answer(sec, w);
	write_free(w);
	write_next(sec);
}

/* Apply w's change to a copy of the table. Returns 1 when there is something to save, 0 when the request is
 * answered without a write (no change, or refused: its error is set). */
static int write_prepare(struct sl_security *sec, struct sl_security_write *w)
{
	struct sl_req *req = w->req;
	int rc;
	if (w->kind == WRITE_USER_UPSERT || w->kind == WRITE_USER_DELETE) {
		if (sl_users_copy(&sec->users, &w->users) < 0) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
			return 0;
		}
		if (w->kind == WRITE_USER_DELETE) {
			if (sl_users_remove(&w->users, w->name) < 0) {
				sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_USER,
				            "no user '%s' (see `synclog user list`)", w->name);
				return 0;
			}
			return 1;
		}
		rc = sl_users_put(&w->users, w->name, &w->verifier, &w->created);
		if (rc == -E2BIG)
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
			            "the broker has %d users, the most it keeps", SL_USERS_MAX);
		else if (rc < 0)
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		return rc == 0;
	}
	if (sl_acls_copy(&sec->acls, &w->acls) < 0) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		return 0;
	}
	if (w->kind == WRITE_ACL_REMOVE) {
		w->created = sl_acls_remove(&w->acls, &w->acl) == 0; /* the count removed: 0 or 1 */
		return w->created;
	}
	rc = sl_acls_add(&w->acls, &w->acl, &w->created);
	if (rc == -E2BIG)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "the broker has %d ACLs, the most it keeps",
		            SL_ACLS_MAX);
	else if (rc < 0)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
	return rc == 0 && w->created;
}

static void write_next(struct sl_security *sec)
{
	while (!sec->write_busy && sec->write_head != NULL) {
		struct sl_security_write *w = sec->write_head;
		sec->write_head = w->next;
		if (sec->write_head == NULL)
			sec->write_tail = NULL;
		if (!write_prepare(sec, w)) {
			write_answer(sec, w);
			write_free(w);
			continue;
		}
		sec->write_busy = 1;
		w->work.data = w;
		int rc = uv_queue_work(&sec->srv->loop, &w->work, write_work_cb, write_done_cb);
		SL_ASSERT(rc == 0);
	}
}

static void write_enqueue(struct sl_req *req, struct sl_security_write *w)
{
	struct sl_security *sec = req->srv->security;
	w->req = req;
	snprintf(w->data_dir, sizeof(w->data_dir), "%s", req->srv->cfg.data_dir);
	if (sec->write_tail)
		sec->write_tail->next = w;
	else
		sec->write_head = w;
	sec->write_tail = w;
	write_next(sec);
}

static struct sl_security_write *write_new(struct sl_req *req, enum write_kind kind)
{
	struct sl_security_write *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return NULL;
	}
	w->kind = kind;
	return w;
}

/* ---- users ---- */

static int user_name_ok(struct sl_req *req, const char *name)
{
	if (sl_user_name_check(name) == 0)
		return 1;
	sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
	            "invalid user name '%.64s': 1 to 64 characters of [A-Za-z0-9._@-]", name);
	sl_req_respond(req);
	return 0;
}

void sl_handle_user_upsert(struct sl_req *req)
{
	const Synclog__UserUpsertRequest *u = req->msg->user_upsert;
	const Synclog__ScramCredential *c = u->credential;
	if (!user_name_ok(req, or_empty(u->name)))
		return;
	if (strcmp(or_empty(u->mechanism), SL_SCRAM_MECHANISM) != 0 || c == NULL ||
	    c->iterations < SL_SCRAM_ITERATIONS_MIN || c->iterations > SL_SCRAM_ITERATIONS_MAX || c->salt.len == 0 ||
	    c->salt.len > SL_SCRAM_SALT_BYTES_MAX || c->stored_key.len != SL_SCRAM_KEY_BYTES ||
	    c->server_key.len != SL_SCRAM_KEY_BYTES) {
		sl_req_fail(
		        req, SYNCLOG__ERROR_CODE__INVALID_REQUEST,
		        "a user needs a SCRAM-SHA-256 credential: 4096 to 1000000 iterations, 1 to 64 bytes of salt, "
		        "32-byte keys");
		sl_req_respond(req);
		return;
	}
	struct sl_security_write *w = write_new(req, WRITE_USER_UPSERT);
	if (w == NULL)
		return;
	snprintf(w->name, sizeof(w->name), "%s", u->name);
	w->verifier.iterations = c->iterations;
	w->verifier.salt_bytes = (uint32_t)c->salt.len;
	memcpy(w->verifier.salt, c->salt.data, c->salt.len);
	memcpy(w->verifier.stored_key, c->stored_key.data, SL_SCRAM_KEY_BYTES);
	memcpy(w->verifier.server_key, c->server_key.data, SL_SCRAM_KEY_BYTES);
	write_enqueue(req, w);
}

void sl_handle_user_delete(struct sl_req *req)
{
	const char *name = or_empty(req->msg->user_delete->name);
	if (!user_name_ok(req, name))
		return;
	struct sl_security_write *w = write_new(req, WRITE_USER_DELETE);
	if (w == NULL)
		return;
	snprintf(w->name, sizeof(w->name), "%s", name);
	write_enqueue(req, w);
}

void sl_handle_list_users(struct sl_req *req)
{
	struct sl_security *sec = req->srv->security;
	uint32_t n = sec->users.count;
	Synclog__ListUsersResponse *r = sl_req_alloc(req, sizeof(*r));
	Synclog__UserInfo **list = sl_req_alloc(req, (n + 1) * sizeof(*list));
	Synclog__UserInfo *infos = sl_req_alloc(req, (n + 1) * sizeof(*infos));
	if (r == NULL || list == NULL || infos == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__list_users_response__init(r);
	for (uint32_t i = 0; i < n; i++) {
		const struct sl_user *u = &sec->users.items[i];
		synclog__user_info__init(&infos[i]);
		infos[i].name = sl_req_strdup(req, u->name);
		infos[i].mechanism = SL_SCRAM_MECHANISM;
		infos[i].iterations = u->verifier.iterations;
		for (uint32_t k = 0; k < sec->super_user_count; k++)
			if (strcmp(sec->super_users[k], u->name) == 0)
				infos[i].super_user = 1;
		if (infos[i].name == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
			sl_req_respond(req);
			return;
		}
		list[i] = &infos[i];
	}
	r->users = list;
	r->n_users = n;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_LIST_USERS;
	req->resp.list_users = r;
	sl_req_respond(req);
}

/* ---- ACLs ---- */

/* The wire's Acl as the model's; on a bad one the request is answered and 0 returned. */
static int acl_from_wire(struct sl_req *req, const Synclog__Acl *in, struct sl_acl *out)
{
	char err[256] = "";
	memset(out, 0, sizeof(*out));
	int ok = in != NULL && strlen(or_empty(in->principal)) <= SL_USER_NAME_BYTES_MAX &&
	         strlen(or_empty(in->name)) <= SL_ACL_NAME_BYTES_MAX;
	if (!ok) {
		snprintf(err, sizeof(err),
		         "an ACL needs a principal of at most 64 characters and a name of at most 200");
	} else {
		snprintf(out->principal, sizeof(out->principal), "%s", or_empty(in->principal));
		snprintf(out->name, sizeof(out->name), "%s", or_empty(in->name));
		out->prefix = in->prefix;
		if (sl_acl_resource_parse(or_empty(in->resource), &out->resource) < 0) {
			snprintf(err, sizeof(err), "unknown resource type '%.32s': topic, group or cluster",
			         or_empty(in->resource));
			ok = 0;
		} else if (sl_acl_op_parse(out->resource, or_empty(in->op), &out->op, err, sizeof(err)) < 0 ||
		           sl_acl_check(out, err, sizeof(err)) < 0) {
			ok = 0;
		}
	}
	if (!ok) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "invalid ACL: %s", err);
		sl_req_respond(req);
	}
	return ok;
}

void sl_handle_acl_add(struct sl_req *req)
{
	struct sl_acl a;
	if (!acl_from_wire(req, req->msg->acl_add->acl, &a))
		return;
	struct sl_security_write *w = write_new(req, WRITE_ACL_ADD);
	if (w == NULL)
		return;
	w->acl = a;
	write_enqueue(req, w);
}

void sl_handle_acl_remove(struct sl_req *req)
{
	struct sl_acl a;
	if (!acl_from_wire(req, req->msg->acl_remove->acl, &a))
		return;
	struct sl_security_write *w = write_new(req, WRITE_ACL_REMOVE);
	if (w == NULL)
		return;
	w->acl = a;
	write_enqueue(req, w);
}

void sl_handle_list_acls(struct sl_req *req)
{
	struct sl_security *sec = req->srv->security;
	const char *who = or_empty(req->msg->list_acls->principal);
	uint32_t n = sec->acls.count;
	Synclog__ListAclsResponse *r = sl_req_alloc(req, sizeof(*r));
	Synclog__Acl **list = sl_req_alloc(req, (n + 1) * sizeof(*list));
	Synclog__Acl *acls = sl_req_alloc(req, (n + 1) * sizeof(*acls));
	if (r == NULL || list == NULL || acls == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__list_acls_response__init(r);
	r->acls = list;
	r->authorization_enabled = sec->auth_enabled;
	for (uint32_t i = 0; i < n; i++) {
		const struct sl_acl *a = &sec->acls.items[i];
		if (who[0] != '\0' && strcmp(who, a->principal) != 0)
			continue;
		Synclog__Acl *x = &acls[r->n_acls];
		synclog__acl__init(x);
		x->principal = sl_req_strdup(req, a->principal);
		x->name = sl_req_strdup(req, a->name);
		if (x->principal == NULL || x->name == NULL) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
			sl_req_respond(req);
			return;
		}
		x->resource = (char *)sl_acl_resource_name(a->resource);
		x->op = (char *)sl_acl_op_name(a->op);
		x->prefix = a->prefix;
		list[r->n_acls++] = x;
	}
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_LIST_ACLS;
	req->resp.list_acls = r;
	sl_req_respond(req);
}
