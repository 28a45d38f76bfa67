/* A connection on a Kafka cluster (transport.h): topic and group administration through librdkafka's metadata,
 * ListOffsets and Admin API, answering in the structs of synclog.h. What synclogd reports itself and a Kafka
 * cluster does not, this file computes from what Kafka gives: a group's lag from ListOffsets and its committed
 * offsets, the age of its oldest unconsumed record by reading that record.
 *
 * Every call waits at most the connection's io timeout for each request (the Admin API's request timeout, the
 * metadata and ListOffsets timeouts), and answers as the native calls do: 0 or a negative errno with c's error
 * set. Admin calls that need the cluster's controller (CreateTopics, DeleteTopics, DescribeConfigs) first check
 * that the metadata names a controller among its brokers: librdkafka's mock cluster names none, and a request
 * would only wait for its timeout. ListGroups and DescribeGroups are gated the same way: librdkafka 2.0 fails an
 * assertion in the next Admin call after DescribeGroups met a broker that does not serve it, and the mock (the one
 * cluster without a controller) serves neither; every Kafka broker since 0.9 serves both. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/clock.h"
#include "consumer/client/kafka_impl.h"

/* The reader's wait for one record per partition asked: a lag's timestamp, a delete the applier checks. */
#define READ_POLL_MS     100
/* The slice of a connect's metadata wait between looks at librdkafka's errors (a refused login). */
#define CONNECT_SLICE_MS 250

static struct sl_kafka_conn *K(struct sl_conn *c)
{
	return c->kafka;
}

static int timeout_ms(const struct sl_conn *c)
{
	return c->io_timeout_ms > INT32_MAX ? INT32_MAX : (int)c->io_timeout_ms;
}

/* Set c's error and its broker error from a Kafka error; returns its errno. */
static int fail(struct sl_conn *c, rd_kafka_resp_err_t e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct sl_conn *c, rd_kafka_resp_err_t e, const char *fmt, ...)
{
	char what[SL_ERROR_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	c->broker_error = sl_kafka_code(e);
	sl_conn_set_error(c, "%s: %s", what, rd_kafka_err2str(e));
	return sl_kafka_errno(e);
}

int sl_kafka_unsupported(struct sl_conn *c, const char *what, const char *instead)
{
	c->broker_error = SYNCLOG__ERROR_CODE__UNSUPPORTED_FEATURE;
	sl_conn_set_error(c, "%s: not available on a Kafka cluster (%s): %s", what, K(c)->broker, instead);
	return -EOPNOTSUPP;
}

int sl_kafka_conn_new(struct sl_conn *c, const char *broker)
{
	struct sl_kafka_conn *k = calloc(1, sizeof(*k));
	int rc;

	if (k == NULL)
		return -ENOMEM;
	k->broker = strdup(broker);
	if (k->broker == NULL) {
		free(k);
		return -ENOMEM;
	}
	rc = sl_kafka_bootstrap_text(broker, &k->bootstrap, c->error, sizeof(c->error));
	if (rc != 0) {
		free(k->broker);
		free(k);
		return rc;
	}
	k->stall_after_ms = SL_KAFKA_STALL_AFTER_MS_DEFAULT;
	c->kafka = k;
	return 0;
}

int sl_kafka_conn_set_stall_after(struct sl_conn *c, int64_t stall_after_ms)
{
	if (stall_after_ms <= 0) {
		sl_conn_set_error(c, "stall-after must be positive, not %lld ms", (long long)stall_after_ms);
		return -EINVAL;
	}
	K(c)->stall_after_ms = stall_after_ms;
	return 0;
}

int sl_kafka_conn_set_config(struct sl_conn *c, const struct sl_kafka_config *cfg)
{
	sl_kafka_config_free(&K(c)->config);
	return sl_kafka_config_copy(&K(c)->config, cfg);
}

int sl_kafka_conn_set_security(struct sl_conn *c, const struct sl_security_options *o)
{
	struct sl_kafka_config next;
	int rc = sl_kafka_config_secure(&next, o, NULL, c->error, sizeof(c->error));

	if (rc != 0)
		return rc;
	sl_kafka_conn_close(c);
	sl_kafka_config_free(&K(c)->security);
	K(c)->security = next;
	return 0;
}

void sl_kafka_conn_close(struct sl_conn *c)
{
	struct sl_kafka_conn *k = K(c);

	if (k->admin_queue != NULL)
		rd_kafka_queue_destroy(k->admin_queue);
	if (k->rk != NULL)
		rd_kafka_destroy(k->rk);
	if (k->reader != NULL) {
		rd_kafka_consumer_close(k->reader);
		rd_kafka_destroy(k->reader);
	}
	k->admin_queue = NULL;
	k->rk = NULL;
	k->reader = NULL;
}

void sl_kafka_conn_free(struct sl_conn *c)
{
	struct sl_kafka_conn *k = K(c);

	sl_kafka_conn_close(c);
	sl_kafka_config_free(&k->config);
	sl_kafka_config_free(&k->security);
	free(k->broker);
	free(k->bootstrap);
	free(k);
	c->kafka = NULL;
}

/* librdkafka's error callback on the admin handle: keeps the failures no retry can mend (a refused login, a
 * certificate that does not verify) for the connect below; the rest librdkafka retries by itself. */
static void conn_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct sl_kafka_conn *k = opaque;

	(void)rk;
	switch ((rd_kafka_resp_err_t)err) {
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR__SSL:
		k->auth_error = (rd_kafka_resp_err_t)err;
		snprintf(k->auth_why, sizeof(k->auth_why), "%s", reason);
		break;
	default:
		break;
	}
}

int sl_kafka_conn_connect(struct sl_conn *c)
{
	struct sl_kafka_conn *k = K(c);
	char socket_timeout[16], why[512];
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t e;

	sl_kafka_conn_close(c);
	c->broker_error = 0;
	k->auth_error = RD_KAFKA_RESP_ERR_NO_ERROR;
	snprintf(socket_timeout, sizeof(socket_timeout), "%u", c->io_timeout_ms < 10 ? 10 : c->io_timeout_ms);
	const struct sl_kafka_pair ours[] = {
	        {"socket.timeout.ms", socket_timeout},
	};
	rd_kafka_conf_t *conf = sl_kafka_conf_new(k->bootstrap, c->client_id, ours, SL_ARRAY_COUNT(ours), &k->security,
	                                          &k->config, c->error, sizeof(c->error));
	if (conf == NULL)
		return -EINVAL;
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_error_cb(conf, conn_error_cb);
	k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (k->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		sl_conn_set_error(c, "librdkafka: %s", why);
		return -EINVAL;
	}
	k->admin_queue = rd_kafka_queue_new(k->rk);
	/* The metadata is asked in slices of CONNECT_SLICE_MS so that a refused login ends the wait at once. */
	int64_t deadline = sl_clock_mono_ms() + timeout_ms(c);
	for (;;) {
		int64_t left = deadline - sl_clock_mono_ms();

		e = rd_kafka_metadata(k->rk, 1, NULL, &md,
		                      left < 1                  ? 1
		                      : left < CONNECT_SLICE_MS ? (int)left
		                                                : CONNECT_SLICE_MS);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		rd_kafka_poll(k->rk, 0);
		if (k->auth_error != RD_KAFKA_RESP_ERR_NO_ERROR) {
			c->broker_error = sl_kafka_code(k->auth_error);
			sl_conn_set_error(
			        c,
			        "the Kafka cluster at %s refused the connection: %s (check --user and its "
			        "password, --tls-ca, or the --kafka-config settings security.protocol, sasl.*, "
			        "ssl.*)",
			        k->bootstrap, k->auth_why);
			sl_kafka_conn_close(c);
			return -EACCES;
		}
		if (e != RD_KAFKA_RESP_ERR__TIMED_OUT || sl_clock_mono_ms() >= deadline) {
			int rc = fail(c, e,
			              "cannot reach the Kafka cluster at %s within %u ms (check --broker and "
			              "--kafka-config)",
			              k->bootstrap, c->io_timeout_ms);
			sl_kafka_conn_close(c);
			return rc == -ETIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
		}
	}
	rd_kafka_metadata_destroy(md);
	return 0;
}

