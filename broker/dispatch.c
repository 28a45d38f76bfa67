/* Request kind -> handler, as a table indexed by the generated body case, and the security check every request
 * passes on its way (security.h); see dispatch.h. */
#include "broker/dispatch.h"
#include "broker/handlers/handlers.h"
#include "broker/topic_jobs.h"
#include "proto/frame.h"

typedef void (*handler_fn)(struct sl_req *req);

/* Latency is kept per request kind in an array indexed by the body case (shard.h). */
_Static_assert(SYNCLOG__REQUEST__BODY_REPORT_RUN < SL_REQUEST_KINDS, "every request kind has a latency slot");

static const handler_fn handlers[] = {
        [SYNCLOG__REQUEST__BODY_HELLO] = sl_handle_hello,
        [SYNCLOG__REQUEST__BODY_CREATE_TOPIC] = sl_handle_create_topic,
        [SYNCLOG__REQUEST__BODY_DELETE_TOPIC] = sl_handle_delete_topic,
        [SYNCLOG__REQUEST__BODY_LIST_TOPICS] = sl_handle_list_topics,
        [SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC] = sl_handle_describe_topic,
        [SYNCLOG__REQUEST__BODY_PRODUCE] = sl_handle_produce,
        [SYNCLOG__REQUEST__BODY_FETCH] = sl_handle_fetch,
        [SYNCLOG__REQUEST__BODY_LIST_OFFSETS] = sl_handle_list_offsets,
        [SYNCLOG__REQUEST__BODY_INIT_PRODUCER] = sl_handle_init_producer,
        [SYNCLOG__REQUEST__BODY_JOIN_GROUP] = sl_handle_join_group,
        [SYNCLOG__REQUEST__BODY_HEARTBEAT] = sl_handle_heartbeat,
        [SYNCLOG__REQUEST__BODY_LEAVE_GROUP] = sl_handle_leave_group,
        [SYNCLOG__REQUEST__BODY_OFFSET_COMMIT] = sl_handle_offset_commit,
        [SYNCLOG__REQUEST__BODY_OFFSET_FETCH] = sl_handle_offset_fetch,
        [SYNCLOG__REQUEST__BODY_LIST_GROUPS] = sl_handle_list_groups,
        [SYNCLOG__REQUEST__BODY_DESCRIBE_GROUP] = sl_handle_describe_group,
        [SYNCLOG__REQUEST__BODY_DELETE_GROUP] = sl_handle_delete_group,
        [SYNCLOG__REQUEST__BODY_AUTHENTICATE] = sl_handle_authenticate,
        [SYNCLOG__REQUEST__BODY_USER_UPSERT] = sl_handle_user_upsert,
        [SYNCLOG__REQUEST__BODY_USER_DELETE] = sl_handle_user_delete,
        [SYNCLOG__REQUEST__BODY_LIST_USERS] = sl_handle_list_users,
        [SYNCLOG__REQUEST__BODY_ACL_ADD] = sl_handle_acl_add,
        [SYNCLOG__REQUEST__BODY_ACL_REMOVE] = sl_handle_acl_remove,
        [SYNCLOG__REQUEST__BODY_LIST_ACLS] = sl_handle_list_acls,
        [SYNCLOG__REQUEST__BODY_ALTER_GROUP] = sl_handle_alter_group,
        [SYNCLOG__REQUEST__BODY_STATUS] = sl_handle_status,
        [SYNCLOG__REQUEST__BODY_REPORT_RUN] = sl_handle_report_run,
        [SYNCLOG__REQUEST__BODY_ALTER_TOPIC] = sl_handle_alter_topic,
        [SYNCLOG__REQUEST__BODY_COMPACT_TOPIC] = sl_handle_compact_topic,
        [SYNCLOG__REQUEST__BODY_SET_CONTRACT] = sl_handle_set_contract,
        [SYNCLOG__REQUEST__BODY_GET_CONTRACT] = sl_handle_get_contract,
};

void sl_dispatch(struct sl_req *req)
{
	struct sl_server *srv = req->srv;
	int kind = (int)req->msg->body_case;
	if (!req->session->hello_done && kind != SYNCLOG__REQUEST__BODY_HELLO) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNSUPPORTED_VERSION,
		            "the first request on a connection must be Hello (protocol version %d)",
		            SL_PROTOCOL_VERSION);
		req->session->close_after_write = 1;
		sl_req_respond(req);
		return;
	}
	if (srv->shutting_down) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN, "broker is shutting down");
		sl_req_respond(req);
		return;
	}
	/* Behind a creation or deletion of the topic it names, in arrival order (topic_jobs.h rule 1). */
	if (sl_topic_jobs_hold(req))
		return;
	handler_fn h = kind > 0 && (size_t)kind < sizeof(handlers) / sizeof(handlers[0]) ? handlers[kind] : NULL;
	if (h == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "request has no known body (case %d)", kind);
		sl_req_respond(req);
		return;
	}
	/* Authentication, ACLs and the audit of administrative requests (security.h): a refused request is
	 * answered there. */
	if (sl_security_check(req) < 0)
		return;
	h(req);
}
