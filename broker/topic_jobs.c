/* Topic creations and deletions on libuv's thread pool, and the requests that wait behind them; see topic_jobs.h.
 *
 * A job's states, each with the function that leaves it:
 *
 *   create:  FILES (pool: sl_topics_create_files) --create_after_cb--> answered, waiters dispatched
 *   delete:  IDLE_WAIT (loop, timer: delete_poll) --> RENAME (pool: sl_topics_delete_rename)
 *              --rename_after_cb: failed--> topic attached again, answered
 *              --rename_after_cb: done--> logs discarded on the loop (descriptors closed while their files are
 *                 still linked, so the close frees nothing), REMOVE (pool: sl_topics_delete_remove)
 *              --remove_after_cb--> answered, waiters dispatched */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/dispatch.h"
#include "broker/shard.h"
#include "broker/topic_jobs.h"
#include "proto/base/assert.h"

/* How often a deletion looks whether its logs' last writes and fsyncs completed: they take a disk's latency. */
#define DELETE_POLL_MS 2

enum job_kind { JOB_CREATE, JOB_DELETE };

struct waiter {
	struct sl_req *req;
	struct waiter *next;
};

struct sl_topic_job {
	uv_work_t work;
	struct sl_server *srv;
	enum job_kind kind;
	struct sl_req *req;
	void (*done_cb)(struct sl_req *req, int status, const char *err);
	struct sl_topic_config cfg; /* create: the new topic's settings; delete: cfg.name only */
	struct sl_topic *topic;     /* create: the result; delete: the detached topic */
	int status;
	char err[512];
	uv_timer_t *poll; /* delete: until its logs are idle (rule 3); freed in its close callback */
	struct waiter *wait_head, *wait_tail;
	uint32_t wait_count;
	struct sl_topic_job *next; /* in srv->offload.topic_jobs */
};

/* ---- the name barrier ---- */

/* The topic a request names, if its handler looks one up; NULL otherwise. */
static const char *topic_of(const Synclog__Request *m)
{
	switch (m->body_case) {
	case SYNCLOG__REQUEST__BODY_PRODUCE:
		return m->produce->topic;
	case SYNCLOG__REQUEST__BODY_FETCH:
		return m->fetch->topic;
	case SYNCLOG__REQUEST__BODY_LIST_OFFSETS:
		return m->list_offsets->topic;
	case SYNCLOG__REQUEST__BODY_CREATE_TOPIC:
		return m->create_topic->config ? m->create_topic->config->name : NULL;
	case SYNCLOG__REQUEST__BODY_DELETE_TOPIC:
		return m->delete_topic->name;
	case SYNCLOG__REQUEST__BODY_DESCRIBE_TOPIC:
		return m->describe_topic->name;
	case SYNCLOG__REQUEST__BODY_ALTER_TOPIC:
		return m->alter_topic->name;
	case SYNCLOG__REQUEST__BODY_COMPACT_TOPIC:
		return m->compact_topic->name;
	case SYNCLOG__REQUEST__BODY_SET_CONTRACT:
		return m->set_contract->topic;
	case SYNCLOG__REQUEST__BODY_GET_CONTRACT:
		return m->get_contract->topic;
	default:
		return NULL;
	}
}

static struct sl_topic_job *job_find(const struct sl_server *srv, const char *name)
{
	for (struct sl_topic_job *j = srv->offload.topic_jobs; j; j = j->next)
		if (strcmp(j->cfg.name, name) == 0)
			return j;
	return NULL;
}

static void waiter_cancel_cb(struct sl_req *req, int drop)
{
	struct sl_server *srv = req->srv;
	for (struct sl_topic_job *j = srv->offload.topic_jobs; j; j = j->next) {
		struct waiter **pp = &j->wait_head, *prev = NULL;
		for (; *pp && (*pp)->req != req; prev = *pp, pp = &(*pp)->next)
			;
		if (*pp == NULL)
			continue;
		struct waiter *w = *pp;
		*pp = w->next;
		if (j->wait_tail == w)
			j->wait_tail = prev;
		j->wait_count--;
		free(w);
		break;
	}
	sl_req_unpark(req);
	sl_req_fail(req, SYNCLOG__ERROR_CODE__BROKER_SHUTTING_DOWN,
	            drop ? "connection closed while the request waited for its topic's creation or deletion"
	                 : "broker is shutting down");
	sl_req_respond(req);
}

