/* Limits both front ends share (the native listener in broker/net/, the Kafka listener in broker/kafka/): one
 * broker-wide budget for the memory held for clients, one count of client connections, and the descriptor plan
 * derived from RLIMIT_NOFILE. A front end charges what it holds for each connection, asks before it takes in
 * more, and stops reading a socket when told to; the limits resume it once memory comes back. Handlers read the
 * room left for a response they size themselves (Fetch).
 *
 * Which thread may call: the shard's loop thread only.
 *
 * Memory. A front end counts, per connection, the bytes it holds for that client: request frames read and not
 * yet finished (a Produce's batches stay in their frame until appended), responses encoded and not yet written
 * to the socket, and the buffer of a large frame while it is being read. memory_used is that sum over every
 * connection of both front ends. Rules:
 *   1. Below memory_max any connection may take in a frame; its own per-connection bound still applies.
 *   2. At or over memory_max a connection may take in a frame only while what it holds, with the frame, stays
 *      within SL_LIMITS_CONN_FLOOR_BYTES: the connections with most in flight wait, a new or light client is
 *      still served. Overshoot is thus at most one floor (plus one stored batch, rule 4) per connection.
 *   3. A connection refused by rule 2 stops reading and registers with sl_limits_wait, saying what it holds and
 *      what it waits to take in; sl_limits_resume_waiters (the shard's prepare hook, once per loop pass in which
 *      memory was released) runs the resume_cb of every waiter rules 1 and 2 now admit, in the order they began
 *      waiting. The others keep waiting, so a waiter is not woken only to wait again.
 *   4. A handler that sizes its own response (Fetch) keeps it within sl_limits_response_bytes_max: what is left
 *      of the budget, never less than the floor (and at least one whole batch, as Fetch always returns).
 *   5. A parked request holds no response data while it waits (broker/handlers/fetch.c).
 * What the budget does not count, each bounded on its own: a connection's 64 KiB read buffer (connections_max of
 * them), the frame pool's kept buffers (SL_FRAME_POOL_BYTES_MAX), the storage engine's indexes.
 *
 * Connections. connections_open counts client connections of both front ends; at connections_max a front end
 * first closes one of its idle connections (not past its handshake, or without a request in flight) to make
 * room, and refuses the new one only when none is idle. connections_evicted counts the former.
 *
 * Descriptors. sl_limits_plan_descriptors raises the soft RLIMIT_NOFILE to the hard limit and splits it:
 * connections_max for client connections, SL_LIMITS_METRICS_CONNECTIONS_MAX for the metrics listener,
 * SL_LIMITS_FDS_RESERVED for the process itself (listeners, io_uring, eventfd, epoll, signals, locks, stdio),
 * SL_LIMITS_SENDFILE_FDS for answers sent from segment files in flight (broker/sendfile.h), and
 * the rest, files_fds_max, for partition files (broker/storage/files.h), at least a quarter of what is not
 * reserved (connections_max is lowered, with a warning, when the limit cannot hold both). A shard never opens more
 * partition files than that, so a client connection always finds a descriptor. */
#ifndef SL_BROKER_LIMITS_H
#define SL_BROKER_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "broker/storage/files.h"

/* 1 MiB: a Hello, an ack, a commit, a small batch or a 1 MiB fetch (Kafka's max.partition.fetch.bytes) fit, so a
 * light client keeps working while heavy ones wait. */
#define SL_LIMITS_CONN_FLOOR_BYTES        (1u << 20)
/* The default --memory-max is this fraction of physical memory, at least SL_LIMITS_MEMORY_MIN_BYTES. */
#define SL_LIMITS_MEMORY_RAM_DIVISOR      4
#define SL_LIMITS_MEMORY_MIN_BYTES        (64ull << 20)
/* Scrapes of the metrics listener at once: a Prometheus server or two and an operator's curl. */
#define SL_LIMITS_METRICS_CONNECTIONS_MAX 16
/* Descriptors the process needs besides client connections and partition files. */
#define SL_LIMITS_FDS_RESERVED            64
/* Descriptors answers sent from segment files to sockets may hold (pipes, files, sockets: broker/sendfile.h),
 * planned beside the reserve so the partition file cache never counts them. */
