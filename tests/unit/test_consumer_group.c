/* Tests of the group consumer's API (consumer/group.c) against a real broker: the assignment callback, where
 * partitions start (commit, earliest, latest, timestamp), seek from the callback, manual commits and the refusal of
 * a partition not assigned, a second member taking half the partitions, several topics, stop_at_end and close. The
 * broker (BUILD/bin/synclogd, found next to this test's directory) runs on 127.0.0.1 port 0 and is stopped by its PID.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "consumer/client/synclog.h"
#include "tests/unit/log_test_util.h"

#define PARTITIONS    4
#define PER_PARTITION 25

static char synclogd_path[PATH_MAX];
static char broker[64];
static char data_dir[PATH_MAX];
static pid_t broker_pid;

static int broker_start(void **state)
{
	int fds[2];
	char line[256] = "";
	FILE *f;

	if (lt_tmpdir_make(data_dir, sizeof(data_dir)) != 0 || pipe(fds) != 0)
		return -1;
	broker_pid = fork();
	if (broker_pid == 0) {
		/* The broker dies with the test, even when the test is killed before it could stop it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		execl(synclogd_path, "synclogd", "--data-dir", data_dir, "--listen", "127.0.0.1:0", "--metrics", "off",
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (f == NULL || fgets(line, sizeof(line), f) == NULL || sscanf(line, "synclogd ready on %63s", broker) != 1) {
		fprintf(stderr, "%s did not start: '%s'\n", synclogd_path, line);
		return -1;
	}
	fclose(f);
	return 0;
}

static int broker_stop(void **state)
{
	int status = 0;

	kill(broker_pid, SIGTERM);
	waitpid(broker_pid, &status, 0);
	return sl_fs_rm_rf(data_dir) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static struct sl_conn *conn(void)
{
	struct sl_conn *c;

	assert_int_equal(sl_conn_new(&c, broker, "test"), 0);
	assert_int_equal(sl_conn_connect(c), 0);
	return c;
}

static void delivery_cb(void *opaque, const struct sl_delivery *d, void *cb_arg)
{
	(void)opaque;
	(void)cb_arg;
	if (d->status != 0)
		fail_msg("produce: %s", d->error);
}

/* A topic of PARTITIONS partitions with PER_PARTITION records in each; record i of partition p has the value
 * "p:i" and a timestamp of base_ms + i * 1000. */
static void topic_make(const char *name, int64_t base_ms)
{
	struct sl_topic_config cfg = {.partitions = PARTITIONS, .retention_ms = -1, .retention_bytes = -1};
	struct sl_producer_options po;
	struct sl_producer *p;
	struct sl_conn *c = conn();
	char err[SL_ERROR_BYTES], value[32];

	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	assert_int_equal(sl_topic_create(c, &cfg), 0);
	sl_conn_free(c);
	sl_producer_options_init(&po);
	po.broker = broker;
	po.topic = name;
	po.delivery_cb = delivery_cb;
	if (sl_producer_new(&p, &po, err, sizeof(err)) != 0)
		fail_msg("producer: %s", err);
	for (int i = 0; i < PER_PARTITION; i++) {
		for (int part = 0; part < PARTITIONS; part++) {
			struct sl_record r = {.key = (const uint8_t *)"k", .key_len = 1, .version = SL_VERSION_NONE};

			r.value_len = snprintf(value, sizeof(value), "%d:%d", part, i);
			r.value = (const uint8_t *)value;
			r.timestamp_ms = base_ms + i * 1000;
			if (sl_producer_send(p, part, &r, NULL) != 0)
				fail_msg("produce: %s", sl_producer_error(p));
		}
	}
	assert_int_equal(sl_producer_flush(p, -1), 0);
	sl_producer_free(p);
}

struct events {
	int assigned_calls, revoked_calls;
	uint32_t assigned, revoked;
	int64_t assigned_offset[PARTITIONS];
	bool revoked_committed[PARTITIONS];
	int64_t seek_to[PARTITIONS]; /* -1: no seek */
};

