/* The shard's wiring: one libuv loop, the io_uring of its partitions with completions arriving through an eventfd
 * watched by a uv_poll_t, and a uv_prepare_t that submits the storage work of each loop pass once, just before the
 * loop sleeps (Redis's beforesleep). It binds the metrics listener, opens the topics and groups on a worker thread
 * (recovery; /healthz answers meanwhile, /readyz says 503), then starts the cleaner, the front ends (broker/net/,
 * broker/kafka/) and the timers (retention and roll by age, group sessions, group health), and shuts everything
 * down in order on SIGTERM.
 *
 * Startup, with the function that makes each move:
 *   sl_server_start: loop, ring, signals, metrics listener --uv_queue_work--> open_work_cb (worker thread: topics,
 *   producer ids, groups; the loop does not touch the ring meanwhile) --> open_after_cb (loop): ring poll, timers,
 *   cleaner, listeners, on_ready, ready = 1.  A SIGTERM during recovery waits for the worker, then closes what it
 *   opened. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "proto/base/slog.h"
#include "broker/handlers/handlers.h"
#include "broker/kafka/kafka.h"
#include "broker/net/net.h"
#include "broker/compaction.h"
#include "broker/notify.h"
#include "broker/offload.h"
#include "broker/shard.h"
#include "broker/tls.h"
#include "proto/frame.h"

void sl_server_config_default(struct sl_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./data");
	snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
	cfg->listen_port = 7070;
	snprintf(cfg->kafka_listen_host, sizeof(cfg->kafka_listen_host), "127.0.0.1");
	cfg->kafka_listen_port = -1;
	snprintf(cfg->metrics_host, sizeof(cfg->metrics_host), "127.0.0.1");
	cfg->metrics_port = 7071;
	cfg->frame_bytes_max = SL_FRAME_BYTES_MAX_DEFAULT;
	/* 1024 connections: far above what one shard serves well, far below the fd limit. */
	cfg->connections_max = 1024;
	/* Four maximum frames: a producer pipelining large batches keeps the disk busy without one connection
	 * holding more than 64 MiB of the broker's memory. */
	cfg->conn_inflight_bytes_max = 4ull * SL_FRAME_BYTES_MAX_DEFAULT;
	cfg->conn_inflight_requests_max = 4096;
	/* A client sends Hello as its first bytes; 5 s covers a slow network without letting connections that never
	 * speak hold their slots. */
	cfg->handshake_timeout_ms = 5000;
	/* Kafka's connections.max.idle.ms (10 minutes): our clients reconnect on their own when a connection they
	 * left idle this long was closed. */
	cfg->idle_timeout_ms = 10 * 60 * 1000;
	/* Retention, roll by age and producer-state snapshots: every 30 s. */
	cfg->retention_check_ms = 30 * 1000;
	cfg->fetch_readahead_bytes = SL_FETCH_READAHEAD_BYTES_DEFAULT;
	cfg->fetch_zero_copy = 1;
	sl_compaction_config_default(&cfg->compaction);
	sl_log_config_default(&cfg->log);
	sl_security_config_default(&cfg->security);
	sl_groups_settings_default(&cfg->groups);
}

/* ---- the loop's storage wiring ---- */

static void ring_poll_cb(uv_poll_t *h, int status, int events)
{
	struct sl_server *srv = h->data;
	int rc = sl_ring_reap(&srv->ring);
	if (rc < 0)
		sl_slog_msg(SL_SLOG_ERROR, "io_uring_failed", "reaping completions failed: %s", strerror(-rc));
}

static void submit_prepare_cb(uv_prepare_t *h)
{
	struct sl_server *srv = h->data;
	/* Connections that waited for the memory budget read again once this pass released some. */
	sl_limits_resume_waiters(&srv->limits);
	int rc = sl_ring_submit(&srv->ring);
	if (rc < 0)
		sl_slog_msg(SL_SLOG_ERROR, "io_uring_failed", "submit failed: %s", strerror(-rc));
	/* What this pass prepared is with the kernel now, so segments the cleaner swapped out may close. */
	sl_compaction_after_submit(srv);
}