static int ensure(struct sl_conn *c)
{
	return K(c)->rk != NULL ? 0 : sl_kafka_conn_connect(c);
}

/* All-topic metadata (never a request for a topic by name, which would create it on a cluster with
 * auto.create.topics.enable). */
static int metadata_all(struct sl_conn *c, const struct rd_kafka_metadata **md)
{
	int rc = ensure(c);
	rd_kafka_resp_err_t e;

	if (rc != 0)
		return rc;
	e = rd_kafka_metadata(K(c)->rk, 1, NULL, md, timeout_ms(c));
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		return fail(c, e, "metadata of the Kafka cluster at %s", K(c)->bootstrap);
	return 0;
}

static const struct rd_kafka_metadata_topic *topic_find(const struct rd_kafka_metadata *md, const char *name)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, name) == 0)
			return &md->topics[i];
	return NULL;
}

/* Whether the metadata's controller is one of its brokers (Admin calls that need it would wait otherwise). */
static bool controller_known(struct sl_conn *c, const struct rd_kafka_metadata *md)
{
	int32_t id = rd_kafka_controllerid(K(c)->rk, 0);

	for (int i = 0; id >= 0 && i < md->broker_cnt; i++)
		if (md->brokers[i].id == id)
			return true;
	return false;
}

static int no_controller(struct sl_conn *c, const char *what)
{
	return sl_kafka_unsupported(c, what,
	                            "its metadata names no controller to send the request to (librdkafka's "
	                            "mock cluster has none); use the cluster's own tools");
}

/* ---- the Admin API ---- */

static rd_kafka_AdminOptions_t *admin_options(struct sl_conn *c, rd_kafka_admin_op_t op)
{
	rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(K(c)->rk, op);
	char why[256];

	rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms(c), why, sizeof(why));
	if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS)
		rd_kafka_AdminOptions_set_operation_timeout(o, timeout_ms(c), why, sizeof(why));
	return o;
}

/* The result of the admin call just made, waiting a little past its request timeout (librdkafka answers with a
 * timeout error by then). NULL with c's error set when none came; else the caller destroys it. A failure of the
 * whole call (rd_kafka_event_error) is returned as an error here too. */
static rd_kafka_event_t *admin_wait(struct sl_conn *c, const char *what, int *rc_out)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(K(c)->admin_queue, timeout_ms(c) + 5000);

	*rc_out = 0;
	if (ev == NULL) {
		*rc_out = -ETIMEDOUT;
		sl_conn_set_error(c, "%s: the Kafka cluster did not answer within %u ms", what, c->io_timeout_ms);
		return NULL;
	}
	if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		c->broker_error = sl_kafka_code(rd_kafka_event_error(ev));
		sl_conn_set_error(c, "%s: %s", what, rd_kafka_event_error_string(ev));
		*rc_out = sl_kafka_errno(rd_kafka_event_error(ev));
		rd_kafka_event_destroy(ev);
		return NULL;
	}
	return ev;
}

/* ---- topics ---- */

/* A synclog topic setting as the Kafka topic config it stands for (key and value into the buffers). */
static int setting_to_kafka(struct sl_conn *c, const struct sl_topic_setting *s, const char **key, const char **value)
{
	if (strcmp(s->key, "compact") == 0) {
		bool on = strcmp(s->value, "true") == 0;

		if (!on && strcmp(s->value, "false") != 0) {
			sl_conn_set_error(c, "topic setting compact=%s: true or false", s->value);
			return -EINVAL;
		}
		*key = "cleanup.policy";
		*value = on ? "compact" : "delete";
		return 0;
	}
	if (strcmp(s->key, "retain.for.groups") == 0) {
		sl_conn_set_error(c,
		                  "topic setting retain.for.groups is synclogd's own: a Kafka cluster keeps records by "
		                  "retention.ms and retention.bytes alone");
		return -EINVAL;
	}
	*key = s->key;
	*value = s->value;
	return 0;
}

/* Wait until the metadata shows topic with its partitions (creation reaches every broker a moment later). */
static void topic_visible_wait(struct sl_conn *c, const char *name)
{
	int64_t deadline = sl_clock_mono_ms() + c->io_timeout_ms;

	while (sl_clock_mono_ms() < deadline) {
		const struct rd_kafka_metadata *md;
		bool ok = false;

		if (rd_kafka_metadata(K(c)->rk, 1, NULL, &md, timeout_ms(c)) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			const struct rd_kafka_metadata_topic *t = topic_find(md, name);

			ok = t != NULL && t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0;
			for (int i = 0; ok && i < t->partition_cnt; i++)
				ok = t->partitions[i].leader >= 0;
			rd_kafka_metadata_destroy(md);
		}
		if (ok)
			return;
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
}

int sl_kafka_topic_create(struct sl_conn *c, const struct sl_topic_config *config,
                          const struct sl_topic_setting *settings, uint32_t count)
{
	const struct rd_kafka_metadata *md;
	char num[4][24], why[512], what[SL_TOPIC_NAME_BYTES_MAX + 64];
	rd_kafka_NewTopic_t *nt;
	int rc = metadata_all(c, &md);

	if (rc != 0)
		return rc;
	bool controller = controller_known(c, md);
	rd_kafka_metadata_destroy(md);
	snprintf(what, sizeof(what), "create topic '%s'", config->name);
	if (!controller)
		return no_controller(c, what);
	nt = rd_kafka_NewTopic_new(config->name, (int)config->partitions,
	                           config->replication_factor > 0 ? config->replication_factor : -1, why, sizeof(why));
	if (nt == NULL) {
		sl_conn_set_error(c, "%s: %s", what, why);
		return -EINVAL;
	}
	/* synclog's topic defaults are the topic's settings (keep forever unless told), not the cluster's. */
	snprintf(num[0], sizeof(num[0]), "%lld", (long long)config->retention_ms);
	snprintf(num[1], sizeof(num[1]), "%lld", (long long)config->retention_bytes);
	rd_kafka_NewTopic_set_config(nt, "retention.ms", num[0]);
	rd_kafka_NewTopic_set_config(nt, "retention.bytes", num[1]);
	rd_kafka_NewTopic_set_config(nt, "cleanup.policy", config->compact ? "compact" : "delete");
	if (config->segment_bytes > 0) {
		snprintf(num[2], sizeof(num[2]), "%lld", (long long)config->segment_bytes);
		rd_kafka_NewTopic_set_config(nt, "segment.bytes", num[2]);
	}
	if (config->segment_ms > 0) {
		snprintf(num[3], sizeof(num[3]), "%lld", (long long)config->segment_ms);
		rd_kafka_NewTopic_set_config(nt, "segment.ms", num[3]);
	}
	for (uint32_t i = 0; i < count; i++) {
		const char *key, *value;

		rc = setting_to_kafka(c, &settings[i], &key, &value);
		if (rc != 0) {
			rd_kafka_NewTopic_destroy(nt);
			return rc;
		}
		rd_kafka_NewTopic_set_config(nt, key, value);
	}
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_CreateTopics(K(c)->rk, &nt, 1, o, K(c)->admin_queue);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_event_t *ev = admin_wait(c, what, &rc);
	if (ev == NULL)
		return rc;
	size_t n;
	const rd_kafka_topic_result_t **res =
	        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			continue;
		c->broker_error = sl_kafka_code(e);
		rc = sl_kafka_errno(e);
		if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			sl_conn_set_error(c, "%s: TOPIC_EXISTS: a topic of that name exists on the Kafka cluster",
			                  what);
		else
			sl_conn_set_error(c, "%s: %s", what,
			                  rd_kafka_topic_result_error_string(res[i]) != NULL
			                          ? rd_kafka_topic_result_error_string(res[i])
			                          : rd_kafka_err2str(e));
	}
	rd_kafka_event_destroy(ev);
	if (rc == 0)
		topic_visible_wait(c, config->name);
	return rc;
}

