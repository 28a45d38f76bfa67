/* Topic settings and compaction on request: AlterTopic (checked all or none, written atomically with the topic off
 * the loop, in effect once written, without a restart) and CompactTopic (broker/compaction.c does the work). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "broker/compaction.h"
#include "broker/handlers/handlers.h"
#include "proto/base/assert.h"
#include "proto/errors.h"

struct alter_job {
	uv_work_t work;
	struct sl_req *req;
	struct sl_topic *topic;
	struct sl_topic_config cfg; /* the new settings */
	const char *topics_dir;
	int status;
};

static void alter_answer(struct sl_req *req, const struct sl_topic_config *cfg)
{
	Synclog__AlterTopicResponse *r = sl_req_alloc(req, sizeof(*r));
	Synclog__TopicConfig *c = sl_req_alloc(req, sizeof(*c));
	if (r == NULL || c == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		sl_req_respond(req);
		return;
	}
	synclog__alter_topic_response__init(r);
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_ALTER_TOPIC;
	req->resp.alter_topic = r;
	if (cfg != NULL) {
		sl_topic_config_fill(c, &req->srv->topics, cfg);
		r->config = c;
	}
	sl_req_respond(req);
}

static void alter_work_cb(uv_work_t *w)
{
	struct alter_job *j = w->data;
	j->status = sl_topic_config_write(j->topics_dir, &j->cfg);
}

static void alter_after_cb(uv_work_t *w, int status)
{
	struct alter_job *j = w->data;
	struct sl_req *req = j->req;
	if (status < 0)
		j->status = status;
	j->topic->alter_inflight = 0;
	if (j->status < 0) {
		/* The file is the old one or the new one (sl_fs_replace_atomic): keep serving the old settings. */
		sl_req_fail(req, sl_errno_to_code(j->status),
		            "cannot write the settings of topic %s: %s; nothing changed", j->cfg.name,
		            strerror(-j->status));
		alter_answer(req, NULL);
	} else {
		/* Retention and the cleaner read the settings each time they act; the logs take their segment limits.
		 */
		j->topic->cfg = j->cfg;
		sl_topic_apply_segment_limits(&req->srv->topics, j->topic);
		alter_answer(req, &j->topic->cfg);
	}
	free(j);
}

void sl_handle_alter_topic(struct sl_req *req)
{
	Synclog__AlterTopicRequest *m = req->msg->alter_topic;
	const char *name = m->name ? m->name : "";
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, name);
	if (topic == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'", name);
		alter_answer(req, NULL);
		return;
	}
	if (m->n_settings == 0) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_CONFIG, "nothing to change: give at least one KEY=VALUE");
		alter_answer(req, NULL);
		return;
	}
	if (topic->alter_inflight) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__THROTTLED,
		            "another change of topic %s is being written; retry once it answered", name);
		alter_answer(req, NULL);
		return;
	}
	struct alter_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INTERNAL, "out of memory");
		alter_answer(req, NULL);
		return;
	}
	j->cfg = topic->cfg;
	for (size_t i = 0; i < m->n_settings; i++) {
		const Synclog__TopicSetting *s = m->settings[i];
		char err[256];
		if (sl_topic_config_set(&j->cfg, s->key ? s->key : "", s->value ? s->value : "", err, sizeof(err)) <
		    0) {
			sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_CONFIG, "topic %s: %s; nothing changed", name,
			            err);
			free(j);
			alter_answer(req, NULL);
			return;
		}
	}
	j->req = req;
	j->topic = topic;
	j->topics_dir = req->srv->topics.topics_dir;
	j->work.data = j;
	topic->alter_inflight = 1;
	int rc = uv_queue_work(&req->srv->loop, &j->work, alter_work_cb, alter_after_cb);
	SL_ASSERT(rc == 0); /* only fails for a NULL callback */
}

void sl_handle_compact_topic(struct sl_req *req)
{
	Synclog__CompactTopicRequest *m = req->msg->compact_topic;
	const char *name = m->name ? m->name : "";
	static Synclog__CompactTopicResponse empty = SYNCLOG__COMPACT_TOPIC_RESPONSE__INIT;
	req->resp.body_case = SYNCLOG__RESPONSE__BODY_COMPACT_TOPIC;
	req->resp.compact_topic = &empty;
	struct sl_topic *topic = sl_topics_find(&req->srv->topics, name);
	if (topic == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC, "unknown topic '%.200s'", name);
		sl_req_respond(req);
		return;
	}
	int rc = sl_compaction_request(req->srv, topic, m->wait ? req : NULL);
	if (rc == -EINVAL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__INVALID_CONFIG,
		            "topic %s is not compacted: run `synclog topic alter %s --set compact=true` first", name,
		            name);
	} else if (rc < 0) {
		sl_req_fail(req, sl_errno_to_code(rc), "cannot start compacting topic %s: %s", name, strerror(-rc));
	} else if (m->wait) {
		return; /* parked: answered once every partition was cleaned */
	}
	sl_req_respond(req);
}