int sl_topic_jobs_hold(struct sl_req *req)
{
	struct sl_server *srv = req->srv;
	if (srv->offload.topic_jobs == NULL)
		return 0;
	const char *name = topic_of(req->msg);
	struct sl_topic_job *j = name ? job_find(srv, name) : NULL;
	if (j == NULL)
		return 0;
	struct waiter *w = j->wait_count < SL_TOPIC_JOB_WAITERS_MAX ? malloc(sizeof(*w)) : NULL;
	if (w == NULL) {
		sl_req_fail(req, SYNCLOG__ERROR_CODE__THROTTLED,
		            "topic %.200s is being %s and %d requests already wait for it: retry once it is done", name,
		            j->kind == JOB_CREATE ? "created" : "deleted", SL_TOPIC_JOB_WAITERS_MAX);
		sl_req_respond(req);
		return 1;
	}
	w->req = req;
	w->next = NULL;
	if (j->wait_tail)
		j->wait_tail->next = w;
	else
		j->wait_head = w;
	j->wait_tail = w;
	j->wait_count++;
	sl_req_park(req, waiter_cancel_cb);
	return 1;
}

/* ---- jobs ---- */

static struct sl_topic_job *job_new(struct sl_req *req, enum job_kind kind, const char *name,
                                    void (*done_cb)(struct sl_req *req, int status, const char *err))
{
	struct sl_server *srv = req->srv;
	if (srv->offload.topic_job_count >= SL_TOPIC_JOBS_MAX) {
		char err[320];
		snprintf(err, sizeof(err), "%d topic creations or deletions are in flight: retry once one is done",
		         SL_TOPIC_JOBS_MAX);
		done_cb(req, -EBUSY, err);
		return NULL;
	}
	struct sl_topic_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		done_cb(req, -ENOMEM, "out of memory");
		return NULL;
	}
	j->srv = srv;
	j->kind = kind;
	j->req = req;
	j->done_cb = done_cb;
	j->work.data = j;
	snprintf(j->cfg.name, sizeof(j->cfg.name), "%s", name);
	j->next = srv->offload.topic_jobs;
	srv->offload.topic_jobs = j;
	srv->offload.topic_job_count++;
	return j;
}

/* Answer the job's request, then dispatch what waited behind it, in order (rule 1); the job is gone first, so a
 * waiter that starts a job of its own on the name (a delete behind a create) holds the waiters after it. */
static void job_end(struct sl_topic_job *j)
{
	struct sl_server *srv = j->srv;
	struct sl_topic_job **pp = &srv->offload.topic_jobs;
	while (*pp != j)
		pp = &(*pp)->next;
	*pp = j->next;
	srv->offload.topic_job_count--;
	j->done_cb(j->req, j->status, j->err);
	struct waiter *w = j->wait_head;
	free(j);
	while (w != NULL) {
		struct waiter *next = w->next;
		struct sl_req *req = w->req;
		free(w);
		sl_req_unpark(req);
		sl_dispatch(req);
		w = next;
	}
}

static void create_work_cb(uv_work_t *w)
{
	struct sl_topic_job *j = w->data;
	j->status = sl_topics_create_files(&j->srv->topics, &j->cfg, &j->topic, j->err, sizeof(j->err));
}

static void create_after_cb(uv_work_t *w, int status)
{
	struct sl_topic_job *j = w->data;
	if (status < 0) { /* canceled: nothing was made */
		j->status = status;
		snprintf(j->err, sizeof(j->err), "cannot create topic %s: %s; nothing was created", j->cfg.name,
		         strerror(-status));
	}
	if (j->status == 0)
		sl_topics_create_commit(&j->srv->topics, j->topic);
	job_end(j);
}

