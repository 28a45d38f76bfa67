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
#include "broker/request.h"
#include "broker/server.h"
#include "broker/storage/ring.h"
#include "broker/topics.h"
#include "proto/base/addr.h"

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
};

struct sl_net;     /* broker/net/: the native listener and its connections */
struct sl_ids_job; /* broker/offload.c */

/* Work handed to the thread pool (offload.h). */
struct sl_offload_state {
	int housekeeping_busy;
	uint64_t housekeeping_skipped;
	uint64_t segments_removed;
	struct sl_ids_job *ids_job; /* the producer-id reservation in flight, or NULL */
};
struct sl_metrics; /* broker/net/metrics.c: the HTTP listener */
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
	uv_timer_t groups_timer; /* session expiry */
	int shutting_down;
	int exit_code;
	int64_t next_producer_id;
	int64_t producer_id_reserved; /* ids below this are reserved on disk (handlers/admin.c) */
	/* Decompression buffer for validating zstd batches; one per shard, allocated on first use. */
	uint8_t *scratch;
	size_t scratch_cap;
	struct sl_net *net;
	struct sl_metrics *metrics;
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
};

#endif
