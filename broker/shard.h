/* One shard's state: a libuv loop, the io_uring of its partitions, the topics and groups it owns, its counters.
 * Shared by the wiring (shard.c), the front ends (broker/net/, broker/kafka/) and the handlers
 * (broker/handlers/), none of which sees another's internals: the front ends keep their connections behind
 * struct sl_net, and handlers answer through request.h. Keeping this state in one struct (no globals) is what
 * makes N shards, one per core, a change of wiring.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_SHARD_H
#define SL_BROKER_SHARD_H

#include <stddef.h>
#include <uv.h>

#include "broker/groups.h"
#include "broker/limits.h"
#include "proto/base/histogram.h"
#include "broker/request.h"
#include "broker/sendfile.h"
#include "broker/server.h"
#include "broker/storage/ring.h"
#include "broker/topics.h"
#include "proto/base/addr.h"

/* Request kinds are the body cases of proto/synclog.proto's Request; latency is kept per kind. */
#define SL_REQUEST_KINDS 64

struct sl_server_stats {
	uint64_t connections_accepted;
	uint64_t connections_refused;
	uint32_t connections_open;
	uint64_t requests;
	uint64_t bad_frames;
	uint64_t produce_batches;
	uint64_t produce_records;
	uint64_t produce_bytes;
	uint64_t produce_errors;
	uint64_t fetch_requests;
	uint64_t fetch_bytes;
	/* Fetch answers sent from segment files to the socket without a copy (broker/sendfile.h): sent whole,
	 * their bytes, and those cut by an error or a closed connection. */
	uint64_t fetch_sendfile_answers;
	uint64_t fetch_sendfile_bytes;
	uint64_t fetch_sendfile_failed;
	uint64_t
	        fetch_sendfile_disk_splices; /* file -> pipe moves of pages not in memory, done on io_uring's workers */
	/* From the decoding of a request to its answer being handed to the front end, per kind (the body case;
	 * 0: undecodable). */
	struct sl_histogram request_latency[SL_REQUEST_KINDS];
	uint64_t requests_by_kind[SL_REQUEST_KINDS];
	uint64_t request_errors_by_kind[SL_REQUEST_KINDS];
	struct sl_histogram fsync_latency; /* every partition's group commits (log config fsync_hist) */
	uint64_t scrapes;
	int64_t last_scrape_ns;       /* how long the last /metrics held the loop */
	int64_t last_scrape_total_ns; /* from its request to its answer, thread pool included */
};

/* The last backfill or reconcile run per (kind, topic), as its tool reported it (handlers/status.c). */
#define SL_RUNS_MAX 256
struct sl_run {
	char kind[16];
	char topic[SL_TOPIC_NAME_BYTES_MAX + 1];
	char target[SL_APPLIER_TARGET_BYTES_MAX];
	int64_t started_ms, finished_ms;
	int ok;
	char summary[256];
	uint64_t rows, differences;
	double diff_ratio;
	uint64_t repaired; /* reconcile --repair: keys repaired through the log */
	uint64_t count;    /* runs reported for this kind and topic */
};

struct sl_net;       /* broker/net/: the native listener and its connections */
struct sl_ids_job;   /* broker/offload.c */
struct sl_topic_job; /* broker/topic_jobs.c */

/* Work handed to the thread pool (offload.h). */
struct sl_offload_state {
	int housekeeping_busy;
	uint64_t housekeeping_skipped;
	uint64_t segments_removed;
	struct sl_ids_job *ids_job;      /* the producer-id reservation in flight, or NULL */
	uint32_t time_lookups;           /* ListOffsets by time reading off the loop (handlers/list_offsets.c) */
	uint32_t fetch_warms;            /* fetches whose plan reads an index or headers off the loop (fetch.c) */
	struct sl_topic_job *topic_jobs; /* topic creations and deletions in flight (broker/topic_jobs.c) */
	uint32_t topic_job_count;
};
struct sl_metrics; /* broker/net/metrics.c: the HTTP listener */
struct sl_console; /* broker/net/console_history.c: the web console's chart history */
struct sl_kafka;   /* broker/kafka/: the Kafka listener and its connections */
struct sl_tls_server;

struct sl_server {
	struct sl_server_config cfg;
	uv_loop_t loop;
	struct sl_ring ring;
	uv_poll_t ring_poll;
	uv_prepare_t submit_prepare;
	uv_signal_t sigterm;
	uv_signal_t sigint;
	uv_timer_t retention_timer;
	uv_check_t shutdown_check;
	struct sl_topics topics;
	struct sl_groups groups;
	uv_timer_t groups_timer;         /* session expiry, initial rebalance delays */
	uv_timer_t health_timer;         /* group health, topic rates, offset-log compaction */
	struct sl_join_wait *join_waits; /* JoinGroups held while their group forms (handlers/groups.c) */
	struct sl_run runs[SL_RUNS_MAX];
	uint32_t run_count;
	/* Startup: the data directory is opened on a worker thread while the metrics listener already answers. */
	uv_work_t open_work;
	int open_done; /* the worker finished (success or not) */
	int ready;     /* recovery finished and the listener accepts: /readyz says 200 */
	int open_rc;
	int64_t open_took_ms;
	char open_error[1024];
	int64_t started_ms;
	int shutting_down;
	int exit_code;
	int64_t next_producer_id;
	int64_t producer_id_reserved; /* ids below this are reserved on disk (handlers/admin.c) */
	/* Decompression buffer for validating zstd batches; one per shard, allocated on first use. */
	uint8_t *scratch;
	size_t scratch_cap;
	struct sl_net *net;
	struct sl_metrics *metrics;
	struct sl_console *console;   /* the web console's chart history (broker/net/console.h); NULL when off */
	struct sl_kafka *kafka;       /* NULL when the Kafka listener is off */
	struct sl_security *security; /* broker/security.h */
	struct sl_tls_server *tls;    /* broker/tls.h: every listener's TLS context, or NULL without TLS */
	uv_signal_t sighup;           /* reloads the TLS certificates */
	/* The bound listeners as HOST:PORT (the real port when 0 was asked); metrics_addr "" when off. */
	char listen_addr[SL_ADDR_TEXT_BYTES];
	char metrics_addr[SL_ADDR_TEXT_BYTES];
	struct sl_offload_state offload;
	struct sl_compaction *compaction; /* the cleaner (compaction.h); NULL before start and after stop */
	struct sl_server_stats stats;
	/* Memory, connection and descriptor limits both front ends share. */
	struct sl_limits limits;
	/* Descriptors of partition files, within limits.files_fds_max (broker/storage/files.h). */
	struct sl_files files;
	/* Pipes and descriptors of fetch answers sent from segment files, shared by both front ends
	 * (broker/sendfile.h invariant 3). */
	struct sl_sendfile_pool sendfile_pool;
};

#endif
