/* Sync contracts on the broker's disk and in its memory (contracts.h): the versions file of a topic, read at
 * startup and on request, appended to on every set, and the clauses the broker enforces read out of a contract. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/contracts.h"
#include "proto/base/duration.h"
#include "proto/base/fs.h"

/* The history file holds at most this many bytes: every version at its largest, with room for the JSON around. */
#define FILE_BYTES_MAX ((size_t)SL_CONTRACT_VERSIONS_KEPT * (2 * SL_CONTRACT_TEXT_BYTES_MAX + 1024) * 2)

static void err_set(char *err, size_t err_bytes, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void err_set(char *err, size_t err_bytes, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_bytes == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_bytes, fmt, ap);
	va_end(ap);
}

/* recovery.alert.stall_after of root, as the tools' contract parser takes it: a duration text or milliseconds. */
static int stall_after_parse(json_t *root, int64_t *out, char *err, size_t err_bytes)
{
	json_t *recovery = json_object_get(root, "recovery");
	json_t *alert = json_is_object(recovery) ? json_object_get(recovery, "alert") : NULL;
	json_t *v = json_is_object(alert) ? json_object_get(alert, "stall_after") : NULL;

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) && sl_duration_parse(json_string_value(v), out) == 0 && *out > 0)
		return 0;
	*out = 0;
	err_set(err, err_bytes, "recovery.alert.stall_after must be a duration above 0 (30s, 5m, PT1H)");
	return -EINVAL;
}

int sl_contract_rules_parse(const char *contract, struct sl_contract_rules *rules, char *err, size_t err_bytes)
{
	json_error_t jerr;
	json_t *root, *delivery, *dup, *missing;
	enum sl_contract_ik_rule *out = &rules->ik_rule;
	int rc = 0;

	*rules = (struct sl_contract_rules){.ik_rule = SL_CONTRACT_IK_ANY};
	if (strlen(contract) > SL_CONTRACT_TEXT_BYTES_MAX) {
		err_set(err, err_bytes, "the contract is longer than %d bytes", SL_CONTRACT_TEXT_BYTES_MAX);
		return -EINVAL;
	}
	root = json_loads(contract, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		err_set(err, err_bytes, "the contract is not a JSON object%s%s", root == NULL ? ": " : "",
		        root == NULL ? jerr.text : "");
		json_decref(root);
		return -EINVAL;
	}
	delivery = json_object_get(root, "delivery");
	dup = json_is_object(delivery) ? json_object_get(delivery, "duplicates") : NULL;
	missing = json_is_object(delivery) ? json_object_get(delivery, "without_idempotency_key") : NULL;
	if (delivery != NULL && !json_is_object(delivery)) {
		err_set(err, err_bytes, "delivery must be an object");
		rc = -EINVAL;
	} else if (dup != NULL && !(json_is_string(dup) && (strcmp(json_string_value(dup), "version") == 0 ||
	                                                    strcmp(json_string_value(dup), "idempotency-key") == 0))) {
		err_set(err, err_bytes, "delivery.duplicates must be version or idempotency-key");
		rc = -EINVAL;
	} else if (missing != NULL &&
	           !(json_is_string(missing) && (strcmp(json_string_value(missing), "count") == 0 ||
	                                         strcmp(json_string_value(missing), "refuse") == 0))) {
		err_set(err, err_bytes, "delivery.without_idempotency_key must be count or refuse");
		rc = -EINVAL;
	} else if (dup != NULL && strcmp(json_string_value(dup), "idempotency-key") == 0) {
		*out = missing != NULL && strcmp(json_string_value(missing), "refuse") == 0 ? SL_CONTRACT_IK_REFUSE
		                                                                            : SL_CONTRACT_IK_COUNT;
	}
	if (rc == 0)
		rc = stall_after_parse(root, &rules->stall_after_ms, err, err_bytes);
	json_decref(root);
	return rc;
}

void sl_contract_version_free(struct sl_contract_version *v)
{
	if (v == NULL)
		return;
	free(v->text);
	free(v->contract);
	v->text = v->contract = NULL;
}

void sl_topic_contract_free(struct sl_topic_contract *c)
{
	if (c == NULL)
		return;
	sl_contract_version_free(&c->current);
	free(c);
}

/* One version of the file into v (copies). -EINVAL when a member is missing or out of bounds (invariant 3). */
static int version_from_json(json_t *j, struct sl_contract_version *v)
{
	const char *set_by = "", *peer = "", *text = NULL, *contract = NULL;
	json_int_t version = 0, set_at_ms = 0;

	memset(v, 0, sizeof(*v));
	if (json_unpack(j, "{s:I, s?:s, s?:s, s:I, s:s, s:s}", "version", &version, "set_by", &set_by, "peer", &peer,
	                "set_at_ms", &set_at_ms, "text", &text, "contract", &contract) != 0 ||
	    version < 1 || version > UINT32_MAX || strlen(text) > SL_CONTRACT_TEXT_BYTES_MAX ||
	    strlen(contract) > SL_CONTRACT_TEXT_BYTES_MAX)
		return -EINVAL;
	v->version = (uint32_t)version;
	snprintf(v->set_by, sizeof(v->set_by), "%s", set_by);
	snprintf(v->peer, sizeof(v->peer), "%s", peer);
	v->set_at_ms = set_at_ms;
	v->text = strdup(text);
	v->contract = strdup(contract);
	if (v->text == NULL || v->contract == NULL) {
		sl_contract_version_free(v);
		return -ENOMEM;
	}
	return 0;
}