int sl_kafka_topic_delete(struct sl_conn *c, const char *name)
{
	const struct rd_kafka_metadata *md;
	char what[SL_TOPIC_NAME_BYTES_MAX + 64];
	int rc = metadata_all(c, &md);

	if (rc != 0)
		return rc;
	bool controller = controller_known(c, md), exists = topic_find(md, name) != NULL;
	rd_kafka_metadata_destroy(md);
	snprintf(what, sizeof(what), "delete topic '%s'", name);
	if (!exists) {
		c->broker_error = SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC;
		sl_conn_set_error(c, "%s: UNKNOWN_TOPIC: no such topic on the Kafka cluster", what);
		return -ENOENT;
	}
	if (!controller)
		return no_controller(c, what);
	rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_DELETETOPICS);
	rd_kafka_DeleteTopics(K(c)->rk, &dt, 1, o, K(c)->admin_queue);
	rd_kafka_DeleteTopic_destroy(dt);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_event_t *ev = admin_wait(c, what, &rc);
	if (ev == NULL)
		return rc;
	size_t n;
	const rd_kafka_topic_result_t **res =
	        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_NO_ERROR)
			rc = fail(c, rd_kafka_topic_result_error(res[i]), "%s", what);
	rd_kafka_event_destroy(ev);
	return rc;
}

/* A topic as metadata alone describes it, with synclog's defaults for the settings until DescribeConfigs fills
 * them in. */
static void topic_from_metadata(struct sl_topic_config *t, const struct rd_kafka_metadata_topic *mt)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", mt->topic);
	t->partitions = (uint32_t)mt->partition_cnt;
	t->retention_ms = -1;
	t->retention_bytes = -1;
	t->replication_factor = mt->partition_cnt > 0 ? mt->partitions[0].replica_cnt : 0;
	t->settings_unknown = true;
}

static int64_t config_int(const char *v, int64_t fallback)
{
	char *end;
	long long n;

	if (v == NULL)
		return fallback;
	errno = 0;
	n = strtoll(v, &end, 10);
	return errno == 0 && *end == '\0' && end != v ? (int64_t)n : fallback;
}

/* Fill the settings of count topics from one DescribeConfigs. A cluster that cannot answer (no controller, an
 * older broker) leaves them marked unknown: the topics are still listed. */
static void configs_describe(struct sl_conn *c, const struct rd_kafka_metadata *md, struct sl_topic_config *topics,
                             uint32_t count)
{
	rd_kafka_ConfigResource_t **res;
	int rc;

	if (count == 0 || !controller_known(c, md))
		return;
	res = calloc(count, sizeof(*res));
	if (res == NULL)
		return;
	for (uint32_t i = 0; i < count; i++)
		res[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topics[i].name);
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_DescribeConfigs(K(c)->rk, res, count, o, K(c)->admin_queue);
	rd_kafka_ConfigResource_destroy_array(res, count);
	free(res);
	rd_kafka_AdminOptions_destroy(o);
	char error_keep[SL_ERROR_BYTES];
	snprintf(error_keep, sizeof(error_keep), "%s", c->error);
	rd_kafka_event_t *ev = admin_wait(c, "describe topic configs", &rc);
	snprintf(c->error, sizeof(c->error), "%s", error_keep); /* settings left unknown are no failure */
	if (ev == NULL)
		return;
	size_t n;
	const rd_kafka_ConfigResource_t **rs =
	        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
	for (size_t i = 0; i < n; i++) {
		struct sl_topic_config *t = NULL;
		const rd_kafka_ConfigEntry_t **entries;
		size_t m;

		for (uint32_t j = 0; j < count && t == NULL; j++)
			if (strcmp(topics[j].name, rd_kafka_ConfigResource_name(rs[i])) == 0)
				t = &topics[j];
		if (t == NULL || rd_kafka_ConfigResource_error(rs[i]) != RD_KAFKA_RESP_ERR_NO_ERROR)
			continue;
		entries = rd_kafka_ConfigResource_configs(rs[i], &m);
		for (size_t k = 0; k < m; k++) {
			const char *name = rd_kafka_ConfigEntry_name(entries[k]),
			           *v = rd_kafka_ConfigEntry_value(entries[k]);

			if (strcmp(name, "retention.ms") == 0)
				t->retention_ms = config_int(v, -1);
			else if (strcmp(name, "retention.bytes") == 0)
				t->retention_bytes = config_int(v, -1);
			else if (strcmp(name, "segment.bytes") == 0)
				t->segment_bytes = config_int(v, 0);
			else if (strcmp(name, "segment.ms") == 0)
				t->segment_ms = config_int(v, 0);
			else if (strcmp(name, "delete.retention.ms") == 0)
				t->delete_retention_ms = config_int(v, 0);
			else if (strcmp(name, "cleanup.policy") == 0)
				t->compact = v != NULL && strstr(v, "compact") != NULL;
		}
		t->settings_unknown = false;
	}
	rd_kafka_event_destroy(ev);
}

static int topic_compare(const void *a, const void *b)
{
	return strcmp(((const struct sl_topic_config *)a)->name, ((const struct sl_topic_config *)b)->name);
}

/* Kafka's internal topics (__consumer_offsets, __transaction_state) are the cluster's, not the user's. */
static bool topic_internal(const char *name)
{
	return strncmp(name, "__", 2) == 0;
}