#define SL_LIMITS_SENDFILE_FDS            64
/* Partition files are opened on use and closed when idle; below this many descriptors for them a shard could not
 * keep a few partitions' active segments and folders open while it serves. */
#define SL_LIMITS_FILES_FDS_MIN           32

/* A connection waiting for memory (rule 3). Embedded in the front end's connection. */
struct sl_limits_waiter {
	struct sl_limits_waiter *prev, *next;
	int waiting;
	uint64_t held_bytes; /* what the connection holds, and the frame it waits to take in (0: any read) */
	uint64_t need_bytes;
	void (*resume_cb)(struct sl_limits_waiter *w);
};

struct sl_limits {
	uint64_t memory_max;
	uint64_t memory_used;
	uint64_t memory_used_peak;
	uint64_t memory_waits;   /* times a connection began waiting for memory */
	uint32_t memory_waiting; /* connections waiting now */
	int memory_released;     /* since the last sl_limits_resume_waiters */
	struct sl_limits_waiter *wait_head, *wait_tail;

	uint32_t connections_max;
	uint32_t connections_open;
	uint64_t connections_evicted;   /* idle connections closed to make room for a new one */
	uint64_t connections_timed_out; /* closed by the handshake or idle timeout */
	uint64_t metrics_refused;   /* metrics connections closed at accept: SL_LIMITS_METRICS_CONNECTIONS_MAX open */
	uint64_t metrics_timed_out; /* metrics connections not done within their timeout */

	uint64_t nofile;        /* RLIMIT_NOFILE soft limit after raising */
	uint64_t files_fds_max; /* descriptors partition files may use */
};

/* memory_max 0: the default (physical memory / SL_LIMITS_MEMORY_RAM_DIVISOR). */
void sl_limits_init(struct sl_limits *l, uint64_t memory_max, uint32_t connections_max);
/* The default memory budget of this machine. */
uint64_t sl_limits_memory_default(void);

/* Raise the soft descriptor limit to the hard one and split it (see above). When the limit cannot hold
 * connections_max besides the rest, connections_max is lowered to fit and warning says so (empty otherwise).
 * Returns 0, or -EMFILE (with the reason in warning) when the limit is too low to run at all. */
int sl_limits_plan_descriptors(struct sl_limits *l, char *warning, size_t warning_cap);

/* Memory held for a connection: charge when taken, release when given back (rule 3 resumes waiters later). */
void sl_limits_charge(struct sl_limits *l, uint64_t bytes);
void sl_limits_release(struct sl_limits *l, uint64_t bytes);
/* Rules 1 and 2: 1 when a connection holding conn_bytes may take in bytes more. */
int sl_limits_memory_admit(const struct sl_limits *l, uint64_t conn_bytes, uint64_t bytes);
/* Rule 4: the most a self-sized response may hold now. */
uint64_t sl_limits_response_bytes_max(const struct sl_limits *l);
/* Rule 3. Waiting again updates held and need; unwait of one that is not waiting is a no-op. */
void sl_limits_wait(struct sl_limits *l, struct sl_limits_waiter *w, uint64_t held_bytes, uint64_t need_bytes);
void sl_limits_unwait(struct sl_limits *l, struct sl_limits_waiter *w);
void sl_limits_resume_waiters(struct sl_limits *l);

/* Connection slots of both front ends. */
int sl_limits_connections_full(const struct sl_limits *l);
void sl_limits_connection_opened(struct sl_limits *l);
void sl_limits_connection_closed(struct sl_limits *l);

/* Prometheus text of the counters above (synclog_memory_*, synclog_connections_*, synclog_metrics_connections_*,
 * synclog_descriptors_max) and of the partition file cache (synclog_partition_files_*), for the metrics page.
 * Returns the bytes written (truncated to cap - 1). */
size_t sl_limits_metrics_text(const struct sl_limits *l, const struct sl_files *files, char *buf, size_t cap);

#endif