static json_t *version_to_json(const struct sl_contract_version *v)
{
	return json_pack("{s:I, s:s, s:s, s:I, s:s, s:s}", "version", (json_int_t)v->version, "set_by", v->set_by,
	                 "peer", v->peer, "set_at_ms", (json_int_t)v->set_at_ms, "text", v->text, "contract",
	                 v->contract);
}

/* The file's versions array (a new reference; an empty array when there is no file). */
static int file_load(const char *topic_dir, json_t **out, char *err, size_t err_bytes)
{
	char path[SL_PATH_BYTES_MAX];
	json_error_t jerr;
	struct stat st;
	json_t *root, *versions;
	uint32_t last = 0;
	size_t i;
	json_t *v;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/%s", topic_dir, SL_CONTRACT_FILE);
	if (stat(path, &st) != 0) {
		if (errno != ENOENT) {
			err_set(err, err_bytes, "cannot read %s: %s", path, strerror(errno));
			return -errno;
		}
		*out = json_array();
		return *out != NULL ? 0 : -ENOMEM;
	}
	if ((size_t)st.st_size > FILE_BYTES_MAX) {
		err_set(err, err_bytes, "%s is %lld bytes, more than its versions can take", path,
		        (long long)st.st_size);
		return -EFBIG;
	}
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	versions = root != NULL ? json_object_get(root, "versions") : NULL;
	if (!json_is_array(versions)) {
		err_set(err, err_bytes, "%s is not a contract history (%s)", path,
		        root == NULL ? jerr.text : "no versions");
		json_decref(root);
		return -EBADMSG;
	}
	json_array_foreach(versions, i, v)
	{
		struct sl_contract_version cv;

		if (version_from_json(v, &cv) != 0 || cv.version <= last) {
			sl_contract_version_free(&cv);
			err_set(err, err_bytes, "%s: version %zu of the history is invalid", path, i + 1);
			json_decref(root);
			return -EBADMSG;
		}
		last = cv.version;
		sl_contract_version_free(&cv);
	}
	*out = json_incref(versions);
	json_decref(root);
	return 0;
}

int sl_contract_load(const char *topic_dir, struct sl_topic_contract **out, char *err, size_t err_bytes)
{
	struct sl_topic_contract *c;
	json_t *versions;
	char why[256];
	int rc = file_load(topic_dir, &versions, err, err_bytes);

	*out = NULL;
	if (rc != 0 || json_array_size(versions) == 0) {
		json_decref(versions);
		return rc;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		json_decref(versions);
		return -ENOMEM;
	}
	rc = version_from_json(json_array_get(versions, json_array_size(versions) - 1), &c->current);
	json_decref(versions);
	if (rc == 0 && (rc = sl_contract_rules_parse(c->current.contract, &c->rules, why, sizeof(why))) != 0)
		err_set(err, err_bytes, "%s/%s: the current contract: %s", topic_dir, SL_CONTRACT_FILE, why);
	if (rc != 0) {
		sl_topic_contract_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int sl_contract_append(const char *topic_dir, struct sl_contract_version *v, char *err, size_t err_bytes)
{
	char path[SL_PATH_BYTES_MAX];
	json_t *versions, *root, *j;
	size_t n;
	char *text;
	int rc = file_load(topic_dir, &versions, err, err_bytes);

	if (rc != 0)
		return rc;
	n = json_array_size(versions);
	if (n > 0) {
		json_int_t last = json_integer_value(json_object_get(json_array_get(versions, n - 1), "version"));
		v->version = (uint32_t)last + 1;
	} else {
		v->version = 1;
	}
	j = version_to_json(v);
	if (j == NULL || json_array_append_new(versions, j) != 0) {
		json_decref(versions);
		return -ENOMEM;
	}
	while (json_array_size(versions) > SL_CONTRACT_VERSIONS_KEPT)
		json_array_remove(versions, 0);
	root = json_pack("{s:o}", "versions", versions);
	text = root != NULL ? json_dumps(root, JSON_INDENT(1)) : NULL;
	json_decref(root);
	if (text == NULL)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/%s", topic_dir, SL_CONTRACT_FILE);
	rc = sl_fs_replace_atomic(path, text, strlen(text));
	free(text);
	if (rc != 0)
		err_set(err, err_bytes, "cannot write %s: %s", path, strerror(-rc));
	return rc;
}

int sl_contract_read(const char *topic_dir, uint32_t version, bool history, struct sl_contract_version **out,
                     uint32_t *count_out, char *err, size_t err_bytes)
{
	json_t *versions, *v;
	struct sl_contract_version *list;
	uint32_t n = 0;
	size_t i;
	int rc = file_load(topic_dir, &versions, err, err_bytes);

	*out = NULL;
	*count_out = 0;
	if (rc != 0)
		return rc;
	list = calloc(json_array_size(versions) + 1, sizeof(*list));
	if (list == NULL) {
		json_decref(versions);
		return -ENOMEM;
	}
	json_array_foreach(versions, i, v)
	{
		bool last = i + 1 == json_array_size(versions);
		json_int_t number = json_integer_value(json_object_get(v, "version"));

		if (!history && !(version == 0 ? last : number == (json_int_t)version))
			continue;
		if ((rc = version_from_json(v, &list[n])) != 0)
			break;
		n++;
	}
	json_decref(versions);
	if (rc == 0 && n == 0) {
		err_set(err, err_bytes, version == 0 ? "no contract" : "no version %u kept", version);
		rc = -ENOENT;
	}
	if (rc != 0) {
		for (uint32_t k = 0; k < n; k++)
			sl_contract_version_free(&list[k]);
		free(list);
		return rc;
	}
	*out = list;
	*count_out = n;
	return 0;
}
