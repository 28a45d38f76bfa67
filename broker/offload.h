/* Disk work the loop hands to libuv's thread pool, so that it never waits on the disk itself: the periodic
 * housekeeping pass (producer-state snapshots and retention's file removals) and the producer-id reservation of
 * InitProducer. The loop prepares everything in memory first (encoded snapshots, segments detached from their
 * logs, dup'ed directory descriptors), the worker only makes the system calls, and the completion runs back on
 * the loop. At most one housekeeping job and one reservation are in flight: a pass that finds the previous one
 * still running is skipped (and counted), so a slow disk cannot pile up work.
 *
 * Which thread may call: the shard's loop thread only. */
#ifndef SL_BROKER_OFFLOAD_H
#define SL_BROKER_OFFLOAD_H

#include <stdint.h>

struct sl_server;
struct sl_req;

/* DATA/producer-ids: one line of ASCII, the decimal ceiling below which ids may have been issued ("12000\n"),
 * replaced atomically. A missing or unreadable file counts as 0: ids restart at 0 only on a fresh directory. */
#define SL_PRODUCER_IDS_FILE "producer-ids"

/* Start a housekeeping pass: roll segments past their age (on the loop: a roll only creates files), snapshot
 * every partition's producer state and apply retention (both off the loop). */
void sl_offload_housekeeping(struct sl_server *srv);
/* 1 while a housekeeping job, a reservation, a time lookup or a topic job is in flight (shutdown waits for 0 before
 * closing the logs). */
int sl_offload_busy(const struct sl_server *srv);

/* Reserve producer ids up to reserved (DATA/producer-ids, atomic replace) off the loop; req waits until it is
 * durable, then done_cb(req, 0 or negative errno) runs on the loop. Requests arriving while a reservation is in
 * flight queue behind it, in order. */
void sl_offload_reserve_producer_ids(struct sl_server *srv, int64_t reserved, struct sl_req *req,
                                     void (*done_cb)(struct sl_req *req, int status));

#endif