int sl_kafka_topic_list(struct sl_conn *c, struct sl_topic_config **topics_out, uint32_t *count_out)
{
	const struct rd_kafka_metadata *md;
	struct sl_topic_config *topics;
	uint32_t n = 0;
	int rc = metadata_all(c, &md);

	*topics_out = NULL;
	*count_out = 0;
	if (rc != 0)
		return rc;
	topics = calloc(md->topic_cnt > 0 ? (size_t)md->topic_cnt : 1, sizeof(*topics));
	if (topics == NULL) {
		rd_kafka_metadata_destroy(md);
		sl_conn_set_error(c, "list topics: out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < md->topic_cnt; i++)
		if (!topic_internal(md->topics[i].topic) && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			topic_from_metadata(&topics[n++], &md->topics[i]);
	configs_describe(c, md, topics, n);
	rd_kafka_metadata_destroy(md);
	qsort(topics, n, sizeof(*topics), topic_compare);
	*topics_out = topics;
	*count_out = n;
	return 0;
}

int sl_kafka_topic_describe(struct sl_conn *c, const char *name, struct sl_topic_config *config_out,
                            struct sl_partition_info **partitions_out, uint32_t *count_out)
{
	const struct rd_kafka_metadata *md;
	const struct rd_kafka_metadata_topic *mt;
	struct sl_partition_info *parts;
	uint32_t *ids;
	int64_t *offsets;
	int rc = metadata_all(c, &md);

	*partitions_out = NULL;
	*count_out = 0;
	if (rc != 0)
		return rc;
	mt = topic_find(md, name);
	if (mt == NULL || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rc = mt == NULL ? -ENOENT : fail(c, mt->err, "describe topic '%s'", name);
		if (mt == NULL) {
			c->broker_error = SYNCLOG__ERROR_CODE__UNKNOWN_TOPIC;
			sl_conn_set_error(
			        c, "describe topic '%s': UNKNOWN_TOPIC: no such topic on the Kafka cluster at %s", name,
			        K(c)->bootstrap);
		}
		rd_kafka_metadata_destroy(md);
		return rc;
	}
	topic_from_metadata(config_out, mt);
	configs_describe(c, md, config_out, 1);
	uint32_t n = config_out->partitions;
	parts = calloc(n ? n : 1, sizeof(*parts));
	ids = calloc(n ? n : 1, sizeof(*ids));
	offsets = calloc(2 * (size_t)(n ? n : 1), sizeof(*offsets));
	rd_kafka_metadata_destroy(md);
	if (parts == NULL || ids == NULL || offsets == NULL) {
		free(parts);
		free(ids);
		free(offsets);
		sl_conn_set_error(c, "describe topic '%s': out of memory", name);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		ids[i] = i;
	rc = n == 0 ? 0
	            : sl_kafka_offsets_at(K(c)->rk, name, ids, n, RD_KAFKA_OFFSET_BEGINNING, timeout_ms(c), offsets,
	                                  c->error, sizeof(c->error));
	if (rc == 0 && n > 0)
		rc = sl_kafka_offsets_at(K(c)->rk, name, ids, n, RD_KAFKA_OFFSET_END, timeout_ms(c), offsets + n,
		                         c->error, sizeof(c->error));
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		parts[i].partition = i;
		parts[i].earliest_offset = offsets[i];
		parts[i].next_offset = offsets[n + i];
		parts[i].size_unknown = true;
	}
	free(ids);
	free(offsets);
	if (rc != 0) {
		free(parts);
		return rc;
	}
	*partitions_out = parts;
	*count_out = n;
	return 0;
}

int sl_kafka_offsets_list(struct sl_conn *c, const char *topic, enum sl_offset_spec spec, int64_t timestamp_ms,
                          const uint32_t *partitions, uint32_t count, int64_t *offsets_out)
{
	int64_t at = spec == SL_OFFSET_EARLIEST ? RD_KAFKA_OFFSET_BEGINNING
	             : spec == SL_OFFSET_LATEST ? RD_KAFKA_OFFSET_END
	                                        : (timestamp_ms < 0 ? 0 : timestamp_ms);
	int rc = ensure(c);

	if (rc != 0 || count == 0)
		return rc;
	return sl_kafka_offsets_at(K(c)->rk, topic, partitions, count, at, timeout_ms(c), offsets_out, c->error,
	                           sizeof(c->error));
}

/* ---- reading single records ---- */

static int reader_ensure(struct sl_conn *c)
{
	struct sl_kafka_conn *k = K(c);
	const struct sl_kafka_pair ours[] = {
	        {"group.id", "synclog-reader"},        {"enable.auto.commit", "false"},
	        {"enable.auto.offset.store", "false"}, {"enable.partition.eof", "true"},
	        {"auto.offset.reset", "error"},        {"fetch.wait.max.ms", "100"},
	};
	char why[512];
	int rc = ensure(c);

	if (rc != 0 || k->reader != NULL)
		return rc;
	rd_kafka_conf_t *conf = sl_kafka_conf_new(k->bootstrap, c->client_id, ours, SL_ARRAY_COUNT(ours), &k->security,
	                                          &k->config, c->error, sizeof(c->error));
	if (conf == NULL)
		return -EINVAL;
	k->reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (k->reader == NULL) {
		rd_kafka_conf_destroy(conf);
		sl_conn_set_error(c, "librdkafka: %s", why);
		return -EINVAL;
	}
	rd_kafka_poll_set_consumer(k->reader);
	return 0;
}

/* The first record at or after offsets[i] of each partitions[i] of topic, into msgs[i] (the caller destroys them),
 * or NULL when the partition has none there (its end, or retention removed it). Waits at most the io timeout.
 * Returns 0 or a negative errno with c's error set. */
static int first_records(struct sl_conn *c, const char *topic, const uint32_t *partitions, const int64_t *offsets,
                         uint32_t n, rd_kafka_message_t **msgs)
{
	rd_kafka_topic_partition_list_t *list;
	uint32_t left = n;
	bool *settled;
	int rc = reader_ensure(c);

	memset(msgs, 0, n * sizeof(*msgs));
	if (rc != 0 || n == 0)
		return rc;
	settled = calloc(n, sizeof(*settled));
	if (settled == NULL)
		return -ENOMEM;
	list = rd_kafka_topic_partition_list_new((int)n);
	for (uint32_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, topic, (int32_t)partitions[i])->offset = offsets[i];
	rd_kafka_resp_err_t e = rd_kafka_assign(K(c)->reader, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		free(settled);
		return fail(c, e, "read topic '%s'", topic);
	}
	int64_t deadline = sl_clock_mono_ms() + c->io_timeout_ms;
	while (left > 0 && rc == 0 && sl_clock_mono_ms() < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(K(c)->reader, READ_POLL_MS);
		uint32_t i;

		if (m == NULL)
			continue;
		for (i = 0; i < n; i++)
			if (m->rkt != NULL && (uint32_t)m->partition == partitions[i] &&
			    strcmp(rd_kafka_topic_name(m->rkt), topic) == 0)
				break;
		if (i == n || settled[i]) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset >= offsets[i]) {
			msgs[i] = m;
		} else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
		           m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
		           m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
			rd_kafka_message_destroy(m);
		} else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->rkt != NULL) {
			rc = fail(c, m->err, "read topic '%s' partition %u", topic, partitions[i]);
			rd_kafka_message_destroy(m);
			break;
		} else {
			rd_kafka_message_destroy(m);
			continue;
		}
		settled[i] = true;
		left--;
	}
	rd_kafka_assign(K(c)->reader, NULL);
	free(settled);
	if (rc == 0 && left > 0) {
		rc = -ETIMEDOUT;
		sl_conn_set_error(c, "read topic '%s': no record or end within %u ms", topic, c->io_timeout_ms);
	}
	if (rc != 0)
		for (uint32_t i = 0; i < n; i++)
			if (msgs[i] != NULL) {
				rd_kafka_message_destroy(msgs[i]);
				msgs[i] = NULL;
			}
	return rc;
}

int sl_kafka_delete_in_log(struct sl_conn *c, const char *topic, uint32_t partition, int64_t offset, bool *present_out)
{
	rd_kafka_message_t *m;
	int rc = first_records(c, topic, &partition, &offset, 1, &m);

	*present_out = false;
	if (rc != 0 || m == NULL)
		return rc; /* nothing at or after offset: retention or the cleaner removed it */
	if (m->offset == offset) {
		struct sl_record r;
		size_t hbytes = sl_kafka_headers_bytes(m);
		uint8_t *h = malloc(hbytes ? hbytes : 1), *hp = h;

		if (h == NULL) {
			rd_kafka_message_destroy(m);
			return -ENOMEM;
		}
		*present_out = sl_kafka_message_record(m, &r, &hp, h + hbytes, NULL) == 0 && r.op == SL_OP_DELETE;
		free(h);
	}
	rd_kafka_message_destroy(m);
	return 0;
}

