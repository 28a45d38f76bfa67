/* Requests that manage rather than move data: Hello (version negotiation), topic create/delete/list/describe,
 * and InitProducer, whose producer ids are persisted so that an id is never issued twice across restarts. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/base/assert.h"
#include "proto/base/fs.h"
#include "broker/compaction.h"
#include "broker/handlers/handlers.h"
#include "broker/offload.h"
#include "broker/topic_jobs.h"
#include "proto/errors.h"
#include "proto/frame.h"
#include "proto/version.h"

/* Ids are reserved on disk in blocks, so InitProducer writes the file once per this many producers. */
#define PRODUCER_ID_BLOCK 1000

void sl_handle_hello(struct sl_req *req)
{
	Synclog__HelloRequest *h = req->msg->hello;
	Synclog__HelloResponse *r = &req->body.hello;
	synclog__hello_response__init(r);
	r->protocol_version = SL_PROTOCOL_VERSION;
	r->max_frame_bytes = req->srv->cfg.frame_bytes_max;
	r->broker_version = "synclogd " SL_VERSION;
	/* What the client must do before anything else (security.h rule 1), and who it already is (a TLS client
	 * certificate's CN). */
	static char *mechanisms[] = {SL_SCRAM_MECHANISM};
	const struct sl_security *sec = req->srv->security;
	r->authentication_required = sec->auth_enabled && !req->session->sec.authenticated;
	r->n_mechanisms = 1;
	r->mechanisms = mechanisms;
	if (req->session->sec.authenticated)
		r->principal = req->session->sec.principal;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_HELLO;
	req->resp.hello = r;
	if (h->protocol_version != SL_PROTOCOL_VERSION) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNSUPPORTED_VERSION,
		            "client speaks protocol version %u, this broker speaks %d: use a matching client",
		            h->protocol_version, SL_PROTOCOL_VERSION);
		req->session->close_after_write = 1;
	} else {
		req->session->hello_done = 1;
	}
	sl_req_respond(req);
}

static int errno_code(int rc)
{
	switch (rc) {
	case -EEXIST:
		return SYNCLOG__ERROR_CODE__TOPIC_EXISTS;
	case -EINVAL:
		return SYNCLOG__ERROR_CODE__INVALID_TOPIC_NAME;
	case -ERANGE:
		return SYNCLOG__ERROR_CODE__INVALID_PARTITIONS;
	case -ENOENT:
		return SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC;
	case -EDOM:
		return SYNCLOG__ERROR_CODE__INVALID_REQUEST;
	case -EOPNOTSUPP:
		return SYNCLOG__ERROR_CODE__UNSUPPORTED_FEATURE;
	default:
		/* A full disk is NOT_ENOUGH_SPACE, as for appends: the one errno table of proto/errors.h. */
		return sl_errno_to_code(rc);
	}
}

static void topic_job_done(struct sl_req *req, int status, const char *err)
{
	if (status == -EBUSY)
		sl_req_fail(req, SYNCLOG__ERROR_CODE__THROTTLED, "%s", err);
	else if (status < 0)
		sl_req_fail(req, errno_code(status), "%s", err);
	sl_req_respond(req);
}

static void create_done(struct sl_req *req, int status, const char *err)
{
	if (status == 0)
		sl_groups_topic_created(&req->srv->groups, req->msg->create_topic->config->name);
	topic_job_done(req, status, err);
}

void sl_handle_create_topic(struct sl_req *req)
{
	Synclog__TopicConfig *tc = req->msg->create_topic->config;
	synclog__create_topic_response__init(&req->body.create_topic);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_CREATE_TOPIC;
	req->resp.create_topic = &req->body.create_topic;
	if (tc == NULL || tc->name == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_REQUEST, "CreateTopic needs a config with a name");
		sl_req_respond(req);
		return;
	}
	struct sl_topic_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	if (strlen(tc->name) > SL_TOPIC_NAME_BYTES_MAX) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_TOPIC_NAME, "topic name longer than %d characters",
		            SL_TOPIC_NAME_BYTES_MAX);
		sl_req_respond(req);
		return;
	}
	snprintf(cfg.name, sizeof(cfg.name), "%s", tc->name);
	cfg.partitions = tc->partitions;
	cfg.retention_ms = tc->retention_ms == 0 ? -1 : tc->retention_ms;
	cfg.retention_bytes = tc->retention_bytes == 0 ? -1 : tc->retention_bytes;
	cfg.compact = tc->compact;
	cfg.segment_bytes = tc->segment_bytes;
	cfg.segment_ms = tc->segment_ms;
	/* 0 in a request is the default, as for the segment limits; settings below may override it. */
	cfg.delete_retention_ms =
	        tc->delete_retention_ms > 0 ? tc->delete_retention_ms : SL_TOPIC_DELETE_RETENTION_MS_DEFAULT;
	Synclog__CreateTopicRequest *ct = req->msg->create_topic;
	for (size_t i = 0; i < ct->n_settings; i++) {
		const Synclog__TopicSetting *s = ct->settings[i];
		char why[256];
		if (sl_topic_config_set(&cfg, s->key ? s->key : "", s->value ? s->value : "", why, sizeof(why)) < 0) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_CONFIG, "topic %s: %s; not created", cfg.name,
			            why);
			sl_req_respond(req);
			return;
		}
	}
	/* Checked here, written and opened off the loop; answered by create_done (broker/topic_jobs.h). */
	sl_topic_job_create(req, &cfg, create_done);
}

