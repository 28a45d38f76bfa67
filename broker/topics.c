/* Topics: validating names, writing topic metadata atomically, opening each partition's log, deleting. A topic
 * lives in DATA/topics/<name>/ with topic.json and one folder per partition; see topics.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/base/assert.h"
#include "proto/base/clock.h"
#include "broker/contracts.h"
#include "broker/limits.h"
#include "broker/topics.h"
#include "proto/base/fs.h"
#include "proto/base/parallel.h"
#include "proto/base/slog.h"
#include "proto/batch.h"

#define META_FILE         "topic.json"
/* The fsyncs of opening, snapshotting and closing every partition, this many at once: 1,000 directory fsyncs took
 * 0.10 s on 4 threads, 0.13 s on 16 and 2.3 s one by one on this machine's virtio disk (concurrent fsyncs share
 * their cache flushes); 8 leaves room for a slower disk. */
#define OPEN_SYNC_THREADS 8
/* Descriptors a creation off the loop may hold while it opens the new topic's partitions (their own cache, moved
 * into the shard's by sl_topics_create_commit): what broker/limits.h reserves for the process beside partition
 * files, halved. Creations take turns (create_files_lock), so that the process never holds more than that on
 * their account, whatever the partition count; a chunk of open fsyncs (storage/log.c) may pass it for a moment. */
#define CREATE_FDS_MAX    (SL_LIMITS_FDS_RESERVED / 2)
static pthread_mutex_t create_files_lock = PTHREAD_MUTEX_INITIALIZER;

int sl_topic_name_check(const char *name, int internal)
{
	size_t n = strlen(name);
	if (n == 0 || n > SL_TOPIC_NAME_BYTES_MAX)
		return -EINVAL;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (!internal && strncmp(name, "__", 2) == 0)
		return -EINVAL;
	/* A leading dot is refused for new topics: it hides the folder from ls and used to be the broker's own
	 * scratch prefix (now DATA/scratch/). Folders of older versions named so still open (internal). */
	if (!internal && name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

/* topic.json: {"name", "partitions", "retention_ms", "retention_bytes", "compact", "segment_bytes", "segment_ms",
 * "delete_retention_ms", "retain_for_groups", "created_ms"}; keys added later are optional when read, so older
 * files still open. */
static int write_meta(const char *dir, const struct sl_topic_config *cfg)
{
	json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:b, s:I, s:I, s:I, s:b, s:I}", "name", cfg->name, "partitions",
	                      (int)cfg->partitions, "retention_ms", (json_int_t)cfg->retention_ms, "retention_bytes",
	                      (json_int_t)cfg->retention_bytes, "compact", cfg->compact, "segment_bytes",
	                      (json_int_t)cfg->segment_bytes, "segment_ms", (json_int_t)cfg->segment_ms,
	                      "delete_retention_ms", (json_int_t)cfg->delete_retention_ms, "retain_for_groups",
	                      cfg->retain_for_groups, "created_ms", (json_int_t)cfg->created_ms);
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (text == NULL)
		return -ENOMEM;
	char path[SL_PATH_BYTES_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, META_FILE);
	int rc = sl_fs_replace_atomic(path, text, strlen(text));
	free(text);
	return rc;
}

static int read_meta(const char *dir, struct sl_topic_config *cfg)
{
	char path[SL_PATH_BYTES_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, META_FILE);
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	if (j == NULL)
		return -EBADMSG;
	const char *name = NULL;
	int partitions = 0, compact = 0, retain_for_groups = 0;
	json_int_t retention_ms = -1, retention_bytes = -1, created_ms = 0, segment_bytes = 0, segment_ms = 0;
	json_int_t delete_retention_ms = SL_TOPIC_DELETE_RETENTION_MS_DEFAULT;
	int rc = json_unpack(j, "{s:s, s:i, s?:I, s?:I, s?:b, s?:I, s?:I, s?:I, s?:b, s?:I}", "name", &name,
	                     "partitions", &partitions, "retention_ms", &retention_ms, "retention_bytes",
	                     &retention_bytes, "compact", &compact, "segment_bytes", &segment_bytes, "segment_ms",
	                     &segment_ms, "delete_retention_ms", &delete_retention_ms, "retain_for_groups",
	                     &retain_for_groups, "created_ms", &created_ms);
	if (rc == 0 && (sl_topic_name_check(name, 1) != 0 || partitions < 1 || partitions > SL_TOPIC_PARTITIONS_MAX ||
	                segment_bytes < 0 || segment_bytes > UINT32_MAX || segment_ms < 0 || delete_retention_ms < 0))
		rc = -1;
	if (rc == 0) {
		snprintf(cfg->name, sizeof(cfg->name), "%s", name);
		cfg->partitions = (uint32_t)partitions;
		cfg->retention_ms = retention_ms;
		cfg->retention_bytes = retention_bytes;
		cfg->compact = compact;
		cfg->segment_bytes = segment_bytes;
		cfg->segment_ms = segment_ms;
		cfg->delete_retention_ms = delete_retention_ms;
		cfg->retain_for_groups = retain_for_groups;
		cfg->created_ms = created_ms;
	}
	json_decref(j);
	return rc == 0 ? 0 : -EBADMSG;
}

