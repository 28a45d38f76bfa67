/* Sending an answer whose stored bytes stay in the kernel: the parts held in memory (frame header, protobuf tags
 * and lengths, offsets, errors) and the parts that are spans of segment files go, in order, into a pipe and from
 * the pipe to the socket by splice(2). Page-cache pages are passed by reference from the file to the pipe and from
 * the pipe to TCP, so a replayed batch is never copied through user space. Only for plaintext sockets: TLS must
 * encrypt the bytes in user space (each front end keeps the copy path for it). Both front ends use it, with one
 * pool per shard (struct sl_server's sendfile_pool): the native listener (broker/net/conn.c) and the Kafka
 * listener (broker/kafka/conn.c), whose Fetch answers carry the same stored batches in another frame.
 *
 * An answer's journey (sendfile.c, step), the loop never waiting on either end:
 *
 *   FILL   memory parts are written into the pipe by write(2): the pipe is non-blocking, a full one says EAGAIN.
 *          A file part whose pages are all in the page cache (cachestat(2)) is spliced file -> pipe on the loop,
 *          which takes no disk read; one that is not goes to the ring (IORING_OP_SPLICE), whose io-wq worker waits
 *          for the disk while the loop serves everyone else.
 *   DRAIN  once the pipe is full or every part is in it: splice pipe -> socket on the loop. The socket is
 *          non-blocking, so a full socket buffer answers EAGAIN at once; then
 *   WAIT   a POLLOUT poll on the ring until the client reads, then DRAIN again. A consumer that stops reading
 *          parks its answer here and costs the loop nothing.
 *   END    every part sent (or the stream cut): a no-op on the ring, whose completion closes the descriptors,
 *          gives the pipe back to the pool (empty) and runs done_cb.
 *
 * Why passing page references is safe: the bytes of a span never change once written (segments are append-only
 * below written_end, and the cleaner replaces a segment by a new file, never in place), so a page the socket still
 * holds says what it said when the answer was planned.
 *
 * Invariants:
 *   1. The answer holds its own descriptors of the files (sl_req_file) and of the socket (a dup): a segment deleted
 *      by retention or the cleaner, or a connection closed by its owner, never redirects a splice to another file.
 *   2. A pipe goes back to the pool only empty; a pipe an error left bytes in is closed.
 *   3. At most SL_SENDFILE_PIPES_MAX answers are in flight per shard and their descriptors stay within
 *      SL_SENDFILE_FDS_MAX (reserved in broker/limits.h): past either, answers take the copy path.
 *   4. done_cb runs exactly once per started answer, from a ring completion (never inside sl_sendfile_start).
 *   5. At most one ring operation of an answer is in flight; its bytes move in order: pipe contents go out before
 *      anything else goes in past a full pipe, and the parts go in in their order.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_SENDFILE_H
#define SL_BROKER_SENDFILE_H

#include <stddef.h>
#include <stdint.h>

#include "broker/limits.h"
#include "broker/storage/ring.h"

/* Answers in flight at once, each with a pipe (two descriptors). Eight keep eight replaying consumers streaming
 * at disk or memory speed on two cores; more would only hold descriptors, the copy path serves the rest. */
#define SL_SENDFILE_PIPES_MAX    8
/* Descriptors the answers in flight may hold besides their pipes: the segment files of their spans and a dup of
 * their socket each. */
#define SL_SENDFILE_HELD_FDS_MAX (SL_LIMITS_SENDFILE_FDS - 2 * SL_SENDFILE_PIPES_MAX)
_Static_assert(SL_SENDFILE_HELD_FDS_MAX >= 2 * SL_SENDFILE_PIPES_MAX, "each answer may hold a file and a socket");
/* Answers from files one connection may have reserved, sending or queued (each front end's rule): one on its way
 * and one ready behind it keep a replaying consumer's socket busy; more would take pipes other consumers could use. */
#define SL_SENDFILE_CONN_ANSWERS_MAX 2
/* The pipe's size asked for: 1 MiB (the default /proc/sys/fs/pipe-max-size) lets one splice to the socket move a
 * whole default fetch; the kernel's 64 KiB if refused. */
