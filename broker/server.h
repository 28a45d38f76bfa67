/* The broker's network side: one shard (a libuv loop, the io_uring of its partitions, and the topics it owns)
 * serving the wire protocol of proto/synclog.proto on a TCP listener.
 *
 * Which thread may call: the thread that runs the loop. */
#ifndef SL_BROKER_SERVER_H
#define SL_BROKER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "broker/security.h"
#include "broker/compaction.h"
#include "broker/groups.h"
#include "broker/storage/log.h"

struct sl_server;

struct sl_server_config {
	char data_dir[1024];
	char listen_host[256];
	int listen_port; /* 0: any free port */
	char kafka_listen_host[256];
	int kafka_listen_port; /* -1: off (the default); 0: any free port */
	char metrics_host[256];
	int metrics_port; /* -1: off */
	uint32_t frame_bytes_max;
	/* Connections at once; past it new ones are closed at accept. */
	uint32_t connections_max;
	/* Request bytes read from one connection and not yet answered; past it the broker stops reading that
	 * socket until answers go out. */
	uint64_t conn_inflight_bytes_max;
	uint32_t conn_inflight_requests_max;
	/* Bytes held for clients across every connection (broker/limits.h); 0: a quarter of physical memory. */
	uint64_t memory_max;
	/* A connection that has not finished Hello this long after it was accepted is closed. */
	uint32_t handshake_timeout_ms;
	/* A connection with no request in flight that has neither sent a whole request nor been written to for this
	 * long is closed (0: never). */
	uint32_t idle_timeout_ms;
	/* How often retention and roll-by-age run. */
	uint32_t retention_check_ms;
	/* A fetch that is behind the log end asks the kernel to read this many bytes past its span into the page
	 * cache (handlers/fetch.c, "Read-ahead"); 0: none. */
	uint32_t fetch_readahead_bytes;
	/* 1: a fetch answer to a plaintext connection (native or Kafka listener) goes from the segment files to the
	 * socket by io_uring splices, without a copy through user space (broker/sendfile.h); 0: every answer is read
	 * into memory and written (what TLS connections always do). */
	int fetch_zero_copy;
	/* Records per second of origin=backfill produce each topic takes in (ProduceRequest.backfill), enforced by
	 * holding answers back as Kafka's quotas do; 0: unlimited. */
	uint64_t backfill_rate_max;
	struct sl_log_config log;
	struct sl_security_config security;
	struct sl_compaction_config compaction; /* the cleaner (broker/compaction.h) */
	/* Groups: --stall-after, --health-window, --initial-rebalance-delay, --groups-max. */
	struct sl_groups_settings groups;
	/* Called on the loop once recovery finished and the listener accepts (sl_server_addresses names it). */
	void (*on_ready)(struct sl_server *srv);
};

/* Four fetches' worth at the clients' default of 1 MiB per partition: the disk reads the next spans while the
 * consumer takes the last one in. */
#define SL_FETCH_READAHEAD_BYTES_DEFAULT (4u << 20)
#define SL_FETCH_READAHEAD_BYTES_MAX     (64u << 20)

void sl_server_config_default(struct sl_server_config *cfg);

struct sl_server;
/* Bind the metrics listener (which answers /healthz at once and /readyz with 503 until ready) and start opening
 * the data directory (recovering every partition) on a worker thread. Returns 0 or a negative errno with a
 * one-line message in err. Once recovery finished, sl_server_run binds the listener and calls cfg->on_ready. */
int sl_server_start(const struct sl_server_config *cfg, struct sl_server **out, char *err, size_t err_cap);
/* The bound addresses as HOST:PORT, the real ports when 0 was asked; metrics "" when off. Valid until
 * sl_server_run returns. */
void sl_server_addresses(const struct sl_server *srv, const char **listen_out, const char **metrics_out);
/* Run until SIGTERM/SIGINT: then stop accepting, finish in-flight requests, close every log cleanly. Returns 0
 * or the first error met while closing. Frees the server. */
int sl_server_run(struct sl_server *srv);
/* The port the Kafka listener is bound to, or -1 when it is off. */
int sl_server_kafka_port(const struct sl_server *srv);

#endif