static void retention_cb(uv_timer_t *h)
{
	struct sl_server *srv = h->data;
	/* Partitions that could not open for want of descriptors or memory get another try. */
	sl_topics_retry_unavailable(&srv->topics);
	sl_offload_housekeeping(srv);
}

/* Session expiry is checked this often: a dead member is noticed within its timeout plus this. */
#define GROUPS_TICK_MS 200

static void groups_timer_cb(uv_timer_t *h)
{
	struct sl_server *srv = h->data;
	if (sl_groups_tick(&srv->groups, sl_clock_wall_ms()) > 0)
		sl_group_joins_wake(srv);
}

/* Topic rates (records in and out per second) are refreshed this often, over the time since the last refresh. */
#define RATE_REFRESH_MS 10000

static void health_timer_cb(uv_timer_t *h)
{
	struct sl_server *srv = h->data;
	int64_t now = sl_clock_wall_ms();
	sl_groups_health_tick(&srv->groups, now);
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		struct sl_topic_counters *c = &t->counters;
		if (c->rate_at_ms == 0) {
			c->rate_at_ms = now;
		} else if (now - c->rate_at_ms >= RATE_REFRESH_MS) {
			uint64_t in = c->produce_records[0] + c->produce_records[1] + c->produce_records[2];
			double secs = (double)(now - c->rate_at_ms) / 1000.0;
			c->records_in_per_s = (double)(in - c->rate_in_prev) / secs;
			c->records_out_per_s = (double)(c->fetch_records - c->rate_out_prev) / secs;
			c->rate_in_prev = in;
			c->rate_out_prev = c->fetch_records;
			c->rate_at_ms = now;
		}
	}
}

/* ---- shutdown ---- */

static void close_noop_cb(uv_handle_t *h)
{
}

static void shutdown_check_cb(uv_check_t *h)
{
	struct sl_server *srv = h->data;
	/* Wait for a recovery in progress, then until every request's storage work called back and its answer was
	 * handed to the socket, and the thread pool's work (housekeeping, audit writes) came back. */
	if (!srv->open_done || !sl_net_drained(srv) || !sl_kafka_drained(srv) || sl_offload_busy(srv) ||
	    sl_security_busy(srv))
		return;
	sl_net_close(srv);
	sl_kafka_close(srv);
	uv_check_stop(h);
	sl_compaction_stop(srv);
	if (srv->open_rc == 0) {
		int rc = sl_groups_close(&srv->groups);
		int rc2 = sl_topics_close(&srv->topics);
		if (rc == 0)
			rc = rc2;
		if (rc < 0) {
			sl_slog_msg(SL_SLOG_ERROR, "close_failed",
			            "closing the logs failed: %s; the next start will recover", strerror(-rc));
			srv->exit_code = 1;
		}
	}
	uv_close((uv_handle_t *)&srv->ring_poll, close_noop_cb);
	uv_close((uv_handle_t *)&srv->submit_prepare, close_noop_cb);
	uv_close((uv_handle_t *)&srv->retention_timer, close_noop_cb);
	uv_close((uv_handle_t *)&srv->groups_timer, close_noop_cb);
	uv_close((uv_handle_t *)&srv->health_timer, close_noop_cb);
	uv_close((uv_handle_t *)&srv->sigterm, close_noop_cb);
	uv_close((uv_handle_t *)&srv->sigint, close_noop_cb);
	uv_close((uv_handle_t *)&srv->sighup, close_noop_cb);
	uv_close((uv_handle_t *)&srv->shutdown_check, close_noop_cb);
	sl_metrics_stop(srv);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct sl_server *srv = h->data;
	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	sl_notify("STOPPING=1");
	struct sl_slog *e = sl_slog_begin(SL_SLOG_INFO, "shutdown_begin");
	sl_slog_str(e, "signal", signum == SIGTERM ? "SIGTERM" : signum == SIGINT ? "SIGINT" : "other");
	sl_slog_uint(e, "connections", srv->stats.connections_open);
	sl_slog_end(e);
	sl_net_stop_accepting(srv);
	sl_kafka_stop_accepting(srv);
	uv_check_start(&srv->shutdown_check, shutdown_check_cb);
}