#define SL_SENDFILE_PIPE_BYTES       (1u << 20)

struct sl_sendfile_pool {
	int pipes[SL_SENDFILE_PIPES_MAX][2]; /* idle pipes: [0] read end, [1] write end */
	uint32_t pipe_bytes[SL_SENDFILE_PIPES_MAX];
	uint32_t idle_count;
	uint32_t answers; /* reserved or in flight */
	uint32_t held_fds;
	uint64_t page_bytes;   /* for counting a range's pages */
	int cachestat_missing; /* the kernel has no cachestat(2) (before 6.5): every file part goes to the ring */
};

/* One part of an answer: len bytes at mem, or (mem == NULL) len bytes of fd at pos. */
struct sl_sendfile_part {
	const uint8_t *mem;
	int fd;
	uint64_t pos;
	uint64_t len;
};

struct sl_sendfile;
/* status 0: every byte was sent; a negative errno: the stream is cut (the connection must close). */
typedef void (*sl_sendfile_done_cb)(struct sl_sendfile *sf, int status);

/* One answer in flight. Its owner allocates it with parts and the memory they point to, and frees it in done_cb
 * (or after a failed start). */
struct sl_sendfile {
	struct sl_io io;
	struct sl_sendfile_pool *pool;
	struct sl_ring *ring;
	int sock_fd; /* our dup */
	int pipe_r, pipe_w;
	uint32_t pipe_cap;   /* the pipe's size in bytes */
	uint64_t pipe_held;  /* bytes in the pipe, not yet sent */
	int pipe_full;       /* a fill found no room: drain before filling again */
	int op;              /* the ring operation in flight (sendfile.c), 0 when none */
	int aborted;         /* the owner gave up: finish at the next completion */
	int status;          /* how it ended, for the completion that finishes it */
	uint32_t ring_fills; /* file -> pipe splices handed to the ring (pages not in the page cache) */
	uint32_t part_index; /* the part being filled */
	uint64_t part_done;  /* its bytes already in the pipe */
	uint32_t part_count;
	uint32_t reserved_fds; /* given back to the pool at the end */
	sl_sendfile_done_cb done_cb;
	void *data; /* the owner's */
	struct sl_sendfile_part *parts;
};

void sl_sendfile_pool_init(struct sl_sendfile_pool *p);
void sl_sendfile_pool_free(struct sl_sendfile_pool *p);
/* Set aside room for one answer holding file_count files (invariant 3). Returns 0 or -EAGAIN. */
int sl_sendfile_reserve(struct sl_sendfile_pool *p, uint32_t file_count);
/* Add file_count files to a reservation made by sl_sendfile_reserve: an answer planned in pieces (a Kafka Fetch
 * answers one handler request per topic, each reserving its own files). The answer then starts, or is given
 * back, with the sum. Returns 0 or -EAGAIN (the reservation stays as it was). */
int sl_sendfile_reserve_more(struct sl_sendfile_pool *p, uint32_t file_count);
/* Give back a reservation that no answer took. */
void sl_sendfile_unreserve(struct sl_sendfile_pool *p, uint32_t file_count);
/* Send sf's parts to the socket sock_fd (not kept: dup'd), with the reservation of file_count files that sf now
 * owns; the parts' file descriptors are sf's to close. Returns 0 (done_cb will run) or a negative errno (nothing
 * sent, done_cb never runs, the files and the reservation are given back). */
int sl_sendfile_start(struct sl_sendfile *sf, struct sl_sendfile_pool *pool, struct sl_ring *ring, int sock_fd,
                      uint32_t file_count, sl_sendfile_done_cb done_cb);
/* Count a finished answer (its done_cb's status) in the shard's metrics: sent, bytes, cut, disk splices. */
struct sl_server_stats;
void sl_sendfile_count(const struct sl_sendfile *sf, int status, struct sl_server_stats *st);
/* The connection is going: stop at the next step (a wait for the client to read is cancelled). done_cb still
 * runs, with a negative status. */
void sl_sendfile_abort(struct sl_sendfile *sf);

#endif