int sl_topic_config_write(const char *topics_dir, const struct sl_topic_config *cfg)
{
	char dir[SL_PATH_BYTES_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", topics_dir, cfg->name);
	return write_meta(dir, cfg);
}

/* Strict decimal: an optional '-' and digits, within [min, max]. */
static int setting_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int setting_bool(const char *s, int *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

int sl_topic_config_set(struct sl_topic_config *cfg, const char *key, const char *value, char *err, size_t err_cap)
{
	int64_t v;
	int b;
	if (strcmp(key, "retention.ms") == 0) {
		if (setting_i64(value, -1, INT64_MAX, &v) < 0 || v == 0)
			goto bad_ms;
		cfg->retention_ms = v;
	} else if (strcmp(key, "retention.bytes") == 0) {
		if (setting_i64(value, -1, INT64_MAX, &v) < 0 || v == 0) {
			snprintf(err, err_cap, "retention.bytes '%.64s': use bytes (at least 1), or -1 for no limit",
			         value);
			return -EINVAL;
		}
		cfg->retention_bytes = v;
	} else if (strcmp(key, "delete.retention.ms") == 0) {
		if (setting_i64(value, 0, INT64_MAX, &v) < 0) {
			snprintf(err, err_cap, "delete.retention.ms '%.64s': use milliseconds, 0 or more", value);
			return -EINVAL;
		}
		cfg->delete_retention_ms = v;
	} else if (strcmp(key, "segment.bytes") == 0) {
		if (setting_i64(value, 0, 0x7fffffff, &v) < 0 || (v != 0 && v < SL_TOPIC_SEGMENT_BYTES_MIN)) {
			snprintf(err, err_cap, "segment.bytes '%.64s': use %d to 2147483647, or 0 for the broker's",
			         value, SL_TOPIC_SEGMENT_BYTES_MIN);
			return -EINVAL;
		}
		cfg->segment_bytes = v;
	} else if (strcmp(key, "segment.ms") == 0) {
		if (setting_i64(value, 0, INT64_MAX, &v) < 0 || (v != 0 && v < SL_TOPIC_SEGMENT_MS_MIN)) {
			snprintf(err, err_cap, "segment.ms '%.64s': use at least %d, or 0 for the broker's", value,
			         SL_TOPIC_SEGMENT_MS_MIN);
			return -EINVAL;
		}
		cfg->segment_ms = v;
	} else if (strcmp(key, "compact") == 0 || strcmp(key, "retain.for.groups") == 0) {
		if (setting_bool(value, &b) < 0) {
			snprintf(err, err_cap, "%s '%.64s': use true or false", key, value);
			return -EINVAL;
		}
		if (key[0] == 'c')
			cfg->compact = b;
		else
			cfg->retain_for_groups = b;
	} else {
		snprintf(err, err_cap,
		         "unknown topic setting '%.64s': use retention.ms, retention.bytes, compact, "
		         "delete.retention.ms, "
		         "segment.bytes, segment.ms, retain.for.groups",
		         key);
		return -EINVAL;
	}
	return 0;
bad_ms:
	snprintf(err, err_cap, "retention.ms '%.64s': use milliseconds (at least 1), or -1 to keep records forever",
	         value);
	return -EINVAL;
}

static void topic_free(struct sl_topic *topic)
{
	if (topic == NULL)
		return;
	for (uint32_t i = 0; topic->parts && i < topic->cfg.partitions; i++) {
		sl_producer_state_free(&topic->parts[i].producers);
		free(topic->parts[i].clean);
	}
	sl_topic_contract_free(topic->contract);
	free(topic->parts);
	free(topic);
}

/* Without a snapshot, producer state is rebuilt from the batches of the last five minutes: longer than any
 * client keeps retrying a batch. */
#define PRODUCER_REPLAY_MS (5 * 60 * 1000)
#define REPLAY_READ_BYTES  (1u << 20)

/* Rebuild idempotent-producer state: the snapshot, then every batch after it (producer_state.h). */
static void producers_restore(struct sl_partition *p, const char *pdir)
{
	char path[SL_PATH_BYTES_MAX];
	snprintf(path, sizeof(path), "%s/%s", pdir, SL_PRODUCERS_SNAPSHOT_FILE);
	int64_t from = -1;
	int64_t start = sl_log_start_offset(p->log), end = sl_log_next_offset(p->log);
	if (sl_producer_state_load(&p->producers, path, &from) < 0 || from < start || from > end) {
		sl_producer_state_free(&p->producers);
		if (sl_log_offset_for_time(p->log, sl_clock_wall_ms() - PRODUCER_REPLAY_MS, &from) < 0)
			from = end;
	}
	uint8_t *buf = malloc(REPLAY_READ_BYTES);
	while (buf && from < end) {
		size_t len;
		int64_t next;
		int rc = sl_log_read(p->log, from, buf, REPLAY_READ_BYTES, &len, &next);
		if (rc == -ENODATA && next > from) {
			from = next; /* offsets repair cut out: nothing to replay there */
			continue;
		}
		if (rc < 0 || next <= from)
			break;
		for (size_t at = 0; at < len;) {
			struct sl_batch_header h;
			if (sl_batch_header_parse(buf + at, len - at, &h) < 0)
				break;
			int64_t last = h.base_offset + h.last_offset_delta;
			if (h.producer_id >= 0 && last >= from)
				sl_producer_state_replay(&p->producers, h.producer_id, h.producer_epoch,
				                         h.base_sequence, h.record_count, h.base_offset, last,
				                         sl_clock_wall_ms());
			at += sl_batch_total_bytes(&h);
		}
		from = next;
	}
	free(buf);
}

struct snapshot_job {
	struct sl_topics *t;
	struct sl_partition **parts;
	int *results;
};

static void snapshot_one(void *arg, size_t i)
{
	struct snapshot_job *j = arg;
	struct sl_partition *p = j->parts[i];
	char path[SL_PATH_BYTES_MAX];
	snprintf(path, sizeof(path), "%s/%s/%u/%s", j->t->topics_dir, p->topic->cfg.name, p->index,
	         SL_PRODUCERS_SNAPSHOT_FILE);
	j->results[i] = sl_producer_state_save(&p->producers, path, sl_log_next_offset(p->log));
}

/* Every partition of every topic (all != 0), or those with a log and idempotent producers whose state moved since
 * its last snapshot (all == 0), in an array the caller frees; NULL when out of memory. */
static struct sl_partition **partitions_list(struct sl_topics *t, int all, uint32_t *count_out)
{
	uint32_t n = 0, at = 0;
	for (struct sl_topic *topic = t->head; topic; topic = topic->next)
		n += topic->cfg.partitions;
	struct sl_partition **parts = calloc(n ? n : 1, sizeof(*parts));
	for (struct sl_topic *topic = t->head; parts && topic; topic = topic->next)
		for (uint32_t i = 0; i < topic->cfg.partitions; i++) {
			struct sl_partition *p = &topic->parts[i];
			if (all || (p->log != NULL && p->producers.count > 0 &&
			            sl_log_next_offset(p->log) != p->snapshot_offset))
				parts[at++] = p;
		}
	*count_out = at;
	return parts;
}

int sl_topics_snapshot_producers(struct sl_topics *t)
{
	/* Each snapshot is an atomic replacement with two fsyncs: side by side, as the logs' closes (open_sync). */
	uint32_t n;
	struct snapshot_job j = {.t = t, .parts = partitions_list(t, 0, &n)};
	j.results = calloc(n ? n : 1, sizeof(*j.results));
	int rc = j.parts && j.results ? 0 : -ENOMEM;
	if (rc == 0)
		sl_parallel_for(n, OPEN_SYNC_THREADS, snapshot_one, &j);
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		if (j.results[i] < 0)
			rc = j.results[i];
	free(j.parts);
	free(j.results);
	return rc;
}

/* Open partition p of topic in its folder pdir; on failure keep the error in p. private_files: the log keeps its
 * descriptors in the topic's creation cache (a creation off the loop: the shard's cache is the loop's), moved into
 * the shard's by sl_topics_create_commit. */
static int partition_open(const struct sl_topics *t, struct sl_partition *p, const char *pdir, int private_files)
{
	/* The topic's own segment limits, where it has them, over the broker's. */
	struct sl_log_config lc = t->log_cfg;
	if (private_files)
		lc.files = &p->topic->create_files;
	int64_t segment_bytes, segment_ms;
	sl_topic_segment_limits(t, &p->topic->cfg, &segment_bytes, &segment_ms);
	lc.segment_bytes_max = (uint64_t)segment_bytes;
	lc.segment_age_ms_max = segment_ms;
	lc.defer_open_sync = 1; /* the caller runs open_sync on every log it opened (see there) */
	p->open_error[0] = '\0';
	int rc = sl_log_open(t->ring, pdir, &lc, &p->log, p->open_error, sizeof(p->open_error));
	if (rc < 0) {
		p->log = NULL;
		p->open_errno = rc;
		if (p->open_error[0] == '\0')
			snprintf(p->open_error, sizeof(p->open_error), "partition %s: %s", pdir, strerror(-rc));
		struct sl_slog *e = sl_slog_begin(SL_SLOG_ERROR, "partition_unavailable");
		sl_slog_str(e, "topic", p->topic->cfg.name);
		sl_slog_uint(e, "partition", p->index);
		sl_slog_str(e, "error", p->open_error);
		sl_slog_end(e);
		return rc;
	}
	p->open_errno = 0;
	if (!t->log_cfg.repair)
		producers_restore(p, pdir);
	return 0;
}

static int open_sync(const struct sl_topics *t, struct sl_topic *only);

uint32_t sl_topics_retry_unavailable(struct sl_topics *t)
{
	uint32_t opened = 0;
	for (struct sl_topic *topic = t->head; topic; topic = topic->next) {
		for (uint32_t i = 0; i < topic->cfg.partitions; i++) {
			struct sl_partition *p = &topic->parts[i];
			if (p->log != NULL ||
			    (p->open_errno != -EMFILE && p->open_errno != -ENFILE && p->open_errno != -ENOMEM))
				continue;
			char pdir[SL_PATH_BYTES_MAX];
			snprintf(pdir, sizeof(pdir), "%s/%s/%u", t->topics_dir, topic->cfg.name, i);
			if (partition_open(t, p, pdir, 0) == 0 && open_sync(t, topic) == 0 && p->log != NULL) {
				opened++;
				sl_slog_msg(SL_SLOG_INFO, "partition_available", "%s/%u opened on retry",
				            topic->cfg.name, i);
			}
		}
	}
	return opened;
}

/* Open every partition log of a topic whose folder is dir. A partition that fails keeps its error. */
static int topic_open(const struct sl_topics *t, const char *dir, const struct sl_topic_config *cfg, int private_files,
                      struct sl_topic **out)
{
	struct sl_topic *topic = calloc(1, sizeof(*topic));
	if (topic == NULL)
		return -ENOMEM;
	topic->cfg = *cfg;
	sl_files_init(&topic->create_files, CREATE_FDS_MAX);
	topic->parts = calloc(cfg->partitions, sizeof(*topic->parts));
	if (topic->parts == NULL) {
		free(topic);
		return -ENOMEM;
	}
	/* A contract file that cannot be read leaves the topic serving without its contract, loudly: a set must
	 * not overwrite it (sl_contract_append reads it first and fails the same way) until an operator looks. */
	char cerr[512] = "";
	if (sl_contract_load(dir, &topic->contract, cerr, sizeof(cerr)) != 0) {
		struct sl_slog *e = sl_slog_begin(SL_SLOG_ERROR, "contract_unreadable");
		sl_slog_str(e, "topic", cfg->name);
		sl_slog_str(e, "error", cerr);
		sl_slog_end(e);
	} else if (topic->contract != NULL) {
		topic->contract->counts.since_ms = sl_clock_wall_ms();
	}
	for (uint32_t i = 0; i < cfg->partitions; i++) {
		struct sl_partition *p = &topic->parts[i];
		p->topic = topic;
		p->index = i;
		sl_producer_state_init(&p->producers);
		char pdir[SL_PATH_BYTES_MAX];
		snprintf(pdir, sizeof(pdir), "%s/%u", dir, i);
		partition_open(t, p, pdir, private_files);
	}
	*out = topic;
	return 0;
}

/* The directory fsyncs that topic_open left, for the logs of every topic (only == NULL: the broker's start) or of
 * one: done together on OPEN_SYNC_THREADS threads, so that a broker of 10,000 partitions does not wait for 10,000
 * disk cache flushes one after the other (storage/log.h, sl_log_open_sync_all). A partition whose fsync failed
 * serves reads and refuses appends; the error is logged. */
static int open_sync(const struct sl_topics *t, struct sl_topic *only)
{
	uint32_t n = 0, at = 0;
	for (struct sl_topic *topic = only ? only : t->head; topic; topic = only ? NULL : topic->next)
		n += topic->cfg.partitions;
	struct sl_log **logs = calloc(n ? n : 1, sizeof(*logs));
	struct sl_partition **parts = calloc(n ? n : 1, sizeof(*parts));
	int *errors = calloc(n ? n : 1, sizeof(*errors));
	if (logs == NULL || parts == NULL || errors == NULL) {
		free(logs);
		free(parts);
		free(errors);
		return -ENOMEM;
	}
	for (struct sl_topic *topic = only ? only : t->head; topic; topic = only ? NULL : topic->next)
		for (uint32_t i = 0; i < topic->cfg.partitions; i++)
			if (topic->parts[i].log != NULL) {
				parts[at] = &topic->parts[i];
				logs[at++] = topic->parts[i].log;
			}
	if (sl_log_open_sync_all(logs, at, OPEN_SYNC_THREADS, errors) > 0) {
		for (uint32_t i = 0; i < at; i++) {
			if (errors[i] == 0)
				continue;
			struct sl_slog *e = sl_slog_begin(SL_SLOG_ERROR, "partition_read_only");
			sl_slog_str(e, "topic", parts[i]->topic->cfg.name);
			sl_slog_uint(e, "partition", parts[i]->index);
			sl_slog_fmt(e, "error",
			            "fsync of the partition folder after open failed: %s; appends are refused "
			            "until the broker restarts",
			            strerror(-errors[i]));
			sl_slog_end(e);
		}
	}
	free(logs);
	free(parts);
	free(errors);
	return 0;
}

static void topic_close_logs(struct sl_topic *topic, int *first_err)
{
	for (uint32_t i = 0; i < topic->cfg.partitions; i++) {
		struct sl_partition *p = &topic->parts[i];
		if (p->log == NULL)
			continue;
		int rc = sl_log_close(p->log);
		p->log = NULL;
		if (rc < 0 && *first_err == 0)
			*first_err = rc;
	}
}

int sl_topics_open(struct sl_topics *t, const char *data_dir, struct sl_ring *ring, const struct sl_log_config *cfg,
                   char *err, size_t err_cap)
{
	memset(t, 0, sizeof(*t));
	t->ring = ring;
	t->log_cfg = *cfg;
	t->data_dir = strdup(data_dir);
	if (t->data_dir == NULL || asprintf(&t->topics_dir, "%s/topics", data_dir) < 0) {
		t->topics_dir = NULL;
		return -ENOMEM;
	}
	if (asprintf(&t->scratch_dir, "%s/scratch", data_dir) < 0) {
		t->scratch_dir = NULL;
		return -ENOMEM;
	}
	/* Whatever is in scratch/ was left by a crash in the middle of a create or delete: finish the job. Topic
	 * names never reach this folder, so nothing a client names can be removed here. */
	int rc = sl_fs_rm_rf(t->scratch_dir);
	if (rc == 0)
		rc = sl_fs_mkdir_p(t->scratch_dir);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot create %s: %s (check --data-dir and its permissions)", t->scratch_dir,
		         strerror(-rc));
		return rc;
	}
	rc = sl_fs_mkdir_p(t->topics_dir);
	if (rc < 0) {
		snprintf(err, err_cap, "cannot create %s: %s (check --data-dir and its permissions)", t->topics_dir,
		         strerror(-rc));
		return rc;
	}
	DIR *d = opendir(t->topics_dir);
	if (d == NULL) {
		rc = -errno;
		snprintf(err, err_cap, "cannot read %s: %s", t->topics_dir, strerror(-rc));
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char dir[SL_PATH_BYTES_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", t->topics_dir, de->d_name);
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    sl_topic_name_check(de->d_name, 1) != 0)
			continue;
		struct sl_topic_config tc;
		if (read_meta(dir, &tc) < 0 || strcmp(tc.name, de->d_name) != 0) {
			/* Also what an older version's interrupted create or delete left (.creating-X, .deleting-X):
			 * never removed here, because a topic of that name may be a real one. */
			sl_slog_msg(SL_SLOG_WARN, "topic_skipped",
			            "%s: missing or invalid %s; the folder is left as it is", dir, META_FILE);
			continue;
		}
		struct sl_topic *topic;
		rc = topic_open(t, dir, &tc, 0, &topic);
		if (rc < 0) {
			closedir(d);
			snprintf(err, err_cap, "cannot open topic %s: %s", tc.name, strerror(-rc));
			return rc;
		}
		topic->next = t->head;
		t->head = topic;
		t->topic_count++;
		HASH_ADD_STR(t->by_name, cfg.name, topic);
	}
	closedir(d);
	rc = open_sync(t, NULL);
	if (rc < 0)
		snprintf(err, err_cap, "cannot open topics: %s", strerror(-rc));
	return rc;
}

