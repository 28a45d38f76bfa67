/* Idempotent producer bookkeeping per partition; see producer_state.h for the rules. Entries are kept sorted
 * by producer id for binary search; a partition rarely has more than a few producers.
 *
 * The snapshot file (producers.snapshot in the partition's folder) is ASCII text so an operator can read it,
 * replaced atomically (proto/base/fs.h) every retention pass and at shutdown:
 *
 *   synclog-producers 1 <log offset>\n                      header: format version 1, and the offset of the log
 *                                                            the state is valid at (replay starts there)
 *   <producer id> <epoch> <next sequence> <batch count>     one line per producer, then batch count groups of
 *     (<base sequence> <last sequence> <base offset> <last offset>)...\n   the batches kept for retries
 *
 * Invariants checked on load (anything else makes the whole file ignored and the state rebuilt from the log):
 *   1. the header is exactly "synclog-producers 1 N";
 *   2. a producer id is >= 0 and a batch count is at most SL_PRODUCER_BATCHES_KEPT;
 *   3. in each batch, last sequence >= base sequence. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/base/assert.h"
#include "proto/base/fs.h"
#include "broker/storage/producer_state.h"

void sl_producer_state_init(struct sl_producer_state *s)
{
	memset(s, 0, sizeof(*s));
}

void sl_producer_state_free(struct sl_producer_state *s)
{
	free(s->entries);
	sl_producer_state_init(s);
}

static struct sl_producer_entry *find(const struct sl_producer_state *s, int64_t id, uint32_t *at)
{
	uint32_t lo = 0, hi = s->count;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->entries[mid].producer_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return lo < s->count && s->entries[lo].producer_id == id ? &s->entries[lo] : NULL;
}

int sl_producer_state_known(const struct sl_producer_state *s, int64_t producer_id)
{
	uint32_t at;
	return find(s, producer_id, &at) != NULL;
}

/* Eviction order (producer_state.h): 0 evicted first. */
static int evict_tier(const struct sl_producer_entry *e)
{
	for (uint32_t i = 0; i < e->batch_count; i++)
		if (e->batches[(e->batch_head + i) % SL_PRODUCER_BATCHES_KEPT].base_offset < 0)
			return 2; /* in flight: its outcome must find it */
	return e->appended_count > 1;
}

static struct sl_producer_entry *insert(struct sl_producer_state *s, int64_t id, int16_t epoch, int64_t now_ms)
{
	uint32_t at;
	if (find(s, id, &at) != NULL)
		return &s->entries[at];
	if (s->count == SL_PRODUCERS_PER_PARTITION_MAX) {
		/* Forget one (producer_state.h says which): its retries then count as new batches. */
		uint32_t victim = 0;
		int victim_tier = evict_tier(&s->entries[0]);
		for (uint32_t i = 1; i < s->count; i++) {
			int tier = evict_tier(&s->entries[i]);
			if (tier < victim_tier ||
			    (tier == victim_tier && s->entries[i].last_used_ms < s->entries[victim].last_used_ms)) {
				victim = i;
				victim_tier = tier;
			}
		}
		memmove(&s->entries[victim], &s->entries[victim + 1], (s->count - victim - 1) * sizeof(*s->entries));
		s->count--;
		find(s, id, &at);
	}
	if (s->count == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 4;
		struct sl_producer_entry *e = realloc(s->entries, cap * sizeof(*e));
		if (e == NULL)
			return NULL;
		s->entries = e;
		s->cap = cap;
	}
	memmove(&s->entries[at + 1], &s->entries[at], (s->count - at) * sizeof(*s->entries));
	s->count++;
	struct sl_producer_entry *e = &s->entries[at];
	memset(e, 0, sizeof(*e));
	e->producer_id = id;
	e->epoch = epoch;
	e->last_used_ms = now_ms;
	return e;
}

static void push_batch(struct sl_producer_entry *e, int32_t base_seq, int32_t count, int64_t base_offset,
                       int64_t last_offset)
{
	uint32_t slot = (e->batch_head + e->batch_count) % SL_PRODUCER_BATCHES_KEPT;
	if (e->batch_count == SL_PRODUCER_BATCHES_KEPT) {
		slot = e->batch_head;
		e->batch_head = (e->batch_head + 1) % SL_PRODUCER_BATCHES_KEPT;
	} else {
		e->batch_count++;
	}
	e->batches[slot] = (struct sl_producer_batch){base_seq, base_seq + count - 1, base_offset, last_offset};
	e->next_sequence = base_seq + count;
	if (e->appended_count < UINT32_MAX)
		e->appended_count++;
}

int sl_producer_state_check(struct sl_producer_state *s, int64_t producer_id, int16_t epoch, int32_t base_sequence,
                            int32_t record_count, int64_t now_ms, struct sl_producer_batch *dup)
{
	uint32_t at;
	struct sl_producer_entry *e = find(s, producer_id, &at);
	if (e == NULL) {
		/* First batch seen from this producer on this partition: Kafka accepts whatever sequence it starts
		 * with only at 0; after a broker restart that forgot it, any start is taken as the new baseline. */
		e = insert(s, producer_id, epoch, now_ms);
		if (e == NULL)
			return -ENOMEM;
		push_batch(e, base_sequence, record_count, -1, -1);
		return SL_PRODUCER_APPEND;
	}
	e->last_used_ms = now_ms;
	if (epoch < e->epoch)
		return SL_PRODUCER_FENCED;
	if (epoch > e->epoch) {
		/* A new epoch starts its sequences over. */
		e->epoch = epoch;
		e->batch_count = 0;
		e->batch_head = 0;
		push_batch(e, base_sequence, record_count, -1, -1);
		return SL_PRODUCER_APPEND;
	}
	for (uint32_t i = 0; i < e->batch_count; i++) {
		struct sl_producer_batch *b = &e->batches[(e->batch_head + i) % SL_PRODUCER_BATCHES_KEPT];
		if (b->base_sequence == base_sequence && b->last_sequence == base_sequence + record_count - 1) {
			*dup = *b;
			return SL_PRODUCER_DUPLICATE;
		}
	}
	if (base_sequence != e->next_sequence)
		return SL_PRODUCER_OUT_OF_ORDER;
	push_batch(e, base_sequence, record_count, -1, -1);
	return SL_PRODUCER_APPEND;
}