/* ---- groups ---- */

static int summary_compare(const void *a, const void *b)
{
	return strcmp(((const struct sl_group_summary *)a)->group, ((const struct sl_group_summary *)b)->group);
}

/* DescribeConsumerGroups of count groups: the event (the caller destroys it) with *descs_out, or NULL with *rc_out
 * (-EOPNOTSUPP when the cluster does not describe groups). */
static rd_kafka_event_t *groups_describe(struct sl_conn *c, const char **groups, size_t count,
                                         const rd_kafka_ConsumerGroupDescription_t ***descs_out, size_t *n_out,
                                         int *rc_out)
{
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
	rd_kafka_event_t *ev;

	rd_kafka_DescribeConsumerGroups(K(c)->rk, groups, count, o, K(c)->admin_queue);
	rd_kafka_AdminOptions_destroy(o);
	ev = admin_wait(c, "describe groups", rc_out);
	if (ev == NULL)
		return NULL;
	*descs_out =
	        rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev), n_out);
	for (size_t i = 0; i < *n_out; i++) {
		const rd_kafka_error_t *e = rd_kafka_ConsumerGroupDescription_error((*descs_out)[i]);

		if (e != NULL && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE) {
			*rc_out = sl_kafka_unsupported(c, "describe groups",
			                               "the cluster does not answer DescribeGroups");
			rd_kafka_event_destroy(ev);
			return NULL;
		}
	}
	return ev;
}

static enum sl_kafka_health group_health(const struct sl_group_description *d, int64_t *since_out);

int sl_kafka_group_list(struct sl_conn *c, struct sl_group_summary **groups_out, uint32_t *count_out)
{
	rd_kafka_event_t *ev, *dev;
	struct sl_group_summary *groups;
	const rd_kafka_ConsumerGroupListing_t **valid;
	const rd_kafka_ConsumerGroupDescription_t **descs;
	const struct rd_kafka_metadata *md;
	size_t n, errors, nd;
	int rc = metadata_all(c, &md);

	*groups_out = NULL;
	*count_out = 0;
	if (rc != 0)
		return rc;
	bool controller = controller_known(c, md);
	rd_kafka_metadata_destroy(md);
	if (!controller)
		return sl_kafka_unsupported(c, "list groups",
		                            "its metadata names no controller, as librdkafka's mock cluster, which "
		                            "does not answer ListGroups either");
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
	rd_kafka_ListConsumerGroups(K(c)->rk, o, K(c)->admin_queue);
	rd_kafka_AdminOptions_destroy(o);
	ev = admin_wait(c, "list groups", &rc);
	if (ev == NULL)
		return rc;
	const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
	valid = rd_kafka_ListConsumerGroups_result_valid(res, &n);
	const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &errors);
	if (n == 0 && errors > 0) {
		rd_kafka_resp_err_t e = rd_kafka_error_code(errs[0]);

		rc = e == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE
		             ? sl_kafka_unsupported(c, "list groups", "the cluster does not answer ListGroups")
		             : fail(c, e, "list groups");
		rd_kafka_event_destroy(ev);
		return rc;
	}
	groups = calloc(n ? n : 1, sizeof(*groups));
	const char **names = calloc(n ? n : 1, sizeof(*names));
	if (groups == NULL || names == NULL) {
		free(groups);
		free(names);
		rd_kafka_event_destroy(ev);
		sl_conn_set_error(c, "list groups: out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(groups[i].group, sizeof(groups[i].group), "%s",
		         rd_kafka_ConsumerGroupListing_group_id(valid[i]));
		groups[i].generation = -1; /* Kafka's Admin API does not say */
		names[i] = groups[i].group;
	}
	/* Member counts from one DescribeGroups of them all; without it they stay 0. */
	if (n > 0 && (dev = groups_describe(c, names, n, &descs, &nd, &rc)) != NULL) {
		for (size_t i = 0; i < nd; i++)
			for (size_t j = 0; j < n; j++)
				if (strcmp(groups[j].group, rd_kafka_ConsumerGroupDescription_group_id(descs[i])) == 0)
					groups[j].members =
					        (uint32_t)rd_kafka_ConsumerGroupDescription_member_count(descs[i]);
		rd_kafka_event_destroy(dev);
	}
	free(names);
	rd_kafka_event_destroy(ev);
	/* State and lag of each, judged client-side as group describe does (one describe per group). */
	for (size_t i = 0; i < n; i++) {
		struct sl_group_description *d;

		rc = sl_kafka_group_describe(c, groups[i].group, &d);
		if (rc == -ENOENT) { /* listed, but neither members nor commits any more */
			snprintf(groups[i].state, sizeof(groups[i].state), "%s",
			         sl_kafka_health_name(SL_KAFKA_HEALTH_IDLE));
			continue;
		}
		if (rc != 0) {
			free(groups);
			return rc;
		}
		snprintf(groups[i].state, sizeof(groups[i].state), "%s",
		         sl_kafka_health_name(group_health(d, &groups[i].state_since_ms)));
		for (uint32_t p = 0; p < d->partition_count; p++) {
			groups[i].lag += d->partitions[p].lag;
			if (d->partitions[p].lag_ms > groups[i].lag_ms)
				groups[i].lag_ms = d->partitions[p].lag_ms;
		}
		sl_group_description_free(d);
	}
	qsort(groups, n, sizeof(*groups), summary_compare);
	*groups_out = groups;
	*count_out = (uint32_t)n;
	return 0;
}

/* ListConsumerGroupOffsets of group: for the partitions of list (NULL: every partition it committed to). The
 * caller destroys *ev_out; *parts_out points into it. */
static int offsets_fetch(struct sl_conn *c, const char *group, const rd_kafka_topic_partition_list_t *list,
                         rd_kafka_event_t **ev_out, const rd_kafka_topic_partition_list_t **parts_out)
{
	char what[SL_GROUP_NAME_BYTES_MAX + 64];
	int rc;

	snprintf(what, sizeof(what), "fetch offsets of group '%s'", group);
	rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, list);
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
	rd_kafka_ListConsumerGroupOffsets(K(c)->rk, &req, 1, o, K(c)->admin_queue);
	rd_kafka_ListConsumerGroupOffsets_destroy(req);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_event_t *ev = admin_wait(c, what, &rc);
	if (ev == NULL)
		return rc;
	size_t n;
	const rd_kafka_group_result_t **gr =
	        rd_kafka_ListConsumerGroupOffsets_result_groups(rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
	if (n != 1 || rd_kafka_group_result_error(gr[0]) != NULL) {
		rc = n == 1 ? fail(c, rd_kafka_error_code(rd_kafka_group_result_error(gr[0])), "%s", what) : -EPROTO;
		if (n != 1)
			sl_conn_set_error(c, "%s: the cluster answered for %zu groups", what, n);
		rd_kafka_event_destroy(ev);
		return rc;
	}
	*parts_out = rd_kafka_group_result_partitions(gr[0]);
	*ev_out = ev;
	return 0;
}