static void rebalance_cb(struct sl_consumer *c, enum sl_consumer_change change,
                         const struct sl_consumer_partition *parts, uint32_t count, void *cb_arg)
{
	struct events *ev = cb_arg;

	for (uint32_t i = 0; i < count; i++) {
		assert_true(parts[i].partition < PARTITIONS);
		if (change == SL_CONSUMER_ASSIGNED) {
			ev->assigned_offset[parts[i].partition] = parts[i].offset;
			if (ev->seek_to[parts[i].partition] >= 0)
				assert_int_equal(sl_consumer_seek(c, parts[i].topic, parts[i].partition,
				                                  ev->seek_to[parts[i].partition]),
				                 0);
		} else {
			ev->revoked_committed[parts[i].partition] = parts[i].committed;
		}
	}
	if (change == SL_CONSUMER_ASSIGNED) {
		ev->assigned_calls++;
		ev->assigned += count;
	} else {
		ev->revoked_calls++;
		ev->revoked += count;
	}
}

static void events_init(struct events *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (int p = 0; p < PARTITIONS; p++)
		ev->assigned_offset[p] = ev->seek_to[p] = -1;
}

static struct sl_consumer *subscribe(const char *group, const char *const *topic, struct events *ev,
                                     void (*tweak)(struct sl_consumer_options *))
{
	struct sl_consumer_options o;
	struct sl_consumer *c;
	char err[SL_ERROR_BYTES];

	sl_consumer_options_init(&o);
	o.broker = broker;
	o.group = group;
	o.topics = topic;
	o.topic_count = 1;
	o.stop_at_end = true;
	o.session_timeout_ms = 5000;
	o.rebalance_cb = rebalance_cb;
	o.rebalance_cb_arg = ev;
	if (tweak != NULL)
		tweak(&o);
	if (sl_consumer_subscribe(&c, &o, err, sizeof(err)) != 0)
		fail_msg("subscribe: %s", err);
	return c;
}

/* Poll until done; first[p] is the first offset read of partition p (-1: none), the return the record count. */
static int read_all(struct sl_consumer *c, int64_t *first)
{
	struct sl_consumer_record recs[16];
	int total = 0, n;

	for (int p = 0; p < PARTITIONS; p++)
		first[p] = -1;
	while (!sl_consumer_done(c)) {
		n = sl_consumer_poll(c, 2000, recs, 16);
		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			char expect[32];

			assert_true(recs[i].partition < PARTITIONS);
			snprintf(expect, sizeof(expect), "%u:%lld", recs[i].partition,
			         (long long)recs[i].record.offset);
			assert_int_equal(recs[i].record.value_len, strlen(expect));
			assert_memory_equal(recs[i].record.value, expect, strlen(expect));
			if (first[recs[i].partition] < 0)
				first[recs[i].partition] = recs[i].record.offset;
		}
		total += n;
	}
	return total;
}

static void committed(const char *group, const char *topic, int64_t *out)
{
	uint32_t ids[PARTITIONS] = {0, 1, 2, 3};
	struct sl_conn *c = conn();

	assert_int_equal(sl_group_offsets_fetch(c, group, topic, ids, PARTITIONS, out, NULL), 0);
	sl_conn_free(c);
}

static void a_new_group_reads_every_partition_from_the_start_and_commits_at_close(void **state)
{
	const char *topic = "t1";
	struct events ev;
	int64_t first[PARTITIONS], done[PARTITIONS];
	struct sl_consumer_stats st;
	struct sl_consumer *c;

	topic_make(topic, 1000000);
	events_init(&ev);
	c = subscribe("g1", &topic, &ev, NULL);
	assert_int_equal(ev.assigned_calls, 1);
	assert_int_equal(ev.assigned, PARTITIONS);
	for (int p = 0; p < PARTITIONS; p++)
		assert_true(ev.assigned_offset[p] == 0);
	assert_int_equal(read_all(c, first), PARTITIONS * PER_PARTITION);
	for (int p = 0; p < PARTITIONS; p++) {
		assert_true(first[p] == 0);
		assert_true(sl_consumer_position(c, topic, (uint32_t)p) == PER_PARTITION);
	}
	assert_int_equal(sl_consumer_poll(c, 0, (struct sl_consumer_record[1]){0}, 1), 0);
	assert_int_equal(sl_consumer_close(c), 0);
	assert_int_equal(ev.revoked, PARTITIONS);
	for (int p = 0; p < PARTITIONS; p++)
		assert_true(ev.revoked_committed[p]);
	sl_consumer_stats_get(c, &st);
	assert_true(st.records == PARTITIONS * PER_PARTITION);
	assert_true(st.commits >= 1 && st.commits_refused == 0);
	sl_consumer_free(c);
	committed("g1", topic, done);
	for (int p = 0; p < PARTITIONS; p++)
		assert_true(done[p] == PER_PARTITION);
}