void sl_producer_state_done(struct sl_producer_state *s, int64_t producer_id, int32_t base_sequence, int status,
                            int64_t base_offset, int64_t last_offset)
{
	uint32_t at;
	struct sl_producer_entry *e = find(s, producer_id, &at);
	if (e == NULL)
		return;
	for (uint32_t i = 0; i < e->batch_count; i++) {
		uint32_t slot = (e->batch_head + i) % SL_PRODUCER_BATCHES_KEPT;
		struct sl_producer_batch *b = &e->batches[slot];
		if (b->base_sequence != base_sequence)
			continue;
		if (status == 0) {
			b->base_offset = base_offset;
			b->last_offset = last_offset;
			return;
		}
		/* A failed append is cut from the log with every later one (log.c, invariant 3): forget this batch
		 * and those after it, and expect this sequence again. */
		e->batch_count = i;
		if (e->next_sequence > base_sequence)
			e->next_sequence = base_sequence;
		return;
	}
}

int sl_producer_state_replay(struct sl_producer_state *s, int64_t producer_id, int16_t epoch, int32_t base_sequence,
                             int32_t record_count, int64_t base_offset, int64_t last_offset, int64_t now_ms)
{
	struct sl_producer_entry *e = insert(s, producer_id, epoch, now_ms);
	if (e == NULL)
		return -ENOMEM;
	if (epoch > e->epoch) {
		e->epoch = epoch;
		e->batch_count = 0;
		e->batch_head = 0;
	}
	push_batch(e, base_sequence, record_count, base_offset, last_offset);
	return 0;
}

/* Snapshot file: text, one producer per line after a header line, so an operator can read it:
 *   synclog-producers 1 <log offset>
 *   <producer id> <epoch> <next sequence> <batch count> (<base seq> <last seq> <base off> <last off>)... */
int sl_producer_state_encode(const struct sl_producer_state *s, int64_t log_offset, char **text_out, size_t *len_out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (f == NULL)
		return -ENOMEM;
	fprintf(f, "synclog-producers 1 %" PRId64 "\n", log_offset);
	for (uint32_t i = 0; i < s->count; i++) {
		const struct sl_producer_entry *e = &s->entries[i];
		uint32_t kept = 0;
		for (uint32_t k = 0; k < e->batch_count; k++)
			kept += e->batches[(e->batch_head + k) % SL_PRODUCER_BATCHES_KEPT].base_offset >= 0;
		fprintf(f, "%" PRId64 " %d %d %u", e->producer_id, e->epoch, e->next_sequence, kept);
		for (uint32_t k = 0; k < e->batch_count; k++) {
			const struct sl_producer_batch *b = &e->batches[(e->batch_head + k) % SL_PRODUCER_BATCHES_KEPT];
			if (b->base_offset >= 0)
				fprintf(f, " %d %d %" PRId64 " %" PRId64, b->base_sequence, b->last_sequence,
				        b->base_offset, b->last_offset);
		}
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		free(text);
		return -ENOMEM;
	}
	*text_out = text;
	*len_out = len;
	return 0;
}

int sl_producer_state_save(const struct sl_producer_state *s, const char *path, int64_t log_offset)
{
	/* Written with the one atomic replacement (temp, fsync, rename, fsync the directory), so a crash leaves the
	 * old snapshot or the new one. */
	char *text;
	size_t len;
	int rc = sl_producer_state_encode(s, log_offset, &text, &len);
	if (rc < 0)
		return rc;
	rc = sl_fs_replace_atomic(path, text, len);
	free(text);
	return rc;
}

int sl_producer_state_load(struct sl_producer_state *s, const char *path, int64_t *log_offset_out)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	int version = 0;
	int64_t offset;
	int rc = 0;
	if (fscanf(f, "synclog-producers %d %" SCNd64, &version, &offset) != 2 || version != 1)
		rc = -EBADMSG;
	while (rc == 0) {
		int64_t id;
		int epoch, next_seq;
		unsigned count;
		int n = fscanf(f, "%" SCNd64 " %d %d %u", &id, &epoch, &next_seq, &count);
		if (n == EOF)
			break;
		if (n != 4 || count > SL_PRODUCER_BATCHES_KEPT || id < 0) {
			rc = -EBADMSG;
			break;
		}
		struct sl_producer_entry *e = insert(s, id, (int16_t)epoch, 0);
		if (e == NULL) {
			rc = -ENOMEM;
			break;
		}
		for (unsigned k = 0; k < count && rc == 0; k++) {
			int bs, ls;
			int64_t bo, lo;
			if (fscanf(f, "%d %d %" SCNd64 " %" SCNd64, &bs, &ls, &bo, &lo) != 4 || ls < bs)
				rc = -EBADMSG;
			else
				push_batch(e, bs, ls - bs + 1, bo, lo);
		}
		e->next_sequence = next_seq;
	}
	fclose(f);
	if (rc < 0) {
		sl_producer_state_free(s);
		return rc;
	}
	*log_offset_out = offset;
	return 0;
}