int sl_kafka_group_committed_get(struct sl_conn *c, const char *group, const char *topic, const uint32_t *partitions,
                                 uint32_t count, struct sl_committed *out)
{
	rd_kafka_topic_partition_list_t *list;
	const rd_kafka_topic_partition_list_t *got;
	rd_kafka_event_t *ev;
	int rc = ensure(c);

	if (rc != 0)
		return rc;
	list = rd_kafka_topic_partition_list_new((int)count);
	for (uint32_t i = 0; i < count; i++)
		rd_kafka_topic_partition_list_add(list, topic, (int32_t)partitions[i]);
	rc = offsets_fetch(c, group, list, &ev, &got);
	rd_kafka_topic_partition_list_destroy(list);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < count && rc == 0; i++) {
		const rd_kafka_topic_partition_t *tp = NULL;

		for (int j = 0; got != NULL && j < got->cnt && tp == NULL; j++)
			if ((uint32_t)got->elems[j].partition == partitions[i] &&
			    strcmp(got->elems[j].topic, topic) == 0)
				tp = &got->elems[j];
		if (tp == NULL) {
			sl_conn_set_error(c, "fetch offsets of group '%s': no answer for topic '%s' partition %u",
			                  group, topic, partitions[i]);
			rc = -EPROTO;
			break;
		}
		if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			rc = fail(c, tp->err, "fetch offsets of group '%s' on topic '%s' partition %u", group, topic,
			          partitions[i]);
			break;
		}
		out[i].offset = tp->offset >= 0 ? tp->offset : -1;
		out[i].commit_ms = 0; /* Kafka's OffsetFetch does not say when */
		size_t mlen = tp->metadata_size < SL_COMMIT_METADATA_BYTES_MAX ? tp->metadata_size
		                                                               : SL_COMMIT_METADATA_BYTES_MAX;
		memcpy(out[i].metadata, tp->metadata != NULL ? tp->metadata : "", tp->metadata != NULL ? mlen : 0);
		out[i].metadata[tp->metadata != NULL ? mlen : 0] = '\0';
	}
	rd_kafka_event_destroy(ev);
	return rc;
}

/* AlterConsumerGroupOffsets of list (destroyed here). */
static int offsets_alter(struct sl_conn *c, const char *group, rd_kafka_topic_partition_list_t *list)
{
	char what[SL_GROUP_NAME_BYTES_MAX + 64];
	int rc;

	snprintf(what, sizeof(what), "commit offsets of group '%s'", group);
	rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(group, list);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
	rd_kafka_AlterConsumerGroupOffsets(K(c)->rk, &req, 1, o, K(c)->admin_queue);
	rd_kafka_AlterConsumerGroupOffsets_destroy(req);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_event_t *ev = admin_wait(c, what, &rc);
	if (ev == NULL)
		return rc;
	size_t n;
	const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
	        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
	if (n == 1 && rd_kafka_group_result_error(gr[0]) != NULL)
		e = rd_kafka_error_code(rd_kafka_group_result_error(gr[0]));
	const rd_kafka_topic_partition_list_t *res = n == 1 ? rd_kafka_group_result_partitions(gr[0]) : NULL;
	for (int i = 0; res != NULL && i < res->cnt && e == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
		e = res->elems[i].err;
	if (e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
	    e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS) {
		/* What Kafka answers an operator's commit to a group with members. */
		c->broker_error = SYNCLOG__ERROR_CODE__GROUP_NOT_EMPTY;
		sl_conn_set_error(c,
		                  "%s: GROUP_NOT_EMPTY (Kafka's %s): the group has live members, and Kafka refuses an "
		                  "operator's offsets while it has: stop its consumers first",
		                  what, rd_kafka_err2name(e));
		rc = -EBUSY;
	} else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		rc = fail(c, e, "%s", what);
	}
	rd_kafka_event_destroy(ev);
	return rc;
}

int sl_kafka_group_offsets_commit(struct sl_conn *c, const char *group, const struct sl_topic_partition_offset *offsets,
                                  uint32_t count, bool force)
{
	int rc = ensure(c);

	if (rc != 0)
		return rc;
	if (force)
		return sl_kafka_unsupported(c, "commit offsets with --force",
		                            "a Kafka cluster refuses an operator's offsets while the group has "
		                            "members, forced or not; stop its consumers, then commit without --force");
	/* The reset's mark (SL_KAFKA_RESET_MARK): appliers of the group adopt it when they start. */
	char mark[64];
	int mark_len = snprintf(mark, sizeof(mark), SL_KAFKA_RESET_MARK "%lld", (long long)sl_clock_wall_ms());
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)count);
	for (uint32_t i = 0; i < count; i++) {
		rd_kafka_topic_partition_t *tp =
		        rd_kafka_topic_partition_list_add(list, offsets[i].topic, (int32_t)offsets[i].partition);

		tp->offset = offsets[i].offset;
		tp->metadata = malloc((size_t)mark_len);
		if (tp->metadata == NULL) {
			rd_kafka_topic_partition_list_destroy(list);
			sl_conn_set_error(c, "commit offsets of group '%s': out of memory", group);
			return -ENOMEM;
		}
		memcpy(tp->metadata, mark, (size_t)mark_len);
		tp->metadata_size = (size_t)mark_len;
	}
	return offsets_alter(c, group, list);
}

int sl_kafka_group_offsets_commit_metadata(struct sl_conn *c, const char *group, const char *topic,
                                           const uint32_t *partitions, const int64_t *offsets,
                                           const char *const *metadata, uint32_t count)
{
	int rc = ensure(c);

	if (rc != 0)
		return rc;
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)count);
	for (uint32_t i = 0; i < count; i++) {
		rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, topic, (int32_t)partitions[i]);

		tp->offset = offsets[i];
		if (metadata != NULL && metadata[i] != NULL) {
			tp->metadata = strdup(metadata[i]); /* freed with the list */
			tp->metadata_size = tp->metadata != NULL ? strlen(metadata[i]) : 0;
		}
	}
	return offsets_alter(c, group, list);
}

int sl_kafka_group_delete(struct sl_conn *c, const char *group, bool force)
{
	char what[SL_GROUP_NAME_BYTES_MAX + 64];
	int rc = ensure(c);

	if (rc != 0)
		return rc;
	snprintf(what, sizeof(what), "delete group '%s'", group);
	if (force)
		return sl_kafka_unsupported(c, what,
		                            "a Kafka cluster deletes only a group without members; stop its "
		                            "consumers, then delete it without --force");
	rd_kafka_DeleteGroup_t *dg = rd_kafka_DeleteGroup_new(group);
	rd_kafka_AdminOptions_t *o = admin_options(c, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
	rd_kafka_DeleteGroups(K(c)->rk, &dg, 1, o, K(c)->admin_queue);
	rd_kafka_DeleteGroup_destroy(dg);
	rd_kafka_AdminOptions_destroy(o);
	rd_kafka_event_t *ev = admin_wait(c, what, &rc);
	if (ev == NULL)
		return rc;
	size_t n;
	const rd_kafka_group_result_t **gr =
	        rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
	if (n == 1 && rd_kafka_group_result_error(gr[0]) != NULL)
		rc = fail(c, rd_kafka_error_code(rd_kafka_group_result_error(gr[0])), "%s", what);
	rd_kafka_event_destroy(ev);
	return rc;
}

static int lag_compare(const void *a, const void *b)
{
	const struct sl_group_lag *x = a, *y = b;
	int t = strcmp(x->topic, y->topic);

	return t != 0 ? t : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The topics a description covers: those with commits and those assigned to members (names into out, at most
 * max, no repeats). */
static uint32_t topics_collect(const rd_kafka_topic_partition_list_t *committed,
                               const rd_kafka_topic_partition_list_t *const *assigned, size_t assigned_count,
                               const char **out, uint32_t max)
{
	uint32_t n = 0;

	for (size_t a = 0; a <= assigned_count; a++) {
		const rd_kafka_topic_partition_list_t *l = a == 0 ? committed : assigned[a - 1];

		for (int i = 0; l != NULL && i < l->cnt; i++) {
			uint32_t j;

			if (a == 0 && l->elems[i].offset < 0)
				continue;
			for (j = 0; j < n && strcmp(out[j], l->elems[i].topic) != 0; j++)
				;
			if (j == n && n < max)
				out[n++] = l->elems[i].topic;
		}
	}
	return n;
}

/* Every partition of every topic of md (but the internal ones), for a cluster that lists a group's offsets only
 * for the partitions it is asked about (librdkafka's mock). */
static rd_kafka_topic_partition_list_t *all_partitions(const struct rd_kafka_metadata *md)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);

	for (int i = 0; i < md->topic_cnt; i++)
		if (!topic_internal(md->topics[i].topic))
			for (int p = 0; p < md->topics[i].partition_cnt; p++)
				rd_kafka_topic_partition_list_add(l, md->topics[i].topic, p);
	return l;
}