static void start_latest(struct sl_consumer_options *o)
{
	o->start = SL_FROM_LATEST;
}

static void start_at_time(struct sl_consumer_options *o)
{
	o->start = SL_FROM_TIMESTAMP;
	o->start_timestamp_ms = 2000000 + 20 * 1000; /* record 20 of every partition */
}

static void the_start_position_applies_only_to_partitions_without_a_commit(void **state)
{
	const char *topic = "t2";
	struct sl_topic_partition_offset at7 = {topic, 1, 7};
	struct events ev;
	int64_t first[PARTITIONS];
	struct sl_consumer *c;
	struct sl_conn *admin = conn();

	topic_make(topic, 2000000);
	assert_int_equal(sl_group_offsets_commit(admin, "g2", &at7, 1, false), 0);
	assert_int_equal(sl_group_offsets_commit(admin, "g2t", &at7, 1, false), 0);
	sl_conn_free(admin);
	events_init(&ev);
	c = subscribe("g2", &topic, &ev, start_latest);
	assert_true(ev.assigned_offset[0] == PER_PARTITION && ev.assigned_offset[1] == 7);
	assert_int_equal(read_all(c, first), PER_PARTITION - 7);
	assert_true(first[1] == 7 && first[0] == -1);
	assert_int_equal(sl_consumer_close(c), 0);
	sl_consumer_free(c);

	events_init(&ev);
	c = subscribe("g2t", &topic, &ev, start_at_time);
	assert_true(ev.assigned_offset[0] == 20 && ev.assigned_offset[1] == 7 && ev.assigned_offset[3] == 20);
	assert_int_equal(read_all(c, first), 3 * (PER_PARTITION - 20) + PER_PARTITION - 7);
	assert_int_equal(sl_consumer_close(c), 0);
	sl_consumer_free(c);
}

static void the_assigned_callback_may_seek(void **state)
{
	const char *topic = "t3";
	struct events ev;
	int64_t first[PARTITIONS], done[PARTITIONS];
	struct sl_consumer *c;

	topic_make(topic, 3000000);
	events_init(&ev);
	ev.seek_to[2] = 11; /* a target that keeps its own offsets says where it stands */
	c = subscribe("g3", &topic, &ev, NULL);
	assert_int_equal(read_all(c, first), PARTITIONS * PER_PARTITION - 11);
	assert_true(first[2] == 11 && first[0] == 0);
	assert_int_equal(sl_consumer_seek(c, topic, 3, 24), 0); /* and later: read the last record again */
	assert_int_equal(read_all(c, first), 1);
	assert_true(first[3] == 24);
	assert_int_equal(sl_consumer_seek(c, "t3", 9, 0), -ESTALE);
	assert_int_equal(sl_consumer_close(c), 0);
	sl_consumer_free(c);
	committed("g3", topic, done);
	assert_true(done[2] == PER_PARTITION && done[3] == PER_PARTITION);
}

static void no_auto_commit(struct sl_consumer_options *o)
{
	o->auto_commit = false;
}