void sl_topic_segment_limits(const struct sl_topics *t, const struct sl_topic_config *cfg, int64_t *bytes_out,
                             int64_t *ms_out)
{
	*bytes_out = cfg->segment_bytes > 0 ? cfg->segment_bytes : (int64_t)t->log_cfg.segment_bytes_max;
	*ms_out = cfg->segment_ms > 0 ? cfg->segment_ms : t->log_cfg.segment_age_ms_max;
}

struct sl_topic *sl_topics_find(struct sl_topics *t, const char *name)
{
	struct sl_topic *topic = NULL;
	HASH_FIND_STR(t->by_name, name, topic);
	return topic;
}

int sl_topics_create_check(struct sl_topics *t, struct sl_topic_config *cfg, char *err, size_t err_cap)
{
	if (sl_topic_name_check(cfg->name, 0) != 0) {
		snprintf(err, err_cap,
		         "invalid topic name '%.*s': use 1 to 200 characters of [A-Za-z0-9._-], not starting with "
		         "'.' or '__'",
		         200, cfg->name);
		return -EINVAL;
	}
	if (cfg->partitions < 1 || cfg->partitions > SL_TOPIC_PARTITIONS_MAX) {
		snprintf(err, err_cap, "invalid partition count %u: use 1 to %u", cfg->partitions,
		         SL_TOPIC_PARTITIONS_MAX);
		return -ERANGE;
	}
	if (sl_topics_find(t, cfg->name) != NULL) {
		snprintf(err, err_cap, "topic %s already exists", cfg->name);
		return -EEXIST;
	}
	if (cfg->segment_bytes != 0 &&
	    (cfg->segment_bytes < SL_TOPIC_SEGMENT_BYTES_MIN || cfg->segment_bytes > 0x7fffffff)) {
		snprintf(err, err_cap, "topic %s: segment bytes %lld out of range: %d to 2147483647", cfg->name,
		         (long long)cfg->segment_bytes, SL_TOPIC_SEGMENT_BYTES_MIN);
		return -EDOM;
	}
	if (cfg->segment_ms != 0 && cfg->segment_ms < SL_TOPIC_SEGMENT_MS_MIN) {
		snprintf(err, err_cap, "topic %s: segment ms %lld out of range: at least %d", cfg->name,
		         (long long)cfg->segment_ms, SL_TOPIC_SEGMENT_MS_MIN);
		return -EDOM;
	}
	cfg->created_ms = sl_clock_wall_ms();
	return 0;
}