void sl_handle_delete_topic(struct sl_req *req)
{
	const char *name = req->msg->delete_topic->name ? req->msg->delete_topic->name : "";
	synclog__delete_topic_response__init(&req->body.delete_topic);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_DELETE_TOPIC;
	req->resp.delete_topic = &req->body.delete_topic;
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, name);
	if (topic != NULL && (topic->alter_inflight || topic->contract_inflight)) {
		sl_req_fail(
		        req, SYNCLOG__ERROR_CODE__THROTTLED,
		        "topic %.200s: a change of its settings or contract is being written; retry once it answered",
		        name);
		sl_req_respond(req);
		return;
	}
	if (topic != NULL) {
		/* A clean of it stops first (its files are in the topic's folder) and its waiters are answered. */
		sl_compaction_forget_topic(req->srv, topic);
		/* Answer what waits on the topic before its logs close: blocked appends fail, long polls return. */
		for (uint32_t i = 0; i < topic->cfg.partitions; i++) {
			struct sl_partition *p = &topic->parts[i];
			struct sl_append *a;
			while ((a = p->blocked_head) != NULL) {
				p->blocked_head = a->next;
				a->cb(a, -ENOENT);
			}
			p->blocked_tail = NULL;
			/* Long polls parked here are answered now (the partition reads as unavailable): they must not
			 * stay linked to a partition about to be freed. */
			struct sl_log *log = p->log;
			p->log = NULL;
			sl_fetch_answer_all(p);
			p->log = log;
		}
	}
	if (topic == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic %.200s", name);
		sl_req_respond(req);
		return;
	}
	/* Renamed away and removed off the loop once its logs are idle (broker/topic_jobs.h). */
	sl_topic_job_delete(req, topic, topic_job_done);
}

void sl_topic_config_fill(Synclog__TopicConfig *out, const struct sl_topics *topics, const struct sl_topic_config *cfg)
{
	synclog__topic_config__init(out);
	out->name = (char *)cfg->name;
	out->partitions = cfg->partitions;
	out->retention_ms = cfg->retention_ms;
	out->retention_bytes = cfg->retention_bytes;
	out->compact = cfg->compact;
	sl_topic_segment_limits(topics, cfg, &out->segment_bytes, &out->segment_ms);
	out->delete_retention_ms = cfg->delete_retention_ms;
	out->retain_for_groups = cfg->retain_for_groups;
}

static void list_topics_free(struct sl_req *req)
{
	free(req->body.list_topics.topics);
}

