/* The descriptors of partition files, bounded: every log of a shard opens its folder and segment files on use and
 * registers them here, and when more would be open than the shard's budget (fds_max, from broker/limits.h), the
 * least recently used entries that are not busy are closed. A shard with 10,000 partitions thus starts and serves
 * within any descriptor limit, instead of failing to start (about four descriptors per partition, all open).
 *
 * An entry is whatever its owner opens and closes as one: a log's folder with its active (and not yet sealed)
 * segments, or one sealed segment's .log file (log.c). The owner says how many descriptors it holds now
 * (sl_files_set), marks it used (sl_files_touch), reserves room before opening more (sl_files_reserve), and
 * answers two questions: busy_cb (may it be closed now?) and close_cb (close it). An entry is never closed while
 * busy: I/O submitted on its descriptors, a reader's pin, a log in the middle of its work.
 *
 * Which thread may call: the thread of the ring the logs use. Bounded: a reserve walks at most the whole list
 * (entries that are busy are skipped); it goes over the budget, and counts it, only when everything open is busy. */
#ifndef SL_BROKER_STORAGE_FILES_H
#define SL_BROKER_STORAGE_FILES_H

#include <stdint.h>

struct sl_files;

struct sl_file_entry {
	struct sl_file_entry *prev, *next; /* in the list while it holds descriptors */
	struct sl_files *files;            /* the cache it is registered with */
	uint32_t fds;                      /* descriptors it holds */
	int (*busy_cb)(struct sl_file_entry *e);
	void (*close_cb)(struct sl_file_entry *e); /* closes them; the cache then counts 0 */
};

struct sl_files {
	uint64_t fds_max;
	uint64_t fds_open;
	struct sl_file_entry *head, *tail; /* most recently used first */
	uint64_t closed_count;             /* entries closed to make room */
	uint64_t over_budget_count;        /* reserves that found everything busy */
};

void sl_files_init(struct sl_files *f, uint64_t fds_max);
/* Set up an entry of this cache, holding nothing yet. */
void sl_files_entry_init(struct sl_files *f, struct sl_file_entry *e, int (*busy_cb)(struct sl_file_entry *e),
                         void (*close_cb)(struct sl_file_entry *e));
/* Make room for fds more descriptors, closing entries from the least recently used end (never keep, never a
 * busy one). Returns 0, or -EMFILE when they do not fit (the caller may still open: the limit itself is higher). */
int sl_files_reserve(struct sl_files *f, uint32_t fds, const struct sl_file_entry *keep);
/* e now holds fds descriptors: with 0 it leaves the list, otherwise it is the most recently used. */
void sl_files_set(struct sl_file_entry *e, uint32_t fds);
/* e was used: the most recently used. */
void sl_files_touch(struct sl_file_entry *e);

#endif