int sl_topics_create_files(const struct sl_topics *t, const struct sl_topic_config *cfg, struct sl_topic **out,
                           char *err, size_t err_cap)
{
	char tmp[SL_PATH_BYTES_MAX], final[SL_PATH_BYTES_MAX];
	snprintf(tmp, sizeof(tmp), "%s/create-%s", t->scratch_dir, cfg->name);
	snprintf(final, sizeof(final), "%s/%s", t->topics_dir, cfg->name);
	sl_fs_rm_rf(tmp);
	int rc = mkdir(tmp, 0755) < 0 ? -errno : 0;
	if (rc == 0)
		rc = write_meta(tmp, cfg);
	for (uint32_t i = 0; rc == 0 && i < cfg->partitions; i++) {
		char pdir[SL_PATH_BYTES_MAX];
		snprintf(pdir, sizeof(pdir), "%s/%u", tmp, i);
		if (mkdir(pdir, 0755) < 0)
			rc = -errno;
	}
	if (rc == 0)
		rc = sl_fs_fsync_path(tmp);
	if (rc == 0 && rename(tmp, final) < 0)
		rc = -errno;
	if (rc == 0)
		rc = sl_fs_fsync_path(t->topics_dir);
	if (rc == 0)
		rc = sl_fs_fsync_path(t->scratch_dir);
	if (rc < 0) {
		sl_fs_rm_rf(tmp);
		snprintf(err, err_cap, "cannot create topic %s: %s; nothing was created", cfg->name, strerror(-rc));
		return rc;
	}
	struct sl_topic *topic = NULL;
	pthread_mutex_lock(&create_files_lock);
	rc = topic_open(t, final, cfg, 1, &topic);
	for (uint32_t i = 0; rc == 0 && i < cfg->partitions; i++) {
		if (topic->parts[i].log == NULL) {
			rc = topic->parts[i].open_errno;
			snprintf(err, err_cap, "cannot create topic %s: partition %u: %s; nothing was created",
			         cfg->name, i, strerror(-rc));
		}
	}
	if (rc == 0)
		rc = open_sync(t, topic);
	pthread_mutex_unlock(&create_files_lock);
	if (rc < 0) {
		/* A topic is created whole or not at all: what opened is closed, the folder goes back to scratch/ (one
		 * rename, so a crash now leaves the topic whole or gone) and is removed. */
		if (err[0] == '\0')
			snprintf(err, err_cap, "cannot create topic %s: %s; nothing was created", cfg->name,
			         strerror(-rc));
		if (topic != NULL) {
			int ignored = 0;
			topic_close_logs(topic, &ignored);
			topic_free(topic);
		}
		if (rename(final, tmp) == 0) {
			sl_fs_fsync_path(t->topics_dir);
			sl_fs_rm_rf(tmp);
		} else {
			sl_fs_rm_rf(final);
		}
		return rc;
	}
	*out = topic;
	return 0;
}