void sl_topic_job_create(struct sl_req *req, const struct sl_topic_config *cfg,
                         void (*done_cb)(struct sl_req *req, int status, const char *err))
{
	struct sl_topic_config checked = *cfg;
	char err[512] = "";
	int rc = sl_topics_create_check(&req->srv->topics, &checked, err, sizeof(err));
	if (rc < 0) {
		done_cb(req, rc, err);
		return;
	}
	struct sl_topic_job *j = job_new(req, JOB_CREATE, cfg->name, done_cb);
	if (j == NULL)
		return;
	j->cfg = checked;
	rc = uv_queue_work(&req->srv->loop, &j->work, create_work_cb, create_after_cb);
	SL_ASSERT(rc == 0); /* only fails for a NULL callback */
}

static void remove_work_cb(uv_work_t *w)
{
	struct sl_topic_job *j = w->data;
	sl_topics_delete_remove(&j->srv->topics, j->cfg.name);
}

static void remove_after_cb(uv_work_t *w, int status)
{
	struct sl_topic_job *j = w->data;
	if (status < 0) /* canceled: what is left in scratch/ goes at the next open */
		remove_work_cb(w);
	job_end(j);
}

static void rename_work_cb(uv_work_t *w)
{
	struct sl_topic_job *j = w->data;
	j->status = sl_topics_delete_rename(&j->srv->topics, j->cfg.name, j->err, sizeof(j->err));
}

static void rename_after_cb(uv_work_t *w, int status)
{
	struct sl_topic_job *j = w->data;
	if (status < 0) {
		j->status = status;
		snprintf(j->err, sizeof(j->err), "cannot delete topic %s: %s; it stays as it was", j->cfg.name,
		         strerror(-status));
	}
	if (j->status < 0) {
		/* Rule 2: the folder is where it was, the logs are open: the topic serves again. */
		sl_topics_attach(&j->srv->topics, j->topic);
		job_end(j);
		return;
	}
	sl_topic_discard(j->topic);
	j->topic = NULL;
	int rc = uv_queue_work(&j->srv->loop, &j->work, remove_work_cb, remove_after_cb);
	SL_ASSERT(rc == 0);
}

static void poll_close_cb(uv_handle_t *h)
{
	free(h);
}

static void delete_poll(uv_timer_t *t);

/* Rule 3: rename once the topic is idle, else look again in DELETE_POLL_MS. */
static void delete_step(struct sl_topic_job *j)
{
	if (!sl_topic_idle(j->topic)) {
		uv_timer_start(j->poll, delete_poll, DELETE_POLL_MS, 0);
		return;
	}
	uv_close((uv_handle_t *)j->poll, poll_close_cb);
	j->poll = NULL;
	int rc = uv_queue_work(&j->srv->loop, &j->work, rename_work_cb, rename_after_cb);
	SL_ASSERT(rc == 0);
}

static void delete_poll(uv_timer_t *t)
{
	delete_step(t->data);
}

void sl_topic_job_delete(struct sl_req *req, struct sl_topic *topic,
                         void (*done_cb)(struct sl_req *req, int status, const char *err))
{
	uv_timer_t *poll = malloc(sizeof(*poll));
	if (poll == NULL) {
		done_cb(req, -ENOMEM, "out of memory");
		return;
	}
	struct sl_topic_job *j = job_new(req, JOB_DELETE, topic->cfg.name, done_cb);
	if (j == NULL) {
		free(poll);
		return;
	}
	j->topic = topic;
	j->poll = poll;
	uv_timer_init(&req->srv->loop, poll);
	poll->data = j;
	sl_topics_detach(&req->srv->topics, topic);
	delete_step(j);
}

int sl_topic_jobs_busy(const struct sl_server *srv)
{
	return srv->offload.topic_jobs != NULL;
}