/* The lag of topic's partitions, from ListOffsets and the commits, into out (n = its partition count), and their
 * health states (kafka_health.c; members_known: desc says how many live members the group has). */
static int topic_lag(struct sl_conn *c, const char *topic, uint32_t n, const rd_kafka_topic_partition_list_t *committed,
                     const rd_kafka_ConsumerGroupDescription_t *desc, bool members_known, struct sl_group_lag *out)
{
	uint32_t *ids = calloc(n, sizeof(*ids)), *lagging = calloc(n, sizeof(*lagging));
	int64_t *offs = calloc(4 * (size_t)n, sizeof(*offs)), *positions = offs + 2 * n, *at = offs + 3 * n;
	rd_kafka_message_t **msgs = calloc(n, sizeof(*msgs));
	uint32_t nl = 0;
	int rc = ids && lagging && offs && msgs ? 0 : -ENOMEM;

	for (uint32_t i = 0; rc == 0 && i < n; i++)
		ids[i] = i;
	if (rc == 0)
		rc = sl_kafka_offsets_at(K(c)->rk, topic, ids, n, RD_KAFKA_OFFSET_BEGINNING, timeout_ms(c), offs,
		                         c->error, sizeof(c->error));
	if (rc == 0)
		rc = sl_kafka_offsets_at(K(c)->rk, topic, ids, n, RD_KAFKA_OFFSET_END, timeout_ms(c), offs + n,
		                         c->error, sizeof(c->error));
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		struct sl_group_lag *l = &out[i];
		const rd_kafka_topic_partition_t *tp =
		        committed != NULL ? rd_kafka_topic_partition_list_find(
		                                    (rd_kafka_topic_partition_list_t *)committed, topic, (int32_t)i)
		                          : NULL;
		int64_t earliest = offs[i], next = offs[n + i];

		snprintf(l->topic, sizeof(l->topic), "%s", topic);
		l->partition = i;
		l->committed = tp != NULL && tp->offset >= 0 ? tp->offset : -1;
		l->next_offset = next;
		/* From the log start when nothing is committed, as synclogd counts it; a commit behind the start
		 * counts only what is still there to read. */
		positions[i] = l->committed >= 0 ? (l->committed > earliest ? l->committed : earliest) : earliest;
		l->lag = next > positions[i] ? next - positions[i] : 0;
		for (size_t m = 0; desc != NULL && m < rd_kafka_ConsumerGroupDescription_member_count(desc); m++) {
			const rd_kafka_MemberDescription_t *md = rd_kafka_ConsumerGroupDescription_member(desc, m);
			const rd_kafka_topic_partition_list_t *as =
			        rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(md));

			if (as != NULL && rd_kafka_topic_partition_list_find((rd_kafka_topic_partition_list_t *)as,
			                                                     topic, (int32_t)i))
				snprintf(l->member_id, sizeof(l->member_id), "%s",
				         rd_kafka_MemberDescription_consumer_id(md));
		}
		if (l->lag > 0)
			lagging[nl++] = i;
	}
	/* lag_ms: the age of the oldest record not consumed, read from the log (Kafka keeps no such figure). */
	for (uint32_t k = 0; rc == 0 && k < nl; k++)
		at[k] = positions[lagging[k]];
	if (rc == 0 && nl > 0)
		rc = first_records(c, topic, lagging, at, nl, msgs);
	int64_t now = sl_clock_wall_ms();
	for (uint32_t k = 0; rc == 0 && k < nl; k++) {
		if (msgs[k] == NULL)
			continue;
		int64_t ts = rd_kafka_message_timestamp(msgs[k], NULL);
		out[lagging[k]].lag_ms = ts > 0 && now > ts ? now - ts : 0;
		rd_kafka_message_destroy(msgs[k]);
	}
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		struct sl_kafka_health_input in = {
		        .log_start = offs[i],
		        .committed = out[i].committed,
		        .lag = out[i].lag,
		        .lag_ms = out[i].lag_ms,
		        .members_known = members_known,
		        .members = desc != NULL ? (uint32_t)rd_kafka_ConsumerGroupDescription_member_count(desc) : 0,
		        .stall_after_ms = K(c)->stall_after_ms,
		        .now_ms = now,
		};
		enum sl_kafka_health h = sl_kafka_health_judge(&in, &out[i].state_since_ms, &out[i].records_lost);

		snprintf(out[i].state, sizeof(out[i].state), "%s", sl_kafka_health_name(h));
	}
	free(ids);
	free(lagging);
	free(offs);
	free(msgs);
	return rc;
}

/* A group's state: its worst partition's, since the earliest of those (0 when none says). */
static enum sl_kafka_health group_health(const struct sl_group_description *d, int64_t *since_out)
{
	enum sl_kafka_health worst = SL_KAFKA_HEALTH_IDLE;

	*since_out = 0;
	for (uint32_t i = 0; i < d->partition_count; i++) {
		enum sl_kafka_health h = sl_kafka_health_of_name(d->partitions[i].state);
		int64_t since = d->partitions[i].state_since_ms;

		if (h > worst) {
			worst = h;
			*since_out = since;
		} else if (h == worst && since > 0 && (*since_out == 0 || since < *since_out)) {
			*since_out = since;
		}
	}
	return worst;
}