/* SIGHUP: read the TLS certificate, key and CA again (tls.h invariant 3); without TLS there is nothing to
 * reload, and the signal no longer ends the process as its default would. */
static void sighup_cb(uv_signal_t *h, int signum)
{
	struct sl_server *srv = h->data;
	char err[1024] = "";
	if (srv->tls == NULL) {
		sl_slog_msg(SL_SLOG_INFO, "sighup", "no TLS configured: nothing to reload");
		return;
	}
	if (sl_tls_server_reload(srv->tls, err, sizeof(err)) < 0)
		sl_slog_msg(SL_SLOG_ERROR, "tls_reload_failed", "%s; the certificates loaded before stay in use", err);
	else
		sl_slog_msg(SL_SLOG_INFO, "tls_reloaded", "new connections use the certificate %s",
		            srv->cfg.security.tls_cert);
}

/* ---- start and run ---- */

/* What opening the data directory found, one event for the whole and one per partition that needed work: how
 * many partitions were closed cleanly, how many were recovered after a crash and how much of their tails was
 * checked and cut, and which failed to open (those are logged by topics.c as they fail). */
static void recovery_log(struct sl_server *srv, int64_t took_ms)
{
	uint64_t partitions = 0, clean = 0, recovered = 0, unavailable = 0, checked = 0, cut = 0;
	for (struct sl_topic *t = srv->topics.head; t; t = t->next) {
		for (uint32_t i = 0; i < t->cfg.partitions; i++) {
			struct sl_log *log = t->parts[i].log;
			partitions++;
			if (log == NULL) {
				unavailable++;
				continue;
			}
			struct sl_log_stats st;
			sl_log_get_stats(log, &st);
			if (st.clean_open) {
				clean++;
				continue;
			}
			recovered++;
			checked += st.recovered_tail_bytes;
			cut += st.truncated_bytes;
			struct sl_slog *e = sl_slog_begin(st.truncated_bytes > 0 ? SL_SLOG_WARN : SL_SLOG_INFO,
			                                  "partition_recovered");
			sl_slog_str(e, "topic", t->cfg.name);
			sl_slog_uint(e, "partition", i);
			sl_slog_uint(e, "bytes_checked", st.recovered_tail_bytes);
			sl_slog_uint(e, "bytes_cut", st.truncated_bytes);
			sl_slog_int(e, "next_offset", st.next_offset);
			sl_slog_end(e);
		}
	}
	struct sl_slog *e = sl_slog_begin(unavailable > 0 ? SL_SLOG_ERROR : SL_SLOG_INFO, "recovery");
	sl_slog_uint(e, "topics", srv->topics.topic_count);
	sl_slog_uint(e, "partitions", partitions);
	sl_slog_uint(e, "clean", clean);
	sl_slog_uint(e, "recovered", recovered);
	sl_slog_uint(e, "bytes_checked", checked);
	sl_slog_uint(e, "bytes_cut", cut);
	sl_slog_uint(e, "unavailable", unavailable);
	sl_slog_int(e, "took_ms", took_ms);
	sl_slog_end(e);
}

/* Worker thread: recovery. The loop thread does not touch the ring, topics or groups until open_after_cb. */
static void open_work_cb(uv_work_t *w)
{
	struct sl_server *srv = w->data;
	const struct sl_server_config *cfg = &srv->cfg;
	char *err = srv->open_error;
	size_t err_cap = sizeof(srv->open_error);
	int64_t open_start_ms = sl_clock_mono_ms();
	int rc = sl_topics_open(&srv->topics, cfg->data_dir, &srv->ring, &srv->cfg.log, err, err_cap);
	if (rc == 0) {
		rc = sl_producer_ids_load(srv);
		if (rc < 0 && err[0] == '\0')
			snprintf(err, err_cap, "cannot read the producer ids of %s: %s", cfg->data_dir, strerror(-rc));
		if (rc < 0)
			sl_topics_close(&srv->topics);
	}
	if (rc == 0) {
		rc = sl_groups_open(&srv->groups, cfg->data_dir, &srv->ring, &srv->cfg.log, &srv->topics, &cfg->groups,
		                    err, err_cap);
		if (rc < 0)
			sl_topics_close(&srv->topics);
	}
	if (rc < 0 && err[0] == '\0')
		snprintf(err, err_cap, "cannot open data directory %s: %s", cfg->data_dir, strerror(-rc));
	srv->open_rc = rc;
	srv->open_took_ms = sl_clock_mono_ms() - open_start_ms;
}