static void manual_commits_and_the_refusal_of_a_partition_not_assigned(void **state)
{
	const char *topic = "t4";
	struct events ev;
	int64_t first[PARTITIONS], done[PARTITIONS];
	struct sl_topic_partition_offset two[2] = {{"t4", 0, 3}, {"t4", 2, 4}};
	struct sl_consumer_stats st;
	struct sl_consumer *c;

	topic_make(topic, 4000000);
	events_init(&ev);
	c = subscribe("g4", &topic, &ev, no_auto_commit);
	assert_int_equal(read_all(c, first), PARTITIONS * PER_PARTITION);
	assert_int_equal(sl_consumer_commit(c, topic, 1, 9), 0);
	assert_int_equal(sl_consumer_commit_offsets(c, two, 2), 0);
	assert_int_equal(sl_consumer_commit(c, topic, 7, 1), -ESTALE);
	assert_non_null(strstr(sl_consumer_error(c), "not assigned"));
	assert_int_equal(sl_consumer_commit(c, "other", 0, 1), -ESTALE);
	assert_int_equal(sl_consumer_close(c), 0); /* no auto-commit: close commits nothing */
	sl_consumer_stats_get(c, &st);
	assert_true(st.commits == 2 && st.commits_refused == 2);
	sl_consumer_free(c);
	committed("g4", topic, done);
	assert_true(done[0] == 3 && done[1] == 9 && done[2] == 4 && done[3] == -1);
	/* sl_consumer_commit_consumed commits the positions. */
	events_init(&ev);
	c = subscribe("g4", &topic, &ev, no_auto_commit);
	assert_true(ev.assigned_offset[1] == 9 && ev.assigned_offset[3] == 0);
	assert_int_equal(read_all(c, first), 22 + 16 + 21 + 25);
	assert_int_equal(sl_consumer_commit_consumed(c), 0);
	assert_int_equal(sl_consumer_close(c), 0);
	sl_consumer_free(c);
	committed("g4", topic, done);
	for (int p = 0; p < PARTITIONS; p++)
		assert_true(done[p] == PER_PARTITION);
}

static void follow(struct sl_consumer_options *o)
{
	o->stop_at_end = false;
	o->auto_commit_interval_ms = 0; /* at every poll */
}

/* Poll both members until the two of them have read n records, or 10 s passed. */
static int poll_both(struct sl_consumer *a, struct sl_consumer *b, int *got_a, int *got_b, int n)
{
	struct sl_consumer_record recs[64];
	time_t deadline = time(NULL) + 10;

	while (*got_a + *got_b < n && time(NULL) < deadline) {
		int ra = sl_consumer_poll(a, 50, recs, 64), rb;

		assert_true(ra >= 0);
		*got_a += ra;
		rb = sl_consumer_poll(b, 50, recs, 64);
		assert_true(rb >= 0);
		*got_b += rb;
	}
	return *got_a + *got_b;
}

static void a_second_member_takes_half_the_partitions(void **state)
{
	const char *topic = "t5";
	struct events ea, eb;
	struct sl_consumer_record recs[8];
	uint32_t count_a, count_b;
	int got_a = 0, got_b = 0;
	struct sl_consumer *a, *b;

	topic_make(topic, 5000000);
	events_init(&ea);
	events_init(&eb);
	a = subscribe("g5", &topic, &ea, follow);
	/* A reads 8 records and commits them. */
	assert_int_equal(sl_consumer_poll(a, 2000, recs, 8), 8);
	assert_int_equal(sl_consumer_commit_consumed(a), 0);
	b = subscribe("g5", &topic, &eb, follow);
	assert_int_equal(eb.assigned, PARTITIONS / 2);
	assert_true(sl_consumer_generation(b) > sl_consumer_generation(a));
	/* A learns of it before it hands out more of the answer it holds (its generation check is due 50 ms after
	 * the last), gives up two partitions, and B reads them from A's commits: every record once. */
	usleep(60 * 1000);
	assert_int_equal(poll_both(a, b, &got_a, &got_b, PARTITIONS * PER_PARTITION - 8),
	                 PARTITIONS * PER_PARTITION - 8);
	assert_int_equal(sl_consumer_poll(a, 100, recs, 8) + sl_consumer_poll(b, 100, recs, 8), 0);
	assert_int_equal(ea.revoked, PARTITIONS / 2);
	sl_consumer_assignment(a, &count_a);
	sl_consumer_assignment(b, &count_b);
	assert_int_equal(count_a, PARTITIONS / 2);
	assert_int_equal(count_b, PARTITIONS / 2);
	assert_int_equal(sl_consumer_generation(a), sl_consumer_generation(b));
	assert_string_not_equal(sl_consumer_member_id(a), sl_consumer_member_id(b));
	/* B leaves: A gets every partition back at its next polls. */
	assert_int_equal(sl_consumer_close(b), 0);
	sl_consumer_free(b);
	for (int i = 0; i < 50 && sl_consumer_assignment(a, &count_a) != NULL && count_a < PARTITIONS; i++)
		assert_true(sl_consumer_poll(a, 100, recs, 8) >= 0);
	assert_int_equal(count_a, PARTITIONS);
	assert_int_equal(sl_consumer_close(a), 0);
	sl_consumer_free(a);
}