void sl_topics_attach(struct sl_topics *t, struct sl_topic *topic)
{
	SL_ASSERT(sl_topics_find(t, topic->cfg.name) == NULL);
	topic->next = t->head;
	t->head = topic;
	t->topic_count++;
	HASH_ADD_STR(t->by_name, cfg.name, topic);
}

void sl_topics_create_commit(struct sl_topics *t, struct sl_topic *topic)
{
	for (uint32_t i = 0; i < topic->cfg.partitions; i++)
		if (topic->parts[i].log != NULL && t->log_cfg.files != NULL)
			sl_log_move_files(topic->parts[i].log, t->log_cfg.files);
	sl_topics_attach(t, topic);
}

int sl_topics_create(struct sl_topics *t, const struct sl_topic_config *cfg_in, char *err, size_t err_cap)
{
	struct sl_topic_config cfg = *cfg_in;
	struct sl_topic *topic = NULL;
	int rc = sl_topics_create_check(t, &cfg, err, err_cap);
	if (rc == 0)
		rc = sl_topics_create_files(t, &cfg, &topic, err, err_cap);
	if (rc == 0)
		sl_topics_create_commit(t, topic);
	return rc;
}

void sl_topics_detach(struct sl_topics *t, struct sl_topic *topic)
{
	struct sl_topic **pp = &t->head;
	while (*pp && *pp != topic)
		pp = &(*pp)->next;
	SL_ASSERT(*pp == topic);
	*pp = topic->next;
	topic->next = NULL;
	t->topic_count--;
	HASH_DEL(t->by_name, topic);
}