static void open_after_cb(uv_work_t *w, int status)
{
	struct sl_server *srv = w->data;
	srv->open_done = 1;
	if (status < 0 && srv->open_rc == 0)
		srv->open_rc = status;
	if (srv->open_rc < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "start_failed", "%s", srv->open_error);
		srv->exit_code = 1;
	}
	if (srv->open_rc < 0 || srv->shutting_down) {
		if (!srv->shutting_down) {
			srv->shutting_down = 1;
			uv_check_start(&srv->shutdown_check, shutdown_check_cb);
		}
		return;
	}
	recovery_log(srv, srv->open_took_ms);
	uv_poll_start(&srv->ring_poll, UV_READABLE, ring_poll_cb);
	uv_prepare_start(&srv->submit_prepare, submit_prepare_cb);
	uv_timer_start(&srv->retention_timer, retention_cb, srv->cfg.retention_check_ms, srv->cfg.retention_check_ms);
	uv_timer_start(&srv->groups_timer, groups_timer_cb, GROUPS_TICK_MS, GROUPS_TICK_MS);
	uint32_t health_ms = sl_groups_tick_ms(&srv->cfg.groups);
	uv_timer_start(&srv->health_timer, health_timer_cb, health_ms, health_ms);
	int port = 0;
	char err[1024] = "";
	int rc = sl_compaction_start(srv, err, sizeof(err));
	if (rc == 0)
		rc = sl_net_start(srv, &port, err, sizeof(err));
	if (rc == 0)
		rc = sl_kafka_start(srv, err, sizeof(err));
	if (rc < 0) {
		sl_slog_msg(SL_SLOG_ERROR, "start_failed", "%s", err);
		srv->exit_code = 1;
		sl_net_stop_accepting(srv);
		sl_kafka_stop_accepting(srv);
		srv->shutting_down = 1;
		uv_check_start(&srv->shutdown_check, shutdown_check_cb);
		return;
	}
	srv->ready = 1;
	if (srv->cfg.on_ready)
		srv->cfg.on_ready(srv);
}

/* What the shard holds once its loop has closed: the ring, the front ends, security, and the server itself. */
static void server_free(struct sl_server *srv)
{
	sl_ring_close(&srv->ring);
	free(srv->scratch);
	sl_net_free(srv);
	sl_kafka_free(srv);
	sl_sendfile_pool_free(&srv->sendfile_pool);
	sl_security_close(srv);
	sl_tls_server_free(srv->tls);
	free(srv);
}

/* sl_server_start failed after the loop's handles were made: undo in the loop (handles must be closed through it
 * before it can be freed), then free the rest. Returns rc. */
static int start_abort(struct sl_server *srv, int rc)
{
	srv->open_done = 1;
	srv->open_rc = rc;
	srv->shutting_down = 1;
	/* Nothing else is active to wake the loop for a check handle: close everything now, then let the loop run the
	 * close callbacks. */
	shutdown_check_cb(&srv->shutdown_check);
	uv_run(&srv->loop, UV_RUN_DEFAULT);
	uv_loop_close(&srv->loop);
	server_free(srv);
	return rc;
}