static void two_topics(struct sl_consumer_options *o)
{
	static const char *const topics[2] = {"t1", "t3"};

	o->topics = topics;
	o->topic_count = 2;
}

static void one_member_reads_several_topics(void **state)
{
	struct sl_consumer_record recs[32];
	struct events ev;
	int per_topic[2] = {0, 0};
	uint32_t count;
	struct sl_consumer *c;

	/* t1 and t3 were made by the tests above. */
	events_init(&ev);
	c = subscribe("g7", NULL, &ev, two_topics);
	assert_int_equal(ev.assigned, 2 * PARTITIONS);
	sl_consumer_assignment(c, &count);
	assert_int_equal(count, 2 * PARTITIONS);
	while (!sl_consumer_done(c)) {
		int n = sl_consumer_poll(c, 2000, recs, 32);

		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			assert_true(strcmp(recs[i].topic, "t1") == 0 || strcmp(recs[i].topic, "t3") == 0);
			per_topic[strcmp(recs[i].topic, "t1") == 0 ? 0 : 1]++;
		}
	}
	assert_int_equal(per_topic[0], PARTITIONS * PER_PARTITION);
	assert_int_equal(per_topic[1], PARTITIONS * PER_PARTITION);
	assert_int_equal(sl_consumer_close(c), 0);
	sl_consumer_free(c);
}

static void subscribing_to_a_missing_topic_fails_with_enoent(void **state)
{
	struct sl_consumer_options o;
	struct sl_consumer *c;
	const char *topic = "missing";
	char err[SL_ERROR_BYTES];

	sl_consumer_options_init(&o);
	o.broker = broker;
	o.group = "g6";
	o.topics = &topic;
	o.topic_count = 1;
	assert_int_equal(sl_consumer_subscribe(&c, &o, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "'missing' does not exist"));
	o.group = "bad group";
	assert_int_equal(sl_consumer_subscribe(&c, &o, err, sizeof(err)), -EINVAL);
	o.group = "g6";
	o.session_timeout_ms = 10;
	assert_int_equal(sl_consumer_subscribe(&c, &o, err, sizeof(err)), -EINVAL);
}

int main(int argc, char **argv)
{
	char self[PATH_MAX];
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(a_new_group_reads_every_partition_from_the_start_and_commits_at_close),
	        cmocka_unit_test(the_start_position_applies_only_to_partitions_without_a_commit),
	        cmocka_unit_test(the_assigned_callback_may_seek),
	        cmocka_unit_test(manual_commits_and_the_refusal_of_a_partition_not_assigned),
	        cmocka_unit_test(a_second_member_takes_half_the_partitions),
	        cmocka_unit_test(one_member_reads_several_topics),
	        cmocka_unit_test(subscribing_to_a_missing_topic_fails_with_enoent),
	};

	(void)argc;
	/* BUILD/tests/test_consumer_group -> BUILD/bin/synclogd */
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(synclogd_path, sizeof(synclogd_path), "%s/../bin/synclogd", dirname(self));
	return cmocka_run_group_tests(tests, broker_start, broker_stop);
}