int sl_kafka_group_describe(struct sl_conn *c, const char *group, struct sl_group_description **out)
{
	const rd_kafka_ConsumerGroupDescription_t **descs = NULL, *desc = NULL;
	const rd_kafka_topic_partition_list_t *committed = NULL;
	rd_kafka_event_t *dev = NULL, *oev = NULL;
	const struct rd_kafka_metadata *md = NULL;
	struct sl_group_description *d;
	size_t nd = 0;
	int rc = metadata_all(c, &md);

	*out = NULL;
	if (rc != 0)
		return rc;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		rd_kafka_metadata_destroy(md);
		return -ENOMEM;
	}
	snprintf(d->group, sizeof(d->group), "%s", group);
	d->generation = -1;
	if (controller_known(c, md)) {
		dev = groups_describe(c, &group, 1, &descs, &nd, &rc);
		if (dev == NULL && rc != -EOPNOTSUPP)
			goto out;
	}
	d->members_unknown = dev == NULL;
	rc = 0;
	if (dev != NULL && nd == 1 && rd_kafka_ConsumerGroupDescription_error(descs[0]) == NULL)
		desc = descs[0];
	rc = offsets_fetch(c, group, NULL, &oev, &committed);
	if (rc == 0 && (committed == NULL || committed->cnt == 0)) {
		/* A cluster that lists offsets only when asked for partitions: ask for all of them. */
		rd_kafka_topic_partition_list_t *all = all_partitions(md);

		rd_kafka_event_destroy(oev);
		oev = NULL;
		rc = all->cnt > 0 ? offsets_fetch(c, group, all, &oev, &committed) : 0;
		rd_kafka_topic_partition_list_destroy(all);
	}
	if (rc != 0)
		goto out;
	size_t members = desc != NULL ? rd_kafka_ConsumerGroupDescription_member_count(desc) : 0;
	const rd_kafka_topic_partition_list_t **assigned = calloc(members ? members : 1, sizeof(*assigned));
	const char *topics[SL_CONSUMER_TOPICS_MAX * 4];
	if (assigned == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	d->members = calloc(members ? members : 1, sizeof(*d->members));
	for (size_t m = 0; d->members != NULL && m < members; m++) {
		const rd_kafka_MemberDescription_t *mdesc = rd_kafka_ConsumerGroupDescription_member(desc, m);

		assigned[m] = rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(mdesc));
		snprintf(d->members[m].member_id, sizeof(d->members[m].member_id), "%s",
		         rd_kafka_MemberDescription_consumer_id(mdesc));
		snprintf(d->members[m].client_id, sizeof(d->members[m].client_id), "%s",
		         rd_kafka_MemberDescription_client_id(mdesc));
		d->members[m].partition_count = assigned[m] != NULL ? (uint32_t)assigned[m]->cnt : 0;
	}
	d->member_count = (uint32_t)members;
	uint32_t nt = topics_collect(committed, assigned, members, topics, SL_ARRAY_COUNT(topics));
	free(assigned);
	if (d->members == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (nt == 0 && members == 0 &&
	    (desc == NULL || rd_kafka_ConsumerGroupDescription_state(desc) == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD)) {
		c->broker_error = SYNCLOG__ERROR_CODE__UNKNOWN_GROUP;
		sl_conn_set_error(c,
		                  "describe group '%s': UNKNOWN_GROUP: no such group on the Kafka cluster (no "
		                  "members, no commits)",
		                  group);
		rc = -ENOENT;
		goto out;
	}
	uint32_t total = 0;
	for (uint32_t t = 0; t < nt; t++) {
		const struct rd_kafka_metadata_topic *mt = topic_find(md, topics[t]);
		total += mt != NULL ? (uint32_t)mt->partition_cnt : 0;
	}
	d->partitions = calloc(total ? total : 1, sizeof(*d->partitions));
	if (d->partitions == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t t = 0; rc == 0 && t < nt; t++) {
		const struct rd_kafka_metadata_topic *mt = topic_find(md, topics[t]);

		if (mt == NULL || mt->partition_cnt <= 0)
			continue; /* a commit to a topic deleted since */
		rc = topic_lag(c, topics[t], (uint32_t)mt->partition_cnt, committed, desc, !d->members_unknown,
		               &d->partitions[d->partition_count]);
		d->partition_count += (uint32_t)mt->partition_cnt;
	}
	qsort(d->partitions, d->partition_count, sizeof(*d->partitions), lag_compare);
	int64_t since;
	snprintf(d->state, sizeof(d->state), "%s", sl_kafka_health_name(group_health(d, &since)));
	d->stall_after_ms = K(c)->stall_after_ms;
	d->window = SL_KAFKA_HEALTH_WINDOW;
out:
	if (oev != NULL)
		rd_kafka_event_destroy(oev);
	if (dev != NULL)
		rd_kafka_event_destroy(dev);
	rd_kafka_metadata_destroy(md);
	if (rc != 0) {
		sl_group_description_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

static int status_topic_compare(const void *a, const void *b)
{
	return strcmp(((const struct sl_status_topic *)a)->name, ((const struct sl_status_topic *)b)->name);
}

/* Records of one topic: the sum of log end - log start over its partitions (-1 when ListOffsets fails, as for a
 * partition without a leader). */
static int64_t topic_records(struct sl_conn *c, const char *topic, uint32_t n)
{
	uint32_t *ids = calloc(n ? n : 1, sizeof(*ids));
	int64_t *offs = calloc(2 * (size_t)(n ? n : 1), sizeof(*offs)), records = 0;
	char err[SL_ERROR_BYTES];
	int rc = ids != NULL && offs != NULL ? 0 : -ENOMEM;

	for (uint32_t i = 0; rc == 0 && i < n; i++)
		ids[i] = i;
	if (rc == 0 && n > 0)
		rc = sl_kafka_offsets_at(K(c)->rk, topic, ids, n, RD_KAFKA_OFFSET_BEGINNING, timeout_ms(c), offs, err,
		                         sizeof(err));
	if (rc == 0 && n > 0)
		rc = sl_kafka_offsets_at(K(c)->rk, topic, ids, n, RD_KAFKA_OFFSET_END, timeout_ms(c), offs + n, err,
		                         sizeof(err));
	for (uint32_t i = 0; rc == 0 && i < n; i++)
		records += offs[n + i] > offs[i] ? offs[n + i] - offs[i] : 0;
	free(ids);
	free(offs);
	return rc == 0 ? records : -1;
}

int sl_kafka_status_get(struct sl_conn *c, struct sl_status **out)
{
	const struct rd_kafka_metadata *md;
	struct sl_status *s;
	int rc = metadata_all(c, &md);

	*out = NULL;
	if (rc != 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (s != NULL)
		s->topics = calloc((size_t)md->topic_cnt + 1, sizeof(*s->topics));
	if (s == NULL || s->topics == NULL) {
		free(s);
		rd_kafka_metadata_destroy(md);
		sl_conn_set_error(c, "status: out of memory");
		return -ENOMEM;
	}
	s->kafka = true;
	s->kafka_brokers = (uint32_t)md->broker_cnt;
	s->now_ms = sl_clock_wall_ms();
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", K(c)->broker);
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *mt = &md->topics[i];
		struct sl_status_topic *t = &s->topics[s->topic_count];

		if (topic_internal(mt->topic) || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
			continue;
		snprintf(t->name, sizeof(t->name), "%s", mt->topic);
		t->partitions = (uint32_t)mt->partition_cnt;
		for (int p = 0; p < mt->partition_cnt; p++)
			if (mt->partitions[p].leader < 0 || mt->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR)
				t->partitions_unavailable++;
		t->records = topic_records(c, mt->topic, t->partitions);
		s->topic_count++;
	}
	rd_kafka_metadata_destroy(md);
	qsort(s->topics, s->topic_count, sizeof(*s->topics), status_topic_compare);
	rc = sl_kafka_group_list(c, &s->groups, &s->group_count);
	if (rc == -EOPNOTSUPP) {
		s->groups_unknown = true;
		snprintf(s->groups_why, sizeof(s->groups_why), "%s", c->error);
		rc = 0;
	}
	if (rc == 0) {
		s->appliers = calloc(s->group_count + 1, sizeof(*s->appliers)); /* Kafka keeps no applier counters */
		s->runs = calloc(1, sizeof(*s->runs));                          /* nor run reports */
		if (s->appliers == NULL || s->runs == NULL) {
			sl_conn_set_error(c, "status: out of memory");
			rc = -ENOMEM;
		}
	}
	if (rc != 0) {
		sl_status_free(s);
		return rc;
	}
	*out = s;
	return 0;
}