int sl_server_start(const struct sl_server_config *cfg, struct sl_server **out, char *err, size_t err_cap)
{
	struct sl_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return -ENOMEM;
	srv->cfg = *cfg;
	srv->started_ms = sl_clock_wall_ms();
	sl_limits_init(&srv->limits, cfg->memory_max, cfg->connections_max);
	char warning[256];
	int rc = sl_limits_plan_descriptors(&srv->limits, warning, sizeof(warning));
	if (rc < 0) {
		snprintf(err, err_cap, "%s", warning);
		free(srv);
		return rc;
	}
	if (warning[0] != '\0')
		sl_slog_msg(SL_SLOG_WARN, "descriptor_limit", "%s", warning);
	/* Every log of the shard (topics and the group log) opens its files through one bounded cache. */
	sl_files_init(&srv->files, srv->limits.files_fds_max);
	sl_sendfile_pool_init(&srv->sendfile_pool);
	srv->cfg.log.files = &srv->files;
	srv->cfg.log.fsync_hist = &srv->stats.fsync_latency;
	rc = uv_loop_init(&srv->loop);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot start the event loop: %s", uv_strerror(rc));
		free(srv);
		return rc;
	}
	rc = sl_ring_init(&srv->ring, 1);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot create an io_uring: %s (needs Linux 5.6 or later and io_uring enabled)",
		         strerror(-rc));
		uv_loop_close(&srv->loop);
		free(srv);
		return rc;
	}
	/* Users, ACLs, the audit log and the TLS context come before any listener, the metrics one included (it
	 * listens during recovery and speaks HTTPS when TLS is configured). */
	rc = sl_security_open(srv, err, err_cap);
	if (rc == 0 && cfg->security.tls_cert[0] != '\0')
		rc = sl_tls_server_open(&cfg->security, &srv->tls, err, err_cap);
	if (rc < 0) {
		if (err[0] == '\0')
			snprintf(err, err_cap, "cannot open the security settings of %s: %s", cfg->data_dir,
			         strerror(-rc));
		sl_security_close(srv);
		sl_ring_close(&srv->ring);
		uv_loop_close(&srv->loop);
		free(srv);
		return rc;
	}
	uv_poll_init(&srv->loop, &srv->ring_poll, srv->ring.event_fd);
	srv->ring_poll.data = srv;
	uv_prepare_init(&srv->loop, &srv->submit_prepare);
	srv->submit_prepare.data = srv;
	uv_timer_init(&srv->loop, &srv->retention_timer);
	srv->retention_timer.data = srv;
	uv_timer_init(&srv->loop, &srv->groups_timer);
	srv->groups_timer.data = srv;
	uv_timer_init(&srv->loop, &srv->health_timer);
	srv->health_timer.data = srv;
	uv_signal_init(&srv->loop, &srv->sigterm);
	uv_signal_init(&srv->loop, &srv->sigint);
	srv->sigterm.data = srv->sigint.data = srv;
	uv_signal_start(&srv->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&srv->sigint, signal_cb, SIGINT);
	uv_signal_init(&srv->loop, &srv->sighup);
	srv->sighup.data = srv;
	uv_signal_start(&srv->sighup, sighup_cb, SIGHUP);
	uv_check_init(&srv->loop, &srv->shutdown_check);
	srv->shutdown_check.data = srv;

	rc = sl_metrics_start(srv, err, err_cap);
	if (rc < 0)
		return start_abort(srv, rc);
	srv->open_work.data = srv;
	rc = uv_queue_work(&srv->loop, &srv->open_work, open_work_cb, open_after_cb);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot start recovery: %s", uv_strerror(rc));
		return start_abort(srv, rc);
	}
	*out = srv;
	return 0;
}

void sl_server_addresses(const struct sl_server *srv, const char **listen_out, const char **metrics_out)
{
	*listen_out = srv->listen_addr;
	*metrics_out = srv->metrics_addr;
}

int sl_server_run(struct sl_server *srv)
{
	uv_run(&srv->loop, UV_RUN_DEFAULT);
	int rc = uv_loop_close(&srv->loop);
	if (rc < 0)
		sl_slog_msg(SL_SLOG_ERROR, "loop_close_failed", "event loop closed with handles open: %s",
		            uv_strerror(rc));
	int code = srv->exit_code;
	server_free(srv);
	return code;
}

int sl_server_kafka_port(const struct sl_server *srv)
{
	return sl_kafka_port(srv);
}