int sl_topic_idle(const struct sl_topic *topic)
{
	if (topic->jobs_inflight > 0)
		return 0;
	for (uint32_t i = 0; i < topic->cfg.partitions; i++)
		if (topic->parts[i].log != NULL && !sl_log_idle(topic->parts[i].log))
			return 0;
	return 1;
}

void sl_topic_discard(struct sl_topic *topic)
{
	for (uint32_t i = 0; i < topic->cfg.partitions; i++) {
		struct sl_partition *p = &topic->parts[i];
		if (p->log != NULL)
			sl_log_discard(p->log);
		p->log = NULL;
	}
	topic_free(topic);
}

int sl_topics_delete_rename(const struct sl_topics *t, const char *name, char *err, size_t err_cap)
{
	char dir[SL_PATH_BYTES_MAX], gone[SL_PATH_BYTES_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", t->topics_dir, name);
	snprintf(gone, sizeof(gone), "%s/delete-%s", t->scratch_dir, name);
	sl_fs_rm_rf(gone);
	if (rename(dir, gone) < 0) {
		int rc = -errno;
		snprintf(err, err_cap, "cannot delete topic %s: %s; it stays as it was", name, strerror(-rc));
		return rc;
	}
	/* Renamed is deleted: a crash before these reach the disk may bring the topic back, whole. */
	sl_fs_fsync_path(t->topics_dir);
	sl_fs_fsync_path(t->scratch_dir);
	return 0;
}

void sl_topics_delete_remove(const struct sl_topics *t, const char *name)
{
	char gone[SL_PATH_BYTES_MAX];
	snprintf(gone, sizeof(gone), "%s/delete-%s", t->scratch_dir, name);
	/* What a failure leaves is in scratch/, emptied at the next open. */
	sl_fs_rm_rf(gone);
}

int sl_topics_delete(struct sl_topics *t, const char *name, char *err, size_t err_cap)
{
	struct sl_topic *topic = sl_topics_find(t, name);
	if (topic == NULL) {
		snprintf(err, err_cap, "unknown topic %.*s", 200, name);
		return -ENOENT;
	}
	sl_topics_detach(t, topic);
	int rc = sl_topics_delete_rename(t, name, err, err_cap);
	if (rc < 0) {
		sl_topics_attach(t, topic);
		return rc;
	}
	int ignored = 0;
	topic_close_logs(topic, &ignored);
	topic_free(topic);
	sl_topics_delete_remove(t, name);
	return 0;
}

int sl_topics_close(struct sl_topics *t)
{
	int rc = t->log_cfg.repair ? 0 : sl_topics_snapshot_producers(t);
	/* Every log's closing fsyncs side by side (sl_log_close_all); one by one when memory is short. */
	uint32_t n, at = 0;
	struct sl_partition **parts = partitions_list(t, 1, &n);
	struct sl_log **logs = calloc(n ? n : 1, sizeof(*logs));
	int *errors = calloc(n ? n : 1, sizeof(*errors));
	if (parts && logs && errors) {
		for (uint32_t i = 0; i < n; i++)
			if (parts[i]->log != NULL)
				logs[at++] = parts[i]->log;
		sl_log_close_all(logs, at, OPEN_SYNC_THREADS, errors);
		for (uint32_t i = 0; i < at; i++)
			if (errors[i] < 0 && rc == 0)
				rc = errors[i];
		for (uint32_t i = 0; i < n; i++)
			parts[i]->log = NULL;
	}
	free(parts);
	free(logs);
	free(errors);
	while (t->head) {
		struct sl_topic *topic = t->head;
		t->head = topic->next;
		HASH_DEL(t->by_name, topic);
		topic_close_logs(topic, &rc);
		topic_free(topic);
	}
	free(t->data_dir);
	free(t->topics_dir);
	free(t->scratch_dir);
	t->data_dir = t->topics_dir = t->scratch_dir = NULL;
	return rc;
}

void sl_topic_apply_segment_limits(const struct sl_topics *t, struct sl_topic *topic)
{
	int64_t segment_bytes, segment_ms;
	sl_topic_segment_limits(t, &topic->cfg, &segment_bytes, &segment_ms);
	for (uint32_t i = 0; i < topic->cfg.partitions; i++)
		if (topic->parts[i].log != NULL)
			sl_log_set_segment_limits(topic->parts[i].log, (uint64_t)segment_bytes, segment_ms);
}
