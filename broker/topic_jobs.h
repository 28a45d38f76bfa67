/* Topic creations and deletions off the loop, and the order of the requests that name a topic while one is in
 * flight. Creating a topic writes its folders and topic.json and fsyncs them, and opens every partition's log;
 * deleting one renames its folder away, fsyncs and removes its files: seconds for thousands of partitions, all of
 * it on libuv's thread pool here, while the loop keeps serving. The request is answered when the job is done.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_TOPIC_JOBS_H
#define SL_BROKER_TOPIC_JOBS_H

struct sl_req;
struct sl_server;
struct sl_topic;
struct sl_topic_config;

/* At most this many creations and deletions in flight at once; more are refused with THROTTLED. Each holds a
 * thread of the pool (four) for its fsyncs; 16 keeps the rest of the broker's pool work (snapshots, lookups)
 * from waiting long behind them. */
#define SL_TOPIC_JOBS_MAX        16
/* Requests that may wait behind one job (rule 1 below); more are refused with THROTTLED. A client pipelining
 * produces behind its create waits for at most its own in-flight requests (conn_inflight_requests_max). */
#define SL_TOPIC_JOB_WAITERS_MAX 1024

/* Rules:
 *   1. While a job on topic name N is in flight, every request naming N (produce, fetch, list offsets, describe,
 *      create, delete, alter, compact, contracts) waits behind it and is dispatched again, in arrival order,
 *      once the job answered: a produce pipelined behind its topic's create finds the topic, a second create of
 *      the same name says TOPIC_EXISTS, a delete during a create deletes the created topic.
 *   2. A creation's topic becomes findable only once its files are durable and its logs open; a deletion's topic
 *      stops being findable when the deletion starts, and is found again if its folder could not be renamed.
 *   3. A deletion frees the topic's logs only when no append, fsync or off-loop read of it is in flight (polled
 *      every DELETE_POLL_MS), and never fsyncs them: their files are going. */

/* Called by sl_dispatch before anything else: 1 when req names a topic with a job in flight and now waits behind
 * it (or was refused because too many wait), 0 to go on. */
int sl_topic_jobs_hold(struct sl_req *req);
/* Create the topic of cfg (checked on the loop first); done_cb(req, 0 or a negative errno, message) runs on the loop
 * when it is created or failed, and answers req. */
void sl_topic_job_create(struct sl_req *req, const struct sl_topic_config *cfg,
                         void (*done_cb)(struct sl_req *req, int status, const char *err));
/* Delete topic (what waited on its partitions was answered by the caller); done_cb as for a creation. */
void sl_topic_job_delete(struct sl_req *req, struct sl_topic *topic,
                         void (*done_cb)(struct sl_req *req, int status, const char *err));
/* 1 while a job is in flight (shutdown waits for 0). */
int sl_topic_jobs_busy(const struct sl_server *srv);

#endif