void sl_handle_list_topics(struct sl_req *req)
{
	struct sl_topics *t = &req->srv->topics;
	Synclog__ListTopicsResponse *r = &req->body.list_topics;
	synclog__list_topics_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_LIST_TOPICS;
	req->resp.list_topics = r;
	size_t n = t->topic_count;
	/* One allocation: the pointer array, then the configs. */
	req->body_mem = calloc(n ? n : 1, sizeof(Synclog__TopicConfig));
	r->topics = calloc(n ? n : 1, sizeof(*r->topics));
	req->free_body = list_topics_free;
	if (req->body_mem == NULL || r->topics == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	Synclog__TopicConfig *cfgs = req->body_mem;
	for (struct sl_topic *topic = t->head; topic; topic = topic->next) {
		/* Only the topics this principal may see (security.h); everything with authentication off. */
		if (!sl_security_allows(req, SL_ACL_TOPIC, topic->cfg.name, SL_ACL_DESCRIBE))
			continue;
		sl_topic_config_fill(&cfgs[r->n_topics], t, &topic->cfg);
		r->topics[r->n_topics] = &cfgs[r->n_topics];
		r->n_topics++;
	}
	sl_req_respond(req);
}

struct describe_mem {
	Synclog__TopicConfig config;
	Synclog__PartitionInfo **ptrs;
	Synclog__CleanerPartitionInfo *cleaners;
	Synclog__PartitionInfo infos[];
};

static void describe_free(struct sl_req *req)
{
	struct describe_mem *m = req->body_mem;
	if (m) {
		free(m->ptrs);
		free(m->cleaners);
	}
}

void sl_handle_describe_topic(struct sl_req *req)
{
	const char *name = req->msg->describe_topic->name ? req->msg->describe_topic->name : "";
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, name);
	if (topic == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'", name);
		sl_req_respond(req);
		return;
	}
	uint32_t n = topic->cfg.partitions;
	struct describe_mem *m = calloc(1, sizeof(*m) + n * sizeof(Synclog__PartitionInfo));
	req->body_mem = m;
	req->free_body = describe_free;
	if (m == NULL || (m->ptrs = calloc(n, sizeof(*m->ptrs))) == NULL ||
	    (m->cleaners = calloc(n, sizeof(*m->cleaners))) == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	Synclog__DescribeTopicResponse *r = &req->body.describe_topic;
	synclog__describe_topic_response__init(r);
	sl_topic_config_fill(&m->config, &req->srv->topics, &topic->cfg);
	r->config = &m->config;
	r->n_partitions = n;
	r->partitions = m->ptrs;
	for (uint32_t i = 0; i < n; i++) {
		Synclog__PartitionInfo *pi = &m->infos[i];
		synclog__partition_info__init(pi);
		m->ptrs[i] = pi;
		pi->partition = i;
		struct sl_partition *p = &topic->parts[i];
		if (p->log == NULL) {
			pi->error = SYNCLOG__ERROR_CODE__PARTITION_UNAVAILABLE;
			pi->error_message = p->open_error;
			pi->earliest_offset = pi->next_offset = -1;
			continue;
		}
		struct sl_log_stats st;
		sl_log_get_stats(p->log, &st);
		pi->earliest_offset = st.start_offset;
		pi->next_offset = st.next_offset;
		pi->bytes = st.bytes;
		pi->segments = st.segment_count;
		pi->dirty_ratio = sl_compaction_dirty_ratio(p);
		const struct sl_clean_state *cs = p->clean;
		if (cs != NULL) {
			Synclog__CleanerPartitionInfo *ci = &m->cleaners[i];
			synclog__cleaner_partition_info__init(ci);
			ci->last_clean_ms = cs->last_clean_ms;
			ci->last_duration_ms = cs->last.duration_ms;
			ci->bytes_read = cs->bytes_read;
			ci->bytes_written = cs->bytes_written;
			ci->records_removed = cs->records_removed;
			ci->tombstones_removed = cs->tombstones_removed;
			ci->tombstones_kept = cs->last.tombstones_kept;
			ci->last_error = (char *)cs->last_error;
			pi->cleaner = ci;
		}
	}
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_DESCRIBE_TOPIC;
	req->resp.describe_topic = r;
	sl_req_respond(req);
}

int sl_producer_ids_load(struct sl_server *srv)
{
	char path[SL_PATH_BYTES_MAX];
	snprintf(path, sizeof(path), "%s/%s", srv->cfg.data_dir, SL_PRODUCER_IDS_FILE);
	FILE *f = fopen(path, "r");
	int64_t reserved = 0;
	if (f != NULL) {
		if (fscanf(f, "%" SCNd64, &reserved) != 1 || reserved < 0)
			reserved = 0;
		fclose(f);
	}
	/* Ids handed out before a crash may be anywhere below the reserved ceiling: start above it. */
	srv->next_producer_id = reserved;
	srv->producer_id_reserved = reserved;
	return 0;
}

/* Hand out the next id, reserving the next block first (off the loop) when the reserved ones are used up. */
static void init_producer_answer(struct sl_req *req, int status)
{
	struct sl_server *srv = req->srv;
	Synclog__InitProducerResponse *r = &req->body.init_producer;
	if (status < 0) {
		sl_req_fail(req, sl_errno_to_code(status), "cannot persist producer ids in %s: %s", srv->cfg.data_dir,
		            strerror(-status));
		sl_req_respond(req);
		return;
	}
	if (srv->next_producer_id >= srv->producer_id_reserved) {
		sl_offload_reserve_producer_ids(srv, srv->next_producer_id + PRODUCER_ID_BLOCK, req,
		                                init_producer_answer);
		return;
	}
	r->producer_id = srv->next_producer_id++;
	r->producer_epoch = 0;
	sl_req_respond(req);
}

void sl_handle_init_producer(struct sl_req *req)
{
	Synclog__InitProducerResponse *r = &req->body.init_producer;
	synclog__init_producer_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_INIT_PRODUCER;
	req->resp.init_producer = r;
	/* Behind a reservation in flight, requests wait their turn so that ids stay in arrival order. */
	if (req->srv->offload.ids_job != NULL) {
		sl_offload_reserve_producer_ids(req->srv, req->srv->producer_id_reserved, req, init_producer_answer);
		return;
	}
	init_producer_answer(req, 0);
}
