/* The request handlers, one file per kind of work: produce.c, fetch.c, list_offsets.c, admin.c (topics, producer ids),
 * groups.c, contract.c (sync contracts), security.c (authentication, users, ACLs). Each takes a decoded request and
 * answers it through request.h; none knows which front end the request came from. broker/dispatch.c maps request kinds
 * to them. */
#ifndef SL_BROKER_HANDLERS_H
#define SL_BROKER_HANDLERS_H

#include "broker/shard.h"

/* produce.c */
void sl_handle_produce(struct sl_req *req);
/* An append of partition p finished: retry the appends that waited for room, wake long-poll fetches. */
void sl_partition_progress(struct sl_server *srv, struct sl_partition *p);

/* fetch.c */
void sl_handle_fetch(struct sl_req *req);
/* Wake every long-poll fetch parked on p. */
void sl_fetch_wake(struct sl_partition *p);
/* Answer now every long poll parked on p (the partition is going away). */
void sl_fetch_answer_all(struct sl_partition *p);

/* list_offsets.c */
void sl_handle_list_offsets(struct sl_req *req);

/* admin.c */
void sl_handle_hello(struct sl_req *req);
void sl_handle_create_topic(struct sl_req *req);
void sl_handle_delete_topic(struct sl_req *req);
void sl_handle_list_topics(struct sl_req *req);
void sl_handle_describe_topic(struct sl_req *req);
void sl_handle_init_producer(struct sl_req *req);
/* A topic's settings in their wire form (the values in effect). */
void sl_topic_config_fill(Synclog__TopicConfig *out, const struct sl_topics *topics, const struct sl_topic_config *cfg);

/* topic_alter.c */
void sl_handle_alter_topic(struct sl_req *req);
void sl_handle_compact_topic(struct sl_req *req);
/* Read the reserved producer-id ceiling at start. */
int sl_producer_ids_load(struct sl_server *srv);

/* contract.c */
void sl_handle_set_contract(struct sl_req *req);
void sl_handle_get_contract(struct sl_req *req);

/* groups.c */
void sl_handle_join_group(struct sl_req *req);
void sl_handle_heartbeat(struct sl_req *req);
void sl_handle_leave_group(struct sl_req *req);
void sl_handle_offset_commit(struct sl_req *req);
void sl_handle_offset_fetch(struct sl_req *req);
void sl_handle_list_groups(struct sl_req *req);
void sl_handle_describe_group(struct sl_req *req);
void sl_handle_delete_group(struct sl_req *req);
void sl_handle_alter_group(struct sl_req *req);
/* Answer the JoinGroups held while their groups formed or were reset, for the groups now ready. */
void sl_group_joins_wake(struct sl_server *srv);
/* A group's summary and an applier's counters as messages in request memory (shared with status.c). */
Synclog__GroupSummary *sl_group_summary_msg(struct sl_req *req, struct sl_group *grp, int64_t now_ms);
Synclog__ApplierCounters *sl_applier_msg(struct sl_req *req, const struct sl_applier_report *a);

/* status.c */
void sl_handle_status(struct sl_req *req);
void sl_handle_report_run(struct sl_req *req);

/* security.c: the SCRAM exchange of the native handshake, users and ACLs. */
void sl_handle_authenticate(struct sl_req *req);
void sl_handle_user_upsert(struct sl_req *req);
void sl_handle_user_delete(struct sl_req *req);
void sl_handle_list_users(struct sl_req *req);
void sl_handle_acl_add(struct sl_req *req);
void sl_handle_acl_remove(struct sl_req *req);
void sl_handle_list_acls(struct sl_req *req);

#endif
